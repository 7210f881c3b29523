//! The kernel side of `bench dataplane`: UDP over loopback, each measured thread feeding
//! itself on its own core, the way the DPDK loop feeds its ring.
//!
//! Why self-fed: with the sender on one core and the receiver on the other, loopback runs the
//! kernel's whole receive stack (IP, UDP, socket queueing) in softirq on the *sending* core
//! inside `sendmmsg`, and every wake-up of a sleeping receiver is a cross-core interrupt (a VM
//! exit under KVM). The sender core then bounds the rate, the receiver waits, and neither
//! "receiver CPU-second" nor "wall second" is the cost of receiving. Here one pinned thread
//! sends a burst to its own socket and receives, parses and filters it; loopback delivers
//! inside the send call, on the same core, so every cycle the kernel spends on these packets
//! (send path, receive stack, copy-out) is charged to that thread: per core = packets / the
//! thread's CPU time. That charges the kernel with its send path too, as the DPDK loop is
//! charged with its re-enqueue.
//!
//! Paths:
//! - [`Path::NetTile`]: the appliance's UDP net tile as shipped (`UdpReceiver::recv_burst`:
//!   recvmmsg with MSG_WAITFORONE, its 64 MiB SO_RCVBUF request capped by `rmem_max`), each
//!   datagram sent on its own (`sendmmsg`), as many clients send them.
//! - [`Path::Tuned`]: what a kernel-networking engineer would set for this: an SO_REUSEPORT
//!   group with one socket per receive core and SO_INCOMING_CPU so each core drains the
//!   datagrams its own softirq delivered, SO_RCVBUFFORCE 64 MiB, SO_BUSY_POLL 50 µs with
//!   SO_PREFER_BUSY_POLL, UDP_GRO on, recvmmsg(MSG_DONTWAIT) spinning (user-space busy polling:
//!   no sleeps, no wake-ups). Same per-datagram sends as the net tile.
//! - [`Path::Gro`]: the tuned socket fed with UDP_SEGMENT super-datagrams (one GSO send per
//!   burst, segment size = transaction size): the socket, with UDP_GRO, takes each burst as one
//!   buffer and the loop splits it by the segment size the kernel reports. This is what GRO
//!   gives a NIC-fed socket in the best case (one flow, equal sizes, back to back); real TPU
//!   traffic (many clients, mixed sizes) coalesces far less.

use super::{DataplaneArgs, restamp};
use dataplane::packet::{PacketBox, PacketPool};
use dataplane::parse_transaction;
use dataplane::recent::RecentFilter;
use dataplane::socket::UdpReceiver;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;
const SO_REUSEPORT: libc::c_int = 15;
const SO_RCVBUFFORCE: libc::c_int = 33;
const SO_BUSY_POLL: libc::c_int = 46;
const SO_INCOMING_CPU: libc::c_int = 49;
const SO_PREFER_BUSY_POLL: libc::c_int = 69;
/// Largest receive batch.
const MAX_BATCH: usize = 128;
/// Receive buffer of the GRO path: a whole super-datagram.
const GRO_BUFFER: usize = 65_536;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Path {
    NetTile,
    Tuned,
    Gro,
}

impl Path {
    pub fn label(self) -> &'static str {
        match self {
            Path::NetTile => "kernel UDP, net tile as shipped",
            Path::Tuned => "kernel UDP, tuned",
            Path::Gro => "kernel UDP, GSO+GRO (best case)",
        }
    }
}

/// What one measurement saw: packets received, parsed and filtered; CPU seconds of the
/// measuring threads (summed); wall seconds.
#[derive(Clone, Copy, Default)]
pub struct Measure {
    pub packets: u64,
    pub cpu_s: f64,
    pub wall_s: f64,
}

impl Measure {
    pub fn per_cpu(&self) -> f64 {
        self.packets as f64 / self.cpu_s.max(1e-9)
    }
    pub fn per_wall(&self) -> f64 {
        self.packets as f64 / self.wall_s.max(1e-9)
    }
}

