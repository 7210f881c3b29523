//! The accounts view workers execute against: writes of slots not yet durable (the live
//! overlay, tagged with the slot that wrote them) over the durable store.
//!
//! `AccountsDb` is the one way the runtime (bank, workers, commit tile) and the RPC reach
//! state: reads, the commit of a closed slot, commitment queries and proofs, statistics. The
//! engine behind it stays private, so the overlay's invariant below cannot be bypassed by a
//! caller reading or writing the store on its own.
//!
//! Invariant: an account is removed from the overlay only after a store commit containing that
//! version (or a later one) returned, so a reader sees either the overlay value or the same or
//! newer value in the store, never an older one.
//!
//! It also keeps the secondary account indexes ([`crate::index`]): overlay writes add to
//! them, slot commits settle them, and [`AccountsDb::build_index`] fills them from the store
//! at start.

use crate::index::{AccountIndex, IndexConfig, IndexError, IndexKey, IndexKind};
use ahash::HashMap;
use parking_lot::RwLock;
use solana_account::{AccountSharedData, ReadableAccount};
use solana_clock::Slot;
use solana_pubkey::Pubkey;
use solana_svm_callback::{InvokeContextCallback, TransactionProcessingCallback};
use std::cell::RefCell;
use std::sync::Arc;
use storage::commitment::{AccountProof, ProofQueryError, SlotCommitment};
use storage::{AccountsStore, ReadStats, Recovered, StoreError};

const SHARDS: usize = 32;

pub struct AccountsDb {
    store: Arc<dyn AccountsStore>,
    pub counters: &'static crate::metrics::RuntimeCounters,
    live: [RwLock<HashMap<Pubkey, (AccountSharedData, Slot)>>; SHARDS],
    index: AccountIndex,
}

/// What building the indexes at start found and cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexBuild {
    pub accounts: usize,
    pub entries: usize,
    pub read_errors: usize,
    pub elapsed_ms: u64,
}

fn shard(key: &Pubkey) -> usize {
    usize::from(key.as_array()[0]) % SHARDS
}

impl AccountsDb {
    /// With the default indexes (all three), empty until [`Self::build_index`].
    pub fn new(
        store: Arc<dyn AccountsStore>,
        counters: &'static crate::metrics::RuntimeCounters,
    ) -> Self {
        Self::with_index(store, counters, &IndexConfig::default())
    }

    pub fn with_index(
        store: Arc<dyn AccountsStore>,
        counters: &'static crate::metrics::RuntimeCounters,
        index: &IndexConfig,
    ) -> Self {
        Self {
            store,
            counters,
            live: std::array::from_fn(|_| RwLock::new(HashMap::default())),
            index: AccountIndex::new(index),
        }
    }

    /// Index every durable account (at start, before any slot runs): the store's keys, each
    /// account read once. An account that cannot be read makes every kept index incomplete
    /// (its queries are refused) rather than silently short.
    pub fn build_index(&self) -> IndexBuild {
        let started = std::time::Instant::now();
        let (mut accounts, mut read_errors) = (0, 0);
        if IndexKind::ALL.iter().any(|k| self.index.is_enabled(*k)) {
            self.store.for_each_key(&mut |chunk| {
                for key in chunk {
                    match self.store.get(key) {
                        Ok(Some((a, _))) => {
                            accounts += 1;
                            self.index.add(key, &a);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            read_errors += 1;
                            self.read_failed(key, &e);
                        }
                    }
                }
            });
        }
        if read_errors > 0 {
            for k in IndexKind::ALL {
                self.index.mark_kind_incomplete(k);
            }
        }
        self.publish_index_stats();
        IndexBuild {
            accounts,
            entries: self.index.stats().entries,
            read_errors,
            elapsed_ms: started.elapsed().as_millis() as u64,
        }
    }

