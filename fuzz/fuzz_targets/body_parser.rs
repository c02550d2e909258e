//! Arbitrary bytes through `wire::parse_body` in each `BodyFormat`, with a small `max_events`. The
//! first byte picks the format and the limit; the rest is the body. Besides never panicking: a body
//! that is split is split into at most `max_events` items, each item's raw text is a slice of the
//! body, NDJSON items are single non-blank lines, and `TooManyEvents` names the limit it was given.
#![no_main]

use backlogd::wire::{BodyError, BodyFormat, parse_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let format = match control % 3 {
        0 => BodyFormat::Ndjson,
        1 => BodyFormat::Array,
        _ => BodyFormat::Single,
    };
    let max_events = usize::from(control / 3 % 8) + 1;
    let range = body.as_ptr_range();
    match parse_body(format, body, max_events) {
        Ok(items) => {
            assert!(
                items.len() <= max_events,
                "{} items > limit {max_events}",
                items.len()
            );
            if format == BodyFormat::Single {
                assert_eq!(items.len(), 1);
            }
            for item in &items {
                let raw = item.raw.as_bytes().as_ptr_range();
                assert!(
                    range.start <= raw.start && raw.end <= range.end,
                    "an item's raw text is not a slice of the body"
                );
                if format == BodyFormat::Ndjson {
                    assert!(!item.raw.contains('\n') && !item.raw.trim().is_empty());
                }
            }
        }
        Err(BodyError::TooManyEvents { limit }) => {
            assert_eq!(limit, max_events);
            assert_ne!(
                format,
                BodyFormat::Single,
                "one event can never be too many"
            );
            if format == BodyFormat::Ndjson {
                let text = std::str::from_utf8(body).expect("counted, so valid UTF-8");
                let lines = text.split('\n').filter(|l| !l.trim().is_empty()).count();
                assert!(
                    lines > max_events,
                    "{lines} lines refused as more than {max_events}"
                );
            }
        }
        Err(BodyError::Malformed(message)) => {
            assert!(!message.is_empty());
            if format == BodyFormat::Ndjson {
                assert!(
                    std::str::from_utf8(body).is_err(),
                    "NDJSON is only refused as malformed when it is not UTF-8"
                );
            }
        }
    }
});
