//! State commitment: per slot, a Merkle root over all accounts (an indexed Merkle tree, see
//! `tree`) and Solana's accounts lattice hash; inclusion and non-existence proofs at any
//! slot whose changes are still held. The store calls `stage` inside a slot commit, then
//! `publish` once the slot is durable or `rollback` if it failed.
//!
//! What is persistent: each account record carries its leaf position and each slot's
//! metadata record carries its `SlotCommitment`; at open the tree is rebuilt from the
//! records and must reproduce the last slot's root. Undo records for older-slot proofs are
//! in memory only (a restart starts them afresh).

mod history;
pub mod lattice;
pub mod par;
pub mod tree;

use history::View;
use par::par_map;
use solana_account::{AccountSharedData, ReadableAccount};
use solana_lattice_hash::lt_hash::LtHash;
use solana_pubkey::Pubkey;
use stateproof::{AccountState, Hash, Key, Leaf, Proof};
use std::collections::VecDeque;
use thiserror::Error;
use tree::{Change, LeafState, StateTree, Undo};

pub use tree::Entry;

/// What a slot commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotCommitment {
    pub slot: u64,
    pub root: Hash,
    pub depth: u8,
    pub accounts: u64,
    pub lattice: Box<LtHash>,
}

const HEADER_MAGIC: u32 = u32::from_le_bytes(*b"GCSC");
/// magic u32 | slot u64 | root 32 | depth u8 | accounts u64 | lattice 1024 × u16
pub const HEADER_BYTES: usize = 4 + 8 + 32 + 1 + 8 + 2048;

impl SlotCommitment {
    pub fn lattice_checksum(&self) -> [u8; 32] {
        self.lattice.checksum().0
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&HEADER_MAGIC.to_le_bytes());
        out.extend_from_slice(&self.slot.to_le_bytes());
        out.extend_from_slice(&self.root);
        out.push(self.depth);
        out.extend_from_slice(&self.accounts.to_le_bytes());
        for lane in self.lattice.0.iter() {
            out.extend_from_slice(&lane.to_le_bytes());
        }
    }

    /// Splits a slot metadata payload into its commitment and the runtime's blob.
    pub fn decode(b: &[u8]) -> Result<(SlotCommitment, &[u8]), String> {
        if b.len() < HEADER_BYTES || b[..4] != HEADER_MAGIC.to_le_bytes() {
            return Err("slot metadata lacks its state commitment header".into());
        }
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
        let mut lattice = Box::new(LtHash::identity());
        for (i, lane) in lattice.0.iter_mut().enumerate() {
            let at = 53 + 2 * i;
            *lane = u16::from_le_bytes([b[at], b[at + 1]]);
        }
        let c = SlotCommitment {
            slot: u64_at(4),
            root: b[12..44].try_into().expect("32"),
            depth: b[44],
            accounts: u64_at(45),
            lattice,
        };
        Ok((c, &b[HEADER_BYTES..]))
    }
}

/// An account's state (or absence) at a slot with the proof against that slot's root.
#[derive(Debug, Clone)]
pub struct AccountProof {
    pub slot: u64,
    pub root: Hash,
    pub account: Option<AccountSharedData>,
    pub leaf_index: u32,
    pub leaf: Leaf,
    pub siblings: Vec<Hash>,
}

impl AccountProof {
    pub fn proof(&self) -> Proof<'_> {
        Proof {
            leaf_index: self.leaf_index,
            leaf: self.leaf,
            siblings: &self.siblings,
        }
    }

    pub fn encoded(&self) -> Vec<u8> {
        let p = self.proof();
        let mut out = vec![0; p.encoded_len()];
        p.encode(&mut out).expect("sized buffer");
        out
    }
}

pub fn account_state(a: &AccountSharedData) -> AccountState<'_> {
    AccountState {
        lamports: a.lamports(),
        rent_epoch: a.rent_epoch(),
        owner: a.owner().to_bytes(),
        executable: a.executable(),
        data: a.data(),
    }
}

pub fn account_hash(a: &AccountSharedData) -> Hash {
    stateproof::account_hash(&account_state(a))
}

#[derive(Debug, Error)]
pub enum ProofQueryError {
    #[error("no slot has been committed yet")]
    NoSlot,
    #[error("slot {slot} is outside the retained window (slots {oldest}..={newest})")]
    NotRetained { slot: u64, oldest: u64, newest: u64 },
    #[error(
        "proofs for slot {slot} are no longer held (held for slots {oldest}..={newest}; the root stays in the slot header)"
    )]
    HistoryNotHeld { slot: u64, oldest: u64, newest: u64 },
    #[error(
        "state commitment is not kept by the {0} storage engine (use storage.engine = \"array\")"
    )]
    Unsupported(&'static str),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error("internal error: the proof for {key} at slot {slot} does not verify ({reason})")]
    Inconsistent {
        key: Pubkey,
        slot: u64,
        reason: stateproof::ProofError,
    },
}

