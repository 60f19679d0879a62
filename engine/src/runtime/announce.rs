//! Announcing the load balancer's VIPs (`[routing] announce_table`): the
//! engine decides (`lb::announce`), a small privileged process, the
//! **announcer**, writes the kernel routes a routing daemon exports.
//!
//! After set-up the engine holds no capability, so it cannot add a route. The
//! announcer (`pktengine vip-announcer`) is started as root during set-up,
//! like the ctl socket's custodian, and then:
//!
//! - opens its rtnetlink socket, switches to the engine's user keeping
//!   CAP_NET_ADMIN only, clears its bounding set, sets no_new_privs and
//!   installs the `announcer` seccomp filter (read, send and receive on the
//!   descriptors it has, close; no open, no socket, no exec);
//! - knows from its command line the table and the fixed list of VIP
//!   addresses, and removes any route of theirs left in that table;
//! - reads one-byte commands from a socket only the engine holds:
//!   `0x80 | i` announces VIP `i` (a `blackhole` /32 route, protocol
//!   `static`, in the table), `i` withdraws it; it answers each change it
//!   made with the command byte, so the engine shows what the kernel has;
//! - withdraws everything when the engine has said nothing for
//!   [`WATCHDOG`] (a wedged control loop: the engine repeats its whole state
//!   every second), and withdraws everything and exits on EOF: the engine's
//!   clean exit, or its death by SIGKILL, a seccomp kill or a panic.
//!
//! So the worst a taken-over engine can make it do is add or remove a
//! blackhole route for one of its own VIPs in one table no lookup uses.
//! Why a blackhole route: docs/ARCHITECTURE.md, "Announcing VIPs".

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use caps::{CapSet, Capability};

use super::privileges::{keep_only, seccomp, Account, Report, Role};
use crate::context::counters::SharedCounters;
use crate::lb::announce::{self, EngineState};
use crate::lb::LbShared;

/// The hidden `pktengine` subcommand that runs [`main`].
pub const SUBCOMMAND: &str = "vip-announcer";

/// Silence from the engine after which the announcer withdraws everything.
/// Long enough for a reload that reads a full routing table; a dead engine
/// is seen at once (EOF), this is for a live but wedged one.
pub const WATCHDOG: Duration = Duration::from_secs(5);

/// How often the engine repeats its whole state (the announcer's keepalive).
const REFRESH: Duration = Duration::from_secs(1);

/// A worker whose loop counter has not moved for this long is stalled.
const STALLED: Duration = Duration::from_secs(2);

const ANNOUNCE: u8 = 0x80;

// ---- the engine's side ---------------------------------------------------------------

/// The control thread's view: what it wants, what the announcer confirmed.
#[derive(Debug)]
pub struct Announcements {
    table: u32,
    vips: Vec<u32>,
    child: Child,
    /// The engine's end of the command socket (None once the announcer is gone).
    link: Option<UnixStream>,
    wanted: Vec<bool>,
    confirmed: Vec<bool>,
    last_sent: Option<Instant>,
    /// Each worker's loop counter and when it last moved.
    loops: Vec<(u64, Instant)>,
    report: String,
}

