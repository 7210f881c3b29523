//! Power-cut model for tests: a `DeviceIo` wrapper that keeps, per device, the durable image
//! (what a completed fdatasync covers) apart from the writes issued since, and at a cut throws
//! the unsynced writes away, keeps a seeded random subset of them, or tears them at sector
//! granularity, as a disk with a volatile write cache may. Used by storage/tests/powercut.rs;
//! an operator never configures it.
//!
//! The model: every write and sync of a device goes through one [`PowerCut`] shared by all
//! devices of the array. Writes reach the real file at once (the "volatile cache": reads,
//! including the store's own, see them) and are also recorded as pending. A sync that
//! completes makes durable the pending writes of *earlier* batches (`execute` calls) on that
//! device: ops of one batch run concurrently, so a sync is not ordered after the writes it
//! was submitted with. A device can be armed to lose power at its n-th next write or sync:
//! that op is in flight (a write may or may not reach the medium, a sync does not complete)
//! and reports EIO, and every later op of that device fails with EIO without effect. The
//! cut ([`PowerCut::cut`]) then decides what survives of the pending writes, writes that
//! image back to the files, and starts a new power cycle: wrappers of the old store are
//! dead for good.

use super::device::{DeviceIo, IoOp, OpKind};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a disk keeps of the writes no completed flush covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Survival {
    /// Nothing: the durable image only.
    LoseAll,
    /// Everything (what a kill -9 leaves: the data reached the kernel).
    KeepAll,
    /// The first k writes in issue order, k random (a FIFO write cache).
    Prefix,
    /// Each write whole, or not at all, independently (a reordering cache).
    Subset,
    /// Each `sector`-byte piece of each write independently (torn writes; sectors are atomic).
    Torn { sector: usize },
}

/// What one cut did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Writes issued since the last flush that covered them, over all devices.
    pub pending: usize,
    /// Of those, kept whole.
    pub kept: usize,
    /// Of those, kept in part (torn).
    pub torn: usize,
}

struct Pending {
    batch: u64,
    offset: u64,
    data: Vec<u8>,
}

struct DeviceModel {
    path: PathBuf,
    durable: Vec<u8>,
    pending: Vec<Pending>,
    batch: u64,
    /// Writes and syncs seen this power cycle.
    ops: u64,
    /// The op (by `ops` index) at which this device loses power.
    cut_at: Option<u64>,
    dead: bool,
}

#[derive(Default)]
struct State {
    generation: u64,
    devices: Vec<Option<DeviceModel>>,
    /// Cuts armed on devices not modelled yet (a cut while the array is formatted).
    early: Vec<(usize, u64)>,
    tripped: bool,
}

/// The power supply of one array's devices (tests only).
#[derive(Default)]
pub struct PowerCut {
    state: Mutex<State>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    /// The op at the cut: a write reaches the volatile cache, and the op reports EIO.
    InFlight,
    Refuse,
}

impl PowerCut {
    pub fn new() -> Arc<PowerCut> {
        Arc::new(PowerCut::default())
    }

    /// Device `device` loses power at its `after`-th next write or sync (0: the next one),
    /// counted from now or, for a device not opened yet, from when it is.
    pub fn arm(&self, device: usize, after: u64) {
        let mut st = self.state.lock();
        match st.devices.get_mut(device) {
            Some(Some(d)) => d.cut_at = Some(d.ops + after),
            _ => st.early.push((device, after)),
        }
    }

    /// Whether some device has lost power this cycle.
    pub fn tripped(&self) -> bool {
        self.state.lock().tripped
    }

    /// Writes not yet covered by a completed flush, over all devices.
    pub fn pending_writes(&self) -> usize {
        let st = self.state.lock();
        st.devices.iter().flatten().map(|d| d.pending.len()).sum()
    }

    /// Devices modelled so far.
    pub fn devices(&self) -> usize {
        self.state.lock().devices.len()
    }

    /// The power fails now on every device (call it once the store is dropped): what
    /// survives of the pending writes is chosen by `survival` and `seed`, written back to
    /// the device files, and becomes the durable image. Stores opened before are dead for
    /// good; the next open starts a new power cycle.
    pub fn cut(&self, survival: Survival, seed: u64) -> std::io::Result<CutReport> {
        let mut st = self.state.lock();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut report = CutReport::default();
        for d in st.devices.iter_mut().flatten() {
            let n = d.pending.len();
            report.pending += n;
            let prefix = rng.gen_range(0..=n);
            let file = std::fs::OpenOptions::new().write(true).open(&d.path)?;
            let pending = std::mem::take(&mut d.pending);
            // The file holds every pending write (the volatile cache); the durable image
            // gets the surviving ones, in issue order, and is written back over each
            // pending range.
            for (i, p) in pending.iter().enumerate() {
                let end = p.offset as usize + p.data.len();
                let keep_whole = match survival {
                    Survival::LoseAll => false,
                    Survival::KeepAll => true,
                    Survival::Prefix => i < prefix,
                    Survival::Subset => rng.gen_bool(0.5),
                    Survival::Torn { .. } => false,
                };
                if keep_whole {
                    d.durable[p.offset as usize..end].copy_from_slice(&p.data);
                    report.kept += 1;
                } else if let Survival::Torn { sector } = survival {
                    let (mut at, mut kept, mut lost) = (p.offset as usize, 0, 0);
                    while at < end {
                        let next = ((at / sector + 1) * sector).min(end);
                        if rng.gen_bool(0.5) {
                            let from = at - p.offset as usize;
                            d.durable[at..next].copy_from_slice(&p.data[from..from + (next - at)]);
                            kept += 1;
                        } else {
                            lost += 1;
                        }
                        at = next;
                    }
                    match (kept, lost) {
                        (0, _) => {}
                        (_, 0) => report.kept += 1,
                        _ => report.torn += 1,
                    }
                }
            }
            for p in &pending {
                let r = p.offset as usize..p.offset as usize + p.data.len();
                file.write_all_at(&d.durable[r], p.offset)?;
            }
            file.sync_data()?;
            d.batch = 0;
            d.ops = 0;
            d.cut_at = None;
            d.dead = false;
        }
        st.generation += 1;
        st.early.clear();
        st.tripped = false;
        Ok(report)
    }

