//! The appliance configuration: one TOML file composed of the sections each crate declares
//! (`dataplane::config`, `runtime::config`, `runtime::scheduler::config`, `storage::config`,
//! `history::config`, `runtime::preconf`;
//! `[rpc]`, `[metrics]` and `[faucet]` are the binary's). Every knob is documented in
//! [`DEFAULT_TOML`]; tests keep that text, the types' defaults, their key set and README's
//! configuration section identical.

pub use dataplane::config::{DpdkConfig, NetConfig, VerifyConfig};
pub use history::HistoryConfig;
pub use runtime::RuntimeConfig;
pub use runtime::preconf::PreconfConfig;
pub use runtime::scheduler::SchedulerConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
pub use storage::{StorageConfig, StorageEngine};

/// The documented default configuration (`gigacompute config default`).
pub const DEFAULT_TOML: &str = r#"# GigaCompute appliance configuration. Every value shown is the default.

# Where accounts, slot records and keypairs live.
data_dir = "./gigacompute-data"

[net]
# Transaction (TPU-style) port: one UDP datagram carries one serialized transaction.
bind = "127.0.0.1:8003"
# Datagrams taken per recvmmsg call (1..=128).
recv_burst = 64
# Kernel socket receive buffer (SO_RCVBUF), bytes. The kernel caps it at net.core.rmem_max.
recv_buffer_bytes = 33554432
# Packet buffers allocated at start; every in-flight transaction holds one. A dry pool drops
# (counted) at ingest.
packet_pool_size = 65536
# Depth of each net -> verify ring; a full ring drops (counted) at ingest.
verify_ring_depth = 8192
# Each receiving core (the UDP net tile, every DPDK RX lcore) drops repeats of the exact bytes
# it saw recently, before verification; this many are remembered (8 bytes each).
recent_filter_entries = 524288
# Which verify tile a transaction goes to: "signature" (a hash of its first signature,
# uniform) or "affinity" (a transaction writing a hot-account island goes to the tile that owns
# the island; the rest, and an island whose tile runs more than 1/64 of a ring ahead of the
# shallowest, by signature). Copies meet one dedup table either way. `gigacompute bench
# routing` compares them.
routing = "signature"

[verify]
# Signature verification tiles (threads).
tiles = 2
# Packets verified together in one batch.
batch_max = 256
# Signatures remembered for dedup, in one table all verify tiles share; when full, new
# transactions are dropped (counted) until the blockhash window (runtime.blockhash_validity_ms)
# frees room.
dedup_capacity = 4000000
# Depth of the verify -> bank ring; a full ring blocks verification (backpressure).
bank_ring_depth = 16384
# Core each verify tile is pinned to (by index), one per tile. Empty: unpinned. With
# net.routing = "affinity", a worker's new islands prefer the verify tile closest to its core.
cores = []

[runtime]
# Slot length, milliseconds. Each slot closes with a durable commit.
slot_ms = 50
# SVM worker threads.
workers = 2
# Core each worker is pinned to (by index). Empty: worker i goes to core (N-1-i) mod N, from
# the last core down. Example for isolated cores: [2, 3]
worker_cores = []
# Transactions per worker batch.
batch_max = 64
# Verified transactions the bank admits per turn before it looks at finished batches again.
admit_burst = 64
# Transactions waiting in the sequencer. When full, a newcomer evicts the lowest-priority
# queued transaction if it pays more per compute unit, else it is dropped (counted).
sequencer_capacity = 100000
# Slots whose headers and transaction statuses stay queryable (and are kept on disk for
# recovery). More than the blockhash window (blockhash_validity_ms / slot_ms).
status_retention_slots = 4096
# ...and at most this many bytes of transaction statuses in memory (logs included): past it the
# oldest slots' statuses are dropped first (counted; getSignatureStatuses then answers null).
status_retention_bytes = 268435456
# Closed slots waiting to be made durable before slot production stalls.
commit_queue_slots = 8
# How long a blockhash stays valid, milliseconds: about a wallet's sign-and-send time, as
# Solana's ~60-90 s (its 150 slots of 400 ms), not 150 of these slots (7.5 s). In slots (1,200
# at 50 ms) it sets lastValidBlockHeight, the dedup window and the least status retention.
blockhash_validity_ms = 60000

