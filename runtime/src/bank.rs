//! The bank tile: admits verified transactions into the sequencer, drives the scheduler,
//! collects worker results, and closes slots on the slot clock.
//!
//! Slot close: stop dispatching, wait for in-flight batches, credit the slot's fees to the fee
//! collector, fix the blockhash (SHA-256 over the parent blockhash, the slot number and the
//! signatures in execution order), publish the slot at processed commitment and hand its
//! account writes to the commit tile, then open the next slot with fresh sysvars.

use crate::accounts::AccountsDb;
use crate::chain::{ChainState, SlotHeader, SlotRecord, TxStatus};
use crate::commit::CommitJob;
use crate::metrics::{RuntimeCounters, RuntimeDrop};
use crate::optimistic::{Validator, Verdict};
use crate::prepare::{Rejection, prepare};
use crate::scheduler::{Completion, ExecMode, Scheduler};
use crate::sequencer::{Admit, PreparedTx, Sequencer};
use crate::svm::SvmEnv;
use crate::worker::{BatchDone, Outcome, WorkBatch};
use ahash::HashSet;
use crossbeam_channel::{Receiver, Sender, select};
use dataplane::dedup::MAX_PROCESSING_AGE_SLOTS;
use dataplane::{Packet, PacketBox, PacketPool};
use sha2::{Digest, Sha256};
use solana_account::{AccountSharedData, ReadableAccount, WritableAccount};
use solana_clock::Slot;
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_slot_hashes::SlotHashes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use telemetry::{Tile, TileClock, Turn};

/// Recent (slot, blockhash) pairs kept for SlotHashes and blockhash age checks.
const RECENT_MAX: usize = 512;
/// Verified packets admitted per loop turn before the bank looks at completions again. Small:
/// a worker that finished its batch should not wait for a long admission run to get the next.
const ADMIT_BURST: usize = 64;

pub struct BankParams {
    pub slot_ms: u64,
    pub fee_collector: Pubkey,
    pub apps: crate::scheduler::apps::AppClassifier,
}

pub struct Bank {
    pub env: Arc<SvmEnv>,
    pub db: Arc<AccountsDb>,
    pub chain: Arc<ChainState>,
    pub counters: &'static RuntimeCounters,
    pub pool: PacketPool,
    pub params: BankParams,
    pub seq: Sequencer,
    pub sched: Box<dyn Scheduler>,
    pub workers: Vec<Sender<WorkBatch>>,
    pub done_rx: Receiver<BatchDone>,
    pub commit_tx: Sender<CommitJob>,
    /// Shared with the verify tiles (dedup windows) and the RPC.
    pub current_slot: Arc<AtomicU64>,
    // Slot state.
    pub slot: Slot,
    pub parent_blockhash: Hash,
    pub recent: VecDeque<(Slot, Hash)>,
    idle: Vec<bool>,
    /// Optimistic batches in flight or waiting to commit in order.
    validator: Validator,
    /// Optimistic batches that failed validation, to run again before anything else.
    reruns: VecDeque<(u64, Vec<PreparedTx>)>,
    statuses: Vec<TxStatus>,
    received_ns: Vec<u64>,
    written: HashSet<Pubkey>,
    /// Signatures queued, in flight, or processed in the open slot: a second copy is a
    /// duplicate even before the first reaches the status cache.
    pending: HashSet<solana_signature::Signature>,
    fees: u64,
    hasher: Sha256,
    slot_hashes: SlotHashes,
    /// Blockhash → its slot, for the slots in `recent`.
    blockhash_slots: ahash::HashMap<[u8; 32], Slot>,
}

