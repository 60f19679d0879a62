//! `reject with tcp reset`: the RST a closed port would send (RFC 793 §3.4,
//! "Reset Generation"), built from the offending segment.

use crate::wire::checksum;

/// Writes, into `out`, the IP packet (no Ethernet header) resetting the TCP
/// segment in `orig_ip` (an IPv4 or IPv6 packet, TCP right after the fixed
/// header). None for non-TCP, a RST (never answered), or a short `out`.
pub fn tcp_reset(out: &mut [u8], orig_ip: &[u8]) -> Option<usize> {
    let v = orig_ip.first()? >> 4;
    let (hl, total, src, dst) = match v {
        4 => {
            if orig_ip.len() < 20 || orig_ip[9] != 6 {
                return None;
            }
            let hl = usize::from(orig_ip[0] & 0x0f) * 4;
            let total =
                usize::from(u16::from_be_bytes([orig_ip[2], orig_ip[3]])).min(orig_ip.len());
            (hl, total, &orig_ip[12..16], &orig_ip[16..20])
        }
        6 => {
            if orig_ip.len() < 40 || orig_ip[6] != 6 {
                return None;
            }
            let total =
                (40 + usize::from(u16::from_be_bytes([orig_ip[4], orig_ip[5]]))).min(orig_ip.len());
            (40, total, &orig_ip[8..24], &orig_ip[24..40])
        }
        _ => return None,
    };
    let tcp = orig_ip.get(hl..total)?;
    if tcp.len() < 20 {
        return None;
    }
    let thl = usize::from(tcp[12] >> 4) * 4;
    let flags = tcp[13];
    if flags & 0x04 != 0 || thl < 20 || thl > tcp.len() {
        return None;
    }
    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    let ack = u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]);
    let seg_len =
        (tcp.len() - thl) as u32 + u32::from(flags & 0x02 != 0) + u32::from(flags & 0x01 != 0);
    // RFC 793: if the segment has ACK, the reset takes its sequence number from
    // that ACK; otherwise it has sequence 0 and acknowledges the segment.
    let (rseq, rack, rflags) = if flags & 0x10 != 0 {
        (ack, 0, 0x04)
    } else {
        (0, seq.wrapping_add(seg_len), 0x14)
    };
    let ip_len = if v == 4 { 20 } else { 40 };
    let n = ip_len + 20;
    let out = out.get_mut(..n)?;
    out.fill(0);
    if v == 4 {
        out[0] = 0x45;
        out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
        out[6] = 0x40;
        out[8] = 64;
        out[9] = 6;
        out[12..16].copy_from_slice(dst);
        out[16..20].copy_from_slice(src);
        let c = checksum::checksum(&out[..20]);
        out[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        out[0] = 0x60;
        out[4..6].copy_from_slice(&20u16.to_be_bytes());
        out[6] = 6;
        out[7] = 64;
        out[8..24].copy_from_slice(dst);
        out[24..40].copy_from_slice(src);
    }
    let t = &mut out[ip_len..];
    t[0..2].copy_from_slice(&tcp[2..4]);
    t[2..4].copy_from_slice(&tcp[0..2]);
    t[4..8].copy_from_slice(&rseq.to_be_bytes());
    t[8..12].copy_from_slice(&rack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = rflags;
    let pseudo = if v == 4 {
        let (mut s, mut d) = ([0u8; 4], [0u8; 4]);
        s.copy_from_slice(dst);
        d.copy_from_slice(src);
        checksum::pseudo_header_v4(&s, &d, 6, 20)
    } else {
        let (mut s, mut d) = ([0u8; 16], [0u8; 16]);
        s.copy_from_slice(dst);
        d.copy_from_slice(src);
        checksum::pseudo_header_v6(&s, &d, 6, 20)
    };
    let c = !checksum::combine(&[pseudo, checksum::data(&out[ip_len..])]);
    out[ip_len + 16..ip_len + 18].copy_from_slice(&c.to_be_bytes());
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn_v4(flags: u8, payload: usize) -> Vec<u8> {
        let mut p = vec![0u8; 40 + payload];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[198, 18, 1, 2]);
        p[16..20].copy_from_slice(&[198, 19, 1, 2]);
        p[20..22].copy_from_slice(&40000u16.to_be_bytes());
        p[22..24].copy_from_slice(&80u16.to_be_bytes());
        p[24..28].copy_from_slice(&1000u32.to_be_bytes());
        p[28..32].copy_from_slice(&5555u32.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        p
    }

    #[test]
    fn rst_for_a_syn_acknowledges_it() {
        let mut out = [0u8; 64];
        let n = tcp_reset(&mut out, &syn_v4(0x02, 0)).unwrap();
        assert_eq!(n, 40);
        assert_eq!(&out[12..16], &[198, 19, 1, 2]);
        assert_eq!(&out[16..20], &[198, 18, 1, 2]);
        assert_eq!(checksum::data(&out[..20]), 0xffff);
        assert_eq!(u16::from_be_bytes([out[20], out[21]]), 80);
        assert_eq!(u16::from_be_bytes([out[22], out[23]]), 40000);
        assert_eq!(u32::from_be_bytes([out[24], out[25], out[26], out[27]]), 0);
        assert_eq!(
            u32::from_be_bytes([out[28], out[29], out[30], out[31]]),
            1001
        );
        assert_eq!(out[33], 0x14, "RST+ACK");
        let sum = checksum::combine(&[
            checksum::pseudo_header_v4(&[198, 19, 1, 2], &[198, 18, 1, 2], 6, 20),
            checksum::data(&out[20..40]),
        ]);
        assert_eq!(sum, 0xffff, "TCP checksum");
    }

    #[test]
    fn rst_for_an_ack_takes_its_sequence_and_rst_is_never_answered() {
        let mut out = [0u8; 64];
        tcp_reset(&mut out, &syn_v4(0x18, 10)).unwrap();
        assert_eq!(
            u32::from_be_bytes([out[24], out[25], out[26], out[27]]),
            5555
        );
        assert_eq!(out[33], 0x04);
        assert!(tcp_reset(&mut out, &syn_v4(0x04, 0)).is_none());
        assert!(tcp_reset(&mut [0u8; 10], &syn_v4(0x02, 0)).is_none());
        let mut udp = syn_v4(0x02, 0);
        udp[9] = 17;
        assert!(tcp_reset(&mut out, &udp).is_none());
        for n in 0..40 {
            let _ = tcp_reset(&mut out, &syn_v4(0x02, 0)[..n]);
        }
    }
}
