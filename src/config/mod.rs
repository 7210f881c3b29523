//! The appliance configuration: one TOML file, every knob documented in [`DEFAULT_TOML`].
//! A test keeps that text and [`Config::default`] identical.

mod scheduler;

pub use scheduler::SchedulerConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

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

[verify]
# Signature verification tiles (threads).
tiles = 2
# Packets verified together in one batch.
batch_max = 256
# Signatures remembered for dedup per verify tile; when full, new transactions are dropped
# (counted) until the 150-slot window frees room.
dedup_capacity = 2000000
# Depth of the verify -> bank ring; a full ring blocks verification (backpressure).
bank_ring_depth = 16384

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
# Transactions waiting in the sequencer. When full, a newcomer evicts the lowest-priority
# queued transaction if it pays more per compute unit, else it is dropped (counted).
sequencer_capacity = 100000
# Slots whose headers and transaction statuses stay queryable (and are kept on disk for
# recovery). At least 151.
status_retention_slots = 4096
# Closed slots waiting to be made durable before slot production stalls.
commit_queue_slots = 8

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

[rpc]
# JSON-RPC 2.0 over HTTP (Solana's API). Loopback unless you mean to expose it.
bind = "127.0.0.1:8899"
# HTTP worker threads.
threads = 4
# Largest request body accepted, bytes.
max_body_bytes = 51200

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
# lowest latency, a whole core per RX queue).
idle_sleep_us = 0
# How often the device's counters are copied for `gigacompute nic stats`, ms.
stats_interval_ms = 500

[faucet]
# requestAirdrop from a faucet account created at genesis. Turn off in production.
enabled = true
# Lamports given to the faucet at genesis (500 million SOL).
genesis_lamports = 500000000000000000
# Largest single airdrop, lamports (10 SOL).
max_lamports_per_request = 10000000000
"#;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub net: NetConfig,
    pub verify: VerifyConfig,
    pub runtime: RuntimeSection,
    pub scheduler: SchedulerConfig,
    pub storage: StorageConfig,
    pub rpc: RpcConfig,
    pub metrics: MetricsConfig,
    pub dpdk: DpdkConfig,
    pub faucet: FaucetConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpdkConfig {
    pub enabled: bool,
    pub main_lcore: u32,
    pub rx_lcores: Vec<u32>,
    pub file_prefix: String,
    pub huge_dir: PathBuf,
    pub no_huge: bool,
    pub memory_mb: usize,
    pub pci_allow: Vec<String>,
    pub vdevs: Vec<String>,
    pub eal_args: Vec<String>,
    pub port: DpdkPortConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpdkPortConfig {
    pub device: String,
    pub ipv4: std::net::Ipv4Addr,
    pub udp_port: u16,
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    pub burst: u16,
    pub rss: bool,
    pub mtu: u16,
    pub promiscuous: bool,
    pub mbuf_pool_size: u32,
    pub mbuf_cache: u32,
    pub replies: bool,
    pub idle_sleep_us: u64,
    pub stats_interval_ms: u64,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            main_lcore: 0,
            rx_lcores: vec![1],
            file_prefix: "gigacompute".into(),
            huge_dir: PathBuf::new(),
            no_huge: false,
            memory_mb: 1024,
            pci_allow: Vec::new(),
            vdevs: Vec::new(),
            eal_args: Vec::new(),
            port: DpdkPortConfig::default(),
        }
    }
}

