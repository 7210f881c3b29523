//! The history store: segment files of slot records under `DATA_DIR/history`, and the
//! in-memory indexes over them (slot → where its record lies, signature → slot, account →
//! its transactions newest last), all within the retention (`[history]`).
//!
//! One writer (the history tile) appends; any number of readers (the RPC) look up under a
//! read lock and read records from the files with `pread`, outside the lock. A dropped
//! segment's file is unlinked only after it left the index, and a reader holding its handle
//! still reads it, so a read never races a drop. The indexes are rebuilt by reading the
//! segments at open (each record's signatures and keys): they are never written to disk.

use crate::config::HistoryConfig;
use crate::extract;
use crate::segment::{self, HEADER_BYTES, MAX_PAYLOAD_BYTES};
use ahash::HashMap;
use parking_lot::{Mutex, RwLock};
use runtime::chain::{SlotRecord, TxStatus};
use runtime::metrics::RuntimeCounters;
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_transaction_error::TransactionError;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the history record of slot {0} is corrupt")]
    Corrupt(u64),
    #[error("the slot record of slot {0} does not decode")]
    BadRecord(u64),
    #[error(
        "the slot record of slot {slot} is {bytes} bytes, over the {MAX_PAYLOAD_BYTES}-byte frame limit"
    )]
    TooLarge { slot: u64, bytes: usize },
}

/// Where a slot's record lies.
#[derive(Debug, Clone, Copy)]
struct SlotLoc {
    slot: u64,
    seq: u64,
    offset: u64,
    len: u32,
    unix_timestamp: i64,
}

/// One transaction: its slot and position in the slot (execution order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TxRef {
    slot: u64,
    index: u32,
}

struct Segment {
    seq: u64,
    file: Arc<File>,
    bytes: u64,
    last_slot: u64,
}

/// What one record adds to the indexes.
struct Contribution {
    sigs: Vec<u128>,
    /// Each account key of each transaction, with the transaction's position.
    keys: Vec<(Pubkey, u32)>,
}

impl Contribution {
    fn of(rec: &SlotRecord) -> Self {
        let mut sigs = Vec::with_capacity(rec.statuses.len());
        let mut keys = Vec::new();
        for (i, st) in rec.statuses.iter().enumerate() {
            sigs.push(extract::sig_key(&st.signature));
            let tx = extract::transaction(st);
            for k in extract::account_keys(st, tx.as_ref()) {
                keys.push((k, i as u32));
            }
        }
        Self { sigs, keys }
    }
}

#[derive(Default)]
struct Index {
    /// Oldest first; the last one is being appended to.
    segments: VecDeque<Segment>,
    /// Ascending slots.
    slots: VecDeque<SlotLoc>,
    sigs: HashMap<u128, u64>,
    /// Per account, its transactions in ascending (slot, position) order.
    addresses: HashMap<Pubkey, VecDeque<TxRef>>,
    address_entries: u64,
    bytes: u64,
    genesis_hash: Option<Hash>,
}

impl Index {
    fn entries(&self) -> u64 {
        self.sigs.len() as u64 + self.address_entries
    }

    fn add(&mut self, loc: SlotLoc, c: Contribution) {
        for k in c.sigs {
            self.sigs.insert(k, loc.slot);
        }
        for (key, index) in c.keys {
            let q = self.addresses.entry(key).or_default();
            let r = TxRef {
                slot: loc.slot,
                index,
            };
            // A key twice in one transaction (static and loaded) is one entry.
            if q.back() != Some(&r) {
                q.push_back(r);
                self.address_entries += 1;
            }
        }
        self.slots.push_back(loc);
    }

    fn loc(&self, slot: u64) -> Option<SlotLoc> {
        let i = self.slots.binary_search_by_key(&slot, |l| l.slot).ok()?;
        Some(self.slots[i])
    }

    fn file(&self, seq: u64) -> Option<Arc<File>> {
        let i = self.segments.binary_search_by_key(&seq, |s| s.seq).ok()?;
        Some(self.segments[i].file.clone())
    }

