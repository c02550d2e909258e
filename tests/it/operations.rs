//! The operational controls and the metrics of issue 3, as an operator notices them: workforce
//! gauges after a scripted story, hot reload (SIGHUP and `POST /-/reload`), ingest auth, employee
//! label modes and the series cap, rolling windows, the clearance forecast and the quality ratio.
//!
//! Where windows matter, event times are relative to the real clock (the daemon's "now").

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::harness::{Daemon, backlogd, metric_value, run_expecting_exit, samples, shipped_config};

const DAY: i64 = 86_400;

/// RFC 3339 time `seconds` before the real now, to the second.
fn ago(seconds: i64) -> String {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - seconds)
        .unwrap()
        .to_string()
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// NDJSON lines with generated ids (`PREFIX-N`).
struct Script {
    prefix: &'static str,
    lines: Vec<String>,
    sent: usize,
}

impl Script {
    fn new(prefix: &'static str) -> Script {
        Script {
            prefix,
            lines: Vec::new(),
            sent: 0,
        }
    }

    fn push(&mut self, kind: &str, time: &str, data: Value) -> &mut Script {
        let id = format!("{}-{}", self.prefix, self.sent + self.lines.len());
        self.lines.push(
            json!({"specversion": "1.0", "id": id, "type": kind, "time": time, "data": data})
                .to_string(),
        );
        self
    }

    fn join(&mut self, employee: &str, role: &str, experienced: bool, time: &str) -> &mut Script {
        self.push(
            "employee.joined",
            time,
            json!({"employee": employee, "role": role, "experienced": experienced}),
        )
    }

    fn mentor(&mut self, mentor: &str, mentee: &str, time: &str) -> &mut Script {
        self.push(
            "mentor.assigned",
            time,
            json!({"mentor": mentor, "mentee": mentee}),
        )
    }

    fn register(&mut self, case: &str, time: &str) -> &mut Script {
        self.push(
            "case.registered",
            time,
            json!({"case": case, "track": "asylum", "location": "Zevenaar"}),
        )
    }

    fn assign(&mut self, case: &str, employee: &str, time: &str) -> &mut Script {
        self.push(
            "case.assigned",
            time,
            json!({"case": case, "employee": employee}),
        )
    }

    fn close(&mut self, case: &str, time: &str) -> &mut Script {
        self.push(
            "case.closed",
            time,
            json!({"case": case, "reason": "withdrawn"}),
        )
    }

    /// Posts the lines pushed since the last post, asserting all are accepted.
    fn post(&mut self, daemon: &Daemon) {
        let count = self.lines.len() as u64;
        daemon.post_ok(&(self.lines.join("\n") + "\n"), count);
        self.sent += self.lines.len();
        self.lines.clear();
    }
}

/// The shipped configuration with `(from, to)` replacements (each `from` must occur), written to
/// `dir/name`.
fn config_file(dir: &Path, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(shipped_config()).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "the shipped config has no {from:?}");
        text = text.replace(from, to);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Awaits every `(series, value)` (NaN matches NaN) and the absence of every `absent` substring
