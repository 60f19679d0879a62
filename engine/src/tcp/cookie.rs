//! SYN cookies (RFC 4987 §3.6), used when the SYN backlog is full: the
//! SYN-ACK's sequence number encodes what the connection needs, so the
//! listener keeps no state until the client's ACK comes back and proves it
//! saw the SYN-ACK.
//!
//! The cookie is a 32-bit ISN in the Linux style:
//!
//! ```text
//!   31      27 26  24 23                                   0
//!  +----------+------+--------------------------------------+
//!  | t (5)    | mss  | MAC (24): SipHash(tuple, client ISN, |  XOR  mask (32): SipHash(tuple,
//!  | period   | idx  |   full period number, mss idx)       |         client ISN)
//!  +----------+------+--------------------------------------+
//! ```
//!
//! - `t` is the period number `now_s / 64` mod 32 (a 64 s period). A cookie
//!   is accepted while the current period is the one it was made in or one
//!   of the next two ([`MAX_AGE`]): a cookie lives at least 128 s and less
//!   than 192 s (made at the end of a period, or at its start). The MAC
//!   covers the full 64-bit period number, not just `t`, so a cookie 32
//!   periods old (or any multiple) does not come back to life when `t`
//!   wraps; `t` only saves trying each period in the window.
//! - `mss idx` picks one of [`MSS_TABLE`] (3 bits, 8 values): the largest
//!   entry not above the MSS the client announced. The MAC covers it, so a
//!   client cannot raise its MSS by editing the bits.
//! - The MAC is the low 24 bits of SipHash-2-4 ([`super::isn::SipHash24`])
//!   over the 4-tuple (local address and port, remote address and port),
//!   the client's ISN, the period number and the MSS index. A blind
//!   attacker's forged ACK is accepted with probability 2^-24.
//! - The mask, a second SipHash over the 4-tuple and the client's ISN,
//!   hides the clock and the MSS index (as Linux's `hash1 + sseq` does), so
//!   a cookie's bits are all unpredictable from outside, like any ISN
//!   (RFC 6528). The check can recompute it from the ACK alone.
//! - The key is random per engine start (like the ISN key, a separate one)
//!   and never printed.
//!
//! What a cookie cannot carry: without TCP timestamps there is no room for
//! the window scale or SACK-permitted options (Linux hides them in the
//! timestamp; this endpoint does not send timestamps), so a connection
//! opened by cookie gets no window scaling (a 65535-byte window) and no
//! SACK (which this endpoint does not do anyway), as in Linux without TCP
//! timestamps. The SYN-ACK sent with a cookie should therefore carry only
//! the MSS option. Other costs (RFC 4987 §3.6): a lost final ACK cannot be
//! retransmitted by the listener, and an ACK replayed within the window
//! opens the connection again (the cookie is stateless).
//!
//! Use: on a SYN with the backlog full, answer with `seq = make(local,
//! remote, seg.seq, mss, now_s)`; on an ACK matching no connection, `check
//! (local, remote, seg.seq - 1, seg.ack - 1, now_s)` (the ACK's sequence
//! number is the client's ISN + 1 and acknowledges the cookie + 1) gives
//! the MSS to open the connection with, or `None`: drop (or reset).
//! `now_s` is seconds on a monotonic clock, the same for both calls.
//!
//! Each call costs two SipHashes of at most 26 bytes: 70 ns for `make` or
//! `check` (measured, release build, a scratch loop on this machine). No
//! allocation, no panic on any input.

use std::net::SocketAddrV4;

use super::isn::{tuple_bytes, SipHash24};

/// MSS values a cookie can carry (3-bit index), ascending:
/// - 536: the default when a SYN carries no MSS option (RFC 9293 §3.7.1);
///   also the floor: a smaller announced MSS is rounded up to it, as Linux
///   does (a caller that must honour such a peer should not use a cookie);
/// - 1220: paths with the IPv6 minimum MTU of 1280 (tunnels, 464XLAT);
/// - 1300: Linux's table, common MSS clamping on VPNs;
/// - 1380: WireGuard's default MTU 1420 less 40;
/// - 1440: IPv6 over Ethernet (1500 - 40 - 20), also in Linux's table;
/// - 1452: PPPoE (1492 - 40);
/// - 1460: IPv4 over Ethernet (1500 - 40);
/// - 8960: 9000-byte jumbo frames.
pub const MSS_TABLE: [u16; 8] = [536, 1220, 1300, 1380, 1440, 1452, 1460, 8960];

