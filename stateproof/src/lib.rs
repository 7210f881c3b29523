//! Verifies GigaCompute state proofs against a slot's state root: inclusion of an account's
//! state, or non-existence of a key. `no_std`, allocation-free, depends only on `sha2`.
//! README.md gives the hashes; the appliance computes its roots with these same functions.

#![no_std]

#[cfg(test)]
extern crate std;

use core::fmt;
use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];
pub type Key = [u8; 32];

/// Deepest tree a proof may claim: positions are `u32`.
pub const MAX_DEPTH: usize = 32;
const ENCODING_VERSION: u8 = 1;
const TAG_LEAF: u8 = 0x00;
const TAG_SENTINEL: u8 = 0x02;
const TAG_ACCOUNT: u8 = 0x03;

/// An account's state as committed (what RPC returns as the account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState<'a> {
    pub lamports: u64,
    pub rent_epoch: u64,
    pub owner: Key,
    pub executable: bool,
    pub data: &'a [u8],
}

/// A leaf of the tree: the sentinel at position 0 or an account's leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Sentinel {
        next: Option<Key>,
    },
    Account {
        key: Key,
        account_hash: Hash,
        next: Option<Key>,
    },
}

impl Leaf {
    pub fn next(&self) -> Option<Key> {
        match self {
            Leaf::Sentinel { next } | Leaf::Account { next, .. } => *next,
        }
    }
}

/// A path from one leaf to the root. `siblings[l]` is the sibling at height `l`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof<'a> {
    pub leaf_index: u32,
    pub leaf: Leaf,
    pub siblings: &'a [Hash],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    /// More siblings than a tree of `u32` positions can have.
    TooDeep(usize),
    /// The leaf index does not fit a tree of the proof's depth.
    IndexOutOfRange { index: u32, depth: usize },
    /// The sentinel leaf is only ever at position 0 and account leaves never are.
    SentinelMisplaced,
    /// An account was given but the proof's leaf is for another key (or the sentinel).
    KeyMismatch,
    /// The account does not hash to the leaf's account hash.
    AccountHashMismatch,
    /// An absence proof whose leaf holds the key itself: the account exists.
    KeyPresent,
    /// An absence proof whose leaf and its next key do not bracket the key.
    NotAdjacent,
    /// The path does not hash to the root.
    RootMismatch,
    /// The binary encoding is malformed.
    Malformed(&'static str),
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofError::TooDeep(d) => write!(f, "proof has {d} siblings; at most {MAX_DEPTH}"),
            ProofError::IndexOutOfRange { index, depth } => {
                write!(f, "leaf index {index} does not fit a tree of depth {depth}")
            }
            ProofError::SentinelMisplaced => {
                write!(f, "the sentinel leaf must be (and only be) at position 0")
            }
            ProofError::KeyMismatch => write!(f, "the proof's leaf is for another key"),
            ProofError::AccountHashMismatch => {
                write!(f, "the account does not match the leaf's account hash")
            }
            ProofError::KeyPresent => {
                write!(
                    f,
                    "absence claimed but the leaf holds the key: the account exists"
                )
            }
            ProofError::NotAdjacent => write!(
                f,
                "absence claimed but the leaf and its next key do not bracket the key"
            ),
            ProofError::RootMismatch => write!(f, "the path does not hash to the state root"),
            ProofError::Malformed(why) => write!(f, "malformed proof: {why}"),
        }
    }
}

pub fn account_hash(a: &AccountState<'_>) -> Hash {
    let mut h = Sha256::new();
    h.update([TAG_ACCOUNT]);
    h.update(a.lamports.to_le_bytes());
    h.update(a.rent_epoch.to_le_bytes());
    h.update(a.owner);
    h.update([u8::from(a.executable)]);
    h.update(a.data);
    h.finalize().into()
}

fn update_next(h: &mut Sha256, next: &Option<Key>) {
    match next {
        Some(k) => {
            h.update([1]);
            h.update(k);
        }
        None => {
            h.update([0]);
            h.update([0u8; 32]);
        }
    }
}

pub fn leaf_hash(leaf: &Leaf) -> Hash {
    let mut h = Sha256::new();
    match leaf {
        Leaf::Sentinel { next } => {
            h.update([TAG_SENTINEL]);
            update_next(&mut h, next);
        }
        Leaf::Account {
            key,
            account_hash,
            next,
        } => {
            h.update([TAG_LEAF]);
            h.update(key);
            h.update(account_hash);
            update_next(&mut h, next);
        }
    }
    h.finalize().into()
}

