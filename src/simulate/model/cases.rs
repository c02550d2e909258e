//! Cases: the stock on day 0, new applications, the queue of unassigned cases, closing, and the
//! scheduled resumptions and reopenings (slot B).

use super::{CaseSlot, CompactEvent, NONE, Pending, Sim, remove_item};
use crate::simulate::time::{DAY, HOUR};

impl Sim {
    pub(super) fn stock(&mut self, out: &mut Vec<Pending>, start: i64) {
        let count = (self.scenario.cases.initial_open * self.case_factor).round() as u64;
        let (min_age_days, max_age_days) = (
            self.scenario.cases.initial_age_days[0],
            self.scenario.cases.initial_age_days[1],
        );
        let mut received: Vec<i64> = (0..count)
            .map(|_| {
                start
                    - i64::from(self.rng.between(min_age_days, max_age_days)) * DAY
                    - self.rng.below(DAY as u64) as i64
            })
            .collect();
        // Oldest first, so the queue is worked first-in, first-out.
        received.sort_unstable();
        for at in received {
            let time = start + self.rng.below(7 * HOUR as u64) as i64;
            self.register(out, time, Some(at.min(time)));
        }
    }

    pub(super) fn register(&mut self, out: &mut Vec<Pending>, time: i64, received: Option<i64>) {
        let number = self.next_case;
        self.next_case += 1;
        let location = self.rng.index(self.scenario.cases.locations.len()) as u16;
        let slot = self.open_case(number, received.unwrap_or(time), location);
        self.emit(
            out,
            time,
            CompactEvent::Registered {
                case: number,
                received,
                location,
            },
        );
        self.enqueue(slot, false);
        self.period.registered += 1;
    }

    fn open_case(&mut self, number: u64, received: i64, location: u16) -> u32 {
        let mut case = CaseSlot {
            number,
            deadline: received + self.period_secs,
            suspended_at: 0,
            remaining: self.scenario.cases.phase_effort[0],
            employee: NONE,
            open_pos: self.open.len() as u32,
            queue_token: 0,
            blocked_until: 0,
            location,
            step: 0,
            phase_emitted: false,
            hearing_done: false,
            suspended: false,
            live: true,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                // Keep the token rising so queue entries of the slot's previous case stay stale.
                case.queue_token = self.cases[slot as usize].queue_token.wrapping_add(1);
                self.cases[slot as usize] = case;
                slot
            }
            None => {
                self.cases.push(case);
                (self.cases.len() - 1) as u32
            }
        };
        self.open.push(slot);
        slot
    }

    pub(super) fn enqueue(&mut self, slot: u32, front: bool) {
        let case = &mut self.cases[slot as usize];
        case.queue_token = case.queue_token.wrapping_add(1);
        let entry = (slot, case.queue_token);
        if front {
            self.queue.push_front(entry);
        } else {
            self.queue.push_back(entry);
        }
    }

    pub(super) fn pop_queue(&mut self) -> Option<u32> {
        while let Some((slot, token)) = self.queue.pop_front() {
            let case = &self.cases[slot as usize];
            if case.live && case.employee == NONE && case.queue_token == token {
                return Some(slot);
            }
        }
        None
    }

    /// Takes the case out of its employee's hands (no event: the caller emits what applies).
    pub(super) fn detach(&mut self, slot: u32) {
        let employee = self.cases[slot as usize].employee;
        if employee != NONE {
            remove_item(&mut self.employees[employee as usize].cases, slot);
            self.cases[slot as usize].employee = NONE;
        }
    }

    pub(super) fn close_slot(&mut self, slot: u32) {
        self.detach(slot);
        let pos = self.cases[slot as usize].open_pos as usize;
        self.open.swap_remove(pos);
        if let Some(&moved) = self.open.get(pos) {
            self.cases[moved as usize].open_pos = pos as u32;
        }
        self.cases[slot as usize].live = false;
        self.free.push(slot);
    }

    pub(super) fn resume(&mut self, out: &mut Vec<Pending>, start: i64, slot: u32, number: u64) {
        let case = &self.cases[slot as usize];
        if !(case.live && case.number == number && case.suspended) {
            return;
        }
        let time = start + self.rng.below(7 * HOUR as u64) as i64;
        let case = &mut self.cases[slot as usize];
        case.deadline += (time - case.suspended_at).max(0);
        case.suspended = false;
        self.emit(out, time, CompactEvent::Resumed { case: number });
    }

    pub(super) fn reopen(
        &mut self,
        out: &mut Vec<Pending>,
        start: i64,
        number: u64,
        location: u16,
    ) {
        let time = start + self.rng.below(7 * HOUR as u64) as i64;
        let slot = self.open_case(number, time, location);
        self.emit(out, time, CompactEvent::Reopened { case: number });
        self.enqueue(slot, false);
        self.period.registered += 1;
    }

    pub(super) fn random_open(&mut self) -> Option<u32> {
        if self.open.is_empty() {
            None
        } else {
            Some(self.open[self.rng.index(self.open.len())])
        }
    }
}
