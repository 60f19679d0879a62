//! IPv6 input and forwarding (RFC 8200, RFC 4443, RFC 4291 scoping).
//!
//! `input` validates the fixed header and payload length, trims padding,
//! drops martians, delivers packets for the engine (its addresses, the
//! all-nodes/all-routers groups, its solicited-node groups) locally, refuses
//! to forward link-local traffic and answers hop-limit expiry. `forward`
//! picks the next hop, sends Packet Too Big above the egress MTU (routers
//! never fragment IPv6), decrements the hop limit (no header checksum in
//! IPv6) and hands the frame to the neighbor stage.

use crate::l3::nexthop::Reject;
use std::net::{IpAddr, Ipv6Addr};

use super::local;
use crate::context::counters::{Drop, Stage};
use crate::context::icmp_error::Icmp6Error;
use crate::context::martian;
use crate::context::{ipv6_at, write_macs, Ctx, Hooks, ETH_HDR};
use crate::l3::poptrie::{Leaf, NO_ROUTE};
use crate::steer::flow_hash_v6;
use crate::xsk::Desc;

/// Validates the header; returns the frame (trimmed) and the destination
/// when the packet is to be forwarded.
#[inline]
pub fn input<H: Hooks>(
    ctx: &mut Ctx,
    hooks: &mut H,
    port: u16,
    mut d: Desc,
) -> Option<(Desc, u128)> {
    ctx.st.counters.stage(Stage::Ip6Input, 1);
    let f = ctx.umem.data(&d);
    let Some(ip) = f.get(ETH_HDR..) else {
        ctx.drop(port, d, Drop::Ip6Malformed);
        return None;
    };
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        ctx.drop(port, d, Drop::Ip6Malformed);
        return None;
    }
    let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    if 40 + plen > ip.len() {
        // A jumbogram (payload length 0 with a hop-by-hop option) cannot fit a frame either.
        ctx.drop(port, d, Drop::Ip6Malformed);
        return None;
    }
    let hop_limit = ip[7];
    let src = ipv6_at(ip, 8);
    let dst = ipv6_at(ip, 24);
    d.len = (ETH_HDR + 40 + plen) as u32;
    if martian::martian_src_v6(src) && !src.is_unspecified() {
        ctx.drop(port, d, Drop::Ip6Martian);
        return None;
    }
    if martian::martian_dst_v6(dst) {
        ctx.drop(port, d, Drop::Ip6Martian);
        return None;
    }
    if dst.is_multicast() {
        if for_us_multicast(ctx, port, dst) {
            local::input6(ctx, hooks, port, d);
        } else {
            ctx.drop(port, d, Drop::Ip6Multicast);
        }
        return None;
    }
    if ctx.ifs.is_local_v6(dst) {
        local::input6(ctx, hooks, port, d);
        return None;
    }
    if src.is_unspecified() {
        // Only DAD's solicitations come from ::, and they are not forwarded.
        ctx.drop(port, d, Drop::Ip6Martian);
        return None;
    }
    if martian::link_local_v6(src) || martian::link_local_v6(dst) {
        ctx.drop(port, d, Drop::Ip6LinkLocal);
        return None;
    }
    if !super::ip4::rpf_ok(ctx, port, IpAddr::V6(src)) {
        ctx.drop(port, d, Drop::RpfFailed);
        return None;
    }
    if hop_limit <= 1 {
        ctx.icmp6_error(port, &d, Icmp6Error::HopLimitExceeded);
        ctx.drop(port, d, Drop::Ip6HopLimit);
        return None;
    }
    Some((d, u128::from(dst)))
}

/// All-nodes, all-routers, or a solicited-node group of one of the port's addresses.
fn for_us_multicast(ctx: &Ctx, port: u16, dst: Ipv6Addr) -> bool {
    let s = dst.segments();
    if dst == Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)
        || dst == Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2)
    {
        return true;
    }
    if s[..6] == [0xff02, 0, 0, 0, 0, 1] && s[6] >> 8 == 0xff {
        let o = dst.octets();
        if let Some(p) = ctx.ifs.port(port) {
            return p.link_local().octets()[13..] == o[13..]
                || p.v6.iter().any(|(a, _)| a.octets()[13..] == o[13..]);
        }
    }
    false
}

/// Forwards a packet `input` accepted, with its LPM result.
#[inline]
pub fn forward<H: Hooks>(
    ctx: &mut Ctx,
    hooks: &mut H,
    port: u16,
    d: Desc,
    dst: Ipv6Addr,
    leaf: Leaf,
) {
    if leaf == NO_ROUTE {
        ctx.icmp6_error(port, &d, Icmp6Error::NoRoute);
        ctx.drop(port, d, Drop::Ip6NoRoute);
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
                ctx.icmp6_error(port, &d, Icmp6Error::NoRoute);
                ctx.drop(port, d, Drop::RouteUnreachable);
            }
            Some(Reject::Prohibit) => {
                ctx.icmp6_error(port, &d, Icmp6Error::AdminProhibited);
                ctx.drop(port, d, Drop::RouteProhibit);
            }
            None => {
                ctx.icmp6_error(port, &d, Icmp6Error::NoRoute);
                ctx.drop(port, d, Drop::Ip6NoRoute);
            }
        }
        return;
    };
    let nh = match hop.gateway {
        None => dst,
        Some(IpAddr::V6(g)) => g,
        Some(IpAddr::V4(_)) => {
            ctx.icmp6_error(port, &d, Icmp6Error::NoRoute);
            ctx.drop(port, d, Drop::Ip6NoRoute);
            return;
        }
    };
    if !hooks.forward(ctx, port, hop.port, d) {
        return;
    }
    let mtu = ctx.ifs.port(hop.port).map_or(1500, |p| p.mtu);
    if d.len as usize - ETH_HDR > usize::from(mtu) {
        ctx.icmp6_error(
            port,
            &d,
            Icmp6Error::PacketTooBig {
                mtu: u32::from(mtu),
            },
        );
        ctx.drop(port, d, Drop::Ip6TooBig);
        return;
    }
    if let (Some(mac), Some(p)) = (ctx.neigh.get_v6(hop.port, nh), ctx.ifs.port(hop.port)) {
        let src = p.mac;
        let f = ctx.umem.data_mut(&d);
        if let Some(h) = f.get_mut(ETH_HDR + 7) {
            *h -= 1;
        }
        write_macs(f, mac, src);
        ctx.send(hop.port, d);
        return;
    }
    if let Some(h) = ctx.umem.data_mut(&d).get_mut(ETH_HDR + 7) {
        *h -= 1;
    }
    ctx.emit(hop.port, IpAddr::V6(nh), d);
}

/// Flow label aside, the 5-tuple keeps a flow on one ECMP member (ports when
/// TCP/UDP directly follows the fixed header).
fn flow_hash(frame: &[u8]) -> u32 {
    let Some(ip) = frame.get(ETH_HDR..).filter(|ip| ip.len() >= 40) else {
        return 0;
    };
    let nh = ip[6];
    let (sp, dp) = match (nh, ip.get(40..44)) {
        (6 | 17, Some(p)) => (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        ),
        _ => (0, 0),
    };
    flow_hash_v6(ipv6_at(ip, 8), ipv6_at(ip, 24), sp, dp, nh)
}
