//! Kernel UDP socket backend with batched receive (`recvmmsg`).

use crate::packet::{PACKET_BUFFER_BYTES, PacketBox, Source};
use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Largest burst one `recvmmsg` call fills.
pub const MAX_RECV_BURST: usize = 128;

pub struct UdpReceiver {
    socket: UdpSocket,
    burst: usize,
}

impl UdpReceiver {
    /// Bind, set the kernel receive buffer and a poll timeout so the caller can notice shutdown.
    pub fn bind(addr: SocketAddr, burst: usize, recv_buffer_bytes: usize) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let size = recv_buffer_bytes.min(i32::MAX as usize) as libc::c_int;
        // SAFETY: valid fd, pointer to a c_int of the advertised length.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            tracing::warn!(error = %io::Error::last_os_error(), "SO_RCVBUF not applied");
        }
        Ok(Self {
            socket,
            burst: burst.clamp(1, MAX_RECV_BURST),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    pub fn burst(&self) -> usize {
        self.burst
    }

    /// The same socket, for sending replies from the port clients sent to (so a client reads
    /// them on the socket it sent from).
    pub fn reply_socket(&self) -> io::Result<UdpSocket> {
        self.socket.try_clone()
    }

    /// Receive up to `packets.len()` datagrams (at most the burst) straight into the packets'
    /// buffers. Returns how many were filled; 0 on timeout. A datagram longer than a valid
    /// transaction is reported with `len = PACKET_BUFFER_BYTES` (the parser rejects it).
    pub fn recv_burst(&self, packets: &mut [PacketBox]) -> io::Result<usize> {
        let n = packets.len().min(self.burst);
        if n == 0 {
            return Ok(0);
        }
        let mut iovs: [libc::iovec; MAX_RECV_BURST] = unsafe { std::mem::zeroed() };
        let mut addrs: [libc::sockaddr_storage; MAX_RECV_BURST] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; MAX_RECV_BURST] = unsafe { std::mem::zeroed() };
        for i in 0..n {
            iovs[i] = libc::iovec {
                iov_base: packets[i]
                    .receive_buffer()
                    .expect("the net tile takes own-buffer packets")
                    .as_mut_ptr()
                    .cast(),
                iov_len: PACKET_BUFFER_BYTES,
            };
            hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at live iovecs/addresses sized as declared; n <= array len.
        let rc = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let got = rc as usize;
        // Stamped when the call returns, not when it began: it may have waited up to the
        // read timeout for the first datagram. (Time the datagrams spent in the socket
        // buffer before that is not counted; a client's round trip includes it.)
        let now_ns = crate::packet::monotonic_ns();
        for i in 0..got {
            let p = &mut packets[i];
            let truncated = hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            p.len = if truncated {
                PACKET_BUFFER_BYTES
            } else {
                (hdrs[i].msg_len as usize).min(PACKET_BUFFER_BYTES)
            };
            p.desc = None;
            p.received_ns = now_ns;
            p.source = sockaddr_to_source(&addrs[i]);
        }
        Ok(got)
    }
}

fn sockaddr_to_source(ss: &libc::sockaddr_storage) -> Source {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            Source::Udp(SocketAddr::V4(SocketAddrV4::new(
                u32::from_be(a.sin_addr.s_addr).into(),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Source::Udp(SocketAddr::V6(SocketAddrV6::new(
                a.sin6_addr.s6_addr.into(),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => Source::Rpc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PacketPool;

    /// A datagram that arrives while the call waits is stamped on arrival, not when the wait
    /// began (a stale stamp would add up to the read timeout to every latency measured from it).
    #[test]
    fn a_datagram_is_stamped_when_it_arrives() {
        let rx = UdpReceiver::bind("127.0.0.1:0".parse().unwrap(), 8, 1 << 20).unwrap();
        let addr = rx.local_addr().unwrap();
        let pool = PacketPool::new(8);
        let mut bufs: Vec<PacketBox> = (0..8).map(|_| pool.take().unwrap()).collect();
        let before = crate::packet::monotonic_ns();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .send_to(&[1; 10], addr)
                .unwrap();
        });
        let n = rx.recv_burst(&mut bufs).unwrap();
        sender.join().unwrap();
        assert_eq!(n, 1);
        assert!(
            bufs[0].received_ns >= before + 25_000_000,
            "stamped {} ns after the wait began",
            bufs[0].received_ns - before
        );
    }

    #[test]
    fn receives_a_burst_and_flags_oversize() {
        let rx = UdpReceiver::bind("127.0.0.1:0".parse().unwrap(), 64, 1 << 20).unwrap();
        let addr = rx.local_addr().unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..10u8 {
            tx.send_to(&[i; 100], addr).unwrap();
        }
        tx.send_to(&[7u8; 1500], addr).unwrap();
        let pool = PacketPool::new(64);
        let mut bufs: Vec<PacketBox> = (0..64).map(|_| pool.take().unwrap()).collect();
        let mut got = 0;
        let mut lens = Vec::new();
        while got < 11 {
            let n = rx.recv_burst(&mut bufs[got..]).unwrap();
            assert!(n > 0, "timed out");
            for p in &bufs[got..got + n] {
                lens.push(p.len);
            }
            got += n;
        }
        assert_eq!(&lens[..10], &[100; 10]);
        assert_eq!(lens[10], PACKET_BUFFER_BYTES);
        assert_eq!(bufs[3].bytes(), &[3u8; 100]);
        assert_eq!(bufs[0].source, Source::Udp(tx.local_addr().unwrap()));
    }
}
