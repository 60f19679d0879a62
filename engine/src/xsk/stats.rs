//! Port counters: the kernel's XDP_STATISTICS and our own per-port counts.
use std::fmt;
use std::io;
use std::os::fd::RawFd;

/// The kernel's per-socket drop counters (`struct xdp_statistics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpStatistics {
    /// Frames dropped for any reason other than the ones below.
    pub rx_dropped: u64,
    /// Fill-ring descriptors the kernel refused (outside the UMEM).
    pub rx_invalid_descs: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub rx_fill_ring_empty_descs: u64,
    /// TX descriptors the kernel refused.
    pub tx_invalid_descs: u64,
    /// Times the kernel found the TX ring empty when woken.
    pub tx_ring_empty_descs: u64,
}

impl XdpStatistics {
    /// Reads XDP_STATISTICS from an AF_XDP socket.
    pub fn read(fd: RawFd) -> io::Result<XdpStatistics> {
        let mut s = libc::xdp_statistics {
            rx_dropped: 0,
            rx_invalid_descs: 0,
            tx_invalid_descs: 0,
            rx_ring_full: 0,
            rx_fill_ring_empty_descs: 0,
            tx_ring_empty_descs: 0,
        };
        let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: we pass a writable xdp_statistics and its size; the kernel writes at
        // most `len` bytes and updates `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                &mut s as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(XdpStatistics {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }

    /// Name and value of each counter, in a stable order.
    pub fn fields(&self) -> [(&'static str, u64); 6] {
        [
            ("rx_dropped", self.rx_dropped),
            ("rx_invalid_descs", self.rx_invalid_descs),
            ("rx_ring_full", self.rx_ring_full),
            ("rx_fill_ring_empty_descs", self.rx_fill_ring_empty_descs),
            ("tx_invalid_descs", self.tx_invalid_descs),
            ("tx_ring_empty_descs", self.tx_ring_empty_descs),
        ]
    }
}

impl fmt::Display for XdpStatistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, v)) in self.fields().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}={v}")?;
        }
        Ok(())
    }
}

/// Counters of one port: ours, plus the kernel's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames handed to the TX ring.
    pub tx_packets: u64,
    /// Bytes handed to the TX ring.
    pub tx_bytes: u64,
    /// Frames the TX ring had no room for (the caller kept them).
    pub tx_ring_full: u64,
    /// Descriptors `send` refused (outside the UMEM, or a frame not held);
    /// each ends its `send`, and stays with the caller.
    pub tx_refused: u64,
    /// Frames put on the fill ring.
    pub filled: u64,
    /// TX completions reclaimed.
    pub completed: u64,
    /// Wakeup system calls for RX (fill ring) and TX.
    pub rx_wakeups: u64,
    /// TX kicks (sendto).
    pub tx_wakeups: u64,
    /// The kernel's counters.
    pub xdp: XdpStatistics,
}

impl fmt::Display for PortStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rx={} ({} B) tx={} ({} B) tx_ring_full={} tx_refused={} filled={} completed={} \
             rx_wakeups={} tx_wakeups={} {}",
            self.rx_packets,
            self.rx_bytes,
            self.tx_packets,
            self.tx_bytes,
            self.tx_ring_full,
            self.tx_refused,
            self.filled,
            self.completed,
            self.rx_wakeups,
            self.tx_wakeups,
            self.xdp
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_every_counter() {
        let s = XdpStatistics {
            rx_dropped: 1,
            rx_ring_full: 2,
            tx_ring_empty_descs: 3,
            ..Default::default()
        };
        assert_eq!(
            s.to_string(),
            "rx_dropped=1 rx_invalid_descs=0 rx_ring_full=2 rx_fill_ring_empty_descs=0 \
             tx_invalid_descs=0 tx_ring_empty_descs=3"
        );
    }

    #[test]
    fn read_on_a_non_xdp_fd_fails() {
        assert!(XdpStatistics::read(0).is_err() || XdpStatistics::read(-1).is_err());
        assert!(XdpStatistics::read(-1).is_err());
    }
}
