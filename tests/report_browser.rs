//! The HTML report as a person sees it: rendered by real headless Chromium (driven over the
//! DevTools protocol by `browser/cdp.rs`), with no console error, no failed load, and a line in
//! every chart; also under the Content-Security-Policy the daemon sends with `GET /report`.
//! Negative controls show that each of those checks can fail.
//!
//! Needs `chromium` (Debian package; `./scripts/test` installs it). Without it these tests fail.
//! The screenshot of the real report is kept at `target/report-browser/report.png`.

#[path = "browser/cdp.rs"]
mod cdp;

#[allow(dead_code)]
#[path = "it/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

use backlogd::api;
use backlogd::config;
use backlogd::core::State;
use backlogd::core::time::to_nanos;
use backlogd::engine::HistoryAnswer;
use backlogd::report::{Lang, render};
use serde_json::{Value, json};

fn event(id: &str, time: &str, kind: &str, data: Value) -> String {
    json!({"specversion": "1.0", "id": id, "source": "test", "type": kind, "time": time, "data": data})
        .to_string()
}

/// A week of an agency: staff joining (one newcomer mentored, one not), more cases registered each
/// day than decided, audits on some days, and a clear-by date announced.
fn story() -> Vec<String> {
    let mut lines = Vec::new();
    for (id, experienced) in [("e1", true), ("e2", true), ("n1", false)] {
        lines.push(event(
            &format!("j-{id}"),
            "2026-03-01T08:00:00Z",
            "employee.joined",
            json!({"employee": id, "role": "caseworker", "experienced": experienced}),
        ));
    }
    lines.push(event(
        "m1",
        "2026-03-01T08:30:00Z",
        "mentor.assigned",
        json!({"mentor": "e1", "mentee": "n1"}),
    ));
    lines.push(event(
        "j-n2",
        "2026-03-03T08:00:00Z",
        "employee.joined",
        json!({"employee": "n2", "role": "caseworker", "experienced": false}),
    ));
    for day in 1..=7 {
        for n in 0..(day + 2) {
            lines.push(event(
                &format!("r{day}-{n}"),
                &format!("2026-03-0{day}T10:{n:02}:00Z"),
                "case.registered",
                json!({"case": format!("C{day}-{n}"), "track": "asylum"}),
            ));
        }
        if day > 1 {
            // Decide a few of the previous day's cases.
            for n in 0..(day % 3 + 1) {
                lines.push(event(
                    &format!("d{day}-{n}"),
                    &format!("2026-03-0{day}T15:{n:02}:00Z"),
                    "case.decided",
                    json!({"case": format!("C{}-{n}", day - 1), "outcome": "granted", "decided_by": "e2"}),
                ));
            }
        }
        if day % 2 == 0 {
            lines.push(event(
                &format!("a{day}"),
                &format!("2026-03-0{day}T12:00:00Z"),
                "quality.audit",
                json!({"case": format!("C{day}-0"), "passed": day != 4}),
            ));
        }
    }
    lines.push(event(
        "t1",
        "2026-03-05T09:00:00Z",
        "target.announced",
        json!({"target": "backlog", "clear_by": "2026-04-01T00:00:00Z", "announced_by": "minister"}),
    ));
    // In time order, as they would arrive.
    lines.sort_by_key(|line| {
        serde_json::from_str::<Value>(line).expect("built above as JSON")["time"].to_string()
    });
    lines
}

/// The bodies of `GET /v1/history` and `GET /v1/targets` of the shipped configuration's daemon after
/// the story, at noon of the eighth day: seven days of history, one target.
fn history_and_targets() -> (api::History, Vec<api::Target>) {
    let config = config::load_from_str(include_str!("../config/backlogd.toml"))
        .expect("the shipped configuration is valid");
    let settings = config::core_settings(&config);
    let mut state = State::new(settings.clone());
    for line in story() {
        let event = backlogd::wire::parse_event(&line).expect("the story's events parse");
        let at = to_nanos(event.time).expect("the story's times are in range");
        state.apply(&event, at).expect("the story's events apply");
    }
    let until = "2026-03-08T12:00:00Z".parse().expect("a timestamp");
    state.advance(to_nanos(until).expect("in range"));
    let history = backlogd::server::history_body(&HistoryAnswer::new(
        &settings,
        state.daily_history().cloned().collect(),
    ));
    let targets = backlogd::server::targets_body(&state.target_reports());
    (history, targets)
}

/// The shipped configuration's report settings.
fn context() -> backlogd::report::Context {
    backlogd::report::Context {
        max_audit_gap: jiff::SignedDuration::from_hours(14 * 24),
        min_decisions: backlogd::report::DEFAULT_MIN_DECISIONS,
        held: backlogd::report::Held::default(),
    }
}

