//! The MAC table on the switch's per-frame path: learn the source, look up
//! the destination, for tables of 1k, 64k and 1M stations (each filled to
//! the size, max_entries = the size), ns per frame, one core.
//!
//! - `mac_table/frame/N`: learn(src) + lookup(dst), both random stations of
//!   the table (a trace of 1M pairs, so the big tables miss the caches the way
//!   a busy switch does).
//! - `mac_table/lookup_miss/N`: lookup of stations that are not there (the flood decision).
//! - `mac_table/learn_new/N`: learning new stations into a fresh table until it holds N
//!   (the first frame of each station; keys in a scrambled, bijective order).
//! - `mac_table/frame_two_threads/N`: the same while a second thread (another
//!   worker) learns and looks up the same stations, on the same table.
//! - `switch_stage/*_64`: a burst of 64 frames through a worker on in-memory
//!   ports (inject, RX, the pipeline's switch stage, TX, the wire side's
//!   take and the completions): known unicast access to access, access to
//!   trunk (tag pushed into the headroom), and a broadcast flooded to 3 ports
//!   (2 copies). An upper bound: the wire side's work is included; compare
//!   `rings`' `mem_port/cycle_64` for the port cost alone.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::context::counters::SharedCounters;
use engine::context::events;
use engine::context::tables::Routes;
use engine::control::config::{Config, Environment, PollMode};
use engine::dataplane::tables::Tables;
use engine::dataplane::worker::{Socket, Worker, WorkerConfig};
use engine::l2::{MacKey, MacTable};
use engine::l3::route_table::RouteTable;
use engine::neighbor::NeighborTable;
use engine::runtime::setup;
use engine::xsk::{MemPort, MemPortConfig, Umem, UmemConfig, BURST};
use pktengine_bench::splitmix;

const TRACE: usize = 1 << 20;

fn station(i: u32) -> MacKey {
    MacKey::new(
        10 + (i % 4) as u16,
        [
            0x02,
            0x00,
            (i >> 24) as u8,
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
        ],
    )
}

fn filled(n: u32) -> MacTable {
    let t = MacTable::new(n, 300_000);
    for i in 0..n {
        t.learn(station(i), (i % 32) as u8, 0);
    }
    assert_eq!(t.len(), n as usize);
    t
}

fn trace(n: u32, seed: u64) -> Vec<(MacKey, MacKey, u8)> {
    let mut s = seed;
    (0..TRACE)
        .map(|_| {
            let a = (splitmix(&mut s) % u64::from(n)) as u32;
            let b = (splitmix(&mut s) % u64::from(n)) as u32;
            (station(a), station(b), (a % 32) as u8)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("mac_table");
    g.throughput(Throughput::Elements(1));
    for &(n, label) in &[(1u32 << 10, "1k"), (1 << 16, "64k"), (1 << 20, "1M")] {
        let t = filled(n);
        eprintln!(
            "mac_table {label}: {} slots, {} MiB",
            t.slots(),
            t.memory() >> 20
        );
        let tr = trace(n, 7);
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("frame", label), &n, |b, _| {
            b.iter(|| {
                let (src, dst, m) = tr[i & (TRACE - 1)];
                i += 1;
                black_box(t.learn(src, m, 1));
                black_box(t.lookup(dst))
            })
        });
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("lookup_miss", label), &n, |b, _| {
            b.iter(|| {
                let (_, dst, _) = tr[i & (TRACE - 1)];
                i += 1;
                // Same bits, another VLAN: never learned.
                black_box(t.lookup(MacKey::new(dst.vlan + 100, dst.mac)))
            })
        });
        let mut empty = MacTable::new(n, 300_000);
        let mut i = 0u32;
        g.bench_with_input(BenchmarkId::new("learn_new", label), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut spent = std::time::Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    if i == n {
                        // Full: a fresh table, outside the timed part.
                        empty = MacTable::new(n, 300_000);
                        i = 0;
                    }
                    let k = u64::from(n - i).min(left) as u32;
                    let t0 = std::time::Instant::now();
                    for j in i..i + k {
                        black_box(empty.learn(
                            station(j.wrapping_mul(2_654_435_761) % n),
                            (j % 32) as u8,
                            1,
                        ));
                    }
                    spent += t0.elapsed();
                    i += k;
                    left -= u64::from(k);
                }
                spent
            })
        });
        let shared = Arc::new(filled(n));
        let stop = Arc::new(AtomicBool::new(false));
        let other = {
            let (t, stop) = (shared.clone(), stop.clone());
            let tr = trace(n, 99);
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (src, dst, m) = tr[i & (TRACE - 1)];
                    i += 1;
                    black_box(t.learn(src, m, 1));
                    black_box(t.lookup(dst));
                }
            })
        };
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("frame_two_threads", label), &n, |b, _| {
            b.iter(|| {
                let (src, dst, m) = tr[i & (TRACE - 1)];
                i += 1;
                black_box(shared.learn(src, m, 1));
                black_box(shared.lookup(dst))
            })
        });
        stop.store(true, Ordering::Relaxed);
        let _ = other.join();
    }
    g.finish();
}

