//! Solana-compatible JSON-RPC: the server tile, the methods (the ledger's history among them)
//! and their encodings, PubSub over
//! WebSocket, and the JSON form of state proofs (which `gigacompute proof verify` checks).

pub mod cluster;
mod cluster_root;
pub mod encode;
pub mod faucet;
pub mod filters;
pub mod forward;
pub mod framing;
mod history_methods;
pub mod methods;
pub mod params;
pub mod parsed;
pub mod prioritization_fees;
pub mod proof_json;
mod proofs;
pub mod pubsub;
pub mod router;
mod router_pubsub;
pub mod server;
pub mod supply;

pub use methods::Rpc;
pub use pubsub::PubSubServer;
pub use server::RpcServer;
