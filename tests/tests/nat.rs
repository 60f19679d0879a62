//! NAT44 (NAPT, RFC 4787/5382/5508/7857) on a running engine between real Linux hosts, from
//! examples/nat.toml: h1 (198.18.1.2, port `lan`, nat inside) reaches h2 (198.19.1.2, port `wan`,
//! nat outside) from the pool address 198.19.1.1.
//!
//! Covered: outbound TCP, UDP (also fragmented) and ICMP echo with the source the server sees,
//! endpoint-independent mapping and port preservation, `ctl nat show`; unsolicited inbound
//! traffic and a static forward; the three filtering behaviours; idle expiry; hairpinning; the
//! per-host limit and port exhaustion; ICMP errors from beyond the NAT (time exceeded, port
//! unreachable, fragmentation needed); a pool address that is not a port address; two workers.
//!
//! h2 has no route back to 198.18.0.0/16 (its default route is removed), so an answer can only
//! come back through the NAT. Every test builds its own namespaces (198.18.0.0/15 only) and engine.
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use pktengine_tests::bg::Bg;
use pktengine_tests::engine::{example, text, Engine, RouterTopo};
use pktengine_tests::frames::ipv4_flow;
use pktengine_tests::packet::capture;
use pktengine_tests::{Netns, VethPair};

// ---- topology and engine -----------------------------------------------------------------------

/// The router topology, with h2's default route removed: h2 only knows 198.19.1.0/24.
fn topo(tag: &str, queues: u32) -> RouterTopo {
    let t = RouterTopo::with_queues(tag, queues).unwrap_or_else(|e| panic!("topology: {e}"));
    t.h2.ip(&["route", "del", "default"])
        .unwrap_or_else(|e| panic!("h2 default route: {e}"));
    t
}

/// examples/nat.toml for `t`, with `key = value` lines replaced (each key must occur once).
fn config(t: &RouterTopo, dir: &Path, set: &[(&str, &str)]) -> String {
    let mut cfg = t.config(&example("nat.toml"), &dir.join("ctl.sock"));
    for (key, value) in set {
        let mut n = 0;
        cfg = cfg
            .lines()
            .map(|l| match l.trim_start().strip_prefix(key) {
                Some(rest) if rest.trim_start().starts_with('=') => {
                    n += 1;
                    format!("{key} = {value}\n")
                }
                _ => format!("{l}\n"),
            })
            .collect();
        assert_eq!(n, 1, "examples/nat.toml must set `{key}` exactly once");
    }
    cfg
}

fn start(t: &RouterTopo, dir: &Path, cfg: &str) -> Engine {
    Engine::start(&t.dut, dir, cfg, &[])
        .unwrap_or_else(|e| panic!("engine start: {e}\nconfiguration:\n{cfg}"))
}

/// The engine on examples/nat.toml with `set` applied.
fn engine(t: &RouterTopo, tag: &str, set: &[(&str, &str)]) -> Engine {
    let dir = Engine::dir(tag);
    start(t, &dir, &config(t, &dir, set))
}

/// Engine log, counters and NAT sessions, for assertion messages.
fn diag(e: &Engine) -> String {
    format!(
        "engine log:\n{}\nstats:\n{}\nnat show:\n{}",
        e.log(),
        text(&e.ctl(&["stats"])),
        text(&e.ctl(&["nat", "show"]))
    )
}