    /// Accounts indexed under `key` (of index `kind`): candidates, a superset of those that
    /// hold it at any commitment; the caller re-reads and re-checks each.
    pub fn index_candidates(
        &self,
        kind: IndexKind,
        key: Pubkey,
    ) -> Result<Vec<Pubkey>, IndexError> {
        self.index.candidates(IndexKey { kind, key })
    }

    pub fn index_enabled(&self, kind: IndexKind) -> bool {
        self.index.is_enabled(kind)
    }

    pub fn index_stats(&self) -> crate::index::IndexStats {
        self.index.stats()
    }

    fn publish_index_stats(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.index.stats();
        let c = self.counters;
        c.account_index_entries.store(s.entries as u64, Relaxed);
        c.account_index_bytes.store(s.bytes as u64, Relaxed);
        c.account_index_refused.store(s.refused, Relaxed);
        c.account_index_incomplete_keys
            .store(s.incomplete_keys as u64, Relaxed);
    }

    /// Latest state (processed commitment) and the slot that wrote it. Zero-lamport accounts
    /// do not exist. A store read error is an error, never "absent": an existing account
    /// read as absent would be recreated by the next transfer with only what it receives.
    /// Counted in `account_read_errors`.
    pub fn get(&self, key: &Pubkey) -> Result<Option<(AccountSharedData, Slot)>, StoreError> {
        if let Some((a, s)) = self.live[shard(key)].read().get(key) {
            return Ok((a.lamports() > 0).then(|| (a.clone(), *s)));
        }
        self.store
            .get(key)
            .inspect_err(|e| self.read_failed(key, e))
    }

    /// Durable state only (confirmed/finalized commitment); a read error is an error.
    /// Every durable account, read one by one (getSupply, getLargestAccounts): the keys the
    /// store holds when each chunk is handed over, each read at its newest durable version,
    /// so commits during the walk may or may not be seen. Stops at the first read error.
    pub fn for_each_durable(
        &self,
        visit: &mut dyn FnMut(&Pubkey, &AccountSharedData),
    ) -> Result<(), StoreError> {
        let mut failed = None;
        self.store.for_each_key(&mut |chunk| {
            for key in chunk {
                if failed.is_some() {
                    return;
                }
                match self.get_durable(key) {
                    Ok(Some(a)) => visit(key, &a),
                    Ok(None) => {}
                    Err(e) => failed = Some(e),
                }
            }
        });
        failed.map_or(Ok(()), Err)
    }

    pub fn get_durable(&self, key: &Pubkey) -> Result<Option<AccountSharedData>, StoreError> {
        self.store
            .get(key)
            .map(|v| v.map(|(a, _)| a))
            .inspect_err(|e| self.read_failed(key, e))
    }

    fn read_failed(&self, key: &Pubkey, e: &StoreError) {
        self.counters
            .account_read_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(error = %e, %key, "account read failed");
    }

