//! Packet rewrites of the NAT: what a translation changes in an IPv4 packet
//! and the checksums that follow (RFC 1624 incremental updates; a full sum
//! only over ICMP error messages, whose quoted header changes in several
//! places at once).
//!
//! Every function takes the IPv4 packet (`ip`, header first, trimmed to its
//! total length; `ip4::input` validated the header) and never panics: a
//! packet too short for what a rewrite needs is left unchanged and the
//! function says so (`false`). Classification ([`classify`]) happens before
//! any rewrite, so the caller knows which rewrite applies.

use crate::wire::checksum;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAM_PROBLEM: u8 = 12;

/// An endpoint: IPv4 address (host order) and port (or ICMP query id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Ep {
    pub addr: u32,
    pub port: u16,
}

impl Ep {
    pub const fn new(addr: u32, port: u16) -> Ep {
        Ep { addr, port }
    }
}

impl std::fmt::Display for Ep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", std::net::Ipv4Addr::from(self.addr), self.port)
    }
}

/// What the NAT sees in a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// TCP or UDP with its ports (an unfragmented packet or a first fragment).
    /// `tcp_flags` is 0 for UDP.
    Ports {
        proto: u8,
        src: Ep,
        dst: Ep,
        tcp_flags: u8,
    },
    /// ICMP echo request (`request`) or reply; the id plays the port.
    Echo { src: Ep, dst: Ep, request: bool },
    /// An ICMP error (unreachable, time exceeded, parameter problem) quoting
    /// a packet of `proto` from `inner_src` to `inner_dst` (for a quoted
    /// echo: the id as both ports).
    IcmpError {
        outer_src: u32,
        outer_dst: u32,
        proto: u8,
        inner_src: Ep,
        inner_dst: Ep,
    },
    /// A fragment other than the first: no L4 header.
    LaterFragment {
        proto: u8,
        src: u32,
        dst: u32,
        id: u16,
    },
    /// Anything else: another protocol, other ICMP types, a truncated L4 header.
    Other,
}

/// Fragment fields of a packet: (id, more fragments, offset in 8-byte units).
#[inline]
pub fn frag_info(ip: &[u8]) -> (u16, bool, u16) {
    if ip.len() < 20 {
        return (0, false, 0);
    }
    let w = u16::from_be_bytes([ip[6], ip[7]]);
    (
        u16::from_be_bytes([ip[4], ip[5]]),
        w & 0x2000 != 0,
        w & 0x1fff,
    )
}

