use super::scan::{CHECKSUMMED, find_valid_frame};
use super::*;
use std::fs::{self, File, OpenOptions};
use std::io::Write;

type Records = Vec<(LogPosition, Vec<u8>)>;

fn open_collect(
    dir: &Path,
    from: LogPosition,
    segment_bytes: u64,
) -> Result<(EventLog, Records), LogError> {
    let mut records = Vec::new();
    let log = EventLog::open(dir, from, segment_bytes, &mut |position, payload| {
        records.push((position, payload.to_vec()));
        Ok(())
    })?;
    Ok((log, records))
}

fn open_all(dir: &Path, segment_bytes: u64) -> (EventLog, Records) {
    open_collect(dir, LogPosition::default(), segment_bytes).expect("open")
}

/// Deterministic payloads of varying length (1..=97 bytes), distinct per index.
fn payload(i: usize) -> Vec<u8> {
    let len = 1 + (i * 37) % 97;
    let mut p = format!("{i}:").into_bytes();
    p.resize(len.max(p.len()), b'a' + (i % 26) as u8);
    p
}

fn pos(segment: u64, offset: u64) -> LogPosition {
    LogPosition { segment, offset }
}

fn seg(dir: &Path, n: u64) -> PathBuf {
    segment_path(dir, n)
}

fn segment_numbers(dir: &Path) -> Vec<u64> {
    list_segments(&RealStorage, dir).unwrap()
}

/// Appends `payloads`, commits, returns their positions.
fn write_all(log: &mut EventLog, payloads: &[Vec<u8>], durability: Durability) -> Vec<LogPosition> {
    let positions = payloads.iter().map(|p| log.append(p).unwrap()).collect();
    log.commit(durability).unwrap();
    positions
}

fn expect_corrupt(result: Result<(EventLog, Records), LogError>) -> (PathBuf, u64, String, String) {
    match result {
        Err(error @ LogError::Corrupt { .. }) => {
            let message = error.to_string();
            let LogError::Corrupt {
                path,
                offset,
                reason,
            } = error
            else {
                unreachable!()
            };
            (path, offset, reason, message)
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok((_, records)) => panic!("expected Corrupt, opened with {} records", records.len()),
    }
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    Write::write_all(&mut file, bytes).unwrap();
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn record_encoding_matches_the_documented_format() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open_all(tmp.path(), 1 << 20);
    assert_eq!(log.append(b"hello").unwrap(), pos(1, 8));
    assert_eq!(log.append(b"world!").unwrap(), pos(1, 21));
    assert_eq!(log.commit(Durability::Fsync).unwrap(), pos(1, 35));

    let mut expected = b"BLGDLOG1".to_vec();
    for p in [&b"hello"[..], &b"world!"[..]] {
        let len = (p.len() as u32).to_le_bytes();
        let mut covered = len.to_vec();
        covered.extend_from_slice(p);
        expected.extend_from_slice(&len);
        expected.extend_from_slice(&crc32c::crc32c(&covered).to_le_bytes());
        expected.extend_from_slice(p);
    }
    assert_eq!(
        fs::read(tmp.path().join("00000000000000000001.log")).unwrap(),
        expected
    );
    // The standard CRC32C check value, to be sure the right polynomial is in use.
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn open_creates_directory_and_first_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/log");
    let (log, records) = open_all(&dir, 1024);
    assert!(records.is_empty());
    assert_eq!(log.end(), pos(1, 8));
    assert_eq!(log.disk_bytes(), 8);
    assert_eq!(fs::read(seg(&dir, 1)).unwrap(), b"BLGDLOG1");
    drop(log);
    // Header-only segment reopens cleanly, from the beginning and from its start/end.
    for from in [pos(0, 0), pos(1, 0), pos(1, 8)] {
        let (log, records) = open_collect(&dir, from, 1024).unwrap();
        assert!(records.is_empty());
        assert_eq!(log.end(), pos(1, 8));
    }
    assert_eq!(segment_numbers(&dir), vec![1]);
}

#[test]
fn round_trip_across_segment_rolls_and_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let payloads: Vec<Vec<u8>> = (0..2000).map(payload).collect();
    let (mut log, _) = open_all(dir, 512);
    let mut positions = Vec::new();
    for (batch, chunk) in payloads[..1000].chunks(37).enumerate() {
        let durability = if batch % 2 == 0 {
            Durability::None
        } else {
            Durability::Fsync
        };
        positions.extend(write_all(&mut log, chunk, durability));
    }
    let end_before = log.end();
    let disk_before = log.disk_bytes();
    drop(log);

    let (mut log, records) = open_all(dir, 512);
    assert_eq!(log.end(), end_before);
    assert_eq!(log.disk_bytes(), disk_before);
    assert_eq!(records.len(), 1000);
    for (i, (position, bytes)) in records.iter().enumerate() {
        assert_eq!(*position, positions[i], "record {i}");
        assert_eq!(bytes, &payloads[i], "record {i}");
    }
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    let segments = segment_numbers(dir);
    assert!(
        segments.len() > 10,
        "expected many segments, got {}",
        segments.len()
    );
    assert_eq!(segments, (1..=segments.len() as u64).collect::<Vec<_>>());
    let on_disk: u64 = segments.iter().map(|&n| file_len(&seg(dir, n))).sum();
    assert_eq!(on_disk, disk_before);

    // Append after reopen, reopen again: everything, in order.
    positions.extend(write_all(&mut log, &payloads[1000..], Durability::Fsync));
    drop(log);
    let (log, records) = open_all(dir, 512);
    assert_eq!(records.len(), 2000);
    assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), positions);
    assert_eq!(
        records.into_iter().map(|r| r.1).collect::<Vec<_>>(),
        payloads
    );
    assert_eq!(log.end(), log.tail);
}

