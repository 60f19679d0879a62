//! The NAT's per-packet work, one core, ns per packet:
//!
//! - `nat/translate_existing/N`: a burst of 64 frames of established UDP
//!   flows, picked at random from N live sessions (1k and 1M): classify the
//!   packet, find its session (one hash probe), rewrite source address and
//!   port with both checksums. The 42 header bytes are restored after each
//!   burst (about 1 ns a packet, included).
//! - `nat/new_mapping/1M`: a new flow's first packet with a million mappings
//!   in the table: mapping and session created, external port allocated.
//!   The new flows are expired (untimed) every 100k so the table stays at 1M.
//! - `dump_slice/step`: a worker's share of `ctl nat show` in one loop
//!   iteration (`context::dump`, `SLICE` = 256 slots): the next slots of a
//!   full table of 262,144 sessions copied into a lent buffer and handed
//!   over, the cursor's queue operations included. The control thread's
//!   side (taking the chunk, giving the buffer back) is untimed.
//! - `dump_slice/rows_1024`: the copy alone for 1,024 slots (the bound the
//!   issue allowed), into a reused buffer.
//! - `dump_slice/whole_table`: what a worker did in one iteration before
//!   dumps went in slices: all 262,144 sessions into a new `Vec`.
//! - `dump_slice/idle`: the step with no dump asked for (every loop pays it).
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::conntrack::rewrite::{self as translate, Ep, Kind, Side, PROTO_UDP};
use engine::context::dump::{Collector, Cursor, Dumps, Mode, Step, SLICE};
use engine::nat::{NatTable, SessionInfo, TableConfig};
use engine::wire::checksum;
use pktengine_bench::splitmix;

const REMOTE: u32 = 0xc613_0102; // 198.19.1.2
const INSIDE: u32 = 0xc612_0000; // 198.18.0.0/16

/// A pool big enough for a million mappings (32 addresses x 64,512 ports).
fn pool() -> Vec<u32> {
    (0..32)
        .map(|i| u32::from(Ipv4Addr::new(198, 19, 2, i)))
        .collect()
}

fn flow(i: u32) -> Ep {
    Ep::new(INSIDE + (i >> 10) % 65_000, 1024 + (i & 1023) as u16)
}

fn udp_frame(src: Ep, dst: Ep) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8 + 18];
    f[12..14].copy_from_slice(&[0x08, 0]);
    let ip = &mut f[14..];
    ip[..12].copy_from_slice(&[0x45, 0, 0, 46, 0, 1, 0x40, 0, 64, PROTO_UDP, 0, 0]);
    ip[12..16].copy_from_slice(&src.addr.to_be_bytes());
    ip[16..20].copy_from_slice(&dst.addr.to_be_bytes());
    let c = checksum::checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip[20..22].copy_from_slice(&src.port.to_be_bytes());
    ip[22..24].copy_from_slice(&dst.port.to_be_bytes());
    ip[24..26].copy_from_slice(&26u16.to_be_bytes());
    let s = checksum::combine(&[
        checksum::pseudo_header_v4(
            &src.addr.to_be_bytes(),
            &dst.addr.to_be_bytes(),
            PROTO_UDP,
            26,
        ),
        checksum::data(&ip[20..]),
    ]);
    ip[26..28].copy_from_slice(&checksum::udp_nonzero(!s).to_be_bytes());
    f
}

