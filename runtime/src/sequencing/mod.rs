//! What a queued transaction's priority is, and the promise that a paying one is not starved.
//!
//! Two rules (`scheduler.priority`):
//! - [`PriorityRule::Requested`]: fee per *requested* compute unit
//!   ([`TxBudget::priority`]), Agave's rule. A transaction that pads its CU limit ranks
//!   lower than an honest one paying the same; one that keeps the default 200k limit and
//!   uses 300 ranks as if it used 200k.
//! - [`PriorityRule::Performance`] (the default): fee per unit of what the transaction will
//!   really cost the appliance: `fee·1e6 / (ĉ + c₀ + c_contention + c_cold + 1)` where
//!   - ĉ is the CU it will consume, learnt per shape from execution ([`cu_model`]);
//!   - c₀ is the runtime's fixed work per transaction in CU equivalents, learnt from batch
//!     timings ([`overhead`]): what makes three transfers in one transaction cheaper per
//!     unit of work than three transactions;
//!   - c_contention = κ·ĉ·Σ ρ/(1−ρ) over its writable accounts, ρ the account's demanded CU
//!     per slot over the per-account cap (≤ 0.9): the M/D/1 wait it adds to the account's
//!     other writers (κ = `scheduler.contention_weight`);
//!   - c_cold = cold reads × `scheduler.cold_read_cu` (accounts the store had to read from
//!     its devices when the transaction was admitted).
//!
//!   ĉ does not depend on the requested limit (beyond never exceeding it), so padding neither
//!   wins nor loses: a padded transaction ties an honest one of the same fee and shape, and
//!   the earlier arrival goes first. The per-slot CU caps reserve ĉ for it while it runs
//!   (Agave's cost tracker reserves the request), settled to what it used when it completes;
//!   a slot can overshoot a cap by at most what the transactions in flight use beyond their
//!   estimates.
//!
//! **Starvation bound** (Performance): the *inclusion threshold* τ is the clearing price of
//! recent congested slots: take what a slot queued, highest priority first, and τ is the
//! priority at which its estimated CU adds up to the CU the workers executed in that slot
//! (0 for a slot that closed with an empty queue); τ is the highest over the last
//! [`THRESHOLD_SLOTS`] slots (a surge raises it the next slot; it falls back only once the
//! surge has been over for that long, so the promise stays conservative). Arrivals above τ are, by construction, no more work than a slot
//! executes. A transaction admitted at slot s with priority above τ gets the deadline
//! s + `scheduler.max_wait_slots`; if it is still queued when that slot closes it moves to the
//! head of its lane ([`Sequencer::promote_overdue`]), ahead of every newcomer. From there it
//! waits only for the overdue transactions ahead of it, its locks and the per-slot CU caps: it
//! runs by slot s + K + 1 unless more came due at once than a slot executes, or its blockhash
//! expires first. Dispatches after deadline + 1 are counted
//! (`sequencing_deadline_missed`, with the worst lateness in `sequencing_deadline_late_max`).
//!
//! A transaction at or below τ gets no promise: it competes on priority alone, and a full
//! queue evicts the lowest first.

pub mod cu_model;
pub mod overhead;

#[cfg(doc)]
use crate::compute_budget::TxBudget;

use crate::metrics::RuntimeCounters;
use crate::sequencer::{PreparedTx, Sequencer};
use serde::{Deserialize, Serialize};
use solana_transaction::sanitized::SanitizedTransaction;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;

pub use cu_model::CuModel;
pub use overhead::Overhead;

/// Slots the inclusion threshold is the highest clearing price of.
pub const THRESHOLD_SLOTS: usize = 8;
/// An account's utilisation is counted as at most this (ρ/(1−ρ) ≤ 9 per account).
pub const MAX_RHO: f64 = 0.9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriorityRule {
    /// Fee per requested compute unit.
    Requested,
    /// Fee per unit of what the transaction will really use.
    #[default]
    Performance,
}

