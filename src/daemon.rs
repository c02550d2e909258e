//! Wiring of the running daemon: logging, the engine thread, the HTTP server, the tick, signals and
//! the order of shutdown.
//!
//! Start-up: bind first (so `/healthz` answers and `/readyz` says 503 during recovery), then let the
//! engine recover, then flip ready. Shutdown on SIGTERM/SIGINT: stop accepting, let in-flight requests
//! finish (their batches are committed), then stop the engine after everything queued before the
//! stop command, and exit 0.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, LogFormat};
use crate::engine::{self, Command, ReloadError};
use crate::metrics_auth::{MetricsUsers, Users};
use crate::server::{self, App};
use crate::telemetry::Telemetry;

/// Why the daemon did not start, or stopped with an error; the text is the whole story.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    /// `server.ingest_tokens_file` cannot be used.
    #[error(transparent)]
    Tokens(#[from] server::TokensError),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    MetricsUsers(#[from] crate::metrics_auth::UsersError),
    #[error(transparent)]
    Edge(#[from] crate::workforce::EdgeError),
    #[error("registering metrics: {0}")]
    Metrics(prometheus::Error),
    /// `server.listen` cannot be bound.
    #[error(transparent)]
    Listen(#[from] server::BindError),
    #[error("reading the listening address: {0}")]
    ListenAddress(std::io::Error),
    #[error("recovering the state from the store: {0}")]
    Recover(engine::RecoverError),
    #[error("the engine thread ended during recovery")]
    EngineGone,
    #[error(
        "the event log failed (see the error above); exiting so that the daemon is restarted and recovers from disk"
    )]
    StoreFailed,
}

/// Sets up `tracing` to stderr in the configured format. `RUST_LOG` overrides `log.level`.
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    // A second initialisation (only in tests) keeps the first subscriber.
    drop(result);
}

/// Makes a panic on any thread end the process (after the usual message), as `panic = "abort"`
/// does in the release profile: a daemon whose engine or snapshot thread died must not live on
/// serving a frozen view; the service manager restarts it and recovery rebuilds the state.
pub fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        tracing::error!(%info, "a thread panicked; aborting so that the daemon is restarted");
        eprintln!("backlogd: a thread panicked; aborting so that the daemon is restarted");
        std::process::abort();
    }));
}

/// Raises the soft limit on open files to the hard limit (as Go's runtime does): every connection
/// is a descriptor, and `server.max_connections` should be the limit that applies, not a default
/// soft limit of 1024.
fn raise_open_files_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::warn!("cannot raise the open files limit");
            }
        }
    }
}

/// Allocations of 256 KiB and more (request bodies, parsed batches, snapshot encodings) get pages
/// of their own from glibc, which go back to the system when freed. By default glibc raises that
/// threshold to the largest block freed so far (up to 32 MiB), after which the 2 MB bodies of a
/// burst come from the threads' heaps and stay resident once freed: 284 bytes an open case in
/// the load bench at 200,000 open cases, 205 with the threshold fixed (docs/benchmarks.md).
fn fix_malloc_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator (under the allocator's own lock); it
    // is called once, before the runtime's threads start.
    if unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024) } != 1 {
        tracing::warn!("cannot fix the allocator's mmap threshold");
    }
}

/// Runs the daemon until SIGTERM or SIGINT. `config_path` is re-read on SIGHUP and `POST /-/reload`
/// (`None` when running on the built-in configuration, which cannot change).
///
/// `source` is what `config` was built from; the engine records it in the store so that the log is
/// always replayed under the settings it was written with.
pub fn run(
    config: Config,
    source: crate::config::ConfigSource,
    config_path: Option<PathBuf>,
) -> Result<(), DaemonError> {
    fix_malloc_mmap_threshold();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("backlogd-io")
        .build()
        .map_err(DaemonError::Runtime)?;
    runtime.block_on(run_async(config, source, config_path))
}

