//! Offline inspection and repair of a log directory (`backlogd repair`): [`inspect`] and
//! [`truncate_tail`].

use std::fmt;
use std::path::{Path, PathBuf};

use super::scan::{SegmentScan, TailDamage, count_valid_frames, scan_segment};
use super::{
    HEADER_LEN, LogError, LogPosition, io_err, list_segments, lock_dir, segment_file_name,
    segment_path, sync_dir,
};
use crate::store::storage::{RealStorage, Storage};

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
    /// A torn tail that [`EventLog::open`](super::EventLog::open) truncates by itself; otherwise
    /// `open` refuses the log.
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
