//! The traffic generator and sink (bench/src/gen, the `pktgen` binary's
//! library) on real veth pairs: every frame sent arrives, counted in the
//! right flow, in order; and through a kernel router namespace, with the
//! TTL decremented. Namespaces are unique per test and removed on drop.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pktengine_bench::gen::send::{self, SendConfig};
use pktengine_bench::gen::sink::{self, SinkConfig, SinkReport};
use pktengine_bench::gen::spec::{Proto, SizeSpec, TrafficSpec};
use pktengine_bench::gen::template::TTL;
use pktengine_tests::{Netns, VethPair};

/// Runs the sink in `sink_ns` and, once it is ready, the generator in `gen_ns`.
fn send_and_sink(
    gen_ns: &Netns,
    gen_if: &str,
    sink_ns: &Netns,
    sink_if: &str,
    spec: TrafficSpec,
    count: u64,
) -> (u64, Vec<u64>, SinkReport) {
    send_and_sink_after(gen_ns, gen_if, sink_ns, sink_if, spec, count, || {})
}

/// [`send_and_sink`], running `before_send` once the sink is ready.
fn send_and_sink_after(
    gen_ns: &Netns,
    gen_if: &str,
    sink_ns: &Netns,
    sink_if: &str,
    spec: TrafficSpec,
    count: u64,
    before_send: impl FnOnce(),
) -> (u64, Vec<u64>, SinkReport) {
    let ready = Arc::new(AtomicBool::new(false));
    let scfg = SinkConfig {
        iface: sink_if.to_string(),
        queue: 0,
        duration: Duration::from_secs(15),
        expect: Some(count),
        idle: Some(Duration::from_secs(2)),
        frames: 4096,
        capture_all: false,
        ready: Some(ready.clone()),
    };
    let gcfg = SendConfig {
        iface: gen_if.to_string(),
        queue: 0,
        spec,
        rate: Some(100_000.0), // 0.1 s for 10k: well below the sink's limit
        duration: Some(Duration::from_secs(10)),
        count: Some(count),
        udp4_no_checksum: false,
        frames: 2048,
        burst: 1,
    };
    std::thread::scope(|s| {
        let sink = s.spawn(|| sink_ns.run(|| sink::run(&scfg).map_err(|e| e.to_string())));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.load(Ordering::Acquire) && Instant::now() < deadline && !sink.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !ready.load(Ordering::Acquire) {
            let why = if sink.is_finished() {
                format!("{:?}", sink.join().map(|r| r.map(|_| ())))
            } else {
                "timeout".into()
            };
            panic!("sink did not start: {why}");
        }
        before_send();
        let sent = gen_ns
            .run(|| send::run(&gcfg).map_err(|e| e.to_string()))
            .expect("generator");
        let report = sink.join().expect("sink thread").expect("sink");
        (sent.packets, sent.per_flow, report)
    })
}

fn spec(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: &str,
    dst: &str,
    proto: Proto,
    size: SizeSpec,
) -> TrafficSpec {
    TrafficSpec {
        src_mac,
        dst_mac,
        src_ip: src.parse().unwrap(),
        dst_ip: dst.parse().unwrap(),
        sport: "1000-1001".parse().unwrap(),
        dport: "2000-2001".parse().unwrap(),
        proto,
        size,
    }
}

/// Checks: everything arrived in the flows it was sent in, in order, none lost.
fn check_flows(sent: u64, per_flow: &[u64], r: &SinkReport, ttl: u8) {
    assert_eq!(
        r.packets, sent,
        "every frame arrives ({} foreign frames too)",
        r.foreign
    );
    let (lost, reordered, dups) = r.totals();
    assert_eq!((lost, reordered, dups), (0, 0, 0));
    for (id, want) in per_flow.iter().enumerate() {
        let f = &r.flows[id];
        assert_eq!(f.packets, *want, "flow {id}");
        assert_eq!(f.next, *want, "flow {id}: sequences 0..{want}");
        assert_eq!((f.ttl_min, f.ttl_max), (ttl, ttl), "flow {id}");
    }
    assert!(
        r.flows[per_flow.len()..].iter().all(|f| f.packets == 0),
        "no frame in a flow never sent"
    );
    assert_eq!(r.latency.count(), sent);
    assert_eq!(
        r.bad_ip_checksum, 0,
        "IPv4 header checksums verify on arrival"
    );
    assert!(r.latency.quantile(0.5) > 0 && r.latency.quantile(0.5) < 1_000_000_000);
}

