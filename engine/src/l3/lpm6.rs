//! IPv6 longest-prefix match: a [`Poptrie`] over 128-bit keys with a 16-bit direct array.
//!
//! [`Lpm6`] is the single-threaded table, the generic [`Lpm`] over [`Ipv6Prefix`] (prefixes in
//! a [`BinaryTrie`](super::poptrie::BinaryTrie), lookups in the Poptrie built from it);
//! [`crate::l3::route_table::RouteTable`] shares the same pieces between one writer and many
//! readers.

use std::net::Ipv6Addr;

use super::lpm::{Lpm, LpmPrefix};
use super::poptrie::Poptrie;
use super::prefix::Ipv6Prefix;

/// The read-side IPv6 lookup structure.
pub type Fib6 = Poptrie<u128>;

/// An IPv6 LPM table mapping prefixes to next-hop indices.
pub type Lpm6 = Lpm<Ipv6Prefix>;

impl LpmPrefix for Ipv6Prefix {
    type Key = u128;
    type Addr = Ipv6Addr;
    #[inline]
    fn key(&self) -> u128 {
        self.bits()
    }
    #[inline]
    fn key_len(&self) -> u32 {
        u32::from(self.len())
    }
    fn from_key(key: u128, len: u8) -> Option<Self> {
        Ipv6Prefix::from_bits(key, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::lpm::reference::{self, RefPrefix};
    use crate::l3::poptrie::NO_ROUTE;
    use crate::l3::testdata;
    use proptest::prelude::*;

    impl RefPrefix for Ipv6Prefix {
        fn contains(&self, a: Ipv6Addr) -> bool {
            Ipv6Prefix::contains(self, a)
        }
        fn edges(&self) -> [u128; 4] {
            let (f, l) = (self.bits(), u128::from(self.last()));
            [f, l, f.wrapping_sub(1), l.wrapping_add(1)]
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
            reference::matches_linear_scan(&routes, &extra);
        }

        #[test]
        fn add_delete_sequence(ops in prop::collection::vec((prefix(), 0u16..8, any::<bool>()), 1..120),
                               extra in prop::collection::vec(any::<u128>(), 32)) {
            reference::add_delete_sequence(&ops, &extra)?;
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
            assert_eq!(
                (b != NO_ROUTE).then_some(b),
                want,
                "batch {}",
                Ipv6Addr::from(a)
            );
        }
    }
}
