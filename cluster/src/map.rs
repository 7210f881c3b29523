//! Who owns what: the cluster's fixed parameters ([`ClusterSpec`]), the partition map
//! ([`PartitionMap`]) and the one rule that places an account in a partition
//! ([`partition_of`]). Pure data: no etcd, no clock.
//!
//! An account belongs to one of `spec.partitions` hash partitions, a function of its key
//! alone, so that any node, and a router that holds no state, can tell where an account
//! lives without reading it. The map names each partition's owning node and carries the
//! configuration epoch: every change of ownership is a new map with a higher epoch, written
//! by one etcd transaction that compares the previous map's revision.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Partitions at most: the map is one etcd value (etcd's default request limit is 1.5 MiB).
pub const MAX_PARTITIONS: u16 = 4096;
/// Partitions a cluster gets unless `cluster init --partitions` says otherwise: enough to
/// spread over tens of nodes, few enough that the map is a few KiB.
pub const DEFAULT_PARTITIONS: u16 = 64;
/// Longest node id (it is part of etcd keys and of every map entry).
pub const MAX_NODE_ID: usize = 64;

/// The cluster's fixed parameters, written once by `gigacompute cluster init`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub name: String,
    /// Hash partitions the accounts are spread over.
    pub partitions: u16,
    /// Slot 0 of the cluster clock began at this time (Unix ms): every node closes slot `s`
    /// at `genesis_unix_ms + (s + 1) * slot_ms`, so slots have one number cluster-wide.
    pub genesis_unix_ms: u64,
    pub slot_ms: u64,
    /// Hex of 32 random bytes: the blockhash of slot `s` is SHA-256(seed ‖ s), the same on
    /// every node and unpredictable to anyone without etcd access.
    pub blockhash_seed: String,
}

/// The ownership of every partition at one configuration epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMap {
    pub epoch: u64,
    /// `owners[p]`: the node that owns partition `p`.
    pub owners: Vec<String>,
    /// `followers[n]`: the node that holds a replica of what node `n` owns, and takes it
    /// over when `n`'s lease expires. Written by `n` itself (`etcd::set_follower`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub followers: BTreeMap<String, String>,
}

/// Why a map or spec is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    #[error("partitions must be 1..={MAX_PARTITIONS}, not {0}")]
    Partitions(usize),
    #[error("the map names {got} partitions; the cluster has {want}")]
    Length { got: usize, want: usize },
    #[error("node id {0:?} is not 1..={MAX_NODE_ID} characters of [A-Za-z0-9._-]")]
    NodeId(String),
    #[error("no node to own the partitions")]
    NoNodes,
    #[error("slot_ms must be 1..=60000, not {0}")]
    SlotMs(u64),
    #[error("blockhash_seed must be 64 hex digits")]
    Seed,
}

/// A node id is used in etcd keys and logs: short, printable, no separators.
pub fn check_node_id(id: &str) -> Result<(), MapError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_NODE_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(MapError::NodeId(id.to_string()))
    }
}