    /// Takes the oldest segment out of the indexes, given what its records contributed.
    fn drop_front(&mut self, sigs: &[(u128, u64)], keys: &[Pubkey]) -> Option<Segment> {
        let seg = self.segments.pop_front()?;
        self.bytes -= seg.bytes;
        while self.slots.front().is_some_and(|l| l.seq == seg.seq) {
            self.slots.pop_front();
        }
        for (k, slot) in sigs {
            if self.sigs.get(k) == Some(slot) {
                self.sigs.remove(k);
            }
        }
        for key in keys {
            if let Some(q) = self.addresses.get_mut(key) {
                while q.front().is_some_and(|r| r.slot <= seg.last_slot) {
                    q.pop_front();
                    self.address_entries -= 1;
                }
                if q.is_empty() {
                    self.addresses.remove(key);
                }
            }
        }
        Some(seg)
    }
}

/// The segment being appended to.
struct Writer {
    file: Option<File>,
    seq: u64,
    len: u64,
    first_slot: u64,
    next_seq: u64,
    unsynced: bool,
    last_sync: Instant,
}

/// A stored block: its record and the slot before it in the history.
#[derive(Debug, Clone)]
pub struct Block {
    pub record: SlotRecord,
    /// The previous stored slot (skipped slots between are not blocks), or `slot - 1` when
    /// the history holds none before it.
    pub parent_slot: u64,
}

/// One transaction of an address, as getSignaturesForAddress reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInfo {
    pub signature: Signature,
    pub slot: u64,
    pub err: Option<TransactionError>,
    pub memo: Option<String>,
    pub block_time: i64,
}

/// Counts of the store, for the metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryStats {
    pub bytes: u64,
    pub segments: u64,
    pub records: u64,
    pub index_entries: u64,
    pub first_slot: Option<u64>,
    pub last_slot: Option<u64>,
}

pub struct History {
    dir: PathBuf,
    cfg: HistoryConfig,
    index: RwLock<Index>,
    writer: Mutex<Writer>,
    counters: Option<&'static RuntimeCounters>,
}

impl History {
    /// Opens (or creates) the history in `dir`: every segment is scanned, a torn or corrupt
    /// tail cut (counted), the indexes rebuilt, the retention applied.
    pub fn open(
        dir: &Path,
        cfg: HistoryConfig,
        counters: Option<&'static RuntimeCounters>,
    ) -> Result<Self, HistoryError> {
        std::fs::create_dir_all(dir)?;
        let started = Instant::now();
        let mut index = Index::default();
        let mut next_seq = 0;
        let mut torn = 0u64;
        for seq in segment::list(dir)? {
            next_seq = seq + 1;
            let path = segment::path(dir, seq);
            let bytes = std::fs::read(&path)?;
            let (found, valid) = segment::scan(&bytes);
            if valid < bytes.len() {
                tracing::warn!(
                    segment = %path.display(),
                    cut_bytes = bytes.len() - valid,
                    "history segment has a torn or corrupt tail: cut at the last valid record"
                );
                torn += (bytes.len() - valid) as u64;
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(valid as u64)?;
            }
            let Some(last) = found.last() else {
                std::fs::remove_file(&path)?;
                continue;
            };
            index.segments.push_back(Segment {
                seq,
                file: Arc::new(File::open(&path)?),
                bytes: valid as u64,
                last_slot: last.slot,
            });
            index.bytes += valid as u64;
            for f in found {
                let from = f.offset as usize + HEADER_BYTES;
                let payload = &bytes[from..f.offset as usize + f.len as usize];
                // Slots only go up; a record out of order (or of another version) is not
                // served.
                let newer = index.slots.back().is_none_or(|l| l.slot < f.slot);
                let Some(rec) = SlotRecord::decode(payload).filter(|_| newer) else {
                    tracing::warn!(slot = f.slot, "history record skipped at open");
                    continue;
                };
                index.genesis_hash = Some(rec.genesis_hash);
                let loc = SlotLoc {
                    slot: f.slot,
                    seq,
                    offset: f.offset,
                    len: f.len,
                    unix_timestamp: rec.header.unix_timestamp,
                };
                index.add(loc, Contribution::of(&rec));
            }
        }
        if let Some(c) = counters {
            c.history_torn_bytes.fetch_add(torn, Ordering::Relaxed);
        }
        let h = Self {
            dir: dir.to_path_buf(),
            cfg,
            index: RwLock::new(index),
            writer: Mutex::new(Writer {
                file: None,
                seq: 0,
                len: 0,
                first_slot: 0,
                next_seq,
                unsynced: false,
                last_sync: Instant::now(),
            }),
            counters,
        };
        h.enforce_retention()?;
        h.publish();
        let s = h.stats();
        tracing::info!(
            dir = %dir.display(),
            first_slot = ?s.first_slot,
            last_slot = ?s.last_slot,
            records = s.records,
            bytes = s.bytes,
            segments = s.segments,
            index_entries = s.index_entries,
            ms = started.elapsed().as_millis() as u64,
            "history opened"
        );
        Ok(h)
    }

