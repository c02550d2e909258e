//! The one Prometheus HTTP API call `alert-replay` makes: `GET /api/v1/query_range`, in chunks of
//! at most `MAX_POINTS` evaluations (Prometheus refuses more than 11,000 points per series).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

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
    #[error("--prometheus {url}: {message}")]
    Url { url: String, message: String },
    #[error("{url}: {message}")]
    Http { url: String, message: String },
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
    base: String,
    runtime: tokio::runtime::Runtime,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Prometheus {
    pub fn new(url: &str) -> Result<Prometheus, QueryError> {
        let base = url.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            return Err(QueryError::Url {
                url: url.to_owned(),
                message: "only http:// URLs are supported".into(),
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| QueryError::Http {
                url: url.to_owned(),
                message: e.to_string(),
            })?;
        let client = {
            let _guard = runtime.enter();
            Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>()
        };
        Ok(Prometheus {
            base,
            runtime,
            client,
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
        let url = format!(
            "{}/api/v1/query_range?query={}&start={}&end={}&step={}",
            self.base,
            percent_encode(query),
            seconds(start),
            seconds(end),
            seconds(step)
        );
        let uri: hyper::Uri =
            url.parse()
                .map_err(|e: hyper::http::uri::InvalidUri| QueryError::Url {
                    url: self.base.clone(),
                    message: e.to_string(),
                })?;
        let http = |message: String| QueryError::Http {
            url: self.base.clone(),
            message,
        };
        let body = self.runtime.block_on(async {
            let response = self
                .client
                .get(uri)
                .await
                .map_err(|e| http(format!("{e:#}")))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| http(e.to_string()))?
                .to_bytes();
            Ok::<_, QueryError>((status, body))
        })?;
        let (status, body) = body;
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| QueryError::Answer {
            url: self.base.clone(),
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
            url: self.base.clone(),
            message: "no data".into(),
        })?;
        if data.result_type != "matrix" {
            return Err(QueryError::Answer {
                url: self.base.clone(),
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