    /// The index learns the new version after the overlay holds it: a slot commit settling
    /// the same key reads the overlay under the index's lock, so it either sees this version
    /// or runs before this `add`, which then puts back whatever it removed. Once `write`
    /// returns, the version's index keys stay until a newer version is durable.
    pub fn write(&self, key: Pubkey, account: AccountSharedData, slot: Slot) {
        let keys_needed = self.index.keys_of(&account);
        self.live[shard(&key)].write().insert(key, (account, slot));
        self.index.add_keys(&key, keys_needed);
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

    /// Returns how many of `keys` the store must read from its devices (the overlay's recent
    /// writes are in memory whatever the store says).
    pub fn prefetch(&self, keys: &[Pubkey]) -> usize {
        let mut cold = 0;
        self.store.prefetch_cold(keys, &mut |k| {
            // The store's copy is stale for a key in the overlay, which is read from memory.
            if !self.live[shard(k)].read().contains_key(k) {
                cold += 1;
            }
        });
        cold
    }

    /// The transaction that prefetched `keys` left the queue.
    pub fn release_queued(&self, keys: &[Pubkey]) {
        self.store.release(keys);
    }

    pub fn live_len(&self) -> usize {
        self.live.iter().map(|m| m.read().len()).sum()
    }

    // The durable side: a closed slot's commit and what a restart recovers.

    /// Make a closed slot durable: its account writes (the overlay's versions, from
    /// [`Self::snapshot`]) and its metadata, atomically. The overlay keeps its entries until
    /// the caller [`Self::release`]s them after this returns `Ok`.
    pub fn commit_slot(
        &self,
        slot: Slot,
        accounts: &[(Pubkey, AccountSharedData)],
        meta: &[u8],
    ) -> Result<(), StoreError> {
        self.store.commit_slot(slot, accounts, meta)?;
        // The slot's versions are durable: each account it wrote keeps the index keys of
        // that version and of the overlay's newer one, if any, and no others.
        for (key, durable) in accounts {
            self.index.settle(key, durable, || {
                self.live[shard(key)]
                    .read()
                    .get(key)
                    .map(|(a, _)| self.index.keys_of(a))
            });
        }
        self.publish_index_stats();
        Ok(())
    }

    /// The last durable slot and the retained slot metadata, as found at open.
    pub fn recovered(&self) -> Recovered {
        self.store.recovered()
    }

    /// Accounts in durable state.
    pub fn durable_account_count(&self) -> usize {
        self.store.account_count()
    }

    // State commitment: durable state only, so the overlay plays no part.

    /// The state commitment of `slot` (default: the newest durable one); `Unsupported` when
    /// the engine keeps none.
    pub fn slot_commitment(&self, slot: Option<Slot>) -> Result<SlotCommitment, ProofQueryError> {
        self.store.slot_commitment(slot)
    }

    /// `key`'s durable state (or absence) at `slot` (default: the newest) with its proof.
    pub fn prove(&self, key: &Pubkey, slot: Option<Slot>) -> Result<AccountProof, ProofQueryError> {
        self.store.prove(key, slot)
    }

    // Statistics, for the metrics the commit tile publishes.

    /// Reads, cache hits and device I/O of the engine since open.
    pub fn read_stats(&self) -> ReadStats {
        self.store.read_stats()
    }

    /// Time the engine spent computing state commitments, ns.
    pub fn commitment_ns(&self) -> u64 {
        self.store.commitment_ns()
    }
}

/// The SVM's window onto [`AccountsDb`]. The SVM's callback can only answer "absent", so a
/// read error is answered `None` *and remembered*: the caller must check [`Self::failed`]
/// after the SVM returns and discard everything it produced (nothing derived from a failed
/// read may be committed).
pub struct SvmCallback<'a> {
    db: &'a AccountsDb,
    failed: RefCell<Option<StoreError>>,
}

impl<'a> SvmCallback<'a> {
    pub fn new(db: &'a AccountsDb) -> Self {
        Self {
            db,
            failed: RefCell::new(None),
        }
    }

    /// The first read error the SVM met through this callback, if any.
    pub fn failed(&self) -> Option<StoreError> {
        self.failed.borrow_mut().take()
    }

    /// [`AccountsDb::get`], a failure remembered and answered `None`.
    pub fn read(&self, pubkey: &Pubkey) -> Option<(AccountSharedData, Slot)> {
        match self.db.get(pubkey) {
            Ok(v) => v,
            Err(e) => {
                self.failed.borrow_mut().get_or_insert(e);
                None
            }
        }
    }
}

impl InvokeContextCallback for SvmCallback<'_> {}

