//! The simulator against the daemon's own rules: every generated event is parsed by `wire` and
//! applied to a `core::State` on the shipped configuration, with the state's clock following the
//! event times (so time-driven figures such as "overdue" are as of each event).

use std::collections::BTreeMap;

use crate::core::{Applied, EventType, State};
use crate::simulate::time::{DAY, parse_instant};
use crate::simulate::{Options, Scenario, SimEvent, generate};

const SHIPPED_CONFIG: &str = include_str!("../../config/backlogd.toml");

fn state() -> State {
    let config = crate::config::load_from_str(SHIPPED_CONFIG).expect("shipped config is valid");
    State::new(crate::config::core_settings(&config))
}

fn events(scenario: &str, options: &Options) -> Vec<SimEvent> {
    let scenario = Scenario::builtin(scenario).expect("built-in scenario");
    generate(&scenario, options)
        .expect("valid options")
        .collect()
}

/// What the state looked like at a checkpoint (as of the last event before it).
#[derive(Debug, Clone, Default)]
struct Snapshot {
    open: i64,
    overdue: i64,
    max_mentees: u32,
    projected_clearance: f64,
}

fn snapshot(state: &State) -> Snapshot {
    let track = &state.aggregates().tracks[0];
    Snapshot {
        open: track.open(),
        overdue: track.overdue(),
        max_mentees: state.employee_rows().map(|r| r.mentees).max().unwrap_or(0),
        projected_clearance: state.flows().projected_clearance[0],
    }
}

/// Applies every event with `now` = its own time; panics on the first rejection or duplicate.
/// Returns the state, the count per event type, and a snapshot before each checkpoint instant.
fn apply_all(
    events: &[SimEvent],
    checkpoints: &[i64],
) -> (State, BTreeMap<&'static str, u64>, Vec<Snapshot>) {
    let mut state = state();
    let mut counts = BTreeMap::new();
    let mut snapshots = Vec::new();
    let mut last_time = i64::MIN;
    for event in events {
        assert!(event.time >= last_time, "out of time order: {}", event.line);
        last_time = event.time;
        while snapshots.len() < checkpoints.len() && event.time >= checkpoints[snapshots.len()] {
            snapshots.push(snapshot(&state));
        }
        let parsed = crate::wire::parse_event(&event.line)
            .unwrap_or_else(|e| panic!("{}: {}", event.line, e.rejection));
        let now = event.time * 1_000_000_000;
        match state.apply(&parsed, now) {
            Ok(Applied::New) => {}
            Ok(Applied::Duplicate) => panic!("duplicate id: {}", event.line),
            Err(rejection) => panic!("rejected ({rejection}): {}", event.line),
        }
        *counts.entry(parsed.kind.event_type().as_str()).or_insert(0) += 1;
    }
    while snapshots.len() < checkpoints.len() {
        snapshots.push(snapshot(&state));
    }
    (state, counts, snapshots)
}

fn concat(events: &[SimEvent]) -> String {
    let mut s = String::new();
    for e in events {
        s.push_str(&e.line);
        s.push('\n');
    }
    s
}

fn small_taskforce(seed: u64) -> Options {
    let from = parse_instant("2023-09-04").unwrap();
    Options {
        seed,
        scale: 0.05,
        from: Some(from),
        to: Some(from + 150 * DAY),
        ..Options::default()
    }
}

/// Asserts `a == b` element-wise, reporting only the first difference.
fn assert_same(a: &[SimEvent], b: &[SimEvent], what: &str) {
    if let Some(i) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
        panic!("{what}: first difference at {i}:\n{:?}\n{:?}", a[i], b[i]);
    }
    assert_eq!(a.len(), b.len(), "{what}: lengths");
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let a = concat(&events("taskforce", &small_taskforce(7)));
    let b = concat(&events("taskforce", &small_taskforce(7)));
    let c = concat(&events("taskforce", &small_taskforce(8)));
    assert!(a.len() > 100_000, "a meaningful stream: {} bytes", a.len());
    assert!(a == b, "same seed, same bytes");
    assert_ne!(a, c);
    let steady = Options {
        seed: 3,
        to: Some(parse_instant("2025-03-01").unwrap()),
        ..Options::default()
    };
    assert!(concat(&events("steady", &steady)) == concat(&events("steady", &steady)));
}

