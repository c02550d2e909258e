//! The NATS JetStream source (`[sources.nats]`, docs/scaling.md): a durable pull consumer whose
//! messages become ingest batches for the engine.
//!
//! Order across crashes: every message's stream sequence is logged by the engine with its events,
//! in the same commit group (`engine::IngestBatch::position`). A session starts by asking the
//! engine for the last committed position and (re)creating the durable consumer to deliver from
//! the sequence after it. Within a session, first deliveries arrive in stream order; a
//! redelivery (sequence at or below the highest handed over) is never applied again: it is acked
//! when already committed and otherwise left to the ack of its first delivery. A gap in the
//! consumer's delivery sequence (a delivery lost with a broken connection) ends the session, and
//! the next one resumes from the committed position. So no message is applied after a later one,
//! and none is skipped.
//!
//! A message is acknowledged only after the engine's answer says its events are committed; the
//! ack then only trims the stream. At most `max_in_flight` messages are between receipt and ack
//! (the consumer's `max_ack_pending` too); when the engine is behind, the source waits.
//!
//! No state lives here beyond what is in flight; no lock is held across IO.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
    stream,
};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::partition;
use crate::config::NatsConfig;
use crate::engine::{self, Command, EngineHandle, IngestOutcome, SourcePosition};
use crate::telemetry::SourceMetrics;
use crate::wire::BodyFormat;

/// How long the server waits for an ack before redelivering. Redeliveries are harmless (they are
/// skipped), so this only needs to exceed a slow commit.
const ACK_WAIT: Duration = Duration::from_secs(60);
/// Idle heartbeat of the pull requests: a dead connection is noticed within about two of these.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Messages asked for per pull request (at most `max_in_flight`).
const PULL_BATCH: usize = 1000;
/// How often the consumer's pending count is read while no message arrives.
const LAG_POLL: Duration = Duration::from_secs(5);
/// Engine queue slots the source leaves to HTTP ingest. Fewer source commands in flight cost
/// throughput (half the queue: 40% slower catch-up, scripts/bench-nats), so the source keeps most.
const HTTP_QUEUE_SHARE: usize = 128;
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Why a session of the source ended.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("connecting to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("sources.nats.credentials_file {path}: {source}")]
    Credentials {
        path: String,
        source: std::io::Error,
    },
    #[error("stream {stream}: {message}")]
    Stream { stream: String, message: String },
    #[error("consumer {durable}: {message}")]
    Consumer { durable: String, message: String },
    #[error("receiving messages: {0}")]
    Receive(String),
    #[error(
        "a delivery was lost (consumer sequence {got} after {last}); resuming from the committed position"
    )]
    Gap { last: u64, got: u64 },
    #[error("the engine is gone (the daemon is stopping)")]
    EngineGone,
    #[error("the event log failed: {0}")]
    StoreFailed(String),
}

