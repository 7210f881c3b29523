//! The whole appliance under load: pre-signed transactions sent over UDP to a running node
//! (net → verify → bank → workers → commit), each followed until its slot is durable and its
//! status read. Two workloads: disjoint System transfers to fresh recipients (the best case:
//! no conflicts, nothing fails) and a mixed one (hot and cold accounts, SPL Token transfers, 2%
//! failing; see `workload::Kind`), which is also swept over offered load. The stages are then
//! measured alone in the same run for comparison.

use super::{BenchArgs, Line, Plot, Report, cores, median, percentile, workload};
use appliance::config::StorageEngine;
use appliance::node::Node;
use solana_keypair::Keypair;
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::Transaction;
use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use workload::{FundedNode, Kind, Mixed, SignedTx};

/// Packets allowed between the sender and the verify tiles: keeps the kernel socket buffer
/// and the net → verify rings from overflowing, so the run measures throughput, not drops.
const SEND_WINDOW: u64 = 4096;
const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);
/// No new durable transaction of a phase for this long: the rest were dropped.
const STALL: Duration = Duration::from_secs(3);
/// Offered load of the sweep, as fractions of the mixed workload's saturated rate.
const SWEEP: [f64; 5] = [0.25, 0.5, 0.75, 1.0, 1.25];
/// The sweep point whose latencies are the latency CDF ("half load").
const HALF_LOAD: usize = 1;
/// Fractions at which the latency CDF is drawn.
const CDF: [f64; 17] = [
    0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 1.0,
];

/// Datagrams per `sendmmsg`: the load generator shares the machine, so it should be cheap.
const SEND_BURST: usize = 32;

/// Send every datagram of `burst` on the connected socket with `sendmmsg` calls.
pub(crate) fn send_burst<B: AsRef<[u8]>>(sock: &UdpSocket, burst: &[B]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut iovs: Vec<libc::iovec> = burst
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.as_ref().as_ptr() as *mut libc::c_void,
            iov_len: b.as_ref().len(),
        })
        .collect();
    // SAFETY: zeroed mmsghdr is valid (null name, no control data).
    let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; burst.len()];
    for (h, iov) in hdrs.iter_mut().zip(iovs.iter_mut()) {
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
    }
    let mut done = 0;
    while done < hdrs.len() {
        // SAFETY: headers point at live iovecs over live buffers for the duration of the call.
        let n = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                hdrs[done..].as_mut_ptr(),
                (hdrs.len() - done) as libc::c_uint,
                0,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        done += n as usize;
    }
    Ok(())
}

/// Busy percent of each tile kind, summed over its instances.
#[derive(Default, Clone, Copy)]
struct BusyShares {
    verify: f64,
    bank: f64,
    workers: f64,
    commit: f64,
}

/// One disjoint transfer per payer, each to a fresh recipient: wire bytes.
pub(crate) fn signed(payers: &[Keypair], blockhash: solana_hash::Hash) -> Vec<Vec<u8>> {
    workload::sign_parallel(0..payers.len(), |i| disjoint_tx(&payers[i], blockhash))
        .into_iter()
        .map(|t| t.wire)
        .collect()
}

/// What observing a run cost: CPU seconds of the scraper + endpoint and of the monitor.
#[derive(Default)]
struct Observation {
    cpu_s: f64,
    wall_s: f64,
}

/// Scrape /metrics every second and run `gigacompute monitor` against the node until dropped.
struct Observer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    scraper: Option<std::thread::JoinHandle<f64>>,
    monitor: std::process::Child,
    server: Option<appliance::metrics::server::MetricsServer>,
    started: Instant,
}

fn thread_cpu_s() -> f64 {
    telemetry::thread_cpu_ns() as f64 / 1e9
}

fn process_cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

