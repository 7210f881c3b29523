//! Durability across power cuts, not just kill -9: the device-array store runs over the
//! power-cut model (`storage::array::powercut`), which keeps every write since the last
//! completed flush apart. At a random point (any write or sync of any device, or between
//! commits) the power fails; the disk then keeps none, all, a prefix or a random subset of
//! the unsynced writes, or tears them at 512-byte or 4 KiB sectors. After each cut the store
//! is reopened from the surviving image and must hold exactly the slots it acknowledged
//! (plus, whole or not at all, the one in flight), every account and the slot metadata
//! equal to a model, the state root equal to the same slots replayed apart, and it must
//! keep committing.
//!
//! `GIGACOMPUTE_POWERCUT_SEED=N` replays a run (the seed is printed; a failure names it and
//! the cut), `GIGACOMPUTE_POWERCUT_CUTS=N` sets the number of cuts (default 600, at least
//! 200 in CI), `GIGACOMPUTE_POWERCUT_SOAK=N` runs N cuts per configuration instead (a soak:
//! `GIGACOMPUTE_POWERCUT_SOAK=20000 cargo test --release -p storage --test powercut`).

use rand::{Rng, SeedableRng, rngs::StdRng};
use solana_account::{AccountSharedData, ReadableAccount, WritableAccount};
use solana_pubkey::Pubkey;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use storage::array::powercut::{CutReport, PowerCut, Survival};
use storage::commitment::{Commitment, CommitmentConfig};
use storage::{AccountState, ArrayConfig, ArrayStore, DeviceSpec, StateCommitment};

type Model = BTreeMap<Pubkey, (AccountSharedData, u64)>;
type Batch = Vec<(Pubkey, AccountSharedData)>;

const META_RETENTION: usize = 16;
const KEYS: usize = 160;

/// One array layout the cuts run on.
#[derive(Debug, Clone, Copy)]
struct Layout {
    devices: usize,
    block: usize,
    /// io_uring with O_DIRECT, or pread/pwrite through the page cache.
    uring: bool,
}

const LAYOUTS: [Layout; 3] = [
    Layout {
        devices: 1,
        block: 4096,
        uring: true,
    },
    Layout {
        devices: 3,
        block: 512,
        uring: false,
    },
    Layout {
        devices: 2,
        block: 4096,
        uring: false,
    },
];

/// Small devices and segments: segment turnover and compaction happen within a few dozen
/// slots.
fn config(dir: &Path, l: Layout, power: &Arc<PowerCut>) -> ArrayConfig {
    ArrayConfig {
        devices: (0..l.devices)
            .map(|i| DeviceSpec {
                path: dir.join(format!("dev{i}")),
                create_bytes: 4 << 20,
            })
            .collect(),
        block_size: l.block,
        segment_bytes: 64 << 10,
        chunk_bytes: 32 << 10,
        cache_bytes: 64 << 10,
        read_buffers: 64,
        write_buffers: 16,
        ring_entries: 32,
        io_uring: l.uring,
        direct_io: l.uring,
        meta_retention_slots: META_RETENTION,
        commitment: CommitmentConfig {
            window_slots: META_RETENTION,
            history_bytes: 1 << 20,
        },
        power: Some(power.clone()),
        ..ArrayConfig::default()
    }
}

fn account(rng: &mut StdRng, owner: &Pubkey) -> AccountSharedData {
    let len = match rng.gen_range(0..20) {
        0..=7 => 165,
        8..=12 => 0,
        13..=17 => rng.gen_range(1..600),
        // Records that span several 512-byte or 4 KiB blocks.
        _ => rng.gen_range(1000..12_000),
    };
    let mut a = AccountSharedData::new(rng.gen_range(1..1_000_000), len, owner);
    rng.fill(a.data_as_mut_slice());
    a.set_executable(rng.gen_bool(0.05));
    a.set_rent_epoch(rng.gen_range(0..4));
    a
}

/// What the store has acknowledged, kept apart from it.
struct Expected {
    model: Model,
    metas: Vec<(u64, Vec<u8>)>,
    commitment: Commitment,
    last: Option<u64>,
}