#[test]
fn ids_are_sequential_and_a_shorter_run_is_a_prefix() {
    let full = events("taskforce", &small_taskforce(1));
    for (n, event) in full.iter().enumerate() {
        assert!(
            event.line.contains(&format!("\"id\":\"taskforce-1-{n}\"")),
            "{}",
            event.line
        );
    }
    let cut = full[full.len() / 2].time;
    let shorter = events(
        "taskforce",
        &Options {
            to: Some(cut),
            ..small_taskforce(1)
        },
    );
    assert!(shorter.iter().all(|e| e.time <= cut));
    assert_same(
        &shorter,
        &full[..shorter.len()],
        "a shorter run is a prefix",
    );
    let rest = events(
        "taskforce",
        &Options {
            after: Some(cut),
            ..small_taskforce(1)
        },
    );
    assert_same(
        &rest,
        &full[shorter.len()..],
        "--after continues with the same ids",
    );
}

#[test]
fn steady_applies_without_rejections_and_stays_healthy() {
    let events = events("steady", &Options::default());
    let (state, counts, _) = apply_all(&events, &[]);
    let track = &state.aggregates().tracks[0];
    assert!(counts["case.decided"] > 5_000, "{counts:?}");
    // Inflow about equals capacity: the stock neither explodes nor empties, few cases overdue.
    assert!(
        (500..2_000).contains(&track.open()),
        "open {}",
        track.open()
    );
    assert!(track.overdue() < 50, "overdue {}", track.overdue());
    let decided: u64 = track.decided_by_outcome.iter().sum();
    assert!(track.decisions_overdue * 50 < decided, "few late decisions");
    let a = state.aggregates();
    assert!(
        a.audits_passed > 4 * a.audits_failed,
        "audits pass the norm"
    );
}

#[test]
fn scale_applies_without_rejections_and_follows_cases_and_employees() {
    let options = Options {
        cases: Some(20_000),
        employees: Some(100),
        ..Options::default()
    };
    let events = events("scale", &options);
    let (state, counts, _) = apply_all(&events, &[]);
    let registered = counts["case.registered"] as f64;
    assert!(
        (18_000.0..22_000.0).contains(&registered),
        "about 20,000 cases: {registered}"
    );
    let joined = counts["employee.joined"];
    assert!(
        (95..=130).contains(&joined),
        "about 100 employees: {joined}"
    );
    assert!(state.open_cases() > 0);
}

