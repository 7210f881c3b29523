//! The one place the tiles are built and wired from the config.
//!
//! ```text
//!  dpdk port ─► [rx-q] ─┐   (with [dpdk]: one per RX queue)
//!  udp socket ─► [net] ─┼─► net_verify[i] ─► [verify i] ─┐
//!  rpc sendTransaction ─┘   (drop when full)             ├─► verify_bank ─► [bank] ─► bank_worker[w] ─► [worker w]
//!                                                         │  (backpressure)   │  ◄── worker_bank ◄────────────┘
//!                                                         │                   └─► bank_commit ─► [commit] ─► store
//! ```

use crate::config::Config;
use crate::keys;
use crate::metrics::MetricsRegion;
use crate::rawport::RawPort;
use anyhow::{Context, Result};
use dataplane::dedup::{Dedup, MAX_PROCESSING_AGE_SLOTS};
use dataplane::recent::RecentFilter;
use dataplane::socket::UdpReceiver;
use dataplane::tiles::{VerifyTile, run_udp_net};
use dataplane::{DataplaneCounters, Ingress, PacketPool};
use runtime::genesis::GenesisConfig;
use runtime::{Runtime, RuntimeConfig};
use solana_keypair::Keypair;
use solana_signer::Signer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

pub struct Node {
    pub config: Config,
    pub runtime: Runtime,
    pub ingress: Ingress,
    pub dataplane: &'static DataplaneCounters,
    pub metrics: &'static MetricsRegion,
    pub faucet: Option<Keypair>,
    pub tpu_addr: SocketAddr,
    raw_port: Option<RawPort>,
    shutdown: Arc<AtomicBool>,
    tiles: Vec<JoinHandle<()>>,
}

impl Node {
    pub fn start(config: Config) -> Result<Self> {
        Self::start_with_genesis(config, Vec::new())
    }

    /// Start with extra system accounts funded at genesis (only used on a new data dir).
    pub fn start_with_genesis(
        config: Config,
        genesis_accounts: Vec<(solana_pubkey::Pubkey, u64)>,
    ) -> Result<Self> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let faucet = if config.faucet.enabled {
            Some(keys::load_or_create(
                &config.data_dir.join("faucet-keypair.json"),
            )?)
        } else {
            None
        };
        let fee_collector =
            keys::load_or_create(&config.data_dir.join("fee-collector-keypair.json"))?;
        let store = crate::store::open(&config).context("opening the accounts store")?;

        // With a raw port, EAL starts first: one descriptor packet per mbuf the port can hold
        // in flight, in EAL's memory (hugepages when reserved), beside the mbufs.
        let eal = if config.dpdk.enabled {
            Some(RawPort::init_eal(&config).context("starting DPDK's EAL")?)
        } else {
            None
        };
        let pool = match &eal {
            Some(e) => PacketPool::with_descriptors(
                config.net.packet_pool_size,
                config.dpdk.port.mbuf_pool_size as usize,
                e.arena(),
            ),
            None => PacketPool::new(config.net.packet_pool_size),
        };
        let shutdown = Arc::new(AtomicBool::new(false));
        let metrics = MetricsRegion::create(
            &config.data_dir,
            config.verify.tiles,
            config.runtime.workers,
        );
        let counters = &metrics.dataplane;
        let (bank_tx, bank_rx) = crossbeam_channel::bounded(config.verify.bank_ring_depth);
        let rc = &config.runtime;
        let machine = crate::hwtopo::Machine::discover();
        if let Err(e) = &machine {
            tracing::warn!(error = %e, "no hwloc topology: islands and workers placed by index");
        }
        let placement = machine
            .as_ref()
            .ok()
            .map(|m| crate::hwtopo::Placement::new(&config, m));
        let runtime = Runtime::start(
            &RuntimeConfig {
                slot_ms: rc.slot_ms,
                workers: rc.workers,
                worker_cores: rc.worker_cores.clone(),
                batch_max: rc.batch_max,
                sequencer_capacity: rc.sequencer_capacity,
                status_retention_slots: rc.status_retention_slots,
                commit_queue_slots: rc.commit_queue_slots,
                scheduler: config.scheduler.kind(
                    placement
                        .as_ref()
                        .map(|p| p.island_workers.clone())
                        .unwrap_or_default(),
                ),
                worker_numa: placement
                    .as_ref()
                    .map(|p| p.worker_numa.clone())
                    .unwrap_or_default(),
                apps: config.scheduler.classifier(),
                genesis: GenesisConfig {
                    faucet: faucet
                        .as_ref()
                        .map(|k| (k.pubkey(), config.faucet.genesis_lamports)),
                    fee_collector: fee_collector.pubkey(),
                    accounts: genesis_accounts,
                },
            },
            store,
            pool.clone(),
            bank_rx,
            &metrics.runtime,
        )?;

