//! The node and its one-sequencer "cluster": identity, epochs, leaders, votes, inflation,
//! snapshots, supply, performance samples and prioritization fees, answered in Agave's shapes.
//!
//! A single sequencer has no votes, stake, inflation or other nodes. Each method answers what
//! Agave answers for an equivalent node: this node's identity is the only leader and the only
//! cluster node (it leads every slot and produced every block), the vote account lists are
//! empty, inflation is zero and nobody is rewarded (README.md, "JSON-RPC methods").

use super::methods::Rpc;
use super::params::Call;
use super::server::{RpcError, RpcResult};
use runtime::chain::Commitment;
use runtime::svm::SvmEnv;
use serde_json::{Value, json};
use solana_epoch_schedule::EpochSchedule;
use solana_pubkey::Pubkey;
use std::net::SocketAddr;
use std::sync::OnceLock;

/// Who this node is and where it listens (getIdentity, getClusterNodes, the leader methods).
pub struct NodeInfo {
    /// The sequencer's identity: it collects the fees, as a validator's identity does.
    pub identity: Pubkey,
    /// Where transactions are accepted over UDP (Agave's `tpu`).
    pub tpu: SocketAddr,
    /// Set once the servers listen.
    pub rpc: OnceLock<SocketAddr>,
    pub pubsub: OnceLock<SocketAddr>,
}

impl NodeInfo {
    pub fn new(identity: Pubkey, tpu: SocketAddr) -> Self {
        Self {
            identity,
            tpu,
            rpc: OnceLock::new(),
            pubsub: OnceLock::new(),
        }
    }
}

/// Agave's SlotHistory holds the last 1,048,576 slots: getBlockProduction's range bound.
const SLOT_HISTORY_ENTRIES: u64 = 1024 * 1024;
/// Agave's "no snapshot" error.
const NO_SNAPSHOT: i64 = -32008;

fn epoch_schedule() -> EpochSchedule {
    // What the runtime's EpochSchedule sysvar holds (runtime/src/svm.rs).
    EpochSchedule::without_warmup()
}

