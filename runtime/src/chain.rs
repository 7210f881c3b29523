//! Slot headers and transaction statuses: what the RPC serves about the chain.
//!
//! Commitment levels map to this appliance's slot states:
//! - processed: the slot was closed (its transactions executed, its blockhash fixed);
//! - confirmed and finalized: the slot's commit is durable (fdatasync returned). A single
//!   sequencer has no votes or forks, so a durable slot is final; both names are accepted.

use crate::events::{ChainEvent, ChainEvents};
use crate::perf_samples::{PerfSample, PerfSampler};
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

/// An instruction that one of the transaction's instructions invoked (a CPI), as the SVM
/// records it: indexes into the transaction's account keys (loaded addresses after the static
/// keys), so it costs a few bytes rather than the keys themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerInstruction {
    pub program_id_index: u8,
    pub accounts: Vec<u8>,
    pub data: Vec<u8>,
    /// Invocation depth: 2 for a CPI made by a top-level instruction.
    pub stack_height: u8,
}

/// The CPIs of the transaction's instruction `index` (only instructions that made some).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerInstructions {
    pub index: u8,
    pub instructions: Vec<InnerInstruction>,
}

/// What the transaction's last `set_return_data` left (the SVM records it only when non-empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnData {
    pub program_id: Pubkey,
    pub data: Vec<u8>,
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
    /// CPIs, by top-level instruction (Agave's `innerInstructions`); bounded by the SVM's
    /// instruction trace limit (64 per transaction).
    pub inner_instructions: Vec<InnerInstructions>,
    pub return_data: Option<ReturnData>,
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

    /// A record in this format, or in the one before inner instructions and return data were
    /// kept (a data directory written by an older build still starts).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        bincode::deserialize(bytes)
            .ok()
            .or_else(|| legacy::decode(bytes))
    }
}

/// The slot record before `TxStatus` had `inner_instructions` and `return_data`.
mod legacy {
    use super::*;

    #[derive(Deserialize)]
    struct TxStatusV1 {
        signature: Signature,
        slot: u64,
        err: Option<TransactionError>,
        fee: u64,
        compute_units: u64,
        logs: Vec<String>,
        pre_balances: Vec<u64>,
        post_balances: Vec<u64>,
        pre_token_balances: Vec<TokenBalance>,
        post_token_balances: Vec<TokenBalance>,
        loaded_writable: Vec<Pubkey>,
        loaded_readonly: Vec<Pubkey>,
        transaction: Vec<u8>,
    }