/// The sequencing knobs (from `[scheduler]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequencingConfig {
    pub rule: PriorityRule,
    /// Slots a transaction paying at least the inclusion threshold waits before it is
    /// promoted to the head of its lane (0: never promoted).
    pub max_wait_slots: u64,
    pub contention_weight: f64,
    pub cold_read_cu: u64,
}

/// The bank's sequencing state: prices transactions as they are queued, learns from their
/// execution, tracks the inclusion threshold and promotes overdue transactions.
pub struct Sequencing {
    cfg: SequencingConfig,
    cu: CuModel,
    overhead: Overhead,
    threshold: InclusionThreshold,
    counters: &'static RuntimeCounters,
}

impl Sequencing {
    pub fn new(cfg: SequencingConfig, counters: &'static RuntimeCounters) -> Self {
        Self {
            cfg,
            cu: CuModel::default(),
            overhead: Overhead::default(),
            threshold: InclusionThreshold::default(),
            counters,
        }
    }

    pub fn rule(&self) -> PriorityRule {
        self.cfg.rule
    }

    /// Set a transaction's shape and, under the performance rule, the compute units it will
    /// use (what the per-slot caps reserve for it and the scheduler counts as its accounts'
    /// demand: a padded request holds no block space from others). Before it is routed.
    pub fn estimate(&self, tx: &mut PreparedTx) {
        tx.shape = shape_of(&tx.sanitized);
        if self.cfg.rule == PriorityRule::Performance {
            tx.reserve_cu = Some(self.cu.estimate(tx.shape, tx.requested_cu()));
        }
    }

    /// Set the priority and deadline of a transaction about to be queued, after
    /// [`Self::estimate`]. `pressure` is Σ ρ/(1−ρ) over its writable accounts (the
    /// scheduler's [`write_pressure`](crate::scheduler::Scheduler::write_pressure)).
    pub fn price(&mut self, tx: &mut PreparedTx, pressure: f64, open_slot: u64) {
        match self.cfg.rule {
            PriorityRule::Requested => tx.priority = tx.budget.priority(),
            PriorityRule::Performance => {
                tx.priority = per_unit(tx.budget.total_fee(), self.cost(tx, pressure));
                if self.cfg.max_wait_slots > 0 && tx.priority > self.threshold.get() {
                    tx.deadline_slot = open_slot.saturating_add(self.cfg.max_wait_slots);
                }
            }
        }
    }

    /// A transaction priced at `priority`, estimated at `cu`, was queued (what the queue
    /// refused does not move the threshold).
    pub fn queued(&mut self, priority: u64, cu: u64) {
        self.threshold.arrived(priority, cu);
    }

    /// What the transaction will cost, in compute units (Performance rule), after
    /// [`Self::estimate`].
    pub fn cost(&self, tx: &PreparedTx, pressure: f64) -> f64 {
        let cu = tx.reserved_cu() as f64;
        let contention = self.cfg.contention_weight * cu * pressure.max(0.0);
        let cold = f64::from(tx.cold_reads) * self.cfg.cold_read_cu as f64;
        cu + self.overhead.cu() as f64 + contention + cold
    }

    /// A batch of `n` transactions that consumed `cu` compute units ran for `ns` on a worker:
    /// teach the per-transaction overhead.
    pub fn batch_done(&mut self, n: usize, cu: u64, ns: u64) {
        self.overhead.batch(n, cu, ns);
        self.counters
            .sequencing_tx_overhead_cu
            .store(self.overhead.cu(), Ordering::Relaxed);
    }

