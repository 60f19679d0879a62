//! The stateful filter's cost per packet: a burst of 64 TCP segments of
//! established connections through the whole router path (`process_burst`:
//! classify, IPv4 checks, batched LPM, filter, TTL, neighbor, TX queue),
//! with
//!
//! - `no_filter`: no rule (the filter is one branch);
//! - `stateless`: three stateless rules and a drop policy on wan (the
//!   tuple-space classifier alone: fields, masks, probes);
//! - `stateful`: the classic firewall (`ct state established,related
//!   accept`, `ct state invalid drop`, `iif lan ct state new accept`, drop
//!   on wan): connection tracking (parse, one probe of the connection
//!   table, the TCP window check) and the same classifier;
//!
//! each with the 64 connections alone in a table of 1,024 entries and among
//! 100,000 others in one of 262,144 (the default size)
//! (`_100k`: the same 64 spread over the table; `_100k_cold`: 64 of them at
//! a time, in turn, so the entries are rarely in the cache; `restore_only`
//! is the cost of copying those frames in). The difference between
//! `stateful` and `stateless` is what tracking adds per packet.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
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
use engine::filter::config::ConntrackConfig;
use engine::filter::conn::CtShared;
use engine::filter::rule::{Action, Rule};
use engine::filter::Filter;
use engine::l3::nexthop::NextHop;
use engine::l3::route_table::{Route, RouteTable};
use engine::neighbor::{NeighborKey, NeighborTable, PendingQueues};
use engine::wire::checksum;
use engine::xsk::{Desc, Umem, UmemConfig, BURST};

const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
const H1_MAC: [u8; 6] = [0x02, 0x11, 0, 0, 0, 1];
const H2_MAC: [u8; 6] = [0x02, 0x22, 0, 0, 0, 2];
const H2: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);

fn port(i: u16, name: &str, mac: [u8; 6], v4: &str) -> PortInfo {
    PortInfo {
        index: i,
        name: name.into(),
        interface: name.into(),
        mac,
        mtu: 1500,
        mode: PortMode::Router,
        v4: vec![(v4.parse().unwrap(), 24)],
        v6: vec![],
    }
}

/// An Ethernet/IPv4/TCP segment from `src:sp` to `dst:dp`.
#[allow(clippy::too_many_arguments)]
fn tcp(
    from_lan: bool,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sp: u16,
    dp: u16,
    flags: u8,
    seq: u32,
    ack: u32,
) -> Vec<u8> {
    let (d, s) = if from_lan {
        (LAN_MAC, H1_MAC)
    } else {
        (WAN_MAC, H2_MAC)
    };
    let mut f = d.to_vec();
    f.extend_from_slice(&s);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sp.to_be_bytes());
    t[2..4].copy_from_slice(&dp.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 0x50;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    f.extend_from_slice(&t);
    f
}

/// Client `i`: host 198.18.1.0 + i / 16 (past the engine's 198.18.0.1), port 40000 + i % 16.
fn client(i: u32) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::from(0xc612_0100 + (i >> 4)),
        40000 + (i & 15) as u16,
    )
}

struct Rig {
    tables: Arc<Tables>,
    features: Features,
    scratch: Box<Scratch>,
    st: WorkerState,
    umem: Umem,
    _rt: RouteTable,
}

