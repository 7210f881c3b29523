//! `bench sequencing`: performance-based sequencing against today's fee per requested
//! compute unit, on the same transactions in the same run.
//!
//! In process (the runtime tiles fed signed transactions directly), hotspot scheduler, two
//! workers. Each run starts two fresh appliances, one per rule (`scheduler.priority =
//! "requested"`, then `"performance"`, the order alternating between runs); each gets the same
//! mix, signed with its own blockhash, sent at 1.5× the capacity measured on the mix for
//! `--seconds`, then drained. The classes:
//! - SPL Token lane: `honest`, a transfer asking for 6,000 CU (what a wallet sets after
//!   simulating); `padded`, the same transfer asking for 200,000 CU and paying the same total
//!   fee; `heavy`, three transfers in one transaction asking for the same 200,000 CU at the
//!   same fee (three times the work: against `padded`, the cheap one, it shows whether cheap
//!   lands sooner); `low`, the honest transfer at an eighth of the priority fee (priced out);
//! - Memo lane: `memo`, a 24-byte memo with the default limit at the same fee (another app:
//!   the hotspot scheduler shares execution between the lanes whatever the rule).
//!
//! Every fee is jittered by the same deterministic ±25% so that priorities are spread (a
//! threshold inside a class of identical bids promises nothing to half of it).
//!
//! Latency is sent → its slot published at processed commitment, in slots (50 ms). Fees per
//! second of execution are what the transactions that landed *during the send window* paid,
//! over the workers' execution time in the window: what the appliance earned for the
//! execution it spent while congested. The starvation bound is read from the appliance's own
//! counters: transactions given a deadline (they paid above the inclusion threshold), how many
//! ran later than the slot after it, and the worst lateness.

use crate::harness::Appliance;
use crate::workload::{leak, sign_all, signature};
use crate::{Report, Rows, median, percentile, spl};
use clap::Args;
use runtime::scheduler::SchedulerConfig;
use runtime::sequencing::PriorityRule;
use solana_hash::Hash;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::Transaction;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct SequencingArgs {
    /// Runs (each: both rules on fresh appliances); figures are medians over runs.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Seconds each arm sends for.
    #[arg(long, default_value_t = 4.0)]
    pub seconds: f64,
    /// Offered load over the measured capacity.
    #[arg(long, default_value_t = 1.5)]
    pub overload: f64,
    /// Transactions of the capacity measurement.
    #[arg(long, default_value_t = 12_000)]
    pub capacity_txs: usize,
    #[arg(long)]
    pub json: bool,
}

const WORKERS: usize = 2;
const POOL: usize = 1024;
const LAMPORTS: u64 = 1_000_000_000_000;
/// Priority fee of every class but `low` (lamports); `low` pays an eighth.
const PRIORITY_FEE: u64 = 6_000;
const SLOT_MS: f64 = 50.0;
/// How long the bench waits for the backlog to drain after sending.
const DRAIN: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Honest,
    Padded,
    Heavy,
    Low,
    Memo,
}

const CLASSES: [Class; 5] = [
    Class::Honest,
    Class::Padded,
    Class::Heavy,
    Class::Low,
    Class::Memo,
];

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Honest => "honest",
            Class::Padded => "padded",
            Class::Heavy => "heavy",
            Class::Memo => "memo",
            Class::Low => "low",
        }
    }
}

/// Who sends what: token owners (each with one source account), memo payers.
struct Cast {
    funder: Keypair,
    mint: Keypair,
    authority: Keypair,
    owners: Vec<Keypair>,
    sources: Vec<Keypair>,
    memo_payers: Vec<Keypair>,
}

impl Cast {
    fn new() -> Self {
        let keys = |n| (0..n).map(|_| Keypair::new()).collect::<Vec<_>>();
        Self {
            funder: Keypair::new(),
            mint: Keypair::new(),
            authority: Keypair::new(),
            owners: keys(POOL),
            sources: keys(POOL),
            memo_payers: keys(POOL),
        }
    }

