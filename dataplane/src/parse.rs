//! Solana wire-format transaction parsing into a fixed-size descriptor, without copying.
//!
//! A [`TxDescriptor`] holds offsets into the datagram that carried the transaction; the bytes
//! themselves stay in the [`Packet`](crate::Packet) that received them. Parsing enforces the
//! same structural rules as Agave's `VersionedTransaction::sanitize` plus the duplicate-key
//! check that `SanitizedMessage` creation performs, so everything that reaches verification is
//! a transaction Agave would accept structurally. Address-table lookups are checked for shape
//! here and resolved against account state by the runtime.

use thiserror::Error;

/// Largest serialized transaction Solana accepts (IPv6 MTU 1280 - 40 - 8).
pub const PACKET_DATA_SIZE: usize = 1232;
const SIGNATURE_BYTES: usize = 64;
const PUBKEY_BYTES: usize = 32;
const HASH_BYTES: usize = 32;
/// Account indexes are `u8`, so a message can reference at most 256 accounts.
const MAX_ACCOUNTS: usize = 256;
/// The high bit of the first message byte marks a versioned message.
const VERSION_PREFIX_MASK: u8 = 0x80;

/// Why a datagram was not a transaction. Each reason has its own drop counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[repr(u8)]
pub enum ParseError {
    #[error("datagram is empty")]
    Empty = 0,
    #[error("datagram larger than {PACKET_DATA_SIZE} bytes")]
    Oversize,
    #[error("datagram ends inside a field")]
    Truncated,
    #[error("malformed compact-u16 length")]
    BadCompactU16,
    #[error("signature count does not match the message header")]
    SignatureCountMismatch,
    #[error("no signatures")]
    NoSignatures,
    #[error("message header is inconsistent with its account keys")]
    BadHeader,
    #[error("account key listed twice")]
    DuplicateAccountKey,
    #[error("instruction index out of range")]
    IndexOutOfRange,
    #[error("message version not supported")]
    UnknownVersion,
    #[error("bytes after the end of the transaction")]
    TrailingBytes,
    #[error("too many account keys")]
    TooManyAccounts,
    #[error("address table lookup selects no accounts")]
    EmptyLookup,
    /// The wire parser accepted it and bincode did not (found when the verify tile
    /// deserializes a verified transaction; the parser is meant to make this impossible).
    #[error("transaction does not deserialize")]
    Undecodable,
}

impl ParseError {
    pub const COUNT: usize = 14;
    pub const ALL: [ParseError; Self::COUNT] = [
        ParseError::Empty,
        ParseError::Oversize,
        ParseError::Truncated,
        ParseError::BadCompactU16,
        ParseError::SignatureCountMismatch,
        ParseError::NoSignatures,
        ParseError::BadHeader,
        ParseError::DuplicateAccountKey,
        ParseError::IndexOutOfRange,
        ParseError::UnknownVersion,
        ParseError::TrailingBytes,
        ParseError::TooManyAccounts,
        ParseError::EmptyLookup,
        ParseError::Undecodable,
    ];

    /// Stable snake_case name, used as a metric label.
    pub fn name(self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::Oversize => "oversize",
            ParseError::Truncated => "truncated",
            ParseError::BadCompactU16 => "bad_compact_u16",
            ParseError::SignatureCountMismatch => "signature_count_mismatch",
            ParseError::NoSignatures => "no_signatures",
            ParseError::BadHeader => "bad_header",
            ParseError::DuplicateAccountKey => "duplicate_account_key",
            ParseError::IndexOutOfRange => "index_out_of_range",
            ParseError::UnknownVersion => "unknown_version",
            ParseError::TrailingBytes => "trailing_bytes",
            ParseError::TooManyAccounts => "too_many_accounts",
            ParseError::EmptyLookup => "empty_lookup",
            ParseError::Undecodable => "undecodable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageVersion {
    Legacy,
    V0,
}

/// Offsets of one parsed transaction inside its datagram. `Copy`, 32 bytes, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxDescriptor {
    pub version: MessageVersion,
    pub num_signatures: u8,
    pub num_required_signatures: u8,
    pub num_readonly_signed: u8,
    pub num_readonly_unsigned: u8,
    pub num_static_keys: u8,
    pub num_lookups: u8,
    /// Accounts loaded through lookups (writable + readonly), known from the lookup indexes.
    pub num_lookup_writable: u8,
    pub num_lookup_readonly: u8,
    pub signatures_offset: u16,
    pub message_offset: u16,
    pub keys_offset: u16,
    pub blockhash_offset: u16,
    pub num_instructions: u16,
    pub instructions_offset: u16,
    pub lookups_offset: u16,
    pub len: u16,
}

