//! Latency histogram with log-linear buckets (as in HdrHistogram): values
//! below 64 ns have a bucket each; above, every power of two is cut into 32
//! equal buckets, so a bucket is at most 1/32 (3.1%) of its value wide.
//! A fixed array: recording is a few instructions and never allocates.

const LINEAR: u64 = 64; // 2^6
const SUB_BITS: u32 = 5; // 32 buckets per power of two
const SUB: u64 = 1 << SUB_BITS;
/// Buckets: 64 linear + 32 for each power of two from 2^6 to 2^63.
pub const BUCKETS: usize = LINEAR as usize + (64 - 6) * SUB as usize;

/// The histogram.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Histogram({self})")
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Bucket of value `v`.
#[inline]
pub fn bucket(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= 6
    let sub = (v >> (e - SUB_BITS)) - SUB; // 0..32
    LINEAR as usize + (e as usize - 6) * SUB as usize + sub as usize
}

/// Smallest value of bucket `b`.
pub fn bucket_low(b: usize) -> u64 {
    if b < LINEAR as usize {
        return b as u64;
    }
    let i = b - LINEAR as usize;
    let e = (i / SUB as usize) as u32 + 6;
    let sub = (i % SUB as usize) as u64;
    (SUB + sub) << (e - SUB_BITS)
}

/// Largest value of bucket `b`.
pub fn bucket_high(b: usize) -> u64 {
    if b + 1 >= BUCKETS {
        u64::MAX
    } else {
        bucket_low(b + 1) - 1
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1; // bucket() < BUCKETS for every u64
        self.total += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v as u128;
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Smallest value (0 if empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min
        }
    }

    /// Largest value.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean (0 if empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (0..=1): the upper bound of the bucket
    /// holding the rank-`ceil(q * n)` value, capped by the maximum seen.
    /// 0 if empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(b).min(self.max);
            }
        }
        self.max
    }

    /// The non-empty buckets in order: (smallest value, largest value, count), the
    /// highest capped by the maximum seen. What `pktgen sink --json` exports as
    /// `latency_ns.buckets`, for a CDF (scripts/bench.sh's latency plots).
    pub fn buckets(&self) -> Vec<(u64, u64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(b, c)| (bucket_low(b), bucket_high(b).min(self.max), *c))
            .collect()
    }

    /// Adds another histogram.
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.total += o.total;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }
}

impl std::fmt::Display for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} min={}ns p50={}ns p99={}ns p99.9={}ns max={}ns",
            self.total,
            self.min(),
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(0.999),
            self.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_by_hand() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(63), 63);
        assert_eq!(bucket(64), 64);
        assert_eq!(bucket(65), 64, "2 ns wide at 64");
        assert_eq!(bucket(66), 65);
        assert_eq!(bucket(127), 95);
        assert_eq!(bucket(128), 96);
        assert_eq!(bucket(992), bucket(1007), "16 ns wide at 1000");
        assert_ne!(bucket(1007), bucket(1008));
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!((bucket_low(64), bucket_high(64)), (64, 65));
        assert_eq!((bucket_low(96), bucket_high(95)), (128, 127));
    }

    #[test]
    fn quantiles_of_a_uniform_run() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 100); // 100 ns .. 1 ms
        }
        let near = |got: u64, want: f64| (got as f64 - want).abs() / want < 0.035;
        assert!(near(h.quantile(0.5), 500_000.0), "{}", h.quantile(0.5));
        assert!(near(h.quantile(0.99), 990_000.0), "{}", h.quantile(0.99));
        assert!(near(h.quantile(0.999), 999_000.0), "{}", h.quantile(0.999));
        assert_eq!(h.quantile(1.0), 1_000_000);
        assert_eq!((h.min(), h.max(), h.count()), (100, 1_000_000, 10_000));
        assert!((h.mean() - 500_050.0).abs() < 1.0);
        let mut two = h.clone();
        two.merge(&h);
        assert_eq!(two.count(), 20_000);
        assert_eq!(two.quantile(0.5), h.quantile(0.5));
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }

    #[test]
    fn buckets_list_the_recorded_values_in_order() {
        let mut h = Histogram::new();
        assert!(h.buckets().is_empty());
        for v in [5, 5, 1000, 1007, 5_000_000] {
            h.record(v);
        }
        let b = h.buckets();
        assert_eq!(b.len(), 3, "{b:?}");
        assert_eq!(b[0], (5, 5, 2));
        assert_eq!(
            (b[1].0, b[1].2),
            (992, 2),
            "1000 and 1007 share a 16 ns bucket"
        );
        assert!(b[1].1 >= 1007);
        assert_eq!(b[2].1, 5_000_000, "the last bucket stops at the maximum");
        assert_eq!(b.iter().map(|x| x.2).sum::<u64>(), h.count());
    }

    #[test]
    fn one_outlier_shows_in_p999_only() {
        let mut h = Histogram::new();
        for _ in 0..999 {
            h.record(10_000);
        }
        h.record(5_000_000);
        assert!(h.quantile(0.99) <= 10_300);
        assert_eq!(h.quantile(0.9999), 5_000_000);
    }

    proptest! {
        /// Every value lies inside its bucket, and buckets are at most 1/32 of the value wide.
        #[test]
        fn value_inside_its_bucket(v in any::<u64>()) {
            let b = bucket(v);
            prop_assert!(b < BUCKETS);
            prop_assert!(bucket_low(b) <= v && v <= bucket_high(b));
            if v >= 64 {
                prop_assert!((bucket_high(b) - bucket_low(b)) as f64 <= v as f64 / 32.0);
            }
        }

        /// Quantiles match a sorted reference within one bucket.
        #[test]
        fn quantile_matches_sorted_reference(mut vs in proptest::collection::vec(0u64..10_000_000, 1..500), q in 0.0f64..=1.0) {
            let mut h = Histogram::new();
            for v in &vs { h.record(*v); }
            vs.sort_unstable();
            let rank = ((q * vs.len() as f64).ceil() as usize).max(1);
            let want = vs[rank - 1];
            let got = h.quantile(q);
            prop_assert_eq!(bucket(got), bucket(want), "q={} got {} want {}", q, got, want);
        }
    }
}
