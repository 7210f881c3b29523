//! getSupply and getLargestAccounts: one walk over every durable account, its result kept for
//! [`CACHE_FOR`] (Agave caches its largest-accounts scan the same way). One walk runs at a
//! time; callers meanwhile wait for it rather than start their own.
//!
//! Nothing mints or burns lamports here (fees go to the fee collector, no rent is collected,
//! no inflation is paid), so the total is what genesis created, and nothing is
//! non-circulating.

use parking_lot::Mutex;
use runtime::accounts::AccountsDb;
use solana_pubkey::Pubkey;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a walk's result answers.
pub const CACHE_FOR: Duration = Duration::from_secs(60);
/// Agave's NUM_LARGEST_ACCOUNTS.
pub const LARGEST: usize = 20;

/// What one walk found.
pub struct Supply {
    pub taken: Instant,
    /// The durable slot when the walk started.
    pub slot: u64,
    pub total_lamports: u64,
    /// The [`LARGEST`] largest balances, largest first.
    pub largest: Vec<(Pubkey, u64)>,
}

#[derive(Default)]
pub struct SupplyCache {
    last: Mutex<Option<Arc<Supply>>>,
}

impl SupplyCache {
    /// The cached walk, or a new one if it is older than [`CACHE_FOR`].
    pub fn get(
        &self,
        db: &AccountsDb,
        durable_slot: u64,
    ) -> Result<Arc<Supply>, storage::StoreError> {
        let mut last = self.last.lock();
        if let Some(s) = last.as_ref().filter(|s| s.taken.elapsed() < CACHE_FOR) {
            return Ok(s.clone());
        }
        let s = Arc::new(walk(db, durable_slot)?);
        *last = Some(s.clone());
        Ok(s)
    }
}

fn walk(db: &AccountsDb, slot: u64) -> Result<Supply, storage::StoreError> {
    let mut total: u64 = 0;
    // A min-heap of the largest so far: the smallest of them is the one to beat.
    let mut top = std::collections::BinaryHeap::new();
    db.for_each_durable(&mut |key, a| {
        let lamports = solana_account::ReadableAccount::lamports(a);
        total = total.saturating_add(lamports);
        top.push(std::cmp::Reverse((lamports, *key)));
        if top.len() > LARGEST {
            top.pop();
        }
    })?;
    let mut largest: Vec<(Pubkey, u64)> = top.into_iter().map(|r| (r.0.1, r.0.0)).collect();
    largest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(Supply {
        taken: Instant::now(),
        slot,
        total_lamports: total,
        largest,
    })
}
