//! tcpbench: the kernel-side TCP peer of the system benchmark (scripts/bench.sh).
//!
//! ```text
//! tcpbench server --mode discard|bulk|http|echo --port P [--bind A] [--bytes N] [--body S]
//!                 [--sndbuf B] [--rcvbuf B]
//! tcpbench client --connect ADDR:PORT --mode recv|send|crr [--seconds S] [--conns C]
//!                 [--bytes N] [--body S] [--path P] [--sndbuf B] [--rcvbuf B]
//! ```
//!
//! `--sndbuf`/`--rcvbuf` set SO_SNDBUF/SO_RCVBUF on every socket (the
//! listener's, before `listen`, so accepted sockets inherit them and the
//! window scale fits; the client's before `connect`): fixed buffers instead
//! of the kernel's autotuning (the kernel doubles the value for its
//! bookkeeping, socket(7)).
//!
//! The server is the kernel's equivalent of each `[[tcp]]` app of the engine,
//! byte for byte: `discard` reads and drops, and closes after the client's
//! FIN; `echo` returns every byte; `bulk` sends `--bytes` bytes of the pattern
//! `i % 251` on each connection, then shuts its side (and closes after the
//! client's FIN); `http` answers every request (ending in CRLFCRLF) with
//! `HTTP/1.1 200 OK\r\nContent-Length: N\r\nContent-Type: text/plain\r\n\r\n`
//! and the body, keep-alive, and closes after the client's FIN. One thread, a
//! non-blocking level-triggered epoll loop (the kernel DUT gets one core). On
//! SIGINT/SIGTERM it prints one JSON line of totals and exits.
//!
//! The client, also one thread and one epoll loop, prints one JSON line:
//! - `recv`: `--conns` connections to a bulk server, bytes counted until EOF
//!   or `--seconds`, every byte checked against the pattern (and, with
//!   `--bytes`, each connection's total);
//! - `send`: `--conns` connections stream to a discard server for
//!   `--seconds` (or `--bytes` each), then shut their side and wait for the
//!   server's FIN, which comes after it read everything: the rate is bytes
//!   over the time to the last FIN;
//! - `crr`: `--conns` concurrent connections, each connect, `GET`, the whole
//!   response (by Content-Length; the body checked with `--body`), close,
//!   replaced at once by a new one, for `--seconds`; latency of a connection
//!   is connect to the last response byte (p50, p99, p99.9 in the output).
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::RawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "tcpbench",
    about = "kernel TCP server and client of the TCP benchmark"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServerMode {
    Discard,
    Bulk,
    Http,
    Echo,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ClientMode {
    Recv,
    Send,
    Crr,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve one app on a port (the engine's [[tcp]] apps, on the kernel's TCP).
    Server {
        #[arg(long, value_enum)]
        mode: ServerMode,
        #[arg(long)]
        port: u16,
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0")]
        bind: std::net::Ipv4Addr,
        /// bulk: bytes sent on each connection (the engine's default).
        #[arg(long, default_value_t = 1 << 20)]
        bytes: u64,
        /// http: the body of every answer (the engine's default).
        #[arg(long, default_value = "pktengine\n")]
        body: String,
        #[command(flatten)]
        bufs: Bufs,
    },
    /// Measure against a server (tcpbench's or the engine's).
    Client {
        #[arg(long)]
        connect: SocketAddrV4,
        #[arg(long, value_enum)]
        mode: ClientMode,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Concurrent connections.
        #[arg(long, default_value_t = 1)]
        conns: usize,
        /// recv: bytes each connection must deliver; send: bytes to send on each.
        #[arg(long)]
        bytes: Option<u64>,
        /// crr: the body every response must carry.
        #[arg(long)]
        body: Option<String>,
        /// crr: the request path.
        #[arg(long, default_value = "/")]
        path: String,
        #[command(flatten)]
        bufs: Bufs,
    },
}

/// Fixed socket buffers (SO_SNDBUF/SO_RCVBUF); absent: the kernel autotunes.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
struct Bufs {
    /// SO_SNDBUF in bytes on every socket (the kernel doubles it).
    #[arg(long)]
    sndbuf: Option<i32>,
    /// SO_RCVBUF in bytes on every socket (the kernel doubles it).
    #[arg(long)]
    rcvbuf: Option<i32>,
}

// ----- small libc layer -----

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
    let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = a.port().to_be();
    s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    s
}

