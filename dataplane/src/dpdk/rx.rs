//! The poll-mode loop of one RX queue, pinned to its own lcore.
//!
//! Per burst: receive; classify every frame ([`crate::frame`]); parse each datagram's
//! transaction where the NIC wrote it; hash it and prefetch its filter bucket; then, for the
//! whole burst, drop recent repeats and hand the rest to a [`Deliver`] (the appliance: a
//! descriptor packet that owns the mbuf, routed to verification). ARP and ICMP echo requests
//! are answered in place; verdict replies (when on) are written into fresh mbufs. Everything
//! dropped is counted by reason and its mbuf freed in one bulk call.

use super::port::MbufPool;
use super::sys;
use crate::counters::DataplaneCounters;
use crate::frame::{self, Endpoint, Frame, FrameDrop, Peer};
use crate::ingress::{Ingress, SubmitError};
use crate::nic::{QueueCounters, bump};
use crate::packet::{PortReply, Source, monotonic_ns};
use crate::parse::{TxDescriptor, parse_transaction};
use crate::recent::RecentFilter;
use crate::reply::{self, PortDatagram, Verdict};
use std::ffi::c_void;
use std::net::SocketAddr;
use std::ptr::{NonNull, null_mut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use telemetry::{Tile, TileClock, Turn};

/// Largest burst one poll takes.
pub const MAX_BURST: usize = 128;

type Mbuf = *mut sys::rte_mbuf;

/// Where a transaction that passed the RX checks goes. Takes ownership of the mbuf.
pub trait Deliver {
    /// `tx` points at the transaction's `desc.len` bytes inside `mbuf`.
    fn deliver(
        &mut self,
        mbuf: NonNull<sys::rte_mbuf>,
        tx: NonNull<u8>,
        desc: TxDescriptor,
        peer: &Peer,
        received_ns: u64,
    ) -> Verdict;
}

/// Frees an mbuf owned by a descriptor packet (from whichever thread finishes with it).
///
/// # Safety
/// `owner` must be an mbuf this caller owns.
pub unsafe fn release_mbuf(owner: NonNull<c_void>) {
    // SAFETY: the caller owns the mbuf; rte_pktmbuf_free is thread-safe (mp/mc pool).
    unsafe { sys::gc_pktmbuf_free(owner.as_ptr().cast()) };
}

/// The appliance's delivery: a descriptor packet takes the mbuf and goes to verification,
/// marked with the RX queue it came in on (replies to it go out of that queue's lcore).
pub struct ToIngress {
    pub ingress: Ingress,
    pub queue: u16,
}

impl Deliver for ToIngress {
    fn deliver(
        &mut self,
        mbuf: NonNull<sys::rte_mbuf>,
        tx: NonNull<u8>,
        desc: TxDescriptor,
        peer: &Peer,
        received_ns: u64,
    ) -> Verdict {
        let Some(mut p) = self.ingress.pool.take_descriptor() else {
            // SAFETY: we own the mbuf and nobody else will see it.
            unsafe { release_mbuf(mbuf.cast()) };
            self.ingress
                .counters
                .pool_exhausted
                .fetch_add(1, Ordering::Relaxed);
            return Verdict::NoBuffer;
        };
        // SAFETY: the transaction's bytes live in the mbuf until it is freed, which the packet
        // now does; the mbuf is handed over whole.
        unsafe { p.attach(tx, usize::from(desc.len), mbuf.cast(), release_mbuf) };
        p.desc = Some(desc);
        p.source = Source::Udp(SocketAddr::V4(peer.addr));
        p.reply_port = Some(PortReply {
            queue: self.queue,
            mac: peer.mac,
        });
        p.received_ns = received_ns;
        match self.ingress.forward(p) {
            Ok(()) => Verdict::Accepted,
            Err(SubmitError::QueueFull) => Verdict::QueueFull,
            Err(SubmitError::PoolExhausted) => Verdict::NoBuffer,
            Err(SubmitError::Parse(e)) => Verdict::Malformed(e),
            Err(SubmitError::Duplicate) => Verdict::Duplicate,
            Err(SubmitError::OverShare) => Verdict::OverShare,
            Err(
                SubmitError::CrossPartition(_)
                | SubmitError::OwnerDown(_)
                | SubmitError::NotServing,
            ) => Verdict::NotInCluster,
        }
    }
}

/// What an RX loop is given.
pub struct RxSetup {
    pub port: u16,
    pub queue: u16,
    pub burst: u16,
    pub endpoint: Endpoint,
    pub filter: RecentFilter,
    /// Pool for verdict replies; None: no verdict replies (ARP and ICMP are always answered).
    pub replies: Option<MbufPool>,
    /// Datagrams other tiles want sent from this queue (signed pre-confirmations); sent
    /// with the replies' pool, so only when `replies` is on.
    pub outbound: Option<crossbeam_channel::Receiver<PortDatagram>>,
    pub counters: &'static QueueCounters,
    pub dataplane: &'static DataplaneCounters,
}

/// One RX queue's loop state. Single-threaded: it lives on its lcore.
pub struct RxQueue<D: Deliver> {
    setup: RxSetup,
    pub deliver: D,
    scratch: Box<Scratch>,
}

struct Candidate {
    mbuf: Mbuf,
    tx: NonNull<u8>,
    desc: TxDescriptor,
    peer: Peer,
    tag: u64,
}

/// Per-burst working memory, allocated once: a poll neither allocates nor clears arrays.
/// The pointers in it mean nothing between polls.
struct Scratch {
    mbufs: [Mbuf; MAX_BURST],
    views: [sys::gc_mbuf_view; MAX_BURST],
    /// To free in one bulk call at the end of the burst.
    free: [Mbuf; MAX_BURST],
    /// To transmit: answers and replies, at most one per received frame.
    out: [Mbuf; MAX_BURST],
    cands: Vec<Candidate>,
}

// SAFETY: between polls the scratch holds no live pointer; the loop owns it on one lcore.
unsafe impl Send for Scratch {}

/// The mbuf's checksum flags say the NIC found a bad IP or L4 checksum.
fn hardware_says_bad(ol_flags: u64) -> bool {
    let ip = ol_flags & u64::from(sys::RTE_MBUF_F_RX_IP_CKSUM_MASK);
    let l4 = ol_flags & u64::from(sys::RTE_MBUF_F_RX_L4_CKSUM_MASK);
    ip == u64::from(sys::RTE_MBUF_F_RX_IP_CKSUM_BAD)
        || l4 == u64::from(sys::RTE_MBUF_F_RX_L4_CKSUM_BAD)
}

impl<D: Deliver> RxQueue<D> {
    pub fn new(setup: RxSetup, deliver: D) -> Self {
        Self {
            setup,
            deliver,
            scratch: Box::new(Scratch {
                mbufs: [null_mut(); MAX_BURST],
                views: [sys::gc_mbuf_view::default(); MAX_BURST],
                free: [null_mut(); MAX_BURST],
                out: [null_mut(); MAX_BURST],
                cands: Vec::with_capacity(MAX_BURST),
            }),
        }
    }

    pub fn counters(&self) -> &'static QueueCounters {
        self.setup.counters
    }

    /// One burst. Returns the frames received.
    pub fn poll(&mut self) -> usize {
        let st = &mut self.setup;
        let s = &mut *self.scratch;
        // Queued outbound datagrams first, at most half the burst's room: received frames
        // can each add one more.
        let mut nout = st.outbound(&mut s.out[..MAX_BURST / 2]);
        let burst = st.burst.min((MAX_BURST - nout) as u16);
        // SAFETY: mbufs has room for `burst` pointers.
        let n = usize::from(unsafe {
            sys::gc_rx_burst(st.port, st.queue, s.mbufs.as_mut_ptr(), burst)
        });
        let c = st.counters;
        if n == 0 {
            bump(&c.empty_polls, 1);
            if nout > 0 {
                let mut nfree = 0;
                st.transmit(s, nout, &mut nfree);
                if nfree > 0 {
                    // SAFETY: free[..nfree] are mbufs we own and nobody references.
                    unsafe { sys::rte_pktmbuf_free_bulk(s.free.as_mut_ptr(), nfree as u32) };
                }
            }
            return 0;
        }
        bump(&c.busy_polls, 1);
        // SAFETY: the first n entries are mbufs the driver just gave us.
        unsafe { sys::gc_mbuf_views(s.mbufs.as_ptr(), n as u16, s.views.as_mut_ptr()) };
        let now = monotonic_ns();
        let mut nfree = 0;
        let mut bytes = 0u64;
        s.cands.clear();

        for i in 0..n {
            let (m, v) = (s.mbufs[i], &s.views[i]);
            bytes += u64::from(v.pkt_len);
            let reason = if v.nb_segs != 1 {
                Some(FrameDrop::MultiSegment)
            } else if hardware_says_bad(v.ol_flags) {
                Some(FrameDrop::HardwareChecksum)
            } else {
                None
            };
            if let Some(r) = reason {
                bump(&c.frame_drops[r as usize], 1);
                s.free[nfree] = m;
                nfree += 1;
                continue;
            }
            // SAFETY: a single-segment mbuf holds data_len bytes at data, ours until freed.
            let frame = unsafe { std::slice::from_raw_parts_mut(v.data, usize::from(v.data_len)) };
            match frame::classify(frame, &st.endpoint) {
                Err(r) => {
                    bump(&c.frame_drops[r as usize], 1);
                    s.free[nfree] = m;
                    nfree += 1;
                }
                Ok(kind @ (Frame::ArpRequest | Frame::EchoRequest)) => {
                    let (len, answered) = if kind == Frame::ArpRequest {
                        (frame::answer_arp(frame, &st.endpoint), &c.arp_replies)
                    } else {
                        (frame::answer_echo(frame, &st.endpoint), &c.echo_replies)
                    };
                    // SAFETY: our mbuf; the answer is no longer than the request was.
                    unsafe { sys::gc_mbuf_set_len(m, len as u16) };
                    bump(answered, 1);
                    s.out[nout] = m;
                    nout += 1;
                }
                Ok(Frame::Datagram { payload, peer }) => {
                    let tx = &frame[payload];
                    match parse_transaction(tx) {
                        Err(e) => {
                            bump(&c.parse_drops[e as usize], 1);
                            st.dataplane.parse_drop(e);
                            nout +=
                                st.reply(&mut s.out[nout..], &peer, Verdict::Malformed(e), None);
                            s.free[nfree] = m;
                            nfree += 1;
                        }
                        Ok(desc) => {
                            let tag = st.filter.tag(tx);
                            st.filter.prefetch(tag);
                            s.cands.push(Candidate {
                                mbuf: m,
                                tx: NonNull::from(&tx[0]),
                                desc,
                                peer,
                                tag,
                            });
                        }
                    }
                }
            }
        }

        let mut accepted = 0u64;
        for cand in s.cands.drain(..) {
            // Copied now: once delivered, the mbuf may be freed by another tile.
            let mut sig = [0u8; 64];
            if st.replies.is_some() {
                // SAFETY: desc was parsed from these bytes; still ours.
                let tx = unsafe {
                    std::slice::from_raw_parts(cand.tx.as_ptr(), usize::from(cand.desc.len))
                };
                sig.copy_from_slice(cand.desc.first_signature(tx));
            }
            let verdict = if st.filter.insert(cand.tag) {
                bump(&c.duplicates, 1);
                st.dataplane.rx_duplicates.fetch_add(1, Ordering::Relaxed);
                s.free[nfree] = cand.mbuf;
                nfree += 1;
                Verdict::Duplicate
            } else {
                let mbuf = NonNull::new(cand.mbuf).expect("received mbufs are not null");
                let v = self
                    .deliver
                    .deliver(mbuf, cand.tx, cand.desc, &cand.peer, now);
                match v {
                    Verdict::Accepted => {
                        accepted += 1;
                        bump(&c.accepted, 1);
                    }
                    Verdict::QueueFull => bump(&c.ring_full, 1),
                    _ => bump(&c.no_descriptor, 1),
                }
                v
            };
            nout += st.reply(&mut s.out[nout..], &cand.peer, verdict, Some(&sig));
        }

        if nout > 0 {
            st.transmit(s, nout, &mut nfree);
        }
        if nfree > 0 {
            // SAFETY: free[..nfree] are mbufs we own and nobody references.
            unsafe { sys::rte_pktmbuf_free_bulk(s.free.as_mut_ptr(), nfree as u32) };
        }
        bump(&c.packets, n as u64);
        bump(&c.bytes, bytes);
        let d = st.dataplane;
        d.rx_packets.fetch_add(n as u64, Ordering::Relaxed);
        d.rx_bytes.fetch_add(bytes, Ordering::Relaxed);
        d.net.add_in(n as u64);
        d.net.add_out(accepted);
        n
    }
}