fn sh(ns: &Netns, cmd: &str) -> Output {
    ns.command("sh")
        .args(["-c", cmd])
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

/// `ctl nat show`: the session lines and the summary `N sessions, M mappings`.
#[derive(Debug)]
struct NatShow {
    text: String,
    sessions: Vec<String>,
    count: usize,
    mappings: usize,
}

fn nat_show(e: &Engine) -> NatShow {
    NatShow::parse(e.ctl_ok(&["nat", "show"]))
}

impl NatShow {
    fn parse(text: String) -> NatShow {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let summary: Vec<&str> = lines
            .last()
            .map(|l| {
                l.split(|c: char| c.is_whitespace() || c == ',')
                    .filter(|w| !w.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let (count, mappings) = match summary[..] {
            [n, s, m, p] if s.starts_with("session") && p.starts_with("mapping") => {
                match (n.parse(), m.parse()) {
                    (Ok(n), Ok(m)) => (n, m),
                    _ => panic!("nat show: bad summary line:\n{text}"),
                }
            }
            _ => panic!("nat show: the last line must be `N sessions, M mappings`:\n{text}"),
        };
        let sessions: Vec<String> = lines[..lines.len() - 1]
            .iter()
            .filter(|l| words(l).iter().any(|w| ["udp", "tcp", "icmp"].contains(w)))
            .map(|l| l.to_string())
            .collect();
        assert_eq!(
            sessions.len(),
            count,
            "nat show: the summary does not count the listed sessions:\n{text}"
        );
        NatShow {
            text,
            sessions,
            count,
            mappings,
        }
    }

    /// The session line of `proto` that names every endpoint in `ends`: `ADDR:PORT` matches
    /// exactly, a bare `ADDR` matches that address with any port.
    fn find(&self, proto: &str, ends: &[&str]) -> Option<&str> {
        self.sessions.iter().map(String::as_str).find(|l| {
            let ws = words(l);
            ws.contains(&proto)
                && ends.iter().all(|end| {
                    ws.iter().any(|w| {
                        w == end
                            || (!end.contains(':')
                                && w.strip_prefix(end).is_some_and(|r| r.starts_with(':')))
                    })
                })
        })
    }

    fn has(&self, proto: &str, ends: &[&str]) {
        assert!(
            self.find(proto, ends).is_some(),
            "nat show lacks a {proto} session {ends:?}:\n{}",
            self.text
        );
    }
}

/// The words of a `nat show` line: protocol names, addresses, `ADDR:PORT` endpoints.
fn words(line: &str) -> Vec<&str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == ':'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// IPv4 packets the engine sends to h1 while `f` runs (the capture lasts `window`).
fn reaching_h1(t: &RouterTopo, window: Duration, f: impl FnOnce()) -> Vec<String> {
    let mac = t.left.mac(&t.dut, &t.left.b).expect("engine lan MAC");
    let cap = capture(&t.h1, &t.left.a.name, mac, 10_000, window).expect("capture on h1");
    f();
    let frames = cap.finish().expect("capture on h1");
    frames
        .iter()
        .filter_map(|f| ipv4_flow(f))
        .map(|(s, d, sp, dp, p)| format!("proto {p} {s}:{sp} -> {d}:{dp}"))
        .collect()
}

// ---- servers and clients -----------------------------------------------------------------------

/// A file of `size` random bytes as `<engine dir>/www/blob`; returns the directory and the bytes.
fn www(e: &Engine, size: usize) -> (PathBuf, Vec<u8>) {
    let dir = e.dir.join("www");
    std::fs::create_dir_all(&dir).expect("www");
    let mut data = vec![0u8; size];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut data))
        .expect("urandom");
    std::fs::write(dir.join("blob"), &data).expect("blob");
    (dir, data)
}

/// `python3 -m http.server` on `addr:port` serving `dir`.
fn http_server(ns: &Netns, e: &Engine, addr: &str, port: u16, dir: &Path) -> Bg {
    let log = e.dir.join(format!("http-{addr}-{port}.log"));
    Bg::spawn(
        ns,
        log,
        &[
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            addr,
            "--directory",
            dir.to_str().expect("dir"),
        ],
    )
}

/// `curl` of `url` from `ns` (10 s at most); returns the body.
fn fetch(ns: &Netns, url: &str, e: &Engine) -> Vec<u8> {
    let out = e.dir.join("fetched");
    let _ = std::fs::remove_file(&out);
    ok(ns, &format!("curl -sS -m 10 -o {} {url}", out.display()), e);
    std::fs::read(&out).unwrap_or_default()
}

/// Answers every datagram with `PEER_ADDR:PEER_PORT ` padded with dots to the request's length.
const UDP_ECHO: &str = r#"
import select, socket, sys, time
socks = []
for a in sys.argv[1:]:
    ip, port = a.rsplit(':', 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, int(port)))
    socks.append(s)
print('ready', flush=True)
end = time.time() + 120
while time.time() < end:
    for s in select.select(socks, [], [], 0.5)[0]:
        d, peer = s.recvfrom(65535)
        r = ('%s:%d ' % peer).encode()
        s.sendto(r + b'.' * max(0, len(d) - len(r)), peer)
"#;

/// The UDP echo on `binds` (`ADDR:PORT`).
fn udp_echo(ns: &Netns, e: &Engine, binds: &[&str]) -> Bg {
    let mut args = vec!["-c", UDP_ECHO];
    args.extend_from_slice(binds);
    Bg::spawn(
        ns,
        e.dir.join(format!("udp-echo-{}.log", binds.join("-"))),
        &args,
    )
}

/// One connected socket per flow `SPORT:DST:DPORT` (SO_REUSEADDR, so flows may share a source
/// port), a datagram of SIZE bytes on each, 20 ms apart, resent every 0.5 s to flows without an
/// answer, for 3 s at most. Prints one line per flow: `i echo PEER`, `i error ERRNO` or `i silent`.
const UDP_CLIENT: &str = r#"
import errno, select, socket, sys, time
src, size = sys.argv[1], int(sys.argv[2])
socks = []
for f in sys.argv[3:]:
    sport, dst, dport = f.split(':')
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, int(sport)))
    s.connect((dst, int(dport)))
    socks.append(s)
res = [None] * len(socks)
def err(e):
    return 'error ' + errno.errorcode.get(e.errno, str(e.errno))
def send(i):
    try:
        socks[i].send(b'x' * size)
    except OSError as e:
        res[i] = err(e)
