//! Counters the runtime tiles keep (one writer each, relaxed atomics), read by the RPC, the
//! benches, the metrics endpoint and `gigacompute monitor`. `#[repr(C)]` and valid when zeroed,
//! so they live in the shared metrics region.

use solana_pubkey::Pubkey;
use std::sync::atomic::{AtomicU64, Ordering};
use telemetry::{LatencyHistogram, TileStats, ZeroValid};

/// Workers that have a counter slot (the config allows at most this many).
pub const MAX_WORKERS: usize = 64;
/// Apps tracked individually; more share the overflow counter.
pub const MAX_APPS: usize = 64;
/// Islands with their own counters (more may exist; they are counted in the totals only).
pub const MAX_ISLANDS: usize = 16;

/// One app slot (keyed by the app key: top-level program by default). The key is written
/// once, before its counts.
#[repr(C, align(64))]
#[derive(Default)]
pub struct AppSlot {
    /// Non-zero once `key` is written (the System program's key is all zeros).
    used: AtomicU64,
    key: [AtomicU64; 4],
    pub transactions: AtomicU64,
    pub errors: AtomicU64,
    pub compute_units: AtomicU64,
    /// Received to executed, summed (mean = sum / transactions).
    pub latency_us_sum: AtomicU64,
    /// Received to executed.
    pub latency: LatencyHistogram,
    /// Admission to dispatch (hotspot scheduler).
    pub queue_delay: LatencyHistogram,
    /// Dropped transactions by [`RuntimeDrop`].
    pub drops: [AtomicU64; RuntimeDrop::COUNT],
    /// Transactions placed despite (chained behind, or optimistic beside) a declared lock
    /// conflict.
    pub conflicts: AtomicU64,
    /// Optimistic batches of this app re-executed after failing validation.
    pub reexecutions: AtomicU64,
    /// Picks held back to a later slot by a compute-unit cap (per scheduling pass).
    pub cu_deferred: AtomicU64,
    /// 1 while the app runs optimistically.
    pub optimistic: AtomicU64,
}

impl AppSlot {
    pub fn program(&self) -> Option<Pubkey> {
        (self.used.load(Ordering::Acquire) != 0).then(|| load_key(&self.key))
    }
}

/// Per-app counters with one writer (the bank tile).
#[repr(C)]
pub struct AppTable {
    pub slots: [AppSlot; MAX_APPS],
    pub overflow_transactions: AtomicU64,
}

fn key_words(key: &Pubkey) -> [u64; 4] {
    std::array::from_fn(|i| {
        u64::from_le_bytes(key.as_array()[i * 8..i * 8 + 8].try_into().expect("8"))
    })
}

fn store_key(words: &[AtomicU64; 4], key: &Pubkey) {
    for (w, v) in words.iter().zip(key_words(key)) {
        w.store(v, Ordering::Relaxed);
    }
}

fn load_key(words: &[AtomicU64; 4]) -> Pubkey {
    let mut b = [0u8; 32];
    for (i, w) in words.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&w.load(Ordering::Acquire).to_le_bytes());
    }
    Pubkey::new_from_array(b)
}

impl AppTable {
    /// The slot of `key`, claimed if new; `None` once every slot is taken. One writer (the bank
    /// thread) claims slots.
    pub fn slot_index(&self, key: &Pubkey) -> Option<usize> {
        let words = key_words(key);
        let start = (words[0] as usize) % MAX_APPS;
        for k in 0..MAX_APPS {
            let i = (start + k) % MAX_APPS;
            let slot = &self.slots[i];
            if slot.used.load(Ordering::Relaxed) == 0 {
                store_key(&slot.key, key);
                slot.used.store(1, Ordering::Release);
                return Some(i);
            }
            let current: [u64; 4] = std::array::from_fn(|i| slot.key[i].load(Ordering::Relaxed));
            if current == words {
                return Some(i);
            }
        }
        None
    }

