//! Solana JSON-RPC methods, following Agave's request and response shapes.

use super::encode;
use super::params::{self, AccountEncoding, Call, FeeMessage, SlotConfig};
use super::server::{RpcError, RpcResult};
use base64::Engine;
use dataplane::{Ingress, Packet, PacketBox, SubmitError, VerifiedTx};
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
use std::sync::Arc;
use std::sync::atomic::Ordering;

mod account_index;

/// How long `sendTransaction` with `preconfirm` waits for the pre-confirmation.
pub const PRECONF_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// Version reported by getVersion: the Agave SVM this appliance runs.
pub const SOLANA_CORE_VERSION: &str = "4.2.2";

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
    /// The ledger's history on disk (`[history] enabled`): blocks, address signatures, and
    /// transactions past the runtime's memory.
    pub history: Option<Arc<history::History>>,
    /// Largest response (`rpc.max_response_bytes`): a call that would answer more is refused
    /// as soon as it would, before the rest is built.
    pub max_response_bytes: usize,
    /// This node's identity and addresses.
    pub node: crate::cluster::NodeInfo,
    /// getRecentPrioritizationFees' per-slot fees.
    pub fees: crate::prioritization_fees::FeeCache,
    /// getSupply's and getLargestAccounts' walk over the accounts.
    pub supply: crate::supply::SupplyCache,
    /// Signed pre-confirmations by signature (`[preconf] enabled`).
    pub preconf: Option<Arc<runtime::preconf::board::Board>>,
    /// `[cluster] enabled`: calls about accounts other nodes own are answered by them.
    pub cluster: Option<Arc<::cluster::ClusterView>>,
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

impl Rpc {
    /// The methods over a started node, its configuration's faucet limits and response bound.
    pub fn for_node(node: &appliance::Node, health: Arc<telemetry::Health>) -> Self {
        let c = &node.config;
        Self {
            db: node.runtime.db.clone(),
            chain: node.runtime.chain.clone(),
            simulator: node.runtime.simulator.clone(),
            ingress: node.ingress.clone(),
            faucet: node.faucet.as_ref().map(|k| k.insecure_clone()),
            faucet_allowance: crate::faucet::Faucet::new(crate::faucet::FaucetLimits {
                per_request: c.faucet.max_lamports_per_request,
                per_recipient_per_hour: c.faucet.max_lamports_per_recipient_per_hour,
                requests_per_second: c.faucet.max_requests_per_second,
            }),
            counters: node.runtime.counters,
            metrics: node.metrics,
            health,
            history: node.history.clone(),
            max_response_bytes: c.rpc.max_response_bytes,
            node: crate::cluster::NodeInfo::new(node.identity, node.tpu_addr),
            fees: Default::default(),
            supply: Default::default(),
            preconf: node.runtime.preconf_board.clone(),
            cluster: node.cluster.clone(),
        }
    }

    pub(crate) fn context(&self, slot: u64) -> Value {
        json!({"slot": slot, "apiVersion": SOLANA_CORE_VERSION})
    }

