//! The append-only, CRC-framed event log: the acknowledgement point of the daemon.
//!
//! An event is acknowledged once [`EventLog::commit`] has returned `Ok` for it (with
//! [`Durability::Fsync`] that means after `fdatasync`; with [`Durability::None`] after `write()`).
//! Everything else (aggregates, SQLite snapshots) is derived state that is rebuilt by replaying
//! the log from a snapshot's [`LogPosition`]. This module owns the segment files in one directory
//! and nothing else; it is synchronous std code driven by one writer thread.
//!
//! # On-disk format
//!
//! * The directory holds segment files named `{segment:020}.log` (e.g. `00000000000000000001.log`),
//!   numbered from 1 without gaps, and a `LOCK` file that is `flock`ed while the log is open (a second
//!   [`EventLog::open`] of the same directory fails with [`LogError::Locked`]). Other files are ignored.
//! * An empty file `MANIFEST-{segment:020}` names the newest segment the log ever created: written
//!   (and the directory synced) right after each new segment's directory entry is durable, and at
//!   `open` when missing or behind; the one before it is kept until the next roll, older ones are
//!   removed. A log without one (written before it existed) opens unchecked and gets one.
//! * Every segment starts with the 8-byte magic `b"BLGDLOG1"`.
//! * Then records, back to back: `u32` little-endian payload length, `u32` little-endian CRC32C
//!   (Castagnoli) of the 4 length bytes followed by the payload, then the payload. A length of 0 or
//!   above [`MAX_PAYLOAD_BYTES`] is never written and is therefore invalid on read.
//! * A [`LogPosition`] is `(segment, byte offset in that segment)`: a record's position is the offset
//!   of its first length byte; the end position is the offset after the last record. The first
//!   record of a segment is at offset 8.
//! * Rolling: a segment is full once it holds at least one record and its size has reached
//!   `segment_bytes`; a record that would start at or past that offset goes to offset 8 of the next
//!   segment. So a segment exceeds `segment_bytes` by less than one record, and holds at least one.
//!   Before the next segment file is created, the full one is `fdatasync`ed (and the directory synced
//!   if the full one's own entry was never synced), with either durability: a segment that has a
//!   successor is therefore always complete on disk.
//!
//! # Recovery rules ([`EventLog::open`])
//!
//! Segments numbered below the replay start (`replay_from.segment`, where 0 means "from the very
//! beginning", i.e. segment 1) are not read and may have gaps between them. From the replay start on,
//! every segment must exist up to the newest one, and each is scanned from its header:
//!
//! * **Torn tail** (repaired, `tracing::warn!` with file and offset): the first bad frame of the
//!   **last** segment, if no valid frame (a plausible length whose CRC matches) starts at any later
//!   byte offset of that file. A bad frame is an incomplete header, a length of 0 or above the maximum,
//!   a length running past the end of the file, or a CRC mismatch. This covers a write cut anywhere,
//!   a CRC-failing last record and a zero-filled (preallocated) tail. The file is truncated to the
//!   bad frame's offset. A last segment whose content is a prefix of the magic followed only by zero
//!   bytes (a crash while creating it) is reset to a header-only segment.
//! * **Corrupt** ([`LogError::Corrupt`] naming file and offset): a bad frame in any segment but the
//!   last (they are synced before their successor exists, so this is never a torn write), a bad frame
//!   in the last segment followed by a valid frame (acknowledged records after it would otherwise be
//!   silently dropped), a bad header other than the torn case above, a missing segment at or after
//!   the replay start (the path names the missing file), a newest segment older than the newest
//!   `MANIFEST-` file names (the newest segments were deleted or lost), a replay start older than the oldest
//!   segment or newer than the newest, and a `replay_from` that is not at a record boundary or the
//!   end of its segment's valid records (the caller's snapshot is ahead of the log).
//!
//! `on_record` is called for every valid record at or after `replay_from`, in log order, while
//! scanning; when `open` fails, it may already have been called for some records and the caller must
//! discard whatever it built from them.
//!
//! # Errors and poisoning
//!
//! After any write or sync error in [`EventLog::commit`] or [`EventLog::sync`] the log is poisoned
//! ([`EventLog::poisoned`]): every later [`EventLog::append`] and [`EventLog::commit`] returns
//! [`LogError::Poisoned`]. A failed `fsync` is never retried (the page cache state is unknown
//! afterwards). Right after poisoning, the log truncates the segment of the last committed record
//! back to [`EventLog::end`], empties (to the header) the segment files the failed commit created that a `MANIFEST-` file names and removes the others, and syncs file and
//! directory (best effort, failures logged): so a restart in the same boot does not replay, from the
//! page cache, records that were never acknowledged and may not be on the disk. `open` also asks the
//! kernel to drop the cached pages of every segment it scans (`posix_fadvise(DONTNEED)`), so replay
//! reads the disk rather than pages whose writeback failed. The only recovery is to drop the log and
//! open it again. Records appended but not committed are lost when the log is dropped.
//!
//! [`EventLog::sync`] makes everything committed durable whatever the durability setting; a caller
//! that records [`EventLog::end`] durably elsewhere (a snapshot's replay position) must call it
//! first, or after a power loss that position may lie beyond the log and `open` refuses the store.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::storage::{AppendFile, RealStorage, Storage, create_dir_durably};