/// One instruction, borrowed from the datagram.
#[derive(Debug, Clone, Copy)]
pub struct InstructionView<'a> {
    pub program_id_index: u8,
    pub accounts: &'a [u8],
    pub data: &'a [u8],
}

/// One address-table lookup, borrowed from the datagram.
#[derive(Debug, Clone, Copy)]
pub struct LookupView<'a> {
    pub table: &'a [u8; 32],
    pub writable_indexes: &'a [u8],
    pub readonly_indexes: &'a [u8],
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(n).ok_or(ParseError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(ParseError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }

    /// Solana's compact-u16 (short_vec): 1–3 bytes, 7 bits each, canonical encoding only.
    #[inline]
    fn compact_u16(&mut self) -> Result<u16, ParseError> {
        // Nearly every length on the wire is below 128: one byte.
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                return Ok(u16::from(b));
            }
            None => return Err(ParseError::Truncated),
            Some(_) => {}
        }
        let mut value: u32 = 0;
        for i in 0..3 {
            let byte = *self.buf.get(self.pos).ok_or(ParseError::Truncated)?;
            self.pos += 1;
            let bits = u32::from(byte & 0x7f);
            if i == 2 && byte > 0x03 {
                return Err(ParseError::BadCompactU16);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                // An alias (a zero continuation byte) is not canonical.
                if i > 0 && byte == 0 {
                    return Err(ParseError::BadCompactU16);
                }
                return Ok(value as u16);
            }
        }
        Err(ParseError::BadCompactU16)
    }
}