    /// Wraps device `device` (the file at `path`) of a store being opened.
    /// Panics if the file cannot be read (tests only).
    pub fn wrap(
        self: &Arc<Self>,
        device: usize,
        path: &Path,
        inner: Box<dyn DeviceIo>,
    ) -> Box<dyn DeviceIo> {
        let mut st = self.state.lock();
        if st.devices.len() <= device {
            st.devices.resize_with(device + 1, || None);
        }
        if st.devices[device].is_none() {
            st.devices[device] = Some(DeviceModel {
                path: path.to_path_buf(),
                durable: std::fs::read(path)
                    .unwrap_or_else(|e| panic!("power-cut model: reading {}: {e}", path.display())),
                pending: Vec::new(),
                batch: 0,
                ops: 0,
                cut_at: None,
                dead: false,
            });
            if let Some(i) = st.early.iter().position(|(d, _)| *d == device) {
                let (_, after) = st.early.remove(i);
                st.devices[device].as_mut().expect("just modelled").cut_at = Some(after);
            }
        }
        Box::new(PowerCutDevice {
            inner,
            power: self.clone(),
            device,
            generation: st.generation,
        })
    }

    fn admit(&self, device: usize, generation: u64, ops: &[IoOp]) -> Vec<Verdict> {
        let mut st = self.state.lock();
        if st.generation != generation {
            return vec![Verdict::Refuse; ops.len()];
        }
        let mut tripped = false;
        let d = st.devices[device].as_mut().expect("wrapped device");
        d.batch += 1;
        let batch = d.batch;
        let verdicts = ops
            .iter()
            .map(|op| {
                if d.dead {
                    return Verdict::Refuse;
                }
                if op.kind == OpKind::Read {
                    return Verdict::Pass;
                }
                let v = if d.cut_at == Some(d.ops) {
                    d.dead = true;
                    tripped = true;
                    Verdict::InFlight
                } else {
                    Verdict::Pass
                };
                d.ops += 1;
                match op.kind {
                    OpKind::Write => {
                        let data = op.buf.as_ref().expect("write buffer").as_ref().to_vec();
                        let end = op.offset as usize + data.len();
                        assert!(
                            end <= d.durable.len(),
                            "write past the end of {}",
                            d.path.display()
                        );
                        d.pending.push(Pending {
                            batch,
                            offset: op.offset,
                            data,
                        });
                    }
                    OpKind::Sync if v == Verdict::Pass => {
                        // Completed: every write of an earlier batch is on the medium.
                        let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut d.pending)
                            .into_iter()
                            .partition(|p| p.batch < batch);
                        for p in done {
                            let r = p.offset as usize..p.offset as usize + p.data.len();
                            d.durable[r].copy_from_slice(&p.data);
                        }
                        d.pending = rest;
                    }
                    _ => {}
                }
                v
            })
            .collect();
        st.tripped |= tripped;
        verdicts
    }
}

struct PowerCutDevice {
    inner: Box<dyn DeviceIo>,
    power: Arc<PowerCut>,
    device: usize,
    generation: u64,
}

impl DeviceIo for PowerCutDevice {
    fn execute(&mut self, ops: &mut [IoOp]) {
        let verdicts = self.power.admit(self.device, self.generation, ops);
        let mut pass = Vec::new();
        let mut slots = Vec::new();
        for (i, (op, v)) in ops.iter_mut().zip(&verdicts).enumerate() {
            // The model decides what is durable: a sync is not run on the file (the test
            // machine keeps its power), which also keeps the test fast.
            let reaches = match v {
                Verdict::Pass => op.kind != OpKind::Sync,
                Verdict::InFlight => op.kind == OpKind::Write,
                Verdict::Refuse => false,
            };
            if reaches {
                pass.push(std::mem::replace(op, IoOp::sync()));
                slots.push(i);
            }
        }
        if !pass.is_empty() {
            self.inner.execute(&mut pass);
        }
        for (op, i) in pass.into_iter().zip(slots) {
            ops[i] = op;
        }
        for (op, v) in ops.iter_mut().zip(&verdicts) {
            if *v != Verdict::Pass {
                op.result = -(libc::EIO as i64);
            } else if op.kind == OpKind::Sync {
                op.result = 0;
            }
        }
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}
