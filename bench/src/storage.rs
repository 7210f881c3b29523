//! `bench storage`: the device-array engine against RocksDB on the same workload, in the same
//! run, on the same filesystem.
//!
//! Accounts: 70% token-account size (165 B), 25% zero-data system accounts, 5% 1–10 KiB.
//! Keys drawn Zipf(0.99). A slot is 10k updates and 40k reads (in batches of 256 keys: our
//! gets, RocksDB's MultiGet), then a durable commit (ours: `commit_slot`; RocksDB: one
//! WriteBatch with WAL, fdatasync'd). The read phase, the commit and the whole slot are timed
//! separately. Two series, alternating which engine runs first each run: both engines with
//! the next slot's keys read ahead on another thread while a slot runs (ours: the store's
//! prefetch; RocksDB: a MultiGet of those keys that fills its block cache), and neither.
//! Then cold reads (cache dropped, uniform keys) against raw 4 KiB random reads of the same
//! file at a sustained queue depth, and a sweep of the cache size with both engines given the
//! same memory (the `storage ratio vs cache size` chart).

use super::{Line, Plot, Report};
use super::{median, percentile};
use rand::{Rng, SeedableRng, rngs::StdRng};
use solana_account::AccountSharedData;
use solana_pubkey::Pubkey;
use std::path::{Path, PathBuf};
use std::time::Instant;
use storage::array::device::open_device;
use storage::{AccountState, ArrayConfig, ArrayStats, ArrayStore, DeviceSpec, StoreStats};

