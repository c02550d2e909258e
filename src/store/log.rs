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
//!   the replay start (the path names the missing file), a replay start older than the oldest
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
//! back to [`EventLog::end`], removes segment files the failed commit created, and syncs file and
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
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::storage::{AppendFile, RealStorage, Storage, create_dir_durably};

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
    /// Another `EventLog` (in this or another process) has the directory open.
    #[error("event log: {} is locked by another open log", path.display())]
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

impl EventLog {
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
        on_record: &mut dyn FnMut(LogPosition, &[u8]) -> Result<(), String>,
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
        on_record: &mut dyn FnMut(LogPosition, &[u8]) -> Result<(), String>,
    ) -> Result<EventLog, LogError> {
        let fs = &*storage;
        create_dir_durably(fs, dir).map_err(io_err("create directory", dir))?;
        let lock = lock_dir(fs, dir)?;
        let numbers = list_segments(fs, dir)?;
        let start = replay_from.segment.max(1);

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

        if start > last {
            return Err(LogError::Corrupt {
                path: segment_path(dir, start),
                offset: replay_from.offset,
                reason: format!(
                    "replay position {replay_from} lies beyond the newest segment {last}"
                ),
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
        let mut file_len = scan.valid_end;
        match scan.damage {
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
                    .map_err(io_err("truncate", &path))?;
            }
            Some(TailDamage::Header) => {
                tracing::warn!(
                    file = %path.display(),
                    offset = 0,
                    discarded_bytes = scan.file_len,
                    "event log: rewriting torn segment header"
                );
                file.set_len(0).map_err(io_err("truncate", &path))?;
                file.write_all(&MAGIC).map_err(io_err("write", &path))?;
                file_len = HEADER_LEN;
            }
        }
        // What was replayed may have been written with Durability::None by an earlier process and
        // still sit in the page cache: make it (and any repair) durable before building on it, so
        // that later rolls and Fsync commits never depend on data this process did not sync.
        file.sync_data().map_err(io_err("sync", &path))?;
        sync_dir(fs, dir)?;
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
        for n in (end.segment + 1..=self.segment + 1).rev() {
            let path = segment_path(&self.dir, n);
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
        self.write_current(&MAGIC)
    }
}

/// CRC32C over the 4 length bytes followed by the payload.
fn frame_crc(len_bytes: &[u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len_bytes), payload)
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LogError {
    let path = path.to_path_buf();
    move |error| LogError::Io { op, path, error }
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(segment_file_name(segment))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn lock_dir(storage: &dyn Storage, dir: &Path) -> Result<Box<dyn Any + Send>, LogError> {
    let path = dir.join(LOCK_FILE);
    match storage.lock(&path) {
        Ok(Some(guard)) => Ok(guard),
        Ok(None) => Err(LogError::Locked { path }),
        Err(error) => Err(io_err("lock", &path)(error)),
    }
}

fn sync_dir(storage: &dyn Storage, dir: &Path) -> Result<(), LogError> {
    storage.sync_dir(dir).map_err(io_err("sync directory", dir))
}

/// Segment numbers present in `dir`, ascending.
fn list_segments(storage: &dyn Storage, dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut numbers = Vec::new();
    for name in storage.list(dir).map_err(io_err("list directory", dir))? {
        let Some(number) = parse_segment_name(&name) else {
            continue;
        };
        if number == 0 {
            return Err(LogError::Corrupt {
                path: dir.join(name),
                offset: 0,
                reason: "segment numbers start at 1".to_string(),
            });
        }
        numbers.push(number);
    }
    numbers.sort_unstable();
    Ok(numbers)
}

type OnRecord<'a> = dyn FnMut(LogPosition, &[u8]) -> Result<(), String> + 'a;

enum TailDamage {
    /// The last segment's header is torn (a magic prefix followed only by zeros).
    Header,
    /// A torn frame starts at `valid_end`.
    Frame { reason: String },
}

struct SegmentScan {
    file_len: u64,
    /// Offset after the last valid record.
    valid_end: u64,
    /// Torn-tail damage to repair (only ever set for the last segment).
    damage: Option<TailDamage>,
}

/// Scans one segment (see the recovery rules). With `hint`, a refused last segment names the repair
/// command in its error.
fn scan_segment(
    storage: &dyn Storage,
    path: &Path,
    segment: u64,
    is_last: bool,
    replay_from: LogPosition,
    hint: bool,
    on_record: &mut OnRecord<'_>,
) -> Result<SegmentScan, LogError> {
    let read_err = || io_err("read", path);
    let mut file = storage.open_read(path).map_err(io_err("open", path))?;
    let file_len = file.size().map_err(io_err("stat", path))?;
    // A replay position inside this segment must be a record boundary or its valid end.
    let replay_offset = (replay_from.segment == segment && replay_from.offset > HEADER_LEN)
        .then_some(replay_from.offset);
    let beyond_end = |valid_end: u64| LogError::Corrupt {
        path: path.to_path_buf(),
        offset: replay_from.offset,
        reason: format!(
            "replay position {replay_from} lies beyond the end of the segment's valid records (offset {valid_end})"
        ),
    };

    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let mut header = [0u8; HEADER_LEN as usize];
    let header_ok = file_len >= HEADER_LEN && {
        reader.read_exact(&mut header).map_err(read_err())?;
        header == MAGIC
    };
    if !header_ok {
        let mut file = reader.into_inner();
        if is_last && is_torn_header(&mut file).map_err(read_err())? {
            if replay_offset.is_some() {
                return Err(beyond_end(HEADER_LEN));
            }
            return Ok(SegmentScan {
                file_len,
                valid_end: HEADER_LEN,
                damage: Some(TailDamage::Header),
            });
        }
        return Err(LogError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: format!(
                "bad segment header (expected the magic {:?})",
                String::from_utf8_lossy(&MAGIC)
            ),
        });
    }

    let mut replay_found = replay_offset.is_none();
    let mut payload = Vec::new();
    let mut offset = HEADER_LEN;
    let bad = loop {
        let remaining = file_len - offset;
        if remaining == 0 {
            break None;
        }
        if remaining < FRAME_HEADER_LEN {
            break Some(format!("incomplete record header ({remaining} bytes)"));
        }
        let mut frame = [0u8; FRAME_HEADER_LEN as usize];
        reader.read_exact(&mut frame).map_err(read_err())?;
        let len_bytes = [frame[0], frame[1], frame[2], frame[3]];
        let len = u32::from_le_bytes(len_bytes);
        let stored_crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if len == 0 {
            break Some("record length 0".to_string());
        }
        if len as usize > MAX_PAYLOAD_BYTES {
            break Some(format!(
                "record length {len} exceeds the maximum {MAX_PAYLOAD_BYTES}"
            ));
        }
        if u64::from(len) > remaining - FRAME_HEADER_LEN {
            break Some(format!(
                "incomplete record: length {len} but only {} bytes follow",
                remaining - FRAME_HEADER_LEN
            ));
        }
        payload.resize(len as usize, 0);
        reader.read_exact(&mut payload).map_err(read_err())?;
        let crc = frame_crc(&len_bytes, &payload);
        if crc != stored_crc {
            break Some(format!(
                "CRC mismatch (stored {stored_crc:08x}, computed {crc:08x})"
            ));
        }

        let position = LogPosition { segment, offset };
        if let Some(target) = replay_offset
            && !replay_found
        {
            if offset == target {
                replay_found = true;
            } else if offset > target {
                return Err(LogError::Corrupt {
                    path: path.to_path_buf(),
                    offset: target,
                    reason: format!(
                        "replay position {replay_from} is inside a record, not at a record boundary"
                    ),
                });
            }
        }
        if position >= replay_from {
            on_record(position, &payload)
                .map_err(|message| LogError::Replay { position, message })?;
        }
        offset += FRAME_HEADER_LEN + u64::from(len);
    };

    if let Some(target) = replay_offset
        && !replay_found
        && target != offset
    {
        return Err(beyond_end(offset));
    }
    let damage = match bad {
        None => None,
        Some(reason) if !is_last => {
            return Err(LogError::Corrupt {
                path: path.to_path_buf(),
                offset,
                reason: format!(
                    "{reason} (in a segment that has a successor, so not a torn write)"
                ),
            });
        }
        Some(reason) => {
            let mut file = reader.into_inner();
            if let Some(valid) =
                find_valid_frame(&mut file, offset + 1, file_len).map_err(read_err())?
            {
                let mut reason = format!("{reason}, but a valid record follows at offset {valid}");
                if hint {
                    reason.push_str(&repair_hint(path, offset));
                }
                return Err(LogError::Corrupt {
                    path: path.to_path_buf(),
                    offset,
                    reason,
                });
            }
            Some(TailDamage::Frame { reason })
        }
    };
    Ok(SegmentScan {
        file_len,
        valid_end: offset,
        damage,
    })
}

/// What a refusal to open a last segment with garbage after a bad frame tells the operator to run.
fn repair_hint(path: &Path, offset: u64) -> String {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        ". After a power loss or crash this can be a never-acknowledged tail written out of order, \
         or it is media corruption: the log cannot tell. See what lies after it with \
         `backlogd repair --store {dir}`; discard it (only if nothing after it was acknowledged, see \
         docs/store.md) with `backlogd repair --store {dir} --truncate-at {file}:{offset}`",
        dir = dir.display()
    )
}

/// One segment as [`inspect`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub segment: u64,
    pub path: PathBuf,
    /// File size.
    pub bytes: u64,
    /// Valid records before the end or the damage.
    pub records: u64,
}

