//! Data-driven tests of announced targets (`target.announced`) and of the observed capacity,
//! with the script runner of the parent module.

use expect_test::expect;
use jiff::Timestamp;

use super::{CoreSettings, State, run_script};
use crate::time::to_nanos;

/// The targets in effect and their histories, one line each, for the announcement tests.
fn render_targets(state: &State) -> String {
    let mut out = String::new();
    let show = |t: Option<Timestamp>| t.map_or("never".to_owned(), |t| t.to_string());
    for (figures, report) in state.flows().targets.iter().zip(state.target_reports()) {
        out.push_str(&format!(
            "target {} track={} clear_by={} configured={} projected={} announcements={} latest_behind={}\n",
            report.name,
            report.track.as_deref().unwrap_or("all"),
            report.clear_by,
            show(report.configured_clear_by),
            show(report.projected_clearance),
            figures.announcements,
            figures.latest_behind_projection,
        ));
        assert_eq!(figures.clear_by_seconds, report.clear_by.as_second() as f64);
        for a in &report.announcements {
            out.push_str(&format!(
                "  {} by={} clear_by={} projected={} behind={} note={:?}\n",
                a.time,
                a.announced_by.as_deref().unwrap_or("-"),
                a.clear_by,
                show(a.projected_clearance),
                a.behind_projection,
                a.note,
            ));
        }
    }
    out
}

const ANNOUNCEMENTS_SCRIPT: &str = r#"
    at 2025-03-01T00:00:00Z
    employee.joined employee=e1 experienced=true
    case.registered case=a time=2025-02-01T00:00:00Z
    case.registered case=b time=2025-02-01T00:00:00Z
    case.registered case=c time=2025-02-01T00:00:00Z
    case.registered case=d time=2025-02-01T00:00:00Z
    # Nothing decided yet: the projection says "never", so any date is behind it.
    target.announced target=backlog clear_by=2025-10-01T00:00:00+02:00 announced_by=minister note=autumn_2025
    at 2025-03-10T00:00:00Z
    case.decided case=a decided_by=e1
    case.decided case=b decided_by=e1
    # Open 2, net outflow 2 in 28 days (the registrations were before the window): 28 days to go.
    target.announced target=backlog clear_by=2025-06-01T00:00:00Z announced_by=agency
    target.announced target=backlog clear_by=2025-03-20T00:00:00Z
    target.announced target=asylum-2026 track=asylum clear_by=2026-01-01T00:00:00Z
    target.announced target=x track=labour clear_by=2026-01-01T00:00:00Z
    target.announced target=x clear_by=1500-01-01T00:00:00Z
"#;

