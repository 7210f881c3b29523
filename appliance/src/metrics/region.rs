//! The one shared-memory region of a running appliance: a header, then the dataplane,
//! runtime, storage and NIC counters (each tile its own cache-line-aligned slot, one writer;
//! storage's block is a copy its prefetch tile refreshes, `storage::array::publish`).
//!
//! It lives at `/dev/shm/gigacompute-<hash of the data dir>.metrics`, so `gigacompute monitor`
//! pointed at the same config or data dir finds it from another process.

use crate::http::HttpCounters;
use dataplane::DataplaneCounters;
use dataplane::nic::NicCounters;
use runtime::metrics::RuntimeCounters;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use storage::array::publish::StorageCounters;
use telemetry::{SharedRegion, TileStats, ZeroValid};

const MAGIC: u64 = u64::from_le_bytes(*b"GCMETRIC");
/// Bump when the layout changes.
const VERSION: u64 = 20;

telemetry::declare_counters! {
    /// The binary's own endpoints.
    #[repr(C)]
    pub struct EndpointCounters {
        /// JSON-RPC calls answered.
        rpc_requests: Counter(Count) "rpc_requests",
        /// JSON-RPC calls answered with an error.
        rpc_errors: Counter(Count) "rpc_errors",
        /// Simulations (simulateTransaction, sendTransaction preflight) refused because others
        /// held the simulator too long.
        rpc_simulations_busy: Counter(Count) "rpc_simulations_busy",
        /// Scrapes of this endpoint.
        metrics_scrapes: Counter(Count) "metrics_scrapes",
        /// PubSub subscriptions open now.
        pubsub_subscriptions: Gauge(Count) "pubsub_subscriptions",
        /// Subscribe requests refused at a subscription limit (per connection or in all).
        pubsub_refused: Counter(Count) "pubsub_subscriptions_refused",
        /// Notifications queued to subscribers.
        pubsub_notifications: Counter(Count) "pubsub_notifications",
        /// Connections closed because they did not read their notifications (queue over
        /// `pubsub.max_queued_bytes_per_connection`).
        pubsub_slow_disconnects: Counter(Count) "pubsub_slow_subscribers_disconnected",
        /// Chain events the notifier was too slow to take (their notifications are lost).
        pubsub_events_dropped: Counter(Count) "pubsub_events_dropped",
    }
}

#[repr(C)]
pub struct MetricsRegion {
    magic: AtomicU64,
    version: AtomicU64,
    pub pid: AtomicU64,
    pub started_unix_s: AtomicU64,
    pub verify_tiles: AtomicU64,
    pub workers: AtomicU64,
    pub rpc: TileStats,
    /// The Prometheus endpoint's thread.
    pub metrics_endpoint: TileStats,
    /// The PubSub endpoint's tiles (summed) and its notifier.
    pub pubsub: TileStats,
    pub pubsub_notifier: TileStats,
    pub endpoints: EndpointCounters,
    /// The JSON-RPC endpoint's connections and refusals.
    pub rpc_http: HttpCounters,
    /// The Prometheus endpoint's.
    pub metrics_http: HttpCounters,
    /// The PubSub (WebSocket) endpoint's.
    pub pubsub_http: HttpCounters,
    pub dataplane: DataplaneCounters,
    pub runtime: RuntimeCounters,
    /// The device array's counters, published by the store.
    pub storage: StorageCounters,
    /// Raw (DPDK) ports, when the appliance runs them.
    pub nic: NicCounters,
}

// SAFETY: atomics and ZeroValid members only.
unsafe impl ZeroValid for MetricsRegion {}

