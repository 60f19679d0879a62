//! Initial sequence numbers (RFC 6528, RFC 9293 §3.4.1) and the keyed hash
//! behind them (SipHash-2-4), which the SYN cookies share.
//!
//! RFC 9293 §3.4.1 asks for `ISN = M + F(localip, localport, remoteip,
//! remoteport, secretkey)` (SHLD-1, the RFC 6528 algorithm): `M` is a clock
//! whose low bit ticks every 4 microseconds (MUST-8), so the ISN of a
//! 4-tuple cycles in 2^32 x 4 us (about 4.8 hours) and a new incarnation of
//! the same 4-tuple starts ahead of the old one; `F` is a keyed pseudo-random
//! function, so an off-path attacker cannot predict one connection's ISN
//! from another's (RFC 6528 §3: `F` must not be computable from outside).
//!
//! Choices:
//! - `F` is SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input
//!   PRF", INDOCRYPT 2012), written out here because it is small and std's
//!   copy is deprecated. RFC 6528 suggests MD5; any keyed PRF will do, and
//!   SipHash is built for short inputs like a 12-byte 4-tuple.
//!   The low 32 bits of its 64-bit output are used.
//! - The message is the 4-tuple in network byte order: local address, local
//!   port, remote address, remote port (12 bytes).
//! - The 128-bit key is random per engine start (std's `RandomState`, which
//!   the OS seeds, hashed with the time, as `nat::table::Seeded` does) and
//!   never leaves the generator: `Debug` prints no key.
//! - The clock is the caller's: `now_us` is microseconds on any monotonic
//!   clock; `M = now_us / 4` truncated to 32 bits (it wraps, as it must).
//!
//! Nothing here allocates, makes system calls (after construction) or
//! panics; one ISN costs one SipHash of 12 bytes: 30 ns (measured, release
//! build, a scratch loop over 10M tuples on this machine).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddrV4;

/// SipHash-2-4 with a fixed 128-bit key: a keyed pseudo-random function on
/// byte strings with a 64-bit output (Aumasson & Bernstein 2012). The key
/// is not printed by `Debug`.
#[derive(Clone)]
pub struct SipHash24 {
    k0: u64,
    k1: u64,
}

impl fmt::Debug for SipHash24 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SipHash24 { key: <secret> }")
    }
}

/// The SipHash state: v0..v3 of the paper.
struct State([u64; 4]);

impl State {
    /// One SipRound (the paper's §2, figure 2.1).
    #[inline(always)]
    fn round(&mut self) {
        let [mut v0, mut v1, mut v2, mut v3] = self.0;
        v0 = v0.wrapping_add(v1);
        v1 = v1.rotate_left(13);
        v1 ^= v0;
        v0 = v0.rotate_left(32);
        v2 = v2.wrapping_add(v3);
        v3 = v3.rotate_left(16);
        v3 ^= v2;
        v0 = v0.wrapping_add(v3);
        v3 = v3.rotate_left(21);
        v3 ^= v0;
        v2 = v2.wrapping_add(v1);
        v1 = v1.rotate_left(17);
        v1 ^= v2;
        v2 = v2.rotate_left(32);
        self.0 = [v0, v1, v2, v3];
    }

    /// Compression of one 64-bit message word: c = 2 rounds.
    #[inline(always)]
    fn compress(&mut self, m: u64) {
        self.0[3] ^= m;
        self.round();
        self.round();
        self.0[0] ^= m;
    }
}

