//! The XDP steering program (`ebpf/steer.bpf.c`): loading, attaching, rule
//! maps and verdict counters. With `xsk`, the only home of `unsafe`.
//!
//! One [`Steering`] per interface: it loads its own copy of the program (so
//! each interface has its own socket map and rules), attaches it through a
//! bpf_link (driver mode, generic mode as fallback) that the kernel removes
//! when the process dies, and writes the rules the engine decides.
//! `docs/ARCHITECTURE.md` ("XDP steering") gives the decision order.
use std::fmt;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};

mod hash;
pub use hash::{flow_hash, flow_hash_v4, flow_hash_v6, socket_slot};

#[allow(clippy::all, missing_docs, missing_debug_implementations)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/steer.skel.rs"));
}
use skel::{SteerSkel, SteerSkelBuilder};

/// Queues the program serves (`STEER_MAX_QUEUES` in `ebpf/steer.h`).
pub const MAX_QUEUES: u32 = 64;
/// Sockets that may share one queue (`STEER_SOCKS_PER_QUEUE`).
pub const SOCKS_PER_QUEUE: u32 = 4;

/// Why the program gave a frame its verdict (`enum steer_verdict`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Redirected into an engine socket.
    ToEngine = 0,
    /// Passed: no socket serves the receive queue.
    PassNoSocket = 1,
    /// Passed by an ethertype rule.
    PassEthertype = 2,
    /// Passed by a destination prefix rule.
    PassDstPrefix = 3,
    /// Passed by a TCP/UDP destination port rule.
    PassL4Port = 4,
    /// Dropped by a source prefix rule.
    DropSrcPrefix = 5,
}

impl Verdict {
    /// Every verdict, in counter order.
    pub const ALL: [Verdict; 6] = [
        Verdict::ToEngine,
        Verdict::PassNoSocket,
        Verdict::PassEthertype,
        Verdict::PassDstPrefix,
        Verdict::PassL4Port,
        Verdict::DropSrcPrefix,
    ];

    /// Stable counter name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::ToEngine => "to_engine",
            Verdict::PassNoSocket => "pass_no_socket",
            Verdict::PassEthertype => "pass_ethertype",
            Verdict::PassDstPrefix => "pass_dst_prefix",
            Verdict::PassL4Port => "pass_l4_port",
            Verdict::DropSrcPrefix => "drop_src_prefix",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Packets and bytes per verdict, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerdictCounters {
    /// Packets, indexed by `Verdict as usize`.
    pub packets: [u64; 6],
    /// Bytes, indexed the same way.
    pub bytes: [u64; 6],
}

impl VerdictCounters {
    /// Packets with verdict `v`.
    pub fn packets(&self, v: Verdict) -> u64 {
        self.packets[v as usize]
    }
}

impl fmt::Display for VerdictCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in Verdict::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}={}", v, self.packets[i])?;
        }
        Ok(())
    }
}

/// How the program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver (native XDP).
    Driver,
    /// In the generic path (after the sk_buff is built).
    Generic,
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XdpMode::Driver => "driver",
            XdpMode::Generic => "generic",
        })
    }
}

/// Which attach mode to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Driver mode, falling back to generic.
    Auto,
    /// Driver mode or fail.
    Driver,
    /// Generic mode.
    Generic,
}

/// TCP or UDP, for port rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L4Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl L4Proto {
    fn number(self) -> u8 {
        match self {
            L4Proto::Tcp => 6,
            L4Proto::Udp => 17,
        }
    }
}

/// Why a steering operation failed.
#[derive(Debug)]
pub enum SteerError {
    /// libbpf refused (open, load, map update).
    Bpf(&'static str, libbpf_rs::Error),
    /// Attaching failed in every mode tried.
    Attach(String),
    /// A rule or queue outside the program's limits.
    Invalid(String),
}

impl fmt::Display for SteerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SteerError::Bpf(what, e) => write!(f, "{what}: {e}"),
            SteerError::Attach(msg) => write!(f, "attaching XDP: {msg}"),
            SteerError::Invalid(msg) => write!(f, "invalid steering rule: {msg}"),
        }
    }
}

impl std::error::Error for SteerError {}

fn bpf(what: &'static str) -> impl Fn(libbpf_rs::Error) -> SteerError {
    move |e| SteerError::Bpf(what, e)
}

/// The steering program loaded for one interface, its maps and its link.
pub struct Steering {
    // Field order matters: the link and the skeleton drop before the object
    // memory they point into (freed in Drop).
    link: Option<(OwnedFd, u32, XdpMode)>,
    skel: ManuallyDrop<SteerSkel<'static>>,
    object: *mut MaybeUninit<OpenObject>,
}

// SAFETY: the skeleton is Send (libbpf-rs says so); `object` is owned memory
// only the skeleton points into, never shared.
unsafe impl Send for Steering {}

impl fmt::Debug for Steering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Steering").field("attached", &self.link.as_ref().map(|l| (l.1, l.2))).finish()
    }
}