#[test]
fn roll_happens_before_a_record_that_would_start_at_or_past_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open_all(tmp.path(), 100);
    let p = [7u8; 32]; // 40-byte frames
    let positions: Vec<_> = (0..5).map(|_| log.append(&p).unwrap()).collect();
    assert_eq!(
        positions,
        vec![pos(1, 8), pos(1, 48), pos(1, 88), pos(2, 8), pos(2, 48)]
    );
    // Nothing written before commit.
    assert_eq!(file_len(&seg(tmp.path(), 1)), 8);
    assert!(!seg(tmp.path(), 2).exists());
    assert_eq!(log.commit(Durability::None).unwrap(), pos(2, 88));
    assert_eq!(file_len(&seg(tmp.path(), 1)), 128);
    assert_eq!(file_len(&seg(tmp.path(), 2)), 88);
    assert_eq!(log.disk_bytes(), 216);
    // A segment ending exactly at the limit rolls too; a record is always placed, even when
    // it alone exceeds the limit.
    drop(log);
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open_all(tmp.path(), 48);
    assert_eq!(log.append(&p).unwrap(), pos(1, 8));
    assert_eq!(log.append(&p).unwrap(), pos(2, 8));
    assert_eq!(log.append(&[1u8; 500]).unwrap(), pos(3, 8));
    assert_eq!(log.append(&p).unwrap(), pos(4, 8));
    assert_eq!(log.commit(Durability::Fsync).unwrap(), pos(4, 48));
}

#[test]
fn one_commit_can_span_many_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open_all(tmp.path(), 1);
    let payloads: Vec<_> = (0..50).map(payload).collect();
    let positions = write_all(&mut log, &payloads, Durability::Fsync);
    assert_eq!(positions, (1..=50).map(|n| pos(n, 8)).collect::<Vec<_>>());
    assert_eq!(segment_numbers(tmp.path()), (1..=50).collect::<Vec<_>>());
    drop(log);
    let (log, records) = open_all(tmp.path(), 1);
    assert_eq!(
        records.into_iter().map(|r| r.1).collect::<Vec<_>>(),
        payloads
    );
    assert_eq!(log.end(), pos(50, 8 + 8 + payloads[49].len() as u64));
}

#[test]
fn replay_from_a_record_a_segment_start_or_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let payloads: Vec<_> = (0..300).map(payload).collect();
    let (mut log, _) = open_all(dir, 400);
    let positions = write_all(&mut log, &payloads, Durability::None);
    let end = log.end();
    drop(log);

    for k in [0, 1, 77, 150, 299] {
        let (log, records) = open_collect(dir, positions[k], 400).unwrap();
        assert_eq!(records.len(), 300 - k, "from record {k}");
        assert_eq!(records[0], (positions[k], payloads[k].clone()));
        assert_eq!(records.last().unwrap().1, payloads[299]);
        assert_eq!(log.end(), end);
    }
    // A segment's start (offset 0 or 8) replays that whole segment.
    let k = positions.iter().position(|p| p.segment == 5).unwrap();
    for offset in [0, 8] {
        let (_, records) = open_collect(dir, pos(5, offset), 400).unwrap();
        assert_eq!(records.len(), 300 - k);
        assert_eq!(records[0].0, pos(5, 8));
    }
    // The end position replays nothing.
    let (log, records) = open_collect(dir, end, 400).unwrap();
    assert!(records.is_empty());
    assert_eq!(log.end(), end);
    drop(log);
    // The end of a non-last segment is a valid replay position too.
    let last_in_4 = positions.iter().rposition(|p| p.segment == 4).unwrap();
    let end_of_4 = pos(4, file_len(&seg(dir, 4)));
    assert!(end_of_4 > positions[last_in_4]);
    let (_, records) = open_collect(dir, end_of_4, 400).unwrap();
    assert_eq!(records.len(), 300 - k);
}

#[test]
fn replay_positions_that_do_not_fit_the_log_are_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 200);
    let positions = write_all(
        &mut log,
        &(0..20).map(payload).collect::<Vec<_>>(),
        Durability::None,
    );
    let end = log.end();
    drop(log);

    let inside = pos(positions[3].segment, positions[3].offset + 1);
    let (path, offset, reason, _) = expect_corrupt(open_collect(dir, inside, 200));
    assert_eq!((path, offset), (seg(dir, inside.segment), inside.offset));
    assert!(reason.contains("inside a record"), "{reason}");

    let past = pos(end.segment, end.offset + 8);
    let (path, offset, reason, _) = expect_corrupt(open_collect(dir, past, 200));
    assert_eq!((path, offset), (seg(dir, end.segment), past.offset));
    assert!(reason.contains("beyond the end"), "{reason}");

    let (path, _, reason, _) = expect_corrupt(open_collect(dir, pos(end.segment + 1, 8), 200));
    assert_eq!(path, seg(dir, end.segment + 1));
    assert!(reason.contains("beyond the newest segment"), "{reason}");

    let empty = tmp.path().join("empty");
    expect_corrupt(open_collect(&empty, pos(2, 8), 200));
    expect_corrupt(open_collect(&empty, pos(1, 50), 200));
    // A rejected open repaired nothing and still leaves the log usable.
    let (_, records) = open_all(dir, 200);
    assert_eq!(records.len(), 20);
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let payloads: Vec<_> = (0..8).map(|i| vec![b'x' + i as u8; 20 + i]).collect();
    let (mut log, _) = open_all(dir, 1 << 20);
    let positions = write_all(&mut log, &payloads, Durability::Fsync);
    let full_end = log.end().offset;
    drop(log);
    let original = fs::read(seg(dir, 1)).unwrap();
    let last_start = positions[7].offset;

    for cut in last_start..full_end {
        fs::write(seg(dir, 1), &original[..cut as usize]).unwrap();
        let (mut log, records) = open_all(dir, 1 << 20);
        assert_eq!(records.len(), 7, "cut at {cut}");
        assert_eq!(
            records.iter().map(|r| &r.1).collect::<Vec<_>>(),
            payloads[..7].iter().collect::<Vec<_>>()
        );
        assert_eq!(log.end(), pos(1, last_start), "cut at {cut}");
        assert_eq!(file_len(&seg(dir, 1)), last_start, "truncated at {cut}");
        assert_eq!(log.disk_bytes(), last_start);
        assert_eq!(log.append(b"after").unwrap(), pos(1, last_start));
        log.commit(Durability::Fsync).unwrap();
        drop(log);
        let (log, records) = open_all(dir, 1 << 20);
        assert_eq!(records.len(), 8, "cut at {cut}");
        assert_eq!(records[7], (pos(1, last_start), b"after".to_vec()));
        assert_eq!(log.end(), pos(1, last_start + 13));
    }
}

