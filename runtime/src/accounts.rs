//! The accounts view workers execute against: writes of slots not yet durable (the live
//! overlay, tagged with the slot that wrote them) over the durable store.
//!
//! Invariant: an account is removed from the overlay only after a store commit containing that
//! version (or a later one) returned, so a reader sees either the overlay value or the same or
//! newer value in the store, never an older one.

use ahash::HashMap;
use parking_lot::RwLock;
use solana_account::{AccountSharedData, ReadableAccount};
use solana_clock::Slot;
use solana_pubkey::Pubkey;
use solana_svm_callback::{InvokeContextCallback, TransactionProcessingCallback};
use std::sync::Arc;
use storage::AccountsStore;

const SHARDS: usize = 32;

pub struct AccountsDb {
    store: Arc<dyn AccountsStore>,
    pub counters: &'static crate::metrics::RuntimeCounters,
    live: [RwLock<HashMap<Pubkey, (AccountSharedData, Slot)>>; SHARDS],
}

fn shard(key: &Pubkey) -> usize {
    usize::from(key.as_array()[0]) % SHARDS
}

impl AccountsDb {
    pub fn new(
        store: Arc<dyn AccountsStore>,
        counters: &'static crate::metrics::RuntimeCounters,
    ) -> Self {
        Self {
            store,
            counters,
            live: std::array::from_fn(|_| RwLock::new(HashMap::default())),
        }
    }

    pub fn store(&self) -> &Arc<dyn AccountsStore> {
        &self.store
    }

    /// Latest state (processed commitment) and the slot that wrote it. Zero-lamport accounts
    /// do not exist. A store read error is logged and reads as absent: the commit path, not
    /// a reader, owns reporting storage faults.
    pub fn get(&self, key: &Pubkey) -> Option<(AccountSharedData, Slot)> {
        if let Some((a, s)) = self.live[shard(key)].read().get(key) {
            return (a.lamports() > 0).then(|| (a.clone(), *s));
        }
        match self.store.get(key) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, %key, "account read failed");
                None
            }
        }
    }

    /// Durable state only (confirmed/finalized commitment).
    pub fn get_durable(&self, key: &Pubkey) -> Option<AccountSharedData> {
        self.store.get(key).ok().flatten().map(|(a, _)| a)
    }

    pub fn write(&self, key: Pubkey, account: AccountSharedData, slot: Slot) {
        self.live[shard(&key)].write().insert(key, (account, slot));
    }

    /// Values to commit for `slot`: the live version of each written key.
    pub fn snapshot(&self, keys: &[Pubkey]) -> Vec<(Pubkey, AccountSharedData)> {
        keys.iter()
            .filter_map(|k| {
                self.live[shard(k)]
                    .read()
                    .get(k)
                    .map(|(a, _)| (*k, a.clone()))
            })
            .collect()
    }

    /// `slot` is durable: drop overlay entries it covers.
    pub fn release(&self, slot: Slot, keys: &[Pubkey]) {
        for k in keys {
            let mut m = self.live[shard(k)].write();
            if m.get(k).is_some_and(|(_, s)| *s <= slot) {
                m.remove(k);
            }
        }
    }

    pub fn prefetch(&self, keys: &[Pubkey]) {
        self.store.prefetch(keys);
    }

    /// The transaction that prefetched `keys` left the queue.
    pub fn release_queued(&self, keys: &[Pubkey]) {
        self.store.release(keys);
    }

    pub fn live_len(&self) -> usize {
        self.live.iter().map(|m| m.read().len()).sum()
    }
}

/// The SVM's window onto [`AccountsDb`].
pub struct SvmCallback<'a>(pub &'a AccountsDb);

impl InvokeContextCallback for SvmCallback<'_> {}

impl TransactionProcessingCallback for SvmCallback<'_> {
    fn get_account_shared_data(&self, pubkey: &Pubkey) -> Option<(AccountSharedData, Slot)> {
        self.0.get(pubkey)
    }
}
