//! The report drawn from a state that lived through several midnights: its charts carry exactly
//! the history's values, and its facts are stated in both languages.

use serde_json::{Value, json};

use super::{Context, Held, Lang, Text, charts, render};
use crate::api;
use crate::core::State;
use crate::engine::HistoryAnswer;

/// The `GET /v1/history` body of the shipped configuration's state after `lines`, each applied at
/// its own event time (as `backlogd backfill` does), then the clock moved to `until`.
fn history_after(lines: &[String], until: &str) -> api::History {
    let config = crate::config::load_from_str(include_str!("../../config/backlogd.toml"))
        .expect("the shipped configuration is valid");
    let settings = crate::config::core_settings(&config);
    let mut state = State::new(settings.clone());
    for line in lines {
        let event = crate::wire::parse_event(line).expect("test events parse");
        let at = crate::core::time::to_nanos(event.time).unwrap();
        state.apply(&event, at).expect("test events apply");
    }
    state.advance(crate::core::time::to_nanos(until.parse().unwrap()).unwrap());
    crate::server::history_body(&HistoryAnswer::new(
        &settings,
        state.daily_history().cloned().collect(),
    ))
}

/// The shipped configuration's settings: audits at most 14 days apart, 20 decisions.
fn context() -> Context {
    Context {
        max_audit_gap: jiff::SignedDuration::from_hours(14 * 24),
        min_decisions: 20,
        held: Held::default(),
    }
}

fn event(id: &str, time: &str, kind: &str, data: Value) -> String {
    json!({"specversion": "1.0", "id": id, "source": "test", "type": kind, "time": time, "data": data})
        .to_string()
}

fn story() -> Vec<String> {
    let mut lines = vec![event(
        "j1",
        "2026-03-01T08:00:00Z",
        "employee.joined",
        json!({"employee": "e1", "role": "caseworker", "experienced": true}),
    )];
    for day in 1..=6 {
        for n in 0..day {
            lines.push(event(
                &format!("r{day}-{n}"),
                &format!("2026-03-0{day}T10:00:00Z"),
                "case.registered",
                json!({"case": format!("C{day}-{n}"), "track": "asylum"}),
            ));
        }
    }
    lines.push(event(
        "d1",
        "2026-03-04T12:00:00Z",
        "case.decided",
        json!({"case": "C1-0", "outcome": "granted", "decided_by": "e1"}),
    ));
    lines.push(event(
        "a1",
        "2026-03-02T12:00:00Z",
        "quality.audit",
        json!({"case": "C1-0", "passed": false}),
    ));
    // In time order, as they would arrive.
    lines.sort_by_key(|line| serde_json::from_str::<Value>(line).unwrap()["time"].to_string());
    lines
}

#[test]
fn the_charts_carry_the_history_and_the_facts_are_stated() {
    let history = history_after(&story(), "2026-03-07T12:00:00Z");
    let days = &history.days;
    assert_eq!(days.len(), 6, "{history:#?}");
    let open: Vec<i64> = days.iter().map(|d| d.tracks["asylum"].open).collect();
    // 1, 1+2, 1+2+3, … registered; one decided on day 4.
    assert_eq!(open, [1, 3, 6, 9, 14, 20]);
    let page = render(Lang::En, &history, &[], &context());
    // Each chart's values, as drawn, are the history's.
    for chart in charts(&history) {
        for (key, values) in chart.lines {
            let written: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
            let attribute = format!(
                "data-series=\"{}\" data-values=\"{}\"",
                key.id(),
                written.join(",")
            );
            assert!(page.contains(&attribute), "{attribute} missing");
        }
    }
    assert!(page.contains("data-series=\"open\" data-values=\"1,3,6,9,14,20\""));
    // The headline: the last day, its change since the day before and since the range's first day.
    assert!(
        page.contains("<tr><th></th><th class=\"n\">2026-03-06</th><th class=\"n\">since 2026-03-05</th><th class=\"n\">since 2026-03-01</th></tr>"),
        "{page}"
    );
    assert!(
        page.contains("<tr><th>Open cases</th><td class=\"n\">20</td><td class=\"n\">+6</td><td class=\"n\">+19</td></tr>"),
        "{page}"
    );
    assert!(page.contains("data-series=\"inflow\" data-values=\"2,3,4,5,6\""));
    assert!(page.contains("data-series=\"outflow\" data-values=\"0,0,1,0,0\""));
    // Self-contained: no scripts, nothing fetched.
    for outside in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!page.contains(outside), "{outside} in the page");
    }
    // Within the 14 days allowed between audits nothing is said; with 2 days allowed it is.
    assert!(!page.contains("Quality has not been measured"), "{page}");
    let strict = Context {
        max_audit_gap: jiff::SignedDuration::from_hours(48),
        ..context()
    };
    let page = render(Lang::En, &history, &[], &strict);
    assert!(
        page.contains("Quality has not been measured since 2026-03-02: longer than the 2 days allowed between audits."),
        "{page}"
    );
    let dutch = render(Lang::Nl, &history, &[], &strict);
    assert!(dutch.contains("<html lang=\"nl\">"));
    assert!(
        dutch.contains("De kwaliteit is sinds 2026-03-02 niet gemeten: langer dan de toegestane 2 dagen tussen twee toetsen."),
        "{dutch}"
    );
}