impl SipHash24 {
    /// A hash keyed with `key` (k0 = bytes 0..8, k1 = bytes 8..16, little
    /// endian, as in the paper).
    pub fn new(key: [u8; 16]) -> SipHash24 {
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&key[..8]);
        k1.copy_from_slice(&key[8..]);
        SipHash24 {
            k0: u64::from_le_bytes(k0),
            k1: u64::from_le_bytes(k1),
        }
    }

    /// A hash with a key that is random per call (see the module doc).
    pub fn random() -> SipHash24 {
        SipHash24::new(random_key())
    }

    /// SipHash-2-4 of `msg`.
    pub fn hash(&self, msg: &[u8]) -> u64 {
        // Initialisation: the key XORed with "somepseudorandomlygeneratedbytes".
        let mut s = State([
            self.k0 ^ 0x736f_6d65_7073_6575,
            self.k1 ^ 0x646f_7261_6e64_6f6d,
            self.k0 ^ 0x6c79_6765_6e65_7261,
            self.k1 ^ 0x7465_6462_7974_6573,
        ]);
        let mut words = msg.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            s.compress(u64::from_le_bytes(b));
        }
        // The last word: the remaining 0..7 bytes, the length mod 256 on top.
        let rest = words.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        last[7] = msg.len() as u8;
        s.compress(u64::from_le_bytes(last));
        // Finalisation: d = 4 rounds.
        s.0[2] ^= 0xff;
        for _ in 0..4 {
            s.round();
        }
        s.0[0] ^ s.0[1] ^ s.0[2] ^ s.0[3]
    }
}

/// 128 random bits for a key: std's `RandomState` (seeded by the OS once per
/// thread, then stepped per instance) hashing the wall clock, one instance
/// per half. Called at construction only.
fn random_key() -> [u8; 16] {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut key = [0u8; 16];
    for (i, half) in key.chunks_exact_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(t);
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    key
}

/// The 4-tuple as the hashes see it: local address, local port, remote
/// address, remote port, network byte order (12 bytes).
#[inline]
pub(crate) fn tuple_bytes(local: SocketAddrV4, remote: SocketAddrV4) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0..4].copy_from_slice(&local.ip().octets());
    b[4..6].copy_from_slice(&local.port().to_be_bytes());
    b[6..10].copy_from_slice(&remote.ip().octets());
    b[10..12].copy_from_slice(&remote.port().to_be_bytes());
    b
}

/// Makes initial sequence numbers per RFC 6528 (see the module doc). One
/// per engine (or per worker): the key is fixed for the generator's life,
/// so a 4-tuple's ISNs keep advancing with the clock.
#[derive(Debug, Clone)]
pub struct IsnGenerator {
    prf: SipHash24,
}

impl Default for IsnGenerator {
    fn default() -> Self {
        IsnGenerator::new()
    }
}

impl IsnGenerator {
    /// A generator with a random secret key.
    pub fn new() -> IsnGenerator {
        IsnGenerator {
            prf: SipHash24::random(),
        }
    }

    /// A generator with a known key (tests, reproducible runs).
    pub fn with_key(key: [u8; 16]) -> IsnGenerator {
        IsnGenerator {
            prf: SipHash24::new(key),
        }
    }

