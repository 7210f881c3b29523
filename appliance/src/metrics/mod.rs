//! Perf counters: the shared-memory region every tile writes, the Prometheus text endpoint and
//! the reader used by `gigacompute monitor`.

pub mod cluster;
pub mod prometheus;
pub mod region;
mod scheduler;
pub mod server;
mod tuner;

pub use region::MetricsRegion;