impl RxSetup {
    /// Sends `out[..nout]` from this queue; what the driver did not take goes to
    /// `free[*nfree..]`, counted as dropped.
    fn transmit(&self, s: &mut Scratch, nout: usize, nfree: &mut usize) {
        // SAFETY: out[..nout] are mbufs we own; the TX queue is this lcore's alone.
        let sent = usize::from(unsafe {
            sys::gc_tx_burst(self.port, self.queue, s.out.as_mut_ptr(), nout as u16)
        });
        for i in sent..nout {
            s.free[*nfree] = s.out[i];
            *nfree += 1;
        }
        bump(&self.counters.tx_dropped, (nout - sent) as u64);
    }

    /// Writes queued outbound datagrams into fresh mbufs in `out`; returns how many.
    fn outbound(&self, out: &mut [Mbuf]) -> usize {
        let (Some(rx), Some(pool)) = (&self.outbound, self.replies) else {
            return 0;
        };
        let mut n = 0;
        while n < out.len() {
            let Ok(d) = rx.try_recv() else {
                break;
            };
            let mut buf = [0u8; frame::UDP_FRAME_OVERHEAD + crate::preconf::MAX_DATAGRAM];
            let Some(len) = frame::write_udp(&mut buf, &self.endpoint, &d.peer, &d.bytes) else {
                bump(&self.counters.tx_dropped, 1);
                continue;
            };
            // SAFETY: live pool.
            let m = unsafe { sys::gc_pktmbuf_alloc(pool.0) };
            if m.is_null() {
                bump(&self.counters.tx_dropped, 1);
                continue;
            }
            // SAFETY: a fresh mbuf has at least the default data room (2 KiB) past its
            // headroom, more than `len`; set_len checks it too.
            unsafe {
                if sys::gc_mbuf_set_len(m, len as u16) == 0 {
                    sys::gc_pktmbuf_free(m);
                    bump(&self.counters.tx_dropped, 1);
                    continue;
                }
                std::ptr::copy_nonoverlapping(buf.as_ptr(), sys::gc_mbuf_data(m), len);
            }
            bump(&self.counters.outbound, 1);
            out[n] = m;
            n += 1;
        }
        n
    }