/// The partition of an account: all 32 key bytes through MurmurHash3's 64-bit finaliser, so
/// keys that share a prefix or a suffix (vanity keys, PDAs of one program) still spread
/// evenly. Fixed forever: changing it would move every account.
pub fn partition_of(key: &[u8; 32], partitions: u16) -> u16 {
    fn fmix64(mut h: u64) -> u64 {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    let mut h = 0u64;
    for chunk in key.chunks_exact(8) {
        h = fmix64(h ^ u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
    }
    (h % u64::from(partitions.max(1))) as u16
}

impl ClusterSpec {
    pub fn check(&self) -> Result<(), MapError> {
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS {
            return Err(MapError::Partitions(self.partitions as usize));
        }
        if self.slot_ms == 0 || self.slot_ms > 60_000 {
            return Err(MapError::SlotMs(self.slot_ms));
        }
        self.seed().map(|_| ())
    }

    pub fn seed(&self) -> Result<[u8; 32], MapError> {
        let s = self.blockhash_seed.as_bytes();
        if s.len() != 64 {
            return Err(MapError::Seed);
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(|_| MapError::Seed)?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| MapError::Seed)?;
        }
        Ok(out)
    }
}

impl PartitionMap {
    /// Epoch 1: the partitions dealt round-robin over `nodes` (in the order given).
    pub fn initial(partitions: u16, nodes: &[String]) -> Result<Self, MapError> {
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(MapError::Partitions(partitions as usize));
        }
        if nodes.is_empty() {
            return Err(MapError::NoNodes);
        }
        for n in nodes {
            check_node_id(n)?;
        }
        Ok(Self {
            epoch: 1,
            owners: (0..partitions as usize)
                .map(|p| nodes[p % nodes.len()].clone())
                .collect(),
            followers: BTreeMap::new(),
        })
    }

    /// A map read from etcd is used only if it fits the cluster's spec and names valid nodes.
    pub fn check(&self, spec: &ClusterSpec) -> Result<(), MapError> {
        if self.owners.len() != spec.partitions as usize {
            return Err(MapError::Length {
                got: self.owners.len(),
                want: spec.partitions as usize,
            });
        }
        self.owners
            .iter()
            .chain(self.followers.keys())
            .chain(self.followers.values())
            .try_for_each(|n| check_node_id(n))
    }

    /// The follower `node` should have among the `live` nodes: the one it has if that one is
    /// live, else the next live id after it in sorted order (wrapping), so followers form a
    /// ring and a joining node changes no one's follower. None when `node` is alone.
    pub fn follower_for<'a>(
        &'a self,
        node: &str,
        live: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'a str> {
        let mut live: Vec<&str> = live.into_iter().filter(|n| *n != node).collect();
        live.sort_unstable();
        if let Some(f) = self.followers.get(node)
            && live.contains(&f.as_str())
        {
            return Some(f.as_str());
        }
        live.iter().find(|n| **n > node).or(live.first()).copied()
    }

    pub fn owner(&self, partition: u16) -> Option<&str> {
        self.owners.get(partition as usize).map(String::as_str)
    }

    pub fn owner_of(&self, key: &[u8; 32]) -> &str {
        let p = partition_of(key, self.owners.len() as u16);
        &self.owners[p as usize]
    }

    /// Partitions each node owns, by node id.
    pub fn by_node(&self) -> BTreeMap<&str, Vec<u16>> {
        let mut m: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
        for (p, n) in self.owners.iter().enumerate() {
            m.entry(n.as_str()).or_default().push(p as u16);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn partitions_spread_keys_evenly_even_with_shared_prefixes() {
        let parts = 64u16;
        let mut counts = vec![0u32; parts as usize];
        for i in 0..64_000u32 {
            // A vanity-style key: 28 shared bytes, only the last four differ.
            let mut k = [7u8; 32];
            k[28..].copy_from_slice(&i.to_le_bytes());
            counts[partition_of(&k, parts) as usize] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 800 && *max < 1200, "uneven: {min}..{max}");
    }

    #[test]
    fn followers_form_a_ring_and_stick() {
        let mut m = PartitionMap::initial(4, &nodes(3)).unwrap();
        let live = ["n0", "n1", "n2"];
        assert_eq!(m.follower_for("n0", live), Some("n1"));
        assert_eq!(m.follower_for("n2", live), Some("n0"));
        assert_eq!(m.follower_for("n0", ["n0"]), None);
        // A follower that is live is kept even when a closer id joins.
        m.followers.insert("n0".into(), "n2".into());
        assert_eq!(m.follower_for("n0", live), Some("n2"));
        // A dead one is replaced by the next live id.
        assert_eq!(m.follower_for("n0", ["n0", "n1"]), Some("n1"));
        // Old maps (no followers) still parse; bad ids in followers are refused.
        let old: PartitionMap = serde_json::from_str(r#"{"epoch":3,"owners":["a"]}"#).unwrap();
        assert!(old.followers.is_empty());
        m.followers.insert("n1".into(), "bad id".into());
        let spec = ClusterSpec {
            name: "c".into(),
            partitions: 4,
            genesis_unix_ms: 0,
            slot_ms: 50,
            blockhash_seed: "00".repeat(32),
        };
        assert!(m.check(&spec).is_err());
    }

    #[test]
    fn initial_map_deals_round_robin_and_checks_ids() {
        let m = PartitionMap::initial(8, &nodes(3)).unwrap();
        assert_eq!(m.epoch, 1);
        assert_eq!(m.by_node()["n0"], vec![0, 3, 6]);
        assert_eq!(m.by_node()["n2"], vec![2, 5]);
        assert_eq!(
            PartitionMap::initial(8, &["a/b".into()]),
            Err(MapError::NodeId("a/b".into()))
        );
        assert_eq!(
            PartitionMap::initial(0, &nodes(1)),
            Err(MapError::Partitions(0))
        );
        assert_eq!(PartitionMap::initial(4, &[]), Err(MapError::NoNodes));
    }

    #[test]
    fn a_map_that_does_not_fit_the_spec_is_refused() {
        let spec = ClusterSpec {
            name: "c".into(),
            partitions: 8,
            genesis_unix_ms: 0,
            slot_ms: 400,
            blockhash_seed: "ab".repeat(32),
        };
        spec.check().unwrap();
        let mut m = PartitionMap::initial(8, &nodes(2)).unwrap();
        m.check(&spec).unwrap();
        m.owners.pop();
        assert!(matches!(
            m.check(&spec),
            Err(MapError::Length { got: 7, want: 8 })
        ));
        let bad = ClusterSpec {
            blockhash_seed: "zz".repeat(32),
            ..spec
        };
        assert_eq!(bad.check(), Err(MapError::Seed));
    }
}
