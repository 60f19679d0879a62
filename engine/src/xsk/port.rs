//! The interface the workers drive: [`Port`], implemented by the AF_XDP
//! socket ([`super::XskPort`]) and by the in-memory port ([`super::MemPort`]).
//!
//! A worker owns one [`Umem`] and several ports that share it, and runs, per
//! loop:
//!
//! ```text
//! for port in ports: n = port.recv(&mut umem, &mut descs[..BURST])      // Rx -> Held
//! process the batch; read/write bytes with umem.data()/data_mut()
//! group by egress port; out.send(&mut umem, &group)                     // Held -> Tx
//!     (frames `send` did not take stay with the worker: retry or umem.free())
//! drops: umem.free(desc)                                                // Held -> Free
//! for port in ports: port.reclaim(&mut umem, BURST)                     // Tx -> Free
//!                    port.refill(&mut umem, BURST)                      // Free -> Rx
//!                    port.wake()       (system calls only if the kernel asked)
//! ```
//!
//! Descriptors are plain [`Desc`] values naming UMEM offsets, so a frame
//! received on one port is sent on another by passing its descriptor: no
//! copy. Every call moves a whole batch with one ring-index load and store;
//! nothing allocates, and no call makes a system call per packet.
use std::io;
use std::time::Duration;

use super::ring::{Desc, Producer};
use super::stats::PortStats;
use super::umem::{FrameState, Umem};

/// Entries on a port's four rings: frames given to the kernel and not yet
/// taken (fill, TX) or returned by it and not yet taken back (RX,
/// completion). Rings a port shares with another socket of its queue count 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingLevels {
    /// Fill ring: addresses the kernel has not consumed yet.
    pub fill: u32,
    /// RX ring: received frames not yet taken by `recv`.
    pub rx: u32,
    /// TX ring: descriptors the kernel has not consumed yet.
    pub tx: u32,
    /// Completion ring: completed frames not yet reclaimed.
    pub comp: u32,
}

impl std::fmt::Display for RingLevels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rings fill={} rx={} tx={} comp={}",
            self.fill, self.rx, self.tx, self.comp
        )
    }
}

/// The largest burst a worker moves at once.
pub const BURST: usize = 64;

/// A network port that receives into and transmits from a shared [`Umem`].
///
/// Every method that moves frames takes the worker's `Umem` so that it can
/// record each move in the frame ledger; a port must be driven with the
/// UMEM it was created on (checked: it panics otherwise).
pub trait Port {
    /// A short name for logs (`veth0/q0`, `mem:a`).
    fn name(&self) -> &str;

    /// Receives up to `descs.len()` frames into `descs`; returns how many.
    /// The frames now belong to the caller (Rx -> Held).
    fn recv(&mut self, umem: &mut Umem, descs: &mut [Desc]) -> usize;

    /// Queues frames for transmission, in order; returns how many it took:
    /// a prefix of `descs`, ending where the TX ring is full or at the first
    /// descriptor it refuses (not inside one frame of the UMEM, or a frame
    /// the caller does not hold; counted in [`PortStats::tx_refused`]). The
    /// rest, the refused one included, stay with the caller (to retry or
    /// free). Taken frames belong to the kernel until completed
    /// (Held -> Tx). The descriptors may come from any port of the same
    /// UMEM. Kicks the kernel if it asked to be woken.
    fn send(&mut self, umem: &mut Umem, descs: &[Desc]) -> usize;

    /// Moves up to `max` free frames into the fill ring (Free -> Rx);
    /// returns how many. A port whose fill ring is shared with another
    /// socket of the same queue returns 0: the other one fills for both.
    fn refill(&mut self, umem: &mut Umem, max: usize) -> usize;

    /// Returns up to `max` completed transmissions to the free list
    /// (Tx -> Free); returns how many.
    fn reclaim(&mut self, umem: &mut Umem, max: usize) -> usize;

