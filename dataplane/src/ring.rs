//! The net → verify hand-off: a bounded, lock-free multi-producer multi-consumer ring whose
//! slots live in an [`Arena`] — EAL memory (hugepages when reserved) with the DPDK backend,
//! the heap otherwise. Producers (RX lcores, the UDP net tile, RPC threads) never block: a
//! full ring is a counted drop. The consumer (a verify tile) waits by spinning briefly, then
//! parking; the next push unparks it, so an idle tile costs almost nothing, a busy one never
//! sleeps, and a transaction that arrives at an idle tile waits a thread wake-up, not a nap.
//! The producer's check of the parked flag is not fenced (a fence per push would cost every
//! packet): a wake-up can be missed when the two race, and then the tile's park times out
//! after at most 1 ms, which bounds the delay.
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue: each slot carries a sequence number
//! that says whether it is ready to be written (== position) or read (== position + 1).

use crate::packet::Arena;
use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

struct Slot<T> {
    seq: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

#[repr(align(64))]
struct Padded(AtomicUsize);

struct Inner<T> {
    slots: NonNull<Slot<T>>,
    mask: usize,
    layout: Layout,
    arena: Arena,
    head: Padded,
    tail: Padded,
    /// A consumer is parked in `pop_timeout` (`sleeper`) and wants the next push to wake it.
    parked: AtomicBool,
    sleeper: Mutex<Option<Thread>>,
}

// SAFETY: values move between threads only through the slot protocol (one writer, then one
// reader per slot and lap); T: Send is required.
unsafe impl<T: Send> Send for Inner<T> {}
unsafe impl<T: Send> Sync for Inner<T> {}

/// A handle to a ring; clones share it (any of them may push or pop).
pub struct Ring<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Ring<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Send> Ring<T> {
    /// A ring of at least `capacity` slots (rounded up to a power of two), in `arena`.
    pub fn new(capacity: usize, arena: Arena) -> Self {
        let n = capacity.max(2).next_power_of_two();
        let layout = Layout::array::<Slot<T>>(n)
            .and_then(|l| l.align_to(64))
            .expect("ring size");
        let slots = (arena.alloc)(layout)
            .unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
            .cast::<Slot<T>>();
        for i in 0..n {
            // SAFETY: slot i of a fresh allocation of n slots.
            unsafe {
                slots.add(i).write(Slot {
                    seq: AtomicUsize::new(i),
                    value: UnsafeCell::new(MaybeUninit::uninit()),
                })
            };
        }
        Self {
            inner: Arc::new(Inner {
                slots,
                mask: n - 1,
                layout,
                arena,
                head: Padded(AtomicUsize::new(0)),
                tail: Padded(AtomicUsize::new(0)),
                parked: AtomicBool::new(false),
                sleeper: Mutex::new(None),
            }),
        }
    }

    pub fn capacity(&self) -> usize {
        self.inner.mask + 1
    }

    /// Items in the ring now (a snapshot).
    pub fn len(&self) -> usize {
        let tail = self.inner.tail.0.load(Ordering::Relaxed);
        let head = self.inner.head.0.load(Ordering::Relaxed);
        tail.saturating_sub(head).min(self.capacity())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, pos: usize) -> &Slot<T> {
        // SAFETY: masked index into the n initialised slots.
        unsafe { &*self.inner.slots.as_ptr().add(pos & self.inner.mask) }
    }

