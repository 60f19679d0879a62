//! The MAC table (802.1D filtering database) of one bridge: (VLAN, MAC) →
//! member port, learned by every worker at once, read without locks.
//!
//! A fixed-capacity open-addressing table (linear probing) of 64-bit atomic
//! words. One word holds a whole entry's key *and* its port, so a reader
//! that loads a word sees a consistent (key, port) pair by construction: no
//! seqlock, no retry. The last-seen time lives in a parallel array of
//! `AtomicU32`; it is only ever used for aging, never for forwarding.
//!
//! Word layout (MAC big-endian in bits 47..0, its I/G bit is bit 40):
//!
//! ```text
//!  63    60 59        48 47        41  40  39          0
//! ┌────────┬────────────┬────────────┬───┬─────────────┐
//! │ member │    VLAN    │    MAC     │ m4│     MAC     │
//! │ bits3:0│  (12 bits) │            │   │             │
//! └────────┴────────────┴────────────┴───┴─────────────┘
//! ```
//!
//! A learned source MAC is always unicast (I/G clear), so bit 40 is free and
//! carries the member index's fifth bit: 32 members per bridge. `0` is an
//! empty slot (MAC 00:00:00:00:00:00 is never learned), `u64::MAX` a
//! deleted one (its key part says VLAN 4095, which is reserved and never
//! valid). Workers only ever claim *empty* slots (compare-exchange from 0),
//! so two workers learning the same new key race for the same first empty
//! slot of its probe sequence and the loser finds the winner's key there:
//! the table never holds a key twice. Deleted slots are not reused; the
//! control thread rebuilds the table (a fresh one, published by arc-swap)
//! when they pile up. See docs/ARCHITECTURE.md, "L2 switch".
//!
//! The home slot is a *keyed* hash of the key ([`crate::hashing::Seeded`],
//! a seed per table): source MACs are whatever a station on the wire puts
//! there, and under a public hash function a host could send frames from
//! thousands of MACs computed to share one probe sequence. The seed is
//! drawn when the table is made and never changes: it is an immutable
//! field, read by the workers and the control thread alike (a rebuild
//! makes a new table, with a new seed, and rehashes into it).
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::wire::Mac;

const EMPTY: u64 = 0;
const DELETED: u64 = u64::MAX;
const IG_BIT: u64 = 1 << 40;
const VLAN_SHIFT: u32 = 48;
const MEMBER_SHIFT: u32 = 60;
/// The key part of a word: MAC without its I/G bit, and the VLAN.
const KEY_MASK: u64 = ((1 << 60) - 1) & !IG_BIT;
/// The most members a bridge can have (five bits in the word).
pub const MAX_MEMBERS: usize = 32;
/// A last-seen stamp of 0 marks a static entry (never aged, moved or flushed).
const STATIC: u32 = 0;

/// A filtering-database key: a VLAN and a unicast MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacKey {
    pub vlan: u16,
    pub mac: Mac,
}

impl MacKey {
    pub const fn new(vlan: u16, mac: Mac) -> MacKey {
        MacKey { vlan, mac }
    }

    /// Whether the key can be stored: a unicast, non-zero MAC and a VLAN in 0..=4094.
    #[inline]
    pub fn is_valid(&self) -> bool {
        self.mac[0] & 1 == 0 && self.mac != [0; 6] && self.vlan < 4095
    }

    #[inline]
    fn bits(&self) -> u64 {
        let m = &self.mac;
        let mac = u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]);
        (u64::from(self.vlan & 0xfff) << VLAN_SHIFT) | mac
    }

    fn from_bits(w: u64) -> MacKey {
        let b = (w & KEY_MASK).to_be_bytes();
        MacKey {
            vlan: ((w >> VLAN_SHIFT) & 0xfff) as u16,
            mac: [b[2], b[3], b[4], b[5], b[6], b[7]],
        }
    }
}

impl fmt::Display for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.mac;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} vlan {}",
            m[0], m[1], m[2], m[3], m[4], m[5], self.vlan
        )
    }
}

