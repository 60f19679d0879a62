//! The engine's one hasher for tables whose keys come from traffic.
//!
//! Hash flooding: a table keyed by what peers send (remote addresses and
//! ports, MACs, header fields) under a fixed, public hash function lets an
//! attacker compute keys that all land in one bucket, and every lookup of
//! such a key then walks the whole chain (an open-addressing table turns
//! into a linear scan). The hash here is therefore *keyed*: foldhash (the
//! `quality` variant) under a secret that is random per process, plus a
//! random per-table part. Collisions then cannot be computed from the source code
//! or observed on another engine.
//!
//! Why this and not something else:
//! - SipHash (std's default) is a proper PRF but costs more than a whole NAT
//!   translation; std's `HashMap` with it cost 2% of the worker in the TCP
//!   connections/s benchmark.
//! - A fixed multiply (Fibonacci hashing), with or without a seed XORed into
//!   the key before the multiply, is not keyed: the multiplier is public, so
//!   key *differences* map to known hash differences and an attacker can
//!   build colliding families without knowing the seed.
//! - foldhash mixes the key into a 64×64→128-bit multiply by a secret
//!   multiplier and folds the halves: one multiply per 16 bytes of key (a
//!   `u64` key: one XOR, one widening multiply, one XOR, about as cheap as
//!   the Fibonacci multiply it replaces), then `quality`'s one more folded
//!   multiply by a constant. Without that last step (`fast`), the top bits
//!   that open-addressing tables index by were poorly spread under some random
//!   secrets: 64 structured addresses fell into 32 or fewer of 128 home slots
//!   for about one secret in 200 (`neighbor`'s collision test caught it);
//!   with it, none in 2,000 runs. It claims minimal DoS resistance,
//!   not cryptographic strength: good against blind flooding, which is the
//!   threat here (the tables are also bounded, so even a successful flood
//!   only lengthens probes within them).
//!
//! The per-process secret comes from the operating system's random source
//! (through std's `RandomState`), not from foldhash's own global seed (which
//! is derived from addresses and the clock). Tests that need a reproducible
//! layout use [`Seeded::fixed`].
//!
//! This module is the lowest layer: it imports nothing from the engine.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::quality::FoldHasher;
use foldhash::SharedSeed;

/// A keyed hasher: a per-table seed and the per-process secret. Copy, 16
/// bytes; fixed for the life of the table that holds it, so every thread
/// that reads the table hashes the same way.
#[derive(Clone, Copy)]
pub struct Seeded {
    seed: u64,
    shared: &'static SharedSeed,
}

impl Seeded {
    /// A random per-table seed under the per-process secret (which is drawn
    /// on first use). What every table of traffic-chosen keys uses.
    pub fn random() -> Seeded {
        Seeded {
            seed: random_u64(),
            shared: process_secret(),
        }
    }

    /// A fixed, reproducible hasher (tests, benches that compare layouts).
    /// Not for tables of traffic-chosen keys.
    pub const fn fixed(seed: u64) -> Seeded {
        Seeded {
            seed,
            shared: SharedSeed::global_fixed(),
        }
    }

    /// The hash of one word (open-addressing tables: take the top bits).
    #[inline]
    pub fn hash_u64(&self, key: u64) -> u64 {
        self.hash_one(key)
    }

    /// The hash of one 128-bit key and a 16-bit tag (an IPv6 address and a port).
    #[inline]
    pub fn hash_u128_u16(&self, key: u128, tag: u16) -> u64 {
        self.hash_one((key, tag))
    }
}

impl BuildHasher for Seeded {
    type Hasher = FoldHasher<'static>;

    #[inline]
    fn build_hasher(&self) -> FoldHasher<'static> {
        FoldHasher::with_seed(self.seed, self.shared)
    }
}

/// The seeds are secrets: they are not printed.
impl fmt::Debug for Seeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seeded(..)")
    }
}

/// A `HashMap` keyed by traffic (flows, endpoints, connections, filter
/// tuples). Build it with [`seeded`]: it has no `Default`, so a map cannot
/// end up with a guessable seed by accident.
pub type FlowHashMap<K, V> = HashMap<K, V, Seeded>;

/// A fresh random hasher for a [`FlowHashMap`] or a table of one's own.
pub fn seeded() -> Seeded {
    Seeded::random()
}

/// The per-process secret (foldhash's shared multipliers), drawn once.
fn process_secret() -> &'static SharedSeed {
    static SECRET: OnceLock<SharedSeed> = OnceLock::new();
    SECRET.get_or_init(|| SharedSeed::from_u64(random_u64()))
}

/// 64 random bits: std's `RandomState` is keyed from the OS random source
/// once per thread and steps its key on every call, so each call is a
/// fresh SipHash output under a secret key.
fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x70_6b_74_65_6e_67_69_6eu64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_is_reproducible_and_random_is_not() {
        assert_eq!(Seeded::fixed(7).hash_u64(42), Seeded::fixed(7).hash_u64(42));
        assert_ne!(Seeded::fixed(7).hash_u64(42), Seeded::fixed(8).hash_u64(42));
        let (a, b) = (seeded(), seeded());
        // Two tables: two seeds (a 2^-64 chance of a false failure).
        assert_ne!(a.hash_u64(42), b.hash_u64(42));
        // One table: one function, whoever calls it.
        let c = a;
        assert_eq!(
            std::thread::spawn(move || c.hash_u64(42)).join().unwrap(),
            a.hash_u64(42)
        );
        assert_eq!(a.hash_u128_u16(1 << 100, 80), a.hash_u128_u16(1 << 100, 80));
        assert_ne!(a.hash_u128_u16(1 << 100, 80), a.hash_u128_u16(1 << 100, 81));
        assert_eq!(format!("{a:?}"), "Seeded(..)");
    }

    #[test]
    fn flow_map_works_as_a_map() {
        let mut m: FlowHashMap<(u32, u16), u32> =
            FlowHashMap::with_capacity_and_hasher(16, seeded());
        for i in 0..1000u32 {
            m.insert((i, i as u16), i);
        }
        assert!((0..1000u32).all(|i| m.get(&(i, i as u16)) == Some(&i)));
        assert_eq!(m.len(), 1000);
    }

    /// Keys that differ only in a few bits (sequential addresses and
    /// ports, the usual traffic) fill the top bits evenly: 64 buckets of
    /// 65,536 keys, none far from the mean.
    #[test]
    fn top_bits_of_sequential_keys_are_even() {
        let h = seeded();
        let mut buckets = [0u32; 64];
        for i in 0..65_536u64 {
            buckets[(h.hash_u64(0x0a00_0000 | i << 16 | 443) >> 58) as usize] += 1;
        }
        let (lo, hi) = (buckets.iter().min().unwrap(), buckets.iter().max().unwrap());
        assert!(*lo > 800 && *hi < 1250, "{lo}..{hi}");
    }
}
