//! Longest-prefix match tables, one implementation for both families: [`Lpm`] over a prefix
//! type, [`Lpm4`](super::lpm4::Lpm4) = `Lpm<Ipv4Prefix>` and [`Lpm6`](super::lpm6::Lpm6) =
//! `Lpm<Ipv6Prefix>`.
//!
//! A table keeps its prefixes in a [`BinaryTrie`] and answers lookups from the [`Poptrie`] built
//! from it; [`crate::l3::route_table::RouteTable`] shares the same pieces between one writer and
//! many readers. The key width (bits, direct-array size, per-level chunk extraction) is the
//! [`Key`] of the family: every method is monomorphized per family, nothing branches on the width.

use core::fmt;
use core::hash::Hash;

use super::nexthop::NextHopId;
use super::poptrie::{BinaryTrie, Key, Leaf, Poptrie, NO_ROUTE};

/// A prefix type an [`Lpm`] table can hold: its address as an integer key.
pub trait LpmPrefix: Copy + Eq + Hash + Ord + fmt::Debug + fmt::Display {
    /// The address as an unsigned integer, most significant bit first (`u32`, `u128`).
    type Key: Key;
    /// The address type lookups take (`Ipv4Addr`, `Ipv6Addr`).
    type Addr: Copy + fmt::Debug + fmt::Display + From<Self::Key> + Into<Self::Key>;
    /// The network address as a key (host bits zero).
    fn key(&self) -> Self::Key;
    /// The prefix length in bits.
    fn key_len(&self) -> u32;
    /// The prefix `key/len` with host bits cleared; `None` if `len` exceeds the key width.
    fn from_key(key: Self::Key, len: u8) -> Option<Self>;
}

/// An LPM table mapping prefixes of one family to next-hop indices.
#[derive(Debug, Clone)]
pub struct Lpm<P: LpmPrefix> {
    trie: BinaryTrie<P::Key>,
    fib: Poptrie<P::Key>,
}

impl<P: LpmPrefix> Default for Lpm<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: LpmPrefix> Lpm<P> {
    pub fn new() -> Self {
        let trie = BinaryTrie::new();
        let fib = Poptrie::build(&trie);
        Lpm { trie, fib }
    }

    /// Builds a table from many routes at once (one build instead of one patch per route).
    /// A later duplicate of a prefix replaces the earlier one.
    pub fn from_routes(routes: impl IntoIterator<Item = (P, NextHopId)>) -> Self {
        let mut trie = BinaryTrie::new();
        for (p, nh) in routes {
            trie.insert(p.key(), p.key_len(), nh);
        }
        let fib = Poptrie::build(&trie);
        Lpm { trie, fib }
    }

    /// Adds or replaces a route; returns the previous next hop of that prefix.
    /// `nh` must be below [`NO_ROUTE`].
    pub fn insert(&mut self, p: P, nh: NextHopId) -> Option<NextHopId> {
        assert!(nh != NO_ROUTE, "next-hop index {nh} is reserved");
        let old = self.trie.insert(p.key(), p.key_len(), nh);
        if old != Some(nh) {
            self.fib.update(&self.trie, p.key(), p.key_len());
        }
        old
    }

    /// Removes a route; returns its next hop.
    pub fn remove(&mut self, p: P) -> Option<NextHopId> {
        let old = self.trie.remove(p.key(), p.key_len());
        if old.is_some() {
            self.fib.update(&self.trie, p.key(), p.key_len());
        }
        old
    }

    /// The next hop of exactly this prefix.
    pub fn get(&self, p: P) -> Option<NextHopId> {
        self.trie.get(p.key(), p.key_len())
    }

    pub fn len(&self) -> usize {
        self.trie.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trie.is_empty()
    }

    /// The next hop for `addr`, from the Poptrie.
    #[inline]
    pub fn lookup(&self, addr: P::Addr) -> Option<NextHopId> {
        let v = self.fib.lookup(addr.into());
        (v != NO_ROUTE).then_some(v)
    }

    /// The longest matching prefix and its next hop, from the binary trie (control plane speed).
    pub fn longest_match(&self, addr: P::Addr) -> Option<(P, NextHopId)> {
        let key: P::Key = addr.into();
        let (len, nh) = self.trie.longest_match(key)?;
        Some((P::from_key(key, len as u8)?, nh))
    }

