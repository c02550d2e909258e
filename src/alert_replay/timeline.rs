//! Prometheus' alerting-rule state machine, sans IO: given, for each evaluation instant, the label
//! sets the rule's expression returned, it yields each alert's episodes (first pending, firing
//! from, resolved at), applying `for:` and `keep_firing_for:` as Prometheus 2.42+ does
//! (`rules/alerting.go`, `AlertingRule.Eval`):
//!
//! - a series that appears starts a pending alert at that instant (`ActiveAt`);
//! - a pending alert fires at the first evaluation at least `for` after `ActiveAt` (with `for: 0`,
//!   at the evaluation that starts it);
//! - a pending alert whose series disappears is dropped (it never fired);
//! - a firing alert whose series disappears stays firing while less than `keep_firing_for` has
//!   passed since the first evaluation without it, and is resolved at the evaluation where that
//!   time is up (at once without `keep_firing_for`); its series reappearing meanwhile cancels the
//!   countdown;
//! - after a resolution, the series appearing again starts a new pending alert.

use std::collections::BTreeMap;

/// One alert's label set (sorted name → value).
pub type Labels = BTreeMap<String, String>;

/// One activation of an alert: from pending to resolved (or to the end of the range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    pub labels: Labels,
    /// When the expression first returned the series (Prometheus' `activeAt`), in milliseconds.
    pub pending_from: i64,
    /// When the alert started firing, if it did.
    pub firing_from: Option<i64>,
    /// When it was resolved (firing) or dropped (pending); `None`: still active at the end.
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Firing,
}

#[derive(Debug, Clone)]
struct Active {
    state: State,
    active_at: i64,
    fired_at: Option<i64>,
    keep_firing_since: Option<i64>,
}

/// The state machine of one alerting rule. Feed it every evaluation in time order with
/// [`Timeline::evaluate`], then take the episodes with [`Timeline::finish`].
#[derive(Debug)]
pub struct Timeline {
    hold_ms: i64,
    keep_firing_ms: i64,
    active: BTreeMap<Labels, Active>,
    episodes: Vec<Episode>,
}

impl Timeline {
    /// A rule with `for: hold_ms` and `keep_firing_for: keep_firing_ms` (milliseconds, 0 = unset).
    pub fn new(hold_ms: i64, keep_firing_ms: i64) -> Timeline {
        Timeline {
            hold_ms,
            keep_firing_ms,
            active: BTreeMap::new(),
            episodes: Vec::new(),
        }
    }

    /// One evaluation at `at` (milliseconds) whose expression returned `present`.
    pub fn evaluate<'a>(&mut self, at: i64, present: impl IntoIterator<Item = &'a Labels>) {
        let mut seen: std::collections::BTreeSet<&Labels> = std::collections::BTreeSet::new();
        for labels in present {
            seen.insert(labels);
            match self.active.get_mut(labels) {
                Some(alert) => alert.keep_firing_since = None,
                None => {
                    self.active.insert(
                        labels.clone(),
                        Active {
                            state: State::Pending,
                            active_at: at,
                            fired_at: None,
                            keep_firing_since: None,
                        },
                    );
                }
            }
        }
        let mut ended = Vec::new();
        for (labels, alert) in self.active.iter_mut() {
            if !seen.contains(labels) {
                let mut keep_firing = false;
                if alert.state == State::Firing && self.keep_firing_ms > 0 {
                    let since = *alert.keep_firing_since.get_or_insert(at);
                    keep_firing = at - since < self.keep_firing_ms;
                }
                if !keep_firing {
                    ended.push(labels.clone());
                    continue;
                }
            }
            if alert.state == State::Pending && at - alert.active_at >= self.hold_ms {
                alert.state = State::Firing;
                alert.fired_at = Some(at);
            }
        }
        for labels in ended {
            if let Some(alert) = self.active.remove(&labels) {
                self.episodes.push(Episode {
                    labels,
                    pending_from: alert.active_at,
                    firing_from: alert.fired_at,
                    ended_at: Some(at),
                });
            }
        }
    }

    /// Every episode, in the order they started (alerts still active at the end last, unended).
    pub fn finish(mut self) -> Vec<Episode> {
        for (labels, alert) in std::mem::take(&mut self.active) {
            self.episodes.push(Episode {
                labels,
                pending_from: alert.active_at,
                firing_from: alert.fired_at,
                ended_at: None,
            });
        }
        self.episodes
            .sort_by(|a, b| (a.pending_from, &a.labels).cmp(&(b.pending_from, &b.labels)));
        self.episodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn labels(value: &str) -> Labels {
        Labels::from([("track".to_owned(), value.to_owned())])
    }

    /// Runs a rule over evaluations every 5 minutes, `pattern[i]` saying whether the one series
    /// `track="a"` is returned at minute 5·i.
    fn run(hold: i64, keep: i64, pattern: &str) -> Vec<(i64, Option<i64>, Option<i64>)> {
        let mut timeline = Timeline::new(hold * MIN, keep * MIN);
        let a = labels("a");
        for (i, c) in pattern.chars().enumerate() {
            let at = i as i64 * 5 * MIN;
            if c == '#' {
                timeline.evaluate(at, [&a]);
            } else {
                timeline.evaluate(at, []);
            }
        }
        timeline
            .finish()
            .into_iter()
            .map(|e| {
                (
                    e.pending_from / MIN,
                    e.firing_from.map(|t| t / MIN),
                    e.ended_at.map(|t| t / MIN),
                )
            })
            .collect()
    }

    #[test]
    fn without_for_it_fires_at_once_and_resolves_at_once() {
        assert_eq!(
            run(0, 0, "_##__#"),
            [(5, Some(5), Some(15)), (25, Some(25), None)]
        );
    }

    #[test]
    fn for_holds_it_pending_and_a_gap_drops_it() {
        // for: 15m. Pending from 5; the gap at 20 drops it; pending again from 25, fires at 40.
        assert_eq!(
            run(15, 0, "_###_#####_"),
            [(5, None, Some(20)), (25, Some(40), Some(50))]
        );
        // Exactly `for` after activeAt fires (>=).
        assert_eq!(run(10, 0, "###"), [(0, Some(10), None)]);
    }

    #[test]
    fn keep_firing_for_bridges_gaps_shorter_than_it() {
        // keep_firing_for: 10m. Firing from 0; absent at 10 and 15 (kept: 0 and 5 minutes since
        // 10 < 10m), back at 20: one episode. Then absent from 30: kept at 30 and 35, resolved at
        // 40 (10 minutes since 30 is not less than 10m).
        assert_eq!(run(0, 10, "##__##_____"), [(0, Some(0), Some(40))]);
    }

    #[test]
    fn keep_firing_for_does_not_keep_a_pending_alert() {
        assert_eq!(run(15, 60, "##__"), [(0, None, Some(10))]);
    }

    #[test]
    fn series_are_independent() {
        let mut timeline = Timeline::new(5 * MIN, 0);
        let (a, b) = (labels("a"), labels("b"));
        timeline.evaluate(0, [&a]);
        timeline.evaluate(5 * MIN, [&a, &b]);
        timeline.evaluate(10 * MIN, [&b]);
        let episodes = timeline.finish();
        assert_eq!(episodes.len(), 2);
        assert_eq!(
            (
                episodes[0].labels.clone(),
                episodes[0].firing_from,
                episodes[0].ended_at
            ),
            (a, Some(5 * MIN), Some(10 * MIN))
        );
        assert_eq!(
            (
                episodes[1].labels.clone(),
                episodes[1].firing_from,
                episodes[1].ended_at
            ),
            (b, Some(10 * MIN), None)
        );
    }
}
