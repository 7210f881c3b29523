//! The io_uring engine both ring backends share: file I/O ([`FileOps`]: read, write,
//! fdatasync on an fd) and NVMe passthrough ([`super::nvme::NvmeOps`]: commands on the
//! namespace's queues). A backend says how an [`IoOp`] becomes ring requests (one, or several
//! where the device's transfer limit splits it) and what a completion means; the engine
//! submits them in windows of at most the ring's size and gathers the results per op.
//!
//! The error path is where the kernel and this process can disagree about who owns a buffer.
//! Every SQE carries `user_data` = (window sequence << 32) | request index, so a completion is
//! only ever credited to the request that submitted it (a late completion of an earlier window
//! is dropped, not counted for the next batch: a write must never look done before its sync).
//! When `io_uring_enter` fails, the engine keeps waiting for every request the kernel may hold
//! before it returns (the caller drops the ops, which returns their buffers to the pool). If
//! the ring cannot be drained, it is poisoned: the buffers of ops still out are leaked on
//! purpose (the kernel may still DMA into them) and every later batch fails with EIO.

use super::{IoOp, OpKind};
use crate::array::iomem::IoMemory;
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use std::fs::File;
use std::os::fd::AsRawFd;

/// How one kind of device turns ops into ring requests.
pub trait RingOps: Send {
    type Sqe: squeue::EntryMarker + Clone;
    type Cqe: cqueue::EntryMarker;
    /// Appends the requests that carry `op`, each with the bytes it moves. `fixed`: the I/O
    /// pool is registered as fixed buffer 0. `Err(errno)`: the device cannot do this op (it
    /// fails without reaching the device).
    fn requests(
        &self,
        op: &mut IoOp,
        fixed: bool,
        out: &mut Vec<(Self::Sqe, u32)>,
    ) -> Result<(), i32>;
    fn tag(sqe: Self::Sqe, user_data: u64) -> Self::Sqe;
    /// (user_data, result) of a completion.
    fn completion(cqe: &Self::Cqe) -> (u64, i32);
    /// A request's result as bytes moved (≥ 0) or a negative errno.
    fn outcome(&self, res: i32, bytes: u32) -> i64;
    fn kind(&self, sqpoll: bool) -> &'static str;
}

/// Failed `io_uring_enter` calls tolerated in a row while draining before the ring is poisoned.
const DRAIN_ATTEMPTS: u32 = 16;

/// A ring and the backend that fills it.
pub struct RingDevice<T: RingOps> {
    ring: IoUring<T::Sqe, T::Cqe>,
    ops: T,
    fixed: bool,
    sqpoll: bool,
    /// Sequence of the current window (high half of `user_data`).
    window_seq: u32,
    /// The ring could not be drained after an error: never used again.
    poisoned: bool,
    /// Tests: the next `n` submits report this errno after really submitting (the worst case:
    /// the kernel holds the requests, the caller sees an error).
    #[doc(hidden)]
    pub inject_submit_errors: Option<(u32, i32)>,
}

/// The io_uring backend on a file or block device.
pub type UringDevice = RingDevice<FileOps>;

/// One request of a batch: which op it belongs to and the bytes it moves.
struct Request<S> {
    sqe: S,
    bytes: u32,
    op: usize,
}

