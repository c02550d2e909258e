//! The what-if forecast: `GET /v1/forecast` and `backlogd forecast` against a daemon with a small
//! agency: four experienced caseworkers who decided 40 cases over the last four weeks.

use backlogd::api::Forecast;

use crate::harness::{Daemon, backlogd};

fn events() -> String {
    let now = jiff::Timestamp::now();
    let at = |days_ago: i64| (now - jiff::SignedDuration::from_hours(24 * days_ago)).to_string();
    let mut lines = Vec::new();
    for e in 0..4 {
        lines.push(format!(
            r#"{{"specversion":"1.0","id":"j{e}","type":"employee.joined","source":"it","time":"{}","data":{{"employee":"e{e}","role":"caseworker","experienced":true}}}}"#,
            at(100)
        ));
    }
    for i in 0..100 {
        lines.push(format!(
            r#"{{"specversion":"1.0","id":"r{i}","type":"case.registered","source":"it","time":"{}","data":{{"case":"c{i}","track":"asylum"}}}}"#,
            at(60)
        ));
    }
    for i in 0..40 {
        lines.push(format!(
            r#"{{"specversion":"1.0","id":"d{i}","type":"case.decided","source":"it","time":"{}","data":{{"case":"c{i}","outcome":"granted","decided_by":"e{}"}}}}"#,
            at(27 - i / 2),
            i % 4
        ));
    }
    lines.join("\n") + "\n"
}

#[test]
fn the_forecast_projects_week_by_week_from_the_observed_rate() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    daemon.post_ok(&events(), 144);
    daemon.await_metric(
        r#"backlogd_capacity_decisions{role="caseworker",experienced="true",mentoring="false"}"#,
        40.0,
    );
    let response = daemon.get("/v1/forecast?weeks=8&inflow_per_week=0");
    assert_eq!(response.status, 200, "{}", response.text());
    let forecast: Forecast = response.decode();
    let weeks = &forecast.weeks;
    assert_eq!(weeks.len(), 8, "{forecast:#?}");
    // 60 open; 4 employees × 2.5 decisions a week (40 in 4 weeks, with a bucket of rounding).
    let rate = forecast
        .observed
        .decisions_per_employee_week_experienced
        .expect("a rate");
    assert!((rate - 2.5).abs() < 0.05, "{rate}");
    let first = weeks[0].decisions;
    assert!((first - 10.0).abs() < 0.5, "{first}");
    // Nothing comes in: cleared in about six weeks.
    assert_eq!(weeks[7].open, 0.0);
    let clearance = forecast.clearance.expect("a clearance date");
    let weeks_away =
        (clearance.as_second() - jiff::Timestamp::now().as_second()) as f64 / 604_800.0;
    assert!((weeks_away - 6.0).abs() < 0.2, "{weeks_away}");
    assert_eq!(forecast.targets[0].target, "backlog");

    let response = daemon.get("/v1/forecast?hires=ten");
    assert_eq!(response.status, 400);
    let error = response.json().unwrap()["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert_eq!(
        error,
        "parameter `hires`: \"ten\" is not COUNT@WEEK, e.g. \"250@2\""
    );

    let svg = dir.path().join("forecast.svg");
    let output = backlogd(&[
        "forecast",
        "--url",
        &daemon.url(),
        "--weeks",
        "12",
        "--hires",
        "2@1",
        "--ramp-up",
        "P4W",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Parameters: hires [2@1], ramp-up 4 weeks"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("  12  ")).count(),
        1,
        "{stdout}"
    );
    let drawing = std::fs::read_to_string(&svg).unwrap();
    assert!(drawing.contains("target backlog"), "{drawing}");
    daemon.stop();
}
