//! The engine: the single owner of the state. One dedicated thread applies every batch of events,
//! group-commits the applied ones to the event log, answers the waiting requests, advances the clock
//! on ticks and publishes a view of the aggregates for scrapes.
//!
//! Why a thread and not a task: applying events is synchronous CPU work and `fdatasync` is a blocking
//! system call; on a thread of its own neither stalls the async runtime that serves HTTP. Requests
//! reach it through a bounded channel (backpressure), answers go back on oneshot channels.
//!
//! Group commit: the thread takes one command, then drains whatever else is already queued, applies
//! all of it, writes and syncs the log once, and only then answers every request of the group. While
//! it syncs, new requests queue up and form the next group. [`Engine::process`] names the steps;
//! each command has its own function (`ingest.rs`, `reload.rs`, `queries.rs`).
//!
//! Ordering: events are applied to the in-memory state before the log is synced. If a write or sync
//! fails, every request of that group, and every later one, gets 503 (a failed fsync leaves the
//! file's durable content unknown; retrying could acknowledge lost data). The log truncates the
//! failed tail, the engine marks the store unhealthy and tells the daemon, which exits non-zero so
//! that the service manager restarts it: recovery then reads exactly what the disk holds.
//!
//! The log's storage and the clock are passed in ([`StoreSettings::storage`], [`Clock`]): the
//! daemon passes the real file system and the wall clock, the model-based test in `tests.rs` an
//! in-memory storage with faults and power loss and a clock it moves by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, Durability};
/// What `Command::Targets` and `Command::Forecast` take and answer (re-exported so that the server
/// need not see the core).
pub use crate::core::TargetReport;
pub use crate::core::forecast::{Forecast, ForecastParams, Outlook, ParamError};
pub use crate::core::history::DailyRow;
use crate::core::{CoreSettings, EpochNanos, OverdueCase, State};
pub use crate::store::SourcePosition;
use crate::store::log::{self, EventLog, LogError, LogPosition};
use crate::store::snapshot;
use crate::store::storage::{RealStorage, Storage};
use crate::telemetry::Telemetry;
use crate::workforce::{EdgeSettings, Workforce, WorkforceBuilder};

mod ingest;
mod queries;
mod recover;
mod reload;
mod replay;
mod snapshots;
mod view;

pub use ingest::{
    IngestBatch, IngestOutcome, IngestSummary, batch_from_body, batch_of_refused_body,
};
pub use queries::{ForecastAnswer, HistoryAnswer};
pub use recover::RecoverError;
pub use reload::ReloadError;
pub use view::{View, ViewCell, view_of};
#[cfg(test)]
mod model_test;
#[cfg(test)]
mod tests;

/// Commands to the engine thread.
pub enum Command {
    Ingest(IngestBatch),
    /// Advance the clock to the wall clock and republish.
    Tick,
    Overdue {
        track: Option<String>,
        location: Option<String>,
        limit: usize,
        /// The cases, or why the query cannot be answered (an unknown track), for a 400.
        reply: oneshot::Sender<Result<Vec<OverdueCase>, String>>,
    },
    /// The daily history rows with `from ≤ day ≤ to` (`GET /v1/history`).
    History {
        from: Option<jiff::civil::Date>,
        to: Option<jiff::civil::Date>,
        reply: oneshot::Sender<HistoryAnswer>,
    },
    /// Every target in effect with its announcement history (`GET /v1/targets`).
    Targets {
        reply: oneshot::Sender<Vec<TargetReport>>,
    },
    /// The what-if projection from the current state (`GET /v1/forecast`).
    Forecast {
        params: ForecastParams,
        reply: oneshot::Sender<ForecastAnswer>,
    },
    /// Replace the settings (configuration reload) without losing state. Answered once the switch
    /// is logged (committed with the rest of the group).
    Reload {
        settings: Box<CoreSettings>,
        /// The configuration source of `settings` (`config::ConfigSource::to_bytes`), logged so
        /// that replay switches with it.
        config_source: Arc<[u8]>,
        edge: Box<EdgeSettings>,
        reply: oneshot::Sender<Result<(), ReloadError>>,
    },
    /// The stream source's last committed position (recovered from the store, then kept), so
    /// that the source resumes right after it.
    StreamPosition {
        reply: oneshot::Sender<Option<SourcePosition>>,
    },
    /// Stop after answering everything queued before this command.
    Shutdown,
}

