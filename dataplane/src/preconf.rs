//! The signed pre-confirmation (wire format): what the appliance promises about one transaction, in bytes a
//! client can check against the appliance's identity key and hold it to.
//!
//! A datagram is a **body** (the promise), then a Merkle proof that the body is a leaf of a
//! batch, then the identity pubkey and its ed25519 signature over the batch's root. Signing one
//! root per batch (up to 64 bodies, whatever is queued) turns a ~20 µs signature per
//! transaction into at most 6 SHA-256 compressions each; an idle appliance signs batches of one
//! (depth 0). This is the idea of Solana's Merkle shreds.
//!
//! The signed message is `SIGNING_DOMAIN ‖ root`. It starts with 0xff, the first byte of
//! Solana's off-chain message format, which no transaction message can start with, so a
//! pre-confirmation signature can never be replayed as a transaction signature (nor the
//! reverse). Leaves are SHA-256(0x00 ‖ body), inner nodes SHA-256(0x01 ‖ left ‖ right), and a
//! batch is padded to a power of two with SHA-256(0x02) leaves, so a proof's direction bits
//! are the leaf index and no body can pose as an inner node.
//!
//! Body layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0 | `KIND` (0xC1; the DPDK verdict replies use 0 and 1 here) |
//! | 1 | `VERSION` |
//! | 2 | stage: 0 rejected, 1 admitted, 2 executed |
//! | 3 | outcome: 0 success, 1 failure with the fee charged, 2 not included |
//! | 4..6 | probability the promise holds, p·65535 rounded |
//! | 6..8 | flags (`FLAG_*`) |
//! | 8..72 | the transaction's first signature |
//! | 72..80 | expected slot |
//! | 80..88 | deadline slot: the promise holds if the outcome happens by this slot |
//! | 88..96 | fee, lamports |
//! | 96..104 | slot open when issued |
//! | 104..112 | issue time, µs since the Unix epoch |
//! | 112..114 | reason code (the runtime's drop reason; 0 if none) |
//! | 114..118 | model generation (outcomes learned from when issued) |
//! | 118 | n, the number of balance changes, ≤ `MAX_DELTAS` |
//! | 119.. | n × (u8 index into the transaction's account keys, i64 lamport change) |
//!
//! Then: u8 depth d ≤ `MAX_DEPTH`, u16 leaf index, d × 32-byte siblings (leaf level first),
//! 32-byte identity pubkey, 64-byte signature. At most `MAX_DATAGRAM` (482) bytes: up to about
//! 2.8 times the smallest transaction that can earn one (~170 bytes), which is why the
//! appliance bounds replies per address and sends few of the unpaid (`rejected`) kind.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

pub const KIND: u8 = 0xC1;
pub const VERSION: u8 = 1;
/// Domain of the signed message: 0xff, then a name and the format's version.
pub const SIGNING_DOMAIN: &[u8] = b"\xffgigacompute-preconf-v1";
pub const MAX_DELTAS: usize = 8;
/// Up to 2^6 = 64 bodies share one signature.
pub const MAX_DEPTH: usize = 6;
pub const MAX_BATCH: usize = 1 << MAX_DEPTH;
const FIXED: usize = 119;
const DELTA: usize = 9;
pub const MAX_BODY: usize = FIXED + MAX_DELTAS * DELTA;
pub const MAX_DATAGRAM: usize = MAX_BODY + 1 + 2 + MAX_DEPTH * 32 + 32 + 64;

/// Flag: the balance changes are given (`deltas`).
pub const FLAG_DELTAS: u16 = 1;
/// Flag: a speculative execution (the RPC's preflight) informed the prediction.
pub const FLAG_SPECULATED: u16 = 1 << 1;
/// Flag: the blockhash expires before or near the expected slot.
pub const FLAG_BLOCKHASH_NEAR_EXPIRY: u16 = 1 << 2;

/// How far along the transaction was when the promise was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Stage {
    /// Refused at admission: the promise is that it will not land.
    Rejected = 0,
    /// Queued for a slot: the promise is the predicted outcome by the deadline.
    Admitted = 1,
    /// Executed in the open slot: the promise is that the slot commits with this result.
    Executed = 2,
}

/// What the promise says will happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Outcome {
    Success = 0,
    /// Included, the program fails, the fee is charged.
    Failure = 1,
    NotIncluded = 2,
}

