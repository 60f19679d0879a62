//! Pre-built frames: one per (flow, size), built once through the wire
//! layer with every checksum right. Per packet the generator copies a
//! template into a UMEM frame and calls [`Template::stamp_into`], which
//! writes sequence and time and patches the L4 checksum (RFC 1624).
use std::net::IpAddr;

use engine::wire::{
    EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Options, Ipv4Packet,
    Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpFlags, TcpPacket, UdpPacket, VlanStack,
};

use super::spec::{Flow, Proto, SpecError, TrafficSpec, FCS};
use super::stamp::{self, CheckFix};

/// TTL / hop limit of generated packets.
pub const TTL: u8 = 64;

/// One pre-built frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The frame, without FCS.
    pub bytes: Vec<u8>,
    /// Offset of the stamp.
    pub stamp_off: usize,
    /// Offset of the L4 checksum.
    pub check_off: usize,
    /// How to patch it.
    pub fix: CheckFix,
    /// The template's L4 checksum.
    pub check: u16,
}

impl Template {
    /// Smallest frame (without FCS) that holds the headers and the stamp,
    /// and at least the 60-byte Ethernet minimum.
    pub fn min_len(v6: bool, proto: Proto) -> usize {
        let l3 = if v6 { 40 } else { 20 };
        let l4 = match proto {
            Proto::Udp => 8,
            Proto::Tcp => 20,
        };
        (14 + l3 + l4 + stamp::LEN).max(60)
    }

    /// Builds the frame of `flow` (id `id`) for a size that counts the FCS;
    /// sizes below the minimum for the headers grow to it. With
    /// `udp4_no_checksum`, UDP over IPv4 is sent with checksum 0 (allowed
    /// by RFC 768; never for IPv6, RFC 8200 §8.1).
    pub fn build(
        spec: &TrafficSpec,
        flow: &Flow,
        id: u16,
        size: u16,
        udp4_no_checksum: bool,
    ) -> Result<Template, SpecError> {
        let v6 = flow.src.is_ipv6();
        let len = (size as usize - FCS).max(Self::min_len(v6, spec.proto));
        let mut f = vec![0u8; len];
        let l3_len = if v6 { 40 } else { 20 };
        let l4_off = 14 + l3_len;
        let l4_len = len - l4_off;
        let hdr = match spec.proto {
            Proto::Udp => 8,
            Proto::Tcp => 20,
        };
        let stamp_off = l4_off + hdr;
        let (proto, check_off) = match spec.proto {
            Proto::Udp => (IpProtocol::Udp, l4_off + 6),
            Proto::Tcp => (IpProtocol::Tcp, l4_off + 16),
        };

        let eth = EthernetRepr {
            dst_addr: EthernetAddress(spec.dst_mac),
            src_addr: EthernetAddress(spec.src_mac),
            vlans: VlanStack::new(),
            ethertype: if v6 { EtherType::Ipv6 } else { EtherType::Ipv4 },
        };
        eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
        // Stamp and padding first: the L4 checksum covers them.
        let bad = || SpecError("frame too short for the stamp".into());
        if !stamp::write_template(&mut f[stamp_off..], id) {
            return Err(bad());
        }
        match spec.proto {
            Proto::Udp => {
                let mut u = UdpPacket::new_unchecked(&mut f[l4_off..]);
                u.set_src_port(flow.sport);
                u.set_dst_port(flow.dport);
                u.set_len(l4_len as u16);
            }
            Proto::Tcp => {
                let mut t = TcpPacket::new_unchecked(&mut f[l4_off..]);
                t.set_src_port(flow.sport);
                t.set_dst_port(flow.dport);
                t.set_seq_number(1);
                t.set_ack_number(1);
                t.set_header_len(20);
                t.set_flags(TcpFlags::ACK | TcpFlags::PSH);
                t.set_window_len(65535);
                t.set_urgent_at(0);
            }
        }
        let fix = match (flow.src, flow.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let ip = Ipv4Repr {
                    src_addr: s,
                    dst_addr: d,
                    protocol: proto,
                    payload_len: l4_len,
                    ttl: TTL,
                    dscp: 0,
                    ecn: 0,
                    ident: 0,
                    dont_frag: true,
                    more_frags: false,
                    frag_offset: 0,
                    options: Ipv4Options::EMPTY,
                };
                ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]));
                match spec.proto {
                    Proto::Udp if udp4_no_checksum => {
                        UdpPacket::new_unchecked(&mut f[l4_off..]).set_checksum(0);
                        CheckFix::None
                    }
                    Proto::Udp => {
                        UdpPacket::new_unchecked(&mut f[l4_off..]).fill_checksum(s, d);
                        CheckFix::Udp
                    }
                    Proto::Tcp => {
                        TcpPacket::new_unchecked(&mut f[l4_off..]).fill_checksum(s, d);
                        CheckFix::Tcp
                    }
                }
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let ip = Ipv6Repr {
                    src_addr: s,
                    dst_addr: d,
                    next_header: proto,
                    payload_len: l4_len,
                    hop_limit: TTL,
                    traffic_class: 0,
                    flow_label: 0,
                };
                ip.emit(&mut Ipv6Packet::new_unchecked(&mut f[14..]));
                match spec.proto {
                    Proto::Udp => {
                        UdpPacket::new_unchecked(&mut f[l4_off..]).fill_checksum(s, d);
                        CheckFix::Udp
                    }
                    Proto::Tcp => {
                        TcpPacket::new_unchecked(&mut f[l4_off..]).fill_checksum(s, d);
                        CheckFix::Tcp
                    }
                }
            }
            _ => {
                return Err(SpecError(
                    "source and destination of different families".into(),
                ))
            }
        };
        let check = u16::from_be_bytes([f[check_off], f[check_off + 1]]);
        Ok(Template {
            bytes: f,
            stamp_off,
            check_off,
            fix,
            check,
        })
    }

    /// Writes sequence and time into `frame` (a copy of this template) and
    /// patches its checksum.
    #[inline]
    pub fn stamp_into(&self, frame: &mut [u8], seq: u32, time_ns: u64) -> bool {
        stamp::stamp_frame(
            frame,
            self.stamp_off,
            self.check_off,
            self.fix,
            self.check,
            seq,
            time_ns,
        )
    }
}

