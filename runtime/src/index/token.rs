//! The SPL Token / Token-2022 layouts the secondary indexes and the token RPC methods read:
//! offsets and validity rules as Agave's account-decoder and `GenericTokenAccount` apply
//! them, written here so the runtime needs no token crate.

use solana_pubkey::Pubkey;

pub const TOKEN_PROGRAM: Pubkey =
    Pubkey::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
pub const TOKEN_2022_PROGRAM: Pubkey =
    Pubkey::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");
/// SPL Token's wrapped-SOL mint: its supply is not tracked, Agave answers it from constants.
pub const NATIVE_MINT: Pubkey =
    Pubkey::from_str_const("So11111111111111111111111111111111111111112");
pub const NATIVE_MINT_DECIMALS: u8 = 9;

/// A token account's base layout (both programs): mint, owner, amount, delegate
/// (`COption`: 4-byte tag, key), state.
pub const ACCOUNT_LEN: usize = 165;
pub const MINT_OFFSET: usize = 0;
pub const OWNER_OFFSET: usize = 32;
pub const AMOUNT_OFFSET: usize = 64;
pub const DELEGATE_TAG_OFFSET: usize = 72;
pub const DELEGATE_OFFSET: usize = 76;
const STATE_OFFSET: usize = 108;
/// A mint's base layout: supply at 36, decimals at 44, is_initialized at 45.
pub const MINT_LEN: usize = 82;
const MULTISIG_LEN: usize = 355;
/// Token-2022 accounts longer than the base carry an AccountType byte right after it.
pub const ACCOUNT_TYPE_OFFSET: usize = ACCOUNT_LEN;
const ACCOUNT_TYPE_MINT: u8 = 1;
pub const ACCOUNT_TYPE_ACCOUNT: u8 = 2;

pub fn is_token_program(p: &Pubkey) -> bool {
    *p == TOKEN_PROGRAM || *p == TOKEN_2022_PROGRAM
}

/// Agave's `GenericTokenAccount::valid_account_data` (the `tokenAccountState` filter): an
/// initialized base-size account, or a longer one (not a multisig) typed Account.
pub fn valid_account_data(d: &[u8]) -> bool {
    (d.len() == ACCOUNT_LEN && d[STATE_OFFSET] != 0)
        || (d.len() > ACCOUNT_LEN
            && d.len() != MULTISIG_LEN
            && d[ACCOUNT_TYPE_OFFSET] == ACCOUNT_TYPE_ACCOUNT)
}

fn key_at(d: &[u8], at: usize) -> Pubkey {
    Pubkey::new_from_array(d[at..at + 32].try_into().expect("32 bytes"))
}

/// A token account's fields the indexes and methods use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenAccount {
    pub mint: Pubkey,
    pub owner: Pubkey,
    pub amount: u64,
    pub delegate: Option<Pubkey>,
}

/// The token account in `data` if `program` is a token program and the data is a valid
/// token account for it.
pub fn token_account(program: &Pubkey, d: &[u8]) -> Option<TokenAccount> {
    if !is_token_program(program) || !valid_account_data(d) {
        return None;
    }
    Some(TokenAccount {
        mint: key_at(d, MINT_OFFSET),
        owner: key_at(d, OWNER_OFFSET),
        amount: u64::from_le_bytes(d[AMOUNT_OFFSET..AMOUNT_OFFSET + 8].try_into().ok()?),
        delegate: (d[DELEGATE_TAG_OFFSET..DELEGATE_OFFSET] == [1, 0, 0, 0])
            .then(|| key_at(d, DELEGATE_OFFSET)),
    })
}

/// An initialized mint's supply and decimals: the base size (both programs) or, for
/// Token-2022, a longer account typed Mint.
pub fn mint(program: &Pubkey, d: &[u8]) -> Option<(u64, u8)> {
    if !is_token_program(program) {
        return None;
    }
    let sized = d.len() == MINT_LEN
        || (*program == TOKEN_2022_PROGRAM
            && d.len() > ACCOUNT_LEN
            && d.len() != MULTISIG_LEN
            && d[ACCOUNT_TYPE_OFFSET] == ACCOUNT_TYPE_MINT);
    if !sized || d[45] != 1 {
        return None;
    }
    Some((u64::from_le_bytes(d[36..44].try_into().ok()?), d[44]))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A token account's bytes: `extra` > 0 makes a Token-2022 account with extensions.
    pub fn account_data(mint: &Pubkey, owner: &Pubkey, amount: u64, extra: usize) -> Vec<u8> {
        let mut d = vec![0u8; ACCOUNT_LEN + extra];
        d[..32].copy_from_slice(mint.as_ref());
        d[32..64].copy_from_slice(owner.as_ref());
        d[64..72].copy_from_slice(&amount.to_le_bytes());
        d[STATE_OFFSET] = 1;
        if extra > 0 {
            d[ACCOUNT_TYPE_OFFSET] = ACCOUNT_TYPE_ACCOUNT;
        }
        d
    }

    #[test]
    fn layouts_as_agave_reads_them() {
        let (m, o) = (Pubkey::new_unique(), Pubkey::new_unique());
        let t = token_account(&TOKEN_PROGRAM, &account_data(&m, &o, 7, 0)).unwrap();
        assert_eq!((t.mint, t.owner, t.amount, t.delegate), (m, o, 7, None));
        let mut d = account_data(&m, &o, 7, 20);
        assert!(token_account(&TOKEN_2022_PROGRAM, &d).is_some());
        d[ACCOUNT_TYPE_OFFSET] = ACCOUNT_TYPE_MINT;
        assert!(
            token_account(&TOKEN_2022_PROGRAM, &d).is_none(),
            "typed Mint"
        );
        let mut d = account_data(&m, &o, 7, 0);
        d[STATE_OFFSET] = 0;
        assert!(token_account(&TOKEN_PROGRAM, &d).is_none(), "uninitialized");
        assert!(token_account(&TOKEN_PROGRAM, &[0; MULTISIG_LEN]).is_none());
        let d = account_data(&m, &o, 7, 0);
        assert!(
            token_account(&Pubkey::new_unique(), &d).is_none(),
            "other program"
        );
        let mut d = account_data(&m, &o, 7, 0);
        d[72] = 1;
        d[76..108].copy_from_slice(&[9; 32]);
        assert_eq!(
            token_account(&TOKEN_PROGRAM, &d).unwrap().delegate,
            Some(Pubkey::new_from_array([9; 32]))
        );
        let mut mint_data = vec![0u8; MINT_LEN];
        mint_data[36..44].copy_from_slice(&1000u64.to_le_bytes());
        mint_data[44] = 6;
        mint_data[45] = 1;
        assert_eq!(mint(&TOKEN_PROGRAM, &mint_data), Some((1000, 6)));
        let mut ext = mint_data.clone();
        ext.resize(ACCOUNT_LEN + 10, 0);
        ext[ACCOUNT_TYPE_OFFSET] = ACCOUNT_TYPE_MINT;
        assert_eq!(mint(&TOKEN_2022_PROGRAM, &ext), Some((1000, 6)));
        assert_eq!(
            mint(&TOKEN_PROGRAM, &ext),
            None,
            "extensions are Token-2022's"
        );
    }
}
