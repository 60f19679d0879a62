//! Wire-layer benches: checksum throughput and header parsing.
//! Names are the ones the README's performance table uses.
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use engine::wire::checksum;

fn checksum_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for size in [64usize, 1500] {
        let buf: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("rfc1071/{size}B"), |b| {
            b.iter(|| checksum::data(black_box(&buf)))
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("rfc1624/ttl_update", |b| {
        b.iter(|| checksum::update16(black_box(0x61f7), black_box(0x4001), black_box(0x3f01)))
    });
    g.finish();
}

criterion_group!(benches, checksum_bench);
criterion_main!(benches);
