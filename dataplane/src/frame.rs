//! Ethernet frames on a raw port: which are transactions for us, which need an answer (ARP,
//! ICMP echo), and why the rest are dropped; and the frames we send back. No DPDK here, so it
//! is tested (and fuzzed) without a NIC.
//!
//! Accepted: Ethernet II, IPv4 without options or with them, not fragmented, header checksum
//! right, UDP to our address and port, lengths consistent with each other and with the frame.
//! The UDP checksum is not checked in software: the ed25519 signatures cover every byte of a
//! transaction, so a corrupted one fails verification anyway (and NICs check it in hardware).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::Range;

pub const ETH_HEADER: usize = 14;
pub const IPV4_HEADER: usize = 20;
pub const UDP_HEADER: usize = 8;
/// Ethernet + IPv4 (no options) + UDP.
pub const UDP_FRAME_OVERHEAD: usize = ETH_HEADER + IPV4_HEADER + UDP_HEADER;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const PROTO_ICMP: u8 = 1;
const PROTO_UDP: u8 = 17;
const ARP_LEN: usize = 28;

/// Our side of the port: what ARP answers with and what frames must be addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub mac: [u8; 6],
    pub ipv4: Ipv4Addr,
    pub udp_port: u16,
}

/// Who sent a datagram, for the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub mac: [u8; 6],
    pub addr: SocketAddrV4,
}

impl Endpoint {
    /// This endpoint as the destination of a datagram.
    pub fn as_peer(&self) -> Peer {
        Peer {
            mac: self.mac,
            addr: SocketAddrV4::new(self.ipv4, self.udp_port),
        }
    }
}

