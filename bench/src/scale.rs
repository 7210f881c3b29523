//! `bench scale`: throughput of 1, 2, 3, 4 appliance processes in one etcd-coordinated
//! cluster on app-partitioned load, each node confined to the same CPU quota (a cgroup's CFS
//! quota), so a 2-core machine can host four "machines" of equal size.
//!
//! Each size starts a fresh etcd (Debian's `etcd`), creates the cluster (64 partitions dealt
//! round-robin), starts the nodes (`gigacompute run`, this binary) and moves each into its
//! own cgroup. Each node's load is its own: fee payers and payees in partitions it owns (each
//! transfer within one partition, so that moving a partition never splits one),
//! funded by its own faucet, transfers sent over UDP to its own port at the same offered rate
//! per node (1.5x what one confined node executes, measured first). Throughput is what the
//! nodes executed in the window (getTransactionCount before and after, summed), so a
//! transaction dropped anywhere is not counted. The sender (this process) and etcd run
//! outside the quotas, on what the nodes leave of the machine. At the largest size the load
//! is sent once more to the wrong nodes (each node's transactions to the next node, which
//! forwards them over UDP to their owner): the cost of the extra hop.

use crate::{Line, Plot, Report, Rows};
use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct ScaleArgs {
    /// Cluster sizes measured, in each run (the order reversed every other run).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4")]
    pub nodes: Vec<usize>,
    /// Each node's CPU quota, percent of one core (its cgroup's CFS quota).
    #[arg(long, default_value_t = 35)]
    pub cpu_quota_pct: u32,
    /// Seconds measured at each size, after the warm-up.
    #[arg(long, default_value_t = 8.0)]
    pub seconds: f64,
    #[arg(long, default_value_t = 2.0)]
    pub warmup_seconds: f64,
    /// Runs; figures are medians.
    #[arg(long, default_value_t = 2)]
    pub runs: usize,
    /// The offered rate per node, tx/s; default: 1.5x what one confined node executes when
    /// offered twice its probe rate (measured first).
    #[arg(long)]
    pub offered_per_node: Option<f64>,
    /// Partition moves at the largest size, under its load, after its window (their pauses
    /// are measured; the throughput window is not disturbed).
    #[arg(long, default_value_t = 12)]
    pub moves: usize,
    /// Cross-partition transfers at the largest size, after its moves and under its load,
    /// one at a time, each over two partitions not used before and owned by different nodes:
    /// the time each waits for co-location (its partitions gathering) and its execution.
    #[arg(long, default_value_t = 6)]
    pub colocate_samples: usize,
    /// Fee payers per node.
    #[arg(long, default_value_t = 256)]
    pub payers: usize,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
}

const PARTITIONS: u16 = 64;
/// What the sender budgets per partition move after the window.
const MOVE_SECONDS: f64 = 1.0;
/// Payees in each partition (a node owns 64 / n partitions).
const PAYEES_PER_PARTITION: usize = 4;
/// What the sender budgets for a failover: the lease (5 s) and the takeover.
const FAILOVER_SECONDS: f64 = 15.0;
const SOL: u64 = 1_000_000_000;