/// Parse and structurally validate one datagram.
pub fn parse_transaction(buf: &[u8]) -> Result<TxDescriptor, ParseError> {
    if buf.is_empty() {
        return Err(ParseError::Empty);
    }
    if buf.len() > PACKET_DATA_SIZE {
        return Err(ParseError::Oversize);
    }
    let mut r = Reader { buf, pos: 0 };
    let num_signatures = r.compact_u16()?;
    if num_signatures == 0 {
        return Err(ParseError::NoSignatures);
    }
    // 19 signatures already fill a packet; anything larger cannot fit.
    if usize::from(num_signatures) * SIGNATURE_BYTES > PACKET_DATA_SIZE {
        return Err(ParseError::Truncated);
    }
    let signatures_offset = r.pos;
    r.take(usize::from(num_signatures) * SIGNATURE_BYTES)?;

    let message_offset = r.pos;
    let first = r.u8()?;
    let (version, num_required_signatures) = if first & VERSION_PREFIX_MASK != 0 {
        if first & !VERSION_PREFIX_MASK != 0 {
            return Err(ParseError::UnknownVersion);
        }
        (MessageVersion::V0, r.u8()?)
    } else {
        (MessageVersion::Legacy, first)
    };
    let num_readonly_signed = r.u8()?;
    let num_readonly_unsigned = r.u8()?;

    let num_static_keys = usize::from(r.compact_u16()?);
    if num_static_keys > MAX_ACCOUNTS {
        return Err(ParseError::TooManyAccounts);
    }
    let keys_offset = r.pos;
    let keys = r.take(num_static_keys * PUBKEY_BYTES)?;
    let blockhash_offset = r.pos;
    r.take(HASH_BYTES)?;

    // Header rules (Agave `Message::sanitize` / `v0::Message::sanitize`).
    if usize::from(num_signatures) != usize::from(num_required_signatures) {
        return Err(ParseError::SignatureCountMismatch);
    }
    if usize::from(num_required_signatures) + usize::from(num_readonly_unsigned) > num_static_keys
        || num_readonly_signed >= num_required_signatures
    {
        return Err(ParseError::BadHeader);
    }

    let num_instructions = r.compact_u16()?;
    let instructions_offset = r.pos;
    // Bounds of account indexes are checked after lookups are known (v0 indexes may point
    // past the static keys); remember the largest index seen.
    let mut max_account_index: usize = 0;
    let mut max_program_index: usize = 0;
    let mut min_program_index: usize = usize::MAX;
    for _ in 0..num_instructions {
        let program_id_index = usize::from(r.u8()?);
        max_program_index = max_program_index.max(program_id_index);
        min_program_index = min_program_index.min(program_id_index);
        let n_accounts = usize::from(r.compact_u16()?);
        for &idx in r.take(n_accounts)? {
            max_account_index = max_account_index.max(usize::from(idx));
        }
        let n_data = usize::from(r.compact_u16()?);
        r.take(n_data)?;
    }

    let mut num_lookups = 0u8;
    let mut lookup_writable = 0usize;
    let mut lookup_readonly = 0usize;
    let lookups_offset = r.pos;
    if version == MessageVersion::V0 {
        let n = r.compact_u16()?;
        if usize::from(n) > MAX_ACCOUNTS {
            return Err(ParseError::TooManyAccounts);
        }
        num_lookups = n as u8;
        for _ in 0..n {
            r.take(PUBKEY_BYTES)?;
            let w = usize::from(r.compact_u16()?);
            r.take(w)?;
            let ro = usize::from(r.compact_u16()?);
            r.take(ro)?;
            if w == 0 && ro == 0 {
                return Err(ParseError::EmptyLookup);
            }
            lookup_writable += w;
            lookup_readonly += ro;
        }
    }
    if r.pos != buf.len() {
        return Err(ParseError::TrailingBytes);
    }

    let total_keys = num_static_keys + lookup_writable + lookup_readonly;
    if total_keys > MAX_ACCOUNTS {
        return Err(ParseError::TooManyAccounts);
    }
    if num_instructions > 0 {
        // Programs must be static keys and never the fee payer (index 0).
        if max_program_index >= num_static_keys || min_program_index == 0 {
            return Err(ParseError::IndexOutOfRange);
        }
        if max_account_index >= total_keys {
            return Err(ParseError::IndexOutOfRange);
        }
    }
    if has_duplicate_keys(keys) {
        return Err(ParseError::DuplicateAccountKey);
    }

    Ok(TxDescriptor {
        version,
        num_signatures: num_signatures as u8,
        num_required_signatures,
        num_readonly_signed,
        num_readonly_unsigned,
        num_static_keys: num_static_keys as u8,
        num_lookups,
        num_lookup_writable: lookup_writable as u8,
        num_lookup_readonly: lookup_readonly as u8,
        signatures_offset: signatures_offset as u16,
        message_offset: message_offset as u16,
        keys_offset: keys_offset as u16,
        blockhash_offset: blockhash_offset as u16,
        num_instructions,
        instructions_offset: instructions_offset as u16,
        lookups_offset: lookups_offset as u16,
        len: buf.len() as u16,
    })
}

/// Small sets: pairwise compare (no allocation); large sets: sort a stack copy of key prefixes.
fn has_duplicate_keys(keys: &[u8]) -> bool {
    let n = keys.len() / PUBKEY_BYTES;
    // Fixed-size keys: compared inline, not through memcmp.
    let key = |i: usize| -> &[u8; PUBKEY_BYTES] {
        keys[i * PUBKEY_BYTES..(i + 1) * PUBKEY_BYTES]
            .try_into()
            .expect("32-byte key")
    };
    if n <= 16 {
        for i in 0..n {
            for j in i + 1..n {
                if key(i) == key(j) {
                    return true;
                }
            }
        }
        return false;
    }
    let mut order = [0u8; MAX_ACCOUNTS];
    for (i, slot) in order.iter_mut().enumerate().take(n) {
        *slot = i as u8;
    }
    let order = &mut order[..n];
    order.sort_unstable_by(|&a, &b| key(a.into()).cmp(key(b.into())));
    order
        .windows(2)
        .any(|w| key(w[0].into()) == key(w[1].into()))
}

