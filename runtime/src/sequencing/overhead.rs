//! What a transaction costs a worker beyond its compute units, learnt from batch timings.
//!
//! Compute units count the program's instructions, not the runtime's fixed work per
//! transaction (loading and locking its accounts, the fee payer, sanitizing, writing back),
//! which for a small program is most of the time it takes. Each completed batch gives its
//! wall time, its transaction count n and its compute units u; the model fits
//! `time ≈ a·n + b·u` by least squares over exponentially decayed sums (a 2×2 system, no
//! intercept), and the overhead, in compute-unit equivalents, is `a / b`: what one more
//! transaction costs in time, expressed in the units that price its work.
//!
//! It needs batches of different make-up to tell a from b (if every batch had the same CU per
//! transaction, n and u would be proportional): until the system is well conditioned, and
//! whenever a fit comes out negative, the overhead stays at its last good value (0 at first).

/// Weight of the newest batch in the decayed sums.
const ALPHA: f64 = 0.005;
/// Batches before the fit is used.
const MIN_BATCHES: u32 = 64;
/// The overhead never exceeds a transaction's maximum compute units.
const MAX_OVERHEAD_CU: f64 = 1_400_000.0;

#[derive(Debug, Default)]
pub struct Overhead {
    nn: f64,
    nu: f64,
    uu: f64,
    nt: f64,
    ut: f64,
    batches: u32,
    overhead_cu: u64,
}

impl Overhead {
    /// A batch of `n` transactions that consumed `cu` compute units ran for `ns`.
    pub fn batch(&mut self, n: usize, cu: u64, ns: u64) {
        if n == 0 || ns == 0 {
            return;
        }
        let (n, u, t) = (n as f64, cu as f64, ns as f64);
        let decay = 1.0 - ALPHA;
        self.nn = self.nn * decay + n * n;
        self.nu = self.nu * decay + n * u;
        self.uu = self.uu * decay + u * u;
        self.nt = self.nt * decay + n * t;
        self.ut = self.ut * decay + u * t;
        self.batches = self.batches.saturating_add(1);
        if self.batches >= MIN_BATCHES
            && let Some(o) = self.fit()
        {
            self.overhead_cu = o;
        }
    }

    /// a / b from the normal equations, if they are well conditioned and both are positive.
    fn fit(&self) -> Option<u64> {
        let det = self.nn * self.uu - self.nu * self.nu;
        // Relative conditioning: det against the product of the diagonal (1 - cos² of the
        // angle between the n and u series); below 1e-3 they are all but proportional.
        let conditioned = det > 1e-3 * self.nn * self.uu;
        if !conditioned {
            return None;
        }
        let a = (self.nt * self.uu - self.ut * self.nu) / det;
        let b = (self.ut * self.nn - self.nt * self.nu) / det;
        let positive = a > 0.0 && b > 0.0;
        if !positive {
            return None;
        }
        Some((a / b).min(MAX_OVERHEAD_CU) as u64)
    }

    /// The learnt overhead of one transaction, in compute units.
    pub fn cu(&self) -> u64 {
        self.overhead_cu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_fixed_cost_from_mixed_batches() {
        // 20 µs per transaction plus 2 ns per CU: the overhead is 10,000 CU.
        let mut o = Overhead::default();
        for i in 0..500u64 {
            let n = 1 + (i % 64) as usize;
            let heavy = (i * 7) % n as u64;
            let cu = (n as u64 - heavy) * 5_000 + heavy * 15_000;
            o.batch(n, cu, n as u64 * 20_000 + cu * 2);
        }
        assert!((9_900..=10_100).contains(&o.cu()), "{}", o.cu());
    }

    #[test]
    fn proportional_batches_teach_nothing_and_bad_fits_are_ignored() {
        let mut o = Overhead::default();
        for i in 0..500u64 {
            let n = 1 + (i % 64);
            o.batch(n as usize, n * 5_000, n * 30_000);
        }
        assert_eq!(o.cu(), 0, "n and u proportional: not identifiable");
        let mut o = Overhead::default();
        for i in 0..500u64 {
            let n = 1 + (i % 64);
            let cu = n * 5_000 + (i % 3) * 40_000;
            // Time falls with the CU: a negative b is refused.
            o.batch(n as usize, cu, (n * 100_000).saturating_sub(cu));
        }
        assert_eq!(o.cu(), 0);
        o.batch(0, 0, 0);
        o.batch(3, 0, 0);
    }
}
