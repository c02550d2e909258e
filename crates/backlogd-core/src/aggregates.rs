//! The maintained aggregates: every gauge and counter of the case and workforce metrics, kept up to
//! date incrementally by the state on each event and tick, and copied out for publication.
//!
//! Plain data, indexed by the core's compact ids (track, location, window, phase, role). Rendering
//! into Prometheus families happens at the edge (`crate::metrics`).

use super::event::{CloseReason, Contract, Outcome};
use super::time::EpochNanos;

/// Upper bounds of the lead-time histogram, in days (docs/metrics.md).
pub const LEAD_TIME_BUCKET_DAYS: [i64; 9] = [30, 61, 91, 182, 274, 365, 456, 639, 730];

/// A histogram with fixed buckets: per-bucket (not cumulative) counts, the overflow bucket last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadTimeHistogram {
    pub bucket_counts: [u64; LEAD_TIME_BUCKET_DAYS.len() + 1],
    pub sum_seconds: f64,
}

impl LeadTimeHistogram {
    pub fn observe(&mut self, nanos: EpochNanos) {
        let days = nanos as f64 / super::time::NANOS_PER_DAY as f64;
        let bucket = LEAD_TIME_BUCKET_DAYS
            .iter()
            .position(|&upper| days <= upper as f64)
            .unwrap_or(LEAD_TIME_BUCKET_DAYS.len());
        self.bucket_counts[bucket] += 1;
        self.sum_seconds += super::time::seconds_f64(nanos);
    }

    pub fn count(&self) -> u64 {
        self.bucket_counts.iter().sum()
    }
}

/// Everything counted for one configured track.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackAggregates {
    // Gauges.
    /// Open cases (including suspended) per location id.
    pub open_by_location: Vec<i64>,
    /// Open, non-suspended, overdue cases per location id.
    pub overdue_by_location: Vec<i64>,
    /// Due-soon cases per configured due-soon window.
    pub due_soon_by_window: Vec<i64>,
    pub suspended: i64,
    pub unassigned: i64,
    /// Open cases per phase id (0 = `none`).
    pub open_by_phase: Vec<i64>,
    pub penalty_exposure_cents: i64,

    // Counters.
    pub penalty_incurred_cents: i64,
    pub registered: u64,
    pub reopened: u64,
    pub decided_by_outcome: [u64; Outcome::ALL.len()],
    pub closed_by_reason: [u64; CloseReason::ALL.len()],
    pub decisions_overdue: u64,
    pub decisions_by_inexperienced: u64,
    pub decisions_benefit_of_doubt: u64,
    pub decisions_without_investigation: u64,
    pub deadline_extensions: u64,
    pub hearings_held: u64,
    pub hearings_cancelled: u64,
    pub transfers: u64,
    pub lead_time: LeadTimeHistogram,
}

impl TrackAggregates {
    pub fn open(&self) -> i64 {
        self.open_by_location.iter().sum()
    }

    pub fn overdue(&self) -> i64 {
        self.overdue_by_location.iter().sum()
    }

    /// Sets every gauge to zero, keeping the counters (used when gauges are rebuilt from the cases).
    pub fn reset_gauges(&mut self) {
        for gauge in self
            .open_by_location
            .iter_mut()
            .chain(self.overdue_by_location.iter_mut())
            .chain(self.due_soon_by_window.iter_mut())
            .chain(self.open_by_phase.iter_mut())
        {
            *gauge = 0;
        }
        self.suspended = 0;
        self.unassigned = 0;
        self.penalty_exposure_cents = 0;
    }
}

/// All aggregates of the state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregates {
    /// Indexed by track id.
    pub tracks: Vec<TrackAggregates>,
    /// Location names by location id.
    pub locations: Vec<String>,
    /// Active employees per (role, contract, experienced): index
    /// `(role * Contract::ALL.len() + contract) * 2 + experienced`.
    pub employees: Vec<i64>,
    pub audits_passed: u64,
    pub audits_failed: u64,
    pub last_audit_time: Option<EpochNanos>,
    /// The latest event time among applied events.
    pub last_event_time: Option<EpochNanos>,
}