impl TxDescriptor {
    pub fn signatures<'a>(&self, buf: &'a [u8]) -> impl ExactSizeIterator<Item = &'a [u8; 64]> {
        let start = usize::from(self.signatures_offset);
        buf[start..start + usize::from(self.num_signatures) * SIGNATURE_BYTES]
            .chunks_exact(SIGNATURE_BYTES)
            .map(|c| c.try_into().expect("64-byte chunk"))
    }

    /// The first signature identifies the transaction (Solana's transaction id).
    pub fn first_signature<'a>(&self, buf: &'a [u8]) -> &'a [u8; 64] {
        let start = usize::from(self.signatures_offset);
        buf[start..start + SIGNATURE_BYTES]
            .try_into()
            .expect("64 bytes")
    }

    /// The signed bytes.
    pub fn message<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[usize::from(self.message_offset)..usize::from(self.len)]
    }

    pub fn static_key<'a>(&self, buf: &'a [u8], i: usize) -> &'a [u8; 32] {
        let start = usize::from(self.keys_offset) + i * PUBKEY_BYTES;
        buf[start..start + PUBKEY_BYTES]
            .try_into()
            .expect("32 bytes")
    }

    pub fn static_keys<'a>(&self, buf: &'a [u8]) -> impl ExactSizeIterator<Item = &'a [u8; 32]> {
        let start = usize::from(self.keys_offset);
        buf[start..start + usize::from(self.num_static_keys) * PUBKEY_BYTES]
            .chunks_exact(PUBKEY_BYTES)
            .map(|c| c.try_into().expect("32-byte chunk"))
    }

    pub fn recent_blockhash<'a>(&self, buf: &'a [u8]) -> &'a [u8; 32] {
        let start = usize::from(self.blockhash_offset);
        buf[start..start + HASH_BYTES].try_into().expect("32 bytes")
    }

    pub fn fee_payer<'a>(&self, buf: &'a [u8]) -> &'a [u8; 32] {
        self.static_key(buf, 0)
    }

    pub fn total_keys(&self) -> usize {
        usize::from(self.num_static_keys)
            + usize::from(self.num_lookup_writable)
            + usize::from(self.num_lookup_readonly)
    }

    /// Writability of a static key by the header alone (before demotion of reserved keys).
    pub fn is_static_writable(&self, i: usize) -> bool {
        let signed = usize::from(self.num_required_signatures);
        if i < signed {
            i < signed - usize::from(self.num_readonly_signed)
        } else {
            i < usize::from(self.num_static_keys) - usize::from(self.num_readonly_unsigned)
        }
    }

    /// The static keys whose owner must execute the transaction (scale-out routing): every
    /// writable one, and every read-only one that no instruction names as its program
    /// (programs are held by every node). Keys loaded from lookup tables are not known
    /// without state: the executing bank checks those.
    pub fn owned_keys<'a>(&self, buf: &'a [u8]) -> impl Iterator<Item = &'a [u8; 32]> + use<'a> {
        let mut programs = [false; 256];
        for ix in self.instructions(buf) {
            programs[usize::from(ix.program_id_index)] = true;
        }
        let d = *self;
        (0..usize::from(self.num_static_keys))
            .filter(move |&i| d.is_static_writable(i) || !programs[i])
            .map(move |i| d.static_key(buf, i))
    }

    /// Instructions in order. The descriptor was validated, so walking cannot fail.
    pub fn instructions<'a>(&self, buf: &'a [u8]) -> InstructionIter<'a> {
        InstructionIter {
            r: Reader {
                buf: &buf[..usize::from(self.len)],
                pos: usize::from(self.instructions_offset),
            },
            remaining: self.num_instructions,
        }
    }

    pub fn lookups<'a>(&self, buf: &'a [u8]) -> LookupIter<'a> {
        let mut r = Reader {
            buf: &buf[..usize::from(self.len)],
            pos: usize::from(self.lookups_offset),
        };
        let remaining = if self.version == MessageVersion::V0 {
            r.compact_u16().unwrap_or(0)
        } else {
            0
        };
        LookupIter { r, remaining }
    }
}

