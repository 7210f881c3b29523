//! Scheduling: which queued transactions run next, on which worker.
//!
//! The [`Scheduler`] trait is the seam the hotspot-aware scheduler replaces. [`LockScheduler`]
//! takes read/write account locks per worker: a transaction may go to worker `w` only if none
//! of its locks conflict with what any *other* worker holds (in flight) or is being given in the
//! same pass. Transactions that touch the same accounts may share one worker's batch: the SVM
//! executes a batch in order and carries account updates from one transaction to the next, so
//! chaining them on one worker is serial execution. Invariant: no two workers ever hold
//! conflicting locks.
//!
//! A transaction that cannot be placed is skipped and its accounts are reserved for the rest of
//! the pass, so a lower-priority transaction touching them cannot overtake it.

use crate::sequencer::{PreparedTx, SeqKey, Sequencer};
use ahash::{HashMap, HashSet};
use solana_pubkey::Pubkey;

pub trait Scheduler: Send {
    /// Move transactions from `queue` into batches for the `idle` workers.
    fn schedule(
        &mut self,
        queue: &mut Sequencer,
        idle: &[usize],
        out: &mut Vec<(usize, Vec<PreparedTx>)>,
    );

    /// `worker` finished its batch: release its locks.
    fn complete(&mut self, worker: usize);

    fn name(&self) -> &'static str;
}

#[derive(Default)]
struct LockSet {
    writes: HashSet<Pubkey>,
    reads: HashSet<Pubkey>,
}

impl LockSet {
    fn conflicts(&self, key: &Pubkey, writable: bool) -> bool {
        self.writes.contains(key) || (writable && self.reads.contains(key))
    }

    fn add(&mut self, key: Pubkey, writable: bool) {
        if writable {
            self.writes.insert(key);
        } else {
            self.reads.insert(key);
        }
    }

    fn clear(&mut self) {
        self.writes.clear();
        self.reads.clear();
    }
}

pub struct LockScheduler {
    held: Vec<LockSet>,
    batch_max: usize,
    /// How far down the queue one pass looks for runnable transactions.
    lookahead: usize,
    reserved: LockSet,
}

impl LockScheduler {
    pub fn new(workers: usize, batch_max: usize) -> Self {
        Self {
            held: (0..workers).map(|_| LockSet::default()).collect(),
            batch_max: batch_max.max(1),
            lookahead: batch_max.max(1) * workers.max(1) * 4,
            reserved: LockSet::default(),
        }
    }

    /// Workers (other than via chaining) whose locks the transaction conflicts with.
    fn conflicting_workers(&self, tx: &PreparedTx, out: &mut Vec<usize>) {
        out.clear();
        for (w, held) in self.held.iter().enumerate() {
            if tx.locks.iter().any(|(k, wr)| held.conflicts(k, *wr)) {
                out.push(w);
            }
        }
    }
}

impl Scheduler for LockScheduler {
    fn schedule(
        &mut self,
        queue: &mut Sequencer,
        idle: &[usize],
        out: &mut Vec<(usize, Vec<PreparedTx>)>,
    ) {
        if idle.is_empty() || queue.is_empty() {
            return;
        }
        self.reserved.clear();
        let mut picked: HashMap<usize, Vec<SeqKey>> = HashMap::default();
        let mut conflicts = Vec::new();
        let mut full = 0;
        for (key, tx) in queue.iter().take(self.lookahead) {
            if tx.locks.iter().any(|(k, w)| self.reserved.conflicts(k, *w)) {
                tx.locks.iter().for_each(|(k, w)| self.reserved.add(*k, *w));
                continue;
            }
            self.conflicting_workers(tx, &mut conflicts);
            let target = match conflicts.as_slice() {
                // Free of every lock: the idle worker with the smallest batch so far.
                [] => idle
                    .iter()
                    .copied()
                    .min_by_key(|w| picked.get(w).map_or(0, |v| v.len())),
                // Conflicts only with one idle worker's new batch: chain onto it.
                [w] if idle.contains(w) => Some(*w),
                _ => None,
            };
            let Some(w) = target.filter(|w| picked.get(w).map_or(0, |v| v.len()) < self.batch_max)
            else {
                tx.locks.iter().for_each(|(k, w)| self.reserved.add(*k, *w));
                continue;
            };
            for (k, wr) in &tx.locks {
                self.held[w].add(*k, *wr);
            }
            let batch = picked.entry(w).or_default();
            batch.push(*key);
            if batch.len() == self.batch_max {
                full += 1;
                if full == idle.len() {
                    break;
                }
            }
        }
        for (w, keys) in picked {
            let txs: Vec<PreparedTx> = keys.iter().filter_map(|k| queue.remove(k)).collect();
            out.push((w, txs));
        }
    }

    fn complete(&mut self, worker: usize) {
        self.held[worker].clear();
    }

    fn name(&self) -> &'static str {
        "lock"
    }
}
