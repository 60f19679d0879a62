//! The pipeline over one received burst, in the l3fwd/VPP shape:
//!
//! ```text
//! classify (Ethernet, MAC filter) ─┬─ arp ─────────────► reply / learn
//!                                  ├─ ip4-input ─┬─ local (echo, UDP, ...)
//!                                  │             └─ ip4-forward ◄─ one batched LPM for the burst
//!                                  └─ ip6-input ─┬─ ip6-nd / local
//!                                                └─ ip6-forward ◄─ one batched LPM for the burst
//! forward/originate ─► neighbor (map hit: rewrite MACs; miss: park + ARP/NS) ─► tx queue per port
//! ```
//!
//! Every packet ends in exactly one place: a TX queue, the free list (with a
//! typed drop reason counted), a neighbor's waiting queue, another worker's
//! inbox, or replaced by packets the engine built (its frame freed). The
//! stages themselves live with the function they serve (`router::ip4`,
//! `router::ip6`, `router::arp`, `router::local`, `l2::forward`); the
//! context they share is `context::Ctx`. This file holds the burst driver
//! and [`Stages`]: each feature's per-worker state and shared tables, and
//! the [`Hooks`] implementation that puts the filter, the NAT, the load
//! balancer and the TCP endpoint on the router's path:
//!
//! ```text
//! ip4-input ─► prerouting4: lb (VIP, full-NAT addresses) ─► nat (outside addresses) ─► local | forward
//! ip4/ip6-forward ─► forward: filter (stateful: conntrack on the NAT's table) ─► MTU ─► postrouting4: nat (SNAT) ─► lb (DNAT replies) ─► TTL, neighbor
//! local tcp ─► lb health-probe answers ─► tcp endpoint
//! arp ─► answers_arp: nat pool on outside ports, lb VIPs
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use super::tables::Tables;
use crate::context::bvi::{BviFrame, Toward, BVI_QUEUE};
use crate::context::capture;
use crate::context::counters::{Drop, Stage};
use crate::context::tables::PortMode;
use crate::context::{Ctx, Hooks, Pre, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_HDR};
use crate::filter::conn::{After, CtWorker, Hint, Outcome, Place};
use crate::filter::Filter;
use crate::l2;
use crate::l3::poptrie::NO_ROUTE;
use crate::lb::LbWorker;
use crate::nat::NatWorker;
use crate::router::{arp, ip4, ip6};
use crate::tcp::endpoint::TcpStack;
use crate::wire::Mac;
use crate::xsk::{Desc, BURST};

/// Each feature's per-worker state (the NAT's table, the load balancer's
/// connections, the TCP endpoint), held by the worker and handed to its
/// feature by [`Stages`]; None where the feature is not configured.
#[derive(Debug, Default)]
pub struct Features {
    pub nat: Option<NatWorker>,
    /// The stateful filter's tracker (its own table when there is no NAT).
    pub ct: Option<CtWorker>,
    pub lb: Option<LbWorker>,
    pub tcp: Option<TcpStack>,
}

impl Features {
    /// The state worker `worker` needs for the features `tables` configure.
    pub fn new(tables: &Tables, worker: u16) -> Features {
        // MSS from the smallest port MTU (IPv4 and TCP headers without options).
        let mss = tables
            .ifs
            .ports
            .iter()
            .map(|p| p.mtu)
            .min()
            .unwrap_or(1500)
            .saturating_sub(40);
        let ct = tables.ct.as_deref();
        Features {
            nat: tables
                .nat
                .as_deref()
                .map(|n| NatWorker::with_tracking(n, worker, ct.map(|c| c.table_part()))),
            ct: ct.map(|c| CtWorker::new(c, worker, tables.nat.is_none())),
            lb: tables.lb.as_deref().map(|l| LbWorker::new(l, worker)),
            tcp: tables.tcp.as_deref().map(|t| TcpStack::new(t, mss, worker)),
        }
    }

