//! `/metrics` as Prometheus and a privacy officer see it: `promtool check metrics` finds nothing to
//! complain about, every family is documented, and no case id of the scenario appears.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Daemon, fixture};
use crate::scenario::post_scenario;

#[test]
fn metrics_pass_promtool_are_documented_and_name_no_case() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    post_scenario(&daemon);
    let text = daemon.metrics();

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && complaints.trim().is_empty(),
        "promtool check metrics ({}):\n{complaints}",
        output.status
    );

    let helped: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# HELP "))
        .filter_map(|rest| rest.split(' ').next())
        .collect();
    let undocumented: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .filter(|family| !helped.contains(family))
        .collect();
    assert!(
        undocumented.is_empty(),
        "families without # HELP: {undocumented:?}"
    );

    let scenario = std::fs::read_to_string(fixture("scenario.ndjson")).unwrap();
    let mut case_ids: Vec<String> = scenario
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|event| event["data"]["case"].as_str().map(str::to_owned))
        .collect();
    case_ids.sort();
    case_ids.dedup();
    assert_eq!(case_ids.len(), 8, "the scenario's case ids: {case_ids:?}");
    let leaked: Vec<&String> = case_ids
        .iter()
        .filter(|case| text.contains(case.as_str()))
        .collect();
    assert!(leaked.is_empty(), "case ids in /metrics: {leaked:?}");
}

/// The overdue gauge moves with time, not only with events: a deadline that passes between two
/// regular ticks shows when it passes. With `time.tick` at 30 s, a case due 2 s after it is
/// registered must be overdue on `/metrics` long before the next regular tick (before the fix it
/// took up to the whole tick).
#[test]
fn a_passing_deadline_shows_without_waiting_for_the_next_tick() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[("BACKLOGD__TIME__TICK", "PT30S")],
    );
    // Let the first regular tick (at start) pass, so that the next one is 30 s away.
    std::thread::sleep(Duration::from_millis(200));
    let now = jiff::Timestamp::now();
    let deadline = now + jiff::SignedDuration::from_secs(2);
    daemon.post_ok(
        &format!(
            r#"{{"specversion":"1.0","id":"due-1","type":"case.registered","source":"t","time":"{now}","data":{{"case":"c1","track":"asylum","location":"north","deadline":"{deadline}"}}}}"#
        ),
        1,
    );
    let series = r#"backlogd_cases_overdue{track="asylum",location="north"}"#;
    assert_eq!(daemon.metric(series), Some(0.0), "not overdue yet");
    let started = Instant::now();
    while daemon.metric(series) != Some(1.0) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still not overdue 13 s after the deadline (time.tick is 30 s)"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let late = jiff::Timestamp::now().duration_since(deadline);
    eprintln!("overdue on /metrics {late:?} after the deadline");
}

/// The samples of an exposition that do not move between two scrapes: without the process' own
/// figures and the HTTP instruments, which count the scrapes themselves.
fn still(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| {
            !line.starts_with("process_")
                && !line.contains("backlogd_http_")
                && !line.starts_with("backlogd_engine_")
        })
        .collect()
}

/// `/metrics` answers gzip when the request accepts it, as Prometheus asks on every scrape (and
/// node_exporter answers), and the plain text otherwise; the two bodies carry the same samples.
#[test]
fn metrics_are_gzipped_when_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    post_scenario(&daemon);
    let plain = daemon.request("GET", "/metrics", &[], b"");
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    let gzipped = daemon.request(
        "GET",
        "/metrics",
        &[("Accept-Encoding", "gzip, deflate")],
        b"",
    );
    assert_eq!(gzipped.status, 200);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_eq!(gzipped.header("vary"), Some("Accept-Encoding"));
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(gzipped.body.as_slice()),
        &mut text,
    )
    .expect("a gzip body");
    let plain_text = String::from_utf8(plain.body.clone()).unwrap();
    assert!(still(&plain_text).len() > 100);
    assert_eq!(still(&text), still(&plain_text));
    assert!(
        gzipped.body.len() * 4 < plain.body.len(),
        "{} bytes gzipped, {} plain",
        gzipped.body.len(),
        plain.body.len()
    );
    // Refused with q=0, or not asked for: plain.
    for refusing in ["gzip;q=0", "identity", "br"] {
        let response = daemon.request("GET", "/metrics", &[("Accept-Encoding", refusing)], b"");
        assert_eq!(response.header("content-encoding"), None, "{refusing}");
        assert!(response.body.starts_with(b"# HELP"), "{refusing}");
    }
}