/// One slot's changes as staged inside its commit.
pub struct Staged {
    undo: Undo,
    lattice_before: LtHash,
    old: Vec<(Key, Option<AccountSharedData>)>,
    pub header: SlotCommitment,
    /// The leaf position of each committed account (0 for a deletion).
    pub positions: Vec<u32>,
}

struct SlotHistory {
    slot: u64,
    undo: Undo,
    /// Accounts as they were before this slot, sorted by key.
    old: Vec<(Key, Option<AccountSharedData>)>,
    bytes: usize,
}

/// Undo records a proof at an older slot may replay (it builds maps over them while commits
/// wait for the lock): older slots are answered "no longer held", whatever memory
/// `history_bytes` allows.
pub const MAX_PROOF_REPLAY_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, Copy)]
pub struct CommitmentConfig {
    /// Slot headers (roots) kept for `getSlotHeader`.
    pub window_slots: usize,
    /// Memory for the undo records that serve proofs at older slots.
    pub history_bytes: usize,
}

impl Default for CommitmentConfig {
    fn default() -> Self {
        CommitmentConfig {
            window_slots: 1024,
            history_bytes: 1 << 30,
        }
    }
}

pub struct Commitment {
    cfg: CommitmentConfig,
    tree: StateTree,
    lattice: LtHash,
    headers: VecDeque<SlotCommitment>,
    history: VecDeque<SlotHistory>,
    history_bytes: usize,
}

impl Commitment {
    pub fn new(cfg: CommitmentConfig) -> Self {
        Commitment {
            cfg,
            tree: StateTree::new(),
            lattice: LtHash::identity(),
            headers: VecDeque::new(),
            history: VecDeque::new(),
            history_bytes: 0,
        }
    }

    /// The commitment rebuilt at open from the accounts' leaves and the retained headers
    /// (oldest first). The rebuilt root must equal the last header's.
    pub fn recover(
        cfg: CommitmentConfig,
        entries: Vec<(u32, Entry)>,
        headers: Vec<SlotCommitment>,
    ) -> Result<Self, String> {
        let tree = StateTree::from_entries(entries)?;
        let mut c = Commitment::new(cfg);
        if let Some(last) = headers.last() {
            if last.root != tree.root() || last.accounts != tree.len() as u64 {
                return Err(format!(
                    "state rebuilt from the records ({} accounts, root {}) does not match slot {}'s committed root {} ({} accounts)",
                    tree.len(),
                    hex(&tree.root()),
                    last.slot,
                    hex(&last.root),
                    last.accounts
                ));
            }
            c.lattice = (*last.lattice).clone();
        } else if !tree.is_empty() {
            return Err("accounts exist but no slot header was found".into());
        }
        c.tree = tree;
        c.headers = headers.into();
        while c.headers.len() > cfg.window_slots.max(1) {
            c.headers.pop_front();
        }
        Ok(c)
    }

    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    pub fn tree(&self) -> &StateTree {
        &self.tree
    }

    pub fn header(&self, slot: u64) -> Option<&SlotCommitment> {
        let i = self.headers.binary_search_by_key(&slot, |h| h.slot).ok()?;
        self.headers.get(i)
    }

    pub fn latest(&self) -> Option<&SlotCommitment> {
        self.headers.back()
    }

    pub fn oldest_header(&self) -> Option<u64> {
        self.headers.front().map(|h| h.slot)
    }

    /// Bytes held for older-slot proofs.
    pub fn history_bytes(&self) -> usize {
        self.history_bytes
    }

    /// Updates the tree and lattice hash for `accounts` (`old`: each one's state before the
    /// slot). Until `publish` or `rollback`, the caller must keep readers out.
    pub fn stage(
        &mut self,
        slot: u64,
        accounts: &[(Pubkey, AccountSharedData)],
        old: Vec<Option<AccountSharedData>>,
    ) -> Staged {
        let delta = lattice::slot_delta(accounts, &old);
        self.stage_with_delta(slot, accounts, old, &delta)
    }

    /// `stage` with the lattice-hash delta already computed (the benchmark times the two
    /// apart): hashes the accounts and updates the tree.
    pub fn stage_with_delta(
        &mut self,
        slot: u64,
        accounts: &[(Pubkey, AccountSharedData)],
        old: Vec<Option<AccountSharedData>>,
        lattice_delta: &LtHash,
    ) -> Staged {
        let changes: Vec<Change> = par_map(accounts, |(k, a)| Change {
            key: k.to_bytes(),
            account_hash: (a.lamports() > 0).then(|| account_hash(a)),
        });
        let lattice_before = self.lattice.clone();
        self.lattice.mix_in(lattice_delta);
        let (undo, positions) = self.tree.apply(&changes);
        let old: Vec<(Key, Option<AccountSharedData>)> = accounts
            .iter()
            .map(|(k, _)| k.to_bytes())
            .zip(old)
            .collect();
        Staged {
            header: SlotCommitment {
                slot,
                root: self.tree.root(),
                depth: self.tree.depth() as u8,
                accounts: self.tree.len() as u64,
                lattice: Box::new(self.lattice.clone()),
            },
            undo,
            lattice_before,
            old,
            positions,
        }
    }