/// One promise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Body {
    pub stage: Stage,
    pub outcome: Outcome,
    /// Quantised to 1/65535 on the wire.
    pub probability: f64,
    pub flags: u16,
    pub signature: [u8; 64],
    pub expected_slot: u64,
    pub deadline_slot: u64,
    pub fee: u64,
    pub issued_slot: u64,
    pub unix_us: u64,
    pub reason: u16,
    pub generation: u32,
    n_deltas: u8,
    deltas: [(u8, i64); MAX_DELTAS],
}

impl Body {
    pub fn new(stage: Stage, outcome: Outcome, probability: f64, signature: [u8; 64]) -> Self {
        Self {
            stage,
            outcome,
            probability,
            flags: 0,
            signature,
            expected_slot: 0,
            deadline_slot: 0,
            fee: 0,
            issued_slot: 0,
            unix_us: 0,
            reason: 0,
            generation: 0,
            n_deltas: 0,
            deltas: [(0, 0); MAX_DELTAS],
        }
    }

    /// Adds a balance change of the account at `index` in the message's keys; past
    /// `MAX_DELTAS` it is not added (returns false). Sets `FLAG_DELTAS`.
    pub fn push_delta(&mut self, index: u8, lamports: i64) -> bool {
        if self.n_deltas as usize == MAX_DELTAS {
            return false;
        }
        self.deltas[self.n_deltas as usize] = (index, lamports);
        self.n_deltas += 1;
        self.flags |= FLAG_DELTAS;
        true
    }

    pub fn deltas(&self) -> &[(u8, i64)] {
        &self.deltas[..self.n_deltas as usize]
    }

