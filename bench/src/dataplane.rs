//! `bench dataplane`: receive + parse + dedup, packets per second on one core, for the DPDK
//! poll-mode path and the kernel UDP socket path, alternating in the same run.
//!
//! - DPDK: a net_ring port whose RX and TX queue are one `rte_ring`, loaded with frames of
//!   pre-built signed transfers (Ethernet/IPv4/UDP to the port's address). The appliance's
//!   own RX loop ([`RxQueue::poll`]) runs on one pinned lcore: rx_burst, frame checks, the
//!   transaction parsed in place, the recent-bytes filter. Instead of going to verification,
//!   each accepted mbuf gets a fresh counter written into its signature (so the next pass is
//!   new bytes, not a duplicate) and is sent back into the ring: the loop feeds itself, and
//!   that re-enqueue is counted in the per-packet cost, not subtracted.
//! - Socket: the same transactions sent over loopback by a sender thread on the other core
//!   (sendmmsg, the same counter trick), received by the UDP net tile's `recvmmsg` receiver
//!   on the measured core, parsed and filtered the same way. Per core = packets divided by the
//!   receiving thread's CPU time (the kernel's softirq work runs on the sender's core, so this
//!   flatters the socket path; the wall-clock rate is reported too).
//!
//! Not included on either side: the hand-off to the verify tiles and signature verification
//! (`bench sigverify`, `bench pipeline`).

use super::{Rows, median, workload};
use clap::Args;
use dataplane::parse_transaction;
use dataplane::recent::RecentFilter;
use std::time::Duration;

#[derive(Args, Clone)]
pub struct DataplaneArgs {
    /// Distinct transactions in circulation.
    #[arg(long, default_value_t = 16_384)]
    pub packets: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Runs (each: one DPDK and one socket measurement); figures are medians.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Frames per receive call, both paths.
    #[arg(long, default_value_t = 32)]
    pub burst: u16,
    /// The measured core (the DPDK RX lcore; the socket receiver's core). The sender and
    /// EAL's main lcore use the first other core.
    #[arg(long, default_value_t = 1)]
    pub core: u32,
    /// Entries of the recent-bytes filter (the appliance default).
    #[arg(long, default_value_t = 1 << 19)]
    pub filter_entries: usize,
    /// Take EAL memory from hugepages (reserve them first); default: --no-huge.
    #[arg(long)]
    pub hugepages: bool,
    #[arg(long)]
    pub json: bool,
}

/// Write `n` into the first signature (after its compact-u16 count): new bytes, same parse.
fn restamp(tx: &mut [u8], n: u64) {
    tx[1..9].copy_from_slice(&n.to_le_bytes());
}

