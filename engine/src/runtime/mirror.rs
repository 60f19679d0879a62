//! `[routing] mirror` (`run --mirror-kernel`): the engine's FIB follows a
//! kernel routing table, so a routing daemon (BIRD, FRR) that installs its
//! routes into the kernel drives the engine unchanged.
//!
//! Two rtnetlink sockets, both opened at set-up while the process is root:
//! `events`, subscribed to the IPv4 and IPv6 route groups with a large
//! receive buffer, and `dump`, for full dumps. The events socket is opened
//! first, then the table is dumped, so no change falls between the two. The
//! control thread then reads the events socket without blocking once per
//! round (every 20 ms at most), turns each message into a [`Change`], stages
//! it in the route table as an [`Origin::Kernel`] route, and publishes once
//! per round: a batch of changes becomes visible to the workers at once, and
//! workers never wait (they read the published FIB, see `l3::route_table`).
//!
//! When the kernel had to drop notifications (ENOBUFS: the control thread
//! fell behind a burst, e.g. a full table arriving), the mirror dumps the
//! table again and reconciles: every route the dump (or an event meanwhile)
//! shows is staged, and kernel-origin routes seen by neither are removed.
//! The dump is paced by our reads, so it cannot overflow.
//!
//! What the FIB cannot represent is ignored, counted by reason and logged
//! (the first few in full): other tables, local/broadcast/multicast/throw/NAT
//! route types, link-local destinations, routes through devices the engine
//! does not own, source- or TOS-specific routes, IPv4 routes via an IPv6
//! gateway (RFC 5549), cached (cloned) routes. Weights of a multipath route
//! are not kept: its members share flows equally.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_APPEND, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHopFlags, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::l3::nexthop::{NextHop, Reject};
use crate::l3::prefix::{IpPrefix, Ipv4Prefix, Ipv6Prefix};
use crate::l3::route_table::{Origin, Route, RouteTable};

/// rtnetlink multicast groups (linux/rtnetlink.h).
const RTNLGRP_IPV4_ROUTE: u32 = 7;
const RTNLGRP_IPV6_ROUTE: u32 = 11;

/// Receive buffer of the events socket: room for a burst of ~50k
/// notifications while the control thread is busy (SO_RCVBUFFORCE, root).
const EVENTS_RCVBUF: usize = 32 << 20;

/// One datagram at most (the kernel's dump messages stay below 32 KiB).
const RECV_BUF: usize = 64 << 10;

/// The initial dump must finish within this (a full table takes ~2 s).
const LOAD_DEADLINE: Duration = Duration::from_secs(60);

/// Ignored routes logged one by one before only the counts go on.
const LOG_IGNORED: u64 = 10;

/// Why a route was not mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// Another routing table than the mirrored one.
    OtherTable,
    /// local, broadcast, anycast, multicast, throw, NAT, ... (not forwarding routes).
    RouteType,
    /// A link-local (fe80::/10) or multicast destination: never forwarded.
    LinkLocal,
    /// Through an interface the engine does not own.
    ForeignDevice,
    /// Source-specific (IPv6 `from`) or TOS-specific.
    SourceOrTos,
    /// An IPv4 route via an IPv6 gateway (RFC 5549), or MPLS.
    ViaOtherFamily,
    /// Neither gateway nor device, or every member dead.
    NoNextHop,
    /// A cached route (PMTU exceptions, RTM_F_CLONED).
    Cloned,
    /// A family the engine does not route (MPLS, multicast routing).
    Family,
}

impl Ignored {
    pub const ALL: [Ignored; 9] = [
        Ignored::OtherTable,
        Ignored::RouteType,
        Ignored::LinkLocal,
        Ignored::ForeignDevice,
        Ignored::SourceOrTos,
        Ignored::ViaOtherFamily,
        Ignored::NoNextHop,
        Ignored::Cloned,
        Ignored::Family,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Ignored::OtherTable => "other-table",
            Ignored::RouteType => "route-type",
            Ignored::LinkLocal => "link-local",
            Ignored::ForeignDevice => "foreign-device",
            Ignored::SourceOrTos => "source-or-tos",
            Ignored::ViaOtherFamily => "via-other-family",
            Ignored::NoNextHop => "no-next-hop",
            Ignored::Cloned => "cloned",
            Ignored::Family => "family",
        }
    }
}

