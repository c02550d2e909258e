//! The durable store: the append-only event log that is the acknowledgement point, and the record
//! format of one logged event.
//!
//! A log record's payload is the event's arrival time (the engine's `now` when it was applied, i64
//! little-endian nanoseconds) followed by the event's raw JSON text exactly as received. Replay parses
//! the text again and applies it with the same arrival time, so the state after replay equals the
//! state before the restart.

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

/// Decodes a log record into (arrival time, raw JSON text), or `None` if it is not one.
pub fn decode_record(record: &[u8]) -> Option<(EpochNanos, &str)> {
    let (time, raw) = record.split_first_chunk::<8>()?;
    Some((i64::from_le_bytes(*time), std::str::from_utf8(raw).ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn record_round_trip() {
        let record = super::encode_record(-5, b"{\"id\":\"x\"}");
        assert_eq!(super::decode_record(&record), Some((-5, "{\"id\":\"x\"}")));
        assert_eq!(super::decode_record(b"short"), None);
    }
}