/// Rows from 2026-10-01 to 2026-12-31 with 50 open cases, the backlog not shrinking until
/// 2026-10-10 and from 2026-10-11 on projected to clear on 2026-12-04 (3 days after the first
/// date promised); a target announced on 2026-10-05 for 2026-12-01 and again on 2026-12-07 for
/// 2026-12-20; the current projection (the targets' `projected_clearance`) is 2026-12-23.
fn steering_story() -> (api::History, Vec<api::Target>) {
    let start: jiff::civil::Date = "2026-10-01".parse().unwrap();
    let projected: jiff::Timestamp = "2026-12-04T00:00:00Z".parse().unwrap();
    let days = (0..92)
        .map(|i| {
            let day = start.checked_add(jiff::Span::new().days(i)).unwrap();
            let mut row = row(day, 50, 50, 0);
            if day >= "2026-10-11".parse().unwrap() && row.at < projected {
                row.tracks.get_mut("asylum").unwrap().clearance_seconds =
                    Some((projected.as_second() - row.at.as_second()) as f64);
            }
            row
        })
        .collect();
    let history = api::History {
        decision_window: "P28D".to_owned(),
        new_staff_weeks: 12,
        days,
    };
    let targets = serde_json::from_value(json!([{
        "target": "backlog", "track": null, "configured_clear_by": null,
        "clear_by": "2026-12-20T00:00:00Z", "projected_clearance": "2026-12-23T00:00:00Z",
        "announcements": [{
            "announced_at": "2026-10-05T09:30:00Z", "track": null, "clear_by": "2026-12-01T00:00:00Z",
            "announced_by": "minister", "note": null, "projected_clearance": null,
            "behind_projection": true, "verdict": "...",
        }, {
            "announced_at": "2026-12-07T09:30:00Z", "track": null, "clear_by": "2026-12-20T00:00:00Z",
            "announced_by": "agency", "note": null, "projected_clearance": "2026-12-17T00:00:00Z",
            "behind_projection": false, "verdict": "...",
        }],
        "announcements_total": 2,
    }]))
    .unwrap();
    (history, targets)
}

/// The rows of `history` from `from` to `to`, inclusive, as `GET /v1/history?from=&to=` answers.
fn range(history: &api::History, from: &str, to: &str) -> api::History {
    let (from, to): (jiff::civil::Date, jiff::civil::Date) =
        (from.parse().unwrap(), to.parse().unwrap());
    api::History {
        days: history
            .days
            .iter()
            .filter(|d| from <= d.day && d.day <= to)
            .cloned()
            .collect(),
        ..history.clone()
    }
}

