//! The derived data of the open cases: their classification (due soon, overdue, penalty days), the
//! timer index of the next change, the overdue index and the gauges, kept by `attach`/`detach` and
//! recomputed from scratch by `rebuild_derived`.

use super::{Case, Class, NO_TIMER, NONE, State};
use crate::aggregates::Aggregates;
use crate::time::{EpochNanos, NANOS_PER_DAY, from_nanos, to_nanos_saturating};

impl State {
    /// Recomputes every gauge, the timer index and the overdue index from the cases themselves, at
    /// the state's current `now`. Used after loading a snapshot and after a settings change; the tests
    /// use it to check that incremental maintenance equals recomputation.
    pub fn rebuild_derived(&mut self) {
        self.locations
            .reset(&mut self.aggregates, self.settings.max_locations as usize);
        for track in &mut self.aggregates.tracks {
            track.reset_gauges();
            track
                .due_soon_by_window
                .resize(self.settings.due_soon_windows.len(), 0);
        }
        self.timers.clear();
        for set in &mut self.overdue_by_track {
            set.clear();
        }
        for employee in &mut self.employees {
            employee.open_cases = 0;
        }
        for case in &mut self.cases {
            case.class = Class::default();
            case.timer = NO_TIMER;
        }
        for index in 0..self.cases.len() as u32 {
            self.attach(index);
        }
    }

    pub(super) fn count_employee(&mut self, index: u32, delta: i64) {
        let e = &self.employees[index as usize];
        let slot = Aggregates::employee_slot(e.role, e.contract, e.experienced);
        self.aggregates.employees[slot] += delta;
    }

    /// Applies `change` to an open case, keeping the aggregates in step.
    pub(super) fn update_open_case(&mut self, index: u32, change: impl FnOnce(&mut Case)) {
        self.detach(index);
        change(&mut self.cases[index as usize]);
        self.attach(index);
    }

    /// Adds an open case's contributions to the aggregates, classified at `self.now`, and schedules
    /// its next classification change.
    pub(super) fn attach(&mut self, index: u32) {
        if !self.cases[index as usize].open {
            return;
        }
        let class = self.classify(index);
        let next = self.next_change(index, class);
        let case = &mut self.cases[index as usize];
        case.class = class;
        if let Some(at) = next {
            case.timer = at;
            self.timers.insert((at, index));
        }
        self.count(index, class, 1);
    }

    /// Removes exactly what `attach` added.
    pub(super) fn detach(&mut self, index: u32) {
        let case = &mut self.cases[index as usize];
        if !case.open {
            return;
        }
        let class = std::mem::take(&mut case.class);
        if case.timer != NO_TIMER {
            self.timers.remove(&(case.timer, index));
            case.timer = NO_TIMER;
        }
        self.count(index, class, -1);
    }

    /// Adds (`delta` = 1) or removes (`delta` = -1) the contributions of an open case with `class`
    /// to every gauge and to the overdue index.
    fn count(&mut self, index: u32, class: Class, delta: i64) {
        let case = &self.cases[index as usize];
        let (track, location, phase) = (
            usize::from(case.track),
            case.location,
            usize::from(case.phase),
        );
        let (employee, suspended, deadline) = (case.employee, case.suspended, case.deadline);
        let penalty = self.settings.tracks[track]
            .penalty
            .accrued_cents(class.penalty_days);
        self.locations.count(
            &mut self.aggregates,
            self.settings.max_locations as usize,
            track,
            location,
            class.overdue,
            delta,
        );
        let t = &mut self.aggregates.tracks[track];
        t.open_by_phase[phase] += delta;
        if suspended {
            t.suspended += delta;
        }
        if employee == NONE {
            t.unassigned += delta;
        } else {
            let open_cases = &mut self.employees[employee as usize].open_cases;
            *open_cases = open_cases.wrapping_add_signed(delta as i32);
        }
        if class.overdue {
            t.penalty_exposure_cents += delta * penalty;
            if delta > 0 {
                self.overdue_by_track[track].insert((deadline, index));
            } else {
                self.overdue_by_track[track].remove(&(deadline, index));
            }
        }
        for (w, count) in t.due_soon_by_window.iter_mut().enumerate() {
            if class.due_soon_mask >> w & 1 == 1 {
                *count += delta;
            }
        }
    }

    fn classify(&self, index: u32) -> Class {
        let case = &self.cases[index as usize];
        if !case.open || case.suspended {
            return Class::default();
        }
        let now = self.now;
        if now > case.deadline {
            Class {
                due_soon_mask: 0,
                overdue: true,
                penalty_days: self.penalty_days(usize::from(case.track), case.deadline, now),
            }
        } else {
            let mut mask = 0u8;
            for (w, window) in self.settings.due_soon_windows.iter().enumerate() {
                if case.deadline <= now.saturating_add(window.nanos()) {
                    mask |= 1 << w;
                }
            }
            Class {
                due_soon_mask: mask,
                overdue: false,
                penalty_days: 0,
            }
        }
    }

