//! IPv4 and IPv6 prefixes: parsing, canonical form (host bits zero), containment.

use core::fmt;
use core::str::FromStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a prefix did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixError {
    /// The address part is not an IPv4/IPv6 address.
    BadAddress,
    /// The length is not a number or exceeds 32 (IPv4) / 128 (IPv6).
    BadLength,
    /// The address has bits set past the prefix length (`10.1.0.0/8`); `ip route` rejects these too.
    HostBitsSet,
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            PrefixError::BadAddress => "bad address",
            PrefixError::BadLength => "bad prefix length",
            PrefixError::HostBitsSet => "address has bits set past the prefix length",
        })
    }
}

impl std::error::Error for PrefixError {}

fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

/// Splits `ADDR/LEN`; a bare address gets the full length.
fn split(s: &str, max: u8) -> Result<(&str, u8), PrefixError> {
    match s.split_once('/') {
        None => Ok((s, max)),
        Some((a, l)) => {
            if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) || l.len() > 3 {
                return Err(PrefixError::BadLength);
            }
            let len: u8 = l.parse().map_err(|_| PrefixError::BadLength)?;
            if len > max {
                return Err(PrefixError::BadLength);
            }
            Ok((a, len))
        }
    }
}

/// An IPv4 prefix in canonical form: the bits past `len` are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Prefix {
    bits: u32,
    len: u8,
}

// `len` is the prefix length, not a container size: there is no `is_empty`.
#[allow(clippy::len_without_is_empty)]
impl Ipv4Prefix {
    /// `0.0.0.0/0`.
    pub const DEFAULT: Ipv4Prefix = Ipv4Prefix { bits: 0, len: 0 };

    /// The prefix `addr/len` with host bits cleared. `None` if `len > 32`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Self> {
        Self::from_bits(u32::from(addr), len)
    }

    /// Like [`Ipv4Prefix::new`] on the address as a big-endian integer.
    pub fn from_bits(bits: u32, len: u8) -> Option<Self> {
        (len <= 32).then(|| Ipv4Prefix {
            bits: bits & mask32(len),
            len,
        })
    }

    pub fn addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.bits)
    }
    pub fn bits(&self) -> u32 {
        self.bits
    }
    pub fn len(&self) -> u8 {
        self.len
    }
    /// True for the default route, `0.0.0.0/0`.
    pub fn is_default(&self) -> bool {
        self.len == 0
    }
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask32(self.len) == self.bits
    }
    /// First address covered (the network address).
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.bits)
    }
    /// Last address covered.
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.bits | !mask32(self.len))
    }
}

impl FromStr for Ipv4Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, PrefixError> {
        let (a, len) = split(s, 32)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| PrefixError::BadAddress)?;
        let p = Ipv4Prefix::new(addr, len).ok_or(PrefixError::BadLength)?;
        if p.bits != u32::from(addr) {
            return Err(PrefixError::HostBitsSet);
        }
        Ok(p)
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

/// An IPv6 prefix in canonical form: the bits past `len` are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6Prefix {
    bits: u128,
    len: u8,
}

// `len` is the prefix length, not a container size: there is no `is_empty`.
#[allow(clippy::len_without_is_empty)]
impl Ipv6Prefix {
    /// `::/0`.
    pub const DEFAULT: Ipv6Prefix = Ipv6Prefix { bits: 0, len: 0 };

    /// The prefix `addr/len` with host bits cleared. `None` if `len > 128`.
    pub fn new(addr: Ipv6Addr, len: u8) -> Option<Self> {
        Self::from_bits(u128::from(addr), len)
    }

    /// Like [`Ipv6Prefix::new`] on the address as a big-endian integer.
    pub fn from_bits(bits: u128, len: u8) -> Option<Self> {
        (len <= 128).then(|| Ipv6Prefix {
            bits: bits & mask128(len),
            len,
        })
    }

    pub fn addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.bits)
    }
    pub fn bits(&self) -> u128 {
        self.bits
    }
    pub fn len(&self) -> u8 {
        self.len
    }
    /// True for the default route, `::/0`.
    pub fn is_default(&self) -> bool {
        self.len == 0
    }
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & mask128(self.len) == self.bits
    }
    pub fn first(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.bits)
    }
    pub fn last(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.bits | !mask128(self.len))
    }
}

impl FromStr for Ipv6Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, PrefixError> {
        let (a, len) = split(s, 128)?;
        let addr: Ipv6Addr = a.parse().map_err(|_| PrefixError::BadAddress)?;
        let p = Ipv6Prefix::new(addr, len).ok_or(PrefixError::BadLength)?;
        if p.bits != u128::from(addr) {
            return Err(PrefixError::HostBitsSet);
        }
        Ok(p)
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

/// A prefix of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpPrefix {
    V4(Ipv4Prefix),
    V6(Ipv6Prefix),
}

