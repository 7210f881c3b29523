//! Solana-compatible JSON-RPC: the server tile, the methods and their encodings, PubSub over
//! WebSocket, and the JSON form of state proofs (which `gigacompute proof verify` checks).

pub mod encode;
pub mod faucet;
pub mod framing;
pub mod methods;
pub mod params;
pub mod proof_json;
mod proofs;
pub mod pubsub;
pub mod server;

pub use methods::Rpc;
pub use pubsub::PubSubServer;
pub use server::RpcServer;