    fn genesis(&self) -> Vec<(Pubkey, u64)> {
        std::iter::once(&self.funder)
            .chain(&self.owners)
            .chain(&self.memo_payers)
            .map(|k| (k.pubkey(), LAMPORTS))
            .collect()
    }

    fn setup(&self, bh: Hash) -> Vec<Transaction> {
        let fk = self.funder.pubkey();
        let mint = self.mint.pubkey();
        let mut txs = vec![Transaction::new(
            &[&self.funder, &self.mint],
            Message::new(
                &[
                    spl::create(&fk, &mint, spl::MINT_LEN),
                    spl::initialize_mint2(&mint, &self.authority.pubkey(), 0),
                ],
                Some(&fk),
            ),
            bh,
        )];
        for (owner, src) in self.owners.iter().zip(&self.sources) {
            let (o, s) = (owner.pubkey(), src.pubkey());
            txs.push(Transaction::new(
                &[owner, src, &self.authority],
                Message::new(
                    &[
                        spl::create(&o, &s, spl::ACCOUNT_LEN),
                        spl::initialize_account3(&s, &mint, &o),
                        spl::mint_to(&mint, &s, &self.authority.pubkey(), 1 << 40),
                    ],
                    Some(&o),
                ),
                bh,
            ));
        }
        txs
    }

    /// The `i`-th transaction, of class `CLASSES[i % 5]`; unique by amount or memo text.
    fn tx(&self, i: usize, bh: Hash) -> Transaction {
        let class = CLASSES[i % CLASSES.len()];
        let n = i / CLASSES.len();
        let fee = jittered(PRIORITY_FEE, i);
        let transfer = |limit: u32, fee: u64, transfers: u64| {
            let owner = &self.owners[n % POOL];
            let mut ixs = vec![spl::cu_limit(limit), cu_price(fee, limit)];
            for t in 1..=transfers {
                ixs.push(spl::transfer(
                    &self.sources[n % POOL].pubkey(),
                    &self.sources[(n + t as usize) % POOL].pubkey(),
                    &owner.pubkey(),
                    t + i as u64,
                ));
            }
            Transaction::new(&[owner], Message::new(&ixs, Some(&owner.pubkey())), bh)
        };
        match class {
            Class::Honest => transfer(6_000, fee, 1),
            Class::Padded => transfer(200_000, fee, 1),
            Class::Heavy => transfer(200_000, fee, 3),
            Class::Low => transfer(6_000, fee / 8, 1),
            Class::Memo => {
                let payer = &self.memo_payers[n % POOL];
                let ixs = [cu_price(fee, 200_000), spl::memo(&format!("{i:0>24}"))];
                Transaction::new(&[payer], Message::new(&ixs, Some(&payer.pubkey())), bh)
            }
        }
    }
}

/// `fee` times a factor in [0.75, 1.25) fixed by `i` (a Weyl sequence: evenly spread).
fn jittered(fee: u64, i: usize) -> u64 {
    let u = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    let f = 0.75 + 0.5 * (u as f64 / (1u64 << 53) as f64);
    (fee as f64 * f) as u64
}

/// SetComputeUnitPrice such that a limit of `units` pays `fee` lamports of priority fee.
fn cu_price(fee: u64, units: u32) -> Instruction {
    let micro = fee * 1_000_000 / u64::from(units);
    let mut data = vec![3];
    data.extend_from_slice(&micro.to_le_bytes());
    Instruction::new_with_bytes(solana_sdk_ids::compute_budget::ID, &data, Vec::new())
}

fn scheduler(rule: PriorityRule) -> SchedulerConfig {
    SchedulerConfig {
        priority: rule,
        ..SchedulerConfig::default()
    }
}

