//! Per-core signature verification: the verify tiles' exact verifier
//! (`dataplane::sigverify::StrictVerifier`) against one-by-one ed25519-dalek `verify_strict`,
//! in the same run, on three mixes: all valid from distinct payers (every key new: key-cache
//! misses), all valid from a few repeating fee payers (key-cache hits), and distinct payers with
//! one bad signature in every 256. For reference, also one-by-one plain `verify`, the old
//! inexact cofactorless `verify_batch`, and `verify_batch` made exact by torsion checks.

use super::{BenchArgs, Rows, median, workload};
use dataplane::parse_transaction;
use dataplane::sigverify::candidates::{TorsionCheckedBatch, inexact_verify_batch};
use dataplane::sigverify::{SigCheck, StrictVerifier, verify_one_strict};
use ed25519_dalek::{Signer, SigningKey};
use std::time::Instant;

/// The verify tiles' default batch.
const BATCH: usize = 256;
/// Fee payers in the repeating-payers mix.
const REPEATING_PAYERS: usize = 64;

/// Owned signature inputs.
struct Inputs {
    items: Vec<([u8; 32], [u8; 64], Vec<u8>)>,
}

impl Inputs {
    fn checks(&self) -> Vec<SigCheck<'_>> {
        self.items
            .iter()
            .map(|(k, s, m)| SigCheck {
                pubkey: k,
                signature: s,
                message: m,
            })
            .collect()
    }
}

fn distinct_payers(raw: &[Vec<u8>]) -> Inputs {
    Inputs {
        items: raw
            .iter()
            .map(|b| {
                let d = parse_transaction(b).expect("valid");
                (
                    *d.static_key(b, 0),
                    *d.first_signature(b),
                    d.message(b).to_vec(),
                )
            })
            .collect(),
    }
}

/// The same messages signed by `REPEATING_PAYERS` keys in turn.
fn repeating_payers(distinct: &Inputs) -> Inputs {
    let keys: Vec<SigningKey> = (0..REPEATING_PAYERS)
        .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
        .collect();
    Inputs {
        items: distinct
            .items
            .iter()
            .enumerate()
            .map(|(i, (_, _, m))| {
                let k = &keys[i % REPEATING_PAYERS];
                (
                    k.verifying_key().to_bytes(),
                    k.sign(m).to_bytes(),
                    m.clone(),
                )
            })
            .collect(),
    }
}

/// Distinct payers with the signature in the middle of every 256 corrupted (one bit of `R`).
fn one_bad_per_batch(distinct: &Inputs) -> Inputs {
    let mut items = distinct.items.clone();
    for chunk in items.chunks_mut(BATCH) {
        let mid = chunk.len() / 2;
        chunk[mid].1[5] ^= 0x10;
    }
    Inputs { items }
}

fn expected_valid(checks: &[SigCheck]) -> usize {
    checks.len() - checks.len().div_ceil(BATCH)
}

/// Signatures per second of one-by-one `verify_strict`; asserts `expect` valid.
fn time_strict(checks: &[SigCheck], expect: usize) -> f64 {
    let t = Instant::now();
    let ok = checks.iter().filter(|c| verify_one_strict(c)).count();
    let rate = checks.len() as f64 / t.elapsed().as_secs_f64();
    assert_eq!(ok, expect);
    rate
}

/// Signatures per second of the tiles' verifier in batches of `BATCH` (fresh key cache).
fn time_exact(checks: &[SigCheck], expect: usize) -> f64 {
    let mut v = StrictVerifier::default();
    let mut results = Vec::with_capacity(BATCH);
    let t = Instant::now();
    let mut ok = 0;
    for chunk in checks.chunks(BATCH) {
        v.verify(chunk, &mut results);
        ok += results.iter().filter(|&&b| b).count();
    }
    let rate = checks.len() as f64 / t.elapsed().as_secs_f64();
    assert_eq!(ok, expect);
    rate
}