impl Drop for Steering {
    fn drop(&mut self) {
        // Closing the link fd detaches the program.
        self.link = None;
        // SAFETY: dropped exactly once, here; nothing uses the skeleton afterwards.
        unsafe { ManuallyDrop::drop(&mut self.skel) };
        // SAFETY: `object` came from Box::into_raw in `load` and the skeleton that
        // borrowed it is gone; MaybeUninit drops nothing inside.
        drop(unsafe { Box::from_raw(self.object) });
    }
}

fn lpm_key(addr: IpAddr, len: u8) -> Result<Vec<u8>, SteerError> {
    let (bytes, max): (Vec<u8>, u8) = match addr {
        IpAddr::V4(a) => (a.octets().to_vec(), 32),
        IpAddr::V6(a) => (a.octets().to_vec(), 128),
    };
    if len > max {
        return Err(SteerError::Invalid(format!("{addr}/{len}: prefix longer than {max}")));
    }
    let mut k = (len as u32).to_ne_bytes().to_vec();
    k.extend_from_slice(&bytes);
    Ok(k)
}

const ONE: [u8; 1] = [1];

impl Steering {
    /// Loads the program (not attached yet). Rules can be written before
    /// attaching, so the first frame already sees them.
    pub fn load() -> Result<Steering, SteerError> {
        let object = Box::into_raw(Box::new(MaybeUninit::<OpenObject>::uninit()));
        // SAFETY: `object` is a fresh heap allocation that stays put until Drop (or
        // the error path below) frees it, after the skeleton borrowing it is gone;
        // so treating the borrow as 'static is sound within this struct.
        let storage: &'static mut MaybeUninit<OpenObject> = unsafe { &mut *object };
        let loaded = SteerSkelBuilder::default()
            .open(storage)
            .map_err(bpf("opening the steering program"))
            .and_then(|open| open.load().map_err(bpf("loading the steering program")));
        match loaded {
            Ok(skel) => Ok(Steering { link: None, skel: ManuallyDrop::new(skel), object }),
            Err(e) => {
                // SAFETY: the failed open/load dropped whatever borrowed `object`.
                drop(unsafe { Box::from_raw(object) });
                Err(e)
            }
        }
    }

    /// Attaches to `ifindex` through a bpf_link. The link lives as long as
    /// this `Steering` (or the process): the kernel detaches on exit, also on
    /// SIGKILL. The calling thread's network namespace resolves `ifindex`.
    pub fn attach(&mut self, ifindex: u32, mode: AttachMode) -> Result<XdpMode, SteerError> {
        if self.link.is_some() {
            return Err(SteerError::Attach("already attached".into()));
        }
        let tries: &[(u32, XdpMode)] = match mode {
            AttachMode::Auto => &[
                (libbpf_rs::libbpf_sys::XDP_FLAGS_DRV_MODE, XdpMode::Driver),
                (libbpf_rs::libbpf_sys::XDP_FLAGS_SKB_MODE, XdpMode::Generic),
            ],
            AttachMode::Driver => &[(libbpf_rs::libbpf_sys::XDP_FLAGS_DRV_MODE, XdpMode::Driver)],
            AttachMode::Generic => &[(libbpf_rs::libbpf_sys::XDP_FLAGS_SKB_MODE, XdpMode::Generic)],
        };
        let prog_fd = self.skel.progs.steer.as_fd().as_raw_fd();
        let mut errors = Vec::new();
        for (flags, m) in tries {
            let opts = libbpf_rs::libbpf_sys::bpf_link_create_opts {
                sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_link_create_opts>() as _,
                flags: *flags,
                ..Default::default()
            };
            // SAFETY: a valid program fd, an interface index, and options sized as libbpf expects.
            let fd = unsafe {
                libbpf_rs::libbpf_sys::bpf_link_create(
                    prog_fd,
                    ifindex as i32,
                    libbpf_rs::libbpf_sys::BPF_XDP,
                    &opts,
                )
            };
            if fd >= 0 {
                // SAFETY: bpf_link_create returned a fresh descriptor we now own.
                let link = unsafe { OwnedFd::from_raw_fd(fd) };
                self.link = Some((link, ifindex, *m));
                return Ok(*m);
            }
            errors.push(format!("{m} mode: {}", std::io::Error::from_raw_os_error(-fd)));
        }
        Err(SteerError::Attach(format!("ifindex {ifindex}: {}", errors.join("; "))))
    }

    /// Detaches (closing the link).
    pub fn detach(&mut self) {
        self.link = None;
    }

    /// The attach mode, if attached.
    pub fn mode(&self) -> Option<XdpMode> {
        self.link.as_ref().map(|l| l.2)
    }

