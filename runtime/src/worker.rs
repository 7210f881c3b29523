//! SVM worker tile: executes scheduled batches with its own `TransactionBatchProcessor` (own
//! program cache, so workers do not contend on one cache lock).
//!
//! A locked batch ([`ExecMode::Locked`]) writes its results into the accounts overlay while its
//! scheduler locks are held. An optimistic batch writes nothing: it hands back the accounts
//! its transactions really changed (compared with what they read), which the bank applies once
//! the batch validates.

use crate::accounts::{AccountsDb, SvmCallback};
use crate::chain::{InnerInstruction, InnerInstructions, ReturnData, TokenBalance, TxStatus};
use crate::scheduler::ExecMode;
use crate::sequencer::PreparedTx;
use crate::svm::{Processor, SvmEnv};
use ahash::HashMap;
use crossbeam_channel::{Receiver, Sender};
use solana_account::AccountSharedData;
use solana_clock::Slot;
use solana_hash::Hash;
use solana_message::SanitizedMessage;
use solana_pubkey::Pubkey;
use solana_svm::transaction_processing_result::ProcessedTransaction;
use solana_svm_callback::{InvokeContextCallback, TransactionProcessingCallback};
use solana_transaction_error::TransactionError;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use telemetry::{Tile, TileClock, Turn, next_input};

pub struct WorkBatch {
    pub slot: Slot,
    /// The parent slot's blockhash (what durable nonces advance to).
    pub blockhash: Hash,
    pub id: u64,
    pub mode: ExecMode,
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
    pub id: u64,
    pub mode: ExecMode,
    /// The batch's transactions, back (an optimistic batch may have to run again).
    pub txs: Vec<PreparedTx>,
    /// One per transaction.
    pub outcomes: Vec<Outcome>,
    /// Locked batch: the accounts it wrote into the overlay.
    pub written: Vec<Pubkey>,
    /// Optimistic batch: the accounts it changed, final values, in execution order...
    pub writes: Vec<(Pubkey, AccountSharedData)>,
    /// ...and the index of the transaction that made each change.
    pub write_txs: Vec<u32>,
    pub exec_ns: u64,
    pub compute_units: u64,
}

impl BatchDone {
    /// Compute units each transaction consumed.
    pub fn compute_units_per_tx(&self) -> Vec<u64> {
        self.outcomes
            .iter()
            .map(|o| match o {
                Outcome::Processed(s) => s.compute_units,
                Outcome::Dropped(_) => 0,
            })
            .collect()
    }
}

/// The SVM's view for an optimistic batch: the accounts view, remembering the first value
/// of every account read, so the worker can tell real writes from declared ones.
struct RecordingCallback<'a> {
    inner: SvmCallback<'a>,
    read: RefCell<HashMap<Pubkey, AccountSharedData>>,
}

impl InvokeContextCallback for RecordingCallback<'_> {}

impl TransactionProcessingCallback for RecordingCallback<'_> {
    fn get_account_shared_data(&self, pubkey: &Pubkey) -> Option<(AccountSharedData, Slot)> {
        let v = self.inner.read(pubkey);
        self.read
            .borrow_mut()
            .entry(*pubkey)
            .or_insert_with(|| v.as_ref().map(|(a, _)| a.clone()).unwrap_or_default());
        v
    }
}

/// Where a batch's account writes go.
enum Sink<'a> {
    /// Into the overlay now (locked batch).
    Overlay {
        db: &'a AccountsDb,
        slot: Slot,
        written: Vec<Pubkey>,
    },
    /// Kept for the bank when they differ from the value the batch last saw (optimistic).
    Deferred {
        current: HashMap<Pubkey, AccountSharedData>,
        writes: Vec<(Pubkey, AccountSharedData)>,
        write_txs: Vec<u32>,
    },
}

impl Sink<'_> {
    fn write(&mut self, tx: usize, key: Pubkey, account: AccountSharedData) {
        match self {
            Sink::Overlay { db, slot, written } => {
                db.write(key, account, *slot);
                written.push(key);
            }
            Sink::Deferred {
                current,
                writes,
                write_txs,
            } => {
                if current.get(&key) != Some(&account) {
                    current.insert(key, account.clone());
                    writes.push((key, account));
                    write_txs.push(tx as u32);
                }
            }
        }
    }
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

/// The worker tile: one batch in flight from the bank, executed by its own processor.
/// Stops when the bank is gone (its input closed) or its results have nowhere to go.
pub struct WorkerTile {
    worker: Worker,
    input: Receiver<WorkBatch>,
    done: Sender<BatchDone>,
    /// The processor of the slot (and program generation) it last ran, reused while both hold.
    processor: Option<(Processor, u64)>,
}

impl WorkerTile {
    pub fn new(worker: Worker, input: Receiver<WorkBatch>, done: Sender<BatchDone>) -> Self {
        Self {
            worker,
            input,
            done,
            processor: None,
        }
    }

    /// The counter slot of worker `id`.
    pub fn stats(
        counters: &'static crate::metrics::RuntimeCounters,
        id: usize,
    ) -> &'static telemetry::TileStats {
        &counters.workers[id % crate::metrics::MAX_WORKERS]
    }
}

