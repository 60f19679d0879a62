//! One worker's NAT state: mappings (endpoint-independent, RFC 4787 §4.1),
//! the sessions under them (one per remote endpoint: filtering and TCP state
//! live there), external port allocation, per-host limits and expiry.
//!
//! ```text
//!  out: (proto, inside ep, remote ep)  ─┐                ┌─ by_int: (proto, inside ep)  ─┐
//!                                       ├─► Session ─────┤                               ├─► Mapping
//!  inb: (proto, outside ep, remote ep) ─┘   (state, age) └─ by_ext: (proto, outside ep) ─┘   (inside ep, outside ep)
//! ```
//!
//! A translated packet of a known flow costs one hash probe (`out` or
//! `inb`) and a few stores. A new flow looks up or creates its mapping, then
//! creates the session. Everything is preallocated at start to the
//! configured capacity: no allocation while the table is below it, and a
//! full table refuses new sessions (counted) instead of growing.
//!
//! The table is owned by one worker and never shared: no atomics, no locks.
//! Ownership across workers is by external port (see `conntrack::port_owner`), so
//! this table only allocates ports of its own partition.
//!
//! The same table tracks connections for the stateful filter
//! (`conntrack::track`): every entry carries a [`Track`]. A NAT session is
//! its flow's tracked connection (one entry, one lookup); a flow the NAT
//! does not translate (IPv4 between ports that do not translate, all of
//! IPv6) is a *plain* entry: the same `Session` without a mapping, under one
//! key that both directions find (`plain_key`: the endpoints in a canonical
//! order, tagged so that it never equals a NAT key; IPv6 tuples by a keyed
//! 128-bit digest, checked against the addresses the entry keeps).

use std::collections::HashMap;

use std::hash::BuildHasher;

use super::packet::Tuple;
use super::rewrite::{Ep, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use super::track::{Track, TrackConfig};
use crate::hashing::{FlowHashMap, Seeded};
use crate::slab::Slab;

/// Inbound filtering (RFC 4787 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filtering {
    /// Any remote endpoint may use a mapping once it exists.
    EndpointIndependent,
    /// Remote addresses the inside endpoint has sent to, any port.
    AddressDependent,
    /// Exactly the remote endpoints the inside endpoint has sent to.
    #[default]
    AddressAndPortDependent,
}

/// Timeouts in milliseconds (RFC 4787 REQ-5, RFC 5382 REQ-5, RFC 5508 REQ-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub udp_ms: u64,
    pub icmp_ms: u64,
    pub tcp_established_ms: u64,
    pub tcp_transitory_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            udp_ms: 300_000,
            icmp_ms: 60_000,
            tcp_established_ms: 7_440_000,
            tcp_transitory_ms: 240_000,
        }
    }
}

/// What one worker's table needs to know.
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// Outside addresses (host order), in pool order.
    pub pool: Vec<u32>,
    /// External port / ICMP id range, inclusive.
    pub port_lo: u16,
    pub port_hi: u16,
    pub filtering: Filtering,
    /// Dynamic mappings per inside address in this table.
    pub max_per_host: u32,
    /// Sessions this table holds at most (mappings are at most as many).
    pub max_sessions: u32,
    pub timeouts: Timeouts,
    /// This table allocates the ports `p` with `p % workers == worker`.
    pub worker: u16,
    pub workers: u16,
    /// Static port forwards: (proto, outside ep, inside ep).
    pub statics: Vec<(u8, Ep, Ep)>,
    /// Ports never allocated (the load balancer's health-check probes use them).
    pub reserved: Option<(u16, u16)>,
    /// Connection tracking for the stateful filter (None: NAT sessions only).
    pub ct: Option<CtTableConfig>,
    /// RSS of the port the return traffic arrives on: a new mapping's port
    /// is also chosen so that the NIC delivers the first session's return
    /// traffic to this worker's queue ([`ReturnSteer`]). None: partition only.
    pub steer: Option<ReturnSteer>,
}

/// Port choice by RSS: a port `p` suits worker `worker` of `workers` for
/// return traffic from `remote` to `(pool address, p)` when the NIC's queue
/// for that tuple is served by the worker (`rss::queue_worker`).
#[derive(Debug, Clone)]
pub struct ReturnSteer {
    pub rss: std::sync::Arc<crate::rss::Rss>,
}

impl ReturnSteer {
    /// The hash of the return tuple with destination port 0 (the hash is
    /// linear: a port's part is XORed in), or None when the NIC does not
    /// hash `proto`'s ports (no port choice can steer it).
    #[inline]
    fn base(&self, proto: u8, remote: Ep, pool_addr: u32) -> Option<u32> {
        self.rss.hashes_ports(proto).then(|| {
            self.rss
                .toeplitz()
                .hash_v4_ports(remote.addr, pool_addr, remote.port, 0)
        })
    }

    #[inline]
    fn suits(&self, base: u32, port: u16, worker: u16, workers: u16) -> bool {
        let h = base ^ self.rss.toeplitz().dport_part(port);
        crate::rss::queue_worker(self.rss.queue_of(h), workers) == worker
    }

    /// Whether some queue of the table is served by `worker` (else no port suits it).
    pub fn serves(&self, worker: u16, workers: u16) -> bool {
        self.rss
            .table
            .iter()
            .any(|&q| crate::rss::queue_worker(q, workers) == worker)
    }
}

/// What the table needs to track connections for the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtTableConfig {
    /// Entries the table holds (NAT sessions and plain entries together);
    /// NAT sessions are at most `max_sessions` of them.
    pub max_entries: u32,
    pub track: TrackConfig,
}

