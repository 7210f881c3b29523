//! GigaCompute runtime: sequencer, scheduler, SVM workers (Agave's solana-svm), slot
//! production and commit. Input: verified transaction packets. Output: durable slots.

pub mod accounts;
pub mod admission;
pub mod bank;
pub mod chain;
pub mod commit;
pub mod compute_budget;
pub mod config;
pub mod events;
pub mod genesis;
pub mod index;
pub mod metrics;
pub mod optimistic;
pub mod perf_samples;
pub mod preconf;
pub mod prepare;
pub mod scheduler;
pub mod sequencer;
pub mod sequencing;
pub mod simulate;
pub mod slot;
pub mod svm;
pub mod tuner;
pub mod worker;

use crate::accounts::AccountsDb;
use crate::bank::{Bank, BankParams, BankTile};
use crate::chain::ChainState;
use crate::commit::CommitTile;
use crate::metrics::RuntimeCounters;
use crate::sequencer::Sequencer;
use crate::simulate::Simulator;
use crate::svm::SvmEnv;
use crate::worker::{Worker, WorkerTile};
use crossbeam_channel::Receiver;
use dataplane::{PacketBox, PacketPool};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use storage::AccountsStore;
use telemetry::{Health, Placement, Stage};

pub use config::{ClusterSetup, ClusterWrite, RuntimeConfig, RuntimeSetup};
pub use genesis::GenesisError;

/// Why the runtime did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    #[error("starting a runtime tile: {0}")]
    Spawn(std::io::Error),
}

/// Core for worker `id`: from the config when given; otherwise spread from the last core down,
/// so with fewer workers than cores the low cores stay with the unpinned tiles (net, verify,
/// bank, commit, RPC).
pub fn worker_core(configured: &[usize], id: usize) -> Option<usize> {
    if !configured.is_empty() {
        return configured.get(id).copied();
    }
    let cores = core_affinity::get_core_ids()?.len();
    (cores > 0).then(|| cores - 1 - id % cores)
}

/// The running runtime tiles and the state they share with the RPC.
pub struct Runtime {
    pub env: Arc<SvmEnv>,
    pub db: Arc<AccountsDb>,
    pub chain: Arc<ChainState>,
    pub counters: &'static RuntimeCounters,
    pub current_slot: Arc<AtomicU64>,
    pub simulator: Arc<Simulator>,
    /// Signed pre-confirmations by signature, for the RPC (when they are delivered).
    pub preconf_board: Option<Arc<preconf::board::Board>>,
    /// Signed pre-confirmations for the PubSub endpoint (when they are delivered).
    pub preconf_feed: Option<preconf::Feed>,
    /// Where the runtime's tiles report their death: the node's when it started the runtime
    /// inside its scope (`Health::enter`), else the runtime's own.
    pub health: Arc<Health>,
    /// Imposes a setting of the live knobs at the next slot close (benches and tests compare
    /// static settings with it; it wins over the tuner's).
    pub knob_override: crossbeam_channel::Sender<tuner::Knobs>,
    /// The runtime's tiles, in the order they stop.
    stages: Vec<Stage>,
}

impl Runtime {
    pub fn start(
        setup: &RuntimeSetup,
        store: Arc<dyn AccountsStore>,
        pool: PacketPool,
        verified: Receiver<PacketBox>,
        counters: &'static RuntimeCounters,
    ) -> Result<Self, StartError> {
        Self::start_with_history(setup, store, pool, verified, counters, None)
    }

