//! What one handoff between workers costs, and the RSS model's cost.
//!
//! - `handoff/same_thread/{64,1500}`: send (pool pop, copy into the slot,
//!   inbox push) then receive (inbox pop, copy into a UMEM-sized buffer, slot
//!   back to the pool) of a frame, one thread: the work without cache-line
//!   transfers, ns per frame.
//! - `handoff/cross_thread/{64,1500}`: a sender thread hands frames to the
//!   measuring thread, which takes and copies each, as two workers do:
//!   frames per second through one inbox (Throughput: elements).
//! - `rss/queue_v4`: the Toeplitz model's hash and table lookup of one IPv4
//!   TCP 4-tuple (`engine::rss`), ns per lookup.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::context::handoff::Handoff;

fn handoff(c: &mut Criterion) {
    let mut g = c.benchmark_group("handoff");
    g.throughput(Throughput::Elements(1));
    for size in [64usize, 1500] {
        let h = Handoff::new(1, false).unwrap();
        let frame = vec![0x5au8; size];
        let mut umem = vec![0u8; 2048];
        g.bench_with_input(BenchmarkId::new("same_thread", size), &size, |b, _| {
            b.iter(|| {
                assert!(h.send(0, 1, 0, black_box(&frame)));
                let s = h.recv(0).unwrap();
                let n = usize::from(s.len);
                umem[..n].copy_from_slice(&s.data[..n]);
                h.recycle(0, s);
                black_box(&umem);
            })
        });
        g.bench_with_input(BenchmarkId::new("cross_thread", size), &size, |b, _| {
            b.iter_custom(|iters| cross(iters, size))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("rss");
    g.throughput(Throughput::Elements(1));
    let rss = engine::rss::Rss::new(
        engine::rss::MS_KEY.to_vec(),
        (0..128).map(|i| i % 2).collect(),
    )
    .unwrap();
    let mut i = 0u32;
    g.bench_function("queue_v4", |b| {
        b.iter(|| {
            i = i.wrapping_add(0x9e37_79b9);
            black_box(rss.queue_v4(6, 0xc612_0102 ^ i, 0xc613_0101, (i >> 16) as u16, 443))
        })
    });
    g.finish();
}

/// `iters` frames of `size` bytes from a sender thread to this one; the
/// time from the first send to the last frame taken and copied.
fn cross(iters: u64, size: usize) -> Duration {
    let h = Arc::new(Handoff::new(1, false).unwrap());
    let go = Arc::new(AtomicBool::new(false));
    let sender = {
        let (h, go) = (h.clone(), go.clone());
        std::thread::spawn(move || {
            let frame = vec![0x5au8; size];
            while !go.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            let mut sent = 0;
            while sent < iters {
                if h.send(0, 1, 0, &frame) {
                    sent += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        })
    };
    let mut umem = vec![0u8; 2048];
    let start = Instant::now();
    go.store(true, Ordering::Release);
    let mut got = 0;
    while got < iters {
        match h.recv(0) {
            Some(s) => {
                let n = usize::from(s.len);
                umem[..n].copy_from_slice(&s.data[..n]);
                h.recycle(0, s);
                got += 1;
            }
            None => std::hint::spin_loop(),
        }
    }
    let t = start.elapsed();
    black_box(&umem);
    sender.join().unwrap();
    t
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = handoff
}
criterion_main!(benches);
