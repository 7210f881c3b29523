//! GigaCompute runtime: sequencer, scheduler, SVM workers (Agave's solana-svm), slot
//! production and commit. Input: verified transaction packets. Output: durable slots.

pub mod accounts;
pub mod bank;
pub mod chain;
pub mod commit;
pub mod compute_budget;
pub mod genesis;
pub mod metrics;
pub mod optimistic;
pub mod prepare;
pub mod scheduler;
pub mod sequencer;
pub mod simulate;
pub mod svm;
pub mod worker;

use crate::accounts::AccountsDb;
use crate::bank::{Bank, BankParams};
use crate::chain::ChainState;
use crate::genesis::GenesisConfig;
use crate::metrics::RuntimeCounters;
use crate::scheduler::SchedulerKind;
use crate::scheduler::apps::AppClassifier;
use crate::sequencer::Sequencer;
use crate::simulate::Simulator;
use crate::svm::SvmEnv;
use crate::worker::Worker;
use crossbeam_channel::Receiver;
use dataplane::{PacketBox, PacketPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use storage::AccountsStore;

pub use genesis::GenesisError;

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub slot_ms: u64,
    pub workers: usize,
    /// Core per worker; empty = do not pin.
    pub worker_cores: Vec<usize>,
    /// NUMA node each worker's memory is bound to (placement; empty or `None`: not bound).
    pub worker_numa: Vec<Option<usize>>,
    pub batch_max: usize,
    pub sequencer_capacity: usize,
    pub status_retention_slots: usize,
    /// Closed slots waiting for the commit tile before the bank blocks.
    pub commit_queue_slots: usize,
    pub scheduler: SchedulerKind,
    /// What makes an app (for the scheduler and the per-app metrics).
    pub apps: AppClassifier,
    pub genesis: GenesisConfig,
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
    shutdown: Arc<AtomicBool>,
    bank: Option<JoinHandle<()>>,
    tiles: Vec<JoinHandle<()>>,
}

impl Runtime {
    pub fn start(
        config: &RuntimeConfig,
        store: Arc<dyn AccountsStore>,
        pool: PacketPool,
        verified: Receiver<PacketBox>,
        counters: &'static RuntimeCounters,
    ) -> Result<Self, GenesisError> {
        let env = Arc::new(SvmEnv::new());
        let db = Arc::new(AccountsDb::new(store, counters));
        let (chain, recent) =
            genesis::bootstrap(&env, &db, &config.genesis, config.status_retention_slots)?;
        let chain = Arc::new(chain);
        let generation = Arc::new(AtomicU64::new(0));
        let current_slot = Arc::new(AtomicU64::new(0));
        let shutdown = Arc::new(AtomicBool::new(false));
        let mut tiles = Vec::new();

        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let mut worker_txs = Vec::new();
        for id in 0..config.workers.max(1) {
            let (tx, rx) = crossbeam_channel::bounded(1);
            worker_txs.push(tx);
            let w = Worker {
                id,
                counters,
                env: env.clone(),
                db: db.clone(),
                generation: generation.clone(),
            };
            let done = done_tx.clone();
            let core = worker_core(&config.worker_cores, id);
            let numa = config.worker_numa.get(id).copied().flatten();
            tiles.push(
                std::thread::Builder::new()
                    .name(format!("gc-worker-{id}"))
                    .spawn(move || w.run(rx, done, core, numa))
                    .expect("spawn worker"),
            );
        }

        let (commit_tx, commit_rx) = crossbeam_channel::bounded(config.commit_queue_slots.max(1));
        {
            let (db, chain) = (db.clone(), chain.clone());
            tiles.push(
                std::thread::Builder::new()
                    .name("gc-commit".into())
                    .spawn(move || commit::run(commit_rx, db, chain, counters))
                    .expect("spawn commit"),
            );
        }

        let bank = Bank::new(
            env.clone(),
            db.clone(),
            chain.clone(),
            counters,
            pool,
            BankParams {
                slot_ms: config.slot_ms,
                fee_collector: config.genesis.fee_collector,
                apps: config.apps.clone(),
            },
            Sequencer::new(config.sequencer_capacity, config.scheduler.eviction()),
            config.scheduler.build(
                config.workers.max(1),
                config.batch_max,
                config.slot_ms,
                counters,
            ),
            worker_txs,
            done_rx,
            commit_tx,
            current_slot.clone(),
            recent,
        );
        let stop = shutdown.clone();
        let bank = std::thread::Builder::new()
            .name("gc-bank".into())
            .spawn(move || bank.run(verified, stop))
            .expect("spawn bank");
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
            shutdown,
            bank: Some(bank),
            tiles,
        })
    }

    /// Close the current slot, wait until it is durable, stop every runtime tile.
    pub fn shutdown(mut self) {
        self.shutdown.store(true, Ordering::Release);
        if let Some(b) = self.bank.take() {
            let _ = b.join();
        }
        // The bank dropped the worker and commit senders: the tiles drain and exit.
        for t in self.tiles.drain(..) {
            let _ = t.join();
        }
    }
}
