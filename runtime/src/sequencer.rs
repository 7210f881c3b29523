//! Priority ordering of verified transactions.
//!
//! Priority is fee per requested compute unit ([`TxBudget::priority`]); ties go to the earlier
//! arrival. The queue holds at most `capacity` transactions. Drop policy when full: a new
//! transaction that outbids the lowest-priority queued one evicts it (that one is dropped and
//! counted as `evicted`); otherwise the newcomer is dropped (`full`). A flood of cheap
//! transactions therefore never pushes out better-paying ones.

use crate::compute_budget::TxBudget;
use dataplane::PacketBox;
use solana_pubkey::Pubkey;
use solana_transaction::sanitized::SanitizedTransaction;
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// A verified, sanitized transaction ready to be scheduled.
pub struct PreparedTx {
    pub sanitized: SanitizedTransaction,
    pub budget: TxBudget,
    pub packet: PacketBox,
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::compute_budget::TxBudget;
    use solana_compute_budget::compute_budget_limits::ComputeBudgetLimits;

    /// A transaction with the given priority (lamports of priority fee per 1,000 CU) and locks;
    /// `id` is kept in `packet.received_ns` so tests can follow it.
    pub(crate) fn fake_tx(id: u64, priority: u64, locks: Vec<(Pubkey, bool)>) -> PreparedTx {
        let payer = solana_keypair::Keypair::new();
        let ix = solana_system_interface::instruction::transfer(
            &solana_signer::Signer::pubkey(&payer),
            &Pubkey::new_unique(),
            1,
        );
        let tx = solana_transaction::Transaction::new(
            &[&payer],
            solana_message::Message::new(&[ix], Some(&solana_signer::Signer::pubkey(&payer))),
            solana_hash::Hash::default(),
        );
        let sanitized = SanitizedTransaction::try_from_legacy_transaction(tx, &Default::default())
            .expect("valid transaction");
        let mut packet = PacketBox::new(dataplane::Packet::zeroed());
        packet.received_ns = id;
        let limits = ComputeBudgetLimits {
            compute_unit_limit: 1_000,
            ..Default::default()
        };
        PreparedTx {
            sanitized,
            budget: TxBudget {
                limits,
                signature_fee: 5_000,
                priority_fee: priority,
            },
            packet,
            locks,
        }
    }

    #[test]
    fn priority_then_arrival_order() {
        let mut s = Sequencer::new(10);
        for (id, prio) in [(1, 5), (2, 9), (3, 5), (4, 0)] {
            assert!(matches!(s.push(fake_tx(id, prio, vec![])), Admit::Queued));
        }
        let order: Vec<u64> = s.iter().map(|(_, t)| t.packet.received_ns).collect();
        assert_eq!(order, vec![2, 1, 3, 4]);
    }

    #[test]
    fn full_queue_evicts_only_for_a_better_payer() {
        let mut s = Sequencer::new(2);
        let _ = s.push(fake_tx(1, 5, vec![]));
        let _ = s.push(fake_tx(2, 3, vec![]));
        match s.push(fake_tx(3, 3, vec![])) {
            Admit::Rejected(t) => assert_eq!(t.packet.received_ns, 3),
            _ => panic!("equal priority must not evict"),
        }
        match s.push(fake_tx(4, 9, vec![])) {
            Admit::QueuedEvicting(t) => assert_eq!(t.packet.received_ns, 2),
            _ => panic!("a better payer evicts the worst"),
        }
        assert_eq!(s.len(), 2);
    }
}
