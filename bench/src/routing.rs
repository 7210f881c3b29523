//! `bench routing`: island-affinity routing (`net.routing = "affinity"`) against today's
//! signature-hash routing, on a skewed workload over UDP through the whole appliance.
//!
//! Each run starts one fresh node per arm (`signature`, `affinity`; the order alternates
//! between runs). A node gets System transfers from distinct payers: 60% to one of 8 hot
//! accounts, the rest to 10,000 cold accounts drawn by Zipf(1.1). Every phase has its own 8 hot
//! accounts, so their islands form while the phase runs, and 5% of the phase's transactions
//! are sent again, exactly: half right behind the original (racing it through the verify
//! tiles), half half a second later (a copy sent after its island formed takes the island's
//! route where the original went by signature). A copy that got through the verify tiles'
//! dedup would reach the bank, which refuses it as already processed: that count is
//! `duplicates_forwarded`.
//!
//! First a calibration node (signature routing) measures the capacity: a warm-up, then a
//! saturated phase (as fast as the verify tiles take packets). Then per node: the same
//! warm-up and saturated phase (its own capacity, reported), and open-loop phases at 50% and
//! 75% of the calibrated capacity: the same offered rates for every arm and run. Latency is
//! receipt (the net tile) to executed (the worker hands the result back), from the bank's
//! histogram, per phase.
//!
//! The bench lowers the island threshold (`scheduler.island_enter` 0.002 of the per-account
//! cap, i.e. 3,000 CU per 50 ms slot: ~20 transfers per slot) so that the hot accounts of a
//! load this machine carries become islands; both arms run the same scheduler configuration.
//! Each receiving core's exact-repeat filter is shrunk to 8 entries so the copies reach the
//! verify tiles' dedup table instead of being dropped before it.

use crate::pipeline::{Pace, check, drive};
use crate::workload::{self, FundedNode, SignedTx, leak};
use crate::{Report, Rows, median};
use appliance::node::Node;
use clap::Args;
use dataplane::route::Routing;
use rand::{Rng, SeedableRng};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_transaction::Transaction;
use std::collections::HashSet;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct RoutingArgs {
    /// Runs (each: both arms on fresh nodes); figures are medians over runs.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Seconds of sending at each offered load.
    #[arg(long, default_value_t = 4.0)]
    pub seconds: f64,
    /// Transactions of the saturated phase (the capacity measurement).
    #[arg(long, default_value_t = 20_000)]
    pub capacity_txs: usize,
    #[arg(long)]
    pub json: bool,
}

const HOT: usize = 8;
const COLD: usize = 10_000;
const HOT_SHARE: f64 = 0.6;
const ZIPF_S: f64 = 1.1;
/// Every this many transactions of a phase, one is sent again.
const COPY_EVERY: usize = 20;
const COPY_DELAY: Duration = Duration::from_millis(500);
/// Offered loads, as fractions of the run's capacity.
/// 75%, not more: this VM's capacity moves by ±20% from one node to the next, and a load over
/// what a node carries measures its backlog, not the route.
const LOADS: [(f64, &str); 2] = [(0.5, "50"), (0.75, "75")];
const ARMS: [(Routing, &str); 2] = [
    (Routing::Signature, "signature"),
    (Routing::Affinity, "affinity"),
];
/// Phases per node, each with its own hot accounts: warm-up, saturated, the loads.
const PHASES: usize = 2 + LOADS.len();
const ACCOUNT_LAMPORTS: u64 = 1_000_000_000;

/// Who receives: each phase's hot accounts and the shared cold ones, with the Zipf CDF.
struct Recipients {
    hot: Vec<[Pubkey; HOT]>,
    cold: Vec<Pubkey>,
    cold_cdf: Vec<f64>,
}