    pub fn config(&self) -> &HistoryConfig {
        &self.cfg
    }

    pub fn stats(&self) -> HistoryStats {
        let ix = self.index.read();
        HistoryStats {
            bytes: ix.bytes,
            segments: ix.segments.len() as u64,
            records: ix.slots.len() as u64,
            index_entries: ix.entries(),
            first_slot: ix.slots.front().map(|l| l.slot),
            last_slot: ix.slots.back().map(|l| l.slot),
        }
    }

    pub fn first_slot(&self) -> Option<u64> {
        self.index.read().slots.front().map(|l| l.slot)
    }

    pub fn last_slot(&self) -> Option<u64> {
        self.index.read().slots.back().map(|l| l.slot)
    }

    /// Appends `slot`'s record (a `SlotRecord`'s bytes, as the commit tile made durable).
    /// `Ok(false)`: the history already holds this slot or a later one (a catch-up repeat).
    /// A record of another chain (the accounts store was started afresh beside an old
    /// history) first clears the old history.
    pub fn append(&self, slot: u64, meta: &[u8]) -> Result<bool, HistoryError> {
        let mut w = self.writer.lock();
        if meta.len() > MAX_PAYLOAD_BYTES {
            return Err(HistoryError::TooLarge {
                slot,
                bytes: meta.len(),
            });
        }
        let rec = SlotRecord::decode(meta).ok_or(HistoryError::BadRecord(slot))?;
        let other_chain = self
            .index
            .read()
            .genesis_hash
            .is_some_and(|g| g != rec.genesis_hash);
        if other_chain {
            tracing::warn!(
                "history holds another chain (genesis differs): clearing it before slot {slot}"
            );
            self.clear(&mut w)?;
        }
        if self.last_slot().is_some_and(|last| slot <= last) {
            return Ok(false);
        }
        let contribution = Contribution::of(&rec);
        if w.file.is_none()
            || w.len >= self.cfg.segment_bytes
            || slot.saturating_sub(w.first_slot) >= self.cfg.segment_slots()
        {
            self.roll(&mut w, slot)?;
        }
        let frame = segment::frame(slot, meta);
        // At an explicit offset: a failed write is retried over its own partial bytes.
        w.file
            .as_ref()
            .expect("rolled")
            .write_all_at(&frame, w.len)?;
        let loc = SlotLoc {
            slot,
            seq: w.seq,
            offset: w.len,
            len: frame.len() as u32,
            unix_timestamp: rec.header.unix_timestamp,
        };
        w.len += frame.len() as u64;
        w.unsynced = true;
        {
            let mut ix = self.index.write();
            ix.genesis_hash = Some(rec.genesis_hash);
            ix.bytes += frame.len() as u64;
            let seg = ix.segments.back_mut().expect("rolled");
            seg.bytes += frame.len() as u64;
            seg.last_slot = slot;
            ix.add(loc, contribution);
        }
        if let Some(c) = self.counters {
            c.history_slots_appended.fetch_add(1, Ordering::Relaxed);
        }
        drop(w);
        self.enforce_retention()?;
        self.publish();
        Ok(true)
    }

    /// Syncs appended records to the device if the interval has passed since the last sync.
    pub fn sync_if_due(&self) -> Result<(), HistoryError> {
        let due = {
            let w = self.writer.lock();
            w.unsynced && w.last_sync.elapsed() >= Duration::from_millis(self.cfg.sync_interval_ms)
        };
        if due { self.sync() } else { Ok(()) }
    }

    /// Syncs appended records to the device now.
    pub fn sync(&self) -> Result<(), HistoryError> {
        let mut w = self.writer.lock();
        if let Some(f) = &w.file
            && w.unsynced
        {
            f.sync_data()?;
            if let Some(c) = self.counters {
                c.history_syncs.fetch_add(1, Ordering::Relaxed);
            }
        }
        w.unsynced = false;
        w.last_sync = Instant::now();
        Ok(())
    }

