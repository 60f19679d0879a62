//! NAT44: NAPT between inside and outside ports, with the behaviour RFC 4787
//! (UDP), RFC 5382 (TCP), RFC 5508 (ICMP) and RFC 7857 ask for.
//!
//! - `conntrack::rewrite`: what a translation rewrites in a packet, and the checksums.
//! - `conntrack::table`: one worker's mappings and sessions, port allocation, expiry.
//! - [`frag`]: later fragments follow their first fragment's translation.
//! - `context::handoff`: frames moved to the worker that owns their flow.
//! - [`stage`]: the pipeline hooks (`ip4-input` for packets to an outside
//!   address, `ip4-forward` for packets leaving inside → outside).
//!
//! Ownership: a mapping's state lives on exactly one worker, and its
//! external port (or ICMP id) names it: worker [`port_owner`]`(port,
//! workers)`, a hash of the port; a worker allocates only ports of its own
//! partition, so an inbound packet finds its owner by its destination port.
//! An outbound packet's owner is the worker whose queue the NIC's RSS gives
//! its tuple on the inside port ([`crate::rss`], when the port's RSS key and
//! table are known), else the hash of its inside port (a worker then keeps
//! an inside port only when that port is in its partition). With RSS the
//! owner also picks the new mapping's port so that the NIC delivers the
//! return traffic to its own queue (`conntrack::ReturnSteer`): a flow's
//! frames then stay on one worker in both directions. Static forwards are
//! known to every worker and need no owner. See docs/ARCHITECTURE.md, "NAT"
//! and "RSS-aware ownership".

pub mod config;
pub mod frag;
pub mod stage;

// The NAT's table and rewrites live in `conntrack` (floor 1): the load
// balancer shares them.
pub use crate::conntrack::port_owner;

#[cfg(test)]
mod pipeline_tests;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::rss::Rss;

pub use crate::conntrack::{Ep, Filtering, NatError, NatTable, SessionInfo, TableConfig, Timeouts};
use crate::context::dump::{Cursor, Mode};

/// A port's place in the NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Not translated (plain routing).
    #[default]
    None,
    Inside,
    Outside,
}

/// A static port forward: `proto outside -> inside`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub proto: u8,
    pub outside: Ep,
    pub inside: Ep,
}

/// The validated `[nat]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// Outside addresses, in order.
    pub pool: Vec<Ipv4Addr>,
    pub port_lo: u16,
    pub port_hi: u16,
    pub filtering: Filtering,
    /// Mappings per inside address (over all workers).
    pub max_per_host: u32,
    /// Sessions per worker.
    pub max_sessions: u32,
    /// On exhaustion or host limit, also send ICMP administratively prohibited.
    pub icmp_on_exhaustion: bool,
    pub timeouts: Timeouts,
    pub forwards: Vec<Forward>,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            pool: Vec::new(),
            port_lo: 1024,
            port_hi: 65535,
            filtering: Filtering::default(),
            max_per_host: 4096,
            max_sessions: 262_144,
            icmp_on_exhaustion: false,
            timeouts: Timeouts::default(),
            forwards: Vec::new(),
        }
    }
}

/// One `pool` entry: an address, a range `A-B` or a prefix `A/LEN` (/16 or longer).
pub fn parse_pool_entry(s: &str) -> Result<Vec<Ipv4Addr>, String> {
    let bad = |why: &str| format!("pool entry `{s}`: {why}");
    let (lo, hi) = if let Some((a, b)) = s.split_once('-') {
        let a: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| bad("not an IPv4 address range"))?;
        let b: Ipv4Addr = b
            .trim()
            .parse()
            .map_err(|_| bad("not an IPv4 address range"))?;
        (u32::from(a), u32::from(b))
    } else if let Some((a, l)) = s.split_once('/') {
        let a: Ipv4Addr = a.trim().parse().map_err(|_| bad("not an IPv4 prefix"))?;
        let l: u32 = l
            .trim()
            .parse()
            .ok()
            .filter(|l| (16..=32).contains(l))
            .ok_or_else(|| bad("prefix length must be 16..32"))?;
        let base = u32::from(a) & (u32::MAX.checked_shl(32 - l).unwrap_or(0));
        if base != u32::from(a) {
            return Err(bad("host bits set"));
        }
        (base, base | (u32::MAX >> l))
    } else {
        let a: Ipv4Addr = s.trim().parse().map_err(|_| bad("not an IPv4 address"))?;
        (u32::from(a), u32::from(a))
    };
    if hi < lo {
        return Err(bad("the range ends before it starts"));
    }
    if hi - lo >= 65536 {
        return Err(bad("more than 65536 addresses"));
    }
    Ok((lo..=hi).map(Ipv4Addr::from).collect())
}

