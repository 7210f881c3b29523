//! Packets and their bounded pool.
//!
//! A [`Packet`] is one transaction in flight: its bytes, the descriptor parsed from them, where
//! it came from and when. The bytes live in one of two places:
//!
//! - a buffer the packet owns, large enough for the largest Solana transaction plus one byte
//!   (so an oversize datagram is detected, not silently truncated): the socket backend
//!   receives into it and the RPC copies into it;
//! - a buffer someone else owns, a DPDK mbuf: the packet points at the transaction inside the
//!   frame (parsed in place, never copied) and releases the mbuf when it goes back to the pool.
//!
//! Packets are allocated once at start-up into a [`PacketPool`] that keeps the two kinds on
//! separate free lists; whoever is last to need a packet gives it back to the same pool, which
//! files it by kind. A dry pool is an ingest-side drop, counted, never an allocation.

use crate::parse::{PACKET_DATA_SIZE, TxDescriptor};
use crate::verified::VerifiedTx;
use crossbeam_channel::{Receiver, Sender};
use std::ffi::c_void;
use std::net::SocketAddr;
use std::ptr::NonNull;

/// Receive buffer size: one byte more than the largest valid transaction.
pub const PACKET_BUFFER_BYTES: usize = PACKET_DATA_SIZE + 1;

/// Where a packet came from, for replies and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Udp(SocketAddr),
    Rpc,
}

/// A transaction that came in on a raw (DPDK) port: its RX queue and the sender's MAC, so a
/// reply (a signed pre-confirmation) can go back out of that queue's lcore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortReply {
    pub queue: u16,
    pub mac: [u8; 6],
}

/// Frees an external buffer (e.g. `rte_pktmbuf_free`). Must be callable from any thread.
pub type ReleaseFn = unsafe fn(NonNull<c_void>);

enum Storage {
    Owned(Box<[u8; PACKET_BUFFER_BYTES]>),
    External {
        data: NonNull<u8>,
        owner: NonNull<c_void>,
        release: ReleaseFn,
    },
    /// A descriptor waiting for an external buffer.
    Empty,
}

pub struct Packet {
    storage: Storage,
    pub len: usize,
    pub desc: Option<TxDescriptor>,
    /// Set by the verify tile once the signatures passed: the transaction deserialized and
    /// its message hashed, the only time that happens on its way to execution.
    pub verified: Option<Box<VerifiedTx>>,
    /// The signatures were already checked by whoever submitted it (the RPC, which must
    /// answer a bad signature itself): the verify tile dedups it without checking again.
    pub signatures_checked: bool,
    /// Scale-out: a transaction another cluster node handed on, or one this node held while
    /// its partition moved. The verify tile does not take it for a repeat (this node may have
    /// seen it before, when it was someone else's); the bank still runs a signature once.
    pub rerouted: bool,
    /// This node's own transaction admitted again (parked by a move given up, held for
    /// co-location): it passed this node's verify tile or ingress check before, so its
    /// signature in the dedup table is its own earlier passage, not a repeat. A peer's
    /// forward is never this: a repeat a peer hands on is still dropped by the table.
    pub readmitted: bool,
    pub source: Source,
    /// Set for a transaction received on a raw port: where replies to it go out.
    pub reply_port: Option<PortReply>,
    /// Monotonic receive time, for receive-to-commit latency.
    pub received_ns: u64,
}

// SAFETY: an external buffer is owned by exactly one packet (the packet was given it by
// `attach`, whose contract is exclusive ownership), and its release function is thread-safe.
unsafe impl Send for Packet {}

impl Packet {
    /// A packet with its own zeroed buffer.
    pub fn zeroed() -> Self {
        Self::with_storage(Storage::Owned(Box::new([0; PACKET_BUFFER_BYTES])))
    }

    /// A descriptor packet: no buffer until [`Packet::attach`] gives it one.
    pub fn descriptor() -> Self {
        Self::with_storage(Storage::Empty)
    }

    fn with_storage(storage: Storage) -> Self {
        Self {
            storage,
            len: 0,
            desc: None,
            verified: None,
            signatures_checked: false,
            rerouted: false,
            readmitted: false,
            source: Source::Rpc,
            reply_port: None,
            received_ns: 0,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Owned(b) => &b[..self.len],
            // SAFETY: `attach` promised `len` readable bytes at `data` until released.
            Storage::External { data, .. } => unsafe {
                std::slice::from_raw_parts(data.as_ptr(), self.len)
            },
            Storage::Empty => &[],
        }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.storage {
            Storage::Owned(b) => &mut b[..self.len],
            // SAFETY: as in `bytes`, and the buffer is exclusively this packet's.
            Storage::External { data, .. } => unsafe {
                std::slice::from_raw_parts_mut(data.as_ptr(), self.len)
            },
            Storage::Empty => &mut [],
        }
    }

