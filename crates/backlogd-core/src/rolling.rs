//! Event-time counts over sliding windows, in fixed-width time buckets, so memory depends on the
//! window lengths and never on the event rate.
//!
//! A count for window W at `now` covers events with `now − W < t ≤ now`. With buckets of width `b`,
//! the lower edge is rounded to a bucket boundary, so it may be off by less than `b`; the width is
//! chosen as at most W/1000 of the shortest window (docs/metrics.md, rolling windows). The upper edge is exact: an event
//! ahead of `now` when it is added waits in a short list of exact times and counts once `now`
//! reaches it (see `RollingCounter::ahead`).
//!
//! Memory per counter is bounded by the shape, whatever the event times: the buckets cover at most
//! `[now − kept, now]` (an event older than that can never count in any window and is dropped when
//! it arrives), and the list of events ahead of `now` holds at most `MAX_AHEAD` entries.
//!
//! Reading is O(1) per window: each counter keeps a running sum for every window of its shape,
//! raised when an event lands in a bucket inside that window and lowered when the window's lower
//! edge passes a bucket (`RollingCounter::expire`). A publish then costs O(series × windows), not
//! O(buckets); the bucket walk remains only for a window the shape does not know, and for a
//! reading at a `now` earlier than the counter's own.

use std::collections::VecDeque;

use super::time::{EpochNanos, NANOS_PER_SECOND};

/// Distinct event times kept ahead of `now` per counter. Events ahead of the daemon's clock come from
/// senders whose clocks run a little fast (at most `ingest.max_future_skew`), so a few entries are
/// normal; past this many, the two closest entries merge (see `RollingCounter::add_ahead`).
pub const MAX_AHEAD: usize = 256;

/// Windows per shape with a running sum: the rolling windows (at most 8, `config`) and the
/// forecast window.
pub const MAX_SUMS: usize = 9;

/// Counts per bucket for one series; the oldest bucket first.
#[derive(Debug, Clone, Default)]
pub struct RollingCounter {
    /// Bucket index (t / width) of `buckets[0]`.
    first: i64,
    /// Counts of events with `t ≤ now` (the `now` of the call that added them), never further back
    /// than `kept` buckets from the newest `now` seen.
    buckets: VecDeque<u64>,
    /// (exact event time, count) of events that were ahead of `now` when added, sorted by time.
    /// They move into `buckets` once a later call's `now` reaches them; until then `sum` counts them
    /// by their exact time, so an event ahead of `now` never counts early, not even within the
    /// current bucket.
    ahead: Vec<(EpochNanos, u64)>,
    /// The running sums, one per window of the shape (empty until the first `add` or `expire`
    /// builds them from the buckets).
    sums: Vec<WindowSum>,
    /// The latest `now` the sums were brought to.
    seen: EpochNanos,
    /// The earliest `now` at which some window's lower edge passes a bucket: until then `expire`
    /// has no sum to lower.
    next_edge: EpochNanos,
}

/// The sum of the buckets from `from` on (every bucket up to `now` is inside the window: events
/// ahead of `now` wait outside the buckets).
#[derive(Debug, Clone, Copy, Default)]
struct WindowSum {
    window: EpochNanos,
    /// Oldest bucket index inside the window at `seen`.
    from: i64,
    total: u64,
}

/// Equal counts are equal counters, whatever the running sums' progress.
impl PartialEq for RollingCounter {
    fn eq(&self, other: &Self) -> bool {
        self.first == other.first && self.buckets == other.buckets && self.ahead == other.ahead
    }
}

impl Eq for RollingCounter {}

/// The oldest bucket inside a window of length `window` ending at `now`: the lower edge at bucket
/// resolution is the start of the bucket after the one holding `now − window`.
fn oldest_in_window(width: EpochNanos, now: EpochNanos, window: EpochNanos) -> i64 {
    now.saturating_sub(window)
        .div_euclid(width)
        .saturating_add(1)
}

/// The shape shared by every counter of one family: bucket width and how much history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingShape {
    pub width: EpochNanos,
    /// Buckets kept, counted back from the bucket of `now`: enough for the longest window.
    pub kept: i64,
    /// The windows read with a running sum (the first `window_count`; distinct).
    windows: [EpochNanos; MAX_SUMS],
    window_count: u8,
}

