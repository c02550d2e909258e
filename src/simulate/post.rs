//! Posting a generated stream to a daemon: NDJSON batches to `POST /v1/events`, retried while the
//! daemon is unavailable (503 or no connection) exactly as `backlogd send` does, and paced to at
//! most a given number of events per second. Re-sending a batch is safe: the daemon ignores
//! duplicate ids.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::send::Totals;

use super::SimEvent;

/// One rejected event of a batch, as the daemon reported it.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// Position of the event in the posted body (counting its lines from 0).
    pub index: usize,
    pub id: String,
    pub reason: String,
    pub message: String,
}

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

    /// Posts one NDJSON body and returns the daemon's answer.
    pub fn post(&self, body: String) -> anyhow::Result<Answer> {
        let body = Bytes::from(body);
        let answer = self.runtime.block_on(self.post_with_retry(body))?;
        let rejected = answer["rejected"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| Rejected {
                index: r["index"].as_u64().unwrap_or(0) as usize,
                id: r["id"].as_str().unwrap_or("").to_owned(),
                reason: r["reason"].as_str().unwrap_or("?").to_owned(),
                message: r["message"].as_str().unwrap_or("").to_owned(),
            })
            .collect();
        Ok(Answer {
            accepted: answer["accepted"].as_u64().unwrap_or(0),
            duplicates: answer["duplicates"].as_u64().unwrap_or(0),
            rejected,
        })
    }

    async fn post_with_retry(&self, body: Bytes) -> anyhow::Result<serde_json::Value> {
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
            if attempt >= self.max_attempts {
                anyhow::bail!("giving up after {attempt} attempts: {failure}");
            }
            eprintln!("retrying in {delay:?} ({failure})");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// Keeps a stream at or below `rate` events per second by sleeping before a batch would get
/// ahead of schedule.
pub struct Pacer {
    rate: Option<f64>,
    started: Instant,
    sent: u64,
}

impl Pacer {
    pub fn new(rate: Option<f64>) -> Pacer {
        Pacer {
            rate: rate.filter(|r| *r > 0.0),
            started: Instant::now(),
            sent: 0,
        }
    }

    /// Batch size that keeps the pacing smooth: at most a quarter second of events.
    pub fn batch(&self, batch: usize) -> usize {
        match self.rate {
            Some(rate) => batch.min((rate / 4.0).ceil() as usize).max(1),
            None => batch.max(1),
        }
    }

    /// Call before sending `n` more events.
    pub fn wait(&mut self, n: usize) {
        if let Some(rate) = self.rate {
            let due = Duration::from_secs_f64(self.sent as f64 / rate);
            if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
        self.sent += n as u64;
    }
}

/// Posts `events` in batches of `batch` (smaller under a `rate`), calling `on_rejection` for every
/// rejected event; returns the totals.
pub fn send_events(
    events: impl Iterator<Item = SimEvent>,
    poster: &Poster,
    batch: usize,
    rate: Option<f64>,
    mut on_rejection: impl FnMut(&Rejected),
) -> anyhow::Result<Totals> {
    let mut pacer = Pacer::new(rate);
    let batch = pacer.batch(batch);
    let mut totals = Totals::default();
    let mut body = String::new();
    let mut lines = 0;
    let mut flush = |body: &mut String, lines: &mut usize, totals: &mut Totals| {
        if *lines == 0 {
            return Ok::<(), anyhow::Error>(());
        }
        pacer.wait(*lines);
        let answer = poster.post(std::mem::take(body))?;
        totals.accepted += answer.accepted;
        totals.duplicates += answer.duplicates;
        totals.rejected += answer.rejected.len() as u64;
        for r in &answer.rejected {
            on_rejection(r);
        }
        *lines = 0;
        Ok(())
    };
    for event in events {
        body.push_str(&event.line);
        body.push('\n');
        lines += 1;
        if lines >= batch {
            flush(&mut body, &mut lines, &mut totals)?;
        }
    }
    flush(&mut body, &mut lines, &mut totals)?;
    Ok(totals)
}
