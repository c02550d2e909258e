//! Announced targets (`target.announced`): the metrics, `GET /v1/targets` with each announcement's
//! projection at the moment, and the history kept across a restart.

use backlogd::api::{History, Target};

use crate::harness::Daemon;

/// Four old cases, two decided within the forecast window (so the backlog shrinks), then three
/// announcements of the configured target `backlog` and one of a new target `all-tracks`.
fn events() -> String {
    let now = jiff::Timestamp::now();
    let at = |days_ago: i64| (now - jiff::SignedDuration::from_hours(24 * days_ago)).to_string();
    let mut lines = vec![format!(
        r#"{{"specversion":"1.0","id":"j1","type":"employee.joined","source":"it","time":"{}","data":{{"employee":"e1","role":"caseworker","experienced":true}}}}"#,
        at(400)
    )];
    for i in 0..4 {
        lines.push(format!(
            r#"{{"specversion":"1.0","id":"r{i}","type":"case.registered","source":"it","time":"{}","data":{{"case":"c{i}","track":"asylum"}}}}"#,
            at(300)
        ));
    }
    // Nothing decided yet: the projection says the backlog never clears.
    lines.push(format!(
        r#"{{"specversion":"1.0","id":"a1","type":"target.announced","source":"it","time":"{}","data":{{"target":"backlog","clear_by":"2030-01-01T00:00:00Z","announced_by":"minister","note":"by 2030"}}}}"#,
        at(20)
    ));
    for i in 0..2 {
        lines.push(format!(
            r#"{{"specversion":"1.0","id":"d{i}","type":"case.decided","source":"it","time":"{}","data":{{"case":"c{i}","outcome":"granted","decided_by":"e1"}}}}"#,
            at(10)
        ));
    }
    // Two open, two out in the last 28 days: 28 days to clear. A date next week is behind that, a
    // date in two years is not.
    lines.push(format!(
        r#"{{"specversion":"1.0","id":"a2","type":"target.announced","source":"it","time":"{}","data":{{"target":"backlog","track":"asylum","clear_by":"{}"}}}}"#,
        at(0),
        now + jiff::SignedDuration::from_hours(24 * 7)
    ));
    lines.push(format!(
        r#"{{"specversion":"1.0","id":"a3","type":"target.announced","source":"it","time":"{}","data":{{"target":"all-tracks","clear_by":"{}"}}}}"#,
        at(0),
        now + jiff::SignedDuration::from_hours(24 * 730)
    ));
    lines.join("\n") + "\n"
}

fn summary(targets: &[Target]) -> Vec<String> {
    let mut out = Vec::new();
    for t in targets {
        out.push(format!(
            "{} track={:?} configured={}",
            t.target,
            t.track,
            t.configured_clear_by.is_some()
        ));
        for a in &t.announcements {
            out.push(format!(
                "  by={:?} projected={} behind={}",
                a.announced_by,
                a.projected_clearance.is_some(),
                a.behind_projection
            ));
        }
    }
    out
}

