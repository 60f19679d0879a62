//! The data plane's top: the pipeline that runs a burst through the stages,
//! and the worker loop around it (floor 4 of the layering, see
//! docs/ARCHITECTURE.md "Floors").
//!
//! - [`pipeline`]: the burst driver (classify, the router's and switch's
//!   stages, batched LPM) and [`pipeline::Stages`], which holds each
//!   feature's per-worker state and plugs the features into the router's
//!   hooks.
//! - [`worker`]: the run-to-completion loop over a worker's sockets.
//! - [`tables`]: what workers share with the control thread: the context's
//!   tables plus each feature's shared part.
//!
//! The frame context the stages share (counters, events, handoff, dumps)
//! lives one floor down, in [`crate::context`].

pub mod pipeline;
pub mod tables;
pub mod worker;

#[cfg(test)]
mod bvi_tests;
#[cfg(test)]
mod tx_backlog_tests;
