//! A worker: one thread, pinned to one core, run to completion over its
//! sockets (one per port and queue it serves, all on one UMEM).
//!
//! One loop iteration:
//!
//! ```text
//! load the route and neighbor snapshots (arc-swap, no lock)
//! unless a TX backlog is over its bound (then no RX, no handoffs: back-pressure):
//! for each socket: RX burst (≤ 64) ─► [impair rx] ─► pipeline ─► per-port TX queues
//! [impair rx: held frames due]
//! flush TX: per port the held backlog, then the new queue ([impair tx]), one burst; frames the
//!   ring did not take are held for the next loop (context::txq)
//! neighbors: flush queues whose neighbor resolved, re-solicit, give up
//! for each socket: reclaim completions, refill the fill ring, wake the kernel if it asked
//! publish counters if anything changed
//! idle? busy-poll: spin.  adaptive: after a few empty loops, poll() the sockets with a timeout
//! ```
//!
//! Nothing in the loop allocates (captures and traces, both off unless
//! asked for, copy frames for the control thread) and nothing locks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;
use serde::Deserialize;

use super::pipeline::{self, Features, Scratch, Stages};
use super::tables::Tables;
use crate::context::capture;
use crate::context::counters::{Drop, LocalCounters, SharedCounters, Stage, MAX_PORTS};
use crate::context::events::EventSink;
use crate::context::handoff::{Handoff, HANDED};
use crate::context::neigh_frames;
use crate::context::ratelimit::IcmpRateLimiter;
use crate::context::{service_neighbors, Ctx, TxQueues, WorkerState};
use crate::impair::{ImpairWorker, MAX_HOLD_NS};
use crate::neighbor::{NeighborKey, PendingQueues};
use crate::xsk::{wait_any, Desc, Port, Umem, BURST};

/// Empty loops before an adaptive worker sleeps in poll().
const SPINS_BEFORE_SLEEP: u32 = 256;
/// Neighbors a worker can wait for at once, and packets per neighbor.
pub const PENDING_NEIGHBORS: usize = 64;
pub const PENDING_PER_NEIGHBOR: usize = 16;

/// How workers wait for frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PollMode {
    /// Spin on the rings: lowest latency, one full core per worker (benchmarks).
    Busy,
    /// Spin while there is traffic, `poll()` with a timeout when idle, so an
    /// idle engine costs close to no CPU.
    #[default]
    Adaptive,
}

/// A socket the worker drives and the port it belongs to.
#[derive(Debug)]
pub struct Socket<P> {
    pub port: u16,
    pub io: P,
}

/// How a worker behaves.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    pub id: u16,
    pub poll: PollMode,
    pub idle_timeout: Duration,
}

pub struct Worker<P: Port> {
    cfg: WorkerConfig,
    umem: Umem,
    sockets: Vec<Socket<P>>,
    /// For each port, the socket that transmits for it (None: this worker has no socket there).
    tx_socket: Vec<Option<usize>>,
    tables: Arc<Tables>,
    shared: Arc<SharedCounters>,
    st: WorkerState,
    /// Each feature's per-worker state (NAT table, LB connections, TCP endpoint).
    features: Features,
    scratch: Box<Scratch>,
    descs: [Desc; BURST],
    fds: Vec<std::os::fd::RawFd>,
    neigh_seen: usize,
    start: Instant,
    /// The start of the previous iteration, if it found work (busy time).
    busy_since: Option<u64>,
    spins: u32,
    probes: Option<Receiver<NeighborKey>>,
    /// The `[impair]` test stage (None: off; one check per burst).
    impair: Option<Box<ImpairWorker>>,
    /// When the sockets' XDP_STATISTICS are read next (ms).
    xdp_due_ms: u64,
}

/// How often a worker reads its sockets' XDP_STATISTICS (one getsockopt
/// each) for `ctl stats`. The worker reads them itself: the kernel takes
/// the socket's mutex for it, which the worker's TX kick takes too, so a
/// reader on another thread could hold the worker up.
const XDP_STATS_EVERY_MS: u64 = 100;

impl<P: Port> std::fmt::Debug for Worker<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.cfg.id)
            .field("sockets", &self.sockets.len())
            .finish()
    }
}

