//! State snapshots in SQLite (WAL mode, `synchronous = FULL`), written by a background thread off
//! the ingest path.
//!
//! A snapshot is the state's encoded bytes (see `core::state::codec`) plus the log position it
//! covers: every log record before that position is in the snapshot, every record from it on must be
//! replayed. The engine deletes log segments only once a snapshot covering them is durable.
//!
//! Schema: `snapshots(id, taken_at_ns, log_segment, log_offset, bytes, open_cases, settings)` and
//! `snapshot_chunks(snapshot_id, seq, data)`; the bytes are split into chunks of at most 8 MiB. The
//! two newest snapshots are kept. `settings` is the configuration source (see
//! `store::encode_settings`) the state was built under: the log tail after the snapshot is replayed
//! under it, not under whatever the configuration file says at the next start. It is NULL in
//! snapshots written before it existed (the column is added to older databases on open).
//! `source_position` (added the same way, NULL before it existed and without a stream source) is
//! the last committed position of the stream source (`store::SourcePosition::to_bytes`) as of the
//! snapshot's log position.
//!
//! `checksum` (added the same way; NULL in rows written before it existed, which load unchecked) is
//! the CRC32C of everything a row says: the state's bytes, the log position, the time, the settings
//! and the source position (`row_checksum`). A row whose checksum does not match is damaged: the
//! store falls back to an older intact row (`load_newest_intact`), and the log replays from there.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::SourcePosition;
use super::log::LogPosition;
use crate::core::EpochNanos;

const CHUNK_BYTES: usize = 8 << 20;

/// Why the snapshot database or one of its rows cannot be used; the text names the file and the
/// row.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotDbError {
    #[error("cannot open snapshot database {}: {error}", path.display())]
    Open {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error("cannot read snapshot database {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error("snapshot in {} has an invalid log position {segment}:{offset}", path.display())]
    InvalidPosition {
        path: PathBuf,
        segment: i64,
        offset: i64,
    },
    #[error("snapshot {id} in {} cannot be read: {error}", path.display())]
    RowUnreadable {
        path: PathBuf,
        id: i64,
        error: rusqlite::Error,
    },
    #[error("snapshot {id} in {} has an invalid source position", path.display())]
    InvalidSourcePosition { path: PathBuf, id: i64 },
    /// The row's parts disagree: its length with its chunks, its checksum with its contents, or
    /// a chunk is not a blob.
    #[error("snapshot {id} in {} is damaged: {reason}", path.display())]
    Damaged {
        path: PathBuf,
        id: i64,
        reason: String,
    },
    #[error("snapshot {id} in {} is too large ({bytes} bytes)", path.display())]
    TooLarge { path: PathBuf, id: i64, bytes: i64 },
    #[error("snapshot {id} in {}: cannot allocate {bytes} bytes: {reason}", path.display())]
    Allocation {
        path: PathBuf,
        id: i64,
        bytes: i64,
        reason: std::collections::TryReserveError,
    },
    #[error("snapshot {id} in {} changed while it was read", path.display())]
    Changed { path: PathBuf, id: i64 },
    #[error("snapshot {id} in {} is incomplete: {read} of {length} bytes", path.display())]
    Incomplete {
        path: PathBuf,
        id: i64,
        read: usize,
        length: i64,
    },
    /// The database cannot be read at all, with what an operator can do about it.
    #[error("{error}. {}", way_out(path))]
    Unusable {
        path: PathBuf,
        error: Box<SnapshotDbError>,
    },
    /// Every row is damaged: each row's damage, and the way out.
    #[error("no intact snapshot in {}: {}. {}", path.display(), reasons.join("; "), way_out(path))]
    NoneIntact { path: PathBuf, reasons: Vec<String> },
}
const KEEP: i64 = 2;

/// What a snapshot covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// Log records before this position are included.
    pub position: LogPosition,
    pub taken_at: EpochNanos,
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS snapshots (
             id INTEGER PRIMARY KEY,
             taken_at_ns INTEGER NOT NULL,
             log_segment INTEGER NOT NULL,
             log_offset INTEGER NOT NULL,
             bytes INTEGER NOT NULL,
             open_cases INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS snapshot_chunks (
             snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
             seq INTEGER NOT NULL,
             data BLOB NOT NULL,
             PRIMARY KEY (snapshot_id, seq)
         );",
    )?;
    let has_settings = connection
        .prepare("SELECT 1 FROM pragma_table_info('snapshots') WHERE name = 'settings'")?
        .exists([])?;
    if !has_settings {
        connection.execute_batch("ALTER TABLE snapshots ADD COLUMN settings BLOB")?;
    }
    let has_position = connection
        .prepare("SELECT 1 FROM pragma_table_info('snapshots') WHERE name = 'source_position'")?
        .exists([])?;
    if !has_position {
        connection.execute_batch("ALTER TABLE snapshots ADD COLUMN source_position BLOB")?;
    }
    let has_checksum = connection
        .prepare("SELECT 1 FROM pragma_table_info('snapshots') WHERE name = 'checksum'")?
        .exists([])?;
    if !has_checksum {
        connection.execute_batch("ALTER TABLE snapshots ADD COLUMN checksum INTEGER")?;
    }
    Ok(connection)
}