impl Bank {
    /// `slot` is the first slot to produce; `recent` ends with its parent.
    pub fn new(
        env: Arc<SvmEnv>,
        db: Arc<AccountsDb>,
        chain: Arc<ChainState>,
        counters: &'static RuntimeCounters,
        pool: PacketPool,
        params: BankParams,
        seq: Sequencer,
        sched: Box<dyn Scheduler>,
        workers: Vec<Sender<WorkBatch>>,
        done_rx: Receiver<BatchDone>,
        commit_tx: Sender<CommitJob>,
        current_slot: Arc<AtomicU64>,
        recent: VecDeque<(Slot, Hash)>,
    ) -> Self {
        let (parent_slot, parent_blockhash) = *recent.back().expect("a parent slot exists");
        let n = workers.len();
        let mut bank = Self {
            env,
            db,
            chain,
            counters,
            pool,
            params,
            seq,
            sched,
            workers,
            done_rx,
            commit_tx,
            current_slot,
            slot: parent_slot + 1,
            parent_blockhash,
            recent,
            idle: vec![true; n],
            validator: Validator::default(),
            reruns: VecDeque::new(),
            statuses: Vec::new(),
            received_ns: Vec::new(),
            written: HashSet::default(),
            pending: HashSet::default(),
            fees: 0,
            hasher: Sha256::new(),
            slot_hashes: SlotHashes::new(&[]),
            blockhash_slots: ahash::HashMap::default(),
        };
        bank.open_slot();
        bank
    }

    fn open_slot(&mut self) {
        self.current_slot.store(self.slot, Ordering::Release);
        self.blockhash_slots = self
            .recent
            .iter()
            .map(|(s, h)| (h.to_bytes(), *s))
            .collect();
        self.hasher = Sha256::new();
        self.hasher.update(self.parent_blockhash.as_ref());
        self.hasher.update(self.slot.to_le_bytes());
        let recent: Vec<_> = self.recent.iter().copied().collect();
        self.slot_hashes = SlotHashes::new(&recent.iter().rev().copied().collect::<Vec<_>>());
        for (k, a) in self.env.sysvar_accounts(self.slot, unix_now(), &recent) {
            self.db.write(k, a, self.slot);
            self.written.insert(k);
        }
    }

    /// The slot of a blockhash still within the last `MAX_PROCESSING_AGE_SLOTS` slots (one map
    /// lookup: this runs for every admitted transaction).
    fn blockhash_slot(&self, h: &[u8; 32]) -> Option<Slot> {
        self.blockhash_slots
            .get(h)
            .copied()
            .filter(|s| s + MAX_PROCESSING_AGE_SLOTS >= self.slot)
    }

    /// Drop a packet not yet classified (its app: the top-level program).
    fn drop_packet(&self, p: PacketBox, why: RuntimeDrop) {
        self.counters.count_drop(why);
        if let Some(app) = top_level_program(&p) {
            self.counters.apps.record_drop(&app, why);
        }
        self.pool.give(p);
    }

    /// Drop an admitted transaction.
    fn drop_tx(&mut self, tx: PreparedTx, why: RuntimeDrop) {
        self.release_queued(&tx);
        self.pending.remove(tx.sanitized.signature());
        self.counters.count_drop(why);
        self.counters.apps.record_drop(&tx.app_key, why);
        self.pool.give(tx.packet);
    }

