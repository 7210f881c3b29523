//! The hotspot-aware scheduler: apps isolated from each other under load.
//!
//! - Lanes: every app (see [`apps`](super::apps)) queues in its own lane; a hot account's
//!   writers queue in its island's lane ([`islands`](super::islands)).
//! - Weighted fair queuing across lanes (start-time fair queuing): each pick goes to the
//!   non-empty lane with the smallest virtual start tag, which then advances by the pick's
//!   cost (the app's measured CU per transaction) over the lane's weight. An app flooding the
//!   queue gets its share of the workers and no more.
//! - Per-slot CU caps on the block, each writable account and each app ([`budget`](super::budget)).
//! - Islands: an island's transactions run only in batches of their own, one batch at a time
//!   (serialised, under the account's CU cap), preferably on the worker placement chose, and
//!   islands never take the last worker while other lanes have work.
//! - Hybrid concurrency, per app: pessimistic (account locks, chaining conflicting transactions
//!   on one worker) while the app's declared locks rarely collide; optimistic
//!   ([`ExecMode::Optimistic`]) once they often do, which the bank validates in batch order and
//!   re-executes on real conflicts; back to pessimistic when re-executions get frequent, with a
//!   back-off before the next try. Hot-account and program-deploying transactions always run
//!   pessimistically.

use super::apps::{AppRegistry, touches_loader};
use super::budget::{CapHit, CuBudget, CuLimits};
use super::ewma::{Ewma, Heat};
use super::islands::{Change, IslandPolicy, Islands, is_island_lane};
use super::locks::{LockSet, SharedLocks};
use super::{Batch, Completion, ExecMode, Scheduler};
use crate::metrics::RuntimeCounters;
use crate::sequencer::{AppId, LaneId, PreparedTx, SeqKey, Sequencer};
use ahash::HashMap;
use solana_pubkey::Pubkey;

/// How apps choose between pessimistic and optimistic execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Concurrency {
    /// Per app, from its measured conflict rates.
    #[default]
    Hybrid,
    Pessimistic,
    Optimistic,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HotspotConfig {
    /// Fair-queuing weight per app key (default 1).
    pub weights: Vec<(Pubkey, u32)>,
    /// CU caps per slot; 0 = Solana's scaled to the slot length (app: half the block).
    pub block_cu_limit: u64,
    pub account_cu_limit: u64,
    pub app_cu_limit: u64,
    /// An account becomes an island at this fraction of the account cap in demanded write CU
    /// per slot, and dissolves after `island_cool_slots` slots below `island_exit`.
    pub island_enter: f64,
    pub island_exit: f64,
    pub island_cool_slots: u32,
    /// ...and only with at least this many writing transactions per slot.
    pub island_min_writers: u32,
    pub island_batch_max: usize,
    pub max_islands: usize,
    /// Weight of the newest slot in every EWMA.
    pub ewma_alpha: f64,
    pub concurrency: Concurrency,
    /// Hybrid: an app goes optimistic when its declared-lock conflict rate reaches this...
    pub optimistic_enter: f64,
    /// ...and back to pessimistic when its re-execution rate reaches this.
    pub optimistic_exit: f64,
    /// Slots an app waits after leaving optimistic mode before it may try again (doubles on
    /// every failed try, up to 64×).
    pub optimistic_backoff_slots: u64,
    /// Workers island lanes prefer, best first (from placement: sharing cache with storage
    /// I/O). Empty: islands spread over the workers from the last one down.
    pub island_workers: Vec<usize>,
}

impl Default for HotspotConfig {
    fn default() -> Self {
        Self {
            weights: Vec::new(),
            block_cu_limit: 0,
            account_cu_limit: 0,
            app_cu_limit: 0,
            island_enter: 0.25,
            island_exit: 0.10,
            island_cool_slots: 20,
            island_min_writers: 8,
            island_batch_max: 64,
            max_islands: 64,
            ewma_alpha: 0.2,
            concurrency: Concurrency::Hybrid,
            optimistic_enter: 0.3,
            optimistic_exit: 0.25,
            optimistic_backoff_slots: 50,
            island_workers: Vec::new(),
        }
    }
}

struct AppState {
    heat: Heat,
    weight: f64,
    mode: ExecMode,
    /// Compute units per executed transaction: the fair-queuing cost of a pick.
    cu_per_tx: Ewma,
    cu_sample: (u64, u64),
    /// Optimistic batches committed and re-executed this slot; the re-execution rate.
    optimistic_sample: (u64, u64),
    reexec_rate: Ewma,
    /// No optimistic try before this slot.
    optimistic_after: u64,
    backoff: u64,
    metrics: Option<usize>,
}

/// One dispatched transaction, as much as settling its batch needs.
struct TxRecord {
    app: AppId,
    requested: u64,
    writes: Vec<Pubkey>,
}

struct BatchRecord {
    txs: Vec<TxRecord>,
    island: Option<LaneId>,
    /// Declared locks of an optimistic batch, held until it commits.
    optimistic_locks: Vec<(Pubkey, bool)>,
    settled: bool,
}

/// A batch being filled for an idle worker during one pass.
struct Plan {
    worker: usize,
    mode: Option<ExecMode>,
    island: Option<LaneId>,
    /// An optimistic batch holds one app's transactions: its re-executions are that app's
    /// measure, and another app's real conflicts never re-run it.
    app: Option<AppId>,
    max: usize,
    picks: Vec<(LaneId, SeqKey)>,
}

impl Plan {
    fn full(&self) -> bool {
        self.picks.len() >= self.max
    }
}

enum Pick {
    Placed(usize),
    /// Not now (locks, an account cap); the lane goes on.
    Skip,
    /// Nothing more from this lane in this pass.
    LaneDone,
    /// Belongs in an island's lane.
    Relane(LaneId),
}

