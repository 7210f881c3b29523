//! The DPDK path's frame parser (dataplane::frame) and the packet buffer it feeds
//! (dataplane::packet::Packet::fill). Any byte string must classify without panicking; every
//! classified frame must yield in-bounds results; ARP and echo answers must be well-formed;
//! a datagram written by `write_udp` must classify back to the same payload and peer.
#![no_main]
use dataplane::Packet;
use dataplane::frame::{self, Endpoint, Frame, Peer};
use libfuzzer_sys::fuzz_target;
use std::net::{Ipv4Addr, SocketAddrV4};

pub const US: Endpoint = Endpoint {
    mac: [0x02, 0, 0, 0, 0, 0x01],
    ipv4: Ipv4Addr::new(10, 0, 0, 1),
    udp_port: 8003,
};

fuzz_target!(|data: &[u8]| {
    match frame::classify(data, &US) {
        Ok(Frame::Datagram { payload, peer }) => {
            let p = &data[payload.clone()];
            // The datagram goes on to the transaction parser as the DPDK RX tile does it.
            let _ = dataplane::parse_transaction(p);
            let mut pkt = Packet::zeroed();
            if pkt.fill(p) {
                assert_eq!(pkt.bytes(), p);
            }
            // Reply to the sender: it must classify at the sender as a datagram from us.
            let mut out = vec![0u8; frame::UDP_FRAME_OVERHEAD + p.len()];
            let n = frame::write_udp(&mut out, &US, &peer, p).expect("room for the reply");
            let them = peer.as_endpoint();
            match frame::classify(&out[..n], &them) {
                Ok(Frame::Datagram {
                    payload: back,
                    peer: from,
                }) => {
                    assert_eq!(&out[back], p);
                    assert_eq!(from, US.as_peer());
                }
                other => panic!("our own datagram does not classify: {other:?}"),
            }
        }
        Ok(Frame::ArpRequest) => {
            let mut f = data.to_vec();
            let n = frame::answer_arp(&mut f, &US);
            assert!(n <= f.len().max(60));
        }
        Ok(Frame::EchoRequest) => {
            let mut f = data.to_vec();
            let n = frame::answer_echo(&mut f, &US);
            assert!(n <= f.len());
            let ihl = usize::from(f[frame::ETH_HEADER] & 0x0f) * 4;
            assert_eq!(
                frame::checksum(&f[frame::ETH_HEADER..frame::ETH_HEADER + ihl]),
                0
            );
            assert_eq!(frame::checksum(&f[frame::ETH_HEADER + ihl..n]), 0);
        }
        Err(e) => {
            let _ = e.label();
        }
    }
    // write_udp from arbitrary addresses: the payload is the tail of the input.
    if data.len() >= 12 {
        let peer = Peer {
            mac: data[0..6].try_into().unwrap(),
            addr: SocketAddrV4::new(
                Ipv4Addr::new(data[6], data[7], data[8], data[9]),
                u16::from_le_bytes([data[10], data[11]]),
            ),
        };
        let payload = &data[12..];
        let mut out = vec![0u8; frame::UDP_FRAME_OVERHEAD + payload.len()];
        if let Some(n) = frame::write_udp(&mut out, &US, &peer, payload) {
            match frame::classify(&out[..n], &peer.as_endpoint()) {
                Ok(Frame::Datagram {
                    payload: back,
                    peer: from,
                }) => {
                    assert_eq!(&out[back], payload);
                    assert_eq!(from, US.as_peer());
                }
                other => panic!("written datagram does not classify: {other:?}"),
            }
        }
    }
});
