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

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::SourcePosition;
use super::log::LogPosition;
use crate::core::EpochNanos;

const CHUNK_BYTES: usize = 8 << 20;
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
    Ok(connection)
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
    let tx = connection.transaction()?;
    tx.execute(
        "INSERT INTO snapshots (taken_at_ns, log_segment, log_offset, bytes, open_cases, settings,
             source_position)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            meta.taken_at,
            meta.position.segment as i64,
            meta.position.offset as i64,
            bytes.len() as i64,
            open_cases,
            settings,
            source_position.map(SourcePosition::to_bytes)
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
pub fn latest_meta(path: &Path) -> anyhow::Result<Option<SnapshotMeta>> {
    if !path.exists() {
        return Ok(None);
    }
    let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| anyhow::anyhow!("cannot open snapshot database {}: {e}", path.display()))?;
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
        Err(e) => anyhow::bail!("cannot read snapshot database {}: {e}", path.display()),
    };
    let Some((taken_at, segment, offset)) = newest else {
        return Ok(None);
    };
    Ok(Some(SnapshotMeta {
        position: position_from_columns(path, segment, offset)?,
        taken_at,
    }))
}

fn position_from_columns(path: &Path, segment: i64, offset: i64) -> anyhow::Result<LogPosition> {
    match (u64::try_from(segment), u64::try_from(offset)) {
        (Ok(segment), Ok(offset)) => Ok(LogPosition { segment, offset }),
        _ => anyhow::bail!(
            "snapshot in {} has an invalid log position {segment}:{offset}",
            path.display()
        ),
    }
}

/// A snapshot read back: the state's bytes, what it covers, and the settings it was built under
/// (`None` for snapshots written before they were recorded).
pub struct Loaded {
    pub bytes: Vec<u8>,
    pub meta: SnapshotMeta,
    pub settings: Option<Vec<u8>>,
    /// The stream source's committed position, if the snapshot records one.
    pub source_position: Option<SourcePosition>,
}

/// The newest snapshot, or `None` when there is none.
pub fn load_latest(path: &Path) -> anyhow::Result<Option<Loaded>> {
    if !path.exists() {
        return Ok(None);
    }
    let connection = open(path)
        .map_err(|e| anyhow::anyhow!("cannot open snapshot database {}: {e}", path.display()))?;
    let newest = connection
        .query_row(
            "SELECT id, taken_at_ns, log_segment, log_offset, bytes, settings, source_position
             FROM snapshots ORDER BY id DESC LIMIT 1",
            [],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, Option<Vec<u8>>>(5)?,
                    row.get::<_, Option<Vec<u8>>>(6)?,
                ))
            },
        )
        .optional()?;
    let Some((id, taken_at, segment, offset, length, settings, source_position)) = newest else {
        return Ok(None);
    };
    let source_position = match source_position {
        None => None,
        Some(bytes) => Some(SourcePosition::from_bytes(&bytes).ok_or_else(|| {
            anyhow::anyhow!(
                "snapshot {id} in {} has an invalid source position",
                path.display()
            )
        })?),
    };
    let position = position_from_columns(path, segment, offset)?;
    // The length column is not trusted for an allocation: it must equal what the chunks hold.
    let present: i64 = connection.query_row(
        "SELECT COALESCE(SUM(length(data)), 0) FROM snapshot_chunks WHERE snapshot_id = ?1",
        params![id],
        |row| row.get(0),
    )?;
    if length != present {
        anyhow::bail!(
            "snapshot {id} in {} is damaged: it records {length} bytes but its chunks hold {present}",
            path.display()
        );
    }
    let capacity = usize::try_from(present).map_err(|_| {
        anyhow::anyhow!(
            "snapshot {id} in {} is too large ({present} bytes)",
            path.display()
        )
    })?;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(capacity).map_err(|e| {
        anyhow::anyhow!(
            "snapshot {id} in {}: cannot allocate {present} bytes: {e}",
            path.display()
        )
    })?;
    let mut select = connection
        .prepare("SELECT data FROM snapshot_chunks WHERE snapshot_id = ?1 ORDER BY seq")?;
    let mut rows = select.query(params![id])?;
    while let Some(row) = rows.next()? {
        let chunk = row.get_ref(0)?.as_blob()?;
        if bytes.len() + chunk.len() > capacity {
            anyhow::bail!(
                "snapshot {id} in {} changed while it was read",
                path.display()
            );
        }
        bytes.extend_from_slice(chunk);
    }
    if bytes.len() != capacity {
        anyhow::bail!(
            "snapshot {id} in {} is incomplete: {} of {length} bytes",
            path.display(),
            bytes.len()
        );
    }
    Ok(Some(Loaded {
        bytes,
        meta: SnapshotMeta { position, taken_at },
        settings,
        source_position,
    }))
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
    pub fn start(path: PathBuf) -> Writer {
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
}
