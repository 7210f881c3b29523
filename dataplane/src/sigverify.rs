//! Exact strict ed25519 verification: accepts precisely what ed25519-dalek 2.2's
//! `VerifyingKey::verify_strict` accepts (what Agave runs), one signature at a time.
//!
//! `verify_strict(A, M, (R, s))` accepts iff
//! 1. `s` is canonical (`s < ℓ`);
//! 2. the bytes of `A` decompress (a non-canonical `y` is accepted by decompression) and the
//!    point is not of small order;
//! 3. the bytes of `R` decompress and the point is not of small order;
//! 4. `compress([s]B − [k]A) == R` byte for byte, with `k = SHA-512(R ‖ A ‖ M) mod ℓ` over the
//!    bytes of `R` and `A` as given.
//!
//! This module computes the same predicate with less work:
//! - `A` is decompressed and checked for small order once per key, in a bounded per-verifier
//!   cache ([`KEY_CACHE_SLOTS`] entries, direct-mapped, randomly seeded index): fee payers
//!   repeat, and an attacker sending endless fresh keys only costs the decompression
//!   `verify_strict` does anyway (the cache never grows).
//! - `R` is never decompressed. `compress` always yields a canonical encoding that decompresses
//!   to the point it came from, so if (4) holds, (3)'s decompression succeeds and yields
//!   `R' = [s]B − [k]A`; `R` is of small order iff its bytes are one of the eight canonical
//!   encodings of the small-order points. A non-canonical `R` can never equal a `compress`
//!   output, so it fails (4) exactly as it fails `verify_strict`.
//!
//! Why no batch equation: a random-linear-combination batch check (`verify_batch`) is not
//! cofactor-exact. A signature whose `R` or `A` carries a small-order component passes the
//! batch whenever its random multiplier annihilates that component (half the time for order 2),
//! while `verify_strict` compares `R` exactly and rejects it; several such signatures in one
//! batch can also cancel each other's torsion. A batch is exact only when every `A` and `R` is
//! proven torsion-free, and proving that for `R` costs a full scalar multiplication (`[ℓ]R`)
//! per signature: measured in `bench sigverify` (`batch_plus_r_torsion_check_*`), that is
//! slower than this per-signature path, so the product path does not batch at all. One bad
//! signature costs exactly one verification, whatever batch it arrives in.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};

/// One signature to check: the signer's key, the signature and the signed message.
pub struct SigCheck<'a> {
    pub pubkey: &'a [u8; 32],
    pub signature: &'a [u8; 64],
    pub message: &'a [u8],
}

/// Entries in each verifier's key cache (about 200 bytes each: ~800 KiB per verify tile).
pub const KEY_CACHE_SLOTS: usize = 4096;

/// The canonical encodings of the eight small-order points (`compress` of `EIGHT_TORSION`).
fn small_order_encodings() -> &'static [[u8; 32]; 8] {
    static SET: std::sync::OnceLock<[[u8; 32]; 8]> = std::sync::OnceLock::new();
    SET.get_or_init(|| curve25519_dalek::constants::EIGHT_TORSION.map(|p| p.compress().0))
}

/// Every signature of a parsed transaction, each checked alone ([`verify_one_strict`]): for
/// the few paths that check outside the verify tiles (the RPC before preflight, a
/// cross-partition transaction before it may make partitions move).
pub fn all_signatures_valid(desc: &crate::parse::TxDescriptor, buf: &[u8]) -> bool {
    let message = desc.message(buf);
    desc.signatures(buf).enumerate().all(|(i, signature)| {
        verify_one_strict(&SigCheck {
            pubkey: desc.static_key(buf, i),
            signature,
            message,
        })
    })
}

/// The reference: one signature, ed25519-dalek's `verify_strict`.
pub fn verify_one_strict(check: &SigCheck<'_>) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(check.pubkey) else {
        return false;
    };
    key.verify_strict(check.message, &Signature::from_bytes(check.signature))
        .is_ok()
}

/// `−A` for a key that passes `verify_strict`'s key checks, `None` for one that fails them.
fn decode_key(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    let a = CompressedEdwardsY(*bytes).decompress()?;
    if a.is_small_order() {
        return None;
    }
    Some(-a)
}

#[derive(Clone)]
struct KeySlot {
    key: [u8; 32],
    filled: bool,
    /// `−A`, or `None` when the key fails to decompress or is of small order.
    neg_a: Option<EdwardsPoint>,
}

/// Bounded cache of decoded keys. Direct-mapped: a miss overwrites its slot, so memory is
/// fixed and a flood of fresh keys evicts but never grows anything.
struct KeyCache {
    slots: Box<[KeySlot]>,
    seed: ahash::RandomState,
    hits: u64,
    misses: u64,
}

impl KeyCache {
    fn new(slots: usize) -> Self {
        let empty = KeySlot {
            key: [0; 32],
            filled: false,
            neg_a: None,
        };
        Self {
            slots: vec![empty; slots.max(1)].into_boxed_slice(),
            seed: ahash::RandomState::new(),
            hits: 0,
            misses: 0,
        }
    }

