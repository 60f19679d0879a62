//! IPv4 input and forwarding (RFC 1812 §5.2–5.3).
//!
//! `input` validates the header (version, IHL, lengths, checksum), trims
//! Ethernet padding, drops martians, hands packets for the engine's own
//! addresses to local delivery and answers TTL expiry; what is left goes to
//! `forward` after one batched LPM for the burst. `forward` picks the next
//! hop (ECMP by flow hash), enforces the egress MTU (Fragmentation Needed
//! with DF, else fragments), decrements the TTL with an RFC 1624 checksum
//! update and hands the frame to the neighbor stage. Packets with options
//! take the same path; options are neither interpreted nor dropped (counted
//! as slow path only by their IHL).

use crate::l3::nexthop::Reject;
use std::net::{IpAddr, Ipv4Addr};

use super::fragment::{FragError, Fragmenter};
use super::local;
use crate::context::counters::{Drop, Stage};
use crate::context::icmp_error::Icmp4Error;
use crate::context::martian;
use crate::context::{write_macs, Ctx, Hooks, Pre, ETHERTYPE_IPV4, ETH_HDR};
use crate::l3::poptrie::{Leaf, NO_ROUTE};
use crate::steer::flow_hash_v4;
use crate::wire::checksum;
use crate::xsk::Desc;

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Validates the header; returns the destination (host order) when the
/// packet is to be forwarded. Every other outcome (local, error, drop) is
/// handled here.
#[inline]
pub fn input<H: Hooks>(ctx: &mut Ctx, hooks: &mut H, port: u16, mut d: Desc) -> Option<u32> {
    ctx.st.counters.stage(Stage::Ip4Input, 1);
    let f = ctx.umem.data(&d);
    let Some(ip) = f.get(ETH_HDR..) else {
        ctx.drop(port, d, Drop::Ip4Malformed);
        return None;
    };
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        ctx.drop(port, d, Drop::Ip4Malformed);
        return None;
    }
    let hl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if hl < 20 || total < hl || total > ip.len() {
        ctx.drop(port, d, Drop::Ip4Malformed);
        return None;
    }
    if !checksum::ipv4_header_ok(&ip[..hl]) {
        ctx.drop(port, d, Drop::Ip4BadChecksum);
        return None;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let mut dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let ttl = ip[8];
    // Ethernet pads short frames: the IP total length is the truth.
    d.len = (ETH_HDR + total) as u32;
    if martian::martian_src_v4(src) {
        ctx.drop(port, d, Drop::Ip4MartianSrc);
        return None;
    }
    let mut translated = false;
    match hooks.prerouting4(ctx, port, d, dst) {
        Pre::Forward(to) => {
            dst = to;
            translated = true;
        }
        Pre::Continue => {}
        Pre::Done => return None,
    }
    if !translated && ctx.ifs.is_local_v4(dst) {
        local::input4(ctx, hooks, port, d);
        return None;
    }
    if dst.is_broadcast() || ctx.ifs.is_subnet_broadcast_v4(port, u32::from(dst)) {
        // Broadcasts are not forwarded (RFC 1812 §5.3.5.1/2) and nothing
        // local listens for them.
        ctx.drop(port, d, Drop::LocalIgnored);
        return None;
    }
    if dst.is_multicast() {
        ctx.drop(port, d, Drop::Ip4Multicast);
        return None;
    }
    if martian::martian_dst_v4(dst) {
        ctx.drop(port, d, Drop::Ip4MartianDst);
        return None;
    }
    if !rpf_ok(ctx, port, IpAddr::V4(src)) {
        ctx.drop(port, d, Drop::RpfFailed);
        return None;
    }
    if ttl <= 1 {
        ctx.icmp4_error(port, &d, Icmp4Error::TimeExceeded);
        ctx.drop(port, d, Drop::Ip4TtlExpired);
        return None;
    }
    Some(u32::from(dst))
}

/// The reverse-path check of a forwarded packet's source (RFC 3704): strict
/// wants the route back to leave by the ingress port, loose any route. One
/// more LPM per packet, only on ports where it is on.
#[inline]
pub fn rpf_ok(ctx: &Ctx, port: u16, src: IpAddr) -> bool {
    use crate::context::tables::RpFilter;
    match ctx.ifs.rpf(port) {
        RpFilter::Off => true,
        RpFilter::Loose => ctx
            .routes
            .fib
            .lookup(src)
            .is_some_and(|id| ctx.routes.select(id, 0).is_some()),
        RpFilter::Strict => ctx
            .routes
            .fib
            .lookup(src)
            .and_then(|id| ctx.routes.select(id, 0))
            .is_some_and(|h| h.port == port),
    }
}

