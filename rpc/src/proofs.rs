//! State-commitment methods: `getSlotHeader` (a slot's roots) and `getAccountWithProof`
//! (an account, or its absence, with a proof against a slot's state root). Their parameters
//! are read by [`crate::params`].

use super::methods::Rpc;
use super::server::{RpcError, RpcResult};
use base64::Engine;
use serde_json::json;
use solana_pubkey::Pubkey;
use storage::commitment::{ProofQueryError, hex};

/// A slot outside what is kept, or not committed yet.
const SLOT_NOT_AVAILABLE: i64 = -32009;
/// The storage engine keeps no commitment.
const NOT_SUPPORTED: i64 = -32000;

fn query_error(e: ProofQueryError) -> RpcError {
    match e {
        ProofQueryError::NotRetained {
            slot,
            oldest,
            newest,
        } if slot > newest => RpcError::new(
            SLOT_NOT_AVAILABLE,
            format!("slot {slot} is not committed yet (newest committed slot {newest})"),
        )
        .with_data(json!({"oldest": oldest, "newest": newest})),
        ProofQueryError::NotRetained { oldest, newest, .. }
        | ProofQueryError::HistoryNotHeld { oldest, newest, .. } => {
            RpcError::new(SLOT_NOT_AVAILABLE, e.to_string())
                .with_data(json!({"oldest": oldest, "newest": newest}))
        }
        ProofQueryError::NoSlot => RpcError::new(SLOT_NOT_AVAILABLE, e.to_string()),
        ProofQueryError::Unsupported(_) => RpcError::new(NOT_SUPPORTED, e.to_string()),
        ProofQueryError::Store(_) | ProofQueryError::Inconsistent { .. } => RpcError::internal(e),
    }
}

impl Rpc {
    pub(super) fn slot_header(&self, slot: Option<u64>) -> RpcResult {
        let c = self.db.slot_commitment(slot).map_err(query_error)?;
        let chain = self.chain.header(c.slot);
        let lattice: Vec<u8> = c.lattice.0.iter().flat_map(|l| l.to_le_bytes()).collect();
        Ok(json!({
            "slot": c.slot,
            "parentBlockhash": chain.as_ref().map(|h| h.parent_blockhash.to_string()),
            "blockhash": chain.as_ref().map(|h| h.blockhash.to_string()),
            "transactionCount": chain.as_ref().map(|h| h.transaction_count),
            "stateRoot": hex(&c.root),
            "treeDepth": c.depth,
            "accounts": c.accounts,
            "latticeHashChecksum": bs58::encode(c.lattice_checksum()).into_string(),
            "latticeHash": base64::engine::general_purpose::STANDARD.encode(lattice),
        }))
    }

    pub(crate) fn account_with_proof(&self, key: &Pubkey, slot: Option<u64>) -> RpcResult {
        let proof = self.db.prove(key, slot).map_err(query_error)?;
        Ok(json!({
            "context": {"slot": proof.slot, "apiVersion": super::methods::SOLANA_CORE_VERSION},
            "value": crate::proof_json::to_json(key, &proof),
        }))
    }
}