/// SHA-256's state after compressing the 64-byte block "GigaCompute state tree node v1"
/// (zero padded): the node hash's initial value (a test derives it).
const NODE_IV: [u32; 8] = [
    0x7a57a738, 0x3572c078, 0x5a731bd4, 0x40c7109f, 0xb8c963af, 0x2d089ed7, 0x8289169b, 0x5b4450ab,
];

/// An interior node: one SHA-256 compression of `left | right` from `NODE_IV`. Nodes are
/// fixed-size, so the length padding (a second compression) adds nothing; the IV separates
/// nodes from every leaf and from plain SHA-256 outputs. Collision resistance is that of the
/// compression function, which SHA-256's own rests on.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(left);
    block[32..].copy_from_slice(right);
    let mut state = NODE_IV;
    sha2::compress256(&mut state, &[block.into()]);
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// The root the path from `leaf` at `index` through `siblings` leads to. Any number of
/// siblings: above level 31 a `u32` index has no bits, so the path goes on as a left child
/// ([`verify`] refuses more than [`MAX_DEPTH`] anyway).
pub fn root_from_path(leaf: &Hash, index: u32, siblings: &[Hash]) -> Hash {
    let mut h = *leaf;
    for (level, sib) in siblings.iter().enumerate() {
        let right = u32::try_from(level)
            .ok()
            .and_then(|l| index.checked_shr(l))
            .is_some_and(|bits| bits & 1 == 1);
        h = if right {
            node_hash(sib, &h)
        } else {
            node_hash(&h, sib)
        };
    }
    h
}

/// Checks `proof` against `root` for `key`: with `Some(account)`, that the key holds exactly
/// that account state; with `None`, that the key does not exist.
pub fn verify(
    root: &Hash,
    key: &Key,
    account: Option<&AccountState<'_>>,
    proof: &Proof<'_>,
) -> Result<(), ProofError> {
    let depth = proof.siblings.len();
    if depth > MAX_DEPTH {
        return Err(ProofError::TooDeep(depth));
    }
    if depth < MAX_DEPTH && u64::from(proof.leaf_index) >> depth != 0 {
        return Err(ProofError::IndexOutOfRange {
            index: proof.leaf_index,
            depth,
        });
    }
    let is_sentinel = matches!(proof.leaf, Leaf::Sentinel { .. });
    if is_sentinel != (proof.leaf_index == 0) {
        return Err(ProofError::SentinelMisplaced);
    }
    match (account, &proof.leaf) {
        (
            Some(a),
            Leaf::Account {
                key: k,
                account_hash: h,
                ..
            },
        ) => {
            if k != key {
                return Err(ProofError::KeyMismatch);
            }
            if account_hash(a) != *h {
                return Err(ProofError::AccountHashMismatch);
            }
        }
        (Some(_), Leaf::Sentinel { .. }) => return Err(ProofError::KeyMismatch),
        (None, leaf) => {
            if let Leaf::Account { key: low, .. } = leaf {
                if low == key {
                    return Err(ProofError::KeyPresent);
                }
                if low > key {
                    return Err(ProofError::NotAdjacent);
                }
            }
            if leaf.next().is_some_and(|next| next <= *key) {
                return Err(ProofError::NotAdjacent);
            }
        }
    }
    let computed = root_from_path(&leaf_hash(&proof.leaf), proof.leaf_index, proof.siblings);
    if computed != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

impl<'a> Proof<'a> {
    /// Bytes of the binary encoding.
    pub fn encoded_len(&self) -> usize {
        let leaf = match self.leaf {
            Leaf::Sentinel { .. } => 0,
            Leaf::Account { .. } => 64,
        };
        let next = if self.leaf.next().is_some() { 32 } else { 0 };
        1 + 1 + 4 + 1 + leaf + 1 + next + 32 * self.siblings.len()
    }

    /// Writes the binary encoding into `out` (at least `encoded_len` bytes); returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, ProofError> {
        let n = self.encoded_len();
        if out.len() < n {
            return Err(ProofError::Malformed("output buffer too small"));
        }
        if self.siblings.len() > MAX_DEPTH {
            return Err(ProofError::TooDeep(self.siblings.len()));
        }
        let mut w = Writer { out, at: 0 };
        w.put(&[ENCODING_VERSION]);
        match &self.leaf {
            Leaf::Sentinel { .. } => w.put(&[0]),
            Leaf::Account { .. } => w.put(&[1]),
        }
        w.put(&self.leaf_index.to_le_bytes());
        w.put(&[self.siblings.len() as u8]);
        if let Leaf::Account {
            key, account_hash, ..
        } = &self.leaf
        {
            w.put(key);
            w.put(account_hash);
        }
        match self.leaf.next() {
            Some(k) => {
                w.put(&[1]);
                w.put(&k);
            }
            None => w.put(&[0]),
        }
        for s in self.siblings {
            w.put(s);
        }
        Ok(w.at)
    }

    /// Parses the binary encoding; the siblings borrow from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, ProofError> {
        let mut r = Reader { b: bytes };
        if r.take::<1>()?[0] != ENCODING_VERSION {
            return Err(ProofError::Malformed("unknown encoding version"));
        }
        let kind = r.take::<1>()?[0];
        let leaf_index = u32::from_le_bytes(r.take::<4>()?);
        let depth = r.take::<1>()?[0] as usize;
        if depth > MAX_DEPTH {
            return Err(ProofError::TooDeep(depth));
        }
        let account = match kind {
            0 => None,
            1 => Some((r.take::<32>()?, r.take::<32>()?)),
            _ => return Err(ProofError::Malformed("unknown leaf kind")),
        };
        let next = match r.take::<1>()?[0] {
            0 => None,
            1 => Some(r.take::<32>()?),
            _ => return Err(ProofError::Malformed("bad next-key flag")),
        };
        let (siblings, rest) = r.b.as_chunks::<32>();
        if siblings.len() != depth || !rest.is_empty() {
            return Err(ProofError::Malformed(
                "sibling bytes do not match the depth",
            ));
        }
        let leaf = match account {
            None => Leaf::Sentinel { next },
            Some((key, account_hash)) => Leaf::Account {
                key,
                account_hash,
                next,
            },
        };
        Ok(Proof {
            leaf_index,
            leaf,
            siblings,
        })
    }
}

