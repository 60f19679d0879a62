//! IPv4 fragmentation (RFC 791 §3.2, RFC 1812 §5.2.6) into caller buffers.
//!
//! [`Fragmenter`] borrows the datagram and writes one fragment per
//! [`Fragmenter::next_into`] call, so a worker can put each piece straight
//! into a TX frame. Every piece but the last carries a multiple of 8 data
//! bytes; offsets are added to the original's offset, and MF stays set on
//! every piece when the original already had it (fragmenting a fragment).
//! Non-first fragments carry only the options whose copied flag is set,
//! packed and padded with EOL to a 4-byte multiple.

use core::fmt;

use crate::wire::ipv4::{self, Ipv4Options, Ipv4Packet, MAX_OPTIONS_LEN};

/// Smallest MTU every IPv4 link must carry (RFC 791).
pub const MIN_MTU: u16 = 68;

/// Why a datagram cannot be fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragError {
    /// Not a parseable IPv4 datagram (lengths, version, option TLVs), or
    /// its pieces would reach past offset 65535.
    Malformed,
    /// Larger than the MTU with DF set: the caller sends Fragmentation
    /// Needed (ICMP type 3 code 4) instead.
    DontFragment,
    /// MTU below 68, or too small for the header plus 8 data bytes.
    MtuTooSmall,
}

impl fmt::Display for FragError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FragError::Malformed => "malformed",
            FragError::DontFragment => "dont_fragment",
            FragError::MtuTooSmall => "mtu_too_small",
        })
    }
}

impl std::error::Error for FragError {}

/// Splits one IPv4 datagram into fragments for a given MTU. A datagram that
/// already fits is produced as one piece, identical to the original (DF or
/// not).
#[derive(Debug, Clone)]
pub struct Fragmenter<'a> {
    /// The datagram up to its total length (no trailing padding).
    ip: &'a [u8],
    header_len: usize,
    /// Options for non-first fragments, padded; `copied_len` bytes used.
    copied: [u8; MAX_OPTIONS_LEN],
    copied_len: usize,
    /// Data bytes per piece: the first, and every later one.
    first_chunk: usize,
    later_chunk: usize,
    /// Data bytes already written.
    pos: usize,
    /// Original offset (bytes) and MF.
    base_offset: usize,
    base_mf: bool,
    done: bool,
}

