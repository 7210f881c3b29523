//! Secondary account indexes, as Agave's `--account-index`: program id → accounts it owns,
//! SPL token owner → token accounts, SPL mint → token accounts (SPL Token and Token-2022),
//! so getProgramAccounts and the token methods look up candidates instead of scanning the
//! store.
//!
//! Kept by [`crate::accounts::AccountsDb`]: every overlay write adds the keys of the new
//! version ([`AccountIndex::add`]: processed state is covered from the moment it is
//! readable), and a slot's commit settles each account it wrote to exactly the keys of its
//! durable version and of its overlay version ([`AccountIndex::settle`]): what a confirmed or
//! a processed read can return. So the index never misses a key at any commitment, and may
//! hold stale ones in between: results are candidates, which the RPC re-reads at the
//! request's commitment and checks again.
//!
//! Bounded by `max_keys` (index entries, one per account and index key). An entry refused
//! at the bound is counted and makes its index key *incomplete*: queries for it are refused
//! from then on (until a restart rebuilds the index), never answered short. Incomplete keys
//! are themselves bounded; past that bound the whole kind is incomplete.

pub mod token;

use ahash::{HashMap, HashSet};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use solana_account::{AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Which index, with Agave's names (`--account-index program-id` ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndexKind {
    ProgramId,
    SplTokenOwner,
    SplTokenMint,
}

impl IndexKind {
    pub const ALL: [IndexKind; 3] = [
        IndexKind::ProgramId,
        IndexKind::SplTokenOwner,
        IndexKind::SplTokenMint,
    ];

    pub fn name(self) -> &'static str {
        match self {
            IndexKind::ProgramId => "program-id",
            IndexKind::SplTokenOwner => "spl-token-owner",
            IndexKind::SplTokenMint => "spl-token-mint",
        }
    }
}

/// One index key: a program, a token owner or a mint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IndexKey {
    pub kind: IndexKind,
    pub key: Pubkey,
}

/// The indexes kept (`[rpc] account_indexes`) and their bound (`[rpc]
/// account_index_max_keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    pub kinds: Vec<IndexKind>,
    pub max_keys: usize,
}

/// Default bound: about 0.6 GB at [`ENTRY_BYTES`] + [`ACCOUNT_BYTES`] per indexed account.
pub const DEFAULT_MAX_KEYS: usize = 4_000_000;

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            kinds: IndexKind::ALL.to_vec(),
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// Why the index cannot answer for a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("the {} index is not kept (rpc.account_indexes)", .0.name())]
    Disabled(IndexKind),
    #[error(
        "the {} index for {} is incomplete: it reached rpc.account_index_max_keys",
        .0.kind.name(), .0.key
    )]
    Incomplete(IndexKey),
}

/// Incomplete keys remembered one by one before a whole kind is declared incomplete.
pub const MAX_INCOMPLETE_KEYS: usize = 4096;
/// Estimated bytes per entry: the key in its forward set, the index key in the account's
/// reverse list, hash table slack.
pub const ENTRY_BYTES: usize = 32 + 33 + 24;
/// Estimated bytes per indexed account (its reverse-list header) and per index key (its set).
pub const ACCOUNT_BYTES: usize = 32 + 24 + 24;
pub const INDEX_KEY_BYTES: usize = 33 + 48 + 24;

const SHARDS: usize = 16;

/// The index keys of one account version: at most one per kind.
pub type Keys = [Option<IndexKey>; 3];

#[derive(Default)]
struct Shard {
    forward: HashMap<IndexKey, HashSet<Pubkey>>,
    reverse: HashMap<Pubkey, Vec<IndexKey>>,
}

#[derive(Default)]
struct Incomplete {
    keys: HashSet<IndexKey>,
    kinds: HashSet<IndexKind>,
}

/// Counts the index publishes (entries, estimated bytes, refusals, incomplete keys).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub entries: usize,
    pub accounts: usize,
    pub index_keys: usize,
    pub bytes: usize,
    pub refused: u64,
    pub incomplete_keys: usize,
}

