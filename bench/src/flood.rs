//! A flood the node must survive: honest transfers at a steady rate from one address, and, in
//! the same run, the same honest load while another address sends as fast as it can a mix of
//! junk bytes, exact duplicates of the honest transactions, valid-looking transactions with
//! bad signatures, transactions from unfunded payers and transactions with an unknown
//! (expired) blockhash. Reported: the honest goodput and commit p99 with the flood over
//! without it, and the process's peak RSS.
//!
//! Everything runs in one process on one machine: the flood's sender takes CPU the node would
//! otherwise have (on the 2-core dev VM, a whole core), which a remote attacker would not.

use super::{Rows, median, pipeline, workload};
use clap::Args;
use solana_keypair::Keypair;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct FloodArgs {
    /// Honest transactions per second.
    #[arg(long, default_value_t = 2_000)]
    pub honest_tps: u64,
    /// Seconds of honest load per phase.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Runs (each: one phase without the flood, one with it); figures are medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long)]
    pub json: bool,
}

struct Phase {
    goodput_tps: f64,
    landed: f64,
    p99_us: f64,
    rss_max_mib: f64,
    flood_sent: u64,
    over_share_drops: u64,
    bad_signature_drops: u64,
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The flood's packets: a fifth of each kind, cycled.
fn flood_set(honest: &[Vec<u8>], blockhash: solana_hash::Hash, n: usize) -> Vec<Vec<u8>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let unfunded: Vec<Keypair> = (0..n / 5).map(|_| Keypair::new()).collect();
    let signed_unfunded = pipeline::signed(&unfunded, blockhash);
    let expired = pipeline::signed(&unfunded, solana_hash::Hash::new_from_array([9; 32]));
    let mut out = Vec::with_capacity(n);
    for i in 0..n / 5 {
        let len = rng.gen_range(1..1232);
        out.push((0..len).map(|_| rng.r#gen::<u8>()).collect());
        out.push(honest[i % honest.len()].clone());
        let mut bad = signed_unfunded[i].clone();
        bad[1 + 7] ^= 0x40; // inside the first signature
        out.push(bad);
        out.push(signed_unfunded[i].clone());
        out.push(expired[i].clone());
    }
    out
}

fn phase(a: &FloodArgs, flood: bool) -> anyhow::Result<Phase> {
    let n = (a.honest_tps * a.seconds) as usize;
    let funded = workload::funded_node(n, |cfg| cfg.metrics.enabled = false)?;
    let (node, payers) = (funded.node, funded.payers);
    let blockhash = workload::latest_blockhash(&node)?;
    let honest = pipeline::signed(&payers, blockhash);
    let flood_packets = if flood {
        flood_set(&honest, blockhash, 20_000)
    } else {
        Vec::new()
    };
    let rt = node.runtime.counters;
    let dp = node.dataplane;
    rt.commit_latency.reset();
    let committed_before = rt.committed.load(Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let flood_sent = Arc::new(AtomicU64::new(0));
    let flooder = if flood {
        // Another source address than the honest sender's (loopback answers all of 127/8).
        let sock = UdpSocket::bind("127.0.0.2:0")?;
        sock.connect(node.tpu_addr)?;
        let (stop, sent) = (stop.clone(), flood_sent.clone());
        Some(std::thread::spawn(move || {
            for burst in flood_packets.chunks(32).cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // Send errors (ENOBUFS when the socket buffer is full) are the flood's problem.
                let _ = pipeline::send_burst(&sock, burst);
                sent.fetch_add(burst.len() as u64, Ordering::Relaxed);
            }
        }))
    } else {
        None
    };
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(node.tpu_addr)?;
    let mut rss_max = rss_mib();
    let start = Instant::now();
    for (i, burst) in honest.chunks(16).enumerate() {
        let due = start + Duration::from_secs_f64((i * 16) as f64 / a.honest_tps as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        pipeline::send_burst(&sock, burst)?;
        if i % 64 == 0 {
            rss_max = rss_max.max(rss_mib());
        }
    }
    let send_s = start.elapsed().as_secs_f64();
    // The honest load is sent; give the pipeline a few seconds to finish it (under the flood).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = rt.committed.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        rss_max = rss_max.max(rss_mib());
        let c = rt.committed.load(Ordering::Relaxed);
        if c != last {
            last = c;
            last_change = Instant::now();
        } else if c - committed_before >= n as u64 || last_change.elapsed() > Duration::from_secs(3)
        {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(f) = flooder {
        let _ = f.join();
    }
    // Only honest transfers can commit: the flood's are junk, duplicates of honest ones, bad
    // signatures, unfunded payers (no fee can be taken: nothing to commit) or expired.
    let landed = (rt.committed.load(Ordering::Relaxed) - committed_before) as f64;
    let elapsed = last_change.duration_since(start).as_secs_f64().max(send_s);
    let out = Phase {
        goodput_tps: landed / elapsed,
        landed: landed / n as f64,
        p99_us: rt.commit_latency.quantile(0.99) as f64,
        rss_max_mib: rss_max,
        flood_sent: flood_sent.load(Ordering::Relaxed),
        over_share_drops: dp.over_fair_share.load(Ordering::Relaxed),
        bad_signature_drops: dp.bad_signature.load(Ordering::Relaxed),
    };
    node.shutdown();
    Ok(out)
}

pub fn run(a: &FloodArgs) -> anyhow::Result<Rows> {
    let mut goodput_ratio = Vec::new();
    let mut p99_ratio = Vec::new();
    let (mut quiet_tps, mut flood_tps, mut landed) = (Vec::new(), Vec::new(), Vec::new());
    let (mut quiet_p99, mut flood_p99, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    let (mut flood_rate, mut over_share, mut bad_sig) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.runs.max(1) {
        let quiet = phase(a, false)?;
        let loud = phase(a, true)?;
        goodput_ratio.push(loud.goodput_tps / quiet.goodput_tps.max(1e-9));
        p99_ratio.push(loud.p99_us / quiet.p99_us.max(1.0));
        quiet_tps.push(quiet.goodput_tps);
        flood_tps.push(loud.goodput_tps);
        landed.push(loud.landed);
        quiet_p99.push(quiet.p99_us);
        flood_p99.push(loud.p99_us);
        rss.push(loud.rss_max_mib.max(quiet.rss_max_mib));
        flood_rate.push(loud.flood_sent as f64 / a.seconds as f64);
        over_share.push(loud.over_share_drops as f64);
        bad_sig.push(loud.bad_signature_drops as f64);
    }
    Ok(vec![
        (
            "goodput_ratio",
            median(goodput_ratio),
            "x (honest tx/s committed with the flood / without; median of per-run ratios)",
        ),
        (
            "p99_ratio",
            median(p99_ratio),
            "x (honest commit p99 with the flood / without)",
        ),
        (
            "rss_max_mib",
            median(rss),
            "MiB (peak RSS of the whole process: node and load generators)",
        ),
        (
            "honest_tps_quiet",
            median(quiet_tps),
            "tx/s committed, no flood",
        ),
        (
            "honest_tps_flood",
            median(flood_tps),
            "tx/s committed, under the flood",
        ),
        (
            "honest_landed_flood",
            median(landed),
            "fraction of honest transactions committed under the flood",
        ),
        (
            "p99_us_quiet",
            median(quiet_p99),
            "µs receive → durable, no flood",
        ),
        (
            "p99_us_flood",
            median(flood_p99),
            "µs receive → durable, under the flood",
        ),
        (
            "flood_pps",
            median(flood_rate),
            "flood packets sent per second",
        ),
        (
            "flood_over_share_drops",
            median(over_share),
            "flood packets dropped at ingest for their sender's share",
        ),
        (
            "flood_bad_signature_drops",
            median(bad_sig),
            "packets that reached a verify tile and failed it",
        ),
        ("honest_tps_offered", a.honest_tps as f64, "tx/s"),
    ])
}