async fn run_async(
    config: Config,
    source: crate::config::ConfigSource,
    config_path: Option<PathBuf>,
) -> Result<(), DaemonError> {
    raise_open_files_limit();
    // Unreadable or invalid tokens, certificate, key or users files stop the start, naming the
    // file.
    let EdgeFiles { tokens, tls, users } = EdgeFiles::read(&config)?;
    let edge = crate::workforce::EdgeSettings::from_config(&config)?;
    let telemetry = Arc::new(Telemetry::new().map_err(DaemonError::Metrics)?);
    let metrics_users = users.map(|users| {
        Arc::new(MetricsUsers::new(
            users,
            config.server.limits.metrics_auth_queue,
            telemetry.metrics_auth_checks.clone(),
        ))
    });
    if let Some(tls) = &tls {
        tls.export_not_after(telemetry.tls_metrics().map_err(DaemonError::Metrics)?);
    }
    let source_metrics = match &config.nats {
        Some(_) => Some(telemetry.source_metrics().map_err(DaemonError::Metrics)?),
        None => None,
    };
    let listener = listen(&config, tls.is_some()).await?;

    let (handle, recovered, engine_thread) =
        engine::start(&config, &source, edge, telemetry.clone());
    let disk = tokio::spawn(watch_free_space(
        config.store.path.clone(),
        config.time.tick,
        telemetry.clone(),
    ));
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    let app = App::new(
        handle.clone(),
        telemetry.clone(),
        &config.server,
        tokens.clone(),
        reload_tx,
    )
    .with_tls(tls.clone())
    .with_metrics_users(metrics_users.clone());
    let server = Server::start(listener, app);

    let signals = shutdown_signal();
    tokio::pin!(signals);
    // SIGHUP during recovery must not kill the daemon (its default action): listen from the start;
    // a reload requested before recovery completes is served once it has.
    let hangup = hangup_signal();
    match wait_for_recovery(recovered, &mut signals, &handle).await {
        Recovery::Ready => {}
        Recovery::Stopped => {
            server.stop().await;
            return Ok(());
        }
        Recovery::Failed(e) => {
            server.stop().await;
            return Err(DaemonError::Recover(e));
        }
        Recovery::EngineGone => return Err(DaemonError::EngineGone),
    }

    let ticker = tokio::spawn(tick(handle.clone(), config.time.tick));
    // The stream source starts once the state is recovered: it resumes from the position the
    // recovered log holds.
    let source = match (&config.nats, source_metrics) {
        (Some(nats), Some(metrics)) => Some(tokio::spawn(crate::source::nats::run(
            nats.clone(),
            handle.clone(),
            metrics,
            config.server.limits.max_events_per_request,
        ))),
        _ => None,
    };
    let reloader = tokio::spawn(reloads(
        config_path,
        config,
        handle.clone(),
        Edge {
            tokens,
            tls,
            metrics_users,
        },
        telemetry,
        reload_rx,
        hangup,
    ));
    let watchdog = sd_notify::watchdog_enabled()
        .map(|period| tokio::spawn(feed_watchdog(period, handle.heartbeat.clone())));
    let store_failed = wait_for_stop(&mut signals, &handle).await;
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    // The inputs first (watchdog, reloads, the stream source), then the server with its in-flight
    // requests, then the timers, then the engine after everything queued before its stop.
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    reloader.abort();
    // Messages in flight and unacked are redelivered and skipped or applied after a restart.
    if let Some(source) = source {
        source.abort();
    }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    server.stop().await;
    ticker.abort();
    disk.abort();
    let _ = handle.commands.send(Command::Shutdown).await;
    tokio::task::spawn_blocking(move || engine_thread.join())
        .await
        .ok();
    if store_failed {
        return Err(DaemonError::StoreFailed);
    }
    tracing::info!("stopped");
    Ok(())
}

/// Waits for SIGTERM or SIGINT, or for the store to fail; true for the store. After a failure the
/// daemon keeps answering for a moment (`STORE_FAILURE_LINGER`) before it stops.
async fn wait_for_stop(
    signals: &mut (impl std::future::Future<Output = ()> + Unpin),
    handle: &engine::EngineHandle,
) -> bool {
    let store_failed = tokio::select! {
        () = &mut *signals => false,
        () = handle.failure.notified() => true,
    };
    if store_failed {
        // Keep answering /readyz 503 and /metrics (backlogd_store_healthy 0) for a moment so that a
        // scrape can see why, then exit non-zero: the service manager restarts the daemon and
        // recovery reads what the disk holds, not the page cache of this process.
        notify_systemd(&[sd_notify::NotifyState::Status(
            "the event log failed; exiting to be restarted",
        )]);
        tokio::time::sleep(STORE_FAILURE_LINGER).await;
    }
    store_failed
}

/// The files the edge reads at start: the ingest tokens (`server.ingest_tokens_file`), the TLS
/// certificate and key (`server.tls`), the `/metrics` users (`server.metrics_users_file`).
struct EdgeFiles {
    tokens: server::Tokens,
    tls: Option<Arc<crate::tls::Tls>>,
    users: Option<Users>,
}

