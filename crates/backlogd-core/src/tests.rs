//! Data-driven tests of the state core: a small script of events and clock moves in, the non-zero
//! aggregates (and every rejection) out, compared with an `expect!` snapshot. `UPDATE_EXPECT=1 cargo
//! test` rewrites the snapshots; review the diff.
//!
//! Script lines:
//! - `at 2025-01-01T00:00:00Z` moves the fake clock (and the default event time) there;
//! - `TYPE key=value ...` applies an event of that type at the clock's time (`time=` overrides, `id=`
//!   sets the id; the default id is `e<line number>`);
//! - `# ...` comments and blank lines are ignored.
//!
//! After every step the harness checks that the incrementally maintained aggregates equal a
//! recomputation from scratch.

use expect_test::{Expect, expect};
use jiff::{Span, Timestamp};

use super::event::{CloseReason, Contract, Event, EventKind, Extension, Outcome};
use super::settings::CoreSettings;
use super::state::{Applied, State};
use super::time::{EpochNanos, NANOS_PER_SECOND, to_nanos};

fn check(script: &str, expect: Expect) {
    check_with(CoreSettings::example(), script, expect);
}

fn check_with(settings: CoreSettings, script: &str, expect: Expect) {
    let mut state = State::new(settings);
    let mut out = String::new();
    run_script(&mut state, script, |state, line, applied| {
        match applied {
            Some(Ok(Applied::Duplicate)) => out.push_str(&format!("line {line}: duplicate\n")),
            Some(Err(rejection)) => out.push_str(&format!("line {line}: {rejection}\n")),
            Some(Ok(Applied::New)) | None => {}
        }
        let mut recomputed = state.clone();
        recomputed.rebuild_derived();
        assert_eq!(
            recomputed.aggregates(),
            state.aggregates(),
            "incremental aggregates diverge from recomputation after line {line}"
        );
        let (kept, counted) = state.capacity_headcounts();
        assert_eq!(
            kept, counted,
            "presence per capacity class diverges from the employees after line {line}"
        );
    });
    out.push_str(&render(&state));
    expect.assert_eq(&out);
}

/// Runs a script (see the module documentation) against `state`, calling `on_step` after every
/// `at` line (with `None`) and every event (with what `apply` returned), with the 1-based line number.
fn run_script(
    state: &mut State,
    script: &str,
    mut on_step: impl FnMut(&State, usize, Option<Result<Applied, super::event::Rejection>>),
) {
    let mut clock: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
    for (number, line) in script.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let head = words.next().unwrap();
        let applied = if head == "at" {
            clock = words.next().unwrap().parse().unwrap();
            state.advance(to_nanos(clock).unwrap());
            None
        } else {
            let fields: Vec<(&str, &str)> = words.map(|w| w.split_once('=').unwrap()).collect();
            let event = build_event(head, &fields, clock, number + 1);
            Some(state.apply(&event, to_nanos(clock).unwrap()))
        };
        on_step(state, number + 1, applied);
    }
}

fn build_event(kind: &str, fields: &[(&str, &str)], clock: Timestamp, line: usize) -> Event {
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    let req = |key: &str| get(key).unwrap_or_else(|| panic!("line {line}: {key} missing"));
    let ts = |key: &str| get(key).map(|v| v.parse::<Timestamp>().unwrap());
    let flag = |key: &str| get(key).map(|v| v == "true");
    let case = || req("case");
    let kind = match kind {
        "case.registered" => EventKind::CaseRegistered {
            case: case(),
            track: get("track").unwrap_or("asylum".into()),
            received_at: ts("received_at"),
            location: get("location"),
            deadline: ts("deadline"),
        },
        "case.assigned" => EventKind::CaseAssigned {
            case: case(),
            employee: req("employee"),
        },
        "case.unassigned" => EventKind::CaseUnassigned { case: case() },
        "case.phase_changed" => EventKind::CasePhaseChanged {
            case: case(),
            phase: req("phase"),
        },
        "case.hearing_held" => EventKind::CaseHearingHeld { case: case() },
        "case.hearing_cancelled" => EventKind::CaseHearingCancelled {
            case: case(),
            reason: get("reason"),
        },
        "case.deadline_extended" => EventKind::CaseDeadlineExtended {
            case: case(),
            extension: match get("by") {
                Some(by) => Extension::By(by.parse::<Span>().unwrap()),
                None => Extension::To(ts("deadline").unwrap()),
            },
        },
        "case.suspended" => EventKind::CaseSuspended { case: case() },
        "case.resumed" => EventKind::CaseResumed { case: case() },
        "case.transferred" => EventKind::CaseTransferred {
            case: case(),
            location: req("location"),
        },
        "case.decided" => EventKind::CaseDecided {
            case: case(),
            outcome: Outcome::parse(&get("outcome").unwrap_or("granted".into())).unwrap(),
            decided_by: req("decided_by"),
            basis: get("basis"),
            additional_investigation: flag("additional_investigation"),
        },
        "case.closed" => EventKind::CaseClosed {
            case: case(),
            reason: CloseReason::parse(&get("reason").unwrap_or("withdrawn".into())).unwrap(),
        },
        "case.reopened" => EventKind::CaseReopened {
            case: case(),
            deadline: ts("deadline"),
            track: get("track"),
        },
        "employee.joined" => EventKind::EmployeeJoined {
            employee: req("employee"),
            role: get("role").unwrap_or("caseworker".into()),
            experienced: flag("experienced").unwrap_or(false),
            contract: Contract::parse(&get("contract").unwrap_or("permanent".into())).unwrap(),
            location: get("location"),
            since: get("since").map(|t| t.parse().unwrap()),
        },
        "employee.updated" => EventKind::EmployeeUpdated {
            employee: req("employee"),
            role: get("role"),
            experienced: flag("experienced"),
            contract: get("contract").map(|c| Contract::parse(&c).unwrap()),
            location: get("location"),
        },
        "employee.left" => EventKind::EmployeeLeft {
            employee: req("employee"),
        },
        "mentor.assigned" => EventKind::MentorAssigned {
            mentor: req("mentor"),
            mentee: req("mentee"),
        },
        "mentor.unassigned" => EventKind::MentorUnassigned {
            mentee: req("mentee"),
        },
        "quality.audit" => EventKind::QualityAudit {
            passed: flag("passed").unwrap(),
            case: get("case"),
        },
        "target.announced" => EventKind::TargetAnnounced {
            target: req("target"),
            track: get("track"),
            clear_by: ts("clear_by").unwrap(),
            announced_by: get("announced_by"),
            note: get("note").map(|n| n.replace('_', " ")),
        },
        other => panic!("line {line}: unknown event type {other}"),
    };
    Event {
        id: get("id").unwrap_or(format!("e{line}")),
        time: ts("time").unwrap_or(clock),
        kind,
    }
}