fn pin(core: u32) {
    core_affinity::set_for_current(core_affinity::CoreId { id: core as usize });
}

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: valid fd, pointer to a c_int of the advertised length.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One socket of the tuned SO_REUSEPORT group on 127.0.0.1:`port` (0: pick one), steered to
/// `core` by SO_INCOMING_CPU.
fn tuned_socket(port: u16, core: u32, gro: bool) -> io::Result<UdpSocket> {
    // SAFETY: plain socket(2); the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    setsockopt_int(fd, libc::SOL_SOCKET, SO_REUSEPORT, 1)?;
    setsockopt_int(fd, libc::SOL_SOCKET, SO_INCOMING_CPU, core as libc::c_int)?;
    // Root bypasses rmem_max; otherwise fall back to what SO_RCVBUF grants.
    if setsockopt_int(fd, libc::SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20).is_err() {
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 64 << 20)?;
    }
    // Busy polling needs a NAPI instance behind the socket; loopback has none, so these are
    // set as an engineer would and do nothing here (the loop spins in user space instead).
    let _ = setsockopt_int(fd, libc::SOL_SOCKET, SO_BUSY_POLL, 50);
    let _ = setsockopt_int(fd, libc::SOL_SOCKET, SO_PREFER_BUSY_POLL, 1);
    if gro {
        setsockopt_int(fd, SOL_UDP, UDP_GRO, 1)?;
    }
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: a sockaddr_in of the advertised length.
    let rc = unsafe {
        libc::bind(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UdpSocket::from(owned))
}

/// A receive batch for the tuned paths: buffers, addresses, iovecs, headers, control space.
struct Batch {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    ctl: Vec<[u64; 8]>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the pointers in the headers and iovecs are rewritten before every recvmmsg and mean
// nothing between calls; one thread uses a batch at a time.
unsafe impl Send for Batch {}

impl Batch {
    fn new(n: usize, buf: usize) -> Self {
        Self {
            bufs: (0..n).map(|_| vec![0u8; buf]).collect(),
            // SAFETY: all-zero is a valid sockaddr_storage, iovec and mmsghdr.
            addrs: (0..n).map(|_| unsafe { std::mem::zeroed() }).collect(),
            iovs: (0..n).map(|_| unsafe { std::mem::zeroed() }).collect(),
            ctl: vec![[0u64; 8]; n],
            hdrs: (0..n).map(|_| unsafe { std::mem::zeroed() }).collect(),
        }
    }

    /// One non-blocking recvmmsg of up to `n` messages; the number received (0 when none).
    fn recv(&mut self, fd: RawFd, n: usize) -> io::Result<usize> {
        let n = n.min(self.bufs.len());
        for i in 0..n {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: self.bufs[i].len(),
            };
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = self.ctl[i].as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = std::mem::size_of::<[u64; 8]>();
            h.msg_hdr.msg_flags = 0;
        }
        // SAFETY: every header points at live buffers sized as declared.
        let rc = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        Ok(rc as usize)
    }

    /// The GRO segment size of message `i`, when the kernel coalesced it.
    fn gso_size(&self, i: usize) -> Option<usize> {
        let h = &self.hdrs[i].msg_hdr;
        // SAFETY: walking the control buffer the kernel filled, bounded by msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                if (*c).cmsg_level == SOL_UDP && (*c).cmsg_type == UDP_GRO {
                    let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                    return usize::try_from(v).ok().filter(|&s| s > 0);
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        None
    }
}

/// Parse and filter one datagram; counts it.
#[inline]
fn handle(bytes: &[u8], filter: &mut RecentFilter, st: &mut Stats) {
    st.packets += 1;
    if parse_transaction(bytes).is_ok() {
        st.dups += u64::from(filter.insert(filter.tag(bytes)));
    } else {
        st.bad += 1;
    }
}

#[derive(Default)]
struct Stats {
    packets: u64,
    sent: u64,
    dups: u64,
    bad: u64,
}

/// The sending half of a self-fed loop: the circulating transactions and where it is in them.
struct Feed {
    txs: Vec<Vec<u8>>,
    at: usize,
    stamp: u64,
    sock: UdpSocket,
    gso: bool,
    /// Scratch for one GSO super-datagram.
    super_buf: Vec<u8>,
}

impl Feed {
    fn new(txs: &[Vec<u8>], to: SocketAddr, stamp_base: u64, gso: bool) -> io::Result<Self> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.connect(to)?;
        if gso {
            setsockopt_int(
                sock.as_raw_fd(),
                SOL_UDP,
                UDP_SEGMENT,
                txs[0].len() as libc::c_int,
            )?;
        }
        Ok(Self {
            txs: txs.to_vec(),
            at: 0,
            stamp: stamp_base,
            sock,
            gso,
            super_buf: Vec::with_capacity(MAX_BATCH * txs[0].len()),
        })
    }

    /// Restamp and send the next `n` transactions; returns how many the kernel took.
    fn send(&mut self, n: usize) -> usize {
        let n = n.min(self.txs.len() - self.at);
        for t in &mut self.txs[self.at..self.at + n] {
            self.stamp += 1;
            restamp(t, self.stamp);
        }
        let batch = &self.txs[self.at..self.at + n];
        let sent = if self.gso {
            self.super_buf.clear();
            for t in batch {
                self.super_buf.extend_from_slice(t);
            }
            match self.sock.send(&self.super_buf) {
                Ok(_) => n,
                Err(_) => 0,
            }
        } else {
            send_batch(&self.sock, batch)
        };
        self.at = (self.at + n) % self.txs.len();
        sent
    }
}

