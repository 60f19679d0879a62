//! The whole router forward path per packet, in memory, one core: a burst of
//! 64 frames through `process_burst` (Ethernet classify, IPv4/IPv6 header
//! checks and checksum, one batched LPM on the full Internet table, next
//! hop, TTL/hop limit with the incremental checksum, neighbor lookup, MAC
//! rewrite, TX queue). No I/O: the frames stay in the UMEM; before each
//! burst their first 54 bytes are restored (TTL and MACs), which
//! `restore_only` measures alone.
//!
//! Goal (issue 6): under 20 ns per packet, so that at 14.88 Mpps (10 GbE
//! line rate, 67 ns per packet) the I/O, not the pipeline, is the limit.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine::context::counters::LocalCounters;
use engine::context::events;
use engine::context::ratelimit::IcmpRateLimiter;
use engine::context::tables::{Interfaces, PortInfo, Routes};
use engine::context::{Ctx, TxQueues, WorkerState};
use engine::control::config::PortMode;
use engine::dataplane::pipeline::{process_burst, Features, Scratch, Stages};
use engine::dataplane::tables::Tables;
use engine::l3::nexthop::NextHop;
use engine::l3::prefix::IpPrefix;
use engine::l3::route_table::{Route, RouteTable};
use engine::neighbor::{NeighborKey, NeighborTable, PendingQueues};
use engine::wire::checksum;
use engine::xsk::{Desc, Umem, UmemConfig, BURST};
use pktengine_bench::{full_table, splitmix};

const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const H1_MAC: [u8; 6] = [0x02, 0x11, 0, 0, 0, 1];
const GW4: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);

fn gw6() -> Ipv6Addr {
    "2001:2:0:2::2".parse().unwrap()
}

fn port(i: u16, name: &str, v4: &str, v6: &str) -> PortInfo {
    PortInfo {
        index: i,
        name: name.into(),
        interface: name.into(),
        mac: [0x02, 0, 0, 0, 0, 1 + i as u8],
        mtu: 1500,
        mode: PortMode::Router,
        v4: vec![(v4.parse().unwrap(), 24)],
        v6: vec![(v6.parse().unwrap(), 64)],
    }
}

fn udp4(dst: Ipv4Addr) -> Vec<u8> {
    let mut f = LAN_MAC.to_vec();
    f.extend_from_slice(&H1_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 46, 0, 1, 0, 0, 64, 17, 0, 0, 198, 18, 1, 2];
    ip.extend_from_slice(&dst.octets());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x04, 0x00, 0x00, 0x35, 0, 26, 0, 0]);
    f.extend_from_slice(&[0u8; 18]);
    f
}

fn udp6(dst: Ipv6Addr) -> Vec<u8> {
    let mut f = LAN_MAC.to_vec();
    f.extend_from_slice(&H1_MAC);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 26, 17, 64]);
    f.extend_from_slice(&"2001:2:0:1::2".parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&[0x04, 0x00, 0x00, 0x35, 0, 26, 0, 0]);
    f.extend_from_slice(&[0u8; 18]);
    f
}

struct Setup {
    tables: Arc<Tables>,
    _rt: RouteTable,
}

fn setup() -> Setup {
    let ifs = Interfaces::new(vec![
        port(0, "lan", "198.18.1.1", "2001:2:0:1::1"),
        port(1, "wan", "198.19.1.1", "2001:2:0:2::1"),
    ]);
    let mut rt = RouteTable::new();
    for (p, _) in full_table() {
        let gw = match p {
            IpPrefix::V4(_) => IpAddr::V4(GW4),
            IpPrefix::V6(_) => IpAddr::V6(gw6()),
        };
        rt.stage_add(Route {
            reject: None,
            prefix: p,
            hops: vec![NextHop::via(gw)],
            metric: 0,
        })
        .unwrap();
    }
    for (s, dev) in [
        ("198.18.1.0/24", "lan"),
        ("198.19.1.0/24", "wan"),
        ("2001:2:0:2::/64", "wan"),
    ] {
        rt.stage_add(Route {
            reject: None,
            prefix: s.parse().unwrap(),
            hops: vec![NextHop {
                gateway: None,
                dev: Some(dev.into()),
            }],
            metric: 0,
        })
        .unwrap();
    }
    rt.publish();
    let routes = Routes::resolve(rt.reader().snapshot().clone(), &ifs);
    let mut neigh = NeighborTable::new(30_000, 120_000);
    neigh.learn(
        NeighborKey {
            port: 1,
            ip: IpAddr::V4(GW4),
        },
        [0x02, 0x22, 0, 0, 0, 2],
        0,
        true,
    );
    neigh.learn(
        NeighborKey {
            port: 1,
            ip: IpAddr::V6(gw6()),
        },
        [0x02, 0x22, 0, 0, 0, 2],
        0,
        true,
    );
    Setup {
        tables: Arc::new(Tables::new(ifs, routes, neigh.map())),
        _rt: rt,
    }
}