/// Seconds per period of the cookie's counter.
pub const PERIOD_S: u64 = 64;

/// Periods a cookie stays valid after the one it was made in.
pub const MAX_AGE: u32 = 2;

/// Width of the counter field (periods mod 32).
const T_BITS: u32 = 5;
const T_MASK: u32 = (1 << T_BITS) - 1;
const T_SHIFT: u32 = 27;
const MSS_SHIFT: u32 = 24;
const MSS_MASK: u32 = 0x7;
const MAC_MASK: u32 = 0x00ff_ffff;

/// Domain tags, so the mask and the MAC are independent functions.
const TAG_MASK: u8 = 1;
const TAG_MAC: u8 = 2;

/// Makes and checks SYN cookies under one secret key (see the module doc).
#[derive(Debug, Clone)]
pub struct SynCookies {
    prf: SipHash24,
}

impl Default for SynCookies {
    fn default() -> Self {
        SynCookies::new()
    }
}

/// The MSS table index for an announced MSS: the largest entry not above
/// it, 0 below the table.
#[inline]
fn mss_index(mss: u16) -> u32 {
    MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0) as u32
}

impl SynCookies {
    /// Cookies under a random secret key.
    pub fn new() -> SynCookies {
        SynCookies {
            prf: SipHash24::random(),
        }
    }

    /// Cookies under a known key (tests).
    pub fn with_key(key: [u8; 16]) -> SynCookies {
        SynCookies {
            prf: SipHash24::new(key),
        }
    }

    /// The cookie (our ISN for the SYN-ACK) for a SYN from `remote` to
    /// `local` with sequence number `client_isn`, announcing `mss` (536
    /// if the SYN had no MSS option), at `now_s`.
    pub fn make(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        client_isn: u32,
        mss: u16,
        now_s: u64,
    ) -> u32 {
        let period = now_s / PERIOD_S;
        let idx = mss_index(mss);
        let t = (period as u32) & T_MASK;
        let mac = self.mac(local, remote, client_isn, period, idx);
        let v = t << T_SHIFT | idx << MSS_SHIFT | mac;
        v ^ self.mask(local, remote, client_isn)
    }

    /// The MSS encoded in `cookie` if it is one this key made for this
    /// 4-tuple and client ISN, in the current period or one of the
    /// [`MAX_AGE`] before it; `None` otherwise.
    pub fn check(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        client_isn: u32,
        cookie: u32,
        now_s: u64,
    ) -> Option<u16> {
        let v = cookie ^ self.mask(local, remote, client_isn);
        let t = v >> T_SHIFT;
        let idx = (v >> MSS_SHIFT) & MSS_MASK;
        let now = now_s / PERIOD_S;
        // Periods since the cookie was made, mod 32; a cookie "from the
        // future" shows as 31 or so and fails.
        let age = (now as u32).wrapping_sub(t) & T_MASK;
        if age > MAX_AGE {
            return None;
        }
        let period = now.checked_sub(u64::from(age))?;
        if self.mac(local, remote, client_isn, period, idx) != v & MAC_MASK {
            return None;
        }
        MSS_TABLE.get(idx as usize).copied()
    }

    fn mask(&self, local: SocketAddrV4, remote: SocketAddrV4, client_isn: u32) -> u32 {
        let mut m = [0u8; 17];
        m[..12].copy_from_slice(&tuple_bytes(local, remote));
        m[12..16].copy_from_slice(&client_isn.to_be_bytes());
        m[16] = TAG_MASK;
        self.prf.hash(&m) as u32
    }

