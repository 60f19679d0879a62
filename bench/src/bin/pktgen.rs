//! pktgen: the AF_XDP traffic generator and sink of the system benchmark.
//!
//! ```text
//! pktgen send --iface IF --src-mac M --dst-mac M --src-ip A[-B] --dst-ip A[-B] \
//!             --sport P[-Q] --dport P[-Q] --proto udp|tcp --size 64..1518|imix \
//!             --rate PPS|max (--duration S | --count N) [--json]
//! pktgen sink --iface IF --duration S [--expect N] [--idle MS] [--capture-all] [--json]
//! ```
//! Payload format and figures: bench/README.md.
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use pktengine_bench::gen::send::{self, SendConfig, SendReport};
use pktengine_bench::gen::sink::{self, SinkConfig, SinkReport};
use pktengine_bench::gen::spec::{parse_mac, IpRange, PortRange, Proto, SizeSpec, TrafficSpec};
use serde_json::json;

#[derive(Parser)]
#[command(name = "pktgen", about = "AF_XDP traffic generator and sink")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send stamped frames.
    Send {
        #[arg(long)]
        iface: String,
        #[arg(long, default_value_t = 0)]
        queue: u32,
        #[arg(long, value_parser = parse_mac)]
        src_mac: [u8; 6],
        #[arg(long, value_parser = parse_mac)]
        dst_mac: [u8; 6],
        #[arg(long)]
        src_ip: IpRange,
        #[arg(long)]
        dst_ip: IpRange,
        #[arg(long, default_value = "1024")]
        sport: PortRange,
        #[arg(long, default_value = "9")]
        dport: PortRange,
        #[arg(long, default_value = "udp")]
        proto: Proto,
        /// Frame size counting the FCS (64..1518), or imix (7:4:1 of 64/576/1518).
        #[arg(long, default_value = "64")]
        size: SizeSpec,
        /// Packets per second, or max.
        #[arg(long, default_value = "max")]
        rate: String,
        /// Seconds to send.
        #[arg(long)]
        duration: Option<f64>,
        /// Packets to send.
        #[arg(long)]
        count: Option<u64>,
        /// Send UDP over IPv4 with checksum 0 (RFC 768 allows it; IPv6 always has one).
        #[arg(long)]
        no_udp_checksum: bool,
        /// UMEM frames of 2 KiB.
        #[arg(long, default_value_t = 8192)]
        frames: u32,
        /// With --rate: send in bursts of N packets (1-64), each when its last packet is due.
        #[arg(long, default_value_t = 1)]
        burst: usize,
        #[arg(long)]
        json: bool,
    },
    /// Count, check and time stamped frames.
    Sink {
        #[arg(long)]
        iface: String,
        #[arg(long, default_value_t = 0)]
        queue: u32,
        /// Seconds to listen at most.
        #[arg(long)]
        duration: f64,
        /// Stop once this many stamped frames arrived.
        #[arg(long)]
        expect: Option<u64>,
        /// Stop after this many milliseconds without frames (once some arrived).
        #[arg(long)]
        idle: Option<u64>,
        /// UMEM frames of 2 KiB.
        #[arg(long, default_value_t = 8192)]
        frames: u32,
        /// Take ARP and IPv6 neighbour discovery too (by default they pass to the
        /// namespace's kernel, which answers for the sink's addresses).
        #[arg(long)]
        capture_all: bool,
        #[arg(long)]
        json: bool,
    },
}

fn send_json(r: &SendReport) -> serde_json::Value {
    json!({
        "packets": r.packets,
        "bytes": r.bytes,
        "elapsed_s": r.elapsed_s,
        "pps": r.pps(),
        "gbps": if r.elapsed_s > 0.0 { r.bytes as f64 * 8.0 / r.elapsed_s / 1e9 } else { 0.0 },
        "tx_ring_full": r.tx_ring_full,
        "tx_wakeups": r.tx_wakeups,
        "per_flow": r.per_flow,
    })
}