#[inline]
fn addr_at(b: &[u8], off: usize) -> u32 {
    match b.get(off..off + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

#[inline]
fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    b.get(off..off + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
}

#[inline]
fn header_len(ip: &[u8]) -> usize {
    ip.first().map_or(0, |b| usize::from(b & 0x0f) * 4)
}

/// Classifies an IPv4 packet for the NAT.
pub fn classify(ip: &[u8]) -> Kind {
    let hl = header_len(ip);
    if ip.len() < 20 || hl < 20 || ip.len() < hl {
        return Kind::Other;
    }
    let proto = ip[9];
    let (src, dst) = (addr_at(ip, 12), addr_at(ip, 16));
    let (id, _, offset) = frag_info(ip);
    if offset != 0 {
        return Kind::LaterFragment {
            proto,
            src,
            dst,
            id,
        };
    }
    let l4 = &ip[hl..];
    match proto {
        PROTO_TCP | PROTO_UDP => {
            // The whole fixed header: a rewrite needs the checksum field.
            if l4.len() < if proto == PROTO_TCP { 20 } else { 8 } {
                return Kind::Other;
            }
            let (Some(sp), Some(dp)) = (u16_at(l4, 0), u16_at(l4, 2)) else {
                return Kind::Other;
            };
            let tcp_flags = if proto == PROTO_TCP {
                match l4.get(13) {
                    Some(&f) => f,
                    None => return Kind::Other,
                }
            } else {
                0
            };
            Kind::Ports {
                proto,
                src: Ep::new(src, sp),
                dst: Ep::new(dst, dp),
                tcp_flags,
            }
        }
        PROTO_ICMP => {
            let Some(&ty) = l4.first() else {
                return Kind::Other;
            };
            match ty {
                ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY => match u16_at(l4, 4) {
                    Some(qid) => Kind::Echo {
                        src: Ep::new(src, qid),
                        dst: Ep::new(dst, qid),
                        request: ty == ICMP_ECHO_REQUEST,
                    },
                    None => Kind::Other,
                },
                ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAM_PROBLEM => {
                    classify_error(src, dst, l4)
                }
                _ => Kind::Other,
            }
        }
        _ => Kind::Other,
    }
}

/// The quoted packet of an ICMP error (at `l4[8..]`): its header and the
/// first 8 bytes of its payload at least (RFC 792).
fn classify_error(outer_src: u32, outer_dst: u32, l4: &[u8]) -> Kind {
    let Some(inner) = l4.get(8..) else {
        return Kind::Other;
    };
    let hl = header_len(inner);
    if inner.len() < 20 || inner[0] >> 4 != 4 || hl < 20 || inner.len() < hl + 8 {
        return Kind::Other;
    }
    let (_, _, offset) = frag_info(inner);
    if offset != 0 {
        return Kind::Other;
    }
    let proto = inner[9];
    let (s, d) = (addr_at(inner, 12), addr_at(inner, 16));
    let q = &inner[hl..];
    let (sp, dp) = match proto {
        PROTO_TCP | PROTO_UDP => (u16_at(q, 0).unwrap_or(0), u16_at(q, 2).unwrap_or(0)),
        // Only errors about echo messages concern a mapping (RFC 5508 §3.2).
        PROTO_ICMP if matches!(q[0], ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY) => {
            let qid = u16_at(q, 4).unwrap_or(0);
            (qid, qid)
        }
        _ => return Kind::Other,
    };
    Kind::IcmpError {
        outer_src,
        outer_dst,
        proto,
        inner_src: Ep::new(s, sp),
        inner_dst: Ep::new(d, dp),
    }
}

/// Which endpoint of the packet a rewrite changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Src,
    Dst,
}

impl Side {
    const fn addr_off(self) -> usize {
        match self {
            Side::Src => 12,
            Side::Dst => 16,
        }
    }
    const fn port_off(self) -> usize {
        match self {
            Side::Src => 0,
            Side::Dst => 2,
        }
    }
}

/// Rewrites the address of `side` in the IPv4 header, with the header
/// checksum; returns the old address.
#[inline]
fn set_addr(ip: &mut [u8], side: Side, new: u32) -> Option<u32> {
    let off = side.addr_off();
    let old: [u8; 4] = ip.get(off..off + 4)?.try_into().ok()?;
    let new_b = new.to_be_bytes();
    let c = checksum::update32(u16_at(ip, 10)?, old, new_b);
    ip[off..off + 4].copy_from_slice(&new_b);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    Some(u32::from_be_bytes(old))
}

/// Translates one endpoint of a TCP or UDP packet (or first fragment):
/// address in the IP header, port in the L4 header, both checksums. A UDP
/// checksum of zero (none, RFC 768) stays zero.
pub fn rewrite_ports(ip: &mut [u8], side: Side, to: Ep) -> bool {
    let hl = header_len(ip);
    if hl < 20 || ip.len() < hl + 8 {
        return false;
    }
    let proto = ip[9];
    let csum_off = match proto {
        PROTO_TCP if ip.len() >= hl + 20 => hl + 16,
        PROTO_UDP => hl + 6,
        _ => return false,
    };
    // RFC 1624 eqn. 3 with the address's difference summed once and used
    // for both checksums (the L4 one covers it through the pseudo-header).
    let aoff = side.addr_off();
    let old_addr = u32::from_be_bytes([ip[aoff], ip[aoff + 1], ip[aoff + 2], ip[aoff + 3]]);
    let delta_addr = diff32(old_addr, to.addr);
    let c = u16::from_be_bytes([ip[10], ip[11]]);
    ip[10..12].copy_from_slice(&apply(c, delta_addr).to_be_bytes());
    ip[aoff..aoff + 4].copy_from_slice(&to.addr.to_be_bytes());
    let poff = hl + side.port_off();
    let old_port = u16::from_be_bytes([ip[poff], ip[poff + 1]]);
    ip[poff..poff + 2].copy_from_slice(&to.port.to_be_bytes());
    let c = u16::from_be_bytes([ip[csum_off], ip[csum_off + 1]]);
    if proto == PROTO_UDP && c == 0 {
        return true;
    }
    let mut c = apply(c, delta_addr + u64::from(!old_port) + u64::from(to.port));
    if proto == PROTO_UDP {
        c = checksum::udp_nonzero(c);
    }
    ip[csum_off..csum_off + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// The one's-complement difference `~old + new` of a 32-bit field, unfolded.
#[inline]
fn diff32(old: u32, new: u32) -> u64 {
    u64::from(!(old >> 16) as u16)
        + u64::from(!(old as u16))
        + u64::from((new >> 16) as u16)
        + u64::from(new as u16)
}

/// `~(~check + delta)` folded to 16 bits (RFC 1624 eqn. 3).
#[inline]
fn apply(check: u16, delta: u64) -> u16 {
    let mut s = u64::from(!check) + delta;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// Translates an ICMP echo message: the address of `side` and the query id
/// (ICMPv4's checksum has no pseudo-header: only the id counts there).
pub fn rewrite_echo(ip: &mut [u8], side: Side, to: Ep) -> bool {
    let hl = header_len(ip);
    if hl < 20 || ip.len() < hl + 8 || ip[9] != PROTO_ICMP {
        return false;
    }
    if set_addr(ip, side, to.addr).is_none() {
        return false;
    }
    let old_id = u16::from_be_bytes([ip[hl + 4], ip[hl + 5]]);
    ip[hl + 4..hl + 6].copy_from_slice(&to.port.to_be_bytes());
    let c = checksum::update16(
        u16::from_be_bytes([ip[hl + 2], ip[hl + 3]]),
        old_id,
        to.port,
    );
    ip[hl + 2..hl + 4].copy_from_slice(&c.to_be_bytes());
    true
}

/// Translates the address of a later fragment (no L4 header to touch: the
/// L4 checksum was updated in the first fragment, which carries it).
pub fn rewrite_addr(ip: &mut [u8], side: Side, to: u32) -> bool {
    set_addr(ip, side, to).is_some()
}

/// Translates an ICMP error about a translated flow (RFC 5508 §4.2): the
/// outer address of `outer` becomes `outer_to`; in the quoted packet the
/// endpoint on the *other* side (`inner`) becomes `inner_to` (its address,
/// port or echo id), with the quoted header's checksum and, where the quote
/// holds it, the quoted L4 checksum. The ICMP checksum is then summed anew
/// over the message.
///
/// Inbound (an error from outside about a packet the NAT sent out): the
/// outer destination and the quoted source change. Outbound (an inside host
/// reports an error about a packet it received): the outer source and the
/// quoted destination.
pub fn rewrite_icmp_error(ip: &mut [u8], outer: Side, outer_to: u32, inner_to: Ep) -> bool {
    let hl = header_len(ip);
    if hl < 20 || ip.len() < hl + 8 + 28 || ip[9] != PROTO_ICMP {
        return false;
    }
    let inner_side = match outer {
        Side::Src => Side::Dst,
        Side::Dst => Side::Src,
    };
    {
        let icmp = &mut ip[hl..];
        let inner = &mut icmp[8..];
        let ihl = header_len(inner);
        if ihl < 20 || inner.len() < ihl + 8 {
            return false;
        }
        let proto = inner[9];
        let Some(old_addr) = set_addr(inner, inner_side, inner_to.addr) else {
            return false;
        };
        let q_len = inner.len() - ihl;
        match proto {
            PROTO_TCP | PROTO_UDP => {
                let poff = ihl + inner_side.port_off();
                let old_port = u16::from_be_bytes([inner[poff], inner[poff + 1]]);
                inner[poff..poff + 2].copy_from_slice(&inner_to.port.to_be_bytes());
                let csum_off = if proto == PROTO_TCP { 16 } else { 6 };
                if q_len >= csum_off + 2 {
                    let o = ihl + csum_off;
                    let c = u16::from_be_bytes([inner[o], inner[o + 1]]);
                    if !(proto == PROTO_UDP && c == 0) {
                        let mut c = checksum::update32(
                            c,
                            old_addr.to_be_bytes(),
                            inner_to.addr.to_be_bytes(),
                        );
                        c = checksum::update16(c, old_port, inner_to.port);
                        if proto == PROTO_UDP {
                            c = checksum::udp_nonzero(c);
                        }
                        inner[o..o + 2].copy_from_slice(&c.to_be_bytes());
                    }
                }
            }
            PROTO_ICMP => {
                let old_id = u16::from_be_bytes([inner[ihl + 4], inner[ihl + 5]]);
                inner[ihl + 4..ihl + 6].copy_from_slice(&inner_to.port.to_be_bytes());
                let c = checksum::update16(
                    u16::from_be_bytes([inner[ihl + 2], inner[ihl + 3]]),
                    old_id,
                    inner_to.port,
                );
                inner[ihl + 2..ihl + 4].copy_from_slice(&c.to_be_bytes());
            }
            _ => return false,
        }
        icmp[2..4].fill(0);
        let c = checksum::checksum(icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
    }
    set_addr(ip, outer, outer_to).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::{checksum, ipv4_header_ok, pseudo_header_v4};
    use proptest::prelude::*;

    const A: u32 = 0xc612_0102; // 198.18.1.2
    const B: u32 = 0xc613_0102; // 198.19.1.2
    const X: u32 = 0xc613_0101; // 198.19.1.1

    fn ipv4(src: u32, dst: u32, proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = 20 + payload.len();
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0x12,
            0x34,
            0x40,
            0,
            64,
            proto,
            0,
            0,
        ];
        p.extend_from_slice(&src.to_be_bytes());
        p.extend_from_slice(&dst.to_be_bytes());
        let c = checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn l4_sum(ip: &[u8]) -> u16 {
        let hl = header_len(ip);
        let (s, d): ([u8; 4], [u8; 4]) = (
            ip[12..16].try_into().unwrap(),
            ip[16..20].try_into().unwrap(),
        );
        let ph = pseudo_header_v4(&s, &d, ip[9], (ip.len() - hl) as u16);
        checksum::combine(&[ph, !checksum(&ip[hl..])])
    }

    fn udp(src: u32, dst: u32, sp: u16, dp: u16, body: &[u8], with_sum: bool) -> Vec<u8> {
        let mut u = vec![0; 8];
        u[0..2].copy_from_slice(&sp.to_be_bytes());
        u[2..4].copy_from_slice(&dp.to_be_bytes());
        u[4..6].copy_from_slice(&((8 + body.len()) as u16).to_be_bytes());
        u.extend_from_slice(body);
        let mut p = ipv4(src, dst, PROTO_UDP, &u);
        if with_sum {
            let c = checksum::udp_nonzero(!l4_sum(&p));
            p[26..28].copy_from_slice(&c.to_be_bytes());
        }
        p
    }

    fn tcp(src: u32, dst: u32, sp: u16, dp: u16, flags: u8, body: &[u8]) -> Vec<u8> {
        let mut t = vec![0; 20];
        t[0..2].copy_from_slice(&sp.to_be_bytes());
        t[2..4].copy_from_slice(&dp.to_be_bytes());
        t[12] = 0x50;
        t[13] = flags;
        t.extend_from_slice(body);
        let mut p = ipv4(src, dst, PROTO_TCP, &t);
        let c = !l4_sum(&p);
        p[36..38].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn echo(src: u32, dst: u32, ty: u8, id: u16) -> Vec<u8> {
        let mut m = vec![ty, 0, 0, 0, (id >> 8) as u8, id as u8, 0, 7, 1, 2, 3, 4];
        let c = checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        ipv4(src, dst, PROTO_ICMP, &m)
    }

    fn l4_ok(p: &[u8]) -> bool {
        l4_sum(p) == 0xffff
    }

    #[test]
    fn classify_sees_ports_echo_errors_and_fragments() {
        let u = udp(A, B, 40000, 53, b"hi", true);
        assert_eq!(
            classify(&u),
            Kind::Ports {
                proto: PROTO_UDP,
                src: Ep::new(A, 40000),
                dst: Ep::new(B, 53),
                tcp_flags: 0
            }
        );
        let t = tcp(A, B, 40001, 80, 0x02, b"");
        assert!(matches!(
            classify(&t),
            Kind::Ports {
                proto: PROTO_TCP,
                tcp_flags: 0x02,
                ..
            }
        ));
        let e = echo(A, B, 8, 77);
        assert_eq!(
            classify(&e),
            Kind::Echo {
                src: Ep::new(A, 77),
                dst: Ep::new(B, 77),
                request: true
            }
        );
        let mut quote = u.clone();
        quote.truncate(28);
        let mut err = vec![11, 0, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&quote);
        let te = ipv4(B, A, PROTO_ICMP, &err);
        assert_eq!(
            classify(&te),
            Kind::IcmpError {
                outer_src: B,
                outer_dst: A,
                proto: PROTO_UDP,
                inner_src: Ep::new(A, 40000),
                inner_dst: Ep::new(B, 53)
            }
        );
        let mut frag = u.clone();
        frag[6] = 0x00;
        frag[7] = 0x10;
        assert_eq!(
            classify(&frag),
            Kind::LaterFragment {
                proto: PROTO_UDP,
                src: A,
                dst: B,
                id: 0x1234
            }
        );
        assert_eq!(classify(&ipv4(A, B, 47, b"gre!")), Kind::Other);
        assert_eq!(classify(&u[..24]), Kind::Other, "truncated L4 header");
        assert_eq!(
            classify(&echo(A, B, 13, 1)),
            Kind::Other,
            "timestamp is not translated"
        );
    }

    #[test]
    fn udp_and_tcp_rewrites_keep_checksums_valid() {
        let mut u = udp(A, B, 40000, 53, b"hello", true);
        assert!(rewrite_ports(&mut u, Side::Src, Ep::new(X, 1025)));
        assert!(ipv4_header_ok(&u[..20]) && l4_ok(&u));
        assert_eq!(
            classify(&u),
            Kind::Ports {
                proto: PROTO_UDP,
                src: Ep::new(X, 1025),
                dst: Ep::new(B, 53),
                tcp_flags: 0
            }
        );
        let mut t = tcp(B, X, 80, 1025, 0x12, b"data");
        assert!(rewrite_ports(&mut t, Side::Dst, Ep::new(A, 40001)));
        assert!(ipv4_header_ok(&t[..20]) && l4_ok(&t));
        assert!(matches!(classify(&t), Kind::Ports { dst, .. } if dst == Ep::new(A, 40001)));
    }

    #[test]
    fn a_zero_udp_checksum_stays_zero() {
        let mut u = udp(A, B, 40000, 53, b"x", false);
        assert!(rewrite_ports(&mut u, Side::Src, Ep::new(X, 2000)));
        assert_eq!(&u[26..28], &[0, 0]);
        assert!(ipv4_header_ok(&u[..20]));
    }

    #[test]
    fn echo_rewrite_changes_the_id_and_the_checksum() {
        let mut e = echo(A, B, 8, 77);
        assert!(rewrite_echo(&mut e, Side::Src, Ep::new(X, 4000)));
        assert!(ipv4_header_ok(&e[..20]));
        assert_eq!(checksum(&e[20..]), 0, "ICMP checksum verifies");
        assert_eq!(
            classify(&e),
            Kind::Echo {
                src: Ep::new(X, 4000),
                dst: Ep::new(B, 4000),
                request: true
            }
        );
    }

    #[test]
    fn icmp_error_inbound_translates_outer_and_quoted_headers() {
        // The NAT sent X:1025 -> B:53; B's router reports Time Exceeded to X.
        let mut sent = udp(A, B, 40000, 53, b"probe", true);
        rewrite_ports(&mut sent, Side::Src, Ep::new(X, 1025));
        let mut body = vec![11, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&sent);
        let c = checksum(&body);
        body[2..4].copy_from_slice(&c.to_be_bytes());
        let mut err = ipv4(B, X, PROTO_ICMP, &body);
        assert!(rewrite_icmp_error(
            &mut err,
            Side::Dst,
            A,
            Ep::new(A, 40000)
        ));
        assert!(ipv4_header_ok(&err[..20]));
        assert_eq!(checksum(&err[20..]), 0, "ICMP checksum verifies");
        let inner = &err[28..];
        assert!(ipv4_header_ok(&inner[..20]), "quoted header checksum");
        assert!(l4_ok(inner), "quoted UDP checksum");
        assert_eq!(
            classify(&err),
            Kind::IcmpError {
                outer_src: B,
                outer_dst: A,
                proto: PROTO_UDP,
                inner_src: Ep::new(A, 40000),
                inner_dst: Ep::new(B, 53)
            }
        );
    }

    #[test]
    fn icmp_error_about_an_echo_and_truncated_quotes() {
        let mut sent = echo(A, B, 8, 77);
        rewrite_echo(&mut sent, Side::Src, Ep::new(X, 4000));
        let mut body = vec![3, 1, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&sent[..28]);
        let mut err = ipv4(B, X, PROTO_ICMP, &body);
        assert!(rewrite_icmp_error(&mut err, Side::Dst, A, Ep::new(A, 77)));
        assert_eq!(checksum(&err[20..]), 0);
        assert!(
            matches!(classify(&err), Kind::IcmpError { proto: PROTO_ICMP, inner_src, .. } if inner_src == Ep::new(A, 77))
        );
        // A quote shorter than header + 8 bytes is refused, unchanged.
        let mut short = ipv4(B, X, PROTO_ICMP, &body[..8 + 24]);
        let before = short.clone();
        assert!(!rewrite_icmp_error(
            &mut short,
            Side::Dst,
            A,
            Ep::new(A, 77)
        ));
        assert_eq!(short, before);
    }

    proptest! {
        #[test]
        fn rewrites_agree_with_a_full_recomputation(
            src in any::<u32>(), dst in any::<u32>(), sp in any::<u16>(), dp in any::<u16>(),
            to_addr in any::<u32>(), to_port in any::<u16>(), body in proptest::collection::vec(any::<u8>(), 0..64),
            is_tcp in any::<bool>(), dst_side in any::<bool>(),
        ) {
            let mut p = if is_tcp { tcp(src, dst, sp, dp, 0x10, &body) } else { udp(src, dst, sp, dp, &body, true) };
            let side = if dst_side { Side::Dst } else { Side::Src };
            prop_assert!(rewrite_ports(&mut p, side, Ep::new(to_addr, to_port)));
            prop_assert!(ipv4_header_ok(&p[..20]));
            prop_assert!(l4_ok(&p));
            // The same packet built from scratch has the same checksums.
            let (s, d, s_p, d_p) = if dst_side { (src, to_addr, sp, to_port) } else { (to_addr, dst, to_port, dp) };
            let fresh = if is_tcp { tcp(s, d, s_p, d_p, 0x10, &body) } else { udp(s, d, s_p, d_p, &body, true) };
            prop_assert_eq!(&p[10..12], &fresh[10..12]);
            prop_assert_eq!(p, fresh);
        }

        #[test]
        fn classify_and_rewrites_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120), a in any::<u32>(), port in any::<u16>()) {
            let mut b = bytes;
            let _ = classify(&b);
            let _ = rewrite_ports(&mut b, Side::Src, Ep::new(a, port));
            let _ = rewrite_echo(&mut b, Side::Dst, Ep::new(a, port));
            let _ = rewrite_icmp_error(&mut b, Side::Dst, a, Ep::new(a, port));
            let _ = rewrite_addr(&mut b, Side::Src, a);
        }
    }
}