/// A static forward: `PROTO OUTSIDE_ADDR:PORT INSIDE_ADDR:PORT`, PROTO `tcp` or `udp`.
pub fn parse_forward(s: &str) -> Result<Forward, String> {
    let bad = |why: &str| {
        format!("forward `{s}`: {why} (expected `tcp|udp OUTSIDE_ADDR:PORT INSIDE_ADDR:PORT`)")
    };
    let w: Vec<&str> = s.split_whitespace().collect();
    let [proto, outside, inside] = w[..] else {
        return Err(bad("three words"));
    };
    let proto = match proto {
        "tcp" => crate::conntrack::rewrite::PROTO_TCP,
        "udp" => crate::conntrack::rewrite::PROTO_UDP,
        _ => return Err(bad("unknown protocol")),
    };
    let ep = |t: &str| -> Result<Ep, String> {
        let sa: std::net::SocketAddrV4 = t.parse().map_err(|_| bad("not ADDR:PORT"))?;
        if sa.port() == 0 {
            return Err(bad("port 0"));
        }
        Ok(Ep::new(u32::from(*sa.ip()), sa.port()))
    };
    Ok(Forward {
        proto,
        outside: ep(outside)?,
        inside: ep(inside)?,
    })
}

/// Live counts a worker publishes (relaxed stores, read by `ctl`).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Gauges {
    pub sessions: AtomicU32,
    pub mappings: AtomicU32,
}

/// `ctl nat show` and `ctl nat flush`: one slot per worker (`context::dump`).
pub type Dumps = crate::context::dump::Dumps<SessionInfo>;

/// What every worker reads: the configuration, the port roles, the static
/// forwards and the per-worker gauges (the handoff inboxes are in `Tables`).
#[derive(Debug)]
pub struct NatShared {
    pub cfg: NatConfig,
    roles: Vec<Role>,
    /// Outside address ranges (pool and forward addresses), host order, inclusive.
    outside: Vec<(u32, u32)>,
    workers: u16,
    /// Ports the tables never allocate (set when load-balancer health checks need them).
    pub reserved: Option<(u16, u16)>,
    pub gauges: Vec<Gauges>,
    /// `ctl nat show` (a dump) and `ctl nat flush` (a dump that removes).
    pub dumps: std::sync::Arc<Dumps>,
    /// Each port's RSS model (None: not known, e.g. veth, or `rss = "off"`).
    rss: Vec<Option<Arc<Rss>>>,
}

impl NatShared {
    /// `roles` per port index, for `workers` workers.
    pub fn new(cfg: NatConfig, roles: Vec<Role>, workers: u16) -> NatShared {
        let workers = workers.max(1);
        let mut outside: Vec<(u32, u32)> = Vec::new();
        let addrs = cfg
            .pool
            .iter()
            .map(|&a| u32::from(a))
            .chain(cfg.forwards.iter().map(|f| f.outside.addr));
        let mut sorted: Vec<u32> = addrs.collect();
        sorted.sort_unstable();
        sorted.dedup();
        for a in sorted {
            match outside.last_mut() {
                Some((_, hi)) if hi.checked_add(1) == Some(a) => *hi = a,
                _ => outside.push((a, a)),
            }
        }
        NatShared {
            gauges: (0..workers).map(|_| Gauges::default()).collect(),
            dumps: std::sync::Arc::new(Dumps::new(workers)),
            cfg,
            roles,
            outside,
            workers,
            reserved: None,
            rss: Vec::new(),
        }
    }

    /// Sets each port's RSS model (by port index).
    pub fn with_rss(mut self, rss: Vec<Option<Arc<Rss>>>) -> NatShared {
        self.rss = rss;
        self
    }

    /// Port `port`'s RSS model, if known.
    #[inline]
    pub fn rss_of(&self, port: u16) -> Option<&Rss> {
        self.rss.get(usize::from(port))?.as_deref()
    }

    /// The RSS model new mappings are steered by: the first outside port's
    /// that has one (return traffic arrives on an outside port).
    pub fn return_rss(&self) -> Option<&Arc<Rss>> {
        self.roles
            .iter()
            .zip(&self.rss)
            .find_map(|(r, m)| m.as_ref().filter(|_| *r == Role::Outside))
    }

    #[inline]
    pub fn role(&self, port: u16) -> Role {
        self.roles
            .get(usize::from(port))
            .copied()
            .unwrap_or_default()
    }

    pub fn workers(&self) -> u16 {
        self.workers
    }

    /// Whether `a` (host order) is one of the NAT's outside addresses.
    #[inline]
    pub fn is_outside_addr(&self, a: u32) -> bool {
        self.outside.iter().any(|&(lo, hi)| lo <= a && a <= hi)
    }