pub struct InstructionIter<'a> {
    r: Reader<'a>,
    remaining: u16,
}

impl<'a> Iterator for InstructionIter<'a> {
    type Item = InstructionView<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let program_id_index = self.r.u8().ok()?;
        let n = usize::from(self.r.compact_u16().ok()?);
        let accounts = self.r.take(n).ok()?;
        let n = usize::from(self.r.compact_u16().ok()?);
        let data = self.r.take(n).ok()?;
        Some(InstructionView {
            program_id_index,
            accounts,
            data,
        })
    }
}

pub struct LookupIter<'a> {
    r: Reader<'a>,
    remaining: u16,
}

impl<'a> Iterator for LookupIter<'a> {
    type Item = LookupView<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let table = self.r.take(32).ok()?.try_into().ok()?;
        let n = usize::from(self.r.compact_u16().ok()?);
        let writable_indexes = self.r.take(n).ok()?;
        let n = usize::from(self.r.compact_u16().ok()?);
        let readonly_indexes = self.r.take(n).ok()?;
        Some(LookupView {
            table,
            writable_indexes,
            readonly_indexes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use solana_hash::Hash;
    use solana_keypair::Keypair;
    use solana_message::{
        Message, VersionedMessage, v0::Message as V0Message, v0::MessageAddressTableLookup,
    };
    use solana_pubkey::Pubkey;
    use solana_signer::Signer;
    use solana_transaction::{Transaction, versioned::VersionedTransaction};

    fn transfer_bytes() -> Vec<u8> {
        let from = Keypair::new();
        let to = Pubkey::new_unique();
        let ix = solana_system_interface::instruction::transfer(&from.pubkey(), &to, 42);
        let msg = Message::new(&[ix], Some(&from.pubkey()));
        let tx = Transaction::new(&[&from], msg, Hash::new_from_array([9; 32]));
        bincode::serialize(&tx).unwrap()
    }

    fn v0_bytes() -> Vec<u8> {
        let from = Keypair::new();
        let to = Pubkey::new_unique();
        let ix = solana_system_interface::instruction::transfer(&from.pubkey(), &to, 42);
        let mut msg =
            V0Message::try_compile(&from.pubkey(), &[ix], &[], Hash::new_from_array([3; 32]))
                .unwrap();
        msg.address_table_lookups.push(MessageAddressTableLookup {
            account_key: Pubkey::new_unique(),
            writable_indexes: vec![1],
            readonly_indexes: vec![0, 2],
        });
        let tx = VersionedTransaction::try_new(VersionedMessage::V0(msg), &[&from]).unwrap();
        bincode::serialize(&tx).unwrap()
    }

    #[test]
    fn parses_legacy_transfer() {
        let bytes = transfer_bytes();
        let d = parse_transaction(&bytes).unwrap();
        assert_eq!(d.version, MessageVersion::Legacy);
        assert_eq!(d.num_signatures, 1);
        assert_eq!(d.num_static_keys, 3);
        assert_eq!(d.num_instructions, 1);
        let ix = d.instructions(&bytes).next().unwrap();
        assert_eq!(ix.program_id_index, 2);
        assert_eq!(ix.accounts, &[0, 1]);
        assert_eq!(&d.recent_blockhash(&bytes), &&[9u8; 32]);
        assert!(d.is_static_writable(0) && d.is_static_writable(1) && !d.is_static_writable(2));
        let tx: Transaction = bincode::deserialize(&bytes).unwrap();
        assert_eq!(d.first_signature(&bytes), tx.signatures[0].as_array());
        assert_eq!(d.message(&bytes), tx.message_data().as_slice());
    }

    #[test]
    fn parses_v0_with_lookups() {
        let bytes = v0_bytes();
        let d = parse_transaction(&bytes).unwrap();
        assert_eq!(d.version, MessageVersion::V0);
        assert_eq!(d.num_lookups, 1);
        assert_eq!((d.num_lookup_writable, d.num_lookup_readonly), (1, 2));
        let l = d.lookups(&bytes).next().unwrap();
        assert_eq!(l.writable_indexes, &[1]);
        assert_eq!(l.readonly_indexes, &[0, 2]);
    }

    #[test]
    fn every_truncation_is_rejected_without_panic() {
        for bytes in [transfer_bytes(), v0_bytes()] {
            for n in 0..bytes.len() {
                assert!(
                    parse_transaction(&bytes[..n]).is_err(),
                    "prefix {n} accepted"
                );
            }
        }
    }

    #[test]
    fn malformed_classes_are_named() {
        let good = transfer_bytes();
        assert_eq!(parse_transaction(&[]), Err(ParseError::Empty));
        assert_eq!(
            parse_transaction(&vec![1u8; PACKET_DATA_SIZE + 1]),
            Err(ParseError::Oversize)
        );
        assert_eq!(parse_transaction(&good[..10]), Err(ParseError::Truncated));
        // compact-u16 that never terminates / alias encoding
        assert_eq!(
            parse_transaction(&[0xff, 0xff, 0xff, 0x01]),
            Err(ParseError::BadCompactU16)
        );
        assert_eq!(
            parse_transaction(&[0x81, 0x00]),
            Err(ParseError::BadCompactU16)
        );
        // zero signatures
        assert_eq!(
            parse_transaction(&[0, 1, 2, 3]),
            Err(ParseError::NoSignatures)
        );
        // header says two signers, one signature present
        let mut b = good.clone();
        b[65] = 2;
        assert_eq!(
            parse_transaction(&b),
            Err(ParseError::SignatureCountMismatch)
        );
        // readonly-signed == signers: the payer would be read-only
        let mut b = good.clone();
        b[66] = 1;
        assert_eq!(parse_transaction(&b), Err(ParseError::BadHeader));
        // duplicate key: copy key 0 over key 1
        let mut b = good.clone();
        let k0: Vec<u8> = b[69..101].to_vec();
        b[101..133].copy_from_slice(&k0);
        assert_eq!(parse_transaction(&b), Err(ParseError::DuplicateAccountKey));
        // program index out of range
        let mut b = good.clone();
        let ix_start = 69 + 3 * 32 + 32 + 1;
        b[ix_start] = 7;
        assert_eq!(parse_transaction(&b), Err(ParseError::IndexOutOfRange));
        // program index 0 = fee payer
        let mut b = good.clone();
        b[ix_start] = 0;
        assert_eq!(parse_transaction(&b), Err(ParseError::IndexOutOfRange));
        // account index out of range
        let mut b = good.clone();
        b[ix_start + 2] = 9;
        assert_eq!(parse_transaction(&b), Err(ParseError::IndexOutOfRange));
        // unknown version (v1)
        let mut b = good.clone();
        b.insert(65, 0x81);
        assert_eq!(parse_transaction(&b), Err(ParseError::UnknownVersion));
        // trailing bytes
        let mut b = good.clone();
        b.push(0);
        assert_eq!(parse_transaction(&b), Err(ParseError::TrailingBytes));
        // v0 lookup with no indexes
        let mut v = v0_bytes();
        let d = parse_transaction(&v).unwrap();
        let lo = usize::from(d.lookups_offset) + 1 + 32;
        v.truncate(lo);
        v.extend_from_slice(&[0, 0]);
        assert_eq!(parse_transaction(&v), Err(ParseError::EmptyLookup));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1300)) {
            let _ = parse_transaction(&bytes);
        }

        #[test]
        fn random_mutations_never_panic(pos in 0usize..300, val in proptest::num::u8::ANY) {
            let mut b = v0_bytes();
            let p = pos % b.len();
            b[p] = val;
            if let Ok(d) = parse_transaction(&b) {
                let _ = d.instructions(&b).count();
                let _ = d.lookups(&b).count();
            }
        }
    }
}
