//! The TCP endpoint in the pipeline: one connection table, timer wheel and
//! application API per worker.
//!
//! ```text
//! local delivery, TCP ─► parse + checksum ─► owner? (else hand over) ─► connection (4-tuple) ─► Tcb::on_segment ─► event
//!                        no connection: SYN to a listener ─► Tcb::accept (or a SYN cookie)   anything else ─► RST (RFC 9293 §3.10.7.1)
//! every loop: timer wheel ─► due connections
//! then: events ─► applications (read, write, shutdown, close, connect) ─► Tcb::poll ─► frames ─► originate
//! ```
//!
//! The application API ([`TcpWorker::listen`], [`TcpWorker::connect`],
//! [`TcpWorker::accept`], [`TcpWorker::read`], [`TcpWorker::write`],
//! [`TcpWorker::shutdown`], [`TcpWorker::close`], [`TcpWorker::abort`],
//! readiness through [`TcpWorker::next_event`]) is what the built-in
//! applications ([`super::apps`]) use; it runs on the worker, without locks
//! or system calls, between bursts.
//!
//! Ownership: a connection belongs to worker `hash(local port, remote
//! address, remote port) % workers`, whatever queue its segments arrive on (the kernel may move a
//! flow to another queue, e.g. when it rehashes after a retransmission
//! timeout). A segment that arrives on another worker is handed to the owner
//! through the handoff inboxes; an active open picks a local port that makes
//! the opening worker the owner. See ARCHITECTURE.md.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::cookie::SynCookies;
use super::isn::IsnGenerator;
use super::seq::Seq;
use super::tcb::{self, Segment, State, Tcb};
use super::timer::{Handle, TimerWheel};
use crate::context::counters::{Drop, Stage};
use crate::context::handoff::HANDED;
use crate::context::{Ctx, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_HDR};
use crate::wire::tcp::{TcpFlags, TcpPacket, TcpRepr};
use crate::xsk::Desc;

pub use super::apps::{App, AppConfig};

/// Connections a worker holds at most, by default (each with two 64 KiB rings).
pub const MAX_CONNS: usize = 1024;
/// Half-open (SYN-RECEIVED) connections at most, by default; beyond, SYNs
/// are answered with SYN cookies and no state (RFC 4987 §3.6).
pub const BACKLOG: usize = 128;
/// Ephemeral ports of active opens (Linux's default range; the load
/// balancer's health probes use 61000-61255).
pub const EPHEMERAL: (u16, u16) = (32768, 60999);
/// Established connections a listener holds for `accept` at most.
const ACCEPT_QUEUE: usize = 1024;

/// The endpoint's limits and connection parameters (`[tcp_stack]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackConfig {
    pub max_conns: usize,
    pub backlog: usize,
    /// Connection parameters; `mss` 0 takes the port MTU less 40.
    pub tcb: tcb::Config,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            max_conns: MAX_CONNS,
            backlog: BACKLOG,
            tcb: tcb::Config {
                mss: 0,
                ..tcb::Config::default()
            },
        }
    }
}

/// A connection's handle: its slot and the slot's generation, so a handle
/// of a closed connection never reaches the slot's next tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    idx: u32,
    gen: u32,
}

impl ConnId {
    /// The slot, `0..max_conns` (apps index their own per-connection state by it).
    pub fn slot(self) -> usize {
        self.idx as usize
    }
}

/// Readiness and life-cycle events, in the order they happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A listener has an established connection to [`TcpWorker::accept`].
    Acceptable { port: u16 },
    /// An active open completed.
    Connected(ConnId),
    /// Something changed: data to read, room to write, the peer's FIN.
    Ready(ConnId),
    /// The connection ended (`None`: cleanly); its handle is now stale.
    Closed(ConnId, Option<tcb::Error>),
}

/// Why an API call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiError {
    /// The connection table is full.
    NoRoom,
    /// No free local port for this remote endpoint.
    NoPort,
    /// The port is taken (listen) or the address is not the engine's.
    InUse,
}

/// What a worker publishes for `ctl stats` (gauges, refreshed every 10 ms).
#[derive(Debug, Default)]
pub struct Gauges {
    pub conns: AtomicU32,
    pub established: AtomicU32,
    pub half_open: AtomicU32,
    pub time_wait: AtomicU32,
    pub accepted: AtomicU64,
    pub connected: AtomicU64,
    pub closed: AtomicU64,
    pub reset: AtomicU64,
    pub timed_out: AtomicU64,
    pub refused: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Loss recovery, summed over the worker's connections past and present
    /// ([`tcb::TcbStats`]).
    pub retransmits: AtomicU64,
    pub timeouts: AtomicU64,
    pub fast_retransmits: AtomicU64,
    pub tlp_probes: AtomicU64,
    pub tlp_recoveries: AtomicU64,
    pub spurious_undos: AtomicU64,
    pub paws_drops: AtomicU64,
    pub rcv_buffer_grows: AtomicU64,
    pub lost_retransmits: AtomicU64,
}

