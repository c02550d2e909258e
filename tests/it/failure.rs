//! Failure behaviour an operator can trust (docs/reliability.md): what the daemon answers while it
//! recovers, when its store fails, and when clients are hostile or slow. Every test here failed
//! against the daemon before the fix it covers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Daemon, metric_value, request, run_command_under, shipped_config};

const NDJSON: [(&str, &str); 1] = [("Content-Type", "application/x-ndjson")];

/// `count` registrations of distinct cases, ids prefixed with `prefix`.
fn registrations(prefix: &str, count: usize) -> String {
    (0..count)
        .map(|n| {
            format!(
                "{{\"id\":\"{prefix}-e{n}\",\"type\":\"case.registered\",\"time\":\"2026-03-02T09:00:00+01:00\",\
                 \"data\":{{\"case\":\"{prefix}-c{n}\",\"track\":\"asylum\",\"location\":\"Ter Apel\"}}}}\n"
            )
        })
        .collect()
}

/// Until recovery is complete, no 200 from /metrics may show a state other than the recovered one:
/// an empty state would read as a counter reset to Prometheus, and every increase() over the
/// restart would jump by the whole history.
#[test]
fn metrics_during_recovery_never_show_a_state_other_than_the_recovered_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    const BATCHES: usize = 24;
    const PER_BATCH: usize = 5_000;
    {
        let daemon = Daemon::start(&store, &[]);
        for batch in 0..BATCHES {
            daemon.post_ok(
                &registrations(&format!("r{batch}"), PER_BATCH),
                PER_BATCH as u64,
            );
        }
        // SIGKILL: no final snapshot, so the restart replays the whole log.
        daemon.kill();
    }
    let expected = (BATCHES * PER_BATCH) as f64;
    let series = "backlogd_cases_registered_total{track=\"asylum\"}";
    let mut daemon = Daemon::start_unready(&store, &[]);
    let started = Instant::now();
    let (mut scrapes_while_recovering, mut ok_while_recovering) = (0, 0);
    loop {
        let ready = request(daemon.addr, "GET", "/readyz", &[], b"").map(|r| r.status);
        let metrics = request(daemon.addr, "GET", "/metrics", &[], b"").expect("/metrics answers");
        if metrics.status == 200 {
            let text = metrics.text();
            if let Some(value) = metric_value(&text, series) {
                assert_eq!(
                    value, expected,
                    "/metrics answered 200 with {series} = {value} during or after recovery"
                );
            }
            assert!(
                text.contains("process_start_time_seconds"),
                "the process families are always served"
            );
        } else {
            assert_eq!(metrics.status, 503, "{}", metrics.text());
        }
        match ready {
            Ok(200) => break,
            Ok(503) => {
                scrapes_while_recovering += 1;
                ok_while_recovering += usize::from(metrics.status == 200);
            }
            other => panic!("/readyz: {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "recovery did not complete within a minute"
        );
    }
    assert!(
        scrapes_while_recovering > 0,
        "the test must scrape during recovery to mean anything (recovery was too quick)"
    );
    eprintln!(
        "{scrapes_while_recovering} scrapes during recovery ({ok_while_recovering} answered 200 with the process families only)"
    );
    daemon.await_ready();
    assert_eq!(daemon.metric(series), Some(expected));
}

/// One hostile request must not take the machine: 16 MiB of `1\n` lines (8 million "events") is
/// refused within seconds, naming the limit, and the daemon's peak memory stays far below 1 GiB.
#[test]
fn a_16_mib_body_of_tiny_lines_is_refused_quickly_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    let body = "1\n".repeat(8 << 20);
    assert_eq!(body.len(), 16 << 20);
    let started = Instant::now();
    let response = daemon.request("POST", "/v1/events", &NDJSON, body.as_bytes());
    let elapsed = started.elapsed();
    assert_eq!(response.status, 413, "{}", response.text());
    assert!(
        response.text().contains("server.max_events_per_request"),
        "the refusal names the limit: {}",
        response.text()
    );
    let peak = daemon.peak_rss_bytes();
    eprintln!(
        "16 MiB garbage body: answered {} in {elapsed:?}, daemon peak RSS {} MiB",
        response.status,
        peak >> 20
    );
    assert!(peak < 1 << 30, "peak RSS {} MiB", peak >> 20);
    // The daemon is still fine for everyone else.
    daemon.post_ok(&registrations("after", 3), 3);
}