for i in range(len(socks)):
    send(i)
    time.sleep(0.02)
end = time.time() + 3
nxt = time.time() + 0.5
while None in res and time.time() < end:
    todo = [s for i, s in enumerate(socks) if res[i] is None]
    for s in select.select(todo, [], [], max(0.0, min(nxt, end) - time.time()))[0]:
        i = socks.index(s)
        try:
            d = s.recv(65535)
            res[i] = 'echo ' + d.split(b' ')[0].decode() if len(d) == size else 'error short-%d' % len(d)
        except OSError as e:
            res[i] = err(e)
    if time.time() >= nxt:
        for i in range(len(socks)):
            if res[i] is None:
                send(i)
        nxt = time.time() + 0.5
for i, v in enumerate(res):
    print(i, v or 'silent')
"#;

/// What a UDP flow got back.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Udp {
    /// The echo, with the source address and port the server saw.
    Echo(String),
    /// An error on the socket (an ICMP error came back), by errno name.
    Error(String),
    Silent,
}

fn echo(seen: &str) -> Udp {
    Udp::Echo(seen.to_string())
}

/// Runs the UDP client in `ns` from `src` for `flows` (source port, destination, destination port).
fn udp_flows(ns: &Netns, src: &str, flows: &[(u16, &str, u16)], size: usize) -> Vec<Udp> {
    let specs: Vec<String> = flows
        .iter()
        .map(|(sp, d, dp)| format!("{sp}:{d}:{dp}"))
        .collect();
    let size = size.to_string();
    let mut args = vec!["-c", UDP_CLIENT, src, &size];
    args.extend(specs.iter().map(String::as_str));
    let o = ns
        .command("python3")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    assert!(o.status.success(), "UDP client: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let res: Vec<Udp> = out
        .lines()
        .map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [_, "echo", peer] => echo(peer),
            [_, "error", errno] => Udp::Error(errno.to_string()),
            _ => Udp::Silent,
        })
        .collect();
    assert_eq!(res.len(), flows.len(), "UDP client output: {out}");
    res
}

/// The hop addresses of a `traceroute -n -q 1` output.
fn hops(out: &str) -> Vec<&str> {
    out.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect()
}

// ---- tests -------------------------------------------------------------------------------------

/// TCP, UDP (small and fragmented) and ping from h1 to h2; h2 sees 198.19.1.1; one external port
/// per inside port (endpoint-independent mapping), the inside port kept; `nat show` lists it all.
#[test]
fn outbound_tcp_udp_icmp_are_translated() {
    let t = topo("nout", 1);
    let e = engine(&t, "nout", &[]);
    let (dir, data) = www(&e, 1 << 20);
    let srv = http_server(&t.h2, &e, "198.19.1.2", 8080, &dir);
    let _echo = udp_echo(&t.h2, &e, &["198.19.1.2:7000", "198.19.1.2:7001"]);

    let r = udp_flows(
        &t.h1,
        "198.18.1.2",
        &[(40000, "198.19.1.2", 7000), (40000, "198.19.1.2", 7001)],
        64,
    );
    assert_eq!(
        r,
        [echo("198.19.1.1:40000"), echo("198.19.1.1:40000")],
        "h2 must see 198.19.1.1:40000 for both destinations (port kept, endpoint-independent mapping)\n{}",
        diag(&e)
    );
    // 4000 bytes: fragmented by h1 and by h2, each way through the NAT.
    let r = udp_flows(&t.h1, "198.18.1.2", &[(40001, "198.19.1.2", 7000)], 4000);
    assert_eq!(
        r,
        [echo("198.19.1.1:40001")],
        "fragmented UDP datagram\n{}",
        diag(&e)
    );

    assert_eq!(
        fetch(&t.h1, "http://198.19.1.2:8080/blob", &e),
        data,
        "HTTP content differs\n{}",
        diag(&e)
    );
    let clients: BTreeSet<String> = srv.http_clients().into_iter().collect();
    assert_eq!(
        clients,
        BTreeSet::from(["198.19.1.1".to_string()]),
        "http.server's clients:\n{}",
        srv.log()
    );

    let out = ok(&t.h1, "ping -c 3 -i 0.2 -W 2 198.19.1.2", &e);
    assert!(out.contains(" 0% packet loss"), "{out}\n{}", diag(&e));

    let show = nat_show(&e);
    show.has(
        "udp",
        &["198.18.1.2:40000", "198.19.1.1:40000", "198.19.1.2:7000"],
    );
    show.has(
        "udp",
        &["198.18.1.2:40000", "198.19.1.1:40000", "198.19.1.2:7001"],
    );
    show.has(
        "udp",
        &["198.18.1.2:40001", "198.19.1.1:40001", "198.19.1.2:7000"],
    );
    show.has("tcp", &["198.18.1.2", "198.19.1.1", "198.19.1.2:8080"]);
    show.has("icmp", &["198.18.1.2", "198.19.1.1", "198.19.1.2"]);
    assert!(
        show.mappings < show.count,
        "the two sessions of 198.18.1.2:40000 share one mapping:\n{}",
        show.text
    );
}

