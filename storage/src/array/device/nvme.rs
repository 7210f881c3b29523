//! NVMe passthrough: the array's reads, writes and syncs as NVMe Read, Write and Flush
//! commands submitted through io_uring (`IORING_OP_URING_CMD`) on a namespace's generic
//! character device (`/dev/ngXnY`, Linux ≥ 5.19). The kernel hands each command to the
//! controller's I/O queue as it is: no block layer, no page cache, no filesystem; the records,
//! the commit protocol and the crash guarantees are the ones the file backend has (a Flush
//! command is what fdatasync becomes on an NVMe device).
//!
//! A namespace is found from its generic device: `ngCnN` is namespace N of controller C, whose
//! block device `nvmeCnN` carries the namespace's size, LBA size and transfer limit in sysfs.
//! An op larger than the transfer limit goes as several commands.

use super::ring::{RingDevice, RingOps};
use super::{IoOp, OpKind};
use crate::array::io_thread::DeviceCounters;
use crate::array::iomem::IoMemory;
use io_uring::{cqueue, opcode, squeue, types};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// NVMe I/O command set opcodes.
const NVME_CMD_FLUSH: u8 = 0x00;
const NVME_CMD_WRITE: u8 = 0x01;
const NVME_CMD_READ: u8 = 0x02;
/// `_IO('N', 0x40)`: the namespace id of an NVMe device node.
const NVME_IOCTL_ID: libc::c_ulong = 0x4e40;
/// `_IOWR('N', 0x80, struct nvme_uring_cmd)`: an I/O command through io_uring.
const NVME_URING_CMD_IO: u32 = 0xc048_4e80;
/// `struct nvme_uring_cmd` is 72 bytes of the SQE's 80-byte command area.
const URING_CMD_BYTES: usize = 72;

/// What the array needs to know of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub nsid: u32,
    /// Logical block (LBA) size in bytes.
    pub lba_bytes: u32,
    pub size_bytes: u64,
    /// The most one command may transfer.
    pub max_transfer: u32,
}

/// Whether `path` names an NVMe generic character device (`/dev/ngXnY`, or a link to one such
/// as a stable name the operator made).
pub fn is_generic_device(path: &Path) -> bool {
    std::fs::canonicalize(path).is_ok_and(|real| generic_name(&real).is_some())
        && std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

/// `ngCnN` of `/dev/ngCnN`, when the name has that form.
fn generic_name(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("ng")?;
    let (c, n) = rest.split_once('n')?;
    (!c.is_empty()
        && !n.is_empty()
        && c.bytes().all(|b| b.is_ascii_digit())
        && n.bytes().all(|b| b.is_ascii_digit()))
    .then_some(name)
}

/// The block device of a generic device (`/dev/ngCnN` -> `nvmeCnN`): the same namespace,
/// through the block layer. Its sysfs directory carries the geometry; holding it open
/// exclusively keeps the namespace from being mounted while the appliance uses it.
pub fn block_name(path: &Path) -> Option<String> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = generic_name(&real)?;
    Some(format!("nvme{}", &name[2..]))
}

/// `/sys/block/nvmeCnN` for a generic device.
pub fn sysfs_dir(path: &Path) -> Option<PathBuf> {
    Some(Path::new("/sys/block").join(block_name(path)?))
}

fn read_number(p: &Path) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(p)?;
    text.trim().parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: not a number: {:?}", p.display(), text.trim()),
        )
    })
}

/// The namespace behind the open generic device `file` (named `path`).
pub fn probe(path: &Path, file: &File) -> std::io::Result<Namespace> {
    let sys = sysfs_dir(path).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} is not an NVMe generic device (/dev/ngXnY)",
                path.display()
            ),
        )
    })?;
    // SAFETY: NVME_IOCTL_ID takes no argument and returns the namespace id.
    let nsid = unsafe { libc::ioctl(file.as_raw_fd(), NVME_IOCTL_ID) };
    if nsid <= 0 {
        return Err(std::io::Error::last_os_error());
    }
    let lba_bytes = read_number(&sys.join("queue/logical_block_size"))? as u32;
    // sysfs counts the size in 512-byte sectors whatever the LBA size.
    let size_bytes = read_number(&sys.join("size"))? * 512;
    let max_kib = read_number(&sys.join("queue/max_hw_sectors_kb"))?;
    // The kernel maps a command's user pages as one segment each (the I/O pool's pages may
    // not be contiguous): a command larger than max_segments pages is refused.
    let segments = read_number(&sys.join("queue/max_segments")).unwrap_or(128);
    let max_transfer = (max_kib * 1024)
        .min(segments.saturating_sub(1).max(1) * 4096)
        .min(u32::MAX as u64) as u32;
    // Namespaces formatted with per-block metadata or protection information need a
    // metadata buffer with every command; the array has none to give.
    if read_number(&sys.join("metadata_bytes")).is_ok_and(|m| m > 0) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!(
                "{}: the namespace is formatted with metadata per block; format it without (nvme format --lbaf=N with ms=0)",
                path.display()
            ),
        ));
    }
    if !lba_bytes.is_power_of_two() || lba_bytes < 512 || max_transfer < lba_bytes {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{}: unusable namespace geometry (LBA {lba_bytes} bytes, transfer limit {max_transfer} bytes)",
                path.display()
            ),
        ));
    }
    Ok(Namespace {
        nsid: nsid as u32,
        lba_bytes,
        size_bytes,
        max_transfer,
    })
}

