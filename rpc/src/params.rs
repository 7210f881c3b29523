//! What each JSON-RPC method asks for, read from the request's `params` with no node behind
//! it: every check of the parameters happens here, before a method touches the node
//! ([`crate::methods`] answers the [`Call`] that [`parse`] returns). The fuzz target
//! `rpc_params` (fuzz/) compiles this file on its own.

use super::filters::{self, Filter};
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
    "getSignaturePreconfirmations",
    "getTransaction",
    "getSlotHeader",
    "getAccountWithProof",
    "getClusterStateRoot",
    "getClusterAccountProof",
    "sendTransaction",
    "simulateTransaction",
    "requestAirdrop",
    "getTokenAccountBalance",
    // The node and its one-sequencer "cluster" (rpc/src/cluster.rs).
    "getIdentity",
    "getEpochSchedule",
    "getSlotLeader",
    "getSlotLeaders",
    "getLeaderSchedule",
    "getClusterNodes",
    "getVoteAccounts",
    "getTransactionCount",
    "getInflationGovernor",
    "getInflationRate",
    "getInflationReward",
    "getStakeMinimumDelegation",
    "getBlockCommitment",
    "getBlockProduction",
    "getHighestSnapshotSlot",
    "getMaxRetransmitSlot",
    "getMaxShredInsertSlot",
    "getRecentPerformanceSamples",
    "getRecentPrioritizationFees",
    "getSupply",
    "getLargestAccounts",
    // The ledger's history (rpc/src/history_methods.rs).
    "getBlock",
    "getBlocks",
    "getBlocksWithLimit",
    "getBlockTime",
    "getSignaturesForAddress",
    "getFirstAvailableBlock",
    "minimumLedgerSlot",
    "getProgramAccounts",
    "getTokenAccountsByOwner",
    "getTokenAccountsByDelegate",
    "getTokenSupply",
    "getTokenLargestAccounts",
];

/// Agave's limits for the cluster methods.
pub const MAX_GET_SLOT_LEADERS: u64 = 5000;
pub const MAX_PERFORMANCE_SAMPLES: u64 = 720;
pub const MAX_PRIORITIZATION_FEE_ACCOUNTS: usize = 128;

pub const MAX_MULTIPLE_ACCOUNTS: usize = 100;
pub const MAX_SIGNATURE_STATUSES: usize = 256;
/// Encoded transaction size limits (Agave: base58 1683, base64 1644 characters).
pub const MAX_BASE58_TX_CHARS: usize = 1683;
pub const MAX_BASE64_TX_CHARS: usize = 1644;
/// Largest `dataLength` getMinimumBalanceForRentExemption prices.
pub const MAX_RENT_DATA_LEN: u64 = 10 * 1024 * 1024;

/// Most slots getBlocks spans, and most getBlocksWithLimit returns (Agave's
/// `MAX_GET_CONFIRMED_BLOCKS_RANGE`).
pub const MAX_BLOCKS_RANGE: u64 = 500_000;
/// getSignaturesForAddress's default and largest `limit` (Agave's
/// `MAX_GET_CONFIRMED_SIGNATURES_FOR_ADDRESS2_LIMIT`).
pub const MAX_SIGNATURES_FOR_ADDRESS: usize = 1000;

/// getBlock's `transactionDetails`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionDetails {
    Full,
    Signatures,
    None,
    Accounts,
}

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
    /// Agave's parsers (`crate::parsed`); base64 for data they cannot parse.
    JsonParsed,
}

