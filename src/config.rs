//! The appliance configuration: one TOML file, every knob documented in [`DEFAULT_TOML`].
//! A test keeps that text and [`Config::default`] identical.

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

[storage]
# Rewrite the log as a checkpoint when it exceeds this multiple of the live state...
compaction_ratio = 2.0
# ...and this size, bytes.
compaction_min_bytes = 67108864

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
    pub storage: StorageConfig,
    pub rpc: RpcConfig,
    pub metrics: MetricsConfig,
    pub faucet: FaucetConfig,
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
    pub compaction_ratio: f64,
    pub compaction_min_bytes: u64,
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
            storage: StorageConfig::default(),
            rpc: RpcConfig::default(),
            metrics: MetricsConfig::default(),
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
            compaction_ratio: 2.0,
            compaction_min_bytes: 64 << 20,
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
            self.storage.compaction_ratio > 1.0,
            "storage.compaction_ratio must exceed 1.0"
        );
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