impl RollingShape {
    /// A shape for the given window lengths (nanoseconds): width = shortest / 1000 (at least one
    /// second), history = longest window. The configuration bounds longest / shortest (see
    /// `crate::config::MAX_WINDOW_RATIO`), which bounds `kept`, and so each counter's memory.
    pub fn for_windows(windows: &[EpochNanos]) -> RollingShape {
        let shortest = windows
            .iter()
            .copied()
            .min()
            .unwrap_or(NANOS_PER_SECOND * 1000);
        let longest = windows.iter().copied().max().unwrap_or(0).max(0);
        let width = (shortest / 1000).max(NANOS_PER_SECOND);
        let mut shape = RollingShape {
            width,
            kept: (longest / width).saturating_add(2),
            windows: [0; MAX_SUMS],
            window_count: 0,
        };
        for &window in windows {
            let known = &shape.windows[..usize::from(shape.window_count)];
            if usize::from(shape.window_count) < MAX_SUMS && window > 0 && !known.contains(&window)
            {
                shape.windows[usize::from(shape.window_count)] = window;
                shape.window_count += 1;
            }
        }
        shape
    }

    /// A shape as stored in a snapshot: only the bucket width matters (the counter is rebucketed
    /// to the current shape at once); no history limit and no running sums.
    pub fn stored(width: EpochNanos) -> RollingShape {
        RollingShape {
            width,
            kept: i64::MAX,
            windows: [0; MAX_SUMS],
            window_count: 0,
        }
    }

    fn windows(&self) -> &[EpochNanos] {
        &self.windows[..usize::from(self.window_count)]
    }

    /// The oldest bucket index still kept at `now`.
    pub fn oldest_kept(&self, now: EpochNanos) -> i64 {
        now.div_euclid(self.width)
            .saturating_sub(self.kept)
            .saturating_add(1)
    }
}

impl RollingCounter {
    /// Adds `n` at event time `t`, as seen at `now` (the caller's clock, never moving backwards
    /// between calls on one counter). An event older than the kept history is dropped (it is outside
    /// every window, now and later); an event ahead of `now` counts once `now` reaches it.
    pub fn add(&mut self, shape: RollingShape, now: EpochNanos, t: EpochNanos, n: u64) {
        self.expire(shape, now);
        if t > now {
            self.add_ahead(t, n);
        } else {
            self.add_to_bucket(shape, now, t, n);
        }
    }

    /// Sum over events with `now − window < t ≤ now` (the lower edge at bucket resolution).
    pub fn sum(&self, shape: RollingShape, now: EpochNanos, window: EpochNanos) -> u64 {
        let oldest = oldest_in_window(shape.width, now, window);
        let ahead = self
            .ahead
            .iter()
            .take_while(|&&(t, _)| t <= now)
            .filter(|&&(t, _)| t.div_euclid(shape.width) >= oldest)
            .fold(0u64, |total, &(_, n)| total.saturating_add(n));
        if self.buckets.is_empty() {
            return ahead;
        }
        if now >= self.seen
            && let Some(running) = self.sums.iter().find(|s| s.window == window)
            && running.from <= oldest
        {
            // Every bucket is at or before `seen ≤ now`: the running sum covers `[from, now]`;
            // what the edge passed since `seen` comes off (usually nothing: `seen` is this tick).
            let passed = self.range_total(running.from, oldest.saturating_sub(1));
            return running.total.saturating_sub(passed).saturating_add(ahead);
        }
        let newest = now.div_euclid(shape.width);
        ahead.saturating_add(self.range_total(oldest, newest))
    }