/// Runs the source until the engine is gone or its log failed: sessions, each retried with
/// backoff after a failure (logged). HTTP ingest and `/readyz` do not depend on it.
pub async fn run(
    config: NatsConfig,
    engine: EngineHandle,
    metrics: SourceMetrics,
    max_events: usize,
) {
    let mut backoff = BACKOFF_FIRST;
    // Sequences already counted in `backlogd_source_messages_missed_total` by this process.
    let mut missed_through = 0;
    loop {
        let started = Instant::now();
        let result = session(&config, &engine, &metrics, max_events, &mut missed_through).await;
        metrics.connected.set(0);
        match result {
            Ok(()) | Err(SourceError::EngineGone) => return,
            Err(SourceError::StoreFailed(error)) => {
                tracing::error!(%error, "NATS source stopped: the event log failed");
                return;
            }
            Err(error) => {
                // A session that ran a while was healthy: start the backoff over.
                if started.elapsed() > BACKOFF_MAX * 3 {
                    backoff = BACKOFF_FIRST;
                }
                tracing::warn!(
                    %error,
                    retry_in_ms = backoff.as_millis() as u64,
                    url = %config.url,
                    stream = %config.stream,
                    "NATS source interrupted; retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One message between its hand-over to the engine and its ack.
struct InFlight {
    /// Its share of the engine's queue, given back once answered.
    _queue_share: OwnedSemaphorePermit,
    message: jetstream::Message,
    answer: oneshot::Receiver<IngestOutcome>,
    sequence: u64,
    /// The message body and each event's range in it (for the dead-letter subject).
    body: Bytes,
    ranges: Vec<Range<usize>>,
}

async fn session(
    config: &NatsConfig,
    engine: &EngineHandle,
    metrics: &SourceMetrics,
    max_events: usize,
    missed_through: &mut u64,
) -> Result<(), SourceError> {
    let consuming = Arc::new(AtomicBool::new(false));
    let client = connect(config, metrics, consuming.clone()).await?;
    let context = jetstream::new(client.clone());
    let stream = open_stream(config, &context).await?;
    let after = resume_point(config, engine, metrics, &stream, missed_through).await?;
    let consumer = create_consumer(config, &stream, after).await?;
    let first_delivery = consumer.cached_info().delivered.consumer_sequence;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH.min(config.max_in_flight))
        .heartbeat(HEARTBEAT)
        .messages()
        .await
        .map_err(|e| consumer_error(config, &e))?;
    consuming.store(true, Ordering::SeqCst);
    metrics.connected.set(1);
    tracing::info!(
        url = %config.url,
        stream = %config.stream,
        durable = %config.durable,
        resume_after = after,
        "NATS source consuming"
    );
    let committed = Arc::new(AtomicU64::new(after));
    let (in_flight, waiting) = mpsc::channel(config.max_in_flight);
    let acker = tokio::spawn(acknowledge(
        waiting,
        client.clone(),
        config.dead_letter_subject.clone(),
        committed.clone(),
    ));
    // The source never takes the whole engine queue, so that a catch-up never fills it: HTTP
    // ingest (which gets 503 on a full queue) keeps `HTTP_QUEUE_SHARE` commands of it.
    let queue_share = Arc::new(Semaphore::new(
        engine::QUEUE_COMMANDS
            .saturating_sub(HTTP_QUEUE_SHARE)
            .max(1),
    ));
    let mut handed = after;
    let mut last_delivery = first_delivery;
    let mut poll = tokio::time::interval(LAG_POLL);
    let consumed: Result<(), SourceError> = async {
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = poll.tick() => {
                    if let Ok(info) = consumer.get_info().await {
                        metrics.lag.set(i64::try_from(info.num_pending).unwrap_or(i64::MAX));
                    }
                    continue;
                }
            };
            let message = match next {
                None => return Err(SourceError::Receive("the message stream ended".to_owned())),
                Some(Err(e)) => return Err(SourceError::Receive(e.to_string())),
                Some(Ok(message)) => message,
            };
            let (sequence, delivery, pending) = match message.info() {
                Ok(info) => (info.stream_sequence, info.consumer_sequence, info.pending),
                Err(e) => return Err(SourceError::Receive(e.to_string())),
            };
            metrics.lag.set(i64::try_from(pending).unwrap_or(i64::MAX));
            if delivery != last_delivery + 1 {
                return Err(SourceError::Gap {
                    last: last_delivery,
                    got: delivery,
                });
            }
            last_delivery = delivery;
            if sequence <= handed {
                // A redelivery: applied already, or in flight (its first delivery's ack covers it).
                if sequence <= committed.load(Ordering::SeqCst) {
                    let _ = message.ack().await;
                }
                continue;
            }
            handed = sequence;
            let Ok(share) = queue_share.clone().acquire_owned().await else {
                return Err(SourceError::EngineGone);
            };
            let item = hand_over(
                config, engine, metrics, message, sequence, max_events, share,
            )
            .await?;
            if in_flight.send(item).await.is_err() {
                // The acker stopped; its error is the one reported.
                return Ok(());
            }
        }
    }
    .await;
    drop(in_flight);
    // Wait for every message handed over to be answered (and acked), so that the next session
    // starts from what the engine has committed.
    let acked = acker.await.unwrap_or(Err(SourceError::EngineGone));
    consuming.store(false, Ordering::SeqCst);
    acked.and(consumed)
}

/// The configured stream, created first when `create_stream` says so.
async fn open_stream(
    config: &NatsConfig,
    context: &jetstream::Context,
) -> Result<jetstream::stream::Stream, SourceError> {
    let stream_error = |e: &dyn std::fmt::Display| SourceError::Stream {
        stream: config.stream.clone(),
        message: e.to_string(),
    };
    if config.create_stream {
        context
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: config.subjects.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| stream_error(&e))
    } else {
        context
            .get_stream(&config.stream)
            .await
            .map_err(|e| stream_error(&e))
    }
}

/// The stream sequence to resume after: the last position the log holds (of this stream), with
/// the stream's bounds checked against it and any gap logged and counted.
async fn resume_point(
    config: &NatsConfig,
    engine: &EngineHandle,
    metrics: &SourceMetrics,
    stream: &jetstream::stream::Stream,
    missed_through: &mut u64,
) -> Result<u64, SourceError> {
    // Resume after the last message whose events the log holds (a position of another stream,
    // after a change of `stream`, does not count).
    let after = committed_position(engine)
        .await?
        .filter(|position| position.stream == config.stream)
        .map_or(0, |position| position.sequence);
    let bounds = {
        let state = &stream.cached_info().state;
        check_bounds(
            after,
            state.first_sequence,
            state.last_sequence,
            *missed_through,
        )
    };
    metrics.behind.set(i64::from(bounds.behind));
    if bounds.behind {
        tracing::error!(
            stream = %config.stream,
            logged_position = after,
            stream_last_sequence = bounds.last,
            "the stream's last sequence is below the position this daemon logged: it was purged or recreated, and its messages up to the logged position will not be read (docs/runbooks.md, BacklogdSourceStreamBehind)"
        );
    }
    if bounds.missed > 0 {
        metrics.missed.inc_by(bounds.missed);
        tracing::error!(
            stream = %config.stream,
            logged_position = after,
            stream_first_sequence = bounds.first,
            missed = bounds.missed,
            "the stream no longer holds messages after the logged position: their events were never applied (docs/runbooks.md, BacklogdSourceMessagesMissed)"
        );
    }
    *missed_through = bounds.counted_through;
    Ok(after)
}

fn consumer_error(config: &NatsConfig, e: &dyn std::fmt::Display) -> SourceError {
    SourceError::Consumer {
        durable: config.durable.clone(),
        message: e.to_string(),
    }
}

/// The durable pull consumer, starting right after `after`.
async fn create_consumer(
    config: &NatsConfig,
    stream: &jetstream::stream::Stream,
    after: u64,
) -> Result<jetstream::consumer::Consumer<pull::Config>, SourceError> {
    let deliver_policy = if after == 0 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        }
    };
    // A durable consumer's start cannot be changed in place: it is recreated at every session.
    if let Err(error) = stream.delete_consumer(&config.durable).await {
        tracing::debug!(%error, durable = %config.durable, "no consumer to delete");
    }
    stream
        .create_consumer(pull::Config {
            durable_name: Some(config.durable.clone()),
            deliver_policy,
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_ack_pending: i64::try_from(config.max_in_flight).unwrap_or(i64::MAX),
            // One subject can be a filter on a 2.9 server; several need 2.10 (filter_subjects),
            // so then the consumer reads the whole stream (docs/scaling.md).
            filter_subject: match config.subjects.as_slice() {
                [one] => one.clone(),
                _ => String::new(),
            },
            ..Default::default()
        })
        .await
        .map_err(|e| consumer_error(config, &e))
}

