//! The front door: the ctl socket and the metrics port, served by a thread of
//! their own (`pktengine-ctl`) so that no client can hold up the control
//! thread (routes, neighbors, reloads, health checks, SIGTERM) or a worker.
//!
//! One thread runs an event loop (mio, epoll) over both listeners and every
//! connection; nothing in it blocks. A connection lives through three states:
//!
//! ```text
//! Reading ── request complete ──► Waiting (a Job on the control thread) ──► Writing ──► closed
//!    │ deadline (2 s from accept), size cap, malformed, truncated (EOF)          │ stall (no byte taken
//!    └──────────────────────────── an error answer ──► Writing ─────────────────┘ for 2 s), output cap
//! ```
//!
//! Limits: a whole-request deadline (not per read: a client trickling one byte
//! every 400 ms is cut at 2 s), a cap on concurrent connections per listener
//! (the next one is answered "busy" and closed), the request size checked
//! before anything is kept, and a cap on answers queued for a client that does
//! not read. The control thread sees only parsed requests, on a bounded
//! channel; it answers through a [`Reply`] it may keep (a capture streams
//! frames as workers copy them) and learns from it when the client is gone.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender, TrySendError};
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::ctl::{self, Access, Envelope, Request, Response, MAX_REQUEST};
use super::metrics;
use super::records::Format;

/// The limits the front door enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From accept to the last byte of the request.
    pub request_deadline: Duration,
    /// How long an answer may wait for the client to take a byte of it.
    pub write_stall: Duration,
    /// Concurrent connections per listener.
    pub max_conns: usize,
    /// Bytes of answers queued for one client (a capture to a client that does not read).
    pub max_out: usize,
    /// Requests waiting for the control thread.
    pub max_jobs: usize,
    /// The largest HTTP request head on the metrics port.
    pub max_http_head: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_deadline: Duration::from_secs(2),
            write_stall: Duration::from_secs(2),
            max_conns: 64,
            max_out: ctl::MAX_MESSAGE + (4 << 20),
            max_jobs: 64,
            max_http_head: 8 << 10,
        }
    }
}

/// A request handed to the control thread.
#[derive(Debug)]
pub enum Job {
    /// A ctl request: answer through `reply`, ending with a final response.
    Ctl { req: Request, reply: Reply },
    /// A metrics scrape: answer with [`Reply::send_metrics`] (or an error).
    Metrics { reply: Reply },
}

/// What goes back to a client: a ctl response, or a scrape's metrics (the
/// front thread renders them, so the control thread only reads counters).
#[derive(Debug)]
pub enum Answer {
    Ctl(Response),
    Metrics(Box<metrics::Metrics>),
}

impl Answer {
    fn is_final(&self) -> bool {
        match self {
            Answer::Ctl(r) => r.is_final(),
            Answer::Metrics(_) => true,
        }
    }
}

/// The way back to one client. Dropping it without a final answer sends an
/// error, so a client never waits for an answer that cannot come.
#[derive(Debug)]
pub struct Reply {
    conn: usize,
    tx: Sender<(usize, Answer)>,
    waker: Arc<Waker>,
    closed: Arc<AtomicBool>,
    flow: Arc<Flow>,
    finished: bool,
    /// A metrics scrape: its one answer ends it.
    single: bool,
    /// How the client asked to be answered (its request's `format`).
    format: Format,
}

/// How much of one client's answers waits: messages the front thread has
/// not taken yet, and bytes it holds that the client has not read.
#[derive(Debug, Default)]
struct Flow {
    inflight: std::sync::atomic::AtomicUsize,
    queued: std::sync::atomic::AtomicUsize,
}

/// Past this, a stream (a dump) waits for its client before sending more.
const BACKLOG_MESSAGES: usize = 4;
const BACKLOG_BYTES: usize = 4 << 20;

impl Reply {
    /// Queues `r` for the client; false when the client is gone (or the
    /// exchange already ended), which ends a stream such as a capture.
    pub fn send(&mut self, r: Response) -> bool {
        self.answer(Answer::Ctl(r))
    }

    /// Answers a scrape with the metrics to render; false when the client is gone.
    pub fn send_metrics(&mut self, m: metrics::Metrics) -> bool {
        self.answer(Answer::Metrics(Box::new(m)))
    }

