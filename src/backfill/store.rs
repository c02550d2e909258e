//! `backlogd backfill --store DIR`: a new store whose snapshot is the state at the end of a
//! backfill, daily history included, so that a daemon started on it continues from the past the
//! events describe (`GET /v1/history`, the report) instead of from the day the events were sent.
//!
//! The store is what the daemon itself would leave after a snapshot and before any later event: a
//! snapshot in `snapshots.sqlite` that covers the log from its very beginning, the configuration
//! source it was built under, and no log segments. Only a directory without a store is written: a
//! store in use (or one that holds events) is never overwritten.

use std::path::{Path, PathBuf};

use crate::config::ConfigSource;
use crate::core::State;
use crate::store::log::LogPosition;
use crate::store::snapshot::{self, SnapshotMeta};
use crate::store::storage::{RealStorage, create_dir_durably};

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

/// Refuses a directory that holds a store (or the start of one): `snapshots.sqlite` or `log/`.
/// `write` checks it; callers check it before a long backfill too, so that none is wasted.
pub fn refuse_existing(dir: &Path) -> Result<(), StoreError> {
    match ["snapshots.sqlite", "log"]
        .into_iter()
        .find(|name| dir.join(name).exists())
    {
        Some(name) => Err(StoreError::NotEmpty(dir.to_owned(), name)),
        None => Ok(()),
    }
}

/// Writes `state` as the snapshot of a new store in `dir` (created if missing), recording `source`
/// as the configuration it was built under and, when given, the stream position its events cover
/// (a daemon's NATS source resumes right after it).
pub fn write(
    dir: &Path,
    state: &State,
    source: &ConfigSource,
    stream_position: Option<&crate::store::SourcePosition>,
) -> Result<Written, StoreError> {
    let io = |message: String| StoreError::Io {
        path: dir.to_owned(),
        message,
    };
    refuse_existing(dir)?;
    let snapshots = dir.join("snapshots.sqlite");
    create_dir_durably(&RealStorage, dir).map_err(|e| io(format!("cannot create: {e}")))?;
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
    .map_err(|e| io(format!("cannot write {}: {e}", snapshots.display())))?;
    Ok(Written {
        snapshot_bytes: bytes.len(),
        open_cases: state.open_cases(),
        history_days: state.daily_history().len(),
    })
}
