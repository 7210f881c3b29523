//! Perf counters every tile keeps, laid out to live in shared memory.
//!
//! Counters are plain atomics with one writer each, in `#[repr(C)]` structs that are valid when
//! all-zero, so a region of them can be mapped from a file in `/dev/shm` and read by another
//! process (`gigacompute monitor`) while the appliance runs: a reader never touches the hot
//! path, it only loads cache lines the writers own.

pub mod config;
pub mod counters;
mod exposition;
pub mod health;
mod histogram;
pub mod lifecycle;
mod region;
mod tile;

pub use counters::CounterSet;
pub use exposition::Exposition;
pub use health::Health;
pub use histogram::LatencyHistogram;
pub use lifecycle::{Placement, Stage, StatsSlot, Tile, Turn, next_input};
pub use region::{RegionError, SharedRegion, ZeroValid, zeroed};
pub use tile::{TileClock, TileStats};

/// CPU time the calling thread has used, in nanoseconds (what observing costs).
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_THREAD_CPUTIME_ID is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