/// The facts about targets are those of the range's end: the projection of its last row, the
/// date promised by then, announcements made by then; a date already past is missed, not "will
/// be missed"; a gap under a week is in days.
#[test]
fn the_target_facts_are_those_of_the_ranges_end() {
    let (history, targets) = steering_story();
    let page = |from, to| render(Lang::En, &range(&history, from, to), &targets, &context());
    // The first days: not shrinking, and only the first announcement made.
    let early = page("2026-10-01", "2026-10-08");
    assert!(
        early.contains("At the rate observed up to 2026-10-08 the backlog does not shrink: the announced date of 2026-12-01 for &quot;backlog&quot; will not be met."),
        "{early}"
    );
    assert!(
        !early.contains("2026-12-20"),
        "announced after the range: {early}"
    );
    assert!(!early.contains("2026-12-23"), "today's projection: {early}");
    // Shrinking: projected 3 days after the date promised.
    let middle = page("2026-10-11", "2026-10-15");
    assert!(
        middle.contains("At the rate observed up to 2026-10-15 the announced date of 2026-12-01 for &quot;backlog&quot; will be missed by 3 days."),
        "{middle}"
    );
    assert!(!middle.contains("0 weeks"), "{middle}");
    // After 2026-12-20 with cases still open: missed.
    let late = page("2026-12-10", "2026-12-22");
    assert!(
        late.contains("The announced date of 2026-12-20 for &quot;backlog&quot; has passed with 50 cases still open on 2026-12-22."),
        "{late}"
    );
    assert!(!late.contains("will be missed"), "{late}");
    // Both announcements are on the record by then, the first 3 days behind, not 0 weeks.
    assert!(late.contains("<td>minister</td><td>2026-12-01</td><td>never</td><td>already behind the projection</td>"), "{late}");
    assert!(
        late.contains(
            "<td>agency</td><td>2026-12-20</td><td>2026-12-17</td><td>within the projection</td>"
        ),
        "{late}"
    );
    let dutch = render(
        Lang::Nl,
        &range(&history, "2026-10-11", "2026-10-15"),
        &targets,
        &context(),
    );
    assert!(
        dutch.contains("In het tempo tot en met 2026-10-15 wordt de aangekondigde datum 2026-12-01 voor &quot;backlog&quot; 3 dagen gemist."),
        "{dutch}"
    );
}

/// A gap in words: days under a week, never "0 weeks".
#[test]
fn a_gap_under_a_week_is_in_days() {
    let at = |text: &str| text.parse::<jiff::Timestamp>().unwrap();
    let gap = |lang, later: &str| super::gap_words(lang, at(later), at("2026-12-01T00:00:00Z"));
    assert_eq!(gap(Lang::En, "2026-12-01T05:00:00Z"), "less than a day");
    assert_eq!(gap(Lang::En, "2026-12-02T00:00:00Z"), "1 day");
    assert_eq!(gap(Lang::En, "2026-12-04T00:00:00Z"), "3 days");
    assert_eq!(gap(Lang::En, "2026-12-08T00:00:00Z"), "1 week");
    assert_eq!(gap(Lang::En, "2027-02-09T00:00:00Z"), "10 weeks");
    assert_eq!(gap(Lang::Nl, "2026-12-04T00:00:00Z"), "3 dagen");
    assert_eq!(gap(Lang::Nl, "2026-12-01T05:00:00Z"), "minder dan een dag");
}

/// "Due soon" is the shortest window, named, whatever the order of the labels.
#[test]
fn due_soon_is_the_shortest_window() {
    let mut history = long_history(3);
    for day in &mut history.days {
        day.tracks.get_mut("asylum").unwrap().due_soon =
            [("P28D".to_owned(), 9), ("P7D".to_owned(), 2)].into();
    }
    let page = render(Lang::En, &history, &[], &context());
    assert!(
        page.contains("<tr><th>Due within 7 days</th><td class=\"n\">2</td>"),
        "{page}"
    );
    assert!(
        page.contains("data-series=\"due_soon\" data-values=\"2,2,2\""),
        "{page}"
    );
    let dutch = render(Lang::Nl, &history, &[], &context());
    assert!(
        dutch.contains("<tr><th>Binnen 7 dagen over de termijn</th>"),
        "{dutch}"
    );
}

/// A range without rows says so, and how many days the history holds.
#[test]
fn an_empty_range_says_what_the_history_holds() {
    let empty = api::History {
        decision_window: "P28D".to_owned(),
        new_staff_weeks: 12,
        days: Vec::new(),
    };
    let context = Context {
        held: Held::of(&long_history(412)),
        ..context()
    };
    let page = render(Lang::En, &empty, &[], &context);
    assert!(
        page.contains("No day of the range asked is in the history, which holds 412 days, from 2025-01-01 to 2026-02-16."),
        "{page}"
    );
    assert!(!page.contains("No day has ended"), "{page}");
    let dutch = render(Lang::Nl, &empty, &[], &context);
    assert!(
        dutch.contains("Geen dag van de gevraagde periode staat in de geschiedenis, die 412 dagen bevat, van 2025-01-01 tot en met 2026-02-16."),
        "{dutch}"
    );
}

