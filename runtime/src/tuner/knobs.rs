//! The knobs the tuner may turn while the appliance runs, and their lattices.
//!
//! A knob is live when the bank can change it at a slot close (every worker idle, the slot's
//! compute-unit budget just reset) with no lock and no message: the bank owns the scheduler and
//! the admission loop. Thread counts, pinning, queue capacities and the slot length are fixed at
//! start and out of the tuner's reach ([`RESTART_ONLY`]).
//!
//! Each knob's lattice is a few multiples of its configured value, so the configured value is
//! always a level (the default) and an operator's own setting is where learning starts.

use serde::{Deserialize, Serialize};

/// The live knobs' values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Knobs {
    /// Verified packets admitted per bank turn before it looks at completions again.
    pub admit_burst: usize,
    /// Transactions per worker batch.
    pub batch_max: usize,
    /// Multiplier of the block, account and app compute-unit caps per slot.
    pub cu_scale: f64,
    /// An account becomes an island at this fraction of the account cap (the exit threshold
    /// keeps its configured ratio to it).
    pub island_enter: f64,
    pub island_min_writers: u32,
    /// An app goes optimistic at this declared-lock conflict rate...
    pub optimistic_enter: f64,
    /// ...and back at this re-execution rate...
    pub optimistic_exit: f64,
    /// ...then waits this many slots before it may try again.
    pub optimistic_backoff_slots: u64,
}

