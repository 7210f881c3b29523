//! Live-data accounting per segment and the choice of compaction victims. The victim is read
//! in the background (`scan::read_segment`); the next commit rewrites what is still live and
//! frees it.

use super::Shared;
use super::index::Loc;
use super::layout::{self, Superblock, align_up};
use std::sync::atomic::Ordering;

/// Live-data accounting per segment, to pick compaction victims.
pub(super) struct Space {
    pub(super) live: Vec<Vec<u64>>,
}

/// A segment the compactor has read: its live records, to be rewritten by the next commit.
pub(super) struct Evacuation {
    pub(super) device: usize,
    pub(super) segment: u32,
    pub(super) records: Vec<(Loc, Vec<u8>)>,
}

impl Space {
    pub(super) fn add(&mut self, s: &Shared, device: usize, loc: Loc) {
        let seg = s.segment_of(loc.offset) as usize;
        let b = align_up(loc.len as u64, layout::RECORD_ALIGN as u64);
        self.live[device][seg] += b;
        s.live_bytes.fetch_add(b, Ordering::Relaxed);
    }
    pub(super) fn sub(&mut self, s: &Shared, loc: Loc) {
        let seg = s.segment_of(loc.offset) as usize;
        let b = align_up(loc.len as u64, layout::RECORD_ALIGN as u64);
        let v = &mut self.live[loc.device as usize][seg];
        let d = b.min(*v);
        *v -= d;
        s.live_bytes.fetch_sub(d, Ordering::Relaxed);
    }
    /// The sealed segment with the least live data relative to its fill.
    pub(super) fn victim(&self, sb: &Superblock) -> Option<(usize, u32)> {
        let mut best: Option<(f64, usize, u32)> = None;
        for (d, segs) in sb.segments.iter().enumerate() {
            for (i, st) in segs.iter().enumerate() {
                if st.fill == 0 || sb.open[d] == i as u32 {
                    continue;
                }
                let ratio = self.live[d][i] as f64 / st.fill as f64;
                if ratio < 0.9 && best.is_none_or(|b| ratio < b.0) {
                    best = Some((ratio, d, i as u32));
                }
            }
        }
        best.map(|(_, d, i)| (d, i))
    }
}
