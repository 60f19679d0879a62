//! The frame context: what every stage shares while it works on a burst
//! (VPP's `vlib_main`, smoltcp's `Context`). It is floor 2 of the engine's
//! module layering (docs/ARCHITECTURE.md, "Floors"): it knows frames, ports,
//! routes, neighbors, counters and drop reasons, and no feature.
//!
//! - [`Ctx`]: the burst's UMEM, the worker's TX queues, counters, events,
//!   trace and clock, the published tables; and the verbs every stage uses:
//!   [`Ctx::drop`], [`Ctx::send`], [`Ctx::emit`] (neighbor rewrite or park),
//!   [`Ctx::originate4`]/[`Ctx::originate6`], ICMP errors, TCP resets,
//!   [`Ctx::hand_to`] (a frame to the worker that owns its flow).
//! - [`Hooks`]: the points where features attach to the router's path
//!   (netfilter's hooks); the pipeline implements it, the router calls it.
//! - [`counters`]: per-stage counters and typed drop reasons.
//! - [`events`]: what workers tell the control thread.
//! - [`tables`]: what workers read (ports, resolved routes, neighbors).
//! - [`handoff`]: frames handed between workers (flows with one owner).
//! - [`bvi`]: frames between a bridge and its routed interface (BVI).
//! - [`txq`]: per-port TX queues and the backlog of what a TX ring did not take.
//! - [`capture`]: the taps of `ctl capture` (filters run before a frame is copied).
//! - [`dump`]: `ctl … show` requests the workers answer.
//! - Packet builders the verbs use: [`icmp_error`], [`ratelimit`],
//!   [`neigh_frames`], [`martian`], [`reject`].

pub mod bvi;
pub mod capture;
pub mod counters;
pub mod dump;
pub mod events;
pub mod handoff;
mod hooks;
pub mod icmp_error;
pub mod martian;
pub mod neigh_frames;
pub mod ratelimit;
pub mod reject;
pub mod tables;
pub mod txq;

pub use hooks::{untranslated, Hooks, NoHooks, Pre};
pub use txq::{TxQueues, TX_QUEUE};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::neighbor::{NeighborKey, NeighborMap, PendingQueues, Push, Retry};
use crate::wire::Mac;
use crate::xsk::{Desc, Umem};
use counters::{Drop, LocalCounters, Stage};
use events::{Event, EventSink, TraceEnd, TraceRecord};
use ratelimit::IcmpRateLimiter;
use tables::{Interfaces, Routes, Shared};
pub const ETH_HDR: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Per-worker state every stage uses besides the frames. Feature state
/// (the NAT's table, the load balancer's connections, the TCP endpoint) is
/// not here: the pipeline holds it and hands it to its feature.
#[derive(Debug)]
pub struct WorkerState {
    pub worker: u16,
    pub counters: LocalCounters,
    pub tx: TxQueues,
    pub pending: PendingQueues<Desc>,
    pub icmp_limit: IcmpRateLimiter,
    pub events: EventSink,
    /// Frames between bridges and their BVIs, run at the end of the round.
    pub bvi: bvi::BviQueue,
}

