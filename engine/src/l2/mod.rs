//! The L2 learning switch (IEEE 802.1D bridging with 802.1Q VLANs).
//!
//! - [`mac_table`]: the lock-free MAC table every worker learns into and
//!   looks up in; the control thread ages, flushes and rebuilds it.
//! - [`bridge`]: bridge domains, members, VLAN membership, built from the configuration.
//! - [`forward`]: the switch stage of the pipeline (ingress VLAN, learn,
//!   forward/flood/filter, egress tag).
//!
//! `docs/ARCHITECTURE.md` ("L2 switch") argues the table's design and memory ordering.

pub mod bridge;
pub mod forward;
pub mod mac_table;

pub use bridge::{Bridge, PortVlan, Switch, SwitchPort};
pub use forward::{input, Ingress};
pub use mac_table::{Learn, MacEntry, MacKey, MacTable, MAX_MEMBERS};

#[cfg(test)]
mod pipeline_tests;
