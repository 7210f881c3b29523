//! The device-array store against a model, under crashes, faults, full devices, corruption,
//! tmpfs (no O_DIRECT) and, as root, a loop block device.

use rand::{Rng, SeedableRng, rngs::StdRng};
use solana_account::{AccountSharedData, ReadableAccount, WritableAccount};
use solana_pubkey::Pubkey;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use storage::array::device::OpKind;
use storage::array::fault::{Fault, FaultAction, FaultPlan};
use storage::{AccountState, ArrayConfig, ArrayStore, DeviceSpec, StateCommitment, StoreError};

type Model = BTreeMap<Pubkey, (AccountSharedData, u64)>;

/// Small segments and devices so compaction, segment changes and full devices happen in
/// tests of a few MiB.
fn config(dir: &Path, devices: usize, device_bytes: u64, block: usize) -> ArrayConfig {
    ArrayConfig {
        devices: (0..devices)
            .map(|i| DeviceSpec {
                path: dir.join(format!("dev{i}")),
                create_bytes: device_bytes,
            })
            .collect(),
        block_size: block,
        segment_bytes: 256 << 10,
        chunk_bytes: 64 << 10,
        cache_bytes: 256 << 10,
        read_buffers: 64,
        write_buffers: 16,
        ring_entries: 32,
        meta_retention_slots: 16,
        ..ArrayConfig::default()
    }
}

fn account(rng: &mut StdRng, owner: &Pubkey) -> AccountSharedData {
    let len = match rng.gen_range(0..10) {
        0..=3 => 165,
        4..=6 => 0,
        7 | 8 => rng.gen_range(1..600),
        _ => rng.gen_range(1000..12_000),
    };
    let mut a = AccountSharedData::new(rng.gen_range(1..1_000_000), len, owner);
    rng.fill(a.data_as_mut_slice());
    a.set_executable(rng.gen_bool(0.05));
    a
}

fn check(store: &ArrayStore, model: &Model, keys: &[Pubkey]) {
    for k in keys {
        let got = store.get(k).expect("read");
        match (got, model.get(k)) {
            (None, None) => {}
            (Some((a, s)), Some((m, ms))) => {
                assert_eq!((&a, s), (m, *ms), "account {k}");
            }
            (g, m) => panic!("{k}: store {:?} model {:?}", g.map(|x| x.1), m.map(|x| x.1)),
        }
    }
    assert_eq!(store.account_count(), model.len());
}

/// Random slot commits (new, updated, deleted, large accounts), reads, prefetches with
/// releases, cache drops and restarts, checked against a map after every step.
fn model_run(seed: u64, devices: usize, block: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), devices, 8 << 20, block);
    let mut rng = StdRng::seed_from_u64(seed);
    let owners: Vec<Pubkey> = (0..3).map(|_| Pubkey::new_unique()).collect();
    let keys: Vec<Pubkey> = (0..120).map(|_| Pubkey::new_unique()).collect();
    let mut model = Model::new();
    let mut metas: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut store = ArrayStore::open(cfg.clone()).expect("open");
    let mut slot = 0u64;
    for _ in 0..160 {
        match rng.gen_range(0..10) {
            0 => {
                drop(store);
                store = ArrayStore::open(cfg.clone()).expect("reopen");
                let r = store.recovered();
                assert_eq!(r.last_slot, (slot > 0).then_some(slot));
                let want: Vec<_> = metas.iter().rev().take(16).rev().cloned().collect();
                assert_eq!(r.slot_metas, want);
            }
            1 => {
                let ks: Vec<Pubkey> = (0..8).map(|_| keys[rng.gen_range(0..keys.len())]).collect();
                let _ = store.prefetch(&ks);
                if rng.gen_bool(0.5) {
                    store.flush_hints();
                }
                check(&store, &model, &ks);
                store.release(&ks);
            }
            2 => store.drop_cache(),
            _ => {
                slot += rng.gen_range(1..3);
                let mut batch: BTreeMap<Pubkey, AccountSharedData> = BTreeMap::new();
                for _ in 0..rng.gen_range(1..25) {
                    let k = keys[rng.gen_range(0..keys.len())];
                    let a = if rng.gen_bool(0.1) {
                        AccountSharedData::default()
                    } else {
                        let owner = owners[rng.gen_range(0..owners.len())];
                        account(&mut rng, &owner)
                    };
                    batch.insert(k, a);
                }
                let batch: Vec<_> = batch.into_iter().collect();
                let meta: Vec<u8> = (0..rng.gen_range(0..300)).map(|_| rng.r#gen()).collect();
                store.commit_slot(slot, &batch, &meta).expect("commit");
                for (k, a) in batch {
                    if a.lamports() == 0 {
                        model.remove(&k);
                    } else {
                        model.insert(k, (a, slot));
                    }
                }
                metas.push((slot, meta));
            }
        }
        let probe: Vec<Pubkey> = (0..10)
            .map(|_| keys[rng.gen_range(0..keys.len())])
            .collect();
        check(&store, &model, &probe);
    }
    check(&store, &model, &keys);
    let st = store.stats();
    assert!(st.used_bytes <= 8 << 20);
    drop(store);
    let store = ArrayStore::open(cfg).expect("final reopen");
    check(&store, &model, &keys);
}

