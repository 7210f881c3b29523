//! Priority ordering of verified transactions, in lanes.
//!
//! A transaction's priority is [`PreparedTx::priority`], set by the bank at admission (fee per
//! requested compute unit, or per unit of what it will really use: see
//! [`crate::sequencing`]); ties go to the earlier arrival. Every transaction sits in one
//! lane, chosen by the scheduler when it is admitted:
//! the plain lock scheduler keeps everything in lane 0 (one global priority order); the
//! hotspot scheduler gives each app and each hot-account island its own lane.
//!
//! The queue holds at most `capacity` transactions. When full, a victim lane is chosen by the
//! [`Eviction`] policy and its lowest-priority transaction is evicted (dropped, counted
//! `evicted`) if the newcomer outbids it; otherwise the newcomer is dropped (`full`).
//! - [`Eviction::Global`]: the victim lane is the one holding the globally worst transaction,
//!   so a flood of cheap transactions never pushes out better-paying ones.
//! - [`Eviction::LongestLane`]: the victim lane is the longest (the newcomer counted in its
//!   own lane), and within it the newcomer is compared only against its own lane: an app
//!   flooding the queue displaces its own transactions, not other apps' (fair queuing's
//!   longest-queue drop).
//!
//! A transaction given a deadline slot at admission (it paid at least the inclusion threshold)
//! and still queued when the deadline passes is promoted to the head of its lane
//! ([`Sequencer::promote_overdue`]), so high-paying newcomers cannot starve it.

use crate::compute_budget::TxBudget;
use ahash::HashMap;
use dataplane::PacketBox;
use solana_pubkey::Pubkey;
use solana_transaction::sanitized::SanitizedTransaction;
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// A lane of the sequencer (an app, an island); its meaning belongs to the scheduler.
pub type LaneId = u64;

/// An app: a small id the scheduler interns app keys (top-level program, fee payer) to.
pub type AppId = u32;

/// A verified, sanitized transaction ready to be scheduled.
pub struct PreparedTx {
    pub sanitized: SanitizedTransaction,
    pub budget: TxBudget,
    pub packet: PacketBox,
    /// Account locks: (key, writable), from the sanitized message (reserved keys demoted).
    pub locks: Vec<(Pubkey, bool)>,
    /// The app's key ([`AppClassifier`](crate::scheduler::apps::AppClassifier)).
    pub app_key: Pubkey,
    pub app: AppId,
    pub lane: LaneId,
    /// When the bank admitted it (monotonic ns).
    pub queued_ns: u64,
    /// The slot of its recent blockhash (it expires 150 slots later).
    pub blockhash_slot: u64,
    /// When a scheduling pass first had to pass over it for a lock conflict (0: never).
    pub blocked_ns: Cell<u64>,
    /// Admission to dispatch, where the scheduler measured it: counted in the app's metrics
    /// row when the transaction executes, since executing is what gives a new app its row.
    pub queue_delay_us: Cell<Option<u64>>,
    /// Its `admitted` pre-confirmation, waiting for the outcome.
    pub preconf: Option<Box<crate::preconf::Ticket>>,
    /// Its place in the sequencer's order (higher first), fixed when it is queued.
    pub priority: u64,
    /// Its instructions' shape ([`crate::sequencing::shape_of`]): what the compute-unit
    /// model learns by.
    pub shape: u64,
    /// Accounts the store had to read from its devices when it was admitted.
    pub cold_reads: u16,
    /// Promoted to the head of its lane once this slot has passed (`u64::MAX`: never).
    pub deadline_slot: u64,
    /// Compute units the per-slot caps reserve for it while it runs (settled to what it used
    /// when it completes), when not its requested limit: the learnt estimate under the
    /// performance rule ([`crate::sequencing`]).
    pub reserve_cu: Option<u64>,
}