[scheduler]
# "hotspot": apps isolated from each other under load (weighted fair queuing across apps,
# per-slot compute-unit caps, hot-account islands, hybrid concurrency). "lock": the plain
# lock scheduler (one global priority order), kept for comparison.
kind = "hotspot"
# What makes an app: "program" (the top-level program) or "fee_payer". Rules carve finer
# apps: transactions of `program` that reference `account` form the app named `account`, e.g.
#   [[scheduler.apps]]
#   program = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
#   account = "<a mint>"
app_grouping = "program"
apps = []
# Fair-queuing weights by app key (default 1), e.g.
#   [scheduler.app_weights]
#   TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA = 2
app_weights = {}
# Compute units per slot. 0: Solana's limits (48M per block, 12M per writable account, for a
# 400 ms slot) scaled to runtime.slot_ms; an app may use half the block.
block_cu_limit = 0
account_cu_limit = 0
app_cu_limit = 0
# An account becomes a hot island when the write CU demanded of it per slot (moving average)
# reaches island_enter x account_cu_limit, from at least island_min_writers transactions per
# slot; it dissolves after island_cool_slots slots below island_exit x account_cu_limit.
# Island batches hold at most island_batch_max transactions and run one at a time.
island_enter = 0.25
island_exit = 0.1
island_cool_slots = 20
island_min_writers = 8
island_batch_max = 64
max_islands = 64
# Weight of the newest slot in the per-slot moving averages.
ewma_alpha = 0.2
# "hybrid": per app, optimistic execution (validated, re-executed on conflict) once its
# declared locks collide in optimistic_enter of its transactions; back to pessimistic when
# optimistic_exit of its batches re-execute, retrying after optimistic_backoff_slots (doubling).
# "pessimistic" / "optimistic": every app so.
concurrency = "hybrid"
optimistic_enter = 0.3
optimistic_exit = 0.25
optimistic_backoff_slots = 50
# What orders the queue. "performance": fee per compute unit the transaction will really cost
# (its CU learnt per instruction shape from execution, plus the wait it adds on hot accounts,
# contention_weight x CU x sum of rho/(1-rho) over its writable accounts, plus cold_read_cu per
# account read from the devices at admission): padding a CU request neither wins nor loses.
# The per-slot CU caps then reserve that learnt CU, not the request, while it runs.
# "requested": fee per requested compute unit, caps reserving the request (Agave's rules).
priority = "performance"
# Performance rule: a transaction paying above the inclusion threshold (the clearing price of
# recent congested slots) moves to the head of its lane after max_wait_slots slots queued, so
# a surge of higher bids cannot starve it (0: never).
max_wait_slots = 4
contention_weight = 1.0
cold_read_cu = 2400