/// The CRC32C over everything a snapshot row says, in a fixed order: the state's bytes, the log
/// position (segment, offset) and the time (each `u64`/`i64` little-endian), the settings (its
/// length first) and the source position (a 0 byte for none, else 1 and its bytes). A flipped bit
/// anywhere in them changes it (CRC32C detects every error of up to 3 bits in the sizes here and
/// any other with probability 1 - 2^-32).
pub fn row_checksum(
    bytes: &[u8],
    meta: SnapshotMeta,
    settings: &[u8],
    source_position: Option<&[u8]>,
) -> u32 {
    let mut crc = crc32c::crc32c(bytes);
    crc = crc32c::crc32c_append(crc, &meta.position.segment.to_le_bytes());
    crc = crc32c::crc32c_append(crc, &meta.position.offset.to_le_bytes());
    crc = crc32c::crc32c_append(crc, &meta.taken_at.to_le_bytes());
    crc = crc32c::crc32c_append(crc, &(settings.len() as u64).to_le_bytes());
    crc = crc32c::crc32c_append(crc, settings);
    match source_position {
        None => crc32c::crc32c_append(crc, &[0]),
        Some(position) => {
            crc = crc32c::crc32c_append(crc, &[1]);
            crc32c::crc32c_append(crc, position)
        }
    }
}

/// Writes one snapshot durably and drops the older ones beyond the newest `KEEP`.
pub fn save(
    path: &Path,
    bytes: &[u8],
    meta: SnapshotMeta,
    open_cases: i64,
    settings: &[u8],
    source_position: Option<&SourcePosition>,
) -> rusqlite::Result<()> {
    let mut connection = open(path)?;
    let source_position = source_position.map(SourcePosition::to_bytes);
    let checksum = row_checksum(bytes, meta, settings, source_position.as_deref());
    let tx = connection.transaction()?;
    tx.execute(
        "INSERT INTO snapshots (taken_at_ns, log_segment, log_offset, bytes, open_cases, settings,
             source_position, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            meta.taken_at,
            meta.position.segment as i64,
            meta.position.offset as i64,
            bytes.len() as i64,
            open_cases,
            settings,
            source_position,
            i64::from(checksum)
        ],
    )?;
    let id = tx.last_insert_rowid();
    {
        let mut insert =
            tx.prepare("INSERT INTO snapshot_chunks (snapshot_id, seq, data) VALUES (?1, ?2, ?3)")?;
        for (seq, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
            insert.execute(params![id, seq as i64, chunk])?;
        }
    }
    tx.execute(
        "DELETE FROM snapshot_chunks WHERE snapshot_id IN
             (SELECT id FROM snapshots WHERE id <= ?1 - ?2)",
        params![id, KEEP],
    )?;
    tx.execute(
        "DELETE FROM snapshots WHERE id <= ?1 - ?2",
        params![id, KEEP],
    )?;
    tx.commit()
}

