//! Compute units a transaction will really consume, learnt from execution.
//!
//! Transactions are grouped by their *shape*: the top-level instructions' programs and first
//! data bytes (the instruction tag of native programs and SPL; for Anchor programs, the first
//! byte of the 8-byte discriminator). For each shape the model keeps an exponentially weighted
//! mean and mean absolute deviation of the CU consumed by **successful** executions (a failure
//! stops early and would make a shape look cheap), and estimates mean + 1.6 deviations (about
//! the 90th percentile for a normal spread; exactly the mean for deterministic programs).
//!
//! A shape seen fewer than [`MIN_SAMPLES`] times, or not tracked, is estimated at the requested
//! limit: today's rule, so an unknown transaction is never priced as cheaper than it asked to
//! be. An estimate never exceeds the request (the SVM stops a transaction at its limit). The
//! estimate does not depend on the request otherwise, which is what makes padding useless.
//!
//! A shape is a guess at what a transaction does, and a program can make the same shape cost
//! far more (a loop driven by data past the tag, a transfer hook, a pool's tick crossings). A
//! transaction that uses more than twice its estimate (and 1,000 CU more), whatever its
//! result, *suspends* its shape for [`DISTRUST_SLOTS`]: estimated at the request meanwhile
//! (Agave's rule), its samples reset so that it is relearnt from what it costs now, and the
//! queued transactions of the shape reserve their request again
//! ([`crate::sequencer::Sequencer::reserve_requested`]). So a shape trained cheap and then
//! sent expensive overruns the per-slot caps only with the transactions already running, once
//! per suspension. The suspension expires so that one transaction cannot switch a popular
//! shape to the request for good; a suspended shape is not forgotten while suspended.
//!
//! Bounded: at most [`MAX_SHAPES`] shapes, and only an executed transaction creates one; a
//! shape unseen for [`IDLE_SLOTS`] slots is forgotten when the table is three-quarters full,
//! and while it is full new shapes are not learnt (counted).

use ahash::HashMap;

/// Shapes tracked at most (~40 bytes each with the map's overhead: ~2.5 MiB).
pub const MAX_SHAPES: usize = 65_536;
/// Executions of a shape before its estimate replaces the request.
pub const MIN_SAMPLES: u32 = 4;
/// A shape not executed for this many slots may be forgotten.
pub const IDLE_SLOTS: u64 = 256;
/// Weight of the newest execution once a shape has 1/ALPHA samples (before that: the plain
/// mean, so the first few samples count fully).
const ALPHA: f64 = 0.05;
/// Deviations above the mean the estimate sits at.
const SPREAD: f64 = 1.6;
/// Slots a shape stays suspended after an overrun (12.8 s of 50 ms slots).
pub const DISTRUST_SLOTS: u64 = 256;

#[derive(Debug, Clone, Copy, Default)]
struct ShapeCost {
    mean: f64,
    deviation: f64,
    samples: u32,
    last_slot: u64,
    /// Suspended (estimated at the request) until this slot, after an overrun.
    distrusted_until: u64,
}

#[derive(Debug)]
pub struct CuModel {
    shapes: HashMap<u64, ShapeCost>,
    capacity: usize,
    slot: u64,
}

impl Default for CuModel {
    fn default() -> Self {
        Self::with_capacity(MAX_SHAPES)
    }
}

