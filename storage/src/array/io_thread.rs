//! One read thread per device, owning a ring of its own. Callers hand it jobs (a batch of ops
//! and a completion); each round it submits everything waiting in one batch. Account reads
//! (gets, prefetches, compaction scans) go here; slot commits write through the commit
//! thread's own rings (`Shared::execute`), so reads never queue behind a commit's writes.

use super::device::{DeviceIo, IoOp, OpKind};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

pub type Completion = Box<dyn FnOnce(Vec<IoOp>) + Send>;

struct Job {
    ops: Vec<IoOp>,
    done: Completion,
}

/// What one device's thread has done (read by metrics and the bench).
#[derive(Default)]
pub struct DeviceCounters {
    pub reads: AtomicU64,
    pub read_bytes: AtomicU64,
    pub writes: AtomicU64,
    pub write_bytes: AtomicU64,
    pub syncs: AtomicU64,
    pub errors: AtomicU64,
    pub rounds: AtomicU64,
}

pub struct IoThread {
    tx: Option<Sender<Job>>,
    handle: Option<JoinHandle<()>>,
    pub kind: &'static str,
}

impl IoThread {
    /// `core`: pin the thread there (placement puts the islands' workers beside it).
    pub fn spawn(
        name: String,
        mut dev: Box<dyn DeviceIo>,
        counters: Arc<DeviceCounters>,
        core: Option<usize>,
    ) -> IoThread {
        let (tx, rx) = unbounded::<Job>();
        let c = counters;
        let kind = dev.kind();
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                if let Some(core) = core
                    && !pin_current_thread(core)
                {
                    tracing::warn!(core, "could not pin the storage I/O thread");
                }
                run(&mut *dev, &rx, &c)
            })
            .expect("spawn storage I/O thread");
        IoThread {
            tx: Some(tx),
            handle: Some(handle),
            kind,
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
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(dev: &mut dyn DeviceIo, rx: &Receiver<Job>, c: &DeviceCounters) {
    while let Ok(first) = rx.recv() {
        let mut round = vec![first];
        round.extend(rx.try_iter());
        let sizes: Vec<usize> = round.iter().map(|j| j.ops.len()).collect();
        let mut all: Vec<IoOp> = round.iter_mut().flat_map(|j| j.ops.drain(..)).collect();
        dev.execute(&mut all);
        c.rounds.fetch_add(1, Ordering::Relaxed);
        record(c, &all);
        let mut it = all.into_iter();
        for (job, n) in round.into_iter().zip(sizes) {
            let ops: Vec<IoOp> = it.by_ref().take(n).collect();
            (job.done)(ops);
        }
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

fn pin_current_thread(core: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays within it for core < 1024.
    unsafe {
        if core >= libc::CPU_SETSIZE as usize {
            return false;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}