/// A `struct nvme_uring_cmd` for the I/O queue: `slba`/`blocks` in LBAs (`blocks` ≥ 1 for
/// reads and writes; unused by Flush).
pub fn command(
    opcode: u8,
    nsid: u32,
    addr: u64,
    data_len: u32,
    slba: u64,
    blocks: u32,
) -> [u8; 80] {
    let mut c = [0u8; 80];
    c[0] = opcode;
    c[4..8].copy_from_slice(&nsid.to_ne_bytes());
    c[24..32].copy_from_slice(&addr.to_ne_bytes());
    c[36..40].copy_from_slice(&data_len.to_ne_bytes());
    if opcode != NVME_CMD_FLUSH {
        c[40..44].copy_from_slice(&(slba as u32).to_ne_bytes());
        c[44..48].copy_from_slice(&((slba >> 32) as u32).to_ne_bytes());
        // CDW12 bits 15:0: the number of logical blocks, zero-based.
        c[48..52].copy_from_slice(&(blocks - 1).to_ne_bytes());
    }
    debug_assert!(c[URING_CMD_BYTES..].iter().all(|&b| b == 0));
    c
}

/// The commands of one op on a namespace: (command, bytes it moves). An op at an offset or of
/// a length that is not a whole number of LBAs, or beyond the namespace, gets no command
/// (`Err(errno)`).
pub fn commands(ns: &Namespace, op: &mut IoOp) -> Result<Vec<([u8; 80], u32)>, i32> {
    if op.kind == OpKind::Sync {
        return Ok(vec![(command(NVME_CMD_FLUSH, ns.nsid, 0, 0, 0, 0), 0)]);
    }
    let buf = op.buf.as_mut().ok_or(libc::EINVAL)?;
    let opcode = if op.kind == OpKind::Read {
        NVME_CMD_READ
    } else {
        NVME_CMD_WRITE
    };
    let lba = ns.lba_bytes as u64;
    let len = buf.len() as u64;
    if !op.offset.is_multiple_of(lba) || !len.is_multiple_of(lba) || len == 0 {
        return Err(libc::EINVAL);
    }
    if op
        .offset
        .checked_add(len)
        .is_none_or(|end| end > ns.size_bytes)
    {
        return Err(libc::ENOSPC);
    }
    // Whole LBAs per command, and at most 65536 of them (CDW12's 16-bit count).
    let step = (ns.max_transfer as u64 / lba * lba).min(lba << 16);
    let base = buf.as_ptr() as u64;
    let mut out = Vec::with_capacity(len.div_ceil(step) as usize);
    let mut at = 0;
    while at < len {
        let n = step.min(len - at);
        let cmd = command(
            opcode,
            ns.nsid,
            base + at,
            n as u32,
            (op.offset + at) / lba,
            (n / lba) as u32,
        );
        out.push((cmd, n as u32));
        at += n;
    }
    Ok(out)
}

/// NVMe commands on one namespace's generic device.
pub struct NvmeOps {
    file: File,
    ns: Namespace,
    counters: Arc<DeviceCounters>,
    /// The namespace's block device held exclusively while this ring lives.
    _claim: Option<File>,
}

/// The passthrough backend.
pub type NvmeDevice = RingDevice<NvmeOps>;

/// A ring on the generic device `file` (opened read-write) for namespace `ns`. Passthrough
/// needs 128-byte submission and 32-byte completion entries.
pub fn open(
    file: File,
    ns: Namespace,
    claim: Option<File>,
    entries: u32,
    mem: &IoMemory,
    counters: Arc<DeviceCounters>,
) -> std::io::Result<NvmeDevice> {
    let ops = NvmeOps {
        file,
        ns,
        counters,
        _claim: claim,
    };
    RingDevice::with_ops(ops, entries, None, mem)
}

impl RingOps for NvmeOps {
    type Sqe = squeue::Entry128;
    type Cqe = cqueue::Entry32;

    fn requests(
        &self,
        op: &mut IoOp,
        _fixed: bool,
        out: &mut Vec<(squeue::Entry128, u32)>,
    ) -> Result<(), i32> {
        let fd = types::Fd(self.file.as_raw_fd());
        let cmds = commands(&self.ns, op).inspect_err(|_| {
            tracing::error!(
                offset = op.offset,
                len = op.len(),
                lba = self.ns.lba_bytes,
                "I/O not on whole logical blocks of the namespace, or beyond it"
            )
        })?;
        out.extend(cmds.into_iter().map(|(cmd, bytes)| {
            let sqe = opcode::UringCmd80::new(fd, NVME_URING_CMD_IO)
                .cmd(cmd)
                .build();
            (sqe, bytes)
        }));
        Ok(())
    }

