//! LPM lookups on the full Internet table: pktengine's Poptrie against existing crates, one
//! core, random and skewed traces, single and batched; plus update and rebuild costs.
//!
//! Memory: pktengine reports the exact bytes of its structures; treebitmap its own
//! `mem_usage`; for every structure the growth of the resident set while building it is also
//! printed (rough: allocator slack included).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ip_network_table_deps_treebitmap as treebitmap;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::l3::lpm4::Lpm4;
use engine::l3::lpm6::Lpm6;
use engine::l3::nexthop::NextHop;
use engine::l3::prefix::{IpPrefix, Ipv4Prefix, Ipv6Prefix};
use engine::l3::route_table::{Route, RouteTable};
use pktengine_bench::{full_table, rss_bytes, splitmix};

const TRACE: usize = 1 << 20;
const BURST: usize = 32;

fn v4_routes(all: &[(IpPrefix, u16)]) -> Vec<(Ipv4Prefix, u16)> {
    all.iter()
        .filter_map(|(p, nh)| match p {
            IpPrefix::V4(q) => Some((*q, *nh)),
            _ => None,
        })
        .collect()
}

fn v6_routes(all: &[(IpPrefix, u16)]) -> Vec<(Ipv6Prefix, u16)> {
    all.iter()
        .filter_map(|(p, nh)| match p {
            IpPrefix::V6(q) => Some((*q, *nh)),
            _ => None,
        })
        .collect()
}

/// Uniformly random IPv4 addresses.
fn random_trace(seed: u64) -> Vec<u32> {
    let mut x = seed;
    (0..TRACE)
        .map(|_| (splitmix(&mut x) >> 32) as u32)
        .collect()
}

/// 80% of the addresses inside 1% of the prefixes (every 100th of the table), 20% uniform.
fn skewed_trace(routes: &[(Ipv4Prefix, u16)], seed: u64) -> Vec<u32> {
    let hot: Vec<Ipv4Prefix> = routes.iter().step_by(100).map(|r| r.0).collect();
    let mut x = seed;
    (0..TRACE)
        .map(|_| {
            let r = splitmix(&mut x);
            if r % 10 < 8 {
                let p = hot[(r >> 8) as usize % hot.len()];
                let host_mask = !u32::MAX.checked_shl(32 - u32::from(p.len())).unwrap_or(0);
                p.bits() | ((r >> 40) as u32 & host_mask)
            } else {
                (r >> 32) as u32
            }
        })
        .collect()
}

/// IPv6 addresses inside the table: a uniformly chosen prefix, random host bits. (Uniformly
/// random addresses would almost all stop at the direct array: the table is sparse in 2000::/3.)
fn routed_trace6(routes: &[(Ipv6Prefix, u16)], seed: u64) -> Vec<u128> {
    let mut x = seed;
    (0..TRACE)
        .map(|_| {
            let p = routes[(splitmix(&mut x) % routes.len() as u64) as usize].0;
            let r = u128::from(splitmix(&mut x)) << 64 | u128::from(splitmix(&mut x));
            let host_mask = !u128::MAX.checked_shl(128 - u32::from(p.len())).unwrap_or(0);
            p.bits() | (r & host_mask)
        })
        .collect()
}

fn mib(b: usize) -> String {
    format!("{:.2} MiB", b as f64 / (1 << 20) as f64)
}

