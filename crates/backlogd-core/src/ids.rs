//! Compact identity tables: interned case ids and the remembered event ids used for deduplication.
//!
//! Case ids are stored once, back to back, in one byte arena; the lookup table holds only `u32`
//! indices (hashbrown's `HashTable` with the hash computed from the arena). That keeps a case id at its
//! own length plus about 13 bytes, instead of a `String` (24 bytes + heap block) per case.
//!
//! Every table keyed by text from events hashes with a secret key, so a sender cannot craft ids
//! that share buckets (hash flooding): the case-id table with SipHash-1-3 under a per-process random
//! key (`std::hash::RandomState`; the table is rebuilt from the arena on load, so the key need not
//! last), the remembered event ids with a 128-bit SipHash-1-3 under a key that is stored in the
//! snapshot (the hashes outlive the process). Randomness comes from `RandomState`, which the
//! standard library seeds from the operating system once per thread; the core reads no clock and
//! does no other IO.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use siphasher::sip128::SipHasher13;
use xxhash_rust::xxh3::xxh3_64;

use super::time::EpochNanos;

/// The most bytes of ids an arena holds: its spans are `u32` offsets, so beyond this they would
/// wrap and name the wrong bytes (about 33 million ids of 128 bytes, 4 GiB). `intern` refuses an id
/// that would cross it; the state rejects the event (`too_many_cases`).
pub const MAX_ARENA_BYTES: usize = u32::MAX as usize;

/// Interned strings with dense `u32` ids in insertion order.
#[derive(Debug, Clone)]
pub struct IdArena {
    bytes: Vec<u8>,
    /// `spans[i]` = (start, end) of id `i` in `bytes`.
    spans: Vec<(u32, u32)>,
    table: HashTable<u32>,
    /// The per-process secret key of `table`'s hashes.
    hasher: RandomState,
    /// `MAX_ARENA_BYTES`, or less in tests (a 4 GiB arena is too large to build in one).
    max_bytes: usize,
}

impl Default for IdArena {
    fn default() -> IdArena {
        IdArena::with_max_bytes(MAX_ARENA_BYTES)
    }
}

impl IdArena {
    /// An arena that holds at most `max_bytes` of ids (at most `MAX_ARENA_BYTES`).
    pub fn with_max_bytes(max_bytes: usize) -> IdArena {
        IdArena {
            bytes: Vec::new(),
            spans: Vec::new(),
            table: HashTable::new(),
            hasher: RandomState::new(),
            max_bytes: max_bytes.min(MAX_ARENA_BYTES),
        }
    }

    /// Whether `id` can be interned: it is there already, or fits under the bound (and the ids
    /// stay countable in a `u32`).
    pub fn has_room_for(&self, id: &str) -> bool {
        self.get(id).is_some()
            || (self.bytes.len() + id.len() <= self.max_bytes
                && self.spans.len() < u32::MAX as usize)
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id.as_bytes());
        self.table
            .find(hash, |&index| self.str_of(index) == id)
            .copied()
    }

    /// Interns `id`, returning its index (the existing one when already present). The caller
    /// checked `has_room_for` (validation comes before mutation); an id beyond the bound panics
    /// rather than wrap to another id's bytes.
    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(index) = self.get(id) {
            return index;
        }
        assert!(
            self.has_room_for(id),
            "IdArena::intern past its bound: the caller must check has_room_for"
        );
        let index = self.spans.len() as u32;
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(id.as_bytes());
        self.spans.push((start, self.bytes.len() as u32));
        let IdArena {
            bytes,
            spans,
            table,
            hasher,
            ..
        } = self;
        table.insert_unique(hasher.hash_one(id.as_bytes()), index, |&i| {
            let (s, e) = spans[i as usize];
            hasher.hash_one(&bytes[s as usize..e as usize])
        });
        index
    }

    pub fn str_of(&self, index: u32) -> &str {
        let (start, end) = self.spans[index as usize];
        // Only whole `&str`s are ever appended, so every span is valid UTF-8 on char boundaries.
        std::str::from_utf8(&self.bytes[start as usize..end as usize]).unwrap_or("")
    }
}

/// The secret key of the remembered event-id hashes: chosen at random when a state starts empty,
/// kept in the snapshot and restored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupKey(pub [u64; 2]);

impl DedupKey {
    /// A fresh random key (see the module documentation for where the randomness comes from).
    pub fn random() -> DedupKey {
        // Two independently keyed SipHash outputs of the same input: 128 unpredictable bits.
        let word = || RandomState::new().hash_one(0x6261_636b_6c6f_6764_u64);
        DedupKey([word(), word()])
    }
}

