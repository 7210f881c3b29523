//! Solana JSON-RPC methods, following Agave's request and response shapes.

use super::encode::{self, Encoding};
use super::server::{RpcError, RpcResult};
use base64::Engine;
use dataplane::{Ingress, Packet, PacketBox, SubmitError, VerifiedTx, parse_transaction};
use runtime::accounts::AccountsDb;
use runtime::chain::{ChainState, Commitment};
use runtime::compute_budget;
use runtime::simulate::{SimulateError, Simulator};
use serde_json::{Value, json};
use solana_account::{AccountSharedData, ReadableAccount};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Version reported by getVersion: the Agave SVM this appliance runs.
pub const SOLANA_CORE_VERSION: &str = "4.2.2";
const MAX_MULTIPLE_ACCOUNTS: usize = 100;
const MAX_SIGNATURE_STATUSES: usize = 256;
/// Encoded transaction size limits (Agave: base58 1683, base64 1644 characters).
const MAX_BASE58_TX_CHARS: usize = 1683;
const MAX_BASE64_TX_CHARS: usize = 1644;

pub struct Rpc {
    pub db: Arc<AccountsDb>,
    pub chain: Arc<ChainState>,
    pub simulator: Arc<Simulator>,
    pub ingress: Ingress,
    pub faucet: Option<Keypair>,
    /// What `requestAirdrop` may give away.
    pub faucet_allowance: crate::faucet::Faucet,
    pub counters: &'static runtime::metrics::RuntimeCounters,
    pub metrics: &'static appliance::metrics::MetricsRegion,
    /// The node's health: a dead tile makes it unhealthy and stops admission here.
    pub health: Arc<telemetry::Health>,
    /// Largest response (`rpc.max_response_bytes`): a call that would answer more is refused
    /// as soon as it would, before the rest is built.
    pub max_response_bytes: usize,
}

/// Bytes `v` takes as JSON.
pub fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// The error for an answer larger than the node sends.
pub fn response_too_large(limit: usize) -> RpcError {
    RpcError::new(
        -32600,
        format!(
            "Invalid request: the response would be larger than this node's limit of {limit} \
             bytes (rpc.max_response_bytes): ask for fewer accounts, or use dataSlice"
        ),
    )
}

fn param<'a>(params: &'a [Value], i: usize, name: &str) -> Result<&'a Value, RpcError> {
    params
        .get(i)
        .ok_or_else(|| RpcError::invalid_params(format!("missing parameter `{name}`")))
}

pub(super) fn pubkey_param(params: &[Value], i: usize) -> Result<Pubkey, RpcError> {
    let s = param(params, i, "pubkey")?
        .as_str()
        .ok_or_else(|| RpcError::invalid_params("pubkey must be a base-58 string"))?;
    Pubkey::from_str(s)
        .map_err(|_| RpcError::invalid_params("Invalid param: WrongSize or not base-58"))
}

pub(crate) fn config(
    params: &[Value],
    i: usize,
) -> Result<serde_json::Map<String, Value>, RpcError> {
    match params.get(i) {
        None | Some(Value::Null) => Ok(Default::default()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(RpcError::invalid_params("configuration must be an object")),
    }
}

pub(crate) fn commitment(cfg: &serde_json::Map<String, Value>) -> Result<Commitment, RpcError> {
    commitment_key(cfg, "commitment")
}

fn commitment_key(cfg: &serde_json::Map<String, Value>, key: &str) -> Result<Commitment, RpcError> {
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

fn bool_opt(cfg: &serde_json::Map<String, Value>, key: &str) -> Result<bool, RpcError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(RpcError::invalid_params(format!(
            "`{key}` must be a boolean"
        ))),
    }
}

impl Rpc {
    fn context(&self, slot: u64) -> Value {
        json!({"slot": slot, "apiVersion": SOLANA_CORE_VERSION})
    }

    /// Context slot for `c`, honouring `minContextSlot`.
    fn slot_for(
        &self,
        cfg: &serde_json::Map<String, Value>,
    ) -> Result<(Commitment, u64), RpcError> {
        let c = commitment(cfg)?;
        let slot = self.chain.slot_at(c);
        if let Some(min) = cfg.get("minContextSlot").filter(|v| !v.is_null()) {
            let min = min
                .as_u64()
                .ok_or_else(|| RpcError::invalid_params("minContextSlot must be an integer"))?;
            if slot < min {
                return Err(
                    RpcError::new(-32016, "Minimum context slot has not been reached")
                        .with_data(json!({"contextSlot": slot})),
                );
            }
        }
        Ok((c, slot))
    }

