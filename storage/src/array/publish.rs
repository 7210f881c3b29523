//! Storage publishes its own counters: [`StorageCounters`] is their form in the shared
//! metrics region (per device: its counters and its I/O tile's slot; the prefetch tile's slot;
//! the cache's and the store's counters), declared here with `telemetry::declare_counters!`.
//!
//! The store's writers keep their counters where they work (each device's, the cache's, the
//! store's own atomics); the prefetch tile copies them every [`PUBLISH_INTERVAL`] (and once at
//! stop) into the block the store was opened with (`ArrayConfig::publish`: the appliance
//! passes its metrics region's). A copy rather than the writers' home: the device and cache
//! counters are read on hot paths of their own, and a store opened without a region (tests,
//! benchmarks) keeps them just the same.

use super::Shared;
use super::index::Loc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use telemetry::{CounterSet, TileStats, ZeroValid};

pub use super::cache::CacheCounters;
pub use super::io_thread::DeviceCounters;

/// Devices with a slot in the region (every device an array may have).
pub const MAX_DEVICES: usize = Loc::MAX_DEVICES;

/// How often the prefetch tile copies the counters into the region.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

telemetry::declare_counters! {
    /// The store's own counters (not per device, not the cache's).
    #[repr(C, align(64))]
    #[derive(Default)]
    pub struct StoreCounters {
        /// Devices in the array.
        devices: Gauge(Count) "storage_devices",
        /// Gets by the runtime (the engine's own count).
        gets: Counter(Count) "storage_gets",
        /// Reads of one account that went to a device (sync misses and prefetches).
        cold_reads: Counter(Count) "storage_cold_reads",
        /// Read-ahead requests dropped because the prefetch queue was full.
        hints_dropped: Counter(Count) "storage_prefetch_hints_dropped",
        /// Account reads that failed (I/O error, checksum, decode): reported as errors.
        read_errors: Counter(Count) "storage_read_errors",
        /// Account reads retried because compaction moved the record while they were out.
        read_retries: Counter(Count) "storage_read_retries",
        /// Segments compacted.
        compactions: Counter(Count) "storage_compactions",
        /// Records rewritten by compaction.
        relocated: Counter(Count) "storage_compaction_relocated_records",
        /// Bytes of live account records on the devices.
        live_bytes: Gauge(Bytes) "storage_live",
        /// Bytes of the devices' segments in use (live and dead records).
        used_bytes: Gauge(Bytes) "storage_used",
        /// Accounts in the index.
        accounts: Gauge(Count) "storage_accounts",
        /// Bytes of account data resident in the cache.
        cache_bytes: Gauge(Bytes) "storage_cache_resident",
        /// Keys marked by queued transactions (kept cached until they leave the queue).
        marked_keys: Gauge(Count) "storage_cache_marked_keys",
    }
}

/// Storage's block of the metrics region.
#[repr(C)]
pub struct StorageCounters {
    pub store: StoreCounters,
    pub cache: CacheCounters,
    /// The `gc-prefetch` tile's slot.
    pub prefetch: TileStats,
    /// The `gc-compact` tile's slot.
    pub compact: TileStats,
    /// Device `i`'s counters and its `gc-io-i` tile's slot (the first `store.devices`).
    pub device: [DeviceCounters; MAX_DEVICES],
    pub io: [TileStats; MAX_DEVICES],
}

// SAFETY: atomics and structs of atomics only.
unsafe impl ZeroValid for StorageCounters {}

impl StorageCounters {
    /// Devices described (at most [`MAX_DEVICES`]).
    pub fn device_count(&self) -> usize {
        (self.store.devices.load(Ordering::Relaxed) as usize).min(MAX_DEVICES)
    }
}

/// Copies `s`'s counters into the region block it was opened with, if any.
pub(super) fn publish(s: &Shared, prefetch: &TileStats) {
    if let Some(home) = s.cfg.publish {
        publish_to(home, s, prefetch);
    }
}

fn publish_to(home: &StorageCounters, s: &Shared, prefetch: &TileStats) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let st = &home.store;
    let set = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
    set(&st.devices, s.devices.len().min(MAX_DEVICES) as u64);
    set(&st.gets, get(&s.gets));
    set(&st.cold_reads, get(&s.cold_reads));
    set(&st.hints_dropped, get(&s.hints_dropped));
    set(&st.read_errors, get(&s.read_errors));
    set(&st.read_retries, get(&s.read_retries));
    set(&st.compactions, get(&s.compactions));
    set(&st.relocated, get(&s.relocated));
    set(&st.live_bytes, get(&s.live_bytes));
    set(&st.used_bytes, get(&s.used_bytes));
    set(&st.accounts, s.index.len() as u64);
    set(&st.cache_bytes, s.cache.resident_bytes() as u64);
    set(&st.marked_keys, s.cache.marked_keys() as u64);
    home.cache.copy_from(&s.cache.counters);
    home.prefetch.copy_from(prefetch);
    home.compact.copy_from(&s.compact_tile);
    for (i, d) in s.devices.iter().take(MAX_DEVICES).enumerate() {
        home.device[i].copy_from(&d.counters);
        home.io[i].copy_from(&d.io.tile);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountState;
    use crate::array::{ArrayConfig, ArrayStore};
    use solana_account::AccountSharedData;
    use solana_pubkey::Pubkey;

    #[test]
    fn the_store_publishes_its_devices_cache_and_tiles() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ArrayConfig::single_file(dir.path(), 256 << 20);
        cfg.direct_io = false;
        let store = ArrayStore::open(cfg).unwrap();
        let key = Pubkey::new_unique();
        let acct = AccountSharedData::new(5, 10, &Pubkey::default());
        store.commit_slot(1, &[(key, acct)], b"meta").unwrap();
        store.drop_cache();
        store.get(&key).unwrap().expect("committed");
        let home: &StorageCounters = telemetry::SharedRegion::private();
        let prefetch = TileStats::default();
        prefetch.add_in(3);
        publish_to(home, &store.shared, &prefetch);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(home.device_count(), 1);
        assert_eq!(get(&home.store.gets), 1);
        assert_eq!(get(&home.store.accounts), 1);
        assert_eq!(
            get(&home.cache.misses),
            get(&store.shared.cache.counters.misses)
        );
        assert!(get(&home.device[0].writes) > 0 && get(&home.device[0].syncs) > 0);
        assert!(get(&home.device[0].reads) >= 1);
        assert!(
            get(&home.io[0].in_total) >= 1,
            "the read went through gc-io-0"
        );
        assert_eq!(get(&home.prefetch.in_total), 3);
    }
}