#[test]
fn plain_veth_ipv4_udp_10k() {
    let g = Netns::new("gg").unwrap();
    let k = Netns::new("gk").unwrap();
    let v = VethPair::new(&g, &k, 1).unwrap();
    let (gm, km) = (v.mac(&g, &v.a).unwrap(), v.mac(&k, &v.b).unwrap());
    let s = spec(
        gm,
        km,
        "198.18.0.2",
        "198.19.0.2",
        Proto::Udp,
        SizeSpec::Imix,
    );
    let (sent, per_flow, r) = send_and_sink(&g, &v.a.name, &k, &v.b.name, s, 10_000);
    assert_eq!(sent, 10_000);
    assert_eq!(per_flow, vec![2500; 4]);
    check_flows(sent, &per_flow, &r, TTL);
    // IMIX, per flow: 208 cycles of 7 x 64 + 4 x 576 + 1 x 1518 bytes, then
    // the cycle's first four (64, 576, 64, 64).
    let want = 4 * (208 * (7 * 64 + 4 * 576 + 1518) + 64 + 576 + 64 + 64);
    assert_eq!(r.bytes, want as u64, "bytes with FCS");
}

#[test]
fn plain_veth_ipv6_tcp() {
    let g = Netns::new("g6").unwrap();
    let k = Netns::new("k6").unwrap();
    let v = VethPair::new(&g, &k, 1).unwrap();
    let (gm, km) = (v.mac(&g, &v.a).unwrap(), v.mac(&k, &v.b).unwrap());
    let s = spec(
        gm,
        km,
        "2001:2::2",
        "2001:2:0:100::2-2001:2:0:100::3",
        Proto::Tcp,
        SizeSpec::Fixed(128),
    );
    let (sent, per_flow, r) = send_and_sink(&g, &v.a.name, &k, &v.b.name, s, 4000);
    assert_eq!(per_flow, vec![500; 8]);
    check_flows(sent, &per_flow, &r, TTL);
    assert_eq!(r.bytes, 4000 * 128);
}

