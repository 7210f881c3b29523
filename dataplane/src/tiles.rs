//! Tiles of the dataplane: the UDP net tile and the verify tiles (each a `telemetry::Tile`;
//! the lifecycle runs their loops).

use crate::counters::DataplaneCounters;
use crate::dedup::{DedupOutcome, ShardedDedup};
use crate::ingress::Ingress;
use crate::packet::{PacketBox, PacketPool, monotonic_ns};
use crate::recent::RecentFilter;
use crate::ring::Ring;
use crate::sigverify::{SigCheck, StrictVerifier};
use crate::socket::UdpReceiver;
use crate::verified::VerifiedTx;
use crossbeam_channel::Sender;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use telemetry::{Tile, TileClock, TileStats, Turn};

/// The UDP net tile: receive bursts, parse in place, drop recent repeats, route to verify.
pub struct NetTile {
    rx: UdpReceiver,
    ingress: Ingress,
    recent: RecentFilter,
    bufs: Vec<PacketBox>,
    /// A private burst to drain the socket into (and count) when the pool is dry.
    spare: PacketPool,
}

impl NetTile {
    pub fn new(rx: UdpReceiver, ingress: Ingress, recent: RecentFilter) -> Self {
        let burst = rx.burst();
        Self {
            rx,
            ingress,
            recent,
            bufs: Vec::with_capacity(burst),
            spare: PacketPool::new(burst),
        }
    }

    /// Its counter slot.
    pub fn stats(counters: &'static DataplaneCounters) -> &'static TileStats {
        &counters.net
    }
}

impl Tile for NetTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn {
        let ingress = &self.ingress;
        if stopping {
            self.bufs.drain(..).for_each(|p| ingress.pool.give(p));
            return Turn::Done;
        }
        let burst = self.rx.burst();
        while self.bufs.len() < burst {
            match ingress.pool.take() {
                Some(p) => self.bufs.push(p),
                None => break,
            }
        }
        let dry = self.bufs.is_empty();
        if dry {
            self.bufs
                .extend((0..burst).filter_map(|_| self.spare.take()));
        }
        // Waits at most the socket's read timeout (50 ms), so a stop is seen promptly.
        let n = match self.rx.recv_burst(&mut self.bufs) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "udp receive failed");
                std::thread::sleep(Duration::from_millis(10));
                0
            }
        };
        // Time inside recvmmsg is mostly waiting for the first datagram: idle.
        clock.idle();
        let counters = ingress.counters;
        counters.rx_packets.fetch_add(n as u64, Ordering::Relaxed);
        counters.net.add_in(n as u64);
        if dry {
            // Drained into the spare burst and counted; the spares go back whether or not
            // anything came (so they never travel down the pipeline).
            counters
                .pool_exhausted
                .fetch_add(n as u64, Ordering::Relaxed);
            self.bufs.drain(..).for_each(|p| self.spare.give(p));
            return Turn::Continue;
        }
        if n == 0 {
            return Turn::Continue;
        }
        let mut routed = 0;
        for p in self.bufs.drain(..n) {
            counters.rx_bytes.fetch_add(p.len as u64, Ordering::Relaxed);
            routed += u64::from(ingress.admit(p, &mut self.recent).is_ok());
        }
        counters.net.add_out(routed);
        clock.busy();
        Turn::Continue
    }
}

/// A verify tile: dedup, batched signature checks, the one decode, forward to the bank
/// (blocking: backpressure after verification).
pub struct VerifyTile {
    /// Index of this tile's counter slot.
    index: usize,
    /// Shared by every verify tile.
    dedup: Arc<ShardedDedup>,
    batch_max: usize,
    current_slot: Arc<AtomicU64>,
    counters: &'static DataplaneCounters,
    pool: PacketPool,
    input: Ring<PacketBox>,
    output: Sender<PacketBox>,
    batch: Vec<PacketBox>,
    /// The part of `batch` being verified and forwarded.
    chunk: Vec<PacketBox>,
    verifier: StrictVerifier,
    results: Vec<bool>,
    ok_flags: Vec<bool>,
    /// The verifier's key-cache hits and misses already added to the counters.
    cache_reported: (u64, u64),
}

/// Transactions verified before they are forwarded, at most.
pub const FORWARD_CHUNK: usize = 4;