#[test]
fn taskforce_applies_without_rejections_with_every_event_type_and_the_picture() {
    let start = parse_instant("2023-09-04").unwrap();
    let day = |d: i64| start + d * DAY;
    let options = Options {
        seed: 11,
        scale: 0.2,
        ..Options::default()
    };
    let events = events("taskforce", &options);
    let checkpoints = [day(5), day(90), day(120), day(240), day(300), day(480)];
    let (state, counts, snaps) = apply_all(&events, &checkpoints);
    for t in EventType::ALL {
        assert!(
            counts.get(t.as_str()).copied().unwrap_or(0) > 0,
            "{} never generated: {counts:?}",
            t.as_str()
        );
    }
    let end = snapshot(&state);
    let [start_, d90, d120, d240, d300, d480] = &snaps[..] else {
        unreachable!()
    };
    // Overdue cases (as of each checkpoint) rise for the first months, then fall, then a new
    // backlog forms.
    assert!(
        d120.overdue > start_.overdue + start_.overdue / 10,
        "{start_:?} {d120:?}"
    );
    assert!(d480.overdue * 2 < d120.overdue, "{d120:?} {d480:?}");
    assert!(end.overdue > 2 * d480.overdue, "{d480:?} {end:?}");
    assert!(end.open > d480.open, "{d480:?} {end:?}");
    // Mentors overloaded at first, relieved after more mentors were added.
    assert!(d90.max_mentees >= 10, "{d90:?}");
    assert!(d240.max_mentees < d90.max_mentees, "{d240:?}");
    // Clearance projected later than the stated date while the task force works.
    let scenario = Scenario::builtin("taskforce").unwrap();
    let target = (start + i64::from(scenario.target.clear_by_days) * DAY) as f64;
    assert!(d300.projected_clearance > target, "{d300:?}");
    // Quality: the norm (0.8) is missed, then audits stop after two quarters.
    let a = state.aggregates();
    let audits = a.audits_passed + a.audits_failed;
    assert!(a.audits_failed * 5 > audits, "pass ratio below 0.8");
    let last_audit = a.last_audit_time.unwrap() / 1_000_000_000;
    assert!(last_audit < day(183), "audits stop after two quarters");
    let track = &a.tracks[0];
    assert!(track.decisions_by_inexperienced > 100);
    assert!(track.decisions_benefit_of_doubt > 100);
    assert!(track.decisions_without_investigation > track.decisions_benefit_of_doubt);
    assert!(
        track.hearings_cancelled * 5 > track.hearings_held,
        "many hearings cancelled"
    );
}

#[test]
fn every_shipped_scenario_file_matches_the_embedded_copy_and_validates() {
    for (name, text) in crate::simulate::scenario::BUILTIN {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config/scenarios")
            .join(format!("{name}.toml"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), *text);
        let scenario = Scenario::from_toml(name, text).unwrap();
        assert!(!scenario.description.is_empty());
    }
}

#[test]
fn bad_scenarios_name_the_parameter() {
    let err = |text: &str| format!("{:#}", Scenario::from_toml("x", text).unwrap_err());
    assert!(err("[inflow]\nper_wek = 3\n").contains("per_wek"));
    assert!(err("[cases]\nhearing_phase = \"court\"\n").contains("cases.hearing_phase"));
    assert!(err("[[staff]]\nrole = \"boss\"\n").contains("staff[0].role"));
    assert!(err("[audits]\npass_share = 2\n").contains("audits.pass_share"));
    assert!(err("[case_events]\nextension_by = \"soon\"\n").contains("case_events.extension_by"));
}

#[test]
fn a_scenario_that_cannot_be_used_says_why_by_variant() {
    use crate::simulate::ScenarioError;
    assert!(matches!(
        Scenario::resolve("no-such-scenario"),
        Err(ScenarioError::Unknown { name, builtin }) if name == "no-such-scenario" && builtin.contains("taskforce")
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[calendar]\ndays = 0\n").unwrap();
    let Err(ScenarioError::InFile {
        path: named,
        problem,
    }) = Scenario::resolve(path.to_str().unwrap())
    else {
        panic!("a bad file is InFile");
    };
    assert_eq!(named, path);
    assert!(
        matches!(*problem, ScenarioError::Invalid { ref scenario, ref problem } if scenario == "bad" && problem.contains("calendar.days")),
        "{problem:?}"
    );
}

#[test]
fn options_reject_an_empty_span() {
    let scenario = Scenario::builtin("steady").unwrap();
    let options = Options {
        from: Some(100),
        to: Some(100),
        ..Options::default()
    };
    assert!(matches!(
        generate(&scenario, &options),
        Err(crate::simulate::OptionsError::EmptySpan { .. })
    ));
    let only_to = Options {
        to: Some(1_000 * DAY),
        ..Options::default()
    };
    assert_eq!(
        only_to.span(&scenario).unwrap(),
        (1_000 * DAY - 365 * DAY, 1_000 * DAY)
    );
}