impl Default for DpdkPortConfig {
    fn default() -> Self {
        Self {
            device: String::new(),
            ipv4: std::net::Ipv4Addr::new(10, 0, 0, 1),
            udp_port: 8003,
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            burst: 32,
            rss: true,
            mtu: 1500,
            promiscuous: false,
            mbuf_pool_size: 65535,
            mbuf_cache: 256,
            replies: false,
            idle_sleep_us: 0,
            stats_interval_ms: 500,
        }
    }
}

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
            bind: "127.0.0.1:7999".parse().expect("literal address"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    pub bind: SocketAddr,
    pub recv_burst: usize,
    pub recv_buffer_bytes: usize,
    pub packet_pool_size: usize,
    pub verify_ring_depth: usize,
    pub recent_filter_entries: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    pub tiles: usize,
    pub batch_max: usize,
    pub dedup_capacity: usize,
    pub bank_ring_depth: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSection {
    pub slot_ms: u64,
    pub workers: usize,
    pub worker_cores: Vec<usize>,
    pub batch_max: usize,
    pub sequencer_capacity: usize,
    pub status_retention_slots: usize,
    pub commit_queue_slots: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub engine: StorageEngine,
    pub devices: Vec<PathBuf>,
    pub device_bytes: u64,
    pub block_size: usize,
    pub segment_bytes: u64,
    pub cache_bytes: usize,
    pub io_uring: bool,
    pub ring_entries: u32,
    pub sqpoll_idle_ms: u32,
    pub direct_io: bool,
    pub max_space_amplification: f64,
    pub hot_app_share: f64,
    pub io_cores: Vec<usize>,
    pub pinned_apps: Vec<PinnedApp>,
    pub log_compaction_min_bytes: u64,
    pub proof_window_slots: usize,
    pub proof_history_mib: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StorageEngine {
    Array,
    Log,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedApp {
    pub program: String,
    pub devices: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    pub bind: SocketAddr,
    pub threads: usize,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaucetConfig {
    pub enabled: bool,
    pub genesis_lamports: u64,
    pub max_lamports_per_request: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./gigacompute-data"),
            net: NetConfig::default(),
            verify: VerifyConfig::default(),
            runtime: RuntimeSection::default(),
            scheduler: SchedulerConfig::default(),
            storage: StorageConfig::default(),
            rpc: RpcConfig::default(),
            metrics: MetricsConfig::default(),
            dpdk: DpdkConfig::default(),
            faucet: FaucetConfig::default(),
        }
    }
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8003".parse().expect("literal address"),
            recv_burst: 64,
            recv_buffer_bytes: 32 << 20,
            packet_pool_size: 65536,
            verify_ring_depth: 8192,
            recent_filter_entries: 1 << 19,
        }
    }
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            tiles: 2,
            batch_max: 256,
            dedup_capacity: 2_000_000,
            bank_ring_depth: 16384,
        }
    }
}

impl Default for RuntimeSection {
    fn default() -> Self {
        Self {
            slot_ms: 50,
            workers: 2,
            worker_cores: Vec::new(),
            batch_max: 64,
            sequencer_capacity: 100_000,
            status_retention_slots: 4096,
            commit_queue_slots: 8,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            engine: StorageEngine::Array,
            devices: Vec::new(),
            device_bytes: 1 << 30,
            block_size: 4096,
            segment_bytes: 32 << 20,
            cache_bytes: 256 << 20,
            io_uring: true,
            ring_entries: 256,
            sqpoll_idle_ms: 0,
            direct_io: true,
            max_space_amplification: 2.0,
            hot_app_share: 0.5,
            io_cores: Vec::new(),
            pinned_apps: Vec::new(),
            log_compaction_min_bytes: 64 << 20,
            proof_window_slots: 1024,
            proof_history_mib: 1024,
        }
    }
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8899".parse().expect("literal address"),
            threads: 4,
            max_body_bytes: 50 * 1024,
        }
    }
}

