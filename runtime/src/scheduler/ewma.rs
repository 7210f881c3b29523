//! Per-slot statistics with exponentially weighted moving averages over slots.

/// An EWMA over slots; the first sample sets it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ewma {
    value: f64,
    primed: bool,
}

impl Ewma {
    pub fn update(&mut self, sample: f64, alpha: f64) {
        if self.primed {
            self.value += alpha * (sample - self.value);
        } else {
            self.value = sample;
            self.primed = true;
        }
    }

    pub fn get(&self) -> f64 {
        self.value
    }
}

/// One slot's raw observations for an account or an app.
#[derive(Debug, Default, Clone, Copy)]
pub struct SlotSample {
    /// Requested CU of admitted transactions that write it (for an app: all of its own).
    pub demand_cu: u64,
    /// How many transactions that was.
    pub writers: u64,
    /// Transactions dispatched.
    pub dispatched: u64,
    /// Of those, how many found a declared lock conflict when placed.
    pub conflicted: u64,
    /// Time dispatched transactions spent blocked on locks, summed.
    pub lock_wait_ns: u64,
    /// Admission to dispatch, summed over dispatched transactions.
    pub queue_delay_ns: u64,
    /// The one app whose transactions made up `demand_cu`, if it was just one.
    pub sole_writer: Option<u32>,
    pub many_writers: bool,
}

impl SlotSample {
    pub fn add_demand(&mut self, app: u32, cu: u64) {
        self.demand_cu += cu;
        self.writers += 1;
        match self.sole_writer {
            None if !self.many_writers => self.sole_writer = Some(app),
            Some(a) if a != app => {
                self.sole_writer = None;
                self.many_writers = true;
            }
            _ => {}
        }
    }
}

/// The four signals the scheduler steers by, as per-slot EWMAs.
#[derive(Debug, Default, Clone, Copy)]
pub struct Heat {
    /// Demanded write CU per slot.
    pub demand_cu: Ewma,
    /// Transactions demanding it per slot.
    pub writers: Ewma,
    /// Mean lock wait per dispatched transaction, µs.
    pub lock_wait_us: Ewma,
    /// Fraction of dispatched transactions that met a declared lock conflict.
    pub conflict_rate: Ewma,
    /// Mean admission-to-dispatch delay, µs.
    pub queue_delay_us: Ewma,
    pub sample: SlotSample,
}

impl Heat {
    /// Fold the slot's sample into the averages and start a new one. Rates and means only move
    /// in slots that dispatched something (an idle slot says nothing about contention).
    pub fn roll(&mut self, alpha: f64) {
        let s = std::mem::take(&mut self.sample);
        self.demand_cu.update(s.demand_cu as f64, alpha);
        self.writers.update(s.writers as f64, alpha);
        if s.dispatched > 0 {
            let n = s.dispatched as f64;
            self.conflict_rate.update(s.conflicted as f64 / n, alpha);
            self.lock_wait_us
                .update(s.lock_wait_ns as f64 / n / 1e3, alpha);
            self.queue_delay_us
                .update(s.queue_delay_ns as f64 / n / 1e3, alpha);
        }
    }

    /// Nothing left worth remembering.
    pub fn is_cold(&self, below_cu: f64) -> bool {
        self.demand_cu.get() < below_cu && self.sample.demand_cu == 0 && self.sample.dispatched == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_converges_and_idle_slots_keep_rates() {
        let mut h = Heat::default();
        h.sample.demand_cu = 1000;
        h.sample.dispatched = 4;
        h.sample.conflicted = 2;
        h.roll(0.5);
        assert_eq!(h.demand_cu.get(), 1000.0);
        assert_eq!(h.conflict_rate.get(), 0.5);
        h.roll(0.5);
        assert_eq!(h.demand_cu.get(), 500.0);
        assert_eq!(
            h.conflict_rate.get(),
            0.5,
            "an idle slot leaves the rate alone"
        );
        for _ in 0..60 {
            h.roll(0.5);
        }
        assert!(h.is_cold(1.0));
    }
}
