//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Conventions: a *sum* is the folded 16-bit one's-complement sum of big-endian
//! 16-bit words, as a host integer (`0x1234` is written on the wire as
//! `12 34`). A *checksum* is the one's complement of a sum (`!sum`), the value
//! stored in a header. A buffer whose stored checksum is right sums to `0xffff`.
//!
//! [`data`] reads 8 bytes at a time into two 64-bit accumulators of 32-bit
//! words. Since the one's-complement sum is independent of byte order
//! (RFC 1071 §2(B)), words are read in native order and the folded result is
//! swapped once at the end. Figures in `bench/benches/wire.rs`.

/// The folded one's-complement sum of `data`, as big-endian 16-bit words.
/// An odd trailing byte is padded with a zero byte (RFC 1071).
#[inline]
pub fn data(data: &[u8]) -> u16 {
    let mut acc0: u64 = 0;
    let mut acc1: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        // `chunks_exact(8)` guarantees both halves are 4 bytes.
        let lo = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
        let hi = u32::from_ne_bytes([c[4], c[5], c[6], c[7]]);
        acc0 += u64::from(lo);
        acc1 += u64::from(hi);
    }
    // Each accumulator holds at most 2^29 words for a 4 GiB buffer: no overflow.
    let mut acc = acc0 + acc1;
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_ne_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        // The pad byte goes after `last` in wire order.
        acc += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    u16::from_be(fold(acc))
}

/// Whether an option-less IPv4 header (20 bytes) carries a right checksum:
/// the router's per-packet check, five 32-bit loads and a fold. Falls back
/// to [`data`] for other lengths.
#[inline]
pub fn ipv4_header_ok(h: &[u8]) -> bool {
    if let Some(h20) = h.get(..20).filter(|_| h.len() == 20) {
        let w = |i: usize| {
            u64::from(u32::from_ne_bytes([
                h20[i],
                h20[i + 1],
                h20[i + 2],
                h20[i + 3],
            ]))
        };
        // Byte order does not matter for "sums to all ones" (RFC 1071 §2(B)).
        return fold(w(0) + w(4) + w(8) + w(12) + w(16)) == 0xffff;
    }
    data(h) == 0xffff
}

/// Folds a wide one's-complement accumulator to 16 bits (end-around carry).
#[inline]
pub const fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// One's-complement addition of two sums.
#[inline]
pub const fn add(a: u16, b: u16) -> u16 {
    let s = a as u32 + b as u32;
    ((s & 0xffff) + (s >> 16)) as u16
}

/// One's-complement sum of several sums.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    sums.iter().fold(0, |a, &b| add(a, b))
}