/// The first damage [`inspect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub path: PathBuf,
    pub segment: u64,
    /// Where the first bad frame (or the bad header, 0) starts.
    pub offset: u64,
    pub reason: String,
    /// A torn tail that [`EventLog::open`] truncates by itself; otherwise `open` refuses the log.
    pub torn_tail: bool,
    /// In the newest segment, so [`truncate_tail`] may cut it.
    pub in_last_segment: bool,
    /// Bytes from `offset` to the end of the file.
    pub bytes_after: u64,
    /// Valid-looking records (plausible length, matching CRC) after `offset`.
    pub records_after: u64,
}

impl Damage {
    /// The position to pass to [`truncate_tail`].
    pub fn position(&self) -> LogPosition {
        LogPosition {
            segment: self.segment,
            offset: self.offset,
        }
    }
}

/// What [`inspect`] found in a log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub dir: PathBuf,
    /// Segments scanned, oldest first, up to and including the damaged one.
    pub segments: Vec<SegmentInfo>,
    /// Segments after the damaged one, not scanned.
    pub unscanned: Vec<u64>,
    /// Valid records before the damage (or in all, without damage).
    pub records: u64,
    pub damage: Option<Damage>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes: u64 = self.segments.iter().map(|s| s.bytes).sum();
        writeln!(
            f,
            "event log {}: {} segment(s) scanned, {} valid record(s), {bytes} bytes",
            self.dir.display(),
            self.segments.len(),
            self.records
        )?;
        for segment in &self.segments {
            writeln!(
                f,
                "  {}  {} bytes  {} record(s)",
                segment_file_name(segment.segment),
                segment.bytes,
                segment.records
            )?;
        }
        if !self.unscanned.is_empty() {
            writeln!(
                f,
                "  {} later segment(s) not scanned (after the damage)",
                self.unscanned.len()
            )?;
        }
        let Some(damage) = &self.damage else {
            return writeln!(f, "no damage: the log opens as it is");
        };
        let file = segment_file_name(damage.segment);
        writeln!(
            f,
            "damage: {file} at offset {}: {}",
            damage.offset, damage.reason
        )?;
        writeln!(
            f,
            "  after it: {} byte(s), {} valid-looking record(s)",
            damage.bytes_after, damage.records_after
        )?;
        if damage.torn_tail {
            writeln!(
                f,
                "a torn tail: the daemon truncates it by itself at start (nothing to do)"
            )
        } else if damage.in_last_segment {
            writeln!(
                f,
                "the daemon refuses to start. If this follows a power loss or crash and nothing \
                 after this point was acknowledged (docs/store.md), discard it with:\n  \
                 backlogd repair --store {} --truncate-at {file}:{}",
                self.dir.display(),
                damage.offset
            )
        } else {
            writeln!(
                f,
                "the daemon refuses to start; this is not in the newest segment, so it is not a \
                 torn write and repair cannot cut it: restore from a backup (docs/store.md)"
            )
        }
    }
}

