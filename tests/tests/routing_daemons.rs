//! Real routing daemons drive the engine (issue 23): BIRD and FRR run in the
//! engine's namespace, talk to their peers through the engine's ports
//! (`[routing] kernel_control`), install what they learn into the kernel's
//! main table, and the engine follows that table (`[routing] mirror`) and
//! forwards. The kernel of the engine's namespace forwards nothing
//! (ip_forward = 0): what crosses, the engine carried.
//!
//! ```text
//!  h1 198.18.1.2/24 ── pe-lan [engine + BIRD/FRR, AS 65000] pe-up1 ── p1 198.19.1.2/24  AS 65001
//!     2001:2:0:1::2/64                                      pe-up2 ── p2 198.19.2.2/24  AS 65002
//!                                                         (2001:2:0:11::2/64, 2001:2:0:12::2/64)
//! ```
//!
//! The engine side uses examples/router-bird.toml, examples/bird.conf and
//! examples/frr.conf (interface names substituted), so those files stay
//! working. `PKTENGINE_DAEMONS_MIDDLE=kernel` puts a plain Linux router
//! (kernel forwarding, addresses on its interfaces) in the middle instead of
//! the engine: the daemons and their configurations alone, for debugging.
//! The full-table test is ignored by default (slow, a minute or more):
//! `scripts/fulltable-bgp.sh` runs it.
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use pktengine_tests::daemons::{wait_for, Bird, Frr};
use pktengine_tests::engine::{example, text, Engine};
use pktengine_tests::{Netns, VethPair};

/// Plain Linux router in the middle instead of the engine (debugging the daemons).
fn kernel_middle() -> bool {
    std::env::var("PKTENGINE_DAEMONS_MIDDLE").is_ok_and(|v| v == "kernel")
}

