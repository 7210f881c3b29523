//! Differential test: the verify tiles' verifier against ed25519-dalek 2.2's `verify_strict`
//! (what Agave runs) on a corpus with the edge cases of "Taming the many EdDSAs" (Chalkias,
//! Garillot, Nikolaenko, 2020): small-order and mixed-order `A` and `R` built from each of the
//! eight torsion points, non-canonical encodings of `A`, `R` and `s`, `s ≥ ℓ`, signatures that
//! `verify_strict` accepts with a mixed-order `A` and `R`, and seeded random valid/invalid
//! signatures. Every input is checked alone, in every batch size listed, at several positions,
//! and in batches built so that adversarial signatures could cancel each other's torsion.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use dataplane::sigverify::{SigCheck, StrictVerifier, verify_one_strict};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha512};

#[derive(Clone)]
struct Case {
    label: String,
    key: [u8; 32],
    sig: [u8; 64],
    msg: Vec<u8>,
}

impl Case {
    fn check(&self) -> SigCheck<'_> {
        SigCheck {
            pubkey: &self.key,
            signature: &self.sig,
            message: &self.msg,
        }
    }
}

/// ℓ, little endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn add_le(a: &[u8; 32], b: &[u8; 32]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    (carry == 0).then_some(out)
}

fn rand_scalar(rng: &mut StdRng) -> Scalar {
    let mut w = [0u8; 64];
    rng.fill(&mut w[..]);
    Scalar::from_bytes_mod_order_wide(&w)
}