#[test]
fn announcements_set_the_target_and_keep_their_history_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let daemon = Daemon::start(&store, &[]);
    daemon.post_ok(&events(), 10);
    daemon.await_metric(
        r#"backlogd_target_announcements_total{target="backlog"}"#,
        2.0,
    );
    assert_eq!(
        daemon.metric(r#"backlogd_target_announcements_total{target="all-tracks"}"#),
        Some(1.0)
    );
    assert_eq!(
        daemon.metric(r#"backlogd_target_announced_behind_projection{target="backlog"}"#),
        Some(1.0)
    );
    assert_eq!(
        daemon.metric(r#"backlogd_target_announced_behind_projection{target="all-tracks"}"#),
        Some(0.0)
    );
    let target = daemon
        .metric(r#"backlogd_backlog_target_timestamp_seconds{target="backlog"}"#)
        .expect("the target gauge");
    let week_ahead = jiff::Timestamp::now().as_second() as f64 + 7.0 * 86_400.0;
    assert!((target - week_ahead).abs() < 120.0, "{target}");

    let response = daemon.get("/v1/targets");
    assert_eq!(response.status, 200, "{}", response.text());
    let before: Vec<Target> = response.decode();
    assert_eq!(
        summary(&before),
        [
            r#"backlog track=Some("asylum") configured=true"#,
            r#"  by=Some("minister") projected=false behind=true"#,
            r#"  by=None projected=true behind=true"#,
            r#"all-tracks track=None configured=false"#,
            r#"  by=None projected=true behind=false"#,
        ],
        "{before:#?}"
    );
    let verdict = &before[0].announcements[1].verdict;
    assert!(
        verdict.starts_with("announced a date the projection already said would be missed"),
        "{verdict}"
    );
    daemon.stop();

    let daemon = Daemon::start(&store, &[]);
    let after: Vec<Target> = daemon.get("/v1/targets").decode();
    for t in 0..2 {
        assert_eq!(
            after[t].announcements, before[t].announcements,
            "the history survives a restart"
        );
    }
    daemon.stop();
}

/// `GET /v1/history`: a fresh daemon has no day behind it yet; a bad range is refused by name.
/// (The rows themselves are taken at midnight, which the core's tests cover with a fake clock.)
#[test]
fn history_answers_the_days_and_refuses_a_bad_range() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let response = daemon.get("/v1/history?from=2025-01-01&to=2025-12-31");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.decode::<History>(),
        History {
            decision_window: "P28D".to_owned(),
            new_staff_weeks: 12,
            days: Vec::new()
        }
    );
    // Each of the first four used to be taken as a date and compared as text: 0 rows, a first
    // day dropped, every row. Only YYYY-MM-DD is a day, on the history and on the report.
    for (query, names) in [
        (
            "from=20240401",
            "`from`: \"20240401\" is not a day (YYYY-MM-DD",
        ),
        (
            "from=2024-04-01T12:00",
            "`from`: \"2024-04-01T12:00\" is not a day",
        ),
        (
            "from=%2B002024-04-01",
            "`from`: \"+002024-04-01\" is not a day",
        ),
        ("to=2024-04-01T00:00:00%2B01:00", "`to`"),
        (
            "from=2024-04-02&to=2024-04-01",
            "`from` and `to`: 2024-04-02 is after 2024-04-01",
        ),
        ("from=2025-13-01", "`from`"),
        ("to=yesterday", "`to`"),
        ("since=2025-01-01", "`since`"),
    ] {
        let response = daemon.get(&format!("/report?{query}"));
        assert_eq!(response.status, 400, "/report?{query}");
        let response = daemon.get(&format!("/v1/history?{query}"));
        assert_eq!(response.status, 400, "{query}");
        let error = response.json().expect("JSON")["error"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(error.contains(names), "{query}: {error}");
    }
    daemon.stop();
}

/// `GET /report` and `backlogd report`: the same self-contained page, in the language asked for or
/// else in `report.language` (which a reload changes); a fresh daemon's says that no day has ended
/// yet. (The charts against the history: src/report/tests.rs and tests/backfill.rs.)
#[test]
fn the_report_is_served_and_written_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(crate::harness::shipped_config()).unwrap();
    let config = dir.path().join("backlogd.toml");
    let with_language = |language: &str| {
        assert!(shipped.contains("\nlanguage = \"en\"\n"));
        shipped.replace(
            "\nlanguage = \"en\"\n",
            &format!("\nlanguage = \"{language}\"\n"),
        )
    };
    std::fs::write(&config, with_language("nl")).unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let daemon = Daemon::start_with_config(&config, &store, &[]);
    let response = daemon.get("/report");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        response
            .header("content-security-policy")
            .is_some_and(|csp| csp.starts_with("default-src 'none'")),
        "nothing may load from elsewhere"
    );
    let page = response.text();
    assert!(
        page.contains("<html lang=\"nl\">"),
        "report.language: {page}"
    );
    assert!(page.contains("Er is nog geen dag voorbij"), "{page}");
    let english = daemon.get("/report?lang=en").text();
    assert!(english.contains("No day has ended"), "{english}");
    let response = daemon.get("/report?lang=fr");
    assert_eq!(response.status, 400);
    assert!(response.text().contains("`lang`"), "{}", response.text());

    let url = daemon.url();
    let out = dir.path().join("report.html");
    let write = |lang: Option<&str>| {
        let mut args = vec!["report", "--url", &url, "--out", out.to_str().unwrap()];
        if let Some(lang) = lang {
            args.extend(["--lang", lang]);
        }
        let output = crate::harness::backlogd(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::read_to_string(&out).unwrap()
    };
    assert_eq!(
        write(None),
        page,
        "the CLI writes the served page, in the daemon's language"
    );
    assert_eq!(write(Some("en")), english, "--lang chooses");

    std::fs::write(&config, with_language("en")).unwrap();
    let reload = daemon.request("POST", "/-/reload", &[], b"");
    assert_eq!(reload.status, 200, "{}", reload.text());
    assert!(daemon.get("/report").text().contains("<html lang=\"en\">"));
    daemon.stop();
}

/// `count` announcements of the configured target `backlog`, each with a 1 KiB note naming its
/// number, a minute apart, the last at least a day ago.
fn announcements(count: usize) -> String {
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * 2);
    (0..count)
        .map(|n| {
            let time = start + jiff::SignedDuration::from_mins(n as i64);
            let note = format!("{n:04} {}", "x".repeat(1019));
            format!(
                "{{\"specversion\":\"1.0\",\"id\":\"ann-{n}\",\"type\":\"target.announced\",\"source\":\"it\",\"time\":\"{time}\",\"data\":{{\"target\":\"backlog\",\"clear_by\":\"2030-01-01T00:00:00Z\",\"note\":\"{note}\"}}}}\n"
            )
        })
        .collect()
}