impl Command {
    /// A query: it reads the state and changes nothing.
    fn reads_state(&self) -> bool {
        matches!(
            self,
            Command::Overdue { .. }
                | Command::History { .. }
                | Command::Targets { .. }
                | Command::Forecast { .. }
                | Command::StreamPosition { .. }
        )
    }
}

/// Handle to a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    pub commands: mpsc::Sender<Command>,
    pub view: Arc<ViewCell>,
    /// True once recovery is complete.
    pub ready: Arc<AtomicBool>,
    /// True once the log failed and ingestion is refused.
    pub failed: Arc<AtomicBool>,
    /// Log records replayed so far during recovery (progress for systemd's `STATUS=`).
    pub replayed: Arc<std::sync::atomic::AtomicU64>,
    /// Notified once when the log fails: the daemon then exits non-zero so that it is restarted.
    pub failure: Arc<tokio::sync::Notify>,
    /// Wall-clock time (core nanoseconds) at which the engine last finished a command group; the
    /// systemd watchdog is fed only while this moves.
    pub heartbeat: Arc<std::sync::atomic::AtomicI64>,
    /// The next instant (core nanoseconds) at which a case changes class without an event
    /// (`State::next_class_change`; `i64::MAX` for none), as of the last published view. The
    /// ticker wakes the engine for it, so an overdue gauge moves when the deadline passes rather
    /// than at the next regular tick.
    pub next_change: Arc<std::sync::atomic::AtomicI64>,
    /// Notified when `next_change` moved earlier (a new case falls due sooner than any before).
    pub next_change_earlier: Arc<tokio::sync::Notify>,
}

impl EngineHandle {
    /// A handle whose commands go to `commands`, not yet ready.
    fn new(commands: mpsc::Sender<Command>) -> EngineHandle {
        EngineHandle {
            commands,
            view: Arc::default(),
            ready: Arc::new(AtomicBool::new(false)),
            failed: Arc::new(AtomicBool::new(false)),
            failure: Arc::default(),
            replayed: Arc::default(),
            heartbeat: Arc::new(std::sync::atomic::AtomicI64::new(wall_clock())),
            next_change: Arc::new(std::sync::atomic::AtomicI64::new(i64::MAX)),
            next_change_earlier: Arc::default(),
        }
    }
}

/// The wall clock, in the core's representation.
pub fn wall_clock() -> EpochNanos {
    crate::core::time::to_nanos_saturating(jiff::Timestamp::now())
}

/// Where the engine reads the time that goes into the state (each group's `now`, a snapshot's
/// time, the instant of a settings switch): [`Clock::wall`] in the daemon; tests move one by hand.
/// The watchdog's heartbeat is always the wall clock (the daemon compares it with the wall clock).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> EpochNanos + Send + Sync>);

impl Clock {
    /// The wall clock ([`wall_clock`]).
    pub fn wall() -> Clock {
        Clock(Arc::new(wall_clock))
    }

