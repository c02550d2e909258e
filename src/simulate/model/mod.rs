//! The discrete daily simulation behind `backlogd simulate`.
//!
//! One call of [`Sim::run_day`] simulates one day and appends that day's events, sorted by time.
//! A day is split into slots so that every event is valid when the daemon applies the stream in
//! time order (an employee joins before they are assigned a case, leaves after their last decision):
//!
//! | slot | time (from the day's start) | what |
//! |---|---|---|
//! | B | 00:00–06:59, random | the stock (day 0), new applications, reopenings, resumed cases |
//! | C | 07:00– | joins, promotions, trainees becoming experienced, contract changes, mentoring |
//! | D | 08:00– | queued cases handed to employees (working days) |
//! | E | 09:00–16:59, per employee | the work: phase changes, hearings, decisions |
//! | F | 17:00– | extensions, suspensions, transfers, closures, quality audits |
//! | G | 18:00– | employees leaving |
//!
//! The slots live in `cases.rs` (B), `staff.rs` (C and G), `work.rs` (D and E), `case_events.rs` and
//! `quality.rs` (F); `stats.rs` keeps the monthly figures.
//!
//! Work is O(events): inflow and every small-rate event are drawn as daily counts, then applied to
//! cases picked at random from a dense list of open cases; an employee touches only the cases in
//! their hands. Memory holds the open cases, the employees, a queue of unassigned cases, and the
//! scheduled future items (resumptions, reopenings, contract ends); closed cases are forgotten.

mod case_events;
mod cases;
mod quality;
mod staff;
mod stats;
mod work;

use std::collections::{BTreeMap, VecDeque};

use crate::core::EventType;
use crate::core::event::Contract;

use super::rng::Rng;
use super::scenario::{ROLES, Scenario};
use super::time::{DAY, HOUR, approx_span_seconds, weekday};

pub use stats::StatsRow;

pub(crate) const NONE: u32 = u32::MAX;
const RECENT_DECISIONS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Caseworker = 0,
    Mentor = 1,
    DecisionOfficer = 2,
}

impl Role {
    fn parse(name: &str) -> Role {
        match name {
            "mentor" => Role::Mentor,
            "decision_officer" => Role::DecisionOfficer,
            _ => Role::Caseworker,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        ROLES[self as usize]
    }
}

/// One generated event, with compact references: case numbers, employee indices, and indices into
/// the scenario's lists (locations, phases, hearing reasons).
#[derive(Debug, Clone)]
pub(crate) enum CompactEvent {
    Registered {
        case: u64,
        received: Option<i64>,
        location: u16,
    },
    Assigned {
        case: u64,
        employee: u32,
    },
    Unassigned {
        case: u64,
    },
    Phase {
        case: u64,
        phase: u8,
    },
    HearingHeld {
        case: u64,
    },
    HearingCancelled {
        case: u64,
        reason: u16,
    },
    Extended {
        case: u64,
    },
    Suspended {
        case: u64,
    },
    Resumed {
        case: u64,
    },
    Transferred {
        case: u64,
        location: u16,
    },
    Decided {
        case: u64,
        outcome: u8,
        by: u32,
        benefit_of_doubt: bool,
        investigation: bool,
    },
    Closed {
        case: u64,
        reason: u8,
    },
    Reopened {
        case: u64,
    },
    Joined {
        employee: u32,
        role: Role,
        experienced: bool,
        temporary: bool,
        location: u16,
        /// Experienced and there from day 0: on the staff before the history starts (the event
        /// says so with `since`, so that they do not count as new staff).
        existing: bool,
    },
    BecameExperienced {
        employee: u32,
    },
    RoleChanged {
        employee: u32,
        role: Role,
    },
    MadePermanent {
        employee: u32,
    },
    Left {
        employee: u32,
    },
    MentorAssigned {
        mentor: u32,
        mentee: u32,
    },
    MentorUnassigned {
        mentee: u32,
    },
    Audit {
        passed: bool,
        case: Option<u64>,
    },
    /// `target.announced` of the scenario's announcement number `index`.
    TargetAnnounced {
        index: u16,
    },
}

impl CompactEvent {
    pub(crate) fn event_type(&self) -> EventType {
        match self {
            CompactEvent::Registered { .. } => EventType::CaseRegistered,
            CompactEvent::Assigned { .. } => EventType::CaseAssigned,
            CompactEvent::Unassigned { .. } => EventType::CaseUnassigned,
            CompactEvent::Phase { .. } => EventType::CasePhaseChanged,
            CompactEvent::HearingHeld { .. } => EventType::CaseHearingHeld,
            CompactEvent::HearingCancelled { .. } => EventType::CaseHearingCancelled,
            CompactEvent::Extended { .. } => EventType::CaseDeadlineExtended,
            CompactEvent::Suspended { .. } => EventType::CaseSuspended,
            CompactEvent::Resumed { .. } => EventType::CaseResumed,
            CompactEvent::Transferred { .. } => EventType::CaseTransferred,
            CompactEvent::Decided { .. } => EventType::CaseDecided,
            CompactEvent::Closed { .. } => EventType::CaseClosed,
            CompactEvent::Reopened { .. } => EventType::CaseReopened,
            CompactEvent::Joined { .. } => EventType::EmployeeJoined,
            CompactEvent::BecameExperienced { .. }
            | CompactEvent::RoleChanged { .. }
            | CompactEvent::MadePermanent { .. } => EventType::EmployeeUpdated,
            CompactEvent::Left { .. } => EventType::EmployeeLeft,
            CompactEvent::MentorAssigned { .. } => EventType::MentorAssigned,
            CompactEvent::MentorUnassigned { .. } => EventType::MentorUnassigned,
            CompactEvent::Audit { .. } => EventType::QualityAudit,
            CompactEvent::TargetAnnounced { .. } => EventType::TargetAnnounced,
        }
    }
}

/// An event of the current day: Unix seconds, order of generation (the tie-breaker), the event.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub time: i64,
    pub seq: u32,
    pub event: CompactEvent,
}

