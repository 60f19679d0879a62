//! The sink loop: AF_XDP RX of every frame of an interface queue.
//!
//! The steering program (engine::steer) redirects every frame of a queue
//! that has a socket to it, unless a pass or drop rule matches; the sink
//! passes ARP and IPv6 link-local multicast (neighbour solicitations) to
//! the kernel, so the namespace's kernel answers neighbour resolution for
//! its addresses, and takes every other frame of the queue (frames without
//! a pktgen stamp count as foreign). `capture_all` takes ARP/ND too. Per burst: one clock read, then per
//! frame the stamp lookup, the per-flow counters and the latency histogram:
//! no allocation, no system call per packet.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::steer::{AttachMode, Steering};
use engine::xsk::{
    socket::ifindex, BindMode, Desc, Port, Umem, UmemConfig, XdpStatistics, XskConfig, BURST,
};

use super::hist::Histogram;
use super::now_ns;
use super::spec::{FCS, MAX_FLOWS};
use super::stamp;
use super::track::FlowStats;

/// Where and how long to listen.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// Interface.
    pub iface: String,
    /// Queue.
    pub queue: u32,
    /// Stop after this long.
    pub duration: Duration,
    /// Stop once this many pktgen frames arrived.
    pub expect: Option<u64>,
    /// Stop after this long without frames, once frames have arrived.
    pub idle: Option<Duration>,
    /// UMEM frames (2 KiB each).
    pub frames: u32,
    /// Take every frame, ARP and IPv6 multicast too. Off (the default):
    /// ARP and ff02::/16 (neighbour solicitations) pass to the kernel of the
    /// sink's namespace, which answers neighbour resolution for the sink's
    /// addresses, so a router in front of it needs no static neighbour.
    pub capture_all: bool,
    /// Set once the socket and the steering program are in place (for
    /// callers that start the generator from the same process).
    pub ready: Option<Arc<AtomicBool>>,
}

/// What arrived.
#[derive(Clone, Debug)]
pub struct SinkReport {
    /// pktgen frames.
    pub packets: u64,
    /// Their bytes, counting 4 bytes of FCS per frame.
    pub bytes: u64,
    /// Frames without a pktgen stamp.
    pub foreign: u64,
    /// First to last pktgen frame, seconds.
    pub span_s: f64,
    /// Per flow (index = flow id), all [`MAX_FLOWS`] entries.
    pub flows: Vec<FlowStats>,
    /// One-way latency, send stamp to receive burst.
    pub latency: Histogram,
    /// pktgen frames whose IPv4 header checksum is wrong.
    pub bad_ip_checksum: u64,
    /// Frames stamped in the future (clock trouble), not in the histogram.
    pub negative_latency: u64,
    /// The kernel's XDP_STATISTICS for the socket.
    pub xdp: XdpStatistics,
    /// How the steering program is attached.
    pub xdp_mode: String,
}

impl SinkReport {
    /// Sum over flows: (lost, reordered, duplicates).
    pub fn totals(&self) -> (u64, u64, u64) {
        self.flows.iter().fold((0, 0, 0), |(l, r, d), f| {
            (l + f.lost(), r + f.reordered, d + f.duplicates)
        })
    }

    /// pktgen frames per second over the span.
    pub fn pps(&self) -> f64 {
        if self.span_s > 0.0 {
            self.packets as f64 / self.span_s
        } else {
            0.0
        }
    }
}

/// Runs the sink; prints `ready` to stderr once frames can arrive.
pub fn run(cfg: &SinkConfig) -> Result<SinkReport, Box<dyn std::error::Error>> {
    let mut umem = Umem::new(UmemConfig {
        frame_size: 2048,
        frame_count: cfg.frames,
        huge_pages: true,
        headroom: 0,
    })?;
    let ring = (cfg.frames / 2).next_power_of_two().min(8192);
    let xcfg = XskConfig {
        rx_size: ring,
        tx_size: 64,
        fill_size: ring,
        comp_size: 64,
        mode: BindMode::Auto,
        need_wakeup: true,
    };
    let mut port = super::bind_retry(&mut umem, &cfg.iface, cfg.queue, &xcfg)?;
    let mut steer = Steering::load()?;
    steer.set_queue_sockets(cfg.queue, &[port.raw_fd()])?;
    if !cfg.capture_all {
        steer.pass_ethertype(0x0806, true)?;
        steer.pass_dst_prefix("ff02::".parse::<std::net::IpAddr>()?, 16, true)?;
    }
    let mode = steer.attach(ifindex(&cfg.iface)?, AttachMode::Auto)?;
    port.refill(&mut umem, ring as usize);
    if let Some(r) = &cfg.ready {
        r.store(true, Ordering::Release);
    }
    eprintln!(
        "pktgen sink: ready on {}/q{} (XDP {mode}, {})",
        cfg.iface,
        cfg.queue,
        port.mode()
    );

    let mut flows = vec![FlowStats::default(); MAX_FLOWS];
    let mut hist = Histogram::new();
    let (mut packets, mut bytes, mut foreign, mut negative, mut bad_ip) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut first, mut last) = (0u64, 0u64);
    let mut descs = [Desc::default(); BURST];
    let start = now_ns();
    let end = start + cfg.duration.as_nanos() as u64;
    let idle = cfg.idle.map(|d| d.as_nanos() as u64);
    let expect = cfg.expect.unwrap_or(u64::MAX);
    loop {
        let n = port.recv(&mut umem, &mut descs);
        let now = now_ns();
        if n == 0 {
            port.refill(&mut umem, ring as usize);
            port.wake();
            if now >= end
                || packets >= expect
                || idle.is_some_and(|i| packets > 0 && now - last > i)
            {
                break;
            }
            let _ = port.wait_rx(Duration::from_millis(1));
            continue;
        }
        for d in &descs[..n] {
            let data = umem.data(d);
            match stamp::locate(data) {
                Some(seen) => {
                    if let Some(f) = flows.get_mut(seen.stamp.flow as usize) {
                        f.record(seen.stamp.seq, d.len + FCS as u32, seen.ttl);
                    }
                    packets += 1;
                    bad_ip += u64::from(!seen.ip_ok);
                    bytes += (d.len as usize + FCS) as u64;
                    if now >= seen.stamp.time_ns {
                        hist.record(now - seen.stamp.time_ns);
                    } else {
                        negative += 1;
                    }
                }
                None => foreign += 1,
            }
        }
        if first == 0 && packets > 0 {
            first = now;
        }
        if packets > 0 {
            last = now;
        }
        umem.free_burst(&descs[..n]);
        port.refill(&mut umem, ring as usize);
        port.wake();
        if packets >= expect {
            break;
        }
    }
    let xdp = port.xdp_statistics().unwrap_or_default();
    Ok(SinkReport {
        packets,
        bytes,
        foreign,
        span_s: last.saturating_sub(first) as f64 * 1e-9,
        flows,
        latency: hist,
        bad_ip_checksum: bad_ip,
        negative_latency: negative,
        xdp,
        xdp_mode: mode.to_string(),
    })
}