#[test]
fn announced_targets_keep_their_history_with_the_projection_of_the_moment() {
    let mut state = State::new(CoreSettings::example());
    let mut rejections = String::new();
    run_script(&mut state, ANNOUNCEMENTS_SCRIPT, |_, line, applied| {
        if let Some(Err(rejection)) = applied {
            rejections.push_str(&format!("line {line}: {rejection}\n"));
        }
    });
    expect![[r#"
        line 17: unknown_track: field `data.track`: track "labour" is not configured (configured: asylum)
        line 18: invalid_field: field `data.clear_by`: 1500-01-01T00:00:00Z is out of the supported range (years 1900 to 2189)
        target backlog track=asylum clear_by=2025-03-20T00:00:00Z configured=2027-06-30T22:00:00Z projected=2025-04-07T00:00:00Z announcements=3 latest_behind=true
          2025-03-01T00:00:00Z by=minister clear_by=2025-09-30T22:00:00Z projected=never behind=true note=Some("autumn 2025")
          2025-03-10T00:00:00Z by=agency clear_by=2025-06-01T00:00:00Z projected=2025-04-07T00:00:00Z behind=false note=None
          2025-03-10T00:00:00Z by=- clear_by=2025-03-20T00:00:00Z projected=2025-04-07T00:00:00Z behind=true note=None
        target asylum-2026 track=asylum clear_by=2026-01-01T00:00:00Z configured=never projected=2025-04-07T00:00:00Z announcements=1 latest_behind=false
          2025-03-10T00:00:00Z by=- clear_by=2026-01-01T00:00:00Z projected=2025-04-07T00:00:00Z behind=false note=None
    "#]]
    .assert_eq(&(rejections + &render_targets(&state)));

    // The history survives a snapshot, and the older format loads without one.
    let bytes = state.encode_snapshot();
    let restored = State::decode_snapshot(CoreSettings::example(), &bytes).unwrap();
    assert_eq!(render_targets(&restored), render_targets(&state));
    assert_eq!(restored.flows().targets, state.flows().targets);
    let mut renamed = CoreSettings::example();
    renamed.targets.clear();
    let restored = State::decode_snapshot(renamed, &bytes).unwrap();
    assert_eq!(
        restored.targets_in_effect().len(),
        2,
        "announced targets stay without config"
    );
}

#[test]
fn too_many_targets_are_refused_but_known_ones_can_be_announced_again() {
    let mut state = State::new(CoreSettings::example());
    let mut script = String::from("at 2025-03-01T00:00:00Z\n");
    for i in 0..crate::event::MAX_TARGETS {
        script.push_str(&format!(
            "target.announced target=t{i} clear_by=2026-01-01T00:00:00Z\n"
        ));
    }
    script.push_str("target.announced target=t0 clear_by=2026-02-01T00:00:00Z\n");
    script.push_str("target.announced target=backlog clear_by=2026-02-01T00:00:00Z\n");
    let mut rejections = Vec::new();
    run_script(&mut state, &script, |_, line, applied| {
        if let Some(Err(rejection)) = applied {
            rejections.push(format!("line {line}: {rejection}"));
        }
    });
    // One configured target, so t63 is the 65th.
    expect![[r#"
        [
            "line 65: too_many_targets: field `data.target`: \"t63\" would be target number 65; at most 64 are kept (announce a known target instead)",
        ]
    "#]]
    .assert_debug_eq(&rejections);
    assert_eq!(state.targets_in_effect().len(), crate::event::MAX_TARGETS);
}

/// The capacity figures, one line per non-empty class, then the new-staff decisions.
fn render_capacity(state: &State) -> String {
    let capacity = state.flows().capacity;
    let settings = state.settings();
    let mut out = String::new();
    for (r, role) in settings.roles.iter().enumerate() {
        for experienced in [false, true] {
            for mentoring in [false, true] {
                let class = crate::aggregates::Capacity::class(r as u8, experienced, mentoring);
                let (decisions, weeks) =
                    (capacity.decisions[class], capacity.employee_weeks[class]);
                if decisions > 0 || weeks > 0.0 {
                    out.push_str(&format!(
                        "{role} experienced={experienced} mentoring={mentoring}: {decisions} decisions in {weeks:.3} employee-weeks\n"
                    ));
                }
            }
        }
    }
    out.push_str(&format!(
        "by new staff: {} of {}\n",
        capacity.decisions_by_new_staff,
        capacity.decisions.iter().sum::<u64>()
    ));
    out
}

#[test]
fn capacity_counts_decisions_per_employee_week_by_class_and_new_staff() {
    let mut state = State::new(CoreSettings::example());
    // In event-time order: two experienced caseworkers all along; old decides 8 times, the
    // mentor twice; a hire joins two weeks into the window, mentored by the mentor, decides once
    // and leaves a week later; then the mentor decides once more.
    let mut script = String::from(
        r#"
        at 2025-03-01T00:00:00Z
        employee.joined employee=old experienced=true time=2024-01-01T00:00:00Z
        employee.joined employee=mentor experienced=true time=2024-01-01T00:00:00Z
        "#,
    );
    for i in 0..12 {
        script.push_str(&format!(
            "case.registered case=c{i} time=2025-01-01T00:00:00Z\n"
        ));
    }
    for i in 0..8 {
        script.push_str(&format!(
            "case.decided case=c{i} decided_by=old time=2025-02-{:02}T12:00:00Z\n",
            i + 2
        ));
    }
    script.push_str(
        r#"
        case.decided case=c8 decided_by=mentor time=2025-02-03T12:00:00Z
        case.decided case=c9 decided_by=mentor time=2025-02-04T12:00:00Z
        employee.joined employee=new time=2025-02-15T00:00:00Z
        mentor.assigned mentor=mentor mentee=new time=2025-02-15T00:00:00Z
        case.decided case=c11 decided_by=new time=2025-02-20T12:00:00Z
        employee.left employee=new time=2025-02-22T00:00:00Z
        case.decided case=c10 decided_by=mentor time=2025-02-23T12:00:00Z
        "#,
    );
    let mut rejections = String::new();
    run_script(&mut state, &script, |state, line, applied| {
        if let Some(Err(rejection)) = applied {
            rejections.push_str(&format!("line {line}: {rejection}\n"));
        }
        let (kept, counted) = state.capacity_headcounts();
        assert_eq!(kept, counted, "after line {line}");
    });
    // The mentor mentored for one week (15 to 22 February): 1 week mentoring, 3 not.
    expect![[r#"
        caseworker experienced=false mentoring=false: 1 decisions in 1.000 employee-weeks
        caseworker experienced=true mentoring=false: 11 decisions in 6.999 employee-weeks
        caseworker experienced=true mentoring=true: 0 decisions in 1.000 employee-weeks
        by new staff: 1 of 12
    "#]]
    .assert_eq(&(rejections + &render_capacity(&state)));
    let capacity = state.flows().capacity;
    let experienced = capacity.rate(|c| c % 4 >= 2);
    assert!((experienced - 11.0 / 8.0).abs() < 0.01, "{experienced}");
    // It survives a snapshot.
    let restored =
        State::decode_snapshot(CoreSettings::example(), &state.encode_snapshot()).unwrap();
    assert_eq!(render_capacity(&restored), render_capacity(&state));
    // Four weeks later nothing was decided in the window; the two stayed throughout.
    state.advance(to_nanos("2025-03-29T00:00:00Z".parse().unwrap()).unwrap());
    expect![[r#"
        caseworker experienced=true mentoring=false: 0 decisions in 7.999 employee-weeks
        by new staff: 0 of 0
    "#]]
    .assert_eq(&render_capacity(&state));
}

/// Staff registered when backlogd is adopted are not new staff: `since` dates their start. A start
/// after the event counts from the event.
#[test]
fn employees_joined_with_an_earlier_start_are_not_new_staff() {
    let mut state = State::new(CoreSettings::example());
    let script = r#"
        at 2025-02-20T00:00:00Z
        employee.joined employee=veteran experienced=true since=2019-05-01T00:00:00Z time=2025-02-01T00:00:00Z
        employee.joined employee=fresh time=2025-02-01T00:00:00Z
        employee.joined employee=odd since=2030-01-01T00:00:00Z time=2025-02-01T00:00:00Z
        case.registered case=a time=2025-02-01T00:00:00Z
        case.registered case=b time=2025-02-01T00:00:00Z
        case.registered case=c time=2025-02-01T00:00:00Z
        case.decided case=a decided_by=veteran time=2025-02-10T12:00:00Z
        case.decided case=b decided_by=fresh time=2025-02-10T12:00:00Z
        case.decided case=c decided_by=odd time=2025-02-10T12:00:00Z
    "#;
    let mut rejections = String::new();
    run_script(&mut state, script, |_, line, applied| {
        if let Some(Err(rejection)) = applied {
            rejections.push_str(&format!("line {line}: {rejection}\n"));
        }
    });
    assert_eq!(rejections, "");
    let capacity = state.capacity();
    assert_eq!(capacity.decisions.iter().sum::<u64>(), 3);
    assert_eq!(
        capacity.decisions_by_new_staff, 2,
        "fresh and odd, not the veteran"
    );
}

/// When every experienced employee mentored throughout the window there is no rate of experienced
/// non-mentors: the forecast takes the mentors' rate for them (docs/forecast.md), not 0, so that
/// hires do not ramp toward nothing.
#[test]
fn the_experienced_rate_falls_back_to_the_mentors_when_everyone_mentored() {
    let mut state = State::new(CoreSettings::example());
    let mut script = String::from(
        r#"
        at 2025-03-01T00:00:00Z
        employee.joined employee=mentor experienced=true time=2024-01-01T00:00:00Z
        employee.joined employee=new time=2024-12-01T00:00:00Z
        mentor.assigned mentor=mentor mentee=new time=2024-12-01T00:00:00Z
        "#,
    );
    for i in 0..4 {
        script.push_str(&format!(
            "case.registered case=c{i} time=2025-01-01T00:00:00Z\n"
        ));
        script.push_str(&format!(
            "case.decided case=c{i} decided_by=mentor time=2025-02-{:02}T12:00:00Z\n",
            i + 2
        ));
    }
    run_script(&mut state, &script, |_, line, applied| {
        assert!(!matches!(applied, Some(Err(_))), "line {line}: {applied:?}");
    });
    let inputs = state.forecast_inputs();
    assert_eq!(inputs.experienced, 0.0, "{inputs:?}");
    assert_eq!(inputs.mentors, 1.0, "{inputs:?}");
    // 4 decisions in the 4 weeks of the window by the one mentor.
    assert!((inputs.rate_mentor - 1.0).abs() < 0.01, "{inputs:?}");
    assert_eq!(inputs.rate_experienced, inputs.rate_mentor, "{inputs:?}");
}

/// Issue 24, finding 3: a target keeps its newest `max_announcements_per_target` announcements;
/// the rest are counted. The count and the kept ones survive a snapshot, a format-8 snapshot loads
/// with none forgotten, and a lower limit (a reload, or a start under it) trims at once.
#[test]
fn a_target_keeps_its_newest_announcements_and_counts_the_rest() {
    let mut settings = CoreSettings::example();
    settings.max_announcements_per_target = 4;
    let mut state = State::new(settings.clone());
    let mut script = String::from("at 2025-03-01T00:00:00Z\n");
    for n in 0..10 {
        script.push_str(&format!(
            "target.announced target=backlog clear_by=2026-01-{:02}T00:00:00Z note=n{n}\n",
            n + 1
        ));
    }
    run_script(&mut state, &script, |_, _, applied| {
        assert!(matches!(applied, None | Some(Ok(_))), "{applied:?}");
    });
    let notes = |state: &State| -> Vec<String> {
        state.target_reports()[0]
            .announcements
            .iter()
            .map(|a| a.note.clone().unwrap_or_default())
            .collect()
    };
    let figures = |state: &State| {
        let f = &state.flows().targets[0];
        (f.announcements, f.announcements_kept)
    };
    assert_eq!(notes(&state), ["n6", "n7", "n8", "n9"]);
    assert_eq!(figures(&state), (10, 4));
    assert_eq!(state.target_reports()[0].announcements_total, 10);
    // The target in effect is still the latest announcement's.
    assert_eq!(
        state.target_reports()[0].clear_by,
        "2026-01-10T00:00:00Z".parse::<Timestamp>().unwrap()
    );

    let restored = State::decode_snapshot(settings.clone(), &state.encode_snapshot()).unwrap();
    assert_eq!(
        (notes(&restored), figures(&restored)),
        (notes(&state), figures(&state))
    );
    let v8 = State::decode_snapshot(settings.clone(), &state.encode_snapshot_v8()).unwrap();
    assert_eq!((notes(&v8), figures(&v8)), (notes(&state), (4, 4)));

    let mut lower = settings.clone();
    lower.max_announcements_per_target = 2;
    let started_lower = State::decode_snapshot(lower.clone(), &state.encode_snapshot()).unwrap();
    assert_eq!(
        (notes(&started_lower), figures(&started_lower)),
        (vec!["n8".into(), "n9".into()], (10, 2))
    );
    state.set_settings(lower).unwrap();
    assert_eq!(
        (notes(&state), figures(&state)),
        (vec!["n8".into(), "n9".into()], (10, 2))
    );
}
