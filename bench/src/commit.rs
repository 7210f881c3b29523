//! `bench commit`: the state commitment's update rate, proofs and memory, against Penumbra's
//! Jellyfish Merkle Tree (jmt) fed the same slots in the same run.
//!
//! A state of `--accounts` accounts (165-byte data) is loaded into both, then slots of 1k,
//! 10k and 100k changed accounts (98% updates, 2% new accounts) go through both, slot by
//! slot. Per slot we time:
//! - ours: account hashing + the tree update with its undo record (`stage`), then `publish`
//!   (the step that makes the new root the one proofs are served against), once with the
//!   hashing limited to one thread and once on every core (the first of the two is rolled
//!   back, so both do the same work on the same state; which goes first alternates);
//! - lattice: Solana's lattice hash delta for the same slot (old and new account hashed);
//! - peer: jmt's batch API, one `batch_put_value_sets` call per slot, and the write of the
//!   returned batch into its node store (what makes its new root readable). jmt's API is
//!   serial: it runs on one core.
//!
//! Whether ours or the peer goes first alternates slot by slot. Each slot size is measured
//! after warm-up slots (which fill our proof history to its budget, as in a running
//! appliance); a run is `--slots` slots of each size, and every ratio is taken per run, then
//! the median reported. Proofs: 1,000 keys at the newest slot, half present and half absent:
//! generation time, encoded size, verification time with the standalone verifier.

use super::{Line, Plot, Report, median};
use clap::Args;
use jmt::storage::{Node, NodeBatch, NodeKey, StaleNodeIndex, TreeReader, TreeWriter};
use jmt::{KeyHash, OwnedValue, Version};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use solana_account::{AccountSharedData, ReadableAccount, WritableAccount};
use solana_pubkey::Pubkey;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;
use storage::commitment::{Commitment, CommitmentConfig, account_state, lattice, par};

#[derive(Args, Clone)]
pub struct CommitArgs {
    /// Accounts in the state (10,000,000 for the full-size run).
    #[arg(long, default_value_t = 1_000_000)]
    pub accounts: usize,
    /// Measured slots per slot size per run.
    #[arg(long, default_value_t = 4)]
    pub slots: usize,
    /// Runs; figures are medians of per-run figures.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Memory for older-slot proof history, MiB. Each slot size is measured once the history
    /// is full (after warm-up slots), as in a running appliance; a smaller budget than the
    /// appliance's 1024 only shortens the warm-up.
    #[arg(long, default_value_t = 256)]
    pub history_mib: usize,
    /// Skip the peer (jmt).
    #[arg(long)]
    pub no_peer: bool,
    #[arg(long)]
    pub json: bool,
}

const SLOT_SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const PROOF_SAMPLES: usize = 1_000;

fn account(rng: &mut StdRng, owner: &Pubkey) -> AccountSharedData {
    let mut a = AccountSharedData::new(rng.gen_range(1..1 << 40), 165, owner);
    rng.fill(a.data_as_mut_slice());
    a
}

/// The account as jmt's value: lamports, owner, executable, data (what our account hash
/// covers, less the rent epoch).
fn peer_value(a: &AccountSharedData) -> Vec<u8> {
    let mut v = Vec::with_capacity(a.data().len() + 48);
    v.extend_from_slice(&a.lamports().to_le_bytes());
    v.extend_from_slice(a.owner().as_ref());
    v.push(u8::from(a.executable()));
    v.extend_from_slice(a.data());
    v
}

/// FxHash (rustc's): node keys are a version and a short nibble path, and SipHash would be
/// a handicap an embedder would not keep.
#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// jmt's node store as an embedder holding the tree in memory beside an account store would
/// write it: nodes in a hash map (jmt's own `MockTreeStore` is a test mock: SipHash, a lock,
/// and every version of every value kept). Values stay in the account store, as ours: the
/// tree needs only their hashes. Stale nodes are pruned after each version, outside the
/// timed section, so only the newest version stays readable (jmt's pruner with the shortest
/// window; ours keeps older-slot history, so this only favours jmt).
#[derive(Default)]
struct PeerStore {
    nodes: RefCell<HashMap<NodeKey, Node, BuildHasherDefault<Fx>>>,
}

