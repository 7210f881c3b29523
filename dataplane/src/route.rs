//! Which verify tile a transaction goes to (`net.routing`).
//!
//! - `signature` (the default): a hash of the first signature. Uniform over the tiles,
//!   whatever the transaction touches.
//! - `affinity`: a transaction that writes a hot account (an island of the hotspot
//!   scheduler) goes to the tile that owns the island, so one tile sees an island's writers
//!   in their receipt order (one FIFO into the bank), its signers' decoded keys stay in that
//!   tile's key cache, and the tile can be placed beside the island's worker. The rest, and
//!   an island whose tile runs more than `ingress::steer_slack` ahead of the shallowest
//!   verify ring, keep the signature hash.
//!
//! Dedup no longer depends on the rule: the verify tiles share one
//! [`crate::dedup::ShardedDedup`], so copies routed to different tiles (the table changed
//! between them, or one fell back) still meet one table.
//!
//! The bank publishes the table once per slot ([`RouteTable::publish`]); the receiving cores
//! read it without a lock ([`RouteTable::lookup`]). Each entry is one atomic word (a key
//! fingerprint and a tile), so a reader never sees a torn entry; the writer fills the table
//! not in use and then flips the active index, so a reader sees one slot's table or, if it
//! was slow enough to straddle two publishes (a whole slot), a mix of whole entries: at worst
//! a miss or an old owner, which costs locality, never correctness.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    /// By a hash of the first signature.
    #[default]
    Signature,
    /// By the island of the first hot writable account, else by signature.
    Affinity,
}

/// Hot accounts routed at most (the scheduler's islands are fewer: `scheduler.max_islands`).
pub const MAX_ROUTES: usize = 256;
/// Slots of each table: twice [`MAX_ROUTES`], so probes stay short.
const SLOTS: usize = 2 * MAX_ROUTES;
/// Probes per lookup and insert (linear); an entry that finds no room is not routed.
const PROBES: usize = 8;
/// An entry is the key's hash with its low 16 bits replaced by the tile + 1 (0: empty).
const TILE_BITS: u64 = 0xffff;
/// A tile keeps its islands unless it carries this much more than the mean.
const PLACE_OVER_MEAN: f64 = 1.1;
/// ...and keeps an island it already has unless it would carry this much (hysteresis, so
/// small swings of the writers' averages do not move islands every slot).
const KEEP_OVER_MEAN: f64 = 1.25;

/// A hot account as the scheduler sees it at a slot boundary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotAccount {
    pub key: [u8; 32],
    /// Transactions per slot that write it (EWMA): what its verify tile will carry.
    pub writers: f64,
    /// The worker that runs its island.
    pub worker: usize,
}

pub struct RouteTable {
    tiles: usize,
    hasher: ahash::RandomState,
    tables: [Box<[AtomicU64]>; 2],
    active: AtomicUsize,
    /// Entries in the active table (0: no lookup needed).
    len: AtomicUsize,
    owners: Mutex<HashMap<[u8; 32], usize>>,
    /// The tile placed closest to each worker (empty: the verify tiles are not pinned; a
    /// worker beyond it is unpaired and its islands go to the least-loaded tile).
    tile_of_worker: Vec<usize>,
}

impl std::fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTable")
            .field("tiles", &self.tiles)
            .field("routes", &self.len())
            .finish()
    }
}

impl RouteTable {
    pub fn new(tiles: usize) -> Self {
        assert!(tiles >= 1 && tiles < TILE_BITS as usize);
        let table = || (0..SLOTS).map(|_| AtomicU64::new(0)).collect();
        Self {
            tiles,
            hasher: ahash::RandomState::new(),
            tables: [table(), table()],
            active: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            owners: Mutex::new(HashMap::new()),
            tile_of_worker: Vec::new(),
        }
    }

    /// Islands prefer the tile placed closest to their worker: `tile_of_worker[w]`.
    pub fn with_pairing(mut self, tile_of_worker: Vec<usize>) -> Self {
        self.tile_of_worker = tile_of_worker;
        self
    }

    /// The tile placed beside `worker`, if placement paired them.
    fn paired(&self, worker: usize) -> Option<usize> {
        self.tile_of_worker.get(worker).map(|t| t % self.tiles)
    }