        let mut tiles = Vec::new();
        let mut verify_txs = Vec::new();
        for i in 0..config.verify.tiles {
            // In EAL memory with DPDK (hugepages when reserved), like the descriptors.
            let arena = eal.as_ref().map_or(dataplane::Arena::HEAP, |e| e.arena());
            let rx = dataplane::ring::Ring::new(config.net.verify_ring_depth, arena);
            verify_txs.push(rx.clone());
            let tile = VerifyTile {
                index: i,
                dedup: Dedup::new(config.verify.dedup_capacity, MAX_PROCESSING_AGE_SLOTS),
                batch_max: config.verify.batch_max,
                current_slot: runtime.current_slot.clone(),
                counters,
                pool: pool.clone(),
            };
            let (out, stop) = (bank_tx.clone(), shutdown.clone());
            tiles.push(
                std::thread::Builder::new()
                    .name(format!("gc-verify-{i}"))
                    .spawn(move || tile.run(rx, out, stop))?,
            );
        }
        drop(bank_tx);
        let ingress = Ingress::new(pool, verify_txs, counters);

        let udp = UdpReceiver::bind(
            config.net.bind,
            config.net.recv_burst,
            config.net.recv_buffer_bytes,
        )
        .with_context(|| format!("binding transaction port {}", config.net.bind))?;
        let tpu_addr = udp.local_addr()?;
        {
            let (ingress, stop) = (ingress.clone(), shutdown.clone());
            let recent = RecentFilter::new(config.net.recent_filter_entries);
            tiles.push(
                std::thread::Builder::new()
                    .name("gc-net".into())
                    .spawn(move || run_udp_net(udp, ingress, recent, stop))?,
            );
        }
        let raw_port = match eal {
            Some(e) => Some(
                e.start(&config, &ingress, metrics)
                    .context("starting the DPDK port")?,
            ),
            None => None,
        };
        let node = Self {
            config,
            runtime,
            ingress,
            dataplane: counters,
            metrics,
            faucet,
            tpu_addr,
            raw_port,
            shutdown,
            tiles,
        };
        node.print_topology();
        if let (Ok(m), Some(p)) = (&machine, &placement) {
            for line in p.describe(&node.config, m) {
                tracing::info!("placement: {line}");
            }
        }
        Ok(node)
    }

    pub fn print_topology(&self) {
        let c = &self.config;
        tracing::info!(
            net = %format!("udp {} burst {}", self.tpu_addr, c.net.recv_burst),
            raw_port = %self.raw_port.as_ref().map(RawPort::describe).unwrap_or_default(),
            verify_tiles = c.verify.tiles,
            workers = c.runtime.workers,
            worker_cores = ?(0..c.runtime.workers)
                .map(|i| runtime::worker_core(&c.runtime.worker_cores, i))
                .collect::<Vec<_>>(),
            slot_ms = c.runtime.slot_ms,
            scheduler = ?c.scheduler.kind,
            storage = %match c.storage.engine {
                crate::config::StorageEngine::Array => format!(
                    "device array {:?}",
                    crate::store::array_config(c).devices.iter().map(|d| &d.path).collect::<Vec<_>>()
                ),
                crate::config::StorageEngine::Log => format!("log store in {}", c.data_dir.display()),
            },
            "topology: net -> verify x{} -> bank -> worker x{} -> commit",
            c.verify.tiles,
            c.runtime.workers,
        );
    }

    /// Stop ingest, let the bank close and commit its slot, stop everything.
    pub fn shutdown(mut self) {
        if let Some(p) = self.raw_port.take() {
            p.stop();
        }
        self.shutdown.store(true, Ordering::Release);
        for t in self.tiles {
            let _ = t.join();
        }
        drop(self.ingress);
        self.runtime.shutdown();
        MetricsRegion::unlink(&self.config.data_dir);
    }
}
