//! Arbitrary bytes as the last segment file of an event-log directory, then `EventLog::open_with`
//! on it (an in-memory `Storage`, `backlogd_fuzz::mem_storage`). It must return Ok, or
//! `LogError::Corrupt` (the storage never fails, and replay accepts every record), without panicking.
//!
//! The first three bytes shape the directory; the rest is the segment's content:
//! * byte 0, bits 0–1: the content as is; the `BLGDLOG1` header then the content; the header,
//!   then frames with correct CRCs cut from the content (a length byte, that many payload bytes,
//!   until a length byte of 0), then the rest as a raw tail; or a prefix of the header (byte 2 says
//!   how long) then the content (the torn-header case);
//! * byte 0, bits 2–3: how many complete, valid segments come before it (0–3);
//! * byte 0, bit 4: the first of them is missing (a gap);
//! * byte 0, bit 5: after a successful open, append and commit one record;
//! * byte 1: the replay position (see `replay_from`); byte 2: its offset and the segment size.
//!
//! After a successful open: records come in log order, at or after the replay position; opening
//! again (after the optional append) succeeds, replays the same records (and the appended one), and
//! repairs nothing more: the first open left a clean log.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use backlogd::store::log::{Durability, EventLog, LogError, LogPosition, MAX_PAYLOAD_BYTES};
use backlogd::store::storage::Storage;
use backlogd_fuzz::mem_storage::MemStorage;
use libfuzzer_sys::fuzz_target;

const MAGIC: &[u8; 8] = b"BLGDLOG1";

fn frame(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(backlogd::store::log::segment_file_name(segment))
}

type Records = Vec<(LogPosition, Vec<u8>)>;

fn open(
    storage: &MemStorage,
    dir: &Path,
    from: LogPosition,
    segment_bytes: u64,
) -> (Result<EventLog, LogError>, Records) {
    let mut records = Vec::new();
    let storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let result = EventLog::open_with(
        storage,
        dir,
        from,
        segment_bytes,
        &mut |position, payload| {
            records.push((position, payload.to_vec()));
            Ok(())
        },
    );
    (result, records)
}

/// Every segment file's bytes, in order.
fn files(storage: &MemStorage, dir: &Path, last: u64) -> Vec<Option<Vec<u8>>> {
    (1..=last + 2)
        .map(|n| storage.get(&segment_path(dir, n)))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let [flags, replay, param, content @ ..] = data else {
        return;
    };
    let (flags, replay, param) = (*flags, *replay, *param);
    let earlier = u64::from(flags >> 2 & 3);
    let last = earlier + 1;
    let dir = Path::new("/fuzz/log");
    let storage = MemStorage::new();

    for n in 1..=earlier {
        if n == 1 && flags & 0x10 != 0 {
            continue;
        }
        let mut bytes = MAGIC.to_vec();
        bytes.extend(frame(format!("earlier {n} a").as_bytes()));
        if n % 2 == 0 {
            bytes.extend(frame(format!("earlier {n} b").as_bytes()));
        }
        storage.put(&segment_path(dir, n), bytes);
    }

    let mut bytes = Vec::with_capacity(content.len() + 8);
    match flags & 3 {
        0 => bytes.extend_from_slice(content),
        1 => {
            bytes.extend_from_slice(MAGIC);
            bytes.extend_from_slice(content);
        }
        2 => {
            bytes.extend_from_slice(MAGIC);
            let mut rest = content;
            while let [len, tail @ ..] = rest {
                let len = usize::from(*len);
                if len == 0 || tail.len() < len {
                    rest = tail;
                    break;
                }
                bytes.extend(frame(&tail[..len]));
                rest = &tail[len..];
            }
            bytes.extend_from_slice(rest);
        }
        _ => {
            bytes.extend_from_slice(&MAGIC[..usize::from(param) % (MAGIC.len() + 1)]);
            bytes.extend_from_slice(content);
        }
    }
    storage.put(&segment_path(dir, last), bytes);

    let replay_from = match replay % 8 {
        0 | 1 => LogPosition::default(),
        2 => LogPosition {
            segment: 1,
            offset: 0,
        },
        3 => LogPosition {
            segment: 1,
            offset: 8,
        },
        4 => LogPosition {
            segment: last,
            offset: 8,
        },
        5 => LogPosition {
            segment: last,
            offset: u64::from(param),
        },
        6 => LogPosition {
            segment: last,
            offset: u64::from(replay) * 4 + u64::from(param),
        },
        _ => LogPosition {
            segment: last + u64::from(param % 2),
            offset: 8,
        },
    };
    let segment_bytes = 9 + u64::from(param) * 8;

    let (result, records) = open(&storage, dir, replay_from, segment_bytes);
    let mut log = match result {
        Ok(log) => log,
        Err(LogError::Corrupt { .. }) => return,
        Err(other) => panic!("open failed with something other than Corrupt: {other}"),
    };
    let end = log.end();
    for pair in records.windows(2) {
        assert!(pair[0].0 < pair[1].0, "records out of order: {pair:?}");
    }
    for (position, payload) in &records {
        assert!(
            *position >= replay_from && *position < end,
            "{position} outside {replay_from}..{end}"
        );
        assert!(!payload.is_empty() && payload.len() <= MAX_PAYLOAD_BYTES);
    }

    let mut expected = records.clone();
    if flags & 0x20 != 0 {
        let payload = b"fuzz appended record";
        let position = log.append(payload).expect("append after a clean open");
        log.commit(Durability::None)
            .expect("commit to memory cannot fail");
        expected.push((position, payload.to_vec()));
    }
    drop(log);
    let before = files(&storage, dir, last);
    let (again, records_again) = open(&storage, dir, replay_from, segment_bytes);
    if let Err(e) = again {
        panic!("a log that opened (and was repaired) does not open again: {e}");
    }
    assert_eq!(
        records_again, expected,
        "the second open replays other records"
    );
    assert_eq!(
        files(&storage, dir, last),
        before,
        "the second open repaired something again"
    );
});