    /// The staged slot did not become durable: back to the previous slot's state.
    pub fn rollback(&mut self, s: Staged) {
        self.tree.rollback(s.undo);
        self.lattice = s.lattice_before;
    }

    /// The staged slot is durable: keep its header and its undo record.
    pub fn publish(&mut self, mut s: Staged) {
        // Sorted for lookups by older-slot proofs (a slot writes each key once).
        s.old.sort_unstable_by_key(|a| a.0);
        s.old.dedup_by(|b, a| a.0 == b.0);
        let bytes = s.undo.bytes()
            + s.old
                .iter()
                .map(|(_, a)| 48 + a.as_ref().map_or(0, |a| a.data().len() + 64))
                .sum::<usize>();
        self.headers.push_back(s.header);
        while self.headers.len() > self.cfg.window_slots.max(1) {
            self.headers.pop_front();
        }
        self.history.push_back(SlotHistory {
            slot: self.headers.back().expect("just pushed").slot,
            undo: s.undo,
            old: s.old,
            bytes,
        });
        self.history_bytes += bytes;
        let oldest_header = self.headers.front().map_or(0, |h| h.slot);
        while let Some(h) = self.history.front() {
            // The record of the oldest header's own slot is not needed: it leads to the
            // slot before, which is out of the window.
            if self.history_bytes <= self.cfg.history_bytes && h.slot > oldest_header {
                break;
            }
            self.history_bytes -= h.bytes;
            self.history.pop_front();
        }
    }

    /// The oldest slot a proof can be made for: every later slot's undo record is held, and
    /// together they are at most [`MAX_PROOF_REPLAY_BYTES`] (a proof replays them while
    /// holding the lock a commit needs).
    fn oldest_provable(&self) -> Option<u64> {
        let newest = self.headers.back()?.slot;
        let mut replay = 0;
        let within = self
            .history
            .iter()
            .rev()
            .take_while(|h| {
                replay += h.bytes;
                replay <= MAX_PROOF_REPLAY_BYTES
            })
            .count();
        let Some(first) = self.history.get(self.history.len() - within) else {
            // Even the newest slot's record is over the budget: only the newest is provable.
            return Some(newest);
        };
        let i = self.headers.partition_point(|h| h.slot < first.slot);
        Some(if i == 0 {
            first.slot
        } else {
            self.headers[i - 1].slot
        })
    }

    /// The account `key` (or its absence) at `slot` (default: the newest committed) with its
    /// proof. `current` reads the account's committed state now.
    pub fn prove(
        &self,
        key: &Pubkey,
        slot: Option<u64>,
        current: impl Fn(&Pubkey) -> Result<Option<AccountSharedData>, crate::StoreError>,
    ) -> Result<AccountProof, ProofQueryError> {
        let newest = self.headers.back().ok_or(ProofQueryError::NoSlot)?.slot;
        let oldest = self.headers.front().expect("non-empty").slot;
        let slot = slot.unwrap_or(newest);
        let header = self.header(slot).ok_or(ProofQueryError::NotRetained {
            slot,
            oldest,
            newest,
        })?;
        let provable = self.oldest_provable().unwrap_or(newest);
        if slot < provable {
            return Err(ProofQueryError::HistoryNotHeld {
                slot,
                oldest: provable,
                newest,
            });
        }
        let later: Vec<&SlotHistory> = self.history.iter().filter(|h| h.slot > slot).collect();
        let view = View::new(&self.tree, later.iter().map(|h| &h.undo).collect());
        let kb = key.to_bytes();
        let (position, present) = view.locate(&kb);
        let LeafState::Leaf(leaf) = view.leaf_state(position) else {
            return Err(ProofQueryError::Inconsistent {
                key: *key,
                slot,
                reason: stateproof::ProofError::Malformed("located an empty position"),
            });
        };
        let account = if present {
            let before = later.iter().find_map(|h| {
                h.old
                    .binary_search_by(|(k, _)| k.cmp(&kb))
                    .ok()
                    .map(|i| h.old[i].1.clone())
            });
            match before {
                Some(a) => a,
                None => current(key)?,
            }
        } else {
            None
        };
        let proof = AccountProof {
            slot,
            root: header.root,
            account,
            leaf_index: position,
            leaf,
            siblings: view.siblings(position, header.depth as usize),
        };
        let state = proof.account.as_ref().map(account_state);
        stateproof::verify(&proof.root, &kb, state.as_ref(), &proof.proof()).map_err(|reason| {
            ProofQueryError::Inconsistent {
                key: *key,
                slot,
                reason,
            }
        })?;
        Ok(proof)
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests;