    fn mac(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        client_isn: u32,
        period: u64,
        idx: u32,
    ) -> u32 {
        let mut m = [0u8; 26];
        m[..12].copy_from_slice(&tuple_bytes(local, remote));
        m[12..16].copy_from_slice(&client_isn.to_be_bytes());
        m[16..24].copy_from_slice(&period.to_be_bytes());
        m[24] = idx as u8;
        m[25] = TAG_MAC;
        self.prf.hash(&m) as u32 & MAC_MASK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const KEY: [u8; 16] = *b"cookie test key!";

    fn ep(a: [u8; 4], port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(a), port)
    }

    fn setup() -> (SynCookies, SocketAddrV4, SocketAddrV4) {
        (
            SynCookies::with_key(KEY),
            ep([192, 0, 2, 1], 80),
            ep([198, 51, 100, 9], 40123),
        )
    }

    /// Some time well past the clock's start.
    const NOW: u64 = 1_000_000;

    #[test]
    fn round_trip_for_each_mss() {
        let (c, l, r) = setup();
        for (i, &mss) in MSS_TABLE.iter().enumerate() {
            let cookie = c.make(l, r, 0x1234_5678, mss, NOW);
            assert_eq!(
                c.check(l, r, 0x1234_5678, cookie, NOW),
                Some(mss),
                "entry {i}"
            );
            // One above the entry still encodes the entry (floor).
            let cookie = c.make(l, r, 0x1234_5678, mss + 1, NOW);
            assert_eq!(c.check(l, r, 0x1234_5678, cookie, NOW), Some(mss));
        }
    }

    #[test]
    fn mss_rounds_down_and_clamps() {
        let (c, l, r) = setup();
        let rt = |mss| c.check(l, r, 7, c.make(l, r, 7, mss, NOW), NOW);
        assert_eq!(rt(0), Some(536));
        assert_eq!(rt(535), Some(536));
        assert_eq!(rt(1219), Some(536));
        assert_eq!(rt(1459), Some(1452));
        assert_eq!(rt(9000), Some(8960));
        assert_eq!(rt(u16::MAX), Some(8960));
    }

    #[test]
    fn rejects_a_modified_tuple_or_isn() {
        let (c, l, r) = setup();
        let isn = 0xdead_beef;
        let cookie = c.make(l, r, isn, 1460, NOW);
        assert_eq!(c.check(l, r, isn, cookie, NOW), Some(1460));
        assert_eq!(c.check(r, l, isn, cookie, NOW), None, "swapped ends");
        assert_eq!(c.check(ep([192, 0, 2, 2], 80), r, isn, cookie, NOW), None);
        assert_eq!(c.check(ep([192, 0, 2, 1], 81), r, isn, cookie, NOW), None);
        assert_eq!(
            c.check(l, ep([198, 51, 100, 8], 40123), isn, cookie, NOW),
            None
        );
        assert_eq!(
            c.check(l, ep([198, 51, 100, 9], 40124), isn, cookie, NOW),
            None
        );
        for bit in 0..32 {
            assert_eq!(
                c.check(l, r, isn ^ 1 << bit, cookie, NOW),
                None,
                "isn bit {bit}"
            );
        }
        // Another key.
        assert_eq!(
            SynCookies::with_key([1; 16]).check(l, r, isn, cookie, NOW),
            None
        );
    }

    #[test]
    fn rejects_a_modified_cookie() {
        let (c, l, r) = setup();
        for isn in [0u32, 1, 0x8000_0000, u32::MAX, 0x0bad_cafe] {
            let cookie = c.make(l, r, isn, 1460, NOW);
            for bit in 0..32 {
                assert_eq!(
                    c.check(l, r, isn, cookie ^ 1 << bit, NOW),
                    None,
                    "isn {isn:#x} bit {bit}"
                );
            }
            assert_eq!(c.check(l, r, isn, cookie.wrapping_add(1), NOW), None);
            assert_eq!(c.check(l, r, isn, cookie.wrapping_sub(1), NOW), None);
        }
    }

