//! GigaCompute accounts storage.
//!
//! An engine offers three traits (module `interface`): [`AccountState`] — reads by key, a
//! prefetch hint for keys needed soon, and an atomic, durable commit of all account writes of a
//! slot together with the slot's metadata blob (opaque to storage: the runtime keeps blockhashes
//! and transaction statuses in it); [`StateCommitment`] — state roots and account proofs, which
//! an engine may not keep; [`StoreStats`] — its counters. [`AccountsStore`] is all three, the
//! type an opened engine is held as. [`ArrayStore`] (the device array) implements all three;
//! [`LogStore`] is the embedded implementation: an append-only, checksummed log in the data
//! directory with the whole state indexed in memory, and no commitment.

pub mod array;
pub mod commitment;
pub mod config;
mod interface;
mod log_store;
mod record;

pub use array::{ArrayConfig, ArrayStats, ArrayStore, DeviceSpec};
pub use config::{StorageConfig, StorageEngine};
pub use interface::{
    AccountState, AccountsStore, KEY_CHUNK, ReadStats, Recovered, StateCommitment, StoreStats,
};
pub use log_store::{LogStore, LogStoreConfig};

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
    #[error("starting the storage thread {name}: {source}")]
    Thread {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
}