impl<T: RingOps> RingDevice<T> {
    pub fn with_ops(
        ops: T,
        entries: u32,
        sqpoll_idle_ms: Option<u32>,
        mem: &IoMemory,
    ) -> std::io::Result<Self> {
        let mut b = IoUring::<T::Sqe, T::Cqe>::builder();
        if let Some(ms) = sqpoll_idle_ms {
            b.setup_sqpoll(ms);
        }
        let ring = b.build(entries)?;
        let iov = mem.iovec();
        let fixed = match unsafe { ring.submitter().register_buffers(&[iov]) } {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "io_uring refused to register the I/O pool; using unregistered buffers");
                false
            }
        };
        Ok(RingDevice {
            ring,
            ops,
            fixed,
            sqpoll: sqpoll_idle_ms.is_some(),
            window_seq: 0,
            poisoned: false,
            inject_submit_errors: None,
        })
    }

    /// Whether the ring was given up after an undrainable error.
    pub fn poisoned(&self) -> bool {
        self.poisoned
    }

    /// `submit_and_wait`, through the test seam.
    fn submit_and_wait(&mut self, want: usize) -> std::io::Result<usize> {
        if let Some((n, errno)) = self.inject_submit_errors
            && n > 0
        {
            self.inject_submit_errors = (n > 1).then_some((n - 1, errno));
            // Really hand the requests to the kernel, then report failure.
            let _ = self.ring.submit();
            return Err(std::io::Error::from_raw_os_error(errno));
        }
        self.ring.submit_and_wait(want)
    }

    /// Runs one window (at most the ring's size), folding each request's outcome into its
    /// op's entry of `results` (bytes so far, or the first error). Returns the requests that
    /// never completed (non-empty only when the ring had to be poisoned).
    fn run_window(&mut self, window: &[Request<T::Sqe>], results: &mut [i64]) -> Vec<usize> {
        self.window_seq = self.window_seq.wrapping_add(1);
        let seq = self.window_seq as u64;
        for (i, r) in window.iter().enumerate() {
            let e = T::tag(r.sqe.clone(), seq << 32 | i as u64);
            // The window never exceeds the ring, and earlier windows were drained.
            unsafe { self.ring.submission().push(&e).expect("room in the ring") };
        }
        let mut done = vec![false; window.len()];
        let mut left = window.len();
        let mut first_error: Option<i32> = None;
        let mut failures = 0;
        while left > 0 {
            match self.submit_and_wait(left) {
                Ok(_) => failures = 0,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => {
                    // Requests may be in the kernel: keep waiting for them (EAGAIN/EBUSY pass
                    // once completions are reaped), but not forever.
                    first_error.get_or_insert(e.raw_os_error().unwrap_or(libc::EIO));
                    failures += 1;
                    tracing::warn!(error = %e, failures, "io_uring submit failed; draining");
                    if failures > DRAIN_ATTEMPTS {
                        tracing::error!(
                            "io_uring ring could not be drained; poisoned (device I/O fails from now on)"
                        );
                        self.poisoned = true;
                        return (0..window.len()).filter(|&i| !done[i]).collect();
                    }
                }
            }
            let mut finished = Vec::new();
            for cqe in self.ring.completion() {
                let (user_data, res) = T::completion(&cqe);
                let (s, i) = (user_data >> 32, (user_data & 0xffff_ffff) as usize);
                if s != seq || i >= window.len() || done[i] {
                    // Not one of this window's requests: never credit it.
                    tracing::error!(user_data, "stray io_uring completion ignored");
                    continue;
                }
                finished.push((i, res));
            }
            for (i, res) in finished {
                let r = &window[i];
                let outcome = self.ops.outcome(res, r.bytes);
                let total = &mut results[r.op];
                if *total >= 0 {
                    *total = if outcome < 0 {
                        outcome
                    } else {
                        *total + outcome
                    };
                }
                done[i] = true;
                left -= 1;
            }
        }
        // Every request came back with its own result; a submit error that the requests
        // survived is still reported on the ops that succeeded, so the caller does not trust
        // a batch whose submission misbehaved.
        if let Some(errno) = first_error {
            for r in window {
                if results[r.op] >= 0 {
                    results[r.op] = -(errno as i64);
                }
            }
        }
        Vec::new()
    }
}

