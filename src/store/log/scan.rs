//! Recovery scanning of segment files: valid records, torn tails, torn headers and the resync
//! search for a valid frame after damage.

use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::{
    FRAME_HEADER_LEN, HEADER_LEN, LogError, LogPosition, MAGIC, MAX_PAYLOAD_BYTES,
    READ_BUFFER_BYTES, ReplayError, frame_crc, io_err,
};
use crate::store::storage::Storage;

pub(super) type OnRecord<'a> = dyn FnMut(LogPosition, &[u8]) -> Result<(), ReplayError> + 'a;

pub(super) enum TailDamage {
    /// The last segment's header is torn (a magic prefix followed only by zeros).
    Header,
    /// A torn frame starts at `valid_end`.
    Frame { reason: String },
}

pub(super) struct SegmentScan {
    pub(super) file_len: u64,
    /// Offset after the last valid record.
    pub(super) valid_end: u64,
    /// Torn-tail damage to repair (only ever set for the last segment).
    pub(super) damage: Option<TailDamage>,
}

/// Scans one segment (see the recovery rules). With `hint`, a refused last segment names the repair
/// command in its error.
pub(super) fn scan_segment(
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
                .map_err(|ReplayError(message)| LogError::Replay { position, message })?;
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

/// Valid frames from `from` on, resynchronising after each bad byte.
pub(super) fn count_valid_frames<R: Read + Seek>(
    file: &mut R,
    from: u64,
    file_len: u64,
) -> io::Result<u64> {
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
pub(super) fn find_valid_frame<R: Read + Seek>(
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
