//! How well the appliance keeps its promises: per probability bucket, how many promises were
//! made, how many held and the probabilities they carried (since start, for Prometheus), and
//! the expected calibration error and Brier score over a sliding window of the most recent
//! resolutions (for the gauges and the monitor).

/// Equal-width probability buckets: [0, 0.1), [0.1, 0.2), … [0.9, 1.0].
pub const BUCKETS: usize = 10;

/// The bucket of probability `p` (NaN and out-of-range values are clamped).
pub fn bucket(p: f64) -> usize {
    if p.is_nan() {
        return 0;
    }
    ((p.clamp(0.0, 1.0) * BUCKETS as f64) as usize).min(BUCKETS - 1)
}

/// Counts of one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BucketCounts {
    pub promises: u64,
    pub held: u64,
    pub probability_sum: f64,
}

impl BucketCounts {
    fn add(&mut self, p: f64, held: bool) {
        self.promises += 1;
        self.held += held as u64;
        self.probability_sum += p;
    }

    fn remove(&mut self, p: f64, held: bool) {
        self.promises -= 1;
        self.held -= held as u64;
        self.probability_sum -= p;
    }
}

/// Calibration of one stream of promises: totals since start and a window of the last
/// `window` resolutions, kept in a ring so a resolution costs O(1) and the memory is fixed.
pub struct Calibration {
    totals: [BucketCounts; BUCKETS],
    windowed: [BucketCounts; BUCKETS],
    ring: Box<[(f32, bool)]>,
    next: usize,
    filled: usize,
    squared_error_sum: f64,
}

impl Calibration {
    pub fn new(window: usize) -> Self {
        Self {
            totals: Default::default(),
            windowed: Default::default(),
            ring: vec![(0.0, false); window.max(1)].into_boxed_slice(),
            next: 0,
            filled: 0,
            squared_error_sum: 0.0,
        }
    }

    /// Records that a promise made with probability `p` held or not.
    pub fn resolve(&mut self, p: f64, held: bool) {
        let p = if p.is_nan() { 0.5 } else { p.clamp(0.0, 1.0) };
        self.totals[bucket(p)].add(p, held);
        if self.filled == self.ring.len() {
            let (old_p, old_held) = self.ring[self.next];
            let old_p = old_p as f64;
            self.windowed[bucket(old_p)].remove(old_p, old_held);
            self.squared_error_sum -= (old_p - old_held as u8 as f64).powi(2);
        } else {
            self.filled += 1;
        }
        // The window stores p as f32; the sums use the stored value so removal is exact.
        let stored = p as f32;
        let p = stored as f64;
        self.ring[self.next] = (stored, held);
        self.next = (self.next + 1) % self.ring.len();
        self.windowed[bucket(p)].add(p, held);
        self.squared_error_sum += (p - held as u8 as f64).powi(2);
    }

    /// Since start, per bucket.
    pub fn totals(&self) -> &[BucketCounts; BUCKETS] {
        &self.totals
    }

    /// Resolutions in the window.
    pub fn window_len(&self) -> usize {
        self.filled
    }

    /// Expected calibration error over the window: Σ_b (n_b/N)·|mean p_b − held fraction_b|.
    pub fn ece(&self) -> f64 {
        if self.filled == 0 {
            return 0.0;
        }
        self.windowed
            .iter()
            .filter(|b| b.promises > 0)
            .map(|b| (b.probability_sum - b.held as f64).abs())
            .sum::<f64>()
            / self.filled as f64
    }

    /// Mean squared error of the probabilities over the window.
    pub fn brier(&self) -> f64 {
        if self.filled == 0 {
            return 0.0;
        }
        (self.squared_error_sum / self.filled as f64).max(0.0)
    }
}

/// A Beta-Bernoulli rate with exponential forgetting: the posterior mean of a probability
/// observed as successes and failures, for stages whose outcome depends on little besides
/// their kind (a transaction refused at admission, one already executed). Forgetting scales
/// both counts towards the prior so old evidence weighs less and the rate follows a shift.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BetaRate {
    prior: (f64, f64),
    a: f64,
    b: f64,
    keep: f64,
}

impl BetaRate {
    /// Prior Beta(a, b); each observation first multiplies the evidence by `keep` ∈ (0, 1].
    pub fn new(a: f64, b: f64, keep: f64) -> Self {
        Self {
            prior: (a, b),
            a,
            b,
            keep: keep.clamp(f64::MIN_POSITIVE, 1.0),
        }
    }

    pub fn mean(&self) -> f64 {
        self.a / (self.a + self.b)
    }

    pub fn observe(&mut self, success: bool) {
        let (pa, pb) = self.prior;
        self.a = pa + (self.a - pa) * self.keep + success as u8 as f64;
        self.b = pb + (self.b - pb) * self.keep + !success as u8 as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_unit_interval() {
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(0.0999), 0);
        assert_eq!(bucket(0.1), 1);
        assert_eq!(bucket(0.95), 9);
        assert_eq!(bucket(1.0), 9);
        assert_eq!(bucket(-3.0), 0);
        assert_eq!(bucket(7.0), 9);
        assert_eq!(bucket(f64::NAN), 0);
    }

    #[test]
    fn ece_and_brier_of_known_streams() {
        let mut c = Calibration::new(1000);
        assert_eq!((c.ece(), c.brier()), (0.0, 0.0));
        // p = 0.75 with three of four held: perfectly calibrated.
        for i in 0..100 {
            c.resolve(0.75, i % 4 != 0);
        }
        assert!(c.ece() < 1e-6, "{}", c.ece());
        assert!((c.brier() - 0.1875).abs() < 1e-6, "{}", c.brier());
        // p = 0.95 that never holds: ECE is the distance weighted by its share.
        for _ in 0..100 {
            c.resolve(0.95, false);
        }
        assert!((c.ece() - 0.475).abs() < 1e-6, "{}", c.ece());
        assert_eq!(c.totals()[7].promises, 100);
        assert_eq!(c.totals()[7].held, 75);
        assert_eq!(c.totals()[9].held, 0);
    }

    #[test]
    fn the_window_forgets_what_slid_out() {
        let mut c = Calibration::new(50);
        for _ in 0..1000 {
            c.resolve(0.9, false);
        }
        for i in 0..50 {
            c.resolve(0.2, i % 5 == 0);
        }
        assert_eq!(c.window_len(), 50);
        assert!(c.ece() < 1e-6, "{}", c.ece());
        assert!((c.brier() - 0.16).abs() < 1e-6, "{}", c.brier());
        assert_eq!(c.totals()[9].promises, 1000, "the totals keep everything");
    }

    #[test]
    fn beta_rate_starts_at_its_prior_and_follows_a_shift() {
        let mut r = BetaRate::new(99.0, 1.0, 0.999);
        assert!((r.mean() - 0.99).abs() < 1e-12);
        for _ in 0..20_000 {
            r.observe(false);
        }
        assert!(r.mean() < 0.1, "{}", r.mean());
        for _ in 0..20_000 {
            r.observe(true);
        }
        assert!(r.mean() > 0.9, "{}", r.mean());
        assert!((0.0..=1.0).contains(&r.mean()));
    }
}
