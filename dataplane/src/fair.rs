//! Fair shares at ingest: when the verify tiles fall behind, the heaviest senders are the ones
//! dropped.
//!
//! Signature verification is the dataplane's expensive step, and a flood of valid-looking
//! transactions with bad signatures, or of signed transactions from unfunded payers, costs a
//! sender nothing but bandwidth. Every parsed transaction is counted twice in small count-min
//! sketches over a sliding window: by sender address and by fee payer. While the verify ring a
//! transaction is routed to is at least three quarters full, a transaction whose sender or fee payer has
//! sent more than its share of the window's traffic is dropped (counted). Honest senders, each
//! a small share, keep getting through; with no congestion nothing is dropped.
//!
//! Memory is fixed (two sketches of `ROWS × WIDTH` counters) whatever the number of senders, and
//! the hash seeds are random per process, so an attacker cannot aim a key at another's counters.
//! A count-min sketch only over-estimates: a heavy sender is never under-counted; a light one
//! may be taken for heavier in a collision, which at these widths needs thousands of heavy keys.

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const ROWS: usize = 4;
const WIDTH: usize = 4096;
/// Counters halve every window, so the sketches follow a sliding ~2-window average.
const WINDOW_NS: u64 = 100_000_000;
/// A key is over its share when it has more than 1/`SHARE_DIVISOR` of the window's
/// transactions (and more than `MIN_HEAVY` of them: a sender of a few packets is never heavy).
const SHARE_DIVISOR: u64 = 8;
const MIN_HEAVY: u32 = 64;

struct Sketch {
    counts: Box<[AtomicU32]>,
    seeds: [ahash::RandomState; ROWS],
}

impl Sketch {
    fn new() -> Self {
        Self {
            counts: (0..ROWS * WIDTH).map(|_| AtomicU32::new(0)).collect(),
            seeds: std::array::from_fn(|_| ahash::RandomState::new()),
        }
    }

    /// Count one for `key`; returns its estimate including this one.
    fn add<K: Hash>(&self, key: &K) -> u32 {
        let mut est = u32::MAX;
        for (row, seed) in self.seeds.iter().enumerate() {
            let i = row * WIDTH + (seed.hash_one(key) as usize) % WIDTH;
            let c = self.counts[i]
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1);
            est = est.min(c);
        }
        est
    }

    fn halve(&self) {
        for c in self.counts.iter() {
            // Racing increments may be lost here: an estimate, not an account.
            c.store(c.load(Ordering::Relaxed) / 2, Ordering::Relaxed);
        }
    }
}

/// The ingest's view of who is sending how much (shared by every path into the verify tiles).
pub struct FairShare {
    by_source: Sketch,
    by_payer: Sketch,
    /// Transactions counted in the window (halved with the sketches).
    total: AtomicU64,
    window_end_ns: AtomicU64,
}

impl Default for FairShare {
    fn default() -> Self {
        Self::new()
    }
}

impl FairShare {
    pub fn new() -> Self {
        Self {
            by_source: Sketch::new(),
            by_payer: Sketch::new(),
            total: AtomicU64::new(0),
            window_end_ns: AtomicU64::new(0),
        }
    }

    /// Count a transaction from `source` (none for the RPC, whose callers are limited by its
    /// own connection limits) paid by `payer`; true when its sender or payer is over its
    /// share of the recent traffic.
    pub fn over_share(&self, source: Option<IpAddr>, payer: &[u8; 32], now_ns: u64) -> bool {
        self.roll(now_ns);
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        let share = (total / SHARE_DIVISOR).max(u64::from(MIN_HEAVY));
        let by_source = source.map_or(0, |ip| self.by_source.add(&ip));
        let by_payer = self.by_payer.add(payer);
        u64::from(by_source.max(by_payer)) > share
    }

    fn roll(&self, now_ns: u64) {
        let end = self.window_end_ns.load(Ordering::Relaxed);
        if now_ns < end {
            return;
        }
        // One caller halves; the others carry on counting.
        if self
            .window_end_ns
            .compare_exchange(end, now_ns + WINDOW_NS, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.by_source.halve();
            self.by_payer.halve();
            let t = self.total.load(Ordering::Relaxed);
            self.total.store(t / 2, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heavy_sender_is_over_its_share_and_light_ones_are_not() {
        let f = FairShare::new();
        let flood: IpAddr = "10.0.0.1".parse().unwrap();
        let t = 1;
        let mut flood_over = 0;
        let mut light_over = 0;
        for i in 0..20_000u32 {
            // The flood: one address, fresh payers (unfunded keys cost nothing).
            let mut payer = [0u8; 32];
            payer[..4].copy_from_slice(&i.to_le_bytes());
            flood_over += u32::from(f.over_share(Some(flood), &payer, t));
            if i % 20 == 0 {
                // 1,000 honest senders, each its own address and payer.
                let n = i / 20;
                let ip = IpAddr::from([10, 1, (n >> 8) as u8, n as u8]);
                let mut p = [0xAAu8; 32];
                p[..4].copy_from_slice(&n.to_le_bytes());
                light_over += u32::from(f.over_share(Some(ip), &p, t));
            }
        }
        assert!(flood_over > 19_000, "{flood_over}");
        assert_eq!(light_over, 0);
    }

    #[test]
    fn a_payer_spread_over_many_addresses_is_caught_by_payer() {
        let f = FairShare::new();
        let payer = [7u8; 32];
        let mut over = 0;
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            over += u32::from(f.over_share(Some(ip), &payer, 1));
        }
        assert!(over > 9_000, "{over}");
    }

    #[test]
    fn windows_forget() {
        let f = FairShare::new();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..10_000 {
            f.over_share(Some(ip), &[1; 32], 1);
        }
        assert!(f.over_share(Some(ip), &[1; 32], 1));
        // Twenty windows later the counts have halved away.
        let mut t = 1;
        for _ in 0..20 {
            t += WINDOW_NS;
            f.roll(t);
        }
        assert!(!f.over_share(Some(ip), &[1; 32], t));
    }
}