    fn answer(&mut self, a: Answer) -> bool {
        if self.finished || self.is_closed() {
            return false;
        }
        self.finished = self.single || a.is_final();
        self.flow.inflight.fetch_add(1, Ordering::Relaxed);
        if self.tx.send((self.conn, a)).is_err() {
            return false;
        }
        let _ = self.waker.wake();
        true
    }

    /// The shape the client wants its answers in: text rows or typed records.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether answers already sent wait for the client (a dump holds off
    /// then, so a slow reader costs the engine no memory and no work).
    pub fn backlogged(&self) -> bool {
        self.flow.inflight.load(Ordering::Relaxed) > BACKLOG_MESSAGES
            || self.flow.queued.load(Ordering::Relaxed) > BACKLOG_BYTES
    }

    /// Whether the client hung up, timed out or was cut for not reading.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if !self.finished {
            self.send(Response::Error {
                message: "the engine sent no final answer".into(),
            });
        }
    }
}

/// What the front door counts (for `ctl stats` and the metrics).
#[derive(Debug, Default)]
pub struct FrontCounters {
    pub accepted: std::sync::atomic::AtomicU64,
    pub refused_busy: std::sync::atomic::AtomicU64,
    pub refused_peer: std::sync::atomic::AtomicU64,
    pub deadline: std::sync::atomic::AtomicU64,
    pub oversized: std::sync::atomic::AtomicU64,
    pub malformed: std::sync::atomic::AtomicU64,
    pub slow_reader: std::sync::atomic::AtomicU64,
}

impl FrontCounters {
    /// (name, value) pairs.
    pub fn rows(&self) -> [(&'static str, u64); 7] {
        let v = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        [
            ("accepted", v(&self.accepted)),
            ("refused_busy", v(&self.refused_busy)),
            ("refused_peer", v(&self.refused_peer)),
            ("request_deadline", v(&self.deadline)),
            ("request_oversized", v(&self.oversized)),
            ("request_malformed", v(&self.malformed)),
            ("slow_reader", v(&self.slow_reader)),
        ]
    }
}

const WAKER: Token = Token(0);
const CTL: Token = Token(1);
const METRICS: Token = Token(2);
const FIRST_CONN: usize = 16;

/// The running front door: its thread, and the way to stop it.
#[derive(Debug)]
pub struct Front {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub counters: Arc<FrontCounters>,
}

/// What the front door serves.
pub struct FrontConfig {
    pub ctl: std::os::unix::net::UnixListener,
    pub access: Access,
    pub metrics: Option<std::net::TcpListener>,
    pub limits: Limits,
    /// Called first on the new thread (least privilege for its role).
    pub on_start: Box<dyn FnOnce() + Send>,
}

impl std::fmt::Debug for FrontConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontConfig")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Front {
    /// Starts the thread; requests arrive on the returned receiver.
    pub fn start(cfg: FrontConfig) -> io::Result<(Front, Receiver<Job>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (jobs_tx, jobs_rx) = channel::bounded(cfg.limits.max_jobs);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(FrontCounters::default());
        cfg.ctl.set_nonblocking(true)?;
        let mut ctl_l = UnixListener::from_std(cfg.ctl);
        poll.registry()
            .register(&mut ctl_l, CTL, Interest::READABLE)?;
        let mut metrics_l = match cfg.metrics {
            Some(m) => {
                m.set_nonblocking(true)?;
                let mut l = TcpListener::from_std(m);
                poll.registry()
                    .register(&mut l, METRICS, Interest::READABLE)?;
                Some(l)
            }
            None => None,
        };
        let (resp_tx, resp_rx) = channel::unbounded();
        let mut lp = Loop {
            poll,
            waker: waker.clone(),
            jobs: jobs_tx,
            resp_tx,
            resp_rx,
            conns: HashMap::new(),
            next: FIRST_CONN,
            access: cfg.access,
            limits: cfg.limits,
            counters: counters.clone(),
            n_ctl: 0,
            n_metrics: 0,
        };
        let stop2 = stop.clone();
        let on_start = cfg.on_start;
        let thread = std::thread::Builder::new()
            .name("pktengine-ctl".into())
            .spawn(move || {
                // Whoever the process runs as now (the engine's user after the switch) may talk to it.
                lp.access.own_uid = nix::unistd::geteuid().as_raw();
                on_start();
                lp.run(&ctl_l, metrics_l.as_mut(), &stop2);
            })?;
        Ok((
            Front {
                stop,
                waker,
                thread: Some(thread),
                counters,
            },
            jobs_rx,
        ))
    }