    /// Admit one verified packet into the sequencer.
    pub fn admit(&mut self, mut p: PacketBox) {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        self.counters.bank.add_in(1);
        let desc = p.desc.expect("verified packets carry a descriptor");
        // The verify tile deserialized it and hashed its message; the bank does neither.
        let Some(verified) = p.verified.take() else {
            return self.drop_packet(p, RuntimeDrop::Sanitize);
        };
        let buf = p.bytes();
        let Some(blockhash_slot) = self.blockhash_slot(desc.recent_blockhash(buf)) else {
            return self.drop_packet(p, RuntimeDrop::BlockhashNotFound);
        };
        let sig = solana_signature::Signature::from(*desc.first_signature(buf));
        if self.pending.contains(&sig) || self.chain.status(&sig).is_some() {
            return self.drop_packet(p, RuntimeDrop::AlreadyProcessed);
        }
        let prepared = match prepare(
            &self.env,
            &self.db,
            &desc,
            p.bytes(),
            *verified,
            self.slot,
            &self.slot_hashes,
        ) {
            Ok(x) => x,
            Err(r) => {
                let why = match r {
                    Rejection::BlockhashNotFound => RuntimeDrop::BlockhashNotFound,
                    Rejection::AlreadyProcessed => RuntimeDrop::AlreadyProcessed,
                    Rejection::ComputeBudget(_) => RuntimeDrop::ComputeBudget,
                    Rejection::Lookup(_) => RuntimeDrop::Lookup,
                    Rejection::Sanitize(_) => RuntimeDrop::Sanitize,
                };
                return self.drop_packet(p, why);
            }
        };
        let keys: Vec<Pubkey> = prepared.locks.iter().map(|(k, _)| *k).collect();
        // The store reads them ahead and keeps them cached while the transaction is queued.
        self.db.prefetch(&keys);
        self.pending.insert(sig);
        let mut tx = PreparedTx::new(prepared.sanitized, prepared.budget, p, prepared.locks);
        tx.app_key = self.params.apps.classify(tx.sanitized.message());
        tx.blockhash_slot = blockhash_slot;
        self.sched.route(&mut tx);
        match self.seq.push(tx) {
            Admit::Queued => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Admit::QueuedEvicting(old) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                self.drop_tx(*old, RuntimeDrop::SequencerEvicted);
            }
            Admit::Rejected(new) => self.drop_tx(*new, RuntimeDrop::SequencerFull),
        }
    }

    fn release_queued(&self, tx: &PreparedTx) {
        let keys: Vec<Pubkey> = tx.locks.iter().map(|(k, _)| *k).collect();
        self.db.release_queued(&keys);
    }

    fn send(&mut self, worker: usize, id: u64, mode: ExecMode, txs: Vec<PreparedTx>) {
        self.idle[worker] = false;
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters.bank.add_out(txs.len() as u64);
        if mode == ExecMode::Optimistic {
            self.validator.dispatched(id, &txs);
        }
        let batch = WorkBatch {
            slot: self.slot,
            blockhash: self.parent_blockhash,
            id,
            mode,
            txs,
        };
        if self.workers[worker].send(batch).is_err() {
            tracing::error!(worker, "worker exited");
        }
    }

    /// Optimistic batches to run again go first, to any idle worker.
    fn dispatch_reruns(&mut self) -> bool {
        let mut sent = false;
        while !self.reruns.is_empty() {
            let Some(w) = self.idle.iter().position(|&i| i) else {
                break;
            };
            let (id, txs) = self.reruns.pop_front().expect("non-empty");
            self.send(w, id, ExecMode::Optimistic, txs);
            sent = true;
        }
        sent
    }

    /// Hand work to idle workers. Returns whether anything was sent.
    fn dispatch(&mut self) -> bool {
        let mut sent = self.dispatch_reruns();
        let idle: Vec<usize> = (0..self.idle.len()).filter(|&w| self.idle[w]).collect();
        if idle.is_empty() || self.seq.is_empty() {
            return sent;
        }
        let mut out = Vec::new();
        self.sched.schedule(&mut self.seq, &idle, &mut out);
        for b in out {
            if b.txs.is_empty() {
                continue;
            }
            if b.mode == ExecMode::Optimistic {
                // First runs only; re-runs are counted as `reexecutions`.
                self.counters
                    .optimistic_batches
                    .fetch_add(1, Ordering::Relaxed);
            }
            self.send(b.worker, b.id, b.mode, b.txs);
            sent = true;
        }
        self.counters
            .sequencer_depth
            .store(self.seq.len() as u64, Ordering::Relaxed);
        sent
    }

    fn complete(&mut self, mut done: BatchDone) {
        debug_assert_eq!(done.slot, self.slot);
        let cu = done.compute_units_per_tx();
        let real_writes: Vec<(u32, Pubkey)> = done
            .write_txs
            .iter()
            .zip(&done.writes)
            .map(|(i, (k, _))| (*i, *k))
            .collect();
        self.sched.complete(&Completion {
            worker: done.worker,
            batch: done.id,
            compute_units: &cu,
            real_writes: &real_writes,
        });
        self.idle[done.worker] = true;
        self.counters
            .exec_ns
            .fetch_add(done.exec_ns, Ordering::Relaxed);
        self.counters
            .compute_units
            .fetch_add(done.compute_units, Ordering::Relaxed);
        if done.mode == ExecMode::Locked {
            return self.apply(done);
        }
        self.validator.finished(done);
        while let Some(v) = self.validator.next_verdict() {
            match v {
                Verdict::Commit(d, reexecutions) => {
                    done = d;
                    for (k, a) in std::mem::take(&mut done.writes) {
                        self.db.write(k, a, self.slot);
                        self.written.insert(k);
                    }
                    let id = done.id;
                    self.apply(done);
                    self.sched.committed(id, reexecutions);
                }
                Verdict::Rerun(id, txs) => {
                    self.counters.reexecutions.fetch_add(1, Ordering::Relaxed);
                    self.reruns.push_back((id, txs));
                }
            }
        }
    }

    /// Record a batch's outcomes in the slot (its account writes are already applied).
    fn apply(&mut self, done: BatchDone) {
        self.written.extend(done.written);
        for (outcome, tx) in done.outcomes.into_iter().zip(done.txs) {
            match outcome {
                Outcome::Processed(status) => {
                    self.release_queued(&tx);
                    let packet = tx.packet;
                    let latency_us =
                        dataplane::monotonic_ns().saturating_sub(packet.received_ns) / 1_000;
                    self.counters.exec_latency.record(latency_us);
                    self.counters.apps.record(
                        &tx.app_key,
                        status.err.is_some(),
                        status.compute_units,
                        latency_us,
                    );
                    if status.err.is_none() {
                        self.counters.executed_ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.counters.executed_err.fetch_add(1, Ordering::Relaxed);
                    }
                    self.hasher.update(status.signature.as_ref());
                    self.fees = self.fees.saturating_add(status.fee);
                    self.received_ns.push(packet.received_ns);
                    self.statuses.push(*status);
                    self.pool.give(packet);
                }
                Outcome::Dropped(err) => {
                    tracing::debug!(%err, "transaction rejected by the SVM");
                    self.drop_tx(tx, RuntimeDrop::SvmRejected);
                }
            }
        }
    }

    /// No batch in flight, none waiting to commit or to run again.
    fn all_idle(&self) -> bool {
        self.idle.iter().all(|&i| i) && self.validator.is_empty() && self.reruns.is_empty()
    }

    /// Close the current slot (all workers idle) and open the next.
    pub fn close_slot(&mut self) {
        assert!(self.all_idle(), "slot closed with batches in flight");
        if self.fees > 0 {
            let key = self.params.fee_collector;
            let mut acct = self.db.get(&key).map(|(a, _)| a).unwrap_or_else(|| {
                AccountSharedData::new(0, 0, &solana_sdk_ids::system_program::ID)
            });
            acct.set_lamports(acct.lamports().saturating_add(self.fees));
            self.db.write(key, acct, self.slot);
            self.written.insert(key);
        }
        self.validator.slot_closed();
        self.sched.slot_closed(&mut self.seq);
        let hasher = std::mem::replace(&mut self.hasher, Sha256::new());
        let blockhash = Hash::new_from_array(hasher.finalize().into());
        let header = SlotHeader {
            slot: self.slot,
            parent_blockhash: self.parent_blockhash,
            blockhash,
            transaction_count: self.statuses.len() as u64,
            unix_timestamp: unix_now(),
        };
        let statuses = std::mem::take(&mut self.statuses);
        let record = SlotRecord {
            header: header.clone(),
            genesis_hash: self.chain.genesis_hash(),
            statuses,
        };
        let keys: Vec<Pubkey> = self.written.drain().collect();
        let accounts = self.db.snapshot(&keys);
        let meta = record.encode();
        for s in &record.statuses {
            self.pending.remove(&s.signature);
        }
        self.chain.push_slot(header, record.statuses);
        let job = CommitJob {
            slot: self.slot,
            accounts,
            keys,
            meta,
            received_ns: std::mem::take(&mut self.received_ns),
            closed_ns: dataplane::monotonic_ns(),
        };
        self.counters
            .slot_processed
            .store(self.slot, Ordering::Relaxed);
        // Blocks when the commit tile is behind: backpressure instead of unbounded memory.
        let mut clock = telemetry::TileClock::new(&self.counters.bank);
        if self.commit_tx.send(job).is_err() {
            tracing::error!("commit tile exited");
        }
        clock.backpressure();
        self.counters.slots_closed.fetch_add(1, Ordering::Relaxed);
        self.recent.push_back((self.slot, blockhash));
        while self.recent.len() > RECENT_MAX {
            self.recent.pop_front();
        }
        self.parent_blockhash = blockhash;
        self.fees = 0;
        self.slot += 1;
        self.open_slot();
        // Queued transactions whose blockhash just aged out can never run.
        let expired = self
            .seq
            .remove_expired(self.slot.saturating_sub(MAX_PROCESSING_AGE_SLOTS));
        for t in expired {
            self.drop_tx(t, RuntimeDrop::Expired);
        }
    }
}

