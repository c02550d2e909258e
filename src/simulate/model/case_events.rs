//! The small-rate case events of slot F: extensions, suspensions, transfers and closures.

use super::{Cursor, Ev, NONE, Pending, Sched, Sim};
use crate::simulate::time::HOUR;

impl Sim {
    /// Slot F: the small-rate case events, drawn as daily counts over the open cases.
    pub(super) fn case_events(&mut self, out: &mut Vec<Pending>, start: i64, d: u32) {
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
}
