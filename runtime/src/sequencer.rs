//! Priority ordering of verified transactions.
//!
//! Priority is fee per requested compute unit ([`TxBudget::priority`]); ties go to the earlier
//! arrival. The queue holds at most `capacity` transactions. Drop policy when full: a new
//! transaction that outbids the lowest-priority queued one evicts it (that one is dropped and
//! counted as `evicted`); otherwise the newcomer is dropped (`full`). A flood of cheap
//! transactions therefore never pushes out better-paying ones.

use crate::compute_budget::TxBudget;
use dataplane::Packet;
use solana_pubkey::Pubkey;
use solana_transaction::sanitized::SanitizedTransaction;
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// A verified, sanitized transaction ready to be scheduled.
pub struct PreparedTx {
    pub sanitized: SanitizedTransaction,
    pub budget: TxBudget,
    pub packet: Box<Packet>,
    /// Account locks: (key, writable), from the sanitized message (reserved keys demoted).
    pub locks: Vec<(Pubkey, bool)>,
}

type Key = (Reverse<u64>, u64);

pub enum Admit {
    Queued,
    /// Queued; this lower-priority transaction was pushed out.
    QueuedEvicting(Box<PreparedTx>),
    /// Not queued.
    Rejected(Box<PreparedTx>),
}

pub struct Sequencer {
    queue: BTreeMap<Key, PreparedTx>,
    capacity: usize,
    next_arrival: u64,
}

impl Sequencer {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0);
        Self {
            queue: BTreeMap::new(),
            capacity,
            next_arrival: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn push(&mut self, tx: PreparedTx) -> Admit {
        let key = (Reverse(tx.budget.priority()), self.next_arrival);
        if self.queue.len() >= self.capacity {
            let worst = *self
                .queue
                .keys()
                .next_back()
                .expect("full queue is non-empty");
            if key >= worst {
                return Admit::Rejected(Box::new(tx));
            }
            let evicted = self.queue.remove(&worst).expect("worst exists");
            self.next_arrival += 1;
            self.queue.insert(key, tx);
            return Admit::QueuedEvicting(Box::new(evicted));
        }
        self.next_arrival += 1;
        self.queue.insert(key, tx);
        Admit::Queued
    }

    /// Best first.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &PreparedTx)> {
        self.queue.iter()
    }

    pub fn remove(&mut self, key: &Key) -> Option<PreparedTx> {
        self.queue.remove(key)
    }

    /// Empty the queue (shutdown, or transactions whose blockhash expired).
    pub fn drain(&mut self) -> impl Iterator<Item = PreparedTx> + '_ {
        std::mem::take(&mut self.queue).into_values()
    }

    /// Remove every queued transaction for which `expired` returns true.
    pub fn remove_if(&mut self, mut expired: impl FnMut(&PreparedTx) -> bool) -> Vec<PreparedTx> {
        let keys: Vec<Key> = self
            .queue
            .iter()
            .filter(|(_, t)| expired(t))
            .map(|(k, _)| *k)
            .collect();
        keys.iter().filter_map(|k| self.queue.remove(k)).collect()
    }
}

pub type SeqKey = Key;
