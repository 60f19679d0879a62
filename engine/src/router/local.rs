//! Local delivery: packets addressed to the engine itself.
//!
//! IPv4: echo requests are answered (the reply is routed back like any
//! packet the engine originates); UDP to any port gets Port Unreachable (no
//! UDP service listens), so `traceroute` to the engine ends; other
//! protocols get Protocol Unreachable; fragments are not reassembled.
//! IPv6: neighbor solicitations/advertisements (RFC 4861), echo, UDP as above.
//! UDP to a `[[udp]]` echo port is echoed (`udp_echo`). TCP to the engine
//! goes to the `local_tcp` hooks (load-balancer probe answers, the TCP endpoint).

use std::net::{IpAddr, Ipv6Addr};

use crate::context::counters::{Drop, Stage};
use crate::context::icmp_error::{self, Icmp4Error, Icmp6Error};
use crate::context::neigh_frames::{self, NeighMsg};
use crate::context::{ipv6_at, write_macs, Ctx, Hooks, ETH_HDR};
use crate::wire::ip::IpProtocol;
use crate::wire::ipv6::Ipv6Packet;
use crate::xsk::Desc;

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

pub fn input4<H: Hooks>(ctx: &mut Ctx, hooks: &mut H, port: u16, d: Desc) {
    ctx.st.counters.stage(Stage::Local, 1);
    let f = ctx.umem.data(&d);
    let Some(ip) = f.get(ETH_HDR..) else {
        return ctx.drop(port, d, Drop::LocalMalformed);
    };
    // input() checked the header; read what is needed.
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if frag & 0x3fff != 0 {
        // MF or an offset: the engine does not reassemble.
        return ctx.drop(port, d, Drop::LocalIgnored);
    }
    let src = std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    match ip[9] {
        PROTO_ICMP => {
            let hl = usize::from(ip[0] & 0x0f) * 4;
            let ty = ip.get(hl).copied();
            if ty == Some(8) {
                let ok = ctx
                    .umem
                    .data_mut(&d)
                    .get_mut(ETH_HDR..)
                    .is_some_and(icmp_error::echo_reply_v4_in_place);
                if ok {
                    ctx.originate4(port, src, d);
                } else {
                    ctx.drop(port, d, Drop::LocalMalformed);
                }
            } else {
                ctx.drop(port, d, Drop::LocalIcmpIgnored);
            }
        }
        PROTO_UDP
            if super::udp_echo::dst_port4(ip).is_some_and(|p| super::udp_echo::serves(ctx, p)) =>
        {
            if super::udp_echo::reply4(ctx, &d) {
                ctx.originate4(port, src, d);
            } else {
                ctx.drop(port, d, Drop::LocalIgnored);
            }
        }
        PROTO_UDP => {
            ctx.icmp4_error_from(port, &d, Icmp4Error::PortUnreachable, Some(dst));
            ctx.drop(port, d, Drop::LocalPortUnreachable);
        }
        PROTO_TCP => hooks.local_tcp4(ctx, port, d),
        _ => {
            ctx.icmp4_error_from(port, &d, Icmp4Error::ProtocolUnreachable, Some(dst));
            ctx.drop(port, d, Drop::LocalProtoUnreachable);
        }
    }
}

pub fn input6<H: Hooks>(ctx: &mut Ctx, hooks: &mut H, port: u16, d: Desc) {
    ctx.st.counters.stage(Stage::Local, 1);
    let f = ctx.umem.data(&d);
    let Some(ip) = f.get(ETH_HDR..) else {
        return ctx.drop(port, d, Drop::LocalMalformed);
    };
    let ext = match Ipv6Packet::new_checked(ip).and_then(|p| p.ext_headers()) {
        Ok(e) => e,
        Err(_) => return ctx.drop(port, d, Drop::LocalMalformed),
    };
    if ext.fragment.is_some() {
        return ctx.drop(port, d, Drop::LocalIgnored);
    }
    let src = ipv6_at(ip, 8);
    let dst = ipv6_at(ip, 24);
    let multicast = dst.is_multicast();
    match ext.upper_protocol {
        IpProtocol::Icmpv6 => {
            let ty = ip.get(ext.upper_offset).copied();
            match ty {
                Some(135 | 136) => nd(ctx, port, d),
                Some(128) => {
                    let ok = ext.count == 0
                        && ctx
                            .umem
                            .data_mut(&d)
                            .get_mut(ETH_HDR..)
                            .is_some_and(icmp_error::echo_reply_v6_in_place);
                    if ok {
                        if multicast {
                            // A reply to a group ping comes from the port's own address.
                            fix_multicast_echo_source(ctx, port, d, src);
                        }
                        ctx.originate6(port, src, d);
                    } else {
                        ctx.drop(port, d, Drop::LocalMalformed);
                    }
                }
                _ => ctx.drop(port, d, Drop::LocalIcmpIgnored),
            }
        }
        _ if multicast => ctx.drop(port, d, Drop::LocalIgnored),
        IpProtocol::Udp
            if super::udp_echo::dst_port6(ip, ext.upper_offset)
                .is_some_and(|p| super::udp_echo::serves(ctx, p)) =>
        {
            if super::udp_echo::reply6(ctx, &d, ext.upper_offset) {
                ctx.originate6(port, src, d);
            } else {
                ctx.drop(port, d, Drop::LocalIgnored);
            }
        }
        IpProtocol::Udp => {
            ctx.icmp6_error_from(port, &d, Icmp6Error::PortUnreachable, Some(dst));
            ctx.drop(port, d, Drop::LocalPortUnreachable);
        }
        IpProtocol::Tcp => hooks.local_tcp6(ctx, port, d, ext.upper_offset),
        _ => ctx.drop(port, d, Drop::LocalProtoUnreachable),
    }
}