    fn tag(sqe: squeue::Entry128, user_data: u64) -> squeue::Entry128 {
        sqe.user_data(user_data)
    }

    fn completion(cqe: &cqueue::Entry32) -> (u64, i32) {
        (cqe.user_data(), cqe.result())
    }

    /// 0: the command succeeded (it moved `bytes`); negative: an errno from the kernel;
    /// positive: the NVMe status the controller returned.
    fn outcome(&self, res: i32, bytes: u32) -> i64 {
        let c = &self.counters;
        match res {
            0 => {
                c.nvme_commands.fetch_add(1, Ordering::Relaxed);
                bytes as i64
            }
            r if r < 0 => r as i64,
            status => {
                c.nvme_status_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    status = format!("{status:#x}"),
                    sct = (status >> 8) & 0x7,
                    sc = status & 0xff,
                    "NVMe command failed"
                );
                -(libc::EIO as i64)
            }
        }
    }

    fn kind(&self, _sqpoll: bool) -> &'static str {
        "nvme-passthrough"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> Namespace {
        Namespace {
            nsid: 1,
            lba_bytes: 512,
            size_bytes: 1 << 30,
            max_transfer: 128 << 10,
        }
    }

    fn u32_at(c: &[u8; 80], at: usize) -> u32 {
        u32::from_ne_bytes(c[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn generic_device_names_map_to_their_block_device() {
        assert_eq!(
            sysfs_dir(Path::new("/dev/ng0n1")),
            Some(PathBuf::from("/sys/block/nvme0n1"))
        );
        assert_eq!(
            sysfs_dir(Path::new("/dev/ng12n3")),
            Some(PathBuf::from("/sys/block/nvme12n3"))
        );
        for not in [
            "/dev/nvme0n1",
            "/dev/ng0",
            "/dev/ngxn1",
            "/dev/ng0n",
            "/tmp/ng0n1x",
        ] {
            assert_eq!(sysfs_dir(Path::new(not)), None, "{not}");
        }
        // A character device of another kind is not one.
        assert!(!is_generic_device(Path::new("/dev/null")));
    }

    #[test]
    fn commands_carry_the_nvme_layout() {
        let c = command(NVME_CMD_WRITE, 7, 0x1000, 8192, 0x1_0000_0002, 16);
        assert_eq!(c[0], 0x01);
        assert_eq!(u32_at(&c, 4), 7, "nsid");
        assert_eq!(u64::from_ne_bytes(c[24..32].try_into().unwrap()), 0x1000);
        assert_eq!(u32_at(&c, 36), 8192, "data_len");
        assert_eq!(u32_at(&c, 40), 2, "SLBA low");
        assert_eq!(u32_at(&c, 44), 1, "SLBA high");
        assert_eq!(u32_at(&c, 48), 15, "zero-based block count");
        let f = command(NVME_CMD_FLUSH, 7, 0, 0, 0, 0);
        assert_eq!((f[0], u32_at(&f, 4), u32_at(&f, 48)), (0, 7, 0));
    }

    #[test]
    fn an_op_beyond_the_transfer_limit_is_split_on_whole_blocks() {
        let mem = IoMemory::new(4096, 1 << 20, 1, 1);
        let mut op = IoOp::write(1 << 20, mem.alloc(300 << 10));
        let cmds = commands(&ns(), &mut op).unwrap();
        let sizes: Vec<u32> = cmds.iter().map(|(_, n)| *n).collect();
        assert_eq!(sizes, vec![128 << 10, 128 << 10, 44 << 10]);
        let base = op.buf.as_ref().unwrap().as_ptr() as u64;
        for (i, (c, _)) in cmds.iter().enumerate() {
            let at = i as u64 * (128 << 10);
            assert_eq!(u64::from_ne_bytes(c[24..32].try_into().unwrap()), base + at);
            assert_eq!(u32_at(c, 40) as u64, ((1 << 20) + at) / 512);
        }
        assert_eq!(u32_at(&cmds[2].0, 48), (44 << 10) / 512 - 1);
    }

    #[test]
    fn a_read_or_write_without_a_buffer_is_refused_not_a_flush() {
        let mut op = IoOp::sync();
        op.kind = OpKind::Write;
        assert_eq!(commands(&ns(), &mut op), Err(libc::EINVAL));
    }

    #[test]
    fn ops_off_block_boundaries_or_beyond_the_namespace_are_refused() {
        let mem = IoMemory::new(4096, 1 << 20, 2, 1);
        let mut odd = IoOp::read(100, mem.alloc(4096));
        assert_eq!(commands(&ns(), &mut odd), Err(libc::EINVAL));
        let mut past = IoOp::read((1 << 30) - 512, mem.alloc(4096));
        assert_eq!(commands(&ns(), &mut past), Err(libc::ENOSPC));
        let mut sync = IoOp::sync();
        let flush = commands(&ns(), &mut sync).unwrap();
        assert_eq!(
            (flush.len(), flush[0].0[0], flush[0].1),
            (1, NVME_CMD_FLUSH, 0)
        );
    }
}