    /// The account at commitment `c`; a storage read error is an RPC error (-32603), never
    /// `null` or a zero balance.
    fn account_at(
        &self,
        key: &Pubkey,
        c: Commitment,
    ) -> Result<Option<AccountSharedData>, RpcError> {
        match c {
            Commitment::Processed => self.db.get(key).map(|v| v.map(|(a, _)| a)),
            _ => self.db.get_durable(key),
        }
        .map_err(|e| RpcError::internal(format!("account {key} unreadable: {e}")))
    }

    /// One account as getAccountInfo / getMultipleAccounts return it; `null` if absent.
    fn encoded_account(
        &self,
        key: &Pubkey,
        c: Commitment,
        enc: Encoding,
        slice: Option<(usize, usize)>,
    ) -> RpcResult {
        match self.account_at(key, c)? {
            Some(a) => encode::account(&a, enc, slice),
            None => Ok(Value::Null),
        }
    }

    pub fn health(&self) -> Result<String, RpcError> {
        if let Some(why) = self.health.failure() {
            return Err(RpcError::new(
                -32005,
                format!("Node is unhealthy: tile {why}"),
            ));
        }
        if self.counters.commit_errors.load(Ordering::Relaxed) > 0
            && self.chain.durable_slot() + 64 < self.chain.processed_slot()
        {
            return Err(RpcError::new(
                -32005,
                "Node is unhealthy: slot commits are failing",
            ));
        }
        Ok("ok".into())
    }

    pub fn call(&self, method: &str, p: &[Value]) -> RpcResult {
        match method {
            "getVersion" => Ok(json!({"solana-core": SOLANA_CORE_VERSION, "feature-set": 0})),
            "getHealth" => self.health().map(Value::String),
            "getSlot" | "getBlockHeight" => {
                let (_, slot) = self.slot_for(&config(p, 0)?)?;
                Ok(json!(slot))
            }
            "getGenesisHash" => Ok(json!(self.chain.genesis_hash().to_string())),
            "getEpochInfo" => {
                let (_, slot) = self.slot_for(&config(p, 0)?)?;
                let epoch = runtime::svm::SvmEnv::epoch_of(slot);
                Ok(json!({
                    "absoluteSlot": slot,
                    "blockHeight": slot,
                    "epoch": epoch,
                    "slotIndex": slot - epoch * runtime::svm::SLOTS_PER_EPOCH,
                    "slotsInEpoch": runtime::svm::SLOTS_PER_EPOCH,
                    "transactionCount": self.chain.transaction_count(),
                }))
            }
            "getLatestBlockhash" => {
                let (c, slot) = self.slot_for(&config(p, 0)?)?;
                let h = self
                    .chain
                    .latest_header(c)
                    .ok_or_else(|| RpcError::internal("no slot yet"))?;
                Ok(json!({"context": self.context(slot), "value": {
                    "blockhash": h.blockhash.to_string(),
                    "lastValidBlockHeight": h.slot + self.chain.validity_slots(),
                }}))
            }
            "isBlockhashValid" => {
                let s = param(p, 0, "blockhash")?
                    .as_str()
                    .ok_or_else(|| RpcError::invalid_params("blockhash must be a string"))?;
                let h =
                    Hash::from_str(s).map_err(|_| RpcError::invalid_params("invalid blockhash"))?;
                let (_, slot) = self.slot_for(&config(p, 1)?)?;
                let valid = self
                    .chain
                    .blockhash_slot(&h, self.chain.processed_slot() + 1)
                    .is_some();
                Ok(json!({"context": self.context(slot), "value": valid}))
            }
            "getBalance" => {
                let key = pubkey_param(p, 0)?;
                let (c, slot) = self.slot_for(&config(p, 1)?)?;
                let lamports = self.account_at(&key, c)?.map_or(0, |a| a.lamports());
                Ok(json!({"context": self.context(slot), "value": lamports}))
            }
            "getAccountInfo" => {
                let key = pubkey_param(p, 0)?;
                let cfg = config(p, 1)?;
                let (c, slot) = self.slot_for(&cfg)?;
                let enc = Encoding::from_config(&cfg)?;
                let slice = encode::data_slice(&cfg)?;
                let value = self.encoded_account(&key, c, enc, slice)?;
                Ok(json!({"context": self.context(slot), "value": value}))
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
                let (c, slot) = self.slot_for(&cfg)?;
                let enc = Encoding::from_config(&cfg)?;
                let slice = encode::data_slice(&cfg)?;
                let mut out = Vec::with_capacity(keys.len());
                let mut bytes = 0;
                for k in keys {
                    let key = pubkey_param(std::slice::from_ref(k), 0)?;
                    let account = self.encoded_account(&key, c, enc, slice)?;
                    bytes += json_len(&account);
                    if bytes > self.max_response_bytes {
                        return Err(response_too_large(self.max_response_bytes));
                    }
                    out.push(account);
                }
                Ok(json!({"context": self.context(slot), "value": out}))
            }
            "getMinimumBalanceForRentExemption" => {
                let size = param(p, 0, "dataLength")?
                    .as_u64()
                    .ok_or_else(|| RpcError::invalid_params("data length must be an integer"))?;
                if size > 10 * 1024 * 1024 {
                    return Err(RpcError::invalid_params("data length exceeds 10 MiB"));
                }
                Ok(json!(
                    solana_rent::Rent::default().minimum_balance(size as usize)
                ))
            }
            "getFeeForMessage" => self.fee_for_message(p),
            "getSignatureStatuses" => self.signature_statuses(p),
            "getTransaction" => self.transaction(p),
            "getSlotHeader" => self.slot_header(p),
            "getAccountWithProof" => self.account_with_proof(p),
            "sendTransaction" => self.send_transaction(p),
            "simulateTransaction" => self.simulate_transaction(p),
            "requestAirdrop" => self.request_airdrop(p),
            "getTokenAccountBalance" => {
                let key = pubkey_param(p, 0)?;
                let (c, slot) = self.slot_for(&config(p, 1)?)?;
                let acct = self.account_at(&key, c)?.ok_or_else(|| {
                    RpcError::invalid_params("Invalid param: could not find account")
                })?;
                let (mint, amount) = encode::token_account(&acct).ok_or_else(|| {
                    RpcError::invalid_params("Invalid param: not a Token account")
                })?;
                let decimals = self
                    .account_at(&mint, c)?
                    .and_then(|m| encode::mint_decimals(&m))
                    .ok_or_else(|| {
                        RpcError::invalid_params("Invalid param: could not find mint")
                    })?;
                Ok(
                    json!({"context": self.context(slot), "value": encode::ui_token_amount(amount, decimals)}),
                )
            }
            _ => Err(RpcError::method_not_found()),
        }
    }

