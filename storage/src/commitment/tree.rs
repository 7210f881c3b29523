//! The indexed Merkle tree: every account owns a leaf position for as long as it exists
//! (position 0 is the sentinel), leaves name the next larger key, interior nodes are kept
//! level by level. A slot's changes touch only their own leaves, their neighbours' leaves
//! and the paths above them; each level's dirty nodes are hashed in parallel.

use super::par::par_map;
use stateproof::{Hash, Key, Leaf, MAX_DEPTH, leaf_hash, node_hash};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub key: Key,
    pub account_hash: Hash,
}

/// What the hash of one position covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafState {
    Empty,
    Leaf(Leaf),
}

impl LeafState {
    pub fn hash(&self) -> Hash {
        match self {
            LeafState::Empty => [0; 32],
            LeafState::Leaf(l) => leaf_hash(l),
        }
    }
}

/// One account's change in a slot: its new account hash, or `None` when it is deleted.
#[derive(Debug, Clone, Copy)]
pub struct Change {
    pub key: Key,
    pub account_hash: Option<Hash>,
}

/// Everything one slot's update overwrote: enough to roll it back, or to see the tree as it
/// was before it.
#[derive(Debug, Default)]
pub struct Undo {
    pub old_positions: u32,
    /// Leaf states before the slot, in the order recorded: a position may appear more than
    /// once and its first record is its state before the slot.
    pub leaves: Vec<(u32, LeafState)>,
    /// Per level (0 = leaf hashes): node values before the slot, sorted by index.
    pub nodes: Vec<Vec<(u32, Hash)>>,
    old_level_lens: Vec<usize>,
}

impl Undo {
    pub fn bytes(&self) -> usize {
        self.leaves.len() * std::mem::size_of::<(u32, LeafState)>()
            + self.nodes.iter().map(Vec::len).sum::<usize>() * 36
    }

    pub fn node(&self, level: usize, index: u32) -> Option<Hash> {
        let v = self.nodes.get(level)?;
        v.binary_search_by_key(&index, |e| e.0).ok().map(|i| v[i].1)
    }
}

pub fn depth_for(positions: usize) -> usize {
    (usize::BITS - (positions.max(2) - 1).leading_zeros()) as usize
}

/// `links[p]`: no next key.
const NO_NEXT: u32 = u32::MAX;

pub struct StateTree {
    /// Keys in order (predecessors for inserts, deletes and absence proofs).
    order: BTreeMap<Key, u32>,
    /// The same keys hashed: the position lookup every update needs, without a tree search.
    index: HashMap<Key, u32, ahash::RandomState>,
    entries: Vec<Option<Entry>>,
    /// Position of the next larger key after position `p`'s (`links[0]`: the smallest key),
    /// so hashing a leaf needs no ordered search.
    links: Vec<u32>,
    /// Empty positions below `entries.len()` (never 0).
    free: BTreeSet<u32>,
    levels: Vec<Vec<Hash>>,
    zero: [Hash; MAX_DEPTH + 1],
}

impl Default for StateTree {
    fn default() -> Self {
        Self::new()
    }
}

impl StateTree {
    pub fn new() -> Self {
        let mut zero = [[0u8; 32]; MAX_DEPTH + 1];
        for l in 1..=MAX_DEPTH {
            zero[l] = node_hash(&zero[l - 1], &zero[l - 1]);
        }
        let mut t = StateTree {
            order: BTreeMap::new(),
            index: HashMap::default(),
            entries: vec![None],
            links: vec![NO_NEXT],
            free: BTreeSet::new(),
            levels: Vec::new(),
            zero,
        };
        t.rebuild();
        t
    }

    /// A tree from `(position, entry)` pairs, as recovered from the store. Fails on a
    /// position 0 or a key or position given twice.
    pub fn from_entries(mut items: Vec<(u32, Entry)>) -> Result<Self, String> {
        let mut t = StateTree::new();
        items.sort_unstable_by_key(|e| e.0);
        let len = items.last().map_or(1, |e| e.0 as usize + 1);
        t.entries = vec![None; len];
        for (p, e) in items {
            if p == 0 || t.entries[p as usize].is_some() {
                return Err(format!("leaf position {p} claimed twice or reserved"));
            }
            t.index.insert(e.key, p);
            if t.order.insert(e.key, p).is_some() {
                return Err(format!(
                    "key {} holds two leaf positions",
                    solana_pubkey::Pubkey::new_from_array(e.key)
                ));
            }
            t.entries[p as usize] = Some(e);
        }
        t.free = (1..len as u32)
            .filter(|p| t.entries[*p as usize].is_none())
            .collect();
        t.links = vec![NO_NEXT; len];
        let mut prev = 0usize;
        for p in t.order.values() {
            t.links[prev] = *p;
            prev = *p as usize;
        }
        t.rebuild();
        Ok(t)
    }