pub fn run(a: &ScaleArgs) -> Result<Report> {
    let etcd_bin = which("etcd").context("bench scale needs etcd (Debian's etcd-server)")?;
    if a.nodes.is_empty() || a.nodes.iter().any(|&n| n == 0 || n > 8) {
        bail!("--nodes: sizes 1..=8");
    }
    // What one confined node executes when offered more than it can: the offered rate per
    // node for every size.
    let offered = match a.offered_per_node {
        Some(o) => o,
        None => {
            let probe = measure(&etcd_bin, 1, a, 20_000.0, a.seconds / 2.0, false, 0, false)?;
            let probe = measure(
                &etcd_bin,
                1,
                a,
                probe.tps * 2.0,
                a.seconds / 2.0,
                false,
                0,
                false,
            )?;
            tracing::info!(capacity = probe.tps, "bench scale: one node's capacity");
            (probe.tps * 1.5).max(100.0)
        }
    };
    let mut by_size: Vec<(usize, Vec<f64>)> = a.nodes.iter().map(|&n| (n, Vec::new())).collect();
    let largest = a.nodes.iter().copied().max().unwrap_or(1);
    let mut forwarded = Vec::new();
    let mut pauses: Vec<f64> = Vec::new();
    let mut waits: Vec<f64> = Vec::new();
    let mut failovers: Vec<f64> = Vec::new();
    for run in 0..a.runs.max(1) {
        let mut order: Vec<usize> = (0..by_size.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let n = by_size[i].0;
            let moves = if n == largest && n > 1 { a.moves } else { 0 };
            let m = measure(
                &etcd_bin,
                n,
                a,
                offered * n as f64,
                a.seconds,
                false,
                moves,
                false,
            )?;
            pauses.extend(m.pauses.iter().flatten());
            waits.extend(&m.colocate_waits);
            tracing::info!(nodes = n, tps = m.tps, per_node = ?m.per_node, colocate_waits_ms = ?m.colocate_waits, "bench scale");
            by_size[i].1.push(m.tps);
        }
        if largest > 1 {
            let m = measure(
                &etcd_bin,
                largest,
                a,
                offered * largest as f64,
                a.seconds,
                true,
                0,
                false,
            )?;
            tracing::info!(
                nodes = largest,
                tps = m.tps,
                "bench scale: every transaction sent to a node that does not own it"
            );
            forwarded.push(m.tps);
            // Failover: three nodes (or fewer) under the same load, the last killed -9.
            let n = largest.min(3);
            let m = measure(
                &etcd_bin,
                n,
                a,
                offered * n as f64,
                a.seconds / 2.0,
                false,
                0,
                true,
            )?;
            tracing::info!(nodes = n, failover_s = ?m.failover, "bench scale: kill -9 of a loaded node");
            failovers.extend(m.failover);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n.is_multiple_of(2) {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        } else {
            v[n / 2]
        }
    };
    let tps: Vec<(usize, f64)> = by_size.iter().map(|(n, v)| (*n, median(v))).collect();
    let one = tps.iter().find(|(n, _)| *n == 1).map(|(_, t)| *t);
    let mut rows: Rows = Vec::new();
    for (n, t) in &tps {
        rows.push((crate::workload::leak(format!("tps_{n}")), *t, "tx/s"));
    }
    if let Some(one) = one {
        for (n, t) in tps.iter().filter(|(n, _)| *n > 1) {
            rows.push((
                crate::workload::leak(format!("scaling_efficiency_{n}")),
                t / (*n as f64 * one),
                "ratio",
            ));
        }
    }
    if !forwarded.is_empty() {
        let f = median(&forwarded);
        let direct = tps
            .iter()
            .find(|(n, _)| *n == largest)
            .map_or(f, |(_, t)| *t);
        rows.push((
            crate::workload::leak(format!("tps_{largest}_via_non_owner")),
            f,
            "tx/s",
        ));
        rows.push(("via_non_owner_vs_direct", f / direct, "ratio"));
    }
    if let Some(pct) = percentiles(&pauses) {
        rows.push(("migration_pause_ms_p50", pct(0.5), "ms"));
        rows.push(("migration_pause_ms_p99", pct(0.99), "ms"));
        rows.push(("migration_pause_ms_max", pct(1.0), "ms"));
        rows.push(("migrations", pauses.len() as f64, "moves"));
    }
    if let Some(pct) = percentiles(&waits) {
        rows.push(("colocate_wait_ms_p50", pct(0.5), "ms"));
        rows.push(("colocate_wait_ms_max", pct(1.0), "ms"));
        rows.push(("colocate_samples", waits.len() as f64, "transfers"));
    }
    if !failovers.is_empty() {
        rows.push(("failover_s", median(&failovers), "s"));
        rows.push((
            "failover_lease_ttl_s",
            appliance::Config::default().cluster.lease_ttl_s as f64,
            "s",
        ));
    }
    rows.push(("offered_per_node", offered, "tx/s"));
    rows.push((
        "cpu_quota_per_node",
        f64::from(a.cpu_quota_pct),
        "% of a core",
    ));
    rows.push(("runs", a.runs.max(1) as f64, "runs"));
    let plots = vec![Plot {
        id: "throughput",
        title: format!(
            "Executed transfers per second, each node confined to {}% of a core",
            a.cpu_quota_pct
        ),
        x_label: "nodes",
        y_label: "tx/s",
        lines: vec![
            Line {
                label: "measured".into(),
                points: tps.iter().map(|(n, t)| (*n as f64, *t)).collect(),
            },
            Line {
                label: "linear (n x one node)".into(),
                points: tps
                    .iter()
                    .map(|(n, _)| (*n as f64, one.unwrap_or(0.0) * *n as f64))
                    .collect(),
            },
        ],
    }];
    Ok(Report { rows, plots })
}

/// The q-quantile of `v` (nearest rank), or `None` when it is empty.
fn percentiles(v: &[f64]) -> Option<impl Fn(f64) -> f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then_some(move |q: f64| v[((v.len() - 1) as f64 * q).round() as usize])
}

