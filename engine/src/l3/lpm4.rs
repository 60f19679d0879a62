//! IPv4 longest-prefix match: a [`Poptrie`] over 32-bit keys with an 18-bit direct array.
//!
//! [`Lpm4`] is the single-threaded table (prefixes in a [`BinaryTrie`], lookups in the Poptrie
//! built from it); [`crate::l3::route_table::RouteTable`] shares the same pieces between one
//! writer and many readers.

use std::net::Ipv4Addr;

use super::nexthop::NextHopId;
use super::poptrie::{BinaryTrie, Leaf, Poptrie, NO_ROUTE};
use super::prefix::Ipv4Prefix;

/// The read-side IPv4 lookup structure.
pub type Fib4 = Poptrie<u32>;

/// An IPv4 LPM table mapping prefixes to next-hop indices.
#[derive(Debug, Clone)]
pub struct Lpm4 {
    trie: BinaryTrie<u32>,
    fib: Fib4,
}

impl Default for Lpm4 {
    fn default() -> Self {
        Self::new()
    }
}

impl Lpm4 {
    pub fn new() -> Self {
        let trie = BinaryTrie::new();
        let fib = Poptrie::build(&trie);
        Lpm4 { trie, fib }
    }

    /// Builds a table from many routes at once (one build instead of one patch per route).
    /// A later duplicate of a prefix replaces the earlier one.
    pub fn from_routes(routes: impl IntoIterator<Item = (Ipv4Prefix, NextHopId)>) -> Self {
        let mut trie = BinaryTrie::new();
        for (p, nh) in routes {
            trie.insert(p.bits(), u32::from(p.len()), nh);
        }
        let fib = Poptrie::build(&trie);
        Lpm4 { trie, fib }
    }

    /// Adds or replaces a route; returns the previous next hop of that prefix.
    /// `nh` must be below [`NO_ROUTE`].
    pub fn insert(&mut self, p: Ipv4Prefix, nh: NextHopId) -> Option<NextHopId> {
        assert!(nh != NO_ROUTE, "next-hop index {nh} is reserved");
        let old = self.trie.insert(p.bits(), u32::from(p.len()), nh);
        if old != Some(nh) {
            self.fib.update(&self.trie, p.bits(), u32::from(p.len()));
        }
        old
    }

    /// Removes a route; returns its next hop.
    pub fn remove(&mut self, p: Ipv4Prefix) -> Option<NextHopId> {
        let old = self.trie.remove(p.bits(), u32::from(p.len()));
        if old.is_some() {
            self.fib.update(&self.trie, p.bits(), u32::from(p.len()));
        }
        old
    }

