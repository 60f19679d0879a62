//! The packet filter's classifier: ns per packet (field extraction excluded,
//! measured separately) for 10, 1,000 and 10,000 rules, against the linear
//! first-match walk it replaces.
//!
//! Rule sets are ACL-like: source /16, /24 or /32 inside 198.18.0.0/15,
//! destination /24 or /32, TCP or UDP, destination port exact or one of a
//! few ranges, drop or accept, plus a TCP-flags rule. Packets: half match a
//! rule's shape, half are random in the same space.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::filter::classifier::{linear, Classifier};
use engine::filter::rule::{Fields, Rule};
use pktengine_bench::splitmix;

fn rules(n: usize, seed: u64) -> Vec<Rule> {
    let mut x = seed;
    let port = |_: &str| Some(0u16);
    let mut out = vec![Rule::parse("iif lan tcp flags syn / syn,ack drop", &port).unwrap()];
    while out.len() < n {
        let r = splitmix(&mut x);
        let slen = [16, 24, 32][(r % 3) as usize];
        let dlen = [24, 32][((r >> 8) % 2) as usize];
        let src = 0xc612_0000u32 | ((r >> 16) as u32 & 0x1_ffff);
        let dst = 0xc613_0000u32 | ((r >> 40) as u32 & 0xffff);
        let proto = if r & (1 << 60) != 0 { "tcp" } else { "udp" };
        let dport = match (r >> 50) % 4 {
            0 => "1024-65535".to_string(),
            1 => "8000-8999".to_string(),
            _ => format!("{}", 1 + (r >> 20) % 2000),
        };
        let act = if r & (1 << 61) != 0 { "drop" } else { "accept" };
        let t = format!(
            "ip saddr {}/{slen} ip daddr {}/{dlen} {proto} dport {dport} {act}",
            std::net::Ipv4Addr::from(src),
            std::net::Ipv4Addr::from(dst)
        );
        out.push(Rule::parse(&t, &port).unwrap());
    }
    out
}

fn packets(seed: u64) -> Vec<Fields> {
    let mut x = seed;
    (0..1024)
        .map(|_| {
            let r = splitmix(&mut x);
            Fields {
                iif: 0,
                oif: 1,
                ethertype: 0x0800,
                family: 4,
                src: u128::from(0xc612_0000u32 | ((r >> 16) as u32 & 0x1_ffff)),
                dst: u128::from(0xc613_0000u32 | ((r >> 40) as u32 & 0xffff)),
                proto: if r & 1 == 0 { 6 } else { 17 },
                sport: 40000,
                dport: (1 + (r >> 20) % 9000) as u16,
                tcp_flags: 0x10,
                ..Fields::default()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let pk = packets(3);
    let mut g = c.benchmark_group("filter");
    g.throughput(Throughput::Elements(pk.len() as u64));
    for n in [10usize, 1000, 10_000] {
        let rs = rules(n, 42);
        let cl = Classifier::build(&rs);
        println!("filter: {n} rules -> {} tuples", cl.tuples());
        g.bench_with_input(BenchmarkId::new("tuple_space", n), &n, |b, _| {
            b.iter(|| {
                let mut hits = 0u32;
                for f in &pk {
                    hits = hits.wrapping_add(cl.lookup(black_box(f)).unwrap_or(0));
                }
                hits
            })
        });
        if n <= 1000 {
            g.bench_with_input(BenchmarkId::new("linear", n), &n, |b, _| {
                b.iter(|| {
                    let mut hits = 0u32;
                    for f in &pk {
                        hits = hits.wrapping_add(linear(&rs, black_box(f)).unwrap_or(0));
                    }
                    hits
                })
            });
        }
    }
    let mut frame = vec![0u8; 14 + 20 + 20];
    frame[12..14].copy_from_slice(&[8, 0]);
    frame[14] = 0x45;
    frame[14 + 9] = 6;
    g.throughput(Throughput::Elements(1));
    g.bench_function("fields_extract", |b| {
        b.iter(|| engine::filter::fields(black_box(&frame), 0, 1))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
