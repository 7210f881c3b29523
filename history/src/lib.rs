//! The ledger's history on disk, within a retention: every durable slot's record (header and
//! transaction statuses) appended to segment files under `DATA_DIR/history`, and the indexes
//! the RPC's history methods read (getBlock, getBlocks, getBlockTime,
//! getSignaturesForAddress, getTransaction past the runtime's memory). Fed by the commit tile
//! through the history tile; rebuilt from the files at start.

pub mod config;
pub mod extract;
pub mod segment;
pub mod store;
pub mod tile;

pub use config::HistoryConfig;
pub use store::{Block, History, HistoryError, HistoryStats, SignatureInfo};
pub use tile::HistoryTile;

#[cfg(test)]
mod tests;