#[derive(clap::Args, Clone)]
pub struct StorageArgs {
    /// Accounts in the state.
    #[arg(long, default_value_t = 1_000_000)]
    pub accounts: usize,
    /// Measured slots per run and series.
    #[arg(long, default_value_t = 20)]
    pub slots: usize,
    #[arg(long, default_value_t = 10_000)]
    pub updates_per_slot: usize,
    #[arg(long, default_value_t = 40_000)]
    pub reads_per_slot: usize,
    /// Runs of the measured slots; figures are medians (ratios: medians of per-run ratios).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Account cache of our engine, MiB. RocksDB gets the same memory: this plus what our
    /// index takes, split between its two write buffers and its block cache (which also
    /// holds its index and filters). The default holds the whole state; RocksDB here also
    /// reads through the OS page cache (the sweep turns that off).
    #[arg(long, default_value_t = 1024)]
    pub cache_mib: usize,
    /// Untimed slots each engine runs before the measured runs.
    #[arg(long, default_value_t = 5)]
    pub warmup_slots: usize,
    /// Cold reads measured after dropping the cache.
    #[arg(long, default_value_t = 20_000)]
    pub cold_reads: usize,
    /// Accounts of the cache-size sweep (fresh stores, both engines given the same memory at
    /// 1/8, 1/4, 1/2 and 1x of the data set); default a fifth of --accounts; 0 skips it.
    /// Its slots keep the 1:4 ratio of updates to reads, at most a quarter of its accounts
    /// updated per slot.
    #[arg(long)]
    pub sweep_accounts: Option<usize>,
    /// Untimed slots per engine at each cache size of the sweep (both start cold there).
    #[arg(long, default_value_t = 3)]
    pub sweep_warmup_slots: usize,
    /// Measured slots per engine at each cache size of the sweep.
    #[arg(long, default_value_t = 4)]
    pub sweep_slots: usize,
    /// Directory for both stores (a temporary directory is made inside it). Use a real
    /// filesystem: tmpfs refuses O_DIRECT.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// Cold reads are prefetched this many at a time, one batch ahead.
const QUEUE_DEPTH: usize = 128;
/// Keys per timed read batch: our gets, one RocksDB MultiGet.
const READ_BATCH: usize = 256;
/// Queue depths at which the raw read ceiling is measured (kept full, not in lock-step).
const RAW_QDS: [usize; 3] = [32, 128, 256];
/// Cache sizes of the sweep, as fractions of the data set.
const SWEEP: [f64; 4] = [0.125, 0.25, 0.5, 1.0];

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

/// One slot, built before any timer starts and run unchanged by both engines.
pub struct Slot {
    number: u64,
    reads: Vec<Pubkey>,
    /// The slot's reads and updates: what the sequencer prefetches for it.
    keys: Vec<Pubkey>,
    /// The new states of the slot's (distinct) updated accounts.
    batch: Vec<(Pubkey, AccountSharedData)>,
}

struct Shape {
    updates: usize,
    reads: usize,
}

/// `n` slots numbered from `*next_slot` (advanced past them).
fn plan(n: usize, shape: &Shape, zipf: &Zipf, next_slot: &mut u64, rng: &mut StdRng) -> Vec<Slot> {
    (0..n)
        .map(|_| {
            let number = *next_slot;
            *next_slot += 1;
            let mut seen = std::collections::HashSet::new();
            let mut updates = Vec::with_capacity(shape.updates);
            while updates.len() < shape.updates {
                let k = zipf.sample(rng);
                if seen.insert(k) {
                    updates.push(k);
                }
            }
            let reads: Vec<Pubkey> = (0..shape.reads).map(|_| key(zipf.sample(rng))).collect();
            let batch: Vec<(Pubkey, AccountSharedData)> = updates
                .iter()
                .map(|&i| (key(i), make_account(i, number, rng)))
                .collect();
            let keys = reads
                .iter()
                .chain(batch.iter().map(|(k, _)| k))
                .copied()
                .collect();
            Slot {
                number,
                reads,
                keys,
                batch,
            }
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

/// What the slot loop needs of an engine.
pub trait Engine {
    /// Reads `keys` (one batch); an absent key is an error.
    fn read(&self, keys: &[Pubkey]) -> anyhow::Result<()>;
    /// Writes the slot's batch durably.
    fn commit(&self, slot: u64, batch: &[(Pubkey, AccountSharedData)]) -> anyhow::Result<()>;
    /// Starts reading `keys` ahead, on another thread; returns at once.
    fn prefetch(&self, keys: &[Pubkey]);
    /// The slot that prefetched `keys` is done with them.
    fn release(&self, keys: &[Pubkey]);
    /// Waits for the engine's background work (RocksDB: flushes and compactions) so it is
    /// not charged to the next engine's timed slots. Returns the seconds waited.
    fn settle(&self) -> f64 {
        0.0
    }
}

struct Ours<'a>(&'a ArrayStore);

impl Engine for Ours<'_> {
    fn read(&self, keys: &[Pubkey]) -> anyhow::Result<()> {
        for k in keys {
            anyhow::ensure!(self.0.get(k)?.is_some(), "account {k} missing");
        }
        Ok(())
    }
    fn commit(&self, slot: u64, batch: &[(Pubkey, AccountSharedData)]) -> anyhow::Result<()> {
        Ok(self.0.commit_slot(slot, batch, &[])?)
    }
    fn prefetch(&self, keys: &[Pubkey]) {
        self.0.prefetch(keys);
    }
    fn release(&self, keys: &[Pubkey]) {
        self.0.release(keys);
    }
}

/// One engine through some slots.
#[derive(Default)]
struct Measured {
    slots: usize,
    reads: usize,
    updates: usize,
    /// The whole loop: reads, commits, prefetch hand-offs.
    wall_s: f64,
    /// Read phases alone.
    read_s: f64,
    /// Commits alone.
    commit_s: f64,
    commit_ms: Vec<f64>,
    read_batch_ns: Vec<u64>,
    /// Bytes the process wrote during the slots and the settle after them.
    write_bytes: u64,
    settle_s: f64,
}

impl Measured {
    fn slots_per_s(&self) -> f64 {
        self.slots as f64 / self.wall_s
    }
    fn reads_per_s(&self) -> f64 {
        self.reads as f64 / self.read_s
    }
    fn commit_updates_per_s(&self) -> f64 {
        self.updates as f64 / self.commit_s
    }
    fn write_bytes_per_update(&self) -> f64 {
        self.write_bytes as f64 / self.updates.max(1) as f64
    }
}

/// The slot loop, the same for both engines: (prefetch the next slot's keys,) read the slot's
/// keys in batches, commit, (release).
fn run_slots(e: &dyn Engine, slots: &[Slot], prefetch: bool) -> anyhow::Result<Measured> {
    let mut m = Measured::default();
    let w0 = proc_write_bytes();
    if prefetch && let Some(first) = slots.first() {
        e.prefetch(&first.keys);
    }
    let t = Instant::now();
    for (n, s) in slots.iter().enumerate() {
        if prefetch && let Some(next) = slots.get(n + 1) {
            e.prefetch(&next.keys);
        }
        let r = Instant::now();
        for chunk in s.reads.chunks(READ_BATCH) {
            let b = Instant::now();
            e.read(chunk)?;
            m.read_batch_ns.push(b.elapsed().as_nanos() as u64);
        }
        m.read_s += r.elapsed().as_secs_f64();
        let c = Instant::now();
        e.commit(s.number, &s.batch)?;
        let c = c.elapsed().as_secs_f64();
        m.commit_s += c;
        m.commit_ms.push(c * 1e3);
        if prefetch {
            e.release(&s.keys);
        }
        m.reads += s.reads.len();
        m.updates += s.batch.len();
    }
    m.wall_s = t.elapsed().as_secs_f64();
    m.slots = slots.len();
    m.settle_s = e.settle();
    m.write_bytes = proc_write_bytes().saturating_sub(w0);
    Ok(m)
}

/// Which engine a run times first.
#[derive(Clone, Copy, PartialEq)]
enum Who {
    Ours,
    Peer,
}

fn order(i: usize) -> [Who; 2] {
    if i.is_multiple_of(2) {
        [Who::Ours, Who::Peer]
    } else {
        [Who::Peer, Who::Ours]
    }
}

/// Both engines through the same slots, in `order`: (ours, RocksDB).
fn run_pair(
    store: &ArrayStore,
    peer: &rocks::Peer,
    slots: &[Slot],
    prefetch: bool,
    order: [Who; 2],
) -> anyhow::Result<(Measured, Measured)> {
    let (mut o, mut p) = (None, None);
    for who in order {
        match who {
            Who::Ours => o = Some(run_slots(&Ours(store), slots, prefetch)?),
            Who::Peer => p = Some(peer.with_engine(prefetch, |e| run_slots(e, slots, prefetch))?),
        }
    }
    Ok((o.expect("ran"), p.expect("ran")))
}

fn array_config(dir: &Path, cache_bytes: usize, device_bytes: u64) -> ArrayConfig {
    ArrayConfig {
        devices: vec![DeviceSpec {
            path: dir.join("array-0.dev"),
            create_bytes: device_bytes,
        }],
        cache_bytes,
        ..ArrayConfig::default()
    }
}

/// Device size for `accounts`: live data is about 0.55 KiB per account; 4× that plus slack
/// leaves room for 2× amplification and the runs' rewrites.
fn device_bytes(accounts: usize) -> u64 {
    ((accounts as u64 * 2300) + (512 << 20)).next_multiple_of(32 << 20)
}

/// Loads accounts `0..n` into ours in slots of 10k (seconds taken; `next_slot` advanced).
fn load_ours(
    store: &ArrayStore,
    n: usize,
    next_slot: &mut u64,
    rng: &mut StdRng,
) -> anyhow::Result<f64> {
    let mut secs = 0.0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|&i| (key(i), make_account(i, 0, rng)))
            .collect();
        let t = Instant::now();
        store.commit_slot(*next_slot, &batch, &[])?;
        secs += t.elapsed().as_secs_f64();
        *next_slot += 1;
    }
    Ok(secs)
}

