//! One worker's load-balancer state: the connections it owns, the
//! schedulers' positions, and (full NAT) the NAT table that allocates the
//! source ports toward the backends.
//!
//! ```text
//!  fwd: (proto, client, vip)                    ─┐
//!                                                ├─► Conn { service, backend, snat, state, age }
//!  rev: (proto, backend, snat or client)        ─┘
//! ```
//!
//! A connection keeps the backend it was given while it lives (the pool may
//! change under it); it ages out with the NAT's timeouts and TCP states.

use std::sync::Arc;

use super::{BackendStats, LbShared, Mode, Scheduler, Service, Services};
use crate::conntrack::rewrite::PROTO_TCP;
use crate::conntrack::table::{in_flags, out_flags, tcp_seen, timeout_for, FlowKey};
use crate::conntrack::{Ep, NatTable, TableConfig};
use crate::hashing::FlowHashMap;

/// Why a packet to a VIP was not given a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbError {
    NoBackend,
    /// A TCP packet of an unknown connection that is not a SYN (non-maglev services).
    NoConn,
    /// No connection slot or no full-NAT source port.
    Exhausted,
    /// The connection's backend is down and the service resets such connections.
    BackendDown,
}

/// Where a packet to a VIP goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    pub backend: Ep,
    /// The source the backend sees (the client itself in dnat mode).
    pub source: Ep,
}

#[derive(Debug, Clone, Default)]
struct Conn {
    proto: u8,
    tcp: u8,
    service: u16,
    client: Ep,
    vip: Ep,
    backend: Ep,
    source: Ep,
    last_ms: u64,
    /// When the full-NAT source port's session was last refreshed.
    snat_ms: u64,
    stats: Option<Arc<BackendStats>>,
}

/// How often a connection refreshes its full-NAT source port's session: its
/// timeouts are the connection's, so once a second keeps them in step at a
/// second hash probe per second instead of per packet.
const SNAT_REFRESH_MS: u64 = 1000;

/// A scheduler's position for one service on this worker.
#[derive(Debug, Clone, Default)]
struct SchedState {
    next: usize,
    /// Smooth weighted round-robin: current weight per backend.
    current: Vec<i64>,
}

#[derive(Debug)]
pub struct LbWorker {
    me: u16,
    conns: crate::slab::Slab<Conn>,
    fwd: FlowHashMap<FlowKey, u32>,
    rev: FlowHashMap<FlowKey, u32>,
    /// Full-NAT source ports, allocated like the NAT's (this worker's partition).
    snat: NatTable,
    sched: Vec<SchedState>,
    /// The services snapshot the scheduler positions belong to.
    seen: usize,
    rng: u64,
    sweep: usize,
    last_sweep_ms: u64,
}

impl LbWorker {
    pub fn new(shared: &LbShared, me: u16) -> LbWorker {
        let max = shared.max_conns;
        let seed = crate::hashing::seeded();
        let snap = shared.services.load();
        let timeouts = snap
            .list
            .first()
            .map(|s| s.cfg.timeouts)
            .unwrap_or_default();
        let mut cfg = TableConfig::simple(shared.snat_addrs().to_vec(), max);
        cfg.worker = me;
        cfg.workers = shared.workers();
        cfg.steer = shared
            .return_rss()
            .map(|r| crate::conntrack::ReturnSteer { rss: r.clone() })
            .filter(|s| s.serves(me, shared.workers()));
        cfg.timeouts = timeouts;
        cfg.reserved = Some((
            super::health::PROBE_PORT_LO,
            super::health::PROBE_PORT_LO + super::health::PROBES as u16 - 1,
        ));
        LbWorker {
            me,
            conns: crate::slab::Slab::with_capacity(max as usize),
            fwd: FlowHashMap::with_capacity_and_hasher(max as usize, seed),
            rev: FlowHashMap::with_capacity_and_hasher(max as usize, seed),
            snat: NatTable::new(cfg),
            sched: Vec::new(),
            seen: 0,
            rng: 0x9e37_79b9_7f4a_7c15 ^ u64::from(me).wrapping_mul(0xbf58_476d_1ce4_e5b9),
            sweep: 0,
            last_sweep_ms: 0,
        }
    }