/// Quality has not been measured only when the time since the last audit exceeds
/// `quality.max_audit_gap`, as the alert says.
#[test]
fn quality_not_measured_only_beyond_the_maximum_gap() {
    // One audit a day for the first three days (2025-01-01 to 03), then none.
    let mut history = long_history(30);
    for (i, day) in history.days.iter_mut().enumerate() {
        day.audits.passed_total = i.min(2) as u64;
    }
    let fact = "Quality has not been measured since 2025-01-03";
    // To 2025-01-10: a week since the last audit, under the 14 days allowed.
    let page = render(
        Lang::En,
        &range(&history, "2025-01-01", "2025-01-10"),
        &[],
        &context(),
    );
    assert!(!page.contains(fact), "{page}");
    // To 2025-01-17: 14 days since the end of 2025-01-03, perhaps not more.
    let page = render(
        Lang::En,
        &range(&history, "2025-01-01", "2025-01-17"),
        &[],
        &context(),
    );
    assert!(!page.contains(fact), "{page}");
    // To 2025-01-18: more than 14 days whenever on 2025-01-03 the audit was.
    let page = render(
        Lang::En,
        &range(&history, "2025-01-01", "2025-01-18"),
        &[],
        &context(),
    );
    assert!(
        page.contains("Quality has not been measured since 2025-01-03: longer than the 14 days allowed between audits."),
        "{page}"
    );
}

/// The highest share of decisions by new staff is of a day with enough decisions, the earliest of
/// equal days.
#[test]
fn the_highest_new_staff_share_needs_a_sample() {
    let mut history = long_history(4);
    for (day, (decisions, by_new)) in
        history
            .days
            .iter_mut()
            .zip([(2, 1), (40, 12), (40, 12), (40, 4)])
    {
        day.decisions = api::HistoryDecisions {
            in_window: decisions,
            by_new_staff_in_window: by_new,
        };
    }
    let page = render(Lang::En, &history, &[], &context());
    assert!(
        page.contains("At its highest, 30% of the 40 decisions in the 28 days up to 2025-01-02 were taken by staff in their first 12 weeks."),
        "{page}"
    );
    assert!(!page.contains("50%"), "{page}");
}

#[test]
fn a_history_without_days_says_so() {
    let empty = api::History {
        decision_window: "P28D".to_owned(),
        new_staff_weeks: 12,
        days: Vec::new(),
    };
    let page = render(Lang::En, &empty, &[], &context());
    assert!(page.contains("No day has ended"));
}

#[test]
fn the_share_of_decisions_by_new_staff_is_stated() {
    let joined = |id: &str, employee: &str, time: &str| {
        event(
            id,
            time,
            "employee.joined",
            json!({"employee": employee, "role": "caseworker", "experienced": true}),
        )
    };
    let mut lines = vec![
        joined("j-old", "old", "2025-01-01T08:00:00Z"),
        joined("j-new", "new", "2026-03-01T08:00:00Z"),
    ];
    for n in 0..4 {
        lines.push(event(
            &format!("r{n}"),
            "2026-03-01T10:00:00Z",
            "case.registered",
            json!({"case": format!("C{n}"), "track": "asylum"}),
        ));
        lines.push(event(
            &format!("d{n}"),
            "2026-03-02T10:00:00Z",
            "case.decided",
            json!({"case": format!("C{n}"), "outcome": "granted",
                   "decided_by": if n == 0 { "new" } else { "old" }}),
        ));
    }
    lines.sort_by_key(|line| serde_json::from_str::<Value>(line).unwrap()["time"].to_string());
    let history = history_after(&lines, "2026-03-04T12:00:00Z");
    let last = history.days.last().unwrap();
    assert_eq!(
        last.decisions,
        api::HistoryDecisions {
            in_window: 4,
            by_new_staff_in_window: 1
        }
    );
    let page = render(Lang::En, &history, &[], &context());
    assert!(
        page.contains(
            "25% of the 4 decisions in the 28 days up to 2026-03-03 were taken by staff in their first 12 weeks."
        ),
        "{page}"
    );
    let dutch = render(Lang::Nl, &history, &[], &context());
    assert!(
        dutch.contains(
            "25% van de 4 beslissingen in de 28 dagen tot en met 2026-03-03 is genomen door medewerkers in hun eerste 12 weken."
        ),
        "{dutch}"
    );
}

