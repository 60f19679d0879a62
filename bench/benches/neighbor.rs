//! Router building blocks: neighbor map lookups (the per-packet MAC
//! resolution) with a small and a large table, and IPv4 fragmentation of a
//! 1500-byte datagram for a 576-byte MTU.
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::neighbor::{NeighborKey, NeighborMap};
use engine::router::fragment::Fragmenter;
use engine::wire::ipv4::Ipv4Options;
use engine::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};
use pktengine_bench::splitmix;

/// Lookups per iteration: independent (they overlap in the CPU), random order, all hits. The
/// trace (128 KiB) stays in L2 so the figure is the lookup, not the trace streaming in; with 64k
/// entries the table (2 MiB) does not, and each lookup touches a random line of it.
const TRACE: usize = 1 << 14;

fn neighbor_get(c: &mut Criterion) {
    let mut g = c.benchmark_group("neighbor_map");
    for n in [16usize, 65_536] {
        let mut seed = 7;
        // Addresses from 198.18.0.0/15 spread over 4 ports.
        let keys: Vec<(u16, Ipv4Addr)> = (0..n)
            .map(|i| {
                let a = 0xc612_0000u32 | (splitmix(&mut seed) as u32 & 0x1_ffff);
                ((i % 4) as u16, Ipv4Addr::from(a))
            })
            .collect();
        let map = NeighborMap::from_entries(keys.iter().enumerate().map(|(i, &(port, a))| {
            (
                NeighborKey {
                    port,
                    ip: IpAddr::V4(a),
                },
                [2, 0, 0, 0, (i >> 8) as u8, i as u8],
            )
        }));
        // A trace of hits in random order.
        let trace: Vec<(u16, Ipv4Addr)> = (0..TRACE)
            .map(|_| keys[(splitmix(&mut seed) as usize) % keys.len()])
            .collect();
        g.throughput(Throughput::Elements(TRACE as u64));
        g.bench_with_input(BenchmarkId::new("get_v4", n), &trace, |b, trace| {
            b.iter(|| {
                let mut acc = 0u32;
                for &(port, a) in trace {
                    if let Some(m) = map.get_v4(port, black_box(a)) {
                        acc = acc.wrapping_add(u32::from(m[5]));
                    }
                }
                acc
            })
        });
    }
    g.finish();
}

fn fragment(c: &mut Criterion) {
    let repr = Ipv4Repr {
        src_addr: Ipv4Addr::new(198, 18, 0, 1),
        dst_addr: Ipv4Addr::new(198, 19, 0, 2),
        protocol: IpProtocol::Udp,
        payload_len: 1480,
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: 1,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        options: Ipv4Options::EMPTY,
    };
    let mut ip = vec![0u8; 1500];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut ip[..]));
    let mut out = [[0u8; 576]; 3];
    let mut g = c.benchmark_group("fragment");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1500_to_mtu_576", |b| {
        b.iter(|| {
            let mut f = Fragmenter::new(black_box(&ip), 576).unwrap();
            let mut total = 0;
            for o in out.iter_mut() {
                total += f.next_into(o).unwrap_or(0);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, neighbor_get, fragment);
criterion_main!(benches);
