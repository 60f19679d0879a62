//! IPv6 longest-prefix match: a [`Poptrie`] over 128-bit keys with a 16-bit direct array.
//!
//! [`Lpm6`] is the single-threaded table (prefixes in a [`BinaryTrie`], lookups in the Poptrie
//! built from it); [`crate::l3::route_table::RouteTable`] shares the same pieces between one
//! writer and many readers.

use std::net::Ipv6Addr;

use super::nexthop::NextHopId;
use super::poptrie::{BinaryTrie, Leaf, Poptrie, NO_ROUTE};
use super::prefix::Ipv6Prefix;

/// The read-side IPv6 lookup structure.
pub type Fib6 = Poptrie<u128>;

/// An IPv6 LPM table mapping prefixes to next-hop indices.
#[derive(Debug, Clone)]
pub struct Lpm6 {
    trie: BinaryTrie<u128>,
    fib: Fib6,
}

impl Default for Lpm6 {
    fn default() -> Self {
        Self::new()
    }
}

impl Lpm6 {
    pub fn new() -> Self {
        let trie = BinaryTrie::new();
        let fib = Poptrie::build(&trie);
        Lpm6 { trie, fib }
    }

    /// Builds a table from many routes at once (one build instead of one patch per route).
    /// A later duplicate of a prefix replaces the earlier one.
    pub fn from_routes(routes: impl IntoIterator<Item = (Ipv6Prefix, NextHopId)>) -> Self {
        let mut trie = BinaryTrie::new();
        for (p, nh) in routes {
            trie.insert(p.bits(), u32::from(p.len()), nh);
        }
        let fib = Poptrie::build(&trie);
        Lpm6 { trie, fib }
    }

    /// Adds or replaces a route; returns the previous next hop of that prefix.
    /// `nh` must be below [`NO_ROUTE`].
    pub fn insert(&mut self, p: Ipv6Prefix, nh: NextHopId) -> Option<NextHopId> {
        assert!(nh != NO_ROUTE, "next-hop index {nh} is reserved");
        let old = self.trie.insert(p.bits(), u32::from(p.len()), nh);
        if old != Some(nh) {
            self.fib.update(&self.trie, p.bits(), u32::from(p.len()));
        }
        old
    }

    /// Removes a route; returns its next hop.
    pub fn remove(&mut self, p: Ipv6Prefix) -> Option<NextHopId> {
        let old = self.trie.remove(p.bits(), u32::from(p.len()));
        if old.is_some() {
            self.fib.update(&self.trie, p.bits(), u32::from(p.len()));
        }
        old
    }

    /// The next hop of exactly this prefix.
    pub fn get(&self, p: Ipv6Prefix) -> Option<NextHopId> {
        self.trie.get(p.bits(), u32::from(p.len()))
    }

    pub fn len(&self) -> usize {
        self.trie.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trie.is_empty()
    }

    /// The next hop for `addr`, from the Poptrie.
    #[inline]
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<NextHopId> {
        let v = self.fib.lookup(u128::from(addr));
        (v != NO_ROUTE).then_some(v)
    }

    /// The longest matching prefix and its next hop, from the binary trie (control plane speed).
    pub fn longest_match(&self, addr: Ipv6Addr) -> Option<(Ipv6Prefix, NextHopId)> {
        let (len, nh) = self.trie.longest_match(u128::from(addr))?;
        Some((Ipv6Prefix::from_bits(u128::from(addr), len as u8)?, nh))
    }

