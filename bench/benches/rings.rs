//! Ring operations in bursts of 64, ns per frame.
//!
//! - `ring/produce_64`: reserve + write + submit of 64 descriptors (the
//!   consumer end releases them without reading, so the ring never fills).
//! - `ring/consume_64`: peek + read + release of 64 descriptors (the producer
//!   end refills them by submitting without writing).
//! - `ring/round_trip_64`: both, as one thread sees a fill or TX ring.
//! - `mem_port/cycle_64`: a whole worker cycle on the in-memory port: refill,
//!   receive, send, reclaim, with the frame ledger (the wire side's inject and
//!   take_sent included, so this is an upper bound).
//!
//! All single-threaded: the indices stay in this core's cache, so these are
//! the costs of the ring logic, not of cache-line transfers to the kernel.
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use engine::xsk::mem_port::MemPortConfig;
use engine::xsk::ring::heap_ring;
use engine::xsk::{Desc, MemPort, Port, Umem, UmemConfig, BURST};

fn rings(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring");
    g.throughput(Throughput::Elements(BURST as u64));

    let (mut p, mut c_) = heap_ring::<Desc>(2048);
    let mut i = 0u64;
    g.bench_function("produce_64", |b| {
        b.iter(|| {
            let n = p.reserve(BURST as u32);
            for k in 0..n {
                p.write(
                    k,
                    Desc {
                        addr: i + k as u64 * 2048,
                        len: 60,
                        options: 0,
                    },
                );
            }
            p.submit(n);
            i = i.wrapping_add(1);
            // Keep room: release without reading.
            let m = c_.peek(n);
            c_.release(m);
        })
    });

    let (mut p, mut c_) = heap_ring::<Desc>(2048);
    g.bench_function("consume_64", |b| {
        b.iter(|| {
            // Keep entries: submit without writing.
            let n = p.reserve(BURST as u32);
            p.submit(n);
            let m = c_.peek(BURST as u32);
            let mut sum = 0u64;
            for k in 0..m {
                sum = sum.wrapping_add(c_.read(k).addr);
            }
            c_.release(m);
            black_box(sum);
        })
    });

    let (mut p, mut c_) = heap_ring::<u64>(2048);
    let items: Vec<u64> = (0..BURST as u64).map(|k| k * 2048).collect();
    let mut out = [0u64; BURST];
    g.bench_function("round_trip_64", |b| {
        b.iter(|| {
            let n = p.push_burst(black_box(&items));
            let m = c_.pop_burst(&mut out);
            black_box((n, m, out[0]));
        })
    });
    g.finish();

    let mut g = c.benchmark_group("mem_port");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut umem = Umem::new(UmemConfig {
        frame_size: 2048,
        frame_count: 4096,
        huge_pages: false,
        headroom: 0,
    })
    .unwrap();
    let cfg = MemPortConfig {
        rx_size: 1024,
        tx_size: 1024,
        fill_size: 1024,
        comp_size: 1024,
    };
    let mut a = MemPort::new("a", &umem, cfg);
    let mut bp = MemPort::new("b", &umem, cfg);
    let frame = [0x5au8; 60];
    let mut descs = [Desc::default(); BURST];
    g.bench_function("cycle_64", |b| {
        b.iter(|| {
            a.refill(&mut umem, BURST);
            for _ in 0..BURST {
                a.inject(&mut umem, &frame);
            }
            let n = a.recv(&mut umem, &mut descs);
            let s = bp.send(&mut umem, &descs[..n]);
            bp.take_sent(&mut umem, BURST, |x| {
                black_box(x.len());
            });
            bp.reclaim(&mut umem, BURST);
            black_box(s);
        })
    });
    g.finish();
    umem.check().unwrap();
}

criterion_group!(benches, rings);
criterion_main!(benches);