/// A fresh appliance with the cast's accounts set up.
fn appliance(cast: &Cast, rule: PriorityRule) -> anyhow::Result<Appliance> {
    let a = Appliance::start(scheduler(rule), WORKERS, cast.genesis())?;
    let setup = cast.setup(a.blockhash());
    let wire: Vec<Vec<u8>> = setup
        .iter()
        .map(|t| bincode::serialize(t).expect("serializes"))
        .collect();
    let sigs: Vec<Signature> = setup.iter().map(|t| t.signatures[0]).collect();
    a.setup(&wire, &sigs)?;
    Ok(a)
}

/// When each slot was seen published at processed commitment.
struct Published {
    seen: u64,
    at: HashMap<u64, u64>,
}

impl Published {
    fn new(seen: u64) -> Self {
        Self {
            seen,
            at: HashMap::new(),
        }
    }

    fn poll(&mut self, a: &Appliance) {
        let now = a.rt.chain.processed_slot();
        let t = dataplane::monotonic_ns();
        for s in self.seen + 1..=now {
            self.at.insert(s, t);
        }
        self.seen = self.seen.max(now);
    }
}

/// What one arm measured.
#[derive(Debug, Default, Clone)]
struct Arm {
    /// Per class: sent → processed, slots, of the landed ones; landed fraction.
    p50: [f64; 5],
    p99: [f64; 5],
    landed: [f64; 5],
    /// Mean CU consumed per class.
    cu: [f64; 5],
    /// Worst wait of a landed transaction outside the `low` class, slots.
    max_wait_slots: f64,
    /// Sent, outside the `low` class, never landed.
    starved: u64,
    fees_per_exec_s: f64,
    /// Fees of what landed in the send window over the window's wall time.
    fees_per_s: f64,
    /// The workers' execution time in the window over the window's wall time × workers.
    busy_pct: f64,
    promoted: u64,
    cu_error_mean: f64,
    /// The appliance's deadline accounting (Performance): dispatched with a deadline, of them
    /// later than the slot after it, and the worst lateness past the deadline.
    deadline_txs: u64,
    deadline_missed: u64,
    deadline_late_max: u64,
    /// The learnt fixed work per transaction, CU equivalents.
    overhead_cu: u64,
}