#[test]
fn torn_header_of_a_new_last_segment_is_reset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 30);
    write_all(&mut log, &[vec![1; 30]], Durability::Fsync);
    drop(log);
    let mut variants: Vec<Vec<u8>> = (0..8).map(|k| MAGIC[..k].to_vec()).collect();
    variants.push(vec![0; 8]);
    variants.push(vec![0; 5000]);
    let mut long = MAGIC[..3].to_vec();
    long.resize(100, 0);
    variants.push(long);
    for content in variants {
        fs::write(seg(dir, 2), &content).unwrap();
        let (mut log, records) = open_all(dir, 30);
        assert_eq!(records.len(), 1, "{content:?}");
        assert_eq!(log.end(), pos(2, 8));
        assert_eq!(fs::read(seg(dir, 2)).unwrap(), MAGIC);
        assert_eq!(log.append(b"z").unwrap(), pos(2, 8));
        log.commit(Durability::Fsync).unwrap();
        drop(log);
        let (_, records) = open_all(dir, 30);
        assert_eq!(records.last().unwrap(), &(pos(2, 8), b"z".to_vec()));
    }
    // Non-zero bytes after a magic prefix, or a wrong magic, are not a torn header.
    for content in [
        b"BLG\0\0x".to_vec(),
        b"XLGDLOG1".to_vec(),
        b"BLGDLOG2\0\0\0\0".to_vec(),
    ] {
        fs::write(seg(dir, 2), &content).unwrap();
        let (path, offset, reason, _) = expect_corrupt(open_collect(dir, pos(0, 0), 30));
        assert_eq!((path, offset), (seg(dir, 2), 0));
        assert!(reason.contains("header"), "{reason}");
    }
    // A torn header in a segment with a successor is corrupt.
    fs::write(seg(dir, 2), MAGIC).unwrap();
    fs::write(seg(dir, 1), &MAGIC[..4]).unwrap();
    let (path, offset, _, _) = expect_corrupt(open_collect(dir, pos(0, 0), 30));
    assert_eq!((path, offset), (seg(dir, 1), 0));
}

#[test]
fn crc_mismatch_at_the_last_record_is_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 1 << 20);
    let positions = write_all(
        &mut log,
        &(0..10).map(payload).collect::<Vec<_>>(),
        Durability::Fsync,
    );
    drop(log);
    for target in [
        positions[9].offset + 4,
        positions[9].offset + 9,
        file_len(&seg(dir, 1)) - 1,
    ] {
        let original = fs::read(seg(dir, 1)).unwrap();
        flip_byte(&seg(dir, 1), target);
        let (log, records) = open_all(dir, 1 << 20);
        assert_eq!(records.len(), 9, "flipped byte {target}");
        assert_eq!(log.end(), positions[9]);
        drop(log);
        fs::write(seg(dir, 1), original).unwrap();
    }
}

#[test]
fn crc_flip_in_the_middle_of_the_last_segment_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 1 << 20);
    let positions = write_all(
        &mut log,
        &(0..10).map(payload).collect::<Vec<_>>(),
        Durability::Fsync,
    );
    drop(log);
    let before = fs::read(seg(dir, 1)).unwrap();
    flip_byte(&seg(dir, 1), positions[4].offset + 10);
    let (path, offset, reason, message) = expect_corrupt(open_collect(dir, pos(0, 0), 1 << 20));
    assert_eq!(path, seg(dir, 1));
    assert_eq!(offset, positions[4].offset);
    assert!(reason.contains("CRC mismatch"), "{reason}");
    assert!(
        reason.contains(&format!(
            "valid record follows at offset {}",
            positions[5].offset
        )),
        "{reason}"
    );
    assert!(message.contains("00000000000000000001.log"), "{message}");
    assert!(
        message.contains(&format!("offset {}", positions[4].offset)),
        "{message}"
    );
    // Nothing was repaired.
    let mut expected = before;
    expected[(positions[4].offset + 10) as usize] ^= 0x40;
    assert_eq!(fs::read(seg(dir, 1)).unwrap(), expected);
}

#[test]
fn corrupted_length_followed_by_valid_records_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 1 << 20);
    let positions = write_all(
        &mut log,
        &(0..10).map(payload).collect::<Vec<_>>(),
        Durability::Fsync,
    );
    drop(log);
    let original = fs::read(seg(dir, 1)).unwrap();
    // Length 0, a length beyond the file, and a length beyond the maximum.
    for len in [0u32, 1_000_000, u32::MAX] {
        let mut bytes = original.clone();
        let at = positions[2].offset as usize;
        bytes[at..at + 4].copy_from_slice(&len.to_le_bytes());
        fs::write(seg(dir, 1), &bytes).unwrap();
        let (path, offset, reason, _) = expect_corrupt(open_collect(dir, pos(0, 0), 1 << 20));
        assert_eq!(
            (path, offset),
            (seg(dir, 1), positions[2].offset),
            "{reason}"
        );
    }
    // Replay starting after the damage still scans (and rejects) the whole segment.
    expect_corrupt(open_collect(dir, positions[5], 1 << 20));
}

#[test]
fn bad_record_in_a_segment_with_a_successor_is_corrupt_even_at_its_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 200);
    let positions = write_all(
        &mut log,
        &(0..40).map(payload).collect::<Vec<_>>(),
        Durability::None,
    );
    drop(log);
    let last_in_2 = *positions.iter().rfind(|p| p.segment == 2).unwrap();
    // A truncated last record of segment 2 ...
    set_len(&seg(dir, 2), last_in_2.offset + 3);
    let (path, offset, reason, _) = expect_corrupt(open_collect(dir, pos(0, 0), 200));
    assert_eq!((path, offset), (seg(dir, 2), last_in_2.offset));
    assert!(reason.contains("successor"), "{reason}");
    // ... is irrelevant when replay starts after that segment.
    let (_, records) = open_collect(dir, pos(3, 0), 200).unwrap();
    assert_eq!(
        records.len(),
        positions.iter().filter(|p| p.segment >= 3).count()
    );
    // A zero-filled tail in a non-last segment is corrupt too.
    set_len(&seg(dir, 2), last_in_2.offset);
    append_bytes(&seg(dir, 2), &[0; 64]);
    let (path, offset, _, _) = expect_corrupt(open_collect(dir, pos(2, 0), 200));
    assert_eq!((path, offset), (seg(dir, 2), last_in_2.offset));
}