    /// Makes the wakeup system calls the kernel asked for (need_wakeup on
    /// the fill ring; TX descriptors still waiting). Returns how many calls
    /// it made. Cheap when there is nothing to do.
    fn wake(&mut self) -> usize;

    /// Blocks until frames are ready to receive or `timeout` passes; for an
    /// idle worker, never on the hot path. Returns whether frames are ready.
    fn wait_rx(&mut self, timeout: Duration) -> io::Result<bool>;

    /// Descriptors waiting on the TX ring for the kernel.
    fn tx_pending(&self) -> u32;

    /// How many entries sit on each ring right now (for the frame census
    /// and for operators; not for the hot path).
    fn ring_levels(&self) -> RingLevels;

    /// The port's counters (the AF_XDP port reads XDP_STATISTICS: a system
    /// call, so call it from the control path).
    fn stats(&self) -> PortStats;

    /// The descriptor an idle worker polls for this port, if it has one
    /// (the in-memory port has none). See [`wait_any`].
    fn poll_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// The worker side of [`Port::send`], shared by both ports: puts the longest
/// prefix of `descs` that fits on `tx` and that it accepts on the ring,
/// moving each frame Held -> Tx in the ledger before its descriptor goes on
/// the ring (so only frames the worker gave up reach the kernel). Returns
/// how many it took, and counts them, the refused descriptor that ended the
/// prefix, and those the ring had no room for.
pub(crate) fn queue_tx(
    umem: &mut Umem,
    tx: &mut Producer<Desc>,
    descs: &[Desc],
    stats: &mut PortStats,
) -> usize {
    let room = tx.reserve(descs.len().min(u32::MAX as usize) as u32) as usize;
    let mut taken = 0;
    let mut bytes = 0u64;
    for d in &descs[..room] {
        // A descriptor the kernel would refuse is never completed, and a frame the
        // caller does not hold is not its to give: keep both off the ring (and out
        // of the ledger's Tx state), and stop, so that what we return is exactly
        // what the ring took and the caller keeps the rest.
        if !umem.desc_ok(d) || !umem.moved(d.addr, FrameState::Held, FrameState::Tx) {
            stats.tx_refused += 1;
            break;
        }
        tx.write(taken as u32, *d);
        taken += 1;
        bytes += u64::from(d.len);
    }
    tx.submit(taken as u32);
    stats.tx_packets += taken as u64;
    stats.tx_bytes += bytes;
    stats.tx_ring_full += (descs.len() - room) as u64;
    taken
}

/// Blocks until one of `fds` is readable or `timeout` passes: an idle worker
/// with several ports sleeps here. Returns whether any is readable. Not for
/// the hot path (it is a system call).
pub fn wait_any(fds: &[std::os::fd::RawFd], timeout: Duration) -> io::Result<bool> {
    const MAX: usize = 64;
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX];
    let n = fds.len().min(MAX);
    for (p, &fd) in pfds.iter_mut().zip(&fds[..n]) {
        *p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
    }
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    if n == 0 {
        std::thread::sleep(timeout);
        return Ok(false);
    }
    // SAFETY: `pfds[..n]` are initialised pollfds in a live array; poll writes
    // only their `revents`.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
        return Ok(false);
    }
    Ok(rc > 0)
}

/// An eventfd another thread writes to wake a worker asleep in
/// [`wait_any`] (NAT handoff between workers). `wake` and `drain` are system
/// calls: callers use them only when the worker sleeps.
#[derive(Debug)]
pub struct Waker(std::os::fd::OwnedFd);

impl Waker {
    pub fn new() -> io::Result<Waker> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new
        // descriptor that we own from here on.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(Waker(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.0)
    }

    /// Makes the eventfd readable (adds 1 to its counter).
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own descriptor.
        let _ = unsafe { libc::write(self.fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the counter (non-blocking: nothing to read is fine).
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from our own descriptor.
        let _ = unsafe { libc::read(self.fd(), (&mut v as *mut u64).cast(), 8) };
    }
}