mod files;
mod repair;
mod scan;

use files::{
    frame_crc, io_err, list_manifests, list_segments, lock_dir, manifest_path, record_newest,
    segment_path, sync_dir,
};
pub use files::{parse_segment_file_name, segment_file_name};

pub use repair::{
    Damage, Report, SegmentInfo, Truncation, inspect, inspect_with, truncate_tail,
    truncate_tail_with,
};
use scan::{TailDamage, scan_segment};

/// The largest payload a record may carry (16 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

const MAGIC: [u8; 8] = *b"BLGDLOG1";
const HEADER_LEN: u64 = MAGIC.len() as u64;
/// Length and CRC in front of every payload.
const FRAME_HEADER_LEN: u64 = 8;
const LOCK_FILE: &str = "LOCK";
const READ_BUFFER_BYTES: usize = 1 << 20;
/// Above this capacity the write buffer is shrunk after a commit (one huge record must not pin it).
const KEEP_BUFFER_BYTES: usize = 4 << 20;

/// Where a record starts or the log ends: segment number and byte offset inside that segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogPosition {
    /// Segment number (files start at 1; 0 in `replay_from` means "from the very beginning").
    pub segment: u64,
    /// Byte offset inside the segment file (the first record is at 8, after the header).
    pub offset: u64,
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}

/// When [`EventLog::commit`] may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fdatasync` the segment (and the directory after creating a segment) before returning.
    Fsync,
    /// Return after `write()`: survives a killed process, not a power loss.
    None,
}

/// Why `on_record` refused a record during replay: the caller's own message (the log knows nothing
/// of what its records mean). Reported as [`LogError::Replay`] with the position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReplayError(pub String);

/// Errors of the event log. Only `Io` (from `commit`) poisons the log; the messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An IO operation failed; `op` says what was being done to `path`.
    #[error("event log: cannot {op} {}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    /// The log is damaged somewhere other than a torn tail; nothing is repaired.
    #[error("event log corrupt: {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// `on_record` rejected a record during replay.
    #[error("event log: replaying the record at {position} failed: {message}")]
    Replay {
        position: LogPosition,
        message: String,
    },
    /// `append` was given more than [`MAX_PAYLOAD_BYTES`].
    #[error("event log: payload of {len} bytes exceeds the maximum of {MAX_PAYLOAD_BYTES} bytes")]
    PayloadTooLarge { len: usize },
    /// `append` was given an empty payload (a length of 0 marks a zero-filled tail on disk).
    #[error("event log: an empty payload cannot be logged")]
    EmptyPayload,
    /// Another `EventLog` or [`DirLock`] (in this or another process) has the directory locked.
    #[error(
        "event log: {} is locked by another process using this store (a running daemon, `backlogd backfill --store` writing it, or `backlogd repair`); stop it or wait for it to finish",
        path.display()
    )]
    Locked { path: PathBuf },
    /// [`truncate_tail`] refused to cut the log (the reason says what it found instead).
    #[error("event log: repair refused: {reason}")]
    Refused { reason: String },
    /// An earlier write or sync failed; the log accepts nothing until it is reopened.
    #[error("event log is poisoned by an earlier failure ({cause}); reopen it to recover")]
    Poisoned { cause: String },
}