/// Counts of the tracker's table events, read by the filter (plain integers: the worker's own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CtCounts {
    /// Plain entries made.
    pub created: u64,
    /// Plain entries that timed out.
    pub expired: u64,
    /// Entries removed early to make room for a new one.
    pub evicted: u64,
    /// New flows refused: the table was full and nothing could be evicted.
    pub full: u64,
}

impl TableConfig {
    /// A single-worker table over `pool` with default limits (tests, benches).
    pub fn simple(pool: Vec<u32>, max_sessions: u32) -> TableConfig {
        TableConfig {
            pool,
            port_lo: 1024,
            port_hi: 65535,
            filtering: Filtering::default(),
            max_per_host: u32::MAX,
            max_sessions,
            timeouts: Timeouts::default(),
            worker: 0,
            workers: 1,
            statics: Vec::new(),
            reserved: None,
            ct: None,
            steer: None,
        }
    }

    /// The table's capacity: `max_entries` when it tracks, else `max_sessions`.
    pub fn capacity(&self) -> u32 {
        self.ct.map_or(self.max_sessions, |c| c.max_entries)
    }
}

/// Why a packet could not be translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatError {
    /// Inbound: no mapping for the destination (unsolicited).
    NoMapping,
    /// Inbound: a mapping exists but filtering refuses this remote endpoint.
    Filtered,
    /// Outbound: the inside host has its maximum of mappings.
    HostLimit,
    /// Outbound: no free external port (or the session table is full).
    Exhausted,
    /// A packet that may not create state (a TCP RST, an echo reply, ...).
    NotNew,
}

// ---- keys --------------------------------------------------------------------

/// Two endpoints and a protocol, packed into two words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FlowKey(u64, u64);

impl FlowKey {
    #[inline]
    pub(crate) fn new(proto: u8, a: Ep, b: Ep) -> FlowKey {
        FlowKey(
            u64::from(a.addr) << 32 | u64::from(b.addr),
            u64::from(proto) << 32 | u64::from(a.port) << 16 | u64::from(b.port),
        )
    }
}

/// One endpoint and a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct EpKey(u64);

impl EpKey {
    #[inline]
    fn new(proto: u8, e: Ep) -> EpKey {
        EpKey(u64::from(proto) << 48 | u64::from(e.port) << 32 | u64::from(e.addr))
    }
}

// ---- entries -----------------------------------------------------------------

/// TCP flags seen per direction (RFC 5382 §5, RFC 7857 §2.2).
pub mod tcp_seen {
    pub const SYN_OUT: u8 = 1;
    pub const SYN_IN: u8 = 2;
    pub const FIN_OUT: u8 = 4;
    pub const FIN_IN: u8 = 8;
    pub const RST: u8 = 16;
}

const F_FIN: u8 = 0x01;
const F_SYN: u8 = 0x02;
const F_RST: u8 = 0x04;
const F_ACK: u8 = 0x10;
/// The `flags` argument of an ICMP echo request (ICMP has no TCP flags).
pub const ECHO_REQUEST: u8 = 1;

/// Session kinds: a NAT session, or a flow tracked for the filter only.
const KIND_NAT: u8 = 0;
const KIND_PLAIN4: u8 = 1;
const KIND_PLAIN6: u8 = 2;
/// The `mapping` of a plain entry.
const NO_MAPPING: u32 = u32::MAX;
/// Tags of plain keys (the second word): NAT keys have neither bit.
const PLAIN4_TAG: u64 = 1 << 63;
const PLAIN6_TAG: u64 = 1 << 62;

#[derive(Debug, Clone, Copy, Default)]
struct Session {
    proto: u8,
    tcp: u8,
    kind: u8,
    /// A plain entry: the original source (IPv6: its port only).
    inside: Ep,
    remote: Ep,
    /// The mapping's outside endpoint, kept here too: a translation then
    /// reads one entry, not two.
    outside: Ep,
    mapping: u32,
    created_ms: u64,
    last_ms: u64,
    pkts_out: u64,
    pkts_in: u64,
    /// The connection as the filter tracks it.
    ct: Track,
    /// IPv6 plain entries: original source and destination.
    src6: [u8; 16],
    dst6: [u8; 16],
}

impl Session {
    /// The original direction's tuple of a plain entry (the NAT's out side for a session).
    fn tuple(&self) -> Tuple {
        let (family, src, dst) = match self.kind {
            KIND_PLAIN6 => (
                6,
                u128::from_be_bytes(self.src6),
                u128::from_be_bytes(self.dst6),
            ),
            _ => (
                4,
                u128::from(self.inside.addr),
                u128::from(self.remote.addr),
            ),
        };
        Tuple {
            family,
            proto: self.proto,
            src,
            dst,
            sport: self.inside.port,
            dport: self.remote.port,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Mapping {
    proto: u8,
    fixed: bool,
    pool: u16,
    inside: Ep,
    outside: Ep,
    sessions: u32,
}

/// A session as `ctl nat show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub proto: u8,
    pub inside: Ep,
    pub outside: Ep,
    pub remote: Ep,
    pub state: &'static str,
    /// Since the session was created.
    pub age_ms: u64,
    /// Since its last packet.
    pub idle_ms: u64,
    pub expires_ms: u64,
    pub pkts_out: u64,
    pub pkts_in: u64,
    pub fixed: bool,
}

/// A tracked connection as `ctl conn show` prints it (`conntrack -L`'s fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// The original direction (as the first packet went).
    pub orig: Tuple,
    /// The reply direction (the NAT's outside address and port for a translated flow).
    pub reply: Tuple,
    /// TCP state (`ESTABLISHED`, ...), empty for other protocols.
    pub tcp: &'static str,
    /// `track::SEEN_REPLY`, `ASSURED`, `TRACKED` bits.
    pub status: u8,
    pub expires_ms: u64,
    pub pkts_orig: u64,
    pub pkts_reply: u64,
    /// A NAT session.
    pub nat: bool,
}

/// Protocol index of the port bitmaps.
#[inline]
fn proto_index(proto: u8) -> usize {
    match proto {
        PROTO_TCP => 0,
        PROTO_UDP => 1,
        _ => 2,
    }
}

pub fn proto_name(proto: u8) -> &'static str {
    match proto {
        PROTO_TCP => "tcp",
        PROTO_UDP => "udp",
        PROTO_ICMP => "icmp",
        _ => "?",
    }
}