/// What the stream's first and last sequence say about the messages after the logged position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bounds {
    first: u64,
    last: u64,
    /// The stream ends before the logged position: purged and recreated (sequences restarted).
    behind: bool,
    /// Messages after the logged position the stream no longer holds, not counted before.
    missed: u64,
    /// The last sequence counted as missed so far.
    counted_through: u64,
}

/// The stream's bounds against the logged position `after` (0: nothing logged), with the
/// sequences up to `counted_through` already counted as missed by this process. An empty stream
/// reports first = last = 0, a purged one first = last + 1.
fn check_bounds(after: u64, first: u64, last: u64, counted_through: u64) -> Bounds {
    let behind = after > 0 && last < after;
    let gone_through = first.saturating_sub(1);
    let from = after.max(counted_through);
    let missed = if behind {
        0
    } else {
        gone_through.saturating_sub(from)
    };
    Bounds {
        first,
        last,
        behind,
        missed,
        counted_through: if behind {
            counted_through
        } else {
            counted_through.max(gone_through)
        },
    }
}

/// Parses a message like an HTTP body (NDJSON unless its `Content-Type` header names another
/// format) and sends it to the engine with its position; waits while the source's share of the
/// engine's queue (`share`, given back once answered) or the queue itself is full.
async fn hand_over(
    config: &NatsConfig,
    engine: &EngineHandle,
    metrics: &SourceMetrics,
    message: jetstream::Message,
    sequence: u64,
    max_events: usize,
    share: OwnedSemaphorePermit,
) -> Result<InFlight, SourceError> {
    let body = message.message.payload.clone();
    let format = message
        .message
        .headers
        .as_ref()
        .and_then(|headers| headers.get("Content-Type"))
        .and_then(|value| BodyFormat::from_content_type(value.as_str()))
        .unwrap_or(BodyFormat::Ndjson);
    let (reply, answer) = oneshot::channel();
    let (mut batch, answer) =
        match engine::batch_from_body(body.clone(), format, "nats", reply, max_events) {
            Ok(batch) => (batch, answer),
            Err(error) => {
                // The body is not events at all: one rejection for the whole message.
                let (reply, answer) = oneshot::channel();
                let batch = engine::batch_of_refused_body(body.clone(), &error, "nats", reply);
                (batch, answer)
            }
        };
    if config.owned_partitions.len() < config.partitions as usize {
        // Only the owned partitions' events; the message's position is logged all the same.
        batch.items.retain(|(_, parsed)| {
            match partition::owner(parsed.as_ref().ok(), config.partitions) {
                partition::Owner::All => true,
                partition::Owner::Partition(p) => config.owned_partitions.binary_search(&p).is_ok(),
            }
        });
    }
    metrics
        .non_ascii_ids
        .observe(batch.items.iter().map(|(_, parsed)| parsed));
    batch.position = Some(SourcePosition {
        stream: config.stream.clone(),
        sequence,
    });
    let ranges = if config.dead_letter_subject.is_some() {
        batch.items.iter().map(|(range, _)| range.clone()).collect()
    } else {
        Vec::new()
    };
    engine
        .commands
        .send(Command::Ingest(batch))
        .await
        .map_err(|_| SourceError::EngineGone)?;
    Ok(InFlight {
        _queue_share: share,
        message,
        answer,
        sequence,
        body,
        ranges,
    })
}

