//! SVM worker tile: executes scheduled batches with its own `TransactionBatchProcessor` (own
//! program cache, so workers do not contend on one cache lock) and writes results into the
//! accounts overlay while its scheduler locks are held.

use crate::accounts::{AccountsDb, SvmCallback};
use crate::chain::{TokenBalance, TxStatus};
use crate::sequencer::PreparedTx;
use crate::svm::{Processor, SvmEnv};
use crossbeam_channel::{Receiver, Sender};
use dataplane::PacketBox;
use solana_account::AccountSharedData;
use solana_clock::Slot;
use solana_hash::Hash;
use solana_message::SanitizedMessage;
use solana_pubkey::Pubkey;
use solana_svm::transaction_processing_result::ProcessedTransaction;
use solana_transaction_error::TransactionError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub struct WorkBatch {
    pub slot: Slot,
    /// The parent slot's blockhash (what durable nonces advance to).
    pub blockhash: Hash,
    pub txs: Vec<PreparedTx>,
}

pub enum Outcome {
    /// Executed or charged fees only: it lands in the slot.
    Processed(Box<TxStatus>),
    /// Rejected by the SVM before any state change (e.g. payer cannot pay the fee).
    Dropped(TransactionError),
}

pub struct BatchDone {
    pub worker: usize,
    pub slot: Slot,
    pub outcomes: Vec<(Outcome, PacketBox)>,
    pub written: Vec<Pubkey>,
    pub exec_ns: u64,
    pub compute_units: u64,
}

/// Bumped whenever any worker's batch deployed or upgraded a program, so the other workers
/// rebuild their program caches.
pub type ProgramGeneration = Arc<AtomicU64>;

pub struct Worker {
    pub id: usize,
    pub counters: &'static crate::metrics::RuntimeCounters,
    pub env: Arc<SvmEnv>,
    pub db: Arc<AccountsDb>,
    pub generation: ProgramGeneration,
}

impl Worker {
    pub fn run(self, rx: Receiver<WorkBatch>, done: Sender<BatchDone>, core: Option<usize>) {
        if let Some(core) = core
            && !core_affinity::set_for_current(core_affinity::CoreId { id: core })
        {
            tracing::warn!(worker = self.id, core, "could not pin worker");
        }
        let mut processor: Option<(Processor, u64)> = None;
        let stats = &self.counters.workers[self.id % crate::metrics::MAX_WORKERS];
        let mut clock = telemetry::TileClock::new(stats);
        while let Ok(batch) = rx.recv() {
            clock.idle();
            stats.add_in(batch.txs.len() as u64);
            let started = Instant::now();
            let generation = self.generation.load(Ordering::Acquire);
            let p = match processor.take() {
                Some((p, g)) if g == generation && p_slot(&p) == batch.slot => (p, g),
                Some((p, g)) if g == generation => (self.env.advance(&p, batch.slot, &self.db), g),
                _ => (self.env.new_processor(batch.slot, &self.db), generation),
            };
            let (done_batch, modified) = execute(&self, &p.0, batch);
            let mut p = p;
            if modified {
                p.1 = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
            }
            processor = Some(p);
            let mut done_batch = done_batch;
            done_batch.exec_ns = started.elapsed().as_nanos() as u64;
            stats.add_out(done_batch.outcomes.len() as u64);
            clock.busy();
            if done.send(done_batch).is_err() {
                break;
            }
        }
    }
}

fn p_slot(p: &Processor) -> Slot {
    p.sysvar_cache()
        .get_clock()
        .map(|c| c.slot)
        .unwrap_or(Slot::MAX)
}

/// Execute one batch and apply its writes. Returns whether programs changed.
pub fn execute(w: &Worker, p: &Processor, batch: WorkBatch) -> (BatchDone, bool) {
    let WorkBatch {
        slot,
        blockhash,
        txs,
    } = batch;
    let sanitized: Vec<_> = txs.iter().map(|t| t.sanitized.clone()).collect();
    let checks = txs.iter().map(|t| w.env.check_result(&t.budget)).collect();
    let env = w.env.processing_environment(blockhash);
    let config = w.env.processing_config();
    let out = p.load_and_execute_sanitized_transactions(
        &SvmCallback(&w.db),
        &sanitized,
        checks,
        &env,
        &config,
    );
    let (native_pre, native_post, token_pre, token_post) = out
        .balance_collector
        .map(|b| b.into_vecs())
        .unwrap_or_default();
    let mut written = Vec::new();
    let mut outcomes = Vec::with_capacity(txs.len());
    let mut modified = false;
    let mut compute_units = 0;
    for (i, (result, tx)) in out.processing_results.into_iter().zip(txs).enumerate() {
        let msg = tx.sanitized.message();
        let mut write = |key: Pubkey, account: AccountSharedData| {
            w.db.write(key, account, slot);
            written.push(key);
        };
        let (err, fee, cu, logs) = match result {
            Err(e) => {
                outcomes.push((Outcome::Dropped(e), tx.packet));
                continue;
            }
            Ok(ProcessedTransaction::Executed(e)) => {
                let details = e.execution_details;
                if details.status.is_ok() {
                    for (idx, (key, account)) in
                        e.loaded_transaction.accounts.into_iter().enumerate()
                    {
                        if msg.is_writable(idx) {
                            write(key, account);
                        }
                    }
                    if !e.programs_modified_by_tx.is_empty() {
                        p.global_program_cache
                            .write()
                            .expect("program cache lock")
                            .merge(
                                &p.program_runtime_environment,
                                slot,
                                &e.programs_modified_by_tx,
                            );
                        modified = true;
                    }
                } else {
                    for (key, account) in e.loaded_transaction.rollback_accounts.iter() {
                        write(*key, account.clone());
                    }
                }
                (
                    details.status.err(),
                    e.loaded_transaction.fee_details.total_fee(),
                    details.executed_units,
                    details.log_messages.unwrap_or_default(),
                )
            }
            Ok(ProcessedTransaction::FeesOnly(f)) => {
                for (key, account) in f.rollback_accounts.iter() {
                    write(*key, account.clone());
                }
                (Some(f.load_error), f.fee_details.total_fee(), 0, Vec::new())
            }
        };
        compute_units += cu;
        let (loaded_writable, loaded_readonly) = match msg {
            SanitizedMessage::V0(m) => (
                m.loaded_addresses.writable.clone(),
                m.loaded_addresses.readonly.clone(),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        let tokens = |v: &Vec<Vec<solana_svm::transaction_balances::SvmTokenInfo>>| {
            v.get(i)
                .map(|t| {
                    t.iter()
                        .map(|t| TokenBalance {
                            account_index: t.account_index,
                            mint: t.mint,
                            owner: t.owner,
                            program_id: t.program_id,
                            amount: t.amount,
                            decimals: t.decimals,
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let status = TxStatus {
            signature: *tx.sanitized.signature(),
            slot,
            err,
            fee,
            compute_units: cu,
            logs,
            pre_balances: native_pre.get(i).cloned().unwrap_or_default(),
            post_balances: native_post.get(i).cloned().unwrap_or_default(),
            pre_token_balances: tokens(&token_pre),
            post_token_balances: tokens(&token_post),
            loaded_writable,
            loaded_readonly,
            transaction: tx.packet.bytes().to_vec(),
        };
        outcomes.push((Outcome::Processed(Box::new(status)), tx.packet));
    }
    (
        BatchDone {
            worker: w.id,
            slot,
            outcomes,
            written,
            exec_ns: 0,
            compute_units,
        },
        modified,
    )
}
