//! The device-array accounts store: block-aligned records written log-structured through
//! io_uring with O_DIRECT over N devices, a compact in-memory index, a sequencer-driven
//! account cache, atomic slot commits through a checksummed superblock pair, and background
//! compaction. storage/README.md states the invariants.

mod cache;
pub mod device;
pub mod fault;
mod index;
mod io_thread;
pub mod iomem;
pub mod layout;
mod placement;
mod scan;

use crate::{AccountsStore, Recovered, StoreError};
use ahash::HashSet;
use cache::{Cache, Lookup};
use device::{IoOp, OpKind};
use fault::{FaultPlan, FaultyDevice};
use index::{Index, Loc};
use io_thread::IoThread;
use iomem::{IoBuf, IoMemory};
use layout::{Label, Probe, RecordHeader, SegmentState, Superblock, align_up};
use parking_lot::Mutex;
use placement::Placement;
use solana_account::{AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub use io_thread::DeviceCounters;

/// One device of the array: a regular file (created with `create_bytes` if absent) or a
/// block device (its whole size is used).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSpec {
    pub path: PathBuf,
    pub create_bytes: u64,
}

#[derive(Clone)]
pub struct ArrayConfig {
    pub devices: Vec<DeviceSpec>,
    /// I/O and packing unit: 512 or 4096.
    pub block_size: usize,
    /// Unit of allocation and compaction. Must hold the largest record (10 MiB account).
    pub segment_bytes: u64,
    /// Size of one write buffer (and of one segment-scan read).
    pub chunk_bytes: usize,
    pub cache_bytes: usize,
    /// Block-sized buffers in the registered I/O pool (reads in flight).
    pub read_buffers: usize,
    /// Chunk-sized buffers in the pool (writes in flight).
    pub write_buffers: usize,
    pub ring_entries: u32,
    pub sqpoll_idle_ms: Option<u32>,
    pub io_uring: bool,
    pub direct_io: bool,
    /// Write bytes per I/O round on one device; reads queued behind a burst wait one round.
    pub write_round_bytes: usize,
    /// Compact when the space used exceeds this multiple of the live data.
    pub max_space_amplification: f64,
    pub meta_retention_slots: usize,
    /// An app (account owner) writing more than this share of a slot's bytes gets its own
    /// device(s) when there are at least two.
    pub hot_app_share: f64,
    /// Operator placement: this owner's accounts go to these device indexes.
    pub pinned_apps: Vec<(Pubkey, Vec<usize>)>,
    /// Tests: wrap device i with these faults.
    pub faults: Vec<Option<Arc<FaultPlan>>>,
}

impl ArrayConfig {
    /// One file-backed device in `dir`, defaults for everything else.
    pub fn single_file(dir: &std::path::Path, bytes: u64) -> Self {
        ArrayConfig {
            devices: vec![DeviceSpec {
                path: dir.join("accounts-0.dev"),
                create_bytes: bytes,
            }],
            ..ArrayConfig::default()
        }
    }
}

impl Default for ArrayConfig {
    fn default() -> Self {
        ArrayConfig {
            devices: Vec::new(),
            block_size: 4096,
            segment_bytes: 32 << 20,
            chunk_bytes: 1 << 20,
            cache_bytes: 256 << 20,
            read_buffers: 1024,
            write_buffers: 64,
            ring_entries: 256,
            sqpoll_idle_ms: None,
            io_uring: true,
            direct_io: true,
            write_round_bytes: 4 << 20,
            max_space_amplification: 2.0,
            meta_retention_slots: 1024,
            hot_app_share: 0.5,
            pinned_apps: Vec::new(),
            faults: Vec::new(),
        }
    }
}

struct Device {
    path: String,
    io: IoThread,
    n_segments: u32,
}

/// Counters the runtime's metrics and the benchmark read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ArrayStats {
    pub gets: u64,
    pub cache_hits: u64,
    pub sequenced_hits: u64,
    pub sequenced_misses: u64,
    /// Reads of one account that went to a device (sync misses and prefetches).
    pub cold_reads: u64,
    pub device_reads: u64,
    pub device_read_bytes: u64,
    pub device_write_bytes: u64,
    pub evictions: u64,
    pub evicted_queued: u64,
    pub compactions: u64,
    pub relocated_records: u64,
    pub live_bytes: u64,
    pub used_bytes: u64,
    pub index_bytes: u64,
    pub accounts: u64,
    pub cache_bytes: u64,
    pub io_backend: String,
    pub hugepages: bool,
    /// The app (account owner) holding a device of its own, and that device.
    pub hot_app: Option<(Pubkey, usize)>,
}

