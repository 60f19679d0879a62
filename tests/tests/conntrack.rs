//! The stateful filter (issue 22) between real Linux hosts, with the kernel as the reference:
//! the classic firewall of examples/firewall.toml on the engine, and the same policy in
//! nftables on a Linux router in the same topology, run through the same checks at the same
//! time (two topologies, one per gateway):
//!
//! ```text
//!  h1 198.18.1.2, 2001:2:0:1::2 (inside) ── gateway ── h2 198.19.1.2, 2001:2:0:2::2 (outside)
//!  gateway: ct state established,related accept; ct state invalid drop;
//!           iif lan ct state new accept; policy drop on wan
//! ```
//!
//! Checked, IPv4 and IPv6: h1 browses (curl, also a 4 MB download, checked byte for byte) and
//! pings h2; h2 cannot open connections to h1; the ICMP error h2 sends about h1's datagram to
//! a closed port comes back (related); UDP replies pass, unsolicited UDP does not; a forged
//! ACK from h2 never reaches h1 and is counted as invalid; a UDP flow idle past its (short,
//! 2 s) time-out is gone: h2's late answer is new and dropped. The kernel runs with
//! `nf_conntrack_tcp_loose = 0` (the engine's default; Linux's is 1) and the same UDP
//! time-outs.
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use pktengine_tests::bg::Bg;
use pktengine_tests::engine::{example, text, Engine, RouterTopo};
use pktengine_tests::packet::capture;
use pktengine_tests::Netns;

const H1: &str = "198.18.1.2";
const H2: &str = "198.19.1.2";
const H1_6: &str = "2001:2:0:1::2";
const H2_6: &str = "2001:2:0:2::2";