/// The numbers (from their notes) of the announcements of `backlog` in a `GET /v1/targets` answer.
fn kept_numbers(daemon: &Daemon, query: &str) -> (Vec<usize>, u64) {
    let response = daemon.get(&format!("/v1/targets{query}"));
    assert_eq!(response.status, 200, "{}", response.text());
    let targets: Vec<Target> = response.decode();
    let backlog = targets
        .iter()
        .find(|t| t.target == "backlog")
        .expect("the configured target is listed");
    let numbers = backlog
        .announcements
        .iter()
        .map(|a| {
            a.note.as_deref().unwrap_or("")[..4]
                .parse()
                .expect("the note starts with its number")
        })
        .collect();
    (numbers, backlog.announcements_total)
}

/// Issue 24, finding 3: a target keeps its newest `limits.max_announcements_per_target` (100)
/// announcements; the counter still counts all, a gauge shows what is kept, `GET /v1/targets`
/// answers the kept ones (or the newest `announcements=N`), across a restart, and a lower limit
/// trims at the next start. Before the fix all 150 were kept and answered (the probe: 200,000
/// announcements with 1 KiB notes took 263 MiB, one answer 279 MB).
#[test]
fn a_target_keeps_a_bounded_history_of_announcements() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let daemon = Daemon::start(&store, &[]);
    daemon.post_ok(&announcements(150), 150);
    let (kept, total) = kept_numbers(&daemon, "");
    assert_eq!(
        kept,
        (50..150).collect::<Vec<_>>(),
        "the newest 100, oldest first"
    );
    assert_eq!(total, 150);
    daemon.await_metric(
        r#"backlogd_target_announcements_total{target="backlog"}"#,
        150.0,
    );
    daemon.await_metric(
        r#"backlogd_target_announcements_kept{target="backlog"}"#,
        100.0,
    );
    let (newest, _) = kept_numbers(&daemon, "?announcements=3");
    assert_eq!(newest, [147, 148, 149]);
    for (query, expected) in [
        (
            "?announcements=many",
            "query parameter `announcements`: \"many\" is not a number from 0 to 10000",
        ),
        (
            "?bogus=1",
            "query parameter `bogus`: unknown; expected `announcements`",
        ),
    ] {
        let response = daemon.get(&format!("/v1/targets{query}"));
        assert_eq!(response.status, 400, "{query}");
        assert_eq!(response.json().unwrap()["error"], expected, "{query}");
    }
    daemon.stop();

    let daemon = Daemon::start(&store, &[]);
    assert_eq!(kept_numbers(&daemon, ""), ((50..150).collect(), 150));
    daemon.stop();

    let daemon = Daemon::start(
        &store,
        &[("BACKLOGD__LIMITS__MAX_ANNOUNCEMENTS_PER_TARGET", "10")],
    );
    assert_eq!(kept_numbers(&daemon, ""), ((140..150).collect(), 150));
    daemon.await_metric(
        r#"backlogd_target_announcements_kept{target="backlog"}"#,
        10.0,
    );
    daemon.await_metric(
        r#"backlogd_target_announcements_total{target="backlog"}"#,
        150.0,
    );
    daemon.stop();
}