impl<P: Port> Worker<P> {
    pub fn new(
        cfg: WorkerConfig,
        umem: Umem,
        sockets: Vec<Socket<P>>,
        tables: Arc<Tables>,
        shared: Arc<SharedCounters>,
        events: EventSink,
    ) -> Self {
        let nports = tables.ifs.ports.len();
        let mut tx_socket = vec![None; nports];
        for (i, s) in sockets.iter().enumerate() {
            if let Some(slot) = tx_socket.get_mut(usize::from(s.port)) {
                slot.get_or_insert(i);
            }
        }
        let mut fds: Vec<std::os::fd::RawFd> =
            sockets.iter().filter_map(|s| s.io.poll_fd()).collect();
        // Frames other workers hand over wake a sleeping worker through this.
        if let Some(fd) = tables.handoff.as_ref().and_then(|h| h.wake_fd(cfg.id)) {
            fds.push(fd);
        }
        let features = Features::new(&tables, cfg.id);
        let icmp_limit = IcmpRateLimiter::with_limits(tables.icmp);
        let impair = tables
            .impair
            .as_ref()
            .map(|c| Box::new(ImpairWorker::new(c, &tables.ifs, cfg.id)));
        Worker {
            cfg,
            umem,
            sockets,
            tx_socket,
            tables,
            shared,
            st: WorkerState {
                worker: cfg.id,
                counters: LocalCounters::default(),
                tx: TxQueues::new(nports),
                pending: PendingQueues::new(PENDING_NEIGHBORS, PENDING_PER_NEIGHBOR),
                icmp_limit,
                events,
                bvi: Default::default(),
            },
            features,
            scratch: Box::default(),
            descs: [Desc::default(); BURST],
            fds,
            neigh_seen: 0,
            start: Instant::now(),
            busy_since: None,
            spins: 0,
            probes: None,
            impair,
            xdp_due_ms: 0,
        }
        .with_shared_clock()
    }

    /// Times are on the tables' clock, shared by all workers: the MAC table
    /// compares times stamped by different workers.
    fn with_shared_clock(mut self) -> Self {
        self.start = self.tables.epoch;
        self
    }

    /// The worker's UMEM (tests inspect its ledger).
    pub fn umem(&mut self) -> &mut Umem {
        &mut self.umem
    }

    pub fn sockets(&mut self) -> &mut [Socket<P>] {
        &mut self.sockets
    }

    /// The UMEM and the sockets at once (tests drive the wire side of in-memory ports).
    pub fn split(&mut self) -> (&mut Umem, &mut [Socket<P>]) {
        (&mut self.umem, &mut self.sockets)
    }

    /// The TX queues and backlogs (tests).
    #[cfg(test)]
    pub(crate) fn tx_queues(&mut self) -> &mut TxQueues {
        &mut self.st.tx
    }

    /// The NAT table's (sessions, dynamic mappings), if NAT is on (tests, fuzzing).
    pub fn nat_counts(&self) -> Option<(u32, u32)> {
        self.features.nat.as_ref().map(|n| n.table.counts())
    }

    /// Entries of the connection table the stateful filter tracks in (the
    /// NAT's or its own), if it has one (tests, fuzzing).
    pub fn ct_entries(&self) -> Option<u32> {
        let f = &self.features;
        f.ct.as_ref()?;
        f.nat.as_ref().map(|n| n.table.entries()).or_else(|| {
            f.ct.as_ref()
                .and_then(|c| c.own.as_ref())
                .map(|t| t.entries())
        })
    }

    /// The TCP endpoint's live connections (fuzz targets and tests check its limits).
    pub fn tcp_conns(&self) -> Option<usize> {
        self.features.tcp.as_ref().map(|t| t.tw.len())
    }

    /// Neighbors the control thread wants refreshed (stale entries) arrive here.
    pub fn set_probes(&mut self, rx: Receiver<NeighborKey>) {
        self.probes = Some(rx);
    }

    /// Announces the engine's addresses: a gratuitous ARP per IPv4 address
    /// and an unsolicited neighbor advertisement per IPv6 address (and the
    /// link-local one) on every port this worker transmits on, so peers
    /// update caches that may hold an old MAC.
    pub fn announce(&mut self) {
        let ifs = self.tables.ifs.clone();
        for p in &ifs.ports {
            if self
                .tx_socket
                .get(usize::from(p.index))
                .copied()
                .flatten()
                .is_none()
            {
                continue;
            }
            let v6 =
                p.v6.iter()
                    .map(|&(a, _)| a)
                    .chain(std::iter::once(p.link_local()));
            let frames =
                p.v4.iter()
                    .map(|&(a, _)| (Some(a), None))
                    .chain(v6.map(|a| (None, Some(a))));
            for (v4, v6) in frames {
                let Some(mut d) = self.umem.alloc() else {
                    break;
                };
                let buf = self.umem.buf_mut(&d);
                let n = match (v4, v6) {
                    (Some(a), _) => neigh_frames::gratuitous_arp(buf, p.mac, a),
                    (_, Some(a)) => neigh_frames::unsolicited_na(buf, p.mac, a),
                    _ => None,
                };
                match n {
                    Some(n) => {
                        d.len = n as u32;
                        if let Err(d) = self.st.tx.push(p.index, d) {
                            self.umem.free(d);
                        }
                    }
                    None => self.umem.free(d),
                }
            }
        }
        self.flush_tx(self.start.elapsed().as_nanos() as u64);
    }

