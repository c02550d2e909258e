//! The durable store: the append-only event log that is the acknowledgement point, and the record
//! format of one logged event.
//!
//! A log record's payload is the event's arrival time (the engine's `now` when it was applied, i64
//! little-endian nanoseconds) followed by the event's raw JSON text exactly as received. Replay parses
//! the text again and applies it with the same arrival time, so the state after replay equals the
//! state before the restart.
//!
//! A settings record marks a change of the configuration in force (a reload, or a start with an
//! edited file): its time, a NUL byte (an event's JSON never starts with one), then the
//! configuration source (`config::ConfigSource` as JSON). Replay switches to those settings at that
//! point, so the log tail is replayed under the settings it was applied with.
//!
//! A source position record follows the events of a stream source's messages (NATS JetStream) in
//! the same commit group, once per group for the group's last message: its time, a 0x01 byte, the stream sequence (u64
//! little-endian) and the stream name. Recovery keeps the last one, and the source resumes after
//! it, so a message is never applied after a later one. Logs written before it existed simply
//! have none.

#[cfg(test)]
pub(crate) mod faulty;
pub mod log;
pub mod snapshot;
pub mod storage;

use crate::core::EpochNanos;

/// Encodes one applied event for the log.
pub fn encode_record(arrival: EpochNanos, raw_json: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(8 + raw_json.len());
    record.extend_from_slice(&arrival.to_le_bytes());
    record.extend_from_slice(raw_json);
    record
}

/// Encodes a settings record: from here on, replay applies events under `source`.
pub fn encode_settings(at: EpochNanos, source: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(9 + source.len());
    record.extend_from_slice(&at.to_le_bytes());
    record.push(SETTINGS_TAG);
    record.extend_from_slice(source);
    record
}

const SETTINGS_TAG: u8 = 0;
const POSITION_TAG: u8 = 1;

/// How far a stream source is committed: the stream and the sequence of its last message whose
/// events are in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePosition {
    pub stream: String,
    pub sequence: u64,
}

impl SourcePosition {
    /// The position's bytes (sequence little-endian, then the stream name), as stored in a
    /// position record and in a snapshot.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(8 + self.stream.len());
        bytes.extend_from_slice(&self.sequence.to_le_bytes());
        bytes.extend_from_slice(self.stream.as_bytes());
        bytes
    }

    /// The inverse of `to_bytes`; `None` for bytes that are not a position.
    pub fn from_bytes(bytes: &[u8]) -> Option<SourcePosition> {
        let (sequence, stream) = bytes.split_first_chunk::<8>()?;
        Some(SourcePosition {
            stream: std::str::from_utf8(stream).ok()?.to_owned(),
            sequence: u64::from_le_bytes(*sequence),
        })
    }
}

/// Encodes a source position record: the events logged before it include every event of the
/// stream up to `position.sequence`.
pub fn encode_position(at: EpochNanos, position: &SourcePosition) -> Vec<u8> {
    let mut record = Vec::with_capacity(17 + position.stream.len());
    record.extend_from_slice(&at.to_le_bytes());
    record.push(POSITION_TAG);
    record.extend_from_slice(&position.to_bytes());
    record
}

/// One decoded log record.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// An applied event: its arrival time and raw JSON text.
    Event { arrival: EpochNanos, raw: &'a str },
    /// The configuration in force from here on (a `config::ConfigSource` as JSON), switched to
    /// at `at` (the engine's clock when the reload was made: replay advances to it first).
    Settings { at: EpochNanos, source: &'a [u8] },
    /// A stream source committed up to here.
    Position(SourcePosition),
}

/// Decodes a log record, or `None` if it is not one.
pub fn decode_record(record: &[u8]) -> Option<Record<'_>> {
    let (time, rest) = record.split_first_chunk::<8>()?;
    match rest.split_first() {
        Some((&SETTINGS_TAG, source)) => Some(Record::Settings {
            at: i64::from_le_bytes(*time),
            source,
        }),
        Some((&POSITION_TAG, position)) => {
            SourcePosition::from_bytes(position).map(Record::Position)
        }
        _ => Some(Record::Event {
            arrival: i64::from_le_bytes(*time),
            raw: std::str::from_utf8(rest).ok()?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::Record;

    #[test]
    fn record_round_trip() {
        let record = super::encode_record(-5, b"{\"id\":\"x\"}");
        assert_eq!(
            super::decode_record(&record),
            Some(Record::Event {
                arrival: -5,
                raw: "{\"id\":\"x\"}"
            })
        );
        assert_eq!(super::decode_record(b"short"), None);
        let settings = super::encode_settings(7, b"{\"text\":\"\"}");
        assert_eq!(
            super::decode_record(&settings),
            Some(Record::Settings {
                at: 7,
                source: b"{\"text\":\"\"}"
            })
        );
        let position = super::SourcePosition {
            stream: "CASES".to_owned(),
            sequence: u64::MAX - 1,
        };
        assert_eq!(
            super::decode_record(&super::encode_position(3, &position)),
            Some(Record::Position(position))
        );
        // A position record cut short is not a record, never a wrong position.
        assert_eq!(super::decode_record(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 7]), None);
    }
}