/// One sendmmsg of `txs` on a connected socket; how many went.
fn send_batch(sock: &UdpSocket, txs: &[Vec<u8>]) -> usize {
    let mut iovs: [libc::iovec; MAX_BATCH] =
        // SAFETY: all-zero iovecs are valid.
        unsafe { std::mem::zeroed() };
    // SAFETY: all-zero mmsghdrs are valid.
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
    let n = txs.len().min(MAX_BATCH);
    for i in 0..n {
        iovs[i] = libc::iovec {
            iov_base: txs[i].as_ptr().cast_mut().cast(),
            iov_len: txs[i].len(),
        };
        hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: headers point at live iovecs over live buffers.
    let rc = unsafe { libc::sendmmsg(sock.as_raw_fd(), hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
    rc.max(0) as usize
}

/// The receiving half: one of the three receivers.
enum Rx {
    NetTile {
        rx: UdpReceiver,
        bufs: Vec<PacketBox>,
    },
    Tuned {
        sock: UdpSocket,
        batch: Batch,
    },
}

impl Rx {
    /// Receive what is queued (up to `burst` messages), parse and filter it.
    fn drain(
        &mut self,
        burst: usize,
        filter: &mut RecentFilter,
        st: &mut Stats,
    ) -> io::Result<usize> {
        match self {
            Rx::NetTile { rx, bufs } => {
                // Called only while datagrams are outstanding: MSG_WAITFORONE returns as soon
                // as one is queued (the tile's 50 ms timeout bounds a wait for deferred softirq).
                let n = rx.recv_burst(&mut bufs[..burst])?;
                for p in &bufs[..n] {
                    handle(p.bytes(), filter, st);
                }
                Ok(n)
            }
            Rx::Tuned { sock, batch } => {
                let n = batch.recv(sock.as_raw_fd(), burst)?;
                let before = st.packets;
                for i in 0..n {
                    let len = batch.hdrs[i].msg_len as usize;
                    let data = &batch.bufs[i][..len];
                    match batch.gso_size(i) {
                        Some(seg) => {
                            for s in data.chunks(seg) {
                                handle(s, filter, st);
                            }
                        }
                        None => handle(data, filter, st),
                    }
                }
                Ok((st.packets - before) as usize)
            }
        }
    }
}

/// One self-fed loop on `core` for `d`: send a burst, receive it, parse, filter, repeat.
/// `group` is the tuned group's port when several loops share one (0: own socket).
fn self_fed(
    path: Path,
    a: &DataplaneArgs,
    burst: usize,
    core: u32,
    txs: &[Vec<u8>],
    stamp_base: u64,
    rx: Rx,
    to: SocketAddr,
    d: Duration,
    start: &AtomicBool,
) -> anyhow::Result<Loop> {
    pin(core);
    let mut rx = rx;
    let mut feed = Feed::new(txs, to, stamp_base, path == Path::Gro)?;
    let mut filter = RecentFilter::new(a.filter_entries);
    let mut st = Stats::default();
    while !start.load(Ordering::Acquire) {
        std::hint::spin_loop();
    }
    let cpu0 = telemetry::thread_cpu_ns();
    let t = Instant::now();
    let mut iter = 0u32;
    loop {
        st.sent += feed.send(burst) as u64;
        // Loopback delivers inside the send call, so the burst is queued now (unless softirq
        // work was deferred to ksoftirqd, or another core's loop got it): take what is there,
        // a few empty polls at most, then send again.
        let mut empty = 0;
        while st.packets < st.sent && empty < 4 {
            if rx.drain(burst, &mut filter, &mut st)? == 0 {
                empty += 1;
            }
        }
        iter += 1;
        if iter.is_multiple_of(64) && t.elapsed() >= d {
            break;
        }
    }
    let cpu = (telemetry::thread_cpu_ns() - cpu0) as f64 / 1e9;
    let wall = t.elapsed().as_secs_f64();
    Ok(Loop {
        st,
        cpu,
        wall,
        rx,
        filter,
    })
}

/// A finished loop: its counts, CPU and wall seconds, and its receiver for the final drain.
struct Loop {
    st: Stats,
    cpu: f64,
    wall: f64,
    rx: Rx,
    filter: RecentFilter,
}

/// One measurement of `path` with `burst` on `cores` cores (the measured core first).
pub fn measure(
    path: Path,
    a: &DataplaneArgs,
    burst: usize,
    cores: &[u32],
    txs: &[Vec<u8>],
    d: Duration,
) -> anyhow::Result<Measure> {
    static STAMPS: AtomicU64 = AtomicU64::new(0);
    anyhow::ensure!(
        (1..=MAX_BATCH).contains(&burst),
        "burst must be 1..={MAX_BATCH}"
    );
    anyhow::ensure!(
        path != Path::Gro || txs.iter().all(|t| t.len() == txs[0].len()),
        "the GSO feed needs transactions of one size"
    );
    anyhow::ensure!(
        path == Path::Tuned || cores.len() == 1,
        "only the tuned path runs a reuseport group over several cores"
    );
    let start = Arc::new(AtomicBool::new(false));
    // Sockets first (the group must be complete before anyone sends).
    let mut rxs = Vec::new();
    let mut port = 0u16;
    for &core in cores {
        let rx = match path {
            Path::NetTile => {
                let rx = UdpReceiver::bind("127.0.0.1:0".parse()?, burst, 64 << 20)?;
                let pool = PacketPool::new(burst);
                let bufs: Vec<PacketBox> = (0..burst).filter_map(|_| pool.take()).collect();
                anyhow::ensure!(bufs.len() == burst, "packet pool too small");
                Rx::NetTile { rx, bufs }
            }
            Path::Tuned | Path::Gro => {
                let sock = tuned_socket(port, core, true)?;
                port = sock.local_addr()?.port();
                let batch = Batch::new(burst, if path == Path::Gro { GRO_BUFFER } else { 2048 });
                Rx::Tuned { sock, batch }
            }
        };
        rxs.push(rx);
    }
    let addr = |rx: &Rx| -> io::Result<SocketAddr> {
        match rx {
            Rx::NetTile { rx, .. } => rx.local_addr(),
            Rx::Tuned { sock, .. } => sock.local_addr(),
        }
    };
    let to = addr(&rxs[0])?;
    let mut loops = std::thread::scope(|s| -> anyhow::Result<Vec<Loop>> {
        let handles: Vec<_> = rxs
            .into_iter()
            .zip(cores)
            .map(|(rx, &core)| {
                let start = &start;
                // Disjoint stamps for every loop of the process: no restamp repeats bytes.
                let base = STAMPS.fetch_add(1 << 40, Ordering::Relaxed);
                s.spawn(move || self_fed(path, a, burst, core, txs, base, rx, to, d, start))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        start.store(true, Ordering::Release);
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("loop panicked"))?)
            .collect()
    })?;
    let mut m = Measure::default();
    let (mut sent, mut dups, mut bad) = (0, 0, 0);
    for l in &loops {
        m.packets += l.st.packets;
        m.cpu_s += l.cpu;
        m.wall_s = m.wall_s.max(l.wall);
        sent += l.st.sent;
    }
    // What is still queued at the cut (in whichever socket of a group the kernel chose) is
    // drained for the loss check, not counted in the rate.
    let mut drained = 0u64;
    let deadline = Instant::now() + Duration::from_millis(500);
    while m.packets + drained < sent && Instant::now() < deadline {
        for l in &mut loops {
            let before = l.st.packets;
            l.rx.drain(burst, &mut l.filter, &mut l.st)?;
            drained += l.st.packets - before;
        }
    }
    for l in &loops {
        dups += l.st.dups;
        bad += l.st.bad;
    }
    let what = path.label();
    anyhow::ensure!(m.packets > 0, "{what}: nothing received");
    anyhow::ensure!(bad == 0, "{what}: {bad} datagrams did not parse");
    anyhow::ensure!(
        dups == 0,
        "{what}: {dups} restamped datagrams looked like duplicates"
    );
    // Loopback with room in every buffer loses nothing: every datagram sent is received, in
    // the window or in the drain after it.
    anyhow::ensure!(
        m.packets + drained == sent,
        "{what}: sent {sent}, received {} + {drained} after the cut",
        m.packets
    );
    Ok(m)
}
