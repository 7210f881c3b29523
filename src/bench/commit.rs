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
//! Then proofs for 1,000 keys (half present, half absent): generation time, encoded size,
//! verification time with the standalone verifier.

use super::Rows;
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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

pub fn run(a: &CommitArgs) -> anyhow::Result<Rows> {
    let mut rng = StdRng::seed_from_u64(7);
    let owner = Pubkey::new_unique();
    let mut keys: Vec<Pubkey> = Vec::with_capacity(a.accounts);
    let mut commitment = Commitment::new(CommitmentConfig {
        window_slots: 1024,
        history_bytes: 1 << 30,
    });
    let mut peer = (!a.no_peer).then(|| Peer {
        store: jmt::mock::MockTreeStore::new(true),
        version: 0,
    });
    let rss_before = rss_bytes();
    let load_start = Instant::now();
    let mut slot = 0u64;
    let mut current: std::collections::HashMap<Pubkey, AccountSharedData> = Default::default();
    while keys.len() < a.accounts {
        let n = (a.accounts - keys.len()).min(100_000);
        let batch: Vec<(Pubkey, AccountSharedData)> = (0..n)
            .map(|_| {
                (
                    Pubkey::new_from_array(rng.r#gen()),
                    account(&mut rng, &owner),
                )
            })
            .collect();
        keys.extend(batch.iter().map(|(k, _)| *k));
        slot += 1;
        let staged = commitment.stage(slot, &batch, vec![None; batch.len()]);
        commitment.publish(staged);
        if let Some(p) = peer.as_mut() {
            p.put(&batch)?;
        }
        current.extend(batch);
    }
    let load_s = load_start.elapsed().as_secs_f64();
    let tree_bytes = commitment.tree().memory_bytes();
    eprintln!(
        "loaded {} accounts in {load_s:.1} s (tree {:.0} MiB)",
        a.accounts,
        tree_bytes as f64 / (1 << 20) as f64
    );

    let mut rows: Rows = Vec::new();
    let mut headline = (0.0, 0.0);
    for size in SLOT_SIZES {
        let (mut root_rate, mut lattice_rate, mut peer_rate, mut root_ms) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..a.runs {
            let (mut t_root, mut t_lat, mut t_peer, mut n) = (0.0, 0.0, 0.0, 0usize);
            for _ in 0..a.slots {
                let batch: Vec<(Pubkey, AccountSharedData)> = (0..size)
                    .map(|_| {
                        let k = if rng.gen_bool(0.02) {
                            Pubkey::new_from_array(rng.r#gen())
                        } else {
                            keys[rng.gen_range(0..keys.len())]
                        };
                        (k, account(&mut rng, &owner))
                    })
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .into_iter()
                    .collect();
                let old: Vec<Option<AccountSharedData>> =
                    batch.iter().map(|(k, _)| current.get(k).cloned()).collect();
                slot += 1;
                let t = Instant::now();
                let delta = lattice::slot_delta(&batch, &old);
                t_lat += t.elapsed().as_secs_f64();
                // The root: what the peer also does.
                let t = Instant::now();
                let staged = commitment.stage_with_delta(slot, &batch, old, &delta);
                t_root += t.elapsed().as_secs_f64();
                commitment.publish(staged);
                if let Some(p) = peer.as_mut() {
                    let t = Instant::now();
                    p.put(&batch)?;
                    t_peer += t.elapsed().as_secs_f64();
                }
                for (k, acc) in &batch {
                    if !current.contains_key(k) {
                        keys.push(*k);
                    }
                    current.insert(*k, acc.clone());
                }
                n += batch.len();
            }
            root_rate.push(n as f64 / t_root);
            lattice_rate.push(n as f64 / t_lat);
            root_ms.push(t_root * 1e3 / a.slots as f64);
            if peer.is_some() {
                peer_rate.push(n as f64 / t_peer);
            }
        }
        let r = median(root_rate);
        let p = if peer_rate.is_empty() {
            0.0
        } else {
            median(peer_rate)
        };
        if size == 100_000 {
            headline = (r, p);
            rows.push(("root_ms_per_slot_100k", median(root_ms), "ms"));
            rows.push(("updates_per_s_100k", r, "accounts/s"));
            rows.push((
                "lattice_updates_per_s_100k",
                median(lattice_rate),
                "accounts/s",
            ));
            rows.push(("peer_updates_per_s_100k", p, "accounts/s"));
        } else {
            rows.push(("root_ms_per_slot_10k", median(root_ms), "ms"));
            rows.push(("updates_per_s_10k", r, "accounts/s"));
            rows.push((
                "lattice_updates_per_s_10k",
                median(lattice_rate),
                "accounts/s",
            ));
            rows.push(("peer_updates_per_s_10k", p, "accounts/s"));
        }
    }

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
    let (r, p) = headline;
    rows.push(("updates_per_s", r, "accounts/s (100k-account slots)"));
    rows.push(("peer_updates_per_s", p, "accounts/s (jmt, same slots)"));
    rows.push(("ratio_vs_peer", if p > 0.0 { r / p } else { 0.0 }, "x"));
    rows.push(("proof_bytes_max", bytes_max as f64, "bytes"));
    rows.push(("proof_gen_us_p50", median(gen_us), "us"));
    rows.push(("verify_us_p50", median(verify_us), "us"));
    rows.push(("tree_depth", commitment.tree().depth() as f64, "levels"));
    rows.push(("accounts", commitment.tree().len() as f64, "accounts"));
    rows.push((
        "tree_bytes_per_account",
        tree_bytes as f64 / a.accounts as f64,
        "bytes",
    ));
    rows.push((
        "history_mib",
        commitment.history_bytes() as f64 / (1 << 20) as f64,
        "MiB (undo records for older-slot proofs)",
    ));
    rows.push((
        "rss_growth_mib",
        rss_bytes().saturating_sub(rss_before) as f64 / (1 << 20) as f64,
        "MiB (tree, history, peer, workload)",
    ));
    rows.push(("load_s", load_s, "s"));
    Ok(rows)
}
