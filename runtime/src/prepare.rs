//! From a verified packet to a transaction the SVM can run: compute budget, address-table
//! lookups resolved against account state, Agave's sanitization (reserved keys demoted to
//! read-only, duplicate loaded keys rejected) and the account lock list.

use crate::accounts::AccountsDb;
use crate::compute_budget::{self, TxBudget};
use crate::svm::SvmEnv;
use dataplane::{TxDescriptor, VerifiedTx};
use solana_account::ReadableAccount;
use solana_address_lookup_table_interface::state::AddressLookupTable;
use solana_clock::Slot;
use solana_message::{SimpleAddressLoader, v0::LoadedAddresses};
use solana_pubkey::Pubkey;
use solana_slot_hashes::SlotHashes;
use solana_transaction::sanitized::{MessageHash, SanitizedTransaction};
use solana_transaction_error::TransactionError;

/// Why a verified transaction was not queued. Each has a drop counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    BlockhashNotFound,
    AlreadyProcessed,
    ComputeBudget(TransactionError),
    Lookup(TransactionError),
    Sanitize(TransactionError),
}

impl Rejection {
    pub fn as_error(&self) -> TransactionError {
        match self {
            Rejection::BlockhashNotFound => TransactionError::BlockhashNotFound,
            Rejection::AlreadyProcessed => TransactionError::AlreadyProcessed,
            Rejection::ComputeBudget(e) | Rejection::Lookup(e) | Rejection::Sanitize(e) => {
                e.clone()
            }
        }
    }
}

pub struct Prepared {
    pub sanitized: SanitizedTransaction,
    pub budget: TxBudget,
    pub locks: Vec<(Pubkey, bool)>,
}

/// Resolve v0 lookups: each table must be an active lookup table owned by the ALT program.
pub fn resolve_lookups(
    desc: &TxDescriptor,
    buf: &[u8],
    db: &AccountsDb,
    slot: Slot,
    slot_hashes: &SlotHashes,
) -> Result<LoadedAddresses, TransactionError> {
    let mut loaded = LoadedAddresses::default();
    for l in desc.lookups(buf) {
        let key = Pubkey::new_from_array(*l.table);
        // A read error rejects the transaction (the client may resend); never "not found".
        let (account, _) = db
            .get(&key)
            .map_err(|_| TransactionError::ClusterMaintenance)?
            .ok_or(TransactionError::AddressLookupTableNotFound)?;
        if account.owner() != &solana_sdk_ids::address_lookup_table::ID {
            return Err(TransactionError::InvalidAddressLookupTableOwner);
        }
        let table = AddressLookupTable::deserialize(account.data())
            .map_err(|_| TransactionError::InvalidAddressLookupTableData)?;
        let map = |e| {
            match e {
            solana_address_lookup_table_interface::error::AddressLookupError::LookupTableAccountNotFound => {
                TransactionError::AddressLookupTableNotFound
            }
            _ => TransactionError::InvalidAddressLookupTableIndex,
        }
        };
        loaded.writable.extend(
            table
                .lookup(slot, l.writable_indexes, slot_hashes)
                .map_err(map)?,
        );
        loaded.readonly.extend(
            table
                .lookup(slot, l.readonly_indexes, slot_hashes)
                .map_err(map)?,
        );
    }
    Ok(loaded)
}

/// Prepare a verified transaction: `desc` and `buf` are its parsed wire form, `verified` its
/// one deserialization (made by the verify tile, or by the RPC for a simulation).
pub fn prepare(
    env: &SvmEnv,
    db: &AccountsDb,
    desc: &TxDescriptor,
    buf: &[u8],
    verified: VerifiedTx,
    slot: Slot,
    slot_hashes: &SlotHashes,
) -> Result<Prepared, Rejection> {
    let budget = compute_budget::parse(desc, buf).map_err(Rejection::ComputeBudget)?;
    // Every v0 message goes through the loader, even with no lookups (a disabled loader
    // rejects v0 as an unsupported version).
    let loader = if desc.version == dataplane::parse::MessageVersion::V0 {
        SimpleAddressLoader::Enabled(
            resolve_lookups(desc, buf, db, slot, slot_hashes).map_err(Rejection::Lookup)?,
        )
    } else {
        SimpleAddressLoader::Disabled
    };
    let sanitized = SanitizedTransaction::try_create(
        verified.tx,
        MessageHash::Precomputed(verified.message_hash),
        Some(false),
        loader,
        &env.reserved_keys,
    )
    .map_err(Rejection::Sanitize)?;
    let msg = sanitized.message();
    if msg.has_duplicates() {
        return Err(Rejection::Sanitize(TransactionError::AccountLoadedTwice));
    }
    let locks = msg
        .account_keys()
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, msg.is_writable(i)))
        .collect();
    Ok(Prepared {
        sanitized,
        budget,
        locks,
    })
}
