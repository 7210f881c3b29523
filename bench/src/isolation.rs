//! `bench isolation`: apps isolated from each other under load.
//!
//! Four apps share one appliance (2 SVM workers, 50 ms slots, the runtime fed signed
//! transactions directly): System transfers, SPL Token transfers, SPL Token mint_to on one
//! shared mint (every transaction writes the mint), Memo. Phase A: each at `--rate`. Phase B:
//! the mint_to app floods at `--flood` × its rate. Per app: executed throughput (its
//! transactions in the slots published during the measured window, per second), p99 latency
//! from send to processed commitment (what a client sees) and p99 from receipt to execution,
//! in each phase, under four schedulers, order rotating from run to run:
//! - `norule`: the hotspot scheduler with no app rule: token transfers and mint_to are one app
//!   (the token program's); the scheduler has to find the hot mint by itself (an island).
//! - `hinted`: the hotspot scheduler with an app rule naming the flooding mint.
//! - `plain`: the plain lock scheduler (no compute-unit caps, looks 512 transactions ahead).
//! - `capped`: the lock scheduler with Agave's cost-tracker caps (block and per writable
//!   account, scaled to the slot) and Agave's greedy scheduler's scan depth.
//!
//! Then burst workloads: uncontended Memo transactions from distinct payers on 1 and 2 workers
//! (`scaling_2w`: 48-byte memos; also 512-byte ones), and Memo transactions that declare ten
//! accounts writable and write one: hybrid against pessimistic-only under the default caps,
//! against pessimistic with no caps, and against one worker running them serially with no caps.
//!
//! Every transaction the bench counts is found in a published slot: per-app figures come from
//! the slots' signatures, classified by what the bench sent, and the bench checks that they
//! add up to the slots' transaction counts.

use super::harness::Appliance;
use super::workload::{leak, sign_all, signature};
use super::{Line, Plot, Report, Rows, median, percentile, spl};
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
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone)]
pub struct IsolationArgs {
    /// Runs; figures are medians (ratios: medians of per-run ratios).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Seconds measured per phase (after a warm-up of 1 s in phase A, 0.5 s in phase B).
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Phase A rate of each app, transactions per second.
    #[arg(long, default_value_t = 3_000.0)]
    pub rate: f64,
    /// Phase B: the mint_to app's rate is this many times its phase A rate.
    #[arg(long, default_value_t = 10.0)]
    pub flood: f64,
    /// Transactions per scaling and hybrid measurement (plus a tenth as warm-up).
    #[arg(long, default_value_t = 20_000)]
    pub txs: usize,
    /// Only the scaling and hybrid measurements.
    #[arg(long)]
    pub no_phases: bool,
    /// The schedulers the phases run under (norule, hinted, plain, capped).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "norule,hinted,plain,capped"
    )]
    pub series: Vec<String>,
    /// Transactions the capped lock scheduler looks at per scheduling pass.
    #[arg(long, default_value_t = AGAVE_SCAN)]
    pub capped_lookahead: usize,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
}

/// The schedulers the phases run under.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Series {
    NoRule,
    Hinted,
    Plain,
    Capped,
}

impl Series {
    const ALL: [Series; 4] = [
        Series::NoRule,
        Series::Hinted,
        Series::Plain,
        Series::Capped,
    ];

    /// Row-name prefix.
    fn prefix(self) -> &'static str {
        match self {
            Series::NoRule => "norule",
            Series::Hinted => "hinted",
            Series::Plain => "plain",
            Series::Capped => "capped",
        }
    }

    fn parse(name: &str) -> Option<Series> {
        Series::ALL.into_iter().find(|s| s.prefix() == name)
    }

    fn label(self) -> &'static str {
        match self {
            Series::NoRule => "hotspot scheduler, no app rule",
            Series::Hinted => "hotspot scheduler, app rule on the mint",
            Series::Plain => "plain lock scheduler",
            Series::Capped => "lock scheduler with Agave's caps and scan depth",
        }
    }
}

