//! Counters the runtime tiles keep (one writer each, relaxed atomics), read by the RPC, the
//! benches and the metrics endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why the runtime dropped a verified transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum RuntimeDrop {
    BlockhashNotFound,
    AlreadyProcessed,
    ComputeBudget,
    Lookup,
    Sanitize,
    SequencerFull,
    SequencerEvicted,
    Expired,
    SvmRejected,
    Shutdown,
}

impl RuntimeDrop {
    pub const COUNT: usize = 10;
    pub const ALL: [RuntimeDrop; Self::COUNT] = [
        RuntimeDrop::BlockhashNotFound,
        RuntimeDrop::AlreadyProcessed,
        RuntimeDrop::ComputeBudget,
        RuntimeDrop::Lookup,
        RuntimeDrop::Sanitize,
        RuntimeDrop::SequencerFull,
        RuntimeDrop::SequencerEvicted,
        RuntimeDrop::Expired,
        RuntimeDrop::SvmRejected,
        RuntimeDrop::Shutdown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RuntimeDrop::BlockhashNotFound => "blockhash_not_found",
            RuntimeDrop::AlreadyProcessed => "already_processed",
            RuntimeDrop::ComputeBudget => "compute_budget",
            RuntimeDrop::Lookup => "address_lookup",
            RuntimeDrop::Sanitize => "sanitize",
            RuntimeDrop::SequencerFull => "sequencer_full",
            RuntimeDrop::SequencerEvicted => "sequencer_evicted",
            RuntimeDrop::Expired => "blockhash_expired_in_queue",
            RuntimeDrop::SvmRejected => "svm_rejected",
            RuntimeDrop::Shutdown => "shutdown",
        }
    }
}

/// Log-linear latency histogram in microseconds: exact below 64 µs, then 32 sub-buckets per
/// power of two (about 3% resolution). Fixed size, lock-free.
pub struct LatencyHistogram {
    buckets: [AtomicU64; Self::BUCKETS],
    count: AtomicU64,
}

impl LatencyHistogram {
    const BUCKETS: usize = 64 + 32 * 40;

    pub fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
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
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
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

    pub fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
        self.count.store(0, Ordering::Relaxed);
    }
}

pub struct RuntimeCounters {
    pub received: AtomicU64,
    pub queued: AtomicU64,
    pub executed_ok: AtomicU64,
    pub executed_err: AtomicU64,
    pub committed: AtomicU64,
    pub drops: [AtomicU64; RuntimeDrop::COUNT],
    pub slots_closed: AtomicU64,
    pub batches: AtomicU64,
    pub exec_ns: AtomicU64,
    pub compute_units: AtomicU64,
    pub commit_ns: AtomicU64,
    pub commit_errors: AtomicU64,
    pub sequencer_depth: AtomicU64,
    /// Received (by the net tile) to durably committed.
    pub commit_latency: LatencyHistogram,
}

impl RuntimeCounters {
    pub fn new() -> Self {
        Self {
            received: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            executed_ok: AtomicU64::new(0),
            executed_err: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            slots_closed: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            exec_ns: AtomicU64::new(0),
            compute_units: AtomicU64::new(0),
            commit_ns: AtomicU64::new(0),
            commit_errors: AtomicU64::new(0),
            sequencer_depth: AtomicU64::new(0),
            commit_latency: LatencyHistogram::new(),
        }
    }

    pub fn count_drop(&self, why: RuntimeDrop) {
        self.drops[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self, why: RuntimeDrop) -> u64 {
        self.drops[why as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_within_resolution() {
        let h = LatencyHistogram::new();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.04, "{p50}");
        assert!((p99 - 9900.0).abs() / 9900.0 < 0.04, "{p99}");
        assert_eq!(h.quantile(0.0001), 1);
    }
}
