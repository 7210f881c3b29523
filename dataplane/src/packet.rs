//! Packet buffers and their bounded pool.
//!
//! A [`Packet`] is a fixed-size buffer large enough for the largest Solana transaction plus one
//! byte (so an oversize datagram is detected, not silently truncated), with the descriptor
//! parsed from it. Packets are allocated once at start-up into a [`PacketPool`]; the net tile
//! takes them, fills them in place, and whoever is last to need a packet gives it back. A
//! dry pool is an ingest-side drop, counted, never an allocation.

use crate::parse::{PACKET_DATA_SIZE, TxDescriptor};
use crossbeam_channel::{Receiver, Sender};
use std::net::SocketAddr;

/// Receive buffer size: one byte more than the largest valid transaction.
pub const PACKET_BUFFER_BYTES: usize = PACKET_DATA_SIZE + 1;

/// Where a packet came from, for replies and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Udp(SocketAddr),
    Rpc,
}

pub struct Packet {
    pub data: [u8; PACKET_BUFFER_BYTES],
    pub len: usize,
    pub desc: Option<TxDescriptor>,
    pub source: Source,
    /// Monotonic receive time, for receive-to-commit latency.
    pub received_ns: u64,
}

impl Packet {
    pub fn zeroed() -> Self {
        Self {
            data: [0; PACKET_BUFFER_BYTES],
            len: 0,
            desc: None,
            source: Source::Rpc,
            received_ns: 0,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// Copy a transaction from elsewhere (RPC) into this buffer.
    pub fn fill(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > PACKET_DATA_SIZE {
            return false;
        }
        self.data[..bytes.len()].copy_from_slice(bytes);
        self.len = bytes.len();
        self.desc = None;
        true
    }
}

/// Bounded free-list of packets. Cloning shares the pool.
#[derive(Clone)]
pub struct PacketPool {
    free_tx: Sender<Box<Packet>>,
    free_rx: Receiver<Box<Packet>>,
    capacity: usize,
}

impl PacketPool {
    pub fn new(capacity: usize) -> Self {
        let (free_tx, free_rx) = crossbeam_channel::bounded(capacity);
        for _ in 0..capacity {
            free_tx
                .send(Box::new(Packet::zeroed()))
                .expect("pool channel sized to capacity");
        }
        Self {
            free_tx,
            free_rx,
            capacity,
        }
    }

    pub fn take(&self) -> Option<Box<Packet>> {
        self.free_rx.try_recv().ok()
    }

    pub fn give(&self, mut p: Box<Packet>) {
        p.desc = None;
        p.len = 0;
        // Cannot be full: every packet in circulation came from this pool.
        let _ = self.free_tx.try_send(p);
    }

    pub fn available(&self) -> usize {
        self.free_rx.len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Nanoseconds since the first call in this process: the one clock all tiles stamp with.
pub fn monotonic_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}