impl EdgeFiles {
    fn read(config: &Config) -> Result<EdgeFiles, DaemonError> {
        let tokens: server::Tokens = Arc::new(std::sync::RwLock::new(
            match &config.server.ingest_tokens_file {
                Some(path) => server::read_token_digests(path)?,
                None => Vec::new(),
            },
        ));
        let tls = match &config.server.tls {
            Some(files) => Some(Arc::new(crate::tls::Tls::load(files)?)),
            None => None,
        };
        let users = match &config.server.metrics_users_file {
            Some(path) => Some(Users::read(path)?),
            None => None,
        };
        Ok(EdgeFiles { tokens, tls, users })
    }
}

/// Binds `server.listen` and says where, on the line tests read the address from.
async fn listen(config: &Config, tls: bool) -> Result<tokio::net::TcpListener, DaemonError> {
    let listener = server::bind(config.server.listen).await?;
    let local = listener.local_addr().map_err(DaemonError::ListenAddress)?;
    let scheme = if tls { "https" } else { "http" };
    // Tests start the daemon on port 0 and read the chosen address from this line.
    tracing::info!(address = %local, scheme, "listening");
    eprintln!("backlogd listening on {scheme}://{local}");
    Ok(listener)
}

/// The HTTP server's task and the way to stop it.
struct Server {
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    /// Serves `app` on `listener` from now on (during recovery too: `/healthz` answers, `/readyz`
    /// says 503).
    fn start(listener: tokio::net::TcpListener, app: App) -> Server {
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(
            listener,
            Arc::new(app),
            async {
                let _ = stop_rx.await;
            },
            Duration::from_secs(10),
        ));
        Server { task, stop }
    }

    /// Stops accepting connections and waits for the requests in flight to finish.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// How the wait for the engine's recovery ended.
enum Recovery {
    Ready,
    /// SIGTERM or SIGINT came first.
    Stopped,
    Failed(engine::RecoverError),
    /// The engine thread ended without an answer.
    EngineGone,
}

/// Waits for the engine to recover, telling systemd about its progress meanwhile, or for a stop
/// signal.
async fn wait_for_recovery(
    mut recovered: tokio::sync::oneshot::Receiver<Result<(), engine::RecoverError>>,
    signals: &mut (impl std::future::Future<Output = ()> + Unpin),
    handle: &engine::EngineHandle,
) -> Recovery {
    let mut progress = tokio::time::interval(RECOVERY_PROGRESS_PERIOD);
    let mut last_replayed = 0;
    loop {
        tokio::select! {
            result = &mut recovered => return match result {
                Ok(Ok(())) => {
                    tracing::info!("ready");
                    notify_systemd(&[
                        sd_notify::NotifyState::Ready,
                        sd_notify::NotifyState::Status("ready"),
                    ]);
                    Recovery::Ready
                }
                Ok(Err(e)) => Recovery::Failed(e),
                Err(_) => Recovery::EngineGone,
            },
            () = &mut *signals => {
                tracing::info!("stopping during recovery");
                return Recovery::Stopped;
            }
            _ = progress.tick() => {
                // A long replay keeps extending systemd's start timeout while it makes progress;
                // a stuck one stops extending it, and systemd's TimeoutStartSec ends it.
                let replayed = handle.replayed.load(std::sync::atomic::Ordering::Relaxed);
                let status = format!("recovering: {replayed} log records replayed");
                let mut states = vec![sd_notify::NotifyState::Status(&status)];
                if replayed > last_replayed {
                    states.push(sd_notify::NotifyState::ExtendTimeoutUsec(
                        (RECOVERY_PROGRESS_PERIOD * 4).as_micros() as u32,
                    ));
                }
                last_replayed = replayed;
                notify_systemd(&states);
            }
        }
    }
}

/// How often recovery progress goes to systemd (`STATUS=`, `EXTEND_TIMEOUT_USEC=`).
const RECOVERY_PROGRESS_PERIOD: Duration = Duration::from_secs(5);

/// How long the daemon keeps answering after its store failed, before it exits.
const STORE_FAILURE_LINGER: Duration = Duration::from_secs(1);

/// SIGHUP, listened for from the start so that an early one cannot kill the daemon.
fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; reload only over HTTP");
            None
        }
    }
}