/// Unsolicited traffic from h2 to 198.19.1.1 never reaches h1: the engine itself answers it
/// (ping; UDP: Port Unreachable; TCP: dropped), also on h1's listening port 8000. The forward
/// rule `tcp 198.19.1.1:8080 198.18.1.2:8000` reaches h1's server, which sees h2's own address.
#[test]
fn unsolicited_inbound_is_refused_and_forward_reaches_the_inside_server() {
    let t = topo("nin", 1);
    let e = engine(&t, "nin", &[]);
    let (dir, data) = www(&e, 64 << 10);
    let srv = http_server(&t.h1, &e, "198.18.1.2", 8000, &dir);

    let leaked = reaching_h1(&t, Duration::from_secs(7), || {
        let r = udp_flows(
            &t.h2,
            "198.19.1.2",
            &[(43000, "198.19.1.1", 5000), (43001, "198.19.1.1", 8000)],
            64,
        );
        let refused = Udp::Error("ECONNREFUSED".into());
        assert_eq!(
            r,
            [refused.clone(), refused],
            "UDP to 198.19.1.1 (no mapping): Port Unreachable from the engine\n{}",
            diag(&e)
        );
        let o = sh(&t.h2, "curl -sS -m 2 -o /dev/null http://198.19.1.1:8000/");
        assert_eq!(
            o.status.code(),
            Some(28),
            "TCP to 198.19.1.1:8000 must be dropped (a curl timeout): {}\n{}",
            text(&o),
            diag(&e)
        );
        let out = ok(&t.h2, "ping -c 2 -i 0.2 -W 2 198.19.1.1", &e);
        assert!(
            out.contains("ttl=64"),
            "the engine itself answers ping to 198.19.1.1: {out}"
        );
    });
    assert!(
        leaked.is_empty(),
        "unsolicited traffic reached h1: {leaked:?}\n{}",
        diag(&e)
    );
    assert!(
        srv.http_clients()
            .into_iter()
            .collect::<BTreeSet<_>>()
            .is_empty(),
        "h1's server was reached:\n{}",
        srv.log()
    );
    let counted = drops(&e, "local-port-unreachable") + drops(&e, "nat-no-mapping");
    assert!(
        counted >= 2,
        "neither nat-no-mapping nor the engine's local handling counted the UDP\n{}",
        diag(&e)
    );

    assert_eq!(
        fetch(&t.h2, "http://198.19.1.1:8080/blob", &e),
        data,
        "forwarded HTTP content differs\n{}",
        diag(&e)
    );
    let clients: BTreeSet<String> = srv.http_clients().into_iter().collect();
    assert_eq!(
        clients,
        BTreeSet::from(["198.19.1.2".to_string()]),
        "the forward keeps the remote address:\n{}",
        srv.log()
    );
    nat_show(&e).has("tcp", &["198.18.1.2:8000", "198.19.1.1:8080", "198.19.1.2"]);
}

/// h2 answers from: the address and port h1 sent to, another port, another address.
const FILTER_SERVER: &str = r#"
import select, socket, time
def bound(a, p):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a, p))
    return s
same, other_port, other_addr = bound('198.19.1.2', 7000), bound('198.19.1.2', 7001), bound('198.19.1.3', 7000)
print('ready', flush=True)
end = time.time() + 60
while time.time() < end:
    if select.select([same], [], [], 0.5)[0]:
        d, peer = same.recvfrom(2048)
        same.sendto(b'same', peer)
        other_port.sendto(b'other-port', peer)
        other_addr.sendto(b'other-address', peer)
"#;

/// h1 (unconnected socket on 41000) sends to h2:7000 until h2:7000 answers, then listens 1.5 s
/// more; prints every datagram as `SRC:PORT PAYLOAD`.
const FILTER_CLIENT: &str = r#"
import select, socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('198.18.1.2', 41000))
end, first, nxt = time.time() + 5, None, 0
while time.time() < end and (first is None or time.time() < first + 1.5):
    if first is None and time.time() >= nxt:
        s.sendto(b'hello', ('198.19.1.2', 7000))
        nxt = time.time() + 0.5
    if select.select([s], [], [], 0.05)[0]:
        d, peer = s.recvfrom(2048)
        print('%s:%d %s' % (peer[0], peer[1], d.decode(errors='replace')), flush=True)
        if peer == ('198.19.1.2', 7000) and first is None:
            first = time.time()
"#;