    /// The next hop of exactly this prefix.
    pub fn get(&self, p: Ipv4Prefix) -> Option<NextHopId> {
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
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<NextHopId> {
        let v = self.fib.lookup(u32::from(addr));
        (v != NO_ROUTE).then_some(v)
    }

    /// The longest matching prefix and its next hop, from the binary trie (control plane speed).
    pub fn longest_match(&self, addr: Ipv4Addr) -> Option<(Ipv4Prefix, NextHopId)> {
        let (len, nh) = self.trie.longest_match(u32::from(addr))?;
        Some((Ipv4Prefix::from_bits(u32::from(addr), len as u8)?, nh))
    }

    /// Burst lookup on addresses as big-endian integers; [`NO_ROUTE`] where nothing matches.
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Leaf]) {
        self.fib.lookup_batch(addrs, out)
    }

    /// Rebuilds the lookup structure from scratch (what a full FIB rebuild costs).
    pub fn rebuild(&mut self) {
        self.fib = Poptrie::build(&self.trie);
    }

    /// The read-side structure.
    pub fn fib(&self) -> &Fib4 {
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

    /// The reference: scan every prefix, keep the longest that contains the address.
    fn linear(routes: &HashMap<Ipv4Prefix, NextHopId>, a: u32) -> Option<NextHopId> {
        routes
            .iter()
            .filter(|(p, _)| p.contains(Ipv4Addr::from(a)))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, &nh)| nh)
    }

    fn addrs_of(routes: &HashMap<Ipv4Prefix, NextHopId>, extra: &[u32]) -> Vec<u32> {
        let mut v: Vec<u32> = extra.to_vec();
        for p in routes.keys() {
            let (f, l) = (p.bits(), u32::from(p.last()));
            v.extend([f, l, f.wrapping_sub(1), l.wrapping_add(1)]);
        }
        v
    }

    fn check(t: &Lpm4, routes: &HashMap<Ipv4Prefix, NextHopId>, addrs: &[u32]) {
        let mut batch = vec![0; addrs.len()];
        t.lookup_batch(addrs, &mut batch);
        for (&a, &b) in addrs.iter().zip(&batch) {
            let want = linear(routes, a);
            assert_eq!(t.lookup(Ipv4Addr::from(a)), want, "{}", Ipv4Addr::from(a));
            assert_eq!((b != NO_ROUTE).then_some(b), want, "batch {}", Ipv4Addr::from(a));
            let lm = t.longest_match(Ipv4Addr::from(a)).map(|(_, nh)| nh);
            assert_eq!(lm, want);
        }
    }

    /// Prefixes clustered in a few /8s so that they overlap, of every length including /0, /32.
    fn prefix() -> impl Strategy<Value = Ipv4Prefix> {
        (prop::sample::select(vec![0u32, 0xc612_0000, 0xc613_ff00, 0xffff_ffff]), any::<u32>(), 0u8..=32)
            .prop_map(|(base, noise, len)| {
                let noise = if len > 20 { noise } else { noise & 0x00ff_ffff };
                Ipv4Prefix::from_bits(base ^ (noise >> 4), len).unwrap()
            })
    }

    #[test]
    fn small_table_by_hand() {
        let mut t = Lpm4::new();
        let p = |s: &str| s.parse::<Ipv4Prefix>().unwrap();
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(t.lookup(a("198.18.0.1")), None);
        t.insert(p("0.0.0.0/0"), 1);
        t.insert(p("198.18.0.0/15"), 2);
        t.insert(p("198.18.7.0/24"), 3);
        t.insert(p("198.18.7.128/25"), 4);
        t.insert(p("198.18.7.129/32"), 5);
        assert_eq!(t.lookup(a("8.8.8.8")), Some(1));
        assert_eq!(t.lookup(a("198.19.255.255")), Some(2));
        assert_eq!(t.lookup(a("198.18.7.127")), Some(3));
        assert_eq!(t.lookup(a("198.18.7.128")), Some(4));
        assert_eq!(t.lookup(a("198.18.7.129")), Some(5));
        assert_eq!(t.lookup(a("198.18.7.130")), Some(4));
        assert_eq!(t.longest_match(a("198.18.7.130")), Some((p("198.18.7.128/25"), 4)));
        assert_eq!(t.remove(p("198.18.7.128/25")), Some(4));
        assert_eq!(t.lookup(a("198.18.7.130")), Some(3));
        assert_eq!(t.lookup(a("198.18.7.129")), Some(5));
        assert_eq!(t.remove(p("0.0.0.0/0")), Some(1));
        assert_eq!(t.lookup(a("8.8.8.8")), None);
        assert_eq!(t.len(), 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn matches_linear_scan(routes in prop::collection::hash_map(prefix(), 0u16..100, 0..200),
                               extra in prop::collection::vec(any::<u32>(), 64)) {
            let t = Lpm4::from_routes(routes.iter().map(|(&p, &n)| (p, n)));
            check(&t, &routes, &addrs_of(&routes, &extra));
        }

        #[test]
        fn add_delete_sequence(ops in prop::collection::vec((prefix(), 0u16..8, any::<bool>()), 1..150),
                               extra in prop::collection::vec(any::<u32>(), 32)) {
            let mut t = Lpm4::new();
            let mut model = HashMap::new();
            for (p, nh, add) in ops {
                if add {
                    prop_assert_eq!(t.insert(p, nh), model.insert(p, nh));
                } else {
                    prop_assert_eq!(t.remove(p), model.remove(&p));
                }
            }
            check(&t, &model, &addrs_of(&model, &extra));
            // The incrementally patched structure answers like a fresh build.
            let fresh = Lpm4::from_routes(model.iter().map(|(&p, &n)| (p, n)));
            for a in addrs_of(&model, &extra) {
                prop_assert_eq!(fresh.lookup(Ipv4Addr::from(a)), t.lookup(Ipv4Addr::from(a)));
            }
        }
    }

    #[test]
    fn garbage_is_compacted() {
        let mut t = Lpm4::new();
        let p: Ipv4Prefix = "198.18.0.0/24".parse().unwrap();
        for i in 0..20_000u16 {
            t.insert(p, i % 7 + 1);
        }
        assert!(t.fib.memory_bytes() < 1 << 22, "{:?}", t.fib);
        // The last insert was i = 19_999: next hop 19_999 % 7 + 1 = 1.
        assert_eq!(t.lookup("198.18.0.9".parse().unwrap()), Some(1));
    }

    /// The full Internet table: every prefix's first and last address and a million random
    /// addresses agree with a per-length hash map reference.
    #[test]
    fn full_table_matches_reference() {
        let routes: Vec<(Ipv4Prefix, NextHopId)> = testdata::full_table_v4();
        assert!(routes.len() > 900_000);
        let t = Lpm4::from_routes(routes.iter().copied());
        let reference = testdata::Reference4::new(&routes);
        let mut addrs = Vec::with_capacity(routes.len() * 2 + 1_000_000);
        for (p, _) in &routes {
            addrs.push(p.bits());
            addrs.push(u32::from(p.last()));
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..1_000_000 {
            x = testdata::splitmix(x);
            addrs.push((x >> 32) as u32);
        }
        let mut batch = vec![0; addrs.len()];
        t.lookup_batch(&addrs, &mut batch);
        for (&a, &b) in addrs.iter().zip(&batch) {
            let want = reference.lookup(a);
            assert_eq!(t.lookup(Ipv4Addr::from(a)), want, "{}", Ipv4Addr::from(a));
            assert_eq!((b != NO_ROUTE).then_some(b), want, "batch {}", Ipv4Addr::from(a));
        }
    }

    /// Patching the full table: delete and add thousands of prefixes one by one, then compare
    /// with the reference built from the resulting set.
    #[test]
    fn full_table_incremental_updates() {
        let mut routes: HashMap<Ipv4Prefix, NextHopId> = testdata::full_table_v4().into_iter().collect();
        let mut t = Lpm4::from_routes(routes.iter().map(|(&p, &n)| (p, n)));
        let mut keys: Vec<Ipv4Prefix> = routes.keys().copied().collect();
        keys.sort();
        let mut x = 42u64;
        let mut touched = Vec::new();
        for i in 0..6000 {
            x = testdata::splitmix(x);
            let p = if i % 2 == 0 {
                let p = keys[(x % keys.len() as u64) as usize];
                assert_eq!(t.remove(p), routes.remove(&p));
                p
            } else {
                let len = 8 + (x >> 8) as u8 % 25;
                let p = Ipv4Prefix::from_bits((x >> 32) as u32, len).unwrap();
                let nh = (x >> 16) as u16 % 16;
                assert_eq!(t.insert(p, nh), routes.insert(p, nh));
                p
            };
            touched.push(p);
        }
        let v: Vec<(Ipv4Prefix, NextHopId)> = routes.iter().map(|(&p, &n)| (p, n)).collect();
        let reference = testdata::Reference4::new(&v);
        let mut addrs: Vec<u32> = Vec::new();
        for p in &touched {
            let (f, l) = (p.bits(), u32::from(p.last()));
            addrs.extend([f, l, f.wrapping_sub(1), l.wrapping_add(1), f | ((l - f) / 2)]);
        }
        for _ in 0..200_000 {
            x = testdata::splitmix(x);
            addrs.push((x >> 32) as u32);
        }
        for a in addrs {
            assert_eq!(t.lookup(Ipv4Addr::from(a)), reference.lookup(a), "{}", Ipv4Addr::from(a));
        }
    }
}
