//! The store against its promises: what is appended reads back (blocks, transactions,
//! address signatures newest first with before/until/limit), survives a reopen, stays within
//! the retention by slots and by bytes, and a torn tail is cut at open.

use crate::config::HistoryConfig;
use crate::store::History;
use runtime::chain::{SlotHeader, SlotRecord, TxStatus};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;
use std::path::Path;

fn cfg() -> HistoryConfig {
    HistoryConfig {
        retention_slots: 1_000_000,
        retention_bytes: 1 << 30,
        segment_bytes: 64 << 10,
        ..HistoryConfig::default()
    }
}

/// A signed transfer `from` → `to`, with an optional memo instruction, as a status of `slot`.
fn status(
    slot: u64,
    from: &Keypair,
    to: &Pubkey,
    memo: Option<&str>,
    log_bytes: usize,
) -> TxStatus {
    let mut ixs = vec![solana_system_interface::instruction::transfer(
        &from.pubkey(),
        to,
        slot + 1,
    )];
    if let Some(m) = memo {
        ixs.push(solana_instruction::Instruction::new_with_bytes(
            Pubkey::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
            m.as_bytes(),
            vec![],
        ));
    }
    let tx = solana_transaction::Transaction::new(
        &[from],
        solana_message::Message::new(&ixs, Some(&from.pubkey())),
        Hash::new_from_array([slot as u8; 32]),
    );
    TxStatus {
        signature: tx.signatures[0],
        slot,
        err: None,
        fee: 5000,
        compute_units: 150,
        logs: vec!["x".repeat(log_bytes)],
        pre_balances: vec![10, 0, 1],
        post_balances: vec![5, 5, 1],
        pre_token_balances: vec![],
        post_token_balances: vec![],
        loaded_writable: vec![],
        loaded_readonly: vec![],
        transaction: bincode::serialize(&tx).unwrap(),
        inner_instructions: vec![],
        return_data: None,
    }
}

fn record(slot: u64, genesis: Hash, statuses: Vec<TxStatus>) -> SlotRecord {
    SlotRecord {
        header: SlotHeader {
            slot,
            parent_blockhash: Hash::new_from_array([slot.wrapping_sub(1) as u8; 32]),
            blockhash: Hash::new_from_array([slot as u8; 32]),
            transaction_count: statuses.len() as u64,
            unix_timestamp: 1_700_000_000 + slot as i64,
        },
        genesis_hash: genesis,
        statuses,
    }
}

const GENESIS: Hash = Hash::new_from_array([7; 32]);

/// Slots 1..=n, each with one transfer from `from` to `to` (slot 5 has a memo).
fn fill(
    h: &History,
    from: &Keypair,
    to: &Pubkey,
    slots: std::ops::RangeInclusive<u64>,
) -> Vec<Signature> {
    let mut sigs = Vec::new();
    for slot in slots {
        let memo = (slot == 5).then_some("hello");
        let st = status(slot, from, to, memo, 10);
        sigs.push(st.signature);
        assert!(
            h.append(slot, &record(slot, GENESIS, vec![st]).encode())
                .unwrap()
        );
    }
    sigs
}