    /// Burst lookup on addresses as big-endian integers; [`NO_ROUTE`] where nothing matches.
    #[inline]
    pub fn lookup_batch(&self, addrs: &[P::Key], out: &mut [Leaf]) {
        self.fib.lookup_batch(addrs, out)
    }

    /// Rebuilds the lookup structure from scratch (what a full FIB rebuild costs).
    pub fn rebuild(&mut self) {
        self.fib = Poptrie::build(&self.trie);
    }

    /// The read-side structure.
    pub fn fib(&self) -> &Poptrie<P::Key> {
        &self.fib
    }

    /// Bytes of the lookup structure alone (what the data path touches).
    pub fn fib_bytes(&self) -> usize {
        self.fib.memory_bytes()
    }

    /// Bytes of the lookup structure plus the control-plane trie.
    pub fn memory_bytes(&self) -> usize {
        self.fib.memory_bytes() + self.trie.memory_bytes()
    }
}

/// The linear-scan reference and the property tests the per-family modules run against it.
#[cfg(test)]
pub(super) mod reference {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// What the reference needs of a family beyond [`LpmPrefix`].
    pub trait RefPrefix: LpmPrefix {
        fn contains(&self, a: Self::Addr) -> bool;
        /// First and last address covered, and the addresses just outside (wrapping).
        fn edges(&self) -> [Self::Key; 4];
    }

    /// The reference: scan every prefix, keep the longest that contains the address.
    pub fn linear<P: RefPrefix>(routes: &HashMap<P, NextHopId>, a: P::Key) -> Option<NextHopId> {
        routes
            .iter()
            .filter(|(p, _)| p.contains(P::Addr::from(a)))
            .max_by_key(|(p, _)| p.key_len())
            .map(|(_, &nh)| nh)
    }

    /// `extra` plus the edges of every prefix of `routes`.
    pub fn addrs_of<P: RefPrefix>(routes: &HashMap<P, NextHopId>, extra: &[P::Key]) -> Vec<P::Key> {
        let mut v: Vec<P::Key> = extra.to_vec();
        for p in routes.keys() {
            v.extend(p.edges());
        }
        v
    }

    /// Single, batch and longest-match lookups of `t` agree with [`linear`] on every address.
    pub fn check<P: RefPrefix>(t: &Lpm<P>, routes: &HashMap<P, NextHopId>, addrs: &[P::Key]) {
        let mut batch = vec![0; addrs.len()];
        t.lookup_batch(addrs, &mut batch);
        for (&a, &b) in addrs.iter().zip(&batch) {
            let want = linear(routes, a);
            let addr = P::Addr::from(a);
            assert_eq!(t.lookup(addr), want, "{addr}");
            assert_eq!((b != NO_ROUTE).then_some(b), want, "batch {addr}");
            let lm = t.longest_match(addr).map(|(_, nh)| nh);
            assert_eq!(lm, want);
        }
    }

    /// A table built at once from `routes` answers like the linear scan.
    pub fn matches_linear_scan<P: RefPrefix>(routes: &HashMap<P, NextHopId>, extra: &[P::Key]) {
        let t = Lpm::from_routes(routes.iter().map(|(&p, &n)| (p, n)));
        check(&t, routes, &addrs_of(routes, extra));
    }

    /// A table patched by inserts (`true`) and removals answers like the linear scan over a
    /// hash-map model of the same operations, and like a fresh build from the model.
    pub fn add_delete_sequence<P: RefPrefix>(
        ops: &[(P, NextHopId, bool)],
        extra: &[P::Key],
    ) -> Result<(), TestCaseError> {
        let mut t = Lpm::new();
        let mut model = HashMap::new();
        for &(p, nh, add) in ops {
            if add {
                prop_assert_eq!(t.insert(p, nh), model.insert(p, nh));
            } else {
                prop_assert_eq!(t.remove(p), model.remove(&p));
            }
        }
        check(&t, &model, &addrs_of(&model, extra));
        // The incrementally patched structure answers like a fresh build.
        let fresh = Lpm::from_routes(model.iter().map(|(&p, &n)| (p, n)));
        for a in addrs_of(&model, extra) {
            prop_assert_eq!(fresh.lookup(P::Addr::from(a)), t.lookup(P::Addr::from(a)));
        }
        Ok(())
    }
}