[storage]
# Accounts engine: "array" (block-aligned records written through io_uring with O_DIRECT over
# the devices below, an in-memory index, a sequencer-driven cache) or "log" (an append-only
# log with the whole state in memory).
engine = "array"
# Devices of the array, in order: regular files (created with device_bytes if absent) or whole
# block devices such as "/dev/nvme1n1" (everything on them is overwritten at first start).
# Empty: one file, accounts-0.dev, in data_dir. The order is part of the array: a device
# found at another position than the one it was formatted at is refused.
devices = []
# Size of each device file the appliance creates, bytes.
device_bytes = 1073741824
# I/O and packing unit, 512 or 4096; a record smaller than a block never straddles one.
block_size = 4096
# Allocation and compaction unit, bytes; holds at least one largest (10 MiB) account.
segment_bytes = 33554432
# Memory for cached accounts, bytes.
cache_bytes = 268435456
# io_uring submission rings (false: pread/pwrite). Entries per ring (queue depth).
io_uring = true
ring_entries = 256
# Kernel-side submission polling: the poller thread sleeps after this many idle ms; 0 = off.
sqpoll_idle_ms = 0
# O_DIRECT (bypass the page cache). Filesystems that refuse it (tmpfs) fall back, logged.
direct_io = true
# Compact when the space used exceeds this multiple of the live data (both engines).
max_space_amplification = 2.0
# An app (account owner program) writing more than this share of the bytes gets a device of
# its own while it stays above half of it (needs two or more devices).
hot_app_share = 0.5
# Core each device's I/O thread (reads, prefetch) is pinned to, device i to io_cores[i % n];
# hot-account islands then prefer the workers sharing a cache with them. Empty: unpinned.
io_cores = []
# Operator placement, repeatable: this program's accounts go to these devices only.
#   [[storage.pinned_apps]]
#   program = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
#   devices = [1]
pinned_apps = []
# State commitment (array engine): slots whose state root and lattice hash getSlotHeader
# serves, and memory for the per-slot undo records that getAccountWithProof needs to prove
# at an older slot than the newest (the newest is always provable), MiB.
proof_window_slots = 1024
proof_history_mib = 1024
# Log engine: never compact a log smaller than this, bytes.
log_compaction_min_bytes = 67108864

[history]
# The ledger's history on disk (DATA_DIR/history): every durable slot's block, its
# transactions and each account's signatures, for getBlock, getBlocks, getBlockTime,
# getSignaturesForAddress and getTransaction past runtime.status_retention_slots. Kept across
# restarts; off: those methods answer only from memory (or "not available").
enabled = true
# How much is kept: at least the newest retention_slots slots (a day of 50 ms slots), at most
# retention_bytes of segment files and max_index_entries index entries in memory (one per
# transaction and one per account key of each, about 40 bytes each); the oldest whole
# segments go first when any is exceeded.
retention_slots = 1728000
retention_bytes = 4294967296
max_index_entries = 33554432
# Segment file size, bytes: one is closed and synced, and the next begun, past it (or past
# retention_slots / 16 slots).
segment_bytes = 67108864
# Appended blocks are synced to the device this often, milliseconds (and at each segment's
# close and at stop); a crash loses nothing durable: the next start catches up from the slot
# records the accounts store keeps (runtime.status_retention_slots).
sync_interval_ms = 1000
# Durable slots waiting for the history tile before the commit tile blocks (backpressure).
queue_slots = 64

[rpc]
# JSON-RPC 2.0 over HTTP (Solana's API). Loopback unless you mean to expose it.
bind = "127.0.0.1:8899"
# HTTP tiles: each serves many connections, answering one request at a time (the endpoint's
# concurrency).
threads = 4
# Largest request body accepted, bytes (413 above it, judged from Content-Length first).
max_body_bytes = 51200
# Request line and headers together, bytes (at least 8192; hyper also caps headers at 100).
max_header_bytes = 16384
# Largest response, bytes: a call whose answer would be larger gets an error (-32600) instead
# (getMultipleAccounts of large accounts: ask for fewer, or use dataSlice).
max_response_bytes = 16777216
# Open connections, in all and from one source address; more are closed on accept.
max_connections = 1024
max_connections_per_ip = 64
# Time to send a request's headers, and its body, milliseconds.
header_timeout_ms = 10000
body_timeout_ms = 10000
# A connection that moves no byte either way this long is closed (idle keep-alive, a client
# that stopped sending or stopped reading its response), milliseconds.
idle_timeout_ms = 30000
# Secondary account indexes (Agave's --account-index names) for getProgramAccounts and the
# token methods: "program-id", "spl-token-owner", "spl-token-mint". Rebuilt from the store at
# start. getProgramAccounts needs program-id; the token methods use the owner or mint index
# and fall back to program-id when it is off.
account_indexes = ["program-id", "spl-token-owner", "spl-token-mint"]
# Index entries kept at most (one per account and program, token owner or mint; about 170
# bytes each). An entry refused at the bound is counted and its program, owner or mint then
# answers -32010 until a restart rebuilds the index: never a short answer.
account_index_max_keys = 4000000