pub fn run(a: &DataplaneArgs) -> anyhow::Result<Rows> {
    anyhow::ensure!(a.packets >= 64, "--packets must be at least 64");
    anyhow::ensure!((1..=128).contains(&a.burst), "--burst must be 1..=128");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    anyhow::ensure!(
        cores >= 2 && a.core < cores,
        "needs two cores and --core below {cores}"
    );
    let other = if a.core == 0 { 1 } else { 0 };
    eprintln!("building {} signed transfers ...", a.packets);
    let txs = workload::transfers(a.packets, solana_hash::Hash::new_from_array([7; 32])).txs;
    for t in &txs {
        parse_transaction(t).map_err(|e| anyhow::anyhow!("workload does not parse: {e}"))?;
    }
    let mut dp = dpdk::Bench::start(a, other, &txs)?;
    let (mut dpdk_mpps, mut sock_core, mut sock_wall, mut ratios) =
        (vec![], vec![], vec![], vec![]);
    for r in 0..a.runs {
        let d = dp.measure(Duration::from_secs_f64(a.seconds))?;
        let (core, wall) = socket::measure(a, other, &txs)?;
        eprintln!(
            "run {}: dpdk {:.2} Mpps/core, socket {:.3} Mpps/core ({:.3} Mpps wall)",
            r + 1,
            d / 1e6,
            core / 1e6,
            wall / 1e6
        );
        dpdk_mpps.push(d / 1e6);
        sock_core.push(core / 1e6);
        sock_wall.push(wall / 1e6);
        ratios.push(d / core);
    }
    let dpdk = median(dpdk_mpps);
    Ok(vec![
        (
            "dpdk_mpps_per_core",
            dpdk,
            "Mpps (RX+parse+dedup, net_ring)",
        ),
        ("dpdk_ns_per_packet", 1e3 / dpdk, "ns"),
        (
            "socket_mpps_per_core",
            median(sock_core),
            "Mpps (per receiver CPU-second)",
        ),
        ("socket_mpps_wall", median(sock_wall), "Mpps"),
        (
            "ratio_vs_socket",
            median(ratios),
            "x (median of per-run ratios)",
        ),
        ("packets", a.packets as f64, "distinct transactions"),
        ("burst", f64::from(a.burst), "frames"),
        ("runs", a.runs as f64, ""),
    ])
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
    use dataplane::reply::Verdict;
    use std::net::{Ipv4Addr, SocketAddrV4};
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
        ipv4: Ipv4Addr::new(10, 0, 0, 1),
        udp_port: 8003,
    };

    fn sender() -> Peer {
        Peer {
            mac: [0x02, 0, 0, 0, 0, 0x02],
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 40000),
        }
    }

    // SAFETY: the mbuf pointers are only touched by whichever single lcore runs the loop.
    unsafe impl Send for Recycle {}

    pub struct Bench {
        eal: Eal,
        port: Port,
        rx: Arc<Mutex<Option<RxQueue<Recycle>>>>,
        lcore: u32,
        counters: &'static QueueCounters,
    }

    impl Bench {
        pub fn start(a: &DataplaneArgs, main: u32, txs: &[Vec<u8>]) -> anyhow::Result<Self> {
            let eal = Eal::init(&DpdkConfig {
                main_lcore: main,
                rx_lcores: vec![a.core],
                file_prefix: format!("gc-bench-{}", std::process::id()),
                no_huge: !a.hugepages,
                memory_mb: 1024,
                eal_args: vec!["--no-pci".into()],
                ..DpdkConfig::default()
            })?;
            let ring_size = (txs.len() + 1024).next_power_of_two() as u32;
            let name = dataplane::dpdk::port::loopback_ring("gc_bench", ring_size)?;
            let port = Port::start(&PortConfig {
                device: name,
                rss: false,
                mbuf_pool_size: (2 * ring_size - 1).max(8191),
                ..PortConfig::default()
            })?;
            // Load the ring: one frame per transaction.
            let pool = port.pool();
            let mut frame = vec![0u8; 2048];
            let mut loaded = Vec::with_capacity(txs.len());
            for tx in txs {
                let n = dataplane::frame::write_udp(
                    &mut frame,
                    &sender().as_endpoint(),
                    &US.as_peer(),
                    tx,
                )
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
            for chunk in loaded.chunks_mut(512) {
                // SAFETY: our mbufs; the ring has room for all of them.
                let sent =
                    unsafe { sys::gc_tx_burst(port.id, 0, chunk.as_mut_ptr(), chunk.len() as u16) };
                anyhow::ensure!(usize::from(sent) == chunk.len(), "ring full while loading");
            }
            let counters: &'static QueueCounters = Box::leak(Box::default());
            let dataplane: &'static DataplaneCounters = telemetry::SharedRegion::private();
            let rx = RxQueue::new(
                RxSetup {
                    port: port.id,
                    queue: 0,
                    burst: a.burst,
                    endpoint: US,
                    filter: RecentFilter::new(a.filter_entries),
                    replies: None,
                    counters,
                    dataplane,
                },
                Recycle {
                    held: Vec::with_capacity(128),
                    stamp: 0,
                },
            );
            Ok(Self {
                eal,
                port,
                rx: Arc::new(Mutex::new(Some(rx))),
                lcore: a.core,
                counters,
            })
        }

        /// Frames per second through the RX loop on the lcore, over `d`.
        pub fn measure(&mut self, d: Duration) -> anyhow::Result<f64> {
            let result = Arc::new(Mutex::new((0u64, 0f64)));
            let (rx, res) = (self.rx.clone(), result.clone());
            let port = self.port.id;
            let counters = self.counters;
            self.eal.launch(
                self.lcore,
                Box::new(move || {
                    let mut guard = rx.lock().expect("bench lock");
                    let q = guard.as_mut().expect("rx loop present");
                    let before = get(&counters.packets);
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
                    let secs = t.elapsed().as_secs_f64();
                    *res.lock().expect("bench lock") = (get(&counters.packets) - before, secs);
                }),
            )?;
            self.eal.wait(self.lcore);
            let c = self.counters;
            let dropped: u64 = c.frame_drops.iter().map(get).sum::<u64>()
                + c.parse_drops.iter().map(get).sum::<u64>()
                + get(&c.duplicates);
            anyhow::ensure!(
                dropped == 0,
                "the DPDK loop dropped {dropped} of its own frames"
            );
            let (frames, secs) = *result.lock().expect("bench lock");
            Ok(frames as f64 / secs)
        }
    }
}