impl<T: RingOps> super::DeviceIo for RingDevice<T> {
    fn execute(&mut self, ops: &mut [IoOp]) {
        let mut requests = Vec::with_capacity(ops.len());
        let mut results = vec![0i64; ops.len()];
        let mut parts = Vec::new();
        for (i, op) in ops.iter_mut().enumerate() {
            if let Err(errno) = self.ops.requests(op, self.fixed, &mut parts) {
                results[i] = -(errno as i64);
                parts.clear();
            }
            requests.extend(
                parts
                    .drain(..)
                    .map(|(sqe, bytes)| Request { sqe, bytes, op: i }),
            );
        }
        // Ops whose buffers the kernel may still hold: never handed back.
        let mut stranded = vec![false; ops.len()];
        let cap = self.ring.params().sq_entries() as usize;
        let mut ran = 0;
        for window in requests.chunks(cap) {
            if self.poisoned {
                break;
            }
            for i in self.run_window(window, &mut results) {
                stranded[window[i].op] = true;
            }
            ran += window.len();
        }
        // Requests not run (the ring was poisoned before their window) fail too; their
        // buffers were never handed to the kernel.
        for r in &requests[ran..] {
            results[r.op] = -(libc::EIO as i64);
        }
        for ((op, result), stranded) in ops.iter_mut().zip(results).zip(stranded) {
            op.result = if stranded {
                -(libc::EIO as i64)
            } else {
                result
            };
            if stranded && let Some(b) = op.buf.take() {
                std::mem::forget(b);
            }
        }
        if self.poisoned {
            for op in ops.iter_mut().filter(|op| op.kind == OpKind::Sync) {
                op.result = -(libc::EIO as i64);
            }
        }
    }

    fn kind(&self) -> &'static str {
        self.ops.kind(self.sqpoll)
    }
}

/// Reads, writes and fdatasync on a file descriptor: one request per op.
pub struct FileOps {
    file: File,
}

impl UringDevice {
    pub fn new(
        file: File,
        entries: u32,
        sqpoll_idle_ms: Option<u32>,
        mem: &IoMemory,
    ) -> std::io::Result<Self> {
        Self::with_ops(FileOps { file }, entries, sqpoll_idle_ms, mem)
    }
}

impl RingOps for FileOps {
    type Sqe = squeue::Entry;
    type Cqe = cqueue::Entry;

    fn requests(
        &self,
        op: &mut IoOp,
        fixed: bool,
        out: &mut Vec<(squeue::Entry, u32)>,
    ) -> Result<(), i32> {
        let fd = types::Fd(self.file.as_raw_fd());
        let kind = op.kind;
        if kind == OpKind::Sync {
            let sync = opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build();
            out.push((sync, 0));
            return Ok(());
        }
        // A read or write without a buffer is a caller's bug: it fails, it is never a sync.
        let buf = op.buf.as_mut().ok_or(libc::EINVAL)?;
        let (ptr, len) = (buf.as_ptr(), buf.len() as u32);
        let sqe = match (kind, buf.fixed_index().filter(|_| fixed)) {
            (OpKind::Read, Some(i)) => opcode::ReadFixed::new(fd, ptr, len, i)
                .offset(op.offset)
                .build(),
            (OpKind::Read, None) => opcode::Read::new(fd, ptr, len).offset(op.offset).build(),
            (_, Some(i)) => opcode::WriteFixed::new(fd, ptr, len, i)
                .offset(op.offset)
                .build(),
            (_, None) => opcode::Write::new(fd, ptr, len).offset(op.offset).build(),
        };
        out.push((sqe, len));
        Ok(())
    }

    fn tag(sqe: squeue::Entry, user_data: u64) -> squeue::Entry {
        sqe.user_data(user_data)
    }

    fn completion(cqe: &cqueue::Entry) -> (u64, i32) {
        (cqe.user_data(), cqe.result())
    }

    fn outcome(&self, res: i32, _bytes: u32) -> i64 {
        res as i64
    }

    fn kind(&self, sqpoll: bool) -> &'static str {
        if sqpoll {
            "io_uring+sqpoll"
        } else {
            "io_uring"
        }
    }
}