    /// The next instant after `self.now` at which `classify` gives a different answer, if any.
    fn next_change(&self, index: u32, class: Class) -> Option<EpochNanos> {
        // The instants below saturate at `i64::MAX`; at the end of time there is no later one, and
        // a timer at or before `now` would be rescheduled by `advance` forever.
        self.next_change_saturating(index, class)
            .filter(|&at| at > self.now)
    }

    fn next_change_saturating(&self, index: u32, class: Class) -> Option<EpochNanos> {
        let case = &self.cases[index as usize];
        if !case.open || case.suspended {
            return None;
        }
        if class.overdue {
            let track = &self.settings.tracks[usize::from(case.track)];
            if class.penalty_days >= track.penalty.cap_days() {
                return None;
            }
            let start = self.penalty_start(usize::from(case.track), case.deadline);
            let next_day = i64::from(class.penalty_days) + 1;
            Some(start.saturating_add(next_day.saturating_mul(NANOS_PER_DAY)))
        } else {
            let becomes_overdue = case.deadline.saturating_add(1);
            let enters_window = self
                .settings
                .due_soon_windows
                .iter()
                .enumerate()
                .filter(|(w, _)| class.due_soon_mask >> w & 1 == 0)
                .map(|(_, window)| case.deadline.saturating_sub(window.nanos()));
            enters_window.chain([becomes_overdue]).min()
        }
    }

    /// Start of penalty accrual: deadline + the track's grace, in calendar arithmetic.
    fn penalty_start(&self, track: usize, deadline: EpochNanos) -> EpochNanos {
        let grace = self.settings.tracks[track].penalty_grace;
        if grace.is_zero() {
            deadline
        } else {
            to_nanos_saturating(self.settings.add_calendar(from_nanos(deadline), grace))
        }
    }

    /// Whole 24-hour periods elapsed since deadline + grace at `at`, capped at the schedule's end.
    pub(super) fn penalty_days(&self, track: usize, deadline: EpochNanos, at: EpochNanos) -> u32 {
        let start = self.penalty_start(track, deadline);
        let cap = self.settings.tracks[track].penalty.cap_days();
        if at < start {
            return 0;
        }
        let days = at.saturating_sub(start) / NANOS_PER_DAY;
        u32::try_from(days).unwrap_or(u32::MAX).min(cap)
    }
}

#[cfg(test)]
mod end_of_time_tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use jiff::Span;

    use super::*;
    use crate::Applied;
    use crate::event::{Event, EventKind};
    use crate::settings::CoreSettings;
    use crate::time::NANOS_PER_SECOND;

    /// Regression (found by fuzz/event_sequence, see docs/fuzzing.md): at the last representable
    /// instant, a case whose next classification change saturated to `i64::MAX` (a deadline at the
    /// end of time, or a penalty start pushed there by the grace period) was rescheduled at `now`
    /// again and again, so `advance` never returned.
    #[test]
    fn advance_to_the_end_of_time_returns() {
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let mut settings = CoreSettings::example();
            settings.tracks[0].penalty_grace = Span::new().days(2);
            let mut state = State::new(settings);
            let now = 1_735_689_600 * NANOS_PER_SECOND;
            // Events cannot name an instant after 2189 any more, but a resumption still moves a
            // deadline later by the time suspended, saturating at the end of time: suspended from
            // `since` until `now`, a deadline in 2189 lands at `target`.
            let deadline = crate::time::to_supported_nanos(
                "2189-01-01T00:00:00Z".parse().expect("a valid timestamp"),
            )
            .expect("in the supported range");
            for (case, target) in [("due", i64::MAX), ("overdue", i64::MAX - NANOS_PER_DAY)] {
                let since = if target == i64::MAX {
                    crate::time::MIN_SUPPORTED
                } else {
                    deadline + now - target
                };
                let event = |kind: &str, at: EpochNanos| Event {
                    id: format!("{case}-{kind}"),
                    time: from_nanos(at),
                    kind: match kind {
                        "registered" => EventKind::CaseRegistered {
                            case: case.into(),
                            track: "asylum".into(),
                            received_at: None,
                            location: None,
                            deadline: Some(from_nanos(deadline)),
                        },
                        "suspended" => EventKind::CaseSuspended { case: case.into() },
                        _ => EventKind::CaseResumed { case: case.into() },
                    },
                };
                for (kind, at) in [
                    ("registered", since),
                    ("suspended", since),
                    ("resumed", now),
                ] {
                    assert_eq!(
                        state.apply(&event(kind, at), now),
                        Ok(Applied::New),
                        "{case} {kind}"
                    );
                }
                let index = state.case_ids.get(case).expect("registered");
                assert_eq!(state.cases[index as usize].deadline, target, "{case}");
            }
            state.advance(i64::MAX);
            let mut recomputed = state.clone();
            recomputed.rebuild_derived();
            assert_eq!(recomputed.aggregates(), state.aggregates());
            assert_eq!(state.aggregates().tracks[0].overdue(), 1);
            assert_eq!(state.aggregates().tracks[0].open(), 2);
            done.send(()).expect("the test waits");
        });
        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("advance(i64::MAX) returns, and the checks after it pass");
    }
}
