use super::*;
use crate::scheduler::budget::CuLimits;
use crate::scheduler::{Completion, LockScheduler, Scheduler};
use crate::sequencer::tests::fake_tx;
use crate::sequencer::{Eviction, Sequencer};
use ahash::HashMap;
use rand::{Rng, SeedableRng};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;

fn counters() -> &'static RuntimeCounters {
    Box::leak(Box::new(RuntimeCounters::new()))
}

fn config(rule: PriorityRule) -> SequencingConfig {
    SequencingConfig {
        rule,
        max_wait_slots: 4,
        contention_weight: 1.0,
        cold_read_cu: 2_400,
    }
}

/// A real transaction: a compute-unit limit of `limit`, then one instruction to `program`
/// with `data`.
fn sanitized(program: Pubkey, limit: u32, data: &[u8]) -> (Pubkey, SanitizedTransaction) {
    let payer = Keypair::new();
    let ixs = [
        solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_limit(limit),
        solana_instruction::Instruction::new_with_bytes(program, data, vec![]),
    ];
    let tx = solana_transaction::Transaction::new(
        &[&payer],
        solana_message::Message::new(&ixs, Some(&payer.pubkey())),
        solana_hash::Hash::default(),
    );
    let tx = SanitizedTransaction::try_from_legacy_transaction(tx, &Default::default())
        .expect("valid transaction");
    (payer.pubkey(), tx)
}

/// A queued transaction to `program` (tag `tag`), asking for `limit` CU and paying `fee`.
fn tx_to(id: u64, program: Pubkey, tag: u8, limit: u32, fee: u64) -> PreparedTx {
    let (payer, tx) = sanitized(program, limit, &[tag, 1, 2, 3]);
    let mut t = fake_tx(id, 0, vec![(payer, true)]);
    t.sanitized = tx;
    t.budget.limits.compute_unit_limit = limit;
    t.budget.signature_fee = fee;
    t.budget.priority_fee = 0;
    t
}

/// Estimate, then price (as the bank does around routing).
fn priced(s: &mut Sequencing, tx: &mut PreparedTx, pressure: f64, slot: u64) {
    s.estimate(tx);
    s.price(tx, pressure, slot);
}

fn learn(s: &mut Sequencing, program: Pubkey, tag: u8, cu: u64) {
    for _ in 0..10 {
        let mut t = tx_to(0, program, tag, 200_000, 5_000);
        priced(s, &mut t, 0.0, 0);
        let _ = s.executed(&t, cu, true);
    }
}

#[test]
fn the_shape_ignores_the_compute_budget_and_the_data_after_the_tag_but_not_its_length() {
    let p = Pubkey::new_unique();
    let a = shape_of(&tx_to(0, p, 3, 6_000, 1).sanitized);
    assert_eq!(a, shape_of(&tx_to(0, p, 3, 200_000, 9).sanitized));
    assert_ne!(a, shape_of(&tx_to(0, p, 4, 6_000, 1).sanitized));
    assert_ne!(
        a,
        shape_of(&tx_to(0, Pubkey::new_unique(), 3, 6_000, 1).sanitized)
    );
}

#[test]
fn padding_neither_wins_nor_loses_and_an_earlier_honest_one_goes_first() {
    let token = Pubkey::new_unique();
    let mut s = Sequencing::new(config(PriorityRule::Performance), counters());
    learn(&mut s, token, 3, 4_644);
    let mut honest = tx_to(1, token, 3, 6_000, 10_000);
    let mut padded = tx_to(2, token, 3, 200_000, 10_000);
    priced(&mut s, &mut honest, 0.0, 1);
    priced(&mut s, &mut padded, 0.0, 1);
    assert_eq!(honest.priority, padded.priority);
    assert_eq!(honest.priority, per_unit(10_000, 4_644.0));
    // In the queue, under both schedulers' order: the earlier arrival first.
    let mut q = Sequencer::new(10, Eviction::Global);
    let _ = q.push(honest);
    let _ = q.push(padded);
    let order: Vec<u64> = q.lane_iter(0).map(|(_, t)| t.packet.received_ns).collect();
    assert_eq!(order, vec![1, 2]);

    // Today's rule: the padded one ranks 33x lower for the same fee.
    let mut r = Sequencing::new(config(PriorityRule::Requested), counters());
    let mut honest = tx_to(1, token, 3, 6_000, 10_000);
    let mut padded = tx_to(2, token, 3, 200_000, 10_000);
    priced(&mut r, &mut honest, 0.0, 1);
    priced(&mut r, &mut padded, 0.0, 1);
    assert!(honest.priority > 30 * padded.priority);
}

