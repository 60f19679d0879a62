//! The engine's TCP against the Linux kernel's at scale (issue 11): 100 MB
//! both ways through the echo app verified by hash, 1,000 concurrent
//! connections, HTTP keep-alive from Python's http.client, the engine as
//! a client of kernel servers over IPv4 and IPv6 (upload and download,
//! pattern verified), and
//! two workers sharing connections whatever queue their segments arrive on.
//! Addresses from 198.18.0.0/15 and 2001:2::/48 only.
use std::process::Stdio;
use std::time::{Duration, Instant};

use pktengine_tests::bg::Bg;
use pktengine_tests::engine::{example, text, Engine, RouterTopo};

const SERVERS: &str = r#"
[[tcp]]
app = "echo"
port = 7

[[tcp]]
app = "http"
port = 80
body = "hello from pktengine\n"
"#;

fn start(t: &RouterTopo, tag: &str, cores: &str, extra: &str) -> Engine {
    let dir = Engine::dir(tag);
    let cfg = t
        .config(&example("router.toml"), &dir.join("ctl.sock"))
        .replace("cores = [1]", &format!("cores = {cores}"));
    // One queue per worker on every port.
    let queues = cores.matches(',').count() + 1;
    let cfg = cfg.replace(
        "mode = \"router\"",
        &format!("mode = \"router\"\nqueues = {queues}"),
    ) + SERVERS
        + extra;
    Engine::start(&t.dut, &dir, &cfg, &[]).expect("engine start")
}

fn py(t: &RouterTopo, e: &Engine, secs: u32, code: &str) -> String {
    let o =
        t.h1.command("timeout")
            .args([&secs.to_string(), "python3", "-c", code])
            .stdin(Stdio::null())
            .output()
            .expect("python3");
    assert!(
        o.status.success(),
        "client failed:\n{}\nengine log:\n{}\nstats:\n{}",
        text(&o),
        e.log(),
        text(&e.ctl(&["stats"]))
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A field of the `tcp worker N: name value ...` lines of `ctl stats`,
/// summed over the workers whose scope starts with `scope` (`tcp worker`,
/// `tcp worker 1`); or a stage's count (`stage handoff`).
fn stat(e: &Engine, scope: &str, name: &str) -> u64 {
    let s = e.ctl_ok(&["stats"]);
    if let Some(stage) = name.strip_prefix("stage ") {
        return s
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next()? == stage)
                    .then(|| w.next()?.parse::<u64>().ok())
                    .flatten()
            })
            .sum();
    }
    s.lines()
        .filter(|l| l.starts_with(scope) && l.starts_with("tcp worker"))
        .filter_map(|l| {
            let (_, fields) = l.split_once(": ")?;
            let w: Vec<&str> = fields.split_whitespace().collect();
            w.chunks(2)
                .find(|p| p[0] == name)
                .and_then(|p| p.get(1)?.parse::<u64>().ok())
        })
        .sum()
}

/// Waits until every TCP connection of the engine is gone (at most `within`).
fn wait_empty(e: &Engine, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let n = stat(e, "tcp worker", "conns");
        if n == 0 || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

const ECHO_100MB: &str = r#"
import os, socket, hashlib, threading, time
N = 100 * 1000 * 1000
data = os.urandom(1 << 20) * 100
data = data[:N]
s = socket.create_connection(("198.18.1.1", 7), timeout=30)
# No per-call timeout: Python bounds a whole sendall by it; the test's own timeout bounds the run.
s.settimeout(None)
h = hashlib.sha256()
got = 0
def reader():
    global got
    while got < N:
        b = s.recv(1 << 20)
        if not b: break
        h.update(b)
        got += len(b)
t0 = time.time()
r = threading.Thread(target=reader); r.start()
s.sendall(data)
r.join(240)
dt = time.time() - t0
s.shutdown(socket.SHUT_WR)
rest = s.recv(10)
print(got, h.hexdigest() == hashlib.sha256(data).hexdigest(), repr(rest), "%.1f Mbit/s" % (2 * N * 8 / dt / 1e6))
"#;

#[test]
fn echo_100_megabytes_both_ways_verified_by_hash() {
    let t = RouterTopo::new("tie").unwrap();
    let e = start(&t, "tie", "[1]", "");
    let out = py(&t, &e, 180, ECHO_100MB);
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        &f[..3],
        &["100000000", "True", "b''"],
        "echo of 100 MB (then a clean close):\n{out}\n{}",
        e.log()
    );
    eprintln!("echo 100 MB both ways: {}", f[3..].join(" "));
    // The worker's CPU time (from /proc, read by the control thread) shows the work.
    let stats = e.ctl_ok(&["stats"]);
    let cpu: f64 = stats
        .lines()
        .find(|l| l.starts_with("worker 0: loops"))
        .and_then(|l| l.split("cpu ").nth(1))
        .and_then(|v| v.split('s').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        cpu > 0.2,
        "200 MB through the worker took CPU time: {cpu} s\n{stats}"
    );
    assert_eq!(
        wait_empty(&e, Duration::from_secs(5)),
        0,
        "the connection is gone after the close"
    );
}

