//! The built-in applications (`[[tcp]]` in the configuration), written on
//! the endpoint's application API like any user of it would be.
//!
//! Servers (`port = P`, on every engine address): `echo` returns every
//! byte, `discard` reads and drops, `http` answers every HTTP/1.1 request
//! with a static body (keep-alive), `bulk` sends `bytes` bytes and closes.
//! Clients (`connect = "ADDR:PORT"` or `"[IPv6]:PORT"`, `connections = N`): `bulk` sends
//! `bytes` bytes and closes, `discard` reads until the server closes,
//! `echo` returns what the server sends. A client connection's end is
//! logged with its figures, and counted in `ctl stats` (`tcp worker N`).
//!
//! Every stream a bulk sender writes is byte `i` = `i % 251`, so a receiver
//! can check each byte.

use std::net::SocketAddr;

use super::endpoint::{ConnId, Event, TcpWorker};
use crate::context::Ctx;

/// A built-in application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum App {
    Echo,
    Discard,
    /// Answers every request with this body.
    Http {
        body: Vec<u8>,
    },
    /// Sends this many bytes on each connection, then closes.
    Bulk {
        bytes: u64,
    },
}

/// One `[[tcp]]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    /// Listening port (servers); 0 for a client.
    pub port: u16,
    /// A client's server; `None` for a server.
    pub connect: Option<SocketAddr>,
    /// A client's connections (spread over the workers).
    pub connections: u32,
    pub app: App,
    pub nodelay: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct AppConn {
    live: bool,
    app: u16,
    client: bool,
    /// HTTP: how far into "\r\n\r\n" the request scan is; requests not yet answered.
    http_match: u8,
    http_pending: u32,
    /// Bulk: bytes still to send.
    bulk_left: u64,
    /// Bytes received (checked against the pattern when a client downloads).
    got: u64,
    pattern_errors: u64,
    started_ms: u64,
    /// A client's result was logged.
    reported: bool,
}

/// A client section's connections on this worker.
#[derive(Debug)]
struct Plan {
    app: usize,
    /// Connection numbers `k` with `k % workers == me` are ours.
    todo: u32,
    next_try_ms: u64,
    /// Since when no source address was found (0: one was, or not tried yet); warned once.
    no_source_since_ms: u64,
    warned: bool,
}

/// How long a client waits for a route and a source address before it warns (it keeps trying).
const NO_SOURCE_WARN_MS: u64 = 5000;

/// One worker's applications.
#[derive(Debug)]
pub struct Apps {
    cfgs: Vec<AppConfig>,
    /// HTTP: the response header of each app (built once).
    heads: Vec<Vec<u8>>,
    conns: Vec<AppConn>,
    plans: Vec<Plan>,
    scratch: Box<[u8; 65536]>,
    /// The bulk pattern (byte `i` = `i % 251`) over 64 KiB plus one period, so
    /// that any 64 KiB of the stream is one slice of it: written and checked
    /// by `memcpy`/`memcmp`, not byte by byte.
    pattern: Box<[u8]>,
}

const PERIOD: usize = 251;

