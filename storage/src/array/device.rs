//! The device backend interface and its two implementations: io_uring (default) and
//! pread/pwrite (fallback where io_uring is refused). A userspace NVMe backend (SPDK, or
//! io_uring passthrough on /dev/ngXnY) is another `DeviceIo`.

use super::iomem::{IoBuf, IoMemory};
use io_uring::{IoUring, opcode, types};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Read,
    Write,
    /// fdatasync: everything written before it reaches stable storage.
    Sync,
}

/// One I/O. `result` is the byte count (0 for sync) or a negative errno once executed.
pub struct IoOp {
    pub kind: OpKind,
    pub offset: u64,
    pub buf: Option<IoBuf>,
    pub result: i64,
}

impl IoOp {
    pub fn read(offset: u64, buf: IoBuf) -> Self {
        IoOp {
            kind: OpKind::Read,
            offset,
            buf: Some(buf),
            result: 0,
        }
    }
    pub fn write(offset: u64, buf: IoBuf) -> Self {
        IoOp {
            kind: OpKind::Write,
            offset,
            buf: Some(buf),
            result: 0,
        }
    }
    pub fn sync() -> Self {
        IoOp {
            kind: OpKind::Sync,
            offset: 0,
            buf: None,
            result: 0,
        }
    }
    pub fn len(&self) -> usize {
        self.buf.as_ref().map_or(0, IoBuf::len)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The error of this op, if it failed or transferred fewer bytes than asked.
    pub fn error(&self) -> Option<std::io::Error> {
        if self.result < 0 {
            Some(std::io::Error::from_raw_os_error(-self.result as i32))
        } else if self.kind != OpKind::Sync && self.result as usize != self.len() {
            Some(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "short {:?}: {} of {} bytes",
                    self.kind,
                    self.result,
                    self.len()
                ),
            ))
        } else {
            None
        }
    }
}

/// A block device (or file) that executes batches of I/O.
pub trait DeviceIo: Send {
    /// Executes every op (reads and writes in any order, concurrently), filling `result`.
    fn execute(&mut self, ops: &mut [IoOp]);
    /// "io_uring", "io_uring+sqpoll" or "pread/pwrite": for the start-up log and metrics.
    fn kind(&self) -> &'static str;
}

pub struct OpenedDevice {
    pub file: File,
    pub size: u64,
    pub direct: bool,
}

/// Opens (creating a regular file of `create_bytes` if absent) with O_DIRECT, falling back to
/// buffered I/O with a log line where the filesystem refuses O_DIRECT (tmpfs).
pub fn open_device(path: &Path, create_bytes: u64, direct: bool) -> std::io::Result<OpenedDevice> {
    if !path.exists() {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        // Write the whole file once: blocks that were only fallocated are "unwritten"
        // extents, and the first write into each would turn every data sync into a
        // filesystem journal commit. Overwrites of written blocks sync as plain data.
        if let Err(e) = zero_fill(&f, path, create_bytes) {
            drop(f);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
    }
    let open = |flags: i32| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(path)
    };
    let (mut file, direct) = if direct {
        match open(libc::O_DIRECT) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                tracing::warn!(
                    path = %path.display(),
                    "O_DIRECT refused by this filesystem; using buffered I/O (fdatasync still \
                     makes commits durable)"
                );
                (open(0)?, false)
            }
            Err(e) => return Err(e),
        }
    } else {
        (open(0)?, false)
    };
    let size = file.seek(SeekFrom::End(0))?;
    Ok(OpenedDevice { file, size, direct })
}

