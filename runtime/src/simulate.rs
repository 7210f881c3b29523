//! Execution without commit: RPC `simulateTransaction` and sendTransaction preflight.
//! Runs the same preparation and the same SVM against the latest (processed) state and
//! discards every write.

use crate::accounts::{AccountsDb, SvmCallback};
use crate::chain::ChainState;
use crate::prepare::{Rejection, prepare};
use crate::svm::{Processor, SvmEnv};
use crate::worker::ProgramGeneration;
use dataplane::Packet;
use parking_lot::Mutex;
use solana_clock::Slot;
use solana_pubkey::Pubkey;
use solana_slot_hashes::SlotHashes;
use solana_svm::transaction_processing_result::ProcessedTransaction;
use solana_transaction_error::TransactionError;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub struct Simulation {
    pub slot: Slot,
    pub err: Option<TransactionError>,
    pub logs: Vec<String>,
    pub units_consumed: u64,
    pub fee: u64,
    pub return_data: Option<(Pubkey, Vec<u8>)>,
}

/// Why a simulation did not run.
#[derive(Debug)]
pub enum SimulateError {
    /// The transaction was refused before execution (what the bank would refuse it for).
    Rejected(Rejection),
    /// Other simulations held the simulator for [`SIMULATION_WAIT`]: the caller is told to
    /// retry rather than hold an RPC tile behind them.
    Busy,
}

impl From<Rejection> for SimulateError {
    fn from(r: Rejection) -> Self {
        Self::Rejected(r)
    }
}

/// How long a simulation waits for the simulator. Each simulation is bounded by its compute
/// units (at most 1.4M, as in Agave), so the wait is what an RPC tile could otherwise spend
/// queued behind a flood of them.
pub const SIMULATION_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

pub struct Simulator {
    env: Arc<SvmEnv>,
    db: Arc<AccountsDb>,
    chain: Arc<ChainState>,
    generation: ProgramGeneration,
    processor: Mutex<Option<(Processor, Slot, u64)>>,
}

impl Simulator {
    pub fn new(
        env: Arc<SvmEnv>,
        db: Arc<AccountsDb>,
        chain: Arc<ChainState>,
        generation: ProgramGeneration,
    ) -> Self {
        Self {
            env,
            db,
            chain,
            generation,
            processor: Mutex::new(None),
        }
    }

