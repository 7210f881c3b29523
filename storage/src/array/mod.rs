//! The device-array accounts store: block-aligned records written log-structured through
//! io_uring with O_DIRECT over N devices, a compact in-memory index, a sequencer-driven
//! account cache, atomic slot commits through a checksummed superblock pair, and background
//! compaction. storage/README.md states the invariants.

mod appender;
mod cache;
mod commit;
mod compaction;
mod config;
pub mod device;
mod evacuate;
pub mod fault;
mod index;
mod io_thread;
pub mod iomem;
pub mod layout;
mod placement;
pub mod powercut;
mod prefetch;
pub mod publish;
mod scan;
mod superblock_io;

#[cfg(test)]
mod error_tests;

use crate::commitment::{AccountProof, Commitment, ProofQueryError, SlotCommitment};
use crate::{AccountState, ReadStats, Recovered, StateCommitment, StoreError, StoreStats};
use cache::{Cache, Lookup};
use device::IoOp;
use fault::FaultyDevice;
use index::{Index, Loc};
use io_thread::IoThread;
use iomem::IoMemory;
use layout::{Label, Probe, RecordHeader, SegmentState, Superblock, align_up};
use parking_lot::{Mutex, RwLock};
use placement::Placement;
use solana_account::AccountSharedData;
use solana_pubkey::Pubkey;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use compaction::{Evacuation, Space};
pub use config::{ArrayConfig, ArrayStats, DeviceSpec};
pub use io_thread::DeviceCounters;
pub use prefetch::HINT_QUEUE as PREFETCH_QUEUE_DEPTH;
use superblock_io::{format_label, read_superblock, segments_on, write_labels, write_superblock};

struct Device {
    path: String,
    /// Reads: gets, prefetches, scans.
    io: IoThread,
    /// Writes and syncs of slot commits, on the committing thread.
    writer: Mutex<Box<dyn device::DeviceIo>>,
    counters: Arc<DeviceCounters>,
    n_segments: u32,
}

struct Writer {
    sb: Superblock,
    space: Space,
    placement: Placement,
    metas: VecDeque<(u64, Loc)>,
    evacuated: Option<Evacuation>,
    compacting: bool,
    scratch: Vec<u8>,
}

struct Shared {
    cfg: ArrayConfig,
    devices: Vec<Device>,
    mem: Arc<IoMemory>,
    index: Index,
    cache: Cache,
    label: Label,
    gets: AtomicU64,
    cold_reads: AtomicU64,
    /// Account reads that failed (I/O, checksum, decode): errors, never "absent".
    read_errors: AtomicU64,
    /// Account reads retried because the index moved while they were out (compaction).
    read_retries: AtomicU64,
    compactions: AtomicU64,
    relocated: AtomicU64,
    live_bytes: AtomicU64,
    used_bytes: AtomicU64,
    hints_dropped: AtomicU64,
    commitment_ns: AtomicU64,
    /// The gc-compact tile's slot (published with the store's counters).
    compact_tile: Arc<telemetry::TileStats>,
}

pub struct ArrayStore {
    // Dropped first: its thread holds a reference to `shared`.
    prefetcher: prefetch::Prefetcher,
    shared: Arc<Shared>,
    /// Taken for writing by a whole slot commit, so a proof never sees a slot that is not
    /// yet durable (or accounts of another slot than its root).
    commitment: RwLock<Commitment>,
    writer: Mutex<Writer>,
    last_slot: Mutex<Option<u64>>,
    recovered: Recovered,
    poisoned: AtomicBool,
    /// The gc-compact tile.
    evacuator: evacuate::Evacuator,
}

fn io_err(path: &str, offset: u64, source: std::io::Error) -> StoreError {
    if source.raw_os_error() == Some(libc::ENOSPC) {
        return StoreError::NoSpace {
            path: path.to_string(),
            slot: 0,
        };
    }
    StoreError::Io {
        path: path.to_string(),
        offset,
        source,
    }
}

fn corrupt(path: &str, offset: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.to_string(),
        offset,
        reason: reason.into(),
    }
}

/// Bytes to read for a record: from the start of the block holding it to the end of the
/// block holding its last byte.
fn read_span(loc: Loc, bs: u64) -> (u64, usize) {
    let start = loc.offset / bs * bs;
    let end = align_up(loc.offset + loc.len as u64, bs);
    (start, (end - start) as usize)
}

