//! The runtime tiles in process, fed signed transactions directly (what the verify tiles
//! hand the bank), for benches that measure scheduling and execution without the network
//! front end.

use anyhow::Context;
use crossbeam_channel::Sender;
use dataplane::{PacketBox, PacketPool};
use runtime::chain::Commitment;
use runtime::genesis::GenesisConfig;
use runtime::metrics::RuntimeCounters;
use runtime::scheduler::SchedulerConfig;
use runtime::{Runtime, RuntimeConfig, RuntimeSetup};
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use storage::{LogStore, LogStoreConfig};

/// The appliance's defaults for what the benches do not vary.
const SLOT_MS: u64 = 50;
const BATCH_MAX: usize = 64;
const SEQUENCER_CAPACITY: usize = 100_000;

pub struct Appliance {
    pub rt: Runtime,
    workers: usize,
    pub counters: &'static RuntimeCounters,
    tx: Sender<PacketBox>,
    pool: PacketPool,
    _dir: tempfile::TempDir,
}

impl Appliance {
    pub fn start(
        scheduler: SchedulerConfig,
        workers: usize,
        accounts: Vec<(Pubkey, u64)>,
    ) -> anyhow::Result<Self> {
        Self::start_with(
            scheduler,
            workers,
            accounts,
            Default::default(),
            LogStoreConfig::default(),
        )
    }

    /// With the `[tuner]` of `tuner` (its files, if any, where it says) and this log store.
    pub fn start_with(
        scheduler: SchedulerConfig,
        workers: usize,
        accounts: Vec<(Pubkey, u64)>,
        tuner: runtime::tuner::TunerSetup,
        store: LogStoreConfig,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(LogStore::open(dir.path(), store)?);
        // Room for a full sequencer plus what is on its way to it.
        let pool = PacketPool::new(SEQUENCER_CAPACITY + 32_768);
        let (tx, rx) = crossbeam_channel::bounded(16_384);
        let counters: &'static RuntimeCounters = telemetry::SharedRegion::private();
        let config = RuntimeSetup {
            runtime: RuntimeConfig {
                slot_ms: SLOT_MS,
                workers,
                worker_cores: Vec::new(),
                batch_max: BATCH_MAX,
                admit_burst: 64,
                sequencer_capacity: SEQUENCER_CAPACITY,
                status_retention_slots: 4096,
                status_retention_bytes: 256 << 20,
                commit_queue_slots: 8,
                blockhash_validity_ms: 60_000,
            },
            scheduler,
            worker_numa: Vec::new(),
            account_index: Default::default(),
            preconf: Default::default(),
            preconf_delivery: None,
            routes: None,
            tuner,
            cluster: None,
            genesis: GenesisConfig {
                faucet: None,
                fee_collector: Pubkey::new_unique(),
                accounts,
            },
        };
        let rt = Runtime::start(&config, store, pool.clone(), rx, counters)
            .context("starting the runtime")?;
        Ok(Self {
            rt,
            workers,
            counters,
            tx,
            pool,
            _dir: dir,
        })
    }

    pub fn blockhash(&self) -> Hash {
        self.rt
            .chain
            .latest_header(Commitment::Processed)
            .expect("genesis slot exists")
            .blockhash
    }

    /// A packet holding `wire`, parsed and decoded; `None` when the packet pool is exhausted
    /// (or `wire` is not a transaction, which the workloads never send).
    fn packet(&self, wire: &[u8]) -> Option<PacketBox> {
        let mut p = self.pool.take()?;
        if !p.fill_verified(wire) {
            self.pool.give(p);
            return None;
        }
        Some(p)
    }

    /// Hand one wire transaction to the bank, stamped as received now. False when the packet
    /// pool is exhausted (an ingress drop).
    pub fn send(&self, wire: &[u8]) -> bool {
        let Some(mut p) = self.packet(wire) else {
            return false;
        };
        p.received_ns = dataplane::monotonic_ns();
        self.tx.send(p).is_ok()
    }

    /// Transactions executed so far (succeeded or failed).
    pub fn executed(&self) -> u64 {
        self.counters.executed_ok.load(Ordering::Relaxed)
            + self.counters.executed_err.load(Ordering::Relaxed)
    }

    /// Send `wire` as fast as the bank takes it and return the executed rate: from the first
    /// send until `wire.len()` more transactions executed. The packets are filled and parsed
    /// before the clock starts (that is the network front end's work, not measured here).
    pub fn burst(&self, wire: &[Vec<u8>]) -> anyhow::Result<f64> {
        let packets = wire
            .iter()
            .map(|w| self.packet(w))
            .collect::<Option<Vec<_>>>()
            .context("packet pool exhausted")?;
        let start_count = self.executed();
        let target = start_count + wire.len() as u64;
        let busy = |s: &telemetry::TileStats| s.busy_ns.load(Ordering::Relaxed);
        let c = self.counters;
        let workers = self.workers;
        let before: (u64, u64, u64) = (
            busy(&c.bank),
            c.workers[..workers].iter().map(busy).sum(),
            busy(&c.commit),
        );
        let t = Instant::now();
        for mut p in packets {
            p.received_ns = dataplane::monotonic_ns();
            anyhow::ensure!(self.tx.send(p).is_ok(), "the bank exited");
        }
        let deadline = t + Duration::from_secs(120);
        while self.executed() < target {
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {} of {} executed",
                self.executed() - start_count,
                wire.len()
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        let secs = t.elapsed().as_secs_f64();
        let share = |now: u64, then: u64| (now - then) as f64 / 1e9 / secs;
        tracing::info!(
            tps = wire.len() as f64 / secs,
            workers,
            bank_busy = share(busy(&c.bank), before.0),
            workers_busy = share(c.workers[..workers].iter().map(busy).sum(), before.1),
            commit_busy = share(busy(&c.commit), before.2),
            optimistic_batches = c.optimistic_batches.load(Ordering::Relaxed),
            reexecutions = c.reexecutions.load(Ordering::Relaxed),
            cu_per_tx = c.compute_units.load(Ordering::Relaxed) / self.executed().max(1),
            "burst (busy: cores' worth)"
        );
        Ok(wire.len() as f64 / secs)
    }

    /// Send set-up transactions and wait until each has succeeded.
    pub fn setup(&self, wire: &[Vec<u8>], sigs: &[Signature]) -> anyhow::Result<()> {
        for w in wire {
            anyhow::ensure!(self.send(w), "packet pool exhausted");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        for (i, s) in sigs.iter().enumerate() {
            loop {
                if let Some(st) = self.rt.chain.status(s) {
                    anyhow::ensure!(
                        st.err.is_none(),
                        "set-up transaction {i} ({s}) failed: {:?} {:?}",
                        st.err,
                        st.logs
                    );
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "set-up transaction {s} never ran"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    }

    pub fn shutdown(self) {
        self.rt.shutdown();
    }
}
