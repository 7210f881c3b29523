//! Dataplane counters: one writer per field group (net tile, each verify tile), relaxed
//! atomics, read by metrics, the RPC and the benches.

use crate::parse::ParseError;
use std::sync::atomic::{AtomicU64, Ordering};
use telemetry::{LatencyHistogram, TileStats, ZeroValid};

/// Verify tiles that have a counter slot.
pub const MAX_VERIFY_TILES: usize = 16;

telemetry::declare_counters! {
    /// All dataplane counters; `#[repr(C)]` and valid when zeroed so it can live in the shared
    /// metrics region (`telemetry::SharedRegion`). Drops are members of the
    /// `tile_drops{tile,reason}` family.
    #[repr(C)]
    pub struct DataplaneCounters {
        /// Datagrams received by the net tile.
        rx_packets: Counter(Count) "net_received_packets",
        /// Datagram bytes received by the net tile.
        rx_bytes: Counter(Bytes) "net_received",
        /// Net → verify ring full: dropped at ingest.
        verify_ring_full: Counter(Count) "tile_drops" [tile = "net", reason = "verify_ring_full"],
        /// No free packet buffer: dropped at ingest.
        pool_exhausted: Counter(Count) "tile_drops" [tile = "net", reason = "pool_exhausted"],
        /// The verify tiles were behind and the sender or fee payer had more than its share
        /// of the recent traffic (`dataplane::fair`).
        over_fair_share: Counter(Count) "tile_drops" [tile = "net", reason = "over_fair_share"],
        /// Same bytes as a recently received packet: dropped by the receiving core's filter.
        rx_duplicates: Counter(Count) "tile_drops" [tile = "net", reason = "recent_duplicate"],
        /// `net.routing = "affinity"`: transactions sent to the verify tile of the island they
        /// write.
        routed_affinity: Counter(Count) "net_routed_affinity",
        /// ...and those whose island tile's ring was half full, sent by signature instead.
        routed_fallback: Counter(Count) "net_routed_affinity_fallback",
        /// Transactions taken in by the verify tiles.
        verify_in: Counter(Count) "verify_received",
        /// Transactions whose signatures verified.
        verify_ok: Counter(Count) "verify_passed",
        /// A signature did not verify.
        bad_signature: Counter(Count) "tile_drops" [tile = "verify", reason = "bad_signature"],
        /// Signature seen in the dedup window.
        duplicate: Counter(Count) "tile_drops" [tile = "verify", reason = "duplicate"],
        /// The dedup table was full.
        dedup_full: Counter(Count) "tile_drops" [tile = "verify", reason = "dedup_full"],
        /// Signatures whose public key was already decoded in the tile's key cache.
        key_cache_hits: Counter(Count) "verify_key_cache_hits",
        /// ...and those whose key had to be decoded.
        key_cache_misses: Counter(Count) "verify_key_cache_misses",
        /// Time the verify tiles spent verifying signatures.
        verify_ns: Counter(Nanoseconds) "verify",
        /// Transactions submitted through the RPC.
        rpc_submitted: Counter(Count) "rpc_submitted_transactions",
        ;
        pub net: TileStats,
        pub verify: [TileStats; MAX_VERIFY_TILES],
        /// Received by the net tile (or RPC) to verified.
        pub verify_latency: LatencyHistogram,
        /// By [`ParseError`]: exposed by reason.
        pub parse_drops: [AtomicU64; ParseError::COUNT],
    }
}

// SAFETY: atomics and arrays of atomics only.
unsafe impl ZeroValid for DataplaneCounters {}

impl DataplaneCounters {
    pub fn new() -> Self {
        telemetry::zeroed()
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