/// Allocates the file and, where O_DIRECT works, writes it through once with zeros, bypassing
/// the page cache (so no writeback of the fill runs later, during traffic).
fn zero_fill(f: &File, path: &Path, bytes: u64) -> std::io::Result<()> {
    let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, bytes as libc::off_t) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let direct = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(d) => d,
        // tmpfs: no O_DIRECT, and no unwritten extents to convert either.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(()),
        Err(e) => return Err(e),
    };
    const CHUNK: usize = 4 << 20;
    let layout = std::alloc::Layout::from_size_align(CHUNK, 4096).expect("aligned layout");
    let zeros = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!zeros.is_null(), "out of memory for the zero-fill buffer");
    let buf = unsafe { std::slice::from_raw_parts(zeros, CHUNK) };
    let mut at = 0;
    let mut result = Ok(());
    while at < bytes {
        // The tail (a size that is not a multiple of 4 KiB) is left fallocated.
        let n = ((bytes - at).min(CHUNK as u64) / 4096 * 4096) as usize;
        if n == 0 {
            break;
        }
        if let Err(e) = direct.write_all_at(&buf[..n], at) {
            result = Err(e);
            break;
        }
        at += n as u64;
    }
    unsafe { std::alloc::dealloc(zeros, layout) };
    result?;
    direct.sync_all()
}

/// io_uring backend: one ring, the I/O pool registered as fixed buffer 0, a batch submitted
/// with one `io_uring_enter` (none at all with SQPOLL while the poller is awake).
///
/// The error path is where the kernel and this process can disagree about who owns a buffer.
/// Every SQE carries `user_data` = (window sequence << 32) | op index, so a completion is only
/// ever credited to the op that submitted it (a late completion of an earlier window is
/// dropped, not counted for the next batch: a write must never look done before its
/// fdatasync). When `io_uring_enter` fails, `execute` keeps waiting for every op the kernel may
/// hold before it returns (the caller drops the ops, which returns their buffers to the pool).
/// If the ring cannot be drained, the ring is poisoned: the buffers of ops still out are
/// leaked on purpose (the kernel may still DMA into them) and every later batch fails with EIO.
pub struct UringDevice {
    ring: IoUring,
    file: File,
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

/// Failed `io_uring_enter` calls tolerated in a row while draining before the ring is poisoned.
const DRAIN_ATTEMPTS: u32 = 16;

impl UringDevice {
    pub fn new(
        file: File,
        entries: u32,
        sqpoll_idle_ms: Option<u32>,
        mem: &IoMemory,
    ) -> std::io::Result<Self> {
        let mut b = IoUring::builder();
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
        Ok(UringDevice {
            ring,
            file,
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

    fn entry(&self, op: &mut IoOp) -> io_uring::squeue::Entry {
        let fd = types::Fd(self.file.as_raw_fd());
        match op.kind {
            OpKind::Sync => opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build(),
            kind => {
                let buf = op.buf.as_mut().expect("read/write op has a buffer");
                let (ptr, len) = (buf.as_ptr(), buf.len() as u32);
                match (kind, buf.fixed_index().filter(|_| self.fixed)) {
                    (OpKind::Read, Some(i)) => opcode::ReadFixed::new(fd, ptr, len, i)
                        .offset(op.offset)
                        .build(),
                    (OpKind::Read, None) => {
                        opcode::Read::new(fd, ptr, len).offset(op.offset).build()
                    }
                    (_, Some(i)) => opcode::WriteFixed::new(fd, ptr, len, i)
                        .offset(op.offset)
                        .build(),
                    (_, None) => opcode::Write::new(fd, ptr, len).offset(op.offset).build(),
                }
            }
        }
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

    /// Runs one window (at most the ring's size). Returns false if the ring had to be poisoned.
    fn run_window(&mut self, window: &mut [IoOp]) -> bool {
        self.window_seq = self.window_seq.wrapping_add(1);
        let seq = self.window_seq as u64;
        for (i, op) in window.iter_mut().enumerate() {
            let e = self.entry(op).user_data(seq << 32 | i as u64);
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
                        self.poison(window, &done);
                        return false;
                    }
                }
            }
            for cqe in self.ring.completion() {
                let (s, i) = (
                    cqe.user_data() >> 32,
                    (cqe.user_data() & 0xffff_ffff) as usize,
                );
                if s != seq || i >= window.len() || done[i] {
                    // Not one of this window's requests: never credit it.
                    tracing::error!(
                        user_data = cqe.user_data(),
                        "stray io_uring completion ignored"
                    );
                    continue;
                }
                window[i].result = cqe.result() as i64;
                done[i] = true;
                left -= 1;
            }
        }
        // Every request came back with its own result; a submit error that the requests
        // survived is still reported on the ops that succeeded, so the caller does not trust
        // a batch whose submission misbehaved.
        if let Some(errno) = first_error {
            for op in window.iter_mut().filter(|op| op.result >= 0) {
                op.result = -(errno as i64);
            }
        }
        true
    }

    /// The ring cannot be drained: ops still out keep their buffers forever (leaked, so the
    /// pool never hands memory the kernel may still use to anyone else) and fail with EIO.
    fn poison(&mut self, window: &mut [IoOp], done: &[bool]) {
        tracing::error!(
            "io_uring ring could not be drained; poisoned (device I/O fails from now on)"
        );
        self.poisoned = true;
        for (op, &d) in window.iter_mut().zip(done) {
            if !d {
                if let Some(b) = op.buf.take() {
                    std::mem::forget(b);
                }
                op.result = -(libc::EIO as i64);
            }
        }
    }
}

impl DeviceIo for UringDevice {
    fn execute(&mut self, ops: &mut [IoOp]) {
        let cap = self.ring.params().sq_entries() as usize;
        for window in ops.chunks_mut(cap) {
            if self.poisoned || !self.run_window(window) {
                break;
            }
        }
        if self.poisoned {
            // Windows not run (or after the poisoned one) fail too; their buffers were never
            // handed to the kernel.
            for op in ops
                .iter_mut()
                .filter(|op| op.result == 0 && op.buf.is_some())
            {
                op.result = -(libc::EIO as i64);
            }
            for op in ops.iter_mut().filter(|op| op.kind == OpKind::Sync) {
                op.result = -(libc::EIO as i64);
            }
        }
    }

