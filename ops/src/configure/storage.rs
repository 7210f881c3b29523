//! The accounts engine's devices: present, not mounted, large enough, blank or already this
//! array's at the configured position, O_DIRECT-capable; and io_uring allowed by the kernel.
//! Nothing to apply: the appliance formats blank devices at first start.

use super::Finding;
use appliance::config::{Config, StorageEngine};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
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
        out.push(device(i, path, cfg.storage.device_bytes, min_bytes));
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

fn device(i: usize, path: &Path, create_bytes: u64, min_bytes: u64) -> Finding {
    let name = format!("device #{i} {}", path.display());
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
    match read_label(&file) {
        Ok(None) => Finding::pass(format!(
            "{name}: blank, {size} bytes; formatted at first start"
        )),
        Ok(Some(l)) if l.index as usize == i => Finding::pass(format!(
            "{name}: device #{} of array {:016x} ({} devices), {size} bytes",
            l.index, l.array_id, l.n_devices
        )),
        Ok(Some(l)) => Finding::fail(
            format!(
                "{name}: is device #{} of array {:016x}, configured as #{i}",
                l.index, l.array_id
            ),
            "list the devices in the order they were formatted in",
        ),
        Err(reason) => Finding::fail(
            format!("{name}: {reason}"),
            "if this device is meant for the appliance, wipe its first 4 KiB (blkdiscard, or dd if=/dev/zero bs=4096 count=1); otherwise list another device",
        ),
    }
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
