//! The engine's own TCP endpoint against the Linux kernel's TCP (issue 11,
//! first applications): a host in a namespace talks to the built-in apps on
//! the engine's address (`[[tcp]]`): echo of 1 MiB verified byte for byte,
//! HTTP/1.1 with keep-alive through curl, a bulk download, discard, and a
//! RST for a port without an application. Addresses from 198.18.0.0/15 only.
use std::process::Stdio;

use pktengine_tests::bg::Bg;
use pktengine_tests::engine::{example, text, Engine, RouterTopo};

const APPS: &str = r#"
[[tcp]]
app = "echo"
port = 7

[[tcp]]
app = "discard"
port = 9

[[tcp]]
app = "http"
port = 80
body = "hello from pktengine\n"

[[tcp]]
app = "bulk"
port = 5001
bytes = 3000000
"#;

fn start(t: &RouterTopo, tag: &str) -> Engine {
    let dir = Engine::dir(tag);
    let cfg = t.config(&example("router.toml"), &dir.join("ctl.sock")) + APPS;
    Engine::start(&t.dut, &dir, &cfg, &[]).expect("engine start")
}

fn py(t: &RouterTopo, e: &Engine, code: &str) -> String {
    let o =
        t.h1.command("timeout")
            .args(["30", "python3", "-c", code])
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

/// A client that echoes 1 MiB of random bytes through `addr`:7 and prints
/// `LEN SAME_HASH REST_AFTER_SHUTDOWN`, then, with `max_mss`, whether the MSS is at most that.
fn echo_mib(addr: &str, max_mss: Option<u32>) -> String {
    let mss_check = max_mss.map_or(String::new(), |m| format!(", mss <= {m}"));
    format!(
        r#"
import os, socket, hashlib, threading
data = os.urandom(1 << 20)
s = socket.create_connection(("{addr}", 7), timeout=10)
mss = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
got = bytearray()
def reader():
    while len(got) < len(data):
        b = s.recv(65536)
        if not b: break
        got.extend(b)
r = threading.Thread(target=reader); r.start()
s.sendall(data)
r.join(20)
s.shutdown(socket.SHUT_WR)
print(len(got), hashlib.sha256(bytes(got)).hexdigest() == hashlib.sha256(data).hexdigest(), repr(s.recv(10)){mss_check})
"#
    )
}

#[test]
fn echo_returns_a_mebibyte_byte_for_byte() {
    let t = RouterTopo::new("tce").unwrap();
    let e = start(&t, "tce");
    let out = py(&t, &e, &echo_mib("198.18.1.1", None));
    assert_eq!(
        out.trim(),
        "1048576 True b''",
        "echo of 1 MiB (then a clean close):\n{out}\n{}",
        e.log()
    );
}

#[test]
fn http_keep_alive_bulk_discard_and_reset() {
    let t = RouterTopo::new("tch").unwrap();
    let e = start(&t, "tch");
    // Two requests on one connection (curl reuses it), each answered with the body.
    let o =
        t.h1.command("curl")
            .args([
                "-sv",
                "-m",
                "10",
                "http://198.18.1.1/a",
                "http://198.18.1.1/b",
            ])
            .output()
            .expect("curl");
    let body = String::from_utf8_lossy(&o.stdout);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "curl: {log}\n{}", e.log());
    assert_eq!(
        body, "hello from pktengine\nhello from pktengine\n",
        "{log}"
    );
    assert!(
        log.contains("Re-using existing") || log.contains("Reusing existing"),
        "keep-alive: the second request must reuse the connection:\n{log}"
    );
    // Bulk: exactly the configured bytes, the engine's pattern, then EOF.
    let out = py(
        &t,
        &e,
        r#"
import socket
s = socket.create_connection(("198.18.1.1", 5001), timeout=10)
got = bytearray()
while True:
    b = s.recv(65536)
    if not b: break
    got.extend(b)
ok = all(got[i] == i % 251 for i in range(len(got)))
print(len(got), ok)
"#,
    );
    assert_eq!(out.trim(), "3000000 True", "bulk download:\n{out}");
    // Discard takes what it is sent and closes when the client does.
    let out = py(
        &t,
        &e,
        r#"
import socket
s = socket.create_connection(("198.18.1.1", 9), timeout=10)
s.sendall(b"x" * 200000)
s.shutdown(socket.SHUT_WR)
print(repr(s.recv(10)))
"#,
    );
    assert_eq!(out.trim(), "b''", "discard closes after the client");
    // A port without an application answers the SYN with a RST.
    let out = py(
        &t,
        &e,
        r#"
import socket
try:
    socket.create_connection(("198.18.1.1", 8), timeout=5); print("connected")
except ConnectionRefusedError:
    print("refused")
"#,
    );
    assert_eq!(out.trim(), "refused");
}