    /// Sets the sockets that serve `queue` (at most [`SOCKS_PER_QUEUE`]);
    /// an empty slice makes the queue pass to the kernel again.
    pub fn set_queue_sockets(&mut self, queue: u32, fds: &[i32]) -> Result<(), SteerError> {
        if queue >= MAX_QUEUES || fds.len() > SOCKS_PER_QUEUE as usize {
            return Err(SteerError::Invalid(format!(
                "queue {queue} with {} sockets (limits {MAX_QUEUES} queues, {SOCKS_PER_QUEUE} sockets)",
                fds.len()
            )));
        }
        let maps = &self.skel.maps;
        // Stop steering to the slots first, then change them, then publish the count.
        maps.queues
            .update(&queue.to_ne_bytes(), &0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf("queues map"))?;
        for slot in 0..SOCKS_PER_QUEUE {
            let key = (queue * SOCKS_PER_QUEUE + slot).to_ne_bytes();
            match fds.get(slot as usize) {
                Some(fd) => maps
                    .xsks
                    .update(&key, &(*fd as u32).to_ne_bytes(), MapFlags::ANY)
                    .map_err(bpf("xsks map"))?,
                None => {
                    let _ = maps.xsks.delete(&key); // absent already: fine
                }
            }
        }
        maps.queues
            .update(&queue.to_ne_bytes(), &(fds.len() as u32).to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf("queues map"))
    }

    /// Passes frames with this ethertype (after VLAN tags) to the kernel.
    pub fn pass_ethertype(&mut self, ethertype: u16, on: bool) -> Result<(), SteerError> {
        let k = ethertype.to_ne_bytes();
        let m = &self.skel.maps.pass_ethertype;
        if on {
            m.update(&k, &ONE, MapFlags::ANY).map_err(bpf("pass_ethertype map"))
        } else {
            m.delete(&k).map_err(bpf("pass_ethertype map"))
        }
    }

    /// Passes frames to destinations in `addr/len` to the kernel.
    pub fn pass_dst_prefix(&mut self, addr: IpAddr, len: u8, on: bool) -> Result<(), SteerError> {
        let k = lpm_key(addr, len)?;
        let m = if addr.is_ipv4() { &self.skel.maps.pass_dst4 } else { &self.skel.maps.pass_dst6 };
        if on {
            m.update(&k, &ONE, MapFlags::ANY).map_err(bpf("pass_dst map"))
        } else {
            m.delete(&k).map_err(bpf("pass_dst map"))
        }
    }

    /// Passes TCP or UDP frames to this destination port to the kernel.
    pub fn pass_l4_port(&mut self, proto: L4Proto, port: u16, on: bool) -> Result<(), SteerError> {
        let mut k = port.to_ne_bytes().to_vec();
        k.extend_from_slice(&[proto.number(), 0]);
        let m = &self.skel.maps.pass_l4_port;
        if on {
            m.update(&k, &ONE, MapFlags::ANY).map_err(bpf("pass_l4_port map"))
        } else {
            m.delete(&k).map_err(bpf("pass_l4_port map"))
        }
    }

    /// Drops frames from sources in `addr/len` (the blocklist).
    pub fn drop_src_prefix(&mut self, addr: IpAddr, len: u8, on: bool) -> Result<(), SteerError> {
        let k = lpm_key(addr, len)?;
        let m = if addr.is_ipv4() { &self.skel.maps.drop_src4 } else { &self.skel.maps.drop_src6 };
        if on {
            m.update(&k, &ONE, MapFlags::ANY).map_err(bpf("drop_src map"))
        } else {
            m.delete(&k).map_err(bpf("drop_src map"))
        }
    }

    /// The per-verdict counters, summed over CPUs.
    pub fn counters(&self) -> Result<VerdictCounters, SteerError> {
        let mut c = VerdictCounters::default();
        for v in Verdict::ALL {
            let per_cpu = self
                .skel
                .maps
                .counters
                .lookup_percpu(&(v as u32).to_ne_bytes(), MapFlags::ANY)
                .map_err(bpf("counters map"))?
                .unwrap_or_default();
            for cpu in per_cpu {
                let word = |i: usize| {
                    cpu.get(i * 8..i * 8 + 8)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, u64::from_ne_bytes)
                };
                c.packets[v as usize] += word(0);
                c.bytes[v as usize] += word(1);
            }
        }
        Ok(c)
    }

    /// Runs the program once on `frame` in the kernel (BPF_PROG_TEST_RUN),
    /// as if received on queue 0 of no particular interface; returns the XDP
    /// action. Tests the decisions without an interface.
    pub fn test_run(&self, frame: &[u8]) -> Result<u32, SteerError> {
        let input = libbpf_rs::ProgramInput {
            context_in: None,
            context_out: None,
            data_in: Some(frame),
            data_out: None,
            cpu: 0,
            flags: 0,
            repeat: 1,
            _non_exhaustive: (),
        };
        let out = self.skel.progs.steer.test_run(input).map_err(bpf("BPF_PROG_TEST_RUN"))?;
        Ok(out.return_value)
    }
}

/// XDP action codes, as the program returns them.
pub mod action {
    /// XDP_DROP.
    pub const DROP: u32 = 1;
    /// XDP_PASS.
    pub const PASS: u32 = 2;
    /// XDP_REDIRECT.
    pub const REDIRECT: u32 = 4;
}

#[cfg(test)]
mod tests;