    /// Add `v`, or give it back when the ring is full.
    pub fn push(&self, v: T) -> Result<(), T> {
        let tail = &self.inner.tail.0;
        let mut pos = tail.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(pos);
            let seq = slot.seq.load(Ordering::Acquire);
            match seq.cmp(&pos) {
                std::cmp::Ordering::Equal => {
                    match tail.compare_exchange_weak(
                        pos,
                        pos + 1,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            // SAFETY: winning the CAS makes this slot ours to write.
                            unsafe { (*slot.value.get()).write(v) };
                            slot.seq.store(pos + 1, Ordering::Release);
                            if self.inner.parked.load(Ordering::Relaxed) {
                                self.wake();
                            }
                            return Ok(());
                        }
                        Err(now) => pos = now,
                    }
                }
                // The slot still holds last lap's value: full.
                std::cmp::Ordering::Less => return Err(v),
                std::cmp::Ordering::Greater => pos = tail.load(Ordering::Relaxed),
            }
        }
    }

    /// Take the oldest item, if any.
    pub fn pop(&self) -> Option<T> {
        let head = &self.inner.head.0;
        let mut pos = head.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(pos);
            let seq = slot.seq.load(Ordering::Acquire);
            match seq.cmp(&(pos + 1)) {
                std::cmp::Ordering::Equal => {
                    match head.compare_exchange_weak(
                        pos,
                        pos + 1,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            // SAFETY: winning the CAS makes this written slot ours to read.
                            let v = unsafe { (*slot.value.get()).assume_init_read() };
                            slot.seq.store(pos + self.inner.mask + 1, Ordering::Release);
                            return Some(v);
                        }
                        Err(now) => pos = now,
                    }
                }
                std::cmp::Ordering::Less => return None,
                std::cmp::Ordering::Greater => pos = head.load(Ordering::Relaxed),
            }
        }
    }

    /// Unparks the consumer waiting in `pop_timeout`.
    #[cold]
    fn wake(&self) {
        self.inner.parked.store(false, Ordering::Relaxed);
        if let Some(t) = self.inner.sleeper.lock().ok().and_then(|g| g.clone()) {
            t.unpark();
        }
    }

    /// Take the oldest item, waiting up to `timeout` for one: a short spin, then parked
    /// until a push wakes it (re-checking at least every millisecond).
    pub fn pop_timeout(&self, timeout: Duration) -> Option<T> {
        for _ in 0..128 {
            if let Some(v) = self.pop() {
                return Some(v);
            }
            std::hint::spin_loop();
        }
        let deadline = Instant::now() + timeout;
        if let Ok(mut s) = self.inner.sleeper.lock() {
            *s = Some(std::thread::current());
        }
        loop {
            self.inner.parked.store(true, Ordering::SeqCst);
            // Checked after the flag is up: a push from before it is seen here.
            if let Some(v) = self.pop() {
                self.inner.parked.store(false, Ordering::Relaxed);
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline {
                self.inner.parked.store(false, Ordering::Relaxed);
                return None;
            }
            std::thread::park_timeout((deadline - now).min(Duration::from_millis(1)));
        }
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        let (head, tail) = (*self.head.0.get_mut(), *self.tail.0.get_mut());
        for pos in head..tail {
            // SAFETY: positions head..tail hold written, unread values; we are the last owner.
            unsafe {
                let slot = &*self.slots.as_ptr().add(pos & self.mask);
                (*slot.value.get()).assume_init_drop();
            }
        }
        // SAFETY: allocated by this arena with this layout; slots need no drop of their own.
        unsafe { (self.arena.free)(self.slots.cast(), self.layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_bounded_and_drops_what_it_holds() {
        let r: Ring<Box<u32>> = Ring::new(3, Arena::HEAP);
        assert_eq!(r.capacity(), 4);
        for i in 0..4 {
            r.push(Box::new(i)).unwrap();
        }
        assert_eq!(*r.push(Box::new(9)).unwrap_err(), 9);
        assert_eq!(r.len(), 4);
        assert_eq!(*r.pop().unwrap(), 0);
        r.push(Box::new(4)).unwrap();
        let got: Vec<u32> = std::iter::from_fn(|| r.pop()).map(|b| *b).collect();
        assert_eq!(got, vec![1, 2, 3, 4]);
        assert!(r.pop_timeout(Duration::from_millis(5)).is_none());
        r.push(Box::new(7)).unwrap();
        drop(r); // the boxed 7 is freed with the ring (Miri/ASan would flag a leak or double free)
    }

    /// Several producers and consumers: every item arrives exactly once.
    #[test]
    fn concurrent_producers_and_consumers_lose_and_duplicate_nothing() {
        let r: Ring<u64> = Ring::new(64, Arena::HEAP);
        let producers = 3;
        let per = 20_000u64;
        let done = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for p in 0..producers {
            let r = r.clone();
            let done = done.clone();
            handles.push(std::thread::spawn(move || {
                for i in 0..per {
                    let mut v = p * per + i;
                    while let Err(back) = r.push(v) {
                        v = back;
                        std::thread::yield_now();
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let (r, done) = (r.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match r.pop_timeout(Duration::from_millis(2)) {
                            Some(v) => got.push(v),
                            None if done.load(Ordering::SeqCst) == producers as usize
                                && r.is_empty() =>
                            {
                                return got;
                            }
                            None => {}
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        let mut all: Vec<u64> = consumers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..producers * per).collect::<Vec<_>>());
    }
}
