//! The traffic generator and sink of the system benchmark (`pktgen`).
//!
//! - [`stamp`]: the 16-byte payload stamp (magic, flow id, sequence, send
//!   time) and the cheap checksum patch applied per packet.
//! - [`spec`]: address/port ranges, frame sizes (fixed or IMIX) and the flow
//!   set they span.
//! - [`template`]: one pre-built frame per (flow, size), checksums right.
//! - [`pace`]: rate pacing by timestamps.
//! - [`hist`]: the log-linear latency histogram (fixed buckets, no allocation).
//! - [`track`]: per-flow counters, loss and reordering from the sequence.
//! - [`send`] and [`sink`]: the AF_XDP loops (engine::xsk + engine::steer).
//!
//! `bench/README.md` documents the payload format and the measured rates.
pub mod hist;
pub mod pace;
pub mod send;
pub mod sink;
pub mod spec;
pub mod stamp;
pub mod template;
pub mod track;

/// CLOCK_MONOTONIC in nanoseconds (vDSO: no system call). Generator and sink
/// run on one machine, so their clocks agree.
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Binds an AF_XDP socket, retrying for up to two seconds while the kernel
/// answers EBUSY: a socket closed just before (a previous run on the same
/// queue) is released asynchronously and holds the queue until then.
pub fn bind_retry(
    umem: &mut engine::xsk::Umem,
    iface: &str,
    queue: u32,
    cfg: &engine::xsk::XskConfig,
) -> Result<engine::xsk::XskPort, engine::xsk::XskError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match engine::xsk::XskPort::bind(umem, iface, queue, cfg) {
            Err(engine::xsk::XskError::Io(_, e))
                if e.raw_os_error() == Some(libc::EBUSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return r,
        }
    }
}