impl Tile for WorkerTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, _stopping: bool) -> Turn {
        // Workers stop when the bank does: it closes their input after its last slot.
        let batch = match next_input(&self.input, clock) {
            Ok(x) => x,
            Err(turn) => return turn,
        };
        let w = &self.worker;
        let stats = Self::stats(w.counters, w.id);
        stats.add_in(batch.txs.len() as u64);
        let started = Instant::now();
        let generation = w.generation.load(Ordering::Acquire);
        let mut p = match self.processor.take() {
            Some((p, g)) if g == generation && p_slot(&p) == batch.slot => (p, g),
            Some((p, g)) if g == generation => (w.env.advance(&p, batch.slot, &w.db), g),
            _ => (w.env.new_processor(batch.slot, &w.db), generation),
        };
        let (mut done_batch, modified) = execute(w, &p.0, batch);
        if modified {
            p.1 = w.generation.fetch_add(1, Ordering::AcqRel) + 1;
        }
        self.processor = Some(p);
        done_batch.exec_ns = started.elapsed().as_nanos() as u64;
        stats.add_out(done_batch.outcomes.len() as u64);
        clock.busy();
        if self.done.send(done_batch).is_err() {
            return Turn::Done;
        }
        Turn::Continue
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
        id,
        mode,
        txs,
    } = batch;
    let sanitized: Vec<_> = txs.iter().map(|t| t.sanitized.clone()).collect();
    let checks = txs.iter().map(|t| w.env.check_result(&t.budget)).collect();
    let env = w.env.processing_environment(blockhash);
    let config = w.env.processing_config();
    let (out, mut sink, read_error) = match mode {
        ExecMode::Locked => {
            let cb = SvmCallback::new(&w.db);
            let out =
                p.load_and_execute_sanitized_transactions(&cb, &sanitized, checks, &env, &config);
            let sink = Sink::Overlay {
                db: &w.db,
                slot,
                written: Vec::new(),
            };
            (out, sink, cb.failed())
        }
        ExecMode::Optimistic => {
            let cb = RecordingCallback {
                inner: SvmCallback::new(&w.db),
                read: RefCell::default(),
            };
            let out =
                p.load_and_execute_sanitized_transactions(&cb, &sanitized, checks, &env, &config);
            let read_error = cb.inner.failed();
            (
                out,
                Sink::Deferred {
                    current: cb.read.into_inner(),
                    writes: Vec::new(),
                    write_txs: Vec::new(),
                },
                read_error,
            )
        }
    };
    if let Some(e) = read_error {
        return (storage_failed(w, slot, id, mode, txs, &e), true);
    }
    let (native_pre, native_post, token_pre, token_post) = out
        .balance_collector
        .map(|b| b.into_vecs())
        .unwrap_or_default();
    let mut outcomes = Vec::with_capacity(txs.len());
    let mut modified = false;
    let mut compute_units = 0;
    for (i, (result, tx)) in out.processing_results.into_iter().zip(&txs).enumerate() {
        let msg = tx.sanitized.message();
        let mut write = |key: Pubkey, account: AccountSharedData| sink.write(i, key, account);
        let (err, fee, cu, logs, inner_instructions, return_data) = match result {
            Err(e) => {
                outcomes.push(Outcome::Dropped(e));
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
                    inner_instructions(details.inner_instructions),
                    details.return_data.map(|r| ReturnData {
                        program_id: r.program_id,
                        data: r.data,
                    }),
                )
            }
            Ok(ProcessedTransaction::FeesOnly(f)) => {
                for (key, account) in f.rollback_accounts.iter() {
                    write(*key, account.clone());
                }
                (
                    Some(f.load_error),
                    f.fee_details.total_fee(),
                    0,
                    Vec::new(),
                    Vec::new(),
                    None,
                )
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
            inner_instructions,
            return_data,
        };
        outcomes.push(Outcome::Processed(Box::new(status)));
    }
    let (written, writes, write_txs) = match sink {
        Sink::Overlay { written, .. } => (written, Vec::new(), Vec::new()),
        Sink::Deferred {
            writes, write_txs, ..
        } => (Vec::new(), writes, write_txs),
    };
    (
        BatchDone {
            worker: w.id,
            slot,
            id,
            mode,
            txs,
            outcomes,
            written,
            writes,
            write_txs,
            exec_ns: 0,
            compute_units,
        },
        modified,
    )
}

/// The SVM's CPI record as kept in a status: instructions that invoked nothing are left out,
/// as Agave leaves them out of `innerInstructions`.
fn inner_instructions(
    list: Option<solana_message::inner_instruction::InnerInstructionsList>,
) -> Vec<InnerInstructions> {
    list.unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter(|(_, ixs)| !ixs.is_empty())
        .map(|(index, ixs)| InnerInstructions {
            index: index as u8,
            instructions: ixs
                .into_iter()
                .map(|ix| InnerInstruction {
                    program_id_index: ix.instruction.program_id_index,
                    accounts: ix.instruction.accounts,
                    data: ix.instruction.data,
                    stack_height: ix.stack_height,
                })
                .collect(),
        })
        .collect()
}

/// A storage read failed during the batch: the SVM saw an existing account as absent, so
/// nothing it produced may be applied. Every transaction is dropped (nothing written, no fee
/// charged; the client may resend), and the caller is told programs changed so every worker
/// rebuilds its program cache (a program whose read failed may be cached as missing).
fn storage_failed(
    w: &Worker,
    slot: Slot,
    id: u64,
    mode: ExecMode,
    txs: Vec<PreparedTx>,
    e: &storage::StoreError,
) -> BatchDone {
    tracing::error!(error = %e, batch = id, txs = txs.len(), "account read failed; batch dropped");
    BatchDone {
        worker: w.id,
        slot,
        id,
        mode,
        outcomes: txs
            .iter()
            .map(|_| Outcome::Dropped(TransactionError::ClusterMaintenance))
            .collect(),
        txs,
        written: Vec::new(),
        writes: Vec::new(),
        write_txs: Vec::new(),
        exec_ns: 0,
        compute_units: 0,
    }
}
