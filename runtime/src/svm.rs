//! Agave's SVM as the execution engine: processor construction, builtins, the program runtime
//! environment, sysvars, and the genesis state (builtins, SPL programs, faucet, fee collector).

use crate::accounts::{AccountsDb, SvmCallback};
use crate::compute_budget::{LAMPORTS_PER_SIGNATURE, TxBudget};
use solana_account::{Account, AccountSharedData};
use solana_clock::{Clock, Slot};
use solana_epoch_schedule::EpochSchedule;
use solana_fee_structure::FeeDetails;
use solana_hash::Hash;
use solana_program_runtime::execution_budget::SVMTransactionExecutionBudget;
use solana_program_runtime::loaded_programs::{
    BlockRelation, ForkGraph, ProgramRuntimeEnvironment, ProgramRuntimeEnvironments,
};
use solana_program_runtime::program_cache_entry::ProgramCacheEntry;
use solana_pubkey::Pubkey;
use solana_rent::Rent;
use solana_svm::account_loader::{CheckedTransactionDetails, TransactionCheckResult};
use solana_svm::transaction_processor::{
    ExecutionRecordingConfig, TransactionBatchProcessor, TransactionProcessingConfig,
    TransactionProcessingEnvironment,
};
use solana_svm_feature_set::SVMFeatureSet;
use std::sync::{Arc, RwLock};

/// Slots per epoch (Solana's default, no warm-up).
pub const SLOTS_PER_EPOCH: u64 = 432_000;
/// SlotHashes keeps this many entries (Solana's `MAX_ENTRIES`).
const SLOT_HASHES_MAX: usize = 512;
/// Log bytes kept per transaction (Agave's RPC default).
const LOG_MESSAGES_BYTES_LIMIT: usize = 10 * 1000;

/// One chain, no forks: a lower slot is always an ancestor.
pub struct LinearForkGraph;

impl ForkGraph for LinearForkGraph {
    fn relationship(&self, a: Slot, b: Slot) -> BlockRelation {
        match a.cmp(&b) {
            std::cmp::Ordering::Less => BlockRelation::Ancestor,
            std::cmp::Ordering::Equal => BlockRelation::Equal,
            std::cmp::Ordering::Greater => BlockRelation::Descendant,
        }
    }
}

pub type Processor = TransactionBatchProcessor<LinearForkGraph>;

/// A program shipped with the appliance and written at genesis.
pub struct GenesisProgram {
    pub name: &'static str,
    pub id: Pubkey,
    pub elf: &'static [u8],
}

/// Compiled programs from the crates.io package litesvm 0.16.0 (`src/programs/elf/`), checked
/// against `programs/SHA256SUMS` by a test.
pub fn genesis_programs() -> [GenesisProgram; 6] {
    [
        GenesisProgram {
            name: "spl_token-3.5.0",
            id: Pubkey::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"),
            elf: include_bytes!("../programs/spl_token-3.5.0.so"),
        },
        GenesisProgram {
            name: "spl_token_2022-11.0.0",
            id: Pubkey::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"),
            elf: include_bytes!("../programs/spl_token_2022-11.0.0.so"),
        },
        GenesisProgram {
            name: "spl_associated_token_account-1.1.1",
            id: Pubkey::from_str_const("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"),
            elf: include_bytes!("../programs/spl_associated_token_account-1.1.1.so"),
        },
        GenesisProgram {
            name: "spl_memo-1.0.0",
            id: Pubkey::from_str_const("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"),
            elf: include_bytes!("../programs/spl_memo-1.0.0.so"),
        },
        GenesisProgram {
            name: "spl_memo-4.0.0",
            id: Pubkey::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
            elf: include_bytes!("../programs/spl_memo-4.0.0.so"),
        },
        GenesisProgram {
            name: "address_lookup_table",
            id: solana_sdk_ids::address_lookup_table::ID,
            elf: include_bytes!("../programs/address_lookup_table.so"),
        },
    ]
}

