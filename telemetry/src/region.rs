//! A `#[repr(C)]` value of counters placed in a shared-memory file.

use std::path::Path;

/// # Safety
/// The all-zero bit pattern must be a valid value of the type, and the type must hold no
/// pointers (it is shared with other processes).
pub unsafe trait ZeroValid: Sync + 'static {}

unsafe impl ZeroValid for std::sync::atomic::AtomicU64 {}
unsafe impl<T: ZeroValid, const N: usize> ZeroValid for [T; N] {}
unsafe impl ZeroValid for crate::TileStats {}
unsafe impl ZeroValid for crate::LatencyHistogram {}

/// A value of `T` with every byte zero (a counter struct's start: no hand list of fields).
pub fn zeroed<T: ZeroValid>() -> T {
    // SAFETY: T is valid when zeroed (ZeroValid).
    unsafe { std::mem::zeroed() }
}

#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is {actual} bytes, expected {expected}: not written by this version")]
    Size {
        path: String,
        actual: u64,
        expected: u64,
    },
}

/// A mapping of one `T`. Created regions are zeroed; mappings live until the process exits
/// (readers and writers hold `&'static T`).
pub struct SharedRegion;

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RegionError {
    let path = path.display().to_string();
    move |source| RegionError::Io { op, path, source }
}

impl SharedRegion {
    /// Create (or replace) the file at `path`, sized and zeroed for one `T`, mapped read-write.
    pub fn create<T: ZeroValid>(path: &Path) -> Result<&'static T, RegionError> {
        let _ = std::fs::remove_file(path);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io("create", path))?;
        file.set_len(std::mem::size_of::<T>() as u64)
            .map_err(io("size", path))?;
        Self::map(path, &file, true)
    }

    /// Map an existing region read-only (a reader in another process).
    pub fn open<T: ZeroValid>(path: &Path) -> Result<&'static T, RegionError> {
        let file = std::fs::File::open(path).map_err(io("open", path))?;
        let len = file.metadata().map_err(io("stat", path))?.len();
        if len != std::mem::size_of::<T>() as u64 {
            return Err(RegionError::Size {
                path: path.display().to_string(),
                actual: len,
                expected: std::mem::size_of::<T>() as u64,
            });
        }
        Self::map(path, &file, false)
    }

    /// Heap-backed region for tests and benches that need no sharing.
    pub fn private<T: ZeroValid>() -> &'static T {
        let layout = std::alloc::Layout::new::<T>();
        // SAFETY: T is valid when zeroed (ZeroValid); the allocation is leaked on purpose.
        unsafe { &*(std::alloc::alloc_zeroed(layout) as *const T) }
    }

    fn map<T: ZeroValid>(
        path: &Path,
        file: &std::fs::File,
        write: bool,
    ) -> Result<&'static T, RegionError> {
        use std::os::fd::AsRawFd;
        let prot = if write {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: mapping a file we sized to size_of::<T>(); page alignment satisfies T's.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<T>(),
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io("mmap", path)(std::io::Error::last_os_error()));
        }
        // SAFETY: zero-filled file, T is ZeroValid; never unmapped, so 'static holds.
        Ok(unsafe { &*(ptr as *const T) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TileStats;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_reader_sees_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("region");
        let w: &[TileStats; 4] = SharedRegion::create(&p).unwrap();
        w[2].add_in(7);
        let r: &[TileStats; 4] = SharedRegion::open(&p).unwrap();
        assert_eq!(r[2].in_total.load(Ordering::Relaxed), 7);
        assert!(matches!(
            SharedRegion::open::<[TileStats; 5]>(&p),
            Err(RegionError::Size { .. })
        ));
    }
}
