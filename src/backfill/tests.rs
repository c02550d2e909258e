//! The backfill against the core fed directly: each step equals a state fed the events up to that
//! instant, and the refusals name the line or the figure.

use std::io::Write;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::simulate::{Scenario, generate};

const SHIPPED_CONFIG: &str = include_str!("../../config/backlogd.toml");

fn config() -> Config {
    crate::config::load_from_str(SHIPPED_CONFIG).expect("shipped config is valid")
}

/// Sixty days of the taskforce scenario at a tenth of its size, as an NDJSON file.
fn events_file(dir: &Path) -> (PathBuf, Vec<String>) {
    let scenario = Scenario::builtin("taskforce").expect("built-in scenario");
    let options = crate::simulate::Options {
        from: Some(1_700_000_000),
        to: Some(1_700_000_000 + 60 * 86_400),
        scale: 0.1,
        ..Default::default()
    };
    let lines: Vec<String> = generate(&scenario, &options).unwrap().lines().collect();
    let path = dir.join("events.ndjson");
    let mut file = std::fs::File::create(&path).unwrap();
    for line in &lines {
        writeln!(file, "{line}").unwrap();
    }
    (path, lines)
}

fn options(files: Vec<PathBuf>, step: SignedDuration) -> Options {
    Options {
        not_after: None,
        progress: false,
        files,
        step,
        from: None,
        to: None,
        max_samples: DEFAULT_MAX_SAMPLES,
        labels: Vec::new(),
    }
}

/// The sample lines of one step as a state fed the events up to `at` renders them.
fn reference_step(config: &Config, lines: &[String], at: Timestamp) -> Vec<String> {
    let settings = crate::config::core_settings(config);
    let edge = EdgeSettings::from_config(config).unwrap();
    let mut state = State::new(settings.clone());
    let at_nanos = to_nanos(at).unwrap();
    for line in lines {
        let event = crate::wire::parse_event(line).unwrap();
        let time = to_nanos(event.time).unwrap();
        if time > at_nanos {
            break;
        }
        let _ = state.apply(&event, time);
    }
    state.advance(at_nanos);
    let (workforce, _) = WorkforceBuilder::default().build(&state, &edge);
    let view = view_of(
        &state,
        Arc::new(settings),
        Arc::new(workforce),
        Arc::new(edge),
    );
    let mut out = Vec::new();
    openmetrics::write_families(
        &mut out,
        &crate::metrics::history_families(&view),
        at.as_millisecond(),
        &[],
    )
    .unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_step_is_the_state_fed_the_events_up_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, lines) = events_file(dir.path());
    let config = config();
    let mut out = Vec::new();
    let summary = run(
        &config,
        &options(vec![path], SignedDuration::from_hours(24)),
        &mut out,
    )
    .unwrap();
    assert_eq!(summary.applied, lines.len() as u64, "{summary:?}");
    assert!(summary.rejected.is_empty(), "{summary:?}");
    // Steps at UTC midnights from the first event (2023-11-14T22:13:20Z) to the last.
    let first = summary.first_step.unwrap();
    assert_eq!(first, "2023-11-15T00:00:00Z".parse::<Timestamp>().unwrap());
    assert_eq!(summary.steps, 60);
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("# EOF\n"));
    for day in [0, 1, 17, 59] {
        let at = first + SignedDuration::from_hours(24 * day);
        let stamp = format!(" {}", at.as_second());
        let written: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && l.ends_with(&stamp))
            .collect();
        let expected = reference_step(&config, &lines, at);
        assert!(!expected.is_empty());
        assert_eq!(written, expected, "step {at}");
    }
    assert!(text.contains("backlogd_cases_open{"));
    assert!(!text.contains("backlogd_remembered_event_ids"));
    assert!(!text.contains("process_"));
}

#[test]
fn from_and_to_bound_the_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = events_file(dir.path());
    let mut options = options(vec![path], SignedDuration::from_hours(6));
    options.from = Some("2023-11-20T03:00:00Z".parse().unwrap());
    options.to = Some("2023-11-21T03:00:00Z".parse().unwrap());
    options.labels = vec![
        ("job".into(), "backlogd".into()),
        ("instance".into(), "h:1".into()),
    ];
    let mut out = Vec::new();
    let summary = run(&config(), &options, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("backlogd_"), "{line}");
        assert!(line.contains(r#"{job="backlogd",instance="h:1""#), "{line}");
    }
    assert_eq!(summary.steps, 5);
    assert_eq!(summary.first_step, options.from);
    assert_eq!(summary.last_step, options.to);
}

#[test]
fn an_event_earlier_than_the_skew_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let event = |id: &str, time: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","type":"case.registered","source":"t","time":"{time}","data":{{"case":"{id}","track":"asylum"}}}}"#
        )
    };
    let text = [
        event("a", "2025-01-01T10:00:00Z"),
        event("b", "2025-01-01T09:56:00Z"), // 4 minutes behind: within the 5-minute skew
        String::new(),
        event("c", "2025-01-01T09:54:59Z"), // 5 minutes and 1 second behind
    ]
    .join("\n");
    std::fs::write(&path, text).unwrap();
    let error = run(
        &config(),
        &options(vec![path], SignedDuration::from_hours(1)),
        std::io::sink(),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, BackfillError::OutOfOrder { line: 4, .. }),
        "{message}"
    );
    assert!(message.contains("events.ndjson:4: event time 2025-01-01T09:54:59Z is 5m 1s earlier than the latest event time read before it (2025-01-01T10:00:00Z), more than ingest.max_future_skew (5m)"), "{message}");
}

