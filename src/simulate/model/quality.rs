//! Quality audits of recent decisions (slot F).

use super::{CompactEvent, Cursor, Pending, Sim, lerp};
use crate::simulate::time::HOUR;

impl Sim {
    pub(super) fn audits(&mut self, out: &mut Vec<Pending>, start: i64, day: u32) {
        let audits = &self.scenario.audits;
        if day < audits.from_day || day >= audits.until_day {
            return;
        }
        let pass = lerp(
            audits.pass_share,
            audits.pass_share_under_pressure,
            self.pressure,
        );
        let per_day = audits.per_week
            / if self.scenario.calendar.weekend_work {
                7.0
            } else {
                5.0
            };
        let mut cursor = Cursor::new(start + 17 * HOUR + 30 * 60, start + 18 * HOUR - 1);
        for _ in 0..self.rng.poisson(per_day) {
            let passed = self.rng.chance(pass);
            let case = if self.recent.is_empty() {
                None
            } else {
                Some(self.recent[self.rng.index(self.recent.len())])
            };
            self.period.audits += 1;
            self.period.audits_passed += u64::from(passed);
            let time = cursor.next(1 + self.rng.below(60) as i64);
            self.emit(out, time, CompactEvent::Audit { passed, case });
        }
    }
}
