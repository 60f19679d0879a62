//! Addresses a router must not forward from or to (RFC 1812 §5.3.7 for IPv4,
//! RFC 4291 §2.5 for IPv6).
//!
//! Limited broadcast 255.255.255.255 as a *destination* is not a martian: it
//! is never forwarded, but it is delivered locally, so the caller checks it
//! (together with directed broadcasts, which need the interface prefixes)
//! before asking [`martian_dst_v4`].

use core::net::{Ipv4Addr, Ipv6Addr};

/// 0/8 ("this network"), 127/8 (loopback), 224/4 (multicast),
/// 255.255.255.255 and 240/4 (class E): none may be the source of a
/// forwarded packet (RFC 1812 §5.3.7, §4.2.2.11).
#[inline]
pub fn martian_src_v4(a: Ipv4Addr) -> bool {
    let o = a.octets()[0];
    o == 0 || o == 127 || o >= 224
}

/// 0/8, 127/8 and class E 240/4 other than 255.255.255.255 (the limited
/// broadcast is the caller's to handle: delivered locally, never forwarded).
/// Multicast destinations are not martians (they are dropped or delivered by
/// the multicast path, not the unicast one).
#[inline]
pub fn martian_dst_v4(a: Ipv4Addr) -> bool {
    let o = a.octets()[0];
    o == 0 || o == 127 || (o >= 240 && a != Ipv4Addr::BROADCAST)
}

/// `::` (only valid before an address is configured, never forwarded),
/// `::1` and multicast (RFC 4291 §2.7: never a source).
#[inline]
pub fn martian_src_v6(a: Ipv6Addr) -> bool {
    a.is_unspecified() || a.is_loopback() || a.is_multicast()
}

/// `::` and `::1` as destinations (RFC 4291 §2.5.2, §2.5.3).
#[inline]
pub fn martian_dst_v6(a: Ipv6Addr) -> bool {
    a.is_unspecified() || a.is_loopback()
}

/// fe80::/10: link-local, never forwarded off-link (RFC 4291 §2.5.6), as
/// either source or destination.
#[inline]
pub fn link_local_v6(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_table() {
        // (address, martian source, martian destination)
        let cases = [
            ("0.0.0.0", true, true),
            ("0.1.2.3", true, true),
            ("1.0.0.0", false, false),
            ("126.255.255.255", false, false),
            ("127.0.0.1", true, true),
            ("127.255.255.255", true, true),
            ("128.0.0.0", false, false),
            ("198.18.0.1", false, false),
            ("223.255.255.255", false, false),
            ("224.0.0.1", true, false),
            ("239.255.255.255", true, false),
            ("240.0.0.0", true, true),
            ("254.255.255.255", true, true),
            ("255.255.255.254", true, true),
            ("255.255.255.255", true, false),
        ];
        for (a, s, d) in cases {
            assert_eq!(martian_src_v4(v4(a)), s, "src {a}");
            assert_eq!(martian_dst_v4(v4(a)), d, "dst {a}");
        }
    }

    #[test]
    fn v6_table() {
        // (address, martian source, martian destination, link-local)
        let cases = [
            ("::", true, true, false),
            ("::1", true, true, false),
            ("::2", false, false, false),
            ("2001:2::1", false, false, false),
            ("ff02::1", true, false, false),
            ("ff0e::1", true, false, false),
            ("fe80::1", false, false, true),
            ("febf:ffff::1", false, false, true),
            ("fec0::1", false, false, false),
            ("fe7f::1", false, false, false),
            ("::ffff:127.0.0.1", false, false, false),
        ];
        for (a, s, d, ll) in cases {
            assert_eq!(martian_src_v6(v6(a)), s, "src {a}");
            assert_eq!(martian_dst_v6(v6(a)), d, "dst {a}");
            assert_eq!(link_local_v6(v6(a)), ll, "ll {a}");
        }
    }
}