/// The same accounts into RocksDB, one synced WriteBatch per 10k.
fn load_peer(peer: &rocks::Peer, n: usize, rng: &mut StdRng) -> anyhow::Result<f64> {
    let mut secs = 0.0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|&i| (key(i), make_account(i, 0, rng)))
            .collect();
        let t = Instant::now();
        peer.commit(&batch)?;
        secs += t.elapsed().as_secs_f64();
    }
    peer.flush()?;
    Ok(secs)
}

/// Raw 4 KiB O_DIRECT random reads over `span` bytes of the file through one io_uring with
/// `qd` reads kept in flight (each completion is replaced at once): the ceiling for cold
/// account reads at that queue depth.
fn raw_iops(path: &Path, span: u64, n: usize, qd: usize, rng: &mut StdRng) -> anyhow::Result<f64> {
    use io_uring::{IoUring, opcode, types};
    use std::os::fd::AsRawFd;
    let d = open_device(path, 0, true)?;
    if !d.direct {
        // Still measured (the smoke test may run on tmpfs or overlayfs), but the figures then
        // come from the page cache and say nothing about the device.
        tracing::warn!(
            path = %path.display(),
            "the filesystem refuses O_DIRECT: raw and cold-read IOPS measure the page cache; put --dir on a real filesystem"
        );
    }
    let blocks = (span / 4096).max(1);
    let mut mem = vec![0u8; (qd + 1) * 4096];
    let base = {
        let off = mem.as_ptr().align_offset(4096);
        mem[off..].as_mut_ptr()
    };
    let mut ring = IoUring::new(qd.next_power_of_two() as u32)?;
    let fd = types::Fd(d.file.as_raw_fd());
    let submit = |ring: &mut IoUring, slot: usize, rng: &mut StdRng| {
        let e = opcode::Read::new(fd, base.wrapping_add(slot * 4096), 4096)
            .offset(rng.gen_range(0..blocks) * 4096)
            .build()
            .user_data(slot as u64);
        // SAFETY: each slot's 4 KiB of `mem` (alive until the ring is drained below) has at
        // most one read in flight, and the ring has room for `qd` entries.
        unsafe { ring.submission().push(&e) }.expect("room in the ring");
    };
    let t = Instant::now();
    let (mut submitted, mut done) = (0, 0);
    for slot in 0..qd.min(n) {
        submit(&mut ring, slot, rng);
        submitted += 1;
    }
    let mut completed = Vec::with_capacity(qd);
    let mut failed = None;
    while done < submitted {
        ring.submit_and_wait(1)?;
        completed.extend(ring.completion().map(|c| (c.user_data(), c.result())));
        for (slot, res) in completed.drain(..) {
            done += 1;
            if res != 4096 && failed.is_none() {
                failed = Some(res);
            }
            if submitted < n && failed.is_none() {
                submit(&mut ring, slot as usize, rng);
                submitted += 1;
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    drop(ring);
    drop(mem);
    if let Some(res) = failed {
        anyhow::bail!(
            "raw read failed: {}",
            if res < 0 {
                std::io::Error::from_raw_os_error(-res).to_string()
            } else {
                format!("short read of {res} bytes")
            }
        );
    }
    Ok(n as f64 / secs)
}

/// Cold reads: cache dropped once, then uniform keys (almost all cold in a large state) in
/// batches of `QUEUE_DEPTH`, each prefetched one batch ahead as the sequencer does, so at most
/// two batches are in flight.
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

/// Counter deltas of ours over the measured slots.
#[derive(Default)]
struct Hits {
    sequenced_hits: u64,
    sequenced_waits: u64,
    sequenced_misses: u64,
    /// No-prefetch series: gets and gets served from the cache.
    gets: u64,
    cache_hits: u64,
}

impl Hits {
    fn add_sequenced(&mut self, b: &ArrayStats, a: &ArrayStats) {
        self.sequenced_hits += a.sequenced_hits - b.sequenced_hits;
        self.sequenced_waits += a.sequenced_waits - b.sequenced_waits;
        self.sequenced_misses += a.sequenced_misses - b.sequenced_misses;
    }
    fn sequenced(&self) -> u64 {
        self.sequenced_hits + self.sequenced_waits + self.sequenced_misses
    }
}

/// One point of the cache sweep.
struct SweepPoint {
    cache_mib: f64,
    ours: f64,
    peer: f64,
    ratio: f64,
}

struct Sweep {
    data_mib: f64,
    points: Vec<SweepPoint>,
}

/// Fresh stores of `n` accounts; at each cache size both are reopened cold (ours with that
/// account cache, RocksDB with the same memory: that plus our index's, split between its
/// write buffers and its block cache, reading with O_DIRECT so the OS page cache is no extra
/// cache), warmed up, then timed with prefetch.
fn sweep(a: &StorageArgs, n: usize) -> anyhow::Result<Sweep> {
    let updates = a.updates_per_slot.min(n / 4).max(1);
    let shape = &Shape {
        updates,
        reads: a.reads_per_slot * updates / a.updates_per_slot.max(1),
    };
    let dir = tempfile::tempdir_in(&a.dir)?;
    let mut rng = StdRng::seed_from_u64(7);
    let zipf = Zipf::new(n, 0.99, &mut rng);
    let dev = device_bytes(n);
    let mut next_slot = 1u64;
    // The data set: what our cache holds once every account is in it.
    let (data_bytes, index_bytes) = {
        let store = ArrayStore::open(array_config(dir.path(), 64 << 30, dev))?;
        load_ours(&store, n, &mut next_slot, &mut rng)?;
        let s = store.stats();
        anyhow::ensure!(s.accounts as usize == n, "sweep load lost accounts");
        (s.cache_bytes, s.index_bytes)
    };
    {
        let peer = rocks::Peer::open(&dir.path().join("rocksdb"), 64 << 20, true)?;
        load_peer(&peer, n, &mut rng)?;
    }
    let mut points = Vec::new();
    for (i, frac) in SWEEP.into_iter().enumerate() {
        let cache = ((data_bytes as f64 * frac) as usize).max(64 << 10);
        let store = ArrayStore::open(array_config(dir.path(), cache, dev))?;
        // The same memory as ours (cache + index), split by RocksDB as in the main run.
        let peer = rocks::Peer::open(
            &dir.path().join("rocksdb"),
            cache + index_bytes as usize,
            true,
        )?;
        let warm = plan(a.sweep_warmup_slots, shape, &zipf, &mut next_slot, &mut rng);
        let timed = plan(a.sweep_slots, shape, &zipf, &mut next_slot, &mut rng);
        run_pair(&store, &peer, &warm, true, order(i))?;
        let before = store.stats();
        let (o, p) = run_pair(&store, &peer, &timed, true, order(i))?;
        let after = store.stats();
        peer.flush()?;
        let mut hits = Hits::default();
        hits.add_sequenced(&before, &after);
        let point = SweepPoint {
            cache_mib: cache as f64 / 1048576.0,
            ours: o.slots_per_s(),
            peer: p.slots_per_s(),
            ratio: o.slots_per_s() / p.slots_per_s(),
        };
        eprintln!(
            "sweep cache {:.1} MiB ({frac}x): ours {:.2} slots/s, rocksdb {:.2} slots/s, ratio {:.2}; ours' sequenced gets {} hit / {} waited / {} missed, {} queued accounts evicted",
            point.cache_mib,
            point.ours,
            point.peer,
            point.ratio,
            hits.sequenced_hits,
            hits.sequenced_waits,
            hits.sequenced_misses,
            after.evicted_queued - before.evicted_queued,
        );
        points.push(point);
    }
    Ok(Sweep {
        data_mib: data_bytes as f64 / 1048576.0,
        points,
    })
}

pub fn run(a: &StorageArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(
        a.runs >= 1 && a.slots >= 1,
        "--runs and --slots must be at least 1"
    );
    anyhow::ensure!(
        a.updates_per_slot <= a.accounts,
        "--updates-per-slot must not exceed the accounts (updates are distinct)"
    );
    let sweep_accounts = a.sweep_accounts.unwrap_or(a.accounts / 5);
    anyhow::ensure!(
        sweep_accounts == 0 || sweep_accounts >= 64,
        "--sweep-accounts: at least 64 (or 0 to skip the sweep)"
    );
    rocks::Peer::available()?;
    std::fs::create_dir_all(&a.dir)?;
    let shape = Shape {
        updates: a.updates_per_slot,
        reads: a.reads_per_slot,
    };
    let dir = tempfile::tempdir_in(&a.dir)?;
    let mut rng = StdRng::seed_from_u64(42);
    let zipf = Zipf::new(a.accounts, 0.99, &mut rng);
    let dev = device_bytes(a.accounts);
    let cache_bytes = a.cache_mib << 20;
    let store = ArrayStore::open(array_config(dir.path(), cache_bytes, dev))?;
    eprintln!("loading {} accounts into both stores...", a.accounts);
    let mut next_slot = 1u64;
    let load_ours_s = load_ours(&store, a.accounts, &mut next_slot, &mut rng)?;
    let loaded = store.stats();
    // The same memory: ours is its account cache and its index; RocksDB splits it between
    // its write buffers and its block cache (where its index and filters live too).
    let peer = rocks::Peer::open(
        &dir.path().join("rocksdb"),
        cache_bytes + loaded.index_bytes as usize,
        false,
    )?;
    let load_peer_s = load_peer(&peer, a.accounts, &mut rng)?;
    // Warm-up. Our load wrote every account through our cache; a scan gives RocksDB's block
    // cache the same start. Then both run the same untimed slots.
    let t = Instant::now();
    let scanned = peer.scan()?;
    anyhow::ensure!(scanned == a.accounts, "RocksDB holds {scanned} accounts");
    eprintln!(
        "rocksdb scan warm-up: {scanned} keys in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let warm = plan(a.warmup_slots, &shape, &zipf, &mut next_slot, &mut rng);
    run_pair(&store, &peer, &warm, true, order(0))?;
    drop(warm);

    let (mut pf, mut np) = (Vec::new(), Vec::new());
    let mut hits = Hits::default();
    let mut state_root_ns = 0;
    for run in 0..a.runs {
        let slots = plan(a.slots, &shape, &zipf, &mut next_slot, &mut rng);
        let before = store.stats();
        let root_ns = store.commitment_ns();
        let (o, p) = run_pair(&store, &peer, &slots, true, order(run))?;
        state_root_ns += store.commitment_ns() - root_ns;
        hits.add_sequenced(&before, &store.stats());
        let slots = plan(a.slots, &shape, &zipf, &mut next_slot, &mut rng);
        let before = store.stats();
        let (on, pn) = run_pair(&store, &peer, &slots, false, order(run))?;
        let after = store.stats();
        hits.gets += after.gets - before.gets;
        hits.cache_hits += after.cache_hits - before.cache_hits;
        eprintln!(
            "run {run} ({} first): prefetch: ours {:.2} slots/s ({:.0} reads/s, commit {:.0} updates/s) | rocksdb {:.2} slots/s ({:.0} reads/s, commit {:.0} updates/s) || no prefetch: ours {:.2} | rocksdb {:.2} slots/s",
            if order(run)[0] == Who::Ours {
                "ours"
            } else {
                "rocksdb"
            },
            o.slots_per_s(),
            o.reads_per_s(),
            o.commit_updates_per_s(),
            p.slots_per_s(),
            p.reads_per_s(),
            p.commit_updates_per_s(),
            on.slots_per_s(),
            pn.slots_per_s(),
        );
        pf.push((o, p));
        np.push((on, pn));
    }
    let rocks_stats = peer.stats()?;
    let (peer_cache, peer_write_buffer) = (peer.block_cache_bytes, peer.write_buffer_bytes);
    drop(peer);

    // Cold reads against the raw ceiling, alternating which goes first.
    let stats = store.stats();
    let span = stats.used_bytes.max(64 << 20) + (1 << 20);
    let dev_path = dir.path().join("array-0.dev");
    let mut raw: Vec<[f64; 3]> = Vec::new();
    let (mut cold, mut per_read) = (Vec::new(), Vec::new());
    for run in 0..a.runs {
        let mut raw_run = [0.0; 3];
        let mut measure_raw = |rng: &mut StdRng| -> anyhow::Result<()> {
            for (r, qd) in raw_run.iter_mut().zip(RAW_QDS) {
                *r = raw_iops(&dev_path, span, a.cold_reads, qd, rng)?;
            }
            Ok(())
        };
        if !run.is_multiple_of(2) {
            measure_raw(&mut rng)?;
        }
        let (iops, pr) = cold_iops(&store, a.accounts, a.cold_reads, &mut rng)?;
        if run.is_multiple_of(2) {
            measure_raw(&mut rng)?;
        }
        raw.push(raw_run);
        cold.push(iops);
        per_read.push(pr);
    }
    let fractions: Vec<f64> = cold
        .iter()
        .zip(&raw)
        .map(|(c, r)| c / r.iter().copied().fold(0.0, f64::max))
        .collect();
    let raw_at = |i: usize| median(raw.iter().map(|r| r[i]).collect());
    let n = stats.accounts.max(1) as f64;
    // Restart: the index is rebuilt by scanning every used segment.
    drop(store);
    let t = Instant::now();
    let reopened = ArrayStore::open(array_config(dir.path(), cache_bytes, dev))?;
    let reopen_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        reopened.account_count() as u64 == stats.accounts,
        "accounts lost across reopen"
    );
    drop(reopened);
    drop(dir);

    let sweep = if sweep_accounts > 0 {
        Some(sweep(a, sweep_accounts)?)
    } else {
        None
    };

    let med = |v: &[(Measured, Measured)], f: fn(&Measured) -> f64, peer: bool| {
        median(
            v.iter()
                .map(|(o, p)| if peer { f(p) } else { f(o) })
                .collect(),
        )
    };
    let ratio = |v: &[(Measured, Measured)], f: fn(&Measured) -> f64| {
        median(v.iter().map(|(o, p)| f(o) / f(p)).collect())
    };
    let pooled = |v: &[(Measured, Measured)], f: fn(&Measured) -> &Vec<f64>, peer: bool| {
        median(
            v.iter()
                .flat_map(|(o, p)| (if peer { f(p) } else { f(o) }).iter().copied())
                .collect(),
        )
    };
    let batch_p99 = |peer: bool| {
        let mut ns: Vec<u64> = pf
            .iter()
            .flat_map(|(o, p)| {
                (if peer {
                    &p.read_batch_ns
                } else {
                    &o.read_batch_ns
                })
                .iter()
                .copied()
            })
            .collect();
        percentile(&mut ns, 0.99) / 1000.0
    };
    let reads_checked = |v: &[(Measured, Measured)], peer: bool| -> f64 {
        v.iter()
            .map(|(o, p)| (if peer { p.reads } else { o.reads }) as f64)
            .sum()
    };
    let seq = hits.sequenced().max(1) as f64;
    let mut rows = vec![
        ("accounts", stats.accounts as f64, "accounts"),
        (
            "slots_per_s",
            med(&pf, Measured::slots_per_s, false),
            "slots/s (ours, prefetching)",
        ),
        (
            "rocksdb_slots_per_s",
            med(&pf, Measured::slots_per_s, true),
            "slots/s (RocksDB, prefetching)",
        ),
        (
            "ratio_vs_rocksdb",
            ratio(&pf, Measured::slots_per_s),
            "x (whole slots, both prefetching)",
        ),
        (
            "slots_per_s_no_prefetch",
            med(&np, Measured::slots_per_s, false),
            "slots/s (ours, no prefetch)",
        ),
        (
            "rocksdb_slots_per_s_no_prefetch",
            med(&np, Measured::slots_per_s, true),
            "slots/s (RocksDB, no prefetch)",
        ),
        (
            "ratio_vs_rocksdb_no_prefetch",
            ratio(&np, Measured::slots_per_s),
            "x (whole slots, neither prefetching)",
        ),
        (
            "ratio_vs_rocksdb_best",
            median(
                pf.iter()
                    .zip(&np)
                    .map(|((o, p), (on, pn))| {
                        o.slots_per_s().max(on.slots_per_s())
                            / p.slots_per_s().max(pn.slots_per_s())
                    })
                    .collect(),
            ),
            "x (whole slots, each engine's faster series)",
        ),
        (
            "reads_per_s",
            med(&pf, Measured::reads_per_s, false),
            "reads/s (ours, read phase, prefetching)",
        ),
        (
            "rocksdb_reads_per_s",
            med(&pf, Measured::reads_per_s, true),
            "reads/s (RocksDB MultiGet, read phase, prefetching)",
        ),
        (
            "read_ratio_vs_rocksdb",
            ratio(&pf, Measured::reads_per_s),
            "x (read phase, prefetching)",
        ),
        (
            "reads_per_s_no_prefetch",
            med(&np, Measured::reads_per_s, false),
            "reads/s (ours, read phase, no prefetch)",
        ),
        (
            "rocksdb_reads_per_s_no_prefetch",
            med(&np, Measured::reads_per_s, true),
            "reads/s (RocksDB MultiGet, read phase, no prefetch)",
        ),
        (
            "read_batch_p99_us",
            batch_p99(false),
            "us per 256-key batch (ours, p99, prefetching)",
        ),
        (
            "rocksdb_read_batch_p99_us",
            batch_p99(true),
            "us per 256-key MultiGet (RocksDB, p99, prefetching)",
        ),
        (
            "commit_updates_per_s",
            med(&pf, Measured::commit_updates_per_s, false),
            "updates/s (ours, commit alone)",
        ),
        (
            "rocksdb_commit_updates_per_s",
            med(&pf, Measured::commit_updates_per_s, true),
            "updates/s (RocksDB, commit alone)",
        ),
        (
            "commit_ratio_vs_rocksdb",
            ratio(&pf, Measured::commit_updates_per_s),
            "x (commit alone, prefetching)",
        ),
        (
            "commit_ms_p50",
            pooled(&pf, |m| &m.commit_ms, false),
            "ms per slot commit (ours, median)",
        ),
        (
            "commit_state_root_ms",
            state_root_ns as f64 / 1e6 / (a.runs * a.slots) as f64,
            "ms per slot commit staging the state root (ours, mean)",
        ),
        (
            "rocksdb_commit_ms_p50",
            pooled(&pf, |m| &m.commit_ms, true),
            "ms per slot commit (RocksDB, median)",
        ),
        (
            "cache_hit_ratio",
            hits.sequenced_hits as f64 / seq,
            "of sequenced gets: hits, no wait",
        ),
        (
            "waited_for_prefetch_ratio",
            hits.sequenced_waits as f64 / seq,
            "of sequenced gets: waited for the prefetch's read",
        ),
        (
            "sequenced_miss_ratio",
            hits.sequenced_misses as f64 / seq,
            "of sequenced gets: read the device",
        ),
        (
            "sequenced_gets",
            hits.sequenced() as f64,
            "gets of prefetched keys (ours)",
        ),
        (
            "cache_hit_ratio_no_prefetch",
            hits.cache_hits as f64 / hits.gets.max(1) as f64,
            "of gets: hits (ours, no prefetch)",
        ),
        (
            "reads_checked",
            reads_checked(&pf, false) + reads_checked(&np, false),
            "keys read and found (ours)",
        ),
        (
            "rocksdb_reads_checked",
            reads_checked(&pf, true) + reads_checked(&np, true),
            "keys read and found (RocksDB)",
        ),
        (
            "rocksdb_block_cache_capacity_mib",
            peer_cache as f64 / 1048576.0,
            "MiB (RocksDB block cache)",
        ),
        (
            "rocksdb_write_buffer_mib",
            peer_write_buffer as f64 / 1048576.0,
            "MiB (RocksDB, each of 2 write buffers)",
        ),
        (
            "rocksdb_block_cache_used_mib",
            rocks_stats.block_cache_bytes as f64 / 1048576.0,
            "MiB (RocksDB block cache in use at the end)",
        ),
        (
            "rocksdb_filter_bytes",
            rocks_stats.filter_bytes as f64,
            "bytes (bloom filter blocks in RocksDB's SST files)",
        ),
        (
            "rocksdb_settle_s",
            pf.iter().chain(&np).map(|(_, p)| p.settle_s).sum(),
            "s (RocksDB background work after its series, untimed)",
        ),
        (
            "device_reads_per_cold_read",
            median(per_read),
            "device reads per cold read",
        ),
        (
            "cold_read_iops",
            median(cold),
            "account reads/s (cache dropped)",
        ),
        (
            "raw_4k_read_iops_qd32",
            raw_at(0),
            "reads/s (raw 4 KiB O_DIRECT, 32 in flight)",
        ),
        (
            "raw_4k_read_iops_qd128",
            raw_at(1),
            "reads/s (raw 4 KiB O_DIRECT, 128 in flight)",
        ),
        (
            "raw_4k_read_iops_qd256",
            raw_at(2),
            "reads/s (raw 4 KiB O_DIRECT, 256 in flight)",
        ),
        (
            "cold_read_fraction_of_raw",
            median(fractions),
            "of the best raw rate (per-run pairs)",
        ),
        (
            "write_bytes_per_update",
            med(&pf, Measured::write_bytes_per_update, false),
            "bytes per update (ours)",
        ),
        (
            "rocksdb_write_bytes_per_update",
            med(&pf, Measured::write_bytes_per_update, true),
            "bytes per update (RocksDB)",
        ),
        (
            "bytes_per_account_index",
            stats.index_bytes as f64 / n,
            "bytes per account (index)",
        ),
        (
            "cache_bytes_per_account",
            stats.cache_bytes as f64 / n,
            "bytes per account (cache, at the end)",
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
            a.accounts as f64 / load_ours_s,
            "accounts/s (ours, initial load)",
        ),
        (
            "rocksdb_load_accounts_per_s",
            a.accounts as f64 / load_peer_s,
            "accounts/s (RocksDB, initial load)",
        ),
        (
            "loaded_used_mib",
            loaded.used_bytes as f64 / 1048576.0,
            "MiB (ours, on device after load)",
        ),
        (
            "hugepages",
            f64::from(u8::from(stats.hugepages)),
            "(1 = I/O pool on hugepages)",
        ),
        (
            "reopen_s",
            reopen_s,
            "s (reopen: index rebuilt from every used segment)",
        ),
    ];
    let mut plots = Vec::new();
    if let Some(s) = &sweep {
        let first = &s.points[0];
        let last = &s.points[s.points.len() - 1];
        rows.extend([
            (
                "sweep_accounts",
                sweep_accounts as f64,
                "accounts (cache sweep)",
            ),
            (
                "sweep_data_mib",
                s.data_mib,
                "MiB (sweep data set as our cache holds it)",
            ),
            (
                "sweep_ratio_eighth_cache",
                first.ratio,
                "x (cache 1/8 of the data, both prefetching)",
            ),
            (
                "sweep_ratio_full_cache",
                last.ratio,
                "x (cache 1x the data, both prefetching)",
            ),
        ]);
        plots.push(Plot {
            id: "ratio-vs-cache",
            title: format!(
                "storage: ours / RocksDB whole-slot rate vs cache size ({} accounts, both prefetching)",
                sweep_accounts
            ),
            x_label: "cache (MiB)",
            y_label: "ratio (ours / RocksDB)",
            lines: vec![Line {
                label: "ours / RocksDB".into(),
                points: s.points.iter().map(|p| (p.cache_mib, p.ratio)).collect(),
            }],
        });
        plots.push(Plot {
            id: "slots-vs-cache",
            title: format!(
                "storage: slots/s vs cache size ({} accounts, both prefetching)",
                sweep_accounts
            ),
            x_label: "cache (MiB)",
            y_label: "slots/s",
            lines: vec![
                Line {
                    label: "ours".into(),
                    points: s.points.iter().map(|p| (p.cache_mib, p.ours)).collect(),
                },
                Line {
                    label: "RocksDB".into(),
                    points: s.points.iter().map(|p| (p.cache_mib, p.peer)).collect(),
                },
            ],
        });
    }
    Ok(Report { rows, plots })
}

/// What the peer reports after the runs.
pub struct PeerStats {
    block_cache_bytes: u64,
    filter_bytes: u64,
}

#[cfg(feature = "rocksdb-peer")]
mod rocks {
    use super::{Engine, PeerStats, READ_BATCH};
    use solana_account::AccountSharedData;
    use solana_pubkey::Pubkey;
    use std::path::Path;
    use std::time::{Duration, Instant};

    pub struct Peer {
        db: rocksdb::DB,
        /// Block cache capacity and write buffer size: the split of the memory budget.
        pub block_cache_bytes: usize,
        pub write_buffer_bytes: usize,
    }

    fn encode(k: &Pubkey, a: &AccountSharedData, out: &mut Vec<u8>) {
        // The same bytes our engine stores for the account.
        storage::array::layout::encode_account(out, k, 0, a, 0);
    }

    /// The peer with, while it lives, a thread that MultiGets the keys it is handed.
    struct Prefetching<'a> {
        peer: &'a Peer,
        ahead: Option<crossbeam_channel::Sender<Vec<Pubkey>>>,
    }

    impl Engine for Prefetching<'_> {
        fn read(&self, keys: &[Pubkey]) -> anyhow::Result<()> {
            let cf = self.peer.cf()?;
            for (k, v) in keys
                .iter()
                .zip(self.peer.db.batched_multi_get_cf(cf, keys, false))
            {
                anyhow::ensure!(v?.is_some(), "account {k} missing in RocksDB");
            }
            Ok(())
        }
        fn commit(&self, _: u64, batch: &[(Pubkey, AccountSharedData)]) -> anyhow::Result<()> {
            self.peer.commit(batch)
        }
        fn prefetch(&self, keys: &[Pubkey]) {
            if let Some(tx) = &self.ahead {
                let _ = tx.send(keys.to_vec());
            }
        }
        fn release(&self, _: &[Pubkey]) {}
        fn settle(&self) -> f64 {
            self.peer.settle()
        }
    }

    impl Peer {
        pub fn available() -> anyhow::Result<()> {
            Ok(())
        }

        /// RocksDB as its engineers tune it for point lookups of existing keys with small
        /// synced write batches: full bloom filters (10 bits/key, whole keys) and a data-block
        /// hash index, index and filter blocks in the block cache with L0's pinned, a memtable
        /// bloom, dynamic level sizes, background jobs = cores, recycled WAL files (a reused,
        /// already written file: a sync is a data sync, not an extent update), WAL flushed by
        /// every write. `budget_bytes` is split between the two write buffers (each 1/8 of
        /// it, at most RocksDB's default 64 MiB) and the block cache (the rest).
        /// `direct_reads`: read SST files with O_DIRECT, so that budget is all the memory the
        /// reads get (the cache sweep).
        pub fn open(path: &Path, budget_bytes: usize, direct_reads: bool) -> anyhow::Result<Peer> {
            let write_buffer_bytes = (budget_bytes / 8).min(64 << 20);
            let block_cache_bytes = budget_bytes - 2 * write_buffer_bytes;
            let mut opts = rocksdb::Options::default();
            opts.set_write_buffer_size(write_buffer_bytes);
            opts.set_max_write_buffer_number(2);
            opts.create_if_missing(true);
            opts.increase_parallelism(super::super::cores() as i32);
            opts.set_max_background_jobs(super::super::cores() as i32);
            opts.set_level_compaction_dynamic_level_bytes(true);
            opts.set_bytes_per_sync(1 << 20);
            opts.set_recycle_log_file_num(4);
            opts.set_manual_wal_flush(false);
            opts.set_use_direct_reads(direct_reads);
            opts.set_memtable_prefix_bloom_ratio(0.02);
            opts.set_memtable_whole_key_filtering(true);
            let mut block = rocksdb::BlockBasedOptions::default();
            block.set_block_cache(&rocksdb::Cache::new_lru_cache(block_cache_bytes)?);
            block.set_bloom_filter(10.0, false);
            block.set_whole_key_filtering(true);
            block.set_cache_index_and_filter_blocks(true);
            block.set_pin_l0_filter_and_index_blocks_in_cache(true);
            block.set_data_block_index_type(rocksdb::DataBlockIndexType::BinaryAndHash);
            block.set_data_block_hash_ratio(0.75);
            opts.set_block_based_table_factory(&block);
            // The default column family opened by name (with these options), so that
            // `cf_handle` finds it for the batched MultiGet.
            let cf = rocksdb::ColumnFamilyDescriptor::new(
                rocksdb::DEFAULT_COLUMN_FAMILY_NAME,
                opts.clone(),
            );
            Ok(Peer {
                db: rocksdb::DB::open_cf_descriptors(&opts, path, [cf])?,
                block_cache_bytes,
                write_buffer_bytes,
            })
        }

        fn cf(&self) -> anyhow::Result<&rocksdb::ColumnFamily> {
            self.db
                .cf_handle(rocksdb::DEFAULT_COLUMN_FAMILY_NAME)
                .ok_or_else(|| anyhow::anyhow!("RocksDB has no default column family"))
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

        /// Flushes the memtables to SST files and waits for the compactions that follow: the
        /// loaded state then sits where a long-running node's does.
        pub fn flush(&self) -> anyhow::Result<()> {
            self.db.flush()?;
            self.settle();
            Ok(())
        }

        /// Reads every record once (filling the block cache): the number of keys.
        pub fn scan(&self) -> anyhow::Result<usize> {
            let mut it = self.db.raw_iterator();
            it.seek_to_first();
            let mut n = 0;
            while it.valid() {
                n += 1;
                it.next();
            }
            it.status()?;
            Ok(n)
        }

        /// Runs `f` on the peer; with `prefetch`, a thread MultiGets (in batches of the same
        /// size as the reads) every key set handed to `Engine::prefetch`, warming the block
        /// cache as our prefetch warms ours.
        pub fn with_engine<R>(&self, prefetch: bool, f: impl FnOnce(&dyn Engine) -> R) -> R {
            std::thread::scope(|s| {
                let (tx, rx) = crossbeam_channel::unbounded::<Vec<Pubkey>>();
                let worker = prefetch.then(|| {
                    std::thread::Builder::new()
                        .name("rocksdb-prefetch".into())
                        .spawn_scoped(s, move || {
                            let Ok(cf) = self.cf() else { return };
                            for keys in rx {
                                for chunk in keys.chunks(READ_BATCH) {
                                    drop(self.db.batched_multi_get_cf(cf, chunk, false));
                                }
                            }
                        })
                        .expect("spawn rocksdb-prefetch")
                });
                let e = Prefetching {
                    peer: self,
                    ahead: prefetch.then_some(tx),
                };
                let r = f(&e);
                drop(e);
                if let Some(w) = worker {
                    let _ = w.join();
                }
                r
            })
        }

        /// Waits (at most a minute) until no flush or compaction is pending or running.
        pub fn settle(&self) -> f64 {
            let t = Instant::now();
            let busy = |p: &str| self.db.property_int_value(p).ok().flatten().unwrap_or(0) > 0;
            while t.elapsed() < Duration::from_secs(60)
                && [
                    "rocksdb.num-running-compactions",
                    "rocksdb.num-running-flushes",
                    "rocksdb.compaction-pending",
                    "rocksdb.mem-table-flush-pending",
                ]
                .iter()
                .any(|p| busy(p))
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            t.elapsed().as_secs_f64()
        }

        pub fn stats(&self) -> anyhow::Result<PeerStats> {
            let block_cache_bytes = self
                .db
                .property_int_value("rocksdb.block-cache-usage")?
                .unwrap_or(0);
            // "...; filter block size=N; ..." summed over the live SST files.
            let props = self
                .db
                .property_value("rocksdb.aggregated-table-properties")?
                .unwrap_or_default();
            let filter_bytes = props
                .split(';')
                .find_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    (k.trim() == "filter block size").then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            Ok(PeerStats {
                block_cache_bytes,
                filter_bytes,
            })
        }
    }
}

#[cfg(not(feature = "rocksdb-peer"))]
mod rocks {
    use super::{Engine, PeerStats};
    use solana_account::AccountSharedData;
    use solana_pubkey::Pubkey;
    use std::path::Path;

    pub struct Peer {
        pub block_cache_bytes: usize,
        pub write_buffer_bytes: usize,
    }

    /// Dropped, like the real one, to free its memory before the cold reads and the sweep.
    impl Drop for Peer {
        fn drop(&mut self) {}
    }

    impl Peer {
        pub fn available() -> anyhow::Result<()> {
            anyhow::bail!(
                "this binary was built without the RocksDB peer: build with \
                 `cargo build --release --features rocksdb-peer` (needs Debian's librocksdb-dev \
                 and libclang-dev; scripts/test.sh installs them)"
            )
        }
        pub fn open(_: &Path, _: usize, _: bool) -> anyhow::Result<Peer> {
            Self::available().map(|()| -> Peer { unreachable!() })
        }
        pub fn flush(&self) -> anyhow::Result<()> {
            unreachable!("Peer cannot be opened without the feature")
        }
        pub fn commit(&self, _: &[(Pubkey, AccountSharedData)]) -> anyhow::Result<()> {
            unreachable!("Peer cannot be opened without the feature")
        }
        pub fn scan(&self) -> anyhow::Result<usize> {
            unreachable!("Peer cannot be opened without the feature")
        }
        pub fn with_engine<R>(&self, _: bool, _: impl FnOnce(&dyn Engine) -> R) -> R {
            unreachable!("Peer cannot be opened without the feature")
        }
        pub fn stats(&self) -> anyhow::Result<PeerStats> {
            unreachable!("Peer cannot be opened without the feature")
        }
    }
}