/// The same 100 MB through the engine's impairment stage: 1% of the frames
/// each way dropped and 1% reordered (seeded). Both TCPs recover (the
/// engine's by fast retransmit, NewReno and its RTO), every byte arrives.
#[test]
fn echo_100_megabytes_with_loss_and_reordering() {
    let t = RouterTopo::new("til").unwrap();
    let e = start(&t, "til", "[1]", "\n[impair]\ndrop = 0.01\nreorder = 0.01\nseed = 7\nports = [\"lan\"]\ndirection = \"both\"\n");
    let out = py(&t, &e, 280, ECHO_100MB);
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        &f[..3],
        &["100000000", "True", "b''"],
        "echo of 100 MB through 1% loss and reordering:\n{out}\n{}",
        e.log()
    );
    let stats = e.ctl_ok(&["stats"]);
    let dropped = e.drop_count("impair-drop");
    assert!(
        dropped > 1000,
        "the stage did drop frames: {dropped}\n{stats}"
    );
    eprintln!(
        "echo 100 MB both ways, 1% loss + 1% reorder: {} ({dropped} frames dropped)",
        f[3..].join(" ")
    );
    assert_eq!(
        wait_empty(&e, Duration::from_secs(5)),
        0,
        "the connection is gone after the close"
    );
}

/// 1,000 connections open at once (more than the SYN backlog: some by
/// cookie), each sends its own message and gets it back.
#[test]
fn a_thousand_concurrent_connections() {
    let t = RouterTopo::new("tic").unwrap();
    let e = start(&t, "tic", "[1]", "");
    let out = py(
        &t,
        &e,
        120,
        r#"
import socket, selectors, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
N = 1000
socks = []
for i in range(N):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("198.18.1.1", 7))
    socks.append(s)
sel = selectors.DefaultSelector()
for i, s in enumerate(socks):
    sel.register(s, selectors.EVENT_WRITE, i)
want = {i: ("conn %d " % i).encode() * 50 for i in range(N)}
got = {i: b"" for i in range(N)}
sent = set()
import time
deadline = time.time() + 90
while len([i for i in got if len(got[i]) >= len(want[i])]) < N and time.time() < deadline:
    for key, ev in sel.select(1):
        i = key.data; s = key.fileobj
        if ev & selectors.EVENT_WRITE and i not in sent:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                continue
            s.sendall(want[i]); sent.add(i)
            sel.modify(s, selectors.EVENT_READ, i)
        elif ev & selectors.EVENT_READ:
            b = s.recv(65536)
            if b: got[i] += b
            else: sel.unregister(s)
# All of them open at the same time, then closed.
ok = sum(1 for i in range(N) if got[i] == want[i])
for s in socks: s.close()
print(ok)
"#,
    );
    assert_eq!(
        out.trim(),
        "1000",
        "every one of 1,000 concurrent connections echoed:\n{out}\n{}",
        e.log()
    );
    assert!(stat(&e, "tcp worker", "accepted") >= 1000);
    assert_eq!(wait_empty(&e, Duration::from_secs(10)), 0, "all closed");
}

/// Python's http.client keeps one connection for 200 requests.
#[test]
fn http_keep_alive_from_python() {
    let t = RouterTopo::new("tik").unwrap();
    let e = start(&t, "tik", "[1]", "");
    let out = py(
        &t,
        &e,
        60,
        r#"
import http.client
c = http.client.HTTPConnection("198.18.1.1", 80, timeout=10)
socks = set(); ok = 0
for i in range(200):
    c.request("GET", "/%d" % i, headers={"Connection": "keep-alive"})
    r = c.getresponse()
    body = r.read()
    socks.add(c.sock.getsockname())
    ok += (r.status == 200 and body == b"hello from pktengine\n" and r.getheader("Content-Length") == "21")
print(ok, len(socks))
"#,
    );
    assert_eq!(out.trim(), "200 1", "200 answers on one connection:\n{out}");
    assert_eq!(
        stat(&e, "tcp worker", "accepted"),
        1,
        "one connection accepted"
    );
}

