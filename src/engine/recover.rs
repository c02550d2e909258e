//! Recovery at start: the newest snapshot, then the log tail replayed (`replay.rs`), then the
//! current configuration switched in and logged if it differs.

use std::path::Path;
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
        let lock = lock_store(&store)?;
        let snapshot_path = store.dir.join("snapshots.sqlite");
        let start = Start::newest_intact(&snapshot_path, &telemetry)?;
        let mut tail = Tail {
            in_force: start.recorded_settings(),
            stream_position: start
                .loaded
                .as_ref()
                .and_then(|loaded| loaded.source_position.clone()),
            records: 0,
            event_bytes: 0,
            telemetry: &telemetry,
            handle: &handle,
        };
        let initial = tail
            .in_force
            .as_ref()
            .map_or_else(|| (*settings).clone(), |(s, _)| s.clone());
        // The replay starts at the snapshot's log position, known before the snapshot is
        // decoded: the log tail is read and parsed on another thread meanwhile.
        let (mut state, mut log) = replay::open_and_replay(
            lock,
            &store.dir.join("log"),
            start.position(),
            store.segment_bytes,
            || start.decode(initial),
            |state, record| tail.apply(state, record),
        )
        .map_err(|e| start.recovery_error(e, &snapshot_path))?;
        let Tail {
            in_force,
            stream_position,
            records: replayed,
            event_bytes: replayed_bytes,
            ..
        } = tail;
        start.discard_damaged(&snapshot_path);
        let config_source = switch_to_configuration(
            &mut state,
            &mut log,
            in_force,
            &settings,
            config_source,
            &clock,
        )?;
        let stream_position =
            start_stream_source(&store, &state, &mut log, stream_position, &clock)?;
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
            snapshot_position: start.position(),
            // The log is kept back to the older of the two snapshots kept, so that a damaged
            // newest one can fall back (docs/store.md).
            durable_snapshots: [
                start.loaded.as_ref().map(|loaded| loaded.meta.position),
                start.older,
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

/// Creates the store's directory and takes its lock.
fn lock_store(store: &StoreSettings) -> Result<log::DirLock, RecoverError> {
    // Created durably: a first boot's directory entries survive a power loss.
    crate::store::storage::create_dir_durably(&*store.storage, &store.dir).map_err(|error| {
        RecoverError::CreateDir {
            dir: store.dir.clone(),
            error,
        }
    })?;
    // The store's lock first, before the snapshot is read: a `backlogd backfill --store`
    // still writing this store (or another daemon) makes the start fail here, by name, instead
    // of starting empty and overwriting the backfill's snapshot with the next one.
    Ok(log::lock_directory_with(
        store.storage.clone(),
        &store.dir.join("log"),
    )?)
}

/// Where recovery starts: the newest intact snapshot (none in a new store), and the newer ones
/// passed over as damaged.
struct Start {
    loaded: Option<snapshot::Loaded>,
    /// Newer snapshots that are damaged: row id and reason.
    damaged: Vec<(i64, String)>,
    /// The log position of the snapshot before `loaded`, if any.
    older: Option<LogPosition>,
}

impl Start {
    /// The newest intact snapshot: a damaged newer one (checksum mismatch, unreadable) is passed
    /// over, by name, and the log replays from the older one's position, which the log still
    /// covers unless it was deleted by hand (then opening the log refuses).
    fn newest_intact(snapshot_path: &Path, telemetry: &Telemetry) -> Result<Start, RecoverError> {
        let start = match snapshot::load_newest_intact(snapshot_path)? {
            Some(intact) => Start {
                loaded: Some(intact.loaded),
                damaged: intact.damaged,
                older: intact.older,
            },
            None => Start {
                loaded: None,
                damaged: Vec::new(),
                older: None,
            },
        };
        for (id, reason) in &start.damaged {
            tracing::error!(
                snapshot = id,
                %reason,
                "a snapshot is damaged; falling back to the previous one and replaying the log from its position"
            );
        }
        telemetry.snapshots_damaged.set(start.damaged.len() as i64);
        Ok(start)
    }

    /// The log position the replay starts at.
    fn position(&self) -> LogPosition {
        self.loaded
            .as_ref()
            .map_or(LogPosition::default(), |loaded| loaded.meta.position)
    }

    /// The settings in force at the replay start: those recorded with the snapshot. Snapshots
    /// written before settings were recorded have none; the current ones are the best guess.
    fn recorded_settings(&self) -> Option<(CoreSettings, Arc<[u8]>)> {
        let bytes = self.loaded.as_ref()?.settings.as_deref()?;
        match settings_from(bytes) {
            Ok(recorded) => Some((recorded, Arc::from(bytes))),
            Err(e) => {
                tracing::warn!(error = %e, "the snapshot's recorded settings cannot be used; replaying under the current configuration");
                None
            }
        }
    }

    /// The state the replay starts from: the snapshot decoded under `initial`, or an empty one.
    fn decode(&self, initial: CoreSettings) -> Result<State, SnapshotError> {
        match &self.loaded {
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
    }

    /// The error of a failed replay: with damaged snapshots passed over, it says so and names the
    /// way out.
    fn recovery_error(
        &self,
        error: replay::RecoveryError<SnapshotError>,
        snapshot_path: &Path,
    ) -> RecoverError {
        let error = match error {
            replay::RecoveryError::Decode(error) => {
                return RecoverError::Decode {
                    path: snapshot_path.to_owned(),
                    error,
                };
            }
            replay::RecoveryError::Log(e) => RecoverError::Log(e),
            replay::RecoveryError::Replay(e) => RecoverError::Replay(e),
        };
        if self.damaged.is_empty() {
            return error;
        }
        RecoverError::NoFallback {
            path: snapshot_path.to_owned(),
            reasons: self
                .damaged
                .iter()
                .map(|(_, reason)| reason.clone())
                .collect(),
            from: self.position(),
            error: Box::new(error),
        }
    }

    /// Once the state is whole again (the older snapshot and the log), the damaged rows go, so
    /// that the two rows kept are intact ones. Failing to remove them is logged, not fatal.
    fn discard_damaged(&self, snapshot_path: &Path) {
        if self.damaged.is_empty() {
            return;
        }
        let ids: Vec<i64> = self.damaged.iter().map(|(id, _)| *id).collect();
        match snapshot::discard(snapshot_path, &ids) {
            Ok(()) => tracing::warn!(
                ?ids,
                "removed the damaged snapshots after recovering without them"
            ),
            Err(e) => tracing::warn!(error = %e, ?ids, "cannot remove the damaged snapshots"),
        }
    }
}

/// What the log tail replay carries from record to record.
struct Tail<'a> {
    /// The settings in force (and their configuration source), switched by settings records.
    in_force: Option<(CoreSettings, Arc<[u8]>)>,
    /// The stream source's position, moved by position records.
    stream_position: Option<crate::store::SourcePosition>,
    /// Records replayed (all kinds), and the event records' bytes.
    records: u64,
    event_bytes: u64,
    telemetry: &'a Telemetry,
    handle: &'a EngineHandle,
}

impl Tail<'_> {
    /// Applies one replayed record to `state`.
    fn apply(&mut self, state: &mut State, record: Replayed) -> Result<(), ReplayError> {
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
                    self.telemetry
                        .replay_rejected
                        .with_label_values(&[rejection.reason.as_str()])
                        .inc();
                    tracing::error!(?position, event_id = %event.id, %rejection, "logged event rejected on replay");
                }
                self.event_bytes += bytes as u64;
            }
            Replayed::Settings {
                position,
                at,
                config_source: recorded_source,
            } => {
                let recorded = settings_from(&recorded_source)
                    .map_err(|e| ReplayError(format!("settings record at {position:?}: {e}")))?;
                // Live, the engine advanced its clock to the reload's instant before switching
                // (`process` advances first): the midnights up to it are taken under the
                // settings before it, here as there.
                state.advance(at);
                switch_settings(state, recorded.clone())
                    .map_err(|e| ReplayError(format!("settings record at {position:?}: {e}")))?;
                self.in_force = Some((recorded, Arc::from(recorded_source)));
            }
            Replayed::SourcePosition(position) => self.stream_position = Some(position),
        }
        self.records += 1;
        self.handle.replayed.store(self.records, Ordering::Relaxed);
        Ok(())
    }
}