fn hram(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(m);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

fn sig_bytes(r: &[u8; 32], s: &[u8; 32]) -> [u8; 64] {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(r);
    sig[32..].copy_from_slice(s);
    sig
}

fn msg(rng: &mut StdRng) -> Vec<u8> {
    let n = rng.gen_range(0..300);
    (0..n).map(|_| rng.r#gen()).collect()
}

/// Encodings with `y ≥ p` (p + 0 ..= p + 18, i.e. 2^255 − 19 ..= 2^255 − 1), both sign bits,
/// and the "negative zero" encodings of the two points with x = 0 (y = 1 and y = −1).
fn noncanonical_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for k in 0u8..=18 {
        let mut e = [0xffu8; 32];
        e[0] = 0xed + k;
        e[31] = 0x7f;
        out.push(e);
        e[31] |= 0x80;
        out.push(e);
    }
    let mut one = [0u8; 32];
    one[0] = 1;
    one[31] = 0x80;
    out.push(one);
    // y = −1 = p − 1: the order-2 point (0, −1), with the sign bit set.
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0xff;
    out.push(minus_one);
    out
}

/// An honest signature by secret scalar `a` (any scalar: the key need not come from a seed).
fn honest(rng: &mut StdRng, label: &str) -> Case {
    let a = rand_scalar(rng);
    let key = (a * B).compress().0;
    let m = msg(rng);
    let r = rand_scalar(rng);
    let rb = (r * B).compress().0;
    let s = r + hram(&rb, &key, &m) * a;
    Case {
        label: label.into(),
        key,
        sig: sig_bytes(&rb, s.as_bytes()),
        msg: m,
    }
}

fn build_corpus(rng: &mut StdRng) -> Vec<Case> {
    let mut c = Vec::new();
    let torsion: Vec<EdwardsPoint> = EIGHT_TORSION.to_vec();

    // Random valid signatures, from SigningKeys and from raw scalars.
    for i in 0..120 {
        use ed25519_dalek::Signer;
        let mut seed = [0u8; 32];
        rng.fill(&mut seed);
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        let m = msg(rng);
        c.push(Case {
            label: format!("valid signing-key {i}"),
            key: sk.verifying_key().to_bytes(),
            sig: sk.sign(&m).to_bytes(),
            msg: m,
        });
        c.push(honest(rng, &format!("valid scalar {i}")));
    }
    // Random invalid: one flipped bit in R, s, message or key; random bytes.
    for i in 0..120 {
        let mut x = honest(rng, "");
        match i % 5 {
            0 => x.sig[rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8),
            1 => x.sig[rng.gen_range(32..64)] ^= 1 << rng.gen_range(0..8),
            2 => x.msg.push(rng.r#gen()),
            3 => x.key[rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8),
            _ => {
                rng.fill(&mut x.sig[..]);
                x.sig[63] &= 0x0f;
            }
        }
        x.label = format!("invalid random {i} kind {}", i % 5);
        c.push(x);
    }

    // Small-order A: each torsion point and every non-canonical encoding. Ground so that the
    // cofactorless equation holds (k·T = 0): plain `verify` accepts, `verify_strict` must not.
    let mut small_keys: Vec<[u8; 32]> = torsion.iter().map(|t| t.compress().0).collect();
    small_keys.extend(noncanonical_encodings());
    for (j, key) in small_keys.iter().enumerate() {
        let Some(pt) = CompressedEdwardsY(*key).decompress() else {
            continue;
        };
        let m = msg(rng);
        for _ in 0..64 {
            let r = rand_scalar(rng);
            let rb = (r * B).compress().0;
            let k = hram(&rb, key, &m);
            if (k * pt).is_identity() || !pt.is_small_order() {
                c.push(Case {
                    label: format!("small-order/noncanonical A {j}"),
                    key: *key,
                    sig: sig_bytes(&rb, r.as_bytes()),
                    msg: m.clone(),
                });
                break;
            }
        }
    }

    // Small-order R (all canonical and non-canonical encodings), with s = k·a so that
    // [s]B − [k]A is the identity, and with a random s.
    for (j, rb) in small_keys.iter().enumerate() {
        let a = rand_scalar(rng);
        let key = (a * B).compress().0;
        let m = msg(rng);
        let s = hram(rb, &key, &m) * a;
        c.push(Case {
            label: format!("small-order/noncanonical R {j}, s = k·a"),
            key,
            sig: sig_bytes(rb, s.as_bytes()),
            msg: m.clone(),
        });
        c.push(Case {
            label: format!("small-order/noncanonical R {j}, random s"),
            key,
            sig: sig_bytes(rb, rand_scalar(rng).as_bytes()),
            msg: m,
        });
    }

    // Mixed-order A = aB + T, for every T. R = rB + T_R; ground until −k·T = T_R, so that
    // [s]B − [k]A = R exactly: verify_strict ACCEPTS these (A and R are not of small order).
    // Also the honest-looking variant with R = rB and k·T ≠ 0, which it rejects.
    for (ti, t) in torsion.iter().enumerate() {
        for (tri, t_r) in torsion.iter().enumerate() {
            let a = rand_scalar(rng);
            let ap = a * B + t;
            let key = ap.compress().0;
            let m = msg(rng);
            for _ in 0..256 {
                let r = rand_scalar(rng);
                let rp = r * B + t_r;
                let rb = rp.compress().0;
                let k = hram(&rb, &key, &m);
                if -(k * t) == *t_r {
                    let s = r + k * a;
                    c.push(Case {
                        label: format!("mixed A T{ti}, R torsion T{tri}, exact (accepted)"),
                        key,
                        sig: sig_bytes(&rb, s.as_bytes()),
                        msg: m.clone(),
                    });
                    break;
                }
            }
        }
        let a = rand_scalar(rng);
        let key = (a * B + t).compress().0;
        for _ in 0..4 {
            let m = msg(rng);
            let r = rand_scalar(rng);
            let rb = (r * B).compress().0;
            let s = r + hram(&rb, &key, &m) * a;
            c.push(Case {
                label: format!("mixed A T{ti}, R prime order"),
                key,
                sig: sig_bytes(&rb, s.as_bytes()),
                msg: m,
            });
        }
    }

    // Mixed-order R = rB + T with an honest key and s = r + k·a: [s]B − [k]A = rB ≠ R.
    // A cofactorless batch accepts it whenever its multiplier kills T.
    for (ti, t) in torsion.iter().enumerate() {
        for n in 0..6 {
            let a = rand_scalar(rng);
            let key = (a * B).compress().0;
            let m = msg(rng);
            let r = rand_scalar(rng);
            let rb = (r * B + t).compress().0;
            let s = r + hram(&rb, &key, &m) * a;
            c.push(Case {
                label: format!("mixed R T{ti} #{n}"),
                key,
                sig: sig_bytes(&rb, s.as_bytes()),
                msg: m,
            });
        }
    }

    // s ≥ ℓ: s + ℓ, s + 2ℓ, s + 15ℓ of valid signatures; s = ℓ; s = 2^256 − 1.
    for i in 0..10 {
        let x = honest(rng, "");
        let s: [u8; 32] = x.sig[32..].try_into().unwrap();
        let mut add = s;
        for mult in 1..=15 {
            add = add_le(&add, &L).unwrap();
            if matches!(mult, 1 | 2 | 15) {
                let mut y = x.clone();
                y.sig[32..].copy_from_slice(&add);
                y.label = format!("s + {mult}ℓ #{i}");
                c.push(y);
            }
        }
    }
    let mut y = honest(rng, "s = ℓ");
    y.sig[32..].copy_from_slice(&L);
    c.push(y);
    let mut y = honest(rng, "s = 2^256 − 1");
    y.sig[32..].copy_from_slice(&[0xff; 32]);
    c.push(y);

    // Every non-canonical encoding as R and as A of otherwise valid signatures (a
    // non-canonical encoding of an honest signature's own R or A exists only for y < 19,
    // whose discrete logs are unknown).
    for (j, e) in noncanonical_encodings().iter().enumerate() {
        let mut y = honest(rng, "");
        y.sig[..32].copy_from_slice(e);
        y.label = format!("noncanonical R {j} in valid sig");
        c.push(y);
        let mut y = honest(rng, "");
        y.key = *e;
        y.label = format!("noncanonical A {j} in valid sig");
        c.push(y);
    }
    c
}

/// Cases whose R carries the order-2 torsion point, built in pairs, for cancellation batches.
fn order2_pairs(rng: &mut StdRng, n: usize) -> Vec<Case> {
    let t2 = EIGHT_TORSION[4];
    assert!((t2 + t2).is_identity() && !t2.is_identity());
    (0..n)
        .map(|i| {
            let a = rand_scalar(rng);
            let key = (a * B).compress().0;
            let m = msg(rng);
            let r = rand_scalar(rng);
            let rb = (r * B + t2).compress().0;
            let s = r + hram(&rb, &key, &m) * a;
            Case {
                label: format!("order-2 R #{i}"),
                key,
                sig: sig_bytes(&rb, s.as_bytes()),
                msg: m,
            }
        })
        .collect()
}

fn check_batch(v: &mut StrictVerifier, batch: &[&Case], refs: &[bool], what: &str) {
    let checks: Vec<SigCheck> = batch.iter().map(|c| c.check()).collect();
    let mut out = Vec::new();
    v.verify(&checks, &mut out);
    assert_eq!(out.len(), batch.len());
    for (i, (c, (&got, &want))) in batch.iter().zip(out.iter().zip(refs)).enumerate() {
        assert_eq!(
            got,
            want,
            "{what}: '{}' at position {i} of {}: verifier {got}, verify_strict {want}",
            c.label,
            batch.len()
        );
    }
}

#[test]
fn verifier_equals_verify_strict_on_edge_case_corpus() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0016);
    let corpus = build_corpus(&mut rng);
    let refs: Vec<bool> = corpus
        .iter()
        .map(|c| verify_one_strict(&c.check()))
        .collect();

    // The corpus must contain what it claims: accepted mixed-order signatures and rejected ones.
    let accepted_mixed = corpus
        .iter()
        .zip(&refs)
        .filter(|(c, ok)| **ok && c.label.contains("(accepted)"))
        .count();
    let crafted_mixed = corpus
        .iter()
        .filter(|c| c.label.contains("(accepted)"))
        .count();
    // −k·T ranges over the subgroup T generates: 1 + 8 + 4 + 8 + 2 + 8 + 4 + 8 reachable pairs.
    assert_eq!(crafted_mixed, 43, "{crafted_mixed} crafted");
    assert_eq!(
        accepted_mixed, crafted_mixed,
        "every crafted mixed-order A signature is accepted by verify_strict"
    );
    // Mixed-order A with a non-identity torsion part: A not small order, accepted.
    assert!(corpus.iter().zip(&refs).any(|(c, ok)| *ok
        && c.label.starts_with("mixed A T1,")
        && !c.label.contains("R torsion T0")));
    eprintln!(
        "corpus: {} inputs, {} accepted by verify_strict",
        corpus.len(),
        refs.iter().filter(|&&b| b).count()
    );
    assert!(refs.iter().filter(|&&b| b).count() > 280);
    assert!(refs.iter().filter(|&&b| !b).count() > 300);

    // One verifier reused (warm key cache) and one with a single cache slot (always evicting).
    let mut warm = StrictVerifier::default();
    let mut tiny = StrictVerifier::with_cache_slots(1);
    let idx: Vec<usize> = (0..corpus.len()).collect();
    for &size in &[1usize, 2, 3, 7, 64, 256, corpus.len()] {
        for pass in 0..4 {
            let mut order = idx.clone();
            if pass > 0 {
                order.shuffle(&mut rng);
            }
            for chunk in order.chunks(size) {
                let batch: Vec<&Case> = chunk.iter().map(|&i| &corpus[i]).collect();
                let want: Vec<bool> = chunk.iter().map(|&i| refs[i]).collect();
                check_batch(
                    &mut warm,
                    &batch,
                    &want,
                    &format!("size {size} pass {pass}"),
                );
                if size <= 7 || pass == 0 {
                    check_batch(
                        &mut tiny,
                        &batch,
                        &want,
                        &format!("tiny cache, size {size}"),
                    );
                }
            }
        }
    }

    // Every non-random case at positions 0, 1, 31 and 63 of a batch of otherwise valid ones.
    let valid: Vec<&Case> = corpus
        .iter()
        .zip(&refs)
        .filter(|(c, ok)| **ok && c.label.starts_with("valid"))
        .map(|(c, _)| c)
        .take(63)
        .collect();
    for (i, case) in corpus.iter().enumerate() {
        if case.label.starts_with("valid") || case.label.starts_with("invalid random") {
            continue;
        }
        for &pos in &[0usize, 1, 31, 63] {
            let mut batch = valid.clone();
            batch.insert(pos, case);
            let mut want = vec![true; 64];
            want[pos] = refs[i];
            check_batch(&mut warm, &batch, &want, &format!("position {pos}"));
        }
    }
}

