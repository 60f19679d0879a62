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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::l2::{MacKey, MacTable};
use pktengine_bench::splitmix;

const TRACE: usize = 1 << 20;

fn station(i: u32) -> MacKey {
    MacKey::new(10 + (i % 4) as u16, [0x02, 0x00, (i >> 24) as u8, (i >> 16) as u8, (i >> 8) as u8, i as u8])
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
        eprintln!("mac_table {label}: {} slots, {} MiB", t.slots(), t.memory() >> 20);
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
                        black_box(empty.learn(station(j.wrapping_mul(2_654_435_761) % n), (j % 32) as u8, 1));
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

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
