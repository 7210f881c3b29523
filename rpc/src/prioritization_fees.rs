//! getRecentPrioritizationFees: per recent slot, the lowest compute-unit price (micro-lamports
//! per compute unit) a transaction landed with, raised to the lowest price among those that
//! write-locked each account asked about — Agave's PrioritizationFeeCache semantics.
//!
//! A slot's fees are computed once, from the statuses the chain keeps for it, the first time
//! a request needs them, and kept for the last `MAX_SLOTS` slots only.

use ahash::HashMap;
use parking_lot::Mutex;
use runtime::chain::ChainState;
use solana_pubkey::Pubkey;
use std::collections::VecDeque;
use std::sync::Arc;

/// Agave's window: the last 150 slots.
pub const MAX_SLOTS: u64 = 150;

/// What one slot's transactions paid.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SlotFees {
    /// The lowest compute-unit price of the slot's transactions (`None`: none landed).
    pub min_transaction_fee: Option<u64>,
    /// Per write-locked account, the lowest price among the transactions that locked it.
    pub min_writable_fee: HashMap<Pubkey, u64>,
}

impl SlotFees {
    /// The fee reported for this slot given the accounts asked about.
    pub fn fee_for(&self, accounts: &[Pubkey]) -> u64 {
        accounts
            .iter()
            .filter_map(|k| self.min_writable_fee.get(k).copied())
            .fold(self.min_transaction_fee.unwrap_or(0), u64::max)
    }

    fn add(&mut self, price: u64, writable: impl Iterator<Item = Pubkey>) {
        self.min_transaction_fee = Some(self.min_transaction_fee.map_or(price, |m| m.min(price)));
        for k in writable {
            self.min_writable_fee
                .entry(k)
                .and_modify(|m| *m = (*m).min(price))
                .or_insert(price);
        }
    }
}

/// The fees of the slots requests have asked about, newest last.
#[derive(Default)]
pub struct FeeCache {
    slots: Mutex<VecDeque<(u64, Arc<SlotFees>)>>,
}

impl FeeCache {
    /// `(slot, fee)` for the last [`MAX_SLOTS`] durable slots whose statuses the chain still
    /// keeps, oldest first.
    pub fn recent(&self, chain: &ChainState, accounts: &[Pubkey]) -> Vec<(u64, u64)> {
        let newest = chain.durable_slot();
        let oldest = newest.saturating_sub(MAX_SLOTS - 1).max(1);
        let mut out = Vec::with_capacity(MAX_SLOTS as usize);
        for slot in oldest..=newest {
            if let Some(fees) = self.slot(chain, slot) {
                out.push((slot, fees.fee_for(accounts)));
            }
        }
        out
    }

    fn slot(&self, chain: &ChainState, slot: u64) -> Option<Arc<SlotFees>> {
        if let Some((_, f)) = self.slots.lock().iter().find(|(s, _)| *s == slot) {
            return Some(f.clone());
        }
        let fees = Arc::new(slot_fees(chain, slot)?);
        let mut slots = self.slots.lock();
        if !slots.iter().any(|(s, _)| *s == slot) {
            slots.push_back((slot, fees.clone()));
            slots.make_contiguous().sort_by_key(|(s, _)| *s);
            while slots.len() > MAX_SLOTS as usize {
                slots.pop_front();
            }
        }
        Some(fees)
    }
}

/// A retained slot's fees, from its transactions' compute-budget instructions.
fn slot_fees(chain: &ChainState, slot: u64) -> Option<SlotFees> {
    let sigs = chain.slot_signatures(slot)?;
    let mut fees = SlotFees::default();
    for sig in sigs {
        let Some(st) = chain.status(&sig) else {
            continue;
        };
        let tx = &st.transaction;
        let Ok(desc) = dataplane::parse_transaction(tx) else {
            continue;
        };
        let Ok(budget) = runtime::compute_budget::parse(&desc, tx) else {
            continue;
        };
        let writable = desc
            .static_keys(tx)
            .enumerate()
            .filter(|(i, _)| desc.is_static_writable(*i))
            .map(|(_, k)| Pubkey::new_from_array(*k))
            .chain(st.loaded_writable.iter().copied());
        fees.add(budget.limits.compute_unit_price, writable);
    }
    Some(fees)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_fee_is_the_minimum_raised_by_the_accounts_asked_about() {
        let (a, b, c) = (
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
        );
        let mut f = SlotFees::default();
        assert_eq!(f.fee_for(&[a]), 0);
        f.add(50, [a, b].into_iter());
        f.add(10, [b].into_iter());
        f.add(70, [a].into_iter());
        assert_eq!(f.fee_for(&[]), 10);
        assert_eq!(f.fee_for(&[a]), 50);
        assert_eq!(f.fee_for(&[b]), 10);
        assert_eq!(f.fee_for(&[b, a, c]), 50);
    }
}
