//! The whole appliance under load: pre-signed transfers from distinct payers sent over UDP to
//! a running node (net → verify → bank → workers → commit), measured until every one is
//! durably committed. The stages are then measured alone in the same run for comparison.

use super::{BenchArgs, Rows, cores, median, workload};
use appliance::config::{Config, StorageEngine};
use appliance::node::Node;
use runtime::chain::Commitment;
use solana_keypair::Keypair;
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_transaction::Transaction;
use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Packets allowed between the sender and the verify tiles: keeps the kernel socket buffer
/// and the net → verify rings from overflowing, so the run measures throughput, not drops.
const SEND_WINDOW: u64 = 4096;
const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Datagrams per `sendmmsg`: the load generator shares the machine, so it should be cheap.
const SEND_BURST: usize = 32;

/// Send every datagram of `burst` on the connected socket with `sendmmsg` calls.
pub(crate) fn send_burst(sock: &UdpSocket, burst: &[Vec<u8>]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut iovs: Vec<libc::iovec> = burst
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
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

struct E2e {
    busy: BusyShares,
    tps: f64,
    committed: u64,
    p50_us: f64,
    p99_us: f64,
}

pub(crate) fn signed(payers: &[Keypair], blockhash: solana_hash::Hash) -> Vec<Vec<u8>> {
    let chunk = payers.len().div_ceil(2).max(1);
    std::thread::scope(|s| {
        let hs: Vec<_> = payers
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|p| {
                            let ix = solana_system_interface::instruction::transfer(
                                &p.pubkey(),
                                &Pubkey::new_unique(),
                                1_000_000,
                            );
                            let tx = Transaction::new(
                                &[p],
                                Message::new(&[ix], Some(&p.pubkey())),
                                blockhash,
                            );
                            bincode::serialize(&tx).expect("serializes")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("signer"))
            .collect()
    })
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

/// `rate`: transactions per second to send at; `None` = as fast as the pipeline takes them.
fn e2e_once(
    n: usize,
    workers: usize,
    rate: Option<f64>,
    engine: StorageEngine,
) -> anyhow::Result<E2e> {
    e2e_observed(n, workers, rate, false, engine).map(|(e, _)| e)
}

fn e2e_observed(
    n: usize,
    workers: usize,
    rate: Option<f64>,
    observe: bool,
    engine: StorageEngine,
) -> anyhow::Result<(E2e, Observation)> {
    let dir = tempfile::tempdir()?;
    let mut cfg = Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    cfg.storage.engine = engine;
    cfg.net.bind = "127.0.0.1:0".parse()?;
    cfg.runtime.workers = workers;
    let payers: Vec<Keypair> = (0..n).map(|_| Keypair::new()).collect();
    let node = Node::start_with_genesis(
        cfg,
        payers
            .iter()
            .map(|p| (p.pubkey(), workload::PAYER_LAMPORTS))
            .collect(),
    )?;
    let head = node
        .runtime
        .chain
        .latest_header(Commitment::Processed)
        .ok_or_else(|| anyhow::anyhow!("no slot"))?;
    let txs = signed(&payers, head.blockhash);
    let observer = if observe {
        Some(Observer::start(&node)?)
    } else {
        None
    };
    // Let the monitor attach and draw its first frame before the load starts.
    if observe {
        std::thread::sleep(Duration::from_millis(1200));
    }
    let dp = node.dataplane;
    let rt = node.runtime.counters;
    rt.commit_latency.reset();
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(node.tpu_addr)?;
    let tiles_before: Vec<(f64, f64, f64)> = node
        .metrics
        .tiles()
        .into_iter()
        .map(|(_, t)| {
            (
                t.busy_ns.load(Ordering::Relaxed) as f64,
                t.idle_ns.load(Ordering::Relaxed) as f64,
                t.backpressure_ns.load(Ordering::Relaxed) as f64,
            )
        })
        .collect();
    let start = Instant::now();
    let mut sent = 0u64;
    for burst in txs.chunks(SEND_BURST) {
        while sent.saturating_sub(dp.verify_in.load(Ordering::Relaxed)) > SEND_WINDOW {
            std::thread::yield_now();
        }
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(sent as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        send_burst(&sock, burst)?;
        sent += burst.len() as u64;
    }
    let target = n as u64;
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    let mut last = rt.committed.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while last < target && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        let c = rt.committed.load(Ordering::Relaxed);
        if c != last {
            last = c;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_secs(5) {
            break; // nothing more will come: some were dropped
        }
    }
    let elapsed = last_change.duration_since(start).as_secs_f64();
    let committed = rt.committed.load(Ordering::Relaxed);
    let obs = observer.map(Observer::finish).unwrap_or_default();
    // Busy share of each tile kind during the load (busy includes time preempted by the other
    // tiles: on 2 cores the shares add up past 100%).
    let mut busy = BusyShares::default();
    for ((name, t), (b0, i0, p0)) in node.metrics.tiles().into_iter().zip(&tiles_before) {
        let b = t.busy_ns.load(Ordering::Relaxed) as f64 - b0;
        let all = (b + t.idle_ns.load(Ordering::Relaxed) as f64 - i0
            + t.backpressure_ns.load(Ordering::Relaxed) as f64
            - p0)
            .max(1.0);
        let share = 100.0 * b / all;
        let kind = name.split('-').next().unwrap_or("");
        match kind {
            "verify" => busy.verify += share,
            "bank" => busy.bank += share,
            "worker" => busy.workers += share,
            "commit" => busy.commit += share,
            _ => {}
        }
    }
    let out = E2e {
        busy,
        tps: committed as f64 / elapsed,
        committed,
        p50_us: rt.commit_latency.quantile(0.50) as f64,
        p99_us: rt.commit_latency.quantile(0.99) as f64,
    };
    node.shutdown();
    Ok((out, obs))
}

pub fn run(a: &BenchArgs) -> anyhow::Result<Rows> {
    let workers = a.workers.max(1);
    let mut e2e = Vec::new();
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut p50_sat = Vec::new();
    let mut p99_sat = Vec::new();
    let mut committed = Vec::new();
    let mut sv = Vec::new();
    let mut sv_single = Vec::new();
    let mut exec = Vec::new();
    let mut ratio = Vec::new();
    let mut busy: Vec<BusyShares> = Vec::new();
    let stage_txs = a.txs.clamp(1_000, 40_000);
    if a.observed {
        return run_observed(a, workers);
    }
    if a.compare_engines {
        return run_engines(a, workers);
    }
    for _ in 0..a.runs.max(1) {
        let r = e2e_once(a.txs, workers, None, a.engine)?;
        // Latency at half the measured saturation rate: what a client sees when the
        // appliance is not overloaded.
        let half = e2e_once(a.txs / 2, workers, Some(r.tps / 2.0), a.engine)?;
        // The stages alone, same run, after the node has stopped.
        let w = workload::transfers(stage_txs.min(10_000), solana_hash::Hash::default());
        let s = super::sigverify::measure(&w.txs);
        let x = super::exec::measure(stage_txs, workers)?;
        let slowest = s.exact_per_core.min(x.one_worker_tps);
        ratio.push(r.tps / slowest);
        e2e.push(r.tps);
        busy.push(r.busy);
        p50.push(half.p50_us);
        p99.push(half.p99_us);
        p50_sat.push(r.p50_us);
        p99_sat.push(r.p99_us);
        committed.push(r.committed as f64);
        sv.push(s.exact_per_core);
        sv_single.push(s.single_strict_per_core);
        exec.push(x.one_worker_tps);
    }
    Ok(vec![
        ("e2e_tps", median(e2e), "tx/s (UDP in to durably committed)"),
        ("committed", median(committed), "transactions of --txs"),
        (
            "p50_us",
            median(p50),
            "µs receive to committed, at half load",
        ),
        (
            "p99_us",
            median(p99),
            "µs receive to committed, at half load",
        ),
        (
            "p50_saturated_us",
            median(p50_sat),
            "µs receive to committed, saturated",
        ),
        (
            "p99_saturated_us",
            median(p99_sat),
            "µs receive to committed, saturated",
        ),
        (
            "sigverify_tps_per_core",
            median(sv),
            "sig/s (the exact verifier alone)",
        ),
        (
            "sigverify_single_tps_per_core",
            median(sv_single),
            "sig/s (one-by-one verify_strict)",
        ),
        ("exec_tps_per_worker", median(exec), "tx/s (stage alone)"),
        (
            "e2e_vs_slowest_stage",
            median(ratio),
            "x (e2e / slowest per-core stage)",
        ),
        (
            "busy_verify_pct",
            median(busy.iter().map(|b| b.verify).collect()),
            "% (verify tiles, summed, saturated run)",
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
        ("cores", cores(), "cores on this machine"),
        ("workers", workers as f64, "SVM workers"),
    ])
}

/// The device-array engine and the log store alternate; the ratio is taken per pair.
fn run_engines(a: &BenchArgs, workers: usize) -> anyhow::Result<Rows> {
    let (mut array, mut log, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.runs.max(1) {
        let (l, _) = e2e_observed(a.txs, workers, None, false, StorageEngine::Log)?;
        let (r, _) = e2e_observed(a.txs, workers, None, false, StorageEngine::Array)?;
        ratio.push(r.tps / l.tps);
        array.push(r.tps);
        log.push(l.tps);
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
fn run_observed(a: &BenchArgs, workers: usize) -> anyhow::Result<Rows> {
    let mut plain = Vec::new();
    let mut observed = Vec::new();
    let mut ratio = Vec::new();
    let mut cpu_share = Vec::new();
    for _ in 0..a.runs.max(1) {
        let (p, _) = e2e_observed(a.txs, workers, None, false, StorageEngine::Array)?;
        let (o, obs) = e2e_observed(a.txs, workers, None, true, StorageEngine::Array)?;
        ratio.push(o.tps / p.tps);
        plain.push(p.tps);
        observed.push(o.tps);
        cpu_share.push(100.0 * obs.cpu_s / (obs.wall_s * cores()));
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
