//! One read tile per device (`telemetry::Tile`), owning a ring of its own. Callers hand it jobs (a batch of ops
//! and a completion); each round it submits everything waiting in one batch. Account reads
//! (gets, prefetches, compaction scans) go here; slot commits write through the commit
//! thread's own rings (`Shared::execute`), so reads never queue behind a commit's writes.

use super::device::{DeviceIo, IoOp, OpKind};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use telemetry::{Placement, Stage, Tile, TileClock, TileStats, Turn, next_input};

pub type Completion = Box<dyn FnOnce(Vec<IoOp>) + Send>;

struct Job {
    ops: Vec<IoOp>,
    done: Completion,
}

telemetry::declare_counters! {
    /// What one device has done: reads on its I/O tile, writes and syncs of slot commits.
    /// Published per device (`device` label) in the metrics region (`StorageCounters`).
    #[repr(C, align(64))]
    #[derive(Default)]
    pub struct DeviceCounters {
        /// Read operations completed by the device.
        reads: Counter(Count) "storage_io_reads",
        /// Bytes read from the device.
        read_bytes: Counter(Bytes) "storage_io_read",
        /// Write operations completed by the device.
        writes: Counter(Count) "storage_io_writes",
        /// Bytes written to the device.
        write_bytes: Counter(Bytes) "storage_io_write",
        /// fdatasync calls on the device.
        syncs: Counter(Count) "storage_io_syncs",
        /// Operations that failed.
        errors: Counter(Count) "storage_io_errors",
        /// Batches the device's I/O tile submitted.
        rounds: Counter(Count) "storage_io_rounds",
        /// NVMe commands completed by the device through passthrough (reads, writes, flushes;
        /// an op larger than the device's transfer limit is several). Zero on other backends.
        nvme_commands: Counter(Count) "storage_io_nvme_commands",
        /// NVMe commands the controller failed (an NVMe status, logged with it).
        nvme_status_errors: Counter(Count) "storage_io_nvme_status_errors",
    }
}

pub struct IoThread {
    tx: Option<Sender<Job>>,
    stage: Option<Stage>,
    pub kind: &'static str,
    /// The I/O tile's own slot (jobs in and out, busy and idle time), published with the
    /// device's counters.
    pub tile: Arc<TileStats>,
}

impl IoThread {
    /// `core`: pin the thread there (placement puts the islands' workers beside it).
    pub fn spawn(
        name: String,
        dev: Box<dyn DeviceIo>,
        counters: Arc<DeviceCounters>,
        core: Option<usize>,
    ) -> IoThread {
        let (tx, rx) = unbounded::<Job>();
        let kind = dev.kind();
        let mut stage = Stage::new("storage-io");
        let tile = Arc::new(TileStats::default());
        stage
            .launch(
                name,
                IoTile {
                    dev,
                    rx,
                    counters,
                    tile: tile.clone(),
                },
                tile.clone(),
                Placement { core, numa: None },
            )
            .expect("spawn storage I/O thread");
        IoThread {
            tx: Some(tx),
            stage: Some(stage),
            kind,
            tile,
        }
    }

    /// Queues `ops`; `done` runs on the I/O thread with the executed ops.
    pub fn submit(&self, ops: Vec<IoOp>, done: Completion) {
        let tx = self.tx.as_ref().expect("I/O thread running");
        if let Err(e) = tx.send(Job { ops, done }) {
            // Only after shutdown: fail the ops rather than lose the completion.
            let Job { mut ops, done } = e.into_inner();
            for op in &mut ops {
                op.result = -(libc::ESHUTDOWN as i64);
            }
            done(ops);
        }
    }

    /// Executes `ops` and waits for them.
    pub fn run_sync(&self, ops: Vec<IoOp>) -> Vec<IoOp> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.submit(
            ops,
            Box::new(move |ops| {
                let _ = tx.send(ops);
            }),
        );
        rx.recv().expect("I/O thread completes every job")
    }
}

impl Drop for IoThread {
    fn drop(&mut self) {
        // Closing the queue ends the tile once it has completed every job already queued.
        self.tx.take();
        if let Some(stage) = self.stage.take() {
            stage.stop();
        }
    }
}

/// A device's I/O tile: each turn submits everything waiting, in one batch.
struct IoTile {
    dev: Box<dyn DeviceIo>,
    rx: Receiver<Job>,
    counters: Arc<DeviceCounters>,
    tile: Arc<TileStats>,
}

impl Tile for IoTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, _stopping: bool) -> Turn {
        // Every queued job completes: the tile ends only when its queue is closed and empty.
        let first = match next_input(&self.rx, clock) {
            Ok(x) => x,
            Err(turn) => return turn,
        };
        let c = &self.counters;
        self.tile.set_queue_depth(self.rx.len() + 1);
        let mut round = vec![first];
        round.extend(self.rx.try_iter());
        self.tile.add_in(round.len() as u64);
        let sizes: Vec<usize> = round.iter().map(|j| j.ops.len()).collect();
        let mut all: Vec<IoOp> = round.iter_mut().flat_map(|j| j.ops.drain(..)).collect();
        self.dev.execute(&mut all);
        c.rounds.fetch_add(1, Ordering::Relaxed);
        record(c, &all);
        let mut it = all.into_iter();
        let jobs = round.len() as u64;
        for (job, n) in round.into_iter().zip(sizes) {
            let ops: Vec<IoOp> = it.by_ref().take(n).collect();
            (job.done)(ops);
        }
        self.tile.add_out(jobs);
        clock.busy();
        Turn::Continue
    }
}

/// Adds executed ops to a device's counters.
pub fn record(c: &DeviceCounters, ops: &[IoOp]) {
    for op in ops {
        let n = op.len() as u64;
        match op.kind {
            OpKind::Read => {
                c.reads.fetch_add(1, Ordering::Relaxed);
                c.read_bytes.fetch_add(n, Ordering::Relaxed);
            }
            OpKind::Write => {
                c.writes.fetch_add(1, Ordering::Relaxed);
                c.write_bytes.fetch_add(n, Ordering::Relaxed);
            }
            OpKind::Sync => {
                c.syncs.fetch_add(1, Ordering::Relaxed);
            }
        }
        if op.error().is_some() {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}