impl Rpc {
    /// Answers the calls listed under "The node and its one-sequencer cluster" in [`Call`].
    pub(crate) fn cluster(&self, call: Call) -> RpcResult {
        let id = self.node.identity.to_string();
        match call {
            Call::GetIdentity => Ok(json!({"identity": id})),
            Call::GetEpochSchedule => {
                let s = epoch_schedule();
                Ok(json!({
                    "slotsPerEpoch": s.slots_per_epoch,
                    "leaderScheduleSlotOffset": s.leader_schedule_slot_offset,
                    "warmup": s.warmup,
                    "firstNormalEpoch": s.first_normal_epoch,
                    "firstNormalSlot": s.first_normal_slot,
                }))
            }
            Call::GetSlotLeader(at) => {
                self.slot_for(&at)?;
                Ok(json!(id))
            }
            Call::GetSlotLeaders { start, limit } => {
                if limit > 0 {
                    let last_epoch = SvmEnv::epoch_of(start.saturating_add(limit - 1));
                    let known = self.known_schedule_epoch();
                    if last_epoch > known {
                        return Err(RpcError::invalid_params(format!(
                            "Invalid slot range: leader schedule for epoch {} is unavailable",
                            SvmEnv::epoch_of(start).max(known + 1)
                        )));
                    }
                }
                Ok(Value::Array(vec![json!(id); limit as usize]))
            }
            Call::GetLeaderSchedule {
                slot,
                identity,
                commitment,
            } => {
                let slot = slot.unwrap_or_else(|| self.chain.slot_at(commitment));
                let epoch = SvmEnv::epoch_of(slot);
                if epoch > self.known_schedule_epoch() {
                    return Ok(Value::Null);
                }
                if identity.is_some_and(|k| k != self.node.identity) {
                    return Ok(json!({}));
                }
                let slots = epoch_schedule().get_slots_in_epoch(epoch);
                let indexes: Vec<Value> = (0..slots).map(Value::from).collect();
                Ok(json!({ id: indexes }))
            }
            Call::GetClusterNodes => Ok(json!([{
                "pubkey": id,
                "gossip": null,
                "tvu": null,
                "tpu": self.node.tpu.to_string(),
                "tpuQuic": null,
                "tpuForwards": null,
                "tpuForwardsQuic": null,
                "tpuVote": null,
                "serveRepair": null,
                "rpc": self.node.rpc.get().map(|a| a.to_string()),
                "pubsub": self.node.pubsub.get().map(|a| a.to_string()),
                "version": super::methods::SOLANA_CORE_VERSION,
                "featureSet": 0,
                "shredVersion": 0,
            }])),
            Call::GetVoteAccounts { .. } => Ok(json!({"current": [], "delinquent": []})),
            Call::GetTransactionCount(at) => {
                self.slot_for(&at)?;
                Ok(json!(self.chain.transaction_count()))
            }
            Call::GetInflationGovernor => Ok(json!({
                "initial": 0.0, "terminal": 0.0, "taper": 0.0,
                "foundation": 0.0, "foundationTerm": 0.0,
            })),
            Call::GetInflationRate => Ok(json!({
                "total": 0.0, "validator": 0.0, "foundation": 0.0,
                "epoch": SvmEnv::epoch_of(self.chain.durable_slot()),
            })),
            // No epoch pays rewards: Agave answers `null` per address for an epoch without.
            Call::GetInflationReward { addresses, at, .. } => {
                self.slot_for(&at)?;
                Ok(Value::Array(vec![Value::Null; addresses.len()]))
            }
            Call::GetStakeMinimumDelegation(at) => {
                let (_, slot) = self.slot_for(&at)?;
                // No stake program runs here; Agave's value without the 1-SOL minimum feature.
                Ok(json!({"context": self.context(slot), "value": 1}))
            }
            Call::GetBlockCommitment { .. } => Ok(json!({"commitment": null, "totalStake": 0})),
            Call::GetBlockProduction {
                identity,
                range,
                commitment,
            } => self.block_production(identity, range, commitment),
            Call::GetHighestSnapshotSlot => Err(RpcError::new(NO_SNAPSHOT, "No snapshot")),
            Call::GetMaxSlot => Ok(json!(self.chain.processed_slot())),
            Call::GetRecentPerformanceSamples { limit } => Ok(Value::Array(
                self.chain
                    .perf_samples(limit as usize)
                    .into_iter()
                    .map(|s| {
                        json!({
                            "slot": s.slot,
                            "numTransactions": s.num_transactions,
                            "numNonVoteTransactions": s.num_transactions,
                            "samplePeriodSecs": s.sample_period_secs,
                            "numSlots": s.num_slots,
                        })
                    })
                    .collect(),
            )),
            Call::GetRecentPrioritizationFees { accounts } => Ok(Value::Array(
                self.fees
                    .recent(&self.chain, &accounts)
                    .into_iter()
                    .map(|(slot, fee)| json!({"slot": slot, "prioritizationFee": fee}))
                    .collect(),
            )),
            Call::GetSupply { at } => {
                let (_, slot) = self.slot_for(&at)?;
                let s = self.supply_walk()?;
                Ok(json!({"context": self.context(slot), "value": {
                    "total": s.total_lamports,
                    "circulating": s.total_lamports,
                    "nonCirculating": 0,
                    "nonCirculatingAccounts": [],
                }}))
            }
            Call::GetLargestAccounts {
                at,
                non_circulating,
            } => {
                let (_, slot) = self.slot_for(&at)?;
                let value: Vec<Value> = if non_circulating {
                    Vec::new()
                } else {
                    self.supply_walk()?
                        .largest
                        .iter()
                        .map(|(k, l)| json!({"address": k.to_string(), "lamports": l}))
                        .collect()
                };
                Ok(json!({"context": self.context(slot), "value": value}))
            }
            _ => unreachable!("Rpc::call routes only the cluster calls here"),
        }
    }

    fn supply_walk(&self) -> Result<std::sync::Arc<crate::supply::Supply>, RpcError> {
        self.supply
            .get(&self.db, self.chain.durable_slot())
            .map_err(|e| RpcError::internal(format!("accounts unreadable: {e}")))
    }

    /// The newest epoch with a leader schedule: as on Agave, the current one and the next.
    fn known_schedule_epoch(&self) -> u64 {
        SvmEnv::epoch_of(self.chain.processed_slot()) + 1
    }

    fn block_production(
        &self,
        identity: Option<Pubkey>,
        range: Option<(u64, Option<u64>)>,
        commitment: Commitment,
    ) -> RpcResult {
        let slot = self.chain.slot_at(commitment);
        let (first, last) = match range {
            None => (
                epoch_schedule().get_first_slot_in_epoch(SvmEnv::epoch_of(slot)),
                slot,
            ),
            Some((first, last)) => {
                let last = last.unwrap_or(slot);
                if last < first {
                    return Err(RpcError::invalid_params(format!(
                        "lastSlot, {last}, cannot be less than firstSlot, {first}"
                    )));
                }
                (first, last)
            }
        };
        let oldest = slot.saturating_sub(SLOT_HISTORY_ENTRIES - 1);
        if first < oldest {
            return Err(RpcError::invalid_params(format!(
                "firstSlot, {first}, is too small; min {oldest}"
            )));
        }
        if last > slot {
            return Err(RpcError::invalid_params(format!(
                "lastSlot, {last}, is too large; max {slot}"
            )));
        }
        // This node led every slot and produced a block in each (empty slots included).
        let n = last - first + 1;
        let by_identity = if identity.is_none_or(|k| k == self.node.identity) {
            json!({ self.node.identity.to_string(): [n, n] })
        } else {
            json!({})
        };
        Ok(json!({"context": self.context(slot), "value": {
            "byIdentity": by_identity,
            "range": {"firstSlot": first, "lastSlot": last},
        }}))
    }
}