    /// `check_blockhash`: refuse a transaction whose blockhash is unknown or too old.
    pub fn simulate(
        &self,
        packet: &Packet,
        check_blockhash: bool,
    ) -> Result<Simulation, SimulateError> {
        let head = self.chain.processed_slot();
        let slot = head + 1;
        let desc = packet.desc.as_ref().expect("parsed packet");
        if check_blockhash {
            let h = solana_hash::Hash::new_from_array(*desc.recent_blockhash(packet.bytes()));
            if self.chain.blockhash_slot(&h, slot).is_none() {
                return Err(Rejection::BlockhashNotFound.into());
            }
        }
        let first = head.saturating_sub(511);
        let hashes: Vec<_> = (first..=head)
            .rev()
            .filter_map(|s| self.chain.header(s).map(|h| (s, h.blockhash)))
            .collect();
        let slot_hashes = SlotHashes::new(&hashes);
        // The RPC decoded it once; the simulation works on a copy (the RPC may submit it).
        let verified = packet
            .verified
            .as_deref()
            .cloned()
            .ok_or(Rejection::Sanitize(TransactionError::SanitizeFailure))?;
        let prepared = prepare(
            &self.env,
            &self.db,
            desc,
            packet.bytes(),
            verified,
            slot,
            &slot_hashes,
        )?;
        let blockhash = self
            .chain
            .header(head)
            .map(|h| h.blockhash)
            .unwrap_or_default();
        let generation = self.generation.load(Ordering::Acquire);
        let mut guard = self
            .processor
            .try_lock_for(SIMULATION_WAIT)
            .ok_or(SimulateError::Busy)?;
        let fresh = !matches!(&*guard, Some((_, s, g)) if *s == slot && *g == generation);
        if fresh {
            *guard = Some((self.env.new_processor(slot, &self.db), slot, generation));
        }
        let (p, _, _) = guard.as_ref().expect("processor set");
        let cb = SvmCallback::new(&self.db);
        let out = p.load_and_execute_sanitized_transactions(
            &cb,
            std::slice::from_ref(&prepared.sanitized),
            vec![self.env.check_result(&prepared.budget)],
            &self.env.processing_environment(blockhash),
            &self.env.processing_config(),
        );
        if cb.failed().is_some() {
            // A read failed: the SVM saw an existing account as absent. No simulation result.
            return Err(Rejection::Lookup(TransactionError::ClusterMaintenance).into());
        }
        let result = out
            .processing_results
            .into_iter()
            .next()
            .expect("one result per transaction");
        Ok(match result {
            Err(e) => Simulation {
                slot: head,
                err: Some(e),
                logs: Vec::new(),
                units_consumed: 0,
                fee: 0,
                return_data: None,
            },
            Ok(ProcessedTransaction::Executed(e)) => Simulation {
                slot: head,
                err: e.execution_details.status.err(),
                logs: e.execution_details.log_messages.unwrap_or_default(),
                units_consumed: e.execution_details.executed_units,
                fee: e.loaded_transaction.fee_details.total_fee(),
                return_data: e
                    .execution_details
                    .return_data
                    .filter(|r| !r.data.is_empty())
                    .map(|r| (r.program_id, r.data)),
            },
            Ok(ProcessedTransaction::FeesOnly(f)) => Simulation {
                slot: head,
                err: Some(f.load_error),
                logs: Vec::new(),
                units_consumed: 0,
                fee: f.fee_details.total_fee(),
                return_data: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::GenesisConfig;
    use crate::{Runtime, RuntimeConfig, RuntimeSetup};
    use dataplane::PacketPool;
    use solana_keypair::Keypair;
    use solana_signer::Signer;

    /// A simulation that cannot get the simulator within the wait is refused, not queued; the
    /// next one runs.
    #[test]
    fn a_busy_simulator_refuses_instead_of_queueing() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(
            storage::LogStore::open(dir.path(), storage::LogStoreConfig::default()).unwrap(),
        );
        let payer = Keypair::new();
        let (_tx, rx) = crossbeam_channel::bounded(4);
        let pool = PacketPool::new(16);
        let rt = Runtime::start(
            &RuntimeSetup {
                runtime: RuntimeConfig {
                    slot_ms: 20,
                    workers: 1,
                    ..RuntimeConfig::default()
                },
                scheduler: Default::default(),
                worker_numa: vec![],
                account_index: Default::default(),
                preconf: Default::default(),
                preconf_delivery: None,
                routes: None,
                tuner: Default::default(),
                cluster: None,
                genesis: GenesisConfig {
                    faucet: Some((payer.pubkey(), 1_000_000_000)),
                    fee_collector: solana_pubkey::Pubkey::new_unique(),
                    accounts: vec![],
                },
            },
            store,
            pool.clone(),
            rx,
            telemetry::SharedRegion::private(),
        )
        .unwrap();
        let blockhash = rt
            .chain
            .latest_header(crate::chain::Commitment::Processed)
            .unwrap()
            .blockhash;
        let ix = solana_system_interface::instruction::transfer(
            &payer.pubkey(),
            &solana_pubkey::Pubkey::new_unique(),
            10_000_000,
        );
        let tx = solana_transaction::Transaction::new(
            &[&payer],
            solana_message::Message::new(&[ix], Some(&payer.pubkey())),
            blockhash,
        );
        let mut packet = pool.take().unwrap();
        assert!(packet.fill_verified(&bincode::serialize(&tx).unwrap()));

        let held = rt.simulator.processor.lock();
        let started = std::time::Instant::now();
        assert!(matches!(
            rt.simulator.simulate(&packet, false),
            Err(SimulateError::Busy)
        ));
        assert!(started.elapsed() >= SIMULATION_WAIT);
        drop(held);
        let sim = rt.simulator.simulate(&packet, false).unwrap();
        assert_eq!(sim.err, None);
        rt.shutdown();
    }
}
