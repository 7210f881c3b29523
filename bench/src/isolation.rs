//! `bench isolation`: apps isolated from each other under load.
//!
//! Four apps share one appliance (2 SVM workers, 50 ms slots, the runtime fed signed
//! transactions directly): System transfers, SPL Token transfers, SPL Token mint_to on one
//! shared mint (every transaction writes the mint), Memo. Phase A: each at `--rate`. Phase B:
//! the mint_to app floods at `--flood` × its rate. Per app: executed throughput, p99 latency
//! from send to processed commitment (what a client sees) and p99 from receipt to execution,
//! drops, in each phase, with the hotspot scheduler and the plain lock scheduler in the same
//! run. Then two burst workloads: uncontended Memo transactions from distinct payers on 1 and
//! 2 workers (`scaling_2w`: 48-byte memos; also 512-byte ones), and Memo transactions that
//! declare ten accounts writable and write one, pessimistic-only against hybrid
//! (`hybrid_gain`).

use super::harness::Appliance;
use super::{Rows, median, percentile, spl};
use anyhow::Context;
use runtime::scheduler::apps::{AppGrouping, AppRule};
use runtime::scheduler::hotspot::Concurrency;
use runtime::scheduler::{SchedulerChoice, SchedulerConfig};
use solana_hash::Hash;
use solana_instruction::AccountMeta;
use solana_keypair::Keypair;
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::Transaction;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone)]
pub struct IsolationArgs {
    /// Runs; figures are medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Phase A rate of each app, transactions per second.
    #[arg(long, default_value_t = 3_000.0)]
    pub rate: f64,
    /// Phase B: the mint_to app's rate is this many times its phase A rate.
    #[arg(long, default_value_t = 10.0)]
    pub flood: f64,
    /// Transactions per scaling and hybrid measurement.
    #[arg(long, default_value_t = 20_000)]
    pub txs: usize,
    /// Only the scaling and hybrid measurements.
    #[arg(long)]
    pub no_phases: bool,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
}

const WORKERS: usize = 2;
/// Accounts per app pool: payers, token owners.
const POOL: usize = 1024;
const LAMPORTS: u64 = 1_000_000_000_000;
/// mint_to destinations (token accounts of the shared mint).
const MINT_DESTS: usize = 64;
/// Compute-unit limits the load sets, as a wallet would after simulating.
const CU_SYSTEM: u32 = 450;
const CU_TOKEN: u32 = 6_000;
const CU_MEMO: u32 = 1_500;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum App {
    System,
    Token,
    MintTo,
    Memo,
}

const APPS: [App; 4] = [App::System, App::Token, App::MintTo, App::Memo];

impl App {
    fn name(self) -> &'static str {
        match self {
            App::System => "system",
            App::Token => "token",
            App::MintTo => "mint_to",
            App::Memo => "memo",
        }
    }
}

/// Keys that stay the same across appliances in one bench.
struct Cast {
    funder: Keypair,
    system_payers: Vec<Keypair>,
    mint_payers: Vec<Keypair>,
    memo_payers: Vec<Keypair>,
    owners: Vec<Keypair>,
    sources: Vec<Keypair>,
    mint_a: Keypair,
    auth_a: Keypair,
    mint_b: Keypair,
    auth_b: Keypair,
    dests: Vec<Keypair>,
}

fn keys(n: usize) -> Vec<Keypair> {
    (0..n).map(|_| Keypair::new()).collect()
}

impl Cast {
    fn new() -> Self {
        Self {
            funder: Keypair::new(),
            system_payers: keys(POOL),
            mint_payers: keys(POOL),
            memo_payers: keys(POOL),
            owners: keys(POOL),
            sources: keys(POOL),
            mint_a: Keypair::new(),
            auth_a: Keypair::new(),
            mint_b: Keypair::new(),
            auth_b: Keypair::new(),
            dests: keys(MINT_DESTS),
        }
    }

    fn genesis(&self) -> Vec<(Pubkey, u64)> {
        std::iter::once(&self.funder)
            .chain(&self.system_payers)
            .chain(&self.mint_payers)
            .chain(&self.memo_payers)
            .chain(&self.owners)
            .map(|k| (k.pubkey(), LAMPORTS))
            .collect()
    }

