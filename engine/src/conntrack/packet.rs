//! What connection tracking reads of an IPv4 or IPv6 packet: its tuple
//! (protocol, addresses, ports or ICMP query id), the TCP fields the window
//! check needs, the flow an ICMP error quotes, fragments.
//!
//! One bounded pass over the headers the router already validated; never
//! panics, never allocates. A packet whose transport header is cut short
//! (or an ICMP error whose quote is) comes out as [`L4::Bad`]: invalid for
//! the tracker.

use super::track::Seg;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// A flow as the tracker keys it: IPv4 addresses in the low 32 bits; for
/// ICMP queries the id is both ports; protocols without ports have 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tuple {
    /// 4 or 6.
    pub family: u8,
    pub proto: u8,
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
}

impl Tuple {
    /// The same flow seen from the other end.
    #[inline]
    pub fn reversed(&self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
        }
    }

    /// IPv4 source (host order); 0 for IPv6.
    #[inline]
    pub fn src4(&self) -> u32 {
        self.src as u32
    }

    #[inline]
    pub fn dst4(&self) -> u32 {
        self.dst as u32
    }

    pub fn src_ip(&self) -> std::net::IpAddr {
        ip(self.family, self.src)
    }

    pub fn dst_ip(&self) -> std::net::IpAddr {
        ip(self.family, self.dst)
    }
}

/// An address of `family` as `IpAddr`.
pub fn ip(family: u8, a: u128) -> std::net::IpAddr {
    if family == 6 {
        std::net::IpAddr::V6(std::net::Ipv6Addr::from(a))
    } else {
        std::net::IpAddr::V4(std::net::Ipv4Addr::from(a as u32))
    }
}

/// What follows the IP header, for the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Tcp(Seg),
    Udp,
    /// An ICMP or ICMPv6 query or reply (the id is in the tuple's ports).
    /// `request`: a type that may open an entry (echo request, ...).
    Query {
        request: bool,
    },
    /// An ICMP error quoting a packet of `inner` (as it was sent).
    Error {
        inner: Tuple,
    },
    /// Another protocol (tracked by addresses).
    Other,
    /// A fragment other than the first: no transport header.
    LaterFragment,
    /// Cut short, or a quote the tracker cannot read: invalid.
    Bad,
}

/// A packet as the tracker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtPacket {
    pub tuple: Tuple,
    pub l4: L4,
    /// Fragment identification when the packet is a fragment (first or later).
    pub frag: Option<u32>,
}