impl PreparedTx {
    /// Not yet routed (app 0, lane 0), queued now.
    pub fn new(
        sanitized: SanitizedTransaction,
        budget: TxBudget,
        packet: PacketBox,
        locks: Vec<(Pubkey, bool)>,
    ) -> Self {
        Self {
            sanitized,
            budget,
            packet,
            locks,
            app_key: Pubkey::default(),
            app: 0,
            lane: 0,
            queued_ns: dataplane::monotonic_ns(),
            blockhash_slot: 0,
            blocked_ns: Cell::new(0),
            queue_delay_us: Cell::new(None),
            preconf: None,
            priority: budget.priority(),
            shape: 0,
            cold_reads: 0,
            deadline_slot: u64::MAX,
            reserve_cu: None,
        }
    }

    pub fn writes(&self) -> impl Iterator<Item = &Pubkey> {
        self.locks.iter().filter(|(_, w)| *w).map(|(k, _)| k)
    }

    pub fn requested_cu(&self) -> u64 {
        u64::from(self.budget.limits.compute_unit_limit)
    }

    /// What the per-slot CU caps reserve for it at dispatch ([`PreparedTx::reserve_cu`]).
    pub fn reserved_cu(&self) -> u64 {
        self.reserve_cu.unwrap_or_else(|| self.requested_cu())
    }
}

pub type SeqKey = (Reverse<u64>, u64);

/// The key a promoted (overdue) transaction is re-queued under: ahead of every priority,
/// overdue ones among themselves by arrival.
const OVERDUE: Reverse<u64> = Reverse(u64::MAX);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    Global,
    LongestLane,
}

pub enum Admit {
    Queued,
    /// Queued; this lower-priority transaction was pushed out.
    QueuedEvicting(Box<PreparedTx>),
    /// Not queued.
    Rejected(Box<PreparedTx>),
}

pub struct Sequencer {
    lanes: HashMap<LaneId, BTreeMap<SeqKey, PreparedTx>>,
    /// (blockhash slot, key) → lane: expiry visits only what expires.
    by_age: BTreeMap<(u64, SeqKey), LaneId>,
    /// (deadline slot, key) → lane, for transactions with a deadline not yet promoted.
    by_deadline: BTreeMap<(u64, SeqKey), LaneId>,
    len: usize,
    capacity: usize,
    eviction: Eviction,
    next_arrival: u64,
}

impl Sequencer {
    pub fn new(capacity: usize, eviction: Eviction) -> Self {
        assert!(capacity > 0);
        Self {
            lanes: HashMap::default(),
            by_age: BTreeMap::new(),
            by_deadline: BTreeMap::new(),
            len: 0,
            capacity,
            eviction,
            next_arrival: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn lane_len(&self, lane: LaneId) -> usize {
        self.lanes.get(&lane).map_or(0, BTreeMap::len)
    }

    /// Non-empty lanes.
    pub fn lanes(&self) -> impl Iterator<Item = LaneId> + '_ {
        self.lanes
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(l, _)| *l)
    }

    pub fn push(&mut self, tx: PreparedTx) -> Admit {
        let key = (Reverse(tx.priority.min(u64::MAX - 1)), self.next_arrival);
        let lane = tx.lane;
        if self.len >= self.capacity {
            let Some(victim) = self.victim_lane(lane, key) else {
                return Admit::Rejected(Box::new(tx));
            };
            let q = self.lanes.get_mut(&victim).expect("victim lane exists");
            let worst = *q.keys().next_back().expect("victim lane is non-empty");
            // An overdue transaction was promised its slot: a newcomer never evicts one.
            if (victim == lane && key >= worst) || worst.0 == OVERDUE {
                return Admit::Rejected(Box::new(tx));
            }
            let evicted = q.remove(&worst).expect("worst exists");
            self.forget(&evicted, worst);
            self.next_arrival += 1;
            self.index(&tx, key, lane);
            self.lanes.entry(lane).or_default().insert(key, tx);
            return Admit::QueuedEvicting(Box::new(evicted));
        }
        self.next_arrival += 1;
        self.len += 1;
        self.index(&tx, key, lane);
        self.lanes.entry(lane).or_default().insert(key, tx);
        Admit::Queued
    }

