//! UDP echo on the engine's addresses (`[[udp]] app = "echo"`, RFC 862):
//! the datagram goes back in place, addresses and ports swapped. The UDP
//! checksum covers a pseudo-header whose sum does not depend on the order
//! of the addresses, and the ports likewise, so it stays valid unchanged
//! (a zero checksum stays zero); only the IPv4 header checksum is redone
//! for the new TTL. Never toward a broadcast, multicast or unspecified
//! source, and only for datagrams to the engine's own unicast addresses.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::context::counters::Stage;
use crate::context::{Ctx, ETH_HDR};
use crate::xsk::Desc;

/// Whether the engine echoes UDP to this port.
#[inline]
pub fn serves(ctx: &Ctx, port: u16) -> bool {
    !ctx.tables.udp_echo.is_empty() && ctx.tables.udp_echo.contains(&port)
}

/// The UDP destination port of an IPv4 datagram at ETH_HDR (header length checked by ip4-input).
pub fn dst_port4(ip: &[u8]) -> Option<u16> {
    let hl = usize::from(*ip.first()? & 0x0f) * 4;
    ip.get(hl + 2..hl + 4)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
}

/// Turns the datagram into its echo; false when it must not be answered.
pub fn reply4(ctx: &mut Ctx, d: &Desc) -> bool {
    let Some(ip) = ctx.umem.data_mut(d).get_mut(ETH_HDR..) else {
        return false;
    };
    let hl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip.len() < hl + 8 || total < hl + 8 || total > ip.len() {
        return false;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    if src.is_broadcast() || src.is_multicast() || src.is_unspecified() || !ctx.ifs.is_local_v4(dst)
    {
        return false;
    }
    let ip = &mut ctx.umem.data_mut(d)[ETH_HDR..];
    for k in 0..4 {
        ip.swap(12 + k, 16 + k);
    }
    for k in 0..2 {
        ip.swap(hl + k, hl + 2 + k);
    }
    ip[8] = 64;
    ip[10] = 0;
    ip[11] = 0;
    let c = crate::wire::checksum::checksum(&ip[..hl]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ctx.st.counters.stage(Stage::UdpEcho, 1);
    true
}

/// IPv6 (no extension headers: `upper` is 40): the same, hop limit 64.
pub fn reply6(ctx: &mut Ctx, d: &Desc, upper: usize) -> bool {
    let Some(ip) = ctx.umem.data_mut(d).get_mut(ETH_HDR..) else {
        return false;
    };
    if upper != 40 || ip.len() < 48 {
        return false;
    }
    let src = crate::context::ipv6_at(ip, 8);
    let dst: Ipv6Addr = crate::context::ipv6_at(ip, 24);
    if src.is_multicast() || src.is_unspecified() || !ctx.ifs.is_local_v6(dst) {
        return false;
    }
    let ip = &mut ctx.umem.data_mut(d)[ETH_HDR..];
    for k in 0..16 {
        ip.swap(8 + k, 24 + k);
    }
    for k in 0..2 {
        ip.swap(40 + k, 42 + k);
    }
    ip[7] = 64;
    ctx.st.counters.stage(Stage::UdpEcho, 1);
    true
}

/// The UDP destination port of an IPv6 datagram whose UDP header is at `upper`.
pub fn dst_port6(ip: &[u8], upper: usize) -> Option<u16> {
    ip.get(upper + 2..upper + 4)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
}
