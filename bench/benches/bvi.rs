//! What a bridge's routed interface (BVI) costs on the forwarding path: a
//! burst of 64 UDP packets through a worker on in-memory ports (inject, RX,
//! the pipeline, TX, the wire side's take), ns per packet, one core.
//!
//! - `bvi/routed_to_routed_64`: in on a routed port, routed out of another
//!   (the reference: no bridge).
//! - `bvi/bridge_to_routed_64`: in on a switch port to the BVI's MAC: the
//!   switch stage, the BVI queue, then the same routing.
//! - `bvi/routed_to_bridge_64`: in on a routed port toward a host behind the
//!   bridge: routed out of the BVI, the BVI queue, the switch stage to the
//!   host's port.
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use engine::context::counters::SharedCounters;
use engine::context::events;
use engine::context::tables::Routes;
use engine::control::config::{Config, Environment, PollMode};
use engine::dataplane::tables::Tables;
use engine::dataplane::worker::{Socket, Worker, WorkerConfig};
use engine::neighbor::{NeighborKey, NeighborTable};
use engine::runtime::setup;
use engine::wire::checksum::checksum;
use engine::xsk::{MemPort, MemPortConfig, Umem, UmemConfig, BURST};

struct AnyEnv;
impl Environment for AnyEnv {
    fn interface_exists(&self, _: &str) -> bool {
        true
    }
    fn core_count(&self) -> usize {
        1
    }
}

/// p0, p1: bridge `lan` with its BVI; r2: routed lan2; r3: routed wan.
const GATEWAY: &str = r#"
[engine]
cores = [0]
[[bridge]]
name = "lan"
addresses = ["198.18.1.1/24"]
mac = "02:00:00:00:01:01"
[[port]]
name = "p0"
interface = "m0"
mode = "switch"
bridge = "lan"
[[port]]
name = "p1"
interface = "m1"
mode = "switch"
bridge = "lan"
[[port]]
name = "lan2"
interface = "m2"
mode = "router"
addresses = ["198.18.2.1/24"]
[[port]]
name = "wan"
interface = "m3"
mode = "router"
addresses = ["198.19.1.1/24"]
"#;

fn udp(dst_mac: [u8; 6], src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 46, 0, 1, 0, 0, 64, 17, 0, 0];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x9c, 0x40, 0x00, 0x07, 0, 26, 0, 0]);
    f.resize(60, 0x5a);
    f
}

fn bvi(c: &mut Criterion) {
    let cfg = Config::parse(std::path::Path::new("b.toml"), GATEWAY, &AnyEnv).unwrap();
    let mac = |n: &str| [2, 0xee, 0, 0, 0, n.as_bytes()[1]];
    let ifs = setup::interfaces(&cfg, &|n: &str| Ok(mac(n))).unwrap();
    let mut rt = setup::route_table(&cfg).unwrap();
    rt.publish();
    let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
    let mut neigh = NeighborTable::new(30_000, 120_000);
    let (host, far, host2) = (
        Ipv4Addr::new(198, 18, 1, 2),
        Ipv4Addr::new(198, 19, 1, 2),
        Ipv4Addr::new(198, 18, 2, 2),
    );
    let (host_mac, far_mac, host2_mac) = (
        [2, 0xa, 0, 0, 0, 1],
        [2, 0xf, 0, 0, 0, 1],
        [2, 0xb, 0, 0, 0, 1],
    );
    let port = |n: &str| cfg.ports.iter().position(|p| p.name == n).unwrap() as u16;
    for (p, ip, m) in [
        (port("lan"), host, host_mac),
        (port("wan"), far, far_mac),
        (port("lan2"), host2, host2_mac),
    ] {
        neigh.learn(
            NeighborKey {
                port: p,
                ip: IpAddr::V4(ip),
            },
            m,
            0,
            true,
        );
    }
    let tables = Arc::new(Tables::new(ifs, routes, neigh.map()).with_l2(cfg.switch()));
    let umem = Umem::new(UmemConfig {
        frame_size: 2048,
        frame_count: 8192,
        huge_pages: false,
        headroom: 256,
    })
    .unwrap();
    let pc = MemPortConfig {
        rx_size: 1024,
        tx_size: 1024,
        fill_size: 1024,
        comp_size: 1024,
    };
    let sockets = (0..4)
        .map(|i| Socket {
            port: i,
            io: MemPort::new(&format!("v{i}"), &umem, pc),
        })
        .collect();
    let (sink, _rx) = events::channel(1024);
    let wc = WorkerConfig {
        id: 0,
        poll: PollMode::Busy,
        idle_timeout: std::time::Duration::from_millis(1),
    };
    let mut w = Worker::new(
        wc,
        umem,
        sockets,
        tables,
        Arc::new(SharedCounters::default()),
        sink,
    );
    w.prime();
    // Returns the packets that left by port `to`.
    let run = |w: &mut Worker<MemPort>, from: usize, to: usize, f: &[u8]| -> usize {
        let (umem, socks) = w.split();
        for _ in 0..BURST {
            socks[from].io.inject(umem, f);
        }
        w.poll_once();
        let (umem, socks) = w.split();
        let mut n = 0;
        for (i, s) in socks.iter_mut().enumerate() {
            let k = s.io.take_sent(umem, usize::MAX, |x| {
                black_box(x.len());
            });
            if i == to {
                n += k;
            }
        }
        n
    };
    let lan_mac = [2, 0, 0, 0, 1, 1];
    // The bridge learns the host on p0.
    run(
        &mut w,
        0,
        0,
        &udp(lan_mac, host_mac, host, Ipv4Addr::new(198, 18, 1, 1)),
    );
    let mut g = c.benchmark_group("bvi");
    g.throughput(Throughput::Elements(BURST as u64));
    let f = udp(mac("m2"), host2_mac, host2, far);
    g.bench_function("routed_to_routed_64", |b| {
        b.iter(|| assert_eq!(run(&mut w, 2, 3, &f), BURST))
    });
    let f = udp(lan_mac, host_mac, host, far);
    g.bench_function("bridge_to_routed_64", |b| {
        b.iter(|| assert_eq!(run(&mut w, 0, 3, &f), BURST))
    });
    let f = udp(mac("m3"), far_mac, far, host);
    g.bench_function("routed_to_bridge_64", |b| {
        b.iter(|| assert_eq!(run(&mut w, 3, 0, &f), BURST))
    });
    g.finish();
    w.poll_once();
    w.umem().check().unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bvi
}
criterion_main!(benches);