#[test]
fn model_one_device_4k() {
    for seed in 0..4 {
        model_run(seed, 1, 4096);
    }
}

#[test]
fn model_three_devices_512() {
    for seed in 10..13 {
        model_run(seed, 3, 512);
    }
}

/// Rewrites the same accounts until the log wraps several times over: compaction must keep
/// space within its bound and the data intact.
#[test]
fn compaction_bounds_space_and_keeps_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 1, 4 << 20, 4096);
    let store = ArrayStore::open(cfg.clone()).expect("open");
    let mut rng = StdRng::seed_from_u64(3);
    let owner = Pubkey::new_unique();
    let keys: Vec<Pubkey> = (0..300).map(|_| Pubkey::new_unique()).collect();
    let mut model = Model::new();
    for slot in 1..=400u64 {
        let batch: Vec<_> = (0..30)
            .map(|_| {
                (
                    keys[rng.gen_range(0..keys.len())],
                    AccountSharedData::new(rng.gen_range(1..99), 165, &owner),
                )
            })
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        store
            .commit_slot(slot, &batch, b"m")
            .expect("commit never runs out of space");
        store.wait_compaction_read();
        for (k, a) in batch {
            model.insert(k, (a, slot));
        }
    }
    let st = store.stats();
    assert!(st.compactions > 5, "compacted {} times", st.compactions);
    assert!(
        st.used_bytes as f64 <= 2.0 * st.live_bytes as f64 + 4.0 * (256 << 10) as f64,
        "{st:?}"
    );
    check(&store, &model, &keys);
    drop(store);
    let store = ArrayStore::open(cfg).expect("reopen");
    check(&store, &model, &keys);
}

/// The crash test's child: commits deterministic slots from where the store left off,
/// printing each slot number once `commit_slot` has returned, until killed.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("ARRAY_CRASH_DIR") else {
        return;
    };
    let store = ArrayStore::open(config(Path::new(&dir), 2, 8 << 20, 4096)).expect("child open");
    let mut slot = store.last_committed_slot().unwrap_or(0);
    use std::io::Write;
    let mut out = std::io::stdout();
    loop {
        slot += 1;
        let (batch, meta) = crash_slot(slot);
        store
            .commit_slot(slot, &batch, &meta)
            .expect("child commit");
        writeln!(out, "committed {slot}").expect("stdout");
        out.flush().expect("flush");
    }
}

fn crash_key(i: u64) -> Pubkey {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    k[8..16].copy_from_slice(&i.to_le_bytes());
    Pubkey::new_from_array(k)
}

