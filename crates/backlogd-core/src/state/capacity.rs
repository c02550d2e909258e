//! Observed capacity: decisions per employee-week of presence, by role, experience and whether the
//! employee mentors, and the decisions taken by new staff; all over `forecast.window`, by event
//! time, kept incrementally at each decision and each change of an employee's class.

use super::{NONE, State};
use crate::aggregates::Capacity;
use crate::forecast::ForecastInputs;
use crate::time::{EpochNanos, NANOS_PER_DAY, from_nanos, to_nanos_saturating};

const NANOS_PER_WEEK: f64 = 7.0 * NANOS_PER_DAY as f64;

impl State {
    /// The capacity class of an employee (`Capacity::class`), or `NONE` when not active.
    pub(super) fn capacity_class(&self, index: u32) -> u32 {
        let e = &self.employees[index as usize];
        if !e.active {
            return NONE;
        }
        Capacity::class(e.role, e.experienced, e.mentee_count > 0) as u32
    }

    /// Moves an employee's presence to the class they are in now (none when they left), as of
    /// event time `time`. Call after every change of role, experience, mentees or activity.
    pub(super) fn recount_capacity(&mut self, index: u32, time: EpochNanos) {
        let new = self.capacity_class(index);
        let old = self.employees[index as usize].capacity_class;
        if new == old {
            return;
        }
        let (shape, now) = (self.flow_shape, self.now);
        if old != NONE {
            self.presence[old as usize].change(shape, now, time, -1);
        }
        if new != NONE {
            self.presence[new as usize].change(shape, now, time, 1);
        }
        self.employees[index as usize].capacity_class = new;
    }

    /// Counts a decision by `decider` (active) at event time `time`.
    pub(super) fn count_decision(&mut self, decider: u32, time: EpochNanos) {
        let e = &self.employees[decider as usize];
        let (class, joined_at) = (e.capacity_class, e.joined_at);
        let (shape, now) = (self.flow_shape, self.now);
        if class != NONE {
            self.decisions_by_class[class as usize].add(shape, now, time, 1);
        }
        let new_staff = i64::from(self.settings.new_staff_weeks).saturating_mul(7 * NANOS_PER_DAY);
        if time.saturating_sub(joined_at) < new_staff {
            self.decisions_by_new_staff.add(shape, now, time, 1);
        }
    }

    /// The capacity figures over the forecast window at the state's clock.
    pub fn capacity(&self) -> Capacity {
        let (shape, now) = (self.flow_shape, self.now);
        let window = self.settings.forecast_window.nanos();
        Capacity {
            decisions: self
                .decisions_by_class
                .iter()
                .map(|c| c.sum(shape, now, window))
                .collect(),
            employee_weeks: self
                .presence
                .iter()
                .map(|p| p.integral(shape, now, window) as f64 / NANOS_PER_WEEK)
                .collect(),
            decisions_by_new_staff: self.decisions_by_new_staff.sum(shape, now, window),
            headcount: self.presence.iter().map(|p| p.current()).collect(),
        }
    }

    /// What the what-if forecast starts from (docs/forecast.md, "Inputs").
    pub fn forecast_inputs(&self) -> ForecastInputs {
        let capacity = self.capacity();
        let experienced = |c: usize| Capacity::is_experienced(c);
        let mentoring = |c: usize| Capacity::is_mentoring(c);
        let rate_experienced = capacity.rate(|c| experienced(c) && !mentoring(c));
        let rate_mentor = capacity.rate(|c| experienced(c) && mentoring(c));
        let rate_inexperienced = capacity.rate(|c| !experienced(c));
        // Without experienced non-mentors in the window (everyone experienced mentored), their rate
        // is the mentors' (docs/forecast.md); without either, 0.
        let rate_experienced = match (rate_experienced.is_nan(), rate_mentor.is_nan()) {
            (false, _) => rate_experienced,
            (true, false) => rate_mentor,
            (true, true) => 0.0,
        };
        let (shape, now) = (self.flow_shape, self.now);
        let window = self.settings.forecast_window.nanos();
        let window_weeks = window as f64 / NANOS_PER_WEEK;
        let inflow: u64 = self.inflow.iter().map(|c| c.sum(shape, now, window)).sum();
        let outflow: u64 = self.outflow.iter().map(|c| c.sum(shape, now, window)).sum();
        let decisions: u64 = capacity.decisions.iter().sum();
        let closures = outflow.saturating_sub(decisions);
        let now_ts = from_nanos(now);
        let period_weeks = |t: usize| {
            let period = self.settings.tracks[t].decision_period;
            let end = to_nanos_saturating(self.settings.add_calendar(now_ts, period));
            end.saturating_sub(now) as f64 / NANOS_PER_WEEK
        };
        let open: Vec<f64> = self
            .aggregates
            .tracks
            .iter()
            .map(|t| t.open() as f64)
            .collect();
        let total_open: f64 = open.iter().sum();
        let tracks = self.aggregates.tracks.len();
        let decision_period_weeks = if total_open > 0.0 {
            (0..tracks).map(|t| open[t] * period_weeks(t)).sum::<f64>() / total_open
        } else if tracks > 0 {
            (0..tracks).map(period_weeks).sum::<f64>() / tracks as f64
        } else {
            26.0
        };
        ForecastInputs {
            start: now,
            open: total_open,
            overdue: self
                .aggregates
                .tracks
                .iter()
                .map(|t| t.overdue() as f64)
                .sum(),
            experienced: capacity.headcount_of(|c| experienced(c) && !mentoring(c)) as f64,
            mentors: capacity.headcount_of(|c| experienced(c) && mentoring(c)) as f64,
            inexperienced: capacity.headcount_of(|c| !experienced(c)) as f64,
            rate_experienced,
            // Without mentors in the window there is no observed cost: mentors work as others.
            rate_mentor: if rate_mentor.is_nan() {
                rate_experienced
            } else {
                rate_mentor
            },
            // Without inexperienced staff in the window, new hires start from nothing.
            rate_inexperienced: if rate_inexperienced.is_nan() {
                0.0
            } else {
                rate_inexperienced
            },
            net_inflow_per_week: (inflow as f64 - closures as f64) / window_weeks,
            decision_period_weeks,
        }
    }

    /// The headcount per capacity class as the presence integrals have it, and as the employees
    /// have it: equal unless the incremental bookkeeping went wrong (checked by the core tests).
    #[cfg(test)]
    pub(crate) fn capacity_headcounts(&self) -> (Vec<i64>, Vec<i64>) {
        let kept = self.presence.iter().map(|p| p.current()).collect();
        let mut counted = vec![0; self.presence.len()];
        for index in 0..self.employees.len() as u32 {
            let class = self.capacity_class(index);
            if class != NONE {
                counted[class as usize] += 1;
            }
        }
        (kept, counted)
    }
}