/// One packet through the NAT's outbound path, as `nat::stage` does it.
#[inline]
fn translate_out(t: &mut NatTable, frame: &mut [u8]) -> bool {
    let ip = &mut frame[14..];
    match translate::classify(ip) {
        Kind::Ports {
            proto,
            src,
            dst,
            tcp_flags,
        } => match t.outbound(proto, src, dst, tcp_flags, 1) {
            Ok(e) => translate::rewrite_ports(ip, Side::Src, e),
            Err(_) => false,
        },
        _ => false,
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("nat");
    g.measurement_time(Duration::from_secs(4));
    for &n in &[1_000u32, 1_000_000] {
        let mut t = NatTable::new(TableConfig::simple(pool(), n + 1024));
        for i in 0..n {
            t.outbound(PROTO_UDP, flow(i), Ep::new(REMOTE, 53), 0, 0)
                .unwrap();
        }
        let mut rng = 7u64;
        let frames: Vec<Vec<u8>> = (0..64)
            .map(|_| {
                udp_frame(
                    flow((splitmix(&mut rng) % u64::from(n)) as u32),
                    Ep::new(REMOTE, 53),
                )
            })
            .collect();
        let mut work = frames.clone();
        g.throughput(Throughput::Elements(64));
        g.bench_with_input(BenchmarkId::new("translate_existing", n), &n, |b, _| {
            b.iter(|| {
                for (w, f) in work.iter_mut().zip(&frames) {
                    w[14..56].copy_from_slice(&f[14..56]);
                    black_box(translate_out(&mut t, w));
                }
            })
        });
        assert_eq!(t.counts().0, n, "only existing sessions were used");
    }
    // New mappings with a million in the table.
    let base = 1_000_000u32;
    let chunk = 100_000u32;
    let mut cfg = TableConfig::simple(pool(), base + chunk + 1024);
    cfg.timeouts.udp_ms = 1;
    let mut t = NatTable::new(cfg);
    let forever = u64::MAX / 2;
    for i in 0..base {
        t.outbound(PROTO_UDP, flow(i), Ep::new(REMOTE, 53), 0, forever)
            .unwrap();
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("new_mapping", "1M"), |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut left = iters;
            let mut k = 0u32;
            while left > 0 {
                let m = left.min(u64::from(chunk)) as u32;
                let t0 = Instant::now();
                for j in 0..m {
                    // Fresh inside endpoints from a range the base flows do not use.
                    let e = Ep::new(
                        0xc612_f000 + ((k + j) >> 10),
                        1024 + ((k + j) & 1023) as u16,
                    );
                    black_box(t.outbound(PROTO_UDP, e, Ep::new(REMOTE, 53), 0, 0)).ok();
                }
                spent += t0.elapsed();
                k = k.wrapping_add(m);
                // Untimed: expire the new flows (the base ones are stamped in the future).
                t.expire(2, usize::MAX);
                left -= u64::from(m);
            }
            spent
        })
    });
    assert_eq!(t.counts().0, base);
    g.finish();
}

fn dump(c: &mut Criterion) {
    let mut g = c.benchmark_group("dump_slice");
    g.measurement_time(Duration::from_secs(4));
    let n = 262_144u32;
    let mut t = NatTable::new(TableConfig::simple(pool(), n));
    for i in 0..n {
        t.outbound(PROTO_UDP, flow(i), Ep::new(REMOTE, 53), 0, 0)
            .unwrap();
    }
    let dumps = Arc::new(Dumps::<SessionInfo>::new(1));
    let slot = dumps.slot(0).unwrap();
    let mut cursor = Cursor::default();
    g.throughput(Throughput::Elements(SLICE as u64));
    g.bench_function("step", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut col = Collector::start(&dumps, Mode::Show).unwrap();
            for _ in 0..iters {
                if col.is_done() {
                    drop(col);
                    col = Collector::start(&dumps, Mode::Show).unwrap();
                }
                let t0 = Instant::now();
                let step = cursor.step(slot, t.session_slots(), false, 0, |s, rows| {
                    t.dump_slice(s.range.clone(), 5, rows)
                });
                spent += t0.elapsed();
                assert!(matches!(step, Step::Sent { .. }));
                // Untimed: the control thread takes the rows and gives the buffer back.
                assert_eq!(black_box(col.poll()).rows.len(), SLICE);
            }
            spent
        })
    });
    g.throughput(Throughput::Elements(1024));
    let mut rows = Vec::with_capacity(1024);
    let mut at = 0usize;
    g.bench_function("rows_1024", |b| {
        b.iter(|| {
            rows.clear();
            t.dump_slice(at..at + 1024, 5, &mut rows);
            at = (at + 1024) % n as usize;
            black_box(rows.len())
        })
    });
    g.throughput(Throughput::Elements(u64::from(n)));
    g.sample_size(20);
    g.bench_function("whole_table", |b| b.iter(|| black_box(t.dump(5)).len()));
    g.sample_size(100);
    g.throughput(Throughput::Elements(1));
    g.bench_function("idle", |b| {
        b.iter(|| {
            black_box(cursor.step(slot, t.session_slots(), false, 0, |s, rows| {
                t.dump_slice(s.range.clone(), 5, rows)
            }))
        })
    });
    g.finish();
}

criterion_group!(benches, bench, dump);
criterion_main!(benches);