impl Shared {
    fn bs(&self) -> u64 {
        self.cfg.block_size as u64
    }

    fn segment_start(&self, seg: u32) -> u64 {
        self.label.data_start + seg as u64 * self.label.segment_bytes
    }

    fn segment_of(&self, offset: u64) -> u32 {
        ((offset - self.label.data_start) / self.label.segment_bytes) as u32
    }

    /// Checks the record read from `loc` and decodes it. `Ok(None)`: the bytes there are a
    /// valid record of another key (the segment was compacted and reused since the index was
    /// read) — the caller looks the key up again.
    fn decode_at(
        &self,
        loc: Loc,
        start: u64,
        buf: &[u8],
        key: &[u8; 32],
    ) -> Result<Option<(RecordHeader, Vec<u8>)>, StoreError> {
        let dev = &self.devices[loc.device as usize].path;
        let at = (loc.offset - start) as usize;
        match layout::decode_record(&buf[at..]) {
            Ok(Probe::Record(h))
                if h.key == *key && align_up(h.len as u64, 16) == loc.len as u64 =>
            {
                let data = buf[at + layout::RECORD_HEADER..at + h.len as usize].to_vec();
                Ok(Some((h, data)))
            }
            Ok(Probe::Record(_)) => Ok(None),
            Ok(Probe::Padding) => Ok(None),
            Err(reason) => Err(corrupt(dev, loc.offset, reason)),
        }
    }

    /// Runs each device's ops on its commit ring, devices in parallel, and reports the first
    /// failure (a failed sync as `SyncFailed`).
    fn execute(&self, mut per_device: Vec<(usize, Vec<IoOp>)>) -> Result<(), StoreError> {
        per_device.retain(|(_, ops)| !ops.is_empty());
        let run = |(d, ops): &mut (usize, Vec<IoOp>)| {
            self.devices[*d].writer.lock().execute(ops);
            io_thread::record(&self.devices[*d].counters, ops);
        };
        if per_device.len() == 1 {
            run(&mut per_device[0]);
        } else {
            std::thread::scope(|sc| {
                for job in per_device.iter_mut() {
                    sc.spawn(move || run(job));
                }
            });
        }
        for (d, ops) in &per_device {
            for op in ops {
                if let Some(e) = op.error() {
                    let path = self.devices[*d].path.clone();
                    return Err(match op.kind {
                        device::OpKind::Sync => StoreError::SyncFailed { path, source: e },
                        _ => io_err(&path, op.offset, e),
                    });
                }
            }
        }
        Ok(())
    }

    /// One counter summed over the devices.
    fn device_total(&self, f: fn(&DeviceCounters) -> &AtomicU64) -> u64 {
        self.devices
            .iter()
            .map(|d| f(&d.counters).load(Ordering::Relaxed))
            .sum()
    }

    /// The committed state of `key`, not counted as a client read (commits and proofs).
    fn current(&self, key: &Pubkey) -> Result<Option<(AccountSharedData, u64)>, StoreError> {
        match self.cache.lookup(key, false) {
            Lookup::Hit(a, slot) => Ok(Some((a, slot))),
            _ => self.read_account(key),
        }
    }

    /// One device read of one account record. A read error is never "absent": it is an
    /// error, unless the index moved while the read was out (compaction relocated the record
    /// and its old segment was freed and reused), in which case the read is retried at the
    /// new place, a bounded number of times. Both are counted (`read_errors`, `read_retries`).
    fn read_account(&self, key: &Pubkey) -> Result<Option<(AccountSharedData, u64)>, StoreError> {
        self.read_account_from(key, None)
    }