/// Acks messages in order as the engine commits them; logs each rejected event with its id and
/// republishes it to the dead-letter subject (before the ack) when one is set.
async fn acknowledge(
    mut waiting: mpsc::Receiver<InFlight>,
    client: async_nats::Client,
    dead_letter: Option<String>,
    committed: Arc<AtomicU64>,
) -> Result<(), SourceError> {
    while let Some(item) = waiting.recv().await {
        let summary = match item.answer.await {
            Ok(IngestOutcome::Done(summary)) => summary,
            Ok(IngestOutcome::Unavailable(message)) => {
                return Err(SourceError::StoreFailed(message));
            }
            Err(_) => return Err(SourceError::EngineGone),
        };
        committed.store(item.sequence, Ordering::SeqCst);
        for (index, id, rejection) in &summary.rejected {
            tracing::warn!(
                stream_sequence = item.sequence,
                event_id = id.as_deref().unwrap_or("(unknown)"),
                reason = rejection.reason.as_str(),
                message = %rejection.message,
                "event from NATS rejected"
            );
            let (Some(subject), Some(range)) = (&dead_letter, item.ranges.get(*index)) else {
                continue;
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Backlogd-Reason", rejection.reason.as_str());
            headers.insert("Backlogd-Message", one_line(&rejection.message).as_str());
            headers.insert(
                "Backlogd-Stream-Sequence",
                item.sequence.to_string().as_str(),
            );
            let raw = item.body.slice(range.clone());
            if let Err(error) = client
                .publish_with_headers(subject.clone(), headers, raw)
                .await
            {
                tracing::error!(%error, %subject, "cannot publish a rejected event to the dead-letter subject");
            }
        }
        if dead_letter.is_some()
            && !summary.rejected.is_empty()
            && let Err(error) = client.flush().await
        {
            tracing::error!(%error, "cannot flush the dead-letter publications");
        }
        if let Err(error) = item.message.ack().await {
            // Not fatal: the message is redelivered and then acked as committed.
            tracing::debug!(%error, sequence = item.sequence, "ack failed");
        }
    }
    Ok(())
}

/// A header value: one line, bounded.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(512)
        .collect()
}