    /// A queued transaction went to a worker in slot `slot`: account for its deadline.
    pub fn dispatched(&self, tx: &PreparedTx, slot: u64) {
        if tx.deadline_slot == u64::MAX {
            return;
        }
        let late = slot.saturating_sub(tx.deadline_slot);
        let c = &self.counters;
        c.sequencing_deadline_dispatched
            .fetch_add(1, Ordering::Relaxed);
        if late > 1 {
            c.sequencing_deadline_missed.fetch_add(1, Ordering::Relaxed);
        }
        c.sequencing_deadline_late_max
            .fetch_max(late, Ordering::Relaxed);
    }

    /// A transaction executed and consumed `cu`; only successes teach the model. Returns the
    /// shape it showed to be unreliable (an overrun), if it did: the queued transactions of
    /// that shape must reserve their request again
    /// ([`Sequencer::reserve_requested`]).
    pub fn executed(&mut self, tx: &PreparedTx, cu: u64, ok: bool) -> Option<u64> {
        self.threshold.executed(cu);
        // Failures too: a transaction that overran what the caps reserved for it, whatever
        // its result, suspends its shape's estimates.
        let overrun = tx.reserved_cu() < tx.requested_cu()
            && self.cu.check_overrun(tx.shape, tx.reserved_cu(), cu);
        if overrun {
            self.counters
                .sequencing_cu_overruns
                .fetch_add(1, Ordering::Relaxed);
        }
        let overrun = overrun.then_some(tx.shape);
        if !ok {
            return overrun;
        }
        if self.cu.knows(tx.shape) {
            let estimate = self.cu.estimate(tx.shape, tx.requested_cu());
            let c = &self.counters;
            c.sequencing_cu_estimated.fetch_add(1, Ordering::Relaxed);
            c.sequencing_cu_estimate_error
                .fetch_add(estimate.abs_diff(cu), Ordering::Relaxed);
        }
        if !self.cu.learn(tx.shape, cu) {
            self.counters
                .sequencing_shapes_untracked
                .fetch_add(1, Ordering::Relaxed);
        }
        overrun
    }

    /// Slot `closed` closed with what is left in `queue`: roll the threshold, promote what
    /// is overdue for the next slot.
    pub fn slot_closed(&mut self, queue: &mut Sequencer, closed: u64) {
        self.threshold.roll(!queue.is_empty());
        self.cu.slot_closed(closed);
        let promoted = queue.promote_overdue(closed.saturating_add(1));
        let c = &self.counters;
        c.sequencing_promoted
            .fetch_add(promoted as u64, Ordering::Relaxed);
        c.sequencing_inclusion_threshold
            .store(self.threshold.get(), Ordering::Relaxed);
        c.sequencing_shapes
            .store(self.cu.len() as u64, Ordering::Relaxed);
    }

    pub fn inclusion_threshold(&self) -> u64 {
        self.threshold.get()
    }

    pub fn cu_model(&self) -> &CuModel {
        &self.cu
    }
}

/// Lamports of fee per unit of `cost`, scaled by 1e6 (the same scale as
/// [`TxBudget::priority`]).
pub fn per_unit(fee: u64, cost: f64) -> u64 {
    let fee = fee as f64 * 1e6;
    let p = fee / (cost.max(0.0) + 1.0);
    if p >= u64::MAX as f64 {
        u64::MAX
    } else {
        p as u64
    }
}

/// A transaction's shape: its top-level instructions' programs, first data bytes and data
/// lengths rounded up to a power of two (a 700-byte memo is not a 20-byte one), the
/// compute-budget instructions left out (a padded request must not change the shape).
pub fn shape_of(tx: &SanitizedTransaction) -> u64 {
    let message = tx.message();
    let keys = message.account_keys();
    let mut h = ahash::RandomState::with_seeds(0x5eed, 0xc0de, 0xcafe, 0xf00d).build_hasher();
    for ix in message.instructions() {
        let Some(program) = keys.get(usize::from(ix.program_id_index)) else {
            continue;
        };
        if *program == solana_sdk_ids::compute_budget::ID {
            continue;
        }
        h.write(program.as_ref());
        h.write_u16(ix.data.first().map_or(0x100, |b| u16::from(*b)));
        h.write_u8(ix.data.len().next_power_of_two().trailing_zeros() as u8);
    }
    h.finish()
}

