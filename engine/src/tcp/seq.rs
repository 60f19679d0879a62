//! TCP sequence numbers: arithmetic and comparison modulo 2^32
//! (RFC 9293 §3.4, serial number arithmetic of RFC 1982 §3).
//!
//! A sequence number is a point on a circle of 2^32 bytes. `a` is before
//! `b` when going forward from `a` reaches `b` in fewer than 2^31 steps,
//! i.e. `(b - a) as i32 > 0`. This is only meaningful for numbers less than
//! 2^31 apart, which TCP guarantees for the numbers it compares (a window is
//! at most 2^30 bytes, RFC 7323 §2.3).
//!
//! [`Seq`] deliberately implements neither `Ord` nor `PartialOrd`: the
//! relation is not transitive (0 < 2^30 < 2^31 < 3·2^30 < 0 going round the
//! circle), and two numbers exactly 2^31 apart are neither before nor after
//! each other, so sorting or a `BTreeMap` keyed by `Seq` would silently break.
//! Comparisons are the named methods [`Seq::lt`], [`Seq::le`], [`Seq::gt`],
//! [`Seq::ge`], [`Seq::max`], [`Seq::min`] and [`Seq::in_window`].

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

/// A TCP sequence (or acknowledgment) number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    /// The raw 32-bit value, as carried on the wire.
    #[inline]
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Signed distance from `other` to `self` (`self - other`): positive when
    /// `self` is after `other`. Exactly 2^31 apart gives `i32::MIN`.
    #[inline]
    pub const fn dist(self, other: Seq) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// Bytes from `base` forward to `self`, in `0..2^32` (`self - base`
    /// taken unsigned). The offset of `self` in a window starting at `base`.
    #[inline]
    pub const fn offset_from(self, base: Seq) -> u32 {
        self.0.wrapping_sub(base.0)
    }

    /// `self` is strictly before `other`.
    #[inline]
    pub const fn lt(self, other: Seq) -> bool {
        other.dist(self) > 0
    }

    /// `self` is before or equal to `other`.
    #[inline]
    pub const fn le(self, other: Seq) -> bool {
        self.0 == other.0 || self.lt(other)
    }

    /// `self` is strictly after `other`.
    #[inline]
    pub const fn gt(self, other: Seq) -> bool {
        other.lt(self)
    }

    /// `self` is after or equal to `other`.
    #[inline]
    pub const fn ge(self, other: Seq) -> bool {
        other.le(self)
    }

    /// The later of the two in sequence order (`self` when neither is later).
    #[inline]
    pub const fn max(self, other: Seq) -> Seq {
        if self.lt(other) {
            other
        } else {
            self
        }
    }

    /// The earlier of the two in sequence order (`self` when neither is earlier).
    #[inline]
    pub const fn min(self, other: Seq) -> Seq {
        if other.lt(self) {
            other
        } else {
            self
        }
    }

    /// `start <= self < start + len` modulo 2^32. `len == 0` accepts only
    /// `self == start`, which is what RFC 9293 §3.10.7.4's acceptability test
    /// needs for a zero window (`SEG.SEQ = RCV.NXT`). Any `len` up to 2^32-1
    /// is well defined, as the test is on the unsigned offset from `start`.
    #[inline]
    pub const fn in_window(self, start: Seq, len: u32) -> bool {
        if len == 0 {
            self.0 == start.0
        } else {
            self.offset_from(start) < len
        }
    }
}

impl From<u32> for Seq {
    #[inline]
    fn from(v: u32) -> Seq {
        Seq(v)
    }
}

impl From<Seq> for u32 {
    #[inline]
    fn from(s: Seq) -> u32 {
        s.0
    }
}

impl Add<u32> for Seq {
    type Output = Seq;
    #[inline]
    fn add(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }
}

impl AddAssign<u32> for Seq {
    #[inline]
    fn add_assign(&mut self, n: u32) {
        self.0 = self.0.wrapping_add(n);
    }
}

impl Sub<u32> for Seq {
    type Output = Seq;
    #[inline]
    fn sub(self, n: u32) -> Seq {
        Seq(self.0.wrapping_sub(n))
    }
}

impl SubAssign<u32> for Seq {
    #[inline]
    fn sub_assign(&mut self, n: u32) {
        self.0 = self.0.wrapping_sub(n);
    }
}

