//! The `[tuner]` section: whether the runtime tunes its own knobs, which ones, within what
//! limits, and how carefully.

use super::knobs::{Knob, RESTART_ONLY};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use telemetry::config::{InvalidConfig, ensure};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunerMode {
    /// No tuner: the knobs keep their configured values; nothing is read or written.
    #[default]
    Off,
    /// Learn and apply, within the guardrails.
    Learn,
    /// Load the saved policy, apply its setting once at start (`apply_persisted`), report,
    /// and change nothing after.
    Frozen,
}

impl TunerMode {
    pub fn name(self) -> &'static str {
        match self {
            TunerMode::Off => "off",
            TunerMode::Learn => "learn",
            TunerMode::Frozen => "frozen",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TunerConfig {
    pub mode: TunerMode,
    /// The knobs it may turn (the others stay at their configured values).
    pub knobs: Vec<String>,
    /// Slots per measurement window.
    pub window_slots: u64,
    /// Revert to the configured values when a window under another setting earns less than
    /// (1 − margin) × what the configured values are expected to earn.
    pub revert_margin: f64,
    /// A window's reward loses up to this fraction of itself as its p99 latency goes from one
    /// slot to two (all of the fraction from two slots on).
    pub latency_penalty: f64,
    /// Revert at once when a window's p99 exceeds this many slots (and twice the configured
    /// values' p99 in the same workload).
    pub latency_revert_slots: f64,
    /// Per-window discount of what was learnt (0.97: ~33 windows of memory).
    pub discount: f64,
    /// At most this share of recent windows tries a setting other than the best known.
    pub max_explore_share: f64,
    /// Windows at the configured values after a revert.
    pub hold_windows: u32,
    /// Windows at the configured values when a workload is first seen, to learn its baseline.
    pub anchor_windows: u32,
    /// Every this many windows of a workload, one back at the configured values.
    pub reanchor_windows: u32,
    /// Save the policy every this many windows (and at stop).
    pub persist_every_windows: u64,
    /// At start, apply the saved policy's setting (`false`: start from the configured values).
    pub apply_persisted: bool,
    /// Random seed of the exploration (0: from the clock).
    pub seed: u64,
    /// Per knob, the [min, max] values it may take (within its lattice; each must include the
    /// configured value, where a revert goes).
    pub limits: BTreeMap<String, [f64; 2]>,
    /// The most `cu_scale` may scale the configured compute-unit caps by (1: the tuner may
    /// only tighten them; up to 2 lets it raise them).
    pub cu_scale_max: f64,
}

impl Default for TunerConfig {
    fn default() -> Self {
        Self {
            mode: TunerMode::Off,
            knobs: Knob::ALL.iter().map(|k| k.name().to_string()).collect(),
            window_slots: 20,
            revert_margin: 0.05,
            latency_penalty: 0.5,
            latency_revert_slots: 4.0,
            discount: 0.97,
            max_explore_share: 0.3,
            hold_windows: 4,
            anchor_windows: 2,
            reanchor_windows: 30,
            persist_every_windows: 10,
            apply_persisted: true,
            seed: 0,
            limits: BTreeMap::new(),
            cu_scale_max: 1.0,
        }
    }
}

impl TunerConfig {
    /// The knobs named in `knobs`, in lattice order.
    pub fn enabled(&self) -> Vec<Knob> {
        Knob::ALL
            .into_iter()
            .filter(|k| self.knobs.iter().any(|n| n == k.name()))
            .collect()
    }

    /// Each limit must let the knob keep its configured value (the revert target), or the
    /// allowed levels would not be one range.
    pub fn check_limits(&self, configured: &super::Knobs) -> Result<(), InvalidConfig> {
        for (name, [lo, hi]) in &self.limits {
            if let Some(k) = Knob::from_name(name) {
                let v = k.get(configured);
                ensure(*lo <= v && v <= *hi, || {
                    format!(
                        "tuner.limits.{name} = [{lo}, {hi}] leaves out its configured value {v} \
                         (where the tuner reverts to)"
                    )
                })?;
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), InvalidConfig> {
        for name in self.knobs.iter().chain(self.limits.keys()) {
            if Knob::from_name(name).is_some() {
                continue;
            }
            if let Some((_, why)) = RESTART_ONLY.iter().find(|(n, _)| n == name) {
                return Err(InvalidConfig(format!(
                    "tuner.knobs: {name} needs a restart ({why}): out of the tuner's reach"
                )));
            }
            let known: Vec<&str> = Knob::ALL.iter().map(|k| k.name()).collect();
            return Err(InvalidConfig(format!(
                "tuner: unknown knob {name:?} (known: {})",
                known.join(", ")
            )));
        }
        for (name, [lo, hi]) in &self.limits {
            ensure(lo.is_finite() && hi.is_finite() && lo <= hi, || {
                format!("tuner.limits.{name} must be [min, max] with min <= max")
            })?;
        }
        ensure((0.25..=2.0).contains(&self.cu_scale_max), || {
            "tuner.cu_scale_max must be in [0.25, 2]".into()
        })?;
        ensure(self.window_slots >= 4, || {
            "tuner.window_slots must be at least 4".into()
        })?;
        ensure(
            self.revert_margin > 0.0 && self.revert_margin <= 0.5,
            || "tuner.revert_margin must be in (0, 0.5]".into(),
        )?;
        ensure((0.0..=1.0).contains(&self.latency_penalty), || {
            "tuner.latency_penalty must be in [0, 1]".into()
        })?;
        ensure(self.latency_revert_slots >= 1.0, || {
            "tuner.latency_revert_slots must be at least 1".into()
        })?;
        ensure(self.discount > 0.5 && self.discount <= 1.0, || {
            "tuner.discount must be in (0.5, 1]".into()
        })?;
        ensure((0.0..=1.0).contains(&self.max_explore_share), || {
            "tuner.max_explore_share must be in [0, 1]".into()
        })?;
        ensure(self.persist_every_windows >= 1, || {
            "tuner.persist_every_windows must be at least 1".into()
        })?;
        ensure(self.reanchor_windows >= 2, || {
            "tuner.reanchor_windows must be at least 2".into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_only_knob_is_refused_with_the_reason() {
        let c = TunerConfig {
            knobs: vec!["batch_max".into(), "workers".into()],
            ..Default::default()
        };
        let e = c.validate().unwrap_err().0;
        assert!(e.contains("workers needs a restart"), "{e}");
        let c = TunerConfig {
            knobs: vec!["bogus".into()],
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().0.contains("unknown knob"));
        assert!(TunerConfig::default().validate().is_ok());
        assert_eq!(TunerConfig::default().enabled().len(), 8);
    }
}
