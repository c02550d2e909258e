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
pub(crate) enum Ev {
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
}

impl Ev {
    pub(crate) fn event_type(&self) -> EventType {
        match self {
            Ev::Registered { .. } => EventType::CaseRegistered,
            Ev::Assigned { .. } => EventType::CaseAssigned,
            Ev::Unassigned { .. } => EventType::CaseUnassigned,
            Ev::Phase { .. } => EventType::CasePhaseChanged,
            Ev::HearingHeld { .. } => EventType::CaseHearingHeld,
            Ev::HearingCancelled { .. } => EventType::CaseHearingCancelled,
            Ev::Extended { .. } => EventType::CaseDeadlineExtended,
            Ev::Suspended { .. } => EventType::CaseSuspended,
            Ev::Resumed { .. } => EventType::CaseResumed,
            Ev::Transferred { .. } => EventType::CaseTransferred,
            Ev::Decided { .. } => EventType::CaseDecided,
            Ev::Closed { .. } => EventType::CaseClosed,
            Ev::Reopened { .. } => EventType::CaseReopened,
            Ev::Joined { .. } => EventType::EmployeeJoined,
            Ev::BecameExperienced { .. } | Ev::RoleChanged { .. } | Ev::MadePermanent { .. } => {
                EventType::EmployeeUpdated
            }
            Ev::Left { .. } => EventType::EmployeeLeft,
            Ev::MentorAssigned { .. } => EventType::MentorAssigned,
            Ev::MentorUnassigned { .. } => EventType::MentorUnassigned,
            Ev::Audit { .. } => EventType::QualityAudit,
        }
    }
}

/// An event of the current day: Unix seconds, order of generation (the tie-breaker), the event.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub time: i64,
    pub seq: u32,
    pub ev: Ev,
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

#[derive(Debug, Clone)]
struct Emp {
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

#[derive(Debug, Clone, Copy)]
enum Sched {
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
    t: i64,
    end: i64,
}

impl Cursor {
    fn new(start: i64, end: i64) -> Cursor {
        Cursor { t: start, end }
    }

