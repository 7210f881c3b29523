//! Solana's accounts lattice hash (SIMD-0215) with Agave's own `LtHash`: an account hashes to
//! blake3(lamports | data | executable | owner | pubkey) expanded to 1,024 u16 lanes (zero
//! lamports: the identity); the state's hash is the lane-wise wrapping sum over accounts, so
//! a slot mixes out each changed account's old hash and mixes in its new one.

use super::par::par_chunks;
use solana_account::{AccountSharedData, ReadableAccount};
use solana_lattice_hash::lt_hash::LtHash;
use solana_pubkey::Pubkey;

pub fn account_lt_hash(key: &Pubkey, account: &AccountSharedData) -> LtHash {
    if account.lamports() == 0 {
        return LtHash::identity();
    }
    let mut h = blake3::Hasher::new();
    h.update(&account.lamports().to_le_bytes());
    h.update(account.data());
    h.update(&[u8::from(account.executable())]);
    h.update(account.owner().as_ref());
    h.update(key.as_ref());
    LtHash::with(&h)
}

/// The change to the state's lattice hash when each `(key, new)` replaces `old` (`None`:
/// the key did not exist). Hashed in parallel.
pub fn slot_delta(
    accounts: &[(Pubkey, AccountSharedData)],
    old: &[Option<AccountSharedData>],
) -> LtHash {
    let pairs: Vec<(&(Pubkey, AccountSharedData), &Option<AccountSharedData>)> =
        accounts.iter().zip(old).collect();
    let parts = par_chunks(&pairs, |chunk| {
        let mut d = LtHash::identity();
        for ((key, new), old) in chunk {
            d.mix_in(&account_lt_hash(key, new));
            if let Some(o) = old {
                d.mix_out(&account_lt_hash(key, o));
            }
        }
        d
    });
    let mut total = LtHash::identity();
    for p in &parts {
        total.mix_in(p);
    }
    total
}
