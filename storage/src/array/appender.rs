//! Builds a slot's writes per device and runs them through the I/O threads.

use super::index::Loc;
use super::iomem::IoBuf;
use super::layout::{self, SegmentState, Superblock, align_up};
use super::{Shared, corrupt};
use crate::StoreError;

/// Builds one device's writes for a slot: records packed into blocks, log-structured from the
/// device's open segment, a new segment taken when it fills. Each run of consecutive bytes
/// is written in chunk-sized buffers.
pub(super) struct Appender {
    pub(super) device: usize,
    pub(super) seg: Option<u32>,
    pub(super) pos: u64,
    pub(super) run_start: u64,
    pub(super) bufs: Vec<IoBuf>,
    pub(super) runs: Vec<(u64, Vec<IoBuf>)>,
    pub(super) touched: bool,
}

impl Appender {
    pub(super) fn new(device: usize, sb: &Superblock) -> Self {
        let open = sb.open[device];
        Appender {
            device,
            seg: (open != u32::MAX).then_some(open),
            pos: 0,
            run_start: 0,
            bufs: Vec::new(),
            runs: Vec::new(),
            touched: false,
        }
    }

    pub(super) fn append(
        &mut self,
        s: &Shared,
        sb: &mut Superblock,
        slot: u64,
        rec: &[u8],
    ) -> Result<Loc, StoreError> {
        let bs = s.bs();
        let len = rec.len() as u64;
        let foot = align_up(len, layout::RECORD_ALIGN as u64);
        if foot > s.label.segment_bytes {
            return Err(corrupt(
                &s.devices[self.device].path,
                0,
                format!("record of {len} bytes exceeds the segment size"),
            ));
        }
        if !self.touched {
            self.touched = true;
            if let Some(seg) = self.seg {
                // Each slot starts on a fresh block: a committed block is never rewritten.
                self.pos =
                    s.segment_start(seg) + sb.segments[self.device][seg as usize].fill as u64;
                self.run_start = self.pos;
            }
        }
        loop {
            if let Some(seg) = self.seg {
                let end = s.segment_start(seg) + s.label.segment_bytes;
                let in_block = self.pos % bs;
                let mut at = self.pos;
                // A record that fits a block never straddles one; a larger one starts a block.
                if (foot <= bs && in_block + foot > bs) || (foot > bs && in_block != 0) {
                    at = align_up(at, bs);
                }
                if at + foot <= end {
                    self.pos = at;
                    break;
                }
            }
            self.close_run(bs);
            let next = (0..s.devices[self.device].n_segments)
                .find(|&i| sb.segments[self.device][i as usize].fill == 0 && Some(i) != self.seg)
                .ok_or_else(|| StoreError::NoSpace {
                    path: s.devices[self.device].path.clone(),
                    slot,
                })?;
            // Mark it taken (one block) so a second new segment in this slot is another one.
            sb.segments[self.device][next as usize] = SegmentState {
                fill: bs as u32,
                birth_slot: slot,
            };
            sb.open[self.device] = next;
            self.seg = Some(next);
            self.pos = s.segment_start(next);
            self.run_start = self.pos;
        }
        let chunk = s.mem.chunk_bytes() as u64;
        let mut off = self.pos - self.run_start;
        let mut src = rec;
        while !src.is_empty() {
            let (bi, within) = ((off / chunk) as usize, (off % chunk) as usize);
            while self.bufs.len() <= bi {
                self.bufs.push(s.mem.alloc(chunk as usize));
            }
            let n = src.len().min(chunk as usize - within);
            self.bufs[bi].as_mut()[within..within + n].copy_from_slice(&src[..n]);
            src = &src[n..];
            off += n as u64;
        }
        let loc = Loc {
            device: self.device as u8,
            offset: self.pos,
            len: foot as u32,
        };
        self.pos += foot;
        let seg = self.seg.expect("segment chosen");
        let fill = align_up(self.pos - s.segment_start(seg), bs) as u32;
        sb.segments[self.device][seg as usize].fill = fill;
        Ok(loc)
    }

    /// Ends the run of consecutive bytes being built (a new segment starts another).
    pub(super) fn close_run(&mut self, bs: u64) {
        let used = align_up(self.pos - self.run_start, bs) as usize;
        let mut bufs = std::mem::take(&mut self.bufs);
        if used == 0 || bufs.is_empty() {
            return;
        }
        let chunk = bufs[0].capacity();
        bufs.truncate(used.div_ceil(chunk));
        let tail = used - (bufs.len() - 1) * chunk;
        bufs.last_mut().expect("non-empty").set_len(tail);
        self.runs.push((self.run_start, bufs));
    }

    /// The (offset, buffer) writes of this slot on this device.
    pub(super) fn take_writes(&mut self, bs: u64) -> Vec<(u64, IoBuf)> {
        self.close_run(bs);
        let mut out = Vec::new();
        for (start, bufs) in std::mem::take(&mut self.runs) {
            let mut off = start;
            for b in bufs {
                let n = b.len() as u64;
                out.push((off, b));
                off += n;
            }
        }
        out
    }
}
