//! Test harness for pktengine's integration tests: network namespaces and veth
//! pairs that are created with unique names and removed on drop.
