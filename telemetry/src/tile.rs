//! Per-tile counters: work in and out, and where the tile's time went.

use std::sync::atomic::Ordering;
use std::time::Instant;

crate::declare_counters! {
    /// One tile's slot: one writer (the tile), cache-line aligned so tiles never share a line.
    #[repr(C, align(64))]
    #[derive(Default)]
    pub struct TileStats {
        /// Work items taken in by the tile.
        in_total: Counter(Count) "tile_in",
        /// Work items passed on by the tile.
        out_total: Counter(Count) "tile_out",
        /// Time the tile spent working.
        busy_ns: Counter(Nanoseconds) "tile_busy",
        /// Time the tile spent waiting for input.
        idle_ns: Counter(Nanoseconds) "tile_idle",
        /// Time the tile spent blocked on a full output link.
        backpressure_ns: Counter(Nanoseconds) "tile_backpressure",
        /// Depth of the tile's input queue when last sampled.
        queue_depth: Gauge(Count) "tile_queue_depth",
    }
}

impl TileStats {
    pub fn add_in(&self, n: u64) {
        self.in_total.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_out(&self, n: u64) {
        self.out_total.fetch_add(n, Ordering::Relaxed);
    }
    pub fn set_queue_depth(&self, n: usize) {
        self.queue_depth.store(n as u64, Ordering::Relaxed);
    }
}

/// Attributes the time since the last mark to busy, idle or backpressure.
pub struct TileClock<'a> {
    stats: &'a TileStats,
    last: Instant,
}

impl<'a> TileClock<'a> {
    pub fn new(stats: &'a TileStats) -> Self {
        Self {
            stats,
            last: Instant::now(),
        }
    }

    /// The slot this clock charges: a tile counts its items in and out there.
    pub fn stats(&self) -> &'a TileStats {
        self.stats
    }

    fn lap(&mut self) -> u64 {
        let now = Instant::now();
        let ns = now.duration_since(self.last).as_nanos() as u64;
        self.last = now;
        ns
    }

    pub fn busy(&mut self) {
        let ns = self.lap();
        self.stats.busy_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub fn idle(&mut self) {
        let ns = self.lap();
        self.stats.idle_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Charge `busy_ns` of the time since the last mark to busy and the rest to idle (a tile
    /// whose work is interleaved with waiting inside one call, like an event loop's).
    pub fn split(&mut self, busy_ns: u64) {
        let ns = self.lap();
        let busy = busy_ns.min(ns);
        self.stats.busy_ns.fetch_add(busy, Ordering::Relaxed);
        self.stats.idle_ns.fetch_add(ns - busy, Ordering::Relaxed);
    }

    pub fn backpressure(&mut self) {
        let ns = self.lap();
        self.stats.backpressure_ns.fetch_add(ns, Ordering::Relaxed);
    }
}