/// A body of many invalid lines within the event limit gets a bounded answer: the first rejections
/// with their reasons, and the count of the rest.
#[test]
fn the_rejection_list_is_bounded_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    let body = "not json\n".repeat(5_000) + &registrations("ok", 2);
    let (status, answer) = daemon.post("application/x-ndjson", &body);
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected_total"], 5_000, "{answer}");
    let listed = answer["rejected"].as_array().expect("a list").len();
    assert_eq!(
        listed, 100,
        "server.max_rejections_reported defaults to 100"
    );
    assert_eq!(answer["rejected"][0]["reason"], "invalid_json");
}

/// Slow-loris: 1,000 connections that send half a request and then nothing are closed by the server
/// within a minute, and /metrics keeps answering while they are open.
#[test]
fn half_sent_requests_are_closed_while_metrics_keep_answering() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    const CONNECTIONS: usize = 1_000;
    let mut streams: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|_| {
            let mut stream = TcpStream::connect(daemon.addr).expect("connect");
            stream
                .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
                .expect("half a request is sent");
            stream
        })
        .collect();
    let response = daemon.get("/metrics");
    assert_eq!(response.status, 200);
    let started = Instant::now();
    let mut open = CONNECTIONS;
    while open > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{open} of {CONNECTIONS} half-sent connections still open after a minute"
        );
        std::thread::sleep(Duration::from_millis(500));
        let mut still_open = Vec::new();
        for mut stream in streams.drain(..) {
            stream.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 1024];
            let closed = loop {
                match stream.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(_) => continue, // an error answer before the close
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                    Err(_) => break true, // reset by the server
                }
            };
            if !closed {
                still_open.push(stream);
            }
        }
        streams = still_open;
        open = streams.len();
        let metrics = daemon.get("/metrics");
        assert_eq!(
            metrics.status, 200,
            "/metrics answers while the sockets are open"
        );
    }
    eprintln!(
        "{CONNECTIONS} half-sent requests closed by the server after {:?}",
        started.elapsed()
    );
}