/// Live-data accounting per segment, to pick compaction victims.
struct Space {
    live: Vec<Vec<u64>>,
}

/// A segment the compactor has read: its live records, to be rewritten by the next commit.
struct Evacuation {
    device: usize,
    segment: u32,
    records: Vec<(Loc, Vec<u8>)>,
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
    compactions: AtomicU64,
    relocated: AtomicU64,
    live_bytes: AtomicU64,
    used_bytes: AtomicU64,
}

pub struct ArrayStore {
    shared: Arc<Shared>,
    writer: Mutex<Writer>,
    last_slot: Mutex<Option<u64>>,
    recovered: Recovered,
    poisoned: AtomicBool,
    evacuation_rx: crossbeam_channel::Receiver<Result<Evacuation, StoreError>>,
    evacuation_tx: crossbeam_channel::Sender<Result<Evacuation, StoreError>>,
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

    /// One device read of one account record.
    fn read_account(&self, key: &Pubkey) -> Result<Option<(AccountSharedData, u64)>, StoreError> {
        let kb = key.to_bytes();
        for _ in 0..8 {
            let Some(loc) = self.index.get(&kb) else {
                return Ok(None);
            };
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
            match self.decode_at(loc, start, buf.as_ref(), &kb)? {
                Some((h, data)) => {
                    let v = (layout::to_account(&h, &data), h.slot);
                    self.cache
                        .fill(key, v.0.clone(), v.1, || self.index.get(&kb) == Some(loc));
                    return Ok(Some(v));
                }
                None if self.index.get(&kb) != Some(loc) => continue,
                None => {
                    return Err(corrupt(
                        &self.devices[loc.device as usize].path,
                        loc.offset,
                        "index points at a record of another key",
                    ));
                }
            }
        }
        Err(corrupt(
            "index",
            0,
            format!("{key} moved more than 8 times during one read"),
        ))
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
        for (p, d) in &files {
            let mut b = mem.alloc(bs);
            let mut sd = device::SyncDevice {
                file: d.file.try_clone().map_err(|e| io_err(p, 0, e))?,
            };
            let mut op = [IoOp::read(0, mem.alloc(bs))];
            device::DeviceIo::execute(&mut sd, &mut op);
            if let Some(e) = op[0].error() {
                return Err(io_err(p, 0, e));
            }
            b.as_mut()
                .copy_from_slice(op[0].buf.as_ref().expect("buf").as_ref());
            labels.push(Label::decode(b.as_ref()).map_err(|r| corrupt(p, 0, r))?);
        }
        let n = files.len() as u32;
        let fresh = labels.iter().all(Option::is_none);
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
                    None => return Err(corrupt(p, 0, "blank device in an existing array")),
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
            if fresh {
                let mut l = label.clone();
                l.index = i as u32;
                let mut b = mem.alloc(bs);
                l.encode(b.as_mut());
                let mut sd = device::SyncDevice {
                    file: d.file.try_clone().map_err(|e| io_err(&p, 0, e))?,
                };
                let mut ops = [IoOp::write(0, b), IoOp::sync()];
                device::DeviceIo::execute(&mut sd, &mut ops[..1]);
                device::DeviceIo::execute(&mut sd, &mut ops[1..]);
                if let Some(e) = ops.iter().find_map(IoOp::error) {
                    return Err(io_err(&p, 0, e));
                }
            }
            let mut dev = device::backend(
                d.file,
                cfg.ring_entries,
                cfg.sqpoll_idle_ms,
                &mem,
                cfg.io_uring,
            );
            if let Some(Some(plan)) = cfg.faults.get(i) {
                dev = Box::new(FaultyDevice {
                    inner: dev,
                    plan: plan.clone(),
                });
            }
            tracing::info!(
                device = %p, index = i, backend = dev.kind(), direct = d.direct,
                segments = seg_counts[i], "storage device opened"
            );
            let io = IoThread::spawn(format!("gc-io-{i}"), dev, cfg.write_round_bytes);
            devices.push(Device {
                path: p,
                io,
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
            compactions: AtomicU64::new(0),
            relocated: AtomicU64::new(0),
            live_bytes: AtomicU64::new(0),
            used_bytes: AtomicU64::new(0),
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
            sb
        } else {
            read_superblock(&shared, &seg_counts)?
        };
        let scanned = scan::rebuild(&shared, &sb)?;
        let metas: VecDeque<(u64, Loc)> = scanned.metas.iter().map(|(s, l, _)| (*s, *l)).collect();
        let recovered = Recovered {
            last_slot: sb.last_slot,
            slot_metas: scanned.metas.into_iter().map(|(s, _, b)| (s, b)).collect(),
        };
        let used: u64 = sb.segments.iter().flatten().map(|s| s.fill as u64).sum();
        shared.used_bytes.store(used, Ordering::Relaxed);
        shared
            .live_bytes
            .store(scanned.live.iter().flatten().sum(), Ordering::Relaxed);
        let placement = Placement::new(&shared.cfg);
        let (evacuation_tx, evacuation_rx) = crossbeam_channel::bounded(1);
        Ok(ArrayStore {
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
            shared,
            evacuation_rx,
            evacuation_tx,
        })
    }

    pub fn stats(&self) -> ArrayStats {
        let s = &self.shared;
        let c = &s.cache.counters;
        let dev = |f: fn(&DeviceCounters) -> &AtomicU64| -> u64 {
            s.devices
                .iter()
                .map(|d| f(&d.io.counters).load(Ordering::Relaxed))
                .sum()
        };
        ArrayStats {
            gets: s.gets.load(Ordering::Relaxed),
            cache_hits: c.hits.load(Ordering::Relaxed),
            sequenced_hits: c.sequenced_hits.load(Ordering::Relaxed),
            sequenced_misses: c.sequenced_misses.load(Ordering::Relaxed),
            cold_reads: s.cold_reads.load(Ordering::Relaxed),
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
            io_backend: s.devices[0].io.kind.to_string(),
            hugepages: s.mem.hugepage_backed(),
            hot_app: self.writer.lock().placement.hot_app(),
        }
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
            && let Ok(r) = self.evacuation_rx.recv()
        {
            w.compacting = false;
            match r {
                Ok(e) => w.evacuated = Some(e),
                Err(e) => tracing::error!(error = %e, "compaction read failed"),
            }
        }
    }

    fn commit_locked(
        &self,
        w: &mut Writer,
        slot: u64,
        accounts: &[(Pubkey, AccountSharedData)],
        meta: &[u8],
    ) -> Result<(), StoreError> {
        let s = &*self.shared;
        let bs = s.bs();
        let mut sb = w.sb.clone();
        sb.seq += 1;
        sb.last_slot = Some(slot);
        let mut appenders: Vec<Appender> = (0..s.devices.len())
            .map(|d| Appender::new(d, &sb))
            .collect();
        let mut placed: Vec<(usize, Loc, bool)> = Vec::with_capacity(accounts.len());
        w.placement.observe(accounts);
        let written: HashSet<&Pubkey> = accounts.iter().map(|(k, _)| k).collect();
        for (key, account) in accounts {
            layout::encode_account(&mut w.scratch, key, slot, account);
            let d = w.placement.device_for(account.owner(), key);
            let loc = appenders[d].append(s, &mut sb, slot, &w.scratch)?;
            placed.push((d, loc, account.lamports() == 0));
        }
        layout::encode_record(
            &mut w.scratch,
            &layout::meta_key(slot),
            slot,
            layout::FLAG_META,
            0,
            0,
            &[0; 32],
            meta,
        );
        let meta_dev = w.placement.meta_device();
        let meta_loc = appenders[meta_dev].append(s, &mut sb, slot, &w.scratch)?;
        // Rewrite what the compactor found live in its victim, unless this slot supersedes
        // it; then the victim is free in the same superblock.
        let mut moves = Vec::new();
        let evac = w.evacuated.take();
        if let Some(ev) = &evac {
            // A tombstone must outlive every older version of its key. Those can only lie in
            // segments born before the tombstone's slot: once none is left (but the victim),
            // the tombstone can go.
            let oldest_birth = w
                .sb
                .segments
                .iter()
                .enumerate()
                .flat_map(|(d, v)| v.iter().enumerate().map(move |(i, st)| (d, i, st)))
                .filter(|(d, i, st)| st.fill > 0 && !(*d == ev.device && *i as u32 == ev.segment))
                .map(|(_, _, st)| st.birth_slot)
                .min()
                .unwrap_or(u64::MAX);
            for (old, bytes) in &ev.records {
                let Ok(Probe::Record(h)) = layout::decode_record(bytes) else {
                    continue;
                };
                let still_live = if h.flags & layout::FLAG_META != 0 {
                    w.metas.iter().any(|(_, l)| l == old)
                } else if h.flags & layout::FLAG_TOMBSTONE != 0 {
                    h.slot > oldest_birth
                        && !written.contains(&Pubkey::new_from_array(h.key))
                        && s.index.get(&h.key).is_none()
                } else {
                    !written.contains(&Pubkey::new_from_array(h.key))
                        && s.index.get(&h.key) == Some(*old)
                };
                if !still_live {
                    continue;
                }
                let d = if h.flags & layout::FLAG_META != 0 {
                    meta_dev
                } else {
                    w.placement.device_for(
                        &Pubkey::new_from_array(h.owner),
                        &Pubkey::new_from_array(h.key),
                    )
                };
                let new = appenders[d].append(s, &mut sb, slot, bytes)?;
                moves.push((h.key, h.flags, *old, new));
            }
            let seg = &mut sb.segments[ev.device][ev.segment as usize];
            *seg = SegmentState::default();
        }
        // Data first, on every device; then its flush; then the superblock and its flush.
        let result = (|| {
            let mut waits = Vec::new();
            for a in appenders.iter_mut() {
                for (offset, buf) in a.take_writes(bs) {
                    waits.push((
                        a.device,
                        offset,
                        submit(&s.devices[a.device].io, vec![IoOp::write(offset, buf)]),
                    ));
                }
            }
            wait_all(s, waits)?;
            let syncs: Vec<_> = appenders
                .iter()
                .filter(|a| a.touched)
                .map(|a| {
                    (
                        a.device,
                        0,
                        submit(&s.devices[a.device].io, vec![IoOp::sync()]),
                    )
                })
                .collect();
            wait_all(s, syncs)?;
            write_superblock(s, &sb)
        })();
        if let Err(e) = result {
            // Nothing of this slot is referenced by a durable superblock. The victim stays
            // evacuated for the next attempt.
            w.evacuated = evac;
            return Err(match e {
                StoreError::NoSpace { path, .. } => StoreError::NoSpace { path, slot },
                e => e,
            });
        }
        // Durable: publish.
        for ((key, account), (d, loc, tomb)) in accounts.iter().zip(&placed) {
            let kb = key.to_bytes();
            let old = if *tomb {
                s.index.remove(&kb)
            } else {
                s.index.insert(&kb, *loc)
            };
            if let Some(old) = old {
                w.space.sub(s, old);
            }
            if !*tomb {
                w.space.add(s, *d, *loc);
                s.cache.update(key, Some((account.clone(), slot)));
            } else {
                s.cache.update(key, None);
            }
        }
        w.space.add(s, meta_dev, meta_loc);
        w.metas.push_back((slot, meta_loc));
        while w.metas.len() > s.cfg.meta_retention_slots {
            let (_, l) = w.metas.pop_front().expect("non-empty");
            w.space.sub(s, l);
        }
        let mut relocated = 0;
        for (key, flags, old, new) in moves {
            if flags & layout::FLAG_META != 0 {
                if let Some(m) = w.metas.iter_mut().find(|(_, l)| *l == old) {
                    m.1 = new;
                    w.space.add(s, new.device as usize, new);
                }
            } else if flags & layout::FLAG_TOMBSTONE == 0 && s.index.relocate(&key, old, new) {
                w.space.add(s, new.device as usize, new);
            }
            relocated += 1;
        }
        if let Some(ev) = evac {
            w.space.live[ev.device][ev.segment as usize] = 0;
            s.compactions.fetch_add(1, Ordering::Relaxed);
            s.relocated.fetch_add(relocated, Ordering::Relaxed);
        }
        s.used_bytes.store(
            sb.segments.iter().flatten().map(|x| x.fill as u64).sum(),
            Ordering::Relaxed,
        );
        w.sb = sb;
        Ok(())
    }

    /// Starts reading a compaction victim in the background when space amplification is over
    /// the limit; collects a finished read.
    fn maybe_compact(&self, w: &mut Writer) {
        if w.compacting {
            match self.evacuation_rx.try_recv() {
                Ok(Ok(e)) => {
                    w.compacting = false;
                    w.evacuated = Some(e);
                }
                Ok(Err(e)) => {
                    w.compacting = false;
                    tracing::error!(error = %e, "compaction read failed; the segment stays in use");
                }
                Err(_) => {}
            }
            return;
        }
        if w.evacuated.is_some() {
            return;
        }
        let s = &self.shared;
        let used = s.used_bytes.load(Ordering::Relaxed) as f64;
        let live = s.live_bytes.load(Ordering::Relaxed) as f64;
        let min = 4.0 * s.label.segment_bytes as f64;
        let over_bound = used >= min && used > s.cfg.max_space_amplification * live;
        // Also reclaim when a device is about to run out of free segments, whatever the
        // ratio: a nearly full device otherwise fails commits that stale data could make room for.
        let scarce =
            w.sb.segments
                .iter()
                .any(|segs| segs.iter().filter(|st| st.fill == 0).count() < 2);
        if !over_bound && !scarce {
            return;
        }
        let Some((device, segment)) = w.space.victim(&w.sb) else {
            return;
        };
        w.compacting = true;
        let shared = self.shared.clone();
        let fill = w.sb.segments[device][segment as usize].fill;
        let tx = self.evacuation_tx.clone();
        std::thread::Builder::new()
            .name("gc-compact".into())
            .spawn(move || {
                let r =
                    scan::read_segment(&shared, device, segment, fill).map(|records| Evacuation {
                        device,
                        segment,
                        records,
                    });
                let _ = tx.send(r);
            })
            .expect("spawn compaction thread");
    }
}

/// Builds one device's writes for a slot: records packed into blocks, log-structured from the
/// device's open segment, a new segment taken when it fills. Each run of consecutive bytes
/// is written in chunk-sized buffers.
struct Appender {
    device: usize,
    seg: Option<u32>,
    pos: u64,
    run_start: u64,
    bufs: Vec<IoBuf>,
    runs: Vec<(u64, Vec<IoBuf>)>,
    touched: bool,
}

impl Appender {
    fn new(device: usize, sb: &Superblock) -> Self {
        let open = sb.open[device];
        Appender {
            device,
            seg: (open != u32::MAX).then_some(open),
            pos: 0,
            run_start: 0,
            bufs: Vec::new(),
            runs: Vec::new(),
            touched: false,
        }
    }

