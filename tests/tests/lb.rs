//! The L4 load balancer on a running engine between real Linux hosts, from examples/lb.toml: a
//! client (198.18.1.2, port `lan`) connects to the VIP 198.19.1.100, which is on no subnet (the
//! client's default route points at the engine), and the engine spreads the connections over
//! backends 198.19.2.11, .12, ... on the `srv` subnet, which a Linux bridge in a "switch"
//! namespace joins:
//!
//! ```text
//!  client 198.18.1.2/24 ── lan [engine] srv ── switch (br0) ─┬─ b11 198.19.2.11/24
//!  (default via 198.18.1.1)    VIP 198.19.1.100               ├─ b12 198.19.2.12/24
//!                                                             └─ b13 198.19.2.13/24 ...
//! ```
//!
//! Every backend routes default via 198.19.2.1 (needed in dnat mode) and answers with its own
//! name (`b11`, `b12`, ...), so the client can tell who served it.
//!
//! Covered: the weighted spread over 300 connections with what the backends see as the client
//! (fullnat); round-robin in dnat mode; a long-lived connection that keeps its backend while the
//! pool changes (`ctl lb backend add/del`); maglev consistent hashing of UDP flows; a backend set
//! down (no new connections, its existing one goes on with down_policy keep, then up again; all
//! down: lb-no-backend); VIP ports without a service (lb-no-service, no answer to ping); two workers.
//!
//! Every test builds its own namespaces (198.18.0.0/15 only) and engine.
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pktengine_tests::bg::Bg;
use pktengine_tests::engine::{example, text, Engine};
use pktengine_tests::{Netns, VethPair};

const VIP: &str = "198.19.1.100";
const CLIENT: &str = "198.18.1.2";
const SNAT: &str = "198.19.2.1";

// ---- topology ----------------------------------------------------------------------------------

/// The client, the engine, the switch and `n` backends (`b11` = 198.19.2.11, `b12`, ...).
/// Everything is removed on drop; `sw` and `legs` are only held for that.
#[derive(Debug)]
#[allow(dead_code)]
struct LbTopo {
    client: Netns,
    dut: Netns,
    sw: Netns,
    backends: Vec<Netns>,
    /// client (a) ── dut (b): the engine's `lan` port.
    lan: VethPair,
    /// dut (a) ── switch (b): the engine's `srv` port.
    srv: VethPair,
    /// switch (a) ── backend (b), in the order of `backends`.
    legs: Vec<VethPair>,
}

/// Backend `i`'s name (what it answers with).
fn name(i: usize) -> String {
    format!("b{}", 11 + i)
}

/// Backend `i`'s address.
fn addr(i: usize) -> String {
    format!("198.19.2.{}", 11 + i)
}

/// The index of a backend name (`b12` -> 1).
fn index(name: &str) -> usize {
    name.strip_prefix('b')
        .and_then(|n| n.parse::<usize>().ok())
        .map(|n| n - 11)
        .unwrap_or(usize::MAX)
}