    /// A `ctl` dump is under way (NAT sessions, TCP connections): it goes on
    /// one slice per loop iteration, so the worker should not sleep long.
    pub fn dumping(&self) -> bool {
        self.nat.as_ref().is_some_and(NatWorker::dumping)
            || self.tcp.as_ref().is_some_and(|t| t.tw.dumping())
            || self.ct.as_ref().is_some_and(CtWorker::dumping)
    }
}

/// What a burst runs through besides the context: the features' shared
/// tables (and the filter snapshot loaded for this loop), their per-worker
/// state, and the burst's scratch arrays.
#[derive(Debug)]
pub struct Stages<'a> {
    pub tables: &'a Tables,
    pub filter: &'a Filter,
    pub features: &'a mut Features,
    pub scratch: &'a mut Scratch,
}

impl Hooks for Stages<'_> {
    #[inline]
    fn prerouting4(&mut self, ctx: &mut Ctx, port: u16, d: Desc, dst: Ipv4Addr) -> Pre {
        if let Some(w) = self.features.nat.as_mut() {
            w.seen = None;
        }
        let mut dst = dst;
        let mut translated = false;
        if let (Some(lb), Some(w)) = (self.tables.lb.as_deref(), self.features.lb.as_mut()) {
            let a = u32::from(dst);
            let pre = if lb.is_vip(a) {
                crate::lb::stage::to_vip(ctx, lb, w, port, d, a)
            } else if lb.is_snat(a) {
                crate::lb::stage::to_snat(ctx, lb, w, port, d)
            } else {
                Pre::Continue
            };
            match pre {
                Pre::Forward(to) => {
                    dst = to;
                    translated = true;
                }
                Pre::Continue => {}
                Pre::Done => return Pre::Done,
            }
        }
        if let (Some(nat), Some(w)) = (self.tables.nat.as_deref(), self.features.nat.as_mut()) {
            if !translated && nat.is_outside_addr(u32::from(dst)) {
                match crate::nat::stage::prerouting(ctx, nat, w, port, d, u32::from(dst)) {
                    Pre::Forward(to) => {
                        dst = to;
                        translated = true;
                    }
                    Pre::Continue => {}
                    Pre::Done => return Pre::Done,
                }
            }
        }
        if translated {
            Pre::Forward(dst)
        } else {
            Pre::Continue
        }
    }

    #[inline]
    fn forward(&mut self, ctx: &mut Ctx, in_port: u16, out_port: u16, d: Desc) -> bool {
        let hint = self.scratch.cur.take();
        self.scratch.after = After::Nothing;
        let filter = self.filter;
        if !filter.is_stateful() {
            return crate::filter::stage::forward(ctx, filter, in_port, out_port, d);
        }
        let (Some(shared), Some(cw)) = (self.tables.ct.as_deref(), self.features.ct.as_mut())
        else {
            // No connection table: the control thread refuses `ct` rules then.
            return crate::filter::stage::forward(ctx, filter, in_port, out_port, d);
        };
        let outcome = match (self.tables.nat.as_deref(), self.features.nat.as_mut()) {
            (Some(nat), Some(nw)) => {
                let v4 = ctx.ip_of(&d).first().is_some_and(|b| b >> 4 == 4);
                let owner = |pk: &crate::conntrack::packet::CtPacket| {
                    crate::nat::stage::ct_owner(nat, in_port, pk)
                };
                let place = match hint {
                    Some(h) if h.addr == d.addr => Place::Known(h),
                    _ if v4 && crate::nat::stage::translates(nat, in_port, out_port) => {
                        Place::NatOut(&owner)
                    }
                    _ => Place::Plain,
                };
                crate::filter::conn::forward(
                    ctx,
                    filter,
                    shared,
                    &mut cw.local,
                    &mut nw.table,
                    place,
                    in_port,
                    out_port,
                    d,
                )
            }
            _ => match cw.own.as_mut() {
                Some(t) => crate::filter::conn::forward(
                    ctx,
                    filter,
                    shared,
                    &mut cw.local,
                    t,
                    Place::Plain,
                    in_port,
                    out_port,
                    d,
                ),
                None => return crate::filter::stage::forward(ctx, filter, in_port, out_port, d),
            },
        };
        match outcome {
            Outcome::Consumed => false,
            Outcome::Pass(after) => {
                self.scratch.after = after;
                true
            }
        }
    }

    #[inline]
    fn postrouting4(&mut self, ctx: &mut Ctx, in_port: u16, out_port: u16, d: Desc) -> bool {
        let after = std::mem::replace(&mut self.scratch.after, After::Nothing);
        if let (Some(nat), Some(w)) = (self.tables.nat.as_deref(), self.features.nat.as_mut()) {
            if crate::nat::stage::translates(nat, in_port, out_port) {
                let known = match after {
                    After::NatAt(slot) => Some(slot),
                    _ => None,
                };
                if !crate::nat::stage::postrouting(ctx, nat, w, in_port, d, known) {
                    return false;
                }
                if let After::NatNew(t) = after {
                    crate::filter::conn::nat_made(&mut w.table, t);
                }
            }
        }
        if let (Some(lb), Some(w)) = (self.tables.lb.as_deref(), self.features.lb.as_mut()) {
            if lb.has_dnat() && !crate::lb::stage::dnat_reply(ctx, lb, w, in_port, d) {
                return false;
            }
        }
        true
    }

    fn local_tcp4(&mut self, ctx: &mut Ctx, port: u16, d: Desc) {
        if let Some(lb) = self.tables.lb.as_deref() {
            if crate::lb::stage::probe_answer(ctx, lb, port, d) {
                return;
            }
        }
        match self.features.tcp.as_mut() {
            Some(t) => crate::tcp::endpoint::input4(ctx, t, port, d),
            None => ctx.drop(port, d, Drop::LocalPortUnreachable),
        }
    }

    fn local_tcp6(&mut self, ctx: &mut Ctx, port: u16, d: Desc, l4: usize) {
        match self.features.tcp.as_mut() {
            Some(t) => crate::tcp::endpoint::input6(ctx, t, port, d, l4),
            None => ctx.drop(port, d, Drop::LocalPortUnreachable),
        }
    }

    fn answers_arp(&self, port: u16, ip: Ipv4Addr) -> bool {
        let nat_pool = self
            .tables
            .nat
            .as_deref()
            .is_some_and(|n| n.role(port) == crate::nat::Role::Outside && n.in_pool(ip));
        nat_pool || self.tables.lb.as_deref().is_some_and(|l| l.answers_arp(ip))
    }
}

