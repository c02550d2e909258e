//! Property tests of the state core: random event sequences over a small alphabet (a few cases,
//! employees, tracks, locations, times, including invalid events and repeated ids), applied with
//! `State::apply` between `State::advance` calls at non-decreasing times. After every step the
//! invariants below must hold; at the end, a snapshot must restore an equivalent state and
//! redelivering the accepted events must change nothing.
//!
//! `PROPTEST_CASES=N cargo test --lib core::properties` runs N sequences (default 256).

use jiff::{SignedDuration, Span, Timestamp};
use proptest::prelude::*;

use super::event::{CloseReason, Contract, Event, EventKind, Extension, Outcome};
use super::settings::{CoreSettings, TrackSettings, WindowSettings};
use super::state::{Applied, State};
use super::time::{EpochNanos, NANOS_PER_SECOND, from_nanos, to_nanos};

const CASES: [&str; 6] = ["c0", "c1", "c2", "c3", "c4", "c5"];
const EMPLOYEES: [&str; 4] = ["e0", "e1", "e2", "e3"];
/// The last of each is not configured.
const TRACKS: [&str; 3] = ["asylum", "family", "labour"];
const PHASES: [&str; 3] = ["intake", "hearing", "janitorial"];
const ROLES: [&str; 4] = ["caseworker", "mentor", "decision_officer", "chef"];
const LOCATIONS: [&str; 4] = ["A", "B", "C", "D"];
const MINUTE: i64 = 60 * NANOS_PER_SECOND;

fn settings() -> CoreSettings {
    let mut settings = CoreSettings::example();
    let mut family: TrackSettings = settings.tracks[0].clone();
    family.name = "family".into();
    family.decision_period = Span::new().days(20);
    family.penalty_grace = Span::new().days(2);
    settings.tracks.push(family);
    settings.max_locations = 3;
    settings.rolling_windows = vec![WindowSettings {
        label: "P1D".into(),
        length: SignedDuration::from_hours(24),
    }];
    settings.forecast_window = WindowSettings {
        label: "P3D".into(),
        length: SignedDuration::from_hours(72),
    };
    settings
}

/// One step of a sequence, as raw numbers (shrinks well); `event` builds the event.
#[derive(Debug, Clone)]
enum Step {
    /// Moves the clock forward by this many minutes.
    Advance(i64),
    Apply(RawEvent),
}

#[derive(Debug, Clone)]
struct RawEvent {
    kind: u8,
    id: u8,
    a: usize,
    b: usize,
    pick: usize,
    flag: bool,
    option: u8,
    /// Event time relative to the clock, in minutes (mostly in the past, sometimes ahead).
    time_offset: i64,
    /// Days relative to the clock, for deadlines and received_at.
    days: i64,
}

fn raw_event() -> impl Strategy<Value = RawEvent> {
    (
        0..20u8,
        0..24u8,
        0..6usize,
        0..4usize,
        0..8usize,
        any::<bool>(),
        0..4u8,
        prop_oneof![
            8 => -3 * 1440..=0i64,
            1 => 0..=10i64,
            1 => Just(-60 * 24 * 365 * 55),
        ],
        -40..200i64,
    )
        .prop_map(
            |(kind, id, a, b, pick, flag, option, time_offset, days)| RawEvent {
                kind,
                id,
                a,
                b,
                pick,
                flag,
                option,
                time_offset,
                days,
            },
        )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => prop_oneof![0..=30i64, 0..=3 * 1440i64].prop_map(Step::Advance),
        4 => raw_event().prop_map(Step::Apply),
    ]
}

fn sequence(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 1..max)
}

