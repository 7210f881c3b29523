//! Pre-confirmations as a client measures them: a whole node, transactions sent over UDP from
//! one socket that also receives the signed pre-confirmations, in phases whose outcomes differ
//! (calm, a hot-account surge, failures, congestion, blockhashes about to expire), ordered
//! A B C D E C A so the model must adapt and re-adapt. Every datagram is verified against the
//! node's identity; every `admitted` promise is checked against what the chain recorded once
//! nothing more can land. Reported: calibration (ECE), Brier scores of the model, of a
//! constant base rate and of a rule of thumb on the same promises, latency from receipt to the
//! pre-confirmation (the node's histogram) and as the client sees it, and the throughput cost
//! of producing them (saturated transfers with pre-confirmations on and off, alternating).

use super::pipeline::{Pace, disjoint_tx, drive, send_burst};
use super::{Line, Plot, Report, Rows, median, percentile, workload};
use clap::Args;
use dataplane::preconf::{Outcome, Stage, verify};
use rand::{Rng, SeedableRng};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::Transaction;
use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct PreconfArgs {
    /// Seconds each phase sends for.
    #[arg(long, default_value_t = 6.0)]
    pub phase_seconds: f64,
    /// Transactions per second in the phases that are not congested (congestion: 3×).
    #[arg(long, default_value_t = 1_000.0)]
    pub rate: f64,
    /// Throughput-cost runs (each: one node with pre-confirmations, one without).
    #[arg(long, default_value_t = 3)]
    pub cost_runs: usize,
    /// Transactions per throughput-cost run.
    #[arg(long, default_value_t = 20_000)]
    pub cost_txs: usize,
    #[arg(long)]
    pub json: bool,
}

/// What a phase sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Calm,
    Hot,
    Failures,
    Congestion,
    NearExpiry,
}

const ORDER: [Phase; 7] = [
    Phase::Calm,
    Phase::Hot,
    Phase::Failures,
    Phase::Congestion,
    Phase::NearExpiry,
    Phase::Failures,
    Phase::Calm,
];

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Calm => "calm",
            Phase::Hot => "hot",
            Phase::Failures => "failures",
            Phase::Congestion => "congestion",
            Phase::NearExpiry => "near_expiry",
        }
    }
}

/// Kinds of transaction; the rule of thumb sees this much, as a wallet would (it knows its
/// balance, its fee and its blockhash's age).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Cold,
    Hot,
    Overdraft,
    Unfunded,
    Poor,
    LowFee,
    HighFee,
    OldBlockhash,
}

const SENDERS: usize = 4_000;
const RECIPIENTS: usize = 2_000;
const HOT_WALLETS: usize = 2;
const POOR: usize = 2_000;
/// Transactions per poor payer: it can pay the fees of the first three only.
const POOR_TXS: usize = 5;
const SEQUENCER_CAPACITY: usize = 1_500;

struct Accounts {
    senders: Vec<Keypair>,
    recipients: Vec<Pubkey>,
    hot: Vec<Pubkey>,
    poor: Vec<Keypair>,
}

struct Planned {
    wire: Vec<u8>,
    signature: Signature,
    kind: Kind,
}

fn transfer(
    payer: &Keypair,
    to: &Pubkey,
    lamports: u64,
    price: u64,
    blockhash: Hash,
) -> Transaction {
    let mut ixs = Vec::new();
    if price > 0 {
        // Compute Budget: SetComputeUnitPrice (3, µlamports per CU) and SetComputeUnitLimit
        // (2, CU; a transfer takes 150).
        let budget = |data: Vec<u8>| {
            solana_instruction::Instruction::new_with_bytes(
                solana_sdk_ids::compute_budget::ID,
                &data,
                Vec::new(),
            )
        };
        ixs.push(budget([&[3u8][..], &price.to_le_bytes()].concat()));
        ixs.push(budget([&[2u8][..], &1_000u32.to_le_bytes()].concat()));
    }
    ixs.push(solana_system_interface::instruction::transfer(
        &payer.pubkey(),
        to,
        lamports,
    ));
    Transaction::new(
        &[payer],
        Message::new(&ixs, Some(&payer.pubkey())),
        blockhash,
    )
}

