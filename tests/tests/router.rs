//! pktengine as a router between real Linux hosts (issue 6): ping, ICMP
//! errors, traceroute, MTU handling, TCP transfers over IPv4 and IPv6, the
//! full Internet table, ECMP and metrics. Every test builds its own
//! namespaces (198.18.0.0/15 and 2001:2::/48 only) and engine.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pktengine_tests::engine::{example, text, Engine, RouterTopo};
use pktengine_tests::{Netns, VethPair};

fn start(t: &RouterTopo, tag: &str, edit: impl FnOnce(String) -> String) -> Engine {
    let dir = Engine::dir(tag);
    let cfg = edit(t.config(&example("router.toml"), &dir.join("ctl.sock")));
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

#[test]
fn ping_both_ways_with_ttl_decremented() {
    let t = RouterTopo::new("png").unwrap();
    let e = start(&t, "png", |c| c);
    let out = ok(&t.h1, "ping -c 3 -i 0.2 -W 2 198.19.1.2", &e);
    assert!(
        out.contains("ttl=63"),
        "the reply crossed the engine once: ttl 63 expected\n{out}"
    );
    let out = ok(&t.h2, "ping -c 3 -i 0.2 -W 2 198.18.1.2", &e);
    assert!(out.contains("ttl=63"), "{out}");
    // The engine's own addresses answer, with its own TTL of 64.
    let out = ok(&t.h1, "ping -c 2 -i 0.2 -W 2 198.18.1.1", &e);
    assert!(out.contains("ttl=64"), "{out}");
    let out = ok(&t.h1, "ping -c 2 -i 0.2 -W 2 198.19.1.1", &e);
    assert!(out.contains("ttl=64"), "{out}");
    // IPv6 both ways: hop limit decremented once.
    let out = ok(&t.h1, "ping -6 -c 3 -i 0.2 -W 2 2001:2:0:2::2", &e);
    assert!(out.contains("ttl=63") || out.contains("hlim=63"), "{out}");
    let out = ok(&t.h2, "ping -6 -c 3 -i 0.2 -W 2 2001:2:0:1::2", &e);
    assert!(out.contains("ttl=63") || out.contains("hlim=63"), "{out}");
    ok(&t.h1, "ping -6 -c 2 -i 0.2 -W 2 2001:2:0:1::1", &e);
    // The engine learned both hosts (ARP and ND).
    let arp = e.ctl_ok(&["arp", "show"]);
    for want in [
        "198.18.1.2 dev lan",
        "198.19.1.2 dev wan",
        "2001:2:0:1::2 dev lan",
        "2001:2:0:2::2 dev wan",
    ] {
        assert!(arp.contains(want), "arp show lacks {want}:\n{arp}");
    }
}

#[test]
fn time_exceeded_unreachable_and_traceroute() {
    let t = RouterTopo::new("err").unwrap();
    let e = start(&t, "err", |c| c);
    // Warm the neighbor caches so the probes below are not delayed.
    ok(&t.h1, "ping -c 1 -W 2 198.19.1.2", &e);
    let o = text(&sh(&t.h1, "ping -c 1 -W 2 -t 1 198.19.1.2"));
    assert!(
        o.contains("From 198.18.1.1") && o.contains("Time to live exceeded"),
        "{o}"
    );
    let o = text(&sh(&t.h1, "ping -c 1 -W 2 198.19.200.1"));
    assert!(
        o.contains("From 198.18.1.1") && o.contains("Destination Net Unreachable"),
        "{o}"
    );
    let o = text(&sh(&t.h1, "ping -6 -c 1 -W 2 -t 1 2001:2:0:2::2"));
    assert!(
        o.contains("From 2001:2:0:1::1") && o.contains("Time exceeded"),
        "{o}"
    );
    let o = text(&sh(&t.h1, "ping -6 -c 1 -W 2 2001:2:0:99::1"));
    assert!(
        o.contains("From 2001:2:0:1::1") && o.contains("No route"),
        "{o}"
    );
    // UDP traceroute through the engine to h2: the engine, then h2.
    let o = ok(&t.h1, "traceroute -n -q 1 -w 2 -m 5 198.19.1.2", &e);
    let hops: Vec<&str> = o
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(hops, ["198.18.1.1", "198.19.1.2"], "{o}");
    // ... and to the engine itself: Port Unreachable ends it at the first hop.
    let o = ok(&t.h1, "traceroute -n -q 1 -w 2 -m 5 198.19.1.1", &e);
    let hops: Vec<&str> = o
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(hops, ["198.19.1.1"], "{o}");
    let o = ok(&t.h1, "traceroute -6 -n -q 1 -w 2 -m 5 2001:2:0:2::2", &e);
    let hops: Vec<&str> = o
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(hops, ["2001:2:0:1::1", "2001:2:0:2::2"], "{o}");
}

#[test]
fn unanswered_arp_gives_host_unreachable_and_queue_holds_packets() {
    let t = RouterTopo::new("nbr").unwrap();
    let e = start(&t, "nbr", |c| c);
    // 198.19.1.77 is on the wan subnet but nobody has it: after the ARP
    // retries (200 + 400 + 800 ms) the engine answers Host Unreachable.
    let o = text(&sh(&t.h1, "ping -c 1 -W 4 198.19.1.77"));
    assert!(
        o.contains("From 198.18.1.1") && o.contains("Destination Host Unreachable"),
        "{o}"
    );
    let arp = e.ctl_ok(&["arp", "show"]);
    assert!(
        arp.contains("198.19.1.77 dev wan")
            && (arp.contains("FAILED") || arp.contains("INCOMPLETE")),
        "{arp}"
    );
    // A host that answers late still gets the packets that waited: the
    // first pings to a fresh neighbor are not lost.
    let o = ok(&t.h1, "ping -c 3 -i 0.05 -W 2 198.19.1.2", &e);
    assert!(o.contains("3 received"), "{o}");
}

#[test]
fn small_mtu_fragments_or_answers_frag_needed() {
    let t = RouterTopo::new("mtu").unwrap();
    let e = start(&t, "mtu", |c| c.replace("mtu = 1500", "mtu = 1280"));
    // No DF: the engine fragments, h2's kernel reassembles and answers.
    let o = ok(
        &t.h1,
        "ping -c 2 -i 0.3 -W 2 -M dont -s 1400 198.19.1.2",
        &e,
    );
    assert!(o.contains("2 received"), "{o}");
    let stats = e.ctl_ok(&["stats"]);
    assert!(
        stats.contains("ip4-fragmented"),
        "the engine fragmented nothing:\n{stats}"
    );
    // DF: Fragmentation Needed with the egress MTU.
    let o = text(&sh(&t.h1, "ping -c 1 -W 2 -M do -s 1400 198.19.1.2"));
    assert!(
        o.contains("From 198.18.1.1") && o.contains("mtu = 1280"),
        "{o}"
    );
    // IPv6: Packet Too Big with the MTU (the host then fragments at the source).
    let o = text(&sh(&t.h1, "ping -6 -c 1 -W 2 -s 1400 2001:2:0:2::2"));
    assert!(
        o.contains("Packet too big") && o.contains("mtu=1280") || o.contains("mtu = 1280"),
        "{o}"
    );
    let o = ok(&t.h1, "ping -6 -c 2 -i 0.3 -W 2 -s 1400 2001:2:0:2::2", &e);
    assert!(o.contains("2 received"), "{o}");
}

/// A Python HTTP server on h2 (dual stack), serving `dir`.
struct Http(Child);
impl Drop for Http {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_server(ns: &Netns, dir: &std::path::Path) -> Http {
    let c = ns
        .command("python3")
        .args([
            "-m",
            "http.server",
            "8080",
            "--bind",
            "::",
            "--directory",
            dir.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("http.server");
    Http(c)
}

fn sha256(path: &std::path::Path) -> String {
    let o = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn http_transfer_over_ipv4_and_ipv6() {
    let t = RouterTopo::new("http").unwrap();
    let e = start(&t, "http", |c| c);
    let dir = e.dir.join("www");
    std::fs::create_dir_all(&dir).unwrap();
    let mut data = vec![0u8; 3 << 20];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    std::fs::write(dir.join("blob"), &data).unwrap();
    let _srv = http_server(&t.h2, &dir);
    let want = sha256(&dir.join("blob"));
    for (i, url) in [
        "http://198.19.1.2:8080/blob",
        "http://[2001:2:0:2::2]:8080/blob",
    ]
    .iter()
    .enumerate()
    {
        let out = e.dir.join(format!("got{i}"));
        let cmd = format!(
            "curl -sS --retry 20 --retry-connrefused --retry-delay 0 -m 30 -o {} {url}",
            out.display()
        );
        ok(&t.h1, &cmd, &e);
        assert_eq!(sha256(&out), want, "{url}: content differs");
    }
}

#[test]
fn full_internet_table_keeps_forwarding_correct() {
    let t = RouterTopo::new("full").unwrap();
    // Hosts behind specific prefixes, on loopbacks.
    t.h1.ip(&["addr", "add", "198.18.77.1/32", "dev", "lo"])
        .unwrap();
    t.h2.ip(&["addr", "add", "198.19.64.1/32", "dev", "lo"])
        .unwrap();
    let dir = Engine::dir("full");
    let table = dir.join("table.routes");
    let gz =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/data/bgp-prefixes.txt.gz");
    let o = Command::new("sh")
        .args(["-c", &format!("zcat {} | awk '{{ if (index($1, \":\")) print $1\" via 2001:2:0:2::2\"; else print $1\" via 198.19.1.2\" }}' > {}", gz.display(), table.display())])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut cfg = t.config(&example("router.toml"), &dir.join("ctl.sock"));
    cfg = cfg.replace(
        "routes = [",
        &format!("routes_file = \"{}\"\nroutes = [\n    \"198.18.77.0/24 via 198.18.1.2\",\n    \"198.19.64.0/24 via 198.19.1.2\",", table.display()),
    );
    let e = Engine::start(&t.dut, &dir, &cfg, &[]).expect("engine start");
    ok(&t.h2, "ping -c 2 -i 0.2 -W 2 198.18.77.1", &e);
    ok(&t.h1, "ping -c 2 -i 0.2 -W 2 198.19.64.1", &e);
    ok(&t.h1, "ping -c 2 -i 0.2 -W 2 198.19.1.2", &e);
    ok(&t.h1, "ping -6 -c 2 -i 0.2 -W 2 2001:2:0:2::2", &e);
    let routes = e.ctl_ok(&["route", "show"]);
    let n = routes.lines().count();
    assert!(n > 1_000_000, "only {n} routes");
    assert!(
        routes.contains("198.18.77.0/24 via 198.18.1.2"),
        "specific route missing"
    );
}

/// A UDP listener in `ns` on port 9999 that prints each datagram's source port.
fn udp_listener(ns: &Netns) -> Child {
    ns.command("python3")
        .args([
            "-c",
            "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',9999))\ns.settimeout(3)\nprint('ready',flush=True)\n\
             try:\n    while True:\n        d,a=s.recvfrom(100)\n        print(a[1],flush=True)\nexcept socket.timeout:\n    pass",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("listener")
}

fn wait_ready(c: &mut Child) {
    let mut b = [0u8; 6];
    let _ = c.stdout.as_mut().unwrap().read_exact(&mut b);
}

fn ports_seen(c: Child) -> BTreeMap<u16, usize> {
    let o = c.wait_with_output().unwrap();
    let mut m = BTreeMap::new();
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        if let Ok(p) = l.trim().parse::<u16>() {
            *m.entry(p).or_insert(0) += 1;
        }
    }
    m
}

/// Sends `per_flow` datagrams from each of `flows` source ports to dst:9999.
fn send_flows(ns: &Netns, dst: &str, flows: std::ops::Range<u16>, per_flow: usize) {
    let script = format!(
        "import socket,time\nfor p in range({},{}):\n    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n    s.bind(('198.18.1.2',p))\n    for i in range({per_flow}):\n        s.sendto(b'x',('{dst}',9999))\n        time.sleep(0.001)\n    s.close()",
        flows.start, flows.end
    );
    let o = ns
        .command("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn ecmp_spreads_flows_and_metrics_fail_over() {
    let mut t = RouterTopo::new("ecmp").unwrap();
    let h3 = Netns::new("ecmph3").unwrap();
    let third = VethPair::new(&t.dut, &h3, 1).unwrap();
    t.dut
        .sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", third.a.name), "1")
        .unwrap();
    third.addr(&h3, &third.b, "198.19.2.2/24").unwrap();
    h3.ip(&["route", "add", "default", "via", "198.19.2.1"])
        .unwrap();
    for ns in [&t.h2, &h3] {
        ns.ip(&["addr", "add", "198.19.50.1/32", "dev", "lo"])
            .unwrap();
        ns.ip(&["addr", "add", "198.19.60.1/32", "dev", "lo"])
            .unwrap();
    }
    let dir = Engine::dir("ecmp");
    let mut cfg = t.config(&example("router.toml"), &dir.join("ctl.sock"));
    cfg = cfg.replace(
        "[routing]",
        &format!("[[port]]\nname = \"wan2\"\ninterface = \"{}\"\nmode = \"router\"\naddresses = [\"198.19.2.1/24\"]\n\n[routing]", third.a.name),
    );
    cfg = cfg.replace(
        "routes = [",
        "routes = [\n    \"198.19.50.0/24 via 198.19.1.2 via 198.19.2.2\",\n    \"198.19.60.0/24 via 198.19.1.2 metric 10\",\n    \"198.19.60.0/24 via 198.19.2.2 metric 20\",",
    );
    let e = Engine::start(&t.dut, &dir, &cfg, &[]).expect("engine start");
    // Resolve both next hops first so no flow waits on ARP.
    ok(
        &t.h1,
        "ping -c 1 -W 2 198.19.1.2 && ping -c 1 -W 2 198.19.2.2",
        &e,
    );

    let (mut a, mut b) = (udp_listener(&t.h2), udp_listener(&h3));
    wait_ready(&mut a);
    wait_ready(&mut b);
    send_flows(&t.h1, "198.19.50.1", 20000..20064, 5);
    let (seen_a, seen_b) = (ports_seen(a), ports_seen(b));
    let fa: BTreeSet<u16> = seen_a.keys().copied().collect();
    let fb: BTreeSet<u16> = seen_b.keys().copied().collect();
    assert!(
        fa.is_disjoint(&fb),
        "a flow took both paths: {:?}",
        fa.intersection(&fb).collect::<Vec<_>>()
    );
    assert_eq!(fa.len() + fb.len(), 64, "flows lost: h2 {fa:?} h3 {fb:?}");
    assert!(
        fa.len() >= 8 && fb.len() >= 8,
        "flows not spread: h2 {} h3 {}",
        fa.len(),
        fb.len()
    );
    assert!(
        seen_a.values().chain(seen_b.values()).all(|&n| n == 5),
        "datagrams lost"
    );

    // Lower metric wins; deleting it moves traffic to the other route.
    let (mut a, mut b) = (udp_listener(&t.h2), udp_listener(&h3));
    wait_ready(&mut a);
    wait_ready(&mut b);
    send_flows(&t.h1, "198.19.60.1", 21000..21004, 3);
    assert_eq!(
        (ports_seen(a).len(), ports_seen(b).len()),
        (4, 0),
        "metric 10 route (h2) must win"
    );
    e.ctl_ok(&["route", "del", "198.19.60.0/24", "metric", "10"]);
    let (mut a, mut b) = (udp_listener(&t.h2), udp_listener(&h3));
    wait_ready(&mut a);
    wait_ready(&mut b);
    send_flows(&t.h1, "198.19.60.1", 21000..21004, 3);
    assert_eq!(
        (ports_seen(a).len(), ports_seen(b).len()),
        (0, 4),
        "after the delete, h3 must get it"
    );
    let _ = &mut t;
    drop(e);
    drop(third);
    let _ = Duration::ZERO;
}

#[test]
fn unsolicited_arp_replies_do_not_poison_the_cache() {
    use pktengine_tests::packet::send_frames;
    let t = RouterTopo::new("poison").unwrap();
    let e = start(&t, "poison", |c| c);
    // h2 answers the engine's ARP: its entry is REACHABLE.
    ok(&t.h1, "ping -c 2 -i 0.2 -W 2 198.19.1.2", &e);
    let real = t.right.mac(&t.h2, &t.right.b).unwrap();
    let engine_wan = t.right.mac(&t.dut, &t.right.a).unwrap();
    let fake = [0x02, 0x66, 0x66, 0x66, 0x66, 0x66];
    // An attacker on the wan link claims 198.19.1.2 (a reply nobody asked for),
    // and claims an address the engine never asked about.
    let reply = |ip: [u8; 4]| {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 2];
        a.extend_from_slice(&fake);
        a.extend_from_slice(&ip);
        a.extend_from_slice(&engine_wan);
        a.extend_from_slice(&[198, 19, 1, 1]);
        pktengine_tests::frames::eth(engine_wan, fake, 0x0806, &a)
    };
    send_frames(
        &t.h2,
        &t.right.b.name,
        &[reply([198, 19, 1, 2]), reply([198, 19, 1, 99])],
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let arp = e.ctl_ok(&["arp", "show"]);
    let hex = |m: [u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let line = arp.lines().find(|l| l.starts_with("198.19.1.2 ")).unwrap();
    assert!(
        line.contains(&hex(real)) && !arp.contains(&hex(fake)),
        "cache poisoned:\n{arp}"
    );
    assert!(
        !arp.contains("198.19.1.99"),
        "an unsolicited reply created an entry:\n{arp}"
    );
    let stats = e.ctl_ok(&["stats"]);
    let _ = stats;
    ok(&t.h1, "ping -c 1 -W 2 198.19.1.2", &e);
}

#[test]
fn strict_reverse_path_filter_drops_spoofed_sources() {
    let t = RouterTopo::new("rpf").unwrap();
    let e = start(&t, "rpf", |c| {
        c.replacen(
            "mode = \"router\"",
            "mode = \"router\"\nrp_filter = \"strict\"",
            1,
        )
    });
    ok(&t.h1, "ping -c 1 -W 2 198.19.1.2", &e);
    let mut l = udp_listener(&t.h2);
    wait_ready(&mut l);
    // From h1 (the lan side): one datagram with its own source, one claiming a wan-side source.
    let script = r#"
import socket, struct
def csum(b):
    s = sum(struct.unpack('!10H', b))
    s = (s & 0xffff) + (s >> 16)
    s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for src, sport in (('198.19.1.77', 1111), ('198.18.1.2', 2222)):
    udp = struct.pack('!HHHH', sport, 9999, 9, 0) + b'x'
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 29, 1, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton('198.19.1.2'))
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    r.sendto(h + udp, ('198.19.1.2', 0))
"#;
    let o =
        t.h1.command("python3")
            .args(["-c", script])
            .output()
            .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let seen = ports_seen(l);
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        vec![2222],
        "the spoofed datagram got through: {seen:?}"
    );
    assert!(e.ctl_ok(&["stats"]).contains("rpf-failed"));
}
