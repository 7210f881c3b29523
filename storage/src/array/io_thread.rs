//! One I/O thread per device, owning that device's ring. Callers hand it jobs (a batch of
//! ops and a completion); each round it submits every waiting read and writes up to a byte
//! budget together, so a commit's write burst is cut into rounds and reads queued behind it
//! wait for at most one round of writes.

use super::device::{DeviceIo, IoOp, OpKind};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::collections::VecDeque;
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
    pub counters: Arc<DeviceCounters>,
    pub kind: &'static str,
}

impl IoThread {
    pub fn spawn(name: String, mut dev: Box<dyn DeviceIo>, write_budget: usize) -> IoThread {
        let (tx, rx) = unbounded::<Job>();
        let counters = Arc::new(DeviceCounters::default());
        let c = counters.clone();
        let kind = dev.kind();
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(&mut *dev, &rx, write_budget, &c))
            .expect("spawn storage I/O thread");
        IoThread {
            tx: Some(tx),
            handle: Some(handle),
            counters,
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

fn is_write(job: &Job) -> bool {
    job.ops.iter().any(|o| o.kind != OpKind::Read)
}

fn run(dev: &mut dyn DeviceIo, rx: &Receiver<Job>, write_budget: usize, c: &DeviceCounters) {
    let mut reads: VecDeque<Job> = VecDeque::new();
    let mut writes: VecDeque<Job> = VecDeque::new();
    loop {
        if reads.is_empty() && writes.is_empty() {
            match rx.recv() {
                Ok(j) => push(j, &mut reads, &mut writes),
                Err(_) => return,
            }
        }
        while let Ok(j) = rx.try_recv() {
            push(j, &mut reads, &mut writes);
        }
        let mut round: Vec<Job> = reads.drain(..).collect();
        let mut budget = write_budget;
        while let Some(w) = writes.front() {
            let bytes: usize = w.ops.iter().map(IoOp::len).sum();
            if bytes > budget && budget != write_budget {
                break;
            }
            budget = budget.saturating_sub(bytes);
            round.push(writes.pop_front().expect("front exists"));
        }
        let sizes: Vec<usize> = round.iter().map(|j| j.ops.len()).collect();
        let mut all: Vec<IoOp> = round.iter_mut().flat_map(|j| j.ops.drain(..)).collect();
        dev.execute(&mut all);
        c.rounds.fetch_add(1, Ordering::Relaxed);
        for op in &all {
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
        let mut it = all.into_iter();
        for (job, n) in round.into_iter().zip(sizes) {
            let ops: Vec<IoOp> = it.by_ref().take(n).collect();
            (job.done)(ops);
        }
    }
}

fn push(j: Job, reads: &mut VecDeque<Job>, writes: &mut VecDeque<Job>) {
    if is_write(&j) {
        writes.push_back(j)
    } else {
        reads.push_back(j)
    }
}