/// Where the screenshot of the real report is kept for a person to look at.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        |dir| Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
    );
    let dir = target.join("report-browser");
    std::fs::create_dir_all(&dir).expect("the target directory is writable");
    dir
}

/// Writes `html` to a file and loads it in Chromium over file:// (no Content-Security-Policy
/// header there), the screenshot going to `screenshot`.
/// `inspect_html` in a temporary directory of its own, the screenshot thrown away with it.
fn inspect_page(html: &str) -> cdp::PageReport {
    let dir = tempfile::tempdir().expect("a temporary directory");
    inspect_html(html, dir.path(), &dir.path().join("shot.png"))
}

fn inspect_html(html: &str, dir: &Path, screenshot: &Path) -> cdp::PageReport {
    let page = dir.join("report.html");
    std::fs::write(&page, html).expect("the temporary directory is writable");
    let url = format!("file://{}", page.display());
    cdp::inspect(&url, screenshot).unwrap_or_else(|e| panic!("{e}"))
}

/// The lines of every chart the report draws for this history and these targets, in page order:
/// the history's charts, then one per target.
fn expected_charts(history: &api::History, targets: &[api::Target]) -> Vec<Vec<&'static str>> {
    let mut names: Vec<Vec<&'static str>> = backlogd::report::charts(history)
        .iter()
        .map(|chart| chart.lines.iter().map(|(name, _)| name.id()).collect())
        .collect();
    for _ in backlogd::report::target_charts(history, targets) {
        names.push(vec!["projected", "promised"]);
    }
    names
}

/// The report of a week, with every chart drawn.
fn report_html() -> String {
    let (history, targets) = history_and_targets();
    assert_eq!(history.days.len(), 7, "{history:#?}");
    assert_eq!(targets.len(), 1, "{targets:#?}");
    render(Lang::En, &history, &targets, &context())
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {:?}",
        &png[..png.len().min(8)]
    );
    assert_eq!(&png[12..16], b"IHDR", "the first chunk of a PNG is IHDR");
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

#[test]
fn the_report_renders_in_chromium_without_errors_and_with_every_line_drawn() {
    let html = report_html();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let screenshot = artifacts().join("report.png");
    let started = std::time::Instant::now();
    let report = inspect_html(&html, dir.path(), &screenshot);
    eprintln!(
        "chromium inspected the report in {:?}; screenshot {}",
        started.elapsed(),
        screenshot.display()
    );
    assert_eq!(report.problems(), Vec::<String>::new(), "{report:#?}");

    // Every chart of the page, each with every line the report draws.
    let svgs = html.matches("<svg").count();
    let (history, targets) = history_and_targets();
    let expected = expected_charts(&history, &targets);
    assert_eq!(svgs, expected.len(), "a chart each");
    assert_eq!(
        expected.last(),
        Some(&vec!["projected", "promised"]),
        "the target's chart"
    );
    assert_eq!(report.charts.len(), svgs, "{report:#?}");
    let names: Vec<Vec<&str>> = report
        .charts
        .iter()
        .map(|c| c.series.iter().map(|s| s.name.as_str()).collect())
        .collect();
    assert_eq!(names, expected);
    for chart in &report.charts {
        for line in &chart.series {
            // Seven days: seven levels, or six differences between them.
            assert!(line.points >= 6, "{line:?}");
        }
    }
    // The open cases rise over the week: their line has height as well as width.
    let open = &report.charts[0].series[0];
    assert!(open.bbox_height > 10.0, "{open:?}");

    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert_eq!(png.len(), report.png_bytes);
    let (width, height) = png_size(&png);
    assert!(width >= 600, "{width}x{height}");
    // The whole page, beyond the 768 pixels of the window: five charts of 200 pixels and more.
    assert!(height > 1000, "{width}x{height}");
    assert!(png.len() > 20_000, "{} bytes", png.len());
    // Printable: the page prints to a PDF of a few pages (seven charts of 220 pixels and the
    // tables do not fit on one; 4 pages at the time of writing).
    assert!(
        (2..=12).contains(&report.pdf_pages),
        "{} PDF pages",
        report.pdf_pages
    );
}

#[test]
fn a_console_error_is_reported() {
    let html = report_html().replacen(
        "</body>",
        "<script>console.error(\"boom\")</script></body>",
        1,
    );
    let report = inspect_page(&html);
    let problems = report.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("console.error") && p.contains("boom")),
        "{problems:#?}"
    );
}

#[test]
fn an_uncaught_exception_is_reported() {
    let html = report_html().replacen("</body>", "<script>null.chart.draw()</script></body>", 1);
    let report = inspect_page(&html);
    let problems = report.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("uncaught exception") && p.contains("TypeError")),
        "{problems:#?}"
    );
}

