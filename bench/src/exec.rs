//! The exec stage alone: pre-sanitized System transfers from distinct payers executed by SVM
//! workers (each with its own `TransactionBatchProcessor`), results written to the accounts
//! overlay exactly as in the appliance. Sanitization is the bank's job and is not timed.

use super::{BenchArgs, Rows, median, workload};
use dataplane::{Packet, PacketBox};
use runtime::accounts::AccountsDb;
use runtime::genesis::{GenesisConfig, bootstrap};
use runtime::prepare::prepare;
use runtime::sequencer::PreparedTx;
use runtime::svm::SvmEnv;
use runtime::worker::{WorkBatch, Worker, execute};
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_slot_hashes::SlotHashes;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;
use storage::{LogStore, LogStoreConfig};

/// The runtime's default worker batch.
const BATCH: usize = 64;

struct Setup {
    _dir: tempfile::TempDir,
    env: Arc<SvmEnv>,
    db: Arc<AccountsDb>,
    genesis: Hash,
}

fn setup(payers: &[Pubkey]) -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(LogStore::open(dir.path(), LogStoreConfig::default())?);
    let env = Arc::new(SvmEnv::new());
    let db = Arc::new(AccountsDb::new(store, telemetry::SharedRegion::private()));
    let cfg = GenesisConfig {
        faucet: None,
        fee_collector: Pubkey::new_unique(),
        accounts: payers
            .iter()
            .map(|p| (*p, workload::PAYER_LAMPORTS))
            .collect(),
    };
    let (chain, _) = bootstrap(
        &env,
        &db,
        &cfg,
        runtime::chain::StatusRetention::slots(1024),
    )?;
    Ok(Setup {
        _dir: dir,
        env,
        db,
        genesis: chain.genesis_hash(),
    })
}

fn prepared(s: &Setup, raw: &[Vec<u8>]) -> Vec<PreparedTx> {
    let hashes = SlotHashes::new(&[(0, s.genesis)]);
    raw.iter()
        .map(|b| {
            let mut p = PacketBox::new(Packet::zeroed());
            assert!(p.fill_verified(b));
            let verified = *p.verified.take().expect("decoded");
            let desc = p.desc.expect("parsed");
            let x = prepare(&s.env, &s.db, &desc, b, verified, 1, &hashes).expect("prepares");
            PreparedTx::new(x.sanitized, x.budget, p, x.locks)
        })
        .collect()
}

/// What a set of workers did: each worker's rate on its own clock, and all transactions over
/// the wall time from the first worker's start to the last one's end.
struct Timed {
    per_worker: Vec<f64>,
    wall_tps: f64,
    all_ok: bool,
}

fn batches(txs: Vec<PreparedTx>) -> Vec<Vec<PreparedTx>> {
    let mut out = Vec::new();
    let mut it = txs.into_iter();
    loop {
        let b: Vec<_> = it.by_ref().take(BATCH).collect();
        if b.is_empty() {
            return out;
        }
        out.push(b);
    }
}

