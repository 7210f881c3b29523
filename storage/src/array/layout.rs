//! On-device layout of the device array: account records, device labels, the superblock.
//!
//! ```text
//! every device:  block 0 label | (device 0 only: superblock copy A, copy B) | segments from data_start
//! record (16-byte aligned, never straddles a block unless larger than one):
//!   0 magic u32 | 4 crc32c u32 (bytes 8..len) | 8 len u32 (header + data) | 12 flags u32
//!  16 slot u64 | 24 lamports u64 | 32 rent_epoch u64 | 40 pubkey [32] | 72 owner [32]
//! 104 leaf u32 (the account's position in the state tree) | 108 reserved u32 | 112 data
//! ```
//! All integers little-endian. A zero magic where a record could start means "rest of this
//! block is padding".

use solana_account::{Account, AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;

pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"AGCR");
pub const RECORD_HEADER: usize = 112;
pub const RECORD_ALIGN: usize = 16;
pub const FLAG_EXECUTABLE: u32 = 1;
pub const FLAG_TOMBSTONE: u32 = 2;
pub const FLAG_META: u32 = 4;
/// Solana's largest account.
pub const MAX_ACCOUNT_DATA: usize = 10 * 1024 * 1024;

const LABEL_MAGIC: u64 = u64::from_le_bytes(*b"GCARRAY1");
const SUPER_MAGIC: u64 = u64::from_le_bytes(*b"GCSUPER1");
/// 2: records carry their state-tree leaf position; slot metadata its state commitment.
pub const LAYOUT_VERSION: u32 = 2;

pub fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

pub fn record_len(data_len: usize) -> usize {
    RECORD_HEADER + data_len
}

/// Bytes a record takes in the log including its alignment padding.
pub fn record_footprint(data_len: usize) -> usize {
    align_up(record_len(data_len) as u64, RECORD_ALIGN as u64) as usize
}

/// A decoded record header (data follows it).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordHeader {
    pub len: u32,
    pub flags: u32,
    pub slot: u64,
    pub lamports: u64,
    pub rent_epoch: u64,
    pub key: [u8; 32],
    pub owner: [u8; 32],
    pub leaf: u32,
}