impl Observer {
    fn start(node: &Node) -> anyhow::Result<Self> {
        use std::io::{Read, Write};
        let server =
            appliance::metrics::server::MetricsServer::start(node.metrics, "127.0.0.1:0".parse()?)?;
        let addr = server.addr;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let st = stop.clone();
        let scraper = std::thread::spawn(move || {
            let t0 = thread_cpu_s();
            while !st.load(Ordering::Relaxed) {
                if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
                    let mut body = Vec::new();
                    let _ = s.read_to_end(&mut body);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            thread_cpu_s() - t0
        });
        let monitor = std::process::Command::new(std::env::current_exe()?)
            .args(["monitor", "--data-dir"])
            .arg(&node.config.data_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        Ok(Self {
            stop,
            scraper: Some(scraper),
            monitor,
            server: Some(server),
            started: Instant::now(),
        })
    }

    fn finish(mut self) -> Observation {
        self.stop.store(true, Ordering::Relaxed);
        let scraper_cpu = self
            .scraper
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or(0.0);
        let monitor_cpu = process_cpu_s(self.monitor.id());
        let _ = self.monitor.kill();
        let _ = self.monitor.wait();
        let mut endpoint_cpu = 0.0;
        if let Some(s) = self.server.take() {
            endpoint_cpu = s.cpu_seconds();
            s.shutdown();
        }
        Observation {
            cpu_s: scraper_cpu + endpoint_cpu + monitor_cpu,
            wall_s: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// How a phase sends: as fast as the verify tiles take packets (at most [`SEND_WINDOW`]
/// ahead of them: saturation without drops), or open loop at a fixed rate (tx/s).
#[derive(Clone, Copy)]
pub(crate) enum Pace {
    Window,
    Rate(f64),
}

/// One phase's transactions followed to their durable slots.
pub(crate) struct Driven {
    sent: usize,
    /// Sent per second, from the first burst to the last one's start.
    offered_tps: f64,
    /// Transactions of the phase found in durable slots.
    committed: usize,
    /// ...of them with a successful status.
    ok: usize,
    failed: usize,
    /// Statuses that differ from what the workload expects (a failure where success was
    /// expected, or the other way round).
    unexpected: usize,
    first_unexpected: Option<String>,
    /// From the first send to the last of these transactions' durable commit.
    elapsed_s: f64,
    /// Successful transactions per second between the first and the last durable slot that
    /// holds any of them (the first slot's count excluded: fence posts).
    pub(crate) window_tps: f64,
    /// Send to durable, µs, each committed transaction.
    latency_us: Vec<u64>,
}

impl Driven {
    /// Successful transactions per second, first send to last durable commit.
    fn tps(&self) -> f64 {
        self.ok as f64 / self.elapsed_s.max(1e-9)
    }

    /// Committed transactions (successful or failed) per second: the rate the pipeline
    /// carried.
    pub(crate) fn carried_tps(&self) -> f64 {
        self.committed as f64 / self.elapsed_s.max(1e-9)
    }
}

/// Send `txs` to the node's TPU port and follow each to its durable slot: a poller reads
/// every newly durable slot's signatures, the time it became durable and each status.
pub(crate) fn drive(node: &Node, txs: &[SignedTx], pace: Pace) -> anyhow::Result<Driven> {
    let chain = &node.runtime.chain;
    let index: HashMap<Signature, u32> = txs
        .iter()
        .enumerate()
        .map(|(i, t)| (t.signature, i as u32))
        .collect();
    let wires: Vec<&[u8]> = txs.iter().map(|t| t.wire.as_slice()).collect();
    let send_ns: Vec<AtomicU64> = (0..txs.len().div_ceil(SEND_BURST))
        .map(|_| AtomicU64::new(0))
        .collect();
    let stop = AtomicBool::new(false);
    let seen = AtomicUsize::new(0);
    // Slots durable before the first send hold none of these transactions.
    let first_slot = chain.durable_slot() + 1;
    type Polled = (Vec<(u32, u64, bool)>, Vec<(u64, usize)>, Option<String>);
    let (sent, start_ns, last_burst, polled): (usize, u64, usize, Polled) =
        std::thread::scope(|s| -> anyhow::Result<_> {
            let poller = s.spawn(|| {
                let mut next = first_slot;
                // (index, durable ns, succeeded), and per slot (durable ns, successes).
                let mut recs: Vec<(u32, u64, bool)> = Vec::with_capacity(txs.len());
                let mut slots: Vec<(u64, usize)> = Vec::new();
                let mut first_unexpected = None;
                loop {
                    let stopping = stop.load(Ordering::Acquire);
                    let durable = chain.durable_slot();
                    while next <= durable {
                        let t = chain
                            .durable_at(next)
                            .unwrap_or_else(dataplane::monotonic_ns);
                        let mut ok_here = 0;
                        let mut mine = 0;
                        for sig in chain.slot_signatures(next).unwrap_or_default() {
                            let Some(&i) = index.get(&sig) else { continue };
                            let status = chain.status(&sig);
                            let ok = status.as_ref().is_some_and(|st| st.err.is_none());
                            if ok != txs[i as usize].expect_ok && first_unexpected.is_none() {
                                first_unexpected = Some(match status {
                                    Some(st) => format!("{sig}: {:?} {:?}", st.err, st.logs),
                                    None => format!("{sig}: no status"),
                                });
                            }
                            recs.push((i, t, ok));
                            mine += 1;
                            ok_here += usize::from(ok);
                        }
                        if mine > 0 {
                            slots.push((t, ok_here));
                        }
                        next += 1;
                    }
                    seen.store(recs.len(), Ordering::Release);
                    if stopping {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                (recs, slots, first_unexpected)
            });
            let send = || -> anyhow::Result<(usize, u64, usize)> {
                let sock = UdpSocket::bind("127.0.0.1:0")?;
                sock.connect(node.tpu_addr)?;
                let dp = node.dataplane;
                let verify_base = dp.verify_in.load(Ordering::Relaxed);
                let start = Instant::now();
                let start_ns = dataplane::monotonic_ns();
                let mut sent = 0usize;
                let mut last_burst = 0;
                for (b, burst) in wires.chunks(SEND_BURST).enumerate() {
                    match pace {
                        Pace::Window => {
                            while (sent as u64)
                                .saturating_sub(dp.verify_in.load(Ordering::Relaxed) - verify_base)
                                > SEND_WINDOW
                            {
                                std::thread::yield_now();
                            }
                        }
                        Pace::Rate(rate) => {
                            let due = start + Duration::from_secs_f64(sent as f64 / rate);
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                        }
                    }
                    send_ns[b].store(dataplane::monotonic_ns(), Ordering::Relaxed);
                    send_burst(&sock, burst)?;
                    sent += burst.len();
                    last_burst = burst.len();
                }
                let deadline = Instant::now() + COMMIT_TIMEOUT;
                let (mut last, mut last_change) = (0, Instant::now());
                loop {
                    let c = seen.load(Ordering::Acquire);
                    if c >= txs.len() || Instant::now() > deadline {
                        break;
                    }
                    if c != last {
                        (last, last_change) = (c, Instant::now());
                    } else if last_change.elapsed() > STALL {
                        break; // nothing more will come: some were dropped
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok((sent, start_ns, last_burst))
            };
            let sent = send();
            stop.store(true, Ordering::Release);
            let polled = poller.join().expect("poller");
            let (sent, start_ns, last_burst) = sent?;
            Ok((sent, start_ns, last_burst, polled))
        })?;
    let (recs, slots, first_unexpected) = polled;
    let ok = recs.iter().filter(|r| r.2).count();
    let unexpected = recs
        .iter()
        .filter(|r| r.2 != txs[r.0 as usize].expect_ok)
        .count();
    let last_commit = recs.iter().map(|r| r.1).max().unwrap_or(start_ns);
    let elapsed_s = last_commit.saturating_sub(start_ns) as f64 / 1e9;
    let latency_us = recs
        .iter()
        .map(|&(i, t, _)| {
            t.saturating_sub(send_ns[i as usize / SEND_BURST].load(Ordering::Relaxed)) / 1_000
        })
        .collect();
    let window_tps = match (slots.first(), slots.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => (ok - a.1) as f64 / ((b.0 - a.0) as f64 / 1e9),
        _ => ok as f64 / elapsed_s.max(1e-9),
    };
    let bursts = sent.div_ceil(SEND_BURST);
    let last_start = send_ns
        .get(bursts.saturating_sub(1))
        .map_or(start_ns, |a| a.load(Ordering::Relaxed));
    let offered_tps = if bursts > 1 && last_start > start_ns {
        (sent - last_burst) as f64 / ((last_start - start_ns) as f64 / 1e9)
    } else {
        0.0
    };
    Ok(Driven {
        sent,
        offered_tps,
        committed: recs.len(),
        ok,
        failed: recs.len() - ok,
        unexpected,
        first_unexpected,
        elapsed_s,
        window_tps,
        latency_us,
    })
}

/// Busy, idle and backpressure ns of every tile.
fn tile_times(node: &Node) -> Vec<(f64, f64, f64)> {
    node.metrics
        .tiles()
        .into_iter()
        .map(|(_, t)| {
            (
                t.busy_ns.load(Ordering::Relaxed) as f64,
                t.idle_ns.load(Ordering::Relaxed) as f64,
                t.backpressure_ns.load(Ordering::Relaxed) as f64,
            )
        })
        .collect()
}

/// Busy share of each tile kind since `before` (busy includes time preempted by the other
/// tiles: on 2 cores the shares add up past 100%).
fn busy_since(node: &Node, before: &[(f64, f64, f64)]) -> BusyShares {
    let mut busy = BusyShares::default();
    for ((name, _), ((b1, i1, p1), (b0, i0, p0))) in node
        .metrics
        .tiles()
        .into_iter()
        .zip(tile_times(node).into_iter().zip(before))
    {
        let b = b1 - b0;
        let all = (b + i1 - i0 + p1 - p0).max(1.0);
        let share = 100.0 * b / all;
        match name.split('-').next().unwrap_or("") {
            "verify" => busy.verify += share,
            "bank" => busy.bank += share,
            "worker" => busy.workers += share,
            "commit" => busy.commit += share,
            _ => {}
        }
    }
    busy
}

pub(crate) fn disjoint_tx(payer: &Keypair, blockhash: solana_hash::Hash) -> SignedTx {
    let ix = solana_system_interface::instruction::transfer(
        &payer.pubkey(),
        &Pubkey::new_unique(),
        1_000_000,
    );
    let tx = Transaction::new(
        &[payer],
        Message::new(&[ix], Some(&payer.pubkey())),
        blockhash,
    );
    SignedTx {
        signature: tx.signatures[0],
        wire: bincode::serialize(&tx).expect("serializes"),
        expect_ok: true,
    }
}

pub(crate) fn check(phase: &str, d: &Driven) -> anyhow::Result<()> {
    tracing::info!(
        phase,
        sent = d.sent,
        committed = d.committed,
        ok = d.ok,
        failed = d.failed,
        offered_tps = d.offered_tps,
        tps = d.tps(),
        window_tps = d.window_tps,
        "phase"
    );
    anyhow::ensure!(
        d.unexpected == 0,
        "{phase}: {} transactions ended otherwise than the workload expects, e.g. {}",
        d.unexpected,
        d.first_unexpected.as_deref().unwrap_or("?")
    );
    Ok(())
}

/// The disjoint workload on a fresh node: warm-up, then saturated, then (optionally) half of
/// the saturated rate.
struct DisjointRun {
    sat: Driven,
    busy: BusyShares,
    /// Receive (net tile) to durable, from the commit tile's histogram, µs.
    p50_sat_us: f64,
    p99_sat_us: f64,
    half: Option<(f64, f64)>,
    obs: Observation,
}

fn disjoint_node(
    a: &BenchArgs,
    workers: usize,
    engine: StorageEngine,
    observe: bool,
    half_load: bool,
) -> anyhow::Result<DisjointRun> {
    let (n, warm) = (a.txs, a.warmup_txs);
    let funded = workload::funded_node(n + warm, |cfg| {
        cfg.storage.engine = engine;
        cfg.runtime.workers = workers;
    })?;
    let (node, payers) = (&funded.node, &funded.payers);
    let sign = |range: std::ops::Range<usize>| -> anyhow::Result<Vec<SignedTx>> {
        let bh = workload::latest_blockhash(node)?;
        Ok(workload::sign_parallel(range, |i| {
            disjoint_tx(&payers[i], bh)
        }))
    };
    if warm > 0 {
        let w = sign(n..n + warm)?;
        check("disjoint warm-up", &drive(node, &w, Pace::Window)?)?;
    }
    let txs = sign(0..n)?;
    let observer = if observe {
        let o = Observer::start(node)?;
        // Let the monitor attach and draw its first frame before the load starts.
        std::thread::sleep(Duration::from_millis(1200));
        Some(o)
    } else {
        None
    };
    let rt = node.runtime.counters;
    rt.commit_latency.reset();
    let before = tile_times(node);
    let sat = drive(node, &txs, Pace::Window)?;
    let busy = busy_since(node, &before);
    let obs = observer.map(Observer::finish).unwrap_or_default();
    check("disjoint", &sat)?;
    let (p50_sat_us, p99_sat_us) = (
        rt.commit_latency.quantile(0.50) as f64,
        rt.commit_latency.quantile(0.99) as f64,
    );
    let half = if half_load {
        // The same payers again, to fresh recipients, at half the saturated rate.
        let h = sign(0..n / 2)?;
        rt.commit_latency.reset();
        check(
            "disjoint half load",
            &drive(node, &h, Pace::Rate(sat.carried_tps() / 2.0))?,
        )?;
        Some((
            rt.commit_latency.quantile(0.50) as f64,
            rt.commit_latency.quantile(0.99) as f64,
        ))
    } else {
        None
    };
    drop(txs);
    let FundedNode { node, .. } = funded;
    node.shutdown();
    Ok(DisjointRun {
        sat,
        busy,
        p50_sat_us,
        p99_sat_us,
        half,
        obs,
    })
}

/// The mixed workload on a fresh node: set-up, warm-up, saturated, then the offered-load sweep.
struct MixedRun {
    sat: Driven,
    /// Overdrafts among the timed transactions: the failures the workload must produce.
    expected_failed: usize,
    sweep: Vec<Driven>,
}

fn mixed_node(a: &BenchArgs, workers: usize) -> anyhow::Result<MixedRun> {
    let (n, warm) = (a.txs, a.warmup_txs);
    let mut mix = Mixed::new(n + warm);
    let senders = std::mem::take(&mut mix.senders);
    let mut funded = workload::funded_node_with(senders, mix.genesis_extra(), |cfg| {
        cfg.storage.engine = a.engine;
        cfg.runtime.workers = workers;
    })?;
    mix.senders = std::mem::take(&mut funded.payers);
    let node = &funded.node;
    for (w, wave) in mix
        .setup(workload::latest_blockhash(node)?)
        .iter()
        .enumerate()
    {
        let d = drive(node, wave, Pace::Window)?;
        check(&format!("set-up wave {}", w + 1), &d)?;
        anyhow::ensure!(
            d.ok == wave.len(),
            "set-up wave {}: {} of {} transactions landed",
            w + 1,
            d.ok,
            wave.len()
        );
    }
    // Every transaction of this node's life gets its own `k`: all messages differ.
    let mut k = 0u64;
    let mut sign = |senders: &[usize]| -> anyhow::Result<Vec<SignedTx>> {
        let bh = workload::latest_blockhash(node)?;
        let k0 = k;
        k += senders.len() as u64;
        Ok(workload::sign_parallel(0..senders.len(), |j| {
            mix.transaction(senders[j], k0 + j as u64, bh)
        }))
    };
    if warm > 0 {
        let w = sign(&(n..n + warm).collect::<Vec<_>>())?;
        check("mixed warm-up", &drive(node, &w, Pace::Window)?)?;
    }
    let timed: Vec<usize> = (0..n).collect();
    let expected_failed = timed
        .iter()
        .filter(|&&i| Kind::of(i) == Kind::Overdraft)
        .count();
    let txs = sign(&timed)?;
    let sat = drive(node, &txs, Pace::Window)?;
    check("mixed", &sat)?;
    drop(txs);
    let mut points = Vec::new();
    let mut next = 0usize;
    for frac in SWEEP {
        let rate = frac * sat.carried_tps();
        let count = ((rate * a.sweep_seconds) as usize).max(4 * SEND_BURST);
        // The timed senders in turn, again from where the last point stopped.
        let senders: Vec<usize> = (next..next + count).map(|j| j % n).collect();
        next += count;
        let txs = sign(&senders)?;
        let d = drive(node, &txs, Pace::Rate(rate))?;
        check(&format!("mixed at {:.0}% offered", frac * 100.0), &d)?;
        points.push(d);
    }
    let FundedNode { node, .. } = funded;
    node.shutdown();
    Ok(MixedRun {
        sat,
        expected_failed,
        sweep: points,
    })
}

/// The CDF of `latency_us` as (ms, fraction) points.
fn cdf(latency_us: &[u64]) -> Vec<(f64, f64)> {
    let mut v = latency_us.to_vec();
    CDF.iter()
        .map(|&q| (percentile(&mut v, q.max(1e-9)) / 1e3, q))
        .collect()
}

/// The default run, `--observed` or `--compare-engines`. (A [`Report`] behind `impl Into`:
/// lib.rs converts every bench's result with `into()`.)
pub fn run(a: &BenchArgs) -> anyhow::Result<impl Into<Report>> {
    let workers = a.workers.max(1);
    if a.observed {
        return run_observed(a, workers).map(Report::from);
    }
    if a.compare_engines {
        return run_engines(a, workers).map(Report::from);
    }
    anyhow::ensure!(a.txs >= 2, "--txs must be at least 2");
    let tiles = appliance::config::Config::default().verify.tiles as f64;
    let mut f: HashMap<&'static str, Vec<f64>> = HashMap::new();
    let mut push = |name: &'static str, v: f64| f.entry(name).or_default().push(v);
    let mut busy: Vec<BusyShares> = Vec::new();
    let mut load_lines = Vec::new();
    let mut cdf_lines = Vec::new();
    for run in 0..a.runs.max(1) {
        // Alternate which goes first: the disjoint or the mixed node, the stages before or
        // after the nodes.
        let stages_first = !run.is_multiple_of(2);
        let stages = || -> anyhow::Result<_> {
            let w = workload::transfers(a.txs, solana_hash::Hash::default());
            let s = super::sigverify::measure(&w.txs, a.warmup_txs, run);
            let x = super::exec::measure(a.txs, workers, a.warmup_txs, run)?;
            Ok((s, x))
        };
        let early = if stages_first { Some(stages()?) } else { None };
        let (d, m) = if run.is_multiple_of(2) {
            let d = disjoint_node(a, workers, a.engine, false, true)?;
            (d, mixed_node(a, workers)?)
        } else {
            let m = mixed_node(a, workers)?;
            (disjoint_node(a, workers, a.engine, false, true)?, m)
        };
        let (s, x) = match early {
            Some(e) => e,
            None => stages()?,
        };
        let e2e = d.sat.tps();
        push("e2e_tps", e2e);
        push("committed", d.sat.committed as f64);
        let (p50, p99) = d.half.unwrap_or_default();
        push("p50_us", p50);
        push("p99_us", p99);
        push("p50_saturated_us", d.p50_sat_us);
        push("p99_saturated_us", d.p99_sat_us);
        busy.push(d.busy);
        push("e2e_tps_realistic", m.sat.tps());
        push("realistic_committed", m.sat.committed as f64);
        push("realistic_failed", m.sat.failed as f64);
        push("realistic_failed_expected", m.expected_failed as f64);
        push("realistic_vs_disjoint", m.sat.tps() / e2e);
        if let Some(h) = m.sweep.get(HALF_LOAD) {
            let mut l = h.latency_us.clone();
            push("realistic_half_load_p50_ms", percentile(&mut l, 0.5) / 1e3);
            push("realistic_half_load_p99_ms", percentile(&mut l, 0.99) / 1e3);
            cdf_lines.push(Line {
                label: format!("run {}", run + 1),
                points: cdf(&h.latency_us),
            });
        }
        if let [.., full, over] = m.sweep.as_slice() {
            push(
                "realistic_overload_vs_full_load",
                over.window_tps / full.window_tps,
            );
        }
        load_lines.push(Line {
            label: format!("run {}", run + 1),
            points: m
                .sweep
                .iter()
                .map(|p| (p.offered_tps, p.window_tps))
                .collect(),
        });
        push("sigverify_tps_per_core", s.exact_per_core);
        push("sigverify_single_tps_per_core", s.single_strict_per_core);
        push("exec_tps_per_worker", x.one_worker_tps);
        push("e2e_vs_verify_stage", e2e / (tiles * s.exact_per_core));
    }
    let med = |name: &str| median(f.get(name).cloned().unwrap_or_default());
    let rows = vec![
        (
            "e2e_tps",
            med("e2e_tps"),
            "tx/s (disjoint transfers, the best case: UDP in to durably committed)",
        ),
        (
            "committed",
            med("committed"),
            "transactions of --txs (disjoint)",
        ),
        (
            "e2e_tps_realistic",
            med("e2e_tps_realistic"),
            "successful tx/s (mixed workload, UDP in to durably committed)",
        ),
        (
            "realistic_committed",
            med("realistic_committed"),
            "transactions of --txs (mixed; succeeded or failed)",
        ),
        (
            "realistic_failed",
            med("realistic_failed"),
            "transactions (mixed; committed with an error, fee charged)",
        ),
        (
            "realistic_failed_expected",
            med("realistic_failed_expected"),
            "transactions (overdrafts sent)",
        ),
        (
            "realistic_vs_disjoint",
            med("realistic_vs_disjoint"),
            "x (median of per-run ratios)",
        ),
        (
            "p50_us",
            med("p50_us"),
            "µs receive to committed, disjoint, at half load",
        ),
        (
            "p99_us",
            med("p99_us"),
            "µs receive to committed, disjoint, at half load",
        ),
        (
            "p50_saturated_us",
            med("p50_saturated_us"),
            "µs receive to committed, disjoint, saturated",
        ),
        (
            "p99_saturated_us",
            med("p99_saturated_us"),
            "µs receive to committed, disjoint, saturated",
        ),
        (
            "realistic_half_load_p50_ms",
            med("realistic_half_load_p50_ms"),
            "ms send to durable, mixed, at half load",
        ),
        (
            "realistic_half_load_p99_ms",
            med("realistic_half_load_p99_ms"),
            "ms send to durable, mixed, at half load",
        ),
        (
            "realistic_overload_vs_full_load",
            med("realistic_overload_vs_full_load"),
            "x (successful tx/s at 125% offered / at 100%; median of per-run ratios)",
        ),
        (
            "sigverify_tps_per_core",
            med("sigverify_tps_per_core"),
            "sig/s (the exact verifier alone, one core)",
        ),
        (
            "sigverify_single_tps_per_core",
            med("sigverify_single_tps_per_core"),
            "sig/s (one-by-one verify_strict)",
        ),
        (
            "exec_tps_per_worker",
            med("exec_tps_per_worker"),
            "tx/s (stage alone)",
        ),
        ("verify_tiles", tiles, "verify tiles (the node's default)"),
        (
            "e2e_vs_verify_stage",
            med("e2e_vs_verify_stage"),
            "x (e2e_tps / (verify tiles x sigverify_tps_per_core))",
        ),
        (
            "busy_verify_pct",
            median(busy.iter().map(|b| b.verify).collect()),
            "% (verify tiles, summed, saturated disjoint run)",
        ),
        (
            "busy_bank_pct",
            median(busy.iter().map(|b| b.bank).collect()),
            "%",
        ),
        (
            "busy_workers_pct",
            median(busy.iter().map(|b| b.workers).collect()),
            "% (summed)",
        ),
        (
            "busy_commit_pct",
            median(busy.iter().map(|b| b.commit).collect()),
            "%",
        ),
        ("txs", a.txs as f64, "transactions per timed phase"),
        (
            "warmup_txs",
            a.warmup_txs as f64,
            "untimed, per node, first",
        ),
        ("cores", cores(), "cores on this machine"),
        ("workers", workers as f64, "SVM workers"),
    ];
    Ok(Report {
        rows,
        plots: vec![
            Plot {
                id: "throughput-vs-load",
                title: "Mixed workload: successful tx/s committed against tx/s offered".into(),
                x_label: "offered tx/s",
                y_label: "successful tx/s durably committed",
                lines: load_lines,
            },
            Plot {
                id: "latency-cdf",
                title: "Mixed workload at half load: send to durable commit".into(),
                x_label: "latency (ms)",
                y_label: "fraction of transactions",
                lines: cdf_lines,
            },
        ],
    })
}

/// The device-array engine and the log store alternate; the ratio is taken per pair.
fn run_engines(a: &BenchArgs, workers: usize) -> anyhow::Result<super::Rows> {
    let (mut array, mut log, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..a.runs.max(1) {
        let go = |engine| -> anyhow::Result<f64> {
            Ok(disjoint_node(a, workers, engine, false, false)?.sat.tps())
        };
        let (r, l) = if run.is_multiple_of(2) {
            let l = go(StorageEngine::Log)?;
            (go(StorageEngine::Array)?, l)
        } else {
            let r = go(StorageEngine::Array)?;
            (r, go(StorageEngine::Log)?)
        };
        ratio.push(r / l);
        array.push(r);
        log.push(l);
    }
    Ok(vec![
        ("e2e_tps_array", median(array), "tx/s (device-array engine)"),
        ("e2e_tps_log", median(log), "tx/s (log store)"),
        (
            "array_vs_log",
            median(ratio),
            "x (median of per-pair ratios; target >= 0.9)",
        ),
        ("cores", cores(), "cores on this machine"),
    ])
}

/// Plain and observed runs alternate; the throughput ratio is taken per pair, and the
/// observers' own CPU is reported as a share of the machine.
fn run_observed(a: &BenchArgs, workers: usize) -> anyhow::Result<super::Rows> {
    let mut plain = Vec::new();
    let mut observed = Vec::new();
    let mut ratio = Vec::new();
    let mut cpu_share = Vec::new();
    for run in 0..a.runs.max(1) {
        let observed_first = !run.is_multiple_of(2);
        let go = |observe| disjoint_node(a, workers, StorageEngine::Array, observe, false);
        let (p, o) = if observed_first {
            let o = go(true)?;
            (go(false)?, o)
        } else {
            let p = go(false)?;
            (p, go(true)?)
        };
        ratio.push(o.sat.tps() / p.sat.tps());
        plain.push(p.sat.tps());
        observed.push(o.sat.tps());
        cpu_share.push(100.0 * o.obs.cpu_s / (o.obs.wall_s * cores()));
    }
    Ok(vec![
        ("e2e_tps_plain", median(plain), "tx/s"),
        (
            "e2e_tps_observed",
            median(observed),
            "tx/s (scraped every 1 s + monitor attached)",
        ),
        (
            "observed_vs_plain",
            median(ratio),
            "x (median of per-pair ratios)",
        ),
        (
            "observer_cpu_percent",
            median(cpu_share),
            "% of the machine's CPU (scraper, endpoint, monitor)",
        ),
        ("cores", cores(), "cores on this machine"),
    ])
}