fn socket(bufs: Bufs) -> io::Result<RawFd> {
    // SAFETY: plain system call.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    let set = |opt, v: Option<i32>| v.map_or(Ok(()), |v| set_int(fd, libc::SOL_SOCKET, opt, v));
    if let Err(e) = set(libc::SO_SNDBUF, bufs.sndbuf).and(set(libc::SO_RCVBUF, bufs.rcvbuf)) {
        close(fd);
        return Err(e);
    }
    Ok(fd)
}

fn set_int(fd: RawFd, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: the option value is a live c_int of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn so_error(fd: RawFd) -> io::Result<()> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are live and of the sizes passed.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    if v == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(v))
    }
}

fn listen(a: SocketAddrV4, bufs: Bufs) -> io::Result<RawFd> {
    let fd = socket(bufs)?;
    set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    let sa = sockaddr(a);
    // SAFETY: sa is a live sockaddr_in of the size passed.
    cvt(unsafe {
        libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    })?;
    // SAFETY: plain system call.
    cvt(unsafe { libc::listen(fd, 4096) })?;
    Ok(fd)
}

/// A non-blocking connect: Ok once started (EINPROGRESS included).
fn connect(a: SocketAddrV4, bufs: Bufs) -> io::Result<RawFd> {
    let fd = socket(bufs)?;
    let sa = sockaddr(a);
    // SAFETY: sa is a live sockaddr_in of the size passed.
    let r = unsafe {
        libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            close(fd);
            return Err(e);
        }
    }
    Ok(fd)
}

fn accept(l: RawFd) -> io::Result<RawFd> {
    // SAFETY: no address is asked for (null pointers are allowed).
    cvt(unsafe {
        libc::accept4(
            l,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    })
}

fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is live and writable for its length.
    cvt_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })
}

fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is live for its length; MSG_NOSIGNAL: an EPIPE, not a SIGPIPE.
    cvt_size(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) })
}

fn shutdown_write(fd: RawFd) {
    // SAFETY: plain system call.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}

fn close(fd: RawFd) {
    // SAFETY: the caller owns fd and forgets it.
    unsafe { libc::close(fd) };
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

const IN: u32 = libc::EPOLLIN as u32;
const OUT: u32 = libc::EPOLLOUT as u32;

struct Epoll(RawFd);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: plain system call.
        cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }).map(Epoll)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        // SAFETY: ev is live for the call.
        cvt(unsafe { libc::epoll_ctl(self.0, op, fd, &mut ev) }).map(drop)
    }

    fn add(&self, fd: RawFd, events: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events)
    }

    fn set(&self, fd: RawFd, events: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events)
    }

    /// Ready (fd, events); an interrupted wait gives none.
    fn wait(&self, evs: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
        // SAFETY: evs is live and writable for its length.
        let r = unsafe {
            libc::epoll_wait(
                self.0,
                evs.as_mut_ptr(),
                evs.len() as libc::c_int,
                timeout_ms,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        Ok(r as usize)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        close(self.0);
    }
}

/// A slab indexed by file descriptor.
struct Slab<T>(Vec<Option<T>>);

impl<T> Slab<T> {
    fn new() -> Self {
        Slab(Vec::new())
    }
    fn insert(&mut self, fd: RawFd, v: T) {
        let i = fd as usize;
        if self.0.len() <= i {
            self.0.resize_with(i + 1, || None);
        }
        self.0[i] = Some(v);
    }
    fn get(&mut self, fd: RawFd) -> Option<&mut T> {
        self.0.get_mut(fd as usize).and_then(Option::as_mut)
    }
    fn remove(&mut self, fd: RawFd) -> Option<T> {
        self.0.get_mut(fd as usize).and_then(Option::take)
    }
    fn fds(&self) -> Vec<RawFd> {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_some())
            .map(|(i, _)| i as RawFd)
            .collect()
    }
}

