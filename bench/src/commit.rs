//! `bench commit`: the state commitment's update rate, proofs and memory, against Penumbra's
//! Jellyfish Merkle Tree (jmt, in-memory store) fed the same slots in the same run.
//!
//! A state of `--accounts` accounts (165-byte data) is loaded, then slots of 10k and 100k
//! changed accounts (98% updates, 2% new accounts) go through:
//! - root: account hashing + the tree update with its undo record and history (what a slot
//!   commit does for the Merkle root), the figure compared with the peer;
//! - lattice: Solana's lattice hash delta for the same slot (old and new account hashed);
//! - peer: `put_value_set` + `write_tree_update_batch` of the same accounts.
//!
//! Ours runs first over the whole workload, then the peer over the same base state and slots
//! (each phase alone in memory, so neither slows the other). Proofs: 1,000 keys at the newest
//! slot, half present and half absent: generation time, encoded size, verification time with
//! the standalone verifier.

use super::{Rows, median};
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use solana_account::{AccountSharedData, ReadableAccount, WritableAccount};
use solana_pubkey::Pubkey;
use std::time::Instant;
use storage::commitment::{Commitment, CommitmentConfig, account_state, lattice};

#[derive(Args, Clone)]
pub struct CommitArgs {
    /// Accounts in the state (10,000,000 for the full-size run).
    #[arg(long, default_value_t = 1_000_000)]
    pub accounts: usize,
    /// Measured slots per slot size per run.
    #[arg(long, default_value_t = 4)]
    pub slots: usize,
    /// Runs; figures are medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Memory for older-slot proof history, MiB. Each slot size is measured once the history
    /// is full (after warm-up slots), as in a running appliance; a smaller budget than the
    /// appliance's 1024 only shortens the warm-up.
    #[arg(long, default_value_t = 256)]
    pub history_mib: usize,
    /// Skip the peer (jmt) (its memory use grows with the state: ~1.5 KiB per account).
    #[arg(long)]
    pub no_peer: bool,
    #[arg(long)]
    pub json: bool,
}

const SLOT_SIZES: [usize; 2] = [10_000, 100_000];
const PROOF_SAMPLES: usize = 1_000;

fn account(rng: &mut StdRng, owner: &Pubkey) -> AccountSharedData {
    let mut a = AccountSharedData::new(rng.gen_range(1..1 << 40), 165, owner);
    rng.fill(a.data_as_mut_slice());
    a
}

fn peer_value(a: &AccountSharedData) -> Vec<u8> {
    let mut v = Vec::with_capacity(a.data().len() + 48);
    v.extend_from_slice(&a.lamports().to_le_bytes());
    v.extend_from_slice(a.owner().as_ref());
    v.push(u8::from(a.executable()));
    v.extend_from_slice(a.data());
    v
}

struct Peer {
    store: jmt::mock::MockTreeStore,
    version: u64,
}

