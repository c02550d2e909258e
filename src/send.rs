//! `backlogd send`: posts NDJSON files to a running daemon in batches, retrying while the daemon is
//! unavailable, and reports accepted, duplicate and rejected totals with every rejection.
//!
//! Re-sending is always safe (the daemon ignores duplicate ids), so a batch whose answer was lost is
//! simply sent again.

use std::path::PathBuf;

use bytes::Bytes;
use hyper::{Method, StatusCode};

use crate::client::{Client, ClientError};

pub struct SendOptions {
    pub files: Vec<PathBuf>,
    /// The daemon.
    pub client: Client,
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

/// Why sending stopped.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The daemon's answer does not account for every event of the batch.
    #[error("the daemon's answer accounts for {counted} of the {events} events sent: {answer:?}")]
    Unaccounted {
        counted: u64,
        events: u64,
        answer: crate::api::IngestAnswer,
    },
}

/// Sends every file; returns the totals. Rejections are printed as `file:line: reason: message`.
pub fn run(options: SendOptions) -> Result<Totals, SendError> {
    let mut poster = Poster::new(options.client);
    poster.max_attempts = options.max_attempts;
    let mut totals = Totals::default();
    // Progress in bytes of the files (their sizes are known before reading), events in the message.
    let progress = crate::progress::Progress::new(
        crate::progress::bytes_of(&options.files),
        "events sent",
        options.quiet,
    );
    let mut done_bytes = 0u64;
    let batch = options.batch.max(1);
    // One batch at a time: its body (the lines as read, blank ones left out) and the file's line
    // number of each event in it, so that rejections point into the file. The file is streamed:
    // memory holds one batch, whatever the file's size.
    let mut body = String::new();
    let mut numbers: Vec<usize> = Vec::with_capacity(batch);
    for file in &options.files {
        let read_error = |error| SendError::Read {
            path: file.clone(),
            error,
        };
        let mut reader = std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(file).map_err(read_error)?,
        );
        let mut number = 0;
        loop {
            let start = body.len();
            let at_end =
                std::io::BufRead::read_line(&mut reader, &mut body).map_err(read_error)? == 0;
            if !at_end {
                number += 1;
                if body[start..].trim().is_empty() {
                    body.truncate(start);
                    continue;
                }
                // As `str::lines`: the line ends with `\n`, never `\r\n`, and the last one gets one.
                let end = body.trim_end_matches(['\n', '\r']).len();
                body.truncate(end);
                body.push('\n');
                numbers.push(number);
            }
            // A full batch, or what is left of the file's last one.
            if numbers.len() == batch || (at_end && !numbers.is_empty()) {
                done_bytes += body.len() as u64;
                post_batch(
                    &poster,
                    file,
                    &mut body,
                    &mut numbers,
                    &progress,
                    done_bytes,
                    &mut totals,
                )?;
            }
            if at_end {
                break;
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

/// Posts one batch (`body`, the events of `file` at line `numbers`), adds its answer to `totals`,
/// prints its rejections by file and line, and empties both for the next batch.
fn post_batch(
    poster: &Poster,
    file: &std::path::Path,
    body: &mut String,
    numbers: &mut Vec<usize>,
    progress: &crate::progress::Progress,
    done_bytes: u64,
    totals: &mut Totals,
) -> Result<(), SendError> {
    let answer = poster.post(std::mem::take(body))?;
    progress.advance(done_bytes, numbers.len() as u64);
    totals.accepted += answer.accepted;
    totals.duplicates += answer.duplicates;
    for rejection in &answer.rejected {
        totals.rejected += 1;
        let line = numbers.get(rejection.index).copied().unwrap_or(0);
        progress.println(&format!(
            "{}:{line}: {}: {}",
            file.display(),
            rejection.reason,
            rejection.message
        ));
    }
    numbers.clear();
    Ok(())
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

/// Posts batches to one daemon, retrying while it is unavailable.
pub struct Poster {
    client: Client,
    /// Attempts per batch while the daemon is unavailable (refused connection or 503).
    pub max_attempts: u32,
}

impl Poster {
    pub fn new(client: Client) -> Poster {
        Poster {
            client,
            max_attempts: 20,
        }
    }

    /// Posts one NDJSON body and returns the daemon's answer, which must account for every event
    /// of the body (accepted + duplicates + rejected), or it is an error.
    pub fn post(&self, body: String) -> Result<Answer, SendError> {
        let events = body
            .split('\n')
            .filter(|line| !line.trim().is_empty())
            .count() as u64;
        let response = self.client.expect_retrying(
            Method::POST,
            "/v1/events",
            Some("application/x-ndjson"),
            Bytes::from(body),
            &[StatusCode::OK, StatusCode::UNPROCESSABLE_ENTITY],
            self.max_attempts,
        )?;
        let answer: crate::api::IngestAnswer =
            crate::api::decode("POST /v1/events", &response.body).map_err(ClientError::Decode)?;
        let counted = answer.accepted + answer.duplicates + answer.rejections();
        if counted != events {
            return Err(SendError::Unaccounted {
                counted,
                events,
                answer,
            });
        }
        Ok(Answer {
            accepted: answer.accepted,
            duplicates: answer.duplicates,
            rejected: answer.rejected,
        })
    }
}
