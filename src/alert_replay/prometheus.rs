//! The one Prometheus HTTP API call `alert-replay` makes: `GET /api/v1/query_range`, in chunks of
//! at most `MAX_POINTS` evaluations (Prometheus refuses more than 11,000 points per series).

use std::path::Path;

use bytes::Bytes;
use serde::Deserialize;

use crate::client::{Client, ClientError};

use super::timeline::Labels;

/// Evaluations per request.
pub const MAX_POINTS: i64 = 10_000;

/// The instants (milliseconds) at which one series of a range query had a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub at: Vec<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("--prometheus: {0}")]
    Client(#[from] ClientError),
    #[error("Prometheus refused the query ({error_type}): {error}\nquery: {query}")]
    Refused {
        error_type: String,
        error: String,
        query: String,
    },
    #[error("{url}: unexpected answer: {message}")]
    Answer { url: String, message: String },
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RawSeries>,
}

#[derive(Deserialize)]
struct RawSeries {
    metric: Labels,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// A blocking client of one Prometheus.
pub struct Prometheus {
    client: Client,
}

impl Prometheus {
    /// The Prometheus at `url` (http:// or https://; with `ca_file`, trusting exactly its
    /// certificates), each request bounded by `timeout`.
    pub fn new(
        url: &str,
        ca_file: Option<&Path>,
        timeout: std::time::Duration,
    ) -> Result<Prometheus, QueryError> {
        Ok(Prometheus {
            client: Client::new(url, ca_file, None)?.with_timeout(timeout),
        })
    }

    /// `query` evaluated at `start`, `start + step`, ... up to `end` (milliseconds), in as many
    /// requests as needed; series merged by label set.
    pub fn query_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let mut merged: std::collections::BTreeMap<Labels, Vec<i64>> = Default::default();
        let mut chunk_start = start;
        while chunk_start <= end {
            let chunk_end = end.min(chunk_start + (MAX_POINTS - 1) * step);
            for series in self.query_chunk(query, chunk_start, chunk_end, step)? {
                merged.entry(series.labels).or_default().extend(series.at);
            }
            chunk_start = chunk_end + step;
        }
        Ok(merged
            .into_iter()
            .map(|(labels, at)| Series { labels, at })
            .collect())
    }

    fn query_chunk(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let path = format!(
            "/api/v1/query_range?query={}&start={}&end={}&step={}",
            percent_encode(query),
            seconds(start),
            seconds(end),
            seconds(step)
        );
        // Any status: Prometheus explains a refused query (400, 422, 503) in the JSON.
        let response = self
            .client
            .request(hyper::Method::GET, &path, None, Bytes::new())?;
        let (status, body) = (response.status, response.body);
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| QueryError::Answer {
            url: self.client.base().to_owned(),
            message: format!("HTTP {status}, {e}: {}", String::from_utf8_lossy(&body)),
        })?;
        if answer.status != "success" {
            return Err(QueryError::Refused {
                error_type: answer.error_type.unwrap_or_default(),
                error: answer.error.unwrap_or_default(),
                query: query.to_owned(),
            });
        }
        let data = answer.data.ok_or_else(|| QueryError::Answer {
            url: self.client.base().to_owned(),
            message: "no data".into(),
        })?;
        if data.result_type != "matrix" {
            return Err(QueryError::Answer {
                url: self.client.base().to_owned(),
                message: format!("result type {} instead of matrix", data.result_type),
            });
        }
        Ok(data
            .result
            .into_iter()
            .map(|raw| Series {
                labels: raw.metric,
                at: raw
                    .values
                    .iter()
                    .map(|(t, _)| (t * 1000.0).round() as i64)
                    .collect(),
            })
            .collect())
    }
}

/// Milliseconds as Prometheus API seconds (`1700000000.5`).
fn seconds(ms: i64) -> String {
    if ms % 1000 == 0 {
        (ms / 1000).to_string()
    } else {
        format!("{:.3}", ms as f64 / 1000.0)
    }
}

/// A query parameter value, form-encoded.
fn percent_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters() {
        let query = r#"a{b="c d"} > 1 + rate(x[5m]) & y"#;
        let encoded = format!("query={}", percent_encode(query));
        let decoded: Vec<(String, String)> = form_urlencoded::parse(encoded.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(decoded, [("query".to_owned(), query.to_owned())]);
        assert_eq!(seconds(1_700_000_000_000), "1700000000");
        assert_eq!(seconds(1_700_000_000_500), "1700000000.500");
    }
}
