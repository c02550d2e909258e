//! The state of every case and employee, and the one place where events change it.
//!
//! `State::apply(event, now)` validates an event against the state and either applies it completely or
//! rejects it without any change. `State::advance(now)` moves the clock: cases whose time-driven
//! classification (due soon, overdue, penalty day) changes are found in a timer index ordered by the
//! instant of their next change, so a tick costs O(cases that change), never a scan of all cases.
//!
//! Every open case contributes to the aggregates through exactly two functions: `attach` adds its
//! contributions (computed for the state's current `now`) and `detach` removes what `attach` added.
//! Any change to an open case is `detach`, mutate, `attach`; this keeps the aggregates equal to a
//! recomputation from scratch (a property the tests check).

mod codec;

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::aggregates::{Aggregates, Flows, TrackAggregates, clearance_seconds};
use super::event::{
    CloseReason, Contract, Event, EventKind, Extension, Outcome, RejectReason, Rejection,
};
use super::ids::{Dedup, IdArena};
use super::rolling::{RollingCounter, RollingShape};
use super::settings::CoreSettings;
use super::time::{
    EpochNanos, NANOS_PER_DAY, duration_nanos, from_nanos, to_nanos, to_nanos_saturating,
};

/// "No employee" / "no case" in the compact u32 links.
const NONE: u32 = u32::MAX;
/// "No pending timer" for a case.
const NO_TIMER: EpochNanos = EpochNanos::MIN;
/// Location id of `unknown`, the location of a case registered without one.
const UNKNOWN_LOCATION: &str = "unknown";
/// The location that absorbs values beyond `max_locations`.
const OTHER_LOCATION: &str = "other";

/// What `apply` did with an event that was not rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event changed the state.
    New,
    /// Its id was applied before; nothing changed.
    Duplicate,
}

/// One overdue open case, for the drill-down endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct OverdueCase {
    pub case: String,
    pub track: String,
    pub location: String,
    pub employee: Option<String>,
    pub deadline: Timestamp,
    pub overdue_seconds: f64,
    pub penalty_cents: i64,
}

/// One active employee, for the workforce metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmployeeRow<'a> {
    /// Stable index (join order of the first join), for deterministic ordering and caching.
    pub index: u32,
    pub id: &'a str,
    pub role: u8,
    pub experienced: bool,
    pub open_cases: u32,
    pub mentees: u32,
    pub has_mentor: bool,
}

/// The time-driven classification of an open case at the state's `now`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Class {
    /// Bit `w` set: due soon for due-soon window `w`.
    due_soon_mask: u8,
    overdue: bool,
    /// Whole overdue days counted for the penalty (capped at the schedule's end).
    penalty_days: u32,
}

#[derive(Debug, Clone)]
struct Case {
    deadline: EpochNanos,
    /// Start of the lead time: `received_at`, or the latest reopening.
    lead_start: EpochNanos,
    /// Event time of the suspension, when `suspended`.
    suspended_at: EpochNanos,
    /// Key of this case's entry in the timer index, or `NO_TIMER`.
    timer: EpochNanos,
    employee: u32,
    /// Links in the list of the open cases of `employee`.
    of_employee: Links,
    location: u16,
    track: u8,
    phase: u8,
    open: bool,
    suspended: bool,
    class: Class,
}

#[derive(Debug, Clone)]
struct Employee {
    id: Box<str>,
    active: bool,
    role: u8,
    contract: Contract,
    experienced: bool,
    location: Option<Box<str>>,
    open_cases: u32,
    first_case: u32,
    mentor: u32,
    /// Links in the list of the mentees of `mentor`.
    mentees_of_mentor: Links,
    first_mentee: u32,
    mentee_count: u32,
}

/// The whole state. See the module documentation.
#[derive(Debug, Clone)]
pub struct State {
    settings: CoreSettings,
    now: EpochNanos,
    case_ids: IdArena,
    cases: Vec<Case>,
    /// Keyed with a per-process random key, like the case ids (see `super::ids`).
    employee_ids: hashbrown::HashMap<Box<str>, u32, std::hash::RandomState>,
    employees: Vec<Employee>,
    /// (instant of next classification change, case index) for open, non-suspended cases.
    timers: BTreeSet<(EpochNanos, u32)>,
    /// Per track: (deadline, case index) of overdue cases, most overdue first.
    overdue_by_track: Vec<BTreeSet<(EpochNanos, u32)>>,
    location_ids: hashbrown::HashMap<String, u16>,
    dedup: Dedup,
    aggregates: Aggregates,
    /// Bucket shape of the inflow/outflow counters (rolling windows and the forecast window).
    flow_shape: RollingShape,
    /// Per track, by event time.
    inflow: Vec<RollingCounter>,
    outflow: Vec<RollingCounter>,
    quality_shape: RollingShape,
    audits_passed_rolling: RollingCounter,
    audits_rolling: RollingCounter,
}

impl State {
    pub fn new(settings: CoreSettings) -> State {
        let track_count = settings.tracks.len();
        let mut state = State {
            dedup: Dedup::new(duration_nanos(settings.dedup_window)),
            now: EpochNanos::MIN,
            case_ids: IdArena::default(),
            cases: Vec::new(),
            employee_ids: hashbrown::HashMap::default(),
            employees: Vec::new(),
            timers: BTreeSet::new(),
            overdue_by_track: vec![BTreeSet::new(); track_count],
            location_ids: hashbrown::HashMap::new(),
            aggregates: Aggregates::default(),
            flow_shape: flow_shape(&settings),
            inflow: vec![RollingCounter::default(); track_count],
            outflow: vec![RollingCounter::default(); track_count],
            quality_shape: RollingShape::for_windows(&[settings.quality_window.nanos()]),
            audits_passed_rolling: RollingCounter::default(),
            audits_rolling: RollingCounter::default(),
            settings,
        };
        state.aggregates.tracks = (0..track_count)
            .map(|_| TrackAggregates {
                due_soon_by_window: vec![0; state.settings.due_soon_windows.len()],
                open_by_phase: vec![0; state.settings.phases.len() + 1],
                ..TrackAggregates::default()
            })
            .collect();
        state.aggregates.employees = vec![0; state.settings.roles.len() * Contract::ALL.len() * 2];
        state
    }