/// Per-burst scratch arrays, kept with the worker so a burst does not
/// zero 3.5 KiB of stack before it starts.
#[derive(Debug)]
pub struct Scratch {
    fwd4: [Desc; BURST],
    dst4: [u32; BURST],
    /// What the NAT's prerouting found for each packet to forward (for the stateful filter).
    hint4: [Option<Hint>; BURST],
    /// The hint of the packet being forwarded.
    cur: Option<Hint>,
    /// What the stateful filter left for the NAT's postrouting, for the packet being forwarded.
    after: After,
    fwd6: [Desc; BURST],
    dst6: [u128; BURST],
    leaves: [crate::l3::poptrie::Leaf; BURST],
    /// The BVI queue's frames being run.
    bvi: Box<[BviFrame; BVI_QUEUE]>,
    /// A run of frames toward the router on one BVI port.
    bvi_burst: [Desc; BURST],
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            fwd4: [Desc::default(); BURST],
            dst4: [0; BURST],
            hint4: [None; BURST],
            cur: None,
            after: After::Nothing,
            fwd6: [Desc::default(); BURST],
            dst6: [0; BURST],
            leaves: [NO_ROUTE; BURST],
            bvi: Box::new([BviFrame::default(); BVI_QUEUE]),
            bvi_burst: [Desc::default(); BURST],
        }
    }
}

