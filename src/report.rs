//! `backlogd report` and `GET /report`: one self-contained HTML page for people who do not read
//! PromQL, drawn from the daily history (`GET /v1/history`) and the targets (`GET /v1/targets`):
//! headline numbers with their change since the previous day of the range, charts as inline SVG
//! (no scripts, fonts or assets from outside; printable), the targets against the projection, and
//! the facts that ask for a decision. English or Dutch.
//!
//! It reads the two JSON documents of the HTTP API (so it depends on nothing but what any client
//! can see); the daemon renders it at `GET /report`, and the CLI writes what the daemon serves.
//! Every chart carries its values in `data-values`, which the tests compare with the history.

use std::fmt::Write;

use serde_json::Value;

/// The page's language (`--lang`, `?lang=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Nl,
}

impl From<crate::config::ReportLanguage> for Lang {
    fn from(language: crate::config::ReportLanguage) -> Lang {
        match language {
            crate::config::ReportLanguage::En => Lang::En,
            crate::config::ReportLanguage::Nl => Lang::Nl,
        }
    }
}

impl Lang {
    /// The text for `key`, or for its weekly form (`{key}_week`) when `weekly` and there is one.
    fn t_weekly(self, key: &str, weekly: bool) -> &'static str {
        let week = if weekly {
            self.t(&format!("{key}_week"))
        } else {
            ""
        };
        if week.is_empty() { self.t(key) } else { week }
    }

    /// `en` or `nl`, as `parse` reads it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Nl => "nl",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "en" => Some(Lang::En),
            "nl" => Some(Lang::Nl),
            _ => None,
        }
    }

    /// The text for `key` in this language.
    fn t(self, key: &str) -> &'static str {
        let (en, nl) = match key {
            "title" => ("Backlog report", "Rapportage werkvoorraad"),
            "period" => ("Days", "Dagen"),
            "open" => ("Open cases", "Openstaande zaken"),
            "overdue" => ("Past the deadline", "Over de beslistermijn"),
            "due_soon" => ("Due soon", "Binnenkort over de termijn"),
            "inflow" => ("New cases per day", "Nieuwe zaken per dag"),
            "outflow" => ("Decided per day", "Afgehandeld per dag"),
            "experienced" => ("Experienced staff", "Ervaren medewerkers"),
            "inexperienced" => ("Inexperienced staff", "Onervaren medewerkers"),
            "per_mentor" => ("Newcomers per mentor", "Nieuwkomers per mentor"),
            "unmentored" => ("Newcomers without a mentor", "Nieuwkomers zonder mentor"),
            "audits_passed" => ("Audits passed per day", "Goedgekeurde toetsen per dag"),
            "audits_failed" => ("Audits failed per day", "Afgekeurde toetsen per dag"),
            "exposure" => ("Penalty exposure (EUR)", "Dwangsomrisico (EUR)"),
            "incurred" => ("Penalties incurred (EUR)", "Betaalde dwangsommen (EUR)"),
            "headline" => ("Where we stand", "Waar we staan"),
            "change" => ("since", "sinds"),
            "charts" => ("Over time", "In de tijd"),
            "targets" => ("Announced dates", "Aangekondigde data"),
            "projected" => ("Projected clearance", "Verwachte datum weggewerkt"),
            "promised" => ("Date promised", "Beloofde datum"),
            "or_later" => ("or later, or never", "of later, of nooit"),
            "against" => (
                "the clearance projected each day against the date promised then",
                "de verwachte datum van elke dag tegen de toen beloofde datum",
            ),
            "dilemmas" => ("What needs a decision", "Wat om een besluit vraagt"),
            "mentoring" => ("Mentoring", "Begeleiding"),
            "flows" => (
                "New and decided cases per day",
                "Nieuwe en afgehandelde zaken per dag",
            ),
            "flows_week" => (
                "New and decided cases per week",
                "Nieuwe en afgehandelde zaken per week",
            ),
            "inflow_week" => ("New cases per week", "Nieuwe zaken per week"),
            "outflow_week" => ("Decided per week", "Afgehandeld per week"),
            "audits_week" => ("Quality audits per week", "Kwaliteitstoetsen per week"),
            "audits_passed_week" => ("Audits passed per week", "Goedgekeurde toetsen per week"),
            "audits_failed_week" => ("Audits failed per week", "Afgekeurde toetsen per week"),
            "staff" => ("Staff", "Medewerkers"),
            "audits" => ("Quality audits per day", "Kwaliteitstoetsen per dag"),
            "penalties" => ("Penalties (EUR)", "Dwangsommen (EUR)"),
            "announced_at" => ("Announced", "Aangekondigd"),
            "announced_by" => ("By", "Door"),
            "clear_by" => ("Cleared by", "Weggewerkt op"),
            "projection_then" => ("Projection then", "Prognose toen"),
            "never" => ("never", "nooit"),
            "behind" => (
                "already behind the projection",
                "toen al achter op de prognose",
            ),
            "within" => ("within the projection", "binnen de prognose"),
            "no_targets" => ("No date was announced.", "Er is geen datum aangekondigd."),
            "too_few_days" => (
                "Too few days for a line yet.",
                "Nog te weinig dagen voor een lijn.",
            ),
            "no_days" => (
                "No day has ended since the history began: nothing to show yet.",
                "Er is nog geen dag voorbij sinds de geschiedenis begon: nog niets te tonen.",
            ),
            "nothing" => (
                "Nothing in these figures calls for a decision today.",
                "Niets in deze cijfers vraagt vandaag om een besluit.",
            ),
            _ => ("", ""),
        };
        match self {
            Lang::En => en,
            Lang::Nl => nl,
        }
    }
}