impl Knobs {
    /// The configured values: `runtime.batch_max`, the `[scheduler]` section, and the admission
    /// burst's built-in 64 (`runtime.admit_burst`).
    pub fn configured(
        runtime: &crate::RuntimeConfig,
        scheduler: &crate::scheduler::SchedulerConfig,
    ) -> Self {
        Self {
            admit_burst: runtime.admit_burst.max(1),
            batch_max: runtime.batch_max.max(1),
            cu_scale: 1.0,
            island_enter: scheduler.island_enter,
            island_min_writers: scheduler.island_min_writers,
            optimistic_enter: scheduler.optimistic_enter,
            optimistic_exit: scheduler.optimistic_exit,
            optimistic_backoff_slots: scheduler.optimistic_backoff_slots.max(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    AdmitBurst,
    BatchMax,
    CuScale,
    IslandEnter,
    IslandMinWriters,
    OptimisticEnter,
    OptimisticExit,
    OptimisticBackoffSlots,
}

/// Settings that change only with a restart, and why, for the error an operator gets when
/// naming one in `tuner.knobs`.
pub const RESTART_ONLY: &[(&str, &str)] = &[
    (
        "workers",
        "runtime.workers: worker threads are spawned at start",
    ),
    (
        "worker_cores",
        "runtime.worker_cores: threads are pinned at start",
    ),
    (
        "verify_tiles",
        "verify.tiles: verify threads are spawned at start",
    ),
    (
        "slot_ms",
        "runtime.slot_ms: the slot clock and every window are in slots",
    ),
    (
        "commit_queue_slots",
        "runtime.commit_queue_slots: the commit link's capacity is fixed when it is created",
    ),
    (
        "sequencer_capacity",
        "runtime.sequencer_capacity: the queue's memory bound is fixed at start",
    ),
    (
        "max_islands",
        "scheduler.max_islands: the metrics table is sized at start",
    ),
];

impl Knob {
    pub const ALL: [Knob; 8] = [
        Knob::AdmitBurst,
        Knob::BatchMax,
        Knob::CuScale,
        Knob::IslandEnter,
        Knob::IslandMinWriters,
        Knob::OptimisticEnter,
        Knob::OptimisticExit,
        Knob::OptimisticBackoffSlots,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Knob::AdmitBurst => "admit_burst",
            Knob::BatchMax => "batch_max",
            Knob::CuScale => "cu_scale",
            Knob::IslandEnter => "island_enter",
            Knob::IslandMinWriters => "island_min_writers",
            Knob::OptimisticEnter => "optimistic_enter",
            Knob::OptimisticExit => "optimistic_exit",
            Knob::OptimisticBackoffSlots => "optimistic_backoff_slots",
        }
    }

    pub fn from_name(name: &str) -> Option<Knob> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The lattice as multiples of the configured value, and the configured value's index.
    /// `cu_scale` is itself a multiplier (configured: 1).
    fn factors(self) -> (&'static [f64], usize) {
        match self {
            Knob::AdmitBurst => (&[0.25, 1.0, 4.0, 16.0], 1),
            Knob::BatchMax => (&[0.25, 0.5, 1.0, 2.0, 4.0], 2),
            // Above 1 only where `tuner.cu_scale_max` allows: the caps bound a slot's work and
            // isolate apps and accounts; raising them is the operator's call.
            Knob::CuScale => (&[0.25, 0.5, 0.75, 1.0, 1.5, 2.0], 3),
            Knob::IslandEnter => (&[0.4, 1.0, 2.0], 1),
            Knob::IslandMinWriters => (&[0.25, 1.0, 4.0], 1),
            Knob::OptimisticEnter => (&[1.0 / 3.0, 1.0, 2.0], 1),
            Knob::OptimisticExit => (&[0.4, 1.0, 2.0], 1),
            Knob::OptimisticBackoffSlots => (&[0.25, 1.0, 4.0], 1),
        }
    }

    /// The knob's levels around the configured value, and the configured value's index.
    pub fn lattice(self, configured: &Knobs) -> (Vec<f64>, u8) {
        let (factors, default) = self.factors();
        let base = self.get(configured);
        let levels = factors.iter().map(|f| self.round(base * f)).collect();
        (levels, default as u8)
    }

    /// A value as the knob can hold it (integers at least 1, rates within (0, 1]).
    fn round(self, v: f64) -> f64 {
        match self {
            // Within what `runtime.validate` accepts for the configured value.
            Knob::AdmitBurst | Knob::BatchMax => v.round().clamp(1.0, 65_536.0),
            Knob::IslandMinWriters => v.round().clamp(1.0, f64::from(u32::MAX)),
            Knob::OptimisticBackoffSlots => v.round().clamp(1.0, 1e12),
            Knob::IslandEnter | Knob::OptimisticEnter | Knob::OptimisticExit => v.clamp(0.001, 1.0),
            Knob::CuScale => v.max(0.01),
        }
    }

    pub fn get(self, k: &Knobs) -> f64 {
        match self {
            Knob::AdmitBurst => k.admit_burst as f64,
            Knob::BatchMax => k.batch_max as f64,
            Knob::CuScale => k.cu_scale,
            Knob::IslandEnter => k.island_enter,
            Knob::IslandMinWriters => f64::from(k.island_min_writers),
            Knob::OptimisticEnter => k.optimistic_enter,
            Knob::OptimisticExit => k.optimistic_exit,
            Knob::OptimisticBackoffSlots => k.optimistic_backoff_slots as f64,
        }
    }

    pub fn set(self, k: &mut Knobs, v: f64) {
        let v = self.round(v);
        match self {
            Knob::AdmitBurst => k.admit_burst = v as usize,
            Knob::BatchMax => k.batch_max = v as usize,
            Knob::CuScale => k.cu_scale = v,
            Knob::IslandEnter => k.island_enter = v,
            Knob::IslandMinWriters => k.island_min_writers = v as u32,
            Knob::OptimisticEnter => k.optimistic_enter = v,
            Knob::OptimisticExit => k.optimistic_exit = v,
            Knob::OptimisticBackoffSlots => k.optimistic_backoff_slots = v as u64,
        }
    }

    /// Slots after a change before a window measures it: the batch and cap knobs act on the
    /// next scheduling pass; the island and optimistic knobs through the scheduler's
    /// per-slot moving averages (α = 0.2: ~90% after 10 slots).
    pub fn settle_slots(self) -> u64 {
        match self {
            Knob::AdmitBurst | Knob::BatchMax | Knob::CuScale => 1,
            _ => 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_value_is_the_default_level_of_every_lattice() {
        let configured = Knobs::configured(&Default::default(), &Default::default());
        for k in Knob::ALL {
            let (levels, d) = k.lattice(&configured);
            assert_eq!(levels[d as usize], k.get(&configured), "{}", k.name());
            assert!(levels.windows(2).all(|w| w[0] <= w[1]), "{}", k.name());
            let mut set = configured;
            k.set(&mut set, levels[0]);
            assert_eq!(k.get(&set), levels[0]);
            assert_eq!(Knob::from_name(k.name()), Some(k));
        }
        assert_eq!(
            Knob::AdmitBurst.lattice(&configured).0,
            [16.0, 64.0, 256.0, 1024.0]
        );
        assert_eq!(
            Knob::BatchMax.lattice(&configured).0,
            [16.0, 32.0, 64.0, 128.0, 256.0]
        );
    }
}
