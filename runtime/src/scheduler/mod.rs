//! Scheduling: which queued transactions run next, on which worker, and how.
//!
//! The bank owns the [`Sequencer`] and one [`Scheduler`]; it calls [`Scheduler::route`] when it
//! admits a transaction (which lane it queues in), [`Scheduler::schedule`] when workers are
//! idle, [`Scheduler::complete`] when a worker hands its batch back, [`Scheduler::committed`]
//! when an optimistic batch's results are validated and applied, and
//! [`Scheduler::slot_closed`] at every slot boundary.
//!
//! Two schedulers:
//! - [`LockScheduler`] (`scheduler.kind = "lock"`): one global priority order, read/write
//!   account locks per worker. The plain baseline; the benches also run it with Agave's
//!   per-slot block and per-account compute-unit caps and a deeper scan
//!   (`SchedulerConfig::lock_cu_caps`, `lock_lookahead`).
//! - [`HotspotScheduler`] (`"hotspot"`, the default): apps in their own lanes under weighted
//!   fair queuing, per-slot compute-unit caps, hot accounts in islands, and hybrid
//!   pessimistic/optimistic concurrency chosen per app.

pub mod apps;
pub mod budget;
pub mod config;
pub mod ewma;
pub mod hotspot;
pub mod islands;
pub mod lock;
pub mod locks;

pub use config::{SchedulerChoice, SchedulerConfig};
pub use hotspot::HotspotScheduler;
pub use lock::LockScheduler;

use crate::sequencer::{PreparedTx, Sequencer};

/// How a worker runs a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecMode {
    /// Under account locks: the worker applies results directly; no other worker touches
    /// these accounts meanwhile.
    Locked,
    /// Without locks against other optimistic batches: the worker executes against the current
    /// state and hands back its writes; the bank validates them in batch order and re-executes
    /// on conflict.
    Optimistic,
}

pub struct Batch {
    /// Unique, increasing in dispatch order (optimistic batches commit in this order).
    pub id: u64,
    pub worker: usize,
    pub mode: ExecMode,
    pub txs: Vec<PreparedTx>,
}

/// What the bank learnt from a finished batch.
pub struct Completion<'a> {
    pub worker: usize,
    pub batch: u64,
    /// Compute units each transaction consumed (0 if the SVM rejected it), in batch order.
    pub compute_units: &'a [u64],
    /// Optimistic batch: (transaction index, account) for every account it really changed.
    pub real_writes: &'a [(u32, solana_pubkey::Pubkey)],
}

pub trait Scheduler: Send {
    /// Classify an admitted transaction: set its app and the lane it queues in.
    fn route(&mut self, tx: &mut PreparedTx);

    /// Move transactions from `queue` into batches for the `idle` workers.
    fn schedule(&mut self, queue: &mut Sequencer, idle: &[usize], out: &mut Vec<Batch>);

    /// The worker finished a batch (for an optimistic batch: executed, not yet validated).
    fn complete(&mut self, done: &Completion);

    /// An optimistic batch was validated and applied after `reexecutions` re-executions.
    fn committed(&mut self, _batch: u64, _reexecutions: u32) {}

    /// A slot closed (all batches done): per-slot budgets reset, statistics roll over.
    fn slot_closed(&mut self, _queue: &mut Sequencer) {}

    /// Σ ρ/(1−ρ) over the transaction's writable accounts, ρ an account's demanded write CU
    /// per slot over its cap (at most 0.9): the contention it adds (0 where the scheduler
    /// keeps no heat). Call after [`Self::route`].
    fn write_pressure(&self, _tx: &PreparedTx) -> f64 {
        0.0
    }

    /// The hot accounts whose writers are best kept together (the islands), with their
    /// writers per slot and worker: the routes of `net.routing = "affinity"`. Call after
    /// [`Self::slot_closed`].
    fn hot_accounts(&self, _out: &mut Vec<dataplane::route::HotAccount>) {}

    /// Take the live knobs' values ([`crate::tuner::Knobs`]) from the next pass on. Called
    /// at a slot close, after [`Self::slot_closed`] (every batch done, the per-slot budget
    /// reset), so no cap changes under a half-spent budget. Each scheduler reads the knobs
    /// it has.
    fn retune(&mut self, _knobs: &crate::tuner::Knobs) {}

    fn name(&self) -> &'static str;
}

/// Conflict-free batches for tests: no two batches in flight at once hold conflicting locks
/// unless at least one is optimistic.
#[cfg(test)]
pub(crate) fn locks_conflict(
    a: &[(solana_pubkey::Pubkey, bool)],
    b: &[(solana_pubkey::Pubkey, bool)],
) -> bool {
    a.iter()
        .any(|(k, w)| b.iter().any(|(k2, w2)| k == k2 && (*w || *w2)))
}
