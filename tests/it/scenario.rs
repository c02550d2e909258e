//! The rich scenario (`tests/fixtures/scenario.ndjson`) sent with `backlogd send`: the metric values
//! an operator reads, worked out by hand from docs/events.md and docs/metrics.md, before and after a graceful restart, and
//! unchanged when the same file is sent again.
//!
//! The fixture, in short (all times in the past; "now" is the real clock):
//!
//! | case | location | story | now |
//! |---|---|---|---|
//! | zaak-TA-0001 | Ter Apel | received 2025-06-02, deadline 2025-12-02; c-jansen; hearing held | open, overdue, phase hearing |
//! | zaak-TA-0002 | Ter Apel | received 2025-07-01 10:00, deadline 2026-01-01 10:00; decided 2026-01-21 15:00 by t-01 (temporary, inexperienced then), benefit of doubt, no further investigation | decided: 20 whole days late → 14×€23 + 6×€35 = €532 |
//! | zaak-TA-0003 | Ter Apel | received 2025-03-03, deadline 2025-09-03 + 10 days suspended = 2025-09-13; assigned then unassigned | open, overdue, unassigned, phase intake |
//! | zaak-TA-0004 | Ter Apel → Budel | received 2025-04-01, deadline 2025-10-01; t-02; hearing cancelled; transferred | open, overdue, phase intention |
//! | zaak-TA-0005 | Ter Apel | phase decision; closed (withdrawn) in time; reopened with deadline 2099 | open, not overdue, phase none |
//! | zaak-BU-0001 | Budel | received 2025-05-01, deadline 2025-11-01, extended P9M → 2026-08-01; d-bakker | open, overdue, phase view |
//! | zaak-BU-0002 | Budel | received 2026-01-05; decided (rejected) 2026-04-01 by d-bakker, in time, with investigation | decided |
//! | zaak-BU-0003 | Budel | hearing cancelled; suspended since 2025-03-01 | open, suspended (never overdue), phase hearing |
//!
//! Every overdue case is more than 42 days late, so its accrued penalty is the €1,442 cap and the
//! exposure does not move with the clock.

use crate::harness::{Daemon, SeriesKey, backlogd, fixture, metric_value, samples};

/// The number of events in the fixture.
const SCENARIO_EVENTS: u64 = 43;

