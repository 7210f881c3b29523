//! A storage read error is never "the account does not exist": a transfer that touches an
//! account whose read fails (the recipient, or the fee payer) is dropped, nothing of it is
//! committed, the error is counted, and once the fault clears the balances are intact.
//!
//! The faults are injected by a store wrapper that fails reads of chosen keys with the errors
//! the array engine reports (I/O error, checksum mismatch); the array engine's own tests
//! (storage/src/array/error_tests.rs) show those errors come out of EIO, flipped bits and a
//! read racing compaction.

use crossbeam_channel::Sender;
use dataplane::{PacketBox, PacketPool};
use parking_lot::Mutex;
use runtime::genesis::GenesisConfig;
use runtime::metrics::RuntimeDrop;
use runtime::{Runtime, RuntimeConfig, RuntimeSetup};
use solana_account::{AccountSharedData, ReadableAccount};
use solana_keypair::Keypair;
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_transaction::Transaction;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use storage::{
    AccountState, LogStore, LogStoreConfig, ReadStats, Recovered, StateCommitment, StoreError,
    StoreStats,
};

/// The log engine, with reads of `failing` keys answered by `error()`.
struct Faulty {
    inner: LogStore,
    failing: Mutex<Vec<(Pubkey, fn() -> StoreError)>>,
}

fn eio() -> StoreError {
    StoreError::Io {
        path: "dev0".into(),
        offset: 4096,
        source: std::io::Error::from_raw_os_error(libc::EIO),
    }
}

fn flipped_bit() -> StoreError {
    StoreError::Corrupt {
        path: "dev0".into(),
        offset: 4096,
        reason: "crc mismatch".into(),
    }
}

impl AccountState for Faulty {
    fn get(&self, key: &Pubkey) -> Result<Option<(AccountSharedData, u64)>, StoreError> {
        if let Some((_, e)) = self.failing.lock().iter().find(|(k, _)| k == key) {
            return Err(e());
        }
        self.inner.get(key)
    }
    fn prefetch_cold(&self, keys: &[Pubkey], cold: &mut dyn FnMut(&Pubkey)) {
        self.inner.prefetch_cold(keys, cold)
    }
    fn release(&self, keys: &[Pubkey]) {
        self.inner.release(keys)
    }
    fn commit_slot(
        &self,
        slot: u64,
        accounts: &[(Pubkey, AccountSharedData)],
        meta: &[u8],
    ) -> Result<(), StoreError> {
        self.inner.commit_slot(slot, accounts, meta)
    }
    fn recovered(&self) -> Recovered {
        self.inner.recovered()
    }
    fn last_committed_slot(&self) -> Option<u64> {
        self.inner.last_committed_slot()
    }
    fn for_each_key(&self, visit: &mut dyn FnMut(&[Pubkey])) {
        self.inner.for_each_key(visit)
    }
    fn account_count(&self) -> usize {
        self.inner.account_count()
    }
}

impl StateCommitment for Faulty {
    fn engine_name(&self) -> &'static str {
        "faulty"
    }
}

impl StoreStats for Faulty {
    fn read_stats(&self) -> ReadStats {
        self.inner.read_stats()
    }
}

struct Harness {
    rt: Runtime,
    store: Arc<Faulty>,
    tx: Sender<PacketBox>,
    pool: PacketPool,
    faucet: Keypair,
}

impl Harness {
    fn send(&self, tx: &Transaction) {
        let bytes = bincode::serialize(tx).unwrap();
        let mut p = self.pool.take().unwrap();
        assert!(p.fill_verified(&bytes));
        self.tx.send(p).unwrap();
    }

    fn transfer(&self, to: &Pubkey, lamports: u64) -> Transaction {
        let ix =
            solana_system_interface::instruction::transfer(&self.faucet.pubkey(), to, lamports);
        let blockhash = self
            .rt
            .chain
            .latest_header(runtime::chain::Commitment::Processed)
            .unwrap()
            .blockhash;
        Transaction::new(
            &[&self.faucet],
            Message::new(&[ix], Some(&self.faucet.pubkey())),
            blockhash,
        )
    }

    fn wait_durable(&self, tx: &Transaction) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.rt.chain.status(&tx.signatures[0])
                && s.slot <= self.rt.chain.durable_slot()
            {
                assert_eq!(s.err, None);
                break;
            }
            assert!(Instant::now() < deadline, "transaction never committed");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Let the commit tile release the overlay, so reads reach the store (checked by
        // `send_while_failing`: the read must fail).
        std::thread::sleep(Duration::from_millis(300));
    }

