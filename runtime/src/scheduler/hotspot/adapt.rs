//! The hotspot scheduler's slot-boundary decisions: islands formed and dissolved, apps
//! switched between pessimistic and optimistic execution.

use super::*;

impl HotspotScheduler {
    pub(super) fn form_or_dissolve(&mut self, queue: &mut Sequencer) {
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

    pub(super) fn island_metrics(&self, lane: LaneId, formed: Option<Pubkey>) {
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
    pub(super) fn wants_optimistic(&self, a: &AppState) -> bool {
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

    pub(super) fn roll_modes(&mut self) {
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
        }
        if self.cfg.concurrency != Concurrency::Hybrid {
            return;
        }
        // Apart from the loop above: the row lookup may refresh a cached index.
        for id in 0..self.app_state.len() as AppId {
            if let Some(m) = self.app_metrics(id) {
                let optimistic = self.app_state[id as usize].mode == ExecMode::Optimistic;
                m.optimistic
                    .store(u64::from(optimistic), std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Accounts whose demand falls below this are forgotten (far under any island threshold).
    pub(super) fn islands_exit_floor(&self) -> f64 {
        (self.cfg.island_exit * self.limits.account as f64 / 100.0).max(1.0)
    }
}