[pubsub]
# Solana's PubSub (signatureSubscribe, accountSubscribe, ...) over WebSocket, where web3.js
# and other clients look for it by default: the RPC port + 1. Loopback unless you mean to
# expose it. Messages are capped at rpc.max_body_bytes; the RPC's header timeout applies.
enabled = true
bind = "127.0.0.1:8900"
# Tiles serving the WebSocket connections.
threads = 2
# Open connections, in all and from one source address; more are closed on accept.
max_connections = 1024
max_connections_per_ip = 64
# Subscriptions one connection may hold, one source address, and all connections together
# (more are refused with an error, counted).
max_subscriptions_per_connection = 1024
max_subscriptions_per_ip = 4096
max_subscriptions = 100000
# Notifications waiting to be written to one connection, and to all, bytes: a subscriber that
# does not read is disconnected (counted), never allowed to hold up the notifier; past the
# total, every connection that is behind is.
max_queued_bytes_per_connection = 16777216
max_queued_bytes = 268435456
# A connection is pinged every half of this and closed when nothing (a pong, a message) has
# arrived from it for this long, milliseconds.
idle_timeout_ms = 60000

[metrics]
# Prometheus text endpoint (GET /metrics). Loopback unless you mean to expose it.
enabled = true
bind = "127.0.0.1:7999"

[dpdk]
# The kernel-bypass packet path: DPDK poll-mode RX lcores on a NIC or a virtual device.
# Needs a build with --features dpdk. Off: transactions arrive on the kernel UDP socket,
# which stays bound either way.
enabled = false
# EAL. The main lcore does control work (port set-up, copying counters); rx_lcores[i] polls
# RX queue i. Give them isolated cores, apart from runtime.worker_cores.
main_lcore = 0
rx_lcores = [1]
# Names EAL's runtime files; two appliances on one host need different prefixes.
file_prefix = "gigacompute"
# The hugepage mount to use ("" = the one EAL finds). no_huge = true takes normal memory
# instead (VMs without hugepages, tests): slower, and physical NICs need IOVA-as-VA.
huge_dir = ""
no_huge = false
# Memory EAL reserves, MiB; the mbuf pool comes out of it.
memory_mb = 1024
# PCI devices to drive, e.g. ["0000:3b:00.0"]. Empty: every device bound to a DPDK driver,
# or none when vdevs are given.
pci_allow = []
# Virtual devices, e.g. ["net_tap0,iface=gc0"] or ["net_pcap0,rx_pcap=/tmp/in.pcap"].
vdevs = []
# Further EAL arguments, verbatim.
eal_args = []

[dpdk.port]
# The port, by the name EAL gives it (a PCI address or vdev name); "" = the first port.
device = ""
# Our IPv4 address on the port: ARP and ICMP echo are answered for it, and only UDP
# datagrams to it and to udp_port are taken as transactions.
ipv4 = "10.0.0.1"
udp_port = 8003
# One RX lcore per RX queue; tx_queues >= rx_queues (each RX lcore owns one TX queue).
rx_queues = 1
tx_queues = 1
rx_descriptors = 1024
tx_descriptors = 1024
# Frames per receive call, 1..=128.
burst = 32
# With several RX queues, spread flows over them by a hash of the UDP 5-tuple.
rss = true
mtu = 1500
promiscuous = false
# mbufs in the pool (2^n - 1 is best) and the per-lcore cache. A transaction holds its
# mbuf until it leaves the pipeline, so size the pool for the deepest backlog to absorb.
mbuf_pool_size = 65535
mbuf_cache = 256
# Answer each transaction's sender: accepted, or dropped and why (format: dataplane README).
replies = false
# After 64 empty polls, sleep this long before each next poll, microseconds. 0 = spin (the
# lowest latency, a whole core per RX queue). At most 10000.
idle_sleep_us = 0
# How often the device's counters are copied for `gigacompute nic stats`, ms (10..=60000).
stats_interval_ms = 500

