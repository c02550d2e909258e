//! The forecast against the simulator's ground truth (docs/forecast.md, "Validation"): on the
//! `taskforce` scenario, the observed productivity per role and experience at month 6 against the
//! simulator's parameters, and a forecast made at month 6, with the hiring and leaving that
//! actually followed, against the open cases actually reached 26 weeks later.
//!
//! The figures are written into docs/forecast.md between the `validation` markers; the test fails
//! when they differ from what the page says (`UPDATE_EXPECT=1` rewrites the block; review the
//! diff) or when a figure is outside its bound (15% and 20%).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::config;
use crate::core::State;
use crate::core::aggregates::Capacity;
use crate::core::event::EventKind;
use crate::core::forecast::{ForecastParams, Hire, project};
use crate::simulate::time::{DAY, weekday};
use crate::simulate::{Options, Scenario, generate};

const SEED: u64 = 11;
const SCALE: f64 = 0.25;
const WEEK: i64 = 7 * DAY;

fn lerp(low: f64, high: f64, x: f64) -> f64 {
    low + (high - low) * x
}

/// Applies `events[from..]` with time before `until` (seconds), then moves the clock to `until`.
fn apply_until(
    state: &mut State,
    events: &[(i64, crate::core::Event)],
    next: &mut usize,
    until: i64,
) {
    while *next < events.len() && events[*next].0 < until {
        let (time, event) = &events[*next];
        if let Err(rejection) = state.apply(event, time * 1_000_000_000) {
            panic!("rejected: {rejection}");
        }
        *next += 1;
    }
    state.advance(until * 1_000_000_000);
}

struct Trainee {
    joined: i64,
    /// When they stopped being a trainee (experienced or left), if they did.
    until: Option<i64>,
}