impl Recipients {
    fn new() -> Self {
        let weights: Vec<f64> = (1..=COLD).map(|r| (r as f64).powf(-ZIPF_S)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        Self {
            hot: (0..PHASES)
                .map(|_| std::array::from_fn(|_| Pubkey::new_unique()))
                .collect(),
            cold: (0..COLD).map(|_| Pubkey::new_unique()).collect(),
            cold_cdf: weights
                .iter()
                .map(|w| {
                    acc += w / total;
                    acc
                })
                .collect(),
        }
    }

    fn genesis(&self) -> Vec<(Pubkey, u64)> {
        self.hot
            .iter()
            .flatten()
            .chain(&self.cold)
            .map(|k| (*k, ACCOUNT_LAMPORTS))
            .collect()
    }

    /// Transaction `i` of `phase`: deterministic in (phase, i), so both arms get the same.
    fn to(&self, phase: usize, i: usize) -> Pubkey {
        let mut rng = rand::rngs::StdRng::seed_from_u64(((phase as u64) << 40) ^ i as u64);
        if rng.gen_bool(HOT_SHARE) {
            self.hot[phase][rng.gen_range(0..HOT)]
        } else {
            let u: f64 = rng.r#gen();
            let r = self.cold_cdf.partition_point(|&c| c < u).min(COLD - 1);
            self.cold[r]
        }
    }
}

fn sign_phase(
    payers: &[Keypair],
    to: &Recipients,
    phase: usize,
    n: usize,
    bh: Hash,
) -> Vec<SignedTx> {
    workload::sign_parallel(0..n, |i| {
        let payer = &payers[i % payers.len()];
        // The phase and index in the amount: every message differs.
        let lamports = 1 + (phase * 1_000_000 + i) as u64;
        let ix = solana_system_interface::instruction::transfer(
            &payer.pubkey(),
            &to.to(phase, i),
            lamports,
        );
        let tx = Transaction::new(&[payer], Message::new(&[ix], Some(&payer.pubkey())), bh);
        SignedTx {
            signature: tx.signatures[0],
            wire: bincode::serialize(&tx).expect("serializes"),
            expect_ok: true,
        }
    })
}

/// Send every [`COPY_EVERY`]th transaction of `txs` again, half of them [`COPY_DELAY`] after
/// the original would have left at `rate` and half at once, until done or `stop`. Returns
/// the copies sent.
fn send_copies(node: &Node, txs: &[SignedTx], rate: f64, stop: &AtomicBool) -> usize {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return 0;
    };
    if sock.connect(node.tpu_addr).is_err() {
        return 0;
    }
    let start = Instant::now();
    let mut sent = 0;
    for (n, i) in (COPY_EVERY / 2..txs.len()).step_by(COPY_EVERY).enumerate() {
        // Every other copy right behind its original: it races it through the verify tiles.
        let delay = if n % 2 == 0 {
            COPY_DELAY
        } else {
            Duration::ZERO
        };
        let due = start + Duration::from_secs_f64(i as f64 / rate) + delay;
        while Instant::now() < due {
            if stop.load(Ordering::Relaxed) {
                return sent;
            }
            std::thread::sleep(Duration::from_millis(2).min(due - Instant::now()));
        }
        sent += usize::from(sock.send(&txs[i].wire).is_ok());
    }
    sent
}

/// One load phase of one arm.
#[derive(Default, Clone, Copy)]
struct Point {
    p50_us: f64,
    p99_us: f64,
}

/// One arm's node, from start to shutdown.
struct ArmRun {
    capacity_tps: f64,
    points: Vec<Point>,
    routed_pct: f64,
    fallback_pct: f64,
    key_cache_hit_pct: f64,
    /// The busiest verify tile's share of the transactions the tiles took in (50: even).
    busiest_tile_pct: f64,
    islands_formed: u64,
    copies_sent: usize,
    /// Copies that got through the verify tiles' dedup: the bank refused them as already
    /// processed (or queued).
    duplicates_forwarded: u64,
    /// Signatures found in more than one slot, or twice in one.
    duplicates_executed: usize,
    /// Dropped before verification (ring full, pool dry, over share).
    ingest_drops: u64,
}

