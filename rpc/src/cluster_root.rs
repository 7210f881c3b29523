//! The cluster's state root (`cluster::root`) for clients: `getClusterStateRoot` assembles a
//! slot's root from the slot header of every node that owns partitions, and
//! `getClusterAccountProof` returns an account's proof from its owner with the owner's path
//! through that root, which `gigacompute proof verify-cluster` (and any SHA-256 client)
//! checks against the root alone.

use super::methods::Rpc;
use super::server::{RpcError, RpcResult};
use ::cluster::root::{NodeLeaf, root_and_paths};
use serde_json::{Value, json};
use solana_pubkey::Pubkey;
use storage::commitment::hex;

/// What a peer answers at most (a slot header, an account with its proof: up to 10 MiB).
const MAX_ANSWER: usize = 16 << 20;
/// Slots behind this node's newest commitment that a default root is taken at, so that every
/// owner (closing slots on the same clock, committing at its own pace) has committed it.
const DEFAULT_LAG_SLOTS: u64 = 4;

fn unavailable(why: String) -> RpcError {
    RpcError::new(-32005, why)
}

/// A slot's cluster root: the leaves (node order) and their root.
struct ClusterRoot {
    slot: u64,
    epoch: u64,
    partitions: u16,
    leaves: Vec<NodeLeaf>,
    root: [u8; 32],
    paths: Vec<Vec<[u8; 32]>>,
}

impl Rpc {
    fn cluster_root(&self, slot: Option<u64>) -> Result<ClusterRoot, RpcError> {
        let Some(view) = self.cluster.as_deref() else {
            return Err(RpcError::new(
                -32601,
                "this node is not in a cluster: use getSlotHeader",
            ));
        };
        let snap = view.snapshot();
        let map = snap
            .map
            .as_ref()
            .ok_or_else(|| unavailable("no partition map yet".into()))?;
        let slot = match slot {
            Some(s) => s,
            None => self
                .db
                .slot_commitment(None)
                .map_err(|e| unavailable(e.to_string()))?
                .slot
                .saturating_sub(DEFAULT_LAG_SLOTS),
        };
        let mut leaves = Vec::new();
        for (node, owned) in map.by_node() {
            let state_root = if node == view.me() {
                self.db
                    .slot_commitment(Some(slot))
                    .map_err(|e| unavailable(format!("{node} at slot {slot}: {e}")))?
                    .root
            } else {
                let addr =
                    snap.nodes.get(node).map(|n| n.rpc).ok_or_else(|| {
                        unavailable(format!("{node} owns partitions and is down"))
                    })?;
                let h =
                    crate::forward::post(view, addr, "getSlotHeader", &json!([slot]), MAX_ANSWER)
                        .map_err(|e| unavailable(format!("{node} at slot {slot}: {}", e.message)))?;
                h.get("stateRoot")
                    .and_then(Value::as_str)
                    .and_then(|s| crate::proof_json::parse_hash(s).ok())
                    .ok_or_else(|| RpcError::internal(format!("{node} sent no state root")))?
            };
            leaves.push(NodeLeaf {
                node: node.to_string(),
                epoch: map.epoch,
                partitions: map.owners.len() as u16,
                owned,
                state_root,
            });
        }
        let hashes: Vec<[u8; 32]> = leaves.iter().map(NodeLeaf::hash).collect();
        let (root, paths) = root_and_paths(&hashes);
        Ok(ClusterRoot {
            slot,
            epoch: map.epoch,
            partitions: map.owners.len() as u16,
            leaves,
            root,
            paths,
        })
    }

    /// `getClusterStateRoot [slot | {slot}]`: the cluster's state root at `slot` (default: a
    /// few slots behind this node's newest commitment).
    pub(crate) fn cluster_state_root(&self, slot: Option<u64>) -> RpcResult {
        let r = self.cluster_root(slot)?;
        let nodes: Vec<Value> = r
            .leaves
            .iter()
            .map(|l| {
                json!({
                    "node": l.node,
                    "partitions": l.owned,
                    "stateRoot": hex(&l.state_root),
                    "leaf": hex(&l.hash()),
                })
            })
            .collect();
        Ok(json!({
            "slot": r.slot,
            "epoch": r.epoch,
            "partitions": r.partitions,
            "root": hex(&r.root),
            "nodes": nodes,
        }))
    }

    /// `getClusterAccountProof [key, {slot}]`: `key`'s state at `slot` proven by its owner,
    /// with the owner's leaf and its path to the cluster root.
    pub(crate) fn cluster_account_proof(&self, key: &Pubkey, slot: Option<u64>) -> RpcResult {
        let r = self.cluster_root(slot)?;
        let partition = ::cluster::partition_of(&key.to_bytes(), r.partitions);
        let (index, leaf) = r
            .leaves
            .iter()
            .enumerate()
            .find(|(_, l)| l.owns(partition))
            .ok_or_else(|| unavailable(format!("no node owns partition {partition}")))?;
        let account = if Some(leaf.node.as_str()) == self.cluster.as_deref().map(|v| v.me()) {
            self.account_with_proof(key, Some(r.slot))?
        } else {
            let view = self.cluster.as_deref().expect("checked by cluster_root");
            let addr = view
                .snapshot()
                .nodes
                .get(&leaf.node)
                .map(|n| n.rpc)
                .ok_or_else(|| unavailable(format!("{} is down", leaf.node)))?;
            crate::forward::post(
                view,
                addr,
                "getAccountWithProof",
                &json!([key.to_string(), {"slot": r.slot}]),
                MAX_ANSWER,
            )
            .map_err(|e| unavailable(format!("{}: {}", leaf.node, e.message)))?
        };
        let account = account.get("value").cloned().unwrap_or(account);
        Ok(json!({
            "context": {"slot": r.slot, "apiVersion": super::methods::SOLANA_CORE_VERSION},
            "value": {
                "clusterRoot": hex(&r.root),
                "slot": r.slot,
                "epoch": r.epoch,
                "partitions": r.partitions,
                "partition": partition,
                "owner": leaf.node,
                "ownerPartitions": leaf.owned,
                "ownerStateRoot": hex(&leaf.state_root),
                "leafIndex": index,
                "path": r.paths[index].iter().map(|h| hex(h)).collect::<Vec<_>>(),
                "account": account,
            },
        }))
    }
}