/// Sum of the IPv4 pseudo-header (RFC 768, RFC 9293 §3.1) for an upper-layer
/// packet of `length` bytes with protocol number `protocol`.
#[inline]
pub fn pseudo_header_v4(src: &[u8; 4], dst: &[u8; 4], protocol: u8, length: u16) -> u16 {
    let acc = u64::from(u16::from_be_bytes([src[0], src[1]]))
        + u64::from(u16::from_be_bytes([src[2], src[3]]))
        + u64::from(u16::from_be_bytes([dst[0], dst[1]]))
        + u64::from(u16::from_be_bytes([dst[2], dst[3]]))
        + u64::from(protocol)
        + u64::from(length);
    fold(acc)
}

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1) for an upper-layer packet of
/// `length` bytes with next header `next_header`.
#[inline]
pub fn pseudo_header_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, length: u32) -> u16 {
    let mut acc: u64 = 0;
    for w in src.chunks_exact(2).chain(dst.chunks_exact(2)) {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    acc += u64::from(length >> 16) + u64::from(length & 0xffff) + u64::from(next_header);
    fold(acc)
}

/// The checksum to store for `data` (no pseudo-header).
#[inline]
pub fn checksum(bytes: &[u8]) -> u16 {
    !data(bytes)
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit word of the covered data
/// changed from `old` to `new`. `HC' = ~(~HC + ~m + m')`.
#[inline]
pub const fn update16(check: u16, old: u16, new: u16) -> u16 {
    !add(add(!check, !old), new)
}

/// The new checksum after a 32-bit field (an IPv4 address, a sequence number)
/// changed from `old` to `new`.
#[inline]
pub const fn update32(check: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    let c = update16(
        check,
        u16::from_be_bytes([old[0], old[1]]),
        u16::from_be_bytes([new[0], new[1]]),
    );
    update16(
        c,
        u16::from_be_bytes([old[2], old[3]]),
        u16::from_be_bytes([new[2], new[3]]),
    )
}

/// The new checksum after an even-aligned run of bytes (e.g. an IPv6 address)
/// changed from `old` to `new`. Both slices must have the same even length;
/// extra bytes of the longer one are ignored.
#[inline]
pub fn update_bytes(check: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut acc = u64::from(!check);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += u64::from(!u16::from_be_bytes([o[0], o[1]]));
        acc += u64::from(u16::from_be_bytes([n[0], n[1]]));
    }
    !fold(acc)
}

/// UDP over IPv4 uses 0 for "no checksum", so a computed 0 is sent as 0xffff
/// (RFC 768). Apply to a freshly computed UDP checksum.
#[inline]
pub const fn udp_nonzero(check: u16) -> u16 {
    if check == 0 {
        0xffff
    } else {
        check
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_fast_check_agrees_with_the_general_sum() {
        let mut h = [
            0x45, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 198, 18, 1, 2, 198, 19, 1, 2,
        ];
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(ipv4_header_ok(&h));
        for i in 0..20 {
            let mut bad = h;
            bad[i] ^= 0x10;
            assert!(!ipv4_header_ok(&bad), "byte {i}");
            assert_eq!(ipv4_header_ok(&bad), data(&bad) == 0xffff);
        }
        // With options: the general path.
        let mut o = [0u8; 24];
        o[..20].copy_from_slice(&h);
        o[0] = 0x46;
        o[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&o);
        o[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(ipv4_header_ok(&o));
    }
    use proptest::prelude::*;

    /// Byte-at-a-time reference, straight from RFC 1071 §4.1.
    fn reference(bytes: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut i = 0;
        while i + 1 < bytes.len() {
            sum += u32::from(bytes[i]) << 8 | u32::from(bytes[i + 1]);
            i += 2;
        }
        if i < bytes.len() {
            sum += u32::from(bytes[i]) << 8;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn rfc1071_worked_example() {
        // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&bytes), 0xddf2);
        assert_eq!(checksum(&bytes), 0x220d);
    }

    #[test]
    fn odd_length_pads_low_byte() {
        assert_eq!(data(&[0xab]), 0xab00);
        assert_eq!(data(&[0x00, 0x01, 0xf2]), 0xf201);
        assert_eq!(data(&[]), 0);
    }

    #[test]
    fn real_ipv4_header_verifies() {
        // An IPv4 header of an ICMP echo 198.18.0.1 -> 198.18.0.2, DF, TTL 64.
        let hdr = [
            0x45, 0x00, 0x00, 0x54, 0x4c, 0x8a, 0x40, 0x00, 0x40, 0x01, 0x61, 0xf7, 0xc6, 0x12,
            0x00, 0x01, 0xc6, 0x12, 0x00, 0x02,
        ];
        assert_eq!(data(&hdr), 0xffff);
        let mut zeroed = hdr;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(checksum(&zeroed), 0x61f7);
    }

    #[test]
    fn ttl_decrement_incremental() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x54, 0x4c, 0x8a, 0x40, 0x00, 0x40, 0x01, 0x61, 0xf7, 0xc6, 0x12,
            0x00, 0x01, 0xc6, 0x12, 0x00, 0x02,
        ];
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[8] -= 1;
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let c = update16(0x61f7, old, new);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(data(&hdr), 0xffff);
    }

    #[test]
    fn pseudo_headers() {
        let s = [198, 18, 0, 1];
        let d = [198, 18, 0, 2];
        let mut ph = Vec::new();
        ph.extend_from_slice(&s);
        ph.extend_from_slice(&d);
        ph.extend_from_slice(&[0, 17, 0, 30]);
        assert_eq!(pseudo_header_v4(&s, &d, 17, 30), reference(&ph));

        let s6: [u8; 16] = [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let d6: [u8; 16] = [0x20, 0x01, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 2];
        let mut ph6 = Vec::new();
        ph6.extend_from_slice(&s6);
        ph6.extend_from_slice(&d6);
        ph6.extend_from_slice(&0x0001_0020u32.to_be_bytes());
        ph6.extend_from_slice(&[0, 0, 0, 6]);
        assert_eq!(pseudo_header_v6(&s6, &d6, 6, 0x0001_0020), reference(&ph6));
    }

    proptest! {
        #[test]
        fn fast_sum_equals_reference(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assert_eq!(data(&bytes), reference(&bytes));
        }

        #[test]
        fn sum_of_parts_equals_sum_of_whole(bytes in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..300) {
            let cut = (cut * 2).min(bytes.len() & !1);
            prop_assert_eq!(combine(&[data(&bytes[..cut]), data(&bytes[cut..])]), data(&bytes));
        }

        #[test]
        fn incremental_equals_recompute_16(
            mut bytes in proptest::collection::vec(any::<u8>(), 2..200),
            pos in 0usize..100, new in any::<u16>(),
        ) {
            let len = bytes.len() & !1;
            bytes.truncate(len);
            let pos = (pos * 2) % len;
            let before = checksum(&bytes);
            let old = u16::from_be_bytes([bytes[pos], bytes[pos + 1]]);
            bytes[pos..pos + 2].copy_from_slice(&new.to_be_bytes());
            // One's complement has two zeros; both mean the same sum.
            let inc = update16(before, old, new);
            let full = checksum(&bytes);
            prop_assert!(inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff),
                "inc {:04x} full {:04x}", inc, full);
        }

        #[test]
        fn incremental_equals_recompute_bytes(
            mut bytes in proptest::collection::vec(any::<u8>(), 40..120),
            new4 in any::<[u8; 4]>(), new16 in any::<[u8; 16]>(),
        ) {
            let len = bytes.len() & !1;
            bytes.truncate(len);
            let before = checksum(&bytes);
            let old4: [u8; 4] = bytes[4..8].try_into().unwrap();
            bytes[4..8].copy_from_slice(&new4);
            let c = update32(before, old4, new4);
            let old16 = bytes[10..26].to_vec();
            bytes[10..26].copy_from_slice(&new16);
            let c = update_bytes(c, &old16, &new16);
            let full = checksum(&bytes);
            prop_assert!(c == full || (c == 0xffff && full == 0) || (c == 0 && full == 0xffff));
        }
    }
}
