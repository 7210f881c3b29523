//! The history methods, answered from the `history` crate's store (blocks, block times,
//! address signatures, transactions past the runtime's memory) with Agave's result shapes
//! and errors: -32004 a block not (yet) available, -32001 a block cleaned up by the
//! retention, -32007 a slot skipped, -32011 no history on this node.

use super::encode;
use super::methods::{Rpc, json_len};
use super::params::{Call, Config, MAX_BLOCKS_RANGE, TransactionDetails};
use super::server::{RpcError, RpcResult};
use history::History;
use serde_json::{Value, json};
use solana_message::VersionedMessage;
use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;

fn not_available(slot: u64) -> RpcError {
    RpcError::new(-32004, format!("Block not available for slot {slot}"))
}

fn cleaned_up(slot: u64, first: u64) -> RpcError {
    RpcError::new(
        -32001,
        format!("Block {slot} cleaned up, does not exist on node. First available block: {first}"),
    )
}

fn skipped(slot: u64) -> RpcError {
    RpcError::new(
        -32007,
        format!("Slot {slot} was skipped, or missing due to ledger jump to recent snapshot"),
    )
}

fn no_history() -> RpcError {
    RpcError::new(
        -32011,
        "Transaction history is not available from this node",
    )
}

fn history_error(e: history::HistoryError) -> RpcError {
    RpcError::internal(format!("history unreadable: {e}"))
}

fn too_large(limit: usize) -> RpcError {
    RpcError::new(
        -32600,
        format!(
            "Invalid request: the block would be larger than this node's limit of {limit} bytes \
             (rpc.max_response_bytes): ask for transactionDetails \"signatures\" or \"none\""
        ),
    )
}

/// Agave's refusal of a v0 transaction to a client that did not say it reads them.
fn unsupported_version() -> RpcError {
    RpcError::new(
        -32015,
        "Transaction version (0) is not supported by the requesting client. Please try the request again with the following configuration parameter: \"maxSupportedTransactionVersion\": 0",
    )
}

impl Rpc {
    /// Answers a history call ([`Call::GetBlock`] and the others after it).
    pub(crate) fn history_call(&self, call: Call) -> RpcResult {
        let h = self.history.as_deref();
        match call {
            Call::GetBlock {
                slot,
                config,
                details,
                rewards,
                max_version,
            } => self.block(h, slot, &config, details, rewards, max_version),
            Call::GetBlocks { start, end } => {
                let durable = self.chain.durable_slot();
                let end = end
                    .unwrap_or(start.saturating_add(MAX_BLOCKS_RANGE))
                    .min(durable);
                if end < start {
                    return Ok(json!([]));
                }
                if end - start > MAX_BLOCKS_RANGE {
                    return Err(RpcError::invalid_params(format!(
                        "Slot range too large; max {MAX_BLOCKS_RANGE}"
                    )));
                }
                Ok(json!(
                    h.map(|h| h.slots(start, end, usize::MAX))
                        .unwrap_or_default()
                ))
            }
            Call::GetBlocksWithLimit { start, limit } => {
                let durable = self.chain.durable_slot();
                Ok(json!(
                    h.map(|h| h.slots(start, durable, limit as usize))
                        .unwrap_or_default()
                ))
            }
            Call::GetBlockTime { slot } => self.block_time(h, slot),
            Call::GetSignaturesForAddress {
                address,
                before,
                until,
                limit,
                at,
            } => {
                let h = h.ok_or_else(no_history)?;
                let durable = self.chain.durable_slot();
                if let Some(min) = at.min_context_slot
                    && durable < min
                {
                    return Err(
                        RpcError::new(-32016, "Minimum context slot has not been reached")
                            .with_data(json!({"contextSlot": durable})),
                    );
                }
                let infos = h
                    .signatures_for_address(
                        &address,
                        before.as_ref(),
                        until.as_ref(),
                        limit,
                        durable,
                    )
                    .map_err(history_error)?;
                Ok(Value::Array(
                    infos
                        .into_iter()
                        .map(|i| {
                            json!({
                                "signature": i.signature.to_string(),
                                "slot": i.slot,
                                "err": encode::tx_error(&i.err),
                                "memo": i.memo,
                                "blockTime": i.block_time,
                                // History holds durable slots only: final on this chain.
                                "confirmationStatus": "finalized",
                            })
                        })
                        .collect(),
                ))
            }
            Call::GetFirstAvailableBlock | Call::MinimumLedgerSlot => {
                Ok(json!(h.and_then(History::first_slot).unwrap_or(0)))
            }
            _ => Err(RpcError::internal("not a history method")),
        }
    }

    /// getTransaction of a signature the runtime's memory no longer holds.
    pub(crate) fn history_transaction(
        &self,
        sig: &Signature,
        config: &Config,
        max_version: Option<u64>,
    ) -> RpcResult {
        let Some(h) = &self.history else {
            return Ok(Value::Null);
        };
        match h.transaction(sig).map_err(history_error)? {
            Some((st, block_time)) => {
                encode::transaction(&st, config, max_version, Some(block_time))
            }
            None => Ok(Value::Null),
        }
    }

