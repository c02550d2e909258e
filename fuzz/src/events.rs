//! A small alphabet of events for `event_sequence`, decoded from the fuzzer's bytes with
//! `arbitrary`: a few case and employee ids, every event type, the configured and unconfigured
//! tracks, phases and roles, and times that are mostly near the clock but sometimes at the ends of
//! the representable range (years 1678 and 2262), where the core's calendar arithmetic saturates.

use arbitrary::Arbitrary;
use backlogd::core::event::{CloseReason, Contract, Event, EventKind, Extension, Outcome};
use backlogd::core::time::{EpochNanos, NANOS_PER_DAY, NANOS_PER_SECOND, from_nanos};
use jiff::{Span, Timestamp};

pub const CASES: [&str; 6] = ["c0", "c1", "c2", "c3", "c4", "c5"];
pub const EMPLOYEES: [&str; 4] = ["e0", "e1", "e2", "e3"];
/// `family` exists only in the variant settings; `labour` nowhere.
pub const TRACKS: [&str; 3] = ["asylum", "family", "labour"];
pub const PHASES: [&str; 4] = ["intake", "hearing", "decision", "janitorial"];
pub const ROLES: [&str; 4] = ["caseworker", "mentor", "decision_officer", "chef"];
pub const LOCATIONS: [&str; 4] = ["A", "B", "C", "unknown"];

const MINUTE: i64 = 60 * NANOS_PER_SECOND;

/// Where the clock starts.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Start {
    /// 2025-01-01T00:00:00Z.
    Normal,
    /// The last days an `i64` of nanoseconds can hold (2262-04-…).
    NearMax(u8),
    /// The first days an `i64` of nanoseconds can hold (1677-09-…).
    NearMin(u8),
    /// The last Sunday of March 2025 in Amsterdam, just before the clocks jump.
    DstGap,
}

impl Start {
    pub fn clock(self) -> EpochNanos {
        match self {
            Start::Normal => 1_735_689_600 * NANOS_PER_SECOND,
            Start::NearMax(days) => i64::MAX - (i64::from(days) + 1) * NANOS_PER_DAY,
            Start::NearMin(days) => i64::MIN + i64::from(days) * NANOS_PER_DAY,
            Start::DstGap => 1_743_296_400 * NANOS_PER_SECOND - 30 * MINUTE,
        }
    }
}

/// How far the clock moves.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Delta {
    Nanos(u16),
    Minutes(u8),
    Hours(u8),
    Days(u8),
    /// Hundreds of days (crosses every window, and decision periods).
    Centuries(u8),
}

impl Delta {
    pub fn nanos(self) -> i64 {
        match self {
            Delta::Nanos(n) => i64::from(n),
            Delta::Minutes(m) => i64::from(m) * MINUTE,
            Delta::Hours(h) => i64::from(h) * 60 * MINUTE,
            Delta::Days(d) => i64::from(d) * NANOS_PER_DAY,
            Delta::Centuries(c) => i64::from(c) * 100 * NANOS_PER_DAY,
        }
    }
}

/// An instant relative to the clock.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum When {
    MinutesAgo(u16),
    DaysAgo(u16),
    /// Ahead of the clock (the shipped `max_future_skew` is 5 minutes).
    MinutesAhead(u8),
    DaysAhead(u16),
    YearsAgo(u16),
    YearsAhead(u16),
    /// Absolute extremes: jiff's own minimum and maximum, and the ends of the `i64` range and one
    /// nanosecond beyond them.
    Extreme(u8),
}

impl When {
    pub fn at(self, clock: EpochNanos) -> Timestamp {
        let relative = |nanos: i128| {
            let at = i128::from(clock) + nanos;
            Timestamp::from_nanosecond(at).unwrap_or(if at < 0 {
                Timestamp::MIN
            } else {
                Timestamp::MAX
            })
        };
        let day = i128::from(NANOS_PER_DAY);
        match self {
            When::MinutesAgo(m) => relative(-i128::from(m) * i128::from(MINUTE)),
            When::DaysAgo(d) => relative(-i128::from(d) * day),
            When::MinutesAhead(m) => relative(i128::from(m) * i128::from(MINUTE)),
            When::DaysAhead(d) => relative(i128::from(d) * day),
            When::YearsAgo(y) => relative(-i128::from(y) * 365 * day),
            When::YearsAhead(y) => relative(i128::from(y) * 365 * day),
            When::Extreme(which) => match which % 6 {
                0 => Timestamp::MIN,
                1 => Timestamp::MAX,
                2 => from_nanos(i64::MIN),
                3 => from_nanos(i64::MAX),
                4 => Timestamp::from_nanosecond(i128::from(i64::MIN) - 1).unwrap_or(Timestamp::MIN),
                _ => Timestamp::from_nanosecond(i128::from(i64::MAX) + 1).unwrap_or(Timestamp::MAX),
            },
        }
    }
}

/// A positive calendar span for `case.deadline_extended` `by`.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum SpanChoice {
    Days(u16),
    Months(u8),
    Years(u16),
    Hours(u16),
    MonthsAndDays(u8, u8),
}

