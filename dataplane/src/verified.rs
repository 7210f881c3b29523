//! The one deserialization of a transaction. The verify tile decodes a packet whose
//! signatures passed (or which the RPC checked itself) into a [`VerifiedTx`] and hashes its
//! message here, in the parallel tiles, so the single bank thread, the simulator and the
//! workers never parse or hash the bytes again.

use solana_hash::Hash;
use solana_message::VersionedMessage;
use solana_transaction::versioned::VersionedTransaction;

/// A transaction whose signatures were checked, deserialized, with its message hash.
#[derive(Debug, Clone)]
pub struct VerifiedTx {
    pub tx: VersionedTransaction,
    /// blake3 of the message bytes, as `SanitizedTransaction` would compute it.
    pub message_hash: Hash,
}

impl VerifiedTx {
    /// Deserialize `bytes` (a whole wire transaction whose message is `message`, as the
    /// parser found it). None when bincode disagrees with the parser, which the caller
    /// counts as `ParseError::Undecodable`.
    pub fn decode(bytes: &[u8], message: &[u8]) -> Option<Box<Self>> {
        let tx: VersionedTransaction = bincode::deserialize(bytes).ok()?;
        Some(Box::new(Self {
            tx,
            message_hash: VersionedMessage::hash_raw_message(message),
        }))
    }
}
