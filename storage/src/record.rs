//! On-disk slot record: header, accounts, slot metadata; CRC32C over all of it.
//!
//! ```text
//! magic u32 | flags u32 | slot u64 | n_accounts u32 | n_metas u32 | body_len u64 | crc32c u32
//! body: n_accounts × (pubkey 32 | slot u64 | lamports u64 | owner 32 | executable u8 | rent_epoch u64 |
//!                     data_len u32 | data)
//!       n_metas × (slot u64 | len u32 | bytes)
//! ```
//! All integers little-endian. The CRC covers the header (with the crc field zero) and body.

use solana_account::{Account, AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;

pub const MAGIC: u32 = u32::from_le_bytes(*b"GCLS");
pub const HEADER_BYTES: usize = 36;
/// Solana's largest account.
pub const MAX_ACCOUNT_DATA_BYTES: usize = 10 * 1024 * 1024;
/// A record larger than this is treated as garbage (a corrupt length field).
pub const MAX_RECORD_BODY_BYTES: u64 = 1 << 36;
pub const FLAG_CHECKPOINT: u32 = 1;

pub struct Header {
    pub flags: u32,
    pub slot: u64,
    pub n_accounts: u32,
    pub n_metas: u32,
    pub body_len: u64,
    pub crc: u32,
}

pub fn account_bytes(data_len: usize) -> usize {
    32 + 8 + 8 + 32 + 1 + 8 + 4 + data_len
}

pub fn encode(
    out: &mut Vec<u8>,
    flags: u32,
    slot: u64,
    accounts: &mut dyn Iterator<Item = (&Pubkey, &AccountSharedData, u64)>,
    metas: &mut dyn Iterator<Item = (u64, &[u8])>,
) {
    let start = out.len();
    out.resize(start + HEADER_BYTES, 0);
    let mut n_accounts = 0u32;
    for (k, a, written_slot) in accounts {
        out.extend_from_slice(k.as_ref());
        out.extend_from_slice(&written_slot.to_le_bytes());
        out.extend_from_slice(&a.lamports().to_le_bytes());
        out.extend_from_slice(a.owner().as_ref());
        out.push(u8::from(a.executable()));
        out.extend_from_slice(&a.rent_epoch().to_le_bytes());
        out.extend_from_slice(&(a.data().len() as u32).to_le_bytes());
        out.extend_from_slice(a.data());
        n_accounts += 1;
    }
    let mut n_metas = 0u32;
    for (s, m) in metas {
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&(m.len() as u32).to_le_bytes());
        out.extend_from_slice(m);
        n_metas += 1;
    }
    let body_len = (out.len() - start - HEADER_BYTES) as u64;
    let h = &mut out[start..start + HEADER_BYTES];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&flags.to_le_bytes());
    h[8..16].copy_from_slice(&slot.to_le_bytes());
    h[16..20].copy_from_slice(&n_accounts.to_le_bytes());
    h[20..24].copy_from_slice(&n_metas.to_le_bytes());
    h[24..32].copy_from_slice(&body_len.to_le_bytes());
    let crc = crc32c::crc32c(&out[start..]);
    out[start + 32..start + 36].copy_from_slice(&crc.to_le_bytes());
}

pub fn decode_header(b: &[u8; HEADER_BYTES]) -> Result<Header, &'static str> {
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4"));
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8"));
    if u32_at(0) != MAGIC {
        return Err("bad magic");
    }
    let h = Header {
        flags: u32_at(4),
        slot: u64_at(8),
        n_accounts: u32_at(16),
        n_metas: u32_at(20),
        body_len: u64_at(24),
        crc: u32_at(32),
    };
    if h.body_len > MAX_RECORD_BODY_BYTES {
        return Err("record length out of range");
    }
    Ok(h)
}

pub fn check_crc(header: &[u8; HEADER_BYTES], body: &[u8], expected: u32) -> bool {
    let mut h = *header;
    h[32..36].fill(0);
    crc32c::crc32c_append(crc32c::crc32c(&h), body) == expected
}

pub struct Decoded {
    pub accounts: Vec<(Pubkey, AccountSharedData, u64)>,
    pub metas: Vec<(u64, Vec<u8>)>,
}

/// Decode a body whose CRC already matched; still bounds-checked (a CRC is not a parser).
pub fn decode_body(h: &Header, body: &[u8]) -> Result<Decoded, &'static str> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<&[u8], &'static str> {
        let s = body
            .get(pos..pos + n)
            .ok_or("body shorter than its contents")?;
        pos += n;
        Ok(s)
    };
    let mut accounts = Vec::with_capacity(h.n_accounts.min(1 << 20) as usize);
    for _ in 0..h.n_accounts {
        let key = Pubkey::new_from_array(take(32)?.try_into().expect("32"));
        let written_slot = u64::from_le_bytes(take(8)?.try_into().expect("8"));
        let lamports = u64::from_le_bytes(take(8)?.try_into().expect("8"));
        let owner = Pubkey::new_from_array(take(32)?.try_into().expect("32"));
        // Strict: a byte other than 0 or 1 would decode to `true` and re-encode as 1, so two
        // different records would mean the same account (found by the storage_record fuzzer).
        let executable = match take(1)?[0] {
            0 => false,
            1 => true,
            _ => return Err("executable flag is neither 0 nor 1"),
        };
        let rent_epoch = u64::from_le_bytes(take(8)?.try_into().expect("8"));
        let len = u32::from_le_bytes(take(4)?.try_into().expect("4")) as usize;
        if len > MAX_ACCOUNT_DATA_BYTES {
            return Err("account data length out of range");
        }
        let data = take(len)?.to_vec();
        accounts.push((
            key,
            AccountSharedData::from(Account {
                lamports,
                data,
                owner,
                executable,
                rent_epoch,
            }),
            written_slot,
        ));
    }
    let mut metas = Vec::with_capacity(h.n_metas.min(1 << 16) as usize);
    for _ in 0..h.n_metas {
        let slot = u64::from_le_bytes(take(8)?.try_into().expect("8"));
        let len = u32::from_le_bytes(take(4)?.try_into().expect("4")) as usize;
        metas.push((slot, take(len)?.to_vec()));
    }
    if pos != body.len() {
        return Err("trailing bytes in record body");
    }
    Ok(Decoded { accounts, metas })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_account_record(executable: bool) -> Vec<u8> {
        let acct = AccountSharedData::from(Account {
            lamports: 7,
            data: vec![1, 2, 3],
            owner: Pubkey::new_unique(),
            executable,
            rent_epoch: u64::MAX,
        });
        let key = Pubkey::new_unique();
        let mut out = Vec::new();
        encode(
            &mut out,
            0,
            9,
            &mut std::iter::once((&key, &acct, 9)),
            &mut std::iter::empty(),
        );
        out
    }

    #[test]
    fn executable_flag_must_be_zero_or_one() {
        let rec = one_account_record(true);
        let hb: &[u8; HEADER_BYTES] = rec[..HEADER_BYTES].try_into().unwrap();
        let h = decode_header(hb).unwrap();
        assert!(
            decode_body(&h, &rec[HEADER_BYTES..]).unwrap().accounts[0]
                .1
                .executable()
        );
        // The executable byte sits after key, slot, lamports and owner.
        let mut bad = rec.clone();
        bad[HEADER_BYTES + 32 + 8 + 8 + 32] = 0xff;
        assert_eq!(
            decode_body(&h, &bad[HEADER_BYTES..]).err(),
            Some("executable flag is neither 0 nor 1")
        );
    }
}