/// Accounts every cluster node holds and none owns: Agave's reserved keys (sysvars, builtin
/// programs, loaders) and the genesis programs. Scale-out never routes by them.
pub fn global_accounts() -> Vec<Pubkey> {
    let mut keys: Vec<Pubkey> =
        agave_reserved_account_keys::ReservedAccountKeys::new_all_activated()
            .active
            .into_iter()
            .collect();
    keys.extend(genesis_programs().iter().map(|p| p.id));
    keys.push(solana_sdk_ids::native_loader::ID);
    keys
}

type Registerer = solana_program_runtime::invoke_context::BuiltinFunctionRegisterer;
use solana_program_runtime::solana_sbpf::program::BuiltinFunctionDefinition;

fn builtins() -> [(&'static str, Pubkey, Registerer); 5] {
    [
        (
            "system_program",
            solana_sdk_ids::system_program::ID,
            solana_system_program::system_processor::Entrypoint::register,
        ),
        (
            "compute_budget_program",
            solana_sdk_ids::compute_budget::ID,
            solana_compute_budget_program::Entrypoint::register,
        ),
        (
            "solana_bpf_loader_program",
            solana_sdk_ids::bpf_loader::ID,
            solana_bpf_loader_program::Entrypoint::register,
        ),
        (
            "solana_bpf_loader_deprecated_program",
            solana_sdk_ids::bpf_loader_deprecated::ID,
            solana_bpf_loader_program::Entrypoint::register,
        ),
        (
            "solana_bpf_loader_upgradeable_program",
            solana_sdk_ids::bpf_loader_upgradeable::ID,
            solana_bpf_loader_program::Entrypoint::register,
        ),
    ]
}

/// Shared, immutable execution setup; each worker builds its own processor from it.
pub struct SvmEnv {
    pub feature_set: SVMFeatureSet,
    runtime_environment: ProgramRuntimeEnvironment,
    fork_graph: Arc<RwLock<LinearForkGraph>>,
    pub rent: Rent,
    pub reserved_keys: std::collections::HashSet<Pubkey>,
}

impl SvmEnv {
    pub fn new() -> Self {
        let feature_set = SVMFeatureSet::all_enabled();
        let runtime_environment = solana_syscalls::create_program_runtime_environment(
            &feature_set,
            &SVMTransactionExecutionBudget::new_with_defaults(
                feature_set.raise_cpi_nesting_limit_to_8,
            ),
            false,
            false,
        )
        .expect("program runtime environment builds from a fixed feature set");
        Self {
            feature_set,
            runtime_environment,
            fork_graph: Arc::new(RwLock::new(LinearForkGraph)),
            rent: Rent::default(),
            reserved_keys: agave_reserved_account_keys::ReservedAccountKeys::new_all_activated()
                .active,
        }
    }

    pub fn epoch_of(slot: Slot) -> u64 {
        slot / SLOTS_PER_EPOCH
    }

    /// A fresh processor with its own program cache, builtins registered, sysvars loaded.
    pub fn new_processor(&self, slot: Slot, db: &AccountsDb) -> Processor {
        let mut p = Processor::new_uninitialized(slot, Self::epoch_of(slot));
        {
            let mut cache = p.global_program_cache.write().expect("program cache lock");
            cache.set_fork_graph(Arc::downgrade(&self.fork_graph));
            cache.latest_root_slot = slot;
        }
        p.set_program_runtime_environment(self.runtime_environment.clone());
        for (name, id, register) in builtins() {
            p.add_builtin(id, ProgramCacheEntry::new_builtin(0, name.len(), register));
        }
        fill_sysvars(&p, db);
        p
    }

    /// Move a processor to a new slot, keeping its program cache.
    pub fn advance(&self, p: &Processor, slot: Slot, db: &AccountsDb) -> Processor {
        let next = p.new_from(slot, Self::epoch_of(slot));
        fill_sysvars(&next, db);
        next
    }

    pub fn processing_environment(&self, blockhash: Hash) -> TransactionProcessingEnvironment {
        TransactionProcessingEnvironment {
            blockhash,
            blockhash_lamports_per_signature: LAMPORTS_PER_SIGNATURE,
            alpenglow_migration_succeeded: false,
            epoch_total_stake: 0,
            feature_set: self.feature_set,
            program_runtime_environments: ProgramRuntimeEnvironments::new(
                self.runtime_environment.clone(),
                self.runtime_environment.clone(),
            ),
            rent: self.rent.clone(),
        }
    }

    pub fn processing_config(&self) -> TransactionProcessingConfig<'static> {
        TransactionProcessingConfig {
            check_program_deployment_slot: true,
            log_messages_bytes_limit: Some(LOG_MESSAGES_BYTES_LIMIT),
            recording_config: ExecutionRecordingConfig {
                // CPIs become the statuses' `innerInstructions` (explorers and token tools read
                // them); the record is bounded by the instruction trace limit.
                enable_cpi_recording: true,
                enable_log_recording: true,
                enable_return_data_recording: true,
                enable_transaction_balance_recording: true,
            },
            ..Default::default()
        }
    }

    /// The host-side checks' result for the SVM: budget limits and the fee to charge.
    pub fn check_result(&self, budget: &TxBudget) -> TransactionCheckResult {
        Ok(CheckedTransactionDetails::new(
            None,
            budget.limits.get_compute_budget_and_limits(
                budget.limits.loaded_accounts_bytes,
                FeeDetails::new(budget.signature_fee, budget.priority_fee),
                self.feature_set.raise_cpi_nesting_limit_to_8,
            ),
        ))
    }

    /// Sysvar accounts for `slot`, written by the bank at the start of each slot.
    pub fn sysvar_accounts(
        &self,
        slot: Slot,
        unix_timestamp: i64,
        recent: &[(Slot, Hash)],
    ) -> Vec<(Pubkey, AccountSharedData)> {
        let epoch = Self::epoch_of(slot);
        let clock = Clock {
            slot,
            epoch_start_timestamp: unix_timestamp,
            epoch,
            leader_schedule_epoch: epoch,
            unix_timestamp,
        };
        let slot_hashes: Vec<(Slot, Hash)> =
            recent.iter().rev().take(SLOT_HASHES_MAX).copied().collect();
        #[allow(deprecated)]
        let recent_blockhashes: Vec<solana_sysvar::recent_blockhashes::Entry> = recent
            .iter()
            .rev()
            .take(solana_sysvar::recent_blockhashes::MAX_ENTRIES)
            .map(|(_, h)| solana_sysvar::recent_blockhashes::Entry::new(h, LAMPORTS_PER_SIGNATURE))
            .collect();
        let sysvar = |data: Vec<u8>| {
            AccountSharedData::from(Account {
                lamports: self.rent.minimum_balance(data.len()).max(1),
                data,
                owner: solana_sdk_ids::sysvar::ID,
                executable: false,
                rent_epoch: 0,
            })
        };
        let ser = |v: &dyn erased::Ser| v.bytes();
        // As in Agave, list sysvars occupy their maximum size (programs read them with
        // `sol_get_sysvar` at fixed offsets); the tail is zero.
        let padded = |mut b: Vec<u8>, size: usize| {
            b.resize(b.len().max(size), 0);
            b
        };
        #[allow(deprecated)]
        let out = vec![
            (solana_sdk_ids::sysvar::clock::ID, sysvar(ser(&clock))),
            (solana_sdk_ids::sysvar::rent::ID, sysvar(ser(&self.rent))),
            (
                solana_sdk_ids::sysvar::epoch_schedule::ID,
                sysvar(ser(&EpochSchedule::without_warmup())),
            ),
            (
                solana_sdk_ids::sysvar::slot_hashes::ID,
                sysvar(padded(ser(&slot_hashes), 8 + SLOT_HASHES_MAX * 40)),
            ),
            (
                solana_sdk_ids::sysvar::recent_blockhashes::ID,
                sysvar(padded(
                    ser(&recent_blockhashes),
                    8 + solana_sysvar::recent_blockhashes::MAX_ENTRIES * 40,
                )),
            ),
        ];
        out
    }

    /// Builtin and program accounts of a new chain.
    pub fn genesis_program_accounts(&self) -> Vec<(Pubkey, AccountSharedData)> {
        let mut out = Vec::new();
        for (name, id, _) in builtins() {
            out.push((
                id,
                AccountSharedData::from(Account {
                    lamports: 1,
                    data: name.as_bytes().to_vec(),
                    owner: solana_sdk_ids::native_loader::ID,
                    executable: true,
                    rent_epoch: 0,
                }),
            ));
        }
        for p in genesis_programs() {
            out.push((
                p.id,
                AccountSharedData::from(Account {
                    lamports: self.rent.minimum_balance(p.elf.len()),
                    data: p.elf.to_vec(),
                    owner: solana_sdk_ids::bpf_loader::ID,
                    executable: true,
                    rent_epoch: 0,
                }),
            ));
        }
        out
    }
}