/// How long a verify tile waits for its first packet before looking at the stop flag.
const VERIFY_WAIT: Duration = Duration::from_millis(50);

impl VerifyTile {
    pub fn new(
        index: usize,
        dedup: Arc<ShardedDedup>,
        batch_max: usize,
        current_slot: Arc<AtomicU64>,
        counters: &'static DataplaneCounters,
        pool: PacketPool,
        input: Ring<PacketBox>,
        output: Sender<PacketBox>,
    ) -> Self {
        Self {
            index,
            dedup,
            batch_max,
            current_slot,
            counters,
            pool,
            input,
            output,
            batch: Vec::with_capacity(batch_max),
            chunk: Vec::with_capacity(FORWARD_CHUNK),
            verifier: StrictVerifier::default(),
            results: Vec::new(),
            ok_flags: Vec::new(),
            cache_reported: (0, 0),
        }
    }

    /// The counter slot of verify tile `index`.
    pub fn stats(counters: &'static DataplaneCounters, index: usize) -> &'static TileStats {
        &counters.verify[index % crate::counters::MAX_VERIFY_TILES]
    }
}

impl Tile for VerifyTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn {
        let stats = Self::stats(self.counters, self.index);
        let got = self.input.pop_timeout(VERIFY_WAIT);
        clock.idle();
        match got {
            Some(p) => self.batch.push(p),
            None if stopping => return Turn::Done,
            None => return Turn::Continue,
        }
        let batch = &mut self.batch;
        while batch.len() < self.batch_max {
            match self.input.pop() {
                Some(p) => batch.push(p),
                None => break,
            }
        }
        stats.add_in(batch.len() as u64);
        stats.set_queue_depth(self.input.len());
        let slot = self.current_slot.load(Ordering::Relaxed);
        self.counters
            .verify_in
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        // Seen before: no need to spend a verification on it. The rest keep their order.
        let mut kept = 0;
        for i in 0..batch.len() {
            let p = &batch[i];
            let d = p.desc.as_ref().expect("routed packets are parsed");
            // A rerouted transaction may be one this node saw before it was its own to run:
            // the bank's own check (pending, processed, foreign) decides.
            if self.dedup.contains(d.first_signature(p.bytes()), slot) && !p.rerouted {
                self.counters.duplicate.fetch_add(1, Ordering::Relaxed);
            } else {
                batch.swap(kept, i);
                kept += 1;
            }
        }
        for p in batch.drain(kept..) {
            self.pool.give(p);
        }
        // Verified and forwarded a few at a time: the first transactions of a large batch
        // reach the bank (and their senders their pre-confirmations) while the rest are still
        // being checked. Verification is one signature at a time, so this costs nothing.
        let mut chunk = std::mem::take(&mut self.chunk);
        while !self.batch.is_empty() {
            let n = FORWARD_CHUNK.min(self.batch.len());
            chunk.extend(self.batch.drain(..n));
            // Read again: the tile may have waited slots on a full bank link.
            let slot = self.current_slot.load(Ordering::Relaxed);
            if !self.verify_and_forward(&mut chunk, slot, stats, clock) {
                // The bank is gone: the rest of the batch goes back too.
                for p in self.batch.drain(..) {
                    self.pool.give(p);
                }
                self.chunk = chunk;
                return Turn::Done;
            }
        }
        self.chunk = chunk;
        clock.busy();
        Turn::Continue
    }

    fn on_stop(&mut self) {
        // What is still queued for this tile goes back to the pool.
        while let Some(p) = self.input.pop() {
            self.pool.give(p);
        }
    }
}

