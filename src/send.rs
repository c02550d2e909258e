//! `backlogd send`: posts NDJSON files to a running daemon in batches, retrying while the daemon is
//! unavailable, and reports accepted, duplicate and rejected totals with every rejection.
//!
//! Re-sending is always safe (the daemon ignores duplicate ids), so a batch whose answer was lost is
//! simply sent again.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub struct SendOptions {
    pub files: Vec<PathBuf>,
    pub url: String,
    pub token: Option<String>,
    pub batch: usize,
    pub max_attempts: u32,
    /// No progress bar even on a terminal.
    pub quiet: bool,
}

#[derive(Debug, Default)]
pub struct Totals {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

/// Sends every file; returns the totals. Rejections are printed as `file:line: reason: message`.
pub fn run(options: SendOptions) -> anyhow::Result<Totals> {
    let mut poster = Poster::new(&options.url, options.token.clone())?;
    poster.max_attempts = options.max_attempts;
    let mut totals = Totals::default();
    // Progress in bytes of the files (their sizes are known before reading), events in the message.
    let progress = crate::progress::Progress::new(
        crate::progress::bytes_of(&options.files),
        "events sent",
        options.quiet,
    );
    let mut done_bytes = 0u64;
    for file in &options.files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        // (line number, line) of the non-blank lines, so rejections point into the file.
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(n, line)| (n + 1, line))
            .collect();
        for chunk in lines.chunks(options.batch.max(1)) {
            let mut body = String::new();
            for (_, line) in chunk {
                body.push_str(line);
                body.push('\n');
            }
            done_bytes += body.len() as u64;
            let events = chunk.len() as u64;
            let answer = poster.post(body)?;
            progress.advance(done_bytes, events);
            totals.accepted += answer.accepted;
            totals.duplicates += answer.duplicates;
            for rejection in &answer.rejected {
                totals.rejected += 1;
                let line = chunk.get(rejection.index).map_or(0, |(n, _)| *n);
                progress.println(&format!(
                    "{}:{line}: {}: {}",
                    file.display(),
                    rejection.reason,
                    rejection.message
                ));
            }
        }
    }
    progress.finish();
    println!(
        "accepted {}, duplicates {}, rejected {}",
        totals.accepted, totals.duplicates, totals.rejected
    );
    Ok(totals)
}

/// One rejected event of a batch, as the daemon reported it.
pub use crate::api::Rejected;

/// The daemon's answer to one batch.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: Vec<Rejected>,
}

/// A blocking client for one daemon.
pub struct Poster {
    runtime: tokio::runtime::Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
    uri: hyper::Uri,
    token: Option<String>,
    /// Attempts per batch while the daemon is unavailable.
    pub max_attempts: u32,
}

