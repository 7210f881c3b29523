//! Online Bayesian probit regression with assumed-density filtering (Graepel et al., "Web-Scale
//! Bayesian Click-Through Rate Prediction", ICML 2010: the AdPredictor model).
//!
//! Every feature slot i carries an independent Gaussian belief about its weight,
//! w_i ~ N(μ_i, σ_i²), starting at the prior N(0, σ0²). For the active slots of an input,
//! s = Σμ_i and V = β² + Σσ_i², the predictive probability is p = Φ(s / √V): it integrates
//! over the weights' uncertainty, so an input made of rarely seen slots gets a large V and a
//! probability pulled towards ½ (and the bias) instead of an overconfident one.
//!
//! An observed outcome y ∈ {−1, +1} is folded in by moment matching the exact one-step
//! posterior (ADF): with t = y·s/√V, λ = φ(t)/Φ(t) and ν = λ(λ + t),
//! μ_i += y·λ·σ_i²/√V and σ_i² *= 1 − ν·σ_i²/V. No learning rate is tuned; the step is what
//! the current uncertainty implies.
//!
//! Dynamics: between epochs (slots) each weight's variance grows by δ², capped at σ0² (a
//! random walk on the weights, Kalman process noise), so the model follows a workload whose
//! behaviour shifts. The growth is applied lazily when a slot is next read or written, so an
//! epoch costs nothing.
//!
//! Cost: a prediction is one load of μ, σ² and the epoch per active slot and one erfc; an
//! update twice that. Nothing allocates after `new`.

/// The largest number of slots one input may activate.
pub const MAX_ACTIVE: usize = 24;

/// The model's constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbitConfig {
    /// log2 of the number of weight slots the hashed features map to.
    pub table_bits: u32,
    /// σ0²: the prior variance of every weight, and the cap the drift grows back to.
    pub prior_variance: f64,
    /// β²: the variance of the noise on the latent score.
    pub noise_variance: f64,
    /// δ²: variance added to every weight per epoch.
    pub drift_per_epoch: f64,
}

impl Default for ProbitConfig {
    fn default() -> Self {
        Self {
            table_bits: 16,
            prior_variance: 0.3,
            noise_variance: 1.0,
            drift_per_epoch: 1e-3,
        }
    }
}

/// The active slots of one input (indices into the model's table), in a fixed array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Active {
    slots: [u32; MAX_ACTIVE],
    len: u8,
}

impl Default for Active {
    fn default() -> Self {
        Self {
            slots: [0; MAX_ACTIVE],
            len: 0,
        }
    }
}

impl Active {
    /// Adds feature `value` of group `group`; past `MAX_ACTIVE` slots the feature is ignored
    /// (and `full` says so). The slot is a hash of both, so groups never share a slot except by
    /// collision in the table.
    pub fn push(&mut self, group: u16, value: u64) {
        if (self.len as usize) < MAX_ACTIVE {
            self.slots[self.len as usize] = slot_hash(group, value);
            self.len += 1;
        }
    }

    pub fn full(&self) -> bool {
        self.len as usize == MAX_ACTIVE
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.slots[..self.len as usize]
    }
}

/// A 32-bit mix of (group, value) (SplitMix64's finaliser): the table index is its low bits.
fn slot_hash(group: u16, value: u64) -> u32 {
    let mut z = value ^ ((group as u64) << 48) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as u32
}

/// A prediction: the probability and the two moments it came from (kept so a later update
/// needs no second pass, and for tests).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    pub p: f64,
    pub mean: f64,
    pub variance: f64,
}

/// The model: μ, σ² and the epoch each σ² was last brought up to date, per slot.
pub struct ProbitModel {
    config: ProbitConfig,
    mask: u32,
    mean: Box<[f32]>,
    variance: Box<[f32]>,
    touched: Box<[u32]>,
    epoch: u32,
    updates: u64,
}

impl ProbitModel {
    pub fn new(config: ProbitConfig) -> Self {
        let bits = config.table_bits.clamp(4, 24);
        let n = 1usize << bits;
        Self {
            config,
            mask: (n - 1) as u32,
            mean: vec![0.0; n].into_boxed_slice(),
            variance: vec![config.prior_variance as f32; n].into_boxed_slice(),
            touched: vec![0; n].into_boxed_slice(),
            epoch: 0,
            updates: 0,
        }
    }

    pub fn config(&self) -> &ProbitConfig {
        &self.config
    }

    /// Outcomes folded in so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Ends an epoch: every weight's variance will have grown by δ² when next used.
    pub fn advance_epoch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// σ² of `slot` with the drift since it was last touched.
    fn current_variance(&self, slot: usize) -> f64 {
        let elapsed = self.epoch.wrapping_sub(self.touched[slot]) as f64;
        (self.variance[slot] as f64 + elapsed * self.config.drift_per_epoch)
            .min(self.config.prior_variance)
    }

    fn index(&self, slot: u32) -> usize {
        (slot & self.mask) as usize
    }

