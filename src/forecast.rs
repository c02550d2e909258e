//! `backlogd forecast`: asks a running daemon for its what-if projection (`GET /v1/forecast`,
//! docs/forecast.md), prints it as a table (or the JSON as received), and with `--svg FILE` draws
//! the projected open and overdue cases beside the announced targets.

use std::fmt::Write;
use std::path::PathBuf;

use crate::api;

pub struct ForecastOptions {
    /// The daemon.
    pub client: crate::client::Client,
    /// Query parameters as given (`weeks`, `hires`, `ramp_up`, ...).
    pub params: Vec<(String, String)>,
    pub json: bool,
    pub svg: Option<PathBuf>,
}

/// Why `backlogd forecast` failed.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    #[error("--json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("--svg: cannot write {}: {error}", path.display())]
    Svg {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Fetches the forecast and prints it; writes the SVG when asked.
pub fn run(options: &ForecastOptions) -> Result<(), ForecastError> {
    let query = query_string(&options.params);
    let path = if query.is_empty() {
        "/v1/forecast".to_owned()
    } else {
        format!("/v1/forecast?{query}")
    };
    let answer: api::Forecast = options.client.get_json(&path)?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", table(&answer));
    }
    if let Some(file) = &options.svg {
        std::fs::write(file, svg(&answer)).map_err(|error| ForecastError::Svg {
            path: file.clone(),
            error,
        })?;
    }
    Ok(())
}

/// The query string of the parameters, form-encoded (as the daemon decodes it).
fn query_string(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// The day of an instant, `YYYY-MM-DD` in UTC.
fn day(t: api::Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// A figure the daemon may not have (`null`): as it is, or "unknown".
fn plain(value: Option<f64>) -> String {
    value.map_or_else(|| "unknown".to_owned(), |v| (v + 0.0).to_string())
}

/// A figure the daemon may not have (`null`): the number, or "unknown".
fn figure(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "unknown".to_owned(), |v| fixed(v, decimals))
}

/// `x` with `decimals` decimals, never "-0" (a value that rounds to zero is 0).
fn fixed(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    match text.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_owned(),
        _ => text,
    }
}

/// The forecast as a plain-text table with a few lines of context above it.
pub fn table(answer: &api::Forecast) -> String {
    let mut out = String::new();
    let p = &answer.parameters;
    let o = &answer.observed;
    let _ = writeln!(
        out,
        "Forecast from {} ({} open, {} overdue; staff {} experienced, {} mentoring, {} inexperienced)",
        day(answer.start),
        o.open + 0.0,
        o.overdue + 0.0,
        o.staff_experienced + 0.0,
        o.staff_mentoring + 0.0,
        o.staff_inexperienced + 0.0,
    );
    let _ = writeln!(
        out,
        "Observed decisions per employee-week: experienced {}, mentoring {}, inexperienced {}",
        figure(o.decisions_per_employee_week_experienced, 2),
        figure(o.decisions_per_employee_week_mentoring, 2),
        figure(o.decisions_per_employee_week_inexperienced, 2),
    );
    let hires: Vec<String> = p
        .hires
        .iter()
        .map(|h| format!("{}@{}", h.count, h.week))
        .collect();
    let _ = writeln!(
        out,
        "Parameters: hires [{}], ramp-up {} weeks, {} mentees per mentor, {} leavers and {} new cases a week",
        hires.join(", "),
        p.ramp_up_weeks + 0.0,
        plain(p.mentor_ratio),
        p.leavers_per_week + 0.0,
        plain(p.inflow_per_week),
    );
    let horizon_end = answer.weeks.last().map_or(answer.start, |w| w.end);
    let clearance = match (answer.clearance_outlook, answer.clearance) {
        (api::ClearanceOutlook::WithinHorizon, Some(c)) => day(c),
        (api::ClearanceOutlook::Never, _) => {
            "never (the inflow outpaces every employee at the best observed rate)".to_owned()
        }
        _ => format!(
            "not within the horizon of {} weeks (to {})",
            answer.weeks.len(),
            day(horizon_end)
        ),
    };
    let _ = writeln!(out, "Projected clearance: {clearance}");
    for t in &answer.targets {
        let verdict = match (answer.clearance_outlook, answer.clearance) {
            (api::ClearanceOutlook::Never, _) => {
                " (missed: the backlog never clears at this projection)"
            }
            (api::ClearanceOutlook::WithinHorizon, Some(c)) if c > t.clear_by => {
                " (missed at this projection)"
            }
            (api::ClearanceOutlook::WithinHorizon, _) => "",
            // Still open at the horizon's end: missed when the date is within the horizon.
            (api::ClearanceOutlook::NotWithinHorizon, _) if t.clear_by <= horizon_end => {
                " (missed at this projection)"
            }
            (api::ClearanceOutlook::NotWithinHorizon, _) => {
                " (after the horizon: not known at this projection)"
            }
        };
        let _ = writeln!(out, "Target {}: {}{verdict}", t.target, day(t.clear_by));
    }
    let _ = writeln!(
        out,
        "\n{:>4}  {:<10}  {:>9}  {:>9}  {:>9}  {:>7}  {:>11}  {:>9}  {:>13}",
        "week",
        "ends",
        "open",
        "overdue~",
        "decisions",
        "inflow",
        "experienced",
        "mentoring",
        "inexperienced"
    );
    for w in &answer.weeks {
        let _ = writeln!(
            out,
            "{:>4}  {:<10}  {:>9}  {:>9}  {:>9}  {:>7}  {:>11}  {:>9}  {:>13}",
            w.week,
            day(w.end),
            fixed(w.open, 0),
            fixed(w.overdue_estimated, 0),
            fixed(w.decisions, 1),
            fixed(w.inflow, 1),
            fixed(w.staff_experienced, 1),
            fixed(w.staff_mentoring, 1),
            fixed(w.staff_inexperienced, 1),
        );
    }
    out
}

