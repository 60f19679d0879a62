//! A fixed-capacity slab: values in a `Vec`, a free list of indices, and a
//! generation per slot.
//!
//! The per-worker tables (NAT sessions and mappings, load-balancer
//! connections, TCP connections) keep their entries here and refer to them
//! by `u32` index from their hash maps. Everything is allocated at creation
//! (`with_capacity`); `insert` and `remove` are O(1) and never allocate: an
//! insert takes the most recently freed slot, or the next never-used one,
//! and fails when `capacity` entries are live.
//!
//! Slots are handed out from index 0 upwards: [`Slab::slots`] (the
//! high-water mark) bounds the indices ever used, so a sweep over the slab
//! (expiry) looks only at slots that held something.
//!
//! Each slot has a generation, odd while the slot is occupied: it tells
//! live slots from free ones, and a handle that keeps `(index, generation)`
//! ([`Slab::get_checked`]) never reaches a later tenant of the slot.
//!
//! This module is the lowest layer: it imports nothing from the engine.

use std::fmt;
use std::ops::{Index, IndexMut};

/// A fixed-capacity slab of `T` addressed by `u32` index.
pub struct Slab<T> {
    values: Vec<T>,
    /// Per slot: odd while occupied; bumped on insert and on remove.
    gens: Vec<u32>,
    /// Free slots below `values.len()`, the most recently freed last.
    free: Vec<u32>,
    cap: usize,
    len: usize,
}

impl<T> fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slab")
            .field("len", &self.len)
            .field("slots", &self.values.len())
            .field("capacity", &self.cap)
            .finish()
    }
}

impl<T> Slab<T> {
    /// A slab for up to `cap` live values (at most `u32::MAX`), allocated now.
    pub fn with_capacity(cap: usize) -> Slab<T> {
        assert!(
            cap <= u32::MAX as usize,
            "slab capacity {cap} over u32 indices"
        );
        Slab {
            values: Vec::with_capacity(cap),
            gens: Vec::with_capacity(cap),
            free: Vec::with_capacity(cap),
            cap,
            len: 0,
        }
    }

    /// Live values.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `capacity` values are live: `insert` would fail.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len >= self.cap
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Slots ever used: every live index is below this (the high-water mark).
    #[inline]
    pub fn slots(&self) -> usize {
        self.values.len()
    }

    /// The next `budget` slot indices of a round-robin sweep (bounded expiry
    /// work per call) that continues from `*cursor` and wraps at the
    /// high-water mark; `*cursor` is left where the next call goes on. The
    /// indices are computed now, so the caller may remove while it walks them.
    pub fn sweep(&self, cursor: &mut usize, budget: usize) -> Sweep {
        let n = self.slots();
        let k = budget.min(n);
        if k == 0 {
            return Sweep {
                next: 0,
                n: 1,
                left: 0,
            };
        }
        let start = *cursor % n;
        *cursor = (start + k - 1) % n + 1;
        Sweep {
            next: start,
            n,
            left: k,
        }
    }

    /// Stores `v`; its index, or None (and `v` dropped) when full.
    #[inline]
    pub fn insert(&mut self, v: T) -> Option<u32> {
        let i = match self.free.pop() {
            Some(i) => {
                self.values[i as usize] = v;
                i
            }
            None if self.values.len() < self.cap => {
                self.values.push(v);
                self.gens.push(0);
                (self.values.len() - 1) as u32
            }
            None => return None,
        };
        let g = &mut self.gens[i as usize];
        *g = g.wrapping_add(1);
        self.len += 1;
        Some(i)
    }

    /// Whether slot `i` holds a value.
    #[inline]
    pub fn contains(&self, i: u32) -> bool {
        self.gens.get(i as usize).is_some_and(|g| g & 1 == 1)
    }

    /// The generation of slot `i` (odd while occupied; 0 for a slot never used).
    #[inline]
    pub fn generation(&self, i: u32) -> u32 {
        self.gens.get(i as usize).copied().unwrap_or(0)
    }

    #[inline]
    pub fn get(&self, i: u32) -> Option<&T> {
        if self.contains(i) {
            self.values.get(i as usize)
        } else {
            None
        }
    }

