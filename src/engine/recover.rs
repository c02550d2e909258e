//! Recovery at start: the newest snapshot, then the log tail replayed (`replay.rs`), then the
//! current configuration switched in and logged if it differs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::core::{CoreSettings, SnapshotError, State};
use crate::store::encode_settings;
use crate::store::log::{self, LogPosition, ReplayError};
use crate::store::snapshot;
use crate::telemetry::Telemetry;
use crate::workforce::{EdgeSettings, WorkforceBuilder};

use super::replay::{self, Replayed};

/// Why the state cannot be recovered from the store; the daemon does not start. The text is the
/// whole story (it names the file, the position or the setting, and the way out).
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("store.path: cannot create {}: {error}", dir.display())]
    CreateDir {
        dir: std::path::PathBuf,
        error: std::io::Error,
    },
    /// The log cannot be locked, opened or replayed, or the records recovery writes cannot be
    /// committed.
    #[error(transparent)]
    Log(#[from] log::LogError),
    /// The snapshot database cannot be read.
    #[error(transparent)]
    SnapshotDb(#[from] snapshot::SnapshotDbError),
    /// The newest intact snapshot does not decode.
    #[error("snapshot in {} cannot be loaded: {error}", path.display())]
    Decode {
        path: std::path::PathBuf,
        error: SnapshotError,
    },
    /// The newest snapshot is damaged and the log does not replay from the one before it.
    #[error(
        "the newest snapshot in {} is damaged ({}), and the log does not replay from the \
         previous one (at log position {from}): {error}. Restore the store from a backup \
         (docs/store.md, Restore; docs/runbooks.md, BacklogdSnapshotDamaged)",
        path.display(),
        reasons.join("; ")
    )]
    NoFallback {
        path: std::path::PathBuf,
        reasons: Vec<String>,
        from: LogPosition,
        error: Box<RecoverError>,
    },
    /// A log record cannot be replayed.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The current configuration cannot be applied to the recovered state.
    #[error("the configuration cannot be applied to the stored state: {0}")]
    Switch(SnapshotError),
    /// A stream source would read its stream from the start into a store that holds events.
    #[error(
        "the store holds events but no position in the NATS stream {stream:?} (it was \
         seeded by `backlogd backfill --store`, fed over HTTP, or consumed another \
         stream): reading {stream:?} from its start would apply its events again. \
         Set sources.nats.start_after to the last stream sequence the store's events \
         cover (0 reads the whole stream anyway), or seed the store with `backlogd \
         backfill --store DIR --stream-position {stream}:SEQUENCE`"
    )]
    NoStreamPosition { stream: String },
}
use super::reload::{settings_from, switch_settings};
use super::{Clock, Engine, EngineHandle, StoreSettings};

