//! A NIC's RSS configuration, read through the ethtool ioctl as
//! `ethtool -x DEV` (key, indirection table, hash function) and
//! `ethtool -n DEV rx-flow-hash tcp4|udp4` (which fields are hashed).
//! Read once at start, as root, before the threads are confined.

use std::io;

/// `SIOCETHTOOL` (linux/sockios.h).
const SIOCETHTOOL: libc::c_ulong = 0x8946;
/// `ETHTOOL_GRSSH`: get the RSS hash configuration.
const ETHTOOL_GRSSH: u32 = 0x46;
/// `ETHTOOL_GRXFH`: get the fields hashed for a flow type.
const ETHTOOL_GRXFH: u32 = 0x29;
/// `ETH_RSS_HASH_TOP`: the Toeplitz function (bit 0 of `hfunc`).
const ETH_RSS_HASH_TOP: u8 = 1;
const TCP_V4_FLOW: u32 = 0x01;
const UDP_V4_FLOW: u32 = 0x02;
/// `RXH_L4_B_0_1 | RXH_L4_B_2_3`: both ports hashed.
const RXH_L4_PORTS: u64 = (1 << 6) | (1 << 7);
/// `struct ethtool_rxfh` up to its flexible `rss_config[]`, in u32 words.
const RXFH_WORDS: usize = 6;

/// What `ethtool -x` shows, and whether TCP and UDP over IPv4 hash their ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssConfig {
    pub key: Vec<u8>,
    pub table: Vec<u16>,
    pub tcp_ports: bool,
    pub udp_ports: bool,
}

/// Reads `ifname`'s RSS. `Ok(None)` when the device has none the engine can
/// model: no RSS (veth: EOPNOTSUPP), no key, or a hash other than Toeplitz.
pub fn read_rss(ifname: &str) -> io::Result<Option<RssConfig>> {
    let sock = Sock::new()?;
    // First call: the sizes.
    let mut head = [0u32; RXFH_WORDS];
    head[0] = ETHTOOL_GRSSH;
    match sock.ioctl(
        ifname,
        head.as_mut_ptr().cast(),
        std::mem::size_of_val(&head),
    ) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(None),
        Err(e) => return Err(e),
    }
    let (indir, key) = (head[2] as usize, head[3] as usize);
    if indir == 0 || key == 0 || indir > 1 << 16 || key > 1024 {
        return Ok(None);
    }
    // Second call: header, then `indir` u32 entries, then `key` bytes.
    let words = RXFH_WORDS + indir + key.div_ceil(4);
    let mut buf = vec![0u32; words];
    buf[0] = ETHTOOL_GRSSH;
    buf[2] = indir as u32;
    buf[3] = key as u32;
    sock.ioctl(ifname, buf.as_mut_ptr().cast(), words * 4)?;
    let hfunc = buf[4].to_ne_bytes()[0];
    if hfunc != 0 && hfunc & ETH_RSS_HASH_TOP == 0 {
        return Ok(None);
    }
    let table = buf[RXFH_WORDS..RXFH_WORDS + indir]
        .iter()
        .map(|&q| q as u16)
        .collect();
    let key_bytes: Vec<u8> = buf[RXFH_WORDS + indir..]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .take(key)
        .collect();
    Ok(Some(RssConfig {
        key: key_bytes,
        table,
        // A driver that cannot say hashes the ports (the usual default for TCP).
        tcp_ports: sock.hashes_ports(ifname, TCP_V4_FLOW).unwrap_or(true),
        udp_ports: sock.hashes_ports(ifname, UDP_V4_FLOW).unwrap_or(false),
    }))
}

struct Sock(std::os::fd::OwnedFd);

impl Sock {
    fn new() -> io::Result<Sock> {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Sock(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
    }

    /// SIOCETHTOOL on `ifname` with the command buffer `data` of `len` bytes.
    fn ioctl(&self, ifname: &str, data: *mut libc::c_void, len: usize) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let name = ifname.as_bytes();
        if name.len() >= libc::IFNAMSIZ || len < 4 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: ifreq is plain old data; all zeroes is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, &s) in ifr.ifr_name.iter_mut().zip(name) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = data.cast();
        // SAFETY: `ifr` names the device and points at `data`, a live buffer
        // of `len` bytes that the caller sized for the command in its first
        // word (the kernel writes no more than the sizes it was given).
        let r = unsafe { libc::ioctl(self.0.as_raw_fd(), SIOCETHTOOL, &mut ifr) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Whether the NIC hashes both ports of `flow` (`ethtool -n DEV rx-flow-hash`).
    fn hashes_ports(&self, ifname: &str, flow: u32) -> Option<bool> {
        // `struct ethtool_rxnfc` (cmd, flow_type, data, ...): 192 bytes;
        // the buffer is larger and zeroed.
        let mut buf = [0u64; 64];
        buf[0] = u64::from(ETHTOOL_GRXFH) | u64::from(flow) << 32;
        let len = std::mem::size_of_val(&buf);
        self.ioctl(ifname, buf.as_mut_ptr().cast(), len).ok()?;
        Some(buf[1] & RXH_L4_PORTS == RXH_L4_PORTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_no_rss_and_bad_names_are_refused() {
        // `lo` has no RSS: EOPNOTSUPP, reported as none.
        assert_eq!(read_rss("lo").unwrap(), None);
        assert!(read_rss("a-name-far-too-long-for-linux").is_err());
    }
}
