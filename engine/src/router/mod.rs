//! The router's building blocks (RFC 1812 for IPv4, RFC 8200/4443/4861 for
//! IPv6): pure functions and small fixed-size tables that the worker pipeline
//! and the forwarding stage call per packet.
//!
//! Nothing here allocates per packet or panics on any input: packets are read
//! through the `wire` views (checked once), and frames are written into
//! caller-supplied buffers, returning `None` when they do not fit.
//!
//! - [`fragment`]: IPv4 fragmentation into caller buffers.
//! - [`udp_echo`]: the `[[udp]]` echo service (RFC 862).
//!
//! What every stage shares lives one floor down: ICMP errors and their rate
//! limit, martian checks, ARP/ND frames (`context`), the neighbor cache
//! (`neighbor`). Features that sit on the router's path (filter, NAT, load
//! balancer, TCP endpoint) are reached through `context::Hooks`, never
//! imported: the router knows none of them.

pub mod config;
pub mod fragment;
pub mod udp_echo;

// The router's stages, called by the pipeline (`dataplane::pipeline`).
pub mod arp;
pub mod ip4;
pub mod ip6;
pub mod local;
#[cfg(test)]
mod pipeline_tests;
