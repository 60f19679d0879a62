//! ICMP errors a router sends (RFC 792, RFC 1812 §4.3.2, RFC 4443 §2.4) and
//! echo replies turned around in place.
//!
//! `may_send_*` decide whether an error may be sent about a packet at all;
//! `build_*` write the complete IP packet of the error into a caller buffer.
//! The error quotes as much of the offending packet as keeps the error
//! within 576 bytes for IPv4 (RFC 1812 §4.3.2.3) and 1280 bytes for IPv6
//! (RFC 4443 §2.4(c)). Rate limiting is [`super::ratelimit`]'s job.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::checksum;
use crate::wire::icmpv4::{
    self, Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv4TimeExceeded,
};
use crate::wire::icmpv6::{
    self, Icmpv6DstUnreachable, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, Icmpv6TimeExceeded,
};
use crate::wire::ipv4::{self, Ipv4Options, Ipv4Packet, Ipv4Repr};
use crate::wire::ipv6::{self, Ipv6Packet, Ipv6Repr};
use crate::wire::IpProtocol;

use super::martian::martian_src_v4;

/// TTL and hop limit of the packets built here (Linux's default).
pub const REPLY_TTL: u8 = 64;
/// DSCP of ICMPv4 errors: TOS 0xc0, "internetwork control" (CS6), as Linux
/// sends them (RFC 1812 §4.3.2.5 lets routers pick precedence 6 or 7).
pub const ERROR_DSCP: u8 = 0xc0 >> 2;

/// The ICMPv4 errors the forwarding path sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmp4Error {
    /// Type 11 code 0: TTL reached 0 in transit.
    TimeExceeded,
    /// Type 3 code 0: no route.
    NetUnreachable,
    /// Type 3 code 1: the next hop or host did not answer ARP.
    HostUnreachable,
    /// Type 3 code 2.
    ProtocolUnreachable,
    /// Type 3 code 3.
    PortUnreachable,
    /// Type 3 code 4 with the next-hop MTU (RFC 1191).
    FragNeeded { mtu: u16 },
    /// Type 3 code 13: communication administratively prohibited (RFC 1812
    /// §5.2.7.1), the packet filter's `reject`.
    AdminProhibited,
}

/// The ICMPv6 errors the forwarding path sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmp6Error {
    /// Type 3 code 0.
    HopLimitExceeded,
    /// Type 1 code 0: no route to destination.
    NoRoute,
    /// Type 1 code 3: neighbor discovery failed.
    AddressUnreachable,
    /// Type 1 code 4.
    PortUnreachable,
    /// Type 2 with the next-hop MTU.
    PacketTooBig { mtu: u32 },
    /// Type 1 code 1: communication administratively prohibited.
    AdminProhibited,
}

impl core::fmt::Display for Icmp4Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Icmp4Error::TimeExceeded => f.write_str("time-exceeded"),
            Icmp4Error::NetUnreachable => f.write_str("net-unreachable"),
            Icmp4Error::HostUnreachable => f.write_str("host-unreachable"),
            Icmp4Error::ProtocolUnreachable => f.write_str("protocol-unreachable"),
            Icmp4Error::PortUnreachable => f.write_str("port-unreachable"),
            Icmp4Error::FragNeeded { mtu } => write!(f, "frag-needed mtu={mtu}"),
            Icmp4Error::AdminProhibited => f.write_str("admin-prohibited"),
        }
    }
}

impl core::fmt::Display for Icmp6Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Icmp6Error::HopLimitExceeded => f.write_str("hop-limit-exceeded"),
            Icmp6Error::NoRoute => f.write_str("no-route"),
            Icmp6Error::AddressUnreachable => f.write_str("address-unreachable"),
            Icmp6Error::PortUnreachable => f.write_str("port-unreachable"),
            Icmp6Error::PacketTooBig { mtu } => write!(f, "packet-too-big mtu={mtu}"),
            Icmp6Error::AdminProhibited => f.write_str("admin-prohibited"),
        }
    }
}

/// True for ICMPv4 types that are errors, or that we do not know and
/// therefore treat as errors (as Linux does for types above 18): an error
/// is never answered with an error (RFC 1812 §4.3.2.7).
fn icmpv4_type_is_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12) || t > 18
}

