//! `bench dataplane`: receive + parse + dedup, packets per second per core, for the DPDK
//! poll-mode path and three kernel UDP paths, alternating in the same run.
//!
//! - DPDK: a net_ring port whose RX and TX queue are one `rte_ring`, loaded with frames of
//!   pre-built signed transfers (Ethernet/IPv4/UDP to the port's address). The appliance's
//!   own RX loop ([`RxQueue::poll`]) runs on one pinned lcore: rx_burst, frame checks, the
//!   transaction parsed in place, the recent-bytes filter. Instead of going to verification,
//!   each accepted mbuf gets a fresh counter written into its signature (so the next pass is
//!   new bytes, not a duplicate) and is sent back into the ring: the loop feeds itself, and
//!   that re-enqueue is counted in the per-packet cost, not subtracted.
//! - Kernel: the same transactions over loopback UDP, each loop feeding itself on its own
//!   core the same way (see `dataplane_kernel.rs` for why, and for the three receivers: the
//!   net tile as shipped, a tuned socket, and GSO+GRO as the best case).
//!
//! Per core = packets / CPU seconds of the measuring thread (on this shared 2-core VM the
//! thread does not get its whole core; the wall-clock rate is reported too). Warm-up first;
//! the order of the paths alternates from run to run; ratios are per run, then the median.
//!
//! Not included on either side: the hand-off to the verify tiles and signature verification
//! (`bench sigverify`, `bench pipeline`).

use super::{Line, Plot, Report, median, workload};
use clap::Args;
use dataplane::parse_transaction;
use std::time::Duration;

#[path = "dataplane_kernel.rs"]
mod kernel;
use kernel::Path;

#[derive(Args, Clone)]
pub struct DataplaneArgs {
    /// Distinct transactions in circulation.
    #[arg(long, default_value_t = 16_384)]
    pub packets: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Runs (each: every path once, the order alternating); figures are medians.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Frames per receive call, every path (the kernel loops also send this many per call).
    #[arg(long, default_value_t = 32)]
    pub burst: u16,
    /// Burst sizes of the per-burst sweep (the chart), each path at each size once per run.
    #[arg(long, value_delimiter = ',', default_values_t = [1u16, 8, 32, 64])]
    pub sweep_bursts: Vec<u16>,
    /// Seconds per sweep measurement; 0 skips the sweep.
    #[arg(long, default_value_t = 0.4)]
    pub sweep_seconds: f64,
    /// Seconds of the untimed warm-up of every path before the first run.
    #[arg(long, default_value_t = 0.5)]
    pub warmup_seconds: f64,
    /// The measured core (the DPDK RX lcore; the kernel loops' core). EAL's main lcore uses
    /// the first other core; the two-core reuseport measurement uses both.
    #[arg(long, default_value_t = 1)]
    pub core: u32,
    /// Entries of the recent-bytes filter (the appliance default).
    #[arg(long, default_value_t = 1 << 19)]
    pub filter_entries: usize,
    /// Take EAL memory from hugepages (reserve them first); default: --no-huge.
    #[arg(long)]
    pub hugepages: bool,
    /// Leave out the AF_XDP port (it needs root, `ip` and `tc` to build its veth pair).
    #[arg(long)]
    pub no_afxdp: bool,
    #[arg(long)]
    pub json: bool,
}

/// The DPDK ports: the ring, and AF_XDP on a veth in a private namespace.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dev {
    Ring,
    AfXdp,
}

/// Write `n` into the first signature (after its compact-u16 count): new bytes, same parse.
fn restamp(tx: &mut [u8], n: u64) {
    tx[1..9].copy_from_slice(&n.to_le_bytes());
}

/// One timed measurement: packets, CPU seconds of the measuring thread(s), wall seconds.
use kernel::Measure;

/// What each run measures, in this order on even runs and reversed on odd ones.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Item {
    Dpdk(Dev),
    Kernel(Path),
    /// The tuned path as an SO_REUSEPORT group over every core.
    TunedAllCores,
}

/// Indexes into the per-item vectors below.
const DPDK: usize = 0;
const AFXDP: usize = 5;
const ITEMS: [Item; 6] = [
    Item::Dpdk(Dev::Ring),
    Item::Kernel(Path::NetTile),
    Item::Kernel(Path::Tuned),
    Item::Kernel(Path::Gro),
    Item::TunedAllCores,
    Item::Dpdk(Dev::AfXdp),
];
const SWEPT: [Item; 5] = [
    Item::Dpdk(Dev::Ring),
    Item::Kernel(Path::NetTile),
    Item::Kernel(Path::Tuned),
    Item::Kernel(Path::Gro),
    Item::Dpdk(Dev::AfXdp),
];

