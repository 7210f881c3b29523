//! What each JSON-RPC method asks for, read from the request's `params` with no node behind
//! it: every check of the parameters happens here, before a method touches the node
//! ([`crate::methods`] answers the [`Call`] that [`parse`] returns). The fuzz target
//! `rpc_params` (fuzz/) compiles this file on its own.

use super::framing::RpcError;
use base64::Engine;
use dataplane::{Packet, PacketBox, TxDescriptor, VerifiedTx, parse_transaction};
use runtime::chain::Commitment;
use serde_json::{Map, Value};
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use std::str::FromStr;

/// The methods this node answers (anything else is -32601).
pub const METHODS: &[&str] = &[
    "getVersion",
    "getHealth",
    "getSlot",
    "getBlockHeight",
    "getGenesisHash",
    "getEpochInfo",
    "getLatestBlockhash",
    "isBlockhashValid",
    "getBalance",
    "getAccountInfo",
    "getMultipleAccounts",
    "getMinimumBalanceForRentExemption",
    "getFeeForMessage",
    "getSignatureStatuses",
    "getTransaction",
    "getSlotHeader",
    "getAccountWithProof",
    "sendTransaction",
    "simulateTransaction",
    "requestAirdrop",
    "getTokenAccountBalance",
];

pub const MAX_MULTIPLE_ACCOUNTS: usize = 100;
pub const MAX_SIGNATURE_STATUSES: usize = 256;
/// Encoded transaction size limits (Agave: base58 1683, base64 1644 characters).
pub const MAX_BASE58_TX_CHARS: usize = 1683;
pub const MAX_BASE64_TX_CHARS: usize = 1644;
/// Largest `dataLength` getMinimumBalanceForRentExemption prices.
pub const MAX_RENT_DATA_LEN: u64 = 10 * 1024 * 1024;

/// A method's configuration object (`{}` when absent or null).
pub type Config = Map<String, Value>;

/// Which slot a call reads at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotConfig {
    pub commitment: Commitment,
    /// `minContextSlot`: the call fails (-32016) while the slot read is below it.
    pub min_context_slot: Option<u64>,
}

/// How account data is returned: encoding and `dataSlice` (offset, length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountEncoding {
    pub encoding: Encoding,
    pub slice: Option<(usize, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Legacy: a bare base-58 string.
    Binary,
    Base58,
    Base64,
}

impl Encoding {
    /// `jsonParsed` falls back to base64 as Agave does for data it has no parser for.
    pub fn from_config(cfg: &Config) -> Result<Self, RpcError> {
        match cfg.get("encoding").and_then(Value::as_str) {
            None => Ok(Encoding::Binary),
            Some("binary") => Ok(Encoding::Binary),
            Some("base58") => Ok(Encoding::Base58),
            Some("base64") | Some("jsonParsed") => Ok(Encoding::Base64),
            Some(other) => Err(RpcError::invalid_params(format!(
                "unsupported encoding: {other}; supported: binary, base58, base64, jsonParsed"
            ))),
        }
    }
}

/// getFeeForMessage's message, as the transaction (zeroed signatures) the fee is computed on.
pub struct FeeMessage {
    pub tx: Vec<u8>,
    pub desc: TxDescriptor,
}