impl MetricsRegion {
    /// Where the region of the appliance using `data_dir` lives.
    pub fn path_for(data_dir: &Path) -> PathBuf {
        let canonical = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let mut h: u64 = 0xcbf29ce484222325; // FNV-1a: stable across builds and processes
        for b in canonical.as_os_str().as_encoded_bytes() {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
        PathBuf::from(format!("/dev/shm/gigacompute-{h:016x}.metrics"))
    }

    /// The writer's region: in /dev/shm when possible, else private memory (logged).
    pub fn create(data_dir: &Path, verify_tiles: usize, workers: usize) -> &'static Self {
        let path = Self::path_for(data_dir);
        let r: &'static Self = match SharedRegion::create(&path) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "metrics region not shared; `gigacompute monitor` cannot attach");
                SharedRegion::private()
            }
        };
        r.pid
            .store(u64::from(std::process::id()), Ordering::Relaxed);
        r.started_unix_s.store(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            Ordering::Relaxed,
        );
        r.verify_tiles.store(verify_tiles as u64, Ordering::Relaxed);
        r.workers.store(workers as u64, Ordering::Relaxed);
        r.version.store(VERSION, Ordering::Relaxed);
        r.magic.store(MAGIC, Ordering::Release);
        r
    }

    /// A reader's view of a running appliance's region.
    pub fn open(data_dir: &Path) -> anyhow::Result<&'static Self> {
        let path = Self::path_for(data_dir);
        let r: &'static Self = SharedRegion::open(&path).map_err(|e| {
            anyhow::anyhow!(
                "no running appliance for data dir {}: {e}",
                data_dir.display()
            )
        })?;
        anyhow::ensure!(
            r.magic.load(Ordering::Acquire) == MAGIC
                && r.version.load(Ordering::Relaxed) == VERSION,
            "{} was not written by this version of gigacompute",
            path.display()
        );
        Ok(r)
    }

    /// Remove the region's file at a clean shutdown (the mapping stays valid until exit).
    pub fn unlink(data_dir: &Path) {
        let _ = std::fs::remove_file(Self::path_for(data_dir));
    }

    pub fn verify_tile_count(&self) -> usize {
        (self.verify_tiles.load(Ordering::Relaxed) as usize)
            .min(dataplane::counters::MAX_VERIFY_TILES)
    }

    pub fn worker_count(&self) -> usize {
        (self.workers.load(Ordering::Relaxed) as usize).min(runtime::metrics::MAX_WORKERS)
    }

    /// Every tile: (name, stats), in pipeline order (storage's after commit).
    pub fn tiles(&self) -> Vec<(String, &TileStats)> {
        let mut out = vec![("net".to_string(), &self.dataplane.net)];
        let nic = &self.nic;
        if nic.ports.load(Ordering::Relaxed) > 0 {
            let port = &nic.port[0];
            for q in 0..port.queue_count() {
                out.push((format!("rx-{q}"), &port.queues[q].tile));
            }
            out.push(("nic-stats".to_string(), &nic.stats_tile));
        }
        for i in 0..self.verify_tile_count() {
            out.push((format!("verify-{i}"), &self.dataplane.verify[i]));
        }
        out.push(("bank".to_string(), &self.runtime.bank));
        for i in 0..self.worker_count() {
            out.push((format!("worker-{i}"), &self.runtime.workers[i]));
        }
        out.push(("preconf".to_string(), &self.runtime.preconf_tile));
        out.push(("commit".to_string(), &self.runtime.commit));
        out.push(("history".to_string(), &self.runtime.history));
        let st = &self.storage;
        if st.device_count() > 0 {
            out.push(("gc-prefetch".to_string(), &st.prefetch));
            out.push(("gc-compact".to_string(), &st.compact));
        }
        for i in 0..st.device_count() {
            out.push((format!("gc-io-{i}"), &st.io[i]));
        }
        out.push(("rpc".to_string(), &self.rpc));
        out.push(("pubsub".to_string(), &self.pubsub));
        out.push(("pubsub-notify".to_string(), &self.pubsub_notifier));
        out.push(("metrics".to_string(), &self.metrics_endpoint));
        out
    }
}