impl Apps {
    /// Listens on every server's port; plans this worker's share of the clients.
    pub fn new(cfgs: &[AppConfig], tw: &mut TcpWorker, me: u16, workers: u16) -> Apps {
        let mut plans = Vec::new();
        for (i, a) in cfgs.iter().enumerate() {
            match a.connect {
                None => {
                    let _ = tw.listen(a.port, a.nodelay);
                }
                Some(_) => {
                    let w = u32::from(workers.max(1));
                    let mine = (0..a.connections)
                        .filter(|k| k % w == u32::from(me))
                        .count() as u32;
                    if mine > 0 {
                        plans.push(Plan {
                            app: i,
                            todo: mine,
                            next_try_ms: 0,
                            no_source_since_ms: 0,
                            warned: false,
                        });
                    }
                }
            }
        }
        let heads = cfgs
            .iter()
            .map(|a| match &a.app {
                App::Http { body } => format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n",
                    body.len()
                )
                .into_bytes(),
                _ => Vec::new(),
            })
            .collect();
        let pattern = (0..65536 + PERIOD).map(|i| (i % PERIOD) as u8).collect();
        Apps {
            cfgs: cfgs.to_vec(),
            heads,
            conns: Vec::new(),
            plans,
            scratch: Box::new([0; 65536]),
            pattern,
        }
    }

    fn slot(&mut self, id: ConnId) -> &mut AppConn {
        let i = id.slot();
        if self.conns.len() <= i {
            self.conns.resize(i + 1, AppConn::default());
        }
        &mut self.conns[i]
    }

    fn start(&mut self, id: ConnId, app: usize, client: bool, now: u64) {
        let bulk_left = match self.cfgs[app].app {
            App::Bulk { bytes } => bytes,
            _ => 0,
        };
        *self.slot(id) = AppConn {
            live: true,
            app: app as u16,
            client,
            bulk_left,
            started_ms: now,
            ..AppConn::default()
        };
    }

    /// Opens the client connections that are due.
    pub fn tick(&mut self, tw: &mut TcpWorker, ctx: &Ctx, now: u64) {
        for p in 0..self.plans.len() {
            if self.plans[p].todo == 0 || now < self.plans[p].next_try_ms {
                continue;
            }
            let app = self.plans[p].app;
            let Some(remote) = self.cfgs[app].connect else {
                continue;
            };
            let Some((local, _port)) = super::endpoint::source_for(ctx, remote.ip()) else {
                // No route yet (the configuration is still being applied): later.
                let plan = &mut self.plans[p];
                plan.next_try_ms = now + 100;
                if plan.no_source_since_ms == 0 {
                    plan.no_source_since_ms = now.max(1);
                } else if !plan.warned && now - plan.no_source_since_ms >= NO_SOURCE_WARN_MS {
                    plan.warned = true;
                    tracing::warn!(
                        "tcp client to {remote}: no route, or the port it leaves from has no {} address; still trying",
                        if remote.is_ipv6() { "global IPv6" } else { "IPv4" }
                    );
                }
                continue;
            };
            self.plans[p].no_source_since_ms = 0;
            while self.plans[p].todo > 0 {
                match tw.connect(local, remote, self.cfgs[app].nodelay, now) {
                    Ok(id) => {
                        self.plans[p].todo -= 1;
                        self.start(id, app, true, now);
                    }
                    Err(e) => {
                        tracing::warn!("tcp client to {remote}: {e:?}; retrying in 1 s");
                        self.plans[p].next_try_ms = now + 1000;
                        break;
                    }
                }
            }
        }
    }

    /// Handles every pending event.
    pub fn run(&mut self, tw: &mut TcpWorker, now: u64) {
        while let Some(ev) = tw.next_event() {
            match ev {
                Event::Acceptable { port } => {
                    let Some(app) = self
                        .cfgs
                        .iter()
                        .position(|a| a.connect.is_none() && a.port == port)
                    else {
                        continue;
                    };
                    while let Some(id) = tw.accept(port) {
                        self.start(id, app, false, now);
                        self.step(tw, id, now);
                    }
                }
                Event::Connected(id) | Event::Ready(id) => {
                    if self.conns.get(id.slot()).is_some_and(|c| c.live) {
                        self.step(tw, id, now);
                    }
                }
                Event::Closed(id, err) => {
                    let Some(c) = self.conns.get_mut(id.slot()) else {
                        continue;
                    };
                    if !c.live {
                        continue;
                    }
                    c.live = false;
                    if c.client && (!c.reported || err.is_some()) {
                        report(c, &self.cfgs[usize::from(c.app)], err, now);
                    }
                }
            }
        }
    }

    /// The application's turn on one connection.
    fn step(&mut self, tw: &mut TcpWorker, id: ConnId, now: u64) {
        let i = id.slot();
        let Apps {
            cfgs,
            heads,
            conns,
            scratch,
            pattern,
            ..
        } = self;
        let Some(c) = conns.get_mut(i) else { return };
        let cfg = &cfgs[usize::from(c.app)];
        match &cfg.app {
            App::Echo => loop {
                let room = tw.send_room(id).min(scratch.len());
                if room == 0 {
                    break;
                }
                let n = tw.read(id, &mut scratch[..room]);
                if n == 0 {
                    break;
                }
                c.got += n as u64;
                tw.write(id, &scratch[..n]);
            },
            App::Discard => loop {
                let n = tw.read(id, scratch.as_mut_slice());
                if n == 0 {
                    break;
                }
                if c.client {
                    // A download from a bulk server: check its pattern.
                    let off = (c.got % PERIOD as u64) as usize;
                    if scratch[..n] != pattern[off..off + n] {
                        c.pattern_errors += scratch[..n]
                            .iter()
                            .zip(&pattern[off..off + n])
                            .filter(|(a, b)| a != b)
                            .count() as u64;
                    }
                }
                c.got += n as u64;
            },
            App::Http { body } => {
                loop {
                    let n = tw.read(id, scratch.as_mut_slice());
                    if n == 0 {
                        break;
                    }
                    c.got += n as u64;
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
                let head = &heads[usize::from(c.app)];
                while c.http_pending > 0 && tw.send_room(id) >= head.len() + body.len() {
                    tw.write(id, head);
                    tw.write(id, body);
                    c.http_pending -= 1;
                }
            }
            App::Bulk { bytes } => {
                while c.bulk_left > 0 {
                    let room = tw.send_room(id).min(pattern.len() - PERIOD);
                    let n = (c.bulk_left.min(room as u64)) as usize;
                    if n == 0 {
                        break;
                    }
                    let off = ((bytes - c.bulk_left) % PERIOD as u64) as usize;
                    let m = tw.write(id, &pattern[off..off + n]);
                    c.bulk_left -= m as u64;
                    if m < n {
                        break;
                    }
                }
                loop {
                    let n = tw.read(id, scratch.as_mut_slice());
                    if n == 0 {
                        break;
                    }
                    c.got += n as u64;
                }
                if c.bulk_left == 0 {
                    tw.shutdown(id);
                }
            }
        }
        // The peer finished sending and everything it sent was answered: close our side too.
        if tw.at_eof(id) && !matches!(cfg.app, App::Bulk { .. }) && c.http_pending == 0 {
            tw.shutdown(id);
        }
        // A client is done once both sides closed (TIME-WAIT follows): report it now.
        if c.client && !c.reported && tw.state(id) == Some(super::tcb::State::TimeWait) {
            report(c, cfg, None, now);
        }
    }
}

/// Logs a client connection's result (once; a later error is logged too).
fn report(c: &mut AppConn, cfg: &AppConfig, err: Option<super::tcb::Error>, now: u64) {
    c.reported = true;
    let ms = now.saturating_sub(c.started_ms).max(1);
    let sent = match cfg.app {
        App::Bulk { bytes } => bytes - c.bulk_left,
        _ => 0,
    };
    let to = cfg.connect.map(|r| r.to_string()).unwrap_or_default();
    match err {
        None => {
            let bits = (sent.max(c.got) as f64) * 8.0 / (ms as f64 / 1000.0) / 1e9;
            tracing::info!(
                "tcp client to {to}: done in {ms} ms, sent {sent} bytes, received {} bytes ({} pattern errors), {bits:.2} Gbit/s",
                c.got,
                c.pattern_errors
            );
        }
        Some(e) => tracing::warn!("tcp client to {to}: failed ({e:?}) after {ms} ms, sent {sent} bytes, received {} bytes", c.got),
    }
}
