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

use std::collections::HashMap;

use super::rewrite::{Ep, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::hashing::FlowHashMap;
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
        Timeouts { udp_ms: 300_000, icmp_ms: 60_000, tcp_established_ms: 7_440_000, tcp_transitory_ms: 240_000 }
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
        }
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

#[derive(Debug, Clone, Copy, Default)]
struct Session {
    proto: u8,
    tcp: u8,
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
        PortSet { used: vec![0; 1024], cursor: 0 }
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
    sweep: usize,
}

impl NatTable {
    pub fn new(cfg: TableConfig) -> NatTable {
        let cap = cfg.max_sessions as usize;
        let seed = crate::hashing::seeded();
        let nstatic = cfg.statics.len();
        let mut t = NatTable {
            sessions: Slab::with_capacity(cap),
            mappings: Slab::with_capacity(cap + nstatic),
            out: HashMap::with_capacity_and_hasher(cap, seed),
            inb: HashMap::with_capacity_and_hasher(cap, seed),
            by_int: HashMap::with_capacity_and_hasher(cap + nstatic, seed),
            by_ext: HashMap::with_capacity_and_hasher(cap + nstatic, seed),
            perm: if cfg.filtering == Filtering::AddressDependent { HashMap::with_capacity_and_hasher(cap, seed) } else { HashMap::with_hasher(seed) },
            hosts: HashMap::with_capacity_and_hasher(cap.min(1 << 16), seed),
            ports: (0..cfg.pool.len() * 3).map(|_| PortSet::new()).collect(),
            live_mappings: 0,
            sweep: 0,
            cfg,
        };
        for (proto, outside, inside) in t.cfg.statics.clone() {
            let pool = t.cfg.pool.iter().position(|&a| a == outside.addr);
            if let Some(pi) = pool {
                t.ports[pi * 3 + proto_index(proto)].set(outside.port, true);
            }
            let m = Mapping { proto, fixed: true, pool: pool.map_or(u16::MAX, |p| p as u16), inside, outside, sessions: 0 };
            // cap + nstatic slots: always room for the statics.
            let Some(idx) = t.mappings.insert(m) else { break };
            t.by_int.insert(EpKey::new(proto, inside), idx);
            t.by_ext.insert(EpKey::new(proto, outside), idx);
        }
        t
    }

    pub fn config(&self) -> &TableConfig {
        &self.cfg
    }

    /// (sessions, dynamic mappings) alive.
    pub fn counts(&self) -> (u32, u32) {
        (self.sessions.len() as u32, self.live_mappings)
    }

    /// Translates a packet from inside endpoint `inside` to `remote`: the
    /// outside endpoint it leaves from, creating the mapping and the session
    /// when the packet may create state. `tcp_flags`: the TCP header's flags,
    /// [`ECHO_REQUEST`] for an ICMP echo request, 0 otherwise.
    #[inline]
    pub fn outbound(&mut self, proto: u8, inside: Ep, remote: Ep, tcp_flags: u8, now_ms: u64) -> Result<Ep, NatError> {
        let remote = norm(proto, remote);
        if let Some(&s) = self.out.get(&FlowKey::new(proto, inside, remote)) {
            let sess = &mut self.sessions[s as usize];
            sess.last_ms = now_ms;
            sess.pkts_out += 1;
            if proto == PROTO_TCP {
                sess.tcp |= out_flags(tcp_flags);
            }
            return Ok(sess.outside);
        }
        self.new_outbound(proto, inside, remote, tcp_flags, now_ms)
    }

