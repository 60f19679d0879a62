//! The engine's neighbors while the kernel owns ARP and ND (`[routing]
//! kernel_control` with `arp_nd`). The steering program passes ARP and ND
//! for the engine's addresses to the kernel, which answers solicitations
//! itself; the engine keeps resolving its own next hops (its workers still
//! send ARP requests and NS), and learns from a copy of every ARP/NS/NA
//! frame the kernel receives: one packet socket per router port
//! (`xsk::packet_socket`), read by the control thread in `periodic()`, parsed by
//! the same parsers the workers use, and fed into the same
//! `Event::NeighSeen` path, anti-poisoning rule included. Neither table
//! writes the other: both learn from the same frames.

use std::io;
use std::net::IpAddr;

use crate::context::events::Event;
use crate::context::neigh_frames::{self, NeighMsg};
use crate::context::tables::{Interfaces, PortInfo};
use crate::neighbor::NeighborKey;
use crate::wire::ethernet::{EtherType, EthernetFrame};
use crate::wire::Mac;
use crate::xsk::packet_socket::NeighborCopySocket;

/// Frames read per port and round of the control loop: a flood cannot hold
/// the control thread (the rest waits in the socket, or the kernel drops it).
pub const PER_ROUND: usize = 64;

/// The copy sockets of the router ports, and what they read.
#[derive(Debug, Default)]
pub struct KernelNeighbors {
    sockets: Vec<(u16, NeighborCopySocket)>,
    /// Frames read.
    pub read: u64,
    /// Frames that were not an ARP/NS/NA the engine parses.
    pub malformed: u64,
    buf: Vec<u8>,
}

impl KernelNeighbors {
    /// Opens one socket per `(port, ifindex)` (as root, at set-up).
    pub fn open(ports: &[(u16, u32)]) -> io::Result<KernelNeighbors> {
        let mut sockets = Vec::new();
        for &(port, ifindex) in ports {
            sockets.push((port, NeighborCopySocket::open(ifindex)?));
        }
        Ok(KernelNeighbors {
            sockets,
            read: 0,
            malformed: 0,
            buf: vec![0; 2048],
        })
    }

    /// Whether any socket is open.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Reads up to [`PER_ROUND`] frames per socket; each neighbor seen goes
    /// to `seen` as the workers' event would.
    pub fn poll(&mut self, ifs: &Interfaces, mut seen: impl FnMut(Event)) {
        for (port, sock) in &self.sockets {
            let Some(p) = ifs.port(*port) else { continue };
            for _ in 0..PER_ROUND {
                let n = match sock.recv(&mut self.buf) {
                    Ok(Some(n)) => n,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("port {}: reading the kernel's ARP/ND copy: {e}", p.name);
                        break;
                    }
                };
                self.read += 1;
                match learn(p, self.buf.get(..n).unwrap_or(&[])) {
                    Ok(Some((ip, mac, confirmed))) => seen(Event::NeighSeen {
                        key: NeighborKey { port: *port, ip },
                        mac,
                        confirmed,
                    }),
                    Ok(None) => {}
                    Err(Malformed) => self.malformed += 1,
                }
            }
        }
    }
}