/// One bit per port of one (pool address, protocol).
#[derive(Debug, Clone)]
struct PortSet {
    used: Vec<u64>,
    /// Rotating start of the search among this worker's candidates.
    cursor: u32,
}

impl PortSet {
    fn new() -> PortSet {
        PortSet {
            used: vec![0; 1024],
            cursor: 0,
        }
    }
    #[inline]
    fn is_used(&self, p: u16) -> bool {
        self.used[usize::from(p >> 6)] >> (p & 63) & 1 == 1
    }
    #[inline]
    fn set(&mut self, p: u16, on: bool) {
        let w = &mut self.used[usize::from(p >> 6)];
        if on {
            *w |= 1 << (p & 63);
        } else {
            *w &= !(1 << (p & 63));
        }
    }
}

/// One worker's NAT table.
#[derive(Debug)]
pub struct NatTable {
    cfg: TableConfig,
    sessions: Slab<Session>,
    mappings: Slab<Mapping>,
    out: FlowHashMap<FlowKey, u32>,
    inb: FlowHashMap<FlowKey, u32>,
    by_int: FlowHashMap<EpKey, u32>,
    by_ext: FlowHashMap<EpKey, u32>,
    /// Address-dependent filtering: (mapping, remote address) → sessions.
    perm: FlowHashMap<u64, u32>,
    /// Dynamic mappings per inside address.
    hosts: FlowHashMap<u32, u32>,
    ports: Vec<PortSet>,
    live_mappings: u32,
    /// NAT sessions alive (the slab also holds plain entries).
    nat_sessions: u32,
    /// The tracker's configuration (defaults when the table does not track).
    track: TrackConfig,
    /// The slot the last NAT lookup found or made (the filter tracks it),
    /// and whether it made it.
    last_slot: Option<u32>,
    last_created: bool,
    /// Keyed digests of IPv6 plain tuples (two independent halves).
    d6: (Seeded, Seeded),
    pub ct_counts: CtCounts,
    sweep: usize,
    /// Where the next eviction search starts.
    evict: usize,
}

impl NatTable {
    pub fn new(cfg: TableConfig) -> NatTable {
        let cap = cfg.capacity() as usize;
        let seed = crate::hashing::seeded();
        let nstatic = cfg.statics.len();
        let mut t = NatTable {
            sessions: Slab::with_capacity(cap),
            mappings: Slab::with_capacity(cap + nstatic),
            out: HashMap::with_capacity_and_hasher(cap, seed),
            inb: HashMap::with_capacity_and_hasher(cap, seed),
            by_int: HashMap::with_capacity_and_hasher(cap + nstatic, seed),
            by_ext: HashMap::with_capacity_and_hasher(cap + nstatic, seed),
            perm: if cfg.filtering == Filtering::AddressDependent {
                HashMap::with_capacity_and_hasher(cap, seed)
            } else {
                HashMap::with_hasher(seed)
            },
            hosts: HashMap::with_capacity_and_hasher(cap.min(1 << 16), seed),
            ports: (0..cfg.pool.len() * 3).map(|_| PortSet::new()).collect(),
            live_mappings: 0,
            nat_sessions: 0,
            track: cfg.ct.map(|c| c.track).unwrap_or_default(),
            last_slot: None,
            last_created: false,
            d6: (crate::hashing::seeded(), crate::hashing::seeded()),
            ct_counts: CtCounts::default(),
            sweep: 0,
            evict: 0,
            cfg,
        };
        for (proto, outside, inside) in t.cfg.statics.clone() {
            let pool = t.cfg.pool.iter().position(|&a| a == outside.addr);
            if let Some(pi) = pool {
                t.ports[pi * 3 + proto_index(proto)].set(outside.port, true);
            }
            let m = Mapping {
                proto,
                fixed: true,
                pool: pool.map_or(u16::MAX, |p| p as u16),
                inside,
                outside,
                sessions: 0,
            };
            // cap + nstatic slots: always room for the statics.
            let Some(idx) = t.mappings.insert(m) else {
                break;
            };
            t.by_int.insert(EpKey::new(proto, inside), idx);
            t.by_ext.insert(EpKey::new(proto, outside), idx);
        }
        t
    }

    pub fn config(&self) -> &TableConfig {
        &self.cfg
    }

    /// (NAT sessions, dynamic mappings) alive.
    pub fn counts(&self) -> (u32, u32) {
        (self.nat_sessions, self.live_mappings)
    }

    /// Entries alive: NAT sessions and plain tracked flows.
    pub fn entries(&self) -> u32 {
        self.sessions.len() as u32
    }

    /// No room for another NAT session.
    #[inline]
    fn nat_full(&self) -> bool {
        self.sessions.is_full() || self.nat_sessions >= self.cfg.max_sessions
    }

    /// Translates a packet from inside endpoint `inside` to `remote`: the
    /// outside endpoint it leaves from, creating the mapping and the session
    /// when the packet may create state. `tcp_flags`: the TCP header's flags,
    /// [`ECHO_REQUEST`] for an ICMP echo request, 0 otherwise.
    #[inline]
    pub fn outbound(
        &mut self,
        proto: u8,
        inside: Ep,
        remote: Ep,
        tcp_flags: u8,
        now_ms: u64,
    ) -> Result<Ep, NatError> {
        let remote = norm(proto, remote);
        if let Some(&s) = self.out.get(&FlowKey::new(proto, inside, remote)) {
            self.last_slot = Some(s);
            self.last_created = false;
            return Ok(self.outbound_at(s, proto, tcp_flags, now_ms));
        }
        self.new_outbound(proto, inside, remote, tcp_flags, now_ms)
    }