    fn append(
        &mut self,
        s: &Shared,
        sb: &mut Superblock,
        slot: u64,
        rec: &[u8],
    ) -> Result<Loc, StoreError> {
        let bs = s.bs();
        let len = rec.len() as u64;
        let foot = align_up(len, layout::RECORD_ALIGN as u64);
        if foot > s.label.segment_bytes {
            return Err(corrupt(
                &s.devices[self.device].path,
                0,
                format!("record of {len} bytes exceeds the segment size"),
            ));
        }
        if !self.touched {
            self.touched = true;
            if let Some(seg) = self.seg {
                // Each slot starts on a fresh block: a committed block is never rewritten.
                self.pos =
                    s.segment_start(seg) + sb.segments[self.device][seg as usize].fill as u64;
                self.run_start = self.pos;
            }
        }
        loop {
            if let Some(seg) = self.seg {
                let end = s.segment_start(seg) + s.label.segment_bytes;
                let in_block = self.pos % bs;
                let mut at = self.pos;
                // A record that fits a block never straddles one; a larger one starts a block.
                if (foot <= bs && in_block + foot > bs) || (foot > bs && in_block != 0) {
                    at = align_up(at, bs);
                }
                if at + foot <= end {
                    self.pos = at;
                    break;
                }
            }
            self.close_run(bs);
            let next = (0..s.devices[self.device].n_segments)
                .find(|&i| sb.segments[self.device][i as usize].fill == 0 && Some(i) != self.seg)
                .ok_or_else(|| StoreError::NoSpace {
                    path: s.devices[self.device].path.clone(),
                    slot,
                })?;
            // Mark it taken (one block) so a second new segment in this slot is another one.
            sb.segments[self.device][next as usize] = SegmentState {
                fill: bs as u32,
                birth_slot: slot,
            };
            sb.open[self.device] = next;
            self.seg = Some(next);
            self.pos = s.segment_start(next);
            self.run_start = self.pos;
        }
        let chunk = s.mem.chunk_bytes() as u64;
        let mut off = self.pos - self.run_start;
        let mut src = rec;
        while !src.is_empty() {
            let (bi, within) = ((off / chunk) as usize, (off % chunk) as usize);
            while self.bufs.len() <= bi {
                self.bufs.push(s.mem.alloc(chunk as usize));
            }
            let n = src.len().min(chunk as usize - within);
            self.bufs[bi].as_mut()[within..within + n].copy_from_slice(&src[..n]);
            src = &src[n..];
            off += n as u64;
        }
        let loc = Loc {
            device: self.device as u8,
            offset: self.pos,
            len: foot as u32,
        };
        self.pos += foot;
        let seg = self.seg.expect("segment chosen");
        let fill = align_up(self.pos - s.segment_start(seg), bs) as u32;
        sb.segments[self.device][seg as usize].fill = fill;
        Ok(loc)
    }

