//! Bridge virtual interfaces (issue 22, part 2) between real Linux hosts: a `[[bridge]]` with
//! addresses is a routed port of the engine. examples/gateway.toml: three hosts on the switch
//! ports of bridge `lan` use its BVI (198.18.1.1, 2001:2:0:1::1) as their default gateway and
//! reach an outside host on the routed port `wan` through the stateful filter and the NAT
//! (IPv4 only; IPv6 is routed untranslated).
//!
//! ```text
//!  h1 198.18.1.2 ── p1 ┐
//!  h2 198.18.1.3 ── p2 ├─ bridge lan ── BVI lan ── [filter, NAT] ── wan ── outside 198.19.1.2
//!  h3 198.18.1.4 ── p3 ┘                                                  (2001:2:0:2::2)
//! ```
//!
//! Covered: the hosts ping the BVI (IPv4, IPv6) and the engine lists them on port `lan`;
//! downloads from outside, checked byte for byte, with the source the server sees (the pool
//! address for IPv4, the host's own for IPv6); nothing opens a connection in; traffic
//! between two bridge hosts is switched, not routed (stage counters); the BVI's MAC is a static
//! entry of the bridge; a VLAN-aware bridge with one BVI per VLAN routes between its VLANs
//! (TTL decremented) and does not switch across them; bad BVI configurations are refused.
//! Every test builds its own namespaces (198.18.0.0/15, 2001:2::/48 only) and engine.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Output, Stdio};

use pktengine_tests::bg::Bg;
use pktengine_tests::engine::{example, pktengine_bin, text, Engine, GatewayHost, GatewayTopo};
use pktengine_tests::Netns;

const H1: usize = 0;
const H2: usize = 1;
const H3: usize = 2;
const OUT: usize = 3;

// ---- helpers -----------------------------------------------------------------------------------

