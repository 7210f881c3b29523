//! GigaCompute dataplane: packet I/O, Solana wire-format parsing, dedup and signature
//! verification. Knows nothing of accounts: its output is a verified transaction descriptor
//! pointing into the packet that carried it.

pub mod dedup;
pub mod packet;
pub mod parse;
pub mod sigverify;
pub mod socket;

pub use packet::{Packet, PacketPool, Source, monotonic_ns};
pub use parse::{ParseError, TxDescriptor, parse_transaction};