/// Byte-based backpressure: while the bytes in flight to the engine are at their limit, a new
/// request is answered 503 with Retry-After at once instead of hanging.
#[test]
fn requests_beyond_the_bytes_in_flight_get_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[
            ("BACKLOGD__SERVER__MAX_BODY_BYTES", "1048576"),
            ("BACKLOGD__SERVER__MAX_INFLIGHT_BYTES", "1048576"),
        ],
    );
    // A client that announces a full-size body and sends it slowly holds the whole budget.
    let mut slow = TcpStream::connect(daemon.addr).unwrap();
    slow.write_all(
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 1048576\r\n\r\n",
    )
    .unwrap();
    slow.write_all(b"{").unwrap();
    daemon.await_metric("backlogd_ingest_inflight_bytes", 1048576.0);
    let response = daemon.request(
        "POST",
        "/v1/events",
        &NDJSON,
        registrations("b", 1).as_bytes(),
    );
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        response.header("retry-after").is_some(),
        "503 carries Retry-After"
    );
    assert!(
        response.text().contains("server.max_inflight_bytes"),
        "{}",
        response.text()
    );
    drop(slow);
    // Once the slow client is gone the budget is free again.
    let started = Instant::now();
    loop {
        let response = daemon.request(
            "POST",
            "/v1/events",
            &NDJSON,
            registrations("c", 1).as_bytes(),
        );
        if response.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{}",
            response.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A failed fdatasync (injected with strace into the engine thread) is an honest failure: the
/// requests of the failed group get 503, no later request gets a 2xx, /readyz stops answering 200
/// within a second, `backlogd_store_healthy` drops to 0, and the daemon exits non-zero so that
/// systemd restarts it. After the restart, every acknowledged event is there and no refused one.
#[test]
fn a_failed_fdatasync_is_visible_and_ends_the_process() {
    if Command::new("strace").arg("-V").output().is_err() {
        panic!("strace is needed (scripts/test installs it)");
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut strace = Command::new("strace");
    strace.args([
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=fdatasync",
        // Per thread: the engine's first few fdatasyncs (open, first commits) succeed, then fail.
        "-e",
        "inject=fdatasync:error=EIO:when=6+",
        crate::harness::BINARY,
    ]);
    let mut daemon = Daemon::spawn(run_command_under(strace, &shipped_config(), &store, &[]));
    daemon.await_ready();
    const PER_BATCH: usize = 50;
    let mut acknowledged = 0usize;
    let mut refused_at = None;
    for batch in 0..200 {
        let body = registrations(&format!("f{batch}"), PER_BATCH);
        match request(daemon.addr, "POST", "/v1/events", &NDJSON, body.as_bytes()) {
            Ok(response) if response.status == 200 => {
                assert!(
                    refused_at.is_none(),
                    "a 200 after the store failed: {}",
                    response.text()
                );
                let answer = response.json().unwrap();
                assert_eq!(answer["accepted"], PER_BATCH, "{answer}");
                acknowledged += PER_BATCH;
            }
            Ok(response) => {
                assert_eq!(response.status, 503, "{}", response.text());
                if refused_at.is_none() {
                    refused_at = Some(Instant::now());
                    // Within a second: not ready, or gone.
                    let deadline = Instant::now() + Duration::from_secs(1);
                    let mut saw_unhealthy = false;
                    while let Ok(metrics) = request(daemon.addr, "GET", "/metrics", &[], b"") {
                        saw_unhealthy |=
                            metric_value(&metrics.text(), "backlogd_store_healthy") == Some(0.0);
                        match request(daemon.addr, "GET", "/readyz", &[], b"") {
                            Ok(r) if r.status == 200 => {
                                assert!(Instant::now() < deadline, "/readyz still 200 after 1 s")
                            }
                            _ => break,
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    assert!(
                        saw_unhealthy,
                        "backlogd_store_healthy 0 is scraped after the failure"
                    );
                }
            }
            Err(_) => {
                assert!(
                    refused_at.is_some(),
                    "the daemon went away before any refusal"
                );
                break;
            }
        }
    }
    assert!(refused_at.is_some(), "no fdatasync failure was injected");
    let status = daemon.await_exit();
    assert!(
        !status.success(),
        "the daemon exits non-zero after a store failure: {status}"
    );
    assert!(
        daemon.stderr().contains("event log"),
        "the failure is logged: {}",
        daemon.stderr()
    );
    drop(daemon);
    // Recovery reads what is durable: exactly the acknowledged events.
    let daemon = Daemon::start(&store, &[]);
    assert_eq!(
        daemon.metric("backlogd_cases_registered_total{track=\"asylum\"}"),
        Some(acknowledged as f64)
    );
}

/// A panic on the engine thread ends the process (so that systemd restarts it) instead of leaving
/// a half-alive daemon serving a frozen view. The panic is triggered by a test hook that exists only
/// in debug builds.
#[test]
fn a_panic_on_the_engine_thread_ends_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start_unready(
        &dir.path().join("store"),
        &[("BACKLOGD_TEST_PANIC_IN_ENGINE", "1")],
    );
    let status = daemon.await_exit();
    assert!(!status.success(), "{status}");
    assert!(
        daemon
            .stderr()
            .contains("aborting so that the daemon is restarted"),
        "{}",
        daemon.stderr()
    );
}

/// An event `ahead` ahead of the wall clock (accepted while `ingest.max_future_skew` allows it).
fn registration_ahead(id: &str, ahead: jiff::SignedDuration) -> String {
    let time = jiff::Timestamp::now() + ahead;
    format!(
        "{{\"id\":\"{id}\",\"type\":\"case.registered\",\"time\":\"{time}\",\
         \"data\":{{\"case\":\"{id}\",\"track\":\"asylum\"}}}}\n"
    )
}

const REGISTERED: &str = "backlogd_cases_registered_total{track=\"asylum\"}";

/// Replay applies every logged event under the settings it was acknowledged with, not under the
/// configuration file of the next start: an edit plus a restart must not drop acknowledged events.
#[test]
fn replay_after_a_configuration_edit_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let daemon = Daemon::start(&store, &[]);
    // Four minutes ahead: accepted under the shipped max_future_skew of five minutes.
    daemon.post_ok(
        &registration_ahead("ahead-1", jiff::SignedDuration::from_mins(4)),
        1,
    );
    daemon.post_ok(&registrations("now", 2), 2);
    daemon.kill();
    // The operator tightens the skew and restarts: the log tail is replayed under the old setting.
    let tighter = [("BACKLOGD__INGEST__MAX_FUTURE_SKEW", "PT1M")];
    let daemon = Daemon::start(&store, &tighter);
    assert_eq!(daemon.metric(REGISTERED), Some(3.0), "{}", daemon.stderr());
    let replay_rejections: f64 = crate::harness::samples(&daemon.metrics())
        .iter()
        .filter(|(key, _)| key.0 == "backlogd_replay_rejected_total")
        .map(|(_, value)| crate::harness::parse_value(value))
        .sum();
    assert_eq!(replay_rejections, 0.0);
    // The new setting is in force for new events...
    let (status, answer) = daemon.post(
        "application/x-ndjson",
        &registration_ahead("ahead-2", jiff::SignedDuration::from_mins(4)),
    );
    assert_eq!(
        (status, &answer["rejected"][0]["reason"]),
        (422, &serde_json::json!("time_in_future"))
    );
    // ...and stays so across another crash, now that the switch itself is logged.
    daemon.kill();
    let daemon = Daemon::start(&store, &tighter);
    assert_eq!(daemon.metric(REGISTERED), Some(3.0));
    let (status, _) = daemon.post(
        "application/x-ndjson",
        &registration_ahead("ahead-3", jiff::SignedDuration::from_mins(4)),
    );
    assert_eq!(status, 422);
}

/// The same across a reload: events before it were applied under the old settings, events after
/// it under the new ones, and a crash before the next snapshot replays each under its own.
#[test]
fn replay_after_a_reload_and_a_crash_applies_each_event_under_its_own_settings() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let config = dir.path().join("backlogd.toml");
    let shipped = std::fs::read_to_string(shipped_config()).unwrap();
    std::fs::write(&config, &shipped).unwrap();
    let daemon = Daemon::start_with_config(&config, &store, &[]);
    daemon.post_ok(
        &registration_ahead("before", jiff::SignedDuration::from_mins(4)),
        1,
    );
    let edited = shipped.replace("max_future_skew = \"PT5M\"", "max_future_skew = \"PT1M\"");
    assert_ne!(edited, shipped, "the shipped file sets max_future_skew");
    std::fs::write(&config, edited).unwrap();
    daemon.signal("HUP");
    daemon.await_stderr("configuration reloaded");
    let (status, _) = daemon.post(
        "application/x-ndjson",
        &registration_ahead("after-rejected", jiff::SignedDuration::from_mins(4)),
    );
    assert_eq!(status, 422, "the reloaded skew is in force");
    daemon.post_ok(
        &registration_ahead("after", jiff::SignedDuration::from_secs(30)),
        1,
    );
    daemon.kill();
    let daemon = Daemon::start_with_config(&config, &store, &[]);
    assert_eq!(daemon.metric(REGISTERED), Some(2.0), "{}", daemon.stderr());
}

/// Sends `GET /healthz` on a keep-alive `stream` and reads its whole answer (by Content-Length),
/// leaving the connection open.
fn keep_alive_healthz(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("the request is sent");
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).expect("the answer arrives");
        assert!(n > 0, "closed before answering: {raw:?}");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("the answer has a Content-Length");
            if body.len() >= length {
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                return;
            }
        }
    }
}