/// A log whose last segment has a zeroed frame followed by valid frames; returns the positions.
fn garbage_after_a_zeroed_frame(dir: &Path) -> Vec<LogPosition> {
    let (mut log, _) = open_all(dir, 400);
    let positions = write_all(
        &mut log,
        &(0..30).map(payload).collect::<Vec<_>>(),
        Durability::Fsync,
    );
    drop(log);
    let last = positions.last().unwrap().segment;
    assert!(last > 1);
    let in_last: Vec<_> = positions.iter().filter(|p| p.segment == last).collect();
    assert!(in_last.len() >= 3, "{in_last:?}");
    // Zero the second record of the last segment (its frame header and payload).
    let at = in_last[1].offset as usize;
    let end = in_last[2].offset as usize;
    let mut bytes = fs::read(seg(dir, last)).unwrap();
    bytes[at..end].fill(0);
    fs::write(seg(dir, last), bytes).unwrap();
    positions
}

#[test]
fn garbage_after_a_bad_frame_is_refused_naming_the_repair_and_repair_cuts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let positions = garbage_after_a_zeroed_frame(dir);
    let last = positions.last().unwrap().segment;
    let damaged = *positions
        .iter()
        .filter(|p| p.segment == last)
        .nth(1)
        .unwrap();
    let before = positions.iter().filter(|&&p| p < damaged).count();
    let file = format!("{last:020}.log");

    let (path, offset, _, message) = expect_corrupt(open_collect(dir, pos(0, 0), 400));
    assert_eq!((path, offset), (seg(dir, last), damaged.offset));
    let command = format!(
        "backlogd repair --store {} --truncate-at {file}:{}",
        dir.display(),
        damaged.offset
    );
    assert!(message.contains(&command), "{message}");

    let report = inspect(dir).unwrap();
    let damage = report.damage.clone().unwrap();
    assert_eq!(damage.position(), damaged);
    assert!(!damage.torn_tail && damage.in_last_segment);
    assert_eq!(report.records, before as u64);
    assert_eq!(damage.records_after, (positions.len() - before - 1) as u64);
    assert_eq!(
        damage.bytes_after,
        file_len(&seg(dir, last)) - damaged.offset
    );
    let text = report.to_string();
    assert!(text.contains(&command), "{text}");
    assert!(
        !damage.reason.contains("backlogd repair"),
        "{}",
        damage.reason
    );

    // Refused: elsewhere than the damage, and while the log is open.
    for wrong in [pos(last, damaged.offset + 1), pos(last - 1, damaged.offset)] {
        match truncate_tail(dir, wrong) {
            Err(LogError::Refused { reason }) => {
                assert!(
                    reason.contains(&format!("offset {}", damaged.offset)),
                    "{reason}"
                )
            }
            other => panic!("expected Refused, got {other:?}"),
        }
    }
    let tmp2 = tempfile::tempdir().unwrap();
    let (held, _) = open_all(tmp2.path(), 400);
    assert!(matches!(inspect(tmp2.path()), Err(LogError::Locked { .. })));
    assert!(matches!(
        truncate_tail(tmp2.path(), pos(1, 8)),
        Err(LogError::Locked { .. })
    ));
    drop(held);
    assert!(matches!(
        truncate_tail(tmp2.path(), pos(1, 8)),
        Err(LogError::Refused { .. })
    ));
    assert_eq!(inspect(tmp2.path()).unwrap().damage, None);

    let cut = truncate_tail(dir, damaged).unwrap();
    assert_eq!(cut.offset, damaged.offset);
    assert_eq!(cut.records_discarded, damage.records_after);
    assert_eq!(file_len(&seg(dir, last)), damaged.offset);
    let (log, records) = open_all(dir, 400);
    assert_eq!(records.len(), before);
    assert_eq!(
        records.into_iter().map(|r| r.1).collect::<Vec<_>>(),
        (0..before).map(payload).collect::<Vec<_>>()
    );
    assert_eq!(log.end(), damaged);
}

#[test]
fn inspect_reports_torn_tails_and_damage_in_older_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 200);
    let positions = write_all(
        &mut log,
        &(0..40).map(payload).collect::<Vec<_>>(),
        Durability::Fsync,
    );
    drop(log);
    let report = inspect(dir).unwrap();
    assert_eq!(report.records, 40);
    assert_eq!(report.damage, None);
    assert!(report.to_string().contains("no damage"));
    // A torn tail: open fixes it, repair may cut it too.
    let end = file_len(&seg(dir, positions[39].segment));
    append_bytes(&seg(dir, positions[39].segment), &[9, 0, 0, 0, 1]);
    let damage = inspect(dir).unwrap().damage.unwrap();
    assert!(damage.torn_tail);
    assert_eq!(damage.offset, end);
    assert_eq!(damage.bytes_after, 5);
    // Damage in an older segment: repair refuses.
    flip_byte(&seg(dir, 2), 12);
    let report = inspect(dir).unwrap();
    let damage = report.damage.clone().unwrap();
    assert_eq!((damage.segment, damage.offset), (2, 8));
    assert!(!damage.in_last_segment);
    assert!(!report.unscanned.is_empty());
    assert!(report.to_string().contains("restore from a backup"));
    assert!(matches!(
        truncate_tail(dir, damage.position()),
        Err(LogError::Refused { .. })
    ));
}

#[test]
fn zero_filled_tail_is_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 1 << 20);
    let payloads: Vec<_> = (0..10).map(payload).collect();
    write_all(&mut log, &payloads, Durability::Fsync);
    let end = log.end();
    drop(log);
    for zeros in [1usize, 7, 8, 4096, 3 * 1024 * 1024] {
        append_bytes(&seg(dir, 1), &vec![0; zeros]);
        let (log, records) = open_all(dir, 1 << 20);
        assert_eq!(
            records.into_iter().map(|r| r.1).collect::<Vec<_>>(),
            payloads,
            "{zeros} zeros"
        );
        assert_eq!(log.end(), end);
        assert_eq!(file_len(&seg(dir, 1)), end.offset);
        assert_eq!(log.disk_bytes(), end.offset);
    }
    // A torn record followed by zeros, too.
    append_bytes(&seg(dir, 1), &[5, 0, 0, 0, 1, 2]);
    append_bytes(&seg(dir, 1), &[0; 100]);
    let (log, records) = open_all(dir, 1 << 20);
    assert_eq!(records.len(), 10);
    assert_eq!(log.end(), end);
}

