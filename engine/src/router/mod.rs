//! The router's building blocks (RFC 1812 for IPv4, RFC 8200/4443/4861 for
//! IPv6): pure functions and small fixed-size tables that the worker pipeline
//! and the forwarding stage call per packet.
//!
//! Nothing here allocates per packet or panics on any input: packets are read
//! through the `wire` views (checked once), and frames are written into
//! caller-supplied buffers, returning `None` when they do not fit.
//!
//! - [`icmp_error`]: may an ICMP/ICMPv6 error be sent about this packet, and
//!   building it (576/1280-byte quoting); echo replies in place.
//! - [`fragment`]: IPv4 fragmentation into caller buffers.
//! - [`ratelimit`]: per-destination token buckets for ICMP errors.
//! - [`martian`]: source/destination addresses a router must not forward.
//! - [`neigh_frames`]: ARP and NS/NA frames, built and parsed.
//! - [`neighbor`]: the neighbor cache: control-side table, the immutable map
//!   workers read, and the workers' queues of packets awaiting resolution.

pub mod fragment;
pub mod icmp_error;
pub mod martian;
pub mod neigh_frames;
pub mod neighbor;
pub mod ratelimit;
pub mod udp_echo;

/// An Ethernet MAC address as raw bytes.
pub type Mac = [u8; 6];

// The router's stages, called by the pipeline (`dataplane::pipeline`).
pub mod arp;
pub mod ip4;
pub mod ip6;
pub mod local;
#[cfg(test)]
mod pipeline_tests;