#[test]
fn one_day_is_too_few_for_a_line() {
    let mut history = history_after(&story(), "2026-03-07T12:00:00Z");
    history.days.truncate(1);
    let page = render(Lang::En, &history, &[], &context());
    assert!(!page.contains("<svg"), "{page}");
    assert_eq!(
        page.matches("Too few days for a line yet.").count(),
        charts(&history).len()
    );
}

/// A row of `GET /v1/history` for `day` (ending at the next midnight UTC) with one track,
/// `asylum`, of `open` open cases, `inflow` registered so far and `audits` passed so far; the rest
/// 0, and 4 experienced employees.
fn row(day: jiff::civil::Date, open: i64, inflow: u64, audits: u64) -> api::HistoryDay {
    let at = day
        .tomorrow()
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    serde_json::from_value(json!({
        "day": day.to_string(),
        "at": at.to_string(),
        "decision_window": "P28D",
        "new_staff_weeks": 12,
        "tracks": {"asylum": {"open": open, "overdue": 0, "due_soon": {"P7D": 0},
            "inflow_total": inflow, "outflow_total": 0,
            "penalty_exposure_euros": 0.0, "penalty_incurred_euros": 0.0,
            "clearance_seconds": null}},
        "employees": {"experienced": 4, "inexperienced": 0, "mentors": 0, "mentees": 0,
            "unmentored": 0, "mentees_per_mentor": null},
        "audits": {"passed_total": audits, "failed_total": 0},
        "decisions": {"in_window": 0, "by_new_staff_in_window": 0},
    }))
    .unwrap()
}

/// A history of `n` days in the shape of `GET /v1/history`: every day 3 new cases (none decided)
/// and one audit passed.
fn long_history(n: usize) -> api::History {
    let start: jiff::civil::Date = "2025-01-01".parse().unwrap();
    let days = (0..n)
        .map(|i| {
            let day = start.checked_add(jiff::Span::new().days(i as i64)).unwrap();
            row(day, 3 * i as i64, 3 * i as u64, i as u64)
        })
        .collect();
    api::History {
        decision_window: "P28D".to_owned(),
        new_staff_weeks: 12,
        days,
    }
}

#[test]
fn a_long_range_sums_the_flows_by_week_counting_back_from_the_last_day() {
    let history = long_history(100);
    let charts = charts(&history);
    let flows = charts.iter().find(|c| c.title == Text::FlowsWeek).unwrap();
    assert!(flows.weekly);
    // Days 99, 92, …, 1 are read; the weeks end on days 8, 15, …, 99.
    assert_eq!(flows.days, (8..=99).step_by(7).collect::<Vec<_>>());
    assert_eq!(flows.lines[0], (Text::InflowWeek, vec![21.0; 14]));
    let audits = charts.iter().find(|c| c.title == Text::AuditsWeek).unwrap();
    assert_eq!(audits.lines[0].1, vec![7.0; 14]);
    // Levels stay daily.
    let open = charts.iter().find(|c| c.title == Text::Open).unwrap();
    assert!(!open.weekly);
    assert_eq!(open.lines[0].1.len(), 100);
    let page = render(Lang::En, &history, &[], &context());
    assert!(
        page.contains("<h3>New and decided cases per week</h3>"),
        "{page}"
    );
    assert!(page.contains(">New cases per week</text>"), "{page}");
    // The weekly chart's first label is the end of its first week (day 8: 2025-01-09).
    assert!(page.contains(">2025-01-09</text>"), "{page}");
    let dutch = render(Lang::Nl, &history, &[], &context());
    assert!(dutch.contains("<h3>Nieuwe en afgehandelde zaken per week</h3>"));
    // Up to WEEKLY_AFTER_DAYS days, by day.
    let short = long_history(super::WEEKLY_AFTER_DAYS);
    let flows = charts_of(&short, Text::Flows);
    assert!(!flows.weekly);
    assert_eq!(flows.lines[0].1, vec![3.0; super::WEEKLY_AFTER_DAYS - 1]);
}