/// The non-zero aggregates, one per line, in a fixed order.
pub(super) fn render(state: &State) -> String {
    let settings = state.settings();
    let aggregates = state.aggregates();
    let mut out = String::new();
    let mut line = |name: &str, labels: String, value: String| {
        if value != "0" {
            out.push_str(&format!("{name}{{{labels}}} {value}\n"));
        }
    };
    let max_overdue = state.max_overdue_nanos();
    for (t, track) in aggregates.tracks.iter().enumerate() {
        let name = &settings.tracks[t].name;
        for (l, location) in aggregates.locations.iter().enumerate() {
            line(
                "open",
                format!("{name},{location}"),
                track.open_by_location[l].to_string(),
            );
            line(
                "overdue",
                format!("{name},{location}"),
                track.overdue_by_location[l].to_string(),
            );
        }
        for (w, window) in settings.due_soon_windows.iter().enumerate() {
            line(
                "due_soon",
                format!("{name},{}", window.label),
                track.due_soon_by_window[w].to_string(),
            );
        }
        for (p, count) in track.open_by_phase.iter().enumerate() {
            line(
                "phase",
                format!("{name},{}", settings.phase_name(p as u8)),
                count.to_string(),
            );
        }
        let euros = |cents: i64| match cents {
            0 => "0".to_string(),
            _ => format!("{:.2}", cents as f64 / 100.0),
        };
        line("suspended", name.clone(), track.suspended.to_string());
        line("unassigned", name.clone(), track.unassigned.to_string());
        line(
            "max_overdue_s",
            name.clone(),
            (max_overdue[t] / NANOS_PER_SECOND).to_string(),
        );
        line(
            "exposure_eur",
            name.clone(),
            euros(track.penalty_exposure_cents),
        );
        line(
            "incurred_eur",
            name.clone(),
            euros(track.penalty_incurred_cents),
        );
        line("registered", name.clone(), track.registered.to_string());
        line("reopened", name.clone(), track.reopened.to_string());
        for (o, outcome) in Outcome::ALL.iter().enumerate() {
            line(
                "decided",
                format!("{name},{}", outcome.as_str()),
                track.decided_by_outcome[o].to_string(),
            );
        }
        for (r, reason) in CloseReason::ALL.iter().enumerate() {
            line(
                "closed",
                format!("{name},{}", reason.as_str()),
                track.closed_by_reason[r].to_string(),
            );
        }
        line(
            "decisions_overdue",
            name.clone(),
            track.decisions_overdue.to_string(),
        );
        line(
            "by_inexperienced",
            name.clone(),
            track.decisions_by_inexperienced.to_string(),
        );
        line(
            "benefit_of_doubt",
            name.clone(),
            track.decisions_benefit_of_doubt.to_string(),
        );
        line(
            "without_investigation",
            name.clone(),
            track.decisions_without_investigation.to_string(),
        );
        line(
            "extensions",
            name.clone(),
            track.deadline_extensions.to_string(),
        );
        line(
            "hearings",
            format!("{name},held"),
            track.hearings_held.to_string(),
        );
        line(
            "hearings",
            format!("{name},cancelled"),
            track.hearings_cancelled.to_string(),
        );
        line("transfers", name.clone(), track.transfers.to_string());
        let lead = &track.lead_time;
        line("lead_time_count", name.clone(), lead.count().to_string());
        line(
            "lead_time_sum_days",
            name.clone(),
            format!("{}", lead.sum_seconds / 86_400.0),
        );
    }
    for (r, role) in settings.roles.iter().enumerate() {
        for contract in Contract::ALL {
            for experienced in [false, true] {
                let slot =
                    super::aggregates::Aggregates::employee_slot(r as u8, contract, experienced);
                line(
                    "employees",
                    format!("{role},{},{experienced}", contract.as_str()),
                    aggregates.employees[slot].to_string(),
                );
            }
        }
    }
    line(
        "audits_passed",
        String::new(),
        aggregates.audits_passed.to_string(),
    );
    line(
        "audits_failed",
        String::new(),
        aggregates.audits_failed.to_string(),
    );
    out
}

fn secs(n: i64) -> EpochNanos {
    n * NANOS_PER_SECOND
}

#[test]
fn registration_counts_open_unassigned_and_due_soon() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1
        case.registered case=c2 location=Zwolle received_at=2024-07-20T00:00:00Z
        "#,
        expect![[r#"
            open{asylum,unknown} 1
            open{asylum,Zwolle} 1
            due_soon{asylum,P28D} 1
            phase{asylum,none} 2
            unassigned{asylum} 2
            registered{asylum} 2
        "#]],
    );
}

