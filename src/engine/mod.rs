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
//! it syncs, new requests queue up and form the next group.
//!
//! Ordering: events are applied to the in-memory state before the log is synced. If a write or sync
//! fails, every request of that group, and every later one, gets 503 (a failed fsync leaves the
//! file's durable content unknown; retrying could acknowledge lost data). The log truncates the
//! failed tail, the engine marks the store unhealthy and tells the daemon, which exits non-zero so
//! that the service manager restarts it: recovery then reads exactly what the disk holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, ConfigError, Durability};
/// What `Command::Targets` and `Command::Forecast` take and answer (re-exported so that the server
/// need not see the core).
pub use crate::core::TargetReport;
pub use crate::core::forecast::{Forecast, ForecastParams, Outlook, ParamError};

/// The answer to `Command::History`: the rows with the names their columns refer to.
#[derive(Debug, Clone)]
pub struct HistoryAnswer {
    /// Track names, in the order of each row's tracks.
    pub tracks: Vec<String>,
    /// `forecast.window` as written, now (each row names the window it counted over: its basis).
    pub decision_window: String,
    /// `forecast.new_staff_weeks`, now (likewise).
    pub new_staff_weeks: u32,
    pub rows: Vec<DailyRow>,
    /// `report.language` (English in `new`).
    pub report_language: crate::config::ReportLanguage,
}

pub use crate::core::history::DailyRow;

impl HistoryAnswer {
    /// `rows` with the track names and due-soon labels of `settings`.
    pub fn new(settings: &CoreSettings, rows: Vec<DailyRow>) -> HistoryAnswer {
        HistoryAnswer {
            tracks: settings.tracks.iter().map(|t| t.name.clone()).collect(),
            decision_window: settings.forecast_window.label.clone(),
            new_staff_weeks: settings.new_staff_weeks,
            rows,
            report_language: crate::config::ReportLanguage::En,
        }
    }
}

/// The answer to `Command::Forecast`: the projection and the targets it is drawn against.
#[derive(Debug, Clone)]
pub struct ForecastAnswer {
    pub forecast: Forecast,
    pub targets: Vec<TargetReport>,
}
use crate::core::event::Event;
use crate::core::{
    Applied, CoreSettings, EpochNanos, OverdueCase, Rejection, SnapshotError, State,
};
pub use crate::store::SourcePosition;
use crate::store::log::{self, EventLog, LogPosition};
use crate::store::snapshot::{self, SnapshotMeta};
use crate::store::{encode_position, encode_record, encode_settings};
use crate::telemetry::Telemetry;
use crate::wire::{self, ItemRejection};
use crate::workforce::{EdgeSettings, Workforce, WorkforceBuilder};

mod recover;
mod replay;
mod view;

pub use view::{View, ViewCell, view_of};
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
    /// Replace the settings (configuration reload) without losing state.
    Reload {
        settings: Box<CoreSettings>,
        /// The configuration source of `settings`, logged so that replay switches with it.
        source: Arc<[u8]>,
        edge: Box<EdgeSettings>,
        reply: oneshot::Sender<Result<(), ReloadError>>,
    },
    /// The stream source's last committed position (recovered from the store, then kept), so
    /// that the source resumes right after it.
    SourcePosition {
        reply: oneshot::Sender<Option<SourcePosition>>,
    },
    /// Stop after answering everything queued before this command.
    Shutdown,
}

/// The events of one request: the body (the log stores each event's raw text) and, per event, the
/// byte range of its text and its parse result.
pub struct IngestBatch {
    pub body: Bytes,
    pub items: Vec<(std::ops::Range<usize>, Result<Event, ItemRejection>)>,
    pub source: &'static str,
    /// For a message of a stream source: its position, logged after its events in the same
    /// commit group. A batch at or below the committed position of its stream is not applied
    /// (every event counts as a duplicate): a message is never applied after a later one.
    pub position: Option<SourcePosition>,
    pub reply: oneshot::Sender<IngestOutcome>,
}

/// What became of a batch.
#[derive(Debug)]
pub enum IngestOutcome {
    Done(IngestSummary),
    /// The log could not be written or synced; nothing of this batch is acknowledged.
    Unavailable(String),
}