pub struct HotspotScheduler {
    cfg: HotspotConfig,
    workers: usize,
    batch_max: usize,
    limits: CuLimits,
    counters: Option<&'static RuntimeCounters>,
    apps: AppRegistry,
    app_state: Vec<AppState>,
    accounts: HashMap<Pubkey, Heat>,
    islands: Islands,
    budget: CuBudget,
    /// Locks of each worker's pessimistic batch in flight (and of this pass's plans).
    held: Vec<LockSet>,
    /// Declared locks of optimistic batches not yet committed.
    optimistic: SharedLocks,
    reserved: LockSet,
    records: HashMap<u64, BatchRecord>,
    worker_island: Vec<Option<LaneId>>,
    lane_finish: HashMap<LaneId, f64>,
    vclock: f64,
    next_batch: u64,
    slot_index: u64,
    next_island_worker: usize,
}

impl HotspotScheduler {
    pub fn new(cfg: HotspotConfig, workers: usize, batch_max: usize, slot_ms: u64) -> Self {
        let workers = workers.max(1);
        let limits = CuLimits::scaled(
            slot_ms,
            cfg.block_cu_limit,
            cfg.account_cu_limit,
            cfg.app_cu_limit,
        );
        let policy = IslandPolicy {
            enter_cu: cfg.island_enter * limits.account as f64,
            exit_cu: cfg.island_exit.min(cfg.island_enter) * limits.account as f64,
            cool_slots: cfg.island_cool_slots.max(1),
            min_writers: f64::from(cfg.island_min_writers),
            max_islands: cfg.max_islands,
        };
        let apps = AppRegistry::new(&cfg.weights);
        let mut s = Self {
            workers,
            batch_max: batch_max.max(1),
            limits,
            counters: None,
            apps,
            app_state: Vec::new(),
            accounts: HashMap::default(),
            islands: Islands::new(policy),
            budget: CuBudget::default(),
            held: (0..workers).map(|_| LockSet::default()).collect(),
            optimistic: SharedLocks::default(),
            reserved: LockSet::default(),
            records: HashMap::default(),
            worker_island: vec![None; workers],
            lane_finish: HashMap::default(),
            vclock: 0.0,
            next_batch: 0,
            slot_index: 0,
            next_island_worker: 0,
            cfg,
        };
        s.add_app_state(); // the overflow app
        s
    }

    /// Report per-app and per-island figures into the shared counters.
    pub fn with_counters(mut self, counters: &'static RuntimeCounters) -> Self {
        self.counters = Some(counters);
        self
    }

    pub fn limits(&self) -> CuLimits {
        self.limits
    }

    pub fn island_lane(&self, account: &Pubkey) -> Option<LaneId> {
        self.islands.lane_of(account)
    }

    pub fn islands(&self) -> impl Iterator<Item = &super::islands::Island> {
        self.islands.iter()
    }

    pub fn app_mode(&self, key: &Pubkey) -> Option<ExecMode> {
        (1..self.apps.len() as AppId)
            .find(|a| self.apps.key(*a) == *key)
            .map(|a| self.app_state[a as usize].mode)
    }

    fn add_app_state(&mut self) {
        let id = self.app_state.len() as AppId;
        let mode = match self.cfg.concurrency {
            Concurrency::Optimistic => ExecMode::Optimistic,
            _ => ExecMode::Locked,
        };
        let metrics = self
            .counters
            .and_then(|c| c.apps.slot_index(&self.apps.key(id)));
        self.app_state.push(AppState {
            heat: Heat::default(),
            weight: self.apps.weight(id),
            mode,
            cu_per_tx: Ewma::default(),
            cu_sample: (0, 0),
            optimistic_sample: (0, 0),
            reexec_rate: Ewma::default(),
            optimistic_after: 0,
            backoff: self.cfg.optimistic_backoff_slots.max(1),
            metrics,
        });
    }

    fn cost(&self, tx: &PreparedTx) -> f64 {
        let a = &self.app_state[tx.app as usize];
        let est = a.cu_per_tx.get();
        if est > 0.0 {
            est
        } else {
            tx.requested_cu() as f64
        }
    }

    fn mode_of(&self, tx: &PreparedTx, lane: LaneId) -> ExecMode {
        if is_island_lane(lane) || touches_loader(&tx.locks) {
            ExecMode::Locked
        } else {
            self.app_state[tx.app as usize].mode
        }
    }

    fn island_workers_busy(&self, plans: &[Plan]) -> usize {
        self.worker_island.iter().filter(|i| i.is_some()).count()
            + plans.iter().filter(|p| p.island.is_some()).count()
    }