impl Default for FaucetConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            genesis_lamports: 500_000_000 * 1_000_000_000,
            max_lamports_per_request: 10 * 1_000_000_000,
        }
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

    pub fn validate(&self) -> anyhow::Result<()> {
        self.scheduler.validate()?;
        let r = &self.runtime;
        anyhow::ensure!(r.slot_ms >= 1, "runtime.slot_ms must be at least 1");
        anyhow::ensure!(
            (1..=64).contains(&r.workers),
            "runtime.workers must be 1..=64"
        );
        anyhow::ensure!(r.batch_max >= 1, "runtime.batch_max must be at least 1");
        anyhow::ensure!(
            r.sequencer_capacity >= 1,
            "runtime.sequencer_capacity must be at least 1"
        );
        anyhow::ensure!(
            r.status_retention_slots > 150,
            "runtime.status_retention_slots must exceed the 150-slot blockhash window"
        );
        anyhow::ensure!(
            (1..=dataplane::counters::MAX_VERIFY_TILES).contains(&self.verify.tiles),
            "verify.tiles must be 1..={}",
            dataplane::counters::MAX_VERIFY_TILES
        );
        anyhow::ensure!(
            self.verify.batch_max >= 1,
            "verify.batch_max must be at least 1"
        );
        anyhow::ensure!(
            self.verify.dedup_capacity >= 1,
            "verify.dedup_capacity must be at least 1"
        );
        anyhow::ensure!(
            (1..=128).contains(&self.net.recv_burst),
            "net.recv_burst must be 1..=128"
        );
        anyhow::ensure!(
            self.net.packet_pool_size >= 256,
            "net.packet_pool_size must be at least 256"
        );
        anyhow::ensure!(self.rpc.threads >= 1, "rpc.threads must be at least 1");
        anyhow::ensure!(
            self.net.recent_filter_entries >= 8,
            "net.recent_filter_entries must be at least 8"
        );
        let d = &self.dpdk;
        if d.enabled {
            let p = &d.port;
            anyhow::ensure!(
                d.rx_lcores.len() == usize::from(p.rx_queues),
                "dpdk.rx_lcores must name one lcore per RX queue ({} queues, {} lcores)",
                p.rx_queues,
                d.rx_lcores.len()
            );
            anyhow::ensure!(
                (1..=dataplane::nic::MAX_QUEUES as u16).contains(&p.rx_queues)
                    && p.tx_queues >= p.rx_queues,
                "dpdk.port: rx_queues must be 1..={} and tx_queues at least rx_queues",
                dataplane::nic::MAX_QUEUES
            );
            anyhow::ensure!(
                (1..=128).contains(&p.burst),
                "dpdk.port.burst must be 1..=128"
            );
            anyhow::ensure!(
                p.rx_descriptors >= 32 && p.tx_descriptors >= 32,
                "dpdk.port: descriptor rings need at least 32 entries"
            );
            anyhow::ensure!(
                (68..=9600).contains(&p.mtu),
                "dpdk.port.mtu must be 68..=9600"
            );
            anyhow::ensure!(
                p.mbuf_pool_size >= 2 * (u32::from(p.rx_descriptors) * u32::from(p.rx_queues)),
                "dpdk.port.mbuf_pool_size must be at least twice the RX descriptors of all queues"
            );
            anyhow::ensure!(
                p.mbuf_cache <= 512 && p.mbuf_cache <= p.mbuf_pool_size / 2,
                "dpdk.port.mbuf_cache must be at most 512 and half the pool"
            );
            anyhow::ensure!(
                p.stats_interval_ms >= 10,
                "dpdk.port.stats_interval_ms must be at least 10"
            );
        }
        let st = &self.storage;
        anyhow::ensure!(
            st.max_space_amplification > 1.0,
            "storage.max_space_amplification must exceed 1.0"
        );
        anyhow::ensure!(
            st.block_size == 512 || st.block_size == 4096,
            "storage.block_size must be 512 or 4096"
        );
        anyhow::ensure!(
            st.segment_bytes >= 16 << 20 && st.segment_bytes.is_multiple_of(st.block_size as u64),
            "storage.segment_bytes must be at least 16 MiB (a 10 MiB account fits) and a multiple of block_size"
        );
        anyhow::ensure!(
            st.device_bytes >= 4 * st.segment_bytes,
            "storage.device_bytes must hold at least four segments"
        );
        anyhow::ensure!(
            (2..=32768).contains(&st.ring_entries) && st.ring_entries.is_power_of_two(),
            "storage.ring_entries must be a power of two, 2..=32768"
        );
        anyhow::ensure!(
            st.devices.len() <= 32,
            "storage.devices: at most 32 devices"
        );
        anyhow::ensure!(
            (1..=1 << 20).contains(&st.proof_window_slots),
            "storage.proof_window_slots must be 1..=1048576"
        );
        for p in &st.pinned_apps {
            anyhow::ensure!(
                p.program.parse::<solana_pubkey::Pubkey>().is_ok(),
                "storage.pinned_apps: {} is not a base58 program id",
                p.program
            );
            anyhow::ensure!(
                !p.devices.is_empty() && p.devices.iter().all(|&d| d < st.devices.len().max(1)),
                "storage.pinned_apps: devices of {} must be indexes into storage.devices",
                p.program
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_default_is_the_default() {
        assert_eq!(Config::parse(DEFAULT_TOML).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(Config::parse("nonsense = 1").is_err());
        assert!(Config::parse("[runtime]\nworkers = 0").is_err());
        assert!(Config::parse("[rpc]\nbind = \"not an address\"").is_err());
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }
}
