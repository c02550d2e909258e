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
    let finder = FrameFinder::new(file, from, file_len)?;
    while let Some(valid) = finder.next(file, at)? {
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
    FrameFinder::new(file, from, file_len)?.next(file, from)
}

/// Finds valid frames in `origin..file_len` in time linear in its length, whatever the bytes say.
///
/// A damaged tail can claim a plausible length (up to 16 MiB) at almost every offset; checking
/// each candidate's CRC over its claimed payload would cost O(n × length) (a crafted 2 MiB tail
/// took 22 s). Instead one pass records the CRC of `origin..x` at every `CHECKPOINT` bytes. Then
/// the CRC of any range comes from two prefix CRCs (each a checkpoint extended by fewer than
/// `CHECKPOINT` bytes) and one shift: crc(A‖B) = crc(A)·x^(8|B|) ⊕ crc(B) over GF(2), the
/// identity `crc32c_combine` computes, with x^(8|B|) looked up in two tables (`Powers`). Memory:
/// 4 bytes per `CHECKPOINT` bytes of the range (64 KiB for a 64 MiB segment) plus the tables.
pub(super) struct FrameFinder {
    origin: u64,
    file_len: u64,
    /// `checkpoints[k]` = crc32c of `origin..origin + k·CHECKPOINT`.
    checkpoints: Vec<u32>,
}

const CHECKPOINT: u64 = 64;

impl FrameFinder {
    pub(super) fn new<R: Read + Seek>(
        file: &mut R,
        origin: u64,
        file_len: u64,
    ) -> io::Result<Self> {
        let mut checkpoints = vec![0u32];
        let mut crc = 0u32;
        let mut chunk = vec![0u8; 1 << 20];
        let mut at = origin;
        file.seek(SeekFrom::Start(origin))?;
        while at < file_len {
            let n = (chunk.len() as u64).min(file_len - at) as usize;
            file.read_exact(&mut chunk[..n])?;
            // `at - origin` is a multiple of CHECKPOINT here: chunks are whole checkpoints.
            for piece in chunk[..n].chunks(CHECKPOINT as usize) {
                crc = checksum(crc, piece);
                if piece.len() as u64 == CHECKPOINT {
                    checkpoints.push(crc);
                }
            }
            at += n as u64;
        }
        Ok(Self {
            origin,
            file_len,
            checkpoints,
        })
    }

    /// crc32c of `origin..x`: the checkpoint below `x` extended by the bytes up to it, taken from
    /// `window` (the bytes at `window_base`) when it holds them, else read.
    fn prefix<R: Read + Seek>(
        &self,
        file: &mut R,
        window: &[u8],
        window_base: u64,
        x: u64,
    ) -> io::Result<u32> {
        let k = (x - self.origin) / CHECKPOINT;
        let start = self.origin + k * CHECKPOINT;
        let crc = self.checkpoints[k as usize];
        if start >= window_base && x <= window_base + window.len() as u64 {
            let from = (start - window_base) as usize;
            return Ok(checksum(crc, &window[from..(x - window_base) as usize]));
        }
        let mut bytes = [0u8; CHECKPOINT as usize];
        let bytes = &mut bytes[..(x - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(bytes)?;
        Ok(checksum(crc, bytes))
    }

    /// The first valid frame at or after `from`.
    pub(super) fn next<R: Read + Seek>(&self, file: &mut R, from: u64) -> io::Result<Option<u64>> {
        const WINDOW: usize = 1 << 20;
        let header = FRAME_HEADER_LEN as usize;
        let powers = Powers::get();
        let mut window = vec![0u8; WINDOW + header - 1];
        let mut base = from;
        while base + FRAME_HEADER_LEN <= self.file_len {
            let n = (window.len() as u64).min(self.file_len - base) as usize;
            file.seek(SeekFrom::Start(base))?;
            file.read_exact(&mut window[..n])?;
            // Every offset whose 8 header bytes lie inside the window.
            let candidates = n - (header - 1);
            for i in 0..candidates {
                let len_bytes = [window[i], window[i + 1], window[i + 2], window[i + 3]];
                let len = u32::from_le_bytes(len_bytes) as usize;
                let at = base + i as u64;
                let end = at + FRAME_HEADER_LEN + len as u64;
                if len == 0 || len > MAX_PAYLOAD_BYTES || end > self.file_len {
                    continue;
                }
                let stored_crc = u32::from_le_bytes([
                    window[i + 4],
                    window[i + 5],
                    window[i + 6],
                    window[i + 7],
                ]);
                // frame_crc = crc(len ‖ payload) = (crc(len) ⊕ P[start])·x^(8·len) ⊕ P[end],
                // with P the prefix CRCs: crc(payload) = P[end] ⊕ P[start]·x^(8·len).
                let start = at + FRAME_HEADER_LEN;
                let before = self.prefix(file, &window[..n], base, start)?;
                let after = self.prefix(file, &window[..n], base, end)?;
                let crc = multiply(powers.of_bytes(len), checksum(0, &len_bytes) ^ before) ^ after;
                if crc == stored_crc {
                    return Ok(Some(at));
                }
            }
            base += candidates as u64;
        }
        Ok(None)
    }
}

/// The reflected CRC-32C polynomial (`crc32c`'s).
const POLY: u32 = 0x82F6_3B78;

/// a·b modulo the CRC-32C polynomial, both in the reflected bit order CRCs use (x^0 is the top
/// bit), as zlib's `multmodp`.
fn multiply(a: u32, mut b: u32) -> u32 {
    let mut m = 1u32 << 31;
    let mut p = 0;
    while m != 0 {
        if a & m != 0 {
            p ^= b;
        }
        m >>= 1;
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    p
}

/// x^(8·n) modulo the polynomial for every n up to 2^24 (so every payload length), as the product
/// of two table entries: `low[n % 4096]` · `high[n / 4096]`. 32 KiB, computed once.
struct Powers {
    low: Vec<u32>,
    high: Vec<u32>,
}

impl Powers {
    fn get() -> &'static Powers {
        static POWERS: std::sync::OnceLock<Powers> = std::sync::OnceLock::new();
        POWERS.get_or_init(|| {
            let one = 1u32 << 31;
            let x8 = 1u32 << 23;
            let mut low = vec![one; 4096];
            for i in 1..4096 {
                low[i] = multiply(low[i - 1], x8);
            }
            let step = multiply(low[4095], x8);
            // 4097 entries: a payload of exactly 16 MiB (2^24 bytes) is allowed.
            let mut high = vec![one; 4097];
            for i in 1..4097 {
                high[i] = multiply(high[i - 1], step);
            }
            Powers { low, high }
        })
    }

    fn of_bytes(&self, n: usize) -> u32 {
        debug_assert!(n <= MAX_PAYLOAD_BYTES, "payload lengths are at most 16 MiB");
        multiply(self.low[n % 4096], self.high[n / 4096])
    }
}

/// `crc32c_append`, counting the bytes it reads in tests (the finder's work must stay linear).
fn checksum(crc: u32, data: &[u8]) -> u32 {
    #[cfg(test)]
    CHECKSUMMED.with(|c| c.set(c.get() + data.len() as u64));
    crc32c::crc32c_append(crc, data)
}

#[cfg(test)]
thread_local! {
    /// Bytes `checksum` read on this thread.
    pub(super) static CHECKSUMMED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}