/// May an ICMPv4 error be sent about `orig_ip` (which starts at its IPv4
/// header)? `l2_multi_or_broadcast`: the frame's destination MAC was
/// multicast or broadcast. RFC 1812 §4.3.2.7: not about ICMP errors (or
/// when the ICMP header is truncated), non-first fragments, packets to
/// broadcast or multicast, packets from 0/8, 127/8, multicast, broadcast or
/// class E sources, link-layer multicast/broadcast frames, or anything whose
/// header does not parse.
pub fn may_send_v4(orig_ip: &[u8], l2_multi_or_broadcast: bool) -> bool {
    if l2_multi_or_broadcast {
        return false;
    }
    let Some(p) = v4_header(orig_ip) else {
        return false;
    };
    if p.frag_offset_units() != 0 {
        return false;
    }
    let dst = p.dst_addr();
    if dst.is_broadcast() || dst.is_multicast() || martian_src_v4(p.src_addr()) {
        return false;
    }
    if p.protocol() == IpProtocol::Icmp {
        let hl = p.header_len();
        let end = usize::from(p.total_len()).min(orig_ip.len());
        let icmp = orig_ip.get(hl..end).unwrap_or(&[]);
        if icmp.len() < icmpv4::HEADER_LEN || icmpv4_type_is_error(icmp[0]) {
            return false;
        }
    }
    true
}

/// A view of an IPv4 header that may have been cut short after its header:
/// version 4, IHL valid and the whole header present, total length not
/// below the header length.
fn v4_header(ip: &[u8]) -> Option<Ipv4Packet<&[u8]>> {
    if ip.len() < ipv4::HEADER_LEN {
        return None;
    }
    let p = Ipv4Packet::new_unchecked(ip);
    let hl = p.header_len();
    if p.version() != 4 || hl < ipv4::HEADER_LEN || hl > ip.len() || usize::from(p.total_len()) < hl
    {
        return None;
    }
    Some(p)
}

/// Like [`v4_header`] for IPv6: version 6 and the fixed header present.
fn v6_header(ip: &[u8]) -> Option<Ipv6Packet<&[u8]>> {
    if ip.len() < ipv6::HEADER_LEN {
        return None;
    }
    let p = Ipv6Packet::new_unchecked(ip);
    (p.version() == 6).then_some(p)
}

/// Builds the ICMPv4 error `kind` about `orig_ip` from `from`, IP ident 0;
/// see [`build_v4_with_ident`]. Ident 0 is fine for these packets: they are
/// at most 576 bytes, which every IPv4 link carries unfragmented.
pub fn build_v4(out: &mut [u8], from: Ipv4Addr, kind: Icmp4Error, orig_ip: &[u8]) -> Option<usize> {
    build_v4_with_ident(out, from, kind, orig_ip, 0)
}

/// Writes a complete IPv4 packet into `out`: a 20-byte header (TTL 64, DF
/// clear, TOS 0xc0, ident `ident`, to the original source) and the ICMP
/// error, quoting the original from its IPv4 header for as many bytes as
/// keep the datagram within 576 bytes, and never more than the original's
/// total length or `orig_ip.len()` (a caller may pass a cut copy). Returns
/// the length written; `None` if `out` is too small or the original's
/// header does not parse (`may_send_v4` is the caller's to check first).
pub fn build_v4_with_ident(
    out: &mut [u8],
    from: Ipv4Addr,
    kind: Icmp4Error,
    orig_ip: &[u8],
    ident: u16,
) -> Option<usize> {
    let p = v4_header(orig_ip)?;
    let avail = usize::from(p.total_len()).min(orig_ip.len());
    let quote = &orig_ip[..avail.min(icmpv4::MAX_ERROR_DATA_LEN)];
    let repr = match kind {
        Icmp4Error::TimeExceeded => Icmpv4Repr::TimeExceeded {
            reason: Icmpv4TimeExceeded::TtlExpired,
            data: quote,
        },
        _ => {
            let (reason, next_hop_mtu) = match kind {
                Icmp4Error::NetUnreachable => (Icmpv4DstUnreachable::NetUnreachable, 0),
                Icmp4Error::HostUnreachable => (Icmpv4DstUnreachable::HostUnreachable, 0),
                Icmp4Error::ProtocolUnreachable => (Icmpv4DstUnreachable::ProtoUnreachable, 0),
                Icmp4Error::PortUnreachable => (Icmpv4DstUnreachable::PortUnreachable, 0),
                Icmp4Error::FragNeeded { mtu } => (Icmpv4DstUnreachable::FragRequired, mtu),
                Icmp4Error::AdminProhibited => (Icmpv4DstUnreachable::CommProhibited, 0),
                Icmp4Error::TimeExceeded => return None,
            };
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                data: quote,
            }
        }
    };
    let icmp_len = repr.buffer_len();
    let total = ipv4::HEADER_LEN + icmp_len;
    let buf = out.get_mut(..total)?;
    let ip = Ipv4Repr {
        src_addr: from,
        dst_addr: p.src_addr(),
        protocol: IpProtocol::Icmp,
        payload_len: icmp_len,
        ttl: REPLY_TTL,
        dscp: ERROR_DSCP,
        ecn: 0,
        ident,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        options: Ipv4Options::EMPTY,
    };
    let (hdr, icmp) = buf.split_at_mut(ipv4::HEADER_LEN);
    ip.emit(&mut Ipv4Packet::new_unchecked(hdr));
    repr.emit(&mut Icmpv4Packet::new_unchecked(icmp)).ok()?;
    Some(total)
}

