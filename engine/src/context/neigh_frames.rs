//! ARP (RFC 826, RFC 5227) and Neighbor Discovery NS/NA (RFC 4861) frames:
//! complete untagged Ethernet frames written into caller buffers, and
//! parsers with the validity checks a router applies before learning.
//!
//! Frames are not padded to the 60-byte Ethernet minimum (ARP frames are 42
//! bytes): the NIC pads short frames on transmit, as it does for the
//! kernel's own ARP.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::arp::{self, ArpOperation, ArpPacket, ArpRepr};
use crate::wire::ethernet::{self, EtherType, EthernetAddress, EthernetFrame};
use crate::wire::icmpv6::{Icmpv6Packet, Icmpv6Repr, NeighborFlags, NDISC_HEADER_LEN};
use crate::wire::ipv6::{self, Ipv6Packet, Ipv6Repr};
use crate::wire::IpProtocol;

use super::Mac;

/// Hop limit of every ND message (RFC 4861 §7.1: receivers drop others).
pub const ND_HOP_LIMIT: u8 = 255;
/// Length of an ARP frame built here.
pub const ARP_FRAME_LEN: usize = ethernet::HEADER_LEN + arp::ETHERNET_IPV4_LEN;
/// Length of an NS or NA frame built here (with one link-layer option).
pub const ND_FRAME_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + NDISC_HEADER_LEN + 8;
/// Length of an NS without a source link-layer option (DAD, from `::`).
pub const ND_FRAME_LEN_NO_OPTION: usize = ND_FRAME_LEN - 8;

/// All-nodes multicast, where unsolicited NAs go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Solicited-node multicast address of `target`: ff02::1:ffXX:XXXX with the
/// low 24 bits of the target (RFC 4291 §2.7.1).
pub fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let o = target.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// Ethernet multicast MAC of an IPv6 multicast address: 33:33 and its low
/// 32 bits (RFC 2464 §7).
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

fn eth_header(out: &mut [u8], dst: Mac, src: Mac, t: EtherType) {
    let mut f = EthernetFrame::new_unchecked(out);
    f.set_dst_addr(EthernetAddress(dst));
    f.set_src_addr(EthernetAddress(src));
    // The buffer is a recycled frame: whatever sits at offset 12 is stale, so
    // write the (untagged) EtherType there rather than "after the tags".
    f.set_outer_ethertype(t);
}

fn arp_frame(out: &mut [u8], eth_dst: Mac, repr: &ArpRepr) -> Option<usize> {
    let buf = out.get_mut(..ARP_FRAME_LEN)?;
    let (eth, body) = buf.split_at_mut(ethernet::HEADER_LEN);
    eth_header(eth, eth_dst, repr.source_hardware_addr.0, EtherType::Arp);
    repr.emit(&mut ArpPacket::new_unchecked(body));
    Some(ARP_FRAME_LEN)
}

/// Broadcast "who has `target_ip`? tell `src_ip`" (target MAC zero).
pub fn arp_request(
    out: &mut [u8],
    src_mac: Mac,
    src_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> Option<usize> {
    arp_frame(
        out,
        [0xff; 6],
        &ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress(src_mac),
            source_protocol_addr: src_ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target_ip,
        },
    )
}

/// Unicast "`src_ip` is at `src_mac`" to the asker.
pub fn arp_reply(
    out: &mut [u8],
    src_mac: Mac,
    src_ip: Ipv4Addr,
    dst_mac: Mac,
    dst_ip: Ipv4Addr,
) -> Option<usize> {
    arp_frame(
        out,
        dst_mac,
        &ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress(src_mac),
            source_protocol_addr: src_ip,
            target_hardware_addr: EthernetAddress(dst_mac),
            target_protocol_addr: dst_ip,
        },
    )
}

/// Gratuitous ARP (RFC 5227 §3 "ARP announcement"): a broadcast request
/// with sender and target address both `ip`, target MAC zero.
pub fn gratuitous_arp(out: &mut [u8], mac: Mac, ip: Ipv4Addr) -> Option<usize> {
    arp_request(out, mac, ip, ip)
}

