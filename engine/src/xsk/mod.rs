//! AF_XDP ports: UMEM, rings, sockets, and the in-memory port with the same
//! interface. With `steer`, the only home of `unsafe` in the engine.
//!
//! - [`umem`]: the frame area, the free list and the frame ledger.
//! - [`ring`]: the single-producer/single-consumer rings and their memory ordering.
//! - [`socket`]: [`XskPort`], an AF_XDP socket bound to one (interface, queue).
//! - [`mem_port`]: [`MemPort`], the same [`Port`] without a kernel.
//! - [`port`]: the [`Port`] trait the workers drive.
//! - [`stats`]: XDP_STATISTICS and the port counters.
//! - [`packet_socket`]: the AF_PACKET socket that copies the ARP/ND frames
//!   the kernel receives (`[routing] kernel_control`).
//!
//! `docs/ARCHITECTURE.md` ("AF_XDP ports and the frame life cycle") tells
//! how a frame travels through them.
use std::fmt;
use std::io;

pub mod mem_port;
pub mod packet_socket;
pub mod port;
pub mod ring;
pub mod socket;
pub mod stats;
#[cfg(test)]
pub(crate) mod test_support;
pub mod umem;

pub use mem_port::{MemPort, MemPortConfig};
pub use port::{wait_any, Port, RingLevels, Waker, BURST};
pub use ring::Desc;
pub use socket::{BindMode, BoundMode, BusyRetry, XskConfig, XskPort};
pub use stats::{PortStats, XdpStatistics};
pub use umem::{FrameCounts, FrameState, Umem, UmemConfig};

/// Moves the calling thread into the network namespace at `path` (e.g.
/// `/run/netns/NAME`). AF_XDP sockets and XDP attachment resolve interface
/// indices in the caller's namespace, so an engine serving a namespace's
/// interfaces opens them from a thread that entered it. Other threads keep
/// their namespace.
pub fn enter_netns(path: &std::path::Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path)?;
    // SAFETY: setns on a valid namespace descriptor; it changes only the calling
    // thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Why an AF_XDP operation failed.
#[derive(Debug)]
pub enum XskError {
    /// A system call failed; the string says what we were doing.
    Io(&'static str, io::Error),
    /// Registering the UMEM needs locked memory beyond RLIMIT_MEMLOCK.
    MemLock {
        /// UMEM size.
        bytes: usize,
        /// RLIMIT_MEMLOCK soft limit.
        limit: u64,
        /// The kernel's answer.
        source: io::Error,
    },
    /// The interface does not exist.
    NoSuchInterface(String),
    /// An invalid configuration.
    Config(String),
}

impl fmt::Display for XskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XskError::Io(what, e) => write!(f, "{what}: {e}"),
            XskError::MemLock {
                bytes,
                limit,
                source,
            } => write!(
                f,
                "registering a {} KiB UMEM needs CAP_IPC_LOCK (RLIMIT_MEMLOCK is {} KiB and the \
                 process lacks CAP_IPC_LOCK): {source}",
                bytes / 1024,
                limit / 1024
            ),
            XskError::NoSuchInterface(name) => write!(f, "no interface named {name:?}"),
            XskError::Config(msg) => write!(f, "invalid AF_XDP configuration: {msg}"),
        }
    }
}

impl std::error::Error for XskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            XskError::Io(_, e) | XskError::MemLock { source: e, .. } => Some(e),
            _ => None,
        }
    }
}
