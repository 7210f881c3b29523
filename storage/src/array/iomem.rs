//! Page-aligned I/O buffers for O_DIRECT, carved from one region that is backed by hugepages
//! when they are reserved (MAP_HUGETLB) and by normal pages otherwise (one warning). The
//! region is registered with every io_uring as fixed buffer 0, so reads and writes into it
//! skip the kernel's per-I/O page pinning.
//!
//! Two size classes: block-sized buffers for account reads and chunk-sized buffers for log
//! writes and segment scans. A request the pool cannot serve (a 10 MiB account, or a dry
//! pool) gets an aligned heap buffer instead of waiting; those are counted.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const HUGE_2M: usize = 2 << 20;

struct Region {
    base: *mut u8,
    len: usize,
    huge: bool,
}
// The region is plain memory handed out in disjoint buffers.
unsafe impl Send for Region {}
unsafe impl Sync for Region {}

impl Drop for Region {
    fn drop(&mut self) {
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

pub struct IoMemory {
    region: Region,
    block: usize,
    chunk: usize,
    small_end: usize,
    small_free: Mutex<Vec<usize>>,
    large_free: Mutex<Vec<usize>>,
    pub heap_fallbacks: AtomicU64,
}

impl IoMemory {
    /// `small` block-sized and `large` chunk-sized buffers.
    pub fn new(block: usize, chunk: usize, small: usize, large: usize) -> Arc<IoMemory> {
        let want = block * small + chunk * large;
        let (base, len, huge) = map_region(want);
        let small_free = (0..small).map(|i| i * block).rev().collect();
        let large_free = (0..large)
            .map(|i| block * small + i * chunk)
            .rev()
            .collect();
        Arc::new(IoMemory {
            region: Region { base, len, huge },
            block,
            chunk,
            small_end: block * small,
            small_free: Mutex::new(small_free),
            large_free: Mutex::new(large_free),
            heap_fallbacks: AtomicU64::new(0),
        })
    }

    pub fn hugepage_backed(&self) -> bool {
        self.region.huge
    }

    /// The iovec to register as fixed buffer 0.
    pub fn iovec(&self) -> libc::iovec {
        libc::iovec {
            iov_base: self.region.base.cast(),
            iov_len: self.region.len,
        }
    }

    pub fn chunk_bytes(&self) -> usize {
        self.chunk
    }

    /// A zeroed, block-aligned buffer of at least `len` bytes (rounded up to the block size).
    pub fn alloc(self: &Arc<Self>, len: usize) -> IoBuf {
        let len = len.div_ceil(self.block) * self.block;
        let slot = if len <= self.block {
            self.small_free.lock().pop()
        } else if len <= self.chunk {
            self.large_free.lock().pop()
        } else {
            None
        };
        let buf = match slot {
            Some(off) => IoBuf {
                ptr: unsafe { self.region.base.add(off) },
                len,
                cap: len,
                source: Source::Pool(self.clone(), off),
            },
            None => {
                self.heap_fallbacks.fetch_add(1, Ordering::Relaxed);
                let layout =
                    std::alloc::Layout::from_size_align(len, 4096).expect("aligned layout");
                let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
                assert!(
                    !ptr.is_null(),
                    "out of memory allocating an I/O buffer of {len} bytes"
                );
                IoBuf {
                    ptr,
                    len,
                    cap: len,
                    source: Source::Heap(layout),
                }
            }
        };
        let mut buf = buf;
        buf.as_mut().fill(0);
        buf
    }

    fn release(&self, off: usize) {
        if off < self.small_end {
            self.small_free.lock().push(off);
        } else {
            self.large_free.lock().push(off);
        }
    }
}

fn map_region(want: usize) -> (*mut u8, usize, bool) {
    let huge_len = want.div_ceil(HUGE_2M) * HUGE_2M;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            huge_len,
            prot,
            flags | libc::MAP_HUGETLB,
            -1,
            0,
        )
    };
    if p != libc::MAP_FAILED {
        return (p.cast(), huge_len, true);
    }
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            bytes = huge_len,
            "no hugepages reserved for the storage I/O pool; using normal pages \
             (reserve 2 MiB pages with scripts/hugepages.sh for the bare-metal profile)"
        )
    });
    let p = unsafe { libc::mmap(std::ptr::null_mut(), want, prot, flags, -1, 0) };
    assert!(
        p != libc::MAP_FAILED,
        "cannot map {want} bytes for the storage I/O pool"
    );
    (p.cast(), want, false)
}