/// Execute `txs` split across `workers` threads, each after executing its share of `warm`
/// untimed; the threads start their timed part together (a barrier).
fn run_workers(s: &Setup, warm: Vec<PreparedTx>, txs: Vec<PreparedTx>, workers: usize) -> Timed {
    let split = |v: Vec<PreparedTx>| {
        let per = v.len().div_ceil(workers).max(1);
        let mut it = v.into_iter();
        (0..workers)
            .map(|_| it.by_ref().take(per).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    let parts = split(txs);
    let warm_parts = split(warm);
    let total: usize = parts.iter().map(Vec::len).sum();
    let generation = Arc::new(AtomicU64::new(0));
    let barrier = std::sync::Barrier::new(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .zip(warm_parts)
            .enumerate()
            .map(|(id, (part, warm))| {
                let w = Worker {
                    id,
                    counters: telemetry::SharedRegion::private(),
                    env: s.env.clone(),
                    db: s.db.clone(),
                    generation: generation.clone(),
                };
                let genesis = s.genesis;
                let barrier = &barrier;
                scope.spawn(move || {
                    let p = w.env.new_processor(1, &w.db);
                    let run = |txs: Vec<PreparedTx>| {
                        let (done, _) = execute(
                            &w,
                            &p,
                            WorkBatch {
                                slot: 1,
                                blockhash: genesis,
                                id: 0,
                                mode: runtime::scheduler::ExecMode::Locked,
                                txs,
                            },
                        );
                        done.outcomes
                            .iter()
                            .filter(|o| {
                                matches!(o, runtime::worker::Outcome::Processed(s) if s.err.is_none())
                            })
                            .count()
                    };
                    let warm_n = warm.len();
                    let warm_ok: usize = batches(warm).into_iter().map(&run).sum();
                    let n = part.len();
                    let batches = batches(part);
                    barrier.wait();
                    let start = Instant::now();
                    let ok: usize = batches.into_iter().map(&run).sum();
                    let end = Instant::now();
                    (start, end, n, ok == n && warm_ok == warm_n)
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect();
        let first = results.iter().map(|r| r.0).min().expect("a worker");
        let last = results.iter().map(|r| r.1).max().expect("a worker");
        Timed {
            per_worker: results
                .iter()
                .map(|r| r.2 as f64 / (r.1 - r.0).as_secs_f64())
                .collect(),
            wall_tps: total as f64 / (last - first).as_secs_f64(),
            all_ok: results.iter().all(|r| r.3),
        }
    })
}

pub struct ExecFigures {
    pub one_worker_tps: f64,
    /// Mean of each concurrent worker's rate on its own clock.
    pub per_worker_tps: f64,
    /// All transactions of the concurrent part over its wall time.
    pub wall_total_tps: f64,
}

/// `txs` transfers: half on one worker alone, half on `workers` together, on disjoint payers,
/// each worker first executing `warmup` others untimed. `run` alternates which goes first.
pub fn measure(
    txs: usize,
    workers: usize,
    warmup: usize,
    run: usize,
) -> anyhow::Result<ExecFigures> {
    // Execution does not check blockhash age (the bank does, before scheduling).
    let half = txs / 2;
    let warm_one = warmup;
    let warm_many = warmup * workers;
    let w = workload::transfers(txs + warm_one + warm_many, Hash::default());
    let s = setup(&w.payers)?;
    let (timed, warm) = w.txs.split_at(txs);
    let (first, second) = timed.split_at(half);
    let (w1, wn) = warm.split_at(warm_one);
    let one = || run_workers(&s, prepared(&s, w1), prepared(&s, first), 1);
    let many = || run_workers(&s, prepared(&s, wn), prepared(&s, second), workers);
    let (one, many) = if run.is_multiple_of(2) {
        let o = one();
        (o, many())
    } else {
        let m = many();
        (one(), m)
    };
    anyhow::ensure!(one.all_ok && many.all_ok, "some transfers failed");
    Ok(ExecFigures {
        one_worker_tps: one.per_worker[0],
        per_worker_tps: many.per_worker.iter().sum::<f64>() / many.per_worker.len() as f64,
        wall_total_tps: many.wall_tps,
    })
}

pub fn run(a: &BenchArgs) -> anyhow::Result<Rows> {
    anyhow::ensure!(a.txs >= 2, "--txs must be at least 2");
    let workers = a.workers.max(1);
    let (mut one, mut per, mut total, mut scaling) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..a.runs.max(1) {
        let f = measure(a.txs, workers, a.warmup_txs, run)?;
        one.push(f.one_worker_tps);
        per.push(f.per_worker_tps);
        total.push(f.wall_total_tps);
        scaling.push(f.wall_total_tps / f.one_worker_tps);
    }
    Ok(vec![
        ("exec_tps_per_worker", median(one), "tx/s (1 worker alone)"),
        (
            "exec_tps_per_worker_concurrent",
            median(per),
            "tx/s (each of --workers, on its own clock; mean)",
        ),
        (
            "exec_tps_wall_total",
            median(total),
            "tx/s (--workers together: transactions over wall time)",
        ),
        (
            "exec_scaling",
            median(scaling),
            "x (exec_tps_wall_total / exec_tps_per_worker, median of per-run ratios)",
        ),
        ("workers", workers as f64, "threads"),
        ("batch_size", BATCH as f64, "transactions"),
        (
            "txs",
            a.txs as f64,
            "transactions per run (half alone, half together)",
        ),
        (
            "warmup_txs",
            a.warmup_txs as f64,
            "untimed, per worker, first",
        ),
    ])
}
