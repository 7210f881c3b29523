//! The accounts engine's devices: present, not mounted, large enough, blank or already this
//! array's at the configured position, O_DIRECT-capable; and io_uring allowed by the kernel.
//! An NVMe namespace listed by its generic device (`/dev/ngXnY`) is checked by reading its
//! first block with an NVMe command through io_uring (passthrough works or it does not); one
//! listed as a block device is told whether passthrough is there to use instead.
//! Nothing to apply: the appliance formats blank devices at first start.

use super::Finding;
use appliance::config::{Config, StorageEngine};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use storage::array::device::{self, IoOp, nvme};
use storage::array::iomem::IoMemory;
use storage::array::layout::Label;

pub fn check(cfg: &Config) -> Vec<Finding> {
    if cfg.storage.engine == StorageEngine::Log {
        return vec![Finding::pass(format!(
            "log engine in {}",
            cfg.data_dir.display()
        ))];
    }
    let mut out = vec![io_uring()];
    let min_bytes = 4 * cfg.storage.segment_bytes;
    for (i, path) in cfg.storage.device_paths(&cfg.data_dir).iter().enumerate() {
        out.push(device(
            i,
            path,
            cfg.storage.device_bytes,
            min_bytes,
            cfg.storage.block_size,
        ));
    }
    out
}

fn io_uring() -> Finding {
    match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_string())
        .as_deref()
    {
        Ok("0") | Err(_) => Finding::pass("io_uring enabled"),
        Ok("1") => Finding::warn(
            "io_uring limited to privileged processes (kernel.io_uring_disabled=1)",
            "run the appliance as root or with CAP_SYS_ADMIN, or sysctl kernel.io_uring_disabled=0",
        ),
        Ok(v) => Finding::warn(
            format!(
                "io_uring disabled (kernel.io_uring_disabled={v}): storage falls back to pread/pwrite"
            ),
            "sysctl -w kernel.io_uring_disabled=0",
        ),
    }
}

fn mounted(path: &Path) -> bool {
    let Ok(real) = std::fs::canonicalize(path) else {
        return false;
    };
    let real = real.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/mounts").is_ok_and(|m| {
        m.lines()
            .filter_map(|l| l.split_whitespace().next())
            .any(|src| src == real || (src.starts_with(&real) && src.len() > real.len()))
    })
}

fn device(i: usize, path: &Path, create_bytes: u64, min_bytes: u64, block_size: usize) -> Finding {
    let name = format!("device #{i} {}", path.display());
    if nvme::is_generic_device(path) {
        return passthrough(i, &name, path, min_bytes, block_size);
    }
    let Ok(meta) = std::fs::metadata(path) else {
        if path.starts_with("/dev") {
            return Finding::fail(
                format!("{name}: no such block device"),
                "list the NVMe namespaces with `lsblk -d -o NAME,SIZE,MODEL` and fix storage.devices",
            );
        }
        return match path.parent().map(free_bytes) {
            Some(Some(free)) if free >= create_bytes => Finding::pass(format!(
                "{name}: will be created ({create_bytes} bytes, {free} free)"
            )),
            Some(Some(free)) => Finding::fail(
                format!("{name}: needs {create_bytes} bytes, {free} free"),
                "free space there, lower storage.device_bytes, or list a block device",
            ),
            _ => Finding::warn(
                format!("{name}: will be created; its directory does not exist yet"),
                "the appliance creates it at start; check that the parent is on the disk you mean",
            ),
        };
    };
    let block = meta.file_type().is_block_device();
    if block && mounted(path) {
        return Finding::fail(
            format!("{name}: mounted (it or a partition of it)"),
            "unmount it and remove it from /etc/fstab: the appliance owns the whole device",
        );
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            return Finding::warn(
                format!("{name}: the filesystem refuses O_DIRECT; I/O goes through the page cache"),
                "put device files on ext4/xfs or use a block device",
            );
        }
        Err(e) => {
            return Finding::fail(
                format!("{name}: cannot open: {e}"),
                "run as root, or give the service user access to the device",
            );
        }
    };
    let size = {
        use std::io::Seek;
        let mut f = &file;
        f.seek(std::io::SeekFrom::End(0)).unwrap_or(0)
    };
    if size < min_bytes {
        return Finding::fail(
            format!("{name}: {size} bytes, smaller than four segments ({min_bytes})"),
            "use a larger device or lower storage.segment_bytes",
        );
    }
    let label = match read_label(&file) {
        Ok(l) => l,
        Err(reason) => return not_ours(&name, reason),
    };
    let mut f = labelled(i, &name, size, label);
    if let Some(ng) = generic_of(path).filter(|ng| nvme::is_generic_device(ng)) {
        f.what += &format!(
            "; NVMe passthrough available: list {} to submit NVMe commands from user space",
            ng.display()
        );
    }
    f
}

/// `/dev/ngCnN` for `/dev/nvmeCnN`.
fn generic_of(block: &Path) -> Option<std::path::PathBuf> {
    let name = block.file_name()?.to_str()?.strip_prefix("nvme")?;
    name.contains('n')
        .then(|| block.with_file_name(format!("ng{name}")))
}