fn time_torsion_checked_batch(checks: &[SigCheck], expect: usize) -> f64 {
    let mut v = TorsionCheckedBatch::default();
    let mut results = Vec::with_capacity(BATCH);
    let t = Instant::now();
    let mut ok = 0;
    for chunk in checks.chunks(BATCH) {
        v.verify(chunk, &mut results);
        ok += results.iter().filter(|&&b| b).count();
    }
    let rate = checks.len() as f64 / t.elapsed().as_secs_f64();
    assert_eq!(ok, expect);
    rate
}

/// Figures the pipeline bench also reports: all-valid signatures from distinct payers.
pub struct SigverifyFigures {
    /// The verify tiles' exact verifier, sig/s.
    pub exact_per_core: f64,
    /// One-by-one `verify_strict`, sig/s.
    pub single_strict_per_core: f64,
}

/// Both verifiers over the first `warmup` checks, untimed (caches, branch predictors, the
/// CPU's clock).
fn warm_up(checks: &[SigCheck], warmup: usize) {
    let w = &checks[..warmup.min(checks.len())];
    let mut v = StrictVerifier::default();
    let mut results = Vec::with_capacity(BATCH);
    for chunk in w.chunks(BATCH) {
        v.verify(chunk, &mut results);
    }
    for c in w {
        std::hint::black_box(verify_one_strict(c));
    }
}

/// Warm-up, then both verifiers over `raw`'s signatures; `run` even times the exact verifier
/// first, odd the one-by-one one.
pub fn measure(raw: &[Vec<u8>], warmup: usize, run: usize) -> SigverifyFigures {
    let inputs = distinct_payers(raw);
    let checks = inputs.checks();
    let n = checks.len();
    warm_up(&checks, warmup);
    let (exact_per_core, single_strict_per_core) = if run.is_multiple_of(2) {
        let e = time_exact(&checks, n);
        (e, time_strict(&checks, n))
    } else {
        let s = time_strict(&checks, n);
        (time_exact(&checks, n), s)
    };
    SigverifyFigures {
        exact_per_core,
        single_strict_per_core,
    }
}

fn time_plain(checks: &[SigCheck], expect: usize) -> f64 {
    let t = Instant::now();
    let ok = checks
        .iter()
        .filter(|c| {
            use ed25519_dalek::Verifier;
            ed25519_dalek::VerifyingKey::from_bytes(c.pubkey).is_ok_and(|k| {
                k.verify(
                    c.message,
                    &ed25519_dalek::Signature::from_bytes(c.signature),
                )
                .is_ok()
            })
        })
        .count();
    let rate = checks.len() as f64 / t.elapsed().as_secs_f64();
    assert_eq!(ok, expect);
    rate
}

fn time_inexact(checks: &[SigCheck]) -> f64 {
    let t = Instant::now();
    assert!(checks.chunks(BATCH).all(inexact_verify_batch));
    checks.len() as f64 / t.elapsed().as_secs_f64()
}

/// The figures timed per run, in the order of the rows they feed.
const FIGURES: usize = 10;