    /// Σ of the buckets with index in `[from, to]`.
    fn range_total(&self, from: i64, to: i64) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let last = self.buckets.len() as i64 - 1;
        let from = from.saturating_sub(self.first).max(0);
        let to = to.saturating_sub(self.first).min(last);
        if to < from {
            return 0;
        }
        self.buckets
            .range(from as usize..=to as usize)
            .fold(0u64, |total, &n| total.saturating_add(n))
    }

    /// Brings the running sums to `now`: built from the buckets when the shape's windows changed
    /// (a new, imported or rebucketed counter), else each lower edge moved past the buckets it
    /// left. O(1) unless an edge passed a bucket; O(buckets passed) then, which amortises to O(1)
    /// per bucket and window.
    fn advance_sums(&mut self, shape: RollingShape, now: EpochNanos) {
        let windows = shape.windows();
        let stale = self.sums.len() != windows.len()
            || self.sums.iter().zip(windows).any(|(s, &w)| s.window != w);
        if stale {
            self.sums = windows
                .iter()
                .map(|&window| {
                    let from = oldest_in_window(shape.width, now, window);
                    WindowSum {
                        window,
                        from,
                        total: self.range_total(from, i64::MAX),
                    }
                })
                .collect();
        } else if now >= self.next_edge {
            for i in 0..self.sums.len() {
                let running = self.sums[i];
                let oldest = oldest_in_window(shape.width, now, running.window);
                if oldest > running.from {
                    let passed = self.range_total(running.from, oldest - 1);
                    self.sums[i] = WindowSum {
                        from: oldest,
                        total: running.total.saturating_sub(passed),
                        ..running
                    };
                }
            }
        }
        self.seen = if stale { now } else { self.seen.max(now) };
        // The next instant an edge moves: bucket `from` leaves window W when `oldest_in_window`
        // exceeds `from`, that is when `now − W ≥ from × width`.
        self.next_edge = self
            .sums
            .iter()
            .map(|s| s.from.saturating_mul(shape.width).saturating_add(s.window))
            .min()
            .unwrap_or(EpochNanos::MAX);
    }

    /// Drops history that every window has left behind at `now`, and moves the events ahead of the
    /// previous `now` that `now` has reached into their buckets.
    pub fn expire(&mut self, shape: RollingShape, now: EpochNanos) {
        // Before any bucket goes: the sums subtract what their windows left.
        self.advance_sums(shape, now);
        let oldest_kept = shape.oldest_kept(now);
        if !self.buckets.is_empty() && self.first < oldest_kept {
            let stale = oldest_kept.saturating_sub(self.first);
            if stale >= self.buckets.len() as i64 {
                self.buckets.clear();
            } else {
                self.buckets.drain(..stale as usize);
                self.first = oldest_kept;
            }
            // Empty buckets at the front hold nothing: the counter starts at its oldest count, the
            // same as when it is rebuilt from a snapshot.
            while self.buckets.front() == Some(&0) {
                self.buckets.pop_front();
                self.first += 1;
            }
        }
        let reached = self.ahead.partition_point(|&(t, _)| t <= now);
        if reached > 0 {
            let due: Vec<(EpochNanos, u64)> = self.ahead.drain(..reached).collect();
            for (t, n) in due {
                self.add_to_bucket(shape, now, t, n);
            }
        }
    }

    /// The same counts in buckets of another shape (after a configuration change or a snapshot
    /// load), at `now`: each old bucket's count moves to the new bucket holding the old bucket's
    /// start; the events ahead of `now` keep their exact times.
    pub fn rebucket(
        &self,
        from: RollingShape,
        to: RollingShape,
        now: EpochNanos,
    ) -> RollingCounter {
        let mut out = RollingCounter::default();
        for (offset, &count) in self.buckets.iter().enumerate() {
            if count > 0 {
                let start = self
                    .first
                    .saturating_add(offset as i64)
                    .saturating_mul(from.width);
                out.add(to, now, start, count);
            }
        }
        for &(t, n) in &self.ahead {
            out.add(to, now, t, n);
        }
        out
    }

    /// (first bucket index, counts, events ahead of `now` as (time, count)), for snapshots.
    /// An empty counter exports first bucket 0, whatever it held before, so equal counts encode
    /// equally.
    pub fn export(&self) -> (i64, Vec<u64>, Vec<(EpochNanos, u64)>) {
        (
            if self.buckets.is_empty() {
                0
            } else {
                self.first
            },
            self.buckets.iter().copied().collect(),
            self.ahead.clone(),
        )
    }

    /// A counter from `export`ed parts, as stored; `rebucket` it to the current shape and `now`
    /// before use, which also drops what is out of range and orders the events ahead.
    pub fn import(first: i64, counts: Vec<u64>, ahead: Vec<(EpochNanos, u64)>) -> RollingCounter {
        RollingCounter {
            first,
            buckets: counts.into(),
            ahead,
            ..RollingCounter::default()
        }
    }

    /// Buckets held (for tests and memory figures).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Events ahead of `now` held with their exact times (for tests and memory figures).
    pub fn ahead_count(&self) -> usize {
        self.ahead.len()
    }

    /// Adds an event with `t ≤ now` to its bucket, unless it is older than the kept history. Expects
    /// `expire(shape, now)` to have run, so the buckets span at most `kept` buckets ending at `now`.
    fn add_to_bucket(&mut self, shape: RollingShape, now: EpochNanos, t: EpochNanos, n: u64) {
        let bucket = t.div_euclid(shape.width);
        let newest = now.div_euclid(shape.width);
        if bucket < shape.oldest_kept(now) || bucket > newest {
            return;
        }
        for running in &mut self.sums {
            if bucket >= running.from {
                running.total = running.total.saturating_add(n);
            }
        }
        if self.buckets.is_empty() {
            self.first = bucket;
            self.buckets.push_back(n);
            return;
        }
        if bucket < self.first {
            // Bounded: `bucket` is kept, so at most `kept` buckets are added.
            for _ in bucket..self.first {
                self.buckets.push_front(0);
            }
            self.first = bucket;
        }
        // Bounded: `first` is kept and `bucket ≤ newest`, so the length stays at most `kept`.
        let offset = (bucket - self.first) as usize;
        if offset >= self.buckets.len() {
            self.buckets.resize(offset + 1, 0);
        }
        self.buckets[offset] = self.buckets[offset].saturating_add(n);
    }

    /// Remembers an event ahead of `now` at its exact time. Past `MAX_AHEAD` distinct times, the two
    /// closest neighbours merge at the later time: those events then count a little late (by less
    /// than skew / `MAX_AHEAD`), never early, and memory stays bounded however many arrive.
    fn add_ahead(&mut self, t: EpochNanos, n: u64) {
        match self.ahead.binary_search_by_key(&t, |&(time, _)| time) {
            Ok(at) => self.ahead[at].1 = self.ahead[at].1.saturating_add(n),
            Err(at) => self.ahead.insert(at, (t, n)),
        }
        if self.ahead.len() > MAX_AHEAD {
            let closest = (1..self.ahead.len())
                .min_by_key(|&i| self.ahead[i].0.saturating_sub(self.ahead[i - 1].0))
                .unwrap_or(1);
            let (_, earlier) = self.ahead.remove(closest - 1);
            let later = &mut self.ahead[closest - 1].1;
            *later = later.saturating_add(earlier);
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
        counter.add(shape, now, now, 1);
        counter.add(shape, now, now - 3 * DAY, 2);
        counter.add(shape, now, now - 10 * DAY, 4);
        counter.add(shape, now, now + MIN * 20, 8);
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
            counter.add(shape, minute * MIN, minute * MIN, 1);
        }
        assert!(counter.buckets.len() as i64 <= shape.kept);
        let now = 60 * DAY - MIN;
        // One event a minute for the last 7 days, give or take one bucket at the lower edge.
        let sum = counter.sum(shape, now, 7 * DAY) as i64;
        assert!((sum - 7 * 1440).abs() <= shape.width / MIN + 1, "{sum}");
        // Too old to matter: ignored.
        counter.add(shape, now, 0, 1000);
        assert_eq!(counter.sum(shape, now, 7 * DAY) as i64, sum);
        counter.expire(shape, now + 30 * DAY);
        assert!(counter.buckets.is_empty());
    }

    #[test]
    fn an_ancient_event_before_a_current_one_keeps_the_buckets_bounded() {
        let shape = RollingShape::for_windows(&[7 * DAY, 28 * DAY]);
        let mut counter = RollingCounter::default();
        let now = 20_000 * DAY;
        // A zero timestamp (1970-01-01) first, then a current event.
        counter.add(shape, now, 0, 1);
        counter.add(shape, now, now, 1);
        assert!(
            counter.buckets.len() as i64 <= shape.kept
                && counter.buckets.capacity() as i64 <= 2 * shape.kept + 8,
            "{} buckets, capacity {}",
            counter.buckets.len(),
            counter.buckets.capacity()
        );
        assert_eq!(counter.sum(shape, now, 28 * DAY), 1);
    }

    #[test]
    fn a_future_event_counts_only_once_now_reaches_it() {
        let shape = RollingShape::for_windows(&[7 * DAY]);
        let mut counter = RollingCounter::default();
        let now = 100 * DAY;
        // One second ahead: the same bucket as `now`, yet not counted before its time.
        counter.add(shape, now, now + NANOS_PER_SECOND, 1);
        assert_eq!(counter.sum(shape, now, 7 * DAY), 0);
        assert_eq!(counter.sum(shape, now + NANOS_PER_SECOND - 1, 7 * DAY), 0);
        assert_eq!(counter.sum(shape, now + NANOS_PER_SECOND, 7 * DAY), 1);
    }

    #[test]
    fn an_event_in_a_windows_oldest_bucket_counts_until_the_edge_passes_it() {
        let shape = RollingShape::for_windows(&[7 * DAY, 28 * DAY]);
        let mut counter = RollingCounter::default();
        let now = 100 * DAY;
        counter.add(shape, now, now, 1);
        // The oldest bucket inside the 7-day window, at its first and last instant.
        let oldest = oldest_in_window(shape.width, now, 7 * DAY);
        counter.add(shape, now, oldest * shape.width, 2);
        counter.add(shape, now, (oldest + 1) * shape.width - 1, 4);
        // And the bucket just before it: in the 28-day window only.
        counter.add(shape, now, oldest * shape.width - 1, 8);
        assert_eq!(counter.sum(shape, now, 7 * DAY), 7);
        assert_eq!(counter.sum(shape, now, 28 * DAY), 15);
        // One bucket on, the edge has passed the oldest bucket: read before and after the
        // counter itself moves there.
        let next = now + shape.width;
        assert_eq!(counter.sum(shape, next, 7 * DAY), 1);
        counter.expire(shape, next);
        assert_eq!(counter.sum(shape, next, 7 * DAY), 1);
        assert_eq!(counter.sum(shape, next, 28 * DAY), 15);
    }

    /// A small deterministic generator (xorshift64*), so the test needs no dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    #[test]
    fn sums_equal_a_brute_force_count_with_ancient_and_future_events() {
        let windows = [7 * DAY, 28 * DAY, 3 * DAY];
        let shape = RollingShape::for_windows(&windows);
        let skew = 30 * MIN;
        for seed in 1..=6u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut counter = RollingCounter::default();
            let mut events: Vec<(EpochNanos, u64)> = Vec::new();
            let mut now = 10_000 * DAY;
            for _ in 0..800 {
                now += rng.below(3 * 3600) as i64 * NANOS_PER_SECOND;
                let t = match rng.below(10) {
                    0 => rng.below(1_000 * DAY as u64) as i64,
                    1 => now + rng.below(skew as u64 + 1) as i64,
                    _ => now - rng.below(40 * DAY as u64) as i64,
                };
                let n = 1 + rng.below(3);
                counter.add(shape, now, t, n);
                events.push((t, n));
                if rng.below(50) == 0 {
                    counter.expire(shape, now);
                }
                // A reading a little later than the counter's own `now` (a publish after a tick
                // that did not touch this counter), and one at a window the shape does not know.
                let later = now + rng.below(2 * DAY as u64) as i64;
                for &(at, window) in windows
                    .iter()
                    .map(|w| (now, *w))
                    .chain([(later, 7 * DAY), (later, 28 * DAY), (now, 5 * DAY)])
                    .collect::<Vec<_>>()
                    .iter()
                {
                    let (now, window) = (at, window);
                    // At bucket resolution the lower edge is the start of the bucket after the one
                    // holding `now − window`; the upper edge is exact.
                    let oldest = (now - window).div_euclid(shape.width) + 1;
                    let expected: u64 = events
                        .iter()
                        .filter(|&&(t, _)| t <= now && t.div_euclid(shape.width) >= oldest)
                        .map(|&(_, n)| n)
                        .sum();
                    assert_eq!(counter.sum(shape, now, window), expected, "seed {seed}");
                    // The same counts imported (no running sums yet) read the same.
                    let (first, counts, ahead) = counter.export();
                    let imported = RollingCounter::import(first, counts, ahead);
                    assert_eq!(imported.sum(shape, now, window), expected, "seed {seed}");
                }
                assert!(counter.buckets.len() as i64 <= shape.kept);
            }
        }
    }
}