#[derive(Debug, Default, Clone)]
struct Period {
    registered: u64,
    decided: u64,
    decided_overdue: u64,
    closed: u64,
    hearings_cancelled: u64,
    hearings_held: u64,
    audits: u64,
    audits_passed: u64,
}

#[derive(Debug, Clone)]
struct CaseSlot {
    number: u64,
    deadline: i64,
    suspended_at: i64,
    remaining: f64,
    employee: u32,
    open_pos: u32,
    queue_token: u32,
    blocked_until: u32,
    location: u16,
    step: u8,
    phase_emitted: bool,
    hearing_done: bool,
    suspended: bool,
    live: bool,
}

/// An employee, by index (employee indices are never reused; a leaver stays, inactive).
#[derive(Debug, Clone)]
struct Employee {
    role: Role,
    experienced: bool,
    temporary: bool,
    active: bool,
    group: u16,
    joined_day: u32,
    active_pos: u32,
    role_pos: u32,
    mentor: u32,
    cases: Vec<u32>,
    mentees: Vec<u32>,
}

/// Something to happen on a later day (the key of `Sim::scheduled` is the day and a sequence number).
#[derive(Debug, Clone, Copy)]
enum Scheduled {
    Join(u16),
    Promote(u16),
    Hire,
    Experienced(u32),
    ContractEnd(u32),
    Resume(u32, u64),
    Reopen(u64, u16),
}

/// A time cursor within one slot: consecutive events get increasing times, clamped to the slot's
/// end (ties keep generation order).
struct Cursor {
    /// The time the next event gets (before clamping).
    at: i64,
    end: i64,
}

impl Cursor {
    fn new(start: i64, end: i64) -> Cursor {
        Cursor { at: start, end }
    }

    fn next(&mut self, step: i64) -> i64 {
        let time = self.at.min(self.end);
        self.at += step;
        time
    }
}

/// The simulation state.
pub(crate) struct Sim {
    scenario: Scenario,
    case_factor: f64,
    rng: Rng,
    from: i64,
    day: u32,
    hearing_step: u8,
    phases: u8,
    extension_secs: i64,
    period_secs: i64,
    working_days_per_year: f64,
    working_fraction: f64,
    cases: Vec<CaseSlot>,
    free: Vec<u32>,
    open: Vec<u32>,
    queue: VecDeque<(u32, u32)>,
    next_case: u64,
    employees: Vec<Employee>,
    active: Vec<u32>,
    by_role: [Vec<u32>; 3],
    unmentored: Vec<u32>,
    scheduled: BTreeMap<(u32, u64), Scheduled>,
    scheduled_seq: u64,
    recent: VecDeque<u64>,
    pressure: f64,
    seq: u32,
    period: Period,
    stats: Vec<StatsRow>,
}