#[test]
fn missing_segment_in_the_middle_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 100);
    write_all(
        &mut log,
        &(0..40).map(payload).collect::<Vec<_>>(),
        Durability::None,
    );
    drop(log);
    assert!(segment_numbers(dir).len() >= 6);
    fs::remove_file(seg(dir, 3)).unwrap();
    fs::remove_file(seg(dir, 4)).unwrap();
    let (path, offset, reason, message) = expect_corrupt(open_collect(dir, pos(0, 0), 100));
    assert_eq!((path, offset), (seg(dir, 3), 0));
    assert!(
        reason.contains("segments 3..=4 are absent before segment 5"),
        "{reason}"
    );
    assert!(message.contains("00000000000000000003.log"), "{message}");
    expect_corrupt(open_collect(dir, pos(2, 8), 100));
    // Replaying from after the gap is fine: older segments are not read.
    let (log, _) = open_collect(dir, pos(5, 0), 100).unwrap();
    assert_eq!(
        log.older.keys().copied().collect::<Vec<_>>()[..3],
        [1, 2, 5]
    );
    let expected: u64 = segment_numbers(dir)
        .iter()
        .map(|&n| file_len(&seg(dir, n)))
        .sum();
    assert_eq!(log.disk_bytes(), expected);
}

#[test]
fn delete_segments_before_removes_only_whole_older_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 100);
    let positions = write_all(
        &mut log,
        &(0..40).map(payload).collect::<Vec<_>>(),
        Durability::Fsync,
    );
    let last = log.end().segment;
    assert!(last >= 6);
    let snapshot = positions[positions.iter().position(|p| p.segment == 4).unwrap() + 1];
    let size_1_to_3: u64 = (1..4).map(|n| file_len(&seg(dir, n))).sum();
    let before = log.disk_bytes();

    assert_eq!(log.delete_segments_before(snapshot).unwrap(), 3);
    assert_eq!(segment_numbers(dir), (4..=last).collect::<Vec<_>>());
    assert_eq!(log.disk_bytes(), before - size_1_to_3);
    assert_eq!(log.delete_segments_before(snapshot).unwrap(), 0);
    // Never the newest segment, even for a position beyond it.
    assert_eq!(
        log.delete_segments_before(pos(u64::MAX, 0)).unwrap(),
        (last - 4) as usize
    );
    assert_eq!(segment_numbers(dir), vec![last]);
    assert_eq!(log.disk_bytes(), file_len(&seg(dir, last)));
    // Appending still works and the snapshot-less replay now reports the missing history.
    write_all(&mut log, &[b"more".to_vec()], Durability::Fsync);
    drop(log);
    let (path, _, _, _) = expect_corrupt(open_collect(dir, pos(0, 0), 100));
    assert_eq!(path, seg(dir, 1));
    expect_corrupt(open_collect(dir, snapshot, 100));
    let (log, records) = open_collect(dir, pos(last, 0), 100).unwrap();
    assert_eq!(records.last().unwrap().1, b"more");
    let on_disk: u64 = segment_numbers(dir)
        .iter()
        .map(|&n| file_len(&seg(dir, n)))
        .sum();
    assert_eq!(log.disk_bytes(), on_disk);
}

#[test]
fn short_write_poisons_and_truncates_the_failed_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 1 << 20);
    let committed: Vec<_> = (0..5).map(payload).collect();
    write_all(&mut log, &committed, Durability::Fsync);
    let end = log.end();
    let batch: Vec<_> = (5..10).map(payload).collect();
    for p in &batch {
        log.append(p).unwrap();
    }
    log.fault = Some(Fault::ShortWrite);
    assert!(!log.poisoned());
    let error = log.commit(Durability::Fsync).unwrap_err();
    assert!(matches!(error, LogError::Io { op: "write", .. }), "{error}");
    assert!(
        error.to_string().contains("injected short write"),
        "{error}"
    );
    assert!(log.poisoned());
    // Half the batch reached the file; it was truncated away again.
    assert_eq!(file_len(&seg(dir, 1)), end.offset);
    assert_eq!(log.end(), end);
    assert_eq!(log.disk_bytes(), end.offset);
    // Poisoned from now on, even though no fault is armed any more.
    assert!(matches!(log.append(b"x"), Err(LogError::Poisoned { .. })));
    let error = log.commit(Durability::None).unwrap_err();
    assert!(
        matches!(&error, LogError::Poisoned { cause } if cause.contains("injected short write")),
        "{error}"
    );
    assert!(matches!(
        log.commit(Durability::Fsync),
        Err(LogError::Poisoned { .. })
    ));
    drop(log);

    // Reopen replays exactly the committed records, none of the failed batch.
    let (mut log, records) = open_all(dir, 1 << 20);
    assert_eq!(
        records.into_iter().map(|r| r.1).collect::<Vec<_>>(),
        committed
    );
    assert_eq!(log.end(), end);
    write_all(&mut log, &[b"fresh".to_vec()], Durability::Fsync);
    drop(log);
    let (_, records) = open_all(dir, 1 << 20);
    assert_eq!(records.len(), committed.len() + 1);
    assert_eq!(records.last().unwrap(), &(end, b"fresh".to_vec()));
}

#[test]
fn sync_failure_truncates_the_failed_group_so_reopen_does_not_replay_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Small segments: the failed group spans a roll, so a new segment must be removed too.
    let (mut log, _) = open_all(dir, 200);
    let committed: Vec<_> = (0..3).map(payload).collect();
    write_all(&mut log, &committed, Durability::Fsync);
    let end = log.end();
    assert_eq!(end.segment, 1);
    // The full write of the group succeeds; the final fdatasync fails.
    for i in 3..12 {
        log.append(&payload(i)).unwrap();
    }
    assert!(log.tail.segment > 1);
    // What `commit` does, with only the last sync failing (the rolls' syncs succeed).
    let buf = std::mem::take(&mut log.buf);
    let rolls = std::mem::take(&mut log.rolls);
    let mut start = 0;
    for &at in &rolls {
        log.write_current(&buf[start..at]).unwrap();
        log.start_next_segment().unwrap();
        start = at;
    }
    log.write_current(&buf[start..]).unwrap();
    assert!(segment_numbers(dir).len() > 1);
    log.fault = Some(Fault::Sync);
    let error = log.sync_current().unwrap_err();
    log.poison(&error);
    assert!(log.poisoned());
    // Segments of the failed group that the newest-segment marker names stay, emptied to their
    // header (a missing one would be refused at open); any later one is removed.
    let numbers = segment_numbers(dir);
    assert!(numbers.len() > 1 && numbers[0] == 1, "{numbers:?}");
    for &n in &numbers[1..] {
        assert_eq!(
            file_len(&seg(dir, n)),
            8,
            "segment {n} emptied to its header"
        );
    }
    assert_eq!(file_len(&seg(dir, 1)), end.offset);
    assert_eq!(log.disk_bytes(), end.offset);
    // Housekeeping on the poisoned log never deletes the segment it truncated back to.
    assert_eq!(log.delete_segments_before(pos(u64::MAX, 0)).unwrap(), 0);
    drop(log);

    let (mut log, records) = open_all(dir, 200);
    assert_eq!(
        records.into_iter().map(|r| r.1).collect::<Vec<_>>(),
        committed,
        "the failed group is not replayed"
    );
    // The log goes on in the newest (emptied) segment.
    let newest = *numbers.last().unwrap();
    assert_eq!(log.end(), pos(newest, 8));
    let next = write_all(&mut log, &[b"after".to_vec()], Durability::Fsync);
    assert_eq!(next, vec![pos(newest, 8)]);
    drop(log);
    let (_, records) = open_all(dir, 200);
    assert_eq!(records.len(), 4);
    assert_eq!(records[3], (pos(newest, 8), b"after".to_vec()));
}