/// A copied frame that is not a well-formed ARP request/reply, NS or NA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// What a frame the kernel received on port `p` teaches: a neighbor, its
/// MAC, and whether it answered (reply, solicited NA). The rules are the
/// workers' (`router::arp`, `router::local`): a request or NS teaches its
/// sender when it asks for one of the port's addresses (or announces its
/// own), an answer its sender when on the port's subnets. `Err` for a frame
/// that is not a well-formed ARP/NS/NA.
pub fn learn(p: &PortInfo, frame: &[u8]) -> Result<Option<(IpAddr, Mac, bool)>, Malformed> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| Malformed)?;
    let eth_src = eth.src_addr().0;
    let msg = match eth.ethertype() {
        EtherType::Arp => neigh_frames::parse_arp(eth.payload()),
        EtherType::Ipv6 => neigh_frames::parse_ndisc(eth.payload()),
        _ => None,
    }
    .ok_or(Malformed)?;
    let found = match msg {
        NeighMsg::ArpRequest {
            sender_mac,
            sender_ip,
            target_ip,
        } => (p.on_link_v4(sender_ip)
            && !sender_ip.is_unspecified()
            && (p.owns_v4(target_ip) || sender_ip == target_ip))
            .then_some((IpAddr::V4(sender_ip), sender_mac, false)),
        NeighMsg::ArpReply {
            sender_mac,
            sender_ip,
            ..
        } => p
            .on_link_v4(sender_ip)
            .then_some((IpAddr::V4(sender_ip), sender_mac, true)),
        NeighMsg::NeighSolicit {
            src_ip,
            src_mac,
            target,
        } => match src_mac {
            Some(m) if p.owns_v6(target) && !src_ip.is_unspecified() => {
                Some((IpAddr::V6(src_ip), m, false))
            }
            _ => None,
        },
        NeighMsg::NeighAdvert {
            target,
            target_mac,
            solicited,
            ..
        } => p.on_link_v6(target).then_some((
            IpAddr::V6(target),
            target_mac.unwrap_or(eth_src),
            solicited,
        )),
    };
    // As `Ctx::neighbor_seen`: never a multicast or zero MAC.
    Ok(found.filter(|(_, m, _)| m[0] & 1 == 0 && *m != [0; 6]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tables::PortMode;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const ME: Mac = [0x02, 0, 0, 0, 0, 1];
    const HOST: Mac = [0x02, 0, 0, 0, 0, 2];

    fn port() -> PortInfo {
        PortInfo {
            index: 0,
            name: "lan".into(),
            interface: "veth0".into(),
            mac: ME,
            mtu: 1500,
            mode: PortMode::Router,
            v4: vec![(Ipv4Addr::new(198, 18, 1, 1), 24)],
            v6: vec![("2001:2:0:1::1".parse().unwrap(), 64)],
        }
    }

    fn ip4(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 1, d)
    }

    fn ip6(d: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, d)
    }

    #[test]
    fn arp_requests_and_replies_teach_their_sender() {
        let p = port();
        let mut f = [0u8; 64];
        // A host asks for the engine's address: the kernel answers, the engine learns the host.
        let n = neigh_frames::arp_request(&mut f, HOST, ip4(2), ip4(1)).unwrap();
        assert_eq!(
            learn(&p, &f[..n]),
            Ok(Some((IpAddr::V4(ip4(2)), HOST, false)))
        );
        // A request for someone else (not passed to the kernel anyway) teaches nothing.
        let n = neigh_frames::arp_request(&mut f, HOST, ip4(2), ip4(3)).unwrap();
        assert_eq!(learn(&p, &f[..n]), Ok(None));
        // A sender off the port's subnets teaches nothing.
        let n =
            neigh_frames::arp_request(&mut f, HOST, Ipv4Addr::new(198, 19, 0, 2), ip4(1)).unwrap();
        assert_eq!(learn(&p, &f[..n]), Ok(None));
        // The answer to the engine's own request: confirmed.
        let n = neigh_frames::arp_reply(&mut f, HOST, ip4(2), ME, ip4(1)).unwrap();
        assert_eq!(
            learn(&p, &f[..n]),
            Ok(Some((IpAddr::V4(ip4(2)), HOST, true)))
        );
    }

    #[test]
    fn ns_and_na_teach_as_the_workers_do() {
        let p = port();
        let mut f = [0u8; 128];
        let n = neigh_frames::neighbor_solicit(&mut f, HOST, ip6(2), ip6(1)).unwrap();
        assert_eq!(
            learn(&p, &f[..n]),
            Ok(Some((IpAddr::V6(ip6(2)), HOST, false)))
        );
        let n = neigh_frames::neighbor_advert(&mut f, HOST, ip6(2), ME, ip6(1), ip6(2), true, true)
            .unwrap();
        assert_eq!(
            learn(&p, &f[..n]),
            Ok(Some((IpAddr::V6(ip6(2)), HOST, true)))
        );
        // An NA off-link teaches nothing.
        let off = Ipv6Addr::new(0x2001, 2, 0, 9, 0, 0, 0, 2);
        let n =
            neigh_frames::neighbor_advert(&mut f, HOST, off, ME, ip6(1), off, true, true).unwrap();
        assert_eq!(learn(&p, &f[..n]), Ok(None));
    }

    #[test]
    fn malformed_frames_are_errors_never_panics() {
        let p = port();
        let mut f = [0u8; 128];
        let n = neigh_frames::neighbor_solicit(&mut f, HOST, ip6(2), ip6(1)).unwrap();
        for cut in 0..n {
            assert_eq!(learn(&p, &f[..cut]), Err(Malformed), "cut at {cut}");
        }
        // A bad ICMPv6 checksum.
        let mut bad = f[..n].to_vec();
        bad[n - 1] ^= 0xff;
        assert_eq!(learn(&p, &bad), Err(Malformed));
        // Not ARP or IPv6 at all.
        let mut ip = f[..n].to_vec();
        ip[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(learn(&p, &ip), Err(Malformed));
        let n = neigh_frames::arp_request(&mut f, HOST, ip4(2), ip4(1)).unwrap();
        for cut in 0..n {
            assert_eq!(learn(&p, &f[..cut]), Err(Malformed), "cut at {cut}");
        }
    }
}
