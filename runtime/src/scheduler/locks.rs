//! Account lock bookkeeping shared by the schedulers.

use ahash::{HashMap, HashSet};
use solana_pubkey::Pubkey;

/// Read and write locks held by one holder (a worker's batch, a scheduling pass).
#[derive(Default)]
pub struct LockSet {
    writes: HashSet<Pubkey>,
    reads: HashSet<Pubkey>,
}

impl LockSet {
    pub fn conflicts(&self, key: &Pubkey, writable: bool) -> bool {
        self.writes.contains(key) || (writable && self.reads.contains(key))
    }

    pub fn conflicts_any(&self, locks: &[(Pubkey, bool)]) -> bool {
        locks.iter().any(|(k, w)| self.conflicts(k, *w))
    }

    pub fn add(&mut self, key: Pubkey, writable: bool) {
        if writable {
            self.writes.insert(key);
        } else {
            self.reads.insert(key);
        }
    }

    pub fn add_all(&mut self, locks: &[(Pubkey, bool)]) {
        locks.iter().for_each(|(k, w)| self.add(*k, *w));
    }

    pub fn clear(&mut self) {
        self.writes.clear();
        self.reads.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.reads.is_empty()
    }
}

/// Locks several holders take at once (optimistic batches, which do not exclude each other),
/// counted so each holder releases only its own.
#[derive(Default)]
pub struct SharedLocks {
    held: HashMap<Pubkey, (u32, u32)>,
}

impl SharedLocks {
    /// Whether a *locked* (pessimistic) access conflicts with any holder.
    pub fn conflicts(&self, key: &Pubkey, writable: bool) -> bool {
        self.held
            .get(key)
            .is_some_and(|(w, r)| *w > 0 || (writable && *r > 0))
    }

    pub fn conflicts_any(&self, locks: &[(Pubkey, bool)]) -> bool {
        locks.iter().any(|(k, w)| self.conflicts(k, *w))
    }

    pub fn add_all(&mut self, locks: &[(Pubkey, bool)]) {
        for (k, w) in locks {
            let e = self.held.entry(*k).or_default();
            if *w {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    }

    pub fn remove_all(&mut self, locks: &[(Pubkey, bool)]) {
        for (k, w) in locks {
            if let Some(e) = self.held.get_mut(k) {
                if *w {
                    e.0 = e.0.saturating_sub(1);
                } else {
                    e.1 = e.1.saturating_sub(1);
                }
                if *e == (0, 0) {
                    self.held.remove(k);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}
