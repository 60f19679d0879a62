//! L4 load balancer: virtual services (VIP, protocol, port) in front of
//! pools of backends.
//!
//! - [`maglev`]: the consistent-hash lookup table.
//! - [`conn`]: one worker's connection table and schedulers.
//! - [`stage`]: the pipeline hooks (`ip4-input` for packets to a VIP or a
//!   full-NAT source address, `ip4-forward` for dnat-mode replies).
//!
//! Connection tracking shares the NAT's code: the flow keys and hasher, the
//! TCP state bits and timeouts (`conntrack::table`), and for full NAT the NAT
//! table itself, which allocates the source ports toward the backends.
//! Ownership follows the NAT's rule: a connection belongs to worker
//! `conntrack::port_owner(client port, workers)`, and its full-NAT source port is allocated in
//! that worker's partition, so replies name the same owner. When the RSS
//! of the client's port is known ([`crate::rss`]), a full-NAT connection
//! belongs instead to the worker whose queue the NIC gives it, and its
//! source port is also chosen so that the backend's replies arrive on that
//! worker's queue ([`LbShared::owner_to_vip`]). See
//! docs/ARCHITECTURE.md, "Load balancer" and "RSS-aware ownership".

pub mod announce;
pub mod config;
pub mod conn;
pub mod health;
pub mod maglev;
pub mod stage;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

pub use conn::LbWorker;

use crate::conntrack::{Ep, Timeouts};

/// How a service picks a backend for a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// Backends in turn, weights ignored.
    RoundRobin,
    /// Smooth weighted round-robin (nginx's): shares follow the weights, evenly interleaved.
    Weighted,
    /// A random backend, chosen with probability proportional to its weight.
    Random,
    /// Maglev consistent hashing on the 5-tuple (weights honoured).
    Maglev,
}

/// What is rewritten on the way to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Destination and source: backends see the engine's `snat` address and
    /// answer it, so replies come back through the engine wherever the backends are.
    FullNat,
    /// Destination only: backends see the client and must route their
    /// replies through the engine (their gateway).
    Dnat,
}

/// What happens to the connections of a backend that goes down or is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownPolicy {
    /// They go on to the backend (it may still serve them; a drain).
    Keep,
    /// Their packets are dropped (the clients reconnect to another backend).
    Reset,
}

/// One backend as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    pub ep: Ep,
    pub weight: u32,
    /// The operator's word (`ctl lb backend set ... up|down`).
    pub up: bool,
    /// The health check's word (true without a check).
    pub healthy: bool,
}

/// The active health check of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheck {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Failures in a row before a backend is down.
    pub fails: u32,
}

/// One `[[lb]]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub name: String,
    pub proto: u8,
    pub vip: Ep,
    pub scheduler: Scheduler,
    pub mode: Mode,
    /// Full NAT's source address toward the backends (an engine address).
    pub snat: u32,
    pub down_policy: DownPolicy,
    pub backends: Vec<BackendConfig>,
    pub timeouts: Timeouts,
    pub health: Option<HealthCheck>,
    /// Announce the VIP to a routing daemon while the service has a live
    /// backend (`announce`, default true; only with `[routing] announce_table`).
    pub announce: bool,
}

/// Parses a backend: `ADDR:PORT [weight N]`.
pub fn parse_backend(s: &str) -> Result<BackendConfig, String> {
    let bad = |why: &str| format!("backend `{s}`: {why} (expected `ADDR:PORT [weight N]`)");
    let w: Vec<&str> = s.split_whitespace().collect();
    let (ep, weight) = match w[..] {
        [ep] => (ep, 1),
        [ep, "weight", n] => (
            ep,
            n.parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| bad("weight must be 1..1000"))?,
        ),
        _ => return Err(bad("unexpected words")),
    };
    let sa: std::net::SocketAddrV4 = ep.parse().map_err(|_| bad("not ADDR:PORT"))?;
    if sa.port() == 0 {
        return Err(bad("port 0"));
    }
    Ok(BackendConfig {
        ep: Ep::new(u32::from(*sa.ip()), sa.port()),
        weight,
        up: true,
        healthy: true,
    })
}

/// Per-backend counters, one padded slot per worker (each worker writes its own).
#[derive(Debug)]
pub struct BackendStats {
    slots: Vec<StatSlot>,
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct StatSlot {
    conns: AtomicU64,
    active: AtomicU64,
    bytes: AtomicU64,
}

impl BackendStats {
    fn new(workers: u16) -> BackendStats {
        BackendStats {
            slots: (0..workers.max(1)).map(|_| StatSlot::default()).collect(),
        }
    }