    /// The whole owned buffer, for receiving into; None for descriptor packets.
    pub fn receive_buffer(&mut self) -> Option<&mut [u8; PACKET_BUFFER_BYTES]> {
        match &mut self.storage {
            Storage::Owned(b) => Some(b),
            _ => None,
        }
    }

    /// Copy a transaction from elsewhere (RPC) into this packet's own buffer. False when it is
    /// too long or this is a descriptor packet.
    pub fn fill(&mut self, bytes: &[u8]) -> bool {
        let Storage::Owned(b) = &mut self.storage else {
            return false;
        };
        if bytes.len() > PACKET_DATA_SIZE {
            return false;
        }
        b[..bytes.len()].copy_from_slice(bytes);
        self.len = bytes.len();
        self.desc = None;
        self.verified = None;
        self.signatures_checked = false;
        self.rerouted = false;
        self.readmitted = false;
        true
    }

    /// Point a descriptor packet at `len` bytes inside a buffer owned by `owner`; the packet
    /// now owns `owner` and calls `release(owner)` when it is given back or dropped.
    ///
    /// # Safety
    /// `data..data+len` must stay valid and unaliased until `release(owner)`, the caller must
    /// hand over its ownership of `owner`, and `release` must be callable from any thread.
    pub unsafe fn attach(
        &mut self,
        data: NonNull<u8>,
        len: usize,
        owner: NonNull<c_void>,
        release: ReleaseFn,
    ) {
        self.release_external();
        debug_assert!(matches!(self.storage, Storage::Empty));
        self.storage = Storage::External {
            data,
            owner,
            release,
        };
        self.len = len;
        self.desc = None;
        self.verified = None;
        self.signatures_checked = false;
        self.rerouted = false;
        self.readmitted = false;
    }

    /// Copy `bytes` in, parse and decode them: the packet as the verify tile hands it on,
    /// without the signature check. For feeding the runtime directly (its tests, the
    /// in-process benchmarks); false when the bytes are not a transaction.
    pub fn fill_verified(&mut self, bytes: &[u8]) -> bool {
        if !self.fill(bytes) {
            return false;
        }
        let Ok(desc) = crate::parse::parse_transaction(bytes) else {
            return false;
        };
        self.desc = Some(desc);
        self.verified = VerifiedTx::decode(bytes, desc.message(bytes));
        self.verified.is_some()
    }

    pub fn is_descriptor(&self) -> bool {
        !matches!(self.storage, Storage::Owned(_))
    }

    pub(crate) fn release_external(&mut self) {
        if let Storage::External { owner, release, .. } = self.storage {
            self.storage = Storage::Empty;
            // SAFETY: `attach`'s contract: we own `owner` and release it exactly once.
            unsafe { release(owner) };
        }
    }

    fn reset(&mut self) {
        self.release_external();
        self.desc = None;
        self.verified = None;
        self.signatures_checked = false;
        self.rerouted = false;
        self.readmitted = false;
        self.reply_port = None;
        self.len = 0;
    }
}

impl Drop for Packet {
    fn drop(&mut self) {
        self.release_external();
    }
}

/// A handle to one packet: either a slot of a pool's arena (goes back with
/// [`PacketPool::give`]) or a standalone heap packet ([`PacketBox::new`], for the RPC's
/// simulations and tests). It derefs to the [`Packet`].
pub struct PacketBox {
    ptr: NonNull<Packet>,
    standalone: bool,
}

// SAFETY: a handle is the only way to its packet (arena slots are handed out once, a
// standalone packet is a leaked Box), and Packet is Send.
unsafe impl Send for PacketBox {}

impl PacketBox {
    /// A packet outside any pool, freed when the handle drops.
    pub fn new(p: Packet) -> Self {
        Self {
            ptr: NonNull::from(Box::leak(Box::new(p))),
            standalone: true,
        }
    }
}

impl std::ops::Deref for PacketBox {
    type Target = Packet;
    fn deref(&self) -> &Packet {
        // SAFETY: the handle owns a live packet.
        unsafe { self.ptr.as_ref() }
    }
}

impl std::ops::DerefMut for PacketBox {
    fn deref_mut(&mut self) -> &mut Packet {
        // SAFETY: the handle owns a live packet, exclusively.
        unsafe { self.ptr.as_mut() }
    }
}

