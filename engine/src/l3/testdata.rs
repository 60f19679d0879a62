//! The full Internet table of `bench/data/` for tests, and per-length hash-map references.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};

use super::nexthop::NextHopId;
use super::prefix::{IpPrefix, Ipv4Prefix, Ipv6Prefix};
use super::table_next_hop;

const TABLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bench/data/bgp-prefixes.txt.gz"
);

fn full_table() -> Vec<IpPrefix> {
    let f = std::fs::File::open(TABLE).expect("bench/data/bgp-prefixes.txt.gz");
    let r = BufReader::new(flate2::read::GzDecoder::new(f));
    r.lines()
        .map(|l| {
            l.expect("read table")
                .trim()
                .parse::<IpPrefix>()
                .expect("prefix")
        })
        .collect()
}

pub fn full_table_v4() -> Vec<(Ipv4Prefix, NextHopId)> {
    full_table()
        .into_iter()
        .filter_map(|p| match p {
            IpPrefix::V4(q) => Some((q, table_next_hop(&p, 16))),
            IpPrefix::V6(_) => None,
        })
        .collect()
}

pub fn full_table_v6() -> Vec<(Ipv6Prefix, NextHopId)> {
    full_table()
        .into_iter()
        .filter_map(|p| match p {
            IpPrefix::V6(q) => Some((q, table_next_hop(&p, 16))),
            IpPrefix::V4(_) => None,
        })
        .collect()
}

/// splitmix64 step: a fixed pseudo-random sequence.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Reference LPM: one hash map per prefix length, probed from the longest length down.
pub struct Reference4 {
    by_len: Vec<(u8, HashMap<u32, NextHopId>)>,
}

impl Reference4 {
    pub fn new(routes: &[(Ipv4Prefix, NextHopId)]) -> Self {
        let mut m: HashMap<u8, HashMap<u32, NextHopId>> = HashMap::new();
        for (p, nh) in routes {
            m.entry(p.len()).or_default().insert(p.bits(), *nh);
        }
        let mut by_len: Vec<_> = m.into_iter().collect();
        by_len.sort_by_key(|e| core::cmp::Reverse(e.0));
        Reference4 { by_len }
    }

    pub fn lookup(&self, a: u32) -> Option<NextHopId> {
        self.by_len.iter().find_map(|(len, m)| {
            let mask = if *len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(*len))
            };
            m.get(&(a & mask)).copied()
        })
    }
}

/// Reference LPM for IPv6, as [`Reference4`].
pub struct Reference6 {
    by_len: Vec<(u8, HashMap<u128, NextHopId>)>,
}

impl Reference6 {
    pub fn new(routes: &[(Ipv6Prefix, NextHopId)]) -> Self {
        let mut m: HashMap<u8, HashMap<u128, NextHopId>> = HashMap::new();
        for (p, nh) in routes {
            m.entry(p.len()).or_default().insert(p.bits(), *nh);
        }
        let mut by_len: Vec<_> = m.into_iter().collect();
        by_len.sort_by_key(|e| core::cmp::Reverse(e.0));
        Reference6 { by_len }
    }

    pub fn lookup(&self, a: u128) -> Option<NextHopId> {
        self.by_len.iter().find_map(|(len, m)| {
            let mask = if *len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(*len))
            };
            m.get(&(a & mask)).copied()
        })
    }
}
