//! Posting a generated stream to a daemon: NDJSON batches to `POST /v1/events`, retried while the
//! daemon is unavailable (503 or no connection) exactly as `backlogd send` does, and paced to at
//! most a given number of events per second. Re-sending a batch is safe: the daemon ignores
//! duplicate ids.

use std::time::{Duration, Instant};

use crate::send::Totals;

use super::SimEvent;

pub use crate::send::{Answer, Poster, Rejected};

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
) -> Result<Totals, crate::send::SendError> {
    let mut pacer = Pacer::new(rate);
    let batch = pacer.batch(batch);
    let mut totals = Totals::default();
    let mut body = String::new();
    let mut lines = 0;
    let mut flush = |body: &mut String, lines: &mut usize, totals: &mut Totals| {
        if *lines == 0 {
            return Ok::<(), crate::send::SendError>(());
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
