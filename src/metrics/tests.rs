//! The golden /metrics: the example events at a fixed clock, rendered, compared with
//! `tests/golden/metrics.prom` (`UPDATE_EXPECT=1 cargo test` rewrites it; review the diff). Any
//! change to a name, label, help text or value shows in review. The same file is linted with
//! `promtool check metrics`, and docs/metrics.md is checked against it.

use std::sync::Arc;

use super::*;
use crate::core::State;
use crate::workforce::{EdgeSettings, WorkforceBuilder};

/// `/metrics` of the shipped configuration's state after `lines`, each applied at `now`.
fn render_after<'a>(lines: impl IntoIterator<Item = &'a str>, now: &str) -> String {
    let config = crate::config::load_from_str(include_str!("../../config/backlogd.toml"))
        .expect("the shipped configuration is valid");
    let settings = crate::config::core_settings(&config);
    let edge = EdgeSettings::from_config(&config).expect("no key file needed");
    let mut state = State::new(settings.clone());
    let now = crate::core::time::to_nanos(now.parse().unwrap()).unwrap();
    for line in lines {
        let event = crate::wire::parse_event(line).expect("test events parse");
        state.apply(&event, now).expect("test events apply");
    }
    let (workforce, _) = WorkforceBuilder::default().build(&state, &edge);
    let view = crate::engine::view_of(
        &state,
        Arc::new(settings),
        Arc::new(workforce),
        Arc::new(edge),
    );
    render(Some(&view), &Telemetry::new().unwrap())
}

fn golden_text() -> String {
    render_after(
        include_str!("../../config/examples/taskforce-autumn.ndjson").lines(),
        "2026-10-10T00:00:00Z",
    )
    .lines()
    // The process' own start time and build vary; their HELP and TYPE stay.
    .filter(|line| {
        !line.contains("process_")
            && !line.contains("backlogd_build_info")
            && !line.starts_with("backlogd_start_time_seconds ")
    })
    .map(|line| format!("{line}\n"))
    .collect()
}

#[test]
fn golden_metrics() {
    expect_test::expect_file!["../../tests/golden/metrics.prom"].assert_eq(&golden_text());
}

#[test]
fn golden_metrics_pass_promtool() {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect(
            "promtool not found: run ./scripts/test, which installs it (Debian package prometheus)",
        );
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(golden_text().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let complaints = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && complaints.trim().is_empty(),
        "promtool: {complaints}"
    );
}

/// A backlog that is not shrinking has an infinite clearance time, written as the exposition
/// format spells it (the encoder alone wrote `inf`).
#[test]
fn an_infinite_clearance_is_written_plus_inf() {
    let line = r#"{"specversion":"1.0","id":"r1","source":"test","type":"case.registered","time":"2026-10-09T00:00:00Z","data":{"case":"A-1","track":"asylum"}}"#;
    let text = render_after([line], "2026-10-10T00:00:00Z");
    let clearance = text
        .lines()
        .find(|l| l.starts_with("backlogd_backlog_clearance_seconds{track=\"asylum\"}"))
        .expect("the clearance gauge");
    assert!(clearance.ends_with(" +Inf"), "{clearance}");
    assert!(!text.contains(" inf\n"), "no `inf` left");
}

/// Every family in /metrics has a row `| `name` | type | help |` in docs/metrics.md.
#[test]
fn metric_reference_matches_the_code() {
    let text = golden_text();
    let readme = include_str!("../../docs/metrics.md");
    let mut expected = String::new();
    let mut missing = Vec::new();
    let mut help = "";
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').map_or("", |(_, h)| h);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let row = format!("| `{name}` | {kind} | {help} |");
            if !readme.contains(&row) {
                missing.push(name.to_owned());
            }
            expected.push_str(&row);
            expected.push('\n');
        }
    }
    assert!(
        missing.is_empty(),
        "docs/metrics.md lacks or misdescribes {missing:?}; the reference table should read:\n{expected}"
    );
}