/// The append-only event log. See the module documentation.
pub struct EventLog {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    segment_bytes: u64,
    /// Holds the directory lock for as long as the log is open.
    _lock: Box<dyn Any + Send>,
    /// The newest segment, opened for appending.
    file: Box<dyn AppendFile>,
    file_path: PathBuf,
    segment: u64,
    /// Bytes written to the newest segment so far.
    file_len: u64,
    /// Written to `file` since its last `sync_data`.
    file_dirty: bool,
    /// A segment was created since the directory was last synced.
    dir_dirty: bool,
    /// Segments older than the newest: number -> size in bytes.
    older: BTreeMap<u64, u64>,
    older_bytes: u64,
    /// After the last committed record.
    end: LogPosition,
    /// After the last appended record (committed or buffered).
    tail: LogPosition,
    /// Frames appended since the last commit.
    buf: Vec<u8>,
    /// Offsets in `buf` at which the next segment starts.
    rolls: Vec<usize>,
    poisoned: Option<String>,
    #[cfg(test)]
    fault: Option<Fault>,
    #[cfg(test)]
    syncs: usize,
}

#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The next write writes half its bytes, then fails.
    ShortWrite,
    /// The next `sync_data` fails.
    Sync,
}

impl fmt::Debug for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLog")
            .field("dir", &self.dir)
            .field("segment_bytes", &self.segment_bytes)
            .field("end", &self.end)
            .field("tail", &self.tail)
            .field("buffered_bytes", &self.buf.len())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// The log directory's lock, held without the log open: whoever holds it owns the store (the
/// daemon from before it reads the snapshot until it stops; `backlogd backfill --store` while it
/// builds one). [`EventLog::open_locked`] takes it over.
pub struct DirLock {
    /// The storage the directory is on; the log opened with the lock uses it.
    storage: Arc<dyn Storage>,
    guard: Box<dyn Any + Send>,
}

impl fmt::Debug for DirLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirLock").finish_non_exhaustive()
    }
}

/// Creates `dir` (durably) if needed and takes its lock (the `LOCK` file the log holds while it is
/// open); [`LogError::Locked`] when someone else holds it.
pub fn lock_directory(dir: &Path) -> Result<DirLock, LogError> {
    lock_directory_with(Arc::new(RealStorage), dir)
}

/// [`lock_directory`] on the given storage (the engine's tests inject faults and power losses).
pub fn lock_directory_with(storage: Arc<dyn Storage>, dir: &Path) -> Result<DirLock, LogError> {
    create_dir_durably(&*storage, dir).map_err(io_err("create directory", dir))?;
    let guard = lock_dir(&*storage, dir)?;
    Ok(DirLock { storage, guard })
}

/// Refuses a log whose newest segments are missing: the newest marker names a segment (`recorded`)
/// newer than every segment present (`numbers`); those segments held acknowledged events.
fn check_newest_present(
    dir: &Path,
    numbers: &[u64],
    recorded: Option<u64>,
) -> Result<(), LogError> {
    if let Some(recorded) = recorded
        && numbers.last().is_none_or(|&last| last < recorded)
    {
        let present = numbers
            .last()
            .map_or("none".to_string(), |last| format!("{last}"));
        let marker = manifest_path(dir, recorded);
        let marker = marker.display();
        return Err(LogError::Corrupt {
            path: segment_path(dir, recorded),
            offset: 0,
            reason: format!(
                "segment file missing: the log created segments up to {recorded} ({marker}), but \
                 the newest present is {present}: the newest segments were deleted or lost, and \
                 with them acknowledged events. Restore them from a backup (docs/store.md, \
                 Restore). Only if they are gone for good and losing their events is accepted, \
                 remove {marker} to start from what is there"
            ),
        });
    }
    Ok(())
}