impl Peer {
    fn put(&mut self, accounts: &[(Pubkey, AccountSharedData)]) -> anyhow::Result<[u8; 32]> {
        let tree = jmt::Sha256Jmt::new(&self.store);
        let set = accounts
            .iter()
            .map(|(k, a)| (jmt::KeyHash(k.to_bytes()), Some(peer_value(a))));
        let (root, batch) = tree.put_value_set(set, self.version)?;
        self.store.write_tree_update_batch(batch)?;
        self.version += 1;
        Ok(root.0)
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// The base state, generated in batches of 100k from a fixed seed (so each phase can
/// regenerate it instead of holding it twice).
fn base_batches(
    accounts: usize,
    owner: &Pubkey,
) -> impl Iterator<Item = Vec<(Pubkey, AccountSharedData)>> + '_ {
    let mut rng = StdRng::seed_from_u64(7);
    let mut made = 0;
    std::iter::from_fn(move || {
        let n = (accounts - made).min(100_000);
        made += n;
        (n > 0).then(|| {
            (0..n)
                .map(|_| {
                    (
                        Pubkey::new_from_array(rng.r#gen()),
                        account(&mut rng, owner),
                    )
                })
                .collect()
        })
    })
}

/// One slot of the workload: its size, its run (`WARMUP`: not timed) and the accounts it
/// writes (unique keys).
struct Slot {
    size: usize,
    run: usize,
    accounts: Vec<(Pubkey, AccountSharedData)>,
}

const WARMUP: usize = usize::MAX;
/// History bytes one changed account costs (undo nodes, leaf record, previous state).
const HISTORY_BYTES_PER_UPDATE: usize = 600;

/// The slots of every run, in order, each size after warm-up slots that fill the history:
/// 98% updates of existing keys, 2% new keys.
fn measured_slots(a: &CommitArgs, owner: &Pubkey) -> Vec<Slot> {
    let mut rng = StdRng::seed_from_u64(8);
    let mut keys: Vec<Pubkey> = base_batches(a.accounts, owner)
        .flat_map(|b| b.into_iter().map(|(k, _)| k))
        .collect();
    let mut out = Vec::new();
    for size in SLOT_SIZES {
        let warmup = ((a.history_mib << 20) / (size * HISTORY_BYTES_PER_UPDATE) + 1).min(40);
        let runs = std::iter::repeat_n(WARMUP, warmup)
            .chain((0..a.runs).flat_map(|r| std::iter::repeat_n(r, a.slots)));
        for run in runs {
            {
                let accounts: Vec<(Pubkey, AccountSharedData)> = (0..size)
                    .map(|_| {
                        let k = if rng.gen_bool(0.02) {
                            let k = Pubkey::new_from_array(rng.r#gen());
                            keys.push(k);
                            k
                        } else {
                            keys[rng.gen_range(0..keys.len())]
                        };
                        (k, account(&mut rng, owner))
                    })
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .into_iter()
                    .collect();
                out.push(Slot {
                    size,
                    run,
                    accounts,
                });
            }
        }
    }
    out
}

/// Per (slot size, run): accounts and seconds.
type Timings = std::collections::BTreeMap<(usize, usize), (usize, f64)>;

fn add(t: &mut Timings, s: &Slot, secs: f64) {
    if s.run == WARMUP {
        return;
    }
    let e = t.entry((s.size, s.run)).or_default();
    e.0 += s.accounts.len();
    e.1 += secs;
}

fn rates(t: &Timings, size: usize) -> Vec<f64> {
    t.iter()
        .filter(|((s, _), _)| *s == size)
        .map(|(_, (n, secs))| *n as f64 / secs)
        .collect()
}

pub fn run(a: &CommitArgs) -> anyhow::Result<Rows> {
    let owner = Pubkey::new_from_array([5; 32]);
    let slots = measured_slots(a, &owner);
    let mut rng = StdRng::seed_from_u64(9);

    // Phase 1: ours. Each slot: the lattice delta (old and new states hashed), then the root.
    let rss_before = rss_bytes();
    let mut commitment = Commitment::new(CommitmentConfig {
        window_slots: 1024,
        history_bytes: a.history_mib << 20,
    });
    let mut current: std::collections::HashMap<Pubkey, AccountSharedData> = Default::default();
    let mut slot = 0u64;
    let load_start = Instant::now();
    for batch in base_batches(a.accounts, &owner) {
        slot += 1;
        let staged = commitment.stage(slot, &batch, vec![None; batch.len()]);
        commitment.publish(staged);
        current.extend(batch);
    }
    let load_s = load_start.elapsed().as_secs_f64();
    let tree_bytes = commitment.tree().memory_bytes();
    let (mut root, mut lat) = (Timings::new(), Timings::new());
    for s in &slots {
        let old: Vec<Option<AccountSharedData>> = s
            .accounts
            .iter()
            .map(|(k, _)| current.get(k).cloned())
            .collect();
        slot += 1;
        let t = Instant::now();
        let delta = lattice::slot_delta(&s.accounts, &old);
        add(&mut lat, s, t.elapsed().as_secs_f64());
        let t = Instant::now();
        let staged = commitment.stage_with_delta(slot, &s.accounts, old, &delta);
        add(&mut root, s, t.elapsed().as_secs_f64());
        commitment.publish(staged);
        current.extend(s.accounts.iter().cloned());
    }
    let keys: Vec<Pubkey> = current.keys().copied().collect();

    // Proofs at the newest slot: half present keys, half absent.
    let mut gen_us = Vec::new();
    let mut verify_us = Vec::new();
    let mut bytes_max = 0usize;
    let get = |k: &Pubkey| Ok(current.get(k).cloned());
    for i in 0..PROOF_SAMPLES {
        let key = if i % 2 == 0 {
            keys[rng.gen_range(0..keys.len())]
        } else {
            Pubkey::new_from_array(rng.r#gen())
        };
        let t = Instant::now();
        let proof = commitment.prove(&key, None, get)?;
        gen_us.push(t.elapsed().as_secs_f64() * 1e6);
        let encoded = proof.encoded();
        bytes_max = bytes_max.max(encoded.len());
        let state = proof.account.as_ref().map(account_state);
        let t = Instant::now();
        let decoded = stateproof::Proof::decode(&encoded).map_err(|e| anyhow::anyhow!("{e}"))?;
        let ok = stateproof::verify(&proof.root, &key.to_bytes(), state.as_ref(), &decoded);
        verify_us.push(t.elapsed().as_secs_f64() * 1e6);
        ok.map_err(|e| anyhow::anyhow!("proof for {key} does not verify: {e}"))?;
    }
    let depth = commitment.tree().depth();
    let n_accounts = commitment.tree().len();
    let history_mib = commitment.history_bytes() as f64 / (1 << 20) as f64;
    let rss_ours = rss_bytes().saturating_sub(rss_before);
    drop(commitment);
    drop(current);
    eprintln!("ours: loaded {} accounts in {load_s:.1} s", a.accounts);

    // Phase 2: the peer, same base state and slots.
    let mut peer_t = Timings::new();
    if !a.no_peer {
        let mut peer = Peer {
            store: jmt::mock::MockTreeStore::new(true),
            version: 0,
        };
        for batch in base_batches(a.accounts, &owner) {
            peer.put(&batch)?;
        }
        for s in &slots {
            let t = Instant::now();
            peer.put(&s.accounts)?;
            add(&mut peer_t, s, t.elapsed().as_secs_f64());
        }
        eprintln!("peer: done");
    }

    let mut rows: Rows = Vec::new();
    let mut headline = (0.0, 0.0);
    for size in SLOT_SIZES {
        let r = median(rates(&root, size));
        let l = median(rates(&lat, size));
        let p = if a.no_peer {
            0.0
        } else {
            median(rates(&peer_t, size))
        };
        let ms = size as f64 / r * 1e3;
        if size == 100_000 {
            headline = (r, p);
            rows.push(("root_ms_per_slot_100k", ms, "ms"));
            rows.push(("updates_per_s_100k", r, "accounts/s"));
            rows.push(("lattice_updates_per_s_100k", l, "accounts/s"));
            rows.push(("peer_updates_per_s_100k", p, "accounts/s"));
        } else {
            rows.push(("root_ms_per_slot_10k", ms, "ms"));
            rows.push(("updates_per_s_10k", r, "accounts/s"));
            rows.push(("lattice_updates_per_s_10k", l, "accounts/s"));
            rows.push(("peer_updates_per_s_10k", p, "accounts/s"));
        }
    }
    let (r, p) = headline;
    rows.push(("updates_per_s", r, "accounts/s (100k-account slots)"));
    rows.push(("peer_updates_per_s", p, "accounts/s (jmt, same slots)"));
    rows.push(("ratio_vs_peer", if p > 0.0 { r / p } else { 0.0 }, "x"));
    rows.push(("proof_bytes_max", bytes_max as f64, "bytes"));
    rows.push(("proof_gen_us_p50", median(gen_us), "us"));
    rows.push(("verify_us_p50", median(verify_us), "us"));
    rows.push(("tree_depth", depth as f64, "levels"));
    rows.push(("accounts", n_accounts as f64, "accounts"));
    rows.push((
        "tree_bytes_per_account",
        tree_bytes as f64 / a.accounts as f64,
        "bytes",
    ));
    rows.push((
        "history_mib",
        history_mib,
        "MiB (undo records for older-slot proofs)",
    ));
    rows.push((
        "rss_growth_mib",
        rss_ours as f64 / (1 << 20) as f64,
        "MiB (ours: tree, history, the workload's account map)",
    ));
    rows.push(("load_s", load_s, "s"));
    Ok(rows)
}
