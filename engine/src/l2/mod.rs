//! The L2 learning switch (IEEE 802.1D bridging with 802.1Q VLANs).
//!
//! - `mac_table` (floor 1, beside `l3`): the lock-free MAC table every worker
//!   learns into and looks up in; the control thread ages, flushes and rebuilds it.
//! - [`bridge`]: bridge domains, members, VLAN membership, and their
//!   configuration types ([`BridgeConfig`], [`VlanMode`]).
//! - [`forward`]: the switch stage of the pipeline (ingress VLAN, learn,
//!   forward/flood/filter, egress tag).
//!
//! `docs/ARCHITECTURE.md` ("L2 switch") argues the table's design and memory ordering.

pub mod bridge;
pub mod config;
pub mod forward;

pub use crate::mac_table::{Learn, MacEntry, MacKey, MacTable, MAX_MEMBERS};
pub use bridge::{Bridge, BridgeConfig, PortVlan, StaticMac, Switch, SwitchPort, VlanMode};
pub use forward::{input, Ingress};

#[cfg(test)]
mod pipeline_tests;