    /// `kind`, with apps by top-level program. Token transfers and mint_to are both the token
    /// program's: the rule on the shared mint makes mint_to its own app.
    fn scheduler(&self, kind: SchedulerChoice) -> SchedulerConfig {
        SchedulerConfig {
            kind,
            app_grouping: AppGrouping::TopLevelProgram,
            apps: vec![AppRule {
                program: spl::TOKEN,
                account: self.mint_b.pubkey(),
            }],
            ..SchedulerConfig::default()
        }
    }

    fn app_key(&self, app: App) -> Pubkey {
        match app {
            App::System => solana_sdk_ids::system_program::ID,
            App::Token => spl::TOKEN,
            App::MintTo => self.mint_b.pubkey(),
            App::Memo => spl::MEMO,
        }
    }

    /// Mints, token accounts and balances.
    fn setup(&self, bh: Hash) -> Vec<Transaction> {
        let (f, fk) = (&self.funder, self.funder.pubkey());
        let mut txs = vec![Transaction::new(
            &[f, &self.mint_a, &self.mint_b],
            Message::new(
                &[
                    spl::create(&fk, &self.mint_a.pubkey(), spl::MINT_LEN),
                    spl::initialize_mint2(&self.mint_a.pubkey(), &self.auth_a.pubkey(), 0),
                    spl::create(&fk, &self.mint_b.pubkey(), spl::MINT_LEN),
                    spl::initialize_mint2(&self.mint_b.pubkey(), &self.auth_b.pubkey(), 0),
                ],
                Some(&fk),
            ),
            bh,
        )];
        for (owner, src) in self.owners.iter().zip(&self.sources) {
            let (o, s) = (owner.pubkey(), src.pubkey());
            txs.push(Transaction::new(
                &[owner, src, &self.auth_a],
                Message::new(
                    &[
                        spl::create(&o, &s, spl::ACCOUNT_LEN),
                        spl::initialize_account3(&s, &self.mint_a.pubkey(), &o),
                        spl::mint_to(&self.mint_a.pubkey(), &s, &self.auth_a.pubkey(), 1 << 40),
                    ],
                    Some(&o),
                ),
                bh,
            ));
        }
        for d in &self.dests {
            txs.push(Transaction::new(
                &[f, d],
                Message::new(
                    &[
                        spl::create(&fk, &d.pubkey(), spl::ACCOUNT_LEN),
                        spl::initialize_account3(
                            &d.pubkey(),
                            &self.mint_b.pubkey(),
                            &self.auth_b.pubkey(),
                        ),
                    ],
                    Some(&fk),
                ),
                bh,
            ));
        }
        txs
    }

    /// The `i`-th transaction of `app`: unique (amounts and memo text carry `i`).
    fn tx(&self, app: App, i: usize, bh: Hash) -> Transaction {
        let n = i as u64;
        match app {
            App::System => {
                let from = &self.system_payers[i % POOL];
                let to = self.system_payers[(i + 1) % POOL].pubkey();
                let ixs = [
                    spl::cu_limit(CU_SYSTEM),
                    solana_system_interface::instruction::transfer(&from.pubkey(), &to, 1 + n),
                ];
                Transaction::new(&[from], Message::new(&ixs, Some(&from.pubkey())), bh)
            }
            App::Token => {
                let owner = &self.owners[i % POOL];
                let to = self.sources[(i + 1) % POOL].pubkey();
                let ixs = [
                    spl::cu_limit(CU_TOKEN),
                    spl::transfer(
                        &self.sources[i % POOL].pubkey(),
                        &to,
                        &owner.pubkey(),
                        1 + n,
                    ),
                ];
                Transaction::new(&[owner], Message::new(&ixs, Some(&owner.pubkey())), bh)
            }
            App::MintTo => {
                let payer = &self.mint_payers[i % POOL];
                let ixs = [
                    spl::cu_limit(CU_TOKEN),
                    spl::mint_to(
                        &self.mint_b.pubkey(),
                        &self.dests[i % MINT_DESTS].pubkey(),
                        &self.auth_b.pubkey(),
                        1 + n,
                    ),
                ];
                Transaction::new(
                    &[payer, &self.auth_b],
                    Message::new(&ixs, Some(&payer.pubkey())),
                    bh,
                )
            }
            App::Memo => {
                let payer = &self.memo_payers[i % POOL];
                let ixs = [
                    spl::cu_limit(CU_MEMO),
                    spl::memo(&format!("gigacompute isolation bench memo number {i:>10}")),
                ];
                Transaction::new(&[payer], Message::new(&ixs, Some(&payer.pubkey())), bh)
            }
        }
    }
}

