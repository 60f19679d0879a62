//! The TCP endpoint in the pipeline: built-in applications listening on the
//! engine's addresses (`[[tcp]]` in the configuration), one connection table
//! and one timer wheel per worker.
//!
//! ```text
//! local delivery, TCP ─► parse + checksum ─► connection (4-tuple) ─► Tcb::on_segment ─► app ─► Tcb::poll ─► frames ─► originate
//!                        no connection: SYN to an app port ─► Tcb::accept     anything else ─► RST (RFC 9293 §3.10.7.1)
//! every loop: timer wheel ─► due connections: Tcb::poll, app
//! ```
//!
//! Ownership: a connection accepted from a SYN belongs to the worker that
//! received it; the peer's later segments carry the same 5-tuple and so
//! arrive on the same queue, which one worker serves (see ARCHITECTURE.md).
//!
//! Applications: `echo` (returns every byte), `discard` (reads and drops),
//! `http` (HTTP/1.1: a static body for every request, keep-alive), `bulk`
//! (sends N bytes on connect, then closes). A connection's rings are
//! allocated when it is accepted (connection setup, not per packet).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::cookie::SynCookies;
use super::isn::IsnGenerator;
use super::seq::Seq;
use super::tcb::{self, Segment, Tcb};
use super::timer::{Handle, TimerWheel};
use crate::dataplane::counters::{Drop, Stage};
use crate::dataplane::pipeline::{Ctx, ETHERTYPE_IPV4, ETH_HDR};
use crate::wire::tcp::{TcpFlags, TcpPacket, TcpRepr};
use crate::xsk::Desc;

/// A built-in application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum App {
    Echo,
    Discard,
    /// Answers every request with this body.
    Http { body: Vec<u8> },
    /// Sends this many bytes on connect, then closes.
    Bulk { bytes: u64 },
}

/// One `[[tcp]]` section: an application on a port of every engine address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    pub port: u16,
    pub app: App,
    pub nodelay: bool,
}

/// Connections a worker holds at most (each with two 64 KiB rings: 128 MiB at most).
pub const MAX_CONNS: usize = 1024;
/// Half-open (SYN-RECEIVED) connections at most; beyond, SYNs are answered
/// with SYN cookies and no state (RFC 4987 §3.6).
pub const BACKLOG: usize = 128;

#[derive(Debug)]
struct Conn {
    tcb: Tcb,
    app: usize,
    /// HTTP: how far into "\r\n\r\n" the request scan is; requests not yet answered.
    http_match: u8,
    http_pending: u32,
    /// Bulk: bytes still to send.
    bulk_left: u64,
    /// Counted in the worker's half-open total (SYN-RECEIVED).
    half_open: bool,
    timer: Option<Handle>,
    /// The port the connection's SYN came in on (its replies are routed anyway).
    port: u16,
}

/// One worker's TCP endpoint.
#[derive(Debug)]
pub struct TcpWorker {
    apps: Vec<AppConfig>,
    conns: Vec<Option<Conn>>,
    free: Vec<u32>,
    by_tuple: HashMap<(u32, u16, u32, u16), u32>,
    wheel: TimerWheel,
    isn: IsnGenerator,
    cookies: SynCookies,
    half_open: usize,
    cfg: tcb::Config,
    scratch: Box<[u8; 65536]>,
    /// A segment's text made contiguous for the TCP emit (the send ring gives two slices).
    out: Box<[u8; 9216]>,
}

type Key = (u32, u16, u32, u16);

impl TcpWorker {
    pub fn new(apps: Vec<AppConfig>, mss: u16) -> TcpWorker {
        TcpWorker {
            apps,
            conns: Vec::new(),
            free: Vec::new(),
            by_tuple: HashMap::new(),
            wheel: TimerWheel::new(4096, 1, MAX_CONNS),
            isn: IsnGenerator::new(),
            cookies: SynCookies::new(),
            half_open: 0,
            cfg: tcb::Config { mss, ..tcb::Config::default() },
            scratch: Box::new([0; 65536]),
            out: Box::new([0; 9216]),
        }
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.by_tuple.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_tuple.is_empty()
    }

    fn app_for(&self, port: u16) -> Option<usize> {
        self.apps.iter().position(|a| a.port == port)
    }
}

