//! `Command::Ingest`: a batch of events applied to the state and appended to the log (committed with
//! the rest of the group, answered after the commit).

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Engine, Group, STORE_FAILED};
use crate::core::event::Event;
use crate::core::{Applied, EpochNanos, Rejection};
use crate::store::SourcePosition;
use crate::store::encode_record;
use crate::store::log::{self, LogError};
use crate::wire::{self, ItemRejection};

/// The events of one request: the body (the log stores each event's raw text) and, per event, the
/// byte range of its text and its parse result.
pub struct IngestBatch {
    pub body: Bytes,
    pub items: Vec<(std::ops::Range<usize>, Result<Event, ItemRejection>)>,
    /// How the batch arrived (`http`, `nats`): the `source` label of
    /// `backlogd_events_received_total`.
    pub via: &'static str,
    /// For a message of a stream source: its position, logged after its events in the same
    /// commit group. A batch at or below the committed position of its stream is not applied
    /// (every event counts as a duplicate): a message is never applied after a later one.
    pub position: Option<SourcePosition>,
    pub reply: oneshot::Sender<IngestOutcome>,
}

/// What became of a batch.
#[derive(Debug)]
pub enum IngestOutcome {
    Done(IngestSummary),
    /// The log could not be written or synced; nothing of this batch is acknowledged.
    Unavailable(String),
}

#[derive(Debug, Default)]
pub struct IngestSummary {
    pub accepted: usize,
    pub duplicates: usize,
    /// (index in the body, event id if known, rejection).
    pub rejected: Vec<(usize, Option<String>, Rejection)>,
}

impl Engine {
    /// Applies the batch and appends what applied to the log; its answer waits for the commit. Once
    /// the store has failed, the batch is refused unapplied: nothing more can be made durable.
    pub(super) fn ingest(&mut self, batch: IngestBatch, group: &mut Group) {
        if self.store_failed(group) {
            let _ = batch
                .reply
                .send(IngestOutcome::Unavailable(STORE_FAILED.to_string()));
            return;
        }
        match self.apply_batch(&batch, group) {
            Ok(summary) => group.ingests.push((batch.reply, summary)),
            Err(e) => {
                group.store_error = Some(e);
                group.ingests.push((batch.reply, IngestSummary::default()));
            }
        }
    }

    /// Applies one batch and appends its applied events to the log (not yet committed). An append
    /// error means the log is unusable; the caller then fails the whole group.
    fn apply_batch(
        &mut self,
        batch: &IngestBatch,
        group: &mut Group,
    ) -> Result<IngestSummary, LogError> {
        let mut summary = IngestSummary::default();
        if let (Some(position), Some(committed)) = (&batch.position, &self.stream_position)
            && position.stream == committed.stream
            && position.sequence <= committed.sequence
        {
            summary.duplicates = batch.items.len();
            return Ok(summary);
        }
        self.telemetry
            .events_received
            .with_label_values(&[batch.via])
            .inc_by(batch.items.len() as u64);
        for (index, (range, parsed)) in batch.items.iter().enumerate() {
            let event = match parsed {
                Ok(event) => event,
                Err(rejected) => {
                    self.telemetry.reject(rejected.rejection.reason);
                    summary
                        .rejected
                        .push((index, rejected.id.clone(), rejected.rejection.clone()));
                    continue;
                }
            };
            let raw = &batch.body[range.clone()];
            match self.apply_event(event, raw, group.now)? {
                Ok(Applied::New) => {
                    group.logged = true;
                    summary.accepted += 1;
                }
                Ok(Applied::Duplicate) => summary.duplicates += 1,
                Err(rejection) => summary
                    .rejected
                    .push((index, Some(event.id.clone()), rejection)),
            }
        }
        if let Some(position) = &batch.position {
            // Logged once per group, after all its events (`log_stream_position`), even when
            // nothing of the message applied: its rejections are answered once.
            self.stream_position = Some(position.clone());
            group.stream_position_moved = true;
            group.logged = true;
        }
        Ok(summary)
    }

    /// Applies one parsed event whose raw text is `raw`; a new one is appended to the log. The
    /// outer error is the log's (the group fails), the inner one the event's rejection.
    fn apply_event(
        &mut self,
        event: &Event,
        raw: &[u8],
        now: EpochNanos,
    ) -> Result<Result<Applied, Rejection>, LogError> {
        let telemetry = &self.telemetry;
        if raw.len() + 8 > log::MAX_PAYLOAD_BYTES {
            let rejection = Rejection::new(
                crate::core::RejectReason::InvalidField,
                format!(
                    "the event is {} bytes; one event may be at most {} bytes",
                    raw.len(),
                    log::MAX_PAYLOAD_BYTES - 8
                ),
            );
            telemetry.reject(rejection.reason);
            return Ok(Err(rejection));
        }
        let applied = self.state.apply(event, now);
        match &applied {
            Ok(Applied::New) => {
                // The size was checked above, so only a poisoned log fails here; the event is
                // already applied, so the caller fails the group and nothing is acknowledged.
                let record = encode_record(now, raw);
                self.log.append(&record)?;
                self.logged_events += 1;
                self.logged_bytes += record.len() as u64;
                telemetry.applied(event.kind.event_type());
            }
            Ok(Applied::Duplicate) => telemetry.events_duplicate.inc(),
            Err(rejection) => telemetry.reject(rejection.reason),
        }
        Ok(applied)
    }
}

/// Parses a body into a batch for the engine, keeping each event's byte range in the body (the log
/// stores the raw text of each applied event).
pub fn batch_from_body(
    body: Bytes,
    format: wire::BodyFormat,
    via: &'static str,
    reply: oneshot::Sender<IngestOutcome>,
    max_events: usize,
) -> Result<IngestBatch, wire::BodyError> {
    let base = body.as_ptr() as usize;
    let items = wire::parse_body(format, &body, max_events)?
        .into_iter()
        .map(|item| {
            // Every `raw` is a sub-slice of `body`: wire::parse_body only ever slices its input.
            let start = item.raw.as_ptr() as usize - base;
            (start..start + item.raw.len(), item.parsed)
        })
        .collect();
    Ok(IngestBatch {
        body,
        items,
        via,
        position: None,
        reply,
    })
}

/// A batch for a body that cannot be split into events at all (a stream message is not an HTTP
/// request that can be answered 400): one rejected item spanning the whole body, so that it is
/// counted, answered and, for a stream source, its position still logged.
pub fn batch_of_refused_body(
    body: Bytes,
    error: &wire::BodyError,
    via: &'static str,
    reply: oneshot::Sender<IngestOutcome>,
) -> IngestBatch {
    let rejection = Rejection::new(crate::core::RejectReason::InvalidJson, error.to_string());
    IngestBatch {
        items: vec![(
            0..body.len(),
            Err(ItemRejection {
                id: None,
                rejection,
            }),
        )],
        body,
        via,
        position: None,
        reply,
    }
}