/// The hash under which an event id is remembered: 128-bit SipHash-1-3 under the state's secret
/// key. Two different ids collide with probability about 2^-128, and without the key nobody can
/// search for a collision, nor for ids that share a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventIdHash(pub u128);

/// The unkeyed 64-bit hash under which snapshots of format 3 and before remembered event ids.
pub fn legacy_event_id_hash(id: &str) -> u64 {
    xxh3_64(id.as_bytes())
}

/// Remembered event ids, by arrival time, for at least `window` and at most twice that.
///
/// Two generations of hashes: new ids go into `current`; when `current` is older than the window it
/// becomes `previous` and the old `previous` is dropped. A lookup probes both (two hash lookups), memory
/// is one `u128` plus hashbrown's control byte per id, and expiry costs nothing per event.
///
/// Ids loaded from an older snapshot, remembered there under unkeyed 64-bit hashes, form a third,
/// `legacy` generation that is consulted with the old hash until it would have expired under the
/// old rules (two windows after the start of the stored current generation).
#[derive(Debug, Clone)]
pub struct Dedup {
    window: EpochNanos,
    key: DedupKey,
    current_started: EpochNanos,
    current: hashbrown::HashSet<EventIdHash, KeyedBits>,
    previous: hashbrown::HashSet<EventIdHash, KeyedBits>,
    legacy: hashbrown::HashSet<u64, RandomState>,
    /// Arrival time from which `legacy` is dropped.
    legacy_until: EpochNanos,
}

/// The parts of a `Dedup` that a snapshot stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DedupExport {
    pub key: [u64; 2],
    pub current_started: EpochNanos,
    pub current: Vec<u128>,
    pub previous: Vec<u128>,
    pub legacy_until: EpochNanos,
    pub legacy: Vec<u64>,
}

impl Dedup {
    /// An empty set with a fresh random key.
    pub fn new(window: EpochNanos) -> Dedup {
        Dedup::with_key(window, DedupKey::random())
    }

    pub fn with_key(window: EpochNanos, key: DedupKey) -> Dedup {
        Dedup {
            window,
            key,
            current_started: 0,
            current: hashbrown::HashSet::default(),
            previous: hashbrown::HashSet::default(),
            legacy: hashbrown::HashSet::default(),
            legacy_until: EpochNanos::MIN,
        }
    }

    pub fn set_window(&mut self, window: EpochNanos) {
        self.window = window;
    }

    /// The keyed hash of an event id.
    pub fn hash(&self, id: &str) -> EventIdHash {
        let [k0, k1] = self.key.0;
        EventIdHash(
            SipHasher13::new_with_keys(k0, k1)
                .hash(id.as_bytes())
                .into(),
        )
    }

    /// Whether the event id `id`, whose keyed hash is `hash`, is remembered.
    pub fn contains(&self, id: &str, hash: EventIdHash) -> bool {
        self.current.contains(&hash)
            || self.previous.contains(&hash)
            || (!self.legacy.is_empty() && self.legacy.contains(&legacy_event_id_hash(id)))
    }

    /// Remembers `hash`, arrived at `now`.
    pub fn insert(&mut self, hash: EventIdHash, now: EpochNanos) {
        self.expire(now);
        if self.current.is_empty() && self.previous.is_empty() {
            // Nothing is remembered: the generation starts with its first id.
            self.current_started = now;
        }
        self.current.insert(hash);
    }