    fn index(&mut self, tx: &PreparedTx, key: SeqKey, lane: LaneId) {
        self.by_age.insert((tx.blockhash_slot, key), lane);
        if tx.deadline_slot != u64::MAX && key.0 != OVERDUE {
            self.by_deadline.insert((tx.deadline_slot, key), lane);
        }
    }

    fn forget(&mut self, tx: &PreparedTx, key: SeqKey) {
        self.by_age.remove(&(tx.blockhash_slot, key));
        self.by_deadline.remove(&(tx.deadline_slot, key));
    }

    /// Move every transaction whose deadline is before `slot` to the head of its lane (in
    /// deadline, then arrival, order). Returns how many moved.
    pub fn promote_overdue(&mut self, slot: u64) -> usize {
        let keep = self.by_deadline.split_off(&(slot, (Reverse(u64::MAX), 0)));
        let due = std::mem::replace(&mut self.by_deadline, keep);
        let mut moved = 0;
        for ((_, key), lane) in due {
            let Some(q) = self.lanes.get_mut(&lane) else {
                continue;
            };
            let Some(tx) = q.remove(&key) else {
                continue;
            };
            let promoted = (OVERDUE, key.1);
            self.by_age.remove(&(tx.blockhash_slot, key));
            self.by_age.insert((tx.blockhash_slot, promoted), lane);
            q.insert(promoted, tx);
            moved += 1;
        }
        moved
    }

    /// The queued transactions of `shape` reserve their requested compute units again (their
    /// shape's estimate was overrun). Returns how many.
    pub fn reserve_requested(&mut self, shape: u64) -> usize {
        let mut n = 0;
        for tx in self.lanes.values_mut().flat_map(BTreeMap::values_mut) {
            if tx.shape == shape && tx.reserve_cu.take().is_some() {
                n += 1;
            }
        }
        n
    }

    /// Queued transactions waiting for their deadline.
    pub fn with_deadline(&self) -> usize {
        self.by_deadline.len()
    }

    /// The lane to evict from when full, or `None` to reject the newcomer outright.
    fn victim_lane(&self, lane: LaneId, key: SeqKey) -> Option<LaneId> {
        match self.eviction {
            Eviction::Global => self
                .lanes
                .iter()
                .filter_map(|(l, q)| q.keys().next_back().map(|w| (*w, *l)))
                .max()
                .filter(|(worst, _)| key < *worst)
                .map(|(_, l)| l),
            Eviction::LongestLane => {
                let own = self.lane_len(lane) + 1;
                let (len, longest) = self
                    .lanes
                    .iter()
                    .map(|(l, q)| (q.len(), *l))
                    .max()
                    .unwrap_or((0, lane));
                if own >= len {
                    (own > 1).then_some(lane)
                } else {
                    Some(longest)
                }
            }
        }
    }

    /// Best first, within one lane.
    pub fn lane_iter(&self, lane: LaneId) -> impl Iterator<Item = (&SeqKey, &PreparedTx)> {
        self.lanes.get(&lane).into_iter().flat_map(|q| q.iter())
    }

    /// Best first, within one lane, after `after`.
    pub fn lane_iter_after(
        &self,
        lane: LaneId,
        after: Option<SeqKey>,
    ) -> impl Iterator<Item = (&SeqKey, &PreparedTx)> {
        use std::ops::Bound::{Excluded, Unbounded};
        let from = after.map_or(Unbounded, Excluded);
        self.lanes
            .get(&lane)
            .into_iter()
            .flat_map(move |q| q.range((from, Unbounded)))
    }

    pub fn remove(&mut self, lane: LaneId, key: &SeqKey) -> Option<PreparedTx> {
        let tx = self.lanes.get_mut(&lane)?.remove(key)?;
        self.forget(&tx, *key);
        self.len -= 1;
        Some(tx)
    }

