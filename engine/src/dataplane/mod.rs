//! The data plane: what a worker does with frames.
//!
//! - [`worker`]: the run-to-completion loop over a worker's sockets.
//! - [`pipeline`]: the burst driver, the context stages share, TX queues,
//!   neighbor servicing. Stages live with their feature (`router::ip4`, ...).
//! - [`counters`]: per-stage counters and typed drop reasons, published
//!   lock-free to the control thread.
//! - [`tables`]: what workers read (ports, resolved routes, neighbors).
//! - [`events`]: what workers tell the control thread.
//! - [`dump`]: `ctl … show` requests the workers answer (NAT sessions, TCP connections).
//! - [`impair`]: the seeded drop/duplicate/reorder stage for tests (`[impair]`).

pub mod counters;
pub mod dump;
pub mod events;
pub mod handoff;
pub mod impair;
pub mod pipeline;
pub mod tables;
pub mod worker;