    /// Ends the run of consecutive bytes being built (a new segment starts another).
    fn close_run(&mut self, bs: u64) {
        let used = align_up(self.pos - self.run_start, bs) as usize;
        let mut bufs = std::mem::take(&mut self.bufs);
        if used == 0 || bufs.is_empty() {
            return;
        }
        let chunk = bufs[0].capacity();
        bufs.truncate(used.div_ceil(chunk));
        let tail = used - (bufs.len() - 1) * chunk;
        bufs.last_mut().expect("non-empty").set_len(tail);
        self.runs.push((self.run_start, bufs));
    }

    /// The (offset, buffer) writes of this slot on this device.
    fn take_writes(&mut self, bs: u64) -> Vec<(u64, IoBuf)> {
        self.close_run(bs);
        let mut out = Vec::new();
        for (start, bufs) in std::mem::take(&mut self.runs) {
            let mut off = start;
            for b in bufs {
                let n = b.len() as u64;
                out.push((off, b));
                off += n;
            }
        }
        out
    }
}

type Pending = crossbeam_channel::Receiver<Vec<IoOp>>;

fn submit(io: &IoThread, ops: Vec<IoOp>) -> Pending {
    let (tx, rx) = crossbeam_channel::bounded(1);
    io.submit(
        ops,
        Box::new(move |ops| {
            let _ = tx.send(ops);
        }),
    );
    rx
}

fn wait_all(s: &Shared, waits: Vec<(usize, u64, Pending)>) -> Result<(), StoreError> {
    let mut first = None;
    for (d, offset, rx) in waits {
        let ops = rx.recv().expect("I/O thread completes every job");
        for op in &ops {
            if let Some(e) = op.error() {
                let path = s.devices[d].path.clone();
                first.get_or_insert_with(|| match op.kind {
                    OpKind::Sync => StoreError::SyncFailed { path, source: e },
                    _ => io_err(&path, op.offset.max(offset), e),
                });
            }
        }
    }
    first.map_or(Ok(()), Err)
}

fn segments_on(size: u64, label: &Label) -> u32 {
    (size.saturating_sub(label.data_start) / label.segment_bytes).min(u32::MAX as u64 - 1) as u32
}

fn superblock_blocks(cfg_bs: u64, seg_counts: &[u32]) -> u64 {
    align_up(Superblock::encoded_len(seg_counts) as u64, cfg_bs) / cfg_bs
}

fn format_label(
    cfg: &ArrayConfig,
    files: &[(String, device::OpenedDevice)],
) -> Result<Label, StoreError> {
    let bs = cfg.block_size as u64;
    // Superblock size depends on segment counts, which depend on data_start: size it for the
    // segments a device would have with no header at all (an upper bound).
    let upper: Vec<u32> = files
        .iter()
        .map(|(_, d)| (d.size / cfg.segment_bytes) as u32)
        .collect();
    let sb_blocks = superblock_blocks(bs, &upper);
    let data_start = align_up((1 + 2 * sb_blocks) * bs, 1 << 20);
    for (p, d) in files {
        if d.size < data_start + cfg.segment_bytes * 2 {
            return Err(corrupt(
                p,
                0,
                format!(
                    "device of {} bytes is too small: needs at least {}",
                    d.size,
                    data_start + 2 * cfg.segment_bytes
                ),
            ));
        }
    }
    Ok(Label {
        array_id: rand::random(),
        index: 0,
        n_devices: files.len() as u32,
        block_size: cfg.block_size as u32,
        segment_bytes: cfg.segment_bytes,
        n_segments: 0,
        data_start,
    })
}

fn superblock_region(s: &Shared) -> (u64, usize) {
    let counts: Vec<u32> = s.devices.iter().map(|d| d.n_segments).collect();
    let upper_blocks = (s.label.data_start / s.bs() - 1) / 2;
    let need = superblock_blocks(s.bs(), &counts);
    debug_assert!(need <= upper_blocks);
    (s.bs(), (upper_blocks * s.bs()) as usize)
}

/// Writes the superblock into the copy its sequence number selects, then flushes device 0.
fn write_superblock(s: &Shared, sb: &Superblock) -> Result<(), StoreError> {
    let (first, copy_len) = superblock_region(s);
    let offset = first + (sb.seq % 2) * copy_len as u64;
    let len = Superblock::encoded_len(
        &sb.segments
            .iter()
            .map(|v| v.len() as u32)
            .collect::<Vec<_>>(),
    );
    let mut buf = s.mem.alloc(len);
    sb.encode(buf.as_mut());
    let io = &s.devices[0].io;
    let ops = io.run_sync(vec![IoOp::write(offset, buf)]);
    if let Some(e) = ops[0].error() {
        return Err(io_err(&s.devices[0].path, offset, e));
    }
    let ops = io.run_sync(vec![IoOp::sync()]);
    if let Some(e) = ops[0].error() {
        return Err(StoreError::SyncFailed {
            path: s.devices[0].path.clone(),
            source: e,
        });
    }
    Ok(())
}

/// The newer of the two valid superblock copies.
fn read_superblock(s: &Shared, seg_counts: &[u32]) -> Result<Superblock, StoreError> {
    let (first, copy_len) = superblock_region(s);
    let len = Superblock::encoded_len(seg_counts);
    let mut best: Option<Superblock> = None;
    for copy in 0..2u64 {
        let offset = first + copy * copy_len as u64;
        let ops = s.devices[0]
            .io
            .run_sync(vec![IoOp::read(offset, s.mem.alloc(len))]);
        if let Some(e) = ops[0].error() {
            return Err(io_err(&s.devices[0].path, offset, e));
        }
        if let Some(sb) = Superblock::decode(ops[0].buf.as_ref().expect("buf").as_ref(), seg_counts)
            && best.as_ref().is_none_or(|b| sb.seq > b.seq)
        {
            best = Some(sb);
        }
    }
    best.ok_or_else(|| {
        corrupt(
            &s.devices[0].path,
            first,
            "both superblock copies are invalid",
        )
    })
}

impl Space {
    fn add(&mut self, s: &Shared, device: usize, loc: Loc) {
        let seg = s.segment_of(loc.offset) as usize;
        let b = align_up(loc.len as u64, layout::RECORD_ALIGN as u64);
        self.live[device][seg] += b;
        s.live_bytes.fetch_add(b, Ordering::Relaxed);
    }
    fn sub(&mut self, s: &Shared, loc: Loc) {
        let seg = s.segment_of(loc.offset) as usize;
        let b = align_up(loc.len as u64, layout::RECORD_ALIGN as u64);
        let v = &mut self.live[loc.device as usize][seg];
        let d = b.min(*v);
        *v -= d;
        s.live_bytes.fetch_sub(d, Ordering::Relaxed);
    }
    /// The sealed segment with the least live data relative to its fill.
    fn victim(&self, sb: &Superblock) -> Option<(usize, u32)> {
        let mut best: Option<(f64, usize, u32)> = None;
        for (d, segs) in sb.segments.iter().enumerate() {
            for (i, st) in segs.iter().enumerate() {
                if st.fill == 0 || sb.open[d] == i as u32 {
                    continue;
                }
                let ratio = self.live[d][i] as f64 / st.fill as f64;
                if ratio < 0.9 && best.is_none_or(|b| ratio < b.0) {
                    best = Some((ratio, d, i as u32));
                }
            }
        }
        best.map(|(_, d, i)| (d, i))
    }
}

impl AccountsStore for ArrayStore {
    fn get(&self, key: &Pubkey) -> Result<Option<(AccountSharedData, u64)>, StoreError> {
        let s = &self.shared;
        s.gets.fetch_add(1, Ordering::Relaxed);
        match s.cache.lookup(key, true) {
            Lookup::Hit(a, slot) => Ok(Some((a, slot))),
            Lookup::Wait(rx) => {
                // A prefetch is reading it: that read serves this get.
                let _ = rx.recv();
                s.cache.counters.hits.fetch_add(1, Ordering::Relaxed);
                s.cache
                    .counters
                    .sequenced_hits
                    .fetch_add(1, Ordering::Relaxed);
                match s.cache.lookup(key, false) {
                    Lookup::Hit(a, slot) => Ok(Some((a, slot))),
                    _ => s.read_account(key),
                }
            }
            Lookup::Miss => s.read_account(key),
        }
    }