    /// [`Self::read_account`], the first attempt at `stale` if given (tests: a location the
    /// index no longer holds, as a reader racing compaction sees it).
    fn read_account_from(
        &self,
        key: &Pubkey,
        mut stale: Option<Loc>,
    ) -> Result<Option<(AccountSharedData, u64)>, StoreError> {
        const ATTEMPTS: usize = 8;
        let kb = key.to_bytes();
        let mut last_err = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                self.read_retries.fetch_add(1, Ordering::Relaxed);
            }
            let Some(loc) = stale.take().or_else(|| self.index.get(&kb)) else {
                return Ok(None);
            };
            match self.read_at(key, &kb, loc) {
                Ok(Some(v)) => return Ok(Some(v)),
                // Another key's record, or an error: retry if the index moved meanwhile.
                result if self.index.get(&kb) != Some(loc) => {
                    if let Err(e) = result {
                        last_err = Some(e);
                    }
                    continue;
                }
                Ok(None) => {
                    self.read_errors.fetch_add(1, Ordering::Relaxed);
                    return Err(corrupt(
                        &self.devices[loc.device as usize].path,
                        loc.offset,
                        "index points at a record of another key",
                    ));
                }
                Err(e) => {
                    self.read_errors.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        self.read_errors.fetch_add(1, Ordering::Relaxed);
        Err(last_err.unwrap_or_else(|| {
            corrupt(
                "index",
                0,
                format!("{key} moved more than {ATTEMPTS} times during one read"),
            )
        }))
    }

    /// Reads and decodes the record at `loc`: `None` if a record of another key lies there.
    fn read_at(
        &self,
        key: &Pubkey,
        kb: &[u8; 32],
        loc: Loc,
    ) -> Result<Option<(AccountSharedData, u64)>, StoreError> {
        let (start, len) = read_span(loc, self.bs());
        let mut ops = self.devices[loc.device as usize]
            .io
            .run_sync(vec![IoOp::read(start, self.mem.alloc(len))]);
        self.cold_reads.fetch_add(1, Ordering::Relaxed);
        let op = ops.pop().expect("one op");
        if let Some(e) = op.error() {
            return Err(io_err(&self.devices[loc.device as usize].path, start, e));
        }
        let buf = op.buf.expect("read buffer");
        Ok(self
            .decode_at(loc, start, buf.as_ref(), kb)?
            .map(|(h, data)| {
                let v = (layout::to_account(&h, &data), h.slot);
                self.cache
                    .fill(key, v.0.clone(), v.1, || self.index.get(kb) == Some(loc));
                v
            }))
    }
}

impl ArrayStore {
    pub fn open(cfg: ArrayConfig) -> Result<ArrayStore, StoreError> {
        if cfg.devices.is_empty() || cfg.devices.len() > Loc::MAX_DEVICES {
            return Err(corrupt(
                "config",
                0,
                format!("1 to {} devices required", Loc::MAX_DEVICES),
            ));
        }
        if cfg.block_size != 512 && cfg.block_size != 4096 {
            return Err(corrupt("config", 0, "block_size must be 512 or 4096"));
        }
        if !cfg.segment_bytes.is_multiple_of(cfg.block_size as u64)
            || !cfg.chunk_bytes.is_multiple_of(cfg.block_size)
        {
            return Err(corrupt(
                "config",
                0,
                "segment and chunk sizes must be multiples of the block size",
            ));
        }
        let bs = cfg.block_size;
        let mem = IoMemory::new(bs, cfg.chunk_bytes, cfg.read_buffers, cfg.write_buffers);
        let mut files = Vec::new();
        for spec in &cfg.devices {
            let p = spec.path.display().to_string();
            let d = device::open_device(&spec.path, spec.create_bytes, cfg.direct_io)
                .map_err(|e| io_err(&p, 0, e))?;
            files.push((p, d));
        }
        // Labels: all blank = format a new array; otherwise every device must carry this
        // array's label at its own index.
        let mut labels = Vec::new();
        // Labels are read with one op each: plain pread where the device allows it.
        let label_ring = device::RingSettings {
            io_uring: false,
            entries: 8,
            sqpoll_idle_ms: None,
        };
        for (p, d) in &files {
            let mut b = mem.alloc(bs);
            let mut reader = device::backend(d, label_ring, &mem, &Default::default())
                .map_err(|e| io_err(p, 0, e))?;
            let mut op = [IoOp::read(0, mem.alloc(bs))];
            reader.execute(&mut op);
            if let Some(e) = op[0].error() {
                return Err(io_err(p, 0, e));
            }
            b.as_mut()
                .copy_from_slice(op[0].buf.as_ref().expect("buf").as_ref());
            labels.push(Label::decode(b.as_ref()).map_err(|r| corrupt(p, 0, r))?);
        }
        let n = files.len() as u32;
        let fresh = labels.iter().all(Option::is_none);
        // Devices still to be labelled: all of a fresh array, or those a format cut short.
        let mut unlabelled: Vec<usize> = Vec::new();
        let label = if fresh {
            format_label(&cfg, &files)?
        } else {
            let first = labels[0].clone().ok_or_else(|| {
                corrupt(
                    &files[0].0,
                    0,
                    "device 0 is blank but others belong to an array",
                )
            })?;
            for (i, (l, (p, _))) in labels.iter().zip(&files).enumerate() {
                match l {
                    Some(l)
                        if l.array_id == first.array_id
                            && l.index == i as u32
                            && l.n_devices == n => {}
                    Some(l) => {
                        return Err(corrupt(
                            p,
                            0,
                            format!(
                                "device is #{} of array {:x} ({} devices); configured as #{i} of {:x} ({n} devices)",
                                l.index, l.array_id, l.n_devices, first.array_id
                            ),
                        ));
                    }
                    // Refused below unless the array never committed a slot.
                    None => unlabelled.push(i),
                }
            }
            if first.block_size as usize != bs || first.segment_bytes != cfg.segment_bytes {
                return Err(corrupt(
                    &files[0].0,
                    0,
                    format!(
                        "array was formatted with block {} and segment {} bytes; the config says {bs} and {}",
                        first.block_size, first.segment_bytes, cfg.segment_bytes
                    ),
                ));
            }
            first
        };
        let seg_counts: Vec<u32> = files
            .iter()
            .map(|(_, d)| segments_on(d.size, &label))
            .collect();
        let mut devices = Vec::new();
        for (i, (p, d)) in files.into_iter().enumerate() {
            let counters = Arc::new(DeviceCounters::default());
            // Two rings per device: one on its read thread, one for the committing thread.
            let ring = device::RingSettings {
                io_uring: cfg.io_uring,
                entries: cfg.ring_entries,
                sqpoll_idle_ms: cfg.sqpoll_idle_ms,
            };
            let backend = || -> Result<Box<dyn device::DeviceIo>, StoreError> {
                let dev =
                    device::backend(&d, ring, &mem, &counters).map_err(|e| io_err(&p, 0, e))?;
                let dev = match cfg.faults.get(i) {
                    Some(Some(plan)) => Box::new(FaultyDevice {
                        inner: dev,
                        plan: plan.clone(),
                    }) as Box<dyn device::DeviceIo>,
                    _ => dev,
                };
                Ok(match &cfg.power {
                    Some(power) => power.wrap(i, &cfg.devices[i].path, dev),
                    None => dev,
                })
            };
            let writer = backend()?;
            let reader = backend()?;
            tracing::info!(
                device = %p, index = i, backend = reader.kind(), direct = d.direct,
                segments = seg_counts[i], "storage device opened"
            );
            let core = (!cfg.io_cores.is_empty()).then(|| cfg.io_cores[i % cfg.io_cores.len()]);
            let io = IoThread::spawn(format!("gc-io-{i}"), reader, counters.clone(), core);
            devices.push(Device {
                path: p,
                io,
                writer: Mutex::new(writer),
                counters,
                n_segments: seg_counts[i],
            });
        }
        let shared = Arc::new(Shared {
            cache: Cache::new(cfg.cache_bytes),
            cfg,
            devices,
            mem,
            index: Index::default(),
            label,
            gets: AtomicU64::new(0),
            cold_reads: AtomicU64::new(0),
            read_errors: AtomicU64::new(0),
            read_retries: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            relocated: AtomicU64::new(0),
            live_bytes: AtomicU64::new(0),
            used_bytes: AtomicU64::new(0),
            hints_dropped: AtomicU64::new(0),
            commitment_ns: AtomicU64::new(0),
            compact_tile: Arc::default(),
        });
        let sb = if fresh {
            let sb = Superblock {
                seq: 0,
                last_slot: None,
                open: vec![u32::MAX; seg_counts.len()],
                segments: seg_counts
                    .iter()
                    .map(|&n| vec![SegmentState::default(); n as usize])
                    .collect(),
            };
            write_superblock(&shared, &sb)?;
            unlabelled = (0..seg_counts.len()).collect();
            sb
        } else {
            read_superblock(&shared, &seg_counts)?
        };
        if !unlabelled.is_empty() {
            if !fresh && (sb.seq != 0 || sb.last_slot.is_some()) {
                return Err(corrupt(
                    &shared.devices[unlabelled[0]].path,
                    0,
                    "blank device in an existing array",
                ));
            }
            write_labels(&shared, &unlabelled)?;
        }
        let scanned = scan::rebuild(&shared, &sb)?;
        let metas: VecDeque<(u64, Loc)> = scanned.metas.iter().map(|(s, l, _)| (*s, *l)).collect();
        let mut headers = Vec::with_capacity(scanned.metas.len());
        let mut slot_metas = Vec::with_capacity(scanned.metas.len());
        for (slot, loc, payload) in scanned.metas {
            let (header, runtime_meta) = SlotCommitment::decode(&payload).map_err(|r| {
                corrupt(
                    &shared.devices[loc.device as usize].path,
                    loc.offset,
                    format!("slot {slot}: {r}"),
                )
            })?;
            headers.push(header);
            slot_metas.push((slot, runtime_meta.to_vec()));
        }
        let commitment = Commitment::recover(shared.cfg.commitment, scanned.leaves, headers)
            .map_err(|r| corrupt(&shared.devices[0].path, 0, r))?;
        let recovered = Recovered {
            last_slot: sb.last_slot,
            slot_metas,
        };
        let used: u64 = sb.segments.iter().flatten().map(|s| s.fill as u64).sum();
        shared.used_bytes.store(used, Ordering::Relaxed);
        shared
            .live_bytes
            .store(scanned.live.iter().flatten().sum(), Ordering::Relaxed);
        let placement = Placement::new(&shared.cfg);
        let evacuator = evacuate::Evacuator::start(shared.clone())?;
        Ok(ArrayStore {
            commitment: RwLock::new(commitment),
            writer: Mutex::new(Writer {
                sb: sb.clone(),
                space: Space { live: scanned.live },
                placement,
                metas,
                evacuated: None,
                compacting: false,
                scratch: Vec::new(),
            }),
            last_slot: Mutex::new(sb.last_slot),
            recovered,
            poisoned: AtomicBool::new(false),
            prefetcher: prefetch::Prefetcher::start(shared.clone()),
            shared,
            evacuator,
        })
    }

