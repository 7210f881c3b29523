//! One measurement window: what the runtime earned (the reward) and what the workload looked
//! like (the context), from the runtime's counters at the window's two ends.

use crate::metrics::RuntimeCounters;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use telemetry::LatencyHistogram;

/// Cluster bit: the successful transactions average at least [`BPF_CU_PER_TX`] compute units
/// (programs, not just System transfers at 150).
pub const CLUSTER_BPF: usize = 1;
/// Cluster bit: writers collide (declared-lock conflicts, islands, re-executions).
pub const CLUSTER_CONTENDED: usize = 2;
const BPF_CU_PER_TX: f64 = 1_000.0;
/// Conflicts per transaction above which a window is contended.
const CONTENDED_CONFLICT_SHARE: f64 = 0.02;

pub fn cluster_name(c: usize) -> String {
    let mut parts = Vec::new();
    if c & CLUSTER_BPF != 0 {
        parts.push("bpf");
    }
    if c & CLUSTER_CONTENDED != 0 {
        parts.push("contended");
    }
    if parts.is_empty() {
        "plain".into()
    } else {
        parts.join("+")
    }
}

/// The counters a window compares at its two ends.
pub struct Snapshot {
    at: Instant,
    cu_ok: u64,
    executed_ok: u64,
    received: u64,
    conflicts: u64,
    cu_deferred: u64,
    reexecutions: u64,
    optimistic_batches: u64,
    latency: Vec<u64>,
}

impl Snapshot {
    /// Reward compute units per second since this snapshot (no latency penalty: an upper
    /// bound of the reward), from one counter load.
    pub fn cu_rate_since(&self, c: &RuntimeCounters) -> f64 {
        let secs = self.at.elapsed().as_secs_f64().max(1e-6);
        c.reward_cu.load(Relaxed).saturating_sub(self.cu_ok) as f64 / secs
    }

    pub fn take(c: &RuntimeCounters) -> Self {
        let mut latency = vec![0; LatencyHistogram::BUCKETS];
        c.exec_latency.snapshot_into(&mut latency);
        Self {
            at: Instant::now(),
            cu_ok: c.reward_cu.load(Relaxed),
            executed_ok: c.executed_ok.load(Relaxed),
            received: c.received.load(Relaxed),
            conflicts: c.apps.slots.iter().map(|s| s.conflicts.load(Relaxed)).sum(),
            cu_deferred: c
                .apps
                .slots
                .iter()
                .map(|s| s.cu_deferred.load(Relaxed))
                .sum(),
            reexecutions: c.reexecutions.load(Relaxed),
            optimistic_batches: c.optimistic_batches.load(Relaxed),
            latency,
        }
    }
}

/// What one window measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    pub seconds: f64,
    /// Successful compute units per second.
    pub cu_per_s: f64,
    /// ...less the latency penalty: what the tuner maximises.
    pub reward: f64,
    /// Received to executed, microseconds.
    pub p99_us: u64,
    pub received_per_s: f64,
    pub cluster: usize,
    /// The queue held work for every worker at most slot closes: a better setting could have
    /// executed more. Otherwise throughput is the offered load and the window teaches nothing.
    pub saturated: bool,
    pub islands: usize,
    pub conflict_share: f64,
    /// Picks a compute-unit cap held back to a later slot.
    pub cu_deferred: u64,
}

pub struct Params {
    pub slot_us: f64,
    /// Fraction of the reward lost per slot of p99 above one slot (up to all of it).
    pub latency_penalty: f64,
}

pub fn measure(
    before: &Snapshot,
    after: &Snapshot,
    c: &RuntimeCounters,
    saturated: bool,
    p: &Params,
) -> Measured {
    let seconds = after.at.duration_since(before.at).as_secs_f64().max(1e-6);
    let d = |a: u64, b: u64| a.saturating_sub(b) as f64;
    let cu_ok = d(after.cu_ok, before.cu_ok);
    let ok = d(after.executed_ok, before.executed_ok);
    let cu_per_s = cu_ok / seconds;
    let p99_us = LatencyHistogram::quantile_between(&before.latency, &after.latency, 0.99);
    let over = (p99_us as f64 / p.slot_us - 1.0).clamp(0.0, 1.0);
    let reward = cu_per_s * (1.0 - p.latency_penalty * over);
    let islands = c
        .islands
        .slots
        .iter()
        .filter(|s| s.active.load(Relaxed) != 0)
        .count();
    let conflict_share = d(after.conflicts, before.conflicts) / ok.max(1.0);
    let reexec_share = d(after.reexecutions, before.reexecutions)
        / d(after.optimistic_batches, before.optimistic_batches).max(1.0);
    let mut cluster = 0;
    if ok > 0.0 && cu_ok / ok >= BPF_CU_PER_TX {
        cluster |= CLUSTER_BPF;
    }
    if conflict_share >= CONTENDED_CONFLICT_SHARE || islands > 0 || reexec_share >= 0.01 {
        cluster |= CLUSTER_CONTENDED;
    }
    Measured {
        seconds,
        cu_per_s,
        reward,
        p99_us,
        received_per_s: d(after.received, before.received) / seconds,
        cluster,
        saturated,
        islands,
        conflict_share,
        cu_deferred: after.cu_deferred.saturating_sub(before.cu_deferred),
    }
}