/// The filtering scenario with `filtering` (None: the example's default): h1 must get exactly
/// the replies in `want`; `nat-filtered` counts at least `filtered` drops (exactly 0 if 0).
fn filtering_case(tag: &str, filtering: Option<&str>, want: &[&str], filtered: u64) {
    let t = topo(tag, 1);
    t.right
        .addr(&t.h2, &t.right.b, "198.19.1.3/24")
        .expect("h2 second address");
    let quoted = filtering.map(|f| format!("\"{f}\""));
    let set: Vec<(&str, &str)> = quoted.iter().map(|q| ("filtering", q.as_str())).collect();
    let e = engine(&t, tag, &set);
    let _srv = Bg::spawn(
        &t.h2,
        e.dir.join("filter-server.log"),
        &["-c", FILTER_SERVER],
    );
    let o =
        t.h1.command("python3")
            .args(["-c", FILTER_CLIENT])
            .stdin(Stdio::null())
            .output()
            .expect("python3");
    assert!(o.status.success(), "filter client: {}", text(&o));
    let got: BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    let want: BTreeSet<String> = want.iter().map(|w| w.to_string()).collect();
    let mode = filtering.unwrap_or("the default");
    assert_eq!(
        got,
        want,
        "replies reaching h1 under {mode} filtering\n{}",
        diag(&e)
    );
    let n = drops(&e, "nat-filtered");
    assert!(
        if filtered == 0 { n == 0 } else { n >= filtered },
        "nat-filtered {n}, expected {filtered}\n{}",
        diag(&e)
    );
}

#[test]
fn filtering_default_is_address_and_port_dependent() {
    filtering_case("nfapd", None, &["198.19.1.2:7000 same"], 2);
}

#[test]
fn filtering_address_dependent_admits_other_ports() {
    filtering_case(
        "nfad",
        Some("address-dependent"),
        &["198.19.1.2:7000 same", "198.19.1.2:7001 other-port"],
        1,
    );
}

#[test]
fn filtering_endpoint_independent_admits_everyone() {
    let all = [
        "198.19.1.2:7000 same",
        "198.19.1.2:7001 other-port",
        "198.19.1.3:7000 other-address",
    ];
    filtering_case("nfei", Some("endpoint-independent"), &all, 0);
}

/// udp_timeout_s = icmp_timeout_s = 2: the sessions are gone after 4 s idle, a late reply from
/// h2 does not reach h1, and a new flow works again.
#[test]
fn idle_sessions_expire() {
    let t = topo("nexp", 1);
    let e = engine(
        &t,
        "nexp",
        &[("udp_timeout_s", "2"), ("icmp_timeout_s", "2")],
    );
    let flow = [(42000, "198.19.1.2", 7000)];
    {
        let _echo = udp_echo(&t.h2, &e, &["198.19.1.2:7000"]);
        assert_eq!(
            udp_flows(&t.h1, "198.18.1.2", &flow, 64),
            [echo("198.19.1.1:42000")],
            "the flow before expiry\n{}",
            diag(&e)
        );
        ok(&t.h1, "ping -c 1 -W 2 198.19.1.2", &e);
    }
    let show = nat_show(&e);
    show.has(
        "udp",
        &["198.18.1.2:42000", "198.19.1.1:42000", "198.19.1.2:7000"],
    );
    show.has("icmp", &["198.18.1.2", "198.19.1.1", "198.19.1.2"]);
    assert_eq!(
        show.count, 2,
        "one UDP and one ICMP session:\n{}",
        show.text
    );

    // 4 s idle (twice the timeout), and at most 3 s more for a periodic sweep.
    std::thread::sleep(Duration::from_secs(4));
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut show = nat_show(&e);
    while show.count > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        show = nat_show(&e);
    }
    assert_eq!(
        (show.count, show.mappings),
        (0, 0),
        "sessions and mappings did not expire:\n{}\n{}",
        show.text,
        diag(&e)
    );

    let leaked = reaching_h1(&t, Duration::from_secs(4), || {
        udp_flows(&t.h2, "198.19.1.2", &[(7000, "198.19.1.1", 42000)], 64);
    });
    assert!(
        leaked.is_empty(),
        "a reply after expiry reached h1: {leaked:?}\n{}",
        diag(&e)
    );

    let _echo = udp_echo(&t.h2, &e, &["198.19.1.2:7000"]);
    assert_eq!(
        udp_flows(&t.h1, "198.18.1.2", &flow, 64),
        [echo("198.19.1.1:42000")],
        "a new flow after expiry\n{}",
        diag(&e)
    );
    assert_eq!(
        nat_show(&e).count,
        1,
        "one session after the new flow\n{}",
        diag(&e)
    );
}