/// What the newest snapshot covers, without loading its bytes; `None` when there is none (or no
/// database).
pub fn latest_meta(path: &Path) -> Result<Option<SnapshotMeta>, SnapshotDbError> {
    if !path.exists() {
        return Ok(None);
    }
    let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|error| SnapshotDbError::Open {
            path: path.to_owned(),
            error,
        })?;
    let newest = connection
        .query_row(
            "SELECT taken_at_ns, log_segment, log_offset FROM snapshots ORDER BY id DESC LIMIT 1",
            [],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            },
        )
        .optional();
    let newest = match newest {
        Ok(newest) => newest,
        // A database the daemon never wrote a snapshot into has no table yet.
        Err(rusqlite::Error::SqliteFailure(_, Some(message)))
            if message.contains("no such table") =>
        {
            None
        }
        Err(error) => {
            return Err(SnapshotDbError::Read {
                path: path.to_owned(),
                error,
            });
        }
    };
    let Some((taken_at, segment, offset)) = newest else {
        return Ok(None);
    };
    Ok(Some(SnapshotMeta {
        position: position_from_columns(path, segment, offset)?,
        taken_at,
    }))
}

fn position_from_columns(
    path: &Path,
    segment: i64,
    offset: i64,
) -> Result<LogPosition, SnapshotDbError> {
    match (u64::try_from(segment), u64::try_from(offset)) {
        (Ok(segment), Ok(offset)) => Ok(LogPosition { segment, offset }),
        _ => Err(SnapshotDbError::InvalidPosition {
            path: path.to_owned(),
            segment,
            offset,
        }),
    }
}

/// A snapshot read back: the state's bytes, what it covers, and the settings it was built under
/// (`None` for snapshots written before they were recorded).
pub struct Loaded {
    /// The row's id (rows are numbered in the order they were written).
    pub id: i64,
    pub bytes: Vec<u8>,
    pub meta: SnapshotMeta,
    pub settings: Option<Vec<u8>>,
    /// The stream source's committed position, if the snapshot records one.
    pub source_position: Option<SourcePosition>,
    /// Whether the row carried a checksum (rows written before checksums existed do not).
    pub checked: bool,
}

/// The newest intact snapshot and what was passed over to find it.
pub struct Intact {
    pub loaded: Loaded,
    /// Newer rows that are damaged (checksum mismatch, unreadable, inconsistent): id and reason.
    pub damaged: Vec<(i64, String)>,
    /// The log position of the next older intact-looking row, if any (the log is kept back to it,
    /// so that a damaged newest snapshot can fall back to it).
    pub older: Option<LogPosition>,
}

/// The newest snapshot, or `None` when there is none. No fallback: a damaged newest row is an
/// error (recovery uses `load_newest_intact`).
pub fn load_latest(path: &Path) -> Result<Option<Loaded>, SnapshotDbError> {
    if !path.exists() {
        return Ok(None);
    }
    let connection = open_existing(path)?;
    match row_ids(&connection, path)?.first() {
        None => Ok(None),
        Some(&id) => load_row(&connection, path, id).map(Some),
    }
}

/// The newest snapshot whose row is intact (its checksum matches, or it has none), newest first
/// over the rows kept, with the damaged newer rows named; `None` when there is no snapshot. An
/// error when the database cannot be read at all or every row is damaged: the message names the
/// file, each row's damage and the way out.
pub fn load_newest_intact(path: &Path) -> Result<Option<Intact>, SnapshotDbError> {
    if !path.exists() {
        return Ok(None);
    }
    let unusable = |error| SnapshotDbError::Unusable {
        path: path.to_owned(),
        error: Box::new(error),
    };
    let connection = open_existing(path).map_err(unusable)?;
    let ids = row_ids(&connection, path).map_err(unusable)?;
    let mut damaged = Vec::new();
    for (index, &id) in ids.iter().enumerate() {
        match load_row(&connection, path, id) {
            Ok(loaded) => {
                let older = ids[index + 1..]
                    .iter()
                    .find_map(|&older| row_position(&connection, path, older).ok());
                return Ok(Some(Intact {
                    loaded,
                    damaged,
                    older,
                }));
            }
            Err(e) => damaged.push((id, e.to_string())),
        }
    }
    if damaged.is_empty() {
        return Ok(None);
    }
    Err(SnapshotDbError::NoneIntact {
        path: path.to_owned(),
        reasons: damaged.into_iter().map(|(_, reason)| reason).collect(),
    })
}

/// What an operator can do about a damaged snapshot database (docs/runbooks.md).
fn way_out(path: &Path) -> String {
    format!(
        "The snapshot database is damaged (disk or media error, or an edit). Restore {file} and the \
         log segments from a backup (docs/store.md, Restore), or, if the log still begins at segment \
         1, move {file} aside: the daemon then rebuilds the state from the whole log (docs/runbooks.md, \
         BacklogdSnapshotDamaged)",
        file = path.display()
    )
}