    fn get(&mut self, key: &[u8; 32]) -> Option<EdwardsPoint> {
        let i = (self.seed.hash_one(key) as usize) % self.slots.len();
        let slot = &mut self.slots[i];
        if slot.filled && slot.key == *key {
            self.hits += 1;
            return slot.neg_a;
        }
        self.misses += 1;
        slot.key = *key;
        slot.filled = true;
        slot.neg_a = decode_key(key);
        slot.neg_a
    }
}

/// The verify tiles' verifier: exact `verify_strict` semantics, per signature, with a bounded
/// cache of decoded keys. Reusable; no allocation per call after construction.
pub struct StrictVerifier {
    keys: KeyCache,
}

impl Default for StrictVerifier {
    fn default() -> Self {
        Self::with_cache_slots(KEY_CACHE_SLOTS)
    }
}

impl StrictVerifier {
    /// A verifier whose key cache holds `slots` keys (at least one).
    pub fn with_cache_slots(slots: usize) -> Self {
        Self {
            keys: KeyCache::new(slots),
        }
    }

    /// Key-cache hits and misses so far.
    pub fn cache_stats(&self) -> (u64, u64) {
        (self.keys.hits, self.keys.misses)
    }

    /// Exactly `verify_one_strict(check)`.
    pub fn verify_one(&mut self, check: &SigCheck<'_>) -> bool {
        let sig = check.signature;
        let r: &[u8; 32] = sig[..32].try_into().expect("32 bytes");
        let s: [u8; 32] = sig[32..].try_into().expect("32 bytes");
        // (1) canonical s.
        let Some(s) = Scalar::from_canonical_bytes(s).into_option() else {
            return false;
        };
        // (3), small-order part: only a canonical encoding can pass (4), so comparing with the
        // eight canonical small-order encodings is the whole check.
        if small_order_encodings().contains(r) {
            return false;
        }
        // (2), cached per key.
        let Some(neg_a) = self.keys.get(check.pubkey) else {
            return false;
        };
        // (4).
        let mut h = Sha512::new();
        h.update(r);
        h.update(check.pubkey);
        h.update(check.message);
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &neg_a, &s)
            .compress()
            .0
            == *r
    }

    /// Verify every check; `results[i]` is true iff `checks[i]` passes `verify_strict`.
    /// Each result depends on its own check only, never on its neighbours.
    pub fn verify(&mut self, checks: &[SigCheck<'_>], results: &mut Vec<bool>) {
        results.clear();
        results.extend(checks.iter().map(|c| self.verify_one(c)));
    }
}

/// Alternatives measured by `bench sigverify` and not used by the verify tiles.
pub mod candidates {
    use super::{SigCheck, StrictVerifier};
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::scalar::Scalar;
    use ed25519_dalek::{Signature, VerifyingKey};

    /// `verify_batch` made exact by proving every `A` and `R` torsion-free first (`[ℓ]P = 0`,
    /// a full scalar multiplication per `R`; per key for `A`, cached by this map, unbounded:
    /// measurement only), `R` canonical and not the identity, `s` canonical. A signature that
    /// fails a precondition is decided by the exact path; a failing batch is bisected.
    /// Exact except with probability ~2^-128 per batch (the random multipliers).
    #[derive(Default)]
    pub struct TorsionCheckedBatch {
        exact: StrictVerifier,
        keys: ahash::HashMap<[u8; 32], Option<VerifyingKey>>,
        idx: Vec<usize>,
        vks: Vec<VerifyingKey>,
        sigs: Vec<Signature>,
    }

