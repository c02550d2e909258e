//! The monthly figures of `backlogd simulate --stats`.

use super::{NONE, Role, Sim};
use crate::simulate::time::rfc3339;

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

impl Sim {
    /// Appends a stats row for the days since the previous one (if any).
    pub(crate) fn record_stats(&mut self) {
        let day_end = self.day_start();
        if self.stats.last().is_some_and(|r| r.day == self.day) {
            return;
        }
        let mut overdue = 0;
        let mut unassigned = 0;
        for &slot in &self.open {
            let case = &self.cases[slot as usize];
            overdue += usize::from(!case.suspended && case.deadline < day_end);
            unassigned += usize::from(case.employee == NONE);
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
                .filter(|&&e| !self.employees[e as usize].experienced)
                .count(),
            mentors: self.by_role[Role::Mentor as usize].len(),
            max_mentees: self
                .active
                .iter()
                .map(|&e| self.employees[e as usize].mentees.len())
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
}