/// The engine's committed position of the stream source.
async fn committed_position(engine: &EngineHandle) -> Result<Option<SourcePosition>, SourceError> {
    let (reply, answer) = oneshot::channel();
    engine
        .commands
        .send(Command::StreamPosition { reply })
        .await
        .map_err(|_| SourceError::EngineGone)?;
    answer.await.map_err(|_| SourceError::EngineGone)
}

async fn connect(
    config: &NatsConfig,
    metrics: &SourceMetrics,
    consuming: Arc<AtomicBool>,
) -> Result<async_nats::Client, SourceError> {
    let connected = metrics.connected.clone();
    let url = config.url.clone();
    let mut options = async_nats::ConnectOptions::new()
        .name("backlogd")
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let connected = connected.clone();
            let consuming = consuming.clone();
            let url = url.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        if consuming.load(Ordering::SeqCst) {
                            connected.set(1);
                        }
                        tracing::info!(%url, "NATS connection (re)established");
                    }
                    async_nats::Event::Disconnected | async_nats::Event::Closed => {
                        connected.set(0);
                        tracing::warn!(%url, %event, "NATS connection lost; reconnecting");
                    }
                    other => tracing::warn!(%url, event = %other, "NATS client event"),
                }
            }
        });
    if let Some(path) = &config.credentials_file {
        options =
            options
                .credentials_file(path)
                .await
                .map_err(|source| SourceError::Credentials {
                    path: path.display().to_string(),
                    source,
                })?;
    }
    if let Some(path) = &config.tls_ca_file {
        options = options.add_root_certificates(path.clone());
    }
    options
        .connect(config.url.as_str())
        .await
        .map_err(|e| SourceError::Connect {
            url: config.url.clone(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::check_bounds;

    #[test]
    fn the_streams_bounds_against_the_logged_position() {
        // (after, first, last, counted_through) -> (behind, missed, counted_through)
        let cases = [
            // Nothing logged, a new empty stream; then one holding everything from 1.
            ((0, 0, 0, 0), (false, 0, 0)),
            ((0, 1, 40, 0), (false, 0, 0)),
            // Consumed through 5; the limits dropped 1..15 while the daemon was down: 6..15 gone.
            ((5, 16, 25, 0), (false, 10, 15)),
            // The same session again (a reconnection): counted already.
            ((5, 16, 25, 15), (false, 0, 15)),
            // Consumed through 25, then purged: nothing after 25 was lost.
            ((25, 26, 25, 15), (false, 0, 25)),
            // Consumed through 5, then purged at 25: 6..25 were never read.
            ((5, 26, 25, 0), (false, 20, 25)),
            // Recreated: the sequences restarted below the logged 25.
            ((25, 1, 2, 15), (true, 0, 15)),
            // Nothing logged yet and the stream already trimmed: 1..15 never read.
            ((0, 16, 25, 0), (false, 15, 15)),
        ];
        for ((after, first, last, counted), (behind, missed, through)) in cases {
            let bounds = check_bounds(after, first, last, counted);
            assert_eq!(
                (bounds.behind, bounds.missed, bounds.counted_through),
                (behind, missed, through),
                "after {after}, stream {first}..{last}, counted through {counted}"
            );
        }
    }
}
