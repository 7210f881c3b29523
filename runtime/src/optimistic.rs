//! Validation of optimistic batches (Block-STM's rule, at batch granularity).
//!
//! Optimistic batches run in parallel against the current accounts view without excluding
//! each other. They commit strictly in dispatch order. A batch is valid if no batch that
//! committed after it was dispatched wrote an account it declared (everything it could have
//! read): then what it read is exactly what serial execution in dispatch order would have
//! shown it, so its results are the serial results. Otherwise it runs again; being the oldest
//! uncommitted batch by then, nothing can commit between its re-dispatch and its validation,
//! so the second run always validates.
//!
//! Locked batches never overlap optimistic ones on declared accounts (the scheduler keeps the
//! optimistic batches' declared locks until they commit), so only optimistic commits need
//! tracking here. Everything resets at the slot boundary, when no batch is in flight.

use crate::sequencer::PreparedTx;
use crate::worker::BatchDone;
use ahash::HashMap;
use solana_pubkey::Pubkey;
use std::collections::BTreeMap;

struct Pending {
    /// Optimistic commits so far when it was (last) dispatched.
    dispatched_at: u64,
    declared: Vec<Pubkey>,
    done: Option<BatchDone>,
    reexecutions: u32,
}

/// What to do with the oldest optimistic batch.
pub enum Verdict {
    /// Valid: apply its writes and report its outcomes.
    Commit(BatchDone, u32),
    /// Stale reads: run these transactions again, as batch `id`.
    Rerun(u64, Vec<PreparedTx>),
}

#[derive(Default)]
pub struct Validator {
    commits: u64,
    /// Account → the commit number that last wrote it, this slot.
    last_write: HashMap<Pubkey, u64>,
    pending: BTreeMap<u64, Pending>,
}

impl Validator {
    pub fn dispatched(&mut self, id: u64, txs: &[PreparedTx]) {
        let mut declared: Vec<Pubkey> = txs
            .iter()
            .flat_map(|t| t.locks.iter().map(|(k, _)| *k))
            .collect();
        declared.sort_unstable();
        declared.dedup();
        let reexecutions = self.pending.get(&id).map_or(0, |p| p.reexecutions);
        self.pending.insert(
            id,
            Pending {
                dispatched_at: self.commits,
                declared,
                done: None,
                reexecutions,
            },
        );
    }

    pub fn finished(&mut self, done: BatchDone) {
        if let Some(p) = self.pending.get_mut(&done.id) {
            p.done = Some(done);
        }
    }

    /// The next step for the oldest batch, if it has finished.
    pub fn next_verdict(&mut self) -> Option<Verdict> {
        let mut head = self.pending.first_entry()?;
        let p = head.get_mut();
        p.done.as_ref()?;
        let stale = p
            .declared
            .iter()
            .any(|k| self.last_write.get(k).is_some_and(|c| *c > p.dispatched_at));
        let done = p.done.take().expect("checked");
        if stale {
            p.reexecutions += 1;
            return Some(Verdict::Rerun(*head.key(), done.txs));
        }
        let reexecutions = p.reexecutions;
        head.remove();
        self.commits += 1;
        for (k, _) in &done.writes {
            self.last_write.insert(*k, self.commits);
        }
        Some(Verdict::Commit(done, reexecutions))
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn slot_closed(&mut self) {
        debug_assert!(self.pending.is_empty());
        self.commits = 0;
        self.last_write.clear();
    }
}