    /// Hashes every level from the entries (at open; in parallel).
    fn rebuild(&mut self) {
        let n = self.entries.len();
        let all: Vec<u32> = (0..n as u32).collect();
        let leaves = par_map(&all, |p| self.leaf_state(*p).hash());
        self.levels = vec![leaves];
        for l in 1..=depth_for(n) {
            let len = n.div_ceil(1 << l);
            let idx: Vec<u32> = (0..len as u32).collect();
            let row = par_map(&idx, |i| self.child_pair(l, *i));
            self.levels.push(row);
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn depth(&self) -> usize {
        depth_for(self.entries.len())
    }

    pub fn root(&self) -> Hash {
        self.node(self.depth(), 0)
    }

    pub fn node(&self, level: usize, index: u32) -> Hash {
        self.levels
            .get(level)
            .and_then(|v| v.get(index as usize))
            .copied()
            .unwrap_or(self.zero[level])
    }

    fn child_pair(&self, level: usize, index: u32) -> Hash {
        node_hash(
            &self.node(level - 1, 2 * index),
            &self.node(level - 1, 2 * index + 1),
        )
    }

    pub fn position(&self, key: &Key) -> Option<u32> {
        self.index.get(key).copied()
    }

    /// The position of the largest key below `key`, or the sentinel's.
    pub fn predecessor(&self, key: &Key) -> u32 {
        self.order.range(..*key).next_back().map_or(0, |(_, p)| *p)
    }

    /// Keys below `key`, largest first, with their positions.
    pub fn keys_below<'a>(&'a self, key: &Key) -> impl Iterator<Item = (&'a Key, u32)> + 'a {
        self.order.range(..*key).rev().map(|(k, p)| (k, *p))
    }

    fn next_key(&self, p: u32) -> Option<Key> {
        let n = *self.links.get(p as usize)?;
        (n != NO_NEXT).then(|| {
            self.entries[n as usize]
                .expect("linked position holds a key")
                .key
        })
    }

    pub fn leaf_state(&self, p: u32) -> LeafState {
        if p == 0 {
            return LeafState::Leaf(Leaf::Sentinel {
                next: self.next_key(0),
            });
        }
        match self.entries.get(p as usize).copied().flatten() {
            None => LeafState::Empty,
            Some(e) => LeafState::Leaf(Leaf::Account {
                key: e.key,
                account_hash: e.account_hash,
                next: self.next_key(p),
            }),
        }
    }

    /// Applies one slot's changes and rehashes what they touched. Returns what it
    /// overwrote (`rollback` restores it) and each change's position (0: deleted).
    pub fn apply(&mut self, changes: &[Change]) -> (Undo, Vec<u32>) {
        let old_positions = self.entries.len();
        let old_level_lens = self.levels.iter().map(Vec::len).collect();
        // Where each key lives now, looked up in parallel; most changes are updates.
        let found: Vec<Option<u32>> = par_map(changes, |c| self.index.get(&c.key).copied());
        // Leaf states before the slot: those of existing keys read in parallel before any
        // change, the rest recorded before an insert or delete changes a position or its
        // next key. The first record of a position wins.
        // The same pass hashes an updated leaf's new value (its key and next key unchanged);
        // positions that an insert or delete relinks are hashed again below.
        let present: Vec<(u32, Option<Hash>)> = found
            .iter()
            .zip(changes)
            .filter_map(|(f, c)| f.map(|p| (p, c.account_hash)))
            .collect();
        let pre: Vec<(u32, LeafState, Option<Hash>)> = par_map(&present, |(p, h)| {
            let st = self.leaf_state(*p);
            let new = match (st, h) {
                (LeafState::Leaf(Leaf::Account { key, next, .. }), Some(h)) => {
                    Some(leaf_hash(&Leaf::Account {
                        key,
                        account_hash: *h,
                        next,
                    }))
                }
                _ => None,
            };
            (*p, st, new)
        });
        let mut early: Vec<(u32, Hash)> = pre
            .iter()
            .filter_map(|(p, _, h)| Some((*p, (*h)?)))
            .collect();
        let mut before: Vec<(u32, LeafState)> = pre.into_iter().map(|(p, st, _)| (p, st)).collect();
        let mut relinked: Vec<u32> = Vec::new();
        let mut dirty: Vec<u32> = Vec::with_capacity(changes.len() + 16);
        let mut positions = Vec::with_capacity(changes.len());
        for (c, found) in changes.iter().zip(found) {
            // An earlier change of this slot may have inserted or deleted the same key.
            let at = match found {
                Some(p) if self.entries[p as usize].is_some_and(|e| e.key == c.key) => Some(p),
                _ => self.index.get(&c.key).copied(),
            };
            let pos = match (at, c.account_hash) {
                (Some(p), Some(h)) => {
                    if found.is_none() {
                        before.push((p, self.leaf_state(p)));
                        relinked.push(p);
                    }
                    if let Some(e) = self.entries[p as usize].as_mut() {
                        e.account_hash = h;
                    }
                    dirty.push(p);
                    p
                }
                (Some(p), None) => {
                    let pred = self.predecessor(&c.key);
                    before.push((pred, self.leaf_state(pred)));
                    before.push((p, self.leaf_state(p)));
                    self.links[pred as usize] = self.links[p as usize];
                    self.links[p as usize] = NO_NEXT;
                    self.order.remove(&c.key);
                    self.index.remove(&c.key);
                    self.entries[p as usize] = None;
                    self.free.insert(p);
                    dirty.extend([p, pred]);
                    relinked.extend([p, pred]);
                    0
                }
                (None, Some(h)) => {
                    let pred = self.predecessor(&c.key);
                    before.push((pred, self.leaf_state(pred)));
                    let p = match self.free.pop_first() {
                        Some(p) => p,
                        None => {
                            self.entries.push(None);
                            self.links.push(NO_NEXT);
                            (self.entries.len() - 1) as u32
                        }
                    };
                    before.push((p, self.leaf_state(p)));
                    self.order.insert(c.key, p);
                    self.index.insert(c.key, p);
                    self.entries[p as usize] = Some(Entry {
                        key: c.key,
                        account_hash: h,
                    });
                    self.links[p as usize] = self.links[pred as usize];
                    self.links[pred as usize] = p;
                    dirty.extend([p, pred]);
                    relinked.extend([p, pred]);
                    p
                }
                (None, None) => 0,
            };
            positions.push(pos);
        }
        while self.entries.len() > 1 && self.entries.last() == Some(&None) {
            self.entries.pop();
            self.links.pop();
            self.free.remove(&(self.entries.len() as u32));
        }
        let leaves = before;
        let mut undo = Undo {
            old_positions: old_positions as u32,
            leaves,
            nodes: Vec::new(),
            old_level_lens,
        };
        // Hash over the larger of the old and new extents, so every node that changes
        // (including those about to fall off the end) is recorded; then trim.
        let span = old_positions.max(self.entries.len());
        let top = depth_for(span);
        while self.levels.len() <= top {
            self.levels.push(Vec::new());
        }
        dirty.sort_unstable();
        dirty.dedup();
        for l in 0..=top {
            if l > 0 {
                for d in dirty.iter_mut() {
                    *d >>= 1;
                }
                dirty.dedup();
            }
            let len = span.div_ceil(1 << l);
            let zero = self.zero[l];
            if self.levels[l].len() < len {
                self.levels[l].resize(len, zero);
            }
            let values = if l == 0 {
                self.leaf_hashes(&dirty, &mut early, &mut relinked)
            } else {
                par_map(&dirty, |i| self.child_pair(l, *i))
            };
            let row = &mut self.levels[l];
            let mut old = Vec::with_capacity(dirty.len());
            for (i, v) in dirty.iter().zip(values) {
                let slot = &mut row[*i as usize];
                old.push((*i, *slot));
                *slot = v;
            }
            undo.nodes.push(old);
        }
        self.trim_levels();
        (undo, positions)
    }

    /// New hashes of the `dirty` leaves (sorted): those hashed early unless relinked since
    /// (or changed twice in the slot), the rest now.
    fn leaf_hashes(
        &self,
        dirty: &[u32],
        early: &mut Vec<(u32, Hash)>,
        relinked: &mut Vec<u32>,
    ) -> Vec<Hash> {
        early.sort_unstable_by_key(|e| e.0);
        relinked.sort_unstable();
        let mut twice = early
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| w[0].0)
            .collect::<Vec<_>>();
        relinked.append(&mut twice);
        relinked.sort_unstable();
        early.retain(|(p, _)| relinked.binary_search(p).is_err());
        let mut out: Vec<Option<Hash>> = Vec::with_capacity(dirty.len());
        let mut e = early.iter().peekable();
        let mut missing = Vec::new();
        for (i, p) in dirty.iter().enumerate() {
            while e.peek().is_some_and(|x| x.0 < *p) {
                e.next();
            }
            match e.peek() {
                Some(x) if x.0 == *p => out.push(Some(x.1)),
                _ => {
                    out.push(None);
                    missing.push((i, *p));
                }
            }
        }
        let computed = par_map(&missing, |(_, p)| self.leaf_state(*p).hash());
        for ((i, _), h) in missing.iter().zip(computed) {
            out[*i] = Some(h);
        }
        out.into_iter()
            .map(|h| h.expect("every dirty leaf hashed"))
            .collect()
    }

    fn trim_levels(&mut self) {
        let n = self.entries.len();
        let depth = depth_for(n);
        self.levels.truncate(depth + 1);
        for (l, row) in self.levels.iter_mut().enumerate() {
            row.truncate(n.div_ceil(1 << l));
        }
    }

    /// Undoes the most recent `apply` (a commit that failed to become durable).
    pub fn rollback(&mut self, undo: Undo) {
        for (p, _) in &undo.leaves {
            if let Some(Some(e)) = self.entries.get(*p as usize) {
                self.order.remove(&e.key);
                self.index.remove(&e.key);
            }
        }
        let old = undo.old_positions as usize;
        self.entries.resize(old, None);
        self.links.resize(old, NO_NEXT);
        let _ = self.free.split_off(&(old as u32));
        // The first record of each position is its state before the slot.
        let mut seen = std::collections::HashSet::new();
        let firsts: Vec<&(u32, LeafState)> = undo
            .leaves
            .iter()
            .filter(|(p, _)| seen.insert(*p))
            .collect();
        for (p, state) in firsts.iter().copied() {
            match state {
                LeafState::Leaf(Leaf::Account {
                    key, account_hash, ..
                }) => {
                    self.entries[*p as usize] = Some(Entry {
                        key: *key,
                        account_hash: *account_hash,
                    });
                    self.order.insert(*key, *p);
                    self.index.insert(*key, *p);
                    self.free.remove(p);
                }
                LeafState::Empty if (*p as usize) < old => {
                    self.entries[*p as usize] = None;
                    self.free.insert(*p);
                }
                _ => {}
            }
        }
        // Only the recorded positions can have had their next key changed.
        for (p, state) in firsts {
            let next = match state {
                LeafState::Leaf(l) => l.next(),
                LeafState::Empty => None,
            };
            if (*p as usize) < old {
                self.links[*p as usize] = next
                    .and_then(|k| self.index.get(&k).copied())
                    .unwrap_or(NO_NEXT);
            }
        }
        self.levels.resize(undo.old_level_lens.len(), Vec::new());
        for (l, len) in undo.old_level_lens.iter().enumerate() {
            let zero = self.zero[l];
            self.levels[l].resize(*len, zero);
        }
        for (l, nodes) in undo.nodes.iter().enumerate() {
            let Some(row) = self.levels.get_mut(l) else {
                continue;
            };
            for (i, v) in nodes {
                if let Some(slot) = row.get_mut(*i as usize) {
                    *slot = *v;
                }
            }
        }
    }

    /// Bytes held by the tree (entries, order map, levels), for the benchmark's memory figure.
    pub fn memory_bytes(&self) -> usize {
        // A BTreeMap entry costs its key and value plus roughly a third in node overhead.
        let order = self.order.len() * (32 + 4) * 4 / 3 + self.index.capacity() * (36 + 1);
        let entries = self.entries.capacity() * std::mem::size_of::<Option<Entry>>()
            + self.links.capacity() * 4;
        let levels: usize = self.levels.iter().map(|r| r.capacity() * 32).sum();
        order + entries + levels + self.free.len() * 8
    }
}

#[cfg(test)]
impl StateTree {
    /// Every account's position and entry (tests rebuild a tree from them).
    pub fn entries(&self) -> Vec<(u32, Entry)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(p, e)| e.map(|e| (p as u32, e)))
            .collect()
    }
}