/// Hand-computed values after the scenario (see the module header), as (series, value).
#[rustfmt::skip]
pub const SCENARIO_STATE: &[(&str, f64)] = &[
    (r#"backlogd_cases_open{track="asylum",location="Ter Apel"}"#, 3.0),
    (r#"backlogd_cases_open{track="asylum",location="Budel"}"#, 3.0),
    (r#"backlogd_cases_overdue{track="asylum",location="Ter Apel"}"#, 2.0),
    (r#"backlogd_cases_overdue{track="asylum",location="Budel"}"#, 2.0),
    (r#"backlogd_cases_due_soon{track="asylum",window="P7D"}"#, 0.0),
    (r#"backlogd_cases_due_soon{track="asylum",window="P28D"}"#, 0.0),
    (r#"backlogd_cases_suspended{track="asylum"}"#, 1.0),
    (r#"backlogd_cases_unassigned{track="asylum"}"#, 3.0),
    (r#"backlogd_cases_by_phase{track="asylum",phase="none"}"#, 1.0),
    (r#"backlogd_cases_by_phase{track="asylum",phase="intake"}"#, 1.0),
    (r#"backlogd_cases_by_phase{track="asylum",phase="hearing"}"#, 2.0),
    (r#"backlogd_cases_by_phase{track="asylum",phase="intention"}"#, 1.0),
    (r#"backlogd_cases_by_phase{track="asylum",phase="view"}"#, 1.0),
    (r#"backlogd_cases_by_phase{track="asylum",phase="decision"}"#, 0.0),
    (r#"backlogd_penalty_exposure_euros{track="asylum"}"#, 4.0 * 1442.0),
    (r#"backlogd_penalty_incurred_euros_total{track="asylum"}"#, 532.0),
    (r#"backlogd_cases_registered_total{track="asylum"}"#, 8.0),
    (r#"backlogd_cases_reopened_total{track="asylum"}"#, 1.0),
    (r#"backlogd_cases_decided_total{track="asylum",outcome="granted"}"#, 1.0),
    (r#"backlogd_cases_decided_total{track="asylum",outcome="rejected"}"#, 1.0),
    (r#"backlogd_cases_decided_total{track="asylum",outcome="other"}"#, 0.0),
    (r#"backlogd_cases_closed_total{track="asylum",reason="withdrawn"}"#, 1.0),
    (r#"backlogd_cases_closed_total{track="asylum",reason="merged"}"#, 0.0),
    (r#"backlogd_decisions_overdue_total{track="asylum"}"#, 1.0),
    (r#"backlogd_decisions_by_inexperienced_total{track="asylum"}"#, 1.0),
    (r#"backlogd_decisions_benefit_of_doubt_total{track="asylum"}"#, 1.0),
    (r#"backlogd_decisions_without_investigation_total{track="asylum"}"#, 1.0),
    (r#"backlogd_deadline_extensions_total{track="asylum"}"#, 1.0),
    (r#"backlogd_hearings_total{track="asylum",result="held"}"#, 1.0),
    (r#"backlogd_hearings_total{track="asylum",result="cancelled"}"#, 2.0),
    (r#"backlogd_case_transfers_total{track="asylum"}"#, 1.0),
    // Lead times: zaak-TA-0002 204.25 days (17,647,200 s), zaak-BU-0002 86.04 days (7,434,000 s).
    (r#"backlogd_case_lead_time_seconds_count{track="asylum"}"#, 2.0),
    (r#"backlogd_case_lead_time_seconds_sum{track="asylum"}"#, 25_081_200.0),
    (r#"backlogd_case_lead_time_seconds_bucket{track="asylum",le="5270400"}"#, 0.0),
    (r#"backlogd_case_lead_time_seconds_bucket{track="asylum",le="7862400"}"#, 1.0),
    (r#"backlogd_case_lead_time_seconds_bucket{track="asylum",le="15724800"}"#, 1.0),
    (r#"backlogd_case_lead_time_seconds_bucket{track="asylum",le="23673600"}"#, 2.0),
    // t-01 became experienced after deciding; t-02 is still a trainee.
    (r#"backlogd_employees{role="caseworker",contract="temporary",experienced="false"}"#, 1.0),
    (r#"backlogd_employees{role="caseworker",contract="temporary",experienced="true"}"#, 1.0),
    (r#"backlogd_employees{role="caseworker",contract="permanent",experienced="true"}"#, 1.0),
    (r#"backlogd_employees{role="caseworker",contract="permanent",experienced="false"}"#, 0.0),
    (r#"backlogd_employees{role="mentor",contract="permanent",experienced="true"}"#, 1.0),
    (r#"backlogd_employees{role="decision_officer",contract="permanent",experienced="true"}"#, 1.0),
    (r#"backlogd_employee_open_cases{employee="c-jansen"}"#, 1.0),
    (r#"backlogd_employee_open_cases{employee="t-02"}"#, 1.0),
    (r#"backlogd_employee_open_cases{employee="d-bakker"}"#, 1.0),
    (r#"backlogd_employee_open_cases{employee="t-01"}"#, 0.0),
    (r#"backlogd_mentor_mentees{mentor="m-vos"}"#, 2.0),
    (r#"backlogd_mentees_unmentored"#, 0.0),
    (r#"backlogd_quality_audits_total{result="pass"}"#, 2.0),
    (r#"backlogd_quality_audits_total{result="fail"}"#, 1.0),
    // 2026-06-30T12:00:00+02:00.
    (r#"backlogd_quality_last_audit_timestamp_seconds"#, 1_782_813_600.0),
];

/// Posts the scenario over HTTP (for tests that need the state, not the sender).
pub fn post_scenario(daemon: &Daemon) {
    let text = std::fs::read_to_string(fixture("scenario.ndjson")).unwrap();
    daemon.post_ok(&text, SCENARIO_EVENTS);
}

/// Asserts every value of `SCENARIO_STATE`, reporting all mismatches at once.
pub fn assert_scenario_state(daemon: &Daemon, when: &str) {
    daemon.await_metrics(when, |text| {
        let mut mismatches: Vec<String> = SCENARIO_STATE
            .iter()
            .filter_map(|(series, expected)| {
                let actual = metric_value(text, series);
                (actual != Some(*expected))
                    .then(|| format!("  {series}: expected {expected}, got {actual:?}"))
            })
            .collect();
        // The most overdue case is zaak-TA-0003 (deadline 2025-09-13T07:00:00Z = 1757746800).
        let series = r#"backlogd_case_max_overdue_seconds{track="asylum"}"#;
        let max_overdue = metric_value(text, series);
        let expected = seconds_since(1_757_746_800);
        if !max_overdue.is_some_and(|actual| (actual - expected).abs() < 30.0) {
            mismatches.push(format!(
                "  {series}: expected about {expected}, got {max_overdue:?}"
            ));
        }
        if mismatches.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "metrics differ from the hand-computed scenario values:\n{}",
                mismatches.join("\n")
            ))
        }
    });
}

/// Seconds from an epoch instant to now.
pub fn seconds_since(epoch_seconds: i64) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    now - epoch_seconds as f64
}

/// The series that are state (everything but the per-process instruments and the values that move
/// with the clock), as written, for before/after comparisons.
pub fn state_series(text: &str) -> Vec<(SeriesKey, String)> {
    const NOT_STATE: &[&str] = &[
        "process_",
        "backlogd_start_time_seconds",
        "backlogd_snapshots_",
        "backlogd_config_reloads_unchanged_total",
        "backlogd_events_",
        "backlogd_ingest_request_duration_seconds",
        "backlogd_store_commit_duration_seconds",
        // The disk, not the state: other writers move it.
        "backlogd_store_free_bytes",
        "backlogd_store_filesystem_size_bytes",
        "backlogd_last_event_timestamp_seconds",
        "backlogd_case_max_overdue_seconds",
        "backlogd_backlog_projected_clearance_timestamp_seconds",
        // Presence in the window grows with the clock (the window's lower edge is a bucket
        // boundary, its upper edge now), and the rates per employee-week with it.
        "backlogd_capacity_presence_seconds",
        "backlogd_decisions_per_employee_week",
    ];
    samples(text)
        .into_iter()
        .filter(|((name, _), _)| !NOT_STATE.iter().any(|prefix| name.starts_with(prefix)))
        .collect()
}

pub fn assert_same_state(
    before: &[(SeriesKey, String)],
    after: &[(SeriesKey, String)],
    when: &str,
) {
    let differences: Vec<String> = before
        .iter()
        .filter(|sample| !after.contains(sample))
        .map(|(key, value)| format!("  before: {key:?} {value}"))
        .chain(
            after
                .iter()
                .filter(|sample| !before.contains(sample))
                .map(|(key, value)| format!("  after:  {key:?} {value}")),
        )
        .collect();
    assert!(
        differences.is_empty(),
        "{when}: the state series changed:\n{}",
        differences.join("\n")
    );
}

/// Awaits a change of `backlogd_case_max_overdue_seconds`, which grows with the clock: a view of
/// the state published after this call.
fn await_next_tick(daemon: &Daemon) {
    let series = r#"backlogd_case_max_overdue_seconds{track="asylum"}"#;
    let now = daemon.metric(series);
    daemon.await_metrics("a tick after re-sending", |text| {
        let later = metric_value(text, series);
        if later != now {
            Ok(())
        } else {
            Err(format!("{series} stayed {now:?}"))
        }
    });
}

fn send_scenario(daemon: &Daemon) -> (Option<i32>, String) {
    let file = fixture("scenario.ndjson");
    let output = backlogd(&["send", file.to_str().unwrap(), "--url", &daemon.url()]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), format!("{stdout}{stderr}"))
}

fn last_line(output: &str) -> &str {
    output.lines().last().unwrap_or("")
}

#[test]
fn scenario_metrics_survive_restart_and_resending_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");

    let daemon = Daemon::start(&store, &[]);
    let (code, output) = send_scenario(&daemon);
    assert_eq!(code, Some(0), "backlogd send:\n{output}");
    assert_eq!(
        last_line(&output),
        format!("accepted {SCENARIO_EVENTS}, duplicates 0, rejected 0")
    );
    assert_scenario_state(&daemon, "after sending the scenario");
    let applied = r#"backlogd_events_applied_total{event_type="case.registered"}"#;
    daemon.await_metric(applied, 8.0);
    let before = state_series(&daemon.metrics());
    daemon.stop();

    let daemon = Daemon::start(&store, &[]);
    assert_scenario_state(&daemon, "after a graceful restart");
    assert_same_state(
        &before,
        &state_series(&daemon.metrics()),
        "graceful restart",
    );
    // Per-process counters start again; the state does not.
    assert_eq!(daemon.metric(applied), Some(0.0));

    let (code, output) = send_scenario(&daemon);
    assert_eq!(code, Some(0), "backlogd send (again):\n{output}");
    assert_eq!(
        last_line(&output),
        format!("accepted 0, duplicates {SCENARIO_EVENTS}, rejected 0")
    );
    // Nothing is expected to change, so there is nothing to await; wait for a view published
    // after the re-send instead (the clock-driven gauge moves with every tick).
    await_next_tick(&daemon);
    assert_same_state(
        &before,
        &state_series(&daemon.metrics()),
        "re-sending the scenario",
    );
    daemon.await_metric("backlogd_events_duplicate_total", SCENARIO_EVENTS as f64);
    assert_eq!(daemon.metric(applied), Some(0.0));
    daemon.stop();
}

#[test]
fn overdue_drill_down_lists_the_most_overdue_case_first_with_its_penalty() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    assert_eq!(daemon.get("/healthz").status, 200);
    assert_eq!(daemon.get("/readyz").status, 200);
    post_scenario(&daemon);

    let response = daemon.get("/v1/cases/overdue");
    assert_eq!(response.status, 200, "{}", response.text());
    let cases: Vec<backlogd::api::OverdueCase> = response.decode();
    let summary: Vec<(&str, &str, Option<&str>)> = cases
        .iter()
        .map(|c| (c.case.as_str(), c.location.as_str(), c.employee.as_deref()))
        .collect();
    // Suspended zaak-BU-0003 and zaak-TA-0005 (deadline 2099) are not overdue.
    assert_eq!(
        summary,
        [
            ("zaak-TA-0003", "Ter Apel", None),
            ("zaak-TA-0004", "Budel", Some("t-02")),
            ("zaak-TA-0001", "Ter Apel", Some("c-jansen")),
            ("zaak-BU-0001", "Budel", Some("d-bakker")),
        ],
        "{cases:#?}"
    );
    let first = &cases[0];
    assert_eq!(first.track, "asylum");
    assert_eq!(first.penalty_euros, 1442.0, "{first:?}");
    // The 10 suspended days moved the deadline from 2025-09-03 to 2025-09-13.
    assert!(
        first.deadline.to_string().starts_with("2025-09-13"),
        "{first:?}"
    );
    let expected = seconds_since(1_757_746_800);
    assert!(
        (first.overdue_seconds - expected).abs() < 30.0,
        "{first:?}: expected {expected}"
    );

    let response = daemon.get("/v1/cases/overdue?track=asylum&location=Budel&limit=1");
    assert_eq!(response.status, 200, "{}", response.text());
    let cases: Vec<backlogd::api::OverdueCase> = response.decode();
    let ids: Vec<&str> = cases.iter().map(|c| c.case.as_str()).collect();
    assert_eq!(ids, ["zaak-TA-0004"], "{cases:?}");
}

/// `backlogd send` in a terminal (a pseudo-terminal made by util-linux `script`) shows its progress
/// on standard error before the totals; through a pipe, and with --quiet, nothing but the totals.
#[test]
fn send_shows_progress_in_a_terminal_and_nothing_in_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let file = fixture("scenario.ndjson");
    let events = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .count();
    let in_terminal = |extra: &str| {
        let command = format!(
            "{} send {} --url {} --batch 5 {extra}",
            crate::harness::BINARY,
            file.display(),
            daemon.url()
        );
        let output = std::process::Command::new("script")
            .args(["--quiet", "--return", "--command", &command, "/dev/null"])
            .env("TERM", "xterm")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("util-linux script runs");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let shown = in_terminal("");
    let totals = shown.rfind("accepted ").expect("the totals");
    let bar = shown
        .find("events sent")
        .unwrap_or_else(|| panic!("no progress: {shown:?}"));
    assert!(
        bar < totals,
        "the progress comes before the totals: {shown:?}"
    );
    assert!(shown.contains("% "), "a percentage: {shown:?}");
    // The totals are unchanged, on a line of their own.
    assert!(
        shown
            .trim_end()
            .ends_with(&format!("accepted {events}, duplicates 0, rejected 0")),
        "{shown:?}"
    );
    let quiet = in_terminal("--quiet");
    assert!(!quiet.contains("events sent"), "{quiet:?}");
    assert_eq!(
        quiet.trim_end(),
        format!("accepted 0, duplicates {events}, rejected 0")
    );
    let (code, piped) = send_scenario(&daemon);
    assert_eq!(code, Some(0));
    assert!(
        !piped.contains("events sent") && !piped.contains('\u{1b}'),
        "{piped:?}"
    );
}
