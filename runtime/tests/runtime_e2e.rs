//! In-process runtime tests: verified packets in, Agave SVM execution, durable slots out.

use crossbeam_channel::Sender;
use dataplane::{PacketBox, PacketPool};
use runtime::genesis::GenesisConfig;
use runtime::metrics::RuntimeDrop;
use runtime::{Runtime, RuntimeConfig, RuntimeSetup};
use solana_account::ReadableAccount;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_transaction::Transaction;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::{LogStore, LogStoreConfig};

const FAUCET_LAMPORTS: u64 = 1_000_000_000_000;

struct Harness {
    rt: Runtime,
    tx: Sender<PacketBox>,
    pool: PacketPool,
    faucet: Keypair,
}

fn start(dir: &Path, faucet: Keypair, fee_collector: Pubkey, workers: usize) -> Harness {
    start_with(dir, faucet, fee_collector, workers, None)
}

fn start_with(
    dir: &Path,
    faucet: Keypair,
    fee_collector: Pubkey,
    workers: usize,
    preconf_delivery: Option<runtime::preconf::Delivery>,
) -> Harness {
    let store = Arc::new(LogStore::open(dir, LogStoreConfig::default()).unwrap());
    let pool = PacketPool::new(4096);
    let (tx, rx) = crossbeam_channel::bounded(4096);
    let config = RuntimeSetup {
        runtime: RuntimeConfig {
            slot_ms: 20,
            workers,
            worker_cores: vec![],
            batch_max: 16,
            admit_burst: 64,
            sequencer_capacity: 10_000,
            status_retention_slots: 512,
            status_retention_bytes: 256 << 20,
            commit_queue_slots: 4,
            // Solana's 150 slots, as these tests were written for.
            blockhash_validity_ms: 150 * 20,
        },
        scheduler: Default::default(),
        worker_numa: vec![],
        account_index: Default::default(),
        preconf: Default::default(),
        preconf_delivery,
        routes: None,
        tuner: Default::default(),
        cluster: None,
        genesis: GenesisConfig {
            faucet: Some((faucet.pubkey(), FAUCET_LAMPORTS)),
            fee_collector,
            accounts: vec![],
        },
    };
    let rt = Runtime::start(
        &config,
        store,
        pool.clone(),
        rx,
        telemetry::SharedRegion::private(),
    )
    .unwrap();
    Harness {
        rt,
        tx,
        pool,
        faucet,
    }
}

impl Harness {
    fn blockhash(&self) -> Hash {
        self.rt
            .chain
            .latest_header(runtime::chain::Commitment::Processed)
            .unwrap()
            .blockhash
    }

    fn send(&self, tx: &Transaction) {
        let bytes = bincode::serialize(tx).unwrap();
        let mut p = self.pool.take().unwrap();
        assert!(p.fill_verified(&bytes));
        self.tx.send(p).unwrap();
    }

    fn wait_durable(&self, sig: &solana_signature::Signature) -> runtime::chain::TxStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.rt.chain.status(sig)
                && s.slot <= self.rt.chain.durable_slot()
            {
                return (*s).clone();
            }
            assert!(Instant::now() < deadline, "transaction never committed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn balance(&self, k: &Pubkey) -> u64 {
        self.rt
            .db
            .get(k)
            .unwrap()
            .map(|(a, _)| a.lamports())
            .unwrap_or(0)
    }

    fn transfer(&self, from: &Keypair, to: &Pubkey, lamports: u64) -> Transaction {
        let ix = solana_system_interface::instruction::transfer(&from.pubkey(), to, lamports);
        Transaction::new(
            &[from],
            Message::new(&[ix], Some(&from.pubkey())),
            self.blockhash(),
        )
    }
}