/// One row of `ctl tcp show`.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: State,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub age_ms: u64,
    pub srtt_us: Option<u32>,
    pub rto_ms: u64,
    pub cwnd: u32,
    pub send_queue: usize,
}

/// `ctl tcp show`: one slot per worker (`context::dump`).
pub type Dumps = crate::context::dump::Dumps<ConnInfo>;

/// What every worker's endpoint shares with the control thread.
#[derive(Debug)]
pub struct TcpShared {
    pub apps: Vec<AppConfig>,
    pub stack: StackConfig,
    pub workers: u16,
    pub gauges: Vec<Gauges>,
    pub dumps: std::sync::Arc<Dumps>,
}

impl TcpShared {
    pub fn new(apps: Vec<AppConfig>, stack: StackConfig, workers: u16) -> TcpShared {
        let workers = workers.max(1);
        TcpShared {
            apps,
            stack,
            workers,
            gauges: (0..workers).map(|_| Gauges::default()).collect(),
            dumps: std::sync::Arc::new(Dumps::new(workers)),
        }
    }

    /// Live connections over all workers.
    pub fn total_conns(&self) -> u64 {
        self.gauges
            .iter()
            .map(|g| u64::from(g.conns.load(Ordering::Relaxed)))
            .sum()
    }
}