fn label(i: Item) -> &'static str {
    match i {
        Item::Dpdk(Dev::Ring) => "DPDK (net_ring)",
        Item::Dpdk(Dev::AfXdp) => "AF_XDP (DPDK af_xdp PMD, veth)",
        Item::Kernel(p) => p.label(),
        Item::TunedAllCores => "kernel UDP, tuned, all cores",
    }
}

pub fn run(a: &DataplaneArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(a.packets >= 64, "--packets must be at least 64");
    anyhow::ensure!((1..=64).contains(&a.burst), "--burst must be 1..=64");
    anyhow::ensure!(
        a.sweep_bursts.iter().all(|b| (1..=64).contains(b)),
        "--sweep-bursts must be 1..=64"
    );
    anyhow::ensure!(
        a.runs >= 1 && a.seconds > 0.0,
        "--runs and --seconds must be positive"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    anyhow::ensure!(
        cores >= 2 && a.core < cores,
        "needs two cores and --core below {cores}"
    );
    let other = if a.core == 0 { 1 } else { 0 };
    let all_cores: Vec<u32> = std::iter::once(a.core)
        .chain((0..cores).filter(|&c| c != a.core))
        .collect();
    eprintln!("building {} signed transfers ...", a.packets);
    let txs = workload::transfers(a.packets, solana_hash::Hash::new_from_array([7; 32])).txs;
    for t in &txs {
        parse_transaction(t).map_err(|e| anyhow::anyhow!("workload does not parse: {e}"))?;
    }
    let sweep: Vec<u16> = if a.sweep_seconds > 0.0 {
        a.sweep_bursts.clone()
    } else {
        Vec::new()
    };
    let mut bursts = sweep.clone();
    bursts.push(a.burst);
    let mut dp = dpdk::Bench::start(a, other, &txs, &bursts)?;
    let afxdp = dp.has(Dev::AfXdp);
    let active = |i: &Item| afxdp || *i != Item::Dpdk(Dev::AfXdp);
    let mut one = |item: Item, burst: u16, secs: f64| -> anyhow::Result<Measure> {
        let d = Duration::from_secs_f64(secs);
        match item {
            Item::Dpdk(dev) => dp.measure(dev, burst, d),
            Item::Kernel(p) => kernel::measure(p, a, usize::from(burst), &[a.core], &txs, d),
            Item::TunedAllCores => {
                kernel::measure(Path::Tuned, a, usize::from(burst), &all_cores, &txs, d)
            }
        }
    };

    if a.warmup_seconds > 0.0 {
        eprintln!("warm-up ...");
        for item in ITEMS.iter().filter(|i| active(i)) {
            one(*item, a.burst, a.warmup_seconds)?;
        }
    }
    // Per item: per-core and wall Mpps of each run.
    let mut per_core: Vec<Vec<f64>> = vec![Vec::new(); ITEMS.len()];
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); ITEMS.len()];
    let mut share = Vec::new();
    // Per swept item and burst: per-core Mpps of each run.
    let mut swept: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); sweep.len()]; SWEPT.len()];
    for r in 0..a.runs {
        let mut order: Vec<usize> = (0..ITEMS.len()).filter(|&i| active(&ITEMS[i])).collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for &i in &order {
            let m = one(ITEMS[i], a.burst, a.seconds)?;
            per_core[i].push(m.per_cpu() / 1e6);
            wall[i].push(m.per_wall() / 1e6);
            if i == DPDK {
                share.push(m.cpu_s / m.wall_s.max(1e-9));
            }
        }
        let line: Vec<String> = ITEMS
            .iter()
            .enumerate()
            .filter(|(_, it)| active(it))
            .map(|(i, &it)| format!("{} {:.3}", label(it), per_core[i][r]))
            .collect();
        eprintln!("run {}: Mpps per core: {}", r + 1, line.join(", "));
        for (k, &b) in sweep.iter().enumerate() {
            let mut order: Vec<usize> = (0..SWEPT.len()).filter(|&i| active(&SWEPT[i])).collect();
            if (r + k) % 2 == 1 {
                order.reverse();
            }
            for &i in &order {
                let m = one(SWEPT[i], b, a.sweep_seconds)?;
                swept[i][k].push(m.per_cpu() / 1e6);
            }
        }
    }

    let ratios = |j: usize| -> Vec<f64> {
        per_core[DPDK]
            .iter()
            .zip(&per_core[j])
            .map(|(d, k)| d / k)
            .collect()
    };
    let (vs_tile, vs_tuned, vs_gro, vs_afxdp) = (ratios(1), ratios(2), ratios(3), ratios(AFXDP));
    let dpdk = median(per_core[DPDK].clone());
    let m = |v: &Vec<f64>| median(v.clone());
    let mut plots = Vec::new();
    if !sweep.is_empty() {
        plots.push(Plot {
            id: "mpps-vs-burst",
            title: "Receive + parse + dedup on one core, by burst size (medians of runs)".into(),
            x_label: "frames per receive call (burst)",
            y_label: "Mpps per core (per CPU-second)",
            lines: SWEPT
                .iter()
                .enumerate()
                .filter(|(_, it)| active(it))
                .map(|(i, &it)| Line {
                    label: label(it).into(),
                    points: sweep
                        .iter()
                        .enumerate()
                        .map(|(k, &b)| (f64::from(b), median(swept[i][k].clone())))
                        .collect(),
                })
                .collect(),
        });
    }
    let run_line = |name: &str, v: &[f64]| Line {
        label: name.into(),
        points: v
            .iter()
            .enumerate()
            .map(|(r, &x)| ((r + 1) as f64, x))
            .collect(),
    };
    plots.push(Plot {
        id: "per-run-ratios",
        title: format!(
            "DPDK per core / kernel per core, each run (burst {})",
            a.burst
        ),
        x_label: "run",
        y_label: "ratio (x)",
        lines: [
            run_line("vs net tile socket", &vs_tile),
            run_line("vs tuned kernel UDP", &vs_tuned),
            run_line("vs GSO+GRO (best case)", &vs_gro),
            run_line("vs AF_XDP", &vs_afxdp),
        ]
        .into_iter()
        .filter(|l| !l.points.is_empty())
        .collect(),
    });
    let mut rows = vec![
        (
            "dpdk_mpps_per_core",
            dpdk,
            "Mpps per lcore CPU-second (RX+parse+dedup, net_ring)",
        ),
        ("dpdk_mpps_wall", m(&wall[DPDK]), "Mpps per wall second"),
        ("dpdk_ns_per_packet", 1e3 / dpdk, "ns of lcore CPU"),
        (
            "net_tile_socket_mpps_per_core",
            m(&per_core[1]),
            "Mpps per CPU-second (self-fed, send+stack+recv)",
        ),
        (
            "net_tile_socket_mpps_wall",
            m(&wall[1]),
            "Mpps per wall second",
        ),
        (
            "kernel_tuned_mpps_per_core",
            m(&per_core[2]),
            "Mpps per CPU-second (self-fed, send+stack+recv)",
        ),
        (
            "kernel_tuned_mpps_wall",
            m(&wall[2]),
            "Mpps per wall second",
        ),
        (
            "kernel_gro_mpps_per_core",
            m(&per_core[3]),
            "Mpps per CPU-second (GSO+GRO, one flow)",
        ),
        ("kernel_gro_mpps_wall", m(&wall[3]), "Mpps per wall second"),
        (
            "kernel_tuned_all_cores_mpps_wall",
            m(&wall[4]),
            "Mpps per wall second, reuseport over all cores",
        ),
        (
            "kernel_tuned_all_cores_mpps_per_core",
            m(&per_core[4]),
            "Mpps per CPU-second, summed over the loops",
        ),
        (
            "ratio_vs_net_tile_socket",
            median(vs_tile),
            "x (median of per-run per-core ratios)",
        ),
        (
            "ratio_vs_kernel_tuned",
            median(vs_tuned),
            "x (median of per-run per-core ratios)",
        ),
        (
            "ratio_vs_kernel_gro",
            median(vs_gro),
            "x (median of per-run per-core ratios)",
        ),
    ];
    if afxdp {
        rows.extend([
            (
                "afxdp_mpps_per_core",
                m(&per_core[AFXDP]),
                "Mpps per lcore CPU-second (same RX loop, AF_XDP port)",
            ),
            ("afxdp_mpps_wall", m(&wall[AFXDP]), "Mpps per wall second"),
            (
                "ratio_vs_afxdp",
                median(vs_afxdp),
                "x (median of per-run per-core ratios)",
            ),
        ]);
    }
    rows.extend([
        (
            "measured_thread_cpu_share",
            median(share),
            "CPU-seconds / wall seconds of the DPDK lcore",
        ),
        ("packets", a.packets as f64, "distinct transactions"),
        ("burst", f64::from(a.burst), "frames"),
        ("cores", f64::from(cores), "all cores (the all-cores row)"),
        ("runs", a.runs as f64, ""),
    ]);
    Ok(Report { rows, plots })
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use super::*;
    use dataplane::DataplaneCounters;
    use dataplane::config::{DpdkConfig, PortConfig};
    use dataplane::dpdk::eal::Eal;
    use dataplane::dpdk::port::Port;
    use dataplane::dpdk::rx::{Deliver, RxQueue, RxSetup};
    use dataplane::dpdk::sys;
    use dataplane::frame::{Endpoint, Peer};
    use dataplane::nic::{QueueCounters, get};
    use dataplane::parse::TxDescriptor;
    use dataplane::recent::RecentFilter;
    use dataplane::reply::Verdict;
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::os::fd::AsRawFd;
    use std::ptr::NonNull;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// Restamps each accepted transaction and keeps its mbuf to send round again.
    struct Recycle {
        held: Vec<*mut sys::rte_mbuf>,
        stamp: u64,
    }

    impl Deliver for Recycle {
        fn deliver(
            &mut self,
            mbuf: NonNull<sys::rte_mbuf>,
            tx: NonNull<u8>,
            desc: TxDescriptor,
            _peer: &Peer,
            _received_ns: u64,
        ) -> Verdict {
            self.stamp += 1;
            // SAFETY: the transaction's bytes inside an mbuf we now own.
            let bytes =
                unsafe { std::slice::from_raw_parts_mut(tx.as_ptr(), usize::from(desc.len)) };
            restamp(bytes, self.stamp);
            self.held.push(mbuf.as_ptr());
            Verdict::Accepted
        }
    }

    const US: Endpoint = Endpoint {
        mac: [0x02, 0, 0, 0, 0, 0x01],
        ipv4: Ipv4Addr::new(198, 18, 0, 1),
        udp_port: 8003,
    };

    fn sender() -> Peer {
        Peer {
            mac: [0x02, 0, 0, 0, 0, 0x02],
            addr: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 40000),
        }
    }

    // SAFETY: the mbuf pointers are only touched by whichever single lcore runs the loop.
    unsafe impl Send for Recycle {}

    /// One RX loop per burst size, all on the same port and queue (one polls at a time).
    type Loop = Arc<Mutex<RxQueue<Recycle>>>;

    /// A started port and its RX loops, one per burst size.
    struct PortLoops {
        port: Port,
        loops: Vec<(u16, Loop)>,
    }

    pub struct Bench {
        eal: Eal,
        ports: Vec<(Dev, PortLoops)>,
        lcore: u32,
        _netns: Option<Netns>,
    }

    /// Start port `device`, load it with one frame per transaction (the ring holds them; on
    /// AF_XDP they go out and bounce back), and make an RX loop per burst size. `stamp_base`
    /// keeps every loop's restamps disjoint from every other's.
    fn start_port(
        a: &DataplaneArgs,
        device: &str,
        mbufs: u32,
        txs: &[Vec<u8>],
        bursts: &[u16],
        stamp_base: u64,
    ) -> anyhow::Result<PortLoops> {
        let port = Port::start(&PortConfig {
            device: device.into(),
            rss: false,
            mbuf_pool_size: mbufs,
            ..PortConfig::default()
        })?;
        let pool = port.pool();
        let mut frame = vec![0u8; 2048];
        let mut loaded = Vec::with_capacity(txs.len());
        for tx in txs {
            let n =
                dataplane::frame::write_udp(&mut frame, &sender().as_endpoint(), &US.as_peer(), tx)
                    .ok_or_else(|| anyhow::anyhow!("frame too large"))?;
            // SAFETY: a fresh mbuf from a live pool, 2 KiB of room checked by set_len.
            unsafe {
                let m = sys::gc_pktmbuf_alloc(pool.0);
                anyhow::ensure!(!m.is_null(), "mbuf pool too small");
                anyhow::ensure!(sys::gc_mbuf_set_len(m, n as u16) == 1, "mbuf too small");
                std::ptr::copy_nonoverlapping(frame.as_ptr(), sys::gc_mbuf_data(m), n);
                loaded.push(m);
            }
        }
        for chunk in loaded.chunks_mut(256) {
            let mut at = 0;
            let t = Instant::now();
            while at < chunk.len() {
                // SAFETY: our mbufs; the port has room for all of them (retried while busy).
                let sent = unsafe {
                    sys::gc_tx_burst(
                        port.id,
                        0,
                        chunk[at..].as_mut_ptr(),
                        (chunk.len() - at) as u16,
                    )
                };
                at += usize::from(sent);
                anyhow::ensure!(
                    t.elapsed() < Duration::from_secs(5),
                    "{device}: TX full while loading"
                );
            }
        }
        let loops = bursts
            .iter()
            .enumerate()
            .map(|(i, &burst)| {
                let counters: &'static QueueCounters = Box::leak(Box::default());
                let dataplane: &'static DataplaneCounters = telemetry::SharedRegion::private();
                let rx = RxQueue::new(
                    RxSetup {
                        port: port.id,
                        queue: 0,
                        burst,
                        endpoint: US,
                        filter: RecentFilter::new(a.filter_entries),
                        replies: None,
                        outbound: None,
                        counters,
                        dataplane,
                    },
                    Recycle {
                        held: Vec::with_capacity(128),
                        stamp: (stamp_base + i as u64 + 1) << 48,
                    },
                );
                (burst, Arc::new(Mutex::new(rx)))
            })
            .collect();
        Ok(PortLoops { port, loops })
    }

    /// A private network namespace holding a veth pair: the AF_XDP port on `gcdpB`, and on
    /// `gcdpA` a tc ingress rule (mirred) that sends every frame straight back, so the AF_XDP
    /// loop feeds itself like the ring. The name is removed when dropped; the namespace (and
    /// its veths) lives until the process, which entered it, exits.
    pub struct Netns {
        name: String,
    }

    fn sh(prog: &str, args: &[&str]) -> anyhow::Result<()> {
        let out = std::process::Command::new(prog).args(args).output()?;
        anyhow::ensure!(
            out.status.success(),
            "{prog} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    impl Netns {
        fn create() -> anyhow::Result<Self> {
            let ns = Self {
                name: format!("gcdp{}", std::process::id()),
            };
            sh("ip", &["netns", "add", &ns.name])?;
            let n = ns.name.as_str();
            // No IPv6 on the veths: the kernel would send neighbour discovery into the loop.
            sh(
                "ip",
                &[
                    "netns",
                    "exec",
                    n,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            )?;
            sh("ip", &["-n", n, "link", "set", "lo", "up"])?;
            sh(
                "ip",
                &[
                    "-n", n, "link", "add", "gcdpA", "type", "veth", "peer", "name", "gcdpB",
                ],
            )?;
            for l in ["gcdpA", "gcdpB"] {
                sh("ip", &["-n", n, "link", "set", l, "up"])?;
            }
            sh("tc", &["-n", n, "qdisc", "add", "dev", "gcdpA", "clsact"])?;
            sh(
                "tc",
                &[
                    "-n", n, "filter", "add", "dev", "gcdpA", "ingress", "protocol", "all", "u32",
                    "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev",
                    "gcdpA",
                ],
            )?;
            Ok(ns)
        }

        /// Move the calling thread (and the threads it starts later) into the namespace.
        fn enter(&self) -> anyhow::Result<()> {
            let f = std::fs::File::open(format!("/var/run/netns/{}", self.name))?;
            // SAFETY: a namespace fd we hold open for the call.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            anyhow::ensure!(rc == 0, "setns: {}", std::io::Error::last_os_error());
            Ok(())
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = sh("ip", &["netns", "del", &self.name]);
        }
    }

    /// Frames kept circulating on the AF_XDP port: well inside its 1,024-entry rings.
    const AFXDP_IN_FLIGHT: usize = 512;

    impl Bench {
        pub fn start(
            a: &DataplaneArgs,
            main: u32,
            txs: &[Vec<u8>],
            bursts: &[u16],
        ) -> anyhow::Result<Self> {
            // The AF_XDP port needs its veth before EAL probes it, in EAL's namespace.
            let netns = if a.no_afxdp {
                None
            } else {
                match Netns::create().and_then(|ns| ns.enter().map(|()| ns)) {
                    Ok(ns) => Some(ns),
                    Err(e) => {
                        eprintln!("AF_XDP path skipped: {e:#}");
                        None
                    }
                }
            };
            let mut vdevs = Vec::new();
            if netns.is_some() {
                vdevs.push("net_af_xdp0,iface=gcdpB,start_queue=0,queue_count=1".to_string());
            }
            let eal = Eal::init(&DpdkConfig {
                main_lcore: main,
                rx_lcores: vec![a.core],
                file_prefix: format!("gc-bench-{}", std::process::id()),
                no_huge: !a.hugepages,
                memory_mb: 1024,
                eal_args: vec!["--no-pci".into()],
                vdevs,
                ..DpdkConfig::default()
            })?;
            let ring_size = (txs.len() + 1024).next_power_of_two() as u32;
            let name = dataplane::dpdk::port::loopback_ring("gc_bench", ring_size)?;
            let mut bursts = bursts.to_vec();
            bursts.sort_unstable();
            bursts.dedup();
            let mut ports = vec![(
                Dev::Ring,
                start_port(a, &name, (2 * ring_size - 1).max(8191), txs, &bursts, 0)?,
            )];
            if netns.is_some() {
                let k = txs.len().min(AFXDP_IN_FLIGHT);
                ports.push((
                    Dev::AfXdp,
                    start_port(a, "net_af_xdp0", 8191, &txs[..k], &bursts, 32)?,
                ));
            }
            Ok(Self {
                eal,
                ports,
                lcore: a.core,
                _netns: netns,
            })
        }

        pub fn has(&self, dev: Dev) -> bool {
            self.ports.iter().any(|(d, _)| *d == dev)
        }

        /// Frames through the RX loop of `burst` on the lcore over `d`, with the lcore's CPU
        /// time and the wall time.
        pub fn measure(&mut self, dev: Dev, burst: u16, d: Duration) -> anyhow::Result<Measure> {
            let pl = &self
                .ports
                .iter()
                .find(|(d, _)| *d == dev)
                .ok_or_else(|| anyhow::anyhow!("no {dev:?} port"))?
                .1;
            let rx = pl
                .loops
                .iter()
                .find(|(b, _)| *b == burst)
                .map(|(_, l)| l.clone())
                .ok_or_else(|| anyhow::anyhow!("no RX loop for burst {burst}"))?;
            let result = Arc::new(Mutex::new(Measure::default()));
            let res = result.clone();
            let port = pl.port.id;
            let counters = rx.lock().expect("bench lock").counters();
            self.eal.launch(
                self.lcore,
                Box::new(move || {
                    let mut q = rx.lock().expect("bench lock");
                    let before = get(&counters.packets);
                    let cpu0 = telemetry::thread_cpu_ns();
                    let t = Instant::now();
                    let mut polls = 0u32;
                    loop {
                        q.poll();
                        let held = &mut q.deliver.held;
                        if !held.is_empty() {
                            // SAFETY: our mbufs; the ring is sized for every one of them.
                            let sent = unsafe {
                                sys::gc_tx_burst(port, 0, held.as_mut_ptr(), held.len() as u16)
                            };
                            debug_assert_eq!(usize::from(sent), held.len());
                            held.clear();
                        }
                        polls += 1;
                        if polls.is_multiple_of(1024) && t.elapsed() >= d {
                            break;
                        }
                    }
                    let cpu_s = (telemetry::thread_cpu_ns() - cpu0) as f64 / 1e9;
                    let wall_s = t.elapsed().as_secs_f64();
                    *res.lock().expect("bench lock") = Measure {
                        packets: get(&counters.packets) - before,
                        cpu_s,
                        wall_s,
                    };
                }),
            )?;
            self.eal.wait(self.lcore);
            let c = counters;
            let dropped: u64 = c.frame_drops.iter().map(get).sum::<u64>()
                + c.parse_drops.iter().map(get).sum::<u64>()
                + get(&c.duplicates);
            anyhow::ensure!(
                dropped == 0,
                "the {dev:?} loop dropped {dropped} of its own frames"
            );
            let m = *result.lock().expect("bench lock");
            anyhow::ensure!(m.packets > 0, "the {dev:?} loop received nothing");
            Ok(m)
        }
    }
}

#[cfg(not(feature = "dpdk"))]
mod dpdk {
    use super::*;

    pub struct Bench;

    impl Bench {
        pub fn has(&self, _: Dev) -> bool {
            false
        }

        pub fn start(_: &DataplaneArgs, _: u32, _: &[Vec<u8>], _: &[u16]) -> anyhow::Result<Self> {
            anyhow::bail!(
                "bench dataplane needs the DPDK path: build with `cargo build --release --features dpdk`"
            )
        }

        pub fn measure(&mut self, _: Dev, _: u16, _: Duration) -> anyhow::Result<Measure> {
            unreachable!("start fails without DPDK")
        }
    }
}