/// Removes damaged rows (after a recovery that fell back past them), so that the rows kept are
/// intact ones.
pub fn discard(path: &Path, ids: &[i64]) -> rusqlite::Result<()> {
    let mut connection = open(path)?;
    let tx = connection.transaction()?;
    for id in ids {
        tx.execute(
            "DELETE FROM snapshot_chunks WHERE snapshot_id = ?1",
            params![id],
        )?;
        tx.execute("DELETE FROM snapshots WHERE id = ?1", params![id])?;
    }
    tx.commit()
}

fn open_existing(path: &Path) -> Result<Connection, SnapshotDbError> {
    open(path).map_err(|error| SnapshotDbError::Open {
        path: path.to_owned(),
        error,
    })
}

/// The ids of the rows, newest first.
fn row_ids(connection: &Connection, path: &Path) -> Result<Vec<i64>, SnapshotDbError> {
    let read = || -> rusqlite::Result<Vec<i64>> {
        let mut select = connection.prepare("SELECT id FROM snapshots ORDER BY id DESC")?;
        let ids = select.query_map([], |row| row.get(0))?;
        ids.collect()
    };
    read().map_err(|error| SnapshotDbError::Read {
        path: path.to_owned(),
        error,
    })
}

fn row_position(
    connection: &Connection,
    path: &Path,
    id: i64,
) -> Result<LogPosition, SnapshotDbError> {
    let (segment, offset) = connection
        .query_row(
            "SELECT log_segment, log_offset FROM snapshots WHERE id = ?1",
            params![id],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
        )
        .map_err(|error| SnapshotDbError::RowUnreadable {
            path: path.to_owned(),
            id,
            error,
        })?;
    position_from_columns(path, segment, offset)
}

/// One row read back and checked: its chunks add up to its length, and its checksum (if it has
/// one) matches.
fn load_row(connection: &Connection, path: &Path, id: i64) -> Result<Loaded, SnapshotDbError> {
    let read = |error: rusqlite::Error| SnapshotDbError::RowUnreadable {
        path: path.to_owned(),
        id,
        error,
    };
    let damaged = |reason: String| SnapshotDbError::Damaged {
        path: path.to_owned(),
        id,
        reason,
    };
    let (taken_at, segment, offset, length, settings, source_position_bytes, checksum) = connection
        .query_row(
            "SELECT taken_at_ns, log_segment, log_offset, bytes, settings, source_position,
                 checksum
             FROM snapshots WHERE id = ?1",
            params![id],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<Vec<u8>>>(4)?,
                    row.get::<_, Option<Vec<u8>>>(5)?,
                    row.get::<_, Option<i64>>(6)?,
                ))
            },
        )
        .map_err(read)?;
    let source_position = match &source_position_bytes {
        None => None,
        Some(bytes) => Some(SourcePosition::from_bytes(bytes).ok_or_else(|| {
            SnapshotDbError::InvalidSourcePosition {
                path: path.to_owned(),
                id,
            }
        })?),
    };
    let position = position_from_columns(path, segment, offset)?;
    // The length column is not trusted for an allocation: it must equal what the chunks hold.
    let present: i64 = connection
        .query_row(
            "SELECT COALESCE(SUM(length(data)), 0) FROM snapshot_chunks WHERE snapshot_id = ?1",
            params![id],
            |row| row.get(0),
        )
        .map_err(read)?;
    if length != present {
        return Err(damaged(format!(
            "it records {length} bytes but its chunks hold {present}"
        )));
    }
    let capacity = usize::try_from(present).map_err(|_| SnapshotDbError::TooLarge {
        path: path.to_owned(),
        id,
        bytes: present,
    })?;
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(capacity)
        .map_err(|reason| SnapshotDbError::Allocation {
            path: path.to_owned(),
            id,
            bytes: present,
            reason,
        })?;
    let mut select = connection
        .prepare("SELECT data FROM snapshot_chunks WHERE snapshot_id = ?1 ORDER BY seq")
        .map_err(read)?;
    let mut rows = select.query(params![id]).map_err(read)?;
    while let Some(row) = rows.next().map_err(read)? {
        let chunk = row
            .get_ref(0)
            .map_err(read)?
            .as_blob()
            .map_err(|e| damaged(e.to_string()))?;
        if bytes.len() + chunk.len() > capacity {
            return Err(SnapshotDbError::Changed {
                path: path.to_owned(),
                id,
            });
        }
        bytes.extend_from_slice(chunk);
    }
    if bytes.len() != capacity {
        return Err(SnapshotDbError::Incomplete {
            path: path.to_owned(),
            id,
            read: bytes.len(),
            length,
        });
    }
    let meta = SnapshotMeta { position, taken_at };
    if let Some(stored) = checksum {
        let computed = row_checksum(
            &bytes,
            meta,
            settings.as_deref().unwrap_or_default(),
            source_position_bytes.as_deref(),
        );
        if stored != i64::from(computed) {
            return Err(damaged(format!(
                "its checksum does not match (stored {stored:08x}, computed {computed:08x})"
            )));
        }
    }
    Ok(Loaded {
        id,
        bytes,
        meta,
        settings,
        source_position,
        checked: checksum.is_some(),
    })
}

