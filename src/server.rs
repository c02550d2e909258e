//! The HTTP edge: routes, ingest authentication, body limits, and graceful shutdown.
//!
//! Handlers are thin: they parse and check the request, hand a batch to the engine and await its
//! answer. No handler touches the state; `/metrics` reads the latest published view, so a scrape
//! never waits for a commit.

mod answers;
mod parser_answers;

use answers::{forecast, targets};
pub use answers::{forecast_body, history_body, targets_body};

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Semaphore, oneshot};

use crate::config::ServerLimits;
use crate::engine::{self, Command, EngineHandle, IngestOutcome};
use crate::metrics_auth::{MetricsUsers, Verdict};
use crate::telemetry::Telemetry;
use crate::wire::{BodyError, BodyFormat};

/// Everything a request handler needs, shared by all connections.
pub struct App {
    pub engine: EngineHandle,
    pub telemetry: Arc<Telemetry>,
    pub max_body_bytes: usize,
    pub limits: ServerLimits,
    /// Bytes of request bodies in flight, in KiB permits (`server.max_inflight_bytes`).
    pub inflight: Arc<Semaphore>,
    /// Accepted bearer tokens; empty = no authentication. Replaced by a reload (token rotation);
    /// the lock is held only to compare, never across an `.await`.
    pub tokens: Tokens,
    /// Where `POST /-/reload` sends its request.
    pub reload: tokio::sync::mpsc::Sender<ReloadRequest>,
    /// `Some` when the listener speaks TLS (`server.tls_cert_file`); a reload replaces the
    /// certificate inside.
    pub tls: Option<Arc<crate::tls::Tls>>,
    /// `Some` when `/metrics` needs basic auth (`server.metrics_users_file`); a reload replaces the
    /// users inside.
    pub metrics_users: Option<Arc<MetricsUsers>>,
}

impl App {
    pub fn new(
        engine: EngineHandle,
        telemetry: Arc<Telemetry>,
        server: &crate::config::ServerConfig,
        tokens: Tokens,
        reload: tokio::sync::mpsc::Sender<ReloadRequest>,
    ) -> App {
        App {
            engine,
            telemetry,
            max_body_bytes: server.max_body_bytes,
            limits: server.limits.clone(),
            inflight: Arc::new(Semaphore::new(kib(server.limits.max_inflight_bytes))),
            tokens,
            reload,
            tls: None,
            metrics_users: None,
        }
    }

    /// Serves every connection over TLS.
    pub fn with_tls(mut self, tls: Option<Arc<crate::tls::Tls>>) -> App {
        self.tls = tls;
        self
    }

    /// Asks scrapers of `/metrics` for basic-auth credentials.
    pub fn with_metrics_users(mut self, users: Option<Arc<MetricsUsers>>) -> App {
        self.metrics_users = users;
        self
    }
}

/// A reload request from `POST /-/reload`: the answer goes back on the sender.
/// The reply to a reload request: one outcome shared by every request the reload served.
pub type ReloadRequest = oneshot::Sender<Result<(), Arc<crate::engine::ReloadError>>>;

type HttpResponse = Response<Full<Bytes>>;

/// The accepted ingest tokens (SHA-256 digests of them, so that comparing takes the same time
/// whatever their length), shared with the reload task.
pub type Tokens = Arc<std::sync::RwLock<Vec<[u8; 32]>>>;

/// Bytes as whole KiB permits of the in-flight budget (rounded up).
fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

/// Per connection: requests in progress and the last moment one ended, for the idle timeout.
#[derive(Default)]
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    last_active: std::sync::Mutex<Option<Instant>>,
}

impl Activity {
    /// When the connection last ended a request (`opened` if it never did).
    fn last(&self, opened: Instant) -> Instant {
        self.last_active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(opened)
    }
}

/// One open connection as the accept loop sees it: its slot of `server.max_connections`, and
/// what it takes to reclaim that slot when it is idle and a new connection finds none free.
struct Open {
    activity: Arc<Activity>,
    opened: Instant,
    /// The connection's slot; taken (`None`) when the connection is reclaimed.
    slot: std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    /// Cancelled when the slot is reclaimed: the connection closes gracefully.
    reclaim: tokio_util::sync::CancellationToken,
}

