//! Response encodings: accounts, token amounts, transaction errors and transactions, in the
//! shapes Agave's RPC returns.

use super::params::Encoding;
use super::server::RpcError;
use base64::Engine;
use runtime::chain::{TokenBalance, TxStatus};
use serde_json::{Value, json};
use solana_account::{AccountSharedData, ReadableAccount};
use solana_message::VersionedMessage;
use solana_pubkey::Pubkey;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction_error::TransactionError;

/// Agave refuses base58 for account data larger than this.
const MAX_BASE58_BYTES: usize = 128;
/// SPL token account layout: mint 0..32, owner 32..64, amount 64..72, state at 108.
const TOKEN_ACCOUNT_LEN: usize = 165;
const MINT_LEN: usize = 82;
const TOKEN_PROGRAM: Pubkey = Pubkey::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
const TOKEN_2022_PROGRAM: Pubkey =
    Pubkey::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");

pub fn account(
    a: &AccountSharedData,
    enc: Encoding,
    slice: Option<(usize, usize)>,
) -> Result<Value, RpcError> {
    let data = a.data();
    let data = match slice {
        Some((o, l)) => {
            let start = o.min(data.len());
            &data[start..start.saturating_add(l).min(data.len())]
        }
        None => data,
    };
    if matches!(enc, Encoding::Binary | Encoding::Base58) && data.len() > MAX_BASE58_BYTES {
        return Err(RpcError::invalid_params(format!(
            "Encoded binary (base 58) data should be less than {MAX_BASE58_BYTES} bytes, please use Base64 encoding."
        )));
    }
    let encoded = match enc {
        Encoding::Binary => json!(bs58::encode(data).into_string()),
        Encoding::Base58 => json!([bs58::encode(data).into_string(), "base58"]),
        Encoding::Base64 => json!([
            base64::engine::general_purpose::STANDARD.encode(data),
            "base64"
        ]),
    };
    Ok(json!({
        "data": encoded,
        "executable": a.executable(),
        "lamports": a.lamports(),
        "owner": a.owner().to_string(),
        "rentEpoch": a.rent_epoch(),
        "space": a.data().len(),
    }))
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

fn token_balances(v: &[TokenBalance]) -> Value {
    Value::Array(
        v.iter()
            .map(|t| {
                json!({
                    "accountIndex": t.account_index,
                    "mint": t.mint.to_string(),
                    "owner": t.owner.to_string(),
                    "programId": t.program_id.to_string(),
                    "uiTokenAmount": ui_token_amount(t.amount, t.decimals),
                })
            })
            .collect(),
    )
}

fn message_json(m: &VersionedMessage) -> Value {
    let header = m.header();
    let instructions: Vec<Value> = m
        .instructions()
        .iter()
        .map(|ix| {
            json!({
                "programIdIndex": ix.program_id_index,
                "accounts": ix.accounts,
                "data": bs58::encode(&ix.data).into_string(),
                "stackHeight": null,
            })
        })
        .collect();
    let mut out = json!({
        "accountKeys": m.static_account_keys().iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        "header": {
            "numRequiredSignatures": header.num_required_signatures,
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
        },
        "recentBlockhash": m.recent_blockhash().to_string(),
        "instructions": instructions,
    });
    if let Some(lookups) = m.address_table_lookups() {
        out["addressTableLookups"] = Value::Array(
            lookups
                .iter()
                .map(|l| {
                    json!({
                        "accountKey": l.account_key.to_string(),
                        "writableIndexes": l.writable_indexes,
                        "readonlyIndexes": l.readonly_indexes,
                    })
                })
                .collect(),
        );
    }
    out
}

/// getTransaction's result for one stored status.
pub fn transaction(
    st: &TxStatus,
    cfg: &serde_json::Map<String, Value>,
    max_version: Option<u64>,
    block_time: Option<i64>,
) -> Result<Value, RpcError> {
    let vtx: VersionedTransaction =
        bincode::deserialize(&st.transaction).map_err(RpcError::internal)?;
    let version = match &vtx.message {
        VersionedMessage::Legacy(_) => Value::String("legacy".into()),
        _ => json!(0),
    };
    if !matches!(vtx.message, VersionedMessage::Legacy(_)) && max_version.is_none() {
        return Err(RpcError::new(
            -32015,
            "Transaction version (0) is not supported by the requesting client. Please try the request again with the following configuration parameter: \"maxSupportedTransactionVersion\": 0",
        ));
    }
    let tx = match cfg
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("json")
    {
        "json" | "jsonParsed" => json!({
            "signatures": vtx.signatures.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "message": message_json(&vtx.message),
        }),
        "base64" => json!([
            base64::engine::general_purpose::STANDARD.encode(&st.transaction),
            "base64"
        ]),
        "base58" => json!([bs58::encode(&st.transaction).into_string(), "base58"]),
        other => {
            return Err(RpcError::invalid_params(format!(
                "unsupported encoding: {other}"
            )));
        }
    };
    let mut out = json!({
        "slot": st.slot,
        "blockTime": block_time,
        "transaction": tx,
        "meta": {
            "err": tx_error(&st.err),
            "status": legacy_status(&st.err),
            "fee": st.fee,
            "preBalances": st.pre_balances,
            "postBalances": st.post_balances,
            "innerInstructions": [],
            "logMessages": st.logs,
            "preTokenBalances": token_balances(&st.pre_token_balances),
            "postTokenBalances": token_balances(&st.post_token_balances),
            "rewards": [],
            "loadedAddresses": {
                "writable": st.loaded_writable.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
                "readonly": st.loaded_readonly.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
            },
            "computeUnitsConsumed": st.compute_units,
        },
    });
    if max_version.is_some() {
        out["version"] = version;
    }
    Ok(out)
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