    /// Why `slot` has no block here: not durable (or not yet in the history), cleaned up
    /// by the retention, or skipped.
    fn missing_block(&self, h: Option<&History>, slot: u64) -> RpcError {
        let Some(h) = h else {
            return not_available(slot);
        };
        match (h.first_slot(), h.last_slot()) {
            (Some(first), _) if slot < first => cleaned_up(slot, first),
            (Some(_), Some(last)) if slot < last => skipped(slot),
            _ => not_available(slot),
        }
    }

    fn block(
        &self,
        h: Option<&History>,
        slot: u64,
        config: &Config,
        details: TransactionDetails,
        rewards: bool,
        max_version: Option<u64>,
    ) -> RpcResult {
        if slot > self.chain.durable_slot() {
            return Err(not_available(slot));
        }
        let block = match h
            .map(|h| h.block(slot))
            .transpose()
            .map_err(history_error)?
        {
            Some(Some(b)) => b,
            _ => return Err(self.missing_block(h, slot)),
        };
        let header = &block.record.header;
        let mut out = json!({
            "blockHeight": slot,
            "blockTime": header.unix_timestamp,
            "blockhash": header.blockhash.to_string(),
            "parentSlot": block.parent_slot,
            "previousBlockhash": header.parent_blockhash.to_string(),
        });
        let statuses = &block.record.statuses;
        let mut bytes = json_len(&out);
        match details {
            TransactionDetails::Full | TransactionDetails::Accounts => {
                let mut txs = Vec::with_capacity(statuses.len());
                for st in statuses {
                    let mut tx =
                        encode::transaction(st, config, max_version, Some(header.unix_timestamp))?;
                    if let Value::Object(m) = &mut tx {
                        m.remove("slot");
                        m.remove("blockTime");
                    }
                    if details == TransactionDetails::Accounts {
                        tx = accounts_only(st, tx, rewards)?;
                    }
                    bytes += json_len(&tx);
                    if bytes > self.max_response_bytes {
                        return Err(too_large(self.max_response_bytes));
                    }
                    txs.push(tx);
                }
                out["transactions"] = Value::Array(txs);
            }
            TransactionDetails::Signatures => {
                out["signatures"] = json!(
                    statuses
                        .iter()
                        .map(|s| s.signature.to_string())
                        .collect::<Vec<_>>()
                );
            }
            TransactionDetails::None => {}
        }
        if rewards {
            // This chain pays no rewards.
            out["rewards"] = json!([]);
        }
        Ok(out)
    }

    fn block_time(&self, h: Option<&History>, slot: u64) -> RpcResult {
        if let Some(t) = h.and_then(|h| h.block_time(slot)) {
            return Ok(json!(t));
        }
        let from_memory = || {
            (slot <= self.chain.processed_slot())
                .then(|| self.chain.header(slot))
                .flatten()
                .map(|header| json!(header.unix_timestamp))
        };
        // Processed slots (as Agave answers unrooted ones from its banks), and durable ones
        // the history has not (yet) taken; cleaned-up and skipped slots are errors.
        let err = if slot > self.chain.durable_slot() {
            not_available(slot)
        } else {
            self.missing_block(h, slot)
        };
        match (err.code, from_memory()) {
            (-32004, Some(t)) => Ok(t),
            _ => Err(err),
        }
    }
}

/// getBlock's `transactionDetails: "accounts"` form of one transaction, from its full JSON
/// form: signatures and account keys (with writable, signer, source), and the meta without
/// instructions, logs, loaded addresses or compute units, as Agave's
/// `build_json_accounts`.
fn accounts_only(st: &runtime::chain::TxStatus, full: Value, rewards: bool) -> RpcResult {
    let vtx: VersionedTransaction =
        bincode::deserialize(&st.transaction).map_err(RpcError::internal)?;
    if !matches!(vtx.message, VersionedMessage::Legacy(_)) && full.get("version").is_none() {
        return Err(unsupported_version());
    }
    let m = &vtx.message;
    let header = m.header();
    let keys = m.static_account_keys();
    let signed = usize::from(header.num_required_signatures);
    let signed_writable = signed.saturating_sub(usize::from(header.num_readonly_signed_accounts));
    let unsigned_writable_end = keys
        .len()
        .saturating_sub(usize::from(header.num_readonly_unsigned_accounts));
    let mut accounts: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            json!({
                "pubkey": k.to_string(),
                "writable": i < signed_writable || (i >= signed && i < unsigned_writable_end),
                "signer": i < signed,
                "source": "transaction",
            })
        })
        .collect();
    for (loaded, writable) in [(&st.loaded_writable, true), (&st.loaded_readonly, false)] {
        accounts.extend(loaded.iter().map(|k| {
            json!({"pubkey": k.to_string(), "writable": writable, "signer": false, "source": "lookupTable"})
        }));
    }
    let mut meta = serde_json::Map::new();
    for key in [
        "err",
        "status",
        "fee",
        "preBalances",
        "postBalances",
        "preTokenBalances",
        "postTokenBalances",
    ] {
        if let Some(v) = full["meta"].get(key) {
            meta.insert(key.into(), v.clone());
        }
    }
    if rewards {
        meta.insert("rewards".into(), json!([]));
    }
    let mut out = json!({
        "transaction": {
            "signatures": vtx.signatures.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "accountKeys": accounts,
        },
        "meta": meta,
    });
    if let Some(v) = full.get("version") {
        out["version"] = v.clone();
    }
    Ok(out)
}
