//! Compact identity tables: interned case ids and the remembered event ids used for deduplication.
//!
//! Case ids are stored once, back to back, in one byte arena; the lookup table holds only `u32`
//! indices (hashbrown's `HashTable` with the hash computed from the arena). That keeps a case id at its
//! own length plus about 13 bytes, instead of a `String` (24 bytes + heap block) per case.

use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

use super::time::EpochNanos;

/// Interned strings with dense `u32` ids in insertion order.
#[derive(Debug, Clone, Default)]
pub struct IdArena {
    bytes: Vec<u8>,
    /// `spans[i]` = (start, end) of id `i` in `bytes`.
    spans: Vec<(u32, u32)>,
    table: HashTable<u32>,
}

impl IdArena {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<u32> {
        let hash = xxh3_64(id.as_bytes());
        self.table
            .find(hash, |&index| self.str_of(index) == id)
            .copied()
    }

    /// Interns `id`, returning its index (the existing one when already present).
    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(index) = self.get(id) {
            return index;
        }
        let index = self.spans.len() as u32;
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(id.as_bytes());
        self.spans.push((start, self.bytes.len() as u32));
        let hash = xxh3_64(id.as_bytes());
        let IdArena {
            bytes,
            spans,
            table,
            ..
        } = self;
        table.insert_unique(hash, index, |&i| {
            let (s, e) = spans[i as usize];
            xxh3_64(&bytes[s as usize..e as usize])
        });
        index
    }

    pub fn str_of(&self, index: u32) -> &str {
        let (start, end) = self.spans[index as usize];
        // Only whole `&str`s are ever appended, so every span is valid UTF-8 on char boundaries.
        std::str::from_utf8(&self.bytes[start as usize..end as usize]).unwrap_or("")
    }
}

/// The 64-bit hash under which an event id is remembered. xxh3 is stable across releases, so hashes
/// written into a snapshot stay valid after an upgrade.
pub fn event_id_hash(id: &str) -> u64 {
    xxh3_64(id.as_bytes())
}

/// Remembered event ids, by arrival time, for at least `window` and at most twice that.
///
/// Two generations of hashes: new ids go into `current`; when `current` is older than the window it
/// becomes `previous` and the old `previous` is dropped. A lookup probes both (two hash lookups), memory
/// is one `u64` plus hashbrown's control byte per id, and expiry costs nothing per event.
#[derive(Debug, Clone, Default)]
pub struct Dedup {
    window: EpochNanos,
    current_started: EpochNanos,
    current: hashbrown::HashSet<u64, IdentityBuildHasher>,
    previous: hashbrown::HashSet<u64, IdentityBuildHasher>,
}

impl Dedup {
    pub fn new(window: EpochNanos) -> Dedup {
        Dedup {
            window,
            ..Dedup::default()
        }
    }

    pub fn set_window(&mut self, window: EpochNanos) {
        self.window = window;
    }

    pub fn contains(&self, hash: u64) -> bool {
        self.current.contains(&hash) || self.previous.contains(&hash)
    }

    /// Remembers `hash`, arrived at `now`.
    pub fn insert(&mut self, hash: u64, now: EpochNanos) {
        self.rotate(now);
        self.current.insert(hash);
    }

    fn rotate(&mut self, now: EpochNanos) {
        if self.current.is_empty() {
            self.current_started = now;
        } else if now.saturating_sub(self.current_started) >= self.window {
            self.previous = std::mem::take(&mut self.current);
            self.current_started = now;
        }
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The remembered hashes, for a snapshot: (generation start, hashes of the current generation,
    /// hashes of the previous one).
    pub fn export(&self) -> (EpochNanos, Vec<u64>, Vec<u64>) {
        (
            self.current_started,
            self.current.iter().copied().collect(),
            self.previous.iter().copied().collect(),
        )
    }

    pub fn import(
        window: EpochNanos,
        started: EpochNanos,
        current: &[u64],
        previous: &[u64],
    ) -> Dedup {
        let mut dedup = Dedup::new(window);
        dedup.current_started = started;
        dedup.current.extend(current.iter().copied());
        dedup.previous.extend(previous.iter().copied());
        dedup
    }
}

/// The keys are already xxh3 hashes; hashing them again would only cost time.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityBuildHasher;

impl std::hash::BuildHasher for IdentityBuildHasher {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_interns_once_and_returns_strings() {
        let mut arena = IdArena::default();
        let a = arena.intern("case-1");
        let b = arena.intern("case-2");
        assert_ne!(a, b);
        assert_eq!(arena.intern("case-1"), a);
        assert_eq!(arena.get("case-2"), Some(b));
        assert_eq!(arena.get("case-3"), None);
        assert_eq!(arena.str_of(b), "case-2");
        for i in 0..10_000 {
            arena.intern(&format!("c{i}"));
        }
        assert_eq!(arena.get("c9999").map(|i| arena.str_of(i)), Some("c9999"));
        assert_eq!(arena.len(), 10_002);
    }

    #[test]
    fn dedup_remembers_for_at_least_the_window() {
        let day = super::super::time::NANOS_PER_DAY;
        let mut dedup = Dedup::new(30 * day);
        dedup.insert(1, 0);
        dedup.insert(2, 29 * day);
        assert!(dedup.contains(1));
        // Rotation at day 30: id 1 (day 0) moves to the previous generation, still remembered.
        dedup.insert(3, 30 * day);
        assert!(dedup.contains(1) && dedup.contains(2) && dedup.contains(3));
        // Next rotation at day 60 drops ids that arrived before day 30.
        dedup.insert(4, 60 * day);
        assert!(!dedup.contains(1) && !dedup.contains(2));
        assert!(dedup.contains(3) && dedup.contains(4));
    }
}