    pub fn record(&self, program: &Pubkey, failed: bool, cu: u64, latency_us: u64) {
        let Some(i) = self.slot_index(program) else {
            self.overflow_transactions.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let slot = &self.slots[i];
        slot.transactions.fetch_add(1, Ordering::Relaxed);
        slot.errors.fetch_add(u64::from(failed), Ordering::Relaxed);
        slot.compute_units.fetch_add(cu, Ordering::Relaxed);
        slot.latency_us_sum.fetch_add(latency_us, Ordering::Relaxed);
        slot.latency.record(latency_us);
    }

    pub fn record_drop(&self, program: &Pubkey, why: RuntimeDrop) {
        if let Some(i) = self.slot_index(program) {
            self.slots[i].drops[why as usize].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One hot-account island's counters (slot `i` is island lane `i`).
#[repr(C, align(64))]
#[derive(Default)]
pub struct IslandSlot {
    /// 1 while the island exists.
    pub active: AtomicU64,
    account: [AtomicU64; 4],
    pub worker: AtomicU64,
    /// Scheduler slot count when it formed.
    pub formed_at: AtomicU64,
    pub transactions: AtomicU64,
    pub compute_units: AtomicU64,
    pub queue_delay: LatencyHistogram,
}

impl IslandSlot {
    /// Formed on `account` (counters restart), or dissolved (`None`).
    pub fn set(&self, account: Option<Pubkey>, worker: u64, at: u64) {
        match account {
            Some(k) => {
                store_key(&self.account, &k);
                self.worker.store(worker, Ordering::Relaxed);
                self.formed_at.store(at, Ordering::Relaxed);
                self.transactions.store(0, Ordering::Relaxed);
                self.compute_units.store(0, Ordering::Relaxed);
                self.queue_delay.reset();
                self.active.store(1, Ordering::Release);
            }
            None => self.active.store(0, Ordering::Release),
        }
    }

    pub fn account(&self) -> Option<Pubkey> {
        (self.active.load(Ordering::Acquire) != 0).then(|| load_key(&self.account))
    }
}

#[repr(C)]
pub struct IslandTable {
    pub slots: [IslandSlot; MAX_ISLANDS],
    pub formed: AtomicU64,
    pub dissolved: AtomicU64,
}

/// Why the runtime dropped a verified transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum RuntimeDrop {
    BlockhashNotFound,
    AlreadyProcessed,
    ComputeBudget,
    Lookup,
    Sanitize,
    SequencerFull,
    SequencerEvicted,
    Expired,
    SvmRejected,
    Shutdown,
    /// The fee payer does not exist or cannot pay the transaction's maximum fee (checked at
    /// admission, as Agave's scheduler does, so unfunded senders hold no queue space).
    FeePayerCannotPay,
    /// The fee payer's account could not be read (a storage error): the client may resend.
    FeePayerUnreadable,
}

impl RuntimeDrop {
    pub const COUNT: usize = 12;
    pub const ALL: [RuntimeDrop; Self::COUNT] = [
        RuntimeDrop::BlockhashNotFound,
        RuntimeDrop::AlreadyProcessed,
        RuntimeDrop::ComputeBudget,
        RuntimeDrop::Lookup,
        RuntimeDrop::Sanitize,
        RuntimeDrop::SequencerFull,
        RuntimeDrop::SequencerEvicted,
        RuntimeDrop::Expired,
        RuntimeDrop::SvmRejected,
        RuntimeDrop::Shutdown,
        RuntimeDrop::FeePayerCannotPay,
        RuntimeDrop::FeePayerUnreadable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RuntimeDrop::BlockhashNotFound => "blockhash_not_found",
            RuntimeDrop::AlreadyProcessed => "already_processed",
            RuntimeDrop::ComputeBudget => "compute_budget",
            RuntimeDrop::Lookup => "address_lookup",
            RuntimeDrop::Sanitize => "sanitize",
            RuntimeDrop::SequencerFull => "sequencer_full",
            RuntimeDrop::SequencerEvicted => "sequencer_evicted",
            RuntimeDrop::Expired => "blockhash_expired_in_queue",
            RuntimeDrop::SvmRejected => "svm_rejected",
            RuntimeDrop::Shutdown => "shutdown",
            RuntimeDrop::FeePayerCannotPay => "fee_payer_cannot_pay",
            RuntimeDrop::FeePayerUnreadable => "fee_payer_unreadable",
        }
    }
}

telemetry::declare_counters! {
    /// The runtime tiles' counters (bank, workers, commit). Per-app and per-island tables are
    /// exposed row by row (src/metrics/scheduler.rs), drops by reason.
    #[repr(C)]
    pub struct RuntimeCounters {
        /// Newest slot processed.
        slot_processed: Gauge(Count) "slot" [state = "processed"],
        /// Newest slot durable.
        slot_durable: Gauge(Count) "slot" [state = "durable"],
        /// Account reads by the runtime.
        account_reads: Counter(Count) "storage_account_reads",
        /// Account reads that failed with a storage error (the transaction or slot that
        /// needed them stops; never read as "absent").
        account_read_errors: Counter(Count) "account_read_errors",
        /// Account reads served from the accounts engine's memory.
        account_cache_hits: Counter(Count) "storage_cache_hits",
        /// Read operations issued to the storage devices (account reads, scans).
        storage_device_reads: Counter(Count) "storage_device_reads",
        /// Bytes written to the storage devices (records, superblocks, compaction).
        storage_device_write_bytes: Counter(Bytes) "storage_device_write",
        /// Time slot commits spent computing the state root and lattice hash.
        state_commitment_ns: Counter(Nanoseconds) "state_commitment",
        /// Verified transactions taken in by the bank.
        received: Counter(Count) "bank_received",
        /// Transactions queued in the sequencer.
        queued: Counter(Count) "bank_queued",
        /// Transactions executed successfully.
        executed_ok: Counter(Count) "transactions" [result = "ok"],
        /// Transactions executed with an error (fees charged).
        executed_err: Counter(Count) "transactions" [result = "error"],
        /// Transactions whose slot is durable.
        committed: Counter(Count) "transactions_committed",
        /// Slots closed by the bank.
        slots_closed: Counter(Count) "slots_closed",
        /// Memory the retained transaction statuses hold (runtime.status_retention_bytes
        /// bounds it).
        status_bytes: Gauge(Bytes) "transaction_status_memory",
        /// Statuses dropped before runtime.status_retention_slots to stay within
        /// runtime.status_retention_bytes.
        statuses_evicted: Counter(Count) "transaction_statuses_evicted",
        /// Accounts the hotspot scheduler tracks the heat of (bounded by
        /// scheduler::hotspot::MAX_TRACKED_ACCOUNTS).
        heat_accounts: Gauge(Count) "scheduler_heat_accounts",
        /// Write locks left untracked because the heat map was full, and accounts evicted
        /// from it (the coldest first) at a slot's close.
        heat_untracked: Counter(Count) "scheduler_heat_untracked",
        /// Batches dispatched to workers.
        batches: Counter(Count) "batches",
        /// Batches executed optimistically (first runs).
        optimistic_batches: Counter(Count) "optimistic_batches",
        /// Optimistic batches re-executed after failing validation.
        reexecutions: Counter(Count) "reexecutions",
        /// Time the workers spent executing batches.
        exec_ns: Counter(Nanoseconds) "execution",
        /// Compute units consumed by executed transactions.
        compute_units: Counter(Count) "compute_units",
        /// Time the commit tile spent committing slots.
        commit_ns: Counter(Nanoseconds) "commit",
        /// Failed slot commit attempts.
        commit_errors: Counter(Count) "storage_commit_errors",
        /// Transactions waiting in the sequencer.
        sequencer_depth: Gauge(Count) "sequencer_depth",
        ;
        pub bank: TileStats,
        pub workers: [TileStats; MAX_WORKERS],
        pub commit: TileStats,
        pub apps: AppTable,
        pub islands: IslandTable,
        /// Received to executed.
        pub exec_latency: LatencyHistogram,
        /// Time from a slot's close to its durable commit.
        pub slot_commit_latency: LatencyHistogram,
        /// By [`RuntimeDrop`]: exposed by reason.
        pub drops: [AtomicU64; RuntimeDrop::COUNT],
        /// Received (by the net tile) to durably committed.
        pub commit_latency: LatencyHistogram,
    }
}

// SAFETY: atomics and arrays of atomics only.
unsafe impl ZeroValid for RuntimeCounters {}

impl RuntimeCounters {
    pub fn new() -> Self {
        telemetry::zeroed()
    }

    pub fn apps_ref(&self) -> &AppTable {
        &self.apps
    }

    pub fn count_drop(&self, why: RuntimeDrop) {
        self.drops[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self, why: RuntimeDrop) -> u64 {
        self.drops[why as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_table_tracks_and_overflows() {
        let t: &AppTable = telemetry::SharedRegion::private::<RuntimeCounters>().apps_ref();
        let a = Pubkey::default(); // the System program: all-zero key
        t.record(&a, false, 100, 10);
        t.record(&a, true, 50, 30);
        let s = t.slots.iter().find(|s| s.program() == Some(a)).unwrap();
        assert_eq!(s.transactions.load(Ordering::Relaxed), 2);
        assert_eq!(s.errors.load(Ordering::Relaxed), 1);
        assert_eq!(s.compute_units.load(Ordering::Relaxed), 150);
        for _ in 0..MAX_APPS {
            t.record(&Pubkey::new_unique(), false, 1, 1);
        }
        assert_eq!(t.overflow_transactions.load(Ordering::Relaxed), 1);
    }
}