/// The bulk pattern: byte i of a stream is i % 251. A whole number of periods,
/// so `pattern()[i % 251..]` continues the stream at byte i.
fn pattern() -> Vec<u8> {
    (0..251 * 256).map(|i| (i % 251) as u8).collect()
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

// ----- server -----

#[derive(Default)]
struct SConn {
    /// Bytes still to send (bulk) and already sent.
    left: u64,
    sent: u64,
    /// Output not yet written (echo, http) and how far it is written.
    out: Vec<u8>,
    out_at: usize,
    /// How far into "\r\n\r\n" the request scan is (the engine's matcher).
    http_match: u8,
    /// The client's FIN arrived.
    eof: bool,
    /// bulk: our side is shut (everything sent).
    shut: bool,
    /// The epoll interest set now.
    interest: u32,
}

#[derive(Default)]
struct SStats {
    accepted: u64,
    closed: u64,
    errors: u64,
    bytes_in: u64,
    bytes_out: u64,
    requests: u64,
}

fn server(
    mode: ServerMode,
    bind: std::net::Ipv4Addr,
    port: u16,
    bytes: u64,
    body: &str,
    bufs: Bufs,
) -> io::Result<()> {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    let lfd = listen(SocketAddrV4::new(bind, port), bufs)?;
    let ep = Epoll::new()?;
    ep.add(lfd, IN)?;
    eprintln!(
        "tcpbench: server {} on {bind}:{port} ready",
        mode_name(mode)
    );
    let pat = pattern();
    let response = {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body.as_bytes());
        r
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut conns: Slab<SConn> = Slab::new();
    let mut st = SStats::default();
    let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    while !STOP.load(Ordering::Relaxed) {
        let n = ep.wait(&mut evs, 200)?;
        for ev in &evs[..n] {
            let (fd, events) = (ev.u64 as RawFd, ev.events);
            if fd == lfd {
                loop {
                    match accept(lfd) {
                        Ok(c) => {
                            st.accepted += 1;
                            let interest = if mode == ServerMode::Bulk {
                                IN | OUT
                            } else {
                                IN
                            };
                            ep.add(c, interest)?;
                            let left = if mode == ServerMode::Bulk { bytes } else { 0 };
                            conns.insert(
                                c,
                                SConn {
                                    left,
                                    interest,
                                    ..SConn::default()
                                },
                            );
                        }
                        Err(e) if would_block(&e) => break,
                        Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                            eprintln!("tcpbench: accept: {e}");
                            break;
                        }
                        Err(_) => break,
                    }
                }
                continue;
            }
            let done = match conns.get(fd) {
                Some(c) => serve(mode, fd, c, events, &ep, &pat, &response, &mut buf, &mut st),
                None => continue,
            };
            match done {
                Ok(false) => {}
                Ok(true) | Err(_) => {
                    if done.is_err() {
                        st.errors += 1;
                    }
                    conns.remove(fd);
                    close(fd);
                    st.closed += 1;
                }
            }
        }
    }
    println!(
        "{}",
        json!({
            "mode": mode_name(mode), "accepted": st.accepted, "closed": st.closed, "open": st.accepted - st.closed,
            "errors": st.errors, "bytes_in": st.bytes_in, "bytes_out": st.bytes_out, "requests": st.requests,
        })
    );
    Ok(())
}

fn mode_name(m: ServerMode) -> &'static str {
    match m {
        ServerMode::Discard => "discard",
        ServerMode::Bulk => "bulk",
        ServerMode::Http => "http",
        ServerMode::Echo => "echo",
    }
}

