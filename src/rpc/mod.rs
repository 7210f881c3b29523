//! Solana-compatible JSON-RPC: the server, the methods and their encodings.

pub mod encode;
pub mod methods;
mod proofs;
pub mod server;

pub use methods::Rpc;
pub use server::RpcServer;
