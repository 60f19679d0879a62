//! The control plane: configuration, the `ctl` socket, and the thread that owns
//! the tables the workers read.

pub mod capture;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod metrics;
