//! The account cache: decoded accounts (shared with the runtime without a copy) under a byte
//! budget, driven by the sequencer. `mark` records keys as referenced by queued transactions
//! (`begin_load` then starts the reads of those not resident); `release` unmarks them when
//! the transactions leave the queue. Eviction is CLOCK (second chance) that skips marked keys, so what the queue still
//! needs stays; only when every resident account is marked does it evict a marked one
//! (counted).

use ahash::HashMap;
use crossbeam_channel::Sender;
use parking_lot::Mutex;
use solana_account::{AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

const SHARDS: usize = 64;
/// Bookkeeping charged per cached account on top of its data.
const ENTRY_OVERHEAD: usize = 160;

pub enum Slot {
    Ready {
        account: AccountSharedData,
        slot: u64,
        referenced: bool,
    },
    /// A read is in flight; these wait for it.
    Loading { waiters: Vec<Sender<()>> },
}

#[derive(Default)]
struct Shard {
    map: HashMap<Pubkey, Slot>,
    clock: VecDeque<Pubkey>,
    queued: HashMap<Pubkey, u32>,
    bytes: usize,
}

telemetry::declare_counters! {
    /// The cache's counters, published in the metrics region (`StorageCounters`).
    #[repr(C)]
    #[derive(Default)]
    pub struct CacheCounters {
        /// Gets served from the cache (the engine's own count).
        hits: Counter(Count) "storage_cache_lookup_hits",
        /// Gets the cache could not serve: read from a device.
        misses: Counter(Count) "storage_cache_misses",
        /// Gets of keys a queued transaction referenced (the sequencer prefetched them),
        /// served from the cache.
        sequenced_hits: Counter(Count) "storage_cache_sequenced_hits",
        /// Gets of prefetched keys that still went to a device.
        sequenced_misses: Counter(Count) "storage_cache_sequenced_misses",
        /// Gets that found a read of their key in flight and waited for it (neither a hit
        /// nor a miss: the get did not read the device itself, but it paid for the read).
        waits: Counter(Count) "storage_cache_waits",
        /// Waits of gets of keys a queued transaction referenced: the prefetch had not
        /// finished when the transaction read the key.
        sequenced_waits: Counter(Count) "storage_cache_sequenced_waits",
        /// Accounts evicted to keep the cache in its budget.
        evictions: Counter(Count) "storage_cache_evictions",
        /// Evicted accounts a queued transaction still referenced.
        evicted_queued: Counter(Count) "storage_cache_evicted_queued",
    }
}

pub struct Cache {
    shards: Vec<Mutex<Shard>>,
    budget_per_shard: usize,
    pub counters: CacheCounters,
}

pub enum Lookup {
    Hit(AccountSharedData, u64),
    /// Wait on the receiver, then look again.
    Wait(crossbeam_channel::Receiver<()>),
    Miss,
}

fn shard_of(key: &Pubkey) -> usize {
    key.as_ref()[31] as usize % SHARDS
}

fn cost(a: &AccountSharedData) -> usize {
    a.data().len() + ENTRY_OVERHEAD
}

impl Cache {
    pub fn new(budget_bytes: usize) -> Cache {
        Cache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            budget_per_shard: budget_bytes / SHARDS,
            counters: CacheCounters::default(),
        }
    }

    pub fn lookup(&self, key: &Pubkey, count: bool) -> Lookup {
        let mut s = self.shards[shard_of(key)].lock();
        let queued = s.queued.contains_key(key);
        let r = match s.map.get_mut(key) {
            Some(Slot::Ready {
                account,
                slot,
                referenced,
            }) => {
                *referenced = true;
                Lookup::Hit(account.clone(), *slot)
            }
            Some(Slot::Loading { waiters }) => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                waiters.push(tx);
                Lookup::Wait(rx)
            }
            None => Lookup::Miss,
        };
        if count {
            let c = &self.counters;
            let (all, sequenced) = match r {
                Lookup::Hit(..) => (&c.hits, &c.sequenced_hits),
                Lookup::Wait(_) => (&c.waits, &c.sequenced_waits),
                Lookup::Miss => (&c.misses, &c.sequenced_misses),
            };
            all.fetch_add(1, Ordering::Relaxed);
            if queued {
                sequenced.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }

    /// Marks `key` as needed by a queued transaction (until its [`Self::release`]). Done on
    /// the caller's thread, never through the hint queue: a dropped mark or release would
    /// skew the count for good.
    /// Returns whether `key` is resident (or being loaded).
    pub fn mark(&self, key: &Pubkey) -> bool {
        let mut s = self.shards[shard_of(key)].lock();
        *s.queued.entry(*key).or_insert(0) += 1;
        s.map.contains_key(key)
    }

    /// Returns true when the caller should start a read of `key` (not resident, no read in
    /// flight): the key is then `Loading` until [`Self::finish_load`].
    pub fn begin_load(&self, key: &Pubkey) -> bool {
        let mut s = self.shards[shard_of(key)].lock();
        if s.map.contains_key(key) {
            return false;
        }
        s.map.insert(
            *key,
            Slot::Loading {
                waiters: Vec::new(),
            },
        );
        true
    }

    /// A transaction that marked `key` left the queue.
    pub fn release(&self, key: &Pubkey) {
        let mut s = self.shards[shard_of(key)].lock();
        if let Some(n) = s.queued.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                s.queued.remove(key);
            }
        }
    }

    /// Keys some queued transaction has marked (bounded by the sequencer's queue: each queued
    /// transaction marks at most its locked keys, and releases them when it leaves).
    pub fn marked_keys(&self) -> usize {
        self.shards.iter().map(|s| s.lock().queued.len()).sum()
    }

    /// Ends a read started by `begin_load`: stores the account if `still_current` says the read
    /// is not stale, wakes the waiters either way.
    pub fn finish_load(
        &self,
        key: &Pubkey,
        loaded: Option<(AccountSharedData, u64)>,
        still_current: impl FnOnce() -> bool,
    ) {
        let mut s = self.shards[shard_of(key)].lock();
        let Some(Slot::Loading { .. }) = s.map.get(key) else {
            return;
        };
        let Some(Slot::Loading { waiters }) = s.map.remove(key) else {
            unreachable!()
        };
        if let Some((account, slot)) = loaded.filter(|_| still_current()) {
            self.put_locked(&mut s, key, account, slot);
        }
        for w in waiters {
            let _ = w.send(());
        }
    }

    /// Caches what a synchronous read returned, unless something newer got there first.
    pub fn fill(
        &self,
        key: &Pubkey,
        account: AccountSharedData,
        slot: u64,
        still_current: impl FnOnce() -> bool,
    ) {
        let mut s = self.shards[shard_of(key)].lock();
        if !s.map.contains_key(key) && still_current() {
            self.put_locked(&mut s, key, account, slot);
        }
    }

    /// Write-through from a commit: the new state replaces whatever is there (and completes
    /// a read in flight with it). `None` deletes.
    pub fn update(&self, key: &Pubkey, value: Option<(AccountSharedData, u64)>) {
        let mut s = self.shards[shard_of(key)].lock();
        match (s.map.get_mut(key), value) {
            // Resident: replaced in place, keeping its place on the clock.
            (
                Some(Slot::Ready {
                    account,
                    slot,
                    referenced,
                }),
                Some((new, new_slot)),
            ) => {
                let (old_cost, new_cost) = (cost(account), cost(&new));
                *account = new;
                *slot = new_slot;
                *referenced = true;
                s.bytes = s.bytes - old_cost + new_cost;
                self.evict_locked(&mut s);
            }
            (_, value) => {
                let waiters = match s.map.remove(key) {
                    Some(Slot::Ready { account, .. }) => {
                        // Deleted; its clock entry is dropped when the hand reaches it.
                        s.bytes -= cost(&account);
                        Vec::new()
                    }
                    Some(Slot::Loading { waiters }) => waiters,
                    None => Vec::new(),
                };
                if let Some((account, slot)) = value {
                    self.put_locked(&mut s, key, account, slot);
                }
                for w in waiters {
                    let _ = w.send(());
                }
            }
        }
    }

    #[cfg(test)]
    fn clock_len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().clock.len()).sum()
    }

    fn put_locked(&self, s: &mut Shard, key: &Pubkey, account: AccountSharedData, slot: u64) {
        if let Some(Slot::Ready { account: old, .. }) = s.map.get(key) {
            s.bytes -= cost(old);
        } else {
            s.clock.push_back(*key);
        }
        s.bytes += cost(&account);
        s.map.insert(
            *key,
            Slot::Ready {
                account,
                slot,
                referenced: false,
            },
        );
        self.evict_locked(s);
    }

    fn evict_locked(&self, s: &mut Shard) {
        let mut spins = 0usize;
        while s.bytes > self.budget_per_shard {
            let Some(k) = s.clock.pop_front() else { break };
            let hard = spins > 2 * s.clock.len() + 2;
            spins += 1;
            let keep = match s.map.get_mut(&k) {
                Some(Slot::Ready { referenced, .. }) => {
                    let queued = s.queued.contains_key(&k);
                    if hard {
                        false
                    } else if *referenced {
                        *referenced = false;
                        true
                    } else {
                        queued
                    }
                }
                // Loading entries are not on the clock; stale clock keys are dropped.
                _ => continue,
            };
            if keep {
                s.clock.push_back(k);
                continue;
            }
            if s.queued.contains_key(&k) {
                self.counters.evicted_queued.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(Slot::Ready { account, .. }) = s.map.remove(&k) {
                s.bytes -= cost(&account);
            }
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn resident_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes).sum()
    }

    pub fn clear(&self) {
        for s in &self.shards {
            let mut s = s.lock();
            // Rebuilt rather than emptied in place: a drained map keeps its capacity.
            let loading: HashMap<Pubkey, Slot> = s
                .map
                .drain()
                .filter(|(_, v)| matches!(v, Slot::Loading { .. }))
                .collect();
            s.map = loading;
            s.clock = VecDeque::new();
            s.bytes = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(n: usize) -> AccountSharedData {
        AccountSharedData::new(1, n, &Pubkey::default())
    }

    #[test]
    fn eviction_prefers_keys_no_queued_transaction_needs() {
        let cache = Cache::new(SHARDS * 4 * (1000 + ENTRY_OVERHEAD));
        // All keys in one shard.
        let keys: Vec<Pubkey> = (0..8u8)
            .map(|i| {
                let mut k = [i; 32];
                k[31] = 0;
                Pubkey::new_from_array(k)
            })
            .collect();
        for k in &keys[..2] {
            cache.mark(k);
            assert!(cache.begin_load(k));
            cache.finish_load(k, Some((acct(1000), 1)), || true);
        }
        for k in &keys[2..] {
            cache.update(k, Some((acct(1000), 1)));
        }
        for k in &keys[..2] {
            assert!(
                matches!(cache.lookup(k, true), Lookup::Hit(..)),
                "queued key kept"
            );
        }
        let resident = keys
            .iter()
            .filter(|k| matches!(cache.lookup(k, false), Lookup::Hit(..)))
            .count();
        assert_eq!(resident, 4);
        assert_eq!(cache.counters.sequenced_hits.load(Ordering::Relaxed), 2);
        assert_eq!(cache.counters.evicted_queued.load(Ordering::Relaxed), 0);
        cache.release(&keys[0]);
        cache.release(&keys[1]);
        assert_eq!(cache.marked_keys(), 0);
    }

    #[test]
    fn a_get_that_waits_for_a_read_in_flight_is_not_a_hit() {
        let cache = Cache::new(1 << 20);
        let k = Pubkey::new_unique();
        cache.mark(&k);
        assert!(cache.begin_load(&k));
        assert!(matches!(cache.lookup(&k, true), Lookup::Wait(_)));
        cache.finish_load(&k, Some((acct(1), 1)), || true);
        assert!(matches!(cache.lookup(&k, true), Lookup::Hit(..)));
        let c = &cache.counters;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!((n(&c.waits), n(&c.sequenced_waits)), (1, 1));
        assert_eq!((n(&c.hits), n(&c.sequenced_hits)), (1, 1));
        assert_eq!((n(&c.misses), n(&c.sequenced_misses)), (0, 0));
    }

    #[test]
    fn rewriting_an_account_does_not_grow_the_clock() {
        let cache = Cache::new(1 << 20);
        let k = Pubkey::new_unique();
        for slot in 0..100 {
            cache.update(&k, Some((acct(10), slot)));
        }
        assert_eq!(cache.clock_len(), 1);
        cache.update(&k, None);
        cache.update(&k, Some((acct(10), 101)));
        assert!(cache.clock_len() <= 2);
    }

    #[test]
    fn a_stale_read_never_overwrites_a_commit() {
        let cache = Cache::new(1 << 20);
        let k = Pubkey::new_unique();
        assert!(cache.begin_load(&k));
        cache.update(&k, Some((acct(5), 9)));
        cache.finish_load(&k, Some((acct(1), 3)), || true);
        let Lookup::Hit(a, slot) = cache.lookup(&k, false) else {
            panic!("hit")
        };
        assert_eq!((a.data().len(), slot), (5, 9));
    }
}
