//! GigaCompute dataplane: packet I/O, Solana wire-format parsing, dedup and signature
//! verification. Knows nothing of accounts: its output is a verified transaction descriptor
//! pointing into the packet that carried it.

pub mod config;
pub mod counters;
pub mod dedup;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod fair;
pub mod frame;
pub mod ingress;
pub mod nic;
pub mod packet;
pub mod parse;
pub mod preconf;
pub mod recent;
pub mod reply;
pub mod ring;
pub mod route;
pub mod sigverify;
pub mod socket;
pub mod tiles;
pub mod verified;

pub use counters::DataplaneCounters;
pub use ingress::{Ingress, SubmitError};
pub use packet::{Arena, Packet, PacketBox, PacketPool, PortReply, Source, monotonic_ns};
pub use parse::{ParseError, TxDescriptor, parse_transaction};
pub use verified::VerifiedTx;