struct AnyEnv;
impl Environment for AnyEnv {
    fn interface_exists(&self, _: &str) -> bool {
        true
    }
    fn core_count(&self) -> usize {
        1
    }
}

const SWITCH: &str = r#"
[engine]
cores = [0]
[[bridge]]
name = "br0"
[[port]]
name = "p0"
interface = "m0"
mode = "switch"
bridge = "br0"
vlan = 10
[[port]]
name = "p1"
interface = "m1"
mode = "switch"
bridge = "br0"
vlan = 10
[[port]]
name = "p2"
interface = "m2"
mode = "switch"
bridge = "br0"
trunk = [10]
[[port]]
name = "p3"
interface = "m3"
mode = "switch"
bridge = "br0"
vlan = 10
"#;

fn eth(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(60, 0x5a);
    f
}

fn switch_stage(c: &mut Criterion) {
    let cfg = Config::parse(std::path::Path::new("b.toml"), SWITCH, &AnyEnv).unwrap();
    let ifs = setup::interfaces(&cfg, &|n: &str| Ok([2, 0xee, 0, 0, 0, n.as_bytes()[1]])).unwrap();
    let routes = Routes::resolve(RouteTable::new().reader().snapshot().clone(), &ifs);
    let tables = Arc::new(
        Tables::new(ifs, routes, NeighborTable::new(30_000, 120_000).map()).with_l2(cfg.switch()),
    );
    // 256 bytes of headroom, as AF_XDP gives.
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
            io: MemPort::new(&format!("p{i}"), &umem, pc),
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
        tables.clone(),
        Arc::new(SharedCounters::default()),
        sink,
    );
    w.prime();
    let (a, b, t) = (
        [2, 0, 0, 0, 0, 0xa],
        [2, 0, 0, 0, 0, 0xb],
        [2, 0, 0, 0, 0, 0xc],
    );
    let run = |w: &mut Worker<MemPort>, from: usize, f: &[u8]| -> usize {
        let (umem, socks) = w.split();
        for _ in 0..BURST {
            socks[from].io.inject(umem, f);
        }
        w.poll_once();
        let (umem, socks) = w.split();
        let mut n = 0;
        for s in socks.iter_mut() {
            n += s.io.take_sent(umem, usize::MAX, |x| {
                black_box(x.len());
            });
        }
        n
    };
    // Learn a on p0, b on p1, t on the trunk p2.
    run(&mut w, 0, &eth([0xff; 6], a));
    run(&mut w, 1, &eth([0xff; 6], b));
    run(&mut w, 2, &{
        let mut f = eth([0xff; 6], t);
        f.splice(12..12, [0x81, 0x00, 0x00, 10]);
        f
    });
    let mut g = c.benchmark_group("switch_stage");
    g.throughput(Throughput::Elements(BURST as u64));
    let ab = eth(b, a);
    g.bench_function("unicast_access_64", |bn| {
        bn.iter(|| assert_eq!(run(&mut w, 0, &ab), BURST))
    });
    let at = eth(t, a);
    g.bench_function("unicast_push_tag_64", |bn| {
        bn.iter(|| assert_eq!(run(&mut w, 0, &at), BURST))
    });
    let bc = eth([0xff; 6], a);
    g.bench_function("flood_3_ports_64", |bn| {
        bn.iter(|| assert_eq!(run(&mut w, 0, &bc), 3 * BURST))
    });
    g.finish();
    w.poll_once();
    w.umem().check().unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = switch_stage, bench
}
criterion_main!(benches);
