//! Serial equivalence: random conflicting workloads run through the hotspot scheduler (islands,
//! fair queuing, optimistic and hybrid concurrency, two workers, many slots) end in exactly
//! the account states and transaction statuses of executing the same transactions one at a
//! time, in the order the runtime recorded them, with the real SVM.

use dataplane::{Packet, PacketBox, PacketPool};
use rand::{Rng, SeedableRng};
use runtime::accounts::AccountsDb;
use runtime::chain::{Commitment, TxStatus};
use runtime::genesis::{GenesisConfig, bootstrap};
use runtime::metrics::RuntimeCounters;
use runtime::prepare::prepare;
use runtime::scheduler::apps::AppGrouping;
use runtime::scheduler::hotspot::Concurrency;
use runtime::scheduler::{ExecMode, SchedulerConfig};
use runtime::sequencer::PreparedTx;
use runtime::svm::SvmEnv;
use runtime::worker::{Outcome, WorkBatch, Worker, execute};
use runtime::{Runtime, RuntimeConfig, RuntimeSetup};
use solana_account::ReadableAccount;
use solana_hash::Hash;
use solana_instruction::AccountMeta;
use solana_keypair::Keypair;
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_slot_hashes::SlotHashes;
use solana_transaction::Transaction;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use storage::{LogStore, LogStoreConfig};

const USERS: usize = 10;
const SHARED: usize = 4;
const TXS: usize = 500;
const LAMPORTS: u64 = 50_000_000;

struct Workload {
    users: Vec<Keypair>,
    shared: Vec<Pubkey>,
    fresh: Vec<Pubkey>,
    fee_collector: Pubkey,
}

impl Workload {
    fn new() -> Self {
        Self {
            users: (0..USERS).map(|_| Keypair::new()).collect(),
            shared: (0..SHARED).map(|_| Pubkey::new_unique()).collect(),
            fresh: Vec::new(),
            fee_collector: Pubkey::new_unique(),
        }
    }

    fn genesis(&self) -> GenesisConfig {
        GenesisConfig {
            faucet: None,
            fee_collector: self.fee_collector,
            accounts: self
                .users
                .iter()
                .map(|k| (k.pubkey(), LAMPORTS))
                .chain(self.shared.iter().map(|k| (*k, LAMPORTS)))
                .collect(),
        }
    }

    /// Transfers among a few accounts: plain ones, ones declaring the shared accounts writable
    /// without touching them, ones really writing a shared account, ones that fail (too much),
    /// ones creating accounts.
    fn transactions(&mut self, seed: u64, blockhash: Hash) -> Vec<Transaction> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..TXS)
            .map(|i| {
                let from = &self.users[rng.gen_range(0..USERS)];
                let to = self.users[rng.gen_range(0..USERS)].pubkey();
                let lamports = 1_000 + i as u64;
                let mut ix = match rng.gen_range(0..10) {
                    0 => solana_system_interface::instruction::transfer(
                        &from.pubkey(),
                        &to,
                        LAMPORTS * 10 + i as u64,
                    ),
                    1 => solana_system_interface::instruction::transfer(
                        &from.pubkey(),
                        &self.shared[rng.gen_range(0..SHARED)],
                        lamports,
                    ),
                    2 => {
                        let k = Pubkey::new_unique();
                        self.fresh.push(k);
                        solana_system_interface::instruction::transfer(
                            &from.pubkey(),
                            &k,
                            1_000_000,
                        )
                    }
                    _ => solana_system_interface::instruction::transfer(
                        &from.pubkey(),
                        &to,
                        lamports,
                    ),
                };
                if rng.gen_bool(0.5) {
                    // Declared writable, never written: the System program ignores them.
                    for k in &self.shared {
                        ix.accounts.push(AccountMeta::new(*k, false));
                    }
                }
                Transaction::new(
                    &[from],
                    Message::new(&[ix], Some(&from.pubkey())),
                    blockhash,
                )
            })
            .collect()
    }

    fn accounts(&self) -> Vec<Pubkey> {
        self.users
            .iter()
            .map(|k| k.pubkey())
            .chain(self.shared.iter().copied())
            .chain(self.fresh.iter().copied())
            .collect()
    }
}

struct Run {
    order: Vec<Signature>,
    statuses: HashMap<Signature, TxStatus>,
    accounts: Vec<(u64, Vec<u8>, Pubkey)>,
    reexecutions: u64,
    optimistic_batches: u64,
    islands_formed: u64,
}