fn run_arm(
    cast: &Cast,
    rule: PriorityRule,
    rate: f64,
    args: &SequencingArgs,
) -> anyhow::Result<Arm> {
    let a = appliance(cast, rule)?;
    // Teach the model what each class costs (both arms get the same warm-up).
    let bh = a.blockhash();
    let warm = sign_all(CLASSES.len() * 40, |i| cast.tx(10_000_000 + i, bh));
    a.burst(&warm)?;
    let bh = a.blockhash();
    let n = ((rate * args.seconds) as usize).max(CLASSES.len());
    let wire = sign_all(n, |i| cast.tx(i, bh));
    let c = a.counters;
    let exec0 = c.exec_ns.load(Ordering::Relaxed);
    let promoted0 = c.sequencing_promoted.load(Ordering::Relaxed);
    let deadline0 = c.sequencing_deadline_dispatched.load(Ordering::Relaxed);
    let missed0 = c.sequencing_deadline_missed.load(Ordering::Relaxed);
    let mut published = Published::new(a.rt.chain.processed_slot());
    let start = Instant::now();
    let mut sent_ns = vec![0u64; n];
    for (i, w) in wire.iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        while Instant::now() < due {
            published.poll(&a);
            std::hint::spin_loop();
        }
        sent_ns[i] = dataplane::monotonic_ns();
        anyhow::ensure!(a.send(w), "packet pool exhausted");
    }
    published.poll(&a);
    let window_end_slot = published.seen;
    let exec_window = c.exec_ns.load(Ordering::Relaxed) - exec0;
    let window_s = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline && c.sequencer_depth.load(Ordering::Relaxed) > 0 {
        published.poll(&a);
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(200));
    published.poll(&a);

    let mut waits: [Vec<u64>; 5] = Default::default();
    let mut cu: [Vec<u64>; 5] = Default::default();
    let mut sent = [0u64; 5];
    let mut fees_in_window = 0u64;
    let mut starved = 0;
    let mut max_wait = 0u64;
    for (i, w) in wire.iter().enumerate() {
        let k = i % CLASSES.len();
        sent[k] += 1;
        let Some(st) = a.rt.chain.status(&signature(w)) else {
            if CLASSES[k] != Class::Low {
                starved += 1;
            }
            continue;
        };
        if st.slot <= window_end_slot {
            fees_in_window += st.fee;
        }
        let at = published.at.get(&st.slot).copied().unwrap_or(sent_ns[i]);
        let slots = at.saturating_sub(sent_ns[i]) / 50_000_000;
        waits[k].push(at.saturating_sub(sent_ns[i]) / 1_000);
        cu[k].push(st.compute_units);
        if CLASSES[k] != Class::Low {
            max_wait = max_wait.max(slots);
        }
    }
    let mut arm = Arm {
        max_wait_slots: max_wait as f64,
        starved,
        fees_per_exec_s: fees_in_window as f64 / (exec_window.max(1) as f64 / 1e9),
        fees_per_s: fees_in_window as f64 / window_s,
        busy_pct: 100.0 * exec_window as f64 / 1e9 / (window_s * WORKERS as f64),
        promoted: c.sequencing_promoted.load(Ordering::Relaxed) - promoted0,
        cu_error_mean: c.sequencing_cu_estimate_error.load(Ordering::Relaxed) as f64
            / c.sequencing_cu_estimated.load(Ordering::Relaxed).max(1) as f64,
        deadline_txs: c.sequencing_deadline_dispatched.load(Ordering::Relaxed) - deadline0,
        deadline_missed: c.sequencing_deadline_missed.load(Ordering::Relaxed) - missed0,
        deadline_late_max: c.sequencing_deadline_late_max.load(Ordering::Relaxed),
        overhead_cu: c.sequencing_tx_overhead_cu.load(Ordering::Relaxed),
        ..Arm::default()
    };
    for k in 0..CLASSES.len() {
        let us_per_slot = SLOT_MS * 1_000.0;
        arm.p50[k] = percentile(&mut waits[k], 0.5) / us_per_slot;
        arm.p99[k] = percentile(&mut waits[k], 0.99) / us_per_slot;
        arm.landed[k] = waits[k].len() as f64 / sent[k].max(1) as f64;
        arm.cu[k] = cu[k].iter().sum::<u64>() as f64 / cu[k].len().max(1) as f64;
    }
    tracing::info!(?rule, ?arm, "sequencing arm");
    a.shutdown();
    Ok(arm)
}

/// Executed per second on the mix, bursted into a fresh appliance (today's rule).
fn capacity(cast: &Cast, args: &SequencingArgs) -> anyhow::Result<f64> {
    let a = appliance(cast, PriorityRule::Requested)?;
    let bh = a.blockhash();
    let wire = sign_all(args.capacity_txs, |i| cast.tx(20_000_000 + i, bh));
    let tps = a.burst(&wire)?;
    a.shutdown();
    Ok(tps)
}