    fn balance(&self, k: &Pubkey) -> u64 {
        self.rt
            .db
            .get(k)
            .expect("readable")
            .map_or(0, |(a, _)| a.lamports())
    }

    /// Sends `tx` while reads of `key` fail with `error`: the transaction must be dropped
    /// (no status, nothing committed) and the error counted.
    fn send_while_failing(&self, tx: &Transaction, key: Pubkey, error: fn() -> StoreError) {
        let errors = self.rt.counters.account_read_errors.load(Ordering::Relaxed);
        // Dropped at admission when the fee payer is unreadable, by the worker otherwise.
        let dropped = || {
            self.rt.counters.dropped(RuntimeDrop::SvmRejected)
                + self.rt.counters.dropped(RuntimeDrop::FeePayerUnreadable)
        };
        let rejected = dropped();
        *self.store.failing.lock() = vec![(key, error)];
        assert!(self.rt.db.get(&key).is_err(), "a read error is not absence");
        self.send(tx);
        let deadline = Instant::now() + Duration::from_secs(20);
        while dropped() == rejected {
            assert!(
                Instant::now() < deadline,
                "the transaction was never dropped"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // A few slots go by: nothing of it lands.
        std::thread::sleep(Duration::from_millis(200));
        assert!(self.rt.chain.status(&tx.signatures[0]).is_none());
        assert!(self.rt.counters.account_read_errors.load(Ordering::Relaxed) > errors + 1);
        self.store.failing.lock().clear();
    }
}

fn start(dir: &std::path::Path) -> Harness {
    let faucet = Keypair::new();
    let store = Arc::new(Faulty {
        inner: LogStore::open(dir, LogStoreConfig::default()).unwrap(),
        failing: Mutex::new(Vec::new()),
    });
    let pool = PacketPool::new(1024);
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let config = RuntimeSetup {
        runtime: RuntimeConfig {
            slot_ms: 20,
            workers: 1,
            worker_cores: vec![],
            batch_max: 16,
            admit_burst: 64,
            sequencer_capacity: 10_000,
            status_retention_slots: 512,
            status_retention_bytes: 256 << 20,
            commit_queue_slots: 4,
            // Solana's 150 slots, as these tests were written for.
            blockhash_validity_ms: 150 * 20,
        },
        scheduler: Default::default(),
        worker_numa: vec![],
        account_index: Default::default(),
        preconf: Default::default(),
        preconf_delivery: None,
        routes: None,
        tuner: Default::default(),
        cluster: None,
        genesis: GenesisConfig {
            faucet: Some((faucet.pubkey(), 1_000_000_000_000)),
            fee_collector: Pubkey::new_unique(),
            accounts: vec![],
        },
    };
    let rt = Runtime::start(
        &config,
        store.clone(),
        pool.clone(),
        rx,
        telemetry::SharedRegion::private(),
    )
    .unwrap();
    Harness {
        rt,
        store,
        tx,
        pool,
        faucet,
    }
}

#[test]
fn a_transfer_touching_an_unreadable_account_never_commits_a_wrong_balance() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path());
    let bob = Pubkey::new_unique();
    let fund = h.transfer(&bob, 1_000_000);
    h.send(&fund);
    h.wait_durable(&fund);
    assert_eq!(h.balance(&bob), 1_000_000);
    let faucet_balance = h.balance(&h.faucet.pubkey());

    // The recipient unreadable (EIO, then a flipped bit): it must not be recreated with 500.
    h.send_while_failing(&h.transfer(&bob, 500), bob, eio);
    assert_eq!(h.balance(&bob), 1_000_000, "bob's balance intact");
    h.send_while_failing(&h.transfer(&bob, 501), bob, flipped_bit);
    assert_eq!(h.balance(&bob), 1_000_000, "bob's balance intact");

    // The fee payer unreadable: no fee charged, nothing moved.
    let carol = Pubkey::new_unique();
    h.send_while_failing(&h.transfer(&carol, 7), h.faucet.pubkey(), eio);
    assert_eq!(h.balance(&h.faucet.pubkey()), faucet_balance);
    assert_eq!(h.balance(&carol), 0);

    // The fault cleared: the same kind of transfer lands on the real balance.
    let pay = h.transfer(&bob, 502);
    h.send(&pay);
    h.wait_durable(&pay);
    assert_eq!(h.balance(&bob), 1_000_502);
    h.rt.shutdown();
    drop(h.tx);
}
