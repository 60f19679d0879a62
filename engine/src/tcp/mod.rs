//! The engine's own TCP endpoint (issue 11, in progress): a lean RFC 9293
//! TCP without SACK, run to completion on the worker that owns the
//! connection. Built: the building blocks and the connection state machine
//! ([`tcb`], pure logic, packetdrill-style tests and lossy-channel property
//! tests). Not built yet: the per-worker connection table and listeners, the
//! wiring into the pipeline (segments to and from frames), the application
//! API over it and the built-in apps (echo, discard, HTTP/1.1 responder,
//! bulk sender): the engine still drops TCP to its own addresses.
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
//! - [`tcb`]: the connection state machine (RFC 9293 states, RFC 5961 checks, timers, app API).

pub mod buffer;
pub mod cc;
pub mod cookie;
pub mod isn;
pub mod reasm;
pub mod rtt;
pub mod seq;
pub mod tcb;
pub mod timer;