    #[inline]
    fn slot(&self, w: u16) -> Option<&StatSlot> {
        self.slots.get(usize::from(w))
    }

    /// A connection was assigned (worker `w`).
    #[inline]
    pub fn opened(&self, w: u16) {
        if let Some(s) = self.slot(w) {
            s.conns
                .store(s.conns.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            s.active
                .store(s.active.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn closed(&self, w: u16) {
        if let Some(s) = self.slot(w) {
            s.active.store(
                s.active.load(Ordering::Relaxed).saturating_sub(1),
                Ordering::Relaxed,
            );
        }
    }

    #[inline]
    pub fn bytes(&self, w: u16, n: u64) {
        if let Some(s) = self.slot(w) {
            s.bytes
                .store(s.bytes.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        }
    }

    /// (connections, active, bytes) over all workers.
    pub fn totals(&self) -> (u64, u64, u64) {
        self.slots.iter().fold((0, 0, 0), |(c, a, b), s| {
            (
                c + s.conns.load(Ordering::Relaxed),
                a + s.active.load(Ordering::Relaxed),
                b + s.bytes.load(Ordering::Relaxed),
            )
        })
    }
}

/// A backend as the workers see it.
#[derive(Debug)]
pub struct Backend {
    pub ep: Ep,
    pub weight: u32,
    /// Takes new connections: up by the operator and healthy.
    pub up: bool,
    /// Down by its health check (not by the operator).
    pub unhealthy: bool,
    pub stats: Arc<BackendStats>,
}

/// A service as the workers see it: its backends and, for maglev, the table.
#[derive(Debug)]
pub struct Service {
    pub cfg: ServiceConfig,
    pub backends: Vec<Backend>,
    /// Indices of the backends that are up and have a weight.
    pub up: Vec<u16>,
    /// Maglev's table (indices into `backends`), empty for other schedulers.
    pub maglev: Vec<u16>,
}

impl Service {
    /// Whether `ep` is a backend of this service that is up.
    #[inline]
    pub fn is_up(&self, ep: Ep) -> bool {
        self.backends.iter().any(|b| b.ep == ep && b.up)
    }
}

/// Every service, published as one snapshot.
#[derive(Debug, Default)]
pub struct Services {
    pub list: Vec<Service>,
    /// Backend addresses of dnat-mode services (their replies are translated on the way out).
    dnat_backends: Vec<u32>,
}

impl Services {
    /// The service of (proto, VIP endpoint).
    #[inline]
    pub fn find(&self, proto: u8, vip: Ep) -> Option<(u16, &Service)> {
        self.list
            .iter()
            .enumerate()
            .find(|(_, s)| s.cfg.proto == proto && s.cfg.vip == vip)
            .map(|(i, s)| (i as u16, s))
    }

    #[inline]
    pub fn is_dnat_backend(&self, a: u32) -> bool {
        self.dnat_backends.contains(&a)
    }
}

/// What workers and the control thread share.
#[derive(Debug)]
pub struct LbShared {
    pub services: ArcSwap<Services>,
    /// The configuration the snapshot was built from; only the control thread changes it.
    config: Mutex<Vec<ServiceConfig>>,
    /// VIP addresses and full-NAT source addresses (fixed at start).
    vips: Vec<u32>,
    snats: Vec<u32>,
    has_dnat: bool,
    workers: u16,
    /// Connections per worker at most.
    pub max_conns: u32,
    /// Health-check probe slots (data plane side).
    pub health: health::Health,
    /// Health-check state per (service, backend) (control thread only).
    checks: Mutex<Vec<CheckState>>,
    /// Announced VIP addresses and whether each is announced now (control
    /// thread only; empty when nothing is announced): `ctl lb show`, metrics.
    announced: Mutex<Vec<(u32, bool)>>,
    /// Each port's RSS model (None: not known).
    rss: Vec<Option<Arc<crate::rss::Rss>>>,
}

#[derive(Debug, Clone)]
struct CheckState {
    service: String,
    ep: Ep,
    slot: u16,
    fails: u32,
    sent_ms: Option<u64>,
    next_ms: u64,
}

/// Connections a worker tracks at most.
pub const MAX_CONNS: u32 = 262_144;

impl LbShared {
    pub fn new(services: &[ServiceConfig], workers: u16) -> LbShared {
        let mut vips: Vec<u32> = services.iter().map(|s| s.vip.addr).collect();
        vips.sort_unstable();
        vips.dedup();
        let mut snats: Vec<u32> = services
            .iter()
            .filter(|s| s.mode == Mode::FullNat)
            .map(|s| s.snat)
            .collect();
        snats.sort_unstable();
        snats.dedup();
        let lb = LbShared {
            services: ArcSwap::from_pointee(Services::default()),
            config: Mutex::new(services.to_vec()),
            has_dnat: services.iter().any(|s| s.mode == Mode::Dnat),
            vips,
            snats,
            workers: workers.max(1),
            max_conns: MAX_CONNS,
            health: health::Health::default(),
            checks: Mutex::new(Vec::new()),
            announced: Mutex::new(Vec::new()),
            rss: Vec::new(),
        };
        lb.publish(services, None);
        lb
    }

    /// Sets each port's RSS model (by port index).
    pub fn with_rss(mut self, rss: Vec<Option<Arc<crate::rss::Rss>>>) -> LbShared {
        self.rss = rss;
        self
    }

    /// The model full-NAT source ports are steered by: the first port's
    /// that has one (backends' replies arrive on some port of the engine;
    /// ports with different NICs: see docs/ARCHITECTURE.md).
    pub fn return_rss(&self) -> Option<&Arc<crate::rss::Rss>> {
        self.rss.iter().flatten().next()
    }

    /// The owner of a connection from `client` to `vip` arriving on `port`:
    /// for a full-NAT service on a port with known RSS, the worker of the
    /// queue the NIC gives it (its replies come back to the source port that
    /// worker chose); else the hash of the client port (dnat-mode replies
    /// carry only that port to find the owner by).
    #[inline]
    pub fn owner_to_vip(&self, port: u16, proto: u8, client: Ep, vip: Ep, mode: Mode) -> u16 {
        match self.rss.get(usize::from(port)).and_then(|r| r.as_deref()) {
            Some(r) if mode == Mode::FullNat => crate::rss::queue_worker(
                r.queue_v4(proto, client.addr, vip.addr, client.port, vip.port),
                self.workers,
            ),
            _ => self.owner_of(client.port),
        }
    }

    pub fn workers(&self) -> u16 {
        self.workers
    }

    #[inline]
    pub fn is_vip(&self, a: u32) -> bool {
        self.vips.contains(&a)
    }

    #[inline]
    pub fn is_snat(&self, a: u32) -> bool {
        self.snats.contains(&a)
    }

    pub fn snat_addrs(&self) -> &[u32] {
        &self.snats
    }

    #[inline]
    pub fn has_dnat(&self) -> bool {
        self.has_dnat
    }

    /// Whether `a` is a VIP (the engine answers ARP for it).
    pub fn answers_arp(&self, a: Ipv4Addr) -> bool {
        self.is_vip(u32::from(a))
    }

    /// The worker owning connections from client port (or full-NAT source port) `port`.
    #[inline]
    pub fn owner_of(&self, port: u16) -> u16 {
        crate::conntrack::port_owner(port, self.workers)
    }

    /// Builds and publishes the snapshot for `cfg`, keeping the counters of
    /// backends that stay (by service name and endpoint).
    fn publish(&self, cfg: &[ServiceConfig], old: Option<&Services>) {
        let mut list = Vec::with_capacity(cfg.len());
        let mut dnat_backends = Vec::new();
        for sc in cfg {
            let prev = old.and_then(|o| o.list.iter().find(|s| s.cfg.name == sc.name));
            let backends: Vec<Backend> = sc
                .backends
                .iter()
                .map(|b| Backend {
                    ep: b.ep,
                    weight: b.weight,
                    up: b.up && b.healthy,
                    unhealthy: !b.healthy,
                    stats: prev
                        .and_then(|p| p.backends.iter().find(|o| o.ep == b.ep))
                        .map_or_else(
                            || Arc::new(BackendStats::new(self.workers)),
                            |o| o.stats.clone(),
                        ),
                })
                .collect();
            let up: Vec<u16> = (0..backends.len())
                .filter(|&i| backends[i].up && backends[i].weight > 0)
                .map(|i| i as u16)
                .collect();
            let maglev = if sc.scheduler == Scheduler::Maglev {
                let named: Vec<(Vec<u8>, u32)> = backends
                    .iter()
                    .map(|b| {
                        (
                            b.ep.to_string().into_bytes(),
                            if b.up { b.weight } else { 0 },
                        )
                    })
                    .collect();
                maglev::build(&named)
            } else {
                Vec::new()
            };
            if sc.mode == Mode::Dnat {
                dnat_backends.extend(backends.iter().map(|b| b.ep.addr));
            }
            list.push(Service {
                cfg: sc.clone(),
                backends,
                up,
                maglev,
            });
        }
        dnat_backends.sort_unstable();
        dnat_backends.dedup();
        self.services.store(Arc::new(Services {
            list,
            dnat_backends,
        }));
    }

    /// `ctl lb backend ...`: changes one service's pool and republishes.
    /// `action`: `up`, `down`, `add` (with `weight`), `del`.
    pub fn change_backend(
        &self,
        service: &str,
        ep: Ep,
        action: &str,
        weight: Option<u32>,
    ) -> Result<String, String> {
        let mut cfg = self
            .config
            .lock()
            .map_err(|_| "lb configuration lock poisoned".to_string())?;
        let s = cfg
            .iter_mut()
            .find(|s| s.name == service)
            .ok_or_else(|| format!("no service `{service}`"))?;
        let pos = s.backends.iter().position(|b| b.ep == ep);
        let msg = match (action, pos) {
            ("up" | "down", Some(i)) => {
                s.backends[i].up = action == "up";
                if let Some(w) = weight {
                    s.backends[i].weight = w;
                }
                format!("{service}: backend {ep} {action}")
            }
            ("add", None) => {
                s.backends.push(BackendConfig {
                    ep,
                    weight: weight.unwrap_or(1),
                    up: true,
                    healthy: true,
                });
                format!("{service}: backend {ep} added")
            }
            ("add", Some(_)) => return Err(format!("{service}: backend {ep} exists")),
            ("del", Some(i)) => {
                s.backends.remove(i);
                format!("{service}: backend {ep} removed")
            }
            (_, None) => return Err(format!("{service}: no backend {ep}")),
            (other, _) => return Err(format!("unknown action `{other}` (up, down, add, del)")),
        };
        let old = self.services.load_full();
        self.publish(&cfg, Some(&old));
        Ok(msg)
    }

    /// Records whether VIP address `addr` is announced now.
    pub fn set_announced(&self, addr: u32, on: bool) {
        let mut v = self.announced.lock().unwrap_or_else(|e| e.into_inner());
        match v.iter_mut().find(|(a, _)| *a == addr) {
            Some(e) => e.1 = on,
            None => v.push((addr, on)),
        }
    }

    /// Whether the VIP of service `s` is announced now (None: it is not
    /// announced at all, by configuration).
    pub fn announced(&self, s: &ServiceConfig) -> Option<bool> {
        if !s.announce {
            return None;
        }
        let v = self.announced.lock().unwrap_or_else(|e| e.into_inner());
        v.iter().find(|(a, _)| *a == s.vip.addr).map(|e| e.1)
    }

    /// Whether any service checks its backends (their probe ports are then reserved).
    pub fn has_health_checks(&self) -> bool {
        self.config
            .lock()
            .is_ok_and(|c| c.iter().any(|s| s.health.is_some()))
    }

    /// Control thread, every few hundred ms: collects probe answers, marks
    /// backends healthy or not (republishing on a change), sends due probes.
    pub fn health_tick(&self, now_ms: u64) {
        let (Ok(mut cfg), Ok(mut checks)) = (self.config.lock(), self.checks.lock()) else {
            return;
        };
        let mut changed = false;
        let mut next_slot = checks.iter().map(|c| c.slot + 1).max().unwrap_or(0);
        for s in cfg.iter_mut() {
            let Some(hc) = s.health else { continue };
            for b in s.backends.iter_mut() {
                let pos = match checks
                    .iter()
                    .position(|c| c.service == s.name && c.ep == b.ep)
                {
                    Some(p) => p,
                    None if usize::from(next_slot) < health::PROBES => {
                        checks.push(CheckState {
                            service: s.name.clone(),
                            ep: b.ep,
                            slot: next_slot,
                            fails: 0,
                            sent_ms: None,
                            next_ms: now_ms,
                        });
                        next_slot += 1;
                        checks.len() - 1
                    }
                    None => continue,
                };
                let c = &mut checks[pos];
                if let Some(sent) = c.sent_ms {
                    let ok = match self.health.outcome(c.slot) {
                        health::Outcome::Up => Some(true),
                        health::Outcome::Refused => Some(false),
                        health::Outcome::Waiting
                            if now_ms.saturating_sub(sent) >= hc.timeout_ms =>
                        {
                            Some(false)
                        }
                        health::Outcome::Waiting => None,
                    };
                    if let Some(ok) = ok {
                        self.health.reset(c.slot);
                        c.sent_ms = None;
                        c.next_ms = sent + hc.interval_ms;
                        c.fails = if ok { 0 } else { c.fails + 1 };
                        let healthy = ok || (b.healthy && c.fails < hc.fails);
                        if healthy != b.healthy {
                            b.healthy = healthy;
                            changed = true;
                            tracing::warn!(
                                "lb {}: backend {} {} by its health check",
                                s.name,
                                b.ep,
                                if healthy { "up" } else { "down" }
                            );
                        }
                    }
                }
                if c.sent_ms.is_none() && now_ms >= c.next_ms {
                    let seq =
                        (now_ms as u32).wrapping_mul(2_654_435_761) ^ (u32::from(c.slot) << 20);
                    if self.health.start(c.slot, b.ep, seq) {
                        c.sent_ms = Some(now_ms);
                    }
                }
            }
        }
        // Backends removed from their service: forget their checks.
        checks.retain(|c| {
            cfg.iter().any(|s| {
                s.name == c.service && s.health.is_some() && s.backends.iter().any(|b| b.ep == c.ep)
            })
        });
        if changed {
            let old = self.services.load_full();
            self.publish(&cfg, Some(&old));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::rewrite::PROTO_TCP;

    pub(crate) fn service(
        name: &str,
        sched: Scheduler,
        mode: Mode,
        backends: &[(&str, u32)],
    ) -> ServiceConfig {
        ServiceConfig {
            name: name.into(),
            proto: PROTO_TCP,
            vip: Ep::new(u32::from(Ipv4Addr::new(198, 19, 1, 100)), 80),
            scheduler: sched,
            mode,
            snat: u32::from(Ipv4Addr::new(198, 19, 2, 1)),
            down_policy: DownPolicy::Keep,
            backends: backends
                .iter()
                .map(|(b, w)| BackendConfig {
                    ep: parse_backend(b).unwrap().ep,
                    weight: *w,
                    up: true,
                    healthy: true,
                })
                .collect(),
            timeouts: Timeouts::default(),
            health: None,
            announce: true,
        }
    }

    #[test]
    fn backends_parse() {
        let b = parse_backend("198.19.2.11:8000 weight 3").unwrap();
        assert_eq!((b.ep.port, b.weight, b.up), (8000, 3, true));
        assert_eq!(parse_backend("198.19.2.11:8000").unwrap().weight, 1);
        for bad in [
            "198.19.2.11",
            "198.19.2.11:0",
            "198.19.2.11:80 weight 0",
            "198.19.2.11:80 w 2",
            "x:1",
        ] {
            assert!(parse_backend(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pool_changes_republish_and_keep_counters() {
        let lb = LbShared::new(
            &[service(
                "web",
                Scheduler::Maglev,
                Mode::FullNat,
                &[("198.19.2.11:80", 1), ("198.19.2.12:80", 1)],
            )],
            2,
        );
        let s = lb.services.load_full();
        let (_, web) = s
            .find(
                PROTO_TCP,
                Ep::new(u32::from(Ipv4Addr::new(198, 19, 1, 100)), 80),
            )
            .unwrap();
        assert_eq!(web.maglev.len(), maglev::M);
        web.backends[0].stats.opened(1);
        let a = parse_backend("198.19.2.11:80").unwrap().ep;
        lb.change_backend("web", a, "down", None).unwrap();
        let s2 = lb.services.load_full();
        let web2 = &s2.list[0];
        assert!(!web2.is_up(a));
        assert_eq!(web2.up, vec![1]);
        assert!(
            web2.maglev.iter().all(|&i| i == 1),
            "a down backend has no slot"
        );
        assert_eq!(
            web2.backends[0].stats.totals(),
            (1, 1, 0),
            "counters survive the republish"
        );
        let c = parse_backend("198.19.2.13:80").unwrap().ep;
        lb.change_backend("web", c, "add", Some(2)).unwrap();
        assert_eq!(lb.services.load().list[0].backends.len(), 3);
        assert!(lb.change_backend("web", c, "add", None).is_err());
        lb.change_backend("web", a, "del", None).unwrap();
        assert!(lb.change_backend("web", a, "up", None).is_err());
        assert!(lb.change_backend("nope", a, "up", None).is_err());
        // (`ctl lb show`'s rows of this: `control::records::lb`.)
        let s3 = lb.services.load_full();
        assert_eq!(s3.list[0].cfg.scheduler, Scheduler::Maglev);
        assert!(s3.list[0]
            .backends
            .iter()
            .any(|b| b.ep == c && b.weight == 2 && b.up && b.stats.totals() == (0, 0, 0)));
    }
}
