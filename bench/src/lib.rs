//! Shared helpers of the benches: test frames and data loading.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::{BufRead, BufReader};

use engine::l3::prefix::IpPrefix;

/// Path of the full Internet table shipped with the project.
pub const BGP_PREFIXES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/bgp-prefixes.txt.gz");

/// The full table with deterministic next hops `table_next_hop(prefix, 16)`.
pub fn full_table() -> Vec<(IpPrefix, u16)> {
    let f = std::fs::File::open(BGP_PREFIXES).expect("bench/data/bgp-prefixes.txt.gz");
    BufReader::new(flate2::read::GzDecoder::new(f))
        .lines()
        .map(|l| {
            let p: IpPrefix = l.expect("read").trim().parse().expect("prefix");
            (p, engine::l3::table_next_hop(&p, 16))
        })
        .collect()
}

/// splitmix64: a fixed pseudo-random sequence for traces.
pub fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Resident set size of this process in bytes (from /proc/self/statm), for memory deltas.
pub fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

pub mod gen;