    pub fn stats(&self) -> ArrayStats {
        let s = &self.shared;
        let c = &s.cache.counters;
        let dev = |f| s.device_total(f);
        ArrayStats {
            gets: s.gets.load(Ordering::Relaxed),
            cache_hits: c.hits.load(Ordering::Relaxed),
            sequenced_hits: c.sequenced_hits.load(Ordering::Relaxed),
            sequenced_misses: c.sequenced_misses.load(Ordering::Relaxed),
            cache_waits: c.waits.load(Ordering::Relaxed),
            sequenced_waits: c.sequenced_waits.load(Ordering::Relaxed),
            cold_reads: s.cold_reads.load(Ordering::Relaxed),
            read_errors: s.read_errors.load(Ordering::Relaxed),
            read_retries: s.read_retries.load(Ordering::Relaxed),
            device_reads: dev(|c| &c.reads),
            device_read_bytes: dev(|c| &c.read_bytes),
            device_write_bytes: dev(|c| &c.write_bytes),
            evictions: c.evictions.load(Ordering::Relaxed),
            evicted_queued: c.evicted_queued.load(Ordering::Relaxed),
            compactions: s.compactions.load(Ordering::Relaxed),
            relocated_records: s.relocated.load(Ordering::Relaxed),
            live_bytes: s.live_bytes.load(Ordering::Relaxed),
            used_bytes: s.used_bytes.load(Ordering::Relaxed),
            index_bytes: s.index.memory_bytes() as u64,
            accounts: s.index.len() as u64,
            cache_bytes: s.cache.resident_bytes() as u64,
            marked_keys: s.cache.marked_keys() as u64,
            hints_dropped: s.hints_dropped.load(Ordering::Relaxed),
            io_backend: s.devices[0].io.kind.to_string(),
            hugepages: s.mem.hugepage_backed(),
            hot_app: self.writer.lock().placement.hot_app(),
        }
    }

