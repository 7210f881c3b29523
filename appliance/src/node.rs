//! Starts the node: the tiles and links `crate::wiring` declares for the config (link depths
//! come from there), each tile run by the common lifecycle (`telemetry::lifecycle`) in
//! stages that stop in order: net, verify, then the runtime's bank, workers, commit, and
//! last the history tile (which ends once every durable slot has reached it).
//! ARCHITECTURE.md has the picture; `gigacompute topology` prints the declaration.

use crate::config::{Config, StorageEngine};
use crate::datadir::DataDirLock;
use crate::keys;
use crate::metrics::MetricsRegion;
use crate::rawport::RawPort;
use crate::wiring::{LinkDecl, Wiring};
use anyhow::{Context, Result};
use dataplane::dedup::ShardedDedup;
use dataplane::recent::RecentFilter;
use dataplane::route::{RouteTable, Routing};
use dataplane::socket::UdpReceiver;
use dataplane::tiles::{NetTile, VerifyTile};
use dataplane::{DataplaneCounters, Ingress, PacketPool};
use runtime::genesis::GenesisConfig;
use runtime::scheduler::SchedulerConfig;
use runtime::{Runtime, RuntimeSetup};
use solana_keypair::Keypair;
use solana_signer::Signer;
use std::net::SocketAddr;
use std::sync::Arc;
use telemetry::{Health, Placement, Stage};