    pub fn settings(&self) -> &CoreSettings {
        &self.settings
    }

    pub fn aggregates(&self) -> &Aggregates {
        &self.aggregates
    }

    /// The state's clock: the latest `now` passed to `advance` or `apply`.
    pub fn now(&self) -> EpochNanos {
        self.now
    }

    /// Number of open cases.
    pub fn open_cases(&self) -> i64 {
        self.aggregates.tracks.iter().map(|t| t.open()).sum()
    }

    /// Number of cases ever registered (open and closed); each keeps a compact record.
    pub fn known_cases(&self) -> u64 {
        self.cases.len() as u64
    }

    /// Number of event ids remembered for deduplication (all generations).
    pub fn remembered_event_ids(&self) -> u64 {
        self.dedup.len() as u64
    }

    /// (buckets, events ahead) of the largest rolling counter, for memory checks in tests.
    #[cfg(test)]
    pub(crate) fn largest_rolling_counter(&self) -> (usize, usize) {
        self.inflow
            .iter()
            .chain(&self.outflow)
            .chain([&self.audits_rolling, &self.audits_passed_rolling])
            .map(|c| (c.bucket_count(), c.ahead_count()))
            .max()
            .unwrap_or((0, 0))
    }

    /// `now − deadline` of the most overdue case of each track, 0 when none.
    pub fn max_overdue_nanos(&self) -> Vec<EpochNanos> {
        self.overdue_by_track
            .iter()
            .map(|set| {
                set.first()
                    .map_or(0, |&(deadline, _)| self.now.saturating_sub(deadline).max(0))
            })
            .collect()
    }

    /// Replaces the settings without losing state (a configuration reload). Tracks, phases and roles
    /// must keep their names and order, since cases and employees refer to them by position; windows,
    /// penalty schedules, limits and decision periods may change. Gauges are recomputed under the new
    /// settings (O(cases), once); a changed decision period applies to cases registered afterwards.
    pub fn set_settings(&mut self, settings: CoreSettings) -> Result<(), String> {
        let names = |s: &CoreSettings| -> (Vec<String>, Vec<String>, Vec<String>) {
            (
                s.tracks.iter().map(|t| t.name.clone()).collect(),
                s.phases.clone(),
                s.roles.clone(),
            )
        };
        let (old_tracks, old_phases, old_roles) = names(&self.settings);
        let (new_tracks, new_phases, new_roles) = names(&settings);
        for (what, old, new) in [
            ("tracks", old_tracks, new_tracks),
            ("phases", old_phases, new_phases),
            ("workforce.roles", old_roles, new_roles),
        ] {
            if old != new {
                return Err(format!(
                    "{what} changed from [{}] to [{}]; that needs a restart",
                    old.join(", "),
                    new.join(", ")
                ));
            }
        }
        let old_flow = self.flow_shape;
        let old_quality = self.quality_shape;
        self.settings = settings;
        self.flow_shape = flow_shape(&self.settings);
        self.quality_shape = RollingShape::for_windows(&[self.settings.quality_window.nanos()]);
        for counter in self.inflow.iter_mut().chain(self.outflow.iter_mut()) {
            *counter = counter.rebucket(old_flow, self.flow_shape, self.now);
        }
        for counter in [&mut self.audits_passed_rolling, &mut self.audits_rolling] {
            *counter = counter.rebucket(old_quality, self.quality_shape, self.now);
        }
        self.dedup
            .set_window(duration_nanos(self.settings.dedup_window));
        self.rebuild_derived();
        Ok(())
    }

    /// Recomputes every gauge, the timer index and the overdue index from the cases themselves, at
    /// the state's current `now`. Used after loading a snapshot and after a settings change; the tests
    /// use it to check that incremental maintenance equals recomputation.
    pub fn rebuild_derived(&mut self) {
        for track in &mut self.aggregates.tracks {
            track.reset_gauges();
            track
                .due_soon_by_window
                .resize(self.settings.due_soon_windows.len(), 0);
        }
        self.timers.clear();
        for set in &mut self.overdue_by_track {
            set.clear();
        }
        for employee in &mut self.employees {
            employee.open_cases = 0;
        }
        for case in &mut self.cases {
            case.class = Class::default();
            case.timer = NO_TIMER;
        }
        for index in 0..self.cases.len() as u32 {
            self.attach(index);
        }
    }