/// Sends a tick every `period`, and also when a case changes class without an event (a deadline
/// passes, a case falls due soon): the engine publishes that instant (`EngineHandle::next_change`),
/// so the overdue gauges move within milliseconds of the deadline, not up to a whole period later.
/// A tick that finds the queue full is skipped (the engine is busy and advances its clock with
/// every group anyway).
async fn tick(engine: engine::EngineHandle, period: Duration) {
    use std::sync::atomic::Ordering;
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The change instant last woken for: not woken for twice while the engine catches up.
    let mut woken_for = i64::MIN;
    loop {
        let next = engine.next_change.load(Ordering::Relaxed);
        let pending = next != i64::MAX && next > woken_for;
        let wait = next.saturating_sub(crate::engine::wall_clock()).max(0);
        tokio::select! {
            _ = interval.tick() => {}
            _ = tokio::time::sleep(Duration::from_nanos(wait as u64)), if pending => {
                woken_for = next;
            }
            // A case fell due sooner than the instant slept for: sleep again, for it.
            _ = engine.next_change_earlier.notified() => continue,
        }
        if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) =
            engine.commands.try_send(Command::Tick)
        {
            return;
        }
    }
}

/// Reads the free space and the size of the store's filesystem every `period` into
/// `backlogd_store_free_bytes` and `backlogd_store_filesystem_size_bytes` (NaN when it cannot be
/// read, with one warning per run of failures). Off the async workers: `statvfs` may block on a
/// network filesystem.
async fn watch_free_space(path: std::path::PathBuf, period: Duration, telemetry: Arc<Telemetry>) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut failing = false;
    loop {
        interval.tick().await;
        let path = path.clone();
        let read = tokio::task::spawn_blocking(move || filesystem_space(&path)).await;
        match read {
            Ok(Ok((free, size))) => {
                telemetry.store_free_bytes.set(free as f64);
                telemetry.store_filesystem_size_bytes.set(size as f64);
                failing = false;
            }
            Ok(Err(e)) => {
                telemetry.store_free_bytes.set(f64::NAN);
                telemetry.store_filesystem_size_bytes.set(f64::NAN);
                if !failing {
                    tracing::warn!(error = %e, "cannot read the free space of store.path");
                }
                failing = true;
            }
            // The runtime is shutting down.
            Err(_) => return,
        }
    }
}