#[test]
fn sync_failure_via_commit_truncates_the_failed_group() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 1 << 20);
    write_all(&mut log, &[b"kept".to_vec()], Durability::Fsync);
    let end = log.end();
    log.append(b"never acknowledged").unwrap();
    log.fault = Some(Fault::Sync);
    assert!(matches!(
        log.commit(Durability::Fsync),
        Err(LogError::Io { op: "sync", .. })
    ));
    assert!(log.poisoned());
    assert_eq!(file_len(&seg(dir, 1)), end.offset);
    drop(log);
    let (_, records) = open_all(dir, 1 << 20);
    assert_eq!(records, vec![(pos(1, 8), b"kept".to_vec())]);
}

#[test]
fn sync_failure_poisons_and_is_never_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open_all(tmp.path(), 1 << 20);
    log.append(b"a").unwrap();
    log.fault = Some(Fault::Sync);
    let error = log.commit(Durability::Fsync).unwrap_err();
    assert!(matches!(error, LogError::Io { op: "sync", .. }), "{error}");
    let syncs = log.syncs;
    assert!(matches!(
        log.commit(Durability::Fsync),
        Err(LogError::Poisoned { .. })
    ));
    assert_eq!(log.syncs, syncs, "no sync attempted after the failure");
    assert_eq!(log.end(), pos(1, 8));
    // Housekeeping still works on a poisoned log.
    assert_eq!(log.delete_segments_before(pos(1, 8)).unwrap(), 0);
}

#[test]
fn sync_failure_during_a_roll_poisons() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open_all(tmp.path(), 20);
    log.append(&[1; 20]).unwrap();
    log.commit(Durability::None).unwrap();
    log.append(&[2; 20]).unwrap();
    log.fault = Some(Fault::Sync);
    // Even with Durability::None, a full segment is synced before its successor is created.
    assert!(matches!(
        log.commit(Durability::None),
        Err(LogError::Io { op: "sync", .. })
    ));
    assert!(!seg(tmp.path(), 2).exists());
    assert!(matches!(log.append(b"x"), Err(LogError::Poisoned { .. })));
}

#[test]
fn fsync_commit_covers_data_of_earlier_none_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open_all(tmp.path(), 1 << 20);
    log.append(b"a").unwrap();
    log.commit(Durability::None).unwrap();
    assert_eq!(log.syncs, 0);
    assert_eq!(log.commit(Durability::Fsync).unwrap(), pos(1, 17));
    assert_eq!(log.syncs, 1);
    // Nothing new: nothing to sync.
    log.commit(Durability::Fsync).unwrap();
    assert_eq!(log.syncs, 1);
    // Even with Durability::None a roll syncs the full segment; the next Fsync commit then
    // syncs the new segment and the directory entry it added.
    drop(log);
    let (mut log, _) = open_all(tmp.path(), 40);
    log.append(&[1; 20]).unwrap();
    log.commit(Durability::None).unwrap();
    assert_eq!(log.syncs, 0);
    assert_eq!(log.append(b"b").unwrap(), pos(2, 8));
    log.commit(Durability::None).unwrap();
    assert_eq!(log.syncs, 1);
    // The roll synced the directory (the new segment's entry is durable before the marker that
    // names it), not the new segment's data.
    assert!(!log.dir_dirty && log.file_dirty);
    log.commit(Durability::Fsync).unwrap();
    assert_eq!(log.syncs, 2);
    assert!(!log.dir_dirty && !log.file_dirty);
}

#[test]
fn sync_makes_none_commits_durable_and_a_failure_poisons() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open_all(tmp.path(), 40);
    // Nothing written: nothing to sync.
    log.sync().unwrap();
    assert_eq!(log.syncs, 0);
    log.append(b"a").unwrap();
    log.commit(Durability::None).unwrap();
    assert_eq!(log.syncs, 0);
    assert!(log.file_dirty);
    log.sync().unwrap();
    assert_eq!(log.syncs, 1);
    assert!(!log.file_dirty && !log.dir_dirty);
    log.sync().unwrap();
    assert_eq!(log.syncs, 1, "clean: no second fdatasync");
    // A roll under Durability::None leaves the new segment's data unsynced (its directory entry is
    // synced before the newest-segment marker names it).
    log.append(&[1; 30]).unwrap();
    log.append(b"b").unwrap();
    log.commit(Durability::None).unwrap();
    assert!(log.file_dirty && !log.dir_dirty);
    let syncs = log.syncs;
    log.sync().unwrap();
    assert_eq!(log.syncs, syncs + 1);
    assert!(!log.file_dirty && !log.dir_dirty);
    // Appended but uncommitted records are not written by sync.
    let end = log.end();
    log.append(b"pending").unwrap();
    log.sync().unwrap();
    assert_eq!(log.end(), end);
    assert_eq!(file_len(&seg(tmp.path(), end.segment)), end.offset);
    // A failed sync poisons like a failed commit; committed records stay committed (the
    // truncation goes back to end(), which a failed sync does not move).
    log.commit(Durability::None).unwrap();
    log.append(b"c").unwrap();
    let end = log.commit(Durability::None).unwrap();
    log.fault = Some(Fault::Sync);
    let syncs = log.syncs;
    assert!(matches!(log.sync(), Err(LogError::Io { op: "sync", .. })));
    assert!(log.poisoned());
    assert!(matches!(log.sync(), Err(LogError::Poisoned { .. })));
    assert!(matches!(log.append(b"x"), Err(LogError::Poisoned { .. })));
    assert_eq!(log.syncs, syncs, "a failed sync is never retried");
    assert_eq!(log.end(), end);
    assert_eq!(file_len(&seg(tmp.path(), end.segment)), end.offset);
}

