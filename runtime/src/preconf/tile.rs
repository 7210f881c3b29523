//! The preconf tile: takes the bank's drafts, signs them in batches with the identity key
//! (one ed25519 signature per batch of up to 64, `dataplane::preconf`), posts each on the
//! board for the RPC and sends it to the transaction's sender from the TPU socket, at most
//! `max_replies_per_peer_per_s` per IP address.

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
        let (socket, ports, limiter) = (&self.socket, &self.ports, &mut self.limiter);
        let feed = self
            .feed
            .as_ref()
            .filter(|(_, listeners)| listeners.load(Ordering::Relaxed) > 0)
            .map(|(tx, _)| tx);
        self.signer.sign(&bodies, |i, datagram| {
            let draft = &batch[i];
            board.post(&draft.body.signature, datagram);
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
}
