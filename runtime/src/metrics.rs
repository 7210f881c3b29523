//! Counters the runtime tiles keep (one writer each, relaxed atomics), read by the RPC, the
//! benches, the metrics endpoint and `gigacompute monitor`. `#[repr(C)]` and valid when zeroed,
//! so they live in the shared metrics region.

use solana_pubkey::Pubkey;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use telemetry::{LatencyHistogram, TileStats, ZeroValid};

/// Workers that have a counter slot (the config allows at most this many).
pub const MAX_WORKERS: usize = 64;
/// Apps tracked individually (rows of [`AppTable`]); the rest are counted in its overflow
/// counters.
pub const MAX_APPS: usize = 64;
/// Islands with their own counters (more may exist; they are counted in the totals only).
pub const MAX_ISLANDS: usize = 16;
/// How long an app's row must have seen no executed transaction before a new app may take
/// it: two default Prometheus scrape intervals, so the row's final values are scraped before
/// it changes hands, and far longer than the scheduler takes to forget an idle app.
pub const APP_ROW_MIN_IDLE_NS: u64 = 120_000_000_000;

/// One app's row (keyed by the app key: top-level program by default). A row changes hands
/// only by [`AppTable::record`]; readers in other processes read it with [`AppSlot::read`].
#[repr(C, align(64))]
#[derive(Default)]
pub struct AppSlot {
    /// Non-zero while `key` and the counters are the current app's (zero while a claim
    /// rewrites them).
    used: AtomicU64,
    /// Times the row was claimed (0: never): a reader that sees it change knows the row went
    /// to another app, its counters restarted from zero.
    generation: AtomicU64,
    key: [AtomicU64; 4],
    /// When the app last had a transaction executed (monotonic ns).
    last_active: AtomicU64,
    pub transactions: AtomicU64,
    pub errors: AtomicU64,
    pub compute_units: AtomicU64,
    /// Received to executed, summed (mean = sum / transactions).
    pub latency_us_sum: AtomicU64,
    /// Received to executed.
    pub latency: LatencyHistogram,
    /// Admission to dispatch (hotspot scheduler), recorded when the transaction executes.
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
    /// `f` over the row's app and counters, or `None` if the row is free or changed hands
    /// while `f` read it (a seqlock read: `generation` before and after). `f` may see a
    /// half-rewritten row, whose result is then thrown away, so it should only read.
    pub fn read<R>(&self, f: impl FnOnce(Pubkey, &AppSlot) -> R) -> Option<R> {
        let generation = self.generation.load(Ordering::Acquire);
        if self.used.load(Ordering::Acquire) == 0 {
            return None;
        }
        let r = f(load_key(&self.key), self);
        // Pairs with the release fence in `AppTable::claim`: if anything `f` read was written
        // by a later claim, this load sees that claim's generation.
        fence(Ordering::Acquire);
        (self.generation.load(Ordering::Relaxed) == generation).then_some(r)
    }