    /// Stops the thread (answers already queued get one last chance to leave).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ctl,
    Metrics,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Reading,
    /// The control thread has the request.
    Waiting,
    /// Only answers left to write; closed when they are out.
    Writing,
}

#[derive(Debug)]
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Unix(s) => s,
            Stream::Tcp(s) => s,
        }
    }
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(b),
            Stream::Tcp(s) => s.read(b),
        }
    }
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(b),
            Stream::Tcp(s) => s.write(b),
        }
    }
}

#[derive(Debug)]
struct Conn {
    kind: Kind,
    stream: Stream,
    state: State,
    inbuf: Vec<u8>,
    deadline: Instant,
    out: Vec<u8>,
    /// Bytes of `out` already written.
    sent: usize,
    last_progress: Instant,
    closed: Arc<AtomicBool>,
    flow: Arc<Flow>,
}

struct Loop {
    poll: Poll,
    waker: Arc<Waker>,
    jobs: Sender<Job>,
    resp_tx: Sender<(usize, Answer)>,
    resp_rx: Receiver<(usize, Answer)>,
    conns: HashMap<usize, Conn>,
    next: usize,
    access: Access,
    limits: Limits,
    counters: Arc<FrontCounters>,
    n_ctl: usize,
    n_metrics: usize,
}

/// What reading a request produced.
enum Parsed {
    More,
    Ctl(Envelope),
    Metrics,
    /// Answer with these bytes and close (errors, 404).
    Answer(Vec<u8>),
}

