//! The bank tile: admits verified transactions into the sequencer (`admission`), drives the
//! scheduler and validates optimistic batches (dispatch), collects worker results into the
//! open slot (`slot::OpenSlot`), and closes slots on the slot clock.
//!
//! Slot close: stop dispatching (admission goes on), wait for in-flight batches, credit the slot's fees to the fee
//! collector, close the open slot (its blockhash: `slot.rs`), publish it at processed
//! commitment and hand its account writes to the commit tile, then open the next slot with
//! fresh sysvars.

use crate::accounts::AccountsDb;
use crate::admission::Admission;
use crate::chain::ChainState;
use crate::commit::CommitJob;
use crate::metrics::{RuntimeCounters, RuntimeDrop};
use crate::optimistic::{Validator, Verdict};
use crate::preconf::{Predictor, Queue};
use crate::scheduler::{Completion, ExecMode, Scheduler};
use crate::sequencer::{Admit, PreparedTx, Sequencer};
use crate::sequencing::Sequencing;
use crate::slot::OpenSlot;
use crate::svm::SvmEnv;
use crate::worker::{BatchDone, Outcome, WorkBatch};
use crossbeam_channel::{Receiver, Sender, select};
use dataplane::{Packet, PacketBox, PacketPool};
use solana_account::{AccountSharedData, ReadableAccount, WritableAccount};
use solana_clock::Slot;
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use telemetry::{Tile, TileClock, Turn};

/// Recent (slot, blockhash) pairs kept for SlotHashes and blockhash age checks.
const RECENT_MAX: usize = 512;