#[cfg(not(feature = "dpdk"))]
mod dpdk {
    use super::*;

    pub struct Bench;

    impl Bench {
        pub fn start(_: &DataplaneArgs, _: u32, _: &[Vec<u8>]) -> anyhow::Result<Self> {
            anyhow::bail!(
                "bench dataplane needs the DPDK path: build with `cargo build --release --features dpdk`"
            )
        }

        pub fn measure(&mut self, _: Duration) -> anyhow::Result<f64> {
            unreachable!("start fails without DPDK")
        }
    }
}

mod socket {
    use super::*;
    use dataplane::packet::{PacketBox, PacketPool};
    use dataplane::socket::UdpReceiver;
    use std::os::fd::AsRawFd;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    fn pin(core: u32) {
        core_affinity::set_for_current(core_affinity::CoreId { id: core as usize });
    }

    /// (packets per receiver CPU-second, packets per wall second).
    pub fn measure(a: &DataplaneArgs, other: u32, txs: &[Vec<u8>]) -> anyhow::Result<(f64, f64)> {
        let rx = UdpReceiver::bind("127.0.0.1:0".parse()?, usize::from(a.burst), 64 << 20)?;
        let to = rx.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let send = {
            let (stop, mut txs) = (stop.clone(), txs.to_vec());
            std::thread::spawn(move || -> std::io::Result<()> {
                pin(other);
                let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
                sock.connect(to)?;
                let mut stamp = 0u64;
                let mut at = 0;
                while !stop.load(Ordering::Relaxed) {
                    let n = 32.min(txs.len() - at);
                    for t in &mut txs[at..at + n] {
                        stamp += 1;
                        restamp(t, stamp);
                    }
                    send_batch(&sock, &txs[at..at + n]);
                    at = (at + n) % txs.len();
                }
                Ok(())
            })
        };
        let recv = {
            let stop = stop.clone();
            let (burst, entries, secs) = (usize::from(a.burst), a.filter_entries, a.seconds);
            let core = a.core;
            std::thread::spawn(move || {
                pin(core);
                let pool = PacketPool::new(burst);
                let mut bufs: Vec<PacketBox> = (0..burst).filter_map(|_| pool.take()).collect();
                let mut filter = RecentFilter::new(entries);
                let (mut got, mut dups) = (0u64, 0u64);
                let cpu0 = telemetry::thread_cpu_ns();
                let t = Instant::now();
                while t.elapsed().as_secs_f64() < secs {
                    let n = rx.recv_burst(&mut bufs, 0).unwrap_or(0);
                    for p in &bufs[..n] {
                        if parse_transaction(p.bytes()).is_ok() {
                            dups += u64::from(filter.insert(filter.tag(p.bytes())));
                        }
                    }
                    got += n as u64;
                }
                let cpu = (telemetry::thread_cpu_ns() - cpu0) as f64 / 1e9;
                stop.store(true, Ordering::Relaxed);
                (got, dups, cpu, t.elapsed().as_secs_f64())
            })
        };
        let (got, dups, cpu, wall) = recv
            .join()
            .map_err(|_| anyhow::anyhow!("receiver panicked"))?;
        stop.store(true, Ordering::Relaxed);
        send.join()
            .map_err(|_| anyhow::anyhow!("sender panicked"))??;
        anyhow::ensure!(got > 0, "the socket receiver got nothing");
        anyhow::ensure!(
            dups == 0,
            "{dups} restamped datagrams looked like duplicates"
        );
        Ok((got as f64 / cpu.max(1e-9), got as f64 / wall))
    }

    /// One sendmmsg of `txs` on a connected socket (errors such as ENOBUFS just drop).
    fn send_batch(sock: &std::net::UdpSocket, txs: &[Vec<u8>]) {
        let mut iovs: Vec<libc::iovec> = txs
            .iter()
            .map(|t| libc::iovec {
                iov_base: t.as_ptr().cast_mut().cast(),
                iov_len: t.len(),
            })
            .collect();
        let mut hdrs: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: a zeroed msghdr is valid; we point it at one iovec.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        // SAFETY: headers point at live iovecs over live buffers.
        unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                hdrs.len() as libc::c_uint,
                0,
            )
        };
    }
}
