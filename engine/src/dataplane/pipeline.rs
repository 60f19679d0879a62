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
//! typed drop reason counted), a neighbor's waiting queue, or replaced by
//! packets the engine built (its frame freed). The stages themselves live with
//! the function they serve (`router::ip4`, `router::ip6`, `router::arp`,
//! `router::nd`, `router::local`); this file holds the context they share and
//! the burst driver.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::counters::{Drop, LocalCounters, Stage};
use super::events::{Event, EventSink, TraceEnd, TraceRecord};
use super::tables::{Interfaces, Routes, Tables};
use crate::control::config::PortMode;
use crate::l2;
use crate::l3::poptrie::NO_ROUTE;
use crate::router::neighbor::{NeighborKey, NeighborMap, PendingQueues, Push, Retry};
use crate::router::ratelimit::IcmpRateLimiter;
use crate::router::{icmp_error, neigh_frames, Mac};
use crate::router::{arp, ip4, ip6};
use crate::xsk::{Desc, Umem, BURST};

pub const ETH_HDR: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Frames queued per egress port between flushes: a burst of 64 can grow
/// (fragments, flushed neighbor queues, replies), so four bursts of room.
pub const TX_QUEUE: usize = 4 * BURST;

/// Per-port transmit queues of one worker. Fixed capacity: pushing onto a
/// full queue drops (counted), it never reallocates.
#[derive(Debug)]
pub struct TxQueues {
    q: Vec<Vec<Desc>>,
}

impl TxQueues {
    pub fn new(ports: usize) -> Self {
        TxQueues { q: (0..ports).map(|_| Vec::with_capacity(TX_QUEUE)).collect() }
    }

    /// Queues a frame; gives it back if the port is unknown or its queue is full.
    #[inline]
    pub fn push(&mut self, port: u16, d: Desc) -> Result<(), Desc> {
        match self.q.get_mut(usize::from(port)) {
            Some(q) if q.len() < TX_QUEUE => {
                q.push(d);
                Ok(())
            }
            _ => Err(d),
        }
    }

    pub fn queue(&self, port: usize) -> &[Desc] {
        self.q.get(port).map_or(&[], |q| q.as_slice())
    }

    pub fn clear(&mut self, port: usize) {
        if let Some(q) = self.q.get_mut(port) {
            q.clear();
        }
    }

    pub fn ports(&self) -> usize {
        self.q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.q.iter().all(|q| q.is_empty())
    }
}

/// Per-burst scratch arrays, kept with the worker so a burst does not
/// zero 3.5 KiB of stack before it starts.
#[derive(Debug)]
pub struct Scratch {
    fwd4: [Desc; BURST],
    dst4: [u32; BURST],
    fwd6: [Desc; BURST],
    dst6: [u128; BURST],
    leaves: [crate::l3::poptrie::Leaf; BURST],
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            fwd4: [Desc::default(); BURST],
            dst4: [0; BURST],
            fwd6: [Desc::default(); BURST],
            dst6: [0; BURST],
            leaves: [NO_ROUTE; BURST],
        }
    }
}

/// Per-worker state the stages use besides the frames.
#[derive(Debug)]
pub struct WorkerState {
    pub scratch: Box<Scratch>,
    pub worker: u16,
    pub counters: LocalCounters,
    pub tx: TxQueues,
    pub pending: PendingQueues<Desc>,
    pub icmp_limit: IcmpRateLimiter,
    pub events: EventSink,
    /// The worker's NAT table (None: no NAT configured).
    pub nat: Option<crate::nat::NatWorker>,
    /// The worker's load-balancer connections (None: no service configured).
    pub lb: Option<crate::lb::LbWorker>,
    /// The worker's TCP endpoint (None: no `[[tcp]]` application configured).
    pub tcp: Option<crate::tcp::endpoint::TcpStack>,
}

/// Everything a stage needs for one burst.
pub struct Ctx<'a> {
    pub umem: &'a mut Umem,
    pub st: &'a mut WorkerState,
    pub ifs: &'a Interfaces,
    pub routes: &'a Routes,
    pub neigh: &'a NeighborMap,
    pub filter: &'a crate::filter::Filter,
    pub tables: &'a Tables,
    pub now_ns: u64,
    pub trace: bool,
    /// The port the current burst came from (for the trace).
    pub rx_port: u16,
    /// Flags of a frame another worker handed over (`dataplane::handoff`); 0 for
    /// frames from a socket.
    pub handoff: u8,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("worker", &self.st.worker).field("now_ns", &self.now_ns).finish()
    }
}