    #[test]
    fn a_clients_mss_bits_cannot_be_raised() {
        // Try every MSS index with every period bit pattern unchanged: only
        // the real one passes (the MAC covers the index).
        let (c, l, r) = setup();
        let isn = 42;
        let cookie = c.make(l, r, isn, 536, NOW);
        let mask = c.mask(l, r, isn);
        let v = cookie ^ mask;
        for idx in 1..8u32 {
            let forged = (v & !(MSS_MASK << MSS_SHIFT) | idx << MSS_SHIFT) ^ mask;
            assert_eq!(c.check(l, r, isn, forged, NOW), None, "index {idx}");
        }
    }

    #[test]
    fn window_edges() {
        let (c, l, r) = setup();
        let start = 64 * 1000; // The first second of a period.
        let end = start + 63; // Its last second.
        let a = c.make(l, r, 5, 1460, start);
        let b = c.make(l, r, 5, 1460, end);
        // Accepted up to the end of the second period after (191 s and 128 s old).
        assert_eq!(c.check(l, r, 5, a, start + 191), Some(1460));
        assert_eq!(c.check(l, r, 5, b, end + 128), Some(1460));
        // Expired one second later.
        assert_eq!(c.check(l, r, 5, a, start + 192), None);
        assert_eq!(c.check(l, r, 5, b, end + 129), None);
        // Every age inside the window.
        for s in start..start + 192 {
            assert_eq!(c.check(l, r, 5, a, s), Some(1460), "at {s}");
        }
        // From the future (a clock that went back): rejected.
        assert_eq!(c.check(l, r, 5, a, start - 1), None);
    }

    #[test]
    fn no_revival_when_the_counter_wraps() {
        let (c, l, r) = setup();
        let cookie = c.make(l, r, 9, 1460, NOW);
        for periods in [32u64, 64, 33, 96] {
            let later = NOW + periods * PERIOD_S;
            assert_eq!(
                c.check(l, r, 9, cookie, later),
                None,
                "{periods} periods later"
            );
        }
    }

    #[test]
    fn clock_start_and_end() {
        let (c, l, r) = setup();
        // Period 0: ages that would reach before the clock's start fail.
        let cookie = c.make(l, r, 3, 1460, 0);
        assert_eq!(c.check(l, r, 3, cookie, 0), Some(1460));
        assert_eq!(c.check(l, r, 3, cookie, 128), Some(1460));
        for cookie in [0, 1, u32::MAX, 0x1234_5678] {
            for now in [0, 1, 64, u64::MAX] {
                let _ = c.check(l, r, 3, cookie, now);
            }
        }
        let cookie = c.make(l, r, 3, 1460, u64::MAX);
        assert_eq!(c.check(l, r, 3, cookie, u64::MAX), Some(1460));
    }

    #[test]
    fn cookies_look_random() {
        // The mask hides the counter and the MSS index: the top byte of
        // cookies made at the same time for one MSS varies.
        let (c, l, _) = setup();
        let mut tops = std::collections::HashSet::new();
        for port in 1000..1400u16 {
            tops.insert(c.make(l, ep([198, 51, 100, 9], port), 1, 1460, NOW) >> 24);
        }
        // 400 draws of 256 values: about 202 distinct if random, 1 if not masked.
        assert!(tops.len() > 150, "{} distinct top bytes", tops.len());
    }

    proptest! {
        #[test]
        fn round_trip(la in any::<u32>(), lp in any::<u16>(), ra in any::<u32>(), rp in any::<u16>(),
                      isn in any::<u32>(), mss in any::<u16>(), made in 0u64..1 << 40, age in 0u64..192) {
            let c = SynCookies::with_key(KEY);
            let (l, r) = (SocketAddrV4::new(la.into(), lp), SocketAddrV4::new(ra.into(), rp));
            let cookie = c.make(l, r, isn, mss, made);
            let now = made + age;
            let expect = MSS_TABLE[mss_index(mss) as usize];
            prop_assert!(expect <= mss.max(536));
            let in_window = now / PERIOD_S - made / PERIOD_S <= u64::from(MAX_AGE);
            prop_assert_eq!(c.check(l, r, isn, cookie, now), in_window.then_some(expect));
        }
    }
}
