//! `[routing] kernel_control` (issue 23): routing daemons in the engine's
//! namespace talk through the engine's ports. BGP (TCP 179, both as the
//! listening and as the connecting side) and OSPF (IP protocol 89 to
//! 224.0.0.5) to the engine's addresses reach the kernel; traffic across
//! the engine (BGP between two hosts included) is still forwarded, the
//! engine still resolves its own next hops (from copies of the ARP/ND the
//! kernel now gets) and still answers pings to its addresses.
//!
//! The DUT namespace has forwarding off (a new namespace's default): a
//! transit frame wrongly passed to its kernel would be lost, not forwarded.
use std::process::Stdio;
use std::time::Duration;

use pktengine_tests::bg::Bg;
use pktengine_tests::engine::{example, text, Engine, RouterTopo};
use pktengine_tests::Netns;

/// The router example with `kernel_control` set, IPv6 back on the DUT's
/// interfaces (the kernel must own the ports' IPv6 addresses to speak from them).
fn start(t: &RouterTopo, tag: &str, on: bool) -> Engine {
    for end in [&t.left.b, &t.right.a] {
        t.dut
            .sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", end.name), "0")
            .unwrap();
    }
    let dir = Engine::dir(tag);
    let cfg = t
        .config(&example("router.toml"), &dir.join("ctl.sock"))
        .replace(
            "[routing]\n",
            &format!("[routing]\nkernel_control = {on}\n"),
        );
    assert!(cfg.contains("kernel_control"), "{cfg}");
    Engine::start(&t.dut, &dir, &cfg, &[]).expect("engine start")
}

fn sh(ns: &Netns, cmd: &str) -> std::process::Output {
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
        "`{cmd}` failed:\n{}\nengine log:\n{}\nstats:\n{}",
        text(&o),
        e.log(),
        text(&e.ctl(&["stats"]))
    );
    text(&o)
}

/// A TCP server on `addr`:`port` in `ns` answering each connection's first
/// message with `pong:` and the message, then closing.
fn tcp_server(ns: &Netns, e: &Engine, addr: &str, port: u16) -> Bg {
    let script = format!(
        "import socket\n\
         fam = socket.AF_INET6 if ':' in '{addr}' else socket.AF_INET\n\
         s = socket.socket(fam, socket.SOCK_STREAM)\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('{addr}', {port}))\n\
         s.listen(8)\n\
         print('ready', flush=True)\n\
         while True:\n\
         \x20   c, peer = s.accept()\n\
         \x20   c.settimeout(5)\n\
         \x20   d = c.recv(65536)\n\
         \x20   c.sendall(b'pong:' + d)\n\
         \x20   c.close()\n"
    );
    Bg::spawn(
        ns,
        e.dir.join(format!("server-{port}.log")),
        &["-c", &script],
    )
}

/// Connects from `ns` to `addr`:`port`, sends `msg`, returns the answer (or the error).
fn tcp_client(ns: &Netns, addr: &str, port: u16, msg: &str) -> String {
    let script = format!(
        "import socket, sys\n\
         fam = socket.AF_INET6 if ':' in '{addr}' else socket.AF_INET\n\
         s = socket.socket(fam, socket.SOCK_STREAM)\n\
         s.settimeout(3)\n\
         try:\n\
         \x20   s.connect(('{addr}', {port}))\n\
         \x20   s.sendall(b'{msg}')\n\
         \x20   print(s.recv(100).decode(), 'from', s.getsockname()[0], s.getsockname()[1])\n\
         except Exception as e:\n\
         \x20   print('error', e)\n"
    );
    let o = ns
        .command("python3")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    text(&o)
}

