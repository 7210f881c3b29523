//! Error semantics of the array store that need its insides: a read error is never "absent"
//! (counted, retried where compaction moved the record), and a failed commit on a full device
//! still collects compaction so a later commit can reclaim space.

use super::fault::{Fault, FaultAction, FaultPlan};
use super::*;
use crate::array::device::OpKind;
use solana_account::ReadableAccount;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

fn store(dir: &std::path::Path, plan: &Arc<FaultPlan>) -> ArrayStore {
    let mut cfg = ArrayConfig::single_file(dir, 8 << 20);
    cfg.segment_bytes = 256 << 10;
    cfg.chunk_bytes = 64 << 10;
    cfg.cache_bytes = 256 << 10;
    cfg.read_buffers = 64;
    cfg.write_buffers = 16;
    cfg.ring_entries = 32;
    cfg.direct_io = false;
    cfg.faults = vec![Some(plan.clone())];
    ArrayStore::open(cfg).unwrap()
}

fn acct(lamports: u64, data: usize) -> AccountSharedData {
    AccountSharedData::new(lamports, data, &Pubkey::new_from_array([3; 32]))
}

#[test]
fn eio_and_flipped_bits_are_counted_errors_never_absent() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(FaultPlan::default());
    let s = store(dir.path(), &plan);
    let key = Pubkey::new_unique();
    s.commit_slot(1, &[(key, acct(1_000, 0))], b"").unwrap();
    for action in [FaultAction::Errno(libc::EIO), FaultAction::FlipBit(20)] {
        s.drop_cache();
        let before = s.stats().read_errors;
        plan.arm(Fault {
            op: OpKind::Read,
            skip: 0,
            action,
        });
        assert!(s.get(&key).is_err(), "{action:?} must be an error");
        assert_eq!(s.stats().read_errors, before + 1, "{action:?} counted");
    }
    let (a, slot) = s.get(&key).unwrap().expect("the account is intact");
    assert_eq!((a.lamports(), slot), (1_000, 1));
}

#[test]
fn a_read_racing_compaction_into_a_reused_segment_retries_at_the_new_place() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(FaultPlan::default());
    let s = store(dir.path(), &plan);
    let key = Pubkey::new_unique();
    s.commit_slot(1, &[(key, acct(500, 100))], b"").unwrap();
    let stale = s.shared.index.get(&key.to_bytes()).unwrap();
    s.commit_slot(2, &[(key, acct(700, 100))], b"").unwrap();
    assert_ne!(s.shared.index.get(&key.to_bytes()), Some(stale));
    // The old place was freed and reused: other bytes lie there now.
    let dev = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("accounts-0.dev"))
        .unwrap();
    dev.write_all_at(&[0x5a; 512], stale.offset).unwrap();
    dev.sync_all().unwrap();
    s.drop_cache();
    let (a, slot) = s
        .shared
        .read_account_from(&key, Some(stale))
        .expect("retried where the index points now")
        .expect("present");
    assert_eq!((a.lamports(), slot), (700, 2));
    assert_eq!(s.stats().read_retries, 1);
    assert_eq!(s.stats().read_errors, 0);
}

#[test]
fn a_failed_commit_on_a_full_device_still_collects_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(FaultPlan::default());
    let s = store(dir.path(), &plan);
    let keys: Vec<Pubkey> = (0..3).map(|_| Pubkey::new_unique()).collect();
    let rewrite = |slot: u64| -> Vec<(Pubkey, AccountSharedData)> {
        keys.iter().map(|k| (*k, acct(slot, 60_000))).collect()
    };
    // Rewrite the same accounts until the store asks for a compaction victim.
    let mut slot = 0;
    while !s.writer.lock().compacting {
        slot += 1;
        s.commit_slot(slot, &rewrite(slot), b"").unwrap();
        assert!(slot < 100, "compaction never started");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.evacuator.results.is_empty() {
        assert!(std::time::Instant::now() < deadline, "victim never read");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // The device is full: the commit fails.
    plan.arm(Fault {
        op: OpKind::Write,
        skip: 0,
        action: FaultAction::Errno(libc::ENOSPC),
    });
    slot += 1;
    assert!(matches!(
        s.commit_slot(slot, &rewrite(slot), b""),
        Err(StoreError::NoSpace { .. })
    ));
    {
        let w = s.writer.lock();
        assert!(
            w.evacuated.is_some() && !w.compacting,
            "the victim read was collected by the failed commit"
        );
    }
    // Space exists again: the next commit frees the victim.
    slot += 1;
    s.commit_slot(slot, &rewrite(slot), b"").unwrap();
    assert_eq!(s.stats().compactions, 1);
    for k in &keys {
        assert_eq!(s.get(k).unwrap().unwrap().0.lamports(), slot);
    }
}