impl RawEvent {
    fn event(&self, clock: EpochNanos) -> Event {
        let case = CASES[self.a].to_owned();
        let employee = EMPLOYEES[self.b].to_owned();
        let other = EMPLOYEES[self.pick % EMPLOYEES.len()].to_owned();
        let at_days = |days: i64| from_nanos(clock + days * 1440 * MINUTE);
        let maybe = |value: Timestamp| (self.option & 1 == 1).then_some(value);
        let location = || LOCATIONS[self.pick % LOCATIONS.len()].to_owned();
        let kind = match self.kind {
            0 | 1 => EventKind::CaseRegistered {
                case,
                track: TRACKS[self.pick % TRACKS.len()].into(),
                received_at: (self.option & 2 == 2).then(|| at_days(-self.days.abs() / 4)),
                location: self.flag.then(location),
                deadline: maybe(at_days(self.days)),
            },
            2 => EventKind::CaseAssigned { case, employee },
            3 => EventKind::CaseUnassigned { case },
            4 => EventKind::CasePhaseChanged {
                case,
                phase: PHASES[self.pick % PHASES.len()].into(),
            },
            5 => EventKind::CaseHearingHeld { case },
            6 => EventKind::CaseHearingCancelled { case, reason: None },
            7 => EventKind::CaseDeadlineExtended {
                case,
                extension: if self.flag {
                    Extension::By(Span::new().days(self.days.rem_euclid(60)))
                } else {
                    Extension::To(at_days(self.days))
                },
            },
            8 => EventKind::CaseSuspended { case },
            9 => EventKind::CaseResumed { case },
            10 => EventKind::CaseTransferred {
                case,
                location: location(),
            },
            11 => EventKind::CaseDecided {
                case,
                outcome: Outcome::ALL[self.pick % Outcome::ALL.len()],
                decided_by: employee,
                basis: self.flag.then(|| "benefit_of_doubt".into()),
                additional_investigation: (self.option & 2 == 2).then_some(self.flag),
            },
            12 => EventKind::CaseClosed {
                case,
                reason: CloseReason::ALL[self.pick % CloseReason::ALL.len()],
            },
            13 => EventKind::CaseReopened {
                case,
                deadline: maybe(at_days(self.days)),
                track: (self.option & 2 == 2).then(|| TRACKS[self.pick % TRACKS.len()].into()),
            },
            14 => EventKind::EmployeeJoined {
                employee,
                role: ROLES[self.pick % ROLES.len()].into(),
                experienced: self.flag,
                contract: Contract::ALL[usize::from(self.option) % 2],
                location: self.flag.then(location),
                since: None,
            },
            15 => EventKind::EmployeeUpdated {
                employee,
                role: (self.option & 1 == 1).then(|| ROLES[self.pick % ROLES.len()].into()),
                experienced: (self.option & 2 == 2).then_some(self.flag),
                contract: None,
                location: None,
            },
            16 => EventKind::EmployeeLeft { employee },
            17 if self.flag => EventKind::MentorUnassigned { mentee: employee },
            17 => EventKind::MentorAssigned {
                mentor: other,
                mentee: employee,
            },
            19 => EventKind::TargetAnnounced {
                target: ["backlog", "other", "asylum-2027"][self.pick % 3].into(),
                track: (self.option & 2 == 2).then(|| TRACKS[self.pick % TRACKS.len()].into()),
                clear_by: at_days(self.days),
                announced_by: self.flag.then(|| "minister".into()),
                note: (self.option & 1 == 1).then(|| "mid 2026".into()),
            },
            _ => EventKind::QualityAudit {
                passed: self.flag,
                case: None,
            },
        };
        Event {
            id: format!("id{}", self.id),
            time: from_nanos(clock + self.time_offset * MINUTE),
            kind,
        }
    }
}

fn start() -> EpochNanos {
    // A valid constant.
    to_nanos(
        "2025-01-01T00:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH),
    )
    .unwrap_or(0)
}

/// Applies `steps` from `clock`; returns the clock at the end and every accepted event with the
/// arrival time it was applied at.
fn run(state: &mut State, steps: &[Step], mut clock: EpochNanos) -> (EpochNanos, Vec<Event>) {
    let mut accepted = Vec::new();
    for step in steps {
        match step {
            Step::Advance(minutes) => {
                clock += minutes * MINUTE;
                state.advance(clock);
            }
            Step::Apply(raw) => {
                let event = raw.event(clock);
                // What the state would be with only its clock moved to `clock`.
                let mut clock_only = state.clone();
                clock_only.advance(clock);
                match state.apply(&event, clock) {
                    Ok(_) => accepted.push(event),
                    // All-or-nothing: a rejected event changes nothing but the clock, which
                    // `apply` moves first (the engine has already moved it to `now`).
                    Err(rejection) => assert!(
                        state.encode_snapshot_canonical() == clock_only.encode_snapshot_canonical(),
                        "the rejected {:?} ({rejection}) changed the state",
                        event.kind.event_type()
                    ),
                }
            }
        }
        check_invariants(state);
    }
    (clock, accepted)
}