#[test]
fn a_chart_without_its_line_is_reported() {
    let html = report_html();
    // The first line of the first chart with its points taken away.
    let start = html.find(" points=\"").expect("a polyline with points") + " points=\"".len();
    let end = start + html[start..].find('"').expect("the attribute ends");
    let html = format!("{}{}", &html[..start], &html[end..]);
    let report = inspect_page(&html);
    let problems = report.problems();
    assert_eq!(
        problems,
        ["empty chart: svg #0 series \"open\" has 0 point(s)"],
        "{report:#?}"
    );
}

#[test]
fn a_chart_with_no_line_at_all_is_reported() {
    let html = report_html().replacen(
        "<h3>",
        "<h3>Empty</h3><svg width=\"100\" height=\"50\"></svg><h3>",
        1,
    );
    let report = inspect_page(&html);
    assert_eq!(
        report.problems(),
        ["empty chart: svg #0 has no polyline"],
        "{report:#?}"
    );
}

#[test]
fn a_resource_that_fails_to_load_is_reported() {
    // Two images that cannot load: port 1, which Chromium refuses to try at all (it is on its list
    // of unsafe ports: net::ERR_UNSAFE_PORT), and a file beside the page that is not there.
    let html = report_html().replacen(
        "</h1>",
        "</h1><img src=\"http://127.0.0.1:1/x.png\" alt=\"\"><img src=\"missing.png\" alt=\"\">",
        1,
    );
    let report = inspect_page(&html);
    let problems = report.problems();
    for url in ["http://127.0.0.1:1/x.png", "missing.png"] {
        assert!(
            problems
                .iter()
                .any(|p| p.contains("Failed to load resource") && p.contains(url)),
            "{url}: {problems:#?}"
        );
    }
}

/// The `Content-Security-Policy` a real daemon sends with `GET /report`, and that page as Chromium
/// shows it over HTTP with that header (a fresh daemon's: no day has ended, so no chart yet).
fn daemons_policy() -> String {
    let store = tempfile::tempdir().expect("a temporary directory");
    let daemon = harness::Daemon::start(store.path(), &[]);
    let response = daemon.get("/report");
    assert_eq!(response.status, 200, "{}", response.text());
    let policy = response
        .header("content-security-policy")
        .expect("GET /report sends a Content-Security-Policy")
        .to_owned();
    let served = cdp::inspect(
        &format!("{}/report", daemon.url()),
        &store.path().join("served.png"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        served.problems(),
        Vec::<String>::new(),
        "the daemon's own page under its own header ({policy}): {served:#?}"
    );
    daemon.stop();
    policy
}

/// `html` with `policy` as a `<meta http-equiv>` ahead of everything in its head: Chromium enforces
/// it as it does the header for the directives the daemon uses (default-src, style-src, img-src),
/// and reports a violation with the same words.
fn under_policy(html: &str, policy: &str) -> String {
    let meta = format!(
        "<head><meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        policy.replace('&', "&amp;").replace('"', "&quot;")
    );
    assert!(html.contains("<head>"), "the report has a head");
    html.replacen("<head>", &meta, 1)
}

#[test]
fn the_report_is_clean_under_the_daemons_own_policy() {
    let policy = daemons_policy();
    let html = under_policy(&report_html(), &policy);
    let report = inspect_page(&html);
    // The inline style is allowed (else: "Applying inline style violates ..."), nothing else is
    // loaded, and every chart still has its lines.
    assert_eq!(
        report.problems(),
        Vec::<String>::new(),
        "{policy}: {report:#?}"
    );
    let (history, targets) = history_and_targets();
    assert_eq!(
        report.charts.len(),
        expected_charts(&history, &targets).len(),
        "{report:#?}"
    );
}

#[test]
fn a_violation_of_the_daemons_policy_is_reported() {
    let policy = daemons_policy();
    let html = under_policy(
        &report_html().replacen(
            "</body>",
            "<script>console.error(\"boom\")</script></body>",
            1,
        ),
        &policy,
    );
    let report = inspect_page(&html);
    let problems = report.problems();
    // Chromium reports the refusal as a Log.entryAdded of level error from source "security".
    assert!(
        problems
            .iter()
            .any(|p| p.contains("Executing inline script violates")
                && p.contains("Content Security Policy")
                && p.contains("(security)")),
        "{problems:#?}"
    );
    // The script did not run.
    assert!(
        !problems.iter().any(|p| p.contains("boom")),
        "{problems:#?}"
    );
}

#[test]
fn the_dutch_report_renders_as_cleanly() {
    let (history, targets) = history_and_targets();
    let html = render(Lang::Nl, &history, &targets, &context());
    assert!(html.contains("<html lang=\"nl\">"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let report = inspect_html(&html, dir.path(), &dir.path().join("nl.png"));
    assert_eq!(report.problems(), Vec::<String>::new(), "{report:#?}");
    assert_eq!(
        report.charts.len(),
        expected_charts(&history, &targets).len(),
        "{report:#?}"
    );
}
