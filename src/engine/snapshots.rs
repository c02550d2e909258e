//! Snapshots: when one is due, and taking it (the log synced up to the position it records first).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Engine;
use crate::store::snapshot::SnapshotMeta;

impl Engine {
    /// Durability step 4, after the answers: a snapshot when one is due. A reload is a settings
    /// record in the log, not a snapshot: replay switches the settings at that record, at its
    /// instant (`recover`), so the tail before it needs no snapshot, and a storm of reloads writes a
    /// few bytes each, never a full snapshot each.
    pub(super) fn snapshot_if_due(&mut self) {
        if self.last_snapshot.elapsed() >= self.store.snapshot_interval
            || self.logged_events >= self.store.snapshot_every_events
            || self.logged_bytes >= self.store.snapshot_every_bytes
        {
            self.snapshot_now();
        }
    }

    /// Deletes log segments covered by both durable snapshots kept, then submits a new snapshot if
    /// anything was logged since the last one. Encoding runs here (O(cases), a short pause); the
    /// SQLite write runs on the snapshot thread.
    pub(super) fn snapshot_now(&mut self) {
        self.last_snapshot = Instant::now();
        self.logged_events = 0;
        self.logged_bytes = 0;
        let Some(writer) = &self.snapshots else {
            return;
        };
        if let Some(durable) = writer.last_durable()
            && self.durable_snapshots[0] != Some(durable.position)
        {
            self.durable_snapshots = [Some(durable.position), self.durable_snapshots[0]];
        }
        if let Some(previous) = self.durable_snapshots[1] {
            match self.log.delete_segments_before(previous) {
                Ok(0) => {}
                Ok(n) => tracing::info!(segments = n, "deleted log segments covered by a snapshot"),
                Err(e) => tracing::warn!(error = %e, "cannot delete old log segments"),
            }
        }
        // After a log failure the state holds events that are not durable: never snapshot those.
        if self.handle.failed.load(Ordering::SeqCst) || self.log.end() == self.snapshot_position {
            return;
        }
        // The snapshot will say "replay from log.end()": that position must be durable before the
        // snapshot is, whatever store.durability says, or a power loss leaves a snapshot pointing
        // past the end of the log and a store that refuses to open.
        if let Err(e) = self.log.sync() {
            self.fail_store(&e.to_string());
            return;
        }
        let started = Instant::now();
        let bytes = self.state.encode_snapshot();
        tracing::debug!(
            bytes = bytes.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "state encoded for a snapshot"
        );
        let meta = SnapshotMeta {
            position: self.log.end(),
            taken_at: self.clock.now(),
        };
        self.snapshot_position = meta.position;
        writer.submit(
            bytes,
            meta,
            self.state.open_cases(),
            self.config_source.clone(),
            self.stream_position.clone(),
        );
    }
}