impl Encoding {
    pub fn from_config(cfg: &Config) -> Result<Self, RpcError> {
        match cfg.get("encoding").and_then(Value::as_str) {
            None => Ok(Encoding::Binary),
            Some("binary") => Ok(Encoding::Binary),
            Some("base58") => Ok(Encoding::Base58),
            Some("base64") => Ok(Encoding::Base64),
            Some("jsonParsed") => Ok(Encoding::JsonParsed),
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
    /// This node's own: the newest signed pre-confirmation of each signature.
    GetSignaturePreconfirmations {
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
    /// Scale-out: the cluster's state root at a slot (rpc/src/cluster_root.rs).
    GetClusterStateRoot {
        slot: Option<u64>,
    },
    GetClusterAccountProof {
        key: Pubkey,
        slot: Option<u64>,
    },
    SendTransaction {
        tx: PacketBox,
        /// The preflight simulation's commitment; `None` with `skipPreflight`.
        preflight: Option<Commitment>,
        /// This node's own option: answer with the signed pre-confirmation too.
        preconfirm: bool,
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
    // The node and its one-sequencer "cluster" (answered by rpc/src/cluster.rs).
    GetIdentity,
    GetEpochSchedule,
    GetSlotLeader(SlotConfig),
    GetSlotLeaders {
        start: u64,
        limit: u64,
    },
    GetLeaderSchedule {
        slot: Option<u64>,
        identity: Option<Pubkey>,
        commitment: Commitment,
    },
    GetClusterNodes,
    GetVoteAccounts {
        vote_pubkey: Option<Pubkey>,
    },
    GetTransactionCount(SlotConfig),
    GetInflationGovernor,
    GetInflationRate,
    GetInflationReward {
        addresses: Vec<Pubkey>,
        epoch: Option<u64>,
        at: SlotConfig,
    },
    GetStakeMinimumDelegation(SlotConfig),
    GetBlockCommitment {
        slot: u64,
    },
    GetBlockProduction {
        identity: Option<Pubkey>,
        /// `range`: first slot and, optionally, last slot.
        range: Option<(u64, Option<u64>)>,
        commitment: Commitment,
    },
    GetHighestSnapshotSlot,
    /// getMaxRetransmitSlot and getMaxShredInsertSlot: the newest slot this node has.
    GetMaxSlot,
    GetRecentPerformanceSamples {
        limit: u64,
    },
    GetRecentPrioritizationFees {
        accounts: Vec<Pubkey>,
    },
    GetSupply {
        at: SlotConfig,
    },
    GetLargestAccounts {
        at: SlotConfig,
        /// `filter: "nonCirculating"` (nothing is non-circulating here).
        non_circulating: bool,
    },
    // The ledger's history (rpc/src/history_methods.rs answers these).
    GetBlock {
        slot: u64,
        /// The configuration, `encoding` included (checked here), for each transaction.
        config: Config,
        details: TransactionDetails,
        rewards: bool,
        max_version: Option<u64>,
    },
    GetBlocks {
        start: u64,
        end: Option<u64>,
    },
    GetBlocksWithLimit {
        start: u64,
        limit: u64,
    },
    GetBlockTime {
        slot: u64,
    },
    GetSignaturesForAddress {
        address: Pubkey,
        before: Option<Signature>,
        until: Option<Signature>,
        limit: usize,
        at: SlotConfig,
    },
    GetFirstAvailableBlock,
    MinimumLedgerSlot,
    // The secondary-index methods (answered in methods/account_index.rs).
    GetProgramAccounts(ProgramAccounts),
    GetTokenAccounts {
        holder: TokenHolder,
        key: Pubkey,
        filter: TokenAccountsFilter,
        at: SlotConfig,
        encoding: AccountEncoding,
    },
    GetTokenSupply {
        mint: Pubkey,
        at: SlotConfig,
    },
    GetTokenLargestAccounts {
        mint: Pubkey,
        at: SlotConfig,
    },
}

/// getProgramAccounts' parameters (Agave's `RpcProgramAccountsConfig`).
pub struct ProgramAccounts {
    pub program: Pubkey,
    pub at: SlotConfig,
    pub encoding: AccountEncoding,
    pub filters: Vec<Filter>,
    pub with_context: bool,
    /// `sortResults` (default true): by pubkey.
    pub sort_results: bool,
}

/// Whose token accounts: getTokenAccountsByOwner or getTokenAccountsByDelegate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHolder {
    Owner,
    Delegate,
}

/// Agave's `RpcTokenAccountsFilter`: `{"mint": ...}` or `{"programId": ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAccountsFilter {
    Mint(Pubkey),
    ProgramId(Pubkey),
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
        "getSignatureStatuses" => Call::GetSignatureStatuses {
            signatures: signature_list(p)?,
        },
        "getSignaturePreconfirmations" => Call::GetSignaturePreconfirmations {
            signatures: signature_list(p)?,
        },
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
        "getClusterStateRoot" => Call::GetClusterStateRoot {
            slot: slot_param(p, 0)?,
        },
        "getClusterAccountProof" => Call::GetClusterAccountProof {
            key: pubkey_param(p, 0)?,
            slot: slot_param(p, 1)?,
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
            let preconfirm = bool_opt(&cfg, "preconfirm")?;
            Call::SendTransaction {
                tx,
                preflight,
                preconfirm,
            }
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
        "getIdentity" => Call::GetIdentity,
        "getEpochSchedule" => Call::GetEpochSchedule,
        "getSlotLeader" => Call::GetSlotLeader(slot_config(&config(p, 0)?)?),
        "getSlotLeaders" => {
            let start = u64_param(p, 0, "start_slot")?;
            let limit = u64_param(p, 1, "limit")?;
            if limit > MAX_GET_SLOT_LEADERS {
                return Err(RpcError::invalid_params(format!(
                    "Invalid limit; max {MAX_GET_SLOT_LEADERS}"
                )));
            }
            Call::GetSlotLeaders { start, limit }
        }
        "getLeaderSchedule" => {
            // Agave: [slot?, config?], or [config] alone.
            let (slot, cfg) = match p.first() {
                Some(Value::Object(_)) => (None, config(p, 0)?),
                _ => (slot_param(p, 0)?, config(p, 1)?),
            };
            Call::GetLeaderSchedule {
                slot,
                identity: optional_pubkey(&cfg, "identity")?,
                commitment: commitment(&cfg)?,
            }
        }
        "getClusterNodes" => Call::GetClusterNodes,
        "getVoteAccounts" => {
            let cfg = config(p, 0)?;
            commitment(&cfg)?;
            Call::GetVoteAccounts {
                vote_pubkey: optional_pubkey(&cfg, "votePubkey")?,
            }
        }
        "getTransactionCount" => Call::GetTransactionCount(slot_config(&config(p, 0)?)?),
        "getInflationGovernor" => {
            commitment(&config(p, 0)?)?;
            Call::GetInflationGovernor
        }
        "getInflationRate" => Call::GetInflationRate,
        "getInflationReward" => {
            let addresses = pubkey_list(param(p, 0, "addresses")?, MAX_MULTIPLE_ACCOUNTS)?;
            let cfg = config(p, 1)?;
            let epoch = match cfg.get("epoch").filter(|v| !v.is_null()) {
                None => None,
                Some(v) => Some(
                    v.as_u64()
                        .ok_or_else(|| RpcError::invalid_params("epoch must be an integer"))?,
                ),
            };
            Call::GetInflationReward {
                addresses,
                epoch,
                at: slot_config(&cfg)?,
            }
        }
        "getStakeMinimumDelegation" => {
            Call::GetStakeMinimumDelegation(slot_config(&config(p, 0)?)?)
        }
        "getBlockCommitment" => Call::GetBlockCommitment {
            slot: u64_param(p, 0, "block")?,
        },
        "getBlockProduction" => {
            let cfg = config(p, 0)?;
            let range = match cfg.get("range").filter(|v| !v.is_null()) {
                None => None,
                Some(r) => {
                    let first = r.get("firstSlot").and_then(Value::as_u64).ok_or_else(|| {
                        RpcError::invalid_params("range.firstSlot must be an integer")
                    })?;
                    let last = match r.get("lastSlot").filter(|v| !v.is_null()) {
                        None => None,
                        Some(v) => Some(v.as_u64().ok_or_else(|| {
                            RpcError::invalid_params("range.lastSlot must be an integer")
                        })?),
                    };
                    Some((first, last))
                }
            };
            Call::GetBlockProduction {
                identity: optional_pubkey(&cfg, "identity")?,
                range,
                commitment: commitment(&cfg)?,
            }
        }
        "getHighestSnapshotSlot" => Call::GetHighestSnapshotSlot,
        "getMaxRetransmitSlot" | "getMaxShredInsertSlot" => Call::GetMaxSlot,
        "getRecentPerformanceSamples" => {
            let limit = match p.first() {
                None | Some(Value::Null) => MAX_PERFORMANCE_SAMPLES,
                Some(v) => v
                    .as_u64()
                    .ok_or_else(|| RpcError::invalid_params("limit must be an integer"))?,
            };
            if limit > MAX_PERFORMANCE_SAMPLES {
                return Err(RpcError::invalid_params(format!(
                    "Invalid limit; max {MAX_PERFORMANCE_SAMPLES}"
                )));
            }
            Call::GetRecentPerformanceSamples { limit }
        }
        "getRecentPrioritizationFees" => {
            let accounts = match p.first() {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => pubkey_list(v, MAX_PRIORITIZATION_FEE_ACCOUNTS)?,
            };
            Call::GetRecentPrioritizationFees { accounts }
        }
        "getSupply" => {
            let cfg = config(p, 0)?;
            bool_opt(&cfg, "excludeNonCirculatingAccountsList")?;
            Call::GetSupply {
                at: slot_config(&cfg)?,
            }
        }
        "getLargestAccounts" => {
            let cfg = config(p, 0)?;
            bool_opt(&cfg, "sortResults")?;
            let non_circulating = match cfg.get("filter") {
                None | Some(Value::Null) => false,
                Some(Value::String(f)) if f == "circulating" => false,
                Some(Value::String(f)) if f == "nonCirculating" => true,
                Some(other) => {
                    return Err(RpcError::invalid_params(format!(
                        "unknown variant {other}, expected `circulating` or `nonCirculating`"
                    )));
                }
            };
            Call::GetLargestAccounts {
                at: slot_config(&cfg)?,
                non_circulating,
            }
        }
        "getBlock"
        | "getBlocks"
        | "getBlocksWithLimit"
        | "getBlockTime"
        | "getSignaturesForAddress"
        | "getFirstAvailableBlock"
        | "minimumLedgerSlot" => history_params(method, p)?,
        "getProgramAccounts" => {
            let program = pubkey_param(p, 0)?;
            let cfg = config(p, 1)?;
            Call::GetProgramAccounts(ProgramAccounts {
                program,
                at: slot_config(&cfg)?,
                encoding: account_encoding(&cfg)?,
                filters: filters::parse(&cfg)?,
                with_context: bool_opt(&cfg, "withContext")?,
                sort_results: match cfg.get("sortResults") {
                    None | Some(Value::Null) => true,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        return Err(RpcError::invalid_params("`sortResults` must be a boolean"));
                    }
                },
            })
        }
        "getTokenAccountsByOwner" | "getTokenAccountsByDelegate" => {
            let key = pubkey_param(p, 0)?;
            let filter = token_accounts_filter(param(p, 1, "filter")?)?;
            let cfg = config(p, 2)?;
            Call::GetTokenAccounts {
                holder: if method == "getTokenAccountsByOwner" {
                    TokenHolder::Owner
                } else {
                    TokenHolder::Delegate
                },
                key,
                filter,
                at: slot_config(&cfg)?,
                encoding: account_encoding(&cfg)?,
            }
        }
        "getTokenSupply" => Call::GetTokenSupply {
            mint: pubkey_param(p, 0)?,
            at: slot_config(&config(p, 1)?)?,
        },
        "getTokenLargestAccounts" => Call::GetTokenLargestAccounts {
            mint: pubkey_param(p, 0)?,
            at: slot_config(&config(p, 1)?)?,
        },
        _ => return Err(RpcError::method_not_found()),
    })
}

