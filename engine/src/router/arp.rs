//! ARP on routed ports (RFC 826, RFC 1812 §3.3.2): answer requests for the
//! port's addresses, learn senders on the port's subnets, take replies.
//! The reply is written over the request's frame and sent back at once.

use std::net::{IpAddr, Ipv4Addr};

use crate::context::counters::{Drop, Stage};
use crate::context::neigh_frames::{self, NeighMsg};
use crate::context::{Ctx, Hooks, ETH_HDR};
use crate::xsk::Desc;

pub fn input<H: Hooks>(ctx: &mut Ctx, hooks: &H, port: u16, mut d: Desc) {
    ctx.st.counters.stage(Stage::Arp, 1);
    let msg = ctx
        .umem
        .data(&d)
        .get(ETH_HDR..)
        .and_then(neigh_frames::parse_arp);
    let Some(p) = ctx.ifs.port(port) else {
        return ctx.drop(port, d, Drop::ArpMalformed);
    };
    let (mac, on_link) = (p.mac, |a: Ipv4Addr| p.on_link_v4(a));
    match msg {
        Some(NeighMsg::ArpRequest {
            sender_mac,
            sender_ip,
            target_ip,
        }) => {
            let sender_ok = on_link(sender_ip) && !sender_ip.is_unspecified();
            // A NAT answers for its pool addresses on its outside ports, a
            // load balancer for its VIPs (the hook says).
            let ours = p.owns_v4(target_ip) || hooks.answers_arp(port, target_ip);
            if sender_ok && (ours || sender_ip == target_ip) {
                // RFC 826: the target merges the sender; a gratuitous ARP refreshes it.
                ctx.neighbor_seen(port, IpAddr::V4(sender_ip), sender_mac, false);
            }
            if !ours {
                return ctx.drop(port, d, Drop::ArpNotForUs);
            }
            let buf = ctx.umem.buf_mut(&d);
            match neigh_frames::arp_reply(buf, mac, target_ip, sender_mac, sender_ip) {
                Some(n) => {
                    d.len = n as u32;
                    ctx.send(port, d);
                }
                None => ctx.drop(port, d, Drop::ArpMalformed),
            }
        }
        Some(NeighMsg::ArpReply {
            sender_mac,
            sender_ip,
            ..
        }) => {
            if on_link(sender_ip) {
                ctx.neighbor_seen(port, IpAddr::V4(sender_ip), sender_mac, true);
            }
            ctx.st.counters.drop(Drop::ArpConsumed);
            ctx.consumed(port, d);
        }
        _ => ctx.drop(port, d, Drop::ArpMalformed),
    }
}