    /// Try to place one transaction of `lane` into this pass's plans.
    fn pick(
        &mut self,
        tx: &PreparedTx,
        lane: LaneId,
        plans: &mut [Plan],
        others_waiting: bool,
    ) -> Pick {
        let island = is_island_lane(lane).then_some(lane);
        if island.is_none()
            && let Some(to) = tx.writes().find_map(|k| self.islands.lane_of(k))
        {
            return Pick::Relane(to);
        }
        let mode = self.mode_of(tx, lane);
        let locked = mode == ExecMode::Locked;
        match self.budget.check(&self.limits, tx, locked) {
            Ok(()) => {}
            Err(CapHit::Block) => return Pick::LaneDone,
            Err(CapHit::App) => {
                self.count_deferred(tx);
                return if island.is_some() {
                    Pick::Skip
                } else {
                    Pick::LaneDone
                };
            }
            Err(CapHit::Account) => {
                self.count_deferred(tx);
                return if island.is_some() {
                    Pick::LaneDone
                } else {
                    Pick::Skip
                };
            }
        }
        if self.reserved.conflicts_any(&tx.locks) {
            return self.blocked(tx);
        }
        let target = match mode {
            ExecMode::Locked => {
                if self.optimistic.conflicts_any(&tx.locks) {
                    return self.blocked(tx);
                }
                let conflicting: Vec<usize> = (0..self.workers)
                    .filter(|w| self.held[*w].conflicts_any(&tx.locks))
                    .collect();
                let t = match conflicting.as_slice() {
                    [] => {
                        let may_open = island.is_none()
                            || self.island_workers_busy(plans)
                                < self.workers.saturating_sub(1).max(1)
                            || !others_waiting;
                        let preferred = island.and_then(|l| self.islands.get(l)).map(|i| i.worker);
                        let open = |p: &Plan| p.picks.is_empty() && p.mode.is_none() && may_open;
                        let joinable =
                            |p: &Plan| !p.full() && p.mode == Some(mode) && p.island == island;
                        plans
                            .iter()
                            .position(|p| Some(p.worker) == preferred && (joinable(p) || open(p)))
                            .or_else(|| {
                                plans
                                    .iter()
                                    .enumerate()
                                    .filter(|(_, p)| joinable(p) || open(p))
                                    .min_by_key(|(_, p)| p.picks.len())
                                    .map(|(i, _)| i)
                            })
                    }
                    // Chain onto the one idle worker whose new batch holds the accounts.
                    [w] => plans.iter().position(|p| {
                        p.worker == *w && !p.full() && p.mode == Some(mode) && p.island == island
                    }),
                    _ => None,
                };
                // An island's own serialisation is not a conflict the app could avoid.
                self.note_conflict(tx, island.is_none() && !conflicting.is_empty());
                t
            }
            ExecMode::Optimistic => {
                if self.held.iter().any(|h| h.conflicts_any(&tx.locks)) {
                    return self.blocked(tx);
                }
                let collides = self.optimistic.conflicts_any(&tx.locks);
                self.note_conflict(tx, collides);
                plans
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| {
                        !p.full()
                            && p.island.is_none()
                            && p.mode.is_none_or(|m| m == mode)
                            && p.app.is_none_or(|a| a == tx.app)
                    })
                    .min_by_key(|(_, p)| p.picks.len())
                    .map(|(i, _)| i)
            }
        };
        let Some(i) = target else {
            return self.blocked(tx);
        };
        let p = &mut plans[i];
        if p.mode.is_none() {
            p.mode = Some(mode);
            p.island = island;
            p.app = (mode == ExecMode::Optimistic).then_some(tx.app);
            p.max = if island.is_some() {
                self.cfg.island_batch_max.max(1)
            } else {
                self.batch_max
            };
        }
        match mode {
            ExecMode::Locked => self.held[p.worker].add_all(&tx.locks),
            ExecMode::Optimistic => self.optimistic.add_all(&tx.locks),
        }
        self.budget.reserve(tx, locked);
        Pick::Placed(i)
    }

    fn blocked(&mut self, tx: &PreparedTx) -> Pick {
        self.reserved.add_all(&tx.locks);
        if tx.blocked_ns.get() == 0 {
            tx.blocked_ns.set(dataplane::monotonic_ns().max(1));
        }
        Pick::Skip
    }

    fn note_conflict(&mut self, tx: &PreparedTx, conflicted: bool) {
        if !conflicted {
            return;
        }
        self.app_state[tx.app as usize].heat.sample.conflicted += 1;
        for k in tx.writes() {
            if let Some(h) = self.accounts.get_mut(k) {
                h.sample.conflicted += 1;
            }
        }
        if let Some(a) = self.app_metrics(tx.app) {
            a.conflicts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn count_deferred(&self, tx: &PreparedTx) {
        if let Some(a) = self.app_metrics(tx.app) {
            a.cu_deferred
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn app_metrics(&self, app: AppId) -> Option<&'static crate::metrics::AppSlot> {
        let i = self.app_state.get(app as usize)?.metrics?;
        Some(&self.counters?.apps.slots[i])
    }

    /// Statistics of a transaction leaving the queue.
    fn dispatched(&mut self, tx: &PreparedTx, lane: LaneId, now: u64) {
        let delay = now.saturating_sub(tx.queued_ns);
        let wait = match tx.blocked_ns.get() {
            0 => 0,
            b => now.saturating_sub(b),
        };
        let a = &mut self.app_state[tx.app as usize].heat.sample;
        a.dispatched += 1;
        a.queue_delay_ns += delay;
        a.lock_wait_ns += wait;
        for k in tx.writes() {
            if let Some(h) = self.accounts.get_mut(k) {
                h.sample.dispatched += 1;
                h.sample.queue_delay_ns += delay;
                h.sample.lock_wait_ns += wait;
            }
        }
        if let Some(a) = self.app_metrics(tx.app) {
            a.queue_delay.record(delay / 1_000);
        }
        if let (Some(c), Some(i)) = (self.counters, island_metric_index(lane)) {
            c.islands.slots[i].queue_delay.record(delay / 1_000);
        }
    }

    fn form_or_dissolve(&mut self, queue: &mut Sequencer) {
        let slot = self.slot_index;
        let workers = self.workers;
        let mut changes = Vec::new();
        for (k, h) in &self.accounts {
            let (demand, writers) = (h.demand_cu.get(), h.writers.get());
            let next = &mut self.next_island_worker;
            let prefer = &self.cfg.island_workers;
            if let Some(c) = self.islands.observe(k, demand, writers, slot, || {
                *next += 1;
                if prefer.is_empty() {
                    workers - 1 - (*next - 1) % workers
                } else {
                    prefer[(*next - 1) % prefer.len()] % workers
                }
            }) {
                changes.push((*k, c));
            }
        }
        // Islands whose account went entirely quiet (pruned from `accounts`) cool too.
        let quiet: Vec<Pubkey> = self
            .islands
            .iter()
            .map(|i| i.account)
            .filter(|k| !self.accounts.contains_key(k))
            .collect();
        for k in quiet {
            if let Some(c) = self.islands.observe(&k, 0.0, 0.0, slot, || 0) {
                changes.push((k, c));
            }
        }
        for (account, change) in changes {
            match change {
                Change::Formed(lane) => {
                    tracing::info!(%account, lane, "hot account: island formed");
                    self.lane_finish.insert(lane, self.vclock);
                    self.island_metrics(lane, Some(account));
                }
                Change::Dissolved(lane) => {
                    tracing::info!(%account, lane, "island dissolved");
                    let keys: Vec<(SeqKey, AppId)> =
                        queue.lane_iter(lane).map(|(k, t)| (*k, t.app)).collect();
                    for (key, app) in keys {
                        queue.relane(lane, &key, LaneId::from(app));
                    }
                    self.lane_finish.remove(&lane);
                    self.island_metrics(lane, None);
                }
            }
        }
    }

    fn island_metrics(&self, lane: LaneId, formed: Option<Pubkey>) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(c) = self.counters else { return };
        match formed {
            Some(_) => c.islands.formed.fetch_add(1, Relaxed),
            None => c.islands.dissolved.fetch_add(1, Relaxed),
        };
        if let Some(i) = island_metric_index(lane) {
            let worker = self.islands.get(lane).map_or(0, |i| i.worker as u64);
            c.islands.slots[i].set(formed, worker, self.slot_index);
        }
    }

    /// Whether the app runs optimistically after this slot unless its re-executions say
    /// otherwise: forced, already so, or about to start a trial.
    fn wants_optimistic(&self, a: &AppState) -> bool {
        match self.cfg.concurrency {
            Concurrency::Optimistic => true,
            Concurrency::Pessimistic => false,
            Concurrency::Hybrid => {
                a.mode == ExecMode::Optimistic
                    || (a.heat.conflict_rate.get() >= self.cfg.optimistic_enter
                        && self.slot_index >= a.optimistic_after)
            }
        }
    }

    fn roll_modes(&mut self) {
        let slot = self.slot_index;
        let cfg = &self.cfg;
        for (id, a) in self.app_state.iter_mut().enumerate() {
            let (committed, reexec) = std::mem::take(&mut a.optimistic_sample);
            if committed > 0 {
                a.reexec_rate
                    .update(reexec as f64 / (committed + reexec) as f64, cfg.ewma_alpha);
            }
            if cfg.concurrency != Concurrency::Hybrid {
                continue;
            }
            let next = match a.mode {
                ExecMode::Locked
                    if a.heat.conflict_rate.get() >= cfg.optimistic_enter
                        && slot >= a.optimistic_after =>
                {
                    // Start the trial with a clean re-execution record.
                    a.reexec_rate = Ewma::default();
                    ExecMode::Optimistic
                }
                ExecMode::Optimistic if a.reexec_rate.get() >= cfg.optimistic_exit => {
                    a.optimistic_after = slot + a.backoff;
                    a.backoff = (a.backoff * 2).min(cfg.optimistic_backoff_slots.max(1) * 64);
                    // The declared conflict rate restarts from what pessimistic mode sees.
                    a.heat.conflict_rate = Ewma::default();
                    ExecMode::Locked
                }
                m => m,
            };
            if next != a.mode {
                tracing::info!(app = %self.apps.key(id as AppId), mode = ?next, "app concurrency changed");
                a.mode = next;
            }
            if let (Some(c), Some(i)) = (self.counters, a.metrics) {
                c.apps.slots[i].optimistic.store(
                    u64::from(a.mode == ExecMode::Optimistic),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
        }
    }
}

fn island_metric_index(lane: LaneId) -> Option<usize> {
    let i = usize::try_from(lane.checked_sub(super::islands::ISLAND_LANE_BASE)?).ok()?;
    (i < crate::metrics::MAX_ISLANDS).then_some(i)
}

impl Scheduler for HotspotScheduler {
    fn route(&mut self, tx: &mut PreparedTx) {
        let app = self.apps.intern(tx.app_key);
        while self.app_state.len() <= app as usize {
            self.add_app_state();
        }
        tx.app = app;
        let cu = tx.requested_cu();
        self.app_state[app as usize].heat.sample.demand_cu += cu;
        let island = tx.writes().find_map(|k| self.islands.lane_of(k));
        tx.lane = island.unwrap_or(LaneId::from(app));
        // Islands are for writes that contend under locks. An app running optimistically
        // declares writes it may not make; its real conflicts show up as re-executions, which
        // send it back to pessimistic mode, and its demand back into the count.
        if island.is_some() || self.mode_of(tx, tx.lane) == ExecMode::Locked {
            for k in tx.writes() {
                self.accounts
                    .entry(*k)
                    .or_default()
                    .sample
                    .add_demand(app, cu);
            }
        }
    }

    fn schedule(&mut self, queue: &mut Sequencer, idle: &[usize], out: &mut Vec<Batch>) {
        if idle.is_empty() || queue.is_empty() {
            return;
        }
        let now = dataplane::monotonic_ns();
        self.reserved.clear();
        let mut plans: Vec<Plan> = idle
            .iter()
            .map(|&worker| Plan {
                worker,
                mode: None,
                island: None,
                app: None,
                max: self.batch_max,
                picks: Vec::new(),
            })
            .collect();
        // (lane, last key looked at, transactions looked at)
        let mut active: Vec<(LaneId, Option<SeqKey>, usize)> = queue
            .lanes()
            .filter(|l| {
                // An island with a batch in flight waits for it: its lane is serial.
                !self.worker_island.contains(&Some(*l))
            })
            .map(|l| (l, None, 0))
            .collect();
        for (l, _, _) in &active {
            let f = self.lane_finish.entry(*l).or_insert(self.vclock);
            *f = f.max(self.vclock);
        }
        let others_waiting = active.iter().any(|(l, _, _)| !is_island_lane(*l));
        let scan_limit = self.batch_max * self.workers * 4;
        let mut relanes = Vec::new();
        while !active.is_empty() && plans.iter().any(|p| !p.full()) {
            let i = (0..active.len())
                .min_by(|a, b| {
                    let fa = self.lane_finish[&active[*a].0];
                    let fb = self.lane_finish[&active[*b].0];
                    fa.total_cmp(&fb)
                })
                .expect("non-empty");
            let (lane, after, seen) = active[i];
            let Some((key, tx)) = queue.lane_iter_after(lane, after).next() else {
                active.swap_remove(i);
                continue;
            };
            let key = *key;
            active[i] = (lane, Some(key), seen + 1);
            let result = self.pick(tx, lane, &mut plans, others_waiting);
            match result {
                Pick::Placed(p) => {
                    let start = self.lane_finish[&lane];
                    let weight = if is_island_lane(lane) {
                        1.0
                    } else {
                        self.app_state[tx.app as usize].weight
                    };
                    let cost = self.cost(tx);
                    self.lane_finish.insert(lane, start + cost / weight);
                    self.vclock = self.vclock.max(start);
                    self.dispatched(tx, lane, now);
                    plans[p].picks.push((lane, key));
                    if plans[p].island.is_some() && plans[p].full() {
                        // One island batch at a time.
                        active.swap_remove(i);
                        continue;
                    }
                }
                Pick::Skip => {}
                Pick::LaneDone => {
                    active.swap_remove(i);
                    continue;
                }
                Pick::Relane(to) => relanes.push((lane, key, to)),
            }
            if seen + 1 >= scan_limit {
                active.swap_remove(i);
            }
        }
        for (from, key, to) in relanes {
            queue.relane(from, &key, to);
        }
        for plan in plans {
            if plan.picks.is_empty() {
                continue;
            }
            let txs: Vec<PreparedTx> = plan
                .picks
                .iter()
                .filter_map(|(lane, key)| queue.remove(*lane, key))
                .collect();
            let mode = plan.mode.expect("a plan with picks has a mode");
            self.next_batch += 1;
            let id = self.next_batch;
            let optimistic_locks = if mode == ExecMode::Optimistic {
                txs.iter().flat_map(|t| t.locks.iter().copied()).collect()
            } else {
                Vec::new()
            };
            self.records.insert(
                id,
                BatchRecord {
                    txs: txs
                        .iter()
                        .map(|t| TxRecord {
                            app: t.app,
                            requested: t.requested_cu(),
                            // Optimistic: charged on real writes when it completes.
                            writes: match mode {
                                ExecMode::Locked => t.writes().copied().collect(),
                                ExecMode::Optimistic => Vec::new(),
                            },
                        })
                        .collect(),
                    island: plan.island,
                    optimistic_locks,
                    settled: false,
                },
            );
            self.worker_island[plan.worker] = plan.island;
            out.push(Batch {
                id,
                worker: plan.worker,
                mode,
                txs,
            });
        }
    }

    fn complete(&mut self, done: &Completion) {
        use std::sync::atomic::Ordering::Relaxed;
        self.held[done.worker].clear();
        self.worker_island[done.worker] = None;
        let Some(rec) = self.records.get_mut(&done.batch) else {
            return;
        };
        if rec.settled {
            return; // a re-execution: the block was charged once
        }
        rec.settled = true;
        for (i, k) in done.real_writes {
            let used = done.compute_units.get(*i as usize).copied().unwrap_or(0);
            self.budget.charge_account(*k, used);
        }
        for (t, used) in rec.txs.iter().zip(done.compute_units) {
            self.budget.settle(t.app, &t.writes, t.requested, *used);
            let a = &mut self.app_state[t.app as usize];
            a.cu_sample.0 += 1;
            a.cu_sample.1 += used;
            if let (Some(c), Some(i)) = (self.counters, rec.island.and_then(island_metric_index)) {
                let s = &c.islands.slots[i];
                s.transactions.fetch_add(1, Relaxed);
                s.compute_units.fetch_add(*used, Relaxed);
            }
        }
        if rec.optimistic_locks.is_empty() {
            self.records.remove(&done.batch);
        }
    }

    fn committed(&mut self, batch: u64, reexecutions: u32) {
        let Some(rec) = self.records.remove(&batch) else {
            return;
        };
        self.optimistic.remove_all(&rec.optimistic_locks);
        let mut apps: Vec<AppId> = rec.txs.iter().map(|t| t.app).collect();
        apps.sort_unstable();
        apps.dedup();
        for app in apps {
            let a = &mut self.app_state[app as usize];
            a.optimistic_sample.0 += 1;
            a.optimistic_sample.1 += u64::from(reexecutions);
            if let Some(m) = self.app_metrics(app) {
                m.reexecutions.fetch_add(
                    u64::from(reexecutions),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
        }
    }

    fn slot_closed(&mut self, queue: &mut Sequencer) {
        self.slot_index += 1;
        let alpha = self.cfg.ewma_alpha;
        for a in &mut self.app_state {
            a.heat.roll(alpha);
            let (n, cu) = std::mem::take(&mut a.cu_sample);
            if n > 0 {
                a.cu_per_tx.update(cu as f64 / n as f64, alpha);
            }
        }
        // An app about to try optimistic execution: its declared writes this slot are not yet
        // evidence of contention (the trial tells); one already failing it counts in full.
        let trying: Vec<bool> = self
            .app_state
            .iter()
            .map(|a| self.wants_optimistic(a))
            .collect();
        for (k, h) in self.accounts.iter_mut() {
            let trial = h.sample.sole_writer.is_some_and(|a| trying[a as usize]);
            if trial && self.islands.lane_of(k).is_none() {
                h.sample.demand_cu = 0;
            }
            h.roll(alpha);
        }
        self.form_or_dissolve(queue);
        self.roll_modes();
        let floor = self.islands_exit_floor();
        self.accounts.retain(|_, h| !h.is_cold(floor));
        self.budget.reset();
        queue.prune_lanes();
        let active: Vec<LaneId> = queue.lanes().collect();
        self.lane_finish
            .retain(|l, _| active.contains(l) || is_island_lane(*l));
    }

    fn name(&self) -> &'static str {
        "hotspot"
    }
}

impl HotspotScheduler {
    /// Accounts whose demand falls below this are forgotten (far under any island threshold).
    fn islands_exit_floor(&self) -> f64 {
        (self.cfg.island_exit * self.limits.account as f64 / 100.0).max(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::locks_conflict;
    use crate::sequencer::tests::fake_app_tx;
    use crate::sequencer::{Admit, Eviction};
    use solana_keypair::Keypair;
    use solana_signer::Signer;

    /// A transaction of the app named by `payer` (grouping by fee payer), with these locks and
    /// this many requested CU.
    fn app_tx(id: u64, payer: &Keypair, locks: Vec<(Pubkey, bool)>, cu: u32) -> PreparedTx {
        let mut t = fake_app_tx(id, 0, 0, locks);
        let ix = solana_system_interface::instruction::transfer(
            &payer.pubkey(),
            &Pubkey::new_unique(),
            1,
        );
        let tx = solana_transaction::Transaction::new(
            &[payer],
            solana_message::Message::new(&[ix], Some(&payer.pubkey())),
            solana_hash::Hash::default(),
        );
        t.sanitized =
            solana_transaction::sanitized::SanitizedTransaction::try_from_legacy_transaction(
                tx,
                &Default::default(),
            )
            .unwrap();
        t.budget.limits.compute_unit_limit = cu;
        t.app_key = payer.pubkey();
        t
    }

    fn config() -> HotspotConfig {
        HotspotConfig::default()
    }

    fn admit(s: &mut HotspotScheduler, q: &mut Sequencer, mut tx: PreparedTx) {
        s.route(&mut tx);
        assert!(matches!(q.push(tx), Admit::Queued));
    }

    /// Run passes until `stop` says so, completing every batch at once with its requested CU.
    /// Returns the batches in dispatch order.
    fn drive(
        s: &mut HotspotScheduler,
        q: &mut Sequencer,
        workers: usize,
        mut stop: impl FnMut(&[Batch]) -> bool,
    ) -> Vec<Batch> {
        let mut all = Vec::new();
        for _ in 0..10_000 {
            let mut out = Vec::new();
            s.schedule(q, &(0..workers).collect::<Vec<_>>(), &mut out);
            for b in &out {
                let cu: Vec<u64> = b.txs.iter().map(|t| t.requested_cu()).collect();
                s.complete(&Completion {
                    worker: b.worker,
                    batch: b.id,
                    compute_units: &cu,
                    real_writes: &[],
                });
                if b.mode == ExecMode::Optimistic {
                    s.committed(b.id, 0);
                }
            }
            let empty = out.is_empty();
            all.extend(out);
            if stop(&all) || empty {
                break;
            }
        }
        all
    }

    /// Two apps, one flooding the queue ten to one: while both have work, the quiet one gets
    /// half the picks, where the plain lock scheduler gives it nothing until the flood drains.
    #[test]
    fn a_flooding_app_gets_its_share_and_no_more() {
        let (flood, quiet) = (Keypair::new(), Keypair::new());
        let mut s = HotspotScheduler::new(config(), 2, 8, 400);
        let mut q = Sequencer::new(100_000, Eviction::LongestLane);
        for i in 0..2_000 {
            admit(
                &mut s,
                &mut q,
                app_tx(i, &flood, vec![(Pubkey::new_unique(), true)], 1_000),
            );
        }
        for i in 0..200 {
            admit(
                &mut s,
                &mut q,
                app_tx(
                    10_000 + i,
                    &quiet,
                    vec![(Pubkey::new_unique(), true)],
                    1_000,
                ),
            );
        }
        let quiet_app = s.apps.intern(quiet.pubkey());
        let mut quiet_left = 200;
        let batches = drive(&mut s, &mut q, 2, |all| {
            quiet_left = 200
                - all
                    .iter()
                    .flat_map(|b| &b.txs)
                    .filter(|t| t.app == quiet_app)
                    .count();
            quiet_left == 0
        });
        let picks: Vec<AppId> = batches
            .iter()
            .flat_map(|b| b.txs.iter().map(|t| t.app))
            .collect();
        let quiet_share =
            picks.iter().filter(|a| **a == quiet_app).count() as f64 / picks.len() as f64;
        assert!(
            (0.45..=0.55).contains(&quiet_share),
            "quiet app got {quiet_share:.2} of {} picks",
            picks.len()
        );

        // The same queue under the plain scheduler: arrival order, the flood first.
        let mut plain = crate::scheduler::LockScheduler::new(2, 8);
        let mut q = Sequencer::new(100_000, Eviction::Global);
        let mut ids = Vec::new();
        for i in 0..2_000 {
            let mut t = app_tx(i, &flood, vec![(Pubkey::new_unique(), true)], 1_000);
            plain.route(&mut t);
            ids.push(false);
            let _ = q.push(t);
        }
        for i in 0..200 {
            let mut t = app_tx(
                10_000 + i,
                &quiet,
                vec![(Pubkey::new_unique(), true)],
                1_000,
            );
            t.app = 1;
            plain.route(&mut t);
            let _ = q.push(t);
        }
        let mut out = Vec::new();
        for _ in 0..50 {
            plain.schedule(&mut q, &[0, 1], &mut out);
            for b in &out {
                plain.complete(&Completion {
                    worker: b.worker,
                    batch: b.id,
                    compute_units: &[],
                    real_writes: &[],
                });
            }
        }
        let first_800: Vec<u32> = out
            .iter()
            .flat_map(|b| b.txs.iter().map(|t| t.app))
            .take(800)
            .collect();
        assert!(
            first_800.iter().all(|a| *a == 0),
            "plain scheduler served the quiet app early"
        );
    }

    /// A weight of 3 gets three picks for every one of a weight-1 app.
    #[test]
    fn weights_set_the_shares() {
        let (heavy, light) = (Keypair::new(), Keypair::new());
        let cfg = HotspotConfig {
            weights: vec![(heavy.pubkey(), 3)],
            ..config()
        };
        let mut s = HotspotScheduler::new(cfg, 1, 4, 400);
        let mut q = Sequencer::new(10_000, Eviction::LongestLane);
        for i in 0..400 {
            admit(
                &mut s,
                &mut q,
                app_tx(i, &heavy, vec![(Pubkey::new_unique(), true)], 1_000),
            );
            admit(
                &mut s,
                &mut q,
                app_tx(i, &light, vec![(Pubkey::new_unique(), true)], 1_000),
            );
        }
        let heavy_app = s.apps.intern(heavy.pubkey());
        let batches = drive(&mut s, &mut q, 1, |all| all.len() >= 50);
        let picks: Vec<AppId> = batches
            .iter()
            .flat_map(|b| b.txs.iter().map(|t| t.app))
            .collect();
        let share = picks.iter().filter(|a| **a == heavy_app).count() as f64 / picks.len() as f64;
        assert!(
            (0.70..=0.80).contains(&share),
            "weight-3 app got {share:.2}"
        );
    }

    /// Demand above the threshold forms an island; its transactions then run in batches of
    /// their own, one at a time, never on every worker; below the exit threshold long enough,
    /// it dissolves and its queued transactions go back to their app.
    #[test]
    fn islands_form_isolate_and_dissolve_with_hysteresis() {
        let (minter, other) = (Keypair::new(), Keypair::new());
        let mint = Pubkey::new_unique();
        let mut s = HotspotScheduler::new(config(), 2, 8, 400);
        let enter = 0.25 * s.limits().account as f64;
        let mut q = Sequencer::new(100_000, Eviction::LongestLane);
        let mut id = 0;
        let mut mint_tx = |n: u32| {
            id += 1;
            app_tx(
                id,
                &minter,
                vec![(mint, true), (Pubkey::new_unique(), true)],
                n,
            )
        };
        // 20 × 200k CU per slot = 4M demanded on the mint, over 0.25 × 12M.
        for _ in 0..20 {
            admit(&mut s, &mut q, mint_tx(200_000));
        }
        assert!(20.0 * 200_000.0 > enter);
        assert_eq!(
            s.island_lane(&mint),
            None,
            "islands form at slot boundaries"
        );
        s.slot_closed(&mut q);
        let lane = s.island_lane(&mint).expect("island formed");
        assert_eq!(
            q.lane_len(lane),
            0,
            "queued before it formed: relaned when picked"
        );
        for _ in 0..40 {
            admit(&mut s, &mut q, mint_tx(1_000));
        }
        assert_eq!(
            q.lane_len(lane),
            40,
            "new writers of the hot account route to the island"
        );
        for i in 0..40 {
            admit(
                &mut s,
                &mut q,
                app_tx(1_000 + i, &other, vec![(Pubkey::new_unique(), true)], 1_000),
            );
        }
        // One pass: the island gets one batch of at most island_batch_max of its own; the other
        // worker serves the rest.
        let mut out = Vec::new();
        s.schedule(&mut q, &[0, 1], &mut out);
        assert_eq!(out.len(), 2);
        let island_batches: Vec<&Batch> = out
            .iter()
            .filter(|b| {
                b.txs
                    .iter()
                    .any(|t| t.locks.iter().any(|(k, _)| *k == mint))
            })
            .collect();
        assert_eq!(island_batches.len(), 1);
        let ib = island_batches[0];
        assert!(
            ib.txs
                .iter()
                .all(|t| t.locks.iter().any(|(k, _)| *k == mint))
        );
        assert!(ib.txs.len() <= s.cfg.island_batch_max);
        assert_eq!(ib.mode, ExecMode::Locked);
        // While it runs, the island's lane waits; the free worker takes only other work.
        let other_worker = out.iter().find(|b| b.id != ib.id).unwrap().worker;
        let cu: Vec<u64> = vec![0; 64];
        let done = out.iter().find(|b| b.id != ib.id).unwrap().id;
        s.complete(&Completion {
            worker: other_worker,
            batch: done,
            compute_units: &cu,
            real_writes: &[],
        });
        let mut more = Vec::new();
        s.schedule(&mut q, &[other_worker], &mut more);
        assert!(
            more.iter()
                .flat_map(|b| &b.txs)
                .all(|t| t.locks.iter().all(|(k, _)| *k != mint))
        );
        s.complete(&Completion {
            worker: ib.worker,
            batch: ib.id,
            compute_units: &cu,
            real_writes: &[],
        });
        for b in &more {
            s.complete(&Completion {
                worker: b.worker,
                batch: b.id,
                compute_units: &cu,
                real_writes: &[],
            });
        }

        // Hysteresis: demand between the exit and enter thresholds keeps the island.
        let between = ((0.15 * s.limits().account as f64) / 200_000.0).ceil() as usize;
        for _ in 0..30 {
            for _ in 0..between {
                admit(&mut s, &mut q, mint_tx(200_000));
            }
            s.slot_closed(&mut q);
            assert_eq!(
                s.island_lane(&mint),
                Some(lane),
                "island flapped between thresholds"
            );
        }
        // Cold: it dissolves after cooling, and what it queued returns to the app's lane.
        let mut slots = 0;
        while s.island_lane(&mint).is_some() {
            s.slot_closed(&mut q);
            slots += 1;
            assert!(slots < 100, "island never dissolved");
        }
        assert!(
            slots >= s.cfg.island_cool_slots as usize,
            "dissolved after {slots} slots"
        );
        assert_eq!(q.lane_len(lane), 0);
        assert!(q.lane_len(LaneId::from(s.apps.intern(minter.pubkey()))) > 0);
    }

    /// Optimistic batches never mix apps: one app's real conflicts cannot re-run another's
    /// transactions or count against its re-execution rate.
    #[test]
    fn optimistic_batches_hold_one_app() {
        let (a, b) = (Keypair::new(), Keypair::new());
        let cfg = HotspotConfig {
            concurrency: Concurrency::Optimistic,
            ..config()
        };
        let mut s = HotspotScheduler::new(cfg, 2, 8, 400);
        let mut q = Sequencer::new(10_000, Eviction::LongestLane);
        let shared = Pubkey::new_unique();
        for i in 0..40 {
            let payer = if i % 2 == 0 { &a } else { &b };
            admit(
                &mut s,
                &mut q,
                app_tx(i, payer, vec![(shared, true)], 1_000),
            );
        }
        let batches = drive(&mut s, &mut q, 2, |_| false);
        assert_eq!(batches.iter().map(|b| b.txs.len()).sum::<usize>(), 40);
        for b in &batches {
            assert_eq!(b.mode, ExecMode::Optimistic);
            assert!(
                b.txs.iter().all(|t| t.app == b.txs[0].app),
                "batch {} mixes apps",
                b.id
            );
        }
    }

    /// The per-account cap bounds what a hot account's island runs per slot.
    #[test]
    fn account_cap_bounds_an_island_per_slot() {
        let minter = Keypair::new();
        let mint = Pubkey::new_unique();
        let mut s = HotspotScheduler::new(config(), 2, 64, 400);
        let mut q = Sequencer::new(100_000, Eviction::LongestLane);
        for i in 0..200 {
            admit(
                &mut s,
                &mut q,
                app_tx(i, &minter, vec![(mint, true)], 200_000),
            );
        }
        let cap = s.limits().account;
        let batches = drive(&mut s, &mut q, 2, |_| false);
        let cu: u64 = batches
            .iter()
            .flat_map(|b| &b.txs)
            .map(|t| t.requested_cu())
            .sum();
        assert!(cu <= cap, "{cu} CU ran against a {cap} cap");
        assert_eq!(cu, cap / 200_000 * 200_000);
    }

    /// Random conflicting workloads under forced-optimistic, forced-pessimistic and hybrid
    /// modes: locked batches never overlap anything in flight; optimistic ones only each other.
    #[test]
    fn locked_batches_never_overlap_in_flight_work() {
        use rand::{Rng, SeedableRng};
        for concurrency in [
            Concurrency::Hybrid,
            Concurrency::Pessimistic,
            Concurrency::Optimistic,
        ] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            let payers: Vec<Keypair> = (0..3).map(|_| Keypair::new()).collect();
            let keys: Vec<Pubkey> = (0..10).map(|_| Pubkey::new_unique()).collect();
            let cfg = HotspotConfig {
                concurrency,
                island_enter: 0.01,
                island_exit: 0.005,
                ..config()
            };
            let workers = 3;
            let mut s = HotspotScheduler::new(cfg, workers, 4, 400);
            let mut q = Sequencer::new(100_000, Eviction::LongestLane);
            let total = 1_500;
            for i in 0..total {
                let mut locks: Vec<(Pubkey, bool)> = (0..rng.gen_range(1..4))
                    .map(|_| (keys[rng.gen_range(0..keys.len())], rng.gen_bool(0.5)))
                    .collect();
                locks.sort_by_key(|(k, _)| *k);
                locks.dedup_by_key(|(k, _)| *k);
                let payer = &payers[rng.gen_range(0..payers.len())];
                admit(
                    &mut s,
                    &mut q,
                    app_tx(i, payer, locks, rng.gen_range(1_000..100_000)),
                );
            }
            let mut in_flight: Vec<Option<Batch>> = (0..workers).map(|_| None).collect();
            let mut done = 0;
            let mut rounds = 0;
            while done < total {
                rounds += 1;
                assert!(rounds < 200_000, "scheduler stalled with {done} done");
                let idle: Vec<usize> = (0..workers).filter(|w| in_flight[*w].is_none()).collect();
                let mut out = Vec::new();
                s.schedule(&mut q, &idle, &mut out);
                for b in out {
                    let w = b.worker;
                    assert!(in_flight[w].is_none());
                    in_flight[w] = Some(b);
                }
                for a in 0..workers {
                    for b in a + 1..workers {
                        let (Some(x), Some(y)) = (&in_flight[a], &in_flight[b]) else {
                            continue;
                        };
                        if x.mode == ExecMode::Optimistic && y.mode == ExecMode::Optimistic {
                            continue;
                        }
                        for t in &x.txs {
                            for u in &y.txs {
                                assert!(
                                    !locks_conflict(&t.locks, &u.locks),
                                    "{concurrency:?}: workers {a} and {b} overlap"
                                );
                            }
                        }
                    }
                }
                let busy: Vec<usize> = (0..workers).filter(|w| in_flight[*w].is_some()).collect();
                if busy.is_empty() {
                    s.slot_closed(&mut q);
                    continue;
                }
                let w = busy[rng.gen_range(0..busy.len())];
                let b = in_flight[w].take().unwrap();
                let cu: Vec<u64> = b.txs.iter().map(|t| t.requested_cu() / 2).collect();
                s.complete(&Completion {
                    worker: w,
                    batch: b.id,
                    compute_units: &cu,
                    real_writes: &[],
                });
                if b.mode == ExecMode::Optimistic {
                    s.committed(b.id, 0);
                }
                done += b.txs.len() as u64;
                if rng.gen_bool(0.05) && in_flight.iter().all(Option::is_none) {
                    s.slot_closed(&mut q);
                }
            }
            assert!(q.is_empty());
        }
    }
}
