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

/// Execute `txs` split across `workers` threads; returns (per-worker tx/s, all succeeded).
fn run_workers(s: &Setup, txs: Vec<PreparedTx>, workers: usize) -> (Vec<f64>, bool) {
    let per = txs.len().div_ceil(workers);
    let mut parts: Vec<Vec<PreparedTx>> = Vec::new();
    let mut it = txs.into_iter();
    for _ in 0..workers {
        parts.push(it.by_ref().take(per).collect());
    }
    let generation = Arc::new(AtomicU64::new(0));
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .enumerate()
            .map(|(id, part)| {
                let w = Worker {
                    id,
                    counters: telemetry::SharedRegion::private(),
                    env: s.env.clone(),
                    db: s.db.clone(),
                    generation: generation.clone(),
                };
                let genesis = s.genesis;
                scope.spawn(move || {
                    let p = w.env.new_processor(1, &w.db);
                    let n = part.len();
                    let mut batches = Vec::new();
                    let mut it = part.into_iter();
                    loop {
                        let b: Vec<_> = it.by_ref().take(BATCH).collect();
                        if b.is_empty() {
                            break;
                        }
                        batches.push(b);
                    }
                    let t = Instant::now();
                    let mut ok = 0;
                    for txs in batches {
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
                        ok += done
                            .outcomes
                            .iter()
                            .filter(|o| {
                                matches!(o, runtime::worker::Outcome::Processed(s) if s.err.is_none())
                            })
                            .count();
                    }
                    (n as f64 / t.elapsed().as_secs_f64(), ok == n)
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect();
        let all_ok = results.iter().all(|r| r.1);
        (results.into_iter().map(|r| r.0).collect(), all_ok)
    })
}

pub struct ExecFigures {
    pub one_worker_tps: f64,
    pub per_worker_tps: f64,
    pub total_tps: f64,
}

pub fn measure(txs: usize, workers: usize) -> anyhow::Result<ExecFigures> {
    // Execution does not check blockhash age (the bank does, before scheduling).
    let w = workload::transfers(txs, Hash::default());
    let s = setup(&w.payers)?;
    let half = w.txs.len() / 2;
    let (first, second) = w.txs.split_at(half);
    // One worker alone, then `workers` together, on disjoint payers.
    let (one, ok1) = run_workers(&s, prepared(&s, first), 1);
    let (many, ok2) = run_workers(&s, prepared(&s, second), workers);
    anyhow::ensure!(ok1 && ok2, "some transfers failed");
    Ok(ExecFigures {
        one_worker_tps: one[0],
        per_worker_tps: many.iter().sum::<f64>() / many.len() as f64,
        total_tps: many.iter().sum(),
    })
}

pub fn run(a: &BenchArgs) -> anyhow::Result<Rows> {
    let mut one = Vec::new();
    let mut per = Vec::new();
    let mut total = Vec::new();
    for _ in 0..a.runs.max(1) {
        let f = measure(a.txs, a.workers.max(1))?;
        one.push(f.one_worker_tps);
        per.push(f.per_worker_tps);
        total.push(f.total_tps);
    }
    Ok(vec![
        ("exec_tps_per_worker", median(one), "tx/s (1 worker alone)"),
        (
            "exec_tps_per_worker_concurrent",
            median(per),
            "tx/s (each of --workers)",
        ),
        ("exec_tps_total", median(total), "tx/s (--workers together)"),
        ("workers", a.workers as f64, "threads"),
        ("batch_size", BATCH as f64, "transactions"),
    ])
}
