//! SPL Token and Memo instructions for the benches, encoded by hand (the appliance ships the
//! programs, not their client crates): InitializeMint2, InitializeAccount3, MintTo, Transfer.

use solana_instruction::{AccountMeta, Instruction};
use solana_pubkey::Pubkey;

pub const TOKEN: Pubkey = Pubkey::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
pub const MEMO: Pubkey = Pubkey::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
pub const MINT_LEN: u64 = 82;
pub const ACCOUNT_LEN: u64 = 165;

pub fn rent_exempt(len: u64) -> u64 {
    solana_rent::Rent::default().minimum_balance(len as usize)
}

/// System create_account of a token-program-owned account of `len` bytes.
pub fn create(payer: &Pubkey, new: &Pubkey, len: u64) -> Instruction {
    solana_system_interface::instruction::create_account(payer, new, rent_exempt(len), len, &TOKEN)
}

pub fn initialize_mint2(mint: &Pubkey, authority: &Pubkey, decimals: u8) -> Instruction {
    let mut data = vec![20, decimals];
    data.extend_from_slice(authority.as_ref());
    data.push(0); // no freeze authority
    Instruction::new_with_bytes(TOKEN, &data, vec![AccountMeta::new(*mint, false)])
}

pub fn initialize_account3(account: &Pubkey, mint: &Pubkey, owner: &Pubkey) -> Instruction {
    let mut data = vec![18];
    data.extend_from_slice(owner.as_ref());
    Instruction::new_with_bytes(
        TOKEN,
        &data,
        vec![
            AccountMeta::new(*account, false),
            AccountMeta::new_readonly(*mint, false),
        ],
    )
}

fn amount_ix(tag: u8, amount: u64, accounts: Vec<AccountMeta>) -> Instruction {
    let mut data = vec![tag];
    data.extend_from_slice(&amount.to_le_bytes());
    Instruction::new_with_bytes(TOKEN, &data, accounts)
}

pub fn mint_to(mint: &Pubkey, to: &Pubkey, authority: &Pubkey, amount: u64) -> Instruction {
    amount_ix(
        7,
        amount,
        vec![
            AccountMeta::new(*mint, false),
            AccountMeta::new(*to, false),
            AccountMeta::new_readonly(*authority, true),
        ],
    )
}

pub fn transfer(from: &Pubkey, to: &Pubkey, owner: &Pubkey, amount: u64) -> Instruction {
    amount_ix(
        3,
        amount,
        vec![
            AccountMeta::new(*from, false),
            AccountMeta::new(*to, false),
            AccountMeta::new_readonly(*owner, true),
        ],
    )
}

pub fn memo(text: &str) -> Instruction {
    Instruction::new_with_bytes(MEMO, text.as_bytes(), Vec::new())
}

/// SetComputeUnitLimit: what a wallet adds after simulating.
pub fn cu_limit(units: u32) -> Instruction {
    let mut data = vec![2];
    data.extend_from_slice(&units.to_le_bytes());
    Instruction::new_with_bytes(solana_sdk_ids::compute_budget::ID, &data, Vec::new())
}
