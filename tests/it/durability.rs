//! docs/reliability.md: an event acknowledged with 2xx is never lost, not even on `kill -9`, and dedup survives
//! with it. A sender posts batches as fast as it can while the daemon is SIGKILLed under it.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{Daemon, request};

const EVENTS_PER_BATCH: usize = 20;
/// Concurrent senders, so that several requests share a commit group when the kill comes.
const SENDERS: usize = 3;
const MAX_BATCHES_PER_SENDER: usize = 2_000;
const MAX_SENDING: Duration = Duration::from_secs(3);
/// Acknowledged batches (over all senders) to wait for before the kill.
const ACKED_BEFORE_KILL: usize = 30;

/// A batch is named by (sender, sequence number); its event and case ids are unique.
type BatchName = (usize, usize);

fn batch_body((sender, sequence): BatchName) -> String {
    (0..EVENTS_PER_BATCH)
        .map(|n| {
            serde_json::json!({
                "id": format!("crash-{sender}-{sequence}-{n}"),
                "type": "case.registered",
                "time": "2026-03-02T09:00:00+01:00",
                "data": {
                    "case": format!("crash-case-{sender}-{sequence}-{n}"),
                    "track": "asylum",
                    "location": "Ter Apel",
                },
            })
            .to_string()
                + "\n"
        })
        .collect()
}

/// What one sender saw: the batches answered 200, how many it attempted, and whether it stopped
/// because the daemon went away (rather than by running out of time or batches).
struct Sent {
    acknowledged: Vec<BatchName>,
    attempted: usize,
    stopped_by_failure: bool,
}

/// Posts batches one after the other until a request fails or the time or batch budget is spent.
fn send_until_failure(
    addr: std::net::SocketAddr,
    sender: usize,
    acked: mpsc::Sender<BatchName>,
) -> Sent {
    let started = Instant::now();
    let mut sent = Sent {
        acknowledged: Vec::new(),
        attempted: 0,
        stopped_by_failure: false,
    };
    for sequence in 0..MAX_BATCHES_PER_SENDER {
        if started.elapsed() > MAX_SENDING {
            break;
        }
        sent.attempted += 1;
        let name = (sender, sequence);
        let headers = [("Content-Type", "application/x-ndjson")];
        match request(
            addr,
            "POST",
            "/v1/events",
            &headers,
            batch_body(name).as_bytes(),
        ) {
            Ok(response) if response.status == 200 => {
                sent.acknowledged.push(name);
                let _ = acked.send(name);
            }
            Ok(response) => {
                // Only "unavailable" is an acceptable answer while the daemon dies.
                assert!(
                    response.status >= 500,
                    "batch {name:?} answered {}: {}",
                    response.status,
                    response.text()
                );
                sent.stopped_by_failure = true;
                break;
            }
            Err(_) => {
                sent.stopped_by_failure = true;
                break;
            }
        }
    }
    sent
}

#[test]
fn acknowledged_events_survive_sigkill_and_stay_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let daemon = Daemon::start(&store, &[]);
    let addr = daemon.addr;

    let (acked_tx, acked_rx) = mpsc::channel();
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let acked = acked_tx.clone();
            std::thread::spawn(move || send_until_failure(addr, sender, acked))
        })
        .collect();
    drop(acked_tx);
    for _ in 0..ACKED_BEFORE_KILL {
        acked_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("the senders got too few acknowledgements before the kill"));
    }
    daemon.kill();
    let sent: Vec<Sent> = senders
        .into_iter()
        .map(|sender| sender.join().expect("a sender thread"))
        .collect();
    for (sender, sent) in sent.iter().enumerate() {
        assert!(
            sent.stopped_by_failure,
            "sender {sender} finished ({} batches) before the kill: the kill was not mid-stream",
            sent.attempted
        );
    }
    let acknowledged: Vec<BatchName> = sent
        .iter()
        .flat_map(|s| s.acknowledged.iter().copied())
        .collect();
    let attempted: usize = sent.iter().map(|s| s.attempted).sum();
    let acknowledged_events = (acknowledged.len() * EVENTS_PER_BATCH) as f64;

    let daemon = Daemon::start(&store, &[]);
    let registered = daemon
        .metric(r#"backlogd_cases_registered_total{track="asylum"}"#)
        .expect("backlogd_cases_registered_total is exported");
    assert!(
        registered >= acknowledged_events,
        "{acknowledged_events} registrations were acknowledged, {registered} survived the kill"
    );
    // At most the batches in flight at the kill may have been committed without an answer.
    assert!(
        registered <= (attempted * EVENTS_PER_BATCH) as f64,
        "{registered} registrations after {attempted} attempted batches of {EVENTS_PER_BATCH}"
    );
    let open = r#"backlogd_cases_open{track="asylum",location="Ter Apel"}"#;
    assert_eq!(daemon.metric(open), Some(registered));

    for batch in &acknowledged {
        let (status, answer) = daemon.post("application/x-ndjson", &batch_body(*batch));
        assert_eq!(
            (status, &answer),
            (
                200,
                &serde_json::json!({"accepted": 0, "duplicates": EVENTS_PER_BATCH, "rejected": []})
            ),
            "re-sending acknowledged batch {batch:?} after the kill"
        );
    }
    daemon.stop();
}

