//! An AF_XDP socket bound to one (interface, queue): [`XskPort`].
//!
//! The first socket of a [`Umem`] registers it (XDP_UMEM_REG) and owns a
//! fill and a completion ring. Later sockets share the UMEM
//! (XDP_SHARED_UMEM): on another interface or queue they get their own fill
//! and completion rings; on the same (interface, queue) the kernel makes
//! them share the first socket's, so only that one refills and reclaims.
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

use super::port::{queue_tx, Port, RingLevels};
use super::ring::{mapped_ring, Consumer, Desc, Producer, Slot};
use super::stats::{PortStats, XdpStatistics};
use super::umem::{Binding, FrameState, Umem};
use super::XskError;

/// Which bind mode to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindMode {
    /// Zero-copy if the driver can, else copy.
    Auto,
    /// Zero-copy or fail.
    ZeroCopy,
    /// Copy mode.
    Copy,
}

/// The mode a socket got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundMode {
    /// Frames are DMAed to and from the UMEM.
    ZeroCopy,
    /// The kernel copies frames between its buffers and the UMEM.
    Copy,
}

impl fmt::Display for BoundMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BoundMode::ZeroCopy => "zero-copy",
            BoundMode::Copy => "copy",
        })
    }
}

/// Ring sizes and bind options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XskConfig {
    /// RX ring slots (power of two).
    pub rx_size: u32,
    /// TX ring slots (power of two).
    pub tx_size: u32,
    /// Fill ring slots (power of two).
    pub fill_size: u32,
    /// Completion ring slots (power of two).
    pub comp_size: u32,
    /// Zero-copy, copy, or try both.
    pub mode: BindMode,
    /// XDP_USE_NEED_WAKEUP: make wakeup system calls only when the kernel asks.
    pub need_wakeup: bool,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            rx_size: 2048,
            tx_size: 2048,
            fill_size: 2048,
            comp_size: 2048,
            mode: BindMode::Auto,
            need_wakeup: true,
        }
    }
}

/// Index of a network interface, by name.
pub fn ifindex(name: &str) -> Result<u32, XskError> {
    let c = std::ffi::CString::new(name).map_err(|_| XskError::NoSuchInterface(name.into()))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(XskError::NoSuchInterface(name.into()));
    }
    Ok(idx)
}

/// An AF_XDP socket bound to one queue of one interface.
pub struct XskPort {
    name: String,
    fd: Arc<OwnedFd>,
    ifindex: u32,
    queue: u32,
    umem_id: u64,
    mode: BoundMode,
    need_wakeup: bool,
    rx: Consumer<Desc>,
    tx: Producer<Desc>,
    fill: Option<Producer<u64>>,
    comp: Option<Consumer<u64>>,
    stats: PortStats,
}

impl fmt::Debug for XskPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XskPort")
            .field("name", &self.name)
            .field("fd", &self.fd.as_raw_fd())
            .field("mode", &self.mode)
            .field("own_fill", &self.fill.is_some())
            .finish()
    }
}

fn io(what: &'static str) -> impl Fn(io::Error) -> XskError {
    move |e| XskError::Io(what, e)
}

fn sockopt_u32(fd: RawFd, opt: libc::c_int, value: u32) -> io::Result<()> {
    // SAFETY: we pass a u32 and its size, as the ring-size options expect.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            &value as *const u32 as *const libc::c_void,
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mmap_offsets(fd: RawFd) -> io::Result<libc::xdp_mmap_offsets> {
    let zero = libc::xdp_ring_offset {
        producer: 0,
        consumer: 0,
        desc: 0,
        flags: 0,
    };
    let mut off = libc::xdp_mmap_offsets {
        rx: zero,
        tx: zero,
        fr: zero,
        cr: zero,
    };
    let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
    // SAFETY: we pass a writable xdp_mmap_offsets and its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_MMAP_OFFSETS,
            &mut off as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<libc::xdp_mmap_offsets>() {
        // Kernels before 5.4 have no flags field: not supported.
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "old xdp_mmap_offsets layout",
        ));
    }
    Ok(off)
}

/// Maps one ring of `fd` and wraps it.
fn map_ring<T: Slot>(
    fd: RawFd,
    pgoff: u64,
    off: &libc::xdp_ring_offset,
    size: u32,
) -> io::Result<super::ring::RingPtrsHandle<T>> {
    let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
    let map: MmapRaw = MmapOptions::new()
        .offset(pgoff)
        .len(len)
        .populate()
        .map_raw(fd)?;
    let base = map.as_mut_ptr();
    // SAFETY: `base` is the start of a mapping of `len` bytes of this ring, laid out
    // as the kernel's offsets say; the Arc keeps the mapping alive with the ring end.
    Ok(unsafe { mapped_ring::<T>(base, off, size, Arc::new(map)) })
}

