//! The daily history: a row at each midnight of the configured time zone (Europe/Amsterdam in the
//! example settings), the state at that instant, the same however the clock got there.

use expect_test::expect;

use super::{CoreSettings, State, run_script};
use crate::core::history::{DailyRow, MAX_DAYS};
use crate::core::time::{NANOS_PER_DAY, to_nanos};

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
                    out.push_str(&format!("at {}\n", crate::core::time::from_nanos(t)));
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
