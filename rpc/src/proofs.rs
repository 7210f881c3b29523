//! State-commitment methods: `getSlotHeader` (a slot's roots) and `getAccountWithProof`
//! (an account, or its absence, with a proof against a slot's state root).

use super::methods::Rpc;
use super::server::{RpcError, RpcResult};
use base64::Engine;
use serde_json::{Value, json};
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

/// Optional slot: a number, or an object with `slot`, at parameter `i`.
fn slot_param(p: &[Value], i: usize) -> Result<Option<u64>, RpcError> {
    let v = match p.get(i) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) => match m.get("slot") {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => v,
        },
        Some(v) => v,
    };
    v.as_u64()
        .map(Some)
        .ok_or_else(|| RpcError::invalid_params("slot must be an unsigned integer"))
}

impl Rpc {
    pub(super) fn slot_header(&self, p: &[Value]) -> RpcResult {
        let slot = slot_param(p, 0)?;
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

    pub(super) fn account_with_proof(&self, p: &[Value]) -> RpcResult {
        let key = super::methods::pubkey_param(p, 0)?;
        if let Some(Value::Object(m)) = p.get(1)
            && let Some(enc) = m.get("encoding").and_then(Value::as_str)
            && enc != "base64"
        {
            return Err(RpcError::invalid_params(
                "getAccountWithProof returns account data as base64 only (the proof covers its exact bytes)",
            ));
        }
        let slot = slot_param(p, 1)?;
        let proof = self.db.prove(&key, slot).map_err(query_error)?;
        Ok(json!({
            "context": {"slot": proof.slot, "apiVersion": super::methods::SOLANA_CORE_VERSION},
            "value": crate::proof_json::to_json(&key, &proof),
        }))
    }
}