    /// [`NatTable::outbound`] for a session the caller found already
    /// ([`NatTable::out_slot`]): no second probe.
    #[inline]
    pub fn outbound_at(&mut self, s: u32, proto: u8, tcp_flags: u8, now_ms: u64) -> Ep {
        let sess = &mut self.sessions[s as usize];
        sess.last_ms = now_ms;
        sess.pkts_out += 1;
        if proto == PROTO_TCP {
            sess.tcp |= out_flags(tcp_flags);
        }
        sess.outside
    }

    /// The NAT session of (inside, remote), without touching it.
    #[inline]
    pub fn out_slot(&self, proto: u8, inside: Ep, remote: Ep) -> Option<u32> {
        self.out
            .get(&FlowKey::new(proto, inside, norm(proto, remote)))
            .copied()
    }

    /// The NAT session that the last `outbound`/`inbound` found or made.
    pub fn last_slot(&self) -> Option<u32> {
        self.last_slot
    }

    /// Whether the last `outbound`/`inbound` made its session.
    pub fn last_created(&self) -> bool {
        self.last_created
    }

    #[cold]
    fn new_outbound(
        &mut self,
        proto: u8,
        inside: Ep,
        remote: Ep,
        tcp_flags: u8,
        now_ms: u64,
    ) -> Result<Ep, NatError> {
        let may_create = match proto {
            PROTO_TCP => tcp_flags & F_RST == 0,
            PROTO_UDP => true,
            // Only echo requests open ICMP state (RFC 5508 §3.1).
            _ => tcp_flags == ECHO_REQUEST,
        };
        if !may_create {
            return Err(NatError::NotNew);
        }
        if self.nat_full() {
            return Err(NatError::Exhausted);
        }
        let m = match self.by_int.get(&EpKey::new(proto, inside)) {
            Some(&m) => m,
            None => self.new_mapping(proto, inside, remote)?,
        };
        let tcp = if proto == PROTO_TCP {
            // A connection picked up mid-stream (the engine restarted) counts as established.
            if tcp_flags & F_SYN != 0 && tcp_flags & F_ACK == 0 {
                tcp_seen::SYN_OUT
            } else {
                tcp_seen::SYN_OUT | tcp_seen::SYN_IN | out_flags(tcp_flags)
            }
        } else {
            0
        };
        let outside = self.mappings[m as usize].outside;
        self.add_session(proto, m, inside, outside, remote, tcp, now_ms, true);
        Ok(outside)
    }

    /// Translates a packet from `remote` to outside endpoint `outside`: the
    /// inside endpoint it goes to, subject to the filtering behaviour.
    #[inline]
    pub fn inbound(
        &mut self,
        proto: u8,
        remote: Ep,
        outside: Ep,
        tcp_flags: u8,
        now_ms: u64,
    ) -> Result<Ep, NatError> {
        let remote = norm(proto, remote);
        if let Some(&s) = self.inb.get(&FlowKey::new(proto, outside, remote)) {
            self.last_slot = Some(s);
            self.last_created = false;
            let sess = &mut self.sessions[s as usize];
            sess.last_ms = now_ms;
            sess.pkts_in += 1;
            if proto == PROTO_TCP {
                sess.tcp |= in_flags(tcp_flags);
            }
            return Ok(sess.inside);
        }
        self.new_inbound(proto, remote, outside, tcp_flags, now_ms)
    }

    #[cold]
    fn new_inbound(
        &mut self,
        proto: u8,
        remote: Ep,
        outside: Ep,
        tcp_flags: u8,
        now_ms: u64,
    ) -> Result<Ep, NatError> {
        let Some(&m) = self.by_ext.get(&EpKey::new(proto, outside)) else {
            return Err(NatError::NoMapping);
        };
        let map = self.mappings[m as usize];
        let allowed = map.fixed
            || match self.cfg.filtering {
                Filtering::EndpointIndependent => true,
                Filtering::AddressDependent => self.perm.contains_key(&perm_key(m, remote.addr)),
                Filtering::AddressAndPortDependent => false,
            };
        if !allowed {
            return Err(NatError::Filtered);
        }
        let may_create = match proto {
            PROTO_TCP => tcp_flags & F_RST == 0,
            PROTO_UDP => true,
            _ => false,
        };
        if !may_create {
            return Err(NatError::NotNew);
        }
        if self.nat_full() {
            return Err(NatError::Exhausted);
        }
        let tcp = if proto == PROTO_TCP {
            if tcp_flags & F_SYN != 0 && tcp_flags & F_ACK == 0 {
                tcp_seen::SYN_IN
            } else {
                tcp_seen::SYN_OUT | tcp_seen::SYN_IN | in_flags(tcp_flags)
            }
        } else {
            0
        };
        self.add_session(proto, m, map.inside, outside, remote, tcp, now_ms, false);
        Ok(map.inside)
    }

    /// The outside endpoint of the session (inside, remote), if any: for
    /// ICMP errors an inside host sends about a packet it received.
    pub fn find_outbound(&self, proto: u8, inside: Ep, remote: Ep) -> Option<Ep> {
        let s = *self
            .out
            .get(&FlowKey::new(proto, inside, norm(proto, remote)))?;
        Some(self.sessions[s as usize].outside)
    }

    /// The inside endpoint of the session (outside, remote), if any: for
    /// ICMP errors about packets the NAT sent out. Falls back to the
    /// mapping alone (the error may come from a router on the way, not from
    /// the remote endpoint itself).
    pub fn find_inbound(&self, proto: u8, outside: Ep, remote: Ep) -> Option<Ep> {
        self.find_inbound_slot(proto, outside, remote)
            .map(|s| self.sessions[s as usize].inside)
    }