    /// [`Runtime::start`], handing every durable slot's record to `history` (the history
    /// tile, already running): first the records the store recovered (or genesis), which
    /// the history skips where it has them, then each slot the commit tile makes durable.
    pub fn start_with_history(
        setup: &RuntimeSetup,
        store: Arc<dyn AccountsStore>,
        pool: PacketPool,
        verified: Receiver<PacketBox>,
        counters: &'static RuntimeCounters,
        history: Option<crossbeam_channel::Sender<commit::DurableSlot>>,
    ) -> Result<Self, StartError> {
        let config = &setup.runtime;
        let health = Health::current();
        let _scope = health.enter();
        let env = Arc::new(SvmEnv::new());
        let db = Arc::new(AccountsDb::with_index(
            store,
            counters,
            &setup.account_index,
        ));
        let built = db.build_index();
        tracing::info!(
            accounts = built.accounts,
            entries = built.entries,
            read_errors = built.read_errors,
            ms = built.elapsed_ms,
            "secondary account indexes built from the store"
        );
        let (chain, recent) = genesis::bootstrap(
            &env,
            &db,
            &setup.genesis,
            chain::StatusRetention {
                slots: config.status_retention_slots,
                bytes: config.status_retention_bytes,
                blockhash_validity_slots: config.blockhash_validity_slots(),
            },
        )?;
        let chain = Arc::new(chain);
        if setup.cluster.as_ref().is_some_and(|c| c.replica.is_some()) {
            // Before any tile runs: nothing is confirmed until the follower holds it.
            chain.require_replica(0);
        }
        if let Some(c) = &setup.cluster {
            chain.set_cluster_clock(c.clock);
        }
        if let Some(h) = &history {
            // Catch-up: whatever storage made durable that the history lacks (a crash can
            // leave the history's unsynced tail behind). A new chain's genesis was committed
            // by `bootstrap` itself, not the commit tile.
            let recovered = db.recovered();
            let replay = if recovered.last_slot.is_none() {
                let header = chain.header(0).expect("genesis slot");
                let record = chain::SlotRecord {
                    header,
                    genesis_hash: chain.genesis_hash(),
                    statuses: Vec::new(),
                };
                vec![(0, record.encode())]
            } else {
                recovered.slot_metas
            };
            for (slot, meta) in replay {
                let _ = h.send(commit::DurableSlot { slot, meta });
            }
        }
        let generation = Arc::new(AtomicU64::new(0));
        let current_slot = Arc::new(AtomicU64::new(0));
        // Stages stop in this order: the bank closes its last slot and closes the workers'
        // input, the workers finish, the commit tile makes every closed slot durable.
        let mut bank_stage = Stage::new("bank");
        let mut worker_stage = Stage::new("worker");
        let mut commit_stage = Stage::new("commit");

        let (worker_bank_tx, worker_bank_rx) = crossbeam_channel::unbounded();
        let mut bank_workers = Vec::new();
        for id in 0..config.workers.max(1) {
            let (tx, rx) = crossbeam_channel::bounded(1);
            bank_workers.push(tx);
            let w = Worker {
                id,
                counters,
                env: env.clone(),
                db: db.clone(),
                generation: generation.clone(),
            };
            let placement = Placement {
                core: worker_core(&config.worker_cores, id),
                numa: setup.worker_numa.get(id).copied().flatten(),
            };
            worker_stage
                .launch(
                    format!("gc-worker-{id}"),
                    WorkerTile::new(w, rx, worker_bank_tx.clone()),
                    WorkerTile::stats(counters, id),
                    placement,
                )
                .map_err(StartError::Spawn)?;
        }
        drop(worker_bank_tx);

        let (bank_commit_tx, bank_commit_rx) =
            crossbeam_channel::bounded(config.commit_queue_slots.max(1));
        commit_stage
            .launch(
                "gc-commit",
                CommitTile::new(bank_commit_rx, db.clone(), chain.clone(), counters, history)
                    .with_replica(setup.cluster.as_ref().and_then(|c| c.replica.clone())),
                &counters.commit,
                Placement::default(),
            )
            .map_err(StartError::Spawn)?;

        let bank = Bank::new(
            env.clone(),
            db.clone(),
            chain.clone(),
            counters,
            pool,
            BankParams {
                slot_ms: config.slot_ms,
                fee_collector: setup.genesis.fee_collector,
                apps: setup.scheduler.classifier(),
                sequencing: setup.scheduler.sequencing(),
                admit_burst: config.admit_burst,
            },
            Sequencer::new(config.sequencer_capacity, setup.scheduler.eviction()),
            setup.scheduler.build(
                config.workers.max(1),
                config.batch_max,
                config.slot_ms,
                counters,
            ),
            bank_workers,
            worker_bank_rx,
            bank_commit_tx,
            current_slot.clone(),
            recent,
            setup.cluster.clone(),
        );
        let mut preconf_stage = Stage::new("preconf");
        let mut preconf_board = None;
        let mut preconf_feed = None;
        let configured = tuner::Knobs::configured(config, &setup.scheduler);
        let (tuner, start) = match tuner::Tuner::new(
            &setup.tuner,
            configured,
            config.workers.max(1),
            config.slot_ms,
            counters,
        ) {
            Some((t, k)) => (Some(t), k),
            None => (None, configured),
        };
        let (knob_override, overrides) = crossbeam_channel::bounded(4);
        let bank = bank.with_tuner(tuner, start).with_knob_overrides(overrides);
        let bank = match &setup.routes {
            Some(r) => bank.with_routes(r.clone()),
            None => bank,
        };
        let bank = if setup.preconf.enabled {
            let out = match &setup.preconf_delivery {
                Some(d) => {
                    let (tx, rx) = crossbeam_channel::bounded(setup.preconf.queue_depth.max(1));
                    let board = Arc::new(preconf::board::Board::new(preconf::BOARD_SLOTS));
                    preconf_board = Some(board.clone());
                    let (feed_tx, feed_rx) = crossbeam_channel::bounded(preconf::FEED_DEPTH);
                    let listeners = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    preconf_feed = Some(preconf::Feed {
                        rx: feed_rx,
                        listeners: listeners.clone(),
                    });
                    preconf_stage
                        .launch(
                            "gc-preconf",
                            preconf::tile::PreconfTile::new(
                                rx,
                                &d.identity_secret,
                                d.socket.clone(),
                                d.ports.clone(),
                                board,
                                &counters.preconf,
                                &counters.preconf_tile,
                                setup.preconf.max_replies_per_peer_per_s,
                            )
                            .with_feed(feed_tx, listeners),
                            &counters.preconf_tile,
                            Placement::default(),
                        )
                        .map_err(StartError::Spawn)?;
                    Some(tx)
                }
                None => None,
            };
            bank.with_preconf(preconf::Predictor::new(
                setup.preconf.clone(),
                &counters.preconf,
                out,
            ))
        } else {
            bank
        };
        bank_stage
            .launch(
                "gc-bank",
                BankTile::new(bank, verified),
                &counters.bank,
                Placement::default(),
            )
            .map_err(StartError::Spawn)?;
        let simulator = Arc::new(Simulator::new(
            env.clone(),
            db.clone(),
            chain.clone(),
            generation,
        ));
        Ok(Self {
            env,
            db,
            chain,
            counters,
            current_slot,
            simulator,
            health,
            preconf_board,
            preconf_feed,
            knob_override,
            // The preconf tile's input closes with the bank: it sends what is left and stops.
            stages: vec![bank_stage, preconf_stage, worker_stage, commit_stage],
        })
    }

    /// Close the current slot, wait until it is durable, stop every runtime tile.
    pub fn shutdown(self) {
        self.health.begin_stop();
        for stage in self.stages {
            stage.stop();
        }
    }
}
