//! pktengine: a kernel-bypass packet engine.
//!
//! Module map, in floors: a module imports only from floors below its own
//! (`scripts/modgraph.py --floors` checks it; `docs/ARCHITECTURE.md`,
//! "Floors", says why and what each may import).
//!
//! 1. Data structures and I/O, no packet policy:
//!    [`wire`] (zero-copy packet views, `Repr`s, checksums), [`xsk`] (AF_XDP
//!    ports, UMEM, rings, the in-memory port), [`steer`] (the XDP program's
//!    loader and maps), [`l3`] (LPM, next hops, the route table),
//!    [`mac_table`] (the lock-free L2 MAC table), [`neighbor`] (the neighbor
//!    cache and map), [`conntrack`] (the connection table NAT and the load
//!    balancer share, and its packet rewrites), [`validate`] (configuration
//!    errors), [`cbpf`] (checked classic BPF programs and their interpreter,
//!    the capture filters), and two helpers that import nothing of the engine: [`hashing`]
//!    (the keyed hasher of traffic-keyed tables) and [`slab`] (the
//!    fixed-capacity slab of indices).
//! 2. [`context`]: the frame context every stage shares (UMEM, TX queues,
//!    counters, drop reasons, trace, clock, published tables) with the verbs
//!    `drop`, `send`, `emit`, `originate`, ICMP errors, handoff; and the
//!    [`context::Hooks`] the router calls features through.
//! 3. The features: [`router`] (IPv4/IPv6 forwarding, ARP/ND, local
//!    delivery), [`l2`] (the switch stage, bridge domains, VLANs), [`filter`]
//!    (rules, classifier), [`nat`] (NAPT), [`lb`] (L4 load balancer),
//!    [`tcp`] (the TCP endpoint, IPv4 and IPv6, no SACK by design, and its
//!    apps), [`impair`] (seeded drop/duplicate/reorder for tests).
//! 4. [`dataplane`]: the pipeline that runs a burst through the stages and
//!    holds per-worker feature state; the worker loop.
//! 5. [`control`] (configuration, ctl socket, metrics, capture files), then
//!    [`runtime`] (`pktengine run`: set-up, threads, shutdown).
//!
//! [`status`] says what this build implements (`pktengine status`, the
//! README's status table, kept equal by a test).
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_debug_implementations)]

// Floor 1: data structures and I/O, no packet policy.
pub mod cbpf;
pub mod conntrack;
pub mod hashing;
pub mod l3;
pub mod mac_table;
pub mod neighbor;
pub mod rss;
pub mod slab;
pub mod status;
pub mod steer;
pub mod validate;
pub mod wire;
pub mod xsk;
// Floor 2: the frame context every stage shares.
pub mod context;
// Floor 3: the features, each a stage or a few.
pub mod filter;
pub mod impair;
pub mod l2;
pub mod lb;
pub mod nat;
pub mod router;
pub mod tcp;
// Floor 4: the pipeline and the worker loop.
pub mod dataplane;
// Floor 5: configuration, ctl socket, metrics; then set-up and threads.
pub mod control;
pub mod runtime;

/// What this build implements, printed by `pktengine status`: the
/// [`status::FEATURES`] table, which a test keeps equal to the README's status table.
pub const STATUS: status::Report = status::Report(status::FEATURES);