impl Expected {
    fn new() -> Self {
        Expected {
            model: Model::new(),
            metas: Vec::new(),
            commitment: Commitment::new(CommitmentConfig {
                window_slots: 4,
                history_bytes: 1 << 16,
            }),
            last: None,
        }
    }

    fn apply(&mut self, slot: u64, batch: &Batch, meta: &[u8]) {
        let old = batch
            .iter()
            .map(|(k, _)| self.model.get(k).map(|(a, _)| a.clone()))
            .collect();
        let staged = self.commitment.stage(slot, batch, old);
        self.commitment.publish(staged);
        for (k, a) in batch {
            if a.lamports() == 0 {
                self.model.remove(k);
            } else {
                self.model.insert(*k, (a.clone(), slot));
            }
        }
        self.metas.push((slot, meta.to_vec()));
        if self.metas.len() > META_RETENTION {
            self.metas.remove(0);
        }
        self.last = Some(slot);
    }
}

/// One array under test: its files, power supply, expected state and the open store.
struct World {
    _dir: tempfile::TempDir,
    cfg: ArrayConfig,
    power: Arc<PowerCut>,
    keys: Vec<Pubkey>,
    owners: Vec<Pubkey>,
    expected: Expected,
    store: Option<ArrayStore>,
    slot: u64,
}

#[derive(Default, Debug)]
struct Figures {
    cuts: usize,
    tripped: usize,
    in_flight_survived: usize,
    in_flight_lost: usize,
    commits: usize,
    compactions: u64,
    clean_reopens: usize,
    format_cuts: usize,
    report: CutReport,
}

fn survival(rng: &mut StdRng) -> Survival {
    match rng.gen_range(0..8) {
        0 | 1 => Survival::LoseAll,
        2 => Survival::KeepAll,
        3 => Survival::Prefix,
        4 | 5 => Survival::Subset,
        6 => Survival::Torn { sector: 512 },
        _ => Survival::Torn { sector: 4096 },
    }
}