fn lerp(low: f64, high: f64, x: f64) -> f64 {
    low + (high - low) * x
}

impl Sim {
    /// `case_factor` and `employee_factor` multiply the scenario's case and employee counts.
    pub(crate) fn new(
        scenario: &Scenario,
        seed: u64,
        from: i64,
        case_factor: f64,
        employee_factor: f64,
    ) -> Sim {
        let scenario = scenario.clone();
        let hearing_step = scenario
            .cases
            .phases
            .iter()
            .position(|p| *p == scenario.cases.hearing_phase)
            .unwrap_or(0) as u8;
        let weekend = scenario.calendar.weekend_work;
        let mut sim = Sim {
            case_factor,
            rng: Rng::new(seed),
            from,
            day: 0,
            hearing_step,
            phases: scenario.cases.phases.len() as u8,
            extension_secs: approx_span_seconds(&scenario.case_events.extension_by).unwrap_or(DAY),
            period_secs: i64::from(scenario.cases.decision_period_days) * DAY,
            working_days_per_year: if weekend { 365.0 } else { 261.0 },
            working_fraction: if weekend { 1.0 } else { 5.0 / 7.0 },
            cases: Vec::new(),
            free: Vec::new(),
            open: Vec::new(),
            queue: VecDeque::new(),
            next_case: 1,
            employees: Vec::new(),
            active: Vec::new(),
            by_role: [Vec::new(), Vec::new(), Vec::new()],
            unmentored: Vec::new(),
            scheduled: BTreeMap::new(),
            scheduled_seq: 0,
            recent: VecDeque::new(),
            pressure: 0.0,
            seq: 0,
            period: Period::default(),
            stats: Vec::new(),
            scenario,
        };
        for (group_index, group) in sim.scenario.staff.clone().iter().enumerate() {
            let count = scaled_count(group.count, employee_factor);
            for nth in 0..count {
                let day = group.join_day
                    + (u64::from(nth) * u64::from(group.join_over_days) / u64::from(count.max(1)))
                        as u32;
                let item = if group.promote {
                    Scheduled::Promote(group_index as u16)
                } else {
                    Scheduled::Join(group_index as u16)
                };
                sim.schedule(day, item);
            }
        }
        sim
    }

    pub(crate) fn day_start(&self) -> i64 {
        self.from + i64::from(self.day) * DAY
    }

    pub(crate) fn stats(&self) -> &[StatsRow] {
        &self.stats
    }

    fn schedule(&mut self, day: u32, item: Scheduled) {
        self.scheduled.insert((day, self.scheduled_seq), item);
        self.scheduled_seq += 1;
    }

    fn emit(&mut self, out: &mut Vec<Pending>, time: i64, event: CompactEvent) {
        out.push(Pending {
            time,
            seq: self.seq,
            event,
        });
        self.seq += 1;
    }

    /// Simulates the next day; `out` receives its events in time order.
    pub(crate) fn run_day(&mut self, out: &mut Vec<Pending>) {
        out.clear();
        self.seq = 0;
        let day = self.day;
        let start = self.day_start();
        let working = self.scenario.calendar.weekend_work || weekday(start.div_euclid(DAY)) < 5;
        let mut due = Vec::new();
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > day {
                break;
            }
            due.push(entry.remove());
        }

        // Slot B: applications, reopenings, resumptions.
        if day == 0 {
            self.stock(out, start);
        }
        let arrivals = self
            .rng
            .poisson(self.scenario.inflow_per_week(day) / 7.0 * self.case_factor);
        for _ in 0..arrivals {
            let time = start + self.rng.below(7 * HOUR as u64) as i64;
            self.register(out, time, None);
        }
        for item in &due {
            match *item {
                Scheduled::Resume(slot, number) => self.resume(out, start, slot, number),
                Scheduled::Reopen(number, location) => self.reopen(out, start, number, location),
                _ => {}
            }
        }