struct Measured {
    tps: f64,
    per_node: Vec<f64>,
    /// Pauses of the partition moves made after the window, ms.
    pauses: Vec<Option<f64>>,
    /// Cross-partition transfers after the moves: ms from the send to its status.
    colocate_waits: Vec<f64>,
    /// With `kill_one`: seconds from kill -9 of the last node to the first transfer of its
    /// partitions executed by its follower.
    failover: Option<f64>,
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

fn free_port(udp: bool) -> Result<u16> {
    Ok(if udp {
        UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    })
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM first: a node closes its slot and leaves the cluster.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A CPU cgroup with a CFS quota (cgroup v2 `cpu.max`, or v1's `cpu` controller).
struct CpuGroup(PathBuf);

impl CpuGroup {
    fn new(name: &str, quota_pct: u32) -> Result<Self> {
        let quota = u64::from(quota_pct) * 1_000;
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
        let (dir, files): (PathBuf, Vec<(&str, String)>) = if v2.exists() {
            (
                Path::new("/sys/fs/cgroup").join(name),
                vec![("cpu.max", format!("{quota} 100000"))],
            )
        } else {
            (
                Path::new("/sys/fs/cgroup/cpu").join(name),
                vec![
                    ("cpu.cfs_period_us", "100000".into()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ],
            )
        };
        std::fs::create_dir_all(&dir).with_context(|| {
            format!(
                "creating cgroup {} (bench scale needs root and the cpu controller)",
                dir.display()
            )
        })?;
        for (f, v) in files {
            std::fs::write(dir.join(f), v)
                .with_context(|| format!("writing {}/{f}", dir.display()))?;
        }
        Ok(Self(dir))
    }

    fn add(&self, pid: u32) -> Result<()> {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("moving {pid} into {}", self.0.display()))
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn rpc(addr: SocketAddr, method: &str, params: Value) -> Result<Value> {
    cluster::peer::call(addr, "/", method, &params, 64 << 20)
        .map_err(|e| anyhow::anyhow!("{method} at {addr}: {}", e.message))
}

struct ClusterNode {
    id: String,
    dir: PathBuf,
    rpc: SocketAddr,
    tpu: SocketAddr,
}

fn start_etcd(bin: &Path, dir: &Path) -> Result<(Proc, String)> {
    let client = format!("http://127.0.0.1:{}", free_port(false)?);
    let peer = format!("http://127.0.0.1:{}", free_port(false)?);
    let log = std::fs::File::create(dir.join("etcd.log"))?;
    let child = Command::new(bin)
        .args(["--name", "b", "--data-dir"])
        .arg(dir.join("etcd-data"))
        .args([
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("b={peer}")])
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting etcd")?;
    Ok((Proc(child), client))
}

/// Runs `n` nodes offered `offered` tx/s in all for `seconds` after the warm-up; with
/// `via_non_owner`, each node's transactions are sent to the next node, which forwards them.
fn measure(
    etcd_bin: &Path,
    n: usize,
    a: &ScaleArgs,
    offered: f64,
    seconds: f64,
    via_non_owner: bool,
    moves: usize,
    kill_one: bool,
) -> Result<Measured> {
    let tmp = tempfile::tempdir()?;
    let (_etcd, endpoint) = start_etcd(etcd_bin, tmp.path())?;
    let ids: Vec<String> = (1..=n).map(|i| format!("s{i}")).collect();
    let slot_ms = appliance::Config::default().runtime.slot_ms;
    let map = {
        let endpoints = vec![endpoint.clone()];
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = cluster::etcd::block_on(async {
                let mut c = cluster::etcd::connect(&endpoints).await?;
                cluster::etcd::init(&mut c, "bench", &ids, PARTITIONS, slot_ms).await
            });
            match r {
                Ok((_, map)) => break map,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!("waiting for etcd: {e}");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => bail!("creating the cluster in etcd: {e}"),
            }
        }
    };
    let exe = std::env::current_exe()?;
    let mut nodes = Vec::new();
    // Dropped in reverse: the processes are killed before their cgroups are removed (a
    // cgroup with a process in it cannot be), on every way out of this function.
    let mut groups = Vec::new();
    let mut procs = Vec::new();
    for id in &ids {
        let dir = tmp.path().join(id);
        std::fs::create_dir_all(&dir)?;
        let rpc_addr: SocketAddr = format!("127.0.0.1:{}", free_port(false)?).parse()?;
        let tpu: SocketAddr = format!("127.0.0.1:{}", free_port(true)?).parse()?;
        let config = format!(
            "data_dir = \"{}\"\n[net]\nbind = \"{tpu}\"\n[rpc]\nbind = \"{rpc_addr}\"\n\
             [metrics]\nenabled = false\n[pubsub]\nenabled = false\n\
             [storage]\ndevice_bytes = {}\n\
             [cluster]\nenabled = true\nname = \"bench\"\nnode_id = \"{id}\"\netcd = [\"{endpoint}\"]\n\
             rebalance = false\nreplicate = true\n",
            dir.join("data").display(),
            512u64 << 20
        );
        std::fs::write(dir.join("config.toml"), config)?;
        let log = std::fs::File::create(dir.join("node.log"))?;
        let child = Command::new(&exe)
            .args(["run", "--config"])
            .arg(dir.join("config.toml"))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?;
        let group = CpuGroup::new(
            &format!("gigacompute-bench-scale-{}-{id}", std::process::id()),
            a.cpu_quota_pct,
        )?;
        group.add(child.id())?;
        procs.push(Proc(child));
        groups.push(group);
        nodes.push(ClusterNode {
            id: id.clone(),
            dir,
            rpc: rpc_addr,
            tpu,
        });
    }
    for (node, proc) in nodes.iter().zip(procs.iter_mut()) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = proc.0.try_wait() {
                bail!(
                    "node {} exited ({status}): {}",
                    node.id,
                    tail(&node.dir.join("node.log"))
                );
            }
            if rpc(node.rpc, "getHealth", json!([])).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "node {} did not come up: {}",
                    node.id,
                    tail(&node.dir.join("node.log"))
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Each node's accounts: payers and payees in partitions it owns.
    let owned = |id: &str, count: usize| -> Vec<Keypair> {
        std::iter::repeat_with(Keypair::new)
            .filter(|k| map.owner_of(&k.pubkey().to_bytes()) == id)
            .take(count)
            .collect()
    };
    let keys: Vec<(Vec<Keypair>, Vec<Pubkey>)> = ids
        .iter()
        .map(|id| {
            let payers = owned(id, a.payers.max(1));
            // Payees of every partition the node owns, PAYEES_PER_PARTITION each.
            let payees = map
                .owners
                .iter()
                .enumerate()
                .filter(|(_, o)| *o == id)
                .flat_map(|(p, _)| {
                    std::iter::repeat_with(Pubkey::new_unique)
                        .filter(move |k| {
                            cluster::partition_of(&k.to_bytes(), PARTITIONS) == p as u16
                        })
                        .take(PAYEES_PER_PARTITION)
                })
                .collect();
            (payers, payees)
        })
        .collect();
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    for (node, (payers, payees)) in nodes.iter().zip(&keys) {
        fund(
            node,
            &socket,
            payers
                .iter()
                .map(Keypair::pubkey)
                .chain(payees.iter().copied())
                .collect(),
        )?;
    }
    let blockhash = latest_blockhash(nodes[0].rpc)?;
    let failover_budget = if kill_one { FAILOVER_SECONDS } else { 0.0 };
    let total = ((a.warmup_seconds + seconds + moves as f64 * MOVE_SECONDS + failover_budget)
        * offered
        * 1.1) as usize;
    let per_node = total / n + 1;
    let wires: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .map(|(payers, payees): &(Vec<Keypair>, Vec<Pubkey>)| {
            // Each payer pays a payee of its own partition, so that the moves after the
            // window never split a transfer over two nodes (which co-location would gather).
            let mut by_partition: std::collections::HashMap<u16, Vec<Pubkey>> = Default::default();
            for k in payees {
                by_partition
                    .entry(cluster::partition_of(&k.to_bytes(), PARTITIONS))
                    .or_default()
                    .push(*k);
            }
            crate::workload::sign_all(per_node, |i| {
                let payer = &payers[i % payers.len()];
                let ix = solana_system_interface::instruction::transfer(
                    &payer.pubkey(),
                    &by_partition[&cluster::partition_of(&payer.pubkey().to_bytes(), PARTITIONS)]
                        [i % PAYEES_PER_PARTITION],
                    1 + i as u64,
                );
                solana_transaction::Transaction::new(
                    &[payer],
                    solana_message::Message::new(&[ix], Some(&payer.pubkey())),
                    blockhash,
                )
            })
        })
        .collect();
    // Open loop, on its own thread: every millisecond, what is due to each node.
    let stop = std::sync::atomic::AtomicBool::new(false);
    // After the last node is killed its transfers go to the first node (which forwards them
    // to whoever owns the partitions).
    let victim_dead = std::sync::atomic::AtomicBool::new(false);
    let rate = offered / n as f64;
    let (before, after, elapsed, pauses, colocate_waits, failover) =
        std::thread::scope(|s| -> Result<_> {
            let sender = s.spawn(|| {
                let start = Instant::now();
                let mut sent = vec![0usize; n];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = start.elapsed().as_secs_f64();
                    for j in 0..n {
                        let to = if via_non_owner
                            || (j == n - 1
                                && victim_dead.load(std::sync::atomic::Ordering::Relaxed))
                        {
                            nodes[(j + 1) % n].tpu
                        } else {
                            nodes[j].tpu
                        };
                        let due = ((t * rate) as usize).min(wires[j].len());
                        while sent[j] < due {
                            let _ = socket.send_to(&wires[j][sent[j]], to);
                            sent[j] += 1;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            let run = || -> Result<_> {
                std::thread::sleep(Duration::from_secs_f64(a.warmup_seconds));
                let before = counts(&nodes)?;
                let before_at = Instant::now();
                std::thread::sleep(Duration::from_secs_f64(seconds));
                let after = counts(&nodes)?;
                let elapsed = before_at.elapsed().as_secs_f64();
                let mut pauses = Vec::new();
                for i in 0..moves {
                    let from = &ids[i % n];
                    let to = &ids[(i + 1) % n];
                    let p =
                        map.by_node()[from.as_str()][i / n % map.by_node()[from.as_str()].len()];
                    // The partition may have moved already (an earlier round): move it from its owner.
                    pauses.push(move_and_time(&endpoint, p, to, from)?);
                }
                let colocate_waits = if moves > 0 {
                    colocate_waits(&endpoint, &nodes, &keys[0].0, &socket, a.colocate_samples)?
                } else {
                    Vec::new()
                };
                let failover = if kill_one && n > 1 {
                    // A payee the load pays: in the partition of the victim's first payer (a
                    // partition without a payer has payees nobody pays).
                    let (payers, payees) = &keys[n - 1];
                    let first = cluster::partition_of(&payers[0].pubkey().to_bytes(), PARTITIONS);
                    let probe = *payees
                        .iter()
                        .find(|k| cluster::partition_of(&k.to_bytes(), PARTITIONS) == first)
                        .context("no payee in the first payer's partition")?;
                    let seen = balance(nodes[0].rpc, &probe)?;
                    let pid = procs[n - 1].0.id() as i32;
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    let killed = Instant::now();
                    victim_dead.store(true, std::sync::atomic::Ordering::Relaxed);
                    loop {
                        // Read through the first node: forwarded to the owner, an error while
                        // the owner is down, then answered by the follower that took over.
                        if balance(nodes[0].rpc, &probe).is_ok_and(|b| b > seen) {
                            break Some(killed.elapsed().as_secs_f64());
                        }
                        if killed.elapsed() > Duration::from_secs(60) {
                            tracing::warn!("bench scale: no failover within 60 s");
                            break None;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                } else {
                    None
                };
                Ok((before, after, elapsed, pauses, colocate_waits, failover))
            };
            let r = run();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = sender.join();
            r
        })?;
    let per_node: Vec<f64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b) as f64 / elapsed)
        .collect();
    drop(procs);
    drop(groups);
    // The nodes' logs outlive the run's temporary folder when asked for (investigations).
    if let Some(keep) = std::env::var_os("GIGACOMPUTE_BENCH_SCALE_LOGS") {
        static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let keep = PathBuf::from(keep).join(format!("{run:02}-{n}-nodes"));
        std::fs::create_dir_all(&keep)?;
        for node in &nodes {
            let _ = std::fs::copy(
                node.dir.join("node.log"),
                keep.join(format!("{}.log", node.id)),
            );
        }
    }
    Ok(Measured {
        tps: per_node.iter().sum(),
        per_node,
        pauses,
        colocate_waits,
        failover,
    })
}

/// Cross-partition transfers, one at a time: a payer of `payers` and a fresh payee, their
/// partitions owned by different nodes under the current map and not used by an earlier
/// sample (so each needs a move), sent over UDP to the payer's owner; the wait is from the
/// send to its status at that node (which asks the others), polled every 5 ms.
fn colocate_waits(
    endpoint: &str,
    nodes: &[ClusterNode],
    payers: &[Keypair],
    socket: &UdpSocket,
    samples: usize,
) -> Result<Vec<f64>> {
    let endpoints = vec![endpoint.to_string()];
    let mut used = std::collections::HashSet::new();
    let mut waits = Vec::new();
    for _ in 0..samples {
        let (snap, _) = cluster::etcd::block_on(async {
            let mut c = cluster::etcd::connect(&endpoints).await?;
            cluster::etcd::read(&mut c, "bench").await
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let map = snap.map.context("no map")?;
        let part = |k: &Pubkey| cluster::partition_of(&k.to_bytes(), PARTITIONS);
        let Some(payer) = payers.iter().find(|k| !used.contains(&part(&k.pubkey()))) else {
            break;
        };
        let from = map
            .owner(part(&payer.pubkey()))
            .context("no owner")?
            .to_string();
        let payee = std::iter::repeat_with(Pubkey::new_unique)
            .take(100_000)
            .find(|k| !used.contains(&part(k)) && map.owner(part(k)) != Some(from.as_str()))
            .context("no payee partition left")?;
        used.insert(part(&payer.pubkey()));
        used.insert(part(&payee));
        let node = nodes
            .iter()
            .find(|n| n.id == from)
            .context("payer's owner")?;
        let ix = solana_system_interface::instruction::transfer(&payer.pubkey(), &payee, SOL / 100);
        let tx = solana_transaction::Transaction::new(
            &[payer],
            solana_message::Message::new(&[ix], Some(&payer.pubkey())),
            latest_blockhash(node.rpc)?,
        );
        let sig = tx.signatures[0].to_string();
        let sent = Instant::now();
        socket.send_to(&bincode::serialize(&tx)?, node.tpu)?;
        loop {
            let v = rpc(node.rpc, "getSignatureStatuses", json!([[sig]]))?;
            let status = &v["value"][0];
            if !status.is_null() {
                waits.push(sent.elapsed().as_secs_f64() * 1e3);
                if !status["err"].is_null() {
                    tracing::warn!(%sig, err = %status["err"], "bench scale: a cross-partition transfer failed");
                }
                break;
            }
            if sent.elapsed() > Duration::from_secs(40) {
                // Counted at the bound, so that the figures do not leave it out.
                tracing::warn!(%sig, "bench scale: a cross-partition transfer did not run in 40 s");
                waits.push(sent.elapsed().as_secs_f64() * 1e3);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(waits)
}

/// Moves `partition` to `to` and times its pause: from the source's drain (its record's
/// `drain_unix_ms`) to the flip (the record gone, observed every 2 ms). Skipped (`None`)
/// when `from` no longer owns it.
fn move_and_time(endpoint: &str, partition: u16, to: &str, from: &str) -> Result<Option<f64>> {
    let endpoints = vec![endpoint.to_string()];
    let read = || {
        cluster::etcd::block_on(async {
            let mut c = cluster::etcd::connect(&endpoints).await?;
            cluster::etcd::read(&mut c, "bench").await
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
    };
    let (snap, _) = read()?;
    if snap.map.as_ref().and_then(|m| m.owner(partition)) != Some(from) {
        return Ok(None);
    }
    cluster::etcd::block_on(async {
        let mut c = cluster::etcd::connect(&endpoints).await?;
        cluster::etcd::request_move(&mut c, "bench", partition, to, "bench").await
    })
    .map_err(|e| anyhow::anyhow!("requesting a move: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut drain_ms = None;
    loop {
        let (snap, _) = read()?;
        match snap.migrations.get(&partition) {
            Some((m, _)) => drain_ms = m.drain_unix_ms.or(drain_ms),
            None => {
                let flipped = cluster::clock::unix_ms();
                if snap.map.as_ref().and_then(|m| m.owner(partition)) != Some(to) {
                    bail!("the move of partition {partition} to {to} was given up");
                }
                let began = drain_ms.context("the move's ready state was never seen")?;
                return Ok(Some(flipped.saturating_sub(began) as f64));
            }
        }
        if Instant::now() > deadline {
            bail!("the move of partition {partition} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A balance at processed commitment, through `addr` (forwarded to the owner).
fn balance(addr: SocketAddr, key: &Pubkey) -> Result<u64> {
    let v = rpc(
        addr,
        "getBalance",
        json!([key.to_string(), {"commitment": "processed"}]),
    )?;
    v["value"].as_u64().context("getBalance without a value")
}

fn tail(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    text[text.len().saturating_sub(2000)..].to_string()
}

fn latest_blockhash(addr: SocketAddr) -> Result<Hash> {
    let v = rpc(
        addr,
        "getLatestBlockhash",
        json!([{"commitment": "processed"}]),
    )?;
    let s = v["value"]["blockhash"].as_str().context("no blockhash")?;
    Hash::from_str(s).map_err(|e| anyhow::anyhow!("bad blockhash {s}: {e}"))
}

fn counts(nodes: &[ClusterNode]) -> Result<Vec<u64>> {
    nodes
        .iter()
        .map(|n| {
            rpc(
                n.rpc,
                "getTransactionCount",
                json!([{"commitment": "processed"}]),
            )?
            .as_u64()
            .context("getTransactionCount: not a number")
        })
        .collect()
}

/// Funds `to` (10 SOL each) from the node's own faucet, 20 transfers per transaction, sent
/// again for what has not landed (a datagram can be lost), until every account holds it.
fn fund(node: &ClusterNode, socket: &UdpSocket, to: Vec<Pubkey>) -> Result<()> {
    let faucet =
        appliance::keys::load_or_create(&node.dir.join("data").join("faucet-keypair.json"))?;
    let mut missing = to;
    for _ in 0..30 {
        let blockhash = latest_blockhash(node.rpc)?;
        for chunk in missing.chunks(20) {
            let ixs: Vec<_> = chunk
                .iter()
                .map(|k| {
                    solana_system_interface::instruction::transfer(&faucet.pubkey(), k, 10 * SOL)
                })
                .collect();
            let tx = solana_transaction::Transaction::new(
                &[&faucet],
                solana_message::Message::new(&ixs, Some(&faucet.pubkey())),
                blockhash,
            );
            socket.send_to(&bincode::serialize(&tx)?, node.tpu)?;
        }
        std::thread::sleep(Duration::from_secs(1));
        let mut still = Vec::new();
        for chunk in missing.chunks(100) {
            let keys: Vec<String> = chunk.iter().map(|k| k.to_string()).collect();
            let v = rpc(
                node.rpc,
                "getMultipleAccounts",
                json!([keys, {"commitment": "processed"}]),
            )?;
            for (k, acct) in chunk.iter().zip(v["value"].as_array().context("no value")?) {
                if acct["lamports"].as_u64().unwrap_or(0) < 10 * SOL {
                    still.push(*k);
                }
            }
        }
        missing = still;
        if missing.is_empty() {
            return Ok(());
        }
    }
    bail!(
        "node {}: funding did not land: {}",
        node.id,
        tail(&node.dir.join("node.log"))
    )
}
