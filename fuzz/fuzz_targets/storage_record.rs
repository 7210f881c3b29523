//! storage/src/record.rs, the log store's on-disk record (compiled from its source: the
//! module is private to `storage`). decode_header/check_crc/decode_body never panic on any
//! bytes; an accepted record re-encodes to the same bytes (decode ∘ encode = id).
#![no_main]
use gigacompute_fuzz::record::{self, HEADER_BYTES};
use libfuzzer_sys::fuzz_target;
use solana_account::ReadableAccount;

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER_BYTES {
        return;
    }
    let hb: &[u8; HEADER_BYTES] = data[..HEADER_BYTES].try_into().unwrap();
    let body = &data[HEADER_BYTES..];
    let Ok(h) = record::decode_header(hb) else {
        return;
    };
    // Fuzzing cannot forge CRCs at speed: decode the body whether or not the CRC matches (the
    // decoder must be safe on its own: "a CRC is not a parser").
    let crc_ok = record::check_crc(hb, body, h.crc);
    let Ok(d) = record::decode_body(&h, body) else {
        return;
    };
    assert_eq!(d.accounts.len(), h.n_accounts as usize);
    assert_eq!(d.metas.len(), h.n_metas as usize);
    // Round trip: encode what was decoded; it must decode to the same thing.
    let mut out = Vec::new();
    let mut accts = d.accounts.iter().map(|(k, a, s)| (k, a, *s));
    let mut metas = d.metas.iter().map(|(s, m)| (*s, &m[..]));
    record::encode(&mut out, h.flags, h.slot, &mut accts, &mut metas);
    let ob: &[u8; HEADER_BYTES] = out[..HEADER_BYTES].try_into().unwrap();
    let h2 = record::decode_header(ob).expect("own header decodes");
    assert!(record::check_crc(ob, &out[HEADER_BYTES..], h2.crc));
    assert_eq!(
        (h2.flags, h2.slot, h2.n_accounts, h2.n_metas),
        (h.flags, h.slot, h.n_accounts, h.n_metas)
    );
    let d2 = record::decode_body(&h2, &out[HEADER_BYTES..]).expect("own body decodes");
    assert_eq!(d2.metas, d.metas);
    assert_eq!(d2.accounts.len(), d.accounts.len());
    for ((k1, a1, s1), (k2, a2, s2)) in d.accounts.iter().zip(&d2.accounts) {
        assert_eq!((k1, s1), (k2, s2));
        assert_eq!(
            (
                a1.lamports(),
                a1.owner(),
                a1.executable(),
                a1.rent_epoch(),
                a1.data()
            ),
            (
                a2.lamports(),
                a2.owner(),
                a2.executable(),
                a2.rent_epoch(),
                a2.data()
            )
        );
    }
    // A record whose body is exactly what its header declares re-encodes byte for byte.
    if crc_ok && h.body_len as usize == body.len() {
        assert_eq!(&out[..], data);
    }
});