    fn kind(&self) -> &'static str {
        if self.sqpoll {
            "io_uring+sqpoll"
        } else {
            "io_uring"
        }
    }
}

/// pread/pwrite/fdatasync, one syscall per op: where io_uring is unavailable.
pub struct SyncDevice {
    pub file: File,
}

impl DeviceIo for SyncDevice {
    fn execute(&mut self, ops: &mut [IoOp]) {
        for op in ops {
            let r = match op.kind {
                OpKind::Sync => self.file.sync_data().map(|()| 0),
                OpKind::Read => {
                    let b = op.buf.as_mut().expect("buffer");
                    self.file.read_at(b.as_mut(), op.offset)
                }
                OpKind::Write => {
                    let b = op.buf.as_ref().expect("buffer");
                    self.file.write_at(b.as_ref(), op.offset)
                }
            };
            op.result = match r {
                Ok(n) => n as i64,
                Err(e) => -(e.raw_os_error().unwrap_or(libc::EIO) as i64),
            };
        }
    }

    fn kind(&self) -> &'static str {
        "pread/pwrite"
    }
}

/// The io_uring backend, or the pread/pwrite one with a log line when the kernel refuses
/// io_uring (old kernel, seccomp, io_uring_disabled).
pub fn backend(
    file: File,
    entries: u32,
    sqpoll_idle_ms: Option<u32>,
    mem: &IoMemory,
    use_uring: bool,
) -> Box<dyn DeviceIo> {
    if use_uring {
        match file
            .try_clone()
            .and_then(|f| UringDevice::new(f, entries, sqpoll_idle_ms, mem))
        {
            Ok(d) => return Box::new(d),
            Err(e) => {
                tracing::warn!(error = %e, "io_uring unavailable; falling back to pread/pwrite")
            }
        }
    }
    Box::new(SyncDevice { file })
}

#[cfg(test)]
mod uring_error_tests;