    /// The inside endpoint of session `slot`.
    pub fn inside_of(&self, slot: u32) -> Option<Ep> {
        self.sessions
            .get(slot)
            .filter(|s| s.kind == KIND_NAT)
            .map(|s| s.inside)
    }

    /// The session (outside, remote), if any.
    pub fn find_inbound_slot(&self, proto: u8, outside: Ep, remote: Ep) -> Option<u32> {
        self.inb
            .get(&FlowKey::new(proto, outside, norm(proto, remote)))
            .copied()
    }

    /// The mapping of an outside endpoint, without a session check.
    pub fn mapping_inside(&self, proto: u8, outside: Ep) -> Option<Ep> {
        self.by_ext
            .get(&EpKey::new(proto, outside))
            .map(|&m| self.mappings[m as usize].inside)
    }

    fn new_mapping(&mut self, proto: u8, inside: Ep, remote: Ep) -> Result<u32, NatError> {
        let n = self.hosts.get(&inside.addr).copied().unwrap_or(0);
        if n >= self.cfg.max_per_host {
            return Err(NatError::HostLimit);
        }
        if self.cfg.pool.is_empty() || self.mappings.is_full() {
            return Err(NatError::Exhausted);
        }
        // Paired pooling (RFC 4787 REQ-2): an inside address always gets
        // the same outside address.
        let pi = (u64::from(inside.addr).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize
            % self.cfg.pool.len();
        let port = self
            .alloc_port(pi, proto, inside.port, remote)
            .ok_or(NatError::Exhausted)?;
        let outside = Ep::new(self.cfg.pool[pi], port);
        let m = Mapping {
            proto,
            fixed: false,
            pool: pi as u16,
            inside,
            outside,
            sessions: 0,
        };
        // Not full: checked above.
        let Some(idx) = self.mappings.insert(m) else {
            return Err(NatError::Exhausted);
        };
        self.by_int.insert(EpKey::new(proto, inside), idx);
        self.by_ext.insert(EpKey::new(proto, outside), idx);
        *self.hosts.entry(inside.addr).or_insert(0) += 1;
        self.live_mappings += 1;
        Ok(idx)
    }

    /// A free port of this worker's partition: `want` (the inside port,
    /// RFC 4787 REQ-3 "port preservation" where possible), else the next
    /// free one after a rotating cursor. With [`ReturnSteer`], only ports
    /// whose return traffic from `remote` the NIC gives this worker (one
    /// in `workers` of the partition for a table that spreads evenly).
    fn alloc_port(&mut self, pool: usize, proto: u8, want: u16, remote: Ep) -> Option<u16> {
        let (lo, hi) = (self.cfg.port_lo, self.cfg.port_hi);
        let (w, n) = (self.cfg.worker, self.cfg.workers.max(1));
        let reserved = |p: u16| self.cfg.reserved.is_some_and(|(a, b)| a <= p && p <= b);
        let steer = self.cfg.steer.as_ref().and_then(|s| {
            let addr = *self.cfg.pool.get(pool)?;
            Some((s, s.base(proto, remote, addr)?))
        });
        let part = |p: u16| super::port_owner(p, n) == w;
        let steered = |p: u16| steer.is_none_or(|(s, b)| s.suits(b, p, w, n));
        let set = &mut self.ports[pool * 3 + proto_index(proto)];
        let free = |set: &PortSet, p: u16| part(p) && !set.is_used(p) && !reserved(p);
        if want >= lo && want <= hi && free(set, want) && steered(want) {
            set.set(want, true);
            return Some(want);
        }
        // Candidates: lo <= p <= hi owned by this worker (about one in n), from a rotating cursor.
        if lo > hi {
            return None;
        }
        let count = u32::from(hi) - u32::from(lo) + 1;
        // Steered ports first; when none is free (or no queue of the table
        // is this worker's), any port of the partition: the owner rule
        // stays right, the return traffic is then handed over.
        for pass in [true, false] {
            if !pass && steer.is_none() {
                break;
            }
            for k in 0..count {
                let i = (set.cursor + k) % count;
                let p = (u32::from(lo) + i) as u16;
                if free(set, p) && (!pass || steered(p)) {
                    set.set(p, true);
                    set.cursor = (i + 1) % count;
                    return Some(p);
                }
            }
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn add_session(
        &mut self,
        proto: u8,
        m: u32,
        inside: Ep,
        outside: Ep,
        remote: Ep,
        tcp: u8,
        now_ms: u64,
        out: bool,
    ) {
        let s = Session {
            proto,
            tcp,
            kind: KIND_NAT,
            inside,
            remote,
            outside,
            mapping: m,
            created_ms: now_ms,
            last_ms: now_ms,
            pkts_out: u64::from(out),
            pkts_in: u64::from(!out),
            ..Session::default()
        };
        // Not full: the callers checked.
        let Some(idx) = self.sessions.insert(s) else {
            return;
        };
        self.last_slot = Some(idx);
        self.last_created = true;
        self.nat_sessions += 1;
        self.out.insert(FlowKey::new(proto, inside, remote), idx);
        self.inb.insert(FlowKey::new(proto, outside, remote), idx);
        if self.cfg.filtering == Filtering::AddressDependent {
            *self.perm.entry(perm_key(m, remote.addr)).or_insert(0) += 1;
        }
        self.mappings[m as usize].sessions += 1;
    }

    fn timeout_ms(&self, s: &Session) -> u64 {
        if s.kind == KIND_NAT {
            timeout_for(&self.cfg.timeouts, s.proto, s.tcp)
        } else {
            self.cfg.ct.map_or(0, |c| c.track.timeouts.get(s.ct.class))
        }
    }

    /// Expires idle sessions, looking at up to `budget` slots from where the
    /// previous call stopped; a mapping goes with its last session. Returns
    /// how many sessions expired.
    pub fn expire(&mut self, now_ms: u64, budget: usize) -> usize {
        let mut gone = 0;
        for i in self.sessions.sweep(&mut self.sweep, budget) {
            let Some(&s) = self.sessions.get(i) else {
                continue;
            };
            if now_ms.saturating_sub(s.last_ms) >= self.timeout_ms(&s) {
                if s.kind != KIND_NAT {
                    self.ct_counts.expired += 1;
                }
                self.remove_session(i);
                gone += 1;
            }
        }
        gone
    }

    /// Removes every session and dynamic mapping.
    pub fn flush(&mut self) {
        self.flush_slice(0..self.sessions.slots());
    }

    /// Removes the NAT sessions in slots `range`, and the dynamic mappings
    /// they leave without a session (one slice of `ctl nat flush`); plain
    /// tracked flows stay.
    pub fn flush_slice(&mut self, range: std::ops::Range<usize>) {
        for i in range.start..range.end.min(self.sessions.slots()) {
            if self
                .sessions
                .get(i as u32)
                .is_some_and(|s| s.kind == KIND_NAT)
            {
                self.remove_session(i as u32);
            }
        }
    }

    /// Session slots ever used: a dump walks the slots below this.
    pub fn session_slots(&self) -> usize {
        self.sessions.slots()
    }

    fn remove_session(&mut self, i: u32) {
        let s = self.sessions[i as usize];
        if s.kind != KIND_NAT {
            let k = self.plain_key(&s.tuple());
            self.out.remove(&k);
            self.sessions.remove(i);
            return;
        }
        self.nat_sessions -= 1;
        let m = self.mappings[s.mapping as usize];
        self.out.remove(&FlowKey::new(s.proto, s.inside, s.remote));
        self.inb.remove(&FlowKey::new(s.proto, m.outside, s.remote));
        if self.cfg.filtering == Filtering::AddressDependent {
            let k = perm_key(s.mapping, s.remote.addr);
            if let Some(c) = self.perm.get_mut(&k) {
                *c -= 1;
                if *c == 0 {
                    self.perm.remove(&k);
                }
            }
        }
        self.sessions.remove(i);
        let mm = &mut self.mappings[s.mapping as usize];
        mm.sessions -= 1;
        if mm.sessions == 0 && !mm.fixed {
            self.remove_mapping(s.mapping);
        }
    }

    fn remove_mapping(&mut self, i: u32) {
        let m = self.mappings[i as usize];
        self.by_int.remove(&EpKey::new(m.proto, m.inside));
        self.by_ext.remove(&EpKey::new(m.proto, m.outside));
        if let Some(set) = self
            .ports
            .get_mut(usize::from(m.pool) * 3 + proto_index(m.proto))
        {
            set.set(m.outside.port, false);
        }
        if let Some(c) = self.hosts.get_mut(&m.inside.addr) {
            *c -= 1;
            if *c == 0 {
                self.hosts.remove(&m.inside.addr);
            }
        }
        self.mappings.remove(i);
        self.live_mappings -= 1;
    }

    /// Every live session (allocates: tests and tools; the workers dump by [`NatTable::dump_slice`]).
    pub fn dump(&self, now_ms: u64) -> Vec<SessionInfo> {
        let mut rows = Vec::new();
        self.dump_slice(0..self.sessions.slots(), now_ms, &mut rows);
        rows
    }

    /// The live sessions in slots `range`, appended to `rows` (one slice of
    /// `ctl nat show`: at most one row per slot, so a buffer with room for
    /// `range.len()` rows never grows).
    pub fn dump_slice(
        &self,
        range: std::ops::Range<usize>,
        now_ms: u64,
        rows: &mut Vec<SessionInfo>,
    ) {
        rows.extend(
            self.sessions
                .iter_range(range)
                .filter(|(_, s)| s.kind == KIND_NAT)
                .map(|(_, s)| {
                    let m = &self.mappings[s.mapping as usize];
                    let idle = now_ms.saturating_sub(s.last_ms);
                    SessionInfo {
                        proto: s.proto,
                        inside: s.inside,
                        outside: m.outside,
                        remote: s.remote,
                        state: state_name(s),
                        age_ms: now_ms.saturating_sub(s.created_ms),
                        idle_ms: idle,
                        expires_ms: self.timeout_ms(s).saturating_sub(idle),
                        pkts_out: s.pkts_out,
                        pkts_in: s.pkts_in,
                        fixed: m.fixed,
                    }
                }),
        );
    }
}

/// Where a tracked packet's entry is, and which way the packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub slot: u32,
    /// 0: the entry's original direction, 1: the reply.
    pub dir: usize,
}

/// An entry as the tracker works on it: its [`Track`], the tracker's
/// configuration, and its packet counts and idle time (plain entries only:
/// the NAT counts its sessions itself).
#[derive(Debug)]
pub struct EntryCt<'a> {
    pub cfg: &'a TrackConfig,
    s: &'a mut Session,
}

impl EntryCt<'_> {
    #[inline]
    pub fn track(&mut self) -> &mut Track {
        &mut self.s.ct
    }