    /// Fills every fill ring before the first packet.
    pub fn prime(&mut self) {
        for s in &mut self.sockets {
            s.io.refill(&mut self.umem, usize::MAX);
        }
    }

    /// One loop iteration; returns how many frames it received.
    pub fn poll_once(&mut self) -> usize {
        let now_ns = self.start.elapsed().as_nanos() as u64;
        // The previous iteration found work: the time from its start to this one's was busy.
        if let Some(t) = self.busy_since.take() {
            self.st.counters.busy(now_ns.saturating_sub(t));
        }
        let routes = self.tables.routes.load();
        let neigh = self.tables.neigh.load();
        let filter = self.tables.filter.load();
        let neigh_id = Arc::as_ptr(&neigh) as usize;
        let neigh_changed = neigh_id != self.neigh_seen;
        self.neigh_seen = neigh_id;
        let trace = self.tables.trace.load(Ordering::Relaxed);
        let mut got = 0;
        // A full RX burst on some socket: frames wait in its ring.
        let mut behind = false;
        {
            let tables: &Tables = &self.tables;
            let mut ctx = Ctx {
                umem: &mut self.umem,
                st: &mut self.st,
                ifs: &tables.ifs,
                routes: &routes,
                neigh: &neigh,
                tables: &tables.shared,
                now_ns,
                trace,
                rx_port: 0,
                handoff: 0,
            };
            let mut stages = Stages {
                tables,
                filter: &filter,
                features: &mut self.features,
                scratch: &mut self.scratch,
            };
            let mut run = |ctx: &mut Ctx, port: u16, descs: &[Desc]| {
                pipeline::process_burst(ctx, &mut stages, port, descs)
            };
            // A port's TX backlog over its bound: take no RX (sockets, handed
            // frames) until it drains, so the RX rings and the kernel push back.
            let paused = ctx.st.tx.over();
            if paused {
                ctx.st.counters.stage(Stage::RxPaused, 1);
            }
            for s in self.sockets.iter_mut().filter(|_| !paused) {
                let n = s.io.recv(ctx.umem, &mut self.descs);
                if n == 0 {
                    continue;
                }
                got += n;
                behind |= n == BURST;
                match self.impair.as_deref_mut() {
                    None => run(&mut ctx, s.port, &self.descs[..n]),
                    Some(imp) => imp.rx(&mut ctx, s.port, &self.descs[..n], &mut run),
                }
            }
            if let Some(imp) = self.impair.as_deref_mut() {
                imp.rx_due(&mut ctx, &mut run);
            }
            if let Some(h) = tables.handoff.as_deref().filter(|_| !paused) {
                got += take_handoffs(&mut ctx, h, &mut run);
            }
            let now_ms = now_ns / 1_000_000;
            if let (Some(nat), Some(w)) = (tables.nat.as_deref(), self.features.nat.as_mut()) {
                w.service(nat, self.cfg.id, now_ms, behind);
            }
            if let (Some(ct), Some(w)) = (tables.ct.as_deref(), self.features.ct.as_mut()) {
                w.service(
                    ct,
                    self.features.nat.as_mut().map(|n| &mut n.table),
                    self.cfg.id,
                    now_ms,
                    behind,
                );
            }
            if let (Some(shared), Some(t)) = (tables.tcp.as_deref(), self.features.tcp.as_mut()) {
                crate::tcp::endpoint::service(&mut ctx, t, shared, behind);
            }
            if let (Some(lb), Some(w)) = (tables.lb.as_deref(), self.features.lb.as_mut()) {
                w.service(lb, self.cfg.id, now_ms);
            }
            if let Some(p) = &self.probes {
                while let Ok(key) = p.try_recv() {
                    ctx.solicit(key);
                }
                // Worker 0 (the one with the probe channel) also sends the LB's health probes.
                if let Some(lb) = tables.lb.as_deref() {
                    while let Some((target, sport, seq)) = lb.health.next() {
                        crate::lb::stage::send_probe(&mut ctx, target, sport, seq);
                    }
                }
            }
            service_neighbors(&mut ctx, neigh_changed);
            if !ctx.st.bvi.is_empty() {
                // Frames between bridges and their routed interfaces, queued by all of the above.
                let mut stages = Stages {
                    tables,
                    filter: &filter,
                    features: &mut self.features,
                    scratch: &mut self.scratch,
                };
                pipeline::run_bvi(&mut ctx, &mut stages);
            }
        }
        self.flush_tx(now_ns);
        for s in self.sockets.iter_mut() {
            s.io.reclaim(&mut self.umem, usize::MAX);
            s.io.refill(&mut self.umem, usize::MAX);
            s.io.wake();
        }
        let c = &mut self.st.counters;
        c.loops += 1;
        if got == 0 {
            c.idle_loops += 1;
        } else {
            self.busy_since = Some(now_ns);
        }
        if c.is_dirty() {
            self.shared.set_frames(&self.umem.counts());
        }
        c.publish(&self.shared);
        if now_ns / 1_000_000 >= self.xdp_due_ms {
            self.xdp_due_ms = now_ns / 1_000_000 + XDP_STATS_EVERY_MS;
            self.publish_xdp();
            // The loop counter is also a heartbeat (the VIP announcer's check that
            // workers run): published at least this often, also by an idle busy-poller.
            self.st.counters.touch();
        }
        got
    }