/// Slot `s` writes 40 of 500 keys, some large, deletes one, all derived from `s`.
fn crash_slot(s: u64) -> (Vec<(Pubkey, AccountSharedData)>, Vec<u8>) {
    let mut rng = StdRng::seed_from_u64(s);
    let owner = Pubkey::new_from_array([7; 32]);
    let mut batch = BTreeMap::new();
    for _ in 0..40 {
        let k = crash_key(rng.gen_range(0..500));
        let len = if rng.gen_bool(0.05) { 6000 } else { 165 };
        let mut a = AccountSharedData::new(s * 1000 + rng.gen_range(1..999), len, &owner);
        a.data_as_mut_slice().fill(s as u8);
        batch.insert(k, a);
    }
    batch.insert(
        crash_key(rng.gen_range(0..500)),
        AccountSharedData::default(),
    );
    (batch.into_iter().collect(), s.to_le_bytes().repeat(10))
}

/// The state root and lattice checksum of slot `upto` computed apart from any store: the
/// crash slots replayed through a fresh in-memory commitment.
fn replayed_commitment(upto: u64) -> ([u8; 32], [u8; 32]) {
    use storage::commitment::{Commitment, CommitmentConfig};
    let mut c = Commitment::new(CommitmentConfig::default());
    let mut state: BTreeMap<Pubkey, AccountSharedData> = BTreeMap::new();
    for s in 1..=upto {
        let batch = crash_slot(s).0;
        let old = batch.iter().map(|(k, _)| state.get(k).cloned()).collect();
        for (k, a) in &batch {
            if a.lamports() == 0 {
                state.remove(k);
            } else {
                state.insert(*k, a.clone());
            }
        }
        let staged = c.stage(s, &batch, old);
        c.publish(staged);
    }
    let h = c.latest().expect("a slot");
    (h.root, h.lattice_checksum())
}

fn crash_model(upto: u64) -> Model {
    let mut m = Model::new();
    for s in 1..=upto {
        for (k, a) in crash_slot(s).0 {
            if a.lamports() == 0 {
                m.remove(&k);
            } else {
                m.insert(k, (a, s));
            }
        }
    }
    m
}

#[test]
fn survives_kill_9_at_random_points() {
    let iterations: usize = std::env::var("ARRAY_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = StdRng::seed_from_u64(99);
    let keys: Vec<Pubkey> = (0..500).map(crash_key).collect();
    let mut reported_total = 0u64;
    for it in 0..iterations {
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("ARRAY_CRASH_DIR", dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut last = 0u64;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                // The first line also carries the test harness's "test crash_child ... ".
                if let Some(at) = line.rfind("committed ") {
                    last = line[at + "committed ".len()..]
                        .trim()
                        .parse()
                        .expect("slot number");
                }
            }
            last
        });
        std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(20..150)));
        // SIGKILL: no destructor, no flush, wherever the child is.
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        let reported = reader.join().expect("reader");
        let store = ArrayStore::open(config(dir.path(), 2, 8 << 20, 4096))
            .unwrap_or_else(|e| panic!("iteration {it}: reopen failed: {e}"));
        let last = store.last_committed_slot().unwrap_or(0);
        assert!(
            last >= reported,
            "iteration {it}: slot {reported} was reported committed, store has {last}"
        );
        // A child killed before its first commit (a loaded machine) reports nothing: then
        // the store must still be where the previous iteration left it.
        let known = reported.max(reported_total);
        assert!(
            last <= known + 1,
            "iteration {it}: store shows slot {last} beyond {known}+1"
        );
        reported_total = reported_total.max(last);
        check(&store, &crash_model(last), &keys);
        if last > 0 {
            // The recovered root is the last committed slot's, as computed without a crash.
            let h = store.slot_commitment(None).expect("header");
            assert_eq!(h.slot, last);
            assert_eq!(
                (h.root, h.lattice_checksum()),
                replayed_commitment(last),
                "iteration {it}: slot {last}"
            );
            for i in [0u64, 17, 499] {
                let p = store.prove(&crash_key(i), None).expect("proof");
                let st = p.account.as_ref().map(storage::commitment::account_state);
                stateproof::verify(&h.root, &crash_key(i).to_bytes(), st.as_ref(), &p.proof())
                    .expect("proof verifies after recovery");
            }
        }
        let metas = store.recovered().slot_metas;
        assert_eq!(metas.last().map(|m| m.0), (last > 0).then_some(last));
        for (s, m) in metas {
            assert_eq!(m, s.to_le_bytes().repeat(10));
        }
    }
    assert!(
        reported_total > iterations as u64,
        "children made progress ({reported_total} slots)"
    );
}

