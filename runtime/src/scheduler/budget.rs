//! Compute-unit budgets per slot: the block, each writable account, each app.
//!
//! Like Agave's cost tracker: a transaction reserves its *requested* compute units when it is
//! dispatched and the reservation is corrected to what it really consumed when its batch
//! completes, so the caps bound real work while transactions in flight cannot overrun them.

use crate::sequencer::{AppId, PreparedTx};
use ahash::HashMap;
use solana_pubkey::Pubkey;

/// Solana's limits for a 400 ms slot.
pub const SOLANA_SLOT_MS: u64 = 400;
pub const SOLANA_BLOCK_CU: u64 = 48_000_000;
pub const SOLANA_ACCOUNT_CU: u64 = 12_000_000;
/// No cap may go below one maximal transaction, or such a transaction could never run.
pub const MAX_TX_CU: u64 = 1_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CuLimits {
    pub block: u64,
    pub account: u64,
    pub app: u64,
}

impl CuLimits {
    /// Configured values, 0 meaning Solana's scaled to `slot_ms` (the app cap: half a block).
    pub fn scaled(slot_ms: u64, block: u64, account: u64, app: u64) -> Self {
        let scale =
            |v: u64| (v as u128 * u128::from(slot_ms.max(1)) / u128::from(SOLANA_SLOT_MS)) as u64;
        let pick = |configured: u64, default: u64| {
            if configured > 0 { configured } else { default }.max(MAX_TX_CU)
        };
        let block = pick(block, scale(SOLANA_BLOCK_CU));
        Self {
            block,
            account: pick(account, scale(SOLANA_ACCOUNT_CU)).min(block),
            app: pick(app, block / 2).min(block),
        }
    }
}

impl CuLimits {
    /// Every cap times `s`, each still at least one transaction's maximum and the account and
    /// app caps at most the block's.
    pub fn times(&self, s: f64) -> Self {
        let scale = |v: u64| ((v as f64 * s) as u64).max(MAX_TX_CU);
        let block = scale(self.block);
        Self {
            block,
            account: scale(self.account).min(block),
            app: scale(self.app).min(block),
        }
    }
}

/// Which cap a transaction would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapHit {
    Block,
    App,
    Account,
}

#[derive(Default)]
pub struct CuBudget {
    block: u64,
    apps: HashMap<AppId, u64>,
    accounts: HashMap<Pubkey, u64>,
}

impl CuBudget {
    /// Whether `tx` fits. `declared_writes`: charge the accounts it declares writable (locked
    /// execution); an optimistic transaction is charged on the accounts it really writes, once
    /// it has run ([`CuBudget::charge_account`]).
    pub fn check(
        &self,
        limits: &CuLimits,
        tx: &PreparedTx,
        declared_writes: bool,
    ) -> Result<(), CapHit> {
        let cu = tx.reserved_cu();
        if self.block + cu > limits.block {
            return Err(CapHit::Block);
        }
        if self.apps.get(&tx.app).copied().unwrap_or(0) + cu > limits.app {
            return Err(CapHit::App);
        }
        if declared_writes
            && tx
                .writes()
                .any(|k| self.accounts.get(k).copied().unwrap_or(0) + cu > limits.account)
        {
            return Err(CapHit::Account);
        }
        Ok(())
    }

    pub fn reserve(&mut self, tx: &PreparedTx, declared_writes: bool) {
        let cu = tx.reserved_cu();
        self.block += cu;
        *self.apps.entry(tx.app).or_default() += cu;
        if declared_writes {
            for k in tx.writes() {
                *self.accounts.entry(*k).or_default() += cu;
            }
        }
    }

    /// An optimistic transaction really wrote `key` using `cu`.
    pub fn charge_account(&mut self, key: Pubkey, cu: u64) {
        *self.accounts.entry(key).or_default() += cu;
    }

    /// Replace a reservation of `requested` by the `used` compute units.
    pub fn settle(&mut self, app: AppId, writes: &[Pubkey], requested: u64, used: u64) {
        let fix = |v: &mut u64| *v = v.saturating_sub(requested).saturating_add(used);
        fix(&mut self.block);
        if let Some(v) = self.apps.get_mut(&app) {
            fix(v);
        }
        for k in writes {
            if let Some(v) = self.accounts.get_mut(k) {
                fix(v);
            }
        }
    }

    pub fn account_used(&self, key: &Pubkey) -> u64 {
        self.accounts.get(key).copied().unwrap_or(0)
    }

    pub fn block_used(&self) -> u64 {
        self.block
    }

    pub fn reset(&mut self) {
        self.block = 0;
        self.apps.clear();
        self.accounts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequencer::tests::fake_app_tx;

    #[test]
    fn scaled_limits_follow_solana() {
        let l = CuLimits::scaled(400, 0, 0, 0);
        assert_eq!(
            (l.block, l.account, l.app),
            (48_000_000, 12_000_000, 24_000_000)
        );
        let l = CuLimits::scaled(50, 0, 0, 0);
        assert_eq!(
            (l.block, l.account, l.app),
            (6_000_000, 1_500_000, 3_000_000)
        );
        // Never below one maximal transaction.
        assert_eq!(CuLimits::scaled(1, 0, 0, 0).account, MAX_TX_CU);
    }

    #[test]
    fn reservations_settle_to_actual_use() {
        let k = Pubkey::new_unique();
        let limits = CuLimits {
            block: 10_000,
            account: 2_500,
            app: 5_000,
        };
        let mut b = CuBudget::default();
        let tx = fake_app_tx(1, 0, 1, vec![(k, true)]); // requests 1,000
        b.reserve(&tx, true);
        b.reserve(&tx, true);
        assert_eq!(b.check(&limits, &tx, true), Err(CapHit::Account));
        // The first transaction used only 100 of its 1,000: room again.
        b.settle(1, &[k], 1_000, 100);
        assert_eq!(b.account_used(&k), 1_100);
        assert!(b.check(&limits, &tx, true).is_ok());
        let other = fake_app_tx(2, 0, 1, vec![(Pubkey::new_unique(), true)]);
        for _ in 0..3 {
            b.reserve(&other, true);
        }
        assert_eq!(b.check(&limits, &other, true), Err(CapHit::App));
        b.reset();
        assert_eq!(b.block_used(), 0);
    }
}
