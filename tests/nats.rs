//! The NATS JetStream source against a real `nats-server -js` on loopback (Debian package
//! `nats-server`; `scripts/test` installs it) and the real daemon binary, published to with the
//! real `backlogd send --nats` / `simulate --nats`.
//!
//! Each test starts its own server on a free port with a temporary store and kills it at the end,
//! pass or fail. The reference for "nothing lost, nothing counted twice" is a daemon fed the same
//! events over HTTP: the state series of both must be identical.

#[allow(dead_code)]
#[path = "it/harness.rs"]
mod harness;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Daemon, SeriesKey, samples};

/// How long a server may take to listen, and the daemon to apply what the stream holds.
const PATIENCE: Duration = Duration::from_secs(30);

/// A `nats-server -js` on 127.0.0.1 with its store in a temporary directory; killed on drop.
struct NatsServer {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl NatsServer {
    fn start() -> NatsServer {
        NatsServer::start_on(harness::free_port())
    }

    fn start_on(port: u16) -> NatsServer {
        let store = tempfile::tempdir().unwrap();
        let binary = ["nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|candidate| {
                Command::new(candidate)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success())
            })
            .expect("nats-server not found: run ./scripts/test, which installs it (apt-get install nats-server)");
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let server = NatsServer {
            child,
            port,
            _store: store,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < PATIENCE,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment of a daemon consuming `CASES` (subjects `cases.>`) with durable `durable`.
fn nats_env<'a>(
    server: &'a str,
    durable: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("BACKLOGD__SOURCES__NATS__URL", server),
        ("BACKLOGD__SOURCES__NATS__STREAM", "CASES"),
        ("BACKLOGD__SOURCES__NATS__SUBJECTS", "cases.>"),
        ("BACKLOGD__SOURCES__NATS__DURABLE", durable),
        ("BACKLOGD__SOURCES__NATS__CREATE_STREAM", "true"),
    ];
    env.extend_from_slice(extra);
    env
}

/// The arguments of `backlogd simulate` for a deterministic history of a few thousand events
/// (the `steady` scenario, scaled down).
const SIMULATE: &[&str] = &[
    "simulate",
    "--scenario",
    "steady",
    "--seed",
    "7",
    "--from",
    "2026-08-01",
    "--to",
    "2026-11-01",
    "--scale",
    "0.2",
];