    /// Burst lookup on addresses as big-endian integers; [`NO_ROUTE`] where nothing matches.
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u128], out: &mut [Leaf]) {
        self.fib.lookup_batch(addrs, out)
    }

    /// Rebuilds the lookup structure from scratch (what a full FIB rebuild costs).
    pub fn rebuild(&mut self) {
        self.fib = Poptrie::build(&self.trie);
    }

    /// The read-side structure.
    pub fn fib(&self) -> &Fib6 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::testdata;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn linear(routes: &HashMap<Ipv6Prefix, NextHopId>, a: u128) -> Option<NextHopId> {
        routes
            .iter()
            .filter(|(p, _)| p.contains(Ipv6Addr::from(a)))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, &nh)| nh)
    }

    fn addrs_of(routes: &HashMap<Ipv6Prefix, NextHopId>, extra: &[u128]) -> Vec<u128> {
        let mut v: Vec<u128> = extra.to_vec();
        for p in routes.keys() {
            let (f, l) = (p.bits(), u128::from(p.last()));
            v.extend([f, l, f.wrapping_sub(1), l.wrapping_add(1)]);
        }
        v
    }

    fn check(t: &Lpm6, routes: &HashMap<Ipv6Prefix, NextHopId>, addrs: &[u128]) {
        let mut batch = vec![0; addrs.len()];
        t.lookup_batch(addrs, &mut batch);
        for (&a, &b) in addrs.iter().zip(&batch) {
            let want = linear(routes, a);
            assert_eq!(t.lookup(Ipv6Addr::from(a)), want, "{}", Ipv6Addr::from(a));
            assert_eq!((b != NO_ROUTE).then_some(b), want, "batch {}", Ipv6Addr::from(a));
            assert_eq!(t.longest_match(Ipv6Addr::from(a)).map(|(_, nh)| nh), want);
        }
    }

    /// Overlapping prefixes of every length, /0 and /128 included, near a few bases.
    fn prefix() -> impl Strategy<Value = Ipv6Prefix> {
        let bases = vec![0u128, 0x2001_0002u128 << 96, 0x2a00u128 << 112, u128::MAX];
        (prop::sample::select(bases), any::<u128>(), 0u8..=128).prop_map(|(base, noise, len)| {
            // Mostly short noise so prefixes nest; sometimes full-width.
            let noise = if len > 100 { noise } else { noise >> 24 };
            Ipv6Prefix::from_bits(base ^ noise, len).unwrap()
        })
    }

    #[test]
    fn small_table_by_hand() {
        let mut t = Lpm6::new();
        let p = |s: &str| s.parse::<Ipv6Prefix>().unwrap();
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        t.insert(p("::/0"), 1);
        t.insert(p("2001:2::/48"), 2);
        t.insert(p("2001:2:0:7::/64"), 3);
        t.insert(p("2001:2:0:7::1/128"), 4);
        assert_eq!(t.lookup(a("2a00::1")), Some(1));
        assert_eq!(t.lookup(a("2001:2:0:ffff::1")), Some(2));
        assert_eq!(t.lookup(a("2001:2:0:7::2")), Some(3));
        assert_eq!(t.lookup(a("2001:2:0:7::1")), Some(4));
        assert_eq!(t.remove(p("2001:2:0:7::/64")), Some(3));
        assert_eq!(t.lookup(a("2001:2:0:7::2")), Some(2));
        assert_eq!(t.lookup(a("2001:2:0:7::1")), Some(4));
        assert_eq!(t.remove(p("::/0")), Some(1));
        assert_eq!(t.lookup(a("2a00::1")), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn matches_linear_scan(routes in prop::collection::hash_map(prefix(), 0u16..100, 0..150),
                               extra in prop::collection::vec(any::<u128>(), 64)) {
            let t = Lpm6::from_routes(routes.iter().map(|(&p, &n)| (p, n)));
            check(&t, &routes, &addrs_of(&routes, &extra));
        }

        #[test]
        fn add_delete_sequence(ops in prop::collection::vec((prefix(), 0u16..8, any::<bool>()), 1..120),
                               extra in prop::collection::vec(any::<u128>(), 32)) {
            let mut t = Lpm6::new();
            let mut model = HashMap::new();
            for (p, nh, add) in ops {
                if add {
                    prop_assert_eq!(t.insert(p, nh), model.insert(p, nh));
                } else {
                    prop_assert_eq!(t.remove(p), model.remove(&p));
                }
            }
            check(&t, &model, &addrs_of(&model, &extra));
        }
    }

    /// The full IPv6 table: first and last address of every prefix plus a million random
    /// addresses inside 2000::/3 agree with the per-length hash-map reference.
    #[test]
    fn full_table_matches_reference() {
        let routes = testdata::full_table_v6();
        assert!(routes.len() > 150_000);
        let t = Lpm6::from_routes(routes.iter().copied());
        let reference = testdata::Reference6::new(&routes);
        let mut addrs = Vec::with_capacity(routes.len() * 2 + 1_000_000);
        for (p, _) in &routes {
            addrs.push(p.bits());
            addrs.push(u128::from(p.last()));
        }
        let mut x = 7u64;
        for _ in 0..1_000_000 {
            x = testdata::splitmix(x);
            let y = testdata::splitmix(x ^ 1);
            let a = (u128::from(x) << 64 | u128::from(y)) >> 3 | 1 << 125;
            addrs.push(a);
        }
        let mut batch = vec![0; addrs.len()];
        t.lookup_batch(&addrs, &mut batch);
        for (&a, &b) in addrs.iter().zip(&batch) {
            let want = reference.lookup(a);
            assert_eq!(t.lookup(Ipv6Addr::from(a)), want, "{}", Ipv6Addr::from(a));
            assert_eq!((b != NO_ROUTE).then_some(b), want, "batch {}", Ipv6Addr::from(a));
        }
    }
}
