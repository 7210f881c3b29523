//! Compute-budget instructions, parsed and applied by Agave's rules
//! (`solana-compute-budget-instruction`): one of each kind at most, invalid data fails the
//! transaction, the default limit is 3,000 CU per builtin instruction plus 200,000 per other
//! instruction, capped at 1.4M.

use dataplane::TxDescriptor;
use solana_compute_budget::compute_budget_limits::{
    ComputeBudgetLimits, DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT,
    MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT, MAX_COMPUTE_UNIT_LIMIT, MAX_HEAP_FRAME_BYTES,
    MAX_LOADED_ACCOUNTS_DATA_SIZE_BYTES, MIN_HEAP_FRAME_BYTES,
};
use solana_instruction::error::InstructionError;
use solana_pubkey::Pubkey;
use solana_transaction_error::TransactionError;
use std::num::NonZeroU32;

/// Fee per signature, lamports (Solana's default).
pub const LAMPORTS_PER_SIGNATURE: u64 = 5_000;

/// Programs whose instructions get the builtin default allocation.
fn is_builtin(program: &[u8; 32]) -> bool {
    const BUILTINS: [Pubkey; 7] = [
        solana_sdk_ids::system_program::ID,
        solana_sdk_ids::compute_budget::ID,
        solana_sdk_ids::bpf_loader::ID,
        solana_sdk_ids::bpf_loader_deprecated::ID,
        solana_sdk_ids::bpf_loader_upgradeable::ID,
        solana_sdk_ids::loader_v4::ID,
        solana_sdk_ids::vote::ID,
    ];
    BUILTINS.iter().any(|b| b.as_array() == program)
}

/// What a transaction asked for, plus the fees that follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxBudget {
    pub limits: ComputeBudgetLimits,
    pub signature_fee: u64,
    pub priority_fee: u64,
}

impl TxBudget {
    pub fn total_fee(&self) -> u64 {
        self.signature_fee.saturating_add(self.priority_fee)
    }

    /// Sequencing priority: lamports of fee per requested compute unit, scaled by 1e6.
    pub fn priority(&self) -> u64 {
        let fee = u128::from(self.total_fee()) * 1_000_000;
        (fee / (u128::from(self.limits.compute_unit_limit) + 1)).min(u128::from(u64::MAX)) as u64
    }
}