/// The lamports of the fault tests' account `i`, `None` if absent.
fn lamports(store: &ArrayStore, i: u64) -> Option<u64> {
    store
        .get(&crash_key(i))
        .expect("read")
        .map(|a| a.0.lamports())
}

fn armed(dir: &Path, plan: &Arc<FaultPlan>) -> ArrayConfig {
    let mut cfg = config(dir, 1, 8 << 20, 4096);
    cfg.faults = vec![Some(plan.clone())];
    cfg
}

fn one(slot: u64, lamports: u64) -> Vec<(Pubkey, AccountSharedData)> {
    vec![(
        crash_key(slot % 7),
        AccountSharedData::new(lamports, 165, &Pubkey::new_from_array([1; 32])),
    )]
}

#[test]
fn write_faults_fail_the_commit_and_lose_nothing_committed() {
    for action in [
        FaultAction::Errno(libc::EIO),
        FaultAction::ShortWrite,
        FaultAction::Errno(libc::ENOSPC),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let plan = Arc::new(FaultPlan::default());
        let store = ArrayStore::open(armed(dir.path(), &plan)).expect("open");
        store.commit_slot(1, &one(1, 10), b"a").expect("commit 1");
        plan.arm(Fault {
            op: OpKind::Write,
            skip: 0,
            action,
        });
        let err = store
            .commit_slot(2, &one(2, 20), b"b")
            .expect_err("faulted commit fails");
        match (action, &err) {
            (FaultAction::Errno(libc::ENOSPC), StoreError::NoSpace { slot: 2, .. }) => {}
            (FaultAction::ShortWrite, StoreError::Io { source, .. })
                if source.to_string().contains("short") => {}
            (FaultAction::Errno(libc::EIO), StoreError::Io { path, .. })
                if path.ends_with("dev0") => {}
            _ => panic!("{action:?} gave {err}"),
        }
        assert_eq!(store.last_committed_slot(), Some(1));
        assert_eq!(
            store.get(&crash_key(2)).expect("read"),
            None,
            "failed slot invisible"
        );
        let h = store.slot_commitment(None).expect("slot 1 header");
        assert_eq!(h.slot, 1, "the failed slot has no root");
        let p = store.prove(&crash_key(2), None).expect("absence proof");
        assert!(p.account.is_none());
        stateproof::verify(&h.root, &crash_key(2).to_bytes(), None, &p.proof())
            .expect("the failed slot's account is provably absent");
        store
            .commit_slot(3, &one(3, 30), b"c")
            .expect("next commit works");
        drop(store);
        let store = ArrayStore::open(config(dir.path(), 1, 8 << 20, 4096)).expect("reopen");
        assert_eq!(store.last_committed_slot(), Some(3));
        assert_eq!(lamports(&store, 1), Some(10));
        assert_eq!(store.get(&crash_key(2)).expect("read"), None);
        assert_eq!(lamports(&store, 3), Some(30));
    }
}

#[test]
fn a_failed_flush_poisons_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = Arc::new(FaultPlan::default());
    let store = ArrayStore::open(armed(dir.path(), &plan)).expect("open");
    store.commit_slot(1, &one(1, 10), b"a").expect("commit");
    plan.arm(Fault {
        op: OpKind::Sync,
        skip: 0,
        action: FaultAction::Errno(libc::EIO),
    });
    assert!(matches!(
        store.commit_slot(2, &one(2, 20), b""),
        Err(StoreError::SyncFailed { .. })
    ));
    assert!(matches!(
        store.commit_slot(3, &one(3, 30), b""),
        Err(StoreError::Poisoned)
    ));
    drop(store);
    let store = ArrayStore::open(config(dir.path(), 1, 8 << 20, 4096)).expect("reopen");
    assert_eq!(lamports(&store, 1), Some(10));
}