fn sh(ns: &Netns, cmd: &str) -> Output {
    ns.command("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

/// The gateway under test.
enum Gateway {
    Engine(Engine),
    /// The Linux router: the nft ruleset is in the DUT namespace.
    Kernel,
}

impl Gateway {
    /// Packets the `ct state invalid drop` rule dropped.
    fn invalid_dropped(&self, t: &RouterTopo) -> u64 {
        match self {
            Gateway::Engine(e) => {
                let show = e.ctl_ok(&["filter", "show"]);
                let line = show
                    .lines()
                    .find(|l| l.contains("ct state invalid drop"))
                    .unwrap_or_else(|| panic!("{show}"));
                line.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{show}"))
            }
            Gateway::Kernel => {
                let o = sh(&t.dut, "nft list chain inet fw forward");
                let s = text(&o);
                let line = s
                    .lines()
                    .find(|l| l.contains("ct state invalid"))
                    .unwrap_or_else(|| panic!("{s}"));
                let w: Vec<&str> = line.split_whitespace().collect();
                let i = w
                    .iter()
                    .position(|x| *x == "packets")
                    .unwrap_or_else(|| panic!("{line}"));
                w[i + 1].parse().unwrap()
            }
        }
    }

    fn diag(&self) -> String {
        match self {
            Gateway::Engine(e) => format!(
                "engine log:\n{}\nstats:\n{}\nfilter:\n{}\nconnections:\n{}",
                e.log(),
                text(&e.ctl(&["stats"])),
                text(&e.ctl(&["filter", "show"])),
                text(&e.ctl(&["conn", "show"]))
            ),
            Gateway::Kernel => "kernel gateway".into(),
        }
    }
}

/// examples/firewall.toml for `t` with 2 s UDP time-outs.
fn engine(t: &RouterTopo, tag: &str) -> Gateway {
    let dir = Engine::dir(tag);
    let cfg = t
        .config(&example("firewall.toml"), &dir.join("ctl.sock"))
        .lines()
        .map(|l| {
            if l.starts_with("udp_timeout_s") || l.starts_with("udp_stream_timeout_s") {
                format!("{} = 2\n", l.split(' ').next().unwrap())
            } else {
                format!("{l}\n")
            }
        })
        .collect::<String>();
    assert!(cfg.contains("udp_timeout_s = 2\n") && cfg.contains("udp_stream_timeout_s = 2\n"));
    Gateway::Engine(
        Engine::start(&t.dut, &dir, &cfg, &[]).unwrap_or_else(|e| panic!("engine: {e}")),
    )
}

/// The same policy in nftables on the DUT namespace's kernel.
fn kernel(t: &RouterTopo) -> Gateway {
    let (lan, wan) = (&t.left.b.name, &t.right.a.name);
    for dev in [lan, wan] {
        t.dut
            .sysctl(&format!("net.ipv6.conf.{dev}.disable_ipv6"), "0")
            .unwrap();
    }
    t.left.addr(&t.dut, &t.left.b, "198.18.1.1/24").unwrap();
    t.left.addr(&t.dut, &t.left.b, "2001:2:0:1::1/64").unwrap();
    t.right.addr(&t.dut, &t.right.a, "198.19.1.1/24").unwrap();
    t.right
        .addr(&t.dut, &t.right.a, "2001:2:0:2::1/64")
        .unwrap();
    for (k, v) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv6.conf.all.forwarding", "1"),
        ("net.netfilter.nf_conntrack_tcp_loose", "0"),
        ("net.netfilter.nf_conntrack_udp_timeout", "2"),
        ("net.netfilter.nf_conntrack_udp_timeout_stream", "2"),
    ] {
        t.dut.sysctl(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
    }
    let rules = format!(
        "table inet fw {{\n chain forward {{\n  type filter hook forward priority 0; policy accept;\n  \
         ct state established,related counter accept\n  ct state invalid counter drop\n  \
         iifname \"{lan}\" ct state new counter accept\n  iifname \"{wan}\" counter drop\n }}\n}}\n"
    );
    let mut nft = t
        .dut
        .command("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft");
    std::io::Write::write_all(nft.stdin.as_mut().unwrap(), rules.as_bytes()).unwrap();
    assert!(nft.wait().unwrap().success(), "nft -f:\n{rules}");
    // The conntrack sysctls exist once conntrack is in use in the namespace: set them again.
    for (k, v) in [
        ("net.netfilter.nf_conntrack_tcp_loose", "0"),
        ("net.netfilter.nf_conntrack_udp_timeout", "2"),
        ("net.netfilter.nf_conntrack_udp_timeout_stream", "2"),
    ] {
        t.dut.sysctl(k, v).unwrap();
    }
    Gateway::Kernel
}

/// What the hosts saw; the same for both gateways.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    browse: [bool; 2],
    download_intact: bool,
    ping: [bool; 2],
    open_in: [bool; 2],
    related: [String; 2],
    udp_reply: [bool; 2],
    unsolicited_udp: [bool; 2],
    forged_ack_reached_h1: [bool; 2],
    forged_ack_counted_invalid: bool,
    reply_before_timeout: bool,
    reply_after_timeout: bool,
}

const EXPECTED: Seen = Seen {
    browse: [true, true],
    download_intact: true,
    ping: [true, true],
    open_in: [false, false],
    related: [String::new(), String::new()],
    udp_reply: [true, true],
    unsolicited_udp: [false, false],
    forged_ack_reached_h1: [false, false],
    forged_ack_counted_invalid: true,
    reply_before_timeout: true,
    reply_after_timeout: false,
};

fn expected() -> Seen {
    Seen {
        related: ["refused".into(), "refused".into()],
        ..EXPECTED
    }
}

/// A UDP client on h1: sends one datagram from `sport` (0: any) to `dst` and prints what
/// came back within `wait` s: `reply`, `refused` (the ICMP error reached it) or `timeout`.
const UDP_CLIENT: &str = r#"
import socket, sys
dst, port, sport, wait = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ':' in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind(('::' if fam == socket.AF_INET6 else '0.0.0.0', sport))
s.connect((dst, port))
s.settimeout(wait)
s.send(b'hello')
try:
    s.recv(100)
    print('reply')
except ConnectionRefusedError:
    print('refused')
except socket.timeout:
    print('timeout')
"#;

/// A UDP listener: prints `ready`, then `got` if a datagram arrives within argv[2] s, else `none`.
const UDP_LISTEN: &str = r#"
import socket, sys
addr, wait = sys.argv[1], float(sys.argv[2])
ip, port = addr.rsplit(':', 1)
fam = socket.AF_INET6 if ':' in ip else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((ip.strip('[]'), int(port)))
s.settimeout(wait)
print('ready', flush=True)
try:
    s.recv(100)
    print('got', flush=True)
except socket.timeout:
    print('none', flush=True)
"#;

/// Sends one UDP datagram from `sport` to `dst:port`.
const UDP_SEND: &str = r#"
import socket, sys
dst, port, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ':' in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind(('::' if fam == socket.AF_INET6 else '0.0.0.0', sport))
s.sendto(b'unasked', (dst, port))
"#;

/// Echoes UDP on port argv[1] (IPv4 and IPv6).
const UDP_ECHO: &str = r#"
import select, socket, sys
port = int(sys.argv[1])
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(('0.0.0.0', port))
b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); b.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); b.bind(('::', port))
print('ready', flush=True)
while True:
    r, _, _ = select.select([a, b], [], [])
    for s in r:
        d, peer = s.recvfrom(2000)
        s.sendto(d, peer)