/// Runs one received burst from `port` through the pipeline.
pub fn process_burst(ctx: &mut Ctx, stages: &mut Stages, port: u16, descs: &[Desc]) {
    let mut n4 = 0;
    let mut n6 = 0;
    ctx.rx_port = port;
    ctx.st.counters.stage(Stage::Classify, descs.len() as u64);
    let mode = ctx.ifs.port(port).map(|p| p.mode);
    let handed = ctx.handoff != 0;
    // `ctl capture` taps, loaded only while a capture runs on this port (a
    // handed frame was offered to them where it arrived).
    let shared = ctx.tables;
    let taps = match shared.capture.get(usize::from(port)) {
        Some(c) if c.armed() && !handed => Some(c.load()),
        _ => None,
    };
    // A switch port's bridge and MAC table, loaded once for the burst.
    let tables = stages.tables;
    let l2 = if mode == Some(PortMode::Switch) {
        tables.l2.port(port).map(|(sp, b)| (sp, b, b.table.load()))
    } else {
        None
    };
    for &d in descs.iter().take(BURST) {
        if handed {
            // Counted (and captured) where it arrived.
        } else {
            ctx.st.counters.rx(usize::from(port), u64::from(d.len));
        }
        if let Some(taps) = &taps {
            capture::tap_frame(
                taps,
                port,
                ctx.umem.data(&d),
                &ctx.st.events,
                &mut ctx.st.counters,
            );
        }
        if mode == Some(PortMode::Switch) {
            match &l2 {
                Some((sp, bridge, table)) => l2::input(
                    ctx,
                    port,
                    d,
                    &l2::Ingress {
                        sp: *sp,
                        bridge,
                        table,
                    },
                ),
                None => ctx.drop(port, d, Drop::L2Filtered),
            }
            continue;
        }
        match classify(ctx, port, &d) {
            Ok(ETHERTYPE_IPV4) => {
                if let Some(dst) = ip4::input(ctx, stages, port, d) {
                    stages.scratch.fwd4[n4] = d;
                    stages.scratch.dst4[n4] = dst;
                    stages.scratch.hint4[n4] = stages
                        .features
                        .nat
                        .as_mut()
                        .and_then(|w| w.seen.take())
                        .map(|s| Hint {
                            addr: d.addr,
                            slot: s.slot,
                            created: s.created,
                            related: s.related,
                        });
                    n4 += 1;
                }
            }
            Ok(ETHERTYPE_IPV6) => {
                if let Some((d, dst)) = ip6::input(ctx, stages, port, d) {
                    stages.scratch.fwd6[n6] = d;
                    stages.scratch.dst6[n6] = dst;
                    n6 += 1;
                }
            }
            Ok(ETHERTYPE_ARP) => arp::input(ctx, &*stages, port, d),
            Ok(_) => ctx.drop(port, d, Drop::EthUnknownType),
            Err(why) => ctx.drop(port, d, why),
        }
    }
    if n4 > 0 {
        ctx.st.counters.stage(Stage::Ip4Forward, n4 as u64);
        let sc = &mut *stages.scratch;
        ctx.routes
            .fib
            .lookup_v4_batch(&sc.dst4[..n4], &mut sc.leaves[..n4]);
        for i in 0..n4 {
            let (d, dst, leaf) = (
                stages.scratch.fwd4[i],
                stages.scratch.dst4[i],
                stages.scratch.leaves[i],
            );
            stages.scratch.cur = stages.scratch.hint4[i];
            ip4::forward(ctx, stages, port, d, Ipv4Addr::from(dst), leaf);
        }
    }
    if n6 > 0 {
        ctx.st.counters.stage(Stage::Ip6Forward, n6 as u64);
        let sc = &mut *stages.scratch;
        ctx.routes
            .fib
            .lookup_v6_batch(&sc.dst6[..n6], &mut sc.leaves[..n6]);
        for i in 0..n6 {
            let (d, dst, leaf) = (
                stages.scratch.fwd6[i],
                stages.scratch.dst6[i],
                stages.scratch.leaves[i],
            );
            stages.scratch.cur = None;
            ip6::forward(ctx, stages, port, d, Ipv6Addr::from(dst), leaf);
        }
    }
}