/// Every template of a traffic spec: `flows x sizes`, flow-major.
#[derive(Clone, Debug)]
pub struct Templates {
    /// Distinct sizes (with FCS).
    pub sizes: Vec<u16>,
    /// Templates, index `flow * sizes.len() + size_index`.
    pub all: Vec<Template>,
}

/// Templates beyond this many bytes are refused (narrow the ranges).
pub const MAX_TEMPLATE_BYTES: usize = 256 << 20;

impl Templates {
    /// Builds all templates.
    pub fn build(spec: &TrafficSpec, udp4_no_checksum: bool) -> Result<Templates, SpecError> {
        spec.validate()?;
        let sizes = spec.size.sizes();
        let bytes: usize = sizes.iter().map(|s| *s as usize).sum::<usize>() * spec.flow_count();
        if bytes > MAX_TEMPLATE_BYTES {
            return Err(SpecError(format!(
                "{} flows x sizes {:?} need {} MiB of templates (at most {} MiB)",
                spec.flow_count(),
                sizes,
                bytes >> 20,
                MAX_TEMPLATE_BYTES >> 20
            )));
        }
        let mut all = Vec::with_capacity(spec.flow_count() * sizes.len());
        for id in 0..spec.flow_count() {
            let flow = spec.flow(id);
            for s in &sizes {
                all.push(Template::build(
                    spec,
                    &flow,
                    id as u16,
                    *s,
                    udp4_no_checksum,
                )?);
            }
        }
        Ok(Templates { sizes, all })
    }