#[test]
fn overdue_transition_happens_at_the_exact_tick_after_the_deadline() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 deadline=2025-01-10T12:00:00Z
        at 2025-01-03T12:00:00Z
        # Due soon for P7D from deadline - 7 days on.
        at 2025-01-10T12:00:00Z
        # Exactly at the deadline: not yet overdue (overdue is now > deadline).
        "#,
        expect![[r#"
            open{asylum,unknown} 1
            due_soon{asylum,P7D} 1
            due_soon{asylum,P28D} 1
            phase{asylum,none} 1
            unassigned{asylum} 1
            registered{asylum} 1
        "#]],
    );
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 deadline=2025-01-10T12:00:00Z
        at 2025-01-10T12:00:01Z
        "#,
        expect![[r#"
            open{asylum,unknown} 1
            overdue{asylum,unknown} 1
            phase{asylum,none} 1
            unassigned{asylum} 1
            max_overdue_s{asylum} 1
            registered{asylum} 1
        "#]],
    );
}

#[test]
fn advance_touches_only_cases_whose_class_changes() {
    let mut state = State::new(CoreSettings::example());
    let start = to_nanos("2025-01-01T00:00:00Z".parse().unwrap()).unwrap();
    state.advance(start);
    for i in 0..1000 {
        let event = Event {
            id: format!("e{i}"),
            time: "2025-01-01T00:00:00Z".parse().unwrap(),
            kind: EventKind::CaseRegistered {
                case: format!("c{i}"),
                track: "asylum".into(),
                received_at: None,
                location: None,
                // One case far in the future; the rest spread over years.
                deadline: Some(super::time::from_nanos(
                    start + secs(86_400) * (400 + i as i64),
                )),
            },
        };
        state.apply(&event, start).unwrap();
    }
    // One hour later nothing crosses a boundary: no case is touched.
    assert_eq!(state.advance(start + secs(3600)), 0);
    // 400 days - 28 days later, exactly the first case enters the P28D window.
    assert_eq!(state.advance(start + secs(86_400) * 372), 1);
}

#[test]
fn next_class_change_is_the_first_instant_at_which_advance_moves_a_case() {
    let mut state = State::new(CoreSettings::example());
    let start = to_nanos("2025-01-01T00:00:00Z".parse().unwrap()).unwrap();
    state.advance(start);
    assert_eq!(
        state.next_class_change(),
        None,
        "no case, nothing to wake for"
    );
    let deadline = start + secs(86_400) * 40;
    let event = Event {
        id: "e1".into(),
        time: "2025-01-01T00:00:00Z".parse().unwrap(),
        kind: EventKind::CaseRegistered {
            case: "c1".into(),
            track: "asylum".into(),
            received_at: None,
            location: None,
            deadline: Some(super::time::from_nanos(deadline)),
        },
    };
    state.apply(&event, start).unwrap();
    // Entering the P28D window, then P7D, then overdue (one nanosecond after the deadline).
    // (The example settings accrue a penalty from the first whole day overdue.)
    for expected in [
        deadline - secs(86_400) * 28,
        deadline - secs(86_400) * 7,
        deadline + 1,
    ] {
        let at = state.next_class_change().expect("a change ahead");
        assert_eq!(at, expected);
        assert_eq!(state.advance(at - 1), 0, "nothing moves before it");
        assert_eq!(state.advance(at), 1, "the case moves at it");
    }
    // Overdue, the case still changes once a day (its penalty accrues per whole day).
    assert_eq!(state.next_class_change(), Some(deadline + secs(86_400)));
}

#[test]
fn six_month_deadline_clamps_at_month_end_in_the_configured_zone() {
    // Received 2024-08-31 10:00 Amsterdam (+02:00): six months later is 2025-02-28 10:00 (+01:00).
    check(
        r#"
        at 2024-08-31T08:00:00Z
        case.registered case=c1
        at 2025-02-28T09:00:00Z
        at 2025-02-28T09:00:01Z
        "#,
        expect![[r#"
            open{asylum,unknown} 1
            overdue{asylum,unknown} 1
            phase{asylum,none} 1
            unassigned{asylum} 1
            max_overdue_s{asylum} 1
            registered{asylum} 1
        "#]],
    );
}

#[test]
fn penalty_accrues_per_whole_day_through_the_tiers_to_the_cap() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 deadline=2025-01-01T00:00:00Z
        case.registered case=c2 deadline=2025-01-01T00:00:00Z
        at 2025-01-01T23:59:59Z
        "#,
        expect![[r#"
            open{asylum,unknown} 2
            overdue{asylum,unknown} 2
            phase{asylum,none} 2
            unassigned{asylum} 2
            max_overdue_s{asylum} 86399
            registered{asylum} 2
        "#]],
    );
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 deadline=2025-01-01T00:00:00Z
        at 2025-01-16T00:00:00Z
        # 15 days: 14 x 23 + 1 x 35 = 357
        "#,
        expect![[r#"
            open{asylum,unknown} 1
            overdue{asylum,unknown} 1
            phase{asylum,none} 1
            unassigned{asylum} 1
            max_overdue_s{asylum} 1296000
            exposure_eur{asylum} 357.00
            registered{asylum} 1
        "#]],
    );
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 deadline=2025-01-01T00:00:00Z
        at 2026-01-01T00:00:00Z
        # Capped at 14 x 23 + 14 x 35 + 14 x 45 = 1442
        "#,
        expect![[r#"
            open{asylum,unknown} 1
            overdue{asylum,unknown} 1
            phase{asylum,none} 1
            unassigned{asylum} 1
            max_overdue_s{asylum} 31536000
            exposure_eur{asylum} 1442.00
            registered{asylum} 1
        "#]],
    );
}

#[test]
fn penalty_grace_delays_accrual() {
    let mut settings = CoreSettings::example();
    settings.tracks[0].penalty_grace = Span::new().days(14);
    check_with(
        settings,
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 deadline=2025-01-01T00:00:00Z
        at 2025-01-16T00:00:00Z
        # 15 days overdue, 14 of them grace: 1 day x 23
        "#,
        expect![[r#"
            open{asylum,unknown} 1
            overdue{asylum,unknown} 1
            phase{asylum,none} 1
            unassigned{asylum} 1
            max_overdue_s{asylum} 1296000
            exposure_eur{asylum} 23.00
            registered{asylum} 1
        "#]],
    );
}

#[test]
fn decision_closes_counts_overdue_penalty_lead_time_and_quality_signals() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        employee.joined employee=new role=caseworker experienced=false contract=temporary
        employee.joined employee=old role=decision_officer experienced=true
        case.registered case=c1 received_at=2024-06-01T00:00:00Z deadline=2024-12-01T00:00:00Z
        case.registered case=c2
        case.assigned case=c1 employee=new
        at 2025-01-03T00:00:00Z
        case.decided case=c1 outcome=granted decided_by=new basis=benefit_of_doubt additional_investigation=false
        case.decided case=c2 outcome=rejected decided_by=old additional_investigation=true
        "#,
        expect![[r#"
            incurred_eur{asylum} 1037.00
            registered{asylum} 2
            decided{asylum,granted} 1
            decided{asylum,rejected} 1
            decisions_overdue{asylum} 1
            by_inexperienced{asylum} 1
            benefit_of_doubt{asylum} 1
            without_investigation{asylum} 1
            lead_time_count{asylum} 2
            lead_time_sum_days{asylum} 218
            employees{caseworker,temporary,false} 1
            employees{decision_officer,permanent,true} 1
        "#]],
    );
}

#[test]
fn experience_counts_at_decision_time() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        employee.joined employee=e1 experienced=false
        case.registered case=c1
        case.registered case=c2
        case.decided case=c1 decided_by=e1
        employee.updated employee=e1 experienced=true
        case.decided case=c2 decided_by=e1
        "#,
        expect![[r#"
            registered{asylum} 2
            decided{asylum,granted} 2
            by_inexperienced{asylum} 1
            lead_time_count{asylum} 2
            employees{caseworker,permanent,true} 1
        "#]],
    );
}

#[test]
fn suspension_stops_the_clock_and_resume_moves_the_deadline() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 deadline=2025-01-10T00:00:00Z
        at 2025-01-05T00:00:00Z
        case.suspended case=c1
        at 2025-01-20T00:00:00Z
        # Suspended: never overdue, never due soon.
        case.resumed case=c1
        # Resumed after 15 days: the deadline moved to 2025-01-25, 5 days ahead.
        "#,
        expect![[r#"
            open{asylum,unknown} 1
            due_soon{asylum,P7D} 1
            due_soon{asylum,P28D} 1
            phase{asylum,none} 1
            unassigned{asylum} 1
            registered{asylum} 1
        "#]],
    );
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 deadline=2025-01-10T00:00:00Z
        at 2025-01-05T00:00:00Z
        case.suspended case=c1
        at 2025-01-20T00:00:00Z
        "#,
        expect![[r#"
            open{asylum,unknown} 1
            phase{asylum,none} 1
            suspended{asylum} 1
            unassigned{asylum} 1
            registered{asylum} 1
        "#]],
    );
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 deadline=2025-01-10T00:00:00Z
        at 2025-01-05T00:00:00Z
        case.suspended case=c1
        case.suspended case=c1
        at 2025-01-06T00:00:00Z
        case.resumed case=c1
        case.resumed case=c1
        at 2025-01-11T00:00:01Z
        "#,
        expect![[r#"
            line 6: case_suspended: case "c1" is already suspended
            line 9: case_not_suspended: case "c1" is not suspended
            open{asylum,unknown} 1
            overdue{asylum,unknown} 1
            phase{asylum,none} 1
            unassigned{asylum} 1
            max_overdue_s{asylum} 1
            registered{asylum} 1
        "#]],
    );
}

#[test]
fn extension_by_calendar_span_or_to_a_date() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 deadline=2025-01-02T00:00:00Z
        case.registered case=c2 deadline=2025-01-02T00:00:00Z
        case.deadline_extended case=c1 by=P9M
        case.deadline_extended case=c2 deadline=2025-01-20T00:00:00Z
        at 2025-01-03T00:00:00Z
        "#,
        expect![[r#"
            open{asylum,unknown} 2
            due_soon{asylum,P28D} 1
            phase{asylum,none} 2
            unassigned{asylum} 2
            registered{asylum} 2
            extensions{asylum} 2
        "#]],
    );
}

#[test]
fn phases_hearings_transfers_and_unknown_values() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 location=Ter_Apel
        case.phase_changed case=c1 phase=hearing
        case.phase_changed case=c1 phase=lunch
        case.hearing_held case=c1
        case.hearing_cancelled case=c1 reason=interpreter
        case.transferred case=c1 location=Budel
        case.registered case=c2 track=labour
        "#,
        expect![[r#"
            line 5: unknown_phase: field `data.phase`: "lunch" is not one of the configured phases (intake, hearing, intention, view, decision)
            line 9: unknown_track: field `data.track`: track "labour" is not configured (configured: asylum)
            open{asylum,Budel} 1
            phase{asylum,hearing} 1
            unassigned{asylum} 1
            registered{asylum} 1
            hearings{asylum,held} 1
            hearings{asylum,cancelled} 1
            transfers{asylum} 1
        "#]],
    );
}

#[test]
fn every_case_rejection_reason() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1
        case.registered case=c1
        case.assigned case=nope employee=x
        case.assigned case=c1 employee=ghost
        employee.joined employee=e1 experienced=true
        case.closed case=c1 reason=withdrawn
        case.hearing_held case=c1
        case.reopened case=c1 track=labour
        case.reopened case=c1
        case.reopened case=c1
        case.registered case=c9 time=2025-01-01T00:05:01Z
        case.registered case=c9 time=2025-01-01T00:05:00Z
        "#,
        expect![[r#"
            line 4: case_exists: case "c1" is already registered
            line 5: unknown_case: case "nope" was never registered
            line 6: unknown_employee: field `data.employee`: employee "ghost" has not joined
            line 9: case_closed: case "c1" is closed; only case.reopened applies to it
            line 10: unknown_track: field `data.track`: track "labour" is not configured (configured: asylum)
            line 12: case_open: case "c1" is open; only a closed case can be reopened
            line 13: time_in_future: field `time`: 2025-01-01T00:05:01Z is more than 5m ahead of the daemon's clock (2025-01-01T00:00:00Z)
            open{asylum,unknown} 2
            phase{asylum,none} 2
            unassigned{asylum} 2
            registered{asylum} 2
            reopened{asylum} 1
            closed{asylum,withdrawn} 1
            employees{caseworker,permanent,true} 1
        "#]],
    );
}

#[test]
fn reopened_case_starts_over_with_a_new_deadline_and_lead_time() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        employee.joined employee=e1 experienced=true
        case.registered case=c1 received_at=2024-01-01T00:00:00Z
        case.phase_changed case=c1 phase=decision
        case.assigned case=c1 employee=e1
        case.decided case=c1 decided_by=e1
        at 2025-03-01T00:00:00Z
        case.reopened case=c1 deadline=2025-03-05T00:00:00Z
        at 2025-03-11T00:00:00Z
        case.decided case=c1 decided_by=e1 outcome=rejected
        "#,
        expect![[r#"
            incurred_eur{asylum} 1580.00
            registered{asylum} 1
            reopened{asylum} 1
            decided{asylum,granted} 1
            decided{asylum,rejected} 1
            decisions_overdue{asylum} 2
            lead_time_count{asylum} 2
            lead_time_sum_days{asylum} 376
            employees{caseworker,permanent,true} 1
        "#]],
    );
}

#[test]
fn employee_departure_unassigns_cases_and_frees_mentees() {
    let script = r#"
        at 2025-01-01T00:00:00Z
        employee.joined employee=m role=mentor experienced=true
        employee.joined employee=n1
        employee.joined employee=n2
        employee.joined employee=n1
        mentor.assigned mentor=m mentee=n1
        mentor.assigned mentor=m mentee=n2
        mentor.assigned mentor=n1 mentee=n1
        mentor.assigned mentor=m mentee=ghost
        case.registered case=c1
        case.registered case=c2
        case.registered case=c3
        case.assigned case=c1 employee=m
        case.assigned case=c2 employee=m
        case.assigned case=c3 employee=n1
        employee.left employee=m
        case.assigned case=c1 employee=m
        employee.left employee=m
        employee.joined employee=m role=mentor experienced=true
        mentor.unassigned mentee=n2
    "#;
    check(
        script,
        expect![[r#"
            line 6: employee_exists: employee "n1" is already active
            line 9: same_employee: fields `data.mentor` and `data.mentee` are both "n1": an employee cannot mentor themselves
            line 10: unknown_employee: field `data.mentee`: employee "ghost" has not joined
            line 18: unknown_employee: field `data.employee`: employee "m" has left and is not active
            line 19: unknown_employee: field `data.employee`: employee "m" has left and is not active
            open{asylum,unknown} 3
            phase{asylum,none} 3
            unassigned{asylum} 2
            registered{asylum} 3
            employees{caseworker,permanent,false} 2
            employees{mentor,permanent,true} 1
        "#]],
    );
}

#[test]
fn duplicates_are_ignored_and_rejected_ids_can_be_resent() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 id=a
        case.registered case=c2 id=a
        case.hearing_held case=c3 id=b
        case.registered case=c3 id=c
        case.hearing_held case=c3 id=b
        case.hearing_held case=c3 id=b
        "#,
        expect![[r#"
            line 4: duplicate
            line 5: unknown_case: case "c3" was never registered
            line 8: duplicate
            open{asylum,unknown} 2
            phase{asylum,none} 2
            unassigned{asylum} 2
            registered{asylum} 2
            hearings{asylum,held} 1
        "#]],
    );
}

/// Issue 24, finding 7: remembered ids expire as the clock moves, not only when a new id arrives:
/// with no event for two windows (plus the moves of the clock in between), none is left. Each is
/// still remembered for at least the window after its arrival. Before the fix all 1,000 stayed.
#[test]
fn remembered_ids_expire_on_the_clock_without_new_events() {
    let mut settings = CoreSettings::example();
    settings.dedup_window = jiff::SignedDuration::from_secs(5);
    let mut state = State::new(settings);
    let clock: Timestamp = "2026-03-02T09:00:00Z".parse().unwrap();
    let start = to_nanos(clock).unwrap();
    let audit = |n: usize| {
        build_event(
            "quality.audit",
            &[("passed", "true"), ("id", &format!("a{n}"))],
            clock,
            1,
        )
    };
    // 1,000 ids over the first 2.5 s.
    for n in 0..1_000 {
        let at = start + (n as i64) * 2_500_000;
        assert_eq!(state.apply(&audit(n), at), Ok(Applied::New));
    }
    assert_eq!(state.remembered_event_ids(), 1_000);
    // Ticks of one second, no event. At every tick up to 5 s after the last arrival, all are
    // still there, and every one is a duplicate (checked on a copy, so no insert moves things).
    let last_arrival = start + 999 * 2_500_000;
    let mut tick = start;
    let mut forgotten_at = None;
    for _ in 0..60 {
        tick += secs(1);
        state.advance(tick);
        if tick < last_arrival + secs(5) {
            assert_eq!(
                state.remembered_event_ids(),
                1_000,
                "at +{}s",
                (tick - start) / secs(1)
            );
        }
        if state.remembered_event_ids() == 0 {
            forgotten_at = Some(tick);
            break;
        }
    }
    let forgotten_at = forgotten_at.expect("the ids expire without new events");
    // At most two windows after the first arrival, plus one tick for each generation's turn.
    assert!(
        forgotten_at <= start + secs(10) + secs(2),
        "forgotten {} s after the first arrival",
        (forgotten_at - start) / secs(1)
    );
    // Every id was kept at least the window after its arrival: resend each at the window's end.
    let mut fresh = State::new({
        let mut settings = CoreSettings::example();
        settings.dedup_window = jiff::SignedDuration::from_secs(5);
        settings
    });
    for n in 0..1_000 {
        let at = start + (n as i64) * 2_500_000;
        fresh.apply(&audit(n), at).unwrap();
    }
    for n in (0..1_000).step_by(7) {
        let arrival = start + (n as i64) * 2_500_000;
        let resent = arrival + secs(5) - 1;
        let mut copy = fresh.clone();
        // The clock moves in ticks of a second until the resend.
        let mut tick = last_arrival;
        while tick < resent {
            copy.advance(tick);
            tick += secs(1);
        }
        assert_eq!(
            copy.apply(&audit(n), resent),
            Ok(Applied::Duplicate),
            "a{n}"
        );
    }
}

/// `limits.max_locations` labels go to the locations with an open case, in the order first seen;
/// the open cases of the others count in `other` (docs/metrics.md, "Locations"). Here 2 labels,
/// locations a, b, c, d seen in that order, then e: a's only case moves to e, so a has no open
/// case and its label goes to c (b, c labelled; d and e in `other`); then b's case closes and d
/// takes its label (c, d; e in `other`).
#[test]
fn location_labels_go_to_the_first_seen_locations_with_open_cases() {
    let mut settings = CoreSettings::example();
    settings.max_locations = 2;
    check_with(
        settings.clone(),
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 location=a
        case.registered case=c2 location=b
        case.registered case=c3 location=c
        case.registered case=c4 location=d
        case.transferred case=c1 location=e
        "#,
        expect![[r#"
            open{asylum,b} 1
            open{asylum,c} 1
            open{asylum,other} 2
            phase{asylum,none} 4
            unassigned{asylum} 4
            registered{asylum} 4
            transfers{asylum} 1
        "#]],
    );
    check_with(
        settings,
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 location=a
        case.registered case=c2 location=b
        case.registered case=c3 location=c
        case.registered case=c4 location=d
        case.transferred case=c1 location=e
        case.closed case=c2 reason=withdrawn
        "#,
        expect![[r#"
            open{asylum,c} 1
            open{asylum,d} 1
            open{asylum,other} 1
            phase{asylum,none} 3
            unassigned{asylum} 3
            registered{asylum} 4
            closed{asylum,withdrawn} 1
            transfers{asylum} 1
        "#]],
    );
}

#[test]
fn quality_audits_count_pass_and_fail() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        quality.audit passed=true case=anything
        quality.audit passed=false
        quality.audit passed=false
        "#,
        expect![[r#"
            audits_passed{} 1
            audits_failed{} 2
        "#]],
    );
}

#[test]
fn drill_down_lists_the_most_overdue_first_with_penalty() {
    let mut state = State::new(CoreSettings::example());
    let now = to_nanos("2025-02-01T00:00:00Z".parse().unwrap()).unwrap();
    let register = |case: &str, deadline: &str, location: &str| Event {
        id: format!("r-{case}"),
        time: "2025-02-01T00:00:00Z".parse().unwrap(),
        kind: EventKind::CaseRegistered {
            case: case.into(),
            track: "asylum".into(),
            received_at: None,
            location: Some(location.into()),
            deadline: Some(deadline.parse().unwrap()),
        },
    };
    for event in [
        register("late", "2025-01-20T00:00:00Z", "A"),
        register("later", "2025-01-01T00:00:00Z", "B"),
        register("ontime", "2025-03-01T00:00:00Z", "A"),
    ] {
        state.apply(&event, now).unwrap();
    }
    let all = state.overdue_cases(None, None, 100);
    let names: Vec<&str> = all.iter().map(|c| c.case.as_str()).collect();
    assert_eq!(names, ["later", "late"]);
    assert_eq!(all[0].overdue_seconds, 31.0 * 86_400.0);
    assert_eq!(all[0].penalty_cents, 14 * 2300 + 14 * 3500 + 3 * 4500);
    assert_eq!(all[1].location, "A");
    let in_a = state.overdue_cases(Some("asylum"), Some("A"), 100);
    assert_eq!(in_a.len(), 1);
    assert_eq!(state.overdue_cases(None, None, 1).len(), 1);
    assert!(state.overdue_cases(Some("labour"), None, 10).is_empty());
}

#[test]
fn snapshot_round_trip_restores_counters_gauges_lists_and_dedup() {
    let script = r#"
        at 2025-01-01T00:00:00Z
        employee.joined employee=m role=mentor experienced=true
        employee.joined employee=n1 contract=temporary
        mentor.assigned mentor=m mentee=n1
        case.registered case=c1 location=A deadline=2024-12-20T00:00:00Z
        case.registered case=c2 location=B
        case.registered case=c3
        case.assigned case=c1 employee=n1
        case.assigned case=c2 employee=n1
        case.phase_changed case=c2 phase=hearing
        case.suspended case=c3
        case.hearing_cancelled case=c2
        case.decided case=c2 decided_by=n1 basis=benefit_of_doubt
        quality.audit passed=false
    "#;
    let mut state = State::new(CoreSettings::example());
    apply_script(&mut state, script);
    let clock: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
    let now = to_nanos(clock).unwrap();
    let bytes = state.encode_snapshot();
    let mut restored = State::decode_snapshot(CoreSettings::example(), &bytes).unwrap();
    assert_eq!(restored.aggregates(), state.aggregates());
    assert_eq!(restored.flows(), state.flows());
    assert_eq!(restored.flows().inflow, vec![vec![3, 3]]);
    assert_eq!(
        restored.remembered_event_ids(),
        state.remembered_event_ids()
    );
    assert_eq!(
        restored.overdue_cases(None, None, 10),
        state.overdue_cases(None, None, 10)
    );
    // The same further events give the same result on both: lists, mentors and dedup were restored.
    let later = now + secs(86_400 * 30);
    for s in [&mut state, &mut restored] {
        let leave = build_event("employee.left", &[("employee", "n1")], clock, 100);
        s.apply(&leave, later).unwrap();
        let again = build_event("case.registered", &[("case", "c9")], clock, 5);
        assert_eq!(s.apply(&again, later), Ok(Applied::Duplicate));
        let mentor = build_event("mentor.unassigned", &[("mentee", "n1")], clock, 101);
        assert!(s.apply(&mentor, later).is_err(), "n1 has left");
    }
    assert_eq!(restored.aggregates(), state.aggregates());
    assert_eq!(render(&restored), render(&state));
    // A damaged snapshot is refused, never half-loaded.
    assert!(State::decode_snapshot(CoreSettings::example(), &bytes[..bytes.len() - 3]).is_err());
    let mut renamed = CoreSettings::example();
    renamed.tracks[0].name = "labour".into();
    let refused = State::decode_snapshot(renamed, &bytes)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("track \"asylum\""), "{refused}");
}

#[test]
fn unassignment_roles_and_closure_reasons() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        employee.joined employee=e1 role=chef
        employee.joined employee=e1 role=decision_officer experienced=true
        employee.updated employee=e1 role=janitor
        employee.updated employee=e1 contract=temporary
        case.registered case=c1
        case.registered case=c2
        case.registered case=c3
        case.assigned case=c1 employee=e1
        case.assigned case=c2 employee=e1
        case.unassigned case=c1
        case.closed case=c2 reason=transferred_out
        case.closed case=c3 reason=merged
        case.unassigned case=c3
        "#,
        expect![[r#"
            line 3: unknown_role: field `data.role`: "chef" is not one of the configured roles (caseworker, mentor, decision_officer)
            line 5: unknown_role: field `data.role`: "janitor" is not one of the configured roles (caseworker, mentor, decision_officer)
            line 15: case_closed: case "c3" is closed; only case.reopened applies to it
            open{asylum,unknown} 1
            phase{asylum,none} 1
            unassigned{asylum} 1
            registered{asylum} 3
            closed{asylum,transferred_out} 1
            closed{asylum,merged} 1
            employees{decision_officer,temporary,true} 1
        "#]],
    );
}

#[test]
fn closing_an_overdue_case_incurs_its_penalty_but_is_no_overdue_decision() {
    check(
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 deadline=2024-12-29T00:00:00Z
        case.closed case=c1 reason=withdrawn
        "#,
        expect![[r#"
            incurred_eur{asylum} 69.00
            registered{asylum} 1
            closed{asylum,withdrawn} 1
        "#]],
    );
}

/// Runs a script whose every event must apply.
fn apply_script(state: &mut State, script: &str) {
    run_script(state, script, |_, line, applied| {
        if let Some(Err(rejection)) = applied {
            panic!("line {line}: {rejection}");
        }
    });
}

#[test]
fn rolling_flows_slide_with_the_clock() {
    let mut state = State::new(CoreSettings::example());
    apply_script(
        &mut state,
        r#"
        at 2025-03-01T00:00:00Z
        employee.joined employee=e1 experienced=true
        case.registered case=c1 time=2025-02-01T00:00:00Z
        case.registered case=c2 time=2025-02-25T00:00:00Z
        case.registered case=c3
        case.decided case=c1 decided_by=e1
        case.closed case=c2 reason=withdrawn time=2025-02-20T00:00:00Z
        "#,
    );
    let flows = state.flows();
    // Windows P7D and P28D: inflow c2 (4 days ago), c3 (now) in 7 days; c1 (28 days ago) is exactly
    // on the lower edge of P28D, which is excluded.
    assert_eq!(flows.inflow, vec![vec![2, 2]]);
    assert_eq!(flows.outflow, vec![vec![1, 2]]);
    state.advance(to_nanos("2025-03-09T00:00:00Z".parse().unwrap()).unwrap());
    let flows = state.flows();
    assert_eq!(flows.inflow, vec![vec![0, 2]]);
    assert_eq!(flows.outflow, vec![vec![0, 2]]);
    state.advance(to_nanos("2025-04-01T00:00:00Z".parse().unwrap()).unwrap());
    assert_eq!(state.flows().inflow, vec![vec![0, 0]]);
}

#[test]
fn an_event_at_the_epoch_does_not_make_the_rolling_counters_grow() {
    let mut state = State::new(CoreSettings::example());
    apply_script(
        &mut state,
        r#"
        at 2025-03-01T00:00:00Z
        employee.joined employee=e1
        case.registered case=zero time=1970-01-01T00:00:00Z
        case.registered case=now
        case.decided case=zero decided_by=e1 time=1970-01-01T00:00:00Z
        case.decided case=now decided_by=e1
        quality.audit passed=true time=1900-01-01T00:00:00Z
        quality.audit passed=false
        case.registered case=ahead time=2025-03-01T00:04:00Z
        "#,
    );
    // Defaults: P7D/P28D/P28D flows (4002 buckets kept) and P91D quality (1002 kept).
    let (buckets, ahead) = state.largest_rolling_counter();
    assert!(
        buckets <= 4002 && ahead <= 1,
        "{buckets} buckets, {ahead} ahead"
    );
    // The ancient events count in no window; the one four minutes ahead only once its time comes.
    let flows = state.flows();
    assert_eq!(flows.inflow, vec![vec![1, 1]]);
    assert_eq!(flows.outflow, vec![vec![1, 1]]);
    assert_eq!(flows.quality_pass_ratio, 0.0);
    // A snapshot keeps the event ahead at its exact time.
    let mut restored =
        State::decode_snapshot(CoreSettings::example(), &state.encode_snapshot()).unwrap();
    assert_eq!(restored.flows(), flows);
    assert_eq!(restored.largest_rolling_counter(), (buckets, ahead));
    for s in [&mut state, &mut restored] {
        s.advance(to_nanos("2025-03-01T00:03:59Z".parse().unwrap()).unwrap());
        assert_eq!(s.flows().inflow, vec![vec![1, 1]]);
        s.advance(to_nanos("2025-03-01T00:04:00Z".parse().unwrap()).unwrap());
        assert_eq!(s.flows().inflow, vec![vec![2, 2]]);
    }
    // The registration itself still counts everywhere else.
    assert_eq!(state.aggregates().tracks[0].registered, 3);
}

#[test]
fn forecast_is_finite_only_while_the_backlog_shrinks() {
    let mut state = State::new(CoreSettings::example());
    let mut script =
        String::from("at 2025-03-01T00:00:00Z\nemployee.joined employee=e1 experienced=true\n");
    // 40 old cases registered long ago, 28 of them decided over the last 28 days, 14 new ones in.
    for i in 0..40 {
        script.push_str(&format!(
            "case.registered case=old{i} time=2024-06-01T00:00:00Z\n"
        ));
    }
    for i in 0..28 {
        script.push_str(&format!(
            "case.decided case=old{i} decided_by=e1 time=2025-02-{:02}T12:00:00Z\n",
            i + 1
        ));
    }
    for i in 0..14 {
        script.push_str(&format!(
            "case.registered case=new{i} time=2025-02-{:02}T12:00:00Z\n",
            2 * i + 1
        ));
    }
    apply_script(&mut state, &script);
    let flows = state.flows();
    // Open 12 + 14 = 26; net = (28 - 14) / 28 days = 0.5 a day: 52 days to clear.
    assert_eq!(state.open_cases(), 26);
    let days = flows.clearance_seconds[0] / 86_400.0;
    assert!((days - 52.0).abs() < 1e-6, "{days}");
    let target = &state.settings().targets[0];
    let projected = flows.projected_clearance[0];
    let now = super::time::seconds_f64(state.now());
    assert!((projected - (now + 52.0 * 86_400.0)).abs() < 1e-3);
    assert!(projected < super::time::seconds_f64(target.clear_by));

    // A growing backlog: more in than out over the forecast window.
    let mut growing = State::new(CoreSettings::example());
    apply_script(
        &mut growing,
        "at 2025-03-01T00:00:00Z\ncase.registered case=a\ncase.registered case=b\n",
    );
    let flows = growing.flows();
    assert_eq!(flows.clearance_seconds[0], f64::INFINITY);
    assert_eq!(flows.projected_clearance[0], f64::INFINITY);
}

#[test]
fn quality_pass_ratio_over_its_window_and_nan_without_audits() {
    let mut state = State::new(CoreSettings::example());
    assert!(state.flows().quality_pass_ratio.is_nan());
    apply_script(
        &mut state,
        r#"
        at 2025-06-01T00:00:00Z
        quality.audit passed=true time=2025-01-01T00:00:00Z
        quality.audit passed=false time=2025-05-01T00:00:00Z
        quality.audit passed=false time=2025-05-02T00:00:00Z
        quality.audit passed=true time=2025-05-03T00:00:00Z
        "#,
    );
    // The January audit is outside P91D.
    let ratio = state.flows().quality_pass_ratio;
    assert!((ratio - 1.0 / 3.0).abs() < 1e-12, "{ratio}");
    state.advance(to_nanos("2025-09-01T00:00:00Z".parse().unwrap()).unwrap());
    assert!(state.flows().quality_pass_ratio.is_nan());
}

#[test]
fn employee_rows_follow_assignments_mentoring_and_departures() {
    let mut state = State::new(CoreSettings::example());
    apply_script(
        &mut state,
        r#"
        at 2025-01-01T00:00:00Z
        employee.joined employee=m role=mentor experienced=true
        employee.joined employee=m2 role=mentor experienced=true
        employee.joined employee=n1
        employee.joined employee=n2
        employee.joined employee=n3
        mentor.assigned mentor=m mentee=n1
        mentor.assigned mentor=m mentee=n2
        mentor.assigned mentor=m mentee=n3
        mentor.assigned mentor=m2 mentee=n3
        case.registered case=c1
        case.registered case=c2
        case.assigned case=c1 employee=n1
        case.assigned case=c2 employee=n1
        case.assigned case=c2 employee=n2
        employee.left employee=m
        employee.joined employee=m role=mentor experienced=true
        "#,
    );
    let rows: Vec<String> = state
        .employee_rows()
        .map(|r| {
            format!(
                "{} role={} exp={} open={} mentees={} mentored={}",
                r.id, r.role, r.experienced, r.open_cases, r.mentees, r.has_mentor
            )
        })
        .collect();
    expect![[r#"
        [
            "m role=1 exp=true open=0 mentees=0 mentored=false",
            "m2 role=1 exp=true open=0 mentees=1 mentored=false",
            "n1 role=0 exp=false open=1 mentees=0 mentored=false",
            "n2 role=0 exp=false open=1 mentees=0 mentored=false",
            "n3 role=0 exp=false open=0 mentees=0 mentored=true",
        ]
    "#]]
    .assert_debug_eq(&rows);
}

#[test]
fn settings_reload_recomputes_gauges_and_refuses_renamed_tracks() {
    let mut state = State::new(CoreSettings::example());
    apply_script(
        &mut state,
        r#"
        at 2025-01-01T00:00:00Z
        case.registered case=c1 deadline=2025-01-05T00:00:00Z
        case.registered case=c2 deadline=2025-01-20T00:00:00Z
        case.registered case=c3 deadline=2024-12-31T00:00:00Z
        "#,
    );
    let before = state.aggregates().tracks[0].clone();
    assert_eq!(before.due_soon_by_window, vec![1, 2]);
    assert_eq!(before.penalty_exposure_cents, 2300);
    let mut settings = CoreSettings::example();
    settings.due_soon_windows = vec![super::settings::WindowSettings {
        label: "P21D".into(),
        length: jiff::SignedDuration::from_hours(24 * 21),
    }];
    settings.tracks[0].penalty.tiers[0].per_day_cents = 5000;
    state.set_settings(settings).unwrap();
    let after = &state.aggregates().tracks[0];
    assert_eq!(after.due_soon_by_window, vec![2]);
    assert_eq!(after.penalty_exposure_cents, 5000);
    assert_eq!(after.registered, 3, "counters survive a reload");
    let mut recomputed = state.clone();
    recomputed.rebuild_derived();
    assert_eq!(recomputed.aggregates(), state.aggregates());

    let mut renamed = CoreSettings::example();
    renamed.tracks[0].name = "labour".into();
    let refused = state.set_settings(renamed).unwrap_err().to_string();
    assert_eq!(
        refused,
        "tracks changed from [asylum] to [labour]; that needs a restart"
    );
    assert_eq!(state.settings().tracks[0].name, "asylum");
}

/// The script behind `testdata/snapshot-v2.bin`, a snapshot written by the format before keyed
/// dedup hashes (magic `BLGDSNP2`).
const SNAPSHOT_V2_SCRIPT: &str = r#"
    at 2025-01-01T00:00:00Z
    employee.joined employee=w1 experienced=true id=v2-join
    case.registered case=c1 location=Zwolle id=v2-reg-1
    case.registered case=c2 deadline=2025-01-10T00:00:00Z id=v2-reg-2
    case.assigned case=c1 employee=w1 id=v2-assign
    at 2025-02-05T00:00:00Z
    case.registered case=c3 id=v2-reg-3
    case.decided case=c1 decided_by=w1 id=v2-decide
    quality.audit passed=true id=v2-audit
"#;

/// `testdata/snapshot-v2.bin` was written by the code of commit 7ea3db3 from `SNAPSHOT_V2_SCRIPT`.
const SNAPSHOT_V2: &[u8] = include_bytes!("testdata/snapshot-v2.bin");

#[test]
fn a_version_2_snapshot_still_loads() {
    let mut state = State::new(CoreSettings::example());
    apply_script(&mut state, SNAPSHOT_V2_SCRIPT);
    let mut restored = State::decode_snapshot(CoreSettings::example(), SNAPSHOT_V2).unwrap();
    assert_eq!(restored.aggregates(), state.aggregates());
    // The format had no capacity figures: the decisions in the window are not known.
    let mut flows = state.flows();
    flows.capacity.decisions = vec![0; flows.capacity.decisions.len()];
    flows.capacity.decisions_by_new_staff = 0;
    assert_eq!(restored.flows(), flows);
    assert_eq!(render(&restored), render(&state));
    assert_eq!(restored.now(), state.now());
    assert_eq!(restored.remembered_event_ids(), 7);
    // Its ids, remembered under the old unkeyed hashes, are still duplicates, also after the state
    // is saved again in the current format; a new id is not.
    let mut again =
        State::decode_snapshot(CoreSettings::example(), &restored.encode_snapshot()).unwrap();
    let clock: Timestamp = "2025-02-05T00:00:00Z".parse().unwrap();
    let later = to_nanos(clock).unwrap() + secs(86_400);
    for s in [&mut state, &mut restored, &mut again] {
        for id in ["v2-join", "v2-reg-1", "v2-audit"] {
            let event = build_event("quality.audit", &[("passed", "true"), ("id", id)], clock, 1);
            assert_eq!(s.apply(&event, later), Ok(Applied::Duplicate), "{id}");
        }
        let event = build_event(
            "quality.audit",
            &[("passed", "true"), ("id", "new")],
            clock,
            1,
        );
        assert_eq!(s.apply(&event, later), Ok(Applied::New));
    }
    assert_eq!(again.aggregates(), state.aggregates());
    // Two windows (P30D) after the stored generation began (2025-02-05), the old ids expire: each
    // was remembered at least the window after its arrival, as the old rules promised.
    let expired = to_nanos("2025-04-06T00:00:00Z".parse().unwrap()).unwrap();
    for s in [&mut restored, &mut again] {
        let fresh = build_event(
            "quality.audit",
            &[("passed", "true"), ("id", "x")],
            clock,
            1,
        );
        assert_eq!(s.apply(&fresh, expired), Ok(Applied::New));
        let old = build_event(
            "quality.audit",
            &[("passed", "true"), ("id", "v2-reg-3")],
            clock,
            1,
        );
        assert_eq!(s.apply(&old, expired), Ok(Applied::New));
    }
}

mod history;
/// Announced targets and observed capacity.
mod planning;

/// A registration that would take the case ids past their bound is rejected `too_many_cases`,
/// naming `data.case`, and changes nothing; known cases go on as before (an arena bounded at 16
/// bytes stands for the 4 GiB one).
#[test]
fn registrations_past_the_case_id_bound_are_rejected_not_wrapped() {
    let mut state = State::new(CoreSettings::example());
    state.bound_case_ids(16);
    let mut outcomes = Vec::new();
    run_script(
        &mut state,
        "case.registered case=Z-0001\ncase.registered case=Z-0002\n\
         case.registered case=Z-0003\ncase.decided case=Z-0001 decided_by=e1\n",
        |_, line, applied| outcomes.push((line, applied)),
    );
    let rejected = outcomes[2].1.as_ref().unwrap().as_ref().unwrap_err();
    assert_eq!(rejected.reason.as_str(), "too_many_cases");
    assert!(
        rejected
            .message
            .starts_with("field `data.case`: \"Z-0003\""),
        "{}",
        rejected.message
    );
    assert_eq!(state.open_cases(), 2);
    assert!(matches!(outcomes[0].1, Some(Ok(Applied::New))));
    assert!(matches!(outcomes[1].1, Some(Ok(Applied::New))));
}