#[test]
fn cheap_before_heavy_at_equal_fee_and_requested_ties_them() {
    let (memo, token) = (Pubkey::new_unique(), Pubkey::new_unique());
    let mut s = Sequencing::new(config(PriorityRule::Performance), counters());
    learn(&mut s, memo, 0, 300);
    learn(&mut s, token, 3, 4_644);
    let mut cheap = tx_to(1, memo, 0, 200_000, 10_000);
    let mut heavy = tx_to(2, token, 3, 200_000, 10_000);
    priced(&mut s, &mut cheap, 0.0, 1);
    priced(&mut s, &mut heavy, 0.0, 1);
    assert!(cheap.priority > 10 * heavy.priority);
    let mut r = Sequencing::new(config(PriorityRule::Requested), counters());
    priced(&mut r, &mut cheap, 0.0, 1);
    priced(&mut r, &mut heavy, 0.0, 1);
    assert_eq!(cheap.priority, heavy.priority);
}

#[test]
fn contention_and_cold_reads_cost_and_failures_teach_nothing() {
    let token = Pubkey::new_unique();
    let c = counters();
    let mut s = Sequencing::new(config(PriorityRule::Performance), c);
    learn(&mut s, token, 3, 1_000);
    let mut plain = tx_to(1, token, 3, 6_000, 10_000);
    priced(&mut s, &mut plain, 0.0, 1);
    let mut hot = tx_to(2, token, 3, 6_000, 10_000);
    priced(&mut s, &mut hot, 1.0, 1); // one account at ρ = 0.5: doubles the cost
    assert_eq!(hot.priority, per_unit(10_000, 2_000.0));
    let mut cold = tx_to(3, token, 3, 6_000, 10_000);
    cold.cold_reads = 2;
    priced(&mut s, &mut cold, 0.0, 1);
    assert_eq!(cold.priority, per_unit(10_000, 1_000.0 + 4_800.0));
    assert!(plain.priority > hot.priority && hot.priority > cold.priority);
    // A failure that stopped after 10 CU does not make the shape look cheap.
    for _ in 0..100 {
        let _ = s.executed(&plain, 10, false);
    }
    assert_eq!(s.cu_model().estimate(plain.shape, 6_000), 1_000);
    assert!(c.sequencing_cu_estimated.load(Ordering::Relaxed) > 0);
    // The caps reserve the estimate; a transaction that overruns it, even failing, ends that.
    assert_eq!(plain.reserved_cu(), 1_000);
    assert_eq!(s.executed(&plain, 5_900, false), Some(plain.shape));
    assert_eq!(c.sequencing_cu_overruns.load(Ordering::Relaxed), 1);
    let mut again = tx_to(4, token, 3, 6_000, 10_000);
    priced(&mut s, &mut again, 0.0, 1);
    assert_eq!(
        (again.reserved_cu(), again.priority),
        (6_000, per_unit(10_000, 6_000.0))
    );
}

/// Within one price bucket (an eighth of an octave) of `p`, at or above it.
fn near(tau: u64, p: u64) -> bool {
    tau >= p && tau < p + p / 8 + 1
}

#[test]
fn price_buckets_are_ordered_and_cover_every_priority() {
    let probes = (0..64).chain((6..64).flat_map(|s| [(1u64 << s) - 1, 1 << s, (1 << s) + 7]));
    for p in probes {
        let b = bucket(p);
        assert!(bucket_floor(b) <= p && p <= bucket_ceiling(b), "{p} in {b}");
    }
    assert_eq!(bucket_ceiling(bucket(u64::MAX)), u64::MAX);
    assert!(bucket(1_000) < bucket(1_200));
}

