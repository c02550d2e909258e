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
