//! The kernel-bypass backend (cargo feature `dpdk`): EAL start-up, port set-up and the
//! poll-mode RX loops, over Debian's DPDK 22.11.
//!
//! ```text
//!  NIC queue q ─► [rx lcore q] ─ classify frame ─ parse in place ─ recent filter ─┬─► Ingress ─► verify tiles
//!                      │  (mbuf stays where the NIC wrote it; a descriptor         │   (descriptor packet
//!                      │   packet points into it and frees it when done)           │    owns the mbuf)
//!                      └─► TX queue q: ARP and ICMP echo answers, verdict replies ◄─┘
//! ```
//!
//! - [`sys`]: bindgen's bindings of `dataplane/dpdk/shim.h` and the C shim's wrappers.
//! - [`eal`]: EAL arguments from settings, one init per process, lcore launch.
//! - [`mem`]: EAL-heap memory (hugepages when reserved) for the descriptor packets.
//! - [`port`]: one ethdev: mbuf pool, RSS, queues, MTU, promiscuous mode; stats and facts.
//! - [`rx`]: the per-queue poll loop.

pub mod eal;
pub mod mem;
pub mod port;
pub mod rx;
pub mod sys;

use std::ffi::CStr;

#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    #[error("EAL initialisation failed: {0} (arguments: {1})")]
    EalInit(String, String),
    #[error("EAL is already initialised in this process (it starts once per process)")]
    EalAgain,
    #[error("no DPDK port {0:?} (ports found: {1})")]
    NoPort(String, String),
    #[error("{what} failed on port {port}: {reason}")]
    Port {
        port: u16,
        what: &'static str,
        reason: String,
    },
    #[error("mbuf pool: {0}")]
    Mempool(String),
    #[error("lcore {0}: {1}")]
    Lcore(u32, String),
    #[error("bad setting: {0}")]
    Setting(String),
}

/// DPDK's message for an errno-style code (positive or negative).
pub fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror returns a static (or thread-local) NUL-terminated string.
    unsafe { CStr::from_ptr(sys::rte_strerror(code.abs())) }
        .to_string_lossy()
        .into_owned()
}

/// The error of the last failed DPDK call on this thread.
pub fn last_error() -> String {
    // SAFETY: reads the per-lcore rte_errno.
    strerror(unsafe { sys::gc_errno() })
}
