//! The self-tuning runtime: a learner that sets the runtime's live knobs ([`knobs`]) while the
//! appliance runs, from what each window of slots earned, within guardrails an operator sets
//! (`[tuner]`, [`config`]).
//!
//! It runs on the bank thread, inside the slot close, after the scheduler rolled its per-slot
//! state: on most slots it only counts; at a window's end it reads the counters
//! ([`window`]), asks the learner ([`learner`]) for the next setting, and the bank applies it
//! before the next slot opens. Files are written by a thread of its own ([`files`]). Why a
//! bandit and which one: the runtime README, "Self-tuning".

pub mod config;
pub mod files;
pub mod knobs;
pub mod learner;
pub mod metrics;
pub mod window;

pub use config::{TunerConfig, TunerMode};
pub use knobs::{Knob, Knobs};

use crate::metrics::RuntimeCounters;
use learner::{Change, KnobSpec, Learner, LearnerConfig, Policy, Reason, WindowKind};
use metrics::TunerState;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use window::{Measured, Snapshot};

/// The least a successful transaction counts for in the reward: Agave's cost of a System
/// program instruction. Builtins report no compute units consumed, so without it a workload
/// of transfers would be worth nothing to the tuner.
pub const MIN_TX_CU: u64 = 150;

/// What the runtime's tuner starts from.
#[derive(Debug, Clone, Default)]
pub struct TunerSetup {
    pub config: TunerConfig,
    /// Where the policy and the change history live (`DATA_DIR/tuner`); `None`: nothing is
    /// saved (benches, tests).
    pub dir: Option<PathBuf>,
}

/// `policy.json`: the learner's policy and what it is for.
#[derive(serde::Serialize, serde::Deserialize)]
struct PolicyFile {
    saved_unix_ms: u64,
    knobs: Vec<String>,
    policy: Policy,
}