impl Rig {
    fn new(rules: &[&str], stateful: bool, max_entries: u32) -> Rig {
        let ifs = Interfaces::new(vec![
            port(0, "lan", LAN_MAC, "198.18.0.1"),
            port(1, "wan", WAN_MAC, "198.19.1.1"),
        ]);
        let mut rt = RouteTable::new();
        for (s, dev) in [("198.18.0.0/16", "lan"), ("198.19.1.0/24", "wan")] {
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
                ip: IpAddr::V4(H2),
            },
            H2_MAC,
            0,
            true,
        );
        // Every client host the benches use (the replies of the set-up go to them).
        for i in (0..110_000u32).step_by(16) {
            neigh.learn(
                NeighborKey {
                    port: 0,
                    ip: IpAddr::V4(client(i).0),
                },
                H1_MAC,
                0,
                true,
            );
        }
        let mut tables = Tables::new(ifs, routes, neigh.map());
        if stateful {
            tables = tables.with_ct(CtShared::new(
                ConntrackConfig {
                    max_entries,
                    ..Default::default()
                },
                1,
            ));
        }
        let names = |n: &str| {
            ["lan", "wan"]
                .iter()
                .position(|p| *p == n)
                .map(|i| i as u16)
        };
        let rules: Vec<Rule> = rules
            .iter()
            .map(|r| Rule::parse(r, &names).unwrap())
            .collect();
        let policy = if rules.is_empty() {
            vec![]
        } else {
            vec![Action::Accept, Action::Drop]
        };
        tables
            .filter
            .store(Arc::new(Filter::new(rules, Action::Accept, policy)));
        let tables = Arc::new(tables);
        let features = Features::new(&tables, 0);
        let (sink, _rx) = events::channel(16);
        let st = WorkerState {
            worker: 0,
            counters: LocalCounters::default(),
            tx: TxQueues::new(2),
            pending: PendingQueues::new(64, 16),
            icmp_limit: IcmpRateLimiter::new(100, 50),
            events: sink,
            bvi: Default::default(),
        };
        let umem = Umem::new(UmemConfig {
            frame_size: 2048,
            frame_count: 512,
            huge_pages: false,
            headroom: 0,
        })
        .unwrap();
        Rig {
            tables,
            features,
            scratch: Box::default(),
            st,
            umem,
            _rt: rt,
        }
    }

    /// Runs `frames` (all from `port`) through the pipeline; returns how many were forwarded.
    fn burst(&mut self, port: u16, descs: &[Desc]) -> usize {
        let routes = self.tables.routes.load();
        let neigh = self.tables.neigh.load();
        let filter = self.tables.filter.load();
        let mut ctx = Ctx {
            umem: &mut self.umem,
            st: &mut self.st,
            ifs: &self.tables.ifs,
            routes: &routes,
            neigh: &neigh,
            tables: &self.tables.shared,
            now_ns: 1_000_000,
            trace: false,
            rx_port: 0,
            handoff: 0,
        };
        let mut stages = Stages {
            tables: &self.tables,
            filter: &filter,
            features: &mut self.features,
            scratch: &mut self.scratch,
        };
        process_burst(&mut ctx, &mut stages, port, descs);
        let n = ctx.st.tx.queue(0).len() + ctx.st.tx.queue(1).len();
        for p in 0..2 {
            let q: Vec<Desc> = ctx.st.tx.queue(p).to_vec();
            ctx.st.tx.clear(p);
            ctx.umem.free_burst(&q);
        }
        n
    }

    /// Sends frames in bursts (set-up), freeing what comes out.
    fn send(&mut self, port: u16, frames: &[Vec<u8>]) {
        for chunk in frames.chunks(BURST) {
            let descs: Vec<Desc> = chunk
                .iter()
                .map(|f| self.umem.alloc_with(f).unwrap())
                .collect();
            self.burst(port, &descs);
        }
    }

    /// Opens connections `range` (SYN, SYN-ACK, ACK).
    fn connect(&mut self, range: std::ops::Range<u32>) {
        let syn: Vec<Vec<u8>> = range
            .clone()
            .map(|i| {
                let (h, p) = client(i);
                tcp(true, h, H2, p, 80, 0x02, 1000, 0)
            })
            .collect();
        let synack: Vec<Vec<u8>> = range
            .clone()
            .map(|i| {
                let (h, p) = client(i);
                tcp(false, H2, h, 80, p, 0x12, 5000, 1001)
            })
            .collect();
        let ack: Vec<Vec<u8>> = range
            .map(|i| {
                let (h, p) = client(i);
                tcp(true, h, H2, p, 80, 0x10, 1001, 5001)
            })
            .collect();
        self.send(0, &syn);
        self.send(1, &synack);
        self.send(0, &ack);
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack");
    g.throughput(Throughput::Elements(BURST as u64));
    let stateless = [
        "iif wan tcp flags syn / syn,ack drop",
        "iif wan tcp sport 80 accept",
        "iif lan accept",
    ];
    let stateful = [
        "ct state established,related accept",
        "ct state invalid drop",
        "iif lan ct state new accept",
    ];
    for (name, rules, ct, others, rotate, max) in [
        ("no_filter", &[][..], false, 0, false, 0),
        ("stateless", &stateless[..], false, 0, false, 0),
        ("stateful", &stateful[..], true, 0, false, 1024),
        (
            "stateful_100k",
            &stateful[..],
            true,
            100_000,
            false,
            1 << 18,
        ),
        (
            "stateful_100k_cold",
            &stateful[..],
            true,
            100_000,
            true,
            1 << 18,
        ),
    ] {
        let mut r = Rig::new(rules, ct, max);
        // 64 established connections (and `others` more in the table).
        if others > 0 {
            r.connect(BURST as u32..BURST as u32 + others);
        }
        r.connect(0..BURST as u32);
        // The segments measured: 64 connections' ACKs, spread over the table (the same
        // 64 every time, as the NAT's bench), or (`_cold`) 64 of the 100,064
        // connections at a time, in turn, so that the entries are rarely in the cache.
        let flows = if others > 0 {
            BURST as u32 + others
        } else {
            BURST as u32
        };
        let pool: Vec<Vec<u8>> = (0..if rotate { flows } else { BURST as u32 })
            .map(|i| {
                let (h, p) = client(i.wrapping_mul(7919) % flows);
                tcp(true, h, H2, p, 80, 0x10, 1001, 5001)
            })
            .collect();
        // One trial burst: every segment passes (else the figure would measure drops).
        let trial: Vec<Desc> = pool[..BURST]
            .iter()
            .map(|f| r.umem.alloc_with(f).unwrap())
            .collect();
        let n = r.burst(0, &trial);
        let drops: Vec<(&str, u64)> = engine::context::counters::Drop::ALL
            .iter()
            .map(|d| (d.name(), r.st.counters.drops[*d as usize]))
            .filter(|x| x.1 > 0)
            .collect();
        assert_eq!(
            n, BURST,
            "{name}: {n} of {BURST} forwarded; drops {drops:?}"
        );
        let descs: Vec<Desc> = pool[..BURST]
            .iter()
            .map(|f| r.umem.alloc_with(f).unwrap())
            .collect();
        let mut next = 0usize;
        let restore = |umem: &mut Umem, next: &mut usize| {
            for d in &descs {
                umem.data_mut(d)[..54].copy_from_slice(&pool[*next][..54]);
                *next = (*next + 1) % pool.len();
            }
        };
        if rotate {
            g.bench_function(format!("{name}/restore_only"), |b| {
                b.iter(|| restore(black_box(&mut r.umem), &mut next))
            });
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                restore(&mut r.umem, &mut next);
                let routes = r.tables.routes.load();
                let neigh = r.tables.neigh.load();
                let filter = r.tables.filter.load();
                let mut ctx = Ctx {
                    umem: &mut r.umem,
                    st: &mut r.st,
                    ifs: &r.tables.ifs,
                    routes: &routes,
                    neigh: &neigh,
                    tables: &r.tables.shared,
                    now_ns: 2_000_000,
                    trace: false,
                    rx_port: 0,
                    handoff: 0,
                };
                let mut stages = Stages {
                    tables: &r.tables,
                    filter: &filter,
                    features: &mut r.features,
                    scratch: &mut r.scratch,
                };
                process_burst(&mut ctx, &mut stages, 0, black_box(&descs));
                assert_eq!(
                    ctx.st.tx.queue(1).len(),
                    BURST,
                    "every segment of the established connections passes"
                );
                ctx.st.tx.clear(1);
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