/// The `SIMULATE` history as a file, and its number of events.
fn events(dir: &Path) -> (PathBuf, usize) {
    let path = dir.join("events.ndjson");
    let out = harness::backlogd(&[SIMULATE, &["--out", path.to_str().unwrap()]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .count();
    assert!(count > 2000, "{count} events");
    (path, count)
}

/// `backlogd send --nats URL --subject cases.test FILE`: every event stored by JetStream.
fn publish(server: &NatsServer, file: &Path, expected: usize) {
    let out = harness::backlogd(&[
        "send",
        "--nats",
        &server.url(),
        "--subject",
        "cases.test",
        file.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "send --nats: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), format!("published {expected}, duplicates 0"));
}

/// The reference: a daemon fed `file` over HTTP.
fn reference(dir: &Path, file: &Path, count: usize) -> Daemon {
    let daemon = Daemon::start(&dir.join("reference"), &[]);
    let out = harness::backlogd(&["send", "--url", &daemon.url(), file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().last(),
        Some(format!("accepted {count}, duplicates 0, rejected 0").as_str())
    );
    daemon
}

/// The series that are state (not the process' own instruments, not what moves with the clock).
fn state_series(text: &str) -> Vec<(SeriesKey, String)> {
    const NOT_STATE: &[&str] = &[
        "process_",
        "backlogd_start_time_seconds",
        "backlogd_events_",
        "backlogd_source_",
        "backlogd_ingest_",
        "backlogd_store_commit_duration_seconds",
        // The disk, not the state: other writers move it.
        "backlogd_store_free_bytes",
        "backlogd_store_filesystem_size_bytes",
        "backlogd_case_max_overdue_seconds",
        "backlogd_backlog_projected_clearance_timestamp_seconds",
        "backlogd_capacity_presence_seconds",
        "backlogd_decisions_per_employee_week",
    ];
    samples(text)
        .into_iter()
        .filter(|((name, _), _)| !NOT_STATE.iter().any(|prefix| name.starts_with(prefix)))
        .collect()
}

fn differences(a: &[(SeriesKey, String)], b: &[(SeriesKey, String)]) -> Vec<String> {
    a.iter()
        .filter(|sample| !b.contains(sample))
        .map(|(key, value)| format!("  left:  {key:?} {value}"))
        .chain(
            b.iter()
                .filter(|sample| !a.contains(sample))
                .map(|(key, value)| format!("  right: {key:?} {value}")),
        )
        .collect()
}

/// Waits (bounded) until `daemon`'s state series equal `expected`'s.
fn await_same_state(daemon: &Daemon, expected: &Daemon, what: &str) {
    let started = Instant::now();
    loop {
        let want = state_series(&expected.metrics());
        let got = state_series(&daemon.metrics());
        let diff = differences(&got, &want);
        if diff.is_empty() {
            assert!(want.len() > 100, "{what}: only {} state series", want.len());
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{what}: the state differs ({} series):\n{}\nstderr:\n{}",
            diff.len(),
            diff.iter().take(20).cloned().collect::<Vec<_>>().join("\n"),
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn received_from_nats(daemon: &Daemon) -> f64 {
    daemon
        .metric(r#"backlogd_events_received_total{source="nats"}"#)
        .unwrap_or(0.0)
}

/// Events published while the daemon is down are all applied after it starts; a `kill -9` in the
/// middle of consuming them neither loses nor double-counts anything: the state equals that of a
/// daemon fed the same events over HTTP.
#[test]
fn published_while_down_then_killed_mid_stream_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start();
    let url = server.url();
    let (file, count) = events(dir.path());
    let store = dir.path().join("store");
    // The first start creates the stream; then the daemon is down while everything is published.
    let daemon = Daemon::start(&store, &nats_env(&url, "backlogd", &[]));
    daemon.await_metric("backlogd_source_connected", 1.0);
    daemon.stop();
    publish(&server, &file, count);

    // One message in flight at a time, so that the kill lands mid-stream.
    let slow = nats_env(
        &url,
        "backlogd",
        &[("BACKLOGD__SOURCES__NATS__MAX_IN_FLIGHT", "1")],
    );
    let daemon = Daemon::start(&store, &slow);
    let started = Instant::now();
    let before_kill = loop {
        let received = received_from_nats(&daemon);
        if received >= (count / 4) as f64 {
            break received;
        }
        assert!(started.elapsed() < PATIENCE, "only {received} received");
        std::thread::sleep(Duration::from_millis(5));
    };
    daemon.kill();
    assert!(
        before_kill < count as f64,
        "the kill came after all {count} events were consumed; the test proves nothing"
    );

    let daemon = Daemon::start(&store, &nats_env(&url, "backlogd", &[]));
    let http = reference(dir.path(), &file, count);
    await_same_state(&daemon, &http, "after kill -9 and restart");
    // The restarted daemon resumed after the killed one's committed position: it received only
    // what that one had not committed (with one message in flight, at most one event of those
    // counted before the kill was not yet committed), not the stream from its start.
    let after = received_from_nats(&daemon);
    assert!(
        after >= 1.0 && after <= count as f64 - before_kill + 1.0,
        "received {before_kill} before the kill and {after} after, of {count}"
    );
    assert_eq!(daemon.metric("backlogd_events_duplicate_total"), Some(0.0));
    daemon.await_metric("backlogd_source_lag_messages", 0.0);
}

/// An HA pair: two daemons with their own durables on one stream show identical state; with one
/// killed, the other still serves it and keeps consuming. (Published with `simulate --nats`; a
/// second publication of the same file is dropped by JetStream as duplicates by `Nats-Msg-Id`.)
#[test]
fn an_ha_pair_shows_identical_state_and_survives_losing_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start();
    let url = server.url();
    let (file, count) = events(dir.path());
    let a = Daemon::start(&dir.path().join("a"), &nats_env(&url, "backlogd-a", &[]));
    let b = Daemon::start(&dir.path().join("b"), &nats_env(&url, "backlogd-b", &[]));
    a.await_metric("backlogd_source_connected", 1.0);
    b.await_metric("backlogd_source_connected", 1.0);
    // Published by the simulator itself this time: the same events as the file.
    let url_arg = server.url();
    let out =
        harness::backlogd(&[SIMULATE, &["--nats", &url_arg, "--subject", "cases.sim"]].concat());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("published {count}, duplicates 0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let http = reference(dir.path(), &file, count);
    await_same_state(&a, &http, "instance a");
    await_same_state(&b, &http, "instance b");
    assert_eq!(
        differences(&state_series(&a.metrics()), &state_series(&b.metrics())),
        Vec::<String>::new()
    );

    let again = harness::backlogd(&[
        "send",
        "--nats",
        &url_arg,
        "--subject",
        "cases.test",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        format!("published 0, duplicates {count}")
    );
    a.kill();
    await_same_state(&b, &http, "b after a was killed");
    // Still consuming: a new event reaches the survivor (and the reference over HTTP).
    let extra = dir.path().join("extra.ndjson");
    std::fs::write(
        &extra,
        "{\"id\":\"ha-extra-1\",\"type\":\"case.registered\",\"time\":\"2026-11-02T09:00:00+01:00\",\"data\":{\"case\":\"HA-1\",\"track\":\"asylum\"}}\n",
    )
    .unwrap();
    publish(&server, &extra, 1);
    http.post_ok(&std::fs::read_to_string(&extra).unwrap(), 1);
    await_same_state(&b, &http, "b after one more event");
}

/// A rejected event of a message is acknowledged, counted with its reason, and lands on the
/// dead-letter subject with its raw JSON; the valid event of the same message is applied.
#[test]
fn a_rejected_event_lands_on_the_dead_letter_subject() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start();
    let url = server.url();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &nats_env(
            &url,
            "backlogd",
            &[("BACKLOGD__SOURCES__NATS__DEAD_LETTER_SUBJECT", "dead.cases")],
        ),
    );
    daemon.await_metric("backlogd_source_connected", 1.0);
    let good = r#"{"id":"dl-good","type":"case.registered","time":"2026-11-02T09:00:00+01:00","data":{"case":"DL-1","track":"asylum"}}"#;
    let bad = r#"{"id":"dl-bad","type":"case.registered","time":"2026-11-02T09:00:00+01:00","data":{"case":"DL-2","track":"nope"}}"#;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dead = runtime.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let mut dead = client.subscribe("dead.cases").await.unwrap();
        client.flush().await.unwrap();
        // One message, an NDJSON batch of two events.
        let context = async_nats::jetstream::new(client.clone());
        context
            .publish("cases.batch", format!("{good}\n{bad}\n").into())
            .await
            .unwrap()
            .await
            .unwrap();
        use futures_util::StreamExt;
        tokio::time::timeout(PATIENCE, dead.next())
            .await
            .expect("a dead letter within the patience")
            .expect("the subscription is open")
    });
    assert_eq!(std::str::from_utf8(&dead.payload).unwrap(), bad);
    let headers = dead.headers.expect("dead letters carry headers");
    assert_eq!(
        headers.get("Backlogd-Reason").map(|v| v.as_str()),
        Some("unknown_track")
    );
    daemon.await_metric(
        r#"backlogd_events_rejected_total{reason="unknown_track"}"#,
        1.0,
    );
    daemon.await_metric(r#"backlogd_events_received_total{source="nats"}"#, 2.0);
    daemon.await_metric(
        r#"backlogd_events_applied_total{event_type="case.registered"}"#,
        1.0,
    );
    // Acknowledged: nothing is left pending for the consumer, and the event is logged with its id.
    daemon.await_metric("backlogd_source_lag_messages", 0.0);
    assert!(daemon.stderr().contains("dl-bad"), "{}", daemon.stderr());
}

/// Without a reachable server the daemon still starts, answers /readyz and ingests over HTTP, and
/// says so in `backlogd_source_connected` and its log; once the server is up it connects (retried
/// with backoff) and consumes.
#[test]
fn an_unreachable_server_is_retried_while_http_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let port = harness::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let daemon = Daemon::start(&dir.path().join("store"), &nats_env(&url, "backlogd", &[]));
    assert_eq!(daemon.get("/readyz").status, 200);
    assert_eq!(daemon.metric("backlogd_source_connected"), Some(0.0));
    daemon.post_ok(
        r#"{"id":"h-1","type":"case.registered","time":"2026-11-02T09:00:00+01:00","data":{"case":"H-1","track":"asylum"}}"#,
        1,
    );
    daemon.await_stderr("NATS source interrupted; retrying");
    let server = NatsServer::start_on(port);
    // The next retry is at most the backoff's cap (10 s) away.
    let started = Instant::now();
    while daemon.metric("backlogd_source_connected") != Some(1.0) {
        assert!(
            started.elapsed() < PATIENCE,
            "not connected:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let file = dir.path().join("one.ndjson");
    std::fs::write(
        &file,
        "{\"id\":\"n-1\",\"type\":\"case.registered\",\"time\":\"2026-11-02T09:00:00+01:00\",\"data\":{\"case\":\"N-1\",\"track\":\"asylum\"}}\n",
    )
    .unwrap();
    publish(&server, &file, 1);
    daemon.await_metric(r#"backlogd_events_received_total{source="nats"}"#, 1.0);
    daemon.await_metric(r#"backlogd_events_received_total{source="http"}"#, 1.0);
}

/// The families that add up over partitioned instances (`sum without (instance)`, docs/scaling.md).
const ADDITIVE: &[&str] = &[
    "backlogd_cases_",
    "backlogd_case_transfers_total",
    "backlogd_case_lead_time_seconds",
    "backlogd_deadline_extensions_total",
    "backlogd_decisions_benefit_of_doubt_total",
    "backlogd_decisions_by_inexperienced_total",
    "backlogd_decisions_overdue_total",
    "backlogd_decisions_without_investigation_total",
    "backlogd_hearings_total",
    "backlogd_inflow_rolling",
    "backlogd_outflow_rolling",
    "backlogd_penalty_exposure_euros",
    "backlogd_penalty_incurred_euros_total",
    "backlogd_quality_audits_total",
    "backlogd_employee_open_cases",
    "backlogd_employees_assigned_open_cases",
];

/// The additive series of an exposition, summed per series over `texts`.
fn additive_sums(texts: &[String]) -> std::collections::BTreeMap<SeriesKey, f64> {
    let mut sums = std::collections::BTreeMap::new();
    for text in texts {
        for ((name, labels), value) in samples(text) {
            if ADDITIVE.iter().any(|prefix| name.starts_with(prefix)) {
                *sums.entry((name, labels)).or_insert(0.0) += harness::parse_value(&value);
            }
        }
    }
    sums
}

/// Two instances owning partition 0 and 1 of 2 on one stream: their additive families summed equal
/// those of one instance that owns everything, and the employees every instance reads are the same.
#[test]
fn two_partitioned_instances_sum_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start();
    let url = server.url();
    let (file, count) = events(dir.path());
    let whole = Daemon::start(&dir.path().join("whole"), &nats_env(&url, "whole", &[]));
    let partitioned = |owned: &'static str| {
        let env = nats_env(
            &url,
            if owned == "0" { "part-0" } else { "part-1" },
            &[
                ("BACKLOGD__SOURCES__NATS__PARTITIONS", "2"),
                ("BACKLOGD__SOURCES__NATS__OWNED_PARTITIONS", owned),
            ],
        );
        Daemon::start(&dir.path().join(format!("part-{owned}")), &env)
    };
    let p0 = partitioned("0");
    let p1 = partitioned("1");
    for daemon in [&whole, &p0, &p1] {
        daemon.await_metric("backlogd_source_connected", 1.0);
    }
    publish(&server, &file, count);
    let http = reference(dir.path(), &file, count);
    await_same_state(&whole, &http, "the whole instance");
    let started = Instant::now();
    loop {
        let expected = additive_sums(&[whole.metrics()]);
        let summed = additive_sums(&[p0.metrics(), p1.metrics()]);
        let mismatched: Vec<String> = expected
            .iter()
            .filter(|(key, value)| {
                summed
                    .get(*key)
                    .is_none_or(|sum| (sum - *value).abs() > 1e-6 * value.abs().max(1.0))
            })
            .map(|(key, value)| format!("  {key:?}: one {value}, summed {:?}", summed.get(key)))
            .collect();
        if mismatched.is_empty() {
            assert!(expected.len() > 50, "{} additive series", expected.len());
            // Each partition holds a real share of the cases, not all or nothing.
            let open = |d: &Daemon| {
                samples(&d.metrics())
                    .into_iter()
                    .filter(|((name, _), _)| name == "backlogd_cases_known")
                    .map(|(_, value)| harness::parse_value(&value))
                    .sum::<f64>()
            };
            let (a, b) = (open(&p0), open(&p1));
            assert!(a > 0.0 && b > 0.0, "cases known: {a} and {b}");
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "partitioned sums differ from one instance ({}):\n{}",
            mismatched.len(),
            mismatched
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Employees are read by every instance: the same on each.
    for name in ["backlogd_employees", "backlogd_threshold"] {
        let series = |d: &Daemon| {
            samples(&d.metrics())
                .into_iter()
                .filter(|((n, _), _)| n == name)
                .collect::<Vec<_>>()
        };
        assert_eq!(series(&p0), series(&whole), "{name}");
        assert_eq!(series(&p1), series(&whole), "{name}");
    }
}

/// `n` one-event messages registering cases `{prefix}-1..n` on the stream (JetStream acks each).
fn publish_registrations(runtime: &tokio::runtime::Runtime, url: &str, prefix: &str, n: usize) {
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let context = async_nats::jetstream::new(client);
        for i in 1..=n {
            let line = format!(
                r#"{{"id":"{prefix}-{i}","type":"case.registered","time":"2026-11-02T09:00:00+01:00","data":{{"case":"{prefix}-{i}","track":"asylum"}}}}"#
            );
            context
                .publish("cases.missed", line.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
}

/// (Re)creates `CASES` keeping at most `max` messages (limits retention, oldest dropped).
fn create_limited_stream(runtime: &tokio::runtime::Runtime, url: &str, max: i64, recreate: bool) {
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let context = async_nats::jetstream::new(client);
        if recreate {
            context.delete_stream("CASES").await.unwrap();
        }
        context
            .create_stream(async_nats::jetstream::stream::Config {
                name: "CASES".to_owned(),
                subjects: vec!["cases.>".to_owned()],
                max_messages: max,
                ..Default::default()
            })
            .await
            .unwrap();
    });
}

/// Messages the stream dropped (its limits) before the daemon read them are counted, once, in
/// `backlogd_source_messages_missed_total`; a stream recreated below the logged position shows in
/// `backlogd_source_stream_behind`. Both used to pass silently.
#[test]
fn messages_the_stream_dropped_and_a_recreated_stream_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start();
    let url = server.url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    create_limited_stream(&runtime, &url, 10, false);
    let store = dir.path().join("store");
    let env = nats_env(&url, "backlogd", &[]);
    let daemon = Daemon::start(&store, &env);
    daemon.await_metric("backlogd_source_connected", 1.0);
    publish_registrations(&runtime, &url, "a", 5);
    daemon.await_metric(r#"backlogd_cases_registered_total{track="asylum"}"#, 5.0);
    daemon.await_metric("backlogd_source_messages_missed_total", 0.0);
    daemon.stop();

    // While the daemon is down, 20 more: the stream keeps 16..25, so 6..15 are gone unread.
    publish_registrations(&runtime, &url, "b", 20);
    let daemon = Daemon::start(&store, &env);
    daemon.await_metric(r#"backlogd_cases_registered_total{track="asylum"}"#, 15.0);
    daemon.await_metric("backlogd_source_messages_missed_total", 10.0);
    daemon.await_metric("backlogd_source_stream_behind", 0.0);
    assert!(
        daemon
            .stderr()
            .contains("the stream no longer holds messages after the logged position"),
        "{}",
        daemon.stderr()
    );
    daemon.stop();

    // Recreated: its sequences start again at 1, below the logged 25.
    create_limited_stream(&runtime, &url, 10, true);
    publish_registrations(&runtime, &url, "c", 2);
    let daemon = Daemon::start(&store, &env);
    daemon.await_metric("backlogd_source_stream_behind", 1.0);
    assert!(
        daemon.stderr().contains("purged or recreated"),
        "{}",
        daemon.stderr()
    );
    assert_eq!(
        daemon.metric("backlogd_source_messages_missed_total"),
        Some(0.0),
        "a new process counts from zero, and a recreated stream is not counted as missed"
    );
    assert_eq!(
        daemon.metric(r#"backlogd_cases_registered_total{track="asylum"}"#),
        Some(15.0)
    );
    daemon.stop();
}

/// A store seeded by `backfill --store` from the events the stream also holds (issue 20, defect 4):
/// the source used to start at sequence 1, and what the store held was applied again (the ids
/// older than `ingest.dedup_window` forgotten, audits and hearings counted twice). Now such a store
/// without a position is refused by name; `--stream-position` or `sources.nats.start_after` says
/// where its events end, and the daemon then holds exactly the backfilled state and consumes what
/// comes after.
#[test]
fn a_backfilled_store_resumes_after_its_stream_position_and_never_applies_it_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start();
    let url = server.url();
    let (file, count) = events(dir.path());
    // The stream exists once a daemon with the source has connected (create_stream).
    let creator = Daemon::start(&dir.path().join("creator"), &nats_env(&url, "creator", &[]));
    creator.await_metric("backlogd_source_connected", 1.0);
    creator.stop();
    publish(&server, &file, count);

    let config = harness::shipped_config();
    let seed = |name: &str, position: Option<String>| {
        let store = dir.path().join(name);
        let mut args = vec![
            "backfill".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
            "--store".to_owned(),
            store.display().to_string(),
        ];
        if let Some(position) = position {
            args.extend(["--stream-position".to_owned(), position]);
        }
        args.push(file.display().to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = harness::backlogd(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        store
    };

    // Without a position: refused, naming the key and the option.
    let unknown = seed("unknown", None);
    let (code, stderr) =
        harness::run_expecting_exit(&config, &unknown, &nats_env(&url, "unknown", &[]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("the store holds events but no position in the NATS stream \"CASES\"")
            && stderr.contains("sources.nats.start_after")
            && stderr.contains("--stream-position CASES:SEQUENCE"),
        "{stderr}"
    );

    // The reference: the backfilled store, no source.
    let reference = Daemon::start(&seed("reference", None), &[]);
    let last = format!("CASES:{count}");
    for (name, durable, store, extra) in [
        (
            "--stream-position",
            "positioned",
            seed("positioned", Some(last)),
            vec![],
        ),
        (
            "sources.nats.start_after",
            "start_after",
            unknown.clone(),
            vec![("BACKLOGD__SOURCES__NATS__START_AFTER", count.to_string())],
        ),
    ] {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let daemon = Daemon::start(&store, &nats_env(&url, durable, &extra));
        daemon.await_metric("backlogd_source_connected", 1.0);
        daemon.await_metric("backlogd_source_lag_messages", 0.0);
        await_same_state(&daemon, &reference, name);
        assert_eq!(
            received_from_nats(&daemon),
            0.0,
            "{name}: nothing read twice"
        );
        daemon.stop();
    }

    // What the stream receives afterwards is consumed, once, by a restarted daemon.
    let more = dir.path().join("more.ndjson");
    std::fs::write(
        &more,
        "{\"id\":\"after-1\",\"type\":\"case.registered\",\"time\":\"2026-11-02T09:00:00+01:00\",\"data\":{\"case\":\"AFTER-1\",\"track\":\"asylum\"}}\n",
    )
    .unwrap();
    publish(&server, &more, 1);
    let daemon = Daemon::start(&unknown, &nats_env(&url, "start_after", &[]));
    daemon.await_metric(r#"backlogd_events_received_total{source="nats"}"#, 1.0);
    daemon.await_metric("backlogd_source_lag_messages", 0.0);
    assert_eq!(received_from_nats(&daemon), 1.0);
}