enum Source {
    Pool(Arc<IoMemory>, usize),
    Heap(std::alloc::Layout),
}

/// One aligned buffer; returned to its pool when dropped.
pub struct IoBuf {
    ptr: *mut u8,
    len: usize,
    cap: usize,
    source: Source,
}
// Exclusively owned memory.
unsafe impl Send for IoBuf {}

impl IoBuf {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
    /// Registered fixed-buffer index, when the buffer lies in the registered region.
    pub fn fixed_index(&self) -> Option<u16> {
        matches!(self.source, Source::Pool(..)).then_some(0)
    }
    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// Sets the span used for I/O, at most the capacity (block-aligned: the caller passes a
    /// multiple of the block size).
    pub fn set_len(&mut self, len: usize) {
        assert!(
            len <= self.cap,
            "I/O buffer length {len} over its capacity {}",
            self.cap
        );
        self.len = len;
    }
}

impl AsRef<[u8]> for IoBuf {
    fn as_ref(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}
impl AsMut<[u8]> for IoBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for IoBuf {
    fn drop(&mut self) {
        match &self.source {
            Source::Pool(pool, off) => pool.release(*off),
            Source::Heap(layout) => unsafe { std::alloc::dealloc(self.ptr, *layout) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_distinct_and_returned() {
        let m = IoMemory::new(4096, 65536, 4, 2);
        let a = m.alloc(100);
        let b = m.alloc(4096);
        let c = m.alloc(5000);
        assert_eq!((a.len(), b.len(), c.len()), (4096, 4096, 8192));
        for x in [&a, &b, &c] {
            assert_eq!(x.as_ptr() as usize % 4096, 0);
            assert_eq!(x.fixed_index(), Some(0));
        }
        assert_ne!(a.as_ptr(), b.as_ptr());
        let big = m.alloc(1 << 20);
        assert_eq!(big.fixed_index(), None);
        assert_eq!(m.heap_fallbacks.load(Ordering::Relaxed), 1);
        let pa = a.as_ptr();
        drop(a);
        assert_eq!(m.alloc(1).as_ptr(), pa);
    }

    /// As root: with 2 MiB pages reserved, the pool sits on them. Restores the reservation.
    #[test]
    fn pool_uses_reserved_hugepages() {
        const NR: &str = "/proc/sys/vm/nr_hugepages";
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root to reserve hugepages");
            return;
        }
        let Ok(before) = std::fs::read_to_string(NR) else {
            return;
        };
        let before: u64 = before.trim().parse().expect("page count");
        let free = || -> u64 {
            let info = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
            info.lines()
                .find_map(|l| {
                    l.strip_prefix("HugePages_Free:")
                        .map(|v| v.trim().parse().expect("count"))
                })
                .unwrap_or(0)
        };
        let _ = std::fs::write(NR, format!("{}", before + 4));
        let got = free() >= 2;
        if got {
            let m = IoMemory::new(4096, 65536, 16, 4);
            assert!(m.hugepage_backed());
            let mut b = m.alloc(4096);
            b.as_mut()[0] = 1;
        } else {
            eprintln!("skipped: the kernel could not reserve 2 MiB pages (fragmented memory)");
        }
        std::fs::write(NR, format!("{before}")).expect("restore nr_hugepages");
    }
}