/// One call, its parameters checked.
pub enum Call {
    GetVersion,
    GetHealth,
    /// getSlot and getBlockHeight.
    GetSlot(SlotConfig),
    GetGenesisHash,
    GetEpochInfo(SlotConfig),
    GetLatestBlockhash(SlotConfig),
    IsBlockhashValid {
        blockhash: Hash,
        at: SlotConfig,
    },
    GetBalance {
        key: Pubkey,
        at: SlotConfig,
    },
    GetAccountInfo {
        key: Pubkey,
        at: SlotConfig,
        encoding: AccountEncoding,
    },
    GetMultipleAccounts {
        keys: Vec<Pubkey>,
        at: SlotConfig,
        encoding: AccountEncoding,
    },
    GetMinimumBalanceForRentExemption {
        data_len: u64,
    },
    GetFeeForMessage {
        message: FeeMessage,
        at: SlotConfig,
    },
    GetSignatureStatuses {
        signatures: Vec<Signature>,
    },
    GetTransaction {
        signature: Signature,
        /// Confirmed or finalized (processed is refused).
        commitment: Commitment,
        /// The configuration, `encoding` included (the legacy bare-string form becomes
        /// `{"encoding": ...}`); the encoding is checked when a transaction is found.
        config: Config,
        max_version: Option<u64>,
    },
    GetSlotHeader {
        slot: Option<u64>,
    },
    GetAccountWithProof {
        key: Pubkey,
        slot: Option<u64>,
    },
    SendTransaction {
        tx: PacketBox,
        /// The preflight simulation's commitment; `None` with `skipPreflight`.
        preflight: Option<Commitment>,
    },
    SimulateTransaction {
        tx: PacketBox,
        sig_verify: bool,
        replace_blockhash: bool,
        at: SlotConfig,
    },
    RequestAirdrop {
        to: Pubkey,
        lamports: u64,
        at: SlotConfig,
    },
    GetTokenAccountBalance {
        key: Pubkey,
        at: SlotConfig,
    },
}