impl SpanChoice {
    pub fn span(self) -> Span {
        // Every value stays inside jiff's limits for that unit (years up to 19998).
        match self {
            SpanChoice::Days(d) => Span::new().days(i64::from(d) + 1),
            SpanChoice::Months(m) => Span::new().months(i64::from(m) + 1),
            SpanChoice::Years(y) => Span::new().years(i64::from(y % 19_998) + 1),
            SpanChoice::Hours(h) => Span::new().hours(i64::from(h) + 1),
            SpanChoice::MonthsAndDays(m, d) => {
                Span::new().months(i64::from(m)).days(i64::from(d) + 1)
            }
        }
    }
}

/// One event, as small numbers that pick from the alphabet.
#[derive(Debug, Clone, Arbitrary)]
pub struct RawEvent {
    pub kind: u8,
    pub id: u8,
    pub case: u8,
    pub employee: u8,
    pub other: u8,
    pub pick: u8,
    pub flag: bool,
    pub option: u8,
    pub time: When,
    pub when: When,
    pub span: SpanChoice,
}

fn pick<T: Copy>(list: &[T], n: u8) -> T {
    list[usize::from(n) % list.len()]
}

impl RawEvent {
    /// The event at clock `clock`.
    pub fn event(&self, clock: EpochNanos) -> Event {
        let case = pick(&CASES, self.case).to_owned();
        let employee = pick(&EMPLOYEES, self.employee).to_owned();
        let other = pick(&EMPLOYEES, self.other).to_owned();
        let location = || pick(&LOCATIONS, self.pick).to_owned();
        let when = self.when.at(clock);
        let maybe_when = (self.option & 1 == 1).then_some(when);
        let kind = match self.kind % 20 {
            0 | 1 => EventKind::CaseRegistered {
                case,
                track: pick(&TRACKS, self.pick).into(),
                received_at: (self.option & 2 == 2).then_some(when),
                location: self.flag.then(location),
                deadline: (self.option & 4 == 4).then_some(when),
            },
            2 => EventKind::CaseAssigned { case, employee },
            3 => EventKind::CaseUnassigned { case },
            4 => EventKind::CasePhaseChanged {
                case,
                phase: pick(&PHASES, self.pick).into(),
            },
            5 => EventKind::CaseHearingHeld { case },
            6 => EventKind::CaseHearingCancelled {
                case,
                reason: self.flag.then(|| "illness".into()),
            },
            7 => EventKind::CaseDeadlineExtended {
                case,
                extension: if self.flag {
                    Extension::By(self.span.span())
                } else {
                    Extension::To(when)
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
                outcome: pick(&Outcome::ALL, self.pick),
                decided_by: employee,
                basis: self.flag.then(|| "benefit_of_doubt".into()),
                additional_investigation: (self.option & 2 == 2).then_some(self.option & 4 == 4),
            },
            12 => EventKind::CaseClosed {
                case,
                reason: pick(&CloseReason::ALL, self.pick),
            },
            13 => EventKind::CaseReopened {
                case,
                deadline: maybe_when,
                track: (self.option & 2 == 2).then(|| pick(&TRACKS, self.pick).into()),
            },
            14 => EventKind::EmployeeJoined {
                employee,
                role: pick(&ROLES, self.pick).into(),
                experienced: self.flag,
                contract: pick(&Contract::ALL, self.option),
                location: (self.option & 4 == 4).then(location),
                since: None,
            },
            15 => EventKind::EmployeeUpdated {
                employee,
                role: (self.option & 1 == 1).then(|| pick(&ROLES, self.pick).into()),
                experienced: (self.option & 2 == 2).then_some(self.flag),
                contract: (self.option & 4 == 4).then(|| pick(&Contract::ALL, self.other)),
                location: (self.option & 8 == 8).then(location),
            },
            16 => EventKind::EmployeeLeft { employee },
            17 => EventKind::MentorAssigned {
                mentor: other,
                mentee: employee,
            },
            18 => EventKind::MentorUnassigned { mentee: employee },
            _ => EventKind::QualityAudit {
                passed: self.flag,
                case: (self.option & 1 == 1).then_some(case),
            },
        };
        Event {
            id: format!("id{}", self.id % 32),
            time: self.time.at(clock),
            kind,
        }
    }
}

/// One step of a sequence.
#[derive(Debug, Clone, Arbitrary)]
pub enum Step {
    /// `State::advance` to the clock moved forward by this much.
    Advance(Delta),
    /// `State::apply` at the current clock.
    Apply(RawEvent),
    /// `State::apply` at the clock moved forward (apply advances by itself).
    ApplyLater(Delta, RawEvent),
    /// Snapshot the second state and continue on the decoded copy.
    Snapshot,
    /// Check the invariants now.
    Check,
}

/// A whole input of `event_sequence`.
#[derive(Debug, Clone, Arbitrary)]
pub struct Sequence {
    pub start: Start,
    /// Use the variant settings (two tracks, two locations, short windows) instead of the shipped.
    pub variant: bool,
    pub steps: Vec<Step>,
}