#[inline]
fn encode(key: u64, member: u8) -> u64 {
    let m = u64::from(member);
    key | ((m & 15) << MEMBER_SHIFT) | if m & 16 != 0 { IG_BIT } else { 0 }
}

#[inline]
fn member_of(w: u64) -> u8 {
    ((w >> MEMBER_SHIFT) as u8 & 15) | if w & IG_BIT != 0 { 16 } else { 0 }
}

/// The stamp stored for a time: milliseconds, wrapping, never the static marker.
#[inline]
fn stamp(now_ms: u64) -> u32 {
    match now_ms as u32 {
        STATIC => 1,
        s => s,
    }
}

/// Age of a stamp at `now`; a stamp slightly ahead of `now` (another
/// thread's clock reading) is age 0, not 49 days.
#[inline]
fn age_ms(now_ms: u64, st: u32) -> u32 {
    let d = (now_ms as u32).wrapping_sub(st) as i32;
    d.max(0) as u32
}

/// What learning a source did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    /// Known on this port (its time refreshed if due).
    Known,
    /// A new entry.
    Learned,
    /// The station was on another member: it is on this one now.
    Moved { from: u8 },
    /// No room (`max_entries` reached, or no free slot): not learned.
    Full,
    /// A static entry names another port; static entries do not move.
    Static,
    /// Another thread changed the entry at the same moment; the next frame learns.
    Raced,
}

/// One entry as `ctl mac show` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacEntry {
    pub key: MacKey,
    pub member: u8,
    /// None for a static entry.
    pub age_ms: Option<u32>,
}

/// The table of one bridge. Shared by all workers (learn, lookup) and the
/// control thread (age, flush, rebuild, list).
pub struct MacTable {
    words: Box<[AtomicU64]>,
    stamps: Box<[AtomicU32]>,
    mask: usize,
    shift: u32,
    /// The keyed hash of the home slot; fixed for the table's life.
    hash: crate::hashing::Seeded,
    max_entries: u32,
    aging_ms: u32,
    /// Don't write a refreshed time more often than this (a store per frame
    /// would bounce the cache line between workers).
    refresh_ms: u32,
    /// Live entries (static included); learning stops at `max_entries`.
    live: AtomicU32,
    /// Deleted slots (not reusable until a rebuild).
    deleted: AtomicU32,
}

impl fmt::Debug for MacTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MacTable")
            .field("slots", &self.words.len())
            .field("live", &self.len())
            .field("deleted", &self.deleted.load(Ordering::Relaxed))
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

impl MacTable {
    /// A table for up to `max_entries` entries, aging idle ones after
    /// `aging_ms`. It has twice as many slots, rounded up to a power of two,
    /// so probe sequences stay short even with deleted slots (a rebuild is
    /// due when those reach an eighth of the slots).
    pub fn new(max_entries: u32, aging_ms: u32) -> MacTable {
        let max_entries = max_entries.max(1);
        let slots = (max_entries as usize)
            .next_power_of_two()
            .saturating_mul(2)
            .max(64);
        MacTable {
            words: (0..slots).map(|_| AtomicU64::new(EMPTY)).collect(),
            stamps: (0..slots).map(|_| AtomicU32::new(1)).collect(),
            mask: slots - 1,
            shift: 64 - slots.trailing_zeros(),
            hash: crate::hashing::seeded(),
            max_entries,
            aging_ms,
            refresh_ms: (aging_ms / 8).clamp(1, 1000),
            live: AtomicU32::new(0),
            deleted: AtomicU32::new(0),
        }
    }