/// What [`truncate_tail`] cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    pub path: PathBuf,
    pub offset: u64,
    pub bytes_discarded: u64,
    pub records_discarded: u64,
}

/// Scans the log in `dir` read-only (every segment from the oldest present, records counted, none
/// replayed) and reports the first damage. Takes the directory lock while it reads, so it fails with
/// [`LogError::Locked`] while a daemon has the log open.
pub fn inspect(dir: &Path) -> Result<Report, LogError> {
    inspect_with(&RealStorage, dir)
}

/// [`inspect`] on the given storage.
pub fn inspect_with(storage: &dyn Storage, dir: &Path) -> Result<Report, LogError> {
    let _lock = lock_dir(storage, dir)?;
    inspect_locked(storage, dir)
}

fn inspect_locked(storage: &dyn Storage, dir: &Path) -> Result<Report, LogError> {
    let numbers = list_segments(storage, dir)?;
    let mut report = Report {
        dir: dir.to_path_buf(),
        segments: Vec::new(),
        unscanned: Vec::new(),
        records: 0,
        damage: None,
    };
    let (Some(&first), Some(&last)) = (numbers.first(), numbers.last()) else {
        return Ok(report);
    };
    for (expected, &n) in (first..).zip(&numbers) {
        if n != expected {
            report.damage = Some(Damage {
                path: segment_path(dir, expected),
                segment: expected,
                offset: 0,
                reason: format!(
                    "segment file missing: segments {expected}..={} are absent",
                    n - 1
                ),
                torn_tail: false,
                in_last_segment: false,
                bytes_after: 0,
                records_after: 0,
            });
            return Ok(report);
        }
    }
    for (i, &n) in numbers.iter().enumerate() {
        let path = segment_path(dir, n);
        let mut records = 0u64;
        let scanned = scan_segment(
            storage,
            &path,
            n,
            n == last,
            LogPosition::default(),
            false,
            &mut |_, _| {
                records += 1;
                Ok(())
            },
        );
        report.records += records;
        let bytes = storage.len(&path).map_err(io_err("stat", &path))?;
        report.segments.push(SegmentInfo {
            segment: n,
            path: path.clone(),
            bytes,
            records,
        });
        let damage = match scanned {
            Ok(SegmentScan { damage: None, .. }) => continue,
            Ok(SegmentScan {
                damage: Some(damage),
                valid_end,
                file_len,
            }) => {
                let (offset, reason) = match damage {
                    TailDamage::Header => (0, "torn segment header".to_string()),
                    TailDamage::Frame { reason } => (valid_end, reason),
                };
                Damage {
                    path,
                    segment: n,
                    offset,
                    reason,
                    torn_tail: true,
                    in_last_segment: true,
                    bytes_after: file_len - offset,
                    records_after: 0,
                }
            }
            Err(LogError::Corrupt { offset, reason, .. }) => {
                let mut file = storage.open_read(&path).map_err(io_err("open", &path))?;
                let records_after = count_valid_frames(&mut file, offset.max(HEADER_LEN), bytes)
                    .map_err(io_err("read", &path))?;
                Damage {
                    path,
                    segment: n,
                    offset,
                    reason,
                    torn_tail: false,
                    in_last_segment: n == last,
                    bytes_after: bytes.saturating_sub(offset),
                    records_after,
                }
            }
            Err(other) => return Err(other),
        };
        report.damage = Some(damage);
        report.unscanned = numbers[i + 1..].to_vec();
        break;
    }
    Ok(report)
}

