//! The working day: queued cases handed to employees (slot D), then each employee's work on the
//! cases in their hands: phases, hearings and decisions (slot E).

use super::{Cursor, Ev, NONE, Pending, RECENT_DECISIONS, Role, Sched, Sim, lerp};
use crate::simulate::time::HOUR;

impl Sim {
    /// Slot D: queued cases, oldest first, go round-robin to employees with room in their hands.
    pub(super) fn assign(&mut self, out: &mut Vec<Pending>, start: i64, d: u32) {
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
    pub(super) fn work(&mut self, out: &mut Vec<Pending>, start: i64, d: u32, e: u32) {
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
}