/// Endurance (docs/reliability.md): `CRASH_LOOP_CYCLES` cycles (20 by default; `scripts/crash-loop N`
/// runs more) of concurrent senders, a SIGKILL after a pseudo-random number of acknowledgements,
/// and a restart on the same store. After every restart, every event acknowledged in any cycle so
/// far is there (the registered count is at least the acknowledged count, and re-sending this
/// cycle's acknowledged batches finds only duplicates), and nothing that was never sent is.
#[test]
fn crash_loop_never_loses_an_acknowledged_event() {
    let cycles: usize = std::env::var("CRASH_LOOP_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let started = Instant::now();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let (mut acknowledged_events, mut attempted_events) = (0usize, 0usize);
    // Snapshots every second: kills land before, during and after snapshots, and replay stays short.
    let env = [("BACKLOGD__STORE__SNAPSHOT_INTERVAL", "PT1S")];
    let mut daemon = Daemon::start(&store, &env);
    for cycle in 0..cycles {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_after = 1 + (seed >> 33) as usize % 60;
        let addr = daemon.addr;
        let (acked_tx, acked_rx) = mpsc::channel();
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let acked = acked_tx.clone();
                std::thread::spawn(move || {
                    send_until_failure(addr, cycle * SENDERS + sender, acked)
                })
            })
            .collect();
        drop(acked_tx);
        for _ in 0..kill_after {
            if acked_rx.recv_timeout(Duration::from_secs(10)).is_err() {
                break;
            }
        }
        daemon.kill();
        let sent: Vec<Sent> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        let acknowledged: Vec<BatchName> = sent
            .iter()
            .flat_map(|s| s.acknowledged.iter().copied())
            .collect();
        acknowledged_events += acknowledged.len() * EVENTS_PER_BATCH;
        attempted_events += sent.iter().map(|s| s.attempted).sum::<usize>() * EVENTS_PER_BATCH;

        daemon = Daemon::start(&store, &env);
        let registered = daemon
            .metric(r#"backlogd_cases_registered_total{track="asylum"}"#)
            .unwrap_or(0.0) as usize;
        assert!(
            (acknowledged_events..=attempted_events).contains(&registered),
            "cycle {cycle}: {registered} registered, {acknowledged_events} acknowledged, {attempted_events} attempted"
        );
        for batch in &acknowledged {
            let (status, answer) = daemon.post("application/x-ndjson", &batch_body(*batch));
            assert_eq!(
                (status, answer["duplicates"].as_u64()),
                (200, Some(EVENTS_PER_BATCH as u64)),
                "cycle {cycle}: re-sending acknowledged batch {batch:?}: {answer}"
            );
        }
    }
    eprintln!(
        "crash loop: {cycles} cycles of SIGKILL under {SENDERS} concurrent senders, {acknowledged_events} events acknowledged, none lost, in {:?}",
        started.elapsed()
    );
    daemon.stop();
}

/// How many log records the daemon replayed at its last start (from its "recovery complete" line).
fn replayed_at_start(daemon: &Daemon) -> u64 {
    // stderr is read on another thread: the line may trail /readyz a little.
    let started = Instant::now();
    let stderr = loop {
        let stderr = daemon.stderr();
        if stderr.contains("recovery complete") || started.elapsed() > Duration::from_secs(10) {
            break stderr;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let line = stderr
        .lines()
        .find(|line| line.contains("recovery complete"))
        .unwrap_or_else(|| panic!("no recovery line in:\n{stderr}"));
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("replayed="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no replayed= in {line:?}"))
}

/// Replay after a crash is bounded by work, not only by time: with a snapshot interval of an hour
/// and `store.snapshot_every_events` at 1,000, a `kill -9` after 10,000 events replays about the
/// last thousand, not all ten (before the fix: all ten).
#[test]
fn replay_after_a_kill_is_bounded_by_snapshot_every_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let settings = [
        ("BACKLOGD__STORE__SNAPSHOT_INTERVAL", "PT1H"),
        ("BACKLOGD__STORE__SNAPSHOT_EVERY_EVENTS", "1000"),
    ];
    let daemon = Daemon::start(&store, &settings);
    for sequence in 0..50 {
        let body: String = (0..200)
            .map(|i| {
                let n = sequence * 200 + i;
                format!(
                    r#"{{"specversion":"1.0","id":"bound-{n}","type":"case.registered","source":"t","time":"2026-01-01T00:00:00Z","data":{{"case":"c{n}","track":"asylum"}}}}"#
                ) + "\n"
            })
            .collect();
        daemon.post_ok(&body, 200);
    }
    // The snapshot is written on a background thread; give the last one time to become durable.
    std::thread::sleep(Duration::from_millis(500));
    daemon.kill();
    let daemon = Daemon::start(&store, &settings);
    let replayed = replayed_at_start(&daemon);
    assert!(
        replayed <= 1_200,
        "replayed {replayed} of 10,000 logged events after the kill"
    );
    assert_eq!(
        daemon.metric(r#"backlogd_cases_registered_total{track="asylum"}"#),
        Some(10_000.0),
        "every acknowledged event is back"
    );
    daemon.stop();
}
