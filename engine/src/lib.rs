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
//! - [`tcp`]: the TCP endpoint (IPv4 and IPv6, no SACK by design): state machine, timers,
//!   per-worker connections and application API, built-in apps (servers and clients).
//! - [`runtime`]: `pktengine run`: setup, the control thread, shutdown.
//! - [`control`]: configuration, the ctl socket, metrics, capture files.
//! - [`status`]: what this build implements (`pktengine status`, the README's status table).
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_debug_implementations)]

pub mod control;
pub mod dataplane;
pub mod filter;
pub mod l2;
pub mod l3;
pub mod lb;
pub mod nat;
pub mod router;
pub mod runtime;
pub mod status;
pub mod steer;
pub mod tcp;
pub mod wire;
pub mod xsk;

/// What this build implements, printed by `pktengine status`: the
/// [`status::FEATURES`] table, which a test keeps equal to the README's status table.
pub const STATUS: status::Report = status::Report(status::FEATURES);