/// One day's figure, summed over the tracks when it is per track.
fn figure(day: &Value, path: &[&str]) -> f64 {
    let mut at = day;
    for key in path {
        at = &at[*key];
    }
    at.as_f64().unwrap_or(0.0)
}

fn tracks_sum(day: &Value, field: &str) -> f64 {
    day["tracks"].as_object().map_or(0.0, |tracks| {
        tracks
            .values()
            .map(|t| {
                if field == "due_soon" {
                    // The first (shortest) due-soon window.
                    t["due_soon"]
                        .as_object()
                        .and_then(|w| w.values().next())
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0)
                } else {
                    t[field].as_f64().unwrap_or(0.0)
                }
            })
            .sum()
    })
}

/// Above this many days, the lines of cumulative totals (flows, audits) are summed by week rather
/// than by day: two years of daily flows draw as a band, not a line.
pub const WEEKLY_AFTER_DAYS: usize = 91;

/// The days a difference series reads: every `step`-th day counting back from the last, oldest
/// first.
fn sampled(days: usize, step: usize) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..days).rev().step_by(step.max(1)).collect();
    indices.reverse();
    indices
}

/// A series over the days: the level each day, or for cumulative totals the difference between
/// consecutive sampled days (every day, or every seventh for a weekly chart; the first sampled day
/// has no previous and is left out of a difference series).
fn series(days: &[Value], value: impl Fn(&Value) -> f64, per_day: bool, step: usize) -> Vec<f64> {
    if per_day {
        sampled(days.len(), step)
            .windows(2)
            .map(|w| value(&days[w[1]]) - value(&days[w[0]]))
            .collect()
    } else {
        days.iter().map(value).collect()
    }
}

/// One line of a chart: its text key and its values, oldest first.
pub type Line = (&'static str, Vec<f64>);

/// A chart: its title key, its lines, the day (index into the history's days) of each value, and
/// whether its values are weekly sums.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: &'static str,
    pub lines: Vec<Line>,
    pub days: Vec<usize>,
    pub weekly: bool,
}