#[test]
fn torsion_cannot_cancel_across_a_batch() {
    let mut rng = StdRng::seed_from_u64(0x0002_0016);
    let pairs = order2_pairs(&mut rng, 64);
    let corpus = build_corpus(&mut rng);
    let mixed: Vec<&Case> = corpus
        .iter()
        .filter(|c| c.label.starts_with("mixed R") || c.label.starts_with("mixed A"))
        .collect();
    let mut v = StrictVerifier::default();
    // Batches made only of signatures whose torsion parts could sum to zero.
    for size in [2usize, 3, 7, 64] {
        for round in 0..16 {
            let mut batch: Vec<&Case> = pairs.iter().collect();
            batch.shuffle(&mut rng);
            batch.truncate(size);
            let want: Vec<bool> = batch
                .iter()
                .map(|c| verify_one_strict(&c.check()))
                .collect();
            assert!(want.iter().all(|&b| !b));
            check_batch(
                &mut v,
                &batch,
                &want,
                &format!("order-2 size {size} round {round}"),
            );
            let mut batch: Vec<&Case> = mixed.clone();
            batch.shuffle(&mut rng);
            batch.truncate(size);
            let want: Vec<bool> = batch
                .iter()
                .map(|c| verify_one_strict(&c.check()))
                .collect();
            check_batch(
                &mut v,
                &batch,
                &want,
                &format!("mixed size {size} round {round}"),
            );
        }
    }
}

/// The batch candidate `bench sigverify` measures (not used by the tiles) is exact too.
#[test]
fn torsion_checked_batch_candidate_equals_verify_strict() {
    use dataplane::sigverify::candidates::TorsionCheckedBatch;
    let mut rng = StdRng::seed_from_u64(0x0003_0016);
    let mut corpus = build_corpus(&mut rng);
    corpus.extend(order2_pairs(&mut rng, 16));
    let refs: Vec<bool> = corpus
        .iter()
        .map(|c| verify_one_strict(&c.check()))
        .collect();
    let mut v = TorsionCheckedBatch::default();
    let mut idx: Vec<usize> = (0..corpus.len()).collect();
    for size in [1usize, 2, 7, 64, 256] {
        idx.shuffle(&mut rng);
        for chunk in idx.chunks(size) {
            let checks: Vec<SigCheck> = chunk.iter().map(|&i| corpus[i].check()).collect();
            let mut out = Vec::new();
            v.verify(&checks, &mut out);
            for (&i, &got) in chunk.iter().zip(&out) {
                assert_eq!(got, refs[i], "'{}' in a batch of {size}", corpus[i].label);
            }
        }
    }
}