fn lookups(c: &mut Criterion) {
    let all = full_table();
    let r4 = v4_routes(&all);
    let r6 = v6_routes(&all);
    let random = random_trace(1);
    let skewed = skewed_trace(&r4, 2);
    let routed6 = routed_trace6(&r6, 3);
    println!("full table: {} IPv4, {} IPv6 prefixes", r4.len(), r6.len());

    // Build every structure, measuring the resident-set growth of each.
    let m0 = rss_bytes();
    let ours = Lpm4::from_routes(r4.iter().copied());
    let m1 = rss_bytes();
    println!(
        "memory v4 pktengine poptrie: fib {} ({} B) + control trie {} ; rss +{}",
        mib(ours.fib_bytes()),
        ours.fib_bytes(),
        mib(ours.memory_bytes() - ours.fib_bytes()),
        mib(m1.saturating_sub(m0))
    );
    let mut pt = prefix_trie::PrefixMap::<ipnet::Ipv4Net, u16>::new();
    for (p, nh) in &r4 {
        pt.insert(ipnet::Ipv4Net::new(p.addr(), p.len()).unwrap(), *nh);
    }
    let m2 = rss_bytes();
    println!("memory v4 prefix-trie: rss +{}", mib(m2.saturating_sub(m1)));
    let mut tbm = treebitmap::IpLookupTable::<Ipv4Addr, u16>::new();
    for (p, nh) in &r4 {
        tbm.insert(p.addr(), u32::from(p.len()), *nh);
    }
    let m3 = rss_bytes();
    let (a, b) = tbm.mem_usage();
    println!(
        "memory v4 treebitmap: mem_usage {} ; rss +{}",
        mib(a + b),
        mib(m3.saturating_sub(m2))
    );
    let mut int = ip_network_table::IpNetworkTable::<u16>::new();
    for (p, nh) in &r4 {
        int.insert(
            ip_network::Ipv4Network::new(p.addr(), p.len()).unwrap(),
            *nh,
        );
    }
    let m4 = rss_bytes();
    println!(
        "memory v4 ip_network_table: rss +{}",
        mib(m4.saturating_sub(m3))
    );

    let mut g = c.benchmark_group("lpm4_full_table");
    g.throughput(Throughput::Elements(TRACE as u64));
    for (name, trace) in [("random", &random), ("skewed", &skewed)] {
        g.bench_with_input(
            BenchmarkId::new("pktengine_single", name),
            trace,
            |bch, t| {
                bch.iter(|| {
                    let mut acc = 0u32;
                    for &a in t.iter() {
                        acc = acc.wrapping_add(u32::from(ours.fib().lookup(a)));
                    }
                    black_box(acc)
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("pktengine_batch32", name),
            trace,
            |bch, t| {
                let mut out = [0u16; BURST];
                bch.iter(|| {
                    let mut acc = 0u32;
                    for burst in t.chunks_exact(BURST) {
                        ours.lookup_batch(burst, &mut out);
                        acc = out.iter().fold(acc, |s, &v| s.wrapping_add(u32::from(v)));
                    }
                    black_box(acc)
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("prefix_trie", name), trace, |bch, t| {
            bch.iter(|| {
                let mut acc = 0u32;
                for &a in t.iter() {
                    let key = ipnet::Ipv4Net::new(Ipv4Addr::from(a), 32).unwrap();
                    acc = acc.wrapping_add(pt.get_lpm(&key).map_or(0, |(_, &v)| u32::from(v)));
                }
                black_box(acc)
            })
        });
        g.bench_with_input(BenchmarkId::new("treebitmap", name), trace, |bch, t| {
            bch.iter(|| {
                let mut acc = 0u32;
                for &a in t.iter() {
                    let r = tbm.longest_match(Ipv4Addr::from(a));
                    acc = acc.wrapping_add(r.map_or(0, |(_, _, &v)| u32::from(v)));
                }
                black_box(acc)
            })
        });
        g.bench_with_input(
            BenchmarkId::new("ip_network_table", name),
            trace,
            |bch, t| {
                bch.iter(|| {
                    let mut acc = 0u32;
                    for &a in t.iter() {
                        let r = int.longest_match_ipv4(Ipv4Addr::from(a));
                        acc = acc.wrapping_add(r.map_or(0, |(_, &v)| u32::from(v)));
                    }
                    black_box(acc)
                })
            },
        );
    }
    g.finish();
    drop((pt, tbm, int));

    let m5 = rss_bytes();
    let ours6 = Lpm6::from_routes(r6.iter().copied());
    let m6 = rss_bytes();
    println!(
        "memory v6 pktengine poptrie: fib {} ({} B) + control trie {} ; rss +{}",
        mib(ours6.fib_bytes()),
        ours6.fib_bytes(),
        mib(ours6.memory_bytes() - ours6.fib_bytes()),
        mib(m6.saturating_sub(m5))
    );
    let mut pt6 = prefix_trie::PrefixMap::<ipnet::Ipv6Net, u16>::new();
    for (p, nh) in &r6 {
        pt6.insert(ipnet::Ipv6Net::new(p.addr(), p.len()).unwrap(), *nh);
    }
    let m7 = rss_bytes();
    println!("memory v6 prefix-trie: rss +{}", mib(m7.saturating_sub(m6)));
    let mut tbm6 = treebitmap::IpLookupTable::<Ipv6Addr, u16>::new();
    for (p, nh) in &r6 {
        tbm6.insert(p.addr(), u32::from(p.len()), *nh);
    }
    let (a, b) = tbm6.mem_usage();
    println!("memory v6 treebitmap: mem_usage {}", mib(a + b));

    let mut g = c.benchmark_group("lpm6_full_table");
    g.throughput(Throughput::Elements(TRACE as u64));
    g.bench_function("pktengine_single/routed", |bch| {
        bch.iter(|| {
            let mut acc = 0u32;
            for &a in routed6.iter() {
                acc = acc.wrapping_add(u32::from(ours6.fib().lookup(a)));
            }
            black_box(acc)
        })
    });
    g.bench_function("pktengine_batch32/routed", |bch| {
        let mut out = [0u16; BURST];
        bch.iter(|| {
            let mut acc = 0u32;
            for burst in routed6.chunks_exact(BURST) {
                ours6.lookup_batch(burst, &mut out);
                acc = out.iter().fold(acc, |s, &v| s.wrapping_add(u32::from(v)));
            }
            black_box(acc)
        })
    });
    g.bench_function("prefix_trie/routed", |bch| {
        bch.iter(|| {
            let mut acc = 0u32;
            for &a in routed6.iter() {
                let key = ipnet::Ipv6Net::new(Ipv6Addr::from(a), 128).unwrap();
                acc = acc.wrapping_add(pt6.get_lpm(&key).map_or(0, |(_, &v)| u32::from(v)));
            }
            black_box(acc)
        })
    });
    g.bench_function("treebitmap/routed", |bch| {
        bch.iter(|| {
            let mut acc = 0u32;
            for &a in routed6.iter() {
                let r = tbm6.longest_match(Ipv6Addr::from(a));
                acc = acc.wrapping_add(r.map_or(0, |(_, _, &v)| u32::from(v)));
            }
            black_box(acc)
        })
    });
    g.finish();
}

fn updates(c: &mut Criterion) {
    let all = full_table();
    let r4 = v4_routes(&all);
    let mut g = c.benchmark_group("lpm_update");
    g.sample_size(10);

    let mut lpm = Lpm4::from_routes(r4.iter().copied());
    g.bench_function("v4_full_rebuild_poptrie", |b| b.iter(|| lpm.rebuild()));
    g.bench_function("v4_build_from_routes", |b| {
        b.iter(|| black_box(Lpm4::from_routes(r4.iter().copied())).len())
    });
    drop(lpm);

    // The RIB with the whole table (v4 and v6), as the router holds it.
    let mut table = RouteTable::new();
    for (p, nh) in &all {
        let gw = match p {
            IpPrefix::V4(_) => IpAddr::V4(Ipv4Addr::new(198, 18, 0, *nh as u8 + 1)),
            IpPrefix::V6(_) => IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, *nh + 1)),
        };
        table
            .stage_add(Route {
                reject: None,
                prefix: *p,
                hops: vec![NextHop::via(gw)],
                metric: 0,
            })
            .unwrap();
    }
    table.publish();
    let reader = table.reader();
    let hop = |h: u8| vec![NextHop::via(IpAddr::V4(Ipv4Addr::new(198, 18, 1, h)))];
    // Each iteration is two updates: add and publish, delete and publish.
    let p24: IpPrefix = "198.18.77.0/24".parse().unwrap();
    g.bench_function("v4_add_then_delete_24_publish", |b| {
        b.iter(|| {
            table
                .add(Route {
                    reject: None,
                    prefix: p24,
                    hops: hop(1),
                    metric: 0,
                })
                .unwrap();
            table.remove(p24, None).unwrap();
            black_box(reader.snapshot().lookup_v4(Ipv4Addr::new(198, 18, 77, 1)))
        })
    });
    // A /16 covers four direct entries and every subtree below them.
    let p16: IpPrefix = "198.18.0.0/16".parse().unwrap();
    g.bench_function("v4_add_then_delete_16_publish", |b| {
        b.iter(|| {
            table
                .add(Route {
                    reject: None,
                    prefix: p16,
                    hops: hop(2),
                    metric: 0,
                })
                .unwrap();
            table.remove(p16, None).unwrap();
        })
    });
    let p6: IpPrefix = "2001:2::/48".parse().unwrap();
    let gw6 = vec![NextHop::via("2001:2::9".parse().unwrap())];
    g.bench_function("v6_add_then_delete_48_publish", |b| {
        b.iter(|| {
            table
                .add(Route {
                    reject: None,
                    prefix: p6,
                    hops: gw6.clone(),
                    metric: 0,
                })
                .unwrap();
            table.remove(p6, None).unwrap();
        })
    });
    // The default route sits under everything: changing it rewrites every leaf that falls
    // back to it, i.e. the whole structure.
    let d: IpPrefix = "0.0.0.0/0".parse().unwrap();
    g.bench_function("v4_add_then_delete_default_publish", |b| {
        b.iter(|| {
            table
                .add(Route {
                    reject: None,
                    prefix: d,
                    hops: hop(3),
                    metric: 0,
                })
                .unwrap();
            table.remove(d, None).unwrap();
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = lookups, updates }
criterion_main!(benches);