/// bincode serialization behind one object-safe trait, so sysvars of different types share
/// one code path.
mod erased {
    pub trait Ser {
        fn bytes(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn bytes(&self) -> Vec<u8> {
            bincode::serialize(self).expect("sysvar serializes")
        }
    }
}

/// Loads the sysvars into a new processor. A processor with a sysvar missing because its read
/// failed would execute against wrong state: retry a few times, then stop (panic ends the
/// process; the node reports why) rather than run on.
fn fill_sysvars(p: &Processor, db: &AccountsDb) {
    for attempt in 1..=3 {
        let cb = SvmCallback::new(db);
        p.fill_missing_sysvar_cache_entries(&cb);
        match cb.failed() {
            None => return,
            Some(e) if attempt < 3 => {
                tracing::warn!(error = %e, attempt, "sysvar read failed; retrying")
            }
            Some(e) => panic!("sysvar accounts unreadable: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::{LogStore, LogStoreConfig};

    /// The sysvars the bank writes are the ones the SVM's sysvar cache (and so programs) see.
    #[test]
    fn sysvars_reach_the_sysvar_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LogStore::open(dir.path(), LogStoreConfig::default()).unwrap());
        let db = AccountsDb::new(store, telemetry::SharedRegion::private());
        let env = SvmEnv::new();
        let recent: Vec<(Slot, Hash)> = (0..600)
            .map(|s| (s, Hash::new_from_array([s as u8; 32])))
            .collect();
        for (k, a) in env.sysvar_accounts(600, 1_700_000_000, &recent) {
            db.write(k, a, 600);
        }
        let p = env.new_processor(600, &db);
        let cache = p.sysvar_cache();
        // A young chain: fewer entries than SlotHashes holds.
        let young: Vec<(Slot, Hash)> = (0..30)
            .map(|s| (s, Hash::new_from_array([s as u8; 32])))
            .collect();
        for (k, a) in env.sysvar_accounts(30, 1_700_000_000, &young) {
            db.write(k, a, 30);
        }
        let p30 = env.new_processor(30, &db);
        assert_eq!(
            p30.sysvar_cache()
                .get_slot_hashes()
                .expect("young slot hashes")
                .len(),
            30
        );
        let raw = p30
            .sysvar_cache()
            .sysvar_id_to_buffer(&solana_sdk_ids::sysvar::slot_hashes::ID)
            .clone();
        assert_eq!(raw.map(|b| b.len()), Some(8 + SLOT_HASHES_MAX * 40));
        assert_eq!(cache.get_clock().unwrap().slot, 600);
        assert_eq!(cache.get_clock().unwrap().unix_timestamp, 1_700_000_000);
        let hashes = cache.get_slot_hashes().expect("slot hashes in the cache");
        assert_eq!(hashes.len(), SLOT_HASHES_MAX);
        assert_eq!(hashes.first().unwrap().0, 599);
        let raw = cache.sysvar_id_to_buffer(&solana_sdk_ids::sysvar::slot_hashes::ID);
        assert_eq!(
            raw.as_ref().map(|b| b.len()),
            Some(8 + SLOT_HASHES_MAX * 40)
        );
        assert!(cache.get_rent().is_ok());
        assert!(cache.get_epoch_schedule().is_ok());
    }
}