[faucet]
# requestAirdrop from a faucet account created at genesis. Turn off in production.
enabled = true
# Lamports given to the faucet at genesis (500 million SOL).
genesis_lamports = 500000000000000000
# Largest single airdrop, lamports (10 SOL).
max_lamports_per_request = 10000000000
# Most one recipient may receive in an hour, lamports (100 SOL).
max_lamports_per_recipient_per_hour = 100000000000
# Airdrop requests answered per second, over all callers (the rest are refused, -32602).
max_requests_per_second = 50

[preconf]
# Bayesian execution pre-confirmations: at admission the bank predicts each transaction's
# outcome (success, failure with the fee charged, not included), its slot and the probability
# the promise holds; the preconf tile signs it with the identity key (DATA_DIR/
# fee-collector-keypair.json) and sends it to the sender's UDP address from the TPU port.
enabled = true
# Slots after the expected slot that an included outcome may take and the promise still hold.
slack_slots = 2
# The probit models (runtime/README.md, "Pre-confirmation model"): prior variance of each
# weight, variance of the noise on the score, and variance each weight regains per slot (how
# fast the model forgets, so it follows a changed workload).
prior_variance = 0.3
noise_variance = 1.0
drift_per_slot = 0.001
# Resolved promises the calibration gauges (ECE, Brier) are computed over (1..=1000000).
calibration_window = 10000
# Drafts waiting for the preconf tile; past this they are dropped, counted (1..=1048576).
queue_depth = 16384
# Replies per second to one IP address (bounds reflection); 0 sends none. Replies to refused
# transactions, which cost their sender nothing, at most 100 per second per address.
max_replies_per_peer_per_s = 20000

[tuner]
# The self-tuning runtime (runtime/README.md, "Self-tuning"): it measures each window of slots
# (successful compute units per second, less a penalty for p99 latency above a slot) and
# learns, per kind of workload, which setting of the live knobs earns most. "off": the knobs
# keep the values above. "learn": it tries settings one step from the best known, within the
# guardrails below, and saves what it learnt in DATA_DIR/tuner/policy.json (every change and
# its measured effect in DATA_DIR/tuner/changes.jsonl). "frozen": it applies the saved
# policy's setting at start and changes nothing after. `gigacompute tuner status` explains it.
mode = "off"
# The knobs it may turn: admit_burst, batch_max, cu_scale (all three compute-unit caps),
# island_enter, island_min_writers, optimistic_enter, optimistic_exit,
# optimistic_backoff_slots. Each moves on a few levels around its configured value. Thread
# counts, pinning, queue sizes and the slot length need a restart: out of its reach.
knobs = ["admit_burst", "batch_max", "cu_scale", "island_enter", "island_min_writers", "optimistic_enter", "optimistic_exit", "optimistic_backoff_slots"]
# Slots per measurement window (at least 4).
window_slots = 20
# Back to the configured values at once when a window under another setting earns more than
# this fraction less than the configured values are expected to, and held there for
# hold_windows windows that are not idle.
revert_margin = 0.05
hold_windows = 4
# The reward loses up to this fraction of itself as the window's p99 latency goes from one slot
# to two (all of the fraction from two slots on). A window whose p99 is above
# latency_revert_slots slots, and above twice what the configured values gave in the same
# workload, reverts at once.
latency_penalty = 0.5
latency_revert_slots = 4.0
# How fast it forgets (0.97: ~33 windows), and the most of recent windows it spends trying
# settings other than the best known.
discount = 0.97
max_explore_share = 0.3
# Windows at the configured values when a kind of workload is first seen (its baseline), and
# every reanchor_windows windows after, one there again.
anchor_windows = 2
reanchor_windows = 30
# Save the policy every this many windows, and at stop.
persist_every_windows = 10
# At start, apply the saved policy's setting (false: start from the configured values).
apply_persisted = true
# Seed of its random draws (0: from the clock).
seed = 0
# The most cu_scale may scale the configured compute-unit caps by: 1 lets the tuner only
# tighten them; up to 2 lets it raise them (the caps bound a slot's work and isolate apps).
cu_scale_max = 1.0