/// Every open connection, by a number of its own.
#[derive(Default)]
struct OpenConnections {
    next: u64,
    open: std::collections::HashMap<u64, Arc<Open>>,
}

/// Removes a connection from `OpenConnections` when its task ends.
struct Registered {
    connections: Arc<std::sync::Mutex<OpenConnections>>,
    number: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .open
            .remove(&self.number);
    }
}

impl OpenConnections {
    /// Takes the slot of the connection idle the longest (no request in progress), and tells it
    /// to close; `None` when every connection is busy.
    fn reclaim_idle(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let victim = self
            .open
            .values()
            .filter(|open| open.activity.in_flight.load(Ordering::SeqCst) == 0)
            .filter(|open| {
                open.slot
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some()
            })
            .min_by_key(|open| open.activity.last(open.opened))?;
        let slot = victim
            .slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        victim.reclaim.cancel();
        Some(slot)
    }
}

/// Serves connections from `listener` until `shutdown` resolves, then stops accepting and waits (at
/// most `drain`) for in-flight requests to finish.
///
/// Every connection is bounded: at most `server.max_connections` hold a slot; when none is free, a
/// new connection takes the slot of the connection idle the longest (no request in progress),
/// which closes gracefully, and only when every connection is busy is the new one closed at once.
/// Headers must arrive within `server.header_timeout` (hyper's timer), and a keep-alive
/// connection without a request for `server.idle_timeout` is closed.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()>,
    drain: Duration,
) {
    let stopping = tokio_util::sync::CancellationToken::new();
    let connections = tokio_util::task::TaskTracker::new();
    let slots = Arc::new(Semaphore::new(app.limits.max_connections));
    let open = Arc::new(std::sync::Mutex::new(OpenConnections::default()));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(connection) => connection,
                    Err(e) => {
                        // Running out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let slot = match slots.clone().try_acquire_owned() {
                    Ok(slot) => Some(slot),
                    Err(_) => {
                        let reclaimed = open.lock().unwrap_or_else(|e| e.into_inner()).reclaim_idle();
                        if reclaimed.is_some() {
                            app.telemetry.connections_reclaimed.inc();
                            tracing::debug!(%peer, "server.max_connections reached: closing the connection idle the longest for a new one");
                        }
                        reclaimed
                    }
                };
                let Some(slot) = slot else {
                    app.telemetry.connections_refused.inc();
                    tracing::warn!(%peer, limit = app.limits.max_connections, "server.max_connections reached, none idle: closing a new connection");
                    drop(stream);
                    continue;
                };
                let entry = Arc::new(Open {
                    activity: Arc::new(Activity::default()),
                    opened: Instant::now(),
                    slot: std::sync::Mutex::new(Some(slot)),
                    reclaim: tokio_util::sync::CancellationToken::new(),
                });
                let slot = {
                    let mut registry = open.lock().unwrap_or_else(|e| e.into_inner());
                    registry.next += 1;
                    let number = registry.next;
                    registry.open.insert(number, entry.clone());
                    Slot {
                        entry,
                        _registered: Registered { connections: open.clone(), number },
                    }
                };
                // Two spawn sites, so that a plain connection's task is exactly what it was
                // before TLS existed (no room for a TLS stream in its future).
                match &app.tls {
                    None => connections.spawn(connection(
                        stream,
                        peer,
                        app.clone(),
                        stopping.clone(),
                        slot,
                    )),
                    Some(tls) => connections.spawn(tls_connection(
                        tls.clone(),
                        stream,
                        peer,
                        app.clone(),
                        stopping.clone(),
                        slot,
                    )),
                };
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    if tokio::time::timeout(drain, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within {drain:?}; closing them");
    }
}

/// A connection's place among the open ones (its slot lives in `entry` until reclaimed).
struct Slot {
    entry: Arc<Open>,
    _registered: Registered,
}