    pub fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// The tile that owns `key`'s island, if it is routed.
    pub fn lookup(&self, key: &[u8; 32]) -> Option<usize> {
        let table = &self.tables[self.active.load(Ordering::Acquire) & 1];
        let h = self.hasher.hash_one(key);
        for i in 0..PROBES {
            let e = table[(h as usize).wrapping_add(i) % SLOTS].load(Ordering::Relaxed);
            if e == 0 {
                return None;
            }
            if e & !TILE_BITS == h & !TILE_BITS {
                return Some(((e & TILE_BITS) - 1) as usize % self.tiles);
            }
        }
        None
    }

    /// The tile of the first of `keys` that is routed.
    pub fn lookup_first<'a>(&self, keys: impl Iterator<Item = &'a [u8; 32]>) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        keys.into_iter().find_map(|k| self.lookup(k))
    }

    /// Replace the table with `hot` (the hottest [`MAX_ROUTES`] of them), each assigned a tile:
    /// an account keeps the tile it had while that tile carries at most 1.25× the mean load
    /// (writers per slot), and a new one goes to the tile paired with its worker while that
    /// carries at most 1.1×; the rest (and the unpaired) to the least-loaded tile. Called by one thread (the bank) at a slot boundary.
    pub fn publish(&self, hot: &[HotAccount]) {
        let mut hot: Vec<HotAccount> = hot.to_vec();
        hot.sort_by(|a, b| b.writers.total_cmp(&a.writers));
        hot.truncate(MAX_ROUTES);
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let assigned = assign(&hot, &owners, self.tiles, |w| self.paired(w));
        let next = (self.active.load(Ordering::Relaxed) + 1) & 1;
        let table = &self.tables[next];
        for e in table.iter() {
            e.store(0, Ordering::Relaxed);
        }
        let mut placed = 0;
        for (a, &tile) in hot.iter().zip(&assigned) {
            let h = self.hasher.hash_one(a.key);
            let entry = (h & !TILE_BITS) | (tile as u64 + 1);
            if let Some(i) = (0..PROBES)
                .map(|i| (h as usize).wrapping_add(i) % SLOTS)
                .find(|&i| table[i].load(Ordering::Relaxed) == 0)
            {
                table[i].store(entry, Ordering::Relaxed);
                placed += 1;
            }
        }
        owners.clear();
        owners.extend(hot.iter().zip(&assigned).map(|(a, &t)| (a.key, t)));
        self.active.store(next, Ordering::Release);
        self.len.store(placed, Ordering::Release);
    }
}

