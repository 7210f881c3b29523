//! What an array is made of and how it behaves (`ArrayConfig`), and what it reports
//! (`ArrayStats`).

use super::fault::FaultPlan;
use super::powercut::PowerCut;
use super::publish::StorageCounters;
use crate::commitment::CommitmentConfig;
use solana_pubkey::Pubkey;
use std::path::PathBuf;
use std::sync::Arc;

/// One device of the array: a regular file (created with `create_bytes` if absent) or a
/// block device (its whole size is used).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSpec {
    pub path: PathBuf,
    pub create_bytes: u64,
}

#[derive(Clone)]
pub struct ArrayConfig {
    pub devices: Vec<DeviceSpec>,
    /// I/O and packing unit: 512 or 4096.
    pub block_size: usize,
    /// Unit of allocation and compaction. Must hold the largest record (10 MiB account).
    pub segment_bytes: u64,
    /// Size of one write buffer (and of one segment-scan read).
    pub chunk_bytes: usize,
    pub cache_bytes: usize,
    /// Block-sized buffers in the registered I/O pool (reads in flight).
    pub read_buffers: usize,
    /// Chunk-sized buffers in the pool (writes in flight).
    pub write_buffers: usize,
    pub ring_entries: u32,
    pub sqpoll_idle_ms: Option<u32>,
    pub io_uring: bool,
    pub direct_io: bool,
    /// Compact when the space used exceeds this multiple of the live data.
    pub max_space_amplification: f64,
    /// Slot metadata records kept (at least the commitment's window).
    pub meta_retention_slots: usize,
    /// State roots kept and memory for older-slot proofs.
    pub commitment: CommitmentConfig,
    /// An app (account owner) writing more than this share of a slot's bytes gets its own
    /// device(s) when there are at least two.
    pub hot_app_share: f64,
    /// Operator placement: this owner's accounts go to these device indexes.
    pub pinned_apps: Vec<(Pubkey, Vec<usize>)>,
    /// Core each device's I/O thread (reads, prefetch) is pinned to: device i to
    /// `io_cores[i % len]`. Empty: not pinned.
    pub io_cores: Vec<usize>,
    /// Read-ahead requests the prefetch thread may have queued (a full queue drops them).
    pub prefetch_queue: usize,
    /// Tests: wrap device i with these faults.
    pub faults: Vec<Option<Arc<FaultPlan>>>,
    /// Tests: every device's writes and syncs go through this power-cut model.
    pub power: Option<Arc<PowerCut>>,
    /// The metrics region's storage block this store publishes its counters in (the
    /// appliance's); `None`: not published (benchmarks, tests).
    pub publish: Option<&'static StorageCounters>,
}

impl ArrayConfig {
    /// One file-backed device in `dir`, defaults for everything else.
    pub fn single_file(dir: &std::path::Path, bytes: u64) -> Self {
        ArrayConfig {
            devices: vec![DeviceSpec {
                path: dir.join("accounts-0.dev"),
                create_bytes: bytes,
            }],
            ..ArrayConfig::default()
        }
    }
}

impl Default for ArrayConfig {
    fn default() -> Self {
        ArrayConfig {
            devices: Vec::new(),
            block_size: 4096,
            segment_bytes: 32 << 20,
            chunk_bytes: 1 << 20,
            cache_bytes: 256 << 20,
            read_buffers: 1024,
            write_buffers: 64,
            ring_entries: 256,
            sqpoll_idle_ms: None,
            io_uring: true,
            direct_io: true,
            max_space_amplification: 2.0,
            meta_retention_slots: 1024,
            commitment: CommitmentConfig::default(),
            hot_app_share: 0.5,
            pinned_apps: Vec::new(),
            io_cores: Vec::new(),
            prefetch_queue: super::prefetch::HINT_QUEUE,
            faults: Vec::new(),
            power: None,
            publish: None,
        }
    }
}

/// Counters the runtime's metrics and the benchmark read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ArrayStats {
    pub gets: u64,
    pub cache_hits: u64,
    pub sequenced_hits: u64,
    pub sequenced_misses: u64,
    /// Gets that waited for a read of their key already in flight (not hits).
    pub cache_waits: u64,
    /// Of those, gets of keys a queued transaction referenced (the prefetch was late).
    pub sequenced_waits: u64,
    /// Reads of one account that went to a device (sync misses and prefetches).
    pub cold_reads: u64,
    /// Account reads that failed (never read as "absent").
    pub read_errors: u64,
    /// Account reads retried because compaction moved the record meanwhile.
    pub read_retries: u64,
    pub device_reads: u64,
    pub device_read_bytes: u64,
    pub device_write_bytes: u64,
    pub evictions: u64,
    pub evicted_queued: u64,
    pub compactions: u64,
    pub relocated_records: u64,
    pub live_bytes: u64,
    pub used_bytes: u64,
    pub index_bytes: u64,
    pub accounts: u64,
    pub cache_bytes: u64,
    /// Keys marked by queued transactions (the sequencer's working set).
    pub marked_keys: u64,
    /// Read-ahead requests dropped because the prefetch queue was full.
    pub hints_dropped: u64,
    pub io_backend: String,
    pub hugepages: bool,
    /// The app (account owner) holding a device of its own, and that device.
    pub hot_app: Option<(Pubkey, usize)>,
}
