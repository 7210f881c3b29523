//! Opens the accounts engine the configuration names.

use crate::config::{Config, StorageEngine};
use solana_pubkey::Pubkey;
use std::sync::Arc;
use storage::commitment::CommitmentConfig;
use storage::{AccountsStore, ArrayConfig, ArrayStore, DeviceSpec, LogStore, LogStoreConfig};

/// The device array as configured: the listed devices, or one file in the data directory.
pub fn array_config(config: &Config) -> ArrayConfig {
    let st = &config.storage;
    let paths = if st.devices.is_empty() {
        vec![config.data_dir.join("accounts-0.dev")]
    } else {
        st.devices.clone()
    };
    ArrayConfig {
        devices: paths
            .into_iter()
            .map(|path| DeviceSpec {
                path,
                create_bytes: st.device_bytes,
            })
            .collect(),
        block_size: st.block_size,
        segment_bytes: st.segment_bytes,
        cache_bytes: st.cache_bytes,
        ring_entries: st.ring_entries,
        sqpoll_idle_ms: (st.sqpoll_idle_ms > 0).then_some(st.sqpoll_idle_ms),
        io_uring: st.io_uring,
        direct_io: st.direct_io,
        max_space_amplification: st.max_space_amplification,
        meta_retention_slots: config
            .runtime
            .status_retention_slots
            .max(st.proof_window_slots),
        commitment: CommitmentConfig {
            window_slots: st.proof_window_slots,
            history_bytes: st.proof_history_mib << 20,
        },
        hot_app_share: st.hot_app_share,
        io_cores: st.io_cores.clone(),
        pinned_apps: st
            .pinned_apps
            .iter()
            .filter_map(|p| Some((p.program.parse::<Pubkey>().ok()?, p.devices.clone())))
            .collect(),
        ..ArrayConfig::default()
    }
}

pub fn open(config: &Config) -> anyhow::Result<Arc<dyn AccountsStore>> {
    Ok(match config.storage.engine {
        StorageEngine::Array => Arc::new(ArrayStore::open(array_config(config))?),
        StorageEngine::Log => Arc::new(LogStore::open(
            &config.data_dir,
            LogStoreConfig {
                compaction_ratio: config.storage.max_space_amplification,
                compaction_min_bytes: config.storage.log_compaction_min_bytes,
                meta_retention_slots: config.runtime.status_retention_slots,
            },
        )?),
    })
}