/// How a bind waits for a queue that a previous socket still holds.
///
/// Closing an AF_XDP socket unbinds it at once, but the kernel releases its
/// buffer pool from the queue later, in a work item that needs the RTNL
/// lock (`xp_release_deferred`); until then bind(2) on that queue gives
/// EBUSY. An engine started right after the previous one exited (a test's
/// restart loop, `systemctl restart`) meets it now and then, on a busy host
/// for tens of milliseconds. So EBUSY is retried with a growing pause, for a
/// bounded time; any other error is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyRetry {
    /// The first pause; each next one doubles, up to `max_pause`.
    pub first_pause: Duration,
    pub max_pause: Duration,
    /// No new attempt starts after this long.
    pub deadline: Duration,
}

impl Default for BusyRetry {
    fn default() -> Self {
        BusyRetry {
            first_pause: Duration::from_millis(2),
            max_pause: Duration::from_millis(100),
            deadline: Duration::from_secs(2),
        }
    }
}

impl BusyRetry {
    /// The pause before attempt `attempt + 1` (0: after the first EBUSY), with
    /// `elapsed` spent so far; None once the deadline is reached. The pause is
    /// cut so the last attempt comes at the deadline, not after it.
    pub fn pause(&self, attempt: u32, elapsed: Duration) -> Option<Duration> {
        let left = self
            .deadline
            .checked_sub(elapsed)
            .filter(|d| !d.is_zero())?;
        let grown = self
            .first_pause
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX));
        Some(grown.min(self.max_pause).min(left))
    }
}

impl XskPort {
    /// Creates an AF_XDP socket on `ifname` queue `queue` using `umem`
    /// (registering it if no socket uses it yet), fills nothing yet.
    ///
    /// The socket lives in the network namespace of the calling thread.
    pub fn bind(
        umem: &mut Umem,
        ifname: &str,
        queue: u32,
        cfg: &XskConfig,
    ) -> Result<XskPort, XskError> {
        let idx = ifindex(ifname)?;
        Self::bind_ifindex(umem, idx, &format!("{ifname}/q{queue}"), queue, cfg)
    }

