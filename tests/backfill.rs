//! `backlogd backfill` and `backlogd alert-replay` with the real tools: promtool builds blocks from
//! the backfill of every shipped scenario; the backfill's step at "now" equals a live daemon's
//! /metrics after it was fed the same events; the refusals name the line or the figure; and
//! alert-replay, against a real Prometheus started on backfilled blocks, finds a known alert with
//! the pending, firing and resolution times `for:` and `keep_firing_for:` give it.

#[allow(dead_code)]
#[path = "it/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::{Daemon, backlogd, shipped_config};

fn config_arg() -> String {
    shipped_config().display().to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn simulate(scenario: &str, scale: &str, from: &str, to: &str, out: &Path) {
    let output = backlogd(&[
        "simulate",
        "--scenario",
        scenario,
        "--scale",
        scale,
        "--from",
        from,
        "--to",
        to,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "simulate: {}", stderr(&output));
}

/// `promtool tsdb create-blocks-from openmetrics` into `blocks`; panics with its output on failure.
fn create_blocks(openmetrics: &Path, blocks: &Path) -> String {
    let output = Command::new("promtool")
        .args([
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=1000h",
        ])
        .arg(openmetrics)
        .arg(blocks)
        .output()
        .expect(
            "promtool not found: run ./scripts/test, which installs it (Debian package prometheus)",
        );
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &stderr(&output);
    assert!(
        output.status.success(),
        "promtool refused {}: {text}",
        openmetrics.display()
    );
    text
}

#[test]
fn promtool_builds_blocks_from_the_backfill_of_every_shipped_scenario() {
    let dir = tempfile::tempdir().unwrap();
    for scenario in ["steady", "taskforce", "scale"] {
        let events = dir.path().join(format!("{scenario}.ndjson"));
        simulate(scenario, "0.05", "2024-01-01", "2024-03-01", &events);
        let openmetrics = dir.path().join(format!("{scenario}.om"));
        let output = backlogd(&[
            "backfill",
            "--config",
            &config_arg(),
            "--step",
            "1h",
            "--label",
            "job=backlogd",
            "--out",
            openmetrics.to_str().unwrap(),
            events.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{scenario}: {}", stderr(&output));
        assert!(stderr(&output).contains("samples/s"), "{}", stderr(&output));
        let text = std::fs::read_to_string(&openmetrics).unwrap();
        assert!(text.ends_with("# EOF\n"));
        let blocks = dir.path().join(format!("{scenario}-blocks"));
        let report = create_blocks(&openmetrics, &blocks);
        let built = std::fs::read_dir(&blocks).unwrap().count();
        assert!(built >= 1, "{scenario}: no block built: {report}");
    }
}

/// Series → value of the samples of an exposition text whose family is in `families` (all if
/// `None`), values as written.
fn values(text: &str, keep: impl Fn(&str) -> bool) -> BTreeMap<String, String> {
    harness::samples(text)
        .into_iter()
        .filter(|((name, _), _)| keep(name))
        .map(|((name, labels), value)| {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            (format!("{name}{{{}}}", labels.join(",")), value)
        })
        .collect()
}

/// Families whose value moves with the clock itself (seconds since a deadline, now plus a
/// forecast): compared within a minute, the time between the scrape and the backfill's instant.
const CLOCK_FAMILIES: &[&str] = &[
    "backlogd_case_max_overdue_seconds",
    "backlogd_backlog_projected_clearance_timestamp_seconds",
];

/// Integrals over a window ending at now (employee-seconds of presence): they grow by the
/// headcount every second, so they are compared relatively (60 s of a 28-day window is 2.5e-5).
const CLOCK_INTEGRALS: &[&str] = &["backlogd_capacity_presence_seconds"];

#[test]
fn the_last_step_at_now_equals_a_live_daemons_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    // Events that end long before now, so that the rolling windows are empty and every overdue
    // case has reached the penalty cap by now: the figures hold still between scrape and backfill.
    simulate("taskforce", "0.05", "2024-01-01", "2024-07-01", &events);
    let lines = std::fs::read_to_string(&events).unwrap().lines().count() as f64;

    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let daemon = Daemon::start(&store, &[]);
    let sent = backlogd(&["send", "--url", &daemon.url(), events.to_str().unwrap()]);
    assert!(sent.status.success(), "send: {}", stderr(&sent));
    let live = daemon.await_metrics("every event applied", |text| {
        let applied: f64 = harness::samples(text)
            .iter()
            .filter(|((name, _), _)| name == "backlogd_events_applied_total")
            .map(|(_, v)| harness::parse_value(v))
            .sum();
        (applied == lines)
            .then_some(())
            .ok_or_else(|| format!("{applied} of {lines} applied"))
    });
    let now = jiff::Timestamp::now().as_second().to_string();
    let openmetrics = dir.path().join("now.om");
    let output = backlogd(&[
        "backfill",
        "--config",
        &config_arg(),
        "--step",
        "1h",
        "--from",
        &jiff::Timestamp::from_second(now.parse().unwrap())
            .unwrap()
            .to_string(),
        "--to",
        &jiff::Timestamp::from_second(now.parse().unwrap())
            .unwrap()
            .to_string(),
        "--out",
        openmetrics.to_str().unwrap(),
        events.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let backfill = std::fs::read_to_string(&openmetrics).unwrap();
    // One step, stamped `now`; as exposition text without the timestamps and `# EOF`.
    let step: String = backfill
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (sample, stamp) = l.rsplit_once(' ').unwrap();
            assert_eq!(stamp, now, "{l}");
            format!("{sample}\n")
        })
        .collect();
    let backfilled = values(&step, |_| true);
    let families: std::collections::BTreeSet<String> = harness::samples(&step)
        .into_iter()
        .map(|((name, _), _)| name)
        .collect();
    assert!(families.len() > 30, "{families:?}");
    let live = values(&live, |name| families.contains(name));
    assert_eq!(
        backfilled.keys().collect::<Vec<_>>(),
        live.keys().collect::<Vec<_>>(),
        "the same series"
    );
    for (series, value) in &backfilled {
        let live_value = &live[series];
        // Compared as numbers: /metrics writes +Inf as `inf` (the prometheus crate's text
        // encoder; Prometheus reads either), OpenMetrics wants `+Inf`.
        let (a, b) = (
            harness::parse_value(value),
            harness::parse_value(live_value),
        );
        let same = a == b || (a.is_nan() && b.is_nan());
        if CLOCK_FAMILIES
            .iter()
            .any(|f| series.starts_with(&format!("{f}{{")))
        {
            assert!(
                same || (a - b).abs() <= 60.0,
                "{series}: backfill {value}, live {live_value}"
            );
        } else if CLOCK_INTEGRALS
            .iter()
            .any(|f| series.starts_with(&format!("{f}{{")))
        {
            assert!(
                same || (a - b).abs() <= 1e-4 * a.abs().max(b.abs()),
                "{series}: backfill {value}, live {live_value}"
            );
        } else {
            assert!(same, "{series}: backfill {value}, live {live_value}");
        }
    }
    // What the backfill leaves out: the process' own families and its ingest memory.
    for absent in [
        "backlogd_events_applied_total",
        "backlogd_remembered_event_ids",
        "backlogd_build_info",
        "process_",
    ] {
        assert!(!backfill.contains(absent), "{absent} in the backfill");
    }
    daemon.stop();
}

fn event(id: &str, time: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","type":"case.registered","source":"t","time":"{time}","data":{{"case":"{id}","track":"asylum"}}}}"#
    )
}

#[test]
fn out_of_order_files_and_too_many_samples_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("late.ndjson");
    std::fs::write(
        &events,
        [
            event("a", "2025-03-01T10:00:00Z"),
            event("b", "2025-03-01T11:00:00Z"),
            event("c", "2025-03-01T10:30:00Z"),
        ]
        .join("\n"),
    )
    .unwrap();
    let out = dir.path().join("out.om");
    let output = backlogd(&[
        "backfill",
        "--config",
        &config_arg(),
        "--step",
        "1h",
        "--out",
        out.to_str().unwrap(),
        events.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("late.ndjson:3: event time 2025-03-01T10:30:00Z is 30m earlier than the latest event time read before it (2025-03-01T11:00:00Z), more than ingest.max_future_skew (5m)"),
        "{message}"
    );
    assert!(!out.exists(), "a refused backfill leaves no output file");
    assert!(!dir.path().join("out.om.partial").exists());

    let output = backlogd(&[
        "backfill",
        "--config",
        &config_arg(),
        "--step",
        "1m",
        "--from",
        "2025-01-01",
        "--to",
        "2025-03-01",
        "--max-samples",
        "50000",
        events.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("is 84961 steps, more than --max-samples 50000"),
        "{message}"
    );
    let output = backlogd(&[
        "backfill",
        "--config",
        &config_arg(),
        "--step",
        "1m",
        "--max-samples",
        "5000",
        events.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("would bring the samples written to")
            && message.contains("more than --max-samples 5000"),
        "{message}"
    );
}

/// The distinct sample timestamps (Unix seconds) of OpenMetrics text, in order.
fn om_timestamps(openmetrics: &str) -> Vec<i64> {
    let mut seconds: Vec<i64> = openmetrics
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|t| t as i64)
        .collect();
    seconds.sort_unstable();
    seconds.dedup();
    seconds
}

/// `--from`/`--to` with a numeric offset mean that instant, not the midnight of its civil date
/// (the bug: `+01:00` was cut to 00:00Z and the backfill wrote one step at 00:00Z). The same for
/// `simulate` and for the refusal of anything else, named by its option.
#[test]
fn a_range_with_an_offset_covers_exactly_the_hours_asked() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("one.ndjson");
    std::fs::write(&events, event("a", "2026-11-01T13:30:00Z") + "\n").unwrap();
    let out = dir.path().join("y.om");
    let output = backlogd(&[
        "backfill",
        "--config",
        &config_arg(),
        "--step",
        "1h",
        "--from",
        "2026-11-01T15:00:00+01:00",
        "--to",
        "2026-11-01T18:00:00+01:00",
        "--out",
        out.to_str().unwrap(),
        events.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("4 steps from 2026-11-01T14:00:00Z to 2026-11-01T17:00:00Z"),
        "{}",
        stderr(&output)
    );
    let fourteen = epoch("2026-11-01T14:00:00Z");
    assert_eq!(
        om_timestamps(&std::fs::read_to_string(&out).unwrap()),
        (0..4).map(|h| fourteen + h * 3600).collect::<Vec<_>>()
    );

    // simulate: every event inside the range, and events after the UTC midnight the old parser
    // would have cut --to to.
    let simulated = dir.path().join("sim.ndjson");
    simulate(
        "steady",
        "0.2",
        "2026-11-02T08:30:00+01:00",
        "2026-11-04T17:00:00+01:00",
        &simulated,
    );
    let times: Vec<i64> = std::fs::read_to_string(&simulated)
        .unwrap()
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            epoch(event["time"].as_str().unwrap())
        })
        .collect();
    let (first, last) = (
        *times.iter().min().expect("events"),
        *times.iter().max().expect("events"),
    );
    assert!(
        first >= epoch("2026-11-02T07:30:00Z"),
        "first event {first}"
    );
    assert!(last <= epoch("2026-11-04T16:00:00Z"), "last event {last}");
    assert!(
        last > epoch("2026-11-04T00:00:00Z"),
        "the range goes on after midnight UTC of its last day: last event {last}"
    );

    // Anything that is not RFC 3339, a whole YYYY-MM-DD or now is refused, naming the option.
    for (command, option, text) in [
        ("backfill", "--from", "2026-11-01T15:00+01:00"),
        ("alert-replay", "--to", "20261101T150000Z"),
        ("report", "--from", "2026-11-01T15:00:00+01:00"),
        ("simulate", "--from", "2026-11-01T15:00:00+01"),
    ] {
        let mut args = vec![command, option, text];
        match command {
            "backfill" => args.extend(["--config", "x.toml", "--step", "1h", "x.ndjson"]),
            "alert-replay" => args.extend([
                "--prometheus",
                "http://127.0.0.1:1",
                "--rules",
                "x.yml",
                "--from",
                "now",
            ]),
            "report" => args.extend(["--out", "x.html"]),
            _ => args.extend(["--scenario", "steady", "--out", "x.ndjson"]),
        }
        let output = backlogd(&args);
        assert_ne!(output.status.code(), Some(0), "{args:?}");
        let message = stderr(&output);
        assert!(
            message.contains(option) && message.contains(text),
            "{args:?}: {message}"
        );
        let example = if command == "report" {
            "such as 2026-11-01"
        } else {
            "such as 2026-11-01T15:00:00+01:00"
        };
        assert!(message.contains(example), "{args:?}: {message}");
    }
}

/// `backlogd backfill --config CONFIG --store STORE EVENTS`.
fn backfill_store(config: &Path, store: &Path, events: &Path) -> Output {
    backlogd(&[
        "backfill",
        "--config",
        config.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        events.to_str().unwrap(),
    ])
}

/// A child process killed on drop.
struct Server(Child, PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

/// Prometheus on the TSDB `tsdb` (blocks from promtool), keeping everything (the default retention
/// of 15 days would delete older blocks at once), evaluating nothing.
fn start_prometheus(dir: &Path, tsdb: &Path) -> (Server, String) {
    let port = harness::free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    let log = dir.join("prometheus.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg("--storage.tsdb.retention.time=100y")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("prometheus not found: run ./scripts/test, which installs it");
    let server = Server(child, log);
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        let ready = harness::request(addr.parse().unwrap(), "GET", "/-/ready", &[], b"")
            .is_ok_and(|r| r.status == 200);
        if ready {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus did not get ready:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (server, format!("http://{addr}"))
}

/// 150 cases fall due at 10:02 (`max_overdue_cases` is 100), 100 are decided at 14:03.
fn overdue_events(day: &str) -> String {
    let mut lines = Vec::new();
    for i in 0..150 {
        lines.push(format!(
            r#"{{"specversion":"1.0","id":"r{i}","type":"case.registered","source":"t","time":"{day}T08:00:00Z","data":{{"case":"c{i}","track":"asylum","received_at":"{day}T08:00:00Z","deadline":"{day}T10:02:00Z"}}}}"#
        ));
    }
    lines.push(format!(
        r#"{{"specversion":"1.0","id":"e1","type":"employee.joined","source":"t","time":"{day}T08:00:00Z","data":{{"employee":"d1","role":"decision_officer","experienced":true}}}}"#
    ));
    for i in 0..100 {
        lines.push(format!(
            r#"{{"specversion":"1.0","id":"d{i}","type":"case.decided","source":"t","time":"{day}T14:03:00Z","data":{{"case":"c{i}","outcome":"granted","decided_by":"d1"}}}}"#
        ));
    }
    lines.push(event("late", &format!("{day}T18:00:00Z")));
    lines.join("\n") + "\n"
}

#[test]
fn alert_replay_on_backfilled_blocks_applies_for_and_keep_firing_for() {
    let dir = tempfile::tempdir().unwrap();
    let day = "2025-03-04";
    let events = dir.path().join("overdue.ndjson");
    std::fs::write(&events, overdue_events(day)).unwrap();
    let openmetrics = dir.path().join("overdue.om");
    let output = backlogd(&[
        "backfill",
        "--config",
        &config_arg(),
        "--step",
        "5m",
        "--label",
        "job=backlogd",
        "--label",
        "instance=127.0.0.1:9723",
        "--out",
        openmetrics.to_str().unwrap(),
        events.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let tsdb = dir.path().join("tsdb");
    create_blocks(&openmetrics, &tsdb);
    let (prometheus, url) = start_prometheus(dir.path(), &tsdb);

    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prometheus/backlogd-rules.yml");
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "alert-replay",
            "--prometheus",
            &url,
            "--rules",
            rules.to_str().unwrap(),
            "--from",
            "2025-03-04T08:00:00Z",
            "--to",
            "2025-03-04T18:00:00Z",
            "--step",
            "5m",
        ];
        args.extend_from_slice(extra);
        let output = backlogd(&args);
        assert!(
            output.status.success(),
            "{}\n{}",
            stderr(&output),
            prometheus.log()
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let json: serde_json::Value =
        serde_json::from_str(&replay(&["--json", "--label", "source=data"])).unwrap();
    let overdue: Vec<&serde_json::Value> = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["alert"] == "OverdueCasesHigh")
        .collect();
    assert_eq!(overdue.len(), 1, "{json:#}");
    let row = overdue[0];
    // Overdue from 10:02: pending at the 10:05 evaluation, firing 15 minutes (for:) later; the
    // condition clears at 14:03, the alert keeps firing an hour (keep_firing_for:) from 14:05.
    assert_eq!(row["pending_from"], "2025-03-04T10:05:00Z", "{row:#}");
    assert_eq!(row["firing_from"], "2025-03-04T10:20:00Z", "{row:#}");
    assert_eq!(row["resolved_at"], "2025-03-04T15:05:00Z", "{row:#}");
    assert_eq!(row["severity"], "ticket");
    assert_eq!(row["labels"]["instance"], "127.0.0.1:9723");
    assert_eq!(row["labels"]["alertname"], "OverdueCasesHigh");

    // --from with an offset starts there: an alert whose condition held before it is pending
    // from the first evaluation at --from, never before (the old parser cut 12:00+01:00 to
    // midnight UTC and reported pending from 10:05).
    let late = |from: &str| {
        let output = backlogd(&[
            "alert-replay",
            "--prometheus",
            &url,
            "--rules",
            rules.to_str().unwrap(),
            "--from",
            from,
            "--to",
            "2025-03-04T19:00:00+01:00",
            "--step",
            "5m",
            "--json",
            "--alert",
            "OverdueCasesHigh",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let json = late("2025-03-04T12:00:00+01:00");
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json:#}");
    assert_eq!(json[0]["pending_from"], "2025-03-04T11:00:00Z", "{json:#}");
    assert_eq!(json[0]["firing_from"], "2025-03-04T11:15:00Z", "{json:#}");

    // The table for people, one alert.
    let table = replay(&["--alert", "OverdueCasesHigh"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("alert") && lines[0].contains("first pending"),
        "{table}"
    );
    for expected in [
        "OverdueCasesHigh",
        "2025-03-04T10:05:00Z",
        "2025-03-04T10:20:00Z",
        "2025-03-04T15:05:00Z",
        "ticket",
    ] {
        assert!(lines[1].contains(expected), "{table}");
    }
}

/// Two series every 5 minutes from 1970-01-01T00:00:00Z (promtool's clock), as sample values.
const FLAPPING: &[(&str, &[u32])] = &[
    (
        "a",
        &[
            0, 150, 150, 150, 150, 50, 150, 50, 50, 50, 150, 150, 50, 150, 150, 150, 150, 150, 0,
            0, 150, 0, 0, 0,
        ],
    ),
    (
        "b",
        &[
            0, 0, 0, 150, 150, 150, 150, 150, 150, 0, 0, 0, 150, 0, 150, 150, 150, 150, 0, 0, 0, 0,
            0, 0,
        ],
    ),
];

const FLAPPING_RULES: &str = "groups:
  - name: replay
    rules:
      - alert: Held
        expr: x > 100
        for: 15m
        keep_firing_for: 10m
        labels:
          severity: ticket
      - alert: Immediate
        expr: x > 100
        labels:
          severity: page
";

/// alert-replay's timeline of flapping series, checked by Prometheus' own rule engine: every
/// evaluation of `promtool test rules` over the same series must find firing exactly the alerts
/// the replay says were firing then (`firing from` ≤ t < `resolved at`).
#[test]
fn alert_replay_agrees_with_prometheus_rule_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let step = 300;
    let mut openmetrics = String::from("# TYPE x gauge\n");
    for (instance, values) in FLAPPING {
        for (k, value) in values.iter().enumerate() {
            openmetrics.push_str(&format!(
                "x{{instance=\"{instance}\"}} {value} {}\n",
                k * step
            ));
        }
    }
    openmetrics.push_str("# EOF\n");
    let om = dir.path().join("x.om");
    std::fs::write(&om, openmetrics).unwrap();
    let tsdb = dir.path().join("tsdb");
    create_blocks(&om, &tsdb);
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, FLAPPING_RULES).unwrap();
    let (prometheus, url) = start_prometheus(dir.path(), &tsdb);
    let evaluations = FLAPPING[0].1.len() + 4;
    let to = jiff::Timestamp::from_second(((evaluations - 1) * step) as i64)
        .unwrap()
        .to_string();
    let output = backlogd(&[
        "alert-replay",
        "--prometheus",
        &url,
        "--rules",
        rules.to_str().unwrap(),
        "--from",
        "1970-01-01T00:00:00Z",
        "--to",
        &to,
        "--step",
        "5m",
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}\n{}",
        stderr(&output),
        prometheus.log()
    );
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let seconds = |value: &serde_json::Value| {
        value
            .as_str()
            .map(|t| t.parse::<jiff::Timestamp>().unwrap().as_second())
    };
    // Both alerts fired on both series, `Held` in fewer, longer episodes than `Immediate`.
    let count = |alert: &str| rows.iter().filter(|r| r["alert"] == alert).count();
    assert!(
        count("Held") >= 2 && count("Immediate") > count("Held"),
        "{rows:#?}"
    );

    let mut test = String::from(
        "rule_files:\n  - rules.yml\nevaluation_interval: 5m\ntests:\n  - interval: 5m\n    input_series:\n",
    );
    for (instance, values) in FLAPPING {
        let values: Vec<String> = values.iter().map(u32::to_string).collect();
        test.push_str(&format!(
            "      - series: 'x{{instance=\"{instance}\"}}'\n        values: '{}'\n",
            values.join(" ")
        ));
    }
    test.push_str("    alert_rule_test:\n");
    for k in 0..evaluations {
        let at = (k * step) as i64;
        for (alert, severity) in [("Held", "ticket"), ("Immediate", "page")] {
            test.push_str(&format!(
                "      - eval_time: {}m\n        alertname: {alert}\n        exp_alerts:\n",
                k * 5
            ));
            let mut firing = 0;
            for row in rows.iter().filter(|r| r["alert"] == alert) {
                let from = seconds(&row["firing_from"]).unwrap();
                let until = seconds(&row["resolved_at"]).unwrap_or(i64::MAX);
                if from <= at && at < until {
                    firing += 1;
                    test.push_str(&format!(
                        "          - exp_labels:\n              instance: {}\n              severity: {severity}\n",
                        row["labels"]["instance"].as_str().unwrap()
                    ));
                }
            }
            if firing == 0 {
                test.push_str("          []\n");
            }
        }
    }
    let test_file = dir.path().join("replay.test.yml");
    std::fs::write(&test_file, &test).unwrap();
    let checked = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&test_file)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "Prometheus' rule engine disagrees with alert-replay:\n{}{}\nreplay: {rows:#?}",
        String::from_utf8_lossy(&checked.stdout),
        stderr(&checked)
    );
}

/// Seconds since the epoch of an RFC 3339 instant.
fn epoch(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_second()
}

const DAY: i64 = 86_400;

/// `query_range` of a (URL-encoded) single-series query on the Prometheus at `url`: (time, value).
fn query_range(url: &str, query: &str, start: i64, end: i64, step: i64) -> Vec<(i64, f64)> {
    let addr = url.trim_start_matches("http://").parse().unwrap();
    let path = format!("/api/v1/query_range?query={query}&start={start}&end={end}&step={step}");
    let response = harness::request(addr, "GET", &path, &[], b"").unwrap();
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    body["data"]["result"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("{query}: {body}"))
        .iter()
        .map(|p| {
            (
                p[0].as_f64().unwrap() as i64,
                p[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// The seed story, shortened (docs/story.md, scripts/story): the `taskforce` story compressed into
/// one year (config/scenarios/taskforce-year.toml) at scale 0.1, backfilled, built into blocks,
/// served by Prometheus and replayed with the shipped rules. Each of the story's problems raises its
/// alert within a stated delay of its turn, and RenewedBacklog is silent while the backlog shrinks.
/// Turns, from the scenario's parameters (days from its start) and the metric values:
/// - the task force starts joining (staff "task force", join_day 14): MentorOverloaded within 14
///   days (newcomers join about one a day; one mentor at this scale);
/// - the first newcomer who finds every mentor full (`max_mentees = 10`) and stays unmentored a
///   whole day (from Prometheus): NewStaffUnmentored within 2 days of the start of that day;
/// - audits run from day 0 and fail under pressure (pass share 0.55, norm 0.8): QualityBelowNorm
///   within 7 days (min_quality_audits = 10 of 25 a week must be in the window);
/// - the last audit (until_day 100): QualityMeasurementStopped within max_audit_gap (14 days) + 2;
/// - day 28, the first instant a 28-day pace leaves out the initial stock (the stock grows until
///   about day 120): BacklogTargetUnreachable within 7 days, and before the stated date (day 180);
/// - the open cases' lowest day after the first five weeks (daily `sum(backlogd_cases_open)`):
///   RenewedBacklog within 28 days (28-day windows and week-over-week averages), and never between
///   the peak and that day; BacklogForming, its early warning, within 21 days (two week-over-week
///   rises of the weekly average of open cases, and more in than out over 28 and 7 days), before
///   RenewedBacklog, and never between the peak and the low either.
#[test]
fn the_shortened_story_raises_each_alert_within_its_delay_of_the_turn() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = root.join("config/scenarios/taskforce-year.toml");
    let (from, to) = ("2023-09-04", "2024-09-03");
    let start = epoch("2023-09-04T00:00:00Z");
    let events = dir.path().join("story.ndjson");
    simulate(scenario.to_str().unwrap(), "0.1", from, to, &events);
    // The shipped configuration with the story's stated clearance date (day 180) as the target.
    let shipped = std::fs::read_to_string(shipped_config()).unwrap();
    let config: String = shipped
        .lines()
        .map(|line| {
            if line.starts_with("clear_by = ") {
                "clear_by = \"2024-03-02T00:00:00Z\"".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config_path = dir.path().join("backlogd.toml");
    std::fs::write(&config_path, config).unwrap();
    let openmetrics = dir.path().join("story.om");
    let output = backlogd(&[
        "backfill",
        "--config",
        config_path.to_str().unwrap(),
        "--step",
        "1h",
        "--label",
        "job=backlogd",
        "--label",
        "instance=127.0.0.1:9723",
        "--out",
        openmetrics.to_str().unwrap(),
        events.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let tsdb = dir.path().join("tsdb");
    create_blocks(&openmetrics, &tsdb);
    std::fs::remove_file(&openmetrics).unwrap();
    let (prometheus, url) = start_prometheus(dir.path(), &tsdb);

    let rules = root.join("config/prometheus/backlogd-rules.yml");
    let output = backlogd(&[
        "alert-replay",
        "--prometheus",
        &url,
        "--rules",
        rules.to_str().unwrap(),
        "--from",
        "2023-09-05T00:00:00Z",
        "--to",
        "2024-09-03T00:00:00Z",
        "--step",
        "1h",
        "--label",
        "source=data",
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}\n{}",
        stderr(&output),
        prometheus.log()
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // (alert, firing from, resolved at or i64::MAX) for every alert that fired.
    let firings: Vec<(String, i64, i64)> = json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|row| {
            let firing = row["firing_from"].as_str()?;
            let resolved = row["resolved_at"].as_str().map_or(i64::MAX, epoch);
            Some((row["alert"].as_str()?.to_owned(), epoch(firing), resolved))
        })
        .collect();
    // The first firing of `alert` at or after `turn`, or already firing at `turn`.
    let fired = |alert: &str, turn: i64| {
        firings
            .iter()
            .filter(|(name, begin, resolved)| name == alert && (*begin >= turn || *resolved > turn))
            .map(|(_, begin, _)| *begin)
            .min()
    };
    let within = |alert: &str, turn_day: i64, max_days: i64| {
        let turn = start + turn_day * DAY;
        let first = fired(alert, turn)
            .unwrap_or_else(|| panic!("{alert} never fired after day {turn_day}: {json:#}"));
        let delay = first - turn;
        assert!(
            delay <= max_days * DAY,
            "{alert} fired {:.1} days after its turn (day {turn_day}), more than {max_days}",
            delay as f64 / DAY as f64
        );
        first
    };
    within("MentorOverloaded", 14, 14);
    // Unmentored newcomers: each mentor takes ten at most (`max_mentees`), so from the eleventh
    // hire on newcomers wait for a mentor. The turn is the first hour with one unmentored, from
    // Prometheus; the alert needs a whole day of it (min_over_time 1d) plus its `for`.
    // A joiner is unmentored for the hours until their mentor.assigned the same day; the turn is
    // the first hour from which one stays unmentored for a whole day.
    let hourly: Vec<(i64, bool)> = query_range(
        &url,
        "sum%28backlogd_mentees_unmentored%29",
        start + DAY,
        start + 120 * DAY,
        3600,
    )
    .into_iter()
    .map(|(t, v)| (t, v != 0.0))
    .collect();
    let first_unmentored = hourly
        .windows(24)
        .find(|day| day.iter().all(|&(_, unmentored)| unmentored))
        .map(|day| day[0].0)
        .unwrap_or_else(|| panic!("no newcomer was ever unmentored for a day: {hourly:?}"));
    let alert = fired("NewStaffUnmentored", first_unmentored).unwrap_or_else(|| {
        panic!("NewStaffUnmentored never fired after {first_unmentored}: {json:#}")
    });
    assert!(
        alert - first_unmentored <= 2 * DAY,
        "NewStaffUnmentored fired {:.1} days after a newcomer began a day unmentored",
        (alert - first_unmentored) as f64 / DAY as f64
    );
    within("QualityBelowNorm", 0, 7);
    within("QualityMeasurementStopped", 100, 16);
    let unreachable = within("BacklogTargetUnreachable", 28, 7);
    assert!(unreachable < start + 180 * DAY);

    // The open cases per day, from Prometheus: the peak after the first five weeks, then the low.
    let curve = query_range(
        &url,
        "sum%28backlogd_cases_open%29",
        start + 35 * DAY,
        start + 364 * DAY,
        86_400,
    );
    let low = curve
        .iter()
        .copied()
        .fold((0, f64::MAX), |a, b| if b.1 < a.1 { b } else { a });
    let peak = curve
        .iter()
        .copied()
        .filter(|p| p.0 <= low.0)
        .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
    assert!(
        low.1 < peak.1 * 0.9 && curve.last().unwrap().1 > low.1 * 1.2,
        "the story's backlog must shrink and grow again: peak {peak:?}, low {low:?}"
    );
    let renewed = fired("RenewedBacklog", low.0).expect("RenewedBacklog never fired");
    assert!(
        renewed - low.0 <= 28 * DAY,
        "RenewedBacklog fired {:.1} days after the low on day {}",
        (renewed - low.0) as f64 / DAY as f64,
        (low.0 - start) / DAY
    );
    // While the backlog shrinks (peak to low) no RenewedBacklog firing starts, and one that started
    // while it still grew resolves within 8 days of the peak: the rule compares 7-day averages and
    // keeps firing for a day, so it learns of the turn a week late.
    // `alert` starts no firing between the peak and the low, and one that started before the peak
    // resolves within `allowance` days of it.
    let silent_while_shrinking = |alert: &str, allowance: i64| {
        let shrinking: Vec<_> = firings
            .iter()
            .filter(|(name, begin, resolved)| {
                name == alert
                    && *begin < low.0
                    && (*begin > peak.0 || *resolved > peak.0 + allowance * DAY)
            })
            .collect();
        assert!(
            shrinking.is_empty(),
            "{alert} fired while the backlog shrank (day {} to {}): {shrinking:?}",
            (peak.0 - start) / DAY,
            (low.0 - start) / DAY
        );
    };
    silent_while_shrinking("RenewedBacklog", 8);

    // BacklogForming, the early warning of the same turn: within 21 days of the low, and before
    // RenewedBacklog.
    let forming = fired("BacklogForming", low.0).expect("BacklogForming never fired");
    assert!(
        forming - low.0 <= 21 * DAY && forming < renewed,
        "BacklogForming fired {:.1} days after the low on day {}, RenewedBacklog {:.1} days after",
        (forming - low.0) as f64 / DAY as f64,
        (low.0 - start) / DAY,
        (renewed - low.0) as f64 / DAY as f64
    );
    // Nor does it fire while the backlog shrinks: no firing starts between the peak and the low,
    // and one that started while the backlog still grew resolves within 10 days of the peak (its
    // weekly averages learn of the turn up to a week late, and it keeps firing for 3 days).
    silent_while_shrinking("BacklogForming", 10);
}

/// The sum of the samples of `family` at `second` in backfilled OpenMetrics text whose labels
/// include every pair of `labels`.
fn om_sum(openmetrics: &str, family: &str, labels: &[&str], second: i64) -> f64 {
    let stamp = format!(" {second}");
    openmetrics
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.ends_with(&stamp))
        .filter(|l| labels.iter().all(|pair| l.contains(pair)))
        .map(|l| l.split(' ').nth_back(1).unwrap().parse::<f64>().unwrap())
        .sum()
}

/// `backlogd backfill --store`: the daemon started on the store answers `GET /v1/history` with a
/// row for every midnight the events cover, each equal to what the OpenMetrics backfill of the same
/// events shows at that midnight, keeps adding rows up to now, and its report draws them; a store
/// that exists is refused.
#[test]
fn a_backfilled_store_gives_the_daemon_the_history_of_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    simulate("taskforce", "0.05", "2024-01-01", "2024-03-01", &events);
    let store = dir.path().join("store");
    let seed = |store: &Path, events: &Path| backfill_store(&shipped_config(), store, events);
    let seeded = seed(&store, &events);
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    assert!(
        stderr(&seeded).contains("days of history"),
        "{}",
        stderr(&seeded)
    );
    let segments = std::fs::read_dir(store.join("log"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name() != "LOCK")
                .count()
        })
        .unwrap_or(0);
    assert_eq!(segments, 0, "no log segments are written");
    let again = seed(&store, &events);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already holds a store (snapshots.sqlite)"),
        "{}",
        stderr(&again)
    );
    // A store is never ahead of the daemon's clock: an event from tomorrow is refused by line.
    let tomorrow = dir.path().join("tomorrow.ndjson");
    let when = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    std::fs::write(&tomorrow, format!("{}\n", event("t1", &when.to_string()))).unwrap();
    let ahead = seed(&dir.path().join("ahead"), &tomorrow);
    assert_eq!(ahead.status.code(), Some(1), "{}", stderr(&ahead));
    assert!(
        stderr(&ahead).contains("tomorrow.ndjson:1: event time")
            && stderr(&ahead).contains("ahead of the daemon's clock"),
        "{}",
        stderr(&ahead)
    );
    assert!(!dir.path().join("ahead").exists(), "nothing written");
    let openmetrics = dir.path().join("history.om");
    let output = backlogd(&[
        "backfill",
        "--config",
        &config_arg(),
        "--step",
        "1h",
        "--out",
        openmetrics.to_str().unwrap(),
        events.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let openmetrics = std::fs::read_to_string(&openmetrics).unwrap();

    let daemon = Daemon::start(&store, &[]);
    let response = daemon.get("/v1/history?from=2024-01-01&to=2024-02-28");
    assert_eq!(response.status, 200, "{}", response.text());
    let history: backlogd::api::History = response.decode();
    let days = &history.days;
    assert_eq!(
        days.len(),
        59,
        "a row for each day from 2024-01-01 to 2024-02-28"
    );
    let mut compared = 0;
    for day in days {
        // Midnight in Europe/Amsterdam is a whole UTC hour, so an hourly step falls on it.
        let at = epoch(&day.at.to_string());
        let track = &day.tracks["asylum"];
        let checks = [
            ("open", track.open, "backlogd_cases_open", vec![]),
            ("overdue", track.overdue, "backlogd_cases_overdue", vec![]),
        ];
        for (field, value, family, labels) in checks {
            let expected = om_sum(&openmetrics, family, &labels, at);
            assert_eq!(
                value as f64, expected,
                "{} {field}: history against the backfill's {family} at {at}",
                day.day
            );
        }
        for (field, value, experienced) in [
            ("experienced", day.employees.experienced, "true"),
            ("inexperienced", day.employees.inexperienced, "false"),
        ] {
            let pair = format!("experienced=\"{experienced}\"");
            let expected = om_sum(&openmetrics, "backlogd_employees", &[pair.as_str()], at);
            assert_eq!(value as f64, expected, "{} employees {field}", day.day);
        }
        compared += 1;
    }
    assert!(
        days.iter().any(|d| d.tracks["asylum"].open > 0),
        "the story has open cases"
    );
    assert_eq!(compared, 59);
    // Live from there on: a row for every midnight since, up to the last one before now.
    let all: backlogd::api::History = daemon.get("/v1/history").decode();
    let last = all.days.last().expect("a row").clone();
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap())
        .date();
    let yesterday = today.yesterday().unwrap();
    // Or the day before, when the test runs across a midnight before the daemon's tick.
    let before = yesterday.yesterday().unwrap();
    let last_day = last.day;
    assert!(
        [yesterday, before].contains(&last_day),
        "the last row is {last_day}, not {yesterday}"
    );
    // The report draws the backfilled days: the open-cases line has one value a day.
    let report = daemon.get("/report?from=2024-01-01&to=2024-02-28").text();
    let open_line = report
        .split("data-series=\"open\" data-values=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no open line in the report"));
    let drawn: Vec<f64> = open_line.split(',').map(|v| v.parse().unwrap()).collect();
    let stored: Vec<f64> = days
        .iter()
        .map(|d| d.tracks["asylum"].open as f64)
        .collect();
    assert_eq!(drawn, stored);
    daemon.stop();
}

/// The example events in time order (the file groups them by story, not by time).
fn example_events_in_time_order(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/taskforce-autumn.ndjson"),
    )
    .unwrap();
    let mut lines: Vec<(i64, &str)> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            (epoch(event["time"].as_str().unwrap()), line)
        })
        .collect();
    lines.sort_by_key(|&(time, _)| time);
    let path = dir.join("sorted.ndjson");
    let body: String = lines.iter().map(|(_, line)| format!("{line}\n")).collect();
    std::fs::write(&path, body).unwrap();
    path
}

/// The history days of a daemon up to `to`.
fn history_days(daemon: &Daemon, to: &str) -> serde_json::Value {
    let response = daemon.get(&format!("/v1/history?to={to}"));
    assert_eq!(response.status, 200, "{}", response.text());
    response.json().expect("JSON")["days"].clone()
}

/// A row carries what it counted (issue 20, defect 2): a reload that reorders the due-soon
/// windows, adds one and changes `forecast.new_staff_weeks` used to relabel the past (the 28-day
/// count under the 7-day label), and to describe old rows with the new weeks. And a store of
/// snapshot format 7 (tests/fixtures/store-v7, rows without their windows) still loads, with the
/// rows today's code writes for the same events.
#[test]
fn history_rows_keep_their_windows_across_reloads_restarts_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let events = example_events_in_time_order(dir.path());
    let last_day = "2026-10-07";
    let config = dir.path().join("backlogd.toml");
    let shipped = std::fs::read_to_string(shipped_config()).unwrap();
    std::fs::write(&config, &shipped).unwrap();

    let fresh = dir.path().join("fresh");
    let seeded = backfill_store(&config, &fresh, &events);
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    let daemon = Daemon::start_with_config(&config, &fresh, &[]);
    let expected = history_days(&daemon, last_day);
    daemon.stop();
    let rows = expected.as_array().unwrap();
    assert_eq!(rows.len(), 37, "{expected:#}");
    assert!(
        rows.iter().any(|row| {
            let due = &row["tracks"]["asylum"]["due_soon"];
            due["P7D"] != due["P28D"]
        }),
        "the windows must count differently for the test to see a swap"
    );
    for row in rows {
        assert_eq!(row["decision_window"], "P28D");
        assert_eq!(row["new_staff_weeks"], 12);
    }

    let old = dir.path().join("old");
    std::fs::create_dir(&old).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v7/snapshots.sqlite"),
        old.join("snapshots.sqlite"),
    )
    .unwrap();
    let daemon = Daemon::start_with_config(&config, &old, &[]);
    assert_eq!(
        history_days(&daemon, last_day),
        expected,
        "the format 7 store"
    );

    let reordered = shipped.replace(
        "due_soon = [\"P7D\", \"P28D\"]",
        "due_soon = [\"P28D\", \"P14D\", \"P7D\"]",
    );
    assert_ne!(reordered, shipped);
    let reordered = reordered.replace("new_staff_weeks = 12", "new_staff_weeks = 8");
    std::fs::write(&config, &reordered).unwrap();
    let reload = daemon.request("POST", "/-/reload", &[], b"");
    assert_eq!(reload.status, 200, "{}", reload.text());
    let answer = daemon.get("/v1/history").json().expect("JSON");
    assert_eq!(answer["new_staff_weeks"], 8, "the settings now in force");
    assert_eq!(
        history_days(&daemon, last_day),
        expected,
        "after the reload"
    );
    daemon.kill();
    let daemon = Daemon::start_with_config(&config, &old, &[]);
    assert_eq!(
        history_days(&daemon, last_day),
        expected,
        "after a crash and recovery"
    );
    daemon.stop();
}

/// Issue 24, finding 4: a daemon started on the directory while `backfill --store` still runs used
/// to start empty, and its next snapshot buried the seeded state. The backfill now holds the
/// store's lock from its start until its snapshot is durable, and the daemon takes that lock
/// before it reads a snapshot: started meanwhile, it refuses by name; started after, it serves the
/// seeded state. The backfill reads its events from a FIFO the test holds open, so it is still
/// running when the daemon starts (no timing).
#[test]
fn a_daemon_started_during_a_backfill_refuses_instead_of_losing_it() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fifo = dir.path().join("events.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let backfill = Command::new(harness::BINARY)
        .args(["backfill", "--config", &config_arg(), "--store"])
        .arg(&store)
        .arg(&fifo)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Opening the FIFO for writing waits until the backfill opened it for reading: from then on
    // it holds the lock (taken before any event file is opened).
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let (code, stderr_text) = harness::run_expecting_exit(&shipped_config(), &store, &[]);
    assert!(
        code.is_some_and(|c| c != 0) && stderr_text.contains("is locked by another process"),
        "a daemon on a store being backfilled must refuse, naming the lock ({code:?}):\n{stderr_text}"
    );
    let registered = 25;
    for n in 0..registered {
        writeln!(
            writer,
            "{}",
            event(&format!("seed-{n}"), "2026-01-05T10:00:00Z")
        )
        .unwrap();
    }
    drop(writer);
    let output = backfill.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let daemon = Daemon::start(&store, &[]);
    assert_eq!(
        daemon.metric(r#"backlogd_cases_registered_total{track="asylum"}"#),
        Some(f64::from(registered)),
        "the daemon started after the backfill serves the seeded state"
    );
    daemon.stop();
    // And a backfill cannot start on a store a daemon holds.
    let daemon = Daemon::start(&store, &[]);
    let events = dir.path().join("more.ndjson");
    std::fs::write(&events, event("late-1", "2026-01-06T10:00:00Z") + "\n").unwrap();
    let refused = backfill_store(&shipped_config(), &store, &events);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("is locked by another process"),
        "{}",
        stderr(&refused)
    );
    daemon.stop();
}

/// `backlogd import` (a case table and an employee table) then `backfill --store` gives the daemon
/// the same daily history and the same state as the equivalent events written by hand
/// (config/examples/import/equivalent.ndjson); a bad row is named and the rest converted.
#[test]
fn an_imported_case_table_gives_the_history_of_the_same_events_written_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/import");
    let imported = dir.path().join("imported.ndjson");
    let output = backlogd(&[
        "import",
        "--mapping",
        examples.join("mapping.toml").to_str().unwrap(),
        "--cases",
        examples.join("cases.csv").to_str().unwrap(),
        "--employees",
        examples.join("employees.csv").to_str().unwrap(),
        "--out",
        imported.to_str().unwrap(),
        "--as-of",
        "2026-12-01T00:00:00Z",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("cases.csv:8: column \"ontvangen\"")
            && message.contains("7 cases and 3 employees read, 1 rows skipped, 26 events written"),
        "{message}"
    );
    let mut histories = Vec::new();
    let mut states = Vec::new();
    for (name, events) in [
        ("imported", imported.clone()),
        ("by-hand", examples.join("equivalent.ndjson")),
    ] {
        let store = dir.path().join(name);
        let seeded = backfill_store(&shipped_config(), &store, &events);
        assert!(seeded.status.success(), "{name}: {}", stderr(&seeded));
        assert!(
            stderr(&seeded).contains("0 rejected"),
            "{name}: {}",
            stderr(&seeded)
        );
        let daemon = Daemon::start(&store, &[]);
        histories.push(history_days(&daemon, "2026-11-30"));
        let metrics = daemon.metrics();
        states.push(
            metrics
                .lines()
                .filter(|line| {
                    line.starts_with("backlogd_cases_")
                        || line.starts_with("backlogd_employees")
                        || line.starts_with("backlogd_mentees")
                        || line.starts_with("backlogd_decisions")
                })
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        );
        daemon.stop();
    }
    assert!(
        histories[0].as_array().is_some_and(|days| days.len() > 100),
        "{:#}",
        histories[0]
    );
    assert_eq!(histories[0], histories[1], "the daily history");
    assert!(states[0].len() > 20, "{:?}", states[0]);
    assert_eq!(states[0], states[1], "the state");
}
