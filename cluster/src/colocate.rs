//! Co-location of cross-partition transactions (rule 2, `[cluster] colocate`).
//!
//! A transaction whose accounts belong to partitions owned by different nodes runs on no
//! node as it is: each node executes only what it owns whole. The node that received it
//! (signatures checked) holds it here while those partitions move, one move at a time, to
//! the **gathering node**: the owner of the lowest-numbered partition the transaction names.
//! Every node computes the same gathering node from the same map, so two transactions over
//! the same partitions, received at different nodes, pull the same way. Every 100 ms each
//! held transaction is routed again: once its partitions share an owner it
//! goes there like any other and runs on that one node, whole; otherwise it waits for the
//! next move. Held transactions are bounded ([`MAX_HELD_BYTES`]) and wait at most
//! [`HOLD_FOR`]; beyond either they are dropped and counted.

use crate::map::PartitionMap;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bytes of transactions held for co-location at most, per node.
pub const MAX_HELD_BYTES: usize = 8 << 20;
/// How long a transaction waits for its partitions to gather before it is dropped (well
/// inside its blockhash's validity, so that the client's retry is still useful).
pub const HOLD_FOR: Duration = Duration::from_secs(30);
/// Partitions one held transaction may name at most: a wider one is refused (counted), so
/// that one signed transaction cannot ask for dozens of moves.
pub const MAX_PARTITIONS: usize = 4;
/// Cross-partition datagrams whose signatures are checked per 100 ms at most, outside the
/// verify tiles (on the receiving thread): a flood of them costs that thread at most about a
/// tenth of a core; beyond it they are dropped and counted.
pub const CHECKS_PER_100MS: u64 = 200;

/// Why a transaction was not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotHeld {
    #[error("co-location is off ([cluster] colocate)")]
    Off,
    #[error("the transactions held for co-location are at their bound")]
    Full,
    #[error("it names more than {MAX_PARTITIONS} partitions owned by different nodes")]
    TooWide,
}