    #[inline]
    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        if self.contains(i) {
            self.values.get_mut(i as usize)
        } else {
            None
        }
    }

    /// The value in slot `i` if it is still the tenant of generation `gen`.
    #[inline]
    pub fn get_checked(&self, i: u32, gen: u32) -> Option<&T> {
        if gen & 1 == 1 && self.generation(i) == gen {
            self.values.get(i as usize)
        } else {
            None
        }
    }

    #[inline]
    pub fn get_checked_mut(&mut self, i: u32, gen: u32) -> Option<&mut T> {
        if gen & 1 == 1 && self.generation(i) == gen {
            self.values.get_mut(i as usize)
        } else {
            None
        }
    }

    /// Frees slot `i` and hands its value back (a default value stays in
    /// the slot until the next insert); None if it was free.
    #[inline]
    pub fn remove(&mut self, i: u32) -> Option<T>
    where
        T: Default,
    {
        if !self.contains(i) {
            return None;
        }
        let g = &mut self.gens[i as usize];
        *g = g.wrapping_add(1);
        self.free.push(i);
        self.len -= 1;
        Some(std::mem::take(&mut self.values[i as usize]))
    }

    /// Live values with their indices, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        self.values
            .iter()
            .zip(&self.gens)
            .enumerate()
            .filter(|(_, (_, g))| *g & 1 == 1)
            .map(|(i, (v, _))| (i as u32, v))
    }

    /// Live values with their indices among slots `range` (cut at the
    /// high-water mark), in index order: one slice of a dump.
    pub fn iter_range(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (u32, &T)> + '_ {
        let end = range.end.min(self.values.len());
        let start = range.start.min(end);
        self.values[start..end]
            .iter()
            .zip(&self.gens[start..end])
            .enumerate()
            .filter(|(_, (_, g))| *g & 1 == 1)
            .map(move |(i, (v, _))| ((start + i) as u32, v))
    }

    /// Live values, in index order.
    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter().map(|(_, v)| v)
    }
}

/// The value in a live slot, by index, as a `Vec` would (the hot paths:
/// the index comes from the caller's own map). Reading a free slot is a
/// bug: checked in debug builds only, so the release hot path is one
/// bounds check, as before.
impl<T> Index<usize> for Slab<T> {
    type Output = T;

    #[inline]
    fn index(&self, i: usize) -> &T {
        debug_assert!(self.contains(i as u32), "slab slot {i} is free");
        &self.values[i]
    }
}

impl<T> IndexMut<usize> for Slab<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        debug_assert!(self.contains(i as u32), "slab slot {i} is free");
        &mut self.values[i]
    }
}

/// Slot indices of one [`Slab::sweep`] call.
#[derive(Debug, Clone)]
pub struct Sweep {
    next: usize,
    n: usize,
    left: usize,
}