fn quiet_ipv6(ns: &Netns) {
    for key in [
        "net.ipv6.conf.all.disable_ipv6",
        "net.ipv6.conf.default.disable_ipv6",
    ] {
        ns.sysctl(key, "1").unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

impl LbTopo {
    /// `queues` RX/TX queues on the engine's two veths.
    fn new(tag: &str, n: usize, queues: u32) -> LbTopo {
        let t = |what: &str, r: std::io::Result<Output>| {
            r.unwrap_or_else(|e| panic!("topology ({what}): {e}"));
        };
        let client = Netns::new(&format!("{tag}c")).expect("client namespace");
        let dut = Netns::new(&format!("{tag}d")).expect("engine namespace");
        let sw = Netns::new(&format!("{tag}s")).expect("switch namespace");
        quiet_ipv6(&client);
        quiet_ipv6(&sw);
        let lan = VethPair::new(&client, &dut, queues).expect("lan veth");
        let srv = VethPair::new(&dut, &sw, queues).expect("srv veth");
        // The engine owns the DUT's interfaces: keep the DUT kernel's IPv6 quiet on them.
        for end in [&lan.b, &srv.a] {
            dut.sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", end.name), "1")
                .expect("sysctl");
        }
        lan.addr(&client, &lan.a, &format!("{CLIENT}/24"))
            .expect("client address");
        t(
            "client route",
            client.ip(&["route", "add", "default", "via", "198.18.1.1"]),
        );

        t(
            "bridge",
            sw.ip(&[
                "link",
                "add",
                "br0",
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
            ]),
        );
        let mut ports = vec![srv.b.name.clone()];
        let mut backends = Vec::new();
        let mut legs = Vec::new();
        for i in 0..n {
            let b = Netns::new(&format!("{tag}{}", name(i))).expect("backend namespace");
            quiet_ipv6(&b);
            let leg = VethPair::new(&sw, &b, 1).expect("backend veth");
            leg.addr(&b, &leg.b, &format!("{}/24", addr(i)))
                .expect("backend address");
            t(
                "backend route",
                b.ip(&["route", "add", "default", "via", "198.19.2.1"]),
            );
            ports.push(leg.a.name.clone());
            backends.push(b);
            legs.push(leg);
        }
        for p in &ports {
            // Frames cross the bridge as they came: no aggregation into super-frames for the engine.
            t("gro off", sw.exec("ethtool", &["-K", p, "gro", "off"]));
            t("bridge port", sw.ip(&["link", "set", p, "master", "br0"]));
        }
        t("bridge up", sw.ip(&["link", "set", "br0", "up"]));
        LbTopo {
            client,
            dut,
            sw,
            backends,
            lan,
            srv,
            legs,
        }
    }
}

// ---- configuration -----------------------------------------------------------------------------

/// A configuration as blocks: the preamble, then one block per `[table]` / `[[array]]` header.
/// A block is named `engine` (for `[engine]`) or by its `name = "..."` line.
struct Cfg {
    blocks: Vec<Vec<String>>,
}

impl Cfg {
    /// examples/lb.toml with the real interface names and a unique ctl socket.
    fn example(t: &LbTopo, ctl: &Path) -> Cfg {
        let mut blocks: Vec<Vec<String>> = vec![Vec::new()];
        for line in example("lb.toml").lines() {
            let l = if line.trim_start().starts_with("ctl_socket") {
                format!("ctl_socket = \"{}\"", ctl.display())
            } else {
                line.replace("\"pe-lan\"", &format!("\"{}\"", t.lan.b.name))
                    .replace("\"pe-srv\"", &format!("\"{}\"", t.srv.a.name))
            };
            if l.trim_start().starts_with('[') {
                blocks.push(Vec::new());
            }
            blocks.last_mut().expect("block").push(l);
        }
        Cfg { blocks }
    }

    fn block_name(b: &[String]) -> Option<String> {
        let head = b.first()?.trim();
        if head == "[engine]" {
            return Some("engine".into());
        }
        b.iter().find_map(|l| {
            let v = l
                .trim()
                .strip_prefix("name")?
                .trim_start()
                .strip_prefix('=')?;
            Some(v.split('#').next()?.trim().trim_matches('"').to_string())
        })
    }

    fn block(&mut self, block: &str) -> &mut Vec<String> {
        let mut found = self
            .blocks
            .iter_mut()
            .filter(|b| Self::block_name(b).as_deref() == Some(block));
        let b = found
            .next()
            .unwrap_or_else(|| panic!("examples/lb.toml has no block `{block}`"));
        assert!(
            found.next().is_none(),
            "examples/lb.toml has two blocks named `{block}`"
        );
        b
    }

    /// The line range of `key` in `block` (a multi-line array spans several lines).
    fn find(b: &[String], key: &str) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        for (i, l) in b.iter().enumerate() {
            let Some(rest) = l.trim_start().strip_prefix(key) else {
                continue;
            };
            let Some(v) = rest.trim_start().strip_prefix('=') else {
                continue;
            };
            let v = v.split('#').next().unwrap_or("").trim();
            let mut end = i + 1;
            if v.starts_with('[') && !v.contains(']') {
                while end < b.len() && !b[end - 1].split('#').next().unwrap_or("").contains(']') {
                    end += 1;
                }
            }
            out.push(i..end);
        }
        out
    }

    /// Replaces `key = ...` in `block` (it must be there exactly once) by `key = value`.
    fn set(mut self, block: &str, key: &str, value: &str) -> Cfg {
        let b = self.block(block);
        let r = Self::find(b, key);
        assert_eq!(
            r.len(),
            1,
            "examples/lb.toml must set `{key}` exactly once in `{block}`"
        );
        b.splice(r[0].clone(), [format!("{key} = {value}")]);
        self
    }

    /// Adds `key = value` to `block`, which must not have it.
    fn add(mut self, block: &str, key: &str, value: &str) -> Cfg {
        let b = self.block(block);
        assert!(
            Self::find(b, key).is_empty(),
            "examples/lb.toml already sets `{key}` in `{block}`"
        );
        let at = b
            .iter()
            .rposition(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map_or(1, |i| i + 1);
        b.insert(at, format!("{key} = {value}"));
        self
    }

    /// Removes `key` from `block` (it must be there exactly once).
    fn remove(mut self, block: &str, key: &str) -> Cfg {
        let b = self.block(block);
        let r = Self::find(b, key);
        assert_eq!(
            r.len(),
            1,
            "examples/lb.toml must set `{key}` exactly once in `{block}`"
        );
        b.drain(r[0].clone());
        self
    }

    fn text(&self) -> String {
        self.blocks
            .iter()
            .flatten()
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

/// A `backends = [...]` value: backend `i` on `port` with weight `w` for each `(i, w)`.
fn backends(port: u16, list: &[(usize, u32)]) -> String {
    let v: Vec<String> = list
        .iter()
        .map(|(i, w)| format!("\"{}:{port} weight {w}\"", addr(*i)))
        .collect();
    format!("[{}]", v.join(", "))
}

fn start(t: &LbTopo, dir: &Path, cfg: &Cfg) -> Engine {
    let cfg = cfg.text();
    Engine::start(&t.dut, dir, &cfg, &[])
        .unwrap_or_else(|e| panic!("engine start: {e}\nconfiguration:\n{cfg}"))
}

/// Engine log, counters and the balancer's state, for assertion messages.
fn diag(e: &Engine) -> String {
    format!(
        "engine log:\n{}\nstats:\n{}\nlb show:\n{}",
        e.log(),
        text(&e.ctl(&["stats"])),
        text(&e.ctl(&["lb", "show"]))
    )
}

fn sh(ns: &Netns, cmd: &str) -> Output {
    ns.command("timeout")
        .args(["60", "sh", "-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

fn ok(ns: &Netns, cmd: &str, e: &Engine) -> String {
    let o = sh(ns, cmd);
    assert!(
        o.status.success(),
        "`{cmd}` failed:\n{}\n{}",
        text(&o),
        diag(e)
    );
    text(&o)
}

/// Packets of drop reason `reason` in `ctl stats` (summed over stages).
fn drops(e: &Engine, reason: &str) -> u64 {
    e.drop_count(reason)
}

/// The client reaches every backend through the engine's router (this also resolves every
/// neighbour, so no connection below waits for ARP), and the VIP is not on the backends' subnet.
fn warm_up(t: &LbTopo, e: &Engine) {
    for i in 0..t.backends.len() {
        ok(&t.client, &format!("ping -c 1 -W 2 {}", addr(i)), e);
    }
}

// ---- ctl lb show -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    addr: String,
    weight: u64,
    up: bool,
    conns: u64,
    active: u64,
    bytes: u64,
}

/// `ctl lb show`: per service (a line starting with its name and VIP) its backend lines.
#[derive(Debug)]
struct LbShow {
    text: String,
    services: BTreeMap<String, Vec<Row>>,
}

fn lb_show(e: &Engine) -> LbShow {
    LbShow::parse(e.ctl_ok(&["lb", "show"]))
}

impl LbShow {
    /// The services of examples/lb.toml.
    const SERVICES: [(&'static str, &'static str); 2] =
        [("web", "198.19.1.100:80"), ("dns", "198.19.1.100:53")];

    fn parse(text: String) -> LbShow {
        let mut services: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        let mut cur: Option<String> = None;
        for line in text.lines() {
            let ws: Vec<&str> = line
                .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
                .map(|w| w.trim_matches(|c| c == '(' || c == ')'))
                .filter(|w| !w.is_empty())
                .collect();
            if let Some(at) = ws.iter().position(|w| *w == "backend") {
                let svc = cur.clone().unwrap_or_else(|| {
                    panic!("lb show: a backend line before any service:\n{text}")
                });
                let num = |key: &str| -> u64 {
                    ws.iter()
                        .position(|w| *w == key)
                        .and_then(|i| ws.get(i + 1))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| {
                            panic!("lb show: no `{key} N` in the backend line `{line}`:\n{text}")
                        })
                };
                let (up, down) = (ws.contains(&"up"), ws.contains(&"down"));
                assert!(
                    up != down,
                    "lb show: a backend line must say `up` or `down`: `{line}`\n{text}"
                );
                let row = Row {
                    addr: ws.get(at + 1).map(|s| s.to_string()).unwrap_or_default(),
                    weight: num("weight"),
                    up,
                    conns: num("conns"),
                    active: num("active"),
                    bytes: num("bytes"),
                };
                services.get_mut(&svc).expect("service").push(row);
            } else if let Some((name, _)) = Self::SERVICES
                .iter()
                .find(|(n, vip)| ws.first() == Some(n) && line.contains(vip))
            {
                assert!(
                    services.insert(name.to_string(), Vec::new()).is_none(),
                    "lb show: service {name} twice:\n{text}"
                );
                cur = Some(name.to_string());
            }
        }
        for (name, vip) in Self::SERVICES {
            assert!(
                services.contains_key(name),
                "lb show: no line starting with `{name}` and `{vip}`:\n{text}"
            );
        }
        LbShow { text, services }
    }

    fn rows(&self, service: &str) -> &[Row] {
        &self.services[service]
    }

    /// The row of `addr` (`ADDR:PORT`) in `service`; None when it is not in the pool.
    fn row(&self, service: &str, addr: &str) -> Option<&Row> {
        let mut it = self.rows(service).iter().filter(|r| r.addr == addr);
        let r = it.next();
        assert!(
            it.next().is_none(),
            "lb show: {addr} listed twice in {service}:\n{}",
            self.text
        );
        r
    }

    /// The row of `addr`, which must be there.
    fn get(&self, service: &str, addr: &str) -> &Row {
        self.row(service, addr)
            .unwrap_or_else(|| panic!("lb show: {service} has no backend {addr}:\n{}", self.text))
    }

    fn conns(&self, service: &str) -> u64 {
        self.rows(service).iter().map(|r| r.conns).sum()
    }

    fn active(&self, service: &str) -> u64 {
        self.rows(service).iter().map(|r| r.active).sum()
    }

    /// The pool of `service`, sorted: `ADDR:PORT` of every backend.
    fn pool(&self, service: &str) -> BTreeSet<String> {
        self.rows(service).iter().map(|r| r.addr.clone()).collect()
    }
}

// ---- servers and clients -----------------------------------------------------------------------

/// `python3 -m http.server 8000` (HTTP/1.1, so a client may keep its connection) on every backend,
/// serving an index.html that holds the backend's name.
fn http_backends(t: &LbTopo, e: &Engine) -> Vec<Bg> {
    (0..t.backends.len())
        .map(|i| {
            let dir = e.dir.join(format!("www-{}", name(i)));
            std::fs::create_dir_all(&dir).expect("www");
            std::fs::write(dir.join("index.html"), name(i)).expect("index.html");
            let log = e.dir.join(format!("http-{}.log", name(i)));
            let dir = dir.to_str().expect("dir").to_string();
            let a = addr(i);
            Bg::spawn(
                &t.backends[i],
                log,
                &[
                    "-m",
                    "http.server",
                    "8000",
                    "--bind",
                    &a,
                    "--directory",
                    &dir,
                    "--protocol",
                    "HTTP/1.1",
                ],
            )
        })
        .collect()
}

/// Line echo: answers each line of a TCP connection with `NAME LINE`; logs `PEER connect` per
/// connection to stderr. Arguments: NAME ADDR PORT.
const TCP_ECHO: &str = r#"
import socket, sys, threading, time
name, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((ip, port))
ls.listen(128)
ls.settimeout(0.5)
print('ready', flush=True)
def serve(c, peer):
    sys.stderr.write('%s:%d connect\n' % peer)
    c.settimeout(60)
    try:
        for line in c.makefile('rb'):
            c.sendall(name.encode() + b' ' + line)
    except OSError as e:
        sys.stderr.write('%s:%d error %s\n' % (peer + (e,)))
    c.close()
end = time.time() + 180
while time.time() < end:
    try:
        c, peer = ls.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
"#;

fn tcp_echo_backends(t: &LbTopo, e: &Engine) -> Vec<Bg> {
    (0..t.backends.len())
        .map(|i| {
            let log = e.dir.join(format!("echo-{}.log", name(i)));
            Bg::spawn(
                &t.backends[i],
                log,
                &["-c", TCP_ECHO, &name(i), &addr(i), "8000"],
            )
        })
        .collect()
}

/// UDP: answers every datagram with `NAME PEER_ADDR:PEER_PORT`. Arguments: NAME ADDR PORT.
const UDP_NAME: &str = r#"
import select, socket, sys, time
name, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ip, port))
print('ready', flush=True)
end = time.time() + 180
while time.time() < end:
    if select.select([s], [], [], 0.5)[0]:
        d, peer = s.recvfrom(65535)
        s.sendto(('%s %s:%d' % (name, peer[0], peer[1])).encode(), peer)
"#;

fn udp_backends(t: &LbTopo, e: &Engine, port: u16) -> Vec<Bg> {
    (0..t.backends.len())
        .map(|i| {
            let log = e.dir.join(format!("udp-{}.log", name(i)));
            Bg::spawn(
                &t.backends[i],
                log,
                &["-c", UDP_NAME, &name(i), &addr(i), &port.to_string()],
            )
        })
        .collect()
}

/// One connected socket per source port (SO_REUSEADDR), a datagram on each, 2 ms apart, resent
/// every 0.5 s to flows without an answer, for 3 s at most. A connected socket takes answers from
/// DST:DPORT only. Prints one line per flow: `SPORT echo PAYLOAD`, `SPORT error ERRNO` or
/// `SPORT silent`. Arguments: SRC DST DPORT SPORT...
const UDP_CLIENT: &str = r#"
import errno, select, socket, sys, time
src, dst, dport = sys.argv[1], sys.argv[2], int(sys.argv[3])
ports = [int(p) for p in sys.argv[4:]]
socks = []
for p in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, p))
    s.connect((dst, dport))
    socks.append(s)
res = [None] * len(socks)
def err(e):
    return 'error ' + errno.errorcode.get(e.errno, str(e.errno))
def send(i):
    try:
        socks[i].send(b'q')
    except OSError as e:
        res[i] = err(e)
for i in range(len(socks)):
    send(i)
    time.sleep(0.002)
end = time.time() + 3
nxt = time.time() + 0.5
while None in res and time.time() < end:
    todo = [s for i, s in enumerate(socks) if res[i] is None]
    for s in select.select(todo, [], [], max(0.0, min(nxt, end) - time.time()))[0]:
        i = socks.index(s)
        try:
            res[i] = 'echo ' + s.recv(65535).decode(errors='replace').replace('\n', '_')
        except OSError as e:
            res[i] = err(e)
    if time.time() >= nxt:
        for i in range(len(socks)):
            if res[i] is None:
                send(i)
        nxt = time.time() + 0.5
for p, v in zip(ports, res):
    print(p, v or 'silent')
"#;

/// What a UDP flow got back.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Udp {
    /// The answer: the backend's name and the source it saw.
    Echo {
        name: String,
        peer: String,
    },
    /// An error on the socket (an ICMP error came back), by errno name.
    Error(String),
    Silent,
}

