//! `bench storage`: the device-array engine against RocksDB on the same workload, in the same
//! run, on the same filesystem.
//!
//! Accounts: 70% token-account size (165 B), 25% zero-data system accounts, 5% 1–10 KiB.
//! Keys drawn Zipf(0.99). A slot is 10k updates and 40k reads, then a durable commit (ours:
//! `commit_slot`; RocksDB: one WriteBatch with WAL and sync). Our reads are sequencer-driven
//! as in the appliance: the keys of slot n+1 are prefetched while slot n runs. Then cold
//! reads (cache dropped, uniform keys) against the raw 4 KiB random-read IOPS of the same file.

use super::Rows;
use super::{median, percentile};
use rand::{Rng, SeedableRng, rngs::StdRng};
use solana_account::AccountSharedData;
use solana_pubkey::Pubkey;
use std::path::{Path, PathBuf};
use std::time::Instant;
use storage::array::device::{DeviceIo, IoOp, UringDevice, open_device};
use storage::array::iomem::IoMemory;
use storage::{AccountState, ArrayConfig, ArrayStore, DeviceSpec};

#[derive(clap::Args, Clone)]
pub struct StorageArgs {
    /// Accounts in the state.
    #[arg(long, default_value_t = 1_000_000)]
    pub accounts: usize,
    /// Measured slots per run.
    #[arg(long, default_value_t = 20)]
    pub slots: usize,
    #[arg(long, default_value_t = 10_000)]
    pub updates_per_slot: usize,
    #[arg(long, default_value_t = 40_000)]
    pub reads_per_slot: usize,
    /// Runs of the measured slots; figures are medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Account cache of our engine and block cache of RocksDB, MiB. The default holds the
    /// Zipf working set; RocksDB also reads through the OS page cache, which it gets for free.
    #[arg(long, default_value_t = 1024)]
    pub cache_mib: usize,
    /// Cold reads measured after dropping the cache.
    #[arg(long, default_value_t = 20_000)]
    pub cold_reads: usize,
    /// Directory for both stores (a temporary directory is made inside it). Use a real
    /// filesystem: tmpfs refuses O_DIRECT.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    #[arg(long)]
    pub json: bool,
}

const QUEUE_DEPTH: usize = 128;

/// Zipf(s) over ranks 0..n by inverse CDF; ranks map to shuffled account indexes so hot keys
/// are scattered over the key space.
struct Zipf {
    cdf: Vec<f64>,
    perm: Vec<u32>,
}

impl Zipf {
    fn new(n: usize, s: f64, rng: &mut StdRng) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for i in 1..=n {
            acc += 1.0 / (i as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        let mut perm: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            perm.swap(i, rng.gen_range(0..=i));
        }
        Zipf { cdf, perm }
    }
    fn sample(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.r#gen();
        let r = self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1);
        self.perm[r] as usize
    }
}

fn make_account(i: usize, version: u64, rng: &mut StdRng) -> AccountSharedData {
    let (len, owner) = match i % 20 {
        0..=13 => (165, Pubkey::new_from_array([6; 32])),
        14..=18 => (0, Pubkey::default()),
        _ => (
            rng.gen_range(1024..=10240),
            Pubkey::new_from_array([(i % 7) as u8 + 10; 32]),
        ),
    };
    let mut a = AccountSharedData::new(1 + version, len, &owner);
    if len > 0 {
        let d = solana_account::WritableAccount::data_as_mut_slice(&mut a);
        d[..8].copy_from_slice(&version.to_le_bytes());
    }
    a
}

/// Account `i`'s address: uniformly spread bytes (splitmix64), like real pubkeys.
fn key(i: usize) -> Pubkey {
    let mut k = [0u8; 32];
    let mut x = i as u64;
    for chunk in k.chunks_mut(8) {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    Pubkey::new_from_array(k)
}

/// What one slot does: keys to update (distinct) and keys to read.
struct SlotPlan {
    updates: Vec<usize>,
    reads: Vec<usize>,
}

fn plan(a: &StorageArgs, zipf: &Zipf, rng: &mut StdRng) -> Vec<SlotPlan> {
    (0..a.slots)
        .map(|_| {
            let mut seen = std::collections::HashSet::new();
            let mut updates = Vec::with_capacity(a.updates_per_slot);
            while updates.len() < a.updates_per_slot {
                let k = zipf.sample(rng);
                if seen.insert(k) {
                    updates.push(k);
                }
            }
            let reads = (0..a.reads_per_slot).map(|_| zipf.sample(rng)).collect();
            SlotPlan { updates, reads }
        })
        .collect()
}

fn proc_write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| {
                    l.strip_prefix("write_bytes: ")
                        .map(|v| v.trim().parse().ok())
                })
                .flatten()
        })
        .unwrap_or(0)
}