fn charts_of(history: &api::History, title: Text) -> super::Chart {
    charts(history)
        .into_iter()
        .find(|c| c.title == title)
        .unwrap()
}

#[test]
fn the_projection_is_drawn_against_the_date_promised_each_day() {
    // Day i ends at 2025-01-(i+2) 00:00 UTC; the backlog clears in 20 weeks on days 0..4, and
    // does not shrink from day 5.
    let start: jiff::civil::Date = "2025-01-01".parse().unwrap();
    let days = (0..10)
        .map(|i| {
            let mut day = row(
                start.checked_add(jiff::Span::new().days(i)).unwrap(),
                100,
                0,
                0,
            );
            if i < 5 {
                day.tracks.get_mut("asylum").unwrap().clearance_seconds = Some(20.0 * 604_800.0);
            }
            day
        })
        .collect();
    let history = api::History {
        decision_window: "P28D".to_owned(),
        new_staff_weeks: 12,
        days,
    };
    let targets: Vec<api::Target> = serde_json::from_value(json!([{
        "target": "backlog",
        "track": null,
        "configured_clear_by": "2025-03-01T00:00:00Z",
        "clear_by": "2025-06-01T00:00:00Z",
        "projected_clearance": null,
        "announcements": [{"announced_at": "2025-01-03T12:00:00Z", "track": null,
            "clear_by": "2025-06-01T00:00:00Z", "announced_by": null, "note": null,
            "projected_clearance": null, "behind_projection": true, "verdict": "..."}],
        "announcements_total": 1,
    }]))
    .unwrap();
    let charts = super::target_charts(&history, &targets);
    assert_eq!(charts.len(), 1);
    let chart = &charts[0];
    assert_eq!(chart.days, (0..10).collect::<Vec<_>>());
    // 20 weeks from each day, in weeks after the first; beyond the top (33 weeks: half as far
    // again as the latest promise, 21.4) when not shrinking.
    assert_eq!(
        chart.projected,
        [20.0, 20.1, 20.3, 20.4, 20.6, 33.0, 33.0, 33.0, 33.0, 33.0]
    );
    // The configured date until the announcement (made during day 1), then the announced one.
    assert_eq!(
        chart.promised,
        [8.3, 8.3, 21.4, 21.4, 21.4, 21.4, 21.4, 21.4, 21.4, 21.4]
    );
    assert_eq!(chart.top.to_string(), "2025-08-21T00:00:00Z");
    let page = render(Lang::En, &history, &targets, &context());
    assert!(
        page.contains(
            "<h3>backlog: the clearance projected each day against the date promised then</h3>"
        ),
        "{page}"
    );
    assert!(
        page.contains(">2025-08-21 or later, or never</text>"),
        "{page}"
    );
    assert!(page.contains("data-series=\"promised\" data-values=\"8.3,8.3,21.4,"));
    // A target of another track is not drawn.
    let mut elsewhere = targets.clone();
    elsewhere[0].track = Some("family".to_owned());
    assert!(super::target_charts(&history, &elsewhere).is_empty());
}

/// The table of texts is complete: every key has an English and a Dutch text, each language
/// takes the same values, and the weekly form of a chart's text is another key.
#[test]
fn every_text_is_in_both_languages_with_the_same_values() {
    assert!(Text::ALL.len() > 40, "the table lists every key");
    for &key in Text::ALL {
        let (en, nl) = (key.get(Lang::En), key.get(Lang::Nl));
        assert!(!en.trim().is_empty() && !nl.trim().is_empty(), "{key:?}");
        // "1 week" is Dutch as well.
        if key != Text::OneWeek {
            assert_ne!(en, nl, "{key:?} is not translated");
        }
        assert_eq!(
            super::placeholders(en),
            super::placeholders(nl),
            "{key:?}: the languages take other values"
        );
        assert!(!key.id().is_empty(), "{key:?}");
    }
    for key in [Text::Flows, Text::Inflow, Text::Outflow, Text::Audits] {
        assert_ne!(key.weekly(true), key, "{key:?} has a weekly form");
        assert_eq!(key.weekly(true).id(), key.id(), "{key:?}: one series id");
    }
}