impl CuModel {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shapes: HashMap::default(),
            capacity,
            slot: 0,
        }
    }

    /// Expected CU of a transaction of `shape` that requested `requested`.
    pub fn estimate(&self, shape: u64, requested: u64) -> u64 {
        match self.shapes.get(&shape) {
            Some(s) if s.samples >= MIN_SAMPLES && self.slot >= s.distrusted_until => {
                let cu = (s.mean + SPREAD * s.deviation).ceil() as u64;
                cu.min(requested)
            }
            _ => requested,
        }
    }

    /// Whether the shape's estimate comes from executions (not the request).
    pub fn knows(&self, shape: u64) -> bool {
        self.shapes
            .get(&shape)
            .is_some_and(|s| s.samples >= MIN_SAMPLES && self.slot >= s.distrusted_until)
    }

    /// A transaction of `shape` used `used` CU, against an estimate of `estimated`: if that is
    /// an overrun (over twice the estimate and 1,000 CU more), suspend the shape. Returns
    /// whether it was one.
    pub fn check_overrun(&mut self, shape: u64, estimated: u64, used: u64) -> bool {
        let overrun = used
            > estimated
                .saturating_mul(2)
                .max(estimated.saturating_add(1_000));
        if overrun && let Some(s) = self.shapes.get_mut(&shape) {
            s.distrusted_until = self.slot.saturating_add(DISTRUST_SLOTS);
            s.samples = 0;
        }
        overrun
    }

    /// A transaction of `shape` executed successfully and consumed `cu`. Returns false when
    /// the table is full and the shape is new (not learnt).
    pub fn learn(&mut self, shape: u64, cu: u64) -> bool {
        let full = self.shapes.len() >= self.capacity;
        let s = match self.shapes.get_mut(&shape) {
            Some(s) => s,
            None if full => return false,
            None => self.shapes.entry(shape).or_default(),
        };
        let x = cu as f64;
        s.samples = s.samples.saturating_add(1);
        s.last_slot = self.slot;
        if s.samples == 1 {
            s.mean = x;
            s.deviation = 0.0;
            return true;
        }
        let a = (1.0 / f64::from(s.samples)).max(ALPHA);
        let err = x - s.mean;
        s.mean += a * err;
        s.deviation += a * (err.abs() - s.deviation);
        true
    }

    /// A slot closed: forget idle shapes if the table is filling up.
    pub fn slot_closed(&mut self, slot: u64) {
        self.slot = slot;
        if self.shapes.len() * 4 >= self.capacity * 3 {
            self.shapes.retain(|_, s| {
                s.last_slot.saturating_add(IDLE_SLOTS) > slot || s.distrusted_until > slot
            });
        }
    }

    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_shapes_cost_their_request_and_estimates_never_exceed_it() {
        let mut m = CuModel::default();
        assert_eq!(m.estimate(7, 200_000), 200_000);
        for _ in 0..MIN_SAMPLES - 1 {
            m.learn(7, 4_644);
        }
        assert_eq!(m.estimate(7, 200_000), 200_000, "too few samples");
        m.learn(7, 4_644);
        assert_eq!(m.estimate(7, 200_000), 4_644);
        assert_eq!(m.estimate(7, 6_000), 4_644, "the request does not move it");
        assert_eq!(m.estimate(7, 1_000), 1_000, "never above the request");
    }

    #[test]
    fn converges_to_a_shifted_cost_and_sits_above_a_spread() {
        let mut m = CuModel::default();
        for _ in 0..100 {
            m.learn(1, 1_000);
        }
        for _ in 0..200 {
            m.learn(1, 3_000);
        }
        let e = m.estimate(1, u64::MAX);
        assert!((3_000..3_100).contains(&e), "{e}");
        // Alternating 1,000 / 3,000: mean 2,000, deviation 1,000: about 3,600.
        for i in 0..400 {
            m.learn(2, if i % 2 == 0 { 1_000 } else { 3_000 });
        }
        let e = m.estimate(2, u64::MAX);
        assert!((3_000..=3_800).contains(&e), "{e}");
    }

    #[test]
    fn an_overrun_suspends_the_shape_and_it_is_relearnt_afterwards() {
        let mut m = CuModel::default();
        for _ in 0..10 {
            m.learn(5, 300);
        }
        assert_eq!(m.estimate(5, 1_400_000), 300);
        assert!(!m.check_overrun(5, 300, 1_200), "within 2x / +1,000: noise");
        assert!(m.check_overrun(5, 300, 900_000));
        assert_eq!(m.estimate(5, 1_400_000), 1_400_000);
        for _ in 0..100 {
            m.learn(5, 300);
        }
        assert_eq!(
            m.estimate(5, 1_400_000),
            1_400_000,
            "retraining does not lift it"
        );
        assert!(!m.knows(5));
        // Idle shapes are forgotten when the table fills, a suspended one is not.
        let mut small = CuModel::with_capacity(4);
        small.slot_closed(100);
        for _ in 0..10 {
            small.learn(1, 300);
        }
        small.learn(2, 300);
        small.learn(3, 300);
        small.slot_closed(200);
        assert!(
            small.check_overrun(1, 300, 900_000),
            "suspended until 200 + 256"
        );
        small.slot_closed(100 + IDLE_SLOTS + 1);
        assert_eq!(small.len(), 1, "only the suspended shape is kept");
        m.slot_closed(DISTRUST_SLOTS);
        assert_eq!(
            m.estimate(5, 1_400_000),
            300,
            "relearnt after the suspension"
        );
    }

    #[test]
    fn bounded_and_idle_shapes_go() {
        let mut m = CuModel::with_capacity(8);
        for shape in 0..8 {
            assert!(m.learn(shape, 100));
        }
        assert!(!m.learn(99, 100), "full: a new shape is not learnt");
        assert!(m.learn(3, 100), "a known one still is");
        assert_eq!(m.len(), 8);
        m.slot_closed(IDLE_SLOTS + 1);
        assert_eq!(m.len(), 0, "all idle since slot 0");
        assert!(m.learn(99, 100));
    }
}