/// Valid frames from `from` on, resynchronising after each bad byte.
fn count_valid_frames<R: Read + Seek>(file: &mut R, from: u64, file_len: u64) -> io::Result<u64> {
    let mut count = 0;
    let mut at = from;
    while let Some(valid) = find_valid_frame(file, at, file_len)? {
        count += 1;
        file.seek(SeekFrom::Start(valid))?;
        let mut len_bytes = [0u8; 4];
        file.read_exact(&mut len_bytes)?;
        at = valid + FRAME_HEADER_LEN + u64::from(u32::from_le_bytes(len_bytes));
    }
    Ok(count)
}

/// Cuts the newest segment of the log in `dir` at `at`, which must be exactly where [`inspect`]
/// reports the first damage (and that damage must lie in the newest segment); then syncs file and
/// directory. Refuses ([`LogError::Refused`]) otherwise, and fails with [`LogError::Locked`] while a
/// daemon has the log open. Everything from `at` on is discarded.
pub fn truncate_tail(dir: &Path, at: LogPosition) -> Result<Truncation, LogError> {
    truncate_tail_with(&RealStorage, dir, at)
}

/// [`truncate_tail`] on the given storage.
pub fn truncate_tail_with(
    storage: &dyn Storage,
    dir: &Path,
    at: LogPosition,
) -> Result<Truncation, LogError> {
    let _lock = lock_dir(storage, dir)?;
    let report = inspect_locked(storage, dir)?;
    let Some(damage) = report.damage else {
        return Err(LogError::Refused {
            reason: format!("{} has no damage to cut", dir.display()),
        });
    };
    let found = format!(
        "the first damage is in {} at offset {}",
        segment_file_name(damage.segment),
        damage.offset
    );
    if !damage.in_last_segment {
        return Err(LogError::Refused {
            reason: format!("{found}, which is not the newest segment"),
        });
    }
    if damage.position() != at {
        return Err(LogError::Refused {
            reason: format!(
                "{found}, not at {}:{}",
                segment_file_name(at.segment),
                at.offset
            ),
        });
    }
    let path = damage.path;
    let mut file = storage.open_append(&path).map_err(io_err("open", &path))?;
    file.set_len(damage.offset)
        .map_err(io_err("truncate", &path))?;
    file.sync_data().map_err(io_err("sync", &path))?;
    sync_dir(storage, dir)?;
    tracing::warn!(
        file = %path.display(),
        offset = damage.offset,
        discarded_bytes = damage.bytes_after,
        discarded_records = damage.records_after,
        "event log: repair truncated the newest segment"
    );
    Ok(Truncation {
        path,
        offset: damage.offset,
        bytes_discarded: damage.bytes_after,
        records_discarded: damage.records_after,
    })
}