fn sh(ns: &Netns, cmd: &str) -> Output {
    ns.command("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

/// Host, engine namespace and two peers.
struct Net {
    h1: Netns,
    dut: Netns,
    p1: Netns,
    p2: Netns,
    /// h1 (a) ── dut (b): `lan`.
    lan: VethPair,
    /// dut (a) ── p1 (b): `up1`.
    up1: VethPair,
    /// dut (a) ── p2 (b): `up2`.
    up2: VethPair,
}

/// The port name, interface placeholder of the examples and addresses of each engine port.
const PORTS: [(&str, &str, &str, &str); 3] = [
    ("lan", "pe-lan", "198.18.1.1/24", "2001:2:0:1::1/64"),
    ("up1", "pe-up1", "198.19.1.1/24", "2001:2:0:11::1/64"),
    ("up2", "pe-up2", "198.19.2.1/24", "2001:2:0:12::1/64"),
];

impl Net {
    fn new(tag: &str) -> Net {
        let h1 = Netns::new(&format!("{tag}h")).unwrap();
        let dut = Netns::new(&format!("{tag}d")).unwrap();
        let p1 = Netns::new(&format!("{tag}p1")).unwrap();
        let p2 = Netns::new(&format!("{tag}p2")).unwrap();
        let lan = VethPair::new(&h1, &dut, 1).unwrap();
        let up1 = VethPair::new(&dut, &p1, 1).unwrap();
        let up2 = VethPair::new(&dut, &p2, 1).unwrap();
        for (ns, l, v4, v6, gw4, gw6) in [
            (
                &h1,
                &lan.a,
                "198.18.1.2/24",
                "2001:2:0:1::2/64",
                "198.18.1.1",
                "2001:2:0:1::1",
            ),
            (
                &p1,
                &up1.b,
                "198.19.1.2/24",
                "2001:2:0:11::2/64",
                "198.19.1.1",
                "2001:2:0:11::1",
            ),
            (
                &p2,
                &up2.b,
                "198.19.2.2/24",
                "2001:2:0:12::2/64",
                "198.19.2.1",
                "2001:2:0:12::1",
            ),
        ] {
            let pair = if std::ptr::eq(ns, &h1) {
                &lan
            } else if std::ptr::eq(ns, &p1) {
                &up1
            } else {
                &up2
            };
            pair.addr(ns, l, v4).unwrap();
            pair.addr(ns, l, v6).unwrap();
            ns.ip(&["route", "add", "default", "via", gw4]).unwrap();
            ns.ip(&["-6", "route", "add", "default", "via", gw6])
                .unwrap();
        }
        Net {
            h1,
            dut,
            p1,
            p2,
            lan,
            up1,
            up2,
        }
    }

    /// The engine-side interface of each port, in the order of `PORTS`.
    fn ifaces(&self) -> [&str; 3] {
        [&self.lan.b.name, &self.up1.a.name, &self.up2.a.name]
    }

    /// An example file with the placeholders `pe-lan`, `pe-up1`, `pe-up2` replaced.
    fn subst(&self, template: &str) -> String {
        let mut s = template.to_string();
        for ((_, ph, _, _), real) in PORTS.iter().zip(self.ifaces()) {
            s = s.replace(ph, real);
        }
        s
    }

    /// The port name of an engine-side interface.
    fn port_of(&self, iface: &str) -> Option<&'static str> {
        PORTS
            .iter()
            .zip(self.ifaces())
            .find(|(_, i)| *i == iface)
            .map(|((p, ..), _)| *p)
    }
}

/// A route's next hops as `ctl route show` lists them: (gateway, port).
type Hops = Vec<(Option<String>, Option<String>)>;
/// The engine's routes: prefix -> next hops of its best route.
type Routes = BTreeMap<String, Hops>;

/// What sits between the hosts: the engine (the real thing) or a Linux router.
enum Middle {
    Engine(Engine),
    Kernel,
}

impl Middle {
    /// Starts the middle box of `net` (examples/router-bird.toml for the engine).
    fn start(net: &Net, tag: &str) -> Middle {
        if kernel_middle() {
            for ((_, _, v4, v6), dev) in PORTS.iter().zip(net.ifaces()) {
                net.dut.ip(&["addr", "add", v4, "dev", dev]).unwrap();
                net.dut
                    .ip(&["addr", "add", v6, "dev", dev, "nodad"])
                    .unwrap();
            }
            net.dut.sysctl("net.ipv4.ip_forward", "1").unwrap();
            net.dut.sysctl("net.ipv6.conf.all.forwarding", "1").unwrap();
            // ECMP by 5-tuple, as the engine hashes flows.
            net.dut
                .sysctl("net.ipv4.fib_multipath_hash_policy", "1")
                .unwrap();
            return Middle::Kernel;
        }
        // The kernel forwards nothing: every forwarded packet is the engine's.
        net.dut.sysctl("net.ipv4.ip_forward", "0").unwrap();
        net.dut.sysctl("net.ipv6.conf.all.forwarding", "0").unwrap();
        let dir = Engine::dir(tag);
        let ctl = dir.join("ctl.sock");
        let cfg: String = net
            .subst(&example("router-bird.toml"))
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("ctl_socket") {
                    format!("ctl_socket = \"{}\"\n", ctl.display())
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert!(cfg.contains("mirror = true"), "{cfg}");
        let e = Engine::start(&net.dut, &dir, &cfg, &[]).expect("engine start");
        Middle::Engine(e)
    }

    fn engine(&self) -> Option<&Engine> {
        match self {
            Middle::Engine(e) => Some(e),
            Middle::Kernel => None,
        }
    }

    /// The engine's log and routes, for failure messages.
    fn debug(&self) -> String {
        match self {
            Middle::Engine(e) => format!(
                "engine routes:\n{}\nengine log:\n{}",
                text(&e.ctl(&["route", "show"])),
                e.log()
            ),
            Middle::Kernel => "(kernel router in the middle)".into(),
        }
    }

    /// The engine's routes (`ctl --json route show`): prefix -> next hops (gateway, port).
    fn routes(&self) -> Option<Routes> {
        let e = self.engine()?;
        let o = e.ctl(&["--json", "route", "show"]);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("route show JSON");
        let mut m = BTreeMap::new();
        for r in v["records"].as_array().into_iter().flatten() {
            let hops = r["nexthops"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    (
                        h["gateway"].as_str().map(String::from),
                        h["dev"].as_str().map(String::from),
                    )
                })
                .collect();
            // Several routes of one prefix: the lowest metric (listed first) is used.
            m.entry(r["prefix"].as_str().unwrap_or("").to_string())
                .or_insert(hops);
        }
        Some(m)
    }

    /// A port's counter from `ctl --json stats` (`tx_packets`, ...).
    fn port_counter(&self, port: &str, name: &str) -> u64 {
        let Some(e) = self.engine() else { return 0 };
        let o = e.ctl(&["--json", "stats"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stats JSON");
        v["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["group"] == "port" && r["port"] == port && r["name"] == name)
            .filter_map(|r| r["value"].as_u64())
            .sum()
    }
}

/// A BIRD peer: `statics` are (protocol name, prefixes) announced to the engine's BIRD.
fn peer_bird_conf(
    id: &str,
    asn: u32,
    engine4: &str,
    engine6: &str,
    statics: &[(&str, &[&str])],
) -> String {
    let mut c = format!("router id {id};\nlog stderr all;\nprotocol device {{ scan time 10; }}\n");
    for (name, prefixes) in statics {
        let fam = if prefixes.iter().any(|p| p.contains(':')) {
            "ipv6"
        } else {
            "ipv4"
        };
        c += &format!("protocol static {name} {{\n    {fam};\n");
        for p in *prefixes {
            c += &format!("    route {p} blackhole;\n");
        }
        c += "}\n";
    }
    for (proto, fam, nb) in [("engine", "ipv4", engine4), ("engine_v6", "ipv6", engine6)] {
        c += &format!(
            "protocol bgp {proto} {{\n    local as {asn};\n    neighbor {nb} as 65000;\n    \
             connect delay time 0;\n    connect retry time 1;\n    error wait time 1, 5;\n    \
             {fam} {{ import all; export where source = RTS_STATIC; }};\n}}\n"
        );
    }
    c
}

/// nftables counters in a peer: packets to each (name, nft match) arriving at its input hook.
fn peer_counters(ns: &Netns, rules: &[(&str, &str)]) {
    let mut r = String::from(
        "table inet cnt {\n chain in {\n  type filter hook input priority 0; policy accept;\n",
    );
    for (name, m) in rules {
        r += &format!("  {m} counter comment \"{name}\"\n");
    }
    r += " }\n}\n";
    let o = ns
        .command("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(r.as_bytes())?;
            c.wait_with_output()
        })
        .expect("nft");
    assert!(o.status.success(), "nft: {}\n{r}", text(&o));
}

/// The value of a peer's counter `name`.
fn peer_count(ns: &Netns, name: &str) -> u64 {
    let o = sh(ns, "nft -j list table inet cnt");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    for item in v["nftables"].as_array().into_iter().flatten() {
        let rule = &item["rule"];
        if rule["comment"] == name {
            for e in rule["expr"].as_array().into_iter().flatten() {
                if let Some(n) = e["counter"]["packets"].as_u64() {
                    return n;
                }
            }
        }
    }
    0
}

/// BIRD everywhere: the engine-side BIRD (examples/bird.conf) and two BIRD peers.
struct BgpLab {
    net: Net,
    mid: Middle,
    _edge: Bird,
    peer1: Bird,
    _peer2: Bird,
}

/// Prefixes of the BGP tests. p1: 198.18.100.0/24 (withdrawn by the test), 198.18.50.0/24
/// (ECMP), 2001:2:0:100::/64 (withdrawn), 2001:2:0:50::/64 (ECMP). p2: 198.18.50.0/24,
/// 198.18.200.0/24, 2001:2:0:50::/64, 2001:2:0:100::/56 (less specific than p1's /64).
fn bgp_lab(tag: &str) -> BgpLab {
    let net = Net::new(tag);
    let mid = Middle::start(&net, tag);
    let dir = Engine::dir(&format!("{tag}-daemons"));
    // Addresses the peers answer for, on their loopback.
    for (ns, addrs) in [
        (
            &net.p1,
            &[
                "198.18.100.1/32",
                "198.18.50.1/32",
                "2001:2:0:100::1/128",
                "2001:2:0:50::1/128",
            ][..],
        ),
        (
            &net.p2,
            &[
                "198.18.200.1/32",
                "198.18.50.1/32",
                "2001:2:0:100::1/128",
                "2001:2:0:50::1/128",
            ][..],
        ),
    ] {
        for a in addrs {
            ns.ip(&["addr", "add", a, "dev", "lo"]).unwrap();
        }
    }
    for ns in [&net.p1, &net.p2] {
        peer_counters(
            ns,
            &[
                ("ecmp4", "ip daddr 198.18.50.1 udp dport 5555"),
                ("ecmp6", "ip6 daddr 2001:2:0:50::1 udp dport 5555"),
                ("v6wd", "ip6 daddr 2001:2:0:100::1 icmpv6 type echo-request"),
            ],
        );
    }
    let peer1 = Bird::start(
        &net.p1,
        &dir,
        "peer1",
        &peer_bird_conf(
            "198.19.1.2",
            65001,
            "198.19.1.1",
            "2001:2:0:11::1",
            &[
                ("keep4", &["198.18.50.0/24"]),
                ("wd4", &["198.18.100.0/24"]),
                ("keep6", &["2001:2:0:50::/64"]),
                ("wd6", &["2001:2:0:100::/64"]),
            ],
        ),
    )
    .unwrap();
    let peer2 = Bird::start(
        &net.p2,
        &dir,
        "peer2",
        &peer_bird_conf(
            "198.19.2.2",
            65002,
            "198.19.2.1",
            "2001:2:0:12::1",
            &[
                ("keep4", &["198.18.50.0/24", "198.18.200.0/24"]),
                ("keep6", &["2001:2:0:50::/64", "2001:2:0:100::/56"]),
            ],
        ),
    )
    .unwrap();
    let edge = Bird::start(&net.dut, &dir, "edge", &net.subst(&example("bird.conf"))).unwrap();
    let t = edge
        .wait_established(
            &["peer1", "peer2", "peer1_v6", "peer2_v6"],
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", mid.debug()));
    println!("BGP sessions established in {t:?}");
    BgpLab {
        net,
        mid,
        _edge: edge,
        peer1,
        _peer2: peer2,
    }
}

impl BgpLab {
    /// Waits until the kernel of the engine's namespace has every prefix of `want`
    /// and (with the engine) the engine's FIB too; returns the engine's wait.
    fn converge(&self, want: &[&str]) -> Duration {
        let kernel_has = |p: &str| {
            let fam = if p.contains(':') { "-6" } else { "-4" };
            let o = self
                .net
                .dut
                .ip(&[fam, "route", "show", "exact", p])
                .unwrap();
            !o.stdout.is_empty()
        };
        if let Err(t) = wait_for(Duration::from_secs(15), Duration::from_millis(20), || {
            want.iter().all(|p| kernel_has(p)).then_some(())
        }) {
            panic!(
                "BIRD did not install {want:?} into the kernel within {t:?}:\n{}\n{}\n{}",
                sh(&self.net.dut, "ip route; ip -6 route")
                    .stdout
                    .escape_ascii(),
                self._edge.birdc(&["show", "route", "all"]),
                self.mid.debug()
            );
        }
        let t0 = Instant::now();
        if self.mid.engine().is_some() {
            if let Err(t) = wait_for(Duration::from_secs(5), Duration::from_millis(5), || {
                let r = self.mid.routes()?;
                want.iter().all(|p| r.contains_key(*p)).then_some(())
            }) {
                panic!(
                    "the engine lacks {want:?} after {t:?}:\n{}",
                    self.mid.debug()
                );
            }
        }
        t0.elapsed()
    }
}

fn ping_ok(ns: &Netns, args: &str, mid: &Middle) -> String {
    let o = sh(ns, &format!("ping {args}"));
    assert!(
        o.status.success(),
        "ping {args}: {}\n{}",
        text(&o),
        mid.debug()
    );
    text(&o)
}

#[test]
fn bird_bgp_routes_are_forwarded_by_the_engine() {
    let lab = bgp_lab("bgpf");
    let waited = lab.converge(&[
        "198.18.100.0/24",
        "198.18.200.0/24",
        "2001:2:0:100::/64",
        "2001:2:0:50::/64",
    ]);
    println!("engine FIB had the BGP routes {waited:?} after the kernel");
    println!(
        "kernel routes from BIRD:\n{}",
        text(&sh(
            &lab.net.dut,
            "ip route show proto bird; ip -6 route show proto bird"
        ))
    );
    let tx1 = lab.mid.port_counter("up1", "tx_packets");
    let tx2 = lab.mid.port_counter("up2", "tx_packets");
    // h1 -> p1 and h1 -> p2 (IPv4), h1 -> p1 (IPv6): one hop through the middle.
    let o = ping_ok(&lab.net.h1, "-c 5 -i 0.1 -W 2 198.18.100.1", &lab.mid);
    assert!(o.contains("ttl=63"), "one router crossed: {o}");
    ping_ok(&lab.net.h1, "-c 5 -i 0.1 -W 2 198.18.200.1", &lab.mid);
    let o = ping_ok(&lab.net.h1, "-6 -c 5 -i 0.1 -W 2 2001:2:0:100::1", &lab.mid);
    assert!(o.contains("ttl=63") || o.contains("hlim=63"), "{o}");
    if let Some(e) = lab.mid.engine() {
        // The BGP routes are the mirror's (`proto kernel`), not configured ones.
        let show = e.ctl_ok(&["route", "show"]);
        for p in ["198.18.100.0/24", "198.18.200.0/24", "2001:2:0:100::/64"] {
            let line = show.lines().find(|l| l.contains(p)).unwrap_or("");
            assert!(
                line.trim_end().ends_with("proto kernel"),
                "{p}: `{line}`\n{show}"
            );
        }
        let d1 = lab.mid.port_counter("up1", "tx_packets") - tx1;
        let d2 = lab.mid.port_counter("up2", "tx_packets") - tx2;
        println!("engine sent {d1} packets on up1, {d2} on up2");
        assert!(
            d1 >= 10 && d2 >= 5,
            "the engine forwarded the pings: up1 {d1}, up2 {d2}\n{}",
            lab.mid.debug()
        );
        let fwd = sh(
            &lab.net.dut,
            "sysctl -n net.ipv4.ip_forward net.ipv6.conf.all.forwarding",
        );
        assert_eq!(
            String::from_utf8_lossy(&fwd.stdout)
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["0", "0"]
        );
    }
    routes_agree_with_kernel(&lab.net, &lab.mid);
}

#[test]
fn bird_bgp_withdrawal_leaves_the_engine_within_1s() {
    let lab = bgp_lab("bgpw");
    lab.converge(&["198.18.100.0/24", "2001:2:0:100::/64", "2001:2:0:100::/56"]);
    ping_ok(&lab.net.h1, "-c 2 -i 0.1 -W 2 198.18.100.1", &lab.mid);
    ping_ok(&lab.net.h1, "-6 -c 2 -i 0.1 -W 2 2001:2:0:100::1", &lab.mid);
    assert_eq!(
        peer_count(&lab.net.p2, "v6wd"),
        0,
        "p1's /64 wins over p2's /56"
    );
    // p1 withdraws 198.18.100.0/24 and 2001:2:0:100::/64.
    let t0 = Instant::now();
    for proto in ["wd4", "wd6"] {
        let o = lab.peer1.birdc(&["disable", proto]);
        assert!(o.contains("disabled"), "{o}");
    }
    let gone = |p: &str| -> Option<()> {
        match lab.mid.routes() {
            Some(r) => (!r.contains_key(p)).then_some(()),
            None => {
                let fam = if p.contains(':') { "-6" } else { "-4" };
                let o = lab.net.dut.ip(&[fam, "route", "show", "exact", p]).ok()?;
                o.stdout.is_empty().then_some(())
            }
        }
    };
    let within = Duration::from_secs(1);
    let r = wait_for(Duration::from_secs(5), Duration::from_millis(2), || {
        (gone("198.18.100.0/24").is_some() && gone("2001:2:0:100::/64").is_some()).then_some(())
    });
    let took = match r {
        Ok(((), _)) => t0.elapsed(),
        Err(t) => panic!(
            "withdrawn routes still there after {t:?}\n{}",
            lab.mid.debug()
        ),
    };
    println!(
        "withdrawal: from `birdc disable` on the peer to the route gone from the {}: {took:?}",
        if lab.mid.engine().is_some() {
            "engine's FIB"
        } else {
            "kernel"
        }
    );
    assert!(
        took < within,
        "withdrawal took {took:?} (limit {within:?})\n{}",
        lab.mid.debug()
    );
    // IPv4: nothing covers 198.18.100.1 any more: the router says Net Unreachable.
    let o = text(&sh(&lab.net.h1, "ping -c 1 -W 2 198.18.100.1"));
    assert!(
        o.contains("From 198.18.1.1") && o.contains("Destination Net Unreachable"),
        "{o}\n{}",
        lab.mid.debug()
    );
    // IPv6: the less specific /56 of p2 carries it now.
    ping_ok(&lab.net.h1, "-6 -c 3 -i 0.1 -W 2 2001:2:0:100::1", &lab.mid);
    assert!(
        peer_count(&lab.net.p2, "v6wd") >= 3,
        "p2 got the pings after the withdrawal"
    );
    // And back: re-announced, the /24 is forwarded again.
    let o = lab.peer1.birdc(&["enable", "wd4"]);
    assert!(o.contains("enabled"), "{o}");
    lab.converge(&["198.18.100.0/24"]);
    ping_ok(&lab.net.h1, "-c 2 -i 0.1 -W 2 198.18.100.1", &lab.mid);
}

/// Sends one UDP datagram from each of `n` source ports to `dst`:5555 from h1.
fn udp_flows(ns: &Netns, dst: &str, n: u16) {
    let fam = if dst.contains(':') {
        "AF_INET6"
    } else {
        "AF_INET"
    };
    let py = format!(
        "import socket\nfor p in range(40000, 40000 + {n}):\n s = socket.socket(socket.{fam}, socket.SOCK_DGRAM)\n \
         s.bind(('', p))\n s.sendto(b'x' * 32, ('{dst}', 5555))\n s.close()\n"
    );
    let o = ns
        .command("python3")
        .args(["-c", &py])
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn bird_bgp_ecmp_spreads_flows_over_both_peers() {
    let lab = bgp_lab("bgpe");
    lab.converge(&["198.18.50.0/24", "2001:2:0:50::/64"]);
    // BIRD's `merge paths`: one kernel route with a next hop per peer ...
    let k = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        let o = text(&lab.net.dut.ip(&["route", "show", "198.18.50.0/24"]).ok()?);
        (o.contains("198.19.1.2") && o.contains("198.19.2.2")).then_some(o)
    })
    .unwrap_or_else(|t| {
        panic!(
            "no multipath kernel route after {t:?}:\n{}",
            lab._edge.birdc(&["show", "route", "all"])
        )
    })
    .0;
    println!("kernel: {k}");
    // ... that the engine mirrors as one ECMP group.
    if lab.mid.engine().is_some() {
        let r = wait_for(Duration::from_secs(2), Duration::from_millis(5), || {
            let hops = lab.mid.routes()?.get("198.18.50.0/24")?.clone();
            (hops.len() == 2).then_some(hops)
        })
        .unwrap_or_else(|t| {
            panic!(
                "no 2-hop ECMP route in the engine after {t:?}\n{}",
                lab.mid.debug()
            )
        })
        .0;
        println!("engine: 198.18.50.0/24 {r:?}");
    }
    let n = 64;
    // Warm the neighbor entries (first packets may wait for ARP/ND).
    let _ = sh(
        &lab.net.h1,
        "ping -c 1 -W 1 198.19.1.2; ping -c 1 -W 1 198.19.2.2",
    );
    let before = [
        lab.mid.port_counter("up1", "tx_packets"),
        lab.mid.port_counter("up2", "tx_packets"),
    ];
    udp_flows(&lab.net.h1, "198.18.50.1", n);
    udp_flows(&lab.net.h1, "2001:2:0:50::1", n);
    std::thread::sleep(Duration::from_millis(300));
    let c4 = [
        peer_count(&lab.net.p1, "ecmp4"),
        peer_count(&lab.net.p2, "ecmp4"),
    ];
    let c6 = [
        peer_count(&lab.net.p1, "ecmp6"),
        peer_count(&lab.net.p2, "ecmp6"),
    ];
    println!(
        "ECMP over {n} flows: IPv4 p1 {} p2 {}, IPv6 p1 {} p2 {}",
        c4[0], c4[1], c6[0], c6[1]
    );
    for (fam, c) in [("IPv4", c4), ("IPv6", c6)] {
        assert!(
            c[0] + c[1] >= u64::from(n) - 2,
            "{fam}: flows lost: {c:?}\n{}",
            lab.mid.debug()
        );
        assert!(
            c[0] >= 8 && c[1] >= 8,
            "{fam}: flows not spread over both peers: {c:?}\n{}",
            lab.mid.debug()
        );
    }
    if lab.mid.engine().is_some() {
        let d = [
            lab.mid.port_counter("up1", "tx_packets") - before[0],
            lab.mid.port_counter("up2", "tx_packets") - before[1],
        ];
        println!("engine tx: up1 +{}, up2 +{}", d[0], d[1]);
        assert!(
            d[0] >= c4[0] + c6[0] && d[1] >= c4[1] + c6[1],
            "the engine carried them: {d:?}"
        );
    }
}

/// The engine's answer for `addr`: longest match over `routes`, its next hops.
fn engine_lookup(routes: &Routes, addr: IpAddr) -> Option<(&str, &Hops)> {
    let bits = |a: IpAddr| -> (u128, u32) {
        match a {
            IpAddr::V4(v) => (u128::from(u32::from(v)) << 96, 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        }
    };
    let (a, w) = bits(addr);
    let mut best: Option<(u32, &str, &Hops)> = None;
    for (p, hops) in routes {
        let Some((net, len)) = p.split_once('/') else {
            continue;
        };
        let (Ok(net), Ok(len)) = (net.parse::<IpAddr>(), len.parse::<u32>()) else {
            continue;
        };
        let (n, nw) = bits(net);
        if nw != w || len > w {
            continue;
        }
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        if a & mask == n & mask && best.is_none_or(|b| len > b.0) {
            best = Some((len, p, hops));
        }
    }
    best.map(|(_, p, h)| (p, h))
}

/// After convergence the engine and the kernel agree: `ip route get` on addresses of every
/// kernel route in the test ranges (first, last and a middle address) and on some addresses
/// no route covers, against the longest match over `ctl route show`.
fn routes_agree_with_kernel(net: &Net, mid: &Middle) {
    let Some(routes) = mid.routes() else { return };
    let mut samples: Vec<IpAddr> = vec![
        "198.18.77.7".parse().unwrap(),
        "198.19.250.1".parse().unwrap(),
        "2001:2:0:77::7".parse().unwrap(),
    ];
    for fam in ["-4", "-6"] {
        let o = net
            .dut
            .ip(&[fam, "route", "show", "table", "main"])
            .unwrap();
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let Some((p, len)) = line
                .split_whitespace()
                .next()
                .and_then(|p| p.split_once('/'))
            else {
                continue;
            };
            let (Ok(p), Ok(len)) = (p.parse::<IpAddr>(), len.parse::<u32>()) else {
                continue;
            };
            let in_range = match p {
                IpAddr::V4(v) => v.octets()[0] == 198 && (v.octets()[1] & 0xfe) == 18,
                IpAddr::V6(v) => {
                    v.segments()[0] == 0x2001 && v.segments()[1] == 2 && v.segments()[2] == 0
                }
            };
            if !in_range {
                continue;
            }
            let (base, w) = match p {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            };
            let host = if w - len >= 128 {
                u128::MAX
            } else {
                (1u128 << (w - len)) - 1
            };
            for off in [1u128, host / 2 + 1, host.saturating_sub(1)] {
                let x = base | (off & host);
                samples.push(match p {
                    IpAddr::V4(_) => IpAddr::V4((x as u32).into()),
                    IpAddr::V6(_) => IpAddr::V6(x.into()),
                });
            }
        }
    }
    let own: Vec<IpAddr> = PORTS
        .iter()
        .flat_map(|(_, _, a, b)| [a, b])
        .filter_map(|c| c.split('/').next()?.parse().ok())
        .collect();
    let mut checked = 0;
    for a in samples.iter().filter(|a| !own.contains(a)) {
        let o = net.dut.ip(&["route", "get", &a.to_string()]);
        let kernel = o
            .as_ref()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        let engine = engine_lookup(&routes, *a);
        match (&kernel, engine) {
            // No route, or a reject route (blackhole, unreachable, prohibit: no next hop) in both.
            (Err(_), None) => {}
            (Err(_), Some((_, hops))) if hops.is_empty() => {}
            (Ok(k), Some((p, hops))) if !k.starts_with("local") => {
                let words: Vec<&str> = k.split_whitespace().collect();
                let kgw = words
                    .windows(2)
                    .find(|w| w[0] == "via")
                    .map(|w| w[1].to_string());
                let kdev = words.windows(2).find(|w| w[0] == "dev").map(|w| w[1]);
                let kport = kdev.and_then(|d| net.port_of(d));
                let agree = hops.iter().any(|(gw, dev)| {
                    gw.as_deref() == kgw.as_deref() && (dev.is_none() || dev.as_deref() == kport)
                });
                assert!(
                    agree,
                    "{a}: kernel `{}` but the engine's {p} -> {hops:?}\n{}",
                    k.trim(),
                    mid.debug()
                );
            }
            (k, e) => panic!("{a}: kernel {k:?}, engine {e:?}\n{}", mid.debug()),
        }
        checked += 1;
    }
    println!(
        "engine and kernel agree on {checked} sampled addresses ({} engine routes)",
        routes.len()
    );
    assert!(checked >= 10, "too few samples: {samples:?}");
}

/// The OSPF router of peer 1 (FRR): a stub network behind it (its loopback's 198.18.150.1,
/// which OSPF announces as a host route); LSAs and SPF without hold-down, so the test is quick.
fn peer_ospf_conf(iface: &str) -> String {
    format!(
        "frr defaults traditional\nhostname peer1\n!\ninterface {iface}\n ip ospf network point-to-point\n \
         ip ospf hello-interval 1\n ip ospf dead-interval 4\n ip ospf retransmit-interval 1\n!\nrouter ospf\n ospf router-id 198.19.1.2\n \
         timers throttle lsa all 0\n timers throttle spf 0 50 1000\n \
         network 198.19.1.0/24 area 0\n network 198.18.150.0/24 area 0\n!\n"
    )
}

#[test]
fn frr_ospf_and_bgp_through_the_engine() {
    let net = Net::new("ospf");
    let mid = Middle::start(&net, "ospf");
    let dir = Engine::dir("ospf-daemons");
    // p1 (FRR, OSPF) has 198.18.150.1; p2 (BIRD, BGP) announces 198.18.160.0/24.
    net.p1
        .ip(&["addr", "add", "198.18.150.1/24", "dev", "lo"])
        .unwrap();
    net.p2
        .ip(&["addr", "add", "198.18.160.1/32", "dev", "lo"])
        .unwrap();
    let _p1 = Frr::start(
        &net.p1,
        &dir,
        "p1",
        &peer_ospf_conf(&net.up1.b.name),
        &["ospfd"],
    )
    .unwrap();
    let p2 = Bird::start(
        &net.p2,
        &dir,
        "p2",
        &peer_bird_conf(
            "198.19.2.2",
            65002,
            "198.19.2.1",
            "2001:2:0:12::1",
            &[("keep4", &["198.18.160.0/24"])],
        ),
    )
    .unwrap();
    let edge = Frr::start(
        &net.dut,
        &dir,
        "edge",
        &net.subst(&example("frr.conf")),
        &["ospfd", "bgpd"],
    )
    .unwrap();
    let t0 = Instant::now();
    let full = wait_for(Duration::from_secs(20), Duration::from_millis(100), || {
        let o = edge.vtysh("show ip ospf neighbor");
        o.contains("Full").then_some(o)
    });
    let (nbr, t) = full.unwrap_or_else(|t| {
        panic!(
            "no OSPF adjacency after {t:?}:\n{}\n{}\n{}",
            edge.vtysh("show ip ospf interface"),
            edge.logs(),
            mid.debug()
        )
    });
    println!("OSPF adjacency Full after {t:?}:\n{nbr}");
    p2.wait_established(&["engine"], Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", edge.vtysh("show bgp summary")));
    // zebra installs both into the kernel; the engine mirrors them.
    let mut seen = [None, None];
    let kernel = wait_for(Duration::from_secs(15), Duration::from_millis(50), || {
        let o = text(&net.dut.ip(&["route", "show"]).ok()?);
        // `ip route` prints a host route without its /32.
        for (i, p) in ["198.18.150.1 ", "198.18.160.0/24"].iter().enumerate() {
            if o.contains(p) && seen[i].is_none() {
                seen[i] = Some(t0.elapsed());
            }
        }
        seen.iter().all(Option::is_some).then_some(o)
    })
    .unwrap_or_else(|t| {
        panic!(
            "routes not in the kernel after {t:?}:\n{}",
            edge.vtysh("show ip route")
        )
    })
    .0;
    println!(
        "routes in the kernel after start: OSPF {:?}, BGP {:?}:\n{kernel}",
        seen[0], seen[1]
    );
    if mid.engine().is_some() {
        wait_for(Duration::from_secs(2), Duration::from_millis(5), || {
            let r = mid.routes()?;
            (r.contains_key("198.18.150.1/32") && r.contains_key("198.18.160.0/24")).then_some(())
        })
        .unwrap_or_else(|t| {
            panic!(
                "the engine lacks the OSPF/BGP routes after {t:?}\n{}",
                mid.debug()
            )
        });
    }
    let tx = mid.port_counter("up1", "tx_packets");
    let o = ping_ok(&net.h1, "-c 5 -i 0.1 -W 2 198.18.150.1", &mid);
    assert!(o.contains("ttl=63"), "{o}");
    ping_ok(&net.h1, "-c 3 -i 0.1 -W 2 198.18.160.1", &mid);
    if mid.engine().is_some() {
        let d = mid.port_counter("up1", "tx_packets") - tx;
        assert!(
            d >= 5,
            "the engine forwarded the pings to the OSPF route: {d}\n{}",
            mid.debug()
        );
    }
    // The peers learned the engine's LAN (OSPF stub network, BGP `network`): h1 is reachable.
    routes_agree_with_kernel(&net, &mid);
}

/// The full IPv4 table (bench/data/bgp-prefixes.txt.gz) announced by one BIRD peer; the time
/// from the session's start to the engine's FIB holding every prefix, and the engine's RSS.
/// Slow (a minute or more): ignored by default, run by scripts/fulltable-bgp.sh.
#[test]
#[ignore = "slow (a minute or more): scripts/fulltable-bgp.sh runs it"]
fn full_table_through_bgp() {
    let net = Net::new("full");
    let mid = Middle::start(&net, "full");
    let dir = Engine::dir("full-daemons");
    // The IPv4 prefixes as BIRD static routes, included by peer 1's configuration.
    let data =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/data/bgp-prefixes.txt.gz");
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zcat {} | tr -d '\\r' | awk -F/ 'index($0, \":\") == 0 && NF == 2 {{ print \"route \" $0 \" blackhole;\" }}' > {}",
            data.display(),
            dir.join("full.routes").display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let include = std::fs::read_to_string(dir.join("full.routes")).unwrap();
    let n = include.lines().count();
    assert!(n > 900_000, "{n} prefixes");
    let mut conf = peer_bird_conf("198.19.1.2", 65001, "198.19.1.1", "2001:2:0:11::1", &[]);
    conf += &format!(
        "protocol static full4 {{\n    ipv4;\n    include \"{}\";\n}}\n",
        dir.join("full.routes").display()
    );
    let rss = || -> Option<u64> {
        let pid = mid.engine()?.pid()?;
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let l = s.lines().find(|l| l.starts_with("VmRSS:"))?;
        l.split_whitespace().nth(1)?.parse().ok()
    };
    // The kernel's IPv4 main-table prefixes, from /proc/net/fib_triestat (cheap, unlike a dump).
    let count_kernel = || -> usize {
        let o = sh(&net.dut, "cat /proc/net/fib_triestat");
        let t = String::from_utf8_lossy(&o.stdout).into_owned();
        t.split("Main:")
            .nth(1)
            .and_then(|m| {
                m.lines()
                    .find(|l| l.trim_start().starts_with("Prefixes:"))
                    .map(String::from)
            })
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    // The engine's pktengine_routes gauge (listing 900k routes twice a second would be the load).
    let count_engine = || -> usize {
        if mid.engine().is_none() {
            return 0;
        }
        let o = sh(&net.dut, "curl -s http://127.0.0.1:9108/metrics");
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find(|l| l.starts_with("pktengine_routes{family=\"ipv4\"}"))
            .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .map_or(0, |v| v as usize)
    };
    // Before: the connected routes only.
    let (k0, e0, rss0) = (count_kernel(), count_engine(), rss());
    let peer = Bird::start(&net.p1, &dir, "peer1", &conf).unwrap();
    let edge = Bird::start(&net.dut, &dir, "edge", &net.subst(&example("bird.conf"))).unwrap();
    let est = edge
        .wait_established(&["peer1"], Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\n{}", peer.log()));
    let t0 = Instant::now();
    println!("session up {est:?} after BIRD's start; {n} prefixes to carry (before: kernel {k0}, engine {e0})");
    let mut last = (0, 0);
    let (mut t_kernel, mut t_engine) = (None, None);
    let deadline = Duration::from_secs(600);
    let engine = mid.engine().is_some();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let k = count_kernel().saturating_sub(k0);
        let e = count_engine().saturating_sub(e0);
        if (k / 50_000, e / 50_000) != (last.0 / 50_000, last.1 / 50_000)
            || (k >= n) != (last.0 >= n)
        {
            println!(
                "{:>6.1} s: kernel {k}, engine {}",
                t0.elapsed().as_secs_f64(),
                if engine { e.to_string() } else { "-".into() }
            );
        }
        last = (k, e);
        if k >= n && t_kernel.is_none() {
            t_kernel = Some(t0.elapsed());
        }
        if e >= n && t_engine.is_none() {
            t_engine = Some(t0.elapsed());
        }
        if t_kernel.is_some() && (t_engine.is_some() || !engine) {
            break;
        }
        // A dead engine (a zombie has no VmRSS) fails the test at once, with its log.
        assert!(
            !engine || rss().is_some(),
            "the engine died after {:?}: kernel {k}, engine {e}\n{}",
            t0.elapsed(),
            mid.debug()
        );
        assert!(
            t0.elapsed() < deadline,
            "not converged after {deadline:?}: kernel {k}, engine {e}\n{}",
            mid.debug()
        );
    }
    let mem = match (rss0, rss()) {
        (Some(a), Some(b)) => format!(
            "engine RSS {} MiB (+{} MiB)",
            b / 1024,
            b.saturating_sub(a) / 1024
        ),
        _ => "engine RSS n/a (no engine)".into(),
    };
    let bird_mem = edge.birdc(&["show", "memory"]);
    let bird_total = bird_mem
        .lines()
        .find(|l| l.contains("Total"))
        .unwrap_or("")
        .trim()
        .to_string();
    println!(
        "FULL TABLE: {n} IPv4 prefixes; session up -> kernel holds all: {:?}; session up -> engine FIB holds all: {}; {mem}; engine-side BIRD {bird_total}",
        t_kernel.unwrap_or_default(),
        t_engine.map_or("-".to_string(), |t| format!("{t:?}"))
    );
    let _ = std::fs::remove_file(dir.join("full.routes"));
}