#[test]
fn read_faults_are_errors_never_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = Arc::new(FaultPlan::default());
    let store = ArrayStore::open(armed(dir.path(), &plan)).expect("open");
    store.commit_slot(1, &one(1, 10), b"a").expect("commit");
    let k = crash_key(1);
    // Every byte of the record's block, flipped in turn: never a wrong account.
    for at in (0..4096).step_by(7) {
        store.drop_cache();
        plan.arm(Fault {
            op: OpKind::Read,
            skip: 0,
            action: FaultAction::FlipBit(at),
        });
        match store.get(&k) {
            Ok(Some((a, 1))) => assert_eq!(a.lamports(), 10, "byte {at}"),
            Ok(other) => panic!("byte {at}: {other:?}"),
            Err(StoreError::Corrupt { path, offset, .. }) => {
                assert!(path.ends_with("dev0"));
                assert!(offset > 0);
            }
            Err(e) => panic!("byte {at}: {e}"),
        }
    }
    store.drop_cache();
    plan.arm(Fault {
        op: OpKind::Read,
        skip: 0,
        action: FaultAction::Errno(libc::EIO),
    });
    assert!(matches!(store.get(&k), Err(StoreError::Io { .. })));
    store.drop_cache();
    // A prefetch that hits a flipped bit caches nothing; the next get reads cleanly.
    plan.arm(Fault {
        op: OpKind::Read,
        skip: 0,
        action: FaultAction::FlipBit(40),
    });
    let _ = store.prefetch(&[k]);
    store.flush_hints();
    assert_eq!(
        store.get(&k).expect("read").map(|a| a.0.lamports()),
        Some(10)
    );
    store.release(&[k]);
}

#[test]
fn on_disk_corruption_fails_open_with_device_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 1, 8 << 20, 4096);
    let store = ArrayStore::open(cfg.clone()).expect("open");
    store.commit_slot(1, &one(1, 10), b"a").expect("commit");
    drop(store);
    let path = dir.path().join("dev0");
    let mut bytes = std::fs::read(&path).expect("read dev");
    // The first record of the first segment lies at the data start (1 MiB).
    bytes[(1 << 20) + 200] ^= 0xff;
    std::fs::write(&path, &bytes).expect("write dev");
    match ArrayStore::open(cfg) {
        Err(StoreError::Corrupt { path, offset, .. }) => {
            assert!(path.ends_with("dev0"));
            assert_eq!(offset, 1 << 20);
        }
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("opened a corrupt store"),
    }
}

#[test]
fn a_full_device_stops_commits_and_keeps_everything_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 1, 2 << 20, 4096);
    let store = ArrayStore::open(cfg.clone()).expect("open");
    let owner = Pubkey::new_unique();
    let mut model = Model::new();
    let mut keys = Vec::new();
    let mut slot = 0;
    let err = loop {
        slot += 1;
        let batch: Vec<_> = (0..20)
            .map(|_| {
                (
                    Pubkey::new_unique(),
                    AccountSharedData::new(slot, 2000, &owner),
                )
            })
            .collect();
        match store.commit_slot(slot, &batch, b"") {
            Ok(()) => {
                for (k, a) in batch {
                    keys.push(k);
                    model.insert(k, (a, slot));
                }
            }
            Err(e) => break e,
        }
        assert!(slot < 10_000, "never filled");
    };
    assert!(
        matches!(err, StoreError::NoSpace { slot: s, .. } if s == slot),
        "{err}"
    );
    assert!(err.to_string().contains("dev0"));
    check(&store, &model, &keys);
    drop(store);
    let store = ArrayStore::open(cfg).expect("reopen full store");
    assert_eq!(store.last_committed_slot(), Some(slot - 1));
    check(&store, &model, &keys);
}

#[test]
fn devices_must_belong_to_this_array() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 2, 4 << 20, 4096);
    ArrayStore::open(cfg.clone())
        .expect("format")
        .commit_slot(1, &one(1, 5), b"")
        .expect("commit");
    let mut swapped = cfg.clone();
    swapped.devices.swap(0, 1);
    let e = ArrayStore::open(swapped)
        .err()
        .expect("swapped devices refused");
    assert!(e.to_string().contains("configured as #0"), "{e}");
    let mut other = cfg.clone();
    other.block_size = 512;
    assert!(ArrayStore::open(other).is_err());
    let foreign = dir.path().join("foreign");
    std::fs::write(&foreign, vec![0xabu8; 4 << 20]).expect("write");
    let mut cfg2 = config(dir.path(), 1, 4 << 20, 4096);
    cfg2.devices[0].path = foreign;
    let e = ArrayStore::open(cfg2).err().expect("foreign data refused");
    assert!(e.to_string().contains("refusing to overwrite"), "{e}");
}

