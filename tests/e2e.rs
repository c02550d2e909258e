//! End to end with the real servers: backlogd, Prometheus scraping it with the shipped rules (a copy
//! with `for:` shortened), Alertmanager sending to a webhook served by this test.
//!
//! Asserts that (a) every rule and every dashboard query evaluates without error in Prometheus,
//! (b) the alerts the scripted stream should raise arrive at the webhook with their labels and
//! annotations, and (c) an alert resolves once its condition clears (a reload raises a threshold).
//! Alertmanager's inhibitions are checked with alerts sent as Prometheus would send them: BacklogdDown
//! silences the data alerts of its instance, RenewedBacklog the BacklogForming ticket of its track.
//! Every process it starts is killed when the test ends, pass or fail.

#[allow(dead_code)]
#[path = "it/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(90);

/// A child process killed on drop, with its output in a log file for failure messages.
struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(name: &'static str, program: &str, args: &[String], dir: &Path) -> Server {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} ({e}): run ./scripts/test, which installs it")
            });
        Server { name, child, log }
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        format!(
            "--- {} (last lines) ---\n{}",
            self.name,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Prometheus on a free loopback port with `config` (YAML) and its storage in `dir`.
fn start_prometheus(dir: &Path, config: &str) -> (Server, SocketAddr) {
    let port = harness::free_port();
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config).unwrap();
    let server = Server::start(
        "prometheus",
        "prometheus",
        &[
            format!("--config.file={}", config_file.display()),
            format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        dir,
    );
    (server, format!("127.0.0.1:{port}").parse().unwrap())
}

fn get_json(addr: SocketAddr, path: &str) -> Option<Value> {
    let response = harness::request(addr, "GET", path, &[], b"").ok()?;
    (response.status == 200)
        .then(|| response.json().ok())
        .flatten()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs an instant query; returns Prometheus' whole answer (status "success" or "error").
fn query(prometheus: SocketAddr, expr: &str) -> Value {
    let path = format!("/api/v1/query?query={}", percent_encode(expr));
    match harness::request(prometheus, "GET", &path, &[], b"") {
        Ok(response) => response.json().unwrap_or(Value::Null),
        // Not listening yet: the callers poll until it answers.
        Err(_) => Value::Null,
    }
}

/// Polls `check` every 250 ms until it returns Some, or panics with `what` and the logs.
fn await_until<T>(
    what: &str,
    logs: &dyn Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "timed out waiting for {what}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A webhook receiver: every POST (its path and Alertmanager's JSON body) is kept.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

fn webhook() -> (SocketAddr, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_owned();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(json) = serde_json::from_slice(&body)
            {
                store.lock().unwrap().push((path, json));
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (addr, received)
}

/// Every `"expr"` string in a dashboard (panel queries and annotations), with Grafana's variables
/// substituted: the scrape job of this test, and any instance, track and location.
fn dashboard_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "expr"
                    && let Some(expr) = inner.as_str()
                    && !expr.trim().is_empty()
                {
                    out.push(
                        expr.replace("$job", "backlogd")
                            .replace("$instance", ".*")
                            .replace("$track", ".*")
                            .replace("$location", ".*")
                            .replace("$__rate_interval", "1m")
                            .replace("$__interval", "1m")
                            .replace("$__range", "1h"),
                    );
                } else {
                    dashboard_exprs(inner, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| dashboard_exprs(item, out)),
        _ => {}
    }
}

fn rfc3339(offset_seconds: i64) -> String {
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(offset_seconds))
        .unwrap()
        .round(jiff::Unit::Second)
        .unwrap()
        .to_string()
}

/// The scripted stream: a mentor with seven mentees and one newcomer without a mentor, an employee
/// with 21 open cases, three cases past their deadline, failing audits, and more cases in than out.
fn scripted_events() -> String {
    let now = rfc3339(-60);
    let mut events = Vec::new();
    let mut push = |kind: &str, data: Value| {
        let id = format!("e2e-{}", events.len());
        events.push(
            serde_json::json!({"id": id, "type": kind, "time": now, "data": data}).to_string(),
        );
    };
    push(
        "employee.joined",
        serde_json::json!({"employee": "mentor-1", "role": "mentor", "experienced": true}),
    );
    push(
        "employee.joined",
        serde_json::json!({"employee": "busy-1", "role": "caseworker", "experienced": true}),
    );
    for i in 0..8 {
        push(
            "employee.joined",
            serde_json::json!({"employee": format!("new-{i}"), "role": "caseworker", "experienced": false, "contract": "temporary"}),
        );
    }
    for i in 0..7 {
        push(
            "mentor.assigned",
            serde_json::json!({"mentor": "mentor-1", "mentee": format!("new-{i}")}),
        );
    }
    for i in 0..21 {
        push(
            "case.registered",
            serde_json::json!({"case": format!("B-{i}"), "track": "asylum"}),
        );
        push(
            "case.assigned",
            serde_json::json!({"case": format!("B-{i}"), "employee": "busy-1"}),
        );
    }
    for i in 0..3 {
        push(
            "case.registered",
            serde_json::json!({"case": format!("L-{i}"), "track": "asylum", "deadline": rfc3339(-86_400 * 20)}),
        );
    }
    // 12 audits (min_quality_audits is 10), 3 of them passed.
    for n in 0..12 {
        push("quality.audit", serde_json::json!({"passed": n < 3}));
    }
    events.join("\n")
}

#[test]
fn alerts_fire_and_resolve_and_every_query_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    // backlogd on a config file whose overdue threshold the test can raise by reload.
    let shipped = std::fs::read_to_string(root.join("config/backlogd.toml")).unwrap();
    assert!(shipped.contains("max_overdue_cases = 100"));
    let config = dir.path().join("backlogd.toml");
    std::fs::write(
        &config,
        shipped.replace("max_overdue_cases = 100", "max_overdue_cases = 1"),
    )
    .unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let daemon = harness::Daemon::start_with_config(&config, &store, &[]);
    let events = scripted_events();
    daemon.post_ok(&events, events.lines().count() as u64);

    // A copy of the rules with every `for:` and `keep_firing_for:` shortened, so alerts fire and
    // resolve within seconds.
    let rules = std::fs::read_to_string(root.join("config/prometheus/backlogd-rules.yml"))
        .expect("the shipped rules exist");
    let fast_rules: String = rules
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("for:") {
                format!("{}for: 0s", &line[..line.len() - trimmed.len()])
            } else if trimmed.starts_with("keep_firing_for:") {
                format!("{}keep_firing_for: 0s", &line[..line.len() - trimmed.len()])
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let rules_copy = dir.path().join("rules.yml");
    std::fs::write(&rules_copy, fast_rules).unwrap();

    // Alertmanager on the shipped routing (config/alertmanager/backlogd.yml), with the receivers
    // pointed at this test's webhook, its waits shortened, and working hours set to a minute far
    // from now, so that tickets are held.
    let (hook, received) = webhook();
    let alertmanager_port = harness::free_port();
    let alertmanager_config = dir.path().join("alertmanager.yml");
    let shipped_routing = std::fs::read_to_string(root.join("config/alertmanager/backlogd.yml"))
        .expect("the shipped Alertmanager configuration exists");
    let routing = |working_hours: &str| -> String {
        let start = shipped_routing.find("  # working hours: begin").unwrap();
        let end = shipped_routing.find("  # working hours: end").unwrap();
        let text = format!(
            "{}{working_hours}{}",
            &shipped_routing[..start],
            &shipped_routing[end..]
        );
        text.replace("http://127.0.0.1:9095/", &format!("http://{hook}/"))
            .replace("group_wait: 30s", "group_wait: 1s")
            .replace("group_interval: 5m", "group_interval: 1s")
    };
    let far = jiff::Timestamp::now()
        .as_second()
        .div_euclid(3600)
        .rem_euclid(24)
        + 12;
    let closed = format!(
        "  - name: working_hours\n    time_intervals:\n      - times:\n          - start_time: '{:02}:00'\n            end_time: '{:02}:30'\n        location: 'UTC'\n",
        far % 24,
        far % 24
    );
    let open = "  - name: working_hours\n    time_intervals:\n      - times:\n          - start_time: '00:00'\n            end_time: '24:00'\n";
    std::fs::write(&alertmanager_config, routing(&closed)).unwrap();
    let alertmanager = Server::start(
        "alertmanager",
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", alertmanager_config.display()),
            format!("--storage.path={}", dir.path().join("am").display()),
            format!("--web.listen-address=127.0.0.1:{alertmanager_port}"),
            "--cluster.listen-address=".into(),
        ],
        dir.path(),
    );

    let (prometheus, prometheus_addr) = start_prometheus(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{alertmanager_port}']\nscrape_configs:\n  - job_name: backlogd\n    static_configs:\n      - targets: ['{}']\n",
            rules_copy.display(),
            daemon.addr
        ),
    );
    let logs = || {
        format!(
            "{}\n{}\n--- backlogd ---\n{}",
            prometheus.log(),
            alertmanager.log(),
            daemon.stderr()
        )
    };

    // Prometheus scrapes backlogd.
    await_until("Prometheus to scrape backlogd", &logs, || {
        let answer = query(prometheus_addr, "up{job=\"backlogd\"} == 1");
        (answer["data"]["result"].as_array().map_or(0, Vec::len) == 1).then_some(())
    });

    // (a) Every rule evaluates without error, and so does every dashboard query.
    let rule_groups = await_until("every rule to have been evaluated", &logs, || {
        let answer = get_json(prometheus_addr, "/api/v1/rules")?;
        let groups = answer["data"]["groups"].as_array()?.clone();
        let all_evaluated = groups.iter().all(|group| {
            group["rules"]
                .as_array()
                .is_some_and(|rules| rules.iter().all(|rule| rule["health"] != "unknown"))
        });
        (all_evaluated && !groups.is_empty()).then_some(groups)
    });
    let mut rule_names = BTreeSet::new();
    for group in &rule_groups {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["name"].as_str().unwrap_or("?").to_owned();
            assert_eq!(
                rule["health"], "ok",
                "rule {name} is unhealthy: {}\n{}",
                rule["lastError"], rule["query"]
            );
            rule_names.insert(name);
        }
    }
    assert!(
        rule_names.len() >= 15,
        "only {} rules loaded: {rule_names:?}",
        rule_names.len()
    );
    let mut exprs = Vec::new();
    for entry in std::fs::read_dir(root.join("dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            let before = exprs.len();
            dashboard_exprs(&dashboard, &mut exprs);
            assert!(exprs.len() > before, "{} has no queries", path.display());
        }
    }
    assert!(
        exprs.len() >= 40,
        "only {} dashboard queries found",
        exprs.len()
    );
    for expr in &exprs {
        let answer = query(prometheus_addr, expr);
        assert_eq!(
            answer["status"], "success",
            "dashboard query failed: {expr}\n{answer}"
        );
    }

    // (b) Tickets are held outside working hours: the expected alerts are active in Alertmanager,
    // yet nothing reaches the ticket queue.
    let expected = [
        "OverdueCasesHigh",
        "MentorOverloaded",
        "NewStaffUnmentored",
        "EmployeesOverloaded",
        "QualityBelowNorm",
        "BacklogTargetUnreachable",
    ];
    let alertmanager_addr: SocketAddr = format!("127.0.0.1:{alertmanager_port}").parse().unwrap();
    let alertmanager_alerts = || -> Vec<Value> {
        get_json(alertmanager_addr, "/api/v2/alerts")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    };
    await_until("the expected alerts in Alertmanager", &logs, || {
        let names: BTreeSet<String> = alertmanager_alerts()
            .iter()
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
            .collect();
        expected
            .iter()
            .all(|name| names.contains(*name))
            .then_some(())
    });
    // Several group intervals (1 s here) pass: a ticket would have been sent by now.
    std::thread::sleep(Duration::from_secs(4));
    let delivered = |path: &str, status: &str| -> Vec<Value> {
        received
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .flat_map(|(_, message)| message["alerts"].as_array().cloned().unwrap_or_default())
            .filter(|alert| alert["status"] == status)
            .collect()
    };
    assert!(
        delivered("/tickets", "firing").is_empty(),
        "tickets were delivered outside working hours: {:?}",
        delivered("/tickets", "firing")
    );

    // Working hours begin (a reload of Alertmanager with hours that include now): the held
    // tickets are delivered, with their labels and annotations.
    std::fs::write(&alertmanager_config, routing(open)).unwrap();
    let reloaded = harness::request(alertmanager_addr, "POST", "/-/reload", &[], b"").unwrap();
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    let alerts = await_until("the expected tickets at the webhook", &logs, || {
        let alerts = delivered("/tickets", "firing");
        let names: BTreeSet<&str> = alerts
            .iter()
            .filter_map(|a| a["labels"]["alertname"].as_str())
            .collect();
        expected
            .iter()
            .all(|name| names.contains(name))
            .then_some(alerts.clone())
    });
    for name in expected {
        let alert = alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == name)
            .unwrap();
        assert_eq!(alert["labels"]["severity"], "ticket", "{name}: {alert}");
        assert_eq!(alert["labels"]["source"], "data", "{name}: {alert}");
        for annotation in ["summary", "description", "runbook_url"] {
            let text = alert["annotations"][annotation].as_str().unwrap_or("");
            assert!(
                !text.is_empty(),
                "{name} lacks annotation {annotation}: {alert}"
            );
        }
        let anchor = name.to_ascii_lowercase();
        assert!(
            alert["annotations"]["runbook_url"]
                .as_str()
                .unwrap_or("")
                .ends_with(&format!("#{anchor}")),
            "{name}'s runbook_url does not point at #{anchor}"
        );
    }
    assert!(
        delivered("/pager", "firing").is_empty(),
        "a ticket went to the pager: {:?}",
        delivered("/pager", "firing")
    );
    let runbooks = std::fs::read_to_string(root.join("docs/runbooks.md")).unwrap();
    for name in expected {
        assert!(
            runbooks.contains(&format!("## {name}")),
            "docs/runbooks.md lacks ## {name}"
        );
    }

    // A page (BacklogdDown of this instance, as Prometheus would send it) goes to the pager at once,
    // and inhibits the data alerts of the same job and instance.
    let instance = daemon.addr.to_string();
    let down = |ends_at: &str| {
        serde_json::json!([{
            "labels": {
                "alertname": "BacklogdDown", "job": "backlogd", "instance": instance,
                "severity": "page", "hours": "always", "source": "daemon"
            },
            "annotations": {"summary": "backlogd is down (sent by the test)"},
            "endsAt": ends_at,
        }])
        .to_string()
    };
    let post_alert = |body: String| {
        let response = harness::request(
            alertmanager_addr,
            "POST",
            "/api/v2/alerts",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
    };
    post_alert(down(&rfc3339(3600)));
    await_until("BacklogdDown at the pager", &logs, || {
        delivered("/pager", "firing")
            .iter()
            .any(|a| a["labels"]["alertname"] == "BacklogdDown")
            .then_some(())
    });
    await_until("the data alerts inhibited by BacklogdDown", &logs, || {
        let alerts = alertmanager_alerts();
        let inhibited = |name: &str| {
            alerts.iter().any(|a| {
                a["labels"]["alertname"] == name
                    && a["status"]["state"] == "suppressed"
                    && a["status"]["inhibitedBy"]
                        .as_array()
                        .is_some_and(|by| !by.is_empty())
            })
        };
        expected.iter().all(|name| inhibited(name)).then_some(())
    });
    // The daemon's own alerts are not inhibited (BacklogdDown itself is active).
    assert!(
        alertmanager_alerts()
            .iter()
            .any(|a| a["labels"]["alertname"] == "BacklogdDown" && a["status"]["state"] == "active")
    );
    post_alert(down(&rfc3339(-1)));
    await_until(
        "the data alerts active again once BacklogdDown resolved",
        &logs,
        || {
            let alerts = alertmanager_alerts();
            alerts
                .iter()
                .filter(|a| a["labels"]["alertname"] == "OverdueCasesHigh")
                .all(|a| a["status"]["state"] == "active")
                .then_some(())
        },
    );

    // BacklogForming is the early ticket of what RenewedBacklog pages: while the page fires for a
    // track, Alertmanager inhibits the ticket of that track, and only of that track. Sent as
    // Prometheus would send them (the rules need weeks of history to fire).
    let data_alert = |name: &str, severity: &str, track: &str| {
        serde_json::json!({
            "labels": {
                "alertname": name, "job": "backlogd", "instance": instance, "track": track,
                "severity": severity, "hours": "business", "source": "data"
            },
            "annotations": {"summary": format!("{name} in {track} (sent by the test)")},
            "endsAt": rfc3339(3600),
        })
    };
    post_alert(
        serde_json::json!([
            data_alert("BacklogForming", "ticket", "asylum"),
            data_alert("BacklogForming", "ticket", "family"),
            data_alert("RenewedBacklog", "page", "asylum"),
        ])
        .to_string(),
    );
    let is = |alert: &Value, name: &str, track: &str| {
        alert["labels"]["alertname"] == name && alert["labels"]["track"] == track
    };
    await_until(
        "BacklogForming of asylum inhibited by RenewedBacklog of asylum",
        &logs,
        || {
            let alerts = alertmanager_alerts();
            // (state, number of inhibiting alerts) of one alert.
            let status = |name: &str, track: &str| {
                alerts.iter().find(|a| is(a, name, track)).map(|a| {
                    (
                        a["status"]["state"].as_str().unwrap_or("").to_owned(),
                        a["status"]["inhibitedBy"].as_array().map_or(0, Vec::len),
                    )
                })
            };
            (status("BacklogForming", "asylum") == Some(("suppressed".to_owned(), 1))
                && status("BacklogForming", "family") == Some(("active".to_owned(), 0))
                && status("RenewedBacklog", "asylum") == Some(("active".to_owned(), 0)))
            .then_some(())
        },
    );
    await_until(
        "the page at the pager and the other track's ticket in the queue",
        &logs,
        || {
            (delivered("/pager", "firing")
                .iter()
                .any(|a| is(a, "RenewedBacklog", "asylum"))
                && delivered("/tickets", "firing")
                    .iter()
                    .any(|a| is(a, "BacklogForming", "family")))
            .then_some(())
        },
    );
    assert!(
        !delivered("/tickets", "firing")
            .iter()
            .any(|a| is(a, "BacklogForming", "asylum")),
        "the inhibited ticket was delivered: {:?}",
        delivered("/tickets", "firing")
    );

    // (c) Raising the threshold by a reload clears OverdueCasesHigh, and the resolution arrives.
    std::fs::write(
        &config,
        shipped.replace("max_overdue_cases = 100", "max_overdue_cases = 50"),
    )
    .unwrap();
    let reload = harness::request(daemon.addr, "POST", "/-/reload", &[], b"").unwrap();
    assert_eq!(reload.status, 200, "{}", reload.text());
    await_until("OverdueCasesHigh to resolve", &logs, || {
        delivered("/tickets", "resolved")
            .iter()
            .any(|a| a["labels"]["alertname"] == "OverdueCasesHigh")
            .then_some(())
    });
    drop(prometheus);
    drop(alertmanager);
    daemon.stop();
}