/// The phase's transactions, signed with `blockhash` (`old` for the near-expiry phase).
fn plan(
    a: &Accounts,
    phase: Phase,
    n: usize,
    blockhash: Hash,
    old: Hash,
    seed: u64,
) -> Vec<Planned> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut poor_next = (seed as usize * 97) % POOR;
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    while out.len() < n {
        i += 1;
        let sender = &a.senders[rng.gen_range(0..SENDERS)];
        let cold = a.recipients[rng.gen_range(0..RECIPIENTS)];
        let amount = rng.gen_range(1_000..100_000);
        let roll = rng.gen_range(0..100);
        let (kind, tx) = match phase {
            Phase::Calm | Phase::Hot => {
                let hot_share = if phase == Phase::Hot { 60 } else { 2 };
                if roll < 2 {
                    (
                        Kind::Overdraft,
                        transfer(sender, &cold, 2 * workload::PAYER_LAMPORTS, 0, blockhash),
                    )
                } else if roll < 2 + hot_share {
                    let hot = a.hot[rng.gen_range(0..HOT_WALLETS)];
                    (Kind::Hot, transfer(sender, &hot, amount, 0, blockhash))
                } else {
                    (Kind::Cold, transfer(sender, &cold, amount, 0, blockhash))
                }
            }
            Phase::Failures => {
                if roll < 25 {
                    (
                        Kind::Overdraft,
                        transfer(sender, &cold, 2 * workload::PAYER_LAMPORTS, 0, blockhash),
                    )
                } else if roll < 40 {
                    (
                        Kind::Unfunded,
                        transfer(&Keypair::new(), &cold, amount, 0, blockhash),
                    )
                } else if roll < 60 {
                    // A poor payer's transactions go out back to back.
                    let payer = &a.poor[poor_next % POOR];
                    poor_next += 1;
                    for k in 0..POOR_TXS {
                        if out.len() < n {
                            let tx =
                                transfer(payer, &cold, 1 + k as u64 + i as u64 * 8, 0, blockhash);
                            out.push(Planned {
                                wire: bincode::serialize(&tx).expect("serializes"),
                                signature: tx.signatures[0],
                                kind: Kind::Poor,
                            });
                        }
                    }
                    continue;
                } else {
                    (Kind::Cold, transfer(sender, &cold, amount, 0, blockhash))
                }
            }
            Phase::Congestion => {
                if roll < 30 {
                    (Kind::LowFee, transfer(sender, &cold, amount, 0, blockhash))
                } else {
                    let price = rng.gen_range(1_000..1_000_000);
                    (
                        Kind::HighFee,
                        transfer(sender, &cold, amount, price, blockhash),
                    )
                }
            }
            Phase::NearExpiry => (Kind::OldBlockhash, transfer(sender, &cold, amount, 0, old)),
        };
        out.push(Planned {
            wire: bincode::serialize(&tx).expect("serializes"),
            signature: tx.signatures[0],
            kind,
        });
    }
    out
}

/// An `admitted` promise as the client received it.
struct Promise {
    phase: usize,
    kind: Kind,
    probability: f64,
    /// Client clock: sent and received.
    sent_ns: u64,
    received_ns: u64,
}

/// What the receiving thread collected.
#[derive(Default)]
struct Received {
    admitted: HashMap<Signature, (Outcome, f64, u64, u64)>,
    rejected: usize,
    executed: usize,
    invalid: usize,
}

