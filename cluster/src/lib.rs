//! Scale-out over several appliances, coordinated by etcd: each node's membership under a
//! lease, the partition map that says which node owns which accounts, the routing rule that
//! follows from it, and the cluster clock that gives every node one slot number and one
//! blockhash. See the crate README.

pub mod clock;
pub mod colocate;
pub mod config;
pub mod etcd;
pub mod map;
pub mod migration;
pub mod peer;
pub mod root;
pub mod view;

pub use clock::ClusterClock;
pub use config::ClusterConfig;
pub use map::{ClusterSpec, PartitionMap, partition_of};
pub use migration::{Migration, MigrationState};
pub use view::{ClusterView, NodeRecord, Route, Snapshot};