/// of a sample line, reporting all mismatches at once.
fn await_values(daemon: &Daemon, when: &str, expected: &[(String, f64)], absent: &[&str]) {
    daemon.await_metrics(when, |text| {
        let mut problems: Vec<String> = expected
            .iter()
            .filter_map(|(series, value)| {
                let actual = metric_value(text, series);
                let same = actual.is_some_and(|a| a == *value || (a.is_nan() && value.is_nan()));
                (!same).then(|| format!("  {series}: expected {value}, got {actual:?}"))
            })
            .collect();
        for needle in absent {
            if let Some(line) = text
                .lines()
                .find(|l| !l.starts_with('#') && l.contains(needle))
            {
                problems.push(format!(
                    "  expected no series with {needle:?}, found {line}"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("metrics differ:\n{}", problems.join("\n")))
        }
    });
}

fn values(rows: &[(&str, f64)]) -> Vec<(String, f64)> {
    rows.iter().map(|(s, v)| (s.to_string(), *v)).collect()
}

/// Samples of the named families, as written, for before/after comparisons.
fn family_samples(text: &str, names: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = samples(text)
        .into_iter()
        .filter(|((name, _), _)| names.contains(&name.as_str()))
        .map(|(key, value)| format!("{key:?} {value}"))
        .collect();
    rows.sort();
    rows
}

/// The workload distribution of one role as cumulative counts for at_most = 0,1,2,5,10,15,20,30,50,
/// then +Inf (the number of active employees of the role), plus the open cases assigned to them.
fn workload(role: &str, cumulative: [f64; 10], sum: f64) -> Vec<(String, f64)> {
    let bounds = ["0", "1", "2", "5", "10", "15", "20", "30", "50", "+Inf"];
    let mut rows: Vec<(String, f64)> = bounds
        .iter()
        .zip(cumulative)
        .map(|(at_most, n)| {
            (
                format!(r#"backlogd_employees_by_open_cases{{role="{role}",at_most="{at_most}"}}"#),
                n,
            )
        })
        .collect();
    rows.push((
        format!(r#"backlogd_employees_assigned_open_cases{{role="{role}"}}"#),
        sum,
    ));
    rows
}

/// The story, in short (max_open_cases 20, max_mentees 5):
///
/// - m-big mentors t-1..t-8, then t-8 moves to m-small (reassignment): m-big keeps 7 (> 5).
/// - m-left mentors t-9, is m-small's mentee, and holds 3 open cases; then leaves.
/// - c-busy holds 21 open cases (> 20), c-twenty exactly 20 (not overloaded); d-officer 5,
///   m-small 2, t-3 1.
/// - t-1 becomes experienced and then decides its case (not by an inexperienced decider); t-2
///   decides its case while inexperienced and becomes experienced afterwards (still counted).
/// - t-new joins and gets no mentor.
#[test]
fn workforce_metrics_after_a_scripted_story_with_a_departure() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    let t = ago(2 * DAY);
    let later = ago(DAY);
    let mut script = Script::new("wf");
    script
        .join("m-big", "mentor", true, &t)
        .join("m-small", "mentor", true, &t)
        .join("m-left", "mentor", true, &t)
        .join("c-busy", "caseworker", true, &t)
        .join("c-twenty", "caseworker", true, &t)
        .join("d-officer", "decision_officer", true, &t)
        .join("t-new", "caseworker", false, &t);
    for i in 1..=9 {
        script.join(&format!("t-{i}"), "caseworker", false, &t);
    }
    for i in 1..=8 {
        script.mentor("m-big", &format!("t-{i}"), &t);
    }
    script
        .mentor("m-left", "t-9", &t)
        .mentor("m-small", "m-left", &t)
        .mentor("m-small", "t-8", &later);
    for (employee, cases) in [
        ("c-busy", 21),
        ("c-twenty", 20),
        ("d-officer", 5),
        ("m-small", 2),
        ("t-3", 1),
        ("m-left", 3),
        ("t-1", 1),
        ("t-2", 1),
    ] {
        for n in 1..=cases {
            let case = format!("k-{employee}-{n}");
            script.register(&case, &t).assign(&case, employee, &t);
        }
    }
    script
        .push(
            "employee.updated",
            &later,
            json!({"employee": "t-1", "experienced": true}),
        )
        .push(
            "case.decided",
            &later,
            json!({"case": "k-t-1-1", "outcome": "granted", "decided_by": "t-1"}),
        )
        .push(
            "case.decided",
            &later,
            json!({"case": "k-t-2-1", "outcome": "rejected", "decided_by": "t-2"}),
        );
    script.post(&daemon);

    // Before the departure: m-left has its series; inexperienced t-2..t-9 and t-new (9) over
    // three mentors with mentees.
    await_values(
        &daemon,
        "before m-left leaves",
        &values(&[
            (r#"backlogd_employee_open_cases{employee="m-left"}"#, 3.0),
            (r#"backlogd_mentor_mentees{mentor="m-left"}"#, 1.0),
            (r#"backlogd_mentor_mentees{mentor="m-small"}"#, 2.0),
            (r#"backlogd_mentor_mentees{mentor="m-big"}"#, 7.0),
            (r#"backlogd_cases_unassigned{track="asylum"}"#, 0.0),
            ("backlogd_mentees_unmentored", 1.0),
            ("backlogd_mentees_per_mentor", 3.0),
            (
                r#"backlogd_decisions_by_inexperienced_total{track="asylum"}"#,
                1.0,
            ),
        ]),
        &[],
    );

    // t-2 gains experience after deciding: that decision stays one by an inexperienced decider.
    script
        .push(
            "employee.updated",
            &later,
            json!({"employee": "t-2", "experienced": true}),
        )
        .push("employee.left", &later, json!({"employee": "m-left"}));
    script.post(&daemon);

    let mut expected = values(&[
        (r#"backlogd_employee_open_cases{employee="c-busy"}"#, 21.0),
        (r#"backlogd_employee_open_cases{employee="c-twenty"}"#, 20.0),
        (r#"backlogd_employee_open_cases{employee="d-officer"}"#, 5.0),
        (r#"backlogd_employee_open_cases{employee="m-small"}"#, 2.0),
        (r#"backlogd_employee_open_cases{employee="t-3"}"#, 1.0),
        (r#"backlogd_employee_open_cases{employee="m-big"}"#, 0.0),
        (r#"backlogd_employee_open_cases{employee="t-1"}"#, 0.0),
        (r#"backlogd_employee_open_cases{employee="t-new"}"#, 0.0),
        (r#"backlogd_employees_overloaded{role="caseworker"}"#, 1.0),
        (r#"backlogd_employees_overloaded{role="mentor"}"#, 0.0),
        (
            r#"backlogd_employees_overloaded{role="decision_officer"}"#,
            0.0,
        ),
        (r#"backlogd_mentor_mentees{mentor="m-big"}"#, 7.0),
        (r#"backlogd_mentor_mentees{mentor="m-small"}"#, 1.0),
        ("backlogd_mentors_overloaded", 1.0),
        ("backlogd_mentor_max_mentees", 7.0),
        // t-9 lost its mentor with m-left; t-new never had one.
        ("backlogd_mentees_unmentored", 2.0),
        // 8 inexperienced (t-3..t-9, t-new) / 2 mentors with mentees (m-big, m-small).
        ("backlogd_mentees_per_mentor", 4.0),
        ("backlogd_series_dropped_total", 0.0),
        // m-left's 3 cases lost their employee.
        (r#"backlogd_cases_unassigned{track="asylum"}"#, 3.0),
        (
            r#"backlogd_cases_open{track="asylum",location="Zevenaar"}"#,
            52.0,
        ),
        (
            r#"backlogd_decisions_by_inexperienced_total{track="asylum"}"#,
            1.0,
        ),
        (
            r#"backlogd_employees{role="caseworker",contract="permanent",experienced="false"}"#,
            8.0,
        ),
        (
            r#"backlogd_employees{role="caseworker",contract="permanent",experienced="true"}"#,
            4.0,
        ),
        (
            r#"backlogd_employees{role="mentor",contract="permanent",experienced="true"}"#,
            2.0,
        ),
    ]);
    // Caseworkers: nine with 0, t-3 with 1, c-twenty 20, c-busy 21.
    expected.extend(workload(
        "caseworker",
        [9., 10., 10., 10., 10., 10., 11., 12., 12., 12.],
        42.0,
    ));
    expected.extend(workload(
        "mentor",
        [1., 1., 2., 2., 2., 2., 2., 2., 2., 2.],
        2.0,
    ));
    expected.extend(workload(
        "decision_officer",
        [0., 0., 0., 1., 1., 1., 1., 1., 1., 1.],
        5.0,
    ));
    await_values(&daemon, "after m-left left", &expected, &[r#""m-left""#]);

    // A departed employee is not active: nothing can be assigned to them.
    let (status, answer) = daemon.post(
        "application/x-ndjson",
        &json!({"id": "wf-after-left", "type": "case.assigned", "time": later,
            "data": {"case": "k-m-left-1", "employee": "m-left"}})
        .to_string(),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["rejected"][0]["reason"], "unknown_employee",
        "{answer}"
    );
    daemon.stop();
}

#[test]
fn sighup_and_http_reload_change_thresholds_keep_state_and_refuse_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "backlogd.toml", &[]);
    let daemon = Daemon::start_with_config(&config, &dir.path().join("store"), &[]);
    let t = ago(DAY);
    let mut script = Script::new("rl");
    script.join("m-1", "mentor", true, &t);
    for mentee in ["t-a", "t-b", "t-c", "t-d"] {
        script
            .join(mentee, "caseworker", false, &t)
            .mentor("m-1", mentee, &t);
    }
    script.register("k-1", &t).assign("k-1", "t-a", &t);
    script.post(&daemon);

    let overdue_threshold = r#"backlogd_threshold{name="max_overdue_cases"}"#;
    let mentees_threshold = r#"backlogd_threshold{name="max_mentees"}"#;
    let reloaded = "backlogd_config_last_reload_successful";
    await_values(
        &daemon,
        "before any reload",
        &values(&[
            (overdue_threshold, 100.0),
            (mentees_threshold, 5.0),
            (r#"backlogd_threshold{name="max_open_cases"}"#, 20.0),
            (r#"backlogd_threshold{name="min_pass_ratio"}"#, 0.8),
            (
                r#"backlogd_threshold{name="max_audit_gap_seconds"}"#,
                14.0 * DAY as f64,
            ),
            (r#"backlogd_mentor_mentees{mentor="m-1"}"#, 4.0),
            ("backlogd_mentors_overloaded", 0.0),
        ]),
        &[],
    );
    const STATE: &[&str] = &[
        "backlogd_employees",
        "backlogd_employee_open_cases",
        "backlogd_mentor_mentees",
        "backlogd_mentor_max_mentees",
        "backlogd_cases_open",
        "backlogd_cases_registered_total",
        "backlogd_cases_unassigned",
    ];
    let state_before = family_samples(&daemon.metrics(), STATE);

    // SIGHUP with a lower overdue threshold and 4 mentees now above the mentee limit.
    config_file(
        dir.path(),
        "backlogd.toml",
        &[
            ("max_overdue_cases = 100", "max_overdue_cases = 7"),
            ("max_mentees = 5", "max_mentees = 3"),
        ],
    );
    daemon.signal("HUP");
    await_values(
        &daemon,
        "after SIGHUP",
        &values(&[
            (overdue_threshold, 7.0),
            (mentees_threshold, 3.0),
            ("backlogd_mentors_overloaded", 1.0),
            (reloaded, 1.0),
        ]),
        &[],
    );
    let text = daemon.metrics();
    assert_eq!(
        family_samples(&text, STATE),
        state_before,
        "a reload must not change the state"
    );

    // A misspelt key: the reload fails, says why, and the running values stay.
    config_file(
        dir.path(),
        "backlogd.toml",
        &[
            ("max_overdue_cases = 100", "max_overdue_cases = 9"),
            ("max_mentees = 5", "max_mentees = 1\nmax_mentes = 2"),
        ],
    );
    daemon.signal("HUP");
    daemon.await_metric(reloaded, 0.0);
    daemon.await_stderr("max_mentes");
    await_values(
        &daemon,
        "after a bad SIGHUP reload",
        &values(&[
            (overdue_threshold, 7.0),
            (mentees_threshold, 3.0),
            ("backlogd_mentors_overloaded", 1.0),
            (reloaded, 0.0),
        ]),
        &[],
    );

    // A renamed track over HTTP: refused with 400, naming the restart it needs.
    let shipped = std::fs::read_to_string(shipped_config()).unwrap();
    std::fs::write(
        &config,
        shipped
            .replace("asylum", "labour")
            .replace("max_overdue_cases = 100", "max_overdue_cases = 55"),
    )
    .unwrap();
    let response = daemon.request("POST", "/-/reload", &[], b"");
    let answer = response.json().unwrap_or(Value::Null);
    assert_eq!(response.status, 400, "{}", response.text());
    let error = answer["error"].as_str().unwrap_or("");
    assert!(error.contains("restart"), "{answer}");
    await_values(
        &daemon,
        "after a refused track rename",
        &values(&[(overdue_threshold, 7.0), (reloaded, 0.0)]),
        &["labour"],
    );
    assert_eq!(family_samples(&daemon.metrics(), STATE), state_before);

    // A good file over HTTP: 200, applied, and the gauge is back to 1.
    config_file(
        dir.path(),
        "backlogd.toml",
        &[("max_overdue_cases = 100", "max_overdue_cases = 11")],
    );
    let response = daemon.request("POST", "/-/reload", &[], b"");
    assert_eq!(
        (response.status, response.json().ok()),
        (200, Some(json!({"status": "reloaded"}))),
        "{}",
        response.text()
    );
    await_values(
        &daemon,
        "after a good HTTP reload",
        &values(&[
            (overdue_threshold, 11.0),
            (mentees_threshold, 5.0),
            ("backlogd_mentors_overloaded", 0.0),
            (reloaded, 1.0),
        ]),
        &[],
    );
    assert_eq!(family_samples(&daemon.metrics(), STATE), state_before);

    // `backlogd reload` (the unit's ExecReload) waits for the result and reports it.
    let url = daemon.url();
    let output = backlogd(&["reload", "--url", &url]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "reloaded");
    std::fs::write(&config, "phases = 7\n").unwrap();
    let output = backlogd(&["reload", "--url", &url]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed reload exits 1: {output:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the reload failed") && stderr.contains("phases"),
        "the reason names the key: {stderr}"
    );
    daemon.stop();
}

#[test]
fn ingest_and_drill_down_need_a_bearer_token_when_tokens_are_configured() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        "# ingest tokens of the case system\nfirst-token-abc\n\n# second sender\nsecond-token-xyz\n",
    )
    .unwrap();
    // With tokens, a non-loopback address is allowed.
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[
            (
                "BACKLOGD__SERVER__INGEST_TOKENS_FILE",
                tokens.to_str().unwrap(),
            ),
            ("BACKLOGD__SERVER__LISTEN", "0.0.0.0:0"),
        ],
    );
    let t = ago(DAY);
    let body = json!({"id": "auth-1", "type": "employee.joined", "time": t,
        "data": {"employee": "w-1", "role": "caseworker", "experienced": true}})
    .to_string();
    let ndjson = [("Content-Type", "application/x-ndjson")];
    fn with(token: &str) -> [(&str, &str); 2] {
        [
            ("Content-Type", "application/x-ndjson"),
            ("Authorization", token),
        ]
    }
    let employees =
        r#"backlogd_employees{role="caseworker",contract="permanent",experienced="true"}"#;

    for (what, headers) in [
        ("no Authorization header", &ndjson[..]),
        ("a wrong token", &with("Bearer not-a-token")[..]),
        (
            "a comment line as token",
            &with("Bearer # second sender")[..],
        ),
        ("another scheme", &with("Basic Zmlyc3QtdG9rZW4tYWJj")[..]),
    ] {
        for (method, path) in [
            ("POST", "/v1/events"),
            ("GET", "/v1/cases/overdue"),
            ("GET", "/v1/targets"),
            ("GET", "/v1/forecast"),
            ("GET", "/v1/history"),
            ("GET", "/report"),
        ] {
            let response = daemon.request(method, path, headers, body.as_bytes());
            assert_eq!(
                response.status,
                401,
                "{method} {path} with {what}: {}",
                response.text()
            );
            assert_eq!(
                response.header("www-authenticate"),
                Some("Bearer"),
                "{method} {path} with {what}"
            );
            let answer = response.json().unwrap_or(Value::Null);
            assert!(answer["error"].is_string(), "{method} {path}: {answer}");
        }
    }
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(daemon.get(path).status, 200, "{path} stays open");
    }
    assert_eq!(
        daemon.metric(employees),
        Some(0.0),
        "refused events are not applied"
    );

    let response = daemon.request(
        "POST",
        "/v1/events",
        &with("Bearer second-token-xyz"),
        body.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json().unwrap()["accepted"], 1);
    daemon.await_metric(employees, 1.0);
    let response = daemon.request(
        "GET",
        "/v1/cases/overdue",
        &[("Authorization", "Bearer first-token-abc")],
        b"",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json().unwrap(), json!([]));
    // The scheme is case-insensitive (RFC 9110), and a prefix of a token is no token.
    for (header, status) in [
        ("bearer first-token-abc", 200),
        ("BEARER  first-token-abc", 200),
        ("Bearer first-token-ab", 401),
        ("Bearer first-token-abcd", 401),
    ] {
        let response = daemon.request(
            "GET",
            "/v1/cases/overdue",
            &[("Authorization", header)],
            b"",
        );
        assert_eq!(response.status, status, "{header}: {}", response.text());
    }
    // Reload is guarded by the same tokens: any local process may not make the engine rebuild.
    let response = daemon.request("POST", "/-/reload", &[], b"");
    assert_eq!(
        response.status,
        401,
        "reload without a token: {}",
        response.text()
    );
    let response = daemon.request(
        "POST",
        "/-/reload",
        &[("Authorization", "Bearer first-token-abc")],
        b"",
    );
    assert_ne!(
        response.status,
        401,
        "reload with a token: {}",
        response.text()
    );

    // `backlogd send`: refused without the token file, accepted with it (first non-comment line).
    let events = dir.path().join("events.ndjson");
    let send_body = [("auth-2", "w-2"), ("auth-3", "w-3")]
        .iter()
        .map(|(id, employee)| {
            json!({"id": id, "type": "employee.joined", "time": t,
                "data": {"employee": employee, "role": "caseworker", "experienced": true}})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&events, send_body + "\n").unwrap();
    let url = daemon.url();
    let events_arg = events.to_str().unwrap();
    let output = backlogd(&["send", events_arg, "--url", &url, "--max-attempts", "1"]);
    assert!(
        !output.status.success(),
        "send without a token must fail; stdout:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = backlogd(&[
        "send",
        events_arg,
        "--url",
        &url,
        "--token-file",
        tokens.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().last(),
        Some("accepted 2, duplicates 0, rejected 0")
    );
    daemon.await_metric(employees, 3.0);
    daemon.stop();
}

#[test]
fn non_loopback_listen_without_tokens_is_refused_unless_explicitly_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (code, stderr) = run_expecting_exit(
        &shipped_config(),
        &store,
        &[("BACKLOGD__SERVER__LISTEN", "0.0.0.0:0")],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("server.listen") && stderr.contains("ingest_tokens_file"),
        "the refusal must name server.listen and the ingest tokens:\n{stderr}"
    );

    let daemon = Daemon::start(
        &store,
        &[
            ("BACKLOGD__SERVER__LISTEN", "0.0.0.0:0"),
            ("BACKLOGD__SERVER__ALLOW_UNAUTHENTICATED", "true"),
        ],
    );
    let event = json!({"id": "open-1", "type": "employee.joined", "time": ago(DAY),
        "data": {"employee": "w-1", "role": "caseworker", "experienced": true}});
    daemon.post_ok(&event.to_string(), 1);
    daemon.stop();
}

/// Employee ids that must never show in /metrics in pseudonym mode.
const SECRET_IDS: [&str; 3] = ["jdevries-4711", "pbakker-0815", "mmulder-2342"];

fn post_secret_team(daemon: &Daemon) {
    let t = ago(DAY);
    let mut script = Script::new("ps");
    script
        .join(SECRET_IDS[0], "mentor", true, &t)
        .join(SECRET_IDS[1], "caseworker", false, &t)
        .join(SECRET_IDS[2], "caseworker", false, &t)
        .mentor(SECRET_IDS[0], SECRET_IDS[1], &t)
        .mentor(SECRET_IDS[0], SECRET_IDS[2], &t);
    for n in 1..=3 {
        let case = format!("ps-case-{n}");
        script.register(&case, &t).assign(&case, SECRET_IDS[1], &t);
    }
    script.post(daemon);
}

/// First 12 hex digits of HMAC-SHA256(key, id), computed here independently of the daemon.
fn hmac_pseudonym(key: &[u8], id: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(id.as_bytes());
    mac.finalize().into_bytes()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn pseudonym_mode_shows_no_raw_employee_id_and_the_cli_finds_the_series() {
    let dir = tempfile::tempdir().unwrap();
    let key = b"k3y-0f-the-privacy-officer-2026";
    let key_file = dir.path().join("pseudonym.key");
    std::fs::write(&key_file, key).unwrap();
    let label_edit = format!(
        "employee_label = \"pseudonym\"\npseudonym_key_file = \"{}\"",
        key_file.display()
    );
    let config = config_file(
        dir.path(),
        "backlogd.toml",
        &[("employee_label = \"id\"", &label_edit)],
    );

    // Without a readable key the daemon refuses to start.
    let missing_key = config_file(
        dir.path(),
        "missing-key.toml",
        &[(
            "employee_label = \"id\"",
            "employee_label = \"pseudonym\"\npseudonym_key_file = \"/nonexistent/pseudonym.key\"",
        )],
    );
    let (code, stderr) = run_expecting_exit(&missing_key, &dir.path().join("store-x"), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("pseudonym_key_file"), "{stderr}");

    let daemon = Daemon::start_with_config(&config, &dir.path().join("store"), &[]);
    post_secret_team(&daemon);
    let pseudonym = |id: &str| {
        let output = backlogd(&["pseudonym", id, "--config", config.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let [mentor, busy, quiet] = SECRET_IDS.map(pseudonym);
    assert_eq!(busy, hmac_pseudonym(key, SECRET_IDS[1]));
    assert_eq!(busy.len(), 12);
    let text = await_values_text(
        &daemon,
        &[
            (
                format!(r#"backlogd_employee_open_cases{{employee="{busy}"}}"#),
                3.0,
            ),
            (
                format!(r#"backlogd_employee_open_cases{{employee="{quiet}"}}"#),
                0.0,
            ),
            (
                format!(r#"backlogd_employee_open_cases{{employee="{mentor}"}}"#),
                0.0,
            ),
            (
                format!(r#"backlogd_mentor_mentees{{mentor="{mentor}"}}"#),
                2.0,
            ),
        ],
    );
    for id in SECRET_IDS {
        // Neither the whole id nor its distinctive part appears anywhere, comments included.
        let part = id.split('-').next().unwrap();
        assert!(
            !text.contains(id) && !text.contains(part),
            "/metrics shows the employee id {id:?} in pseudonym mode"
        );
    }
    daemon.stop();
}

/// Awaits the values and returns the /metrics text that had them.
fn await_values_text(daemon: &Daemon, expected: &[(String, f64)]) -> String {
    await_values(daemon, "pseudonymous series", expected, &[]);
    daemon.metrics()
}

#[test]
fn label_mode_none_and_the_series_cap_limit_per_employee_series() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store-none"),
        &[("BACKLOGD__WORKFORCE__EMPLOYEE_LABEL", "none")],
    );
    post_secret_team(&daemon);
    let text = daemon.await_metrics("aggregates in mode none", |text| {
        match metric_value(text, "backlogd_mentor_max_mentees") {
            Some(2.0) => Ok(()),
            other => Err(format!("backlogd_mentor_max_mentees: {other:?}")),
        }
    });
    for family in ["backlogd_employee_open_cases", "backlogd_mentor_mentees"] {
        assert!(
            !samples(&text).iter().any(|((name, _), _)| name == family),
            "mode none exports {family}"
        );
    }
    assert!(!SECRET_IDS.iter().any(|id| text.contains(id)));
    daemon.stop();

    let daemon = Daemon::start(
        &dir.path().join("store-cap"),
        &[("BACKLOGD__LIMITS__MAX_EMPLOYEE_SERIES", "3")],
    );
    let t = ago(DAY);
    let mut script = Script::new("cap");
    for n in 1..=5 {
        script.join(&format!("w-{n}"), "caseworker", true, &t);
    }
    script.post(&daemon);
    let text = daemon.await_metrics("five employees", |text| {
        match metric_value(
            text,
            r#"backlogd_employees_by_open_cases{role="caseworker",at_most="+Inf"}"#,
        ) {
            Some(5.0) => Ok(()),
            other => Err(format!("workload count {other:?}")),
        }
    });
    let per_employee = samples(&text)
        .iter()
        .filter(|((name, _), _)| {
            name == "backlogd_employee_open_cases" || name == "backlogd_mentor_mentees"
        })
        .count();
    assert!(
        (1..=3).contains(&per_employee),
        "{per_employee} per-employee series with a cap of 3"
    );
    let dropped = metric_value(&text, "backlogd_series_dropped_total");
    assert_eq!(
        dropped,
        Some((5 - per_employee) as f64),
        "employees without a series"
    );
    daemon.stop();
}

#[test]
fn rolling_windows_forecast_and_quality_ratio_follow_the_real_clock() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    let ratio = r#"backlogd_quality_pass_ratio{window="P91D"}"#;
    let clearance = r#"backlogd_backlog_clearance_seconds{track="asylum"}"#;
    let projected = r#"backlogd_backlog_projected_clearance_timestamp_seconds{target="backlog"}"#;
    let target = r#"backlogd_backlog_target_timestamp_seconds{target="backlog"}"#;
    // 2027-06-30T00:00:00+02:00 in the shipped config.
    await_values(
        &daemon,
        "an empty daemon",
        &values(&[
            (ratio, f64::NAN),
            (clearance, 0.0),
            (target, 1_814_306_400.0),
        ]),
        &[],
    );
    assert!(
        daemon
            .metrics()
            .lines()
            .any(|l| l.starts_with(ratio) && l.ends_with(" NaN")),
        "the pass ratio without audits is written as NaN"
    );

    let mut script = Script::new("fc");
    script.join("d-1", "decision_officer", true, &ago(60 * DAY));
    // 12 old registrations (outside both windows), 2 at −20 days (P28D), 1 at −3 days (both).
    for n in 1..=12 {
        script.register(&format!("old-{n}"), &ago(40 * DAY));
    }
    script
        .register("mid-1", &ago(20 * DAY))
        .register("mid-2", &ago(20 * DAY))
        .register("new-1", &ago(3 * DAY));
    // Outflow: one closure at −35 days (outside), 4 at −10 days (P28D), a decision at −2 days and
    // a closure at −1 day (both).
    script.close("old-1", &ago(35 * DAY));
    for n in 2..=5 {
        script.close(&format!("old-{n}"), &ago(10 * DAY));
    }
    script
        .push(
            "case.decided",
            &ago(2 * DAY),
            json!({"case": "old-6", "outcome": "granted", "decided_by": "d-1"}),
        )
        .close("old-7", &ago(DAY));
    script.post(&daemon);

    // Open: 15 − 7 = 8. Net over P28D: (6 − 3) / 28 days.
    let open = 8.0;
    let expected_clearance = open / (3.0 / (28.0 * DAY as f64));
    await_values(
        &daemon,
        "a shrinking backlog",
        &values(&[
            (
                r#"backlogd_inflow_rolling{track="asylum",window="P7D"}"#,
                1.0,
            ),
            (
                r#"backlogd_inflow_rolling{track="asylum",window="P28D"}"#,
                3.0,
            ),
            (
                r#"backlogd_outflow_rolling{track="asylum",window="P7D"}"#,
                2.0,
            ),
            (
                r#"backlogd_outflow_rolling{track="asylum",window="P28D"}"#,
                6.0,
            ),
        ]),
        &[],
    );
    let text = daemon.metrics();
    let actual = metric_value(&text, clearance).unwrap_or(f64::NAN);
    assert!(
        (actual / expected_clearance - 1.0).abs() < 0.01,
        "clearance: expected {expected_clearance} s, got {actual}"
    );
    let projected_at = metric_value(&text, projected).unwrap_or(f64::NAN);
    let expected_at = now_seconds() + expected_clearance;
    assert!(
        (projected_at - expected_at).abs() < 0.01 * expected_clearance,
        "projected clearance: expected about {expected_at}, got {projected_at}"
    );
    assert!(
        projected_at < 1_814_306_400.0,
        "75 days from now is before the target"
    );

    // Five more registrations: inflow 8 > outflow 6 over P28D, the backlog grows.
    for n in 1..=5 {
        script.register(&format!("late-{n}"), &ago(DAY));
    }
    script.post(&daemon);
    await_values(
        &daemon,
        "a growing backlog",
        &values(&[
            (
                r#"backlogd_inflow_rolling{track="asylum",window="P7D"}"#,
                6.0,
            ),
            (
                r#"backlogd_inflow_rolling{track="asylum",window="P28D"}"#,
                8.0,
            ),
            (clearance, f64::INFINITY),
            (projected, f64::INFINITY),
            (target, 1_814_306_400.0),
        ]),
        &[],
    );

    // Audits: two failures 100 days ago fall outside P91D; inside, 3 passes and 1 failure.
    for (days, passed) in [
        (100, false),
        (100, false),
        (80, true),
        (60, false),
        (30, true),
        (5, true),
    ] {
        script.push("quality.audit", &ago(days * DAY), json!({"passed": passed}));
    }
    let last_audit = jiff::Timestamp::now().as_second() - 5 * DAY;
    script.post(&daemon);
    await_values(
        &daemon,
        "after the audits",
        &values(&[
            (ratio, 0.75),
            (r#"backlogd_quality_audits_total{result="pass"}"#, 3.0),
            (r#"backlogd_quality_audits_total{result="fail"}"#, 3.0),
        ]),
        &[],
    );
    let last = daemon
        .metric("backlogd_quality_last_audit_timestamp_seconds")
        .unwrap_or(f64::NAN);
    assert!(
        (last - last_audit as f64).abs() <= 2.0,
        "last audit: expected {last_audit}, got {last}"
    );
    daemon.stop();
}

#[test]
fn tokens_rotate_on_reload_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "old-token-111\n").unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[(
            "BACKLOGD__SERVER__INGEST_TOKENS_FILE",
            tokens.to_str().unwrap(),
        )],
    );
    let status_with = |token: &str| {
        daemon
            .request(
                "GET",
                "/v1/cases/overdue",
                &[("Authorization", &format!("Bearer {token}"))],
                b"",
            )
            .status
    };
    assert_eq!(status_with("old-token-111"), 200);
    assert_eq!(status_with("new-token-222"), 401);
    std::fs::write(&tokens, "# rotated\nnew-token-222\n").unwrap();
    daemon.signal("HUP");
    let started = std::time::Instant::now();
    while status_with("new-token-222") != 200 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the new token was not accepted after SIGHUP:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        status_with("old-token-111"),
        401,
        "the old token still works"
    );
    daemon.await_metric("backlogd_config_last_reload_successful", 1.0);
    // An empty tokens file is refused and the current tokens stay.
    std::fs::write(&tokens, "# nothing\n").unwrap();
    daemon.signal("HUP");
    daemon.await_metric("backlogd_config_last_reload_successful", 0.0);
    assert_eq!(status_with("new-token-222"), 200);
    daemon.stop();
}

/// `send` streams its files one batch at a time: blank lines are skipped, a CRLF line end and a
/// last line without a newline still make events, and every rejection is named by its file and
/// line, across batch boundaries (`--batch 2`: lines 1 and 3, 4 and 6, 7 and 8 travel together).
#[test]
fn send_names_each_rejection_by_file_and_line_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    let event = |n: usize| {
        format!(
            r#"{{"id":"s-e{n}","type":"case.registered","time":"2026-03-02T09:00:00+01:00","data":{{"case":"s-c{n}","track":"asylum"}}}}"#
        )
    };
    let lines = [
        event(1),                                                // 1
        String::new(),                                           // 2: blank
        r#"{"id":"bad-1"}"#.to_owned(),                          // 3: rejected
        format!("{}\r", event(2)),                               // 4: CRLF
        "   ".to_owned(),                                        // 5: blank
        event(3),                                                // 6
        r#"{"id":"bad-2","type":"case.registered"}"#.to_owned(), // 7: rejected
        event(4),                                                // 8: no newline after it
    ];
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let url = daemon.url();
    let output = backlogd(&[
        "send",
        file.to_str().unwrap(),
        "--url",
        &url,
        "--batch",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().last(),
        Some("accepted 4, duplicates 0, rejected 2")
    );
    // Rejections go to standard output, above the totals (the progress display's place).
    let named: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.split(": ").next())
        .filter(|place| place.contains("events.ndjson:"))
        .map(|place| &place[place.rfind(':').unwrap() + 1..]) // contains ':' by the filter
        .collect();
    assert_eq!(named, ["3", "7"], "{stderr}");
    daemon.stop();
}