/// Whether a local TCP port has an application.
pub fn serves(ctx: &Ctx, port: u16) -> bool {
    ctx.st.tcp.as_ref().is_some_and(|t| t.app_for(port).is_some())
}

/// Local delivery of a TCP segment (IPv4 at ETH_HDR, header checked by
/// ip4-input). Consumes `d`.
pub fn input4(ctx: &mut Ctx, port: u16, d: Desc) {
    let Some(mut tw) = ctx.st.tcp.take() else { return ctx.drop(port, d, Drop::LocalPortUnreachable) };
    handle(ctx, &mut tw, port, d);
    ctx.st.tcp = Some(tw);
}

fn handle(ctx: &mut Ctx, tw: &mut TcpWorker, port: u16, d: Desc) {
    let now = ctx.now_ms();
    let f = ctx.umem.data(&d);
    let Some(ip) = f.get(ETH_HDR..) else { return ctx.drop(port, d, Drop::LocalMalformed) };
    let hl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let Some(seg_bytes) = ip.get(hl..total) else { return ctx.drop(port, d, Drop::LocalMalformed) };
    let Ok(pkt) = TcpPacket::new_checked(seg_bytes) else { return ctx.drop(port, d, Drop::LocalMalformed) };
    let Ok(repr) = TcpRepr::parse(&pkt, src, dst) else { return ctx.drop(port, d, Drop::LocalMalformed) };
    let key: Key = (u32::from(src), repr.src_port, u32::from(dst), repr.dst_port);
    let seg = Segment::from_repr(&repr);
    let idx = match tw.by_tuple.get(&key) {
        Some(&i) => Some(i),
        None => {
            let syn_only = seg.flags.contains(TcpFlags::SYN) && !seg.flags.intersects(TcpFlags::ACK.union(TcpFlags::RST));
            let ack_only = seg.flags.contains(TcpFlags::ACK) && !seg.flags.intersects(TcpFlags::SYN.union(TcpFlags::RST));
            let (l4, r4) = (SocketAddrV4::new(dst, repr.dst_port), SocketAddrV4::new(src, repr.src_port));
            let full = tw.half_open >= BACKLOG || tw.by_tuple.len() >= MAX_CONNS;
            match tw.app_for(repr.dst_port) {
                Some(_) if syn_only && full => {
                    // SYN flood (or a full table): a SYN cookie, no state.
                    let mss = seg.mss.unwrap_or(536);
                    let cookie = tw.cookies.make(l4, r4, seg.seq.0, mss, now / 1000);
                    let synack = Segment {
                        seq: Seq(cookie),
                        ack: seg.seq + 1,
                        flags: TcpFlags::SYN.union(TcpFlags::ACK),
                        window: u16::try_from(tw.cfg.recv_buffer).unwrap_or(u16::MAX),
                        mss: Some(tw.cfg.mss),
                        window_scale: None,
                        sack_permitted: false,
                        payload: &[],
                        payload_tail: &[],
                    };
                    emit(ctx, tw.out.as_mut_slice(), port, l4, r4, &synack);
                    ctx.st.counters.stage(Stage::TcpSynCookie, 1);
                    ctx.consumed(port, d);
                    return;
                }
                Some(app) if ack_only && tw.by_tuple.len() < MAX_CONNS => {
                    // The ACK of a cookie SYN-ACK: the connection is made now.
                    let client_isn = seg.seq.0.wrapping_sub(1);
                    let cookie = seg.ack.0.wrapping_sub(1);
                    match tw.cookies.check(l4, r4, client_isn, cookie, now / 1000) {
                        Some(mss) => {
                            let syn = Segment {
                                seq: Seq(client_isn),
                                ack: Seq(0),
                                flags: TcpFlags::SYN,
                                window: seg.window,
                                mss: Some(mss),
                                window_scale: None,
                                sack_permitted: false,
                                payload: &[],
                                payload_tail: &[],
                            };
                            let mut cfg = tw.cfg;
                            cfg.nodelay = tw.apps[app].nodelay;
                            cfg.window_scale = false;
                            let local = SocketAddr::V4(l4);
                            let remote = SocketAddr::V4(r4);
                            match Tcb::accept(&syn, local, remote, Seq(cookie), cfg, now) {
                                Some(mut tcb) => {
                                    // The SYN-ACK went out already (the cookie): let the
                                    // connection "send" it too, unseen, then take the ACK.
                                    tcb.poll(now, &mut |_| {});
                                    tcb.on_segment(now, &seg);
                                    let i = insert(tw, key, tcb, app, port, false);
                                    run(ctx, tw, i, now);
                                    ctx.consumed(port, d);
                                    return;
                                }
                                None => None,
                            }
                        }
                        None => None,
                    }
                }
                Some(app) if syn_only => {
                    let local = SocketAddr::V4(SocketAddrV4::new(dst, repr.dst_port));
                    let remote = SocketAddr::V4(SocketAddrV4::new(src, repr.src_port));
                    let iss = tw.isn.isn(SocketAddrV4::new(dst, repr.dst_port), SocketAddrV4::new(src, repr.src_port), now * 1000);
                    let mut cfg = tw.cfg;
                    cfg.nodelay = tw.apps[app].nodelay;
                    match Tcb::accept(&seg, local, remote, Seq(iss), cfg, now) {
                        Some(tcb) => {
                            let i = insert(tw, key, tcb, app, port, true);
                            // The SYN itself is consumed by accept.
                            run(ctx, tw, i, now);
                            ctx.consumed(port, d);
                            return;
                        }
                        None => None,
                    }
                }
                _ => None,
            }
        }
    };
    match idx {
        Some(i) => {
            if let Some(c) = tw.conns.get_mut(i as usize).and_then(Option::as_mut) {
                c.tcb.on_segment(now, &seg);
            }
            run(ctx, tw, i, now);
            ctx.consumed(port, d);
        }
        None => {
            // No connection, no listener (or no room): RST, unless it is one (RFC 9293 §3.10.7.1).
            if !seg.flags.contains(TcpFlags::RST) {
                ctx.tcp_reset(port, &d);
            }
            ctx.drop(port, d, Drop::LocalPortUnreachable);
        }
    }
}

