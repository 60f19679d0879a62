//! The generator loop: AF_XDP TX from templates.
//!
//! Per loop: reclaim completed frames, ask the pacer how many packets are
//! due (at most one burst of [`BURST`]), take that many free frames, copy
//! each packet's template in, stamp it (sequence, one clock read per
//! burst), and queue the burst on the TX ring; frames the ring did not take
//! stay pending and go first next time, so sequences never skip. Nothing
//! allocates in the loop; the system calls are the TX kicks copy mode needs
//! (the kernel sends at most 32 frames per kick).
use std::time::Duration;

use engine::xsk::{BindMode, Desc, Port, Umem, UmemConfig, XskConfig, BURST};

use super::now_ns;
use super::pace::Pacer;
use super::spec::{TrafficSpec, FCS};
use super::template::Templates;

/// What to send, where, how long.
#[derive(Clone, Debug)]
pub struct SendConfig {
    /// Interface (in the caller's network namespace).
    pub iface: String,
    /// Queue.
    pub queue: u32,
    /// Traffic.
    pub spec: TrafficSpec,
    /// Packets per second; None: as fast as possible.
    pub rate: Option<f64>,
    /// Stop after this long...
    pub duration: Option<Duration>,
    /// ...or after this many packets (whichever comes first).
    pub count: Option<u64>,
    /// Send UDP over IPv4 without checksum.
    pub udp4_no_checksum: bool,
    /// UMEM frames (2 KiB each).
    pub frames: u32,
    /// Paced: packets leave in bursts of this many (1 = as soon as each is due).
    pub burst: usize,
}

/// What was sent.
#[derive(Clone, Debug, Default)]
pub struct SendReport {
    /// Packets handed to the kernel and completed.
    pub packets: u64,
    /// Bytes, counting 4 bytes of FCS per frame.
    pub bytes: u64,
    /// From the first packet to the last completion, seconds.
    pub elapsed_s: f64,
    /// Packets per flow.
    pub per_flow: Vec<u64>,
    /// Times the TX ring was full.
    pub tx_ring_full: u64,
    /// TX kicks (system calls).
    pub tx_wakeups: u64,
}

impl SendReport {
    /// Achieved packet rate.
    pub fn pps(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.packets as f64 / self.elapsed_s
        } else {
            0.0
        }
    }
}

/// Runs the generator until the duration or count is reached.
pub fn run(cfg: &SendConfig) -> Result<SendReport, Box<dyn std::error::Error>> {
    let templates = Templates::build(&cfg.spec, cfg.udp4_no_checksum)?;
    let nflows = cfg.spec.flow_count();
    let mut umem = Umem::new(UmemConfig {
        frame_size: 2048,
        frame_count: cfg.frames,
        huge_pages: true,
        headroom: 0,
    })?;
    let ring = cfg.frames.next_power_of_two().min(4096);
    let xcfg = XskConfig {
        rx_size: 64,
        tx_size: ring,
        fill_size: 64,
        comp_size: ring,
        mode: BindMode::Auto,
        need_wakeup: true,
    };
    let mut port = super::bind_retry(&mut umem, &cfg.iface, cfg.queue, &xcfg)?;

    let mut seq = vec![0u32; nflows];
    let mut per_flow = vec![0u64; nflows];
    let mut descs = [Desc::default(); BURST];
    let mut pending = [Desc::default(); BURST];
    let mut npend = 0usize;
    let mut k: u64 = 0; // packets built
    let mut bytes: u64 = 0;
    let limit = cfg.count.unwrap_or(u64::MAX);
    let start = now_ns();
    let end = cfg
        .duration
        .map_or(u64::MAX, |d| start + d.as_nanos() as u64);
    let mut pacer = Pacer::new(start, cfg.rate).with_burst(cfg.burst);
    let mut size_k = 0u64; // per-round index for the size pattern

    loop {
        port.reclaim(&mut umem, ring as usize);
        if npend > 0 {
            let n = port.send(&mut umem, &pending[..npend]);
            pending.copy_within(n..npend, 0);
            npend -= n;
            if npend > 0 {
                port.wake();
                continue;
            }
        }
        let now = now_ns();
        if now >= end || k >= limit {
            break;
        }
        let due = pacer
            .due(now, BURST)
            .min((limit - k).min(BURST as u64) as usize);
        if due == 0 {
            port.wake();
            let w = pacer.wait_ns(now);
            // Low rates: sleep between bursts (never per packet at high rates).
            // Otherwise yield: on veth the receive path (the DUT) runs in softirq on
            // this CPU, and a spinning generator would delay ksoftirqd by a tick.
            if w > 200_000 {
                std::thread::sleep(Duration::from_nanos(w - 100_000));
            } else if w > 5_000 {
                std::thread::yield_now();
            }
            continue;
        }
        let m = umem.alloc_burst(&mut descs[..due]);
        if m == 0 {
            port.wake();
            continue;
        }
        for d in &mut descs[..m] {
            let flow = (k % nflows as u64) as usize;
            if flow == 0 && k > 0 {
                size_k += 1;
            }
            let si = cfg.spec.size.pick(size_k);
            let Some(t) = templates.get(flow, si) else {
                continue;
            };
            let buf = umem.buf_mut(d);
            let len = t.bytes.len();
            if let Some(dst) = buf.get_mut(..len) {
                dst.copy_from_slice(&t.bytes);
                t.stamp_into(dst, seq[flow], now);
            }
            d.len = len as u32;
            seq[flow] = seq[flow].wrapping_add(1);
            per_flow[flow] += 1;
            bytes += (len + FCS) as u64;
            k += 1;
        }
        pacer.sent(m);
        let n = port.send(&mut umem, &descs[..m]);
        if n < m {
            pending[..m - n].copy_from_slice(&descs[n..m]);
            npend = m - n;
        }
    }
    // Drain: everything queued completes (or the kernel gave up on it).
    let drain_end = now_ns() + 2_000_000_000;
    while (umem.counts().tx > 0 || npend > 0) && now_ns() < drain_end {
        if npend > 0 {
            let n = port.send(&mut umem, &pending[..npend]);
            pending.copy_within(n..npend, 0);
            npend -= n;
        }
        port.reclaim(&mut umem, ring as usize);
        port.wake();
    }
    let elapsed_s = (now_ns() - start) as f64 * 1e-9;
    let stats = port.stats();
    Ok(SendReport {
        packets: stats.completed,
        bytes,
        elapsed_s,
        per_flow,
        tx_ring_full: stats.tx_ring_full,
        tx_wakeups: stats.tx_wakeups,
    })
}