    /// Move a queued transaction to another lane (its place in priority order is kept).
    pub fn relane(&mut self, from: LaneId, key: &SeqKey, to: LaneId) {
        if let Some(mut tx) = self.lanes.get_mut(&from).and_then(|q| q.remove(key)) {
            tx.lane = to;
            self.index(&tx, *key, to);
            self.lanes.entry(to).or_default().insert(*key, tx);
        }
    }

    /// Empty the queue (shutdown).
    pub fn drain(&mut self) -> impl Iterator<Item = PreparedTx> + '_ {
        self.len = 0;
        self.by_age.clear();
        self.by_deadline.clear();
        std::mem::take(&mut self.lanes)
            .into_values()
            .flat_map(BTreeMap::into_values)
    }

    /// Remove every queued transaction whose blockhash slot is below `oldest_valid`.
    pub fn remove_expired(&mut self, oldest_valid: u64) -> Vec<PreparedTx> {
        let keep = self
            .by_age
            .split_off(&(oldest_valid, (Reverse(u64::MAX), 0)));
        let expired = std::mem::replace(&mut self.by_age, keep);
        let out: Vec<PreparedTx> = expired
            .into_iter()
            .filter_map(|((_, key), lane)| {
                let tx = self.lanes.get_mut(&lane)?.remove(&key)?;
                self.by_deadline.remove(&(tx.deadline_slot, key));
                Some(tx)
            })
            .collect();
        self.len -= out.len();
        out
    }

    /// Forget empty lanes (they accumulate as apps come and go).
    pub fn prune_lanes(&mut self) {
        self.lanes.retain(|_, q| !q.is_empty());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::compute_budget::TxBudget;
    use solana_compute_budget::compute_budget_limits::ComputeBudgetLimits;

    /// A transaction with the given priority (lamports of priority fee per 1,000 CU) and locks;
    /// `id` is kept in `packet.received_ns` so tests can follow it.
    pub(crate) fn fake_tx(id: u64, priority: u64, locks: Vec<(Pubkey, bool)>) -> PreparedTx {
        fake_app_tx(id, priority, 0, locks)
    }

    pub(crate) fn fake_app_tx(
        id: u64,
        priority: u64,
        app: AppId,
        locks: Vec<(Pubkey, bool)>,
    ) -> PreparedTx {
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
            app_key: Pubkey::default(),
            app,
            lane: LaneId::from(app),
            queued_ns: 0,
            blockhash_slot: 0,
            blocked_ns: Cell::new(0),
            queue_delay_us: Cell::new(None),
            preconf: None,
            priority: TxBudget {
                limits,
                signature_fee: 5_000,
                priority_fee: priority,
            }
            .priority(),
            shape: 0,
            cold_reads: 0,
            deadline_slot: u64::MAX,
            reserve_cu: None,
        }
    }

    fn ids(s: &Sequencer, lane: LaneId) -> Vec<u64> {
        s.lane_iter(lane)
            .map(|(_, t)| t.packet.received_ns)
            .collect()
    }

    #[test]
    fn priority_then_arrival_order() {
        let mut s = Sequencer::new(10, Eviction::Global);
        for (id, prio) in [(1, 5), (2, 9), (3, 5), (4, 0)] {
            assert!(matches!(s.push(fake_tx(id, prio, vec![])), Admit::Queued));
        }
        assert_eq!(ids(&s, 0), vec![2, 1, 3, 4]);
    }

    #[test]
    fn full_queue_evicts_only_for_a_better_payer() {
        let mut s = Sequencer::new(2, Eviction::Global);
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

    /// A flooding app, even a better-paying one, displaces only its own transactions.
    #[test]
    fn longest_lane_eviction_protects_the_quiet_app() {
        let mut s = Sequencer::new(10, Eviction::LongestLane);
        for id in 0..3 {
            let _ = s.push(fake_app_tx(id, 1, 1, vec![]));
        }
        for id in 10..17 {
            let _ = s.push(fake_app_tx(id, 5, 2, vec![]));
        }
        // Full: a rich flooder's newcomer evicts its own lane's worst, never app 1's.
        match s.push(fake_app_tx(20, 9, 2, vec![])) {
            Admit::QueuedEvicting(t) => assert_eq!(t.app, 2),
            _ => panic!("expected an eviction"),
        }
        // The flooder's cheaper newcomer is rejected outright.
        assert!(matches!(
            s.push(fake_app_tx(21, 0, 2, vec![])),
            Admit::Rejected(_)
        ));
        // The quiet app's newcomer evicts from the longest lane.
        match s.push(fake_app_tx(4, 0, 1, vec![])) {
            Admit::QueuedEvicting(t) => assert_eq!(t.app, 2),
            _ => panic!("expected an eviction"),
        }
        assert_eq!(s.lane_len(1), 4);
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn relane_keeps_priority_and_expiry_finds_relaned() {
        let mut s = Sequencer::new(10, Eviction::LongestLane);
        for (id, prio, bh) in [(1, 5, 10), (2, 7, 3), (3, 1, 4)] {
            let mut t = fake_app_tx(id, prio, 1, vec![]);
            t.blockhash_slot = bh;
            let _ = s.push(t);
        }
        let key = *s.lane_iter(1).next().unwrap().0;
        s.relane(1, &key, 99);
        assert_eq!(ids(&s, 99), vec![2]);
        assert_eq!(s.len(), 3);
        let mut gone: Vec<u64> = s
            .remove_expired(5)
            .iter()
            .map(|t| t.packet.received_ns)
            .collect();
        gone.sort_unstable();
        assert_eq!(gone, vec![2, 3]);
        assert_eq!(s.len(), 1);
        assert!(s.remove_expired(5).is_empty());
        let last = *s.lane_iter(1).next().unwrap().0;
        assert_eq!(s.remove(1, &last).map(|t| t.packet.received_ns), Some(1));
        assert!(s.remove_expired(u64::MAX).is_empty());
    }

    /// The deadline index follows its transactions through every way out of the queue, and a
    /// promoted transaction is never evicted by a newcomer.
    #[test]
    fn deadlines_follow_their_transactions_and_overdue_ones_are_not_evicted() {
        let mut s = Sequencer::new(4, Eviction::LongestLane);
        for (id, deadline, bh) in [(1, 5, 10), (2, 6, 3), (3, 7, 10)] {
            let mut t = fake_app_tx(id, 10 * id, 1, vec![]);
            t.blockhash_slot = bh;
            t.deadline_slot = deadline;
            let _ = s.push(t);
        }
        assert_eq!(s.with_deadline(), 3);
        assert_eq!(s.remove_expired(5).len(), 1, "tx 2's blockhash expired");
        assert_eq!(s.with_deadline(), 2);
        let key3 = *s.lane_iter(1).next().unwrap().0;
        s.relane(1, &key3, 7);
        assert_eq!(s.with_deadline(), 2, "relaned, still indexed once");
        assert_eq!(
            s.promote_overdue(6),
            1,
            "tx 1's deadline (5) is before slot 6"
        );
        assert_eq!(s.with_deadline(), 1);
        assert_eq!(s.promote_overdue(8), 1, "tx 3, in its new lane");
        assert_eq!(s.with_deadline(), 0);
        // Full: lane 1 holds only overdue tx 1 (lane 7 the overdue tx 3): newcomers in
        // other lanes may evict neither.
        for id in 10..12 {
            let _ = s.push(fake_app_tx(id, 1, 2, vec![]));
        }
        assert_eq!(s.len(), 4);
        for lane in [1, 7] {
            let worst = *s.lane_iter(lane).last().unwrap().0;
            assert_eq!(worst.0, OVERDUE);
        }
        let mut big = fake_app_tx(20, 1_000_000, 3, vec![]);
        big.deadline_slot = 30;
        let admitted = s.push(big);
        let Admit::QueuedEvicting(old) = admitted else {
            panic!("the newcomer outbids lane 2's");
        };
        assert_eq!(old.app, 2, "only the non-overdue lane");
        let drained: Vec<_> = s.drain().collect();
        assert_eq!(drained.len(), 4);
        assert_eq!(s.with_deadline(), 0);
    }
}