/// Refuses a replay start beyond the newest segment (`last`), or a gap in the segments from the
/// replay's first segment (`start`) on.
fn check_replay_segments(
    dir: &Path,
    numbers: &[u64],
    start: u64,
    last: u64,
    replay_from: LogPosition,
) -> Result<(), LogError> {
    if start > last {
        return Err(LogError::Corrupt {
            path: segment_path(dir, start),
            offset: replay_from.offset,
            reason: format!("replay position {replay_from} lies beyond the newest segment {last}"),
        });
    }
    for (expected, &n) in (start..).zip(numbers.iter().filter(|&&n| n >= start)) {
        if n != expected {
            return Err(LogError::Corrupt {
                path: segment_path(dir, expected),
                offset: 0,
                reason: format!(
                    "segment file missing: segments {expected}..={} are absent before segment {n} \
                     (replay starts at segment {start})",
                    n - 1
                ),
            });
        }
    }
    Ok(())
}

/// Cuts the last segment's torn tail found by its scan (a torn record, or a torn header rewritten);
/// returns the segment's length after it.
fn repair_torn_tail(
    file: &mut dyn AppendFile,
    path: &Path,
    scan: &scan::SegmentScan,
) -> Result<u64, LogError> {
    match &scan.damage {
        None => {}
        Some(TailDamage::Frame { reason }) => {
            tracing::warn!(
                file = %path.display(),
                offset = scan.valid_end,
                discarded_bytes = scan.file_len - scan.valid_end,
                reason = %reason,
                "event log: truncating torn tail"
            );
            file.set_len(scan.valid_end)
                .map_err(io_err("truncate", path))?;
        }
        Some(TailDamage::Header) => {
            tracing::warn!(
                file = %path.display(),
                offset = 0,
                discarded_bytes = scan.file_len,
                "event log: rewriting torn segment header"
            );
            file.set_len(0).map_err(io_err("truncate", path))?;
            file.write_all(&MAGIC).map_err(io_err("write", path))?;
            return Ok(HEADER_LEN);
        }
    }
    Ok(scan.valid_end)
}

impl EventLog {
    /// [`EventLog::open`] of a directory whose lock the caller took before (with
    /// [`lock_directory`]), so that nothing else could change the store in between; on the
    /// storage the lock was taken on.
    #[allow(clippy::type_complexity)]
    pub fn open_locked(
        lock: DirLock,
        dir: &Path,
        replay_from: LogPosition,
        segment_bytes: u64,
        on_record: &mut dyn FnMut(LogPosition, &[u8]) -> Result<(), ReplayError>,
    ) -> Result<EventLog, LogError> {
        EventLog::open_inner(
            lock.storage,
            dir,
            Some(lock.guard),
            replay_from,
            segment_bytes,
            on_record,
        )
    }

    /// Opens (creating `dir` if needed) the log in `dir`. Recovery: scans every segment from
    /// `replay_from` on and calls `on_record(position, payload)` for each valid record at or after
    /// `replay_from`, in order. `replay_from.segment == 0` replays from the very beginning. A torn
    /// tail of the last segment is truncated away with a `tracing::warn!`; any other damage returns
    /// [`LogError::Corrupt`] naming file and offset (the exact rules are in the module docs).
    /// Returns the opened log positioned at the end for appending.
    #[allow(clippy::type_complexity)]
    pub fn open(
        dir: &Path,
        replay_from: LogPosition,
        segment_bytes: u64,
        on_record: &mut dyn FnMut(LogPosition, &[u8]) -> Result<(), ReplayError>,
    ) -> Result<EventLog, LogError> {
        EventLog::open_with(
            Arc::new(RealStorage),
            dir,
            replay_from,
            segment_bytes,
            on_record,
        )
    }

