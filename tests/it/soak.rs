//! Bounded soak (docs/reliability.md): `SOAK_SECONDS` (20 by default; `scripts/soak` runs 600) of
//! mixed load (decisions and reopenings of a fixed pool of cases by two senders, with scrapes and
//! drill-downs in between) against a daemon whose remembered ids expire (`store.dedup_window`) and
//! whose log is trimmed by snapshots. After warm-up its resident memory stays flat.

use std::time::{Duration, Instant};

use crate::harness::{Daemon, request};

const CASES: usize = 2_000;
const SENDERS: usize = 2;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

fn event(id: &str, kind: &str, data: serde_json::Value) -> String {
    serde_json::json!({"id": id, "type": kind, "time": jiff::Timestamp::now().to_string(), "data": data})
        .to_string()
        + "\n"
}

#[test]
fn memory_stays_flat_under_mixed_load() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[
            ("BACKLOGD__STORE__DEDUP_WINDOW", "PT1S"),
            ("BACKLOGD__STORE__SNAPSHOT_INTERVAL", "PT5S"),
            ("BACKLOGD__STORE__SEGMENT_BYTES", "1048576"),
        ],
    );
    let register: String = (0..CASES)
        .map(|c| {
            event(
                &format!("reg-{c}"),
                "case.registered",
                serde_json::json!({"case": format!("soak-{c}"), "track": "asylum", "location": format!("loc-{}", c % 7)}),
            )
        })
        .collect();
    let staff = event(
        "soak-staff",
        "employee.joined",
        serde_json::json!({"employee": "soak-decider", "role": "mentor", "experienced": true}),
    );
    daemon.post_ok(&(staff + &register), CASES as u64 + 1);
    let addr = daemon.addr;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            std::thread::spawn(move || {
                let mut round = 0usize;
                let mut events = 0usize;
                while Instant::now() < deadline {
                    // Each sender owns every SENDERS-th case: decide it, then reopen it.
                    let kind = if round.is_multiple_of(2) { "case.decided" } else { "case.reopened" };
                    let body: String = (sender..CASES)
                        .step_by(SENDERS)
                        .map(|c| {
                            let data = if kind == "case.decided" {
                                serde_json::json!({"case": format!("soak-{c}"), "outcome": "granted", "decided_by": "soak-decider"})
                            } else {
                                serde_json::json!({"case": format!("soak-{c}")})
                            };
                            event(&format!("s{sender}-r{round}-c{c}"), kind, data)
                        })
                        .collect();
                    let response = request(
                        addr,
                        "POST",
                        "/v1/events",
                        &[("Content-Type", "application/x-ndjson")],
                        body.as_bytes(),
                    )
                    .expect("the daemon answers");
                    assert_eq!(response.status, 200, "{}", response.text());
                    events += CASES / SENDERS;
                    round += 1;
                }
                events
            })
        })
        .collect();
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut scrapes = 0;
    let mut remembered = 0.0;
    while Instant::now() < deadline {
        let metrics = daemon.get("/metrics");
        assert_eq!(metrics.status, 200);
        remembered = crate::harness::metric_value(&metrics.text(), "backlogd_remembered_event_ids")
            .unwrap_or(f64::NAN);
        let overdue = daemon.get("/v1/cases/overdue?limit=10");
        assert_eq!(overdue.status, 200);
        scrapes += 1;
        samples.push((started.elapsed(), rss_bytes(daemon.pid())));
        std::thread::sleep(Duration::from_millis(250));
    }
    let events: usize = senders.into_iter().map(|s| s.join().unwrap()).sum();
    // Warm-up: the first quarter (id tables and buffers reach their working size).
    let warm: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| t.as_secs_f64() >= seconds as f64 / 4.0)
        .map(|&(_, rss)| rss)
        .collect();
    let half = warm.len() / 2;
    let first = warm[..half].iter().max().copied().unwrap_or(0);
    let last = warm[half..].iter().max().copied().unwrap_or(0);
    eprintln!(
        "soak: {seconds} s, {events} events by {SENDERS} senders over {CASES} cases, {scrapes} scrapes, {remembered} ids remembered at the end; RSS peak after warm-up {} MiB in the first half, {} MiB in the second",
        first >> 20,
        last >> 20
    );
    assert!(
        last <= first + first / 5 + (8 << 20),
        "RSS grew after warm-up: {} MiB, then {} MiB",
        first >> 20,
        last >> 20
    );
    daemon.stop();
}
