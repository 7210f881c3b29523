//! Gathering the partitions of held cross-partition transactions (`[cluster] colocate`,
//! the policy in [`cluster::colocate`]), a step of the `gc-migrate` thread: held
//! transactions are routed again when the map changed and dropped when they waited too long,
//! and, while no move is in flight in the cluster, the next move that gathers them is asked
//! of etcd like any other move. Only a transaction that could pay asks for moves: its
//! blockhash is still valid and its fee payer, read from its owner, holds its signature fee
//! (what the bank checks first); one that cannot is dropped and counted (`unpayable`), so a
//! move costs whoever caused it a fee, as any transaction does.

use super::migrate::{Ctx, etcd_call, resubmit};
use anyhow::Context;
use cluster::Snapshot;
use cluster::colocate::{HOLD_FOR, Held, next_move};
use cluster::etcd;
use solana_account::ReadableAccount;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A partition this node moved for co-location is not moved for it again for this long (a
/// partition wanted on two nodes at once moves at most this often, from this node's asking).
pub const COOLDOWN: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Gatherer {
    /// When this node last asked for each partition to move.
    asked: HashMap<u16, Instant>,
    checked_at: Option<Instant>,
    /// Held transactions found able to pay, by first signature: only they ask for moves.
    payable: HashSet<[u8; 64]>,
}

/// How often held transactions are routed again...
const RECHECK: Duration = Duration::from_millis(100);
/// ...and how many at most per step (routing one may wait on full verify rings; the same
/// thread runs the moves).
const ROUTE_PER_STEP: usize = 2_048;
/// Held transactions checked for their fee per step at most (each may ask a peer).
const PAY_CHECKS_PER_STEP: usize = 16;

impl Gatherer {
    pub fn step(&mut self, ctx: &Ctx, snap: &Snapshot) -> anyhow::Result<()> {
        let g = &ctx.view.colocate;
        if g.is_empty() {
            return Ok(());
        }
        let Some(map) = &snap.map else {
            return Ok(());
        };
        // Each held transaction is looked at again every RECHECK (not only when the epoch
        // moves: a map can change between the look and the routing, and a transaction
        // routed anew can be held again under the newer map).
        if self.checked_at.is_some_and(|t| t.elapsed() < RECHECK) {
            return Ok(());
        }
        self.checked_at = Some(Instant::now());
        let mut waiting = Vec::new();
        let (mut released, mut routed) = (0, 0);
        for h in g.take() {
            if h.since.elapsed() > HOLD_FOR {
                g.counters.expired.fetch_add(1, Ordering::Relaxed);
                released += h.bytes.len();
            } else if routed < ROUTE_PER_STEP && together(ctx, &h.bytes) {
                // Its accounts are together now: routed to their owner like any arrival.
                resubmit(ctx, &h.bytes);
                released += h.bytes.len();
                routed += 1;
            } else {
                // Still split (its signatures were checked when it was held), its owner is
                // down, or this step routed enough: it waits on.
                waiting.push(h);
            }
        }
        let waiting = self.check_payable(ctx, snap, waiting, &mut released);
        g.release(released);
        self.asked.retain(|_, t| t.elapsed() < COOLDOWN);
        let next = snap
            .migrations
            .is_empty()
            .then(|| {
                let payable = waiting
                    .iter()
                    .filter(|h| self.payable.contains(&first_signature(&h.bytes)));
                next_move(map, payable, |p| self.asked.contains_key(&p))
            })
            .flatten();
        g.keep(waiting);
        let Some((partition, to)) = next else {
            return Ok(());
        };
        self.asked.insert(partition, Instant::now());
        let (cluster, dest) = (ctx.cluster.clone(), to.clone());
        etcd_call(ctx, async move |c| {
            etcd::request_move(c, &cluster, partition, &dest, "co-locate").await
        })?;
        g.counters.moves.fetch_add(1, Ordering::Relaxed);
        tracing::info!(partition, to = %to, "co-location: a partition moves to join a held transaction's others");
        Ok(())
    }
}

impl Gatherer {
    /// Checks up to [`PAY_CHECKS_PER_STEP`] held transactions not yet found payable: those
    /// that cannot pay are dropped (counted, their bytes added to `released`); those whose
    /// fee payer could not be read now wait for a later step.
    fn check_payable(
        &mut self,
        ctx: &Ctx,
        snap: &Snapshot,
        waiting: Vec<Held>,
        released: &mut usize,
    ) -> Vec<Held> {
        let mut checks = 0;
        let mut kept = Vec::with_capacity(waiting.len());
        for h in waiting {
            let sig = first_signature(&h.bytes);
            if self.payable.contains(&sig) || checks == PAY_CHECKS_PER_STEP {
                kept.push(h);
                continue;
            }
            checks += 1;
            match can_pay(ctx, snap, &h.bytes) {
                Ok(true) => {
                    self.payable.insert(sig);
                    kept.push(h);
                }
                Ok(false) => {
                    ctx.view
                        .colocate
                        .counters
                        .unpayable
                        .fetch_add(1, Ordering::Relaxed);
                    *released += h.bytes.len();
                }
                Err(e) => {
                    // A peer that does not answer costs this thread (which also runs the
                    // moves) one timeout per step, not one per held transaction.
                    tracing::debug!("co-location: a fee payer not read now: {e:#}");
                    kept.push(h);
                    checks = PAY_CHECKS_PER_STEP;
                }
            }
        }
        let held: HashSet<[u8; 64]> = kept.iter().map(|h| first_signature(&h.bytes)).collect();
        self.payable.retain(|s| held.contains(s));
        kept
    }
}

fn first_signature(tx: &[u8]) -> [u8; 64] {
    // Held transactions were parsed when held; a first signature is their first 64 bytes
    // after the compact length (1 byte for up to 127 signatures).
    let mut sig = [0u8; 64];
    if let Some(b) = tx.get(1..65) {
        sig.copy_from_slice(b);
    }
    sig
}

/// Whether a held transaction could pay: its blockhash is in the validity window and its
/// fee payer holds at least its signature fee, read where the payer's partition lives.
/// `Err`: the payer's owner could not be asked now.
fn can_pay(ctx: &Ctx, snap: &Snapshot, tx: &[u8]) -> anyhow::Result<bool> {
    let Ok(d) = dataplane::parse::parse_transaction(tx) else {
        return Ok(false);
    };
    let bh = solana_hash::Hash::new_from_array(*d.recent_blockhash(tx));
    // As `isBlockhashValid` answers: valid for the slot now open.
    if ctx
        .chain
        .blockhash_slot(&bh, ctx.chain.processed_slot() + 1)
        .is_none()
    {
        return Ok(false);
    }
    let fee = u64::from(d.num_signatures) * runtime::compute_budget::LAMPORTS_PER_SIGNATURE;
    let payer = solana_pubkey::Pubkey::new_from_array(*d.fee_payer(tx));
    let map = snap.map.as_ref().context("no map")?;
    let owner = map.owner_of(&payer.to_bytes());
    let lamports = if owner == ctx.view.me() {
        ctx.db
            .get(&payer)
            .map_err(|e| anyhow::anyhow!("reading the fee payer: {e}"))?
            .map_or(0, |(a, _)| a.lamports())
    } else {
        let node = snap
            .nodes
            .get(owner)
            .with_context(|| format!("the fee payer's owner {owner} is down"))?;
        let path = ctx.view.peer_path().context("no cluster spec")?;
        let v = cluster::peer::call(
            node.rpc,
            &path,
            "getBalance",
            &serde_json::json!([payer.to_string()]),
            4_096,
        )
        .map_err(|e| anyhow::anyhow!("getBalance at {owner}: {e}"))?;
        v["value"]
            .as_u64()
            .context("a balance that is not a number")?
    };
    Ok(lamports >= fee)
}

/// Whether one live node (this one or another) owns all of a held transaction's accounts.
fn together(ctx: &Ctx, tx: &[u8]) -> bool {
    dataplane::parse::parse_transaction(tx).is_ok_and(|d| {
        matches!(
            ctx.view.read_route(d.owned_keys(tx)),
            cluster::Route::Local | cluster::Route::Forward(_)
        )
    })
}