    /// [`XskPort::bind`] by interface index.
    pub fn bind_ifindex(
        umem: &mut Umem,
        ifindex: u32,
        name: &str,
        queue: u32,
        cfg: &XskConfig,
    ) -> Result<XskPort, XskError> {
        for (what, s) in [
            ("rx", cfg.rx_size),
            ("tx", cfg.tx_size),
            ("fill", cfg.fill_size),
            ("completion", cfg.comp_size),
        ] {
            if !s.is_power_of_two() {
                return Err(XskError::Config(format!(
                    "{what} ring size {s} is not a power of two"
                )));
            }
        }
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(XskError::Io(
                "creating an AF_XDP socket",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        let rawfd = fd.as_raw_fd();

        let shared = umem.share_with(ifindex, queue);
        let own_fill = match &shared {
            None => {
                umem.register(&fd)?;
                true
            }
            Some((_, same_queue)) => !same_queue,
        };
        if own_fill {
            sockopt_u32(rawfd, libc::XDP_UMEM_FILL_RING, cfg.fill_size)
                .map_err(io("XDP_UMEM_FILL_RING"))?;
            sockopt_u32(rawfd, libc::XDP_UMEM_COMPLETION_RING, cfg.comp_size)
                .map_err(io("XDP_UMEM_COMPLETION_RING"))?;
        }
        sockopt_u32(rawfd, libc::XDP_RX_RING, cfg.rx_size).map_err(io("XDP_RX_RING"))?;
        sockopt_u32(rawfd, libc::XDP_TX_RING, cfg.tx_size).map_err(io("XDP_TX_RING"))?;
        let off = mmap_offsets(rawfd).map_err(io("XDP_MMAP_OFFSETS"))?;

        let rx = map_ring::<Desc>(rawfd, libc::XDP_PGOFF_RX_RING as u64, &off.rx, cfg.rx_size)
            .map_err(io("mapping the RX ring"))?
            .consumer();
        let tx = map_ring::<Desc>(rawfd, libc::XDP_PGOFF_TX_RING as u64, &off.tx, cfg.tx_size)
            .map_err(io("mapping the TX ring"))?
            .producer();
        let (fill, comp) = if own_fill {
            let fill = map_ring::<u64>(
                rawfd,
                libc::XDP_UMEM_PGOFF_FILL_RING,
                &off.fr,
                cfg.fill_size,
            )
            .map_err(io("mapping the fill ring"))?
            .producer();
            let comp = map_ring::<u64>(
                rawfd,
                libc::XDP_UMEM_PGOFF_COMPLETION_RING,
                &off.cr,
                cfg.comp_size,
            )
            .map_err(io("mapping the completion ring"))?
            .consumer();
            (Some(fill), Some(comp))
        } else {
            (None, None)
        };

        let bind_once = |flags: u16| -> io::Result<()> {
            let sa = libc::sockaddr_xdp {
                sxdp_family: libc::AF_XDP as u16,
                sxdp_flags: flags,
                sxdp_ifindex: ifindex,
                sxdp_queue_id: queue,
                sxdp_shared_umem_fd: shared.as_ref().map_or(0, |(f, _)| f.as_raw_fd() as u32),
            };
            // SAFETY: `sa` is a valid sockaddr_xdp and we pass its size.
            let rc = unsafe {
                libc::bind(
                    rawfd,
                    &sa as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        // EBUSY: the queue's previous socket is not released yet (see BusyRetry).
        let retry = BusyRetry::default();
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut bind = |flags: u16| -> io::Result<()> {
            loop {
                match bind_once(flags) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        let Some(p) = retry.pause(attempt, started.elapsed()) else {
                            return Err(io::Error::new(
                                e.kind(),
                                format!(
                                    "{e}: {name} is still held by another AF_XDP socket after {:?}",
                                    started.elapsed()
                                ),
                            ));
                        };
                        attempt += 1;
                        std::thread::sleep(p);
                    }
                    r => {
                        if r.is_ok() && attempt > 0 {
                            tracing::info!(
                                "{name}: waited {:?} ({attempt} retries) for the queue to be released by a previous AF_XDP socket",
                                started.elapsed()
                            );
                        }
                        return r;
                    }
                }
            }
        };
        if shared.is_some() {
            // The kernel refuses mode flags on a shared socket: it inherits the
            // first socket's copy/zero-copy mode and need_wakeup setting.
            bind(libc::XDP_SHARED_UMEM).map_err(io("binding a shared-UMEM AF_XDP socket"))?;
        } else {
            let wake = if cfg.need_wakeup {
                libc::XDP_USE_NEED_WAKEUP
            } else {
                0
            };
            match cfg.mode {
                BindMode::ZeroCopy => {
                    bind(libc::XDP_ZEROCOPY | wake).map_err(io("binding zero-copy"))?
                }
                BindMode::Copy => {
                    bind(libc::XDP_COPY | wake).map_err(io("binding in copy mode"))?
                }
                BindMode::Auto => {
                    if bind(libc::XDP_ZEROCOPY | wake).is_err() {
                        bind(libc::XDP_COPY | wake).map_err(io("binding in copy mode"))?;
                    }
                }
            }
        }
        let mode = bound_mode(rawfd).map_err(io("XDP_OPTIONS"))?;
        umem.bindings.push(Binding {
            ifindex,
            queue,
            fd: Arc::downgrade(&fd),
        });
        // A shared socket inherits need_wakeup from the first one; TX kicks are
        // made whenever the flag is set, so assuming it on is safe either way.
        let need_wakeup = if shared.is_some() {
            true
        } else {
            cfg.need_wakeup
        };
        Ok(XskPort {
            name: name.to_string(),
            fd,
            ifindex,
            queue,
            umem_id: umem.id(),
            mode,
            need_wakeup,
            rx,
            tx,
            fill,
            comp,
            stats: PortStats::default(),
        })
    }

    /// The socket descriptor (for the XSKMAP).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Queue id.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The mode the kernel granted.
    pub fn mode(&self) -> BoundMode {
        self.mode
    }

    /// Whether this socket has its own fill and completion rings.
    pub fn owns_fill_ring(&self) -> bool {
        self.fill.is_some()
    }

    /// Reads XDP_STATISTICS.
    pub fn xdp_statistics(&self) -> io::Result<XdpStatistics> {
        XdpStatistics::read(self.raw_fd())
    }

    #[inline]
    fn check_umem(&self, umem: &Umem) {
        assert_eq!(
            umem.id(),
            self.umem_id,
            "{} driven with a UMEM it was not bound on",
            self.name
        );
    }

    /// Kicks TX (sendto). In copy mode the kernel sends at most 32 frames per
    /// call and answers EAGAIN when more wait, so we call again while it
    /// makes progress.
    fn kick_tx(&mut self) -> usize {
        let mut calls = 0;
        let mut pending = self.tx.pending();
        while pending > 0 && (!self.need_wakeup || self.tx.needs_wakeup()) {
            // SAFETY: sendto with no buffer is the AF_XDP TX doorbell.
            let rc = unsafe {
                libc::sendto(
                    self.raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            calls += 1;
            self.stats.tx_wakeups += 1;
            let again = rc < 0
                && matches!(
                    io::Error::last_os_error().raw_os_error(),
                    Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS)
                );
            let now = self.tx.pending();
            // Stop when the kernel stalls (completion ring full, device busy): the
            // next `wake` or `send` tries again.
            if !again || now >= pending || calls > 64 {
                break;
            }
            pending = now;
        }
        calls
    }
}

fn bound_mode(fd: RawFd) -> io::Result<BoundMode> {
    let mut opts = libc::xdp_options { flags: 0 };
    let mut len = std::mem::size_of::<libc::xdp_options>() as libc::socklen_t;
    // SAFETY: we pass a writable xdp_options and its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_OPTIONS,
            &mut opts as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(if opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0 {
        BoundMode::ZeroCopy
    } else {
        BoundMode::Copy
    })
}

impl Port for XskPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn recv(&mut self, umem: &mut Umem, descs: &mut [Desc]) -> usize {
        self.check_umem(umem);
        let n = self.rx.peek(descs.len().min(u32::MAX as usize) as u32);
        let mut bytes = 0u64;
        for (i, slot) in descs.iter_mut().take(n as usize).enumerate() {
            let d = self.rx.read(i as u32);
            umem.moved(d.addr, FrameState::Rx, FrameState::Held);
            bytes += d.len as u64;
            *slot = d;
        }
        self.rx.release(n);
        self.stats.rx_packets += n as u64;
        self.stats.rx_bytes += bytes;
        n as usize
    }

    fn send(&mut self, umem: &mut Umem, descs: &[Desc]) -> usize {
        self.check_umem(umem);
        let taken = queue_tx(umem, &mut self.tx, descs, &mut self.stats);
        self.kick_tx();
        taken
    }

    fn refill(&mut self, umem: &mut Umem, max: usize) -> usize {
        self.check_umem(umem);
        let Some(fill) = self.fill.as_mut() else {
            return 0;
        };
        let want = max.min(umem.free_frames()).min(u32::MAX as usize) as u32;
        let n = fill.reserve(want);
        let got = umem.take_for_fill(n as usize, |i, addr| fill.write(i as u32, addr));
        fill.submit(got as u32);
        self.stats.filled += got as u64;
        got
    }

    fn reclaim(&mut self, umem: &mut Umem, max: usize) -> usize {
        self.check_umem(umem);
        let Some(comp) = self.comp.as_mut() else {
            return 0;
        };
        let n = comp.peek(max.min(u32::MAX as usize) as u32);
        for i in 0..n {
            umem.returned(comp.read(i), FrameState::Tx);
        }
        comp.release(n);
        self.stats.completed += n as u64;
        n as usize
    }

    fn wake(&mut self) -> usize {
        let mut calls = self.kick_tx();
        let fill_asks = self.fill.as_ref().is_some_and(|f| f.needs_wakeup());
        if self.need_wakeup && fill_asks {
            // SAFETY: recvfrom with no buffer is the AF_XDP RX doorbell.
            unsafe {
                libc::recvfrom(
                    self.raw_fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            self.stats.rx_wakeups += 1;
            calls += 1;
        }
        calls
    }

    fn wait_rx(&mut self, timeout: Duration) -> io::Result<bool> {
        if self.rx.available(1) > 0 {
            return Ok(true);
        }
        let mut pfd = libc::pollfd {
            fd: self.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(self.rx.available(1) > 0)
    }

    fn tx_pending(&self) -> u32 {
        self.tx.pending()
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.raw_fd())
    }

    fn ring_levels(&self) -> RingLevels {
        RingLevels {
            fill: self.fill.as_ref().map_or(0, |f| f.pending()),
            rx: self.rx.len(),
            tx: self.tx.pending(),
            comp: self.comp.as_ref().map_or(0, |c| c.len()),
        }
    }

    fn stats(&self) -> PortStats {
        let mut s = self.stats;
        s.xdp = self.xdp_statistics().unwrap_or_default();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xsk::umem::UmemConfig;

    #[test]
    fn busy_retry_grows_caps_and_ends_at_the_deadline() {
        let ms = Duration::from_millis;
        let r = BusyRetry::default();
        assert_eq!(r.pause(0, ms(0)), Some(ms(2)));
        assert_eq!(r.pause(1, ms(2)), Some(ms(4)));
        assert_eq!(r.pause(5, ms(100)), Some(ms(64)));
        assert_eq!(r.pause(6, ms(200)), Some(ms(100)), "capped");
        assert_eq!(r.pause(40, ms(500)), Some(ms(100)), "no overflow");
        assert_eq!(r.pause(9, ms(1950)), Some(ms(50)), "cut at the deadline");
        assert_eq!(r.pause(9, ms(2000)), None);
        assert_eq!(r.pause(0, ms(2500)), None);
        // Simulated: a queue that never frees is given up at the deadline, after
        // a few dozen attempts (not thousands).
        let (mut t, mut n) = (Duration::ZERO, 0);
        while let Some(p) = r.pause(n, t) {
            t += p;
            n += 1;
        }
        assert_eq!(t, r.deadline);
        assert!((20..40).contains(&n), "{n} attempts");
    }

    #[test]
    fn unknown_interface_is_named() {
        let mut u = Umem::new(UmemConfig {
            frame_count: 64,
            huge_pages: false,
            ..Default::default()
        })
        .unwrap();
        let e = XskPort::bind(&mut u, "nosuchif0", 0, &XskConfig::default()).unwrap_err();
        assert!(e.to_string().contains("nosuchif0"), "{e}");
    }

    #[test]
    fn ring_sizes_must_be_powers_of_two() {
        let mut u = Umem::new(UmemConfig {
            frame_count: 64,
            huge_pages: false,
            ..Default::default()
        })
        .unwrap();
        let cfg = XskConfig {
            rx_size: 1000,
            ..XskConfig::default()
        };
        let e = XskPort::bind(&mut u, "lo", 0, &cfg).unwrap_err();
        assert!(e.to_string().contains("power of two"), "{e}");
    }

    /// Without CAP_IPC_LOCK a UMEM beyond RLIMIT_MEMLOCK cannot be registered,
    /// and the error names the capability. Capabilities are per thread, so
    /// the test drops CAP_IPC_LOCK in a thread of its own.
    #[test]
    fn memlock_error_names_cap_ipc_lock() {
        // Creating the AF_XDP socket needs CAP_NET_RAW.
        if !crate::xsk::test_support::require_root(
            "xsk::socket::tests::memlock_error_names_cap_ipc_lock",
        ) {
            return;
        }
        let limit = memlock_limit_or_skip();
        let Some(limit) = limit else { return };
        let r = std::thread::spawn(move || {
            drop_cap_ipc_lock();
            assert!(!crate::xsk::umem::has_cap_ipc_lock());
            let frames = ((limit as usize + (8 << 20)) / 4096) as u32;
            let mut u = Umem::new(UmemConfig {
                frame_size: 4096,
                frame_count: frames,
                huge_pages: false,
                headroom: 0,
            })
            .unwrap();
            // Registration happens on the first bind, before the interface is used.
            XskPort::bind(&mut u, "lo", 0, &XskConfig::default()).map(|_| ())
        })
        .join()
        .unwrap();
        let e = r.expect_err("registration beyond RLIMIT_MEMLOCK without CAP_IPC_LOCK must fail");
        assert!(matches!(e, XskError::MemLock { .. }), "{e}");
        assert!(e.to_string().contains("CAP_IPC_LOCK"), "{e}");
    }

    fn memlock_limit_or_skip() -> Option<u64> {
        let l = crate::xsk::umem::memlock_limit();
        // Unlimited (or absurdly high) memlock: nothing to provoke.
        if l == libc::RLIM_INFINITY || l > (1 << 30) {
            eprintln!("RLIMIT_MEMLOCK unlimited: skipping");
            return None;
        }
        Some(l)
    }

    fn drop_cap_ipc_lock() {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let mut h = Header {
            version: 0x2008_0522,
            pid: 0,
        };
        let mut d = [Data::default(); 2];
        // SAFETY: capget with a v3 header and two data structs, as the ABI requires.
        let rc = unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) };
        assert_eq!(rc, 0, "capget: {}", io::Error::last_os_error());
        d[0].effective &= !(1 << 14);
        // SAFETY: capset on the calling thread with the structs just read.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()) };
        assert_eq!(rc, 0, "capset: {}", io::Error::last_os_error());
    }
}