    /// A NAT session.
    #[inline]
    pub fn is_nat(&self) -> bool {
        self.s.kind == KIND_NAT
    }

    #[inline]
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.s.created_ms)
    }

    /// Counts a packet in direction `dir`; `refresh` restarts the idle time (plain entries).
    #[inline]
    pub fn touch(&mut self, dir: usize, now_ms: u64, refresh: bool) {
        if self.s.kind == KIND_NAT {
            return;
        }
        if refresh {
            self.s.last_ms = now_ms;
        }
        if dir == 0 {
            self.s.pkts_out += 1;
        } else {
            self.s.pkts_in += 1;
        }
    }
}

/// Why a plain entry could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtFull {
    /// Full, and nothing could be evicted.
    Full,
}

/// Slots looked at for an entry to evict when the table is full.
const EVICT_LOOK: usize = 16;

impl NatTable {
    /// The key of a plain entry: both directions of a flow give the same.
    #[inline]
    fn plain_key(&self, t: &Tuple) -> FlowKey {
        let (a, ap, b, bp) = if (t.src, t.sport) <= (t.dst, t.dport) {
            (t.src, t.sport, t.dst, t.dport)
        } else {
            (t.dst, t.dport, t.src, t.sport)
        };
        let ports = u64::from(t.proto) << 32 | u64::from(ap) << 16 | u64::from(bp);
        if t.family == 6 {
            let h1 = self.d6.0.hash_one((a, b, ports));
            let h2 = self.d6.1.hash_one((a, b, ports));
            FlowKey(h1, (h2 & !(PLAIN4_TAG | PLAIN6_TAG)) | PLAIN6_TAG)
        } else {
            FlowKey(
                (a as u64 & 0xffff_ffff) << 32 | (b as u64 & 0xffff_ffff),
                PLAIN4_TAG | ports,
            )
        }
    }

