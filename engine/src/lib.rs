//! pktengine: a kernel-bypass packet engine.
//!
//! Module map (see `docs/ARCHITECTURE.md` for the why):
//! - [`l2`]: the L2 learning switch: MAC table, bridge domains, VLANs.
//! - [`l3`]: IPv4/IPv6 longest-prefix match, next hops, the route table.
//! - [`wire`]: zero-copy packet views and validated `Repr`s, checksums.
//! - [`xsk`]: AF_XDP ports (UMEM, rings, sockets) and the in-memory port.
//! - [`steer`]: the XDP steering program's loader, rule maps and counters.
//! - [`dataplane`]: workers, the burst pipeline, counters and drop reasons, published tables.
//! - [`lb`]: the L4 load balancer: services, Maglev, connection tracking.
//! - [`nat`]: NAT44 (NAPT): translation, mappings and sessions, worker handoff.
//! - [`router`]: IPv4/IPv6 forwarding stages, ICMP errors, fragmentation, ARP/ND.
//! - [`filter`]: the packet filter: rules, the tuple-space classifier, rejects.
//! - [`tcp`]: the TCP endpoint's building blocks (in progress; see its module doc).
//! - [`runtime`]: `pktengine run`: setup, the control thread, shutdown.
//! - [`control`]: configuration, the ctl socket, metrics, capture files.
//! - [`hashing`], [`slab`]: the lowest layer (no engine imports): the keyed
//!   hasher of traffic-keyed tables, the fixed-capacity slab of indices.
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

pub mod control;
pub mod dataplane;
pub mod filter;
pub mod hashing;
pub mod l2;
pub mod l3;
pub mod lb;
pub mod nat;
pub mod router;
pub mod runtime;
pub mod slab;
pub mod steer;
pub mod tcp;
pub mod wire;
pub mod xsk;

/// What this build implements, printed by `pktengine status` and `scripts/demo.sh`.
/// Kept in step with the README's status table.
pub const STATUS: &str = "\
pktengine status
  wire formats (Ethernet/VLAN, ARP, IPv4, IPv6, ICMP, ICMPv6, UDP, TCP)  implemented
  AF_XDP ports and XDP steering                                          implemented
  workers, control plane, ctl socket, pktengine run / ctl               implemented
  LPM route tables (IPv4, IPv6)                                          implemented
  router (RFC 1812 / RFC 8200, ARP/ND, ICMP errors, ECMP)                implemented
  L2 learning switch (802.1D/802.1Q)                                     implemented
  NAT44 (NAPT, RFC 4787/5382/5508/7857)                                  implemented
  packet filter (stateless)                                              implemented
  traffic generator and system benchmark vs the kernel                   implemented
  TCP endpoint (echo, discard, HTTP, bulk apps)     in progress (apps, SYN cookies)
  L4 load balancer (round-robin, weighted, random, Maglev; fullnat/dnat) implemented
";