    /// Rolling inflow/outflow, the clearance forecast and the quality pass ratio at the state's `now`.
    pub fn flows(&self) -> Flows {
        let now = self.now;
        let shape = self.flow_shape;
        let windows = &self.settings.rolling_windows;
        let per_window = |counters: &[RollingCounter]| -> Vec<Vec<u64>> {
            counters
                .iter()
                .map(|c| {
                    windows
                        .iter()
                        .map(|w| c.sum(shape, now, w.nanos()))
                        .collect()
                })
                .collect()
        };
        let forecast = self.settings.forecast_window.nanos();
        let forecast_seconds = forecast as f64 / super::time::NANOS_PER_SECOND as f64;
        let net: Vec<f64> = (0..self.inflow.len())
            .map(|t| {
                let out = self.outflow[t].sum(shape, now, forecast) as f64;
                let into = self.inflow[t].sum(shape, now, forecast) as f64;
                (out - into) / forecast_seconds
            })
            .collect();
        let open: Vec<i64> = self.aggregates.tracks.iter().map(|t| t.open()).collect();
        let clearance: Vec<f64> = (0..net.len())
            .map(|t| clearance_seconds(open[t], net[t]))
            .collect();
        let now_seconds = super::time::seconds_f64(now);
        let projected_clearance = self
            .settings
            .targets
            .iter()
            .map(|target| {
                let seconds = match target.track {
                    Some(t) => clearance[usize::from(t)],
                    None => clearance_seconds(open.iter().sum(), net.iter().sum()),
                };
                now_seconds + seconds
            })
            .collect();
        let quality = self.settings.quality_window.nanos();
        let audits = self.audits_rolling.sum(self.quality_shape, now, quality);
        let passed = self
            .audits_passed_rolling
            .sum(self.quality_shape, now, quality);
        Flows {
            inflow: per_window(&self.inflow),
            outflow: per_window(&self.outflow),
            clearance_seconds: clearance,
            projected_clearance,
            quality_pass_ratio: if audits == 0 {
                f64::NAN
            } else {
                passed as f64 / audits as f64
            },
        }
    }