    /// Forgets what the clock at `now` lets go: once `current` is a window old it becomes
    /// `previous`, and the old `previous` (every id of it older than the window) is dropped. Called
    /// on every move of the clock, not only on insert, so that ids expire while none arrive (at
    /// most two windows after their arrival, plus the step of the clock).
    pub fn expire(&mut self, now: EpochNanos) {
        if !self.legacy.is_empty() && now >= self.legacy_until {
            self.legacy = hashbrown::HashSet::default();
        }
        if now.saturating_sub(self.current_started) >= self.window
            && !(self.current.is_empty() && self.previous.is_empty())
        {
            self.previous = std::mem::take(&mut self.current);
            self.current_started = now;
        }
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len() + self.legacy.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated by the hash sets (for memory figures).
    pub fn allocation_size(&self) -> usize {
        self.current.allocation_size()
            + self.previous.allocation_size()
            + self.legacy.allocation_size()
    }

    /// The key and the remembered hashes, for a snapshot.
    pub fn export(&self) -> DedupExport {
        DedupExport {
            key: self.key.0,
            current_started: self.current_started,
            current: self.current.iter().map(|h| h.0).collect(),
            previous: self.previous.iter().map(|h| h.0).collect(),
            legacy_until: self.legacy_until,
            legacy: self.legacy.iter().copied().collect(),
        }
    }

    pub fn import(window: EpochNanos, stored: &DedupExport) -> Dedup {
        let mut dedup = Dedup::with_key(window, DedupKey(stored.key));
        dedup.current_started = stored.current_started;
        dedup
            .current
            .extend(stored.current.iter().map(|&h| EventIdHash(h)));
        dedup
            .previous
            .extend(stored.previous.iter().map(|&h| EventIdHash(h)));
        dedup.legacy.extend(stored.legacy.iter().copied());
        dedup.legacy_until = stored.legacy_until;
        dedup
    }

    /// A set loaded from a snapshot of format 3 or before, which remembered unkeyed 64-bit hashes in
    /// a current generation started at `started` and a previous one. Under the old rules each of
    /// those ids was remembered at most until two windows after `started`; they stay (as the legacy
    /// generation) exactly that long, and new ids get keyed hashes under a fresh key.
    pub fn import_legacy(
        window: EpochNanos,
        started: EpochNanos,
        current: &[u64],
        previous: &[u64],
    ) -> Dedup {
        let mut dedup = Dedup::new(window);
        dedup.legacy.extend(current.iter().chain(previous).copied());
        dedup.legacy_until = started.saturating_add(window.saturating_mul(2));
        dedup
    }
}

/// Bucket index of a remembered event id: its hash is already keyed, so its low bits are as good as
/// any and rehashing would only cost time.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyedBits;

impl BuildHasher for KeyedBits {
    type Hasher = KeyedBitsHasher;
    fn build_hasher(&self) -> KeyedBitsHasher {
        KeyedBitsHasher(0)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct KeyedBitsHasher(u64);

impl std::hash::Hasher for KeyedBitsHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, value: u128) {
        // Both halves: hashbrown takes the bucket from the low bits and the control byte from the
        // high ones.
        self.0 = (value as u64) ^ ((value >> 64) as u64).rotate_left(32);
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

    /// The spans are `u32` offsets: the arena stops at its bound instead of wrapping (issue 24,
    /// the suspected IdArena overflow). Proven on an arena bounded at 64 bytes, the same code as
    /// the 4 GiB one; and the production bound is exactly what a `u32` offset can reach.
    #[test]
    fn the_arena_stops_at_its_bound_instead_of_wrapping() {
        assert_eq!(MAX_ARENA_BYTES, u32::MAX as usize);
        assert_eq!(IdArena::default().max_bytes, MAX_ARENA_BYTES);
        assert_eq!(
            IdArena::with_max_bytes(usize::MAX).max_bytes,
            MAX_ARENA_BYTES
        );
        let mut arena = IdArena::with_max_bytes(64);
        for i in 0..8 {
            let id = format!("case-{i:03}"); // 8 bytes
            assert!(arena.has_room_for(&id));
            arena.intern(&id);
        }
        // 64 bytes held: one more byte does not fit, a known id does.
        assert!(!arena.has_room_for("x"));
        assert!(arena.has_room_for("case-003"));
        assert_eq!(arena.intern("case-003"), 3);
        for i in 0..8 {
            assert_eq!(arena.str_of(i), format!("case-{i:03}"));
        }
        assert!(
            std::panic::catch_unwind(move || arena.clone().intern("x")).is_err(),
            "interning past the bound must not wrap silently"
        );
    }

    #[test]
    fn dedup_remembers_for_at_least_the_window() {
        let day = super::super::time::NANOS_PER_DAY;
        let mut dedup = Dedup::new(30 * day);
        let has = |dedup: &Dedup, id: &str| dedup.contains(id, dedup.hash(id));
        dedup.insert(dedup.hash("1"), 0);
        dedup.insert(dedup.hash("2"), 29 * day);
        assert!(has(&dedup, "1"));
        // Rotation at day 30: id 1 (day 0) moves to the previous generation, still remembered.
        dedup.insert(dedup.hash("3"), 30 * day);
        assert!(has(&dedup, "1") && has(&dedup, "2") && has(&dedup, "3"));
        // Next rotation at day 60 drops ids that arrived before day 30.
        dedup.insert(dedup.hash("4"), 60 * day);
        assert!(!has(&dedup, "1") && !has(&dedup, "2"));
        assert!(has(&dedup, "3") && has(&dedup, "4"));
    }

    /// Ids whose unkeyed xxh3 hashes share their low 12 bits (what a sender can brute-force).
    fn ids_colliding_in_unkeyed_low_bits(count: usize) -> Vec<String> {
        (0u64..)
            .map(|i| format!("ev-{i}"))
            .filter(|id| xxh3_64(id.as_bytes()) & 0xfff == 0)
            .take(count)
            .collect()
    }

