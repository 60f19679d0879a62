//! `pktengine ctl --json` on a running engine (issue 25): every command that shows something
//! prints one document that the real `jq` reads, with real content: a route added with `ctl route
//! add`, the neighbor and the NAT session of a ping through the engine, a port's counter growing,
//! a TCP connection to the engine's echo app, a load-balancer service, a filter rule's hits, traced
//! packets, a MAC address the switch learned; errors as JSON with the exit status of text mode; and
//! a NAT table of 50,000 sessions streamed through the client without holding it whole.
//!
//! Topologies as tests/tests/nat.rs and switch.rs (examples/nat.toml and switch.toml, with their
//! own interface names and ctl socket). Every test builds its own namespaces (198.18.0.0/15 only),
//! removed on drop, also on panic.
use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pktengine_bench::gen::send::{self, SendConfig};
use pktengine_bench::gen::spec::{Proto, SizeSpec, TrafficSpec};
use pktengine_tests::bg::Bg;
use pktengine_tests::engine::{example, pktengine_bin, text, Engine, RouterTopo, SwitchTopo};

/// `jq -c FILTER` over `doc`; its output, trimmed. jq must accept the document.
fn jq(doc: &[u8], filter: &str) -> String {
    let mut c = Command::new("jq")
        .args(["-c", filter])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jq (scripts/deps.sh installs it)");
    let mut stdin = c.stdin.take().unwrap();
    let input = doc.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let o = c.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(
        o.status.success(),
        "jq '{filter}' refused the document: {}\n{}",
        text(&o),
        String::from_utf8_lossy(&doc[..doc.len().min(4000)])
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `jq FILTER` must say `true`.
fn jq_true(doc: &[u8], filter: &str) {
    assert_eq!(
        jq(doc, filter),
        "true",
        "jq '{filter}' over\n{}",
        String::from_utf8_lossy(&doc[..doc.len().min(4000)])
    );
}

/// `pktengine ctl --json ARGS`, which must succeed; its stdout.
fn json(e: &Engine, args: &[&str]) -> Vec<u8> {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = e.ctl(&a);
    assert!(
        o.status.success(),
        "ctl --json {args:?} failed: {}\nengine log:\n{}",
        text(&o),
        e.log()
    );
    assert!(
        o.stderr.is_empty(),
        "ctl --json {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn sh(ns: &pktengine_tests::Netns, cmd: &str) -> Output {
    ns.command("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The value of one counter in a `pktengine/stats` document.
fn stat(doc: &[u8], sel: &str) -> u64 {
    let v = jq(doc, &format!("[.records[] | select({sel}) | .value] | add"));
    v.parse()
        .unwrap_or_else(|_| panic!("no counter {sel}: {v}"))
}

#[test]
fn every_show_command_prints_a_document_jq_reads() {
    let t = RouterTopo::new("jsn").unwrap_or_else(|e| panic!("topology: {e}"));
    t.h2.ip(&["route", "del", "default"]).unwrap();
    let dir = Engine::dir("json");
    let cfg = t.config(&example("nat.toml"), &dir.join("ctl.sock"))
        + "\n[[tcp]]\napp = \"echo\"\nport = 7\n"
        + "\n[[lb]]\nname = \"web\"\nvip = \"198.19.1.100:80\"\nscheduler = \"maglev\"\nmode = \"dnat\"\nbackends = [\"198.19.1.2:8000 weight 2\"]\n"
        + "\n[filter]\nrules = [\"oif wan tcp dport 25 drop\"]\n";
    let e = Engine::start(&t.dut, &dir, &cfg, &[]).unwrap_or_else(|e| panic!("engine start: {e}"));
    let h2_mac = mac_text(t.right.mac(&t.h2, &t.right.b).unwrap());

    // stats: the lan port's received packets, before.
    let before = json(&e, &["stats"]);
    jq_true(
        &before,
        r#".schema == "pktengine/stats" and .version == 1 and (.records | length) > 50"#,
    );
    let lan_rx = |d: &[u8]| {
        stat(
            d,
            r#".group == "port" and .port == "lan" and .name == "rx_packets""#,
        )
    };
    let rx0 = lan_rx(&before);

    // A ping through the NAT: a neighbor, a session, the counter.
    let o = sh(&t.h1, "ping -c 3 -i 0.2 -W 2 198.19.1.2");
    assert!(o.status.success(), "ping: {}\n{}", text(&o), e.log());

    // route show: the route added with `ctl route add`, with its prefix, gateway and metric.
    e.ctl_ok(&[
        "route",
        "add",
        "198.19.200.0/24",
        "via",
        "198.19.1.2",
        "metric",
        "5",
    ]);
    let routes = json(&e, &["route", "show"]);
    jq_true(
        &routes,
        r#".schema == "pktengine/route-show" and .version == 1 and .summary.routes == (.records | length)"#,
    );
    assert_eq!(
        jq(
            &routes,
            r#".records[] | select(.prefix == "198.19.200.0/24") | [.family, .metric, .nexthops[0].gateway, .nexthops[0].dev]"#
        ),
        r#"["ipv4",5,"198.19.1.2",null]"#
    );
    assert_eq!(
        jq(
            &routes,
            r#".records[] | select(.prefix == "198.18.1.0/24") | .nexthops"#
        ),
        r#"[{"gateway":null,"dev":"lan"}]"#
    );
    // The flag after the command works too, and the text lists as many routes as the JSON.
    let o = e.ctl(&["route", "show", "--json"]);
    assert!(o.status.success() && o.stdout == routes, "{}", text(&o));
    let text_rows = e.ctl_ok(&["route", "show"]).lines().count();
    assert_eq!(jq(&routes, ".records | length"), text_rows.to_string());

    // arp show: h2, resolved on wan with its MAC.
    let arp = json(&e, &["arp", "show"]);
    assert_eq!(
        jq(
            &arp,
            r#".records[] | select(.address == "198.19.1.2") | [.port, .mac, .state, (.age_ms | type)]"#
        ),
        format!(r#"["wan","{h2_mac}","reachable","number"]"#)
    );

    // nat show: the ping's ICMP session, translated to the pool address.
    let nat = json(&e, &["nat", "show"]);
    jq_true(
        &nat,
        r#".schema == "pktengine/nat-show" and .summary.sessions_listed == (.records | length) and .summary.silent_workers == []"#,
    );
    assert_eq!(
        jq(
            &nat,
            r#".records[] | select(.proto == "icmp") | [.inside.addr, .outside.addr, .remote.addr, .state, .packets_out >= 3, .packets_in >= 3, .worker]"#
        ),
        r#"["198.18.1.2","198.19.1.1","198.19.1.2",null,true,true,0]"#
    );
    let text_sessions = e
        .ctl_ok(&["nat", "show"])
        .lines()
        .filter(|l| l.starts_with("icmp "))
        .count();
    assert_eq!(
        jq(&nat, r#"[.records[] | select(.proto == "icmp")] | length"#),
        text_sessions.to_string()
    );

    // stats again: the port's counter grew by the pings (3 echo requests, ARP).
    let after = json(&e, &["stats"]);
    let rx1 = lan_rx(&after);
    assert!(rx1 >= rx0 + 3, "lan rx_packets {rx0} -> {rx1}");
    assert!(stat(&after, r#".group == "stage" and .stage == "nat-out""#) >= 3);
    jq_true(
        &after,
        &format!(".summary.uptime_ns > {}", jq(&before, ".summary.uptime_ns")),
    );
    jq_true(
        &after,
        r#"[.records[] | select(.group == "drop") | (.stage != null and .reason != null and .name == "packets")] | all"#,
    );

    // tcp show: a connection to the echo app, held open.
    let conn = "import socket, time\n\
                s = socket.create_connection(('198.18.1.1', 7), timeout=5)\n\
                s.sendall(b'hello')\n\
                assert s.recv(5) == b'hello'\n\
                print('ready')\n\
                time.sleep(30)\n";
    let client = Bg::spawn(&t.h1, dir.join("client.log"), &["-c", conn]);
    let tcp = json(&e, &["tcp", "show"]);
    assert_eq!(
        jq(
            &tcp,
            r#".records[] | select(.local.port == 7) | [.local.addr, .remote.addr, .state, .bytes_in, .bytes_out, .cwnd_bytes > 0]"#
        ),
        r#"["198.18.1.1","198.18.1.2","established",5,5,true]"#,
        "{}",
        client.log()
    );
    jq_true(
        &tcp,
        ".summary.connections_listed == 1 and .summary.connections == 1",
    );
    drop(client);

    // lb show: the service and its backend.
    let lb = json(&e, &["lb", "show"]);
    assert_eq!(
        jq(&lb, ".records[] | [.name, .vip.addr, .vip.port, .proto, .scheduler, .mode, .snat, .backends_up]"),
        r#"["web","198.19.1.100",80,"tcp","maglev","dnat",null,1]"#
    );
    assert_eq!(
        jq(&lb, ".records[0].backends[0] | [.endpoint.addr, .endpoint.port, .weight, .state, .health_check_failed]"),
        r#"["198.19.1.2",8000,2,"up",false]"#
    );

    // filter show: the rule and its hits (a SYN to port 25 through the engine, dropped).
    let _ = sh(&t.h1, "nc -z -w 1 198.19.1.2 25");
    let filter = json(&e, &["filter", "show"]);
    assert_eq!(
        jq(
            &filter,
            ".records[0] | [.index, .rule, .action, .hits >= 1]"
        ),
        r#"[0,"oif wan tcp dport 25 drop","drop",true]"#
    );
    assert_eq!(
        jq(
            &filter,
            ".summary | [.rules, .default_policy, (.port_policies | map(.port))]"
        ),
        r#"[1,"accept",["lan","wan"]]"#
    );

    // trace: packets traced while it was on, and that it is off now.
    e.ctl_ok(&["trace", "on"]);
    let o = sh(&t.h1, "ping -c 2 -i 0.2 -W 2 198.19.1.2");
    assert!(o.status.success(), "{}", text(&o));
    let trace = json(&e, &["trace", "off"]);
    jq_true(
        &trace,
        r#".summary.enabled == false and .message == "trace is off" and .summary.packets == (.records | length)"#,
    );
    jq_true(
        &trace,
        r#"[.records[] | select(.port == "lan" and .outcome == "tx" and .out_port == "wan" and .frame_bytes == 98)] | length >= 2"#,
    );
    // The frames' heads: IPv4 (ethertype 0800 after the two MACs).
    jq_true(&trace, r#"any(.records[]; .head_hex[24:28] == "0800")"#);

    // mac show without a bridge: no records, and the engine says why.
    let mac = json(&e, &["mac", "show"]);
    assert_eq!(
        jq(&mac, "[.records, .summary, .message]"),
        r#"[[],{"entries":0,"bridges":0},"no bridge domain is configured"]"#
    );

    // Commands that change something: a result document.
    let del = json(&e, &["route", "del", "198.19.200.0/24"]);
    assert_eq!(
        jq(&del, "."),
        r#"{"schema":"pktengine/route-del","version":1,"message":"deleted 198.19.200.0/24"}"#
    );

    let pcap = dir.join("none.pcap");
    let cap = json(
        &e,
        &[
            "capture",
            "lan",
            "--count",
            "0",
            "--out",
            pcap.to_str().unwrap(),
        ],
    );
    assert_eq!(
        jq(&cap, "[.schema, .message]"),
        format!(
            r#"["pktengine/capture","0 frames written to {}"]"#,
            pcap.display()
        )
    );

    // Errors: exit status as in text mode, the error in the document on stdout, a line on stderr.
    let o = e.ctl(&[
        "--json",
        "route",
        "add",
        "198.19.300.0/24",
        "via",
        "198.19.1.2",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    jq_true(
        &o.stdout,
        r#".schema == "pktengine/route-add" and (.error.message | length) > 0 and .message == null"#,
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("pktengine ctl: "),
        "{}",
        text(&o)
    );
    let o = Command::new(pktengine_bin())
        .args([
            "ctl",
            "--socket",
            dir.join("nobody.sock").to_str().unwrap(),
            "--json",
            "nat",
            "show",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    jq_true(
        &o.stdout,
        r#".schema == "pktengine/nat-show" and (.error.message | startswith("cannot reach the engine")) and .records == null"#,
    );

    // stats --watch --json: a document a second, each whole.
    let mut w = Command::new(pktengine_bin())
        .args([
            "ctl",
            "--socket",
            e.ctl.to_str().unwrap(),
            "--json",
            "stats",
            "--watch",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = w.stdout.take().unwrap();
    let mut docs = Vec::new();
    let mut buf = [0u8; 65536];
    let t0 = Instant::now();
    // Each document ends with its summary line (`],"summary":...}`): two of them, then stop.
    while docs.windows(12).filter(|x| x == b"],\"summary\":").count() < 2
        && t0.elapsed() < Duration::from_secs(10)
    {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => docs.extend_from_slice(&buf[..n]),
        }
    }
    while !docs.ends_with(b"}\n") && t0.elapsed() < Duration::from_secs(10) {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => docs.extend_from_slice(&buf[..n]),
        }
    }
    let _ = w.kill();
    let _ = w.wait();
    let times = jq(&docs, "[.summary.uptime_ns]");
    let times: Vec<u64> = times
        .lines()
        .map(|l| l.trim_matches(['[', ']']).parse().unwrap())
        .collect();
    assert_eq!(times.len(), 2, "{}", String::from_utf8_lossy(&docs));
    let gap = Duration::from_nanos(times[1] - times[0]);
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_secs(3),
        "{gap:?} between readings"
    );
}

#[test]
fn mac_show_lists_a_learned_address() {
    let t = SwitchTopo::new("jsw").unwrap_or_else(|e| panic!("topology: {e}"));
    let dir = Engine::dir("jsw");
    let e = Engine::start(
        &t.dut,
        &dir,
        &t.config(&example("switch.toml"), &dir.join("ctl.sock")),
        &[],
    )
    .expect("engine start");
    let o = sh(&t.hosts[0], "for i in 1 2 3 4 5 6 7 8 9 10; do ping -c 1 -W 1 198.18.10.2 >/dev/null && exit 0; done; exit 1");
    assert!(
        o.status.success(),
        "the switch never forwarded:\n{}",
        e.log()
    );
    let h1 = mac_text(t.links[0].mac(&t.hosts[0], &t.links[0].a).unwrap());
    // Two readings, JSON then text, that saw the same table: the hosts' own traffic (IPv6
    // neighbour and router solicitations) may teach the bridge a station between two readings.
    let (mut mac, mut text_out) = (Vec::new(), String::new());
    for _ in 0..5 {
        mac = json(&e, &["mac", "show"]);
        text_out = e.ctl_ok(&["mac", "show"]);
        if text_out.lines().last()
            == Some(format!("{} entries", jq(&mac, ".summary.entries")).as_str())
        {
            break;
        }
    }
    jq_true(
        &mac,
        r#".schema == "pktengine/mac-show" and .summary.bridges == 1 and .summary.entries == (.records | length)"#,
    );
    assert_eq!(
        jq(
            &mac,
            &format!(
                r#".records[] | select(.mac == "{h1}") | [.bridge, .vlan, .port, .static, (.age_ms | type)]"#
            )
        ),
        r#"["br0",10,"p1",false,"number"]"#
    );
    // The text lists the same entries, with the same summary.
    assert!(
        text_out
            .lines()
            .any(|l| l.starts_with(&format!("br0 {h1} vlan 10 port p1 age "))),
        "{text_out}"
    );
    assert_eq!(
        text_out.lines().last(),
        Some(format!("{} entries", jq(&mac, ".summary.entries")).as_str())
    );
}

/// `ctl ARGS` as a client process: its output, whole, and its peak resident memory (VmHWM,
/// read from its /proc as it goes) once the first MiB of output was out and at the end, and its
/// CPU time in ms.
fn client_peaks(e: &Engine, args: &[&str]) -> (Vec<u8>, u64, u64, u64) {
    let mut c = Command::new(pktengine_bin())
        .args(["ctl", "--socket", e.ctl.to_str().unwrap()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", c.id());
    let hwm = || -> Option<u64> {
        let s = std::fs::read_to_string(&status).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let mut out = c.stdout.take().unwrap();
    let (mut doc, mut early, mut peak) = (Vec::new(), None, 0);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        // Sampled before each read: the client is alive while its output has not ended.
        peak = peak.max(hwm().unwrap_or(0));
        if early.is_none() && doc.len() >= 1 << 20 {
            early = Some(peak);
        }
        match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => doc.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{e}"),
        }
    }
    // Its CPU time, from its /proc entry once it has exited and before it is reaped (a zombie
    // keeps utime and stime, in ticks of 10 ms).
    let stat = format!("/proc/{}/stat", c.id());
    let t0 = Instant::now();
    let cpu_ms = loop {
        let st = std::fs::read_to_string(&stat).unwrap_or_default();
        let f: Vec<&str> = st
            .rsplit_once(") ")
            .map_or(vec![], |(_, r)| r.split_whitespace().collect());
        if f.first() == Some(&"Z") || t0.elapsed() > Duration::from_secs(2) {
            let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            break (tick(11) + tick(12)) * 10;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(c.wait().unwrap().success(), "ctl {args:?}");
    (doc, early.unwrap_or(peak), peak, cpu_ms)
}

#[test]
fn a_nat_show_of_50k_sessions_streams_as_one_document() {
    // Sessions wanted, and flows sent (a generator run loses some at its start; rounds lose the same).
    const SESSIONS: u64 = 50_000;
    const FLOWS: u64 = 52_000;
    let t = RouterTopo::new("jbg").unwrap_or_else(|e| panic!("topology: {e}"));
    t.h2.ip(&["route", "del", "default"]).unwrap();
    let dir = Engine::dir("jbg");
    let cfg = t.config(&example("nat.toml"), &dir.join("ctl.sock"));
    let e = Engine::start(&t.dut, &dir, &cfg, &[]).unwrap_or_else(|e| panic!("engine start: {e}"));
    let o = sh(&t.h1, "ping -c 1 -W 2 198.19.1.2");
    assert!(
        o.status.success(),
        "ping through the NAT: {}\n{}",
        text(&o),
        e.log()
    );
    let h1_mac = t.left.mac(&t.h1, &t.left.a).unwrap();
    let lan_mac = t.left.mac(&t.dut, &t.left.b).unwrap();
    // 52,000 UDP flows (one source port, as many destination ports), a packet each, again if too many were lost.
    let sessions = |e: &Engine| {
        stat(
            &json(e, &["stats"]),
            r#".group == "nat" and .name == "sessions""#,
        )
    };
    let t0 = Instant::now();
    for _ in 0..6 {
        let cfg = SendConfig {
            iface: t.left.a.name.clone(),
            queue: 0,
            spec: TrafficSpec {
                src_mac: h1_mac,
                dst_mac: lan_mac,
                src_ip: "198.18.1.2".parse().unwrap(),
                dst_ip: "198.19.1.2".parse().unwrap(),
                sport: "20000".parse().unwrap(),
                dport: format!("1-{FLOWS}").parse().unwrap(),
                proto: Proto::Udp,
                size: SizeSpec::Fixed(64),
            },
            rate: Some(50_000.0),
            duration: Some(Duration::from_secs(10)),
            count: Some(FLOWS),
            udp4_no_checksum: false,
            frames: 4096,
            burst: 1,
        };
        t.h1.run(|| send::run(&cfg).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("generator: {e}"));
        // The gauges are published every 10 ms.
        std::thread::sleep(Duration::from_millis(50));
        let n = sessions(&e);
        eprintln!("{n} sessions after {:?}", t0.elapsed());
        if n > SESSIONS {
            break;
        }
    }
    let n = sessions(&e);
    assert!(
        n > SESSIONS,
        "{n} sessions, {SESSIONS} + the ping's wanted\n{}",
        e.log()
    );

    let t0 = Instant::now();
    let (doc, early, peak, cpu) = client_peaks(&e, &["--json", "nat", "show"]);
    let took = t0.elapsed();
    let t0 = Instant::now();
    let (text_out, _, text_peak, text_cpu) = client_peaks(&e, &["nat", "show"]);
    eprintln!(
        "nat show of {n} sessions: JSON {} bytes in {took:?}, client CPU {cpu} ms, peak RSS {early} KiB after 1 MiB, \
         {peak} KiB at the end; text {} bytes in {:?}, client CPU {text_cpu} ms, peak RSS {text_peak} KiB",
        doc.len(),
        text_out.len(),
        t0.elapsed()
    );
    // jq reads the whole document; every session is there, once, as the summary counts.
    assert_eq!(
        jq(&doc, "[.schema, .version, (.records | length) == .summary.sessions_listed, .summary.silent_workers]"),
        r#"["pktengine/nat-show",1,true,[]]"#
    );
    let udp = jq(
        &doc,
        r#"[.records[] | select(.proto == "udp" and .inside.addr == "198.18.1.2" and .inside.port == 20000 and .remote.addr == "198.19.1.2") | .remote.port] | [length, (unique | length), min >= 1, max <= 52000]"#,
    );
    assert_eq!(
        udp,
        format!("[{},{},true,true]", n - 1, n - 1),
        "every session but the ping's, once"
    );
    // One record per line, between the opening and the closing line.
    let listed: usize = jq(&doc, ".records | length").parse().unwrap();
    assert_eq!(doc.iter().filter(|b| **b == b'\n').count(), listed + 2);
    // Backpressure: a client that stops reading holds the dump back (the workers' slices wait,
    // the engine keeps a few messages for it, not the table): while it does not read, the dump
    // is still under way, so a second one is refused as busy; once it reads, it gets every session.
    let mut c = Command::new(pktengine_bin())
        .args([
            "ctl",
            "--socket",
            e.ctl.to_str().unwrap(),
            "--json",
            "nat",
            "show",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let second = e.ctl(&["--json", "nat", "show"]);
    let mut late = Vec::new();
    c.stdout.take().unwrap().read_to_end(&mut late).unwrap();
    assert!(c.wait().unwrap().success());
    assert_eq!(
        second.status.code(),
        Some(1),
        "a second dump while the first waits for its client: {}",
        text(&second)
    );
    jq_true(
        &second.stdout,
        r#".error.message | test("busy|under way|try again")"#,
    );
    assert_eq!(
        jq(&late, ".records | length"),
        listed.to_string(),
        "the paused client got every session"
    );
    // Streamed: the client's memory does not grow with the table. It reaches its peak with the
    // first chunk (4,096 records; the protocol's reader holds one message at a time) and keeps
    // it; holding the records, or the 13 MB document, would add megabytes per chunk.
    assert!(
        peak < early + 2 * 1024,
        "the JSON client grew from {early} KiB (1 MiB out) to {peak} KiB ({} MiB out)",
        doc.len() >> 20
    );
}

/// `ctl --json route show` of the full Internet table (bench/data, 1,061,046 prefixes, as
/// tests/tests/router.rs loads it): a document of about 115 MB, more than the engine would ever
/// queue for one client (`front::Limits::max_out`, 68 MB: a client that far behind is cut). The
/// engine sends it 4,096 records at a time as the client reads, so a client that pauses (here
/// 1.5 s, under the 2 s the engine waits for a byte to be taken) still gets all of it.
#[test]
fn a_full_table_route_show_streams_to_a_client_that_pauses() {
    let t = RouterTopo::new("jft").unwrap_or_else(|e| panic!("topology: {e}"));
    let dir = Engine::dir("jft");
    let table = dir.join("table.routes");
    let gz =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/data/bgp-prefixes.txt.gz");
    let o = Command::new("sh")
        .args([
            "-c",
            &format!(
                "zcat {} | awk '{{ if (index($1, \":\")) print $1\" via 2001:2:0:2::2\"; else print $1\" via 198.19.1.2\" }}' > {}",
                gz.display(),
                table.display()
            ),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let cfg = t
        .config(&example("router.toml"), &dir.join("ctl.sock"))
        .replace(
            "routes = [",
            &format!("routes_file = \"{}\"\nroutes = [", table.display()),
        );
    let e = Engine::start(&t.dut, &dir, &cfg, &[]).expect("engine start");
    let slow_readers = |e: &Engine| {
        stat(
            &json(e, &["stats"]),
            r#".group == "ctl" and .name == "slow_reader""#,
        )
    };
    let cut0 = slow_readers(&e);

    let t0 = Instant::now();
    let mut c = Command::new(pktengine_bin())
        .args([
            "ctl",
            "--socket",
            e.ctl.to_str().unwrap(),
            "--json",
            "route",
            "show",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut doc = Vec::new();
    c.stdout.take().unwrap().read_to_end(&mut doc).unwrap();
    let o = c.wait_with_output().unwrap();
    let took = t0.elapsed();
    assert!(
        o.status.success(),
        "route show --json: {}\n{}",
        text(&o),
        String::from_utf8_lossy(&doc[doc.len().saturating_sub(300)..])
    );
    assert_eq!(slow_readers(&e), cut0, "the engine cut its client");
    // Every line between the first and the last is one route, a JSON object of the schema.
    let lines: Vec<&[u8]> = doc
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines[0].starts_with(br#"{"schema":"pktengine/route-show","version":1,"records":["#));
    let routes = &lines[1..lines.len() - 1];
    let (mut v4, mut v6) = (0, 0);
    for l in routes {
        let l = l.strip_suffix(b",").unwrap_or(l);
        let r: serde_json::Value = serde_json::from_slice(l)
            .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(l)));
        match r["family"].as_str() {
            Some("ipv4") => v4 += 1,
            Some("ipv6") => v6 += 1,
            _ => panic!("{r}"),
        }
    }
    eprintln!("route show --json of the full table: {} bytes, {v4} IPv4 and {v6} IPv6 routes, {took:?} with a 1.5 s pause", doc.len());
    let summary = String::from_utf8_lossy(lines[lines.len() - 1]).into_owned();
    assert_eq!(
        summary,
        format!("],\"summary\":{{\"routes\":{}}}}}", routes.len())
    );
    // The table's prefixes (901,899 IPv4, 160,147 IPv6) and the example's own routes.
    assert!(v4 > 900_000 && v6 > 160_000, "{v4} {v6}");
}