    /// Write a verdict reply to `peer` into `out[0]` when replies are on; returns how many
    /// mbufs it queued (0 or 1).
    fn reply(&self, out: &mut [Mbuf], peer: &Peer, v: Verdict, sig: Option<&[u8; 64]>) -> usize {
        let Some(pool) = self.replies else {
            return 0;
        };
        if out.is_empty() {
            bump(&self.counters.tx_dropped, 1);
            return 0;
        }
        // SAFETY: live pool.
        let m = unsafe { sys::gc_pktmbuf_alloc(pool.0) };
        if m.is_null() {
            bump(&self.counters.tx_dropped, 1);
            return 0;
        }
        let mut payload = [0u8; reply::MAX_REPLY];
        let plen = reply::encode(v, sig.map(|s| &s[..]), &mut payload);
        let mut buf = [0u8; frame::UDP_FRAME_OVERHEAD + reply::MAX_REPLY];
        let len = frame::write_udp(&mut buf, &self.endpoint, peer, &payload[..plen])
            .expect("reply buffer sized for the largest reply");
        // SAFETY: a fresh mbuf has at least the default data room (2 KiB) past its headroom,
        // far more than `len`; set_len checks it too.
        unsafe {
            if sys::gc_mbuf_set_len(m, len as u16) == 0 {
                sys::gc_pktmbuf_free(m);
                bump(&self.counters.tx_dropped, 1);
                return 0;
            }
            std::ptr::copy_nonoverlapping(buf.as_ptr(), sys::gc_mbuf_data(m), len);
        }
        bump(&self.counters.verdict_replies, 1);
        out[0] = m;
        1
    }
}

