//! The small-rate case events of slot F: extensions, suspensions, transfers and closures.

use super::{CompactEvent, Cursor, NONE, Pending, Scheduled, Sim};
use crate::simulate::time::HOUR;

impl Sim {
    /// Slot F: the small-rate case events, drawn as daily counts over the open cases.
    pub(super) fn case_events(&mut self, out: &mut Vec<Pending>, start: i64, day: u32) {
        let mut cursor = Cursor::new(start + 17 * HOUR, start + 18 * HOUR - 1);
        let settings = self.scenario.case_events.clone();
        let open = self.open.len() as f64;
        let count = |rate: f64| open * rate / self.working_days_per_year;
        let (extensions, suspensions, transfers, closures) = (
            count(settings.extension_per_year),
            count(settings.suspension_per_year),
            count(settings.transfer_per_year),
            count(settings.closure_per_year),
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
            let time = cursor.next(1 + self.rng.below(30) as i64);
            self.emit(out, time, CompactEvent::Extended { case: number });
        }
        for _ in 0..self.rng.poisson(suspensions) {
            let Some(slot) = self.random_open() else {
                break;
            };
            if self.cases[slot as usize].suspended {
                continue;
            }
            let time = cursor.next(1 + self.rng.below(30) as i64);
            let case = &mut self.cases[slot as usize];
            case.suspended = true;
            case.suspended_at = time;
            let number = case.number;
            self.emit(out, time, CompactEvent::Suspended { case: number });
            let days = self
                .rng
                .between(settings.suspension_days[0], settings.suspension_days[1]);
            self.schedule(day + days.max(1), Scheduled::Resume(slot, number));
        }
        let locations = self.scenario.cases.locations.len();
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
            let time = cursor.next(1 + self.rng.below(30) as i64);
            self.emit(
                out,
                time,
                CompactEvent::Transferred {
                    case: number,
                    location,
                },
            );
            if assigned && self.rng.chance(settings.transfer_unassign_share) {
                self.detach(slot);
                self.enqueue(slot, true);
                self.emit(out, time, CompactEvent::Unassigned { case: number });
            }
        }
        let reasons = &settings.close_reasons;
        let weights = [
            reasons.withdrawn,
            reasons.transferred_out,
            reasons.merged,
            reasons.other,
        ];
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
            let mut draw = self.rng.f64() * total;
            let mut reason = 3u8;
            for (index, weight) in weights.iter().enumerate() {
                if draw < *weight {
                    reason = index as u8;
                    break;
                }
                draw -= weight;
            }
            let number = self.cases[slot as usize].number;
            let time = cursor.next(1 + self.rng.below(30) as i64);
            self.emit(
                out,
                time,
                CompactEvent::Closed {
                    case: number,
                    reason,
                },
            );
            self.close_slot(slot);
            self.period.closed += 1;
        }
    }
}
