//! Log-linear latency histogram in microseconds: exact below 64 µs, then 32 sub-buckets per
//! power of two (about 3% resolution). Fixed size, lock-free, valid when zeroed.

use std::sync::atomic::{AtomicU64, Ordering};

#[repr(C)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; Self::BUCKETS],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub const BUCKETS: usize = 64 + 32 * 40;

    pub fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    fn index(us: u64) -> usize {
        if us < 64 {
            return us as usize;
        }
        let log = 63 - us.leading_zeros() as usize; // >= 6
        let sub = ((us >> (log - 5)) & 31) as usize;
        (64 + (log - 6) * 32 + sub).min(Self::BUCKETS - 1)
    }

    fn lower_bound(i: usize) -> u64 {
        if i < 64 {
            return i as u64;
        }
        let log = (i - 64) / 32 + 6;
        let sub = ((i - 64) % 32) as u64;
        (1u64 << log) + (sub << (log - 5))
    }

    pub fn record(&self, us: u64) {
        self.buckets[Self::index(us)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Ordering::Relaxed)
    }

    /// Value at quantile `q` (0..=1), as the lower bound of its bucket.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let target = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= target {
                return Self::lower_bound(i);
            }
        }
        Self::lower_bound(Self::BUCKETS - 1)
    }

    /// Copy the bucket counts into `out` (`BUCKETS` long), for [`Self::quantile_between`].
    pub fn snapshot_into(&self, out: &mut [u64]) {
        for (o, b) in out.iter_mut().zip(&self.buckets) {
            *o = b.load(Ordering::Relaxed);
        }
    }

    /// The quantile `q` of what was recorded between two snapshots (`before` taken first),
    /// as the lower bound of its bucket; 0 if nothing was.
    pub fn quantile_between(before: &[u64], after: &[u64], q: f64) -> u64 {
        let delta = |i: usize| after[i].saturating_sub(before[i]);
        let total: u64 = (0..after.len().min(before.len())).map(delta).sum();
        if total == 0 {
            return 0;
        }
        let target = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for i in 0..after.len().min(before.len()) {
            seen += delta(i);
            if seen >= target {
                return Self::lower_bound(i);
            }
        }
        Self::lower_bound(Self::BUCKETS - 1)
    }

    /// Observations at or below `le_us` (for Prometheus cumulative buckets).
    pub fn count_le(&self, le_us: u64) -> u64 {
        self.buckets
            .iter()
            .enumerate()
            .take_while(|(i, _)| Self::lower_bound(*i) <= le_us)
            .map(|(_, b)| b.load(Ordering::Relaxed))
            .sum()
    }

    pub fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
        self.count.store(0, Ordering::Relaxed);
        self.sum_us.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_between_snapshots_sees_only_what_came_between() {
        let h = LatencyHistogram::new();
        for us in 0..1000 {
            h.record(us * 1000);
        }
        let mut before = vec![0; LatencyHistogram::BUCKETS];
        h.snapshot_into(&mut before);
        let fresh = LatencyHistogram::new();
        let mut x = 12345u64;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let us = x % 20_000;
            h.record(us);
            fresh.record(us);
        }
        let mut after = vec![0; LatencyHistogram::BUCKETS];
        h.snapshot_into(&mut after);
        for q in [0.5, 0.9, 0.99, 1.0] {
            assert_eq!(
                LatencyHistogram::quantile_between(&before, &after, q),
                fresh.quantile(q),
                "q {q}"
            );
        }
        assert_eq!(LatencyHistogram::quantile_between(&after, &after, 0.99), 0);
    }

    #[test]
    fn quantiles_within_resolution() {
        let h = LatencyHistogram::new();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.04, "{p50}");
        assert!((p99 - 9900.0).abs() / 9900.0 < 0.04, "{p99}");
        assert_eq!(h.quantile(0.0001), 1);
        assert_eq!(h.count_le(63), 63);
        assert_eq!(h.count_le(u64::MAX), 10_000);
        assert_eq!(h.sum_us(), 10_000 * 10_001 / 2);
    }
}