impl<D: Deliver + Send + 'static> RxQueue<D> {
    /// Poll until `shutdown` on the calling thread (an EAL lcore), as an [`RxTile`] charged to
    /// this queue's tile slot. After 64 empty polls in a row, sleep `idle_sleep` between polls
    /// (zero: spin, the poll-mode default).
    pub fn run(self, shutdown: &AtomicBool, idle_sleep: Duration) -> Self {
        let stats = &self.setup.counters.tile;
        let mut tile = RxTile {
            rx: self,
            idle_sleep,
            empty: 0,
        };
        telemetry::lifecycle::run(&mut tile, stats, shutdown);
        tile.rx
    }
}

/// One RX queue as a tile: a burst per turn. Polls that return frames are busy time, empty
/// ones idle; after 64 empty polls in a row each turn sleeps `idle_sleep` (zero: spin).
pub struct RxTile<D: Deliver> {
    rx: RxQueue<D>,
    idle_sleep: Duration,
    empty: u32,
}

impl<D: Deliver + Send + 'static> Tile for RxTile<D> {
    fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn {
        if stopping {
            return Turn::Done;
        }
        let n = self.rx.poll();
        if n == 0 {
            self.empty = self.empty.saturating_add(1);
            if !self.idle_sleep.is_zero() && self.empty >= 64 {
                std::thread::sleep(self.idle_sleep);
            }
            clock.idle();
        } else {
            self.empty = 0;
            clock.stats().add_in(n as u64);
            clock.busy();
        }
        Turn::Continue
    }
}