pub struct BankParams {
    pub slot_ms: u64,
    pub fee_collector: Pubkey,
    pub apps: crate::scheduler::apps::AppClassifier,
    /// How queued transactions are priced (`[scheduler]`).
    pub sequencing: crate::sequencing::SequencingConfig,
    /// Verified packets admitted per loop turn before the bank looks at completions again
    /// (`runtime.admit_burst`, a tuner knob). Small: a worker that finished its batch waits
    /// less for its next; large: fewer turns per transaction.
    pub admit_burst: usize,
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
    /// The slot being built: what it processed and wrote so far.
    open: OpenSlot,
    /// Recent (slot, blockhash) pairs, oldest first, ending with the open slot's parent.
    pub recent: VecDeque<(Slot, Hash)>,
    admission: Admission,
    idle: Vec<bool>,
    /// Optimistic batches in flight or waiting to commit in order.
    validator: Validator,
    /// Optimistic batches that failed validation, to run again before anything else.
    reruns: VecDeque<(u64, Vec<PreparedTx>)>,
    /// A worker or the commit tile is gone: the bank can make no more progress and stops.
    broken: bool,
    /// Pre-confirmations: predicts at admission, learns from every outcome.
    preconf: Option<Predictor>,
    /// Prices what is queued, learns what it really costs, promotes what is overdue.
    sequencing: Sequencing,
    /// `net.routing = "affinity"`: the islands, published each slot for the receiving cores.
    routes: Option<(
        Arc<dataplane::route::RouteTable>,
        Vec<dataplane::route::HotAccount>,
    )>,
    /// `[tuner]`: sets the live knobs at slot closes.
    tuner: Option<crate::tuner::Tuner>,
    /// Settings imposed from outside (benches, tests), applied at the next slot close; they
    /// win over the tuner's.
    knob_overrides: Option<Receiver<crate::tuner::Knobs>>,
    /// Scale-out: the slot clock, the blockhash, what this node owns and whether it serves.
    cluster: Option<crate::config::ClusterSetup>,
    /// The drain (its generation) this bank has completed: it parked the queue and marked
    /// the slot.
    drained_generation: u64,
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
        cluster: Option<crate::config::ClusterSetup>,
    ) -> Self {
        let (parent_slot, parent_blockhash) = *recent.back().expect("a parent slot exists");
        // A cluster node starts at the cluster clock's slot (after a restart it skips the
        // slots it was down for, as a validator's are skipped).
        let first = match &cluster {
            Some(c) => (parent_slot + 1).max(c.clock.slot_at(cluster::clock::unix_ms())),
            None => parent_slot + 1,
        };
        let n = workers.len();
        let admission = Admission::new(chain.validity_slots());
        let sequencing = Sequencing::new(params.sequencing, counters);
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
            open: OpenSlot::open(first, parent_blockhash),
            recent,
            admission,
            idle: vec![true; n],
            validator: Validator::default(),
            reruns: VecDeque::new(),
            broken: false,
            preconf: None,
            sequencing,
            routes: None,
            tuner: None,
            knob_overrides: None,
            cluster,
            drained_generation: 0,
        };
        bank.open_slot();
        bank
    }

    /// Let `tuner` set the live knobs from the next slot close on, starting from `start`.
    pub fn with_tuner(
        mut self,
        tuner: Option<crate::tuner::Tuner>,
        start: crate::tuner::Knobs,
    ) -> Self {
        self.tuner = tuner;
        self.retune(start);
        self
    }

    /// Apply the settings sent on `rx` at slot closes.
    pub fn with_knob_overrides(mut self, rx: Receiver<crate::tuner::Knobs>) -> Self {
        self.knob_overrides = Some(rx);
        self
    }

    /// The live knobs' values from the next slot on.
    fn retune(&mut self, k: crate::tuner::Knobs) {
        self.sched.retune(&k);
        self.params.admit_burst = k.admit_burst.max(1);
        self.counters.tuner.show_values(&k);
    }

    /// Publish the scheduler's islands into `routes` at every slot boundary.
    pub fn with_routes(mut self, routes: Arc<dataplane::route::RouteTable>) -> Self {
        self.routes = Some((routes, Vec::new()));
        self
    }

    /// Predict, promise and learn with `p` from now on.
    pub fn with_preconf(mut self, p: Predictor) -> Self {
        self.preconf = Some(p);
        self
    }

    /// Publish the open slot's number and write its sysvars.
    fn open_slot(&mut self) {
        let slot = self.open.slot();
        self.current_slot.store(slot, Ordering::Release);
        let recent: Vec<_> = self.recent.iter().copied().collect();
        match &self.cluster {
            // The cluster's blockhashes are a function of the slot: every one of the window is
            // valid here, whether or not this node was up (or owned the partition) when its slot
            // closed, and so is the open slot's (another node may have closed it already).
            Some(c) => {
                let first = slot.saturating_sub(self.chain.validity_slots());
                let window: Vec<_> = (first..=slot)
                    .map(|s| (s, Hash::new_from_array(c.clock.blockhash(s))))
                    .collect();
                self.admission.open_slot(slot, &window);
            }
            None => self.admission.open_slot(slot, &recent),
        }
        for (k, a) in self.env.sysvar_accounts(slot, unix_now(), &recent) {
            self.db.write(k, a, slot);
            self.open.wrote(k);
        }
    }

    /// Drop a packet not yet classified (its app: the top-level program).
    fn drop_packet(&mut self, p: PacketBox, why: RuntimeDrop) {
        if let Some(pc) = &mut self.preconf {
            pc.rejected(&p, why, self.open.slot(), self.chain.validity_slots());
        }
        self.counters.count_drop(why);
        if let Some(app) = top_level_program(&p) {
            self.counters.apps.record_drop(&app, why);
        }
        self.pool.give(p);
    }

    /// Drop an admitted transaction.
    fn drop_tx(&mut self, mut tx: PreparedTx, why: RuntimeDrop) {
        if let Some(pc) = &mut self.preconf {
            pc.dropped(&mut tx, why);
        }
        self.release_queued(&tx);
        self.admission.forget(tx.sanitized.signature());
        self.counters.count_drop(why);
        self.counters.apps.record_drop(&tx.app_key, why);
        self.pool.give(tx.packet);
    }

    /// Scale-out: whether this node owns every account the transaction locks. A read-only
    /// account owned elsewhere is fine only if every node holds it (a sysvar, a builtin, a
    /// program): anything else could be stale here, and the result would differ from a
    /// serial run.
    fn owns_all(&self, locks: &[(Pubkey, bool)]) -> bool {
        let Some(c) = &self.cluster else {
            return true;
        };
        locks.iter().all(|(k, writable)| {
            let key = &k.to_bytes();
            c.view.may_write(key)
                || (!writable
                    && (c.view.is_global(key)
                        || matches!(self.db.get(k), Ok(Some((a, _))) if a.executable())))
        })
    }

    /// A verified transaction this node hands on without running it (parked, forwarded, held):
    /// the verify tiles forget its signature, so that it is not taken for a repeat when it
    /// comes back here (its partition returns).
    fn hand_on(&self, signature: &solana_signature::Signature) {
        if let Some(dedup) = self.cluster.as_ref().and_then(|c| c.dedup.as_ref()) {
            dedup.remove(signature.as_array());
        }
    }

    /// A transaction whose accounts another node owns (the map changed while it travelled):
    /// sent on to that owner if one node owns them all, held for co-location if several do,
    /// else dropped as `NotOwner`.
    fn forward_or_drop(&mut self, p: PacketBox, locks: &[(Pubkey, bool)]) {
        if let Some(desc) = &p.desc {
            self.hand_on(&solana_signature::Signature::from(
                *desc.first_signature(p.bytes()),
            ));
        }
        if let Some(c) = &self.cluster
            && let Some(socket) = &c.forward
        {
            let keys: Vec<[u8; 32]> = locks.iter().map(|(k, _)| k.to_bytes()).collect();
            if let cluster::Route::Forward(node) = c.view.route(keys.iter()) {
                // Back to the peer that sent it: wait for the next map read (see `defer`).
                if p.source == dataplane::packet::Source::Udp(node.forward) {
                    c.view.defer(p.bytes());
                    return self.pool.give(p);
                }
                if socket.send_to(p.bytes(), node.tpu).is_ok() {
                    c.view
                        .counters
                        .forwarded_udp
                        .fetch_add(1, Ordering::Relaxed);
                }
                return self.pool.give(p);
            }
            // Several nodes own its accounts now (a partition moved away while it travelled):
            // held until they gather (signatures verified already), as at the ingress.
            let bytes = p.bytes();
            if let Ok(desc) = dataplane::parse::parse_transaction(bytes)
                && matches!(
                    c.view.route(desc.owned_keys(bytes)),
                    cluster::Route::Split(_)
                )
                && c.view.hold_split(bytes, desc.owned_keys(bytes)).is_ok()
            {
                return self.pool.give(p);
            }
        }
        self.drop_packet(p, RuntimeDrop::NotOwner)
    }

    /// Scale-out: writes a moved partition brought (or wipes of one that left). No
    /// transaction here touches them: the node does not own them while they are written.
    fn apply_cluster_write(&mut self, w: crate::config::ClusterWrite) {
        let slot = self.open.slot();
        for (k, a) in w.accounts {
            self.db.write(k, a, slot);
            self.open.wrote(k);
        }
        if !w.signatures.is_empty() {
            self.chain.add_foreign(&w.signatures, slot);
        }
        let _ = w.done.send(slot);
    }

    /// The partition being moved away had nothing running at this slot close: what is
    /// queued for it is parked, and the slot marks where it stopped changing.
    fn mark_drain(&mut self, slot: Slot) {
        let Some(c) = &self.cluster else {
            return;
        };
        let view = c.view.clone();
        let generation = view.drain_generation();
        match view.draining() {
            Some(p) if self.drained_generation != generation => {
                let queued: Vec<PreparedTx> = self.seq.drain().collect();
                for tx in queued {
                    let touches = tx
                        .locks
                        .iter()
                        .any(|(k, _)| view.partition_of(&k.to_bytes()) == Some(p));
                    if touches && view.park(p, tx.packet.bytes()) {
                        self.release_queued(&tx);
                        self.admission.forget(tx.sanitized.signature());
                        self.hand_on(tx.sanitized.signature());
                        self.pool.give(tx.packet);
                    } else if let Admit::Rejected(t) | Admit::QueuedEvicting(t) = self.seq.push(tx)
                    {
                        self.drop_tx(*t, RuntimeDrop::SequencerFull);
                    }
                }
                view.set_drained(slot);
                self.drained_generation = generation;
            }
            _ => {}
        }
    }

    /// Admit one verified packet into the sequencer.
    pub fn admit(&mut self, mut p: PacketBox) {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        self.counters.bank.add_in(1);
        if self.cluster.as_ref().is_some_and(|c| !c.view.serving()) {
            return self.drop_packet(p, RuntimeDrop::NotServing);
        }
        let admitted = match self
            .admission
            .admit(&self.env, &self.db, &self.chain, &mut p)
        {
            Ok(a) => a,
            Err(why) => return self.drop_packet(p, why),
        };
        if let Some(c) = &self.cluster {
            let locks = &admitted.prepared.locks;
            let moving = c.view.draining().filter(|&d| {
                locks
                    .iter()
                    .any(|(k, _)| c.view.partition_of(&k.to_bytes()) == Some(d))
            });
            // Its partition is moving away: held, and sent to the new owner after the flip.
            if let Some(d) = moving
                && c.view.park(d, p.bytes())
            {
                self.admission
                    .forget(admitted.prepared.sanitized.signature());
                self.hand_on(admitted.prepared.sanitized.signature());
                return self.pool.give(p);
            }
            if !self.owns_all(locks) {
                self.admission
                    .forget(admitted.prepared.sanitized.signature());
                return self.forward_or_drop(p, locks);
            }
            c.view
                .count_admitted(&admitted.prepared.sanitized.message().fee_payer().to_bytes());
        }
        let payer_lamports = admitted.payer_lamports;
        let prepared = admitted.prepared;
        let keys: Vec<Pubkey> = prepared.locks.iter().map(|(k, _)| *k).collect();
        // The store reads them ahead and keeps them cached while the transaction is queued.
        let cold = self.db.prefetch(&keys);
        let mut tx = PreparedTx::new(prepared.sanitized, prepared.budget, p, prepared.locks);
        tx.app_key = self.params.apps.classify(tx.sanitized.message());
        tx.blockhash_slot = admitted.blockhash_slot;
        tx.cold_reads = cold.min(usize::from(u16::MAX)) as u16;
        // Estimated before it is routed: the scheduler counts the accounts' demand with it.
        self.sequencing.estimate(&mut tx);
        self.sched.route(&mut tx);
        let pressure = self.sched.write_pressure(&tx);
        self.sequencing.price(&mut tx, pressure, self.open.slot());
        let (priority, cu) = (tx.priority, tx.reserved_cu());
        let draft = match &mut self.preconf {
            Some(pc) => {
                let queue = Queue {
                    open_slot: self.open.slot(),
                    queued: self.seq.len(),
                    capacity: self.seq.capacity(),
                    lane_len: self.seq.lane_len(tx.lane),
                    validity_slots: self.chain.validity_slots(),
                    payer_lamports,
                };
                Some(pc.admitted(&mut tx, &queue))
            }
            None => None,
        };
        match self.seq.push(tx) {
            Admit::Queued => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                self.sequencing.queued(priority, cu);
                self.issue(draft);
            }
            Admit::QueuedEvicting(old) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                self.sequencing.queued(priority, cu);
                self.issue(draft);
                self.drop_tx(*old, RuntimeDrop::SequencerEvicted);
            }
            Admit::Rejected(mut new) => {
                if let Some(pc) = &mut self.preconf {
                    pc.withdraw(&mut new);
                    pc.rejected(
                        &new.packet,
                        RuntimeDrop::SequencerFull,
                        self.open.slot(),
                        self.chain.validity_slots(),
                    );
                }
                self.drop_tx(*new, RuntimeDrop::SequencerFull)
            }
        }
    }

    /// The admitted transaction's promise goes out: it is queued.
    fn issue(&mut self, draft: Option<crate::preconf::Draft>) {
        if let (Some(pc), Some(d)) = (&mut self.preconf, draft) {
            pc.issue(d);
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
            slot: self.open.slot(),
            blockhash: self.open.parent_blockhash(),
            id,
            mode,
            txs,
        };
        if self.workers[worker].send(batch).is_err() {
            // Its batch can never complete, so the slot can never close: the bank stops
            // (the worker's death has already failed the node).
            tracing::error!(worker, "worker exited: the bank stops");
            self.broken = true;
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
        // Fenced (lease not confirmed): nothing new runs; what is queued waits or expires.
        if self.cluster.as_ref().is_some_and(|c| !c.view.serving()) {
            return sent;
        }
        let mut out = Vec::new();
        self.sched.schedule(&mut self.seq, &idle, &mut out);
        for b in out {
            if b.txs.is_empty() {
                continue;
            }
            for tx in &b.txs {
                self.sequencing.dispatched(tx, self.open.slot());
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
        debug_assert_eq!(done.slot, self.open.slot());
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
        self.sequencing
            .batch_done(done.txs.len(), done.compute_units, done.exec_ns);
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
                        self.db.write(k, a, self.open.slot());
                        self.open.wrote(k);
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
        self.open.wrote_all(done.written);
        for (outcome, tx) in done.outcomes.into_iter().zip(done.txs) {
            match outcome {
                Outcome::Processed(status) => {
                    let mut tx = tx;
                    let overrun =
                        self.sequencing
                            .executed(&tx, status.compute_units, status.err.is_none());
                    if let Some(shape) = overrun {
                        self.seq.reserve_requested(shape);
                    }
                    if let Some(pc) = &mut self.preconf {
                        pc.processed(&mut tx, &status, self.open.slot());
                    }
                    self.release_queued(&tx);
                    let packet = tx.packet;
                    let now = dataplane::monotonic_ns();
                    let latency_us = now.saturating_sub(packet.received_ns) / 1_000;
                    self.counters.exec_latency.record(latency_us);
                    let executed = crate::metrics::Executed {
                        failed: status.err.is_some(),
                        compute_units: status.compute_units,
                        latency_us,
                        queue_delay_us: tx.queue_delay_us.get(),
                    };
                    self.counters.apps.record(&tx.app_key, &executed, now);
                    if status.err.is_none() {
                        self.counters.executed_ok.fetch_add(1, Ordering::Relaxed);
                        self.counters.reward_cu.fetch_add(
                            status.compute_units.max(crate::tuner::MIN_TX_CU),
                            Ordering::Relaxed,
                        );
                    } else {
                        self.counters.executed_err.fetch_add(1, Ordering::Relaxed);
                    }
                    self.open.processed(*status, packet.received_ns);
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

    /// The fee collector's account. Its read must not fail: crediting fees to a collector
    /// read as absent would reset its balance. Retried a few times (the store retries moved
    /// records itself), then the slot cannot close: the bank stops (panic ends the process,
    /// the node reports why) rather than commit a wrong balance.
    fn fee_collector(&self) -> Option<AccountSharedData> {
        let key = self.params.fee_collector;
        let mut last = None;
        for _ in 0..3 {
            match self.db.get(&key) {
                Ok(v) => return v.map(|(a, _)| a),
                Err(e) => last = Some(e),
            }
        }
        panic!(
            "fee collector {key} unreadable, slot {} cannot close: {}",
            self.open.slot(),
            last.expect("an error")
        )
    }

    /// Close the current slot (all workers idle) and open the next.
    pub fn close_slot(&mut self) {
        assert!(self.all_idle(), "slot closed with batches in flight");
        let slot = self.open.slot();
        let fees = self.open.fees();
        if fees > 0 {
            let key = self.params.fee_collector;
            let mut acct = self.fee_collector().unwrap_or_else(|| {
                AccountSharedData::new(0, 0, &solana_sdk_ids::system_program::ID)
            });
            acct.set_lamports(acct.lamports().saturating_add(fees));
            self.db.write(key, acct, slot);
            self.open.wrote(key);
        }
        self.validator.slot_closed();
        self.mark_drain(slot);
        self.sched.slot_closed(&mut self.seq);
        let tuned = match &mut self.tuner {
            Some(t) => t.slot_closed(self.seq.len()),
            None => None,
        };
        let imposed = self
            .knob_overrides
            .as_ref()
            .and_then(|rx| rx.try_iter().last());
        if let Some(k) = imposed.or(tuned) {
            self.retune(k);
        }
        if let Some((table, hot)) = &mut self.routes {
            hot.clear();
            self.sched.hot_accounts(hot);
            table.publish(hot);
        }
        self.sequencing.slot_closed(&mut self.seq, slot);
        let closed = match &self.cluster {
            Some(c) => {
                let next = (slot + 1).max(c.clock.slot_at(cluster::clock::unix_ms()));
                let blockhash = Hash::new_from_array(c.clock.blockhash(slot));
                self.open.close_and_open(
                    next,
                    Some(blockhash),
                    unix_now(),
                    self.chain.genesis_hash(),
                )
            }
            None => self
                .open
                .close_and_open_next(unix_now(), self.chain.genesis_hash()),
        };
        let blockhash = closed.header.blockhash;
        let accounts = Arc::new(self.db.snapshot(&closed.written));
        let meta = closed.record.encode();
        let executed = closed.record.statuses.len() as u64;
        for s in &closed.record.statuses {
            self.admission.forget(&s.signature);
        }
        self.chain
            .record_slot_perf(slot, closed.record.statuses.len() as u64);
        self.chain.push_slot(
            closed.header,
            closed.record.statuses,
            Some(accounts.clone()),
        );
        let (status_bytes, evicted) = self.chain.status_memory();
        self.counters
            .status_bytes
            .store(status_bytes as u64, Ordering::Relaxed);
        self.counters
            .statuses_evicted
            .store(evicted, Ordering::Relaxed);
        let job = CommitJob {
            slot,
            accounts,
            keys: closed.written,
            meta,
            received_ns: closed.received_ns,
            closed_ns: dataplane::monotonic_ns(),
        };
        self.counters.slot_processed.store(slot, Ordering::Relaxed);
        // Blocks when the commit tile is behind: backpressure instead of unbounded memory.
        let mut clock = telemetry::TileClock::new(&self.counters.bank);
        if self.commit_tx.send(job).is_err() {
            // Nothing more can become durable: producing slots would only grow the overlay of
            // uncommitted writes. The bank stops (the commit tile's death failed the node).
            tracing::error!(slot, "commit tile exited: the bank stops");
            self.broken = true;
        }
        clock.backpressure();
        self.counters.slots_closed.fetch_add(1, Ordering::Relaxed);
        self.recent.push_back((slot, blockhash));
        while self.recent.len() > RECENT_MAX.max(self.chain.validity_slots() as usize + 1) {
            self.recent.pop_front();
        }
        self.open_slot();
        if let Some(pc) = &mut self.preconf {
            pc.slot_closed(executed, self.open.slot(), &self.chain);
        }
        // Queued transactions whose blockhash just aged out can never run.
        let expired = self
            .seq
            .remove_expired(self.open.slot().saturating_sub(self.chain.validity_slots()));
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
    /// The slot is due: dispatch nothing new until in-flight batches finish and it closes
    /// (transactions are still admitted, for the next slot).
    closing: bool,
    /// Scale-out: accounts a moved partition brings.
    cluster_writes: Option<Receiver<crate::config::ClusterWrite>>,
}

impl BankTile {
    pub fn new(bank: Bank, verified: Receiver<PacketBox>) -> Self {
        let slot_len = Duration::from_millis(bank.params.slot_ms.max(1));
        let cluster_writes = bank.cluster.as_ref().and_then(|c| c.ops.clone());
        let mut tile = Self {
            bank,
            verified,
            slot_len,
            deadline: Instant::now() + slot_len,
            closing: false,
            cluster_writes,
        };
        tile.deadline = next_deadline(&tile.bank, tile.deadline, tile.slot_len);
        tile
    }
}

/// When the open slot closes: a slot length after the last deadline, or on a cluster node,
/// when the cluster clock says (so every node closes slot `s` together).
fn next_deadline(bank: &Bank, last: Instant, slot_len: Duration) -> Instant {
    match &bank.cluster {
        Some(c) => {
            let end = c.clock.slot_end_ms(bank.open.slot());
            let left = end.saturating_sub(cluster::clock::unix_ms());
            Instant::now() + Duration::from_millis(left.min(c.clock.slot_ms))
        }
        None => Instant::now().max(last) + slot_len,
    }
}

impl Tile for BankTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn {
        let bank = &mut self.bank;
        let verified = &self.verified;
        if bank.broken {
            return Turn::Done;
        }
        if Instant::now() >= self.deadline || stopping {
            self.closing = true;
        }
        if self.closing && bank.all_idle() {
            bank.close_slot();
            self.closing = false;
            self.deadline = next_deadline(bank, self.deadline, self.slot_len);
            if stopping {
                return Turn::Done;
            }
        }
        while let Ok(done) = bank.done_rx.try_recv() {
            bank.complete(done);
        }
        if let Some(writes) = &self.cluster_writes {
            while let Ok(w) = writes.try_recv() {
                bank.apply_cluster_write(w);
            }
        }
        if !stopping {
            for _ in 0..bank.params.admit_burst {
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
            // The slot closes once its batches are in. Meanwhile admission goes on (and with
            // it the pre-confirmations): what is admitted now waits for the next slot.
            if stopping {
                if let Ok(done) = bank.done_rx.recv_timeout(Duration::from_millis(5)) {
                    bank.complete(done);
                }
                return Turn::Continue;
            }
            select! {
                recv(bank.done_rx) -> d => if let Ok(d) = d { bank.complete(d) },
                recv(verified) -> p => match p {
                    Ok(p) => bank.admit(p),
                    // Every verify tile is gone: only completions can come.
                    Err(_) => {
                        if let Ok(done) = bank.done_rx.recv_timeout(Duration::from_millis(5)) {
                            bank.complete(done);
                        }
                    }
                },
                default(Duration::from_millis(5)) => {},
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
