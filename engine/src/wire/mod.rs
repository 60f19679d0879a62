//! Wire formats: zero-copy packet views and validated representations.
//!
//! Every protocol lives in its own file and is built the same way (the smoltcp
//! shape, see `docs/ARCHITECTURE.md`):
//!
//! - `mod field` names each header field as a byte range; offsets live there only.
//! - `XxxPacket<T: AsRef<[u8]>>` wraps a buffer without copying. `new_checked`
//!   verifies once that the buffer holds everything the header claims, so every
//!   accessor afterwards indexes without a panic. Setters exist for
//!   `T: AsMut<[u8]>`.
//! - `XxxRepr` is the validated, by-value view: `parse` checks semantics
//!   (checksums, illegal values), `buffer_len` says how much room `emit` needs,
//!   `emit` writes it.
//!
//! Parsing never panics, whatever the input. Errors are [`Error`], whose
//! variants become per-reason drop counters in the pipeline.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod pseudo;
pub mod tcp;
pub mod udp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{
    parse_mac, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Mac, VlanStack, VlanTag,
};
pub use icmpv4::{Icmpv4Packet, Icmpv4Repr};
pub use icmpv6::{Icmpv6Packet, Icmpv6Repr};
pub use ip::IpProtocol;
pub use ipv4::{Ipv4Options, Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6ExtHeaders, Ipv6FragmentHeader, Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr};
pub use pseudo::PseudoHeader;
pub use tcp::{TcpFlags, TcpOption, TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};

use core::fmt;

/// A byte range inside a header.
pub(crate) type Field = core::ops::Range<usize>;
/// The bytes from an offset to the end of a buffer.
pub(crate) type Rest = core::ops::RangeFrom<usize>;

/// Why a buffer was refused. Each variant is a drop reason an operator can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Error {
    /// The buffer ends before the header (or the length it claims) does.
    Truncated,
    /// A version field holds a version this parser does not speak.
    BadVersion,
    /// A length field is inconsistent: below the minimum, or beyond the buffer.
    BadLength,
    /// A checksum does not verify.
    BadChecksum,
    /// An option (IPv4, TCP) or extension header is malformed.
    BadOption,
    /// A type, code or protocol this parser does not handle.
    Unrecognized,
    /// A field holds a value the protocol forbids.
    Malformed,
}

impl Error {
    /// Every variant, in counter order.
    pub const ALL: [Error; 7] = [
        Error::Truncated,
        Error::BadVersion,
        Error::BadLength,
        Error::BadChecksum,
        Error::BadOption,
        Error::Unrecognized,
        Error::Malformed,
    ];

    /// A short, stable name, used for counters and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadVersion => "bad_version",
            Error::BadLength => "bad_length",
            Error::BadChecksum => "bad_checksum",
            Error::BadOption => "bad_option",
            Error::Unrecognized => "unrecognized",
            Error::Malformed => "malformed",
        }
    }

    /// Index of this variant in [`Error::ALL`], for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Error {}

/// Result of a wire operation.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_index_matches_all() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert!(!e.as_str().is_empty());
        }
    }
}
