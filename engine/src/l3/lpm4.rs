//! IPv4 longest-prefix match: a [`Poptrie`] over 32-bit keys with an 18-bit direct array.
//!
//! [`Lpm4`] is the single-threaded table, the generic [`Lpm`] over [`Ipv4Prefix`] (prefixes in
//! a [`BinaryTrie`](super::poptrie::BinaryTrie), lookups in the Poptrie built from it);
//! [`crate::l3::route_table::RouteTable`] shares the same pieces between one writer and many
//! readers.

use std::net::Ipv4Addr;

use super::lpm::{Lpm, LpmPrefix};
use super::poptrie::Poptrie;
use super::prefix::Ipv4Prefix;

/// The read-side IPv4 lookup structure.
pub type Fib4 = Poptrie<u32>;

/// An IPv4 LPM table mapping prefixes to next-hop indices.
pub type Lpm4 = Lpm<Ipv4Prefix>;

impl LpmPrefix for Ipv4Prefix {
    type Key = u32;
    type Addr = Ipv4Addr;
    #[inline]
    fn key(&self) -> u32 {
        self.bits()
    }
    #[inline]
    fn key_len(&self) -> u32 {
        u32::from(self.len())
    }
    fn from_key(key: u32, len: u8) -> Option<Self> {
        Ipv4Prefix::from_bits(key, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::lpm::reference::{self, RefPrefix};
    use crate::l3::nexthop::NextHopId;
    use crate::l3::poptrie::NO_ROUTE;
    use crate::l3::testdata;
    use proptest::prelude::*;
    use std::collections::HashMap;

    impl RefPrefix for Ipv4Prefix {
        fn contains(&self, a: Ipv4Addr) -> bool {
            Ipv4Prefix::contains(self, a)
        }
        fn edges(&self) -> [u32; 4] {
            let (f, l) = (self.bits(), u32::from(self.last()));
            [f, l, f.wrapping_sub(1), l.wrapping_add(1)]
        }
    }

    /// Prefixes clustered in a few /8s so that they overlap, of every length including /0, /32.
    fn prefix() -> impl Strategy<Value = Ipv4Prefix> {
        (
            prop::sample::select(vec![0u32, 0xc612_0000, 0xc613_ff00, 0xffff_ffff]),
            any::<u32>(),
            0u8..=32,
        )
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
        assert_eq!(
            t.longest_match(a("198.18.7.130")),
            Some((p("198.18.7.128/25"), 4))
        );
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
            reference::matches_linear_scan(&routes, &extra);
        }

        #[test]
        fn add_delete_sequence(ops in prop::collection::vec((prefix(), 0u16..8, any::<bool>()), 1..150),
                               extra in prop::collection::vec(any::<u32>(), 32)) {
            reference::add_delete_sequence(&ops, &extra)?;
        }
    }

    #[test]
    fn garbage_is_compacted() {
        let mut t = Lpm4::new();
        let p: Ipv4Prefix = "198.18.0.0/24".parse().unwrap();
        for i in 0..20_000u16 {
            t.insert(p, i % 7 + 1);
        }
        assert!(t.fib().memory_bytes() < 1 << 22, "{:?}", t.fib());
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
            assert_eq!(
                (b != NO_ROUTE).then_some(b),
                want,
                "batch {}",
                Ipv4Addr::from(a)
            );
        }
    }

    /// Patching the full table: delete and add thousands of prefixes one by one, then compare
    /// with the reference built from the resulting set.
    #[test]
    fn full_table_incremental_updates() {
        let mut routes: HashMap<Ipv4Prefix, NextHopId> =
            testdata::full_table_v4().into_iter().collect();
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
            addrs.extend([
                f,
                l,
                f.wrapping_sub(1),
                l.wrapping_add(1),
                f | ((l - f) / 2),
            ]);
        }
        for _ in 0..200_000 {
            x = testdata::splitmix(x);
            addrs.push((x >> 32) as u32);
        }
        for a in addrs {
            assert_eq!(
                t.lookup(Ipv4Addr::from(a)),
                reference.lookup(a),
                "{}",
                Ipv4Addr::from(a)
            );
        }
    }
}