struct Measured {
    updates_per_s: f64,
    reads_per_s: f64,
    read_p99_us: f64,
    write_bytes_per_update: f64,
}

/// Our engine through the slots: prefetch the next slot's keys, read, commit, release.
fn run_ours(
    store: &ArrayStore,
    slots: &[SlotPlan],
    first_slot: u64,
    rng: &mut StdRng,
) -> anyhow::Result<Measured> {
    let keys_of = |p: &SlotPlan| -> Vec<Pubkey> {
        p.reads.iter().chain(&p.updates).map(|&i| key(i)).collect()
    };
    let mut queued = keys_of(&slots[0]);
    store.prefetch(&queued);
    let mut lat = Vec::new();
    let w0 = proc_write_bytes();
    let t = Instant::now();
    for (n, p) in slots.iter().enumerate() {
        let next = slots.get(n + 1).map(keys_of).unwrap_or_default();
        store.prefetch(&next);
        for &i in &p.reads {
            let s = Instant::now();
            let got = store.get(&key(i))?;
            lat.push(s.elapsed().as_nanos() as u64);
            anyhow::ensure!(got.is_some(), "account {i} missing");
        }
        let batch: Vec<(Pubkey, AccountSharedData)> = p
            .updates
            .iter()
            .map(|&i| (key(i), make_account(i, first_slot + n as u64, rng)))
            .collect();
        store.commit_slot(first_slot + n as u64, &batch, &[])?;
        store.release(&queued);
        queued = next;
    }
    let secs = t.elapsed().as_secs_f64();
    let updates: usize = slots.iter().map(|p| p.updates.len()).sum();
    let reads: usize = slots.iter().map(|p| p.reads.len()).sum();
    Ok(Measured {
        updates_per_s: updates as f64 / secs,
        reads_per_s: reads as f64 / secs,
        read_p99_us: percentile(&mut lat, 0.99) / 1000.0,
        write_bytes_per_update: (proc_write_bytes() - w0) as f64 / updates as f64,
    })
}

fn array_config(dir: &Path, a: &StorageArgs, device_bytes: u64) -> ArrayConfig {
    ArrayConfig {
        devices: vec![DeviceSpec {
            path: dir.join("array-0.dev"),
            create_bytes: device_bytes,
        }],
        cache_bytes: a.cache_mib << 20,
        ..ArrayConfig::default()
    }
}