#[test]
fn payload_size_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open_all(tmp.path(), 1 << 20);
    assert!(matches!(log.append(b""), Err(LogError::EmptyPayload)));
    let big = vec![9u8; MAX_PAYLOAD_BYTES + 1];
    match log.append(&big) {
        Err(error @ LogError::PayloadTooLarge { len }) => {
            assert_eq!(len, MAX_PAYLOAD_BYTES + 1);
            assert!(error.to_string().contains("16777216"), "{error}");
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    // Rejections do not poison, and the maximum itself is accepted.
    assert_eq!(log.append(&big[..MAX_PAYLOAD_BYTES]).unwrap(), pos(1, 8));
    assert_eq!(log.append(b"small").unwrap(), pos(2, 8));
    log.commit(Durability::Fsync).unwrap();
    assert!(log.buf.capacity() <= KEEP_BUFFER_BYTES);
    drop(log);
    let (_, records) = open_all(tmp.path(), 1 << 20);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].1.len(), MAX_PAYLOAD_BYTES);
    assert!(records[0].1.iter().all(|&b| b == 9));
}

#[test]
fn replay_callback_error_is_reported_with_the_position() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open_all(tmp.path(), 1 << 20);
    let positions = write_all(
        &mut log,
        &(0..5).map(payload).collect::<Vec<_>>(),
        Durability::None,
    );
    drop(log);
    let mut seen = 0;
    let result = EventLog::open(tmp.path(), LogPosition::default(), 1 << 20, &mut |_, _| {
        seen += 1;
        if seen == 3 {
            Err(ReplayError("bad event".to_string()))
        } else {
            Ok(())
        }
    });
    match result {
        Err(error @ LogError::Replay { position, .. }) => {
            assert_eq!(position, positions[2]);
            assert!(error.to_string().contains("bad event"), "{error}");
        }
        other => panic!("expected Replay, got {other:?}"),
    }
    // The failed open released the lock.
    open_all(tmp.path(), 1 << 20);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = open_all(tmp.path(), 1 << 20);
    match open_collect(tmp.path(), LogPosition::default(), 1 << 20) {
        Err(LogError::Locked { path }) => assert_eq!(path, tmp.path().join("LOCK")),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(log);
    open_all(tmp.path(), 1 << 20);
}

#[test]
fn unrelated_files_are_ignored_and_segment_zero_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, _) = open_all(dir, 1 << 20);
    write_all(&mut log, &[b"a".to_vec()], Durability::Fsync);
    drop(log);
    for name in [
        "snapshot.db",
        "1.log",
        "0000000000000000001.log",
        "00000000000000000002.log.tmp",
        "x0000000000000000002.log",
    ] {
        fs::write(dir.join(name), b"junk").unwrap();
    }
    let (log, records) = open_all(dir, 1 << 20);
    assert_eq!(records.len(), 1);
    assert_eq!(log.end(), pos(1, 17));
    drop(log);
    fs::write(seg(dir, 0), MAGIC).unwrap();
    let (path, _, _, _) = expect_corrupt(open_collect(dir, pos(0, 0), 1 << 20));
    assert_eq!(path, seg(dir, 0));
}

#[test]
fn uncommitted_appends_are_lost_and_empty_commits_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open_all(tmp.path(), 1 << 20);
    assert_eq!(log.commit(Durability::Fsync).unwrap(), pos(1, 8));
    assert_eq!(log.syncs, 0);
    write_all(&mut log, &[b"kept".to_vec()], Durability::None);
    assert_eq!(log.append(b"lost").unwrap(), pos(1, 20));
    assert_eq!(log.end(), pos(1, 20));
    assert_eq!(log.disk_bytes(), 20);
    drop(log);
    let (log, records) = open_all(tmp.path(), 1 << 20);
    assert_eq!(records, vec![(pos(1, 8), b"kept".to_vec())]);
    assert_eq!(log.end(), pos(1, 20));
}

#[test]
fn reopen_with_a_smaller_segment_size_rolls_on_the_next_append() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open_all(tmp.path(), 1 << 20);
    write_all(
        &mut log,
        &(0..10).map(payload).collect::<Vec<_>>(),
        Durability::None,
    );
    drop(log);
    let (mut log, _) = open_all(tmp.path(), 16);
    assert_eq!(log.append(b"next").unwrap(), pos(2, 8));
    log.commit(Durability::Fsync).unwrap();
    drop(log);
    let (_, records) = open_all(tmp.path(), 16);
    assert_eq!(records.len(), 11);
}

#[test]
fn find_valid_frame_crosses_window_boundaries() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    let mut frame = Vec::new();
    let body = vec![3u8; 3000];
    let len = (body.len() as u32).to_le_bytes();
    frame.extend_from_slice(&len);
    frame.extend_from_slice(&frame_crc(&len, &body).to_le_bytes());
    frame.extend_from_slice(&body);
    for at in [0usize, 10, (1 << 20) - 5, (1 << 20) - 1, (1 << 20) + 3] {
        let mut bytes = vec![0u8; at];
        bytes.extend_from_slice(&frame);
        bytes.extend_from_slice(&[0; 9]);
        fs::write(&path, &bytes).unwrap();
        let mut file = File::open(&path).unwrap();
        let len = bytes.len() as u64;
        assert_eq!(
            find_valid_frame(&mut file, 0, len).unwrap(),
            Some(at as u64),
            "frame at {at}"
        );
        assert_eq!(
            find_valid_frame(&mut file, at as u64 + 1, len).unwrap(),
            None,
            "after {at}"
        );
        // Cut short by one byte: no valid frame.
        assert_eq!(
            find_valid_frame(&mut file, 0, (at + frame.len() - 1) as u64).unwrap(),
            None
        );
    }
}

