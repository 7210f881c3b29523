//! storage/src/array/layout.rs: device-array records (RecordHeader), the device label and
//! the superblock. No bytes make a decoder panic; decode(encode(x)) == x.
#![no_main]
use gigacompute_fuzz::layout::{self, Label, Probe, Superblock};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            // Record: checked as stored, and (CRCs being hard to forge) with the CRC fixed up
            // so the field decoding behind it is reached.
            let _ = layout::decode_record(rest);
            let mut b = rest.to_vec();
            if b.len() >= 12 {
                let len = (u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize).min(b.len());
                if len > 8 {
                    let crc = crc32c::crc32c(&b[8..len]);
                    b[4..8].copy_from_slice(&crc.to_le_bytes());
                }
            }
            if let Ok(Probe::Record(h)) = layout::decode_record(&b) {
                let data = &b[layout::RECORD_HEADER..h.len as usize];
                let mut out = Vec::new();
                layout::encode_record(
                    &mut out,
                    &h.key,
                    h.slot,
                    h.flags,
                    h.lamports,
                    h.rent_epoch,
                    &h.owner,
                    h.leaf,
                    data,
                );
                match layout::decode_record(&out) {
                    Ok(Probe::Record(h2)) => assert_eq!(h2, h),
                    other => panic!("re-encoded record does not decode: {other:?}"),
                }
                let _ = layout::to_account(&h, data);
            }
        }
        1 => {
            // Label: a device's block 0, at least 512 bytes as read from disk.
            let mut block = rest.to_vec();
            block.resize(block.len().max(512), 0);
            let mut fixed = block.clone();
            let crc = crc32c::crc32c(&fixed[0..52]);
            fixed[52..56].copy_from_slice(&crc.to_le_bytes());
            for b in [&block, &fixed] {
                if let Ok(Some(l)) = Label::decode(b) {
                    let mut out = vec![0u8; 512];
                    l.encode(&mut out);
                    assert_eq!(Label::decode(&out), Ok(Some(l)));
                }
            }
        }
        _ => {
            // Superblock: the geometry (segments per device) comes from the label; take a
            // small one from the input, then decode the rest against it.
            let Some((&nd, rest)) = rest.split_first() else {
                return;
            };
            let nd = usize::from(nd % 4);
            if rest.len() < nd {
                return;
            }
            let geom: Vec<u32> = rest[..nd].iter().map(|&n| u32::from(n % 64)).collect();
            let buf = &rest[nd..];
            let _ = Superblock::decode(buf, &geom);
            let len = Superblock::encoded_len(&geom);
            if buf.len() >= len {
                let mut fixed = buf.to_vec();
                let crc = crc32c::crc32c(&fixed[..len - 4]);
                fixed[len - 4..len].copy_from_slice(&crc.to_le_bytes());
                if let Some(sb) = Superblock::decode(&fixed, &geom) {
                    let mut out = vec![0u8; len];
                    sb.encode(&mut out);
                    assert_eq!(Superblock::decode(&out, &geom), Some(sb));
                }
            }
        }
    }
});