/// A required unsigned integer parameter.
pub fn u64_param(p: &[Value], i: usize, name: &str) -> Result<u64, RpcError> {
    param(p, i, name)?
        .as_u64()
        .ok_or_else(|| RpcError::invalid_params(format!("`{name}` must be an unsigned integer")))
}

/// An optional base-58 pubkey in a configuration object (Agave's message when invalid).
pub fn optional_pubkey(cfg: &Config, key: &str) -> Result<Option<Pubkey>, RpcError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Pubkey::from_str(s)
            .map(Some)
            .map_err(|e| RpcError::invalid_params(format!("Invalid param: {e:?}"))),
        Some(_) => Err(RpcError::invalid_params(format!(
            "`{key}` must be a base-58 string"
        ))),
    }
}

/// An array of base-58 pubkeys, at most `max` (Agave: "Too many inputs provided; max N").
pub fn pubkey_list(v: &Value, max: usize) -> Result<Vec<Pubkey>, RpcError> {
    let items = v
        .as_array()
        .ok_or_else(|| RpcError::invalid_params("expected an array of base-58 pubkeys"))?;
    if items.len() > max {
        return Err(RpcError::invalid_params(format!(
            "Too many inputs provided; max {max}"
        )));
    }
    items
        .iter()
        .map(|k| {
            k.as_str()
                .and_then(|s| Pubkey::from_str(s).ok())
                .ok_or_else(|| RpcError::invalid_params("Invalid param: WrongSize or not base-58"))
        })
        .collect()
}