/// Price buckets per octave of the clearing-price histogram (a bucket spans 1/8 of an
/// octave: the threshold is exact to within 9%).
const BUCKETS_PER_OCTAVE: usize = 8;
const BUCKETS: usize = 64 * BUCKETS_PER_OCTAVE;

/// The histogram bucket of a priority: 0..8 exactly, then 8 per power of two.
fn bucket(p: u64) -> usize {
    if p < BUCKETS_PER_OCTAVE as u64 {
        return p as usize;
    }
    let octave = 63 - p.leading_zeros() as usize;
    let step = ((p >> (octave - 3)) & 7) as usize;
    octave * BUCKETS_PER_OCTAVE + step
}

/// The lowest priority in bucket `b`.
fn bucket_floor(b: usize) -> u64 {
    if b < BUCKETS_PER_OCTAVE {
        return b as u64;
    }
    let (octave, step) = (b / BUCKETS_PER_OCTAVE, (b % BUCKETS_PER_OCTAVE) as u64);
    (8 + step) << (octave - 3)
}

/// The highest priority in bucket `b`.
fn bucket_ceiling(b: usize) -> u64 {
    if b + 1 >= BUCKETS {
        u64::MAX
    } else {
        bucket_floor(b + 1) - 1
    }
}

/// The inclusion threshold: see the module documentation. A slot's arrivals are kept as
/// estimated CU per price bucket: constant memory whatever arrives, and none left out.
#[derive(Debug)]
struct InclusionThreshold {
    /// Estimated CU of the open slot's queued arrivals, per price bucket.
    arrivals: Box<[u64; BUCKETS]>,
    /// CU executed in the open slot.
    executed_cu: u64,
    recent: VecDeque<u64>,
    highest: u64,
}

impl Default for InclusionThreshold {
    fn default() -> Self {
        Self {
            arrivals: Box::new([0; BUCKETS]),
            executed_cu: 0,
            recent: VecDeque::new(),
            highest: 0,
        }
    }
}

impl InclusionThreshold {
    fn arrived(&mut self, priority: u64, cu: u64) {
        let b = &mut self.arrivals[bucket(priority)];
        *b = b.saturating_add(cu.max(1));
    }

    fn executed(&mut self, cu: u64) {
        self.executed_cu = self.executed_cu.saturating_add(cu);
    }

    /// The clearing price of the slot that closes: the top of the bucket where the arrivals'
    /// CU, highest price first, reaches what executed (only what pays more is promised); if
    /// they never reach it, just under the lowest arrival's bucket (every arrival fits).
    fn clearing_price(&self, executed: u64) -> u64 {
        let mut cu = 0u64;
        let mut lowest = None;
        for b in (0..BUCKETS).rev() {
            if self.arrivals[b] == 0 {
                continue;
            }
            cu = cu.saturating_add(self.arrivals[b]);
            if cu >= executed {
                return bucket_ceiling(b);
            }
            lowest = Some(b);
        }
        lowest.map_or(0, |b| bucket_floor(b).saturating_sub(1))
    }

    fn roll(&mut self, backlog: bool) {
        let executed = std::mem::take(&mut self.executed_cu);
        let tau = if !backlog {
            0
        } else if executed == 0 {
            // A backlog and nothing finished (workers busy all slot): unchanged.
            self.recent.back().copied().unwrap_or(0)
        } else {
            self.clearing_price(executed)
        };
        self.arrivals.fill(0);
        if self.recent.len() == THRESHOLD_SLOTS {
            self.recent.pop_front();
        }
        self.recent.push_back(tau);
        self.highest = self.recent.iter().copied().max().unwrap_or(0);
    }

    fn get(&self) -> u64 {
        self.highest
    }
}

#[cfg(test)]
mod tests;