/// gen ns -> router ns (Linux forwarding, one route) -> sink ns.
#[test]
fn through_kernel_forwarding_ttl_decremented() {
    let g = Netns::new("fg").unwrap();
    let rt = Netns::new("fr").unwrap();
    let k = Netns::new("fk").unwrap();
    let a = VethPair::new(&g, &rt, 1).unwrap();
    let b = VethPair::new(&rt, &k, 1).unwrap();
    a.addr(&g, &a.a, "198.18.0.2/24").unwrap();
    a.addr(&rt, &a.b, "198.18.0.1/24").unwrap();
    b.addr(&rt, &b.a, "198.19.0.1/24").unwrap();
    b.addr(&k, &b.b, "198.19.0.2/24").unwrap();
    rt.sysctl("net.ipv4.ip_forward", "1").unwrap();
    for c in ["all", "default", &a.b.name, &b.a.name] {
        rt.sysctl(&format!("net.ipv4.conf.{c}.rp_filter"), "0")
            .unwrap();
    }
    let km = b.mac(&k, &b.b).unwrap();
    let mac = |m: [u8; 6]| {
        m.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    rt.ip(&["route", "add", "198.19.1.0/24", "via", "198.19.0.2"])
        .unwrap();
    let s = spec(
        a.mac(&g, &a.a).unwrap(),
        a.mac(&rt, &a.b).unwrap(),
        "198.18.0.2",
        "198.19.1.1-198.19.1.2",
        Proto::Udp,
        SizeSpec::Fixed(64),
    );
    // No static neighbour: while the sink runs, its kernel answers the router's ARP
    // (the sink passes ARP), resolved here by a ping before the measurement (the
    // echo itself goes to the sink's socket and gets no answer).
    let resolve = || {
        let _ = rt.exec("ping", &["-c", "1", "-W", "1", "198.19.0.2"]);
        let n = rt
            .ip(&["neigh", "show", "198.19.0.2", "dev", &b.a.name])
            .unwrap();
        let text = String::from_utf8_lossy(&n.stdout).to_string();
        assert!(
            text.contains(&mac(km)),
            "router resolved the sink's MAC through the sink: {text:?}"
        );
    };
    let (sent, per_flow, r) = send_and_sink_after(&g, &a.a.name, &k, &b.b.name, s, 10_000, resolve);
    assert_eq!(per_flow, vec![1250; 8]);
    check_flows(sent, &per_flow, &r, TTL - 1);
}

/// gen ns -> router ns with the benchmark's XDP forwarder (ebpf/xdp_fwd.bpf.c,
/// built here with clang, attached in native mode) -> sink ns: every frame
/// arrives with TTL 63 and a verifying IPv4 header checksum (the program's
/// incremental patch), and the kernel's forwarding path is not used.
#[test]
fn through_xdp_redirect_program() {
    let g = Netns::new("xg").unwrap();
    let rt = Netns::new("xr").unwrap();
    let k = Netns::new("xk").unwrap();
    let a = VethPair::new(&g, &rt, 1).unwrap();
    let b = VethPair::new(&rt, &k, 1).unwrap();
    // Forwarding off: only the XDP program can move the frames.
    rt.sysctl("net.ipv4.ip_forward", "0").unwrap();
    let (rt_out_mac, km) = (b.mac(&rt, &b.a).unwrap(), b.mac(&k, &b.b).unwrap());
    let out_idx = String::from_utf8(
        rt.exec("cat", &[&format!("/sys/class/net/{}/ifindex", b.a.name)])
            .unwrap()
            .stdout,
    )
    .unwrap();
    let bytes = |m: [u8; 6]| {
        m.iter()
            .map(|x| format!("0x{x:02x}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let obj = std::env::temp_dir().join(format!("xdp_fwd-{}-{}.o", std::process::id(), b.a.name));
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../ebpf/xdp_fwd.bpf.c");
    let out = std::process::Command::new("clang")
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-I/usr/include/x86_64-linux-gnu",
        ])
        .arg(format!("-DOUT_IFINDEX={}", out_idx.trim()))
        .arg(format!("-DSRC_MAC={}", bytes(rt_out_mac)))
        .arg(format!("-DDST_MAC={}", bytes(km)))
        .args(["-c", src, "-o"])
        .arg(&obj)
        .output()
        .expect("clang");
    assert!(
        out.status.success(),
        "clang: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attached = rt.ip(&[
        "link",
        "set",
        "dev",
        &a.b.name,
        "xdpdrv",
        "obj",
        obj.to_str().unwrap(),
        "sec",
        "xdp",
    ]);
    let _ = std::fs::remove_file(&obj);
    attached.unwrap();
    let s = spec(
        a.mac(&g, &a.a).unwrap(),
        a.mac(&rt, &a.b).unwrap(),
        "198.18.0.2",
        "198.19.1.1-198.19.1.2",
        Proto::Udp,
        SizeSpec::Fixed(64),
    );
    let (sent, per_flow, r) = send_and_sink(&g, &a.a.name, &k, &b.b.name, s, 10_000);
    assert_eq!(per_flow, vec![1250; 8]);
    check_flows(sent, &per_flow, &r, TTL - 1);
    // IPv6 too: hop limit decremented, no checksum to patch.
    let s6 = spec(
        a.mac(&g, &a.a).unwrap(),
        a.mac(&rt, &a.b).unwrap(),
        "2001:2::2",
        "2001:2:0:100::1",
        Proto::Udp,
        SizeSpec::Fixed(128),
    );
    let (sent, per_flow, r) = send_and_sink(&g, &a.a.name, &k, &b.b.name, s6, 2000);
    check_flows(sent, &per_flow, &r, TTL - 1);
}
