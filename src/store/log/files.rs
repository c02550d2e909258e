//! The log directory's files: segment names, the lock, directory syncs and listing, and the frame
//! checksum.

use std::any::Any;
use std::io;
use std::path::{Path, PathBuf};

use super::super::storage::Storage;
use super::{LOCK_FILE, LogError};

/// CRC32C over the 4 length bytes followed by the payload.
pub(super) fn frame_crc(len_bytes: &[u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len_bytes), payload)
}

pub(super) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LogError {
    let path = path.to_path_buf();
    move |error| LogError::Io { op, path, error }
}

pub(super) fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(segment_file_name(segment))
}

pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(super) fn lock_dir(storage: &dyn Storage, dir: &Path) -> Result<Box<dyn Any + Send>, LogError> {
    let path = dir.join(LOCK_FILE);
    match storage.lock(&path) {
        Ok(Some(guard)) => Ok(guard),
        Ok(None) => Err(LogError::Locked { path }),
        Err(error) => Err(io_err("lock", &path)(error)),
    }
}

pub(super) fn sync_dir(storage: &dyn Storage, dir: &Path) -> Result<(), LogError> {
    storage.sync_dir(dir).map_err(io_err("sync directory", dir))
}

/// Segment numbers present in `dir`, ascending.
pub(super) fn list_segments(storage: &dyn Storage, dir: &Path) -> Result<Vec<u64>, LogError> {
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

/// The file name of segment `segment`, e.g. `00000000000000000003.log`.
pub fn segment_file_name(segment: u64) -> String {
    format!("{segment:020}.log")
}

/// The segment number of a segment file name (or path), e.g. 3 for `00000000000000000003.log`.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let name = Path::new(name).file_name()?.to_str()?;
    parse_segment_name(name)
}

/// The prefix of the newest-segment marker's name: `MANIFEST-{segment:020}`. The name is the
/// record (the file is empty): the newest segment the log ever created. It is written after that
/// segment's directory entry is durable, so whenever a marker survives, so does its segment (or
/// someone deleted it). Markers of older numbers are left behind one roll, then removed.
const MANIFEST_PREFIX: &str = "MANIFEST-";

pub(super) fn manifest_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{MANIFEST_PREFIX}{segment:020}"))
}

/// The segment numbers of the newest-segment markers in `dir`, ascending.
pub(super) fn list_manifests(storage: &dyn Storage, dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut numbers: Vec<u64> = storage
        .list(dir)
        .map_err(io_err("list directory", dir))?
        .iter()
        .filter_map(|name| {
            let digits = name.strip_prefix(MANIFEST_PREFIX)?;
            (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse().ok())
                .flatten()
        })
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// Records durably that segment `newest` exists (its directory entry must be durable already),
/// then removes the markers below `keep_from`.
pub(super) fn record_newest(
    storage: &dyn Storage,
    dir: &Path,
    newest: u64,
    keep_from: u64,
) -> Result<(), LogError> {
    let path = manifest_path(dir, newest);
    match storage.create_new(&path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("create", &path)(e)),
    }
    sync_dir(storage, dir)?;
    for old in list_manifests(storage, dir)? {
        if old < keep_from.min(newest) {
            // Best effort: an old marker left behind says less than the newest one.
            let _ = storage.remove(&manifest_path(dir, old));
        }
    }
    Ok(())
}