    #[cold]
    fn new_outbound(&mut self, proto: u8, inside: Ep, remote: Ep, tcp_flags: u8, now_ms: u64) -> Result<Ep, NatError> {
        let may_create = match proto {
            PROTO_TCP => tcp_flags & F_RST == 0,
            PROTO_UDP => true,
            // Only echo requests open ICMP state (RFC 5508 §3.1).
            _ => tcp_flags == ECHO_REQUEST,
        };
        if !may_create {
            return Err(NatError::NotNew);
        }
        if self.sessions.is_full() {
            return Err(NatError::Exhausted);
        }
        let m = match self.by_int.get(&EpKey::new(proto, inside)) {
            Some(&m) => m,
            None => self.new_mapping(proto, inside)?,
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
    pub fn inbound(&mut self, proto: u8, remote: Ep, outside: Ep, tcp_flags: u8, now_ms: u64) -> Result<Ep, NatError> {
        let remote = norm(proto, remote);
        if let Some(&s) = self.inb.get(&FlowKey::new(proto, outside, remote)) {
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
    fn new_inbound(&mut self, proto: u8, remote: Ep, outside: Ep, tcp_flags: u8, now_ms: u64) -> Result<Ep, NatError> {
        let Some(&m) = self.by_ext.get(&EpKey::new(proto, outside)) else { return Err(NatError::NoMapping) };
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
        if self.sessions.is_full() {
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
        let s = *self.out.get(&FlowKey::new(proto, inside, norm(proto, remote)))?;
        Some(self.sessions[s as usize].outside)
    }

    /// The inside endpoint of the session (outside, remote), if any: for
    /// ICMP errors about packets the NAT sent out. Falls back to the
    /// mapping alone (the error may come from a router on the way, not from
    /// the remote endpoint itself).
    pub fn find_inbound(&self, proto: u8, outside: Ep, remote: Ep) -> Option<Ep> {
        if let Some(&s) = self.inb.get(&FlowKey::new(proto, outside, norm(proto, remote))) {
            return Some(self.sessions[s as usize].inside);
        }
        None
    }

    /// The mapping of an outside endpoint, without a session check.
    pub fn mapping_inside(&self, proto: u8, outside: Ep) -> Option<Ep> {
        self.by_ext.get(&EpKey::new(proto, outside)).map(|&m| self.mappings[m as usize].inside)
    }

    fn new_mapping(&mut self, proto: u8, inside: Ep) -> Result<u32, NatError> {
        let n = self.hosts.get(&inside.addr).copied().unwrap_or(0);
        if n >= self.cfg.max_per_host {
            return Err(NatError::HostLimit);
        }
        if self.cfg.pool.is_empty() || self.mappings.is_full() {
            return Err(NatError::Exhausted);
        }
        // Paired pooling (RFC 4787 REQ-2): an inside address always gets
        // the same outside address.
        let pi = (u64::from(inside.addr).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % self.cfg.pool.len();
        let port = self.alloc_port(pi, proto, inside.port).ok_or(NatError::Exhausted)?;
        let outside = Ep::new(self.cfg.pool[pi], port);
        let m = Mapping { proto, fixed: false, pool: pi as u16, inside, outside, sessions: 0 };
        // Not full: checked above.
        let Some(idx) = self.mappings.insert(m) else { return Err(NatError::Exhausted) };
        self.by_int.insert(EpKey::new(proto, inside), idx);
        self.by_ext.insert(EpKey::new(proto, outside), idx);
        *self.hosts.entry(inside.addr).or_insert(0) += 1;
        self.live_mappings += 1;
        Ok(idx)
    }

    /// A free port of this worker's partition: `want` (the inside port,
    /// RFC 4787 REQ-3 "port preservation" where possible), else the next
    /// free one after a rotating cursor.
    fn alloc_port(&mut self, pool: usize, proto: u8, want: u16) -> Option<u16> {
        let (lo, hi) = (self.cfg.port_lo, self.cfg.port_hi);
        let (w, n) = (self.cfg.worker, self.cfg.workers.max(1));
        let reserved = |p: u16| self.cfg.reserved.is_some_and(|(a, b)| a <= p && p <= b);
        let mine = |p: u16| super::port_owner(p, n) == w;
        let set = &mut self.ports[pool * 3 + proto_index(proto)];
        if want >= lo && want <= hi && mine(want) && !set.is_used(want) && !reserved(want) {
            set.set(want, true);
            return Some(want);
        }
        // Candidates: lo <= p <= hi owned by this worker (about one in n), from a rotating cursor.
        if lo > hi {
            return None;
        }
        let count = u32::from(hi) - u32::from(lo) + 1;
        for k in 0..count {
            let i = (set.cursor + k) % count;
            let p = (u32::from(lo) + i) as u16;
            if mine(p) && !set.is_used(p) && !reserved(p) {
                set.set(p, true);
                set.cursor = (i + 1) % count;
                return Some(p);
            }
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn add_session(&mut self, proto: u8, m: u32, inside: Ep, outside: Ep, remote: Ep, tcp: u8, now_ms: u64, out: bool) {
        let s = Session {
            proto,
            tcp,
            inside,
            remote,
            outside,
            mapping: m,
            created_ms: now_ms,
            last_ms: now_ms,
            pkts_out: u64::from(out),
            pkts_in: u64::from(!out),
        };
        // Not full: the callers checked.
        let Some(idx) = self.sessions.insert(s) else { return };
        self.out.insert(FlowKey::new(proto, inside, remote), idx);
        self.inb.insert(FlowKey::new(proto, outside, remote), idx);
        if self.cfg.filtering == Filtering::AddressDependent {
            *self.perm.entry(perm_key(m, remote.addr)).or_insert(0) += 1;
        }
        self.mappings[m as usize].sessions += 1;
    }

    fn timeout_ms(&self, s: &Session) -> u64 {
        timeout_for(&self.cfg.timeouts, s.proto, s.tcp)
    }

    /// Expires idle sessions, looking at up to `budget` slots from where the
    /// previous call stopped; a mapping goes with its last session. Returns
    /// how many sessions expired.
    pub fn expire(&mut self, now_ms: u64, budget: usize) -> usize {
        let mut gone = 0;
        for i in self.sessions.sweep(&mut self.sweep, budget) {
            let Some(&s) = self.sessions.get(i) else { continue };
            if now_ms.saturating_sub(s.last_ms) >= self.timeout_ms(&s) {
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

    /// Removes the sessions in slots `range`, and the dynamic mappings they
    /// leave without a session (one slice of `ctl nat flush`).
    pub fn flush_slice(&mut self, range: std::ops::Range<usize>) {
        for i in range.start..range.end.min(self.sessions.slots()) {
            if self.sessions.contains(i as u32) {
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
        if let Some(set) = self.ports.get_mut(usize::from(m.pool) * 3 + proto_index(m.proto)) {
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
    pub fn dump_slice(&self, range: std::ops::Range<usize>, now_ms: u64, rows: &mut Vec<SessionInfo>) {
        rows.extend(self.sessions.iter_range(range).map(|(_, s)| {
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
    (if f & F_SYN != 0 { SYN_OUT } else { 0 }) | (if f & F_FIN != 0 { FIN_OUT } else { 0 }) | (if f & F_RST != 0 { RST } else { 0 })
}

/// The same for a packet from the outside (server) side.
#[inline]
pub(crate) fn in_flags(f: u8) -> u8 {
    use tcp_seen::*;
    (if f & F_SYN != 0 { SYN_IN } else { 0 }) | (if f & F_FIN != 0 { FIN_IN } else { 0 }) | (if f & F_RST != 0 { RST } else { 0 })
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