    pub fn program(&self) -> Option<Pubkey> {
        self.read(|key, _| key)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every counter back to zero (the writer, claiming the row).
    fn reset(&self) {
        for c in [
            &self.transactions,
            &self.errors,
            &self.compute_units,
            &self.latency_us_sum,
            &self.conflicts,
            &self.reexecutions,
            &self.cu_deferred,
            &self.optimistic,
        ]
        .into_iter()
        .chain(&self.drops)
        {
            c.store(0, Ordering::Relaxed);
        }
        self.latency.reset();
        self.queue_delay.reset();
    }
}

/// Per-app counters with one writer (the bank thread, the hotspot scheduler included).
///
/// Bounded, with an eviction rule an attacker cannot steer: a row is claimed only by an app
/// that had a transaction executed (it paid a fee), never by a dropped one (free to send);
/// once every row is taken, a newly executing app takes the row idle the longest, and only
/// if it has been idle [`APP_ROW_MIN_IDLE_NS`], so an app in use keeps its row however many
/// new apps arrive. Anything else lands in the overflow counters.
#[repr(C)]
pub struct AppTable {
    pub slots: [AppSlot; MAX_APPS],
    /// Executed transactions of apps without a row.
    pub overflow_transactions: AtomicU64,
    /// Dropped transactions of apps without a row.
    pub overflow_drops: AtomicU64,
    /// Rows claimed, first claims and reclaims: a row changed hands whenever it moves.
    pub claims: AtomicU64,
    /// Rows taken from an idle app by a new one (churn).
    pub reclaims: AtomicU64,
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

/// One executed transaction, as [`AppTable::record`] counts it.
pub struct Executed {
    pub failed: bool,
    pub compute_units: u64,
    /// Received to executed.
    pub latency_us: u64,
    /// Admission to dispatch, where the scheduler measured it.
    pub queue_delay_us: Option<u64>,
}

impl AppTable {
    /// Where `key` is: `Ok(row)`, or `Err` with the first free row on its probe path (`None`
    /// when the table is full). Rows are taken in probe order while any is free and never
    /// freed again, so a key's row always lies before the first free one on its path.
    fn probe(&self, key: &Pubkey) -> Result<usize, Option<usize>> {
        let words = key_words(key);
        let start = (words[0] as usize) % MAX_APPS;
        for k in 0..MAX_APPS {
            let i = (start + k) % MAX_APPS;
            let slot = &self.slots[i];
            // `generation`, not `used`: a row being reclaimed is briefly unused, never free.
            if slot.generation.load(Ordering::Relaxed) == 0 {
                return Err(Some(i));
            }
            if (0..4).all(|w| slot.key[w].load(Ordering::Relaxed) == words[w]) {
                return Ok(i);
            }
        }
        Err(None)
    }

    /// The row of `key`, if it has one (never claims one).
    pub fn find(&self, key: &Pubkey) -> Option<usize> {
        self.probe(key).ok()
    }

    /// A row for `key` (not in the table): a free one, else the row idle the longest if idle
    /// for at least [`APP_ROW_MIN_IDLE_NS`]. The writer only.
    fn claim(&self, key: &Pubkey, free: Option<usize>, now_ns: u64) -> Option<usize> {
        let i = match free {
            Some(i) => i,
            None => {
                let (i, idlest) = self
                    .slots
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| s.last_active.load(Ordering::Relaxed))?;
                let last = idlest.last_active.load(Ordering::Relaxed);
                if now_ns.saturating_sub(last) < APP_ROW_MIN_IDLE_NS {
                    return None;
                }
                self.reclaims.fetch_add(1, Ordering::Relaxed);
                i
            }
        };
        let slot = &self.slots[i];
        // A seqlock write (see `AppSlot::read`): unused, new generation, then the rewrite,
        // then used again (release: a reader that sees it sees the whole new row).
        slot.used.store(0, Ordering::Relaxed);
        let generation = slot.generation.load(Ordering::Relaxed) + 1;
        slot.generation.store(generation, Ordering::Release);
        fence(Ordering::Release);
        store_key(&slot.key, key);
        slot.reset();
        slot.last_active.store(now_ns, Ordering::Relaxed);
        slot.used.store(1, Ordering::Release);
        self.claims.fetch_add(1, Ordering::Relaxed);
        Some(i)
    }