/// Writes Ethernet + IPv6 (hop limit 255) + an NS/NA built from `repr`.
fn nd_frame(
    out: &mut [u8],
    eth_dst: Mac,
    eth_src: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    repr: &Icmpv6Repr<'_>,
) -> Option<usize> {
    let icmp_len = repr.buffer_len();
    let total = ethernet::HEADER_LEN + ipv6::HEADER_LEN + icmp_len;
    let buf = out.get_mut(..total)?;
    let (eth, rest) = buf.split_at_mut(ethernet::HEADER_LEN);
    eth_header(eth, eth_dst, eth_src, EtherType::Ipv6);
    let (ip, icmp) = rest.split_at_mut(ipv6::HEADER_LEN);
    Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp_len,
        hop_limit: ND_HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&mut Ipv6Packet::new_unchecked(ip));
    repr.emit(&mut Icmpv6Packet::new_unchecked(icmp), src, dst)
        .ok()?;
    Some(total)
}

/// Multicast NS for `target` to its solicited-node group (MAC
/// 33:33:ff:XX:XX:XX) with a source link-layer address option; from `::`
/// (duplicate address detection) the option is left out, as RFC 4861
/// §4.3 requires, and the frame is [`ND_FRAME_LEN_NO_OPTION`] long.
pub fn neighbor_solicit(
    out: &mut [u8],
    src_mac: Mac,
    src_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> Option<usize> {
    let group = solicited_node(target);
    let lladdr = (!src_ip.is_unspecified()).then_some(src_mac);
    nd_frame(
        out,
        multicast_mac(group),
        src_mac,
        src_ip,
        group,
        &Icmpv6Repr::NeighborSolicit {
            target_addr: target,
            lladdr,
        },
    )
}

/// NA for `target` with a target link-layer address option (`src_mac`).
/// The router flag is always set: this engine is a router (RFC 4861
/// §7.2.4). `None` if `solicited` is asked for a multicast `dst_ip` (RFC
/// 4861 §7.2.4 forbids it) or `out` is too small.
#[allow(clippy::too_many_arguments)]
pub fn neighbor_advert(
    out: &mut [u8],
    src_mac: Mac,
    src_ip: Ipv6Addr,
    dst_mac: Mac,
    dst_ip: Ipv6Addr,
    target: Ipv6Addr,
    solicited: bool,
    override_: bool,
) -> Option<usize> {
    if solicited && dst_ip.is_multicast() {
        return None;
    }
    let mut flags = NeighborFlags::ROUTER;
    if solicited {
        flags = flags | NeighborFlags::SOLICITED;
    }
    if override_ {
        flags = flags | NeighborFlags::OVERRIDE;
    }
    nd_frame(
        out,
        dst_mac,
        src_mac,
        src_ip,
        dst_ip,
        &Icmpv6Repr::NeighborAdvert {
            flags,
            target_addr: target,
            lladdr: Some(src_mac),
        },
    )
}

/// Unsolicited NA announcing `ip` at `mac` to all nodes (ff02::1,
/// 33:33:00:00:00:01), override set (RFC 4861 §7.2.6).
pub fn unsolicited_na(out: &mut [u8], mac: Mac, ip: Ipv6Addr) -> Option<usize> {
    neighbor_advert(
        out,
        mac,
        ip,
        multicast_mac(ALL_NODES),
        ALL_NODES,
        ip,
        false,
        true,
    )
}

/// A neighbor message, parsed and validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeighMsg {
    /// Sender IP 0.0.0.0 is an ARP probe (RFC 5227): answer, do not learn.
    ArpRequest {
        sender_mac: Mac,
        sender_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
    },
    ArpReply {
        sender_mac: Mac,
        sender_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
    },
    /// `src_ip` `::` is duplicate address detection (no `src_mac` then).
    NeighSolicit {
        src_ip: Ipv6Addr,
        src_mac: Option<Mac>,
        target: Ipv6Addr,
    },
    NeighAdvert {
        src_ip: Ipv6Addr,
        target: Ipv6Addr,
        target_mac: Option<Mac>,
        solicited: bool,
        override_: bool,
    },
}

