//! What an accounts engine offers, in three traits, because its callers need three different
//! things and not every engine offers all of them:
//!
//! - [`AccountState`]: the accounts themselves — reads, read-ahead hints, the atomic and
//!   durable commit of a slot, what a restart recovers. Every engine has it; it is what the
//!   appliance cannot run without.
//! - [`StateCommitment`]: a slot's state root and proofs of accounts against it. Optional: an
//!   engine without a commitment keeps the default methods, which answer
//!   [`ProofQueryError::Unsupported`] naming the engine.
//! - [`StoreStats`]: counters for metrics and benchmarks (reads, cache hits, device I/O, time
//!   spent on commitments). Read-only and never on the path of a transaction.
//!
//! [`AccountsStore`] joins them so one `Arc<dyn AccountsStore>` carries an opened engine; the
//! runtime holds it inside `AccountsDb` and reaches it only through that.

use crate::StoreError;
use crate::commitment::{AccountProof, ProofQueryError, SlotCommitment};
use solana_account::AccountSharedData;
use solana_pubkey::Pubkey;

/// What a restart needs from the store besides the accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    pub last_slot: Option<u64>,
    /// Metadata blobs of the most recent committed slots, oldest first.
    pub slot_metas: Vec<(u64, Vec<u8>)>,
}

/// Account reads since open, how many the cache served, and device I/O.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub gets: u64,
    pub cache_hits: u64,
    pub device_reads: u64,
    pub device_write_bytes: u64,
}

/// The accounts: committed state by key and the durable commit of a slot.
pub trait AccountState: Send + Sync {
    /// Current committed state of one account and the slot that wrote it; `None` if it does
    /// not exist.
    fn get(&self, key: &Pubkey) -> Result<Option<(AccountSharedData, u64)>, StoreError>;

    /// Hint: these keys will be read soon (queued transactions). May start I/O; never blocks.
    /// Each call is balanced by a `release` of the same keys when the transaction leaves the
    /// queue (executed or dropped).
    /// `cold` is called for each of `keys` that needs a device read (stored, not resident in
    /// memory): the sequencer prices a transaction's cold reads with it.
    fn prefetch_cold(&self, keys: &[Pubkey], cold: &mut dyn FnMut(&Pubkey));

    /// [`Self::prefetch_cold`], returning how many keys were cold.
    fn prefetch(&self, keys: &[Pubkey]) -> usize {
        let mut n = 0;
        self.prefetch_cold(keys, &mut |_| n += 1);
        n
    }

    /// The transaction that prefetched `keys` left the queue: the cache may evict them.
    fn release(&self, _keys: &[Pubkey]) {}

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

    /// Every key in committed state, handed to `visit` a chunk at a time (at most
    /// [`KEY_CHUNK`] keys; no lock of the engine is held while `visit` runs, so it may read
    /// the accounts). For rebuilding what is derived from the accounts at start (the RPC's
    /// secondary indexes); a key committed or deleted during the walk may or may not be seen.
    fn for_each_key(&self, visit: &mut dyn FnMut(&[Pubkey]));
}

/// Most keys [`AccountState::for_each_key`] hands over at once.
pub const KEY_CHUNK: usize = 4096;

/// A slot's state commitment (state root, lattice hash) and account proofs against it.
pub trait StateCommitment: Send + Sync {
    /// The engine's name, for the error that says it keeps no commitment.
    fn engine_name(&self) -> &'static str;

    /// The state commitment of `slot` (default: the newest committed). Default: this engine
    /// keeps none.
    fn slot_commitment(&self, _slot: Option<u64>) -> Result<SlotCommitment, ProofQueryError> {
        Err(ProofQueryError::Unsupported(self.engine_name()))
    }

    /// `key`'s state (or absence) at `slot` (default: the newest) with its proof. Default:
    /// this engine keeps no commitment.
    fn prove(&self, _key: &Pubkey, _slot: Option<u64>) -> Result<AccountProof, ProofQueryError> {
        Err(ProofQueryError::Unsupported(self.engine_name()))
    }
}

/// Counters an engine keeps about itself, exported as metrics.
pub trait StoreStats: Send + Sync {
    /// Account reads since open, how many the cache served, and device I/O.
    fn read_stats(&self) -> ReadStats;

    /// Time spent computing state commitments (roots, lattice hashes) in slot commits, ns.
    /// Zero for an engine that keeps none.
    fn commitment_ns(&self) -> u64 {
        0
    }
}

/// A whole engine, as the appliance opens it (`Arc<dyn AccountsStore>`). Implemented for
/// every type that implements the three parts.
pub trait AccountsStore: AccountState + StateCommitment + StoreStats {}

impl<T: AccountState + StateCommitment + StoreStats + ?Sized> AccountsStore for T {}
