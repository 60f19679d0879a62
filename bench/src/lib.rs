//! Shared helpers of the benches: test frames and data loading.

/// Path of the full Internet table shipped with the project.
pub const BGP_PREFIXES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/bgp-prefixes.txt.gz");
