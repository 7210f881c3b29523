//! Data-parallel map over a slice on scoped threads (one per core), for hashing a level's
//! dirty nodes. Small inputs stay on the calling thread: spawning costs more than they do.

use std::cell::Cell;
use std::sync::OnceLock;

const MIN_PER_THREAD: usize = 1024;

thread_local! {
    /// At most this many threads for maps started on this thread (see `with_threads`).
    static CAP: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Threads a map started on this thread may use: one per core unless `with_threads` limits it.
pub fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    let cores = *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    cores.min(CAP.get())
}

/// Runs `f` with the maps it starts on this thread limited to `n` threads (`bench commit`
/// times the commitment on one core this way).
pub fn with_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            CAP.set(self.0);
        }
    }
    let _restore = Restore(CAP.replace(n.max(1)));
    f()
}

pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let n = threads().min(items.len() / MIN_PER_THREAD).max(1);
    if n == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(n);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .skip(1)
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = items[..chunk].iter().map(f).collect();
        out.reserve(items.len() - chunk);
        for h in handles {
            out.extend(h.join().expect("hashing thread panicked"));
        }
        out
    })
}

/// `f` over about one contiguous chunk of `items` per core.
pub fn par_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let n = threads().min(items.len() / MIN_PER_THREAD).max(1);
    let chunks: Vec<&[T]> = items.chunks(items.len().div_ceil(n).max(1)).collect();
    if chunks.len() <= 1 {
        return vec![f(items)];
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks[1..].iter().map(|c| s.spawn(move || f(c))).collect();
        let mut out = vec![f(chunks[0])];
        out.extend(
            handles
                .into_iter()
                .map(|h| h.join().expect("hashing thread panicked")),
        );
        out
    })
}