/// The file name of segment `segment`, e.g. `00000000000000000003.log`.
pub fn segment_file_name(segment: u64) -> String {
    format!("{segment:020}.log")
}

/// The segment number of a segment file name (or path), e.g. 3 for `00000000000000000003.log`.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let name = Path::new(name).file_name()?.to_str()?;
    parse_segment_name(name)
}

/// Whether the whole file is a (possibly empty) prefix of the magic followed only by zero bytes.
fn is_torn_header<R: Read + Seek>(file: &mut R) -> io::Result<bool> {
    file.seek(SeekFrom::Start(0))?;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut position = 0usize;
    let mut in_magic = true;
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for &byte in &chunk[..n] {
            if in_magic && position < MAGIC.len() && byte == MAGIC[position] {
                position += 1;
                continue;
            }
            in_magic = false;
            if byte != 0 {
                return Ok(false);
            }
        }
    }
}

/// The first offset in `from..file_len` at which a complete frame with a plausible length and a
/// matching CRC starts, if any.
fn find_valid_frame<R: Read + Seek>(
    file: &mut R,
    from: u64,
    file_len: u64,
) -> io::Result<Option<u64>> {
    const WINDOW: usize = 1 << 20;
    let header = FRAME_HEADER_LEN as usize;
    let mut window = vec![0u8; WINDOW + header - 1];
    let mut payload = Vec::new();
    let mut base = from;
    while base + FRAME_HEADER_LEN <= file_len {
        let n = (window.len() as u64).min(file_len - base) as usize;
        file.seek(SeekFrom::Start(base))?;
        file.read_exact(&mut window[..n])?;
        // Every offset whose 8 header bytes lie inside the window.
        let candidates = n - (header - 1);
        for i in 0..candidates {
            let len_bytes = [window[i], window[i + 1], window[i + 2], window[i + 3]];
            let len = u32::from_le_bytes(len_bytes) as usize;
            let at = base + i as u64;
            if len == 0 || len > MAX_PAYLOAD_BYTES || at + FRAME_HEADER_LEN + len as u64 > file_len
            {
                continue;
            }
            let stored_crc =
                u32::from_le_bytes([window[i + 4], window[i + 5], window[i + 6], window[i + 7]]);
            let start = i + header;
            let crc = if start + len <= n {
                frame_crc(&len_bytes, &window[start..start + len])
            } else {
                payload.resize(len, 0);
                file.seek(SeekFrom::Start(at + FRAME_HEADER_LEN))?;
                file.read_exact(&mut payload)?;
                frame_crc(&len_bytes, &payload)
            };
            if crc == stored_crc {
                return Ok(Some(at));
            }
        }
        base += candidates as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
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
    fn write_all(
        log: &mut EventLog,
        payloads: &[Vec<u8>],
        durability: Durability,
    ) -> Vec<LogPosition> {
        let positions = payloads.iter().map(|p| log.append(p).unwrap()).collect();
        log.commit(durability).unwrap();
        positions
    }

    fn expect_corrupt(
        result: Result<(EventLog, Records), LogError>,
    ) -> (PathBuf, u64, String, String) {
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
        assert_eq!(
            segment_numbers(dir),
            vec![1],
            "segments of the failed group removed"
        );
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
        assert_eq!(log.end(), end);
        let next = write_all(&mut log, &[b"after".to_vec()], Durability::Fsync);
        assert_eq!(next, vec![end]);
        drop(log);
        let (_, records) = open_all(dir, 200);
        assert_eq!(records.len(), 4);
        assert_eq!(records[3], (end, b"after".to_vec()));
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
        assert!(log.dir_dirty && log.file_dirty);
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
        // A roll under Durability::None leaves the new segment and its directory entry unsynced.
        log.append(&[1; 30]).unwrap();
        log.append(b"b").unwrap();
        log.commit(Durability::None).unwrap();
        assert!(log.file_dirty && log.dir_dirty);
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
                Err("bad event".to_string())
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
}
