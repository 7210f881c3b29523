//! Tile loops of the dataplane: the UDP net tile and the verify tiles.

use crate::counters::DataplaneCounters;
use crate::dedup::{Dedup, DedupOutcome};
use crate::ingress::Ingress;
use crate::packet::{PacketBox, PacketPool, monotonic_ns};
use crate::recent::RecentFilter;
use crate::ring::Ring;
use crate::sigverify::{BatchVerifier, SigCheck};
use crate::socket::UdpReceiver;
use crossbeam_channel::Sender;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Receive bursts, parse in place, drop recent repeats, route to verify. Returns on shutdown.
pub fn run_udp_net(
    rx: UdpReceiver,
    ingress: Ingress,
    mut recent: RecentFilter,
    shutdown: Arc<AtomicBool>,
) {
    let burst = rx.burst();
    let mut bufs: Vec<PacketBox> = Vec::with_capacity(burst);
    // A private burst to drain the socket into (and count) when the pool is dry.
    let spare = PacketPool::new(burst);
    let counters = ingress.counters;
    let mut clock = telemetry::TileClock::new(&counters.net);
    while !shutdown.load(Ordering::Relaxed) {
        while bufs.len() < burst {
            match ingress.pool.take() {
                Some(p) => bufs.push(p),
                None => break,
            }
        }
        let dry = bufs.is_empty();
        if dry {
            bufs.extend((0..burst).filter_map(|_| spare.take()));
        }
        let n = match rx.recv_burst(&mut bufs, monotonic_ns()) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "udp receive failed");
                std::thread::sleep(Duration::from_millis(10));
                0
            }
        };
        // Time inside recvmmsg is mostly waiting for the first datagram: idle.
        clock.idle();
        if n == 0 {
            continue;
        }
        counters.rx_packets.fetch_add(n as u64, Ordering::Relaxed);
        counters.net.add_in(n as u64);
        if dry {
            counters
                .pool_exhausted
                .fetch_add(n as u64, Ordering::Relaxed);
            bufs.drain(..).for_each(|p| spare.give(p));
            continue;
        }
        let mut routed = 0;
        for p in bufs.drain(..n) {
            counters.rx_bytes.fetch_add(p.len as u64, Ordering::Relaxed);
            routed += u64::from(ingress.admit(p, &mut recent).is_ok());
        }
        counters.net.add_out(routed);
        clock.busy();
    }
    bufs.into_iter().for_each(|p| ingress.pool.give(p));
}

pub struct VerifyTile {
    /// Index of this tile's counter slot.
    pub index: usize,
    pub dedup: Dedup,
    pub batch_max: usize,
    pub current_slot: Arc<AtomicU64>,
    pub counters: &'static DataplaneCounters,
    pub pool: PacketPool,
}

impl VerifyTile {
    /// Verify batches; forward good packets to the bank (blocking: backpressure after
    /// verification). Returns on shutdown or when the bank is gone.
    pub fn run(
        mut self,
        input: Ring<PacketBox>,
        output: Sender<PacketBox>,
        shutdown: Arc<AtomicBool>,
    ) {
        let mut batch: Vec<PacketBox> = Vec::with_capacity(self.batch_max);
        let mut verifier = BatchVerifier::default();
        let mut results = Vec::new();
        let mut ok_flags = Vec::new();
        let stats = &self.counters.verify[self.index % crate::counters::MAX_VERIFY_TILES];
        let mut clock = telemetry::TileClock::new(stats);
        loop {
            let got = input.pop_timeout(Duration::from_millis(50));
            clock.idle();
            match got {
                Some(p) => batch.push(p),
                None => {
                    if shutdown.load(Ordering::Relaxed) {
                        return;
                    }
                    continue;
                }
            }
            while batch.len() < self.batch_max {
                match input.pop() {
                    Some(p) => batch.push(p),
                    None => break,
                }
            }
            let started = Instant::now();
            stats.add_in(batch.len() as u64);
            stats.set_queue_depth(input.len());
            let slot = self.current_slot.load(Ordering::Relaxed);
            self.counters
                .verify_in
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            // Seen before: no need to spend a verification on it.
            let mut i = 0;
            while i < batch.len() {
                let p = &batch[i];
                let d = p.desc.as_ref().expect("routed packets are parsed");
                if self.dedup.contains(d.first_signature(p.bytes())) {
                    self.counters.duplicate.fetch_add(1, Ordering::Relaxed);
                    let p = batch.swap_remove(i);
                    self.pool.give(p);
                } else {
                    i += 1;
                }
            }
            {
                let mut checks = Vec::with_capacity(batch.len() * 2);
                for p in &batch {
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
                verifier.verify(&checks, &mut results);
                ok_flags.clear();
                let mut at = 0;
                for p in &batch {
                    let n = usize::from(p.desc.as_ref().expect("parsed").num_signatures);
                    ok_flags.push(results[at..at + n].iter().all(|&b| b));
                    at += n;
                }
            }
            self.counters
                .verify_ns
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            for (p, ok) in batch.drain(..).zip(ok_flags.iter().copied()) {
                if !ok {
                    self.counters.bad_signature.fetch_add(1, Ordering::Relaxed);
                    self.pool.give(p);
                    continue;
                }
                let sig = p.desc.as_ref().expect("parsed").first_signature(p.bytes());
                match self.dedup.insert(sig, slot) {
                    DedupOutcome::New => {
                        self.counters.verify_ok.fetch_add(1, Ordering::Relaxed);
                        self.counters
                            .verify_latency
                            .record(monotonic_ns().saturating_sub(p.received_ns) / 1_000);
                        stats.add_out(1);
                        match output.try_send(p) {
                            Ok(()) => {}
                            Err(crossbeam_channel::TrySendError::Full(p)) => {
                                clock.busy();
                                let sent = output.send(p);
                                clock.backpressure();
                                if let Err(e) = sent {
                                    self.pool.give(e.into_inner());
                                    return;
                                }
                            }
                            Err(crossbeam_channel::TrySendError::Disconnected(p)) => {
                                self.pool.give(p);
                                return;
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
            clock.busy();
        }
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
        let stop = Arc::new(AtomicBool::new(false));
        let rx = UdpReceiver::bind("127.0.0.1:0".parse().unwrap(), 32, 1 << 20).unwrap();
        let addr = rx.local_addr().unwrap();
        let net = {
            let (i, s) = (ingress.clone(), stop.clone());
            std::thread::spawn(move || run_udp_net(rx, i, RecentFilter::new(1 << 12), s))
        };
        let tile = VerifyTile {
            index: 0,
            dedup: Dedup::new(1000, MAX_PROCESSING_AGE_SLOTS),
            batch_max: 64,
            current_slot: Arc::new(AtomicU64::new(1)),
            counters,
            pool: pool.clone(),
        };
        let verify = {
            let s = stop.clone();
            std::thread::spawn(move || tile.run(vrx, btx, s))
        };
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
        stop.store(true, Ordering::Release);
        net.join().unwrap();
        verify.join().unwrap();
        // Every buffer is back in the pool: nothing leaked.
        assert_eq!(pool.available(), pool.capacity());
    }
}