    /// Every active employee, in index order.
    pub fn employee_rows(&self) -> impl Iterator<Item = EmployeeRow<'_>> {
        self.employees
            .iter()
            .enumerate()
            .filter(|(_, e)| e.active)
            .map(|(index, e)| EmployeeRow {
                index: index as u32,
                id: &e.id,
                role: e.role,
                experienced: e.experienced,
                open_cases: e.open_cases,
                mentees: e.mentee_count,
                has_mentor: e.mentor != NONE,
            })
    }

    /// Moves the clock to `now` (never backwards) and reclassifies the cases whose due-soon, overdue
    /// or penalty-day status changes on the way. Returns how many cases were reclassified.
    pub fn advance(&mut self, now: EpochNanos) -> usize {
        if now <= self.now {
            return 0;
        }
        self.now = now;
        // Release buckets every window has left behind (and settle events that were ahead), so the
        // counters, and a snapshot of them, depend only on what can still count.
        for counter in self.inflow.iter_mut().chain(self.outflow.iter_mut()) {
            counter.expire(self.flow_shape, now);
        }
        for counter in [&mut self.audits_passed_rolling, &mut self.audits_rolling] {
            counter.expire(self.quality_shape, now);
        }
        let mut changed = 0;
        while let Some(&(at, index)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.cases[index as usize].timer = NO_TIMER;
            self.detach(index);
            self.attach(index);
            changed += 1;
        }
        changed
    }

    /// Applies one event that arrived at `now`. Either the whole event takes effect, or it is rejected
    /// and nothing changes. An id applied before is a duplicate, never an error.
    pub fn apply(&mut self, event: &Event, now: EpochNanos) -> Result<Applied, Rejection> {
        self.advance(now);
        let hash = self.dedup.hash(&event.id);
        if self.dedup.contains(&event.id, hash) {
            return Ok(Applied::Duplicate);
        }
        let time = to_nanos(event.time).ok_or_else(|| {
            Rejection::new(
                RejectReason::InvalidField,
                format!(
                    "field `time`: {} is out of the supported range (years 1678 to 2261)",
                    event.time
                ),
            )
        })?;
        let skew = duration_nanos(self.settings.max_future_skew);
        if time > now.saturating_add(skew) {
            return Err(Rejection::new(
                RejectReason::TimeInFuture,
                format!(
                    "field `time`: {} is more than {:#} ahead of the daemon's clock ({})",
                    event.time,
                    self.settings.max_future_skew,
                    from_nanos(now)
                ),
            ));
        }
        self.apply_kind(&event.kind, time)?;
        self.dedup.insert(hash, now);
        let last = &mut self.aggregates.last_event_time;
        *last = Some(last.map_or(time, |t| t.max(time)));
        Ok(Applied::New)
    }

    /// The most overdue open cases first, optionally of one track and/or location.
    pub fn overdue_cases(
        &self,
        track: Option<&str>,
        location: Option<&str>,
        limit: usize,
    ) -> Vec<OverdueCase> {
        let location_id = match location {
            Some(name) => match self.location_ids.get(name) {
                Some(&id) => Some(id),
                None => return Vec::new(),
            },
            None => None,
        };
        let track_ids: Vec<usize> = match track {
            Some(name) => match self.settings.track_index(name) {
                Some(id) => vec![usize::from(id)],
                None => return Vec::new(),
            },
            None => (0..self.overdue_by_track.len()).collect(),
        };
        // Merge the per-track sets, each already ordered most overdue first; each contributes at most
        // `limit` matches, so the work is O(tracks × limit) plus the entries a location filter skips.
        let mut found: Vec<(EpochNanos, u32)> = Vec::new();
        for track_id in track_ids {
            found.extend(
                self.overdue_by_track[track_id]
                    .iter()
                    .filter(|&&(_, index)| {
                        location_id.is_none_or(|l| self.cases[index as usize].location == l)
                    })
                    .take(limit),
            );
        }
        found.sort_unstable();
        found.truncate(limit);
        found
            .into_iter()
            .map(|(deadline, index)| {
                let case = &self.cases[index as usize];
                let track = &self.settings.tracks[usize::from(case.track)];
                OverdueCase {
                    case: self.case_ids.str_of(index).to_owned(),
                    track: track.name.clone(),
                    location: self.aggregates.locations[usize::from(case.location)].clone(),
                    employee: (case.employee != NONE)
                        .then(|| self.employees[case.employee as usize].id.to_string()),
                    deadline: from_nanos(deadline),
                    overdue_seconds: super::time::seconds_f64(self.now.saturating_sub(deadline)),
                    penalty_cents: track.penalty.accrued_cents(case.class.penalty_days),
                }
            })
            .collect()
    }

    fn apply_kind(&mut self, kind: &EventKind, time: EpochNanos) -> Result<(), Rejection> {
        match kind {
            EventKind::CaseRegistered {
                case,
                track,
                received_at,
                location,
                deadline,
            } => self.register(
                case,
                track,
                *received_at,
                location.as_deref(),
                *deadline,
                time,
            ),
            EventKind::CaseAssigned { case, employee } => {
                let index = self.open_case(case)?;
                let employee = self.active_employee(employee, "employee")?;
                self.assign(index, employee);
                Ok(())
            }
            EventKind::CaseUnassigned { case } => {
                let index = self.open_case(case)?;
                self.assign(index, NONE);
                Ok(())
            }
            EventKind::CasePhaseChanged { case, phase } => {
                let index = self.open_case(case)?;
                let phase_id = self.settings.phase_index(phase).ok_or_else(|| {
                    Rejection::new(
                        RejectReason::UnknownPhase,
                        format!(
                            "field `data.phase`: \"{phase}\" is not one of the configured phases ({})",
                            self.settings.phases.join(", ")
                        ),
                    )
                })?;
                self.update_open_case(index, |case| case.phase = phase_id);
                Ok(())
            }
            EventKind::CaseHearingHeld { case } => {
                let index = self.open_case(case)?;
                self.track_of(index).hearings_held += 1;
                Ok(())
            }
            EventKind::CaseHearingCancelled { case, .. } => {
                let index = self.open_case(case)?;
                self.track_of(index).hearings_cancelled += 1;
                Ok(())
            }
            EventKind::CaseDeadlineExtended { case, extension } => {
                let index = self.open_case(case)?;
                let current = self.cases[index as usize].deadline;
                let new_deadline = match extension {
                    Extension::By(span) => {
                        to_nanos_saturating(self.settings.add_calendar(from_nanos(current), *span))
                    }
                    Extension::To(at) => self.checked_nanos(*at, "data.deadline")?,
                };
                self.update_open_case(index, |case| case.deadline = new_deadline);
                self.track_of(index).deadline_extensions += 1;
                Ok(())
            }
            EventKind::CaseSuspended { case } => {
                let index = self.open_case(case)?;
                if self.cases[index as usize].suspended {
                    return Err(Rejection::new(
                        RejectReason::CaseSuspended,
                        format!("case \"{case}\" is already suspended"),
                    ));
                }
                self.update_open_case(index, |case| {
                    case.suspended = true;
                    case.suspended_at = time;
                });
                Ok(())
            }
            EventKind::CaseResumed { case } => {
                let index = self.open_case(case)?;
                if !self.cases[index as usize].suspended {
                    return Err(Rejection::new(
                        RejectReason::CaseNotSuspended,
                        format!("case \"{case}\" is not suspended"),
                    ));
                }
                self.update_open_case(index, |case| {
                    case.deadline = effective_deadline(case, time);
                    case.suspended = false;
                });
                Ok(())
            }
            EventKind::CaseTransferred { case, location } => {
                let index = self.open_case(case)?;
                self.check_text(location, "data.location")?;
                let location_id = self.location_id(location);
                self.update_open_case(index, |case| case.location = location_id);
                self.track_of(index).transfers += 1;
                Ok(())
            }
            EventKind::CaseDecided {
                case,
                outcome,
                decided_by,
                basis,
                additional_investigation,
            } => {
                let index = self.open_case(case)?;
                let decider = self.active_employee(decided_by, "decided_by")?;
                let inexperienced = !self.employees[decider as usize].experienced;
                let (overdue, penalty) = self.close(index, time);
                let outcome_index = Outcome::ALL.iter().position(|o| o == outcome).unwrap_or(2);
                let lead_start = self.cases[index as usize].lead_start;
                let aggregates = self.track_of(index);
                aggregates.decided_by_outcome[outcome_index] += 1;
                aggregates.penalty_incurred_cents += penalty;
                aggregates.decisions_overdue += u64::from(overdue);
                aggregates.decisions_by_inexperienced += u64::from(inexperienced);
                aggregates.decisions_benefit_of_doubt +=
                    u64::from(basis.as_deref() == Some("benefit_of_doubt"));
                aggregates.decisions_without_investigation +=
                    u64::from(*additional_investigation == Some(false));
                aggregates
                    .lead_time
                    .observe(time.saturating_sub(lead_start).max(0));
                Ok(())
            }
            EventKind::CaseClosed { case, reason } => {
                let index = self.open_case(case)?;
                let (_, penalty) = self.close(index, time);
                let reason_index = CloseReason::ALL
                    .iter()
                    .position(|r| r == reason)
                    .unwrap_or(3);
                let aggregates = self.track_of(index);
                aggregates.closed_by_reason[reason_index] += 1;
                aggregates.penalty_incurred_cents += penalty;
                Ok(())
            }
            EventKind::CaseReopened {
                case,
                deadline,
                track,
            } => self.reopen(case, *deadline, track.as_deref(), time),
            EventKind::EmployeeJoined {
                employee,
                role,
                experienced,
                contract,
                location,
            } => self.join(employee, role, *experienced, *contract, location.as_deref()),
            EventKind::EmployeeUpdated {
                employee,
                role,
                experienced,
                contract,
                location,
            } => {
                let index = self.active_employee(employee, "employee")?;
                let role_id = match role {
                    Some(role) => Some(self.role_id(role)?),
                    None => None,
                };
                if let Some(location) = location {
                    self.check_text(location, "data.location")?;
                }
                self.count_employee(index, -1);
                let e = &mut self.employees[index as usize];
                if let Some(role_id) = role_id {
                    e.role = role_id;
                }
                if let Some(experienced) = experienced {
                    e.experienced = *experienced;
                }
                if let Some(contract) = contract {
                    e.contract = *contract;
                }
                if let Some(location) = location {
                    e.location = Some(location.as_str().into());
                }
                self.count_employee(index, 1);
                Ok(())
            }
            EventKind::EmployeeLeft { employee } => {
                let index = self.active_employee(employee, "employee")?;
                self.leave(index);
                Ok(())
            }
            EventKind::MentorAssigned { mentor, mentee } => {
                let mentor_index = self.active_employee(mentor, "mentor")?;
                let mentee_index = self.active_employee(mentee, "mentee")?;
                if mentor_index == mentee_index {
                    return Err(Rejection::new(
                        RejectReason::SameEmployee,
                        format!(
                            "fields `data.mentor` and `data.mentee` are both \"{mentor}\": an employee cannot mentor themselves"
                        ),
                    ));
                }
                self.set_mentor(mentee_index, mentor_index);
                Ok(())
            }
            EventKind::MentorUnassigned { mentee } => {
                let mentee_index = self.active_employee(mentee, "mentee")?;
                self.set_mentor(mentee_index, NONE);
                Ok(())
            }
            EventKind::QualityAudit { passed, .. } => {
                if *passed {
                    self.aggregates.audits_passed += 1;
                    self.audits_passed_rolling
                        .add(self.quality_shape, self.now, time, 1);
                } else {
                    self.aggregates.audits_failed += 1;
                }
                self.audits_rolling
                    .add(self.quality_shape, self.now, time, 1);
                let last = &mut self.aggregates.last_audit_time;
                *last = Some(last.map_or(time, |t| t.max(time)));
                Ok(())
            }
        }
    }

    fn register(
        &mut self,
        case: &str,
        track: &str,
        received_at: Option<Timestamp>,
        location: Option<&str>,
        deadline: Option<Timestamp>,
        time: EpochNanos,
    ) -> Result<(), Rejection> {
        self.check_text(case, "data.case")?;
        if self.case_ids.get(case).is_some() {
            return Err(Rejection::new(
                RejectReason::CaseExists,
                format!("case \"{case}\" is already registered"),
            ));
        }
        let track_id = self.track_id(track, "data.track")?;
        if let Some(location) = location {
            self.check_text(location, "data.location")?;
        }
        let received = match received_at {
            Some(at) => self.checked_nanos(at, "data.received_at")?,
            None => time,
        };
        let deadline = match deadline {
            Some(at) => self.checked_nanos(at, "data.deadline")?,
            None => self.default_deadline(track_id, received),
        };
        let location_id = self.location_id(location.unwrap_or(UNKNOWN_LOCATION));
        let index = self.case_ids.intern(case);
        debug_assert_eq!(index as usize, self.cases.len());
        self.cases.push(Case {
            deadline,
            lead_start: received,
            suspended_at: 0,
            timer: NO_TIMER,
            employee: NONE,
            of_employee: Links::DETACHED,
            location: location_id,
            track: track_id,
            phase: 0,
            open: true,
            suspended: false,
            class: Class::default(),
        });
        self.attach(index);
        self.track_of(index).registered += 1;
        self.inflow[usize::from(track_id)].add(self.flow_shape, self.now, time, 1);
        Ok(())
    }

    fn reopen(
        &mut self,
        case: &str,
        deadline: Option<Timestamp>,
        track: Option<&str>,
        time: EpochNanos,
    ) -> Result<(), Rejection> {
        let index = self.known_case(case)?;
        if self.cases[index as usize].open {
            return Err(Rejection::new(
                RejectReason::CaseOpen,
                format!("case \"{case}\" is open; only a closed case can be reopened"),
            ));
        }
        let track_id = match track {
            Some(track) => self.track_id(track, "data.track")?,
            None => self.cases[index as usize].track,
        };
        let deadline = match deadline {
            Some(at) => self.checked_nanos(at, "data.deadline")?,
            None => self.default_deadline(track_id, time),
        };
        let c = &mut self.cases[index as usize];
        c.open = true;
        c.suspended = false;
        c.employee = NONE;
        c.phase = 0;
        c.track = track_id;
        c.deadline = deadline;
        c.lead_start = time;
        self.attach(index);
        self.track_of(index).reopened += 1;
        self.inflow[usize::from(track_id)].add(self.flow_shape, self.now, time, 1);
        Ok(())
    }

    /// Closes an open case at event time `time`; returns (decided after its deadline, accrued penalty
    /// in cents at `time`).
    fn close(&mut self, index: u32, time: EpochNanos) -> (bool, i64) {
        self.assign(index, NONE);
        self.detach(index);
        let case = &mut self.cases[index as usize];
        let deadline = effective_deadline(case, time);
        case.open = false;
        case.suspended = false;
        let track = usize::from(case.track);
        self.outflow[track].add(self.flow_shape, self.now, time, 1);
        let overdue = time > deadline;
        let penalty = if overdue {
            let days = self.penalty_days(track, deadline, time);
            self.settings.tracks[track].penalty.accrued_cents(days)
        } else {
            0
        };
        (overdue, penalty)
    }

    fn join(
        &mut self,
        employee: &str,
        role: &str,
        experienced: bool,
        contract: Contract,
        location: Option<&str>,
    ) -> Result<(), Rejection> {
        self.check_text(employee, "data.employee")?;
        let role_id = self.role_id(role)?;
        if let Some(location) = location {
            self.check_text(location, "data.location")?;
        }
        let existing = self.employee_ids.get(employee).copied();
        if let Some(index) = existing
            && self.employees[index as usize].active
        {
            return Err(Rejection::new(
                RejectReason::EmployeeExists,
                format!("employee \"{employee}\" is already active"),
            ));
        }
        let record = Employee::new(employee, role_id, contract, experienced, location);
        let index = match existing {
            Some(index) => {
                self.employees[index as usize] = record;
                index
            }
            None => {
                let index = self.employees.len() as u32;
                self.employees.push(record);
                self.employee_ids.insert(employee.into(), index);
                index
            }
        };
        self.count_employee(index, 1);
        Ok(())
    }

    fn leave(&mut self, index: u32) {
        while self.employees[index as usize].first_case != NONE {
            let case = self.employees[index as usize].first_case;
            self.assign(case, NONE);
        }
        while self.employees[index as usize].first_mentee != NONE {
            let mentee = self.employees[index as usize].first_mentee;
            self.set_mentor(mentee, NONE);
        }
        self.set_mentor(index, NONE);
        self.count_employee(index, -1);
        self.employees[index as usize].active = false;
    }

    /// Assigns an open case to `employee` (or to no one with `NONE`), keeping the per-employee lists.
    fn assign(&mut self, index: u32, employee: u32) {
        let current = self.cases[index as usize].employee;
        if current == employee {
            return;
        }
        self.detach(index);
        if current != NONE {
            let head = self.employees[current as usize].first_case;
            self.employees[current as usize].first_case =
                list_unlink(&mut self.cases, case_links, head, index);
        }
        self.cases[index as usize].employee = employee;
        if employee != NONE {
            let head = self.employees[employee as usize].first_case;
            self.employees[employee as usize].first_case =
                list_push(&mut self.cases, case_links, head, index);
        }
        self.attach(index);
    }

    fn set_mentor(&mut self, mentee: u32, mentor: u32) {
        let current = self.employees[mentee as usize].mentor;
        if current == mentor {
            return;
        }
        if current != NONE {
            let head = self.employees[current as usize].first_mentee;
            let head = list_unlink(&mut self.employees, mentee_links, head, mentee);
            let m = &mut self.employees[current as usize];
            m.first_mentee = head;
            m.mentee_count -= 1;
        }
        self.employees[mentee as usize].mentor = mentor;
        if mentor != NONE {
            let head = self.employees[mentor as usize].first_mentee;
            let head = list_push(&mut self.employees, mentee_links, head, mentee);
            let m = &mut self.employees[mentor as usize];
            m.first_mentee = head;
            m.mentee_count += 1;
        }
    }

    fn count_employee(&mut self, index: u32, delta: i64) {
        let e = &self.employees[index as usize];
        let slot = Aggregates::employee_slot(e.role, e.contract, e.experienced);
        self.aggregates.employees[slot] += delta;
    }

    /// Applies `change` to an open case, keeping the aggregates in step.
    fn update_open_case(&mut self, index: u32, change: impl FnOnce(&mut Case)) {
        self.detach(index);
        change(&mut self.cases[index as usize]);
        self.attach(index);
    }

    /// Adds an open case's contributions to the aggregates, classified at `self.now`, and schedules
    /// its next classification change.
    fn attach(&mut self, index: u32) {
        if !self.cases[index as usize].open {
            return;
        }
        let class = self.classify(index);
        let next = self.next_change(index, class);
        let case = &mut self.cases[index as usize];
        case.class = class;
        if let Some(at) = next {
            case.timer = at;
            self.timers.insert((at, index));
        }
        self.count(index, class, 1);
    }

    /// Removes exactly what `attach` added.
    fn detach(&mut self, index: u32) {
        let case = &mut self.cases[index as usize];
        if !case.open {
            return;
        }
        let class = std::mem::take(&mut case.class);
        if case.timer != NO_TIMER {
            self.timers.remove(&(case.timer, index));
            case.timer = NO_TIMER;
        }
        self.count(index, class, -1);
    }

    /// Adds (`delta` = 1) or removes (`delta` = -1) the contributions of an open case with `class`
    /// to every gauge and to the overdue index.
    fn count(&mut self, index: u32, class: Class, delta: i64) {
        let case = &self.cases[index as usize];
        let (track, location, phase) = (
            usize::from(case.track),
            usize::from(case.location),
            usize::from(case.phase),
        );
        let (employee, suspended, deadline) = (case.employee, case.suspended, case.deadline);
        let penalty = self.settings.tracks[track]
            .penalty
            .accrued_cents(class.penalty_days);
        let t = &mut self.aggregates.tracks[track];
        t.open_by_location[location] += delta;
        t.open_by_phase[phase] += delta;
        if suspended {
            t.suspended += delta;
        }
        if employee == NONE {
            t.unassigned += delta;
        } else {
            let open_cases = &mut self.employees[employee as usize].open_cases;
            *open_cases = open_cases.wrapping_add_signed(delta as i32);
        }
        if class.overdue {
            t.overdue_by_location[location] += delta;
            t.penalty_exposure_cents += delta * penalty;
            if delta > 0 {
                self.overdue_by_track[track].insert((deadline, index));
            } else {
                self.overdue_by_track[track].remove(&(deadline, index));
            }
        }
        for (w, count) in t.due_soon_by_window.iter_mut().enumerate() {
            if class.due_soon_mask >> w & 1 == 1 {
                *count += delta;
            }
        }
    }

    fn classify(&self, index: u32) -> Class {
        let case = &self.cases[index as usize];
        if !case.open || case.suspended {
            return Class::default();
        }
        let now = self.now;
        if now > case.deadline {
            Class {
                due_soon_mask: 0,
                overdue: true,
                penalty_days: self.penalty_days(usize::from(case.track), case.deadline, now),
            }
        } else {
            let mut mask = 0u8;
            for (w, window) in self.settings.due_soon_windows.iter().enumerate() {
                if case.deadline <= now.saturating_add(window.nanos()) {
                    mask |= 1 << w;
                }
            }
            Class {
                due_soon_mask: mask,
                overdue: false,
                penalty_days: 0,
            }
        }
    }

    /// The next instant after `self.now` at which `classify` gives a different answer, if any.
    fn next_change(&self, index: u32, class: Class) -> Option<EpochNanos> {
        // The instants below saturate at `i64::MAX`; at the end of time there is no later one, and
        // a timer at or before `now` would be rescheduled by `advance` forever.
        self.next_change_saturating(index, class)
            .filter(|&at| at > self.now)
    }

    fn next_change_saturating(&self, index: u32, class: Class) -> Option<EpochNanos> {
        let case = &self.cases[index as usize];
        if !case.open || case.suspended {
            return None;
        }
        if class.overdue {
            let track = &self.settings.tracks[usize::from(case.track)];
            if class.penalty_days >= track.penalty.cap_days() {
                return None;
            }
            let start = self.penalty_start(usize::from(case.track), case.deadline);
            let next_day = i64::from(class.penalty_days) + 1;
            Some(start.saturating_add(next_day.saturating_mul(NANOS_PER_DAY)))
        } else {
            let becomes_overdue = case.deadline.saturating_add(1);
            let enters_window = self
                .settings
                .due_soon_windows
                .iter()
                .enumerate()
                .filter(|(w, _)| class.due_soon_mask >> w & 1 == 0)
                .map(|(_, window)| case.deadline.saturating_sub(window.nanos()));
            enters_window.chain([becomes_overdue]).min()
        }
    }

    /// Start of penalty accrual: deadline + the track's grace, in calendar arithmetic.
    fn penalty_start(&self, track: usize, deadline: EpochNanos) -> EpochNanos {
        let grace = self.settings.tracks[track].penalty_grace;
        if grace.is_zero() {
            deadline
        } else {
            to_nanos_saturating(self.settings.add_calendar(from_nanos(deadline), grace))
        }
    }

    /// Whole 24-hour periods elapsed since deadline + grace at `at`, capped at the schedule's end.
    fn penalty_days(&self, track: usize, deadline: EpochNanos, at: EpochNanos) -> u32 {
        let start = self.penalty_start(track, deadline);
        let cap = self.settings.tracks[track].penalty.cap_days();
        if at < start {
            return 0;
        }
        let days = at.saturating_sub(start) / NANOS_PER_DAY;
        u32::try_from(days).unwrap_or(u32::MAX).min(cap)
    }

    fn default_deadline(&self, track: u8, from: EpochNanos) -> EpochNanos {
        let period = self.settings.tracks[usize::from(track)].decision_period;
        to_nanos_saturating(self.settings.add_calendar(from_nanos(from), period))
    }

    fn track_of(&mut self, index: u32) -> &mut TrackAggregates {
        let track = usize::from(self.cases[index as usize].track);
        &mut self.aggregates.tracks[track]
    }

    fn location_id(&mut self, name: &str) -> u16 {
        if let Some(&id) = self.location_ids.get(name) {
            return id;
        }
        let named = self
            .location_ids
            .keys()
            .filter(|k| k.as_str() != OTHER_LOCATION)
            .count();
        let name = if named >= self.settings.max_locations as usize {
            OTHER_LOCATION
        } else {
            name
        };
        if let Some(&id) = self.location_ids.get(name) {
            return id;
        }
        self.add_location(name)
    }

    /// Registers a new location name at the next id, with zero gauges in every track.
    fn add_location(&mut self, name: &str) -> u16 {
        let id = self.aggregates.locations.len() as u16;
        self.aggregates.locations.push(name.to_owned());
        self.location_ids.insert(name.to_owned(), id);
        for t in &mut self.aggregates.tracks {
            t.open_by_location.push(0);
            t.overdue_by_location.push(0);
        }
        id
    }

    fn known_case(&self, case: &str) -> Result<u32, Rejection> {
        self.case_ids.get(case).ok_or_else(|| {
            Rejection::new(
                RejectReason::UnknownCase,
                format!("case \"{case}\" was never registered"),
            )
        })
    }

    fn open_case(&self, case: &str) -> Result<u32, Rejection> {
        let index = self.known_case(case)?;
        if !self.cases[index as usize].open {
            return Err(Rejection::new(
                RejectReason::CaseClosed,
                format!("case \"{case}\" is closed; only case.reopened applies to it"),
            ));
        }
        Ok(index)
    }

    fn active_employee(&self, employee: &str, field: &str) -> Result<u32, Rejection> {
        match self.employee_ids.get(employee) {
            Some(&index) if self.employees[index as usize].active => Ok(index),
            Some(_) => Err(Rejection::new(
                RejectReason::UnknownEmployee,
                format!("field `data.{field}`: employee \"{employee}\" has left and is not active"),
            )),
            None => Err(Rejection::new(
                RejectReason::UnknownEmployee,
                format!("field `data.{field}`: employee \"{employee}\" has not joined"),
            )),
        }
    }

    fn track_id(&self, track: &str, field: &str) -> Result<u8, Rejection> {
        self.settings.track_index(track).ok_or_else(|| {
            let known: Vec<&str> = self
                .settings
                .tracks
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            Rejection::new(
                RejectReason::UnknownTrack,
                format!(
                    "field `{field}`: track \"{track}\" is not configured (configured: {})",
                    known.join(", ")
                ),
            )
        })
    }

    fn role_id(&self, role: &str) -> Result<u8, Rejection> {
        self.settings.role_index(role).ok_or_else(|| {
            Rejection::new(
                RejectReason::UnknownRole,
                format!(
                    "field `data.role`: \"{role}\" is not one of the configured roles ({})",
                    self.settings.roles.join(", ")
                ),
            )
        })
    }

    fn check_text(&self, value: &str, field: &str) -> Result<(), Rejection> {
        if value.is_empty() || value.len() > 128 {
            return Err(Rejection::new(
                RejectReason::InvalidField,
                format!(
                    "field `{field}`: must be 1 to 128 bytes, got {}",
                    value.len()
                ),
            ));
        }
        Ok(())
    }

    fn checked_nanos(&self, at: Timestamp, field: &str) -> Result<EpochNanos, Rejection> {
        to_nanos(at).ok_or_else(|| {
            Rejection::new(
                RejectReason::InvalidField,
                format!("field `{field}`: {at} is out of the supported range (years 1678 to 2261)"),
            )
        })
    }
}

