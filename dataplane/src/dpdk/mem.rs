//! Memory from EAL's heap (`rte_zmalloc`): hugepages when EAL runs on them, normal memory
//! with `--no-huge`. The packet pool's descriptors live here, next to the mbufs they point at.

use super::sys;
use crate::packet::Arena;
use std::alloc::Layout;
use std::ptr::NonNull;

fn alloc(l: Layout) -> Option<NonNull<u8>> {
    // SAFETY: EAL is started (the caller's contract for using this arena); a NULL type name
    // is allowed.
    let p = unsafe {
        sys::rte_zmalloc_socket(
            std::ptr::null(),
            l.size(),
            l.align().max(64) as u32,
            sys::SOCKET_ID_ANY,
        )
    };
    NonNull::new(p.cast())
}

/// # Safety
/// `p` came from `alloc`.
unsafe fn free(p: NonNull<u8>, _: Layout) {
    // SAFETY: per the contract.
    unsafe { sys::rte_free(p.as_ptr().cast()) };
}

/// Allocate from EAL's heap. Only after `Eal::init`.
pub const EAL_ARENA: Arena = Arena { alloc, free };
