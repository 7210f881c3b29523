//! Dataplane counters: one writer per field group (net tile, each verify tile), relaxed
//! atomics, read by metrics, the RPC and the benches.

use crate::parse::ParseError;
use std::sync::atomic::{AtomicU64, Ordering};
use telemetry::{LatencyHistogram, TileStats, ZeroValid};

/// Verify tiles that have a counter slot.
pub const MAX_VERIFY_TILES: usize = 16;

/// All dataplane counters; `#[repr(C)]` and valid when zeroed so it can live in the shared
/// metrics region (`telemetry::SharedRegion`).
#[repr(C)]
pub struct DataplaneCounters {
    pub net: TileStats,
    pub verify: [TileStats; MAX_VERIFY_TILES],
    /// Received by the net tile (or RPC) to verified.
    pub verify_latency: LatencyHistogram,
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub parse_drops: [AtomicU64; ParseError::COUNT],
    /// Net → verify ring full: dropped at ingest.
    pub verify_ring_full: AtomicU64,
    /// No free packet buffer: dropped at ingest.
    pub pool_exhausted: AtomicU64,
    /// Same bytes as a recently received packet: dropped by the receiving core's filter.
    pub rx_duplicates: AtomicU64,
    pub verify_in: AtomicU64,
    pub verify_ok: AtomicU64,
    pub bad_signature: AtomicU64,
    pub duplicate: AtomicU64,
    pub dedup_full: AtomicU64,
    pub verify_ns: AtomicU64,
    pub rpc_submitted: AtomicU64,
}

// SAFETY: atomics and arrays of atomics only.
unsafe impl ZeroValid for DataplaneCounters {}

impl DataplaneCounters {
    pub fn new() -> Self {
        Self {
            net: TileStats::default(),
            verify: std::array::from_fn(|_| TileStats::default()),
            verify_latency: LatencyHistogram::new(),
            rx_packets: AtomicU64::new(0),
            rx_bytes: AtomicU64::new(0),
            parse_drops: std::array::from_fn(|_| AtomicU64::new(0)),
            verify_ring_full: AtomicU64::new(0),
            pool_exhausted: AtomicU64::new(0),
            rx_duplicates: AtomicU64::new(0),
            verify_in: AtomicU64::new(0),
            verify_ok: AtomicU64::new(0),
            bad_signature: AtomicU64::new(0),
            duplicate: AtomicU64::new(0),
            dedup_full: AtomicU64::new(0),
            verify_ns: AtomicU64::new(0),
            rpc_submitted: AtomicU64::new(0),
        }
    }

    pub fn parse_drop(&self, e: ParseError) {
        self.parse_drops[e as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn parse_dropped(&self, e: ParseError) -> u64 {
        self.parse_drops[e as usize].load(Ordering::Relaxed)
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