/// Everything a stage needs for one burst.
pub struct Ctx<'a> {
    pub umem: &'a mut Umem,
    pub st: &'a mut WorkerState,
    pub ifs: &'a Interfaces,
    pub routes: &'a Routes,
    pub neigh: &'a NeighborMap,
    pub tables: &'a Shared,
    pub now_ns: u64,
    pub trace: bool,
    /// The port the current burst came from (for the trace).
    pub rx_port: u16,
    /// Flags of a frame another worker handed over ([`handoff`]); 0 for
    /// frames from a socket.
    pub handoff: u8,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("worker", &self.st.worker)
            .field("now_ns", &self.now_ns)
            .finish()
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
        if self.ifs.is_bvi(port) {
            // Out of a bridge's routed interface: into its bridge, not a socket.
            self.st.counters.tx(usize::from(port), 1, u64::from(d.len));
            let f = bvi::BviFrame {
                port,
                toward: bvi::Toward::Bridge,
                d,
            };
            if let Err(d) = self.st.bvi.push(f) {
                self.drop(port, d, Drop::BviQueueFull);
            }
            return;
        }
        if self.trace {
            self.trace_end(port, &d, TraceEnd::Tx(port));
        }
        if let Err(d) = self.st.tx.push(port, d) {
            self.st.counters.drop(Drop::TxRingFull);
            self.umem.free(d);
        }
    }

    /// Delivers a frame the switch stage forwarded (or flooded) to a
    /// bridge's routed interface: the router takes it as received on the
    /// BVI port `port` when the pipeline runs the BVI queue.
    #[inline]
    pub fn to_router(&mut self, port: u16, d: Desc) {
        let f = bvi::BviFrame {
            port,
            toward: bvi::Toward::Router,
            d,
        };
        if let Err(d) = self.st.bvi.push(f) {
            self.drop(port, d, Drop::BviQueueFull);
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
            Push::QueuedDroppedOldest {
                dropped,
                send_request,
            } => {
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
        let Some(p) = self.ifs.port(key.port) else {
            return;
        };
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
    pub fn icmp4_error_from(
        &mut self,
        in_port: u16,
        d: &Desc,
        kind: icmp_error::Icmp4Error,
        from: Option<Ipv4Addr>,
    ) {
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
    pub fn icmp6_error_from(
        &mut self,
        in_port: u16,
        d: &Desc,
        kind: icmp_error::Icmp6Error,
        from: Option<Ipv6Addr>,
    ) {
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
        let Some(from) = from.or_else(|| self.ifs.port(in_port).map(|p| p.src_v6(orig_src))) else {
            return;
        };
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
        let hop = self
            .routes
            .fib
            .lookup_v4(dst)
            .and_then(|id| self.routes.select(id, 0));
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
        let hop = self
            .routes
            .fib
            .lookup_v6(dst)
            .and_then(|id| self.routes.select(id, 0));
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

    /// Answers the TCP segment in `d` with a RST from its destination.
    pub fn tcp_reset(&mut self, in_port: u16, d: &Desc) {
        let Some(mut e) = self.umem.alloc() else {
            self.st.counters.drop(Drop::NoFrame);
            return;
        };
        let built = match self.umem.pair_mut(d, &e) {
            Some((orig, buf)) if buf.len() > ETH_HDR && orig.len() > ETH_HDR => {
                let n = reject::tcp_reset(&mut buf[ETH_HDR..], &orig[ETH_HDR..]);
                let et = if orig[ETH_HDR] >> 4 == 6 {
                    ETHERTYPE_IPV6
                } else {
                    ETHERTYPE_IPV4
                };
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
            Some(4) if ip.len() >= 20 => {
                Some(IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])))
            }
            Some(6) if ip.len() >= 40 => Some(IpAddr::V6(ipv6_at(ip, 8))),
            _ => None,
        };
        src.and_then(|a| self.routes.fib.lookup(a))
            .and_then(|id| self.routes.select(id, 0))
            .map_or(0, |h| h.port)
    }

    /// The IP packet of a frame (after the Ethernet header; empty if short).
    #[inline]
    pub fn ip_of(&self, d: &Desc) -> &[u8] {
        self.umem.data(d).get(ETH_HDR..).unwrap_or(&[])
    }

    #[inline]
    pub fn ip_mut(&mut self, d: &Desc) -> &mut [u8] {
        self.umem.data_mut(d).get_mut(ETH_HDR..).unwrap_or(&mut [])
    }

    /// `Some(worker)` when a flow owned by `owner` belongs to another worker.
    #[inline]
    pub fn elsewhere(&self, owner: Option<u16>) -> Option<u16> {
        owner.filter(|&o| o != self.st.worker)
    }

    /// Hands `d` to worker `to`, which runs it through the pipeline from the
    /// start with `flags` ([`handoff`]'s flags): the frame is copied, ours is
    /// freed. A full inbox drops it (counted). Features whose flows have one
    /// owner (NAT, load balancer, TCP endpoint) use this.
    pub fn hand_to(&mut self, to: u16, port: u16, flags: u8, d: Desc) {
        let sent = self
            .tables
            .handoff
            .as_ref()
            .is_some_and(|h| h.send(to, port, flags, self.umem.data(&d)));
        if sent {
            self.st.counters.stage(Stage::Handoff, 1);
            self.consumed(port, d);
        } else {
            self.drop(port, d, Drop::HandoffFull);
        }
    }

    /// A neighbor's link-layer address was seen: tell the control thread.
    pub fn neighbor_seen(&mut self, port: u16, ip: IpAddr, mac: Mac, confirmed: bool) {
        if mac[0] & 1 == 1 || mac == [0; 6] {
            return;
        }
        self.st.events.send(Event::NeighSeen {
            key: NeighborKey { port, ip },
            mac,
            confirmed,
        });
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

/// Wall-clock time for capture files (pcap wants the epoch).
pub fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
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
    let mut failed = [(
        NeighborKey {
            port: 0,
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        },
        Desc::default(),
    ); TX_QUEUE];
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