impl Iterator for Sweep {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let i = self.next;
        self.next = (i + 1) % self.n;
        Some(i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn insert_remove_reuse_and_generations() {
        let mut s: Slab<u64> = Slab::with_capacity(3);
        assert!(s.is_empty());
        assert_eq!(
            (s.insert(10), s.insert(11), s.insert(12)),
            (Some(0), Some(1), Some(2))
        );
        assert!(s.is_full());
        assert_eq!(s.insert(13), None, "full");
        let g1 = s.generation(1);
        assert_eq!(g1 & 1, 1);
        assert_eq!(s.get_checked(1, g1), Some(&11));
        assert_eq!(s.remove(1), Some(11));
        assert_eq!(s.remove(1), None, "not twice");
        assert_eq!(s.get(1), None);
        assert_eq!(s.get_checked(1, g1), None);
        assert_eq!(
            s.get_checked(1, s.generation(1)),
            None,
            "a free slot's generation opens nothing"
        );
        assert_eq!(s.insert(21), Some(1), "the freed slot is reused");
        assert_eq!(
            s.get_checked(1, g1),
            None,
            "an old handle misses the new tenant"
        );
        assert_eq!(s.get_checked(1, s.generation(1)), Some(&21));
        s[1] += 1;
        assert_eq!(s[1], 22);
        assert_eq!(s.iter().collect::<Vec<_>>(), [(0, &10), (1, &22), (2, &12)]);
        assert_eq!((s.len(), s.slots(), s.capacity()), (3, 3, 3));
        assert_eq!(s.get(7), None);
        assert!(!s.contains(7));
        assert_eq!(s.generation(7), 0);
        let mut z: Slab<u8> = Slab::with_capacity(0);
        assert_eq!(z.insert(1), None);
    }

    #[test]
    fn slots_grow_only_as_needed() {
        let mut s: Slab<u32> = Slab::with_capacity(100);
        for round in 0..50 {
            let a = s.insert(round).unwrap();
            let b = s.insert(round).unwrap();
            s.remove(a);
            s.remove(b);
        }
        assert_eq!(
            s.slots(),
            2,
            "a sweep over slots() sees two slots, not the capacity"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16),
        Remove(u8),
        Get(u8),
        Write(u8, u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u16>().prop_map(Op::Insert),
            3 => any::<u8>().prop_map(Op::Remove),
            2 => any::<u8>().prop_map(Op::Get),
            1 => (any::<u8>(), any::<u16>()).prop_map(|(i, v)| Op::Write(i, v)),
        ]
    }

    proptest! {
        /// The slab against a map model: contents, fullness, reuse of freed
        /// slots first, stale handles, and no allocation after creation.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(op(), 1..400), cap in 0usize..40) {
            let mut s: Slab<u16> = Slab::with_capacity(cap);
            let caps = (s.values.capacity(), s.gens.capacity(), s.free.capacity());
            let mut model: BTreeMap<u32, (u16, u32)> = BTreeMap::new();
            // Handles of removed values: never valid again.
            let mut stale: Vec<(u32, u32)> = Vec::new();
            let mut freed: Vec<u32> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(v) => {
                        let got = s.insert(v);
                        if model.len() == cap {
                            prop_assert_eq!(got, None);
                        } else {
                            let i = got.unwrap();
                            prop_assert!(!model.contains_key(&i));
                            // The most recently freed slot first, else the next new one.
                            match freed.pop() {
                                Some(f) => prop_assert_eq!(i, f),
                                None => prop_assert_eq!(i as usize, s.slots() - 1),
                            }
                            model.insert(i, (v, s.generation(i)));
                        }
                    }
                    Op::Remove(i) => {
                        let i = u32::from(i) % (cap as u32 + 1);
                        let want = model.remove(&i);
                        prop_assert_eq!(s.remove(i), want.map(|e| e.0));
                        if let Some((_, g)) = want {
                            stale.push((i, g));
                            freed.push(i);
                        }
                    }
                    Op::Get(i) => {
                        let i = u32::from(i) % (cap as u32 + 1);
                        prop_assert_eq!(s.get(i), model.get(&i).map(|e| &e.0));
                        prop_assert_eq!(s.contains(i), model.contains_key(&i));
                    }
                    Op::Write(i, v) => {
                        let i = u32::from(i) % (cap as u32 + 1);
                        if let Some(e) = model.get_mut(&i) {
                            s[i as usize] = v;
                            e.0 = v;
                        } else {
                            prop_assert_eq!(s.get_mut(i), None);
                        }
                    }
                }
                prop_assert_eq!(s.len(), model.len());
                prop_assert_eq!(s.is_full(), model.len() == cap);
                prop_assert!(s.slots() <= cap);
                for (&i, &(v, g)) in &model {
                    prop_assert_eq!(s.get_checked(i, g), Some(&v));
                }
                for &(i, g) in &stale {
                    prop_assert_eq!(s.get_checked(i, g), None);
                }
                let listed: Vec<(u32, u16)> = s.iter().map(|(i, v)| (i, *v)).collect();
                let want: Vec<(u32, u16)> = model.iter().map(|(&i, e)| (i, e.0)).collect();
                prop_assert_eq!(s.values().copied().collect::<Vec<_>>(), want.iter().map(|e| e.1).collect::<Vec<_>>());
                prop_assert_eq!(listed, want);
                prop_assert_eq!((s.values.capacity(), s.gens.capacity(), s.free.capacity()), caps, "no allocation");
            }
        }
    }

    #[test]
    fn sweep_continues_where_it_stopped_and_wraps() {
        let mut s: Slab<u8> = Slab::with_capacity(8);
        for v in 0..5 {
            s.insert(v);
        }
        // The loop the sweep replaced, as a reference.
        let reference = |cursor: &mut usize, budget: usize, n: usize| -> Vec<u32> {
            let mut out = Vec::new();
            for _ in 0..budget.min(n) {
                let i = *cursor % n;
                *cursor = i + 1;
                out.push(i as u32);
            }
            out
        };
        let (mut a, mut b) = (0usize, 0usize);
        for budget in [2, 2, 2, 7, 0, 3, 5, 1] {
            let got: Vec<u32> = s.sweep(&mut a, budget).collect();
            assert_eq!(got, reference(&mut b, budget, 5), "budget {budget}");
            assert_eq!(a, b);
        }
        let empty: Slab<u8> = Slab::with_capacity(4);
        let mut c = 3;
        assert_eq!(empty.sweep(&mut c, 10).count(), 0);
        assert_eq!(c, 3);
    }
}