/// What one route message asks of the FIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add or replace the kernel route to (prefix, metric).
    Upsert(Route),
    /// Add these members to the kernel route to (prefix, metric): an IPv6
    /// `ip route append` (the kernel's notification then carries every member,
    /// but older kernels sent only the new ones).
    Append(Route),
    /// Remove the kernel route to (prefix, metric); for IPv6 with `hops`, only
    /// those members (IPv6 multipath routes lose members one at a time).
    Remove {
        prefix: IpPrefix,
        metric: u32,
        hops: Vec<NextHop>,
    },
    Ignore(Ignored),
}

/// The engine's ports by kernel interface index.
pub type Ports = HashMap<u32, String>;

/// Translates one RTM_NEWROUTE (`new`) or RTM_DELROUTE message.
pub fn translate(new: bool, append: bool, m: &RouteMessage, table: u32, ports: &Ports) -> Change {
    let h = &m.header;
    let v4 = match h.address_family {
        AddressFamily::Inet => true,
        AddressFamily::Inet6 => false,
        _ => return Change::Ignore(Ignored::Family),
    };
    let mut t = u32::from(h.table);
    let mut dst: Option<IpAddr> = None;
    let mut gateway: Option<IpAddr> = None;
    let mut oif: Option<u32> = None;
    let mut metric = 0u32;
    let mut multipath = None;
    let mut via = false;
    for a in &m.attributes {
        match a {
            RouteAttribute::Table(x) => t = *x,
            RouteAttribute::Destination(a) => dst = addr(a),
            RouteAttribute::Gateway(a) => gateway = addr(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            RouteAttribute::Via(_) => via = true,
            _ => {}
        }
    }
    if t != table {
        return Change::Ignore(Ignored::OtherTable);
    }
    if h.flags.contains(RouteFlags::Cloned) {
        return Change::Ignore(Ignored::Cloned);
    }
    if h.source_prefix_length != 0 || h.tos != 0 {
        return Change::Ignore(Ignored::SourceOrTos);
    }
    let prefix = match (v4, dst) {
        (true, Some(IpAddr::V4(a))) => {
            Ipv4Prefix::new(a, h.destination_prefix_length).map(IpPrefix::V4)
        }
        (false, Some(IpAddr::V6(a))) => {
            Ipv6Prefix::new(a, h.destination_prefix_length).map(IpPrefix::V6)
        }
        (true, None) if h.destination_prefix_length == 0 => Some(IpPrefix::V4(Ipv4Prefix::DEFAULT)),
        (false, None) if h.destination_prefix_length == 0 => {
            Some(IpPrefix::V6(Ipv6Prefix::DEFAULT))
        }
        _ => None,
    };
    let Some(prefix) = prefix else {
        return Change::Ignore(Ignored::Family);
    };
    if let IpPrefix::V6(p) = prefix {
        let top = (p.bits() >> 112) as u16;
        // fe80::/10 and ff00::/8 (any prefix inside them).
        if p.len() >= 10 && top & 0xffc0 == 0xfe80 || p.len() >= 8 && top & 0xff00 == 0xff00 {
            return Change::Ignore(Ignored::LinkLocal);
        }
    }
    let reject = match h.kind {
        RouteType::Unicast => None,
        RouteType::BlackHole => Some(Reject::Blackhole),
        RouteType::Unreachable => Some(Reject::Unreachable),
        RouteType::Prohibit => Some(Reject::Prohibit),
        // A delete need not say its type (`ip route del PREFIX`).
        RouteType::Unspec if !new => None,
        _ => return Change::Ignore(Ignored::RouteType),
    };
    if let Some(r) = reject {
        return if new {
            Change::Upsert(Route::reject(prefix, r, metric))
        } else {
            Change::Remove {
                prefix,
                metric,
                hops: Vec::new(),
            }
        };
    }
    if via {
        return Change::Ignore(Ignored::ViaOtherFamily);
    }
    let mut hops = Vec::new();
    match multipath {
        Some(members) => {
            for nh in members {
                if nh.flags.contains(RouteNextHopFlags::Dead) {
                    continue;
                }
                let mut gw = None;
                for a in &nh.attributes {
                    match a {
                        RouteAttribute::Gateway(a) => gw = addr(a),
                        RouteAttribute::Via(_) => return Change::Ignore(Ignored::ViaOtherFamily),
                        _ => {}
                    }
                }
                match hop(gw, Some(nh.interface_index), v4, ports) {
                    Ok(h) => hops.push(h),
                    Err(why) => return Change::Ignore(why),
                }
            }
        }
        None if gateway.is_some() || oif.is_some() => match hop(gateway, oif, v4, ports) {
            Ok(h) => hops.push(h),
            Err(why) => return Change::Ignore(why),
        },
        None => {}
    }
    if !new {
        return Change::Remove {
            prefix,
            metric,
            hops: if v4 { Vec::new() } else { hops },
        };
    }
    if hops.is_empty() {
        return Change::Ignore(Ignored::NoNextHop);
    }
    let r = Route {
        prefix,
        hops,
        metric,
        reject: None,
    };
    if append && !v4 {
        Change::Append(r)
    } else {
        Change::Upsert(r)
    }
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// One member: its port by interface index (required: the engine must own it).
fn hop(gw: Option<IpAddr>, oif: Option<u32>, v4: bool, ports: &Ports) -> Result<NextHop, Ignored> {
    if gw.is_some_and(|g| g.is_ipv4() != v4) {
        return Err(Ignored::ViaOtherFamily);
    }
    let dev = oif
        .and_then(|i| ports.get(&i))
        .ok_or(Ignored::ForeignDevice)?;
    Ok(NextHop {
        gateway: gw,
        dev: Some(dev.clone()),
    })
}

/// The mirror's counters, for `ctl stats` and metrics.
#[derive(Debug, Clone, Default)]
pub struct MirrorStats {
    /// Routes added or replaced, removed.
    pub upserts: u64,
    pub removes: u64,
    /// Changes the route table refused (next-hop table full).
    pub refused: u64,
    pub ignored: [u64; Ignored::ALL.len()],
    /// Notifications the kernel dropped (ENOBUFS), and dumps that reconciled.
    pub overruns: u64,
    pub resyncs: u64,
    /// Messages that did not parse.
    pub malformed: u64,
    /// Publications after a round with changes, and the largest round.
    pub batches: u64,
    pub largest_batch: u64,
}

/// A dump in progress: every (prefix, metric) it or an event showed since it began.
struct Resync {
    seq: u32,
    seen: HashSet<(IpPrefix, u32)>,
    /// Notifications were lost while this dump ran: another dump follows.
    again: bool,
}

/// The live mirror of one kernel table.
pub struct Mirror {
    events: Socket,
    dump: Socket,
    table: u32,
    ports: Ports,
    resync: Option<Resync>,
    /// Notifications were lost: dump once the events queue has been emptied.
    need_resync: bool,
    seq: u32,
    buf: Vec<u8>,
    pub stats: MirrorStats,
    /// Mirrored routes right now.
    pub routes: usize,
    /// What the staged routes are: `Kernel` for the live mirror, `Static` for
    /// the one-time `--import-kernel-routes` ([`import`]).
    origin: Origin,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("table", &self.table)
            .field("routes", &self.routes)
            .finish()
    }
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Changes staged (publish if > 0).
    pub changes: u64,
    /// Stopped by the budget with messages left to read.
    pub more: bool,
}

impl Mirror {
    /// Opens the sockets (root: SO_RCVBUFFORCE) for `table`, with the engine's
    /// ports by interface index.
    pub fn open(table: u32, ports: Ports) -> Result<Mirror, String> {
        let err = |what: &str, e: io::Error| format!("route mirror: {what}: {e}");
        let mut events = Socket::new(NETLINK_ROUTE).map_err(|e| err("netlink socket", e))?;
        events.bind_auto().map_err(|e| err("bind", e))?;
        for g in [RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE] {
            events
                .add_membership(g)
                .map_err(|e| err("route groups", e))?;
        }
        #[allow(unused_mut)]
        let mut rcvbuf = EVENTS_RCVBUF;
        // Test builds only: `PKTENGINE_FAULT=mirror-small-buffer` makes the kernel drop
        // notifications of any burst, so the resync path runs (tests/tests/mirror.rs).
        #[cfg(feature = "fault-injection")]
        if std::env::var("PKTENGINE_FAULT").as_deref() == Ok("mirror-small-buffer") {
            rcvbuf = 4096;
        }
        // Root may exceed rmem_max; without the privilege, the ordinary limit.
        if nix::sys::socket::setsockopt(&events, nix::sys::socket::sockopt::RcvBufForce, &rcvbuf)
            .is_err()
        {
            let _ = events.set_rx_buf_sz(rcvbuf);
        }
        events
            .set_non_blocking(true)
            .map_err(|e| err("non-blocking", e))?;
        let mut dump = Socket::new(NETLINK_ROUTE).map_err(|e| err("netlink socket", e))?;
        dump.bind_auto().map_err(|e| err("bind", e))?;
        dump.connect(&SocketAddr::new(0, 0))
            .map_err(|e| err("connect", e))?;
        dump.set_non_blocking(true)
            .map_err(|e| err("non-blocking", e))?;
        Ok(Mirror {
            events,
            dump,
            table,
            ports,
            resync: None,
            need_resync: false,
            seq: 0,
            buf: vec![0; RECV_BUF],
            stats: MirrorStats::default(),
            routes: 0,
            origin: Origin::Kernel,
        })
    }

    /// The kernel interface index of every router port (`port name`, `interface`).
    pub fn ports_of<'a>(ports: impl Iterator<Item = (&'a str, &'a str)>) -> Ports {
        ports
            .filter_map(|(name, ifname)| {
                if ifname.is_empty() || ifname.contains('/') {
                    return None;
                }
                let i = std::fs::read_to_string(format!("/sys/class/net/{ifname}/ifindex"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some((i, name.to_string()))
            })
            .collect()
    }

    /// Loads the whole table (at start, before the workers run): dumps it and
    /// applies what it shows and what changed meanwhile, then publishes.
    pub fn load(&mut self, rt: &mut RouteTable) -> Result<usize, String> {
        self.start_dump()
            .map_err(|e| format!("route mirror: dump: {e}"))?;
        let deadline = Instant::now() + LOAD_DEADLINE;
        while self.resync.is_some() || self.need_resync {
            if Instant::now() > deadline {
                return Err(format!(
                    "route mirror: the kernel's table {} did not finish dumping within {} s",
                    self.table,
                    LOAD_DEADLINE.as_secs()
                ));
            }
            let r = self.poll(rt, Duration::from_millis(200));
            if !r.more {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // The start-up dump is not a recovery.
        self.stats.resyncs = self.stats.resyncs.saturating_sub(1);
        rt.publish();
        Ok(self.routes)
    }

    fn start_dump(&mut self) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.seq;
        // AF_UNSPEC: every family; translate() keeps IPv4 and IPv6.
        let mut msg = NetlinkMessage::new(
            header,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(RouteMessage::default())),
        );
        msg.finalize();
        let mut out = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut out);
        self.dump.send(&out, 0)?;
        self.resync = Some(Resync {
            seq: self.seq,
            seen: HashSet::new(),
            again: false,
        });
        Ok(())
    }

    /// Reads what is waiting (dump replies first, then events) for at most
    /// `budget` and stages it into `rt`; the caller publishes.
    pub fn poll(&mut self, rt: &mut RouteTable, budget: Duration) -> Round {
        let end = Instant::now() + budget;
        let mut changes = 0u64;
        let mut more = false;
        // The dump socket while a dump runs.
        while self.resync.is_some() {
            if Instant::now() > end {
                more = true;
                break;
            }
            match recv(&self.dump, &mut self.buf) {
                Ok(n) => {
                    let done = self.datagram(n, rt, &mut changes, true);
                    if done {
                        self.finish_resync(rt, &mut changes);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!("route mirror: dump: {e}; dumping again");
                    self.resync = None;
                    if let Err(e) = self.start_dump() {
                        tracing::warn!("route mirror: dump: {e}");
                    }
                    break;
                }
            }
        }
        loop {
            if Instant::now() > end {
                more = true;
                break;
            }
            match recv(&self.events, &mut self.buf) {
                Ok(n) => {
                    self.datagram(n, rt, &mut changes, false);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.need_resync && self.resync.is_none() {
                        self.need_resync = false;
                        if let Err(e) = self.start_dump() {
                            tracing::warn!("route mirror: dump: {e}");
                        }
                    }
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // Notifications were lost. The kernel reports ENOBUFS once and then
                    // drops silently until the queue is empty again, so the dump that
                    // repairs the table starts only once it is (below): every loss after
                    // that start is reported anew.
                    self.stats.overruns += 1;
                    if self.stats.overruns <= LOG_IGNORED {
                        tracing::info!("route mirror: the kernel dropped route notifications (ENOBUFS); table {} will be dumped again", self.table);
                    }
                    match &mut self.resync {
                        Some(r) => r.again = true,
                        None => self.need_resync = true,
                    }
                }
                Err(e) => {
                    tracing::warn!("route mirror: {e}");
                    break;
                }
            }
        }
        if changes > 0 {
            self.stats.batches += 1;
            self.stats.largest_batch = self.stats.largest_batch.max(changes);
        }
        Round { changes, more }
    }

    /// Handles one datagram of `n` bytes in `self.buf`; true when it ended the dump.
    fn datagram(&mut self, n: usize, rt: &mut RouteTable, changes: &mut u64, dump: bool) -> bool {
        if n > self.buf.len() {
            // MSG_TRUNC: longer than any route message can be.
            self.stats.malformed += 1;
            return false;
        }
        let mut off = 0usize;
        let mut done = false;
        while off + 16 <= n {
            let len = u32::from_ne_bytes([
                self.buf[off],
                self.buf[off + 1],
                self.buf[off + 2],
                self.buf[off + 3],
            ]) as usize;
            if len < 16 || off + len > n {
                self.stats.malformed += 1;
                break;
            }
            let change =
                match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..off + len])
                {
                    Ok(msg) => {
                        let flags = msg.header.flags;
                        let seq = msg.header.sequence_number;
                        match msg.payload {
                            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m)) => {
                                Some(translate(
                                    true,
                                    flags & NLM_F_APPEND != 0,
                                    &m,
                                    self.table,
                                    &self.ports,
                                ))
                            }
                            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(m)) => {
                                Some(translate(false, false, &m, self.table, &self.ports))
                            }
                            NetlinkPayload::Done(_) if dump => {
                                done = self.resync.as_ref().is_some_and(|r| r.seq == seq);
                                None
                            }
                            NetlinkPayload::Error(e) if dump => {
                                tracing::warn!("route mirror: dump refused: {e:?}");
                                done = true;
                                None
                            }
                            _ => None,
                        }
                    }
                    Err(_) => {
                        self.stats.malformed += 1;
                        None
                    }
                };
            if let Some(c) = change {
                self.apply(rt, c, changes);
            }
            off += (len + 3) & !3;
        }
        done
    }

    fn apply(&mut self, rt: &mut RouteTable, c: Change, changes: &mut u64) {
        match c {
            Change::Upsert(r) => self.upsert(rt, r, changes),
            Change::Append(mut r) => {
                if let Some(e) = rt.route_of(r.prefix, r.metric, self.origin) {
                    for h in e.hops() {
                        if !r.hops.contains(h) {
                            r.hops.push(h.clone());
                        }
                    }
                }
                self.upsert(rt, r, changes)
            }
            Change::Remove {
                prefix,
                metric,
                hops,
            } => {
                if let Some(r) = &mut self.resync {
                    r.seen.remove(&(prefix, metric));
                }
                if !hops.is_empty() {
                    if let Some(e) = rt.route_of(prefix, metric, self.origin) {
                        let rest: Vec<NextHop> = e
                            .hops()
                            .iter()
                            .filter(|h| !hops.contains(h))
                            .cloned()
                            .collect();
                        if !rest.is_empty() && rest.len() < e.hops().len() {
                            // Some members of a multipath route went.
                            let r = Route {
                                prefix,
                                hops: rest,
                                metric,
                                reject: None,
                            };
                            if let Some(s) = &mut self.resync {
                                s.seen.insert((prefix, metric));
                            }
                            self.upsert(rt, r, changes);
                            return;
                        }
                    }
                }
                if rt.stage_remove_from(prefix, metric, self.origin).is_ok() {
                    self.stats.removes += 1;
                    self.routes = self.routes.saturating_sub(1);
                    *changes += 1;
                }
            }
            Change::Ignore(why) => {
                let n = &mut self.stats.ignored[why as usize];
                *n += 1;
                let total: u64 = self.stats.ignored.iter().sum();
                if total <= LOG_IGNORED {
                    tracing::info!("route mirror: a route not mirrored ({})", why.name());
                } else if total == LOG_IGNORED + 1 {
                    tracing::info!(
                        "route mirror: more routes not mirrored; `ctl stats` counts them by reason"
                    );
                }
            }
        }
    }

    fn upsert(&mut self, rt: &mut RouteTable, r: Route, changes: &mut u64) {
        let key = (r.prefix, r.metric);
        let existed = rt.route_of(r.prefix, r.metric, self.origin).is_some();
        match rt.stage_add_from(r, self.origin) {
            Ok(()) => {
                self.stats.upserts += 1;
                if !existed {
                    self.routes += 1;
                }
                *changes += 1;
                if let Some(s) = &mut self.resync {
                    s.seen.insert(key);
                }
            }
            Err(e) => {
                self.stats.refused += 1;
                if self.stats.refused <= LOG_IGNORED {
                    tracing::warn!("route mirror: {} {}: {e}", key.0, key.1);
                }
            }
        }
    }

    /// The dump ended: kernel routes that neither it nor an event since showed are gone.
    fn finish_resync(&mut self, rt: &mut RouteTable, changes: &mut u64) {
        let Some(r) = self.resync.take() else {
            return;
        };
        self.stats.resyncs += 1;
        let mut gone = 0usize;
        // A one-time import (static origin) has nothing of its own to sweep:
        // the static routes are the configuration's.
        let sweep = if self.origin == Origin::Kernel {
            rt.keys_of(Origin::Kernel)
        } else {
            Vec::new()
        };
        for key in sweep {
            if !r.seen.contains(&key) && rt.stage_remove_from(key.0, key.1, Origin::Kernel).is_ok()
            {
                gone += 1;
                self.stats.removes += 1;
                *changes += 1;
            }
        }
        self.routes = rt.count_of(self.origin);
        if gone > 0 {
            tracing::info!(
                "route mirror: {gone} routes gone from the kernel while notifications were lost"
            );
        }
        if r.again {
            // Lost during this dump: another, once the events queue is empty.
            self.need_resync = true;
        }
    }
}