    #[derive(Deserialize)]
    struct SlotRecordV1 {
        header: SlotHeader,
        genesis_hash: Hash,
        statuses: Vec<TxStatusV1>,
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<SlotRecord> {
        let r: SlotRecordV1 = bincode::deserialize(bytes).ok()?;
        Some(SlotRecord {
            header: r.header,
            genesis_hash: r.genesis_hash,
            statuses: r
                .statuses
                .into_iter()
                .map(|s| TxStatus {
                    signature: s.signature,
                    slot: s.slot,
                    err: s.err,
                    fee: s.fee,
                    compute_units: s.compute_units,
                    logs: s.logs,
                    pre_balances: s.pre_balances,
                    post_balances: s.post_balances,
                    pre_token_balances: s.pre_token_balances,
                    post_token_balances: s.post_token_balances,
                    loaded_writable: s.loaded_writable,
                    loaded_readonly: s.loaded_readonly,
                    transaction: s.transaction,
                    inner_instructions: Vec::new(),
                    return_data: None,
                })
                .collect(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Commitment {
    Processed,
    Confirmed,
    Finalized,
}

impl TxStatus {
    /// Memory this status holds, approximately (what the retention budget counts): the struct,
    /// its vectors' contents, its logs (each up to Agave's 10 KB log limit in all) and its
    /// table entries.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.logs.iter().map(|l| l.len() + 24).sum::<usize>()
            + 8 * (self.pre_balances.len() + self.post_balances.len())
            + std::mem::size_of::<TokenBalance>()
                * (self.pre_token_balances.len() + self.post_token_balances.len())
            + 32 * (self.loaded_writable.len() + self.loaded_readonly.len())
            + self.transaction.len()
            + self
                .inner_instructions
                .iter()
                .map(|g| {
                    std::mem::size_of::<InnerInstructions>()
                        + g.instructions
                            .iter()
                            .map(|ix| {
                                std::mem::size_of::<InnerInstruction>()
                                    + ix.accounts.len()
                                    + ix.data.len()
                            })
                            .sum::<usize>()
                })
                .sum::<usize>()
            + self.return_data.as_ref().map_or(0, |r| {
                std::mem::size_of::<ReturnData>() + r.data.len()
            })
            // The signature map's entry and the slot's signature list.
            + 64 + 64
    }
}

/// How long transaction statuses stay queryable: this many slots, and at most this many bytes
/// (the older slots' statuses go first when either is exceeded; headers stay for the slots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRetention {
    pub slots: usize,
    pub bytes: usize,
    /// Slots a blockhash stays valid for (`runtime.blockhash_validity_ms` in slots): statuses
    /// outlive it, so a duplicate of a processed transaction is always recognised.
    pub blockhash_validity_slots: u64,
}

impl StatusRetention {
    /// The default byte budget, `slots` slots.
    pub fn slots(slots: usize) -> Self {
        Self {
            slots,
            bytes: DEFAULT_STATUS_RETENTION_BYTES,
            blockhash_validity_slots: dataplane::dedup::MAX_PROCESSING_AGE_SLOTS,
        }
    }
}

pub const DEFAULT_STATUS_RETENTION_BYTES: usize = 256 << 20;

struct Inner {
    headers: VecDeque<SlotHeader>,
    statuses: HashMap<Signature, Arc<TxStatus>>,
    /// Each retained slot's signatures, oldest first, with the bytes its statuses hold.
    by_slot: VecDeque<(u64, Vec<Signature>, usize)>,
    /// Sum of `by_slot`'s bytes.
    status_bytes: usize,
}

/// Shared between the bank (writer), the commit tile and the RPC (readers).
pub struct ChainState {
    inner: RwLock<Inner>,
    processed_slot: AtomicU64,
    /// Durable on this node's disk (the commit tile).
    durable_slot: AtomicU64,
    /// Scale-out: durable on the follower too (its acks); `u64::MAX` while no replica is
    /// required. A slot is confirmed when it is both.
    replicated_slot: AtomicU64,
    /// The newest confirmed slot announced to the listener (announcements go in order).
    announced_durable: parking_lot::Mutex<u64>,
    genesis_hash: Hash,
    retention_slots: usize,
    retention_bytes: usize,
    validity_slots: u64,
    transaction_count: AtomicU64,
    /// Statuses dropped before `retention_slots` because of `retention_bytes`.
    evicted_for_bytes: AtomicU64,
    /// Where closed and durable slots are announced (the PubSub endpoint), once it listens.
    events: std::sync::OnceLock<Arc<ChainEvents>>,
    /// Per-minute throughput samples of the slots this process closed (not recovered ones).
    perf: parking_lot::Mutex<PerfSampler>,
    /// When the newest slots became durable (monotonic ns), newest last: what a
    /// notification's latency is measured from.
    durable_at: parking_lot::Mutex<VecDeque<(u64, u64)>>,
    /// Scale-out: the cluster's clock, whose blockhash for a slot is known before this node
    /// closes it (another node may have closed it and handed it out already).
    cluster_clock: std::sync::OnceLock<cluster::ClusterClock>,
    /// Transactions another cluster node ran on partitions this node holds (a replica, or a
    /// partition that moved here): within the blockhash window they are "already processed"
    /// here too, and their statuses are answered from here (the node that ran them may be
    /// gone).
    /// Each with the local slot its record was written in: durable here once that slot is.
    foreign: parking_lot::Mutex<HashMap<Signature, (ForeignSignature, u64)>>,
}

/// A transaction another cluster node ran, as replication and moves carry it: enough to refuse
/// it again and to answer its status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignSignature {
    pub signature: Signature,
    pub slot: u64,
    /// The partition of its fee payer (where the record lives, and travels on a move).
    pub partition: u16,
    pub err: Option<TransactionError>,
}

impl ForeignSignature {
    pub fn of(status: &TxStatus, partition: u16) -> Self {
        Self {
            signature: status.signature,
            slot: status.slot,
            partition,
            err: status.err.clone(),
        }
    }
}

/// Slots whose durable time is kept.
const DURABLE_TIMES: usize = 1024;

impl ChainState {
    pub fn new(genesis_hash: Hash, retention: StatusRetention) -> Self {
        Self {
            inner: RwLock::new(Inner {
                headers: VecDeque::new(),
                statuses: HashMap::default(),
                by_slot: VecDeque::new(),
                status_bytes: 0,
            }),
            processed_slot: AtomicU64::new(0),
            durable_slot: AtomicU64::new(0),
            replicated_slot: AtomicU64::new(u64::MAX),
            announced_durable: parking_lot::Mutex::new(0),
            genesis_hash,
            retention_slots: retention
                .slots
                .max(retention.blockhash_validity_slots as usize + 1),
            retention_bytes: retention.bytes,
            validity_slots: retention.blockhash_validity_slots.max(1),
            transaction_count: AtomicU64::new(0),
            evicted_for_bytes: AtomicU64::new(0),
            events: std::sync::OnceLock::new(),
            durable_at: parking_lot::Mutex::new(VecDeque::with_capacity(DURABLE_TIMES)),
            foreign: parking_lot::Mutex::new(HashMap::default()),
            cluster_clock: std::sync::OnceLock::new(),
            perf: parking_lot::Mutex::new(PerfSampler::new(crate::perf_samples::SAMPLE_PERIOD)),
        }
    }

    /// Announce slots from now on to `events` (one listener per chain; a second is ignored).
    pub fn announce_to(&self, events: Arc<ChainEvents>) {
        let _ = self.events.set(events);
    }

    /// The listener's queue, if one listens.
    pub fn events(&self) -> Option<&Arc<ChainEvents>> {
        self.events.get()
    }

    /// This node's own genesis: the first link of its slot headers' hash chain.
    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// The genesis hash clients are told (`getGenesisHash`): the cluster's when this node is
    /// in one, so every node and router names the same chain.
    pub fn network_genesis_hash(&self) -> Hash {
        self.cluster_clock.get().map_or(self.genesis_hash, |c| {
            Hash::new_from_array(c.genesis_hash())
        })
    }

    /// Slots a blockhash stays valid for after its own slot (`lastValidBlockHeight` is the
    /// blockhash's slot plus this).
    pub fn validity_slots(&self) -> u64 {
        self.validity_slots
    }

    /// A closed slot: header and statuses become visible at processed commitment, and are
    /// announced with `accounts` (what the slot wrote) if a listener listens.
    pub fn push_slot(
        &self,
        header: SlotHeader,
        statuses: Vec<TxStatus>,
        accounts: Option<Arc<Vec<(Pubkey, solana_account::AccountSharedData)>>>,
    ) {
        let slot = header.slot;
        let announced = self.events.get().map(|e| (e, header.clone()));
        let mut shared = Vec::with_capacity(if announced.is_some() {
            statuses.len()
        } else {
            0
        });
        self.transaction_count
            .fetch_add(statuses.len() as u64, Ordering::Relaxed);
        let mut inner = self.inner.write();
        let sigs = statuses.iter().map(|s| s.signature).collect();
        let bytes: usize = statuses.iter().map(TxStatus::approx_bytes).sum();
        for s in statuses {
            let s = Arc::new(s);
            if announced.is_some() {
                shared.push(s.clone());
            }
            inner.statuses.insert(s.signature, s);
        }
        inner.by_slot.push_back((slot, sigs, bytes));
        inner.status_bytes += bytes;
        inner.headers.push_back(header);
        while inner.headers.len() > self.retention_slots {
            inner.headers.pop_front();
        }
        // Oldest slots first; the newest slot always stays (its statuses are what clients
        // are waiting on).
        loop {
            let over_slots = inner.by_slot.len() > self.retention_slots;
            let over_bytes = inner.status_bytes > self.retention_bytes && inner.by_slot.len() > 1;
            if !over_slots && !over_bytes {
                break;
            }
            let (_, old, bytes) = inner.by_slot.pop_front().expect("non-empty");
            inner.status_bytes -= bytes;
            if !over_slots {
                self.evicted_for_bytes
                    .fetch_add(old.len() as u64, Ordering::Relaxed);
            }
            for sig in old {
                inner.statuses.remove(&sig);
            }
        }
        drop(inner);
        self.processed_slot.store(slot, Ordering::Release);
        if let Some((events, header)) = announced {
            events.send(ChainEvent::Processed {
                header,
                statuses: shared,
                accounts: accounts.unwrap_or_default(),
            });
        }
    }

    /// The bank closed `slot` with `transactions` transactions (getRecentPerformanceSamples).
    pub fn record_slot_perf(&self, slot: u64, transactions: u64) {
        self.perf
            .lock()
            .on_slot(slot, transactions, std::time::Instant::now());
    }

    /// The newest `limit` per-minute samples, newest first.
    pub fn perf_samples(&self, limit: usize) -> Vec<PerfSample> {
        self.perf.lock().recent(limit)
    }

    pub fn set_durable(&self, slot: u64) {
        {
            let mut at = self.durable_at.lock();
            if at.len() == DURABLE_TIMES {
                at.pop_front();
            }
            at.push_back((slot, dataplane::monotonic_ns()));
        }
        self.durable_slot.store(slot, Ordering::Release);
        self.announce_durable();
    }

    /// From now on a slot is confirmed only once the follower acknowledged it durable
    /// ([`Self::set_replicated`]), counting from `acked` (a node that restarts does not know
    /// what its follower holds: 0, until its new follower session is acknowledged).
    pub fn require_replica(&self, acked: u64) {
        let _ = self.replicated_slot.compare_exchange(
            u64::MAX,
            acked,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The follower holds every slot up to `slot` durably (never goes back).
    pub fn set_replicated(&self, slot: u64) {
        self.replicated_slot.fetch_max(slot, Ordering::AcqRel);
        self.announce_durable();
    }

    /// The newest slot the follower acknowledged (`u64::MAX` while none is required).
    pub fn replicated_slot(&self) -> u64 {
        self.replicated_slot.load(Ordering::Acquire)
    }

    /// Durable on this node's disk, whether or not replicated (what a replica's writer and a
    /// partition's export wait for).
    pub fn local_durable_slot(&self) -> u64 {
        self.durable_slot.load(Ordering::Acquire)
    }

    fn announce_durable(&self) {
        let mut announced = self.announced_durable.lock();
        let slot = self.durable_slot();
        if slot > *announced {
            *announced = slot;
            if let Some(events) = self.events.get() {
                events.send(ChainEvent::Durable { slot });
            }
        }
    }

    /// When `slot` became durable (monotonic ns), for the last 1,024 durable slots.
    pub fn durable_at(&self, slot: u64) -> Option<u64> {
        let at = self.durable_at.lock();
        at.iter().rev().find(|(s, _)| *s == slot).map(|(_, t)| *t)
    }

    /// The newest confirmed (and finalized) slot: durable here and, in a cluster with
    /// replication, on the follower.
    pub fn durable_slot(&self) -> u64 {
        self.local_durable_slot()
            .min(self.replicated_slot.load(Ordering::Acquire))
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

    /// Bytes the retained statuses hold (approximately), and statuses dropped early to keep
    /// within the byte budget.
    pub fn status_memory(&self) -> (usize, u64) {
        (
            self.inner.read().status_bytes,
            self.evicted_for_bytes.load(Ordering::Relaxed),
        )
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
            .find(|(s, _, _)| *s == slot)
            .map(|(_, sigs, _)| sigs.clone())
    }

    pub fn header(&self, slot: u64) -> Option<SlotHeader> {
        let inner = self.inner.read();
        let first = inner.headers.front()?.slot;
        let idx = slot.checked_sub(first)? as usize;
        // Slots are contiguous unless a cluster node skipped some (it was behind its clock,
        // or down): then the header is found by its number.
        match inner.headers.get(idx) {
            Some(h) if h.slot == slot => Some(h.clone()),
            _ => {
                let i = inner.headers.partition_point(|h| h.slot < slot);
                inner.headers.get(i).filter(|h| h.slot == slot).cloned()
            }
        }
    }

    /// Header of the newest slot at `commitment`.
    pub fn latest_header(&self, c: Commitment) -> Option<SlotHeader> {
        self.header(self.slot_at(c))
    }

    /// Slot of `blockhash` if it is still within the validity window.
    pub fn blockhash_slot(&self, blockhash: &Hash, current_slot: u64) -> Option<u64> {
        // A cluster's blockhashes are a function of the slot: every slot of the window counts,
        // closed here or not.
        if let Some(c) = self.cluster_clock.get() {
            let first = current_slot.saturating_sub(self.validity_slots);
            return (first..=current_slot)
                .rev()
                .find(|&s| c.blockhash(s) == blockhash.to_bytes());
        }
        let inner = self.inner.read();
        inner
            .headers
            .iter()
            .rev()
            .take_while(|h| h.slot + self.validity_slots >= current_slot)
            .find(|h| &h.blockhash == blockhash)
            .map(|h| h.slot)
    }

    /// Transactions run elsewhere (a replica, a partition moved here): admission refuses them
    /// while their blockhash could still be valid. Older ones are forgotten as new ones arrive.
    /// `written_in`: the local slot whose commit makes them durable here.
    pub fn add_foreign(&self, sigs: &[ForeignSignature], written_in: u64) {
        let oldest = self
            .processed_slot()
            .saturating_sub(self.validity_slots + 1);
        let mut f = self.foreign.lock();
        f.retain(|_, (s, _)| s.slot >= oldest);
        f.extend(
            sigs.iter()
                .filter(|s| s.slot >= oldest)
                .map(|s| (s.signature, (s.clone(), written_in))),
        );
    }

    /// The foreign signatures of `partition` from slot `first` on (a partition that moves
    /// on takes them along).
    pub fn foreign_since(&self, partition: u16, first: u64) -> Vec<ForeignSignature> {
        self.foreign
            .lock()
            .values()
            .filter(|(s, _)| s.partition == partition && s.slot >= first)
            .map(|(s, _)| s.clone())
            .collect()
    }

    pub fn is_foreign(&self, sig: &Signature) -> bool {
        let f = self.foreign.lock();
        !f.is_empty() && f.contains_key(sig)
    }

    /// A transaction another node ran, as this node holds it (`getSignatureStatuses` answers
    /// from it: after a failover the node that ran it is gone), and its commitment here:
    /// durable once the record is on this node's disk too (the node that ran it shipped it
    /// once durable there, so it is then on two disks), processed before. This node's own
    /// follower is not waited for: after a failover it is being chosen anew, and the record
    /// was confirmed before.
    pub fn foreign_status(&self, sig: &Signature) -> Option<(ForeignSignature, Commitment)> {
        let f = self.foreign.lock();
        if f.is_empty() {
            return None;
        }
        f.get(sig).map(|(s, written_in)| {
            let c = if *written_in <= self.local_durable_slot() {
                Commitment::Finalized
            } else {
                Commitment::Processed
            };
            (s.clone(), c)
        })
    }

    /// The statuses of the retained slots from `first` on (for a partition's export).
    pub fn statuses_since(&self, first: u64) -> Vec<Arc<TxStatus>> {
        let inner = self.inner.read();
        inner
            .by_slot
            .iter()
            .filter(|(s, _, _)| *s >= first)
            .flat_map(|(_, sigs, _)| sigs.iter().filter_map(|s| inner.statuses.get(s).cloned()))
            .collect()
    }

    /// A cluster node's chain: blockhashes come from the cluster clock.
    pub fn set_cluster_clock(&self, clock: cluster::ClusterClock) {
        let _ = self.cluster_clock.set(clock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique() -> [u8; 64] {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let mut b = [0u8; 64];
        b[..8].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        b
    }

    fn status(slot: u64, log_bytes: usize) -> TxStatus {
        TxStatus {
            signature: Signature::from(unique()),
            slot,
            err: None,
            fee: 5000,
            compute_units: 150,
            logs: vec!["x".repeat(log_bytes)],
            pre_balances: vec![1, 2],
            post_balances: vec![1, 2],
            pre_token_balances: vec![],
            post_token_balances: vec![],
            loaded_writable: vec![],
            loaded_readonly: vec![],
            transaction: vec![0; 200],
            inner_instructions: vec![],
            return_data: None,
        }
    }

    fn header(slot: u64) -> SlotHeader {
        SlotHeader {
            slot,
            parent_blockhash: Hash::default(),
            blockhash: Hash::new_from_array(unique()[..32].try_into().unwrap()),
            transaction_count: 0,
            unix_timestamp: 0,
        }
    }

    /// Slots full of 10 KB logs are bounded by bytes, oldest first, long before the slot
    /// count; the newest slot always stays; the count of early drops is kept.
    #[test]
    fn records_of_the_format_before_inner_instructions_still_decode() {
        #[derive(Serialize)]
        struct OldStatus<'a>(
            Signature,
            u64,
            Option<TransactionError>,
            u64,
            u64,
            Vec<String>,
            Vec<u64>,
            Vec<u64>,
            Vec<TokenBalance>,
            Vec<TokenBalance>,
            Vec<Pubkey>,
            Vec<Pubkey>,
            &'a [u8],
        );
        let st = status(7, 3);
        let old = (
            header(7),
            Hash::default(),
            vec![OldStatus(
                st.signature,
                7,
                None,
                st.fee,
                st.compute_units,
                st.logs.clone(),
                st.pre_balances.clone(),
                st.post_balances.clone(),
                vec![],
                vec![],
                vec![],
                vec![],
                &st.transaction,
            )],
        );
        let r = SlotRecord::decode(&bincode::serialize(&old).unwrap()).unwrap();
        assert_eq!(r.statuses, vec![st.clone()]);
        // And the current format round-trips, CPIs and return data included.
        let mut st = st;
        st.inner_instructions = vec![InnerInstructions {
            index: 0,
            instructions: vec![InnerInstruction {
                program_id_index: 2,
                accounts: vec![0, 1],
                data: vec![9; 12],
                stack_height: 2,
            }],
        }];
        st.return_data = Some(ReturnData {
            program_id: Pubkey::new_unique(),
            data: vec![1, 2, 3],
        });
        let rec = SlotRecord {
            header: header(8),
            genesis_hash: Hash::default(),
            statuses: vec![st.clone()],
        };
        assert_eq!(SlotRecord::decode(&rec.encode()), Some(rec));
        assert!(st.approx_bytes() > status(7, 3).approx_bytes() + 12 + 2 + 3);
    }

    #[test]
    fn statuses_are_bounded_by_bytes_oldest_first() {
        let budget = 2 << 20;
        let chain = ChainState::new(
            Hash::default(),
            StatusRetention {
                slots: 4096,
                bytes: budget,
                blockhash_validity_slots: 150,
            },
        );
        let mut sigs = Vec::new();
        for slot in 1..=100u64 {
            let statuses: Vec<_> = (0..20).map(|_| status(slot, 10_000)).collect();
            sigs.push(statuses[0].signature);
            chain.push_slot(header(slot), statuses, None);
            let (bytes, _) = chain.status_memory();
            assert!(bytes <= budget, "slot {slot}: {bytes} bytes retained");
        }
        let (bytes, evicted) = chain.status_memory();
        assert!(bytes > budget / 2, "{bytes}");
        assert!(evicted > 1000, "{evicted}");
        assert!(chain.status(&sigs[99]).is_some(), "the newest slot stays");
        assert!(chain.status(&sigs[0]).is_none(), "the oldest went first");
        assert!(chain.header(1).is_some(), "headers are kept by slot count");

        // One slot larger than the budget on its own is kept, alone.
        let big: Vec<_> = (0..400).map(|_| status(101, 10_000)).collect();
        let s = big[0].signature;
        chain.push_slot(header(101), big, None);
        assert!(chain.status(&s).is_some());
        assert!(chain.status(&sigs[99]).is_none());
    }

    /// A listener gets each closed slot (statuses, written accounts) then its durability; one
    /// that stops taking events costs the chain nothing but counted drops.
    #[test]
    fn slots_are_announced_and_a_stalled_listener_only_loses_events() {
        let chain = ChainState::new(Hash::default(), StatusRetention::slots(300));
        chain.push_slot(header(1), vec![status(1, 10)], None);
        let (events, rx) = ChainEvents::new();
        chain.announce_to(events.clone());
        let key = Pubkey::new_unique();
        let written = Arc::new(vec![(
            key,
            solana_account::AccountSharedData::new(7, 0, &key),
        )]);
        let st = status(2, 10);
        let sig = st.signature;
        chain.push_slot(header(2), vec![st], Some(written));
        chain.set_durable(2);
        match rx.try_recv().unwrap() {
            ChainEvent::Processed {
                header,
                statuses,
                accounts,
            } => {
                assert_eq!(header.slot, 2);
                assert_eq!(statuses[0].signature, sig);
                assert_eq!(accounts[0].0, key);
            }
            ChainEvent::Durable { .. } => panic!("processed comes first"),
        }
        assert!(matches!(
            rx.try_recv().unwrap(),
            ChainEvent::Durable { slot: 2 }
        ));
        for slot in 3..3 + crate::events::EVENT_QUEUE as u64 + 10 {
            chain.push_slot(header(slot), Vec::new(), None);
        }
        assert_eq!(rx.len(), crate::events::EVENT_QUEUE);
        assert_eq!(events.dropped.load(Ordering::Relaxed), 10);
        assert_eq!(
            chain.processed_slot(),
            3 + crate::events::EVENT_QUEUE as u64 + 9
        );
    }

    /// With a replica required, a slot is confirmed once durable here and acknowledged by
    /// the follower, announced once, in order; the confirmed slot never goes back.
    #[test]
    fn a_replica_gates_confirmation() {
        let chain = ChainState::new(Hash::default(), StatusRetention::slots(300));
        let (events, rx) = ChainEvents::new();
        chain.announce_to(events);
        chain.set_durable(3);
        assert_eq!(chain.durable_slot(), 3);
        chain.require_replica(3);
        chain.set_durable(5);
        assert_eq!((chain.durable_slot(), chain.local_durable_slot()), (3, 5));
        assert_eq!(chain.commitment_of(4), Commitment::Processed);
        chain.set_replicated(7);
        assert_eq!(chain.durable_slot(), 5);
        chain.set_replicated(4);
        assert_eq!(chain.replicated_slot(), 7);
        chain.set_durable(9);
        assert_eq!(chain.durable_slot(), 7);
        let announced: Vec<u64> = rx
            .try_iter()
            .filter_map(|e| match e {
                ChainEvent::Durable { slot } => Some(slot),
                _ => None,
            })
            .collect();
        assert_eq!(announced, vec![3, 5, 7]);
    }
}