    /// P(y = +1 | x).
    pub fn predict(&self, x: &Active) -> Prediction {
        let mut mean = 0.0;
        let mut variance = self.config.noise_variance;
        for &slot in x.as_slice() {
            let i = self.index(slot);
            mean += self.mean[i] as f64;
            variance += self.current_variance(i);
        }
        Prediction {
            p: normal_cdf(mean / variance.sqrt()),
            mean,
            variance,
        }
    }

    /// Folds in the observed outcome of `x`.
    pub fn update(&mut self, x: &Active, outcome: bool) {
        let before = self.predict(x);
        let y = if outcome { 1.0 } else { -1.0 };
        let sd = before.variance.sqrt();
        let t = y * before.mean / sd;
        let lambda = mills_ratio(t);
        let nu = (lambda * (lambda + t)).clamp(0.0, 1.0);
        let floor = self.config.prior_variance * 1e-6;
        for &slot in x.as_slice() {
            let i = self.index(slot);
            let var = self.current_variance(i);
            self.mean[i] = (self.mean[i] as f64 + y * lambda * var / sd) as f32;
            self.variance[i] = (var * (1.0 - nu * var / before.variance)).max(floor) as f32;
            self.touched[i] = self.epoch;
        }
        self.updates += 1;
    }
}

/// Φ(t), the standard normal CDF.
pub fn normal_cdf(t: f64) -> f64 {
    if t.is_nan() {
        return 0.5;
    }
    0.5 * erfc(-t / std::f64::consts::SQRT_2)
}