    fn prefetch(&self, keys: &[Pubkey]) {
        let s = &self.shared;
        let mut by_dev: Vec<Vec<(Pubkey, Loc)>> = vec![Vec::new(); s.devices.len()];
        for key in keys {
            if !s.cache.queue(key) {
                continue;
            }
            match s.index.get(&key.to_bytes()) {
                Some(loc) => by_dev[loc.device as usize].push((*key, loc)),
                None => s.cache.finish_load(key, None, || false),
            }
        }
        for (d, reads) in by_dev.into_iter().enumerate() {
            if reads.is_empty() {
                continue;
            }
            let ops = reads
                .iter()
                .map(|(_, loc)| {
                    let (start, len) = read_span(*loc, s.bs());
                    IoOp::read(start, s.mem.alloc(len))
                })
                .collect();
            let shared = self.shared.clone();
            s.cold_reads
                .fetch_add(reads.len() as u64, Ordering::Relaxed);
            s.devices[d].io.submit(ops, Box::new(move |ops| {
                for ((key, loc), op) in reads.iter().zip(ops) {
                    let kb = key.to_bytes();
                    let value = match (op.error(), op.buf) {
                        (None, Some(buf)) => match shared.decode_at(*loc, op.offset, buf.as_ref(), &kb) {
                            Ok(Some((h, data))) => Some((layout::to_account(&h, &data), h.slot)),
                            Ok(None) => None,
                            Err(e) => {
                                tracing::error!(error = %e, "prefetch read found a corrupt record");
                                None
                            }
                        },
                        _ => None,
                    };
                    shared.cache.finish_load(key, value, || shared.index.get(&kb) == Some(*loc));
                }
            }));
        }
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
        match self.commit_locked(&mut w, slot, accounts, meta) {
            Ok(()) => {
                *last = Some(slot);
                self.maybe_compact(&mut w);
                Ok(())
            }
            Err(e) => {
                if matches!(e, StoreError::SyncFailed { .. }) {
                    // The page cache or device may no longer match what we believe is durable.
                    self.poisoned.store(true, Ordering::Release);
                }
                Err(e)
            }
        }
    }

    fn read_stats(&self) -> crate::ReadStats {
        let s = &self.shared;
        let dev = |f: fn(&DeviceCounters) -> &AtomicU64| -> u64 {
            s.devices
                .iter()
                .map(|d| f(&d.io.counters).load(Ordering::Relaxed))
                .sum()
        };
        crate::ReadStats {
            gets: s.gets.load(Ordering::Relaxed),
            cache_hits: s.cache.counters.hits.load(Ordering::Relaxed),
            device_reads: dev(|c| &c.reads),
            device_write_bytes: dev(|c| &c.write_bytes),
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
}