    fn next(&mut self, step: i64) -> i64 {
        let t = self.t.min(self.end);
        self.t += step;
        t
    }
}

/// The simulation state.
pub(crate) struct Sim {
    s: Scenario,
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
    emps: Vec<Emp>,
    active: Vec<u32>,
    by_role: [Vec<u32>; 3],
    unmentored: Vec<u32>,
    sched: BTreeMap<(u32, u64), Sched>,
    sched_seq: u64,
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
        let s = scenario.clone();
        let hearing_step = s
            .cases
            .phases
            .iter()
            .position(|p| *p == s.cases.hearing_phase)
            .unwrap_or(0) as u8;
        let weekend = s.calendar.weekend_work;
        let mut sim = Sim {
            case_factor,
            rng: Rng::new(seed),
            from,
            day: 0,
            hearing_step,
            phases: s.cases.phases.len() as u8,
            extension_secs: approx_span_seconds(&s.case_events.extension_by).unwrap_or(DAY),
            period_secs: i64::from(s.cases.decision_period_days) * DAY,
            working_days_per_year: if weekend { 365.0 } else { 261.0 },
            working_fraction: if weekend { 1.0 } else { 5.0 / 7.0 },
            cases: Vec::new(),
            free: Vec::new(),
            open: Vec::new(),
            queue: VecDeque::new(),
            next_case: 1,
            emps: Vec::new(),
            active: Vec::new(),
            by_role: [Vec::new(), Vec::new(), Vec::new()],
            unmentored: Vec::new(),
            sched: BTreeMap::new(),
            sched_seq: 0,
            recent: VecDeque::new(),
            pressure: 0.0,
            seq: 0,
            period: Period::default(),
            stats: Vec::new(),
            s,
        };
        for (gi, group) in sim.s.staff.clone().iter().enumerate() {
            let n = scaled_count(group.count, employee_factor);
            for k in 0..n {
                let day = group.join_day
                    + (u64::from(k) * u64::from(group.join_over_days) / u64::from(n.max(1))) as u32;
                let item = if group.promote {
                    Sched::Promote(gi as u16)
                } else {
                    Sched::Join(gi as u16)
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

    fn schedule(&mut self, day: u32, item: Sched) {
        self.sched.insert((day, self.sched_seq), item);
        self.sched_seq += 1;
    }

    fn emit(&mut self, out: &mut Vec<Pending>, time: i64, ev: Ev) {
        out.push(Pending {
            time,
            seq: self.seq,
            ev,
        });
        self.seq += 1;
    }

    /// Simulates the next day; `out` receives its events in time order.
    pub(crate) fn run_day(&mut self, out: &mut Vec<Pending>) {
        out.clear();
        self.seq = 0;
        let d = self.day;
        let start = self.day_start();
        let working = self.s.calendar.weekend_work || weekday(start.div_euclid(DAY)) < 5;
        let mut due = Vec::new();
        while let Some(entry) = self.sched.first_entry() {
            if entry.key().0 > d {
                break;
            }
            due.push(entry.remove());
        }

        // Slot B: applications, reopenings, resumptions.
        if d == 0 {
            self.stock(out, start);
        }
        let arrivals = self
            .rng
            .poisson(self.s.inflow_per_week(d) / 7.0 * self.case_factor);
        for _ in 0..arrivals {
            let t = start + self.rng.below(7 * HOUR as u64) as i64;
            self.register(out, t, None);
        }
        for item in &due {
            match *item {
                Sched::Resume(slot, number) => self.resume(out, start, slot, number),
                Sched::Reopen(number, location) => self.reopen(out, start, number, location),
                _ => {}
            }
        }

        // Slot C: the workforce.
        let mut cursor = Cursor::new(start + 7 * HOUR, start + 8 * HOUR - 1);
        let mut leavers = Vec::new();
        let mut mentors_added = false;
        for item in due {
            match item {
                Sched::Join(g) => {
                    let group = &self.s.staff[usize::from(g)];
                    let role = Role::parse(&group.role);
                    let (experienced, temporary) =
                        (group.experienced, group.contract == "temporary");
                    self.join(out, &mut cursor, d, role, experienced, temporary, g);
                    mentors_added |= role == Role::Mentor;
                }
                Sched::Promote(g) => {
                    let role = Role::parse(&self.s.staff[usize::from(g)].role);
                    mentors_added |= self.promote(out, &mut cursor, role) && role == Role::Mentor;
                }
                Sched::Hire => {
                    self.join(
                        out,
                        &mut cursor,
                        d,
                        Role::Caseworker,
                        false,
                        false,
                        u16::MAX,
                    );
                }
                Sched::Experienced(e) => self.become_experienced(out, &mut cursor, e),
                Sched::ContractEnd(e) => {
                    let emp = &self.emps[e as usize];
                    if emp.active && emp.temporary {
                        let stay = self
                            .s
                            .staff
                            .get(usize::from(emp.group))
                            .map_or(0.0, |g| g.stay_share);
                        if self.rng.chance(stay) {
                            self.emps[e as usize].temporary = false;
                            let t = cursor.next(1);
                            self.emit(out, t, Ev::MadePermanent { employee: e });
                        } else {
                            leavers.push(e);
                        }
                    }
                }
                Sched::Resume(..) | Sched::Reopen(..) => {}
            }
        }
        self.fix_mentoring(out, &mut cursor, mentors_added);

        self.update_pressure(d);
        if working {
            self.assign(out, start, d);
            for e in 0..self.emps.len() as u32 {
                if self.emps[e as usize].active {
                    self.work(out, start, d, e);
                }
            }
            self.case_events(out, start, d);
            self.audits(out, start, d);
        }

        // Slot G: leavers.
        let mut cursor = Cursor::new(start + 18 * HOUR, start + DAY - 1);
        for e in leavers {
            if self.emps[e as usize].active {
                self.leave(out, &mut cursor, e, d, false);
            }
        }
        let leaving = self
            .rng
            .poisson(self.active.len() as f64 * self.s.attrition.leave_per_year / 365.0);
        for _ in 0..leaving {
            if self.active.is_empty() {
                break;
            }
            let e = self.active[self.rng.index(self.active.len())];
            self.leave(out, &mut cursor, e, d, true);
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