pub struct Tuner {
    mode: TunerMode,
    cfg: TunerConfig,
    enabled: Vec<Knob>,
    configured: Knobs,
    learner: Learner,
    counters: &'static RuntimeCounters,
    writer: Option<files::Writer>,
    params: window::Params,
    workers: usize,
    /// A slot closing with at least this many transactions queued (a batch for every worker,
    /// at the batch size applied) kept every worker busy.
    saturation_depth: usize,
    start: Option<Snapshot>,
    /// Taken when the last change was applied (until the next window closes): the early
    /// judgement of a setting that is doing clearly worse than the configured values.
    since_change: Option<(Snapshot, u64)>,
    slots: u64,
    saturated_slots: u64,
    settle_left: u64,
    windows_since_save: u64,
    /// The window of the last change, whose effect the next window measures.
    last_change: Option<u64>,
    holding: u32,
    /// Per workload cluster, the p99 of the last window run at the configured values: the
    /// latency guard fires only well above what they give.
    default_p99_us: [Option<u64>; learner::CLUSTERS],
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Tuner {
    /// The tuner `setup` asks for (`None` when off), and the knobs to start with: the
    /// configured values, or the saved policy's setting (`apply_persisted`).
    pub fn new(
        setup: &TunerSetup,
        configured: Knobs,
        workers: usize,
        slot_ms: u64,
        counters: &'static RuntimeCounters,
    ) -> Option<(Self, Knobs)> {
        let t = &counters.tuner;
        for k in Knob::ALL {
            t.knob(k).default.set(k.get(&configured));
        }
        t.show_values(&configured);
        let cfg = setup.config.clone();
        if cfg.mode == TunerMode::Off {
            t.set_state(TunerState::Off);
            return None;
        }
        let enabled = cfg.enabled();
        for k in &enabled {
            t.knob(*k).enabled.store(1, Relaxed);
        }
        let specs = specs(&enabled, &configured, &cfg);
        let lcfg = LearnerConfig {
            revert_margin: cfg.revert_margin,
            discount: cfg.discount,
            max_explore_share: cfg.max_explore_share,
            hold_windows: cfg.hold_windows,
            anchor_windows: cfg.anchor_windows,
            reanchor_windows: cfg.reanchor_windows,
            seed: if cfg.seed == 0 {
                unix_ms() | 1
            } else {
                cfg.seed
            },
        };
        let learner = match setup.dir.as_deref().map(files::load_policy) {
            Some(Ok(Some(text))) => {
                let loaded = serde_json::from_str::<PolicyFile>(&text)
                    .map_err(|e| e.to_string())
                    .and_then(|f| {
                        Learner::from_policy(specs.clone(), lcfg.clone(), f.policy)
                            .map_err(|e| e.to_string())
                    });
                match loaded {
                    Ok(l) => {
                        tracing::info!(windows = l.windows(), "tuner: saved policy loaded");
                        l
                    }
                    Err(e) => {
                        t.policy_rejected.fetch_add(1, Relaxed);
                        // Only a learning tuner, which will write a new one, moves it aside; a
                        // frozen one touches no file.
                        if cfg.mode == TunerMode::Learn {
                            tracing::warn!(%e, "tuner: saved policy refused, set aside as policy.json.rejected; learning from scratch");
                            let dir = setup.dir.as_deref().expect("a directory");
                            if let Err(e) = files::reject_policy(dir) {
                                tracing::warn!(%e, "tuner: cannot set the refused policy aside");
                            }
                        } else {
                            tracing::warn!(%e, "tuner: saved policy refused; frozen at the configured values");
                        }
                        Learner::new(specs.clone(), lcfg.clone())
                    }
                }
            }
            Some(Err(e)) => {
                tracing::warn!(%e, "tuner: cannot read the saved policy; learning from scratch");
                t.policy_rejected.fetch_add(1, Relaxed);
                Learner::new(specs.clone(), lcfg.clone())
            }
            Some(Ok(None)) | None => Learner::new(specs.clone(), lcfg.clone()),
        };
        let mut tuner = Self {
            mode: cfg.mode,
            enabled,
            configured,
            learner,
            counters,
            writer: None,
            params: window::Params {
                slot_us: slot_ms.max(1) as f64 * 1_000.0,
                latency_penalty: cfg.latency_penalty,
            },
            workers: workers.max(1),
            saturation_depth: workers.max(1) * configured.batch_max,
            start: None,
            since_change: None,
            slots: 0,
            saturated_slots: 0,
            settle_left: 0,
            windows_since_save: 0,
            last_change: None,
            holding: 0,
            default_p99_us: [None; learner::CLUSTERS],
            cfg,
        };
        if tuner.mode == TunerMode::Learn
            && let Some(dir) = &setup.dir
        {
            match files::Writer::start(dir.clone(), &counters.tuner) {
                Ok(w) => tuner.writer = Some(w),
                Err(e) => tracing::warn!(%e, "tuner: cannot write its files; learning unsaved"),
            }
        }
        let start = if tuner.cfg.apply_persisted {
            tuner.knobs_of(tuner.learner.current())
        } else {
            tuner.reset_to_defaults();
            configured
        };
        tuner.saturation_depth = tuner.workers * start.batch_max;
        t.set_state(match tuner.mode {
            TunerMode::Frozen => TunerState::Frozen,
            _ => TunerState::Learning,
        });
        t.show_values(&start);
        Some((tuner, start))
    }

    /// Start from the configured values, keeping what was learnt.
    fn reset_to_defaults(&mut self) {
        let mut p = self.learner.to_policy();
        p.current = self.learner.defaults();
        let specs = self.learner.knobs().to_vec();
        if let Ok(l) = Learner::from_policy(specs, self.learner_config(), p) {
            self.learner = l;
        }
    }

    fn learner_config(&self) -> LearnerConfig {
        LearnerConfig {
            revert_margin: self.cfg.revert_margin,
            discount: self.cfg.discount,
            max_explore_share: self.cfg.max_explore_share,
            hold_windows: self.cfg.hold_windows,
            anchor_windows: self.cfg.anchor_windows,
            reanchor_windows: self.cfg.reanchor_windows,
            seed: self.cfg.seed.max(1),
        }
    }

    /// The knobs a setting of lattice levels stands for (disabled knobs at their configured
    /// values).
    fn knobs_of(&self, levels: &[u8]) -> Knobs {
        let mut k = self.configured;
        for (spec, (knob, level)) in self
            .learner
            .knobs()
            .iter()
            .zip(self.enabled.iter().zip(levels))
        {
            knob.set(&mut k, spec.levels[usize::from(*level)]);
        }
        k
    }

    /// A slot closed with `queue_depth` transactions queued. At a window's end: the setting
    /// for the next slots, if it changes.
    pub fn slot_closed(&mut self, queue_depth: usize) -> Option<Knobs> {
        if let Some(m) = self.judge_early() {
            return self.window_closed(&m);
        }
        if self.settle_left > 0 {
            self.settle_left -= 1;
            if self.settle_left > 0 {
                return None;
            }
        }
        let Some(start) = &self.start else {
            self.start = Some(Snapshot::take(self.counters));
            (self.slots, self.saturated_slots) = (0, 0);
            return None;
        };
        self.slots += 1;
        if queue_depth >= self.saturation_depth {
            self.saturated_slots += 1;
        }
        if self.slots < self.cfg.window_slots {
            return None;
        }
        let end = Snapshot::take(self.counters);
        let saturated = self.saturated_slots * 2 >= self.slots;
        let m = window::measure(start, &end, self.counters, saturated, &self.params);
        self.start = Some(end);
        (self.slots, self.saturated_slots) = (0, 0);
        self.since_change = None;
        self.window_closed(&m)
    }

    fn window_closed(&mut self, m: &Measured) -> Option<Knobs> {
        let t = &self.counters.tuner;
        t.window_reward.store(m.reward as u64, Relaxed);
        t.window_p99_us.store(m.p99_us, Relaxed);
        t.cluster.store(m.cluster as u64, Relaxed);
        if self.mode == TunerMode::Frozen {
            self.explain(m.cluster);
            return None;
        }
        let relevant = self.relevant(m);
        let c = m.cluster.min(learner::CLUSTERS - 1);
        if self.learner.current() == self.learner.defaults().as_slice() {
            self.default_p99_us[c] = Some(m.p99_us);
        }
        let obs = learner::Window {
            cluster: m.cluster,
            reward: m.reward,
            idle: !m.saturated,
            latency_breach: m.p99_us as f64 > self.latency_bound(c),
            relevant: &relevant,
        };
        let (kind, change) = self.learner.observe(&obs);
        let window = self.learner.windows();
        match kind {
            WindowKind::Explore => &t.windows_explore,
            WindowKind::Exploit => &t.windows_exploit,
            WindowKind::Hold => &t.windows_hold,
            WindowKind::Idle => &t.windows_idle,
            WindowKind::Anchor => &t.windows_anchor,
        }
        .fetch_add(1, Relaxed);
        let mu = self.learner.mu_default(m.cluster);
        if let Some(mu) = mu {
            t.default_reward.store(mu as u64, Relaxed);
        }
        let ratio = mu.filter(|mu| *mu > 0.0).map(|mu| m.reward / mu);
        if let Some(of) = self.last_change.take() {
            self.record(serde_json::json!({
                "unix_ms": unix_ms(), "window": window, "measured_change": of,
                "reward_cu_per_s": m.reward.round(), "vs_default": ratio,
                "p99_us": m.p99_us, "kind": format!("{kind:?}").to_lowercase(),
            }));
        }
        self.holding = match (change.as_ref().map(|c| c.reason), self.holding) {
            (Some(Reason::RevertReward | Reason::RevertLatency), _) => self.cfg.hold_windows,
            (_, h) => h.saturating_sub(1),
        };
        t.set_state(if self.holding > 0 {
            TunerState::Holding
        } else {
            TunerState::Learning
        });
        let next = change.map(|c| self.apply(c, m, ratio, window));
        self.explain(m.cluster);
        self.windows_since_save += 1;
        if self.windows_since_save >= self.cfg.persist_every_windows {
            self.save(false);
        }
        next
    }

    fn apply(&mut self, c: Change, m: &Measured, ratio: Option<f64>, window: u64) -> Knobs {
        let t = &self.counters.tuner;
        t.changes.fetch_add(1, Relaxed);
        match c.reason {
            Reason::RevertReward => t.reverts_reward.fetch_add(1, Relaxed),
            Reason::RevertLatency => t.reverts_latency.fetch_add(1, Relaxed),
            _ => 0,
        };
        let (from, to) = (self.knobs_of(&c.from), self.knobs_of(&c.to));
        let changed: Vec<Knob> = self
            .enabled
            .iter()
            .copied()
            .filter(|k| k.get(&from) != k.get(&to))
            .collect();
        let values = |k: &Knobs| -> serde_json::Map<String, serde_json::Value> {
            changed
                .iter()
                .map(|n| (n.name().to_string(), serde_json::json!(n.get(k))))
                .collect()
        };
        let finite = |v: f64| v.is_finite().then_some(v);
        tracing::info!(
            reason = ?c.reason, cluster = %window::cluster_name(m.cluster),
            from = ?values(&from), to = ?values(&to), "tuner: setting changed"
        );
        self.record(serde_json::json!({
            "unix_ms": unix_ms(), "window": window,
            "cluster": window::cluster_name(m.cluster),
            "reason": c.reason, "from": values(&from), "to": values(&to),
            "sample": finite(c.sample), "incumbent_mean": finite(c.incumbent_mean),
            "reward_cu_per_s": m.reward.round(), "vs_default": ratio, "p99_us": m.p99_us,
        }));
        self.last_change = Some(window);
        self.settle_left = changed.iter().map(|k| k.settle_slots()).max().unwrap_or(0);
        self.saturation_depth = self.workers * to.batch_max;
        self.start = None;
        self.since_change = Some((Snapshot::take(self.counters), 0));
        t.show_values(&to);
        to
    }

    /// A tried setting earning less than (1 − 2 × margin) of what the configured values are
    /// expected to, over at least `EARLY_SLOTS` slots since it was applied (settling
    /// included), is judged now instead of at the end of its window: its measurement so far
    /// goes to the learner, whose guard reverts it. A bad try then costs a few slots, not a
    /// settle period and a window.
    fn judge_early(&mut self) -> Option<Measured> {
        const EARLY_SLOTS: u64 = 4;
        let (snap, slots) = self.since_change.as_mut()?;
        *slots += 1;
        if *slots < EARLY_SLOTS || self.learner.current() == self.learner.defaults().as_slice() {
            return None;
        }
        let cluster = self.counters.tuner.cluster.load(Relaxed) as usize;
        let mu = self
            .learner
            .mu_default(cluster.min(learner::CLUSTERS - 1))?;
        if snap.cu_rate_since(self.counters) >= (1.0 - 2.0 * self.cfg.revert_margin) * mu {
            return None;
        }
        let (snap, _) = self.since_change.take()?;
        let end = Snapshot::take(self.counters);
        let m = window::measure(&snap, &end, self.counters, true, &self.params);
        // The judged stretch was saturated enough to matter only if it measured the cluster it
        // was tried in; otherwise let the window run.
        if m.cluster != cluster {
            return None;
        }
        self.counters.tuner.early_judgements.fetch_add(1, Relaxed);
        self.settle_left = 0;
        self.start = Some(end);
        (self.slots, self.saturated_slots) = (0, 0);
        Some(m)
    }

    /// The p99 above which a window under a tuned setting reverts: `latency_revert_slots`
    /// slots, or twice what the configured values gave in this workload if that is more (a
    /// saturated queue's tail is long whatever the setting; the guard is against making it
    /// worse).
    fn latency_bound(&self, cluster: usize) -> f64 {
        let slots = self.cfg.latency_revert_slots * self.params.slot_us;
        let defaults = self.default_p99_us[cluster].map_or(0.0, |p| 2.0 * p as f64);
        slots.max(defaults)
    }

    /// Which knobs could matter in this window: islands and optimistic execution only under
    /// contention, the compute-unit caps only when they deferred work or latency is high.
    fn relevant(&self, m: &Measured) -> Vec<bool> {
        let contended = m.islands > 0 || m.conflict_share >= 0.01;
        self.enabled
            .iter()
            .map(|k| match k {
                Knob::AdmitBurst | Knob::BatchMax => true,
                Knob::CuScale => m.cu_deferred > 0 || m.p99_us as f64 > self.params.slot_us,
                _ => contended,
            })
            .collect()
    }

    fn explain(&self, cluster: usize) {
        let t = &self.counters.tuner;
        for e in self.learner.explain(cluster) {
            let Some(k) = Knob::from_name(e.name) else {
                continue;
            };
            let g = t.knob(k);
            for (gauges, est) in [
                (&g.current, e.current),
                (&g.lower, e.lower),
                (&g.higher, e.higher),
            ] {
                let est = est.unwrap_or(learner::Estimate {
                    mean: 0.0,
                    sd: 0.0,
                    n: 0.0,
                });
                gauges.mean.set(est.mean);
                gauges.sd.set(est.sd);
                gauges.n.set(est.n);
            }
        }
    }

    fn record(&self, line: serde_json::Value) {
        if let Some(w) = &self.writer {
            w.send(files::Job::Change(line.to_string()));
        }
    }

    fn policy_json(&self) -> String {
        let f = PolicyFile {
            saved_unix_ms: unix_ms(),
            knobs: self.enabled.iter().map(|k| k.name().to_string()).collect(),
            policy: self.learner.to_policy(),
        };
        serde_json::to_string(&f).unwrap_or_default()
    }

    fn save(&mut self, wait: bool) {
        self.windows_since_save = 0;
        let Some(w) = &self.writer else { return };
        let job = files::Job::Policy(self.policy_json());
        if wait { w.send_wait(job) } else { w.send(job) }
    }
}

impl Drop for Tuner {
    /// Save what was learnt at stop.
    fn drop(&mut self) {
        if self.mode == TunerMode::Learn {
            self.save(true);
        }
    }
}

/// The learner's view of the enabled knobs: lattices around the configured values, limited to
/// `tuner.limits` (the configured value always stays allowed: it is where a revert goes).
pub fn specs(enabled: &[Knob], configured: &Knobs, cfg: &TunerConfig) -> Vec<KnobSpec> {
    enabled
        .iter()
        .map(|k| {
            let (levels, default) = k.lattice(configured);
            let (mut min, mut max) = (0u8, (levels.len() - 1) as u8);
            let cu_max = [0.0, cfg.cu_scale_max];
            let limit = match k {
                Knob::CuScale => cfg
                    .limits
                    .get(k.name())
                    .or(Some(&cu_max))
                    .map(|[lo, hi]| [*lo, hi.min(cfg.cu_scale_max)]),
                _ => cfg.limits.get(k.name()).copied(),
            };
            if let Some([lo, hi]) = limit.as_ref() {
                let inside: Vec<u8> = (0..levels.len() as u8)
                    .filter(|i| (*lo..=*hi).contains(&levels[usize::from(*i)]))
                    .collect();
                min = inside.first().copied().unwrap_or(default).min(default);
                max = inside.last().copied().unwrap_or(default).max(default);
            }
            KnobSpec {
                name: k.name(),
                levels,
                default,
                min,
                max,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(mode: TunerMode, dir: &std::path::Path) -> TunerSetup {
        TunerSetup {
            config: TunerConfig {
                mode,
                window_slots: 4,
                seed: 7,
                persist_every_windows: 5,
                ..Default::default()
            },
            dir: Some(dir.to_path_buf()),
        }
    }

    fn configured() -> Knobs {
        Knobs::configured(&Default::default(), &Default::default())
    }

    /// `slots` slot closes under a saturated queue, `cu` successful compute units each
    /// (varying with the knobs applied, so the learner sees a difference); the settings
    /// applied, in order.
    fn drive(t: &mut Tuner, c: &RuntimeCounters, slots: usize) -> Vec<Knobs> {
        let mut applied = Vec::new();
        let mut now = t.knobs_of(t.learner.current());
        for i in 0..slots {
            let cu = 1_000_000 + 200 * now.batch_max as u64 + (i as u64 % 7) * 1_000;
            c.reward_cu.fetch_add(cu, Relaxed);
            c.executed_ok.fetch_add(cu / 1_000, Relaxed);
            std::thread::sleep(std::time::Duration::from_micros(200));
            if let Some(k) = t.slot_closed(100_000) {
                now = k;
                applied.push(k);
            }
        }
        applied
    }

    #[test]
    fn learns_saves_and_reloads_its_policy() {
        let dir = tempfile::tempdir().unwrap();
        let c: &'static RuntimeCounters = telemetry::SharedRegion::private();
        let (mut t, start) =
            Tuner::new(&setup(TunerMode::Learn, dir.path()), configured(), 2, 50, c).unwrap();
        assert_eq!(start, configured());
        let applied = drive(&mut t, c, 400);
        assert!(!applied.is_empty(), "it tried other settings");
        let windows = t.learner.windows();
        let current = t.learner.current().to_vec();
        let policy = t.learner.to_policy();
        drop(t); // saves at stop
        let text = std::fs::read_to_string(dir.path().join(files::POLICY)).unwrap();
        assert!(text.contains("\"knobs\":[\"admit_burst\""), "{text}");
        assert!(files::read_changes(dir.path(), 1000).len() >= applied.len());
        let (t2, start2) =
            Tuner::new(&setup(TunerMode::Learn, dir.path()), configured(), 2, 50, c).unwrap();
        assert_eq!(t2.learner.windows(), windows);
        assert_eq!(t2.learner.current(), current.as_slice());
        assert_eq!(t2.learner.to_policy(), policy);
        assert_eq!(
            start2,
            t2.knobs_of(&current),
            "the saved setting is applied at start"
        );
        assert_eq!(c.tuner.policy_rejected.load(Relaxed), 0);
    }

    #[test]
    fn a_clearly_worse_setting_is_reverted_before_its_window_ends() {
        let c: &'static RuntimeCounters = telemetry::SharedRegion::private();
        let mut s = setup(TunerMode::Learn, std::path::Path::new("/nonexistent"));
        s.dir = None;
        s.config.window_slots = 12;
        let (mut t, mut now) = Tuner::new(&s, configured(), 2, 50, c).unwrap();
        let mut tried_at = None;
        let mut reverted_after = Vec::new();
        for slot in 0..600 {
            // Any setting but the configured one earns a third.
            let cu = if now == configured() {
                900_000
            } else {
                300_000
            };
            c.reward_cu.fetch_add(cu, Relaxed);
            c.executed_ok.fetch_add(cu / 1_000, Relaxed);
            std::thread::sleep(std::time::Duration::from_micros(300));
            if let Some(k) = t.slot_closed(100_000) {
                if k == configured() {
                    if let Some(at) = tried_at.take() {
                        reverted_after.push(slot - at);
                    }
                } else {
                    tried_at = Some(slot);
                }
                now = k;
            }
        }
        assert!(
            !reverted_after.is_empty(),
            "it tried a setting and reverted it"
        );
        // Judged 4 slots after it was applied (settling included), not after a settle period
        // and a 12-slot window.
        assert!(reverted_after.iter().all(|s| *s <= 5), "{reverted_after:?}");
        assert!(c.tuner.early_judgements.load(Relaxed) >= reverted_after.len() as u64);
        assert_eq!(
            c.tuner.reverts_reward.load(Relaxed),
            reverted_after.len() as u64
        );
    }

    #[test]
    fn a_frozen_tuner_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c: &'static RuntimeCounters = telemetry::SharedRegion::private();
        let (mut t, _) =
            Tuner::new(&setup(TunerMode::Learn, dir.path()), configured(), 2, 50, c).unwrap();
        drive(&mut t, c, 200);
        drop(t);
        let path = dir.path().join(files::POLICY);
        let saved = std::fs::read(&path).unwrap();
        let changes = std::fs::read(dir.path().join(files::CHANGES)).unwrap();
        let (mut t, start) = Tuner::new(
            &setup(TunerMode::Frozen, dir.path()),
            configured(),
            2,
            50,
            c,
        )
        .unwrap();
        assert!(
            drive(&mut t, c, 400).is_empty(),
            "a frozen tuner applied a setting"
        );
        drop(t);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            saved,
            "the policy file changed"
        );
        assert_eq!(
            std::fs::read(dir.path().join(files::CHANGES)).unwrap(),
            changes
        );
        // It applied the saved setting once, at start, and reports it.
        assert_eq!(c.tuner.state.load(Relaxed), TunerState::Frozen as u64);
        assert_eq!(
            c.tuner.knob(Knob::BatchMax).value.get(),
            start.batch_max as f64
        );
    }

    #[test]
    fn a_corrupt_or_foreign_policy_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let c: &'static RuntimeCounters = telemetry::SharedRegion::private();
        std::fs::write(dir.path().join(files::POLICY), "{\"saved_unix_ms\":1,\"kn").unwrap();
        let (t, start) =
            Tuner::new(&setup(TunerMode::Learn, dir.path()), configured(), 2, 50, c).unwrap();
        assert_eq!(start, configured());
        assert_eq!(t.learner.windows(), 0);
        assert_eq!(c.tuner.policy_rejected.load(Relaxed), 1);
        assert!(dir.path().join("policy.json.rejected").exists());
        drop(t);
        // A policy for other configured values (another lattice) is refused too.
        let other = Knobs {
            batch_max: 32,
            ..configured()
        };
        let (t, start) = Tuner::new(&setup(TunerMode::Learn, dir.path()), other, 2, 50, c).unwrap();
        assert_eq!(start, other);
        assert_eq!(t.learner.windows(), 0);
        assert_eq!(c.tuner.policy_rejected.load(Relaxed), 2);
    }

    #[test]
    fn off_builds_nothing_and_touches_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let c: &'static RuntimeCounters = telemetry::SharedRegion::private();
        assert!(Tuner::new(&setup(TunerMode::Off, dir.path()), configured(), 2, 50, c).is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(c.tuner.knob(Knob::AdmitBurst).value.get(), 64.0);
    }
}
