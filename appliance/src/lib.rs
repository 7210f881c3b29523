//! The running appliance: its configuration (composed from the crates' sections), the wiring
//! of tiles and links declared as data, placement on the machine, the node that starts the
//! tiles, and the shared-memory metrics region with its Prometheus endpoint. The RPC
//! (`rpc`), the operator tools (`ops`) and the benchmarks (`bench`) are built on it; the
//! `gigacompute` binary only parses the command line.

pub mod config;
pub mod datadir;
pub mod http;
pub mod hwtopo;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod rawport;
pub mod scaleout;
pub mod wiring;

pub use config::Config;
pub use node::Node;