/// Two inside subnets: h3 (port lan2) reaches h1's forwarded server at 198.19.1.1:8080, and h1
/// sees the pool address as the client (RFC 4787 REQ-9).
#[test]
fn hairpin_to_a_forward_is_translated_both_ways() {
    let t = topo("nhp", 1);
    let h3 = Netns::new("nhph3").expect("h3");
    let lan2 = VethPair::new(&h3, &t.dut, 1).expect("h3 veth");
    t.dut
        .sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", lan2.b.name), "1")
        .expect("sysctl");
    lan2.addr(&h3, &lan2.a, "198.18.3.2/24")
        .expect("h3 address");
    h3.ip(&["route", "add", "default", "via", "198.18.3.1"])
        .expect("h3 route");
    let dir = Engine::dir("nhp");
    let port = format!(
        "\n[[port]]\nname = \"lan2\"\ninterface = \"{}\"\nmode = \"router\"\naddresses = [\"198.18.3.1/24\"]\nnat = \"inside\"\n",
        lan2.b.name
    );
    let e = start(&t, &dir, &(config(&t, &dir, &[]) + &port));
    let (www_dir, data) = www(&e, 256 << 10);
    let srv = http_server(&t.h1, &e, "198.18.1.2", 8000, &www_dir);

    assert_eq!(
        fetch(&h3, "http://198.19.1.1:8080/blob", &e),
        data,
        "hairpinned HTTP content differs\n{}",
        diag(&e)
    );
    let clients: BTreeSet<String> = srv.http_clients().into_iter().collect();
    assert_eq!(
        clients,
        BTreeSet::from(["198.19.1.1".to_string()]),
        "h1 must see the pool address as client:\n{}",
        srv.log()
    );
}

/// max_per_host = 4: of 8 UDP flows from h1 the first 4 are answered, the rest dropped.
#[test]
fn per_host_limit_drops_further_mappings() {
    let t = topo("nlim", 1);
    let e = engine(&t, "nlim", &[("max_per_host", "4")]);
    let _echo = udp_echo(&t.h2, &e, &["198.19.1.2:7000"]);
    let flows: Vec<(u16, &str, u16)> = (44000..44008).map(|p| (p, "198.19.1.2", 7000)).collect();
    let r = udp_flows(&t.h1, "198.18.1.2", &flows, 64);
    let want: Vec<Udp> = (44000..44008)
        .map(|p| {
            if p < 44004 {
                echo(&format!("198.19.1.1:{p}"))
            } else {
                Udp::Silent
            }
        })
        .collect();
    assert_eq!(
        r,
        want,
        "max_per_host = 4: the first 4 flows answered, the next 4 dropped\n{}",
        diag(&e)
    );
    assert!(
        drops(&e, "nat-host-limit") >= 4,
        "nat-host-limit not counted\n{}",
        diag(&e)
    );
    let show = nat_show(&e);
    assert_eq!(show.count, 4, "max_per_host = 4:\n{}", show.text);
    for p in 44000..44004 {
        show.has(
            "udp",
            &[&format!("198.18.1.2:{p}"), "198.19.1.1", "198.19.1.2:7000"],
        );
    }
}

/// ports = "40000-40003", on_exhaustion = "icmp": four flows get the four external ports, the
/// next ones ICMP administratively prohibited (EHOSTUNREACH on h1's socket).
#[test]
fn port_exhaustion_answers_prohibited() {
    let t = topo("nexh", 1);
    let e = engine(
        &t,
        "nexh",
        &[
            ("ports", "\"40000-40003\""),
            ("on_exhaustion", "\"icmp\""),
            ("forward", "[]"),
        ],
    );
    let _echo = udp_echo(&t.h2, &e, &["198.19.1.2:7000"]);
    let flows: Vec<(u16, &str, u16)> = (50000..50006).map(|p| (p, "198.19.1.2", 7000)).collect();
    let r = udp_flows(&t.h1, "198.18.1.2", &flows, 64);
    let ports: BTreeSet<String> = r[..4]
        .iter()
        .filter_map(|u| {
            if let Udp::Echo(s) = u {
                Some(s.clone())
            } else {
                None
            }
        })
        .collect();
    let want: BTreeSet<String> = (40000..40004).map(|p| format!("198.19.1.1:{p}")).collect();
    assert_eq!(
        ports,
        want,
        "the first four flows take the four external ports: {r:?}\n{}",
        diag(&e)
    );
    let prohibited = Udp::Error("EHOSTUNREACH".into());
    assert_eq!(
        r[4..],
        [prohibited.clone(), prohibited],
        "no port left: ICMP prohibited\n{}",
        diag(&e)
    );
    assert!(
        drops(&e, "nat-exhausted") >= 2,
        "nat-exhausted not counted\n{}",
        diag(&e)
    );
}