pub fn parse(desc: &TxDescriptor, buf: &[u8]) -> Result<TxBudget, TransactionError> {
    let mut heap: Option<(u8, u32)> = None;
    let mut cu_limit: Option<u32> = None;
    let mut cu_price: Option<u64> = None;
    let mut loaded_bytes: Option<u32> = None;
    let mut builtin_ixs: u32 = 0;
    let mut other_ixs: u32 = 0;
    for (i, ix) in desc.instructions(buf).enumerate() {
        let program = desc.static_key(buf, usize::from(ix.program_id_index));
        if is_builtin(program) {
            builtin_ixs += 1;
        } else {
            other_ixs += 1;
        }
        if program != solana_sdk_ids::compute_budget::ID.as_array() {
            continue;
        }
        let index = i as u8;
        let invalid =
            TransactionError::InstructionError(index, InstructionError::InvalidInstructionData);
        let dup = TransactionError::DuplicateInstruction(index);
        let d = ix.data;
        // Borsh: u8 tag, then the little-endian value; trailing bytes are tolerated as in Agave.
        let u32_at = || {
            d.get(1..5)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
        };
        match d.first() {
            Some(1) => {
                let v = u32_at().ok_or(invalid)?;
                if heap.replace((index, v)).is_some() {
                    return Err(dup);
                }
            }
            Some(2) => {
                let v = u32_at().ok_or(invalid)?;
                if cu_limit.replace(v).is_some() {
                    return Err(dup);
                }
            }
            Some(3) => {
                let v = d
                    .get(1..9)
                    .map(|b| u64::from_le_bytes(b.try_into().expect("8")))
                    .ok_or(invalid)?;
                if cu_price.replace(v).is_some() {
                    return Err(dup);
                }
            }
            Some(4) => {
                let v = u32_at().ok_or(invalid)?;
                if loaded_bytes.replace(v).is_some() {
                    return Err(dup);
                }
            }
            _ => return Err(invalid),
        }
    }
    let updated_heap_bytes = match heap {
        Some((index, bytes)) => {
            if !(MIN_HEAP_FRAME_BYTES..=MAX_HEAP_FRAME_BYTES).contains(&bytes) || bytes % 1024 != 0
            {
                return Err(TransactionError::InstructionError(
                    index,
                    InstructionError::InvalidInstructionData,
                ));
            }
            bytes
        }
        None => MIN_HEAP_FRAME_BYTES,
    };
    let compute_unit_limit = cu_limit
        .unwrap_or_else(|| {
            builtin_ixs
                .saturating_mul(MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT)
                .saturating_add(other_ixs.saturating_mul(DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT))
        })
        .min(MAX_COMPUTE_UNIT_LIMIT);
    let loaded_accounts_bytes = match loaded_bytes {
        Some(b) => {
            NonZeroU32::new(b).ok_or(TransactionError::InvalidLoadedAccountsDataSizeLimit)?
        }
        None => MAX_LOADED_ACCOUNTS_DATA_SIZE_BYTES,
    }
    .min(MAX_LOADED_ACCOUNTS_DATA_SIZE_BYTES);
    let limits = ComputeBudgetLimits {
        updated_heap_bytes,
        compute_unit_limit,
        compute_unit_price: cu_price.unwrap_or(0),
        loaded_accounts_bytes,
    };
    Ok(TxBudget {
        limits,
        signature_fee: u64::from(desc.num_signatures) * LAMPORTS_PER_SIGNATURE,
        priority_fee: limits.get_prioritization_fee(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use solana_compute_budget_interface::ComputeBudgetInstruction;
    use solana_hash::Hash;
    use solana_message::Message;
    use solana_transaction::Transaction;

    fn budget_of(ixs: Vec<solana_instruction::Instruction>) -> Result<TxBudget, TransactionError> {
        // Parsing does not verify signatures: an unsigned transaction has the right shape.
        let mut msg = Message::new(&ixs, Some(&PAYER));
        msg.recent_blockhash = Hash::default();
        let tx = Transaction::new_unsigned(msg);
        let bytes = bincode::serialize(&tx).unwrap();
        let d = dataplane::parse_transaction(&bytes).unwrap();
        parse(&d, &bytes)
    }

    const PAYER: Pubkey = Pubkey::new_from_array([42; 32]);

    fn transfer() -> solana_instruction::Instruction {
        solana_system_interface::instruction::transfer(&PAYER, &Pubkey::new_unique(), 1)
    }

    #[test]
    fn defaults_follow_agave() {
        let b = budget_of(vec![transfer()]).unwrap();
        assert_eq!(b.limits.compute_unit_limit, 3_000);
        assert_eq!(b.signature_fee, 5_000);
        assert_eq!(b.priority_fee, 0);
        let memo =
            solana_instruction::Instruction::new_with_bytes(Pubkey::new_unique(), b"x", vec![]);
        let b = budget_of(vec![transfer(), memo]).unwrap();
        assert_eq!(b.limits.compute_unit_limit, 203_000);
    }

    #[test]
    fn limit_and_price_give_priority_fee() {
        let b = budget_of(vec![
            ComputeBudgetInstruction::set_compute_unit_limit(10_000),
            ComputeBudgetInstruction::set_compute_unit_price(1_500_000),
            transfer(),
        ])
        .unwrap();
        assert_eq!(b.limits.compute_unit_limit, 10_000);
        assert_eq!(b.priority_fee, 15_000);
        assert_eq!(b.total_fee(), 20_000);
        let cheap = budget_of(vec![transfer()]).unwrap();
        assert!(b.priority() > cheap.priority());
    }

    #[test]
    fn duplicates_and_bad_data_rejected() {
        assert_eq!(
            budget_of(vec![
                ComputeBudgetInstruction::set_compute_unit_limit(1),
                ComputeBudgetInstruction::set_compute_unit_limit(2),
            ]),
            Err(TransactionError::DuplicateInstruction(1))
        );
        let bad = solana_instruction::Instruction::new_with_bytes(
            solana_sdk_ids::compute_budget::ID,
            &[9],
            vec![],
        );
        assert_eq!(
            budget_of(vec![bad]),
            Err(TransactionError::InstructionError(
                0,
                InstructionError::InvalidInstructionData
            ))
        );
        assert_eq!(
            budget_of(vec![ComputeBudgetInstruction::request_heap_frame(1000)]),
            Err(TransactionError::InstructionError(
                0,
                InstructionError::InvalidInstructionData
            ))
        );
        assert_eq!(
            budget_of(vec![
                ComputeBudgetInstruction::set_loaded_accounts_data_size_limit(0)
            ]),
            Err(TransactionError::InvalidLoadedAccountsDataSizeLimit)
        );
    }
}