    /// An executed transaction of `app` at `now_ns` (monotonic): the only way an app gets
    /// a row.
    pub fn record(&self, app: &Pubkey, tx: &Executed, now_ns: u64) {
        let i = match self.probe(app) {
            Ok(i) => Some(i),
            Err(free) => self.claim(app, free, now_ns),
        };
        let Some(i) = i else {
            self.overflow_transactions.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let slot = &self.slots[i];
        slot.last_active.store(now_ns, Ordering::Relaxed);
        slot.transactions.fetch_add(1, Ordering::Relaxed);
        slot.errors
            .fetch_add(u64::from(tx.failed), Ordering::Relaxed);
        slot.compute_units
            .fetch_add(tx.compute_units, Ordering::Relaxed);
        slot.latency_us_sum
            .fetch_add(tx.latency_us, Ordering::Relaxed);
        slot.latency.record(tx.latency_us);
        if let Some(d) = tx.queue_delay_us {
            slot.queue_delay.record(d);
        }
    }

    /// A dropped transaction of `app`: counted in its row if it has one, else in
    /// `overflow_drops` (drops are free to cause, so they never claim a row).
    pub fn record_drop(&self, app: &Pubkey, why: RuntimeDrop) {
        match self.find(app) {
            Some(i) => self.slots[i].drops[why as usize].fetch_add(1, Ordering::Relaxed),
            None => self.overflow_drops.fetch_add(1, Ordering::Relaxed),
        };
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
    /// Scale-out: this node's cluster lease is not confirmed, so it executes nothing.
    NotServing,
    /// Scale-out: an account it locks is owned by another cluster node.
    NotOwner,
}

impl RuntimeDrop {
    pub const COUNT: usize = 14;
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
        RuntimeDrop::NotServing,
        RuntimeDrop::NotOwner,
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
            RuntimeDrop::NotServing => "not_serving",
            RuntimeDrop::NotOwner => "not_owner",
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
        /// Secondary account index entries (one per account and program, token owner or
        /// mint; bounded by rpc.account_index_max_keys).
        account_index_entries: Gauge(Count) "account_index_entries",
        /// Estimated memory of the secondary account indexes.
        account_index_bytes: Gauge(Bytes) "account_index_memory",
        /// Index entries refused at rpc.account_index_max_keys (their keys' queries are
        /// refused from then on).
        account_index_refused: Counter(Count) "account_index_refused",
        /// Index keys (programs, owners, mints) made incomplete by refused entries.
        account_index_incomplete_keys: Gauge(Count) "account_index_incomplete_keys",
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
        /// Compute units of successful transactions, each counted as at least 150 (Agave's
        /// cost of a System program instruction; builtins report none consumed): the work the
        /// tuner maximises.
        reward_cu: Counter(Count) "tuner_reward_compute_units",
        /// Time the commit tile spent committing slots.
        commit_ns: Counter(Nanoseconds) "commit",
        /// Failed slot commit attempts.
        commit_errors: Counter(Count) "storage_commit_errors",
        /// Transactions waiting in the sequencer.
        sequencer_depth: Gauge(Count) "sequencer_depth",
        /// Queued transactions moved to the head of their lane at their deadline
        /// (scheduler.max_wait_slots after admission, having paid the inclusion threshold).
        sequencing_promoted: Counter(Count) "sequencing_promoted",
        /// The inclusion threshold: the clearing price of slots that closed with a backlog
        /// (the priority at which their arrivals' estimated CU reaches the CU executed), the
        /// highest of the last 8 slots (fee·1e6 per compute unit).
        sequencing_inclusion_threshold: Gauge(Count) "sequencing_inclusion_threshold",
        /// Dispatched transactions that had a deadline (paid above the inclusion threshold)...
        sequencing_deadline_dispatched: Counter(Count) "sequencing_deadline_dispatched",
        /// ...of which dispatched after the slot following their deadline (the bound missed).
        sequencing_deadline_missed: Counter(Count) "sequencing_deadline_missed",
        /// Most slots past its deadline a transaction was dispatched.
        sequencing_deadline_late_max: Gauge(Count) "sequencing_deadline_late_max",
        /// Successful executions whose compute units the model had estimated...
        sequencing_cu_estimated: Counter(Count) "sequencing_cu_estimated",
        /// ...and the absolute error of those estimates, summed (mean = this / estimated).
        sequencing_cu_estimate_error: Counter(Count) "sequencing_cu_estimate_error",
        /// Transactions that used over twice the CU estimated for them (their shape is then
        /// estimated at the request).
        sequencing_cu_overruns: Counter(Count) "sequencing_cu_overruns",
        /// The runtime's fixed work per transaction in compute-unit equivalents, learnt from
        /// batch timings (what a transaction costs a worker beyond its compute units).
        sequencing_tx_overhead_cu: Gauge(Count) "sequencing_tx_overhead_cu",
        /// Transaction shapes the compute-unit model tracks (bounded).
        sequencing_shapes: Gauge(Count) "sequencing_shapes",
        /// Executions of new shapes not learnt because the model was full.
        sequencing_shapes_untracked: Counter(Count) "sequencing_shapes_untracked",
        /// Bytes of history segment files kept (history.retention_bytes bounds it).
        history_bytes: Gauge(Bytes) "history_disk",
        /// History segment files kept.
        history_segments: Gauge(Count) "history_segments",
        /// Slot records (blocks) the history holds (history.retention_slots bounds them).
        history_records: Gauge(Count) "history_records",
        /// Entries of the history's in-memory index: signatures and (account, transaction)
        /// pairs (history.max_index_entries bounds them).
        history_index_entries: Gauge(Count) "history_index_entries",
        /// Slots appended to the history.
        history_slots_appended: Counter(Count) "history_slots_appended",
        /// Oldest history segments dropped to stay within the retention.
        history_segments_dropped: Counter(Count) "history_segments_dropped",
        /// Bytes cut from history segments at open (a torn or corrupt tail).
        history_torn_bytes: Counter(Bytes) "history_torn",
        /// Failed history appends and syncs (retried), and records left out of it.
        history_write_errors: Counter(Count) "history_write_errors",
        /// Syncs of the history's active segment to its device.
        history_syncs: Counter(Count) "history_syncs",
        ;
        pub bank: TileStats,
        pub workers: [TileStats; MAX_WORKERS],
        pub commit: TileStats,
        /// The history tile (the `history` crate's).
        pub history: TileStats,
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
        /// The preconf tile.
        pub preconf_tile: TileStats,
        /// Pre-confirmations: calibration by stage and bucket, delivery.
        pub preconf: crate::preconf::PreconfCounters,
        /// The self-tuning runtime.
        pub tuner: crate::tuner::metrics::TunerCounters,
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

    const SEC: u64 = 1_000_000_000;

    fn table() -> &'static AppTable {
        telemetry::SharedRegion::private::<RuntimeCounters>().apps_ref()
    }

    fn tx(failed: bool, cu: u64) -> Executed {
        Executed {
            failed,
            compute_units: cu,
            latency_us: 10,
            queue_delay_us: Some(5),
        }
    }

    fn row<'a>(t: &'a AppTable, app: &Pubkey) -> &'a AppSlot {
        &t.slots[t.find(app).expect("a row")]
    }

    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }

    /// `MAX_APPS` apps, each with one transaction executed at `at`.
    fn fill(t: &AppTable, at: u64) -> Vec<Pubkey> {
        let apps: Vec<Pubkey> = (0..MAX_APPS).map(|_| Pubkey::new_unique()).collect();
        for a in &apps {
            t.record(a, &tx(false, 1), at);
        }
        assert!(apps.iter().all(|a| t.find(a).is_some()));
        apps
    }

    #[test]
    fn app_table_tracks_and_overflows() {
        let t = table();
        let a = Pubkey::default(); // the System program: all-zero key
        t.record(&a, &tx(false, 100), SEC);
        t.record(&a, &tx(true, 50), SEC);
        let s = t.slots.iter().find(|s| s.program() == Some(a)).unwrap();
        assert_eq!(get(&s.transactions), 2);
        assert_eq!(get(&s.errors), 1);
        assert_eq!(get(&s.compute_units), 150);
        assert_eq!(s.queue_delay.count(), 2);
        for _ in 0..MAX_APPS {
            t.record(&Pubkey::new_unique(), &tx(false, 1), SEC);
        }
        assert_eq!(get(&t.overflow_transactions), 1);
        assert_eq!(get(&t.reclaims), 0);
    }

    #[test]
    fn drops_never_claim_a_row() {
        let t = table();
        for _ in 0..10_000 {
            t.record_drop(&Pubkey::new_unique(), RuntimeDrop::Sanitize);
        }
        assert!(t.slots.iter().all(|s| s.program().is_none()));
        assert_eq!(get(&t.claims), 0);
        assert_eq!(get(&t.overflow_drops), 10_000);
        // An app with a row has its drops counted there.
        let a = Pubkey::new_unique();
        t.record(&a, &tx(false, 1), SEC);
        t.record_drop(&a, RuntimeDrop::Expired);
        assert_eq!(get(&row(t, &a).drops[RuntimeDrop::Expired as usize]), 1);
        assert_eq!(get(&t.overflow_drops), 10_000);
    }

    #[test]
    fn idle_rows_go_to_new_apps_after_the_minimum() {
        let t = table();
        let old = fill(t, SEC);
        let new = Pubkey::new_unique();
        // Not idle long enough yet: overflow.
        t.record(&new, &tx(false, 1), SEC + APP_ROW_MIN_IDLE_NS - 1);
        assert_eq!(t.find(&new), None);
        assert_eq!(get(&t.overflow_transactions), 1);
        // One of the old apps stays busy; the rest go idle past the minimum.
        let busy = old[7];
        t.record(&busy, &tx(false, 1), SEC + APP_ROW_MIN_IDLE_NS);
        let later = 2 * SEC + APP_ROW_MIN_IDLE_NS;
        t.record(&new, &tx(false, 1), later);
        let i = t.find(&new).expect("an idle row");
        assert_eq!(t.slots[i].program(), Some(new));
        assert_eq!(get(&t.reclaims), 1);
        assert_eq!(
            old.iter().filter(|a| t.find(a).is_some()).count(),
            MAX_APPS - 1
        );
        // More new apps take the other idle rows, never the busy app's.
        for _ in 0..MAX_APPS - 2 {
            t.record(&Pubkey::new_unique(), &tx(false, 1), later);
        }
        assert_eq!(get(&t.reclaims), MAX_APPS as u64 - 1);
        assert!(t.find(&busy).is_some());
        assert!(t.find(&new).is_some());
        t.record(&Pubkey::new_unique(), &tx(false, 1), later);
        assert_eq!(get(&t.overflow_transactions), 2);
    }

    #[test]
    fn active_apps_survive_a_flood_of_new_apps() {
        let t = table();
        let apps = fill(t, SEC);
        // Every app executes every half minimum idle time; a flood of fresh, fee-paying apps
        // keeps coming, each new app just before the old ones execute again.
        for round in 0..100u64 {
            let now = SEC + round * APP_ROW_MIN_IDLE_NS / 4;
            for _ in 0..1_000 {
                t.record(&Pubkey::new_unique(), &tx(false, 1), now);
            }
            if round % 2 == 0 {
                for a in &apps {
                    t.record(a, &tx(false, 1), now);
                }
            }
        }
        assert!(apps.iter().all(|a| t.find(a).is_some()));
        assert_eq!(get(&t.reclaims), 0);
        assert_eq!(get(&t.overflow_transactions), 100_000);
        assert!(apps.iter().all(|a| get(&row(t, a).transactions) == 51));
    }

    #[test]
    fn a_reused_row_has_a_new_generation_and_fresh_counters() {
        let t = table();
        let old = fill(t, SEC);
        for a in &old {
            t.record(a, &tx(true, 500), SEC);
            t.record_drop(a, RuntimeDrop::Expired);
        }
        let rows: Vec<(usize, u64)> = old
            .iter()
            .map(|a| {
                let i = t.find(a).unwrap();
                (i, t.slots[i].generation())
            })
            .collect();
        assert!(rows.iter().all(|&(_, g)| g == 1));
        let new = Pubkey::new_unique();
        t.record(&new, &tx(false, 7), SEC + APP_ROW_MIN_IDLE_NS);
        let i = t.find(&new).unwrap();
        let s = &t.slots[i];
        assert_eq!(s.generation(), 2);
        assert_eq!(
            s.read(|k, s| (
                k,
                get(&s.transactions),
                get(&s.errors),
                get(&s.compute_units)
            )),
            Some((new, 1, 0, 7))
        );
        assert!(s.drops.iter().all(|d| get(d) == 0));
        assert_eq!(s.latency.count(), 1);
        assert_eq!(s.queue_delay.count(), 1);
        // It replaced one old app; the others keep their rows.
        assert_eq!(
            old.iter().filter(|a| t.find(a).is_some()).count(),
            MAX_APPS - 1
        );
        // A reader that began before the row changed hands again discards what it read: the
        // others execute, so this row is now the idlest.
        let later = 3 * APP_ROW_MIN_IDLE_NS;
        for a in old.iter().filter(|a| t.find(a).is_some()) {
            t.record(a, &tx(false, 1), later);
        }
        let newer = Pubkey::new_unique();
        let read = s.read(|k, _| {
            t.record(&newer, &tx(false, 1), later + 1);
            k
        });
        assert_eq!(read, None);
        assert_eq!(s.program(), Some(newer));
        assert_eq!(s.generation(), 3);
        assert_eq!(get(&t.reclaims), 2);
    }
}