    #[test]
    fn ids_crafted_to_collide_do_not_share_a_bucket() {
        let ids = ids_colliding_in_unkeyed_low_bits(64);
        let dedup = Dedup::new(1);
        let mut probe = KeyedBits.build_hasher();
        let buckets: std::collections::BTreeSet<u64> = ids
            .iter()
            .map(|id| {
                std::hash::Hasher::write_u128(&mut probe, dedup.hash(id).0);
                std::hash::Hasher::finish(&probe) & 0xfff
            })
            .collect();
        assert!(buckets.len() > 48, "{} distinct buckets", buckets.len());
        // The case-id table too: all 64 ids interned, found, and distinct.
        let mut arena = IdArena::default();
        for id in &ids {
            arena.intern(id);
        }
        assert!(
            ids.iter()
                .enumerate()
                .all(|(i, id)| arena.get(id) == Some(i as u32))
        );
    }

    #[test]
    fn the_key_decides_the_hash_and_survives_export() {
        let a = Dedup::new(10);
        let b = Dedup::new(10);
        assert_ne!(a.hash("ev-1"), b.hash("ev-1"), "two random keys");
        let mut a = a;
        a.insert(a.hash("ev-1"), 5);
        let restored = Dedup::import(10, &a.export());
        assert_eq!(restored.hash("ev-1"), a.hash("ev-1"));
        assert!(restored.contains("ev-1", restored.hash("ev-1")));
        assert!(!restored.contains("ev-2", restored.hash("ev-2")));
    }

    #[test]
    fn legacy_hashes_are_consulted_until_they_would_have_expired() {
        let day = super::super::time::NANOS_PER_DAY;
        let old = |id: &str| legacy_event_id_hash(id);
        // Stored current generation started at day 100 (ids a, b), previous one held c.
        let mut dedup =
            Dedup::import_legacy(30 * day, 100 * day, &[old("a"), old("b")], &[old("c")]);
        assert_eq!(dedup.len(), 3);
        let has = |dedup: &Dedup, id: &str| dedup.contains(id, dedup.hash(id));
        assert!(has(&dedup, "a") && has(&dedup, "c") && !has(&dedup, "d"));
        dedup.insert(dedup.hash("d"), 159 * day);
        assert!(has(&dedup, "a") && has(&dedup, "d"));
        let exported = Dedup::import(30 * day, &dedup.export());
        assert!(has(&exported, "b"));
        // Day 160 = two windows after day 100: the old rules had dropped them all by now.
        dedup.insert(dedup.hash("e"), 160 * day);
        assert!(!has(&dedup, "a") && !has(&dedup, "b") && !has(&dedup, "c"));
        assert!(has(&dedup, "d") && has(&dedup, "e"));
    }

    /// Memory per remembered id (docs/store.md): the hash tables' bytes over the ids they hold, at
    /// sizes across several doublings of a table. A table of u128 hashes holds 16 bytes and one
    /// control byte per bucket, is at most 7/8 full, and doubles when full; so an id costs from
    /// 17 × 8/7 = 19.4 bytes (a full table) to twice that (just after a doubling). `--nocapture`
    /// prints the figures; `BACKLOGD_MEMORY_FIGURES=1` adds sizes up to 2,000,000.
    #[test]
    fn memory_per_remembered_id() {
        let largest: usize = match std::env::var_os("BACKLOGD_MEMORY_FIGURES") {
            Some(_) => 2_000_000,
            None => 200_000,
        };
        let full = 17.0 * 8.0 / 7.0;
        let (mut low, mut high) = (f64::MAX, 0.0f64);
        let mut keyed = Dedup::new(i64::MAX);
        let mut next_report = 1_000;
        for i in 0..largest {
            let id = format!("ev-{i:09}");
            keyed.insert(keyed.hash(&id), 0);
            let n: usize = i + 1;
            // Every size from 1,000 on, in steps of 1/64 of a doubling.
            if n >= 1_000 && n.is_multiple_of((n.next_power_of_two() / 64).max(1)) {
                let per_id = keyed.allocation_size() as f64 / n as f64;
                low = low.min(per_id);
                high = high.max(per_id);
                // The group of 16 trailing control bytes adds 16 / n.
                assert!(
                    per_id >= full - 0.01 && per_id <= 2.0 * full + 16.0 / n as f64 + 0.01,
                    "{n} ids: {per_id} B/id"
                );
            }
            if n == next_report {
                eprintln!(
                    "{n} remembered ids: {:.1} B/id",
                    keyed.allocation_size() as f64 / n as f64
                );
                next_report *= 10;
            }
        }
        eprintln!("1,000 to {largest} ids: {low:.1} to {high:.1} B/id");
        // Both ends are reached: the figures are the tables' own, not an artefact of sampling.
        assert!(low < full + 0.5 && high > 1.9 * full, "{low} {high}");
    }
}
