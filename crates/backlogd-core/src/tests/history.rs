//! The daily history: a row at each midnight of the configured time zone (Europe/Amsterdam in the
//! example settings), the state at that instant, the same however the clock got there.

use expect_test::expect;

use super::{CoreSettings, State, run_script};
use crate::history::{DailyRow, MAX_DAYS};
use crate::time::{NANOS_PER_DAY, to_nanos};

fn render(state: &State) -> String {
    let mut out = String::new();
    for row in state.daily_history() {
        let t = &row.tracks[0];
        out.push_str(&format!(
            "{} open={} overdue={} due_soon={:?} in={} out={} staff={}+{} mentors={} mentees={} unmentored={} audits={}/{}\n",
            row.day,
            t.open,
            t.overdue,
            t.due_soon,
            t.inflow_total,
            t.outflow_total,
            row.employees_experienced,
            row.employees_inexperienced,
            row.mentors,
            row.mentees,
            row.unmentored,
            row.audits_passed,
            row.audits_failed,
        ));
    }
    out
}

// Amsterdam is UTC+1 in January: midnight is 23:00 UTC the day before.
const SCRIPT: &str = r#"
    at 2025-01-01T10:00:00Z
    employee.joined employee=m1 role=mentor experienced=true
    employee.joined employee=n1 experienced=false
    employee.joined employee=n2 experienced=false
    mentor.assigned mentor=m1 mentee=n1
    case.registered case=c1 deadline=2025-01-01T22:30:00Z
    case.registered case=c2 deadline=2025-01-01T23:30:00Z
    case.registered case=c3
    # One second before midnight in Amsterdam: counts in the day that ends.
    at 2025-01-01T22:59:59Z
    case.registered case=c4
    # One second after: the next day's.
    at 2025-01-01T23:00:01Z
    case.decided case=c3 decided_by=m1
    at 2025-01-04T12:00:00Z
    quality.audit passed=false case=c4
"#;

