//! The `[storage]` section, declared once: the TOML file is read into [`StorageConfig`], and
//! [`StorageConfig::open`] opens the engine it names. [`ArrayConfig`] and [`LogStoreConfig`]
//! are what the engines open from: this section plus the knobs that are not the operator's
//! (buffer counts, fault injection) and what other sections decide (metadata retention).

use crate::StoreError;
use crate::array::publish::StorageCounters;
use crate::commitment::CommitmentConfig;
use crate::{AccountsStore, ArrayConfig, ArrayStore, DeviceSpec, LogStore, LogStoreConfig};
use serde::{Deserialize, Serialize};
use solana_pubkey::Pubkey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use telemetry::config::{InvalidConfig, ensure};

/// Devices an array may have.
pub const MAX_DEVICES: usize = 32;
/// A segment holds at least one largest (10 MiB) account record.
const MIN_SEGMENT_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageEngine {
    /// Block-aligned records over a device array, an in-memory index, a sequencer-driven cache.
    Array,
    /// An append-only log with the whole state in memory.
    Log,
}

impl std::str::FromStr for StorageEngine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "array" => Ok(Self::Array),
            "log" => Ok(Self::Log),
            _ => Err(format!("unknown storage engine {s:?} (array or log)")),
        }
    }
}

impl std::fmt::Display for StorageEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Array => "array",
            Self::Log => "log",
        })
    }
}

/// Operator placement: `program`'s accounts go to these devices only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedApp {
    #[serde(with = "telemetry::config::text")]
    pub program: Pubkey,
    pub devices: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub engine: StorageEngine,
    /// Regular files or whole block devices, in array order. Empty: one file in the data dir.
    pub devices: Vec<PathBuf>,
    /// Size of each device file the appliance creates.
    pub device_bytes: u64,
    pub block_size: usize,
    pub segment_bytes: u64,
    pub cache_bytes: usize,
    pub io_uring: bool,
    pub ring_entries: u32,
    /// 0 = no kernel-side submission polling.
    pub sqpoll_idle_ms: u32,
    pub direct_io: bool,
    /// Compact when the space used exceeds this multiple of the live data (both engines).
    pub max_space_amplification: f64,
    pub hot_app_share: f64,
    pub io_cores: Vec<usize>,
    pub pinned_apps: Vec<PinnedApp>,
    /// Slots whose commitment is served, and memory for older-slot proofs.
    pub proof_window_slots: usize,
    pub proof_history_mib: usize,
    /// Log engine: never compact a log smaller than this.
    pub log_compaction_min_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            engine: StorageEngine::Array,
            devices: Vec::new(),
            device_bytes: 1 << 30,
            block_size: 4096,
            segment_bytes: 32 << 20,
            cache_bytes: 256 << 20,
            io_uring: true,
            ring_entries: 256,
            sqpoll_idle_ms: 0,
            direct_io: true,
            max_space_amplification: 2.0,
            hot_app_share: 0.5,
            io_cores: Vec::new(),
            pinned_apps: Vec::new(),
            proof_window_slots: 1024,
            proof_history_mib: 1024,
            log_compaction_min_bytes: 64 << 20,
        }
    }
}

impl StorageConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        ensure(self.max_space_amplification > 1.0, || {
            "storage.max_space_amplification must exceed 1.0".into()
        })?;
        ensure(self.block_size == 512 || self.block_size == 4096, || {
            "storage.block_size must be 512 or 4096".into()
        })?;
        ensure(
            self.segment_bytes >= MIN_SEGMENT_BYTES
                && self.segment_bytes.is_multiple_of(self.block_size as u64),
            || {
                "storage.segment_bytes must be at least 16 MiB (a 10 MiB account fits) and a multiple of block_size".into()
            },
        )?;
        ensure(self.device_bytes >= 4 * self.segment_bytes, || {
            "storage.device_bytes must hold at least four segments".into()
        })?;
        ensure(
            (2..=32768).contains(&self.ring_entries) && self.ring_entries.is_power_of_two(),
            || "storage.ring_entries must be a power of two, 2..=32768".into(),
        )?;
        ensure(self.devices.len() <= MAX_DEVICES, || {
            format!("storage.devices: at most {MAX_DEVICES} devices")
        })?;
        ensure((1..=1 << 20).contains(&self.proof_window_slots), || {
            "storage.proof_window_slots must be 1..=1048576".into()
        })?;
        ensure((0.0..=1.0).contains(&self.hot_app_share), || {
            "storage.hot_app_share must be within 0..=1".into()
        })?;
        let devices = self.devices.len().max(1);
        for p in &self.pinned_apps {
            ensure(
                !p.devices.is_empty() && p.devices.iter().all(|&d| d < devices),
                || {
                    format!(
                        "storage.pinned_apps: devices of {} must be indexes into storage.devices",
                        p.program
                    )
                },
            )?;
        }
        Ok(())
    }

    /// The devices as configured: the listed ones, or one file in `data_dir`.
    pub fn device_paths(&self, data_dir: &Path) -> Vec<PathBuf> {
        if self.devices.is_empty() {
            vec![data_dir.join("accounts-0.dev")]
        } else {
            self.devices.clone()
        }
    }

    /// What the array engine opens from. `meta_retention_slots`: slot metadata the runtime
    /// needs kept (the commitment window is kept in any case); `publish`: the metrics
    /// region's storage block the store copies its counters into.
    pub fn array_config(
        &self,
        data_dir: &Path,
        meta_retention_slots: usize,
        publish: Option<&'static StorageCounters>,
    ) -> ArrayConfig {
        ArrayConfig {
            devices: self
                .device_paths(data_dir)
                .into_iter()
                .map(|path| DeviceSpec {
                    path,
                    create_bytes: self.device_bytes,
                })
                .collect(),
            block_size: self.block_size,
            segment_bytes: self.segment_bytes,
            cache_bytes: self.cache_bytes,
            ring_entries: self.ring_entries,
            sqpoll_idle_ms: (self.sqpoll_idle_ms > 0).then_some(self.sqpoll_idle_ms),
            io_uring: self.io_uring,
            direct_io: self.direct_io,
            max_space_amplification: self.max_space_amplification,
            meta_retention_slots: meta_retention_slots.max(self.proof_window_slots),
            commitment: CommitmentConfig {
                window_slots: self.proof_window_slots,
                history_bytes: self.proof_history_mib << 20,
            },
            hot_app_share: self.hot_app_share,
            io_cores: self.io_cores.clone(),
            pinned_apps: self
                .pinned_apps
                .iter()
                .map(|p| (p.program, p.devices.clone()))
                .collect(),
            publish,
            ..ArrayConfig::default()
        }
    }

    /// Open the configured engine over `data_dir` (see [`Self::array_config`]).
    pub fn open(
        &self,
        data_dir: &Path,
        meta_retention_slots: usize,
        publish: Option<&'static StorageCounters>,
    ) -> Result<Arc<dyn AccountsStore>, StoreError> {
        Ok(match self.engine {
            StorageEngine::Array => Arc::new(ArrayStore::open(self.array_config(
                data_dir,
                meta_retention_slots,
                publish,
            ))?),
            StorageEngine::Log => Arc::new(LogStore::open(
                data_dir,
                LogStoreConfig {
                    compaction_ratio: self.max_space_amplification,
                    compaction_min_bytes: self.log_compaction_min_bytes,
                    meta_retention_slots,
                },
            )?),
        })
    }
}