/// One UDP flow from CLIENT:sport to `VIP:dport` per source port; the answers by source port.
fn udp_flows(ns: &Netns, dport: u16, sports: &[u16]) -> BTreeMap<u16, Udp> {
    let dport = dport.to_string();
    let ports: Vec<String> = sports.iter().map(|p| p.to_string()).collect();
    let mut args = vec!["-c", UDP_CLIENT, CLIENT, VIP, &dport];
    args.extend(ports.iter().map(String::as_str));
    let o = ns
        .command("timeout")
        .arg("30")
        .arg("python3")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    assert!(o.status.success(), "UDP client: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let res: BTreeMap<u16, Udp> = out
        .lines()
        .filter_map(|l| {
            let ws: Vec<&str> = l.split_whitespace().collect();
            let p = ws.first()?.parse::<u16>().ok()?;
            let v = match ws[1..] {
                ["echo", name, peer] => Udp::Echo {
                    name: name.to_string(),
                    peer: peer.to_string(),
                },
                ["error", errno] => Udp::Error(errno.to_string()),
                _ => Udp::Silent,
            };
            Some((p, v))
        })
        .collect();
    assert_eq!(res.len(), sports.len(), "UDP client output:\n{out}");
    res
}

/// `n` requests, each a new `curl -s -m 5` (a new connection), one after the other, from `ns`
/// to `url`; after 3 failures it stops. Returns (curl exit code, body) per request.
fn curls(ns: &Netns, url: &str, n: usize) -> Vec<(i32, String)> {
    let script = format!(
        "i=0; fails=0\n\
         while [ $i -lt {n} ] && [ $fails -lt 3 ]; do\n\
         \x20 i=$((i+1))\n\
         \x20 body=$(curl -s -m 5 --noproxy '*' {url}); rc=$?\n\
         \x20 [ $rc -eq 0 ] || fails=$((fails+1))\n\
         \x20 echo \"$rc $(printf %s \"$body\" | tr '\\n\\r ' '___' | head -c 100)\"\n\
         done"
    );
    let o = ns
        .command("timeout")
        .args(["300", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("sh");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let (rc, body) = l.split_once(' ').unwrap_or((l, ""));
            (rc.parse().unwrap_or(-1), body.to_string())
        })
        .collect()
}

/// `n` requests to `url` that must all get a complete response from one of the backends;
/// returns the number of responses of each backend (index -> count, every backend listed).
fn requests(t: &LbTopo, e: &Engine, url: &str, n: usize) -> BTreeMap<usize, usize> {
    let res = curls(&t.client, url, n);
    let names: Vec<String> = (0..t.backends.len()).map(name).collect();
    let bad: Vec<String> = res
        .iter()
        .enumerate()
        .filter(|(_, (rc, body))| *rc != 0 || !names.contains(body))
        .map(|(i, (rc, body))| format!("request {i}: curl exit {rc}, body {body:?}"))
        .collect();
    assert!(
        res.len() == n && bad.is_empty(),
        "{n} requests to {url}: {} done, each must get a complete response with a backend's name {names:?}:\n{}\n{}",
        res.len(),
        bad.join("\n"),
        diag(e)
    );
    let mut counts: BTreeMap<usize, usize> = (0..t.backends.len()).map(|i| (i, 0)).collect();
    for (_, body) in &res {
        *counts.entry(index(body)).or_default() += 1;
    }
    counts
}

/// One TCP connection from CLIENT to VIP:80 kept open, driven by stdin: each stdin line CMD is
/// sent (mode `line`: as a line to the echo server; mode `http`: as a keep-alive `GET /`) and the
/// answer printed as `NAME CMD`. Prints `connected SRC:PORT` first; on stdin EOF it half-closes
/// and waits (3 s) for the server's EOF, prints `eof` and exits 0. Errors: `error ...`, exit 1.
const CONN_CLIENT: &str = r#"
import socket, sys
mode = sys.argv[1]
try:
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5)
except OSError as e:
    print('error connect', e, flush=True)
    sys.exit(1)