/// A SYN flood from spoofed sources fills the backlog; a real client still
/// connects (SYN cookies) and its data is echoed.
#[test]
fn syn_flood_then_a_real_client_connects_by_cookie() {
    let t = RouterTopo::new("tcf").unwrap();
    let e = start(&t, "tcf");
    let out = py(
        &t,
        &e,
        r#"
import socket, struct, random
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
dst = socket.inet_aton("198.18.1.1")
rnd = random.Random(7)
for i in range(2000):
    src = socket.inet_aton("198.18.1.%d" % rnd.randint(100, 250))
    sport = rnd.randint(1024, 65535)
    tcp = struct.pack("!HHIIBBHHH", sport, 7, rnd.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    ph = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(ph + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    r.sendto(ip + tcp, ("198.18.1.1", 0))
s = socket.create_connection(("198.18.1.1", 7), timeout=10)
s.sendall(b"still here " * 1000)
got = b""
while len(got) < 11000:
    b = s.recv(65536)
    if not b: break
    got += b
print(len(got), got == b"still here " * 1000)
"#,
    );
    assert_eq!(
        out.trim(),
        "11000 True",
        "the real client during the flood:\n{out}\n{}",
        e.log()
    );
    let stats = e.ctl_ok(&["stats"]);
    let cookies: u64 = stats
        .lines()
        .find(|l| l.trim_start().starts_with("tcp-syn-cookie"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        cookies > 1000,
        "the flood beyond the backlog was answered with cookies: {cookies}\n{stats}"
    );
}

/// `[[udp]] app = "echo"`: datagrams to the port come back (IPv4 and IPv6,
/// content unchanged, the kernel accepts their checksums); other UDP ports
/// still get Port Unreachable.
#[test]
fn udp_echo_on_the_engine_addresses() {
    let t = RouterTopo::new("tcu").unwrap();
    let dir = Engine::dir("tcu");
    let cfg = t.config(&example("router.toml"), &dir.join("ctl.sock"))
        + "\n[[udp]]\napp = \"echo\"\nport = 7\n";
    let e = Engine::start(&t.dut, &dir, &cfg, &[]).expect("engine start");
    let out = py(
        &t,
        &e,
        r#"
import socket, os
res = []
for fam, addr in ((socket.AF_INET, "198.18.1.1"), (socket.AF_INET6, "2001:2:0:1::1")):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(3)
    ok = 0
    for n in (0, 1, 100, 1400):
        msg = os.urandom(n)
        s.sendto(msg, (addr, 7))
        try:
            b, frm = s.recvfrom(2000)
            ok += (b == msg and frm[0] == addr and frm[1] == 7)
        except socket.timeout:
            pass
    res.append(ok)
# A port without echo: refused (ICMP port unreachable).
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.connect(("198.18.1.1", 8)); s.send(b"x")
try:
    s.recv(10); res.append("answered")
except ConnectionRefusedError:
    res.append("refused")
except socket.timeout:
    res.append("silent")
print(*res)
"#,
    );
    assert_eq!(
        out.trim(),
        "4 4 refused",
        "UDP echo v4 and v6, and port unreachable elsewhere:\n{out}\n{}",
        e.log()
    );
    let stats = e.ctl_ok(&["stats"]);
    assert!(
        stats
            .lines()
            .any(|l| l.trim_start().starts_with("udp-echo") && l.trim_end().ends_with(" 8")),
        "{stats}"
    );
}

/// The same apps over IPv6: echo of 1 MiB by hash and HTTP through curl,
/// with the MSS an IPv6 path allows (1440 on a 1500-byte MTU).
#[test]
fn echo_and_http_over_ipv6() {
    let t = RouterTopo::new("tc6").unwrap();
    let e = start(&t, "tc6");
    let out = py(&t, &e, &echo_mib("2001:2:0:1::1", Some(1440)));
    assert_eq!(
        out.trim(),
        "1048576 True b'' True",
        "IPv6 echo of 1 MiB:\n{out}\n{}",
        e.log()
    );
    let o =
        t.h1.command("curl")
            .args(["-s", "-g", "-m", "10", "http://[2001:2:0:1::1]/"])
            .output()
            .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello from pktengine\n",
        "{}",
        e.log()
    );
}

/// `ctl tcp show` lists every connection, the workers answering a slice of
/// their table per loop: 600 connections held open by a client (three slices).
#[test]
fn tcp_show_lists_every_open_connection() {
    let t = RouterTopo::new("tcs").unwrap();
    let e = start(&t, "tcs");
    let log = Engine::dir("tcs-client").join("client.log");
    let _client = Bg::spawn(
        &t.h1,
        log,
        &[
            "-c",
            r#"
import socket, time
socks = []
for i in range(600):
    s = socket.create_connection(("198.18.1.1", 7), timeout=10)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    socks.append(s)
print("ready", flush=True)
time.sleep(60)
"#,
        ],
    );
    let out = e.ctl_ok(&["tcp", "show"]);
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("198.18.1.1:7 198.18.1.2:") && l.contains(" Established "))
        .collect();
    let peers: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        (rows.len(), peers.len()),
        (600, 600),
        "each connection once:\n{out}"
    );
}
