//! Quality audits of recent decisions (slot F).

use super::{Cursor, Ev, Pending, Sim, lerp};
use crate::simulate::time::HOUR;

impl Sim {
    pub(super) fn audits(&mut self, out: &mut Vec<Pending>, start: i64, d: u32) {
        let a = &self.s.audits;
        if d < a.from_day || d >= a.until_day {
            return;
        }
        let pass = lerp(a.pass_share, a.pass_share_under_pressure, self.pressure);
        let per_day = a.per_week
            / if self.s.calendar.weekend_work {
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
            let t = cursor.next(1 + self.rng.below(60) as i64);
            self.emit(out, t, Ev::Audit { passed, case });
        }
    }
}
