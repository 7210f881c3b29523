//! The open slot's record: what the bank has processed in it so far, and the one way it is
//! closed into a header, a record and the list of accounts it wrote. No channels and no store:
//! the bank decides when; this decides what.
//!
//! Blockhash: SHA-256 over the parent blockhash, the slot number (little-endian) and the
//! signatures in execution order.

use crate::chain::{SlotHeader, SlotRecord, TxStatus};
use ahash::HashSet;
use sha2::{Digest, Sha256};
use solana_clock::Slot;
use solana_hash::Hash;
use solana_pubkey::Pubkey;

pub struct OpenSlot {
    slot: Slot,
    parent_blockhash: Hash,
    hasher: Sha256,
    statuses: Vec<TxStatus>,
    /// Receive time of each processed transaction (for receive-to-commit latency).
    received_ns: Vec<u64>,
    written: HashSet<Pubkey>,
    fees: u64,
}

/// A closed slot, ready to publish and commit.
pub struct ClosedSlot {
    pub header: SlotHeader,
    pub record: SlotRecord,
    /// Every account the slot wrote, once each.
    pub written: Vec<Pubkey>,
    pub received_ns: Vec<u64>,
}

impl OpenSlot {
    pub fn open(slot: Slot, parent_blockhash: Hash) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(parent_blockhash.as_ref());
        hasher.update(slot.to_le_bytes());
        Self {
            slot,
            parent_blockhash,
            hasher,
            statuses: Vec::new(),
            received_ns: Vec::new(),
            written: HashSet::default(),
            fees: 0,
        }
    }

    pub fn slot(&self) -> Slot {
        self.slot
    }

    pub fn parent_blockhash(&self) -> Hash {
        self.parent_blockhash
    }

    /// The slot wrote `key` (into the accounts overlay).
    pub fn wrote(&mut self, key: Pubkey) {
        self.written.insert(key);
    }

    pub fn wrote_all(&mut self, keys: impl IntoIterator<Item = Pubkey>) {
        self.written.extend(keys);
    }

    /// A transaction was processed (successfully or not) in execution order.
    pub fn processed(&mut self, status: TxStatus, received_ns: u64) {
        self.hasher.update(status.signature.as_ref());
        self.fees = self.fees.saturating_add(status.fee);
        self.received_ns.push(received_ns);
        self.statuses.push(status);
    }

    /// Fees charged in this slot so far, lamports.
    pub fn fees(&self) -> u64 {
        self.fees
    }

    pub fn transaction_count(&self) -> usize {
        self.statuses.len()
    }

    /// Close this slot and open the next in its place (its parent: the blockhash just fixed).
    pub fn close_and_open_next(&mut self, unix_timestamp: i64, genesis_hash: Hash) -> ClosedSlot {
        self.close_and_open(self.slot + 1, None, unix_timestamp, genesis_hash)
    }

    /// Close this slot with `blockhash` (`None`: its own hash chain) and open `next` (a
    /// cluster node skips the slots its clock passed while it was behind).
    pub fn close_and_open(
        &mut self,
        next: Slot,
        blockhash: Option<Hash>,
        unix_timestamp: i64,
        genesis_hash: Hash,
    ) -> ClosedSlot {
        assert!(next > self.slot, "slots only go forward");
        let this = std::mem::replace(self, OpenSlot::open(next, Hash::default()));
        let closed = this.close_with(blockhash, unix_timestamp, genesis_hash);
        *self = OpenSlot::open(next, closed.header.blockhash);
        closed
    }

    pub fn close(self, unix_timestamp: i64, genesis_hash: Hash) -> ClosedSlot {
        self.close_with(None, unix_timestamp, genesis_hash)
    }

    fn close_with(
        self,
        blockhash: Option<Hash>,
        unix_timestamp: i64,
        genesis_hash: Hash,
    ) -> ClosedSlot {
        let own = Hash::new_from_array(self.hasher.finalize().into());
        let blockhash = blockhash.unwrap_or(own);
        let header = SlotHeader {
            slot: self.slot,
            parent_blockhash: self.parent_blockhash,
            blockhash,
            transaction_count: self.statuses.len() as u64,
            unix_timestamp,
        };
        ClosedSlot {
            record: SlotRecord {
                header: header.clone(),
                genesis_hash,
                statuses: self.statuses,
            },
            header,
            written: self.written.into_iter().collect(),
            received_ns: self.received_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use solana_signature::Signature;

    fn status(sig: u8, fee: u64) -> TxStatus {
        TxStatus {
            signature: Signature::from([sig; 64]),
            slot: 0,
            err: None,
            fee,
            compute_units: 150,
            logs: Vec::new(),
            pre_balances: Vec::new(),
            post_balances: Vec::new(),
            pre_token_balances: Vec::new(),
            post_token_balances: Vec::new(),
            loaded_writable: Vec::new(),
            loaded_readonly: Vec::new(),
            transaction: Vec::new(),
            inner_instructions: Vec::new(),
            return_data: None,
        }
    }

    #[test]
    fn blockhash_commits_to_parent_slot_and_execution_order() {
        let parent = Hash::new_from_array([7; 32]);
        let close = |slot, order: &[u8]| {
            let mut s = OpenSlot::open(slot, parent);
            for &sig in order {
                s.processed(status(sig, 5_000), 0);
            }
            s.close(0, Hash::default()).header.blockhash
        };
        assert_eq!(close(3, &[1, 2]), close(3, &[1, 2]));
        assert_ne!(close(3, &[1, 2]), close(3, &[2, 1]));
        assert_ne!(close(3, &[1, 2]), close(4, &[1, 2]));
        let mut expect = Sha256::new();
        expect.update(parent.as_ref());
        expect.update(3u64.to_le_bytes());
        expect.update([1u8; 64]);
        assert_eq!(
            close(3, &[1]),
            Hash::new_from_array(expect.finalize().into())
        );
    }

    #[test]
    fn close_carries_statuses_fees_and_each_written_key_once() {
        let mut s = OpenSlot::open(9, Hash::default());
        let k = Pubkey::new_unique();
        s.wrote(k);
        s.wrote_all([k, Pubkey::new_unique()]);
        s.processed(status(1, 5_000), 11);
        s.processed(status(2, 10_000), 12);
        assert_eq!(s.fees(), 15_000);
        assert_eq!(s.transaction_count(), 2);
        let c = s.close(1_700_000_000, Hash::new_from_array([1; 32]));
        assert_eq!(c.header.slot, 9);
        assert_eq!(c.header.transaction_count, 2);
        assert_eq!(c.record.statuses.len(), 2);
        assert_eq!(c.record.header.blockhash, c.header.blockhash);
        assert_eq!(c.received_ns, [11, 12]);
        assert_eq!(c.written.len(), 2);
    }

    #[test]
    fn the_next_slot_opens_on_the_closed_ones_blockhash() {
        let mut s = OpenSlot::open(4, Hash::default());
        s.processed(status(1, 5_000), 0);
        let closed = s.close_and_open_next(0, Hash::default());
        assert_eq!(s.slot(), 5);
        assert_eq!(s.parent_blockhash(), closed.header.blockhash);
        assert_eq!((s.fees(), s.transaction_count()), (0, 0));
    }
}