/// `--import-kernel-routes`: the routes of kernel table `table` copied once
/// at start, through the mirror's own dump and translation (multipath, reject
/// types, what is ignored and why), as static routes: they do not follow the
/// kernel and `ctl route del` may remove them. Returns how many were staged
/// (and published).
pub fn import(table: u32, ports: Ports, rt: &mut RouteTable) -> Result<usize, String> {
    let mut m = Mirror::open(table, ports)?;
    m.origin = Origin::Static;
    m.load(rt)?;
    let ignored: u64 = m.stats.ignored.iter().sum();
    if ignored > 0 {
        tracing::info!("kernel routes: {ignored} not imported (the lines above name the first)");
    }
    Ok(m.stats.upserts as usize)
}

/// One datagram into `buf`; the length may exceed it (MSG_TRUNC: then it was cut).
fn recv(s: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    let mut b: &mut [u8] = buf;
    s.recv(&mut b, libc::MSG_TRUNC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::route::{RouteHeader, RouteNextHop, RouteProtocol, RouteScope};

    fn ports() -> Ports {
        [(3, "lan".to_string()), (4, "wan".to_string())].into()
    }

    fn msg(family: AddressFamily, dst: &str, len: u8, kind: RouteType) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header = RouteHeader {
            address_family: family,
            destination_prefix_length: len,
            table: 254,
            protocol: RouteProtocol::Bird,
            scope: RouteScope::Universe,
            kind,
            ..RouteHeader::default()
        };
        if len > 0 {
            let a: IpAddr = dst.parse().unwrap();
            m.attributes.push(RouteAttribute::Destination(a.into()));
        }
        m
    }

    fn gw(a: &str) -> RouteAttribute {
        let a: IpAddr = a.parse().unwrap();
        RouteAttribute::Gateway(a.into())
    }

    fn nh(a: &str, oif: u32) -> RouteNextHop {
        let mut h = RouteNextHop::default();
        h.interface_index = oif;
        h.attributes.push(gw(a));
        h
    }

    fn upsert(c: Change) -> Route {
        match c {
            Change::Upsert(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unicast_routes_become_kernel_routes_on_the_engines_ports() {
        let mut m = msg(AddressFamily::Inet, "198.18.9.0", 24, RouteType::Unicast);
        m.attributes.push(gw("198.18.1.2"));
        m.attributes.push(RouteAttribute::Oif(3));
        m.attributes.push(RouteAttribute::Priority(32));
        let r = upsert(translate(true, false, &m, 254, &ports()));
        assert_eq!(
            r.to_string(),
            "198.18.9.0/24 via 198.18.1.2 dev lan metric 32"
        );
        // A connected route: device only.
        let mut m = msg(AddressFamily::Inet6, "2001:2:0:1::", 64, RouteType::Unicast);
        m.attributes.push(RouteAttribute::Oif(4));
        let r = upsert(translate(true, false, &m, 254, &ports()));
        assert_eq!(r.to_string(), "2001:2:0:1::/64 dev wan metric 0");
        // The default route has no RTA_DST.
        let mut m = msg(AddressFamily::Inet, "", 0, RouteType::Unicast);
        m.attributes.push(gw("198.18.1.2"));
        m.attributes.push(RouteAttribute::Oif(3));
        let r = upsert(translate(true, false, &m, 254, &ports()));
        assert_eq!(r.prefix.to_string(), "0.0.0.0/0");
    }

    #[test]
    fn multipath_routes_become_ecmp_groups_without_dead_members() {
        let mut m = msg(AddressFamily::Inet, "198.18.9.0", 24, RouteType::Unicast);
        let mut dead = nh("198.18.1.4", 3);
        dead.flags = RouteNextHopFlags::Dead;
        m.attributes.push(RouteAttribute::MultiPath(vec![
            nh("198.18.1.2", 3),
            nh("198.19.1.2", 4),
            dead,
        ]));
        let r = upsert(translate(true, false, &m, 254, &ports()));
        assert_eq!(r.hops.len(), 2);
        // One member through a device the engine does not own: the route is not mirrored.
        let mut m = msg(AddressFamily::Inet, "198.18.9.0", 24, RouteType::Unicast);
        m.attributes.push(RouteAttribute::MultiPath(vec![
            nh("198.18.1.2", 3),
            nh("198.18.50.2", 9),
        ]));
        assert_eq!(
            translate(true, false, &m, 254, &ports()),
            Change::Ignore(Ignored::ForeignDevice)
        );
    }

    #[test]
    fn reject_types_and_what_cannot_be_represented() {
        let ps = ports();
        let m = msg(AddressFamily::Inet, "198.18.10.0", 24, RouteType::BlackHole);
        assert_eq!(
            upsert(translate(true, false, &m, 254, &ps)).reject,
            Some(Reject::Blackhole)
        );
        let mut m = msg(
            AddressFamily::Inet6,
            "2001:2:10::",
            48,
            RouteType::Unreachable,
        );
        m.attributes.push(RouteAttribute::Oif(1)); // lo: ignored for reject routes
        assert_eq!(
            upsert(translate(true, false, &m, 254, &ps)).reject,
            Some(Reject::Unreachable)
        );
        for (kind, why) in [
            (RouteType::Local, Ignored::RouteType),
            (RouteType::Broadcast, Ignored::RouteType),
            (RouteType::Multicast, Ignored::RouteType),
            (RouteType::Throw, Ignored::RouteType),
        ] {
            let m = msg(AddressFamily::Inet, "198.18.1.1", 32, kind);
            assert_eq!(translate(true, false, &m, 254, &ps), Change::Ignore(why));
        }
        let mut m = msg(AddressFamily::Inet, "198.18.9.0", 24, RouteType::Unicast);
        m.attributes.push(gw("198.18.1.2"));
        m.attributes.push(RouteAttribute::Oif(3));
        m.header.table = 100;
        assert_eq!(
            translate(true, false, &m, 254, &ps),
            Change::Ignore(Ignored::OtherTable)
        );
        // Tables above 255 come in RTA_TABLE.
        m.header.table = 252;
        m.attributes.push(RouteAttribute::Table(1000));
        assert!(matches!(
            translate(true, false, &m, 1000, &ps),
            Change::Upsert(_)
        ));
        let mut m = msg(AddressFamily::Inet6, "fe80::", 64, RouteType::Unicast);
        m.attributes.push(RouteAttribute::Oif(3));
        assert_eq!(
            translate(true, false, &m, 254, &ps),
            Change::Ignore(Ignored::LinkLocal)
        );
        let mut m = msg(AddressFamily::Inet, "198.18.9.0", 24, RouteType::Unicast);
        m.attributes.push(gw("198.18.1.2"));
        m.attributes.push(RouteAttribute::Oif(7));
        assert_eq!(
            translate(true, false, &m, 254, &ps),
            Change::Ignore(Ignored::ForeignDevice)
        );
        m.header.tos = 4;
        assert_eq!(
            translate(true, false, &m, 254, &ps),
            Change::Ignore(Ignored::SourceOrTos)
        );
        let mut m = msg(AddressFamily::Inet6, "2001:2:9::", 48, RouteType::Unicast);
        m.header.source_prefix_length = 48;
        m.attributes.push(RouteAttribute::Oif(3));
        assert_eq!(
            translate(true, false, &m, 254, &ps),
            Change::Ignore(Ignored::SourceOrTos)
        );
        let m = msg(AddressFamily::Inet, "198.18.9.0", 24, RouteType::Unicast);
        assert_eq!(
            translate(true, false, &m, 254, &ps),
            Change::Ignore(Ignored::NoNextHop)
        );
        let mut m = msg(AddressFamily::Inet, "198.18.9.0", 24, RouteType::Unicast);
        m.attributes.push(gw("2001:2::1"));
        m.attributes.push(RouteAttribute::Oif(3));
        assert_eq!(
            translate(true, false, &m, 254, &ps),
            Change::Ignore(Ignored::ViaOtherFamily)
        );
    }

    #[test]
    fn ipv6_members_go_and_come_one_at_a_time() {
        let ps = ports();
        let mut rt = RouteTable::new();
        let mut stats = (0u64, 0u64);
        let mut m = msg(AddressFamily::Inet6, "2001:2:9::", 48, RouteType::Unicast);
        m.attributes.push(RouteAttribute::Priority(1024));
        m.attributes.push(RouteAttribute::MultiPath(vec![
            nh("2001:2:0:1::2", 3),
            nh("2001:2:0:1::3", 3),
        ]));
        // A stand-alone Mirror needs sockets; the staging logic is exercised through them.
        let mut mirror = Mirror::open(254, ps.clone()).unwrap();
        let mut n = 0;
        mirror.apply(&mut rt, translate(true, false, &m, 254, &ps), &mut n);
        let p: IpPrefix = "2001:2:9::/48".parse().unwrap();
        assert_eq!(
            rt.route_of(p, 1024, Origin::Kernel).unwrap().hops().len(),
            2
        );
        // `ip -6 route append ... via 2001:2:0:1::4`, notified alone (older kernels).
        let mut a = msg(AddressFamily::Inet6, "2001:2:9::", 48, RouteType::Unicast);
        a.attributes.push(RouteAttribute::Priority(1024));
        a.attributes.push(gw("2001:2:0:1::4"));
        a.attributes.push(RouteAttribute::Oif(3));
        mirror.apply(&mut rt, translate(true, true, &a, 254, &ps), &mut n);
        assert_eq!(
            rt.route_of(p, 1024, Origin::Kernel).unwrap().hops().len(),
            3
        );
        // `ip -6 route del ... via 2001:2:0:1::3`: only that member goes.
        let mut d = msg(AddressFamily::Inet6, "2001:2:9::", 48, RouteType::Unicast);
        d.attributes.push(RouteAttribute::Priority(1024));
        d.attributes.push(gw("2001:2:0:1::3"));
        d.attributes.push(RouteAttribute::Oif(3));
        mirror.apply(&mut rt, translate(false, false, &d, 254, &ps), &mut n);
        let left = rt.route_of(p, 1024, Origin::Kernel).unwrap().to_string();
        assert!(
            !left.contains("::3") && left.contains("::2") && left.contains("::4"),
            "{left}"
        );
        // A delete without members removes the route.
        let mut d = msg(AddressFamily::Inet6, "2001:2:9::", 48, RouteType::Unspec);
        d.attributes.push(RouteAttribute::Priority(1024));
        mirror.apply(&mut rt, translate(false, false, &d, 254, &ps), &mut n);
        assert!(rt.route_of(p, 1024, Origin::Kernel).is_none());
        assert_eq!(mirror.routes, 0);
        stats.0 = mirror.stats.upserts;
        stats.1 = mirror.stats.removes;
        assert_eq!(stats, (3, 1));
    }
}