impl Aggregates {
    pub fn employee_slot(role: u8, contract: Contract, experienced: bool) -> usize {
        (usize::from(role) * Contract::ALL.len() + contract.index()) * 2 + usize::from(experienced)
    }
}

/// The time-window figures at one `now`: rolling inflow and outflow, the clearance forecast and the
/// quality pass ratio. Computed on demand from the rolling counters' running sums (O(tracks × windows)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flows {
    /// Per track, per rolling window: registrations + reopenings with event time in the window.
    pub inflow: Vec<Vec<u64>>,
    /// Per track, per rolling window: decisions + closures with event time in the window.
    pub outflow: Vec<Vec<u64>>,
    /// Per track: open / net outflow rate over the forecast window, in seconds; +Inf when the
    /// backlog is not shrinking, 0 when nothing is open.
    pub clearance_seconds: Vec<f64>,
    /// Per target in effect (`State::targets_in_effect`: the configured ones first): projected
    /// clearance instant in seconds since the epoch, +Inf when not shrinking.
    pub projected_clearance: Vec<f64>,
    /// Per target in effect: its date, projection and announcements.
    pub targets: Vec<super::state::TargetFigures>,
    pub capacity: Capacity,
    /// Passed / all audits with event time in the quality window; NaN when there were none.
    pub quality_pass_ratio: f64,
    /// All audits with event time in the quality window (the ratio's sample size).
    pub quality_audits: u64,
}

/// Observed capacity over the forecast window (docs/metrics.md, capacity).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capacity {
    /// Per capacity class (`Capacity::class`): decisions with event time in the window, by the
    /// decider's class at decision time.
    pub decisions: Vec<u64>,
    /// Per capacity class: employee-weeks of presence in the window.
    pub employee_weeks: Vec<f64>,
    /// Decisions in the window by deciders in their first `forecast.new_staff_weeks` weeks.
    pub decisions_by_new_staff: u64,
    /// Per capacity class: active employees now.
    pub headcount: Vec<i64>,
}

impl Capacity {
    /// The class index of (role, experienced, mentors at least one mentee).
    pub fn class(role: u8, experienced: bool, mentoring: bool) -> usize {
        (usize::from(role) * 2 + usize::from(experienced)) * 2 + usize::from(mentoring)
    }

    /// Decisions per employee-week over the classes `select` picks; NaN without presence.
    pub fn rate(&self, select: impl Fn(usize) -> bool) -> f64 {
        let (mut decisions, mut weeks) = (0u64, 0f64);
        for class in (0..self.decisions.len()).filter(|&c| select(c)) {
            decisions += self.decisions[class];
            weeks += self.employee_weeks[class];
        }
        if weeks > 0.0 {
            decisions as f64 / weeks
        } else {
            f64::NAN
        }
    }

    /// Active employees now over the classes `select` picks.
    pub fn headcount_of(&self, select: impl Fn(usize) -> bool) -> i64 {
        (0..self.headcount.len())
            .filter(|&c| select(c))
            .map(|c| self.headcount[c])
            .sum()
    }

    /// Whether a class index is of experienced employees / of employees who mentor.
    pub fn is_experienced(class: usize) -> bool {
        (class / 2) % 2 == 1
    }

    pub fn is_mentoring(class: usize) -> bool {
        class % 2 == 1
    }
}

/// Seconds until an `open` backlog is cleared at a net outflow of `net_per_second`.
pub fn clearance_seconds(open: i64, net_per_second: f64) -> f64 {
    if open <= 0 {
        0.0
    } else if net_per_second > 0.0 {
        open as f64 / net_per_second
    } else {
        f64::INFINITY
    }
}