/// A headline figure: its text key and how to read it from a day.
type Headline = (&'static str, fn(&Value) -> f64);

/// The named series of every chart, in page order.
pub fn charts(history: &Value) -> Vec<Chart> {
    let days: &[Value] = history["days"].as_array().map_or(&[], Vec::as_slice);
    let step = if days.len() > WEEKLY_AFTER_DAYS { 7 } else { 1 };
    let flow_days: Vec<usize> = sampled(days.len(), step).into_iter().skip(1).collect();
    let level_days: Vec<usize> = (0..days.len()).collect();
    let chart = |title, lines, per_day: bool| Chart {
        title,
        lines,
        days: if per_day {
            flow_days.clone()
        } else {
            level_days.clone()
        },
        weekly: per_day && step == 7,
    };
    let series = |value: &dyn Fn(&Value) -> f64, per_day: bool| series(days, value, per_day, step);
    let total = |d: &Value, field: &str| tracks_sum(d, field);
    vec![
        chart(
            "open",
            vec![
                ("open", series(&|d| total(d, "open"), false)),
                ("overdue", series(&|d| total(d, "overdue"), false)),
                ("due_soon", series(&|d| total(d, "due_soon"), false)),
            ],
            false,
        ),
        chart(
            "flows",
            vec![
                ("inflow", series(&|d| total(d, "inflow_total"), true)),
                ("outflow", series(&|d| total(d, "outflow_total"), true)),
            ],
            true,
        ),
        chart(
            "staff",
            vec![
                (
                    "experienced",
                    series(&|d| figure(d, &["employees", "experienced"]), false),
                ),
                (
                    "inexperienced",
                    series(&|d| figure(d, &["employees", "inexperienced"]), false),
                ),
            ],
            false,
        ),
        chart(
            "mentoring",
            vec![
                (
                    "per_mentor",
                    series(&|d| figure(d, &["employees", "mentees_per_mentor"]), false),
                ),
                (
                    "unmentored",
                    series(&|d| figure(d, &["employees", "unmentored"]), false),
                ),
            ],
            false,
        ),
        chart(
            "audits",
            vec![
                (
                    "audits_passed",
                    series(&|d| figure(d, &["audits", "passed_total"]), true),
                ),
                (
                    "audits_failed",
                    series(&|d| figure(d, &["audits", "failed_total"]), true),
                ),
            ],
            true,
        ),
        chart(
            "penalties",
            vec![
                (
                    "exposure",
                    series(&|d| total(d, "penalty_exposure_euros"), false),
                ),
                (
                    "incurred",
                    series(&|d| total(d, "penalty_incurred_euros"), false),
                ),
            ],
            false,
        ),
    ]
}

const COLOURS: [&str; 3] = ["#1f4e79", "#c0392b", "#d68910"];

/// An inline SVG line chart of the series (each scaled to the largest value of the chart), with the
/// first and last day of its values under the time axis; `days` are the days of the values.
fn svg(lang: Lang, chart: &Chart, days: (&str, &str), top_label: Option<&str>) -> String {
    let series = &chart.lines;
    let (width, height, pad, top, bottom) = (640.0, 220.0, 30.0, 20.0, 50.0);
    let base = height - bottom;
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\">\
         <line x1=\"{pad}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#999\"/>\
         <text x=\"2\" y=\"14\" font-size=\"11\">{}</text>\
         <text x=\"{pad}\" y=\"{}\" font-size=\"11\" fill=\"#555\">{}</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#555\" text-anchor=\"end\">{}</text>",
        width - 10.0,
        top_label.map_or_else(|| format_number(max), escape),
        base + 16.0,
        escape(days.0),
        width - 10.0,
        base + 16.0,
        escape(days.1),
    );
    for (i, (key, values)) in series.iter().enumerate() {
        let step = if values.len() > 1 {
            (width - pad - 10.0) / (values.len() - 1) as f64
        } else {
            0.0
        };
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(x, v)| {
                format!(
                    "{:.1},{:.1}",
                    pad + x as f64 * step,
                    base - v / max * (base - top)
                )
            })
            .collect();
        let data: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
        let colour = COLOURS[i % COLOURS.len()];
        let _ = write!(
            out,
            "<polyline data-series=\"{key}\" data-values=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{colour}\">{}</text>",
            data.join(","),
            points.join(" "),
            pad + 180.0 * i as f64,
            height - 8.0,
            escape(lang.t_weekly(key, chart.weekly))
        );
    }
    out.push_str("</svg>");
    out
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The percentage of a row's decisions in the window taken by new staff, and the decisions; `None`
/// without decisions by new staff.
fn new_staff_share(row: &Value) -> Option<(f64, f64)> {
    let decisions = figure(row, &["decisions", "in_window"]);
    let by_new = figure(row, &["decisions", "by_new_staff_in_window"]);
    (decisions > 0.0 && by_new > 0.0).then(|| (100.0 * by_new / decisions, decisions))
}