impl<'a> Fragmenter<'a> {
    /// Checks `ip` (from its IPv4 header) and plans the pieces for `mtu`.
    pub fn new(ip: &'a [u8], mtu: u16) -> Result<Fragmenter<'a>, FragError> {
        let p = Ipv4Packet::new_checked(ip).map_err(|_| FragError::Malformed)?;
        if p.version() != 4 {
            return Err(FragError::Malformed);
        }
        Ipv4Options::new(p.options()).map_err(|_| FragError::Malformed)?;
        let header_len = p.header_len();
        let total = usize::from(p.total_len());
        let payload = total - header_len;
        let ip = &ip[..total];
        let mut copied = [0u8; MAX_OPTIONS_LEN];
        let copied_len = copied_options(p.options(), &mut copied);
        let mut f = Fragmenter {
            ip,
            header_len,
            copied,
            copied_len,
            first_chunk: payload,
            later_chunk: payload,
            pos: 0,
            base_offset: usize::from(p.frag_offset()),
            base_mf: p.more_frags(),
            done: false,
        };
        if mtu < MIN_MTU {
            return Err(FragError::MtuTooSmall);
        }
        let mtu = usize::from(mtu);
        if total <= mtu {
            return Ok(f);
        }
        if p.dont_frag() {
            return Err(FragError::DontFragment);
        }
        if header_len + 8 > mtu {
            return Err(FragError::MtuTooSmall);
        }
        if f.base_offset + payload > 0xffff {
            return Err(FragError::Malformed);
        }
        f.first_chunk = (mtu - header_len) & !7;
        f.later_chunk = (mtu - ipv4::HEADER_LEN - copied_len) & !7;
        Ok(f)
    }

    fn payload_len(&self) -> usize {
        self.ip.len() - self.header_len
    }

    /// How many fragments this datagram gives in all (not how many remain).
    pub fn count(&self) -> usize {
        let payload = self.payload_len();
        if payload <= self.first_chunk {
            1
        } else {
            1 + (payload - self.first_chunk).div_ceil(self.later_chunk)
        }
    }

    /// Writes the next fragment (header and data) into `out` and returns its
    /// length; `None` when all are written, or when `out` is too small (then
    /// nothing advances and the call can be repeated with a larger buffer).
    pub fn next_into(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.done {
            return None;
        }
        let payload = self.payload_len();
        let first = self.pos == 0;
        if first && self.first_chunk >= payload {
            // It fits: the datagram as it is.
            let n = self.ip.len();
            out.get_mut(..n)?.copy_from_slice(self.ip);
            self.done = true;
            return Some(n);
        }
        let (hl, chunk) = if first {
            (self.header_len, self.first_chunk)
        } else {
            (ipv4::HEADER_LEN + self.copied_len, self.later_chunk)
        };
        let len = chunk.min(payload - self.pos);
        let last = self.pos + len == payload;
        let n = hl + len;
        let buf = out.get_mut(..n)?;
        buf[..ipv4::HEADER_LEN].copy_from_slice(&self.ip[..ipv4::HEADER_LEN]);
        if first {
            buf[ipv4::HEADER_LEN..hl].copy_from_slice(&self.ip[ipv4::HEADER_LEN..hl]);
        } else {
            buf[ipv4::HEADER_LEN..hl].copy_from_slice(&self.copied[..self.copied_len]);
        }
        let data_at = self.header_len + self.pos;
        buf[hl..].copy_from_slice(&self.ip[data_at..data_at + len]);
        let mut p = Ipv4Packet::new_unchecked(buf);
        p.set_header_len(hl);
        p.set_total_len(n as u16);
        p.set_more_frags(!last || self.base_mf);
        p.set_frag_offset((self.base_offset + self.pos) as u16);
        p.fill_checksum();
        self.pos += len;
        self.done = last;
        Some(n)
    }
}

/// Packs the options with the copied flag (type bit 0x80) from `opts` into
/// `out`, pads with EOL to a multiple of 4 and returns the padded length.
/// `opts` has passed `Ipv4Options::new`, so every TLV is in bounds; the
/// walk still uses `get` and stops at anything odd.
fn copied_options(opts: &[u8], out: &mut [u8; MAX_OPTIONS_LEN]) -> usize {
    let mut i = 0;
    let mut n = 0;
    while let Some(&kind) = opts.get(i) {
        match kind {
            0 => break,
            1 => i += 1,
            _ => {
                let Some(&len) = opts.get(i + 1) else { break };
                let len = usize::from(len);
                let Some(opt) = opts.get(i..i + len).filter(|_| len >= 2) else {
                    break;
                };
                if kind & 0x80 != 0 {
                    if let Some(dst) = out.get_mut(n..n + len) {
                        dst.copy_from_slice(opt);
                        n += len;
                    }
                }
                i += len;
            }
        }
    }
    let padded = n.div_ceil(4) * 4;
    out[n..padded].fill(0);
    padded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::Ipv4Repr;
    use crate::wire::IpProtocol;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    fn datagram(opts: &[u8], payload_len: usize, df: bool, mf: bool, off: u16) -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: Ipv4Addr::new(198, 18, 0, 1),
            dst_addr: Ipv4Addr::new(198, 19, 0, 2),
            protocol: IpProtocol::Udp,
            payload_len,
            ttl: 63,
            dscp: 10,
            ecn: 1,
            ident: 0xbeef,
            dont_frag: df,
            more_frags: mf,
            frag_offset: off,
            options: Ipv4Options::new(opts).unwrap(),
        };
        let mut b = vec![0; repr.buffer_len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
        let hl = repr.header_len();
        for (i, x) in b[hl..].iter_mut().enumerate() {
            *x = (i * 7 + 3) as u8;
        }
        b
    }

    fn split(ip: &[u8], mtu: u16) -> Vec<Vec<u8>> {
        let mut f = Fragmenter::new(ip, mtu).unwrap();
        let count = f.count();
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        while let Some(n) = f.next_into(&mut buf) {
            out.push(buf[..n].to_vec());
        }
        assert_eq!(out.len(), count);
        assert_eq!(f.next_into(&mut buf), None);
        out
    }

