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

#[cfg(test)]
mod faulty;
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

/// One decoded log record.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// An applied event: its arrival time and raw JSON text.
    Event { arrival: EpochNanos, raw: &'a str },
    /// The configuration in force from here on (a `config::ConfigSource` as JSON).
    Settings { source: &'a [u8] },
}

/// Decodes a log record, or `None` if it is not one.
pub fn decode_record(record: &[u8]) -> Option<Record<'_>> {
    let (time, rest) = record.split_first_chunk::<8>()?;
    match rest.split_first() {
        Some((&SETTINGS_TAG, source)) => Some(Record::Settings { source }),
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
                source: b"{\"text\":\"\"}"
            })
        );
    }
}