/// A generic device: its namespace, then block 0 read with an NVMe Read command.
fn passthrough(i: usize, name: &str, path: &Path, min_bytes: u64, block_size: usize) -> Finding {
    let fix = "NVMe passthrough needs Linux 5.19 or later, io_uring allowed (kernel.io_uring_disabled=0) and read-write access to the device; or list the block device (/dev/nvmeXnY) instead";
    if let Some(block) = nvme::block_name(path) {
        let dev = Path::new("/dev").join(&block);
        let held = std::fs::read_dir(Path::new("/sys/block").join(&block).join("holders"))
            .is_ok_and(|mut d| d.next().is_some());
        if mounted(&dev) || held {
            return Finding::fail(
                format!(
                    "{name}: its namespace {} is mounted or held (LVM, RAID, dm)",
                    dev.display()
                ),
                "unmount it, remove it from /etc/fstab and from any volume group or array: the appliance owns the whole device",
            );
        }
    }
    // Opened without the appliance's exclusive claim: a running appliance holds it, and the
    // check must still read the device.
    let probed = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .and_then(|file| nvme::probe(path, &file).map(|ns| (file, ns)));
    let (file, ns) = match probed {
        Ok(p) => p,
        Err(e) => return Finding::fail(format!("{name}: no NVMe passthrough: {e}"), fix),
    };
    if !block_size.is_multiple_of(ns.lba_bytes as usize) {
        return Finding::fail(
            format!(
                "{name}: the namespace's LBA is {} bytes; storage.block_size ({block_size}) must be a multiple of it",
                ns.lba_bytes
            ),
            "set storage.block_size to 4096, or format the namespace with a smaller LBA",
        );
    }
    let opened = device::OpenedDevice {
        file,
        size: ns.size_bytes,
        direct: true,
        nvme: Some(ns.clone()),
        claim: None,
    };
    let mem = IoMemory::new(4096, 1 << 16, 2, 1);
    let ring = device::RingSettings {
        io_uring: true,
        entries: 8,
        sqpoll_idle_ms: None,
    };
    let mut dev = match device::backend(&opened, ring, &mem, &Default::default()) {
        Ok(d) => d,
        Err(e) => return Finding::fail(format!("{name}: no NVMe passthrough: {e}"), fix),
    };
    let mut op = [IoOp::read(0, mem.alloc(4096))];
    dev.execute(&mut op);
    if let Some(e) = op[0].error() {
        return Finding::fail(
            format!("{name}: an NVMe Read through io_uring failed: {e}"),
            fix,
        );
    }
    let what = format!(
        "{name}: NVMe passthrough (namespace {}, {}-byte LBAs, {} KiB per command)",
        ns.nsid,
        ns.lba_bytes,
        ns.max_transfer / 1024
    );
    if ns.size_bytes < min_bytes {
        return Finding::fail(
            format!(
                "{what}: {} bytes, smaller than four segments ({min_bytes})",
                ns.size_bytes
            ),
            "use a larger namespace or lower storage.segment_bytes",
        );
    }
    match Label::decode(op[0].buf.as_ref().expect("read buffer").as_ref()) {
        Ok(label) => labelled(i, &what, ns.size_bytes, label),
        Err(reason) => not_ours(&what, reason),
    }
}

fn labelled(i: usize, name: &str, size: u64, label: Option<Label>) -> Finding {
    match label {
        None => Finding::pass(format!(
            "{name}: blank, {size} bytes; formatted at first start"
        )),
        Some(l) if l.index as usize == i => Finding::pass(format!(
            "{name}: device #{} of array {:016x} ({} devices), {size} bytes",
            l.index, l.array_id, l.n_devices
        )),
        Some(l) => Finding::fail(
            format!(
                "{name}: is device #{} of array {:016x}, configured as #{i}",
                l.index, l.array_id
            ),
            "list the devices in the order they were formatted in",
        ),
    }
}

fn not_ours(name: &str, reason: String) -> Finding {
    Finding::fail(
        format!("{name}: {reason}"),
        "if this device is meant for the appliance, wipe its first 4 KiB (blkdiscard, or dd if=/dev/zero bs=4096 count=1); otherwise list another device",
    )
}

fn read_label(file: &std::fs::File) -> Result<Option<Label>, String> {
    use std::os::unix::fs::FileExt;
    let layout = std::alloc::Layout::from_size_align(4096, 4096).expect("aligned layout");
    // O_DIRECT needs an aligned buffer.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!ptr.is_null(), "out of memory");
    let buf = unsafe { std::slice::from_raw_parts_mut(ptr, 4096) };
    let r = file
        .read_exact_at(buf, 0)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|()| Label::decode(buf));
    unsafe { std::alloc::dealloc(ptr, layout) };
    r
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out-pointer.
    (unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0)
        .then(|| st.f_bavail as u64 * st.f_frsize as u64)
}