/// The history methods' parameters, as Agave reads them (its config structs' names, defaults
/// and errors).
fn history_params(method: &str, p: &[Value]) -> Result<Call, RpcError> {
    let slot_at = |i: usize, name: &str| {
        param(p, i, name)?
            .as_u64()
            .ok_or_else(|| RpcError::invalid_params(format!("`{name}` must be a slot number")))
    };
    // Below confirmed, a block may yet change: Agave refuses it for every history method.
    let at_least_confirmed = |cfg: &Config| {
        if commitment(cfg)? == Commitment::Processed {
            return Err(RpcError::invalid_params(
                "Method does not support commitment below `confirmed`",
            ));
        }
        Ok(())
    };
    Ok(match method {
        "getBlock" => {
            let slot = slot_at(0, "slot")?;
            let config = match p.get(1) {
                // The legacy form passes the encoding as a bare string.
                Some(Value::String(e)) => {
                    let mut m = Config::new();
                    m.insert("encoding".into(), Value::String(e.clone()));
                    m
                }
                _ => config(p, 1)?,
            };
            at_least_confirmed(&config)?;
            match config.get("encoding") {
                None | Some(Value::Null) => {}
                Some(Value::String(e))
                    if matches!(e.as_str(), "json" | "jsonParsed" | "base58" | "base64") => {}
                Some(other) => {
                    return Err(RpcError::invalid_params(format!(
                        "unsupported encoding: {other}; supported: json, jsonParsed, base58, base64"
                    )));
                }
            }
            let details = match config.get("transactionDetails") {
                None | Some(Value::Null) => TransactionDetails::Full,
                Some(Value::String(d)) if d == "full" => TransactionDetails::Full,
                Some(Value::String(d)) if d == "signatures" => TransactionDetails::Signatures,
                Some(Value::String(d)) if d == "none" => TransactionDetails::None,
                Some(Value::String(d)) if d == "accounts" => TransactionDetails::Accounts,
                Some(other) => {
                    return Err(RpcError::invalid_params(format!(
                        "unknown variant {other}, expected one of `full`, `signatures`, `none`, `accounts`"
                    )));
                }
            };
            let rewards = match config.get("rewards") {
                None | Some(Value::Null) => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(RpcError::invalid_params("`rewards` must be a boolean")),
            };
            let max_version = match config.get("maxSupportedTransactionVersion") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().filter(|v| *v <= 255).ok_or_else(|| {
                    RpcError::invalid_params("maxSupportedTransactionVersion must be 0..=255")
                })?),
            };
            Call::GetBlock {
                slot,
                config,
                details,
                rewards,
                max_version,
            }
        }
        "getBlocks" => {
            let start = slot_at(0, "start_slot")?;
            // Parameter 1 is the end slot or the configuration (Agave's RpcBlocksConfigWrapper),
            // parameter 2 the configuration.
            let (end, cfg) = match p.get(1) {
                None | Some(Value::Null) => (None, config(p, 2)?),
                Some(Value::Object(m)) => (None, m.clone()),
                Some(v) => (
                    Some(v.as_u64().ok_or_else(|| {
                        RpcError::invalid_params("`end_slot` must be a slot number")
                    })?),
                    config(p, 2)?,
                ),
            };
            at_least_confirmed(&cfg)?;
            Call::GetBlocks { start, end }
        }
        "getBlocksWithLimit" => {
            let start = slot_at(0, "start_slot")?;
            let limit = param(p, 1, "limit")?
                .as_u64()
                .ok_or_else(|| RpcError::invalid_params("`limit` must be an integer"))?;
            at_least_confirmed(&config(p, 2)?)?;
            if limit > MAX_BLOCKS_RANGE {
                return Err(RpcError::invalid_params(format!(
                    "Limit too large; max {MAX_BLOCKS_RANGE}"
                )));
            }
            Call::GetBlocksWithLimit { start, limit }
        }
        "getBlockTime" => Call::GetBlockTime {
            slot: slot_at(0, "slot")?,
        },
        "getSignaturesForAddress" => {
            let address = pubkey_param(p, 0)?;
            let cfg = config(p, 1)?;
            at_least_confirmed(&cfg)?;
            let sig = |key: &str| match cfg.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_str()
                    .and_then(|s| Signature::from_str(s).ok())
                    .map(Some)
                    .ok_or_else(|| {
                        RpcError::invalid_params("Invalid param: not a base-58 signature")
                    }),
            };
            let (before, until) = (sig("before")?, sig("until")?);
            let limit = match cfg.get("limit") {
                None | Some(Value::Null) => MAX_SIGNATURES_FOR_ADDRESS,
                Some(v) => v
                    .as_u64()
                    .filter(|l| (1..=MAX_SIGNATURES_FOR_ADDRESS as u64).contains(l))
                    .ok_or_else(|| {
                        RpcError::invalid_params(format!(
                            "Invalid limit; max {MAX_SIGNATURES_FOR_ADDRESS}"
                        ))
                    })? as usize,
            };
            Call::GetSignaturesForAddress {
                address,
                before,
                until,
                limit,
                at: slot_config(&cfg)?,
            }
        }
        "getFirstAvailableBlock" => Call::GetFirstAvailableBlock,
        _ => Call::MinimumLedgerSlot,
    })
}