pub struct Node {
    pub config: Config,
    pub runtime: Runtime,
    pub ingress: Ingress,
    pub dataplane: &'static DataplaneCounters,
    pub metrics: &'static MetricsRegion,
    pub faucet: Option<Keypair>,
    /// The sequencer's identity (its fee collector): the one leader JSON-RPC reports.
    pub identity: solana_pubkey::Pubkey,
    pub tpu_addr: SocketAddr,
    /// Every tile of the node (storage's, the runtime's, the dataplane's, and those started
    /// inside [`Health::enter`] of it, like the RPC's) reports its death here.
    pub health: Arc<Health>,
    /// The ledger's history on disk (`[history] enabled`), read by the RPC.
    pub history: Option<Arc<history::History>>,
    /// Its tile: stopped after the runtime's commit tile, whose link feeds it.
    history_stage: Option<Stage>,
    /// Held for the node's life: one appliance per data dir.
    _lock: DataDirLock,
    raw_port: Option<RawPort>,
    /// The dataplane's tiles, in the order they stop (the runtime's follow).
    stages: Vec<Stage>,
    /// `[cluster] enabled`: what this node knows of the cluster (the RPC routes by it).
    pub cluster: Option<Arc<cluster::ClusterView>>,
    /// Holds the node's lease; stopped first, so the node leaves the cluster before it stops.
    cluster_agent: Option<cluster::etcd::Agent>,
    /// Moves partitions in and out (`scaleout::migrate`).
    cluster_migrator: Option<crate::scaleout::migrate::Migrator>,
    /// Ships this node's log to its follower; takes the log of the nodes it follows.
    cluster_replicator: Option<crate::scaleout::replicate::Replicator>,
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
        let lock = DataDirLock::acquire(&config.data_dir)?;
        let data_dir = config.data_dir.clone();
        // A node that failed to start leaves no metrics region for `monitor` to mistake for
        // a running one.
        Self::start_locked(config, genesis_accounts, lock)
            .inspect_err(|_| MetricsRegion::unlink(&data_dir))
    }

    fn start_locked(
        config: Config,
        genesis_accounts: Vec<(solana_pubkey::Pubkey, u64)>,
        lock: DataDirLock,
    ) -> Result<Self> {
        // The caller's health when it has entered one (so that its panic hook and servers
        // share it), else the node's own; every stage created below reports to it.
        let health = Health::current();
        let _scope = health.enter();
        let wiring = Wiring::from_config(&config);
        let faucet = if config.faucet.enabled {
            Some(keys::load_or_create(
                &config.data_dir.join("faucet-keypair.json"),
            )?)
        } else {
            None
        };
        let fee_collector =
            keys::load_or_create(&config.data_dir.join("fee-collector-keypair.json"))?;
        let metrics = MetricsRegion::create(
            &config.data_dir,
            config.verify.tiles,
            config.runtime.workers,
        );
        let store = config
            .storage
            .open(
                &config.data_dir,
                config.runtime.status_retention_slots,
                Some(&metrics.storage),
            )
            .context("opening the accounts store")?;

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
        let counters = &metrics.dataplane;
        let (verify_bank_tx, verify_bank_rx) =
            crossbeam_channel::bounded(bounded_depth(wiring.link("verify_bank")));
        let machine = crate::hwtopo::Machine::discover();
        if let Err(e) = &machine {
            tracing::warn!(error = %e, "no hwloc topology: islands and workers placed by index");
        }
        let placement = machine
            .as_ref()
            .ok()
            .map(|m| crate::hwtopo::Placement::new(&config, m));
        // The history tile runs before the runtime starts: the runtime replays the slot
        // records storage recovered into its link, then the commit tile feeds it.
        let (history, history_stage, history_tx) = if config.history.enabled {
            let h = Arc::new(
                history::History::open(
                    &config.data_dir.join("history"),
                    config.history.clone(),
                    Some(&metrics.runtime),
                )
                .context("opening the history")?,
            );
            let (tx, rx) = crossbeam_channel::bounded(bounded_depth(wiring.link("commit_history")));
            let mut stage = Stage::new("history");
            stage.launch(
                "gc-history",
                history::HistoryTile::new(rx, h.clone(), &metrics.runtime),
                &metrics.runtime.history,
                Placement::default(),
            )?;
            (Some(h), Some(stage), Some(tx))
        } else {
            (None, None, None)
        };
        // Pre-confirmations to what a raw port received go out of its RX lcores, one link each
        // (only when the port sends replies: they use its reply pool).
        let port_replies: Vec<_> = if config.dpdk.enabled && config.dpdk.port.replies {
            (0..config.dpdk.rx_lcores.len())
                .map(|_| crossbeam_channel::bounded(runtime::preconf::FEED_DEPTH))
                .collect()
        } else {
            Vec::new()
        };
        // Bound before the runtime starts: the preconf tile replies from this socket.
        let udp = UdpReceiver::bind(
            config.net.bind,
            config.net.recv_burst,
            config.net.recv_buffer_bytes,
        )
        .with_context(|| format!("binding transaction port {}", config.net.bind))?;
        let tpu_addr = udp.local_addr()?;
        let mut joined = if config.cluster.enabled {
            // The faucet and the fee collector are this node's own, whatever their partition.
            let local = faucet
                .iter()
                .map(|k| k.pubkey().to_bytes())
                .chain([fee_collector.pubkey().to_bytes()])
                .collect();
            Some(crate::scaleout::join(
                &config,
                &fee_collector.pubkey(),
                local,
                tpu_addr,
            )?)
        } else {
            None
        };
        // The socket that forwards to other nodes, and the bank's inlet for moved partitions.
        // One table for all tiles: copies of a transaction meet it whichever tile they reach.
        let dedup = Arc::new(ShardedDedup::new(
            config.verify.dedup_capacity,
            config.runtime.blockhash_validity_slots(),
            config.verify.tiles,
        ));
        let cluster_io = joined.as_ref().map(|j| {
            let (tx, rx) = crossbeam_channel::bounded(crate::scaleout::WRITES_DEPTH);
            (j.socket.clone(), tx, rx)
        });
        // Durable slots from the commit tile to the replicator (`[cluster] replicate`).
        let replica_tap = joined
            .as_ref()
            .filter(|j| j.replica_listener.is_some())
            .map(|_| {
                let (tx, rx) = crossbeam_channel::bounded(crate::scaleout::replicate::TAP_DEPTH);
                let overflowed = Arc::new(std::sync::atomic::AtomicBool::new(false));
                (
                    runtime::commit::ReplicaTap {
                        slots: tx,
                        overflowed: overflowed.clone(),
                    },
                    rx,
                    overflowed,
                )
            });
        let preconf_delivery = runtime::preconf::Delivery {
            identity_secret: fee_collector.to_bytes()[..32]
                .try_into()
                .expect("a keypair's first 32 bytes are its seed"),
            socket: Some(Arc::new(
                udp.reply_socket()
                    .context("cloning the transaction socket for replies")?,
            )),
            ports: port_replies.iter().map(|(tx, _)| tx.clone()).collect(),
        };
        // Island routes: published by the bank each slot, read by the receiving cores.
        let routes = (config.net.routing == Routing::Affinity).then(|| {
            // A pairing means something only when the verify tiles are pinned.
            let pairing = placement
                .as_ref()
                .filter(|p| p.verify_cores.iter().all(Option::is_some))
                .map(|p| p.verify_for_worker.clone())
                .unwrap_or_default();
            Arc::new(RouteTable::new(config.verify.tiles).with_pairing(pairing))
        });
        let runtime = Runtime::start_with_history(
            &RuntimeSetup {
                runtime: config.runtime.clone(),
                scheduler: SchedulerConfig {
                    island_workers: placement
                        .as_ref()
                        .map(|p| p.island_workers.clone())
                        .unwrap_or_default(),
                    ..config.scheduler.clone()
                },
                worker_numa: placement
                    .as_ref()
                    .map(|p| p.worker_numa.clone())
                    .unwrap_or_default(),
                account_index: config.rpc.account_index(),
                preconf: config.preconf.clone(),
                preconf_delivery: Some(preconf_delivery),
                routes: routes.clone(),
                tuner: runtime::tuner::TunerSetup {
                    config: config.tuner.clone(),
                    dir: Some(config.data_dir.join("tuner")),
                },
                cluster: joined.as_ref().map(|j| runtime::ClusterSetup {
                    view: j.view.clone(),
                    clock: j.clock,
                    ops: cluster_io.as_ref().map(|(_, _, rx)| rx.clone()),
                    forward: cluster_io.as_ref().map(|(s, _, _)| s.clone()),
                    replica: replica_tap.as_ref().map(|(tap, _, _)| tap.clone()),
                    dedup: Some(dedup.clone()),
                }),
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
            verify_bank_rx,
            &metrics.runtime,
            history_tx,
        )?;

        // Stopped in this order (the runtime's own stages after them): ingest, verification.
        let mut net_stage = Stage::new("net");
        let mut verify_stage = Stage::new("verify");
        let mut net_verify = Vec::new();
        for i in 0..config.verify.tiles {
            // In EAL memory with DPDK (hugepages when reserved), like the descriptors.
            let arena = eal.as_ref().map_or(dataplane::Arena::HEAP, |e| e.arena());
            let ring = dataplane::ring::Ring::new(bounded_depth(wiring.link("net_verify")), arena);
            net_verify.push(ring.clone());
            let tile = VerifyTile::new(
                i,
                dedup.clone(),
                config.verify.batch_max,
                runtime.current_slot.clone(),
                counters,
                pool.clone(),
                ring,
                verify_bank_tx.clone(),
            );
            verify_stage.launch(
                format!("gc-verify-{i}"),
                tile,
                VerifyTile::stats(counters, i),
                Placement {
                    core: config.verify.cores.get(i).copied(),
                    numa: None,
                },
            )?;
        }
        drop(verify_bank_tx);
        let ingress = Ingress::new(pool, net_verify, counters);
        let ingress = match &routes {
            Some(r) => ingress.with_routes(r.clone()),
            None => ingress,
        };
        let ingress = match (&joined, &cluster_io) {
            (Some(j), Some((socket, _, _))) => {
                ingress.with_cluster(Arc::new(dataplane::ingress::ClusterEgress {
                    view: j.view.clone(),
                    socket: socket.clone(),
                }))
            }
            _ => ingress,
        };

        net_stage.launch(
            "gc-net",
            NetTile::new(
                udp,
                ingress.clone(),
                RecentFilter::new(config.net.recent_filter_entries),
            ),
            NetTile::stats(counters),
            Placement::default(),
        )?;
        let raw_port = match eal {
            Some(e) => Some(
                e.start(
                    &config,
                    &ingress,
                    metrics,
                    port_replies.into_iter().map(|(_, rx)| rx).collect(),
                )
                .context("starting the DPDK port")?,
            ),
            None => None,
        };
        let replicator = match (&mut joined, &cluster_io, replica_tap) {
            (Some(j), Some((_, writes, _)), Some((_, slots, overflowed))) => {
                let listener = j.replica_listener.take().expect("bound with the tap");
                Some(crate::scaleout::replicate::Replicator::start(
                    crate::scaleout::replicate::Ctx {
                        view: j.view.clone(),
                        db: runtime.db.clone(),
                        chain: runtime.chain.clone(),
                        writes: writes.clone(),
                        endpoints: config.cluster.etcd.clone(),
                        cluster: config.cluster.name.clone(),
                        slots,
                        overflowed,
                        listener,
                    },
                )?)
            }
            _ => None,
        };
        let migrator = match (&joined, cluster_io) {
            (Some(j), Some((socket, writes, _))) => Some(
                crate::scaleout::migrate::Migrator::start(crate::scaleout::migrate::Ctx {
                    view: j.view.clone(),
                    db: runtime.db.clone(),
                    chain: runtime.chain.clone(),
                    writes,
                    ingress: ingress.clone(),
                    socket,
                    endpoints: config.cluster.etcd.clone(),
                    cluster: config.cluster.name.clone(),
                    rebalance: config
                        .cluster
                        .rebalance
                        .then(|| crate::scaleout::rebalance::Policy::of(&config.cluster)),
                })?,
            ),
            _ => None,
        };
        let node = Self {
            config,
            runtime,
            ingress,
            dataplane: counters,
            metrics,
            faucet,
            identity: fee_collector.pubkey(),
            tpu_addr,
            health,
            history,
            history_stage,
            _lock: lock,
            raw_port,
            stages: vec![net_stage, verify_stage],
            cluster: joined.as_ref().map(|j| j.view.clone()),
            cluster_agent: joined.map(|j| j.agent),
            cluster_migrator: migrator,
            cluster_replicator: replicator,
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
            slot_ms = c.runtime.slot_ms,
            scheduler = ?c.scheduler.kind,
            storage = %match c.storage.engine {
                StorageEngine::Array => {
                    format!("device array {:?}", c.storage.device_paths(&c.data_dir))
                }
                StorageEngine::Log => format!("log store in {}", c.data_dir.display()),
            },
            "topology: {}",
            Wiring::from_config(c).summary(),
        );
    }

    /// Stop ingest, let the bank close and commit its slot, stop everything.
    pub fn shutdown(mut self) {
        self.health.begin_stop();
        // Leave the cluster first: the lease is revoked, so routers stop sending here at once.
        if let Some(m) = self.cluster_migrator.take() {
            m.stop();
        }
        if let Some(r) = self.cluster_replicator.take() {
            r.stop();
        }
        if let Some(mut a) = self.cluster_agent.take() {
            a.stop();
        }
        if let Some(p) = self.raw_port.take() {
            p.stop();
        }
        for stage in self.stages {
            stage.stop();
        }
        drop(self.ingress);
        self.runtime.shutdown();
        // The commit tile is gone, so the link is closed: the tile drains it and syncs.
        if let Some(stage) = self.history_stage.take() {
            stage.stop();
        }
        MetricsRegion::unlink(&self.config.data_dir);
    }
}

/// The depth of a bounded link.
fn bounded_depth(link: &LinkDecl) -> usize {
    link.depth
        .unwrap_or_else(|| panic!("link {} is declared unbounded", link.name))
}