#[test]
fn transfers_fees_duplicates_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Pubkey::new_unique();
    let faucet_bytes = Keypair::new().to_bytes();
    let h = start(
        dir.path(),
        Keypair::try_from(&faucet_bytes[..]).unwrap(),
        collector,
        2,
    );
    let alice = Keypair::new();
    let bob = Pubkey::new_unique();
    let collector_start = h.balance(&collector);

    let fund = h.transfer(&h.faucet, &alice.pubkey(), 1_000_000_000);
    h.send(&fund);
    let s = h.wait_durable(&fund.signatures[0]);
    assert_eq!(s.err, None);
    assert_eq!(s.fee, 5_000);
    assert_eq!(h.balance(&alice.pubkey()), 1_000_000_000);

    // A transfer, sent twice: executed once.
    let pay = h.transfer(&alice, &bob, 10_000_000);
    h.send(&pay);
    h.send(&pay);
    let s = h.wait_durable(&pay.signatures[0]);
    assert_eq!(s.err, None);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(h.balance(&bob), 10_000_000);
    assert_eq!(
        h.balance(&alice.pubkey()),
        1_000_000_000 - 10_000_000 - 5_000
    );
    assert!(h.rt.counters.dropped(RuntimeDrop::AlreadyProcessed) >= 1);

    // More than the balance: charged the fee, nothing else.
    let too_much = h.transfer(&alice, &bob, 5_000_000_000);
    h.send(&too_much);
    let s = h.wait_durable(&too_much.signatures[0]);
    assert!(s.err.is_some());
    assert_eq!(s.fee, 5_000);
    assert_eq!(h.balance(&bob), 10_000_000);
    assert_eq!(
        h.balance(&alice.pubkey()),
        1_000_000_000 - 10_000_000 - 10_000
    );

    // Unknown blockhash: never lands.
    let ix = solana_system_interface::instruction::transfer(&alice.pubkey(), &bob, 1);
    let stale = Transaction::new(
        &[&alice],
        Message::new(&[ix], Some(&alice.pubkey())),
        Hash::new_from_array([1; 32]),
    );
    h.send(&stale);
    std::thread::sleep(Duration::from_millis(200));
    assert!(h.rt.chain.status(&stale.signatures[0]).is_none());
    assert!(h.rt.counters.dropped(RuntimeDrop::BlockhashNotFound) >= 1);

    // Fees reach the collector once their slots are closed.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(h.balance(&collector) - collector_start, 15_000);

    let alice_balance = h.balance(&alice.pubkey());
    let durable = h.rt.chain.durable_slot();
    h.rt.shutdown();
    drop(h.tx);

    let h = start(
        dir.path(),
        Keypair::try_from(&faucet_bytes[..]).unwrap(),
        collector,
        1,
    );
    assert!(h.rt.chain.durable_slot() >= durable);
    assert_eq!(h.balance(&alice.pubkey()), alice_balance);
    assert_eq!(h.balance(&bob), 10_000_000);
    assert!(h.rt.chain.status(&pay.signatures[0]).is_some());
    // A replay after restart is still a duplicate.
    h.send(&pay);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(h.balance(&bob), 10_000_000);
    h.rt.shutdown();
}

#[test]
fn spl_token_program_runs_from_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path(), Keypair::new(), Pubkey::new_unique(), 2);
    // A memo needs no accounts: proves a BPF program loads and runs.
    let memo = Pubkey::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
    let ix = solana_instruction::Instruction::new_with_bytes(memo, b"hello", vec![]);
    let tx = Transaction::new(
        &[&h.faucet],
        Message::new(&[ix], Some(&h.faucet.pubkey())),
        h.blockhash(),
    );
    h.send(&tx);
    let s = h.wait_durable(&tx.signatures[0]);
    assert_eq!(s.err, None, "logs: {:?}", s.logs);
    assert!(s.logs.iter().any(|l| l.contains("hello")), "{:?}", s.logs);
    h.rt.shutdown();
}

#[test]
fn address_lookup_table_program_creates_a_table() {
    use solana_address_lookup_table_interface::instruction as alt;
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path(), Keypair::new(), Pubkey::new_unique(), 1);
    std::thread::sleep(Duration::from_millis(100));
    let recent_slot = h.rt.chain.durable_slot();
    let (create, table) =
        alt::create_lookup_table(h.faucet.pubkey(), h.faucet.pubkey(), recent_slot);
    let tx = Transaction::new(
        &[&h.faucet],
        Message::new(&[create], Some(&h.faucet.pubkey())),
        h.blockhash(),
    );
    h.send(&tx);
    let s = h.wait_durable(&tx.signatures[0]);
    assert_eq!(s.err, None, "logs: {:?}", s.logs);
    let (acct, _) = h.rt.db.get(&table).unwrap().unwrap();
    assert_eq!(acct.owner(), &solana_sdk_ids::address_lookup_table::ID);
    h.rt.shutdown();
}