#[test]
fn too_many_samples_are_refused_with_the_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = events_file(dir.path());
    let mut options = options(vec![path], SignedDuration::from_hours(1));
    options.max_samples = 10_000;
    let error = run(&config(), &options, std::io::sink()).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, BackfillError::TooManySamples { limit: 10_000, total, .. } if total > 10_000),
        "{message}"
    );
    assert!(
        message.contains("more than --max-samples 10000")
            && message.contains("; the steps up to ")
            && message.contains("events.ndjson:"),
        "{message}"
    );

    options.from = Some("2020-01-01T00:00:00Z".parse().unwrap());
    options.to = Some("2025-01-01T00:00:00Z".parse().unwrap());
    let message = run(&config(), &options, std::io::sink())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("is 43849 steps, more than --max-samples 10000"),
        "{message}"
    );
}

#[test]
fn rejections_and_duplicates_are_the_daemons() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let text = concat!(
        r#"{"specversion":"1.0","id":"a","type":"case.registered","source":"t","time":"2025-01-01T10:00:00Z","data":{"case":"x","track":"asylum"}}"#,
        "\n",
        r#"{"specversion":"1.0","id":"a","type":"case.registered","source":"t","time":"2025-01-01T10:00:00Z","data":{"case":"x","track":"asylum"}}"#,
        "\nnot json\n",
        r#"{"specversion":"1.0","id":"b","type":"case.decided","source":"t","time":"2025-01-01T11:00:00Z","data":{"case":"nope","outcome":"granted","decided_by":"e1"}}"#,
        "\n"
    );
    std::fs::write(&path, text).unwrap();
    let summary = run(
        &config(),
        &options(vec![path], SignedDuration::from_hours(1)),
        std::io::sink(),
    )
    .unwrap();
    assert_eq!((summary.applied, summary.duplicates), (1, 1));
    assert_eq!(summary.rejected.get("invalid_json"), Some(&1));
    assert_eq!(
        summary.rejected.get("unknown_case"),
        Some(&1),
        "{summary:?}"
    );
    assert!(summary.rejections_named[0].contains("events.ndjson:3: invalid_json"));
    assert_eq!(summary.steps, 2); // 10:00 and 11:00
}

#[test]
fn command_line_durations() {
    assert_eq!(parse_duration("1h").unwrap(), SignedDuration::from_hours(1));
    assert_eq!(parse_duration("5m").unwrap(), SignedDuration::from_mins(5));
    assert_eq!(
        parse_duration("2d").unwrap(),
        SignedDuration::from_hours(48)
    );
    assert_eq!(
        parse_duration("PT1H").unwrap(),
        SignedDuration::from_hours(1)
    );
    assert_eq!(
        parse_duration("P1D").unwrap(),
        SignedDuration::from_hours(24)
    );
    assert!(parse_duration("soon").is_err());
}

#[test]
fn a_range_before_the_first_event_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = events_file(dir.path());
    let mut options = options(vec![path], SignedDuration::from_hours(1));
    options.to = Some("2023-01-01T00:00:00Z".parse().unwrap());
    let message = run(&config(), &options, std::io::sink())
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("no step to write: the first step instant 2023-11-14T23:00:00Z is after --to 2023-01-01T00:00:00Z"),
        "{message}"
    );
}

/// `--out` with `--store` (a writer and the final state) applies every event up to `--to` and
/// ends at `--to`, as `--store` alone does; it used to stop reading at the first event after the
/// last step instant, so the events between that step and `--to` were never applied.
#[test]
fn writing_steps_does_not_stop_the_state_short_of_to() {
    let dir = tempfile::tempdir().unwrap();
    let (path, lines) = events_file(dir.path());
    let mut options = options(vec![path], SignedDuration::from_hours(24));
    // Between two daily steps, with events after the last step and after `to`.
    let to: Timestamp = "2023-12-15T13:37:00Z".parse().unwrap();
    options.to = Some(to);
    let (written, with_out) = run_to_state(&config(), &options, Some(std::io::sink())).unwrap();
    let (alone, without_out) = run_to_state(&config(), &options, None::<std::io::Sink>).unwrap();

    // The reference: a state fed every event up to `to`, advanced to `to`.
    let to_nanos = to_nanos(to).unwrap();
    let mut reference = State::new(crate::config::core_settings(&config()));
    let last_step = to_nanos - to_nanos.rem_euclid(86_400 * 1_000_000_000);
    let (mut applied, mut after_last_step) = (0, 0);
    for line in &lines {
        let event = crate::wire::parse_event(line).unwrap();
        let time = to_nanos_of(&event);
        if time > to_nanos {
            break;
        }
        if reference.apply(&event, time).is_ok() {
            applied += 1;
            after_last_step += u64::from(time > last_step);
        }
    }
    reference.advance(to_nanos);
    assert!(
        after_last_step > 0,
        "the test needs events after the last step"
    );
    assert_eq!(written.last_step, Some(from_nanos(last_step)));
    for (name, state, summary) in [
        ("--out and --store", &with_out, &written),
        ("--store alone", &without_out, &alone),
    ] {
        assert_eq!(summary.applied + summary.duplicates, applied, "{name}");
        assert_eq!(state.now(), to_nanos, "{name}: the clock ends at --to");
        assert_eq!(
            state.open_cases(),
            reference.open_cases(),
            "{name}: open cases"
        );
        assert!(state.aggregates() == reference.aggregates(), "{name}");
        assert!(
            state.daily_history().eq(reference.daily_history()),
            "{name}: the daily history"
        );
    }
}

fn to_nanos_of(event: &crate::core::event::Event) -> EpochNanos {
    to_nanos(event.time).unwrap()
}