#[test]
fn a_row_at_each_midnight_is_the_state_at_that_instant() {
    let mut state = State::new(CoreSettings::example());
    run_script(&mut state, SCRIPT, |_, _, _| {});
    // c1's deadline passed before the first midnight, c2's after it; c3 decided after it.
    expect![[r#"
        2025-01-01 open=4 overdue=1 due_soon=[1, 1] in=4 out=0 staff=1+2 mentors=1 mentees=1 unmentored=1 audits=0/0
        2025-01-02 open=3 overdue=2 due_soon=[0, 0] in=4 out=1 staff=1+2 mentors=1 mentees=1 unmentored=1 audits=0/0
        2025-01-03 open=3 overdue=2 due_soon=[0, 0] in=4 out=1 staff=1+2 mentors=1 mentees=1 unmentored=1 audits=0/0
    "#]]
    .assert_eq(&render(&state));
}

/// `SCRIPT` with explicit event ids and, when `tick` is set, an `at` line every `tick` between its
/// own `at` lines.
fn with_ticks(tick: Option<i64>) -> String {
    let mut out = String::new();
    let mut previous: Option<i64> = None;
    for (n, line) in SCRIPT.lines().map(str::trim).enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(at) = line.strip_prefix("at ") {
            let target = to_nanos(at.parse().unwrap()).unwrap();
            if let (Some(mut t), Some(tick)) = (previous, tick) {
                while t + tick < target {
                    t += tick;
                    out.push_str(&format!("at {}\n", crate::time::from_nanos(t)));
                }
            }
            previous = Some(target);
            out.push_str(&format!("{line}\n"));
        } else {
            out.push_str(&format!("{line} id=ev-{n}\n"));
        }
    }
    out
}

#[test]
fn rows_do_not_depend_on_when_the_clock_ticked() {
    let mut jumped = State::new(CoreSettings::example());
    run_script(&mut jumped, &with_ticks(None), |_, _, _| {});
    let mut ticked = State::new(CoreSettings::example());
    run_script(
        &mut ticked,
        &with_ticks(Some(7 * 60 * 1_000_000_000)),
        |_, _, _| {},
    );
    assert_eq!(ticked.daily_history().len(), 3);
    assert_eq!(render(&ticked), render(&jumped));
    assert_eq!(
        ticked.daily_history().collect::<Vec<_>>(),
        jumped.daily_history().collect::<Vec<_>>()
    );
}

#[test]
fn the_history_survives_a_snapshot_and_stays_bounded() {
    let mut state = State::new(CoreSettings::example());
    run_script(&mut state, SCRIPT, |_, _, _| {});
    let restored =
        State::decode_snapshot(CoreSettings::example(), &state.encode_snapshot()).unwrap();
    assert_eq!(render(&restored), render(&state));
    assert_eq!(
        restored.daily_history().collect::<Vec<_>>(),
        state.daily_history().collect::<Vec<_>>()
    );
    assert!(
        state.daily_history().any(|row| row.decisions_in_window > 0),
        "the script decides cases"
    );
    // A version 6 snapshot has the rows without their decisions.
    let v6 = State::decode_snapshot(CoreSettings::example(), &state.encode_snapshot_v6()).unwrap();
    let without_decisions: Vec<_> = state
        .daily_history()
        .map(|row| DailyRow {
            decisions_in_window: 0,
            decisions_by_new_staff_in_window: 0,
            ..row.clone()
        })
        .collect();
    assert_eq!(
        v6.daily_history().cloned().collect::<Vec<_>>(),
        without_decisions
    );
    // A version 4 snapshot has no history.
    let old = State::decode_snapshot(CoreSettings::example(), &state.encode_snapshot_v4()).unwrap();
    assert_eq!(old.daily_history().len(), 0);
    // After the load the next midnight is taken as before.
    let mut restored = restored;
    let now = restored.now();
    restored.advance(now + 2 * NANOS_PER_DAY);
    state.advance(now + 2 * NANOS_PER_DAY);
    assert_eq!(render(&restored), render(&state));
    // Twelve years on: only the last MAX_DAYS days are kept.
    restored.advance(now + 12 * 366 * NANOS_PER_DAY);
    assert_eq!(restored.daily_history().len(), MAX_DAYS);
    let last = restored.daily_history().last().unwrap();
    assert!(last.at <= restored.now() && restored.now() - last.at < NANOS_PER_DAY);
}

/// The day names of the rows, in order.
fn days(state: &State) -> Vec<String> {
    state.daily_history().map(|row| row.day.clone()).collect()
}

/// One row a day, always (issue 20, defect 12): a reload that moves `time.timezone` west after the
/// old zone's midnight reaches the end of the same calendar day again, in the new zone. The later
/// row, the day's end in the zone now in force, replaces the earlier.
#[test]
fn a_time_zone_moved_west_does_not_repeat_a_day() {
    let (Ok(amsterdam), Ok(new_york)) = (
        jiff::tz::TimeZone::get("Europe/Amsterdam"),
        jiff::tz::TimeZone::get("America/New_York"),
    ) else {
        panic!("the time zone database has Europe/Amsterdam and America/New_York");
    };
    let mut settings = CoreSettings::example();
    settings.timezone = amsterdam;
    let mut state = State::new(settings.clone());
    let at = |text: &str| to_nanos(text.parse().unwrap()).unwrap();
    state.advance(at("2025-01-01T10:00:00Z"));
    // Amsterdam's midnight is 23:00 UTC: the row of 2025-01-01 is taken.
    state.advance(at("2025-01-01T23:30:00Z"));
    assert_eq!(days(&state), ["2025-01-01"]);
    settings.timezone = new_york;
    state.set_settings(settings).unwrap();
    // New York's midnights: 05:00 UTC, ending 2025-01-01 again, then 2025-01-02.
    state.advance(at("2025-01-03T12:00:00Z"));
    assert_eq!(days(&state), ["2025-01-01", "2025-01-02"]);
    let first = state.daily_history().next().unwrap();
    assert_eq!(
        first.at,
        at("2025-01-02T05:00:00Z"),
        "the later end of the day"
    );
}

/// A row names the windows it counted over (issue 20, defect 2): after a reload that reverses the
/// due-soon windows and changes the new-staff weeks, the rows taken before it keep theirs, and the
/// label → count pairs of every row equal those of a state that never reloaded.
#[test]
fn a_reload_does_not_relabel_the_rows_taken_before_it() {
    let pairs = |state: &State| -> Vec<Vec<(String, i64)>> {
        state
            .daily_history()
            .map(|row| {
                let mut pairs: Vec<(String, i64)> = row
                    .basis
                    .due_soon_windows
                    .iter()
                    .cloned()
                    .zip(row.tracks[0].due_soon.iter().copied())
                    .collect();
                pairs.sort();
                pairs
            })
            .collect()
    };
    // With a case due in 7 to 28 days, so that the two windows count differently.
    let script = SCRIPT.replace(
        "    case.registered case=c3\n",
        "    case.registered case=c3\n    case.registered case=c9 deadline=2025-01-20T00:00:00Z\n",
    );
    let mut steady = State::new(CoreSettings::example());
    run_script(&mut steady, &script, |_, _, _| {});
    let mut reloaded = State::new(CoreSettings::example());
    let (before, after) = script.split_at(script.find("    at 2025-01-04").unwrap());
    run_script(&mut reloaded, before, |_, _, _| {});
    let rows_before = reloaded.daily_history().len();
    assert!(rows_before > 0);
    let mut settings = CoreSettings::example();
    settings.due_soon_windows.reverse();
    settings.new_staff_weeks = 4;
    reloaded.set_settings(settings).unwrap();
    run_script(&mut reloaded, after, |_, _, _| {});
    assert_eq!(pairs(&reloaded), pairs(&steady));
    assert!(
        steady
            .daily_history()
            .any(|row| row.tracks[0].due_soon[0] != row.tracks[0].due_soon[1]),
        "the windows count differently somewhere, or a swap would go unseen"
    );
    for (n, row) in reloaded.daily_history().enumerate() {
        let expected = if n < rows_before { 12 } else { 4 };
        assert_eq!(row.basis.new_staff_weeks, expected, "{}", row.day);
    }
    // And through a snapshot of today's format and one of format 7 (which did not record the
    // basis: its rows get the settings it is decoded under).
    let bytes = reloaded.encode_snapshot();
    let restored = State::decode_snapshot(reloaded.settings().clone(), &bytes).unwrap();
    assert!(restored.daily_history().eq(reloaded.daily_history()));
    let v7 = State::decode_snapshot(CoreSettings::example(), &steady.encode_snapshot_v7()).unwrap();
    assert!(v7.daily_history().eq(steady.daily_history()));
}