impl NeighMsg {
    /// The address the message tells us something about, with its MAC when
    /// it carries one: the sender of ARP and of an NS, the target of an NA.
    pub fn learned(&self) -> Option<(IpAddr, Mac)> {
        match *self {
            NeighMsg::ArpRequest {
                sender_mac,
                sender_ip,
                ..
            }
            | NeighMsg::ArpReply {
                sender_mac,
                sender_ip,
                ..
            } => (!sender_ip.is_unspecified()).then_some((IpAddr::V4(sender_ip), sender_mac)),
            NeighMsg::NeighSolicit {
                src_ip, src_mac, ..
            } => src_mac.map(|m| (IpAddr::V6(src_ip), m)),
            NeighMsg::NeighAdvert {
                target, target_mac, ..
            } => target_mac.map(|m| (IpAddr::V6(target), m)),
        }
    }
}

struct MacFmt(Mac);

impl fmt::Display for MacFmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&EthernetAddress(self.0), f)
    }
}

impl fmt::Display for NeighMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NeighMsg::ArpRequest {
                sender_mac,
                sender_ip,
                target_ip,
            } => {
                write!(
                    f,
                    "arp who-has {target_ip} tell {sender_ip} ({})",
                    MacFmt(sender_mac)
                )
            }
            NeighMsg::ArpReply {
                sender_mac,
                sender_ip,
                target_ip,
            } => {
                write!(
                    f,
                    "arp reply {sender_ip} is-at {} to {target_ip}",
                    MacFmt(sender_mac)
                )
            }
            NeighMsg::NeighSolicit {
                src_ip,
                src_mac,
                target,
            } => {
                write!(f, "ns who-has {target} from {src_ip}")?;
                if let Some(m) = src_mac {
                    write!(f, " ({})", MacFmt(m))?;
                }
                Ok(())
            }
            NeighMsg::NeighAdvert {
                src_ip,
                target,
                target_mac,
                solicited,
                override_,
            } => {
                write!(f, "na {target}")?;
                if let Some(m) = target_mac {
                    write!(f, " is-at {}", MacFmt(m))?;
                }
                write!(f, " from {src_ip}")?;
                if solicited {
                    f.write_str(" S")?;
                }
                if override_ {
                    f.write_str(" O")?;
                }
                Ok(())
            }
        }
    }
}

/// Parses an ARP packet (the Ethernet payload, trailing padding allowed).
/// `None` for anything but Ethernet/IPv4 requests and replies, and for a
/// sender MAC that is multicast or broadcast, or a sender IP that is
/// multicast or limited broadcast (nothing to learn; RFC 1812 §3.3.2).
pub fn parse_arp(eth_payload: &[u8]) -> Option<NeighMsg> {
    let p = ArpPacket::new_checked(eth_payload).ok()?;
    let r = ArpRepr::parse(&p).ok()?;
    let sender_mac = r.source_hardware_addr;
    let sender_ip = r.source_protocol_addr;
    if sender_mac.is_multicast() || sender_ip.is_multicast() || sender_ip.is_broadcast() {
        return None;
    }
    let (sender_mac, target_ip) = (sender_mac.0, r.target_protocol_addr);
    match r.operation {
        ArpOperation::Request => Some(NeighMsg::ArpRequest {
            sender_mac,
            sender_ip,
            target_ip,
        }),
        ArpOperation::Reply => Some(NeighMsg::ArpReply {
            sender_mac,
            sender_ip,
            target_ip,
        }),
        ArpOperation::Unknown(_) => None,
    }
}

