//! A new chain's first slot, or the state recovered from storage at restart.

use crate::accounts::AccountsDb;
use crate::chain::{ChainState, SlotHeader, SlotRecord, StatusRetention};
use crate::svm::SvmEnv;
use sha2::{Digest, Sha256};
use solana_account::AccountSharedData;
use solana_clock::Slot;
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct GenesisConfig {
    pub faucet: Option<(Pubkey, u64)>,
    pub fee_collector: Pubkey,
    /// More system accounts funded at genesis (pubkey, lamports): benches, test networks.
    pub accounts: Vec<(Pubkey, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error(transparent)]
    Store(#[from] storage::StoreError),
    #[error(
        "slot metadata of slot {0} does not decode: the data directory is not from this version"
    )]
    BadMeta(Slot),
}

/// Write slot 0 if the store is empty; otherwise rebuild chain state from the store. Returns
/// the chain state and the recent (slot, blockhash) pairs ending with the last durable slot.
pub fn bootstrap(
    env: &SvmEnv,
    db: &AccountsDb,
    config: &GenesisConfig,
    retention: StatusRetention,
) -> Result<(ChainState, VecDeque<(Slot, Hash)>), GenesisError> {
    let recovered = db.recovered();
    if recovered.last_slot.is_none() {
        let mut h = Sha256::new();
        h.update(b"gigacompute genesis");
        h.update(config.fee_collector.as_ref());
        h.update(super::bank::unix_now().to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        let genesis_hash = Hash::new_from_array(h.finalize().into());
        let mut accounts = env.genesis_program_accounts();
        accounts.extend(env.sysvar_accounts(0, super::bank::unix_now(), &[]));
        if let Some((faucet, lamports)) = config.faucet {
            accounts.push((
                faucet,
                AccountSharedData::new(lamports, 0, &solana_sdk_ids::system_program::ID),
            ));
        }
        for (key, lamports) in &config.accounts {
            accounts.push((
                *key,
                AccountSharedData::new(*lamports, 0, &solana_sdk_ids::system_program::ID),
            ));
        }
        accounts.push((
            config.fee_collector,
            AccountSharedData::new(
                env.rent.minimum_balance(0),
                0,
                &solana_sdk_ids::system_program::ID,
            ),
        ));
        let header = SlotHeader {
            slot: 0,
            parent_blockhash: Hash::default(),
            blockhash: genesis_hash,
            transaction_count: 0,
            unix_timestamp: super::bank::unix_now(),
        };
        let record = SlotRecord {
            header: header.clone(),
            genesis_hash,
            statuses: Vec::new(),
        };
        db.commit_slot(0, &accounts, &record.encode())?;
        tracing::info!(%genesis_hash, "genesis written");
        let chain = ChainState::new(genesis_hash, retention);
        chain.push_slot(header, Vec::new(), None);
        chain.set_durable(0);
        return Ok((chain, VecDeque::from([(0, genesis_hash)])));
    }
    let mut records = Vec::with_capacity(recovered.slot_metas.len());
    for (slot, bytes) in &recovered.slot_metas {
        records.push(SlotRecord::decode(bytes).ok_or(GenesisError::BadMeta(*slot))?);
    }
    let last = records.last().ok_or(GenesisError::BadMeta(0))?;
    let chain = ChainState::new(last.genesis_hash, retention);
    let mut recent = VecDeque::new();
    for r in records {
        recent.push_back((r.header.slot, r.header.blockhash));
        chain.push_slot(r.header, r.statuses, None);
    }
    let (last_slot, _) = *recent.back().expect("non-empty");
    chain.set_durable(last_slot);
    tracing::info!(
        slot = last_slot,
        accounts = db.durable_account_count(),
        "state recovered"
    );
    Ok((chain, recent))
}