struct Writer<'o> {
    out: &'o mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        self.out[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }
}

struct Reader<'b> {
    b: &'b [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], ProofError> {
        if self.b.len() < N {
            return Err(ProofError::Malformed("truncated"));
        }
        let (head, tail) = self.b.split_at(N);
        self.b = tail;
        Ok(head.try_into().expect("N bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn key(b: u8) -> Key {
        [b; 32]
    }

    /// A four-position tree: sentinel, keys 0x10 and 0x30, one empty position.
    fn tree() -> (Hash, [Hash; 4], AccountState<'static>) {
        let a = AccountState {
            lamports: 5,
            rent_epoch: u64::MAX,
            owner: key(9),
            executable: false,
            data: b"hello",
        };
        let leaves = [
            leaf_hash(&Leaf::Sentinel {
                next: Some(key(0x10)),
            }),
            leaf_hash(&Leaf::Account {
                key: key(0x10),
                account_hash: account_hash(&a),
                next: Some(key(0x30)),
            }),
            leaf_hash(&Leaf::Account {
                key: key(0x30),
                account_hash: account_hash(&a),
                next: None,
            }),
            [0; 32],
        ];
        let root = node_hash(
            &node_hash(&leaves[0], &leaves[1]),
            &node_hash(&leaves[2], &leaves[3]),
        );
        (root, leaves, a)
    }

    #[test]
    fn node_iv_is_the_tag_blocks_midstate() {
        let mut tag = [0u8; 64];
        tag[..30].copy_from_slice(b"GigaCompute state tree node v1");
        let mut state = [
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
            0x5be0cd19,
        ];
        sha2::compress256(&mut state, &[tag.into()]);
        assert_eq!(state, NODE_IV);
        // Equivalently: the first eight words of SHA-256 over tag | left | right before its
        // final padding block; differs from plain SHA-256 of those 128 bytes.
        let full: Hash = Sha256::new()
            .chain_update(tag)
            .chain_update([1u8; 32])
            .chain_update([2u8; 32])
            .finalize()
            .into();
        assert_ne!(node_hash(&[1; 32], &[2; 32]), full);
        assert_ne!(node_hash(&[1; 32], &[2; 32]), node_hash(&[2; 32], &[1; 32]));
    }

    #[test]
    fn inclusion_and_absence_verify_and_round_trip() {
        let (root, l, a) = tree();
        let sib = [l[0], node_hash(&l[2], &l[3])];
        let proof = Proof {
            leaf_index: 1,
            leaf: Leaf::Account {
                key: key(0x10),
                account_hash: account_hash(&a),
                next: Some(key(0x30)),
            },
            siblings: &sib,
        };
        assert_eq!(verify(&root, &key(0x10), Some(&a), &proof), Ok(()));
        // 0x20 lies between 0x10 and 0x30.
        assert_eq!(verify(&root, &key(0x20), None, &proof), Ok(()));
        assert_eq!(
            verify(&root, &key(0x40), None, &proof),
            Err(ProofError::NotAdjacent)
        );
        assert_eq!(
            verify(&root, &key(0x10), None, &proof),
            Err(ProofError::KeyPresent)
        );
        let mut buf = [0u8; 256];
        let n = proof.encode(&mut buf).unwrap();
        assert_eq!(n, proof.encoded_len());
        assert_eq!(Proof::decode(&buf[..n]).unwrap(), proof);
        assert!(Proof::decode(&buf[..n - 1]).is_err());

        // Below the smallest key: the sentinel.
        let sib0 = [l[1], node_hash(&l[2], &l[3])];
        let sentinel = Proof {
            leaf_index: 0,
            leaf: Leaf::Sentinel {
                next: Some(key(0x10)),
            },
            siblings: &sib0,
        };
        assert_eq!(verify(&root, &key(0x01), None, &sentinel), Ok(()));
        assert_eq!(
            verify(&root, &key(0x11), None, &sentinel),
            Err(ProofError::NotAdjacent)
        );
    }

    /// Found by fuzzing (fuzz target `proof_json`): more than 32 siblings shifted the `u32`
    /// index by 32 or more, a panic with overflow checks (and, without them, a shift by the
    /// level modulo 32: a wrong hash).
    #[test]
    fn a_path_longer_than_the_index_is_wide_goes_on_as_a_left_child() {
        let leaf = key(1);
        let sib = [key(2); 34];
        let at32 = root_from_path(&leaf, u32::MAX, &sib[..32]);
        let at33 = node_hash(&at32, &sib[32]);
        assert_eq!(root_from_path(&leaf, u32::MAX, &sib[..33]), at33);
        assert_eq!(
            root_from_path(&leaf, u32::MAX, &sib),
            node_hash(&at33, &sib[33])
        );
        let p = Proof {
            leaf_index: u32::MAX,
            leaf: Leaf::Sentinel { next: None },
            siblings: &sib[..33],
        };
        assert_eq!(
            verify(&at33, &key(0), None, &p),
            Err(ProofError::TooDeep(33))
        );
    }

    #[test]
    fn tampering_is_rejected_with_its_reason() {
        let (root, l, a) = tree();
        let sib = [l[3], node_hash(&l[0], &l[1])];
        let leaf = Leaf::Account {
            key: key(0x30),
            account_hash: account_hash(&a),
            next: None,
        };
        let proof = Proof {
            leaf_index: 2,
            leaf,
            siblings: &sib,
        };
        assert_eq!(verify(&root, &key(0x30), Some(&a), &proof), Ok(()));
        let richer = AccountState { lamports: 6, ..a };
        assert_eq!(
            verify(&root, &key(0x30), Some(&richer), &proof),
            Err(ProofError::AccountHashMismatch)
        );
        assert_eq!(
            verify(&root, &key(0x31), Some(&a), &proof),
            Err(ProofError::KeyMismatch)
        );
        let mut bad_root = root;
        bad_root[0] ^= 1;
        assert_eq!(
            verify(&bad_root, &key(0x30), Some(&a), &proof),
            Err(ProofError::RootMismatch)
        );
        let mut bad_sib = sib;
        bad_sib[1][31] ^= 0x80;
        let p = Proof {
            siblings: &bad_sib,
            ..proof
        };
        assert_eq!(
            verify(&root, &key(0x30), Some(&a), &p),
            Err(ProofError::RootMismatch)
        );
        let p = Proof {
            leaf_index: 3,
            ..proof
        };
        assert_eq!(
            verify(&root, &key(0x30), Some(&a), &p),
            Err(ProofError::RootMismatch)
        );
        let p = Proof {
            leaf_index: 4,
            ..proof
        };
        assert!(matches!(
            verify(&root, &key(0x30), Some(&a), &p),
            Err(ProofError::IndexOutOfRange { .. })
        ));
        // Claiming a later next key to hide 0x40 fails at the root.
        let p = Proof {
            leaf: Leaf::Account {
                key: key(0x30),
                account_hash: account_hash(&a),
                next: Some(key(0x50)),
            },
            ..proof
        };
        assert_eq!(
            verify(&root, &key(0x40), None, &p),
            Err(ProofError::RootMismatch)
        );
        let deep: Vec<Hash> = std::vec![[0; 32]; 33];
        let p = Proof {
            siblings: &deep,
            ..proof
        };
        assert_eq!(
            verify(&root, &key(0x30), Some(&a), &p),
            Err(ProofError::TooDeep(33))
        );
    }
}
