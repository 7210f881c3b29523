//! Batched strict ed25519 verification.
//!
//! Solana accepts what ed25519-dalek's `verify_strict` accepts: canonical `s`, no small-order
//! public key or `R`, and the exact encoding of `R`. Batch verification checks the group
//! equation only, so before batching every signature is screened for the cases where the two
//! could differ (weak `A`, small-order or non-canonical `R`). A batch that fails is re-checked
//! one signature at a time so one bad signature does not drop its neighbours.

use ed25519_dalek::{Signature, VerifyingKey};

/// One signature to check: the signer's key, the signature and the signed message.
pub struct SigCheck<'a> {
    pub pubkey: &'a [u8; 32],
    pub signature: &'a [u8; 64],
    pub message: &'a [u8],
}

/// Encodings of the eight small-order points with the sign bit cleared. An `R` whose
/// encoding matches one of these (with either sign bit) is a small-order point, or the
/// non-canonical "negative zero" form of one.
fn torsion_encodings() -> &'static [[u8; 32]; 8] {
    static SET: std::sync::OnceLock<[[u8; 32]; 8]> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        curve25519_dalek::constants::EIGHT_TORSION.map(|p| {
            let mut b = p.compress().0;
            b[31] &= 0x7f;
            b
        })
    })
}

/// `y` (the encoding without its sign bit) is at least p = 2^255 - 19: not canonical.
fn is_noncanonical_y(b: &[u8; 32]) -> bool {
    b[31] & 0x7f == 0x7f && b[1..31].iter().all(|&x| x == 0xff) && b[0] >= 0xed
}

/// Decode and screen one signature; `None` means it fails strict verification for sure.
/// Screening `R` works on its bytes (no decompression): the batch decompresses it anyway.
fn prepare(check: &SigCheck<'_>) -> Option<(VerifyingKey, Signature)> {
    let key = VerifyingKey::from_bytes(check.pubkey).ok()?;
    if key.is_weak() {
        return None;
    }
    let r: [u8; 32] = check.signature[..32].try_into().ok()?;
    if is_noncanonical_y(&r) {
        return None;
    }
    let mut r_unsigned = r;
    r_unsigned[31] &= 0x7f;
    if torsion_encodings().contains(&r_unsigned) {
        return None;
    }
    // `s` must be canonical; `from_bytes` accepts any 64 bytes, so check explicitly.
    let s: [u8; 32] = check.signature[32..].try_into().ok()?;
    curve25519_dalek::Scalar::from_canonical_bytes(s).into_option()?;
    Some((key, Signature::from_bytes(check.signature)))
}

/// The reference: one signature, `verify_strict`.
pub fn verify_one_strict(check: &SigCheck<'_>) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(check.pubkey) else {
        return false;
    };
    key.verify_strict(check.message, &Signature::from_bytes(check.signature))
        .is_ok()
}

/// Reusable buffers for batch verification (no allocation per batch after warm-up).
#[derive(Default)]
pub struct BatchVerifier {
    keys: Vec<VerifyingKey>,
    sigs: Vec<Signature>,
    msgs_idx: Vec<usize>,
}

impl BatchVerifier {
    /// Verify every check; `results[i]` is true iff `checks[i]` passes strict verification.
    pub fn verify(&mut self, checks: &[SigCheck<'_>], results: &mut Vec<bool>) {
        results.clear();
        results.resize(checks.len(), false);
        self.keys.clear();
        self.sigs.clear();
        self.msgs_idx.clear();
        for (i, c) in checks.iter().enumerate() {
            if let Some((k, s)) = prepare(c) {
                self.keys.push(k);
                self.sigs.push(s);
                self.msgs_idx.push(i);
            }
        }
        if self.msgs_idx.is_empty() {
            return;
        }
        let msgs: Vec<&[u8]> = self.msgs_idx.iter().map(|&i| checks[i].message).collect();
        let ok = if self.msgs_idx.len() == 1 {
            self.keys[0].verify_strict(msgs[0], &self.sigs[0]).is_ok()
        } else {
            ed25519_dalek::verify_batch(&msgs, &self.sigs, &self.keys).is_ok()
        };
        if ok {
            for &i in &self.msgs_idx {
                results[i] = true;
            }
        } else {
            for (j, &i) in self.msgs_idx.iter().enumerate() {
                results[i] = self.keys[j].verify_strict(msgs[j], &self.sigs[j]).is_ok();
            }
        }
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
        BatchVerifier::default().verify(&checks, &mut out);
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
        // each small-order point as R
        let out = run(&items);
        assert_eq!(out, vec![false, false, true, true]);
        for t in curve25519_dalek::constants::EIGHT_TORSION {
            let mut items = signed(2);
            items[0].1[..32].copy_from_slice(&t.compress().0);
            assert_eq!(run(&items), vec![false, true]);
        }
    }
}