/// Reads `method`'s parameters: the call, or the error it is answered with (-32601 for an
/// unknown method, -32602 for bad parameters).
pub fn parse(method: &str, p: &[Value]) -> Result<Call, RpcError> {
    Ok(match method {
        "getVersion" => Call::GetVersion,
        "getHealth" => Call::GetHealth,
        "getSlot" | "getBlockHeight" => Call::GetSlot(slot_config(&config(p, 0)?)?),
        "getGenesisHash" => Call::GetGenesisHash,
        "getEpochInfo" => Call::GetEpochInfo(slot_config(&config(p, 0)?)?),
        "getLatestBlockhash" => Call::GetLatestBlockhash(slot_config(&config(p, 0)?)?),
        "isBlockhashValid" => {
            let s = param(p, 0, "blockhash")?
                .as_str()
                .ok_or_else(|| RpcError::invalid_params("blockhash must be a string"))?;
            let blockhash =
                Hash::from_str(s).map_err(|_| RpcError::invalid_params("invalid blockhash"))?;
            Call::IsBlockhashValid {
                blockhash,
                at: slot_config(&config(p, 1)?)?,
            }
        }
        "getBalance" => Call::GetBalance {
            key: pubkey_param(p, 0)?,
            at: slot_config(&config(p, 1)?)?,
        },
        "getAccountInfo" => {
            let key = pubkey_param(p, 0)?;
            let cfg = config(p, 1)?;
            Call::GetAccountInfo {
                key,
                at: slot_config(&cfg)?,
                encoding: account_encoding(&cfg)?,
            }
        }
        "getMultipleAccounts" => {
            let keys = param(p, 0, "pubkeys")?
                .as_array()
                .ok_or_else(|| RpcError::invalid_params("pubkeys must be an array"))?;
            if keys.len() > MAX_MULTIPLE_ACCOUNTS {
                return Err(RpcError::invalid_params(format!(
                    "Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}"
                )));
            }
            let cfg = config(p, 1)?;
            let (at, encoding) = (slot_config(&cfg)?, account_encoding(&cfg)?);
            let keys = keys
                .iter()
                .map(|k| pubkey_param(std::slice::from_ref(k), 0))
                .collect::<Result<_, _>>()?;
            Call::GetMultipleAccounts { keys, at, encoding }
        }
        "getMinimumBalanceForRentExemption" => {
            let data_len = param(p, 0, "dataLength")?
                .as_u64()
                .ok_or_else(|| RpcError::invalid_params("data length must be an integer"))?;
            if data_len > MAX_RENT_DATA_LEN {
                return Err(RpcError::invalid_params("data length exceeds 10 MiB"));
            }
            Call::GetMinimumBalanceForRentExemption { data_len }
        }
        "getFeeForMessage" => {
            let s = param(p, 0, "message")?
                .as_str()
                .ok_or_else(|| RpcError::invalid_params("message must be a base-64 string"))?;
            let at = slot_config(&config(p, 1)?)?;
            Call::GetFeeForMessage {
                message: fee_message(s)?,
                at,
            }
        }
        "getSignatureStatuses" => {
            let sigs = param(p, 0, "signatures")?
                .as_array()
                .ok_or_else(|| RpcError::invalid_params("signatures must be an array"))?;
            if sigs.len() > MAX_SIGNATURE_STATUSES {
                return Err(RpcError::invalid_params(format!(
                    "Too many inputs provided; max {MAX_SIGNATURE_STATUSES}"
                )));
            }
            let _ = config(p, 1)?;
            let signatures = sigs
                .iter()
                .map(|s| {
                    s.as_str()
                        .and_then(|s| Signature::from_str(s).ok())
                        .ok_or_else(|| {
                            RpcError::invalid_params("Invalid param: not a base-58 signature")
                        })
                })
                .collect::<Result<_, _>>()?;
            Call::GetSignatureStatuses { signatures }
        }
        "getTransaction" => {
            let signature = param(p, 0, "signature")?
                .as_str()
                .and_then(|s| Signature::from_str(s).ok())
                .ok_or_else(|| {
                    RpcError::invalid_params("Invalid param: not a base-58 signature")
                })?;
            let config = match p.get(1) {
                // The legacy form passes the encoding as a bare string.
                Some(Value::String(e)) => {
                    let mut m = Config::new();
                    m.insert("encoding".into(), Value::String(e.clone()));
                    m
                }
                _ => config(p, 1)?,
            };
            let commitment = commitment(&config)?;
            if commitment == Commitment::Processed {
                return Err(RpcError::invalid_params(
                    "Method does not support commitment below `confirmed`",
                ));
            }
            let max_version = config
                .get("maxSupportedTransactionVersion")
                .and_then(Value::as_u64);
            Call::GetTransaction {
                signature,
                commitment,
                config,
                max_version,
            }
        }
        "getSlotHeader" => Call::GetSlotHeader {
            slot: slot_param(p, 0)?,
        },
        "getAccountWithProof" => {
            let key = pubkey_param(p, 0)?;
            if let Some(Value::Object(m)) = p.get(1)
                && let Some(enc) = m.get("encoding").and_then(Value::as_str)
                && enc != "base64"
            {
                return Err(RpcError::invalid_params(
                    "getAccountWithProof returns account data as base64 only (the proof covers its exact bytes)",
                ));
            }
            Call::GetAccountWithProof {
                key,
                slot: slot_param(p, 1)?,
            }
        }
        "sendTransaction" => {
            let cfg = config(p, 1)?;
            let tx = transaction_param(p, &cfg)?;
            let preflight = if bool_opt(&cfg, "skipPreflight")? {
                None
            } else {
                Some(commitment_key(&cfg, "preflightCommitment")?)
            };
            Call::SendTransaction { tx, preflight }
        }
        "simulateTransaction" => {
            let cfg = config(p, 1)?;
            let tx = transaction_param(p, &cfg)?;
            let sig_verify = bool_opt(&cfg, "sigVerify")?;
            let replace_blockhash = bool_opt(&cfg, "replaceRecentBlockhash")?;
            if sig_verify && replace_blockhash {
                return Err(RpcError::invalid_params(
                    "sigVerify may not be used with replaceRecentBlockhash",
                ));
            }
            Call::SimulateTransaction {
                tx,
                sig_verify,
                replace_blockhash,
                at: slot_config(&cfg)?,
            }
        }
        "requestAirdrop" => {
            let to = pubkey_param(p, 0)?;
            let lamports = param(p, 1, "lamports")?
                .as_u64()
                .ok_or_else(|| RpcError::invalid_params("lamports must be an integer"))?;
            Call::RequestAirdrop {
                to,
                lamports,
                at: slot_config(&config(p, 2)?)?,
            }
        }
        "getTokenAccountBalance" => Call::GetTokenAccountBalance {
            key: pubkey_param(p, 0)?,
            at: slot_config(&config(p, 1)?)?,
        },
        _ => return Err(RpcError::method_not_found()),
    })
}

