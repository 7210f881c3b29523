//! GigaCompute accounts storage.
//!
//! [`AccountsStore`] is the interface the runtime writes through: reads by key, a prefetch hint
//! for keys needed soon, and an atomic, durable commit of all account writes of a slot together
//! with the slot's metadata blob (opaque to storage: the runtime keeps blockhashes and
//! transaction statuses in it). [`LogStore`] is the embedded implementation: an append-only,
//! checksummed log in the data directory with the whole state indexed in memory.

pub mod array;
pub mod commitment;
pub mod config;
mod log_store;
mod record;

pub use array::{ArrayConfig, ArrayStats, ArrayStore, DeviceSpec};
pub use config::{StorageConfig, StorageEngine};
pub use log_store::{LogStore, LogStoreConfig};

use solana_account::AccountSharedData;
use solana_pubkey::Pubkey;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("I/O error on {path} at offset {offset}: {source}")]
    Io {
        path: String,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("device full: slot {slot} not committed ({path})")]
    NoSpace { path: String, slot: u64 },
    #[error("corrupt record in {path} at offset {offset}: {reason}")]
    Corrupt {
        path: String,
        offset: u64,
        reason: String,
    },
    #[error("fdatasync failed on {path}: {source}; the store refuses writes until restarted")]
    SyncFailed {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("store is poisoned after a failed sync and refuses writes; restart to recover")]
    Poisoned,
    #[error("slot {slot} is not after the last committed slot {last}")]
    SlotOrder { slot: u64, last: u64 },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub gets: u64,
    pub cache_hits: u64,
    pub device_reads: u64,
    pub device_write_bytes: u64,
}

/// What a restart needs from the store besides the accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    pub last_slot: Option<u64>,
    /// Metadata blobs of the most recent committed slots, oldest first.
    pub slot_metas: Vec<(u64, Vec<u8>)>,
}

/// The accounts store as the runtime sees it.
pub trait AccountsStore: Send + Sync {
    /// Current committed state of one account and the slot that wrote it; `None` if it does
    /// not exist.
    fn get(&self, key: &Pubkey) -> Result<Option<(AccountSharedData, u64)>, StoreError>;

    /// Hint: these keys will be read soon (queued transactions). May start I/O; never blocks.
    /// Each call is balanced by a `release` of the same keys when the transaction leaves the
    /// queue (executed or dropped).
    fn prefetch(&self, keys: &[Pubkey]);

    /// The transaction that prefetched `keys` left the queue: the cache may evict them.
    fn release(&self, _keys: &[Pubkey]) {}

    /// Account reads since open, how many the cache served, and device I/O.
    fn read_stats(&self) -> ReadStats;

    /// Make all `accounts` of `slot` and its `meta` durable and visible atomically. An account
    /// with zero lamports is deleted. On error nothing of the slot is visible, before or after
    /// a restart.
    fn commit_slot(
        &self,
        slot: u64,
        accounts: &[(Pubkey, AccountSharedData)],
        meta: &[u8],
    ) -> Result<(), StoreError>;

    /// State recovered at open: last durable slot and the retained slot metadata.
    fn recovered(&self) -> Recovered;

    fn last_committed_slot(&self) -> Option<u64>;

    fn account_count(&self) -> usize;

    /// Time spent computing state commitments (roots, lattice hashes) in slot commits, ns.
    fn commitment_ns(&self) -> u64 {
        0
    }

    /// The state commitment of `slot` (default: the newest committed).
    fn slot_commitment(
        &self,
        _slot: Option<u64>,
    ) -> Result<commitment::SlotCommitment, commitment::ProofQueryError> {
        Err(commitment::ProofQueryError::Unsupported("log"))
    }

    /// `key`'s state (or absence) at `slot` (default: the newest) with its proof.
    fn prove(
        &self,
        _key: &Pubkey,
        _slot: Option<u64>,
    ) -> Result<commitment::AccountProof, commitment::ProofQueryError> {
        Err(commitment::ProofQueryError::Unsupported("log"))
    }
}
