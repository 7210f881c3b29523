//! A per-RX-core filter of recently seen packets, run before anything leaves the RX core.
//!
//! Keyed on a keyed hash of the whole transaction, not on its signature: identical bytes are
//! the same transaction, so dropping the copy is always right, while a signature-keyed filter
//! ahead of verification would let anyone who saw a signature poison it with a forged message.
//! The authoritative, signature-keyed dedup over the 150-slot window stays in the verify tiles;
//! this one only spares them (and the hand-off rings) the copies a flood or a retrying client
//! sends, so it may forget: it is a set-associative table of 64-bit tags, 8 per cache line,
//! where a new tag replaces a pseudo-random way of its bucket.
//!
//! The tag is foldhash with a per-filter random seed: it folds 16 bytes per multiply, about
//! twice the rate of ahash's portable path on a 200-byte transaction, and an attacker who
//! does not know the seed cannot aim a collision at someone else's transaction.
//!
//! Lookups come in bursts: [`RecentFilter::prefetch`] every tag of a burst first, then
//! [`RecentFilter::insert`] them, so the cache misses of a table larger than L2 overlap.

use std::hash::BuildHasher;

const WAYS: usize = 8;

#[repr(C, align(64))]
struct Bucket([u64; WAYS]);

pub struct RecentFilter {
    buckets: BucketTable,
    mask: usize,
    hasher: foldhash::fast::RandomState,
}

impl RecentFilter {
    /// Room for about `entries` tags (rounded up to a power of two, at least one bucket).
    pub fn new(entries: usize) -> Self {
        let n = (entries / WAYS).max(1).next_power_of_two();
        Self {
            buckets: BucketTable::new(n),
            mask: n - 1,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    pub fn entries(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// The tag of a transaction's bytes (never 0: 0 marks an empty way).
    #[inline]
    pub fn tag(&self, bytes: &[u8]) -> u64 {
        self.hasher.hash_one(bytes) | 1
    }

    #[inline]
    fn bucket(&self, tag: u64) -> usize {
        (tag >> 8) as usize & self.mask
    }

    /// Start loading the bucket `tag` will use.
    #[inline]
    pub fn prefetch(&self, tag: u64) {
        let p = &self.buckets[self.bucket(tag)] as *const Bucket;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint; the pointer is in bounds anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }

    /// Record `tag`; true when it was already there (a duplicate).
    #[inline]
    pub fn insert(&mut self, tag: u64) -> bool {
        let i = self.bucket(tag);
        let b = &mut self.buckets[i].0;
        if b.contains(&tag) {
            return true;
        }
        // An empty way if there is one, else the low bits pick the victim: pseudo-random
        // replacement, no per-bucket state.
        let way = b
            .iter()
            .position(|&t| t == 0)
            .unwrap_or((tag >> 1) as usize % WAYS);
        b[way] = tag;
        false
    }
}

/// Zeroed buckets on 2 MiB-aligned memory the kernel is asked to back with transparent huge
/// pages: every lookup lands on a random bucket, and with 4 KiB pages nearly every one also
/// missed the TLB (measured: the prefetch stalled on the page walk).
struct BucketTable {
    ptr: std::ptr::NonNull<Bucket>,
    len: usize,
}

const HUGE_PAGE: usize = 2 << 20;

impl BucketTable {
    fn layout(len: usize) -> std::alloc::Layout {
        let bytes = len * std::mem::size_of::<Bucket>();
        let align = if bytes >= HUGE_PAGE { HUGE_PAGE } else { 64 };
        std::alloc::Layout::from_size_align(bytes, align).expect("bucket table layout")
    }

    fn new(len: usize) -> Self {
        let layout = Self::layout(len);
        // SAFETY: non-zero size (len >= 1); zeroed buckets are empty buckets.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = std::ptr::NonNull::new(raw.cast::<Bucket>()) else {
            std::alloc::handle_alloc_error(layout);
        };
        if layout.align() == HUGE_PAGE {
            // SAFETY: advice on memory we own; failure only means small pages.
            unsafe { libc::madvise(raw.cast(), layout.size(), libc::MADV_HUGEPAGE) };
        }
        Self { ptr, len }
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl std::ops::Deref for BucketTable {
    type Target = [Bucket];
    fn deref(&self) -> &[Bucket] {
        // SAFETY: `len` initialised buckets owned by this table.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for BucketTable {
    fn deref_mut(&mut self) -> &mut [Bucket] {
        // SAFETY: as above, exclusively borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for BucketTable {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), Self::layout(self.len)) };
    }
}

// SAFETY: the table owns its memory exclusively, like a Box<[Bucket]>.
unsafe impl Send for BucketTable {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_caught_and_distinct_bytes_pass() {
        let mut f = RecentFilter::new(1 << 12);
        let txs: Vec<Vec<u8>> = (0u32..1000).map(|i| i.to_le_bytes().repeat(50)).collect();
        let tags: Vec<u64> = txs.iter().map(|t| f.tag(t)).collect();
        tags.iter().for_each(|&t| f.prefetch(t));
        assert!(
            tags.iter().all(|&t| !f.insert(t)),
            "first sight is never a duplicate"
        );
        // With a table four times the working set, nearly all repeats are still remembered.
        let caught = tags.iter().filter(|&&t| f.insert(t)).count();
        assert!(caught > 900, "caught {caught} of 1000");
        // One changed byte is another transaction.
        let mut other = txs[0].clone();
        other[199] ^= 1;
        assert!(!f.insert(f.tag(&other)));
    }

    #[test]
    fn a_tiny_table_forgets_but_never_invents() {
        let mut f = RecentFilter::new(1);
        assert_eq!(f.entries(), 8);
        let mut dups = 0;
        for i in 0u64..10_000 {
            dups += usize::from(f.insert(f.tag(&i.to_le_bytes())));
        }
        assert_eq!(dups, 0);
    }
}
