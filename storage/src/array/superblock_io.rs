//! Formatting an array, and reading and writing its superblock copies on device 0.

use super::config::ArrayConfig;
use super::device::{self, IoOp};
use super::layout::{Label, Superblock, align_up};
use super::{Shared, corrupt, io_err};
use crate::StoreError;

pub(super) fn segments_on(size: u64, label: &Label) -> u32 {
    (size.saturating_sub(label.data_start) / label.segment_bytes).min(u32::MAX as u64 - 1) as u32
}

pub(super) fn superblock_blocks(cfg_bs: u64, seg_counts: &[u32]) -> u64 {
    align_up(Superblock::encoded_len(seg_counts) as u64, cfg_bs) / cfg_bs
}

pub(super) fn format_label(
    cfg: &ArrayConfig,
    files: &[(String, device::OpenedDevice)],
) -> Result<Label, StoreError> {
    let bs = cfg.block_size as u64;
    // Superblock size depends on segment counts, which depend on data_start: size it for the
    // segments a device would have with no header at all (an upper bound).
    let upper: Vec<u32> = files
        .iter()
        .map(|(_, d)| (d.size / cfg.segment_bytes) as u32)
        .collect();
    let sb_blocks = superblock_blocks(bs, &upper);
    let data_start = align_up((1 + 2 * sb_blocks) * bs, 1 << 20);
    for (p, d) in files {
        if d.size < data_start + cfg.segment_bytes * 2 {
            return Err(corrupt(
                p,
                0,
                format!(
                    "device of {} bytes is too small: needs at least {}",
                    d.size,
                    data_start + 2 * cfg.segment_bytes
                ),
            ));
        }
    }
    Ok(Label {
        array_id: rand::random(),
        index: 0,
        n_devices: files.len() as u32,
        block_size: cfg.block_size as u32,
        segment_bytes: cfg.segment_bytes,
        n_segments: 0,
        data_start,
    })
}

pub(super) fn superblock_region(s: &Shared) -> (u64, usize) {
    let counts: Vec<u32> = s.devices.iter().map(|d| d.n_segments).collect();
    let upper_blocks = (s.label.data_start / s.bs() - 1) / 2;
    let need = superblock_blocks(s.bs(), &counts);
    debug_assert!(need <= upper_blocks);
    (s.bs(), (upper_blocks * s.bs()) as usize)
}

/// Writes the superblock into the copy its sequence number selects, then flushes device 0.
pub(super) fn write_superblock(s: &Shared, sb: &Superblock) -> Result<(), StoreError> {
    let (first, copy_len) = superblock_region(s);
    let offset = first + (sb.seq % 2) * copy_len as u64;
    let len = Superblock::encoded_len(
        &sb.segments
            .iter()
            .map(|v| v.len() as u32)
            .collect::<Vec<_>>(),
    );
    let mut buf = s.mem.alloc(len);
    sb.encode(buf.as_mut());
    s.execute(vec![(0, vec![IoOp::write(offset, buf)])])?;
    s.execute(vec![(0, vec![IoOp::sync()])])
}

/// Labels `devices` of a new array, after its first superblock is durable: device 0 first,
/// then the others, each flushed. A device belongs to the array once its label is durable,
/// so a power cut while formatting leaves either blank devices (formatted again at the next
/// open) or an array whose device 0 holds the label and a valid superblock of no slot (the
/// next open labels the rest); never labels without a superblock.
pub(super) fn write_labels(s: &Shared, devices: &[usize]) -> Result<(), StoreError> {
    let label_ops = |d: &usize| {
        let mut l = s.label.clone();
        l.index = *d as u32;
        let mut b = s.mem.alloc(s.bs() as usize);
        l.encode(b.as_mut());
        (*d, vec![IoOp::write(0, b)])
    };
    let (first, rest): (Vec<usize>, Vec<usize>) = devices.iter().partition(|&&d| d == 0);
    for group in [first, rest] {
        s.execute(group.iter().map(label_ops).collect())?;
        s.execute(group.iter().map(|d| (*d, vec![IoOp::sync()])).collect())?;
    }
    Ok(())
}

/// The newer of the two valid superblock copies.
pub(super) fn read_superblock(s: &Shared, seg_counts: &[u32]) -> Result<Superblock, StoreError> {
    let (first, copy_len) = superblock_region(s);
    let len = Superblock::encoded_len(seg_counts);
    let mut best: Option<Superblock> = None;
    for copy in 0..2u64 {
        let offset = first + copy * copy_len as u64;
        let ops = s.devices[0]
            .io
            .run_sync(vec![IoOp::read(offset, s.mem.alloc(len))]);
        if let Some(e) = ops[0].error() {
            return Err(io_err(&s.devices[0].path, offset, e));
        }
        if let Some(sb) = Superblock::decode(ops[0].buf.as_ref().expect("buf").as_ref(), seg_counts)
            && best.as_ref().is_none_or(|b| sb.seq > b.seq)
        {
            best = Some(sb);
        }
    }
    best.ok_or_else(|| {
        corrupt(
            &s.devices[0].path,
            first,
            "both superblock copies are invalid",
        )
    })
}
