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
    let ix =
        solana_system_interface::instruction::transfer(&payer.pubkey(), &Pubkey::new_unique(), 1);
    let tx = solana_transaction::Transaction::new(
        &[payer],
        solana_message::Message::new(&[ix], Some(&payer.pubkey())),
        solana_hash::Hash::default(),
    );
    t.sanitized = solana_transaction::sanitized::SanitizedTransaction::try_from_legacy_transaction(
        tx,
        &Default::default(),
    )
    .unwrap();
    t.budget.limits.compute_unit_limit = cu;
    t.app_key = payer.pubkey();
    t
}

fn config() -> SchedulerConfig {
    SchedulerConfig::default()
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
    let quiet_share = picks.iter().filter(|a| **a == quiet_app).count() as f64 / picks.len() as f64;
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
    let cfg = SchedulerConfig {
        app_weights: [(heavy.pubkey(), 3)].into(),
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
    let mut hot = Vec::new();
    s.hot_accounts(&mut hot);
    assert!(hot.is_empty(), "no island, no route");
    s.slot_closed(&mut q);
    let lane = s.island_lane(&mint).expect("island formed");
    // The island is published as a route, with its worker and its writers per slot.
    s.hot_accounts(&mut hot);
    assert_eq!(hot.len(), 1);
    assert_eq!(hot[0].key, mint.to_bytes());
    assert_eq!(hot[0].worker, s.islands().next().unwrap().worker);
    assert!(hot[0].writers > 0.0);
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
    hot.clear();
    s.hot_accounts(&mut hot);
    assert!(hot.is_empty(), "a dissolved island is no longer routed");
}

/// Optimistic batches never mix apps: one app's real conflicts cannot re-run another's
/// transactions or count against its re-execution rate.
#[test]
fn optimistic_batches_hold_one_app() {
    let (a, b) = (Keypair::new(), Keypair::new());
    let cfg = SchedulerConfig {
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
        let cfg = SchedulerConfig {
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

/// A stream of fresh writable keys cannot grow the heat map without bound, and the accounts
/// it keeps at a slot's close are the hottest: a real hotspot survives the junk.
#[test]
fn the_heat_map_is_bounded_and_keeps_the_hottest() {
    let payer = Keypair::new();
    let mut s = HotspotScheduler::new(config(), 2, 8, 400);
    let mut q = Sequencer::new(16, Eviction::LongestLane);
    let hot = Pubkey::new_unique();
    let mut tx = app_tx(0, &payer, vec![(hot, true)], 200_000);
    for _ in 0..200 {
        s.route(&mut tx);
    }
    // Junk warm enough not to be forgotten as cold on its own.
    tx.budget.limits.compute_unit_limit = 1_000_000;
    for round in 0..3 {
        for _ in 0..MAX_TRACKED_ACCOUNTS {
            tx.locks = vec![(Pubkey::new_unique(), true)];
            s.route(&mut tx);
            assert!(s.accounts.len() <= 2 * MAX_TRACKED_ACCOUNTS);
        }
        if round == 1 {
            assert_eq!(
                s.accounts.len(),
                2 * MAX_TRACKED_ACCOUNTS,
                "the junk was tracked"
            );
            s.slot_closed(&mut q);
            assert!(
                s.accounts.len() <= MAX_TRACKED_ACCOUNTS,
                "{}",
                s.accounts.len()
            );
            assert!(s.accounts.contains_key(&hot), "the hot account was evicted");
        }
    }
    s.slot_closed(&mut q);
    assert!(s.accounts.len() <= MAX_TRACKED_ACCOUNTS);
    assert!(s.accounts.contains_key(&hot));
}

/// A burst of junk apps fills the registry; once they go idle they are forgotten, and a real
/// app arriving later gets a lane of its own instead of the shared overflow.
#[test]
fn idle_apps_are_forgotten_so_later_apps_get_their_own_lane() {
    use crate::scheduler::apps::{MAX_TRACKED_APPS, OVERFLOW_APP};
    let payer = Keypair::new();
    let mut s = HotspotScheduler::new(config(), 2, 8, 400);
    let mut q = Sequencer::new(16, Eviction::LongestLane);
    let mut tx = app_tx(0, &payer, vec![(Pubkey::new_unique(), true)], 1_000);
    for _ in 0..MAX_TRACKED_APPS + 100 {
        tx.app_key = Pubkey::new_unique();
        s.route(&mut tx);
    }
    let late = Pubkey::new_unique();
    tx.app_key = late;
    s.route(&mut tx);
    assert_eq!(tx.app, OVERFLOW_APP, "the registry is full of junk");
    // The junk sends nothing more; its averages decay to nothing over some slots.
    for _ in 0..400 {
        s.slot_closed(&mut q);
    }
    tx.app_key = late;
    s.route(&mut tx);
    assert_ne!(
        tx.app, OVERFLOW_APP,
        "the late app still shares the overflow lane"
    );
    assert_eq!(s.app_state[tx.app as usize].key, late);
    assert_eq!(
        s.app_state[tx.app as usize].heat.demand_cu.get(),
        0.0,
        "fresh state"
    );
}

/// The scheduler finds an app's metrics row once its transactions execute (the bank claims
/// rows then, after the scheduler first saw the app), measures queue delay on the
/// transaction for the bank to count, and stops writing to a row that went to another app.
#[test]
fn app_metric_rows_follow_the_table() {
    use crate::metrics::{APP_ROW_MIN_IDLE_NS, Executed, MAX_APPS};
    let counters = telemetry::SharedRegion::private::<RuntimeCounters>();
    let mut s = HotspotScheduler::new(config(), 2, 8, 400).with_counters(counters);
    let mut q = Sequencer::new(1_000, Eviction::LongestLane);
    let app = Keypair::new();
    admit(&mut s, &mut q, app_tx(0, &app, vec![], 1_000));
    let batches = drive(&mut s, &mut q, 2, |_| true);
    let tx = &batches[0].txs[0];
    assert!(tx.queue_delay_us.get().is_some());
    assert!(s.app_metrics(tx.app).is_none(), "nothing executed yet");
    let executed = Executed {
        failed: false,
        compute_units: 1,
        latency_us: 1,
        queue_delay_us: tx.queue_delay_us.get(),
    };
    counters.apps.record(&app.pubkey(), &executed, 1);
    let row = s.app_metrics(tx.app).expect("a row once it executed");
    assert_eq!(row.program(), Some(app.pubkey()));
    assert_eq!(row.queue_delay.count(), 1);
    // The other rows fill and stay busy; the app's, idle the longest, goes to a new app.
    for _ in 1..MAX_APPS {
        counters.apps.record(&Pubkey::new_unique(), &executed, 2);
    }
    let later = 1 + APP_ROW_MIN_IDLE_NS;
    counters
        .apps
        .record(&Pubkey::new_unique(), &executed, later);
    assert_eq!(counters.apps.find(&app.pubkey()), None);
    assert!(s.app_metrics(tx.app).is_none());
    // The overflow app never has a row, whatever its placeholder key.
    assert!(s.app_metrics(OVERFLOW_APP).is_none());
}

/// The tuner's knobs take effect from the next pass: batch size, the caps (scaled from the
/// configured ones, never below one transaction's maximum), the island thresholds with them,
/// and the optimistic thresholds and back-off.
#[test]
fn retune_changes_batches_caps_and_thresholds() {
    let payer = Keypair::new();
    let mut s = HotspotScheduler::new(config(), 2, 64, 50);
    let mut q = Sequencer::new(100_000, Eviction::LongestLane);
    let base = s.limits();
    let configured = crate::tuner::Knobs::configured(&Default::default(), &config());
    s.retune(&configured);
    assert_eq!(s.limits(), base, "the configured values change nothing");
    for i in 0..400 {
        admit(
            &mut s,
            &mut q,
            app_tx(i, &payer, vec![(Pubkey::new_unique(), true)], 200),
        );
    }
    s.retune(&crate::tuner::Knobs {
        batch_max: 16,
        cu_scale: 0.5,
        island_enter: 0.5,
        optimistic_enter: 0.6,
        optimistic_backoff_slots: 200,
        ..configured
    });
    let batches = drive(&mut s, &mut q, 2, |b| b.len() >= 4);
    assert!(batches.iter().all(|b| b.txs.len() <= 16));
    assert!(batches.iter().any(|b| b.txs.len() == 16));
    assert_eq!(s.limits().block, base.block / 2);
    assert_eq!(s.islands.policy().enter_cu, 0.5 * s.limits().account as f64);
    assert!(s.islands.policy().exit_cu <= s.islands.policy().enter_cu);
    assert_eq!(s.cfg.optimistic_enter, 0.6);
    assert!(
        s.app_state
            .iter()
            .all(|a| (200..=200 * 64).contains(&a.backoff))
    );
    s.retune(&crate::tuner::Knobs {
        cu_scale: 0.01,
        ..configured
    });
    let l = s.limits();
    assert_eq!(l.account, crate::scheduler::budget::MAX_TX_CU);
    assert!(l.account <= l.block && l.app <= l.block);
    // Back to the configured values: exactly where it started.
    s.retune(&configured);
    assert_eq!(s.limits(), base);
    assert_eq!(
        s.islands.policy().exit_cu,
        config().island_exit * base.account as f64
    );
}
