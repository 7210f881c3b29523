//! The plain lock scheduler (`scheduler.kind = "lock"`), kept as the baseline the hotspot
//! scheduler is measured against. One global priority order (everything in lane 0);
//! [`LockScheduler`] takes read/write account locks per worker: a transaction may go to worker `w` only if none
//! of its locks conflict with what any *other* worker holds (in flight) or is being given in the
//! same pass. Transactions that touch the same accounts may share one worker's batch: the SVM
//! executes a batch in order and carries account updates from one transaction to the next, so
//! chaining them on one worker is serial execution. Invariant: no two workers ever hold
//! conflicting locks.
//!
//! A transaction that cannot be placed is skipped and its accounts are reserved for the rest of
//! the pass, so a lower-priority transaction touching them cannot overtake it.
//!
//! Optionally ([`LockScheduler::with_cu_caps`], `SchedulerConfig::lock_cu_caps`) it keeps
//! Agave's cost-tracker limits per slot: the block and each writable account (a transaction
//! reserves its requested compute units on every account it declares writable, corrected to
//! what it consumed when its batch completes). A transaction that would break a cap waits for
//! the next slot without reserving its accounts (it is not runnable in this slot, so it does
//! not hold back the transactions behind it). Off by default: the plain baseline has no caps.

use super::budget::{CuBudget, CuLimits};
use super::locks::LockSet;
use super::{Batch, Completion, ExecMode, Scheduler};
use crate::sequencer::{AppId, PreparedTx, SeqKey, Sequencer};
use ahash::HashMap;
use solana_pubkey::Pubkey;

/// What settling one dispatched transaction's reservation needs.
struct Reservation {
    app: AppId,
    requested: u64,
    writes: Vec<Pubkey>,
}

pub struct LockScheduler {
    held: Vec<LockSet>,
    batch_max: usize,
    /// How far down the queue one pass looks for runnable transactions.
    lookahead: usize,
    /// `lookahead` was configured (otherwise it follows `batch_max`).
    lookahead_set: bool,
    workers: usize,
    reserved: LockSet,
    next_batch: u64,
    /// Per-slot caps (block, writable account), when enabled.
    caps: Option<CuLimits>,
    budget: CuBudget,
    /// Reservations of the batches in flight, by batch id.
    in_flight: HashMap<u64, Vec<Reservation>>,
}

impl LockScheduler {
    pub fn new(workers: usize, batch_max: usize) -> Self {
        Self {
            held: (0..workers).map(|_| LockSet::default()).collect(),
            batch_max: batch_max.max(1),
            lookahead: batch_max.max(1) * workers.max(1) * 4,
            lookahead_set: false,
            workers: workers.max(1),
            reserved: LockSet::default(),
            next_batch: 0,
            caps: None,
            budget: CuBudget::default(),
            in_flight: HashMap::default(),
        }
    }

    /// Look at most `n` transactions down the queue per pass (at least one).
    pub fn with_lookahead(mut self, n: usize) -> Self {
        self.lookahead = n.max(1);
        self.lookahead_set = true;
        self
    }

    /// Keep the block and per-writable-account compute-unit caps of `limits` per slot, as
    /// Agave's cost tracker does. There is no per-app cap (Agave has none): `limits.app` is
    /// ignored.
    pub fn with_cu_caps(mut self, limits: CuLimits) -> Self {
        self.caps = Some(CuLimits {
            app: limits.block,
            ..limits
        });
        self
    }

    pub fn lookahead(&self) -> usize {
        self.lookahead
    }

    /// Workers (other than via chaining) whose locks the transaction conflicts with.
    fn conflicting_workers(&self, tx: &PreparedTx, out: &mut Vec<usize>) {
        out.clear();
        for (w, held) in self.held.iter().enumerate() {
            if held.conflicts_any(&tx.locks) {
                out.push(w);
            }
        }
    }
}

impl Scheduler for LockScheduler {
    fn route(&mut self, tx: &mut PreparedTx) {
        tx.lane = 0;
    }