    /// [`EventLog::open`] on the given storage (tests inject faults and power losses through it).
    #[allow(clippy::type_complexity)]
    pub fn open_with(
        storage: Arc<dyn Storage>,
        dir: &Path,
        replay_from: LogPosition,
        segment_bytes: u64,
        on_record: &mut dyn FnMut(LogPosition, &[u8]) -> Result<(), ReplayError>,
    ) -> Result<EventLog, LogError> {
        EventLog::open_inner(storage, dir, None, replay_from, segment_bytes, on_record)
    }

    #[allow(clippy::type_complexity)]
    fn open_inner(
        storage: Arc<dyn Storage>,
        dir: &Path,
        lock: Option<Box<dyn Any + Send>>,
        replay_from: LogPosition,
        segment_bytes: u64,
        on_record: &mut dyn FnMut(LogPosition, &[u8]) -> Result<(), ReplayError>,
    ) -> Result<EventLog, LogError> {
        let fs = &*storage;
        create_dir_durably(fs, dir).map_err(io_err("create directory", dir))?;
        let lock = match lock {
            Some(lock) => lock,
            None => lock_dir(fs, dir)?,
        };
        let numbers = list_segments(fs, dir)?;
        let start = replay_from.segment.max(1);
        // The newest segment the log ever created (a log written before the marker existed has
        // none, and is checked as before): one missing at the end lost acknowledged events.
        let recorded = list_manifests(fs, dir)?.last().copied();
        check_newest_present(dir, &numbers, recorded)?;

        let Some(&last) = numbers.last() else {
            if start > 1 || (replay_from.segment == 1 && replay_from.offset > HEADER_LEN) {
                return Err(LogError::Corrupt {
                    path: segment_path(dir, start),
                    offset: replay_from.offset,
                    reason: format!(
                        "replay position {replay_from} lies beyond the end of an empty log"
                    ),
                });
            }
            let path = segment_path(dir, 1);
            let mut file = fs.create_new(&path).map_err(io_err("create", &path))?;
            file.write_all(&MAGIC).map_err(io_err("write", &path))?;
            file.sync_data().map_err(io_err("sync", &path))?;
            sync_dir(fs, dir)?;
            record_newest(fs, dir, 1, 1)?;
            return Ok(EventLog::new(
                storage.clone(),
                dir,
                segment_bytes,
                lock,
                file,
                path,
                1,
                HEADER_LEN,
                BTreeMap::new(),
            ));
        };

        check_replay_segments(dir, &numbers, start, last, replay_from)?;

        let mut older = BTreeMap::new();
        for &n in numbers.iter().filter(|&&n| n < start) {
            let path = segment_path(dir, n);
            let size = fs.len(&path).map_err(io_err("stat", &path))?;
            older.insert(n, size);
        }
        let mut tail_scan = None;
        for n in start..=last {
            let path = segment_path(dir, n);
            let scan = scan_segment(fs, &path, n, n == last, replay_from, true, on_record)?;
            if n == last {
                tail_scan = Some((path, scan));
            } else {
                older.insert(n, scan.file_len);
            }
        }
        let Some((path, scan)) = tail_scan else {
            unreachable!("start <= last, so the last segment was scanned");
        };

        let mut file = fs.open_append(&path).map_err(io_err("open", &path))?;
        let file_len = repair_torn_tail(&mut *file, &path, &scan)?;
        // What was replayed may have been written with Durability::None by an earlier process and
        // still sit in the page cache: make it (and any repair) durable before building on it, so
        // that later rolls and Fsync commits never depend on data this process did not sync.
        file.sync_data().map_err(io_err("sync", &path))?;
        sync_dir(fs, dir)?;
        if recorded != Some(last) {
            // A log from before the marker, or a crash between a segment's creation and its
            // marker: record what is there now.
            record_newest(fs, dir, last, last)?;
        }
        Ok(EventLog::new(
            storage.clone(),
            dir,
            segment_bytes,
            lock,
            file,
            path,
            last,
            file_len,
            older,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        storage: Arc<dyn Storage>,
        dir: &Path,
        segment_bytes: u64,
        lock: Box<dyn Any + Send>,
        file: Box<dyn AppendFile>,
        file_path: PathBuf,
        segment: u64,
        file_len: u64,
        older: BTreeMap<u64, u64>,
    ) -> EventLog {
        let end = LogPosition {
            segment,
            offset: file_len,
        };
        EventLog {
            storage,
            dir: dir.to_path_buf(),
            segment_bytes,
            _lock: lock,
            file,
            file_path,
            segment,
            file_len,
            file_dirty: false,
            dir_dirty: false,
            older_bytes: older.values().sum(),
            older,
            end,
            tail: end,
            buf: Vec::new(),
            rolls: Vec::new(),
            poisoned: None,
            #[cfg(test)]
            fault: None,
            #[cfg(test)]
            syncs: 0,
        }
    }

    /// Buffers one record in memory (no IO) and returns its position. The payload must be 1 byte to
    /// [`MAX_PAYLOAD_BYTES`] long; a rejected payload does not poison the log.
    pub fn append(&mut self, payload: &[u8]) -> Result<LogPosition, LogError> {
        self.check_poisoned()?;
        if payload.is_empty() {
            return Err(LogError::EmptyPayload);
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(LogError::PayloadTooLarge { len: payload.len() });
        }
        if self.tail.offset > HEADER_LEN && self.tail.offset >= self.segment_bytes {
            self.rolls.push(self.buf.len());
            self.tail = LogPosition {
                segment: self.tail.segment + 1,
                offset: HEADER_LEN,
            };
        }
        let position = self.tail;
        let len_bytes = (payload.len() as u32).to_le_bytes();
        let crc = frame_crc(&len_bytes, payload);
        self.buf.reserve(FRAME_HEADER_LEN as usize + payload.len());
        self.buf.extend_from_slice(&len_bytes);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf.extend_from_slice(payload);
        self.tail.offset += FRAME_HEADER_LEN + payload.len() as u64;
        Ok(position)
    }

    /// Writes everything appended since the last commit (one `write_all` per segment touched) and,
    /// with [`Durability::Fsync`], `fdatasync`s the segment and syncs the directory if a segment was
    /// created since it was last synced; data written by earlier `Durability::None` commits is
    /// covered too. Returns the end position. Any IO error poisons the log.
    pub fn commit(&mut self, durability: Durability) -> Result<LogPosition, LogError> {
        self.check_poisoned()?;
        let buf = std::mem::take(&mut self.buf);
        let rolls = std::mem::take(&mut self.rolls);
        let result = self.write_out(&buf, &rolls, durability);
        self.buf = buf;
        self.buf.clear();
        if self.buf.capacity() > KEEP_BUFFER_BYTES {
            self.buf.shrink_to(KEEP_BUFFER_BYTES);
        }
        self.rolls = rolls;
        self.rolls.clear();
        match result {
            Ok(()) => {
                self.end = self.tail;
                Ok(self.end)
            }
            Err(error) => {
                self.poison(&error);
                Err(error)
            }
        }
    }

    /// Makes everything committed so far durable, whatever durability the commits used:
    /// `fdatasync`s the newest segment if it was written since its last sync and syncs the
    /// directory if a segment was created since. Records appended but not committed are not
    /// written. Call it before recording [`EventLog::end`] anywhere durable (a snapshot's position),
    /// so that position never lies beyond what survives a power loss. A failure poisons the log
    /// like a failed [`EventLog::commit`].
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.check_poisoned()?;
        let result = self.sync_current().and_then(|()| {
            if self.dir_dirty {
                sync_dir(&*self.storage, &self.dir)?;
                self.dir_dirty = false;
            }
            Ok(())
        });
        if let Err(error) = &result {
            self.poison(error);
        }
        result
    }

    /// Whether an earlier write or sync failed: the log then accepts nothing until it is dropped and
    /// opened again (the engine should stop ingesting and let the daemon restart).
    pub fn poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Poisons the log after a failed write or sync and discards what the failed attempt may have
    /// left in the files.
    fn poison(&mut self, error: &LogError) {
        self.poisoned = Some(error.to_string());
        self.discard_failed_tail();
    }

    /// Best effort, after a failed write or sync: truncates the segment holding the last committed
    /// record back to [`EventLog::end`], removes segment files created after it, syncs both, so that
    /// a restart in the same boot does not replay (from the page cache) records that were never
    /// acknowledged. Errors are logged, not returned: the log is poisoned already, and `open` copes
    /// with whatever is left (a torn tail is truncated there).
    fn discard_failed_tail(&mut self) {
        let end = self.end;
        let mut removed = false;
        // One past the newest known segment too: a failed create may still have left a file.
        // Segments a marker says exist must stay (a missing one is refused at open): those are
        // cut back to their header instead, which replays nothing. When the markers cannot be
        // listed, any segment may be named by one: none is removed.
        let recorded = match list_manifests(&*self.storage, &self.dir) {
            Ok(numbers) => numbers.last().copied().unwrap_or(0),
            Err(error) => {
                tracing::error!(
                    %error,
                    "event log: cannot list the segment markers; emptying the segments created by a failed commit instead of removing them"
                );
                u64::MAX
            }
        };
        for n in (end.segment + 1..=self.segment + 1).rev() {
            let path = segment_path(&self.dir, n);
            if n <= recorded {
                let emptied = self.storage.open_append(&path).and_then(|mut file| {
                    file.set_len(0)?;
                    file.write_all(&MAGIC)?;
                    file.sync_data()
                });
                if let Err(error) = emptied {
                    tracing::error!(
                        file = %path.display(),
                        %error,
                        "event log: cannot empty a segment created by a failed commit"
                    );
                }
                if let Some(size) = self.older.remove(&n) {
                    self.older_bytes -= size;
                }
                continue;
            }
            match self.storage.remove(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(error) => tracing::error!(
                    file = %path.display(),
                    %error,
                    "event log: cannot remove a segment created by a failed commit"
                ),
            }
            if let Some(size) = self.older.remove(&n) {
                self.older_bytes -= size;
            }
        }
        if self.segment != end.segment {
            if let Some(size) = self.older.remove(&end.segment) {
                self.older_bytes -= size;
            }
            let path = segment_path(&self.dir, end.segment);
            match self.storage.open_append(&path) {
                Ok(file) => {
                    self.file = file;
                    self.file_path = path;
                    self.segment = end.segment;
                }
                Err(error) => {
                    tracing::error!(
                        file = %path.display(),
                        %error,
                        "event log: cannot open the last committed segment to truncate it"
                    );
                    self.segment = end.segment;
                    self.file_path = path;
                    self.file_len = end.offset;
                    self.tail = end;
                    if removed {
                        self.sync_dir_best_effort();
                    }
                    return;
                }
            }
        }
        self.file_len = end.offset;
        self.tail = end;
        match self
            .file
            .set_len(end.offset)
            .and_then(|()| self.file.sync_data())
        {
            Ok(()) => tracing::warn!(
                file = %self.file_path.display(),
                offset = end.offset,
                "event log: truncated the failed commit's bytes"
            ),
            Err(error) => tracing::error!(
                file = %self.file_path.display(),
                offset = end.offset,
                %error,
                "event log: cannot truncate the failed commit's bytes; the next open truncates \
                 a torn tail, but whole records of the failed commit may be replayed"
            ),
        }
        self.file_dirty = false;
        self.sync_dir_best_effort();
    }

    fn sync_dir_best_effort(&mut self) {
        match sync_dir(&*self.storage, &self.dir) {
            Ok(()) => self.dir_dirty = false,
            Err(error) => tracing::error!(%error, "event log: cannot sync the directory"),
        }
    }

    /// The position after the last committed record.
    pub fn end(&self) -> LogPosition {
        self.end
    }

    /// Deletes segment files that lie wholly before `position` (segment number < `position.segment`),
    /// oldest first, never the newest segment, then syncs the directory. Returns how many were
    /// deleted. Allowed on a poisoned log.
    pub fn delete_segments_before(&mut self, position: LogPosition) -> Result<usize, LogError> {
        let doomed: Vec<u64> = self
            .older
            .range(..position.segment)
            .map(|(&n, _)| n)
            .collect();
        let mut deleted = 0;
        for n in doomed {
            let path = segment_path(&self.dir, n);
            match self.storage.remove(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    if deleted > 0 {
                        let _ = sync_dir(&*self.storage, &self.dir);
                    }
                    return Err(io_err("delete", &path)(e));
                }
            }
            if let Some(size) = self.older.remove(&n) {
                self.older_bytes -= size;
            }
            deleted += 1;
        }
        if deleted > 0 {
            sync_dir(&*self.storage, &self.dir)?;
        }
        Ok(deleted)
    }