/// Raw 4 KiB O_DIRECT random reads over `span` bytes of the file, `2 × QUEUE_DEPTH` at a
/// time through one io_uring: the ceiling for cold account reads.
fn raw_iops(path: &Path, span: u64, n: usize, rng: &mut StdRng) -> anyhow::Result<f64> {
    let d = open_device(path, 0, true)?;
    if !d.direct {
        // Still measured (the smoke test may run on tmpfs or overlayfs), but the figures then
        // come from the page cache and say nothing about the device.
        tracing::warn!(
            path = %path.display(),
            "the filesystem refuses O_DIRECT: raw and cold-read IOPS measure the page cache; put --dir on a real filesystem"
        );
    }
    let qd = 2 * QUEUE_DEPTH;
    let mem = IoMemory::new(4096, 1 << 20, qd, 1);
    let mut dev = UringDevice::new(d.file, qd as u32, None, &mem)?;
    let blocks = span / 4096;
    let t = Instant::now();
    let mut done = 0;
    while done < n {
        let mut ops: Vec<IoOp> = (0..qd.min(n - done))
            .map(|_| IoOp::read(rng.gen_range(0..blocks) * 4096, mem.alloc(4096)))
            .collect();
        dev.execute(&mut ops);
        if let Some(e) = ops.iter().find_map(IoOp::error) {
            anyhow::bail!("raw read failed: {e}");
        }
        done += ops.len();
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// Cold reads: cache dropped once, then uniform keys (almost all cold in a large state) in
/// batches of `QUEUE_DEPTH`, each prefetched one batch ahead as the sequencer does, so at most
/// two batches are in flight: the ceiling is measured at that queue depth.
fn cold_iops(
    store: &ArrayStore,
    n_accounts: usize,
    n: usize,
    rng: &mut StdRng,
) -> anyhow::Result<(f64, f64)> {
    store.drop_cache();
    let before = store.stats();
    let batches: Vec<Vec<Pubkey>> = (0..n.div_ceil(QUEUE_DEPTH))
        .map(|b| {
            (0..QUEUE_DEPTH.min(n - b * QUEUE_DEPTH))
                .map(|_| key(rng.gen_range(0..n_accounts)))
                .collect()
        })
        .collect();
    let t = Instant::now();
    store.prefetch(&batches[0]);
    for (i, keys) in batches.iter().enumerate() {
        if let Some(next) = batches.get(i + 1) {
            store.prefetch(next);
        }
        for k in keys {
            anyhow::ensure!(store.get(k)?.is_some(), "cold account missing");
        }
        store.release(keys);
    }
    let iops = n as f64 / t.elapsed().as_secs_f64();
    let after = store.stats();
    let per_read = (after.device_reads - before.device_reads) as f64 / n as f64;
    Ok((iops, per_read))
}

pub fn run(a: &StorageArgs) -> anyhow::Result<Rows> {
    std::fs::create_dir_all(&a.dir)?;
    let dir = tempfile::tempdir_in(&a.dir)?;
    let mut rng = StdRng::seed_from_u64(42);
    let zipf = Zipf::new(a.accounts, 0.99, &mut rng);
    // Live data is about 0.55 KiB per account; 4× that plus slack leaves room for 2×
    // amplification and the runs' rewrites.
    let device_bytes = ((a.accounts as u64 * 2300) + (512 << 20)).next_multiple_of(32 << 20);
    let store = ArrayStore::open(array_config(dir.path(), a, device_bytes))?;
    let peer = rocks::Peer::open(&dir.path().join("rocksdb"), a.cache_mib << 20)?;
    eprintln!("loading {} accounts into both stores...", a.accounts);
    let mut slot = 0u64;
    let (mut load_ours, mut load_peer) = (0.0, 0.0);
    for chunk in (0..a.accounts).collect::<Vec<_>>().chunks(10_000) {
        slot += 1;
        let batch: Vec<_> = chunk
            .iter()
            .map(|&i| (key(i), make_account(i, 0, &mut rng)))
            .collect();
        let t = Instant::now();
        store.commit_slot(slot, &batch, &[])?;
        load_ours += t.elapsed().as_secs_f64();
        let t = Instant::now();
        peer.commit(&batch)?;
        load_peer += t.elapsed().as_secs_f64();
    }
    let loaded = store.stats();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut hit = Vec::new();
    for run in 0..a.runs {
        let slots = plan(a, &zipf, &mut rng);
        let before = store.stats();
        let m = run_ours(&store, &slots, slot + 1, &mut rng)?;
        let after = store.stats();
        let (h, miss) = (
            after.sequenced_hits - before.sequenced_hits,
            after.sequenced_misses - before.sequenced_misses,
        );
        hit.push(h as f64 / (h + miss).max(1) as f64);
        slot += slots.len() as u64;
        let p = peer.run(&slots, slot, &mut rng)?;
        eprintln!(
            "run {run}: ours {:.0} updates/s {:.0} reads/s p99 {:.1} us | rocksdb {:.0} updates/s {:.0} reads/s p99 {:.1} us",
            m.updates_per_s,
            m.reads_per_s,
            m.read_p99_us,
            p.updates_per_s,
            p.reads_per_s,
            p.read_p99_us
        );
        ours.push(m);
        theirs.push(p);
    }
    let stats = store.stats();
    let span = stats.used_bytes.max(64 << 20);
    let mut raw = Vec::new();
    let mut cold = Vec::new();
    let mut per_read = Vec::new();
    for _ in 0..a.runs {
        raw.push(raw_iops(
            &dir.path().join("array-0.dev"),
            span + (1 << 20),
            a.cold_reads,
            &mut rng,
        )?);
        let (iops, pr) = cold_iops(&store, a.accounts, a.cold_reads, &mut rng)?;
        cold.push(iops);
        per_read.push(pr);
    }
    let med = |v: &[Measured], f: fn(&Measured) -> f64| median(v.iter().map(f).collect());
    let ours_up = med(&ours, |m| m.updates_per_s);
    let peer_up = med(&theirs, |m| m.updates_per_s);
    let ratios: Vec<f64> = ours
        .iter()
        .zip(&theirs)
        .map(|(o, t)| o.updates_per_s / t.updates_per_s)
        .collect();
    let fractions: Vec<f64> = cold.iter().zip(&raw).map(|(c, r)| c / r).collect();
    let (raw_iops, cold_iops) = (median(raw), median(cold));
    let n = stats.accounts.max(1) as f64;
    // Restart: the index is rebuilt by scanning every used segment.
    drop(store);
    let t = Instant::now();
    let reopened = ArrayStore::open(array_config(dir.path(), a, device_bytes))?;
    let reopen_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        reopened.account_count() as u64 == stats.accounts,
        "accounts lost across reopen"
    );
    drop(reopened);
    Ok(vec![
        ("accounts", stats.accounts as f64, "accounts"),
        (
            "updates_per_s",
            ours_up,
            "updates/s (ours, durable commit per slot)",
        ),
        (
            "rocksdb_updates_per_s",
            peer_up,
            "updates/s (RocksDB, WAL synced per slot)",
        ),
        (
            "ratio_vs_rocksdb",
            median(ratios),
            "x (median of per-run ratios; target >= 3)",
        ),
        (
            "reads_per_s",
            med(&ours, |m| m.reads_per_s),
            "reads/s (ours)",
        ),
        (
            "rocksdb_reads_per_s",
            med(&theirs, |m| m.reads_per_s),
            "reads/s (RocksDB)",
        ),
        ("read_p99_us", med(&ours, |m| m.read_p99_us), "us (ours)"),
        (
            "rocksdb_read_p99_us",
            med(&theirs, |m| m.read_p99_us),
            "us (RocksDB)",
        ),
        (
            "cache_hit_ratio",
            median(hit),
            "sequenced reads served from cache (target >= 0.99)",
        ),
        (
            "device_reads_per_cold_read",
            median(per_read),
            "device reads (target <= 1.0)",
        ),
        (
            "cold_read_iops",
            cold_iops,
            "account reads/s, cache dropped",
        ),
        (
            "raw_4k_read_iops",
            raw_iops,
            "4 KiB O_DIRECT reads/s, same file, same queue depth",
        ),
        (
            "cold_read_iops_fraction",
            median(fractions),
            "of raw, per-run pairs (target >= 0.7)",
        ),
        (
            "write_bytes_per_update",
            med(&ours, |m| m.write_bytes_per_update),
            "bytes (ours, incl. compaction, superblocks)",
        ),
        (
            "rocksdb_write_bytes_per_update",
            med(&theirs, |m| m.write_bytes_per_update),
            "bytes (RocksDB, WAL + flush + compaction)",
        ),
        (
            "bytes_per_account_index",
            stats.index_bytes as f64 / n,
            "bytes (target <= 48)",
        ),
        (
            "cache_bytes_per_account",
            stats.cache_bytes as f64 / n,
            "bytes resident at the end",
        ),
        (
            "space_amplification",
            stats.used_bytes as f64 / stats.live_bytes.max(1) as f64,
            "used / live",
        ),
        (
            "compactions",
            stats.compactions as f64,
            "segments compacted",
        ),
        (
            "load_accounts_per_s",
            a.accounts as f64 / load_ours,
            "accounts/s (ours, initial load)",
        ),
        (
            "rocksdb_load_accounts_per_s",
            a.accounts as f64 / load_peer,
            "accounts/s (RocksDB, initial load)",
        ),
        (
            "loaded_used_mib",
            loaded.used_bytes as f64 / 1048576.0,
            "MiB on device after load",
        ),
        (
            "hugepages",
            f64::from(u8::from(stats.hugepages)),
            "1 = I/O pool on hugepages",
        ),
        (
            "reopen_s",
            reopen_s,
            "s to reopen (index rebuilt from every used segment)",
        ),
    ])
}

#[cfg(feature = "rocksdb-peer")]
mod rocks {
    use super::{Measured, SlotPlan, key, make_account, proc_write_bytes};
    use crate::percentile;
    use rand::rngs::StdRng;
    use solana_account::AccountSharedData;
    use solana_pubkey::Pubkey;
    use std::path::Path;
    use std::time::Instant;

    pub struct Peer {
        db: rocksdb::DB,
    }

    fn encode(k: &Pubkey, a: &AccountSharedData, out: &mut Vec<u8>) {
        // The same bytes our engine stores for the account.
        storage::array::layout::encode_account(out, k, 0, a, 0);
    }

    impl Peer {
        pub fn open(path: &Path, cache_bytes: usize) -> anyhow::Result<Peer> {
            let mut opts = rocksdb::Options::default();
            opts.create_if_missing(true);
            opts.increase_parallelism(2);
            let mut block = rocksdb::BlockBasedOptions::default();
            block.set_block_cache(&rocksdb::Cache::new_lru_cache(cache_bytes)?);
            opts.set_block_based_table_factory(&block);
            Ok(Peer {
                db: rocksdb::DB::open(&opts, path)?,
            })
        }

        /// One slot's writes: a WriteBatch with the WAL on, synced.
        pub fn commit(&self, batch: &[(Pubkey, AccountSharedData)]) -> anyhow::Result<()> {
            let mut wb = rocksdb::WriteBatch::default();
            let mut buf = Vec::new();
            for (k, a) in batch {
                encode(k, a, &mut buf);
                wb.put(k.as_ref(), &buf);
            }
            let mut wo = rocksdb::WriteOptions::default();
            wo.set_sync(true);
            self.db.write_opt(wb, &wo)?;
            Ok(())
        }

        pub fn run(
            &self,
            slots: &[SlotPlan],
            first_slot: u64,
            rng: &mut StdRng,
        ) -> anyhow::Result<Measured> {
            let mut lat = Vec::new();
            let w0 = proc_write_bytes();
            let t = Instant::now();
            for (n, p) in slots.iter().enumerate() {
                for &i in &p.reads {
                    let s = Instant::now();
                    let got = self.db.get_pinned(key(i).as_ref())?;
                    lat.push(s.elapsed().as_nanos() as u64);
                    anyhow::ensure!(got.is_some(), "account {i} missing in RocksDB");
                }
                let batch: Vec<_> = p
                    .updates
                    .iter()
                    .map(|&i| (key(i), make_account(i, first_slot + n as u64, rng)))
                    .collect();
                self.commit(&batch)?;
            }
            let secs = t.elapsed().as_secs_f64();
            let updates: usize = slots.iter().map(|p| p.updates.len()).sum();
            let reads: usize = slots.iter().map(|p| p.reads.len()).sum();
            Ok(Measured {
                updates_per_s: updates as f64 / secs,
                reads_per_s: reads as f64 / secs,
                read_p99_us: percentile(&mut lat, 0.99) / 1000.0,
                write_bytes_per_update: (proc_write_bytes() - w0) as f64 / updates as f64,
            })
        }
    }
}

#[cfg(not(feature = "rocksdb-peer"))]
mod rocks {
    use super::{Measured, SlotPlan};
    use rand::rngs::StdRng;
    use solana_account::AccountSharedData;
    use solana_pubkey::Pubkey;
    use std::path::Path;

    pub struct Peer;

    impl Peer {
        pub fn open(_: &Path, _: usize) -> anyhow::Result<Peer> {
            anyhow::bail!(
                "this binary was built without the RocksDB peer: build with \
                 `cargo build --release --features rocksdb-peer` (needs Debian's librocksdb-dev \
                 and libclang-dev; scripts/test.sh installs them)"
            )
        }
        pub fn commit(&self, _: &[(Pubkey, AccountSharedData)]) -> anyhow::Result<()> {
            Ok(())
        }
        pub fn run(&self, _: &[SlotPlan], _: u64, _: &mut StdRng) -> anyhow::Result<Measured> {
            unreachable!("Peer cannot be opened without the feature")
        }
    }
}