    /// The slot `at` reads, honouring `minContextSlot`.
    pub(crate) fn slot_for(&self, at: &SlotConfig) -> Result<(Commitment, u64), RpcError> {
        let slot = self.chain.slot_at(at.commitment);
        if let Some(min) = at.min_context_slot
            && slot < min
        {
            return Err(
                RpcError::new(-32016, "Minimum context slot has not been reached")
                    .with_data(json!({"contextSlot": slot})),
            );
        }
        Ok((at.commitment, slot))
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
    fn encoded_account(&self, key: &Pubkey, c: Commitment, enc: &AccountEncoding) -> RpcResult {
        match self.account_at(key, c)? {
            Some(a) => encode::account(key, &a, enc, &|k| self.account_at(k, c)),
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

    /// Answers one call: its parameters are read first ([`params::parse`], no node), then
    /// the node is asked.
    pub fn call(&self, method: &str, p: &[Value]) -> RpcResult {
        // What refuses work whatever the parameters: no faucet, an unhealthy node.
        match method {
            "sendTransaction" => {
                self.health()?;
            }
            "requestAirdrop" => {
                if self.faucet.is_none() {
                    return Err(RpcError::invalid_request(
                        "airdrops are disabled on this node",
                    ));
                }
                self.health()?;
            }
            _ => {}
        }
        if method == "clusterExportPage" {
            return self.export_page(p);
        }
        let call = params::parse(method, p)?;
        if let Some(answer) = self.forwarded(&call, method, p) {
            return answer;
        }
        // Lists over accounts of every partition: in a cluster, each owner's share.
        let lists_accounts = matches!(
            call,
            Call::GetProgramAccounts(_) | Call::GetTokenAccounts { .. }
        );
        let local = self.answer(call);
        match self.cluster.as_deref() {
            Some(view) if lists_accounts => self.accounts_everywhere(view, method, p, local),
            _ => local,
        }
    }

    /// The answer of this node, from what it holds.
    fn answer(&self, call: Call) -> RpcResult {
        match call {
            Call::GetVersion => Ok(json!({"solana-core": SOLANA_CORE_VERSION, "feature-set": 0})),
            Call::GetHealth => self.health().map(Value::String),
            Call::GetSlot(at) => {
                let (_, slot) = self.slot_for(&at)?;
                Ok(json!(slot))
            }
            Call::GetGenesisHash => Ok(json!(self.chain.network_genesis_hash().to_string())),
            Call::GetEpochInfo(at) => {
                let (_, slot) = self.slot_for(&at)?;
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
            Call::GetLatestBlockhash(at) => {
                let (c, slot) = self.slot_for(&at)?;
                let h = self
                    .chain
                    .latest_header(c)
                    .ok_or_else(|| RpcError::internal("no slot yet"))?;
                Ok(json!({"context": self.context(slot), "value": {
                    "blockhash": h.blockhash.to_string(),
                    "lastValidBlockHeight": h.slot + self.chain.validity_slots(),
                }}))
            }
            Call::IsBlockhashValid { blockhash, at } => {
                let (_, slot) = self.slot_for(&at)?;
                let valid = self
                    .chain
                    .blockhash_slot(&blockhash, self.chain.processed_slot() + 1)
                    .is_some();
                Ok(json!({"context": self.context(slot), "value": valid}))
            }
            Call::GetBalance { key, at } => {
                let (c, slot) = self.slot_for(&at)?;
                let lamports = self.account_at(&key, c)?.map_or(0, |a| a.lamports());
                Ok(json!({"context": self.context(slot), "value": lamports}))
            }
            Call::GetAccountInfo { key, at, encoding } => {
                let (c, slot) = self.slot_for(&at)?;
                let value = self.encoded_account(&key, c, &encoding)?;
                Ok(json!({"context": self.context(slot), "value": value}))
            }
            Call::GetMultipleAccounts { keys, at, encoding } => {
                let (c, slot) = self.slot_for(&at)?;
                let mut out = Vec::with_capacity(keys.len());
                let mut bytes = 0;
                for key in &keys {
                    let account = self.encoded_account(key, c, &encoding)?;
                    bytes += json_len(&account);
                    if bytes > self.max_response_bytes {
                        return Err(response_too_large(self.max_response_bytes));
                    }
                    out.push(account);
                }
                Ok(json!({"context": self.context(slot), "value": out}))
            }
            Call::GetMinimumBalanceForRentExemption { data_len } => Ok(json!(
                solana_rent::Rent::default().minimum_balance(data_len as usize)
            )),
            Call::GetFeeForMessage { message, at } => self.fee_for_message(&message, &at),
            Call::GetSignatureStatuses { signatures } => self.signature_statuses(&signatures),
            Call::GetSignaturePreconfirmations { signatures } => {
                self.signature_preconfirmations(&signatures)
            }
            Call::GetTransaction {
                signature,
                commitment,
                config,
                max_version,
            } => {
                let Some(st) = self.chain.status(&signature) else {
                    return self.history_transaction(&signature, &config, max_version);
                };
                if st.slot > self.chain.slot_at(commitment) {
                    return Ok(Value::Null);
                }
                let block_time = self.chain.header(st.slot).map(|h| h.unix_timestamp);
                let mut out = encode::transaction(&st, &config, max_version, block_time)?;
                // Agave's getTransaction says where in its block the transaction is.
                if let Some(i) = self
                    .chain
                    .slot_signatures(st.slot)
                    .and_then(|sigs| sigs.iter().position(|s| s == &signature))
                {
                    out["transactionIndex"] = json!(i);
                }
                Ok(out)
            }
            call @ (Call::GetBlock { .. }
            | Call::GetBlocks { .. }
            | Call::GetBlocksWithLimit { .. }
            | Call::GetBlockTime { .. }
            | Call::GetSignaturesForAddress { .. }
            | Call::GetFirstAvailableBlock
            | Call::MinimumLedgerSlot) => self.history_call(call),
            Call::GetSlotHeader { slot } => self.slot_header(slot),
            Call::GetAccountWithProof { key, slot } => self.account_with_proof(&key, slot),
            Call::GetClusterStateRoot { slot } => self.cluster_state_root(slot),
            Call::GetClusterAccountProof { key, slot } => self.cluster_account_proof(&key, slot),
            Call::SendTransaction {
                tx,
                preflight,
                preconfirm,
            } => {
                let signature = Signature::from(
                    *tx.desc
                        .as_ref()
                        .expect("parsed")
                        .first_signature(tx.bytes()),
                );
                let sent = self.send_transaction(tx, preflight)?;
                if preconfirm {
                    Ok(
                        json!({"signature": sent, "preconfirmation": self.await_preconfirmation(&signature)}),
                    )
                } else {
                    Ok(sent)
                }
            }
            Call::SimulateTransaction {
                tx,
                sig_verify,
                replace_blockhash,
                at,
            } => self.simulate_transaction(tx, sig_verify, replace_blockhash, &at),
            Call::RequestAirdrop { to, lamports, at } => self.request_airdrop(&to, lamports, &at),
            call @ (Call::GetIdentity
            | Call::GetEpochSchedule
            | Call::GetSlotLeader(_)
            | Call::GetSlotLeaders { .. }
            | Call::GetLeaderSchedule { .. }
            | Call::GetClusterNodes
            | Call::GetVoteAccounts { .. }
            | Call::GetTransactionCount(_)
            | Call::GetInflationGovernor
            | Call::GetInflationRate
            | Call::GetInflationReward { .. }
            | Call::GetStakeMinimumDelegation(_)
            | Call::GetBlockCommitment { .. }
            | Call::GetBlockProduction { .. }
            | Call::GetHighestSnapshotSlot
            | Call::GetMaxSlot
            | Call::GetRecentPerformanceSamples { .. }
            | Call::GetRecentPrioritizationFees { .. }
            | Call::GetSupply { .. }
            | Call::GetLargestAccounts { .. }) => self.cluster(call),
            Call::GetTokenAccountBalance { key, at } => {
                let (c, slot) = self.slot_for(&at)?;
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
            Call::GetProgramAccounts(q) => self.program_accounts(&q),
            Call::GetTokenAccounts {
                holder,
                key,
                filter,
                at,
                encoding,
            } => self.token_accounts(holder, &key, filter, &at, &encoding),
            Call::GetTokenSupply { mint, at } => self.token_supply(&mint, &at),
            Call::GetTokenLargestAccounts { mint, at } => self.token_largest_accounts(&mint, &at),
        }
    }

    fn fee_for_message(&self, m: &FeeMessage, at: &SlotConfig) -> RpcResult {
        let (_, slot) = self.slot_for(at)?;
        let h = Hash::new_from_array(*m.desc.recent_blockhash(&m.tx));
        let value = if self
            .chain
            .blockhash_slot(&h, self.chain.processed_slot() + 1)
            .is_none()
        {
            Value::Null
        } else {
            match compute_budget::parse(&m.desc, &m.tx) {
                Ok(b) => json!(b.total_fee()),
                Err(_) => Value::Null,
            }
        };
        Ok(json!({"context": self.context(slot), "value": value}))
    }

    fn signature_statuses(&self, sigs: &[Signature]) -> RpcResult {
        let status = |slot: u64,
                      err: &Option<solana_transaction_error::TransactionError>,
                      c: Commitment| {
            json!({
                "slot": slot,
                "confirmations": if c == Commitment::Finalized { Value::Null } else { json!(0) },
                "err": encode::tx_error(err),
                "status": encode::legacy_status(err),
                "confirmationStatus": match c {
                    Commitment::Finalized => "finalized",
                    Commitment::Confirmed => "confirmed",
                    Commitment::Processed => "processed",
                },
            })
        };
        let mut out = Vec::with_capacity(sigs.len());
        for sig in sigs {
            // Run here, or run by another node on accounts this node holds (a replica, a
            // partition moved here): the other node may be gone.
            out.push(match self.chain.status(sig) {
                Some(st) => status(st.slot, &st.err, self.chain.commitment_of(st.slot)),
                None => match self.chain.foreign_status(sig) {
                    Some((f, c)) => status(f.slot, &f.err, c),
                    None => Value::Null,
                },
            });
        }
        Ok(json!({"context": self.context(self.chain.processed_slot()), "value": out}))
    }

    /// The newest signed pre-confirmation of each signature still on the board: its fields,
    /// and the signed datagram itself (base64) for the client to verify and keep.
    fn signature_preconfirmations(&self, sigs: &[Signature]) -> RpcResult {
        let out: Vec<Value> = sigs
            .iter()
            .map(|sig| {
                self.preconf
                    .as_ref()
                    .and_then(|b| b.get(sig.as_array()))
                    .map_or(Value::Null, |bytes| encode::preconfirmation(&bytes))
            })
            .collect();
        Ok(json!({"context": self.context(self.chain.processed_slot()), "value": out}))
    }

    /// The transaction's first pre-confirmation, waiting at most [`PRECONF_WAIT`] for it
    /// (`sendTransaction` with `preconfirm`); null if none came in time.
    fn await_preconfirmation(&self, sig: &Signature) -> Value {
        let Some(board) = &self.preconf else {
            return Value::Null;
        };
        let deadline = std::time::Instant::now() + PRECONF_WAIT;
        loop {
            if let Some(bytes) = board.get(sig.as_array()) {
                return encode::preconfirmation(&bytes);
            }
            if std::time::Instant::now() >= deadline {
                return Value::Null;
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }

    fn verify_signatures(packet: &Packet) -> bool {
        let d = packet.desc.as_ref().expect("parsed");
        dataplane::sigverify::all_signatures_valid(d, packet.bytes())
    }

    /// `preflight`: the commitment of the preflight simulation, `None` to skip it.
    fn send_transaction(&self, mut packet: PacketBox, preflight: Option<Commitment>) -> RpcResult {
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
        // Simulated only where its accounts live (`preflight_here`); elsewhere it is sent on
        // without a preflight, as the ingress routes it.
        if preflight.is_some() && self.preflight_here(&packet) {
            let failure = match self.simulator.simulate(&packet, true) {
                Err(SimulateError::Busy) => return Err(self.simulator_busy()),
                Err(SimulateError::Rejected(r)) => Some(preflight_error(&r.as_error(), &[], 0)),
                Ok(sim) => sim
                    .err
                    .map(|err| preflight_error(&err, &sim.logs, sim.units_consumed)),
            };
            // A failure while the partition moved away under the simulation (its copy here
            // wiped) says nothing about the transaction: it goes on to the new owner.
            if let Some(e) = failure
                && self.preflight_here(&packet)
            {
                return Err(e);
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
                e @ (SubmitError::QueueFull
                | SubmitError::PoolExhausted
                | SubmitError::OverShare
                | SubmitError::OwnerDown(_)
                | SubmitError::NotServing),
            ) => Err(RpcError::new(-32005, format!("Node is unhealthy: {e}"))),
            Err(e @ SubmitError::CrossPartition(_)) => Err(RpcError::invalid_params(e)),
        }
    }

    fn simulate_transaction(
        &self,
        mut packet: PacketBox,
        sig_verify: bool,
        replace: bool,
        at: &SlotConfig,
    ) -> RpcResult {
        let (_, slot) = self.slot_for(at)?;
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

    /// The faucet and the node's health are checked by [`Rpc::call`].
    fn request_airdrop(&self, to: &Pubkey, lamports: u64, at: &SlotConfig) -> RpcResult {
        let faucet = self.faucet.as_ref().expect("checked by call");
        let _ = self.slot_for(at)?;
        self.faucet_allowance
            .grant(to, lamports)
            .map_err(RpcError::invalid_params)?;
        // Processed blockhash: the airdrop goes into the next slot.
        let h = self
            .chain
            .latest_header(Commitment::Processed)
            .ok_or_else(|| RpcError::internal("no slot yet"))?;
        let ix = solana_system_interface::instruction::transfer(&faucet.pubkey(), to, lamports);
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
