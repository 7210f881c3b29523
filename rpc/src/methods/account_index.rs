//! getProgramAccounts, getTokenAccountsByOwner / ByDelegate, getTokenSupply and
//! getTokenLargestAccounts, answered from the secondary account indexes
//! (`runtime::index`) as Agave answers them from its `--account-index` ones.
//!
//! The index gives candidates, never the answer: each is read again at the request's
//! commitment and checked (program, token layout, owner / delegate / mint, filters) before
//! it is returned, so a stale candidate costs a read and a missing one cannot happen (the
//! index keeps every key readable at any commitment). A key the index cannot answer for
//! (refused at `rpc.account_index_max_keys`) is refused with Agave's -32010, never answered
//! short.

use super::{Rpc, json_len, response_too_large};
use crate::encode;
use crate::filters::{self, Filter};
use crate::params::{
    AccountEncoding, ProgramAccounts, SlotConfig, TokenAccountsFilter, TokenHolder,
};
use crate::server::{RpcError, RpcResult};
use runtime::chain::Commitment;
use runtime::index::token::{self, TokenAccount};
use runtime::index::{IndexError, IndexKind};
use serde_json::{Value, json};
use solana_account::{AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Agave's `NUM_LARGEST_ACCOUNTS` for getTokenLargestAccounts.
pub const NUM_LARGEST_ACCOUNTS: usize = 20;

/// Agave's -32010 for a key its secondary index does not cover, with why in `data`.
fn excluded(key: &Pubkey, why: &IndexError) -> RpcError {
    RpcError::new(
        -32010,
        format!(
            "{key} excluded from account secondary indexes; this RPC method unavailable for key"
        ),
    )
    .with_data(json!({ "reason": why.to_string() }))
}

/// Agave's routing of a token program's query with an owner or mint filter (its
/// `get_spl_token_owner_filter` / `get_spl_token_mint_filter`): only when the filters also
/// pin the account type (dataSize 165, Token-2022's AccountType byte, or tokenAccountState).
fn token_index_for(program: &Pubkey, filters: &[Filter]) -> Option<(IndexKind, Pubkey)> {
    if !token::is_token_program(program) {
        return None;
    }
    let mut typed = false;
    let (mut owner, mut mint) = (None, None);
    for f in filters {
        match f {
            Filter::DataSize(n) => typed |= *n == token::ACCOUNT_LEN as u64,
            Filter::TokenAccountState => typed = true,
            Filter::Memcmp { offset, bytes } => {
                if *offset == token::ACCOUNT_TYPE_OFFSET
                    && *program == token::TOKEN_2022_PROGRAM
                    && bytes.as_slice() == [token::ACCOUNT_TYPE_ACCOUNT]
                {
                    typed = true;
                }
                let key = <[u8; 32]>::try_from(bytes.as_slice())
                    .ok()
                    .map(Pubkey::new_from_array);
                match *offset {
                    token::OWNER_OFFSET => owner = owner.or(key),
                    token::MINT_OFFSET => mint = mint.or(key),
                    _ => {}
                }
            }
        }
    }
    if !typed {
        return None;
    }
    owner
        .map(|k| (IndexKind::SplTokenOwner, k))
        .or(mint.map(|k| (IndexKind::SplTokenMint, k)))
}

impl Rpc {
    /// Candidates for `key` in index `kind`; a token index that is not kept falls back to
    /// the program-id index of `program` (as Agave falls back to a program scan), the
    /// caller's checks doing the rest.
    fn candidates(
        &self,
        kind: IndexKind,
        key: Pubkey,
        program: &Pubkey,
    ) -> Result<Vec<Pubkey>, RpcError> {
        match self.db.index_candidates(kind, key) {
            Ok(v) => Ok(v),
            Err(IndexError::Disabled(_)) if kind != IndexKind::ProgramId => {
                self.candidates(IndexKind::ProgramId, *program, program)
            }
            Err(e) => Err(excluded(&key, &e)),
        }
    }

    /// Reads `keys` at `c` in pubkey order (or as given), keeps those `keep` accepts, and
    /// encodes them as Agave's `RpcKeyedAccount`s within `rpc.max_response_bytes`.
    fn keyed_accounts(
        &self,
        mut keys: Vec<Pubkey>,
        sort: bool,
        c: Commitment,
        enc: &AccountEncoding,
        keep: impl Fn(&AccountSharedData) -> bool,
    ) -> Result<Vec<Value>, RpcError> {
        crate::params::check_slice_and_encoding(enc)?;
        if sort {
            keys.sort_unstable();
        }
        keys.dedup();
        let (mut out, mut bytes) = (Vec::new(), 0);
        for k in keys {
            let Some(a) = self.account_at(&k, c)? else {
                continue;
            };
            if !keep(&a) {
                continue;
            }
            let v = json!({"pubkey": k.to_string(), "account": encode::account(&k, &a, enc, &|m| self.account_at(m, c))?});
            bytes += json_len(&v);
            if bytes > self.max_response_bytes {
                return Err(response_too_large(self.max_response_bytes));
            }
            out.push(v);
        }
        Ok(out)
    }

    pub(super) fn program_accounts(&self, q: &ProgramAccounts) -> RpcResult {
        let (c, slot) = self.slot_for(&q.at)?;
        let keys = match token_index_for(&q.program, &q.filters) {
            Some((kind, key)) => self.candidates(kind, key, &q.program)?,
            None => self.candidates(IndexKind::ProgramId, q.program, &q.program)?,
        };
        let value = self.keyed_accounts(keys, q.sort_results, c, &q.encoding, |a| {
            a.owner() == &q.program && filters::passes(&q.filters, a.data())
        })?;
        Ok(if q.with_context {
            json!({"context": self.context(slot), "value": value})
        } else {
            Value::Array(value)
        })
    }

    /// The mint's token program and decimals, with Agave's errors
    /// (`get_mint_owner_and_additional_data`; the native mint needs no account).
    fn mint_program(&self, mint: &Pubkey, c: Commitment) -> Result<(Pubkey, u8), RpcError> {
        if *mint == token::NATIVE_MINT {
            return Ok((token::TOKEN_PROGRAM, token::NATIVE_MINT_DECIMALS));
        }
        let a = self
            .account_at(mint, c)?
            .ok_or_else(|| RpcError::invalid_params("Invalid param: could not find mint"))?;
        if !token::is_token_program(a.owner()) {
            return Err(RpcError::invalid_params("Invalid param: not a Token mint"));
        }
        let (_, decimals) = token::mint(a.owner(), a.data()).ok_or_else(|| {
            RpcError::invalid_params("Invalid param: Token mint could not be unpacked")
        })?;
        Ok((*a.owner(), decimals))
    }

    pub(super) fn token_accounts(
        &self,
        holder: TokenHolder,
        key: &Pubkey,
        filter: TokenAccountsFilter,
        at: &SlotConfig,
        enc: &AccountEncoding,
    ) -> RpcResult {
        let (c, slot) = self.slot_for(at)?;
        let (program, mint) = match filter {
            TokenAccountsFilter::Mint(m) => match self.mint_program(&m, c) {
                Ok((p, _)) => (vec![p], Some(m)),
                // In a cluster the mint may live on another node than its holders: this
                // node's share is its holders under either token program.
                Err(_) if self.cluster.is_some() => (
                    vec![token::TOKEN_PROGRAM, token::TOKEN_2022_PROGRAM],
                    Some(m),
                ),
                Err(e) => return Err(e),
            },
            TokenAccountsFilter::ProgramId(p) if token::is_token_program(&p) => (vec![p], None),
            TokenAccountsFilter::ProgramId(_) => {
                return Err(RpcError::invalid_params(
                    "Invalid param: unrecognized Token program id",
                ));
            }
        };
        // Agave: by owner through the owner index; by delegate through the mint index when
        // a mint is given, else the token program's accounts.
        let mut keys = Vec::new();
        for program in &program {
            keys.extend(match (holder, mint) {
                (TokenHolder::Owner, _) => {
                    self.candidates(IndexKind::SplTokenOwner, *key, program)?
                }
                (TokenHolder::Delegate, Some(m)) => {
                    self.candidates(IndexKind::SplTokenMint, m, program)?
                }
                (TokenHolder::Delegate, None) => {
                    self.candidates(IndexKind::ProgramId, *program, program)?
                }
            });
        }
        let holds = |t: &TokenAccount| match holder {
            TokenHolder::Owner => t.owner == *key,
            TokenHolder::Delegate => t.delegate == Some(*key),
        };
        let value = self.keyed_accounts(keys, true, c, enc, |a| {
            program.contains(a.owner())
                && token::token_account(a.owner(), a.data())
                    .is_some_and(|t| holds(&t) && mint.is_none_or(|m| t.mint == m))
        })?;
        Ok(json!({"context": self.context(slot), "value": value}))
    }

    pub(super) fn token_supply(&self, mint: &Pubkey, at: &SlotConfig) -> RpcResult {
        let (c, slot) = self.slot_for(at)?;
        let a = self
            .account_at(mint, c)?
            .ok_or_else(|| RpcError::invalid_params("Invalid param: could not find account"))?;
        if !token::is_token_program(a.owner()) {
            return Err(RpcError::invalid_params("Invalid param: not a Token mint"));
        }
        let (supply, decimals) = token::mint(a.owner(), a.data())
            .ok_or_else(|| RpcError::invalid_params("Invalid param: mint could not be unpacked"))?;
        Ok(
            json!({"context": self.context(slot), "value": encode::ui_token_amount(supply, decimals)}),
        )
    }

    pub(super) fn token_largest_accounts(&self, mint: &Pubkey, at: &SlotConfig) -> RpcResult {
        let (c, slot) = self.slot_for(at)?;
        let (program, decimals) = self.mint_program(mint, c)?;
        let keys = self.candidates(IndexKind::SplTokenMint, *mint, &program)?;
        // The 20 largest, a min-heap of (amount, address) as Agave keeps them.
        let mut top: BinaryHeap<Reverse<(u64, Pubkey)>> = BinaryHeap::new();
        for k in keys {
            let Some(a) = self.account_at(&k, c)? else {
                continue;
            };
            let Some(t) = token::token_account(a.owner(), a.data()) else {
                continue;
            };
            if a.owner() != &program || t.mint != *mint {
                continue;
            }
            top.push(Reverse((t.amount, k)));
            if top.len() > NUM_LARGEST_ACCOUNTS {
                top.pop();
            }
        }
        let value: Vec<Value> = top
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse((amount, address))| {
                let mut v = encode::ui_token_amount(amount, decimals);
                v["address"] = json!(address.to_string());
                v
            })
            .collect();
        Ok(json!({"context": self.context(slot), "value": value}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_queries_route_as_agave() {
        let owner = Pubkey::new_unique();
        let by_owner = Filter::Memcmp {
            offset: token::OWNER_OFFSET,
            bytes: owner.to_bytes().to_vec(),
        };
        let p = token::TOKEN_PROGRAM;
        assert_eq!(
            token_index_for(&p, &[Filter::DataSize(165), by_owner.clone()]),
            Some((IndexKind::SplTokenOwner, owner))
        );
        assert_eq!(
            token_index_for(&p, std::slice::from_ref(&by_owner)),
            None,
            "the account type is not pinned"
        );
        let typed = Filter::Memcmp {
            offset: token::ACCOUNT_TYPE_OFFSET,
            bytes: vec![token::ACCOUNT_TYPE_ACCOUNT],
        };
        assert_eq!(
            token_index_for(&token::TOKEN_2022_PROGRAM, &[typed, by_owner.clone()]),
            Some((IndexKind::SplTokenOwner, owner))
        );
        let by_mint = Filter::Memcmp {
            offset: token::MINT_OFFSET,
            bytes: owner.to_bytes().to_vec(),
        };
        assert_eq!(
            token_index_for(&p, &[Filter::TokenAccountState, by_mint]),
            Some((IndexKind::SplTokenMint, owner))
        );
        assert_eq!(
            token_index_for(&Pubkey::new_unique(), &[Filter::DataSize(165), by_owner]),
            None
        );
    }
}
