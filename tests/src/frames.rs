//! Test frames built by hand with correct checksums (the wire layer is
//! tested on its own; these builders only need to be right for the cases
//! the I/O tests send).
use std::net::Ipv4Addr;

use engine::wire::checksum;

/// Ethernet header + payload.
pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 header (no options, DF clear, TTL 64) + payload.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// A UDP datagram with its checksum.
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let sum = checksum::combine(&[
        checksum::pseudo_header_v4(&src.octets(), &dst.octets(), 17, len),
        checksum::data(&u),
    ]);
    u[6..8].copy_from_slice(&checksum::udp_nonzero(!sum).to_be_bytes());
    u
}

/// Ethernet + IPv4 + UDP.
pub fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    eth(
        dst_mac,
        src_mac,
        0x0800,
        &ipv4(src, dst, 17, &udp(src, dst, sport, dport, payload)),
    )
}

/// Ethernet + IPv4 + ICMP echo request.
pub fn ping_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    seq: u16,
) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend((0..32u8).map(|i| i.wrapping_mul(7)));
    let c = checksum::checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    eth(dst_mac, src_mac, 0x0800, &ipv4(src, dst, 1, &icmp))
}

/// Ethernet + ARP request (who has `target`? tell `sender`).
pub fn arp_request(src_mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&src_mac);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    eth([0xff; 6], src_mac, 0x0806, &a)
}

/// (src, dst, sport, dport) of an untagged Ethernet/IPv4/UDP-or-TCP frame.
pub fn ipv4_flow(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u16, u16, u8)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = (*ip.first()? & 0x0f) as usize * 4;
    let proto = *ip.get(9)?;
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(12..16)?).ok()?);
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(16..20)?).ok()?);
    let l4 = ip.get(ihl..)?;
    let sport = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
    let dport = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
    Some((src, dst, sport, dport, proto))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_checksum_verifies() {
        let (s, d) = (Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 1));
        let u = udp(s, d, 1000, 2000, b"abc");
        let len = u.len() as u16;
        let sum = checksum::combine(&[
            checksum::pseudo_header_v4(&s.octets(), &d.octets(), 17, len),
            checksum::data(&u),
        ]);
        assert_eq!(sum, 0xffff);
        let f = udp_frame([1; 6], [2; 6], s, d, 1000, 2000, b"abc");
        assert_eq!(checksum::data(&f[14..34]), 0xffff);
        assert_eq!(ipv4_flow(&f), Some((s, d, 1000, 2000, 17)));
    }
}