fn arm(
    a: &RoutingArgs,
    routing: Routing,
    to: &Recipients,
    payers: &[Keypair],
    rate: Option<f64>,
) -> anyhow::Result<ArmRun> {
    let funded = workload::funded_node_with(
        payers.iter().map(Keypair::insecure_clone).collect(),
        to.genesis(),
        |cfg| {
            cfg.net.routing = routing;
            cfg.net.recent_filter_entries = 8;
            cfg.scheduler.island_enter = 0.002;
            cfg.scheduler.island_exit = 0.001;
        },
    )?;
    let FundedNode { node, .. } = &funded;
    let dp = node.dataplane;
    let rt = node.runtime.counters;
    let mut copies = 0usize;
    let mut phase =
        |i: usize, n: usize, pace: Pace| -> anyhow::Result<(crate::pipeline::Driven, Point)> {
            let txs = sign_phase(payers, to, i, n, workload::latest_blockhash(node)?);
            let copy_rate = match pace {
                Pace::Rate(r) => r,
                Pace::Window => rate.unwrap_or(5_000.0),
            };
            rt.exec_latency.reset();
            let stop = AtomicBool::new(false);
            let (d, c) = std::thread::scope(|s| {
                let copier = s.spawn(|| send_copies(node, &txs, copy_rate, &stop));
                let d = drive(node, &txs, pace);
                stop.store(true, Ordering::Relaxed);
                (d, copier.join().unwrap_or(0))
            });
            let d = d?;
            check(&format!("routing phase {i}"), &d)?;
            copies += c;
            let point = Point {
                p50_us: rt.exec_latency.quantile(0.50) as f64,
                p99_us: rt.exec_latency.quantile(0.99) as f64,
            };
            Ok((d, point))
        };
    let verify_in0 = dp.verify_in.load(Ordering::Relaxed);
    phase(0, a.capacity_txs / 4, Pace::Window)?;
    let (sat, _) = phase(1, a.capacity_txs, Pace::Window)?;
    let capacity_tps = sat.carried_tps();
    let mut points = Vec::new();
    for (k, (frac, _)) in LOADS.iter().enumerate() {
        // Calibration (no rate yet) stops after the saturated phase.
        let Some(base) = rate else { break };
        let r = frac * base;
        let n = ((r * a.seconds) as usize).max(256);
        points.push(phase(2 + k, n, Pace::Rate(r))?.1);
    }
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let verify_in = (get(&dp.verify_in) - verify_in0).max(1) as f64;
    let hits = get(&dp.key_cache_hits) as f64;
    let misses = get(&dp.key_cache_misses) as f64;
    let chain = &node.runtime.chain;
    let mut seen = HashSet::new();
    let mut duplicates_executed = 0;
    for slot in 0..=chain.durable_slot() {
        for sig in chain.slot_signatures(slot).unwrap_or_default() {
            duplicates_executed += usize::from(!seen.insert(sig));
        }
    }
    let out = ArmRun {
        capacity_tps,
        points,
        routed_pct: 100.0 * get(&dp.routed_affinity) as f64 / verify_in,
        fallback_pct: 100.0 * get(&dp.routed_fallback) as f64 / verify_in,
        key_cache_hit_pct: 100.0 * hits / (hits + misses).max(1.0),
        busiest_tile_pct: {
            let taken: Vec<u64> = dp.verify[..node.config.verify.tiles]
                .iter()
                .map(|t| get(&t.in_total))
                .collect();
            let all = taken.iter().sum::<u64>().max(1) as f64;
            100.0 * taken.iter().copied().max().unwrap_or(0) as f64 / all
        },
        islands_formed: get(&rt.islands.formed),
        copies_sent: copies,
        duplicates_forwarded: rt.dropped(runtime::metrics::RuntimeDrop::AlreadyProcessed),
        duplicates_executed,
        ingest_drops: get(&dp.verify_ring_full)
            + get(&dp.pool_exhausted)
            + get(&dp.over_fair_share),
    };
    let FundedNode { node, .. } = funded;
    node.shutdown();
    Ok(out)
}

