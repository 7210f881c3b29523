//! The `[runtime]` section (slots, workers, queues), declared once: the TOML file is read into
//! this type and the runtime starts from it. [`RuntimeSetup`] adds what the operator does not
//! write in that section: the scheduler's section, placement and genesis.

use crate::genesis::GenesisConfig;
use crate::scheduler::SchedulerConfig;
use serde::{Deserialize, Serialize};
use telemetry::config::{InvalidConfig, ensure};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Slot length, ms; each slot closes with a durable commit.
    pub slot_ms: u64,
    pub workers: usize,
    /// Core per worker, by index; empty: from the last core down ([`crate::worker_core`]).
    pub worker_cores: Vec<usize>,
    pub batch_max: usize,
    /// Verified transactions the bank admits per turn before it looks at finished batches
    /// again (small: an idle worker waits less; large: fewer turns per transaction).
    pub admit_burst: usize,
    pub sequencer_capacity: usize,
    /// Slots whose headers and statuses stay queryable (and kept on disk for recovery).
    pub status_retention_slots: usize,
    /// And at most this many bytes of them in memory (older slots' statuses go first).
    pub status_retention_bytes: usize,
    /// Closed slots waiting for the commit tile before the bank blocks.
    pub commit_queue_slots: usize,
    /// How long a blockhash stays valid, ms: a wallet's sign-and-send time, not Solana's 150
    /// slots (7.5 s at 50 ms slots). In slots it sets `lastValidBlockHeight`, the dedup window
    /// and the least status retention.
    pub blockhash_validity_ms: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            slot_ms: 50,
            workers: 2,
            worker_cores: Vec::new(),
            batch_max: 64,
            admit_burst: 64,
            sequencer_capacity: 100_000,
            status_retention_slots: 4096,
            status_retention_bytes: 256 << 20,
            commit_queue_slots: 8,
            blockhash_validity_ms: 60_000,
        }
    }
}

impl RuntimeConfig {
    /// The blockhash validity window in slots (rounded up; at least 1).
    pub fn blockhash_validity_slots(&self) -> u64 {
        self.blockhash_validity_ms
            .div_ceil(self.slot_ms.max(1))
            .max(1)
    }

    pub fn validate(&self) -> Result<(), InvalidConfig> {
        ensure(self.slot_ms >= 1, || {
            "runtime.slot_ms must be at least 1".into()
        })?;
        ensure((1..=64).contains(&self.workers), || {
            "runtime.workers must be 1..=64".into()
        })?;
        ensure(self.batch_max >= 1, || {
            "runtime.batch_max must be at least 1".into()
        })?;
        ensure((1..=65_536).contains(&self.admit_burst), || {
            "runtime.admit_burst must be 1..=65536".into()
        })?;
        ensure(self.sequencer_capacity >= 1, || {
            "runtime.sequencer_capacity must be at least 1".into()
        })?;
        ensure(self.commit_queue_slots >= 1, || {
            "runtime.commit_queue_slots must be at least 1".into()
        })?;
        ensure(self.status_retention_bytes >= 1 << 20, || {
            "runtime.status_retention_bytes must be at least 1048576".into()
        })?;
        ensure(
            (1_000..=600_000).contains(&self.blockhash_validity_ms),
            || "runtime.blockhash_validity_ms must be 1000..=600000".into(),
        )?;
        let window = self.blockhash_validity_slots();
        ensure(self.status_retention_slots as u64 > window, || {
            format!(
                "runtime.status_retention_slots must exceed the {window}-slot blockhash window \
                 (runtime.blockhash_validity_ms / runtime.slot_ms)"
            )
        })
    }
}

/// Everything [`crate::Runtime::start`] is started from.
#[derive(Debug, Clone)]
pub struct RuntimeSetup {
    pub runtime: RuntimeConfig,
    pub scheduler: SchedulerConfig,
    /// NUMA node each worker's memory is bound to (placement; empty or `None`: not bound).
    pub worker_numa: Vec<Option<usize>>,
    pub genesis: GenesisConfig,
    /// The secondary account indexes (`[rpc] account_indexes`, `account_index_max_keys`).
    pub account_index: crate::index::IndexConfig,
    /// The `[preconf]` section.
    pub preconf: crate::preconf::PreconfConfig,
    /// Where signed pre-confirmations go (`None`: predicted and learned from, not sent).
    pub preconf_delivery: Option<crate::preconf::Delivery>,
    /// Where the bank publishes its islands each slot for `net.routing = "affinity"`.
    pub routes: Option<std::sync::Arc<dataplane::route::RouteTable>>,
    /// The `[tuner]` section and where it keeps its files.
    pub tuner: crate::tuner::TunerSetup,
    /// Scale-out (`[cluster] enabled`): the node's view of the cluster and its clock.
    pub cluster: Option<ClusterSetup>,
}

/// What the bank needs of the cluster: whether it may serve and what it owns (the view),
/// and the cluster-wide slot clock and blockhash.
#[derive(Clone)]
pub struct ClusterSetup {
    pub view: std::sync::Arc<cluster::ClusterView>,
    pub clock: cluster::ClusterClock,
    /// Accounts (and signatures) a moved partition brings, written by the bank between
    /// batches (no transaction here can touch a partition this node does not own).
    pub ops: Option<crossbeam_channel::Receiver<ClusterWrite>>,
    /// Where the bank sends a transaction whose accounts turned out to be another node's
    /// (the map changed while it was on its way).
    pub forward: Option<std::sync::Arc<std::net::UdpSocket>>,
    /// Where the commit tile hands each durable slot to be shipped to the follower.
    pub replica: Option<crate::commit::ReplicaTap>,
    /// The verify tiles' signature table: what the bank hands on without running it is
    /// forgotten there (see `ShardedDedup::remove`).
    pub dedup: Option<std::sync::Arc<dataplane::dedup::ShardedDedup>>,
}

/// Accounts to write in the open slot (a zero-lamport account deletes) and signatures other
/// nodes processed, which must not run here; `done` gets the slot they were written in.
pub struct ClusterWrite {
    pub accounts: Vec<(solana_pubkey::Pubkey, solana_account::AccountSharedData)>,
    /// Transactions that ran elsewhere.
    pub signatures: Vec<crate::chain::ForeignSignature>,
    pub done: crossbeam_channel::Sender<u64>,
}

impl std::fmt::Debug for ClusterSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSetup")
            .field("node", &self.view.me())
            .field("clock", &self.clock)
            .finish()
    }
}