pub fn param<'a>(params: &'a [Value], i: usize, name: &str) -> Result<&'a Value, RpcError> {
    params
        .get(i)
        .ok_or_else(|| RpcError::invalid_params(format!("missing parameter `{name}`")))
}

pub fn pubkey_param(params: &[Value], i: usize) -> Result<Pubkey, RpcError> {
    let s = param(params, i, "pubkey")?
        .as_str()
        .ok_or_else(|| RpcError::invalid_params("pubkey must be a base-58 string"))?;
    Pubkey::from_str(s)
        .map_err(|_| RpcError::invalid_params("Invalid param: WrongSize or not base-58"))
}

/// The configuration object at parameter `i`.
pub fn config(params: &[Value], i: usize) -> Result<Config, RpcError> {
    match params.get(i) {
        None | Some(Value::Null) => Ok(Default::default()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(RpcError::invalid_params("configuration must be an object")),
    }
}

pub fn commitment(cfg: &Config) -> Result<Commitment, RpcError> {
    commitment_key(cfg, "commitment")
}

pub fn commitment_key(cfg: &Config, key: &str) -> Result<Commitment, RpcError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(Commitment::Finalized),
        Some(Value::String(s)) => match s.as_str() {
            "processed" | "recent" => Ok(Commitment::Processed),
            "confirmed" | "single" | "singleGossip" => Ok(Commitment::Confirmed),
            "finalized" | "max" | "root" => Ok(Commitment::Finalized),
            other => Err(RpcError::invalid_params(format!(
                "unknown commitment `{other}`"
            ))),
        },
        Some(_) => Err(RpcError::invalid_params("commitment must be a string")),
    }
}

pub fn bool_opt(cfg: &Config, key: &str) -> Result<bool, RpcError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(RpcError::invalid_params(format!(
            "`{key}` must be a boolean"
        ))),
    }
}

/// `commitment` and `minContextSlot`.
pub fn slot_config(cfg: &Config) -> Result<SlotConfig, RpcError> {
    let commitment = commitment(cfg)?;
    let min_context_slot = match cfg.get("minContextSlot").filter(|v| !v.is_null()) {
        None => None,
        Some(min) => Some(
            min.as_u64()
                .ok_or_else(|| RpcError::invalid_params("minContextSlot must be an integer"))?,
        ),
    };
    Ok(SlotConfig {
        commitment,
        min_context_slot,
    })
}

pub fn account_encoding(cfg: &Config) -> Result<AccountEncoding, RpcError> {
    Ok(AccountEncoding {
        encoding: Encoding::from_config(cfg)?,
        slice: data_slice(cfg)?,
    })
}

pub fn data_slice(cfg: &Config) -> Result<Option<(usize, usize)>, RpcError> {
    match cfg.get("dataSlice") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let off = v.get("offset").and_then(Value::as_u64);
            let len = v.get("length").and_then(Value::as_u64);
            match (off, len) {
                (Some(o), Some(l)) => Ok(Some((o as usize, l as usize))),
                _ => Err(RpcError::invalid_params(
                    "dataSlice needs integer offset and length",
                )),
            }
        }
    }
}

/// Optional slot: a number, or an object with `slot`, at parameter `i`.
pub fn slot_param(p: &[Value], i: usize) -> Result<Option<u64>, RpcError> {
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

/// getFeeForMessage's base-64 message, given its (zeroed) signatures so that the descriptor
/// parser, which reads transactions, reads it.
pub fn fee_message(s: &str) -> Result<FeeMessage, RpcError> {
    let msg = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| RpcError::invalid_params("invalid base64"))?;
    let n = msg
        .first()
        .map(|b| {
            if b & 0x80 != 0 {
                msg.get(1).copied().unwrap_or(0)
            } else {
                *b
            }
        })
        .unwrap_or(0);
    let mut tx = vec![n];
    tx.resize(1 + 64 * usize::from(n), 0);
    tx.extend_from_slice(&msg);
    let desc = parse_transaction(&tx)
        .map_err(|e| RpcError::invalid_params(format!("invalid message: {e}")))?;
    Ok(FeeMessage { tx, desc })
}

