//! The commit tile: makes each closed slot durable, in slot order, then marks it confirmed.
//!
//! A failed commit (full disk, I/O error) is retried with the same job until it succeeds or the
//! appliance stops; no later slot can overtake it, so what clients were told stays consistent.
//! While it fails, the bounded job channel fills and the bank stops producing slots.

use crate::accounts::AccountsDb;
use crate::chain::ChainState;
use crate::metrics::RuntimeCounters;
use crossbeam_channel::{Receiver, Sender};
use dataplane::monotonic_ns;
use solana_account::AccountSharedData;
use solana_clock::Slot;
use solana_pubkey::Pubkey;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use telemetry::{Tile, TileClock, Turn, next_input};

pub struct CommitJob {
    pub slot: Slot,
    /// Shared with the slot's announcement to subscribers.
    pub accounts: Arc<Vec<(Pubkey, AccountSharedData)>>,
    pub keys: Vec<Pubkey>,
    pub meta: Vec<u8>,
    pub received_ns: Vec<u64>,
    /// When the bank closed the slot (monotonic ns).
    pub closed_ns: u64,
}

/// A durable slot's record, handed to the history tile (the `commit_history` link).
pub struct DurableSlot {
    pub slot: Slot,
    /// The slot's `SlotRecord`, encoded, as the store holds it.
    pub meta: Vec<u8>,
}

/// A durable slot's written accounts, for the node's follower (scale-out replication).
pub struct ReplicaSlot {
    pub slot: Slot,
    pub accounts: Arc<Vec<(Pubkey, AccountSharedData)>>,
    /// The slot's transactions, taken now: the chain may drop them before they are shipped.
    pub statuses: Vec<Arc<crate::chain::TxStatus>>,
}

/// Where the commit tile hands durable slots for replication. Never blocks the tile: a full
/// queue sets `overflowed`, and the replicator then sends its follower a fresh snapshot.
#[derive(Clone)]
pub struct ReplicaTap {
    pub slots: Sender<ReplicaSlot>,
    pub overflowed: Arc<std::sync::atomic::AtomicBool>,
}

const RETRY_BACKOFF: Duration = Duration::from_millis(500);

/// The commit tile. It stops when the bank is gone and every slot it closed is durable (its
/// input closed and drained), or when the store is poisoned.
pub struct CommitTile {
    jobs: Receiver<CommitJob>,
    db: Arc<AccountsDb>,
    chain: Arc<ChainState>,
    counters: &'static RuntimeCounters,
    /// Where durable slots go next (the history tile), when the node keeps history.
    history: Option<Sender<DurableSlot>>,
    /// Where durable slots go to be shipped to the follower, in a cluster.
    replica: Option<ReplicaTap>,
}

impl CommitTile {
    pub fn new(
        jobs: Receiver<CommitJob>,
        db: Arc<AccountsDb>,
        chain: Arc<ChainState>,
        counters: &'static RuntimeCounters,
        history: Option<Sender<DurableSlot>>,
    ) -> Self {
        Self {
            jobs,
            db,
            chain,
            counters,
            history,
            replica: None,
        }
    }

    pub fn with_replica(mut self, tap: Option<ReplicaTap>) -> Self {
        self.replica = tap;
        self
    }
}

impl Tile for CommitTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, _stopping: bool) -> Turn {
        let (jobs, db, chain, counters) = (&self.jobs, &self.db, &self.chain, self.counters);
        let mut job = match next_input(jobs, clock) {
            Ok(x) => x,
            Err(turn) => return turn,
        };
        counters.commit.add_in(1);
        counters.commit.set_queue_depth(jobs.len());
        let started = Instant::now();
        loop {
            match db.commit_slot(job.slot, &job.accounts, &job.meta) {
                Ok(()) => break,
                Err(e) => {
                    counters.commit_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(slot = job.slot, error = %e, "slot commit failed; retrying");
                    std::thread::sleep(RETRY_BACKOFF);
                    if matches!(e, storage::StoreError::Poisoned) {
                        // Nothing more can become durable; stop confirming.
                        return Turn::Done;
                    }
                }
            }
        }
        if let Some(tap) = &self.replica {
            let statuses = chain
                .slot_signatures(job.slot)
                .unwrap_or_default()
                .iter()
                .filter_map(|sig| chain.status(sig))
                .collect();
            let slot = ReplicaSlot {
                slot: job.slot,
                accounts: job.accounts.clone(),
                statuses,
            };
            if tap.slots.try_send(slot).is_err() {
                tap.overflowed.store(true, Ordering::Release);
            }
        }
        chain.set_durable(job.slot);
        let reads = db.read_stats();
        counters.account_reads.store(reads.gets, Ordering::Relaxed);
        counters
            .account_cache_hits
            .store(reads.cache_hits, Ordering::Relaxed);
        counters
            .storage_device_reads
            .store(reads.device_reads, Ordering::Relaxed);
        counters
            .storage_device_write_bytes
            .store(reads.device_write_bytes, Ordering::Relaxed);
        counters
            .state_commitment_ns
            .store(db.commitment_ns(), Ordering::Relaxed);
        counters.slot_durable.store(job.slot, Ordering::Relaxed);
        counters
            .slot_commit_latency
            .record(monotonic_ns().saturating_sub(job.closed_ns) / 1_000);
        counters.commit.add_out(1);
        db.release(job.slot, &job.keys);
        counters
            .commit_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        counters
            .committed
            .fetch_add(job.received_ns.len() as u64, Ordering::Relaxed);
        let now = monotonic_ns();
        for r in &job.received_ns {
            counters
                .commit_latency
                .record(now.saturating_sub(*r) / 1_000);
        }
        clock.busy();
        if let Some(history) = &self.history {
            // Blocking: a slow history disk holds slot production back like a slow accounts
            // disk (history is a promise to clients). A history tile that is gone has failed
            // the node already; its slots are caught up at the next start.
            let durable = DurableSlot {
                slot: job.slot,
                meta: std::mem::take(&mut job.meta),
            };
            let gone = history.send(durable).is_err();
            clock.backpressure();
            if gone {
                self.history = None;
            }
        }
        Turn::Continue
    }
}