/// Links of an intrusive doubly linked list threaded through a `Vec` by index (the open cases of an
/// employee, the mentees of a mentor): O(1) to add or remove an element, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Links {
    prev: u32,
    next: u32,
}

impl Links {
    const DETACHED: Links = Links {
        prev: NONE,
        next: NONE,
    };
}

/// Removes `index` from the list starting at `head`; returns the new head.
fn list_unlink<T>(items: &mut [T], links: fn(&mut T) -> &mut Links, head: u32, index: u32) -> u32 {
    let Links { prev, next } =
        std::mem::replace(links(&mut items[index as usize]), Links::DETACHED);
    if next != NONE {
        links(&mut items[next as usize]).prev = prev;
    }
    if prev != NONE {
        links(&mut items[prev as usize]).next = next;
        head
    } else {
        next
    }
}

/// Puts `index` (not in any list) at the front of the list starting at `head`; returns the new head.
fn list_push<T>(items: &mut [T], links: fn(&mut T) -> &mut Links, head: u32, index: u32) -> u32 {
    *links(&mut items[index as usize]) = Links {
        prev: NONE,
        next: head,
    };
    if head != NONE {
        links(&mut items[head as usize]).prev = index;
    }
    index
}

fn case_links(case: &mut Case) -> &mut Links {
    &mut case.of_employee
}