impl Drop for PacketBox {
    fn drop(&mut self) {
        if self.standalone {
            // SAFETY: made from a Box in `new`, dropped once.
            drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
        } else {
            // A pool slot that never went back: its mbuf and decoded transaction (if any)
            // must not leak; the slot itself stays in the arena, which is then never freed.
            self.release_external();
            self.verified = None;
        }
    }
}

/// Where a pool's packets live: the heap, or (the DPDK backend) memory from EAL, which is
/// hugepages when they are reserved.
#[derive(Clone, Copy)]
pub struct Arena {
    pub alloc: fn(std::alloc::Layout) -> Option<NonNull<u8>>,
    /// # Safety: given a pointer `alloc` returned for the same layout.
    pub free: unsafe fn(NonNull<u8>, std::alloc::Layout),
}

impl Arena {
    pub const HEAP: Arena = Arena {
        alloc: |l| {
            // SAFETY: non-zero size (callers never ask for an empty arena).
            NonNull::new(unsafe { std::alloc::alloc(l) })
        },
        free: |p, l| {
            // SAFETY: per the field's contract.
            unsafe { std::alloc::dealloc(p.as_ptr(), l) }
        },
    };
}

/// One kind of packet: `capacity` packets in one arena allocation, and a bounded free list of
/// handles to them.
struct FreeList {
    tx: Sender<PacketBox>,
    rx: Receiver<PacketBox>,
    capacity: usize,
    slots: Option<(NonNull<Packet>, std::alloc::Layout, Arena)>,
}

// SAFETY: the arena pointer is only dereferenced through handles, or in Drop once every
// handle is back.
unsafe impl Send for FreeList {}
unsafe impl Sync for FreeList {}

impl FreeList {
    fn new(capacity: usize, make: fn() -> Packet, arena: Arena) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        let slots = (capacity > 0).then(|| {
            let layout = std::alloc::Layout::array::<Packet>(capacity).expect("packet arena size");
            let base = (arena.alloc)(layout)
                .unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
                .cast::<Packet>();
            for i in 0..capacity {
                // SAFETY: slot i of a fresh allocation sized for `capacity` packets.
                let ptr = unsafe {
                    let slot = base.add(i);
                    slot.write(make());
                    slot
                };
                tx.send(PacketBox {
                    ptr,
                    standalone: false,
                })
                .expect("free list sized to capacity");
            }
            (base, layout, arena)
        });
        Self {
            tx,
            rx,
            capacity,
            slots,
        }
    }

    fn owns(&self, p: &PacketBox) -> bool {
        self.slots.is_some_and(|(base, _, _)| {
            let at = p.ptr.as_ptr() as usize;
            let start = base.as_ptr() as usize;
            !p.standalone && at >= start && at < start + self.capacity * size_of::<Packet>()
        })
    }
}

impl Drop for FreeList {
    /// Free the arena if every one of its packets is back; otherwise some are still in use
    /// somewhere and the arena is left alone (pools normally live as long as the process).
    fn drop(&mut self) {
        let Some((base, layout, arena)) = self.slots else {
            return;
        };
        let mut home = 0;
        for p in self.rx.try_iter() {
            if self.owns(&p) {
                home += 1;
                std::mem::forget(p);
            }
        }
        if home == self.capacity {
            for i in 0..self.capacity {
                // SAFETY: every slot's handle is back (and forgotten): nothing refers to them.
                unsafe { std::ptr::drop_in_place(base.add(i).as_ptr()) };
            }
            // SAFETY: allocated by this arena with this layout.
            unsafe { (arena.free)(base.cast(), layout) };
        }
    }
}

/// Bounded free lists of packets: own-buffer packets (socket, RPC) and descriptor packets
/// (DPDK). Cloning shares the pool.
#[derive(Clone)]
pub struct PacketPool {
    owned: std::sync::Arc<FreeList>,
    descriptors: std::sync::Arc<FreeList>,
}

impl PacketPool {
    /// `capacity` packets with their own buffers, no descriptors.
    pub fn new(capacity: usize) -> Self {
        Self::with_descriptors(capacity, 0, Arena::HEAP)
    }

    /// Also `descriptors` buffer-less packets for a zero-copy backend (one per mbuf it may
    /// hold in flight), allocated from `arena`.
    pub fn with_descriptors(capacity: usize, descriptors: usize, arena: Arena) -> Self {
        Self {
            owned: std::sync::Arc::new(FreeList::new(capacity, Packet::zeroed, Arena::HEAP)),
            descriptors: std::sync::Arc::new(FreeList::new(descriptors, Packet::descriptor, arena)),
        }
    }