/// `{"mint": pubkey}` or `{"programId": pubkey}`, exactly one of them.
fn token_accounts_filter(v: &Value) -> Result<TokenAccountsFilter, RpcError> {
    let m = v.as_object().ok_or_else(|| {
        RpcError::invalid_params("filter must be {\"mint\": ...} or {\"programId\": ...}")
    })?;
    match (m.get("mint"), m.get("programId")) {
        (Some(k), None) => Ok(TokenAccountsFilter::Mint(pubkey_param(
            std::slice::from_ref(k),
            0,
        )?)),
        (None, Some(k)) => Ok(TokenAccountsFilter::ProgramId(pubkey_param(
            std::slice::from_ref(k),
            0,
        )?)),
        _ => Err(RpcError::invalid_params(
            "filter must be {\"mint\": ...} or {\"programId\": ...}",
        )),
    }
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

/// Agave's `check_slice_and_encoding`, for the methods that list accounts (getProgramAccounts,
/// getTokenAccountsBy*): jsonParsed with `dataSlice` is refused there (getAccountInfo and
/// getMultipleAccounts accept it and ignore the slice for parsed data).
pub fn check_slice_and_encoding(enc: &AccountEncoding) -> Result<(), RpcError> {
    if enc.encoding == Encoding::JsonParsed && enc.slice.is_some() {
        return Err(RpcError::new(
            -32600,
            "Sliced account data can only be encoded using binary (base 58) or base64 encoding.",
        ));
    }
    Ok(())
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

/// `[signatures, config?]` as getSignatureStatuses takes them: at most
/// `MAX_SIGNATURE_STATUSES` base-58 signatures.
fn signature_list(p: &[Value]) -> Result<Vec<Signature>, RpcError> {
    let sigs = param(p, 0, "signatures")?
        .as_array()
        .ok_or_else(|| RpcError::invalid_params("signatures must be an array"))?;
    if sigs.len() > MAX_SIGNATURE_STATUSES {
        return Err(RpcError::invalid_params(format!(
            "Too many inputs provided; max {MAX_SIGNATURE_STATUSES}"
        )));
    }
    let _ = config(p, 1)?;
    sigs.iter()
        .map(|s| {
            s.as_str()
                .and_then(|s| Signature::from_str(s).ok())
                .ok_or_else(|| RpcError::invalid_params("Invalid param: not a base-58 signature"))
        })
        .collect()
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
        for m in ["", "getslot", "getBlocksWithLimits", "sendRawTransaction"] {
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