fn smoke(cfg: ArrayConfig) {
    let store = ArrayStore::open(cfg.clone()).expect("open");
    let mut rng = StdRng::seed_from_u64(5);
    let owner = Pubkey::new_unique();
    let mut model = Model::new();
    let keys: Vec<Pubkey> = (0..50).map(|_| Pubkey::new_unique()).collect();
    for slot in 1..=20 {
        let batch: Vec<_> = keys
            .iter()
            .take(rng.gen_range(1..50))
            .map(|k| (*k, account(&mut rng, &owner)))
            .collect();
        store.commit_slot(slot, &batch, b"x").expect("commit");
        for (k, a) in batch {
            model.insert(k, (a, slot));
        }
    }
    drop(store);
    let store = ArrayStore::open(cfg).expect("reopen");
    check(&store, &model, &keys);
}

/// tmpfs refuses O_DIRECT: the store says so in its log and works buffered.
#[test]
fn works_where_o_direct_is_refused() {
    let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
        return;
    };
    smoke(config(dir.path(), 1, 4 << 20, 4096));
}

#[test]
fn works_without_io_uring() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), 2, 4 << 20, 512);
    cfg.io_uring = false;
    smoke(cfg);
}

#[test]
fn works_with_sqpoll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), 1, 4 << 20, 4096);
    cfg.sqpoll_idle_ms = Some(5);
    smoke(cfg.clone());
    // Where the kernel refuses SQPOLL (unprivileged, old kernel) the store says so and uses
    // pread/pwrite; either way the data is right.
    let kind = ArrayStore::open(cfg).expect("open").stats().io_backend;
    assert!(
        kind == "io_uring+sqpoll" || kind == "pread/pwrite",
        "{kind}"
    );
}

/// The block-device path: a loop device over a file, opened with O_DIRECT. Root only (CI
/// runs as root); elsewhere it says it was skipped.
#[test]
fn block_device_through_a_loop_device() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root for losetup");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let backing = dir.path().join("loop.img");
    std::fs::write(&backing, vec![0u8; 16 << 20]).expect("backing file");
    let out = std::process::Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&backing)
        .output();
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        panic!("losetup failed; root should be able to attach a loop device");
    };
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    struct Detach(String);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = std::process::Command::new("losetup")
                .args(["-d", &self.0])
                .status();
        }
    }
    let _guard = Detach(dev.clone());
    let mut cfg = config(dir.path(), 1, 0, 4096);
    cfg.devices[0].path = dev.clone().into();
    smoke(cfg.clone());
    let store = ArrayStore::open(cfg).expect("reopen block device");
    assert!(store.stats().io_backend.starts_with("io_uring"));
}

/// `prefetch` says how many keys need a device read: stored and neither resident nor already
/// being read; a key the store does not hold needs none.
#[test]
fn prefetch_counts_the_cold_reads_it_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ArrayStore::open(config(dir.path(), 1, 8 << 20, 4096)).expect("open");
    let owner = Pubkey::new_unique();
    let stored: Vec<Pubkey> = (0..4).map(|_| Pubkey::new_unique()).collect();
    let batch: Vec<_> = stored
        .iter()
        .map(|k| (*k, AccountSharedData::new(1, 165, &owner)))
        .collect();
    store.commit_slot(1, &batch, b"").expect("commit");
    store.drop_cache();
    let mut keys = stored.clone();
    keys.push(Pubkey::new_unique());
    assert_eq!(store.prefetch(&keys), 4);
    store.flush_hints();
    assert_eq!(store.prefetch(&stored), 0, "resident or being read");
    for k in &stored {
        assert!(store.get(k).expect("read").is_some());
    }
    assert_eq!(store.prefetch(&stored[..1]), 0);
}