pub struct AccountIndex {
    enabled: [bool; 3],
    max_keys: usize,
    shards: [RwLock<Shard>; SHARDS],
    entries: AtomicUsize,
    accounts: AtomicUsize,
    index_keys: AtomicUsize,
    refused: std::sync::atomic::AtomicU64,
    any_incomplete: AtomicBool,
    incomplete: RwLock<Incomplete>,
}

fn shard_of(key: &Pubkey) -> usize {
    usize::from(key.as_array()[31]) % SHARDS
}

fn slot(kind: IndexKind) -> usize {
    kind as usize
}

impl AccountIndex {
    pub fn new(config: &IndexConfig) -> Self {
        let mut enabled = [false; 3];
        for k in &config.kinds {
            enabled[slot(*k)] = true;
        }
        Self {
            enabled,
            max_keys: config.max_keys,
            shards: std::array::from_fn(|_| RwLock::new(Shard::default())),
            entries: AtomicUsize::new(0),
            accounts: AtomicUsize::new(0),
            index_keys: AtomicUsize::new(0),
            refused: Default::default(),
            any_incomplete: AtomicBool::new(false),
            incomplete: RwLock::new(Incomplete::default()),
        }
    }

    pub fn is_enabled(&self, kind: IndexKind) -> bool {
        self.enabled[slot(kind)]
    }

    /// The index keys of `a` (none for an account that does not exist: zero lamports).
    pub fn keys_of(&self, a: &AccountSharedData) -> Keys {
        let mut keys = [None; 3];
        if a.lamports() == 0 {
            return keys;
        }
        if self.enabled[0] {
            keys[0] = Some(IndexKey {
                kind: IndexKind::ProgramId,
                key: *a.owner(),
            });
        }
        if (self.enabled[1] || self.enabled[2])
            && let Some(t) = token::token_account(a.owner(), a.data())
        {
            if self.enabled[1] {
                keys[1] = Some(IndexKey {
                    kind: IndexKind::SplTokenOwner,
                    key: t.owner,
                });
            }
            if self.enabled[2] {
                keys[2] = Some(IndexKey {
                    kind: IndexKind::SplTokenMint,
                    key: t.mint,
                });
            }
        }
        keys
    }

    /// A new version of `key` became readable (processed): index it under its keys, keeping
    /// what it was indexed under (older versions may still be read at confirmed).
    pub fn add(&self, key: &Pubkey, a: &AccountSharedData) {
        self.add_keys(key, self.keys_of(a));
    }

    /// [`Self::add`] with the version's keys already computed ([`Self::keys_of`]).
    pub fn add_keys(&self, key: &Pubkey, keys: Keys) {
        if keys.iter().all(Option::is_none) {
            return;
        }
        let shard = &self.shards[shard_of(key)];
        {
            // Usually the version keeps its owner and mint: nothing to do, under a read lock.
            let s = shard.read();
            if let Some(have) = s.reverse.get(key)
                && keys.iter().flatten().all(|k| have.contains(k))
            {
                return;
            }
        }
        let mut s = shard.write();
        for k in keys.into_iter().flatten() {
            self.insert(&mut s, key, k);
        }
    }

    /// A slot that wrote `key` is durable: keep exactly the keys of its `durable` version
    /// and of the version `live` returns (the overlay's, if any). `live` runs under the
    /// account's shard lock, so an overlay write that `live` did not see indexes itself after
    /// this returns.
    pub fn settle(
        &self,
        key: &Pubkey,
        durable: &AccountSharedData,
        live: impl FnOnce() -> Option<Keys>,
    ) {
        let mut s = self.shards[shard_of(key)].write();
        let mut keep: Vec<IndexKey> = self.keys_of(durable).into_iter().flatten().collect();
        if let Some(live) = live() {
            keep.extend(live.into_iter().flatten());
        }
        let have = s.reverse.get(key).cloned().unwrap_or_default();
        for k in have.iter().filter(|k| !keep.contains(k)) {
            self.remove(&mut s, key, k);
        }
        for k in keep {
            if !have.contains(&k) {
                self.insert(&mut s, key, k);
            }
        }
    }

