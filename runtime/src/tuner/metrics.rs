//! What the tuner shows an operator while the node runs (shared metrics region): its state,
//! the workload it sees, every knob's value, default and reward estimates, and counts of its
//! windows, changes and reverts. The history of changes is in `DATA_DIR/tuner/changes.jsonl`.

use super::knobs::Knob;
use std::sync::atomic::{AtomicU64, Ordering};

/// An `f64` in an atomic word (its bits; zero bits are 0.0).
#[repr(C)]
#[derive(Default)]
pub struct F64Gauge(AtomicU64);

impl F64Gauge {
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// One estimate of a setting's reward, as a multiple of the configured values' expected
/// reward in the same workload: mean, standard deviation, windows of evidence (discounted).
#[repr(C)]
#[derive(Default)]
pub struct EstimateGauges {
    pub mean: F64Gauge,
    pub sd: F64Gauge,
    pub n: F64Gauge,
}

#[repr(C)]
#[derive(Default)]
pub struct KnobGauges {
    /// The value applied now, and the configured one.
    pub value: F64Gauge,
    pub default: F64Gauge,
    /// 1 when the tuner may turn it.
    pub enabled: AtomicU64,
    /// The setting applied now, and the settings one level below and above on this knob
    /// (n = 0: never measured, or outside the limits).
    pub current: EstimateGauges,
    pub lower: EstimateGauges,
    pub higher: EstimateGauges,
}

/// `TunerCounters::state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum TunerState {
    Off = 0,
    Frozen = 1,
    Learning = 2,
    /// At the configured values for a few windows after a revert.
    Holding = 3,
}

impl TunerState {
    pub const NAMES: [&'static str; 4] = ["off", "frozen", "learning", "holding"];
}

telemetry::declare_counters! {
    #[repr(C)]
    pub struct TunerCounters {
        /// The tuner's state: 0 off, 1 frozen, 2 learning, 3 holding the configured values
        /// after a revert.
        state: Gauge(Count) "tuner_state",
        /// The workload the last window saw (bit 0: BPF-heavy, bit 1: contended).
        cluster: Gauge(Count) "tuner_cluster",
        /// Windows that tried a setting other than the best known.
        windows_explore: Counter(Count) "tuner_windows" [kind = "explore"],
        /// Windows at the best known setting.
        windows_exploit: Counter(Count) "tuner_windows" [kind = "exploit"],
        /// Windows held at the configured values after a revert.
        windows_hold: Counter(Count) "tuner_windows" [kind = "hold"],
        /// Windows that taught nothing (load below capacity): nothing explored or learnt.
        windows_idle: Counter(Count) "tuner_windows" [kind = "idle"],
        /// Windows at the configured values to learn or refresh a workload's baseline.
        windows_anchor: Counter(Count) "tuner_windows" [kind = "anchor"],
        /// Settings applied by the tuner.
        changes: Counter(Count) "tuner_changes",
        /// Reverts to the configured values: a window's reward fell more than
        /// tuner.revert_margin below the configured values' expected reward...
        reverts_reward: Counter(Count) "tuner_reverts" [reason = "reward"],
        /// ...or its p99 latency exceeded tuner.latency_revert_slots slots.
        reverts_latency: Counter(Count) "tuner_reverts" [reason = "latency"],
        /// Tried settings judged before their window's end, earning less than (1 − 2 ×
        /// tuner.revert_margin) of the configured values' expected reward.
        early_judgements: Counter(Count) "tuner_early_judgements",
        /// Policy files written (DATA_DIR/tuner/policy.json).
        policy_writes: Counter(Count) "tuner_policy_writes",
        /// Saved policies refused at start (corrupt, or for other knobs or defaults) and set
        /// aside as policy.json.rejected.
        policy_rejected: Counter(Count) "tuner_policy_rejected",
        /// Policy saves and change records dropped because the writer was behind, and
        /// writes that failed.
        io_dropped: Counter(Count) "tuner_io_dropped",
        /// Successful compute units per second in the last window, after the latency penalty.
        window_reward: Gauge(Count) "tuner_window_reward_cu_per_second",
        /// What the configured values are expected to earn in this workload.
        default_reward: Gauge(Count) "tuner_default_reward_cu_per_second",
        /// The last window's p99 latency, received to executed, microseconds.
        window_p99_us: Gauge(Count) "tuner_window_p99_microseconds",
        ;
        /// Per knob, in [`Knob::ALL`] order.
        pub knobs: [KnobGauges; 8],
    }
}

impl TunerCounters {
    pub fn knob(&self, k: Knob) -> &KnobGauges {
        &self.knobs[k as usize]
    }

    pub fn set_state(&self, s: TunerState) {
        self.state.store(s as u64, Ordering::Relaxed);
    }

    /// Every knob's value (whoever set it: the tuner, the configuration, an override).
    pub fn show_values(&self, k: &super::Knobs) {
        for knob in Knob::ALL {
            self.knob(knob).value.set(knob.get(k));
        }
    }
}