    /// Total bytes of all segment files (for a gauge).
    pub fn disk_bytes(&self) -> u64 {
        self.older_bytes + self.file_len
    }

    fn check_poisoned(&self) -> Result<(), LogError> {
        match &self.poisoned {
            Some(cause) => Err(LogError::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    fn write_out(
        &mut self,
        buf: &[u8],
        rolls: &[usize],
        durability: Durability,
    ) -> Result<(), LogError> {
        let mut start = 0;
        for &at in rolls {
            self.write_current(&buf[start..at])?;
            self.start_next_segment()?;
            start = at;
        }
        self.write_current(&buf[start..])?;
        if durability == Durability::Fsync {
            self.sync_current()?;
            if self.dir_dirty {
                sync_dir(&*self.storage, &self.dir)?;
                self.dir_dirty = false;
            }
        }
        Ok(())
    }

    fn write_current(&mut self, data: &[u8]) -> Result<(), LogError> {
        if data.is_empty() {
            return Ok(());
        }
        self.file_dirty = true;
        #[cfg(test)]
        if self.fault == Some(Fault::ShortWrite) {
            self.fault = None;
            let half = &data[..data.len() / 2];
            self.file
                .write_all(half)
                .map_err(io_err("write", &self.file_path))?;
            self.file_len += half.len() as u64;
            return Err(io_err("write", &self.file_path)(io::Error::other(
                "injected short write",
            )));
        }
        self.file
            .write_all(data)
            .map_err(io_err("write", &self.file_path))?;
        self.file_len += data.len() as u64;
        Ok(())
    }

    fn sync_current(&mut self) -> Result<(), LogError> {
        if !self.file_dirty {
            return Ok(());
        }
        #[cfg(test)]
        if self.fault == Some(Fault::Sync) {
            self.fault = None;
            return Err(io_err("sync", &self.file_path)(io::Error::other(
                "injected sync failure",
            )));
        }
        self.file
            .sync_data()
            .map_err(io_err("sync", &self.file_path))?;
        self.file_dirty = false;
        #[cfg(test)]
        {
            self.syncs += 1;
        }
        Ok(())
    }

    /// Makes the full newest segment (and its directory entry) durable, then creates the next one.
    fn start_next_segment(&mut self) -> Result<(), LogError> {
        self.sync_current()?;
        if self.dir_dirty {
            sync_dir(&*self.storage, &self.dir)?;
            self.dir_dirty = false;
        }
        let number = self.segment + 1;
        let path = segment_path(&self.dir, number);
        let file = self
            .storage
            .create_new(&path)
            .map_err(io_err("create", &path))?;
        self.dir_dirty = true;
        self.older.insert(self.segment, self.file_len);
        self.older_bytes += self.file_len;
        self.file = file;
        self.file_path = path;
        self.segment = number;
        self.file_len = 0;
        self.file_dirty = false;
        self.write_current(&MAGIC)?;
        // The new segment's entry durable first, then the marker that says it exists: a marker
        // never outlives its segment through a power loss. The previous marker is kept (a failed
        // commit may fall back to the previous segment, `discard_failed_tail`).
        sync_dir(&*self.storage, &self.dir)?;
        self.dir_dirty = false;
        record_newest(&*self.storage, &self.dir, number, number - 1)
    }
}

#[cfg(test)]
mod tests;