/// Sign `n` transactions on every core.
fn sign_all(n: usize, make: impl Fn(usize) -> Transaction + Sync) -> Vec<Vec<u8>> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let make = &make;
        let parts: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                s.spawn(move || {
                    (start..(start + chunk).min(n))
                        .map(|i| bincode::serialize(&make(i)).expect("serializes"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("signer thread"))
            .collect()
    })
}

#[derive(Clone, Copy, Default, Debug)]
struct AppFigures {
    /// Executed per second in the window.
    tps: f64,
    /// Sent → its slot published at processed commitment (what a client polling for the
    /// status sees), p99 over the transactions sent in the window; one never processed counts
    /// as `STRAGGLER_WAIT`.
    p99_us: f64,
    /// Received by the bank → executed by a worker, p99.
    exec_p99_us: f64,
    /// Dropped by the runtime in the window (any reason).
    dropped: u64,
}

/// 120 of the 150 slots a blockhash is valid for, at the appliance's 50 ms.
const BLOCKHASH_BUDGET: Duration = Duration::from_secs(6);

/// How long after a phase its last transactions may still be processed.
const STRAGGLER_WAIT: Duration = Duration::from_secs(3);

/// Per app, in `APPS` order.
type PhaseFigures = [AppFigures; 4];

/// When each slot reached processed commitment, polled.
struct SlotClock {
    seen: u64,
    at: std::collections::BTreeMap<u64, u64>,
}

impl SlotClock {
    fn new(a: &Appliance) -> Self {
        Self {
            seen: a.rt.chain.processed_slot(),
            at: Default::default(),
        }
    }

    fn poll(&mut self, a: &Appliance) {
        let now = a.rt.chain.processed_slot();
        if now > self.seen {
            let t = dataplane::monotonic_ns();
            for s in self.seen + 1..=now {
                self.at.insert(s, t);
            }
            self.seen = now;
        }
    }
}

fn signature(wire: &[u8]) -> Signature {
    // One signature count byte, then the first signature.
    Signature::from(<[u8; 64]>::try_from(&wire[1..65]).expect("a signed transaction"))
}