fn sink_json(r: &SinkReport) -> serde_json::Value {
    let (lost, reordered, duplicates) = r.totals();
    let flows: Vec<serde_json::Value> = r
        .flows
        .iter()
        .enumerate()
        .filter(|(_, f)| f.packets > 0)
        .map(|(i, f)| {
            json!({"flow": i, "packets": f.packets, "bytes": f.bytes, "next_seq": f.next, "lost": f.lost(),
                   "reordered": f.reordered, "duplicates": f.duplicates, "ttl_min": f.ttl_min, "ttl_max": f.ttl_max})
        })
        .collect();
    let h = &r.latency;
    json!({
        "packets": r.packets,
        "bytes": r.bytes,
        "foreign": r.foreign,
        "span_s": r.span_s,
        "pps": r.pps(),
        "gbps": if r.span_s > 0.0 { r.bytes as f64 * 8.0 / r.span_s / 1e9 } else { 0.0 },
        "lost": lost,
        "reordered": reordered,
        "duplicates": duplicates,
        "latency_ns": {"count": h.count(), "min": h.min(), "mean": h.mean(), "p50": h.quantile(0.5),
                       "p99": h.quantile(0.99), "p999": h.quantile(0.999), "max": h.max(),
                       // The whole log-linear histogram (non-empty buckets: [low, high, count]), for CDFs.
                       "buckets": h.buckets()},
        "negative_latency": r.negative_latency,
        "bad_ip_checksum": r.bad_ip_checksum,
        "xdp_mode": r.xdp_mode,
        "xdp": {"rx_dropped": r.xdp.rx_dropped, "rx_ring_full": r.xdp.rx_ring_full,
                "rx_fill_ring_empty_descs": r.xdp.rx_fill_ring_empty_descs, "rx_invalid_descs": r.xdp.rx_invalid_descs},
        "flows": flows,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Send {
            iface,
            queue,
            src_mac,
            dst_mac,
            src_ip,
            dst_ip,
            sport,
            dport,
            proto,
            size,
            rate,
            duration,
            count,
            no_udp_checksum,
            frames,
            burst,
            json,
        } => (|| -> Result<(), Box<dyn std::error::Error>> {
            let rate = if rate == "max" {
                None
            } else {
                Some(
                    rate.parse::<f64>()
                        .map_err(|_| format!("rate {rate:?} (packets per second or max)"))?,
                )
            };
            if duration.is_none() && count.is_none() {
                return Err("give --duration or --count".into());
            }
            let spec = TrafficSpec {
                src_mac,
                dst_mac,
                src_ip,
                dst_ip,
                sport,
                dport,
                proto,
                size,
            };
            spec.validate()?;
            let cfg = SendConfig {
                iface,
                queue,
                spec,
                rate,
                duration: duration.map(Duration::from_secs_f64),
                count,
                udp4_no_checksum: no_udp_checksum,
                frames,
                burst,
            };
            let r = send::run(&cfg)?;
            if json {
                println!("{}", send_json(&r));
            } else {
                println!(
                    "sent {} packets, {} bytes in {:.3} s: {:.0} pps, {:.3} Gbit/s ({} flows, tx ring full {} times)",
                    r.packets,
                    r.bytes,
                    r.elapsed_s,
                    r.pps(),
                    r.bytes as f64 * 8.0 / r.elapsed_s.max(1e-9) / 1e9,
                    r.per_flow.len(),
                    r.tx_ring_full
                );
            }
            Ok(())
        })(),
        Cmd::Sink {
            iface,
            queue,
            duration,
            expect,
            idle,
            frames,
            capture_all,
            json,
        } => (|| -> Result<(), Box<dyn std::error::Error>> {
            let cfg = SinkConfig {
                iface,
                queue,
                duration: Duration::from_secs_f64(duration),
                expect,
                idle: idle.map(Duration::from_millis),
                frames,
                capture_all,
                ready: None,
            };
            let r = sink::run(&cfg)?;
            if json {
                println!("{}", sink_json(&r));
            } else {
                let (lost, reordered, dups) = r.totals();
                println!(
                    "received {} packets, {} bytes in {:.3} s ({:.0} pps), {} foreign, {} bad IPv4 header checksums; lost {lost}, reordered {reordered}, duplicates {dups}",
                    r.packets,
                    r.bytes,
                    r.span_s,
                    r.pps(),
                    r.foreign,
                    r.bad_ip_checksum
                );
                println!("latency {}", r.latency);
                println!("xdp {}", r.xdp);
            }
            Ok(())
        })(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pktgen: {e}");
            ExitCode::FAILURE
        }
    }
}
