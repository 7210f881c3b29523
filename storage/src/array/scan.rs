//! Reading segments back: at open, every used segment is scanned to rebuild the index (last
//! write by slot wins; tombstones delete); the compactor reads a victim's live records.

use super::index::Loc;
use super::layout::{
    self, FLAG_EXECUTABLE, FLAG_META, FLAG_TOMBSTONE, Probe, Superblock, align_up,
};
use super::{Shared, corrupt, io_err};
use crate::StoreError;
use crate::commitment::Entry;
use ahash::HashMap;
use device_ops::read_range;

pub struct Scanned {
    /// Live bytes per device per segment.
    pub live: Vec<Vec<u64>>,
    /// Retained slot metadata, oldest first.
    pub metas: Vec<(u64, Loc, Vec<u8>)>,
    /// Every live account's state-tree leaf: (position, key and account hash).
    pub leaves: Vec<(u32, Entry)>,
}

mod device_ops {
    use super::super::Shared;
    use super::super::device::IoOp;
    use super::{StoreError, io_err};

    /// Reads `len` bytes at `offset` of device `d` in chunk-sized ops submitted together.
    pub fn read_range(
        s: &Shared,
        d: usize,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, StoreError> {
        let chunk = s.mem.chunk_bytes();
        let mut ops = Vec::new();
        let mut at = 0;
        while at < len {
            let n = chunk.min(len - at);
            ops.push(IoOp::read(offset + at as u64, s.mem.alloc(n)));
            at += n;
        }
        let mut out = Vec::with_capacity(len);
        for op in s.devices[d].io.run_sync(ops) {
            if let Some(e) = op.error() {
                return Err(io_err(&s.devices[d].path, op.offset, e));
            }
            out.extend_from_slice(op.buf.as_ref().expect("read buffer").as_ref());
        }
        Ok(out)
    }
}

/// Walks the records of one segment's filled part: `f(loc, header, record bytes)`.
fn walk(
    s: &Shared,
    d: usize,
    seg: u32,
    fill: u32,
    mut f: impl FnMut(Loc, &layout::RecordHeader, &[u8]),
) -> Result<(), StoreError> {
    let bs = s.bs() as usize;
    let base = s.segment_start(seg);
    let buf = read_range(s, d, base, fill as usize)?;
    let mut pos = 0usize;
    while pos + 4 <= buf.len() {
        match layout::decode_record(&buf[pos..]) {
            Ok(Probe::Padding) => pos = align_up(pos as u64 + 1, bs as u64) as usize,
            Ok(Probe::Record(h)) => {
                let foot = align_up(h.len as u64, layout::RECORD_ALIGN as u64);
                let loc = Loc {
                    device: d as u8,
                    offset: base + pos as u64,
                    len: foot as u32,
                };
                f(loc, &h, &buf[pos..pos + h.len as usize]);
                pos += foot as usize;
            }
            Err(reason) => return Err(corrupt(&s.devices[d].path, base + pos as u64, reason)),
        }
    }
    Ok(())
}

struct Winner {
    slot: u64,
    loc: Loc,
    tombstone: bool,
    leaf: u32,
    account_hash: [u8; 32],
}

fn record_account_hash(h: &layout::RecordHeader, bytes: &[u8]) -> [u8; 32] {
    stateproof::account_hash(&stateproof::AccountState {
        lamports: h.lamports,
        rent_epoch: h.rent_epoch,
        owner: h.owner,
        executable: h.flags & FLAG_EXECUTABLE != 0,
        data: &bytes[layout::RECORD_HEADER..],
    })
}

/// Rebuilds the index from every used segment of `sb`.
pub fn rebuild(s: &Shared, sb: &Superblock) -> Result<Scanned, StoreError> {
    let mut best: HashMap<[u8; 32], Winner> = HashMap::default();
    let mut metas: Vec<(u64, Loc, Vec<u8>)> = Vec::new();
    for (d, segs) in sb.segments.iter().enumerate() {
        for (i, st) in segs.iter().enumerate() {
            if st.fill == 0 {
                continue;
            }
            walk(s, d, i as u32, st.fill, |loc, h, bytes| {
                if h.flags & FLAG_META != 0 {
                    metas.push((h.slot, loc, bytes[layout::RECORD_HEADER..].to_vec()));
                    return;
                }
                if best.get(&h.key).is_some_and(|b| b.slot >= h.slot) {
                    return;
                }
                let tombstone = h.flags & FLAG_TOMBSTONE != 0;
                let w = Winner {
                    slot: h.slot,
                    loc,
                    tombstone,
                    leaf: h.leaf,
                    account_hash: if tombstone {
                        [0; 32]
                    } else {
                        record_account_hash(h, bytes)
                    },
                };
                best.insert(h.key, w);
            })?;
        }
    }
    let mut live: Vec<Vec<u64>> = sb.segments.iter().map(|v| vec![0; v.len()]).collect();
    let mut leaves = Vec::with_capacity(best.len());
    for (key, w) in best {
        if !w.tombstone {
            leaves.push((
                w.leaf,
                Entry {
                    key,
                    account_hash: w.account_hash,
                },
            ));
            s.index.insert(&key, w.loc);
            live[w.loc.device as usize][s.segment_of(w.loc.offset) as usize] += w.loc.len as u64;
        }
    }
    metas.sort_by_key(|m| m.0);
    metas.dedup_by_key(|m| m.0);
    let keep = s.cfg.meta_retention_slots;
    if metas.len() > keep {
        metas.drain(..metas.len() - keep);
    }
    for (_, loc, _) in &metas {
        live[loc.device as usize][s.segment_of(loc.offset) as usize] += loc.len as u64;
    }
    Ok(Scanned {
        live,
        metas,
        leaves,
    })
}

/// Every record of a compaction victim with its location (liveness is decided at commit).
pub fn read_segment(
    s: &Shared,
    d: usize,
    seg: u32,
    fill: u32,
) -> Result<Vec<(Loc, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    walk(s, d, seg, fill, |loc, _, bytes| {
        out.push((loc, bytes.to_vec()))
    })?;
    Ok(out)
}
