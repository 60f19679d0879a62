//! Test harness for pktengine's integration tests: network namespaces and veth
//! pairs that are created with unique names and removed on drop, raw-frame
//! send and capture inside a namespace, and test-frame builders.
pub mod bg;
pub mod daemons;
pub mod engine;
pub mod frames;
pub mod netns;
pub mod packet;

pub use netns::{Netns, VethPair};