#[test]
fn the_threshold_is_the_highest_clearing_price_of_recent_slots() {
    let mut t = InclusionThreshold::default();
    for p in [500, 100, 900] {
        t.arrived(p, 1_000);
    }
    t.executed(2_000);
    t.roll(true);
    assert!(
        near(t.get(), 500),
        "the top two arrivals fill what executed: {}",
        t.get()
    );
    t.arrived(300, 1_000);
    t.executed(5_000);
    t.roll(false); // the queue emptied: nothing was priced out
    assert!(near(t.get(), 500), "the highest of the recent slots");
    for _ in 0..THRESHOLD_SLOTS {
        t.arrived(700, 100); // every arrival fits: just under the lowest one's bucket
        t.executed(5_000);
        t.roll(true);
    }
    assert!(
        t.get() < 700 && t.get() > 600,
        "the 500 slot has rolled out: {}",
        t.get()
    );
    t.roll(true); // backlog, nothing executed: unchanged
    assert!(t.get() < 700 && t.get() > 600);
    for _ in 0..THRESHOLD_SLOTS {
        t.roll(false);
    }
    assert_eq!(t.get(), 0, "calm for long enough: no threshold");
}

/// A flood of queued low bids early in a slot does not hide the high bids that follow (the
/// histogram keeps every arrival).
#[test]
fn a_flood_of_low_bids_does_not_lower_the_threshold() {
    let mut t = InclusionThreshold::default();
    for _ in 0..200_000 {
        t.arrived(10, 1_000);
    }
    for _ in 0..100 {
        t.arrived(50_000, 1_000);
    }
    t.executed(50_000); // 50 of the high bids' worth
    t.roll(true);
    assert!(near(t.get(), 50_000), "{}", t.get());
}

/// One slot of a single worker under a block cap of `per_slot` transactions of 1,000 CU:
/// schedule until the cap stops it, record what ran when.
fn run_slot(
    q: &mut Sequencer,
    sched: &mut LockScheduler,
    s: &mut Sequencing,
    slot: u64,
    ran: &mut HashMap<u64, u64>,
) {
    loop {
        let mut out = Vec::new();
        sched.schedule(q, &[0], &mut out);
        if out.iter().all(|b| b.txs.is_empty()) {
            break;
        }
        for b in out {
            for t in &b.txs {
                s.dispatched(t, slot);
                let _ = s.executed(t, 1_000, true);
                ran.insert(t.packet.received_ns, slot);
            }
            let cu = vec![1_000; b.txs.len()];
            sched.complete(&Completion {
                worker: b.worker,
                batch: b.id,
                compute_units: &cu,
                real_writes: &[],
            });
        }
    }
    sched.slot_closed(q);
    s.slot_closed(q, slot);
}

fn capped(per_slot: u64) -> LockScheduler {
    LockScheduler::new(1, 8).with_cu_caps(CuLimits {
        block: per_slot * 1_000,
        account: u64::MAX,
        app: u64::MAX,
    })
}

fn queued(s: &mut Sequencing, id: u64, fee: u64, slot: u64) -> PreparedTx {
    let mut t = fake_tx(id, fee, vec![(Pubkey::new_unique(), true)]);
    t.blockhash_slot = slot;
    priced(s, &mut t, 0.0, slot);
    s.queued(t.priority, t.reserved_cu());
    t
}

/// A transaction admitted while the queue was calm, then outbid every slot by a surge twice
/// the slot's capacity: today's rule leaves it waiting; the performance rule runs it by its
/// deadline's next slot.
#[test]
fn a_surge_does_not_starve_a_transaction_above_the_threshold() {
    for rule in [PriorityRule::Performance, PriorityRule::Requested] {
        let mut s = Sequencing::new(config(rule), counters());
        let mut q = Sequencer::new(10_000, Eviction::Global);
        let mut sched = capped(10);
        let mut ran = HashMap::default();
        let probe = queued(&mut s, 0, 1_000, 1);
        let admitted = 1;
        assert_eq!(
            probe.deadline_slot == admitted + 4,
            rule == PriorityRule::Performance
        );
        let _ = q.push(probe);
        let mut id = 1;
        for slot in admitted..admitted + 20 {
            for _ in 0..20 {
                let _ = q.push(queued(&mut s, id, 50_000, slot));
                id += 1;
            }
            run_slot(&mut q, &mut sched, &mut s, slot, &mut ran);
        }
        match rule {
            PriorityRule::Performance => {
                let at = ran[&0];
                assert!(at <= admitted + 4 + 1, "ran at {at}");
            }
            PriorityRule::Requested => assert!(!ran.contains_key(&0)),
        }
    }
}

