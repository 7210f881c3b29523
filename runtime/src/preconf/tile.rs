//! The preconf tile: takes the bank's drafts, signs them in batches with the identity key
//! (one ed25519 signature per batch of up to 64, `dataplane::preconf`), posts each on the
//! board for the RPC and sends it to the transaction's sender from the TPU socket, at most
//! `max_replies_per_peer_per_s` per IP address.
//!
//! Reflection: a reply can be larger than its request (up to `MAX_DATAGRAM`, 482 bytes, for a
//! transaction of ~170 or more), and its source address can be forged. `admitted` and
//! `executed` replies cost the sender a fee (the payer was funded and the transaction runs);
//! `rejected` ones cost nothing, so they get their own, much lower per-address bound,
//! [`REJECTED_REPLIES_PER_PEER_PER_S`].

use super::board::Board;
use super::{Draft, PreconfCounters, Reply};
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use dataplane::preconf::{BatchSigner, Body, MAX_BATCH};
use dataplane::reply::PortDatagram;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use telemetry::{Tile, TileClock, Turn, next_input};

/// Per-peer token buckets in a fixed table (peers hashing together share one: a bound that
/// can only be stricter, never memory that grows with the number of peers).
struct PeerLimiter {
    rate: f64,
    buckets: Box<[(f64, u64)]>,
    hasher: ahash::RandomState,
}

impl PeerLimiter {
    const BUCKETS: usize = 4096;

    fn new(per_s: u32) -> Self {
        Self {
            rate: per_s as f64,
            buckets: vec![(per_s as f64, 0); Self::BUCKETS].into_boxed_slice(),
            hasher: ahash::RandomState::new(),
        }
    }

    /// Takes a token for `ip` at `now_ns`; false when its bucket is empty.
    fn allow(&mut self, ip: IpAddr, now_ns: u64) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        let i = self.hasher.hash_one(ip) as usize % Self::BUCKETS;
        let (tokens, last) = &mut self.buckets[i];
        let refill = now_ns.saturating_sub(*last) as f64 * 1e-9 * self.rate;
        *tokens = (*tokens + refill).min(self.rate);
        *last = now_ns;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// `rejected` replies per second to one IP address at most (they cost the sender nothing).
pub const REJECTED_REPLIES_PER_PEER_PER_S: u32 = 100;

pub struct PreconfTile {
    drafts: Receiver<Draft>,
    signer: BatchSigner,
    socket: Option<Arc<UdpSocket>>,
    /// Per raw-port RX queue, the link to its lcore.
    ports: Vec<Sender<PortDatagram>>,
    board: Arc<Board>,
    counters: &'static PreconfCounters,
    stats: &'static telemetry::TileStats,
    limiter: PeerLimiter,
    /// For `rejected` replies.
    rejected_limiter: PeerLimiter,
    batch: Vec<Draft>,
    /// The PubSub feed, and how many subscriptions listen to it.
    feed: Option<(Sender<Vec<u8>>, Arc<AtomicUsize>)>,
}

impl PreconfTile {
    /// `secret`: the identity key's 32-byte seed. `socket`: the TPU socket, for replies;
    /// `ports`: the raw port's RX lcores, for replies to what they received.
    pub fn new(
        drafts: Receiver<Draft>,
        secret: &[u8; 32],
        socket: Option<Arc<UdpSocket>>,
        ports: Vec<Sender<PortDatagram>>,
        board: Arc<Board>,
        counters: &'static PreconfCounters,
        stats: &'static telemetry::TileStats,
        max_replies_per_peer_per_s: u32,
    ) -> Self {
        Self {
            drafts,
            signer: BatchSigner::new(secret),
            socket,
            ports,
            board,
            counters,
            stats,
            limiter: PeerLimiter::new(max_replies_per_peer_per_s),
            rejected_limiter: PeerLimiter::new(
                max_replies_per_peer_per_s.min(REJECTED_REPLIES_PER_PEER_PER_S),
            ),
            batch: Vec::with_capacity(MAX_BATCH),
            feed: None,
        }
    }

    /// Also hand every datagram to `feed` while `listeners` is non-zero.
    pub fn with_feed(mut self, feed: Sender<Vec<u8>>, listeners: Arc<AtomicUsize>) -> Self {
        self.feed = Some((feed, listeners));
        self
    }

    pub fn identity(&self) -> [u8; 32] {
        self.signer.identity()
    }

