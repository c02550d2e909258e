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
//! Work is O(events): inflow and every small-rate event are drawn as daily counts, then applied to
//! cases picked at random from a dense list of open cases; an employee touches only the cases in
//! their hands. Memory holds the open cases, the employees, a queue of unassigned cases, and the
//! scheduled future items (resumptions, reopenings, contract ends); closed cases are forgotten.

use std::collections::{BTreeMap, VecDeque};

use crate::core::EventType;

use super::rng::Rng;
use super::scenario::{ROLES, Scenario};
use super::time::{DAY, HOUR, approx_span_seconds, rfc3339, weekday};

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

/// A month of the simulation in figures (`backlogd simulate --stats`). "Overdue" is the
/// simulator's estimate (decision period in days, extensions at average month length).
#[derive(Debug, Clone)]
pub struct StatsRow {
    pub day: u32,
    pub date: String,
    pub open: usize,
    pub overdue: usize,
    pub unassigned: usize,
    pub employees: usize,
    pub trainees: usize,
    pub mentors: usize,
    pub max_mentees: usize,
    pub pressure: f64,
    pub registered: u64,
    pub decided: u64,
    pub decided_overdue: u64,
    pub closed: u64,
    pub hearings_cancelled: u64,
    pub hearings_held: u64,
    pub audits: u64,
    pub audits_passed: u64,
}

impl StatsRow {
    pub const HEADER: &'static str = "  day date        open overdue unassigned staff trainees mentors max_mentees pressure registered decided (overdue) closed hearings_cancelled/held audits (passed)";

    pub fn line(&self) -> String {
        format!(
            "{:>5} {} {:>7} {:>7} {:>10} {:>5} {:>8} {:>7} {:>11} {:>8.2} {:>10} {:>7} {:>9} {:>6} {:>10}/{:<12} {:>6} {:>8}",
            self.day,
            self.date,
            self.open,
            self.overdue,
            self.unassigned,
            self.employees,
            self.trainees,
            self.mentors,
            self.max_mentees,
            self.pressure,
            self.registered,
            self.decided,
            self.decided_overdue,
            self.closed,
            self.hearings_cancelled,
            self.hearings_held,
            self.audits,
            self.audits_passed
        )
    }
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

    /// Appends a stats row for the days since the previous one (if any).
    pub(crate) fn record_stats(&mut self) {
        let day_end = self.day_start();
        if self.stats.last().is_some_and(|r| r.day == self.day) {
            return;
        }
        let mut overdue = 0;
        let mut unassigned = 0;
        for &slot in &self.open {
            let c = &self.cases[slot as usize];
            overdue += usize::from(!c.suspended && c.deadline < day_end);
            unassigned += usize::from(c.employee == NONE);
        }
        let period = std::mem::take(&mut self.period);
        let row = StatsRow {
            day: self.day,
            date: rfc3339(day_end)[..10].to_owned(),
            open: self.open.len(),
            overdue,
            unassigned,
            employees: self.active.len(),
            trainees: self
                .active
                .iter()
                .filter(|&&e| !self.emps[e as usize].experienced)
                .count(),
            mentors: self.by_role[Role::Mentor as usize].len(),
            max_mentees: self
                .active
                .iter()
                .map(|&e| self.emps[e as usize].mentees.len())
                .max()
                .unwrap_or(0),
            pressure: self.pressure,
            registered: period.registered,
            decided: period.decided,
            decided_overdue: period.decided_overdue,
            closed: period.closed,
            hearings_cancelled: period.hearings_cancelled,
            hearings_held: period.hearings_held,
            audits: period.audits,
            audits_passed: period.audits_passed,
        };
        self.stats.push(row);
    }

    // --- cases -------------------------------------------------------------------------------

