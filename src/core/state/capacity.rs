//! Observed capacity: decisions per employee-week of presence, by role, experience and whether the
//! employee mentors, and the decisions taken by new staff; all over `forecast.window`, by event
//! time, kept incrementally at each decision and each change of an employee's class.

use super::{NONE, State};
use crate::core::aggregates::Capacity;
use crate::core::time::{EpochNanos, NANOS_PER_DAY};

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