    /// The ISN for a connection from `local` to `remote` at `now_us`
    /// microseconds of a monotonic clock: `now_us / 4 + F(tuple)` mod 2^32.
    #[inline]
    pub fn isn(&self, local: SocketAddrV4, remote: SocketAddrV4, now_us: u64) -> u32 {
        let m = (now_us / 4) as u32;
        let f = self.prf.hash(&tuple_bytes(local, remote)) as u32;
        m.wrapping_add(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    fn ep(a: [u8; 4], port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(a), port)
    }

    #[test]
    fn siphash_paper_vector() {
        // The SipHash paper, appendix A: key 00..0f, message 00..0e.
        let msg: [u8; 15] = core::array::from_fn(|i| i as u8);
        assert_eq!(SipHash24::new(KEY).hash(&msg), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn siphash_reference_vectors_short_messages() {
        // The reference implementation's vectors.h (output bytes are the
        // little-endian 64-bit result): messages 00..(n-1), key 00..0f.
        let h = SipHash24::new(KEY);
        assert_eq!(
            h.hash(&[]),
            u64::from_le_bytes([0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72])
        );
        assert_eq!(
            h.hash(&[0]),
            u64::from_le_bytes([0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74])
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let g = IsnGenerator::with_key([0xab; 16]);
        let s = format!("{g:?}");
        assert!(!s.contains("ab") && !s.contains("171"), "{s}");
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(random_key(), random_key());
        let (a, b) = (IsnGenerator::new(), IsnGenerator::new());
        let (l, r) = (ep([10, 0, 0, 1], 80), ep([10, 0, 0, 2], 40000));
        // Equal with probability 2^-32.
        assert_ne!(a.isn(l, r, 0), b.isn(l, r, 0));
    }

    #[test]
    fn advances_250k_per_second() {
        let g = IsnGenerator::with_key(KEY);
        let (l, r) = (ep([192, 0, 2, 1], 443), ep([198, 51, 100, 7], 51234));
        let t0 = 1_234_567_890_123;
        let i0 = g.isn(l, r, t0);
        assert_eq!(g.isn(l, r, t0 + 1_000_000).wrapping_sub(i0), 250_000);
        assert_eq!(g.isn(l, r, t0 + 4).wrapping_sub(i0), 1);
        assert_eq!(g.isn(l, r, t0), i0, "a function of its inputs");
        // The clock wraps after 2^32 ticks of 4 us (about 4.77 hours):
        // the ISN wraps with it.
        assert_eq!(g.isn(l, r, t0 + (4 << 32)), i0);
        // No panic at the clock's ends.
        let _ = g.isn(l, r, u64::MAX);
        let _ = g.isn(l, r, 0);
    }

    #[test]
    fn neighbouring_tuples_give_unrelated_isns() {
        let g = IsnGenerator::with_key(KEY);
        let l = ep([10, 1, 1, 1], 80);
        let base = g.isn(l, ep([10, 2, 2, 2], 50000), 0);
        let mut bits = 0u32;
        let n = 1000u32;
        let mut seen = std::collections::HashSet::new();
        for i in 1..=n {
            let port = 50000 + i as u16;
            let isn = g.isn(l, ep([10, 2, 2, 2], port), 0);
            assert!(seen.insert(isn), "port {port}");
            bits += (isn ^ base).count_ones();
        }
        // About half of the 32 bits flip between neighbours.
        let mean = f64::from(bits) / f64::from(n);
        assert!((15.0..17.0).contains(&mean), "mean flipped bits {mean}");
        // Each field of the tuple counts, and local and remote are not symmetric.
        let (a, b) = (ep([10, 1, 1, 1], 80), ep([10, 2, 2, 2], 50000));
        let isn = g.isn(a, b, 0);
        assert_ne!(isn, g.isn(b, a, 0));
        assert_ne!(isn, g.isn(ep([10, 1, 1, 2], 80), b, 0));
        assert_ne!(isn, g.isn(ep([10, 1, 1, 1], 81), b, 0));
        assert_ne!(isn, g.isn(a, ep([10, 2, 2, 3], 50000), 0));
        // Another key, other ISNs.
        assert_ne!(isn, IsnGenerator::with_key([7; 16]).isn(a, b, 0));
    }

    proptest! {
        #[test]
        fn siphash_agrees_with_std(key in any::<[u8; 16]>(), msg in proptest::collection::vec(any::<u8>(), 0..64)) {
            #[allow(deprecated)]
            let mut h = std::hash::SipHasher::new_with_keys(
                u64::from_le_bytes(key[..8].try_into().unwrap()),
                u64::from_le_bytes(key[8..].try_into().unwrap()),
            );
            h.write(&msg);
            prop_assert_eq!(SipHash24::new(key).hash(&msg), h.finish());
        }

        #[test]
        fn isn_is_clock_plus_a_tuple_offset(a in any::<u32>(), pa in any::<u16>(), b in any::<u32>(), pb in any::<u16>(),
                                            t in any::<u64>(), dt in 0u64..1 << 40) {
            let g = IsnGenerator::with_key(KEY);
            let (l, r) = (SocketAddrV4::new(a.into(), pa), SocketAddrV4::new(b.into(), pb));
            let t1 = t.saturating_add(dt);
            let expect = ((t1 / 4) as u32).wrapping_sub((t / 4) as u32);
            prop_assert_eq!(g.isn(l, r, t1).wrapping_sub(g.isn(l, r, t)), expect);
        }
    }
}
