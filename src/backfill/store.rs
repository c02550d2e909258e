//! `backlogd backfill --store DIR`: a new store whose snapshot is the state at the end of a
//! backfill, daily history included, so that a daemon started on it continues from the past the
//! events describe (`GET /v1/history`, the report) instead of from the day the events were sent.
//!
//! The store is what the daemon itself would leave after a snapshot and before any later event: a
//! snapshot in `snapshots.sqlite` that covers the log from its very beginning, the configuration
//! source it was built under, and no log segments. Only a directory without a store is written: a
//! store in use (or one that holds events) is never overwritten, and the store's lock is held from
//! the start of the backfill until its snapshot is durable, so no daemon starts on it meanwhile.

use std::path::{Path, PathBuf};

use crate::config::ConfigSource;
use crate::core::State;
use crate::store::log::LogPosition;
use crate::store::snapshot::{self, SnapshotMeta};

/// What `write` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub snapshot_bytes: usize,
    pub open_cases: i64,
    pub history_days: usize,
}

/// Why no store was written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "--store {0}: the directory already holds a store ({1}); give an empty or new directory (a store is never overwritten)"
    )]
    NotEmpty(PathBuf, &'static str),
    #[error("--store {path}: {message}")]
    Io { path: PathBuf, message: String },
}

/// A store being seeded: the directory's lock (the one the daemon takes before it reads a
/// snapshot) is held from `begin` until the snapshot is written, so a daemon started on the
/// directory meanwhile refuses to start, by name, instead of starting empty and later writing a
/// snapshot over the seeded state. Dropped without `write` (a failed backfill), it removes what
/// `begin` created.
pub struct Seeding {
    dir: PathBuf,
    /// Held until the snapshot is durable.
    lock: Option<crate::store::log::DirLock>,
    /// The outermost directory `begin` created (`dir` itself, or its `log/`), removed on failure.
    created: Option<PathBuf>,
}

/// Locks `dir` for seeding and refuses a directory that holds a store (or the start of one):
/// `snapshots.sqlite`, or log segments. Call it before a long backfill, so that none is wasted and
/// no daemon starts on the directory meanwhile.
pub fn begin(dir: &Path) -> Result<Seeding, StoreError> {
    let io = |message: String| StoreError::Io {
        path: dir.to_owned(),
        message,
    };
    let created = if !dir.exists() {
        Some(dir.to_owned())
    } else if !dir.join("log").exists() {
        Some(dir.join("log"))
    } else {
        None
    };
    let lock =
        crate::store::log::lock_directory(&dir.join("log")).map_err(|e| io(e.to_string()))?;
    let mut seeding = Seeding {
        dir: dir.to_owned(),
        lock: Some(lock),
        created,
    };
    if dir.join("snapshots.sqlite").exists() {
        return Err(StoreError::NotEmpty(dir.to_owned(), "snapshots.sqlite"));
    }
    let segments = std::fs::read_dir(dir.join("log"))
        .map_err(|e| io(format!("cannot list log/: {e}")))?
        .filter_map(Result::ok)
        .any(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(crate::store::log::parse_segment_file_name)
                .is_some()
        });
    if segments {
        // Not created by us: keep everything.
        seeding.created = None;
        return Err(StoreError::NotEmpty(dir.to_owned(), "log segments in log/"));
    }
    Ok(seeding)
}

impl Seeding {
    /// Writes `state` as the snapshot of the new store, recording `source` as the configuration
    /// it was built under and, when given, the stream position its events cover (a daemon's NATS
    /// source resumes right after it); then releases the lock.
    pub fn write(
        mut self,
        state: &State,
        source: &ConfigSource,
        stream_position: Option<&crate::store::SourcePosition>,
    ) -> Result<Written, StoreError> {
        let snapshots = self.dir.join("snapshots.sqlite");
        let bytes = state.encode_snapshot();
        let meta = SnapshotMeta {
            // Replay from the very beginning of a log that has no records yet.
            position: LogPosition::default(),
            taken_at: crate::core::time::to_nanos_saturating(jiff::Timestamp::now()),
        };
        snapshot::save(
            &snapshots,
            &bytes,
            meta,
            state.open_cases(),
            &source.to_bytes(),
            stream_position,
        )
        .map_err(|e| StoreError::Io {
            path: self.dir.clone(),
            message: format!("cannot write {}: {e}", snapshots.display()),
        })?;
        // The store is whole: nothing to remove any more.
        self.created = None;
        self.lock.take();
        Ok(Written {
            snapshot_bytes: bytes.len(),
            open_cases: state.open_cases(),
            history_days: state.daily_history().len(),
        })
    }
}

impl Drop for Seeding {
    fn drop(&mut self) {
        if let Some(created) = self.created.take() {
            // Best effort: a failed backfill leaves the directory as it found it.
            let _ = std::fs::remove_dir_all(created);
        }
    }
}

/// Writes `state` as the snapshot of a new store in `dir` (created if missing): `begin` then
/// `Seeding::write`.
pub fn write(
    dir: &Path,
    state: &State,
    source: &ConfigSource,
    stream_position: Option<&crate::store::SourcePosition>,
) -> Result<Written, StoreError> {
    begin(dir)?.write(state, source, stream_position)
}
