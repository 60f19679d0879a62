//! Where features attach to the router's path: the router calls these
//! hooks at fixed points (netfilter's PREROUTING, FORWARD, POSTROUTING and
//! local input; VPP's feature arcs), and the pipeline (`dataplane::pipeline`)
//! implements them with the features it holds. So the router imports no
//! feature, and a feature imports no other: adding one means a stage in its
//! own folder and a line in the pipeline's implementation.
//!
//! Each hook takes the frame and either gives it back to the router
//! (`Continue`/`true`) or keeps it: dropped, answered, handed to another
//! worker or translated. A hook that keeps a frame has put it in exactly one
//! place (TX queue, free list with a drop reason, a neighbor's queue, another
//! worker's inbox), as every stage must.

use std::net::Ipv4Addr;

use super::counters::Drop;
use super::Ctx;
use crate::xsk::Desc;

/// What ip4-input does next with a packet after `prerouting4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pre {
    /// Translated: forward it to this (inside or backend) destination.
    Forward(Ipv4Addr),
    /// Not translated: go on as usual (local delivery for the engine's own address).
    Continue,
    /// Consumed by the hook (dropped, answered or handed to another worker).
    Done,
}

/// The feature hooks on the router's path, in the order a packet meets them.
pub trait Hooks {
    /// ip4-input, after header checks and before the local/forward decision:
    /// the load balancer (VIPs, full-NAT addresses) and the NAT (its outside
    /// addresses) translate the destination here.
    fn prerouting4(&mut self, ctx: &mut Ctx, port: u16, d: Desc, dst: Ipv4Addr) -> Pre;

    /// ip4/ip6-forward, once the egress port is known and before the MTU
    /// check: the packet filter. False when the hook kept the frame.
    fn forward(&mut self, ctx: &mut Ctx, in_port: u16, out_port: u16, d: Desc) -> bool;

    /// ip4-forward after the MTU check, before fragmentation and the TTL
    /// decrement: source NAT, the load balancer's DNAT replies. False when
    /// the hook kept the frame.
    fn postrouting4(&mut self, ctx: &mut Ctx, in_port: u16, out_port: u16, d: Desc) -> bool;

    /// Local delivery of an IPv4 TCP segment addressed to the engine (not a
    /// fragment): health-probe answers, then the TCP endpoint.
    fn local_tcp4(&mut self, ctx: &mut Ctx, port: u16, d: Desc);

    /// Local delivery of an IPv6 TCP segment; `l4` is the TCP header's
    /// offset in the IPv6 packet.
    fn local_tcp6(&mut self, ctx: &mut Ctx, port: u16, d: Desc, l4: usize);

    /// Whether ARP on `port` answers for `ip` though no port owns it (a NAT
    /// pool address on an outside port, a load-balancer VIP).
    fn answers_arp(&self, port: u16, ip: Ipv4Addr) -> bool;
}

/// No feature on the path: a plain router (tests, benches of the router alone).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Hooks for NoHooks {
    #[inline]
    fn prerouting4(&mut self, _: &mut Ctx, _: u16, _: Desc, _: Ipv4Addr) -> Pre {
        Pre::Continue
    }
    #[inline]
    fn forward(&mut self, _: &mut Ctx, _: u16, _: u16, _: Desc) -> bool {
        true
    }
    #[inline]
    fn postrouting4(&mut self, _: &mut Ctx, _: u16, _: u16, _: Desc) -> bool {
        true
    }
    fn local_tcp4(&mut self, ctx: &mut Ctx, port: u16, d: Desc) {
        ctx.drop(port, d, Drop::LocalPortUnreachable);
    }
    fn local_tcp6(&mut self, ctx: &mut Ctx, port: u16, d: Desc, _: usize) {
        ctx.drop(port, d, Drop::LocalPortUnreachable);
    }
    fn answers_arp(&self, _: u16, _: Ipv4Addr) -> bool {
        false
    }
}

/// A packet to a translating feature's address that did not translate: the
/// engine's own address takes it (ping, traceroute to the NAT), anything
/// else is dropped with `why`.
pub fn untranslated(ctx: &mut Ctx, port: u16, d: Desc, dst: u32, why: Drop) -> Pre {
    if ctx.ifs.is_local_v4(Ipv4Addr::from(dst)) {
        Pre::Continue
    } else {
        ctx.drop(port, d, why);
        Pre::Done
    }
}