/// Random fees, surges at 1.5x capacity: every transaction given a deadline (it paid above the
/// clearing price) runs by the slot after it.
#[test]
fn every_transaction_given_a_deadline_runs_by_the_bound_under_random_surges() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    let mut s = Sequencing::new(config(PriorityRule::Performance), counters());
    let mut q = Sequencer::new(100_000, Eviction::Global);
    let mut sched = capped(20);
    let mut ran = HashMap::default();
    let mut deadlines = Vec::new();
    let mut id = 0;
    for slot in 1..200u64 {
        let arrivals = if (slot / 25) % 2 == 0 { 10 } else { 30 };
        for _ in 0..arrivals {
            let t = queued(&mut s, id, rng.gen_range(1_000..100_000), slot);
            if t.deadline_slot != u64::MAX {
                deadlines.push((id, t.deadline_slot));
            }
            let _ = q.push(t);
            id += 1;
        }
        run_slot(&mut q, &mut sched, &mut s, slot, &mut ran);
    }
    assert!(deadlines.len() > 1_000, "{}", deadlines.len());
    let promoted = s.counters.sequencing_promoted.load(Ordering::Relaxed);
    assert!(promoted > 0, "the surge must test promotion");
    // Lateness past the deadline slot, of every transaction that had one and a full run after.
    let late: Vec<u64> = deadlines
        .iter()
        .filter(|(_, d)| d + 8 < 199)
        .map(|(id, d)| ran.get(id).map_or(u64::MAX, |at| at.saturating_sub(*d)))
        .collect();
    let on_time = late.iter().filter(|&&l| l <= 1).count();
    // Arrivals above the clearing price are no more work than a slot executes, and overdue
    // transactions go before newcomers: none is later than the slot after its deadline.
    assert_eq!(on_time, late.len(), "worst {:?}", late.iter().max());
    let c = s.counters;
    assert_eq!(c.sequencing_deadline_missed.load(Ordering::Relaxed), 0);
    assert!(c.sequencing_deadline_dispatched.load(Ordering::Relaxed) >= late.len() as u64);
}

/// The per-slot caps reserve the learnt estimate under the performance rule: a padded request
/// holds no block space from others (today's rule: it holds its whole request).
#[test]
fn the_caps_reserve_the_estimate_not_the_request() {
    let dispatched = |reserve: u64| {
        let mut q = Sequencer::new(100, Eviction::Global);
        let mut sched = LockScheduler::new(1, 64).with_cu_caps(CuLimits {
            block: 20_000,
            account: u64::MAX,
            app: u64::MAX,
        });
        for id in 0..10 {
            let mut t = fake_tx(id, 1_000, vec![(Pubkey::new_unique(), true)]);
            t.budget.limits.compute_unit_limit = 10_000;
            t.reserve_cu = Some(reserve);
            let _ = q.push(t);
        }
        let mut out = Vec::new();
        sched.schedule(&mut q, &[0], &mut out);
        out.iter().map(|b| b.txs.len()).sum::<usize>()
    };
    assert_eq!(
        dispatched(10_000),
        2,
        "requested: two 10k reservations fill 20k"
    );
    assert_eq!(dispatched(1_000), 10, "estimated at 1k: all ten fit");
}

/// An overrun makes the queued transactions of the shape reserve their request again.
#[test]
fn an_overrun_restores_the_queued_reservations_of_its_shape() {
    let token = Pubkey::new_unique();
    let mut s = Sequencing::new(config(PriorityRule::Performance), counters());
    learn(&mut s, token, 3, 300);
    let mut q = Sequencer::new(100, Eviction::Global);
    let mut running = tx_to(0, token, 3, 200_000, 10_000);
    priced(&mut s, &mut running, 0.0, 1);
    assert_eq!(running.reserved_cu(), 300);
    for id in 1..5 {
        let mut t = tx_to(id, token, 3, 200_000, 10_000);
        priced(&mut s, &mut t, 0.0, 1);
        let _ = q.push(t);
    }
    let other = tx_to(9, Pubkey::new_unique(), 3, 200_000, 10_000);
    let _ = q.push(other);
    let shape = s.executed(&running, 150_000, true).expect("an overrun");
    assert_eq!(q.reserve_requested(shape), 4);
    for (_, t) in q.lane_iter(0) {
        assert_eq!(t.reserved_cu(), 200_000);
    }
}