/// The search as it was: every candidate's CRC computed over its whole claimed payload. The oracle
/// of the tests below, counting the bytes it checksums.
fn naive_find_valid_frame(bytes: &[u8], from: usize) -> (Option<usize>, u64) {
    let mut work = 0u64;
    for at in from..bytes.len().saturating_sub(FRAME_HEADER_LEN as usize - 1) {
        let len_bytes: [u8; 4] = bytes[at..at + 4].try_into().unwrap(); // 4 bytes by the bound
        let len = u32::from_le_bytes(len_bytes) as usize;
        let start = at + FRAME_HEADER_LEN as usize;
        if len == 0 || len > MAX_PAYLOAD_BYTES || start + len > bytes.len() {
            continue;
        }
        work += len as u64;
        let stored = u32::from_le_bytes(bytes[at + 4..start].try_into().unwrap()); // 4 bytes
        if frame_crc(&len_bytes, &bytes[start..start + len]) == stored {
            return (Some(at), work);
        }
    }
    (None, work)
}

fn finder_on(bytes: &[u8], from: usize) -> (Option<usize>, u64) {
    let mut file = std::io::Cursor::new(bytes);
    CHECKSUMMED.with(|c| c.set(0));
    let found = find_valid_frame(&mut file, from as u64, bytes.len() as u64).unwrap();
    let work = CHECKSUMMED.with(|c| c.get());
    (found.map(|at| at as usize), work)
}

/// Issue 21 (docs/reliability.md, "Not yet covered"): a crafted damaged tail, whose every fourth
/// offset claims a plausible 64 KiB payload, made the search checksum 64 KiB per candidate: time
/// quadratic in the tail (22 s for 2 MiB in a debug build). The finder checksums each byte once
/// plus fewer than 128 bytes per candidate, whatever the lengths claim, and finds the same frame.
#[test]
fn a_crafted_tail_costs_linear_work() {
    let tail = 256 * 1024;
    let mut bytes: Vec<u8> = [0xFF, 0xFF, 0x00, 0x00].repeat(tail / 4);
    // A valid frame at the end, for both searches to find.
    let body = b"the record after the damage";
    let len = (body.len() as u32).to_le_bytes();
    let frame_at = bytes.len();
    bytes.extend_from_slice(&len);
    bytes.extend_from_slice(&frame_crc(&len, body).to_le_bytes());
    bytes.extend_from_slice(body);
    let (naive, naive_work) = naive_find_valid_frame(&bytes, 1);
    let (found, work) = finder_on(&bytes, 1);
    assert_eq!(naive, Some(frame_at));
    assert_eq!(found, Some(frame_at));
    let n = bytes.len() as u64;
    assert!(
        naive_work > 1000 * n,
        "the tail is adversarial: the naive search checksums {naive_work} bytes for {n}"
    );
    assert!(
        work <= 2 * n + 128 * n / 4,
        "the finder checksummed {work} bytes for {n} (candidates: {})",
        n / 4
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// On random bytes with frames (some damaged) at random places, the finder answers as the
    /// naive search does, from any start.
    #[test]
    fn the_finder_agrees_with_the_naive_search(
        noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        frames in proptest::collection::vec(
            (0usize..600, proptest::collection::vec(proptest::prelude::any::<u8>(), 1..300),
             proptest::prelude::any::<bool>(), proptest::prelude::any::<u8>()),
            0..4,
        ),
        from in 0usize..700,
    ) {
        let mut bytes = noise;
        for (at, body, damaged, flip) in frames {
            let len = (body.len() as u32).to_le_bytes();
            let mut frame = len.to_vec();
            frame.extend_from_slice(&frame_crc(&len, &body).to_le_bytes());
            frame.extend_from_slice(&body);
            if damaged {
                let i = usize::from(flip) % frame.len();
                frame[i] ^= 0x5A;
            }
            let at = at.min(bytes.len());
            bytes.splice(at..at, frame);
        }
        let from = from.min(bytes.len());
        proptest::prop_assert_eq!(finder_on(&bytes, from).0, naive_find_valid_frame(&bytes, from).0);
    }
}

/// Issue 24, finding 6: deleting the newest segment, or truncating one at a record boundary and
/// deleting the next, opened cleanly without the records in them (before: both opened, silently
/// short). The newest-segment marker makes both a refusal naming the missing file and the way
/// out. A log without a marker (written before it existed) opens as before and gets one.
#[test]
fn a_missing_newest_segment_is_refused_by_name() {
    let fresh = || {
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, _) = open_all(tmp.path(), 200);
        let records: Vec<_> = (0..30).map(payload).collect();
        let positions = write_all(&mut log, &records, Durability::Fsync);
        drop(log);
        assert!(segment_numbers(tmp.path()).len() >= 3);
        (tmp, positions)
    };
    let refused = |dir: &Path, newest: u64| {
        let error = open_all_err(dir);
        let text = error.to_string();
        assert!(
            text.contains(&format!("{}", seg(dir, newest).display()))
                && text.contains("segment file missing")
                && text.contains("Restore them from a backup"),
            "{text}"
        );
    };
    // The newest segment deleted.
    let (tmp, _) = fresh();
    let newest = *segment_numbers(tmp.path()).last().unwrap();
    std::fs::remove_file(seg(tmp.path(), newest)).unwrap();
    refused(tmp.path(), newest);
    // A segment truncated at a record boundary (a snapshot position) and the next one deleted.
    let (tmp, positions) = fresh();
    let newest = *segment_numbers(tmp.path()).last().unwrap();
    let cut = positions
        .iter()
        .find(|p| p.segment == newest - 1 && p.offset > 8)
        .copied()
        .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(seg(tmp.path(), cut.segment))
        .unwrap()
        .set_len(cut.offset)
        .unwrap();
    std::fs::remove_file(seg(tmp.path(), newest)).unwrap();
    refused(tmp.path(), newest);
    // Every segment deleted: refused too, not a new empty log.
    let (tmp, _) = fresh();
    for n in segment_numbers(tmp.path()) {
        std::fs::remove_file(seg(tmp.path(), n)).unwrap();
    }
    refused(tmp.path(), newest);
    // A log from before the marker: opens as before (the old behaviour, documented), and records
    // its newest segment, so that from now on a missing one is found.
    let (tmp, _) = fresh();
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("MANIFEST-") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    std::fs::remove_file(seg(tmp.path(), newest)).unwrap();
    let (log, records) = open_all(tmp.path(), 200);
    assert!(
        records.len() < 30,
        "the old behaviour: the tail is silently gone"
    );
    drop(log);
    std::fs::remove_file(seg(tmp.path(), newest - 1)).unwrap();
    refused(tmp.path(), newest - 1);
}

fn open_all_err(dir: &Path) -> LogError {
    match open_collect(dir, LogPosition::default(), 200) {
        Ok(_) => panic!("{} opened", dir.display()),
        Err(error) => error,
    }
}