    fn schedule(&mut self, queue: &mut Sequencer, idle: &[usize], out: &mut Vec<Batch>) {
        if idle.is_empty() || queue.is_empty() {
            return;
        }
        self.reserved.clear();
        let mut picked: HashMap<usize, Vec<SeqKey>> = HashMap::default();
        let mut conflicts = Vec::new();
        let mut full = 0;
        for (key, tx) in queue.lane_iter(0).take(self.lookahead) {
            if let Some(limits) = &self.caps
                && self.budget.check(limits, tx, true).is_err()
            {
                // Over a cap until the slot closes: not runnable now, holds nothing back.
                continue;
            }
            if self.reserved.conflicts_any(&tx.locks) {
                self.reserved.add_all(&tx.locks);
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
                self.reserved.add_all(&tx.locks);
                continue;
            };
            self.held[w].add_all(&tx.locks);
            if self.caps.is_some() {
                self.budget.reserve(tx, true);
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
            let txs: Vec<PreparedTx> = keys.iter().filter_map(|k| queue.remove(0, k)).collect();
            self.next_batch += 1;
            if self.caps.is_some() {
                let reservations = txs
                    .iter()
                    .map(|t| Reservation {
                        app: t.app,
                        requested: t.reserved_cu(),
                        writes: t.writes().copied().collect(),
                    })
                    .collect();
                self.in_flight.insert(self.next_batch, reservations);
            }
            out.push(Batch {
                id: self.next_batch,
                worker: w,
                mode: ExecMode::Locked,
                txs,
            });
        }
    }

    fn complete(&mut self, done: &Completion) {
        self.held[done.worker].clear();
        if let Some(reservations) = self.in_flight.remove(&done.batch) {
            for (r, used) in reservations.iter().zip(done.compute_units) {
                self.budget.settle(r.app, &r.writes, r.requested, *used);
            }
        }
    }

    fn slot_closed(&mut self, _queue: &mut Sequencer) {
        self.budget.reset();
    }

    /// The baseline has one live knob: its batch size (the scan follows it unless set).
    fn retune(&mut self, k: &crate::tuner::Knobs) {
        self.batch_max = k.batch_max.max(1);
        if !self.lookahead_set {
            self.lookahead = self.batch_max * self.workers * 4;
        }
    }

    fn name(&self) -> &'static str {
        "lock"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequencer::tests::fake_tx;
    use rand::{Rng, SeedableRng};

    use crate::scheduler::locks_conflict as conflict;
    use crate::sequencer::Eviction;
    use solana_pubkey::Pubkey;

    /// Random conflicting workloads: no two workers ever hold conflicting locks, and every
    /// transaction is eventually scheduled exactly once.
    #[test]
    fn no_two_workers_hold_conflicting_locks() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let keys: Vec<Pubkey> = (0..12).map(|_| Pubkey::new_unique()).collect();
        let workers = 3;
        let mut sched = LockScheduler::new(workers, 4);
        let mut seq = Sequencer::new(10_000, Eviction::Global);
        let total: usize = 2_000;
        for i in 0..total {
            let n = rng.gen_range(1..4);
            let locks = (0..n)
                .map(|_| (keys[rng.gen_range(0..keys.len())], rng.gen_bool(0.5)))
                .collect::<Vec<_>>();
            let mut dedup = locks.clone();
            dedup.sort_by_key(|(k, _)| *k);
            dedup.dedup_by_key(|(k, _)| *k);
            let _ = seq.push(fake_tx(i as u64, rng.gen_range(0..5), dedup));
        }
        let mut in_flight: Vec<Option<Vec<PreparedTx>>> = (0..workers).map(|_| None).collect();
        let mut done = 0;
        let mut rounds = 0;
        while done < total {
            rounds += 1;
            assert!(rounds < 100_000, "scheduler stalled");
            let idle: Vec<usize> = (0..workers).filter(|w| in_flight[*w].is_none()).collect();
            let mut out = Vec::new();
            sched.schedule(&mut seq, &idle, &mut out);
            for b in out {
                assert!(in_flight[b.worker].is_none());
                in_flight[b.worker] = Some(b.txs);
            }
            // Invariant over every pair of workers.
            for a in 0..workers {
                for b in a + 1..workers {
                    let (Some(x), Some(y)) = (&in_flight[a], &in_flight[b]) else {
                        continue;
                    };
                    for t in x {
                        for u in y {
                            assert!(
                                !conflict(&t.locks, &u.locks),
                                "workers {a} and {b} conflict"
                            );
                        }
                    }
                }
            }
            // Finish a random busy worker.
            let busy: Vec<usize> = (0..workers).filter(|w| in_flight[*w].is_some()).collect();
            if let Some(&w) = busy.get(rng.gen_range(0..busy.len().max(1))) {
                done += in_flight[w].take().expect("busy").len();
                sched.complete(&Completion {
                    worker: w,
                    batch: 0,
                    compute_units: &[],
                    real_writes: &[],
                });
            }
        }
        assert!(seq.is_empty());
    }