    /// Live connections.
    pub fn len(&self) -> u32 {
        self.conns.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// A packet from `client` to service `si` (VIP `vip`): the backend of its
    /// connection, or a new one from the scheduler. `bytes` is counted for the backend.
    #[allow(clippy::too_many_arguments)]
    pub fn to_backend(
        &mut self,
        snap: &Services,
        si: u16,
        client: Ep,
        vip: Ep,
        tcp_flags: u8,
        hash: u32,
        bytes: u64,
        now_ms: u64,
    ) -> Result<Assigned, LbError> {
        let Some(svc) = snap.list.get(usize::from(si)) else {
            return Err(LbError::NoBackend);
        };
        let proto = svc.cfg.proto;
        if let Some(&c) = self.fwd.get(&FlowKey::new(proto, client, vip)) {
            let conn = &mut self.conns[c as usize];
            if svc.cfg.down_policy == super::DownPolicy::Reset && !svc.is_up(conn.backend) {
                return Err(LbError::BackendDown);
            }
            conn.last_ms = now_ms;
            if proto == PROTO_TCP {
                conn.tcp |= out_flags(tcp_flags);
            }
            if let Some(s) = &conn.stats {
                s.bytes(self.me, bytes);
            }
            let a = Assigned {
                backend: conn.backend,
                source: conn.source,
            };
            if svc.cfg.mode == Mode::FullNat
                && (now_ms.wrapping_sub(conn.snat_ms) >= SNAT_REFRESH_MS || tcp_flags & 0x05 != 0)
            {
                // Keep the source port's session as fresh as the connection
                // (and its TCP state: FIN and RST always).
                conn.snat_ms = now_ms;
                let _ = self
                    .snat
                    .outbound(proto, client, a.backend, tcp_flags, now_ms);
            }
            return Ok(a);
        }
        let syn_only = tcp_flags & 0x12 == 0x02;
        if proto == PROTO_TCP && !syn_only && svc.cfg.scheduler != Scheduler::Maglev {
            return Err(LbError::NoConn);
        }
        if self.conns.is_full() {
            return Err(LbError::Exhausted);
        }
        let b = self.pick(snap, si, hash).ok_or(LbError::NoBackend)?;
        let backend = &svc.backends[b];
        let source = match svc.cfg.mode {
            Mode::Dnat => client,
            Mode::FullNat => self
                .snat
                .outbound(proto, client, backend.ep, tcp_flags, now_ms)
                .map_err(|_| LbError::Exhausted)?,
        };
        let tcp = if proto == PROTO_TCP {
            if syn_only {
                tcp_seen::SYN_OUT
            } else {
                tcp_seen::SYN_OUT | tcp_seen::SYN_IN | out_flags(tcp_flags)
            }
        } else {
            0
        };
        backend.stats.opened(self.me);
        backend.stats.bytes(self.me, bytes);
        let conn = Conn {
            proto,
            tcp,
            service: si,
            client,
            vip,
            backend: backend.ep,
            source,
            last_ms: now_ms,
            snat_ms: now_ms,
            stats: Some(backend.stats.clone()),
        };
        // Not full: checked above.
        let Some(idx) = self.conns.insert(conn) else {
            return Err(LbError::Exhausted);
        };
        self.fwd.insert(FlowKey::new(proto, client, vip), idx);
        self.rev
            .insert(FlowKey::new(proto, backend.ep, source), idx);
        Ok(Assigned {
            backend: backend.ep,
            source,
        })
    }

    /// A reply from `backend` to `to` (the full-NAT source or, in dnat mode,
    /// the client): (client, vip) to send it back from, if it is a connection's.
    pub fn from_backend(
        &mut self,
        proto: u8,
        backend: Ep,
        to: Ep,
        tcp_flags: u8,
        bytes: u64,
        now_ms: u64,
    ) -> Option<(Ep, Ep)> {
        let &c = self.rev.get(&FlowKey::new(proto, backend, to))?;
        let conn = &mut self.conns[c as usize];
        conn.last_ms = now_ms;
        if proto == PROTO_TCP {
            conn.tcp |= in_flags(tcp_flags);
        }
        if let Some(s) = &conn.stats {
            s.bytes(self.me, bytes);
        }
        let (client, vip) = (conn.client, conn.vip);
        if conn.source != client
            && (now_ms.wrapping_sub(conn.snat_ms) >= SNAT_REFRESH_MS || tcp_flags & 0x05 != 0)
        {
            conn.snat_ms = now_ms;
            let _ = self.snat.inbound(proto, backend, to, tcp_flags, now_ms);
        }
        Some((client, vip))
    }

    /// Picks a backend index of service `si` for a new connection.
    fn pick(&mut self, snap: &Services, si: u16, hash: u32) -> Option<usize> {
        let id = snap as *const Services as usize;
        if id != self.seen {
            // A new snapshot (pool changed): positions start over.
            self.seen = id;
            self.sched = vec![SchedState::default(); snap.list.len()];
        }
        let svc: &Service = snap.list.get(usize::from(si))?;
        if svc.up.is_empty() {
            return None;
        }
        let st = self.sched.get_mut(usize::from(si))?;
        let up = &svc.up;
        let i = match svc.cfg.scheduler {
            Scheduler::RoundRobin => {
                let i = up[st.next % up.len()];
                st.next = st.next.wrapping_add(1);
                i
            }
            Scheduler::Weighted => {
                if st.current.len() != svc.backends.len() {
                    st.current = vec![0; svc.backends.len()];
                }
                let total: i64 = up
                    .iter()
                    .map(|&b| i64::from(svc.backends[usize::from(b)].weight))
                    .sum();
                let mut best = up[0];
                for &b in up {
                    st.current[usize::from(b)] += i64::from(svc.backends[usize::from(b)].weight);
                    if st.current[usize::from(b)] > st.current[usize::from(best)] {
                        best = b;
                    }
                }
                st.current[usize::from(best)] -= total;
                best
            }
            Scheduler::Random => {
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                let total: u64 = up
                    .iter()
                    .map(|&b| u64::from(svc.backends[usize::from(b)].weight))
                    .sum();
                let mut r = self.rng % total.max(1);
                let mut chosen = up[0];
                for &b in up {
                    let w = u64::from(svc.backends[usize::from(b)].weight);
                    if r < w {
                        chosen = b;
                        break;
                    }
                    r -= w;
                }
                chosen
            }
            Scheduler::Maglev => *svc.maglev.get(hash as usize % svc.maglev.len().max(1))?,
        };
        Some(usize::from(i))
    }

    /// Housekeeping: expiry of idle connections (a bounded slice every 10 ms).
    pub fn service(&mut self, shared: &LbShared, _me: u16, now_ms: u64) {
        if now_ms.saturating_sub(self.last_sweep_ms) < 10 {
            return;
        }
        self.last_sweep_ms = now_ms;
        let snap = shared.services.load();
        self.expire(&snap, now_ms, 2048);
    }

    /// Expires idle connections, looking at up to `budget` slots.
    pub fn expire(&mut self, snap: &Services, now_ms: u64, budget: usize) -> usize {
        self.snat.expire(now_ms, budget);
        let mut gone = 0;
        for i in self.conns.sweep(&mut self.sweep, budget) {
            let Some(c) = self.conns.get(i) else { continue };
            let t = snap
                .list
                .get(usize::from(c.service))
                .map(|s| s.cfg.timeouts)
                .unwrap_or_default();
            if now_ms.saturating_sub(c.last_ms) >= timeout_for(&t, c.proto, c.tcp) {
                let Some(c) = self.conns.remove(i) else {
                    continue;
                };
                self.fwd.remove(&FlowKey::new(c.proto, c.client, c.vip));
                self.rev.remove(&FlowKey::new(c.proto, c.backend, c.source));
                if let Some(s) = &c.stats {
                    s.closed(self.me);
                }
                gone += 1;
            }
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::service;
    use super::super::{DownPolicy, LbShared};
    use super::*;
    use crate::conntrack::rewrite::PROTO_UDP;
    use std::net::Ipv4Addr;

    const VIP: u32 = 0xc613_0164;

    fn client(i: u32) -> Ep {
        Ep::new(
            u32::from(Ipv4Addr::new(198, 18, 1, 2)) + (i >> 12),
            1024 + (i & 4095) as u16,
        )
    }

    fn spread(lb: &LbShared, n: u32, flags: u8) -> Vec<usize> {
        let mut w = LbWorker::new(lb, 0);
        let snap = lb.services.load();
        let mut counts = vec![0; snap.list[0].backends.len()];
        for i in 0..n {
            let a = w
                .to_backend(
                    &snap,
                    0,
                    client(i),
                    Ep::new(VIP, 80),
                    flags,
                    i.wrapping_mul(2_654_435_761),
                    0,
                    0,
                )
                .unwrap();
            let b = snap.list[0]
                .backends
                .iter()
                .position(|b| b.ep == a.backend)
                .unwrap();
            counts[b] += 1;
        }
        counts
    }

    #[test]
    fn schedulers_follow_their_rules() {
        let pool = [
            ("198.19.2.11:80", 1),
            ("198.19.2.12:80", 2),
            ("198.19.2.13:80", 3),
        ];
        let rr = LbShared::new(&[service("s", Scheduler::RoundRobin, Mode::Dnat, &pool)], 1);
        assert_eq!(spread(&rr, 60, 0x02), vec![20, 20, 20]);
        let wrr = LbShared::new(&[service("s", Scheduler::Weighted, Mode::Dnat, &pool)], 1);
        assert_eq!(spread(&wrr, 60, 0x02), vec![10, 20, 30]);
        let rnd = LbShared::new(&[service("s", Scheduler::Random, Mode::Dnat, &pool)], 1);
        let c = spread(&rnd, 6000, 0x02);
        for (i, want) in [(0, 1000.0), (1, 2000.0), (2, 3000.0)] {
            assert!((c[i] as f64 / want - 1.0).abs() < 0.1, "{c:?}");
        }
        let mg = LbShared::new(&[service("s", Scheduler::Maglev, Mode::Dnat, &pool)], 1);
        let c = spread(&mg, 6000, 0x02);
        for (i, want) in [(0, 1000.0), (1, 2000.0), (2, 3000.0)] {
            assert!((c[i] as f64 / want - 1.0).abs() < 0.15, "{c:?}");
        }
    }

    #[test]
    fn a_connection_keeps_its_backend_while_the_pool_changes() {
        let lb = LbShared::new(
            &[service(
                "s",
                Scheduler::RoundRobin,
                Mode::FullNat,
                &[("198.19.2.11:80", 1), ("198.19.2.12:80", 1)],
            )],
            1,
        );
        let mut w = LbWorker::new(&lb, 0);
        let vip = Ep::new(VIP, 80);
        let snap = lb.services.load_full();
        let a = w
            .to_backend(&snap, 0, client(1), vip, 0x02, 0, 60, 0)
            .unwrap();
        assert_eq!(
            a.source.addr,
            u32::from(Ipv4Addr::new(198, 19, 2, 1)),
            "full NAT: the engine's source"
        );
        assert_eq!(
            a.source.port,
            client(1).port,
            "the client's port is kept when free"
        );
        // The reply maps back.
        assert_eq!(
            w.from_backend(PROTO_TCP, a.backend, a.source, 0x12, 60, 1),
            Some((client(1), vip))
        );
        assert_eq!(
            w.from_backend(PROTO_TCP, a.backend, Ep::new(a.source.addr, 9), 0x12, 60, 1),
            None
        );
        // Its backend goes down and another is added: the connection stays (policy keep).
        lb.change_backend("s", a.backend, "down", None).unwrap();
        lb.change_backend(
            "s",
            crate::lb::parse_backend("198.19.2.13:80").unwrap().ep,
            "add",
            None,
        )
        .unwrap();
        let snap = lb.services.load_full();
        assert_eq!(
            w.to_backend(&snap, 0, client(1), vip, 0x10, 0, 60, 2)
                .unwrap(),
            a
        );
        // New connections avoid it.
        for i in 2..20 {
            assert_ne!(
                w.to_backend(&snap, 0, client(i), vip, 0x02, 0, 0, 2)
                    .unwrap()
                    .backend,
                a.backend
            );
        }
        // A non-SYN of an unknown connection is refused (not maglev).
        assert_eq!(
            w.to_backend(&snap, 0, client(99), vip, 0x10, 0, 0, 2),
            Err(LbError::NoConn)
        );
        let (conns, active, bytes) = snap.list[0].backends[0].stats.totals();
        assert_eq!((conns, active, bytes), (1, 1, 180));
        // With policy reset its packets are refused.
        let lb2 = LbShared::new(
            &[{
                let mut s = service(
                    "s",
                    Scheduler::RoundRobin,
                    Mode::Dnat,
                    &[("198.19.2.11:80", 1), ("198.19.2.12:80", 1)],
                );
                s.down_policy = DownPolicy::Reset;
                s
            }],
            1,
        );
        let mut w2 = LbWorker::new(&lb2, 0);
        let a2 = w2
            .to_backend(&lb2.services.load(), 0, client(1), vip, 0x02, 0, 0, 0)
            .unwrap();
        lb2.change_backend("s", a2.backend, "down", None).unwrap();
        assert_eq!(
            w2.to_backend(&lb2.services.load(), 0, client(1), vip, 0x10, 0, 0, 1),
            Err(LbError::BackendDown)
        );
    }

    #[test]
    fn connections_expire_and_counters_follow() {
        let mut s = service(
            "s",
            Scheduler::Weighted,
            Mode::FullNat,
            &[("198.19.2.11:80", 1)],
        );
        s.proto = PROTO_UDP;
        s.timeouts.udp_ms = 100;
        let lb = LbShared::new(&[s], 1);
        let mut w = LbWorker::new(&lb, 0);
        let snap = lb.services.load_full();
        for i in 0..10 {
            w.to_backend(&snap, 0, client(i), Ep::new(VIP, 53), 0, 0, 0, 0)
                .unwrap();
        }
        assert_eq!(w.len(), 10);
        w.expire(&snap, 99, 100);
        assert_eq!(w.len(), 10);
        w.expire(&snap, 100, 100);
        assert!(w.is_empty());
        assert_eq!(
            snap.list[0].backends[0].stats.totals().1,
            0,
            "no active connection left"
        );
        assert_eq!(
            w.snat.counts(),
            (0, 0),
            "the source ports were released too"
        );
        let lb0 = LbShared::new(&[service("s", Scheduler::Maglev, Mode::Dnat, &[])], 1);
        let mut w0 = LbWorker::new(&lb0, 0);
        assert_eq!(
            w0.to_backend(
                &lb0.services.load(),
                0,
                client(1),
                Ep::new(VIP, 80),
                0x02,
                7,
                0,
                0
            ),
            Err(LbError::NoBackend)
        );
    }

    /// Full NAT with the NIC's RSS known: a connection's owner is the
    /// worker of the queue the NIC gives it, and the source port its owner
    /// chooses brings the backend's reply to the same worker's queue
    /// (without the model the port is only in the owner's partition).
    #[test]
    fn full_nat_source_ports_bring_replies_to_the_owner() {
        use crate::rss::{queue_worker, Rss};
        let rss = std::sync::Arc::new(
            Rss::new(
                crate::rss::MS_KEY.to_vec(),
                (0..128).map(|i| i % 2).collect(),
            )
            .unwrap(),
        );
        let svc = service(
            "s",
            Scheduler::RoundRobin,
            Mode::FullNat,
            &[("198.19.2.11:8080", 1)],
        );
        let vip = svc.vip;
        let snat = svc.snat;
        for told in [false, true] {
            let lb = LbShared::new(std::slice::from_ref(&svc), 2).with_rss(if told {
                vec![Some(rss.clone())]
            } else {
                vec![None]
            });
            let mut ws = [LbWorker::new(&lb, 0), LbWorker::new(&lb, 1)];
            let snap = lb.services.load();
            let mut aligned = 0;
            for i in 0..400 {
                let c = client(i);
                let owner = lb.owner_to_vip(0, PROTO_TCP, c, vip, Mode::FullNat);
                if told {
                    let q = rss.queue_v4(PROTO_TCP, c.addr, vip.addr, c.port, vip.port);
                    assert_eq!(owner, queue_worker(q, 2));
                } else {
                    assert_eq!(owner, lb.owner_of(c.port));
                }
                let a = ws[usize::from(owner)]
                    .to_backend(&snap, 0, c, vip, 0x02, i, 0, 0)
                    .unwrap();
                assert_eq!(a.source.addr, snat);
                assert_eq!(
                    lb.owner_of(a.source.port),
                    owner,
                    "the reply finds its owner"
                );
                let q = rss.queue_v4(
                    PROTO_TCP,
                    a.backend.addr,
                    snat,
                    a.backend.port,
                    a.source.port,
                );
                aligned += usize::from(queue_worker(q, 2) == owner);
            }
            if told {
                assert_eq!(aligned, 400, "every reply on its owner's queue");
            } else {
                assert!(aligned < 300, "by partition alone about half: {aligned}");
            }
        }
    }
}