    /// Signs and delivers the drafts in `self.batch`.
    fn deliver(&mut self) {
        let bodies: Vec<&Body> = self.batch.iter().map(|d| &d.body).collect();
        let (batch, board, counters) = (&self.batch, &self.board, self.counters);
        let (socket, ports) = (&self.socket, &self.ports);
        let (paid, unpaid) = (&mut self.limiter, &mut self.rejected_limiter);
        let feed = self
            .feed
            .as_ref()
            .filter(|(_, listeners)| listeners.load(Ordering::Relaxed) > 0)
            .map(|(tx, _)| tx);
        self.signer.sign(&bodies, |i, datagram| {
            let draft = &batch[i];
            board.post(&draft.body.signature, datagram);
            let limiter = if draft.body.stage == super::Stage::Rejected {
                &mut *unpaid
            } else {
                &mut *paid
            };
            if let Some(tx) = feed {
                match tx.try_send(datagram.to_vec()) {
                    Ok(()) => counters.sent_pubsub.fetch_add(1, Ordering::Relaxed),
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                        counters.pubsub_dropped.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            let now = dataplane::monotonic_ns();
            match draft.reply {
                Reply::Socket(to) => {
                    if let Some(socket) = socket {
                        send(socket, limiter, counters, to, datagram, now);
                    }
                }
                Reply::Port { queue, peer } => {
                    if let Some(port) = ports.get(usize::from(queue)) {
                        to_port(port, limiter, counters, peer, datagram, now);
                    }
                }
                Reply::None => {}
            }
            // The first promise's latency (admission time); an `executed` one follows execution.
            if draft.received_ns > 0 && draft.body.stage != super::Stage::Executed {
                counters
                    .latency
                    .record(now.saturating_sub(draft.received_ns) / 1_000);
            }
        });
        counters.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.add_in(self.batch.len() as u64);
        self.stats.add_out(self.batch.len() as u64);
        self.stats.set_queue_depth(self.drafts.len());
        self.batch.clear();
    }
}

fn send(
    socket: &UdpSocket,
    limiter: &mut PeerLimiter,
    counters: &PreconfCounters,
    to: SocketAddr,
    datagram: &[u8],
    now_ns: u64,
) {
    if !limiter.allow(to.ip(), now_ns) {
        counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        return;
    }
    match socket.send_to(datagram, to) {
        Ok(_) => counters.sent_udp.fetch_add(1, Ordering::Relaxed),
        Err(_) => counters.send_errors.fetch_add(1, Ordering::Relaxed),
    };
}

fn to_port(
    port: &Sender<PortDatagram>,
    limiter: &mut PeerLimiter,
    counters: &PreconfCounters,
    peer: dataplane::frame::Peer,
    datagram: &[u8],
    now_ns: u64,
) {
    if !limiter.allow(IpAddr::V4(*peer.addr.ip()), now_ns) {
        counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let d = PortDatagram {
        peer,
        bytes: datagram.to_vec(),
    };
    match port.try_send(d) {
        Ok(()) => counters.sent_dpdk.fetch_add(1, Ordering::Relaxed),
        Err(_) => counters.port_dropped.fetch_add(1, Ordering::Relaxed),
    };
}

impl Tile for PreconfTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, _stopping: bool) -> Turn {
        let first = match next_input(&self.drafts, clock) {
            Ok(d) => d,
            Err(turn) => return turn,
        };
        self.batch.push(first);
        // Whatever else is queued shares the signature.
        while self.batch.len() < MAX_BATCH {
            match self.drafts.try_recv() {
                Ok(d) => self.batch.push(d),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        self.deliver();
        clock.busy();
        Turn::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_bounds_each_peer_and_refills() {
        let mut l = PeerLimiter::new(10);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = 1_000_000_000;
        let granted = (0..100).filter(|_| l.allow(a, t0)).count();
        assert_eq!(granted, 10);
        assert!(
            l.allow(a, t0 + 100_000_000),
            "a tenth of a second refills one token"
        );
        assert!(!l.allow(a, t0 + 100_000_000));
        let mut off = PeerLimiter::new(0);
        assert!(!off.allow(a, t0));
    }

    /// Replies to refused transactions (free to send) are bounded far lower than paid ones;
    /// every datagram sent verifies against the tile's identity.
    #[test]
    fn unpaid_replies_have_their_own_lower_bound() {
        use super::super::{Body, Outcome, Stage};
        let rc = telemetry::SharedRegion::private::<crate::metrics::RuntimeCounters>();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let (_tx, rx) = crossbeam_channel::bounded(1);
        let mut tile = PreconfTile::new(
            rx,
            &[1; 32],
            Some(server),
            Vec::new(),
            Arc::new(Board::new(16)),
            &rc.preconf,
            &rc.preconf_tile,
            1_000,
        );
        let to = client.local_addr().unwrap();
        let sent = || rc.preconf.sent_udp.load(Ordering::Relaxed);
        let identity = tile.identity();
        let mut received = 0;
        // Read after each batch: the socket's buffer holds fewer datagrams than the test sends.
        let drain = |received: &mut u64| {
            let mut buf = [0u8; 2048];
            while let Ok(n) = client.recv(&mut buf) {
                dataplane::preconf::verify(&buf[..n], Some(&identity)).expect("signed");
                *received += 1;
            }
        };
        client
            .set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        for (stage, n) in [(Stage::Rejected, 300), (Stage::Admitted, 300)] {
            for i in 0..n {
                let body = Body::new(stage, Outcome::NotIncluded, 0.9, [i as u8; 64]);
                tile.batch.push(Draft {
                    body,
                    reply: Reply::Socket(to),
                    received_ns: 0,
                });
                if tile.batch.len() == MAX_BATCH || i == n - 1 {
                    tile.deliver();
                    drain(&mut received);
                }
            }
            if stage == Stage::Rejected {
                // A full bucket of 100, and what refilled while the test ran.
                assert!(
                    (100..=180).contains(&sent()),
                    "{} rejected replies sent",
                    sent()
                );
            }
        }
        let rejected_sent = 600 - sent() - rc.preconf.rate_limited.load(Ordering::Relaxed);
        assert_eq!(
            rejected_sent, 0,
            "every reply is either sent or counted as limited"
        );
        assert!(sent() >= 400, "all 300 paid replies went out: {}", sent());
        assert_eq!(received, sent());
    }
}