    /// Reference reassembly (RFC 815 style, no overlap expected): checks
    /// every piece's header and rebuilds (first header, offset, MF, data).
    fn reassemble(frags: &[Vec<u8>], mtu: usize) -> (Vec<u8>, u16, bool, Vec<u8>) {
        let mut data = vec![None; 70000];
        let mut first_hdr = Vec::new();
        let mut start = usize::MAX;
        let mut end = 0;
        let mut last_mf = false;
        for (i, f) in frags.iter().enumerate() {
            assert!(f.len() <= mtu, "piece {i} is {} > {mtu}", f.len());
            let p = Ipv4Packet::new_checked(&f[..]).unwrap();
            let r = Ipv4Repr::parse(&p).expect("valid header and checksum");
            if i + 1 < frags.len() {
                assert_eq!(r.payload_len % 8, 0);
                assert!(r.more_frags);
            }
            if i == 0 {
                first_hdr = f[..p.header_len()].to_vec();
            }
            let off = usize::from(r.frag_offset);
            start = start.min(off);
            if off + r.payload_len >= end {
                end = off + r.payload_len;
                last_mf = r.more_frags;
            }
            for (j, &b) in p.payload().iter().enumerate() {
                assert!(data[off + j].replace(b).is_none(), "overlap");
            }
        }
        let bytes: Vec<u8> = data[start..end].iter().map(|b| b.expect("hole")).collect();
        (first_hdr, start as u16, last_mf, bytes)
    }

    #[test]
    fn splits_1500_for_576() {
        let ip = datagram(&[], 1480, false, false, 0);
        let frags = split(&ip, 576);
        let lens: Vec<usize> = frags.iter().map(Vec::len).collect();
        // 556 & !7 = 552 data per piece: 552 + 552 + 376.
        assert_eq!(lens, [572, 572, 396]);
        let offs: Vec<u16> = frags
            .iter()
            .map(|f| Ipv4Packet::new_unchecked(&f[..]).frag_offset())
            .collect();
        assert_eq!(offs, [0, 552, 1104]);
        let (hdr, off, mf, data) = reassemble(&frags, 576);
        assert_eq!((off, mf), (0, false));
        assert_eq!(
            &hdr[..6],
            &ip[..6]
                .iter()
                .enumerate()
                .map(|(i, &b)| if i == 2 {
                    0x02
                } else if i == 3 {
                    0x3c
                } else {
                    b
                })
                .collect::<Vec<_>>()[..]
        );
        assert_eq!(data, &ip[20..]);
        // Hand-checked first header: total 572 = 0x023c, MF (0x2000), TTL 63.
        assert_eq!(&frags[0][2..9], &[0x02, 0x3c, 0xbe, 0xef, 0x20, 0x00, 63]);
        assert_eq!(&frags[2][6..8], &[0x00, 138]); // 1104 / 8 = 138, MF clear
    }

    #[test]
    fn options_copied_only_when_flagged() {
        // Security (130, copied, 11 bytes), NOP, record route (7, not
        // copied, 7 bytes), LSRR (131, copied, 7 bytes), EOL pad.
        let mut opts = vec![130, 11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 7, 7, 4, 0, 0, 0, 0];
        opts.extend_from_slice(&[131, 7, 4, 198, 18, 0, 9]);
        while opts.len() % 4 != 0 {
            opts.push(0);
        }
        let ip = datagram(&opts, 400, false, false, 0);
        let frags = split(&ip, 200);
        let first = Ipv4Packet::new_unchecked(&frags[0][..]);
        assert_eq!(first.options(), &opts[..]);
        let later = Ipv4Packet::new_unchecked(&frags[1][..]);
        assert_eq!(later.header_len(), 40);
        assert_eq!(
            later.options(),
            &[130, 11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 131, 7, 4, 198, 18, 0, 9, 0, 0]
        );
        let (_, _, _, data) = reassemble(&frags, 200);
        assert_eq!(data, &ip[20 + opts.len()..]);
    }

    #[test]
    fn fragment_of_fragment_keeps_mf_and_offset() {
        let ip = datagram(&[], 1000, false, true, 800);
        let frags = split(&ip, 300);
        for f in &frags {
            assert!(Ipv4Packet::new_unchecked(&f[..]).more_frags());
        }
        let (_, off, mf, data) = reassemble(&frags, 300);
        assert_eq!((off, mf), (800, true));
        assert_eq!(data, &ip[20..]);
    }