/// Send every app at its rate for `seconds` (after `warm` seconds not measured) and measure.
fn phase(
    a: &Appliance,
    cast: &Cast,
    rates: [f64; 4],
    warm: f64,
    seconds: f64,
    first: &mut [usize; 4],
) -> anyhow::Result<PhaseFigures> {
    let total = warm + seconds;
    let bh = a.blockhash();
    let signed_at = Instant::now();
    let wire: Vec<Vec<Vec<u8>>> = APPS
        .iter()
        .enumerate()
        .map(|(k, app)| {
            let n = (rates[k] * total).ceil() as usize;
            let base = first[k];
            first[k] += n;
            sign_all(n, |i| cast.tx(*app, base + i, bh))
        })
        .collect();
    // Each app's metrics row, looked up when the measured window opens: an app gets its row
    // when its first transaction executes (in the warm-up at the latest).
    let mut slots: Vec<&runtime::metrics::AppSlot> = Vec::new();
    let mut clock = SlotClock::new(a);
    // (app, wire index, sent ns) of what was sent in the measured window.
    let mut measured: Vec<(usize, usize, u64)> = Vec::new();
    let mut sent = [0usize; 4];
    let mut not_sent = 0u64;
    let start = Instant::now();
    let mut window: Option<(Instant, [u64; 4])> = None;
    let mut drops_before: Vec<Vec<u64>> = Vec::new();
    loop {
        let t = start.elapsed().as_secs_f64();
        if t >= total {
            break;
        }
        clock.poll(a);
        if window.is_none() && t >= warm {
            slots = APPS
                .iter()
                .map(|app| {
                    let i = a.counters.apps.find(&cast.app_key(*app)).with_context(|| {
                        format!("{} executed nothing in the warm-up", app.name())
                    })?;
                    Ok(&a.counters.apps.slots[i])
                })
                .collect::<anyhow::Result<_>>()?;
            for s in &slots {
                s.latency.reset();
            }
            let counts = std::array::from_fn(|k| slots[k].transactions.load(Ordering::Relaxed));
            drops_before = slots
                .iter()
                .map(|s| s.drops.iter().map(|d| d.load(Ordering::Relaxed)).collect())
                .collect();
            window = Some((Instant::now(), counts));
        }
        for k in 0..4 {
            let due = ((rates[k] * t) as usize).min(wire[k].len());
            while sent[k] < due {
                if a.send(&wire[k][sent[k]]) {
                    if window.is_some() {
                        measured.push((k, sent[k], dataplane::monotonic_ns()));
                    }
                } else {
                    not_sent += 1;
                }
                sent[k] += 1;
            }
        }
        std::thread::sleep(Duration::from_micros(250));
    }
    // Signing (two signatures per mint_to) plus the phase must stay well inside the 150-slot
    // blockhash window, or late transactions are dropped for their blockhash, not by the
    // scheduler.
    let age = signed_at.elapsed();
    anyhow::ensure!(
        age < BLOCKHASH_BUDGET,
        "signing and sending took {age:?}, past the {BLOCKHASH_BUDGET:?} a blockhash is safe \
         for at 50 ms slots: lower --rate or --seconds"
    );
    let (t0, counts) = window.expect("the phase outlasts its warm-up");
    let drops = |s: &runtime::metrics::AppSlot| -> Vec<u64> {
        s.drops.iter().map(|d| d.load(Ordering::Relaxed)).collect()
    };
    let elapsed = t0.elapsed().as_secs_f64();
    let executed: [u64; 4] =
        std::array::from_fn(|k| slots[k].transactions.load(Ordering::Relaxed) - counts[k]);
    let exec_p99: [u64; 4] = std::array::from_fn(|k| slots[k].latency.quantile(0.99));
    let dropped: [u64; 4] = std::array::from_fn(|k| {
        let now = drops(slots[k]);
        let mut total = 0;
        for (i, (n, b)) in now.iter().zip(&drops_before[k]).enumerate() {
            if n > b {
                tracing::info!(
                    app = APPS[k].name(),
                    reason = runtime::metrics::RuntimeDrop::ALL[i].name(),
                    dropped = n - b,
                    "phase drops"
                );
                total += n - b;
            }
        }
        total
    });
    if not_sent > 0 {
        tracing::warn!(
            not_sent,
            "packet pool exhausted: some transactions were not sent"
        );
    }
    // Wait for the window's transactions to be processed (or give up on them).
    let deadline = Instant::now() + STRAGGLER_WAIT;
    let mut latencies: [Vec<u64>; 4] = Default::default();
    let mut pending = measured;
    while !pending.is_empty() {
        clock.poll(a);
        let timed_out = Instant::now() >= deadline;
        pending.retain(|(k, i, sent_ns)| {
            let processed =
                a.rt.chain
                    .status(&signature(&wire[*k][*i]))
                    .and_then(|st| clock.at.get(&st.slot).copied());
            match processed {
                Some(at) => latencies[*k].push(at.saturating_sub(*sent_ns) / 1_000),
                None if timed_out => {
                    latencies[*k].push(STRAGGLER_WAIT.as_micros() as u64);
                }
                None => return true,
            }
            false
        });
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(std::array::from_fn(|k| AppFigures {
        tps: executed[k] as f64 / elapsed,
        p99_us: percentile(&mut latencies[k], 0.99),
        exec_p99_us: exec_p99[k] as f64,
        dropped: dropped[k],
    }))
}

struct SchedulerRun {
    a: PhaseFigures,
    b: PhaseFigures,
}

impl SchedulerRun {
    /// Lowest phase-B/phase-A throughput over the apps that do not flood, and the highest
    /// p99 ratio.
    fn retained_and_p99(&self) -> (f64, f64) {
        let quiet = || (0..4).filter(|k| APPS[*k] != App::MintTo);
        let retained = quiet()
            .map(|k| self.b[k].tps / self.a[k].tps.max(1e-9))
            .fold(f64::INFINITY, f64::min);
        let p99 = quiet()
            .map(|k| self.b[k].p99_us / self.a[k].p99_us.max(1.0))
            .fold(0.0, f64::max);
        (retained, p99)
    }
}

fn isolation_run(
    args: &IsolationArgs,
    cast: &Cast,
    kind: SchedulerChoice,
) -> anyhow::Result<SchedulerRun> {
    let a = Appliance::start(cast.scheduler(kind), WORKERS, cast.genesis())?;
    let setup = cast.setup(a.blockhash());
    // The mints first: the token accounts' transactions read them.
    for stage in [&setup[..1], &setup[1..]] {
        let sigs: Vec<Signature> = stage.iter().map(|t| t.signatures[0]).collect();
        let wire: Vec<Vec<u8>> = stage
            .iter()
            .map(|t| bincode::serialize(t).expect("serializes"))
            .collect();
        a.setup(&wire, &sigs)?;
    }
    let mut first = [0usize; 4];
    let r = args.rate;
    let phase_a = phase(&a, cast, [r; 4], 1.0, args.seconds, &mut first)?;
    let mut rates = [r; 4];
    rates[2] = r * args.flood;
    let phase_b = phase(&a, cast, rates, 0.5, args.seconds, &mut first)?;
    a.shutdown();
    Ok(SchedulerRun {
        a: phase_a,
        b: phase_b,
    })
}

/// A Memo transaction of `payer`, with `text`, declaring `shared` writable on its
/// compute-budget instruction (a no-op that ignores accounts): declared, never written.
fn memo_tx(payer: &Keypair, text: &str, shared: &[Pubkey], bh: Hash) -> Transaction {
    let mut budget = spl::cu_limit(CU_MEMO);
    budget
        .accounts
        .extend(shared.iter().map(|k| AccountMeta::new(*k, false)));
    let ixs = [budget, spl::memo(text)];
    Transaction::new(&[payer], Message::new(&ixs, Some(&payer.pubkey())), bh)
}

/// Memo text of about `len` bytes, unique by `i`.
fn memo_text(i: usize, len: usize) -> String {
    let mut t = format!("gigacompute bench memo {i:>10} ");
    while t.len() < len {
        t.push_str("the quick brown fox jumps over the lazy dog ");
    }
    t.truncate(len);
    t
}

/// `txs` Memo transactions from distinct payers, each declaring `shared` writable, sent in one
/// burst to an appliance with `workers` workers; executed per second.
fn memo_burst(
    txs: usize,
    memo_len: usize,
    shared: usize,
    workers: usize,
    concurrency: Concurrency,
) -> anyhow::Result<f64> {
    let payers = keys(txs);
    let shared: Vec<Pubkey> = (0..shared).map(|_| Pubkey::new_unique()).collect();
    let genesis = payers
        .iter()
        .map(|k| (k.pubkey(), LAMPORTS))
        .chain(shared.iter().map(|k| (*k, LAMPORTS)))
        .collect();
    let scheduler = SchedulerConfig {
        concurrency,
        ..SchedulerConfig::default()
    };
    let a = Appliance::start(scheduler, workers, genesis)?;
    let bh = a.blockhash();
    let wire = sign_all(txs, |i| {
        memo_tx(&payers[i], &memo_text(i, memo_len), &shared, bh)
    });
    let tps = a.burst(&wire)?;
    a.shutdown();
    Ok(tps)
}

/// Memo bytes of the short and the long uncontended workloads.
const SHORT_MEMO: usize = 48;
const LONG_MEMO: usize = 512;

/// Uncontended (distinct payers, nothing shared) on `workers` workers.
fn scaling(txs: usize, memo_len: usize, workers: usize) -> anyhow::Result<f64> {
    memo_burst(txs, memo_len, 0, workers, Concurrency::Hybrid)
}

/// Each transaction declares ten accounts writable (its payer and nine shared ones) and
/// writes one (the payer): every pair collides on declared locks, none on real writes.
fn declared_tenfold(txs: usize, concurrency: Concurrency) -> anyhow::Result<f64> {
    memo_burst(txs, LONG_MEMO, 9, WORKERS, concurrency)
}

pub fn run(args: &IsolationArgs) -> anyhow::Result<Rows> {
    let cast = Cast::new();
    let mut hot: Vec<SchedulerRun> = Vec::new();
    let mut plain: Vec<SchedulerRun> = Vec::new();
    let (mut long_one, mut long_two, mut pess, mut hybrid) = (vec![], vec![], vec![], vec![]);
    let (mut one, mut two) = (vec![], vec![]);
    for run in 0..args.runs.max(1) {
        // Alternate which goes first, so drift on a noisy machine does not favour one.
        let order = if run % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for hotspot in order.into_iter().filter(|_| !args.no_phases) {
            let kind = if hotspot {
                SchedulerChoice::Hotspot
            } else {
                SchedulerChoice::Lock
            };
            let r = isolation_run(args, &cast, kind)?;
            report_run(run, hotspot, &r);
            if hotspot { &mut hot } else { &mut plain }.push(r);
        }
        long_one.push(scaling(args.txs, LONG_MEMO, 1)?);
        long_two.push(scaling(args.txs, LONG_MEMO, 2)?);
        one.push(scaling(args.txs, SHORT_MEMO, 1)?);
        two.push(scaling(args.txs, SHORT_MEMO, 2)?);
        pess.push(declared_tenfold(args.txs, Concurrency::Pessimistic)?);
        hybrid.push(declared_tenfold(args.txs, Concurrency::Hybrid)?);
        tracing::info!(
            run,
            one_worker = one[run],
            two_workers = two[run],
            long_memo_one_worker = long_one[run],
            long_memo_two_workers = long_two[run],
            pessimistic = pess[run],
            hybrid = hybrid[run],
            "scaling and hybrid (tx/s)"
        );
    }
    let med = |runs: &[SchedulerRun], f: &dyn Fn(&SchedulerRun) -> f64| {
        median(runs.iter().map(f).collect())
    };
    let mut rows: Rows = Vec::new();
    for (runs, label) in [(&hot, "hotspot"), (&plain, "plain")] {
        for (k, app) in APPS.iter().enumerate() {
            let name = |what: &str| -> &'static str {
                Box::leak(format!("{label}_{}_{what}", app.name()).into_boxed_str())
            };
            rows.push((name("a_tps"), med(runs, &|r| r.a[k].tps), "tx/s"));
            rows.push((name("b_tps"), med(runs, &|r| r.b[k].tps), "tx/s"));
            rows.push((name("a_p99_us"), med(runs, &|r| r.a[k].p99_us), "us"));
            rows.push((name("b_p99_us"), med(runs, &|r| r.b[k].p99_us), "us"));
            rows.push((
                name("a_exec_p99_us"),
                med(runs, &|r| r.a[k].exec_p99_us),
                "us",
            ));
            rows.push((
                name("b_exec_p99_us"),
                med(runs, &|r| r.b[k].exec_p99_us),
                "us",
            ));
        }
    }
    rows.push((
        "retained_min",
        med(&hot, &|r| r.retained_and_p99().0),
        "ratio",
    ));
    rows.push((
        "p99_ratio_max",
        med(&hot, &|r| r.retained_and_p99().1),
        "ratio",
    ));
    rows.push((
        "plain_retained_min",
        med(&plain, &|r| r.retained_and_p99().0),
        "ratio",
    ));
    rows.push((
        "plain_p99_ratio_max",
        med(&plain, &|r| r.retained_and_p99().1),
        "ratio",
    ));
    let ratios = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
    // Short memos: the uncontended figure. Long memos (512 bytes, logged whole) make each
    // status bigger, so they load the bank and commit tiles more, not the workers.
    rows.push(("one_worker_tps", median(one.clone()), "tx/s"));
    rows.push(("two_workers_tps", median(two.clone()), "tx/s"));
    rows.push(("scaling_2w", ratios(&two, &one), "ratio"));
    rows.push(("long_memo_one_worker_tps", median(long_one.clone()), "tx/s"));
    rows.push((
        "long_memo_two_workers_tps",
        median(long_two.clone()),
        "tx/s",
    ));
    rows.push((
        "long_memo_scaling_2w",
        ratios(&long_two, &long_one),
        "ratio",
    ));
    rows.push(("pessimistic_tps", median(pess.clone()), "tx/s"));
    rows.push(("hybrid_tps", median(hybrid.clone()), "tx/s"));
    rows.push(("hybrid_gain", ratios(&hybrid, &pess), "ratio"));
    Ok(rows)
}

fn report_run(run: usize, hotspot: bool, r: &SchedulerRun) {
    let (retained, p99) = r.retained_and_p99();
    let per_app: Vec<String> = APPS
        .iter()
        .enumerate()
        .map(|(k, app)| {
            format!(
                "{} {:.0}/{:.0} tx/s p99 {:.1}/{:.1} ms exec p99 {:.2}/{:.2} ms dropped {}/{}",
                app.name(),
                r.a[k].tps,
                r.b[k].tps,
                r.a[k].p99_us / 1e3,
                r.b[k].p99_us / 1e3,
                r.a[k].exec_p99_us / 1e3,
                r.b[k].exec_p99_us / 1e3,
                r.a[k].dropped,
                r.b[k].dropped,
            )
        })
        .collect();
    tracing::info!(
        run,
        scheduler = if hotspot { "hotspot" } else { "lock" },
        retained,
        p99_ratio = p99,
        apps = %per_app.join("; "),
        "isolation run (A/B)"
    );
}