    #[test]
    fn highest_priority_runs_first_and_blocked_accounts_are_reserved() {
        let k = Pubkey::new_unique();
        let other = Pubkey::new_unique();
        let mut sched = LockScheduler::new(2, 8);
        let mut seq = Sequencer::new(100, Eviction::Global);
        let _ = seq.push(fake_tx(1, 1, vec![(k, true)]));
        let _ = seq.push(fake_tx(2, 9, vec![(k, true)]));
        let _ = seq.push(fake_tx(3, 5, vec![(other, true)]));
        // Worker 0 busy with k: nothing touching k may start elsewhere.
        let mut out = Vec::new();
        sched.schedule(&mut seq, &[0], &mut out);
        let first: Vec<u64> = out[0].txs.iter().map(|t| t.budget.priority()).collect();
        assert!(first[0] >= first[first.len() - 1]);
        // Both k-writers chain on worker 0 in priority order; `other` too (free).
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].txs.len(), 3);
        let order: Vec<u64> = out[0].txs.iter().map(|t| t.packet.received_ns).collect();
        assert_eq!(order, vec![2, 3, 1]);
    }

    #[test]
    fn account_caps_defer_to_the_next_slot_and_settle_to_use() {
        let k = Pubkey::new_unique();
        let other = Pubkey::new_unique();
        let limits = CuLimits {
            block: 1_000_000,
            account: 2_500,
            app: 1_000,
        };
        let mut sched = LockScheduler::new(1, 64).with_cu_caps(limits);
        let mut seq = Sequencer::new(100, Eviction::Global);
        for i in 0..5 {
            let _ = seq.push(fake_tx(i, 5, vec![(k, true)])); // each requests 1,000
        }
        let _ = seq.push(fake_tx(9, 1, vec![(other, true)]));
        let mut out = Vec::new();
        sched.schedule(&mut seq, &[0], &mut out);
        // Two k-writers fit the account cap; `other` is not held back by the deferred ones,
        // and no app cap applies (limits.app is ignored).
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].txs.len(), 3);
        // They used 100 each: room for two more in the same slot.
        sched.complete(&Completion {
            worker: 0,
            batch: out[0].id,
            compute_units: &[100, 100, 100],
            real_writes: &[],
        });
        out.clear();
        sched.schedule(&mut seq, &[0], &mut out);
        assert_eq!(out[0].txs.len(), 2);
        sched.complete(&Completion {
            worker: 0,
            batch: out[0].id,
            compute_units: &[1_000, 1_000],
            real_writes: &[],
        });
        out.clear();
        sched.schedule(&mut seq, &[0], &mut out);
        assert!(out.is_empty(), "the account is at its cap for this slot");
        sched.slot_closed(&mut seq);
        sched.schedule(&mut seq, &[0], &mut out);
        assert_eq!(out[0].txs.len(), 1);
        assert!(seq.is_empty());
    }

    #[test]
    fn uncapped_by_default_and_lookahead_configurable() {
        let k = Pubkey::new_unique();
        let mut seq = Sequencer::new(10_000, Eviction::Global);
        for i in 0..100 {
            let _ = seq.push(fake_tx(i, 5, vec![(k, true)]));
        }
        let mut sched = LockScheduler::new(1, 200);
        assert_eq!(sched.lookahead(), 800);
        let mut out = Vec::new();
        sched.schedule(&mut seq, &[0], &mut out);
        assert_eq!(out[0].txs.len(), 100, "no cap: 100,000 CU on one account");
        let sched = LockScheduler::new(2, 64).with_lookahead(100_000);
        assert_eq!(sched.lookahead(), 100_000);
    }
}
