//! stateproof::Proof::decode (the binary proof a light client receives) and verify. Never
//! panics; decode(encode(p)) == p and encode(decode(b)) == b for every accepted b.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stateproof::{Leaf, Proof};

fuzz_target!(|data: &[u8]| {
    // Bytes 0..32 (when present) are the root a light client would hold; the rest the proof.
    let (root, bytes) = if data.len() >= 32 {
        (<[u8; 32]>::try_from(&data[..32]).unwrap(), &data[32..])
    } else {
        ([0; 32], data)
    };
    for input in [data, bytes] {
        let Ok(p) = Proof::decode(input) else {
            continue;
        };
        assert_eq!(p.encoded_len(), input.len());
        let mut out = vec![0u8; p.encoded_len()];
        let n = p.encode(&mut out).expect("a decoded proof encodes");
        assert_eq!(&out[..n], input);
        assert_eq!(Proof::decode(&out[..n]).expect("re-decodes"), p);
        let leaf_hash = stateproof::leaf_hash(&p.leaf);
        let computed = stateproof::root_from_path(&leaf_hash, p.leaf_index, p.siblings);
        // Non-membership of a key just above the leaf (or membership of the leaf's own key with
        // an empty account): whatever verify accepts must hash to the root it was given.
        let mut key = match p.leaf {
            Leaf::Account { key, .. } => key,
            Leaf::Sentinel { .. } => [0; 32],
        };
        key[31] = key[31].wrapping_add(1);
        for r in [&root, &computed] {
            if stateproof::verify(r, &key, None, &p).is_ok() {
                assert_eq!(*r, computed);
            }
            let acct = stateproof::AccountState {
                lamports: 1,
                rent_epoch: 0,
                owner: [0; 32],
                executable: false,
                data: input,
            };
            if let Leaf::Account { key: k, .. } = p.leaf {
                if stateproof::verify(r, &k, Some(&acct), &p).is_ok() {
                    assert_eq!(*r, computed);
                }
            }
        }
    }
});