/// "N% of the decisions in the window up to the day were taken by staff in their first weeks", of
/// one history row (`highest`: said as the highest share of the period); `None` without any.
fn new_staff_fact(lang: Lang, history: &Value, row: &Value, highest: bool) -> Option<String> {
    let (share, decisions) = new_staff_share(row)?;
    let weeks = history["new_staff_weeks"].as_u64().unwrap_or(0);
    let day = row["day"].as_str().unwrap_or("?");
    let window = history["decision_window"].as_str().unwrap_or("?");
    // "P28D" in words: whole days, or the label itself.
    let days = window
        .parse::<jiff::SignedDuration>()
        .ok()
        .or_else(|| {
            window.parse::<jiff::Span>().ok().and_then(|s| {
                s.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                    .ok()
            })
        })
        .filter(|d| d.as_secs() > 0 && d.as_secs() % 86_400 == 0)
        .map(|d| d.as_secs() / 86_400);
    let period = match (lang, days) {
        (Lang::En, Some(days)) => format!("the {days} days"),
        (Lang::En, None) => format!("the {window}"),
        (Lang::Nl, Some(days)) => format!("de {days} dagen"),
        (Lang::Nl, None) => format!("de periode {window}"),
    };
    Some(match (lang, highest) {
        (Lang::En, false) => format!(
            "{share:.0}% of the {decisions:.0} decisions in {period} up to {day} were taken by staff in their first {weeks} weeks."
        ),
        (Lang::En, true) => format!(
            "At its highest, {share:.0}% of the {decisions:.0} decisions in {period} up to {day} were taken by staff in their first {weeks} weeks."
        ),
        (Lang::Nl, false) => format!(
            "{share:.0}% van de {decisions:.0} beslissingen in {period} tot en met {day} is genomen door medewerkers in hun eerste {weeks} weken."
        ),
        (Lang::Nl, true) => format!(
            "Op het hoogste punt is {share:.0}% van de {decisions:.0} beslissingen in {period} tot en met {day} genomen door medewerkers in hun eerste {weeks} weken."
        ),
    })
}

/// The date of an RFC 3339 instant (its first ten characters), or the text as it is.
fn date_of(instant: &str) -> &str {
    match instant.get(..10) {
        Some(date) if instant.len() > 10 && date.parse::<jiff::civil::Date>().is_ok() => date,
        _ => instant,
    }
}

/// Text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The clearance the history projected each day for a target against the date promised for it that
/// day, both in weeks after the first of those days (drawn from 0, the first day, up).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetChart {
    pub target: String,
    /// The days drawn (indices into the history's days): from the first with a promise.
    pub days: Vec<usize>,
    /// Weeks to the projected clearance; a projection beyond the chart's top, or none (the
    /// backlog not shrinking), is drawn at the top.
    pub projected: Vec<f64>,
    pub promised: Vec<f64>,
    /// The instant at the chart's top.
    pub top: jiff::Timestamp,
}