impl World {
    fn new(l: Layout) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let power = PowerCut::new();
        let cfg = config(dir.path(), l, &power);
        World {
            _dir: dir,
            cfg,
            power,
            keys: (0..KEYS).map(|_| Pubkey::new_unique()).collect(),
            owners: (0..3).map(|_| Pubkey::new_unique()).collect(),
            expected: Expected::new(),
            store: None,
            slot: 0,
        }
    }

    fn batch(&self, rng: &mut StdRng) -> (Batch, Vec<u8>) {
        let mut b: BTreeMap<Pubkey, AccountSharedData> = BTreeMap::new();
        for _ in 0..rng.gen_range(1..24) {
            let k = self.keys[rng.gen_range(0..self.keys.len())];
            let a = if rng.gen_bool(0.12) {
                AccountSharedData::default()
            } else {
                let owner = self.owners[rng.gen_range(0..self.owners.len())];
                account(rng, &owner)
            };
            b.insert(k, a);
        }
        let meta = (0..rng.gen_range(0..300)).map(|_| rng.r#gen()).collect();
        (b.into_iter().collect(), meta)
    }

    /// Opens the store over the surviving image and checks it against what was
    /// acknowledged; `in_flight` is the slot whose commit the cut interrupted, which must be
    /// there whole or not at all.
    fn reopen_and_check(
        &mut self,
        in_flight: Option<(u64, Batch, Vec<u8>)>,
        figures: &mut Figures,
        ctx: &str,
    ) {
        let store = ArrayStore::open(self.cfg.clone())
            .unwrap_or_else(|e| panic!("{ctx}: reopen after the cut failed: {e}"));
        let r = store.recovered();
        match in_flight {
            Some((slot, batch, meta)) if r.last_slot == Some(slot) => {
                self.expected.apply(slot, &batch, &meta);
                figures.in_flight_survived += 1;
            }
            Some(_) => figures.in_flight_lost += 1,
            None => {}
        }
        assert_eq!(
            r.last_slot, self.expected.last,
            "{ctx}: recovered last slot (acknowledged {:?})",
            self.expected.last
        );
        assert_eq!(
            r.slot_metas, self.expected.metas,
            "{ctx}: recovered slot metadata"
        );
        for k in &self.keys {
            let got = store
                .get(k)
                .unwrap_or_else(|e| panic!("{ctx}: reading {k} after the cut: {e}"));
            match (got, self.expected.model.get(k)) {
                (None, None) => {}
                (Some((a, s)), Some((m, ms))) => {
                    assert!(
                        (&a, s) == (m, *ms),
                        "{ctx}: account {k}: store has slot {s} lamports {}, expected slot {ms} lamports {}",
                        a.lamports(),
                        m.lamports()
                    );
                }
                (g, m) => panic!(
                    "{ctx}: account {k}: store has {:?}, expected {:?} (slot)",
                    g.map(|x| x.1),
                    m.map(|x| x.1)
                ),
            }
        }
        assert_eq!(
            store.account_count(),
            self.expected.model.len(),
            "{ctx}: account count"
        );
        match self.expected.commitment.latest() {
            Some(want) => {
                let got = store
                    .slot_commitment(None)
                    .unwrap_or_else(|e| panic!("{ctx}: no slot commitment after the cut: {e}"));
                assert_eq!(
                    (got.slot, got.root, got.lattice_checksum()),
                    (want.slot, want.root, want.lattice_checksum()),
                    "{ctx}: recovered state root"
                );
            }
            None => assert!(store.slot_commitment(None).is_err()),
        }
        self.store = Some(store);
    }

    /// Commits `slot`, then waits for a compaction read it started, so that the next slot's
    /// writes (and so the cut points) do not depend on thread timing.
    fn commit(&mut self, slot: u64, batch: &Batch, meta: &[u8]) -> bool {
        let store = self.store.as_ref().expect("open store");
        let ok = store.commit_slot(slot, batch, meta).is_ok();
        if ok {
            store.wait_compaction_read();
        }
        ok
    }

    /// One cut: a few commits, the power fails during the last one (or right after it), the
    /// disk keeps what `survival` says, and the store reopens and is checked.
    fn cycle(&mut self, rng: &mut StdRng, figures: &mut Figures, ctx: &str) {
        let n_devices = self.cfg.devices.len();
        if self.store.is_none() {
            // A fresh array: half the time the power fails while it is formatted (device 0:
            // superblock write and flush, label write and flush; the others: label write
            // and flush).
            if rng.gen_bool(0.5) {
                for d in 0..n_devices {
                    if d == 0 || rng.gen_bool(0.5) {
                        self.power.arm(d, rng.gen_range(0..4));
                    }
                }
            }
            match ArrayStore::open(self.cfg.clone()) {
                Ok(s) => self.store = Some(s),
                Err(e) => {
                    assert!(
                        self.power.tripped(),
                        "{ctx}: open failed without a cut: {e}"
                    );
                    figures.format_cuts += 1;
                    let report = self.power.cut(survival(rng), rng.r#gen()).expect("cut");
                    figures.report.pending += report.pending;
                    self.reopen_and_check(None, figures, ctx);
                }
            }
        }
        let commits = rng.gen_range(1..=4);
        let mut in_flight = None;
        for i in 0..commits {
            if rng.gen_bool(0.05) {
                // A clean restart in between: nothing lost.
                drop(self.store.take());
                self.reopen_and_check(None, figures, ctx);
                figures.clean_reopens += 1;
            }
            let last = i + 1 == commits;
            if last {
                for d in 0..n_devices {
                    if rng.gen_bool(0.7) {
                        self.power.arm(d, rng.gen_range(0..=5));
                    }
                }
            }
            let slot = self.slot + rng.gen_range(1..=3);
            let (batch, meta) = self.batch(rng);
            figures.commits += 1;
            if self.commit(slot, &batch, &meta) {
                assert!(!self.power.tripped(), "{ctx}: commit succeeded after a cut");
                self.expected.apply(slot, &batch, &meta);
                self.slot = slot;
            } else {
                assert!(
                    self.power.tripped(),
                    "{ctx}: slot {slot} failed without a cut"
                );
                in_flight = Some((slot, batch, meta));
                break;
            }
        }
        if self.power.tripped() {
            figures.tripped += 1;
        }
        let store = self.store.take().expect("open store");
        figures.compactions += store.stats().compactions;
        drop(store);
        let how = survival(rng);
        let report = self.power.cut(how, rng.r#gen()).expect("cut");
        figures.report.pending += report.pending;
        figures.report.kept += report.kept;
        figures.report.torn += report.torn;
        let ctx = format!("{ctx}, {how:?} kept {report:?}");
        // An in-flight slot that failed may be reused (same slot number, other contents)
        // when it did not survive.
        let reuse = in_flight.as_ref().map(|(s, _, _)| *s);
        self.reopen_and_check(in_flight, figures, &ctx);
        figures.cuts += 1;
        let last = self.expected.last.unwrap_or(0);
        self.slot = match reuse {
            Some(f) if f > last && rng.gen_bool(0.5) => f - 1,
            _ => last,
        };
    }
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
    })
}

