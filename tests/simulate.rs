//! `backlogd simulate` end to end: the real binary generates the `taskforce` scenario and posts it
//! (`--url`) to the real daemon (temporary store, port 0); the qualitative picture of the README's opening
//! paragraph is then asserted on /metrics values (and, where "as of a past instant" matters, on the
//! `/v1/cases/overdue` drill-down).
//!
//! The daemon judges time-driven figures (overdue, rolling flows, the forecast) against its own wall
//! clock, so every history here ends ten minutes before the real "now", computed at test time:
//! - `taskforce_history_in_phases`: two years ending now, posted in phases with `--after`/`--to`
//!   and scraped between phases. The overdue gauge at a checkpoint counts the open cases whose
//!   deadline lies before today; the drill-down's deadlines give the overdue count *as of* the
//!   checkpoint (cases with a deadline before it).
//! - `taskforce_forecast_during_the_task_force`: the first 300 days ending now, so the forecast
//!   window (P28D) covers the task force at work; the daemon's target is the scenario's stated
//!   clear-by date.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backlogd::simulate::time::{DAY, parse_instant, rfc3339};

const BINARY: &str = env!("CARGO_BIN_EXE_backlogd");
const SEED: &str = "7";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The real daemon on port 0 with its store in a temporary directory. Killed on drop.
struct Daemon {
    addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `backlogd run` on the shipped configuration with the target's `clear_by` replaced.
    fn start(clear_by: i64) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let shipped = std::fs::read_to_string(manifest_dir().join("config/backlogd.toml")).unwrap();
        let config: String = shipped
            .lines()
            .map(|line| {
                if line.starts_with("clear_by = ") {
                    format!("clear_by = \"{}\"", rfc3339(clear_by))
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config_path = dir.path().join("backlogd.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(BINARY)
            .args(["run", "--config"])
            .arg(&config_path)
            .env("BACKLOGD__SERVER__LISTEN", "127.0.0.1:0")
            .env("BACKLOGD__STORE__PATH", dir.path().join("store"))
            .env("BACKLOGD__LOG__LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the backlogd binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("backlogd listening on http://") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr: SocketAddr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the daemon prints its address")
            .parse()
            .unwrap();
        let daemon = Daemon {
            addr,
            child,
            _dir: dir,
        };
        let started = Instant::now();
        while daemon.get("/readyz").0 != 200 {
            assert!(started.elapsed() < Duration::from_secs(20), "not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A plain HTTP/1.1 GET over `std::net`; returns (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        let Ok(mut stream) = TcpStream::connect(self.addr) else {
            return (0, String::new());
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (status, body)
    }

    fn metrics(&self) -> Metrics {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "{body}");
        Metrics(body)
    }

    /// Open cases overdue *as of* `at`: those the drill-down lists with a deadline before `at`.
    /// Each list is ordered by deadline, most overdue first, so a count below the limit is exact;
    /// asking per location (the locations the metrics name) keeps every list below it.
    fn overdue_as_of(&self, at: i64, metrics: &Metrics) -> usize {
        let mut total = 0;
        for location in metrics.label_values("backlogd_cases_open", "location") {
            let path = format!("/v1/cases/overdue?limit=10000&location={location}");
            let (status, body) = self.get(&path);
            assert_eq!(status, 200, "{body}");
            let cases: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
            let count = cases
                .iter()
                .filter(|c| parse_instant(c["deadline"].as_str().unwrap()).unwrap() < at)
                .count();
            assert!(count < 10_000, "the drill-down limit truncates the count");
            total += count;
        }
        total
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        let tail = &rest[size..];
        body = tail.strip_prefix("\r\n").unwrap_or(tail);
    }
    out
}

/// The Prometheus text exposition of one scrape.
struct Metrics(String);

impl Metrics {
    /// Values of every series of `name` whose labels contain `labels` (e.g. `window="P28D"`).
    fn values(&self, name: &str, labels: &str) -> Vec<f64> {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let bare = series.split('{').next()?;
                (bare == name && series.contains(labels)).then(|| match value {
                    "+Inf" | "inf" => f64::INFINITY,
                    "NaN" | "nan" => f64::NAN,
                    v => v.parse().unwrap(),
                })
            })
            .collect()
    }

    /// The values of label `label` over the series of `name`.
    fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let key = format!("{label}=\"");
        self.0
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter_map(|l| {
                let start = l.find(&key)? + key.len();
                let end = start + l[start..].find('"')?;
                Some(l[start..end].to_owned())
            })
            .collect()
    }

    fn sum(&self, name: &str, labels: &str) -> f64 {
        let values = self.values(name, labels);
        assert!(!values.is_empty(), "no series {name}{{{labels}}}");
        values.iter().sum()
    }

    fn one(&self, name: &str, labels: &str) -> f64 {
        let values = self.values(name, labels);
        assert_eq!(values.len(), 1, "one series {name}{{{labels}}}: {values:?}");
        values[0]
    }
}

/// Runs `backlogd simulate` (taskforce, the test seed) posting to `daemon`; asserts nothing was
/// rejected and returns how many events were accepted.
fn simulate(daemon: &Daemon, from: i64, after: Option<i64>, to: i64) -> u64 {
    let mut command = Command::new(BINARY);
    command
        .current_dir(manifest_dir())
        .args(["simulate", "--scenario", "taskforce", "--seed", SEED])
        .args(["--from", &rfc3339(from), "--to", &rfc3339(to)])
        .args(["--url", &daemon.url(), "--batch", "2000"]);
    if let Some(after) = after {
        command.args(["--after", &rfc3339(after)]);
    }
    let output = command.output().expect("backlogd simulate runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "backlogd simulate failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = stdout.lines().last().unwrap_or("");
    assert!(
        summary.ends_with("duplicates 0, rejected 0"),
        "rejections:\n{stdout}"
    );
    summary
        .strip_prefix("accepted ")
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected summary {summary:?}"))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn taskforce() -> backlogd::simulate::Scenario {
    backlogd::simulate::Scenario::from_toml(
        "taskforce",
        &std::fs::read_to_string(manifest_dir().join("config/scenarios/taskforce.toml")).unwrap(),
    )
    .unwrap()
}

fn clear_by_days() -> i64 {
    i64::from(taskforce().target.clear_by_days)
}

/// The date of the latest `target.announced` the simulator sent up to `to` (announcements are at
/// noon of their day), or the configured `target` when there was none.
fn announced(from: i64, to: i64, target: i64) -> i64 {
    taskforce()
        .target
        .announcements
        .iter()
        .filter(|a| from + i64::from(a.day) * DAY + 12 * 3600 <= to)
        .map(|a| from + i64::from(a.clear_by_days) * DAY)
        .next_back()
        .unwrap_or(target)
}

#[derive(Debug)]
struct Checkpoint {
    /// Read through `Debug` in the failure reports.
    #[allow(dead_code)]
    day: i64,
    overdue_gauge: f64,
    overdue_as_of: usize,
    open: f64,
    max_mentees: f64,
    employees_overloaded: f64,
    decisions_overdue: f64,
}

#[test]
fn taskforce_history_in_phases() {
    let started = Instant::now();
    let to = now() - 600;
    let from = to - 730 * DAY;
    let target = from + clear_by_days() * DAY;
    let daemon = Daemon::start(target);

    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    let mut previous = None;
    let mut accepted = 0;
    for day in [5, 90, 120, 480, 730] {
        let until = if day == 730 { to } else { from + day * DAY };
        accepted += simulate(&daemon, from, previous, until);
        previous = Some(until);
        let m = daemon.metrics();
        checkpoints.push(Checkpoint {
            day,
            overdue_gauge: m.sum("backlogd_cases_overdue", ""),
            overdue_as_of: daemon.overdue_as_of(until, &m),
            open: m.sum("backlogd_cases_open", ""),
            max_mentees: m.one("backlogd_mentor_max_mentees", ""),
            employees_overloaded: m.sum("backlogd_employees_overloaded", ""),
            decisions_overdue: m.sum("backlogd_decisions_overdue_total", ""),
        });
    }
    let m = daemon.metrics();
    let report = format!("{checkpoints:#?}");
    let [d5, d90, d120, d480, end] = &checkpoints[..] else {
        unreachable!()
    };

    // Nothing rejected over the whole history.
    assert!(accepted > 300_000, "{accepted} events");
    assert_eq!(m.sum("backlogd_events_rejected_total", ""), 0.0);
    assert_eq!(m.sum("backlogd_events_applied_total", ""), accepted as f64);

    // Mentors overloaded at the start of the task force, relieved once more mentors are added.
    assert!(d90.max_mentees >= 10.0, "{report}");
    assert!(d480.max_mentees < d90.max_mentees, "{report}");
    // Under full pressure employees hold more cases than workforce.max_open_cases.
    assert!(d90.employees_overloaded > 0.0, "{report}");

    // Overdue cases rise for the first months, then fall, then a new backlog forms: as of each
    // checkpoint (drill-down) ...
    assert!(
        d120.overdue_as_of as f64 > 1.1 * d5.overdue_as_of as f64,
        "{report}"
    );
    assert!(d480.overdue_as_of * 2 < d120.overdue_as_of, "{report}");
    assert!(end.overdue_as_of > 2 * d480.overdue_as_of, "{report}");
    // ... and in the gauge: at the checkpoints before day 548 every open case's deadline is
    // before today, so the gauge follows the stock of old cases; at the end it is today's picture.
    assert!(d120.overdue_gauge > d5.overdue_gauge, "{report}");
    assert!(d480.overdue_gauge < d120.overdue_gauge, "{report}");
    // (The two differ only by deadlines passing in the minutes between `to` and the scrape.)
    let as_of = end.overdue_as_of as f64;
    assert!(
        (end.overdue_gauge - as_of).abs() <= 0.01 * as_of + 5.0,
        "{report}"
    );
    assert!(end.open > d480.open, "{report}");
    // Most decisions of the task force period came after the deadline.
    assert!(
        d480.decisions_overdue - d90.decisions_overdue > 10_000.0,
        "{report}"
    );

    // The renewed backlog now: more in than out over four weeks, so no clearance in sight.
    let inflow = m.one("backlogd_inflow_rolling", "window=\"P28D\"");
    let outflow = m.one("backlogd_outflow_rolling", "window=\"P28D\"");
    assert!(inflow > 2.0 * outflow, "inflow {inflow}, outflow {outflow}");
    let projected = m.one("backlogd_backlog_projected_clearance_timestamp_seconds", "");
    // The target is the latest date announced (the configured one was the first).
    let target_gauge = m.one("backlogd_backlog_target_timestamp_seconds", "");
    assert_eq!(target_gauge, announced(from, to, target) as f64);
    assert!(projected.is_infinite() || projected > target_gauge);
    assert_eq!(
        m.one("backlogd_target_announcements_total", ""),
        taskforce().target.announcements.len() as f64
    );

    // Quality audits missed the norm (0.8) and then stopped: the last one is more than a year
    // before the last event, and none falls in the pass-ratio window.
    let passed = m.one("backlogd_quality_audits_total", "result=\"pass\"");
    let failed = m.one("backlogd_quality_audits_total", "result=\"fail\"");
    assert!(
        passed / (passed + failed) < 0.8,
        "pass {passed}, fail {failed}"
    );
    let last_audit = m.one("backlogd_quality_last_audit_timestamp_seconds", "");
    let last_event = m.one("backlogd_last_event_timestamp_seconds", "");
    assert!(last_event - last_audit > 365.0 * 86_400.0);
    assert!(last_audit < (from + 183 * DAY) as f64);
    assert!(m.one("backlogd_quality_pass_ratio", "").is_nan());

    // Pressure: hearings that could not go ahead, decisions by trainees, on the benefit of the
    // doubt and without additional investigation.
    let cancelled = m.sum("backlogd_hearings_total", "result=\"cancelled\"");
    let held = m.sum("backlogd_hearings_total", "result=\"held\"");
    assert!(cancelled > 0.2 * held, "cancelled {cancelled}, held {held}");
    assert!(m.sum("backlogd_decisions_by_inexperienced_total", "") > 1_000.0);
    assert!(m.sum("backlogd_decisions_benefit_of_doubt_total", "") > 1_000.0);
    assert!(m.sum("backlogd_decisions_without_investigation_total", "") > 5_000.0);
    assert!(m.sum("backlogd_cases_reopened_total", "") > 0.0);
    eprintln!(
        "taskforce history: {accepted} events in {:?}\n{report}",
        started.elapsed()
    );
}

#[test]
fn taskforce_forecast_during_the_task_force() {
    let to = now() - 600;
    let from = to - 300 * DAY;
    let target = from + clear_by_days() * DAY;
    let daemon = Daemon::start(target);
    let accepted = simulate(&daemon, from, None, to);
    let m = daemon.metrics();
    assert!(accepted > 100_000);
    assert_eq!(m.sum("backlogd_events_rejected_total", ""), 0.0);
    // The task force is clearing (more out than in over four weeks) ...
    let inflow = m.one("backlogd_inflow_rolling", "window=\"P28D\"");
    let outflow = m.one("backlogd_outflow_rolling", "window=\"P28D\"");
    assert!(outflow > inflow, "inflow {inflow}, outflow {outflow}");
    let clearance = m.one("backlogd_backlog_clearance_seconds", "");
    assert!(clearance.is_finite() && clearance > 0.0, "{clearance}");
    // ... but far too slowly for the stated date, two months away, and the later date announced
    // meanwhile was already behind the projection when it was made.
    let target_gauge = m.one("backlogd_backlog_target_timestamp_seconds", "");
    assert_eq!(target_gauge, announced(from, to, target) as f64);
    assert_eq!(
        m.one("backlogd_target_announced_behind_projection", ""),
        1.0
    );
    let projected = m.one("backlogd_backlog_projected_clearance_timestamp_seconds", "");
    assert!(projected.is_finite(), "{projected}");
    assert!(
        projected > target as f64 + 365.0 * 86_400.0,
        "projected {}, target {}",
        rfc3339(projected as i64),
        rfc3339(target)
    );
    // Mentors still have more mentees than mentoring.max_mentees; many open cases are overdue.
    assert!(m.one("backlogd_mentors_overloaded", "") > 0.0);
    assert!(m.sum("backlogd_cases_overdue", "") > 0.2 * m.sum("backlogd_cases_open", ""));
}

#[test]
fn simulate_writes_the_same_bytes_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str| -> PathBuf {
        let path = dir.path().join(name);
        let status = Command::new(BINARY)
            .current_dir(manifest_dir())
            .args(["simulate", "--scenario", "steady", "--seed", seed])
            .args(["--from", "2025-01-06", "--to", "2025-03-01", "--out"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        path
    };
    let a = std::fs::read(run("a.ndjson", "5")).unwrap();
    let b = std::fs::read(run("b.ndjson", "5")).unwrap();
    let c = std::fs::read(run("c.ndjson", "6")).unwrap();
    assert!(a.len() > 100_000);
    assert!(a == b, "same seed, same bytes");
    assert!(a != c, "another seed, other bytes");
    // Stdout carries the same stream.
    let stdout = Command::new(BINARY)
        .current_dir(manifest_dir())
        .args(["simulate", "--scenario", "steady", "--seed", "5"])
        .args(["--from", "2025-01-06", "--to", "2025-03-01"])
        .output()
        .unwrap();
    assert!(stdout.status.success());
    assert!(stdout.stdout == a);
}