impl Ctx<'_> {
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.now_ns / 1_000_000
    }

    /// Drops a frame the worker holds: counted, traced, freed.
    #[inline]
    pub fn drop(&mut self, port: u16, d: Desc, why: Drop) {
        self.st.counters.drop(why);
        if self.trace {
            self.trace_end(port, &d, TraceEnd::Drop(why));
        }
        self.umem.free(d);
    }

    /// Frees a frame whose packet was consumed (ARP, ND, replaced by fragments)
    /// without counting a drop.
    #[inline]
    pub fn consumed(&mut self, port: u16, d: Desc) {
        if self.trace {
            self.trace_end(port, &d, TraceEnd::Local);
        }
        self.umem.free(d);
    }

    /// Queues a finished frame on `port`. Frames shorter than the Ethernet
    /// minimum (60 bytes without FCS: ARP, a bare TCP ACK trimmed to its IP
    /// length) are zero-padded, as a NIC driver would not always do for us.
    #[inline]
    pub fn send(&mut self, port: u16, mut d: Desc) {
        if d.len < 60 {
            let n = d.len as usize;
            if let Some(pad) = self.umem.buf_mut(&d).get_mut(n..60) {
                pad.fill(0);
                d.len = 60;
            }
        }
        if self.trace {
            self.trace_end(port, &d, TraceEnd::Tx(port));
        }
        if let Err(d) = self.st.tx.push(port, d) {
            self.st.counters.drop(Drop::TxRingFull);
            self.umem.free(d);
        }
    }

    pub fn trace_end(&mut self, _port: u16, d: &Desc, end: TraceEnd) {
        let port = self.rx_port;
        let data = self.umem.data(d);
        let mut head = [0u8; 64];
        let n = data.len().min(64);
        head[..n].copy_from_slice(&data[..n]);
        self.st.events.send(Event::Trace(Box::new(TraceRecord {
            worker: self.st.worker,
            port,
            len: d.len,
            time_ns: self.now_ns,
            end,
            head,
        })));
    }

    /// Sends an IP packet (Ethernet header present, MACs to be written) to
    /// `nh` on `port`: rewrites the MACs from the neighbor map, or parks the
    /// frame until ARP/ND answers.
    #[inline]
    pub fn emit(&mut self, port: u16, nh: IpAddr, mut d: Desc) {
        let Some(p) = self.ifs.port(port) else {
            self.drop(port, d, Drop::Ip4NoRoute);
            return;
        };
        let src_mac = p.mac;
        let mac = match nh {
            IpAddr::V4(a) => self.neigh.get_v4(port, a),
            IpAddr::V6(a) => self.neigh.get_v6(port, a),
        };
        match mac {
            Some(mac) => {
                write_macs(self.umem.data_mut(&d), mac, src_mac);
                self.send(port, d);
            }
            None => {
                // Keep the frame length as is; MACs are written when it leaves.
                d.options = 0;
                self.park(port, nh, d);
            }
        }
    }

    fn park(&mut self, port: u16, nh: IpAddr, d: Desc) {
        let key = NeighborKey { port, ip: nh };
        let now = self.now_ms();
        let send_request = match self.st.pending.push(key, d, now) {
            Push::Queued { send_request } => send_request,
            Push::QueuedDroppedOldest { dropped, send_request } => {
                self.drop(port, dropped, Drop::NeighQueueFull);
                send_request
            }
            Push::NoSlot(d) => {
                self.drop(port, d, Drop::NeighNoSlot);
                return;
            }
        };
        if self.trace {
            self.trace_end(port, &d, TraceEnd::Parked(port));
        }
        if send_request {
            self.st.events.send(Event::NeighMiss { key });
            self.solicit(key);
        }
    }

    /// Sends an ARP request or a neighbor solicitation for `key`.
    pub fn solicit(&mut self, key: NeighborKey) {
        let Some(p) = self.ifs.port(key.port) else { return };
        let (mac, port) = (p.mac, key.port);
        let Some(mut f) = self.umem.alloc() else {
            self.st.counters.drop(Drop::NoFrame);
            return;
        };
        let buf = self.umem.buf_mut(&f);
        let n = match key.ip {
            IpAddr::V4(ip) => match p.src_v4(ip) {
                Some(src) => neigh_frames::arp_request(buf, mac, src, ip),
                None => None,
            },
            IpAddr::V6(ip) => neigh_frames::neighbor_solicit(buf, mac, p.src_v6(ip), ip),
        };
        match n {
            Some(n) => {
                f.len = n as u32;
                self.send(port, f);
            }
            None => self.umem.free(f),
        }
    }

    /// Sends the ICMPv4 error `kind` about the packet in `d` (IPv4 at
    /// ETH_HDR), from the ingress port's address, if RFC 1812 allows it and
    /// the rate limit has a token. Does not free `d`.
    pub fn icmp4_error(&mut self, in_port: u16, d: &Desc, kind: icmp_error::Icmp4Error) {
        self.icmp4_error_from(in_port, d, kind, None)
    }

    /// [`Ctx::icmp4_error`] with an explicit source: errors about packets
    /// addressed to the engine come from the address they were sent to (as
    /// a host's do), so `traceroute` ends at the address it probed.
    pub fn icmp4_error_from(&mut self, in_port: u16, d: &Desc, kind: icmp_error::Icmp4Error, from: Option<Ipv4Addr>) {
        self.st.counters.stage(Stage::IcmpError, 1);
        let data = self.umem.data(d);
        if data.len() < ETH_HDR + 20 {
            return;
        }
        let l2_group = data[0] & 1 == 1;
        let ip = &data[ETH_HDR..];
        if !icmp_error::may_send_v4(ip, l2_group) {
            self.st.counters.drop(Drop::IcmpSuppressed);
            return;
        }
        let orig_src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        if !self.st.icmp_limit.allow(IpAddr::V4(orig_src), self.now_ns) {
            self.st.counters.drop(Drop::IcmpRateLimited);
            return;
        }
        let from = match from.or_else(|| self.ifs.port(in_port).and_then(|p| p.src_v4(orig_src))) {
            Some(a) => a,
            None => match self.ifs.ports.iter().find_map(|p| p.v4.first()) {
                Some(&(a, _)) => a,
                None => return,
            },
        };
        let Some(mut e) = self.umem.alloc() else {
            self.st.counters.drop(Drop::NoFrame);
            return;
        };
        let built = match self.umem.pair_mut(d, &e) {
            Some((orig, buf)) if buf.len() > ETH_HDR => {
                let n = icmp_error::build_v4(&mut buf[ETH_HDR..], from, kind, &orig[ETH_HDR..]);
                buf[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
                n
            }
            _ => None,
        };
        match built {
            Some(n) => {
                e.len = (ETH_HDR + n) as u32;
                self.originate4(in_port, orig_src, e);
            }
            None => self.umem.free(e),
        }
    }

    /// The ICMPv6 error counterpart of [`Ctx::icmp4_error`] (RFC 4443 §2.4).
    pub fn icmp6_error(&mut self, in_port: u16, d: &Desc, kind: icmp_error::Icmp6Error) {
        self.icmp6_error_from(in_port, d, kind, None)
    }

    /// [`Ctx::icmp6_error`] with an explicit source address.
    pub fn icmp6_error_from(&mut self, in_port: u16, d: &Desc, kind: icmp_error::Icmp6Error, from: Option<Ipv6Addr>) {
        self.st.counters.stage(Stage::IcmpError, 1);
        let data = self.umem.data(d);
        if data.len() < ETH_HDR + 40 {
            return;
        }
        let l2_group = data[0] & 1 == 1;
        let ip = &data[ETH_HDR..];
        if !icmp_error::may_send_v6(ip, l2_group, kind) {
            self.st.counters.drop(Drop::IcmpSuppressed);
            return;
        }
        let orig_src = ipv6_at(ip, 8);
        if !self.st.icmp_limit.allow(IpAddr::V6(orig_src), self.now_ns) {
            self.st.counters.drop(Drop::IcmpRateLimited);
            return;
        }
        let Some(from) = from.or_else(|| self.ifs.port(in_port).map(|p| p.src_v6(orig_src))) else { return };
        let Some(mut e) = self.umem.alloc() else {
            self.st.counters.drop(Drop::NoFrame);
            return;
        };
        let built = match self.umem.pair_mut(d, &e) {
            Some((orig, buf)) if buf.len() > ETH_HDR => {
                let n = icmp_error::build_v6(&mut buf[ETH_HDR..], from, kind, &orig[ETH_HDR..]);
                buf[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
                n
            }
            _ => None,
        };
        match built {
            Some(n) => {
                e.len = (ETH_HDR + n) as u32;
                self.originate6(in_port, orig_src, e);
            }
            None => self.umem.free(e),
        }
    }

    /// Routes a packet the engine built (an ICMP message, an echo reply):
    /// LPM on `dst`, no TTL decrement. Link-local destinations leave by the
    /// port they concern.
    pub fn originate4(&mut self, in_port: u16, dst: Ipv4Addr, d: Desc) {
        let hop = self.routes.fib.lookup_v4(dst).and_then(|id| self.routes.select(id, 0));
        match hop {
            Some(h) => {
                let nh = match h.gateway {
                    Some(IpAddr::V4(g)) => g,
                    Some(IpAddr::V6(_)) => {
                        self.drop(in_port, d, Drop::Ip4NoRoute);
                        return;
                    }
                    None => dst,
                };
                self.emit(h.port, IpAddr::V4(nh), d);
            }
            None => self.drop(in_port, d, Drop::Ip4NoRoute),
        }
    }

    pub fn originate6(&mut self, in_port: u16, dst: Ipv6Addr, d: Desc) {
        if dst.is_unicast_link_local() || dst.is_multicast() {
            // Scoped to the link it came from.
            if dst.is_multicast() {
                let mut mac = [0x33, 0x33, 0, 0, 0, 0];
                mac[2..].copy_from_slice(&dst.octets()[12..]);
                if let Some(p) = self.ifs.port(in_port) {
                    let src = p.mac;
                    write_macs(self.umem.data_mut(&d), mac, src);
                }
                self.send(in_port, d);
            } else {
                self.emit(in_port, IpAddr::V6(dst), d);
            }
            return;
        }
        let hop = self.routes.fib.lookup_v6(dst).and_then(|id| self.routes.select(id, 0));
        match hop {
            Some(h) => {
                let nh = match h.gateway {
                    Some(IpAddr::V6(g)) => g,
                    Some(IpAddr::V4(_)) => {
                        self.drop(in_port, d, Drop::Ip6NoRoute);
                        return;
                    }
                    None => dst,
                };
                self.emit(h.port, IpAddr::V6(nh), d);
            }
            None => self.drop(in_port, d, Drop::Ip6NoRoute),
        }
    }

    /// Applies the packet filter to a packet about to be forwarded out of
    /// `out_port`. Returns false when the packet was dropped (and answered,
    /// for `reject`); the caller stops. Free when no rule is configured.
    #[inline]
    pub fn filter_forward(&mut self, in_port: u16, out_port: u16, d: Desc) -> bool {
        use crate::filter::rule::Action;
        if self.filter.is_pass_all() {
            return true;
        }
        let f = crate::filter::fields(self.umem.data(&d), in_port, out_port);
        let v6 = f.family == 6;
        match self.filter.decide(&f) {
            Action::Accept => true,
            Action::Drop => {
                self.drop(in_port, d, Drop::FilterDrop);
                false
            }
            Action::RejectTcpReset if f.proto == 6 => {
                self.tcp_reset(in_port, &d);
                self.drop(in_port, d, Drop::FilterReject);
                false
            }
            Action::RejectIcmp | Action::RejectTcpReset => {
                if v6 {
                    self.icmp6_error(in_port, &d, icmp_error::Icmp6Error::AdminProhibited);
                } else {
                    self.icmp4_error(in_port, &d, icmp_error::Icmp4Error::AdminProhibited);
                }
                self.drop(in_port, d, Drop::FilterReject);
                false
            }
        }
    }

    /// Answers the TCP segment in `d` with a RST from its destination.
    pub fn tcp_reset(&mut self, in_port: u16, d: &Desc) {
        let Some(mut e) = self.umem.alloc() else {
            self.st.counters.drop(Drop::NoFrame);
            return;
        };
        let built = match self.umem.pair_mut(d, &e) {
            Some((orig, buf)) if buf.len() > ETH_HDR && orig.len() > ETH_HDR => {
                let n = crate::filter::reject::tcp_reset(&mut buf[ETH_HDR..], &orig[ETH_HDR..]);
                let et = if orig[ETH_HDR] >> 4 == 6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 };
                buf[12..14].copy_from_slice(&et.to_be_bytes());
                n.map(|n| (n, et))
            }
            _ => None,
        };
        let Some((n, et)) = built else {
            self.umem.free(e);
            return;
        };
        e.len = (ETH_HDR + n) as u32;
        let b = self.umem.data(&e);
        if et == ETHERTYPE_IPV4 {
            let dst = Ipv4Addr::new(b[30], b[31], b[32], b[33]);
            self.originate4(in_port, dst, e);
        } else {
            let dst = ipv6_at(&b[ETH_HDR..], 24);
            self.originate6(in_port, dst, e);
        }
    }

    /// The port the route to a parked packet's source leaves by (its ingress
    /// port on a symmetric topology); port 0 if there is none.
    pub fn port_toward_source(&self, d: &Desc) -> u16 {
        let f = self.umem.data(d);
        let Some(ip) = f.get(ETH_HDR..) else { return 0 };
        let src: Option<IpAddr> = match ip.first().map(|b| b >> 4) {
            Some(4) if ip.len() >= 20 => Some(IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]))),
            Some(6) if ip.len() >= 40 => Some(IpAddr::V6(ipv6_at(ip, 8))),
            _ => None,
        };
        src.and_then(|a| self.routes.fib.lookup(a)).and_then(|id| self.routes.select(id, 0)).map_or(0, |h| h.port)
    }

    /// A neighbor's link-layer address was seen: tell the control thread.
    pub fn neighbor_seen(&mut self, port: u16, ip: IpAddr, mac: Mac, confirmed: bool) {
        if mac[0] & 1 == 1 || mac == [0; 6] {
            return;
        }
        self.st.events.send(Event::NeighSeen { key: NeighborKey { port, ip }, mac, confirmed });
    }
}