    /// Writes the body into `out`, returning its length.
    pub fn encode(&self, out: &mut [u8; MAX_BODY]) -> usize {
        out[0] = KIND;
        out[1] = VERSION;
        out[2] = self.stage as u8;
        out[3] = self.outcome as u8;
        let p = if self.probability.is_nan() {
            0.0
        } else {
            self.probability.clamp(0.0, 1.0)
        };
        out[4..6].copy_from_slice(&((p * 65535.0).round() as u16).to_le_bytes());
        out[6..8].copy_from_slice(&self.flags.to_le_bytes());
        out[8..72].copy_from_slice(&self.signature);
        for (at, v) in [
            (72, self.expected_slot),
            (80, self.deadline_slot),
            (88, self.fee),
            (96, self.issued_slot),
            (104, self.unix_us),
        ] {
            out[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        out[112..114].copy_from_slice(&self.reason.to_le_bytes());
        out[114..118].copy_from_slice(&self.generation.to_le_bytes());
        out[118] = self.n_deltas;
        let mut at = FIXED;
        for &(index, lamports) in self.deltas() {
            out[at] = index;
            out[at + 1..at + DELTA].copy_from_slice(&lamports.to_le_bytes());
            at += DELTA;
        }
        at
    }

    /// Reads a body from the front of `bytes`, returning it and its length.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), WireError> {
        if bytes.len() < FIXED {
            return Err(WireError::Truncated);
        }
        if bytes[0] != KIND {
            return Err(WireError::NotAPreconfirmation);
        }
        if bytes[1] != VERSION {
            return Err(WireError::Version(bytes[1]));
        }
        let stage = match bytes[2] {
            0 => Stage::Rejected,
            1 => Stage::Admitted,
            2 => Stage::Executed,
            _ => return Err(WireError::Field("stage")),
        };
        let outcome = match bytes[3] {
            0 => Outcome::Success,
            1 => Outcome::Failure,
            2 => Outcome::NotIncluded,
            _ => return Err(WireError::Field("outcome")),
        };
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let n = bytes[118] as usize;
        if n > MAX_DELTAS {
            return Err(WireError::Field("balance changes"));
        }
        let len = FIXED + n * DELTA;
        if bytes.len() < len {
            return Err(WireError::Truncated);
        }
        let mut body = Body::new(
            stage,
            outcome,
            u16::from_le_bytes([bytes[4], bytes[5]]) as f64 / 65535.0,
            bytes[8..72].try_into().unwrap(),
        );
        body.flags = u16::from_le_bytes([bytes[6], bytes[7]]);
        body.expected_slot = u64_at(72);
        body.deadline_slot = u64_at(80);
        body.fee = u64_at(88);
        body.issued_slot = u64_at(96);
        body.unix_us = u64_at(104);
        body.reason = u16::from_le_bytes([bytes[112], bytes[113]]);
        body.generation = u32::from_le_bytes(bytes[114..118].try_into().unwrap());
        body.n_deltas = n as u8;
        for i in 0..n {
            let at = FIXED + i * DELTA;
            body.deltas[i] = (
                bytes[at],
                i64::from_le_bytes(bytes[at + 1..at + DELTA].try_into().unwrap()),
            );
        }
        Ok((body, len))
    }
}

/// Why bytes are not a valid pre-confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated")]
    Truncated,
    #[error("not a pre-confirmation (first byte is not 0xC1)")]
    NotAPreconfirmation,
    #[error("unknown version {0}")]
    Version(u8),
    #[error("invalid {0}")]
    Field(&'static str),
    #[error("bytes after the signature")]
    TrailingBytes,
    #[error("signed by another key than the expected identity")]
    WrongIdentity,
    #[error("the identity is not a valid ed25519 public key")]
    BadKey,
    #[error("the signature does not verify")]
    BadSignature,
}

fn leaf_hash(body: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(body)
        .finalize()
        .into()
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

fn padding_leaf() -> [u8; 32] {
    Sha256::digest([2u8]).into()
}

/// The root a leaf and its proof lead to.
fn root_from(mut hash: [u8; 32], mut index: usize, siblings: &[[u8; 32]]) -> [u8; 32] {
    for sibling in siblings {
        hash = if index & 1 == 0 {
            node_hash(&hash, sibling)
        } else {
            node_hash(sibling, &hash)
        };
        index >>= 1;
    }
    hash
}

/// Signs pre-confirmations in batches with the appliance's identity key.
pub struct BatchSigner {
    key: SigningKey,
    identity: [u8; 32],
    /// The tree's levels, leaves first, reused between batches.
    levels: [[[u8; 32]; MAX_BATCH]; MAX_DEPTH + 1],
}

impl BatchSigner {
    /// `secret` is the 32-byte ed25519 seed (the first half of a Solana keypair file).
    pub fn new(secret: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(secret);
        let identity = key.verifying_key().to_bytes();
        Self {
            key,
            identity,
            levels: [[[0; 32]; MAX_BATCH]; MAX_DEPTH + 1],
        }
    }

    pub fn identity(&self) -> [u8; 32] {
        self.identity
    }

    /// Signs `bodies` (at most `MAX_BATCH`; the caller splits larger ones) under one root, and
    /// hands each body's datagram to `emit` with its index. Returns the root.
    pub fn sign(&mut self, bodies: &[&Body], mut emit: impl FnMut(usize, &[u8])) -> [u8; 32] {
        assert!(
            !bodies.is_empty() && bodies.len() <= MAX_BATCH,
            "batch of {}",
            bodies.len()
        );
        let depth = bodies.len().next_power_of_two().trailing_zeros() as usize;
        let width = 1usize << depth;
        let mut encoded = [[0u8; MAX_BODY]; MAX_BATCH];
        let mut lens = [0usize; MAX_BATCH];
        for (i, body) in bodies.iter().enumerate() {
            lens[i] = body.encode(&mut encoded[i]);
            self.levels[0][i] = leaf_hash(&encoded[i][..lens[i]]);
        }
        let pad = padding_leaf();
        for leaf in &mut self.levels[0][bodies.len()..width] {
            *leaf = pad;
        }
        for level in 1..=depth {
            for i in 0..width >> level {
                let (l, r) = (
                    self.levels[level - 1][2 * i],
                    self.levels[level - 1][2 * i + 1],
                );
                self.levels[level][i] = node_hash(&l, &r);
            }
        }
        let root = self.levels[depth][0];
        let mut message = [0u8; SIGNING_DOMAIN.len() + 32];
        message[..SIGNING_DOMAIN.len()].copy_from_slice(SIGNING_DOMAIN);
        message[SIGNING_DOMAIN.len()..].copy_from_slice(&root);
        let signature = self.key.sign(&message).to_bytes();
        let mut datagram = [0u8; MAX_DATAGRAM];
        for i in 0..bodies.len() {
            let mut at = lens[i];
            datagram[..at].copy_from_slice(&encoded[i][..at]);
            datagram[at] = depth as u8;
            datagram[at + 1..at + 3].copy_from_slice(&(i as u16).to_le_bytes());
            at += 3;
            for level in 0..depth {
                datagram[at..at + 32].copy_from_slice(&self.levels[level][(i >> level) ^ 1]);
                at += 32;
            }
            datagram[at..at + 32].copy_from_slice(&self.identity);
            datagram[at + 32..at + 96].copy_from_slice(&signature);
            emit(i, &datagram[..at + 96]);
        }
        root
    }
}

/// A verified pre-confirmation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verified {
    pub body: Body,
    pub identity: [u8; 32],
    pub root: [u8; 32],
}

/// Checks a datagram: its layout, the proof, and the signature by `expected_identity` (when
/// given; else by the key it names, which the caller must then compare itself).
pub fn verify(bytes: &[u8], expected_identity: Option<&[u8; 32]>) -> Result<Verified, WireError> {
    let (body, body_len) = Body::decode(bytes)?;
    let rest = &bytes[body_len..];
    if rest.len() < 3 {
        return Err(WireError::Truncated);
    }
    let depth = rest[0] as usize;
    let index = u16::from_le_bytes([rest[1], rest[2]]) as usize;
    if depth > MAX_DEPTH {
        return Err(WireError::Field("proof depth"));
    }
    if index >= 1 << depth {
        return Err(WireError::Field("leaf index"));
    }
    let need = 3 + depth * 32 + 32 + 64;
    if rest.len() < need {
        return Err(WireError::Truncated);
    }
    if rest.len() > need {
        return Err(WireError::TrailingBytes);
    }
    let mut siblings = [[0u8; 32]; MAX_DEPTH];
    for (level, sibling) in siblings.iter_mut().enumerate().take(depth) {
        sibling.copy_from_slice(&rest[3 + level * 32..3 + (level + 1) * 32]);
    }
    let at = 3 + depth * 32;
    let identity: [u8; 32] = rest[at..at + 32].try_into().unwrap();
    if expected_identity.is_some_and(|expected| *expected != identity) {
        return Err(WireError::WrongIdentity);
    }
    let signature = Signature::from_bytes(rest[at + 32..at + 96].try_into().unwrap());
    let key = VerifyingKey::from_bytes(&identity).map_err(|_| WireError::BadKey)?;
    let root = root_from(leaf_hash(&bytes[..body_len]), index, &siblings[..depth]);
    let mut message = [0u8; SIGNING_DOMAIN.len() + 32];
    message[..SIGNING_DOMAIN.len()].copy_from_slice(SIGNING_DOMAIN);
    message[SIGNING_DOMAIN.len()..].copy_from_slice(&root);
    key.verify_strict(&message, &signature)
        .map_err(|_| WireError::BadSignature)?;
    Ok(Verified {
        body,
        identity,
        root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(i: u8) -> Body {
        let mut b = Body::new(
            [Stage::Rejected, Stage::Admitted, Stage::Executed][i as usize % 3],
            [Outcome::Success, Outcome::Failure, Outcome::NotIncluded][i as usize % 3],
            i as f64 / 255.0,
            [i; 64],
        );
        b.expected_slot = 1000 + i as u64;
        b.deadline_slot = 1002 + i as u64;
        b.fee = 5000 * i as u64;
        b.issued_slot = 999;
        b.unix_us = 1_765_000_000_000_000 + i as u64;
        b.reason = i as u16;
        b.generation = 77;
        for d in 0..(i as usize % (MAX_DELTAS + 1)) {
            assert!(b.push_delta(d as u8, -(d as i64) * 1_000_000 + i as i64));
        }
        b
    }

    fn signer() -> BatchSigner {
        BatchSigner::new(&[42; 32])
    }

    fn signed(signer: &mut BatchSigner, bodies: &[Body]) -> Vec<Vec<u8>> {
        let refs: Vec<&Body> = bodies.iter().collect();
        let mut out = vec![Vec::new(); bodies.len()];
        signer.sign(&refs, |i, bytes| out[i] = bytes.to_vec());
        out
    }

    #[test]
    fn a_body_survives_encoding_with_its_probability_quantised() {
        for i in 0..=255u8 {
            let b = body(i);
            let mut out = [0; MAX_BODY];
            let n = b.encode(&mut out);
            assert_eq!(n, FIXED + b.deltas().len() * DELTA);
            let (back, len) = Body::decode(&out[..n]).unwrap();
            assert_eq!(len, n);
            assert!((back.probability - b.probability).abs() <= 0.5 / 65535.0);
            assert_eq!(
                Body {
                    probability: b.probability,
                    ..back
                },
                b
            );
        }
        let mut b = body(8);
        assert!(!b.push_delta(9, 1), "a ninth balance change is refused");
    }

    #[test]
    fn every_member_of_every_batch_size_verifies_with_the_identity() {
        let mut s = signer();
        let identity = s.identity();
        for n in 1..=MAX_BATCH {
            let bodies: Vec<Body> = (0..n as u8).map(body).collect();
            for (i, datagram) in signed(&mut s, &bodies).iter().enumerate() {
                assert!(datagram.len() <= MAX_DATAGRAM);
                let v =
                    verify(datagram, Some(&identity)).unwrap_or_else(|e| panic!("{n}/{i}: {e}"));
                assert_eq!(v.body.signature, bodies[i].signature);
                assert_eq!(v.identity, identity);
            }
        }
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let mut s = signer();
        let bodies: Vec<Body> = (0..5).map(body).collect();
        let datagram = signed(&mut s, &bodies)[3].clone();
        for at in 0..datagram.len() {
            for flip in [1u8, 0x80] {
                let mut bad = datagram.clone();
                bad[at] ^= flip;
                assert!(
                    verify(&bad, None).is_err(),
                    "a flip of {flip:#x} at byte {at} verified"
                );
            }
        }
        assert_eq!(
            verify(&datagram[..datagram.len() - 1], None),
            Err(WireError::Truncated)
        );
        let mut long = datagram.clone();
        long.push(0);
        assert_eq!(verify(&long, None), Err(WireError::TrailingBytes));
        assert_eq!(
            verify(&datagram, Some(&[7; 32])),
            Err(WireError::WrongIdentity)
        );
        for cut in 0..datagram.len() {
            assert!(verify(&datagram[..cut], None).is_err());
        }
    }

    #[test]
    fn a_proof_cannot_be_moved_to_another_leaf_of_its_batch() {
        let mut s = signer();
        let bodies: Vec<Body> = (0..4).map(body).collect();
        let d = signed(&mut s, &bodies);
        // Swap the proof of leaf 1 onto the body of leaf 2.
        let (b2, n2) = Body::decode(&d[2]).unwrap();
        let (_, n1) = Body::decode(&d[1]).unwrap();
        let mut forged = d[2][..n2].to_vec();
        forged.extend_from_slice(&d[1][n1..]);
        assert_eq!(verify(&forged, None), Err(WireError::BadSignature));
        assert_eq!(b2.signature, [2; 64]);
    }

    #[test]
    fn the_signed_message_is_never_a_transaction_message() {
        // A legacy message starts with its signer count, a v0 message with 0x80 | version:
        // neither is 0xff, so a signature over the domain cannot sign a transaction.
        assert_eq!(SIGNING_DOMAIN[0], 0xff);
    }

    #[test]
    fn the_signature_is_over_the_domain_and_root() {
        let mut s = signer();
        let datagram = signed(&mut s, &[body(1)]).remove(0);
        let v = verify(&datagram, None).unwrap();
        let key = VerifyingKey::from_bytes(&v.identity).unwrap();
        let sig = Signature::from_bytes(datagram[datagram.len() - 64..].try_into().unwrap());
        let mut message = SIGNING_DOMAIN.to_vec();
        message.extend_from_slice(&v.root);
        key.verify_strict(&message, &sig).unwrap();
        // A batch of one has no siblings: the root is the leaf.
        let (_, n) = Body::decode(&datagram).unwrap();
        assert_eq!(v.root, leaf_hash(&datagram[..n]));
    }

    /// Datagrams built by an independent implementation (Python: hashlib and solders, from
    /// the layout above; the fuzz target's seeds) verify here, signed by the key of seed 7s.
    #[test]
    fn datagrams_from_another_implementation_verify() {
        let identity = BatchSigner::new(&[7; 32]).identity();
        for (bytes, depth) in [
            (&include_bytes!("../../fuzz/corpus/preconf/seed-00")[..], 0),
            (&include_bytes!("../../fuzz/corpus/preconf/seed-01")[..], 2),
        ] {
            let v = verify(bytes, Some(&identity)).expect("verifies");
            assert_eq!(v.body.stage, Stage::Admitted);
            assert_eq!(v.body.deltas(), &[(0, -1_005_000), (1, 1_000_000)]);
            assert_eq!(bytes[v.body.deltas().len() * DELTA + FIXED], depth);
        }
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for len in 0..600 {
            let mut bytes = vec![0u8; len];
            for b in &mut bytes {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            if len > 2 {
                bytes[0] = KIND;
                bytes[1] = VERSION;
            }
            assert!(verify(&bytes, None).is_err());
        }
    }
}