    /// A clock that reads `now`.
    pub fn new(now: impl Fn() -> EpochNanos + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    pub fn now(&self) -> EpochNanos {
        (self.0)()
    }
}

/// The answer to every ingest request once the store has failed.
pub const STORE_FAILED: &str =
    "the event log failed; ingestion is refused until the daemon has restarted and recovered";

/// The answer to a request that finds the engine gone (the daemon is stopping).
pub const SHUTTING_DOWN: &str = "the daemon is shutting down";

/// Commands that may wait in the engine's queue; a request that finds it full gets 503.
pub const QUEUE_COMMANDS: usize = 1024;

/// Starts the engine thread: it recovers the state from the store (snapshot + log), flips `ready`,
/// then serves commands. `recovered` receives Ok once serving, or the recovery error.
pub fn start(
    config: &Config,
    config_source: &crate::config::ConfigSource,
    edge: EdgeSettings,
    telemetry: Arc<Telemetry>,
) -> (
    EngineHandle,
    oneshot::Receiver<Result<(), RecoverError>>,
    std::thread::JoinHandle<()>,
) {
    let settings = Arc::new(crate::config::core_settings(config));
    let config_source: Arc<[u8]> = config_source.to_bytes().into();
    let (tx, rx) = mpsc::channel(QUEUE_COMMANDS);
    let edge = Arc::new(edge);
    let handle = EngineHandle::new(tx);
    let (recovered_tx, recovered_rx) = oneshot::channel();
    let engine_handle = handle.clone();
    let store = StoreSettings::of(config, Arc::new(RealStorage));
    let thread = std::thread::Builder::new()
        .name("backlogd-engine".into())
        .spawn(move || {
            let engine = Engine::recover(
                store,
                Clock::wall(),
                settings,
                config_source,
                edge,
                telemetry,
                engine_handle,
            );
            let mut engine = match engine {
                Ok(engine) => {
                    let _ = recovered_tx.send(Ok(()));
                    engine
                }
                Err(e) => {
                    let _ = recovered_tx.send(Err(e));
                    return;
                }
            };
            engine.run(rx);
        })
        .expect("spawning the engine thread");
    (handle, recovered_rx, thread)
}

struct StoreSettings {
    dir: std::path::PathBuf,
    /// What the log is written on (`RealStorage`; in tests a `FaultyStorage`). The snapshot
    /// database is always a real file in `dir`.
    storage: Arc<dyn Storage>,
    durability: log::Durability,
    segment_bytes: u64,
    snapshot_interval: std::time::Duration,
    snapshot_every_events: u64,
    snapshot_every_bytes: u64,
    /// With a stream source: its stream, and `sources.nats.start_after`. Recovery makes sure the
    /// store has a position in that stream before anything is consumed (`recover`).
    stream_start: Option<(String, Option<u64>)>,
}

impl StoreSettings {
    /// The `[store]` and `[sources.nats]` settings of `config`, with the log on `storage`.
    fn of(config: &Config, storage: Arc<dyn Storage>) -> StoreSettings {
        StoreSettings {
            dir: config.store.path.clone(),
            storage,
            durability: match config.store.durability {
                Durability::Fsync => log::Durability::Fsync,
                Durability::None => log::Durability::None,
            },
            segment_bytes: config.store.segment_bytes,
            snapshot_interval: config.store.snapshot_interval,
            snapshot_every_events: config.store.snapshot_every_events,
            snapshot_every_bytes: config.store.snapshot_every_bytes,
            stream_start: config
                .nats
                .as_ref()
                .map(|nats| (nats.stream.clone(), nats.start_after)),
        }
    }
}

struct Engine {
    state: State,
    settings: Arc<CoreSettings>,
    /// The configuration source of `settings` (`config::ConfigSource::to_bytes`), recorded with
    /// every snapshot and in the log whenever it changes.
    config_source: Arc<[u8]>,
    edge: Arc<EdgeSettings>,
    clock: Clock,
    /// The per-employee rows last published, rebuilt when employees or assignments changed, at
    /// most as often as keeps the rebuild under a tenth of the engine's time (and on every tick).
    workforce: Arc<Workforce>,
    workforce_builder: WorkforceBuilder,
    workforce_dirty: bool,
    workforce_built: Instant,
    workforce_cost: std::time::Duration,
    log: EventLog,
    store: StoreSettings,
    telemetry: Arc<Telemetry>,
    handle: EngineHandle,
    snapshots: Option<snapshot::Writer>,
    last_snapshot: Instant,
    /// Log position of the newest snapshot submitted (or loaded).
    snapshot_position: LogPosition,
    /// The log positions of the newest and the previous durable snapshots (the two the database
    /// keeps): segments are deleted only before the previous one, so that a damaged newest
    /// snapshot can fall back to it and replay the log from there.
    durable_snapshots: [Option<LogPosition>; 2],
    /// Events and log bytes appended since then: a snapshot is also due after
    /// `store.snapshot_every_events` / `_bytes`, so that replay after a crash is bounded by work,
    /// not only by time.
    logged_events: u64,
    logged_bytes: u64,
    /// The stream source's last position in the log (applied; committed once the group is).
    stream_position: Option<SourcePosition>,
}

/// One group of commands on its way through [`Engine::process`]: what the commands left to do
/// once all of them are handled.
struct Group {
    /// The engine's clock for the whole group.
    now: EpochNanos,
    /// Ingest replies, sent only once the group is committed.
    ingests: Vec<(oneshot::Sender<IngestOutcome>, IngestSummary)>,
    /// Reload replies, likewise: a reload is answered once its switch is logged.
    reloads: Vec<oneshot::Sender<Result<(), ReloadError>>>,
    /// Something was appended to the log: the group commits before anything is answered.
    logged: bool,
    /// The stream position moved: one position record goes after all the group's events.
    stream_position_moved: bool,
    /// Rebuild the per-employee rows at this publish (a tick, new edge or core settings).
    rebuild_rows: bool,
    /// Writing the log failed: nothing more is applied, nothing of the group is acknowledged.
    store_error: Option<LogError>,
    stop: bool,
}

impl Engine {
    fn run(&mut self, mut commands: mpsc::Receiver<Command>) {
        let mut group = Vec::new();
        while let Some(first) = commands.blocking_recv() {
            group.push(first);
            while group.len() < 4096 {
                match commands.try_recv() {
                    Ok(command) => group.push(command),
                    Err(_) => break,
                }
            }
            let stop = self.process(&mut group);
            if stop {
                break;
            }
        }
        self.snapshot_now();
        if let Some(writer) = self.snapshots.take() {
            writer.finish();
        }
        tracing::info!("engine stopped");
    }

