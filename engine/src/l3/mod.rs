//! Layer 3 routing: longest-prefix match for IPv4 and IPv6, next hops, the route table.
//!
//! - [`prefix`]: IPv4/IPv6 prefix types.
//! - [`poptrie`]: the lookup structure (shared by both families), see docs/ARCHITECTURE.md.
//! - [`lpm`]: the single-threaded LPM table, generic over the family, and its linear-scan
//!   reference; [`lpm4`], [`lpm6`]: the IPv4 and IPv6 tables with their tests.
//! - [`nexthop`]: what a lookup's small integer means, ECMP member selection.
//! - [`route_table`]: the RIB (metrics, ECMP) and the lock-free FIB publication to workers.
//! - [`routes_file`]: the `ip route` syntax.
//! - [`route_cmd`]: `pktengine route lookup`.

pub mod lpm;
pub mod lpm4;
pub mod lpm6;
pub mod nexthop;
pub mod poptrie;
pub mod prefix;
pub mod route_cmd;
pub mod route_table;
pub mod routes_file;
#[cfg(test)]
mod testdata;

use prefix::IpPrefix;

/// A deterministic next hop in `0..n` for a prefix, for tables that carry none (the full
/// Internet table of the tests and benches): FNV-1a over the address bytes and the length.
pub fn table_next_hop(p: &IpPrefix, n: u16) -> nexthop::NextHopId {
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |b: u8| {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    };
    match p {
        IpPrefix::V4(q) => q.addr().octets().into_iter().for_each(&mut eat),
        IpPrefix::V6(q) => q.addr().octets().into_iter().for_each(&mut eat),
    }
    eat(p.len());
    (h % u32::from(n.max(1))) as nexthop::NextHopId
}
