//! The daily history: one row a day of the key aggregates, taken at each midnight of the configured
//! time zone, kept for `MAX_DAYS` days (docs/http.md, `GET /v1/history`).
//!
//! A row is the state at the midnight itself: the events that arrived before it applied, the cases
//! whose deadlines passed up to it reclassified, and nothing after it. The clock reaches a midnight
//! either on a tick or when the first event after it arrives; either way the state is first advanced
//! to the midnight, the row taken, then the clock moves on. The rows are therefore the same live, on
//! replay after a crash, and in `backlogd backfill`: they depend on the events and their arrival
//! times only, not on when ticks happened. The snapshot keeps them.
//!
//! Counters (`inflow_total`, `outflow_total`, audits, penalties incurred) are cumulative, so a day's
//! flow is the difference of two rows and a missed day loses nothing.

use std::collections::VecDeque;
use std::sync::Arc;

use jiff::{ToSpan, tz::TimeZone};

use super::time::{EpochNanos, from_nanos, to_nanos};

/// Days kept: ten years.
pub const MAX_DAYS: usize = 3660;

/// The figures of one track at a midnight.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayTrack {
    pub open: i64,
    pub overdue: i64,
    /// Per configured due-soon window, in their order.
    pub due_soon: Vec<i64>,
    /// Registered + reopened, since the history began (cumulative).
    pub inflow_total: u64,
    /// Decided + closed otherwise, since the history began (cumulative).
    pub outflow_total: u64,
    pub penalty_exposure_cents: i64,
    /// Cumulative.
    pub penalty_incurred_cents: i64,
    /// Open cases over the net outflow rate of the forecast window, in seconds; +Inf when the
    /// backlog is not shrinking.
    pub clearance_seconds: f64,
}

/// What a row's figures were counted over: the settings in force when it was taken. A reload may
/// reorder, add or remove due-soon windows or change the forecast window; the rows taken before it
/// keep the names of what they counted. Rows taken under the same settings share one basis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowBasis {
    /// The due-soon window labels, in the order of each track's `due_soon`.
    pub due_soon_windows: Vec<String>,
    /// `forecast.window` as written: `decisions_in_window` and `clearance_seconds` count over it.
    pub decision_window: String,
    /// `forecast.new_staff_weeks`: who counted in `decisions_by_new_staff_in_window`.
    pub new_staff_weeks: u32,
}

impl RowBasis {
    /// The basis of rows taken under `settings`.
    pub fn of(settings: &super::settings::CoreSettings) -> RowBasis {
        RowBasis {
            due_soon_windows: settings
                .due_soon_windows
                .iter()
                .map(|w| w.label.clone())
                .collect(),
            decision_window: settings.forecast_window.label.clone(),
            new_staff_weeks: settings.new_staff_weeks,
        }
    }
}

/// One row: the state at the midnight that ends `day`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DailyRow {
    /// The calendar day that ended at `at`, as `YYYY-MM-DD` in the configured time zone.
    pub day: String,
    /// The midnight, nanoseconds since the epoch.
    pub at: EpochNanos,
    /// The windows the row's figures count over (the settings when it was taken).
    pub basis: Arc<RowBasis>,
    /// Per configured track, in their order.
    pub tracks: Vec<DayTrack>,
    pub employees_experienced: i64,
    pub employees_inexperienced: i64,
    /// Active employees mentoring at least one newcomer.
    pub mentors: i64,
    /// Active inexperienced employees with a mentor, and without one.
    pub mentees: i64,
    pub unmentored: i64,
    /// Cumulative.
    pub audits_passed: u64,
    pub audits_failed: u64,
    /// Decisions with event time in the `forecast.window` before the midnight, and those of them
    /// by deciders in their first `forecast.new_staff_weeks` weeks (0 in rows from snapshots of
    /// format 6, which did not keep them).
    pub decisions_in_window: u64,
    pub decisions_by_new_staff_in_window: u64,
}

/// The bounded list of rows, oldest first, and the next midnight to take one at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DailyHistory {
    pub rows: VecDeque<DailyRow>,
    /// The next midnight; `None` until the clock first moves (and after the time zone changed).
    pub next: Option<EpochNanos>,
}

impl DailyHistory {
    /// Adds a row, or replaces the last one when it names the same day: one row a day, always.
    /// (A reload that moves `time.timezone` west after the old zone's midnight reaches the end of
    /// the same calendar day again, in the new zone; that later row is the day's end in the zone
    /// now in force.)
    pub fn push(&mut self, row: DailyRow) {
        if let Some(last) = self.rows.back_mut()
            && last.day >= row.day
        {
            if last.day == row.day {
                *last = row;
            }
            return;
        }
        if self.rows.len() == MAX_DAYS {
            self.rows.pop_front();
        }
        self.rows.push_back(row);
    }
}

/// The first midnight strictly after `at` in `tz` (a day that starts at another hour because of a
/// DST change starts at its first instant), saturating at the far future.
pub fn midnight_after(tz: &TimeZone, at: EpochNanos) -> EpochNanos {
    let zoned = from_nanos(at).to_zoned_datetime(tz.clone());
    zoned
        .date()
        .checked_add(1.day())
        .ok()
        .and_then(|date| date.to_zoned_datetime(tz.clone()).ok())
        .and_then(|z| to_nanos(z.timestamp()))
        .unwrap_or(EpochNanos::MAX)
}

/// `YYYY-MM-DD` of the day that ends at the midnight `at`.
pub fn day_ending_at(tz: &TimeZone, at: EpochNanos) -> String {
    let before = from_nanos(at.saturating_sub(1));
    before.to_zoned_datetime(tz.clone()).date().to_string()
}
