//! The control plane: configuration, the `ctl` protocol and its typed records
//! (`--json`), the front thread that serves the ctl socket and the metrics
//! port, capture files, and the manual pages and shell completions of the
//! command line.

pub mod capture;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod front;
pub mod manual;
pub mod metrics;
pub mod records;