fn check_invariants(state: &State) {
    let aggregates = state.aggregates();
    for (t, track) in aggregates.tracks.iter().enumerate() {
        // Every case that entered the track and has not left it is open.
        let entered = (track.registered + track.reopened) as i64;
        let left = (track.decided_by_outcome.iter().sum::<u64>()
            + track.closed_by_reason.iter().sum::<u64>()) as i64;
        assert_eq!(track.open(), entered - left, "track {t}: open = in − out");
        for (w, &due_soon) in track.due_soon_by_window.iter().enumerate() {
            assert!(
                track.overdue() + due_soon <= track.open(),
                "track {t}, window {w}: overdue {} + due soon {due_soon} > open {}",
                track.overdue(),
                track.open()
            );
        }
        assert!(track.unassigned <= track.open() && track.suspended <= track.open());
    }
    let assigned: i64 = aggregates
        .tracks
        .iter()
        .map(|t| t.open() - t.unassigned)
        .sum();
    let per_employee: i64 = state.employee_rows().map(|r| i64::from(r.open_cases)).sum();
    assert_eq!(
        per_employee, assigned,
        "Σ open cases per employee = assigned"
    );
    let mut recomputed = state.clone();
    recomputed.rebuild_derived();
    assert_eq!(
        recomputed.aggregates(),
        aggregates,
        "incremental aggregates diverge from recomputation"
    );
    let (kept, counted) = state.capacity_headcounts();
    assert_eq!(
        kept, counted,
        "presence per capacity class diverges from the employees"
    );
    let capacity = state.flows().capacity;
    assert!(capacity.employee_weeks.iter().all(|w| *w >= 0.0));
    assert!(capacity.decisions_by_new_staff <= capacity.decisions.iter().sum());
}

/// What an observer of `state` sees: every aggregate, the flows, the rows and the drill-down.
fn observed(state: &State) -> String {
    let mut rows: Vec<String> = state.employee_rows().map(|r| format!("{r:?}")).collect();
    rows.sort();
    format!(
        "{}\n{:?}\n{:?}\n{rows:?}\n{:?}\nknown {} remembered {} now {}",
        super::tests::render(state),
        state.aggregates(),
        state.flows(),
        state.overdue_cases(None, None, 100),
        state.known_cases(),
        state.remembered_event_ids(),
        state.now(),
    )
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    /// The invariants hold after every step; a snapshot restores a state that looks the same and
    /// behaves the same under further events; redelivering accepted events changes nothing.
    #[test]
    fn invariants_snapshots_and_redelivery(steps in sequence(80), more in sequence(30)) {
        let mut state = State::new(settings());
        let (clock, accepted) = run(&mut state, &steps, start());

        let bytes = state.encode_snapshot();
        let mut restored = State::decode_snapshot(settings(), &bytes)
            .map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
        prop_assert_eq!(observed(&restored), observed(&state));
        // Byte for byte (with the remembered ids in a canonical order).
        let (again, bytes) = (restored.encode_snapshot_canonical(), state.encode_snapshot_canonical());
        if again != bytes {
            let at = again.iter().zip(&bytes).position(|(a, b)| a != b);
            prop_assert!(false, "re-encoding differs at byte {at:?} (lengths {} and {})", again.len(), bytes.len());
        }
        let reference = State::decode_snapshot(settings(), &again)
            .map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
        prop_assert_eq!(observed(&reference), observed(&state));

        // The same continuation on both gives the same answers and the same state.
        let mut original = state.clone();
        let (_, accepted_original) = run(&mut original, &more, clock);
        let (_, accepted_restored) = run(&mut restored, &more, clock);
        let ids = |events: &[Event]| events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        prop_assert_eq!(ids(&accepted_original), ids(&accepted_restored));
        prop_assert_eq!(observed(&original), observed(&restored));

        // Redelivery of every accepted event (at-least-once senders): all duplicates, no change.
        let before = observed(&state);
        for event in &accepted {
            prop_assert_eq!(state.apply(event, clock), Ok(Applied::Duplicate));
        }
        prop_assert_eq!(observed(&state), before);
    }
}
