//! Slot headers and transaction statuses: what the RPC serves about the chain.
//!
//! Commitment levels map to this appliance's slot states:
//! - processed: the slot was closed (its transactions executed, its blockhash fixed);
//! - confirmed and finalized: the slot's commit is durable (fdatasync returned). A single
//!   sequencer has no votes or forks, so a durable slot is final; both names are accepted.

use ahash::HashMap;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_transaction_error::TransactionError;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotHeader {
    pub slot: u64,
    pub parent_blockhash: Hash,
    pub blockhash: Hash,
    pub transaction_count: u64,
    pub unix_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBalance {
    pub account_index: u8,
    pub mint: Pubkey,
    pub owner: Pubkey,
    pub program_id: Pubkey,
    pub amount: u64,
    pub decimals: u8,
}

/// Everything kept about one processed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxStatus {
    pub signature: Signature,
    pub slot: u64,
    pub err: Option<TransactionError>,
    pub fee: u64,
    pub compute_units: u64,
    pub logs: Vec<String>,
    pub pre_balances: Vec<u64>,
    pub post_balances: Vec<u64>,
    pub pre_token_balances: Vec<TokenBalance>,
    pub post_token_balances: Vec<TokenBalance>,
    pub loaded_writable: Vec<Pubkey>,
    pub loaded_readonly: Vec<Pubkey>,
    /// The transaction as received (wire format).
    pub transaction: Vec<u8>,
}

/// What a slot commit carries besides accounts; storage keeps it opaque.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub header: SlotHeader,
    pub genesis_hash: Hash,
    pub statuses: Vec<TxStatus>,
}

impl SlotRecord {
    pub fn encode(&self) -> Vec<u8> {
        bincode::serialize(self).expect("slot record serializes")
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        bincode::deserialize(bytes).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Commitment {
    Processed,
    Confirmed,
    Finalized,
}

struct Inner {
    headers: VecDeque<SlotHeader>,
    statuses: HashMap<Signature, Arc<TxStatus>>,
    by_slot: VecDeque<(u64, Vec<Signature>)>,
}

/// Shared between the bank (writer), the commit tile and the RPC (readers).
pub struct ChainState {
    inner: RwLock<Inner>,
    processed_slot: AtomicU64,
    durable_slot: AtomicU64,
    genesis_hash: Hash,
    retention_slots: usize,
    transaction_count: AtomicU64,
}

impl ChainState {
    pub fn new(genesis_hash: Hash, retention_slots: usize) -> Self {
        Self {
            inner: RwLock::new(Inner {
                headers: VecDeque::new(),
                statuses: HashMap::default(),
                by_slot: VecDeque::new(),
            }),
            processed_slot: AtomicU64::new(0),
            durable_slot: AtomicU64::new(0),
            genesis_hash,
            retention_slots: retention_slots
                .max(dataplane::dedup::MAX_PROCESSING_AGE_SLOTS as usize + 1),
            transaction_count: AtomicU64::new(0),
        }
    }

    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// A closed slot: header and statuses become visible at processed commitment.
    pub fn push_slot(&self, header: SlotHeader, statuses: Vec<TxStatus>) {
        let slot = header.slot;
        self.transaction_count
            .fetch_add(statuses.len() as u64, Ordering::Relaxed);
        let mut inner = self.inner.write();
        let sigs = statuses.iter().map(|s| s.signature).collect();
        for s in statuses {
            inner.statuses.insert(s.signature, Arc::new(s));
        }
        inner.by_slot.push_back((slot, sigs));
        inner.headers.push_back(header);
        while inner.headers.len() > self.retention_slots {
            inner.headers.pop_front();
        }
        while inner.by_slot.len() > self.retention_slots {
            let (_, old) = inner.by_slot.pop_front().expect("non-empty");
            for sig in old {
                inner.statuses.remove(&sig);
            }
        }
        drop(inner);
        self.processed_slot.store(slot, Ordering::Release);
    }

    pub fn set_durable(&self, slot: u64) {
        self.durable_slot.store(slot, Ordering::Release);
    }

    pub fn durable_slot(&self) -> u64 {
        self.durable_slot.load(Ordering::Acquire)
    }

    pub fn processed_slot(&self) -> u64 {
        self.processed_slot.load(Ordering::Acquire)
    }

    pub fn slot_at(&self, c: Commitment) -> u64 {
        match c {
            Commitment::Processed => self.processed_slot(),
            _ => self.durable_slot(),
        }
    }

    pub fn commitment_of(&self, slot: u64) -> Commitment {
        if slot <= self.durable_slot() {
            Commitment::Finalized
        } else {
            Commitment::Processed
        }
    }

    pub fn transaction_count(&self) -> u64 {
        self.transaction_count.load(Ordering::Relaxed)
    }

    pub fn status(&self, sig: &Signature) -> Option<Arc<TxStatus>> {
        self.inner.read().statuses.get(sig).cloned()
    }

    /// Signatures of a retained slot, in execution order.
    pub fn slot_signatures(&self, slot: u64) -> Option<Vec<Signature>> {
        let inner = self.inner.read();
        inner
            .by_slot
            .iter()
            .find(|(s, _)| *s == slot)
            .map(|(_, sigs)| sigs.clone())
    }

    pub fn header(&self, slot: u64) -> Option<SlotHeader> {
        let inner = self.inner.read();
        let first = inner.headers.front()?.slot;
        let idx = slot.checked_sub(first)? as usize;
        inner.headers.get(idx).filter(|h| h.slot == slot).cloned()
    }

    /// Header of the newest slot at `commitment`.
    pub fn latest_header(&self, c: Commitment) -> Option<SlotHeader> {
        self.header(self.slot_at(c))
    }

    /// Slot of `blockhash` if it is still within the last `MAX_PROCESSING_AGE_SLOTS` slots.
    pub fn blockhash_slot(&self, blockhash: &Hash, current_slot: u64) -> Option<u64> {
        let inner = self.inner.read();
        inner
            .headers
            .iter()
            .rev()
            .take_while(|h| h.slot + dataplane::dedup::MAX_PROCESSING_AGE_SLOTS >= current_slot)
            .find(|h| &h.blockhash == blockhash)
            .map(|h| h.slot)
    }
}