impl TreeReader for PeerStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.nodes.borrow().get(node_key).cloned())
    }

    fn get_value_option(&self, _: Version, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        anyhow::bail!("values are kept by the account store, not by the tree")
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, jmt::storage::LeafNode)>> {
        anyhow::bail!("not used by tree updates")
    }
}

impl TreeWriter for PeerStore {
    fn write_node_batch(&self, batch: &NodeBatch) -> anyhow::Result<()> {
        let mut nodes = self.nodes.borrow_mut();
        for (k, n) in batch.nodes() {
            nodes.insert(k.clone(), n.clone());
        }
        Ok(())
    }
}

struct Peer {
    store: PeerStore,
    version: Version,
    /// Nodes replaced by the last version, pruned outside the timed section.
    stale: Vec<StaleNodeIndex>,
}

impl Peer {
    fn new() -> Self {
        Peer {
            store: PeerStore::default(),
            version: 0,
            stale: Vec::new(),
        }
    }

    /// The slot's value set as jmt takes it (prepared before the timer: ours is handed the
    /// accounts in memory too).
    fn value_set(accounts: &[(Pubkey, AccountSharedData)]) -> Vec<(KeyHash, OwnedValue)> {
        accounts
            .iter()
            .map(|(k, a)| (KeyHash(k.to_bytes()), peer_value(a)))
            .collect()
    }

    /// One slot, one `batch_put_value_sets` call, its batch written to the store: the timed
    /// part. Returns the new root.
    fn put(&mut self, set: Vec<(KeyHash, OwnedValue)>) -> anyhow::Result<[u8; 32]> {
        let tree = jmt::Sha256Jmt::new(&self.store);
        let (roots, batch) = tree.batch_put_value_sets(vec![set], None, self.version)?;
        self.store.write_node_batch(&batch.node_batch)?;
        self.stale.extend(batch.stale_node_index_batch);
        self.version += 1;
        Ok(roots[0].0)
    }

    /// Drops the nodes the last version replaced (jmt's pruner; not timed).
    fn prune(&mut self) {
        let mut nodes = self.store.nodes.borrow_mut();
        for s in self.stale.drain(..) {
            nodes.remove(&s.node_key);
        }
    }

    /// The root the per-key path (`put_value_set`) gives for the same set, without writing:
    /// the batch API must agree with it.
    fn root_per_key(&self, set: &[(KeyHash, OwnedValue)]) -> anyhow::Result<[u8; 32]> {
        let tree = jmt::Sha256Jmt::new(&self.store);
        let (root, _) =
            tree.put_value_set(set.iter().map(|(k, v)| (*k, Some(v.clone()))), self.version)?;
        Ok(root.0)
    }

