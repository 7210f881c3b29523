//! The tree as it was at an earlier slot: the current tree seen through the undo records
//! of every later slot (the earliest record of a position or node is its value back then).

use super::tree::{LeafState, StateTree, Undo};
use stateproof::{Hash, Key, Leaf};
use std::collections::{BTreeMap, HashMap};

pub struct View<'a> {
    tree: &'a StateTree,
    /// Undo records of the slots after the viewed one, oldest first.
    later: Vec<&'a Undo>,
    leaves: HashMap<u32, LeafState>,
    /// Keys held at the viewed slot by positions that changed since.
    moved_keys: BTreeMap<Key, u32>,
}

impl<'a> View<'a> {
    pub fn new(tree: &'a StateTree, later: Vec<&'a Undo>) -> Self {
        let mut leaves = HashMap::new();
        for u in &later {
            for (p, st) in &u.leaves {
                leaves.entry(*p).or_insert(*st);
            }
        }
        let moved_keys = leaves
            .iter()
            .filter_map(|(p, st)| match st {
                LeafState::Leaf(Leaf::Account { key, .. }) => Some((*key, *p)),
                _ => None,
            })
            .collect();
        View {
            tree,
            later,
            leaves,
            moved_keys,
        }
    }

    pub fn leaf_state(&self, p: u32) -> LeafState {
        match self.leaves.get(&p) {
            Some(st) => *st,
            None => self.tree.leaf_state(p),
        }
    }

    pub fn node(&self, level: usize, index: u32) -> Hash {
        self.later
            .iter()
            .find_map(|u| u.node(level, index))
            .unwrap_or_else(|| self.tree.node(level, index))
    }

    /// The key's position if it existed, else the position of its lower neighbour (or the
    /// sentinel's): `(position, present)`.
    pub fn locate(&self, key: &Key) -> (u32, bool) {
        if let Some(p) = self.tree.position(key)
            && !self.leaves.contains_key(&p)
        {
            return (p, true);
        }
        if let Some(p) = self.moved_keys.get(key) {
            return (*p, true);
        }
        let unchanged = self
            .tree
            .keys_below(key)
            .find(|(_, p)| !self.leaves.contains_key(p));
        let moved = self.moved_keys.range(..*key).next_back();
        let low = match (unchanged, moved) {
            (Some((ka, pa)), Some((kb, pb))) => {
                if ka > kb {
                    pa
                } else {
                    *pb
                }
            }
            (Some((_, p)), None) => p,
            (None, Some((_, p))) => *p,
            (None, None) => 0,
        };
        (low, false)
    }

    pub fn siblings(&self, position: u32, depth: usize) -> Vec<Hash> {
        (0..depth)
            .map(|l| self.node(l, (position >> l) ^ 1))
            .collect()
    }
}