s.settimeout(3)
print('connected %s:%d' % s.getsockname(), flush=True)
f = s.makefile('rb')
def http():
    s.sendall(b'GET / HTTP/1.1\r\nHost: ' + sys.argv[2].encode() + b'\r\n\r\n')
    status = f.readline().split()
    if len(status) < 2:
        return 'error eof'
    n = None
    while True:
        h = f.readline()
        if not h:
            return 'error eof in headers'
        if h.strip() == b'':
            break
        k, _, v = h.decode().partition(':')
        if k.strip().lower() == 'content-length':
            n = int(v)
    if n is None:
        return 'error no content-length'
    body = f.read(n)
    if status[1] != b'200' or len(body) != n:
        return 'error status %s body %r' % (status[1], body)
    return body.decode()
try:
    for cmd in sys.stdin:
        cmd = cmd.strip()
        if mode == 'line':
            s.sendall(cmd.encode() + b'\n')
            a = f.readline()
            print(a.decode().strip() if a.endswith(b'\n') else 'error eof', flush=True)
        else:
            print(http() + ' ' + cmd, flush=True)
    s.shutdown(socket.SHUT_WR)
    rest = f.read()
    print('eof' if rest == b'' else 'error data after the end %r' % rest, flush=True)
except OSError as e:
    print('error', repr(e), flush=True)
    sys.exit(1)
"#;

/// A long-lived connection through CONN_CLIENT, killed on drop.
struct Conn {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// The client's source address and port.
    local: String,
}

impl Conn {
    /// Connects (at most 10 s) to VIP:80 from the client namespace.
    fn open(ns: &Netns, mode: &str, e: &Engine) -> Conn {
        let mut child = ns
            .command("python3")
            .args(["-u", "-c", CONN_CLIENT, mode, VIP, "80"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut c = Conn {
            child,
            stdin,
            lines,
            local: String::new(),
        };
        match c.lines.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if l.starts_with("connected ") => c.local = l["connected ".len()..].to_string(),
            r => panic!(
                "a TCP connection to {VIP}:80 ({mode}) failed: {r:?}\n{}",
                diag(e)
            ),
        }
        c
    }

    /// Sends `cmd`; the answer (at most 5 s).
    fn say(&mut self, cmd: &str, e: &Engine) -> String {
        let w = self.stdin.as_mut().expect("stdin");
        w.write_all(format!("{cmd}\n").as_bytes())
            .and_then(|_| w.flush())
            .expect("client stdin");
        self.lines
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|r| {
                panic!(
                    "no answer to `{cmd}` on the connection from {} ({r:?})\n{}",
                    self.local,
                    diag(e)
                )
            })
    }

