//! The RX loop over a real DPDK port (net_ring loopback, no NIC, no hugepages), in its own
//! process as EAL requires: transactions come out as descriptor packets pointing into their
//! mbufs; every mbuf goes back to the pool when its packet does, or at once when dropped.

#![cfg(feature = "dpdk")]

use dataplane::config::{DpdkConfig, PortConfig};
use dataplane::dpdk::eal::Eal;
use dataplane::dpdk::port::{Port, loopback_ring};
use dataplane::dpdk::rx::{RxQueue, RxSetup, ToIngress};
use dataplane::dpdk::sys;
use dataplane::frame::{Endpoint, Peer, write_udp};
use dataplane::nic::{QueueCounters, get};
use dataplane::reply::PortDatagram;
use dataplane::{DataplaneCounters, Ingress, PacketPool, PortReply, Source};
use solana_keypair::Keypair;
use solana_signer::Signer;
use std::net::{Ipv4Addr, SocketAddrV4};

fn tx_bytes() -> Vec<u8> {
    let kp = Keypair::new();
    let ix = solana_system_interface::instruction::transfer(
        &kp.pubkey(),
        &solana_pubkey::Pubkey::new_unique(),
        1,
    );
    let tx = solana_transaction::Transaction::new(
        &[&kp],
        solana_message::Message::new(&[ix], Some(&kp.pubkey())),
        solana_hash::Hash::default(),
    );
    bincode::serialize(&tx).unwrap()
}

fn free_mbufs(port: &Port) -> u32 {
    // SAFETY: live pool.
    unsafe { sys::rte_mempool_avail_count(port.pool().0) }
}

/// Put frames into the loopback ring (as if the NIC had received them).
fn inject(port: &Port, frames: &[Vec<u8>]) {
    for f in frames {
        // SAFETY: a fresh mbuf, room checked by set_len, handed to the ring.
        unsafe {
            let m = sys::gc_pktmbuf_alloc(port.pool().0);
            assert!(!m.is_null());
            assert_eq!(sys::gc_mbuf_set_len(m, f.len() as u16), 1);
            std::ptr::copy_nonoverlapping(f.as_ptr(), sys::gc_mbuf_data(m), f.len());
            let mut one = [m];
            assert_eq!(sys::gc_tx_burst(port.id, 0, one.as_mut_ptr(), 1), 1);
        }
    }
}