fn check_reads(h: &History, from: &Keypair, to: &Pubkey, sigs: &[Signature]) {
    let b = h.block(7).unwrap().expect("slot 7");
    assert_eq!(b.record.header.slot, 7);
    assert_eq!(b.parent_slot, 6);
    assert_eq!(b.record.statuses[0].signature, sigs[6]);
    assert_eq!(h.block_time(7), Some(1_700_000_007));
    assert!(h.block(10_000).unwrap().is_none());
    let (st, t) = h.transaction(&sigs[2]).unwrap().expect("stored");
    assert_eq!((st.slot, t), (3, 1_700_000_003));
    assert!(h.transaction(&Signature::from([9; 64])).unwrap().is_none());
    assert_eq!(h.slots(3, 6, 100), vec![3, 4, 5, 6]);
    assert_eq!(h.slots(3, 100, 2), vec![3, 4]);

    // Both ends of the transfer, and the system program, see every transaction.
    for key in [from.pubkey(), *to, Pubkey::default()] {
        let all = h
            .signatures_for_address(&key, None, None, 1000, u64::MAX)
            .unwrap();
        assert_eq!(all.len(), sigs.len(), "{key}");
        assert_eq!(all[0].signature, *sigs.last().unwrap(), "newest first");
    }
    let all = h
        .signatures_for_address(to, None, None, 1000, u64::MAX)
        .unwrap();
    let m = all.iter().find(|i| i.slot == 5).unwrap();
    assert_eq!(m.memo.as_deref(), Some("[5] hello"));
    assert_eq!(all.iter().filter(|i| i.memo.is_some()).count(), 1);
    // before: older than slot 8's; until: newer than slot 3's; limit.
    let page = h
        .signatures_for_address(to, Some(&sigs[7]), Some(&sigs[2]), 1000, u64::MAX)
        .unwrap();
    assert_eq!(
        page.iter().map(|i| i.slot).collect::<Vec<_>>(),
        [7, 6, 5, 4]
    );
    let page = h
        .signatures_for_address(to, Some(&sigs[7]), None, 2, u64::MAX)
        .unwrap();
    assert_eq!(page.iter().map(|i| i.slot).collect::<Vec<_>>(), [7, 6]);
    // Up to the highest slot asked for; an unknown `before` finds nothing (as Agave), an
    // unknown `until` searches to the oldest.
    let page = h.signatures_for_address(to, None, None, 1000, 4).unwrap();
    assert_eq!(page[0].slot, 4);
    let unknown = Signature::from([3; 64]);
    assert!(
        h.signatures_for_address(to, Some(&unknown), None, 10, u64::MAX)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        h.signatures_for_address(to, None, Some(&unknown), 1000, u64::MAX)
            .unwrap()
            .len(),
        sigs.len()
    );
    assert!(
        h.signatures_for_address(&Pubkey::new_unique(), None, None, 10, u64::MAX)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn appended_slots_read_back_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (Keypair::new(), Pubkey::new_unique());
    let h = History::open(dir.path(), cfg(), None).unwrap();
    let sigs = fill(&h, &from, &to, 1..=12);
    check_reads(&h, &from, &to, &sigs);
    // A repeat (catch-up) is skipped.
    assert!(!h.append(12, &record(12, GENESIS, vec![]).encode()).unwrap());
    assert!(h.append(13, b"not a record").is_err());
    h.sync().unwrap();
    let before = h.stats();
    drop(h);

    let h = History::open(dir.path(), cfg(), None).unwrap();
    assert_eq!(h.stats(), before);
    check_reads(&h, &from, &to, &sigs);
    // Appends go on after the reopen, into a new segment.
    fill(&h, &from, &to, 13..=13);
    assert_eq!(h.last_slot(), Some(13));
    assert_eq!(h.stats().segments, before.segments + 1);
}

#[test]
fn retention_by_slots_drops_whole_oldest_segments() {
    let dir = tempfile::tempdir().unwrap();
    let c = HistoryConfig {
        retention_slots: 32,
        ..cfg()
    };
    // 32 / 16: a segment spans 2 slots.
    assert_eq!(c.segment_slots(), 2);
    let (from, to) = (Keypair::new(), Pubkey::new_unique());
    let h = History::open(dir.path(), c, None).unwrap();
    let sigs = fill(&h, &from, &to, 1..=200);
    let s = h.stats();
    let first = s.first_slot.unwrap();
    assert!((200 - 34..=200 - 31).contains(&first), "first slot {first}");
    assert_eq!(s.records, 200 - first + 1);
    // Dropped slots are gone from every index; kept ones answer.
    assert!(h.block(first - 1).unwrap().is_none());
    assert!(h.transaction(&sigs[0]).unwrap().is_none());
    assert!(h.transaction(&sigs[199]).unwrap().is_some());
    let all = h
        .signatures_for_address(&to, None, None, 1000, u64::MAX)
        .unwrap();
    assert_eq!(all.len() as u64, s.records);
    // One signature and three (account, transaction) entries per kept transaction.
    assert_eq!(s.index_entries, 4 * s.records);
    assert_eq!(
        crate::segment::list(dir.path()).unwrap().len() as u64,
        s.segments
    );
}

#[test]
fn retention_by_bytes_keeps_the_newest_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let c = HistoryConfig {
        retention_bytes: 256 << 10,
        ..cfg()
    };
    let (from, to) = (Keypair::new(), Pubkey::new_unique());
    let h = History::open(dir.path(), c, None).unwrap();
    for slot in 1..=200u64 {
        let st = status(slot, &from, &to, None, 10_000);
        h.append(slot, &record(slot, GENESIS, vec![st]).encode())
            .unwrap();
        let s = h.stats();
        assert!(s.bytes <= 256 << 10, "slot {slot}: {} bytes", s.bytes);
    }
    let s = h.stats();
    assert!(s.bytes > 128 << 10, "{}", s.bytes);
    assert_eq!(s.last_slot, Some(200));
    assert!(s.first_slot.unwrap() > 150);
    let on_disk: u64 = crate::segment::list(dir.path())
        .unwrap()
        .iter()
        .map(|q| {
            std::fs::metadata(crate::segment::path(dir.path(), *q))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(on_disk, s.bytes);
}

#[test]
fn index_entries_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let c = HistoryConfig {
        max_index_entries: 400,
        ..cfg()
    };
    let (from, to) = (Keypair::new(), Pubkey::new_unique());
    let h = History::open(dir.path(), c, None).unwrap();
    for slot in 1..=300u64 {
        let st = status(slot, &from, &to, None, 400);
        h.append(slot, &record(slot, GENESIS, vec![st]).encode())
            .unwrap();
    }
    let s = h.stats();
    // Only whole segments go: at most the limit plus the active segment's entries.
    assert!(s.index_entries <= 400 + 4 * 150, "{s:?}");
    assert!(s.first_slot.unwrap() > 1);
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    let seqs = crate::segment::list(dir).unwrap();
    crate::segment::path(dir, *seqs.last().unwrap())
}

#[test]
fn a_torn_tail_is_cut_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (Keypair::new(), Pubkey::new_unique());
    let h = History::open(dir.path(), cfg(), None).unwrap();
    let sigs = fill(&h, &from, &to, 1..=10);
    drop(h);
    // The last record half written.
    let path = last_segment(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 20)
        .unwrap();
    let h = History::open(dir.path(), cfg(), None).unwrap();
    assert_eq!(h.last_slot(), Some(9));
    assert!(h.transaction(&sigs[9]).unwrap().is_none());
    assert!(h.transaction(&sigs[8]).unwrap().is_some());
    // The lost slot comes back by catch-up, after the cut.
    fill(&h, &from, &to, 10..=10);
    drop(h);

    // Garbage after the last record (a write that never completed its header).
    let path = last_segment(dir.path());
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0xff; 7])
        .unwrap();
    let h = History::open(dir.path(), cfg(), None).unwrap();
    assert_eq!(h.last_slot(), Some(10));
    check_reads(&h, &from, &to, &h_sigs(&h, &sigs));
}

