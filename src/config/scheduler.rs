//! The `[scheduler]` section: which scheduler runs and how the hotspot scheduler is tuned.

use runtime::scheduler::apps::{AppClassifier, AppGrouping, AppRule};
use runtime::scheduler::hotspot::Concurrency;
use runtime::scheduler::{HotspotConfig, SchedulerKind};
use serde::{Deserialize, Serialize};
use solana_pubkey::Pubkey;
use std::collections::BTreeMap;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerChoice {
    Hotspot,
    Lock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    Program,
    FeePayer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConcurrencyChoice {
    Hybrid,
    Pessimistic,
    Optimistic,
}

/// Transactions of `program` that reference `account` form the app named `account`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRuleConfig {
    pub program: String,
    pub account: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    pub kind: SchedulerChoice,
    pub app_grouping: Grouping,
    pub apps: Vec<AppRuleConfig>,
    pub app_weights: BTreeMap<String, u32>,
    pub block_cu_limit: u64,
    pub account_cu_limit: u64,
    pub app_cu_limit: u64,
    pub island_enter: f64,
    pub island_exit: f64,
    pub island_cool_slots: u32,
    pub island_min_writers: u32,
    pub island_batch_max: usize,
    pub max_islands: usize,
    pub ewma_alpha: f64,
    pub concurrency: ConcurrencyChoice,
    pub optimistic_enter: f64,
    pub optimistic_exit: f64,
    pub optimistic_backoff_slots: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        let h = HotspotConfig::default();
        Self {
            kind: SchedulerChoice::Hotspot,
            app_grouping: Grouping::Program,
            apps: Vec::new(),
            app_weights: BTreeMap::new(),
            block_cu_limit: h.block_cu_limit,
            account_cu_limit: h.account_cu_limit,
            app_cu_limit: h.app_cu_limit,
            island_enter: h.island_enter,
            island_exit: h.island_exit,
            island_cool_slots: h.island_cool_slots,
            island_min_writers: h.island_min_writers,
            island_batch_max: h.island_batch_max,
            max_islands: h.max_islands,
            ewma_alpha: h.ewma_alpha,
            concurrency: ConcurrencyChoice::Hybrid,
            optimistic_enter: h.optimistic_enter,
            optimistic_exit: h.optimistic_exit,
            optimistic_backoff_slots: h.optimistic_backoff_slots,
        }
    }
}

impl SchedulerConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        for k in self.app_weights.keys() {
            pubkey("scheduler.app_weights", k)?;
        }
        for r in &self.apps {
            pubkey("scheduler.apps.program", &r.program)?;
            pubkey("scheduler.apps.account", &r.account)?;
        }
        let fraction = |v: f64| (0.0..=1.0).contains(&v);
        anyhow::ensure!(
            fraction(self.island_enter)
                && fraction(self.island_exit)
                && self.island_exit <= self.island_enter,
            "scheduler.island_exit must be at most island_enter, both within 0..=1"
        );
        anyhow::ensure!(
            self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0,
            "scheduler.ewma_alpha must be within (0, 1]"
        );
        anyhow::ensure!(
            fraction(self.optimistic_enter) && fraction(self.optimistic_exit),
            "scheduler.optimistic_enter and optimistic_exit must be within 0..=1"
        );
        anyhow::ensure!(
            self.island_batch_max >= 1,
            "scheduler.island_batch_max must be at least 1"
        );
        Ok(())
    }

    /// What makes an app.
    pub fn classifier(&self) -> AppClassifier {
        AppClassifier {
            grouping: match self.app_grouping {
                Grouping::Program => AppGrouping::TopLevelProgram,
                Grouping::FeePayer => AppGrouping::FeePayer,
            },
            rules: self
                .apps
                .iter()
                .filter_map(|r| {
                    Some(AppRule {
                        program: Pubkey::from_str(&r.program).ok()?,
                        account: Pubkey::from_str(&r.account).ok()?,
                    })
                })
                .collect(),
        }
    }

    /// The runtime's scheduler. `island_workers`: workers island lanes prefer (placement).
    pub fn kind(&self, island_workers: Vec<usize>) -> SchedulerKind {
        match self.kind {
            SchedulerChoice::Lock => SchedulerKind::Lock,
            SchedulerChoice::Hotspot => SchedulerKind::Hotspot(HotspotConfig {
                weights: self
                    .app_weights
                    .iter()
                    .filter_map(|(k, w)| Some((Pubkey::from_str(k).ok()?, *w)))
                    .collect(),
                block_cu_limit: self.block_cu_limit,
                account_cu_limit: self.account_cu_limit,
                app_cu_limit: self.app_cu_limit,
                island_enter: self.island_enter,
                island_exit: self.island_exit,
                island_cool_slots: self.island_cool_slots,
                island_min_writers: self.island_min_writers,
                island_batch_max: self.island_batch_max,
                max_islands: self.max_islands,
                ewma_alpha: self.ewma_alpha,
                concurrency: match self.concurrency {
                    ConcurrencyChoice::Hybrid => Concurrency::Hybrid,
                    ConcurrencyChoice::Pessimistic => Concurrency::Pessimistic,
                    ConcurrencyChoice::Optimistic => Concurrency::Optimistic,
                },
                optimistic_enter: self.optimistic_enter,
                optimistic_exit: self.optimistic_exit,
                optimistic_backoff_slots: self.optimistic_backoff_slots,
                island_workers,
            }),
        }
    }
}

fn pubkey(what: &str, s: &str) -> anyhow::Result<Pubkey> {
    Pubkey::from_str(s).map_err(|e| anyhow::anyhow!("{what}: {s:?} is not a pubkey: {e}"))
}