/// Serves one TLS connection: the handshake comes first, here in the connection's own task (so a
/// slow one never holds up `accept`), and must end within `server.header_timeout` (the same bound
/// as a request's headers) or the connection is closed; then HTTP as on a plain connection.
async fn tls_connection(
    tls: Arc<crate::tls::Tls>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Arc<App>,
    stopping: tokio_util::sync::CancellationToken,
    slot: Slot,
) {
    let header_timeout = app.limits.header_timeout;
    let handshake = tokio::time::timeout(header_timeout, tls.acceptor().accept(stream));
    let stream = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                // Port scanners and plain-HTTP clients end here: not worth a warning each.
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, timeout = ?header_timeout, "TLS handshake not finished within server.header_timeout; closing");
                return;
            }
        },
        () = stopping.cancelled() => return,
        () = slot.entry.reclaim.cancelled() => return,
    };
    connection(stream, peer, app, stopping, slot).await;
}

/// Serves HTTP/1.1 on one connection (a TCP stream, or a TLS stream after its handshake) until it
/// ends, the daemon stops, or it is idle too long.
async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Arc<App>,
    stopping: tokio_util::sync::CancellationToken,
    slot: Slot,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = slot.entry.activity.clone();
    let opened = slot.entry.opened;
    let idle_timeout = app.limits.idle_timeout;
    let header_timeout = app.limits.header_timeout;
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request| {
            let app = app.clone();
            let activity = activity.clone();
            async move {
                activity.in_flight.fetch_add(1, Ordering::SeqCst);
                let response = route(&app, peer, request).await;
                *activity
                    .last_active
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                activity.in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // One flat write buffer: hyper's own answer to a request it cannot parse is then the tail of
    // one write, where `JsonParserAnswers` puts the JSON error shape in its place. The default
    // of 100 header fields stays (setting `max_headers` moves them to the heap).
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Some(header_timeout))
        .writev(false)
        .max_buf_size(parser_answers::MAX_HEAD_BYTES);
    let connection = builder.serve_connection(
        TokioIo::new(parser_answers::JsonParserAnswers::new(stream)),
        service,
    );
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        let last = activity.last(opened);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = stopping.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = slot.entry.reclaim.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until((last + idle_timeout).into()), if !closing => {
                let idle = activity.in_flight.load(Ordering::SeqCst) == 0
                    && activity.last(opened) == last;
                if idle {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// Whether `Accept-Encoding` accepts gzip: a `gzip` (or `*`) coding whose `q` is not 0.
fn accepts_gzip(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(hyper::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|param| {
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// `body` gzipped at the fast level (a scrape is text that compresses about tenfold at it).
fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 8),
        flate2::Compression::fast(),
    );
    encoder.write_all(body)?;
    encoder.finish()
}

async fn route(app: &App, peer: SocketAddr, request: Request<Incoming>) -> HttpResponse {
    // Which of two credentials would count is ambiguous (a proxy may have checked the other).
    let authorizations = request.headers().get_all(AUTHORIZATION).iter().count();
    if authorizations > 1 {
        return error_response(
            StatusCode::BAD_REQUEST,
            &format!("the request has {authorizations} Authorization headers; send one"),
        );
    }
    let path = request.uri().path().to_owned();
    match (request.method(), path.as_str()) {
        (&Method::POST, "/-/reload") => reload(app, peer, &request).await,
        (&Method::POST, "/v1/events") => ingest(app, request).await,
        (&Method::GET, "/metrics") => {
            if let Some(users) = &app.metrics_users {
                let verdict = users
                    .check(peer.ip(), request.headers().get(AUTHORIZATION))
                    .await;
                if let Some(cause) = verdict.cause() {
                    app.telemetry
                        .metrics_auth_refused
                        .with_label_values(&[cause])
                        .inc();
                }
                match verdict {
                    Verdict::Allowed => {}
                    Verdict::Refused => return basic_auth_required(),
                    Verdict::PeerBusy => {
                        return retry_shortly(
                            StatusCode::TOO_MANY_REQUESTS,
                            "a password check of this peer is already waiting; retry shortly",
                        );
                    }
                    Verdict::QueueFull => {
                        return retry_shortly(
                            StatusCode::SERVICE_UNAVAILABLE,
                            &format!(
                                "server.metrics_auth_queue ({}) password checks are waiting; retry shortly",
                                app.limits.metrics_auth_queue
                            ),
                        );
                    }
                }
            }
            // Until recovery is complete there is no view: only the process' own families.
            let view = app.engine.view.latest();
            let text = crate::metrics::render(view.as_deref(), &app.telemetry);
            let builder = Response::builder()
                .header(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)
                .header(hyper::header::VARY, "Accept-Encoding");
            // Prometheus asks for gzip on every scrape, as node_exporter answers it.
            let body = if accepts_gzip(request.headers()) {
                match gzip(text.as_bytes()) {
                    Ok(compressed) => {
                        return builder
                            .header(hyper::header::CONTENT_ENCODING, "gzip")
                            .body(Full::new(Bytes::from(compressed)))
                            .unwrap_or_default();
                    }
                    // Compressing into memory cannot fail short of allocation; answer plain then.
                    Err(_) => text,
                }
            } else {
                text
            };
            builder
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_default()
        }
        (&Method::GET, "/healthz") => {
            if app.engine.failed.load(Ordering::SeqCst) {
                error_response(StatusCode::SERVICE_UNAVAILABLE, engine::STORE_FAILED)
            } else {
                json_response(StatusCode::OK, &json!({"status": "ok"}))
            }
        }
        (&Method::GET, "/readyz") => {
            if app.engine.failed.load(Ordering::SeqCst) {
                error_response(StatusCode::SERVICE_UNAVAILABLE, engine::STORE_FAILED)
            } else if app.engine.ready.load(Ordering::SeqCst) {
                json_response(StatusCode::OK, &json!({"status": "ready"}))
            } else {
                error_response(StatusCode::SERVICE_UNAVAILABLE, "recovery is not complete")
            }
        }
        (&Method::GET, "/v1/cases/overdue") => overdue(app, request).await,
        (&Method::GET, "/v1/targets") => targets(app, request).await,
        (&Method::GET, "/v1/history") => answers::history(app, request).await,
        (&Method::GET, "/report") => answers::report(app, request).await,
        (&Method::GET, "/v1/forecast") => forecast(app, request).await,
        (
            _,
            "/v1/events" | "/metrics" | "/healthz" | "/readyz" | "/v1/cases/overdue"
            | "/v1/targets" | "/v1/forecast" | "/v1/history" | "/report" | "/-/reload",
        ) => error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => error_response(StatusCode::NOT_FOUND, "no such endpoint"),
    }
}

async fn ingest(app: &App, request: Request<Incoming>) -> HttpResponse {
    let started = Instant::now();
    let response = ingest_inner(app, request).await;
    app.telemetry
        .ingest_request_duration
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn ingest_inner(app: &App, request: Request<Incoming>) -> HttpResponse {
    if let Some(denied) = authenticate(app, &request) {
        return denied;
    }
    if !app.engine.ready.load(Ordering::SeqCst) {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "recovery is not complete");
    }
    if app.engine.failed.load(Ordering::SeqCst) {
        return refused(app, "store_failed", engine::STORE_FAILED);
    }
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(format) = BodyFormat::from_content_type(content_type) else {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!(
                "Content-Type \"{content_type}\" is not supported; use application/x-ndjson, application/json, application/cloudevents-batch+json or application/cloudevents+json"
            ),
        );
    };
    let declared_length = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > app.max_body_bytes as u64) {
        return too_large(app.max_body_bytes);
    }
    // The in-flight budget is taken before the body is read (the declared length, or the largest
    // allowed body when it is not declared) and held until the engine has answered.
    let budget = declared_length.map_or(app.max_body_bytes, |n| n as usize);
    let Ok(permits) = u32::try_from(kib(budget)) else {
        return too_large(app.max_body_bytes);
    };
    let Ok(permit) = app.inflight.clone().try_acquire_many_owned(permits) else {
        return refused(
            app,
            "inflight_bytes",
            &format!(
                "server.max_inflight_bytes ({} bytes) are in flight; retry shortly",
                app.limits.max_inflight_bytes
            ),
        );
    };
    let _budget = InflightBudget::new(permit, &app.telemetry.inflight_bytes, budget);
    let collect = Limited::new(request.into_body(), app.max_body_bytes).collect();
    let body = match tokio::time::timeout(app.limits.body_timeout, collect).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return too_large(app.max_body_bytes);
        }
        Ok(Err(e)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("reading the body failed: {e}"),
            );
        }
        Err(_) => {
            return error_response(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body did not arrive within server.body_timeout ({:?})",
                    app.limits.body_timeout
                ),
            );
        }
    };
    let (reply, answer) = oneshot::channel();
    let max_events = app.limits.max_events_per_request;
    // Parsing up to 16 MiB of JSON is CPU work: off the async workers, so scrapes stay prompt.
    let parsed = tokio::task::spawn_blocking(move || {
        engine::batch_from_body(body, format, "http", reply, max_events)
    })
    .await;
    let batch = match parsed {
        Ok(Ok(batch)) => batch,
        Ok(Err(e @ BodyError::TooManyEvents { .. })) => {
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string());
        }
        Ok(Err(e @ BodyError::Malformed(_))) => {
            return error_response(StatusCode::BAD_REQUEST, &e.to_string());
        }
        Err(_) => {
            return shutting_down();
        }
    };
    let events = batch.items.len();
    app.telemetry
        .non_ascii_ids
        .observe(batch.items.iter().map(|(_, parsed)| parsed));
    match app.engine.commands.try_send(Command::Ingest(batch)) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return refused(
                app,
                "queue_full",
                "the engine's queue is full; retry shortly",
            );
        }
        Err(TrySendError::Closed(_)) => {
            return shutting_down();
        }
    }
    match answer.await {
        Ok(IngestOutcome::Done(summary)) => answer_summary(app, &summary, events),
        Ok(IngestOutcome::Unavailable(message)) => {
            error_response(StatusCode::SERVICE_UNAVAILABLE, &message)
        }
        Err(_) => shutting_down(),
    }
}

