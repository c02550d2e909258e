//! Publishing events to NATS JetStream (`backlogd send --nats`, `backlogd simulate --nats`): one
//! message per event, with the `Nats-Msg-Id` header set to the event id so that JetStream drops a
//! re-published duplicate within its duplicate window (and backlogd's own dedup drops it later
//! anyway). Every publish acknowledgement is awaited: a zero exit means the stream holds every
//! event.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture};
use bytes::Bytes;

/// Publications awaiting their acknowledgement at most.
const WINDOW: usize = 1024;

/// What was published.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Stored by JetStream.
    pub stored: u64,
    /// Dropped by JetStream as duplicates of an earlier message with the same `Nats-Msg-Id`.
    pub duplicates: u64,
}

/// Why publishing stopped.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot connect to {url}: {error}")]
    Connect {
        url: String,
        error: async_nats::ConnectError,
    },
    /// A publication was not sent, or JetStream did not acknowledge it.
    #[error("cannot publish to {subject}: {error}")]
    Publish {
        subject: String,
        error: jetstream::context::PublishError,
    },
}

/// Publishes each line (one event's JSON) to `subject` on the server at `url`, waiting for every
/// acknowledgement. Lines without a readable `id` are published without the header (backlogd will
/// reject them like over HTTP).
pub fn publish_lines(
    url: &str,
    subject: &str,
    lines: impl Iterator<Item = String>,
) -> Result<Published, PublishError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PublishError::Runtime)?;
    runtime.block_on(publish(url, subject, lines))
}

async fn publish(
    url: &str,
    subject: &str,
    lines: impl Iterator<Item = String>,
) -> Result<Published, PublishError> {
    let failed = |error| PublishError::Publish {
        subject: subject.to_owned(),
        error,
    };
    let client = async_nats::ConnectOptions::new()
        .name("backlogd-publish")
        .connection_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|error| PublishError::Connect {
            url: url.to_owned(),
            error,
        })?;
    let context = jetstream::new(client);
    let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(WINDOW);
    let mut published = Published::default();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let mut headers = async_nats::HeaderMap::new();
        if let Some(id) = event_id(&line) {
            headers.insert("Nats-Msg-Id", id.as_str());
        }
        if pending.len() >= WINDOW
            && let Some(ack) = pending.pop_front()
        {
            count(&mut published, ack.await.map_err(failed)?);
        }
        let ack = context
            .publish_with_headers(subject.to_owned(), headers, Bytes::from(line))
            .await
            .map_err(failed)?;
        pending.push_back(ack);
    }
    while let Some(ack) = pending.pop_front() {
        count(&mut published, ack.await.map_err(failed)?);
    }
    Ok(published)
}

fn count(published: &mut Published, ack: jetstream::publish::PublishAck) {
    if ack.duplicate {
        published.duplicates += 1;
    } else {
        published.stored += 1;
    }
}

/// The `id` of an event's JSON, if it has a string one.
fn event_id(line: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_str::<Id>(line).ok().map(|event| event.id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_ids_are_read_from_the_json() {
        assert_eq!(
            super::event_id(r#"{"type":"x","id":"e-1","data":{}}"#).as_deref(),
            Some("e-1")
        );
        assert_eq!(super::event_id(r#"{"id":7}"#), None);
        assert_eq!(super::event_id("not json"), None);
    }
}