    impl TorsionCheckedBatch {
        pub fn verify(&mut self, checks: &[SigCheck<'_>], results: &mut Vec<bool>) {
            results.clear();
            results.resize(checks.len(), false);
            self.idx.clear();
            self.vks.clear();
            self.sigs.clear();
            for (i, c) in checks.iter().enumerate() {
                let key = *self.keys.entry(*c.pubkey).or_insert_with(|| {
                    let a = CompressedEdwardsY(*c.pubkey).decompress()?;
                    (a.is_torsion_free() && !a.is_small_order())
                        .then(|| VerifyingKey::from_bytes(c.pubkey).ok())?
                });
                let r_bytes: [u8; 32] = c.signature[..32].try_into().expect("32");
                let s: [u8; 32] = c.signature[32..].try_into().expect("32");
                let prepared = key.filter(|_| {
                    Scalar::from_canonical_bytes(s).is_some().into()
                        && CompressedEdwardsY(r_bytes).decompress().is_some_and(|r| {
                            r.compress().0 == r_bytes && !r.is_small_order() && r.is_torsion_free()
                        })
                });
                match prepared {
                    Some(k) => {
                        self.idx.push(i);
                        self.vks.push(k);
                        self.sigs.push(Signature::from_bytes(c.signature));
                    }
                    None => results[i] = self.exact.verify_one(c),
                }
            }
            let idx = std::mem::take(&mut self.idx);
            self.bisect(checks, &idx, 0, idx.len(), results);
            self.idx = idx;
        }

        fn bisect(
            &mut self,
            checks: &[SigCheck<'_>],
            idx: &[usize],
            lo: usize,
            hi: usize,
            results: &mut [bool],
        ) {
            if lo == hi {
                return;
            }
            if hi - lo == 1 {
                results[idx[lo]] = self.exact.verify_one(&checks[idx[lo]]);
                return;
            }
            let msgs: Vec<&[u8]> = idx[lo..hi].iter().map(|&i| checks[i].message).collect();
            if ed25519_dalek::verify_batch(&msgs, &self.sigs[lo..hi], &self.vks[lo..hi]).is_ok() {
                for &i in &idx[lo..hi] {
                    results[i] = true;
                }
                return;
            }
            let mid = lo + (hi - lo) / 2;
            self.bisect(checks, idx, lo, mid, results);
            self.bisect(checks, idx, mid, hi, results);
        }
    }

    /// The previous product path, for reference only: NOT exact (cofactorless
    /// `verify_batch` over byte-screened inputs accepts some mixed-order `A`/`R`).
    pub fn inexact_verify_batch(checks: &[SigCheck<'_>]) -> bool {
        let mut keys = Vec::with_capacity(checks.len());
        let mut sigs = Vec::with_capacity(checks.len());
        let mut msgs = Vec::with_capacity(checks.len());
        for c in checks {
            let Ok(k) = VerifyingKey::from_bytes(c.pubkey) else {
                return false;
            };
            keys.push(k);
            sigs.push(Signature::from_bytes(c.signature));
            msgs.push(c.message);
        }
        ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn signed(n: usize) -> Vec<([u8; 32], [u8; 64], Vec<u8>)> {
        (0..n)
            .map(|i| {
                let sk = SigningKey::from_bytes(&[i as u8 + 1; 32]);
                let msg = format!("message {i}").into_bytes();
                let sig = sk.sign(&msg).to_bytes();
                (sk.verifying_key().to_bytes(), sig, msg)
            })
            .collect()
    }

    fn run(items: &[([u8; 32], [u8; 64], Vec<u8>)]) -> Vec<bool> {
        let checks: Vec<SigCheck> = items
            .iter()
            .map(|(k, s, m)| SigCheck {
                pubkey: k,
                signature: s,
                message: m,
            })
            .collect();
        let mut out = Vec::new();
        StrictVerifier::default().verify(&checks, &mut out);
        // Always equal to the strict reference.
        for (c, &r) in checks.iter().zip(&out) {
            assert_eq!(verify_one_strict(c), r);
        }
        out
    }

    #[test]
    fn good_batch_passes() {
        assert!(run(&signed(64)).iter().all(|&b| b));
    }

    #[test]
    fn one_bad_signature_drops_only_itself() {
        let mut items = signed(32);
        items[7].1[3] ^= 1;
        items[20].2.push(0);
        let out = run(&items);
        for (i, &ok) in out.iter().enumerate() {
            assert_eq!(ok, i != 7 && i != 20, "index {i}");
        }
    }

    #[test]
    fn key_cache_is_bounded_and_still_exact() {
        let items = signed(40);
        let checks: Vec<SigCheck> = items
            .iter()
            .map(|(k, s, m)| SigCheck {
                pubkey: k,
                signature: s,
                message: m,
            })
            .collect();
        // Two slots for 40 keys: constant eviction, results unchanged.
        let mut v = StrictVerifier::with_cache_slots(2);
        let mut out = Vec::new();
        for _ in 0..3 {
            v.verify(&checks, &mut out);
            assert!(out.iter().all(|&b| b));
        }
        let (hits, misses) = v.cache_stats();
        assert_eq!(hits + misses, 120);
        assert!(misses >= 100);
        // Repeating keys hit.
        let mut v = StrictVerifier::default();
        for _ in 0..3 {
            v.verify(&checks[..1], &mut out);
            assert_eq!(out, vec![true]);
        }
        assert_eq!(v.cache_stats(), (2, 1));
    }

    #[test]
    fn small_order_and_noncanonical_inputs_rejected_like_strict() {
        let mut items = signed(4);
        // identity point as public key (small order)
        let mut id = [0u8; 32];
        id[0] = 1;
        items[0].0 = id;
        // R = identity (small order)
        items[1].1[..32].copy_from_slice(&id);
        // non-canonical s (s = l + something): set top bits
        items[2].1[63] = 0xff;
        let out = run(&items);
        assert_eq!(out, vec![false, false, false, true]);

        let mut items = signed(4);
        // identity with the sign bit set ("negative zero")
        let mut neg_id = id;
        neg_id[31] |= 0x80;
        items[0].1[..32].copy_from_slice(&neg_id);
        // y = p (non-canonical encoding of y = 0)
        let mut y_p = [0xffu8; 32];
        y_p[0] = 0xed;
        y_p[31] = 0x7f;
        items[1].1[..32].copy_from_slice(&y_p);
        let out = run(&items);
        assert_eq!(out, vec![false, false, true, true]);
        // each small-order point as R
        for t in curve25519_dalek::constants::EIGHT_TORSION {
            let mut items = signed(2);
            items[0].1[..32].copy_from_slice(&t.compress().0);
            assert_eq!(run(&items), vec![false, true]);
        }
    }
}
