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
use hyper_util::rt::TokioExecutor;

pub struct SendOptions {
    pub files: Vec<PathBuf>,
    pub url: String,
    pub token: Option<String>,
    pub batch: usize,
    pub max_attempts: u32,
}

#[derive(Debug, Default)]
pub struct Totals {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

/// Sends every file; returns the totals. Rejections are printed as `file:line: reason: message`.
pub fn run(options: SendOptions) -> anyhow::Result<Totals> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(send_all(options))
}

async fn send_all(options: SendOptions) -> anyhow::Result<Totals> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let url = format!("{}/v1/events", options.url.trim_end_matches('/'));
    let uri: hyper::Uri = url
        .parse()
        .with_context(|| format!("--url: {url} is not a URL"))?;
    let mut totals = Totals::default();
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
            let answer = post_with_retry(&client, &uri, &options, Bytes::from(body)).await?;
            totals.accepted += answer["accepted"].as_u64().unwrap_or(0);
            totals.duplicates += answer["duplicates"].as_u64().unwrap_or(0);
            for rejection in answer["rejected"].as_array().into_iter().flatten() {
                totals.rejected += 1;
                let index = rejection["index"].as_u64().unwrap_or(0) as usize;
                let line = chunk.get(index).map_or(0, |(n, _)| *n);
                println!(
                    "{}:{line}: {}: {}",
                    file.display(),
                    rejection["reason"].as_str().unwrap_or("?"),
                    rejection["message"].as_str().unwrap_or("")
                );
            }
        }
    }
    println!(
        "accepted {}, duplicates {}, rejected {}",
        totals.accepted, totals.duplicates, totals.rejected
    );
    Ok(totals)
}

async fn post_with_retry(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    uri: &hyper::Uri,
    options: &SendOptions,
    body: Bytes,
) -> anyhow::Result<serde_json::Value> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = hyper::Request::post(uri.clone())
            .header(hyper::header::CONTENT_TYPE, "application/x-ndjson");
        if let Some(token) = &options.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Full::new(body.clone()))?;
        let failure = match client.request(request).await {
            Ok(response) => {
                let status = response.status();
                let bytes = response.into_body().collect().await?.to_bytes();
                match status {
                    StatusCode::OK | StatusCode::UNPROCESSABLE_ENTITY => {
                        return serde_json::from_slice(&bytes)
                            .context("the daemon's answer is not JSON");
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
        if attempt >= options.max_attempts {
            anyhow::bail!("giving up after {attempt} attempts: {failure}");
        }
        eprintln!("retrying in {delay:?} ({failure})");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