/// Forwards a packet `input` accepted, with its LPM result.
#[inline]
pub fn forward<H: Hooks>(
    ctx: &mut Ctx,
    hooks: &mut H,
    port: u16,
    d: Desc,
    dst: Ipv4Addr,
    leaf: Leaf,
) {
    if leaf == NO_ROUTE {
        ctx.icmp4_error(port, &d, Icmp4Error::NetUnreachable);
        ctx.drop(port, d, Drop::Ip4NoRoute);
        return;
    }
    let hash = if ctx.routes.is_group(leaf) {
        flow_hash(ctx.umem.data(&d))
    } else {
        0
    };
    let Some(hop) = ctx.routes.select(leaf, hash) else {
        match ctx.routes.reject(leaf) {
            Some(Reject::Blackhole) => ctx.drop(port, d, Drop::RouteBlackhole),
            Some(Reject::Unreachable) => {
                ctx.icmp4_error(port, &d, Icmp4Error::HostUnreachable);
                ctx.drop(port, d, Drop::RouteUnreachable);
            }
            Some(Reject::Prohibit) => {
                ctx.icmp4_error(port, &d, Icmp4Error::AdminProhibited);
                ctx.drop(port, d, Drop::RouteProhibit);
            }
            None => {
                ctx.icmp4_error(port, &d, Icmp4Error::NetUnreachable);
                ctx.drop(port, d, Drop::Ip4NoRoute);
            }
        }
        return;
    };
    let nh = match hop.gateway {
        None => dst,
        Some(IpAddr::V4(g)) => g,
        Some(IpAddr::V6(_)) => {
            // IPv4 over an IPv6 next hop (RFC 8950) is not supported.
            ctx.icmp4_error(port, &d, Icmp4Error::NetUnreachable);
            ctx.drop(port, d, Drop::Ip4NoRoute);
            return;
        }
    };
    if !hooks.forward(ctx, port, hop.port, d) {
        return;
    }
    let mtu = ctx.ifs.port(hop.port).map_or(1500, |p| p.mtu);
    let total = d.len as usize - ETH_HDR;
    let too_big = total > usize::from(mtu);
    if too_big
        && ctx
            .umem
            .data(&d)
            .get(ETH_HDR + 6)
            .is_some_and(|b| b & 0x40 != 0)
    {
        // DF: the error goes to the sender as it sent the packet (before NAT).
        ctx.icmp4_error(port, &d, Icmp4Error::FragNeeded { mtu });
        ctx.drop(port, d, Drop::Ip4FragNeeded);
        return;
    }
    if !hooks.postrouting4(ctx, port, hop.port, d) {
        return;
    }
    if too_big {
        decrement_ttl(ctx.umem.data_mut(&d));
        fragment(ctx, port, hop.port, nh, d, mtu);
        return;
    }
    // Fast path: the neighbor is known; TTL and MACs in one pass over the frame.
    if let (Some(mac), Some(p)) = (ctx.neigh.get_v4(hop.port, nh), ctx.ifs.port(hop.port)) {
        let src = p.mac;
        let f = ctx.umem.data_mut(&d);
        decrement_ttl(f);
        write_macs(f, mac, src);
        ctx.send(hop.port, d);
        return;
    }
    decrement_ttl(ctx.umem.data_mut(&d));
    ctx.emit(hop.port, IpAddr::V4(nh), d);
}

/// TTL − 1 and the RFC 1624 update of the header checksum (TTL shares a
/// 16-bit word with the protocol).
#[inline]
pub fn decrement_ttl(frame: &mut [u8]) {
    let Some(ip) = frame.get_mut(ETH_HDR..ETH_HDR + 20) else {
        return;
    };
    let old = u16::from_be_bytes([ip[8], ip[9]]);
    ip[8] = ip[8].wrapping_sub(1);
    let new = u16::from_be_bytes([ip[8], ip[9]]);
    let c = checksum::update16(u16::from_be_bytes([ip[10], ip[11]]), old, new);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The 5-tuple hash that keeps a flow on one ECMP member (ports only for
/// TCP/UDP first fragments).
fn flow_hash(frame: &[u8]) -> u32 {
    let Some(ip) = frame.get(ETH_HDR..) else {
        return 0;
    };
    if ip.len() < 20 {
        return 0;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let proto = ip[9];
    let hl = usize::from(ip[0] & 0x0f) * 4;
    let first = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff == 0;
    let (sp, dp) = match (proto, first, ip.get(hl..hl + 4)) {
        (PROTO_TCP | PROTO_UDP, true, Some(p)) => (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        ),
        _ => (0, 0),
    };
    let _ = PROTO_ICMP;
    flow_hash_v4(src, dst, sp, dp, proto)
}

/// Fragments `d` (TTL already decremented) for `mtu` and emits the pieces;
/// the original frame is freed. The original is copied once to the stack
/// (frames are at most 4 KiB) so the fragmenter can read it while fragments
/// are written into fresh frames: a slow path, taken only without DF.
fn fragment(ctx: &mut Ctx, in_port: u16, out_port: u16, nh: Ipv4Addr, d: Desc, mtu: u16) {
    let mut copy = [0u8; 4096];
    let orig = ctx.umem.data(&d);
    let Some(ip) = orig.get(ETH_HDR..).filter(|ip| ip.len() <= copy.len()) else {
        ctx.drop(in_port, d, Drop::Ip4FragFailed);
        return;
    };
    let len = ip.len();
    copy[..len].copy_from_slice(ip);
    let mut fr = match Fragmenter::new(&copy[..len], mtu) {
        Ok(fr) => fr,
        Err(FragError::DontFragment | FragError::Malformed | FragError::MtuTooSmall) => {
            ctx.drop(in_port, d, Drop::Ip4FragFailed);
            return;
        }
    };
    let mut made = 0;
    loop {
        let Some(mut f) = ctx.umem.alloc() else {
            ctx.st.counters.drop(Drop::NoFrame);
            break;
        };
        let buf = ctx.umem.buf_mut(&f);
        let n = match buf.get_mut(ETH_HDR..) {
            Some(b) => fr.next_into(b),
            None => None,
        };
        match n {
            Some(n) => {
                buf[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
                f.len = (ETH_HDR + n) as u32;
                made += 1;
                ctx.emit(out_port, IpAddr::V4(nh), f);
            }
            None => {
                ctx.umem.free(f);
                break;
            }
        }
    }
    if made == 0 {
        ctx.drop(in_port, d, Drop::Ip4FragFailed);
    } else {
        ctx.st.counters.drop(Drop::Ip4Fragmented);
        ctx.consumed(in_port, d);
    }
}