/// Parses an NS or NA from an IPv6 packet (from its fixed header) with the
/// checks of RFC 4861 §7.1.1/§7.1.2: hop limit 255, ICMPv6 checksum, code
/// 0, at least 24 bytes, target not multicast, options of non-zero length,
/// no source link-layer option from `::`, an NS from `::` only to a
/// solicited-node group, no S flag in an NA to multicast. The message must
/// not be fragmented; extension headers before it are walked. `None` for
/// anything else.
pub fn parse_ndisc(ip6_packet: &[u8]) -> Option<NeighMsg> {
    let p = Ipv6Packet::new_checked(ip6_packet).ok()?;
    let ip = Ipv6Repr::parse(&p).ok()?;
    if ip.hop_limit != ND_HOP_LIMIT {
        return None;
    }
    let ext = p.ext_headers().ok()?;
    if ext.fragment.is_some() || ext.upper_protocol != IpProtocol::Icmpv6 {
        return None;
    }
    let icmp = Icmpv6Packet::new_checked(ip6_packet.get(ext.upper_offset..p.total_len())?).ok()?;
    let (src, dst) = (ip.src_addr, ip.dst_addr);
    match Icmpv6Repr::parse(&icmp, src, dst).ok()? {
        Icmpv6Repr::NeighborSolicit {
            target_addr,
            lladdr,
        } => {
            if src.is_unspecified() && solicited_node(target_addr) != dst {
                return None;
            }
            if src.is_multicast() {
                return None;
            }
            Some(NeighMsg::NeighSolicit {
                src_ip: src,
                src_mac: lladdr,
                target: target_addr,
            })
        }
        Icmpv6Repr::NeighborAdvert {
            flags,
            target_addr,
            lladdr,
        } => {
            if src.is_unspecified() || src.is_multicast() {
                return None;
            }
            Some(NeighMsg::NeighAdvert {
                src_ip: src,
                target: target_addr,
                target_mac: lladdr,
                solicited: flags.solicited(),
                override_: flags.override_(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames are recycled: a buffer that still holds a VLAN TPID at offset
    /// 12 from its previous packet must not confuse the builders (found by
    /// the pipeline fuzz target: it used to read past the 14-byte header).
    #[test]
    fn builders_ignore_stale_bytes_in_a_recycled_buffer() {
        let mut out = [0u8; 128];
        for b in out.iter_mut() {
            *b = 0x81;
        }
        out[12] = 0x81;
        out[13] = 0x00;
        let n = arp_request(
            &mut out,
            [2, 0, 0, 0, 0, 1],
            "198.18.1.1".parse().unwrap(),
            "198.18.1.2".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(&out[12..14], &[0x08, 0x06]);
        assert!(matches!(
            parse_arp(&out[14..n]),
            Some(NeighMsg::ArpRequest { .. })
        ));
        let mut out = [0x81u8; 128];
        out[12] = 0x88;
        out[13] = 0xa8;
        let n = neighbor_solicit(
            &mut out,
            [2, 0, 0, 0, 0, 1],
            "fe80::1".parse().unwrap(),
            "2001:2::1".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(&out[12..14], &[0x86, 0xdd]);
        assert!(n > 54);
    }
    use proptest::prelude::*;

    const M1: Mac = [0x02, 0, 0, 0, 0, 0x01];
    const M2: Mac = [0x02, 0, 0, 0, 0, 0x02];
    const A1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const A2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const S6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
    const T6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 1, 0, 0xaabb, 0xccdd);

    /// Independent one's-complement sum over the pseudo-header and message.
    fn icmp6_sum_ok(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> bool {
        let mut v = Vec::new();
        v.extend_from_slice(&src.octets());
        v.extend_from_slice(&dst.octets());
        v.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 58]);
        v.extend_from_slice(msg);
        if v.len() % 2 == 1 {
            v.push(0);
        }
        let mut s: u32 = v
            .chunks(2)
            .map(|c| u32::from(c[0]) << 8 | u32::from(c[1]))
            .sum();
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        s == 0xffff
    }

    #[test]
    fn arp_request_bytes() {
        let mut out = [0u8; 64];
        let n = arp_request(&mut out, M1, A1, A2).unwrap();
        let expect: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06, // eth
            0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // htype ptype hlen plen op=1
            0x02, 0, 0, 0, 0, 0x01, 198, 18, 0, 1, // sender
            0, 0, 0, 0, 0, 0, 198, 18, 0, 2, // target
        ];
        assert_eq!(&out[..n], &expect);
        assert_eq!(
            parse_arp(&out[14..n]),
            Some(NeighMsg::ArpRequest {
                sender_mac: M1,
                sender_ip: A1,
                target_ip: A2
            })
        );
        assert_eq!(arp_request(&mut out[..41], M1, A1, A2), None);
    }

    #[test]
    fn arp_reply_and_gratuitous() {
        let mut out = [0u8; 60];
        let n = arp_reply(&mut out, M1, A1, M2, A2).unwrap();
        assert_eq!(n, 42);
        assert_eq!(&out[..6], &M2);
        assert_eq!(&out[20..22], &[0, 2]);
        assert_eq!(&out[32..42], &[0x02, 0, 0, 0, 0, 0x02, 198, 18, 0, 2]);
        let msg = parse_arp(&out[14..60]).unwrap(); // with padding
        assert_eq!(
            msg,
            NeighMsg::ArpReply {
                sender_mac: M1,
                sender_ip: A1,
                target_ip: A2
            }
        );
        assert_eq!(msg.learned(), Some((IpAddr::V4(A1), M1)));
        let n = gratuitous_arp(&mut out, M2, A2).unwrap();
        assert_eq!(&out[..6], &[0xff; 6]);
        assert_eq!(&out[20..22], &[0, 1]);
        assert_eq!(&out[28..32], &out[38..42]);
        assert_eq!(
            parse_arp(&out[14..n]),
            Some(NeighMsg::ArpRequest {
                sender_mac: M2,
                sender_ip: A2,
                target_ip: A2
            })
        );
    }

    #[test]
    fn arp_rejects() {
        let mut out = [0u8; 42];
        arp_request(&mut out, [0x01, 0, 0x5e, 0, 0, 1], A1, A2).unwrap();
        assert_eq!(parse_arp(&out[14..]), None); // multicast sender MAC
        arp_request(&mut out, M1, Ipv4Addr::BROADCAST, A2).unwrap();
        assert_eq!(parse_arp(&out[14..]), None);
        arp_request(&mut out, M1, A1, A2).unwrap();
        assert_eq!(parse_arp(&out[14..41]), None); // truncated
        out[21] = 3; // RARP request
        assert_eq!(parse_arp(&out[14..]), None);
        // A probe (sender 0.0.0.0) parses but teaches nothing.
        arp_request(&mut out, M1, Ipv4Addr::UNSPECIFIED, A2).unwrap();
        assert_eq!(parse_arp(&out[14..]).unwrap().learned(), None);
    }

    #[test]
    fn neighbor_solicit_bytes() {
        let mut out = [0u8; 128];
        let n = neighbor_solicit(&mut out, M1, S6, T6).unwrap();
        assert_eq!(n, 86);
        let group: Ipv6Addr = "ff02::1:ffbb:ccdd".parse().unwrap();
        assert_eq!(solicited_node(T6), group);
        let mut expect = vec![
            0x33, 0x33, 0xff, 0xbb, 0xcc, 0xdd, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd,
        ];
        expect.extend_from_slice(&[0x60, 0, 0, 0, 0, 32, 58, 255]);
        expect.extend_from_slice(&S6.octets());
        expect.extend_from_slice(&group.octets());
        expect.extend_from_slice(&[135, 0, out[56], out[57], 0, 0, 0, 0]);
        expect.extend_from_slice(&T6.octets());
        expect.extend_from_slice(&[1, 1, 0x02, 0, 0, 0, 0, 0x01]);
        assert_eq!(&out[..n], &expect[..]);
        assert!(icmp6_sum_ok(S6, group, &out[54..n]));
        let msg = parse_ndisc(&out[14..n]).unwrap();
        assert_eq!(
            msg,
            NeighMsg::NeighSolicit {
                src_ip: S6,
                src_mac: Some(M1),
                target: T6
            }
        );
        // DAD: no option, from ::.
        let n = neighbor_solicit(&mut out, M1, Ipv6Addr::UNSPECIFIED, T6).unwrap();
        assert_eq!(n, ND_FRAME_LEN_NO_OPTION);
        let msg = parse_ndisc(&out[14..n]).unwrap();
        assert_eq!(
            msg,
            NeighMsg::NeighSolicit {
                src_ip: Ipv6Addr::UNSPECIFIED,
                src_mac: None,
                target: T6
            }
        );
        assert_eq!(msg.learned(), None);
    }

    #[test]
    fn neighbor_advert_bytes() {
        let mut out = [0u8; 128];
        let n = neighbor_advert(&mut out, M1, S6, M2, T6, S6, true, true).unwrap();
        assert_eq!(n, 86);
        assert_eq!(
            &out[..14],
            &[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd]
        );
        assert_eq!(out[21], 255);
        assert_eq!(out[54], 136);
        assert_eq!(&out[58..62], &[0xe0, 0, 0, 0]); // R S O
        assert_eq!(&out[78..86], &[2, 1, 0x02, 0, 0, 0, 0, 0x01]);
        assert!(icmp6_sum_ok(S6, T6, &out[54..n]));
        let msg = parse_ndisc(&out[14..n]).unwrap();
        assert_eq!(
            msg,
            NeighMsg::NeighAdvert {
                src_ip: S6,
                target: S6,
                target_mac: Some(M1),
                solicited: true,
                override_: true
            }
        );
        assert_eq!(msg.learned(), Some((IpAddr::V6(S6), M1)));
        // Solicited to multicast is refused.
        assert_eq!(
            neighbor_advert(&mut out, M1, S6, M2, ALL_NODES, S6, true, false),
            None
        );
        let n = unsolicited_na(&mut out, M1, S6).unwrap();
        assert_eq!(&out[..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(&out[38..54], &ALL_NODES.octets());
        assert_eq!(out[58], 0xa0); // R O
        assert_eq!(
            parse_ndisc(&out[14..n]),
            Some(NeighMsg::NeighAdvert {
                src_ip: S6,
                target: S6,
                target_mac: Some(M1),
                solicited: false,
                override_: true
            })
        );
        assert_eq!(unsolicited_na(&mut out[..85], M1, S6), None);
    }

    #[test]
    fn ndisc_rejects() {
        let mut out = [0u8; 128];
        let n = neighbor_solicit(&mut out, M1, S6, T6).unwrap();
        let good = out[14..n].to_vec();
        assert!(parse_ndisc(&good).is_some());
        let mut hop = good.clone();
        hop[7] = 254;
        assert_eq!(parse_ndisc(&hop), None);
        let mut sum = good.clone();
        sum[60] ^= 1;
        assert_eq!(parse_ndisc(&sum), None);
        assert_eq!(parse_ndisc(&good[..good.len() - 1]), None);
        // NS from :: to a unicast address.
        let n = neighbor_solicit(&mut out, M1, Ipv6Addr::UNSPECIFIED, T6).unwrap();
        let mut dad = out[14..n].to_vec();
        let old = Ipv6Packet::new_unchecked(&dad[..]).dst_addr();
        Ipv6Packet::new_unchecked(&mut dad[..]).set_dst_addr(S6);
        Icmpv6Packet::new_unchecked(&mut dad[40..]).update_checksum_for_addr(old, S6);
        assert!(Icmpv6Packet::new_unchecked(&dad[40..]).verify_checksum(Ipv6Addr::UNSPECIFIED, S6));
        assert_eq!(parse_ndisc(&dad), None);
        // An echo request is not ND.
        let mut echo = good.clone();
        echo[40] = 128;
        Icmpv6Packet::new_unchecked(&mut echo[40..]).fill_checksum(S6, solicited_node(T6));
        assert_eq!(parse_ndisc(&echo), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_arp(&bytes);
            let _ = parse_ndisc(&bytes);
        }

        #[test]
        fn builders_round_trip(m1 in any::<[u8; 6]>(), a in any::<u32>(), b in any::<u32>(), s in any::<u128>(), t in any::<u128>(), sol in any::<bool>(), ovr in any::<bool>()) {
            let m1 = { let mut m = m1; m[0] &= 0xfe; m };
            let (a, b) = (Ipv4Addr::from(a), Ipv4Addr::from(b));
            let mut out = [0u8; 128];
            let n = arp_request(&mut out, m1, a, b).unwrap();
            if !a.is_multicast() && !a.is_broadcast() {
                prop_assert_eq!(parse_arp(&out[14..n]), Some(NeighMsg::ArpRequest { sender_mac: m1, sender_ip: a, target_ip: b }));
            }
            let (s, t) = (Ipv6Addr::from(s), Ipv6Addr::from(t));
            let n = neighbor_solicit(&mut out, m1, s, t).unwrap();
            let parsed = parse_ndisc(&out[14..n]);
            if !t.is_multicast() && !s.is_multicast() {
                let mac = (!s.is_unspecified()).then_some(m1);
                prop_assert_eq!(parsed, Some(NeighMsg::NeighSolicit { src_ip: s, src_mac: mac, target: t }));
            } else {
                prop_assert_eq!(parsed, None);
            }
            if let Some(n) = neighbor_advert(&mut out, m1, s, M2, S6, t, sol, ovr) {
                let parsed = parse_ndisc(&out[14..n]);
                if !t.is_multicast() && !s.is_multicast() && !s.is_unspecified() {
                    prop_assert_eq!(parsed, Some(NeighMsg::NeighAdvert { src_ip: s, target: t, target_mac: Some(m1), solicited: sol, override_: ovr }));
                } else {
                    prop_assert_eq!(parsed, None);
                }
            }
        }
    }
}