/// The 200/422 answer for an applied and committed batch of `events` events: the counts, the first
/// `server.max_rejections_reported` rejections and, when there are any, `rejected_total`.
fn answer_summary(app: &App, summary: &engine::IngestSummary, events: usize) -> HttpResponse {
    let rejected_total = summary.rejected.len();
    // The answer accounts for every event of the body, or it is not an answer.
    if summary.accepted + summary.duplicates + rejected_total != events {
        tracing::error!(
            events,
            accepted = summary.accepted,
            duplicates = summary.duplicates,
            rejected = rejected_total,
            "an ingest answer does not account for every event; refusing to acknowledge it"
        );
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: the answer does not account for every event; resend the batch",
        );
    }
    let rejected = summary
        .rejected
        .iter()
        .take(app.limits.max_rejections_reported)
        .map(|(index, id, rejection)| crate::api::Rejected {
            index: *index,
            id: id.clone(),
            reason: rejection.reason.as_str().to_owned(),
            message: rejection.message.clone(),
        })
        .collect();
    let status = if rejected_total == 0 {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let answer = crate::api::IngestAnswer {
        accepted: summary.accepted as u64,
        duplicates: summary.duplicates as u64,
        rejected,
        rejected_total: (rejected_total > 0).then_some(rejected_total as u64),
    };
    json_response(status, &answer)
}