    /// Closes the active segment (synced) and begins segment `next_seq` at `slot`.
    fn roll(&self, w: &mut Writer, slot: u64) -> Result<(), HistoryError> {
        if let Some(f) = w.file.take() {
            f.sync_data()?;
            w.unsynced = false;
        }
        let seq = w.next_seq;
        let path = segment::path(&self.dir, seq);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        // The new file's name is durable before any record in it is counted on.
        File::open(&self.dir)?.sync_all()?;
        self.index.write().segments.push_back(Segment {
            seq,
            file: Arc::new(file.try_clone()?),
            bytes: 0,
            last_slot: slot,
        });
        *w = Writer {
            file: Some(file),
            seq,
            len: 0,
            first_slot: slot,
            next_seq: seq + 1,
            unsynced: false,
            last_sync: w.last_sync,
        };
        Ok(())
    }

    /// Drops every segment (another chain's history).
    fn clear(&self, w: &mut Writer) -> Result<(), HistoryError> {
        w.file = None;
        let old = std::mem::take(&mut *self.index.write());
        for seg in old.segments {
            remove(&segment::path(&self.dir, seg.seq))?;
        }
        Ok(())
    }

    /// Drops the oldest whole segments while the retention is exceeded (slots, bytes or
    /// index entries); the segment being appended to stays.
    fn enforce_retention(&self) -> Result<(), HistoryError> {
        loop {
            let (seq, file, bytes) = {
                let ix = self.index.read();
                if ix.segments.len() <= 1 {
                    return Ok(());
                }
                let newest = ix.slots.back().map_or(0, |l| l.slot);
                let oldest = &ix.segments[0];
                let over_slots =
                    newest.saturating_sub(oldest.last_slot) >= self.cfg.retention_slots;
                let over_bytes = ix.bytes > self.cfg.retention_bytes;
                let over_entries = ix.entries() > self.cfg.max_index_entries;
                if !(over_slots || over_bytes || over_entries) {
                    return Ok(());
                }
                (oldest.seq, oldest.file.clone(), oldest.bytes)
            };
            // What the segment's records put in the indexes, read back outside the lock.
            let mut buf = vec![0u8; bytes as usize];
            file.read_exact_at(&mut buf, 0)?;
            let (found, _) = segment::scan(&buf);
            let mut sigs = Vec::new();
            let mut keys = Vec::new();
            for f in found {
                let payload =
                    &buf[f.offset as usize + HEADER_BYTES..f.offset as usize + f.len as usize];
                if let Some(rec) = SlotRecord::decode(payload) {
                    let c = Contribution::of(&rec);
                    sigs.extend(c.sigs.into_iter().map(|k| (k, f.slot)));
                    keys.extend(c.keys.into_iter().map(|(k, _)| k));
                }
            }
            keys.sort_unstable();
            keys.dedup();
            self.index.write().drop_front(&sigs, &keys);
            remove(&segment::path(&self.dir, seq))?;
            if let Some(c) = self.counters {
                c.history_segments_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn publish(&self) {
        let Some(c) = self.counters else { return };
        let s = self.stats();
        c.history_bytes.store(s.bytes, Ordering::Relaxed);
        c.history_segments.store(s.segments, Ordering::Relaxed);
        c.history_records.store(s.records, Ordering::Relaxed);
        c.history_index_entries
            .store(s.index_entries, Ordering::Relaxed);
    }

    fn read(&self, loc: SlotLoc) -> Result<SlotRecord, HistoryError> {
        let file = self
            .index
            .read()
            .file(loc.seq)
            .ok_or(HistoryError::Corrupt(loc.slot))?;
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.offset)?;
        let (slot, payload) = segment::unframe(&buf).ok_or(HistoryError::Corrupt(loc.slot))?;
        if slot != loc.slot {
            return Err(HistoryError::Corrupt(loc.slot));
        }
        SlotRecord::decode(payload).ok_or(HistoryError::BadRecord(slot))
    }

    /// The stored block of `slot`, if the history holds it.
    pub fn block(&self, slot: u64) -> Result<Option<Block>, HistoryError> {
        let (loc, parent) = {
            let ix = self.index.read();
            let Ok(i) = ix.slots.binary_search_by_key(&slot, |l| l.slot) else {
                return Ok(None);
            };
            let parent = match i {
                0 => slot.saturating_sub(1),
                _ => ix.slots[i - 1].slot,
            };
            (ix.slots[i], parent)
        };
        Ok(Some(Block {
            record: self.read(loc)?,
            parent_slot: parent,
        }))
    }

    /// The block time of a stored slot (from memory: no read).
    pub fn block_time(&self, slot: u64) -> Option<i64> {
        self.index.read().loc(slot).map(|l| l.unix_timestamp)
    }

    /// Stored slots from `start` to `end` (inclusive), at most `limit`, ascending.
    pub fn slots(&self, start: u64, end: u64, limit: usize) -> Vec<u64> {
        let ix = self.index.read();
        let from = ix.slots.partition_point(|l| l.slot < start);
        ix.slots
            .range(from..)
            .map(|l| l.slot)
            .take_while(|s| *s <= end)
            .take(limit)
            .collect()
    }

    /// Slot and position of a stored transaction.
    fn position(&self, sig: &Signature) -> Result<Option<(TxRef, SlotRecord)>, HistoryError> {
        let loc = {
            let ix = self.index.read();
            let Some(slot) = ix.sigs.get(&extract::sig_key(sig)).copied() else {
                return Ok(None);
            };
            match ix.loc(slot) {
                Some(l) => l,
                None => return Ok(None),
            }
        };
        let rec = self.read(loc)?;
        Ok(rec
            .statuses
            .iter()
            .position(|s| s.signature == *sig)
            .map(|i| {
                (
                    TxRef {
                        slot: loc.slot,
                        index: i as u32,
                    },
                    rec,
                )
            }))
    }

    /// A stored transaction's status and its block time.
    pub fn transaction(&self, sig: &Signature) -> Result<Option<(TxStatus, i64)>, HistoryError> {
        Ok(self.position(sig)?.map(|(r, mut rec)| {
            let t = rec.header.unix_timestamp;
            (rec.statuses.swap_remove(r.index as usize), t)
        }))
    }

    /// `address`'s transactions newest first, at slots up to `highest_slot`, older than
    /// `before` (none if the history does not hold `before`, as Agave answers) and newer than
    /// `until` (as far back as the history goes if it does not hold `until`), at most
    /// `limit`.
    pub fn signatures_for_address(
        &self,
        address: &Pubkey,
        before: Option<&Signature>,
        until: Option<&Signature>,
        limit: usize,
        highest_slot: u64,
    ) -> Result<Vec<SignatureInfo>, HistoryError> {
        let mut hi = TxRef {
            slot: highest_slot.saturating_add(1),
            index: 0,
        };
        if let Some(b) = before {
            match self.position(b)? {
                Some((r, _)) => hi = hi.min(r),
                None => return Ok(Vec::new()),
            }
        }
        let lo = match until {
            Some(u) => self.position(u)?.map(|(r, _)| r),
            None => None,
        };
        let refs: Vec<TxRef> = {
            let ix = self.index.read();
            let Some(q) = ix.addresses.get(address) else {
                return Ok(Vec::new());
            };
            let end = q.partition_point(|r| *r < hi);
            let start = lo.map_or(0, |lo| q.partition_point(|r| *r <= lo));
            q.range(start..end.max(start))
                .rev()
                .take(limit)
                .copied()
                .collect()
        };
        let mut out = Vec::with_capacity(refs.len());
        let mut cached: Option<SlotRecord> = None;
        for r in refs {
            if cached.as_ref().is_none_or(|c| c.header.slot != r.slot) {
                let Some(loc) = self.index.read().loc(r.slot) else {
                    // Dropped by the retention since: what is left is older still.
                    break;
                };
                cached = Some(self.read(loc)?);
            }
            let rec = cached.as_ref().expect("read above");
            let Some(st) = rec.statuses.get(r.index as usize) else {
                return Err(HistoryError::Corrupt(r.slot));
            };
            out.push(SignatureInfo {
                signature: st.signature,
                slot: r.slot,
                err: st.err.clone(),
                memo: extract::transaction(st).as_ref().and_then(extract::memo),
                block_time: rec.header.unix_timestamp,
            });
        }
        Ok(out)
    }
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