/// Encodes an account (or a tombstone, or a slot metadata blob) into `out`, replacing it.
pub fn encode_record(
    out: &mut Vec<u8>,
    key: &[u8; 32],
    slot: u64,
    flags: u32,
    lamports: u64,
    rent_epoch: u64,
    owner: &[u8; 32],
    leaf: u32,
    data: &[u8],
) {
    out.clear();
    let len = record_len(data.len());
    out.reserve(len);
    out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&slot.to_le_bytes());
    out.extend_from_slice(&lamports.to_le_bytes());
    out.extend_from_slice(&rent_epoch.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(owner);
    out.extend_from_slice(&leaf.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(data);
    let crc = crc32c::crc32c(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
}

pub fn encode_account(
    out: &mut Vec<u8>,
    key: &Pubkey,
    slot: u64,
    account: &AccountSharedData,
    leaf: u32,
) {
    let (flags, data) = if account.lamports() == 0 {
        (FLAG_TOMBSTONE, &[][..])
    } else {
        (
            u32::from(account.executable()) * FLAG_EXECUTABLE,
            account.data(),
        )
    };
    encode_record(
        out,
        &key.to_bytes(),
        slot,
        flags,
        account.lamports(),
        account.rent_epoch(),
        &account.owner().to_bytes(),
        leaf,
        data,
    );
}

pub fn meta_key(slot: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&slot.to_le_bytes());
    k
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// What is found where a record may start.
#[derive(Debug, PartialEq)]
pub enum Probe {
    /// Zero magic: the rest of the block is padding.
    Padding,
    Record(RecordHeader),
}

/// Parses and checks the record at the start of `buf` (which must hold all of it). Errors
/// name the reason; the caller adds device and offset.
pub fn decode_record(buf: &[u8]) -> Result<Probe, String> {
    if buf.len() < 4 {
        return Err("short buffer".into());
    }
    let magic = u32_at(buf, 0);
    if magic == 0 {
        return Ok(Probe::Padding);
    }
    if magic != RECORD_MAGIC || buf.len() < RECORD_HEADER {
        return Err(format!("bad record magic {magic:#x}"));
    }
    let len = u32_at(buf, 8) as usize;
    if !(RECORD_HEADER..=record_len(MAX_ACCOUNT_DATA.max(64 << 20))).contains(&len) {
        return Err(format!("bad record length {len}"));
    }
    if buf.len() < len {
        return Err(format!(
            "record of {len} bytes runs past the read ({} bytes)",
            buf.len()
        ));
    }
    let crc = crc32c::crc32c(&buf[8..len]);
    if crc != u32_at(buf, 4) {
        return Err("record checksum mismatch".into());
    }
    Ok(Probe::Record(RecordHeader {
        len: len as u32,
        flags: u32_at(buf, 12),
        slot: u64_at(buf, 16),
        lamports: u64_at(buf, 24),
        rent_epoch: u64_at(buf, 32),
        key: buf[40..72].try_into().expect("32 bytes"),
        owner: buf[72..104].try_into().expect("32 bytes"),
        leaf: u32_at(buf, 104),
    }))
}

pub fn to_account(h: &RecordHeader, data: &[u8]) -> AccountSharedData {
    AccountSharedData::from(Account {
        lamports: h.lamports,
        data: data.to_vec(),
        owner: Pubkey::new_from_array(h.owner),
        executable: h.flags & FLAG_EXECUTABLE != 0,
        rent_epoch: h.rent_epoch,
    })
}

/// Block 0 of every device: which array it belongs to and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub array_id: u64,
    pub index: u32,
    pub n_devices: u32,
    pub block_size: u32,
    pub segment_bytes: u64,
    pub n_segments: u32,
    pub data_start: u64,
}

impl Label {
    pub fn encode(&self, block: &mut [u8]) {
        block.fill(0);
        block[0..8].copy_from_slice(&LABEL_MAGIC.to_le_bytes());
        block[8..16].copy_from_slice(&self.array_id.to_le_bytes());
        block[16..20].copy_from_slice(&self.index.to_le_bytes());
        block[20..24].copy_from_slice(&self.n_devices.to_le_bytes());
        block[24..28].copy_from_slice(&self.block_size.to_le_bytes());
        block[28..32].copy_from_slice(&self.n_segments.to_le_bytes());
        block[32..40].copy_from_slice(&self.segment_bytes.to_le_bytes());
        block[40..48].copy_from_slice(&self.data_start.to_le_bytes());
        block[48..52].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
        let crc = crc32c::crc32c(&block[0..52]);
        block[52..56].copy_from_slice(&crc.to_le_bytes());
    }

    /// `Ok(None)`: a blank device: the whole first block is zeros. A partition table (its
    /// protective MBR ends at byte 510, a GPT header is at 512), an LVM label (512), an ext4
    /// superblock (1024) or anything else there without our magic is refused, not formatted.
    pub fn decode(block: &[u8]) -> Result<Option<Label>, String> {
        if block.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        if u64_at(block, 0) != LABEL_MAGIC {
            return Err(
                "not a GigaCompute device: its first block holds data (a partition table, a filesystem or volume label?) and no array label; refusing to overwrite it".into(),
            );
        }
        if crc32c::crc32c(&block[0..52]) != u32_at(block, 52) {
            return Err("device label checksum mismatch".into());
        }
        if u32_at(block, 48) != LAYOUT_VERSION {
            return Err(format!(
                "layout version {} not supported (this build reads version {LAYOUT_VERSION}); \
                 move the data directory aside and let the appliance create a new one",
                u32_at(block, 48)
            ));
        }
        Ok(Some(Label {
            array_id: u64_at(block, 8),
            index: u32_at(block, 16),
            n_devices: u32_at(block, 20),
            block_size: u32_at(block, 24),
            n_segments: u32_at(block, 28),
            segment_bytes: u64_at(block, 32),
            data_start: u64_at(block, 40),
        }))
    }
}

/// Per-segment state in the superblock. `fill == 0`: free.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SegmentState {
    /// Bytes written (a multiple of the block size).
    pub fill: u32,
    /// Slot of the commit that first wrote into this segment since it was last freed.
    pub birth_slot: u64,
}

/// The commit point: the array's state as of the last durable slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Superblock {
    pub seq: u64,
    pub last_slot: Option<u64>,
    /// Per device: its open segment (`u32::MAX`: none) and every segment's state.
    pub open: Vec<u32>,
    pub segments: Vec<Vec<SegmentState>>,
}

const SUPER_FIXED: usize = 40;

impl Superblock {
    pub fn encoded_len(segments_per_device: &[u32]) -> usize {
        SUPER_FIXED
            + segments_per_device
                .iter()
                .map(|&n| 8 + 12 * n as usize)
                .sum::<usize>()
            + 4
    }