/// Adds a connection to the worker's table; returns its index.
fn insert(tw: &mut TcpWorker, key: Key, tcb: Tcb, app: usize, port: u16, half_open: bool) -> u32 {
    let bulk_left = match tw.apps[app].app {
        App::Bulk { bytes } => bytes,
        _ => 0,
    };
    if half_open {
        tw.half_open += 1;
    }
    let c = Conn { tcb, app, http_match: 0, http_pending: 0, bulk_left, half_open, timer: None, port };
    let i = match tw.free.pop() {
        Some(i) => {
            tw.conns[i as usize] = Some(c);
            i
        }
        None => {
            tw.conns.push(Some(c));
            (tw.conns.len() - 1) as u32
        }
    };
    tw.by_tuple.insert(key, i);
    i
}

/// Every loop: connections whose timers are due.
pub fn service(ctx: &mut Ctx) {
    let Some(mut tw) = ctx.st.tcp.take() else { return };
    let now = ctx.now_ms();
    let mut budget = 256;
    while budget > 0 {
        let Some(token) = tw.wheel.poll(now) else { break };
        budget -= 1;
        let i = token as u32;
        if let Some(c) = tw.conns.get_mut(i as usize).and_then(Option::as_mut) {
            c.timer = None;
        }
        run(ctx, &mut tw, i, now);
    }
    ctx.st.tcp = Some(tw);
}