    /// A packet with its own buffer.
    pub fn take(&self) -> Option<PacketBox> {
        self.owned.rx.try_recv().ok()
    }

    /// A descriptor packet, for [`Packet::attach`].
    pub fn take_descriptor(&self) -> Option<PacketBox> {
        self.descriptors.rx.try_recv().ok()
    }

    /// Back to the free list of its kind; an external buffer is released now. A standalone
    /// packet is dropped (freed) instead.
    pub fn give(&self, mut p: PacketBox) {
        p.reset();
        let list = if p.is_descriptor() {
            &self.descriptors
        } else {
            &self.owned
        };
        if !list.owns(&p) {
            return;
        }
        // Cannot be full: the list has room for every packet of its arena.
        let _ = list.tx.try_send(p);
    }

    /// Own-buffer packets free now.
    pub fn available(&self) -> usize {
        self.owned.rx.len()
    }

    pub fn capacity(&self) -> usize {
        self.owned.capacity
    }

    pub fn descriptors_available(&self) -> usize {
        self.descriptors.rx.len()
    }

    pub fn descriptor_capacity(&self) -> usize {
        self.descriptors.capacity
    }
}

/// Nanoseconds since the first call in this process: the one clock all tiles stamp with.
pub fn monotonic_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RELEASED: AtomicUsize = AtomicUsize::new(0);
    static ARENA_FREES: AtomicUsize = AtomicUsize::new(0);

    const COUNTING: Arena = Arena {
        alloc: Arena::HEAP.alloc,
        free: |p, l| {
            ARENA_FREES.fetch_add(1, Ordering::SeqCst);
            // SAFETY: allocated by the heap arena with this layout.
            unsafe { (Arena::HEAP.free)(p, l) }
        },
    };

    /// A pool frees its descriptor arena when dropped with every packet back, and never while
    /// a packet is still out.
    #[test]
    fn arenas_are_freed_only_when_every_packet_is_home() {
        let before = ARENA_FREES.load(Ordering::SeqCst);
        let pool = PacketPool::with_descriptors(1, 4, COUNTING);
        let p = pool.take_descriptor().unwrap();
        pool.give(p);
        drop(pool);
        assert_eq!(ARENA_FREES.load(Ordering::SeqCst), before + 1);
        let pool = PacketPool::with_descriptors(1, 4, COUNTING);
        let out = pool.take_descriptor().unwrap();
        drop(pool);
        assert_eq!(
            ARENA_FREES.load(Ordering::SeqCst),
            before + 1,
            "a packet is still out"
        );
        assert!(out.is_descriptor(), "and it is still valid");
    }

    unsafe fn count_release(owner: NonNull<c_void>) {
        RELEASED.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the test hands over a leaked Box<[u8; 64]>.
        drop(unsafe { Box::from_raw(owner.as_ptr().cast::<[u8; 64]>()) });
    }

    fn external(pool: &PacketPool, byte: u8) -> PacketBox {
        let mut p = pool.take_descriptor().expect("descriptor");
        let buf = Box::leak(Box::new([byte; 64]));
        let data = NonNull::from(&mut buf[8]);
        // SAFETY: the leaked buffer is handed over; count_release frees it.
        unsafe { p.attach(data, 10, NonNull::from(buf).cast(), count_release) };
        p
    }

    /// External buffers are read in place and released exactly once, whether the packet
    /// goes back to the pool or is dropped; each kind returns to its own free list.
    #[test]
    fn external_buffers_are_released_once_and_kinds_stay_apart() {
        let pool = PacketPool::with_descriptors(2, 3, Arena::HEAP);
        let p = external(&pool, 7);
        assert!(p.is_descriptor());
        assert_eq!(p.bytes(), &[7u8; 10]);
        assert!(!{
            let mut q = pool.take_descriptor().unwrap();
            let filled = q.fill(b"abc");
            pool.give(q);
            filled
        });
        let before = RELEASED.load(Ordering::SeqCst);
        pool.give(p);
        assert_eq!(RELEASED.load(Ordering::SeqCst), before + 1);
        drop(external(&pool, 1));
        assert_eq!(RELEASED.load(Ordering::SeqCst), before + 2);
        let mut o = pool.take().unwrap();
        assert!(o.fill(b"abc"));
        pool.give(o);
        assert_eq!(pool.available(), 2);
        assert_eq!(pool.descriptors_available(), 2); // one was dropped above
        // A standalone packet given to the pool is freed, not filed.
        pool.give(PacketBox::new(Packet::zeroed()));
        assert_eq!(pool.available(), 2);
    }
}
