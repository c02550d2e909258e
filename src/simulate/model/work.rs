//! The working day: queued cases handed to employees (slot D), then each employee's work on the
//! cases in their hands: phases, hearings and decisions (slot E).

use super::{CompactEvent, Cursor, NONE, Pending, RECENT_DECISIONS, Role, Scheduled, Sim, lerp};
use crate::simulate::time::HOUR;

impl Sim {
    /// Slot D: queued cases, oldest first, go round-robin to employees with room in their hands.
    pub(super) fn assign(&mut self, out: &mut Vec<Pending>, start: i64, day: u32) {
        let workload = &self.scenario.workload;
        let target = lerp(
            workload.cases_in_hand,
            workload.cases_in_hand_under_pressure,
            self.pressure,
        )
        .round() as usize;
        let employee_count = self.employees.len();
        if employee_count == 0 || target == 0 {
            return;
        }
        let mut cursor = Cursor::new(start + 8 * HOUR, start + 9 * HOUR - 1);
        let offset = day as usize % employee_count;
        loop {
            let mut any = false;
            for turn in 0..employee_count {
                let employee = ((turn + offset) % employee_count) as u32;
                let emp = &self.employees[employee as usize];
                if !emp.active || emp.cases.len() >= target {
                    continue;
                }
                let Some(slot) = self.pop_queue() else {
                    return;
                };
                any = true;
                self.employees[employee as usize].cases.push(slot);
                let case = &mut self.cases[slot as usize];
                case.employee = employee;
                let number = case.number;
                let first_phase = !case.phase_emitted;
                case.phase_emitted = true;
                let step = case.step;
                let time = cursor.next(1);
                self.emit(
                    out,
                    time,
                    CompactEvent::Assigned {
                        case: number,
                        employee,
                    },
                );
                if first_phase {
                    self.emit(
                        out,
                        time,
                        CompactEvent::Phase {
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
    pub(super) fn work(&mut self, out: &mut Vec<Pending>, start: i64, day: u32, employee: u32) {
        let variation = self.scenario.productivity.daily_variation;
        let mut budget =
            self.capacity(employee, day) * (1.0 + variation * (2.0 * self.rng.f64() - 1.0));
        let mut time = start + 9 * HOUR + self.rng.below(1800) as i64;
        let end = start + 17 * HOUR - 1;
        let mut position = 0;
        while budget > 0.0 && position < self.employees[employee as usize].cases.len() {
            let slot = self.employees[employee as usize].cases[position];
            let case = &self.cases[slot as usize];
            if case.suspended || case.blocked_until > day {
                position += 1;
                continue;
            }
            if budget < case.remaining {
                self.cases[slot as usize].remaining -= budget;
                break;
            }
            budget -= case.remaining;
            time = (time + 300 + self.rng.below(1500) as i64).min(end);
            let (number, step) = (case.number, case.step);
            if step == self.hearing_step && !case.hearing_done {
                let hearings = &self.scenario.hearings;
                let cancel = lerp(
                    hearings.cancel_share,
                    hearings.cancel_share_under_pressure,
                    self.pressure,
                );
                if self.rng.chance(cancel) {
                    let reason = self.rng.index(hearings.reasons.len()) as u16;
                    let (reschedule, retry) = (hearings.reschedule_days, hearings.retry_effort);
                    let case = &mut self.cases[slot as usize];
                    case.blocked_until = day + reschedule;
                    case.remaining = retry;
                    self.period.hearings_cancelled += 1;
                    self.emit(
                        out,
                        time,
                        CompactEvent::HearingCancelled {
                            case: number,
                            reason,
                        },
                    );
                    position += 1;
                    continue;
                }
                self.cases[slot as usize].hearing_done = true;
                self.period.hearings_held += 1;
                self.emit(out, time, CompactEvent::HearingHeld { case: number });
            }
            if step + 1 >= self.phases {
                self.decide(out, time, day, employee, position, slot);
                continue;
            }
            let case = &mut self.cases[slot as usize];
            case.step = step + 1;
            case.remaining = self.scenario.cases.phase_effort[usize::from(step + 1)];
            self.emit(
                out,
                time,
                CompactEvent::Phase {
                    case: number,
                    phase: step + 1,
                },
            );
        }
    }

    fn decide(
        &mut self,
        out: &mut Vec<Pending>,
        time: i64,
        day: u32,
        employee: u32,
        position: usize,
        slot: u32,
    ) {
        let decisions = &self.scenario.decisions;
        let pressure = self.pressure;
        let trainee = !self.employees[employee as usize].experienced;
        let by = if trainee
            && !self.rng.chance(lerp(
                decisions.trainee_decides_share,
                decisions.trainee_decides_share_under_pressure,
                pressure,
            )) {
            self.pick_officer().unwrap_or(employee)
        } else {
            employee
        };
        let decisions = &self.scenario.decisions;
        let draw = self.rng.f64();
        let outcome = if draw < decisions.granted_share {
            0
        } else if draw < decisions.granted_share + decisions.rejected_share {
            1
        } else {
            2
        };
        let benefit_of_doubt_share = lerp(
            decisions.benefit_of_doubt_share,
            decisions.benefit_of_doubt_share_under_pressure,
            pressure,
        );
        let without_share = lerp(
            decisions.without_investigation_share,
            decisions.without_investigation_share_under_pressure,
            pressure,
        );
        let (reopen_share, reopen_lo, reopen_hi) = (
            decisions.reopen_share,
            decisions.reopen_after_days[0],
            decisions.reopen_after_days[1],
        );
        let benefit_of_doubt = self.rng.chance(benefit_of_doubt_share);
        let investigation = !benefit_of_doubt && !self.rng.chance(without_share);
        let case = &self.cases[slot as usize];
        let (number, location, overdue) = (case.number, case.location, time > case.deadline);
        self.emit(
            out,
            time,
            CompactEvent::Decided {
                case: number,
                outcome,
                by,
                benefit_of_doubt,
                investigation,
            },
        );
        self.period.decided += 1;
        self.period.decided_overdue += u64::from(overdue);
        self.employees[employee as usize].cases.remove(position);
        self.cases[slot as usize].employee = NONE;
        self.close_slot(slot);
        if self.recent.len() == RECENT_DECISIONS {
            self.recent.pop_front();
        }
        self.recent.push_back(number);
        if self.rng.chance(reopen_share) {
            let after = self.rng.between(reopen_lo, reopen_hi).max(1);
            self.schedule(day + after, Scheduled::Reopen(number, location));
        }
    }

    fn pick_officer(&mut self) -> Option<u32> {
        let pool = Role::DecisionOfficer as usize;
        for _ in 0..8 {
            if self.by_role[pool].is_empty() {
                return None;
            }
            let officer = self.by_role[pool][self.rng.index(self.by_role[pool].len())];
            if self.employees[officer as usize].experienced {
                return Some(officer);
            }
        }
        None
    }
}