/// (bytes available to an unprivileged user, filesystem size in bytes) of the filesystem holding
/// `path`, or of its nearest existing ancestor (the store directory may not exist yet).
fn filesystem_space(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt as _;
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(std::path::Path::new("/"));
    let c_path = std::ffi::CString::new(existing.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct, and statvfs writes
    // only into it, given a NUL-terminated path that lives across the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The fields are u64 on 64-bit Linux (the only target the unit ships for).
    let block = stat.f_frsize.max(1);
    Ok((
        stat.f_bavail.saturating_mul(block),
        stat.f_blocks.saturating_mul(block),
    ))
}

/// Tells systemd (Type=notify) about a state change; a no-op outside systemd.
fn notify_systemd(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Feeds the systemd watchdog at half its period, but only while the engine keeps finishing its
/// command groups (it gets a tick every `time.tick`): a wedged engine thread stops the feeding and
/// systemd restarts the daemon.
async fn feed_watchdog(period: Duration, heartbeat: Arc<std::sync::atomic::AtomicI64>) {
    let mut interval = tokio::time::interval(period / 2);
    loop {
        interval.tick().await;
        let silent_nanos =
            crate::engine::wall_clock() - heartbeat.load(std::sync::atomic::Ordering::Relaxed);
        if silent_nanos < period.as_nanos() as i64 {
            notify_systemd(&[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::error!(
                silent_seconds = silent_nanos / 1_000_000_000,
                "the engine has not finished a command group within the watchdog period; not feeding the watchdog"
            );
        }
    }
}

/// What a reload re-reads at the edge, as the running server holds it.
struct Edge {
    tokens: server::Tokens,
    /// `Some` when the listener was started with TLS.
    tls: Option<Arc<crate::tls::Tls>>,
    /// `Some` when `/metrics` was started with basic auth.
    metrics_users: Option<Arc<MetricsUsers>>,
}

/// Serves reloads, from SIGHUP and from `POST /-/reload`, one at a time.
async fn reloads(
    path: Option<PathBuf>,
    mut current: Config,
    engine: crate::engine::EngineHandle,
    edge: Edge,
    telemetry: Arc<Telemetry>,
    mut requests: tokio::sync::mpsc::Receiver<server::ReloadRequest>,
    mut hangup: Option<tokio::signal::unix::Signal>,
) {
    loop {
        let reply = tokio::select! {
            Some(()) = async { match &mut hangup { Some(s) => s.recv().await, None => std::future::pending().await } } => {
                tracing::info!("SIGHUP received: reloading the configuration");
                notify_systemd(&[sd_notify::NotifyState::Reloading]);
                None
            }
            request = requests.recv() => match request {
                Some(reply) => Some(reply),
                None => return,
            },
        };
        // Requests that queued up meanwhile are served by this one reload: it reads the files as
        // they are now, which is what each of them asked for.
        let mut replies: Vec<server::ReloadRequest> = reply.into_iter().collect();
        while let Ok(queued) = requests.try_recv() {
            replies.push(queued);
        }
        let result = reload_once(path.as_deref(), &mut current, &engine, &edge).await;
        match &result {
            Ok(()) => {
                telemetry.config_last_reload_successful.set(1.0);
                tracing::info!("configuration reloaded");
            }
            Err(e) => {
                telemetry.config_last_reload_successful.set(0.0);
                tracing::error!(error = %e, "configuration reload failed; keeping the running configuration");
            }
        }
        notify_systemd(&[sd_notify::NotifyState::Ready]);
        // Each waiting request gets the same outcome.
        let result = result.map_err(Arc::new);
        for reply in replies {
            let _ = reply.send(result.clone());
        }
    }
}

async fn reload_once(
    path: Option<&Path>,
    current: &mut Config,
    engine: &crate::engine::EngineHandle,
    running: &Edge,
) -> Result<(), ReloadError> {
    let Some(path) = path else {
        return Err(ReloadError::NoFile);
    };
    let source = crate::config::ConfigSource::read(path).map_err(ReloadError::Config)?;
    let new = source.load().map_err(ReloadError::Config)?;
    let edge = crate::workforce::EdgeSettings::from_config(&new).map_err(ReloadError::Edge)?;
    // Token rotation: the tokens file is re-read on every reload. Turning authentication on or off
    // needs a restart (the listen-address safety check runs at start).
    let new_tokens = match (
        &current.server.ingest_tokens_file,
        &new.server.ingest_tokens_file,
    ) {
        (Some(_), Some(path)) => {
            Some(server::read_token_digests(path).map_err(|e| ReloadError::Tokens(Box::new(e)))?)
        }
        _ => None,
    };
    // Certificate rotation and users-file rotation: re-read whenever the running server uses them
    // and the file still names them; everything is read and checked before anything is replaced.
    // Turning TLS or basic auth on or off needs a restart.
    let new_certificate = match (&running.tls, &new.server.tls) {
        (Some(_), Some(files)) => Some(
            crate::tls::Certificate::read(files)
                .map_err(|e| ReloadError::Certificate(Box::new(e)))?,
        ),
        _ => None,
    };
    let new_users = match (&running.metrics_users, &new.server.metrics_users_file) {
        (Some(_), Some(path)) => Some(Users::read(path).map_err(ReloadError::MetricsUsers)?),
        _ => None,
    };
    for (key, changed) in [
        (
            "server",
            restart_relevant(&new.server) != restart_relevant(&current.server),
        ),
        ("store", new.store != current.store),
        ("time.tick", new.time.tick != current.time.tick),
        ("log", new.log != current.log),
    ] {
        if changed {
            tracing::warn!(
                key,
                "changed in the file, but takes effect only after a restart"
            );
        }
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    let command = Command::Reload {
        settings: Box::new(crate::config::core_settings(&new)),
        config_source: source.to_bytes().into(),
        edge: Box::new(edge),
        reply,
    };
    engine
        .commands
        .send(command)
        .await
        .map_err(|_| ReloadError::ShuttingDown)?;
    answer.await.map_err(|_| ReloadError::ShuttingDown)??;
    if let Some(new_tokens) = new_tokens {
        *running.tokens.write().unwrap_or_else(|e| e.into_inner()) = new_tokens;
    }
    if let (Some(tls), Some(certificate)) = (&running.tls, new_certificate) {
        tls.replace(certificate);
    }
    if let (Some(users), Some(new_users)) = (&running.metrics_users, new_users) {
        users.replace(new_users);
    }
    *current = new;
    Ok(())
}

/// The server settings without the paths of files that a reload re-reads (only whether each is
/// set matters): a moved tokens, certificate or users file takes effect without a restart.
fn restart_relevant(server: &crate::config::ServerConfig) -> crate::config::ServerConfig {
    let mut server = server.clone();
    let placeholder = PathBuf::from("(re-read on reload)");
    server.ingest_tokens_file = server.ingest_tokens_file.map(|_| placeholder.clone());
    server.metrics_users_file = server.metrics_users_file.map(|_| placeholder.clone());
    server.tls = server.tls.map(|_| crate::config::TlsFiles {
        cert_file: placeholder.clone(),
        key_file: placeholder,
    });
    server
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