[tuner.limits]
# Per knob, the [min, max] values it may take; each must include the configured value (where a
# revert goes). Example: batch_max = [32, 128]

[cluster]
# Scale-out over several appliances, coordinated by etcd (README "Scale-out"). Off: this node
# is the whole chain. On: the node registers under a lease, owns the hash partitions the
# cluster's map gives it, forwards what it does not own to its owner, and stops executing
# when its lease is not confirmed. `gigacompute cluster init` creates the cluster first.
enabled = false
# The cluster's name: its keys in etcd live under /gigacompute/<name>/.
name = "gigacompute"
# This node's id, unique in the cluster (required when enabled).
node_id = ""
etcd = ["http://127.0.0.1:2379"]
# The node serves only while a lease renewal within this many seconds succeeded.
lease_ttl_s = 5
# How often the node re-reads the partition map and the live nodes.
poll_ms = 200
# How long `run` waits at start for etcd and the cluster's spec.
join_timeout_s = 30
# The IP other nodes reach this node at when rpc.bind / net.bind are 0.0.0.0; empty: as bound.
advertise_host = ""
# Heat-driven rebalancing: the leader (the live node with the smallest id) moves the hottest
# partition of a node loaded above 1.25x the mean to the coldest node (a node that joined
# owns nothing and is the coldest), when the two differ by at least rebalance_min_tps, one
# move per rebalance_cooldown_s.
rebalance = true
rebalance_min_tps = 500.0
rebalance_cooldown_s = 10
# Scale-in: when the whole cluster has admitted fewer transactions per second than this for
# consolidate_after_s, the leader moves the partitions of the node owning the fewest to the
# node owning the most, one at a time, until one node owns them all (an emptied node can then
# be stopped). Below rebalance_min_tps; 0: off.
consolidate_below_tps = 0.0
consolidate_after_s = 300
# Ship this node's log to a follower (another node, named in the map) and confirm a slot only
# once it is durable on both; take over the partitions of the nodes this one follows when
# their lease expires. Off: confirmed on this disk alone, and no failover for this node.
replicate = true
# Hold a transaction whose accounts several nodes own while its partitions move to the owner
# of the lowest-numbered one, then run it there, whole. Off: refused, naming the owners.
colocate = true
"#;

/// The whole file: each section is declared by the crate that owns it (serde, defaults,
/// validation); only `[rpc]`, `[pubsub]`, `[metrics]` and `[faucet]` belong to the binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub net: NetConfig,
    pub verify: VerifyConfig,
    pub runtime: RuntimeConfig,
    pub scheduler: SchedulerConfig,
    pub storage: StorageConfig,
    pub history: HistoryConfig,
    pub rpc: RpcConfig,
    pub pubsub: PubSubConfig,
    pub metrics: MetricsConfig,
    pub dpdk: DpdkConfig,
    pub faucet: FaucetConfig,
    pub preconf: PreconfConfig,
    pub tuner: runtime::tuner::TunerConfig,
    pub cluster: cluster::ClusterConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./gigacompute-data"),
            net: NetConfig::default(),
            verify: VerifyConfig::default(),
            runtime: RuntimeConfig::default(),
            scheduler: SchedulerConfig::default(),
            storage: StorageConfig::default(),
            history: HistoryConfig::default(),
            rpc: RpcConfig::default(),
            pubsub: PubSubConfig::default(),
            metrics: MetricsConfig::default(),
            dpdk: DpdkConfig::default(),
            faucet: FaucetConfig::default(),
            preconf: PreconfConfig::default(),
            tuner: runtime::tuner::TunerConfig::default(),
            cluster: cluster::ClusterConfig::default(),
        }
    }
}