/// A chart for each target whose track the history has (a target of all tracks only when there
/// is one track) and that had a promise on some day of the range.
pub fn target_charts(history: &Value, targets: &Value) -> Vec<TargetChart> {
    const WEEK: f64 = 604_800.0;
    let days: &[Value] = history["days"].as_array().map_or(&[], Vec::as_slice);
    let instant = |v: &Value| v.as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let tracks: Vec<&String> = days
        .first()
        .and_then(|d| d["tracks"].as_object())
        .map_or(Vec::new(), |t| t.keys().collect());
    let mut out = Vec::new();
    for target in targets.as_array().map_or(&[][..], Vec::as_slice) {
        let track = match (target["track"].as_str(), tracks.as_slice()) {
            (Some(track), _) if tracks.iter().any(|t| t.as_str() == track) => track.to_owned(),
            (None, [only]) => (*only).clone(),
            _ => continue,
        };
        let announcements: Vec<(jiff::Timestamp, jiff::Timestamp)> = target["announcements"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|a| Some((instant(&a["announced_at"])?, instant(&a["clear_by"])?)))
            .collect();
        let configured = instant(&target["configured_clear_by"]);
        // The date promised at `at`: the latest announcement made by then, else the configured one.
        let promised_at = |at: jiff::Timestamp| {
            announcements
                .iter()
                .rev()
                .find(|(made, _)| *made <= at)
                .map(|(_, date)| *date)
                .or(configured)
        };
        let points: Vec<(
            usize,
            jiff::Timestamp,
            jiff::Timestamp,
            Option<jiff::Timestamp>,
        )> = days
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let at = instant(&d["at"])?;
                let promised = promised_at(at)?;
                let seconds = d["tracks"][track.as_str()]["clearance_seconds"].as_f64();
                let projected = seconds
                    .filter(|s| s.is_finite() && *s < 1e11)
                    .and_then(|s| at.checked_add(jiff::SignedDuration::from_secs_f64(s)).ok());
                Some((i, at, promised, projected))
            })
            .collect();
        let Some(&(_, start, _, _)) = points.first() else {
            continue;
        };
        // To a tenth of a week (the chart cannot show more).
        let weeks = |t: jiff::Timestamp| {
            ((t.as_second() - start.as_second()) as f64 / WEEK * 10.0).round() / 10.0
        };
        // The top: half as far again beyond the start as the latest date promised.
        let latest_promise = points.iter().map(|p| weeks(p.2)).fold(1.0f64, f64::max);
        let top_weeks = (latest_promise * 1.5).ceil();
        let top = start
            .checked_add(jiff::SignedDuration::from_secs((top_weeks * WEEK) as i64))
            .unwrap_or(start);
        out.push(TargetChart {
            target: target["target"].as_str().unwrap_or("?").to_owned(),
            days: points.iter().map(|p| p.0).collect(),
            projected: points
                .iter()
                .map(|p| p.3.map_or(top_weeks, |t| weeks(t).clamp(0.0, top_weeks)))
                .collect(),
            promised: points
                .iter()
                .map(|p| weeks(p.2).clamp(0.0, top_weeks))
                .collect(),
            top,
        });
    }
    out
}