/// Rounds of [`run_bvi`] per call: a frame crosses between a bridge and its
/// BVI at most a few times (host → router → bridge; a routed hairpin between
/// two VLANs of one bridge: bridge → router → bridge).
const BVI_ROUNDS: usize = 4;

/// Runs the frames queued between bridges and their routed interfaces
/// (BVIs): toward the router, a run of frames on one BVI port goes through
/// [`process_burst`] as received on that port; toward the bridge, each goes
/// through the switch stage as received from the BVI's member (which learns
/// nothing new: its MAC is a static entry). What those frames queue in turn
/// (an ARP reply, a forwarded packet) runs in the next round; what is left
/// after [`BVI_ROUNDS`] stays for the worker's next iteration.
pub fn run_bvi(ctx: &mut Ctx, stages: &mut Stages) {
    for _ in 0..BVI_ROUNDS {
        if ctx.st.bvi.is_empty() {
            return;
        }
        let n = ctx.st.bvi.take_into(&mut stages.scratch.bvi[..]);
        let mut i = 0;
        while i < n {
            let f = stages.scratch.bvi[i];
            match f.toward {
                Toward::Router => {
                    // The longest run on this port, up to a burst.
                    let mut k = 0;
                    while i < n
                        && k < BURST
                        && stages.scratch.bvi[i].toward == Toward::Router
                        && stages.scratch.bvi[i].port == f.port
                    {
                        stages.scratch.bvi_burst[k] = stages.scratch.bvi[i].d;
                        k += 1;
                        i += 1;
                    }
                    ctx.st.counters.stage(Stage::BviIn, k as u64);
                    let burst = stages.scratch.bvi_burst;
                    process_burst(ctx, stages, f.port, &burst[..k]);
                }
                Toward::Bridge => {
                    i += 1;
                    ctx.st.counters.stage(Stage::BviOut, 1);
                    ctx.rx_port = f.port;
                    let tables = stages.tables;
                    match tables.l2.port(f.port) {
                        Some((sp, bridge)) => {
                            let table = bridge.table.load();
                            l2::input(
                                ctx,
                                f.port,
                                f.d,
                                &l2::Ingress {
                                    sp,
                                    bridge,
                                    table: &table,
                                },
                            );
                        }
                        None => ctx.drop(f.port, f.d, Drop::L2Filtered),
                    }
                }
            }
        }
    }
}

/// The router port's Ethernet filter: returns the ethertype of a frame
/// addressed to this port (its MAC, broadcast, IPv6 all-nodes/all-routers,
/// solicited-node groups of its addresses).
#[inline]
fn classify(ctx: &mut Ctx, port: u16, d: &Desc) -> Result<u16, Drop> {
    let f = ctx.umem.data(d);
    if f.len() < ETH_HDR {
        return Err(Drop::EthTruncated);
    }
    let et = u16::from_be_bytes([f[12], f[13]]);
    if et == 0x8100 || et == 0x88a8 {
        return Err(Drop::EthTaggedOnRoutedPort);
    }
    let dst: Mac = [f[0], f[1], f[2], f[3], f[4], f[5]];
    let Some(p) = ctx.ifs.port(port) else {
        return Err(Drop::EthNotForUs);
    };
    if dst == p.mac || dst == [0xff; 6] {
        return Ok(et);
    }
    if dst[0] & 1 == 0 {
        return Err(Drop::EthNotForUs);
    }
    if dst[0] == 0x33 && dst[1] == 0x33 {
        // All-nodes, all-routers, or a solicited-node group of ours.
        if dst[2..] == [0, 0, 0, 1] || dst[2..] == [0, 0, 0, 2] {
            return Ok(et);
        }
        if dst[2] == 0xff {
            let ll = p.link_local().octets();
            if ll[13..] == dst[3..] || p.v6.iter().any(|(a, _)| a.octets()[13..] == dst[3..]) {
                return Ok(et);
            }
        }
    }
    Err(Drop::EthMulticastNotJoined)
}