/// `[rpc]`: Solana's JSON-RPC over HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    pub bind: SocketAddr,
    pub threads: usize,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub max_response_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub header_timeout_ms: u64,
    pub body_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub account_indexes: Vec<runtime::index::IndexKind>,
    pub account_index_max_keys: usize,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8899)),
            threads: 4,
            max_body_bytes: 50 * 1024,
            max_header_bytes: 16 * 1024,
            max_response_bytes: 16 << 20,
            max_connections: 1024,
            max_connections_per_ip: 64,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            account_indexes: runtime::index::IndexKind::ALL.to_vec(),
            account_index_max_keys: runtime::index::DEFAULT_MAX_KEYS,
        }
    }
}

impl RpcConfig {
    /// The secondary account indexes the runtime keeps for this endpoint.
    pub fn account_index(&self) -> runtime::index::IndexConfig {
        runtime::index::IndexConfig {
            kinds: self.account_indexes.clone(),
            max_keys: self.account_index_max_keys,
        }
    }

    /// The HTTP server's limits for this endpoint.
    pub fn limits(&self) -> crate::http::Limits {
        use std::time::Duration;
        crate::http::Limits {
            max_body_bytes: self.max_body_bytes,
            max_header_bytes: self.max_header_bytes,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=256).contains(&self.threads),
            "rpc.threads must be 1..=256"
        );
        anyhow::ensure!(
            (1024..=64 << 20).contains(&self.max_body_bytes),
            "rpc.max_body_bytes must be 1024..=67108864"
        );
        anyhow::ensure!(
            (8192..=1 << 20).contains(&self.max_header_bytes),
            "rpc.max_header_bytes must be 8192..=1048576"
        );
        anyhow::ensure!(
            self.max_response_bytes >= 64 * 1024,
            "rpc.max_response_bytes must be at least 65536"
        );
        anyhow::ensure!(
            self.max_connections >= 1
                && (1..=self.max_connections).contains(&self.max_connections_per_ip),
            "rpc.max_connections must be at least 1 and rpc.max_connections_per_ip 1..=max_connections"
        );
        for (name, ms) in [
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
        ] {
            anyhow::ensure!(
                (100..=3_600_000).contains(&ms),
                "rpc.{name} must be 100..=3600000"
            );
        }
        Ok(())
    }
}

/// `[pubsub]`: Solana's PubSub over WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PubSubConfig {
    pub enabled: bool,
    pub bind: SocketAddr,
    pub threads: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub max_subscriptions_per_connection: usize,
    pub max_subscriptions_per_ip: usize,
    pub max_subscriptions: usize,
    pub max_queued_bytes_per_connection: usize,
    pub max_queued_bytes: usize,
    pub idle_timeout_ms: u64,
}

impl Default for PubSubConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::from(([127, 0, 0, 1], 8900)),
            threads: 2,
            max_connections: 1024,
            max_connections_per_ip: 64,
            max_subscriptions_per_connection: 1024,
            max_subscriptions_per_ip: 4096,
            max_subscriptions: 100_000,
            max_queued_bytes_per_connection: 16 << 20,
            max_queued_bytes: 256 << 20,
            idle_timeout_ms: 60_000,
        }
    }
}

impl PubSubConfig {
    /// The WebSocket endpoint's limits: its own connection counts and idle time, the RPC's
    /// message size and header timeout.
    pub fn limits(&self, rpc: &RpcConfig) -> crate::http::Limits {
        crate::http::Limits {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            idle_timeout: std::time::Duration::from_millis(self.idle_timeout_ms),
            ..rpc.limits()
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=64).contains(&self.threads),
            "pubsub.threads must be 1..=64"
        );
        anyhow::ensure!(
            self.max_connections >= 1
                && (1..=self.max_connections).contains(&self.max_connections_per_ip),
            "pubsub.max_connections must be at least 1 and pubsub.max_connections_per_ip 1..=max_connections"
        );
        anyhow::ensure!(
            self.max_subscriptions >= 1
                && (1..=self.max_subscriptions).contains(&self.max_subscriptions_per_connection),
            "pubsub.max_subscriptions must be at least 1 and \
             pubsub.max_subscriptions_per_connection 1..=max_subscriptions"
        );
        anyhow::ensure!(
            (1..=self.max_subscriptions).contains(&self.max_subscriptions_per_ip),
            "pubsub.max_subscriptions_per_ip must be 1..=max_subscriptions"
        );
        anyhow::ensure!(
            self.max_queued_bytes_per_connection >= 64 * 1024
                && self.max_queued_bytes >= self.max_queued_bytes_per_connection,
            "pubsub.max_queued_bytes_per_connection must be at least 65536 and \
             pubsub.max_queued_bytes at least that"
        );
        anyhow::ensure!(
            (1000..=3_600_000).contains(&self.idle_timeout_ms),
            "pubsub.idle_timeout_ms must be 1000..=3600000"
        );
        Ok(())
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub bind: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::from(([127, 0, 0, 1], 7999)),
        }
    }
}

