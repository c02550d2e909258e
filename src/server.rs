//! The HTTP edge: routes, ingest authentication, body limits, and graceful shutdown.
//!
//! Handlers are thin: they parse and check the request, hand a batch to the engine and await its
//! answer. No handler touches the state; `/metrics` reads the latest published view, so a scrape
//! never waits for a commit.

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
use tokio::sync::oneshot;

use crate::engine::{self, Command, EngineHandle, IngestOutcome};
use crate::telemetry::Telemetry;
use crate::wire::BodyFormat;

/// Everything a request handler needs, shared by all connections.
pub struct App {
    pub engine: EngineHandle,
    pub telemetry: Arc<Telemetry>,
    pub max_body_bytes: usize,
    /// Accepted bearer tokens; empty = no authentication. Replaced by a reload (token rotation);
    /// the lock is held only to compare, never across an `.await`.
    pub tokens: Tokens,
    /// Where `POST /-/reload` sends its request.
    pub reload: tokio::sync::mpsc::Sender<crate::daemon::ReloadRequest>,
}

type HttpResponse = Response<Full<Bytes>>;

/// The accepted ingest tokens, shared with the reload task.
pub type Tokens = Arc<std::sync::RwLock<Vec<String>>>;

/// Serves connections from `listener` until `shutdown` resolves, then stops accepting and waits (at
/// most `drain`) for in-flight requests to finish.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()>,
    drain: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
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
                let app = app.clone();
                let service = hyper::service::service_fn(move |request| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(route(&app, peer, request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within {drain:?}; closing them");
    }
}

async fn route(app: &App, peer: SocketAddr, request: Request<Incoming>) -> HttpResponse {
    let path = request.uri().path().to_owned();
    match (request.method(), path.as_str()) {
        (&Method::POST, "/-/reload") => reload(app, peer).await,
        (&Method::POST, "/v1/events") => ingest(app, request).await,
        (&Method::GET, "/metrics") => {
            let view = app.engine.view.latest();
            let text = crate::metrics::render(&view, &app.telemetry);
            Response::builder()
                .header(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)
                .body(Full::new(Bytes::from(text)))
                .unwrap_or_default()
        }
        (&Method::GET, "/healthz") => json_response(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, "/readyz") => {
            if app.engine.ready.load(Ordering::SeqCst) {
                json_response(StatusCode::OK, &json!({"status": "ready"}))
            } else {
                error_response(StatusCode::SERVICE_UNAVAILABLE, "recovery is not complete")
            }
        }
        (&Method::GET, "/v1/cases/overdue") => overdue(app, request).await,
        (
            _,
            "/v1/events" | "/metrics" | "/healthz" | "/readyz" | "/v1/cases/overdue" | "/-/reload",
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
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the event log failed; ingestion is refused until the daemon is restarted",
        );
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
    let body = match Limited::new(request.into_body(), app.max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return too_large(app.max_body_bytes);
        }
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("reading the body failed: {e}"),
            );
        }
    };
    let (reply, answer) = oneshot::channel();
    let batch = match engine::batch_from_body(body, format, "http", reply) {
        Ok(batch) => batch,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.0),
    };
    if app
        .engine
        .commands
        .send(Command::Ingest(batch))
        .await
        .is_err()
    {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        );
    }
    match answer.await {
        Ok(IngestOutcome::Done(summary)) => {
            let rejected: Vec<_> = summary
                .rejected
                .iter()
                .map(|(index, id, rejection)| {
                    json!({
                        "index": index,
                        "id": id,
                        "reason": rejection.reason.as_str(),
                        "message": rejection.message,
                    })
                })
                .collect();
            let status = if rejected.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            json_response(
                status,
                &json!({
                    "accepted": summary.accepted,
                    "duplicates": summary.duplicates,
                    "rejected": rejected,
                }),
            )
        }
        Ok(IngestOutcome::Unavailable(message)) => {
            error_response(StatusCode::SERVICE_UNAVAILABLE, &message)
        }
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        ),
    }
}

/// `POST /-/reload`: only from the loopback interface, like Prometheus' lifecycle endpoints.
async fn reload(app: &App, peer: SocketAddr) -> HttpResponse {
    if !peer.ip().is_loopback() {
        return error_response(
            StatusCode::FORBIDDEN,
            "reload is accepted only from the loopback interface; send SIGHUP instead",
        );
    }
    let (reply, answer) = oneshot::channel();
    if app.reload.send(reply).await.is_err() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        );
    }
    match answer.await {
        Ok(Ok(())) => json_response(StatusCode::OK, &json!({"status": "reloaded"})),
        Ok(Err(problem)) => error_response(StatusCode::BAD_REQUEST, &problem),
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        ),
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
            "track" if !value.is_empty() => track = Some(value),
            "location" if !value.is_empty() => location = Some(value),
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
            _ => {}
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
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        );
    }
    let Ok(cases) = answer.await else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        );
    };
    let body: Vec<_> = cases
        .into_iter()
        .map(|c| {
            json!({
                "case": c.case,
                "track": c.track,
                "location": c.location,
                "employee": c.employee,
                "deadline": c.deadline.to_string(),
                "overdue_seconds": c.overdue_seconds,
                "penalty_euros": c.penalty_cents as f64 / 100.0,
            })
        })
        .collect();
    json_response(StatusCode::OK, &serde_json::Value::Array(body))
}

/// `None` when the request may proceed; otherwise the 401 answer. Tokens are compared in constant
/// time, and every configured token is compared, so timing reveals neither a prefix nor which matched.
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
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return Some(unauthorized(
            "missing `Authorization: Bearer <token>` header",
        ));
    };
    use subtle::ConstantTimeEq;
    let matched = tokens.iter().fold(subtle::Choice::from(0), |acc, token| {
        acc | token.as_bytes().ct_eq(presented.as_bytes())
    });
    if bool::from(matched) {
        None
    } else {
        Some(unauthorized("the bearer token is not valid"))
    }
}

fn unauthorized(message: &str) -> HttpResponse {
    let mut response = error_response(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Bearer"),
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

fn error_response(status: StatusCode, message: &str) -> HttpResponse {
    json_response(status, &json!({ "error": message }))
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

/// Decodes `application/x-www-form-urlencoded` query pairs (`+` and `%XX`).
fn form_pairs(query: &str) -> Vec<(String, String)> {
    fn hex(digit: u8) -> Option<u8> {
        (digit as char).to_digit(16).map(|d| d as u8)
    }
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// Reads `server.ingest_tokens_file`: one token a line, blank lines and `#` comments ignored.
pub fn read_tokens(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "server.ingest_tokens_file: cannot read {}: {e}",
            path.display()
        )
    })?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if tokens.is_empty() {
        anyhow::bail!(
            "server.ingest_tokens_file: {} holds no token (one a line; # starts a comment)",
            path.display()
        );
    }
    Ok(tokens)
}

/// Binds the listen address, with the address in the error.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("server.listen: cannot listen on {address}: {e}"))
}