fn receive(sock: &UdpSocket, identity: [u8; 32], stop: &AtomicBool, into: &Mutex<Received>) {
    let mut buf = [0u8; 2048];
    sock.set_read_timeout(Some(Duration::from_millis(20))).ok();
    while !stop.load(Ordering::Acquire) {
        let Ok(n) = sock.recv(&mut buf) else {
            continue;
        };
        let now = dataplane::monotonic_ns();
        let mut r = into.lock().expect("not poisoned");
        match verify(&buf[..n], Some(&identity)) {
            Err(_) => r.invalid += 1,
            Ok(v) => {
                let b = v.body;
                match b.stage {
                    Stage::Admitted => {
                        r.admitted.insert(
                            Signature::from(b.signature),
                            (b.outcome, b.probability, b.deadline_slot, now),
                        );
                    }
                    Stage::Rejected => r.rejected += 1,
                    Stage::Executed => r.executed += 1,
                }
            }
        }
    }
}

/// Σ over 10 equal bins of |Σp − Σheld| / N.
fn ece(pairs: &[(f64, bool)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let mut bins = [(0.0f64, 0.0f64); 10];
    for &(p, y) in pairs {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += p;
        bins[b].1 += f64::from(u8::from(y));
    }
    bins.iter().map(|(p, y)| (p - y).abs()).sum::<f64>() / pairs.len() as f64
}

fn brier(pairs: &[(f64, bool)]) -> f64 {
    pairs
        .iter()
        .map(|&(p, y)| (p - f64::from(u8::from(y))).powi(2))
        .sum::<f64>()
        / pairs.len().max(1) as f64
}

fn log_loss(pairs: &[(f64, bool)]) -> f64 {
    pairs
        .iter()
        .map(|&(p, y)| {
            let p = p.clamp(1e-6, 1.0 - 1e-6);
            -if y { p.ln() } else { (1.0 - p).ln() }
        })
        .sum::<f64>()
        / pairs.len().max(1) as f64
}

/// (mean predicted, observed) per bin with at least 20 promises.
fn reliability(pairs: &[(f64, bool)]) -> Vec<(f64, f64)> {
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
    for &(p, y) in pairs {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += p;
        bins[b].1 += f64::from(u8::from(y));
        bins[b].2 += 1;
    }
    bins.iter()
        .filter(|b| b.2 >= 20)
        .map(|b| (b.0 / b.2 as f64, b.1 / b.2 as f64))
        .collect()
}

/// Probabilities a predictor that learns only from outcomes resolved `lag_ns` before each
/// promise gives, per bucket (`key`): the running frequency with which promises held, from
/// a Beta(1,1) start. One bucket is the constant base rate; the kinds a wallet knows are the
/// rule of thumb.
fn lagged_frequency(order: &[(u64, bool)], keys: &[u64], lag_ns: u64) -> Vec<f64> {
    let mut counts: HashMap<u64, (f64, f64)> = HashMap::new();
    let mut released = 0;
    let mut out = Vec::with_capacity(order.len());
    for (i, &(t, _)) in order.iter().enumerate() {
        while released < i && order[released].0 + lag_ns <= t {
            let c = counts.entry(keys[released]).or_insert((0.0, 0.0));
            c.0 += f64::from(u8::from(order[released].1));
            c.1 += 1.0;
            released += 1;
        }
        let (held, n) = counts.get(&keys[i]).copied().unwrap_or((0.0, 0.0));
        out.push((held + 1.0) / (n + 2.0));
    }
    out
}

fn node_config(cfg: &mut appliance::config::Config, validity_ms: u64) {
    cfg.metrics.enabled = false;
    cfg.runtime.blockhash_validity_ms = validity_ms;
    cfg.runtime.sequencer_capacity = SEQUENCER_CAPACITY;
    // One client address sends everything: the per-peer reply bound would cap the bench.
    cfg.preconf.max_replies_per_peer_per_s = 10_000_000;
}

struct Calibrated {
    rows: Rows,
    plots: Vec<Plot>,
}

fn calibration_run(a: &PreconfArgs) -> anyhow::Result<Calibrated> {
    let phase_ns = (a.phase_seconds * 1e9) as u64;
    // The near-expiry phase signs with the blockhash seen when the phase before it began:
    // it expires half-way through the phase.
    let validity_ms = ((a.phase_seconds * 1.5) * 1000.0) as u64;
    let accounts = Accounts {
        senders: (0..SENDERS).map(|_| Keypair::new()).collect(),
        recipients: (0..RECIPIENTS).map(|_| Pubkey::new_unique()).collect(),
        hot: (0..HOT_WALLETS).map(|_| Pubkey::new_unique()).collect(),
        poor: (0..POOR).map(|_| Keypair::new()).collect(),
    };
    let extra = accounts
        .recipients
        .iter()
        .chain(&accounts.hot)
        .map(|k| (*k, workload::PAYER_LAMPORTS))
        // Three fees and the transfers.
        .chain(accounts.poor.iter().map(|k| (k.pubkey(), 3 * 5_000 + 100)))
        .collect();
    let senders = accounts
        .senders
        .iter()
        .map(|k| k.insecure_clone())
        .collect();
    let funded = workload::funded_node_with(senders, extra, |c| node_config(c, validity_ms))?;
    let node = &funded.node;
    let identity = node.identity.to_bytes();
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(node.tpu_addr)?;
    let recv_sock = sock.try_clone()?;
    let stop = AtomicBool::new(false);
    let received = Mutex::new(Received::default());
    // (phase, kind, send ns) by signature.
    let mut sent: HashMap<Signature, (usize, Kind, u64)> = HashMap::new();
    std::thread::scope(|s| -> anyhow::Result<()> {
        s.spawn(|| receive(&recv_sock, identity, &stop, &received));
        let result = (|| -> anyhow::Result<()> {
            let mut old = workload::latest_blockhash(node)?;
            for (p, &phase) in ORDER.iter().enumerate() {
                let blockhash = workload::latest_blockhash(node)?;
                let rate = if phase == Phase::Congestion {
                    3.0 * a.rate
                } else {
                    a.rate
                };
                let n = (rate * a.phase_seconds) as usize;
                let txs = plan(&accounts, phase, n, blockhash, old, p as u64 + 1);
                old = blockhash;
                let start = Instant::now();
                // One at a time at evenly spaced times, as independent clients send (a burst
                // of many at once would measure the verify tile's queue, not the path).
                for (b, burst) in txs.chunks(1).enumerate() {
                    let due = start + Duration::from_secs_f64(b as f64 / rate);
                    if let Some(w) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(w);
                    }
                    let now = dataplane::monotonic_ns();
                    for t in burst {
                        sent.insert(t.signature, (p, t.kind, now));
                    }
                    let wires: Vec<&[u8]> = burst.iter().map(|t| t.wire.as_slice()).collect();
                    send_burst(&sock, &wires)?;
                }
                let left = phase_ns.saturating_sub(start.elapsed().as_nanos() as u64);
                std::thread::sleep(Duration::from_nanos(left));
            }
            // Nothing sent can land once every blockhash used has expired; then wait for
            // the last slots to be durable.
            std::thread::sleep(Duration::from_millis(validity_ms + 500));
            let chain = &node.runtime.chain;
            let target = chain.processed_slot();
            let deadline = Instant::now() + Duration::from_secs(30);
            while chain.durable_slot() < target && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        })();
        stop.store(true, Ordering::Release);
        result
    })?;
    let r = received.into_inner().expect("not poisoned");
    let chain = &node.runtime.chain;
    let mut promises: Vec<(Promise, bool)> = Vec::new();
    for (sig, &(outcome, probability, deadline, received_ns)) in &r.admitted {
        let Some(&(phase, kind, sent_ns)) = sent.get(sig) else {
            continue;
        };
        let status = chain.status(sig);
        let held = match (outcome, status.as_deref()) {
            (Outcome::Success, Some(st)) => st.err.is_none() && st.slot <= deadline,
            (Outcome::Failure, Some(st)) => st.err.is_some() && st.slot <= deadline,
            (Outcome::NotIncluded, None) => true,
            _ => false,
        };
        promises.push((
            Promise {
                phase,
                kind,
                probability,
                sent_ns,
                received_ns,
            },
            held,
        ));
    }
    anyhow::ensure!(
        !promises.is_empty(),
        "no admitted pre-confirmation came back"
    );
    promises.sort_by_key(|(p, _)| p.received_ns);
    let ours: Vec<(f64, bool)> = promises.iter().map(|(p, y)| (p.probability, *y)).collect();
    let order: Vec<(u64, bool)> = promises.iter().map(|(p, y)| (p.received_ns, *y)).collect();
    // A promise resolves about a second after it is made (its slot's commit, or the
    // deadline): the competitors learn from what resolved that long before.
    let lag = 1_000_000_000;
    let baseline_p = lagged_frequency(&order, &vec![0; order.len()], lag);
    let kinds: Vec<u64> = promises.iter().map(|(p, _)| p.kind as u64).collect();
    let heuristic_p = lagged_frequency(&order, &kinds, lag);
    let with = |ps: &[f64]| -> Vec<(f64, bool)> {
        ps.iter().zip(&order).map(|(&p, &(_, y))| (p, y)).collect()
    };
    let (baseline, heuristic) = (with(&baseline_p), with(&heuristic_p));
    let mut rtt: Vec<u64> = promises
        .iter()
        .map(|(p, _)| p.received_ns.saturating_sub(p.sent_ns) / 1_000)
        .collect();
    // The first 2,000 promises of each phase after the first: how fast the model re-adapts.
    let mut after_shift = Vec::new();
    for p in 1..ORDER.len() {
        after_shift.extend(
            promises
                .iter()
                .filter(|(q, _)| q.phase == p)
                .take(2_000)
                .map(|(q, y)| (q.probability, *y)),
        );
    }
    let latency = &node.runtime.counters.preconf.latency;
    let verified = &node.dataplane.verify_latency;
    let held = ours.iter().filter(|p| p.1).count();
    let mut rows: Rows = vec![
        ("ece", ece(&ours), "ratio"),
        ("brier", brier(&ours), "ratio"),
        ("brier_baseline", brier(&baseline), "ratio"),
        ("brier_heuristic", brier(&heuristic), "ratio"),
        ("log_loss", log_loss(&ours), "nats"),
        ("ece_heuristic", ece(&heuristic), "ratio"),
        ("ece_first_2000_after_shift", ece(&after_shift), "ratio"),
        ("held_share", held as f64 / ours.len() as f64, "ratio"),
        ("promises", ours.len() as f64, "count"),
        ("sent", sent.len() as f64, "count"),
        ("rejected_preconfs", r.rejected as f64, "count"),
        ("executed_preconfs", r.executed as f64, "count"),
        ("invalid_signatures", r.invalid as f64, "count"),
        ("preconf_p50_us", latency.quantile(0.5) as f64, "us"),
        ("preconf_p99_us", latency.quantile(0.99) as f64, "us"),
        // Of which receipt to verified (the net and verify tiles).
        ("verified_p50_us", verified.quantile(0.5) as f64, "us"),
        ("verified_p99_us", verified.quantile(0.99) as f64, "us"),
        ("client_rtt_p50_us", percentile(&mut rtt, 0.5), "us"),
        ("client_rtt_p99_us", percentile(&mut rtt, 0.99), "us"),
    ];
    for (p, phase) in ORDER.iter().enumerate() {
        let these: Vec<(f64, bool)> = promises
            .iter()
            .filter(|(q, _)| q.phase == p)
            .map(|(q, y)| (q.probability, *y))
            .collect();
        // Names are static: the seven phases, in order.
        const NAMES: [&str; 7] = [
            "phase1_calm_ece",
            "phase2_hot_ece",
            "phase3_failures_ece",
            "phase4_congestion_ece",
            "phase5_near_expiry_ece",
            "phase6_failures_ece",
            "phase7_calm_ece",
        ];
        debug_assert!(NAMES[p].contains(phase.name()));
        rows.push((NAMES[p], ece(&these), "ratio"));
    }
    let line = |label: &str, pairs: &[(f64, bool)]| Line {
        label: label.into(),
        points: reliability(pairs),
    };
    let plots = vec![Plot {
        id: "reliability",
        title:
            "Admitted pre-confirmations: predicted probability against how often the promise held"
                .into(),
        x_label: "predicted probability (bin mean)",
        y_label: "observed frequency",
        lines: vec![
            Line {
                label: "perfect calibration".into(),
                points: vec![(0.0, 0.0), (1.0, 1.0)],
            },
            line("Bayesian (ours)", &ours),
            line("rule of thumb", &heuristic),
            line("base rate", &baseline),
        ],
    }];
    Ok(Calibrated { rows, plots })
}