// `len` is the prefix length, not a container size: there is no `is_empty`.
#[allow(clippy::len_without_is_empty)]
impl IpPrefix {
    /// The network address.
    pub fn addr(&self) -> std::net::IpAddr {
        match self {
            IpPrefix::V4(p) => std::net::IpAddr::V4(p.addr()),
            IpPrefix::V6(p) => std::net::IpAddr::V6(p.addr()),
        }
    }

    pub fn len(&self) -> u8 {
        match self {
            IpPrefix::V4(p) => p.len(),
            IpPrefix::V6(p) => p.len(),
        }
    }
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self, addr) {
            (IpPrefix::V4(p), IpAddr::V4(a)) => p.contains(a),
            (IpPrefix::V6(p), IpAddr::V6(a)) => p.contains(a),
            _ => false,
        }
    }
}

impl FromStr for IpPrefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, PrefixError> {
        if s.contains(':') {
            s.parse().map(IpPrefix::V6)
        } else {
            s.parse().map(IpPrefix::V4)
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            IpPrefix::V4(p) => p.fmt(f),
            IpPrefix::V6(p) => p.fmt(f),
        }
    }
}

impl From<Ipv4Prefix> for IpPrefix {
    fn from(p: Ipv4Prefix) -> Self {
        IpPrefix::V4(p)
    }
}

impl From<Ipv6Prefix> for IpPrefix {
    fn from(p: Ipv6Prefix) -> Self {
        IpPrefix::V6(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_v4() {
        let p: Ipv4Prefix = "198.18.0.0/15".parse().unwrap();
        assert_eq!(p.bits(), 0xc612_0000);
        assert_eq!(p.len(), 15);
        assert_eq!(p.to_string(), "198.18.0.0/15");
        assert_eq!(p.last(), Ipv4Addr::new(198, 19, 255, 255));
        assert!(p.contains(Ipv4Addr::new(198, 19, 1, 1)));
        assert!(!p.contains(Ipv4Addr::new(198, 20, 0, 0)));
        let h: Ipv4Prefix = "198.18.0.1".parse().unwrap();
        assert_eq!(h.len(), 32);
        let d: Ipv4Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(d.is_default() && d.contains(Ipv4Addr::new(255, 255, 255, 255)));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            "198.18.0.1/15".parse::<Ipv4Prefix>(),
            Err(PrefixError::HostBitsSet)
        );
        assert_eq!(
            "198.18.0.0/33".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadLength)
        );
        assert_eq!(
            "198.18.0.0/".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadLength)
        );
        assert_eq!(
            "198.18.0.0/+1".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadLength)
        );
        assert_eq!(
            "198.18.0/16".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadAddress)
        );
        assert_eq!(
            "2001:2::/129".parse::<Ipv6Prefix>(),
            Err(PrefixError::BadLength)
        );
        assert_eq!(
            "2001:2::1/48".parse::<Ipv6Prefix>(),
            Err(PrefixError::HostBitsSet)
        );
        assert_eq!(
            "2001:2::/24".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadAddress)
        );
    }

    #[test]
    fn parse_v6() {
        let p: Ipv6Prefix = "2001:2::/48".parse().unwrap();
        assert_eq!(p.bits(), 0x2001_0002_0000u128 << 80);
        assert_eq!(
            p.last(),
            "2001:2:0:ffff:ffff:ffff:ffff:ffff"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert!(p.contains("2001:2:0:1::1".parse().unwrap()));
        assert!(!p.contains("2001:2:1::".parse().unwrap()));
        let any: IpPrefix = "::/0".parse().unwrap();
        assert_eq!(any.len(), 0);
        assert!(any.contains("::1".parse().unwrap()));
        assert!(!any.contains("198.18.0.1".parse().unwrap()));
        assert_eq!(
            "2001:2::/48".parse::<IpPrefix>().unwrap().to_string(),
            "2001:2::/48"
        );
    }

    proptest! {
        #[test]
        fn v4_canonical_and_contains(bits: u32, len in 0u8..=32, probe: u32) {
            let p = Ipv4Prefix::from_bits(bits, len).unwrap();
            let back: Ipv4Prefix = p.to_string().parse().unwrap();
            prop_assert_eq!(back, p);
            prop_assert!(p.contains(Ipv4Addr::from(bits)));
            prop_assert!(p.contains(p.first()) && p.contains(p.last()));
            let shared = (probe ^ bits).leading_zeros() >= u32::from(len);
            prop_assert_eq!(p.contains(Ipv4Addr::from(probe)), shared);
        }

        #[test]
        fn v6_canonical_and_contains(bits: u128, len in 0u8..=128, probe: u128) {
            let p = Ipv6Prefix::from_bits(bits, len).unwrap();
            let back: Ipv6Prefix = p.to_string().parse().unwrap();
            prop_assert_eq!(back, p);
            prop_assert!(p.contains(Ipv6Addr::from(bits)));
            let shared = (probe ^ bits).leading_zeros() >= u32::from(len);
            prop_assert_eq!(p.contains(Ipv6Addr::from(probe)), shared);
        }
    }
}
