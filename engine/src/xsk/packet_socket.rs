//! One AF_PACKET socket per router port that gets a copy of every ARP and
//! neighbor-discovery frame the kernel receives on the port's interface
//! (`[routing] kernel_control` with `arp_nd`: the steering program passes
//! those to the kernel, and the engine still learns its neighbors from
//! them; `docs/ARCHITECTURE.md`, "Neighbors with a routing daemon").
//!
//! Opened as root at set-up (CAP_NET_RAW), read unprivileged afterwards by
//! the control thread with `recvfrom` (in its seccomp list already). The
//! socket is non-blocking, bound to one interface, ignores the frames the
//! host sends (PACKET_IGNORE_OUTGOING), has a small receive buffer (a flood
//! costs the kernel's drops, not memory) and a classic BPF filter attached
//! before it is bound, so it never queues anything but ARP and ICMPv6
//! NS/NA. Here, beside the AF_XDP sockets, because its libc socket calls
//! need `unsafe` (each with its SAFETY note), which lives only in `xsk` and
//! `steer`. It knows nothing of what it reads: `runtime::kernel_neighbors`
//! parses and learns.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The socket's receive buffer: a few hundred ARP/ND frames.
const RCVBUF: libc::c_int = 64 * 1024;

/// `PACKET_IGNORE_OUTGOING` (linux/if_packet.h, Linux 4.20).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// The filter: ARP, or IPv6 whose next header is ICMPv6 (58) with type NS
/// (135) or NA (136). Offsets in the untagged frame the socket sees (the
/// kernel strips a VLAN tag into metadata first).
const FILTER: [libc::sock_filter; 10] = [
    stmt(0x28, 12),           // 0: ldh [12]            ethertype
    jump(0x15, 0x0806, 6, 0), // 1: jeq #ARP      -> 8 accept
    jump(0x15, 0x86dd, 0, 6), // 2: jeq #IPv6 ?   : -> 9 drop
    stmt(0x30, 20),           // 3: ldb [20]            next header
    jump(0x15, 58, 0, 4),     // 4: jeq #ICMPv6 ? : -> 9 drop
    stmt(0x30, 54),           // 5: ldb [54]            ICMPv6 type
    jump(0x15, 135, 1, 0),    // 6: jeq #NS     -> 8 accept
    jump(0x15, 136, 0, 1),    // 7: jeq #NA     -> 8 accept : 9 drop
    stmt(0x06, 0x40000),      // 8: ret #262144         the whole frame
    stmt(0x06, 0),            // 9: ret #0              nothing
];

const fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// A packet socket holding copies of one interface's ARP/NS/NA frames.
#[derive(Debug)]
pub struct NeighborCopySocket {
    fd: OwnedFd,
}

fn check(r: libc::c_int, what: &str) -> io::Result<()> {
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

fn setopt(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
    what: &str,
) -> io::Result<()> {
    // SAFETY: a valid socket, a pointer to an int that outlives the call, its size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    check(r, what)
}

impl NeighborCopySocket {
    /// Opens the socket on interface `ifindex` (needs CAP_NET_RAW).
    pub fn open(ifindex: u32) -> io::Result<NeighborCopySocket> {
        // Protocol 0: nothing is queued until the bind below names one, after
        // the filter is in place.
        // SAFETY: plain socket(2) with constant arguments.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        check(raw, "socket(AF_PACKET)")?;
        // SAFETY: socket(2) returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let prog = libc::sock_fprog {
            len: FILTER.len() as u16,
            filter: FILTER.as_ptr().cast_mut(),
        };
        // SAFETY: a valid socket; `prog` points at FILTER (static) and lives
        // through the call, which copies the program.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&prog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        check(r, "SO_ATTACH_FILTER")?;
        setopt(
            &fd,
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            1,
            "PACKET_IGNORE_OUTGOING",
        )?;
        setopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF, "SO_RCVBUF")?;
        let sll = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
            sll_ifindex: ifindex as i32,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: a valid socket and a sockaddr_ll that lives through the call, with its size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        check(r, "bind(AF_PACKET)")?;
        Ok(NeighborCopySocket { fd })
    }

    /// Reads one frame into `buf` without waiting: `Ok(None)` when none is
    /// queued. A frame longer than `buf` comes cut to its length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: a valid socket, a writable buffer of `buf.len()` bytes, no address wanted.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(n as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbpf::{Insn, Program};
    use crate::context::neigh_frames;

    /// The filter passes the kernel's checks (the engine's checker is the
    /// kernel's rules) and takes ARP, NS and NA only.
    #[test]
    fn filter_takes_arp_ns_na_only() {
        let insns: Vec<Insn> = FILTER
            .iter()
            .map(|i| Insn::new(i.code, i.jt, i.jf, i.k))
            .collect();
        let prog = Program::new(&insns).expect("a valid classic BPF program");
        let (mac, host) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let (a, b) = ("198.18.1.1".parse().unwrap(), "198.18.1.2".parse().unwrap());
        let (a6, b6) = ("2001:2::1".parse().unwrap(), "2001:2::2".parse().unwrap());
        let mut f = [0u8; 128];
        let n = neigh_frames::arp_request(&mut f, host, b, a).unwrap();
        assert!(prog.matches(&f[..n]));
        let n = neigh_frames::arp_reply(&mut f, host, b, mac, a).unwrap();
        assert!(prog.matches(&f[..n]));
        let n = neigh_frames::neighbor_solicit(&mut f, host, b6, a6).unwrap();
        assert!(prog.matches(&f[..n]));
        let n = neigh_frames::neighbor_advert(&mut f, host, b6, mac, a6, b6, true, true).unwrap();
        assert!(prog.matches(&f[..n]));
        // An ICMPv6 echo request (type 128), and IPv4: not taken.
        f[54] = 128;
        assert!(!prog.matches(&f[..n]));
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert!(!prog.matches(&f[..n]));
        assert!(!prog.matches(&f[..10]));
    }
}
