//! The cluster's state root: one root per slot over every owning node's state root, and the
//! path a light-client proof carries through it.
//!
//! Each node commits, per slot, to a Merkle root over the accounts it holds (`storage`'s
//! state commitment, `getSlotHeader`). The cluster's root for slot `s` at map epoch `e` is a
//! binary Merkle tree over one leaf per node that owns partitions at `e`, in node-id order:
//!
//! ```text
//! leaf  = SHA-256(0x00 ‖ "gigacompute cluster root v1" ‖ epoch u64 LE ‖ partitions u16 LE ‖
//!                 owned bitmap (ceil(partitions / 8) bytes, bit p % 8 of byte p / 8) ‖
//!                 id length u8 ‖ id ‖ the node's state root at s)
//! inner = SHA-256(0x01 ‖ left ‖ right)
//! ```
//!
//! The leaves are padded with zero hashes to a power of two. Plain SHA-256 with domain bytes,
//! so a verifier needs nothing but SHA-256.
//!
//! A light-client proof of account `k` at slot `s` is the account's proof against its owner's
//! state root (`stateproof`), the owner's leaf fields, and the leaf's path to the cluster
//! root. The verifier checks the account proof, rebuilds the leaf, walks the path, and checks
//! that `partition_of(k)` is set in the owner's bitmap: the leaves of one root come from one
//! map, whose partitions have one owner each, so exactly one leaf can vouch for `k` (a node
//! also holds copies of other nodes' accounts — replicas, global accounts — which its
//! bitmap does not claim).

use sha2::{Digest, Sha256};

const LEAF_DOMAIN: &[u8] = b"gigacompute cluster root v1";

/// One owning node's part of the cluster root at one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLeaf {
    pub node: String,
    pub epoch: u64,
    pub partitions: u16,
    /// Partitions the node owns at `epoch`, ascending.
    pub owned: Vec<u16>,
    pub state_root: [u8; 32],
}

impl NodeLeaf {
    pub fn bitmap(&self) -> Vec<u8> {
        let mut b = vec![0u8; usize::from(self.partitions).div_ceil(8)];
        for p in &self.owned {
            if let Some(byte) = b.get_mut(usize::from(*p) / 8) {
                *byte |= 1 << (p % 8);
            }
        }
        b
    }

    pub fn owns(&self, partition: u16) -> bool {
        self.bitmap()
            .get(usize::from(partition) / 8)
            .is_some_and(|b| b & (1 << (partition % 8)) != 0)
    }

    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(LEAF_DOMAIN);
        h.update(self.epoch.to_le_bytes());
        h.update(self.partitions.to_le_bytes());
        h.update(self.bitmap());
        // Node ids are at most 64 bytes (`check_node_id`).
        h.update([self.node.len().min(255) as u8]);
        h.update(self.node.as_bytes());
        h.update(self.state_root);
        h.finalize().into()
    }
}

fn inner(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root over `leaves` (in the order given), and each leaf's path (siblings, bottom up).
pub fn root_and_paths(leaves: &[[u8; 32]]) -> ([u8; 32], Vec<Vec<[u8; 32]>>) {
    let width = leaves.len().max(1).next_power_of_two();
    let mut level: Vec<[u8; 32]> = leaves.to_vec();
    level.resize(width, [0u8; 32]);
    let mut paths = vec![Vec::new(); leaves.len()];
    let mut index: Vec<usize> = (0..leaves.len()).collect();
    while level.len() > 1 {
        for (path, i) in paths.iter_mut().zip(index.iter_mut()) {
            path.push(level[*i ^ 1]);
            *i /= 2;
        }
        level = level.chunks_exact(2).map(|c| inner(&c[0], &c[1])).collect();
    }
    (level[0], paths)
}

/// The root `leaf` at `index` leads to through `path`.
pub fn root_from_path(leaf: &[u8; 32], mut index: u64, path: &[[u8; 32]]) -> [u8; 32] {
    let mut h = *leaf;
    for sib in path {
        h = if index & 1 == 1 {
            inner(sib, &h)
        } else {
            inner(&h, sib)
        };
        index >>= 1;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(node: &str, owned: &[u16]) -> NodeLeaf {
        NodeLeaf {
            node: node.into(),
            epoch: 7,
            partitions: 12,
            owned: owned.to_vec(),
            state_root: [node.len() as u8; 32],
        }
    }

    #[test]
    fn every_path_leads_to_the_root_and_a_changed_leaf_does_not() {
        for n in 1..=5 {
            let leaves: Vec<NodeLeaf> = (0..n).map(|i| leaf(&format!("n{i}"), &[i])).collect();
            let hashes: Vec<[u8; 32]> = leaves.iter().map(NodeLeaf::hash).collect();
            let (root, paths) = root_and_paths(&hashes);
            for (i, (h, p)) in hashes.iter().zip(&paths).enumerate() {
                assert_eq!(root_from_path(h, i as u64, p), root);
                if n > 1 {
                    assert_ne!(root_from_path(h, (i as u64) ^ 1, p), root, "n={n} i={i}");
                }
            }
            let mut other = leaves[0].clone();
            other.owned.push(11);
            assert_ne!(root_from_path(&other.hash(), 0, &paths[0]), root);
        }
    }

    #[test]
    fn the_bitmap_claims_exactly_the_owned_partitions() {
        let l = leaf("a", &[0, 9, 11]);
        assert_eq!(l.bitmap(), vec![0b0000_0001, 0b0000_1010]);
        assert!(l.owns(9) && l.owns(11) && l.owns(0));
        assert!(!l.owns(1) && !l.owns(10) && !l.owns(200));
    }
}