pub fn run(a: &BenchArgs) -> anyhow::Result<Rows> {
    anyhow::ensure!(a.txs >= 1, "--txs must be at least 1");
    let w = workload::transfers(a.txs, solana_hash::Hash::new_from_array([1; 32]));
    let distinct = distinct_payers(&w.txs);
    let repeating = repeating_payers(&distinct);
    let bad = one_bad_per_batch(&distinct);
    let (d, r, b) = (distinct.checks(), repeating.checks(), bad.checks());
    let (nd, nr, nb) = (d.len(), r.len(), expected_valid(&b));

    // Untimed: every path once over the first --warmup-txs signatures.
    let wd = &d[..a.warmup_txs.min(nd)];
    let wr = &r[..a.warmup_txs.min(nr)];
    warm_up(&d, a.warmup_txs);
    warm_up(&r, a.warmup_txs);
    time_torsion_checked_batch(wd, wd.len());
    time_torsion_checked_batch(wr, wr.len());
    time_plain(wd, wd.len());
    time_inexact(wd);

    let tasks: [&dyn Fn() -> f64; FIGURES] = [
        &|| time_exact(&d, nd),
        &|| time_strict(&d, nd),
        &|| time_exact(&r, nr),
        &|| time_strict(&r, nr),
        &|| time_exact(&b, nb),
        &|| time_strict(&b, nb),
        &|| time_plain(&d, nd),
        &|| time_torsion_checked_batch(&d, nd),
        &|| time_torsion_checked_batch(&r, nr),
        &|| time_inexact(&d),
    ];
    let mut f: Vec<Vec<f64>> = vec![Vec::new(); 14];
    for run in 0..a.runs.max(1) {
        // Even runs in the listed order (each verifier before its peer), odd runs reversed.
        let mut x = [0.0; FIGURES];
        let order: Vec<usize> = if run.is_multiple_of(2) {
            (0..FIGURES).collect()
        } else {
            (0..FIGURES).rev().collect()
        };
        for i in order {
            x[i] = tasks[i]();
        }
        let [
            exact_d,
            strict_d,
            exact_r,
            strict_r,
            exact_b,
            strict_b,
            plain_d,
            tcb_d,
            tcb_r,
            inexact_d,
        ] = x;
        let row = [
            exact_d,
            strict_d,
            exact_d / strict_d,
            exact_r,
            strict_r,
            exact_r / strict_r,
            exact_b,
            strict_b,
            exact_b / strict_b,
            plain_d,
            tcb_d,
            tcb_r,
            tcb_r / exact_r,
            inexact_d,
        ];
        for (v, x) in f.iter_mut().zip(row) {
            v.push(x);
        }
    }
    let mut m = f.into_iter().map(median);
    let mut next = || m.next().expect("14 figures");
    Ok(vec![
        (
            "exact_distinct_payers_sig_per_s",
            next(),
            "sig/s (tiles' exact verifier, all valid, every key new)",
        ),
        (
            "verify_strict_distinct_payers_sig_per_s",
            next(),
            "sig/s (one-by-one verify_strict, same inputs)",
        ),
        (
            "exact_vs_verify_strict_distinct_payers_ratio",
            next(),
            "x (median of per-run ratios)",
        ),
        (
            "exact_repeating_payers_sig_per_s",
            next(),
            "sig/s (tiles' exact verifier, all valid, 64 fee payers)",
        ),
        (
            "verify_strict_repeating_payers_sig_per_s",
            next(),
            "sig/s (one-by-one verify_strict, same inputs)",
        ),
        (
            "exact_vs_verify_strict_repeating_payers_ratio",
            next(),
            "x (median of per-run ratios)",
        ),
        (
            "exact_one_bad_in_256_sig_per_s",
            next(),
            "sig/s (tiles' exact verifier, distinct payers, 1 bad per 256)",
        ),
        (
            "verify_strict_one_bad_in_256_sig_per_s",
            next(),
            "sig/s (one-by-one verify_strict, same inputs)",
        ),
        (
            "exact_vs_verify_strict_one_bad_in_256_ratio",
            next(),
            "x (median of per-run ratios)",
        ),
        (
            "verify_plain_distinct_payers_sig_per_s",
            next(),
            "sig/s (one-by-one non-strict verify; reference)",
        ),
        (
            "batch_plus_r_torsion_check_distinct_payers_sig_per_s",
            next(),
            "sig/s (verify_batch after [l]R, [l]A checks; not used)",
        ),
        (
            "batch_plus_r_torsion_check_repeating_payers_sig_per_s",
            next(),
            "sig/s (same, 64 fee payers; not used)",
        ),
        (
            "batch_plus_r_torsion_check_vs_exact_repeating_payers_ratio",
            next(),
            "x (median of per-run ratios)",
        ),
        (
            "inexact_verify_batch_distinct_payers_sig_per_s",
            next(),
            "sig/s (old cofactorless verify_batch, NOT exact; reference)",
        ),
        ("batch_size", BATCH as f64, "signatures"),
        ("repeating_payers", REPEATING_PAYERS as f64, "fee payers"),
        ("txs", nd as f64, "signatures per mix (--txs)"),
        (
            "warmup_txs",
            a.warmup_txs.min(nd) as f64,
            "signatures per path, untimed, first",
        ),
    ])
}