#[test]
fn rx_loop_hands_over_mbufs_and_gets_every_one_back() {
    let _eal = Eal::init(&DpdkConfig {
        main_lcore: 0,
        rx_lcores: vec![1],
        file_prefix: format!("gc-test-rx-{}", std::process::id()),
        no_huge: true,
        memory_mb: 128,
        eal_args: vec!["--no-pci".into()],
        ..DpdkConfig::default()
    })
    .expect("EAL starts without hugepages");
    assert!(matches!(
        Eal::init(&_eal.settings),
        Err(dataplane::dpdk::DpdkError::EalAgain)
    ));
    let name = loopback_ring("gc_test_rx", 1024).unwrap();
    let port = Port::start(&PortConfig {
        device: name,
        rx_descriptors: 64,
        tx_descriptors: 64,
        rss: false,
        mbuf_pool_size: 1023,
        mbuf_cache: 0,
        ..PortConfig::default()
    })
    .unwrap();
    let us = Endpoint {
        mac: port.mac,
        ipv4: Ipv4Addr::new(10, 1, 0, 1),
        udp_port: 8003,
    };
    let them = Peer {
        mac: [2, 0, 0, 0, 0, 9],
        addr: SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 2), 5555),
    };
    let frame = |payload: &[u8]| {
        let mut f = vec![0u8; 2048];
        let n = write_udp(&mut f, &them.as_endpoint(), &us.as_peer(), payload).unwrap();
        f.truncate(n);
        f
    };

    // Three descriptors only, and a verify ring of two: the third and fourth transactions
    // find the ring full; later, with the descriptors held, one finds none free.
    let pool = PacketPool::with_descriptors(16, 3, dataplane::dpdk::mem::EAL_ARENA);
    let counters: &'static DataplaneCounters = telemetry::SharedRegion::private();
    let vrx = dataplane::ring::Ring::new(2, dataplane::dpdk::mem::EAL_ARENA);
    let vtx = vrx.clone();
    let ingress = Ingress::new(pool.clone(), vec![vtx], counters);
    let queue: &'static QueueCounters = Box::leak(Box::default());
    let mut rx = RxQueue::new(
        RxSetup {
            port: port.id,
            queue: 0,
            burst: 32,
            endpoint: us,
            filter: dataplane::recent::RecentFilter::new(1024),
            replies: None,
            outbound: None,
            counters: queue,
            dataplane: counters,
        },
        ToIngress {
            ingress: ingress.clone(),
            queue: 0,
        },
    );

    let idle = free_mbufs(&port);
    let txs: Vec<Vec<u8>> = (0..4).map(|_| tx_bytes()).collect();
    let mut frames: Vec<Vec<u8>> = txs.iter().map(|t| frame(t)).collect();
    frames.insert(1, frame(&txs[0])); // a repeat
    frames.push(frame(&[1, 2, 3])); // malformed
    frames.push(vec![0u8; 10]); // runt
    inject(&port, &frames);
    assert_eq!(free_mbufs(&port), idle - frames.len() as u32);
    while rx.poll() > 0 {}

    assert_eq!(get(&queue.packets), frames.len() as u64);
    assert_eq!(get(&queue.accepted), 2);
    assert_eq!(get(&queue.duplicates), 1);
    assert_eq!(get(&queue.ring_full), 2);
    assert_eq!(get(&queue.no_descriptor), 0);
    // Two mbufs are held by the two packets in the verify ring; the rest are back.
    assert_eq!(free_mbufs(&port), idle - 2);
    let got: Vec<_> = std::iter::from_fn(|| vrx.pop()).collect();
    assert_eq!(got.len(), 2);
    for (p, want) in got.iter().zip(&txs) {
        assert!(p.is_descriptor());
        assert_eq!(p.bytes(), &want[..], "parsed in place, bytes intact");
        assert_eq!(p.desc.unwrap().len as usize, want.len());
        assert_eq!(p.source, Source::Udp(them.addr.into()));
        // Replies to it go out of the queue it came in on, to the sender's MAC.
        assert_eq!(
            p.reply_port,
            Some(PortReply {
                queue: 0,
                mac: them.mac
            })
        );
    }
    // Hold them while a fifth arrives: the descriptor pool (3) has one left, then none.
    let extra: Vec<Vec<u8>> = (0..2).map(|_| tx_bytes()).collect();
    inject(&port, &extra.iter().map(|t| frame(t)).collect::<Vec<_>>());
    while rx.poll() > 0 {}
    assert_eq!(get(&queue.accepted), 3);
    assert_eq!(get(&queue.no_descriptor), 1);
    assert_eq!(free_mbufs(&port), idle - 3);
    // Leaving the pipeline frees the mbufs.
    for p in got.into_iter().chain(std::iter::from_fn(|| vrx.pop())) {
        pool.give(p);
    }
    assert_eq!(free_mbufs(&port), idle);
    assert_eq!(pool.descriptors_available(), 3);

    // A datagram another tile hands the queue (a pre-confirmation) leaves on its next poll,
    // received or not, framed to the peer; the loopback ring brings it back as a frame
    // addressed to the peer, not to us.
    let (out_tx, out_rx) = crossbeam_channel::bounded(4);
    let sent: &'static QueueCounters = Box::leak(Box::default());
    let mut replying = RxQueue::new(
        RxSetup {
            port: port.id,
            queue: 0,
            burst: 32,
            endpoint: us,
            filter: dataplane::recent::RecentFilter::new(1024),
            replies: Some(port.pool()),
            outbound: Some(out_rx),
            counters: sent,
            dataplane: counters,
        },
        ToIngress { ingress, queue: 0 },
    );
    out_tx
        .send(PortDatagram {
            peer: them,
            bytes: b"a signed promise".to_vec(),
        })
        .unwrap();
    assert_eq!(replying.poll(), 0, "nothing received yet");
    assert_eq!(get(&sent.outbound), 1);
    assert_eq!(get(&sent.tx_dropped), 0);
    while replying.poll() > 0 {}
    assert_eq!(get(&sent.packets), 1);
    let dropped: u64 = sent.frame_drops_by_reason().map(|(_, n)| n).sum();
    assert_eq!(dropped, 1, "the looped-back reply is not for us");
    assert_eq!(
        free_mbufs(&port),
        idle,
        "the reply's mbuf went back to the pool"
    );
    port.close();
}