/// Whether the server has closed `stream` (without waiting).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// Issue 24, finding 8: keep-alive connections that made one request and then sit idle fill
/// `server.max_connections`; a new connection (here: ingest) must still be served, by closing the
/// connection idle the longest. Before the fix the new connection was closed at once, and ingest
/// stayed blocked for up to `server.idle_timeout` (renewable by the flood).
#[test]
fn idle_keep_alive_connections_make_room_for_ingest() {
    const SLOTS: usize = 32;
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[("BACKLOGD__SERVER__MAX_CONNECTIONS", &SLOTS.to_string())],
    );
    let mut flood: Vec<TcpStream> = (0..SLOTS)
        .map(|_| {
            let mut stream = TcpStream::connect(daemon.addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            keep_alive_healthz(&mut stream);
            stream
        })
        .collect();
    // Every slot is taken by an idle connection; now a sender arrives, then a scraper.
    let body = registrations("k", 1);
    let posted = request(daemon.addr, "POST", "/v1/events", &NDJSON, body.as_bytes());
    match posted {
        Ok(response) => assert_eq!(response.status, 200, "{}", response.text()),
        Err(e) => panic!("ingest was refused while idle connections held every slot: {e}"),
    }
    let metrics = request(daemon.addr, "GET", "/metrics", &[], b"")
        .expect("a scrape is served while idle connections held every slot");
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    // The sender's connection took an idle one's slot and gives it back when the server sees it
    // close. The scraper usually finds that slot free; when it arrives before the server has seen
    // the close (a loaded machine), it takes the next idle one's slot instead. Either way nothing
    // is refused, and only the oldest idle connections are closed.
    let reclaimed = metric_value(&text, "backlogd_http_connections_reclaimed_total");
    assert!(
        matches!(reclaimed, Some(r) if r == 1.0 || r == 2.0),
        "one idle connection for the sender, and at most one more for the scraper: {reclaimed:?}"
    );
    let reclaimed = reclaimed.unwrap_or(0.0) as usize;
    assert_eq!(
        metric_value(&text, "backlogd_http_connections_refused_total"),
        Some(0.0)
    );
    // Exactly as many idle connections were closed as were reclaimed: the oldest ones.
    let started = Instant::now();
    let closed = loop {
        let closed: Vec<usize> = (0..SLOTS)
            .filter(|&n| closed_by_server(&mut flood[n]))
            .collect();
        if closed.len() >= reclaimed || started.elapsed() > Duration::from_secs(5) {
            break closed;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        closed,
        (0..reclaimed).collect::<Vec<_>>(),
        "the connections idle the longest"
    );
    // The rest still work.
    keep_alive_healthz(&mut flood[SLOTS - 1]);
    daemon.stop();
}

/// Issue 24, finding 7: with `store.dedup_window = "PT5S"` the remembered ids of a burst are all
/// forgotten by the ticks alone, while no event arrives: at most 1.5 windows after the burst,
/// plus the ticks in between. Before the fix the 100,000 ids stayed for as long as nothing came.
/// Also prints the resident memory the ids took (for docs/store.md).
#[test]
fn remembered_ids_expire_on_the_tick_while_no_event_arrives() {
    const IDS: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[("BACKLOGD__STORE__DEDUP_WINDOW", "PT5S")],
    );
    let rss = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .expect("VmRSS")
            * 1024
    };
    let before = rss();
    for chunk in 0..IDS / 10_000 {
        let body: String = (0..10_000)
            .map(|n| {
                format!(
                    "{{\"id\":\"audit-{chunk}-{n:05}-{}\",\"type\":\"quality.audit\",\"time\":\"2026-03-02T09:00:00+01:00\",\"data\":{{\"passed\":true}}}}\n",
                    "x".repeat(20)
                )
            })
            .collect();
        daemon.post_ok(&body, 10_000);
    }
    let burst_ended = Instant::now();
    let text = daemon.metrics();
    let remembered = metric_value(&text, "backlogd_remembered_event_ids").unwrap_or(-1.0);
    let after = rss();
    eprintln!(
        "{remembered} ids remembered; RSS {} -> {} MiB: {:.0} bytes per id",
        before >> 20,
        after >> 20,
        (after.saturating_sub(before)) as f64 / IDS as f64
    );
    assert_eq!(remembered, IDS as f64);
    // 1.5 windows (a bucket is half a window, dropped a window after its end) plus a tick, and
    // then some for a loaded machine.
    let started = Instant::now();
    loop {
        let remembered = daemon.metric("backlogd_remembered_event_ids");
        if remembered == Some(0.0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{remembered:?} ids still remembered {:?} after the last event (window 5 s)",
            burst_ended.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "all forgotten {:?} after the last event",
        burst_ended.elapsed()
    );
    daemon.stop();
}