    pub fn slots(&self) -> usize {
        self.words.len()
    }

    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    pub fn aging_ms(&self) -> u32 {
        self.aging_ms
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the table's arrays.
    pub fn memory(&self) -> usize {
        self.words.len() * (8 + 4)
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        // A keyed multiply (foldhash): every key bit reaches the top bits,
        // through a multiplier an attacker does not know.
        (self.hash.hash_u64(key) >> self.shift) as usize & self.mask
    }

    /// The member a key was learned on.
    #[inline]
    pub fn lookup(&self, key: MacKey) -> Option<u8> {
        if !key.is_valid() {
            return None;
        }
        let k = key.bits();
        let mut i = self.home(k);
        for _ in 0..=self.mask {
            // Relaxed: the word is the whole entry; nothing else is published through it.
            let w = self.words[i].load(Ordering::Relaxed);
            if w == EMPTY {
                return None;
            }
            if w & KEY_MASK == k {
                return Some(member_of(w));
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Learns that `key` was seen on `member` at `now_ms` (the shared clock).
    #[inline]
    pub fn learn(&self, key: MacKey, member: u8, now_ms: u64) -> Learn {
        if !key.is_valid() || usize::from(member) >= MAX_MEMBERS {
            return Learn::Full;
        }
        let k = key.bits();
        let want = encode(k, member);
        let mut i = self.home(k);
        for _ in 0..=self.mask {
            let w = self.words[i].load(Ordering::Relaxed);
            if w == EMPTY {
                // Reserve room first, so `live` never passes the limit.
                let max = self.max_entries;
                if self
                    .live
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        (n < max).then_some(n + 1)
                    })
                    .is_err()
                {
                    return Learn::Full;
                }
                // The time before the word (Release below): whoever sees the
                // entry (the control thread ageing it, with Acquire) sees its time.
                self.stamps[i].store(stamp(now_ms), Ordering::Relaxed);
                match self.words[i].compare_exchange(
                    EMPTY,
                    want,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Learn::Learned,
                    Err(cur) => {
                        self.live.fetch_sub(1, Ordering::Relaxed);
                        if cur & KEY_MASK == k {
                            // Another worker learned the same station this instant.
                            return self.known(i, cur, want, now_ms);
                        }
                    }
                }
            } else if w & KEY_MASK == k {
                return self.known(i, w, want, now_ms);
            }
            i = (i + 1) & self.mask;
        }
        Learn::Full
    }

    #[inline]
    fn known(&self, i: usize, w: u64, want: u64, now_ms: u64) -> Learn {
        let st = self.stamps[i].load(Ordering::Relaxed);
        if w == want {
            if st != STATIC && age_ms(now_ms, st) >= self.refresh_ms {
                self.stamps[i].store(stamp(now_ms), Ordering::Relaxed);
            }
            return Learn::Known;
        }
        if st == STATIC {
            return Learn::Static;
        }
        // A station move: one compare-exchange swaps the port, readers see
        // the old or the new pair, never a mix.
        match self.words[i].compare_exchange(w, want, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => {
                self.stamps[i].store(stamp(now_ms), Ordering::Relaxed);
                Learn::Moved { from: member_of(w) }
            }
            Err(_) => Learn::Raced,
        }
    }

    /// Adds a static entry (control thread, before the table is published).
    /// False if there is no room or the key is invalid.
    pub fn insert_static(&self, key: MacKey, member: u8) -> bool {
        if !key.is_valid() || usize::from(member) >= MAX_MEMBERS {
            return false;
        }
        let k = key.bits();
        let mut i = self.home(k);
        for _ in 0..=self.mask {
            let w = self.words[i].load(Ordering::Acquire);
            if w == EMPTY {
                if self.live.fetch_add(1, Ordering::Relaxed) >= self.max_entries {
                    self.live.fetch_sub(1, Ordering::Relaxed);
                    return false;
                }
                self.stamps[i].store(STATIC, Ordering::Relaxed);
                self.words[i].store(encode(k, member), Ordering::Release);
                return true;
            }
            if w & KEY_MASK == k {
                self.stamps[i].store(STATIC, Ordering::Relaxed);
                self.words[i].store(encode(k, member), Ordering::Release);
                return true;
            }
            i = (i + 1) & self.mask;
        }
        false
    }

    /// Removes dynamic entries idle for longer than the aging time
    /// (control thread). Returns how many went.
    pub fn age(&self, now_ms: u64) -> usize {
        self.remove_dynamic(|st| age_ms(now_ms, st) > self.aging_ms)
    }

    /// Removes every dynamic entry (`ctl mac flush`). Returns how many went.
    pub fn flush(&self) -> usize {
        self.remove_dynamic(|_| true)
    }

    fn remove_dynamic(&self, expired: impl Fn(u32) -> bool) -> usize {
        let mut n = 0;
        for (w, st) in self.words.iter().zip(self.stamps.iter()) {
            let cur = w.load(Ordering::Acquire);
            if cur == EMPTY || cur == DELETED {
                continue;
            }
            let s = st.load(Ordering::Relaxed);
            if s == STATIC || !expired(s) {
                continue;
            }
            // Only if unchanged: a station that moved this instant stays. A
            // refresh that raced with this goes with the entry: the next frame
            // learns it again (one flood).
            if w.compare_exchange(cur, DELETED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.live.fetch_sub(1, Ordering::Relaxed);
                self.deleted.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }
        n
    }

    /// Whether deleted slots are many enough to rebuild (an eighth of the slots).
    pub fn needs_rebuild(&self) -> bool {
        self.deleted.load(Ordering::Relaxed) as usize > self.words.len() / 8
    }

    /// A fresh table with this one's live entries (control thread; the
    /// caller publishes it). A station learned into this table while the
    /// copy runs may be missed: it is learned again by its next frame.
    pub fn rebuild(&self) -> MacTable {
        let t = MacTable::new(self.max_entries, self.aging_ms);
        for (w, st) in self.words.iter().zip(self.stamps.iter()) {
            let cur = w.load(Ordering::Acquire);
            if cur == EMPTY || cur == DELETED {
                continue;
            }
            t.put(cur, st.load(Ordering::Relaxed));
        }
        t
    }

    /// Copies a word and its stamp into a table nobody else sees yet.
    fn put(&self, word: u64, st: u32) {
        let k = word & KEY_MASK;
        let mut i = self.home(k);
        for _ in 0..=self.mask {
            if self.words[i].load(Ordering::Relaxed) == EMPTY {
                self.stamps[i].store(st, Ordering::Relaxed);
                self.words[i].store(word, Ordering::Release);
                self.live.fetch_add(1, Ordering::Relaxed);
                return;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Every live entry (control thread, for `ctl mac show`).
    pub fn entries(&self, now_ms: u64) -> Vec<MacEntry> {
        let mut v = Vec::new();
        for (w, st) in self.words.iter().zip(self.stamps.iter()) {
            let cur = w.load(Ordering::Acquire);
            if cur == EMPTY || cur == DELETED {
                continue;
            }
            let s = st.load(Ordering::Relaxed);
            v.push(MacEntry {
                key: MacKey::from_bits(cur),
                member: member_of(cur),
                age_ms: (s != STATIC).then(|| age_ms(now_ms, s)),
            });
        }
        v.sort_by_key(|e| e.key);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn key(vlan: u16, last: u8) -> MacKey {
        MacKey::new(vlan, [0x02, 0, 0, 0, 0, last])
    }

    #[test]
    fn word_round_trip_keeps_key_and_every_member() {
        for member in 0..MAX_MEMBERS as u8 {
            for k in [
                key(1, 1),
                MacKey::new(4094, [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]),
                MacKey::new(0, [0, 0, 0, 0, 0, 1]),
            ] {
                let w = encode(k.bits(), member);
                assert_ne!(w, EMPTY);
                assert_ne!(w, DELETED);
                assert_eq!(member_of(w), member);
                assert_eq!(MacKey::from_bits(w), k);
                assert_eq!(w & KEY_MASK, k.bits());
            }
        }
        // The deleted marker's key part is VLAN 4095: never a valid key.
        assert_eq!(MacKey::from_bits(DELETED).vlan, 4095);
        assert!(
            !MacKey::new(1, [1, 0, 0, 0, 0, 1]).is_valid(),
            "group MACs are not learned"
        );
        assert!(!MacKey::new(1, [0; 6]).is_valid());
        assert!(!MacKey::new(4095, [2, 0, 0, 0, 0, 1]).is_valid());
    }

    #[test]
    fn learn_lookup_move_and_filter_by_vlan() {
        let t = MacTable::new(16, 300_000);
        assert_eq!(t.lookup(key(10, 1)), None);
        assert_eq!(t.learn(key(10, 1), 3, 5), Learn::Learned);
        assert_eq!(t.lookup(key(10, 1)), Some(3));
        assert_eq!(t.lookup(key(20, 1)), None, "another VLAN is another table");
        assert_eq!(t.learn(key(10, 1), 3, 6), Learn::Known);
        assert_eq!(t.learn(key(10, 1), 17, 7), Learn::Moved { from: 3 });
        assert_eq!(t.lookup(key(10, 1)), Some(17), "moved at once");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn capacity_limit_stops_learning() {
        let t = MacTable::new(4, 300_000);
        for i in 0..4 {
            assert_eq!(t.learn(key(1, i), 0, 0), Learn::Learned);
        }
        assert_eq!(t.learn(key(1, 99), 0, 0), Learn::Full);
        assert_eq!(t.lookup(key(1, 99)), None);
        // Known ones still refresh and move when full.
        assert_eq!(t.learn(key(1, 2), 5, 0), Learn::Moved { from: 0 });
        assert_eq!(t.len(), 4);
        assert_eq!(t.flush(), 4);
        assert_eq!(t.learn(key(1, 99), 0, 0), Learn::Learned);
    }

    #[test]
    fn aging_removes_idle_entries_only_and_keeps_static() {
        let t = MacTable::new(64, 1000);
        assert!(t.insert_static(key(1, 50), 2));
        t.learn(key(1, 1), 0, 0);
        t.learn(key(1, 2), 0, 0);
        // Key 2 stays active (refreshed every refresh interval).
        for now in (0..=1500).step_by(100) {
            t.learn(key(1, 2), 0, now);
        }
        assert_eq!(t.age(1500), 1);
        assert_eq!(t.lookup(key(1, 1)), None);
        assert_eq!(t.lookup(key(1, 2)), Some(0));
        assert_eq!(t.age(1_000_000), 1);
        assert_eq!(t.lookup(key(1, 50)), Some(2), "static entries never age");
        assert_eq!(t.learn(key(1, 50), 7, 0), Learn::Static, "nor move");
        assert_eq!(t.flush(), 0);
        let e = t.entries(0);
        assert_eq!(
            e,
            vec![MacEntry {
                key: key(1, 50),
                member: 2,
                age_ms: None
            }]
        );
    }

    /// Stations whose MACs were picked to share one home slot under the
    /// old public hash (Fibonacci hashing) would fill one probe chain: 64
    /// of them meant lookups scanning 64 slots. Under the keyed hash they
    /// land anywhere.
    #[test]
    fn macs_colliding_under_a_public_hash_spread() {
        let t = MacTable::new(1024, 300_000);
        let public_home = |k: u64| (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> t.shift) as usize;
        let crafted: Vec<MacKey> = (1..u32::MAX)
            .map(|i| {
                MacKey::new(
                    1,
                    [
                        0x02,
                        0,
                        (i >> 24) as u8,
                        (i >> 16) as u8,
                        (i >> 8) as u8,
                        i as u8,
                    ],
                )
            })
            .filter(|k| public_home(k.bits()) == 0)
            .take(64)
            .collect();
        for (i, k) in crafted.iter().enumerate() {
            assert_eq!(t.learn(*k, (i % 32) as u8, 1), Learn::Learned);
        }
        // Linear probing: how far each key sits from its home slot.
        let longest = crafted
            .iter()
            .map(|k| {
                let at = t
                    .words
                    .iter()
                    .position(|w| w.load(Ordering::Relaxed) & KEY_MASK == k.bits())
                    .unwrap();
                at.wrapping_sub(t.home(k.bits())) & t.mask
            })
            .max()
            .unwrap();
        assert!(longest < 8, "a probe chain of {longest}");
        assert!(crafted
            .iter()
            .enumerate()
            .all(|(i, k)| t.lookup(*k) == Some((i % 32) as u8)));
    }

    #[test]
    fn clock_readings_slightly_ahead_are_young() {
        let t = MacTable::new(64, 1000);
        t.learn(key(1, 1), 0, 5005);
        assert_eq!(
            t.age(5000),
            0,
            "a stamp 5 ms in the future is not 49 days old"
        );
    }

    #[test]
    fn rebuild_keeps_live_entries_and_drops_deleted_slots() {
        let t = MacTable::new(64, 1000);
        for i in 1..=60 {
            t.learn(key(1, i), i % 32, 0);
        }
        t.insert_static(key(2, 1), 9);
        for i in 1..=30 {
            t.learn(key(1, i), i % 32, 2000);
        }
        assert_eq!(t.age(2500), 30);
        assert!(t.needs_rebuild());
        let n = t.rebuild();
        assert!(!n.needs_rebuild());
        assert_eq!(n.len(), 31);
        for i in 1..=30 {
            assert_eq!(n.lookup(key(1, i)), Some(i % 32));
        }
        assert_eq!(n.lookup(key(1, 31)), None);
        assert_eq!(n.learn(key(2, 1), 0, 0), Learn::Static);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Learn(u16, u8, u8),
        Lookup(u16, u8),
        Tick(u16),
        Flush,
        Rebuild,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (1u16..4, 1u8..40, 0u8..32).prop_map(|(v, m, p)| Op::Learn(v, m, p)),
            4 => (1u16..4, 1u8..40).prop_map(|(v, m)| Op::Lookup(v, m)),
            2 => (0u16..400).prop_map(Op::Tick),
            1 => Just(Op::Flush),
            1 => Just(Op::Rebuild),
        ]
    }

    proptest! {
        /// The table against a HashMap model: learn, move, age, capacity, flush, rebuild.
        #[test]
        fn behaves_like_a_hashmap_model(ops in proptest::collection::vec(op(), 1..300), cap in 1u32..48) {
            let aging = 1000u64;
            let mut t = MacTable::new(cap, aging as u32);
            // key → (member, last seen)
            let mut model: HashMap<MacKey, (u8, u64)> = HashMap::new();
            // From 1: a time of 0 ms is stored as 1 (0 marks static entries).
            let mut now = 1u64;
            for op in ops {
                match op {
                    Op::Learn(v, m, p) => {
                        let k = key(v, m);
                        let got = t.learn(k, p, now);
                        let want = match model.get(&k).copied() {
                            Some((q, _)) if q == p => Learn::Known,
                            Some((q, _)) => Learn::Moved { from: q },
                            None if model.len() as u32 >= cap => Learn::Full,
                            None => Learn::Learned,
                        };
                        prop_assert_eq!(got, want);
                        if want != Learn::Full {
                            let e = model.entry(k).or_insert((p, now));
                            // The table refreshes its time at most every refresh interval.
                            if e.0 != p || now - e.1 >= u64::from(t.refresh_ms) {
                                e.1 = now;
                            }
                            e.0 = p;
                        }
                    }
                    Op::Lookup(v, m) => {
                        let k = key(v, m);
                        prop_assert_eq!(t.lookup(k), model.get(&k).map(|e| e.0));
                    }
                    Op::Tick(ms) => {
                        now += u64::from(ms);
                        let gone = t.age(now);
                        let before = model.len();
                        model.retain(|_, e| now - e.1 <= aging);
                        prop_assert_eq!(gone, before - model.len());
                        // As the control thread does after each sweep.
                        if t.needs_rebuild() {
                            t = t.rebuild();
                        }
                    }
                    Op::Flush => {
                        prop_assert_eq!(t.flush(), model.len());
                        model.clear();
                        if t.needs_rebuild() {
                            t = t.rebuild();
                        }
                    }
                    Op::Rebuild => t = t.rebuild(),
                }
                prop_assert_eq!(t.len(), model.len());
            }
            let mut listed: Vec<(MacKey, u8)> = t.entries(now).iter().map(|e| (e.key, e.member)).collect();
            let mut want: Vec<(MacKey, u8)> = model.iter().map(|(k, e)| (*k, e.0)).collect();
            listed.sort();
            want.sort();
            prop_assert_eq!(listed, want);
        }
    }

    /// Two writers learn the same stations on different members (constant
    /// moves) and their own stations, while a reader checks that every
    /// pair it sees is one a writer wrote, and that a station learned by
    /// one writer is visible to the others.
    #[test]
    fn concurrent_learners_and_readers_see_consistent_pairs() {
        let t = Arc::new(MacTable::new(4096, 300_000));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shared = |i: u32| MacKey::new(7, [0x02, 0xaa, 0, 0, (i >> 8) as u8, i as u8]);
        // Writer w writes member (key byte 5 % 8) + 8 * w: a reader can check the pair.
        let writers: Vec<_> = (0..2u8)
            .map(|w| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for round in 0..200u64 {
                        for i in 0..512u32 {
                            let k = shared(i);
                            t.learn(k, (k.mac[5] % 8) + 8 * w, round);
                            let own = MacKey::new(
                                8 + u16::from(w),
                                [0x02, 0xbb, w, 0, (i >> 8) as u8, i as u8],
                            );
                            t.learn(own, w, round);
                        }
                    }
                })
            })
            .collect();
        let reader = {
            let (t, stop) = (t.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = 0u64;
                loop {
                    let done = stop.load(Ordering::Relaxed);
                    for i in 0..512u32 {
                        let k = shared(i);
                        if let Some(m) = t.lookup(k) {
                            let base = k.mac[5] % 8;
                            assert!(
                                m == base || m == base + 8,
                                "{k}: member {m} no writer wrote"
                            );
                            seen += 1;
                        }
                    }
                    if done {
                        break seen;
                    }
                }
            })
        };
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        // Every station either writer learned is visible here, once each.
        for w in 0..2u8 {
            for i in 0..512u32 {
                let own = MacKey::new(
                    8 + u16::from(w),
                    [0x02, 0xbb, w, 0, (i >> 8) as u8, i as u8],
                );
                assert_eq!(t.lookup(own), Some(w));
            }
        }
        assert_eq!(t.len(), 512 + 2 * 512, "no station stored twice");
        assert_eq!(t.entries(0).len(), t.len());
    }

    /// Nothing batches or delays a learn: another thread sees it as soon
    /// as the store is visible (there is no snapshot to republish). A trial
    /// can lose its core to the scheduler on a loaded machine (tests run in
    /// parallel on 2 cores), so the fastest of the trials must be under
    /// 1 ms, and every learn must be seen.
    #[test]
    fn learned_on_one_thread_is_seen_by_another_at_once() {
        use std::sync::atomic::AtomicBool;
        use std::time::{Duration, Instant};
        let t = Arc::new(MacTable::new(1024, 300_000));
        let mut fastest = Duration::MAX;
        for trial in 0..20u8 {
            let k = key(5, trial + 1);
            let (t2, spinning) = (t.clone(), Arc::new(AtomicBool::new(false)));
            let s2 = spinning.clone();
            let h = std::thread::spawn(move || {
                let start = Instant::now();
                s2.store(true, Ordering::Release);
                while t2.lookup(k).is_none() {
                    std::hint::spin_loop();
                    assert!(start.elapsed() < Duration::from_secs(5), "never seen");
                }
                Instant::now()
            });
            while !spinning.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            let learned = Instant::now();
            t.learn(k, 1, 0);
            let seen = h.join().unwrap();
            fastest = fastest.min(seen.saturating_duration_since(learned));
        }
        assert!(fastest < Duration::from_millis(1), "fastest {fastest:?}");
    }
}