    pub fn encode(&self, out: &mut [u8]) {
        out.fill(0);
        out[0..8].copy_from_slice(&SUPER_MAGIC.to_le_bytes());
        out[8..16].copy_from_slice(&self.seq.to_le_bytes());
        out[16..24].copy_from_slice(&self.last_slot.unwrap_or(u64::MAX).to_le_bytes());
        out[24..28].copy_from_slice(&(self.segments.len() as u32).to_le_bytes());
        let mut at = SUPER_FIXED;
        for (d, segs) in self.segments.iter().enumerate() {
            out[at..at + 4].copy_from_slice(&(segs.len() as u32).to_le_bytes());
            out[at + 4..at + 8].copy_from_slice(&self.open[d].to_le_bytes());
            at += 8;
            for s in segs {
                out[at..at + 4].copy_from_slice(&s.fill.to_le_bytes());
                out[at + 4..at + 12].copy_from_slice(&s.birth_slot.to_le_bytes());
                at += 12;
            }
        }
        let crc = crc32c::crc32c(&out[..at]);
        out[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    }

    /// `None` when the copy is blank, torn or from another layout (checksum decides).
    pub fn decode(buf: &[u8], segments_per_device: &[u32]) -> Option<Superblock> {
        let len = Self::encoded_len(segments_per_device);
        if buf.len() < len || u64_at(buf, 0) != SUPER_MAGIC {
            return None;
        }
        if crc32c::crc32c(&buf[..len - 4]) != u32_at(buf, len - 4) {
            return None;
        }
        if u32_at(buf, 24) as usize != segments_per_device.len() {
            return None;
        }
        let last = u64_at(buf, 16);
        let mut at = SUPER_FIXED;
        let mut open = Vec::new();
        let mut segments = Vec::new();
        for &n in segments_per_device {
            if u32_at(buf, at) != n {
                return None;
            }
            open.push(u32_at(buf, at + 4));
            at += 8;
            let segs = (0..n as usize)
                .map(|i| SegmentState {
                    fill: u32_at(buf, at + 12 * i),
                    birth_slot: u64_at(buf, at + 12 * i + 4),
                })
                .collect();
            at += 12 * n as usize;
            segments.push(segs);
        }
        Some(Superblock {
            seq: u64_at(buf, 8),
            last_slot: (last != u64::MAX).then_some(last),
            open,
            segments,
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_an_all_zero_first_block_is_blank() {
        assert_eq!(Label::decode(&[0u8; 4096]), Ok(None));
        // A protective MBR's signature, an LVM label, an ext4 superblock's magic.
        for (at, bytes) in [
            (510, &[0x55u8, 0xaa][..]),
            (512, b"LABELONE"),
            (1080, &[0x53, 0xef]),
        ] {
            let mut block = [0u8; 4096];
            block[at..at + bytes.len()].copy_from_slice(bytes);
            let e = Label::decode(&block).unwrap_err();
            assert!(e.contains("refusing to overwrite"), "{e}");
        }
    }
    use super::*;

    #[test]
    fn record_round_trip_and_every_bit_flip_detected() {
        let mut buf = Vec::new();
        encode_record(
            &mut buf,
            &[7; 32],
            42,
            FLAG_EXECUTABLE,
            99,
            3,
            &[9; 32],
            77,
            b"hello",
        );
        let Ok(Probe::Record(h)) = decode_record(&buf) else {
            panic!("decodes")
        };
        assert_eq!(
            (h.slot, h.lamports, h.rent_epoch, h.key, h.owner, h.leaf),
            (42, 99, 3, [7; 32], [9; 32], 77)
        );
        assert_eq!(&buf[RECORD_HEADER..h.len as usize], b"hello");
        for bit in 0..buf.len() * 8 {
            let mut b = buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(decode_record(&b), Ok(Probe::Record(h2)) if h2 == h),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn superblock_round_trip_and_torn_copy_rejected() {
        let sb = Superblock {
            seq: 5,
            last_slot: Some(17),
            open: vec![1, u32::MAX],
            segments: vec![
                vec![
                    SegmentState {
                        fill: 4096,
                        birth_slot: 3
                    };
                    3
                ],
                vec![SegmentState::default(); 2],
            ],
        };
        let mut buf = vec![0u8; 4096];
        sb.encode(&mut buf);
        assert_eq!(Superblock::decode(&buf, &[3, 2]), Some(sb));
        buf[50] ^= 1;
        assert_eq!(Superblock::decode(&buf, &[3, 2]), None);
    }
}
