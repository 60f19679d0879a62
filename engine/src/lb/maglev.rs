//! Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4): a lookup
//! table of M slots (M prime), each naming a backend. Every backend walks
//! its own permutation of the slots (offset and skip from two hashes of its
//! name) and the backends take turns claiming their next free slot, so each
//! gets about M/N slots and a change of one backend moves about 1/N of the
//! slots. Weights: a backend of weight w takes w turns per round.
//!
//! A flow's backend is `table[hash(5-tuple) % M]`: no per-flow state, the
//! same answer on every worker and after a restart.

/// Slots in a table: a prime well above 100 x the backend count (the paper's rule).
pub const M: usize = 65_537;

fn hash(name: &[u8], seed: u64) -> u64 {
    // FNV-1a, then a finaliser: stable across runs and builds (the table
    // must not change when the engine restarts).
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in name {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Builds the table for backends `(name, weight)`; an empty list (or all
/// weights 0) gives an empty table. Slots hold indices into `backends`.
pub fn build(backends: &[(Vec<u8>, u32)]) -> Vec<u16> {
    let live: Vec<usize> = (0..backends.len()).filter(|&i| backends[i].1 > 0).collect();
    if live.is_empty() {
        return Vec::new();
    }
    let m = M as u64;
    let perm: Vec<(u64, u64)> = live
        .iter()
        .map(|&i| {
            let name = &backends[i].0;
            (hash(name, 0x5eed) % m, hash(name, 0x51c1) % (m - 1) + 1)
        })
        .collect();
    let mut next = vec![0u64; live.len()];
    let mut table = vec![u16::MAX; M];
    let mut filled = 0;
    'fill: loop {
        for (k, &i) in live.iter().enumerate() {
            for _ in 0..backends[i].1 {
                let (offset, skip) = perm[k];
                let mut c = (offset + next[k] * skip) % m;
                while table[c as usize] != u16::MAX {
                    next[k] += 1;
                    c = (offset + next[k] * skip) % m;
                }
                table[c as usize] = i as u16;
                next[k] += 1;
                filled += 1;
                if filled == M {
                    break 'fill;
                }
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<(Vec<u8>, u32)> {
        (0..n)
            .map(|i| (format!("198.19.2.{}:8000", 10 + i).into_bytes(), 1))
            .collect()
    }

    fn shares(t: &[u16], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &s in t {
            c[usize::from(s)] += 1;
        }
        c
    }

    #[test]
    fn every_slot_is_filled_evenly() {
        for n in [1, 2, 3, 7, 50] {
            let t = build(&names(n));
            assert_eq!(t.len(), M);
            let c = shares(&t, n);
            let ideal = M / n;
            for &x in &c {
                assert!(x.abs_diff(ideal) <= ideal / 50 + 2, "n={n} shares {c:?}");
            }
        }
        assert!(build(&[]).is_empty());
    }

    #[test]
    fn weights_scale_the_shares() {
        let mut b = names(3);
        b[1].1 = 2;
        b[2].1 = 3;
        let c = shares(&build(&b), 3);
        let six = M as f64 / 6.0;
        for (i, want) in [(0, 1.0), (1, 2.0), (2, 3.0)] {
            assert!((c[i] as f64 / (six * want) - 1.0).abs() < 0.02, "{c:?}");
        }
    }

    #[test]
    fn removing_one_backend_moves_little_else() {
        let n = 10;
        let all = names(n);
        let before = build(&all);
        // Backend 4 removed: the rest keep their indices by name.
        let rest: Vec<_> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 4)
            .map(|(_, b)| b.clone())
            .collect();
        let after = build(&rest);
        let name_of =
            |t: &[u16], list: &[(Vec<u8>, u32)], s: usize| list[usize::from(t[s])].0.clone();
        let mut moved = 0;
        for s in 0..M {
            if before[s] != 4 && name_of(&before, &all, s) != name_of(&after, &rest, s) {
                moved += 1;
            }
        }
        // The paper measures a few percent of extra disruption; allow 5%.
        assert!(
            moved < M * 5 / 100,
            "{moved} of {M} slots of surviving backends moved"
        );
    }

    #[test]
    fn the_table_is_the_same_every_time() {
        assert_eq!(build(&names(5)), build(&names(5)));
    }
}
