//! The JSON form of account proofs (rpc/src/proof_json.rs): `to_json`, what
//! `getAccountWithProof` answers, and `verify`, what `gigacompute proof verify` runs on a
//! document from outside. Never panics.
//!
//! Byte 0 picks the mode. Even: a proof is built from the input (key, slot, account or none,
//! leaf, index, up to 33 siblings, root either the one its path hashes to or arbitrary) and
//! written with `to_json`; then, differentially, `proof_json::verify` of that JSON (as a bare
//! value, inside a JSON-RPC response, and after a trip through text) accepts exactly when
//! `stateproof::verify` accepts the proof itself, and reports the key, slot and account it
//! was given. Odd: bytes 1..33 are a root and the rest a document (JSON text, as read from a
//! file); `verify` against that root, and against the document's own `stateRoot`, must not
//! panic, and what it accepts it accepts again after a trip through text.
#![no_main]
use gigacompute_fuzz::proof_json;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use solana_account::{AccountSharedData, ReadableAccount, WritableAccount};
use solana_pubkey::Pubkey;
use stateproof::{AccountState, Leaf, Proof};
use storage::commitment::AccountProof;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn fixed<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        let n = N.min(self.0.len());
        b[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        b
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.fixed())
    }
}

fn structured(mut input: Input) {
    let flags = input.byte();
    let key = input.fixed::<32>();
    let slot = input.u64();
    let account = (flags & 1 == 1).then(|| {
        let lamports = input.u64();
        let rent_epoch = input.u64();
        let owner = Pubkey::new_from_array(input.fixed());
        let executable = input.byte() & 1 == 1;
        let n = usize::from(input.byte());
        let data = input.take(n).to_vec();
        let mut a = AccountSharedData::new(lamports, 0, &owner);
        a.set_data_from_slice(&data);
        a.set_executable(executable);
        a.set_rent_epoch(rent_epoch);
        a
    });
    let state = account.as_ref().map(|a| AccountState {
        lamports: a.lamports(),
        rent_epoch: a.rent_epoch(),
        owner: a.owner().to_bytes(),
        executable: a.executable(),
        data: a.data(),
    });
    let next = (flags & 2 == 2).then(|| input.fixed::<32>());
    let leaf = if flags & 4 == 0 {
        Leaf::Sentinel { next }
    } else {
        // The leaf's key: the key itself (a membership proof) or another; its hash: the
        // account's (when there is one) or arbitrary.
        let leaf_key = if flags & 8 == 0 { key } else { input.fixed() };
        let account_hash = match (&state, flags & 16) {
            (Some(s), 0) => stateproof::account_hash(s),
            _ => input.fixed(),
        };
        Leaf::Account {
            key: leaf_key,
            account_hash,
            next,
        }
    };
    let depth = usize::from(input.byte() % 34);
    let mut leaf_index = u32::from_le_bytes(input.fixed());
    if flags & 32 == 0 && depth < 32 {
        // Mostly in range for the depth.
        leaf_index = leaf_index.checked_shr(32 - depth as u32).unwrap_or(0);
    }
    let siblings: Vec<[u8; 32]> = (0..depth).map(|_| input.fixed()).collect();
    let computed = stateproof::root_from_path(&stateproof::leaf_hash(&leaf), leaf_index, &siblings);
    let root = if flags & 64 == 0 {
        computed
    } else {
        input.fixed()
    };
    let p = AccountProof {
        slot,
        root,
        account: account.clone(),
        leaf_index,
        leaf,
        siblings: siblings.clone(),
    };
    let pubkey = Pubkey::new_from_array(key);
    let proof = Proof {
        leaf_index,
        leaf,
        siblings: &siblings,
    };
    let direct = stateproof::verify(&root, &key, state.as_ref(), &proof);
    let doc = proof_json::to_json(&pubkey, &p);
    assert_eq!(
        proof_json::parse_hash(doc["stateRoot"].as_str().expect("stateRoot")).ok(),
        Some(root)
    );
    let wrapped =
        json!({"jsonrpc": "2.0", "id": 1, "result": {"context": {"slot": slot}, "value": doc}});
    let text: Value = serde_json::from_str(&doc.to_string()).expect("re-parses");
    for d in [&doc, &wrapped, &text] {
        let via = proof_json::verify(&root, d);
        assert_eq!(
            via.is_ok(),
            direct.is_ok(),
            "{:?} vs {:?}",
            via.as_ref().err(),
            direct
        );
        if let Ok(v) = via {
            assert_eq!(v.pubkey, pubkey);
            assert_eq!(v.slot, slot);
            assert_eq!(
                v.account,
                account
                    .as_ref()
                    .map(|a| (a.lamports(), *a.owner(), a.data().len()))
            );
        }
    }
    if root != computed {
        assert!(direct.is_err());
    }
}

fn raw(mut input: Input) {
    let root = input.fixed::<32>();
    let Ok(doc) = serde_json::from_slice::<Value>(input.0) else {
        if let Ok(s) = std::str::from_utf8(input.0) {
            let _ = proof_json::parse_hash(s);
        }
        return;
    };
    let own = ["stateRoot", "root"]
        .iter()
        .find_map(|k| {
            doc.pointer(&format!("/result/value/{k}"))
                .or_else(|| doc.get(k))
        })
        .and_then(Value::as_str)
        .and_then(|s| proof_json::parse_hash(s).ok());
    for r in std::iter::once(root).chain(own) {
        if let Ok(v) = proof_json::verify(&r, &doc) {
            let again: Value = serde_json::from_str(&doc.to_string()).expect("re-parses");
            let w = proof_json::verify(&r, &again).expect("accepted again");
            assert_eq!((w.pubkey, w.slot, w.account), (v.pubkey, v.slot, v.account));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    if input.byte() & 1 == 0 {
        structured(input)
    } else {
        raw(input)
    }
});