impl Engine {
    /// Recovers the state: the newest snapshot, decoded under the settings it was built with, then
    /// the log tail replayed under the settings each event was applied with (settings records
    /// switch them), then, if the configuration now differs, a switch to it that is itself logged.
    pub(super) fn recover(
        store: StoreSettings,
        clock: Clock,
        settings: Arc<CoreSettings>,
        config_source: Arc<[u8]>,
        edge: Arc<EdgeSettings>,
        telemetry: Arc<Telemetry>,
        handle: EngineHandle,
    ) -> Result<Engine, RecoverError> {
        let started = Instant::now();
        // Created durably: a first boot's directory entries survive a power loss.
        crate::store::storage::create_dir_durably(&*store.storage, &store.dir).map_err(
            |error| RecoverError::CreateDir {
                dir: store.dir.clone(),
                error,
            },
        )?;
        // The store's lock first, before the snapshot is read: a `backlogd backfill --store`
        // still writing this store (or another daemon) makes the start fail here, by name, instead
        // of starting empty and overwriting the backfill's snapshot with the next one.
        let lock = log::lock_directory_with(store.storage.clone(), &store.dir.join("log"))?;
        let snapshot_path = store.dir.join("snapshots.sqlite");
        // The newest intact snapshot: a damaged newer one (checksum mismatch, unreadable) is
        // passed over, by name, and the log replays from the older one's position, which the log
        // still covers unless it was deleted by hand (then opening the log refuses, below).
        let (loaded, damaged, older_snapshot) = match snapshot::load_newest_intact(&snapshot_path)?
        {
            Some(intact) => (Some(intact.loaded), intact.damaged, intact.older),
            None => (None, Vec::new(), None),
        };
        for (id, reason) in &damaged {
            tracing::error!(
                snapshot = id,
                %reason,
                "a snapshot is damaged; falling back to the previous one and replaying the log from its position"
            );
        }
        telemetry.snapshots_damaged.set(damaged.len() as i64);
        // The settings in force at the replay start: those recorded with the snapshot. Snapshots
        // written before settings were recorded have none; the current ones are the best guess.
        let mut in_force: Option<(CoreSettings, Arc<[u8]>)> = match loaded
            .as_ref()
            .and_then(|l| l.settings.as_deref())
        {
            Some(bytes) => match settings_from(bytes) {
                Ok(recorded) => Some((recorded, Arc::from(bytes))),
                Err(e) => {
                    tracing::warn!(error = %e, "the snapshot's recorded settings cannot be used; replaying under the current configuration");
                    None
                }
            },
            None => None,
        };
        let initial = in_force
            .as_ref()
            .map_or_else(|| (*settings).clone(), |(s, _)| s.clone());
        // The replay starts at the snapshot's log position, known before the snapshot is
        // decoded: the log tail is read and parsed on another thread meanwhile.
        let from = loaded
            .as_ref()
            .map_or(LogPosition::default(), |loaded| loaded.meta.position);
        let decode = || -> Result<State, SnapshotError> {
            match &loaded {
                Some(loaded) => {
                    let state = State::decode_snapshot(initial, &loaded.bytes)?;
                    tracing::info!(
                        position = ?loaded.meta.position,
                        open_cases = state.open_cases(),
                        "loaded snapshot"
                    );
                    Ok(state)
                }
                None => Ok(State::new(initial)),
            }
        };
        let mut stream_position = loaded
            .as_ref()
            .and_then(|loaded| loaded.source_position.clone());
        let mut replayed = 0u64;
        let mut replayed_bytes = 0u64;
        let apply = |state: &mut State, record: Replayed| {
            match record {
                Replayed::Event {
                    position,
                    arrival,
                    event,
                    bytes,
                } => {
                    // An event in the log was applied before, under the settings in force here;
                    // re-applying it to the same state gives the same result. A rejection means
                    // the log and snapshot disagree: it is counted
                    // (backlogd_replay_rejected_total) and logged with its id, never silently.
                    if let Err(rejection) = state.apply(&event, arrival) {
                        telemetry
                            .replay_rejected
                            .with_label_values(&[rejection.reason.as_str()])
                            .inc();
                        tracing::error!(?position, event_id = %event.id, %rejection, "logged event rejected on replay");
                    }
                    replayed_bytes += bytes as u64;
                }
                Replayed::Settings {
                    position,
                    at,
                    config_source: recorded_source,
                } => {
                    let recorded = settings_from(&recorded_source).map_err(|e| {
                        ReplayError(format!("settings record at {position:?}: {e}"))
                    })?;
                    // Live, the engine advanced its clock to the reload's instant before switching
                    // (`process` advances first): the midnights up to it are taken under the
                    // settings before it, here as there.
                    state.advance(at);
                    switch_settings(state, recorded.clone()).map_err(|e| {
                        ReplayError(format!("settings record at {position:?}: {e}"))
                    })?;
                    in_force = Some((recorded, Arc::from(recorded_source)));
                }
                Replayed::SourcePosition(position) => stream_position = Some(position),
            }
            replayed += 1;
            handle.replayed.store(replayed, Ordering::Relaxed);
            Ok(())
        };
        let (mut state, log) = replay::open_and_replay(
            lock,
            &store.dir.join("log"),
            from,
            store.segment_bytes,
            decode,
            apply,
        )
        .map_err(|e| {
            let error = match e {
                replay::RecoveryError::Decode(error) => {
                    return RecoverError::Decode {
                        path: snapshot_path.clone(),
                        error,
                    };
                }
                replay::RecoveryError::Log(e) => RecoverError::Log(e),
                replay::RecoveryError::Replay(e) => RecoverError::Replay(e),
            };
            if damaged.is_empty() {
                return error;
            }
            RecoverError::NoFallback {
                path: snapshot_path.clone(),
                reasons: damaged.iter().map(|(_, reason)| reason.clone()).collect(),
                from,
                error: Box::new(error),
            }
        })?;
        let mut log = log;
        if !damaged.is_empty() {
            // The state is whole again (the older snapshot and the log): the damaged rows go, so
            // that the two rows kept are intact ones.
            let ids: Vec<i64> = damaged.iter().map(|(id, _)| *id).collect();
            match snapshot::discard(&snapshot_path, &ids) {
                Ok(()) => tracing::warn!(
                    ?ids,
                    "removed the damaged snapshots after recovering without them"
                ),
                Err(e) => tracing::warn!(error = %e, ?ids, "cannot remove the damaged snapshots"),
            }
        }
        // From now on the current configuration is in force. Unless the log already says so, that
        // change is logged (and synced) before any event is applied under it.
        let unchanged = in_force
            .as_ref()
            .is_some_and(|(recorded, bytes)| **bytes == *config_source || *recorded == *settings);
        if !unchanged {
            if in_force.is_some() {
                tracing::info!(
                    "the configuration changed since the log was written; switching to it"
                );
            }
            // At an instant, as a reload: the clock there first, so that replaying this record
            // after a crash takes the midnights up to it under the settings before it, as here.
            let at = clock.now();
            state.advance(at);
            switch_settings(&mut state, (*settings).clone()).map_err(RecoverError::Switch)?;
            log.append(&encode_settings(at, &config_source))?;
            log.commit(log::Durability::Fsync)?;
        }
        let config_source = if unchanged {
            in_force.map_or(config_source, |(_, bytes)| bytes)
        } else {
            config_source
        };
        // A stream source resumes after the store's position in its stream. A store without one
        // starts it here, durably, before anything is consumed or ingested: after
        // `sources.nats.start_after`, or from the stream's start when the store holds no event.
        // A store that holds events (seeded by `backfill --store`, fed over HTTP, or consuming
        // another stream before) and names no start would apply again what it holds, or what dedup
        // has forgotten of it: refused, naming the way out (docs/scaling.md).
        if let Some((stream, start_after)) = &store.stream_start
            && stream_position
                .as_ref()
                .is_none_or(|position| &position.stream != stream)
        {
            let sequence = match start_after {
                Some(after) => *after,
                None if state.holds_events() => {
                    return Err(RecoverError::NoStreamPosition {
                        stream: stream.clone(),
                    });
                }
                None => 0,
            };
            let position = crate::store::SourcePosition {
                stream: stream.clone(),
                sequence,
            };
            log.append(&crate::store::encode_position(clock.now(), &position))?;
            log.commit(log::Durability::Fsync)?;
            tracing::info!(stream = %stream, after = sequence, "the stream source starts after this sequence");
            stream_position = Some(position);
        }
        state.advance(clock.now());
        let snapshots = snapshot::Writer::start(snapshot_path, telemetry.snapshots_written.clone());
        tracing::info!(
            replayed,
            stream_position = ?stream_position,
            open_cases = state.open_cases(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "recovery complete"
        );
        let mut engine = Engine {
            state,
            settings,
            config_source,
            edge,
            clock,
            workforce: Arc::default(),
            workforce_builder: WorkforceBuilder::default(),
            workforce_dirty: true,
            workforce_built: Instant::now(),
            workforce_cost: std::time::Duration::ZERO,
            log,
            store,
            telemetry,
            handle,
            snapshots: Some(snapshots),
            last_snapshot: Instant::now(),
            snapshot_position: from,
            // The log is kept back to the older of the two snapshots kept, so that a damaged
            // newest one can fall back (docs/store.md).
            durable_snapshots: [
                loaded.as_ref().map(|loaded| loaded.meta.position),
                older_snapshot,
            ],
            // The replayed tail counts as logged since the snapshot: a long one is snapshotted
            // soon, so that the next restart does not replay it again.
            logged_events: replayed,
            logged_bytes: replayed_bytes,
            stream_position,
        };
        engine.publish(true);
        engine.handle.ready.store(true, Ordering::SeqCst);
        engine.telemetry.ready.set(1);
        Ok(engine)
    }
}