impl Announcements {
    /// Starts the announcer for `vips` in `table` as `account` (None: it
    /// stays root) and waits for its `ok`. Called first thing in `run`, while
    /// the engine is root with a full bounding set.
    pub fn spawn(
        table: u32,
        vips: Vec<u32>,
        account: Option<Account>,
    ) -> Result<Announcements, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("finding the pktengine binary: {e}"))?;
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| format!("making its command socket: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg(SUBCOMMAND).args(["--table", &table.to_string()]);
        for v in &vips {
            cmd.args(["--vip", &std::net::Ipv4Addr::from(*v).to_string()]);
        }
        if let Some(a) = account {
            cmd.args(["--uid", &a.uid.to_string(), "--gid", &a.gid.to_string()]);
        }
        // Its own process group: a terminal's ^C is for the engine, which then withdraws.
        cmd.stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| format!("starting it: {e}"))?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let report = match (read, line.strip_prefix("ok ")) {
            (Some(Ok(_)), Some(r)) => r.trim().to_string(),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "it did not start: {}",
                    if line.is_empty() {
                        "no answer"
                    } else {
                        line.trim()
                    }
                ));
            }
        };
        // Acknowledgements are read from the control loop, which never waits.
        ours.set_nonblocking(true)
            .map_err(|e| format!("its command socket: {e}"))?;
        let n = vips.len();
        Ok(Announcements {
            table,
            vips,
            child,
            link: Some(ours),
            wanted: vec![false; n],
            confirmed: vec![false; n],
            last_sent: None,
            loops: Vec::new(),
            report,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it kept, as it reported.
    pub fn report(&self) -> &str {
        &self.report
    }

    pub fn table(&self) -> u32 {
        self.table
    }

    /// Control loop, every round: decides, tells the announcer what changed
    /// (and everything once a second), records its answers.
    pub fn tick(&mut self, lb: &LbShared, workers: &[Arc<SharedCounters>]) {
        let now = Instant::now();
        let running = self.workers_running(workers, now);
        let state = EngineState {
            workers_running: running,
            stopping: false,
        };
        let services = lb.services.load();
        let want = announce::wanted(&self.vips, &services, state);
        let mut changed = false;
        for (i, &w) in want.iter().enumerate() {
            if w != self.wanted[i] {
                changed = true;
                let why = if w {
                    "a service has a live backend".to_string()
                } else if !running {
                    "a worker stalled".to_string()
                } else {
                    "no service of it has a live backend".to_string()
                };
                tracing::info!(
                    "lb: {} VIP {} (table {}): {why}",
                    if w { "announcing" } else { "withdrawing" },
                    std::net::Ipv4Addr::from(self.vips[i]),
                    self.table
                );
            }
        }
        self.wanted = want;
        if changed
            || self
                .last_sent
                .is_none_or(|t| now.duration_since(t) >= REFRESH)
        {
            self.send_state();
            self.last_sent = Some(now);
        }
        self.read_acks(lb);
    }

    /// Whether every worker's loop counter moved within [`STALLED`].
    fn workers_running(&mut self, workers: &[Arc<SharedCounters>], now: Instant) -> bool {
        if self.loops.len() != workers.len() {
            self.loops = workers
                .iter()
                .map(|w| (w.loops.load(std::sync::atomic::Ordering::Relaxed), now))
                .collect();
        }
        let mut all = true;
        for (w, (last, at)) in workers.iter().zip(self.loops.iter_mut()) {
            let v = w.loops.load(std::sync::atomic::Ordering::Relaxed);
            if v != *last {
                *last = v;
                *at = now;
            } else if now.duration_since(*at) > STALLED {
                all = false;
            }
        }
        all
    }

    fn send_state(&mut self) {
        let cmds: Vec<u8> = self
            .wanted
            .iter()
            .enumerate()
            .map(|(i, &w)| i as u8 | if w { ANNOUNCE } else { 0 })
            .collect();
        self.send(&cmds);
    }

    fn send(&mut self, cmds: &[u8]) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        // A few bytes into an empty socket buffer: a short write or
        // WouldBlock means the announcer stopped reading; it is then gone or
        // about to withdraw on its own (its watchdog).
        if let Err(e) = link.write_all(cmds) {
            if e.kind() != std::io::ErrorKind::WouldBlock {
                tracing::error!(
                    "lb: VIP announcer (pid {}) is gone ({e}); its routes are withdrawn",
                    self.child.id()
                );
                self.link = None;
            }
        }
    }

    /// The announcer's answers: each byte a change it made.
    fn read_acks(&mut self, lb: &LbShared) {
        let mut buf = [0u8; 256];
        loop {
            let Some(link) = self.link.as_mut() else {
                return;
            };
            match link.read(&mut buf) {
                Ok(0) => {
                    tracing::error!(
                        "lb: VIP announcer (pid {}) exited; its routes are withdrawn",
                        self.child.id()
                    );
                    self.link = None;
                    for (i, c) in self.confirmed.iter_mut().enumerate() {
                        *c = false;
                        lb.set_announced(self.vips[i], false);
                    }
                    return;
                }
                Ok(n) => {
                    for &b in &buf[..n] {
                        let i = usize::from(b & !ANNOUNCE);
                        let on = b & ANNOUNCE != 0;
                        if let Some(c) = self.confirmed.get_mut(i) {
                            *c = on;
                            lb.set_announced(self.vips[i], on);
                            tracing::info!(
                                "lb: VIP {} {} (table {})",
                                std::net::Ipv4Addr::from(self.vips[i]),
                                if on { "announced" } else { "withdrawn" },
                                self.table
                            );
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Records every VIP as withdrawn, before the first tick.
    pub fn init(&self, lb: &LbShared) {
        for &v in &self.vips {
            lb.set_announced(v, false);
        }
    }

    /// At the stop, first thing (traffic moves to other engines while this
    /// one drains): withdraws every VIP, closes the socket and waits (up to a
    /// second) for the announcer to exit.
    pub fn finish(mut self, lb: &LbShared) {
        if self.wanted.iter().any(|&w| w) {
            tracing::info!("lb: withdrawing every VIP (table {}): stopping", self.table);
        }
        self.wanted.iter_mut().for_each(|w| *w = false);
        self.send_state();
        // Its answers, so the log says the routes are gone (the control
        // thread's filter has no shutdown(): the socket is simply closed after).
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.link.is_some() && self.confirmed.iter().any(|&c| c) && Instant::now() < deadline
        {
            self.read_acks(lb);
            std::thread::sleep(Duration::from_millis(1));
        }
        // Closing the socket is what makes it withdraw for certain, and exit.
        self.link = None;
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        tracing::warn!(
            "lb: VIP announcer (pid {}) did not finish within a second",
            self.child.id()
        );
    }
}

// ---- the announcer process ---------------------------------------------------------

/// The announcer (`pktengine vip-announcer`). Returns the exit code.
pub fn main(table: u32, vips: &[std::net::Ipv4Addr], account: Option<Account>) -> i32 {
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let _ =
            signal_hook::flag::register(sig, Arc::new(std::sync::atomic::AtomicBool::new(false)));
    }
    let say = |line: &str| {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    };
    if vips.len() > announce::MAX_VIPS {
        say(&format!("at most {} VIPs", announce::MAX_VIPS));
        return 1;
    }
    let rtnl = match rtnl::Rtnl::open() {
        Ok(r) => r,
        Err(e) => {
            say(&format!("rtnetlink: {e}"));
            return 1;
        }
    };
    // The engine's socket: a receive timeout is the watchdog.
    let stdin = std::io::stdin();
    if let Err(e) = nix::sys::socket::setsockopt(
        &stdin,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(WATCHDOG.as_secs() as i64, 0),
    ) {
        say(&format!("its command socket (not a socket?): {e}"));
        return 1;
    }
    let report = match confine_self(account) {
        Ok(r) => r,
        Err(e) => {
            say(&e);
            return 1;
        }
    };
    let mut a = Announcer {
        rtnl,
        table,
        vips: vips.iter().map(|&v| u32::from(v)).collect(),
        on: vec![false; vips.len()],
    };
    // A clean slate: routes of ours left by an announcer that was killed itself.
    for i in 0..a.vips.len() {
        a.withdraw_quietly(i);
    }
    say(&format!("ok {report}"));
    let fd = stdin.as_raw_fd();
    let mut buf = [0u8; 256];
    let mut wedged = false;
    loop {
        match nix::unistd::read(&stdin, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                wedged = false;
                for &b in &buf[..n] {
                    if let Some(ack) = a.apply(b) {
                        let _ =
                            nix::sys::socket::send(fd, &[ack], nix::sys::socket::MsgFlags::empty());
                    }
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                if !wedged {
                    eprintln!(
                        "pktengine vip-announcer: nothing from the engine for {WATCHDOG:?}: withdrawing every VIP"
                    );
                    wedged = true;
                }
                for i in 0..a.vips.len() {
                    if let Some(ack) = a.apply(i as u8) {
                        let _ =
                            nix::sys::socket::send(fd, &[ack], nix::sys::socket::MsgFlags::empty());
                    }
                }
            }
            Err(_) => break,
        }
    }
    // EOF: the engine is gone or stopping.
    for i in 0..a.vips.len() {
        a.withdraw_quietly(i);
    }
    0
}

struct Announcer {
    rtnl: rtnl::Rtnl,
    table: u32,
    vips: Vec<u32>,
    on: Vec<bool>,
}

impl Announcer {
    /// Applies one command; returns the acknowledgement of a change made.
    fn apply(&mut self, b: u8) -> Option<u8> {
        let i = usize::from(b & !ANNOUNCE);
        let want = b & ANNOUNCE != 0;
        let vip = *self.vips.get(i)?;
        if self.on[i] == want {
            return None;
        }
        let r = if want {
            self.rtnl.route(rtnl::RTM_NEWROUTE, self.table, vip)
        } else {
            self.rtnl.route(rtnl::RTM_DELROUTE, self.table, vip)
        };
        match r {
            Ok(()) => {
                self.on[i] = want;
                Some(b)
            }
            // Already gone (someone removed it by hand): withdrawn all the same.
            Err(e) if !want && rtnl::is_absent(e) => {
                self.on[i] = false;
                Some(b)
            }
            Err(e) => {
                eprintln!(
                    "pktengine vip-announcer: {} {} in table {}: {e}",
                    if want { "adding" } else { "removing" },
                    std::net::Ipv4Addr::from(vip),
                    self.table
                );
                None
            }
        }
    }

    fn withdraw_quietly(&mut self, i: usize) {
        let r = self
            .rtnl
            .route(rtnl::RTM_DELROUTE, self.table, self.vips[i]);
        if let Err(e) = r {
            if !rtnl::is_absent(e) {
                eprintln!(
                    "pktengine vip-announcer: removing {} from table {}: {e}",
                    std::net::Ipv4Addr::from(self.vips[i]),
                    self.table
                );
            }
        }
        self.on[i] = false;
    }
}

/// Switches to `account` keeping CAP_NET_ADMIN only, then the filter.
fn confine_self(account: Option<Account>) -> Result<String, String> {
    let keep = Role::Announcer.keeps();
    caps::clear(None, CapSet::Bounding).map_err(|e| format!("clearing the bounding set: {e}"))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("clearing the ambient set: {e}"))?;
    if let Some(a) = account {
        let mut switch = keep.to_vec();
        switch.extend([Capability::CAP_SETUID, Capability::CAP_SETGID]);
        keep_only(&switch)?;
        caps::securebits::set_keepcaps(true).map_err(|e| format!("setting KEEPCAPS: {e}"))?;
        super::privileges::switch_to(a)?;
        caps::securebits::set_keepcaps(false).map_err(|e| format!("clearing KEEPCAPS: {e}"))?;
    }
    let kept = keep_only(keep)?;
    if kept.len() != keep.len() {
        return Err(format!("could not keep {keep:?} (kept {kept:?})"));
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    let mut report = Report::read()?;
    if let Some(wrong) = report.shortfall(Role::Announcer, account) {
        return Err(wrong);
    }
    report.seccomp = Some((Role::Announcer, seccomp::install(Role::Announcer)?));
    Ok(report.to_string())
}

/// The two rtnetlink requests the announcer makes, written by hand (a
/// route message is 44 bytes; a crate would bring a message model of
/// hundreds of types for it).
pub mod rtnl {
    use std::os::fd::{AsRawFd, OwnedFd};

    use nix::errno::Errno;
    use nix::sys::socket::{
        bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
        SockFlag, SockProtocol, SockType,
    };

    pub const RTM_NEWROUTE: u16 = 24;
    pub const RTM_DELROUTE: u16 = 25;
    const NLMSG_ERROR: u16 = 2;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_ACK: u16 = 0x4;
    const NLM_F_REPLACE: u16 = 0x100;
    const NLM_F_CREATE: u16 = 0x400;
    const AF_INET: u8 = 2;
    const RTPROT_STATIC: u8 = 4;
    const RT_SCOPE_UNIVERSE: u8 = 0;
    const RTN_BLACKHOLE: u8 = 6;
    const RTA_DST: u16 = 1;
    const RTA_TABLE: u16 = 15;

    /// A route request: `ip route replace blackhole ADDR/32 table T proto
    /// static` (RTM_NEWROUTE) or its removal (RTM_DELROUTE; the kernel
    /// matches type, protocol and table, so only our route goes).
    pub fn route_msg(cmd: u16, seq: u32, table: u32, addr: u32) -> Vec<u8> {
        let flags = NLM_F_REQUEST
            | NLM_F_ACK
            | if cmd == RTM_NEWROUTE {
                NLM_F_CREATE | NLM_F_REPLACE
            } else {
                0
            };
        let len: u32 = 16 + 12 + 8 + 8;
        let mut m = Vec::with_capacity(len as usize);
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&cmd.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        let t8 = u8::try_from(table).unwrap_or(0);
        m.extend_from_slice(&[
            AF_INET,
            32,
            0,
            0,
            t8,
            RTPROT_STATIC,
            RT_SCOPE_UNIVERSE,
            RTN_BLACKHOLE,
        ]);
        m.extend_from_slice(&0u32.to_ne_bytes());
        // RTA_DST (network order), RTA_TABLE (tables above 255 need it).
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&RTA_DST.to_ne_bytes());
        m.extend_from_slice(&addr.to_be_bytes());
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&RTA_TABLE.to_ne_bytes());
        m.extend_from_slice(&table.to_ne_bytes());
        m
    }

    /// The error of the kernel's answer to request `seq` (0: done), if `buf`
    /// holds that answer.
    pub fn ack_of(buf: &[u8], seq: u32) -> Option<i32> {
        let mut off = 0;
        while off + 20 <= buf.len() {
            let len = u32::from_ne_bytes(buf[off..off + 4].try_into().ok()?) as usize;
            let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().ok()?);
            let s = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().ok()?);
            if len < 16 || off + len > buf.len() {
                return None;
            }
            if ty == NLMSG_ERROR && s == seq {
                return Some(i32::from_ne_bytes(buf[off + 16..off + 20].try_into().ok()?));
            }
            off += (len + 3) & !3;
        }
        None
    }

    /// Whether a removal failed only because the route was not there.
    pub fn is_absent(e: Errno) -> bool {
        matches!(e, Errno::ESRCH | Errno::ENOENT)
    }

    /// An rtnetlink socket, opened before the announcer confines itself.
    #[derive(Debug)]
    pub struct Rtnl {
        fd: OwnedFd,
        seq: u32,
    }

    impl Rtnl {
        pub fn open() -> Result<Rtnl, Errno> {
            let fd = socket(
                AddressFamily::Netlink,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::NetlinkRoute,
            )?;
            bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
            // The kernel answers at once; a missing answer must not hang the announcer.
            setsockopt(
                &fd,
                sockopt::ReceiveTimeout,
                &nix::sys::time::TimeVal::new(1, 0),
            )?;
            Ok(Rtnl { fd, seq: 0 })
        }

        /// Sends one route request and waits for its answer.
        pub fn route(&mut self, cmd: u16, table: u32, addr: u32) -> Result<(), Errno> {
            self.seq = self.seq.wrapping_add(1);
            let msg = route_msg(cmd, self.seq, table, addr);
            send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;
            let mut buf = [0u8; 1024];
            loop {
                let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
                match ack_of(&buf[..n], self.seq) {
                    Some(0) => return Ok(()),
                    Some(e) => return Err(Errno::from_raw(-e)),
                    None => continue,
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_route_request_reads_as_ip_route_would_write_it() {
            let m = route_msg(RTM_NEWROUTE, 7, 100, u32::from_be_bytes([198, 18, 100, 1]));
            assert_eq!(m.len(), 44);
            assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 44);
            assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), 24);
            // REQUEST | ACK | REPLACE | CREATE
            assert_eq!(u16::from_ne_bytes(m[6..8].try_into().unwrap()), 0x505);
            assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 7);
            assert_eq!(&m[16..24], &[2, 32, 0, 0, 100, 4, 0, 6]);
            assert_eq!(&m[32..36], &[198, 18, 100, 1]);
            assert_eq!(u32::from_ne_bytes(m[40..44].try_into().unwrap()), 100);
            let d = route_msg(RTM_DELROUTE, 8, 1000, 1);
            assert_eq!(u16::from_ne_bytes(d[6..8].try_into().unwrap()), 0x5);
            // A table above 255 travels in RTA_TABLE only.
            assert_eq!(d[20], 0);
        }

        #[test]
        fn acks_are_found_by_sequence() {
            let mut err = Vec::new();
            err.extend_from_slice(&36u32.to_ne_bytes());
            err.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            err.extend_from_slice(&0u16.to_ne_bytes());
            err.extend_from_slice(&9u32.to_ne_bytes());
            err.extend_from_slice(&0u32.to_ne_bytes());
            err.extend_from_slice(&(-3i32).to_ne_bytes());
            err.extend_from_slice(&[0u8; 16]);
            assert_eq!(ack_of(&err, 9), Some(-3));
            assert_eq!(ack_of(&err, 8), None);
            assert_eq!(ack_of(&err[..10], 9), None);
        }

        /// In a namespace of its own (root only): the kernel takes the
        /// request, `ip route` sees the route, and removing it twice says absent.
        #[test]
        fn the_kernel_takes_the_route() {
            if !caps::has_cap(
                None,
                caps::CapSet::Effective,
                caps::Capability::CAP_SYS_ADMIN,
            )
            .unwrap_or(false)
            {
                eprintln!("skipped: needs root");
                return;
            }
            let ns = format!("pkt-{}-announce", std::process::id());
            let ok = std::process::Command::new("ip")
                .args(["netns", "add", &ns])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ip netns add {ns}");
            let path = std::path::PathBuf::from(format!("/run/netns/{ns}"));
            let r = std::thread::spawn(move || {
                crate::xsk::enter_netns(&path).unwrap();
                let mut r = Rtnl::open().unwrap();
                let a = u32::from_be_bytes([198, 18, 100, 1]);
                r.route(RTM_NEWROUTE, 100, a).unwrap();
                // Again: a replace, not an error.
                r.route(RTM_NEWROUTE, 100, a).unwrap();
                let shown = std::process::Command::new("ip")
                    .args(["route", "show", "table", "100"])
                    .output()
                    .unwrap();
                let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
                r.route(RTM_DELROUTE, 100, a).unwrap();
                let e = r.route(RTM_DELROUTE, 100, a).unwrap_err();
                (shown, e)
            })
            .join();
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &ns])
                .status();
            let (shown, e) = r.unwrap();
            assert_eq!(shown.trim(), "blackhole 198.18.100.1 proto static");
            assert!(is_absent(e), "{e}");
        }
    }
}
