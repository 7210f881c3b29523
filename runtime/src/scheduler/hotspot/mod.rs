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

mod adapt;

use super::apps::{AppRegistry, OVERFLOW_APP, touches_loader};
use super::budget::{CapHit, CuBudget, CuLimits};
use super::ewma::{Ewma, Heat};
use super::islands::{Change, IslandPolicy, Islands, is_island_lane};
use super::locks::{LockSet, SharedLocks};
use super::{Batch, Completion, ExecMode, Scheduler, SchedulerConfig};
use crate::metrics::RuntimeCounters;
use crate::sequencer::{AppId, LaneId, PreparedTx, SeqKey, Sequencer};
use ahash::HashMap;
use solana_pubkey::Pubkey;
use std::cell::Cell;

/// How apps choose between pessimistic and optimistic execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Concurrency {
    /// Per app, from its measured conflict rates.
    #[default]
    Hybrid,
    Pessimistic,
    Optimistic,
}

struct AppState {
    /// The app this state is for (an id is reused once its app is forgotten).
    key: Pubkey,
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
    /// The app's metrics row as last looked up, and the table's claim count then: the bank
    /// gives an app a row when its transactions execute and may hand an idle app's row to
    /// another ([`crate::metrics::AppTable`]), so the index holds only while no claim happened
    /// since (one load to check).
    metrics: Cell<(u64, Option<usize>)>,
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

/// Accounts whose heat the scheduler remembers across slots (each ~200 bytes with its map
/// entry: ~13 MiB). Within a slot the map may hold twice this before new keys go untracked.
pub const MAX_TRACKED_ACCOUNTS: usize = 65_536;

pub struct HotspotScheduler {
    cfg: SchedulerConfig,
    workers: usize,
    batch_max: usize,
    limits: CuLimits,
    /// The caps as configured; `limits` is them times the tuner's `cu_scale`.
    base_limits: CuLimits,
    /// The configured island entry and exit thresholds.
    configured_islands: (f64, f64),
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
    pub fn new(cfg: SchedulerConfig, workers: usize, batch_max: usize, slot_ms: u64) -> Self {
        let workers = workers.max(1);
        let limits = CuLimits::scaled(
            slot_ms,
            cfg.block_cu_limit,
            cfg.account_cu_limit,
            cfg.app_cu_limit,
        );
        let policy = island_policy(&cfg, &limits);
        let apps = AppRegistry::new(&cfg.app_weights);
        let mut s = Self {
            workers,
            batch_max: batch_max.max(1),
            limits,
            base_limits: limits,
            configured_islands: (cfg.island_enter, cfg.island_exit),
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

    /// Past [`MAX_TRACKED_ACCOUNTS`], keep the hottest by demanded write CU (what costs a
    /// sender transactions that are admitted and pay fees, so junk keys cannot outrank real
    /// hotspots) and every island member.
    fn keep_hottest_accounts(&mut self) {
        let n = self.accounts.len();
        if n > MAX_TRACKED_ACCOUNTS {
            let mut demand: Vec<f64> = self
                .accounts
                .iter()
                .filter(|(k, _)| self.islands.lane_of(k).is_none())
                .map(|(_, h)| h.demand_cu.get())
                .collect();
            let keep = MAX_TRACKED_ACCOUNTS.saturating_sub(n - demand.len());
            if keep < demand.len() {
                let cut = demand.len() - keep;
                let (_, threshold, _) = demand.select_nth_unstable_by(cut, |a, b| a.total_cmp(b));
                let threshold = *threshold;
                let islands = &self.islands;
                let mut over = n.saturating_sub(MAX_TRACKED_ACCOUNTS);
                self.accounts.retain(|k, h| {
                    // Ties at the threshold go in the map's (randomly seeded) order.
                    if over == 0 || islands.lane_of(k).is_some() || h.demand_cu.get() > threshold {
                        return true;
                    }
                    over -= 1;
                    false
                });
            }
            self.count_untracked((n - self.accounts.len()) as u64);
        }
        if let Some(c) = self.counters {
            c.heat_accounts.store(
                self.accounts.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    fn count_untracked(&self, n: u64) {
        if let Some(c) = self.counters {
            c.heat_untracked
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn add_app_state(&mut self) {
        let state = self.fresh_app_state(self.app_state.len() as AppId);
        self.app_state.push(state);
    }

    fn fresh_app_state(&self, id: AppId) -> AppState {
        let mode = match self.cfg.concurrency {
            Concurrency::Optimistic => ExecMode::Optimistic,
            _ => ExecMode::Locked,
        };
        AppState {
            key: self.apps.key(id),
            heat: Heat::default(),
            weight: self.apps.weight(id),
            mode,
            cu_per_tx: Ewma::default(),
            cu_sample: (0, 0),
            optimistic_sample: (0, 0),
            reexec_rate: Ewma::default(),
            optimistic_after: 0,
            backoff: self.cfg.optimistic_backoff_slots.max(1),
            metrics: Cell::new((u64::MAX, None)),
        }
    }

    /// Forget apps that went idle: no demand left in their averages, nothing queued in their
    /// lane, nothing in flight. Their ids go to new apps. What it costs an attacker to keep an
    /// app remembered is admitted (fee-paying) transactions in every few slots.
    fn forget_idle_apps(&mut self, queue: &Sequencer) {
        let in_flight: ahash::HashSet<AppId> = self
            .records
            .values()
            .flat_map(|b| b.txs.iter().map(|t| t.app))
            .collect();
        for id in 1..self.app_state.len() as AppId {
            let a = &self.app_state[id as usize];
            let idle = a.heat.demand_cu.get() < 1.0 && a.heat.sample.demand_cu == 0;
            if idle
                && self.apps.is_live(id)
                && queue.lane_len(LaneId::from(id)) == 0
                && !in_flight.contains(&id)
            {
                self.apps.forget(id);
            }
        }
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

    /// The app's metrics row, if it has one. Never the overflow app's: its key is not the
    /// key of the apps it stands for.
    fn app_metrics(&self, app: AppId) -> Option<&'static crate::metrics::AppSlot> {
        let table = &self.counters?.apps;
        let a = self
            .app_state
            .get(app as usize)
            .filter(|_| app != OVERFLOW_APP)?;
        let claims = table.claims.load(std::sync::atomic::Ordering::Relaxed);
        let i = match a.metrics.get() {
            (seen, i) if seen == claims => i,
            _ => {
                let i = table.find(&a.key);
                a.metrics.set((claims, i));
                i
            }
        };
        Some(&table.slots[i?])
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
        tx.queue_delay_us.set(Some(delay / 1_000));
        if let (Some(c), Some(i)) = (self.counters, island_metric_index(lane)) {
            c.islands.slots[i].queue_delay.record(delay / 1_000);
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
        if app != OVERFLOW_APP && self.app_state[app as usize].key != tx.app_key {
            // A forgotten app's id, given to a new app: it starts afresh.
            self.app_state[app as usize] = self.fresh_app_state(app);
        }
        tx.app = app;
        // What it will use (the sequencing estimate; the request under the requested rule): a
        // padded request must not make an account look hot.
        let cu = tx.reserved_cu();
        self.app_state[app as usize].heat.sample.demand_cu += cu;
        let island = tx.writes().find_map(|k| self.islands.lane_of(k));
        tx.lane = island.unwrap_or(LaneId::from(app));
        // Islands are for writes that contend under locks. An app running optimistically
        // declares writes it may not make; its real conflicts show up as re-executions, which
        // send it back to pessimistic mode, and its demand back into the count.
        if island.is_some() || self.mode_of(tx, tx.lane) == ExecMode::Locked {
            for k in tx.writes() {
                if let Some(h) = self.accounts.get_mut(k) {
                    h.sample.add_demand(app, cu);
                } else if self.accounts.len() < 2 * MAX_TRACKED_ACCOUNTS {
                    let mut h = Heat::default();
                    h.sample.add_demand(app, cu);
                    self.accounts.insert(*k, h);
                } else {
                    // Full within this slot (a stream of fresh writable keys): the key's
                    // demand is not tracked; a key written again in later slots will be.
                    self.count_untracked(1);
                }
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
                            requested: t.reserved_cu(),
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
        self.keep_hottest_accounts();
        self.forget_idle_apps(queue);
        self.budget.reset();
        queue.prune_lanes();
        let active: Vec<LaneId> = queue.lanes().collect();
        self.lane_finish
            .retain(|l, _| active.contains(l) || is_island_lane(*l));
    }

    fn write_pressure(&self, tx: &PreparedTx) -> f64 {
        let cap = self.limits.account.max(1) as f64;
        tx.writes()
            .filter_map(|k| self.accounts.get(k))
            .map(|h| {
                let rho = (h.demand_cu.get() / cap).min(crate::sequencing::MAX_RHO);
                rho / (1.0 - rho)
            })
            .sum()
    }

    fn hot_accounts(&self, out: &mut Vec<dataplane::route::HotAccount>) {
        out.extend(self.islands.iter().map(|i| {
            dataplane::route::HotAccount {
                key: i.account.to_bytes(),
                writers: self
                    .accounts
                    .get(&i.account)
                    .map_or(0.0, |h| h.writers.get()),
                worker: i.worker,
            }
        }));
    }

    fn retune(&mut self, k: &crate::tuner::Knobs) {
        self.batch_max = k.batch_max.max(1);
        self.limits = self.base_limits.times(k.cu_scale);
        // The exit threshold keeps its configured ratio to the entry threshold (computed from
        // the configured pair each time, so no rounding accumulates).
        let (enter, exit) = self.configured_islands;
        self.cfg.island_enter = k.island_enter;
        self.cfg.island_exit = if k.island_enter == enter {
            exit
        } else {
            k.island_enter * (exit / enter.max(f64::MIN_POSITIVE)).min(1.0)
        };
        self.cfg.island_min_writers = k.island_min_writers;
        self.islands
            .set_policy(island_policy(&self.cfg, &self.limits));
        self.cfg.optimistic_enter = k.optimistic_enter;
        self.cfg.optimistic_exit = k.optimistic_exit;
        let b = k.optimistic_backoff_slots.max(1);
        self.cfg.optimistic_backoff_slots = b;
        for a in &mut self.app_state {
            a.backoff = a.backoff.clamp(b, b.saturating_mul(64));
        }
    }

    fn name(&self) -> &'static str {
        "hotspot"
    }
}

/// Island thresholds from the configuration and the account cap.
fn island_policy(cfg: &SchedulerConfig, limits: &CuLimits) -> IslandPolicy {
    IslandPolicy {
        enter_cu: cfg.island_enter * limits.account as f64,
        exit_cu: cfg.island_exit.min(cfg.island_enter) * limits.account as f64,
        cool_slots: cfg.island_cool_slots.max(1),
        min_writers: f64::from(cfg.island_min_writers),
        max_islands: cfg.max_islands,
    }
}

#[cfg(test)]
mod tests;
