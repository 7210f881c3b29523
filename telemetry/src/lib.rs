//! Perf counters every tile keeps, laid out to live in shared memory.
//!
//! Counters are plain atomics with one writer each, in `#[repr(C)]` structs that are valid when
//! all-zero, so a region of them can be mapped from a file in `/dev/shm` and read by another
//! process (`gigacompute monitor`) while the appliance runs: a reader never touches the hot
//! path, it only loads cache lines the writers own.

mod histogram;
mod region;
mod tile;

pub use histogram::LatencyHistogram;
pub use region::{RegionError, SharedRegion, ZeroValid};
pub use tile::{TileClock, TileStats};