/// The bank tile: the bank, its input from the verify tiles and its slot clock. When stopped
/// it closes and hands off its last slot, then closes the workers' input.
pub struct BankTile {
    bank: Bank,
    verified: Receiver<PacketBox>,
    slot_len: Duration,
    deadline: Instant,
    /// The slot is due: dispatch nothing new until in-flight batches finish and it closes.
    closing: bool,
}

impl BankTile {
    pub fn new(bank: Bank, verified: Receiver<PacketBox>) -> Self {
        let slot_len = Duration::from_millis(bank.params.slot_ms.max(1));
        Self {
            bank,
            verified,
            slot_len,
            deadline: Instant::now() + slot_len,
            closing: false,
        }
    }
}

impl Tile for BankTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn {
        let bank = &mut self.bank;
        let verified = &self.verified;
        if Instant::now() >= self.deadline || stopping {
            self.closing = true;
        }
        if self.closing && bank.all_idle() {
            bank.close_slot();
            self.closing = false;
            self.deadline = Instant::now().max(self.deadline) + self.slot_len;
            if stopping {
                return Turn::Done;
            }
        }
        while let Ok(done) = bank.done_rx.try_recv() {
            bank.complete(done);
        }
        if !stopping {
            for _ in 0..ADMIT_BURST {
                match verified.try_recv() {
                    Ok(p) => bank.admit(p),
                    Err(_) => break,
                }
            }
        }
        let dispatched = if self.closing {
            bank.dispatch_reruns()
        } else {
            bank.dispatch()
        };
        if self.closing && !bank.all_idle() {
            // Only completions matter until the slot closes.
            if let Ok(done) = bank.done_rx.recv_timeout(Duration::from_millis(5)) {
                bank.complete(done);
            }
            return Turn::Continue;
        }
        // Keep dispatching while it makes progress; when a pass placed nothing (locks,
        // CU caps) wait for a completion, a packet or the clock instead of spinning.
        let can_dispatch = !bank.seq.is_empty() && bank.idle.iter().any(|&i| i);
        if can_dispatch && dispatched && !self.closing {
            return Turn::Continue;
        }
        let wait = self
            .deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(20));
        bank.counters.bank.set_queue_depth(verified.len());
        clock.busy();
        let _idle = IdleOnDrop(clock);
        select! {
            recv(bank.done_rx) -> d => if let Ok(d) = d { bank.complete(d) },
            recv(verified) -> p => match p {
                Ok(p) => bank.admit(p),
                // Every verify tile is gone (shutdown in progress): just keep the clock.
                Err(_) => std::thread::sleep(wait),
            },
            default(wait) => {},
        }
        Turn::Continue
    }

    fn on_stop(&mut self) {
        let bank = &mut self.bank;
        for t in bank.seq.drain().collect::<Vec<_>>() {
            bank.drop_tx(t, RuntimeDrop::Shutdown);
        }
        // Closing the workers' input stops them. The commit tile stops once the bank is
        // dropped (its input closes) and it has made every closed slot durable.
        bank.workers.clear();
    }
}

/// The app a transaction belongs to: the program of its first instruction that is not a
/// compute-budget instruction.
fn top_level_program(p: &Packet) -> Option<Pubkey> {
    let d = p.desc.as_ref()?;
    let buf = p.bytes();
    d.instructions(buf)
        .map(|ix| d.static_key(buf, usize::from(ix.program_id_index)))
        .find(|k| *k != solana_sdk_ids::compute_budget::ID.as_array())
        .map(|k| Pubkey::new_from_array(*k))
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Marks the time until it is dropped (the end of a blocking wait) as idle.
struct IdleOnDrop<'a, 'b>(&'a mut telemetry::TileClock<'b>);

impl Drop for IdleOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.idle();
    }
}