/// echo_reply_v6_in_place swapped the addresses, which put the group address
/// in the source: replace it with the port's address and fix the checksum.
fn fix_multicast_echo_source(ctx: &mut Ctx, port: u16, d: Desc, peer: Ipv6Addr) {
    let Some(own) = ctx.ifs.port(port).map(|p| p.src_v6(peer)) else {
        return;
    };
    let f = ctx.umem.data_mut(&d);
    let Some(ip) = f.get_mut(ETH_HDR..) else {
        return;
    };
    if ip.len() < 44 {
        return;
    }
    let old: [u8; 16] = ip[8..24].try_into().unwrap_or([0; 16]);
    ip[8..24].copy_from_slice(&own.octets());
    let c = u16::from_be_bytes([ip[42], ip[43]]);
    let c = crate::wire::checksum::update_bytes(c, &old, &own.octets());
    ip[42..44].copy_from_slice(&c.to_be_bytes());
}

/// Neighbor discovery on a routed port: answer solicitations for the port's
/// addresses (solicited, override, router flag), learn from the source
/// link-layer option and from advertisements.
fn nd(ctx: &mut Ctx, port: u16, mut d: Desc) {
    ctx.st.counters.stage(Stage::Ip6Nd, 1);
    let f = ctx.umem.data(&d);
    let eth_src: [u8; 6] = f
        .get(6..12)
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; 6]);
    let msg = f.get(ETH_HDR..).and_then(neigh_frames::parse_ndisc);
    let Some(p) = ctx.ifs.port(port) else {
        return ctx.drop(port, d, Drop::NdMalformed);
    };
    let mac = p.mac;
    match msg {
        Some(NeighMsg::NeighSolicit {
            src_ip,
            src_mac,
            target,
        }) => {
            if !p.owns_v6(target) {
                return ctx.drop(port, d, Drop::NdConsumed);
            }
            let dad = src_ip.is_unspecified();
            if let (false, Some(m)) = (dad, src_mac) {
                ctx.neighbor_seen(port, IpAddr::V6(src_ip), m, false);
            }
            // RFC 4861 §7.2.4: to the soliciting node, or all-nodes for DAD.
            let (dst_ip, dst_mac, solicited) = if dad {
                (
                    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
                    [0x33, 0x33, 0, 0, 0, 1],
                    false,
                )
            } else {
                (src_ip, src_mac.unwrap_or(eth_src), true)
            };
            let buf = ctx.umem.buf_mut(&d);
            match neigh_frames::neighbor_advert(
                buf, mac, target, dst_mac, dst_ip, target, solicited, true,
            ) {
                Some(n) => {
                    set_router_flag(&mut buf[..n]);
                    write_macs(buf, dst_mac, mac);
                    d.len = n as u32;
                    ctx.send(port, d);
                }
                None => ctx.drop(port, d, Drop::NdMalformed),
            }
        }
        Some(NeighMsg::NeighAdvert {
            target,
            target_mac,
            solicited,
            ..
        }) => {
            let m = target_mac.unwrap_or(eth_src);
            if p.on_link_v6(target) {
                ctx.neighbor_seen(port, IpAddr::V6(target), m, solicited);
            }
            ctx.st.counters.drop(Drop::NdConsumed);
            ctx.consumed(port, d);
        }
        _ => ctx.drop(port, d, Drop::NdMalformed),
    }
}

/// Sets the R flag of a neighbor advertisement frame (the engine is a router,
/// RFC 4861 §4.4) and patches the ICMPv6 checksum.
fn set_router_flag(frame: &mut [u8]) {
    let at = ETH_HDR + 40;
    let Some(icmp) = frame.get_mut(at..at + 8) else {
        return;
    };
    if icmp[0] != 136 || icmp[4] & 0x80 != 0 {
        return;
    }
    let old = u16::from_be_bytes([icmp[4], icmp[5]]);
    icmp[4] |= 0x80;
    let new = u16::from_be_bytes([icmp[4], icmp[5]]);
    let c = crate::wire::checksum::update16(u16::from_be_bytes([icmp[2], icmp[3]]), old, new);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
}
