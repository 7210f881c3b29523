//! A partition moving between nodes: the record in etcd that drives it.
//!
//! 1. **Requested** (by `gigacompute cluster move` or the rebalancer), against one map epoch:
//!    the source starts draining — it parks what arrives for the partition, takes what is
//!    queued for it out of its queue, and notes the first slot close after which nothing of
//!    the partition runs.
//! 2. **Ready**: once that slot is durable, the source has exported the partition's accounts
//!    and the signatures of its recent transactions (so that none runs twice) and says how
//!    many pages there are.
//! 3. The destination pulls the pages, writes them (after wiping any stale copy of the
//!    partition), waits until they are durable, and flips the map in one etcd transaction
//!    (owner changed, epoch + 1, record deleted) that compares both the map's and the
//!    record's revisions. It serves the partition from its next read of the map.
//! 4. The source sees the new map, forwards what it parked to the new owner and wipes its
//!    copy. A record that does not progress is aborted (deleted); the source then takes the
//!    partition back as it was and re-admits what it parked.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationState {
    Requested,
    Ready,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    pub partition: u16,
    pub from: String,
    pub to: String,
    /// The map epoch it was requested at: it applies to that map only.
    pub epoch: u64,
    pub state: MigrationState,
    /// Why: "operator", "rebalance: hot node", "scale-in", "co-locate".
    pub reason: String,
    pub requested_unix_ms: u64,
    /// When the source stopped executing the partition (drain began), Unix ms.
    pub drain_unix_ms: Option<u64>,
    /// Set when ready: the source's slot after which the partition did not change.
    pub drained_slot: Option<u64>,
    pub pages: Option<u32>,
    /// The source's registration (its node key's create revision) when it was ready: the
    /// flip requires the same one, so a source that restarted meanwhile cannot be skipped.
    pub source_registration: Option<i64>,
    pub accounts: Option<u64>,
    pub signatures: Option<u64>,
}

/// One page of an export: what the destination writes and what it must never run again.
/// Encoded with bincode by the source (it has the account types); opaque here.
pub const MAX_PAGE_BYTES: usize = 4 << 20;