    /// Handles one group of commands; returns true on shutdown. The order of the steps is what
    /// makes an answer mean "durable": apply everything, commit once, and only then publish and
    /// answer; a snapshot comes last and syncs the log before it records a position.
    fn process(&mut self, commands: &mut Vec<Command>) -> bool {
        let now = self.clock.now();
        self.state.advance(now);
        let mut group = Group {
            now,
            ingests: Vec::new(),
            reloads: Vec::new(),
            logged: false,
            stream_position_moved: false,
            rebuild_rows: false,
            store_error: None,
            stop: false,
        };
        for command in commands.drain(..) {
            self.handle(command, &mut group);
        }
        self.log_stream_position(&mut group);
        self.commit(&mut group);
        if let Some(error) = group.store_error.take() {
            let error = error.to_string();
            self.fail_store(&error);
            refuse(group.ingests, group.reloads, &error);
            return group.stop;
        }
        // Publish before answering: a client that scrapes right after its 200 sees its events.
        // Never after the store failed: the state may hold events that were never acknowledged
        // (those of the failed group), and the last view published is the last durable one.
        if !self.handle.failed.load(Ordering::SeqCst) {
            self.workforce_dirty |= group.logged;
            self.publish(group.rebuild_rows);
        }
        answer(group.ingests, group.reloads);
        self.handle.heartbeat.store(wall_clock(), Ordering::Relaxed);
        self.snapshot_if_due();
        group.stop
    }

    /// One command of a group.
    fn handle(&mut self, command: Command, group: &mut Group) {
        if command.reads_state() && self.store_failed(group) {
            // The state may hold events that were never acknowledged: the query is dropped
            // unanswered (the server answers 503; the daemon is exiting).
            return;
        }
        match command {
            Command::Ingest(batch) => self.ingest(batch, group),
            Command::Tick => self.tick(group),
            Command::Overdue {
                track,
                location,
                limit,
                reply,
            } => {
                let _ = reply.send(self.overdue(track.as_deref(), location.as_deref(), limit));
            }
            Command::Targets { reply } => {
                let _ = reply.send(self.state.target_reports());
            }
            Command::History { from, to, reply } => {
                let _ = reply.send(self.history(from, to));
            }
            Command::Forecast { params, reply } => {
                let _ = reply.send(self.forecast(&params));
            }
            Command::Reload {
                settings,
                config_source,
                edge,
                reply,
            } => self.reload(*settings, config_source, *edge, reply, group),
            Command::StreamPosition { reply } => {
                let _ = reply.send(self.stream_position.clone());
            }
            Command::Shutdown => group.stop = true,
        }
    }