/// A real Prometheus scrapes a daemon with TLS and basic auth on /metrics: with the right CA and
/// password the target is up; with a wrong password, or over plain HTTP, it is down. The users
/// line is made as `htpasswd -B` would make it (a `$2y$` hash).
#[test]
fn prometheus_scrapes_over_tls_with_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert_file = dir.path().join("backlogd.crt");
    let key_file = dir.path().join("backlogd.key");
    std::fs::write(&cert_file, generated.cert.pem()).unwrap();
    std::fs::write(&key_file, generated.signing_key.serialize_pem()).unwrap();
    let hash = bcrypt::hash_with_result("scrape-pass", 5)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let users = dir.path().join("metrics-users");
    std::fs::write(&users, format!("# htpasswd -nbBC 5\nprometheus:{hash}\n")).unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let daemon = harness::Daemon::start_tls(
        &harness::shipped_config(),
        &store,
        &[
            (
                "BACKLOGD__SERVER__TLS_CERT_FILE",
                cert_file.to_str().unwrap(),
            ),
            ("BACKLOGD__SERVER__TLS_KEY_FILE", key_file.to_str().unwrap()),
            (
                "BACKLOGD__SERVER__METRICS_USERS_FILE",
                users.to_str().unwrap(),
            ),
        ],
        harness::client_trusting(generated.cert.der()),
    );

    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "scrape-pass").unwrap();
    let wrong_file = dir.path().join("wrong-password");
    std::fs::write(&wrong_file, "not-the-pass").unwrap();
    let job = |name: &str, scheme: &str, password: &Path| {
        format!(
            "  - job_name: {name}\n    scheme: {scheme}\n    tls_config:\n      ca_file: {}\n    basic_auth:\n      username: prometheus\n      password_file: {}\n    static_configs:\n      - targets: ['{}']\n",
            cert_file.display(),
            password.display(),
            daemon.addr
        )
    };
    let (prometheus, prometheus_addr) = start_prometheus(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n{}{}{}",
            job("right", "https", &password_file),
            job("wrong_password", "https", &wrong_file),
            job("plain_http", "http", &password_file)
        ),
    );
    let logs = || {
        format!(
            "{}\n--- backlogd ---\n{}",
            prometheus.log(),
            daemon.stderr()
        )
    };
    let up = await_until("Prometheus to scrape all three jobs", &logs, || {
        let answer = query(prometheus_addr, "up");
        let rows = answer["data"]["result"].as_array()?.clone();
        let by_job: std::collections::BTreeMap<String, String> = rows
            .iter()
            .filter_map(|row| {
                Some((
                    row["metric"]["job"].as_str()?.to_owned(),
                    row["value"][1].as_str()?.to_owned(),
                ))
            })
            .collect();
        (by_job.len() == 3).then_some(by_job)
    });
    assert_eq!(
        up.into_iter().collect::<Vec<_>>(),
        [
            ("plain_http".to_owned(), "0".to_owned()),
            ("right".to_owned(), "1".to_owned()),
            ("wrong_password".to_owned(), "0".to_owned()),
        ],
        "{}",
        logs()
    );
    let build_info = query(prometheus_addr, "backlogd_build_info{job=\"right\"}");
    assert_eq!(
        build_info["data"]["result"].as_array().map_or(0, Vec::len),
        1,
        "{build_info}"
    );
    daemon.stop();
}