/// One history rendered under several ranges: each page's headline, period, announcements and
/// target facts are those of the rows of its range alone, computed here from those rows.
#[test]
fn each_range_speaks_of_its_own_rows() {
    let (history, targets) = steering_story();
    let ranges = [
        ("2026-10-01", "2026-10-08"),
        ("2026-10-11", "2026-10-15"),
        ("2026-10-20", "2026-11-30"),
        ("2026-12-01", "2026-12-08"),
        ("2026-12-10", "2026-12-22"),
        ("2026-12-21", "2026-12-31"),
    ];
    for (from, to) in ranges {
        let rows = range(&history, from, to);
        let page = render(Lang::En, &rows, &targets, &context());
        let (first, last) = (&rows.days[0], rows.days.last().unwrap());
        assert!(
            page.contains(&format!("<p>Days: {} – {}</p>", first.day, last.day)),
            "{from}..{to}"
        );
        let open: i64 = last.tracks.values().map(|t| t.open).sum();
        assert!(
            page.contains(&format!(
                "<tr><th>Open cases</th><td class=\"n\">{open}</td>"
            )),
            "{from}..{to}"
        );
        // The announcements made by the range's end, and no other.
        let made: Vec<&api::Announcement> = targets[0]
            .announcements
            .iter()
            .filter(|a| a.announced_at <= last.at)
            .collect();
        assert_eq!(
            page.matches("<tr><td>backlog</td>").count(),
            made.len(),
            "{from}..{to}"
        );
        // The target fact, from the last row and the date promised by then.
        let promised = made.last().map(|a| a.clear_by).expect("announced by then");
        let date = promised.strftime("%Y-%m-%d").to_string();
        let seconds = last.tracks["asylum"].clearance_seconds;
        let expected = if promised <= last.at {
            format!(
                "The announced date of {date} for &quot;backlog&quot; has passed with {open} cases still open on {}.",
                last.day
            )
        } else if let Some(seconds) = seconds {
            let projected = last.at.as_second() + seconds as i64;
            let days = (projected - promised.as_second()) as f64 / 86_400.0;
            assert!(days > 0.0 && days < 7.0, "the story misses by days");
            format!(
                "At the rate observed up to {} the announced date of {date} for &quot;backlog&quot; will be missed by {days:.0} days.",
                last.day
            )
        } else {
            format!(
                "At the rate observed up to {} the backlog does not shrink: the announced date of {date} for &quot;backlog&quot; will not be met.",
                last.day
            )
        };
        assert!(page.contains(&expected), "{from}..{to}: {expected}\n{page}");
        assert_eq!(
            page.matches("&quot;backlog&quot;").count(),
            1,
            "one fact per target: {from}..{to}"
        );
    }
}

/// Numbers are written for the language: thousands grouped, a decimal comma in Dutch, euros with
/// their sign, never `-0` (issue 22: the page printed "34090" and "45973515").
#[test]
fn numbers_are_written_for_the_language() {
    for (v, en, nl) in [
        (34_090.0, "34,090", "34.090"),
        (10_566_228.0, "10,566,228", "10.566.228"),
        (999.0, "999", "999"),
        (1_000.0, "1,000", "1.000"),
        (1.5, "1.5", "1,5"),
        (22.25, "22.3", "22,3"),
        (-1_234.0, "-1,234", "-1.234"),
        (-0.0, "0", "0"),
        (-0.04, "0", "0"),
        (0.0, "0", "0"),
    ] {
        assert_eq!(Lang::En.number(v), en, "{v}");
        assert_eq!(Lang::Nl.number(v), nl, "{v}");
    }
    assert_eq!(Lang::En.euros(45_973_515.4), "€45,973,515");
    assert_eq!(Lang::Nl.euros(45_973_515.4), "€\u{a0}45.973.515");
    assert_eq!(Lang::En.euros(-144_217.0), "-€144,217");
    assert_eq!(Lang::En.change(144_217.0, true), "+€144,217");
    assert_eq!(Lang::Nl.change(-4.0, false), "-4");
    assert_eq!(Lang::En.change(0.0, false), "0");
}

/// The y-tick values and labels, and the gridlines, of each chart of a page, in page order.
fn y_axes(page: &str) -> Vec<Vec<(f64, String)>> {
    page.split("<svg")
        .skip(1)
        .map(|svg| {
            svg.split("class=\"y-tick\" data-value=\"")
                .skip(1)
                .map(|tick| {
                    let (value, rest) = tick.split_once('"').unwrap();
                    let label = rest.split_once('>').unwrap().1.split_once('<').unwrap().0;
                    (value.parse().unwrap(), label.to_owned())
                })
                .collect()
        })
        .collect()
}