/// The worker that owns a connection: a multiplicative hash of the ports
/// and the remote address (not the port parity alone: Linux picks even
/// ephemeral ports for `connect`, so `port % workers` would put every
/// connection from a Linux client on one worker).
#[inline]
pub fn owner(local_port: u16, remote: IpAddr, remote_port: u16, workers: u16) -> u16 {
    let r = match remote {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            (0..4).fold(0u32, |h, i| {
                h ^ u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    };
    let x = ((u32::from(local_port) << 16) | u32::from(remote_port)) ^ r.rotate_left(7);
    let h = x.wrapping_mul(0x9E37_79B1) ^ (x >> 15);
    ((h.wrapping_mul(0x85EB_CA6B) >> 16) % u32::from(workers.max(1))) as u16
}

#[derive(Debug)]
struct Conn {
    tcb: Tcb,
    /// The listening port it was accepted on (0: an active open).
    listener: u16,
    /// Counted in the worker's half-open total (SYN-RECEIVED).
    half_open: bool,
    /// `Acceptable`/`Connected` was reported.
    announced: bool,
    /// In the dirty list (output and timers to update).
    dirty: bool,
    /// A `Ready` event is queued.
    ready_queued: bool,
    timer: Option<Handle>,
    /// The port its first segment came in on (drop accounting of replies).
    port: u16,
    born_ms: u64,
    bytes_in: u64,
    bytes_out: u64,
}

#[derive(Debug)]
struct Listener {
    port: u16,
    nodelay: bool,
    queue: VecDeque<ConnId>,
}

/// (remote address, remote port, local address, local port); IPv4 as IPv4-mapped.
type Key = (u128, u16, u128, u16);

#[inline]
fn ip_key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

#[inline]
fn key_of(local: SocketAddr, remote: SocketAddr) -> Key {
    (
        ip_key(remote.ip()),
        remote.port(),
        ip_key(local.ip()),
        local.port(),
    )
}

/// One worker's TCP endpoint.
#[derive(Debug)]
pub struct TcpWorker {
    me: u16,
    workers: u16,
    /// Generations in the slab make [`ConnId`]s of closed connections stale.
    conns: crate::slab::Slab<Option<Conn>>,
    /// Keyed by peers: a keyed hash ([`crate::hashing`]); bounded by `max_conns`.
    by_tuple: crate::hashing::FlowHashMap<Key, u32>,
    listeners: Vec<Listener>,
    events: VecDeque<Event>,
    dirty: Vec<u32>,
    wheel: TimerWheel,
    isn: IsnGenerator,
    cookies: SynCookies,
    half_open: usize,
    cfg: tcb::Config,
    max_conns: usize,
    backlog: usize,
    next_port: u16,
    /// Rings of closed connections, for the next ones (no allocation per connection).
    pool: Vec<tcb::Buffers>,
    /// Keyed hash folding an IPv6 address into the 32 bits ISNs and cookies hash.
    folder: super::isn::SipHash24,
    /// A segment's text made contiguous for the TCP emit (the send ring gives two slices).
    out: Box<[u8; 9216]>,
    // Totals for the gauges.
    accepted: u64,
    connected: u64,
    closed: u64,
    /// Loss recovery counters of the connections already retired.
    retired_stats: tcb::TcbStats,
    reset: u64,
    timed_out: u64,
    refused: u64,
    bytes_in: u64,
    bytes_out: u64,
    last_gauges_ms: u64,
    /// Where this worker is in a `ctl tcp show` (a slice per loop).
    dump: crate::context::dump::Cursor,
}

impl TcpWorker {
    /// Worker `me` of `workers`; `mss` from the smallest port MTU.
    pub fn new(stack: StackConfig, mss: u16, me: u16, workers: u16) -> TcpWorker {
        let mut cfg = stack.tcb;
        if cfg.mss == 0 {
            cfg.mss = mss;
        }
        let max_conns = stack.max_conns.max(1);
        let span = u32::from(EPHEMERAL.1 - EPHEMERAL.0) + 1;
        let seed = IsnGenerator::new().isn(
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, me),
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            0,
        );
        TcpWorker {
            me,
            workers: workers.max(1),
            conns: crate::slab::Slab::with_capacity(max_conns),
            by_tuple: HashMap::with_capacity_and_hasher(max_conns, crate::hashing::seeded()),
            listeners: Vec::new(),
            events: VecDeque::with_capacity(4 * max_conns),
            dirty: Vec::with_capacity(max_conns),
            wheel: TimerWheel::new(4096, 1, max_conns),
            isn: IsnGenerator::new(),
            cookies: SynCookies::new(),
            half_open: 0,
            cfg,
            max_conns,
            backlog: stack.backlog,
            next_port: EPHEMERAL.0 + (seed % span) as u16,
            out: Box::new([0; 9216]),
            pool: Vec::with_capacity(max_conns),
            folder: super::isn::SipHash24::random(),
            accepted: 0,
            connected: 0,
            closed: 0,
            retired_stats: tcb::TcbStats::default(),
            reset: 0,
            timed_out: 0,
            refused: 0,
            bytes_in: 0,
            bytes_out: 0,
            last_gauges_ms: 0,
            dump: crate::context::dump::Cursor::default(),
        }
    }

    /// An address as the IPv4 tuple hashes see it.
    fn fold(&self, a: IpAddr) -> Ipv4Addr {
        match a {
            IpAddr::V4(a) => a,
            IpAddr::V6(a) => Ipv4Addr::from(self.folder.hash(&a.octets()) as u32),
        }
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.by_tuple.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_tuple.is_empty()
    }

    /// Timers are armed (the worker must not sleep long).
    pub fn has_timers(&self) -> bool {
        !self.wheel.is_empty()
    }

    pub fn mss(&self) -> u16 {
        self.cfg.mss
    }

    // ----- Application API -----

    /// Accepts connections to `port` on every engine address.
    pub fn listen(&mut self, port: u16, nodelay: bool) -> Result<(), ApiError> {
        if port == 0 || self.listeners.iter().any(|l| l.port == port) {
            return Err(ApiError::InUse);
        }
        self.listeners.push(Listener {
            port,
            nodelay,
            queue: VecDeque::with_capacity(64),
        });
        Ok(())
    }

    pub fn is_listening(&self, port: u16) -> bool {
        self.listeners.iter().any(|l| l.port == port)
    }

    /// The next established connection of a listener.
    pub fn accept(&mut self, port: u16) -> Option<ConnId> {
        let l = self.listeners.iter_mut().find(|l| l.port == port)?;
        while let Some(id) = l.queue.pop_front() {
            if self
                .conns
                .get_checked(id.idx, id.gen)
                .is_some_and(Option::is_some)
            {
                return Some(id);
            }
        }
        None
    }

    /// Active open from `local` (an engine address) to `remote`, IPv4 or
    /// IPv6 (both of one family): the SYN leaves on the next flush;
    /// [`Event::Connected`] or [`Event::Closed`] follows. The local port is
    /// chosen so that this worker owns the connection.
    pub fn connect(
        &mut self,
        local: IpAddr,
        remote: SocketAddr,
        nodelay: bool,
        now_ms: u64,
    ) -> Result<ConnId, ApiError> {
        if local.is_ipv6() != remote.is_ipv6() {
            return Err(ApiError::InUse);
        }
        if self.by_tuple.len() >= self.max_conns {
            return Err(ApiError::NoRoom);
        }
        let span = EPHEMERAL.1 - EPHEMERAL.0 + 1;
        let mut port = None;
        for _ in 0..span {
            let p = self.next_port;
            self.next_port = if p >= EPHEMERAL.1 { EPHEMERAL.0 } else { p + 1 };
            if owner(p, remote.ip(), remote.port(), self.workers) != self.me || self.is_listening(p)
            {
                continue;
            }
            if !self
                .by_tuple
                .contains_key(&key_of(SocketAddr::new(local, p), remote))
            {
                port = Some(p);
                break;
            }
        }
        let Some(p) = port else {
            return Err(ApiError::NoPort);
        };
        let l = SocketAddr::new(local, p);
        // As the passive open: ISNs hash IPv4 tuples (IPv6 addresses folded), the MSS is 20 bytes less over IPv6.
        let iss = self.isn.isn(
            SocketAddrV4::new(self.fold(local), p),
            SocketAddrV4::new(self.fold(remote.ip()), remote.port()),
            now_ms * 1000,
        );
        let mut cfg = self.cfg;
        cfg.nodelay = nodelay;
        if remote.is_ipv6() {
            cfg.mss = cfg.mss.saturating_sub(20);
        }
        let tcb = Tcb::connect_with(l, remote, Seq(iss), cfg, now_ms, self.pool.pop());
        let id = self.insert(key_of(l, remote), tcb, 0, 0, false, now_ms);
        self.mark_dirty(id.idx);
        Ok(id)
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get_checked(id.idx, id.gen)?.as_ref()
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.get_checked_mut(id.idx, id.gen)?.as_mut()
    }

    /// Reads received bytes; 0 when none wait (see [`TcpWorker::at_eof`]).
    pub fn read(&mut self, id: ConnId, buf: &mut [u8]) -> usize {
        let Some(c) = self.conn_mut(id) else { return 0 };
        let n = c.tcb.recv(buf);
        if n > 0 {
            // The read may open the window: a window update on the flush.
            self.mark_dirty(id.idx);
        }
        n
    }

    /// Queues what fits of `data`; returns how many bytes.
    pub fn write(&mut self, id: ConnId, data: &[u8]) -> usize {
        let Some(c) = self.conn_mut(id) else { return 0 };
        let n = c.tcb.send(data);
        if n > 0 {
            c.bytes_out += n as u64;
            self.bytes_out += n as u64;
            self.mark_dirty(id.idx);
        }
        n
    }

    /// Bytes `write` would take now.
    pub fn send_room(&self, id: ConnId) -> usize {
        self.conn(id).map_or(0, |c| {
            if c.tcb.can_send() {
                self.cfg.send_buffer.saturating_sub(c.tcb.send_queue())
            } else {
                0
            }
        })
    }

    /// Received bytes wait.
    pub fn readable(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(|c| c.tcb.can_recv())
    }

    /// The peer closed its side and every byte was read.
    pub fn at_eof(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(|c| c.tcb.at_eof())
    }

    /// Sent and not yet acknowledged, or not yet sent.
    pub fn send_queue(&self, id: ConnId) -> usize {
        self.conn(id).map_or(0, |c| c.tcb.send_queue())
    }

    pub fn state(&self, id: ConnId) -> Option<State> {
        self.conn(id).map(|c| c.tcb.state())
    }

    /// The listening port a connection was accepted on (0: an active open).
    pub fn listener_of(&self, id: ConnId) -> Option<u16> {
        self.conn(id).map(|c| c.listener)
    }

    pub fn endpoints(&self, id: ConnId) -> Option<(SocketAddr, SocketAddr)> {
        self.conn(id).map(|c| (c.tcb.local(), c.tcb.remote()))
    }

    /// Half-close: a FIN after the queued data.
    pub fn shutdown(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            c.tcb.shutdown_write();
            self.mark_dirty(id.idx);
        }
    }

    /// Close (a RST instead if unread data waits, like Linux).
    pub fn close(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            c.tcb.close();
            self.mark_dirty(id.idx);
        }
    }

    /// Reset at once.
    pub fn abort(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            c.tcb.abort();
            self.mark_dirty(id.idx);
        }
    }

    /// The next readiness or life-cycle event.
    pub fn next_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        if let Event::Ready(id) = ev {
            if let Some(c) = self.conn_mut(id) {
                c.ready_queued = false;
            }
        }
        Some(ev)
    }

    // ----- Internals -----

    fn mark_dirty(&mut self, i: u32) {
        if let Some(c) = self.conns.get_mut(i).and_then(Option::as_mut) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(i);
            }
        }
    }

    fn id_of(&self, i: u32) -> ConnId {
        ConnId {
            idx: i,
            gen: self.conns.generation(i),
        }
    }

    fn insert(
        &mut self,
        key: Key,
        tcb: Tcb,
        listener: u16,
        port: u16,
        half_open: bool,
        now_ms: u64,
    ) -> ConnId {
        if half_open {
            self.half_open += 1;
        }
        let conn = Conn {
            tcb,
            listener,
            half_open,
            announced: false,
            dirty: false,
            ready_queued: false,
            timer: None,
            port,
            born_ms: now_ms,
            bytes_in: 0,
            bytes_out: 0,
        };
        // Room: the callers check `by_tuple.len() < max_conns` (one entry per connection).
        let i = self.conns.insert(Some(conn)).expect("a connection slot");
        self.by_tuple.insert(key, i);
        self.id_of(i)
    }

    /// After a segment or a timer: life-cycle and readiness events.
    fn after_input(&mut self, i: u32) {
        let id = self.id_of(i);
        let Some(c) = self.conns.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if c.half_open && c.tcb.state() != State::SynReceived {
            c.half_open = false;
            self.half_open -= 1;
        }
        if !c.announced && c.tcb.state().is_synchronized() {
            c.announced = true;
            if c.listener == 0 {
                self.connected += 1;
                self.events.push_back(Event::Connected(id));
            } else {
                self.accepted += 1;
                let port = c.listener;
                if let Some(l) = self.listeners.iter_mut().find(|l| l.port == port) {
                    if l.queue.len() < ACCEPT_QUEUE {
                        l.queue.push_back(id);
                        self.events.push_back(Event::Acceptable { port });
                    } else {
                        c.tcb.abort();
                    }
                }
            }
        } else if c.announced && !c.ready_queued {
            c.ready_queued = true;
            self.events.push_back(Event::Ready(id));
        }
        self.mark_dirty(i);
    }

    /// Sends what each dirty connection has to send, re-arms its timer, and
    /// retires it when it is closed.
    fn flush(&mut self, ctx: &mut Ctx, now: u64) {
        while let Some(i) = self.dirty.pop() {
            let TcpWorker {
                conns, out, wheel, ..
            } = self;
            let Some(c) = conns.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            c.dirty = false;
            let (l, r, port) = (c.tcb.local(), c.tcb.remote(), c.port);
            c.tcb.poll(now, &mut |s: &Segment<'_>| {
                emit(ctx, out.as_mut_slice(), port, l, r, s)
            });
            if c.tcb.is_closed() {
                self.retire(i);
                continue;
            }
            match c.tcb.next_deadline() {
                Some(dl) => {
                    let delay = dl.saturating_sub(now);
                    let ok = c.timer.is_some_and(|h| wheel.reschedule(h, now, delay));
                    if !ok {
                        c.timer = wheel.schedule(now, delay, u64::from(i));
                    }
                }
                None => {
                    if let Some(h) = c.timer.take() {
                        wheel.cancel(h);
                    }
                }
            }
        }
    }

    fn retire(&mut self, i: u32) {
        let id = self.id_of(i);
        let Some(c) = self.conns.get_mut(i).and_then(Option::take) else {
            return;
        };
        if let Some(h) = c.timer {
            self.wheel.cancel(h);
        }
        self.by_tuple.remove(&key_of(c.tcb.local(), c.tcb.remote()));
        if c.half_open {
            self.half_open -= 1;
        }
        let err = c.tcb.error();
        self.retired_stats.add(&c.tcb.stats());
        if self.pool.len() < self.max_conns {
            // A receive ring that autotuning grew is freed, not kept.
            let b = c.tcb.into_buffers();
            if b.fits(&self.cfg) {
                self.pool.push(b);
            }
        }
        self.closed += 1;
        match err {
            Some(tcb::Error::Reset) => self.reset += 1,
            Some(tcb::Error::TimedOut) => self.timed_out += 1,
            Some(tcb::Error::Refused) => self.refused += 1,
            None => {}
        }
        self.conns.remove(i);
        // A connection the application never saw (still in SYN-RECEIVED, or
        // not yet accepted) ends unseen; the others are reported.
        if c.announced || c.listener == 0 {
            self.events.push_back(Event::Closed(id, err));
        }
    }

    /// A `ctl tcp show` is under way (the worker should not sleep long).
    pub fn dumping(&self) -> bool {
        self.dump.busy()
    }

    /// Gauges every 10 ms, and one slice of a `ctl tcp show` under way (at
    /// most `dump::SLICE` slots; one per ms at most when the worker is
    /// `behind` on traffic) per call.
    fn publish(&mut self, shared: &TcpShared, now: u64, behind: bool) {
        if let Some(slot) = shared.dumps.slot(self.me) {
            let conns = &self.conns;
            self.dump.step(slot, conns.slots(), behind, now, |s, rows| {
                if s.mode != crate::context::dump::Mode::Show {
                    return;
                }
                rows.extend(
                    conns
                        .iter_range(s.range.clone())
                        .filter_map(|(_, c)| c.as_ref())
                        .map(|c| ConnInfo {
                            local: c.tcb.local(),
                            remote: c.tcb.remote(),
                            state: c.tcb.state(),
                            bytes_in: c.bytes_in,
                            bytes_out: c.bytes_out,
                            age_ms: now.saturating_sub(c.born_ms),
                            srtt_us: c.tcb.srtt_us(),
                            rto_ms: c.tcb.rto_ms(),
                            cwnd: c.tcb.cc().cwnd(),
                            send_queue: c.tcb.send_queue(),
                        }),
                );
            });
        }
        if now.saturating_sub(self.last_gauges_ms) < 10 {
            return;
        }
        self.last_gauges_ms = now;
        if let Some(g) = shared.gauges.get(usize::from(self.me)) {
            let (mut est, mut tw) = (0, 0);
            let mut st = self.retired_stats;
            for c in self.conns.values().flatten() {
                st.add(&c.tcb.stats());
                match c.tcb.state() {
                    State::Established => est += 1,
                    State::TimeWait => tw += 1,
                    _ => {}
                }
            }
            g.conns.store(self.by_tuple.len() as u32, Ordering::Relaxed);
            g.established.store(est, Ordering::Relaxed);
            g.half_open.store(self.half_open as u32, Ordering::Relaxed);
            g.time_wait.store(tw, Ordering::Relaxed);
            for (a, v) in [
                (&g.accepted, self.accepted),
                (&g.connected, self.connected),
                (&g.closed, self.closed),
                (&g.reset, self.reset),
                (&g.timed_out, self.timed_out),
                (&g.refused, self.refused),
                (&g.bytes_in, self.bytes_in),
                (&g.bytes_out, self.bytes_out),
                (&g.retransmits, st.retransmits),
                (&g.timeouts, st.timeouts),
                (&g.fast_retransmits, st.fast_retransmits),
                (&g.tlp_probes, st.tlp_probes),
                (&g.tlp_recoveries, st.tlp_recoveries),
                (&g.spurious_undos, st.spurious_undos),
                (&g.paws_drops, st.paws_drops),
                (&g.rcv_buffer_grows, st.rcv_buffer_grows),
                (&g.lost_retransmits, st.lost_retransmits),
            ] {
                a.store(v, Ordering::Relaxed);
            }
        }
    }
}