fn run(cuts_per_layout: usize, seed: u64) -> Figures {
    let mut figures = Figures::default();
    for (li, l) in LAYOUTS.iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(seed ^ (li as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut world = World::new(*l);
        for cut in 0..cuts_per_layout {
            // A fresh array now and then: cuts while it is formatted and while it is young.
            if rng.gen_bool(0.03) {
                world = World::new(*l);
            }
            let ctx = format!(
                "GIGACOMPUTE_POWERCUT_SEED={seed}, layout {l:?}, cut {cut}, last acknowledged slot {:?}",
                world.expected.last
            );
            world.cycle(&mut rng, &mut figures, &ctx);
        }
    }
    figures
}

#[test]
fn every_acknowledged_slot_survives_power_cuts() {
    let seed = env("GIGACOMPUTE_POWERCUT_SEED").unwrap_or_else(rand::random);
    let soak = env("GIGACOMPUTE_POWERCUT_SOAK");
    let total = soak
        .map(|n| n as usize * LAYOUTS.len())
        .or(env("GIGACOMPUTE_POWERCUT_CUTS").map(|n| n as usize))
        .unwrap_or(600);
    let per_layout = total.div_ceil(LAYOUTS.len());
    eprintln!(
        "power cuts: GIGACOMPUTE_POWERCUT_SEED={seed}, {per_layout} cuts on each of {} layouts",
        LAYOUTS.len()
    );
    let started = std::time::Instant::now();
    let f = run(per_layout, seed);
    eprintln!(
        "power cuts: {f:?} in {:.1} s (seed {seed})",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(f.cuts, per_layout * LAYOUTS.len());
    // The cuts must land inside commits and hit unsynced writes, not only between slots.
    if f.cuts >= 100 {
        assert!(f.tripped * 2 > f.cuts, "{f:?}");
        assert!(f.report.pending * 2 > f.cuts, "{f:?}");
        assert!(f.in_flight_survived > 0 && f.in_flight_lost > 0, "{f:?}");
        assert!(f.report.torn > 0 && f.compactions > 0, "{f:?}");
    }
}

/// The model itself: a flush covers only writes of earlier batches, a cut drops what no
/// completed flush covered, and a dead device refuses everything.
#[test]
fn the_model_keeps_only_flushed_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let power = PowerCut::new();
    let cfg = config(dir.path(), LAYOUTS[0], &power);
    let store = ArrayStore::open(cfg.clone()).expect("format");
    let a = Pubkey::new_unique();
    let acct = AccountSharedData::new(7, 165, &Pubkey::new_unique());
    store
        .commit_slot(1, &[(a, acct.clone())], b"one")
        .expect("commit");
    assert_eq!(power.pending_writes(), 0, "a committed slot is all flushed");
    // Lose power at the data sync of slot 2: its data writes are pending, the slot fails.
    power.arm(0, 1);
    let b = Pubkey::new_unique();
    assert!(store.commit_slot(2, &[(b, acct.clone())], b"two").is_err());
    assert!(power.tripped());
    assert!(power.pending_writes() > 0);
    assert!(store.get(&b).expect("read").is_none());
    drop(store);
    let r = power.cut(Survival::KeepAll, 1).expect("cut");
    assert_eq!((r.pending, r.kept), (1, 1));
    let store = ArrayStore::open(cfg).expect("reopen");
    assert_eq!(store.recovered().last_slot, Some(1));
    assert_eq!(store.get(&a).expect("read"), Some((acct, 1)));
    assert!(store.get(&b).expect("read").is_none());
}