    fn stock(&mut self, out: &mut Vec<Pending>, start: i64) {
        let n = (self.s.cases.initial_open * self.case_factor).round() as u64;
        let (lo, hi) = (
            self.s.cases.initial_age_days[0],
            self.s.cases.initial_age_days[1],
        );
        let mut received: Vec<i64> = (0..n)
            .map(|_| {
                start
                    - i64::from(self.rng.between(lo, hi)) * DAY
                    - self.rng.below(DAY as u64) as i64
            })
            .collect();
        // Oldest first, so the queue is worked first-in, first-out.
        received.sort_unstable();
        for at in received {
            let t = start + self.rng.below(7 * HOUR as u64) as i64;
            self.register(out, t, Some(at.min(t)));
        }
    }

    fn register(&mut self, out: &mut Vec<Pending>, t: i64, received: Option<i64>) {
        let number = self.next_case;
        self.next_case += 1;
        let location = self.rng.index(self.s.cases.locations.len()) as u16;
        let slot = self.open_case(number, received.unwrap_or(t), location);
        self.emit(
            out,
            t,
            Ev::Registered {
                case: number,
                received,
                location,
            },
        );
        self.enqueue(slot, false);
        self.period.registered += 1;
    }

    fn open_case(&mut self, number: u64, received: i64, location: u16) -> u32 {
        let mut case = CaseSlot {
            number,
            deadline: received + self.period_secs,
            suspended_at: 0,
            remaining: self.s.cases.phase_effort[0],
            employee: NONE,
            open_pos: self.open.len() as u32,
            queue_token: 0,
            blocked_until: 0,
            location,
            step: 0,
            phase_emitted: false,
            hearing_done: false,
            suspended: false,
            live: true,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                // Keep the token rising so queue entries of the slot's previous case stay stale.
                case.queue_token = self.cases[slot as usize].queue_token.wrapping_add(1);
                self.cases[slot as usize] = case;
                slot
            }
            None => {
                self.cases.push(case);
                (self.cases.len() - 1) as u32
            }
        };
        self.open.push(slot);
        slot
    }

    fn enqueue(&mut self, slot: u32, front: bool) {
        let case = &mut self.cases[slot as usize];
        case.queue_token = case.queue_token.wrapping_add(1);
        let entry = (slot, case.queue_token);
        if front {
            self.queue.push_front(entry);
        } else {
            self.queue.push_back(entry);
        }
    }

    fn pop_queue(&mut self) -> Option<u32> {
        while let Some((slot, token)) = self.queue.pop_front() {
            let c = &self.cases[slot as usize];
            if c.live && c.employee == NONE && c.queue_token == token {
                return Some(slot);
            }
        }
        None
    }

    /// Takes the case out of its employee's hands (no event: the caller emits what applies).
    fn detach(&mut self, slot: u32) {
        let e = self.cases[slot as usize].employee;
        if e != NONE {
            remove_item(&mut self.emps[e as usize].cases, slot);
            self.cases[slot as usize].employee = NONE;
        }
    }

    fn close_slot(&mut self, slot: u32) {
        self.detach(slot);
        let pos = self.cases[slot as usize].open_pos as usize;
        self.open.swap_remove(pos);
        if let Some(&moved) = self.open.get(pos) {
            self.cases[moved as usize].open_pos = pos as u32;
        }
        self.cases[slot as usize].live = false;
        self.free.push(slot);
    }

    fn resume(&mut self, out: &mut Vec<Pending>, start: i64, slot: u32, number: u64) {
        let c = &self.cases[slot as usize];
        if !(c.live && c.number == number && c.suspended) {
            return;
        }
        let t = start + self.rng.below(7 * HOUR as u64) as i64;
        let c = &mut self.cases[slot as usize];
        c.deadline += (t - c.suspended_at).max(0);
        c.suspended = false;
        self.emit(out, t, Ev::Resumed { case: number });
    }

    fn reopen(&mut self, out: &mut Vec<Pending>, start: i64, number: u64, location: u16) {
        let t = start + self.rng.below(7 * HOUR as u64) as i64;
        let slot = self.open_case(number, t, location);
        self.emit(out, t, Ev::Reopened { case: number });
        self.enqueue(slot, false);
        self.period.registered += 1;
    }

    fn random_open(&mut self) -> Option<u32> {
        if self.open.is_empty() {
            None
        } else {
            Some(self.open[self.rng.index(self.open.len())])
        }
    }

    // --- workforce ---------------------------------------------------------------------------

    fn capacity(&self, e: u32, d: u32) -> f64 {
        let emp = &self.emps[e as usize];
        let p = &self.s.productivity;
        if emp.experienced {
            match emp.role {
                Role::Caseworker => p.caseworker,
                Role::Mentor => p.mentor,
                Role::DecisionOfficer => p.decision_officer,
            }
        } else {
            let x = f64::from(d.saturating_sub(emp.joined_day)) / f64::from(p.ramp_days.max(1));
            lerp(p.trainee_start, p.trainee_end, x.min(1.0))
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn join(
        &mut self,
        out: &mut Vec<Pending>,
        cursor: &mut Cursor,
        d: u32,
        role: Role,
        experienced: bool,
        temporary: bool,
        group: u16,
    ) {
        let e = self.emps.len() as u32;
        let location = (e as usize % self.s.cases.locations.len()) as u16;
        self.emps.push(Emp {
            role,
            experienced,
            temporary,
            active: true,
            group,
            joined_day: d,
            active_pos: self.active.len() as u32,
            role_pos: self.by_role[role as usize].len() as u32,
            mentor: NONE,
            cases: Vec::new(),
            mentees: Vec::new(),
        });
        self.active.push(e);
        self.by_role[role as usize].push(e);
        let t = cursor.next(1);
        self.emit(
            out,
            t,
            Ev::Joined {
                employee: e,
                role,
                experienced,
                temporary,
                location,
            },
        );
        if let Some(g) = self.s.staff.get(usize::from(group))
            && temporary
            && g.contract_days > 0
        {
            let (days, jitter) = (g.contract_days, g.contract_jitter_days);
            let end = d + self
                .rng
                .between(days.saturating_sub(jitter), days + jitter)
                .max(1);
            self.schedule(end, Sched::ContractEnd(e));
        }
        if !experienced {
            let p = &self.s.productivity;
            let (after, jitter) = (p.experienced_after_days, p.experienced_after_jitter_days);
            let at = d + self
                .rng
                .between(after.saturating_sub(jitter), after + jitter)
                .max(1);
            self.schedule(at, Sched::Experienced(e));
            if self.s.mentoring.assign_mentors {
                match self.least_loaded_mentor() {
                    Some(m) => {
                        self.set_mentor(e, m);
                        let t = cursor.next(1);
                        self.emit(
                            out,
                            t,
                            Ev::MentorAssigned {
                                mentor: m,
                                mentee: e,
                            },
                        );
                    }
                    None => self.unmentored.push(e),
                }
            }
        }
    }

    /// Promotes a random experienced caseworker to `role`; false when there is none.
    fn promote(&mut self, out: &mut Vec<Pending>, cursor: &mut Cursor, role: Role) -> bool {
        let pool = Role::Caseworker as usize;
        for _ in 0..64 {
            if self.by_role[pool].is_empty() {
                return false;
            }
            let e = self.by_role[pool][self.rng.index(self.by_role[pool].len())];
            if !self.emps[e as usize].experienced {
                continue;
            }
            self.remove_from_role(e);
            let emp = &mut self.emps[e as usize];
            emp.role = role;
            emp.role_pos = self.by_role[role as usize].len() as u32;
            self.by_role[role as usize].push(e);
            let t = cursor.next(1);
            self.emit(out, t, Ev::RoleChanged { employee: e, role });
            return true;
        }
        false
    }

    fn become_experienced(&mut self, out: &mut Vec<Pending>, cursor: &mut Cursor, e: u32) {
        let emp = &self.emps[e as usize];
        if !emp.active || emp.experienced {
            return;
        }
        self.emps[e as usize].experienced = true;
        let t = cursor.next(1);
        self.emit(out, t, Ev::BecameExperienced { employee: e });
        if self.emps[e as usize].mentor != NONE {
            self.clear_mentor(e);
            let t = cursor.next(1);
            self.emit(out, t, Ev::MentorUnassigned { mentee: e });
        }
    }

    fn least_loaded_mentor(&self) -> Option<u32> {
        self.by_role[Role::Mentor as usize]
            .iter()
            .copied()
            .min_by_key(|&m| (self.emps[m as usize].mentees.len(), m))
    }

    fn clear_mentor(&mut self, mentee: u32) {
        let old = self.emps[mentee as usize].mentor;
        if old != NONE {
            remove_item(&mut self.emps[old as usize].mentees, mentee);
            self.emps[mentee as usize].mentor = NONE;
        }
    }

    fn set_mentor(&mut self, mentee: u32, mentor: u32) {
        self.clear_mentor(mentee);
        self.emps[mentee as usize].mentor = mentor;
        self.emps[mentor as usize].mentees.push(mentee);
    }

    /// Gives trainees without a mentor one, and after new mentors arrived, evens out the load.
    fn fix_mentoring(&mut self, out: &mut Vec<Pending>, cursor: &mut Cursor, mentors_added: bool) {
        if !self.s.mentoring.assign_mentors || self.by_role[Role::Mentor as usize].is_empty() {
            return;
        }
        for e in std::mem::take(&mut self.unmentored) {
            let emp = &self.emps[e as usize];
            if !emp.active || emp.experienced || emp.mentor != NONE {
                continue;
            }
            if let Some(m) = self.least_loaded_mentor() {
                self.set_mentor(e, m);
                let t = cursor.next(1);
                self.emit(
                    out,
                    t,
                    Ev::MentorAssigned {
                        mentor: m,
                        mentee: e,
                    },
                );
            }
        }
        if !(mentors_added && self.s.mentoring.rebalance) {
            return;
        }
        loop {
            let mentors = &self.by_role[Role::Mentor as usize];
            let load = |m: u32| self.emps[m as usize].mentees.len();
            let Some(most) = mentors
                .iter()
                .copied()
                .max_by_key(|&m| (load(m), std::cmp::Reverse(m)))
            else {
                return;
            };
            let Some(least) = self.least_loaded_mentor() else {
                return;
            };
            if load(most) <= load(least) + 1 {
                return;
            }
            let Some(&mentee) = self.emps[most as usize].mentees.last() else {
                return;
            };
            self.set_mentor(mentee, least);
            let t = cursor.next(1);
            self.emit(
                out,
                t,
                Ev::MentorAssigned {
                    mentor: least,
                    mentee,
                },
            );
        }
    }

    fn remove_from_role(&mut self, e: u32) {
        let emp = &self.emps[e as usize];
        let (list, pos) = (emp.role as usize, emp.role_pos as usize);
        self.by_role[list].swap_remove(pos);
        if let Some(&moved) = self.by_role[list].get(pos) {
            self.emps[moved as usize].role_pos = pos as u32;
        }
    }

    fn leave(
        &mut self,
        out: &mut Vec<Pending>,
        cursor: &mut Cursor,
        e: u32,
        d: u32,
        replace: bool,
    ) {
        let t = cursor.next(1 + self.rng.below(600) as i64);
        self.emit(out, t, Ev::Left { employee: e });
        self.remove_from_role(e);
        let pos = self.emps[e as usize].active_pos as usize;
        self.active.swap_remove(pos);
        if let Some(&moved) = self.active.get(pos) {
            self.emps[moved as usize].active_pos = pos as u32;
        }
        let emp = &mut self.emps[e as usize];
        emp.active = false;
        // The daemon unassigns their cases and ends their mentoring; mirror that.
        let cases = std::mem::take(&mut emp.cases);
        let mentees = std::mem::take(&mut emp.mentees);
        for &slot in cases.iter().rev() {
            self.cases[slot as usize].employee = NONE;
            self.enqueue(slot, true);
        }
        for m in mentees {
            self.emps[m as usize].mentor = NONE;
            self.unmentored.push(m);
        }
        self.clear_mentor(e);
        if replace && self.s.attrition.replace_leavers {
            self.schedule(d + self.s.attrition.replace_after_days.max(1), Sched::Hire);
        }
    }

    fn update_pressure(&mut self, d: u32) {
        let capacity: f64 = self.active.iter().map(|&e| self.capacity(e, d)).sum();
        let per_day = capacity * self.working_fraction;
        let backlog_days = self.open.len() as f64 / per_day.max(0.01);
        let p = &self.s.pressure;
        self.pressure = ((backlog_days - p.free_backlog_days)
            / (p.full_backlog_days - p.free_backlog_days))
            .clamp(0.0, 1.0);
    }

    // --- the working day ---------------------------------------------------------------------

    /// Slot D: queued cases, oldest first, go round-robin to employees with room in their hands.
    fn assign(&mut self, out: &mut Vec<Pending>, start: i64, d: u32) {
        let w = &self.s.workload;
        let target = lerp(
            w.cases_in_hand,
            w.cases_in_hand_under_pressure,
            self.pressure,
        )
        .round() as usize;
        let n = self.emps.len();
        if n == 0 || target == 0 {
            return;
        }
        let mut cursor = Cursor::new(start + 8 * HOUR, start + 9 * HOUR - 1);
        let offset = d as usize % n;
        loop {
            let mut any = false;
            for k in 0..n {
                let e = ((k + offset) % n) as u32;
                let emp = &self.emps[e as usize];
                if !emp.active || emp.cases.len() >= target {
                    continue;
                }
                let Some(slot) = self.pop_queue() else {
                    return;
                };
                any = true;
                self.emps[e as usize].cases.push(slot);
                let case = &mut self.cases[slot as usize];
                case.employee = e;
                let number = case.number;
                let first_phase = !case.phase_emitted;
                case.phase_emitted = true;
                let step = case.step;
                let t = cursor.next(1);
                self.emit(
                    out,
                    t,
                    Ev::Assigned {
                        case: number,
                        employee: e,
                    },
                );
                if first_phase {
                    self.emit(
                        out,
                        t,
                        Ev::Phase {
                            case: number,
                            phase: step,
                        },
                    );
                }
            }
            if !any {
                return;
            }
        }
    }

    /// Slot E: one employee's day. The day's capacity (cases per working day, ± the daily
    /// variation) is spent on their cases in order; finishing a phase's effort moves the case on.
    fn work(&mut self, out: &mut Vec<Pending>, start: i64, d: u32, e: u32) {
        let v = self.s.productivity.daily_variation;
        let mut budget = self.capacity(e, d) * (1.0 + v * (2.0 * self.rng.f64() - 1.0));
        let mut t = start + 9 * HOUR + self.rng.below(1800) as i64;
        let end = start + 17 * HOUR - 1;
        let mut i = 0;
        while budget > 0.0 && i < self.emps[e as usize].cases.len() {
            let slot = self.emps[e as usize].cases[i];
            let case = &self.cases[slot as usize];
            if case.suspended || case.blocked_until > d {
                i += 1;
                continue;
            }
            if budget < case.remaining {
                self.cases[slot as usize].remaining -= budget;
                break;
            }
            budget -= case.remaining;
            t = (t + 300 + self.rng.below(1500) as i64).min(end);
            let (number, step) = (case.number, case.step);
            if step == self.hearing_step && !case.hearing_done {
                let h = &self.s.hearings;
                let cancel = lerp(h.cancel_share, h.cancel_share_under_pressure, self.pressure);
                if self.rng.chance(cancel) {
                    let reason = self.rng.index(h.reasons.len()) as u16;
                    let (reschedule, retry) = (h.reschedule_days, h.retry_effort);
                    let case = &mut self.cases[slot as usize];
                    case.blocked_until = d + reschedule;
                    case.remaining = retry;
                    self.period.hearings_cancelled += 1;
                    self.emit(
                        out,
                        t,
                        Ev::HearingCancelled {
                            case: number,
                            reason,
                        },
                    );
                    i += 1;
                    continue;
                }
                self.cases[slot as usize].hearing_done = true;
                self.period.hearings_held += 1;
                self.emit(out, t, Ev::HearingHeld { case: number });
            }
            if step + 1 >= self.phases {
                self.decide(out, t, d, e, i, slot);
                continue;
            }
            let case = &mut self.cases[slot as usize];
            case.step = step + 1;
            case.remaining = self.s.cases.phase_effort[usize::from(step + 1)];
            self.emit(
                out,
                t,
                Ev::Phase {
                    case: number,
                    phase: step + 1,
                },
            );
        }
    }

    fn decide(&mut self, out: &mut Vec<Pending>, t: i64, d: u32, e: u32, i: usize, slot: u32) {
        let dp = &self.s.decisions;
        let p = self.pressure;
        let trainee = !self.emps[e as usize].experienced;
        let by = if trainee
            && !self.rng.chance(lerp(
                dp.trainee_decides_share,
                dp.trainee_decides_share_under_pressure,
                p,
            )) {
            self.pick_officer().unwrap_or(e)
        } else {
            e
        };
        let dp = &self.s.decisions;
        let u = self.rng.f64();
        let outcome = if u < dp.granted_share {
            0
        } else if u < dp.granted_share + dp.rejected_share {
            1
        } else {
            2
        };
        let bod_share = lerp(
            dp.benefit_of_doubt_share,
            dp.benefit_of_doubt_share_under_pressure,
            p,
        );
        let without_share = lerp(
            dp.without_investigation_share,
            dp.without_investigation_share_under_pressure,
            p,
        );
        let (reopen_share, reopen_lo, reopen_hi) = (
            dp.reopen_share,
            dp.reopen_after_days[0],
            dp.reopen_after_days[1],
        );
        let benefit_of_doubt = self.rng.chance(bod_share);
        let investigation = !benefit_of_doubt && !self.rng.chance(without_share);
        let case = &self.cases[slot as usize];
        let (number, location, overdue) = (case.number, case.location, t > case.deadline);
        self.emit(
            out,
            t,
            Ev::Decided {
                case: number,
                outcome,
                by,
                benefit_of_doubt,
                investigation,
            },
        );
        self.period.decided += 1;
        self.period.decided_overdue += u64::from(overdue);
        self.emps[e as usize].cases.remove(i);
        self.cases[slot as usize].employee = NONE;
        self.close_slot(slot);
        if self.recent.len() == RECENT_DECISIONS {
            self.recent.pop_front();
        }
        self.recent.push_back(number);
        if self.rng.chance(reopen_share) {
            let after = self.rng.between(reopen_lo, reopen_hi).max(1);
            self.schedule(d + after, Sched::Reopen(number, location));
        }
    }

    fn pick_officer(&mut self) -> Option<u32> {
        let pool = Role::DecisionOfficer as usize;
        for _ in 0..8 {
            if self.by_role[pool].is_empty() {
                return None;
            }
            let e = self.by_role[pool][self.rng.index(self.by_role[pool].len())];
            if self.emps[e as usize].experienced {
                return Some(e);
            }
        }
        None
    }

    /// Slot F: the small-rate case events, drawn as daily counts over the open cases.
    fn case_events(&mut self, out: &mut Vec<Pending>, start: i64, d: u32) {
        let mut cursor = Cursor::new(start + 17 * HOUR, start + 18 * HOUR - 1);
        let ce = self.s.case_events.clone();
        let open = self.open.len() as f64;
        let count = |rate: f64| open * rate / self.working_days_per_year;
        let (extensions, suspensions, transfers, closures) = (
            count(ce.extension_per_year),
            count(ce.suspension_per_year),
            count(ce.transfer_per_year),
            count(ce.closure_per_year),
        );
        for _ in 0..self.rng.poisson(extensions) {
            let Some(slot) = self.random_open() else {
                break;
            };
            let case = &mut self.cases[slot as usize];
            if case.suspended {
                continue;
            }
            case.deadline += self.extension_secs;
            let number = case.number;
            let t = cursor.next(1 + self.rng.below(30) as i64);
            self.emit(out, t, Ev::Extended { case: number });
        }
        for _ in 0..self.rng.poisson(suspensions) {
            let Some(slot) = self.random_open() else {
                break;
            };
            if self.cases[slot as usize].suspended {
                continue;
            }
            let t = cursor.next(1 + self.rng.below(30) as i64);
            let case = &mut self.cases[slot as usize];
            case.suspended = true;
            case.suspended_at = t;
            let number = case.number;
            self.emit(out, t, Ev::Suspended { case: number });
            let days = self
                .rng
                .between(ce.suspension_days[0], ce.suspension_days[1]);
            self.schedule(d + days.max(1), Sched::Resume(slot, number));
        }
        let locations = self.s.cases.locations.len();
        for _ in 0..self.rng.poisson(transfers) {
            if locations < 2 {
                break;
            }
            let Some(slot) = self.random_open() else {
                break;
            };
            let current = usize::from(self.cases[slot as usize].location);
            let location = ((current + 1 + self.rng.index(locations - 1)) % locations) as u16;
            let case = &mut self.cases[slot as usize];
            case.location = location;
            let (number, assigned) = (case.number, case.employee != NONE);
            let t = cursor.next(1 + self.rng.below(30) as i64);
            self.emit(
                out,
                t,
                Ev::Transferred {
                    case: number,
                    location,
                },
            );
            if assigned && self.rng.chance(ce.transfer_unassign_share) {
                self.detach(slot);
                self.enqueue(slot, true);
                self.emit(out, t, Ev::Unassigned { case: number });
            }
        }
        let r = &ce.close_reasons;
        let weights = [r.withdrawn, r.transferred_out, r.merged, r.other];
        let total: f64 = weights.iter().sum();
        for _ in 0..self.rng.poisson(closures) {
            if total <= 0.0 {
                break;
            }
            let Some(slot) = self.random_open() else {
                break;
            };
            if self.cases[slot as usize].suspended {
                continue;
            }
            let mut u = self.rng.f64() * total;
            let mut reason = 3u8;
            for (k, w) in weights.iter().enumerate() {
                if u < *w {
                    reason = k as u8;
                    break;
                }
                u -= w;
            }
            let number = self.cases[slot as usize].number;
            let t = cursor.next(1 + self.rng.below(30) as i64);
            self.emit(
                out,
                t,
                Ev::Closed {
                    case: number,
                    reason,
                },
            );
            self.close_slot(slot);
            self.period.closed += 1;
        }
    }

    fn audits(&mut self, out: &mut Vec<Pending>, start: i64, d: u32) {
        let a = &self.s.audits;
        if d < a.from_day || d >= a.until_day {
            return;
        }
        let pass = lerp(a.pass_share, a.pass_share_under_pressure, self.pressure);
        let per_day = a.per_week
            / if self.s.calendar.weekend_work {
                7.0
            } else {
                5.0
            };
        let mut cursor = Cursor::new(start + 17 * HOUR + 30 * 60, start + 18 * HOUR - 1);
        for _ in 0..self.rng.poisson(per_day) {
            let passed = self.rng.chance(pass);
            let case = if self.recent.is_empty() {
                None
            } else {
                Some(self.recent[self.rng.index(self.recent.len())])
            };
            self.period.audits += 1;
            self.period.audits_passed += u64::from(passed);
            let t = cursor.next(1 + self.rng.below(60) as i64);
            self.emit(out, t, Ev::Audit { passed, case });
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