/// The worker's endpoint and its built-in applications.
#[derive(Debug)]
pub struct TcpStack {
    pub tw: TcpWorker,
    pub apps: super::apps::Apps,
}

impl TcpStack {
    pub fn new(shared: &TcpShared, mss: u16, me: u16) -> TcpStack {
        let mut tw = TcpWorker::new(shared.stack, mss, me, shared.workers);
        let apps = super::apps::Apps::new(&shared.apps, &mut tw, me, shared.workers);
        TcpStack { tw, apps }
    }
}

/// Local delivery of a TCP segment (IPv4 at ETH_HDR, header checked by
/// ip4-input). Consumes `d`.
pub fn input4(ctx: &mut Ctx, st: &mut TcpStack, port: u16, d: Desc) {
    let f = ctx.umem.data(&d);
    let Some(ip) = f.get(ETH_HDR..).filter(|ip| ip.len() >= 20) else {
        return ctx.drop(port, d, Drop::LocalMalformed);
    };
    let hl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
    input(ctx, st, port, d, src, dst, ETH_HDR + hl, ETH_HDR + total);
}

/// Local delivery of a TCP segment over IPv6 whose TCP header is at
/// `upper` (from the IPv6 header, after its extension headers). Consumes `d`.
pub fn input6(ctx: &mut Ctx, st: &mut TcpStack, port: u16, d: Desc, upper: usize) {
    let f = ctx.umem.data(&d);
    let Some(ip) = f.get(ETH_HDR..).filter(|ip| ip.len() >= 40) else {
        return ctx.drop(port, d, Drop::LocalMalformed);
    };
    let total = (40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]))).min(ip.len());
    let src = IpAddr::V6(crate::context::ipv6_at(ip, 8));
    let dst = IpAddr::V6(crate::context::ipv6_at(ip, 24));
    input(ctx, st, port, d, src, dst, ETH_HDR + upper, ETH_HDR + total);
}