#[inline]
fn be16(b: &[u8], o: usize) -> u16 {
    match b.get(o..o + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

#[inline]
fn be32(b: &[u8], o: usize) -> u32 {
    match b.get(o..o + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

#[inline]
fn be128(b: &[u8], o: usize) -> u128 {
    match b.get(o..o + 16) {
        Some(s) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(s);
            u128::from_be_bytes(a)
        }
        None => 0,
    }
}

/// ICMPv4 types that open an entry, and their replies.
fn icmp4_query(t: u8) -> Option<bool> {
    match t {
        8 | 13 | 15 | 17 => Some(true),
        0 | 14 | 16 | 18 => Some(false),
        _ => None,
    }
}

fn icmp6_query(t: u8) -> Option<bool> {
    match t {
        128 | 139 => Some(true),
        129 | 140 => Some(false),
        _ => None,
    }
}

impl CtPacket {
    /// Parses an IP packet (IPv4 or IPv6 by its version), trimmed to its length.
    #[inline]
    pub fn parse(ip: &[u8]) -> CtPacket {
        match ip.first().map(|b| b >> 4) {
            Some(4) => parse4(ip),
            Some(6) => parse6(ip),
            _ => CtPacket {
                tuple: Tuple::default(),
                l4: L4::Bad,
                frag: None,
            },
        }
    }
}

fn parse4(ip: &[u8]) -> CtPacket {
    let mut p = CtPacket {
        tuple: Tuple {
            family: 4,
            ..Tuple::default()
        },
        l4: L4::Bad,
        frag: None,
    };
    let hl = usize::from(ip.first().copied().unwrap_or(0) & 0x0f) * 4;
    if ip.len() < 20 || hl < 20 || ip.len() < hl {
        return p;
    }
    p.tuple.proto = ip[9];
    p.tuple.src = u128::from(be32(ip, 12));
    p.tuple.dst = u128::from(be32(ip, 16));
    let fw = be16(ip, 6);
    if fw & 0x3fff != 0 {
        p.frag = Some(u32::from(be16(ip, 4)));
    }
    if fw & 0x1fff != 0 {
        p.l4 = L4::LaterFragment;
        return p;
    }
    let l4 = &ip[hl..];
    transport(&mut p, l4, false);
    p
}

fn parse6(ip: &[u8]) -> CtPacket {
    let mut p = CtPacket {
        tuple: Tuple {
            family: 6,
            ..Tuple::default()
        },
        l4: L4::Bad,
        frag: None,
    };
    if ip.len() < 40 {
        return p;
    }
    p.tuple.src = be128(ip, 8);
    p.tuple.dst = be128(ip, 24);
    let Ok(e) = crate::wire::ipv6::Ipv6Packet::new_checked(ip).and_then(|v| v.ext_headers()) else {
        return p;
    };
    p.tuple.proto = u8::from(e.upper_protocol);
    if let Some(f) = e.fragment {
        p.frag = Some(f.ident);
    }
    if e.is_non_first_fragment() {
        p.l4 = L4::LaterFragment;
        return p;
    }
    let Some(l4) = ip.get(e.upper_offset..) else {
        return p;
    };
    transport(&mut p, l4, true);
    p
}

/// Fills the ports and the L4 kind from the transport header `l4`.
fn transport(p: &mut CtPacket, l4: &[u8], v6: bool) {
    let icmp = if v6 { PROTO_ICMPV6 } else { PROTO_ICMP };
    match p.tuple.proto {
        PROTO_TCP => {
            if l4.len() < 20 {
                return;
            }
            let doff = usize::from(l4[12] >> 4) * 4;
            if doff < 20 || l4.len() < doff {
                return;
            }
            p.tuple.sport = be16(l4, 0);
            p.tuple.dport = be16(l4, 2);
            let mut s = Seg {
                flags: l4[13],
                seq: be32(l4, 4),
                ack: be32(l4, 8),
                win: be16(l4, 14),
                len: (l4.len() - doff) as u32,
                has_opts: doff > 20,
                ..Seg::default()
            };
            tcp_options(&l4[20..doff], &mut s);
            p.l4 = L4::Tcp(s);
        }
        PROTO_UDP => {
            if l4.len() < 8 {
                return;
            }
            p.tuple.sport = be16(l4, 0);
            p.tuple.dport = be16(l4, 2);
            p.l4 = L4::Udp;
        }
        x if x == icmp => {
            if l4.len() < 8 {
                return;
            }
            let ty = l4[0];
            let err = if v6 {
                ty < 128 && (1..=4).contains(&ty)
            } else {
                matches!(ty, 3 | 4 | 5 | 11 | 12)
            };
            if err {
                if let Some(inner) = quoted(&l4[8..], v6) {
                    p.l4 = L4::Error { inner };
                }
                return;
            }
            let id = be16(l4, 4);
            p.tuple.sport = id;
            p.tuple.dport = id;
            let q = if v6 { icmp6_query(ty) } else { icmp4_query(ty) };
            // Other informational types only match an entry that exists (none opens one).
            p.l4 = L4::Query {
                request: q.unwrap_or(false),
            };
        }
        _ => p.l4 = L4::Other,
    }
}

/// The flow of the packet an ICMP error quotes (its IP header and at least
/// the first 8 bytes of its transport header).
fn quoted(q: &[u8], v6: bool) -> Option<Tuple> {
    let mut t = Tuple {
        family: if v6 { 6 } else { 4 },
        ..Tuple::default()
    };
    let l4 = if v6 {
        if q.len() < 40 || q[0] >> 4 != 6 {
            return None;
        }
        t.proto = q[6];
        t.src = be128(q, 8);
        t.dst = be128(q, 24);
        // Quotes with extension headers are not walked (a quote is cut short).
        q.get(40..)?
    } else {
        let hl = usize::from(q.first()? & 0x0f) * 4;
        if q.len() < 20 || hl < 20 || q[0] >> 4 != 4 {
            return None;
        }
        if be16(q, 6) & 0x1fff != 0 {
            return None;
        }
        t.proto = q[9];
        t.src = u128::from(be32(q, 12));
        t.dst = u128::from(be32(q, 16));
        q.get(hl..)?
    };
    let icmp = if v6 { PROTO_ICMPV6 } else { PROTO_ICMP };
    match t.proto {
        PROTO_TCP | PROTO_UDP => {
            if l4.len() < 8 {
                return None;
            }
            t.sport = be16(l4, 0);
            t.dport = be16(l4, 2);
        }
        x if x == icmp => {
            if l4.len() < 8 {
                return None;
            }
            let ty = l4[0];
            // Only a query can be quoted by an error about a tracked flow.
            let q = if v6 { icmp6_query(ty) } else { icmp4_query(ty) };
            q?;
            t.sport = be16(l4, 4);
            t.dport = t.sport;
        }
        _ => {}
    }
    Some(t)
}

/// Window scale, SACK permitted and the highest SACK edge (RFC 7323, RFC 2018).
fn tcp_options(mut o: &[u8], s: &mut Seg) {
    // The common case: timestamps only (NOP, NOP, TS), nothing to learn.
    if o.len() == 12 && o[..4] == [1, 1, 8, 10] {
        return;
    }
    while let Some(&kind) = o.first() {
        match kind {
            0 => return,
            1 => {
                o = &o[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = o.get(1) else { return };
        let len = usize::from(len);
        if len < 2 || len > o.len() {
            return;
        }
        match (kind, len) {
            (3, 3) => s.wscale = Some(o[2]),
            (4, 2) => s.sack_perm = true,
            (5, l) if l >= 10 && (l - 2) % 8 == 0 => {
                let mut i = 2;
                while i + 8 <= l {
                    let right = be32(o, i + 4);
                    s.sack = Some(match s.sack {
                        Some(m) if (right.wrapping_sub(m) as i32) <= 0 => m,
                        _ => right,
                    });
                    i += 8;
                }
            }
            _ => {}
        }
        o = &o[len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut ip = vec![
            0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, proto, 0, 0, 198, 18, 1, 2, 198, 19, 1, 2,
        ];
        let n = (20 + l4.len()) as u16;
        ip[2..4].copy_from_slice(&n.to_be_bytes());
        ip.extend_from_slice(l4);
        ip
    }

    fn tcp(flags: u8, opts: &[u8], payload: usize) -> Vec<u8> {
        let doff = 20 + opts.len();
        let mut t = vec![
            0x9c,
            0x40,
            0,
            80,
            0,
            0,
            0x03,
            0xe8,
            0,
            0,
            0,
            0,
            (doff as u8 / 4) << 4,
            flags,
            0xfa,
            0xf0,
            0,
            0,
            0,
            0,
        ];
        t.extend_from_slice(opts);
        t.extend(std::iter::repeat_n(0xab, payload));
        t
    }

    #[test]
    fn tcp_syn_with_options() {
        // MSS, SACK permitted, timestamps, NOP, window scale 7.
        let opts = [
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let p = CtPacket::parse(&v4(6, &tcp(0x02, &opts, 0)));
        assert_eq!(
            p.tuple,
            Tuple {
                family: 4,
                proto: 6,
                src: 0xc612_0102,
                dst: 0xc613_0102,
                sport: 40000,
                dport: 80
            }
        );
        let L4::Tcp(s) = p.l4 else { panic!("{p:?}") };
        assert_eq!((s.flags, s.seq, s.win, s.len), (0x02, 1000, 0xfaf0, 0));
        assert_eq!((s.wscale, s.sack_perm, s.has_opts), (Some(7), true, true));
        assert_eq!(s.end(), 1001);
        // Data and a SACK block.
        let sack = [1, 1, 5, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0];
        let p = CtPacket::parse(&v4(6, &tcp(0x10, &sack, 100)));
        let L4::Tcp(s) = p.l4 else { panic!() };
        assert_eq!((s.len, s.sack, s.end()), (100, Some(0x2000), 1100));
        assert_eq!(p.frag, None);
    }

    #[test]
    fn icmp_queries_errors_and_fragments() {
        let echo = [8, 0, 0, 0, 0x12, 0x34, 0, 1];
        let p = CtPacket::parse(&v4(1, &echo));
        assert_eq!(
            (p.tuple.sport, p.tuple.dport, p.l4),
            (0x1234, 0x1234, L4::Query { request: true })
        );
        let p = CtPacket::parse(&v4(1, &[0, 0, 0, 0, 0x12, 0x34, 0, 1]));
        assert_eq!(p.l4, L4::Query { request: false });
        // Port unreachable quoting a UDP datagram 198.18.1.2:40000 -> 198.19.1.2:53.
        let quote = v4(17, &[0x9c, 0x40, 0, 53, 0, 8, 0, 0]);
        let mut err = vec![3, 3, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&quote);
        let p = CtPacket::parse(&v4(1, &err));
        let L4::Error { inner } = p.l4 else {
            panic!("{p:?}")
        };
        assert_eq!(
            (inner.proto, inner.src, inner.sport, inner.dport),
            (17, 0xc612_0102, 40000, 53)
        );
        // A quote cut short is bad.
        let p = CtPacket::parse(&v4(1, &err[..8 + 20 + 4]));
        assert_eq!(p.l4, L4::Bad);
        // Later fragments carry no ports.
        let mut f = v4(17, &[0; 16]);
        f[6] = 0x00;
        f[7] = 0x10;
        let p = CtPacket::parse(&f);
        assert_eq!(
            (p.l4, p.frag, p.tuple.sport),
            (L4::LaterFragment, Some(0x1234), 0)
        );
        f[6] = 0x20;
        f[7] = 0;
        let p = CtPacket::parse(&f);
        assert_eq!(
            (p.l4, p.frag),
            (L4::Udp, Some(0x1234)),
            "a first fragment has its ports"
        );
        assert_eq!(CtPacket::parse(&v4(47, &[0; 4])).l4, L4::Other);
    }

    #[test]
    fn ipv6_udp_and_icmpv6_echo() {
        let mut ip = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        ip.extend_from_slice(
            &"2001:2:0:1::2"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        ip.extend_from_slice(
            &"2001:2:0:2::2"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        ip.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, 8, 0, 0]);
        let p = CtPacket::parse(&ip);
        assert_eq!(
            (p.tuple.family, p.tuple.proto, p.tuple.sport, p.l4),
            (6, 17, 40000, L4::Udp)
        );
        assert_eq!(p.tuple.src_ip().to_string(), "2001:2:0:1::2");
        ip[6] = 58;
        ip[40..].copy_from_slice(&[128, 0, 0, 0, 0, 7, 0, 1]);
        let p = CtPacket::parse(&ip);
        assert_eq!((p.tuple.sport, p.l4), (7, L4::Query { request: true }));
    }

    #[test]
    fn never_panics_on_short_or_odd_input() {
        let opts = [3, 3, 7, 4, 2, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        let pk = v4(6, &tcp(0x12, &opts[..12], 5));
        for n in 0..pk.len() {
            let _ = CtPacket::parse(&pk[..n]);
        }
        let mut s = Seg::default();
        for bad in [&[3u8][..], &[3, 9, 1], &[5, 3, 0], &[2, 0], &[255, 1]] {
            tcp_options(bad, &mut s);
        }
    }
}
