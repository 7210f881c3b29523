//! What getRecentPerformanceSamples reports: transactions and slots per minute, the last 12
//! hours, sampled as slots close (as Agave's sampling service does every 60 s).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One sample period's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfSample {
    /// The newest slot of the period.
    pub slot: u64,
    pub num_transactions: u64,
    pub num_slots: u64,
    pub sample_period_secs: u16,
}

pub const SAMPLE_PERIOD: Duration = Duration::from_secs(60);
/// Agave keeps 720 samples (12 hours).
pub const MAX_SAMPLES: usize = 720;

pub struct PerfSampler {
    period: Duration,
    started: Instant,
    transactions: u64,
    slots: u64,
    /// Newest first.
    samples: VecDeque<PerfSample>,
}

impl PerfSampler {
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            started: Instant::now(),
            transactions: 0,
            slots: 0,
            samples: VecDeque::new(),
        }
    }

    /// A slot closed at `now` with `transactions` transactions.
    pub fn on_slot(&mut self, slot: u64, transactions: u64, now: Instant) {
        self.transactions += transactions;
        self.slots += 1;
        let elapsed = now.saturating_duration_since(self.started);
        if elapsed < self.period {
            return;
        }
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_back();
        }
        self.samples.push_front(PerfSample {
            slot,
            num_transactions: self.transactions,
            num_slots: self.slots,
            sample_period_secs: elapsed.as_secs().min(u64::from(u16::MAX)) as u16,
        });
        (self.started, self.transactions, self.slots) = (now, 0, 0);
    }

    /// The newest `limit` samples, newest first.
    pub fn recent(&self, limit: usize) -> Vec<PerfSample> {
        self.samples.iter().take(limit).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_period_newest_first_bounded() {
        let t0 = Instant::now();
        let mut s = PerfSampler::new(Duration::from_secs(60));
        s.started = t0;
        for i in 0..10u64 {
            s.on_slot(i, 2, t0 + Duration::from_secs(i * 10));
        }
        // Slot 6 closes at 60 s: the first sample holds slots 0..=6.
        let r = s.recent(10);
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].slot, r[0].num_slots, r[0].num_transactions),
            (6, 7, 14)
        );
        assert_eq!(r[0].sample_period_secs, 60);
        let mut now = t0 + Duration::from_secs(100);
        for i in 0..(MAX_SAMPLES as u64 + 5) {
            now += Duration::from_secs(61);
            s.on_slot(100 + i, 1, now);
        }
        let r = s.recent(usize::MAX);
        assert_eq!(r.len(), MAX_SAMPLES);
        assert!(r[0].slot > r[1].slot);
    }
}