    /// Tracks for the filter (the table was made with a `ct` configuration).
    pub fn tracks(&self) -> bool {
        self.cfg.ct.is_some()
    }

    /// The tracker's configuration (defaults when the table does not track).
    #[inline]
    pub fn track_config(&self) -> &TrackConfig {
        &self.track
    }

    /// Entry `slot` as the tracker works on it (one slab access for a tracked packet).
    #[inline]
    pub fn entry_ct(&mut self, slot: u32) -> Option<EntryCt<'_>> {
        let cfg = &self.track;
        let s = self.sessions.get_mut(slot)?;
        Some(EntryCt { cfg, s })
    }

    /// The plain entry of the flow `t` belongs to, and the packet's direction.
    #[inline]
    pub fn ct_find(&self, t: &Tuple) -> Option<Found> {
        let &slot = self.out.get(&self.plain_key(t))?;
        let e = self.sessions.get(slot)?;
        let o = e.tuple();
        if e.kind == KIND_NAT || o.family != t.family || o.proto != t.proto {
            return None;
        }
        if (o.src, o.sport, o.dst, o.dport) == (t.src, t.sport, t.dst, t.dport) {
            Some(Found { slot, dir: 0 })
        } else if (o.src, o.sport, o.dst, o.dport) == (t.dst, t.dport, t.src, t.sport) {
            Some(Found { slot, dir: 1 })
        } else {
            // Another IPv6 flow with the same digest: not this one.
            None
        }
    }

    /// A plain entry for the flow `t` (its first packet goes from `t.src`),
    /// evicting an entry that is not assured when the table is full.
    pub fn ct_insert(&mut self, t: &Tuple, track: Track, now_ms: u64) -> Result<u32, CtFull> {
        if self.sessions.is_full() && !self.evict_one() {
            self.ct_counts.full += 1;
            return Err(CtFull::Full);
        }
        let v6 = t.family == 6;
        let s = Session {
            proto: t.proto,
            tcp: 0,
            kind: if v6 { KIND_PLAIN6 } else { KIND_PLAIN4 },
            inside: Ep::new(if v6 { 0 } else { t.src4() }, t.sport),
            remote: Ep::new(if v6 { 0 } else { t.dst4() }, t.dport),
            outside: Ep::default(),
            mapping: NO_MAPPING,
            created_ms: now_ms,
            last_ms: now_ms,
            pkts_out: 1,
            pkts_in: 0,
            ct: track,
            src6: if v6 { t.src.to_be_bytes() } else { [0; 16] },
            dst6: if v6 { t.dst.to_be_bytes() } else { [0; 16] },
        };
        let key = self.plain_key(t);
        if let Some(&old) = self.out.get(&key) {
            // A digest collision with a live IPv6 flow (2^-128): refuse rather than shadow it.
            let _ = old;
            self.ct_counts.full += 1;
            return Err(CtFull::Full);
        }
        let Some(idx) = self.sessions.insert(s) else {
            self.ct_counts.full += 1;
            return Err(CtFull::Full);
        };
        self.out.insert(key, idx);
        self.ct_counts.created += 1;
        Ok(idx)
    }

    /// Removes one entry that may go early (nf_conntrack's early drop: not
    /// assured, or a TCP connection already closing), looking at a few
    /// slots from a rotating cursor. False when none was found.
    fn evict_one(&mut self) -> bool {
        let slots = self.sessions.slots();
        if slots == 0 {
            return false;
        }
        for _ in 0..EVICT_LOOK {
            let i = (self.evict % slots) as u32;
            self.evict = (self.evict + 1) % slots;
            let Some(s) = self.sessions.get(i) else {
                continue;
            };
            if s.kind == KIND_NAT {
                continue;
            }
            let closing = s.proto == PROTO_TCP
                && s.ct.tcp >= super::track::TcpState::FinWait as u8
                && s.ct.tcp <= super::track::TcpState::Close as u8;
            if s.ct.status & super::track::ASSURED == 0 || closing {
                self.remove_session(i);
                self.ct_counts.evicted += 1;
                return true;
            }
        }
        false
    }

    /// The tracker's state of entry `slot`.
    #[inline]
    pub fn track(&self, slot: u32) -> Option<&Track> {
        self.sessions.get(slot).map(|s| &s.ct)
    }

    #[inline]
    pub fn track_mut(&mut self, slot: u32) -> Option<&mut Track> {
        self.sessions.get_mut(slot).map(|s| &mut s.ct)
    }

    /// Whether entry `slot` is a NAT session.
    pub fn is_nat(&self, slot: u32) -> bool {
        self.sessions.get(slot).is_some_and(|s| s.kind == KIND_NAT)
    }

    /// Removes entry `slot` (a NAT session with its mapping if it was the last).
    pub fn remove_slot(&mut self, slot: u32) {
        if self.sessions.contains(slot) {
            self.remove_session(slot);
        }
    }

    /// Every entry as `ctl conn show` lists it (allocates: tests and tools).
    pub fn conn_dump(&self, now_ms: u64) -> Vec<ConnInfo> {
        let mut rows = Vec::new();
        self.conn_dump_slice(0..self.sessions.slots(), now_ms, &mut rows);
        rows
    }

    /// The entries in slots `range` (NAT sessions and plain flows), appended
    /// to `rows` (one slice of `ctl conn show`: at most one row per slot).
    pub fn conn_dump_slice(
        &self,
        range: std::ops::Range<usize>,
        now_ms: u64,
        rows: &mut Vec<ConnInfo>,
    ) {
        rows.extend(self.sessions.iter_range(range).map(|(_, s)| {
            let (orig, reply) = if s.kind == KIND_NAT {
                let out = Tuple {
                    family: 4,
                    proto: s.proto,
                    src: u128::from(s.inside.addr),
                    dst: u128::from(s.remote.addr),
                    sport: s.inside.port,
                    dport: s.remote.port,
                };
                let mut back = Tuple {
                    family: 4,
                    proto: s.proto,
                    src: u128::from(s.remote.addr),
                    dst: u128::from(s.outside.addr),
                    sport: s.remote.port,
                    dport: s.outside.port,
                };
                if s.proto == PROTO_ICMP {
                    back.sport = s.outside.port;
                }
                if s.ct.status & super::track::FLIP != 0 {
                    (back, out)
                } else {
                    (out, back)
                }
            } else {
                let o = s.tuple();
                (o, o.reversed())
            };
            let flip = s.kind == KIND_NAT && s.ct.status & super::track::FLIP != 0;
            let (po, pr) = if flip {
                (s.pkts_in, s.pkts_out)
            } else {
                (s.pkts_out, s.pkts_in)
            };
            let idle = now_ms.saturating_sub(s.last_ms);
            ConnInfo {
                orig,
                reply,
                tcp: if s.proto == PROTO_TCP && s.ct.status & super::track::TRACKED != 0 {
                    s.ct.state().name()
                } else {
                    ""
                },
                status: s.ct.status,
                expires_ms: self.timeout_ms(s).saturating_sub(idle),
                pkts_orig: po,
                pkts_reply: pr,
                nat: s.kind == KIND_NAT,
            }
        }));
    }
}

