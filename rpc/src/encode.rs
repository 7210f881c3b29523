//! Response encodings: accounts, token amounts, transaction errors and transactions, in the
//! shapes Agave's RPC returns.

use super::params::{AccountEncoding, Encoding};
use super::parsed;
pub use super::parsed::Lookup;
use super::server::RpcError;
use runtime::chain::TxStatus;
use serde_json::{Value, json};
use solana_account::{AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;
use solana_transaction_error::TransactionError;

/// Agave refuses base58 for account data larger than this.
const MAX_BASE58_BYTES: usize = 128;
/// SPL token account layout: mint 0..32, owner 32..64, amount 64..72, state at 108.
const TOKEN_ACCOUNT_LEN: usize = 165;
const MINT_LEN: usize = 82;
const TOKEN_PROGRAM: Pubkey = Pubkey::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
const TOKEN_2022_PROGRAM: Pubkey =
    Pubkey::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");

/// One account in `enc` (encoding and `dataSlice`), as Agave's getAccountInfo writes it: base
/// 58 refused (-32600) for data over 128 bytes, jsonParsed through Agave's parsers with the
/// token account's mint read through `lookup` (at the request's commitment), falling back to
/// base 64 where Agave does. The one account encoder: every method and notification that
/// returns accounts calls it.
pub fn account(
    key: &Pubkey,
    a: &AccountSharedData,
    enc: &AccountEncoding,
    lookup: Lookup<'_>,
) -> Result<Value, RpcError> {
    if matches!(enc.encoding, Encoding::Binary | Encoding::Base58) {
        let len = match enc.slice {
            Some((offset, length)) => length.min(a.data().len().saturating_sub(offset)),
            None => a.data().len(),
        };
        if len > MAX_BASE58_BYTES {
            return Err(RpcError::new(
                -32600,
                format!(
                    "Encoded binary (base 58) data should be less than {MAX_BASE58_BYTES} bytes, please use Base64 encoding."
                ),
            ));
        }
    }
    parsed::account(key, a, enc.encoding, enc.slice, lookup)
}

/// (mint, amount) of an initialized SPL Token / Token-2022 account.
pub fn token_account(a: &AccountSharedData) -> Option<(Pubkey, u64)> {
    if a.owner() != &TOKEN_PROGRAM && a.owner() != &TOKEN_2022_PROGRAM {
        return None;
    }
    let d = a.data();
    if d.len() < TOKEN_ACCOUNT_LEN || !matches!(d[108], 1 | 2) {
        return None;
    }
    let mint = Pubkey::new_from_array(d[0..32].try_into().ok()?);
    let amount = u64::from_le_bytes(d[64..72].try_into().ok()?);
    Some((mint, amount))
}

/// Decimals of an initialized mint (layout: decimals at 44, is_initialized at 45).
pub fn mint_decimals(a: &AccountSharedData) -> Option<u8> {
    if a.owner() != &TOKEN_PROGRAM && a.owner() != &TOKEN_2022_PROGRAM {
        return None;
    }
    let d = a.data();
    (d.len() >= MINT_LEN && d[45] == 1).then(|| d[44])
}

pub fn ui_amount_string(amount: u64, decimals: u8) -> String {
    if decimals == 0 {
        return amount.to_string();
    }
    let s = format!("{:0>width$}", amount, width = usize::from(decimals) + 1);
    let (int, frac) = s.split_at(s.len() - usize::from(decimals));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

pub fn ui_token_amount(amount: u64, decimals: u8) -> Value {
    json!({
        "amount": amount.to_string(),
        "decimals": decimals,
        "uiAmount": amount as f64 / 10f64.powi(i32::from(decimals)),
        "uiAmountString": ui_amount_string(amount, decimals),
    })
}

pub fn tx_error(err: &Option<TransactionError>) -> Value {
    match err {
        None => Value::Null,
        Some(e) => serde_json::to_value(e).unwrap_or_else(|_| json!(e.to_string())),
    }
}

pub fn legacy_status(err: &Option<TransactionError>) -> Value {
    match err {
        None => json!({"Ok": null}),
        Some(_) => json!({"Err": tx_error(err)}),
    }
}

/// getTransaction's result for one stored status: Agave's `{transaction, meta, version}` in
/// the config's `encoding` (json by default; binary, base58, base64, json, jsonParsed), with
/// the slot and block time. getBlock's transactions are the same without those two.
pub fn transaction(
    st: &TxStatus,
    cfg: &serde_json::Map<String, Value>,
    max_version: Option<u64>,
    block_time: Option<i64>,
) -> Result<Value, RpcError> {
    let encoding = parsed::transaction_encoding(
        cfg.get("encoding")
            .and_then(Value::as_str)
            .unwrap_or("json"),
    )?;
    let mut out = parsed::transaction_with_meta(st, encoding, max_version, true)?;
    out["slot"] = json!(st.slot);
    out["blockTime"] = json!(block_time);
    Ok(out)
}

/// A signed pre-confirmation as JSON: the promise's fields, the signer and the datagram
/// itself (base64), which `gigacompute preconf verify` or any ed25519 library checks.
pub fn preconfirmation(datagram: &[u8]) -> Value {
    use base64::Engine;
    use dataplane::preconf::{FLAG_BLOCKHASH_NEAR_EXPIRY, Outcome, Stage, verify};
    let Ok(v) = verify(datagram, None) else {
        return Value::Null;
    };
    let b = &v.body;
    let reason = (b.reason as usize)
        .checked_sub(1)
        .and_then(|i| runtime::metrics::RuntimeDrop::ALL.get(i))
        .map(|r| r.name());
    json!({
        "stage": match b.stage {
            Stage::Rejected => "rejected",
            Stage::Admitted => "admitted",
            Stage::Executed => "executed",
        },
        "outcome": match b.outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::NotIncluded => "notIncluded",
        },
        "probability": b.probability,
        "expectedSlot": b.expected_slot,
        "deadlineSlot": b.deadline_slot,
        "fee": b.fee,
        "balanceChanges": b.deltas().iter().map(|(i, d)| json!({"accountIndex": i, "lamports": d})).collect::<Vec<_>>(),
        "reason": reason,
        "blockhashNearExpiry": b.flags & FLAG_BLOCKHASH_NEAR_EXPIRY != 0,
        "issuedSlot": b.issued_slot,
        "issuedAtUs": b.unix_us,
        "modelGeneration": b.generation,
        "identity": bs58::encode(v.identity).into_string(),
        "message": base64::engine::general_purpose::STANDARD.encode(datagram),
    })
}

/// Checks a pre-confirmation as a client holds it: `message` (base64, as
/// getSignaturePreconfirmations gives it) signed by `identity` (base58). Its fields, or why not.
pub fn verify_preconfirmation(message: &str, identity: &str) -> Result<Value, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(message.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let key: [u8; 32] = bs58::decode(identity.trim())
        .into_vec()
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or("the identity is not a base-58 public key")?;
    dataplane::preconf::verify(&bytes, Some(&key)).map_err(|e| e.to_string())?;
    Ok(preconfirmation(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_amounts() {
        assert_eq!(ui_amount_string(1_500_000, 6), "1.5");
        assert_eq!(ui_amount_string(5, 2), "0.05");
        assert_eq!(ui_amount_string(100, 2), "1");
        assert_eq!(ui_amount_string(42, 0), "42");
    }

    #[test]
    fn errors_serialize_like_agave() {
        let e = TransactionError::InstructionError(
            0,
            solana_instruction::error::InstructionError::Custom(1),
        );
        assert_eq!(
            tx_error(&Some(e)),
            json!({"InstructionError": [0, {"Custom": 1}]})
        );
        assert_eq!(
            tx_error(&Some(TransactionError::BlockhashNotFound)),
            json!("BlockhashNotFound")
        );
    }
}