impl TransactionProcessingCallback for SvmCallback<'_> {
    fn get_account_shared_data(&self, pubkey: &Pubkey) -> Option<(AccountSharedData, Slot)> {
        self.read(pubkey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::{ArrayConfig, ArrayStore, DeviceSpec, LogStore, LogStoreConfig};

    fn db_over(store: Arc<dyn AccountsStore>) -> AccountsDb {
        AccountsDb::new(store, telemetry::SharedRegion::private())
    }

    fn log_db(dir: &std::path::Path) -> AccountsDb {
        db_over(Arc::new(
            LogStore::open(dir, LogStoreConfig::default()).unwrap(),
        ))
    }

    /// One small device file, plain reads and writes: runs on any file system.
    fn array_db(dir: &std::path::Path) -> AccountsDb {
        let config = ArrayConfig {
            devices: vec![DeviceSpec {
                path: dir.join("dev0"),
                create_bytes: 8 << 20,
            }],
            segment_bytes: 256 << 10,
            chunk_bytes: 64 << 10,
            cache_bytes: 256 << 10,
            read_buffers: 64,
            write_buffers: 16,
            ring_entries: 32,
            io_uring: false,
            direct_io: false,
            ..ArrayConfig::default()
        };
        db_over(Arc::new(ArrayStore::open(config).unwrap()))
    }

    fn lamports(n: u64) -> AccountSharedData {
        AccountSharedData::new(n, 0, &Pubkey::new_from_array([7; 32]))
    }

    #[test]
    fn a_committed_slot_reads_the_same_after_the_overlay_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = log_db(dir.path());
        let key = Pubkey::new_unique();
        db.write(key, lamports(5), 1);
        assert_eq!(db.get(&key).unwrap(), Some((lamports(5), 1)));
        assert_eq!(
            db.get_durable(&key).unwrap(),
            None,
            "not durable before the commit"
        );

        let writes = db.snapshot(&[key]);
        db.commit_slot(1, &writes, b"meta").unwrap();
        db.release(1, &[key]);
        assert_eq!(db.live_len(), 0);
        assert_eq!(db.get(&key).unwrap(), Some((lamports(5), 1)));
        assert_eq!(db.get_durable(&key).unwrap(), Some(lamports(5)));
        assert_eq!(db.durable_account_count(), 1);
        assert_eq!(
            db.recovered().last_slot,
            None,
            "recovered is what open found"
        );
        assert!(db.read_stats().gets >= 2);
    }

    #[test]
    fn release_keeps_a_newer_overlay_version() {
        let dir = tempfile::tempdir().unwrap();
        let db = log_db(dir.path());
        let key = Pubkey::new_unique();
        db.write(key, lamports(5), 1);
        let writes = db.snapshot(&[key]);
        db.write(key, lamports(6), 2);
        db.commit_slot(1, &writes, b"").unwrap();
        db.release(1, &[key]);
        assert_eq!(db.get(&key).unwrap(), Some((lamports(6), 2)));
        assert_eq!(db.get_durable(&key).unwrap(), Some(lamports(5)));
    }

    #[test]
    fn the_log_engine_answers_commitment_queries_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let db = log_db(dir.path());
        db.commit_slot(1, &[(Pubkey::new_unique(), lamports(1))], b"")
            .unwrap();
        assert!(matches!(
            db.slot_commitment(None),
            Err(ProofQueryError::Unsupported("log"))
        ));
        assert!(matches!(
            db.prove(&Pubkey::new_unique(), Some(1)),
            Err(ProofQueryError::Unsupported("log"))
        ));
        assert_eq!(db.commitment_ns(), 0);
    }

    #[test]
    fn the_array_engine_answers_commitment_queries() {
        let dir = tempfile::tempdir().unwrap();
        let db = array_db(dir.path());
        assert!(matches!(
            db.slot_commitment(None),
            Err(ProofQueryError::NoSlot)
        ));
        let key = Pubkey::new_unique();
        db.commit_slot(1, &[(key, lamports(9))], b"").unwrap();
        let header = db.slot_commitment(None).unwrap();
        assert_eq!((header.slot, header.accounts), (1, 1));
        let proof = db.prove(&key, None).unwrap();
        assert_eq!((proof.slot, proof.account), (1, Some(lamports(9))));
        assert!(db.commitment_ns() > 0);
    }
}