pub fn run(args: &SequencingArgs) -> anyhow::Result<Report> {
    let cast = Cast::new();
    let cap = capacity(&cast, args)?;
    let rate = cap * args.overload;
    let rules = [PriorityRule::Requested, PriorityRule::Performance];
    let mut arms: [Vec<Arm>; 2] = Default::default();
    for run in 0..args.runs.max(1) {
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for r in order {
            arms[r].push(run_arm(&cast, rules[r], rate, args)?);
        }
    }
    let med = |r: usize, f: &dyn Fn(&Arm) -> f64| median(arms[r].iter().map(f).collect());
    let mut rows: Rows = vec![("capacity_tps", cap, "tx/s"), ("offered_tps", rate, "tx/s")];
    const ARMS: [&str; 2] = ["requested", "performance"];
    type Figure = (&'static str, fn(&Arm, usize) -> f64, &'static str);
    // Per class, then per arm: (row suffix, the figure, unit).
    const PER_CLASS: [Figure; 3] = [
        ("p50_slots", |a, k| a.p50[k], "slots"),
        ("p99_slots", |a, k| a.p99[k], "slots"),
        ("landed_pct", |a, k| a.landed[k] * 100.0, "%"),
    ];
    const PER_ARM: [Figure; 5] = [
        ("fees_per_exec_s", |a, _| a.fees_per_exec_s, "lamports/s"),
        ("fees_per_s", |a, _| a.fees_per_s, "lamports/s"),
        ("busy_pct", |a, _| a.busy_pct, "%"),
        ("max_wait_slots", |a, _| a.max_wait_slots, "slots"),
        ("starved", |a, _| a.starved as f64, "tx"),
    ];
    for (r, arm) in ARMS.iter().enumerate() {
        for (k, class) in CLASSES.iter().enumerate() {
            for (suffix, figure, unit) in PER_CLASS {
                let name = leak(format!("{arm}_{}_{suffix}", class.name()));
                rows.push((name, med(r, &|a| figure(a, k)), unit));
            }
        }
        for (suffix, figure, unit) in PER_ARM {
            rows.push((
                leak(format!("{arm}_{suffix}")),
                med(r, &|a| figure(a, 0)),
                unit,
            ));
        }
    }
    for (k, class) in CLASSES.iter().enumerate() {
        rows.push((
            leak(format!("{}_cu_mean", class.name())),
            med(1, &|a| a.cu[k]),
            "CU",
        ));
    }
    rows.extend([
        (
            "performance_deadline_txs",
            med(1, &|a| a.deadline_txs as f64),
            "tx",
        ),
        (
            "performance_deadline_missed",
            med(1, &|a| a.deadline_missed as f64),
            "tx",
        ),
        (
            "performance_deadline_late_max_slots",
            med(1, &|a| a.deadline_late_max as f64),
            "slots",
        ),
        (
            "tx_overhead_cu",
            med(1, &|a| a.overhead_cu as f64),
            "CU equivalents",
        ),
    ]);
    let per_run = |f: &dyn Fn(&Arm, &Arm) -> f64| {
        median(arms[0].iter().zip(&arms[1]).map(|(q, p)| f(q, p)).collect())
    };
    let idx = |c: Class| CLASSES.iter().position(|x| *x == c).expect("a class");
    // The cheap one of the same-request, same-fee pair is the single (padded) transfer.
    let (honest, padded, cheap, heavy) = (
        idx(Class::Honest),
        idx(Class::Padded),
        idx(Class::Padded),
        idx(Class::Heavy),
    );
    rows.extend([
        (
            "padded_vs_honest_p50_ratio",
            per_run(&|_, p| p.p50[padded] / p.p50[honest].max(0.01)),
            "x",
        ),
        (
            "cheap_vs_heavy_p50_ratio",
            per_run(&|_, p| p.p50[cheap] / p.p50[heavy].max(0.01)),
            "x",
        ),
        (
            "requested_cheap_vs_heavy_p50_ratio",
            per_run(&|q, _| q.p50[cheap] / q.p50[heavy].max(0.01)),
            "x",
        ),
        (
            "fees_per_exec_s_ratio",
            per_run(&|q, p| p.fees_per_exec_s / q.fees_per_exec_s.max(1.0)),
            "x",
        ),
        (
            "fees_per_s_ratio",
            per_run(&|q, p| p.fees_per_s / q.fees_per_s.max(1.0)),
            "x",
        ),
        ("promoted", med(1, &|a| a.promoted as f64), "tx"),
        (
            "cu_estimate_mean_abs_error",
            med(1, &|a| a.cu_error_mean),
            "CU",
        ),
    ]);
    Ok(rows.into())
}