    fn insert(&self, s: &mut Shard, key: &Pubkey, k: IndexKey) {
        if s.reverse.get(key).is_some_and(|v| v.contains(&k)) {
            return;
        }
        if self.entries.load(Ordering::Relaxed) >= self.max_keys {
            self.refused.fetch_add(1, Ordering::Relaxed);
            self.mark_incomplete(k);
            return;
        }
        self.entries.fetch_add(1, Ordering::Relaxed);
        let set = s.forward.entry(k).or_insert_with(|| {
            self.index_keys.fetch_add(1, Ordering::Relaxed);
            HashSet::default()
        });
        set.insert(*key);
        let list = s.reverse.entry(*key).or_insert_with(|| {
            self.accounts.fetch_add(1, Ordering::Relaxed);
            Vec::with_capacity(1)
        });
        list.push(k);
    }

    fn remove(&self, s: &mut Shard, key: &Pubkey, k: &IndexKey) {
        if let Some(set) = s.forward.get_mut(k)
            && set.remove(key)
        {
            self.entries.fetch_sub(1, Ordering::Relaxed);
            if set.is_empty() {
                s.forward.remove(k);
                self.index_keys.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if let Some(list) = s.reverse.get_mut(key) {
            list.retain(|x| x != k);
            if list.is_empty() {
                s.reverse.remove(key);
                self.accounts.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn mark_incomplete(&self, k: IndexKey) {
        self.any_incomplete.store(true, Ordering::Release);
        let mut inc = self.incomplete.write();
        if inc.kinds.contains(&k.kind) {
            return;
        }
        if inc.keys.len() < MAX_INCOMPLETE_KEYS {
            inc.keys.insert(k);
        } else {
            // Too many to remember one by one: the whole kind answers nothing.
            tracing::warn!(
                index = k.kind.name(),
                "account index incomplete for every key"
            );
            inc.kinds.insert(k.kind);
            inc.keys.retain(|x| x.kind != k.kind);
        }
    }

    /// Declare a whole kind incomplete (its start-up build could not read every account).
    pub fn mark_kind_incomplete(&self, kind: IndexKind) {
        self.any_incomplete.store(true, Ordering::Release);
        self.incomplete.write().kinds.insert(kind);
    }

    /// Every account indexed under `k`: a superset of the accounts holding `k` at any
    /// commitment. Unordered.
    pub fn candidates(&self, k: IndexKey) -> Result<Vec<Pubkey>, IndexError> {
        if !self.is_enabled(k.kind) {
            return Err(IndexError::Disabled(k.kind));
        }
        if self.any_incomplete.load(Ordering::Acquire) {
            let inc = self.incomplete.read();
            if inc.kinds.contains(&k.kind) || inc.keys.contains(&k) {
                return Err(IndexError::Incomplete(k));
            }
        }
        let mut out = Vec::new();
        for shard in &self.shards {
            if let Some(set) = shard.read().forward.get(&k) {
                out.extend(set.iter().copied());
            }
        }
        Ok(out)
    }

    pub fn stats(&self) -> IndexStats {
        let entries = self.entries.load(Ordering::Relaxed);
        let accounts = self.accounts.load(Ordering::Relaxed);
        let index_keys = self.index_keys.load(Ordering::Relaxed);
        let inc = self.incomplete.read();
        IndexStats {
            entries,
            accounts,
            index_keys,
            bytes: entries * ENTRY_BYTES + accounts * ACCOUNT_BYTES + index_keys * INDEX_KEY_BYTES,
            refused: self.refused.load(Ordering::Relaxed),
            incomplete_keys: inc.keys.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::token::tests::account_data;
    use super::token::{TOKEN_2022_PROGRAM, TOKEN_PROGRAM};
    use super::*;

    fn owned(program: &Pubkey) -> AccountSharedData {
        AccountSharedData::new(1, 0, program)
    }

    fn token(program: &Pubkey, mint: &Pubkey, owner: &Pubkey, extra: usize) -> AccountSharedData {
        AccountSharedData::from(solana_account::Account {
            lamports: 1,
            data: account_data(mint, owner, 5, extra),
            owner: *program,
            executable: false,
            rent_epoch: 0,
        })
    }

    fn ik(kind: IndexKind, key: Pubkey) -> IndexKey {
        IndexKey { kind, key }
    }

    /// The accounts the index holds under `key` (an enabled, complete index).
    fn found(idx: &AccountIndex, kind: IndexKind, key: Pubkey) -> Vec<Pubkey> {
        idx.candidates(ik(kind, key)).unwrap()
    }

    fn sorted(mut v: Vec<Pubkey>) -> Vec<Pubkey> {
        v.sort();
        v
    }

    fn index() -> AccountIndex {
        AccountIndex::new(&IndexConfig::default())
    }

    #[test]
    fn add_then_owner_change_keeps_both_until_settled() {
        let idx = index();
        let (k, a, b) = (
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
        );
        idx.add(&k, &owned(&a));
        idx.settle(&k, &owned(&a), || None);
        assert_eq!(found(&idx, IndexKind::ProgramId, a), vec![k]);
        // Processed: the owner changes; a confirmed read still sees the old owner.
        idx.add(&k, &owned(&b));
        assert_eq!(found(&idx, IndexKind::ProgramId, a), vec![k]);
        assert_eq!(found(&idx, IndexKind::ProgramId, b), vec![k]);
        // Durable: only the new owner is left.
        idx.settle(&k, &owned(&b), || None);
        assert!(found(&idx, IndexKind::ProgramId, a).is_empty());
        assert_eq!(found(&idx, IndexKind::ProgramId, b), vec![k]);
        assert_eq!(idx.stats().entries, 1);
    }

    #[test]
    fn settle_keeps_the_overlay_version() {
        let idx = index();
        let (k, a, b, c) = (
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
        );
        idx.add(&k, &owned(&a));
        idx.add(&k, &owned(&b));
        idx.add(&k, &owned(&c));
        // Slot that wrote `b` is durable while `c` is in the overlay: `a` can go.
        let live = idx.keys_of(&owned(&c));
        idx.settle(&k, &owned(&b), || Some(live));
        assert!(found(&idx, IndexKind::ProgramId, a).is_empty());
        assert_eq!(found(&idx, IndexKind::ProgramId, b), vec![k]);
        assert_eq!(found(&idx, IndexKind::ProgramId, c), vec![k]);
    }

    #[test]
    fn close_removes_every_key() {
        let idx = index();
        let (k, m, o) = (
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
        );
        idx.add(&k, &token(&TOKEN_PROGRAM, &m, &o, 0));
        assert_eq!(idx.stats().entries, 3);
        let closed = AccountSharedData::new(0, 0, &TOKEN_PROGRAM);
        idx.add(&k, &closed);
        idx.settle(&k, &closed, || None);
        let s = idx.stats();
        assert_eq!((s.entries, s.accounts, s.index_keys), (0, 0, 0));
        assert!(found(&idx, IndexKind::SplTokenOwner, o).is_empty());
    }

    #[test]
    fn token_owner_and_mint_changes() {
        let idx = index();
        let (k, m1, m2, o1, o2) = (
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
        );
        let v1 = token(&TOKEN_PROGRAM, &m1, &o1, 0);
        idx.add(&k, &v1);
        idx.settle(&k, &v1, || None);
        // SetAuthority (owner) and, for the sake of the index, a re-initialized mint.
        let v2 = token(&TOKEN_PROGRAM, &m2, &o2, 0);
        idx.add(&k, &v2);
        for key in [o1, o2] {
            assert_eq!(found(&idx, IndexKind::SplTokenOwner, key), vec![k]);
        }
        idx.settle(&k, &v2, || None);
        assert!(found(&idx, IndexKind::SplTokenOwner, o1).is_empty());
        assert!(found(&idx, IndexKind::SplTokenMint, m1).is_empty());
        assert_eq!(found(&idx, IndexKind::SplTokenMint, m2), vec![k]);
        assert_eq!(found(&idx, IndexKind::ProgramId, TOKEN_PROGRAM), vec![k]);
    }

    #[test]
    fn token_2022_layout_with_extensions() {
        let idx = index();
        let (k, m, o) = (
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
        );
        idx.add(&k, &token(&TOKEN_2022_PROGRAM, &m, &o, 12));
        assert_eq!(found(&idx, IndexKind::SplTokenOwner, o), vec![k]);
        assert_eq!(found(&idx, IndexKind::SplTokenMint, m), vec![k]);
        // A 2022 mint with extensions is not a token account.
        let mut mint = token(&TOKEN_2022_PROGRAM, &m, &o, 12);
        solana_account::WritableAccount::data_as_mut_slice(&mut mint)[token::ACCOUNT_TYPE_OFFSET] =
            1;
        let km = Pubkey::new_unique();
        idx.add(&km, &mint);
        assert_eq!(found(&idx, IndexKind::SplTokenOwner, o), vec![k]);
        assert_eq!(
            sorted(found(&idx, IndexKind::ProgramId, TOKEN_2022_PROGRAM)),
            sorted(vec![k, km])
        );
    }

    #[test]
    fn the_bound_refuses_counts_and_makes_the_key_incomplete() {
        let idx = AccountIndex::new(&IndexConfig {
            kinds: vec![IndexKind::ProgramId],
            max_keys: 3,
        });
        let (p, q) = (Pubkey::new_unique(), Pubkey::new_unique());
        for _ in 0..3 {
            idx.add(&Pubkey::new_unique(), &owned(&p));
        }
        assert_eq!(found(&idx, IndexKind::ProgramId, p).len(), 3);
        idx.add(&Pubkey::new_unique(), &owned(&q));
        let s = idx.stats();
        assert_eq!((s.entries, s.refused, s.incomplete_keys), (3, 1, 1));
        assert_eq!(
            idx.candidates(ik(IndexKind::ProgramId, q)),
            Err(IndexError::Incomplete(ik(IndexKind::ProgramId, q)))
        );
        assert!(
            idx.candidates(ik(IndexKind::ProgramId, p)).is_ok(),
            "others still answer"
        );
        assert_eq!(
            idx.candidates(ik(IndexKind::SplTokenMint, p)),
            Err(IndexError::Disabled(IndexKind::SplTokenMint))
        );
        assert!(s.bytes > 0);
    }

    #[test]
    fn too_many_incomplete_keys_make_the_kind_incomplete() {
        let idx = AccountIndex::new(&IndexConfig {
            kinds: vec![IndexKind::ProgramId],
            max_keys: 0,
        });
        for _ in 0..=MAX_INCOMPLETE_KEYS {
            idx.add(&Pubkey::new_unique(), &owned(&Pubkey::new_unique()));
        }
        assert_eq!(idx.stats().incomplete_keys, 0, "folded into the kind");
        assert!(matches!(
            idx.candidates(ik(IndexKind::ProgramId, Pubkey::new_unique())),
            Err(IndexError::Incomplete(_))
        ));
    }

    #[test]
    fn kind_names_are_agaves() {
        #[derive(Deserialize)]
        struct T {
            k: Vec<IndexKind>,
        }
        let t: T =
            toml::from_str(r#"k = ["program-id", "spl-token-owner", "spl-token-mint"]"#).unwrap();
        assert_eq!(t.k, IndexKind::ALL.to_vec());
        for k in IndexKind::ALL {
            assert_eq!(toml::Value::try_from(k).unwrap().as_str(), Some(k.name()));
        }
    }
}
