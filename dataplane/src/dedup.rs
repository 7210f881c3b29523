//! Signature dedup over the blockhash validity window, in bounded memory.
//!
//! A transaction is only valid while its recent blockhash is among the last
//! [`MAX_PROCESSING_AGE_SLOTS`] blockhashes, so a signature needs remembering for that long and
//! no longer. Entries are bucketed by the slot they were first seen in; advancing the slot
//! forgets whole buckets. When the table holds `capacity` entries it refuses new signatures
//! (the caller drops and counts them) rather than forgetting live ones early, which would let a
//! replay through.
//!
//! The verify tiles share one [`ShardedDedup`]: every copy of a transaction meets the same
//! shard whichever tile verifies it, so the routing rule (`net.routing`) is free to send
//! copies to different tiles and still exactly one of them is forwarded.

use ahash::RandomState;
use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

/// Solana's blockhash validity window.
pub const MAX_PROCESSING_AGE_SLOTS: u64 = 150;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupOutcome {
    /// First sighting; remembered.
    New,
    /// Seen within the window.
    Duplicate,
    /// The table is at capacity; not remembered, must be dropped.
    Full,
}

pub struct Dedup {
    seen: HashSet<[u8; 64], RandomState>,
    buckets: VecDeque<(u64, Vec<[u8; 64]>)>,
    capacity: usize,
    window_slots: u64,
}

impl Dedup {
    pub fn new(capacity: usize, window_slots: u64) -> Self {
        assert!(capacity > 0 && window_slots > 0);
        Self {
            seen: HashSet::with_capacity_and_hasher(capacity.min(1 << 20), RandomState::new()),
            buckets: VecDeque::with_capacity(window_slots as usize + 1),
            capacity,
            window_slots,
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    pub fn contains(&self, sig: &[u8; 64]) -> bool {
        self.seen.contains(sig)
    }

    /// Record `sig` as seen at `slot`.
    pub fn insert(&mut self, sig: &[u8; 64], slot: u64) -> DedupOutcome {
        self.expire(slot);
        if self.seen.contains(sig) {
            return DedupOutcome::Duplicate;
        }
        if self.seen.len() >= self.capacity {
            return DedupOutcome::Full;
        }
        self.seen.insert(*sig);
        match self.buckets.back_mut() {
            Some((s, v)) if *s == slot => v.push(*sig),
            _ => self.buckets.push_back((slot, vec![*sig])),
        }
        DedupOutcome::New
    }

    /// Forget buckets older than the window relative to `slot`.
    /// Forgets `sig` (its bucket keeps it until it expires, which then removes nothing or, if
    /// it was inserted again meanwhile, that later entry: no earlier than the first entry's
    /// window, which already covers the transaction's blockhash).
    pub fn remove(&mut self, sig: &[u8; 64]) {
        self.seen.remove(sig);
    }

    pub fn expire(&mut self, slot: u64) {
        while let Some((s, _)) = self.buckets.front() {
            if s + self.window_slots >= slot {
                break;
            }
            let (_, sigs) = self.buckets.pop_front().expect("front exists");
            for s in &sigs {
                self.seen.remove(s);
            }
        }
    }
}

/// One dedup table shared by every verify tile, split into shards (one lock each) chosen by
/// the signature's hash, so tiles rarely wait on each other: ~4 shards per tile.
pub struct ShardedDedup {
    shards: Box<[Mutex<Dedup>]>,
    hasher: RandomState,
}

impl ShardedDedup {
    /// `capacity` signatures in all, split evenly over the shards.
    pub fn new(capacity: usize, window_slots: u64, tiles: usize) -> Self {
        let n = (4 * tiles.max(1)).next_power_of_two().min(capacity.max(1));
        let per_shard = capacity.div_ceil(n).max(1);
        Self {
            shards: (0..n)
                .map(|_| Mutex::new(Dedup::new(per_shard, window_slots)))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, sig: &[u8; 64]) -> std::sync::MutexGuard<'_, Dedup> {
        let i = (self.hasher.hash_one(sig) as usize) % self.shards.len();
        // A tile that panicked while holding the lock left a consistent table (each method
        // finishes its updates before it can panic), so the lock is taken back.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Seen within the window that ends at `slot`.
    pub fn contains(&self, sig: &[u8; 64], slot: u64) -> bool {
        let mut d = self.shard(sig);
        d.expire(slot);
        d.contains(sig)
    }

    /// [`Dedup::insert`] in the signature's shard: of concurrent inserts of one signature,
    /// exactly one is [`DedupOutcome::New`].
    pub fn insert(&self, sig: &[u8; 64], slot: u64) -> DedupOutcome {
        self.shard(sig).insert(sig, slot)
    }

    /// Scale-out: a verified transaction this node hands on without running it (parked for a
    /// partition's new owner, forwarded, held for co-location) is forgotten, so that it is not
    /// taken for a repeat if it comes back (its partition returns here).
    pub fn remove(&self, sig: &[u8; 64]) {
        self.shard(sig).remove(sig)
    }

    /// Signatures remembered, over all shards.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn shards(&self) -> usize {
        self.shards.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(i: u32) -> [u8; 64] {
        let mut s = [0u8; 64];
        s[..4].copy_from_slice(&i.to_le_bytes());
        s
    }

    #[test]
    fn duplicate_within_window() {
        let mut d = Dedup::new(100, 150);
        assert_eq!(d.insert(&sig(1), 10), DedupOutcome::New);
        assert_eq!(d.insert(&sig(1), 10), DedupOutcome::Duplicate);
        assert_eq!(d.insert(&sig(1), 160), DedupOutcome::Duplicate);
        // slot 161: the bucket of slot 10 is older than 150 slots
        assert_eq!(d.insert(&sig(1), 161), DedupOutcome::New);
    }

    #[test]
    fn bounded_and_refuses_when_full() {
        let mut d = Dedup::new(3, 150);
        for i in 0..3 {
            assert_eq!(d.insert(&sig(i), 1), DedupOutcome::New);
        }
        assert_eq!(d.insert(&sig(9), 1), DedupOutcome::Full);
        assert_eq!(d.len(), 3);
        // A full table still recognises duplicates.
        assert_eq!(d.insert(&sig(0), 2), DedupOutcome::Duplicate);
        // Once the window passes, room comes back.
        assert_eq!(d.insert(&sig(9), 152), DedupOutcome::New);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn sharded_holds_its_capacity_in_all_and_forgets_by_window() {
        let d = ShardedDedup::new(64, 150, 2);
        assert_eq!(d.shards(), 8);
        assert_eq!(d.insert(&sig(1), 10), DedupOutcome::New);
        assert!(d.contains(&sig(1), 10));
        assert_eq!(d.insert(&sig(1), 11), DedupOutcome::Duplicate);
        assert!(!d.contains(&sig(1), 161), "expired with its window");
        let mut new = 0;
        for i in 0..10_000 {
            new += usize::from(d.insert(&sig(100 + i), 200) == DedupOutcome::New);
        }
        assert!(new <= 64 && d.len() <= 64, "bounded: {new} remembered");
    }

    /// Copies of one transaction verified by different tiles at once: exactly one is new.
    #[test]
    fn racing_copies_meet_one_shard() {
        let d = std::sync::Arc::new(ShardedDedup::new(1 << 16, 150, 4));
        for round in 0..200u32 {
            let s = sig(round);
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let new: usize = (0..4)
                .map(|_| {
                    let (d, b) = (d.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        b.wait();
                        usize::from(d.insert(&s, 1) == DedupOutcome::New)
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum();
            assert_eq!(new, 1, "round {round}");
        }
    }
}
