//! Scale-out by BGP: two engines serve one VIP (maglev, the same backends), each announces it
//! through BIRD in its namespace (`[routing] announce_table`, BIRD's kernel protocol learning
//! that table, exported over BGP), and an upstream router running BIRD with multipath installs
//! an ECMP route over both. Clients behind the router spread over the two engines; `kill -9` of
//! one withdraws its route at the router (the announcer sees EOF and removes the kernel route,
//! BIRD withdraws) and new connections all reach the other; SIGTERM of the other withdraws the
//! VIP entirely.
//!
//! ```text
//!                                      ┌─ up [engine A] down ─┐  198.18.2.0/24, 198.18.4.0/24
//!  client ── router (BIRD, ECMP) ──────┤                      ├── backends 198.18.6.1, .2 (:80)
//!  198.18.1.2   198.18.1.1             └─ up [engine B] down ─┘  198.18.3.0/24, 198.18.5.0/24
//!                    └── mgmt veths (kernel, BGP) ── A 198.18.12.2/30, B 198.18.13.2/30
//! ```
//!
//! BGP runs over a management veth per engine, not through the engine's ports: the engine's
//! `kernel_control` (BGP to the kernel through its own ports) is separate work. The engines'
//! BIRD sets the BGP next hop to the engine's data address, so traffic takes the engine.
//!
//! Addresses only from 198.18.0.0/15; every namespace (and so every veth) goes with its guard.
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pktengine_tests::bg::Bg;
use pktengine_tests::engine::{example, Engine};
use pktengine_tests::{Netns, VethPair};

const VIP: &str = "198.18.100.1";
const TABLE: u32 = 100;

/// A BIRD daemon in a namespace, killed on drop.
struct Bird {
    child: Child,
    sock: PathBuf,
}

impl Bird {
    fn start(ns: &Netns, dir: &Path, name: &str, conf: &str) -> Bird {
        let cfg = dir.join(format!("{name}.conf"));
        std::fs::write(&cfg, conf).expect("bird config");
        let sock = dir.join(format!("{name}.ctl"));
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("bird log");
        let child = ns
            .command("bird")
            .args(["-f", "-c"])
            .arg(&cfg)
            .arg("-s")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("bird (bird2)");
        Bird { child, sock }
    }

    fn show(&self, what: &str) -> String {
        let o = Command::new("birdc")
            .arg("-s")
            .arg(&self.sock)
            .args(what.split_whitespace())
            .output()
            .expect("birdc");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Short BGP timers: the sessions come up within a second or two of the daemons.
const BGP_TIMERS: &str = "connect delay time 1; connect retry time 1; error wait time 1, 2;";

/// examples/bird-vip.conf (written for engine A) for engine `i`: it learns the announce
/// table and exports it with the engine's data address as next hop.
fn engine_bird(i: u8) -> String {
    let conf = example("bird-vip.conf");
    if i == 0 {
        return conf;
    }
    conf.replace("198.18.12.", &format!("198.18.{}.", 12 + i))
        .replace("198.18.2.2", &format!("198.18.{}.2", 2 + i))
}

/// The upstream router: both engines as peers, multipath into its kernel.
fn router_bird() -> String {
    format!(
        "router id 198.18.12.1;\n\
         protocol device {{}}\n\
         protocol kernel {{ ipv4 {{ import none; export all; }}; merge paths on; }}\n\
         protocol bgp a {{ local 198.18.12.1 as 65000; neighbor 198.18.12.2 as 65001; {BGP_TIMERS} ipv4 {{ import all; export none; }}; }}\n\
         protocol bgp b {{ local 198.18.13.1 as 65000; neighbor 198.18.13.2 as 65001; {BGP_TIMERS} ipv4 {{ import all; export none; }}; }}\n"
    )
}

/// examples/lb-announce.toml (written for engine A) for engine `i` on its interfaces, with or
/// without `announce_table`.
fn engine_config(ctl: &Path, i: u8, up: &str, down: &str, announce: bool) -> String {
    let mut c = example("lb-announce.toml")
        .replace("\"pe-up\"", &format!("\"{up}\""))
        .replace("\"pe-down\"", &format!("\"{down}\""))
        .replace("/run/pktengine/ctl.sock", &ctl.display().to_string())
        .replace("cores = [0]", &format!("cores = [{i}]"));
    if i == 1 {
        // Engine B polls busily: an idle busy worker must still count as running.
        c = c.replace("poll = \"adaptive\"", "poll = \"busy\"");
        c = c
            .replace("198.18.2.", "198.18.3.")
            .replace("198.18.4.", "198.18.5.");
    }
    if !announce {
        c = c.replace(&format!("announce_table = {TABLE}"), "");
    }
    assert!(c.contains(VIP), "{c}");
    c
}

/// Connections each engine's load balancer opened (`ctl lb show`, summed over backends).
fn lb_conns(e: &Engine) -> u64 {
    e.ctl_ok(&["lb", "show"])
        .lines()
        .filter(|l| l.trim_start().starts_with("backend "))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "conns")?;
            w.get(i + 1)?.parse::<u64>().ok()
        })
        .sum()
}