    /// Waits until every prefetch and release hint given so far has been acted on (reads
    /// submitted). Tests and benchmarks use it to order hints before reads.
    pub fn flush_hints(&self) {
        self.prefetcher.flush();
    }

    /// Empties the account cache (benchmarks measure cold reads after it).
    pub fn drop_cache(&self) {
        self.shared.cache.clear();
    }

    /// Blocks until a background compaction started by a commit has been read (tests).
    pub fn wait_compaction_read(&self) {
        let mut w = self.writer.lock();
        if w.compacting
            && w.evacuated.is_none()
            && let Ok(r) = self.evacuator.results.recv()
        {
            w.compacting = false;
            match r {
                Ok(e) => w.evacuated = Some(e),
                Err(e) => tracing::error!(error = %e, "compaction read failed"),
            }
        }
    }
}

impl AccountState for ArrayStore {
    fn get(&self, key: &Pubkey) -> Result<Option<(AccountSharedData, u64)>, StoreError> {
        let s = &self.shared;
        s.gets.fetch_add(1, Ordering::Relaxed);
        match s.cache.lookup(key, true) {
            Lookup::Hit(a, slot) => Ok(Some((a, slot))),
            Lookup::Wait(rx) => {
                // A prefetch is reading it: that read serves this get (counted as a wait by
                // the lookup, not as a hit: the get paid for the device read).
                let _ = rx.recv();
                match s.cache.lookup(key, false) {
                    Lookup::Hit(a, slot) => Ok(Some((a, slot))),
                    _ => s.read_account(key),
                }
            }
            Lookup::Miss => s.read_account(key),
        }
    }