    /// Each port's XDP_STATISTICS, summed over this worker's sockets on it.
    fn publish_xdp(&self) {
        let mut sum = [crate::xsk::XdpStatistics::default(); MAX_PORTS];
        for s in &self.sockets {
            if let Some(t) = sum.get_mut(usize::from(s.port)) {
                let x = s.io.stats().xdp;
                t.rx_dropped += x.rx_dropped;
                t.rx_invalid_descs += x.rx_invalid_descs;
                t.rx_ring_full += x.rx_ring_full;
                t.rx_fill_ring_empty_descs += x.rx_fill_ring_empty_descs;
                t.tx_invalid_descs += x.tx_invalid_descs;
                t.tx_ring_empty_descs += x.tx_ring_empty_descs;
            }
        }
        for (port, x) in sum.iter().enumerate().take(self.tables.ifs.ports.len()) {
            self.shared.set_xdp(port, x);
        }
    }

    /// Sends every port's frames, a burst per port: what its ring held back
    /// from earlier loops first, then this loop's queue (through the
    /// impairment stage when it is on: `now_ns` releases frames it held).
    /// What a ring does not take is held for the next loop
    /// (`context::txq`).
    fn flush_tx(&mut self, now_ns: u64) {
        for port in 0..self.st.tx.ports() {
            let TxQueues { new, back } = &mut self.st.tx;
            let q = new.get(port).map_or(&[][..], |q| q.as_slice());
            let fresh = match self.impair.as_deref_mut() {
                None => q,
                Some(imp) => imp.tx(port, q, now_ns, &mut self.umem, &mut self.st.counters),
            };
            if fresh.is_empty() && back.held(port) == 0 {
                // The stage may have dropped or held every queued frame.
                self.st.tx.clear(port);
                continue;
            }
            self.st.counters.stage(Stage::Tx, fresh.len() as u64);
            let Some(i) = self.tx_socket.get(port).copied().flatten() else {
                back.give_up(port, fresh, &mut self.st.counters, &mut self.umem);
                self.st.tx.clear(port);
                continue;
            };
            let batch = back.batch(port, fresh, &mut self.st.counters, &mut self.umem);
            let sent = self.sockets[i].io.send(&mut self.umem, batch);
            let bytes: u64 = batch[..sent].iter().map(|d| u64::from(d.len)).sum();
            self.st.counters.tx(port, sent as u64, bytes);
            if let Some(c) = self.tables.capture.get(port).filter(|c| c.armed()) {
                let taps = c.load();
                for d in &batch[..sent] {
                    capture::tap_frame(
                        &taps,
                        port as u16,
                        self.umem.data(d),
                        &self.st.events,
                        &mut self.st.counters,
                    );
                }
            }
            back.sent(
                port,
                fresh,
                sent,
                now_ns,
                &mut self.st.counters,
                &mut self.umem,
            );
            self.st.tx.clear(port);
        }
        self.st.tx.back.settle();
    }