impl Poster {
    /// `url` is the daemon's base URL (e.g. `http://127.0.0.1:9723`).
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Poster> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = {
            let _guard = runtime.enter();
            Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>()
        };
        let url = format!("{}/v1/events", url.trim_end_matches('/'));
        let uri = url
            .parse()
            .with_context(|| format!("--url: {url} is not a URL"))?;
        Ok(Poster {
            runtime,
            client,
            uri,
            token,
            max_attempts: 20,
        })
    }

    /// Posts one NDJSON body and returns the daemon's answer, which must account for every event
    /// of the body (accepted + duplicates + rejected), or it is an error.
    pub fn post(&self, body: String) -> anyhow::Result<Answer> {
        let events = body
            .split('\n')
            .filter(|line| !line.trim().is_empty())
            .count() as u64;
        let body = Bytes::from(body);
        let answer = self.runtime.block_on(self.post_with_retry(body))?;
        let counted = answer.accepted + answer.duplicates + answer.rejections();
        if counted != events {
            anyhow::bail!(
                "the daemon's answer accounts for {counted} of the {events} events sent: {answer:?}"
            );
        }
        Ok(Answer {
            accepted: answer.accepted,
            duplicates: answer.duplicates,
            rejected: answer.rejected,
        })
    }

    async fn post_with_retry(&self, body: Bytes) -> anyhow::Result<crate::api::IngestAnswer> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = hyper::Request::post(self.uri.clone())
                .header(hyper::header::CONTENT_TYPE, "application/x-ndjson");
            if let Some(token) = &self.token {
                request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let request = request.body(Full::new(body.clone()))?;
            let failure = match self.client.request(request).await {
                Ok(response) => {
                    let status = response.status();
                    let bytes = response.into_body().collect().await?.to_bytes();
                    match status {
                        StatusCode::OK | StatusCode::UNPROCESSABLE_ENTITY => {
                            return crate::api::decode("POST /v1/events", &bytes);
                        }
                        StatusCode::SERVICE_UNAVAILABLE => {
                            format!("503: {}", String::from_utf8_lossy(&bytes))
                        }
                        other => anyhow::bail!(
                            "the daemon answered {other}: {}",
                            String::from_utf8_lossy(&bytes)
                        ),
                    }
                }
                Err(e) => format!("cannot connect: {e}"),
            };
            if attempt >= self.max_attempts {
                anyhow::bail!("giving up after {attempt} attempts: {failure}");
            }
            eprintln!("retrying in {delay:?} ({failure})");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// `backlogd reload`: asks the daemon at `url` to reload its configuration (`POST /-/reload`, with
/// the ingest token when one is given) and waits for the result: `Ok` with the daemon's answer, or
/// the reason the reload failed (the daemon keeps its running configuration then). For
/// `ExecReload=`, so that `systemctl reload` reports a failed reload.
pub fn reload(url: &str, token: Option<&str>) -> anyhow::Result<String> {
    let (status, bytes) = request_once(hyper::Method::POST, url, "/-/reload", token)?;
    match status {
        StatusCode::OK => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        other => anyhow::bail!("the reload failed ({other}): {}", error_sentence(&bytes)),
    }
}

/// `GET {url}{path_and_query}` with the bearer token when one is given: the answer of a 200
/// decoded as `T` (an error naming a missing field), or an error with the daemon's `error`
/// sentence.
pub fn get_json<T: serde::de::DeserializeOwned>(
    url: &str,
    path_and_query: &str,
    token: Option<&str>,
) -> anyhow::Result<T> {
    let bytes = get(url, path_and_query, token)?;
    crate::api::decode(&format!("GET {path_and_query}"), &bytes)
}

/// `GET {url}{path_and_query}` with the bearer token when one is given: the body of a 200, or an
/// error with the daemon's `error` sentence (or its whole answer when that is not JSON).
pub fn get(url: &str, path_and_query: &str, token: Option<&str>) -> anyhow::Result<Bytes> {
    let (status, bytes) = request_once(hyper::Method::GET, url, path_and_query, token)?;
    if status == StatusCode::OK {
        return Ok(bytes);
    }
    anyhow::bail!("the daemon answered {status}: {}", error_sentence(&bytes))
}

/// One request without a body (and without retries), with the bearer token when one is given: the
/// answer's status and body.
fn request_once(
    method: hyper::Method,
    url: &str,
    path_and_query: &str,
    token: Option<&str>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let target = format!("{}{path_and_query}", url.trim_end_matches('/'));
        let uri: hyper::Uri = target
            .parse()
            .with_context(|| format!("{target} is not a URL"))?;
        let mut request = hyper::Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = client
            .request(request.body(Full::new(Bytes::new()))?)
            .await
            .with_context(|| format!("cannot reach the daemon at {url}"))?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    })
}

/// The daemon's `error` sentence in an answer, or the whole answer when it has none.
fn error_sentence(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned())
}

/// The URL at which a daemon listening on `listen` is reached from this host.
pub fn local_url(listen: std::net::SocketAddr) -> String {
    let host = match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("http://{host}:{}", listen.port())
}