/// The kernel's servers in h2; the engine connects: uploads 20 MB (the
/// server checks every byte) and downloads 20 MB (the engine checks them).
#[test]
fn the_engine_as_a_client_of_kernel_servers() {
    engine_as_client("tiq", "198.19.1.2", "198.19.1.1");
}

/// The same over IPv6: the engine connects from its `wan` port's global
/// address (not its link-local one), resolving the server by neighbour
/// discovery.
#[test]
fn the_engine_as_an_ipv6_client_of_kernel_servers() {
    engine_as_client("ti6", "2001:2:0:2::2", "2001:2:0:2::1");
}

/// The engine as a client of kernel servers on `server` (in h2), uploading
/// and downloading 20 MB, every byte checked; the servers see the engine's
/// connections come from `source`.
fn engine_as_client(tag: &str, server: &str, source: &str) {
    let t = RouterTopo::new(tag).unwrap();
    let dir = Engine::dir(&format!("{tag}-srv"));
    let family = if server.contains(':') {
        "socket.AF_INET6"
    } else {
        "socket.AF_INET"
    };
    let code = r#"
import socket, sys, threading
N = 20 * 1000 * 1000
lock = threading.Lock()
def say(*words):
    # print() writes its pieces one by one: the two threads' lines interleaved.
    with lock:
        print(*words, file=sys.stderr, flush=True)
def listener(port):
    l = socket.socket(FAMILY); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((SERVER, port)); l.listen(8)
    return l
def upload():
    c, a = listener(5001).accept()
    say("upload from", a[0])
    got = 0; bad = 0
    pat = bytes(i % 251 for i in range(251 * 4096))
    while True:
        b = c.recv(1 << 20)
        if not b: break
        off = got % 251
        if b != (pat[off:] + pat * (len(b) // len(pat) + 2))[:len(b)]: bad += 1
        got += len(b)
    c.close()
    say("upload", got, bad)
def download():
    c, a = listener(5002).accept()
    say("download to", a[0])
    pat = bytes(i % 251 for i in range(251 * 4000))
    sent = 0
    while sent < N:
        n = min(len(pat), N - sent)
        c.sendall(pat[:n]); sent += n
    c.shutdown(socket.SHUT_WR)
    c.recv(10); c.close()
    say("download", sent)
ts = [threading.Thread(target=upload), threading.Thread(target=download)]
for x in ts: x.start()
print("ready", flush=True)
for x in ts: x.join()
"#
    .replace("FAMILY", family)
    .replace("SERVER", &format!("{server:?}"));
    let srv = Bg::spawn(&t.h2, dir.join("server.log"), &["-c", &code]);
    // `ADDR:PORT` or `[ADDR]:PORT`, as SocketAddr writes it (and the engine logs it).
    let ep = |port: u16| {
        let ip: std::net::IpAddr = server.parse().unwrap();
        std::net::SocketAddr::new(ip, port).to_string()
    };
    let (up, down) = (ep(5001), ep(5002));
    let e = start(
        &t,
        tag,
        "[1]",
        &format!(
            r#"
[[tcp]]
app = "bulk"
connect = "{up}"
bytes = 20000000

[[tcp]]
app = "discard"
connect = "{down}"
"#
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(srv.log().contains("upload ") && e.log().matches("tcp client to").count() >= 2)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = e.log();
    assert!(
        srv.log().contains("upload 20000000 0"),
        "the server got all 20 MB, every byte right:\n{}\nengine:\n{log}",
        srv.log()
    );
    for what in ["upload from", "download to"] {
        assert!(
            srv.log().contains(&format!("{what} {source}\n")),
            "the engine connects from {source}:\n{}",
            srv.log()
        );
    }
    assert!(
        log.contains(&format!("tcp client to {up}: done")) && log.contains("sent 20000000 bytes"),
        "the engine reports the upload:\n{log}"
    );
    assert!(
        log.contains(&format!("tcp client to {down}: done"))
            && log.contains("received 20000000 bytes (0 pattern errors)"),
        "the engine downloaded 20 MB, every byte right:\n{log}\nserver:\n{}",
        srv.log()
    );
    assert_eq!(stat(&e, "tcp worker", "connected"), 2);
    // The upload (the engine closed first) in TIME-WAIT in `ctl tcp show`, from the engine's address.
    let show = e.ctl_ok(&["tcp", "show"]);
    assert!(
        show.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() > 2
                && w[0]
                    .rsplit_once(':')
                    .map(|(a, _)| a.trim_matches(['[', ']']))
                    == Some(source)
                && w[1] == up
                && w[2] == "TimeWait"
        }),
        "a row from {source} to {up}:\n{show}"
    );
}

/// A client whose server has no route (here: an IPv6 prefix the engine
/// has no route to) keeps trying, and says so once in the log.
#[test]
fn a_client_without_a_route_says_so() {
    let t = RouterTopo::new("tin").unwrap();
    let e = start(
        &t,
        "tin",
        "[1]",
        "\n[[tcp]]\napp = \"discard\"\nconnect = \"[2001:2:0:99::2]:5002\"\n",
    );
    let want = "tcp client to [2001:2:0:99::2]:5002: no route, or the port it leaves from has no global IPv6 address; still trying";
    let deadline = Instant::now() + Duration::from_secs(15);
    while !e.log().contains(want) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // It retries every 100 ms: a second warning would come within a second.
    std::thread::sleep(Duration::from_secs(1));
    let log = e.log();
    assert_eq!(log.matches(want).count(), 1, "warned once:\n{log}");
    assert_eq!(stat(&e, "tcp worker", "conns"), 0);
}

/// Two workers on two queues: the kernel picks the queue of each flow, the
/// owner rule picks the worker; every connection works, handed over or not,
/// and the engine's own client connections too.
#[test]
fn two_workers_share_the_connections() {
    let t = RouterTopo::with_queues("tiw", 2).unwrap();
    let dir = Engine::dir("tiw-srv");
    let srv = Bg::spawn(
        &t.h2,
        dir.join("server.log"),
        &[
            "-c",
            r#"
import socket, sys, threading
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("198.19.1.2", 5001)); l.listen(64)
print("ready", flush=True)
def one(c):
    got = 0
    while True:
        b = c.recv(1 << 20)
        if not b: break
        got += len(b)
    c.close()
    with lock:  # print() writes its pieces one by one: threads interleave them
        sys.stderr.write("got %d\n" % got); sys.stderr.flush()
lock = threading.Lock()
while True:
    c, a = l.accept()
    threading.Thread(target=one, args=(c,)).start()
"#,
        ],
    );
    let e = start(
        &t,
        "tiw",
        "[0, 1]",
        r#"
[[tcp]]
app = "bulk"
connect = "198.19.1.2:5001"
bytes = 1000000
connections = 8
"#,
    );
    let out = py(
        &t,
        &e,
        60,
        r#"
import socket, threading
N = 64
res = [None] * N
def one(i):
    s = socket.create_connection(("198.18.1.1", 7), timeout=20)
    msg = ("conn %d " % i).encode() * 20000
    r = threading.Thread(target=lambda: res.__setitem__(i, s.makefile("rb").read(len(msg)) == msg))
    r.start(); s.sendall(msg); r.join(30); s.close()
ts = [threading.Thread(target=one, args=(i,)) for i in range(N)]
for x in ts: x.start()
for x in ts: x.join()
print(sum(1 for v in res if v))
"#,
    );
    assert_eq!(
        out.trim(),
        "64",
        "every connection echoed with two workers:\n{out}\n{}",
        e.log()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while srv.log().matches("got 1000000").count() < 8 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        srv.log().matches("got 1000000").count(),
        8,
        "eight client connections from both workers:\n{}\n{}",
        srv.log(),
        e.log()
    );
    let per_worker: Vec<u64> = (0..2)
        .map(|w| stat(&e, &format!("tcp worker {w}:"), "accepted"))
        .collect();
    assert_eq!(per_worker.iter().sum::<u64>(), 64, "{per_worker:?}");
    assert!(
        per_worker.iter().all(|&n| n > 0),
        "both workers own connections: {per_worker:?}\n{}",
        e.ctl_ok(&["stats"])
    );
    assert!(
        stat(&e, "", "stage handoff") > 0,
        "segments that arrived on the other worker were handed over"
    );
}