/// Writes destination and source MAC into an Ethernet frame.
#[inline]
pub fn write_macs(frame: &mut [u8], dst: Mac, src: Mac) {
    if let Some(h) = frame.get_mut(..12) {
        h[..6].copy_from_slice(&dst);
        h[6..12].copy_from_slice(&src);
    }
}

/// The IPv6 address at `off` in `b` (caller checked the length).
#[inline]
pub fn ipv6_at(b: &[u8], off: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    if let Some(s) = b.get(off..off + 16) {
        o.copy_from_slice(s);
    }
    Ipv6Addr::from(o)
}

/// Runs one received burst from `port` through the pipeline.
pub fn process_burst(ctx: &mut Ctx, port: u16, descs: &[Desc]) {
    let mut n4 = 0;
    let mut n6 = 0;
    ctx.rx_port = port;
    ctx.st.counters.stage(Stage::Classify, descs.len() as u64);
    let mode = ctx.ifs.port(port).map(|p| p.mode);
    let capturing = ctx.tables.capture.get(usize::from(port)).is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed) > 0);
    // A switch port's bridge and MAC table, loaded once for the burst.
    let tables = ctx.tables;
    let l2 = if mode == Some(PortMode::Switch) { tables.l2.port(port).map(|(sp, b)| (sp, b, b.table.load())) } else { None };
    let handed = ctx.handoff != 0;
    for &d in descs.iter().take(BURST) {
        if handed {
            // Counted (and captured) where it arrived.
        } else {
            ctx.st.counters.rx(usize::from(port), u64::from(d.len));
        }
        if capturing && !handed && ctx.tables.take_capture(port) {
            let data = ctx.umem.data(&d).to_vec();
            ctx.st.events.send(Event::Captured { port, time_ns: wall_ns(), data });
        }
        if mode == Some(PortMode::Switch) {
            match &l2 {
                Some((sp, bridge, table)) => l2::input(ctx, port, d, &l2::Ingress { sp: *sp, bridge, table }),
                None => ctx.drop(port, d, Drop::L2Filtered),
            }
            continue;
        }
        match classify(ctx, port, &d) {
            Ok(ETHERTYPE_IPV4) => {
                if let Some(dst) = ip4::input(ctx, port, d) {
                    ctx.st.scratch.fwd4[n4] = d;
                    ctx.st.scratch.dst4[n4] = dst;
                    n4 += 1;
                }
            }
            Ok(ETHERTYPE_IPV6) => {
                if let Some((d, dst)) = ip6::input(ctx, port, d) {
                    ctx.st.scratch.fwd6[n6] = d;
                    ctx.st.scratch.dst6[n6] = dst;
                    n6 += 1;
                }
            }
            Ok(ETHERTYPE_ARP) => arp::input(ctx, port, d),
            Ok(_) => ctx.drop(port, d, Drop::EthUnknownType),
            Err(why) => ctx.drop(port, d, why),
        }
    }
    if n4 > 0 {
        ctx.st.counters.stage(Stage::Ip4Forward, n4 as u64);
        let sc = &mut *ctx.st.scratch;
        ctx.routes.fib.lookup_v4_batch(&sc.dst4[..n4], &mut sc.leaves[..n4]);
        for i in 0..n4 {
            let (d, dst, leaf) = (ctx.st.scratch.fwd4[i], ctx.st.scratch.dst4[i], ctx.st.scratch.leaves[i]);
            ip4::forward(ctx, port, d, Ipv4Addr::from(dst), leaf);
        }
    }
    if n6 > 0 {
        ctx.st.counters.stage(Stage::Ip6Forward, n6 as u64);
        let sc = &mut *ctx.st.scratch;
        ctx.routes.fib.lookup_v6_batch(&sc.dst6[..n6], &mut sc.leaves[..n6]);
        for i in 0..n6 {
            let (d, dst, leaf) = (ctx.st.scratch.fwd6[i], ctx.st.scratch.dst6[i], ctx.st.scratch.leaves[i]);
            ip6::forward(ctx, port, d, Ipv6Addr::from(dst), leaf);
        }
    }
}