/// Waits (up to a second) until `ctl lb show` says `  vip VIP <state>`: the engine records the
/// announcer's answer on its next control round, which may come after the router has seen it.
fn until_shown(e: &Engine, state: &str) -> String {
    let want = format!("  vip {VIP} {state}");
    let t = Instant::now();
    loop {
        let shown = e.ctl_ok(&["lb", "show"]);
        if shown.contains(&want) || t.elapsed() > Duration::from_secs(1) {
            return shown;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The router's route to the VIP (`ip route show VIP`).
fn router_route(r: &Netns) -> String {
    r.ip(&["route", "show", VIP])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Waits until `cond` holds on the router's route to the VIP; returns how long it took.
fn until_route(r: &Netns, within: Duration, cond: impl Fn(&str) -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < within {
        if cond(&router_route(r)) {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// `n` connections from the client to the VIP, each reading the backend's answer; how many
/// succeeded.
fn connect_many(client: &Netns, n: usize) -> usize {
    client.run(move || {
        let vip: SocketAddr = format!("{VIP}:80").parse().expect("vip");
        let mut ok = 0;
        for _ in 0..n {
            let Ok(mut s) = TcpStream::connect_timeout(&vip, Duration::from_secs(3)) else {
                continue;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
            let mut buf = String::new();
            if s.read_to_string(&mut buf).is_ok() && buf.starts_with("198.18.6.") {
                ok += 1;
            }
        }
        ok
    })
}

/// A backend server on :80 answering each connection with the address it was reached at.
const SERVER: &str = "\
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 80)); s.listen(512); print('ready', flush=True)
def serve(c):
    try:
        c.sendall(c.getsockname()[0].encode()); c.close()
    except OSError: pass
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
";

struct Topo {
    client: Netns,
    router: Netns,
    engines: [Netns; 2],
    srv: Netns,
    /// (router─A data, router─B data, A─srv, B─srv): the engines' `up` and `down` ports.
    data: [VethPair; 2],
    down: [VethPair; 2],
    _rest: Vec<VethPair>,
}

fn topo() -> Topo {
    let client = Netns::new("soc").expect("netns");
    let router = Netns::new("sor").expect("netns");
    let engines = [
        Netns::new("soa").expect("netns"),
        Netns::new("sob").expect("netns"),
    ];
    let srv = Netns::new("sos").expect("netns");
    for ns in [&client, &router, &srv, &engines[0], &engines[1]] {
        for k in [
            "net.ipv6.conf.all.disable_ipv6",
            "net.ipv6.conf.default.disable_ipv6",
        ] {
            ns.sysctl(k, "1").expect("sysctl");
        }
    }
    router
        .sysctl("net.ipv4.ip_forward", "1")
        .expect("ip_forward");
    // ECMP by the L4 ports: connections of one client spread.
    router
        .sysctl("net.ipv4.fib_multipath_hash_policy", "1")
        .expect("multipath hash");
    let cr = VethPair::new(&client, &router, 1).expect("veth");
    cr.addr(&client, &cr.a, "198.18.1.2/24").expect("addr");
    cr.addr(&router, &cr.b, "198.18.1.1/24").expect("addr");
    client
        .ip(&["route", "add", "default", "via", "198.18.1.1"])
        .expect("client route");
    let mut rest = vec![cr];
    let data = [0u8, 1].map(|i| {
        let v = VethPair::new(&router, &engines[usize::from(i)], 1).expect("veth");
        v.addr(&router, &v.a, &format!("198.18.{}.1/24", 2 + i))
            .expect("addr");
        v
    });
    let down = [0u8, 1].map(|i| {
        let v = VethPair::new(&engines[usize::from(i)], &srv, 1).expect("veth");
        v.addr(&srv, &v.b, &format!("198.18.{}.1/24", 4 + i))
            .expect("addr");
        v
    });
    for i in 0..2u8 {
        let e = &engines[usize::from(i)];
        let m = VethPair::new(&router, e, 1).expect("mgmt veth");
        m.addr(&router, &m.a, &format!("198.18.{}.1/30", 12 + i))
            .expect("addr");
        m.addr(e, &m.b, &format!("198.18.{}.2/30", 12 + i))
            .expect("addr");
        rest.push(m);
    }
    for b in ["198.18.6.1/32", "198.18.6.2/32"] {
        srv.ip(&["addr", "add", b, "dev", "lo"]).expect("backend");
    }
    Topo {
        client,
        router,
        engines,
        srv,
        data,
        down,
        _rest: rest,
    }
}

#[test]
fn two_engines_share_a_vip_by_bgp_ecmp_and_a_killed_one_is_withdrawn() {
    let t = topo();
    let dir = Engine::dir("scaleout");
    let _server = Bg::spawn(&t.srv, dir.join("server.log"), &["-c", SERVER]);
    // The kill test can be run without the feature to see it fail: PKTENGINE_NO_ANNOUNCE=1.
    let announce = std::env::var("PKTENGINE_NO_ANNOUNCE").is_err();
    let engines: Vec<Engine> = (0..2u8)
        .map(|i| {
            let d = dir.join(format!("e{i}"));
            std::fs::create_dir_all(&d).expect("dir");
            let cfg = engine_config(
                &d.join("ctl.sock"),
                i,
                &t.data[usize::from(i)].b.name,
                &t.down[usize::from(i)].a.name,
                announce,
            );
            Engine::start(&t.engines[usize::from(i)], &d, &cfg, &[]).expect("engine")
        })
        .collect();
    let _birds: Vec<Bird> = (0..2u8)
        .map(|i| {
            Bird::start(
                &t.engines[usize::from(i)],
                &dir,
                &format!("bird-e{i}"),
                &engine_bird(i),
            )
        })
        .collect();
    let router_bird = Bird::start(&t.router, &dir, "bird-r", &router_bird());
    let diag = |what: &str| {
        format!(
            "{what}\nrouter route: {}\nrouter BIRD:\n{}\nengine A log:\n{}\nengine B log:\n{}",
            router_route(&t.router),
            router_bird.show("show route all"),
            engines[0].log(),
            engines[1].log()
        )
    };

    // Both engines announce: the router has an ECMP route over their data addresses.
    let both = |r: &str| r.contains("198.18.2.2") && r.contains("198.18.3.2");
    let took = until_route(&t.router, Duration::from_secs(15), both);
    assert!(took.is_some(), "{}", diag("no ECMP route to the VIP"));
    println!(
        "ECMP route at the router {:?} after BIRD started:\n{}",
        took.unwrap_or_default(),
        router_route(&t.router)
    );
    // Idle for longer than the workers' stall limit (2 s): still announced by both.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        both(&router_route(&t.router)),
        "{}",
        diag("an idle engine withdrew")
    );
    for e in &engines {
        let shown = until_shown(e, "announced");
        assert!(shown.contains(&format!("  vip {VIP} announced")), "{shown}");
    }
    // The kernel route the engine's announcer keeps, as BIRD reads it.
    let table = t.engines[0]
        .ip(&["route", "show", "table", &TABLE.to_string()])
        .expect("ip route");
    assert_eq!(
        String::from_utf8_lossy(&table.stdout).trim(),
        format!("blackhole {VIP} proto static")
    );

    // Connections spread over both engines.
    let n = 120;
    let ok = connect_many(&t.client, n);
    let (a, b) = (lb_conns(&engines[0]), lb_conns(&engines[1]));
    println!("{n} connections: {ok} answered; engine A opened {a}, engine B {b}");
    assert_eq!(ok, n, "{}", diag("connections failed"));
    assert!(
        a >= n as u64 / 5 && b >= n as u64 / 5,
        "flows did not spread over both engines: A {a}, B {b}\n{}",
        diag("")
    );

    // Engine A without a live backend (both set down by the operator) withdraws; one up again
    // announces again.
    for b in ["198.18.6.1:80", "198.18.6.2:80"] {
        engines[0].ctl_ok(&["lb", "backend", "set", "web", b, "down"]);
    }
    let only_b = |r: &str| !r.contains("198.18.2.2") && r.contains("198.18.3.2");
    let took = until_route(&t.router, Duration::from_secs(10), only_b);
    assert!(
        took.is_some(),
        "{}",
        diag("engine A kept its route without a live backend")
    );
    let shown = until_shown(&engines[0], "withdrawn");
    assert!(shown.contains(&format!("  vip {VIP} withdrawn")), "{shown}");
    println!(
        "no live backend on engine A: withdrawn at the router after {:.1} ms",
        took.unwrap_or_default().as_secs_f64() * 1000.0
    );
    engines[0].ctl_ok(&["lb", "backend", "set", "web", "198.18.6.2:80", "up"]);
    let took = until_route(&t.router, Duration::from_secs(10), both);
    assert!(
        took.is_some(),
        "{}",
        diag("engine A did not announce again")
    );

    // kill -9 engine A: its announcer sees EOF and removes the route, BIRD withdraws.
    let pid = engines[0].pid().expect("pid").to_string();
    let killed = Instant::now();
    let st = Command::new("kill").args(["-KILL", &pid]).status();
    assert!(st.is_ok_and(|s| s.success()));
    let gone = until_route(&t.router, Duration::from_secs(10), only_b);
    let gone = gone.map(|_| killed.elapsed());
    assert!(
        gone.is_some(),
        "{}",
        diag("the killed engine's route stayed at the router")
    );
    let gone = gone.unwrap_or_default();
    println!(
        "kill -9 to withdrawal seen at the router: {:.1} ms (BGP hold time 240 s not involved)",
        gone.as_secs_f64() * 1000.0
    );
    let left = t.engines[0]
        .ip(&["route", "show", "table", &TABLE.to_string()])
        .expect("ip route");
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "");

    // New connections all reach engine B.
    let before = lb_conns(&engines[1]);
    let m = 60;
    let ok = connect_many(&t.client, m);
    let after = lb_conns(&engines[1]);
    println!(
        "after the kill: {m} connections, {ok} answered, engine B opened {}",
        after - before
    );
    assert_eq!(ok, m, "{}", diag("connections failed after the kill"));
    assert_eq!(after - before, m as u64);

    // SIGTERM of engine B: it withdraws before it drains; the router has no route left.
    let mut engines = engines;
    let b = engines.pop().expect("engine B");
    let t0 = Instant::now();
    let st = b.stop(Duration::from_secs(10)).expect("engine B stops");
    assert!(st.0.success(), "engine B exit {:?}", st.0);
    let gone = until_route(&t.router, Duration::from_secs(10), |r| r.trim().is_empty());
    assert!(
        gone.is_some(),
        "engine B's route stayed after SIGTERM: {}\n{}",
        router_route(&t.router),
        router_bird.show("show route all")
    );
    let log = std::fs::read_to_string(dir.join("e1").join("engine.log")).unwrap_or_default();
    assert!(
        log.contains(&format!("lb: VIP {VIP} withdrawn (table {TABLE})")),
        "{log}"
    );
    println!(
        "SIGTERM to withdrawal seen at the router: {:.1} ms (engine exited in {:.1} ms)",
        t0.elapsed().as_secs_f64() * 1000.0,
        st.1.as_secs_f64() * 1000.0
    );
}

/// examples/frr-vip.conf is a configuration FRR takes (`vtysh --dryrun` parses every line as
/// the daemons would and fails on an unknown command).
#[test]
fn the_frr_example_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/frr-vip.conf");
    let o = Command::new("vtysh")
        .arg("--dryrun")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("vtysh (frr)");
    assert!(
        o.status.success() && o.stdout.is_empty() && o.stderr.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The announcer process alone, as the engine starts it: it keeps CAP_NET_ADMIN and nothing else,
/// runs under its seccomp filter, answers each change, withdraws everything after 5 s without a
/// word from the engine (a wedged control loop) and announces again when the engine speaks, and
/// withdraws everything and exits on EOF.
#[test]
fn the_announcer_keeps_net_admin_only_and_withdraws_on_silence_and_eof() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    let ns = Netns::new("soq").expect("netns");
    let table = || {
        let o = ns
            .ip(&["route", "show", "table", &TABLE.to_string()])
            .expect("ip route");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let (mut ours, theirs) = UnixStream::pair().expect("socketpair");
    let account =
        engine::runtime::privileges::Account::lookup("pktengine").expect("user pktengine");
    let mut child = ns
        .command(
            pktengine_tests::engine::pktengine_bin()
                .to_str()
                .expect("path"),
        )
        .args(["vip-announcer", "--table", &TABLE.to_string()])
        .args(["--vip", "198.18.100.1", "--vip", "198.18.100.2"])
        .args([
            "--uid",
            &account.uid.to_string(),
            "--gid",
            &account.gid.to_string(),
        ])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("pktengine vip-announcer");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    std::io::BufRead::read_line(&mut out, &mut line).expect("its report");
    assert!(
        line.starts_with("ok ")
            && line
                .contains("caps {cap_net_admin}, bounding set {}, no_new_privs, seccomp announcer"),
        "{line}"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("status");
    let field = |f: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(f))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    // CAP_NET_ADMIN is bit 12.
    assert_eq!(field("CapEff:"), "0000000000001000", "{status}");
    assert_eq!(field("CapPrm:"), "0000000000001000", "{status}");
    assert_eq!(field("CapBnd:"), "0000000000000000", "{status}");
    assert_eq!(field("Seccomp:"), "2", "{status}");
    assert!(
        field("Uid:").starts_with(&account.uid.to_string()),
        "{status}"
    );

    ours.set_read_timeout(Some(Duration::from_secs(8)))
        .expect("timeout");
    let ask = |ours: &mut UnixStream, cmd: u8| -> (u8, Duration) {
        let t = Instant::now();
        ours.write_all(&[cmd]).expect("command");
        let mut b = [0u8];
        ours.read_exact(&mut b).expect("answer");
        (b[0], t.elapsed())
    };
    assert_eq!(ask(&mut ours, 0x80).0, 0x80);
    assert_eq!(ask(&mut ours, 0x81).0, 0x81);
    assert_eq!(
        table(),
        "blackhole 198.18.100.1 proto static \nblackhole 198.18.100.2 proto static"
    );
    assert_eq!(ask(&mut ours, 0x01).0, 0x01);
    assert_eq!(table(), "blackhole 198.18.100.1 proto static");
    // Silence: the watchdog withdraws VIP 0 (its answer 0x00 is the next byte).
    let t = Instant::now();
    let mut b = [0u8];
    ours.read_exact(&mut b).expect("the watchdog's withdrawal");
    let silent = t.elapsed();
    println!("announcer watchdog: withdrew after {silent:?} of silence");
    assert_eq!(b[0], 0x00);
    assert!(silent >= Duration::from_secs(4), "{silent:?}");
    assert_eq!(table(), "");
    // The engine speaks again: announced again.
    assert_eq!(ask(&mut ours, 0x80).0, 0x80);
    assert_eq!(table(), "blackhole 198.18.100.1 proto static");
    // EOF: everything withdrawn, and it exits.
    drop(ours);
    let t = Instant::now();
    let st = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if t.elapsed() > Duration::from_secs(2) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(st.is_some_and(|s| s.success()), "{st:?}");
    assert_eq!(table(), "");
}