    fn leaves(&self) -> anyhow::Result<usize> {
        jmt::Sha256Jmt::new(&self.store).get_leaf_count(self.version - 1)
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// The base state, generated in batches of 100k from a fixed seed.
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
/// writes (unique keys, sorted).
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
fn measured_slots(a: &CommitArgs, keys: &[Pubkey], owner: &Pubkey) -> Vec<Slot> {
    let mut rng = StdRng::seed_from_u64(8);
    let mut keys = keys.to_vec();
    let mut out = Vec::new();
    for size in SLOT_SIZES {
        let warmup = ((a.history_mib << 20) / (size * HISTORY_BYTES_PER_UPDATE) + 1).min(40);
        let runs = std::iter::repeat_n(WARMUP, warmup)
            .chain((0..a.runs).flat_map(|r| std::iter::repeat_n(r, a.slots)));
        for run in runs {
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
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect();
            out.push(Slot {
                size,
                run,
                accounts,
            });
        }
    }
    out
}

/// Seconds per timed part of one (slot size, run), and the accounts its slots changed.
#[derive(Default, Clone, Copy)]
struct RunTimes {
    slots: usize,
    accounts: usize,
    /// `stage` with hashing on one thread.
    stage_one: f64,
    /// `stage` on every core.
    stage_all: f64,
    publish: f64,
    lattice: f64,
    peer: f64,
    peer_prune: f64,
}

impl RunTimes {
    fn one_core(&self) -> f64 {
        self.stage_one + self.publish
    }
    fn all_cores(&self) -> f64 {
        self.stage_all + self.publish
    }
    fn rate(&self, secs: f64) -> f64 {
        if secs > 0.0 {
            self.accounts as f64 / secs
        } else {
            0.0
        }
    }
    fn ms_per_slot(&self, secs: f64) -> f64 {
        secs * 1e3 / self.slots.max(1) as f64
    }
}

/// Per-size figures: the medians over runs of per-run figures.
struct SizeFigures {
    size: usize,
    ms_all: f64,
    ms_one: f64,
    ms_peer: f64,
    rate_all: f64,
    rate_one: f64,
    rate_peer: f64,
    rate_lattice: f64,
    ratio_per_core: f64,
    ratio_all_cores: f64,
    publish_ms: f64,
    prune_ms: f64,
}

fn figures(size: usize, runs: &[RunTimes], peer: bool) -> SizeFigures {
    let m = |f: &dyn Fn(&RunTimes) -> f64| median(runs.iter().map(f).collect());
    let ratio = |t: &RunTimes, ours: f64| {
        if peer && ours > 0.0 {
            t.peer / ours
        } else {
            0.0
        }
    };
    SizeFigures {
        size,
        ms_all: m(&|t| t.ms_per_slot(t.all_cores())),
        ms_one: m(&|t| t.ms_per_slot(t.one_core())),
        ms_peer: m(&|t| t.ms_per_slot(t.peer)),
        rate_all: m(&|t| t.rate(t.all_cores())),
        rate_one: m(&|t| t.rate(t.one_core())),
        rate_peer: m(&|t| t.rate(t.peer)),
        rate_lattice: m(&|t| t.rate(t.lattice)),
        ratio_per_core: m(&|t| ratio(t, t.one_core())),
        ratio_all_cores: m(&|t| ratio(t, t.all_cores())),
        publish_ms: m(&|t| t.ms_per_slot(t.publish)),
        prune_ms: m(&|t| t.ms_per_slot(t.peer_prune)),
    }
}

pub fn run(a: &CommitArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(
        a.accounts > 0 && a.slots > 0 && a.runs > 0,
        "--accounts, --slots, --runs must be > 0"
    );
    let owner = Pubkey::new_from_array([5; 32]);
    let cores = par::threads();
    let mut rng = StdRng::seed_from_u64(9);

    // The base state into ours, then into the peer.
    let rss_start = rss_bytes();
    let mut commitment = Commitment::new(CommitmentConfig {
        window_slots: 1024,
        history_bytes: a.history_mib << 20,
    });
    let mut current: HashMap<Pubkey, AccountSharedData> = HashMap::with_capacity(a.accounts);
    let mut slot = 0u64;
    let mut base_keys = Vec::with_capacity(a.accounts);
    let load_start = Instant::now();
    for batch in base_batches(a.accounts, &owner) {
        base_keys.extend(batch.iter().map(|(k, _)| *k));
        slot += 1;
        let staged = commitment.stage(slot, &batch, vec![None; batch.len()]);
        commitment.publish(staged);
        current.extend(batch);
    }
    let load_s = load_start.elapsed().as_secs_f64();
    let tree_bytes = commitment.tree().memory_bytes();
    let rss_ours = rss_bytes().saturating_sub(rss_start);
    let mut peer = (!a.no_peer).then(Peer::new);
    let mut peer_load_s = 0.0;
    let rss_before_peer = rss_bytes();
    if let Some(p) = peer.as_mut() {
        let t = Instant::now();
        for batch in base_batches(a.accounts, &owner) {
            p.put(Peer::value_set(&batch))?;
            p.prune();
        }
        peer_load_s = t.elapsed().as_secs_f64();
    }
    let rss_peer = rss_bytes().saturating_sub(rss_before_peer);
    eprintln!(
        "loaded {} accounts: ours {load_s:.1} s, peer {peer_load_s:.1} s",
        a.accounts
    );

    let slots = measured_slots(a, &base_keys, &owner);
    drop(base_keys);

    let mut times: BTreeMap<(usize, usize), RunTimes> = BTreeMap::new();
    let mut scratch = RunTimes::default();
    let mut batch_root_checked = false;
    for (k, s) in slots.iter().enumerate() {
        // Alternation, slot by slot: who goes first (ours or the peer), and which of our two
        // stagings (one thread or every core) runs on the state first.
        let peer_first = k % 2 == 1;
        let one_first = (k / 2) % 2 == 0;
        let t = if s.run == WARMUP {
            &mut scratch
        } else {
            times.entry((s.size, s.run)).or_default()
        };
        t.slots += 1;
        t.accounts += s.accounts.len();

        let old: Vec<Option<AccountSharedData>> = s
            .accounts
            .iter()
            .map(|(k, _)| current.get(k).cloned())
            .collect();
        let mut run_peer = |t: &mut RunTimes| -> anyhow::Result<()> {
            let Some(p) = peer.as_mut() else {
                return Ok(());
            };
            let set = Peer::value_set(&s.accounts);
            let expect = if batch_root_checked {
                None
            } else {
                Some(p.root_per_key(&set)?)
            };
            let start = Instant::now();
            let root = p.put(set)?;
            t.peer += start.elapsed().as_secs_f64();
            let start = Instant::now();
            p.prune();
            t.peer_prune += start.elapsed().as_secs_f64();
            if let Some(e) = expect {
                anyhow::ensure!(
                    e == root,
                    "jmt's batch API and its per-key API disagree on the root"
                );
                batch_root_checked = true;
            }
            Ok(())
        };
        if peer_first {
            run_peer(t)?;
        }

        slot += 1;
        let start = Instant::now();
        let delta = lattice::slot_delta(&s.accounts, &old);
        t.lattice += start.elapsed().as_secs_f64();
        let order = if one_first { [1, cores] } else { [cores, 1] };
        let (mut staged, mut roots) = (None, Vec::new());
        for threads in order {
            if let Some(first) = staged.take() {
                commitment.rollback(first);
            }
            let old = old.clone();
            let start = Instant::now();
            let st = par::with_threads(threads, || {
                commitment.stage_with_delta(slot, &s.accounts, old, &delta)
            });
            let secs = start.elapsed().as_secs_f64();
            if threads == 1 {
                t.stage_one += secs;
            } else {
                t.stage_all += secs;
            }
            roots.push(st.header.root);
            staged = Some(st);
        }
        anyhow::ensure!(
            roots[0] == roots[1],
            "slot {slot}: the root on one thread differs from the root on {cores}"
        );
        let start = Instant::now();
        commitment.publish(staged.expect("staged"));
        t.publish += start.elapsed().as_secs_f64();

        if !peer_first {
            run_peer(t)?;
        }
        current.extend(s.accounts.iter().cloned());
    }
    let rss_total = rss_bytes().saturating_sub(rss_start);
    let peer_leaves = match &peer {
        Some(p) => p.leaves()?,
        None => 0,
    };
    drop(peer);
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

    let per_size: Vec<SizeFigures> = SLOT_SIZES
        .iter()
        .map(|&size| {
            let runs: Vec<RunTimes> = times
                .iter()
                .filter(|((s, _), _)| *s == size)
                .map(|(_, t)| *t)
                .collect();
            figures(size, &runs, !a.no_peer)
        })
        .collect();

    let mut rows = Vec::new();
    for f in &per_size {
        let n = match f.size {
            1_000 => [
                "root_ms_per_slot_1k",
                "root_ms_per_slot_one_core_1k",
                "peer_ms_per_slot_1k",
                "updates_per_s_1k",
                "updates_per_s_one_core_1k",
                "peer_updates_per_s_1k",
                "lattice_updates_per_s_1k",
            ],
            10_000 => [
                "root_ms_per_slot_10k",
                "root_ms_per_slot_one_core_10k",
                "peer_ms_per_slot_10k",
                "updates_per_s_10k",
                "updates_per_s_one_core_10k",
                "peer_updates_per_s_10k",
                "lattice_updates_per_s_10k",
            ],
            _ => [
                "root_ms_per_slot_100k",
                "root_ms_per_slot_one_core_100k",
                "peer_ms_per_slot_100k",
                "updates_per_s_100k",
                "updates_per_s_one_core_100k",
                "peer_updates_per_s_100k",
                "lattice_updates_per_s_100k",
            ],
        };
        rows.push((n[0], f.ms_all, "ms (ours, all cores: stage + publish)"));
        rows.push((n[1], f.ms_one, "ms (ours, one thread: stage + publish)"));
        rows.push((
            n[2],
            f.ms_peer,
            "ms (jmt, one core: batch put + store write)",
        ));
        rows.push((n[3], f.rate_all, "accounts/s (ours, all cores)"));
        rows.push((n[4], f.rate_one, "accounts/s (ours, one thread)"));
        rows.push((n[5], f.rate_peer, "accounts/s (jmt, one core)"));
        rows.push((
            n[6],
            f.rate_lattice,
            "accounts/s (lattice delta, all cores)",
        ));
    }
    let head = per_size.last().expect("sizes");
    rows.push((
        "updates_per_s",
        head.rate_all,
        "accounts/s (ours, all cores, 100k-account slots)",
    ));
    rows.push((
        "updates_per_s_one_core",
        head.rate_one,
        "accounts/s (ours, one thread, 100k-account slots)",
    ));
    rows.push((
        "peer_updates_per_s",
        head.rate_peer,
        "accounts/s (jmt, one core, same slots)",
    ));
    rows.push((
        "ratio_vs_peer_per_core",
        head.ratio_per_core,
        "x (one thread each, median of per-run ratios)",
    ));
    rows.push((
        "ratio_vs_peer_all_cores",
        head.ratio_all_cores,
        "x (ours on all cores, jmt on its one; median of per-run ratios)",
    ));
    rows.push((
        "ratio_vs_peer_per_core_10k",
        per_size[1].ratio_per_core,
        "x (one thread each, 10k-account slots)",
    ));
    rows.push((
        "ratio_vs_peer_per_core_1k",
        per_size[0].ratio_per_core,
        "x (one thread each, 1k-account slots)",
    ));
    rows.push(("threads", cores as f64, "threads (ours, all cores)"));
    rows.push((
        "publish_ms_per_slot_100k",
        head.publish_ms,
        "ms (ours: publish, inside both root figures)",
    ));
    rows.push((
        "peer_prune_ms_per_slot_100k",
        head.prune_ms,
        "ms (jmt: stale nodes pruned, not timed)",
    ));
    rows.push((
        "peer_batch_root_checked",
        f64::from(u8::from(batch_root_checked)),
        "(1: jmt's batch API gave the per-key API's root)",
    ));
    rows.push(("proof_bytes_max", bytes_max as f64, "bytes"));
    rows.push(("proof_gen_us_p50", median(gen_us), "us"));
    rows.push(("verify_us_p50", median(verify_us), "us"));
    rows.push(("tree_depth", depth as f64, "levels"));
    rows.push((
        "accounts",
        n_accounts as f64,
        "accounts (ours, after the run)",
    ));
    rows.push((
        "peer_accounts",
        peer_leaves as f64,
        "accounts (jmt's leaf count, after the run)",
    ));
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
        "ours_base_rss_mib",
        mib(rss_ours),
        "MiB (ours' tree and the workload's account map after the base load)",
    ));
    rows.push((
        "peer_base_rss_mib",
        mib(rss_peer),
        "MiB (jmt's node store after the base load)",
    ));
    rows.push((
        "rss_growth_mib_total",
        mib(rss_total),
        "MiB (both, history, workload, at the end)",
    ));
    rows.push(("load_s", load_s, "s (ours, base state)"));
    rows.push(("peer_load_s", peer_load_s, "s (jmt, base state)"));

