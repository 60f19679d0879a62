//! The load balancer's per-packet work, one core, ns per packet:
//!
//! - `lb/established/{fullnat,dnat}`: a burst of 64 packets of established
//!   connections (10k live, random picks): connection lookup, destination
//!   (and full-NAT source) rewrite with checksums. Headers restored after
//!   each burst (included).
//! - `lb/new_connection/{weighted,maglev}`: a new connection's first
//!   packet: scheduler, connection (and full-NAT source port) created. The
//!   new connections are expired (untimed) every 50k.
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::conntrack::rewrite::{self as translate, Kind, Side, PROTO_UDP};
use engine::lb::{BackendConfig, DownPolicy, LbShared, LbWorker, Mode, Scheduler, ServiceConfig};
use engine::nat::{Ep, Timeouts};
use engine::wire::checksum;
use pktengine_bench::splitmix;

const VIP: u32 = 0xc613_0164; // 198.19.1.100

fn service(mode: Mode, scheduler: Scheduler, udp_ms: u64) -> ServiceConfig {
    ServiceConfig {
        name: "bench".into(),
        proto: PROTO_UDP,
        vip: Ep::new(VIP, 53),
        scheduler,
        mode,
        snat: u32::from(Ipv4Addr::new(198, 19, 2, 1)),
        down_policy: DownPolicy::Keep,
        backends: (0..8)
            .map(|i| BackendConfig {
                ep: Ep::new(u32::from(Ipv4Addr::new(198, 19, 2, 10 + i)), 53),
                weight: 1 + u32::from(i % 3),
                up: true,
                healthy: true,
            })
            .collect(),
        timeouts: Timeouts {
            udp_ms,
            ..Timeouts::default()
        },
        health: None,
        announce: false,
    }
}

fn client(i: u32) -> Ep {
    Ep::new(
        u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (i >> 10) % 65_000,
        1024 + (i & 1023) as u16,
    )
}

fn frame(src: Ep, dst: Ep) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 46, 0, 1, 0x40, 0, 64, PROTO_UDP, 0, 0];
    ip.extend_from_slice(&src.addr.to_be_bytes());
    ip.extend_from_slice(&dst.addr.to_be_bytes());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut u = vec![0u8; 26];
    u[0..2].copy_from_slice(&src.port.to_be_bytes());
    u[2..4].copy_from_slice(&dst.port.to_be_bytes());
    u[4..6].copy_from_slice(&26u16.to_be_bytes());
    let s = checksum::combine(&[
        checksum::pseudo_header_v4(
            &src.addr.to_be_bytes(),
            &dst.addr.to_be_bytes(),
            PROTO_UDP,
            26,
        ),
        checksum::data(&u),
    ]);
    u[6..8].copy_from_slice(&checksum::udp_nonzero(!s).to_be_bytes());
    ip.extend_from_slice(&u);
    ip
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("lb");
    g.measurement_time(Duration::from_secs(3));
    for (label, mode) in [("fullnat", Mode::FullNat), ("dnat", Mode::Dnat)] {
        let lb = LbShared::new(&[service(mode, Scheduler::Maglev, 300_000)], 1);
        let mut w = LbWorker::new(&lb, 0);
        let snap = lb.services.load_full();
        let n = 10_000u32;
        for i in 0..n {
            w.to_backend(
                &snap,
                0,
                client(i),
                Ep::new(VIP, 53),
                0,
                i.wrapping_mul(2_654_435_761),
                0,
                0,
            )
            .unwrap();
        }
        let mut rng = 11u64;
        let frames: Vec<Vec<u8>> = (0..64)
            .map(|_| {
                frame(
                    client((splitmix(&mut rng) % u64::from(n)) as u32),
                    Ep::new(VIP, 53),
                )
            })
            .collect();
        let mut work = frames.clone();
        g.throughput(Throughput::Elements(64));
        g.bench_function(BenchmarkId::new("established", label), |b| {
            b.iter(|| {
                for (p, f) in work.iter_mut().zip(&frames) {
                    p[..28].copy_from_slice(&f[..28]);
                    if let Kind::Ports {
                        src,
                        dst,
                        tcp_flags,
                        ..
                    } = translate::classify(p)
                    {
                        if let Ok(a) = w.to_backend(&snap, 0, src, dst, tcp_flags, 0, 60, 1) {
                            translate::rewrite_ports(p, Side::Dst, a.backend);
                            if a.source != src {
                                translate::rewrite_ports(p, Side::Src, a.source);
                            }
                        }
                    }
                    black_box(&p);
                }
            })
        });
        assert_eq!(w.len(), n);
    }
    for (label, sched) in [
        ("weighted", Scheduler::Weighted),
        ("maglev", Scheduler::Maglev),
    ] {
        let lb = LbShared::new(&[service(Mode::FullNat, sched, 1)], 1);
        let mut w = LbWorker::new(&lb, 0);
        let snap = lb.services.load_full();
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("new_connection", label), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut left = iters;
                let mut k = 0u32;
                while left > 0 {
                    let m = left.min(50_000) as u32;
                    let t0 = Instant::now();
                    for j in 0..m {
                        let cl = client(k.wrapping_add(j));
                        black_box(w.to_backend(
                            &snap,
                            0,
                            cl,
                            Ep::new(VIP, 53),
                            0,
                            (k + j).wrapping_mul(2_654_435_761),
                            60,
                            0,
                        ))
                        .ok();
                    }
                    spent += t0.elapsed();
                    k = k.wrapping_add(m);
                    w.expire(&snap, 2, usize::MAX);
                    left -= u64::from(m);
                }
                spent
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
