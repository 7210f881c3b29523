//! Signature dedup over the blockhash validity window, in bounded memory.
//!
//! A transaction is only valid while its recent blockhash is among the last
//! [`MAX_PROCESSING_AGE_SLOTS`] blockhashes, so a signature needs remembering for that long and
//! no longer. Entries are bucketed by the slot they were first seen in; advancing the slot
//! forgets whole buckets. When the table holds `capacity` entries it refuses new signatures
//! (the caller drops and counts them) rather than forgetting live ones early, which would let a
//! replay through.

use ahash::RandomState;
use std::collections::{HashSet, VecDeque};

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
}