    #[test]
    fn errors_and_fits() {
        let ip = datagram(&[], 1000, true, false, 0);
        assert_eq!(
            Fragmenter::new(&ip, 576).unwrap_err(),
            FragError::DontFragment
        );
        // Fits: one piece, byte for byte, DF kept.
        let frags = split(&ip, 1020);
        assert_eq!(frags, std::slice::from_ref(&ip));
        let ip = datagram(&[], 1000, false, false, 0);
        assert_eq!(
            Fragmenter::new(&ip, 67).unwrap_err(),
            FragError::MtuTooSmall
        );
        assert!(Fragmenter::new(&ip, 68).is_ok());
        let big_hdr = datagram(&[1; 40], 100, false, false, 0);
        assert_eq!(
            Fragmenter::new(&big_hdr, 67).unwrap_err(),
            FragError::MtuTooSmall
        );
        // 60-byte header of NOPs: first pieces carry 8 data bytes, later
        // ones (NOPs are not copied, so 20-byte headers) 48: 8 + 48 + 44.
        let lens: Vec<usize> = split(&big_hdr, 68).iter().map(Vec::len).collect();
        assert_eq!(lens, [68, 68, 64]);
        assert_eq!(Fragmenter::new(&big_hdr, 68).unwrap().count(), 3);
        assert_eq!(
            Fragmenter::new(&ip[..19], 576).unwrap_err(),
            FragError::Malformed
        );
        let mut v6 = ip.clone();
        v6[0] = 0x65;
        assert_eq!(Fragmenter::new(&v6, 576).unwrap_err(), FragError::Malformed);
        let near_end = datagram(&[], 1000, false, true, 65000);
        assert_eq!(
            Fragmenter::new(&near_end, 576).unwrap_err(),
            FragError::Malformed
        );
        // Too small an output buffer: nothing advances.
        let mut f = Fragmenter::new(&ip, 576).unwrap();
        assert_eq!(f.next_into(&mut [0u8; 100]), None);
        assert_eq!(f.next_into(&mut [0u8; 576]), Some(572));
    }

    #[test]
    fn trailing_padding_is_not_data() {
        let mut ip = datagram(&[], 100, false, false, 0);
        ip.extend_from_slice(&[0xaa; 30]);
        let frags = split(&ip, 68);
        let (_, _, _, data) = reassemble(&frags, 68);
        assert_eq!(data, &ip[20..120]);
    }

    fn option_set() -> impl Strategy<Value = Vec<u8>> {
        // Pieces: NOP, a copied option, a non-copied one, of random sizes.
        proptest::collection::vec((0u8..3, 2usize..10, any::<u8>()), 0..5).prop_map(|items| {
            let mut o = Vec::new();
            for (kind, len, fill) in items {
                if o.len() + len > 40 {
                    break;
                }
                match kind {
                    0 => o.push(1),
                    1 => {
                        o.push(0x80 | 3);
                        o.push(len as u8);
                        o.extend(std::iter::repeat_n(fill, len - 2));
                    }
                    _ => {
                        o.push(7);
                        o.push(len as u8);
                        o.extend(std::iter::repeat_n(fill, len - 2));
                    }
                }
            }
            while o.len() % 4 != 0 {
                o.push(0);
            }
            o
        })
    }

    proptest! {
        #[test]
        fn reassembles_to_original(opts in option_set(), payload in 0usize..4000, mtu in 68u16..2000, mf in any::<bool>(), off_units in 0u16..100) {
            let ip = datagram(&opts, payload, false, mf, off_units * 8);
            let hl = 20 + opts.len();
            match Fragmenter::new(&ip, mtu) {
                Err(FragError::MtuTooSmall) => prop_assert!(hl + 8 > usize::from(mtu)),
                Err(e) => prop_assert!(false, "{e}"),
                Ok(_) => {
                    let frags = split(&ip, mtu);
                    let (hdr, off, last_mf, data) = reassemble(&frags, usize::from(mtu).max(ip.len().min(usize::from(mtu))));
                    prop_assert_eq!(off, off_units * 8);
                    prop_assert_eq!(last_mf, mf);
                    prop_assert_eq!(&data[..], &ip[hl..]);
                    prop_assert_eq!(&hdr[20..], &ip[20..hl]);
                    prop_assert_eq!(&hdr[..2], &ip[..2]);
                    prop_assert_eq!(&hdr[4..6], &ip[4..6]);
                    prop_assert_eq!(&hdr[8..10], &ip[8..10]);
                    prop_assert_eq!(&hdr[12..20], &ip[12..20]);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000), mtu in any::<u16>()) {
            if let Ok(mut f) = Fragmenter::new(&bytes, mtu) {
                let n = f.count();
                let mut buf = [0u8; 3000];
                let mut got = 0;
                while f.next_into(&mut buf).is_some() {
                    got += 1;
                    prop_assert!(got <= n);
                }
                prop_assert_eq!(got, n);
            }
        }
    }
}