/// A request's share of `server.max_inflight_bytes`, shown in `backlogd_ingest_inflight_bytes`
/// while held.
struct InflightBudget {
    _permit: tokio::sync::OwnedSemaphorePermit,
    gauge: prometheus::IntGauge,
    bytes: i64,
}

impl InflightBudget {
    fn new(
        permit: tokio::sync::OwnedSemaphorePermit,
        gauge: &prometheus::IntGauge,
        bytes: usize,
    ) -> Self {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        gauge.add(bytes);
        InflightBudget {
            _permit: permit,
            gauge: gauge.clone(),
            bytes,
        }
    }
}

impl Drop for InflightBudget {
    fn drop(&mut self) {
        self.gauge.sub(self.bytes);
    }
}

/// 503 with `Retry-After` for a request refused before it reached the engine, counted per cause.
fn refused(app: &App, cause: &str, message: &str) -> HttpResponse {
    app.telemetry
        .requests_refused
        .with_label_values(&[cause])
        .inc();
    retry_shortly(StatusCode::SERVICE_UNAVAILABLE, message)
}

/// `status` with `Retry-After: 1`.
fn retry_shortly(status: StatusCode, message: &str) -> HttpResponse {
    let mut response = error_response(status, message);
    response.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from_static("1"),
    );
    response
}