/// May an ICMPv6 error `kind` be sent about `orig_ip` (from its IPv6
/// header)? RFC 4443 §2.4(e): not about ICMPv6 errors (type < 128) or
/// redirects (137), and not when the destination is multicast or the frame
/// came to a link-layer multicast address, except Packet Too Big (which
/// path MTU discovery for multicast needs). Never when the source is
/// unspecified, multicast or loopback, for non-first fragments (no upper
/// header to quote usefully), or when the extension-header chain does not
/// walk.
pub fn may_send_v6(orig_ip: &[u8], l2_multicast: bool, kind: Icmp6Error) -> bool {
    let Ok(p) = Ipv6Packet::new_checked(orig_ip) else {
        return false;
    };
    if p.version() != 6 {
        return false;
    }
    let src = p.src_addr();
    if src.is_unspecified() || src.is_multicast() || src.is_loopback() {
        return false;
    }
    let too_big = matches!(kind, Icmp6Error::PacketTooBig { .. });
    if !too_big && (l2_multicast || p.dst_addr().is_multicast()) {
        return false;
    }
    let Ok(ext) = p.ext_headers() else {
        return false;
    };
    if ext.is_non_first_fragment() {
        return false;
    }
    if ext.upper_protocol == IpProtocol::Icmpv6 {
        match orig_ip.get(ext.upper_offset..p.total_len()) {
            Some(icmp) if icmp.len() >= icmpv6::HEADER_LEN => {
                let t = icmp[0];
                if t < 128 || t == u8::from(Icmpv6Message::Redirect) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// Writes a complete IPv6 packet into `out`: the fixed header (hop limit 64,
/// traffic class 0, to the original source) and the ICMPv6 error with its
/// pseudo-header checksum, quoting the original from its IPv6 header as far
/// as keeps the packet within 1280 bytes (and its payload length and
/// `orig_ip.len()` allow). `None` if `out` is too small or the original's
/// fixed header is not there.
pub fn build_v6(out: &mut [u8], from: Ipv6Addr, kind: Icmp6Error, orig_ip: &[u8]) -> Option<usize> {
    let p = v6_header(orig_ip)?;
    let avail = p.total_len().min(orig_ip.len());
    let data = &orig_ip[..avail.min(icmpv6::MAX_ERROR_DATA_LEN)];
    let repr = match kind {
        Icmp6Error::HopLimitExceeded => Icmpv6Repr::TimeExceeded {
            reason: Icmpv6TimeExceeded::HopLimitExceeded,
            data,
        },
        Icmp6Error::NoRoute => Icmpv6Repr::DstUnreachable {
            reason: Icmpv6DstUnreachable::NoRoute,
            data,
        },
        Icmp6Error::AddressUnreachable => Icmpv6Repr::DstUnreachable {
            reason: Icmpv6DstUnreachable::AddrUnreachable,
            data,
        },
        Icmp6Error::PortUnreachable => Icmpv6Repr::DstUnreachable {
            reason: Icmpv6DstUnreachable::PortUnreachable,
            data,
        },
        Icmp6Error::PacketTooBig { mtu } => Icmpv6Repr::PktTooBig { mtu, data },
        Icmp6Error::AdminProhibited => Icmpv6Repr::DstUnreachable {
            reason: Icmpv6DstUnreachable::AdminProhibit,
            data,
        },
    };
    let icmp_len = repr.buffer_len();
    let total = ipv6::HEADER_LEN + icmp_len;
    let buf = out.get_mut(..total)?;
    let dst = p.src_addr();
    let ip = Ipv6Repr {
        src_addr: from,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp_len,
        hop_limit: REPLY_TTL,
        traffic_class: 0,
        flow_label: 0,
    };
    let (hdr, icmp) = buf.split_at_mut(ipv6::HEADER_LEN);
    ip.emit(&mut Ipv6Packet::new_unchecked(hdr));
    repr.emit(&mut Icmpv6Packet::new_unchecked(icmp), from, dst)
        .ok()?;
    Some(total)
}

/// Turns an ICMPv4 echo request addressed to us (`ip` from its IPv4 header)
/// into the echo reply in place: addresses swapped, type 0, TTL 64, both
/// checksums patched incrementally (the swap leaves the header sum as it
/// is). Options, if any, are kept as they are. Returns false and changes
/// nothing unless it is a well-formed, unfragmented echo request (code 0)
/// with correct header and ICMP checksums, from a source a reply may go to
/// (not 0/8, loopback, multicast, broadcast, class E) and not to a
/// multicast or broadcast address.
pub fn echo_reply_v4_in_place(ip: &mut [u8]) -> bool {
    let Ok(p) = Ipv4Packet::new_checked(&*ip) else {
        return false;
    };
    if p.version() != 4
        || !p.verify_checksum()
        || p.protocol() != IpProtocol::Icmp
        || p.is_fragment()
    {
        return false;
    }
    let (src, dst) = (p.src_addr(), p.dst_addr());
    if martian_src_v4(src) || dst.is_multicast() || dst.is_broadcast() {
        return false;
    }
    let Ok(icmp) = Icmpv4Packet::new_checked(p.payload()) else {
        return false;
    };
    if icmp.msg_type() != Icmpv4Message::EchoRequest
        || icmp.msg_code() != 0
        || !icmp.verify_checksum()
    {
        return false;
    }
    let mut p = Ipv4Packet::new_unchecked(&mut *ip);
    p.set_src_addr(dst);
    p.set_dst_addr(src);
    let proto = u8::from(IpProtocol::Icmp);
    let old = u16::from_be_bytes([p.ttl(), proto]);
    let new = u16::from_be_bytes([REPLY_TTL, proto]);
    let c = checksum::update16(p.checksum(), old, new);
    p.set_ttl(REPLY_TTL);
    p.set_checksum(c);
    let mut icmp = Icmpv4Packet::new_unchecked(p.payload_mut());
    let old = u16::from_be_bytes([u8::from(Icmpv4Message::EchoRequest), 0]);
    let new = u16::from_be_bytes([u8::from(Icmpv4Message::EchoReply), 0]);
    icmp.set_msg_type(Icmpv4Message::EchoReply);
    icmp.set_checksum(checksum::update16(icmp.checksum(), old, new));
    true
}

/// Turns an ICMPv6 echo request addressed to us into the reply in place:
/// addresses swapped (the pseudo-header sum does not change), type 129, hop
/// limit 64, checksum patched for the type. Returns false and changes
/// nothing unless it is a well-formed echo request (code 0, checksum right)
/// directly after the fixed header (requests with extension headers are
/// left to a slower path: a routing header would have to be reversed), from
/// a unicast, non-loopback source to a unicast destination.
pub fn echo_reply_v6_in_place(ip: &mut [u8]) -> bool {
    let Ok(p) = Ipv6Packet::new_checked(&*ip) else {
        return false;
    };
    if p.version() != 6 || p.next_header() != IpProtocol::Icmpv6 {
        return false;
    }
    let (src, dst) = (p.src_addr(), p.dst_addr());
    if src.is_unspecified() || src.is_multicast() || src.is_loopback() || dst.is_multicast() {
        return false;
    }
    let Ok(icmp) = Icmpv6Packet::new_checked(p.payload()) else {
        return false;
    };
    if icmp.msg_type() != Icmpv6Message::EchoRequest
        || icmp.msg_code() != 0
        || !icmp.verify_checksum(src, dst)
    {
        return false;
    }
    let mut p = Ipv6Packet::new_unchecked(&mut *ip);
    p.set_src_addr(dst);
    p.set_dst_addr(src);
    p.set_hop_limit(REPLY_TTL);
    let mut icmp = Icmpv6Packet::new_unchecked(p.payload_mut());
    let old = u16::from_be_bytes([u8::from(Icmpv6Message::EchoRequest), 0]);
    let new = u16::from_be_bytes([u8::from(Icmpv6Message::EchoReply), 0]);
    icmp.set_msg_type(Icmpv6Message::EchoReply);
    icmp.set_checksum(checksum::update16(icmp.checksum(), old, new));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::ChecksumMode;
    use proptest::prelude::*;

    const ME4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const H4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
    const D4: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 9);
    const ME6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
    const H6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 2);
    const D6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 2, 0, 0, 0, 9);

    /// An IPv4 packet with `payload`, checksummed.
    fn v4(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: IpProtocol,
        payload: &[u8],
        frag_units: u16,
    ) -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: proto,
            payload_len: payload.len(),
            ttl: 1,
            dscp: 0,
            ecn: 0,
            ident: 0x1234,
            dont_frag: true,
            more_frags: false,
            frag_offset: frag_units * 8,
            options: Ipv4Options::EMPTY,
        };
        let mut b = vec![0; repr.buffer_len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
        b[20..].copy_from_slice(payload);
        b
    }

    fn icmp4(t: u8, code: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![t, code, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(body);
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        m
    }

    fn udp_payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| i as u8).collect()
    }

    #[test]
    fn may_send_v4_rules() {
        let udp = v4(H4, D4, IpProtocol::Udp, &udp_payload(100), 0);
        assert!(may_send_v4(&udp, false));
        assert!(!may_send_v4(&udp, true));
        assert!(!may_send_v4(&udp[..19], false));
        let mut bad_ver = udp.clone();
        bad_ver[0] = 0x65;
        assert!(!may_send_v4(&bad_ver, false));
        // Non-first fragment; first fragment (MF, offset 0) is fine.
        assert!(!may_send_v4(
            &v4(H4, D4, IpProtocol::Udp, &udp_payload(8), 3),
            false
        ));
        let mut first = udp.clone();
        first[6] |= 0x20;
        assert!(may_send_v4(&first, false));
        for dst in [
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(224, 0, 0, 5),
            Ipv4Addr::new(239, 1, 1, 1),
        ] {
            assert!(
                !may_send_v4(&v4(H4, dst, IpProtocol::Udp, &[0; 8], 0), false),
                "{dst}"
            );
        }
        for src in [
            "0.0.0.0",
            "0.9.9.9",
            "127.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
        ] {
            let src: Ipv4Addr = src.parse().unwrap();
            assert!(
                !may_send_v4(&v4(src, D4, IpProtocol::Udp, &[0; 8], 0), false),
                "{src}"
            );
        }
        // ICMP: queries yes, errors and unknown types no, truncated no.
        for (t, ok) in [
            (0, true),
            (8, true),
            (13, true),
            (14, true),
            (15, true),
            (16, true),
            (3, false),
            (4, false),
            (5, false),
            (11, false),
            (12, false),
            (40, false),
        ] {
            let pkt = v4(H4, D4, IpProtocol::Icmp, &icmp4(t, 0, &[0; 28]), 0);
            assert_eq!(may_send_v4(&pkt, false), ok, "type {t}");
        }
        let short = v4(H4, D4, IpProtocol::Icmp, &[8, 0, 0, 0], 0);
        assert!(!may_send_v4(&short, false));
    }

    #[test]
    fn build_v4_time_exceeded_hand_checked() {
        let orig = v4(H4, D4, IpProtocol::Udp, &udp_payload(12), 0);
        let mut out = [0u8; 600];
        let n = build_v4(&mut out, ME4, Icmp4Error::TimeExceeded, &orig).unwrap();
        assert_eq!(n, 20 + 8 + 32);
        let expect_hdr: [u8; 20] = [
            0x45, 0xc0, 0, 60, 0, 0, 0, 0, 64, 1, 0, 0, 198, 18, 0, 1, 198, 18, 1, 2,
        ];
        let mut hdr = out[..20].to_vec();
        hdr[10] = 0;
        hdr[11] = 0;
        assert_eq!(hdr, expect_hdr);
        assert_eq!(checksum::data(&out[..20]), 0xffff);
        assert_eq!(&out[20..24], &[11, 0, out[22], out[23]]);
        assert_eq!(&out[24..28], &[0; 4]);
        assert_eq!(&out[28..n], &orig[..]);
        assert_eq!(checksum::data(&out[20..n]), 0xffff);
    }

    #[test]
    fn build_v4_quotes_to_576_and_carries_mtu() {
        let orig = v4(H4, D4, IpProtocol::Tcp, &udp_payload(1480), 0);
        let mut out = [0u8; 2000];
        let n = build_v4(&mut out, ME4, Icmp4Error::FragNeeded { mtu: 1400 }, &orig).unwrap();
        assert_eq!(n, 576);
        let p = Ipv4Packet::new_checked(&out[..n]).unwrap();
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(
            (r.src_addr, r.dst_addr, r.ttl, r.dont_frag),
            (ME4, H4, 64, false)
        );
        assert_eq!(p.dscp(), 0x30);
        let icmp = Icmpv4Packet::new_checked(p.payload()).unwrap();
        match Icmpv4Repr::parse(&icmp).unwrap() {
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                data,
            } => {
                assert_eq!(reason, Icmpv4DstUnreachable::FragRequired);
                assert_eq!(next_hop_mtu, 1400);
                assert_eq!(data, &orig[..548]);
            }
            other => panic!("{other:?}"),
        }
        // Too small a buffer, by one byte.
        assert_eq!(
            build_v4(&mut out[..575], ME4, Icmp4Error::NetUnreachable, &orig),
            None
        );
        // Codes.
        for (k, code) in [
            (Icmp4Error::NetUnreachable, 0),
            (Icmp4Error::HostUnreachable, 1),
            (Icmp4Error::ProtocolUnreachable, 2),
            (Icmp4Error::PortUnreachable, 3),
        ] {
            let n = build_v4(&mut out, ME4, k, &orig).unwrap();
            assert_eq!((out[20], out[21]), (3, code));
            assert_eq!(checksum::data(&out[20..n]), 0xffff);
        }
    }

    #[test]
    fn build_v4_uses_total_length_not_trailing_padding() {
        let mut orig = v4(H4, D4, IpProtocol::Udp, &udp_payload(10), 0);
        orig.extend_from_slice(&[0xee; 16]); // Ethernet padding
        let mut out = [0u8; 600];
        let n = build_v4(&mut out, ME4, Icmp4Error::PortUnreachable, &orig).unwrap();
        assert_eq!(n, 28 + 30);
        // A cut copy quotes what is there.
        let n = build_v4(&mut out, ME4, Icmp4Error::PortUnreachable, &orig[..24]).unwrap();
        assert_eq!(n, 28 + 24);
        assert_eq!(
            build_v4(&mut out, ME4, Icmp4Error::PortUnreachable, &orig[..19]),
            None
        );
    }

    fn v6(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, payload: &[u8]) -> Vec<u8> {
        let repr = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::from(nh),
            payload_len: payload.len(),
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut b = vec![0; repr.buffer_len()];
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut b[..]));
        b[40..].copy_from_slice(payload);
        b
    }

    fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, t: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![t, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(body);
        Icmpv6Packet::new_unchecked(&mut m[..]).fill_checksum(src, dst);
        m
    }

    #[test]
    fn may_send_v6_rules() {
        let te = Icmp6Error::HopLimitExceeded;
        let ptb = Icmp6Error::PacketTooBig { mtu: 1280 };
        let udp = v6(H6, D6, 17, &[0; 16]);
        assert!(may_send_v6(&udp, false, te));
        assert!(!may_send_v6(&udp, true, te));
        assert!(may_send_v6(&udp, true, ptb));
        assert!(!may_send_v6(&udp[..39], false, te));
        let mc = v6(H6, "ff0e::1".parse().unwrap(), 17, &[0; 16]);
        assert!(!may_send_v6(&mc, false, te));
        assert!(may_send_v6(&mc, true, ptb));
        for src in ["::", "::1", "ff02::1"] {
            let p = v6(src.parse().unwrap(), D6, 17, &[0; 16]);
            assert!(!may_send_v6(&p, false, te), "{src}");
            assert!(!may_send_v6(&p, false, ptb), "{src}");
        }
        for (t, ok) in [
            (1u8, false),
            (2, false),
            (3, false),
            (4, false),
            (127, false),
            (128, true),
            (129, true),
            (135, true),
            (137, false),
            (200, true),
        ] {
            let p = v6(H6, D6, 58, &icmp6(H6, D6, t, &[0; 32]));
            assert_eq!(may_send_v6(&p, false, te), ok, "type {t}");
        }
        // ICMPv6 error behind a hop-by-hop header is still found.
        let mut body = vec![58, 0, 1, 4, 0, 0, 0, 0];
        body.extend(icmp6(H6, D6, 1, &[0; 48]));
        assert!(!may_send_v6(&v6(H6, D6, 0, &body), false, te));
        // Truncated ICMPv6 header.
        assert!(!may_send_v6(&v6(H6, D6, 58, &[128, 0, 0]), false, te));
        // Fragments: first yes, non-first no.
        let first = [17, 0, 0x00, 0x01, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(may_send_v6(&v6(H6, D6, 44, &first), false, te));
        let later = [17, 0, 0x00, 0x08, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(!may_send_v6(&v6(H6, D6, 44, &later), false, te));
        // Broken chain.
        assert!(!may_send_v6(&v6(H6, D6, 0, &[17, 9, 0, 0]), false, te));
    }

    #[test]
    fn build_v6_quotes_to_1280() {
        let orig = v6(H6, D6, 17, &udp_payload(1400));
        let mut out = [0u8; 1500];
        let n = build_v6(&mut out, ME6, Icmp6Error::PacketTooBig { mtu: 1400 }, &orig).unwrap();
        assert_eq!(n, 1280);
        let p = Ipv6Packet::new_checked(&out[..n]).unwrap();
        let r = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(
            (r.src_addr, r.dst_addr, r.hop_limit, r.payload_len),
            (ME6, H6, 64, 1240)
        );
        let icmp = Icmpv6Packet::new_checked(p.payload()).unwrap();
        match Icmpv6Repr::parse(&icmp, ME6, H6).unwrap() {
            Icmpv6Repr::PktTooBig { mtu, data } => {
                assert_eq!(mtu, 1400);
                assert_eq!(data, &orig[..1232]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            build_v6(&mut out[..1279], ME6, Icmp6Error::NoRoute, &orig),
            None
        );
        let small = v6(H6, D6, 17, &udp_payload(8));
        for (k, t, c) in [
            (Icmp6Error::HopLimitExceeded, 3, 0),
            (Icmp6Error::NoRoute, 1, 0),
            (Icmp6Error::AddressUnreachable, 1, 3),
            (Icmp6Error::PortUnreachable, 1, 4),
        ] {
            let n = build_v6(&mut out, ME6, k, &small).unwrap();
            assert_eq!(n, 40 + 8 + 48);
            assert_eq!((out[40], out[41]), (t, c));
            assert_eq!(&out[48..n], &small[..]);
            assert!(Icmpv6Packet::new_unchecked(&out[40..n]).verify_checksum(ME6, H6));
        }
    }

    #[test]
    fn echo_reply_v4() {
        let req = v4(
            H4,
            ME4,
            IpProtocol::Icmp,
            &icmp4(8, 0, b"\x12\x34\x00\x01hello, ping"),
            0,
        );
        let mut pkt = req.clone();
        assert!(echo_reply_v4_in_place(&mut pkt));
        let p = Ipv4Packet::new_checked(&pkt[..]).unwrap();
        let r = Ipv4Repr::parse_with(&p, ChecksumMode::Verify).unwrap();
        assert_eq!((r.src_addr, r.dst_addr, r.ttl), (ME4, H4, 64));
        let icmp = Icmpv4Packet::new_checked(p.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.msg_type(), Icmpv4Message::EchoReply);
        assert_eq!(&pkt[24..], &req[24..]);
        // Not a request any more: refused, unchanged.
        let copy = pkt.clone();
        assert!(!echo_reply_v4_in_place(&mut pkt));
        assert_eq!(pkt, copy);
        // Bad ICMP checksum, bad header checksum, broadcast destination.
        let mut bad = req.clone();
        bad[30] ^= 1;
        assert!(!echo_reply_v4_in_place(&mut bad));
        let mut bad = req.clone();
        bad[8] = 9;
        assert!(!echo_reply_v4_in_place(&mut bad));
        let mut bc = v4(
            H4,
            Ipv4Addr::BROADCAST,
            IpProtocol::Icmp,
            &icmp4(8, 0, &[0; 8]),
            0,
        );
        assert!(!echo_reply_v4_in_place(&mut bc));
    }

    #[test]
    fn echo_reply_v4_keeps_padding_out() {
        let mut pkt = v4(H4, ME4, IpProtocol::Icmp, &icmp4(8, 0, &[0, 1, 0, 1]), 0);
        let ip_len = pkt.len();
        pkt.extend_from_slice(&[0xa5; 18]);
        assert!(echo_reply_v4_in_place(&mut pkt));
        assert_eq!(checksum::data(&pkt[20..ip_len]), 0xffff);
        assert_eq!(&pkt[ip_len..], &[0xa5; 18]);
        assert_eq!(
            Icmp4Error::FragNeeded { mtu: 1400 }.to_string(),
            "frag-needed mtu=1400"
        );
        assert_eq!(Icmp6Error::NoRoute.to_string(), "no-route");
    }

    #[test]
    fn echo_reply_v6() {
        let req = v6(
            H6,
            ME6,
            58,
            &icmp6(H6, ME6, 128, b"\x00\x07\x00\x01abcdefgh"),
        );
        let mut pkt = req.clone();
        assert!(echo_reply_v6_in_place(&mut pkt));
        let p = Ipv6Packet::new_checked(&pkt[..]).unwrap();
        assert_eq!((p.src_addr(), p.dst_addr(), p.hop_limit()), (ME6, H6, 64));
        let icmp = Icmpv6Packet::new_checked(p.payload()).unwrap();
        assert!(icmp.verify_checksum(ME6, H6));
        assert_eq!(icmp.msg_type(), Icmpv6Message::EchoReply);
        let copy = pkt.clone();
        assert!(!echo_reply_v6_in_place(&mut pkt));
        assert_eq!(pkt, copy);
        let mut bad = req.clone();
        bad[50] ^= 0x80;
        assert!(!echo_reply_v6_in_place(&mut bad));
        let mut mc = v6(
            H6,
            "ff02::1".parse().unwrap(),
            58,
            &icmp6(H6, "ff02::1".parse().unwrap(), 128, &[0; 8]),
        );
        assert!(!echo_reply_v6_in_place(&mut mc));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600), l2 in any::<bool>(), mtu in any::<u16>()) {
            let mut out = [0u8; 1500];
            let _ = may_send_v4(&bytes, l2);
            let _ = build_v4(&mut out, ME4, Icmp4Error::FragNeeded { mtu }, &bytes);
            let _ = build_v4(&mut out[..100], ME4, Icmp4Error::TimeExceeded, &bytes);
            let _ = may_send_v6(&bytes, l2, Icmp6Error::NoRoute);
            let _ = build_v6(&mut out, ME6, Icmp6Error::PacketTooBig { mtu: u32::from(mtu) }, &bytes);
            let mut b = bytes.clone();
            if !echo_reply_v4_in_place(&mut b) { prop_assert_eq!(&b, &bytes); }
            let mut b = bytes.clone();
            if !echo_reply_v6_in_place(&mut b) { prop_assert_eq!(&b, &bytes); }
        }

        #[test]
        fn built_v4_errors_parse(len in 0usize..1500, hl_words in 5u8..=15) {
            let mut orig = v4(H4, D4, IpProtocol::Udp, &udp_payload(len), 0);
            // Grow the header with NOP options to vary the header length.
            let extra = usize::from(hl_words - 5) * 4;
            orig.splice(20..20, std::iter::repeat_n(1u8, extra));
            let total = (orig.len()) as u16;
            {
                let mut p = Ipv4Packet::new_unchecked(&mut orig[..]);
                p.set_ihl(hl_words);
                p.set_total_len(total);
                p.fill_checksum();
            }
            let mut out = [0u8; 1500];
            let n = build_v4(&mut out, ME4, Icmp4Error::HostUnreachable, &orig).unwrap();
            prop_assert_eq!(n, (28 + orig.len()).min(576));
            let p = Ipv4Packet::new_checked(&out[..n]).unwrap();
            prop_assert!(Ipv4Repr::parse(&p).is_ok());
            let icmp = Icmpv4Packet::new_checked(p.payload()).unwrap();
            prop_assert!(Icmpv4Repr::parse(&icmp).is_ok());
            prop_assert_eq!(&out[28..n], &orig[..n - 28]);
        }

        #[test]
        fn echo_reply_checksums_hold_for_any_ttl(data in proptest::collection::vec(any::<u8>(), 0..200), ttl in any::<u8>()) {
            let mut body = vec![0, 1, 0, 2];
            body.extend(data);
            let mut req = v4(H4, ME4, IpProtocol::Icmp, &icmp4(8, 0, &body), 0);
            req[8] = ttl;
            Ipv4Packet::new_unchecked(&mut req[..]).fill_checksum();
            let mut pkt = req.clone();
            prop_assert!(echo_reply_v4_in_place(&mut pkt));
            prop_assert_eq!(checksum::data(&pkt[..20]), 0xffff);
            prop_assert_eq!(checksum::data(&pkt[20..]), 0xffff);
        }
    }
}