/// Pending output written as far as the socket takes it; true when all of it is.
fn flush(fd: RawFd, c: &mut SConn, st: &mut SStats) -> io::Result<bool> {
    while c.out_at < c.out.len() {
        match write(fd, &c.out[c.out_at..]) {
            Ok(n) => {
                c.out_at += n;
                st.bytes_out += n as u64;
            }
            Err(e) if would_block(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    c.out.clear();
    c.out_at = 0;
    Ok(true)
}

/// One connection's events; Ok(true): close it.
#[allow(clippy::too_many_arguments)]
fn serve(
    mode: ServerMode,
    fd: RawFd,
    c: &mut SConn,
    events: u32,
    ep: &Epoll,
    pat: &[u8],
    response: &[u8],
    buf: &mut [u8],
    st: &mut SStats,
) -> io::Result<bool> {
    let hup = events & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0;
    // Input: while there is no output backlog (echo and http stop reading then).
    let backlog =
        c.out.len() - c.out_at > 1 << 20 || (mode == ServerMode::Echo && !c.out.is_empty());
    if (events & IN != 0 || hup) && !c.eof && !backlog {
        loop {
            let n = match read(fd, buf) {
                Ok(0) => {
                    c.eof = true;
                    break;
                }
                Ok(n) => n,
                Err(e) if would_block(&e) => break,
                Err(e) => return Err(e),
            };
            st.bytes_in += n as u64;
            match mode {
                ServerMode::Discard | ServerMode::Bulk => {}
                ServerMode::Echo => {
                    c.out.extend_from_slice(&buf[..n]);
                    if !flush(fd, c, st)? {
                        break;
                    }
                }
                ServerMode::Http => {
                    for &b in &buf[..n] {
                        c.http_match = match (c.http_match, b) {
                            (0 | 2, b'\r') => c.http_match + 1,
                            (1, b'\n') => 2,
                            (3, b'\n') => {
                                st.requests += 1;
                                c.out.extend_from_slice(response);
                                0
                            }
                            (_, b'\r') => 1,
                            _ => 0,
                        };
                    }
                }
            }
        }
    }
    let (done, interest) = match mode {
        ServerMode::Bulk => {
            while c.left > 0 {
                let o = (c.sent % 251) as usize;
                let n = c.left.min((pat.len() - o) as u64) as usize;
                match write(fd, &pat[o..o + n]) {
                    Ok(m) => {
                        c.left -= m as u64;
                        c.sent += m as u64;
                        st.bytes_out += m as u64;
                    }
                    Err(e) if would_block(&e) => break,
                    Err(e) => return Err(e),
                }
            }
            if c.left == 0 && !c.shut {
                shutdown_write(fd);
                c.shut = true;
            }
            // Closed after the client's FIN once everything is sent.
            (
                c.eof && c.shut,
                if c.shut {
                    IN
                } else if c.eof {
                    OUT
                } else {
                    IN | OUT
                },
            )
        }
        ServerMode::Discard => (c.eof, IN),
        ServerMode::Echo | ServerMode::Http => {
            let all = flush(fd, c, st)?;
            let backlog =
                c.out.len() - c.out_at > 1 << 20 || (mode == ServerMode::Echo && !c.out.is_empty());
            // The peer finished sending and everything it sent was answered.
            (
                c.eof && all,
                if all {
                    IN
                } else if c.eof || backlog {
                    OUT
                } else {
                    IN | OUT
                },
            )
        }
    };
    if done {
        return Ok(true);
    }
    if interest != c.interest {
        ep.set(fd, interest)?;
        c.interest = interest;
    }
    Ok(false)
}

// ----- client -----

#[derive(Default)]
struct Errors {
    connect: u64,
    reset: u64,
    pattern: u64,
    short: u64,
    http: u64,
    timeout: u64,
}

impl Errors {
    fn total(&self) -> u64 {
        self.connect + self.reset + self.pattern + self.short + self.http + self.timeout
    }
}

struct CConn {
    start: Instant,
    connected: bool,
    /// Bytes received (recv, crr) or sent (send).
    bytes: u64,
    /// recv: a pattern mismatch was counted; send: our side is shut.
    flag: bool,
    /// crr: the response so far (the head until it is complete, then the body).
    body: Vec<u8>,
    body_len: Option<usize>,
}

impl CConn {
    fn new() -> CConn {
        CConn {
            start: Instant::now(),
            connected: false,
            bytes: 0,
            flag: false,
            body: Vec::new(),
            body_len: None,
        }
    }
}

/// The client's outcome of one connection's events.
enum Step {
    Open,
    /// Finished as it should (recv: EOF; send: the server's FIN; crr: the response).
    Done,
    Failed,
}

struct Client {
    mode: ClientMode,
    to: SocketAddrV4,
    bufs: Bufs,
    ep: Epoll,
    conns: Slab<CConn>,
    open: usize,
    errors: Errors,
    /// Bytes moved by all connections (recv/crr: received; send: sent).
    bytes: u64,
    completed: u64,
    latencies_us: Vec<u32>,
    pat: Vec<u8>,
    expect_bytes: Option<u64>,
    request: Vec<u8>,
    body: Option<Vec<u8>>,
    /// send: stop writing (deadline passed).
    draining: bool,
}

impl Client {
    fn start_one(&mut self) -> bool {
        match connect(self.to, self.bufs) {
            Ok(fd) => {
                if self.ep.add(fd, IN | OUT).is_err() {
                    close(fd);
                    self.errors.connect += 1;
                    return false;
                }
                self.conns.insert(fd, CConn::new());
                self.open += 1;
                true
            }
            Err(_) => {
                self.errors.connect += 1;
                false
            }
        }
    }

    fn finish(&mut self, fd: RawFd) {
        if self.conns.remove(fd).is_some() {
            self.open -= 1;
        }
        close(fd);
    }

    fn fail(&mut self, e: &io::Error, c: &CConn) {
        match e.raw_os_error() {
            Some(libc::ECONNREFUSED) | Some(libc::ETIMEDOUT) | Some(libc::EHOSTUNREACH)
                if !c.connected =>
            {
                self.errors.connect += 1
            }
            _ => self.errors.reset += 1,
        }
    }

    fn step(&mut self, fd: RawFd, events: u32, buf: &mut [u8], data: &[u8]) -> Step {
        let Some(mut c) = self.conns.remove(fd) else {
            return Step::Failed;
        };
        let r = self.step_conn(fd, &mut c, events, buf, data);
        let out = match r {
            Ok(s) => s,
            Err(e) => {
                self.fail(&e, &c);
                Step::Failed
            }
        };
        if let Step::Open = out {
            self.conns.insert(fd, c);
        } else {
            self.open -= 1;
            close(fd);
        }
        out
    }

    fn step_conn(
        &mut self,
        fd: RawFd,
        c: &mut CConn,
        events: u32,
        buf: &mut [u8],
        data: &[u8],
    ) -> io::Result<Step> {
        if !c.connected {
            if events & (OUT | (libc::EPOLLERR | libc::EPOLLHUP) as u32) == 0 {
                return Ok(Step::Open);
            }
            so_error(fd)?;
            c.connected = true;
            match self.mode {
                ClientMode::Recv => self.ep.set(fd, IN)?,
                ClientMode::Send => {}
                ClientMode::Crr => {
                    // One small request: the socket buffer takes it whole.
                    let n = write(fd, &self.request)?;
                    if n != self.request.len() {
                        self.errors.http += 1;
                        return Ok(Step::Failed);
                    }
                    self.ep.set(fd, IN)?;
                    return Ok(Step::Open);
                }
            }
        }
        match self.mode {
            ClientMode::Recv => loop {
                let n = match read(fd, buf) {
                    Ok(0) => {
                        if self.expect_bytes.is_some_and(|b| b != c.bytes) {
                            self.errors.short += 1;
                            return Ok(Step::Failed);
                        }
                        return Ok(Step::Done);
                    }
                    Ok(n) => n,
                    Err(e) if would_block(&e) => return Ok(Step::Open),
                    Err(e) => return Err(e),
                };
                if !c.flag && !matches_pattern(&self.pat, c.bytes, &buf[..n]) {
                    c.flag = true;
                    self.errors.pattern += 1;
                }
                c.bytes += n as u64;
                self.bytes += n as u64;
            },
            ClientMode::Send => {
                if c.flag {
                    // Shut: wait for the server's FIN (data after it is an error).
                    return match read(fd, buf) {
                        Ok(0) => Ok(Step::Done),
                        Ok(_) => {
                            self.errors.http += 1;
                            Ok(Step::Failed)
                        }
                        Err(e) if would_block(&e) => Ok(Step::Open),
                        Err(e) => Err(e),
                    };
                }
                let limit = self.expect_bytes.unwrap_or(u64::MAX);
                while !self.draining && c.bytes < limit {
                    let o = (c.bytes % 251) as usize;
                    let n = (limit - c.bytes).min((data.len() - o) as u64) as usize;
                    match write(fd, &data[o..o + n]) {
                        Ok(m) => {
                            c.bytes += m as u64;
                            self.bytes += m as u64;
                        }
                        Err(e) if would_block(&e) => return Ok(Step::Open),
                        Err(e) => return Err(e),
                    }
                }
                shutdown_write(fd);
                c.flag = true;
                self.ep.set(fd, IN)?;
                Ok(Step::Open)
            }
            ClientMode::Crr => loop {
                let n = match read(fd, buf) {
                    Ok(0) => {
                        self.errors.short += 1;
                        return Ok(Step::Failed);
                    }
                    Ok(n) => n,
                    Err(e) if would_block(&e) => return Ok(Step::Open),
                    Err(e) => return Err(e),
                };
                c.bytes += n as u64;
                self.bytes += n as u64;
                c.body.extend_from_slice(&buf[..n]);
                if c.body_len.is_none() {
                    let Some(end) = find(&c.body, b"\r\n\r\n") else {
                        if c.body.len() > 16 * 1024 {
                            self.errors.http += 1;
                            return Ok(Step::Failed);
                        }
                        continue;
                    };
                    let Some(len) = parse_head(&c.body[..end + 4]) else {
                        self.errors.http += 1;
                        return Ok(Step::Failed);
                    };
                    c.body_len = Some(len);
                    c.body.drain(..end + 4);
                }
                let len = c.body_len.unwrap_or(0);
                if c.body.len() > len {
                    // More than the response: this server sends nothing unasked.
                    self.errors.http += 1;
                    return Ok(Step::Failed);
                }
                if c.body.len() == len {
                    if self.body.as_ref().is_some_and(|b| *b != c.body) {
                        self.errors.http += 1;
                        return Ok(Step::Failed);
                    }
                    let us = c.start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    self.latencies_us.push(us);
                    return Ok(Step::Done);
                }
            },
        }
    }
}

/// Whether `got`, the bytes of a stream from offset `at`, follow the pattern.
fn matches_pattern(pat: &[u8], at: u64, got: &[u8]) -> bool {
    let mut o = (at % 251) as usize;
    let mut rest = got;
    while !rest.is_empty() {
        let n = rest.len().min(pat.len() - o);
        if rest[..n] != pat[o..o + n] {
            return false;
        }
        rest = &rest[n..];
        o = 0;
    }
    true
}

fn find(h: &[u8], needle: &[u8]) -> Option<usize> {
    h.windows(needle.len()).position(|w| w == needle)
}

/// A response head: status 200 and its Content-Length.
fn parse_head(h: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(h).ok()?;
    let mut lines = s.split("\r\n");
    let status = lines.next()?;
    if !status.starts_with("HTTP/1.1 200 ") && status != "HTTP/1.1 200" {
        return None;
    }
    lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

#[allow(clippy::too_many_arguments)]
fn client(
    to: SocketAddrV4,
    mode: ClientMode,
    seconds: f64,
    conns: usize,
    bytes: Option<u64>,
    body: Option<String>,
    path: &str,
    bufs: Bufs,
) -> io::Result<serde_json::Value> {
    let host = SocketAddr::V4(to);
    let mut cl = Client {
        mode,
        to,
        bufs,
        ep: Epoll::new()?,
        conns: Slab::new(),
        open: 0,
        errors: Errors::default(),
        bytes: 0,
        completed: 0,
        latencies_us: Vec::new(),
        pat: pattern(),
        expect_bytes: bytes,
        request: format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tcpbench\r\n\r\n")
            .into_bytes(),
        body: body.map(String::into_bytes),
        draining: false,
    };
    let conns = conns.max(1);
    let mut buf = vec![0u8; 256 * 1024];
    // send: the pattern too, long enough for big writes.
    let data: Vec<u8> = (0..251 * 1024).map(|i| (i % 251) as u8).collect();
    let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(seconds);
    // send: after the deadline, time for the server's FINs.
    let grace = deadline + Duration::from_secs(10);
    let mut unfinished = 0u64;
    for _ in 0..conns {
        cl.start_one();
    }
    let mut t_end = t0;
    loop {
        let now = Instant::now();
        if mode != ClientMode::Send && now >= deadline {
            t_end = deadline;
            break;
        }
        if mode == ClientMode::Send && now >= deadline && !cl.draining {
            // Stop writing: shut every connection's side, then wait for the FINs.
            cl.draining = true;
            for fd in cl.conns.fds() {
                if let Some(c) = cl.conns.get(fd) {
                    if c.connected && !c.flag {
                        c.flag = true;
                        shutdown_write(fd);
                        cl.ep.set(fd, IN)?;
                    }
                }
            }
        }
        if now >= grace {
            t_end = now;
            break;
        }
        if cl.open == 0 {
            if mode == ClientMode::Crr && now < deadline {
                if !cl.start_one() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                continue;
            }
            t_end = now;
            break;
        }
        let until = if cl.draining { grace } else { deadline };
        let ms = until
            .saturating_duration_since(now)
            .as_millis()
            .clamp(1, 100) as i32;
        let n = cl.ep.wait(&mut evs, ms)?;
        for ev in &evs[..n] {
            let (fd, events) = (ev.u64 as RawFd, ev.events);
            match cl.step(fd, events, &mut buf, &data) {
                Step::Open => {}
                Step::Done => {
                    cl.completed += 1;
                    t_end = Instant::now();
                    if mode == ClientMode::Crr && Instant::now() < deadline {
                        cl.start_one();
                    }
                }
                Step::Failed => {
                    if mode == ClientMode::Crr && Instant::now() < deadline {
                        cl.start_one();
                    }
                }
            }
        }
        if mode != ClientMode::Crr && cl.open == 0 {
            break;
        }
    }
    // What is still open: recv and crr stop at the deadline; send waited for FINs in vain.
    for fd in cl.conns.fds() {
        unfinished += 1;
        if mode == ClientMode::Send {
            cl.errors.timeout += 1;
        }
        cl.finish(fd);
    }
    let el = t_end.duration_since(t0).as_secs_f64().max(1e-9);
    cl.latencies_us.sort_unstable();
    let lat = |p| percentile(&cl.latencies_us, p).map_or(serde_json::Value::Null, |v| json!(v));
    Ok(json!({
        "mode": match mode { ClientMode::Recv => "recv", ClientMode::Send => "send", ClientMode::Crr => "crr" },
        "connect": to.to_string(),
        "conns": conns,
        "elapsed_s": (el * 1e6).round() / 1e6,
        "bytes": cl.bytes,
        "gbps": cl.bytes as f64 * 8.0 / el / 1e9,
        "connections": cl.completed,
        "conns_per_s": cl.completed as f64 / el,
        "unfinished": unfinished,
        "errors": cl.errors.total(),
        "error_detail": {
            "connect": cl.errors.connect, "reset": cl.errors.reset, "pattern": cl.errors.pattern,
            "short": cl.errors.short, "http": cl.errors.http, "timeout": cl.errors.timeout,
        },
        "p50_us": lat(0.50),
        "p99_us": lat(0.99),
        "p999_us": lat(0.999),
    }))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Server {
            mode,
            port,
            bind,
            bytes,
            body,
            bufs,
        } => server(mode, bind, port, bytes, &body, bufs),
        Cmd::Client {
            connect,
            mode,
            seconds,
            conns,
            bytes,
            body,
            path,
            bufs,
        } => {
            client(connect, mode, seconds, conns, bytes, body, &path, bufs).map(|v| println!("{v}"))
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpbench: {e}");
            ExitCode::FAILURE
        }
    }
}