/// The application's turn, then the connection's output, then its timer.
fn run(ctx: &mut Ctx, tw: &mut TcpWorker, i: u32, now: u64) {
    let TcpWorker { conns, apps, scratch, out, wheel, by_tuple, free, cfg, half_open, .. } = tw;
    let Some(c) = conns.get_mut(i as usize).and_then(Option::as_mut) else { return };
    if c.half_open && c.tcb.state() != tcb::State::SynReceived {
        c.half_open = false;
        *half_open -= 1;
    }
    app_step(c, &apps[c.app], scratch.as_mut_slice(), cfg.send_buffer);
    let (local, remote) = (c.tcb.local(), c.tcb.remote());
    let (SocketAddr::V4(l), SocketAddr::V4(r)) = (local, remote) else { return };
    let port = c.port;
    c.tcb.poll(now, &mut |s: &Segment<'_>| emit(ctx, out.as_mut_slice(), port, l, r, s));
    if c.tcb.is_closed() {
        if let Some(h) = c.timer.take() {
            wheel.cancel(h);
        }
        by_tuple.remove(&(u32::from(*r.ip()), r.port(), u32::from(*l.ip()), l.port()));
        if c.half_open {
            *half_open -= 1;
        }
        conns[i as usize] = None;
        free.push(i);
        return;
    }
    match c.tcb.next_deadline() {
        Some(dl) => {
            let delay = dl.saturating_sub(now);
            let ok = match c.timer {
                Some(h) => wheel.reschedule(h, now, delay),
                None => false,
            };
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

fn app_step(c: &mut Conn, app: &AppConfig, scratch: &mut [u8], send_buffer: usize) {
    let t = &mut c.tcb;
    match &app.app {
        App::Echo => loop {
            let room = send_buffer.saturating_sub(t.send_queue()).min(scratch.len());
            if room == 0 {
                break;
            }
            let n = t.recv(&mut scratch[..room]);
            if n == 0 {
                break;
            }
            t.send(&scratch[..n]);
        },
        App::Discard => while t.recv(scratch) > 0 {},
        App::Http { body } => {
            loop {
                let n = t.recv(scratch);
                if n == 0 {
                    break;
                }
                for &b in &scratch[..n] {
                    c.http_match = match (c.http_match, b) {
                        (0 | 2, b'\r') => c.http_match + 1,
                        (1, b'\n') => 2,
                        (3, b'\n') => {
                            c.http_pending += 1;
                            0
                        }
                        (_, b'\r') => 1,
                        _ => 0,
                    };
                }
            }
            while c.http_pending > 0 {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n", body.len());
                if send_buffer.saturating_sub(t.send_queue()) < head.len() + body.len() {
                    break;
                }
                t.send(head.as_bytes());
                t.send(body);
                c.http_pending -= 1;
            }
        }
        App::Bulk { bytes } => {
            while c.bulk_left > 0 {
                let n = (c.bulk_left.min(scratch.len() as u64)) as usize;
                // Byte i of the stream is i % 251: a receiver can check every byte.
                let at = bytes - c.bulk_left;
                for (k, b) in scratch[..n].iter_mut().enumerate() {
                    *b = ((at + k as u64) % 251) as u8;
                }
                let m = t.send(&scratch[..n]);
                c.bulk_left -= m as u64;
                if m < n {
                    break;
                }
            }
            while t.recv(scratch) > 0 {}
            if c.bulk_left == 0 {
                t.shutdown_write();
            }
        }
    }
    // The peer finished sending and everything it sent was answered: close our side too.
    if t.at_eof() && !matches!(app.app, App::Bulk { .. }) && c.http_pending == 0 {
        t.shutdown_write();
    }
}

/// Writes one segment as an Ethernet/IPv4 frame and routes it.
fn emit(ctx: &mut Ctx, payload: &mut [u8], in_port: u16, local: SocketAddrV4, remote: SocketAddrV4, s: &Segment<'_>) {
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
        timestamp: None,
        payload: &payload[..n],
    };
    let Some(mut f) = ctx.umem.alloc() else {
        ctx.st.counters.drop(Drop::NoFrame);
        return;
    };
    let tl = repr.buffer_len();
    let total = 20 + tl;
    let buf = ctx.umem.buf_mut(&f);
    let ok = match buf.get_mut(..ETH_HDR + total) {
        Some(b) => {
            b[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let ip = &mut b[ETH_HDR..];
            ip[..12].copy_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 6, 0, 0]);
            ip[12..16].copy_from_slice(&local.ip().octets());
            ip[16..20].copy_from_slice(&remote.ip().octets());
            let c = crate::wire::checksum::checksum(&ip[..20]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let mut pkt = TcpPacket::new_unchecked(&mut ip[20..total]);
            repr.emit(&mut pkt, *local.ip(), *remote.ip()).is_ok()
        }
        None => false,
    };
    if !ok {
        ctx.umem.free(f);
        return;
    }
    f.len = (ETH_HDR + total) as u32;
    ctx.originate4(in_port, *remote.ip(), f);
}