    fn fee_for_message(&self, p: &[Value]) -> RpcResult {
        let s = param(p, 0, "message")?
            .as_str()
            .ok_or_else(|| RpcError::invalid_params("message must be a base-64 string"))?;
        let (_, slot) = self.slot_for(&config(p, 1)?)?;
        let msg = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| RpcError::invalid_params("invalid base64"))?;
        // The descriptor parser reads transactions: give the message its (zeroed) signatures.
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
        let h = Hash::new_from_array(*desc.recent_blockhash(&tx));
        let value = if self
            .chain
            .blockhash_slot(&h, self.chain.processed_slot() + 1)
            .is_none()
        {
            Value::Null
        } else {
            match compute_budget::parse(&desc, &tx) {
                Ok(b) => json!(b.total_fee()),
                Err(_) => Value::Null,
            }
        };
        Ok(json!({"context": self.context(slot), "value": value}))
    }

    fn signature_statuses(&self, p: &[Value]) -> RpcResult {
        let sigs = param(p, 0, "signatures")?
            .as_array()
            .ok_or_else(|| RpcError::invalid_params("signatures must be an array"))?;
        if sigs.len() > MAX_SIGNATURE_STATUSES {
            return Err(RpcError::invalid_params(format!(
                "Too many inputs provided; max {MAX_SIGNATURE_STATUSES}"
            )));
        }
        let _ = config(p, 1)?;
        let mut out = Vec::with_capacity(sigs.len());
        for s in sigs {
            let sig = s
                .as_str()
                .and_then(|s| Signature::from_str(s).ok())
                .ok_or_else(|| {
                    RpcError::invalid_params("Invalid param: not a base-58 signature")
                })?;
            out.push(match self.chain.status(&sig) {
                None => Value::Null,
                Some(st) => {
                    let c = self.chain.commitment_of(st.slot);
                    json!({
                        "slot": st.slot,
                        "confirmations": if c == Commitment::Finalized { Value::Null } else { json!(0) },
                        "err": encode::tx_error(&st.err),
                        "status": encode::legacy_status(&st.err),
                        "confirmationStatus": match c {
                            Commitment::Finalized => "finalized",
                            Commitment::Confirmed => "confirmed",
                            Commitment::Processed => "processed",
                        },
                    })
                }
            });
        }
        Ok(json!({"context": self.context(self.chain.processed_slot()), "value": out}))
    }

    fn transaction(&self, p: &[Value]) -> RpcResult {
        let sig = param(p, 0, "signature")?
            .as_str()
            .and_then(|s| Signature::from_str(s).ok())
            .ok_or_else(|| RpcError::invalid_params("Invalid param: not a base-58 signature"))?;
        let cfg = match p.get(1) {
            // The legacy form passes the encoding as a bare string.
            Some(Value::String(e)) => {
                let mut m = serde_json::Map::new();
                m.insert("encoding".into(), json!(e));
                m
            }
            _ => config(p, 1)?,
        };
        let c = commitment(&cfg)?;
        if c == Commitment::Processed {
            return Err(RpcError::invalid_params(
                "Method does not support commitment below `confirmed`",
            ));
        }
        let Some(st) = self.chain.status(&sig) else {
            return Ok(Value::Null);
        };
        if st.slot > self.chain.slot_at(c) {
            return Ok(Value::Null);
        }
        let max_version = cfg
            .get("maxSupportedTransactionVersion")
            .and_then(Value::as_u64);
        let block_time = self.chain.header(st.slot).map(|h| h.unix_timestamp);
        encode::transaction(&st, &cfg, max_version, block_time)
    }

    /// Decode a transaction parameter into a parsed packet.
    fn decode_tx(
        &self,
        p: &[Value],
        cfg: &serde_json::Map<String, Value>,
    ) -> Result<PacketBox, RpcError> {
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
                bs58::decode(s).into_vec().map_err(|e| {
                    RpcError::invalid_params(format!("invalid base58 encoding: {e}"))
                })?
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
                    .map_err(|e| {
                        RpcError::invalid_params(format!("invalid base64 encoding: {e}"))
                    })?
            }
            other => {
                return Err(RpcError::invalid_params(format!(
                    "unsupported encoding: {other}. Supported encodings: base58, base64"
                )));
            }
        };
        let desc = parse_transaction(&bytes).map_err(|e| {
            RpcError::invalid_params(format!("failed to deserialize transaction: {e}"))
        })?;
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

    fn verify_signatures(packet: &Packet) -> bool {
        let d = packet.desc.as_ref().expect("parsed");
        let buf = packet.bytes();
        let msg = d.message(buf);
        d.signatures(buf).enumerate().all(|(i, sig)| {
            dataplane::sigverify::verify_one_strict(&dataplane::sigverify::SigCheck {
                pubkey: d.static_key(buf, i),
                signature: sig,
                message: msg,
            })
        })
    }

    fn send_transaction(&self, p: &[Value]) -> RpcResult {
        self.health()?;
        let cfg = config(p, 1)?;
        let mut packet = self.decode_tx(p, &cfg)?;
        let sig = Signature::from(
            *packet
                .desc
                .as_ref()
                .expect("parsed")
                .first_signature(packet.bytes()),
        );
        if !Self::verify_signatures(&packet) {
            return Err(RpcError::new(
                -32003,
                "Transaction signature verification failure",
            ));
        }
        if !bool_opt(&cfg, "skipPreflight")? {
            let _ = commitment_key(&cfg, "preflightCommitment")?;
            let sim = self
                .simulator
                .simulate(&packet, true)
                .map_err(|e| match e {
                    SimulateError::Rejected(r) => preflight_error(&r.as_error(), &[], 0),
                    SimulateError::Busy => self.simulator_busy(),
                })?;
            if let Some(err) = &sim.err {
                return Err(preflight_error(err, &sim.logs, sim.units_consumed));
            }
        }
        let (desc, verified) = (
            packet.desc.expect("parsed"),
            packet.verified.take().expect("decoded"),
        );
        match self.ingress.submit_checked(packet.bytes(), desc, verified) {
            // A repeat is already on its way: the caller gets its signature, as from Agave.
            Ok(()) | Err(SubmitError::Duplicate) => Ok(json!(sig.to_string())),
            Err(SubmitError::Parse(e)) => Err(RpcError::invalid_params(e)),
            Err(
                e @ (SubmitError::QueueFull | SubmitError::PoolExhausted | SubmitError::OverShare),
            ) => Err(RpcError::new(-32005, format!("Node is unhealthy: {e}"))),
        }
    }

    fn simulate_transaction(&self, p: &[Value]) -> RpcResult {
        let cfg = config(p, 1)?;
        let mut packet = self.decode_tx(p, &cfg)?;
        let sig_verify = bool_opt(&cfg, "sigVerify")?;
        let replace = bool_opt(&cfg, "replaceRecentBlockhash")?;
        if sig_verify && replace {
            return Err(RpcError::invalid_params(
                "sigVerify may not be used with replaceRecentBlockhash",
            ));
        }
        let (_, slot) = self.slot_for(&cfg)?;
        if sig_verify && !Self::verify_signatures(&packet) {
            return Err(RpcError::new(
                -32003,
                "Transaction signature verification failure",
            ));
        }
        let mut replacement = Value::Null;
        if replace {
            let h = self
                .chain
                .latest_header(Commitment::Processed)
                .ok_or_else(|| RpcError::internal("no slot yet"))?;
            let off = usize::from(packet.desc.as_ref().expect("parsed").blockhash_offset);
            packet.bytes_mut()[off..off + 32].copy_from_slice(h.blockhash.as_ref());
            // The message changed: decode it again (its hash differs).
            let (desc, bytes) = (packet.desc.expect("parsed"), packet.bytes());
            packet.verified = VerifiedTx::decode(bytes, desc.message(bytes));
            replacement = json!({
                "blockhash": h.blockhash.to_string(),
                "lastValidBlockHeight": h.slot + self.chain.validity_slots(),
            });
        }
        let value = match self.simulator.simulate(&packet, !replace) {
            Err(SimulateError::Busy) => return Err(self.simulator_busy()),
            Err(SimulateError::Rejected(r)) => json!({
                "err": encode::tx_error(&Some(r.as_error())),
                "logs": [], "accounts": null, "unitsConsumed": 0, "returnData": null,
                "replacementBlockhash": replacement, "fee": null,
            }),
            Ok(sim) => json!({
                "err": encode::tx_error(&sim.err),
                "logs": sim.logs,
                "accounts": null,
                "unitsConsumed": sim.units_consumed,
                "returnData": sim.return_data.map(|(pid, data)| json!({
                    "programId": pid.to_string(),
                    "data": [base64::engine::general_purpose::STANDARD.encode(data), "base64"],
                })),
                "replacementBlockhash": replacement,
                "fee": sim.fee,
            }),
        };
        Ok(json!({"context": self.context(slot), "value": value}))
    }

    /// Simulations are queued behind others: retry (counted).
    fn simulator_busy(&self) -> RpcError {
        self.metrics
            .endpoints
            .rpc_simulations_busy
            .fetch_add(1, Ordering::Relaxed);
        RpcError::new(
            -32005,
            "Node is busy: too many simulations in progress; retry, or send with skipPreflight",
        )
    }

    fn request_airdrop(&self, p: &[Value]) -> RpcResult {
        let Some(faucet) = &self.faucet else {
            return Err(RpcError::invalid_request(
                "airdrops are disabled on this node",
            ));
        };
        self.health()?;
        let to = pubkey_param(p, 0)?;
        let lamports = param(p, 1, "lamports")?
            .as_u64()
            .ok_or_else(|| RpcError::invalid_params("lamports must be an integer"))?;
        let _ = self.slot_for(&config(p, 2)?)?;
        self.faucet_allowance
            .grant(&to, lamports)
            .map_err(RpcError::invalid_params)?;
        // Processed blockhash: the airdrop goes into the next slot.
        let h = self
            .chain
            .latest_header(Commitment::Processed)
            .ok_or_else(|| RpcError::internal("no slot yet"))?;
        let ix = solana_system_interface::instruction::transfer(&faucet.pubkey(), &to, lamports);
        let tx = solana_transaction::Transaction::new(
            &[faucet],
            solana_message::Message::new(&[ix], Some(&faucet.pubkey())),
            h.blockhash,
        );
        let bytes = bincode::serialize(&tx).map_err(RpcError::internal)?;
        self.ingress
            .submit(&bytes)
            .map_err(|e| RpcError::new(-32005, format!("Node is unhealthy: {e}")))?;
        Ok(json!(tx.signatures[0].to_string()))
    }
}

fn preflight_error(
    err: &solana_transaction_error::TransactionError,
    logs: &[String],
    units: u64,
) -> RpcError {
    RpcError::new(-32002, format!("Transaction simulation failed: {err}")).with_data(json!({
        "err": encode::tx_error(&Some(err.clone())),
        "logs": logs,
        "accounts": null,
        "unitsConsumed": units,
        "returnData": null,
        "innerInstructions": null,
    }))
}