/// From now on the current configuration is in force. Unless the log already says so (the
/// settings `in_force` at the end of the replay), that change is logged (and synced) before any
/// event is applied under it. Returns the configuration source in force.
fn switch_to_configuration(
    state: &mut State,
    log: &mut log::EventLog,
    in_force: Option<(CoreSettings, Arc<[u8]>)>,
    settings: &CoreSettings,
    config_source: Arc<[u8]>,
    clock: &Clock,
) -> Result<Arc<[u8]>, RecoverError> {
    let unchanged = in_force
        .as_ref()
        .is_some_and(|(recorded, bytes)| **bytes == *config_source || *recorded == *settings);
    if unchanged {
        return Ok(in_force.map_or(config_source, |(_, bytes)| bytes));
    }
    if in_force.is_some() {
        tracing::info!("the configuration changed since the log was written; switching to it");
    }
    // At an instant, as a reload: the clock there first, so that replaying this record
    // after a crash takes the midnights up to it under the settings before it, as here.
    let at = clock.now();
    state.advance(at);
    switch_settings(state, settings.clone()).map_err(RecoverError::Switch)?;
    log.append(&encode_settings(at, &config_source))?;
    log.commit(log::Durability::Fsync)?;
    Ok(config_source)
}

/// A stream source resumes after the store's position in its stream. A store without one
/// starts it here, durably, before anything is consumed or ingested: after
/// `sources.nats.start_after`, or from the stream's start when the store holds no event.
/// A store that holds events (seeded by `backfill --store`, fed over HTTP, or consuming
/// another stream before) and names no start would apply again what it holds, or what dedup
/// has forgotten of it: refused, naming the way out (docs/scaling.md). Returns the position the
/// source resumes after.
fn start_stream_source(
    store: &StoreSettings,
    state: &State,
    log: &mut log::EventLog,
    stream_position: Option<crate::store::SourcePosition>,
    clock: &Clock,
) -> Result<Option<crate::store::SourcePosition>, RecoverError> {
    let Some((stream, start_after)) = &store.stream_start else {
        return Ok(stream_position);
    };
    if stream_position
        .as_ref()
        .is_some_and(|position| &position.stream == stream)
    {
        return Ok(stream_position);
    }
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
    Ok(Some(position))
}