/// Transactions Agave's greedy central scheduler scans per pass
/// (`max_scanned_transactions_per_scheduling_pass`): the capped lock scheduler's look-ahead.
const AGAVE_SCAN: usize = 100_000;

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

    /// The scheduler of `series`, with apps by top-level program. Token transfers and
    /// mint_to are both the token program's: only the rule on the shared mint (all series but
    /// `norule`) makes mint_to an app of its own. The lock schedulers ignore apps; the rule
    /// gives their per-app metrics rows (receipt → execution latency).
    fn scheduler(&self, series: Series, capped_lookahead: usize) -> SchedulerConfig {
        let rule = AppRule {
            program: spl::TOKEN,
            account: self.mint_b.pubkey(),
        };
        let base = SchedulerConfig {
            app_grouping: AppGrouping::TopLevelProgram,
            apps: vec![rule],
            ..SchedulerConfig::default()
        };
        match series {
            Series::NoRule => SchedulerConfig {
                kind: SchedulerChoice::Hotspot,
                apps: Vec::new(),
                ..base
            },
            Series::Hinted => SchedulerConfig {
                kind: SchedulerChoice::Hotspot,
                ..base
            },
            Series::Plain => SchedulerConfig {
                kind: SchedulerChoice::Lock,
                ..base
            },
            Series::Capped => SchedulerConfig {
                kind: SchedulerChoice::Lock,
                lock_cu_caps: true,
                lock_lookahead: capped_lookahead,
                ..base
            },
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

/// Signatures per transaction of `app` (mint_to: the payer and the mint authority).
fn signers(app: App) -> f64 {
    if app == App::MintTo { 2.0 } else { 1.0 }
}

#[derive(Clone, Copy, Default, Debug)]
struct AppFigures {
    /// Executed per second in the window: the app's transactions in the slots published at
    /// processed commitment during the window.
    tps: f64,
    /// Handed to the bank per second in the window (the achieved send rate).
    sent_tps: f64,
    /// Sent → its slot published at processed commitment (what a client polling for the
    /// status sees), p99 over the transactions sent in the window; one not processed by the
    /// time the bench stops waiting (`STRAGGLER_WAIT` after the phase) counts as what it had
    /// waited by then, a lower bound.
    p99_us: f64,
    /// Received by the bank → executed by a worker, p99, from the runtime's per-app metrics;
    /// `None` where the app has no row of its own (token and mint_to share one without the
    /// rule).
    exec_p99_us: Option<f64>,
    /// Sent in the window, never processed within `STRAGGLER_WAIT` after the phase.
    unprocessed: u64,
}

/// The harness's slot length (`harness::SLOT_MS`), ms.
const SLOT_MS: u64 = 50;

/// How long after a phase its last transactions may still be processed.
const STRAGGLER_WAIT: Duration = Duration::from_secs(3);

/// Per app, in `APPS` order.
type PhaseFigures = [AppFigures; 4];

/// One transaction the bench signed in this run.
#[derive(Clone, Copy, Default)]
struct Sent {
    phase: u8,
    /// Handed to the bank (monotonic ns); 0: not sent.
    sent_ns: u64,
    /// Sent inside the phase's measured window.
    measured: bool,
    /// Its slot published at processed commitment (monotonic ns); 0: not yet.
    processed_ns: u64,
}

/// One slot published during the run.
struct SlotSeen {
    at_ns: u64,
    /// The bench's transactions in it, per app.
    per_app: [u32; 4],
}

/// What was committed, classified by what the bench sent: every slot the appliance publishes
/// after set-up is read once, at processed commitment.
struct Ledger {
    seen_slot: u64,
    index: HashMap<Signature, (u8, u32)>,
    sent: [Vec<Sent>; 4],
    slots: Vec<SlotSeen>,
    /// The slots' own transaction counts (their headers), summed.
    committed: u64,
    /// Committed transactions the bench classified into an app, summed.
    attributed: u64,
    /// Committed transactions the bench never signed.
    unknown: u64,
    /// A signature committed twice.
    duplicates: u64,
    /// Committed with an error.
    failed: u64,
    /// Per phase: transactions sent in the measured window, and how many of them were
    /// processed.
    measured: [u64; 2],
    measured_done: [u64; 2],
}

impl Ledger {
    fn new(a: &Appliance) -> Self {
        Self {
            seen_slot: a.rt.chain.processed_slot(),
            index: HashMap::default(),
            sent: Default::default(),
            slots: Vec::new(),
            committed: 0,
            attributed: 0,
            unknown: 0,
            duplicates: 0,
            failed: 0,
            measured: [0; 2],
            measured_done: [0; 2],
        }
    }

    /// Register `wire` (app `k`, phase `phase`); its index in `sent[k]`.
    fn register(&mut self, k: usize, phase: u8, wire: &[Vec<u8>]) -> usize {
        let base = self.sent[k].len();
        self.index.reserve(wire.len());
        for (i, w) in wire.iter().enumerate() {
            self.index
                .insert(signature(w), (k as u8, (base + i) as u32));
        }
        self.sent[k].extend(std::iter::repeat_n(
            Sent {
                phase,
                ..Sent::default()
            },
            wire.len(),
        ));
        base
    }

    /// Read the slots published since the last poll.
    fn poll(&mut self, a: &Appliance) {
        let now = a.rt.chain.processed_slot();
        if now <= self.seen_slot {
            return;
        }
        let t = dataplane::monotonic_ns();
        for s in self.seen_slot + 1..=now {
            let header = a.rt.chain.header(s).map_or(0, |h| h.transaction_count);
            self.committed += header;
            let mut per_app = [0u32; 4];
            for sig in a.rt.chain.slot_signatures(s).unwrap_or_default() {
                let Some(&(k, i)) = self.index.get(&sig) else {
                    self.unknown += 1;
                    continue;
                };
                let tx = &mut self.sent[k as usize][i as usize];
                if tx.processed_ns != 0 {
                    self.duplicates += 1;
                } else if tx.measured {
                    self.measured_done[usize::from(tx.phase)] += 1;
                }
                tx.processed_ns = t;
                per_app[k as usize] += 1;
                self.attributed += 1;
                if a.rt.chain.status(&sig).is_some_and(|st| st.err.is_some()) {
                    self.failed += 1;
                }
            }
            self.slots.push(SlotSeen { at_ns: t, per_app });
        }
        self.seen_slot = now;
    }

    /// Measured transactions of `phase` not yet processed.
    fn pending(&self, phase: u8) -> bool {
        let p = usize::from(phase);
        self.measured_done[p] < self.measured[p]
    }
}

/// The signing rate seen so far (signatures per second), to size a phase so that its
/// blockhash stays valid until its last transaction is sent.
struct SignRate(Option<f64>);

/// Send every app at its rate for `seconds` (after `warm` seconds not measured) and measure.
#[allow(clippy::too_many_arguments)]
fn phase(
    a: &Appliance,
    cast: &Cast,
    ledger: &mut Ledger,
    phase_no: u8,
    mut rates: [f64; 4],
    warm: f64,
    seconds: f64,
    first: &mut [usize; 4],
    sign_rate: &mut SignRate,
) -> anyhow::Result<PhaseOut> {
    let total = warm + seconds;
    // Signed before the phase with the newest blockhash (signing during it would take the
    // CPU the appliance runs on). If signing is slow enough that the first transactions
    // would be sent after half the blockhash's validity, send less and report what was sent.
    let validity = Duration::from_millis(a.rt.chain.validity_slots() * SLOT_MS);
    let budget = (validity.as_secs_f64() / 2.0 - total).max(1.0);
    let sigs: f64 = APPS
        .iter()
        .zip(rates)
        .map(|(app, r)| r * total * signers(*app))
        .sum();
    let mut scale = 1.0;
    if let Some(rate) = sign_rate.0
        && sigs / rate > budget
    {
        scale = (budget * rate / sigs).clamp(0.01, 1.0);
        tracing::warn!(
            scale,
            signatures_per_s = rate,
            "signing is slow: every rate of this phase scaled down"
        );
        rates.iter_mut().for_each(|r| *r *= scale);
    }
    let bh = a.blockhash();
    let signed_at = Instant::now();
    let mut signed = 0.0;
    let wire: Vec<Vec<Vec<u8>>> = APPS
        .iter()
        .enumerate()
        .map(|(k, app)| {
            let n = (rates[k] * total).ceil() as usize;
            let base = first[k];
            first[k] += n;
            signed += n as f64 * signers(*app);
            sign_all(n, |i| cast.tx(*app, base + i, bh))
        })
        .collect();
    sign_rate.0 = Some(signed / signed_at.elapsed().as_secs_f64().max(1e-3));
    let base: [usize; 4] = std::array::from_fn(|k| ledger.register(k, phase_no, &wire[k]));
    // Each app's metrics row (receipt → execution latency), looked up when the measured
    // window opens; an app without a row of its own gets no figure.
    let mut rows: [Option<&runtime::metrics::AppSlot>; 4] = [None; 4];
    let mut sent = [0usize; 4];
    let mut sent_in_window = [0u64; 4];
    let mut not_sent = 0u64;
    let start = Instant::now();
    let start_ns = dataplane::monotonic_ns();
    let mut window: Option<u64> = None;
    loop {
        let t = start.elapsed().as_secs_f64();
        if t >= total {
            break;
        }
        ledger.poll(a);
        if window.is_none() && t >= warm {
            rows = std::array::from_fn(|k| {
                let key = cast.app_key(APPS[k]);
                a.counters
                    .apps
                    .find(&key)
                    .map(|i| &a.counters.apps.slots[i])
            });
            for s in rows.iter().flatten() {
                s.latency.reset();
            }
            window = Some(dataplane::monotonic_ns());
        }
        for k in 0..4 {
            let due = ((rates[k] * t) as usize).min(wire[k].len());
            while sent[k] < due {
                if a.send(&wire[k][sent[k]]) {
                    let rec = &mut ledger.sent[k][base[k] + sent[k]];
                    rec.sent_ns = dataplane::monotonic_ns();
                    if window.is_some() {
                        rec.measured = true;
                        sent_in_window[k] += 1;
                        ledger.measured[usize::from(phase_no)] += 1;
                    }
                } else {
                    not_sent += 1;
                }
                sent[k] += 1;
            }
        }
        std::thread::sleep(Duration::from_micros(250));
    }
    let end_ns = dataplane::monotonic_ns();
    let t0 = window.expect("the phase outlasts its warm-up");
    let exec_p99: [Option<f64>; 4] =
        std::array::from_fn(|k| rows[k].map(|s| s.latency.quantile(0.99) as f64));
    if not_sent > 0 {
        tracing::warn!(
            not_sent,
            "packet pool exhausted: some transactions were not sent"
        );
    }
    // Wait for the window's transactions to be processed (or give up on them).
    let deadline = Instant::now() + STRAGGLER_WAIT;
    loop {
        ledger.poll(a);
        if !ledger.pending(phase_no) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let gave_up_ns = dataplane::monotonic_ns();
    let window_s = (end_ns - t0) as f64 / 1e9;
    let in_window = |k: usize| -> u64 {
        ledger
            .slots
            .iter()
            .filter(|s| s.at_ns >= t0 && s.at_ns < end_ns)
            .map(|s| u64::from(s.per_app[k]))
            .sum()
    };
    let mut executed_over_sent: f64 = 0.0;
    let figures = std::array::from_fn(|k| {
        let txs = &ledger.sent[k][base[k]..];
        // What ran by the window's end can only be what had been sent by then.
        let ran = txs
            .iter()
            .filter(|s| s.processed_ns != 0 && s.processed_ns < end_ns)
            .count();
        let handed = txs.iter().filter(|s| s.sent_ns != 0).count();
        executed_over_sent = executed_over_sent.max(ran as f64 / handed.max(1) as f64);
        let mut lat: Vec<u64> = txs
            .iter()
            .filter(|s| s.measured)
            .map(|s| match s.processed_ns {
                0 => gave_up_ns.saturating_sub(s.sent_ns) / 1_000,
                p => p.saturating_sub(s.sent_ns) / 1_000,
            })
            .collect();
        AppFigures {
            tps: in_window(k) as f64 / window_s,
            sent_tps: sent_in_window[k] as f64 / window_s,
            p99_us: percentile(&mut lat, 0.99),
            exec_p99_us: exec_p99[k],
            unprocessed: txs
                .iter()
                .filter(|s| s.measured && s.processed_ns == 0)
                .count() as u64,
        }
    });
    // Executed per app per 250 ms since the phase started (for the charts).
    let buckets = ((total / BUCKET_S).ceil() as usize).max(1);
    let mut timeline = vec![[0u32; 4]; buckets];
    for s in ledger.slots.iter().filter(|s| s.at_ns >= start_ns) {
        let b = ((s.at_ns - start_ns) as f64 / 1e9 / BUCKET_S) as usize;
        if let Some(row) = timeline.get_mut(b) {
            for (n, add) in row.iter_mut().zip(s.per_app) {
                *n += add;
            }
        }
    }
    Ok(PhaseOut {
        apps: figures,
        timeline,
        executed_over_sent,
        rate_scale: scale,
    })
}

/// Width of a chart bucket, seconds.
const BUCKET_S: f64 = 0.25;

struct PhaseOut {
    apps: PhaseFigures,
    /// Executed per app per `BUCKET_S` since the phase started.
    timeline: Vec<[u32; 4]>,
    /// Highest over the apps of (executed by the window's end) / (handed to the bank): at most
    /// 1 unless something ran that was never sent.
    executed_over_sent: f64,
    rate_scale: f64,
}

struct SchedulerRun {
    a: PhaseOut,
    b: PhaseOut,
    /// The run's ledger totals: (committed, attributed, unknown, duplicates, failed).
    checks: [u64; 5],
}

impl SchedulerRun {
    /// Lowest phase-B/phase-A throughput over the apps that do not flood, and the highest
    /// p99 ratio.
    fn retained_and_p99(&self) -> (f64, f64) {
        let quiet = || (0..4).filter(|k| APPS[*k] != App::MintTo);
        let retained = quiet()
            .map(|k| self.b.apps[k].tps / self.a.apps[k].tps.max(1e-9))
            .fold(f64::INFINITY, f64::min);
        let p99 = quiet()
            .map(|k| self.b.apps[k].p99_us / self.a.apps[k].p99_us.max(1.0))
            .fold(0.0, f64::max);
        (retained, p99)
    }
}

fn isolation_run(
    args: &IsolationArgs,
    cast: &Cast,
    series: Series,
    sign_rate: &mut SignRate,
) -> anyhow::Result<SchedulerRun> {
    let a = Appliance::start(
        cast.scheduler(series, args.capped_lookahead),
        WORKERS,
        cast.genesis(),
    )?;
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
    // Everything published from here on is the phases'.
    let mut ledger = Ledger::new(&a);
    let mut first = [0usize; 4];
    let r = args.rate;
    let phase_a = phase(
        &a,
        cast,
        &mut ledger,
        0,
        [r; 4],
        1.0,
        args.seconds,
        &mut first,
        sign_rate,
    )?;
    let mut rates = [r; 4];
    rates[2] = r * args.flood;
    let phase_b = phase(
        &a,
        cast,
        &mut ledger,
        1,
        rates,
        0.5,
        args.seconds,
        &mut first,
        sign_rate,
    )?;
    ledger.poll(&a);
    a.shutdown();
    let (mut phase_a, mut phase_b) = (phase_a, phase_b);
    if series == Series::NoRule {
        // Token transfers and mint_to share the token program's row: neither has a
        // receipt → execution figure of its own.
        for p in [&mut phase_a, &mut phase_b] {
            p.apps[1].exec_p99_us = None;
            p.apps[2].exec_p99_us = None;
        }
    }
    Ok(SchedulerRun {
        a: phase_a,
        b: phase_b,
        checks: [
            ledger.committed,
            ledger.attributed,
            ledger.unknown,
            ledger.duplicates,
            ledger.failed,
        ],
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

/// Payers of the burst workloads, each paying for one transaction: a tenth as many as
/// measured for the warm-up burst first, then the measured ones. The same keys serve every
/// burst (each runs on a fresh appliance).
struct BurstPayers {
    keys: Vec<Keypair>,
    warm: usize,
}

impl BurstPayers {
    fn new(txs: usize) -> Self {
        let warm = (txs / 10).max(1);
        Self {
            keys: keys(txs.max(1) + warm),
            warm,
        }
    }
}

/// Compute units per slot that no workload here reaches: caps off.
const UNCAPPED: u64 = 1 << 50;

/// How a burst's appliance schedules.
#[derive(Clone, Copy)]
struct BurstSetup {
    workers: usize,
    concurrency: Concurrency,
    /// The default per-slot compute-unit caps (Solana's scaled to the slot), or none.
    capped: bool,
}

/// `txs` Memo transactions from distinct payers, each declaring `shared` writable, sent in one
/// burst (after a warm-up burst of a tenth as many) to an appliance set up as `setup`;
/// executed per second.
fn memo_burst(
    payers: &BurstPayers,
    memo_len: usize,
    shared: usize,
    setup: BurstSetup,
) -> anyhow::Result<f64> {
    let BurstPayers { keys: payers, warm } = payers;
    let (warm, txs) = (*warm, payers.len() - *warm);
    let shared: Vec<Pubkey> = (0..shared).map(|_| Pubkey::new_unique()).collect();
    let genesis = payers
        .iter()
        .map(|k| (k.pubkey(), LAMPORTS))
        .chain(shared.iter().map(|k| (*k, LAMPORTS)))
        .collect();
    let limit = if setup.capped { 0 } else { UNCAPPED };
    let scheduler = SchedulerConfig {
        concurrency: setup.concurrency,
        block_cu_limit: limit,
        account_cu_limit: limit,
        app_cu_limit: limit,
        ..SchedulerConfig::default()
    };
    let a = Appliance::start(scheduler, setup.workers, genesis)?;
    let bh = a.blockhash();
    let wire = sign_all(txs + warm, |i| {
        memo_tx(&payers[i], &memo_text(i, memo_len), &shared, bh)
    });
    a.burst(&wire[..warm])?;
    let tps = a.burst(&wire[warm..])?;
    a.shutdown();
    Ok(tps)
}

/// Memo bytes of the short and the long uncontended workloads.
const SHORT_MEMO: usize = 48;
const LONG_MEMO: usize = 512;

/// Uncontended (distinct payers, nothing shared) on `workers` workers.
fn scaling(payers: &BurstPayers, memo_len: usize, workers: usize) -> anyhow::Result<f64> {
    memo_burst(
        payers,
        memo_len,
        0,
        BurstSetup {
            workers,
            concurrency: Concurrency::Hybrid,
            capped: true,
        },
    )
}

/// Each transaction declares ten accounts writable (its payer and nine shared ones) and
/// writes one (the payer): every pair collides on declared locks, none on real writes.
fn declared_tenfold(payers: &BurstPayers, setup: BurstSetup) -> anyhow::Result<f64> {
    memo_burst(payers, LONG_MEMO, 9, setup)
}

/// The declared-tenfold workload's setups, in the order of `Hybrid::*` fields.
const HYBRID_SETUPS: [BurstSetup; 4] = [
    // Hybrid, default caps (optimistic: charged on real writes).
    BurstSetup {
        workers: WORKERS,
        concurrency: Concurrency::Hybrid,
        capped: true,
    },
    // Pessimistic-only, default caps (charged on every declared write).
    BurstSetup {
        workers: WORKERS,
        concurrency: Concurrency::Pessimistic,
        capped: true,
    },
    // Pessimistic-only, no caps.
    BurstSetup {
        workers: WORKERS,
        concurrency: Concurrency::Pessimistic,
        capped: false,
    },
    // One worker, no caps: the same memos run serially.
    BurstSetup {
        workers: 1,
        concurrency: Concurrency::Pessimistic,
        capped: false,
    },
];

/// Per run, tx/s: uncontended one/two workers (short and long memos) and the declared-tenfold
/// setups (`HYBRID_SETUPS` order).
#[derive(Default)]
struct Bursts {
    one: Vec<f64>,
    two: Vec<f64>,
    long_one: Vec<f64>,
    long_two: Vec<f64>,
    tenfold: [Vec<f64>; 4],
}

fn bursts(payers: &BurstPayers, run: usize, out: &mut Bursts) -> anyhow::Result<()> {
    // Alternate which of each pair goes first, so drift on a noisy machine favours neither.
    let flip = run % 2 == 1;
    let pair = |w: [usize; 2]| if flip { [w[1], w[0]] } else { w };
    for w in pair([1, 2]) {
        let tps = scaling(payers, LONG_MEMO, w)?;
        if w == 1 {
            &mut out.long_one
        } else {
            &mut out.long_two
        }
        .push(tps);
    }
    for w in pair([1, 2]) {
        let tps = scaling(payers, SHORT_MEMO, w)?;
        if w == 1 { &mut out.one } else { &mut out.two }.push(tps);
    }
    let mut order = [0, 1, 2, 3];
    if flip {
        order.reverse();
    }
    for i in order {
        out.tenfold[i].push(declared_tenfold(payers, HYBRID_SETUPS[i])?);
    }
    tracing::info!(
        run,
        one_worker = out.one[run],
        two_workers = out.two[run],
        long_memo_one_worker = out.long_one[run],
        long_memo_two_workers = out.long_two[run],
        hybrid = out.tenfold[0][run],
        pessimistic = out.tenfold[1][run],
        pessimistic_uncapped = out.tenfold[2][run],
        serial_uncapped = out.tenfold[3][run],
        "scaling and hybrid (tx/s)"
    );
    Ok(())
}

/// CPU time of the whole machine and of this process, in clock ticks (USER_HZ), from /proc:
/// what other processes used while the bench ran.
#[derive(Clone, Copy)]
struct CpuTicks {
    busy: u64,
    ours: u64,
    at: Instant,
}

impl CpuTicks {
    /// `None` where /proc cannot be read (not Linux).
    fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let busy = cpu.iter().take(8).sum::<u64>() - cpu.get(3)? - cpu.get(4)?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces): utime is the 12th.
        let after = own.rsplit_once(')')?.1;
        let f: Vec<u64> = after
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        Some(Self {
            busy,
            ours: f.iter().sum(),
            at: Instant::now(),
        })
    }

    /// Cores' worth of CPU that other processes used since `self`.
    fn foreign_cores(&self) -> Option<f64> {
        let now = Self::now()?;
        let ticks = (now.busy - self.busy).saturating_sub(now.ours - self.ours);
        Some(ticks as f64 / 100.0 / self.at.elapsed().as_secs_f64().max(1e-3))
    }
}

pub fn run(args: &IsolationArgs) -> anyhow::Result<Report> {
    let cpu = CpuTicks::now();
    for name in &args.series {
        anyhow::ensure!(
            Series::parse(name).is_some(),
            "--series: unknown scheduler {name:?} (norule, hinted, plain, capped)"
        );
    }
    let cast = Cast::new();
    let mut runs: Vec<Vec<SchedulerRun>> = Series::ALL.iter().map(|_| Vec::new()).collect();
    let mut b = Bursts::default();
    let mut sign_rate = SignRate(None);
    let mut plots = Vec::new();
    let payers = BurstPayers::new(args.txs);
    for run in 0..args.runs.max(1) {
        // Rotate the order of the schedulers from run to run (and reverse it every other
        // run), so drift on a noisy machine favours none.
        if !args.no_phases {
            let mut order: Vec<usize> = (0..Series::ALL.len()).collect();
            let n = order.len();
            order.rotate_left(run % n);
            if run % 2 == 1 {
                order.reverse();
            }
            for s in order {
                let series = Series::ALL[s];
                if !args.series.iter().any(|n| n == series.prefix()) {
                    continue;
                }
                let before = CpuTicks::now();
                let r = isolation_run(args, &cast, series, &mut sign_rate)?;
                let foreign = before.and_then(|c| c.foreign_cores());
                report_run(run, series, &r, foreign);
                if run == 0 && series != Series::Hinted {
                    plots.push(timeline_plot(series, &r.b));
                }
                runs[s].push(r);
            }
        }
        bursts(&payers, run, &mut b)?;
    }
    let mut rows: Rows = Vec::new();
    if !args.no_phases {
        phase_rows(&runs, &mut rows);
    }
    let ratios = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
    // Short memos: the uncontended figure. Long memos (512 bytes, logged whole) make each
    // status bigger, so they load the bank and commit tiles more, not the workers.
    rows.push(("one_worker_tps", median(b.one.clone()), "tx/s"));
    rows.push(("two_workers_tps", median(b.two.clone()), "tx/s"));
    rows.push(("scaling_2w", ratios(&b.two, &b.one), "ratio"));
    rows.push((
        "long_memo_one_worker_tps",
        median(b.long_one.clone()),
        "tx/s",
    ));
    rows.push((
        "long_memo_two_workers_tps",
        median(b.long_two.clone()),
        "tx/s",
    ));
    rows.push((
        "long_memo_scaling_2w",
        ratios(&b.long_two, &b.long_one),
        "ratio",
    ));
    let [hybrid, pess, pess_uncapped, serial] = &b.tenfold;
    rows.push(("hybrid_tps", median(hybrid.clone()), "tx/s"));
    rows.push(("pessimistic_tps", median(pess.clone()), "tx/s"));
    rows.push((
        "pessimistic_uncapped_tps",
        median(pess_uncapped.clone()),
        "tx/s",
    ));
    rows.push(("serial_uncapped_tps", median(serial.clone()), "tx/s"));
    rows.push((
        "hybrid_vs_capped_pessimistic",
        ratios(hybrid, pess),
        "ratio",
    ));
    rows.push((
        "hybrid_vs_uncapped_pessimistic",
        ratios(hybrid, pess_uncapped),
        "ratio",
    ));
    rows.push(("hybrid_vs_uncapped_serial", ratios(hybrid, serial), "ratio"));
    // Other processes' CPU while the bench ran: on a shared 2-core machine every figure
    // above depends on it.
    if let Some(cores) = cpu.and_then(|c| c.foreign_cores()) {
        rows.push(("foreign_cpu_cores", cores, "cores"));
    }
    Ok(Report { rows, plots })
}

fn phase_rows(runs: &[Vec<SchedulerRun>], rows: &mut Rows) {
    let med = |runs: &[SchedulerRun], f: &dyn Fn(&SchedulerRun) -> f64| {
        median(runs.iter().map(f).collect())
    };
    // The headline first: isolation with no hint.
    for (s, series) in Series::ALL.iter().enumerate() {
        if runs[s].is_empty() {
            continue;
        }
        let p = series.prefix();
        rows.push((
            leak(format!("{p}_retained_min")),
            med(&runs[s], &|r| r.retained_and_p99().0),
            "ratio",
        ));
        rows.push((
            leak(format!("{p}_p99_ratio_max")),
            med(&runs[s], &|r| r.retained_and_p99().1),
            "ratio",
        ));
    }
    for (s, series) in Series::ALL.iter().enumerate() {
        let runs = &runs[s];
        if runs.is_empty() {
            continue;
        }
        for (k, app) in APPS.iter().enumerate() {
            let name = |what: &str| leak(format!("{}_{}_{what}", series.prefix(), app.name()));
            rows.push((name("a_tps"), med(runs, &|r| r.a.apps[k].tps), "tx/s"));
            rows.push((name("b_tps"), med(runs, &|r| r.b.apps[k].tps), "tx/s"));
            rows.push((name("a_p99_us"), med(runs, &|r| r.a.apps[k].p99_us), "us"));
            rows.push((name("b_p99_us"), med(runs, &|r| r.b.apps[k].p99_us), "us"));
            // Receipt → execution, where the runtime keeps the app apart.
            if runs
                .iter()
                .all(|r| r.a.apps[k].exec_p99_us.is_some() && r.b.apps[k].exec_p99_us.is_some())
            {
                rows.push((
                    name("a_exec_p99_us"),
                    med(runs, &|r| r.a.apps[k].exec_p99_us.unwrap_or(0.0)),
                    "us",
                ));
                rows.push((
                    name("b_exec_p99_us"),
                    med(runs, &|r| r.b.apps[k].exec_p99_us.unwrap_or(0.0)),
                    "us",
                ));
            }
        }
        rows.push((
            leak(format!("{}_mint_to_b_sent_tps", series.prefix())),
            med(runs, &|r| r.b.apps[2].sent_tps),
            "tx/s",
        ));
    }
    let all = || runs.iter().flatten();
    let sum = |i: usize| all().map(|r| r.checks[i]).sum::<u64>() as f64;
    rows.push(("check_committed", sum(0), "tx"));
    rows.push(("check_attributed", sum(1), "tx"));
    rows.push(("check_unknown", sum(2), "tx"));
    rows.push(("check_duplicates", sum(3), "tx"));
    rows.push(("check_failed", sum(4), "tx"));
    rows.push((
        "executed_over_sent_max",
        all()
            .map(|r| r.a.executed_over_sent.max(r.b.executed_over_sent))
            .fold(0.0, f64::max),
        "ratio",
    ));
    rows.push((
        "rate_scale_min",
        all()
            .map(|r| r.a.rate_scale.min(r.b.rate_scale))
            .fold(1.0, f64::min),
        "ratio",
    ));
}

/// Executed per app per bucket in phase B of one run.
fn timeline_plot(series: Series, b: &PhaseOut) -> Plot {
    let id = match series {
        Series::NoRule => "flood-norule",
        Series::Hinted => "flood-hinted",
        Series::Plain => "flood-plain",
        Series::Capped => "flood-capped",
    };
    Plot {
        id,
        title: format!(
            "Executed per app in the flood phase (first run): {}",
            series.label()
        ),
        x_label: "seconds since phase B started (0.5 s warm-up)",
        y_label: "executed tx/s (250 ms buckets)",
        lines: APPS
            .iter()
            .enumerate()
            .map(|(k, app)| Line {
                label: app.name().to_string(),
                points: b
                    .timeline
                    .iter()
                    .enumerate()
                    .map(|(i, row)| ((i as f64 + 0.5) * BUCKET_S, f64::from(row[k]) / BUCKET_S))
                    .collect(),
            })
            .collect(),
    }
}

fn report_run(run: usize, series: Series, r: &SchedulerRun, foreign_cpu_cores: Option<f64>) {
    let (retained, p99) = r.retained_and_p99();
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}", v / 1e3));
    let per_app: Vec<String> = APPS
        .iter()
        .enumerate()
        .map(|(k, app)| {
            let (a, b) = (&r.a.apps[k], &r.b.apps[k]);
            format!(
                "{} {:.0}/{:.0} tx/s (sent {:.0}/{:.0}) p99 {:.1}/{:.1} ms exec p99 {}/{} ms \
                 unprocessed {}/{}",
                app.name(),
                a.tps,
                b.tps,
                a.sent_tps,
                b.sent_tps,
                a.p99_us / 1e3,
                b.p99_us / 1e3,
                ms(a.exec_p99_us),
                ms(b.exec_p99_us),
                a.unprocessed,
                b.unprocessed,
            )
        })
        .collect();
    tracing::info!(
        run,
        scheduler = series.prefix(),
        retained,
        p99_ratio = p99,
        committed = r.checks[0],
        attributed = r.checks[1],
        foreign_cpu_cores,
        apps = %per_app.join("; "),
        "isolation run (A/B)"
    );
}
