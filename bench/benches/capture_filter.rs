//! Capture filters (`ctl capture --filter`): ns per frame for the issue's
//! expression, `tcp port 80 and host 198.18.1.2`, compiled by libpcap and run
//! by the engine's interpreter, on a frame it rejects early (UDP), one it
//! rejects late (TCP to port 443 of the host) and one it accepts (TCP to port
//! 80). `offer` adds what a worker does around it on a captured port (the
//! tap's count, the take); ports without a capture pay neither.
//!
//! Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not the wall
//! clock: the project's 2-vCPU machine is shared, and a bench preempted by
//! a build would otherwise report the build's time as the filter's.

use std::hint::black_box;
use std::sync::Arc;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine::cbpf::{compile::compile, Program};
use engine::context::capture::{offer, Tap};

const EXPR: &str = "tcp port 80 and host 198.18.1.2";

/// Ethernet + IPv4 (198.18.1.2 → 198.19.1.2) + a TCP or UDP header to `dport`, 60 bytes of payload.
fn frame(proto: u8, dport: u16) -> Vec<u8> {
    let l4 = if proto == 6 { 20 } else { 8 };
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[
        0x45,
        0,
        0,
        (20 + l4 + 60) as u8,
        0,
        1,
        0x40,
        0,
        64,
        proto,
        0,
        0,
        198,
        18,
        1,
        2,
        198,
        19,
        1,
        2,
    ]);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&[0, 68, 0, 0]);
    }
    f.resize(f.len() + 60, 0xab);
    f
}

/// The calling thread's CPU time, ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Criterion measuring the thread's CPU time, in ns.
struct CpuTime;

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanos
    }
}

/// Values in ns, throughputs in elements per second of CPU time.
struct Nanos;

impl ValueFormatter for Nanos {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "ns (cpu)"
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
        };
        for v in values {
            *v = n * 1e9 / *v;
        }
        "/s"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn bench(c: &mut Criterion<CpuTime>) {
    let insns = compile(EXPR).expect("libpcap compiles it");
    let p = Program::new(&insns).expect("checked");
    println!("capture_filter: `{EXPR}` is {} instructions", p.len());
    let frames = [
        ("nomatch_udp", frame(17, 80)),
        ("nomatch_tcp443", frame(6, 443)),
        ("match_tcp80", frame(6, 80)),
    ];
    assert!(!p.matches(&frames[0].1) && !p.matches(&frames[1].1) && p.matches(&frames[2].1));
    let mut g = c.benchmark_group("capture_filter");
    g.throughput(Throughput::Elements(1));
    for (name, f) in &frames {
        g.bench_function(format!("run/{name}"), |b| b.iter(|| p.run(black_box(f))));
    }
    // A tap that never runs out, as on a port under `ctl capture --count 4294967295`.
    let taps = vec![Arc::new(Tap::new(Some(p.clone()), u32::MAX))];
    for (name, f) in &frames {
        g.bench_function(format!("offer/{name}"), |b| {
            b.iter(|| offer(black_box(&taps), black_box(f)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime).sample_size(30).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