fn mentee_links(employee: &mut Employee) -> &mut Links {
    &mut employee.mentees_of_mentor
}

impl Employee {
    fn new(
        id: &str,
        role: u8,
        contract: Contract,
        experienced: bool,
        location: Option<&str>,
    ) -> Employee {
        Employee {
            id: id.into(),
            active: true,
            role,
            contract,
            experienced,
            location: location.map(Into::into),
            open_cases: 0,
            first_case: NONE,
            mentor: NONE,
            mentees_of_mentor: Links::DETACHED,
            first_mentee: NONE,
            mentee_count: 0,
        }
    }
}

/// The bucket shape for inflow/outflow: fine enough for the shortest rolling window, long enough for
/// the longest of them and the forecast window.
fn flow_shape(settings: &CoreSettings) -> RollingShape {
    let windows: Vec<EpochNanos> = settings
        .rolling_windows
        .iter()
        .chain([&settings.forecast_window])
        .map(|w| w.nanos())
        .collect();
    RollingShape::for_windows(&windows)
}

/// The deadline of a case as of `time`: a suspended case's deadline moves later by the time spent
/// suspended so far.
fn effective_deadline(case: &Case, time: EpochNanos) -> EpochNanos {
    if case.suspended {
        case.deadline
            .saturating_add(time.saturating_sub(case.suspended_at).max(0))
    } else {
        case.deadline
    }
}