fn sh(ns: &Netns, cmd: &str) -> Output {
    ns.command("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

/// Engine log, counters, neighbors, MAC table and NAT sessions, for assertion messages.
fn diag(e: &Engine) -> String {
    format!(
        "engine log:\n{}\nstats:\n{}\narp show:\n{}\nmac show:\n{}\nnat show:\n{}\nroute show:\n{}",
        e.log(),
        text(&e.ctl(&["stats"])),
        text(&e.ctl(&["arp", "show"])),
        text(&e.ctl(&["mac", "show"])),
        text(&e.ctl(&["nat", "show"])),
        text(&e.ctl(&["route", "show"]))
    )
}

/// Runs `cmd` in `ns`; it must succeed. Returns its output.
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

/// Starts the engine on `cfg` (a template with the example's interface names) and waits until
/// host 0 can ping `gateway` (the workers start right after the ctl socket appears).
fn start(t: &GatewayTopo, tag: &str, cfg: &str, gateway: &str) -> Engine {
    let dir = Engine::dir(tag);
    let cfg = t.config(cfg, &dir.join("ctl.sock"));
    let e = Engine::start(&t.dut, &dir, &cfg, &[])
        .unwrap_or_else(|err| panic!("engine start: {err}\nconfiguration:\n{cfg}"));
    let o = sh(
        &t.hosts[H1],
        &format!("for i in 1 2 3 4 5 6 7 8 9 10; do ping -c 1 -W 1 {gateway} >/dev/null && exit 0; done; exit 1"),
    );
    assert!(
        o.status.success(),
        "h1 never reached its gateway {gateway} (the BVI):\n{}",
        diag(&e)
    );
    e
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The `stages (packets in)` section of `ctl stats`: stage → packets, summed over the workers.
fn stages(e: &Engine) -> BTreeMap<String, u64> {
    let s = e.ctl_ok(&["stats"]);
    s.lines()
        .skip_while(|l| !l.starts_with("stages (packets in)"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect()
}

/// How much stage `name` grew from `before` to `after`.
fn grew(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, name: &str) -> u64 {
    let get = |m: &BTreeMap<String, u64>| m.get(name).copied().unwrap_or(0);
    get(after).saturating_sub(get(before))
}

/// `size` random bytes as `<engine dir>/www/blob`; returns the directory and the bytes.
fn www(e: &Engine, size: usize) -> (std::path::PathBuf, Vec<u8>) {
    let dir = e.dir.join("www");
    std::fs::create_dir_all(&dir).expect("www");
    let mut data = vec![0u8; size];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut data))
        .expect("urandom");
    std::fs::write(dir.join("blob"), &data).expect("blob");
    (dir, data)
}

/// `python3 -m http.server PORT --bind ADDR` in `ns`, serving `dir`.
fn http_server(ns: &Netns, e: &Engine, addr: &str, port: u16, dir: &Path) -> Bg {
    Bg::spawn(
        ns,
        e.dir.join(format!("http-{addr}-{port}.log")),
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

/// Downloads `url` from `ns` and checks it is `want`, byte for byte.
fn download(ns: &Netns, url: &str, want: &[u8], e: &Engine) {
    let out = e.dir.join("fetched");
    let _ = std::fs::remove_file(&out);
    ok(
        ns,
        &format!(
            "curl -sS -g -m 20 --retry 5 --retry-connrefused --retry-delay 0 -o {} {url}",
            out.display()
        ),
        e,
    );
    let got = std::fs::read(&out).unwrap_or_default();
    assert!(
        got == want,
        "{url}: got {} bytes of {}, content differs\n{}",
        got.len(),
        want.len(),
        diag(e)
    );
}

/// Opens a TCP connection to argv[1]:argv[2] (2 s at most); prints `connected`, `timeout` or
/// `error ERRNO`.
const CONNECT: &str = r#"
import socket, sys
dst, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(2)
try:
    s.connect((dst, port))
    print('connected')
except socket.timeout:
    print('timeout')
except OSError as e:
    print('error', e.errno)
"#;

/// A TCP listener on argv[1]:argv[3] and argv[2]:argv[3] (IPv4, IPv6): prints `ready`, then
/// writes `accepted PEER` to stderr (the Bg log) for every connection.
const LISTEN: &str = r#"
import select, socket, sys
socks = []
for a in sys.argv[1:3]:
    s = socket.socket(socket.AF_INET6 if ':' in a else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, int(sys.argv[3])))
    s.listen(16)
    socks.append(s)
print('ready', flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        c, peer = s.accept()
        print('accepted', peer[0], file=sys.stderr, flush=True)
        c.close()
"#;

fn connect(ns: &Netns, dst: &str, port: u16) -> String {
    let o = ns
        .command("python3")
        .args(["-c", CONNECT, dst, &port.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The `ttl=N` (or `hlim=N`) of every reply line of a ping output.
fn reply_ttls(out: &str) -> Vec<u32> {
    out.lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| {
            l.split_whitespace().find_map(|w| {
                w.strip_prefix("ttl=")
                    .or_else(|| w.strip_prefix("hlim="))?
                    .parse()
                    .ok()
            })
        })
        .collect()
}

// ---- the gateway -------------------------------------------------------------------------------

/// The bridge hosts ping the BVI; h1 downloads from the outside host over IPv4 (seen as the pool
/// address) and IPv6 (seen as itself); the outside host cannot open a connection to h1 by either.
#[test]
fn gateway_routes_bridge_hosts_through_nat_and_filter() {
    let t = GatewayTopo::new("bvg").unwrap();
    // The outside host has no IPv4 route back to the lan: IPv4 answers come only through the NAT.
    t.hosts[OUT].ip(&["route", "del", "default"]).unwrap();
    let e = start(&t, "bvg", &example("gateway.toml"), "198.18.1.1");

    for i in [H1, H2, H3] {
        ok(&t.hosts[i], "ping -c 2 -i 0.2 -W 2 198.18.1.1", &e);
        ok(&t.hosts[i], "ping -6 -c 2 -i 0.2 -W 2 2001:2:0:1::1", &e);
    }
    // The engine knows the hosts as neighbors on its port `lan`, the BVI.
    let arp = e.ctl_ok(&["arp", "show"]);
    for i in [H1, H2, H3] {
        for want in [
            format!(
                "198.18.1.{} dev lan lladdr {}",
                i + 2,
                mac_text(t.host_mac(i))
            ),
            format!(
                "2001:2:0:1::{} dev lan lladdr {}",
                i + 2,
                mac_text(t.host_mac(i))
            ),
        ] {
            assert!(
                arp.contains(&want),
                "arp show lacks `{want}`:\n{}",
                diag(&e)
            );
        }
    }

    // Downloads from outside, over IPv4 (NAT) and IPv6 (routed as is).
    let (dir, blob) = www(&e, 2 << 20);
    let srv4 = http_server(&t.hosts[OUT], &e, "198.19.1.2", 8080, &dir);
    let srv6 = http_server(&t.hosts[OUT], &e, "2001:2:0:2::2", 8080, &dir);
    download(&t.hosts[H1], "http://198.19.1.2:8080/blob", &blob, &e);
    download(&t.hosts[H1], "http://[2001:2:0:2::2]:8080/blob", &blob, &e);
    let clients = |b: &Bg| b.http_clients().into_iter().collect::<BTreeSet<_>>();
    assert_eq!(
        clients(&srv4),
        BTreeSet::from(["198.19.1.1".to_string()]),
        "the IPv4 server must see the pool address only:\n{}\n{}",
        srv4.log(),
        diag(&e)
    );
    assert_eq!(
        clients(&srv6),
        BTreeSet::from(["2001:2:0:1::2".to_string()]),
        "the IPv6 server must see h1's own address (no NAT66):\n{}\n{}",
        srv6.log(),
        diag(&e)
    );
    let nat = e.ctl_ok(&["nat", "show"]);
    assert!(
        nat.lines().any(|l| l.contains("tcp")
            && l.contains("198.18.1.2:")
            && l.contains("198.19.1.1:")
            && l.contains("198.19.1.2:8080")),
        "nat show lacks h1's TCP session to 198.19.1.2:8080:\n{}",
        diag(&e)
    );
    ok(&t.hosts[H1], "ping -c 2 -i 0.2 -W 2 198.19.1.2", &e);
    ok(&t.hosts[H1], "ping -6 -c 2 -i 0.2 -W 2 2001:2:0:2::2", &e);

    // Nothing opens a connection in. h1 listens; h2, on the same bridge, can connect (so the
    // listener works), the outside host cannot: not to the pool address (no forward), not to
    // h1's IPv6 address (the filter's policy on wan).
    let listener = Bg::spawn(
        &t.hosts[H1],
        e.dir.join("h1-listen.log"),
        &["-c", LISTEN, "198.18.1.2", "2001:2:0:1::2", "8000"],
    );
    assert_eq!(connect(&t.hosts[H2], "198.18.1.2", 8000), "connected");
    assert_eq!(connect(&t.hosts[H2], "2001:2:0:1::2", 8000), "connected");
    for dst in ["198.19.1.1", "2001:2:0:1::2"] {
        let r = connect(&t.hosts[OUT], dst, 8000);
        assert_ne!(
            r,
            "connected",
            "the outside host opened a connection to {dst}:8000\n{}",
            diag(&e)
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let accepted: Vec<String> = listener
        .log()
        .lines()
        .filter_map(|l| l.strip_prefix("accepted ").map(String::from))
        .collect();
    assert_eq!(
        accepted,
        ["198.18.1.3", "2001:2:0:1::3"],
        "h1's listener must see h2's connections only\n{}",
        diag(&e)
    );
}

// ---- switched, not routed ----------------------------------------------------------------------

/// Pings and TCP transfers between h1 and h2 (same bridge, same VLAN) cross the switch stage
/// and never the forwarding stages; the MAC table has both hosts and the BVI's MAC as static.
#[test]
fn traffic_between_bridge_hosts_is_switched() {
    let t = GatewayTopo::new("bvs").unwrap();
    let e = start(&t, "bvs", &example("gateway.toml"), "198.18.1.1");
    // Neighbors resolved first, so what follows is only the hosts' traffic.
    ok(&t.hosts[H1], "ping -c 1 -W 2 198.18.1.3", &e);
    ok(&t.hosts[H1], "ping -6 -c 1 -W 2 2001:2:0:1::3", &e);
    let (dir, blob) = www(&e, 1 << 20);
    let _srv4 = http_server(&t.hosts[H2], &e, "198.18.1.3", 8080, &dir);
    let _srv6 = http_server(&t.hosts[H2], &e, "2001:2:0:1::3", 8080, &dir);

    let before = stages(&e);
    ok(&t.hosts[H1], "ping -c 20 -i 0.02 -W 2 198.18.1.3", &e);
    ok(&t.hosts[H1], "ping -6 -c 20 -i 0.02 -W 2 2001:2:0:1::3", &e);
    ok(&t.hosts[H2], "ping -c 20 -i 0.02 -W 2 198.18.1.2", &e);
    download(&t.hosts[H1], "http://198.18.1.3:8080/blob", &blob, &e);
    download(&t.hosts[H1], "http://[2001:2:0:1::3]:8080/blob", &blob, &e);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let after = stages(&e);

    // 60 echo requests and 60 replies; each 1 MB download at least 700 full-size segments.
    let sent = 120 + 2 * 700;
    let (l2, f4, f6) = (
        grew(&before, &after, "l2-input"),
        grew(&before, &after, "ip4-forward"),
        grew(&before, &after, "ip6-forward"),
    );
    let report = format!(
        "l2-input +{l2}, ip4-forward +{f4}, ip6-forward +{f6}\nbefore: {before:?}\nafter: {after:?}\n{}",
        diag(&e)
    );
    eprintln!("between bridge hosts: l2-input +{l2}, ip4-forward +{f4}, ip6-forward +{f6}");
    assert!(
        l2 >= sent,
        "the switch stage saw fewer than {sent} packets: {report}"
    );
    assert!(
        f4 < 10 && f6 < 10,
        "traffic within the bridge was routed: {report}"
    );

    let table = e.ctl_ok(&["mac", "show"]);
    eprintln!(
        "mac show:\n{table}arp show:\n{}",
        e.ctl_ok(&["arp", "show"])
    );
    for (i, port) in [(H1, "p1"), (H2, "p2")] {
        let mac = mac_text(t.host_mac(i));
        let line = table.lines().find(|l| l.contains(&mac));
        assert!(
            line.is_some_and(|l| l.contains(&format!("port {port}"))),
            "mac show: h{} ({mac}) not on {port}:\n{table}",
            i + 1
        );
    }
    let bvi = table.lines().find(|l| l.contains("02:00:00:00:01:01"));
    assert!(
        bvi.is_some_and(|l| l.contains("static")),
        "mac show: the BVI's MAC 02:00:00:00:01:01 is not a static entry:\n{table}"
    );
}

// ---- one BVI per VLAN --------------------------------------------------------------------------

/// A VLAN-aware bridge `br0`: p1 in VLAN 10, p2 in VLAN 20, a BVI in each.
const VLAN_BRIDGE: &str = r#"[engine]
cores = [1]
poll = "adaptive"
idle_timeout_ms = 10
ctl_socket = "/run/pktengine/bvi-vlan.sock"

[[bridge]]
name = "br0"

[[bridge.vlan]]
id = 10
addresses = ["198.18.10.1/24", "2001:2:0:10::1/64"]

[[bridge.vlan]]
id = 20
addresses = ["198.18.20.1/24", "2001:2:0:20::1/64"]

[[port]]
name = "p1"
interface = "pe-p1"
mode = "switch"
bridge = "br0"
vlan = 10

[[port]]
name = "p2"
interface = "pe-p2"
mode = "switch"
bridge = "br0"
vlan = 20
"#;

/// h1 (VLAN 10) and h2 (VLAN 20) reach each other through the BVIs br0.10 and br0.20: routed
/// (TTL and hop limit one less, the forwarding stages count it), IPv4 and IPv6; on-link, h1
/// cannot reach h2 (no switching across VLANs).
#[test]
fn vlan_bvis_route_between_vlans() {
    let t = GatewayTopo::with_hosts(
        "bvv",
        &[
            GatewayHost {
                v4: "198.18.10.2/24",
                v6: "2001:2:0:10::2/64",
                gw4: "198.18.10.1",
                gw6: "2001:2:0:10::1",
            },
            GatewayHost {
                v4: "198.18.20.2/24",
                v6: "2001:2:0:20::2/64",
                gw4: "198.18.20.1",
                gw6: "2001:2:0:20::1",
            },
        ],
    )
    .unwrap();
    let e = start(&t, "bvv", VLAN_BRIDGE, "198.18.10.1");
    let routes = e.ctl_ok(&["route", "show"]);
    for want in [
        "198.18.10.0/24 dev br0.10",
        "198.18.20.0/24 dev br0.20",
        "2001:2:0:10::/64 dev br0.10",
        "2001:2:0:20::/64 dev br0.20",
    ] {
        assert!(
            routes.contains(want),
            "route show lacks the connected route `{want}`:\n{}",
            diag(&e)
        );
    }
    // Warm up (neighbor resolution on both BVIs), then count.
    ok(&t.hosts[H1], "ping -c 1 -W 2 198.18.20.2", &e);
    ok(&t.hosts[H1], "ping -6 -c 1 -W 2 2001:2:0:20::2", &e);
    let before = stages(&e);
    for (from, dst) in [
        (H1, "198.18.20.2"),
        (H1, "2001:2:0:20::2"),
        (H2, "198.18.10.2"),
        (H2, "2001:2:0:10::2"),
    ] {
        let out = ok(&t.hosts[from], &format!("ping -c 3 -i 0.2 -W 2 {dst}"), &e);
        // Linux hosts send with TTL / hop limit 64: one router on the way back.
        let ttls = reply_ttls(&out);
        assert!(
            ttls.len() == 3 && ttls.iter().all(|&t| t == 63),
            "h{} → {dst}: reply TTLs {ttls:?}, want 63 (routed once):\n{out}\n{}",
            from + 1,
            diag(&e)
        );
    }
    let after = stages(&e);
    // Two directions, 3 requests and 3 replies each, per family.
    let (f4, f6) = (
        grew(&before, &after, "ip4-forward"),
        grew(&before, &after, "ip6-forward"),
    );
    eprintln!("between VLANs: ip4-forward +{f4}, ip6-forward +{f6}");
    assert!(
        f4 >= 12 && f6 >= 12,
        "ip4-forward +{f4}, ip6-forward +{f6}: want at least 12 each\n{}",
        diag(&e)
    );

    // On-link in VLAN 10, h1's ARP for h2 reaches nobody who has that address: no answer.
    let dev = t.host_if(H1).to_string();
    t.hosts[H1]
        .ip(&["route", "add", "198.18.20.2/32", "dev", &dev])
        .unwrap();
    let o = sh(&t.hosts[H1], "ping -c 2 -i 0.3 -W 1 198.18.20.2");
    assert!(
        !o.status.success(),
        "h1 reached h2 on-link across VLANs:\n{}\n{}",
        text(&o),
        diag(&e)
    );
}

// ---- configuration -----------------------------------------------------------------------------

/// A configuration with a routed bridge and a VLAN-aware one, valid as it stands.
const CHECKED: &str = r#"[engine]
cores = [1]
ctl_socket = "/run/pktengine/bvi-check.sock"

[[bridge]]
name = "lan"
addresses = ["198.18.1.1/24", "2001:2:0:1::1/64"]

[[bridge]]
name = "br0"

[[bridge.vlan]]
id = 10
addresses = ["198.18.10.1/24", "2001:2:0:10::1/64"]

[[port]]
name = "p1"
interface = "pe-p1"
mode = "switch"
bridge = "lan"

[[port]]
name = "p2"
interface = "pe-p2"
mode = "switch"
bridge = "br0"
vlan = 10

[[port]]
name = "p3"
interface = "pe-p3"
mode = "switch"
bridge = "br0"
trunk = [10, 20]

[[port]]
name = "wan"
interface = "pe-wan"
mode = "router"
addresses = ["198.19.1.1/24"]
"#;

/// `pktengine run --check --config` on `cfg` in the DUT namespace: (exit code, output).
fn check(t: &GatewayTopo, dir: &Path, name: &str, cfg: &str) -> (Option<i32>, String) {
    let path = dir.join(name);
    std::fs::write(&path, t.config(cfg, &dir.join("ctl.sock"))).unwrap();
    let o = t
        .dut
        .command(pktengine_bin().to_str().unwrap())
        .args(["run", "--check", "--config", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (o.status.code(), text(&o))
}

/// `CHECKED` with `from` replaced by `to` (which must occur) is refused, with an error at a
/// position of the file that names `names`.
fn refused(t: &GatewayTopo, dir: &Path, from: &str, to: &str, names: &str) {
    assert!(
        CHECKED.contains(from),
        "`{from}` is not in the configuration"
    );
    let cfg = CHECKED.replacen(from, to, 1);
    let (code, out) = check(t, dir, "bad.toml", &cfg);
    assert_eq!(
        code,
        Some(2),
        "`{from}` → `{to}` must be refused:\n{out}\nconfiguration:\n{cfg}"
    );
    // `.../bad.toml:LINE:COL: message`: the message, not the position, must name it.
    let message = |l: &str| {
        let (_, rest) = l.split_once("bad.toml:")?;
        Some(rest.split_once(": ")?.1.to_string())
    };
    assert!(
        out.lines().filter_map(message).any(|m| m.contains(names)),
        "`{from}` → `{to}`: no error (file:line: ...) naming `{names}`:\n{out}"
    );
}

#[test]
fn bvi_configuration_is_checked() {
    let t = GatewayTopo::new("bvc").unwrap();
    let dir = Engine::dir("bvc");
    for (name, cfg) in [
        ("gateway.toml", example("gateway.toml")),
        ("checked.toml", CHECKED.to_string()),
    ] {
        let (code, out) = check(&t, &dir, name, &cfg);
        assert_eq!(code, Some(0), "{name} must be valid:\n{out}");
    }
    // A BVI is a port: its name may not be another port's.
    refused(&t, &dir, "name = \"wan\"", "name = \"lan\"", "port `lan`");
    // A VLAN's BVI needs a member port that carries the VLAN.
    refused(&t, &dir, "id = 10", "id = 30", "VLAN 30");
    // Addresses as a port's: prefix lengths, overlaps with other ports.
    refused(
        &t,
        &dir,
        "198.18.1.1/24",
        "198.18.1.1/33",
        "prefix length 33",
    );
    refused(
        &t,
        &dir,
        "2001:2:0:1::1/64",
        "2001:2:0:1::1/129",
        "prefix length 129",
    );
    refused(
        &t,
        &dir,
        "198.18.10.1/24",
        "198.18.10.1/40",
        "prefix length 40",
    );
    refused(
        &t,
        &dir,
        "198.18.1.1/24",
        "198.19.1.9/24",
        "overlaps 198.19.1.1/24",
    );
}