/// The headline and the axes with large figures: grouped, in euros where they are euros; each
/// chart's vertical axis has round, evenly spaced ticks from 0 to at least its largest value,
/// labelled as the page writes numbers, with a gridline each, and days under the time axis.
#[test]
fn large_figures_are_readable_and_every_chart_has_labelled_ticks() {
    let mut history = history_after(&story(), "2026-03-07T12:00:00Z");
    let last = history.days.len() - 1;
    for (i, day) in history.days.iter_mut().enumerate() {
        let track = day.tracks.get_mut("asylum").unwrap();
        track.open = 30_000 + 680 * i as i64;
        track.penalty_exposure_euros = 45_000_000.0 + 194_703.0 * i as f64;
    }
    assert_eq!(history.days[last].tracks["asylum"].open, 33_400);
    for (lang, open, exposure, change) in [
        (Lang::En, "34,090", "€45,973,515", "+€194,703"),
        (Lang::Nl, "34.090", "€\u{a0}45.973.515", "+€\u{a0}194.703"),
    ] {
        let mut history = history.clone();
        history.days[last].tracks.get_mut("asylum").unwrap().open = 34_090;
        let page = render(lang, &history, &[], &context());
        assert!(
            page.contains(&format!("<td class=\"n\">{open}</td>")),
            "{lang:?}: open cases {open}"
        );
        assert!(
            page.contains(&format!("<td class=\"n\">{exposure}</td>")),
            "{lang:?}: exposure {exposure}"
        );
        assert!(
            page.contains(&format!("<td class=\"n\">{change}</td>")),
            "{lang:?}"
        );
        // Raw figures only in the charts' data-values, never as text.
        assert!(
            !page.contains(">34090<") && !page.contains(">45973515<"),
            "{lang:?}"
        );

        let axes = y_axes(&page);
        let drawn = charts(&history);
        assert_eq!(axes.len(), drawn.len(), "{lang:?}: an axis a chart");
        for (ticks, chart) in axes.iter().zip(&drawn) {
            let max = chart
                .lines
                .iter()
                .flat_map(|(_, v)| v.iter().copied())
                .fold(0.0f64, f64::max);
            let values: Vec<f64> = ticks.iter().map(|(v, _)| *v).collect();
            assert_eq!(values[0], 0.0, "{:?}", chart.title);
            assert!(
                *values.last().unwrap() >= max,
                "{:?}: {values:?} < {max}",
                chart.title
            );
            assert!(
                (2..=7).contains(&values.len()),
                "{:?}: {values:?}",
                chart.title
            );
            let step = values[1] - values[0];
            let mantissa = step / 10f64.powf(step.log10().floor());
            assert!(
                [1.0, 2.0, 2.5, 5.0]
                    .iter()
                    .any(|m| (m - mantissa).abs() < 1e-9),
                "{:?}: step {step}",
                chart.title
            );
            for pair in values.windows(2) {
                assert!((pair[1] - pair[0] - step).abs() < 1e-9 * step.max(1.0));
            }
            for (value, label) in ticks {
                let expected = if chart.title == Text::Penalties {
                    lang.euros(*value)
                } else {
                    lang.number(*value)
                };
                assert_eq!(label, &expected, "{:?}", chart.title);
            }
        }
        // The penalties' axis is in euros, the open cases' grouped.
        assert!(
            axes[0]
                .iter()
                .any(|(_, label)| label == &Lang::number(lang, 10_000.0))
        );
        assert!(axes[5].iter().all(|(_, label)| label.contains('€')));
        // Gridlines at every tick, and the first and last day under each time axis.
        let svgs: Vec<&str> = page.split("<svg").skip(1).collect();
        for (svg, ticks) in svgs.iter().zip(&axes) {
            assert!(svg.matches("class=\"grid\"").count() >= ticks.len() + 2);
            assert!(svg.contains(">2026-03-01</text>") || svg.contains(">2026-03-02</text>"));
            assert!(svg.contains(">2026-03-06</text>"), "{svg}");
        }
    }
}