fn seconds(t: api::Timestamp) -> f64 {
    t.as_second() as f64
}

/// A self-contained SVG: open and estimated overdue cases week by week, the projected clearance,
/// and each announced target's date (drawn at the right edge, marked, when beyond the horizon).
pub fn svg(answer: &api::Forecast) -> String {
    let (width, height) = (960.0, 420.0);
    let (left, right, top, bottom) = (70.0, 200.0, 40.0, 50.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let start = seconds(answer.start);
    let weeks = &answer.weeks;
    let end = weeks
        .last()
        .map_or(start + 7.0 * 86_400.0, |w| seconds(w.end));
    let open0 = answer.observed.open;
    let overdue0 = answer.observed.overdue;
    let max = weeks.iter().map(|w| w.open).fold(open0.max(1.0), f64::max) * 1.1;
    let x = |t: f64| left + plot_w * ((t - start) / (end - start)).clamp(0.0, 1.0);
    let y = |v: f64| top + plot_h * (1.0 - (v / max).clamp(0.0, 1.0));
    let line = |value: fn(&api::ForecastWeek) -> f64, first: f64| {
        let mut points = format!("{:.1},{:.1}", x(start), y(first));
        for w in weeks {
            let _ = write!(points, " {:.1},{:.1}", x(seconds(w.end)), y(value(w)));
        }
        points
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="{width}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="22" font-size="15">Projected open cases from {} ({} weeks)</text>"#,
        crate::report::escape(&day(answer.start)),
        weeks.len()
    );
    // Axes and a few gridlines.
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.0}</text>"##,
            left + plot_w,
            left - 6.0,
            y(v) + 4.0,
            y = y(v)
        );
    }
    for (i, w) in weeks.iter().enumerate() {
        if (i + 1) % 13 == 0 {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x(seconds(w.end)),
                top + plot_h + 18.0,
                crate::report::escape(&day(w.end))
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<line x1="{left}" x2="{left}" y1="{top}" y2="{:.1}" stroke="black"/><line x1="{left}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="black"/>"#,
        top + plot_h,
        left + plot_w,
        top + plot_h,
        top + plot_h
    );
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#1f5fa8" stroke-width="2.5" points="{}"/>"##,
        line(|w| w.open, open0)
    );
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#c0392b" stroke-width="2" stroke-dasharray="6 4" points="{}"/>"##,
        line(|w| w.overdue_estimated, overdue0)
    );
    let mut legend = vec![
        ("#1f5fa8", "open cases".to_owned()),
        ("#c0392b", "past deadline (estimate)".to_owned()),
    ];
    if let (api::ClearanceOutlook::WithinHorizon, Some(clearance)) =
        (answer.clearance_outlook, answer.clearance)
    {
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{:.1}" stroke="#27ae60" stroke-width="2"/>"##,
            top + plot_h,
            x = x(seconds(clearance))
        );
        legend.push(("#27ae60", format!("projected clearance {}", day(clearance))));
    } else if answer.clearance_outlook == api::ClearanceOutlook::Never {
        legend.push(("#27ae60", "never cleared at these rates".to_owned()));
    } else {
        legend.push(("#27ae60", "no clearance within the horizon".to_owned()));
    }
    for target in &answer.targets {
        let t = seconds(target.clear_by);
        let name = &target.target;
        let beyond = t > end;
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{:.1}" stroke="#8e44ad" stroke-width="2" stroke-dasharray="{}"/>"##,
            top + plot_h,
            if beyond { "2 3" } else { "8 3" },
            x = x(t)
        );
        legend.push((
            "#8e44ad",
            format!(
                "target {name}: {}{}",
                day(target.clear_by),
                if beyond { " (beyond the horizon)" } else { "" }
            ),
        ));
    }
    for (i, (colour, text)) in legend.iter().enumerate() {
        let ly = top + 10.0 + 20.0 * i as f64;
        let lx = left + plot_w + 12.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="{:.1}" width="12" height="4" fill="{colour}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            ly - 4.0,
            lx + 16.0,
            ly + 1.0,
            crate::report::escape(text)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> api::Forecast {
        serde_json::from_value(serde_json::json!({
            "start": "2026-01-05T00:00:00Z",
            "clearance": "2026-03-02T00:00:00Z",
            "clearance_outlook": "within_horizon",
            "parameters": {"weeks": 2, "hires": [{"count": 5.0, "week": 1}], "ramp_up_weeks": 26.0,
                "mentor_ratio": 4.0, "leavers_per_week": 0.0, "inflow_per_week": 10.0},
            "observed": {"open": 100.0, "overdue": 40.0, "staff_experienced": 3.0, "staff_mentoring": 1.0,
                "staff_inexperienced": 4.0, "decisions_per_employee_week_experienced": 2.0,
                "decisions_per_employee_week_mentoring": 0.5, "decisions_per_employee_week_inexperienced": 0.5,
                "net_inflow_per_week": 10.0, "decision_period_weeks": 26.0},
            "targets": [{"target": "backlog", "track": "asylum", "clear_by": "2026-02-01T00:00:00Z"},
                        {"target": "later", "track": null, "clear_by": "2027-01-01T00:00:00Z"}],
            "weeks": [
                {"week": 1, "end": "2026-01-12T00:00:00Z", "open": 90.0, "overdue_estimated": 35.0, "decisions": 20.0,
                 "inflow": 10.0, "staff_experienced": 3.0, "staff_mentoring": 1.0, "staff_inexperienced": 4.0},
                {"week": 2, "end": "2026-01-19T00:00:00Z", "open": 80.0, "overdue_estimated": 30.0, "decisions": 20.0,
                 "inflow": 10.0, "staff_experienced": 3.0, "staff_mentoring": 1.0, "staff_inexperienced": 9.0}
            ]
        }))
        .expect("the answer of the example decodes")
    }

    #[test]
    fn the_table_has_a_row_a_week_and_says_which_target_is_missed() {
        let text = table(&answer());
        expect_test::expect![[r#"
            Forecast from 2026-01-05 (100 open, 40 overdue; staff 3 experienced, 1 mentoring, 4 inexperienced)
            Observed decisions per employee-week: experienced 2.00, mentoring 0.50, inexperienced 0.50
            Parameters: hires [5@1], ramp-up 26 weeks, 4 mentees per mentor, 0 leavers and 10 new cases a week
            Projected clearance: 2026-03-02
            Target backlog: 2026-02-01 (missed at this projection)
            Target later: 2027-01-01

            week  ends             open   overdue~  decisions   inflow  experienced  mentoring  inexperienced
               1  2026-01-12         90         35       20.0     10.0          3.0        1.0            4.0
               2  2026-01-19         80         30       20.0     10.0          3.0        1.0            9.0
        "#]]
        .assert_eq(&text);
    }

    #[test]
    fn the_svg_is_self_contained_and_marks_targets_beyond_the_horizon() {
        let drawing = svg(&answer());
        assert!(drawing.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(drawing.trim_end().ends_with("</svg>"));
        assert!(!drawing.contains("<script") && !drawing.contains("href"));
        assert!(drawing.contains("target backlog: 2026-02-01 (beyond the horizon)"));
        assert!(drawing.contains("projected clearance 2026-03-02"));
        assert_eq!(drawing.matches("<polyline").count(), 2);
        // What the daemon's query parser reads back is what was given.
        let params = vec![
            ("hires".to_owned(), "250@2, 10@8".to_owned()),
            ("ramp_up".to_owned(), "P26W&x=1".to_owned()),
        ];
        let decoded: Vec<(String, String)> =
            form_urlencoded::parse(query_string(&params).as_bytes())
                .into_owned()
                .collect();
        assert_eq!(decoded, params);
    }

    /// A horizon too short to see the clearance says so, and does not call the backlog "never"
    /// cleared, nor a target beyond the horizon missed.
    #[test]
    fn not_within_the_horizon_is_not_never() {
        let mut short = answer();
        short.clearance = None;
        short.clearance_outlook = api::ClearanceOutlook::NotWithinHorizon;
        let text = table(&short);
        assert!(
            text.contains(
                "Projected clearance: not within the horizon of 2 weeks (to 2026-01-19)\n"
            ),
            "{text}"
        );
        assert!(!text.contains("never"), "{text}");
        // 2026-02-01 and 2027-01-01 are after the horizon's end: unknown, not missed.
        assert!(
            text.contains(
                "Target backlog: 2026-02-01 (after the horizon: not known at this projection)\n"
            ),
            "{text}"
        );
        let drawing = svg(&short);
        assert!(
            drawing.contains("no clearance within the horizon"),
            "{drawing}"
        );
        assert!(!drawing.contains("never"), "{drawing}");
        // Never is never, and misses every target.
        let mut never = short.clone();
        never.clearance_outlook = api::ClearanceOutlook::Never;
        let text = table(&never);
        assert!(
            text.contains("Projected clearance: never (the inflow outpaces every employee at the best observed rate)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "Target later: 2027-01-01 (missed: the backlog never clears at this projection)\n"
            ),
            "{text}"
        );
        assert!(svg(&never).contains("never cleared at these rates"));
        // A target within the horizon is missed when the backlog is still open at its end.
        let mut early = short.clone();
        early.targets[0].clear_by = "2026-01-10T00:00:00Z".parse().unwrap();
        assert!(
            table(&early).contains("Target backlog: 2026-01-10 (missed at this projection)\n"),
            "{}",
            table(&early)
        );
    }

    /// No figure of the forecast reads "-0": the projection of an agency without inexperienced
    /// staff, through the daemon's body and the table.
    #[test]
    fn no_figure_is_minus_zero() {
        use crate::core::forecast::{ForecastInputs, ForecastParams, project};
        let inputs = ForecastInputs {
            start: 1_767_571_200_000_000_000,
            open: 10.0,
            overdue: 0.0,
            experienced: 2.0,
            mentors: 0.0,
            inexperienced: 0.0,
            rate_experienced: 1.0,
            rate_mentor: 1.0,
            rate_inexperienced: 0.0,
            net_inflow_per_week: 0.0,
            decision_period_weeks: 26.0,
        };
        let forecast = project(&inputs, &ForecastParams::default());
        let answer = crate::server::forecast_body(&crate::engine::ForecastAnswer {
            forecast,
            targets: Vec::new(),
        });
        // A number that reads as a negative zero ("-0", "-0.0").
        let minus_zero = |text: &str| {
            text.split(|c: char| c.is_whitespace() || ",:[]{}()\"".contains(c))
                .any(|word| word.starts_with('-') && word.parse::<f64>() == Ok(0.0))
        };
        assert!(minus_zero("a -0.0 b") && minus_zero("[-0]") && !minus_zero("2026-01-05"));
        let json = serde_json::to_string(&answer).unwrap();
        assert!(!minus_zero(&json), "{json}");
        let text = table(&answer);
        assert!(!minus_zero(&text), "{text}");
        let mut negative = answer.clone();
        negative.weeks[0].staff_inexperienced = -0.0;
        negative.weeks[0].overdue_estimated = -0.2;
        let text = table(&negative);
        assert!(!minus_zero(&text), "{text}");
    }
}