    /// Ends the connection; its last lines and exit status (at most 10 s).
    fn finish(mut self) -> (Vec<String>, Option<ExitStatus>) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rest = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => rest.push(l),
                Err(_) => break,
            }
        }
        let mut st = None;
        while st.is_none() && Instant::now() < deadline + Duration::from_secs(2) {
            st = self.child.try_wait().ok().flatten();
            std::thread::sleep(Duration::from_millis(20));
        }
        (rest, st)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` short connections to VIP:80 (line mode), one after the other: each sends `probe`, reads
/// the answer and closes. Prints the answering name, or `error ...`, per connection.
const SHORT_CLIENT: &str = r#"
import socket, sys
for i in range(int(sys.argv[1])):
    try:
        s = socket.create_connection((sys.argv[2], 80), timeout=3)
        s.sendall(b'probe\n')
        a = s.makefile('rb').readline().split()
        print(a[0].decode() if len(a) == 2 and a[1] == b'probe' else 'error answer %r' % a, flush=True)
        s.close()
    except OSError as e:
        print('error', repr(e), flush=True)
"#;

/// `n` short echo connections that must all be answered; the number per backend index.
fn probes(t: &LbTopo, e: &Engine, n: usize) -> BTreeMap<usize, usize> {
    let o = t
        .client
        .command("timeout")
        .args(["60", "python3", "-c", SHORT_CLIENT, &n.to_string(), VIP])
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let names: Vec<String> = (0..t.backends.len()).map(name).collect();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.len() == n && lines.iter().all(|l| names.iter().any(|x| x == l)),
        "{n} short connections, each answered by a backend:\n{}\n{}",
        text(&o),
        diag(e)
    );
    let mut counts: BTreeMap<usize, usize> = (0..t.backends.len()).map(|i| (i, 0)).collect();
    for l in lines {
        *counts.entry(index(l)).or_default() += 1;
    }
    counts
}

/// Waits until no connection of `service` is active any more (at most `within`).
fn wait_idle(e: &Engine, service: &str, within: Duration) -> LbShow {
    let deadline = Instant::now() + within;
    loop {
        let show = lb_show(e);
        if show.active(service) == 0 {
            return show;
        }
        assert!(
            Instant::now() < deadline,
            "{service}: connections still active after {within:?}:\n{}\n{}",
            show.text,
            diag(e)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn set_state(e: &Engine, service: &str, backend: &str, state: &str) {
    e.ctl_ok(&["lb", "backend", "set", service, backend, state]);
    let show = lb_show(e);
    assert_eq!(
        show.get(service, backend).up,
        state == "up",
        "after `lb backend set {service} {backend} {state}`:\n{}",
        show.text
    );
}

// ---- tests -------------------------------------------------------------------------------------

/// 300 curl requests (each a new connection) to the VIP: every one gets a complete response from
/// one of the three backends, spread by the weights 1:2:3 (each share within 8 points of 1/6,
/// 2/6, 3/6). fullnat: every backend's access log shows the snat address 198.19.2.1 as the client,
/// one line per request it served. `lb show` counts the same connections per backend (300 in
/// all), with the configured weights, all up, and bytes for each.
#[test]
fn weighted_spread_over_three_backends() {
    let t = LbTopo::new("lbw", 3, 1);
    let dir = Engine::dir("lbw");
    let e = start(&t, &dir, &Cfg::example(&t, &dir.join("ctl.sock")));
    let srv = http_backends(&t, &e);
    warm_up(&t, &e);

    let n = 300;
    let counts = requests(&t, &e, &format!("http://{VIP}/"), n);
    for (i, w) in [(0, 1.0), (1, 2.0), (2, 3.0)] {
        let share = counts[&i] as f64 / n as f64;
        assert!(
            (share - w / 6.0).abs() <= 0.08,
            "weights 1:2:3: {} (weight {w}) served {} of {n} ({:.1}%, want {:.1}% ± 8): {counts:?}\n{}",
            name(i),
            counts[&i],
            share * 100.0,
            w / 6.0 * 100.0,
            diag(&e)
        );
    }
    for (i, s) in srv.iter().enumerate() {
        let clients = s.http_clients();
        assert_eq!(
            clients.len(),
            counts[&i],
            "{}'s access log does not match its responses:\n{}",
            name(i),
            s.log()
        );
        assert!(
            clients.iter().all(|c| c == SNAT),
            "fullnat: {} must see only {SNAT} as the client:\n{}",
            name(i),
            s.log()
        );
    }
    let show = lb_show(&e);
    assert_eq!(
        show.conns("web"),
        n as u64,
        "lb show: the conns of web must add up to {n}:\n{}",
        show.text
    );
    for (i, w) in [(0, 1), (1, 2), (2, 3)] {
        let r = show.get("web", &format!("{}:8000", addr(i)));
        assert!(
            r.weight == w && r.up && r.conns == counts[&i] as u64 && r.bytes > 0,
            "lb show: {} must be up with weight {w}, conns {} and some bytes: {r:?}\n{}",
            addr(i),
            counts[&i],
            show.text
        );
    }
    assert_eq!(show.pool("web").len(), 3, "{}", show.text);
}

/// round-robin in dnat mode: 60 requests spread 20/20/20 (± 3), and the backends see the real
/// client address 198.18.1.2 (they answer through the engine, their default route).
#[test]
fn round_robin_in_dnat_mode_shows_the_client() {
    let t = LbTopo::new("lbrr", 3, 1);
    let dir = Engine::dir("lbrr");
    let cfg = Cfg::example(&t, &dir.join("ctl.sock"))
        .set("web", "scheduler", "\"round-robin\"")
        .set("web", "mode", "\"dnat\"")
        .remove("web", "snat");
    let e = start(&t, &dir, &cfg);
    let srv = http_backends(&t, &e);
    warm_up(&t, &e);

    let counts = requests(&t, &e, &format!("http://{VIP}/"), 60);
    assert!(
        counts.values().all(|&c| c.abs_diff(20) <= 3),
        "round-robin: 60 requests must spread 20/20/20 (± 3): {counts:?}\n{}",
        diag(&e)
    );
    for (i, s) in srv.iter().enumerate() {
        let clients = s.http_clients();
        assert_eq!(
            clients.len(),
            counts[&i],
            "{}'s access log does not match its responses:\n{}",
            name(i),
            s.log()
        );
        assert!(
            clients.iter().all(|c| c == CLIENT),
            "dnat: {} must see the real client {CLIENT}:\n{}",
            name(i),
            s.log()
        );
    }
    let show = lb_show(&e);
    assert_eq!(
        show.conns("web"),
        60,
        "lb show: the conns of web must add up to 60:\n{}",
        show.text
    );
}

/// One TCP connection to the VIP sends a line every 200 ms (20 lines) to the line-echo backends;
/// meanwhile b14 is added to the pool and one of the other backends (not the connection's) is
/// removed. Every answer comes from the same backend, the connection ends cleanly (both FINs),
/// and while it lives `lb show` counts it active. 40 new connections after the change go to the
/// new pool only: the removed backend gets none, b14 some; `lb show` counts exactly those.
#[test]
fn long_connection_keeps_its_backend_while_the_pool_changes() {
    let t = LbTopo::new("lbpin", 4, 1);
    let dir = Engine::dir("lbpin");
    let cfg = Cfg::example(&t, &dir.join("ctl.sock"))
        .set("web", "scheduler", "\"round-robin\"")
        .set(
            "web",
            "backends",
            &backends(8000, &[(0, 1), (1, 1), (2, 1)]),
        );
    let e = start(&t, &dir, &cfg);
    let _srv = tcp_echo_backends(&t, &e);
    warm_up(&t, &e);

    let mut c = Conn::open(&t.client, "line", &e);
    let first = c.say("line 0", &e);
    let own = first.split_whitespace().next().unwrap_or("").to_string();
    assert!(
        (0..3).map(name).any(|n| n == own) && first == format!("{own} line 0"),
        "the first answer must come from b11, b12 or b13: {first:?}\n{}",
        diag(&e)
    );
    let own_addr = format!("{}:8000", addr(index(&own)));
    let victim = (0..3).find(|&i| name(i) != own).expect("another backend");
    let victim_addr = format!("{}:8000", addr(victim));
    let added = format!("{}:8000", addr(3));
    let mut answers = vec![first];
    let mut say = |c: &mut Conn, range: std::ops::Range<usize>| {
        for i in range {
            std::thread::sleep(Duration::from_millis(200));
            answers.push(c.say(&format!("line {i}"), &e));
        }
    };
    say(&mut c, 1..5);

    e.ctl_ok(&["lb", "backend", "add", "web", &added, "weight", "1"]);
    let show = lb_show(&e);
    let r = show.get("web", &added);
    assert!(
        r.up && r.weight == 1 && r.conns == 0,
        "the added backend: {r:?}\n{}",
        show.text
    );
    say(&mut c, 5..10);

    e.ctl_ok(&["lb", "backend", "del", "web", &victim_addr]);
    let show = lb_show(&e);
    let want: BTreeSet<String> = (0..4)
        .filter(|&i| i != victim)
        .map(|i| format!("{}:8000", addr(i)))
        .collect();
    assert_eq!(
        show.pool("web"),
        want,
        "the pool after adding {added} and removing {victim_addr}:\n{}",
        show.text
    );
    assert!(
        show.get("web", &own_addr).active >= 1,
        "lb show must count the open connection as active on {own_addr}:\n{}",
        show.text
    );
    say(&mut c, 10..15);

    // New connections while the long one lives: only the new pool.
    let counts = probes(&t, &e, 40);
    assert_eq!(
        counts[&victim],
        0,
        "{} was removed but got new connections: {counts:?}\n{}",
        name(victim),
        diag(&e)
    );
    assert!(
        counts[&3] > 0,
        "the added b14 got none of 40 new connections: {counts:?}\n{}",
        diag(&e)
    );
    say(&mut c, 15..20);

    let want: Vec<String> = (0..20).map(|i| format!("{own} line {i}")).collect();
    assert_eq!(
        answers,
        want,
        "every answer on the connection must come from {own}\n{}",
        diag(&e)
    );
    let show = lb_show(&e);
    for i in (0..4).filter(|&i| i != victim) {
        let conns = counts[&i] as u64 + u64::from(name(i) == own);
        let r = show.get("web", &format!("{}:8000", addr(i)));
        assert_eq!(
            r.conns,
            conns,
            "lb show: conns of {} ({} probes, plus the long connection if its own)\n{}",
            addr(i),
            counts[&i],
            show.text
        );
    }
    let (rest, st) = c.finish();
    assert!(
        rest == ["eof"] && st.is_some_and(|s| s.success()),
        "the connection must end cleanly (half-close, then the server's FIN): {rest:?}, exit {st:?}\n{}",
        diag(&e)
    );
}

/// maglev on a UDP service with udp_timeout_s = 1 and four backends: 300 one-datagram flows from
/// fixed source ports are all answered (each backend gets a fair part); after they expired the
/// same 300 flows, as new connections, land exactly where they did; after removing b12, the
/// flows of the other backends stay where they were (at most 5% move) and b12's spread over all
/// three others. `lb show` counts every round's flows as new connections.
#[test]
fn maglev_moves_only_the_removed_backends_flows() {
    let t = LbTopo::new("lbmag", 4, 1);
    let dir = Engine::dir("lbmag");
    let all = [(0, 1), (1, 1), (2, 1), (3, 1)];
    let cfg = Cfg::example(&t, &dir.join("ctl.sock"))
        .set("dns", "scheduler", "\"maglev\"")
        .set("dns", "udp_timeout_s", "1")
        .set("dns", "backends", &backends(5300, &all));
    let e = start(&t, &dir, &cfg);
    let _srv = udp_backends(&t, &e, 5300);
    warm_up(&t, &e);

    let sports: Vec<u16> = (31000..31300).collect();
    let round = |what: &str| -> BTreeMap<u16, usize> {
        let r = udp_flows(&t.client, 53, &sports);
        let bad: Vec<String> = r
            .iter()
            .filter(|(_, u)| !matches!(u, Udp::Echo { name, peer } if index(name) < 4 && peer.split(':').next() == Some(SNAT)))
            .map(|(p, u)| format!("{p}: {u:?}"))
            .collect();
        assert!(
            bad.is_empty(),
            "{what}: every flow must be answered by a backend that saw {SNAT} (fullnat), from {VIP}:53:\n{}\n{}",
            bad.join("\n"),
            diag(&e)
        );
        r.into_iter()
            .map(|(p, u)| match u {
                Udp::Echo { name, .. } => (p, index(&name)),
                _ => unreachable!(),
            })
            .collect()
    };
    let per_backend = |m: &BTreeMap<u16, usize>| -> BTreeMap<usize, usize> {
        let mut c = BTreeMap::new();
        for b in m.values() {
            *c.entry(*b).or_insert(0) += 1;
        }
        c
    };
    let expiry = Duration::from_secs(10);

    let first = round("first round");
    let spread = per_backend(&first);
    assert!(
        (0..4).all(|b| spread.get(&b).copied().unwrap_or(0) >= 30),
        "maglev must spread 300 flows over 4 backends (at least 30 each): {spread:?}\n{}",
        diag(&e)
    );
    let show = wait_idle(&e, "dns", expiry);
    assert_eq!(
        show.conns("dns"),
        300,
        "lb show: 300 flows, 300 connections:\n{}",
        show.text
    );

    let again = round("second round, same pool");
    let moved: Vec<u16> = sports
        .iter()
        .copied()
        .filter(|p| first[p] != again[p])
        .collect();
    assert!(
        moved.is_empty(),
        "maglev, same pool: the same 5-tuples must land on the same backends; moved: {moved:?}\n{}",
        diag(&e)
    );
    let show = wait_idle(&e, "dns", expiry);
    assert_eq!(
        show.conns("dns"),
        600,
        "lb show: the second round's flows were new connections:\n{}",
        show.text
    );

    let victim = 1;
    let victim_addr = format!("{}:5300", addr(victim));
    e.ctl_ok(&["lb", "backend", "del", "dns", &victim_addr]);
    let show = lb_show(&e);
    assert!(
        show.row("dns", &victim_addr).is_none(),
        "{victim_addr} still in the pool:\n{}",
        show.text
    );
    let before: BTreeMap<usize, u64> = (0..4)
        .filter(|&b| b != victim)
        .map(|b| (b, show.get("dns", &format!("{}:5300", addr(b))).conns))
        .collect();

    let third = round("after removing b12");
    assert!(
        third.values().all(|&b| b != victim),
        "a flow still reached the removed b12: {third:?}\n{}",
        diag(&e)
    );
    let kept: Vec<u16> = sports
        .iter()
        .copied()
        .filter(|p| first[p] != victim)
        .collect();
    let moved: Vec<u16> = kept
        .iter()
        .copied()
        .filter(|p| first[p] != third[p])
        .collect();
    assert!(
        moved.len() * 100 <= kept.len() * 5,
        "maglev: of the {} flows of the remaining backends {} moved (at most 5% may): {moved:?}\n{}",
        kept.len(),
        moved.len(),
        diag(&e)
    );
    let orphans: BTreeMap<usize, usize> = per_backend(
        &sports
            .iter()
            .filter(|p| first[p] == victim)
            .map(|p| (*p, third[p]))
            .collect(),
    );
    assert!(
        (0..4)
            .filter(|&b| b != victim)
            .all(|b| orphans.get(&b).copied().unwrap_or(0) > 0),
        "b12's {} flows must spread over all three remaining backends: {orphans:?}\n{}",
        spread[&victim],
        diag(&e)
    );
    let show = lb_show(&e);
    let got = per_backend(&third);
    for (b, n) in before {
        let r = show.get("dns", &format!("{}:5300", addr(b)));
        assert_eq!(
            r.conns - n,
            got.get(&b).copied().unwrap_or(0) as u64,
            "lb show: {} must count the third round's flows it answered as new connections\n{}",
            addr(b),
            show.text
        );
    }
}

/// A backend set down gets no new connections, while its open (keep-alive HTTP) connection goes on
/// (down_policy keep); `lb show` says `down`, and its conns do not grow. Set up again, it gets
/// requests again. With every backend down a request fails and lb-no-backend is counted.
#[test]
fn backend_set_down_gets_no_new_connections() {
    let t = LbTopo::new("lbdown", 3, 1);
    let dir = Engine::dir("lbdown");
    let e = start(&t, &dir, &Cfg::example(&t, &dir.join("ctl.sock")));
    let _srv = http_backends(&t, &e);
    warm_up(&t, &e);
    assert_eq!(
        drops(&e, "lb-no-backend"),
        0,
        "lb-no-backend before any backend is down\n{}",
        diag(&e)
    );

    let mut c = Conn::open(&t.client, "http", &e);
    let first = c.say("k0", &e);
    let own = first.split_whitespace().next().unwrap_or("").to_string();
    let x = index(&own);
    assert!(
        x < 3 && first == format!("{own} k0"),
        "the keep-alive connection's first answer: {first:?}\n{}",
        diag(&e)
    );
    let down = format!("{}:8000", addr(x));
    set_state(&e, "web", &down, "down");
    let show = lb_show(&e);
    for i in (0..3).filter(|&i| i != x) {
        let r = show.get("web", &format!("{}:8000", addr(i)));
        assert!(r.up, "only {down} was set down:\n{}", show.text);
    }
    let conns_down = show.get("web", &down).conns;
    assert_eq!(
        conns_down, 1,
        "lb show: {down} has served the keep-alive connection only:\n{}",
        show.text
    );
    assert_eq!(
        c.say("k1", &e),
        format!("{own} k1"),
        "down_policy keep: the open connection must go on\n{}",
        diag(&e)
    );

    let counts = requests(&t, &e, &format!("http://{VIP}/"), 60);
    assert_eq!(
        counts[&x],
        0,
        "{own} is down but got new connections: {counts:?}\n{}",
        diag(&e)
    );
    let show = lb_show(&e);
    let r = show.get("web", &down);
    assert!(
        !r.up && r.conns == conns_down,
        "lb show: {down} must stay down with conns {conns_down}: {r:?}\n{}",
        show.text
    );
    assert_eq!(
        c.say("k2", &e),
        format!("{own} k2"),
        "down_policy keep: the open connection must go on\n{}",
        diag(&e)
    );

    set_state(&e, "web", &down, "up");
    let counts = requests(&t, &e, &format!("http://{VIP}/"), 60);
    assert!(
        counts[&x] > 0,
        "{own} is up again but got none of 60 requests: {counts:?}\n{}",
        diag(&e)
    );
    assert_eq!(
        c.say("k3", &e),
        format!("{own} k3"),
        "the open connection after up\n{}",
        diag(&e)
    );
    let (rest, st) = c.finish();
    assert!(
        rest == ["eof"] && st.is_some_and(|s| s.success()),
        "the keep-alive connection's end: {rest:?} {st:?}\n{}",
        diag(&e)
    );

    for i in 0..3 {
        set_state(&e, "web", &format!("{}:8000", addr(i)), "down");
    }
    let res = curls(&t.client, &format!("http://{VIP}/"), 1);
    assert!(
        res.len() == 1 && res[0].0 != 0 && res[0].1.is_empty(),
        "every backend down: the request must fail: {res:?}\n{}",
        diag(&e)
    );
    assert!(
        drops(&e, "lb-no-backend") >= 1,
        "lb-no-backend not counted\n{}",
        diag(&e)
    );
}

/// Packets to the VIP on a port (or protocol) without a service are dropped without an answer
/// and counted as lb-no-service: TCP to port 81 (curl times out, no reset), UDP to 54 and to 80
/// (the web service is TCP), ping. The served port works meanwhile, and only its one connection
/// is counted in `lb show`.
#[test]
fn vip_port_without_a_service_is_dropped() {
    let t = LbTopo::new("lbnos", 3, 1);
    let dir = Engine::dir("lbnos");
    let e = start(&t, &dir, &Cfg::example(&t, &dir.join("ctl.sock")));
    let _srv = http_backends(&t, &e);
    warm_up(&t, &e);
    requests(&t, &e, &format!("http://{VIP}/"), 1);
    assert_eq!(
        drops(&e, "lb-no-service"),
        0,
        "lb-no-service before any unserved packet\n{}",
        diag(&e)
    );

    let o = sh(
        &t.client,
        &format!("curl -sS -m 3 --noproxy '*' http://{VIP}:81/"),
    );
    assert_eq!(
        o.status.code(),
        Some(28),
        "TCP to {VIP}:81 must be dropped (curl timeout 28): {}\n{}",
        text(&o),
        diag(&e)
    );
    let n = drops(&e, "lb-no-service");
    assert!(
        n >= 1,
        "lb-no-service not counted for TCP to port 81\n{}",
        diag(&e)
    );

    let r = udp_flows(&t.client, 54, &[32000]);
    assert_eq!(
        r[&32000],
        Udp::Silent,
        "UDP to {VIP}:54 must get no answer\n{}",
        diag(&e)
    );
    let r = udp_flows(&t.client, 80, &[32001]);
    assert_eq!(
        r[&32001],
        Udp::Silent,
        "UDP to {VIP}:80 (a TCP service) must get no answer\n{}",
        diag(&e)
    );
    let m = drops(&e, "lb-no-service");
    assert!(
        m >= n + 2,
        "lb-no-service must count the UDP datagrams to ports 54 and 80: {n} before, {m} after\n{}",
        diag(&e)
    );

    let o = sh(&t.client, &format!("ping -c 2 -i 0.2 -W 1 {VIP}"));
    assert!(
        !o.status.success(),
        "nobody may answer ping to the VIP: {}\n{}",
        text(&o),
        diag(&e)
    );

    requests(&t, &e, &format!("http://{VIP}/"), 1);
    let show = lb_show(&e);
    assert_eq!(
        show.conns("web"),
        2,
        "lb show: only the two requests to port 80 are connections:\n{}",
        show.text
    );
    assert_eq!(
        show.conns("dns"),
        0,
        "lb show: dns got no connection:\n{}",
        show.text
    );
}

/// Two workers (cores 0 and 1) on two queues per port: 100 requests all complete with a backend's
/// body, every backend gets some, `lb show` counts 100, and both workers did work.
#[test]
fn two_workers_balance_every_connection() {
    let t = LbTopo::new("lbmq", 3, 2);
    let dir = Engine::dir("lbmq");
    let cfg = Cfg::example(&t, &dir.join("ctl.sock"))
        .set("engine", "cores", "[0, 1]")
        .add("lan", "queues", "2")
        .add("srv", "queues", "2");
    let e = start(&t, &dir, &cfg);
    let srv = http_backends(&t, &e);
    warm_up(&t, &e);

    let counts = requests(&t, &e, &format!("http://{VIP}/"), 100);
    assert!(
        counts.values().all(|&c| c > 0),
        "every backend must get some of 100 requests: {counts:?}\n{}",
        diag(&e)
    );
    for (i, s) in srv.iter().enumerate() {
        let clients = s.http_clients();
        assert!(
            clients.len() == counts[&i] && clients.iter().all(|c| c == SNAT),
            "{}'s access log must show {} requests from {SNAT}:\n{}",
            name(i),
            counts[&i],
            s.log()
        );
    }
    let show = lb_show(&e);
    assert_eq!(
        show.conns("web"),
        100,
        "lb show: the conns of web must add up to 100:\n{}",
        show.text
    );
    let stats = e.ctl_ok(&["stats"]);
    for w in ["worker 0", "worker 1"] {
        let busy = stats
            .lines()
            .find(|l| l.starts_with(w))
            .and_then(|l| {
                l.split("with work ")
                    .nth(1)?
                    .split('%')
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0);
        assert!(
            busy > 0.0,
            "{w} did no work: the test did not use both queues\n{stats}"
        );
    }
}

/// Polls `lb show` until `pred` holds for backend `addr` of `web` (at most `within`).
fn wait_backend(
    e: &Engine,
    addr: &str,
    within: Duration,
    pred: impl Fn(&Row, &str) -> bool,
) -> LbShow {
    let end = Instant::now() + within;
    loop {
        let show = lb_show(e);
        let line = show
            .text
            .lines()
            .find(|l| l.contains(&format!("backend {addr} ")))
            .unwrap_or("")
            .to_string();
        if pred(show.get("web", addr), &line) || Instant::now() > end {
            return show;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn health_check_takes_a_dead_backend_out_and_back() {
    let t = LbTopo::new("lbhc", 3, 1);
    let dir = Engine::dir("lbhc");
    let cfg = Cfg::example(&t, &dir.join("ctl.sock"))
        .add("web", "health_check_ms", "200")
        // 1 s for a live backend's answer: under a loaded suite (2 cores,
        // engines in parallel) 300 ms took live backends down once. The
        // dead one answers with a RST at once, so detection is as fast.
        .add("web", "health_check_timeout_ms", "1000")
        .add("web", "health_check_fails", "2");
    let e = start(&t, &dir, &cfg);
    let mut srv = http_backends(&t, &e);
    warm_up(&t, &e);
    let x = 1;
    let dead = format!("{}:8000", addr(x));
    // The server on backend x stops: its kernel answers the probes' SYNs with RST.
    drop(srv.remove(x));
    let show = wait_backend(&e, &dead, Duration::from_secs(5), |r, l| {
        !r.up && l.contains("health-check-failed")
    });
    let r = show.get("web", &dead);
    assert!(
        !r.up,
        "the health check did not take {dead} down within 5 s:\n{}\n{}",
        show.text,
        diag(&e)
    );
    for i in (0..3).filter(|&i| i != x) {
        assert!(
            show.get("web", &format!("{}:8000", addr(i))).up,
            "live backends stay up:\n{}",
            show.text
        );
    }
    let counts = requests(&t, &e, &format!("http://{VIP}/"), 30);
    assert_eq!(
        counts.get(&x).copied().unwrap_or(0),
        0,
        "a dead backend got new connections: {counts:?}\n{}",
        diag(&e)
    );
    // It comes back: one successful probe brings it up again.
    let dirx = e.dir.join(format!("www-{}", name(x)));
    let a = addr(x);
    let _again = Bg::spawn(
        &t.backends[x],
        e.dir.join("http-again.log"),
        &[
            "-m",
            "http.server",
            "8000",
            "--bind",
            &a,
            "--directory",
            dirx.to_str().unwrap_or("."),
            "--protocol",
            "HTTP/1.1",
        ],
    );
    let show = wait_backend(&e, &dead, Duration::from_secs(5), |r, l| {
        r.up && !l.contains("health-check-failed")
    });
    assert!(
        show.get("web", &dead).up,
        "the health check did not bring {dead} back within 5 s:\n{}",
        show.text
    );
    let counts = requests(&t, &e, &format!("http://{VIP}/"), 30);
    assert!(
        counts.get(&x).copied().unwrap_or(0) > 0,
        "{dead} is back but got nothing: {counts:?}\n{}",
        diag(&e)
    );
    // An operator's down is not undone by a passing health check.
    set_state(&e, "web", &dead, "down");
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        !lb_show(&e).get("web", &dead).up,
        "a health check brought up a backend set down by hand"
    );
}

/// The RSS model the RSS test gives both ports: Microsoft's key, 16 entries over two queues.
const RSS_KEY: &str = "\"6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:d0:ca:2b:cb:ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:be:ac:01:fa\"";
const RSS_TABLE: [u16; 16] = [0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0];

/// Stage `stage`'s packets in `ctl --json stats`, per worker (workers 0 and 1).
fn stage_per_worker(e: &Engine, stage: &str) -> [u64; 2] {
    let doc: serde_json::Value =
        serde_json::from_str(&e.ctl_ok(&["--json", "stats"])).expect("stats json");
    let mut v = [0; 2];
    for r in doc["records"].as_array().expect("records") {
        if r["group"] == "stage" && r["stage"] == stage {
            if let (Some(w), Some(n)) = (r["worker"].as_u64(), r["value"].as_u64()) {
                v[w as usize % 2] += n;
            }
        }
    }
    v
}

/// Two workers on two-queue veths, full NAT, the NIC's RSS given explicitly: 40 requests all
/// complete, and every source port the backends see (captured on the switch) is one whose
/// reply tuple the RSS model gives to a queue of the port's owner (the worker whose partition
/// holds it); every frame one worker handed over the other took.
#[test]
fn two_workers_with_an_rss_model_choose_source_ports_replies_come_back_to() {
    use engine::rss::{queue_worker, Rss};
    let t = LbTopo::new("lbrss", 3, 2);
    let dir = Engine::dir("lbrss");
    let table = format!(
        "[{}]",
        RSS_TABLE
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let cfg = Cfg::example(&t, &dir.join("ctl.sock"))
        .set("engine", "cores", "[0, 1]")
        .add("lan", "queues", "2")
        .add("srv", "queues", "2")
        .add("lan", "rss_key", RSS_KEY)
        .add("lan", "rss_table", &table)
        .add("srv", "rss_key", RSS_KEY)
        .add("srv", "rss_table", &table);
    let e = start(&t, &dir, &cfg);
    let srv = http_backends(&t, &e);
    warm_up(&t, &e);
    // The engine's frames toward the backends, as the switch receives them.
    let link = text(
        &t.dut
            .ip(&["-o", "link", "show", &t.srv.a.name])
            .expect("ip link"),
    );
    let mac: Vec<u8> = link
        .split("link/ether ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(|m| {
            m.split(':')
                .filter_map(|b| u8::from_str_radix(b, 16).ok())
                .collect()
        })
        .unwrap_or_default();
    let mac: [u8; 6] = mac
        .try_into()
        .unwrap_or_else(|_| panic!("engine srv MAC: {link}"));
    let cap = pktengine_tests::packet::capture(
        &t.sw,
        &t.srv.b.name,
        mac,
        100_000,
        Duration::from_secs(15),
    )
    .expect("capture on the switch");
    let counts = requests(&t, &e, &format!("http://{VIP}/"), 40);
    assert_eq!(counts.values().sum::<usize>(), 40, "{}", diag(&e));
    drop(srv);
    let frames = cap.finish().expect("capture");
    let model = Rss::new(
        Rss::parse_key(RSS_KEY.trim_matches('"')).unwrap(),
        RSS_TABLE.to_vec(),
    )
    .unwrap();
    let ip = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
    let mut ports = BTreeSet::new();
    let mut misaligned = Vec::new();
    for f in &frames {
        let Some((src, dst, sport, dport, 6)) = pktengine_tests::frames::ipv4_flow(f) else {
            continue;
        };
        if src.to_string() != SNAT || !ports.insert(sport) {
            continue;
        }
        let owner = engine::conntrack::port_owner(sport, 2);
        let back = queue_worker(model.queue_v4(6, u32::from(dst), ip(SNAT), dport, sport), 2);
        if back != owner {
            misaligned.push((sport, owner, back));
        }
    }
    assert!(
        ports.len() >= 40,
        "the switch must see the 40 connections' source ports: {ports:?}\n{}",
        diag(&e)
    );
    assert!(
        misaligned.is_empty(),
        "source ports whose replies the NIC would give another worker (port, owner, return): {misaligned:?}"
    );
    let (out, inn) = (
        stage_per_worker(&e, "handoff"),
        stage_per_worker(&e, "handoff-in"),
    );
    assert_eq!(
        (out[0], out[1]),
        (inn[1], inn[0]),
        "what one worker handed the other took: out {out:?}, in {inn:?}\n{}",
        diag(&e)
    );
    assert_eq!(drops(&e, "handoff-full"), 0, "{}", diag(&e));
    eprintln!(
        "handed out per worker {out:?}, taken {inn:?} (veth: its queue choice is not the model's)"
    );
}