#[inline]
fn norm(proto: u8, remote: Ep) -> Ep {
    // ICMP queries: the id is the NAT's "port" on the inside and the
    // outside; the remote side has none.
    if proto == PROTO_ICMP {
        Ep::new(remote.addr, 0)
    } else {
        remote
    }
}

#[inline]
fn perm_key(m: u32, remote_addr: u32) -> u64 {
    u64::from(m) << 32 | u64::from(remote_addr)
}

/// The idle timeout of a flow of `proto` with TCP flags `tcp` seen
/// ([`tcp_seen`]): established TCP (SYN both ways) 2 h 4 min by default,
/// opening or closing TCP transitory (4 min), UDP 5 min, ICMP 60 s.
pub(crate) fn timeout_for(t: &Timeouts, proto: u8, tcp: u8) -> u64 {
    match proto {
        PROTO_UDP => t.udp_ms,
        PROTO_TCP => {
            use tcp_seen::*;
            let both_fin = tcp & (FIN_OUT | FIN_IN) == FIN_OUT | FIN_IN;
            if tcp & RST != 0 || both_fin {
                t.tcp_transitory_ms
            } else if tcp & (SYN_OUT | SYN_IN) == SYN_OUT | SYN_IN {
                t.tcp_established_ms
            } else {
                t.tcp_transitory_ms
            }
        }
        _ => t.icmp_ms,
    }
}

/// TCP flags of a packet from the inside (client) side as [`tcp_seen`] bits.
#[inline]
pub(crate) fn out_flags(f: u8) -> u8 {
    use tcp_seen::*;
    (if f & F_SYN != 0 { SYN_OUT } else { 0 })
        | (if f & F_FIN != 0 { FIN_OUT } else { 0 })
        | (if f & F_RST != 0 { RST } else { 0 })
}

/// The same for a packet from the outside (server) side.
#[inline]
pub(crate) fn in_flags(f: u8) -> u8 {
    use tcp_seen::*;
    (if f & F_SYN != 0 { SYN_IN } else { 0 })
        | (if f & F_FIN != 0 { FIN_IN } else { 0 })
        | (if f & F_RST != 0 { RST } else { 0 })
}

fn state_name(s: &Session) -> &'static str {
    tcp_state_name(s.proto, s.tcp)
}

/// A flow's TCP state for `ctl` ("-" for other protocols).
pub(crate) fn tcp_state_name(proto: u8, tcp: u8) -> &'static str {
    use tcp_seen::*;
    match proto {
        PROTO_TCP => {
            if tcp & RST != 0 {
                "reset"
            } else if tcp & (FIN_OUT | FIN_IN) == FIN_OUT | FIN_IN {
                "closing"
            } else if tcp & (FIN_OUT | FIN_IN) != 0 {
                "fin-seen"
            } else if tcp & (SYN_OUT | SYN_IN) == SYN_OUT | SYN_IN {
                "established"
            } else {
                "syn-seen"
            }
        }
        _ => "-",
    }
}

#[cfg(test)]
mod tests;