        // Slot C: the workforce.
        let mut cursor = Cursor::new(start + 7 * HOUR, start + 8 * HOUR - 1);
        let mut leavers = Vec::new();
        let mut mentors_added = false;
        for item in due {
            match item {
                Scheduled::Join(group_index) => {
                    let group = &self.scenario.staff[usize::from(group_index)];
                    let role = Role::parse(&group.role);
                    let (experienced, temporary) = (
                        group.experienced,
                        group.contract == Contract::Temporary.as_str(),
                    );
                    self.join(
                        out,
                        &mut cursor,
                        day,
                        role,
                        experienced,
                        temporary,
                        group_index,
                    );
                    mentors_added |= role == Role::Mentor;
                }
                Scheduled::Promote(group_index) => {
                    let role = Role::parse(&self.scenario.staff[usize::from(group_index)].role);
                    mentors_added |= self.promote(out, &mut cursor, role) && role == Role::Mentor;
                }
                Scheduled::Hire => {
                    self.join(
                        out,
                        &mut cursor,
                        day,
                        Role::Caseworker,
                        false,
                        false,
                        u16::MAX,
                    );
                }
                Scheduled::Experienced(employee) => {
                    self.become_experienced(out, &mut cursor, employee)
                }
                Scheduled::ContractEnd(employee) => {
                    let emp = &self.employees[employee as usize];
                    if emp.active && emp.temporary {
                        let stay = self
                            .scenario
                            .staff
                            .get(usize::from(emp.group))
                            .map_or(0.0, |g| g.stay_share);
                        if self.rng.chance(stay) {
                            self.employees[employee as usize].temporary = false;
                            let time = cursor.next(1);
                            self.emit(out, time, CompactEvent::MadePermanent { employee });
                        } else {
                            leavers.push(employee);
                        }
                    }
                }
                Scheduled::Resume(..) | Scheduled::Reopen(..) => {}
            }
        }
        self.fix_mentoring(out, &mut cursor, mentors_added);

        self.update_pressure(day);
        if working {
            self.assign(out, start, day);
            for employee in 0..self.employees.len() as u32 {
                if self.employees[employee as usize].active {
                    self.work(out, start, day, employee);
                }
            }
            self.case_events(out, start, day);
            self.audits(out, start, day);
        }
        // Announcements at noon, after the morning's work is on record.
        for index in 0..self.scenario.target.announcements.len() {
            if self.scenario.target.announcements[index].day == day {
                let index = u16::try_from(index).unwrap_or(u16::MAX);
                self.emit(
                    out,
                    start + 12 * HOUR,
                    CompactEvent::TargetAnnounced { index },
                );
            }
        }

        // Slot G: leavers.
        let mut cursor = Cursor::new(start + 18 * HOUR, start + DAY - 1);
        for employee in leavers {
            if self.employees[employee as usize].active {
                self.leave(out, &mut cursor, employee, day, false);
            }
        }
        let leaving = self
            .rng
            .poisson(self.active.len() as f64 * self.scenario.attrition.leave_per_year / 365.0);
        for _ in 0..leaving {
            if self.active.is_empty() {
                break;
            }
            let employee = self.active[self.rng.index(self.active.len())];
            self.leave(out, &mut cursor, employee, day, true);
        }

        out.sort_unstable_by_key(|p| (p.time, p.seq));
        self.day += 1;
        if self.day.is_multiple_of(30) {
            self.record_stats();
        }
    }
}

/// A nominal count times a factor, at least 1 when the nominal count is (so a scaled-down scenario
/// keeps every group).
fn scaled_count(count: f64, factor: f64) -> u32 {
    if count <= 0.0 || factor <= 0.0 {
        return 0;
    }
    ((count * factor).round() as u32).max(1)
}

/// Removes the first occurrence of `item` from `list`, keeping the order of the rest (the order
/// feeds the seeded choices, so determinism depends on it).
fn remove_item(list: &mut Vec<u32>, item: u32) {
    if let Some(pos) = list.iter().position(|&x| x == item) {
        list.remove(pos);
    }
}
