//! Event-time counts over sliding windows, in fixed-width time buckets, so memory depends on the
//! window lengths and never on the event rate.
//!
//! A count for window W at `now` covers events with `now − W < t ≤ now`. With buckets of width `b`,
//! the lower edge is rounded to a bucket boundary, so it may be off by less than `b`; the width is
//! chosen as at most W/1000 of the shortest window (SPEC §2).

use std::collections::VecDeque;

use super::time::{EpochNanos, NANOS_PER_SECOND};

/// Counts per bucket for one series; the oldest bucket first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollingCounter {
    /// Bucket index (t / width) of `buckets[0]`.
    first: i64,
    buckets: VecDeque<u64>,
}

/// The shape shared by every counter of one family: bucket width and how much history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingShape {
    pub width: EpochNanos,
    /// Buckets kept: enough for the longest window plus the future skew.
    pub kept: i64,
}

impl RollingShape {
    /// A shape for the given window lengths (nanoseconds): width = shortest / 1000 (at least one
    /// second), history = longest window.
    pub fn for_windows(windows: &[EpochNanos]) -> RollingShape {
        let shortest = windows
            .iter()
            .copied()
            .min()
            .unwrap_or(NANOS_PER_SECOND * 1000);
        let longest = windows.iter().copied().max().unwrap_or(0);
        let width = (shortest / 1000).max(NANOS_PER_SECOND);
        RollingShape {
            width,
            kept: longest / width + 2,
        }
    }
}

impl RollingCounter {
    /// Adds `n` at event time `t`. Events older than the kept history are not counted (they are
    /// outside every window); events ahead of `now` are kept and counted once `now` reaches them.
    pub fn add(&mut self, shape: RollingShape, t: EpochNanos, n: u64) {
        let bucket = t.div_euclid(shape.width);
        if self.buckets.is_empty() {
            self.first = bucket;
            self.buckets.push_back(n);
            return;
        }
        if bucket < self.first {
            let last = self.first + self.buckets.len() as i64 - 1;
            if last - bucket >= shape.kept {
                return;
            }
            for _ in bucket..self.first {
                self.buckets.push_front(0);
            }
            self.first = bucket;
        }
        let offset = (bucket - self.first) as usize;
        if offset >= self.buckets.len() {
            self.buckets.resize(offset + 1, 0);
        }
        self.buckets[offset] += n;
        self.trim(shape);
    }

    /// Sum over events with `now − window < t ≤ now` (at bucket resolution).
    pub fn sum(&self, shape: RollingShape, now: EpochNanos, window: EpochNanos) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let newest = now.div_euclid(shape.width);
        let oldest = (now - window).div_euclid(shape.width) + 1;
        let from = (oldest - self.first).max(0);
        let to = (newest - self.first).min(self.buckets.len() as i64 - 1);
        if to < from {
            return 0;
        }
        self.buckets
            .range(from as usize..=to as usize)
            .copied()
            .sum()
    }

    /// Drops buckets older than the kept history, counted from the newest bucket.
    fn trim(&mut self, shape: RollingShape) {
        let excess = self.buckets.len() as i64 - shape.kept;
        for _ in 0..excess.max(0) {
            self.buckets.pop_front();
            self.first += 1;
        }
    }

    /// Drops history that every window has left behind at `now`.
    pub fn expire(&mut self, shape: RollingShape, now: EpochNanos) {
        let oldest_kept = now.div_euclid(shape.width) - shape.kept + 1;
        while !self.buckets.is_empty() && self.first < oldest_kept {
            self.buckets.pop_front();
            self.first += 1;
        }
    }

    /// The same counts in buckets of another shape (after a configuration change): each old bucket's
    /// count moves to the new bucket holding the old bucket's start.
    pub fn rebucket(&self, from: RollingShape, to: RollingShape) -> RollingCounter {
        if from == to {
            return self.clone();
        }
        let mut out = RollingCounter::default();
        for (offset, &count) in self.buckets.iter().enumerate() {
            if count > 0 {
                out.add(to, (self.first + offset as i64) * from.width, count);
            }
        }
        out
    }

    /// (first bucket index, counts), for snapshots.
    pub fn export(&self) -> (i64, Vec<u64>) {
        (self.first, self.buckets.iter().copied().collect())
    }

    pub fn import(first: i64, counts: Vec<u64>) -> RollingCounter {
        RollingCounter {
            first,
            buckets: counts.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60 * NANOS_PER_SECOND;
    const DAY: i64 = 1440 * MIN;

    #[test]
    fn window_includes_now_and_excludes_its_lower_edge() {
        let shape = RollingShape::for_windows(&[7 * DAY, 28 * DAY]);
        assert_eq!(shape.width, 7 * DAY / 1000);
        let mut counter = RollingCounter::default();
        let now = 100 * DAY;
        counter.add(shape, now, 1);
        counter.add(shape, now - 3 * DAY, 2);
        counter.add(shape, now - 10 * DAY, 4);
        counter.add(shape, now + MIN * 20, 8);
        assert_eq!(counter.sum(shape, now, 7 * DAY), 3);
        assert_eq!(counter.sum(shape, now, 28 * DAY), 7);
        // The future event counts once now reaches it.
        assert_eq!(counter.sum(shape, now + MIN * 21, 7 * DAY), 11);
        // Eight days on, every event has left the 7-day window but not the 28-day one.
        assert_eq!(counter.sum(shape, now + 8 * DAY, 7 * DAY), 0);
        assert_eq!(counter.sum(shape, now + 8 * DAY, 28 * DAY), 15);
        assert_eq!(counter.sum(shape, now + 40 * DAY, 28 * DAY), 0);
    }

    #[test]
    fn memory_is_bounded_by_the_window_not_the_events() {
        let shape = RollingShape::for_windows(&[7 * DAY]);
        let mut counter = RollingCounter::default();
        for minute in 0..(60 * 24 * 60) {
            counter.add(shape, minute * MIN, 1);
        }
        assert!(counter.buckets.len() as i64 <= shape.kept);
        let now = 60 * DAY - MIN;
        // One event a minute for the last 7 days, give or take one bucket at the lower edge.
        let sum = counter.sum(shape, now, 7 * DAY) as i64;
        assert!((sum - 7 * 1440).abs() <= shape.width / MIN + 1, "{sum}");
        // Too old to matter: ignored.
        counter.add(shape, 0, 1000);
        assert_eq!(counter.sum(shape, now, 7 * DAY) as i64, sum);
        counter.expire(shape, now + 30 * DAY);
        assert!(counter.buckets.is_empty());
    }
}
