//! The engine's own TCP endpoint (issue 11): a lean RFC 9293 TCP without
//! SACK, run to completion on the worker that owns the connection, with a
//! per-worker application API ([`endpoint`]) and built-in applications on
//! it ([`apps`]: echo, discard, HTTP/1.1, bulk; servers and clients).
//!
//! Modules, each self-contained with its tests:
//! - [`seq`]: sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4, RFC 1982).
//! - [`rtt`]: the retransmission timer (RFC 6298: SRTT, RTTVAR, RTO, backoff).
//! - [`cc`]: congestion control (RFC 5681, IW10 per RFC 6928, NewReno per RFC 6582).
//! - [`timer`]: one timer wheel per worker (no OS timer per connection).
//! - [`isn`]: initial sequence numbers (RFC 6528).
//! - [`cookie`]: SYN cookies for a full SYN backlog.
//! - [`reasm`]: bounded out-of-order reassembly.
//! - [`buffer`]: fixed-capacity send and receive byte queues.
//! - [`endpoint`]: the endpoint in the pipeline: per-worker connections, timer wheel and application API.
//! - [`apps`]: the built-in applications (echo, discard, HTTP, bulk; servers and clients) on that API.
//! - [`tcb`]: the connection state machine (RFC 9293 states, RFC 5961 checks, timers, app API).

pub mod apps;
pub mod buffer;
pub mod cc;
pub mod config;
pub mod cookie;
pub mod endpoint;
pub mod isn;
pub mod reasm;
pub mod rtt;
pub mod seq;
pub mod tcb;
pub mod timer;

#[cfg(test)]
mod pipeline_tests;