/// A transaction waiting for its partitions to gather.
#[derive(Debug, Clone)]
pub struct Held {
    pub since: Instant,
    /// The partitions it names, sorted, distinct (at least two).
    pub partitions: Vec<u16>,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct ColocateCounters {
    /// Transactions held (each time: a transaction routed again and still split counts again).
    pub held: AtomicU64,
    /// Dropped: the held bytes were at their bound, it waited [`HOLD_FOR`], or it names more
    /// than [`MAX_PARTITIONS`] partitions.
    pub full: AtomicU64,
    pub too_wide: AtomicU64,
    pub expired: AtomicU64,
    /// Cross-partition datagrams whose signatures did not verify, or that came beyond
    /// [`CHECKS_PER_100MS`]: dropped before holding.
    pub bad_signatures: AtomicU64,
    pub over_rate: AtomicU64,
    /// Dropped before asking for a move: an expired blockhash, or a fee payer without its
    /// signature fee.
    pub unpayable: AtomicU64,
    /// Moves this node asked for to gather partitions.
    pub moves: AtomicU64,
}

/// This node's held transactions.
#[derive(Debug, Default)]
pub struct Gathering {
    enabled: AtomicBool,
    held: Mutex<(VecDeque<Held>, usize)>,
    /// (100 ms window, signature checks in it).
    checks: Mutex<(u64, u64)>,
    pub counters: ColocateCounters,
}

impl Gathering {
    /// `[cluster] colocate`: off, a cross-partition transaction is refused, naming the owners.
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Release);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Whether one more datagram's signatures may be checked now (counted when not).
    pub fn may_check(&self, now_ms: u64) -> bool {
        let mut c = self.checks.lock();
        if c.0 != now_ms / 100 {
            *c = (now_ms / 100, 0);
        }
        c.1 += 1;
        let ok = c.1 <= CHECKS_PER_100MS;
        if !ok {
            self.counters.over_rate.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Holds `bytes`; false (counted) when the held bytes are at their bound or it names too
    /// many partitions.
    pub fn hold(&self, bytes: &[u8], partitions: Vec<u16>) -> Result<(), NotHeld> {
        if partitions.len() > MAX_PARTITIONS {
            self.counters.too_wide.fetch_add(1, Ordering::Relaxed);
            return Err(NotHeld::TooWide);
        }
        self.put(Held {
            since: Instant::now(),
            partitions,
            bytes: bytes.to_vec(),
        })
    }

    fn put(&self, h: Held) -> Result<(), NotHeld> {
        let mut q = self.held.lock();
        if q.1 + h.bytes.len() > MAX_HELD_BYTES {
            self.counters.full.fetch_add(1, Ordering::Relaxed);
            return Err(NotHeld::Full);
        }
        q.1 += h.bytes.len();
        q.0.push_back(h);
        self.counters.held.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Everything held, oldest first. Their bytes still count toward the bound until they
    /// are put back ([`Gathering::keep`]) or let go ([`Gathering::release`]), so that what is
    /// held meanwhile cannot go past it.
    pub fn take(&self) -> Vec<Held> {
        std::mem::take(&mut self.held.lock().0).into()
    }

    /// Held again, in front of anything held since `take` (they are older).
    pub fn keep(&self, held: Vec<Held>) {
        let mut q = self.held.lock();
        for h in held.into_iter().rev() {
            q.0.push_front(h);
        }
    }

    /// Taken transactions of `bytes` in all that are not held any more (routed, dropped).
    pub fn release(&self, bytes: usize) {
        let mut q = self.held.lock();
        q.1 = q.1.saturating_sub(bytes);
    }

    /// Transactions held now.
    pub fn len(&self) -> usize {
        self.held.lock().0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The gathering node of a transaction over `partitions` (sorted) under `map`: the owner of
/// the lowest-numbered one.
pub fn gathering_node<'m>(map: &'m PartitionMap, partitions: &[u16]) -> Option<&'m str> {
    map.owner(*partitions.first()?)
}

/// The next move that gathers what is held, under `map`: for the oldest held transaction
/// whose partitions are not yet together, its lowest-numbered partition not at the gathering
/// node; `cooling(p)` partitions (moved for co-location a moment ago) are passed over.
pub fn next_move<'h>(
    map: &PartitionMap,
    held: impl IntoIterator<Item = &'h Held>,
    cooling: impl Fn(u16) -> bool,
) -> Option<(u16, String)> {
    held.into_iter().find_map(|h| {
        let to = gathering_node(map, &h.partitions)?;
        h.partitions
            .iter()
            .copied()
            .find(|p| map.owner(*p).is_some_and(|o| o != to) && !cooling(*p))
            .map(|p| (p, to.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(owners: &[&str]) -> PartitionMap {
        PartitionMap {
            epoch: 7,
            owners: owners.iter().map(|s| s.to_string()).collect(),
            followers: Default::default(),
        }
    }

    fn held(partitions: &[u16]) -> Held {
        Held {
            since: Instant::now(),
            partitions: partitions.to_vec(),
            bytes: vec![0; 100],
        }
    }

    #[test]
    fn partitions_gather_at_the_owner_of_the_lowest_numbered_one() {
        let m = map(&["a", "b", "c", "a"]);
        assert_eq!(gathering_node(&m, &[1, 2]), Some("b"));
        assert_eq!(
            next_move(&m, &[held(&[1, 2])], |_| false),
            Some((2, "b".into()))
        );
        // Already together: nothing to move; the next held one is looked at.
        assert_eq!(
            next_move(&m, &[held(&[0, 3]), held(&[0, 2])], |_| false),
            Some((2, "a".into()))
        );
        // A partition cooling down is passed over, then nothing is left to move.
        assert_eq!(next_move(&m, &[held(&[0, 2])], |p| p == 2), None);
    }

    #[test]
    fn two_directions_agree_on_where_to_gather() {
        // A transaction over {1, 2} received at b and one over {2, 1} received at c are both
        // sorted before they are held: both pull partition 2 to b.
        let m = map(&["a", "b", "c"]);
        let mut from_c = vec![2u16, 1];
        from_c.sort_unstable();
        assert_eq!(
            next_move(&m, &[held(&from_c)], |_| false),
            next_move(&m, &[held(&[1, 2])], |_| false)
        );
    }

    #[test]
    fn signature_checks_are_rate_limited_per_window() {
        let g = Gathering::default();
        let passed = (0..CHECKS_PER_100MS + 50)
            .filter(|_| g.may_check(1_000))
            .count();
        assert_eq!(passed as u64, CHECKS_PER_100MS);
        assert_eq!(g.counters.over_rate.load(Ordering::Relaxed), 50);
        assert!(g.may_check(1_100), "a new window");
    }

    #[test]
    fn held_bytes_are_bounded_and_kept_in_order() {
        let g = Gathering::default();
        let big = vec![0u8; MAX_HELD_BYTES / 2];
        assert!(g.hold(&big, vec![0, 1]).is_ok());
        assert!(g.hold(&big, vec![0, 2]).is_ok());
        assert!(g.hold(&[0u8; 1], vec![0, 3]).is_err());
        assert_eq!(g.counters.full.load(Ordering::Relaxed), 1);
        let mut taken = g.take();
        assert_eq!(taken.len(), 2);
        // Taken, their bytes still count: nothing more fits while they are looked at.
        assert!(g.hold(&[1u8; 10], vec![5, 6]).is_err());
        let routed = taken.pop().unwrap();
        g.release(routed.bytes.len());
        assert!(g.hold(&[1u8; 10], vec![5, 6]).is_ok());
        g.keep(taken);
        let again = g.take();
        let order: Vec<u16> = again.iter().map(|h| h.partitions[1]).collect();
        assert_eq!(order, vec![1, 6]);
        g.keep(again);
        assert_eq!(g.len(), 2);
        assert!(g.hold(&big, vec![0, 3]).is_err());
        // One transaction naming more partitions than a gathering may move is refused.
        assert!(g.hold(&[0u8; 10], vec![0, 1, 2, 3, 4]).is_err());
        assert_eq!(g.counters.too_wide.load(Ordering::Relaxed), 1);
    }
}
