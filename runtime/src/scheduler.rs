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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequencer::tests::fake_tx;
    use rand::{Rng, SeedableRng};

    fn conflict(a: &[(Pubkey, bool)], b: &[(Pubkey, bool)]) -> bool {
        a.iter()
            .any(|(k, w)| b.iter().any(|(k2, w2)| k == k2 && (*w || *w2)))
    }

    /// Random conflicting workloads: no two workers ever hold conflicting locks, and every
    /// transaction is eventually scheduled exactly once.
    #[test]
    fn no_two_workers_hold_conflicting_locks() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let keys: Vec<Pubkey> = (0..12).map(|_| Pubkey::new_unique()).collect();
        let workers = 3;
        let mut sched = LockScheduler::new(workers, 4);
        let mut seq = Sequencer::new(10_000);
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
            for (w, txs) in out {
                assert!(in_flight[w].is_none());
                in_flight[w] = Some(txs);
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
                sched.complete(w);
            }
        }
        assert!(seq.is_empty());
    }

    #[test]
    fn highest_priority_runs_first_and_blocked_accounts_are_reserved() {
        let k = Pubkey::new_unique();
        let other = Pubkey::new_unique();
        let mut sched = LockScheduler::new(2, 8);
        let mut seq = Sequencer::new(100);
        let _ = seq.push(fake_tx(1, 1, vec![(k, true)]));
        let _ = seq.push(fake_tx(2, 9, vec![(k, true)]));
        let _ = seq.push(fake_tx(3, 5, vec![(other, true)]));
        // Worker 0 busy with k: nothing touching k may start elsewhere.
        let mut out = Vec::new();
        sched.schedule(&mut seq, &[0], &mut out);
        let first: Vec<u64> = out[0].1.iter().map(|t| t.budget.priority()).collect();
        assert!(first[0] >= first[first.len() - 1]);
        // Both k-writers chain on worker 0 in priority order; `other` too (free).
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.len(), 3);
        let order: Vec<u64> = out[0].1.iter().map(|t| t.packet.received_ns).collect();
        assert_eq!(order, vec![2, 3, 1]);
    }
}