    /// Advances nothing itself (`process` has moved the clock for the group); rebuilds the
    /// per-employee rows at this publish.
    fn tick(&mut self, group: &mut Group) {
        group.rebuild_rows = true;
        // Test hook (debug builds only): proves that a panic on this thread ends the process
        // instead of leaving it serving a frozen view.
        #[cfg(debug_assertions)]
        if std::env::var_os("BACKLOGD_TEST_PANIC_IN_ENGINE").is_some() {
            panic!("BACKLOGD_TEST_PANIC_IN_ENGINE is set");
        }
    }

    /// Durability step 1: the stream source's position, once per group (only the last one
    /// matters), after all the group's events, in the same commit.
    fn log_stream_position(&mut self, group: &mut Group) {
        if !group.stream_position_moved || group.store_error.is_some() {
            return;
        }
        if let Some(position) = &self.stream_position {
            let record = crate::store::encode_position(group.now, position);
            self.logged_bytes += record.len() as u64;
            if let Err(e) = self.log.append(&record) {
                group.store_error = Some(e);
            }
        }
    }

    /// Durability step 2, the acknowledgement point: one write and (with `store.durability =
    /// "fsync"`) one `fdatasync` for everything the group appended.
    fn commit(&mut self, group: &mut Group) {
        if !group.logged || group.store_error.is_some() {
            return;
        }
        let started = Instant::now();
        let result = self.log.commit(self.store.durability);
        self.telemetry
            .store_commit_duration
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = result {
            group.store_error = Some(e);
        }
    }

    /// The store failed: nothing of the failing group (nor of any later batch) is acknowledged
    /// (`refuse`). The state may hold events that are not durable, so it is never snapshotted
    /// again; the daemon is told to exit so that a restart recovers exactly what the disk holds.
    fn fail_store(&mut self, error: &str) {
        tracing::error!(
            error,
            "event log write failed: refusing all further ingestion; the daemon will exit so that it is restarted and recovers from disk"
        );
        self.handle.failed.store(true, Ordering::SeqCst);
        self.telemetry.store_healthy.set(0);
        self.telemetry.ready.set(0);
        self.handle.failure.notify_one();
    }

    /// Whether the store has failed (in an earlier group or this one).
    fn store_failed(&self, group: &Group) -> bool {
        group.store_error.is_some() || self.handle.failed.load(Ordering::SeqCst)
    }

    /// Publishes a new view. The per-employee rows are rebuilt when something changed and either
    /// `force` (a tick) or enough time has passed since the last rebuild (ten times its cost).
    fn publish(&mut self, force: bool) {
        if self.workforce_dirty
            && (force || self.workforce_built.elapsed() >= self.workforce_cost * 10)
        {
            let started = Instant::now();
            let (workforce, newly_dropped) = self.workforce_builder.build(&self.state, &self.edge);
            self.workforce = Arc::new(workforce);
            self.telemetry.series_dropped.inc_by(newly_dropped);
            self.workforce_built = Instant::now();
            self.workforce_cost = started.elapsed();
            self.workforce_dirty = false;
        }
        self.handle.view.publish(view_of(
            &self.state,
            self.settings.clone(),
            self.workforce.clone(),
            self.edge.clone(),
        ));
        let next = self.state.next_class_change().unwrap_or(i64::MAX);
        if next < self.handle.next_change.swap(next, Ordering::Relaxed) {
            self.handle.next_change_earlier.notify_one();
        }
    }
}

/// Durability step 3, after the commit: every request of the group learns what became of it.
fn answer(
    ingests: Vec<(oneshot::Sender<IngestOutcome>, IngestSummary)>,
    reloads: Vec<oneshot::Sender<Result<(), ReloadError>>>,
) {
    for (reply, summary) in ingests {
        let _ = reply.send(IngestOutcome::Done(summary));
    }
    for reply in reloads {
        let _ = reply.send(Ok(()));
    }
}

/// Instead of step 3 when the commit failed: nothing of the group is acknowledged.
fn refuse(
    ingests: Vec<(oneshot::Sender<IngestOutcome>, IngestSummary)>,
    reloads: Vec<oneshot::Sender<Result<(), ReloadError>>>,
    error: &str,
) {
    for (reply, _) in ingests {
        let _ = reply.send(IngestOutcome::Unavailable(format!(
            "the event log could not be written ({error}); nothing of this request is acknowledged"
        )));
    }
    for reply in reloads {
        let _ = reply.send(Err(ReloadError::StoreFailed));
    }
}
