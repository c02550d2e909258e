//! The time integral of a headcount over a sliding window, by event time: how many employee-weeks
//! of presence a window holds, kept incrementally from the changes (join, leave, change of class),
//! never by scanning employees.
//!
//! Each change of `delta` at event time `t` is added to the bucket of `t` (the same bucket grid as
//! the rolling counters) as the pair (Σ delta, Σ delta × t). The integral over `(L, now]`, where
//! `L` is the start of the window's oldest bucket, is then
//!
//! `H(L) × (now − L) + Σ over buckets from L's (Σ delta × now − Σ delta × t)`,
//!
//! with `H(L)` the headcount before `L`: the `base` (all changes folded out of the kept history)
//! plus the changes in older kept buckets. That is exact for every change inside the window, and a
//! change within the oldest bucket counts from its exact time too; only the window's lower edge is
//! rounded to a bucket, as for the rolling counters. Memory: one entry per bucket that holds a
//! change, at most the kept history of the shape.

use std::collections::BTreeMap;

use super::rolling::RollingShape;
use super::time::EpochNanos;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresenceIntegral {
    /// The headcount made of the changes older than the kept history.
    base: i64,
    /// Bucket index → (Σ delta, Σ delta × t in nanoseconds).
    buckets: BTreeMap<i64, (i64, i128)>,
}

impl PresenceIntegral {
    /// Records a headcount change of `delta` at event time `t`, as seen at `now`.
    pub fn change(&mut self, shape: RollingShape, now: EpochNanos, t: EpochNanos, delta: i64) {
        self.expire(shape, now);
        let bucket = t.div_euclid(shape.width);
        if bucket < shape.oldest_kept(now) {
            self.base = self.base.saturating_add(delta);
            return;
        }
        let entry = self.buckets.entry(bucket).or_insert((0, 0));
        entry.0 = entry.0.saturating_add(delta);
        entry.1 = entry.1.saturating_add(i128::from(delta) * i128::from(t));
        if *entry == (0, 0) {
            self.buckets.remove(&bucket);
        }
    }

    /// Folds the buckets every window has left behind at `now` into the base.
    pub fn expire(&mut self, shape: RollingShape, now: EpochNanos) {
        let oldest = shape.oldest_kept(now);
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() >= oldest {
                break;
            }
            self.base = self.base.saturating_add(entry.remove().0);
        }
    }

    /// The headcount after every recorded change (for the consistency checks).
    pub fn current(&self) -> i64 {
        self.buckets
            .values()
            .fold(self.base, |total, &(delta, _)| total.saturating_add(delta))
    }

    /// Employee-nanoseconds of presence in the window of length `window` ending at `now` (never
    /// negative; changes dated after `now` do not count yet).
    pub fn integral(&self, shape: RollingShape, now: EpochNanos, window: EpochNanos) -> i128 {
        let oldest = now
            .saturating_sub(window)
            .div_euclid(shape.width)
            .saturating_add(1);
        let lower = oldest.saturating_mul(shape.width).min(now);
        // Saturating throughout: the values of a damaged snapshot must not overflow.
        let mut before = self.base;
        let mut inside: i128 = 0;
        for (&bucket, &(delta, moment)) in &self.buckets {
            if bucket < oldest {
                before = before.saturating_add(delta);
            } else {
                inside = inside
                    .saturating_add((i128::from(delta) * i128::from(now)).saturating_sub(moment));
            }
        }
        (i128::from(before) * i128::from(now.saturating_sub(lower)))
            .saturating_add(inside)
            .max(0)
    }

    /// Moves the changes onto another bucket grid (each bucket to the new bucket of its start).
    pub fn rebucket(&self, from: RollingShape, to: RollingShape, now: EpochNanos) -> Self {
        let mut out = PresenceIntegral {
            base: self.base,
            buckets: BTreeMap::new(),
        };
        for (&bucket, &(delta, moment)) in &self.buckets {
            let start = bucket.saturating_mul(from.width);
            let new = start.div_euclid(to.width);
            if new < to.oldest_kept(now) {
                out.base = out.base.saturating_add(delta);
                continue;
            }
            let entry = out.buckets.entry(new).or_insert((0, 0));
            entry.0 = entry.0.saturating_add(delta);
            entry.1 = entry.1.saturating_add(moment);
        }
        out.buckets.retain(|_, entry| *entry != (0, 0));
        out
    }

    /// (base, [(bucket, Σ delta, Σ delta × t)]) for snapshots.
    pub fn export(&self) -> (i64, Vec<(i64, i64, i128)>) {
        (
            self.base,
            self.buckets.iter().map(|(&b, &(d, m))| (b, d, m)).collect(),
        )
    }

    pub fn import(base: i64, buckets: Vec<(i64, i64, i128)>) -> Self {
        let mut out = PresenceIntegral {
            base,
            buckets: BTreeMap::new(),
        };
        for (bucket, delta, moment) in buckets {
            let entry = out.buckets.entry(bucket).or_insert((0, 0));
            entry.0 = entry.0.saturating_add(delta);
            entry.1 = entry.1.saturating_add(moment);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::NANOS_PER_DAY;

    fn shape() -> RollingShape {
        RollingShape::for_windows(&[7 * NANOS_PER_DAY, 28 * NANOS_PER_DAY])
    }

    #[test]
    fn integral_counts_presence_from_the_exact_times_of_changes() {
        let shape = shape();
        let day = NANOS_PER_DAY;
        let now = 1000 * day;
        let mut p = PresenceIntegral::default();
        // Two present since long ago, one joins 7 days ago, one leaves 14 days ago (out of order).
        p.change(shape, now, 10 * day, 2);
        p.change(shape, now, now - 7 * day, 1);
        p.change(shape, now, now - 14 * day, -1);
        assert_eq!(p.current(), 2);
        // Employee-days, the lower edge exact to a bucket (at most headcount × width short).
        let days = |n: i128| n as f64 * (shape.width as f64 / day as f64);
        let close = |got: i128, want: f64, headcount: f64| {
            let got = got as f64 / day as f64;
            assert!(
                want - got >= 0.0 && want - got <= headcount * days(1) + 1e-9,
                "{got} vs {want}"
            );
        };
        // 28-day window: 2 × 28 + 7 − 14 employee-days.
        close(
            p.integral(shape, now, 28 * day),
            (2 * 28 + 7 - 14) as f64,
            2.0,
        );
        // 7-day window: the join (at its lower edge) counts, the leave is before: 2 × 7.
        close(p.integral(shape, now, 7 * day), 14.0, 2.0);
        // A year later, only the current headcount counts; the history has been folded away.
        let later = now + 365 * day;
        p.expire(shape, later);
        close(p.integral(shape, later, 28 * day), 56.0, 2.0);
        assert_eq!(p.export().1.len(), 0);
        let coarse = RollingShape::for_windows(&[28 * NANOS_PER_DAY]);
        let moved = p.rebucket(shape, coarse, later);
        let got = moved.integral(coarse, later, 28 * day) as f64 / day as f64;
        assert!((got - 56.0).abs() < 0.2, "{got}");
    }
}