/// φ(t)/Φ(t), stable for very negative t (where both vanish): there its asymptotic series.
fn mills_ratio(t: f64) -> f64 {
    if t < -30.0 {
        let t2 = t * t;
        return -t / (1.0 - 1.0 / t2 + 3.0 / (t2 * t2));
    }
    let pdf = (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
    pdf / normal_cdf(t)
}

/// The complementary error function, with a fractional error below 1.2·10⁻⁷ everywhere
/// (the Chebyshev fit of Numerical Recipes, §6.2), so ratios of small tails stay accurate.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic pseudo-random numbers for the synthetic streams.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn uniform(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform().max(1e-300), self.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    fn input(values: &[(u16, u64)]) -> Active {
        let mut a = Active::default();
        for &(g, v) in values {
            a.push(g, v);
        }
        a
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        for (t, p) in [
            (0.0, 0.5),
            (1.0, 0.841_344_746),
            (-1.96, 0.024_997_895),
            (3.0, 0.998_650_102),
            (-6.0, 9.865_876e-10),
        ] {
            let got = normal_cdf(t);
            assert!(
                (got - p).abs() <= 1e-7 * p.max(1e-3),
                "Φ({t}) = {got}, want {p}"
            );
        }
        assert_eq!(normal_cdf(f64::INFINITY), 1.0);
        assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn mills_ratio_is_continuous_where_the_asymptotic_series_takes_over() {
        let direct = {
            let t: f64 = -29.999;
            (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt() / normal_cdf(t)
        };
        let series = mills_ratio(-30.001);
        assert!(
            (direct - series).abs() / series < 1e-4,
            "{direct} vs {series}"
        );
        for t in [-1e6, -100.0, -5.0, 0.0, 5.0, 100.0] {
            let l = mills_ratio(t);
            assert!(l.is_finite() && l >= 0.0, "λ({t}) = {l}");
        }
    }

    #[test]
    fn probabilities_stay_in_the_unit_interval_for_extreme_and_unseen_inputs() {
        let mut m = ProbitModel::new(ProbitConfig::default());
        let x = input(&[(0, 0), (1, 7)]);
        let coin = |p: f64| (p - 0.5).abs() < 1e-6;
        assert!(
            coin(m.predict(&x).p),
            "an unseen input with a zero prior mean is a coin"
        );
        assert!(coin(m.predict(&Active::default()).p));
        for _ in 0..100_000 {
            m.update(&x, true);
        }
        let p = m.predict(&x).p;
        assert!(p > 0.99 && p <= 1.0, "{p}");
        for _ in 0..100_000 {
            m.update(&x, false);
        }
        let p = m.predict(&x).p;
        assert!((0.0..0.5).contains(&p), "{p}");
        let full = input(&[(3, 1); MAX_ACTIVE + 5]);
        assert!(full.full());
        let q = m.predict(&full).p;
        assert!((0.0..=1.0).contains(&q));
    }

    #[test]
    fn an_outcome_moves_the_probability_its_way_and_shrinks_the_variance() {
        let mut m = ProbitModel::new(ProbitConfig::default());
        let x = input(&[(0, 0), (1, 1), (2, 2)]);
        for outcome in [true, true, false, true, false, false, false] {
            let before = m.predict(&x);
            m.update(&x, outcome);
            let after = m.predict(&x);
            if outcome {
                assert!(
                    after.p > before.p,
                    "{after:?} after a success, was {before:?}"
                );
            } else {
                assert!(
                    after.p < before.p,
                    "{after:?} after a failure, was {before:?}"
                );
            }
            assert!(after.variance < before.variance);
        }
        // An input sharing no slot is untouched.
        assert!((m.predict(&input(&[(9, 9)])).p - 0.5).abs() < 1e-6);
    }

    #[test]
    fn drift_regrows_variance_but_never_past_the_prior() {
        let config = ProbitConfig {
            drift_per_epoch: 0.01,
            ..ProbitConfig::default()
        };
        let mut m = ProbitModel::new(config);
        let x = input(&[(0, 0)]);
        for _ in 0..1000 {
            m.update(&x, true);
        }
        let settled = m.predict(&x).variance - config.noise_variance;
        assert!(settled < config.prior_variance / 10.0, "{settled}");
        m.advance_epoch();
        let grown = m.predict(&x).variance - config.noise_variance;
        assert!((grown - settled - 0.01).abs() < 1e-6, "{settled} → {grown}");
        for _ in 0..10_000 {
            m.advance_epoch();
        }
        let capped = m.predict(&x).variance - config.noise_variance;
        assert!((capped - config.prior_variance).abs() < 1e-6, "{capped}");
    }

    /// Expected calibration error over 10 equal-width bins.
    fn ece(pairs: &[(f64, bool)]) -> f64 {
        let mut n = [0f64; 10];
        let mut sum_p = [0f64; 10];
        let mut hits = [0f64; 10];
        for &(p, y) in pairs {
            let b = ((p * 10.0) as usize).min(9);
            n[b] += 1.0;
            sum_p[b] += p;
            hits[b] += y as u8 as f64;
        }
        (0..10)
            .filter(|&b| n[b] > 0.0)
            .map(|b| (sum_p[b] - hits[b]).abs())
            .sum::<f64>()
            / pairs.len() as f64
    }

    /// A stream drawn from a true probit model over 6 groups of categorical features (one
    /// value per group per input): `truth(group, value)` is the true weight.
    fn synthetic(rng: &mut Rng, truth: &dyn Fn(u16, u64) -> f64) -> (Active, bool) {
        let mut x = Active::default();
        let mut score = truth(0, 0);
        x.push(0, 0);
        for g in 1..=6u16 {
            let v = rng.next() % 8;
            x.push(g, v);
            score += truth(g, v);
        }
        (x, score + rng.normal() > 0.0)
    }

    fn weight(seed: u64, g: u16, v: u64) -> f64 {
        let mut r = Rng(seed ^ slot_hash(g, v) as u64 | 1);
        r.next();
        0.8 * r.normal()
    }

    #[test]
    fn learns_a_calibrated_model_of_a_probit_stream() {
        let mut rng = Rng(0x5eed);
        let truth = |g: u16, v: u64| if g == 0 { 1.2 } else { weight(1, g, v) };
        let mut m = ProbitModel::new(ProbitConfig::default());
        for _ in 0..20_000 {
            let (x, y) = synthetic(&mut rng, &truth);
            m.update(&x, y);
        }
        let mut scored = Vec::new();
        for _ in 0..20_000 {
            let (x, y) = synthetic(&mut rng, &truth);
            scored.push((m.predict(&x).p, y));
            m.update(&x, y);
        }
        let e = ece(&scored);
        assert!(e < 0.02, "ECE {e}");
        let base = scored.iter().filter(|s| s.1).count() as f64 / scored.len() as f64;
        let brier = |f: &dyn Fn(f64) -> f64| {
            scored
                .iter()
                .map(|&(p, y)| (f(p) - y as u8 as f64).powi(2))
                .sum::<f64>()
                / scored.len() as f64
        };
        let ours = brier(&|p| p);
        let constant = brier(&|_| base);
        assert!(
            ours < 0.8 * constant,
            "Brier {ours} against the base rate's {constant}"
        );
    }

    #[test]
    fn follows_a_phase_flip() {
        let mut rng = Rng(0xf11e_u64);
        let before = |g: u16, v: u64| if g == 0 { 1.5 } else { weight(2, g, v) };
        let after = |g: u16, v: u64| if g == 0 { -1.5 } else { weight(3, g, v) };
        let config = ProbitConfig {
            drift_per_epoch: 2e-3,
            ..ProbitConfig::default()
        };
        let mut m = ProbitModel::new(config);
        for i in 0..20_000 {
            if i % 200 == 0 {
                m.advance_epoch();
            }
            let (x, y) = synthetic(&mut rng, &before);
            m.update(&x, y);
        }
        let mut scored = Vec::new();
        for i in 0..20_000 {
            if i % 200 == 0 {
                m.advance_epoch();
            }
            let (x, y) = synthetic(&mut rng, &after);
            if i >= 5_000 {
                scored.push((m.predict(&x).p, y));
            }
            m.update(&x, y);
        }
        let e = ece(&scored);
        assert!(e < 0.03, "ECE after the flip {e}");
    }
}
