//! The IP addresses a transport checksum covers (RFC 768, RFC 9293 §3.1,
//! RFC 8200 §8.1), as a trait over `Ipv4Addr` and `Ipv6Addr`.
//!
//! UDP and TCP take `src: A, dst: A` with `A: PseudoHeader`, so the address
//! family is chosen at compile time: no branch per packet, and a v4/v6 mix is
//! a type error rather than a wrong checksum.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::IpProtocol;

/// An IP address family that contributes a pseudo-header to transport checksums.
pub trait PseudoHeader: Copy + core::fmt::Debug {
    /// True for IPv6, where a UDP checksum is mandatory (RFC 8200 §8.1).
    const IS_V6: bool;

    /// One's-complement sum of the pseudo-header for an upper-layer packet of
    /// `length` bytes. IPv4 lengths above 65535 cannot occur on the wire and
    /// are truncated (the checksum then fails; nothing panics).
    fn pseudo_header_sum(src: Self, dst: Self, protocol: IpProtocol, length: u32) -> u16;

    /// The new checksum after one address of the pseudo-header changed from
    /// `old` to `new` (RFC 1624), for NAT rewrites.
    fn update_checksum(check: u16, old: Self, new: Self) -> u16;
}

impl PseudoHeader for Ipv4Addr {
    const IS_V6: bool = false;

    #[inline]
    fn pseudo_header_sum(src: Self, dst: Self, protocol: IpProtocol, length: u32) -> u16 {
        checksum::pseudo_header_v4(&src.octets(), &dst.octets(), protocol.into(), length as u16)
    }

    #[inline]
    fn update_checksum(check: u16, old: Self, new: Self) -> u16 {
        checksum::update32(check, old.octets(), new.octets())
    }
}

impl PseudoHeader for Ipv6Addr {
    const IS_V6: bool = true;

    #[inline]
    fn pseudo_header_sum(src: Self, dst: Self, protocol: IpProtocol, length: u32) -> u16 {
        checksum::pseudo_header_v6(&src.octets(), &dst.octets(), protocol.into(), length)
    }

    #[inline]
    fn update_checksum(check: u16, old: Self, new: Self) -> u16 {
        checksum::update_bytes(check, &old.octets(), &new.octets())
    }
}

/// Reads a big-endian u16 at `at`. Callers index only after `new_checked`.
#[inline]
pub(crate) fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

/// Reads a big-endian u32 at `at`. Callers index only after `new_checked`.
#[inline]
pub(crate) fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_matches_checksum_module() {
        let s = Ipv4Addr::new(198, 18, 0, 1);
        let d = Ipv4Addr::new(198, 18, 0, 2);
        assert_eq!(
            Ipv4Addr::pseudo_header_sum(s, d, IpProtocol::Udp, 24),
            checksum::pseudo_header_v4(&[198, 18, 0, 1], &[198, 18, 0, 2], 17, 24)
        );
    }

    #[test]
    fn address_update_equals_recompute() {
        let s = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
        let d = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
        let n = Ipv6Addr::new(0x2001, 2, 0xab, 0, 0, 0, 7, 9);
        let before = !Ipv6Addr::pseudo_header_sum(s, d, IpProtocol::Tcp, 40);
        let after = !Ipv6Addr::pseudo_header_sum(n, d, IpProtocol::Tcp, 40);
        assert_eq!(Ipv6Addr::update_checksum(before, s, n), after);
        let s4 = Ipv4Addr::new(198, 18, 0, 1);
        let n4 = Ipv4Addr::new(198, 19, 7, 200);
        let d4 = Ipv4Addr::new(198, 18, 0, 2);
        let before = !Ipv4Addr::pseudo_header_sum(s4, d4, IpProtocol::Tcp, 40);
        let after = !Ipv4Addr::pseudo_header_sum(n4, d4, IpProtocol::Tcp, 40);
        assert_eq!(Ipv4Addr::update_checksum(before, s4, n4), after);
    }
}