impl Peer {
    /// This peer as the sender of a datagram.
    pub fn as_endpoint(&self) -> Endpoint {
        Endpoint {
            mac: self.mac,
            ipv4: *self.addr.ip(),
            udp_port: self.addr.port(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A UDP datagram to our address and port: the payload's place in the frame.
    Datagram { payload: Range<usize>, peer: Peer },
    /// An ARP request for our address: answer with [`answer_arp`].
    ArpRequest,
    /// An ICMP echo request to our address: answer with [`answer_echo`].
    EchoRequest,
}

/// Why a frame was dropped before any transaction parsing. Counted per queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum FrameDrop {
    #[error("frame shorter than its headers")]
    Runt = 0,
    #[error("neither IPv4 nor ARP (VLAN tags, IPv6, ...)")]
    NotIpv4,
    #[error("bad IPv4 header (version, header length)")]
    BadIpHeader,
    #[error("IPv4 header checksum wrong")]
    BadIpChecksum,
    #[error("IPv4 or UDP length disagrees with the frame")]
    BadLength,
    #[error("IPv4 fragment")]
    Fragment,
    #[error("IP protocol other than UDP (or ICMP echo)")]
    NotUdp,
    #[error("addressed to another host")]
    NotForUs,
    #[error("UDP to another port")]
    WrongPort,
    #[error("ARP other than a request for our address")]
    ArpIgnored,
    #[error("frame spans several buffers (larger than one mbuf)")]
    MultiSegment,
    #[error("checksum reported bad by the NIC")]
    HardwareChecksum,
}

impl FrameDrop {
    pub const COUNT: usize = 12;
    pub const ALL: [FrameDrop; Self::COUNT] = [
        FrameDrop::Runt,
        FrameDrop::NotIpv4,
        FrameDrop::BadIpHeader,
        FrameDrop::BadIpChecksum,
        FrameDrop::BadLength,
        FrameDrop::Fragment,
        FrameDrop::NotUdp,
        FrameDrop::NotForUs,
        FrameDrop::WrongPort,
        FrameDrop::ArpIgnored,
        FrameDrop::MultiSegment,
        FrameDrop::HardwareChecksum,
    ];

    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            FrameDrop::Runt => "runt",
            FrameDrop::NotIpv4 => "not_ipv4",
            FrameDrop::BadIpHeader => "bad_ip_header",
            FrameDrop::BadIpChecksum => "bad_ip_checksum",
            FrameDrop::BadLength => "bad_length",
            FrameDrop::Fragment => "fragment",
            FrameDrop::NotUdp => "not_udp",
            FrameDrop::NotForUs => "not_for_us",
            FrameDrop::WrongPort => "wrong_port",
            FrameDrop::ArpIgnored => "arp_ignored",
            FrameDrop::MultiSegment => "multi_segment",
            FrameDrop::HardwareChecksum => "hw_checksum",
        }
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Classify one received frame. Never panics, whatever the bytes.
pub fn classify(frame: &[u8], us: &Endpoint) -> Result<Frame, FrameDrop> {
    if frame.len() < ETH_HEADER {
        return Err(FrameDrop::Runt);
    }
    match be16(frame, 12) {
        ETHERTYPE_IPV4 => classify_ipv4(frame, us),
        ETHERTYPE_ARP => classify_arp(frame, us),
        _ => Err(FrameDrop::NotIpv4),
    }
}

fn classify_arp(frame: &[u8], us: &Endpoint) -> Result<Frame, FrameDrop> {
    let a = frame
        .get(ETH_HEADER..ETH_HEADER + ARP_LEN)
        .ok_or(FrameDrop::Runt)?;
    // Ethernet/IPv4 request whose target is our address.
    let is_request = be16(a, 0) == 1 && be16(a, 2) == ETHERTYPE_IPV4 && a[4] == 6 && a[5] == 4;
    if is_request && be16(a, 6) == 1 && a[24..28] == us.ipv4.octets() {
        Ok(Frame::ArpRequest)
    } else {
        Err(FrameDrop::ArpIgnored)
    }
}

fn classify_ipv4(frame: &[u8], us: &Endpoint) -> Result<Frame, FrameDrop> {
    let ip = &frame[ETH_HEADER..];
    if ip.len() < IPV4_HEADER {
        return Err(FrameDrop::Runt);
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < IPV4_HEADER {
        return Err(FrameDrop::BadIpHeader);
    }
    if ip.len() < ihl {
        return Err(FrameDrop::Runt);
    }
    let total = usize::from(be16(ip, 2));
    // Ethernet pads short frames, so the frame may be longer than the packet, never shorter.
    if total < ihl || total > ip.len() {
        return Err(FrameDrop::BadLength);
    }
    if checksum(&ip[..ihl]) != 0 {
        return Err(FrameDrop::BadIpChecksum);
    }
    // More-fragments flag or a fragment offset: part of a larger datagram.
    if be16(ip, 6) & 0x3fff != 0 {
        return Err(FrameDrop::Fragment);
    }
    if ip[16..20] != us.ipv4.octets() {
        return Err(FrameDrop::NotForUs);
    }
    let ip = &ip[..total];
    match ip[9] {
        PROTO_UDP => {}
        PROTO_ICMP if ip.len() >= ihl + 8 && ip[ihl] == 8 && ip[ihl + 1] == 0 => {
            return Ok(Frame::EchoRequest);
        }
        _ => return Err(FrameDrop::NotUdp),
    }
    let udp = &ip[ihl..];
    if udp.len() < UDP_HEADER {
        return Err(FrameDrop::Runt);
    }
    let udp_len = usize::from(be16(udp, 4));
    if udp_len < UDP_HEADER || udp_len > udp.len() {
        return Err(FrameDrop::BadLength);
    }
    if be16(udp, 2) != us.udp_port {
        return Err(FrameDrop::WrongPort);
    }
    let start = ETH_HEADER + ihl + UDP_HEADER;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    Ok(Frame::Datagram {
        payload: start..start + udp_len - UDP_HEADER,
        peer: Peer {
            mac: frame[6..12].try_into().expect("6 bytes"),
            addr: SocketAddrV4::new(src, be16(udp, 0)),
        },
    })
}

/// The Internet checksum (RFC 1071) of `b`: 0 when `b` holds a correct checksum field.
pub fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Turn an ARP request (classified [`Frame::ArpRequest`]) into our reply, in place. Returns
/// the reply's length.
pub fn answer_arp(frame: &mut [u8], us: &Endpoint) -> usize {
    let asker_mac: [u8; 6] = frame[6..12].try_into().expect("6 bytes");
    frame[0..6].copy_from_slice(&asker_mac);
    frame[6..12].copy_from_slice(&us.mac);
    let a = &mut frame[ETH_HEADER..ETH_HEADER + ARP_LEN];
    a[6..8].copy_from_slice(&2u16.to_be_bytes()); // reply
    let (sender_mac, sender_ip): ([u8; 6], [u8; 4]) = (
        a[8..14].try_into().expect("6"),
        a[14..18].try_into().expect("4"),
    );
    a[18..24].copy_from_slice(&sender_mac);
    a[24..28].copy_from_slice(&sender_ip);
    a[8..14].copy_from_slice(&us.mac);
    a[14..18].copy_from_slice(&us.ipv4.octets());
    frame.len().clamp(ETH_HEADER + ARP_LEN, 60)
}

/// Turn an ICMP echo request (classified [`Frame::EchoRequest`]) into the echo reply, in
/// place. Returns the reply's length.
pub fn answer_echo(frame: &mut [u8], us: &Endpoint) -> usize {
    swap_macs(frame, us);
    let ip = &mut frame[ETH_HEADER..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2));
    let src: [u8; 4] = ip[12..16].try_into().expect("4 bytes");
    ip[16..20].copy_from_slice(&src);
    ip[12..16].copy_from_slice(&us.ipv4.octets());
    ip[8] = 64; // TTL
    ip[10..12].fill(0);
    let c = checksum(&ip[..ihl]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut ip[ihl..total];
    icmp[0] = 0; // echo reply
    icmp[2..4].fill(0);
    let c = checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    ETH_HEADER + total
}

fn swap_macs(frame: &mut [u8], us: &Endpoint) {
    let src: [u8; 6] = frame[6..12].try_into().expect("6 bytes");
    frame[0..6].copy_from_slice(&src);
    frame[6..12].copy_from_slice(&us.mac);
}

/// Write a UDP datagram from us to `peer` carrying `payload` into `out`. Returns the frame
/// length, or None when `out` is too small. The UDP checksum is left 0 (allowed over IPv4).
pub fn write_udp(out: &mut [u8], us: &Endpoint, peer: &Peer, payload: &[u8]) -> Option<usize> {
    let len = UDP_FRAME_OVERHEAD + payload.len();
    if out.len() < len || len - ETH_HEADER > usize::from(u16::MAX) {
        return None;
    }
    out[0..6].copy_from_slice(&peer.mac);
    out[6..12].copy_from_slice(&us.mac);
    out[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip = &mut out[ETH_HEADER..len];
    ip[0] = 0x45;
    ip[1] = 0;
    ip[2..4].copy_from_slice(&((len - ETH_HEADER) as u16).to_be_bytes());
    ip[4..8].copy_from_slice(&[0, 0, 0x40, 0]); // id 0, don't fragment
    ip[8] = 64;
    ip[9] = PROTO_UDP;
    ip[10..12].fill(0);
    ip[12..16].copy_from_slice(&us.ipv4.octets());
    ip[16..20].copy_from_slice(&peer.addr.ip().octets());
    let c = checksum(&ip[..IPV4_HEADER]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let udp = &mut ip[IPV4_HEADER..];
    udp[0..2].copy_from_slice(&us.udp_port.to_be_bytes());
    udp[2..4].copy_from_slice(&peer.addr.port().to_be_bytes());
    udp[4..6].copy_from_slice(&((UDP_HEADER + payload.len()) as u16).to_be_bytes());
    udp[6..8].fill(0);
    udp[UDP_HEADER..].copy_from_slice(payload);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const US: Endpoint = Endpoint {
        mac: [2, 0, 0, 0, 0, 1],
        ipv4: Ipv4Addr::new(10, 9, 0, 1),
        udp_port: 8003,
    };

    fn peer() -> Peer {
        Peer {
            mac: [2, 0, 0, 0, 0, 2],
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 40000),
        }
    }

    /// A datagram from `peer()` to us, built the way `write_udp` builds ours.
    fn datagram(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; UDP_FRAME_OVERHEAD + payload.len()];
        write_udp(&mut f, &peer().as_endpoint(), &US.as_peer(), payload).unwrap();
        f
    }

    fn fix_ip_checksum(f: &mut [u8]) {
        f[24..26].fill(0);
        let c = checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn a_datagram_for_us_yields_its_payload_and_sender() {
        let f = datagram(b"hello");
        match classify(&f, &US).unwrap() {
            Frame::Datagram { payload, peer: p } => {
                assert_eq!(&f[payload], b"hello");
                assert_eq!(p, peer());
            }
            other => panic!("{other:?}"),
        }
        // Ethernet padding after the IP packet is ignored.
        let mut padded = datagram(b"x");
        padded.resize(60, 0);
        assert!(
            matches!(classify(&padded, &US), Ok(Frame::Datagram { payload, .. }) if payload.len() == 1)
        );
    }

    #[test]
    fn every_bad_frame_is_dropped_with_its_reason() {
        let good = datagram(b"tx");
        let case = |f: &dyn Fn(&mut Vec<u8>), fix: bool| {
            let mut v = good.clone();
            f(&mut v);
            if fix {
                fix_ip_checksum(&mut v);
            }
            classify(&v, &US).unwrap_err()
        };
        assert_eq!(case(&|v| v.truncate(10), false), FrameDrop::Runt);
        assert_eq!(case(&|v| v.truncate(30), false), FrameDrop::Runt);
        assert_eq!(
            case(&|v| v[12..14].copy_from_slice(&[0x86, 0xdd]), false),
            FrameDrop::NotIpv4
        );
        assert_eq!(
            case(&|v| v[12..14].copy_from_slice(&[0x81, 0x00]), false),
            FrameDrop::NotIpv4
        );
        assert_eq!(case(&|v| v[14] = 0x65, true), FrameDrop::BadIpHeader);
        assert_eq!(case(&|v| v[14] = 0x44, true), FrameDrop::BadIpHeader);
        assert_eq!(
            case(&|v| v[16..18].copy_from_slice(&500u16.to_be_bytes()), true),
            FrameDrop::BadLength
        );
        assert_eq!(case(&|v| v[22] ^= 0xff, false), FrameDrop::BadIpChecksum);
        assert_eq!(case(&|v| v[20] = 0x20, true), FrameDrop::Fragment); // more fragments
        assert_eq!(case(&|v| v[21] = 0x08, true), FrameDrop::Fragment); // offset
        assert_eq!(case(&|v| v[23] = 6, true), FrameDrop::NotUdp);
        assert_eq!(case(&|v| v[33] = 7, true), FrameDrop::NotForUs);
        assert_eq!(
            case(&|v| v[36..38].copy_from_slice(&53u16.to_be_bytes()), false),
            FrameDrop::WrongPort
        );
        assert_eq!(
            case(&|v| v[38..40].copy_from_slice(&900u16.to_be_bytes()), false),
            FrameDrop::BadLength
        );
        assert_eq!(
            case(&|v| v[38..40].copy_from_slice(&3u16.to_be_bytes()), false),
            FrameDrop::BadLength
        );
    }

    #[test]
    fn arp_requests_for_us_are_answered() {
        let mut f = vec![0u8; 60];
        f[0..6].fill(0xff);
        f[6..12].copy_from_slice(&peer().mac);
        f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        let a = &mut f[14..42];
        a[0..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        a[8..14].copy_from_slice(&peer().mac);
        a[14..18].copy_from_slice(&peer().addr.ip().octets());
        a[24..28].copy_from_slice(&US.ipv4.octets());
        assert_eq!(classify(&f, &US), Ok(Frame::ArpRequest));
        let n = answer_arp(&mut f, &US);
        assert_eq!(n, 60);
        assert_eq!(&f[0..6], &peer().mac);
        assert_eq!(&f[20..22], &[0, 2]);
        assert_eq!(&f[22..28], &US.mac);
        assert_eq!(&f[28..32], &US.ipv4.octets());
        assert_eq!(&f[32..38], &peer().mac);
        // Our own reply (and a request for someone else) is not answered again.
        assert_eq!(classify(&f, &US), Err(FrameDrop::ArpIgnored));
    }

    #[test]
    fn echo_requests_for_us_are_answered_with_valid_checksums() {
        // Same length as a 4-byte datagram; the 12 bytes after the IP header become ICMP.
        let mut f = datagram(&[0; 4]);
        f[34..46].copy_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g']);
        f[23] = PROTO_ICMP;
        fix_ip_checksum(&mut f);
        let c = checksum(&f[34..]);
        f[36..38].copy_from_slice(&c.to_be_bytes());
        assert_eq!(classify(&f, &US), Ok(Frame::EchoRequest));
        let n = answer_echo(&mut f, &US);
        assert_eq!(n, f.len());
        assert_eq!(f[34], 0);
        assert_eq!(checksum(&f[14..34]), 0);
        assert_eq!(checksum(&f[34..]), 0);
        assert_eq!(&f[30..34], &peer().addr.ip().octets());
        assert_eq!(&f[0..6], &peer().mac);
    }

    #[test]
    fn our_udp_frames_parse_back() {
        let mut out = [0u8; 128];
        let n = write_udp(&mut out, &US, &peer(), b"reply").unwrap();
        assert_eq!(checksum(&out[14..34]), 0);
        let to_peer = peer().as_endpoint();
        match classify(&out[..n], &to_peer).unwrap() {
            Frame::Datagram { payload, peer: p } => {
                assert_eq!(&out[payload], b"reply");
                assert_eq!(p.addr, SocketAddrV4::new(US.ipv4, US.udp_port));
            }
            other => panic!("{other:?}"),
        }
        assert!(write_udp(&mut out[..40], &US, &peer(), b"reply").is_none());
    }

    proptest! {
        /// Arbitrary bytes, and mutations of a good frame, never panic and never yield a
        /// payload outside the frame.
        #[test]
        fn classify_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                             flips in proptest::collection::vec((0usize..80, any::<u8>()), 0..6)) {
            if let Ok(Frame::Datagram { payload, .. }) = classify(&bytes, &US) {
                prop_assert!(payload.end <= bytes.len());
            }
            let mut f = datagram(&[1u8; 40]);
            for (at, b) in flips {
                if at < f.len() { f[at] = b; }
            }
            if let Ok(Frame::Datagram { payload, .. }) = classify(&f, &US) {
                prop_assert!(payload.end <= f.len());
            }
        }
    }
}