/// Committed transfers per second on a saturated node, pre-confirmations on or off.
fn saturated_tps(a: &PreconfArgs, preconf: bool) -> anyhow::Result<f64> {
    let funded = workload::funded_node(a.cost_txs, |c| {
        c.metrics.enabled = false;
        c.preconf.enabled = preconf;
        c.preconf.max_replies_per_peer_per_s = 10_000_000;
    })?;
    let blockhash = workload::latest_blockhash(&funded.node)?;
    let txs: Vec<_> = funded
        .payers
        .iter()
        .map(|p| disjoint_tx(p, blockhash))
        .collect();
    Ok(drive(&funded.node, &txs, Pace::Window)?.window_tps)
}

pub fn run(a: &PreconfArgs) -> anyhow::Result<Report> {
    let c = calibration_run(a)?;
    let mut ratios = Vec::new();
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for run in 0..a.cost_runs.max(1) {
        // Alternate which goes first: a machine that warms up favours neither.
        let (x, y) = if run % 2 == 0 {
            let x = saturated_tps(a, true)?;
            (x, saturated_tps(a, false)?)
        } else {
            let y = saturated_tps(a, false)?;
            (saturated_tps(a, true)?, y)
        };
        on.push(x);
        off.push(y);
        ratios.push(x / y.max(1e-9));
    }
    let mut rows = c.rows;
    rows.extend([
        ("tps_preconf_on", median(on), "tx/s"),
        ("tps_preconf_off", median(off), "tx/s"),
        ("throughput_cost", 1.0 - median(ratios), "ratio"),
    ]);
    Ok(Report {
        rows,
        plots: c.plots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_of_known_streams() {
        let perfect = [(1.0, true), (0.0, false)];
        assert_eq!(ece(&perfect), 0.0);
        assert_eq!(brier(&perfect), 0.0);
        let coin: Vec<(f64, bool)> = (0..100).map(|i| (0.5, i % 2 == 0)).collect();
        assert!(ece(&coin) < 1e-12);
        assert!((brier(&coin) - 0.25).abs() < 1e-12);
        assert!((log_loss(&coin) - std::f64::consts::LN_2).abs() < 1e-9);
        let wrong = [(0.9, false); 10];
        assert!((ece(&wrong) - 0.9).abs() < 1e-12);
    }

    #[test]
    fn lagged_frequency_learns_only_from_what_resolved_before() {
        // Outcomes at t = 0..10 s; with a 5 s lag the prediction at t sees t − 5 and before.
        let order: Vec<(u64, bool)> = (0..10).map(|t| (t * 1_000_000_000, true)).collect();
        let p = lagged_frequency(&order, &[0; 10], 5_000_000_000);
        assert_eq!(p[0], 0.5);
        assert_eq!(p[4], 0.5, "nothing resolved 5 s before t = 4");
        assert_eq!(p[5], 2.0 / 3.0, "one success resolved");
        assert_eq!(p[9], 6.0 / 7.0);
        // Buckets are apart.
        let keys = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
        let q = lagged_frequency(&order, &keys, 0);
        assert_eq!(q[2], 2.0 / 3.0);
        assert_eq!(q[3], 2.0 / 3.0);
    }
}