/// `POST /-/reload`: only from the loopback interface, like Prometheus' lifecycle endpoints, and,
/// when ingest tokens are configured, only with one of them: any local process must not be able
/// to make the engine rebuild its state at will.
async fn reload(app: &App, peer: SocketAddr, request: &Request<Incoming>) -> HttpResponse {
    // A dual-stack listener sees an IPv4 client as `::ffff:a.b.c.d`.
    if !peer.ip().to_canonical().is_loopback() {
        return error_response(
            StatusCode::FORBIDDEN,
            "reload is accepted only from the loopback interface; send SIGHUP instead",
        );
    }
    if let Some(denied) = authenticate(app, request) {
        return denied;
    }
    let (reply, answer) = oneshot::channel();
    if app.reload.send(reply).await.is_err() {
        return shutting_down();
    }
    match answer.await {
        Ok(Ok(())) => json_response(StatusCode::OK, &json!({"status": "reloaded"})),
        Ok(Err(problem)) if matches!(*problem, engine::ReloadError::ShuttingDown) => {
            shutting_down()
        }
        Ok(Err(problem)) => error_response(StatusCode::BAD_REQUEST, &problem.to_string()),
        Err(_) => shutting_down(),
    }
}

async fn overdue(app: &App, request: Request<Incoming>) -> HttpResponse {
    if let Some(denied) = authenticate(app, &request) {
        return denied;
    }
    let mut track = None;
    let mut location = None;
    let mut limit = 100usize;
    for (key, value) in form_pairs(request.uri().query().unwrap_or("")) {
        match key.as_str() {
            // An empty value means no filter.
            "track" => track = Some(value).filter(|v| !v.is_empty()),
            "location" => location = Some(value).filter(|v| !v.is_empty()),
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => limit = n,
                _ => {
                    return error_response(
                        StatusCode::BAD_REQUEST,
                        &format!(
                            "query parameter `limit`: \"{value}\" is not a number from 1 to 10000"
                        ),
                    );
                }
            },
            other => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "query parameter `{other}`: unknown; expected `track`, `location` or `limit`"
                    ),
                );
            }
        }
    }
    let (reply, answer) = oneshot::channel();
    let command = Command::Overdue {
        track,
        location,
        limit,
        reply,
    };
    if app.engine.commands.send(command).await.is_err() {
        return shutting_down();
    }
    let cases = match answer.await {
        Ok(Ok(cases)) => cases,
        Ok(Err(problem)) => return error_response(StatusCode::BAD_REQUEST, &problem),
        Err(_) => return shutting_down(),
    };
    let body: Vec<crate::api::OverdueCase> = cases
        .into_iter()
        .map(|c| crate::api::OverdueCase {
            case: c.case,
            track: c.track,
            location: c.location,
            employee: c.employee,
            deadline: c.deadline,
            overdue_seconds: c.overdue_seconds,
            penalty_euros: c.penalty_cents as f64 / 100.0,
        })
        .collect();
    json_response(StatusCode::OK, &body)
}