/// h2 routes to h4 (198.19.2.2) behind it; h4 knows no route to 198.18/16. Time exceeded,
/// port unreachable (traceroute's last hop) and fragmentation needed from beyond the engine come
/// back translated to h1; ping and HTTP to h4 work.
#[test]
fn icmp_errors_from_outside_are_translated() {
    let t = topo("nicm", 1);
    let h4 = Netns::new("nicmh4").expect("h4");
    let far = VethPair::new(&t.h2, &h4, 1).expect("h2-h4 veth");
    far.addr(&t.h2, &far.a, "198.19.2.1/24")
        .expect("h2 address");
    far.addr(&h4, &far.b, "198.19.2.2/24").expect("h4 address");
    h4.ip(&["route", "add", "default", "via", "198.19.2.1"])
        .expect("h4 route");
    t.h2.ip(&["link", "set", &far.a.name, "mtu", "1280"])
        .expect("mtu");
    h4.ip(&["link", "set", &far.b.name, "mtu", "1280"])
        .expect("mtu");
    t.h2.sysctl("net.ipv4.ip_forward", "1").expect("forwarding");
    for ns in [&t.h2, &h4] {
        ns.sysctl("net.ipv4.icmp_ratelimit", "0")
            .expect("icmp_ratelimit");
    }
    let dir = Engine::dir("nicm");
    let routes = "\n[routing]\nroutes = [\"198.19.2.0/24 via 198.19.1.2\"]\n";
    let e = start(&t, &dir, &(config(&t, &dir, &[]) + routes));

    let o = text(&sh(&t.h1, "ping -c 1 -W 2 -t 2 198.19.2.2"));
    assert!(
        o.contains("From 198.19.1.2") && o.contains("Time to live exceeded"),
        "time exceeded from h2:\n{o}\n{}",
        diag(&e)
    );
    let o = ok(&t.h1, "traceroute -n -q 1 -w 2 -m 5 198.19.2.2", &e);
    assert_eq!(
        hops(&o),
        ["198.18.1.1", "198.19.1.2", "198.19.2.2"],
        "{o}\n{}",
        diag(&e)
    );
    let o = ok(&t.h1, "ping -c 2 -i 0.2 -W 2 198.19.2.2", &e);
    assert!(o.contains(" 0% packet loss"), "{o}");

    let (www_dir, data) = www(&e, 256 << 10);
    let srv = http_server(&h4, &e, "198.19.2.2", 8000, &www_dir);
    assert_eq!(
        fetch(&t.h1, "http://198.19.2.2:8000/blob", &e),
        data,
        "HTTP content from h4 differs\n{}",
        diag(&e)
    );
    assert_eq!(
        srv.http_clients().into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from(["198.19.1.1".to_string()]),
        "h4 must see the pool address as client:\n{}",
        srv.log()
    );

    let o = text(&sh(&t.h1, "ping -c 1 -W 2 -M do -s 1400 198.19.2.2"));
    assert!(
        o.contains("From 198.19.1.2") && o.contains("mtu = 1280"),
        "fragmentation needed from h2:\n{o}\n{}",
        diag(&e)
    );
}

/// The pool address 198.19.1.10 is no port address: the engine answers ARP for it, h2 sees it
/// as the source, and unsolicited traffic to it is dropped as nat-no-mapping (no answer at all).
#[test]
fn pool_address_apart_from_the_port_addresses() {
    let t = topo("npool", 1);
    let e = engine(
        &t,
        "npool",
        &[("pool", "[\"198.19.1.10\"]"), ("forward", "[]")],
    );
    let _echo = udp_echo(&t.h2, &e, &["198.19.1.2:7000"]);
    let r = udp_flows(&t.h1, "198.18.1.2", &[(45000, "198.19.1.2", 7000)], 64);
    assert_eq!(
        r,
        [echo("198.19.1.10:45000")],
        "h2 must see the pool address 198.19.1.10\n{}",
        diag(&e)
    );
    let mac = t.right.mac(&t.dut, &t.right.a).expect("engine wan MAC");
    let mac = mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let neigh = text(
        &t.h2
            .ip(&["neigh", "show", "198.19.1.10"])
            .expect("ip neigh"),
    );
    assert!(
        neigh.contains(&mac),
        "h2 must have learned 198.19.1.10 at the engine's MAC {mac}: {neigh}"
    );

    let leaked = reaching_h1(&t, Duration::from_secs(8), || {
        let r = udp_flows(&t.h2, "198.19.1.2", &[(43000, "198.19.1.10", 5000)], 64);
        assert_eq!(
            r,
            [Udp::Silent],
            "UDP to the pool address without a mapping: no answer\n{}",
            diag(&e)
        );
        let o = sh(&t.h2, "ping -c 2 -i 0.2 -W 1 198.19.1.10");
        assert!(
            !o.status.success(),
            "nobody may answer ping to 198.19.1.10: {}",
            text(&o)
        );
        let o = sh(&t.h2, "curl -sS -m 2 -o /dev/null http://198.19.1.10:8000/");
        assert_eq!(
            o.status.code(),
            Some(28),
            "TCP to 198.19.1.10 must be dropped: {}",
            text(&o)
        );
    });
    assert!(
        leaked.is_empty(),
        "unsolicited traffic reached h1: {leaked:?}\n{}",
        diag(&e)
    );
    assert!(
        drops(&e, "nat-no-mapping") >= 3,
        "nat-no-mapping not counted\n{}",
        diag(&e)
    );
}