/// `a - b` is the signed distance [`Seq::dist`].
impl Sub<Seq> for Seq {
    type Output = i32;
    #[inline]
    fn sub(self, other: Seq) -> i32 {
        self.dist(other)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HALF: u32 = 1 << 31;

    #[test]
    fn plain_order() {
        let (a, b) = (Seq(100), Seq(200));
        assert!(a.lt(b) && a.le(b) && !a.gt(b) && !a.ge(b));
        assert!(b.gt(a) && b.ge(a) && !b.lt(a) && !b.le(a));
        assert!(a.le(a) && a.ge(a) && !a.lt(a) && !a.gt(a));
        assert_eq!(b - a, 100);
        assert_eq!(a - b, -100);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
    }

    #[test]
    fn wraparound() {
        let last = Seq(u32::MAX);
        let first = last + 1;
        assert_eq!(first, Seq(0));
        assert!(last.lt(first) && first.gt(last));
        assert_eq!(first - last, 1);
        assert_eq!(Seq(5) - Seq(u32::MAX - 4), 10);
        assert_eq!(Seq(0) - 1u32, last);
        assert_eq!(Seq(3).max(Seq(u32::MAX - 3)), Seq(3));
        assert_eq!(Seq(3).min(Seq(u32::MAX - 3)), Seq(u32::MAX - 3));
        let mut s = Seq(u32::MAX - 1);
        s += 3;
        assert_eq!(s, Seq(1));
        s -= 2;
        assert_eq!(s, last);
        // Largest forward step that still compares "after".
        assert!(Seq(0).lt(Seq(HALF - 1)));
        assert!(Seq(u32::MAX).lt(Seq(HALF - 2)));
    }

    #[test]
    fn exactly_half_apart_is_unordered() {
        let (a, b) = (Seq(7), Seq(7 + HALF));
        assert!(!a.lt(b) && !b.lt(a) && !a.le(b) && !b.ge(a));
        assert_eq!(b - a, i32::MIN);
        assert_eq!(a.max(b), a);
        assert_eq!(b.max(a), b);
    }

    #[test]
    fn windows() {
        // RCV.NXT = 2^32 - 10, RCV.WND = 20: the window straddles zero.
        let nxt = Seq(u32::MAX - 9);
        assert!(nxt.in_window(nxt, 20));
        assert!(Seq(u32::MAX).in_window(nxt, 20));
        assert!(Seq(0).in_window(nxt, 20));
        assert!(Seq(9).in_window(nxt, 20));
        assert!(!Seq(10).in_window(nxt, 20));
        assert!(!(nxt - 1).in_window(nxt, 20));
        // Zero window: only RCV.NXT itself.
        assert!(nxt.in_window(nxt, 0));
        assert!(!(nxt + 1).in_window(nxt, 0));
        assert!(!(nxt - 1).in_window(nxt, 0));
        // The whole circle but one.
        assert!((nxt - 2).in_window(nxt, u32::MAX));
        assert!(!(nxt - 1).in_window(nxt, u32::MAX));
    }

    #[test]
    fn display_and_conversions() {
        assert_eq!(Seq(4_294_967_295).to_string(), "4294967295");
        assert_eq!(format!("{:?}", Seq(1)), "Seq(1)");
        assert_eq!(u32::from(Seq::from(42)), 42);
        assert_eq!(Seq(42).get(), 42);
        assert_eq!(Seq(10).offset_from(Seq(u32::MAX)), 11);
    }

    proptest! {
        #[test]
        fn antisymmetric_and_total_within_half(a: u32, d in 1u32..HALF) {
            let (x, y) = (Seq(a), Seq(a) + d);
            prop_assert!(x.lt(y) && y.gt(x));
            prop_assert!(!y.lt(x) && !x.gt(y));
            prop_assert_eq!(y - x, d as i32);
            prop_assert_eq!(x - y, -(d as i32));
            prop_assert_eq!(x.max(y), y);
            prop_assert_eq!(y.min(x), x);
        }

        #[test]
        fn at_most_one_relation(a: u32, b: u32) {
            let (x, y) = (Seq(a), Seq(b));
            let n = [x.lt(y), x == y, x.gt(y)].iter().filter(|r| **r).count();
            prop_assert!(n <= 1);
            prop_assert_eq!(n == 0, b.wrapping_sub(a) == HALF);
            prop_assert_eq!(x.le(y), x.lt(y) || x == y);
            prop_assert_eq!(x.ge(y), y.le(x));
        }

        #[test]
        fn add_then_dist_round_trips(a: u32, d in (i32::MIN + 1)..=i32::MAX) {
            let x = Seq(a);
            let y = x + d as u32;
            prop_assert_eq!(y - x, d);
            prop_assert_eq!(y - d as u32, x);
        }

        #[test]
        fn window_matches_offset(s: u32, start: u32, len: u32) {
            let (s, start) = (Seq(s), Seq(start));
            let inside = s.in_window(start, len);
            if len == 0 {
                prop_assert_eq!(inside, s == start);
            } else {
                prop_assert_eq!(inside, s.offset_from(start) < len);
                if len < HALF {
                    // For windows under 2^31 this is start <= s < start + len.
                    prop_assert_eq!(inside, start.le(s) && s.lt(start + len));
                }
            }
        }
    }
}