/// A background thread that writes submitted snapshots, one at a time; while one is being written a
/// newer submission replaces any that waits.
pub struct Writer {
    pending: Arc<(Mutex<WriterState>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A snapshot to write: state bytes, what they cover, open cases, settings source, stream source
/// position.
type Job = (
    Vec<u8>,
    SnapshotMeta,
    i64,
    Arc<[u8]>,
    Option<SourcePosition>,
);

#[derive(Default)]
struct WriterState {
    next: Option<Job>,
    busy: bool,
    durable: Option<SnapshotMeta>,
    stop: bool,
}

impl Writer {
    /// Starts the writer thread; `written` counts the snapshots it made durable.
    pub fn start(path: PathBuf, written: prometheus::IntCounter) -> Writer {
        let pending: Arc<(Mutex<WriterState>, std::sync::Condvar)> = Arc::default();
        let shared = pending.clone();
        let thread = std::thread::Builder::new()
            .name("backlogd-snapshot".into())
            .spawn(move || {
                let (lock, signal) = &*shared;
                loop {
                    let job = {
                        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
                        while state.next.is_none() && !state.stop {
                            state = signal.wait(state).unwrap_or_else(|e| e.into_inner());
                        }
                        match state.next.take() {
                            Some(job) => {
                                state.busy = true;
                                job
                            }
                            None => return,
                        }
                    };
                    let (bytes, meta, open_cases, settings, source_position) = job;
                    let started = std::time::Instant::now();
                    let result = save(
                        &path,
                        &bytes,
                        meta,
                        open_cases,
                        &settings,
                        source_position.as_ref(),
                    );
                    let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
                    state.busy = false;
                    match result {
                        Ok(()) => {
                            written.inc();
                            tracing::info!(
                                bytes = bytes.len(),
                                open_cases,
                                elapsed_ms = started.elapsed().as_millis() as u64,
                                "snapshot written"
                            );
                            state.durable = Some(meta);
                        }
                        Err(e) => tracing::error!(error = %e, path = %path.display(), "snapshot failed; the log is kept"),
                    }
                    signal.notify_all();
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!("cannot start the snapshot thread; snapshots are disabled");
        }
        Writer { pending, thread }
    }

    /// Queues a snapshot; replaces one that is queued but not yet started.
    pub fn submit(
        &self,
        bytes: Vec<u8>,
        meta: SnapshotMeta,
        open_cases: i64,
        settings: Arc<[u8]>,
        source_position: Option<SourcePosition>,
    ) {
        let (lock, signal) = &*self.pending;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        state.next = Some((bytes, meta, open_cases, settings, source_position));
        signal.notify_all();
    }

    /// The newest snapshot known to be durable.
    pub fn last_durable(&self) -> Option<SnapshotMeta> {
        let (lock, _) = &*self.pending;
        lock.lock().unwrap_or_else(|e| e.into_inner()).durable
    }

    /// Writes what is queued, then stops the thread.
    pub fn finish(mut self) {
        {
            let (lock, signal) = &*self.pending;
            let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
            state.stop = true;
            signal.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(segment: u64, offset: u64) -> SnapshotMeta {
        SnapshotMeta {
            position: LogPosition { segment, offset },
            taken_at: 42,
        }
    }

    #[test]
    fn round_trip_and_latest_meta() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("snapshots.sqlite");
        assert_eq!(latest_meta(&path).unwrap(), None);
        assert!(load_latest(&path).unwrap().is_none());
        save(&path, b"first", meta(1, 8), 1, b"", None).unwrap();
        assert_eq!(load_latest(&path).unwrap().unwrap().source_position, None);
        let position = SourcePosition {
            stream: "CASES".to_owned(),
            sequence: 41,
        };
        save(
            &path,
            &[7u8; 100],
            meta(3, 4711),
            2,
            b"settings",
            Some(&position),
        )
        .unwrap();
        assert_eq!(latest_meta(&path).unwrap(), Some(meta(3, 4711)));
        let loaded = load_latest(&path).unwrap().unwrap();
        assert_eq!(
            (
                loaded.bytes,
                loaded.meta,
                loaded.settings,
                loaded.source_position
            ),
            (
                vec![7u8; 100],
                meta(3, 4711),
                Some(b"settings".to_vec()),
                Some(position)
            )
        );
    }

    /// A database written before source positions existed (no such column) still loads, with no
    /// position, and takes new snapshots with one.
    #[test]
    fn older_databases_without_the_position_column_load() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("snapshots.sqlite");
        save(&path, b"old", meta(1, 8), 1, b"s", None).unwrap();
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch("ALTER TABLE snapshots DROP COLUMN source_position")
            .unwrap();
        drop(connection);
        let loaded = load_latest(&path).unwrap().unwrap();
        assert_eq!(
            (loaded.bytes, loaded.source_position),
            (b"old".to_vec(), None)
        );
        let position = SourcePosition {
            stream: "S".to_owned(),
            sequence: 7,
        };
        save(&path, b"new", meta(2, 8), 1, b"s", Some(&position)).unwrap();
        assert_eq!(
            load_latest(&path).unwrap().unwrap().source_position,
            Some(position)
        );
    }

    /// A damaged row must give an error, never a panic or an abort on allocation.
    #[test]
    fn damaged_length_or_position_columns_are_clean_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("snapshots.sqlite");
        save(&path, b"state bytes", meta(2, 100), 1, b"", None).unwrap();
        for (column, value, expected) in [
            ("bytes", -1i64, "records -1 bytes"),
            ("bytes", i64::MAX, "but its chunks hold 11"),
            ("bytes", 12, "records 12 bytes"),
            ("log_segment", -5, "invalid log position"),
            ("log_offset", -1, "invalid log position"),
        ] {
            let connection = Connection::open(&path).unwrap();
            connection
                .execute(
                    &format!("UPDATE snapshots SET {column} = ?1"),
                    params![value],
                )
                .unwrap();
            drop(connection);
            let error = load_latest(&path)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(expected), "{column} = {value}: {error}");
            // Restore the row for the next case.
            let connection = Connection::open(&path).unwrap();
            connection
                .execute(
                    "UPDATE snapshots SET bytes = 11, log_segment = 2, log_offset = 100",
                    [],
                )
                .unwrap();
        }
        assert!(load_latest(&path).unwrap().is_some());
        // Missing chunks are a clean error too.
        let connection = Connection::open(&path).unwrap();
        connection
            .execute("DELETE FROM snapshot_chunks", [])
            .unwrap();
        drop(connection);
        let error = load_latest(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("chunks hold 0"), "{error}");
    }

    /// Every single-byte change of a snapshot's bytes, and a change of each column the row's
    /// meaning depends on, is found at load (before checksums, all of them loaded): the newest row
    /// is refused by `load_latest`, and `load_newest_intact` falls back to the older intact row,
    /// naming the damaged one.
    #[test]
    fn a_changed_byte_anywhere_in_a_row_is_found_and_the_older_row_is_used() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("snapshots.sqlite");
        let older: Vec<u8> = (0..200u8).collect();
        let newer: Vec<u8> = (0..200u8).map(|b| b.wrapping_mul(7)).collect();
        let position = SourcePosition {
            stream: "S".to_owned(),
            sequence: 9,
        };
        save(&path, &older, meta(1, 8), 1, b"old settings", None).unwrap();
        save(&path, &newer, meta(2, 64), 2, b"settings", Some(&position)).unwrap();
        let connection = Connection::open(&path).unwrap();
        let newest: i64 = connection
            .query_row("SELECT MAX(id) FROM snapshots", [], |row| row.get(0))
            .unwrap();
        let check_fallback = |what: &str| {
            let error = load_latest(&path).err().map(|e| format!("{e:#}"));
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains("checksum does not match")),
                "{what}: {error:?}"
            );
            let intact = load_newest_intact(&path).unwrap().unwrap();
            assert_eq!(
                (
                    intact.loaded.bytes.as_slice(),
                    intact.loaded.meta,
                    intact.damaged.len()
                ),
                (older.as_slice(), meta(1, 8), 1),
                "{what}"
            );
            assert_eq!(intact.damaged[0].0, newest, "{what}");
        };
        let mut checked = 0;
        for at in 0..newer.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut damaged = newer.clone();
                damaged[at] ^= flip;
                connection
                    .execute(
                        "UPDATE snapshot_chunks SET data = ?1 WHERE snapshot_id = ?2",
                        params![damaged, newest],
                    )
                    .unwrap();
                check_fallback(&format!("byte {at} ^ {flip:#04x}"));
                checked += 1;
            }
        }
        connection
            .execute(
                "UPDATE snapshot_chunks SET data = ?1 WHERE snapshot_id = ?2",
                params![newer, newest],
            )
            .unwrap();
        assert_eq!(load_latest(&path).unwrap().unwrap().bytes, newer);
        for (column, value) in [
            ("log_segment", rusqlite::types::Value::Integer(3)),
            ("log_offset", rusqlite::types::Value::Integer(72)),
            ("taken_at_ns", rusqlite::types::Value::Integer(43)),
            (
                "settings",
                rusqlite::types::Value::Blob(b"settingz".to_vec()),
            ),
            (
                "source_position",
                rusqlite::types::Value::Blob(position_bytes(10)),
            ),
        ] {
            let original: rusqlite::types::Value = connection
                .query_row(
                    &format!("SELECT {column} FROM snapshots WHERE id = ?1"),
                    params![newest],
                    |row| row.get(0),
                )
                .unwrap();
            connection
                .execute(
                    &format!("UPDATE snapshots SET {column} = ?1 WHERE id = ?2"),
                    params![value, newest],
                )
                .unwrap();
            check_fallback(column);
            connection
                .execute(
                    &format!("UPDATE snapshots SET {column} = ?1 WHERE id = ?2"),
                    params![original, newest],
                )
                .unwrap();
            checked += 1;
        }
        assert_eq!(load_latest(&path).unwrap().unwrap().bytes, newer);
        eprintln!("{checked} changed rows, each refused and fallen back from");
        // With both rows damaged there is nothing to fall back to: refused, with the way out.
        connection
            .execute("UPDATE snapshots SET taken_at_ns = taken_at_ns + 1", [])
            .unwrap();
        let error = load_newest_intact(&path)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(
            error.contains("no intact snapshot")
                && error.contains("Restore")
                && error.contains("docs/runbooks.md"),
            "{error}"
        );
    }

    fn position_bytes(sequence: u64) -> Vec<u8> {
        SourcePosition {
            stream: "S".to_owned(),
            sequence,
        }
        .to_bytes()
    }

    /// Rows written before checksums existed (no such column, or NULL in it) load unchecked.
    #[test]
    fn rows_without_a_checksum_load() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("snapshots.sqlite");
        save(&path, b"old", meta(1, 8), 1, b"s", None).unwrap();
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch("ALTER TABLE snapshots DROP COLUMN checksum")
            .unwrap();
        drop(connection);
        let loaded = load_latest(&path).unwrap().unwrap();
        assert_eq!(
            (loaded.bytes.as_slice(), loaded.checked),
            (b"old".as_slice(), false)
        );
        // The column is back, NULL in the old row; a new row has one.
        save(&path, b"new", meta(2, 8), 1, b"s", None).unwrap();
        let intact = load_newest_intact(&path).unwrap().unwrap();
        assert_eq!(
            (
                intact.loaded.bytes.as_slice(),
                intact.loaded.checked,
                intact.older
            ),
            (
                b"new".as_slice(),
                true,
                Some(LogPosition {
                    segment: 1,
                    offset: 8
                })
            )
        );
    }
}