impl VerifyTile {
    /// Checks `chunk`'s signatures, then decodes, dedups and forwards each that passed;
    /// leaves `chunk` empty. False when the bank is gone (everything given back).
    fn verify_and_forward(
        &mut self,
        chunk: &mut Vec<PacketBox>,
        slot: u64,
        stats: &TileStats,
        clock: &mut TileClock<'_>,
    ) -> bool {
        let started = Instant::now();
        {
            let mut checks = Vec::with_capacity(chunk.len() * 2);
            for p in chunk.iter().filter(|p| !p.signatures_checked) {
                let d = p.desc.as_ref().expect("parsed");
                let buf = p.bytes();
                let msg = d.message(buf);
                for (k, sig) in d.signatures(buf).enumerate() {
                    checks.push(SigCheck {
                        pubkey: d.static_key(buf, k),
                        signature: sig,
                        message: msg,
                    });
                }
            }
            self.verifier.verify(&checks, &mut self.results);
            let (hits, misses) = self.verifier.cache_stats();
            let (h0, m0) = std::mem::replace(&mut self.cache_reported, (hits, misses));
            self.counters
                .key_cache_hits
                .fetch_add(hits - h0, Ordering::Relaxed);
            self.counters
                .key_cache_misses
                .fetch_add(misses - m0, Ordering::Relaxed);
            self.ok_flags.clear();
            let mut at = 0;
            for p in chunk.iter() {
                if p.signatures_checked {
                    self.ok_flags.push(true);
                    continue;
                }
                let n = usize::from(p.desc.as_ref().expect("parsed").num_signatures);
                self.ok_flags
                    .push(self.results[at..at + n].iter().all(|&b| b));
                at += n;
            }
        }
        self.counters
            .verify_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let mut pending = chunk.drain(..).zip(self.ok_flags.iter().copied());
        while let Some((mut p, ok)) = pending.next() {
            if !ok {
                self.counters.bad_signature.fetch_add(1, Ordering::Relaxed);
                self.pool.give(p);
                continue;
            }
            let desc = p.desc.expect("parsed");
            if p.verified.is_none() {
                let bytes = p.bytes();
                p.verified = VerifiedTx::decode(bytes, desc.message(bytes));
                if p.verified.is_none() {
                    self.counters.parse_drop(crate::ParseError::Undecodable);
                    self.pool.give(p);
                    continue;
                }
            }
            let sig = desc.first_signature(p.bytes());
            // This node's own transaction admitted again (a move given up re-admits what it
            // parked) finds its own earlier passage in the table: not a repeat. Anything else
            // seen before, a peer's forward included, is dropped here.
            let outcome = match self.dedup.insert(sig, slot) {
                DedupOutcome::Duplicate if p.readmitted => DedupOutcome::New,
                o => o,
            };
            match outcome {
                DedupOutcome::New => {
                    self.counters.verify_ok.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .verify_latency
                        .record(monotonic_ns().saturating_sub(p.received_ns) / 1_000);
                    stats.add_out(1);
                    match self.output.try_send(p) {
                        Ok(()) => {}
                        Err(crossbeam_channel::TrySendError::Full(p)) => {
                            clock.busy();
                            let sent = self.output.send(p);
                            clock.backpressure();
                            if let Err(e) = sent {
                                // The bank is gone: the rest of the batch goes back too.
                                self.pool.give(e.into_inner());
                                pending.for_each(|(p, _)| self.pool.give(p));
                                return false;
                            }
                        }
                        Err(crossbeam_channel::TrySendError::Disconnected(p)) => {
                            self.pool.give(p);
                            pending.for_each(|(p, _)| self.pool.give(p));
                            return false;
                        }
                    }
                }
                DedupOutcome::Duplicate => {
                    self.counters.duplicate.fetch_add(1, Ordering::Relaxed);
                    self.pool.give(p);
                }
                DedupOutcome::Full => {
                    self.counters.dedup_full.fetch_add(1, Ordering::Relaxed);
                    self.pool.give(p);
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::MAX_PROCESSING_AGE_SLOTS;
    use solana_hash::Hash;
    use solana_keypair::Keypair;
    use solana_message::Message;
    use solana_pubkey::Pubkey;
    use solana_signer::Signer;
    use solana_transaction::Transaction;
    use telemetry::{Placement, Stage};

    fn tx_bytes() -> Vec<u8> {
        let kp = Keypair::new();
        let ix =
            solana_system_interface::instruction::transfer(&kp.pubkey(), &Pubkey::new_unique(), 1);
        let tx = Transaction::new(
            &[&kp],
            Message::new(&[ix], Some(&kp.pubkey())),
            Hash::default(),
        );
        bincode::serialize(&tx).unwrap()
    }

    /// A stage running one verify tile over `ring`.
    fn spawn_verify(
        ring: Ring<PacketBox>,
        out: crossbeam_channel::Sender<PacketBox>,
        pool: &PacketPool,
        counters: &'static DataplaneCounters,
    ) -> Stage {
        let dedup = Arc::new(ShardedDedup::new(1000, MAX_PROCESSING_AGE_SLOTS, 1));
        spawn_verify_tile(0, dedup, ring, out, pool, counters)
    }

    fn spawn_verify_tile(
        index: usize,
        dedup: Arc<ShardedDedup>,
        ring: Ring<PacketBox>,
        out: crossbeam_channel::Sender<PacketBox>,
        pool: &PacketPool,
        counters: &'static DataplaneCounters,
    ) -> Stage {
        let tile = VerifyTile::new(
            index,
            dedup,
            64,
            Arc::new(AtomicU64::new(1)),
            counters,
            pool.clone(),
            ring,
            out,
        );
        let mut stage = Stage::new("verify");
        stage
            .launch(
                format!("gc-verify-{index}"),
                tile,
                VerifyTile::stats(counters, index),
                Placement::default(),
            )
            .unwrap();
        stage
    }

    /// A transaction this node saw (it was parked by a move later given up) admitted again as
    /// rerouted: forwarded a second time, while a plain repeat is still dropped.
    #[test]
    fn a_rerouted_transaction_passes_the_dedup_table() {
        let pool = PacketPool::new(64);
        let counters: &'static DataplaneCounters = telemetry::SharedRegion::private();
        let (btx, brx) = crossbeam_channel::bounded(64);
        let ring = Ring::new(64, crate::packet::Arena::HEAP);
        let ingress = Ingress::new(pool.clone(), vec![ring.clone()], counters);
        let stage = spawn_verify(ring, btx, &pool, counters);
        let bytes = tx_bytes();
        let next = || brx.recv_timeout(Duration::from_secs(5)).expect("forwarded");
        ingress.submit(&bytes).unwrap();
        pool.give(next());
        ingress.submit(&bytes).unwrap();
        ingress.submit_rerouted(&bytes).unwrap();
        pool.give(next());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while counters.duplicate.load(Ordering::Relaxed) < 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the repeat was not dropped"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(brx.try_recv().is_err(), "only the rerouted copy again");
        stage.stop();
    }

    /// Copies of one transaction reaching two verify tiles (as when the route table changed
    /// between them, or one fell back to the signature hash): exactly one is forwarded.
    #[test]
    fn copies_on_different_tiles_meet_one_dedup_table() {
        let pool = PacketPool::new(256);
        let counters: &'static DataplaneCounters = telemetry::SharedRegion::private();
        let dedup = Arc::new(ShardedDedup::new(1000, MAX_PROCESSING_AGE_SLOTS, 2));
        let (btx, brx) = crossbeam_channel::bounded(256);
        let rings: Vec<Ring<PacketBox>> = (0..2)
            .map(|_| Ring::new(64, crate::packet::Arena::HEAP))
            .collect();
        // One ingress per ring: each sends every copy to its own tile.
        let ingresses: Vec<Ingress> = rings
            .iter()
            .map(|r| Ingress::new(pool.clone(), vec![r.clone()], counters))
            .collect();
        let bytes = [tx_bytes(), tx_bytes(), tx_bytes()];
        for _ in 0..10 {
            for ingress in &ingresses {
                for b in &bytes {
                    ingress.submit(b).unwrap();
                }
            }
        }
        let stages: Vec<Stage> = rings
            .into_iter()
            .enumerate()
            .map(|(i, r)| spawn_verify_tile(i, dedup.clone(), r, btx.clone(), &pool, counters))
            .collect();
        let mut sigs = std::collections::HashSet::new();
        for _ in 0..3 {
            let p = brx.recv_timeout(Duration::from_secs(5)).expect("forwarded");
            let d = p.desc.unwrap();
            assert!(
                sigs.insert(*d.first_signature(p.bytes())),
                "forwarded twice"
            );
            pool.give(p);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while counters.duplicate.load(Ordering::Relaxed) < 57 {
            assert!(
                std::time::Instant::now() < deadline,
                "copies not all dropped"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            brx.try_recv().is_err(),
            "exactly one copy of each forwarded"
        );
        for s in stages {
            s.stop();
        }
    }

    /// A batch is forwarded in chunks as it is verified: with the bank's link full after
    /// one transaction, the tile has not yet checked the batch's last one (a bad signature).
    #[test]
    fn verify_tile_forwards_before_it_has_checked_the_whole_batch() {
        let pool = PacketPool::new(64);
        let counters: &'static DataplaneCounters = telemetry::SharedRegion::private();
        let ring = Ring::new(64, crate::packet::Arena::HEAP);
        let (btx, brx) = crossbeam_channel::bounded(1);
        let ingress = Ingress::new(pool.clone(), vec![ring.clone()], counters);
        // Queued before the tile starts: its first turn takes all of them as one batch.
        for _ in 0..31 {
            ingress.submit(&tx_bytes()).unwrap();
        }
        let mut forged = tx_bytes();
        forged[5] ^= 1;
        ingress.submit(&forged).unwrap();
        let verify = spawn_verify(ring, btx, &pool, counters);
        let first = brx.recv_timeout(Duration::from_secs(5)).expect("forwarded");
        // The tile is now blocked on the full link, a chunk or two into the batch.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(counters.bad_signature.load(Ordering::Relaxed), 0);
        pool.give(first);
        for _ in 0..30 {
            pool.give(brx.recv_timeout(Duration::from_secs(5)).expect("the rest"));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while counters.bad_signature.load(Ordering::Relaxed) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the forged one was never checked"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        verify.stop();
    }

    /// What leaves the verify tile is decoded once, there: the transaction the bytes hold and
    /// the message hash Agave computes. A transaction the RPC already checked is not checked
    /// again (a bad signature under that flag goes through: the flag is the RPC's word), but
    /// it is still deduplicated; nobody else can set the flag, since the pool clears it.
    #[test]
    fn verify_tile_decodes_once_and_trusts_only_rpc_checks() {
        let pool = PacketPool::new(64);
        let counters: &'static DataplaneCounters = telemetry::SharedRegion::private();
        let ring = Ring::new(64, crate::packet::Arena::HEAP);
        let (btx, brx) = crossbeam_channel::bounded(64);
        let ingress = Ingress::new(pool.clone(), vec![ring.clone()], counters);
        let verify = spawn_verify(ring, btx, &pool, counters);

        let good = tx_bytes();
        ingress.submit(&good).unwrap();
        let p = brx.recv_timeout(Duration::from_secs(5)).expect("verified");
        let v = p.verified.as_deref().expect("decoded by the verify tile");
        let tx: solana_transaction::versioned::VersionedTransaction =
            bincode::deserialize(&good).unwrap();
        assert_eq!(v.tx, tx);
        assert_eq!(v.message_hash, tx.message.hash());
        pool.give(p);

        // Checked by the RPC: a flipped signature byte is not looked at again...
        let mut forged = tx_bytes();
        forged[5] ^= 1;
        let desc = crate::parse_transaction(&forged).unwrap();
        let decoded = VerifiedTx::decode(&forged, desc.message(&forged)).unwrap();
        ingress
            .submit_checked(&forged, desc, decoded.clone())
            .unwrap();
        let p = brx.recv_timeout(Duration::from_secs(5)).expect("passed on");
        assert_eq!(p.bytes(), &forged[..]);
        assert_eq!(
            p.verified.as_deref().unwrap().message_hash,
            decoded.message_hash
        );
        pool.give(p);
        // ...but it is deduplicated like any other.
        ingress.submit_checked(&forged, desc, decoded).unwrap();
        // The same bytes from the network: a duplicate before any check is spent on them.
        ingress.submit(&forged).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(brx.try_recv().is_err());
        assert_eq!(counters.duplicate.load(Ordering::Relaxed), 2);
        assert_eq!(counters.bad_signature.load(Ordering::Relaxed), 0);
        // Other forged bytes from the network are checked, and fail.
        let mut unchecked = tx_bytes();
        unchecked[5] ^= 1;
        ingress.submit(&unchecked).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(brx.try_recv().is_err());
        assert_eq!(counters.bad_signature.load(Ordering::Relaxed), 1);

        // The flag does not outlive the packet.
        let mut p = pool.take().unwrap();
        p.signatures_checked = true;
        p.verified = Some(
            VerifiedTx::decode(
                &good,
                crate::parse_transaction(&good).unwrap().message(&good),
            )
            .unwrap(),
        );
        pool.give(p);
        let all: Vec<PacketBox> = (0..pool.capacity()).map(|_| pool.take().unwrap()).collect();
        assert!(
            all.iter()
                .all(|p| !p.signatures_checked && p.verified.is_none())
        );
        all.into_iter().for_each(|p| pool.give(p));
        assert!(verify.stop());
    }

    /// With the pool dry, datagrams are drained into the net tile's spare burst and counted as
    /// pool-exhausted drops, also after receive timeouts: the spares never go down the
    /// pipeline (where the pool they do not belong to would lose them).
    #[test]
    fn a_dry_pool_drains_and_counts_across_timeouts() {
        let pool = PacketPool::new(4);
        let held: Vec<PacketBox> = (0..4).map(|_| pool.take().unwrap()).collect();
        let counters: &'static DataplaneCounters = telemetry::SharedRegion::private();
        let ring = Ring::new(16, crate::packet::Arena::HEAP);
        let ingress = Ingress::new(pool.clone(), vec![ring.clone()], counters);
        let rx = UdpReceiver::bind("127.0.0.1:0".parse().unwrap(), 8, 1 << 20).unwrap();
        let addr = rx.local_addr().unwrap();
        let mut net = Stage::new("net");
        net.launch(
            "gc-net",
            NetTile::new(rx, ingress, RecentFilter::new(1 << 10)),
            NetTile::stats(counters),
            Placement::default(),
        )
        .unwrap();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for round in 1..=3u64 {
            // Longer than the socket's 50 ms timeout: empty receives come between rounds.
            std::thread::sleep(Duration::from_millis(120));
            sock.send_to(&tx_bytes(), addr).unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            while counters.pool_exhausted.load(Ordering::Relaxed) < round
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(counters.pool_exhausted.load(Ordering::Relaxed), round);
        }
        assert_eq!(ring.len(), 0, "nothing went on while the pool was dry");
        assert!(net.stop());
        held.into_iter().for_each(|p| pool.give(p));
        assert_eq!(pool.available(), pool.capacity());
    }

    /// UDP in, through the net and verify tiles: good transactions come out once; bad
    /// signatures, duplicates and garbage are counted and dropped.
    #[test]
    fn net_and_verify_tiles_filter_and_count() {
        let pool = PacketPool::new(1024);
        let counters: &'static DataplaneCounters = telemetry::SharedRegion::private();
        let vrx = Ring::new(256, crate::packet::Arena::HEAP);
        let vtx = vrx.clone();
        let (btx, brx) = crossbeam_channel::bounded(256);
        let ingress = Ingress::new(pool.clone(), vec![vtx], counters);
        let rx = UdpReceiver::bind("127.0.0.1:0".parse().unwrap(), 32, 1 << 20).unwrap();
        let addr = rx.local_addr().unwrap();
        let mut net = Stage::new("net");
        net.launch(
            "gc-net",
            NetTile::new(rx, ingress.clone(), RecentFilter::new(1 << 12)),
            NetTile::stats(counters),
            Placement::default(),
        )
        .unwrap();
        let verify = spawn_verify(vrx, btx, &pool, counters);
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let good: Vec<Vec<u8>> = (0..20).map(|_| tx_bytes()).collect();
        for g in &good {
            sock.send_to(g, addr).unwrap();
        }
        for g in &good[..5] {
            sock.send_to(g, addr).unwrap(); // repeats: the net tile's filter drops them
        }
        let mut bad = tx_bytes();
        bad[5] ^= 1;
        sock.send_to(&bad, addr).unwrap();
        sock.send_to(&[1, 2, 3], addr).unwrap();
        let mut got = Vec::new();
        while let Ok(p) = brx.recv_timeout(Duration::from_secs(5)) {
            got.push(p.bytes().to_vec());
            pool.give(p);
            if got.len() == 20 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        assert!(brx.try_recv().is_err(), "something extra came through");
        got.sort();
        let mut want = good.clone();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(counters.bad_signature.load(Ordering::Relaxed), 1);
        assert_eq!(counters.rx_duplicates.load(Ordering::Relaxed), 5);
        assert_eq!(counters.parse_dropped(crate::ParseError::Truncated), 1);
        assert!(net.stop());
        assert!(verify.stop());
        // Every buffer is back in the pool: nothing leaked.
        assert_eq!(pool.available(), pool.capacity());
    }
}