/// Wall-clock time for capture files (pcap wants the epoch).
pub fn wall_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
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
    let Some(p) = ctx.ifs.port(port) else { return Err(Drop::EthNotForUs) };
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

/// Checks neighbor waiting queues: resolved ones are flushed, due ones are
/// solicited again, failed ones get Host Unreachable.
pub fn service_neighbors(ctx: &mut Ctx, resolved_changed: bool) {
    if ctx.st.pending.is_empty() {
        return;
    }
    if resolved_changed {
        let mut keys = [None; 64];
        for (slot, k) in keys.iter_mut().zip(ctx.st.pending.keys()) {
            *slot = Some(k);
        }
        for key in keys.into_iter().flatten() {
            if let Some(mac) = ctx.neigh.get(key.port, key.ip) {
                let src = ctx.ifs.port(key.port).map_or([0; 6], |p| p.mac);
                let mut out = [Desc::default(); TX_QUEUE];
                let mut n = 0;
                ctx.st.pending.take_resolved(key, &mut |d: Desc| {
                    if n < out.len() {
                        out[n] = d;
                        n += 1;
                    }
                });
                for &d in &out[..n] {
                    write_macs(ctx.umem.data_mut(&d), mac, src);
                    ctx.send(key.port, d);
                }
            }
        }
    }
    let now = ctx.now_ms();
    let mut resend = [None; 64];
    let mut nr = 0;
    let mut failed = [(NeighborKey { port: 0, ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED) }, Desc::default()); TX_QUEUE];
    let mut nf = 0;
    ctx.st.pending.due(now, &mut |key, r| match r {
        Retry::Resend => {
            if nr < resend.len() {
                resend[nr] = Some(key);
                nr += 1;
            }
        }
        Retry::GiveUp(d) => {
            if nf < failed.len() {
                failed[nf] = (key, d);
                nf += 1;
            }
        }
    });
    for key in resend.into_iter().flatten() {
        ctx.solicit(key);
    }
    let mut last = None;
    for &(key, d) in &failed[..nf] {
        if last != Some(key) {
            ctx.st.events.send(Event::NeighFailed { key });
            last = Some(key);
        }
        // The packet's ingress port is not kept while it waits: the error
        // comes from the port that leads back to its source, which is the
        // ingress port on any symmetric topology.
        let back = ctx.port_toward_source(&d);
        match key.ip {
            IpAddr::V4(_) => ctx.icmp4_error(back, &d, icmp_error::Icmp4Error::HostUnreachable),
            IpAddr::V6(_) => ctx.icmp6_error(back, &d, icmp_error::Icmp6Error::AddressUnreachable),
        }
        ctx.drop(key.port, d, Drop::NeighFailed);
    }
}
