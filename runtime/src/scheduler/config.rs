//! The `[scheduler]` section: which scheduler runs, what makes an app, and how the hotspot
//! scheduler is tuned. Declared once, here: the TOML file is read into this type, and the
//! schedulers are built from it.

use super::apps::{AppClassifier, AppGrouping, AppRule};
use super::budget::CuLimits;
use super::hotspot::Concurrency;
use super::{HotspotScheduler, LockScheduler, Scheduler};
use crate::metrics::RuntimeCounters;
use crate::sequencer::Eviction;
use crate::sequencing::{PriorityRule, SequencingConfig};
use serde::{Deserialize, Serialize};
use solana_pubkey::Pubkey;
use std::collections::BTreeMap;
use telemetry::config::{InvalidConfig, ensure};

/// Which scheduler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerChoice {
    /// Apps isolated from each other under load.
    #[default]
    Hotspot,
    /// One global priority order, kept for comparison.
    Lock,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    pub kind: SchedulerChoice,
    /// What makes an app, and the rules that carve finer ones.
    pub app_grouping: AppGrouping,
    pub apps: Vec<AppRule>,
    /// Fair-queuing weight per app key (default 1).
    #[serde(with = "telemetry::config::text_keys")]
    pub app_weights: BTreeMap<Pubkey, u32>,
    /// CU caps per slot; 0 = Solana's scaled to the slot length (app: half the block).
    pub block_cu_limit: u64,
    pub account_cu_limit: u64,
    pub app_cu_limit: u64,
    /// An account becomes an island at this fraction of the account cap in demanded write CU
    /// per slot, and dissolves after `island_cool_slots` slots below `island_exit`.
    pub island_enter: f64,
    pub island_exit: f64,
    pub island_cool_slots: u32,
    /// ...and only with at least this many writing transactions per slot.
    pub island_min_writers: u32,
    pub island_batch_max: usize,
    pub max_islands: usize,
    /// Weight of the newest slot in every EWMA.
    pub ewma_alpha: f64,
    pub concurrency: Concurrency,
    /// Hybrid: an app goes optimistic when its declared-lock conflict rate reaches this...
    pub optimistic_enter: f64,
    /// ...and back to pessimistic when its re-execution rate reaches this.
    pub optimistic_exit: f64,
    /// Slots an app waits after leaving optimistic mode before it may try again (doubles on
    /// every failed try, up to 64×).
    pub optimistic_backoff_slots: u64,
    /// What orders the queue: fee per requested compute unit, or per unit of what the
    /// transaction will really use (see `runtime::sequencing`).
    pub priority: PriorityRule,
    /// Performance rule: slots a transaction paying at least the inclusion threshold may wait
    /// before it moves to the head of its lane (0: never).
    pub max_wait_slots: u64,
    /// Performance rule: weight of the contention a transaction adds on hot accounts.
    pub contention_weight: f64,
    /// Performance rule: what one cold account read (a device read at admission) costs, in
    /// compute units. 2,400: a ~80 µs NVMe read at Agave's 30 CU per µs.
    pub cold_read_cu: u64,
    /// Workers island lanes prefer, best first. Not configured: placement computes it from
    /// the machine (workers sharing a cache with storage I/O). Empty: islands spread over the
    /// workers from the last one down.
    #[serde(skip)]
    pub island_workers: Vec<usize>,
    /// The lock scheduler only: keep the block and per-writable-account compute-unit caps
    /// per slot (`block_cu_limit`, `account_cu_limit`), as Agave's cost tracker does. Off
    /// (the default): the plain baseline, uncapped. Not read from the TOML file: a baseline
    /// the benches configure.
    #[serde(skip)]
    pub lock_cu_caps: bool,
    /// The lock scheduler only: transactions one scheduling pass looks at; 0: four batches
    /// per worker (`4 × batch_max × workers`). Not read from the TOML file.
    #[serde(skip)]
    pub lock_lookahead: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            kind: SchedulerChoice::Hotspot,
            app_grouping: AppGrouping::TopLevelProgram,
            apps: Vec::new(),
            app_weights: BTreeMap::new(),
            block_cu_limit: 0,
            account_cu_limit: 0,
            app_cu_limit: 0,
            island_enter: 0.25,
            island_exit: 0.10,
            island_cool_slots: 20,
            island_min_writers: 8,
            island_batch_max: 64,
            max_islands: 64,
            ewma_alpha: 0.2,
            concurrency: Concurrency::Hybrid,
            optimistic_enter: 0.3,
            optimistic_exit: 0.25,
            optimistic_backoff_slots: 50,
            priority: PriorityRule::Performance,
            max_wait_slots: 4,
            contention_weight: 1.0,
            cold_read_cu: 2_400,
            island_workers: Vec::new(),
            lock_cu_caps: false,
            lock_lookahead: 0,
        }
    }
}