/// A counter of `ctl --json stats`: the sum of the records of `group` named `name`.
fn stat(e: &Engine, group: &str, name: &str) -> u64 {
    let doc: serde_json::Value =
        serde_json::from_str(&e.ctl_ok(&["--json", "stats"])).expect("stats json");
    doc["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["group"] == group && r["name"] == name)
        .filter_map(|r| r["value"].as_u64())
        .sum()
}

/// Stage `stage`'s packets in `ctl --json stats`, over the workers.
fn stage(e: &Engine, stage: &str) -> u64 {
    let doc: serde_json::Value =
        serde_json::from_str(&e.ctl_ok(&["--json", "stats"])).expect("stats json");
    doc["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["group"] == "stage" && r["stage"] == stage)
        .filter_map(|r| r["value"].as_u64())
        .sum()
}

/// (a) a peer connects to the kernel's BGP port on the engine's address
/// (IPv4 and IPv6); (b) the kernel connects out to a peer's port 179;
/// (c) OSPF to 224.0.0.5 reaches a raw socket; (f) pings to the engine's
/// address are still the engine's.
#[test]
fn bgp_and_ospf_to_the_engine_reach_the_kernel() {
    let t = RouterTopo::new("kcbgp").unwrap();
    let e = start(&t, "kcbgp", true);

    // (a) A "daemon" listening on the engine's port address, in the DUT namespace.
    let _bgp4 = tcp_server(&t.dut, &e, "198.18.1.1", 179);
    let got = tcp_client(&t.h1, "198.18.1.1", 179, "open4");
    assert!(
        got.starts_with("pong:open4"),
        "h1 -> kernel's TCP 179 on 198.18.1.1: {got}\nengine log:\n{}",
        e.log()
    );
    let _bgp6 = tcp_server(&t.dut, &e, "2001:2:0:1::1", 179);
    let got = tcp_client(&t.h1, "2001:2:0:1::1", 179, "open6");
    assert!(
        got.starts_with("pong:open6"),
        "h1 -> kernel's TCP 179 on 2001:2:0:1::1: {got}"
    );

    // (b) The kernel connects out to a peer's port 179: the answers come
    // from source port 179 to an ephemeral port of the engine's address.
    let _peer = tcp_server(&t.h1, &e, "198.18.1.2", 179);
    let got = tcp_client(&t.dut, "198.18.1.2", 179, "out4");
    assert!(
        got.starts_with("pong:out4 from 198.18.1.1"),
        "kernel -> h1's TCP 179: {got}"
    );

    // (c) OSPF hello-like packets (IP protocol 89) to AllSPFRouters from h1,
    // to a raw socket that joined the group on the engine's port address.
    let rx = "import socket, struct\n\
              s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 89)\n\
              s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack('4s4s', socket.inet_aton('224.0.0.5'), socket.inet_aton('198.18.1.1')))\n\
              s.settimeout(5)\n\
              print('ready', flush=True)\n\
              d, a = s.recvfrom(2048)\n\
              import sys\n\
              sys.stderr.write('got %s %r\\n' % (a[0], d[20:]))\n";
    let ospf = Bg::spawn(&t.dut, e.dir.join("ospf.log"), &["-c", rx]);
    let tx = "import socket, time\n\
              s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 89)\n\
              s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton('198.18.1.2'))\n\
              for i in range(10):\n\
              \x20   s.sendto(b'hello-ospf', ('224.0.0.5', 0))\n\
              \x20   time.sleep(0.1)\n";
    ok(&t.h1, &format!("python3 -c \"{tx}\""), &e);
    let mut log = String::new();
    for _ in 0..50 {
        log = ospf.log();
        if log.contains("got") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        log.contains("got 198.18.1.2 b'hello-ospf'"),
        "OSPF to 224.0.0.5 did not reach the raw socket: {log:?}"
    );
    assert!(stat(&e, "xdp", "pass_control") > 0);

    // (f) Pings to the engine's addresses are answered by the engine.
    let local = stage(&e, "local");
    let out = ok(&t.h1, "ping -c 3 -i 0.2 -W 2 198.18.1.1", &e);
    assert!(out.contains("3 received"), "{out}");
    ok(&t.h1, "ping -6 -c 2 -i 0.2 -W 2 2001:2:0:1::1", &e);
    let grown = stage(&e, "local") - local;
    assert!(
        grown >= 5,
        "the engine's local stage saw {grown} of the 5 echo requests"
    );
}

/// (d) routed traffic between the two hosts, IPv4 and IPv6, with the
/// engine resolving its next hops from the kernel's ARP/ND copies; (e) BGP
/// between the two hosts across the engine is forwarded, not taken.
#[test]
fn routing_across_the_engine_still_works() {
    let t = RouterTopo::new("kcfwd").unwrap();
    let e = start(&t, "kcfwd", true);
    ok(&t.h1, "ping -c 3 -i 0.2 -W 2 198.19.1.2", &e);
    ok(&t.h2, "ping -c 3 -i 0.2 -W 2 198.18.1.2", &e);
    ok(&t.h1, "ping -6 -c 3 -i 0.2 -W 2 2001:2:0:2::2", &e);
    ok(&t.h2, "ping -6 -c 3 -i 0.2 -W 2 2001:2:0:1::2", &e);
    // A TCP transfer of 2 MB through the engine.
    let _sink = tcp_server(&t.h2, &e, "198.19.1.2", 8080);
    let big = "import socket\n\
               s = socket.create_connection(('198.19.1.2', 8080), timeout=5)\n\
               s.sendall(b'x' * 60000)\n\
               print(s.recv(100)[:10])\n";
    let out = ok(&t.h1, &format!("python3 -c \"{big}\""), &e);
    assert!(out.contains("pong:xxxxx"), "{out}");
    // The engine learned both hosts, from copies of what the kernel received.
    let arp = e.ctl_ok(&["arp", "show"]);
    for want in [
        "198.18.1.2 dev lan",
        "198.19.1.2 dev wan",
        "2001:2:0:1::2 dev lan",
        "2001:2:0:2::2 dev wan",
    ] {
        assert!(arp.contains(want), "arp show lacks {want}:\n{arp}");
    }
    assert!(
        stat(&e, "neighbor", "kernel_frames_read") > 0,
        "no ARP/ND copy read"
    );
    assert_eq!(stat(&e, "neighbor", "kernel_frames_malformed"), 0);

    // (e) BGP between h1 and h2, across the engine: forwarded.
    let _bgp = tcp_server(&t.h2, &e, "198.19.1.2", 179);
    let got = tcp_client(&t.h1, "198.19.1.2", 179, "transit");
    assert!(
        got.starts_with("pong:transit from 198.18.1.2"),
        "h1 -> h2 TCP 179 across the engine: {got}\nstats:\n{}",
        text(&e.ctl(&["stats"]))
    );
    let _bgp6 = tcp_server(&t.h2, &e, "2001:2:0:2::2", 179);
    let got = tcp_client(&t.h1, "2001:2:0:2::2", 179, "transit6");
    assert!(got.starts_with("pong:transit6"), "IPv6: {got}");

    // The anti-poisoning rule holds for what the engine learns from the
    // kernel's copies: ARP replies nobody asked for (they reach the kernel,
    // being addressed to the engine's address) change nothing.
    let real = t.right.mac(&t.h2, &t.right.b).unwrap();
    let engine_wan = t.right.mac(&t.dut, &t.right.a).unwrap();
    let fake = [0x02, 0x66, 0x66, 0x66, 0x66, 0x66];
    let reply = |ip: [u8; 4]| {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 2];
        a.extend_from_slice(&fake);
        a.extend_from_slice(&ip);
        a.extend_from_slice(&engine_wan);
        a.extend_from_slice(&[198, 19, 1, 1]);
        pktengine_tests::frames::eth(engine_wan, fake, 0x0806, &a)
    };
    let ignored = stat(&e, "neighbor", "unsolicited_answers_ignored");
    pktengine_tests::packet::send_frames(
        &t.h2,
        &t.right.b.name,
        &[reply([198, 19, 1, 2]), reply([198, 19, 1, 99])],
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let arp = e.ctl_ok(&["arp", "show"]);
    let hex = |m: [u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let line = arp.lines().find(|l| l.starts_with("198.19.1.2 ")).unwrap();
    assert!(
        line.contains(&hex(real)) && !arp.contains(&hex(fake)) && !arp.contains("198.19.1.99"),
        "cache poisoned through the kernel's copy:\n{arp}"
    );
    assert_eq!(
        stat(&e, "neighbor", "unsolicited_answers_ignored") - ignored,
        2,
        "both forged replies counted as ignored"
    );
}

/// Without kernel_control, even with the addresses on the kernel's
/// interface, BGP to the engine's address is the engine's (it answers with a
/// reset) and the kernel's own connection out gets no answer: what the
/// tests above rely on is the feature.
#[test]
fn without_kernel_control_bgp_to_the_engine_is_not_the_kernels() {
    let t = RouterTopo::new("kcoff").unwrap();
    let e = start(&t, "kcoff", false);
    t.dut
        .ip(&["addr", "add", "198.18.1.1/24", "dev", &t.left.b.name])
        .unwrap();
    let _bgp4 = tcp_server(&t.dut, &e, "198.18.1.1", 179);
    let got = tcp_client(&t.h1, "198.18.1.1", 179, "open4");
    assert!(got.starts_with("error"), "{got}");
    let _peer = tcp_server(&t.h1, &e, "198.18.1.2", 179);
    let got = tcp_client(&t.dut, "198.18.1.2", 179, "out4");
    assert!(got.starts_with("error"), "{got}");
    assert_eq!(stat(&e, "xdp", "pass_control"), 0);
}