#[cfg(test)]
mod end_of_time_tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use jiff::Span;

    use super::*;
    use crate::core::time::NANOS_PER_SECOND;

    /// Regression (found by fuzz/event_sequence, see docs/fuzzing.md): at the last representable
    /// instant, a case whose next classification change saturated to `i64::MAX` (a deadline at the
    /// end of time, or a penalty start pushed there by the grace period) was rescheduled at `now`
    /// again and again, so `advance` never returned.
    #[test]
    fn advance_to_the_end_of_time_returns() {
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let mut settings = CoreSettings::example();
            settings.tracks[0].penalty_grace = Span::new().days(2);
            let mut state = State::new(settings);
            let now = 1_735_689_600 * NANOS_PER_SECOND;
            for (case, deadline) in [("due", i64::MAX), ("overdue", i64::MAX - NANOS_PER_DAY)] {
                let event = Event {
                    id: case.into(),
                    time: from_nanos(now),
                    kind: EventKind::CaseRegistered {
                        case: case.into(),
                        track: "asylum".into(),
                        received_at: None,
                        location: None,
                        deadline: Some(from_nanos(deadline)),
                    },
                };
                assert_eq!(state.apply(&event, now), Ok(Applied::New));
            }
            state.advance(i64::MAX);
            let mut recomputed = state.clone();
            recomputed.rebuild_derived();
            assert_eq!(recomputed.aggregates(), state.aggregates());
            assert_eq!(state.aggregates().tracks[0].overdue(), 1);
            assert_eq!(state.aggregates().tracks[0].open(), 2);
            done.send(()).expect("the test waits");
        });
        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("advance(i64::MAX) returns, and the checks after it pass");
    }
}