/// Two workers on two queues: 40 parallel UDP flows and 20 TCP connections all work both ways.
#[test]
fn two_workers_translate_every_flow() {
    let t = topo("nmq", 2);
    let dir = Engine::dir("nmq");
    let cfg = config(&t, &dir, &[("cores", "[0, 1]")])
        .replace("mode = \"router\"", "mode = \"router\"\nqueues = 2");
    assert_eq!(cfg.matches("queues = 2").count(), 2, "{cfg}");
    let e = start(&t, &dir, &cfg);
    let (www_dir, data) = www(&e, 128 << 10);
    let _srv = http_server(&t.h2, &e, "198.19.1.2", 8080, &www_dir);
    let _echo = udp_echo(&t.h2, &e, &["198.19.1.2:7000"]);

    let flows: Vec<(u16, &str, u16)> = (46000..46040).map(|p| (p, "198.19.1.2", 7000)).collect();
    let r = udp_flows(&t.h1, "198.18.1.2", &flows, 64);
    let seen: BTreeSet<&str> = r
        .iter()
        .filter_map(|u| {
            if let Udp::Echo(s) = u {
                Some(s.as_str())
            } else {
                None
            }
        })
        .collect();
    assert!(
        seen.len() == 40 && seen.iter().all(|s| s.starts_with("198.19.1.1:")),
        "40 flows, 40 external ports of 198.19.1.1: {r:?}\n{}",
        diag(&e)
    );
    for i in 0..20 {
        assert_eq!(
            fetch(&t.h1, "http://198.19.1.2:8080/blob", &e),
            data,
            "curl {i}: content differs\n{}",
            diag(&e)
        );
    }
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

/// The RSS key and indirection table the RSS tests give both ports: Microsoft's key, 16
/// entries over two queues.
const RSS_KEY: &str = "6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:d0:ca:2b:cb:ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:be:ac:01:fa";
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

/// Two workers on two-queue veths with the NIC's RSS given explicitly (`rss_key`,
/// `rss_table`): every UDP flow and TCP connection is translated both ways, and the outside
/// port each flow got, as the server saw it, is one whose return tuple the RSS model gives to
/// the worker that owns the flow (the one the model gives its outbound tuple); every frame one
/// worker handed over the other took (`handoff` = `handoff-in`, none lost). veth has no RSS:
/// its sender's queue choice is not the model's, so frames still cross between the workers
/// here; the port choice is what this test checks from outside.
#[test]
fn two_workers_with_an_rss_model_choose_ports_the_nic_returns_to_the_owner() {
    use engine::rss::{queue_worker, Rss};
    let t = topo("nrss", 2);
    let dir = Engine::dir("nrss");
    let table: Vec<String> = RSS_TABLE.iter().map(u16::to_string).collect();
    let rss_lines = format!(
        "mode = \"router\"\nqueues = 2\nrss_key = \"{RSS_KEY}\"\nrss_table = [{}]",
        table.join(", ")
    );
    let cfg = config(&t, &dir, &[("cores", "[0, 1]")]).replace("mode = \"router\"", &rss_lines);
    assert_eq!(cfg.matches("rss_key").count(), 2, "{cfg}");
    let e = start(&t, &dir, &cfg);
    assert!(
        e.log().contains("port lan: RSS known"),
        "the engine must take the model:\n{}",
        e.log()
    );
    let (www_dir, data) = www(&e, 64 << 10);
    let _srv = http_server(&t.h2, &e, "198.19.1.2", 8080, &www_dir);
    let _echo = udp_echo(&t.h2, &e, &["198.19.1.2:7000"]);

    let model = Rss::new(Rss::parse_key(RSS_KEY).unwrap(), RSS_TABLE.to_vec()).unwrap();
    let ip = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
    let (h1, h2, pool) = (ip("198.18.1.2"), ip("198.19.1.2"), ip("198.19.1.1"));
    let flows: Vec<(u16, &str, u16)> = (46000..46060).map(|p| (p, "198.19.1.2", 7000)).collect();
    let r = udp_flows(&t.h1, "198.18.1.2", &flows, 64);
    let mut misaligned = Vec::new();
    for (&(sp, _, dp), got) in flows.iter().zip(&r) {
        let Udp::Echo(seen) = got else {
            panic!("flow {sp}: {got:?}\n{}", diag(&e));
        };
        let port: u16 = seen
            .strip_prefix("198.19.1.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("flow {sp}: the server saw {seen}"));
        let owner = queue_worker(model.queue_v4(17, h1, h2, sp, dp), 2);
        let back = queue_worker(model.queue_v4(17, h2, pool, dp, port), 2);
        if back != owner {
            misaligned.push((sp, port, owner, back));
        }
    }
    assert!(
        misaligned.is_empty(),
        "flows whose outside port the NIC would deliver to another worker (sport, port, owner, return): {misaligned:?}\n{}",
        diag(&e)
    );
    for i in 0..10 {
        assert_eq!(
            fetch(&t.h1, "http://198.19.1.2:8080/blob", &e),
            data,
            "curl {i}: content differs\n{}",
            diag(&e)
        );
    }
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