    /// The template of `flow` at size index `size`.
    #[inline]
    pub fn get(&self, flow: usize, size: usize) -> Option<&Template> {
        self.all.get(flow * self.sizes.len() + size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::spec::SizeSpec;
    use engine::wire::checksum;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn spec(src: &str, dst: &str, proto: Proto, size: SizeSpec) -> TrafficSpec {
        TrafficSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: src.parse().unwrap(),
            dst_ip: dst.parse().unwrap(),
            sport: "1000-1001".parse().unwrap(),
            dport: "2000".parse().unwrap(),
            proto,
            size,
        }
    }

    /// Verifies every checksum of a frame from scratch (independent of the
    /// wire layer's verify functions: plain RFC 1071 sums).
    fn checksums_ok(f: &[u8]) -> bool {
        let v6 = f[12..14] == [0x86, 0xdd];
        let (l4_off, pseudo) = if v6 {
            let len = u16::from_be_bytes([f[18], f[19]]);
            let src: [u8; 16] = f[22..38].try_into().unwrap();
            let dst: [u8; 16] = f[38..54].try_into().unwrap();
            (
                54,
                checksum::pseudo_header_v6(&src, &dst, f[20], len as u32),
            )
        } else {
            if checksum::data(&f[14..34]) != 0xffff {
                return false;
            }
            let total = u16::from_be_bytes([f[16], f[17]]);
            let src: [u8; 4] = f[26..30].try_into().unwrap();
            let dst: [u8; 4] = f[30..34].try_into().unwrap();
            (
                34,
                checksum::pseudo_header_v4(&src, &dst, f[23], total - 20),
            )
        };
        let proto = if v6 { f[20] } else { f[23] };
        if proto == 17 && !v6 && f[l4_off + 6..l4_off + 8] == [0, 0] {
            return true; // no checksum
        }
        if proto == 17 && f[l4_off + 6..l4_off + 8] == [0, 0] {
            return false; // a UDP checksum is never 0 on the wire (and mandatory over IPv6)
        }
        checksum::add(pseudo, checksum::data(&f[l4_off..])) == 0xffff
    }

    #[test]
    fn ipv4_udp_64_byte_frame_by_hand() {
        let s = spec("198.18.0.2", "198.19.0.2", Proto::Udp, SizeSpec::Fixed(64));
        let t = Template::build(&s, &s.flow(0), 0, 64, false).unwrap();
        assert_eq!(t.bytes.len(), 60);
        let f = &t.bytes;
        assert_eq!(&f[0..14], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        // IPv4: version/IHL, total length 46, DF, TTL 64, UDP, addresses.
        assert_eq!(&f[14..24], &[0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17]);
        assert_eq!(&f[26..34], &[198, 18, 0, 2, 198, 19, 0, 2]);
        // UDP: ports 1000 -> 2000, length 26.
        assert_eq!(&f[34..40], &[0x03, 0xe8, 0x07, 0xd0, 0, 26]);
        assert_eq!(&f[42..46], &[0x50, 0x47, 0, 0], "magic, flow 0");
        assert_eq!((t.stamp_off, t.check_off, t.fix), (42, 40, CheckFix::Udp));
        assert!(checksums_ok(f));
        let mut bad = f.clone();
        bad[22] = 63; // TTL changed without the checksum
        assert!(!stamp::locate(&bad).unwrap().ip_ok);
        assert_eq!(
            stamp::locate(f).unwrap(),
            stamp::Seen {
                stamp: stamp::Stamp {
                    flow: 0,
                    seq: 0,
                    time_ns: 0
                },
                ttl: 64,
                ip_ok: true
            }
        );
    }

    #[test]
    fn sizes_count_the_fcs_and_grow_to_the_minimum() {
        for (src, dst, proto, min) in [
            ("198.18.0.2", "198.19.0.2", Proto::Udp, 60),
            ("198.18.0.2", "198.19.0.2", Proto::Tcp, 70),
            ("2001:2::2", "2001:2:0:100::2", Proto::Udp, 78),
            ("2001:2::2", "2001:2:0:100::2", Proto::Tcp, 90),
        ] {
            let s = spec(src, dst, proto, SizeSpec::Fixed(64));
            assert_eq!(
                Template::build(&s, &s.flow(1), 1, 64, false)
                    .unwrap()
                    .bytes
                    .len(),
                min
            );
            assert_eq!(
                Template::build(&s, &s.flow(1), 1, 1518, false)
                    .unwrap()
                    .bytes
                    .len(),
                1514
            );
            assert_eq!(
                Template::build(&s, &s.flow(1), 1, 512, false)
                    .unwrap()
                    .bytes
                    .len(),
                508
            );
        }
    }

    #[test]
    fn imix_templates_per_flow() {
        let s = spec(
            "198.18.0.2-198.18.0.3",
            "198.19.0.2",
            Proto::Udp,
            SizeSpec::Imix,
        );
        let t = Templates::build(&s, false).unwrap();
        assert_eq!(t.all.len(), 4 * 3);
        assert_eq!(t.get(3, 2).unwrap().bytes.len(), 1514);
        assert_eq!(
            stamp::locate(&t.get(3, 1).unwrap().bytes)
                .unwrap()
                .stamp
                .flow,
            3
        );
        assert!(t.get(4, 0).is_none());
    }

    #[test]
    fn udp4_without_checksum_only_for_ipv4() {
        let s = spec("198.18.0.2", "198.19.0.2", Proto::Udp, SizeSpec::Fixed(128));
        let mut t = Template::build(&s, &s.flow(0), 0, 128, true).unwrap();
        assert_eq!((t.fix, t.check), (CheckFix::None, 0));
        let mut f = t.bytes.clone();
        assert!(t.stamp_into(&mut f, 5, 6));
        assert_eq!(&f[40..42], &[0, 0]);
        let s6 = spec(
            "2001:2::2",
            "2001:2:0:100::2",
            Proto::Udp,
            SizeSpec::Fixed(128),
        );
        t = Template::build(&s6, &s6.flow(0), 0, 128, true).unwrap();
        assert_eq!(t.fix, CheckFix::Udp, "IPv6 UDP always carries a checksum");
    }

    proptest! {
        /// The incremental patch gives the same checksum as a full
        /// recomputation, for every family, protocol and size.
        #[test]
        fn stamped_frames_have_right_checksums(
            seq in any::<u32>(), time in any::<u64>(), v6 in any::<bool>(), tcp in any::<bool>(),
            size in 64u16..=1518, a in any::<u32>(), b in any::<u32>(), flow in 0usize..2,
        ) {
            let (src, dst) = if v6 {
                (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, (a >> 16) as u16, a as u16).to_string(),
                 Ipv6Addr::new(0x2001, 2, 1, 0, 0, 0, (b >> 16) as u16, b as u16).to_string())
            } else {
                (Ipv4Addr::from(0xc612_0000 | (a & 0xffff)).to_string(), Ipv4Addr::from(0xc613_0000 | (b & 0xffff)).to_string())
            };
            let s = spec(&src, &dst, if tcp { Proto::Tcp } else { Proto::Udp }, SizeSpec::Fixed(size));
            let t = Template::build(&s, &s.flow(flow), flow as u16, size, false).unwrap();
            prop_assert!(checksums_ok(&t.bytes));
            let mut f = t.bytes.clone();
            prop_assert!(t.stamp_into(&mut f, seq, time));
            prop_assert!(checksums_ok(&f), "after stamping seq={} time={}", seq, time);
            let seen = stamp::locate(&f).unwrap();
            prop_assert_eq!(seen.stamp, stamp::Stamp { flow: flow as u16, seq, time_ns: time });
            prop_assert_eq!(seen.ttl, TTL);
            prop_assert!(seen.ip_ok);
            // Only the stamp's variable bytes and the checksum changed.
            for (i, (x, y)) in f.iter().zip(&t.bytes).enumerate() {
                if x != y {
                    prop_assert!((t.stamp_off + 4..t.stamp_off + 16).contains(&i) || (t.check_off..t.check_off + 2).contains(&i));
                }
            }
        }

        /// `locate` never panics on arbitrary bytes.
        #[test]
        fn locate_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = stamp::locate(&bytes);
        }
    }
}