/// The facts that ask for a decision, in plain sentences.
fn dilemmas(lang: Lang, history: &Value, targets: &Value) -> Vec<String> {
    let days: &[Value] = history["days"].as_array().map_or(&[], Vec::as_slice);
    let mut out = Vec::new();
    if let Some(last) = days.last() {
        let audits = |d: &Value| {
            figure(d, &["audits", "passed_total"]) + figure(d, &["audits", "failed_total"])
        };
        // The last day the audit count moved.
        let last_audit = days
            .windows(2)
            .rev()
            .find(|w| audits(&w[1]) > audits(&w[0]))
            .and_then(|w| w[1]["day"].as_str());
        let quiet_since = match last_audit {
            Some(day) if day != last["day"].as_str().unwrap_or("") => Some(day),
            None if days.len() > 1 => days[0]["day"].as_str(),
            _ => None,
        };
        if let Some(day) = quiet_since {
            out.push(match lang {
                Lang::En => format!("Quality has not been measured since {day}."),
                Lang::Nl => format!("De kwaliteit is sinds {day} niet gemeten."),
            });
        }
        // The share of decisions by new staff: on the last day, and at its highest when higher.
        let share = |d: &Value| new_staff_share(d).map(|(share, _)| share);
        out.extend(new_staff_fact(lang, history, last, false));
        let peak = days
            .iter()
            .filter_map(|d| share(d).map(|s| (s, d)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((highest, day)) = peak
            && highest >= share(last).unwrap_or(0.0) + 1.0
        {
            out.extend(new_staff_fact(lang, history, day, true));
        }
        let unmentored = figure(last, &["employees", "unmentored"]);
        if unmentored > 0.0 {
            out.push(match lang {
                Lang::En if unmentored == 1.0 => "1 newcomer works without a mentor.".to_owned(),
                Lang::Nl if unmentored == 1.0 => "1 nieuwkomer werkt zonder mentor.".to_owned(),
                Lang::En => format!("{unmentored:.0} newcomers work without a mentor."),
                Lang::Nl => format!("{unmentored:.0} nieuwkomers werken zonder mentor."),
            });
        }
    }
    for target in targets.as_array().map_or(&[][..], Vec::as_slice) {
        let name = target["target"].as_str().unwrap_or("?");
        let clear_by_instant = target["clear_by"].as_str().unwrap_or("?");
        let clear_by = date_of(clear_by_instant);
        let (Ok(promised), projected) = (
            clear_by_instant.parse::<jiff::Timestamp>(),
            target["projected_clearance"]
                .as_str()
                .and_then(|p| p.parse::<jiff::Timestamp>().ok()),
        ) else {
            continue;
        };
        match projected {
            None => out.push(match lang {
                Lang::En => format!(
                    "At the observed rate the backlog does not shrink: the announced date of {clear_by} for \"{name}\" will not be met."
                ),
                Lang::Nl => format!(
                    "In het huidige tempo krimpt de voorraad niet: de aangekondigde datum {clear_by} voor \"{name}\" wordt niet gehaald."
                ),
            }),
            Some(projected) if projected > promised => {
                let weeks = (projected.as_second() - promised.as_second()) as f64 / 604_800.0;
                out.push(match lang {
                    Lang::En => format!(
                        "At the observed rate the announced date of {clear_by} for \"{name}\" will be missed by {weeks:.0} weeks."
                    ),
                    Lang::Nl => format!(
                        "In het huidige tempo wordt de aangekondigde datum {clear_by} voor \"{name}\" {weeks:.0} weken gemist."
                    ),
                });
            }
            Some(_) => {}
        }
    }
    out
}

/// The whole page.
pub fn render(lang: Lang, history: &Value, targets: &Value) -> String {
    let days: &[Value] = history["days"].as_array().map_or(&[], Vec::as_slice);
    let mut html = String::new();
    let lang_code = lang.code();
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"{lang_code}\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:720px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}\
         td.n,th.n{{text-align:right}}h2{{margin-top:1.6em}}@media print{{h2{{break-after:avoid}}svg{{break-inside:avoid}}}}</style>\
         </head><body><h1>{}</h1>",
        escape(lang.t("title")),
        escape(lang.t("title"))
    );
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        let _ = write!(html, "<p>{}</p></body></html>", escape(lang.t("no_days")));
        return html;
    };
    let day = |d: &Value| d["day"].as_str().unwrap_or("").to_owned();
    let _ = write!(
        html,
        "<p>{}: {} – {}</p><h2>{}</h2><table>",
        escape(lang.t("period")),
        escape(&day(first)),
        escape(&day(last)),
        escape(lang.t("headline"))
    );
    // Each figure on the last day, and its change since the day before and since the first day of
    // the range (the end of the previous report, when reports follow each other).
    let previous = days.len().checked_sub(2).map(|i| &days[i]);
    let since_first = (days.len() > 2).then_some(first);
    let headline: [Headline; 6] = [
        ("open", |d| tracks_sum(d, "open")),
        ("overdue", |d| tracks_sum(d, "overdue")),
        ("due_soon", |d| tracks_sum(d, "due_soon")),
        ("experienced", |d| figure(d, &["employees", "experienced"])),
        ("inexperienced", |d| {
            figure(d, &["employees", "inexperienced"])
        }),
        ("exposure", |d| tracks_sum(d, "penalty_exposure_euros")),
    ];
    let _ = write!(
        html,
        "<tr><th></th><th class=\"n\">{}</th>",
        escape(&day(last))
    );
    for base in [previous, since_first].into_iter().flatten() {
        let _ = write!(
            html,
            "<th class=\"n\">{} {}</th>",
            escape(lang.t("change")),
            escape(&day(base))
        );
    }
    html.push_str("</tr>");
    for (key, value) in headline {
        let now = value(last);
        let _ = write!(
            html,
            "<tr><th>{}</th><td class=\"n\">{}</td>",
            escape(lang.t(key)),
            format_number(now),
        );
        for base in [previous, since_first].into_iter().flatten() {
            let delta = now - value(base);
            let _ = write!(
                html,
                "<td class=\"n\">{}{}</td>",
                if delta > 0.0 { "+" } else { "" },
                format_number(delta)
            );
        }
        html.push_str("</tr>");
    }
    let _ = write!(html, "</table><h2>{}</h2>", escape(lang.t("charts")));
    for chart in charts(history) {
        let _ = write!(
            html,
            "<h3>{}</h3>",
            escape(lang.t_weekly(chart.title, chart.weekly))
        );
        // A line needs two values; a difference line has one value fewer than it reads days.
        match chart.days.as_slice() {
            [from, .., to] => {
                let span = (day(&days[*from]), day(&days[*to]));
                html.push_str(&svg(lang, &chart, (&span.0, &span.1), None));
            }
            _ => {
                let _ = write!(html, "<p>{}</p>", escape(lang.t("too_few_days")));
            }
        }
    }
    let _ = write!(html, "<h2>{}</h2>", escape(lang.t("targets")));
    for target in target_charts(history, targets) {
        let chart = Chart {
            title: "against",
            lines: vec![
                ("projected", target.projected.clone()),
                ("promised", target.promised.clone()),
            ],
            days: target.days.clone(),
            weekly: false,
        };
        let (Some(&from), Some(&to)) = (chart.days.first(), chart.days.last()) else {
            continue;
        };
        let _ = write!(
            html,
            "<h3>{}: {}</h3>",
            escape(&target.target),
            escape(lang.t("against"))
        );
        let top = format!("{} {}", target.top.strftime("%Y-%m-%d"), lang.t("or_later"));
        let span = (day(&days[from]), day(&days[to]));
        html.push_str(&svg(lang, &chart, (&span.0, &span.1), Some(&top)));
    }
    let mut rows = String::new();
    for target in targets.as_array().map_or(&[][..], Vec::as_slice) {
        for a in target["announcements"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
        {
            let projected = a["projected_clearance"].as_str();
            let verdict = if a["behind_projection"].as_bool() == Some(true) {
                let weeks = projected
                    .and_then(|p| p.parse::<jiff::Timestamp>().ok())
                    .zip(
                        a["clear_by"]
                            .as_str()
                            .and_then(|c| c.parse::<jiff::Timestamp>().ok()),
                    )
                    .map(|(p, c)| (p.as_second() - c.as_second()) as f64 / 604_800.0);
                match (weeks, lang) {
                    (Some(w), Lang::En) => format!("{} ({w:.0} weeks)", lang.t("behind")),
                    (Some(w), Lang::Nl) => format!("{} ({w:.0} weken)", lang.t("behind")),
                    (None, _) => lang.t("behind").to_owned(),
                }
            } else {
                lang.t("within").to_owned()
            };
            let _ = write!(
                rows,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(target["target"].as_str().unwrap_or("")),
                escape(date_of(a["announced_at"].as_str().unwrap_or(""))),
                escape(a["announced_by"].as_str().unwrap_or("")),
                escape(date_of(a["clear_by"].as_str().unwrap_or(""))),
                escape(projected.map_or(lang.t("never"), date_of)),
                escape(&verdict),
            );
        }
    }
    if rows.is_empty() {
        let _ = write!(html, "<p>{}</p>", escape(lang.t("no_targets")));
    } else {
        let _ = write!(
            html,
            "<table><tr><th></th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>{rows}</table>",
            escape(lang.t("announced_at")),
            escape(lang.t("announced_by")),
            escape(lang.t("clear_by")),
            escape(lang.t("projection_then")),
        );
    }
    let _ = write!(html, "<h2>{}</h2><ul>", escape(lang.t("dilemmas")));
    let facts = dilemmas(lang, history, targets);
    if facts.is_empty() {
        let _ = write!(html, "<li>{}</li>", escape(lang.t("nothing")));
    }
    for fact in facts {
        let _ = write!(html, "<li>{}</li>", escape(&fact));
    }
    html.push_str("</ul></body></html>");
    html
}

/// `backlogd report`: the page a running daemon serves at `GET /report` for the range and
/// language (without `lang`, the daemon's `report.language`).
pub fn fetch(
    url: &str,
    token: Option<&str>,
    from: Option<jiff::civil::Date>,
    to: Option<jiff::civil::Date>,
    lang: Option<Lang>,
) -> anyhow::Result<String> {
    let mut query = Vec::new();
    for (key, value) in [("from", from), ("to", to)] {
        if let Some(value) = value {
            query.push(format!("{key}={value}"));
        }
    }
    if let Some(lang) = lang {
        query.push(format!("lang={}", lang.code()));
    }
    let page = crate::send::get(url, &format!("/report?{}", query.join("&")), token)?;
    String::from_utf8(page.to_vec()).map_err(|e| anyhow::anyhow!("the page is not UTF-8: {e}"))
}

#[cfg(test)]
mod tests;
