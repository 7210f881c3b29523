//! Per-core signature verification: the batched strict verifier the verify tiles run, against
//! plain one-by-one ed25519-dalek `verify_strict` (and non-strict `verify`) in the same run.

use super::{BenchArgs, Rows, median, workload};
use dataplane::parse_transaction;
use dataplane::sigverify::{BatchVerifier, SigCheck, verify_one_strict};
use std::time::Instant;

/// The verify tiles' default batch.
const BATCH: usize = 256;

pub struct SigverifyFigures {
    pub batched_per_core: f64,
    pub single_strict_per_core: f64,
    pub single_plain_per_core: f64,
}

pub fn measure(raw: &[Vec<u8>]) -> SigverifyFigures {
    let descs: Vec<_> = raw
        .iter()
        .map(|b| parse_transaction(b).expect("valid"))
        .collect();
    let checks: Vec<SigCheck> = raw
        .iter()
        .zip(&descs)
        .map(|(b, d)| SigCheck {
            pubkey: d.static_key(b, 0),
            signature: d.first_signature(b),
            message: d.message(b),
        })
        .collect();
    let n = checks.len() as f64;

    let t = Instant::now();
    let ok = checks.iter().filter(|c| verify_one_strict(c)).count();
    let single_strict = n / t.elapsed().as_secs_f64();
    assert_eq!(ok, checks.len());

    let plain_t = Instant::now();
    let ok = checks
        .iter()
        .filter(|c| {
            use ed25519_dalek::Verifier;
            ed25519_dalek::VerifyingKey::from_bytes(c.pubkey)
                .map(|k| {
                    k.verify(
                        c.message,
                        &ed25519_dalek::Signature::from_bytes(c.signature),
                    )
                    .is_ok()
                })
                .unwrap_or(false)
        })
        .count();
    let single_plain = n / plain_t.elapsed().as_secs_f64();
    assert_eq!(ok, checks.len());

    let mut v = BatchVerifier::default();
    let mut results = Vec::new();
    let t = Instant::now();
    let mut ok = 0;
    for chunk in checks.chunks(BATCH) {
        v.verify(chunk, &mut results);
        ok += results.iter().filter(|&&b| b).count();
    }
    let batched = n / t.elapsed().as_secs_f64();
    assert_eq!(ok, checks.len());
    SigverifyFigures {
        batched_per_core: batched,
        single_strict_per_core: single_strict,
        single_plain_per_core: single_plain,
    }
}

pub fn run(a: &BenchArgs) -> anyhow::Result<Rows> {
    let w = workload::transfers(
        a.txs.min(20_000),
        solana_hash::Hash::new_from_array([1; 32]),
    );
    let mut batched = Vec::new();
    let mut strict = Vec::new();
    let mut plain = Vec::new();
    let mut ratio = Vec::new();
    for _ in 0..a.runs.max(1) {
        let f = measure(&w.txs);
        ratio.push(f.batched_per_core / f.single_strict_per_core);
        batched.push(f.batched_per_core);
        strict.push(f.single_strict_per_core);
        plain.push(f.single_plain_per_core);
    }
    Ok(vec![
        (
            "sigverify_tps_per_core",
            median(batched),
            "sig/s (batched, strict)",
        ),
        (
            "sigverify_single_tps_per_core",
            median(strict),
            "sig/s (one-by-one verify_strict)",
        ),
        (
            "sigverify_single_plain_tps_per_core",
            median(plain),
            "sig/s (one-by-one verify)",
        ),
        (
            "batch_vs_single_ratio",
            median(ratio),
            "x (median of per-run ratios)",
        ),
        ("batch_size", BATCH as f64, "signatures"),
    ])
}