fn run_scheduled(w: &mut Workload, kind: SchedulerConfig, seed: u64) -> (Run, Vec<Transaction>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LogStore::open(dir.path(), LogStoreConfig::default()).unwrap());
    let pool = PacketPool::new(8192);
    let (tx, rx) = crossbeam_channel::bounded(8192);
    let counters: &'static RuntimeCounters = telemetry::SharedRegion::private();
    let config = RuntimeSetup {
        runtime: RuntimeConfig {
            slot_ms: 5,
            workers: 2,
            worker_cores: vec![],
            batch_max: 8,
            admit_burst: 64,
            sequencer_capacity: 10_000,
            status_retention_slots: 100_000,
            status_retention_bytes: 256 << 20,
            commit_queue_slots: 64,
            // Solana's 150 slots, as these tests were written for.
            blockhash_validity_ms: 150 * 5,
        },
        scheduler: SchedulerConfig {
            app_grouping: AppGrouping::FeePayer,
            ..kind
        },
        worker_numa: vec![],
        account_index: Default::default(),
        preconf: Default::default(),
        preconf_delivery: None,
        routes: None,
        tuner: Default::default(),
        cluster: None,
        genesis: w.genesis(),
    };
    let rt = Runtime::start(&config, store, pool.clone(), rx, counters).unwrap();
    let blockhash = rt
        .chain
        .latest_header(Commitment::Processed)
        .unwrap()
        .blockhash;
    let txs = w.transactions(seed, blockhash);
    for chunk in txs.chunks(50) {
        for t in chunk {
            let bytes = bincode::serialize(t).unwrap();
            let mut p = pool.take().unwrap();
            assert!(p.fill_verified(&bytes));
            tx.send(p).unwrap();
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while txs
        .iter()
        .any(|t| rt.chain.status(&t.signatures[0]).is_none())
    {
        assert!(Instant::now() < deadline, "transactions never executed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let statuses: HashMap<Signature, TxStatus> = txs
        .iter()
        .map(|t| {
            let s = t.signatures[0];
            (s, (*rt.chain.status(&s).unwrap()).clone())
        })
        .collect();
    let last = statuses.values().map(|s| s.slot).max().unwrap();
    let mut order = Vec::new();
    for slot in 1..=last {
        order.extend(rt.chain.slot_signatures(slot).unwrap_or_default());
    }
    let accounts = w
        .accounts()
        .iter()
        .map(|k| match rt.db.get(k).unwrap() {
            Some((a, _)) => (a.lamports(), a.data().to_vec(), *a.owner()),
            None => (0, Vec::new(), Pubkey::default()),
        })
        .collect();
    let run = Run {
        order,
        statuses,
        accounts,
        reexecutions: counters.reexecutions.load(Ordering::Relaxed),
        optimistic_batches: counters.optimistic_batches.load(Ordering::Relaxed),
        islands_formed: counters.islands.formed.load(Ordering::Relaxed),
    };
    rt.shutdown();
    (run, txs)
}

/// The same transactions, one at a time, in `order`, on a fresh copy of the genesis state.
fn run_serial(w: &Workload, txs: &[Transaction], order: &[Signature]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LogStore::open(dir.path(), LogStoreConfig::default()).unwrap());
    let env = Arc::new(SvmEnv::new());
    let counters: &'static RuntimeCounters = telemetry::SharedRegion::private();
    let db = Arc::new(AccountsDb::new(store, counters));
    let (chain, _) = bootstrap(
        &env,
        &db,
        &w.genesis(),
        runtime::chain::StatusRetention::slots(1024),
    )
    .unwrap();
    let worker = Worker {
        id: 0,
        counters,
        env: env.clone(),
        db: db.clone(),
        generation: Arc::new(AtomicU64::new(0)),
    };
    let processor = env.new_processor(1, &db);
    let hashes = SlotHashes::new(&[(0, chain.genesis_hash())]);
    let by_sig: HashMap<Signature, &Transaction> =
        txs.iter().map(|t| (t.signatures[0], t)).collect();
    let mut statuses = HashMap::new();
    for sig in order {
        let bytes = bincode::serialize(by_sig[sig]).unwrap();
        let mut p = PacketBox::new(Packet::zeroed());
        assert!(p.fill_verified(&bytes));
        let verified = *p.verified.take().expect("decoded");
        let desc = p.desc.expect("parsed");
        let x = prepare(&env, &db, &desc, p.bytes(), verified, 1, &hashes).expect("prepares");
        let (done, _) = execute(
            &worker,
            &processor,
            WorkBatch {
                slot: 1,
                blockhash: chain.genesis_hash(),
                id: 0,
                mode: ExecMode::Locked,
                txs: vec![PreparedTx::new(x.sanitized, x.budget, p, x.locks)],
            },
        );
        match done.outcomes.into_iter().next().unwrap() {
            Outcome::Processed(s) => {
                statuses.insert(*sig, *s);
            }
            Outcome::Dropped(e) => panic!("serial run rejected {sig}: {e}"),
        }
    }
    let accounts = w
        .accounts()
        .iter()
        .map(|k| match db.get(k).unwrap() {
            Some((a, _)) => (a.lamports(), a.data().to_vec(), *a.owner()),
            None => (0, Vec::new(), Pubkey::default()),
        })
        .collect();
    Run {
        order: order.to_vec(),
        statuses,
        accounts,
        reexecutions: 0,
        optimistic_batches: 0,
        islands_formed: 0,
    }
}

fn assert_equivalent(name: &str, kind: SchedulerConfig, seed: u64) -> Run {
    let mut w = Workload::new();
    let (scheduled, txs) = run_scheduled(&mut w, kind, seed);
    assert_eq!(
        scheduled.order.len(),
        TXS,
        "{name}: every transaction recorded once"
    );
    let serial = run_serial(&w, &txs, &scheduled.order);
    let mut failures = 0;
    for sig in &scheduled.order {
        let (a, b) = (&scheduled.statuses[sig], &serial.statuses[sig]);
        failures += usize::from(a.err.is_some());
        assert_eq!(a.err, b.err, "{name}: status of {sig}");
        assert_eq!(a.fee, b.fee, "{name}: fee of {sig}");
        assert_eq!(a.compute_units, b.compute_units, "{name}: CU of {sig}");
        assert_eq!(a.logs, b.logs, "{name}: logs of {sig}");
        assert_eq!(
            a.pre_balances, b.pre_balances,
            "{name}: pre-balances of {sig}"
        );
        assert_eq!(
            a.post_balances, b.post_balances,
            "{name}: post-balances of {sig}"
        );
    }
    assert!(
        failures > 0,
        "{name}: the workload includes failing transactions"
    );
    assert_eq!(
        scheduled.accounts, serial.accounts,
        "{name}: final account states"
    );
    scheduled
}

#[test]
fn optimistic_execution_equals_serial() {
    let cfg = SchedulerConfig {
        concurrency: Concurrency::Optimistic,
        ..SchedulerConfig::default()
    };
    let run = assert_equivalent("optimistic", cfg, 1);
    assert!(run.optimistic_batches > 0);
    assert!(
        run.reexecutions > 0,
        "the workload has real conflicts, so some batches must re-execute"
    );
}

#[test]
fn hybrid_with_islands_equals_serial() {
    let cfg = SchedulerConfig {
        // Islands and optimistic trials early, so both happen within the run; at most two
        // islands, so most transactions stay in their apps' lanes.
        island_enter: 0.002,
        island_exit: 0.001,
        island_cool_slots: 2,
        island_min_writers: 2,
        max_islands: 2,
        optimistic_enter: 0.05,
        optimistic_backoff_slots: 2,
        ..SchedulerConfig::default()
    };
    let run = assert_equivalent("hybrid", cfg, 2);
    assert!(run.islands_formed > 0, "no island formed");
    assert!(run.optimistic_batches > 0, "no app went optimistic");
}

#[test]
fn pessimistic_hotspot_and_plain_lock_equal_serial() {
    let cfg = SchedulerConfig {
        concurrency: Concurrency::Pessimistic,
        island_enter: 0.002,
        island_exit: 0.001,
        island_min_writers: 2,
        ..SchedulerConfig::default()
    };
    let run = assert_equivalent("pessimistic", cfg, 3);
    assert_eq!(run.optimistic_batches, 0);
    assert_equivalent("lock", SchedulerConfig::lock(), 4);
    // The lock scheduler with Agave's caps, deferring over-cap writers to later slots.
    let capped = SchedulerConfig {
        lock_cu_caps: true,
        lock_lookahead: 100_000,
        ..SchedulerConfig::lock()
    };
    assert_equivalent("capped lock", capped, 5);
}
