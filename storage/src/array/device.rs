//! The device backend interface and its implementations: io_uring on a file or block device
//! (default), pread/pwrite (fallback where io_uring is refused), and NVMe passthrough (NVMe
//! commands through io_uring on a namespace's `/dev/ngXnY`, chosen by naming that device).

pub mod nvme;
mod ring;

use super::io_thread::DeviceCounters;
use super::iomem::{IoBuf, IoMemory};
pub use nvme::{Namespace, is_generic_device};
pub use ring::{RingDevice, UringDevice};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

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
    /// "io_uring", "io_uring+sqpoll", "nvme-passthrough" or "pread/pwrite": for the
    /// start-up log and metrics.
    fn kind(&self) -> &'static str;
}

pub struct OpenedDevice {
    pub file: File,
    pub size: u64,
    pub direct: bool,
    /// Set for an NVMe generic device: I/O goes as NVMe commands (passthrough).
    pub nvme: Option<Namespace>,
    /// For a generic device: its namespace's block device, held open exclusively (the
    /// character device has no exclusive claim of its own) so that nothing mounts it while
    /// the appliance writes; every backend keeps a copy.
    pub claim: Option<File>,
}

/// Opens (creating a regular file of `create_bytes` if absent) with O_DIRECT, falling back to
/// buffered I/O with a log line where the filesystem refuses O_DIRECT (tmpfs). An NVMe generic
/// device (`/dev/ngXnY`) is opened for passthrough: no read(2)/write(2) reach it, only
/// commands, so it has neither page cache nor O_DIRECT.
pub fn open_device(path: &Path, create_bytes: u64, direct: bool) -> std::io::Result<OpenedDevice> {
    if is_generic_device(path) {
        let claim = match nvme::block_name(path).map(|b| Path::new("/dev").join(b)) {
            Some(block) if block.exists() => Some(exclusive(&block)?),
            _ => None,
        };
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let ns = nvme::probe(path, &file)?;
        return Ok(OpenedDevice {
            file,
            size: ns.size_bytes,
            direct: true,
            nvme: Some(ns),
            claim,
        });
    }
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
    // A whole block device is claimed exclusively (O_EXCL): refused while mounted or held by
    // LVM, RAID or dm, and nothing can mount it while the appliance holds it.
    let excl = if std::fs::metadata(path).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_block_device()
    }) {
        libc::O_EXCL
    } else {
        0
    };
    let open = |flags: i32| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags | excl)
            .open(path)
            .map_err(|e| in_use(path, e))
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
    Ok(OpenedDevice {
        file,
        size,
        direct,
        nvme: None,
        claim: None,
    })
}

/// `path` opened read-only with O_EXCL: the block layer's exclusive claim.
fn exclusive(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(path)
        .map_err(|e| in_use(path, e))
}

/// EBUSY from an exclusive open, said plainly.
fn in_use(path: &Path, e: std::io::Error) -> std::io::Error {
    if e.raw_os_error() == Some(libc::EBUSY) {
        std::io::Error::new(
            e.kind(),
            format!(
                "{} is in use (mounted, or held by LVM, RAID, dm or another process): the appliance needs the whole device",
                path.display()
            ),
        )
    } else {
        e
    }
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

/// How a device is driven: the passthrough backend for an NVMe generic device (it has no
/// other), else the io_uring backend, or the pread/pwrite one with a log line when the kernel
/// refuses io_uring (old kernel, seccomp, io_uring_disabled).
pub fn backend(
    dev: &OpenedDevice,
    ring: RingSettings,
    mem: &IoMemory,
    counters: &Arc<DeviceCounters>,
) -> std::io::Result<Box<dyn DeviceIo>> {
    let file = dev.file.try_clone()?;
    if let Some(ns) = &dev.nvme {
        let claim = dev.claim.as_ref().map(File::try_clone).transpose()?;
        let d = nvme::open(file, ns.clone(), claim, ring.entries, mem, counters.clone()).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("NVMe passthrough needs io_uring with 128-byte entries (Linux 5.19 or later): {e}"),
            )
        })?;
        return Ok(Box::new(d));
    }
    if ring.io_uring {
        match file
            .try_clone()
            .and_then(|f| UringDevice::new(f, ring.entries, ring.sqpoll_idle_ms, mem))
        {
            Ok(d) => return Ok(Box::new(d)),
            Err(e) => {
                tracing::warn!(error = %e, "io_uring unavailable; falling back to pread/pwrite")
            }
        }
    }
    Ok(Box::new(SyncDevice { file }))
}

/// The `[storage]` settings of a device's rings.
#[derive(Debug, Clone, Copy)]
pub struct RingSettings {
    pub io_uring: bool,
    pub entries: u32,
    pub sqpoll_idle_ms: Option<u32>,
}

#[cfg(test)]
mod uring_error_tests;