impl SchedulerConfig {
    /// The plain lock scheduler.
    pub fn lock() -> Self {
        Self {
            kind: SchedulerChoice::Lock,
            ..Self::default()
        }
    }

    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let fraction = |v: f64| (0.0..=1.0).contains(&v);
        ensure(
            fraction(self.island_enter)
                && fraction(self.island_exit)
                && self.island_exit <= self.island_enter,
            || "scheduler.island_exit must be at most island_enter, both within 0..=1".into(),
        )?;
        ensure(self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0, || {
            "scheduler.ewma_alpha must be within (0, 1]".into()
        })?;
        ensure(
            fraction(self.optimistic_enter) && fraction(self.optimistic_exit),
            || "scheduler.optimistic_enter and optimistic_exit must be within 0..=1".into(),
        )?;
        ensure(self.island_batch_max >= 1, || {
            "scheduler.island_batch_max must be at least 1".into()
        })?;
        ensure(
            self.contention_weight.is_finite() && (0.0..=100.0).contains(&self.contention_weight),
            || "scheduler.contention_weight must be within 0..=100".into(),
        )?;
        ensure(self.cold_read_cu <= 1_400_000, || {
            "scheduler.cold_read_cu must be at most 1,400,000 (a transaction's CU limit)".into()
        })
    }

    /// How the bank prices what it queues.
    pub fn sequencing(&self) -> SequencingConfig {
        SequencingConfig {
            rule: self.priority,
            max_wait_slots: self.max_wait_slots,
            contention_weight: self.contention_weight,
            cold_read_cu: self.cold_read_cu,
        }
    }

    /// What makes an app (for the scheduler and the per-app metrics).
    pub fn classifier(&self) -> AppClassifier {
        AppClassifier {
            grouping: self.app_grouping,
            rules: self.apps.clone(),
        }
    }

    pub fn build(
        &self,
        workers: usize,
        batch_max: usize,
        slot_ms: u64,
        counters: &'static RuntimeCounters,
    ) -> Box<dyn Scheduler> {
        match self.kind {
            SchedulerChoice::Lock => {
                let mut s = LockScheduler::new(workers, batch_max);
                if self.lock_lookahead > 0 {
                    s = s.with_lookahead(self.lock_lookahead);
                }
                if self.lock_cu_caps {
                    s = s.with_cu_caps(CuLimits::scaled(
                        slot_ms,
                        self.block_cu_limit,
                        self.account_cu_limit,
                        self.app_cu_limit,
                    ));
                }
                Box::new(s)
            }
            SchedulerChoice::Hotspot => Box::new(
                HotspotScheduler::new(self.clone(), workers, batch_max, slot_ms)
                    .with_counters(counters),
            ),
        }
    }

    /// How a full sequencer picks what to drop.
    pub fn eviction(&self) -> Eviction {
        match self.kind {
            SchedulerChoice::Lock => Eviction::Global,
            SchedulerChoice::Hotspot => Eviction::LongestLane,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_base58_text_and_bad_keys_are_errors() {
        let key = Pubkey::new_unique();
        let text = format!(
            "kind = \"lock\"\napp_grouping = \"fee_payer\"\nconcurrency = \"optimistic\"\n\
             apps = [{{ program = \"{key}\", account = \"{key}\" }}]\n\
             [app_weights]\n\"{key}\" = 3\n"
        );
        let c: SchedulerConfig = toml::from_str(&text).unwrap();
        assert_eq!(c.kind, SchedulerChoice::Lock);
        assert_eq!(c.app_grouping, AppGrouping::FeePayer);
        assert_eq!(c.concurrency, Concurrency::Optimistic);
        assert_eq!(c.app_weights[&key], 3);
        assert_eq!(c.apps[0].account, key);
        let bad = toml::from_str::<SchedulerConfig>("[app_weights]\nnotakey = 1\n");
        assert!(bad.unwrap_err().to_string().contains("notakey"));
        assert!(toml::from_str::<SchedulerConfig>("island_workers = [1]").is_err());
    }
}