    let line = |label: String, y: &dyn Fn(&SizeFigures) -> f64| Line {
        label,
        points: per_size.iter().map(|f| (f.size as f64, y(f))).collect(),
    };
    let mut time_lines = vec![
        line(format!("ours, {cores} threads"), &|f| f.ms_all),
        line("ours, 1 thread".into(), &|f| f.ms_one),
    ];
    let mut rate_lines = vec![
        line(format!("ours, {cores} threads"), &|f| f.rate_all),
        line("ours, 1 thread".into(), &|f| f.rate_one),
    ];
    if !a.no_peer {
        time_lines.push(line("jmt (1 thread)".into(), &|f| f.ms_peer));
        rate_lines.push(line("jmt (1 thread)".into(), &|f| f.rate_peer));
    }
    let plots = vec![
        Plot {
            id: "root-time",
            title: format!(
                "Root update time per slot, {} accounts (median of runs)",
                a.accounts
            ),
            x_label: "changed accounts per slot",
            y_label: "ms per slot",
            lines: time_lines,
        },
        Plot {
            id: "root-rate",
            title: format!(
                "Root updates per second, {} accounts (median of runs)",
                a.accounts
            ),
            x_label: "changed accounts per slot",
            y_label: "accounts/s",
            lines: rate_lines,
        },
    ];
    Ok(Report { rows, plots })
}
