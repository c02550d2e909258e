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

mod capacity;
mod codec;
mod derived;
mod links;
mod locations;
mod targets;
mod transitions;

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::aggregates::{Aggregates, Flows, TrackAggregates, clearance_seconds};
use super::event::{Contract, Event, RejectReason, Rejection};
use super::history::{
    DailyHistory, DailyRow, DayTrack, MAX_DAYS, RowBasis, day_ending_at, midnight_after,
};
use super::ids::{Dedup, IdArena};
use super::presence::PresenceIntegral;
use super::rolling::{RollingCounter, RollingShape};
use super::settings::CoreSettings;
use super::time::{EpochNanos, NANOS_PER_DAY, duration_nanos, from_nanos};
use links::Links;

pub use codec::SnapshotError;
pub use targets::{
    Announcement, AnnouncementReport, TargetFigures, TargetHistory, TargetInEffect, TargetReport,
};

/// Why `State::set_settings` refused new settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The names of tracks, phases or roles (`what`) changed: cases and employees refer to them by
    /// position, so only a restart (which replays under the new names) can apply that.
    #[error("{what} changed from [{old}] to [{new}]; that needs a restart", old = .old.join(", "), new = .new.join(", "))]
    NeedsRestart {
        what: &'static str,
        old: Vec<String>,
        new: Vec<String>,
    },
}

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
    /// Event time of the (latest) join.
    joined_at: EpochNanos,
    /// The capacity class the employee's presence counts in, `NONE` when it counts nowhere.
    capacity_class: u32,
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
    /// Location names and ids, and which have a label (`locations.rs`).
    locations: locations::Locations,
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
    /// Announced clearance targets, in the order of their first announcement.
    target_histories: Vec<TargetHistory>,
    /// Per capacity class (`Capacity::class`), by event time, in the flow buckets.
    presence: Vec<PresenceIntegral>,
    decisions_by_class: Vec<RollingCounter>,
    decisions_by_new_staff: RollingCounter,
    /// One row a day at midnight (`super::history`).
    history: DailyHistory,
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
            locations: locations::Locations::new(track_count),
            aggregates: Aggregates::default(),
            flow_shape: flow_shape(&settings),
            inflow: vec![RollingCounter::default(); track_count],
            outflow: vec![RollingCounter::default(); track_count],
            quality_shape: RollingShape::for_windows(&[settings.quality_window.nanos()]),
            audits_passed_rolling: RollingCounter::default(),
            audits_rolling: RollingCounter::default(),
            target_histories: Vec::new(),
            presence: vec![PresenceIntegral::default(); settings.roles.len() * 4],
            decisions_by_class: vec![RollingCounter::default(); settings.roles.len() * 4],
            decisions_by_new_staff: RollingCounter::default(),
            history: DailyHistory::default(),
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

    /// The next instant at which a case changes class without an event (becomes due soon or
    /// overdue), if any: `advance` to it moves the gauges. The daemon wakes for it rather than
    /// waiting for its next regular tick.
    pub fn next_class_change(&self) -> Option<EpochNanos> {
        self.timers.first().map(|&(at, _)| at)
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
    /// Bounds the case ids at `max_bytes` (tests of the bound; production holds 4 GiB).
    #[cfg(test)]
    pub(crate) fn bound_case_ids(&mut self, max_bytes: usize) {
        assert!(self.case_ids.is_empty(), "bound an empty state");
        self.case_ids = super::ids::IdArena::with_max_bytes(max_bytes);
    }

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
    pub fn set_settings(&mut self, settings: CoreSettings) -> Result<(), SettingsError> {
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
                return Err(SettingsError::NeedsRestart { what, old, new });
            }
        }
        let old_flow = self.flow_shape;
        let old_quality = self.quality_shape;
        self.settings = settings;
        self.quality_shape = RollingShape::for_windows(&[self.settings.quality_window.nanos()]);
        let (new_flow, now) = (flow_shape(&self.settings), self.now);
        self.flow_shape = new_flow;
        for counter in self.flow_counters_mut() {
            *counter = counter.rebucket(old_flow, new_flow, now);
        }
        for presence in &mut self.presence {
            *presence = presence.rebucket(old_flow, self.flow_shape, self.now);
        }
        for counter in [&mut self.audits_passed_rolling, &mut self.audits_rolling] {
            *counter = counter.rebucket(old_quality, self.quality_shape, self.now);
        }
        self.dedup
            .set_window(duration_nanos(self.settings.dedup_window));
        self.trim_target_histories();
        // The next midnight again, in the (possibly new) time zone.
        self.history.next = None;
        self.rebuild_derived();
        Ok(())
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
        let targets = self.target_figures();
        let quality = self.settings.quality_window.nanos();
        let audits = self.audits_rolling.sum(self.quality_shape, now, quality);
        let passed = self
            .audits_passed_rolling
            .sum(self.quality_shape, now, quality);
        Flows {
            inflow: per_window(&self.inflow),
            outflow: per_window(&self.outflow),
            clearance_seconds: clearance,
            projected_clearance: targets.iter().map(|t| t.projected_clearance).collect(),
            targets,
            capacity: self.capacity(),
            quality_pass_ratio: if audits == 0 {
                f64::NAN
            } else {
                passed as f64 / audits as f64
            },
            quality_audits: audits,
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
    /// or penalty-day status changes on the way. Returns how many cases were reclassified. At each
    /// midnight on the way the clock stops and the day's history row is taken.
    pub fn advance(&mut self, now: EpochNanos) -> usize {
        if now <= self.now {
            return 0;
        }
        let mut next = match self.history.next {
            Some(next) => next,
            // The first move of the clock (no day has begun yet), or the first after a load or a
            // change of time zone (the day the state was in has).
            None if self.now == EpochNanos::MIN => midnight_after(&self.settings.timezone, now),
            None => midnight_after(&self.settings.timezone, self.now),
        };
        let mut changed = 0;
        // `EpochNanos::MAX` stands for "no representable midnight" (past the year 2262).
        if next <= now && next != EpochNanos::MAX {
            let tz = self.settings.timezone.clone();
            // After a long silence only the last `MAX_DAYS` midnights can be kept: start there.
            let keep_from = now.saturating_sub(MAX_DAYS as i64 * NANOS_PER_DAY + NANOS_PER_DAY);
            if next < keep_from {
                next = midnight_after(&tz, keep_from);
            }
            while next <= now && next != EpochNanos::MAX {
                changed += self.advance_clock(next);
                let row = self.daily_row(next);
                self.history.push(row);
                next = midnight_after(&tz, next);
            }
        }
        self.history.next = Some(next);
        changed + self.advance_clock(now)
    }

    /// Whether any event was ever applied to this state (a case, an employee, an audit or an
    /// announcement is kept once seen; the clock and the daily history move without events).
    pub fn holds_events(&self) -> bool {
        !self.cases.is_empty()
            || !self.employees.is_empty()
            || !self.target_histories.is_empty()
            || self.aggregates.audits_passed > 0
            || self.aggregates.audits_failed > 0
    }

    /// The day's history rows, oldest first.
    pub fn daily_history(&self) -> impl ExactSizeIterator<Item = &DailyRow> {
        self.history.rows.iter()
    }

    /// The history row of the state as it is at `at` (a midnight).
    fn daily_row(&self, at: EpochNanos) -> DailyRow {
        let flows = self.flows();
        let tracks = self
            .aggregates
            .tracks
            .iter()
            .enumerate()
            .map(|(t, a)| DayTrack {
                open: a.open(),
                overdue: a.overdue(),
                due_soon: a.due_soon_by_window.clone(),
                inflow_total: a.registered.saturating_add(a.reopened),
                outflow_total: a
                    .decided_by_outcome
                    .iter()
                    .chain(&a.closed_by_reason)
                    .fold(0u64, |sum, &n| sum.saturating_add(n)),
                penalty_exposure_cents: a.penalty_exposure_cents,
                penalty_incurred_cents: a.penalty_incurred_cents,
                clearance_seconds: flows.clearance_seconds.get(t).copied().unwrap_or(f64::NAN),
            })
            .collect();
        let capacity = self.capacity();
        // Rows taken under the same settings share their basis.
        let basis = RowBasis::of(&self.settings);
        let basis = match self.history.rows.back() {
            Some(last) if *last.basis == basis => last.basis.clone(),
            _ => std::sync::Arc::new(basis),
        };
        let mut row = DailyRow {
            day: day_ending_at(&self.settings.timezone, at),
            at,
            basis,
            tracks,
            audits_passed: self.aggregates.audits_passed,
            audits_failed: self.aggregates.audits_failed,
            decisions_in_window: capacity.decisions.iter().sum(),
            decisions_by_new_staff_in_window: capacity.decisions_by_new_staff,
            ..DailyRow::default()
        };
        for (slot, &count) in self.aggregates.employees.iter().enumerate() {
            // Slots alternate inexperienced, experienced (`Aggregates::employee_slot`).
            if slot % 2 == 1 {
                row.employees_experienced += count;
            } else {
                row.employees_inexperienced += count;
            }
        }
        // Once a day, O(employees).
        for e in self.employees.iter().filter(|e| e.active) {
            if e.mentee_count > 0 {
                row.mentors += 1;
            }
            if !e.experienced {
                if e.mentor != NONE {
                    row.mentees += 1;
                } else {
                    row.unmentored += 1;
                }
            }
        }
        row
    }

    /// The clock part of `advance`: to `now`, without history rows.
    /// Every rolling counter of the flow shape: inflow and outflow per track, decisions per
    /// capacity class, decisions by new staff.
    fn flow_counters_mut(&mut self) -> impl Iterator<Item = &mut RollingCounter> {
        self.inflow
            .iter_mut()
            .chain(self.outflow.iter_mut())
            .chain(self.decisions_by_class.iter_mut())
            .chain([&mut self.decisions_by_new_staff])
    }

    fn advance_clock(&mut self, now: EpochNanos) -> usize {
        if now <= self.now {
            return 0;
        }
        self.now = now;
        self.dedup.expire(now);
        // Release buckets every window has left behind (and settle events that were ahead), so the
        // counters, and a snapshot of them, depend only on what can still count.
        let shape = self.flow_shape;
        for counter in self.flow_counters_mut() {
            counter.expire(shape, now);
        }
        for presence in &mut self.presence {
            presence.expire(self.flow_shape, now);
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
        let time = super::time::to_supported_nanos(event.time).ok_or_else(|| {
            Rejection::new(
                RejectReason::InvalidField,
                format!(
                    "field `time`: {} is out of the supported range ({})",
                    event.time,
                    super::time::SUPPORTED_RANGE
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
            Some(name) => match self.locations.id(name) {
                Some(id) => Some(id),
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
                    location: self.locations.name(case.location).to_owned(),
                    employee: (case.employee != NONE)
                        .then(|| self.employees[case.employee as usize].id.to_string()),
                    deadline: from_nanos(deadline),
                    overdue_seconds: super::time::seconds_f64(self.now.saturating_sub(deadline)),
                    penalty_cents: track.penalty.accrued_cents(case.class.penalty_days),
                }
            })
            .collect()
    }
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
            joined_at: EpochNanos::MIN,
            capacity_class: NONE,
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