/// Pre-confirmations from the bank through the preconf tile: each is signed by the identity
/// key; the model learns from outcomes (overdrafts come to be predicted as failures, then
/// small transfers as successes); an unfunded payer is told why it was refused; every issued
/// promise is resolved once its transaction is durable.
#[test]
fn preconfirmations_are_signed_and_learn_from_outcomes() {
    use dataplane::preconf::{Outcome, Stage, Verified, verify};
    use std::net::UdpSocket;
    let dir = tempfile::tempdir().unwrap();
    let identity = Keypair::new();
    let node_socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let delivery = runtime::preconf::Delivery {
        identity_secret: identity.to_bytes()[..32].try_into().unwrap(),
        socket: Some(node_socket),
        ports: Vec::new(),
    };
    let h = start_with(
        dir.path(),
        Keypair::new(),
        Pubkey::new_unique(),
        2,
        Some(delivery),
    );
    let me = identity.pubkey().to_bytes();
    let from = dataplane::Source::Udp(client.local_addr().unwrap());
    let send = |tx: &Transaction| {
        let bytes = bincode::serialize(tx).unwrap();
        let mut p = h.pool.take().unwrap();
        assert!(p.fill_verified(&bytes));
        p.source = from;
        h.tx.send(p).unwrap();
    };
    // Every datagram that arrives within `wait`, verified.
    let collect = |wait: Duration| -> Vec<Verified> {
        let mut out = Vec::new();
        let end = Instant::now() + wait;
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            if let Ok(n) = client.recv(&mut buf) {
                out.push(verify(&buf[..n], Some(&me)).expect("signed by the identity"));
            }
        }
        out
    };
    let admitted_of =
        |got: &[Verified], sigs: &[solana_signature::Signature]| -> Vec<(Outcome, f64)> {
            sigs.iter()
                .map(|sig| {
                    let v = got
                        .iter()
                        .find(|v| {
                            v.body.stage == Stage::Admitted && v.body.signature == *sig.as_array()
                        })
                        .expect("an admitted pre-confirmation");
                    assert!((0.0..=1.0).contains(&v.body.probability));
                    assert!(v.body.deadline_slot >= v.body.expected_slot);
                    (v.body.outcome, v.body.probability)
                })
                .collect()
        };

    let alice = Keypair::new();
    let fund = h.transfer(&h.faucet, &alice.pubkey(), 1_000_000_000);
    send(&fund);
    h.wait_durable(&fund.signatures[0]);

    // A success's executed pre-confirmation carries its fee and balance changes.
    let pay = h.transfer(&alice, &h.faucet.pubkey(), 1_000);
    send(&pay);
    h.wait_durable(&pay.signatures[0]);
    let got = collect(Duration::from_millis(500));
    let executed = got
        .iter()
        .find(|v| {
            v.body.stage == Stage::Executed && v.body.signature == *pay.signatures[0].as_array()
        })
        .expect("an executed pre-confirmation");
    assert_eq!(executed.body.outcome, Outcome::Success);
    assert_eq!(executed.body.fee, 5_000);
    assert_eq!(executed.body.deltas(), &[(0, -6_000), (1, 1_000)]);

    // Overdrafts: the model comes to predict failure.
    let mut last_wave = Vec::new();
    for wave in 0..8u64 {
        let txs: Vec<Transaction> = (0..25u64)
            .map(|i| h.transfer(&alice, &h.faucet.pubkey(), 10_000_000_000 + wave * 100 + i))
            .collect();
        txs.iter().for_each(&send);
        for t in &txs {
            assert!(h.wait_durable(&t.signatures[0]).err.is_some());
        }
        let got = collect(Duration::from_millis(300));
        last_wave = admitted_of(
            &got,
            &txs.iter().map(|t| t.signatures[0]).collect::<Vec<_>>(),
        );
    }
    let failures = last_wave
        .iter()
        .filter(|(o, p)| *o == Outcome::Failure && *p > 0.5)
        .count();
    assert!(
        failures >= 20,
        "overdrafts predicted to fail: {last_wave:?}"
    );

    // Small transfers from the same payer: the model learns they succeed.
    for wave in 0..8u64 {
        let txs: Vec<Transaction> = (0..25u64)
            .map(|i| h.transfer(&alice, &h.faucet.pubkey(), 1 + wave * 100 + i))
            .collect();
        txs.iter().for_each(&send);
        for t in &txs {
            assert!(h.wait_durable(&t.signatures[0]).err.is_none());
        }
        let got = collect(Duration::from_millis(300));
        last_wave = admitted_of(
            &got,
            &txs.iter().map(|t| t.signatures[0]).collect::<Vec<_>>(),
        );
    }
    let successes = last_wave
        .iter()
        .filter(|(o, p)| *o == Outcome::Success && *p > 0.5)
        .count();
    assert!(
        successes >= 20,
        "small transfers predicted to succeed: {last_wave:?}"
    );

    // An unfunded payer is refused at admission and told why.
    let ghost = Keypair::new();
    let refused = h.transfer(&ghost, &h.faucet.pubkey(), 1);
    send(&refused);
    let got = collect(Duration::from_millis(500));
    let rejected = got
        .iter()
        .find(|v| v.body.signature == *refused.signatures[0].as_array())
        .expect("a rejected pre-confirmation");
    assert_eq!(rejected.body.stage, Stage::Rejected);
    assert_eq!(rejected.body.outcome, Outcome::NotIncluded);
    assert_eq!(
        rejected.body.reason,
        RuntimeDrop::FeePayerCannotPay as u16 + 1
    );
    let board = h.rt.preconf_board.as_ref().expect("a board");
    let posted = board
        .get(refused.signatures[0].as_array())
        .expect("on the board");
    assert_eq!(verify(&posted, Some(&me)).unwrap().body, rejected.body);

    // Every `admitted` promise issued was resolved (all its transactions are durable).
    let c = &h.rt.counters.preconf;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let issued = load(&c.issued[Stage::Admitted as usize]);
    let resolved: u64 = c.promises[Stage::Admitted as usize].iter().map(load).sum();
    assert_eq!(issued, resolved);
    assert!(issued >= 402, "{issued}");
    let held: u64 = c.held[Stage::Admitted as usize].iter().map(load).sum();
    assert!(held > 0 && held <= resolved);
}