/// `[faucet]`: requestAirdrop from an account funded at genesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaucetConfig {
    pub enabled: bool,
    pub genesis_lamports: u64,
    pub max_lamports_per_request: u64,
    pub max_lamports_per_recipient_per_hour: u64,
    pub max_requests_per_second: u32,
}

impl Default for FaucetConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            genesis_lamports: 500_000_000 * 1_000_000_000,
            max_lamports_per_request: 10 * 1_000_000_000,
            max_lamports_per_recipient_per_hour: 100 * 1_000_000_000,
            max_requests_per_second: 50,
        }
    }
}

impl FaucetConfig {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_lamports_per_request >= 1
                && self.max_lamports_per_recipient_per_hour >= self.max_lamports_per_request,
            "faucet: max_lamports_per_request must be at least 1 and at most \
             max_lamports_per_recipient_per_hour"
        );
        anyhow::ensure!(
            (1..=100_000).contains(&self.max_requests_per_second),
            "faucet.max_requests_per_second must be 1..=100000"
        );
        Ok(())
    }
}

impl Config {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let c: Config = toml::from_str(text)?;
        c.validate()?;
        Ok(c)
    }

    /// Every section's own checks, then the binary's.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.net.validate()?;
        self.verify.validate()?;
        self.runtime.validate()?;
        self.scheduler.validate()?;
        self.storage.validate()?;
        self.history.validate()?;
        self.dpdk.validate()?;
        self.faucet.validate()?;
        self.rpc.validate()?;
        self.preconf.validate()?;
        self.tuner.validate()?;
        self.tuner.check_limits(&runtime::tuner::Knobs::configured(
            &self.runtime,
            &self.scheduler,
        ))?;
        self.cluster.validate().map_err(|e| anyhow::anyhow!(e))?;
        self.pubsub.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_default_is_the_default() {
        assert_eq!(Config::parse(DEFAULT_TOML).unwrap(), Config::default());
    }

    /// Every key the types declare is written out (with its default) in the documented
    /// file, and the file has no key the types lack: a new knob cannot go undocumented.
    #[test]
    fn documented_default_names_every_key() {
        fn keys(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
            if let toml::Value::Table(t) = v {
                for (k, v) in t {
                    let path = format!("{prefix}{k}");
                    match v {
                        toml::Value::Table(_) if !path.ends_with("weights") => {
                            keys(&format!("{path}."), v, out)
                        }
                        _ => out.push(path),
                    }
                }
            }
        }
        let (mut documented, mut declared) = (Vec::new(), Vec::new());
        keys("", &toml::from_str(DEFAULT_TOML).unwrap(), &mut documented);
        keys(
            "",
            &toml::Value::try_from(Config::default()).unwrap(),
            &mut declared,
        );
        documented.sort();
        declared.sort();
        assert_eq!(documented, declared);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(Config::parse("nonsense = 1").is_err());
        assert!(Config::parse("[runtime]\nworkers = 0").is_err());
        assert!(Config::parse("[rpc]\nbind = \"not an address\"").is_err());
        assert!(Config::parse("[scheduler.app_weights]\nnotakey = 2").is_err());
        assert!(Config::parse("[storage]\nengine = \"disk\"").is_err());
        assert!(Config::parse("[dpdk]\nenabled = true\nrx_lcores = [0]").is_err());
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }
}