    /// Runs until `stop` is set, then drains: no more RX, TX rings flushed
    /// (up to 200 ms), completions reclaimed.
    pub fn run(&mut self, stop: &AtomicBool) {
        // A system call the worker's seccomp filter allows (a /proc path would need more).
        self.shared
            .tid
            .store(nix::unistd::gettid().as_raw() as u64, Ordering::Relaxed);
        self.prime();
        while !stop.load(Ordering::Relaxed) {
            let got = self.poll_once();
            // Frames held for a TX ring are retried on the next loop: no sleep.
            if got > 0 || self.cfg.poll == PollMode::Busy || !self.st.tx.back.is_empty() {
                self.spins = 0;
                continue;
            }
            self.spins += 1;
            if self.spins >= SPINS_BEFORE_SLEEP {
                self.spins = 0;
                // Neighbor timers need the loop now and then: the timeout bounds the sleep.
                let tcp_timers = self
                    .features
                    .tcp
                    .as_ref()
                    .is_some_and(|t| t.tw.has_timers());
                // A dump under way goes on a slice per loop: here it waits for the
                // control thread to take the slices already sent.
                let soon = tcp_timers || self.features.dumping() || !self.st.bvi.is_empty();
                let t = if !self.st.pending.is_empty() || soon {
                    Duration::from_millis(if soon { 1 } else { 5 })
                } else {
                    self.cfg.idle_timeout
                };
                // Frames held for reorder are released after MAX_HOLD_NS.
                let t = if self.impair.as_ref().is_some_and(|i| i.holding()) {
                    t.min(Duration::from_nanos(MAX_HOLD_NS))
                } else {
                    t
                };
                let h = self.tables.handoff.clone();
                if h.as_ref().is_some_and(|h| !h.may_sleep(self.cfg.id)) {
                    continue;
                }
                self.st.counters.sleeps += 1;
                self.st.counters.touch();
                let _ = wait_any(&self.fds, t);
                if let Some(h) = h {
                    h.awake(self.cfg.id);
                }
            }
        }
        self.drain();
    }

    /// Waits for TX rings to empty and returns completed frames.
    pub fn drain(&mut self) {
        let deadline = Instant::now() + Duration::from_millis(200);
        loop {
            // Frames the TX rings held back go out first.
            self.flush_tx(self.start.elapsed().as_nanos() as u64);
            let mut pending = u32::from(!self.st.tx.back.is_empty());
            for s in self.sockets.iter_mut() {
                s.io.wake();
                s.io.reclaim(&mut self.umem, usize::MAX);
                pending += s.io.tx_pending();
            }
            if pending == 0 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // Frames a TX ring never took are dropped (counted), not leaked.
        self.st
            .tx
            .back
            .free_all(&mut self.st.counters, &mut self.umem);
        // Frames still between a bridge and its routed interface are freed, not leaked.
        let umem = &mut self.umem;
        self.st.bvi.clear_with(|d| umem.free(d));
        // Frames the impairment stage still holds are dropped (counted), not leaked.
        if let Some(imp) = self.impair.as_deref_mut() {
            imp.free_held(&mut self.umem, &mut self.st.counters);
        }
        self.st.counters.touch();
        self.st.counters.publish(&self.shared);
        self.shared.set_frames(&self.umem.counts());
        // The frame ledger at the end of the run: every frame in exactly one place.
        match self.umem.check() {
            Ok(c) => tracing::info!(
                "worker {}: frame ledger exact: free {} rx {} held {} tx {}",
                self.cfg.id,
                c.free,
                c.rx,
                c.held,
                c.tx
            ),
            Err(e) => tracing::error!("worker {}: frame ledger: {e}", self.cfg.id),
        }
    }
}

/// Runs the frames other workers handed to this one (at most four bursts):
/// each is copied into a frame of this worker's UMEM and goes through the
/// pipeline (`run`) from the start, as if it had arrived here.
fn take_handoffs(
    ctx: &mut Ctx,
    handoff: &Handoff,
    run: &mut impl FnMut(&mut Ctx, u16, &[Desc]),
) -> usize {
    let me = ctx.st.worker;
    let mut n = 0;
    while n < 4 * BURST {
        let Some(slot) = handoff.recv(me) else { break };
        n += 1;
        ctx.st.counters.stage(Stage::HandoffIn, 1);
        let len = usize::from(slot.len);
        match ctx.umem.alloc() {
            Some(mut d) => {
                let buf = ctx.umem.buf_mut(&d);
                if buf.len() >= len {
                    buf[..len].copy_from_slice(&slot.data[..len]);
                    d.len = len as u32;
                    ctx.handoff = slot.flags | HANDED;
                    run(ctx, slot.port, &[d]);
                    ctx.handoff = 0;
                } else {
                    ctx.drop(slot.port, d, Drop::HandoffFull);
                }
            }
            None => ctx.st.counters.drop(Drop::NoFrame),
        }
        handoff.recycle(me, slot);
    }
    n
}