    /// Whether `a` is a pool address (the engine answers ARP for it on outside ports).
    pub fn in_pool(&self, a: Ipv4Addr) -> bool {
        self.cfg.pool.contains(&a)
    }

    /// The worker owning external port (or ICMP id) `port`.
    #[inline]
    pub fn owner_of(&self, port: u16) -> u16 {
        port_owner(port, self.workers)
    }

    fn is_static_outside(&self, proto: u8, e: Ep) -> bool {
        self.cfg
            .forwards
            .iter()
            .any(|f| f.proto == proto && f.outside == e)
    }

    fn is_static_inside(&self, proto: u8, e: Ep) -> bool {
        self.cfg
            .forwards
            .iter()
            .any(|f| f.proto == proto && f.inside == e)
    }

    /// The owner of the flow to outside endpoint `e` (None: any worker, a static forward).
    #[inline]
    pub fn owner_inbound(&self, proto: u8, e: Ep) -> Option<u16> {
        if !self.cfg.forwards.is_empty() && self.is_static_outside(proto, e) {
            return None;
        }
        Some(self.owner_of(e.port))
    }

    /// The owner of the flow from inside endpoint `e` to `remote` that
    /// arrives on `port`: the worker of the queue the port's RSS gives it,
    /// else the hash of the inside port.
    #[inline]
    pub fn owner_outbound(&self, port: u16, proto: u8, e: Ep, remote: Ep) -> Option<u16> {
        if !self.cfg.forwards.is_empty() && self.is_static_inside(proto, e) {
            return None;
        }
        Some(match self.rss_of(port) {
            Some(r) => crate::rss::queue_worker(
                r.queue_v4(proto, e.addr, remote.addr, e.port, remote.port),
                self.workers,
            ),
            None => self.owner_of(e.port),
        })
    }

    /// Worker `w`'s table configuration.
    pub fn table_config(&self, w: u16) -> TableConfig {
        let n = u32::from(self.workers);
        TableConfig {
            pool: self.cfg.pool.iter().map(|&a| u32::from(a)).collect(),
            port_lo: self.cfg.port_lo,
            port_hi: self.cfg.port_hi,
            filtering: self.cfg.filtering,
            // The limit is over all workers; each holds its share (a host's
            // flows spread over the workers by port).
            max_per_host: self.cfg.max_per_host.div_ceil(n),
            max_sessions: self.cfg.max_sessions,
            timeouts: self.cfg.timeouts,
            worker: w,
            workers: self.workers,
            statics: self
                .cfg
                .forwards
                .iter()
                .map(|f| (f.proto, f.outside, f.inside))
                .collect(),
            reserved: self.reserved,
            ct: None,
            steer: self
                .return_rss()
                .map(|r| crate::conntrack::ReturnSteer { rss: r.clone() })
                .filter(|s| s.serves(w, self.workers)),
        }
    }

    /// (sessions, mappings) over all workers, as last published.
    pub fn totals(&self) -> (u64, u64) {
        self.gauges.iter().fold((0, 0), |(s, m), g| {
            (
                s + u64::from(g.sessions.load(Ordering::Relaxed)),
                m + u64::from(g.mappings.load(Ordering::Relaxed)),
            )
        })
    }
}

/// One worker's NAT state.
#[derive(Debug)]
pub struct NatWorker {
    pub table: NatTable,
    pub frags: frag::FragTable,
    last_sweep_ms: u64,
    /// Where this worker is in a `ctl nat show`/`flush` (a slice per loop).
    dump: Cursor,
    /// The session the last inbound translation found or made (slot,
    /// made now, an ICMP error about it): the stateful filter tracks the
    /// packet on it instead of looking it up again. Cleared before each
    /// packet's prerouting by the pipeline.
    pub seen: Option<Seen>,
}

/// What an inbound translation found (`NatWorker::seen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub slot: u32,
    pub created: bool,
    pub related: bool,
}

/// How often a worker looks for expired sessions, and how many slots per look.
const SWEEP_EVERY_MS: u64 = 10;
const SWEEP_BUDGET: usize = 2048;

impl NatWorker {
    pub fn new(shared: &NatShared, w: u16) -> NatWorker {
        Self::with_tracking(shared, w, None)
    }

    /// The same, with a table that also tracks connections for the stateful filter.
    pub fn with_tracking(
        shared: &NatShared,
        w: u16,
        ct: Option<crate::conntrack::CtTableConfig>,
    ) -> NatWorker {
        let mut cfg = shared.table_config(w);
        cfg.ct = ct;
        NatWorker {
            table: NatTable::new(cfg),
            frags: frag::FragTable::default(),
            last_sweep_ms: 0,
            dump: Cursor::default(),
            seen: None,
        }
    }