impl Loop {
    fn run(
        &mut self,
        ctl_l: &UnixListener,
        mut metrics_l: Option<&mut TcpListener>,
        stop: &AtomicBool,
    ) {
        let mut events = Events::with_capacity(256);
        let mut more = false;
        while !stop.load(Ordering::Relaxed) {
            let timeout = if more {
                Duration::ZERO
            } else {
                self.next_deadline()
                    .map_or(Duration::from_millis(200), |d| {
                        d.saturating_duration_since(Instant::now())
                            .min(Duration::from_millis(200))
                    })
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("ctl front: poll: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    CTL => self.accept_ctl(ctl_l),
                    METRICS => {
                        if let Some(l) = metrics_l.as_deref_mut() {
                            self.accept_metrics(l);
                        }
                    }
                    Token(t) => self.io(t, ev.is_write_closed()),
                }
            }
            more = self.answers();
            self.expire();
        }
        // Stopping: what the control thread queued gets one non-blocking try.
        while self.answers() {}
        let ids: Vec<usize> = self.conns.keys().copied().collect();
        for id in ids {
            self.flush(id);
            self.close(id);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter_map(|c| match c.state {
                State::Reading => Some(c.deadline),
                State::Writing | State::Waiting if c.sent < c.out.len() => {
                    Some(c.last_progress + self.limits.write_stall)
                }
                _ => None,
            })
            .min()
    }

    fn register(&mut self, kind: Kind, mut stream: Stream) {
        let id = self.next;
        self.next = self.next.wrapping_add(1).max(FIRST_CONN);
        if let Err(e) = self.poll.registry().register(
            stream.source(),
            Token(id),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tracing::debug!("ctl front: register: {e}");
            return;
        }
        let now = Instant::now();
        match kind {
            Kind::Ctl => self.n_ctl += 1,
            Kind::Metrics => self.n_metrics += 1,
        }
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        self.conns.insert(
            id,
            Conn {
                kind,
                stream,
                state: State::Reading,
                inbuf: Vec::new(),
                deadline: now + self.limits.request_deadline,
                out: Vec::new(),
                sent: 0,
                last_progress: now,
                closed: Arc::new(AtomicBool::new(false)),
                flow: Arc::default(),
            },
        );
        // Bytes may already be waiting (edge-triggered: no event for them).
        self.io(id, false);
    }

    fn accept_ctl(&mut self, l: &UnixListener) {
        loop {
            let (mut s, _) = match l.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!("ctl accept: {e}");
                    return;
                }
            };
            if self.n_ctl >= self.limits.max_conns {
                self.counters.refused_busy.fetch_add(1, Ordering::Relaxed);
                let _ = s.write(&ctl_error("busy: too many ctl connections, try again"));
                continue;
            }
            if let Err(why) = self.access.check(s.as_fd()) {
                self.counters.refused_peer.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("ctl: refused a client: {why}");
                let _ = s.write(&ctl_error(&format!("permission denied: {why}")));
                continue;
            }
            self.register(Kind::Ctl, Stream::Unix(s));
        }
    }

    fn accept_metrics(&mut self, l: &mut TcpListener) {
        loop {
            let (mut s, _) = match l.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!("metrics accept: {e}");
                    return;
                }
            };
            if self.n_metrics >= self.limits.max_conns {
                self.counters.refused_busy.fetch_add(1, Ordering::Relaxed);
                let _ = s.write(&http(
                    503,
                    "Service Unavailable",
                    "busy: too many metrics connections\n",
                ));
                continue;
            }
            self.register(Kind::Metrics, Stream::Tcp(s));
        }
    }

    /// Reads what arrived, writes what is queued. `hup`: the peer closed both
    /// directions (a client that only shut its sending side still gets its answer).
    fn io(&mut self, id: usize, hup: bool) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut buf = [0u8; 4096];
        let mut eof = false;
        // Never keep more than the largest acceptable request (+ its header),
        // and never read more than that in one go: a client that streams
        // bytes cannot keep this loop to itself. Bytes left unread after a
        // request are not waited for (one request per connection).
        let cap = match c.kind {
            Kind::Ctl => 4 + MAX_REQUEST,
            Kind::Metrics => self.limits.max_http_head,
        } + 1;
        let mut budget = cap;
        while budget > 0 && !(c.state == State::Reading && c.inbuf.len() >= cap) {
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    if c.state == State::Reading {
                        let room = cap - c.inbuf.len();
                        c.inbuf.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if c.state == State::Reading {
            let parsed = match c.kind {
                Kind::Ctl => parse_ctl(&c.inbuf, eof),
                Kind::Metrics => parse_http(&c.inbuf, eof, self.limits.max_http_head),
            };
            match parsed {
                Ok(Parsed::More) if eof => {
                    // The client went away before a request: nothing to answer.
                    self.close(id);
                    return;
                }
                Ok(Parsed::More) => {}
                Ok(Parsed::Answer(bytes)) => {
                    c.inbuf = Vec::new();
                    c.out.extend_from_slice(&bytes);
                    c.state = State::Writing;
                }
                Ok(p @ (Parsed::Ctl(_) | Parsed::Metrics)) => {
                    c.inbuf = Vec::new();
                    c.state = State::Waiting;
                    let reply = Reply {
                        conn: id,
                        tx: self.resp_tx.clone(),
                        waker: self.waker.clone(),
                        closed: c.closed.clone(),
                        flow: c.flow.clone(),
                        finished: false,
                        single: c.kind == Kind::Metrics,
                        format: match &p {
                            Parsed::Ctl(env) => env.format,
                            _ => Format::Text,
                        },
                    };
                    let job = match p {
                        Parsed::Ctl(env) => Job::Ctl {
                            req: env.request,
                            reply,
                        },
                        _ => Job::Metrics { reply },
                    };
                    let kind = c.kind;
                    match self.jobs.try_send(job) {
                        Ok(()) => {}
                        Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                            // Answered here, not by the control thread.
                            let mut r = match job {
                                Job::Ctl { reply, .. } | Job::Metrics { reply } => reply,
                            };
                            r.finished = true;
                            let c = self.conns.get_mut(&id).expect("conn");
                            c.state = State::Writing;
                            c.out.extend_from_slice(&match kind {
                                Kind::Ctl => ctl_error(
                                    "busy: the engine has too many requests waiting, try again",
                                ),
                                Kind::Metrics => http(503, "Service Unavailable", "busy\n"),
                            });
                        }
                    }
                }
                Err((bytes, why)) => {
                    match why {
                        Refusal::Oversized => {
                            self.counters.oversized.fetch_add(1, Ordering::Relaxed)
                        }
                        Refusal::Malformed => {
                            self.counters.malformed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    let c = self.conns.get_mut(&id).expect("conn");
                    c.inbuf = Vec::new();
                    c.out.extend_from_slice(&bytes);
                    c.state = State::Writing;
                }
            }
        } else if eof
            && hup
            && self
                .conns
                .get(&id)
                .is_some_and(|c| c.state == State::Waiting)
        {
            // Hung up while the engine works on its request (a capture): stop it.
            self.close(id);
            return;
        }
        self.flush(id);
    }

    /// Writes what is queued; closes a connection whose exchange is over.
    fn flush(&mut self, id: usize) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        while c.sent < c.out.len() {
            match c.stream.write(&c.out[c.sent..]) {
                Ok(0) => break,
                Ok(n) => {
                    c.sent += n;
                    c.last_progress = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close(id);
                    return;
                }
            }
        }
        c.flow.queued.store(c.out.len() - c.sent, Ordering::Relaxed);
        if c.sent == c.out.len() {
            c.out.clear();
            c.sent = 0;
            if c.state == State::Writing {
                self.close(id);
            }
        } else if c.sent > (1 << 20) {
            // Keep the buffer from growing with what is already gone.
            c.out.drain(..c.sent);
            c.sent = 0;
        }
    }

    /// Moves the control thread's answers to their connections, about a
    /// millisecond's worth per call (serializing a large table takes a while: new clients
    /// and deadlines come between); true when more are waiting.
    fn answers(&mut self) -> bool {
        let mut touched = Vec::new();
        // About a millisecond of serializing per turn of the loop.
        let began = Instant::now();
        while began.elapsed() < Duration::from_millis(1) {
            let Ok((id, r)) = self.resp_rx.try_recv() else {
                break;
            };
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            c.flow.inflight.fetch_sub(1, Ordering::Relaxed);
            let fin = r.is_final();
            match c.kind {
                Kind::Ctl => {
                    let mut bytes = Vec::new();
                    match &r {
                        Answer::Ctl(r) => {
                            if ctl::write_message(&mut bytes, r).is_err() {
                                bytes = ctl_error("the answer is too large for one message");
                            }
                        }
                        // Not a ctl answer (the control thread's mistake): the client hears so.
                        Answer::Metrics(_) => bytes = ctl_error("the engine answered with metrics"),
                    }
                    if c.out.len() - c.sent == 0 {
                        c.last_progress = Instant::now();
                    }
                    c.out.extend_from_slice(&bytes);
                }
                Kind::Metrics if c.state == State::Writing => continue,
                Kind::Metrics => {
                    let body = match r {
                        Answer::Metrics(m) => http(200, "OK", &metrics::render(&m)),
                        Answer::Ctl(Response::Error { message }) => {
                            http(500, "Internal Server Error", &format!("{message}\n"))
                        }
                        Answer::Ctl(_) => continue,
                    };
                    c.last_progress = Instant::now();
                    c.out.extend_from_slice(&body);
                }
            }
            if fin || c.kind == Kind::Metrics {
                c.state = State::Writing;
            }
            if c.out.len() - c.sent > self.limits.max_out {
                // A client that does not read what it asked for.
                self.counters.slow_reader.fetch_add(1, Ordering::Relaxed);
                self.close(id);
                continue;
            }
            touched.push(id);
        }
        touched.dedup();
        for id in touched {
            self.flush(id);
        }
        !self.resp_rx.is_empty()
    }

    /// Cuts requests that missed their deadline and readers that stalled.
    fn expire(&mut self) {
        let now = Instant::now();
        let mut late = Vec::new();
        let mut stalled = Vec::new();
        for (&id, c) in &self.conns {
            if c.state == State::Reading && now >= c.deadline {
                late.push((id, c.kind));
            } else if c.sent < c.out.len() && now >= c.last_progress + self.limits.write_stall {
                stalled.push(id);
            }
        }
        for (id, kind) in late {
            self.counters.deadline.fetch_add(1, Ordering::Relaxed);
            let msg = format!(
                "request not complete within {:?}",
                self.limits.request_deadline
            );
            if let Some(c) = self.conns.get_mut(&id) {
                c.inbuf = Vec::new();
                c.state = State::Writing;
                c.out.extend_from_slice(&match kind {
                    Kind::Ctl => ctl_error(&msg),
                    Kind::Metrics => http(408, "Request Timeout", &format!("{msg}\n")),
                });
                c.last_progress = now;
            }
            self.flush(id);
        }
        for id in stalled {
            self.counters.slow_reader.fetch_add(1, Ordering::Relaxed);
            self.close(id);
        }
    }

    fn close(&mut self, id: usize) {
        if let Some(mut c) = self.conns.remove(&id) {
            c.closed.store(true, Ordering::Relaxed);
            let _ = self.poll.registry().deregister(c.stream.source());
            match c.kind {
                Kind::Ctl => self.n_ctl -= 1,
                Kind::Metrics => self.n_metrics -= 1,
            }
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Oversized,
    Malformed,
}

/// The front door's ctl decoder on the bytes of one connection so far
/// (`eof`: the client sent all it will): a request, not yet one, or the
/// error the client is answered with. Public for the fuzz target.
pub fn decode_request(buf: &[u8], eof: bool) -> Result<Option<Request>, String> {
    match parse_ctl(buf, eof) {
        Ok(Parsed::Ctl(env)) => Ok(Some(env.request)),
        Ok(_) => Ok(None),
        Err((bytes, _)) => match ctl::read_message::<Response>(&mut bytes.as_slice()) {
            Ok(Some(Response::Error { message })) => Err(message),
            _ => Err("unreadable error".into()),
        },
    }
}

/// The metrics port's request-head decoder: `Ok(true)` for a scrape,
/// `Ok(false)` when more bytes are needed, `Err(status)` otherwise.
pub fn decode_http(buf: &[u8], eof: bool, max: usize) -> Result<bool, u16> {
    let status = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    };
    match parse_http(buf, eof, max) {
        Ok(Parsed::Metrics) => Ok(true),
        Ok(Parsed::Answer(b)) => Err(status(&b)),
        Ok(_) => Ok(false),
        Err((b, _)) => Err(status(&b)),
    }
}

/// A ctl request from the bytes read so far: its 4-byte length is checked
/// before the body is kept.
fn parse_ctl(buf: &[u8], eof: bool) -> Result<Parsed, (Vec<u8>, Refusal)> {
    let Some(head) = buf.get(..4) else {
        return if eof && !buf.is_empty() {
            Err((
                ctl_error(&format!(
                    "truncated request: {} bytes of a 4-byte length",
                    buf.len()
                )),
                Refusal::Malformed,
            ))
        } else {
            Ok(Parsed::More)
        };
    };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > MAX_REQUEST {
        return Err((
            ctl_error(&format!(
                "bad request: a request of {len} bytes is larger than {MAX_REQUEST}"
            )),
            Refusal::Oversized,
        ));
    }
    let body = &buf[4..];
    if body.len() < len {
        return if eof {
            Err((
                ctl_error(&format!("truncated request: {} of {len} bytes", body.len())),
                Refusal::Malformed,
            ))
        } else {
            Ok(Parsed::More)
        };
    }
    match serde_json::from_slice::<Envelope>(&body[..len]) {
        Ok(r) => Ok(Parsed::Ctl(r)),
        Err(e) => Err((ctl_error(&format!("bad request: {e}")), Refusal::Malformed)),
    }
}

/// An HTTP request head on the metrics port.
fn parse_http(buf: &[u8], eof: bool, max: usize) -> Result<Parsed, (Vec<u8>, Refusal)> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n"));
    if end.is_none() {
        if buf.len() > max {
            return Err((
                http(
                    431,
                    "Request Header Fields Too Large",
                    "request head too large\n",
                ),
                Refusal::Oversized,
            ));
        }
        if !eof || buf.is_empty() {
            return Ok(Parsed::More);
        }
    }
    let head = String::from_utf8_lossy(&buf[..end.unwrap_or(buf.len())]);
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "GET" {
        return Err((
            http(405, "Method Not Allowed", "only GET /metrics is served\n"),
            Refusal::Malformed,
        ));
    }
    if path == "/metrics" || path == "/" {
        Ok(Parsed::Metrics)
    } else {
        Ok(Parsed::Answer(http(
            404,
            "Not Found",
            "only GET /metrics is served\n",
        )))
    }
}

fn ctl_error(message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = ctl::write_message(
        &mut out,
        &Response::Error {
            message: message.to_string(),
        },
    );
    out
}

fn http(code: u16, reason: &str, body: &str) -> Vec<u8> {
    let ctype = if code == 200 {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    format!("HTTP/1.0 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
        .into_bytes()
}

#[cfg(test)]
mod tests;