pub fn run(a: &RoutingArgs) -> anyhow::Result<Report> {
    let to = Recipients::new();
    let most = a.capacity_txs.max(256);
    let payers: Vec<Keypair> = (0..most).map(|_| Keypair::new()).collect();
    // One capacity for every run and arm: the offered loads are the same everywhere, so a
    // noisy saturated phase cannot push one arm's "75%" past what the machine carries.
    let calibrated = arm(a, Routing::Signature, &to, &payers, None)?.capacity_tps;
    tracing::info!(calibrated, "routing: capacity");
    // [arm][run]
    let mut runs: [Vec<ArmRun>; 2] = [Vec::new(), Vec::new()];
    for r in 0..a.runs.max(1) {
        let order: [usize; 2] = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for &i in &order {
            let (routing, name) = ARMS[i];
            let got = arm(a, routing, &to, &payers, Some(calibrated))?;
            tracing::info!(
                run = r,
                arm = name,
                capacity_tps = got.capacity_tps,
                p99_50 = got.points[0].p99_us,
                p99_75 = got.points[1].p99_us,
                routed_pct = got.routed_pct,
                "routing arm"
            );
            runs[i].push(got);
        }
    }
    let mut rows: Rows = vec![("calibrated_capacity_tps", calibrated, "tx/s")];
    let med = |arm: usize, f: &dyn Fn(&ArmRun) -> f64| {
        median(runs[arm].iter().map(f).collect::<Vec<_>>())
    };
    for (k, (_, load)) in LOADS.iter().enumerate() {
        for (i, (_, name)) in ARMS.iter().enumerate() {
            rows.push((
                leak(format!("{name}_exec_p50_us_at_{load}pct")),
                med(i, &|r| r.points[k].p50_us),
                "us",
            ));
            rows.push((
                leak(format!("{name}_exec_p99_us_at_{load}pct")),
                med(i, &|r| r.points[k].p99_us),
                "us",
            ));
        }
        // Per run, then the median: each ratio compares arms that ran back to back.
        let ratio = |q: &dyn Fn(&Point) -> f64| {
            median(
                runs[1]
                    .iter()
                    .zip(&runs[0])
                    .map(|(aff, sig)| q(&aff.points[k]) / q(&sig.points[k]).max(1.0))
                    .collect::<Vec<_>>(),
            )
        };
        // The spread over runs: how far apart two runs of the same arm land.
        for (i, (_, name)) in ARMS.iter().enumerate() {
            let p99: Vec<f64> = runs[i].iter().map(|r| r.points[k].p99_us).collect();
            rows.push((
                leak(format!("{name}_exec_p99_us_at_{load}pct_lowest")),
                p99.iter().copied().fold(f64::INFINITY, f64::min),
                "us",
            ));
            rows.push((
                leak(format!("{name}_exec_p99_us_at_{load}pct_highest")),
                p99.iter().copied().fold(0.0, f64::max),
                "us",
            ));
        }
        rows.push((
            leak(format!("p50_ratio_at_{load}pct")),
            ratio(&|p| p.p50_us),
            "x",
        ));
        rows.push((
            leak(format!("p99_ratio_at_{load}pct")),
            ratio(&|p| p.p99_us),
            "x",
        ));
    }
    for (i, (_, name)) in ARMS.iter().enumerate() {
        rows.push((
            leak(format!("{name}_capacity_tps")),
            med(i, &|r| r.capacity_tps),
            "tx/s",
        ));
        rows.push((
            leak(format!("{name}_routed_pct")),
            med(i, &|r| r.routed_pct),
            "%",
        ));
        rows.push((
            leak(format!("{name}_fallback_pct")),
            med(i, &|r| r.fallback_pct),
            "%",
        ));
        rows.push((
            leak(format!("{name}_key_cache_hit_pct")),
            med(i, &|r| r.key_cache_hit_pct),
            "%",
        ));
        rows.push((
            leak(format!("{name}_busiest_verify_tile_pct")),
            med(i, &|r| r.busiest_tile_pct),
            "%",
        ));
        rows.push((
            leak(format!("{name}_islands_formed")),
            med(i, &|r| r.islands_formed as f64),
            "",
        ));
    }
    let all = || runs.iter().flatten();
    rows.push(("copies_sent", all().map(|r| r.copies_sent as f64).sum(), ""));
    rows.push((
        "duplicates_forwarded",
        all().map(|r| r.duplicates_forwarded as f64).sum(),
        "",
    ));
    rows.push((
        "duplicates_executed",
        all().map(|r| r.duplicates_executed as f64).sum(),
        "",
    ));
    rows.push((
        "ingest_drops",
        all().map(|r| r.ingest_drops as f64).sum(),
        "",
    ));
    anyhow::ensure!(
        all().all(|r| r.duplicates_executed == 0),
        "a duplicate transaction executed"
    );
    Ok(rows.into())
}