/// Tiles for `hot` (sorted hottest first), sticky to `owners`, else to `paired(worker)`,
/// where balance allows; the rest to the least-loaded tile.
fn assign(
    hot: &[HotAccount],
    owners: &HashMap<[u8; 32], usize>,
    tiles: usize,
    paired: impl Fn(usize) -> Option<usize>,
) -> Vec<usize> {
    let total: f64 = hot.iter().map(|a| a.writers.max(0.0)).sum();
    let mean = total / tiles as f64;
    let (keep, place) = (KEEP_OVER_MEAN * mean, PLACE_OVER_MEAN * mean);
    let mut load = vec![0.0f64; tiles];
    let mut out = vec![usize::MAX; hot.len()];
    // Sticky first, hottest first, while the old tile stays under the keep bound.
    for (i, a) in hot.iter().enumerate() {
        if let Some(&t) = owners.get(&a.key).filter(|&&t| t < tiles)
            && (load[t] == 0.0 || load[t] + a.writers <= keep)
        {
            load[t] += a.writers.max(0.0);
            out[i] = t;
        }
    }
    for (i, a) in hot.iter().enumerate() {
        if out[i] != usize::MAX {
            continue;
        }
        let t = match paired(a.worker) {
            Some(p) if load[p] == 0.0 || load[p] + a.writers <= place => p,
            _ => (0..tiles)
                .min_by(|&x, &y| load[x].total_cmp(&load[y]))
                .expect("at least one tile"),
        };
        load[t] += a.writers.max(0.0);
        out[i] = t;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hot(i: u8, writers: f64) -> HotAccount {
        HotAccount {
            key: [i; 32],
            writers,
            worker: i as usize,
        }
    }

    #[test]
    fn an_island_key_goes_to_its_tile_and_others_miss() {
        let t = RouteTable::new(2);
        assert!(t.is_empty());
        assert_eq!(t.lookup(&[1; 32]), None);
        t.publish(&[hot(1, 100.0), hot(2, 90.0)]);
        assert_eq!(t.len(), 2);
        let (a, b) = (t.lookup(&[1; 32]).unwrap(), t.lookup(&[2; 32]).unwrap());
        assert_ne!(a, b, "two equal islands are spread over two tiles");
        assert_eq!(t.lookup(&[3; 32]), None);
        assert_eq!(
            t.lookup_first([[3; 32], [2; 32], [1; 32]].iter()),
            Some(b),
            "the first routed key decides"
        );
        t.publish(&[]);
        assert!(t.is_empty());
        assert_eq!(
            t.lookup(&[1; 32]),
            None,
            "a dissolved island is no longer routed"
        );
    }

    #[test]
    fn owners_are_sticky_unless_their_tile_is_overloaded() {
        let t = RouteTable::new(2);
        t.publish(&[hot(1, 100.0), hot(2, 100.0)]);
        let a = t.lookup(&[1; 32]).unwrap();
        // A third island arrives: the first two keep their tiles.
        t.publish(&[hot(1, 100.0), hot(2, 100.0), hot(3, 10.0)]);
        assert_eq!(t.lookup(&[1; 32]), Some(a));
        // Island 2 goes cold and 1 grows, 3 grows: nothing is moved while balanced.
        let owners: HashMap<[u8; 32], usize> = [([1; 32], 0), ([2; 32], 0), ([3; 32], 0)].into();
        let got = assign(
            &[hot(1, 100.0), hot(2, 100.0), hot(3, 100.0)],
            &owners,
            2,
            |_| None,
        );
        assert_eq!(got[0], 0, "the hottest keeps its tile");
        assert_eq!(got[1], 1, "the next leaves the overloaded tile");
        assert_eq!(
            got.iter().filter(|&&t| t == 0).count(),
            2,
            "as even as three can be"
        );
    }

    #[test]
    fn at_most_max_routes_hottest_kept() {
        let t = RouteTable::new(4);
        let many: Vec<HotAccount> = (0..1000u32)
            .map(|i| {
                let mut key = [0u8; 32];
                key[..4].copy_from_slice(&i.to_le_bytes());
                HotAccount {
                    key,
                    writers: f64::from(i),
                    worker: 0,
                }
            })
            .collect();
        t.publish(&many);
        assert!(t.len() <= MAX_ROUTES && t.len() > MAX_ROUTES * 9 / 10);
        let routed = many.iter().filter(|a| t.lookup(&a.key).is_some()).count();
        assert_eq!(routed, t.len());
        assert!(t.lookup(&many[999].key).is_some(), "the hottest is routed");
        assert!(t.lookup(&many[0].key).is_none(), "the coldest is not");
    }

    /// Readers on other threads while the table is republished: every answer is a tile that
    /// some publish gave that key (never a torn word), or a miss.
    #[test]
    fn concurrent_readers_never_see_a_torn_entry() {
        let t = std::sync::Arc::new(RouteTable::new(3));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (t, stop) = (t.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut seen = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for k in 0..64u8 {
                            if let Some(tile) = t.lookup(&[k; 32]) {
                                assert!(tile < 3);
                                seen += 1;
                            }
                        }
                    }
                    seen
                })
            })
            .collect();
        for round in 0..2000u32 {
            let set: Vec<HotAccount> = (0..64u8)
                .filter(|k| (u32::from(*k) + round) % 3 != 0)
                .map(|k| hot(k, f64::from(k) + f64::from(round % 7)))
                .collect();
            t.publish(&set);
        }
        stop.store(true, Ordering::Relaxed);
        let seen: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
        assert!(seen > 0);
    }

    /// A new island goes to the tile placed beside its worker while that tile has room.
    #[test]
    fn new_islands_prefer_the_tile_beside_their_worker() {
        let t = RouteTable::new(2).with_pairing(vec![1, 0]);
        let on = |worker, i: u8, writers| HotAccount {
            key: [i; 32],
            writers,
            worker,
        };
        t.publish(&[on(0, 1, 10.0), on(1, 2, 10.0), on(0, 3, 1.0)]);
        assert_eq!(t.lookup(&[1; 32]), Some(1));
        assert_eq!(t.lookup(&[2; 32]), Some(0));
        assert_eq!(t.lookup(&[3; 32]), Some(1), "within 1.1x of the mean");
        // One more hot island of worker 0: its tile is full, the other takes it.
        let t = RouteTable::new(2).with_pairing(vec![1, 0]);
        t.publish(&[on(0, 1, 100.0), on(0, 4, 100.0)]);
        assert_eq!(t.lookup(&[1; 32]), Some(1));
        assert_eq!(t.lookup(&[4; 32]), Some(0));
    }
}