/// The signatures the history holds (slots 1..=10, slot 10's rewritten).
fn h_sigs(h: &History, old: &[Signature]) -> Vec<Signature> {
    let mut s = old.to_vec();
    s[9] = h.block(10).unwrap().unwrap().record.statuses[0].signature;
    s
}

#[test]
fn another_chain_clears_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (Keypair::new(), Pubkey::new_unique());
    let h = History::open(dir.path(), cfg(), None).unwrap();
    fill(&h, &from, &to, 1..=10);
    drop(h);
    let h = History::open(dir.path(), cfg(), None).unwrap();
    // A new store's genesis: slot 0 of another chain.
    assert!(
        h.append(
            0,
            &record(0, Hash::new_from_array([8; 32]), vec![]).encode()
        )
        .is_ok()
    );
    assert_eq!(h.first_slot(), Some(0));
    assert_eq!(h.stats().records, 1);
}

/// Figures, not a check (`cargo test --release -p history -- --ignored --nocapture`):
/// appending 1,000 slots of 100 transfers each, and reopening (the index rebuild).
#[test]
#[ignore]
fn append_and_reopen_rates() {
    let dir = tempfile::tempdir().unwrap();
    let c = HistoryConfig {
        segment_bytes: 64 << 20,
        ..cfg()
    };
    let payers: Vec<Keypair> = (0..100).map(|_| Keypair::new()).collect();
    let to = Pubkey::new_unique();
    let records: Vec<Vec<u8>> = (1..=1000u64)
        .map(|slot| {
            let sts = payers
                .iter()
                .map(|p| status(slot, p, &to, None, 60))
                .collect();
            record(slot, GENESIS, sts).encode()
        })
        .collect();
    let h = History::open(dir.path(), c.clone(), None).unwrap();
    let t = std::time::Instant::now();
    for (i, r) in records.iter().enumerate() {
        h.append(i as u64 + 1, r).unwrap();
    }
    h.sync().unwrap();
    let append = t.elapsed();
    let s = h.stats();
    drop(h);
    let t = std::time::Instant::now();
    let h = History::open(dir.path(), c, None).unwrap();
    let reopen = t.elapsed();
    assert_eq!(h.stats(), s);
    eprintln!(
        "100,000 transactions, {} bytes ({} per transaction), {} index entries: append {:.0} tx/s, reopen {:.0} tx/s ({:?})",
        s.bytes,
        s.bytes / 100_000,
        s.index_entries,
        100_000.0 / append.as_secs_f64(),
        100_000.0 / reopen.as_secs_f64(),
        reopen
    );
}