/// sendTransaction's and simulateTransaction's transaction (parameter 0, in `cfg`'s encoding)
/// as a parsed and decoded packet.
pub fn transaction_param(p: &[Value], cfg: &Config) -> Result<PacketBox, RpcError> {
    let s = param(p, 0, "transaction")?
        .as_str()
        .ok_or_else(|| RpcError::invalid_params("transaction must be a string"))?;
    let bytes = match cfg
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("base58")
    {
        "base58" => {
            if s.len() > MAX_BASE58_TX_CHARS {
                return Err(RpcError::invalid_params(format!(
                    "base58 encoded solana_transaction::Transaction too large: {} bytes (max: encoded/raw {}/{})",
                    s.len(),
                    MAX_BASE58_TX_CHARS,
                    dataplane::parse::PACKET_DATA_SIZE
                )));
            }
            bs58::decode(s)
                .into_vec()
                .map_err(|e| RpcError::invalid_params(format!("invalid base58 encoding: {e}")))?
        }
        "base64" => {
            if s.len() > MAX_BASE64_TX_CHARS {
                return Err(RpcError::invalid_params(format!(
                    "base64 encoded solana_transaction::Transaction too large: {} bytes (max: encoded/raw {}/{})",
                    s.len(),
                    MAX_BASE64_TX_CHARS,
                    dataplane::parse::PACKET_DATA_SIZE
                )));
            }
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| RpcError::invalid_params(format!("invalid base64 encoding: {e}")))?
        }
        other => {
            return Err(RpcError::invalid_params(format!(
                "unsupported encoding: {other}. Supported encodings: base58, base64"
            )));
        }
    };
    let desc = parse_transaction(&bytes)
        .map_err(|e| RpcError::invalid_params(format!("failed to deserialize transaction: {e}")))?;
    // The one deserialization (and message hash) of this transaction: preflight and the
    // runtime both use it.
    let verified = VerifiedTx::decode(&bytes, desc.message(&bytes)).ok_or_else(|| {
        RpcError::invalid_params("failed to deserialize transaction: not a valid transaction")
    })?;
    let mut packet = PacketBox::new(Packet::zeroed());
    packet.fill(&bytes);
    packet.desc = Some(desc);
    packet.verified = Some(verified);
    Ok(packet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_listed_method_is_known_and_no_other() {
        for m in METHODS {
            if let Err(e) = parse(m, &[]) {
                assert_ne!(e.code, -32601, "{m}");
            }
        }
        for m in ["", "getslot", "getBlock", "sendRawTransaction"] {
            assert_eq!(parse(m, &[]).err().map(|e| e.code), Some(-32601), "{m}");
        }
    }

    #[test]
    fn configuration_is_read_before_the_node() {
        let at = |p: Value| match parse("getSlot", &[p]) {
            Ok(Call::GetSlot(at)) => Ok(at),
            Ok(_) => unreachable!(),
            Err(e) => Err(e.message),
        };
        assert_eq!(
            at(json!({"commitment": "confirmed", "minContextSlot": 7})),
            Ok(SlotConfig {
                commitment: Commitment::Confirmed,
                min_context_slot: Some(7)
            })
        );
        assert!(at(json!({"minContextSlot": -1})).is_err());
        assert!(at(json!({"commitment": 3})).is_err());
        assert!(at(json!([])).is_err());
        let e = parse(
            "getAccountInfo",
            &[
                json!("11111111111111111111111111111111"),
                json!({"encoding": "base85"}),
            ],
        )
        .err()
        .unwrap();
        assert_eq!(e.code, -32602);
    }
}