    fn prefetch_cold(&self, keys: &[Pubkey], cold: &mut dyn FnMut(&Pubkey)) {
        for k in keys {
            if !self.shared.cache.mark(k) && self.shared.index.get(&k.to_bytes()).is_some() {
                cold(k);
            }
        }
        self.prefetcher
            .hint(&self.shared, prefetch::Hint::Read(keys.to_vec()));
    }

    fn release(&self, keys: &[Pubkey]) {
        for k in keys {
            self.shared.cache.release(k);
        }
    }

    fn commit_slot(
        &self,
        slot: u64,
        accounts: &[(Pubkey, AccountSharedData)],
        meta: &[u8],
    ) -> Result<(), StoreError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StoreError::Poisoned);
        }
        let mut last = self.last_slot.lock();
        if let Some(l) = *last
            && slot <= l
        {
            return Err(StoreError::SlotOrder { slot, last: l });
        }
        let mut w = self.writer.lock();
        let mut commitment = self.commitment.write();
        match self.commit_locked(&mut w, &mut commitment, slot, accounts, meta) {
            Ok(()) => {
                *last = Some(slot);
                self.maybe_compact(&mut w);
                Ok(())
            }
            Err(e) => {
                if matches!(e, StoreError::SyncFailed { .. }) {
                    // The page cache or device may no longer match what we believe is durable.
                    self.poisoned.store(true, Ordering::Release);
                } else {
                    // A full device (ENOSPC) fails every commit until space is reclaimed:
                    // collect (or start) compaction here too, or the next commit could never
                    // free the victim and commits would stall forever.
                    self.maybe_compact(&mut w);
                }
                Err(e)
            }
        }
    }

    fn recovered(&self) -> Recovered {
        self.recovered.clone()
    }

    fn last_committed_slot(&self) -> Option<u64> {
        *self.last_slot.lock()
    }

    fn account_count(&self) -> usize {
        self.shared.index.len()
    }

    fn for_each_key(&self, visit: &mut dyn FnMut(&[Pubkey])) {
        self.shared.index.for_each_key(visit);
    }
}

impl StateCommitment for ArrayStore {
    fn engine_name(&self) -> &'static str {
        "array"
    }

    fn slot_commitment(&self, slot: Option<u64>) -> Result<SlotCommitment, ProofQueryError> {
        let c = self.commitment.read();
        let newest = c.latest().ok_or(ProofQueryError::NoSlot)?.slot;
        let slot = slot.unwrap_or(newest);
        c.header(slot)
            .cloned()
            .ok_or_else(|| ProofQueryError::NotRetained {
                slot,
                oldest: c.oldest_header().unwrap_or(newest),
                newest,
            })
    }

    fn prove(&self, key: &Pubkey, slot: Option<u64>) -> Result<AccountProof, ProofQueryError> {
        let c = self.commitment.read();
        c.prove(key, slot, |k| {
            self.shared.current(k).map(|v| v.map(|(a, _)| a))
        })
    }
}

impl StoreStats for ArrayStore {
    fn read_stats(&self) -> ReadStats {
        let s = &self.shared;
        let dev = |f| s.device_total(f);
        ReadStats {
            gets: s.gets.load(Ordering::Relaxed),
            cache_hits: s.cache.counters.hits.load(Ordering::Relaxed),
            device_reads: dev(|c| &c.reads),
            device_write_bytes: dev(|c| &c.write_bytes),
        }
    }

    fn commitment_ns(&self) -> u64 {
        self.shared.commitment_ns.load(Ordering::Relaxed)
    }
}