#[test]
fn forecast_validation_against_the_simulator() {
    let scenario = Scenario::builtin("taskforce").expect("built in");
    let options = Options {
        seed: SEED,
        scale: SCALE,
        ..Options::default()
    };
    let events: Vec<(i64, crate::core::Event)> = generate(&scenario, &options)
        .expect("valid options")
        .map(|e| {
            let parsed =
                crate::wire::parse_event(&e.line).expect("the simulator writes valid events");
            (e.time, parsed)
        })
        .collect();
    let start = crate::simulate::time::parse_instant(&scenario.calendar.start).unwrap();
    let month6 = start + 182 * DAY;
    let month12 = month6 + 26 * WEEK;
    let shipped = config::load_from_str(include_str!("../../../config/backlogd.toml")).unwrap();
    let settings = config::core_settings(&shipped);
    let window = settings.forecast_window.nanos() / 1_000_000_000;
    let mut state = State::new(settings);
    let mut next = 0;
    apply_until(&mut state, &events, &mut next, month6);
    let at6 = state.clone();
    apply_until(&mut state, &events, &mut next, month12);

    // The trainees: joined without experience, until they became experienced or left.
    let mut trainees: BTreeMap<String, Trainee> = BTreeMap::new();
    let (mut hires, mut leavers) = (BTreeMap::<u32, f64>::new(), 0.0);
    for (time, event) in &events {
        match &event.kind {
            EventKind::EmployeeJoined {
                employee,
                experienced: false,
                ..
            } => {
                trainees.insert(
                    employee.clone(),
                    Trainee {
                        joined: *time,
                        until: None,
                    },
                );
            }
            EventKind::EmployeeUpdated {
                employee,
                experienced: Some(true),
                ..
            }
            | EventKind::EmployeeLeft { employee } => {
                if let Some(t) = trainees.get_mut(employee) {
                    t.until.get_or_insert(*time);
                }
            }
            _ => {}
        }
        if (month6..month12).contains(time) {
            match &event.kind {
                EventKind::EmployeeJoined { .. } => {
                    *hires.entry(((time - month6) / WEEK) as u32).or_default() += 1.0;
                }
                EventKind::EmployeeLeft { .. } => leavers += 1.0,
                _ => {}
            }
        }
    }

    // (1) Productivity per role and experience over the window ending at month 6.
    let p = &scenario.productivity;
    let workdays_per_week = if scenario.calendar.weekend_work {
        7.0
    } else {
        5.0
    };
    // The simulator's trainee rate over the window: its ramp at each trainee's age, per working
    // day, over the trainees' presence.
    let (mut work, mut presence) = (0.0, 0.0);
    for t in trainees.values() {
        let from = t.joined.max(month6 - window);
        let to = t.until.unwrap_or(i64::MAX).min(month6);
        if to <= from {
            continue;
        }
        presence += (to - from) as f64 / WEEK as f64;
        let mut day = from.div_euclid(DAY);
        while day * DAY < to {
            if scenario.calendar.weekend_work || weekday(day) < 5 {
                let age = (day * DAY - t.joined.div_euclid(DAY) * DAY) as f64 / DAY as f64;
                work += lerp(
                    p.trainee_start,
                    p.trainee_end,
                    (age / f64::from(p.ramp_days)).min(1.0),
                );
            }
            day += 1;
        }
    }
    let capacity = at6.capacity();
    let roles = &at6.settings().roles;
    let role = |name: &str| {
        roles
            .iter()
            .position(|r| r == name)
            .expect("a configured role")
    };
    let observed = |r: usize, experienced: bool| {
        capacity.rate(|c| c / 4 == r && Capacity::is_experienced(c) == experienced)
    };
    let rows = [
        (
            "caseworker, experienced",
            p.caseworker * workdays_per_week,
            observed(role("caseworker"), true),
        ),
        (
            "caseworker, inexperienced (ramping)",
            work / presence,
            observed(role("caseworker"), false),
        ),
        (
            "mentor, experienced",
            p.mentor * workdays_per_week,
            observed(role("mentor"), true),
        ),
        (
            "decision officer, experienced",
            p.decision_officer * workdays_per_week,
            observed(role("decision_officer"), true),
        ),
    ];
    let mut block = String::new();
    block.push_str("| role, experience | simulator (decisions per employee-week) | observed by backlogd | deviation |\n|---|---|---|---|\n");
    let mut worst: f64 = 0.0;
    for (what, truth, seen) in rows {
        let deviation = (seen - truth) / truth;
        worst = worst.max(deviation.abs());
        let _ = writeln!(
            block,
            "| {what} | {truth:.3} | {seen:.3} | {:+.1}% |",
            100.0 * deviation
        );
    }

    // (2) The forecast at month 6 with the hiring and leaving that followed, against month 12.
    let inputs = at6.forecast_inputs();
    let trainee_ages: Vec<f64> = trainees
        .values()
        .filter(|t| t.joined < month6 && t.until.is_none_or(|u| u >= month6))
        .map(|t| (month6 - t.joined) as f64 / DAY as f64)
        .collect();
    let mean_age = trainee_ages.iter().sum::<f64>() / trainee_ages.len().max(1) as f64;
    let params = ForecastParams {
        weeks: 26,
        hires: hires
            .iter()
            .map(|(&week, &count)| Hire { count, week })
            .collect(),
        // The trainees of month 6 ramp on from their observed rate for the rest of the
        // simulator's ramp (the forecast starts every inexperienced employee's ramp now).
        ramp_up_weeks: (f64::from(p.ramp_days) - mean_age).max(0.0) / 7.0,
        mentor_ratio: None,
        leavers_per_week: leavers / 26.0,
        inflow_per_week: None,
    };
    let forecast = project(&inputs, &params);
    let projected = forecast.weeks.last().expect("26 weeks").open;
    let actual = state.open_cases() as f64;
    let forecast_deviation = (projected - actual) / actual;
    let _ = write!(
        block,
        "\nForecast at month 6 (day 182: {open6} open, {exp} experienced non-mentors, {men} mentors, \
         {inexp} inexperienced; observed net inflow {inflow:.0} a week; {hired} hired and {left} \
         leaving in the 26 weeks that followed; ramp-up {ramp:.1} weeks): **{projected:.0}** open \
         cases projected for day 364; the simulation reached **{actual:.0}**: deviation \
         **{dev:+.1}%**.\n",
        open6 = inputs.open,
        exp = inputs.experienced,
        men = inputs.mentors,
        inexp = inputs.inexperienced,
        inflow = inputs.net_inflow_per_week,
        hired = hires.values().sum::<f64>() + 0.0,
        left = leavers,
        ramp = params.ramp_up_weeks,
        dev = 100.0 * forecast_deviation,
    );
    let _ = write!(
        block,
        "\nProduced by `cargo test --lib forecast_validation` (scenario `taskforce`, seed {SEED}, scale {SCALE}).\n"
    );

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/forecast.md");
    let page = std::fs::read_to_string(&path).expect("docs/forecast.md");
    let (begin, end) = ("<!-- validation: begin -->\n", "<!-- validation: end -->");
    let (Some(a), Some(b)) = (page.find(begin), page.find(end)) else {
        panic!("docs/forecast.md lacks the {begin:?} … {end:?} markers");
    };
    let current = &page[a + begin.len()..b];
    if current != block {
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            let updated = format!("{}{block}{}", &page[..a + begin.len()], &page[b..]);
            std::fs::write(&path, updated).expect("write docs/forecast.md");
        } else {
            panic!(
                "docs/forecast.md states other validation figures (UPDATE_EXPECT=1 rewrites them):\n{block}"
            );
        }
    }
    assert!(worst <= 0.15, "productivity off by more than 15%:\n{block}");
    assert!(
        forecast_deviation.abs() <= 0.20,
        "forecast off by more than 20%:\n{block}"
    );
}