/// `None` when the request may proceed; otherwise the 401 answer. The scheme is matched without
/// regard to case (RFC 9110). The presented token is hashed and compared with every configured
/// token's digest in constant time: timing reveals neither a prefix, nor the length, nor which
/// token matched.
fn authenticate(app: &App, request: &Request<Incoming>) -> Option<HttpResponse> {
    // A poisoned lock only means a writer panicked mid-swap of a whole Vec; the Vec is intact.
    let tokens = app.tokens.read().unwrap_or_else(|e| e.into_inner());
    if tokens.is_empty() {
        return None;
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let Some(presented) = presented else {
        return Some(unauthorized(
            "missing `Authorization: Bearer <token>` header",
        ));
    };
    if token_matches(&tokens, presented) {
        None
    } else {
        Some(unauthorized("the bearer token is not valid"))
    }
}

/// The digest under which a token is kept and compared.
pub fn token_digest(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Whether `presented` is one of the tokens whose digests are given, in time independent of
/// which one matched and of the presented token's length (beyond hashing it).
fn token_matches(digests: &[[u8; 32]], presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    let presented = token_digest(presented);
    let matched = digests.iter().fold(subtle::Choice::from(0), |acc, digest| {
        acc | digest.ct_eq(&presented)
    });
    bool::from(matched)
}

fn unauthorized(message: &str) -> HttpResponse {
    let mut response = error_response(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// 401 for `/metrics` without the credentials of a `server.metrics_users_file` user.
fn basic_auth_required() -> HttpResponse {
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        "/metrics needs the basic-auth credentials of a user of server.metrics_users_file",
    );
    response.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static(crate::metrics_auth::CHALLENGE),
    );
    response
}

fn too_large(limit: usize) -> HttpResponse {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "the body is larger than server.max_body_bytes ({limit} bytes); send smaller batches"
        ),
    )
}

/// 503 for a request that finds the engine gone (the daemon is stopping).
fn shutting_down() -> HttpResponse {
    error_response(StatusCode::SERVICE_UNAVAILABLE, engine::SHUTTING_DOWN)
}

fn error_response(status: StatusCode, message: &str) -> HttpResponse {
    json_response(status, &json!({ "error": message }))
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    // The answers are plain data with string keys: serializing them cannot fail.
    let text = serde_json::to_string(body).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_default()
}

/// A self-contained HTML page (`GET /report`): no scripts, nothing loaded from elsewhere.
fn html_response(page: String) -> HttpResponse {
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
        )
        .body(Full::new(Bytes::from(page)))
        .unwrap_or_default()
}

/// Decodes `application/x-www-form-urlencoded` query pairs (`+` and `%XX`).
fn form_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// Why a tokens file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("server.ingest_tokens_file: cannot read {}: {error}", path.display())]
    Read {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error(
        "server.ingest_tokens_file: {} holds no token (one a line; # starts a comment)",
        path.display()
    )]
    Empty { path: std::path::PathBuf },
}

/// Reads `server.ingest_tokens_file` into token digests: one token a line, blank lines and `#`
/// comments ignored.
pub fn read_token_digests(path: &std::path::Path) -> Result<Vec<[u8; 32]>, TokensError> {
    Ok(read_tokens(path)?.iter().map(|t| token_digest(t)).collect())
}

/// Reads `server.ingest_tokens_file`: one token a line, blank lines and `#` comments ignored.
pub fn read_tokens(path: &std::path::Path) -> Result<Vec<String>, TokensError> {
    let text = std::fs::read_to_string(path).map_err(|error| TokensError::Read {
        path: path.to_owned(),
        error,
    })?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if tokens.is_empty() {
        return Err(TokensError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(tokens)
}

/// The listen address cannot be bound.
#[derive(Debug, thiserror::Error)]
#[error("server.listen: cannot listen on {address}: {error}")]
pub struct BindError {
    pub address: SocketAddr,
    pub error: std::io::Error,
}

/// Binds the listen address, with the address in the error.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(address)
        .await
        .map_err(|error| BindError { address, error })
}
