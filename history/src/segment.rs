//! Segment files: append-only sequences of framed records, one record per slot.
//!
//! A frame is `len: u32 LE | crc: u32 LE | slot: u64 LE | payload (len bytes)`, the CRC-32C
//! covering slot and payload. A crash can leave a torn tail (a frame half written, or written
//! but not yet synced when the power went); [`scan`] stops at the first frame that is short,
//! too long or fails its CRC, and the store cuts the file there, so what follows a bad frame
//! is never read.

use std::path::{Path, PathBuf};

/// Frame header bytes.
pub const HEADER_BYTES: usize = 16;
/// Largest payload a frame may carry: far beyond a slot's record (a block's transactions
/// with their logs), small enough that a corrupt length is recognised as one.
pub const MAX_PAYLOAD_BYTES: usize = 256 << 20;

/// The frame for `slot`'s `payload`.
pub fn frame(slot: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(slot, payload).to_le_bytes());
    out.extend_from_slice(&slot.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn checksum(slot: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&slot.to_le_bytes()), payload)
}

/// A whole frame read back (`bytes` starts at its header): its slot and payload, or `None`
/// if it is not a valid frame.
pub fn unframe(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let head = bytes.get(..HEADER_BYTES)?;
    let len = u32::from_le_bytes(head[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(head[4..8].try_into().ok()?);
    let slot = u64::from_le_bytes(head[8..16].try_into().ok()?);
    if len > MAX_PAYLOAD_BYTES {
        return None;
    }
    let payload = bytes.get(HEADER_BYTES..HEADER_BYTES + len)?;
    (checksum(slot, payload) == crc).then_some((slot, payload))
}

/// One valid frame found by [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub slot: u64,
    pub offset: u64,
    /// Frame bytes, header included.
    pub len: u32,
}

/// The valid frames of a segment's bytes, in order, and the length of the valid prefix
/// (where a torn or corrupt tail begins).
pub fn scan(bytes: &[u8]) -> (Vec<Found>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some((slot, payload)) = unframe(&bytes[at..]) else {
            break;
        };
        let len = HEADER_BYTES + payload.len();
        out.push(Found {
            slot,
            offset: at as u64,
            len: len as u32,
        });
        at += len;
    }
    (out, at)
}

/// The file of segment `seq` in `dir`.
pub fn path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.seg"))
}

/// The sequence numbers of the segment files in `dir`, oldest first (other files ignored).
pub fn list(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(hex) = name.strip_suffix(".seg")
            && hex.len() == 16
            && let Ok(seq) = u64::from_str_radix(hex, 16)
        {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_scan_back_and_a_bad_one_ends_the_scan() {
        let mut bytes = frame(7, b"seven");
        bytes.extend(frame(8, b""));
        bytes.extend(frame(9, &[1; 1000]));
        let (found, valid) = scan(&bytes);
        assert_eq!(found.iter().map(|f| f.slot).collect::<Vec<_>>(), [7, 8, 9]);
        assert_eq!(valid, bytes.len());
        assert_eq!(
            unframe(&bytes[found[2].offset as usize..]).unwrap().1.len(),
            1000
        );

        // Torn: the last frame cut short.
        let (found, valid) = scan(&bytes[..bytes.len() - 1]);
        assert_eq!(found.len(), 2);
        assert_eq!(valid, found[1].offset as usize + HEADER_BYTES);
        // Corrupt: a flipped payload byte in the second frame ends the scan before it.
        let mut bad = bytes.clone();
        bad[found[1].offset as usize + HEADER_BYTES - 1] ^= 1;
        let (found2, valid2) = scan(&bad);
        assert_eq!(found2.len(), 1);
        assert_eq!(valid2, found[1].offset as usize);
        // A length beyond the limit is a bad frame, not an allocation.
        let mut huge = frame(1, b"x");
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(scan(&huge).0.len(), 0);
    }
}