/// Destinations inside the table (a random prefix, random host bits).
fn destinations(v6: bool) -> Vec<IpAddr> {
    let table: Vec<IpPrefix> = full_table()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| matches!(p, IpPrefix::V6(_)) == v6)
        .collect();
    let mut x = 7u64;
    (0..BURST)
        .map(|_| {
            let r = splitmix(&mut x);
            match table[(r % table.len() as u64) as usize] {
                IpPrefix::V4(p) => {
                    let host = !u32::MAX.checked_shl(32 - u32::from(p.len())).unwrap_or(0);
                    IpAddr::V4(Ipv4Addr::from(p.bits() | (splitmix(&mut x) as u32 & host)))
                }
                IpPrefix::V6(p) => {
                    let host = !u128::MAX.checked_shl(128 - u32::from(p.len())).unwrap_or(0);
                    let h = (u128::from(splitmix(&mut x)) << 64) | u128::from(splitmix(&mut x));
                    IpAddr::V6(Ipv6Addr::from(p.bits() | (h & host)))
                }
            }
        })
        .collect()
}

fn bench_forward(c: &mut Criterion) {
    let s = setup();
    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(BURST as u64));
    for (name, v6) in [("ipv4_full_table", false), ("ipv6_full_table", true)] {
        let mut umem = Umem::new(UmemConfig {
            frame_size: 2048,
            frame_count: 256,
            huge_pages: false,
            headroom: 0,
        })
        .unwrap();
        let frames: Vec<Vec<u8>> = destinations(v6)
            .into_iter()
            .map(|d| match d {
                IpAddr::V4(a) => udp4(a),
                IpAddr::V6(a) => udp6(a),
            })
            .collect();
        let descs: Vec<Desc> = frames.iter().map(|f| umem.alloc_with(f).unwrap()).collect();
        let (sink, _rx) = events::channel(16);
        let mut features = Features::default();
        let mut scratch = Box::<Scratch>::default();
        let mut st = WorkerState {
            worker: 0,
            counters: LocalCounters::default(),
            tx: TxQueues::new(2),
            pending: PendingQueues::new(64, 16),
            icmp_limit: IcmpRateLimiter::new(100, 50),
            events: sink,
            bvi: Default::default(),
        };
        let restore = |umem: &mut Umem| {
            for (d, f) in descs.iter().zip(&frames) {
                umem.data_mut(d)[..54].copy_from_slice(&f[..54]);
            }
        };
        g.bench_function(format!("{name}/restore_only"), |b| {
            b.iter(|| restore(black_box(&mut umem)))
        });
        g.bench_function(name, |b| {
            b.iter(|| {
                restore(&mut umem);
                let routes = s.tables.routes.load();
                let neigh = s.tables.neigh.load();
                let filter = s.tables.filter.load();
                let mut ctx = Ctx {
                    umem: &mut umem,
                    st: &mut st,
                    ifs: &s.tables.ifs,
                    routes: &routes,
                    neigh: &neigh,
                    tables: &s.tables.shared,
                    now_ns: 0,
                    trace: false,
                    rx_port: 0,
                    handoff: 0,
                };
                let mut stages = Stages {
                    tables: &s.tables,
                    filter: &filter,
                    features: &mut features,
                    scratch: &mut scratch,
                };
                process_burst(&mut ctx, &mut stages, 0, black_box(&descs));
                assert_eq!(ctx.st.tx.queue(1).len(), BURST, "every packet forwarded");
                ctx.st.tx.clear(1);
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench_forward
}
criterion_main!(benches);