"#;

/// A lone TCP ACK (no connection) from h2:5555 to argv[1]:argv[2], with a valid checksum.
const FORGED_ACK: &str = r#"
import socket, struct, sys
dst, port = sys.argv[1], int(sys.argv[2])
src = sys.argv[3]
v6 = ':' in dst
hdr = struct.pack('!HHIIBBHHH', 5555, port, 0x12345678, 0x9abcdef0, 5 << 4, 0x10, 64240, 0, 0)
if v6:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_TCP)
    s.setsockopt(socket.IPPROTO_IPV6, 7, 16)  # IPV6_CHECKSUM: the kernel fills it at offset 16
    s.sendto(hdr, (dst, 0))
else:
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(hdr))
    data = pseudo + hdr
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    csum = ~total & 0xffff
    hdr = hdr[:16] + struct.pack('!H', csum) + hdr[18:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    s.sendto(hdr, (dst, 0))
"#;

fn py(ns: &Netns, script: &str, args: &[&str]) -> String {
    let o = ns
        .command("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Runs a listener on `ns` while `f` runs; true if a datagram arrived.
fn arrives(ns: &Netns, log: PathBuf, addr: &str, f: impl FnOnce()) -> bool {
    let mut child = ns
        .command("python3")
        .args(["-u", "-c", UDP_LISTEN, addr, "1.5"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    f();
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let _ = child.wait();
    line.trim() == "got"
}

/// Whether a TCP segment from port 5555 reaches h1 while `f` runs.
fn reaches_h1(t: &RouterTopo, f: impl FnOnce()) -> bool {
    let mac = t.left.mac(&t.dut, &t.left.b).unwrap();
    let cap = capture(&t.h1, &t.left.a.name, mac, 100, Duration::from_millis(1500)).unwrap();
    f();
    let frames = cap.finish().unwrap();
    frames.iter().any(|f| {
        let l4 = match (f.get(12..14), f.get(14)) {
            (Some([0x08, 0x00]), Some(&v)) => f
                .get(14 + usize::from(v & 15) * 4..)
                .filter(|_| f.get(23) == Some(&6)),
            (Some([0x86, 0xdd]), _) => f.get(54..).filter(|_| f.get(20) == Some(&6)),
            _ => None,
        };
        l4.is_some_and(|l| l.len() >= 2 && u16::from_be_bytes([l[0], l[1]]) == 5555)
    })
}

/// The checks, on topology `t` through gateway `gw`; `dir` holds the files.
fn run(t: &RouterTopo, gw: &Gateway, dir: &Path) -> Seen {
    // Servers: HTTP with a 4 MB file and UDP echo on h2, HTTP on h1.
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let blob: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(www.join("blob"), &blob).unwrap();
    let www_s = www.to_str().unwrap();
    let _h2_web = Bg::spawn(
        &t.h2,
        dir.join("h2-http.log"),
        &[
            "-m",
            "http.server",
            "8080",
            "--bind",
            "::",
            "--directory",
            www_s,
        ],
    );
    let _h1_web = Bg::spawn(
        &t.h1,
        dir.join("h1-http.log"),
        &[
            "-m",
            "http.server",
            "8081",
            "--bind",
            "::",
            "--directory",
            www_s,
        ],
    );
    let _echo = Bg::spawn(&t.h2, dir.join("h2-echo.log"), &["-c", UDP_ECHO, "7000"]);
    let curl = |ns: &Netns, url: &str, secs: u32| {
        sh(ns, &format!("curl -sS -g -m {secs} -o /dev/null {url}"))
            .status
            .success()
    };
    let mut s = EXPECTED.clone();
    // h1 browses (with retries while the gateway and the servers settle).
    s.browse = [H2, H2_6].map(|a| {
        let host = if a.contains(':') { format!("[{a}]") } else { a.to_string() };
        sh(&t.h1, &format!("curl -sS -g -m 3 --retry 10 --retry-connrefused --retry-delay 0 -o /dev/null http://{host}:8080/")).status.success()
    });
    let got = dir.join("got");
    s.download_intact = sh(
        &t.h1,
        &format!("curl -sS -m 20 -o {} http://{H2}:8080/blob", got.display()),
    )
    .status
    .success()
        && std::fs::read(&got).is_ok_and(|b| b == blob);
    s.ping = [H2, H2_6].map(|a| {
        sh(&t.h1, &format!("ping -c 2 -i 0.2 -W 2 {a}"))
            .status
            .success()
    });
    // h2 cannot open a connection in.
    s.open_in = [
        format!("http://{H1}:8081/"),
        format!("http://[{H1_6}]:8081/"),
    ]
    .map(|u| curl(&t.h2, &u, 2));
    // An ICMP error about h1's datagram to a closed port of h2 comes back.
    s.related = [H2, H2_6].map(|a| py(&t.h1, UDP_CLIENT, &[a, "9", "0", "2"]));
    // UDP: a reply passes; a datagram nobody asked for does not.
    s.udp_reply = [H2, H2_6].map(|a| py(&t.h1, UDP_CLIENT, &[a, "7000", "0", "2"]) == "reply");
    s.unsolicited_udp =
        [(H1, "198.18.1.2:7001"), (H1_6, "[2001:2:0:1::2]:7001")].map(|(a, listen)| {
            arrives(&t.h1, dir.join("listen.log"), listen, || {
                py(&t.h2, UDP_SEND, &[a, "7001", "7003"]);
            })
        });
    // A lone ACK from h2 to h1's web server: invalid, never reaches h1, counted.
    let before = gw.invalid_dropped(t);
    s.forged_ack_reached_h1 = [(H1, H2), (H1_6, H2_6)].map(|(a, src)| {
        reaches_h1(t, || {
            py(&t.h2, FORGED_ACK, &[a, "8081", src]);
        })
    });
    s.forged_ack_counted_invalid = gw.invalid_dropped(t) >= before + 2;
    s
}

#[test]
fn the_classic_firewall_matches_nftables() {
    let results: Vec<(String, Seen, String)> = std::thread::scope(|sc| {
        let e = sc.spawn(|| {
            let t = RouterTopo::new("cte").unwrap();
            let gw = engine(&t, "cte");
            let dir = match &gw {
                Gateway::Engine(e) => e.dir.clone(),
                Gateway::Kernel => unreachable!(),
            };
            let mut s = run(&t, &gw, &dir);
            timeout_check(&t, &dir, &mut s);
            let conn = match &gw {
                Gateway::Engine(e) => {
                    json_conn_show(e);
                    text(&e.ctl(&["conn", "show", H1]))
                }
                Gateway::Kernel => String::new(),
            };
            (
                "engine".to_string(),
                s,
                format!("{}\nconn show {H1}:\n{conn}", gw.diag()),
            )
        });
        let k = sc.spawn(|| {
            let t = RouterTopo::new("ctk").unwrap();
            let gw = kernel(&t);
            let dir = Engine::dir("ctk");
            let mut s = run(&t, &gw, &dir);
            timeout_check(&t, &dir, &mut s);
            let ct = text(&sh(
                &t.dut,
                "nft list ruleset; cat /proc/net/nf_conntrack 2>/dev/null",
            ));
            ("kernel".to_string(), s, ct)
        });
        vec![e.join().unwrap(), k.join().unwrap()]
    });
    let want = expected();
    for (who, seen, diag) in &results {
        assert_eq!(
            seen, &want,
            "{who} differs from the expected outcome\n{diag}"
        );
    }
    assert_eq!(
        results[0].1, results[1].1,
        "the engine and the kernel disagree"
    );
    let conn = &results[0].2;
    assert!(
        conn.contains("ESTABLISHED") || conn.contains("TIME_WAIT"),
        "conn show lists the TCP connections:\n{conn}"
    );
}

/// `ctl --json conn show H1` is one document jq reads: the conn-show schema, only
/// connections of h1 (as original or reply end), h1's TCP connections among them with
/// their ports, and as many records as the summary says it listed.
fn json_conn_show(e: &Engine) {
    let o = e.ctl(&["--json", "conn", "show", H1]);
    assert!(o.status.success(), "ctl --json conn show: {}", text(&o));
    let checks = format!(
        r#".schema == "pktengine/conn-show" and .version == 1
        and (.records | length) == .summary.connections_listed
        and all(.records[]; [.original.src, .original.dst, .reply.src, .reply.dst] | index("{H1}") != null)
        and any(.records[]; .proto == "tcp" and .original.dport == 8080 and .original.sport != null and .original.icmp_id == null)"#
    );
    let mut jq = std::process::Command::new("jq")
        .args(["-e", &checks])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jq (scripts/deps.sh installs it)");
    use std::io::Write;
    jq.stdin.take().unwrap().write_all(&o.stdout).unwrap();
    let r = jq.wait_with_output().unwrap();
    assert!(
        r.status.success() && String::from_utf8_lossy(&r.stdout).trim() == "true",
        "jq: {}\n{}",
        text(&r),
        String::from_utf8_lossy(&o.stdout)
    );
}

/// The time-out check: a flow opened from h1:40600 to h2:7002 (closed: h2 only answers
/// with an ICMP error); h2's datagram from 7002 to h1:40600 right away is the flow's reply
/// and passes; once the flow has been idle for 5 s (UDP time-outs 2 s on both gateways) it
/// is gone and the same datagram is new from wan: dropped.
fn timeout_check(t: &RouterTopo, dir: &Path, s: &mut Seen) {
    py(&t.h1, UDP_SEND, &[H2, "7002", "40600"]);
    s.reply_before_timeout = arrives(&t.h1, dir.join("t1.log"), "198.18.1.2:40600", || {
        py(&t.h2, UDP_SEND, &[H1, "40600", "7002"]);
    });
    std::thread::sleep(Duration::from_secs(5));
    s.reply_after_timeout = arrives(&t.h1, dir.join("t2.log"), "198.18.1.2:40600", || {
        py(&t.h2, UDP_SEND, &[H1, "40600", "7002"]);
    });
}