#[allow(clippy::too_many_arguments)]
fn input(
    ctx: &mut Ctx,
    st: &mut TcpStack,
    port: u16,
    d: Desc,
    src: IpAddr,
    dst: IpAddr,
    l4: usize,
    end: usize,
) {
    let now = ctx.now_ms();
    handle(ctx, &mut st.tw, port, d, now, src, dst, l4, end);
    settle(ctx, st, now);
}

/// Runs the applications on the pending events, then sends what the
/// connections have to send, until nothing is left.
fn settle(ctx: &mut Ctx, st: &mut TcpStack, now: u64) {
    loop {
        st.apps.run(&mut st.tw, now);
        if st.tw.dirty.is_empty() {
            break;
        }
        st.tw.flush(ctx, now);
        if st.tw.events.is_empty() {
            break;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn handle(
    ctx: &mut Ctx,
    tw: &mut TcpWorker,
    port: u16,
    d: Desc,
    now: u64,
    src: IpAddr,
    dst: IpAddr,
    l4: usize,
    end: usize,
) {
    let f = ctx.umem.data(&d);
    let Some(seg_bytes) = f.get(l4..end) else {
        return ctx.drop(port, d, Drop::LocalMalformed);
    };
    let Ok(pkt) = TcpPacket::new_checked(seg_bytes) else {
        return ctx.drop(port, d, Drop::LocalMalformed);
    };
    let parsed = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(t)) => TcpRepr::parse(&pkt, s, t),
        (IpAddr::V6(s), IpAddr::V6(t)) => TcpRepr::parse(&pkt, s, t),
        _ => return ctx.drop(port, d, Drop::LocalMalformed),
    };
    let Ok(repr) = parsed else {
        return ctx.drop(port, d, Drop::LocalMalformed);
    };
    let v6 = src.is_ipv6();
    // Another worker's connection: hand it over (once; a handed frame stays).
    let to = owner(repr.dst_port, src, repr.src_port, tw.workers);
    if to != tw.me && ctx.handoff & HANDED == 0 && ctx.tables.handoff.is_some() {
        // Segments to the engine are never fragments (local delivery drops those).
        ctx.hand_to(to, port, 0, d);
        return;
    }
    ctx.st.counters.stage(Stage::TcpIn, 1);
    let (local, remote) = (
        SocketAddr::new(dst, repr.dst_port),
        SocketAddr::new(src, repr.src_port),
    );
    let key = key_of(local, remote);
    let seg = Segment::from_repr(&repr);
    if let Some(&i) = tw.by_tuple.get(&key) {
        if let Some(c) = tw.conns.get_mut(i).and_then(Option::as_mut) {
            c.tcb.on_segment(now, &seg);
            let n = seg.payload_len() as u64;
            c.bytes_in += n;
            tw.bytes_in += n;
        }
        tw.after_input(i);
        return ctx.consumed(port, d);
    }
    let syn_only = seg.flags.contains(TcpFlags::SYN)
        && !seg.flags.intersects(TcpFlags::ACK.union(TcpFlags::RST));
    let ack_only = seg.flags.contains(TcpFlags::ACK)
        && !seg.flags.intersects(TcpFlags::SYN.union(TcpFlags::RST));
    // ISNs and cookies hash IPv4 tuples; an IPv6 address is folded into 32 bits by a keyed hash.
    let (l4, r4) = (
        SocketAddrV4::new(tw.fold(dst), repr.dst_port),
        SocketAddrV4::new(tw.fold(src), repr.src_port),
    );
    // The MSS over IPv6: 20 bytes less (its header is 40).
    let mss = if v6 {
        tw.cfg.mss.saturating_sub(20)
    } else {
        tw.cfg.mss
    };
    let listener = tw
        .listeners
        .iter()
        .find(|l| l.port == repr.dst_port)
        .map(|l| (l.port, l.nodelay));
    let full = tw.half_open >= tw.backlog || tw.by_tuple.len() >= tw.max_conns;
    match listener {
        Some(_) if syn_only && full => {
            // SYN flood (or a full table): a SYN cookie, no state.
            let mss = seg.mss.unwrap_or(536);
            let cookie = tw.cookies.make(l4, r4, seg.seq.0, mss, now / 1000);
            let synack = Segment {
                seq: Seq(cookie),
                ack: seg.seq + 1,
                flags: TcpFlags::SYN.union(TcpFlags::ACK),
                window: u16::try_from(tw.cfg.recv_buffer).unwrap_or(u16::MAX),
                mss: Some(mss),
                window_scale: None,
                sack_permitted: false,
                timestamp: None,
                payload: &[],
                payload_tail: &[],
            };
            emit(ctx, tw.out.as_mut_slice(), port, local, remote, &synack);
            ctx.st.counters.stage(Stage::TcpSynCookie, 1);
            return ctx.consumed(port, d);
        }
        Some((lport, nodelay)) if ack_only && tw.by_tuple.len() < tw.max_conns => {
            // The ACK of a cookie SYN-ACK: the connection is made now.
            let client_isn = seg.seq.0.wrapping_sub(1);
            let cookie = seg.ack.0.wrapping_sub(1);
            if let Some(mss) = tw.cookies.check(l4, r4, client_isn, cookie, now / 1000) {
                let syn = Segment {
                    seq: Seq(client_isn),
                    flags: TcpFlags::SYN,
                    window: seg.window,
                    mss: Some(mss),
                    ..Segment::default()
                };
                let mut cfg = tw.cfg;
                cfg.nodelay = nodelay;
                cfg.window_scale = false;
                // A cookie keeps no options but the MSS (no timestamps).
                cfg.timestamps = false;
                cfg.mss = mss;
                if let Some(mut tcb) =
                    Tcb::accept_with(&syn, local, remote, Seq(cookie), cfg, now, tw.pool.pop())
                {
                    // The SYN-ACK went out already (the cookie): let the
                    // connection "send" it too, unseen, then take the ACK.
                    tcb.poll(now, &mut |_| {});
                    tcb.on_segment(now, &seg);
                    let id = tw.insert(key, tcb, lport, port, false, now);
                    if let Some(c) = tw.conn_mut(id) {
                        c.bytes_in = seg.payload_len() as u64;
                    }
                    tw.after_input(id.idx);
                    return ctx.consumed(port, d);
                }
            }
        }
        Some((lport, nodelay)) if syn_only => {
            let iss = tw.isn.isn(l4, r4, now * 1000);
            let mut cfg = tw.cfg;
            cfg.nodelay = nodelay;
            cfg.mss = mss;
            if let Some(tcb) =
                Tcb::accept_with(&seg, local, remote, Seq(iss), cfg, now, tw.pool.pop())
            {
                // The SYN itself is consumed by accept; the SYN-ACK leaves on the flush.
                let id = tw.insert(key, tcb, lport, port, true, now);
                tw.mark_dirty(id.idx);
                return ctx.consumed(port, d);
            }
        }
        _ => {}
    }
    // No connection, no listener (or no room): RST, unless it is one (RFC 9293 §3.10.7.1).
    if !seg.flags.contains(TcpFlags::RST) {
        ctx.tcp_reset(port, &d);
    }
    ctx.drop(port, d, Drop::TcpNoConn);
}

/// Every loop: connections whose timers are due, the applications'
/// periodic work (client connections), gauges and `ctl tcp show`.
pub fn service(ctx: &mut Ctx, st: &mut TcpStack, shared: &TcpShared, behind: bool) {
    let now = ctx.now_ms();
    let mut budget = 256;
    while budget > 0 {
        let Some(token) = st.tw.wheel.poll(now) else {
            break;
        };
        budget -= 1;
        let i = token as u32;
        if let Some(c) = st.tw.conns.get_mut(i).and_then(Option::as_mut) {
            c.timer = None;
            let before = c.tcb.state();
            c.tcb.on_time(now);
            let changed = c.tcb.state() != before;
            if changed {
                st.tw.after_input(i);
            } else {
                st.tw.mark_dirty(i);
            }
        }
    }
    st.apps.tick(&mut st.tw, ctx, now);
    settle(ctx, st, now);
    st.tw.publish(shared, now, behind);
}

/// Writes one segment as an Ethernet/IPv4 or IPv6 frame and routes it.
fn emit(
    ctx: &mut Ctx,
    payload: &mut [u8],
    in_port: u16,
    local: SocketAddr,
    remote: SocketAddr,
    s: &Segment<'_>,
) {
    let n = s.payload_len().min(payload.len());
    let a = s.payload.len().min(n);
    payload[..a].copy_from_slice(&s.payload[..a]);
    payload[a..n].copy_from_slice(&s.payload_tail[..n - a]);
    let repr = TcpRepr {
        src_port: local.port(),
        dst_port: remote.port(),
        seq_number: s.seq.0,
        ack_number: s.flags.contains(TcpFlags::ACK).then_some(s.ack.0),
        flags: s.flags,
        window_len: s.window,
        urgent_at: 0,
        max_seg_size: s.mss,
        window_scale: s.window_scale,
        sack_permitted: false,
        sack_ranges: Default::default(),
        timestamp: s.timestamp,
        payload: &payload[..n],
    };
    let Some(mut f) = ctx.umem.alloc() else {
        ctx.st.counters.drop(Drop::NoFrame);
        return;
    };
    let tl = repr.buffer_len();
    let hl = if local.is_ipv6() { 40 } else { 20 };
    let total = hl + tl;
    let buf = ctx.umem.buf_mut(&f);
    let ok = match (buf.get_mut(..ETH_HDR + total), local.ip(), remote.ip()) {
        (Some(b), IpAddr::V4(src), IpAddr::V4(dst)) => {
            b[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let ip = &mut b[ETH_HDR..];
            ip[..12].copy_from_slice(&[
                0x45,
                0,
                (total >> 8) as u8,
                total as u8,
                0,
                0,
                0x40,
                0,
                64,
                6,
                0,
                0,
            ]);
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&dst.octets());
            let c = crate::wire::checksum::checksum(&ip[..20]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let mut pkt = TcpPacket::new_unchecked(&mut ip[20..total]);
            repr.emit(&mut pkt, src, dst).is_ok()
        }
        (Some(b), IpAddr::V6(src), IpAddr::V6(dst)) => {
            b[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let ip = &mut b[ETH_HDR..];
            ip[..8].copy_from_slice(&[0x60, 0, 0, 0, (tl >> 8) as u8, tl as u8, 6, 64]);
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&dst.octets());
            let mut pkt = TcpPacket::new_unchecked(&mut ip[40..total]);
            repr.emit(&mut pkt, src, dst).is_ok()
        }
        _ => false,
    };
    if !ok {
        ctx.umem.free(f);
        return;
    }
    f.len = (ETH_HDR + total) as u32;
    ctx.st.counters.stage(Stage::TcpOut, 1);
    match remote.ip() {
        IpAddr::V4(dst) => ctx.originate4(in_port, dst, f),
        IpAddr::V6(dst) => ctx.originate6(in_port, dst, f),
    }
}

/// The engine address a connection to `remote` leaves from, and the port:
/// the port the route to `remote` goes out of, and its first IPv4 address,
/// or its first global IPv6 address (never the link-local one: the server
/// may be routers away).
pub fn source_for(ctx: &Ctx, remote: IpAddr) -> Option<(IpAddr, u16)> {
    let id = match remote {
        IpAddr::V4(a) => ctx.routes.fib.lookup_v4(a),
        IpAddr::V6(a) => ctx.routes.fib.lookup_v6(a),
    };
    let hop = id.and_then(|id| ctx.routes.select(id, 0))?;
    let p = ctx.ifs.port(hop.port)?;
    let src = match remote {
        IpAddr::V4(_) => p.v4.first().map(|&(a, _)| IpAddr::V4(a)),
        IpAddr::V6(_) => {
            p.v6.iter()
                .find(|(a, _)| !a.is_unicast_link_local())
                .map(|&(a, _)| IpAddr::V6(a))
        }
    };
    src.map(|a| (a, hop.port))
}