#[derive(Debug, Default)]
pub struct IngestSummary {
    pub accepted: usize,
    pub duplicates: usize,
    /// (index in the body, event id if known, rejection).
    pub rejected: Vec<(usize, Option<String>, Rejection)>,
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

/// The wall clock, in the core's representation. The only place the engine reads time.
pub fn wall_clock() -> EpochNanos {
    crate::core::time::to_nanos_saturating(jiff::Timestamp::now())
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
    source: &crate::config::ConfigSource,
    edge: EdgeSettings,
    telemetry: Arc<Telemetry>,
) -> (
    EngineHandle,
    oneshot::Receiver<anyhow::Result<()>>,
    std::thread::JoinHandle<()>,
) {
    let settings = Arc::new(crate::config::core_settings(config));
    let source: Arc<[u8]> = source.to_bytes().into();
    let (tx, rx) = mpsc::channel(QUEUE_COMMANDS);
    let edge = Arc::new(edge);
    let handle = EngineHandle {
        commands: tx,
        view: Arc::default(),
        ready: Arc::new(AtomicBool::new(false)),
        failed: Arc::new(AtomicBool::new(false)),
        failure: Arc::default(),
        replayed: Arc::default(),
        heartbeat: Arc::new(std::sync::atomic::AtomicI64::new(wall_clock())),
        next_change: Arc::new(std::sync::atomic::AtomicI64::new(i64::MAX)),
        next_change_earlier: Arc::default(),
    };
    let (recovered_tx, recovered_rx) = oneshot::channel();
    let engine_handle = handle.clone();
    let store = StoreSettings {
        dir: config.store.path.clone(),
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
    };
    let thread = std::thread::Builder::new()
        .name("backlogd-engine".into())
        .spawn(move || {
            let mut engine =
                match Engine::recover(store, settings, source, edge, telemetry, engine_handle) {
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
    durability: log::Durability,
    segment_bytes: u64,
    snapshot_interval: std::time::Duration,
    snapshot_every_events: u64,
    snapshot_every_bytes: u64,
    /// With a stream source: its stream, and `sources.nats.start_after`. Recovery makes sure the
    /// store has a position in that stream before anything is consumed (`recover`).
    stream_start: Option<(String, Option<u64>)>,
}

struct Engine {
    state: State,
    settings: Arc<CoreSettings>,
    /// The configuration source of `settings` (`config::ConfigSource` as stored), recorded with
    /// every snapshot and in the log whenever it changes.
    source: Arc<[u8]>,
    edge: Arc<EdgeSettings>,
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
    source_position: Option<SourcePosition>,
    /// Whether this group moved `source_position`, so that it is logged before the commit.
    position_to_log: bool,
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

    /// Handles one group of commands; returns true on shutdown.
    fn process(&mut self, group: &mut Vec<Command>) -> bool {
        let now = wall_clock();
        self.state.advance(now);
        let mut waiting = Vec::new();
        let mut stop = false;
        let mut appended = false;
        let mut ticked = false;
        let mut store_error: Option<String> = None;
        for command in group.drain(..) {
            match command {
                Command::Ingest(batch) => {
                    if self.handle.failed.load(Ordering::SeqCst) || store_error.is_some() {
                        // Nothing more can be made durable: refuse the whole batch, unapplied.
                        let _ = batch
                            .reply
                            .send(IngestOutcome::Unavailable(STORE_FAILED.to_string()));
                        continue;
                    }
                    match self.apply_batch(&batch, now) {
                        Ok((summary, any)) => {
                            appended |= any;
                            waiting.push((batch.reply, summary));
                        }
                        Err(e) => {
                            store_error = Some(e.to_string());
                            waiting.push((batch.reply, IngestSummary::default()));
                        }
                    }
                }
                Command::Tick => {
                    ticked = true;
                    // Test hook (debug builds only): proves that a panic on this thread ends the
                    // process instead of leaving it serving a frozen view.
                    #[cfg(debug_assertions)]
                    if std::env::var_os("BACKLOGD_TEST_PANIC_IN_ENGINE").is_some() {
                        panic!("BACKLOGD_TEST_PANIC_IN_ENGINE is set");
                    }
                }
                Command::Overdue {
                    track,
                    location,
                    limit,
                    reply,
                } => {
                    let settings = self.state.settings();
                    let answer = match track.as_deref() {
                        Some(name) if settings.track_index(name).is_none() => Err(format!(
                            "query parameter `track`: {name:?} is not a configured track (configured: {})",
                            settings
                                .tracks
                                .iter()
                                .map(|t| t.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                        _ => Ok(self.state.overdue_cases(
                            track.as_deref(),
                            location.as_deref(),
                            limit,
                        )),
                    };
                    let _ = reply.send(answer);
                }
                Command::Targets { reply } => {
                    let _ = reply.send(self.state.target_reports());
                }
                Command::History { from, to, reply } => {
                    // Rows name their day as `YYYY-MM-DD` with a four-digit year, as jiff writes a
                    // date of years 0–9999: the text compares in date order.
                    let (from, to) = (from.map(|d| d.to_string()), to.map(|d| d.to_string()));
                    let rows = self
                        .state
                        .daily_history()
                        .filter(|row| from.as_deref().is_none_or(|from| row.day.as_str() >= from))
                        .filter(|row| to.as_deref().is_none_or(|to| row.day.as_str() <= to))
                        .cloned()
                        .collect();
                    let mut answer = HistoryAnswer::new(self.state.settings(), rows);
                    answer.report_language = self.edge.report_language;
                    let _ = reply.send(answer);
                }
                Command::Forecast { params, reply } => {
                    let forecast =
                        crate::core::forecast::project(&self.state.forecast_inputs(), &params);
                    let _ = reply.send(ForecastAnswer {
                        forecast,
                        targets: self.state.target_reports(),
                    });
                }
                Command::Reload {
                    settings,
                    source,
                    edge,
                    reply,
                } => {
                    if store_error.is_some() || self.handle.failed.load(Ordering::SeqCst) {
                        let _ = reply.send(Err(ReloadError::StoreFailed));
                        continue;
                    }
                    // A reload of an unchanged file changes nothing: no settings record, no
                    // snapshot, no rebuild (a storm of reloads costs nothing but the reading).
                    if *source == *self.source {
                        if *edge == *self.edge {
                            self.telemetry.reloads_unchanged.inc();
                        } else {
                            // Only a file the edge reads changed (the pseudonym key).
                            self.set_edge(*edge);
                            ticked = true;
                        }
                        let _ = reply.send(Ok(()));
                        continue;
                    }
                    let result = self.reload(*settings, source, *edge, now);
                    if let Err(ReloadError::Store(e)) = &result {
                        store_error = Some(e.to_string());
                    }
                    appended |= result.is_ok();
                    ticked |= result.is_ok();
                    let _ = reply.send(result);
                }
                Command::SourcePosition { reply } => {
                    let _ = reply.send(self.source_position.clone());
                }
                Command::Shutdown => stop = true,
            }
        }
        if self.position_to_log && store_error.is_none() {
            // Only the group's last position matters: one record after all the group's events.
            self.position_to_log = false;
            if let Some(position) = &self.source_position {
                let record = encode_position(now, position);
                self.logged_bytes += record.len() as u64;
                if let Err(e) = self.log.append(&record) {
                    store_error = Some(e.to_string());
                }
            }
        }
        if appended && store_error.is_none() {
            let started = Instant::now();
            let result = self.log.commit(self.store.durability);
            self.telemetry
                .store_commit_duration
                .observe(started.elapsed().as_secs_f64());
            if let Err(e) = result {
                store_error = Some(e.to_string());
            }
        }
        if let Some(error) = store_error {
            self.fail_store(&error, waiting);
            return stop;
        }
        // Publish before answering: a client that scrapes right after its 200 sees its events.
        self.workforce_dirty |= appended;
        self.publish(ticked);
        for (reply, summary) in waiting {
            let _ = reply.send(IngestOutcome::Done(summary));
        }
        self.handle.heartbeat.store(wall_clock(), Ordering::Relaxed);
        // A reload is a settings record in the log, not a snapshot: replay switches the settings
        // at that record, at its instant (`recover`), so the tail before it needs no snapshot, and
        // a storm of reloads writes a few bytes each, never a full snapshot each.
        if self.last_snapshot.elapsed() >= self.store.snapshot_interval
            || self.logged_events >= self.store.snapshot_every_events
            || self.logged_bytes >= self.store.snapshot_every_bytes
        {
            self.snapshot_now();
        }
        stop
    }

    /// The store failed: nothing of `waiting` (nor of any later batch) is acknowledged. The state
    /// may hold events that are not durable, so it is never snapshotted again; the daemon is told to
    /// exit so that a restart recovers exactly what the disk holds.
    fn fail_store(
        &mut self,
        error: &str,
        waiting: Vec<(oneshot::Sender<IngestOutcome>, IngestSummary)>,
    ) {
        tracing::error!(
            error,
            "event log write failed: refusing all further ingestion; the daemon will exit so that it is restarted and recovers from disk"
        );
        self.handle.failed.store(true, Ordering::SeqCst);
        self.telemetry.store_healthy.set(0);
        self.telemetry.ready.set(0);
        for (reply, _) in waiting {
            let _ = reply.send(IngestOutcome::Unavailable(format!(
                "the event log could not be written ({error}); nothing of this request is acknowledged"
            )));
        }
        self.handle.failure.notify_one();
    }

    /// Deletes log segments covered by both durable snapshots kept, then submits a new snapshot if
    /// anything was logged since the last one. Encoding runs here (O(cases), a short pause); the
    /// SQLite write runs on the snapshot thread.
    fn snapshot_now(&mut self) {
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
            self.fail_store(&e.to_string(), Vec::new());
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
            taken_at: wall_clock(),
        };
        self.snapshot_position = meta.position;
        writer.submit(
            bytes,
            meta,
            self.state.open_cases(),
            self.source.clone(),
            self.source_position.clone(),
        );
    }

    /// Applies one batch and appends its applied events to the log (not yet committed). An append
    /// error means the log is unusable; the caller then fails the whole group.
    fn apply_batch(
        &mut self,
        batch: &IngestBatch,
        now: EpochNanos,
    ) -> Result<(IngestSummary, bool), log::LogError> {
        let mut summary = IngestSummary::default();
        let mut appended = false;
        if let (Some(position), Some(committed)) = (&batch.position, &self.source_position)
            && position.stream == committed.stream
            && position.sequence <= committed.sequence
        {
            summary.duplicates = batch.items.len();
            return Ok((summary, false));
        }
        let telemetry = &self.telemetry;
        telemetry
            .events_received
            .with_label_values(&[batch.source])
            .inc_by(batch.items.len() as u64);
        for (index, (range, parsed)) in batch.items.iter().enumerate() {
            let event = match parsed {
                Ok(event) => event,
                Err(rejected) => {
                    telemetry.reject(rejected.rejection.reason);
                    summary
                        .rejected
                        .push((index, rejected.id.clone(), rejected.rejection.clone()));
                    continue;
                }
            };
            if range.len() + 8 > log::MAX_PAYLOAD_BYTES {
                let rejection = Rejection::new(
                    crate::core::RejectReason::InvalidField,
                    format!(
                        "the event is {} bytes; one event may be at most {} bytes",
                        range.len(),
                        log::MAX_PAYLOAD_BYTES - 8
                    ),
                );
                telemetry.reject(rejection.reason);
                summary
                    .rejected
                    .push((index, Some(event.id.clone()), rejection));
                continue;
            }
            match self.state.apply(event, now) {
                Ok(Applied::New) => {
                    let raw = &batch.body[range.clone()];
                    // The size was checked above, so only a poisoned log fails here; the event is
                    // already applied, so the caller fails the group and nothing is acknowledged.
                    let record = encode_record(now, raw);
                    self.log.append(&record)?;
                    self.logged_events += 1;
                    self.logged_bytes += record.len() as u64;
                    appended = true;
                    summary.accepted += 1;
                    telemetry.applied(event.kind.event_type());
                }
                Ok(Applied::Duplicate) => {
                    summary.duplicates += 1;
                    telemetry.events_duplicate.inc();
                }
                Err(rejection) => {
                    telemetry.reject(rejection.reason);
                    summary
                        .rejected
                        .push((index, Some(event.id.clone()), rejection));
                }
            }
        }
        if let Some(position) = &batch.position {
            // Logged once per group, after all its events (`process`), even when nothing of the
            // message applied: its rejections are answered once.
            self.source_position = Some(position.clone());
            self.position_to_log = true;
            appended = true;
        }
        Ok((summary, appended))
    }

    /// Switches to new settings. The switch is logged (committed with the rest of the group) so
    /// that replay switches at the same point.
    fn reload(
        &mut self,
        settings: CoreSettings,
        source: Arc<[u8]>,
        edge: EdgeSettings,
        now: EpochNanos,
    ) -> Result<(), ReloadError> {
        self.state
            .set_settings(settings.clone())
            .map_err(ReloadError::Refused)?;
        self.log
            .append(&encode_settings(now, &source))
            .map_err(ReloadError::Store)?;
        self.source = source;
        self.settings = Arc::new(settings);
        self.set_edge(edge);
        Ok(())
    }

    /// Replaces the edge settings; the per-employee rows are rebuilt at the next publish.
    fn set_edge(&mut self, edge: EdgeSettings) {
        if edge.employee_label != self.edge.employee_label
            || edge.pseudonym_key != self.edge.pseudonym_key
        {
            self.workforce_builder.reset();
        }
        self.edge = Arc::new(edge);
        self.workforce_dirty = true;
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

/// Why a reload (or a configuration recorded in the store) did not take effect. The `Display` form
/// is the answer of `POST /-/reload` and the text of the log line; no variant has a `source`, so the
/// text is the whole story.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Started on the built-in configuration.
    #[error("running on the built-in configuration; there is no file to reload")]
    NoFile,
    /// The configuration file (or a stored configuration source) cannot be read or is invalid.
    #[error("{0}")]
    Config(ConfigError),
    /// A configuration recorded in the store no longer validates.
    #[error("the recorded configuration (from {origin}) is no longer valid: {error}")]
    RecordedInvalid { origin: String, error: ConfigError },
    /// The edge settings or a file a reload re-reads (tokens, certificate, metrics users) cannot
    /// be used; the text carries the whole cause chain.
    #[error("{0}")]
    Edge(String),
    /// The core settings cannot change in place.
    #[error("{0}")]
    Refused(crate::core::SettingsError),
    /// Logging the switch failed; the store is failed from here on.
    #[error("{0}")]
    Store(log::LogError),
    /// The store failed earlier.
    #[error("{STORE_FAILED}")]
    StoreFailed,
    /// The engine is gone.
    #[error("{SHUTTING_DOWN}")]
    ShuttingDown,
}

/// The core settings a stored configuration source describes.
fn settings_from(source: &[u8]) -> Result<CoreSettings, ReloadError> {
    let source = crate::config::ConfigSource::from_bytes(source).map_err(ReloadError::Config)?;
    let config = source
        .load()
        .map_err(|error| ReloadError::RecordedInvalid {
            origin: source.origin.to_string(),
            error,
        })?;
    Ok(crate::config::core_settings(&config))
}

/// Puts `state` under `settings`: in place when only derived figures change, otherwise (tracks,
/// phases or roles changed) through its snapshot encoding, as a restart would.
fn switch_settings(state: &mut State, settings: CoreSettings) -> Result<(), SnapshotError> {
    if state.set_settings(settings.clone()).is_ok() {
        return Ok(());
    }
    let bytes = state.encode_snapshot();
    *state = State::decode_snapshot(settings, &bytes)?;
    Ok(())
}

/// Parses a body into a batch for the engine, keeping each event's byte range in the body (the log
/// stores the raw text of each applied event).
pub fn batch_from_body(
    body: Bytes,
    format: wire::BodyFormat,
    source: &'static str,
    reply: oneshot::Sender<IngestOutcome>,
    max_events: usize,
) -> Result<IngestBatch, wire::BodyError> {
    let base = body.as_ptr() as usize;
    let items = wire::parse_body(format, &body, max_events)?
        .into_iter()
        .map(|item| {
            // Every `raw` is a sub-slice of `body`: wire::parse_body only ever slices its input.
            let start = item.raw.as_ptr() as usize - base;
            (start..start + item.raw.len(), item.parsed)
        })
        .collect();
    Ok(IngestBatch {
        body,
        items,
        source,
        position: None,
        reply,
    })
}

/// A batch for a body that cannot be split into events at all (a stream message is not an HTTP
/// request that can be answered 400): one rejected item spanning the whole body, so that it is
/// counted, answered and, for a stream source, its position still logged.
pub fn batch_of_refused_body(
    body: Bytes,
    error: &wire::BodyError,
    source: &'static str,
    reply: oneshot::Sender<IngestOutcome>,
) -> IngestBatch {
    let rejection = Rejection::new(crate::core::RejectReason::InvalidJson, error.to_string());
    IngestBatch {
        items: vec![(
            0..body.len(),
            Err(ItemRejection {
                id: None,
                rejection,
            }),
        )],
        body,
        source,
        position: None,
        reply,
    }
}