    /// A `ctl nat show` or `flush` is under way (the worker should not sleep long).
    pub fn dumping(&self) -> bool {
        self.dump.busy()
    }

    /// The worker's housekeeping, once per loop iteration: expiry (a
    /// bounded slice of the table every 10 ms), gauges, and one slice of a
    /// dump or flush under way (at most `dump::SLICE` slots; one per ms at
    /// most when the worker is `behind` on traffic: `dump::Cursor::step`).
    pub fn service(&mut self, shared: &NatShared, w: u16, now_ms: u64, behind: bool) {
        let gauges = shared.gauges.get(usize::from(w));
        if now_ms.saturating_sub(self.last_sweep_ms) >= SWEEP_EVERY_MS {
            self.last_sweep_ms = now_ms;
            self.table.expire(now_ms, SWEEP_BUDGET);
            if let Some(g) = gauges {
                g.publish(&self.table);
            }
        }
        let Some(slot) = shared.dumps.slot(w) else {
            return;
        };
        let table = &mut self.table;
        self.dump
            .step(slot, table.session_slots(), behind, now_ms, |s, rows| {
                match s.mode {
                    Mode::Show => table.dump_slice(s.range.clone(), now_ms, rows),
                    Mode::Flush => table.flush_slice(s.range.clone()),
                }
                // Before the last chunk goes: the control thread reads the
                // gauges once it has it (after a flush: what is left).
                if let (true, Some(g)) = (s.last, gauges) {
                    g.publish(table);
                }
            });
    }
}

impl Gauges {
    fn publish(&self, t: &NatTable) {
        let (s, m) = t.counts();
        self.sessions.store(s, Ordering::Relaxed);
        self.mappings.store(m, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(workers: u16, forwards: Vec<Forward>) -> NatShared {
        let cfg = NatConfig {
            pool: vec![Ipv4Addr::new(198, 19, 1, 1), Ipv4Addr::new(198, 19, 1, 2)],
            forwards,
            ..Default::default()
        };
        NatShared::new(cfg, vec![Role::Inside, Role::Outside], workers)
    }

    #[test]
    fn pool_entries_and_forwards_parse() {
        assert_eq!(
            parse_pool_entry("198.19.1.1").unwrap(),
            vec![Ipv4Addr::new(198, 19, 1, 1)]
        );
        assert_eq!(parse_pool_entry("198.19.1.1-198.19.1.3").unwrap().len(), 3);
        assert_eq!(parse_pool_entry("198.19.2.0/30").unwrap().len(), 4);
        for bad in [
            "198.19.1.3-198.19.1.1",
            "198.19.2.1/30",
            "198.19.0.0/8",
            "nope",
            "198.18.0.0-198.19.255.255",
        ] {
            assert!(parse_pool_entry(bad).is_err(), "{bad}");
        }
        let f = parse_forward("tcp 198.19.1.1:8080 198.18.1.2:80").unwrap();
        assert_eq!((f.proto, f.outside.port, f.inside.port), (6, 8080, 80));
        for bad in [
            "icmp 1.2.3.4:1 5.6.7.8:2",
            "tcp 1.2.3.4:1",
            "udp 1.2.3.4:0 5.6.7.8:2",
            "tcp a:1 b:2",
        ] {
            assert!(parse_forward(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn outside_addresses_and_owners() {
        let fwd = Forward {
            proto: 6,
            outside: Ep::new(u32::from(Ipv4Addr::new(198, 19, 9, 9)), 80),
            inside: Ep::new(7, 8080),
        };
        let s = shared(2, vec![fwd]);
        assert!(s.is_outside_addr(u32::from(Ipv4Addr::new(198, 19, 1, 2))));
        assert!(
            s.is_outside_addr(u32::from(Ipv4Addr::new(198, 19, 9, 9))),
            "forward addresses too"
        );
        assert!(!s.is_outside_addr(u32::from(Ipv4Addr::new(198, 19, 1, 3))));
        assert_eq!(
            s.outside.len(),
            2,
            "adjacent pool addresses merge into one range"
        );
        assert_eq!(s.owner_of(40001), 1);
        assert_eq!(s.owner_inbound(6, fwd.outside), None, "static: any worker");
        let any = Ep::new(1, 1);
        assert_eq!(s.owner_outbound(0, 6, fwd.inside, any), None);
        assert_eq!(
            s.owner_outbound(0, 17, fwd.inside, any),
            Some(0),
            "another protocol is not the forward"
        );
        assert_eq!(
            (s.role(0), s.role(1), s.role(9)),
            (Role::Inside, Role::Outside, Role::None)
        );
        assert_eq!(
            s.table_config(1).max_per_host,
            2048,
            "the host limit is shared by the workers"
        );
    }
}
