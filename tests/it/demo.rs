//! `backlogd demo`: seeds a temporary store with the taskforce history (daily history included),
//! keeps posting live events, and removes the store when stopped.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BINARY, metric_value, request};

fn scrape(addr: SocketAddr) -> Option<String> {
    let response = request(addr, "GET", "/metrics", &[], b"").ok()?;
    (response.status == 200).then(|| response.text())
}

#[test]
fn demo_loads_history_then_keeps_emitting_live_events() {
    let port = crate::harness::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Command::new(BINARY)
        .args(["demo", "--listen", &addr.to_string(), "--scale", "0.05"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let registered = |text: &str| {
        metric_value(text, "backlogd_cases_registered_total{track=\"asylum\"}").unwrap_or(0.0)
    };
    // History first (thousands of cases), then live registrations on top, visible a second later.
    let started = Instant::now();
    let mut first = None;
    let grown = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the demo did not load and grow"
        );
        if let Some(text) = scrape(addr) {
            let now = registered(&text);
            match first {
                None if now > 500.0 => first = Some(now),
                Some(before) if now > before => break (before, now, text),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (_, _, text) = grown;
    // The history's story is there: audits that failed the norm.
    assert!(
        metric_value(&text, "backlogd_quality_audits_total{result=\"fail\"}").unwrap_or(0.0) > 0.0
    );
    assert_eq!(
        metric_value(
            &text,
            "backlogd_events_rejected_total{reason=\"time_in_future\"}"
        ),
        Some(0.0)
    );
    // The store was seeded with the history's days: the daily history and the report have them.
    let history = request(addr, "GET", "/v1/history", &[], b"").unwrap();
    let days = history.decode::<backlogd::api::History>().days.len();
    assert!(days >= 700, "{days} days of history");
    let report = request(addr, "GET", "/report", &[], b"").unwrap().text();
    assert!(report.matches("<svg").count() >= 5, "charts in the report");
    let pid = child.id();
    let store = std::env::temp_dir().join(format!("backlogd-demo-{pid}"));
    assert!(
        store.exists(),
        "the demo store {} exists while it runs",
        store.display()
    );
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "demo exited with {status}");
    assert!(
        !store.exists(),
        "the demo store {} is removed on exit",
        store.display()
    );
}
