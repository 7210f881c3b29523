//! Gathering the partitions of held cross-partition transactions (`[cluster] colocate`,
//! the policy in [`cluster::colocate`]), a step of the `gc-migrate` thread: held
//! transactions are routed again when the map changed and dropped when they waited too long,
//! and, while no move is in flight in the cluster, the next move that gathers them is asked
//! of etcd like any other move. Only a transaction that could pay asks for moves: its
//! blockhash is still valid and its fee payer, read from its owner, holds its signature fee
//! (what the bank checks first); one that cannot is dropped and counted (`unpayable`), so a
//! move costs whoever caused it a fee, as any transaction does.

use super::migrate::{Ctx, etcd_call, resubmit};
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
        let mut remote_reads = 0;
        let mut kept = Vec::with_capacity(waiting.len());
        let unpayable = |h: &Held, released: &mut usize| {
            ctx.view
                .colocate
                .counters
                .unpayable
                .fetch_add(1, Ordering::Relaxed);
            *released += h.bytes.len();
        };
        for h in waiting {
            // Every step, for every held transaction (local work only): its blockhash still
            // valid, its budget well formed; what it must find funded.
            let Some(needs) = fee_needs(ctx, &h.bytes) else {
                unpayable(&h, released);
                continue;
            };
            let sig = first_signature(&h.bytes);
            if self.payable.contains(&sig) {
                kept.push(h);
                continue;
            }
            let mut verdict = Some(true);
            for (key, at_least) in needs {
                match lamports(ctx, snap, &key, &mut remote_reads) {
                    Read::Lamports(l) if l >= at_least => {}
                    Read::Lamports(_) => verdict = Some(false),
                    // Its owner is down or was asked enough this step: later.
                    Read::NotNow => verdict = None,
                    Read::Failed(e) => {
                        // A peer that does not answer costs this thread (which also runs the
                        // moves) one timeout per step, not one per held transaction.
                        tracing::debug!("co-location: a fee payer not read now: {e:#}");
                        remote_reads = PAY_CHECKS_PER_STEP;
                        verdict = None;
                    }
                }
                if verdict != Some(true) {
                    break;
                }
            }
            match verdict {
                Some(true) => {
                    self.payable.insert(sig);
                    kept.push(h);
                }
                Some(false) => unpayable(&h, released),
                None => kept.push(h),
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

/// What a held transaction needs to run and pay where it gathers, checked as the bank will:
/// a blockhash valid now, a compute budget that parses, and (key, lamports at least) for the
/// fee payer (its whole fee, priority included) and each address table it loads (it must
/// exist). `None`: it cannot run, and no move is asked for it.
fn fee_needs(ctx: &Ctx, tx: &[u8]) -> Option<Vec<(solana_pubkey::Pubkey, u64)>> {
    let d = dataplane::parse::parse_transaction(tx).ok()?;
    let bh = solana_hash::Hash::new_from_array(*d.recent_blockhash(tx));
    // As `isBlockhashValid` answers: valid for the slot now open.
    ctx.chain
        .blockhash_slot(&bh, ctx.chain.processed_slot() + 1)?;
    let fee = runtime::compute_budget::parse(&d, tx).ok()?.total_fee();
    let mut needs = vec![(solana_pubkey::Pubkey::new_from_array(*d.fee_payer(tx)), fee)];
    for l in d.lookups(tx) {
        needs.push((solana_pubkey::Pubkey::new_from_array(*l.table), 1));
    }
    Some(needs)
}

enum Read {
    Lamports(u64),
    NotNow,
    Failed(anyhow::Error),
}

/// An account's lamports, read where its partition lives: here, or from its owner over the
/// peers' path (at most [`PAY_CHECKS_PER_STEP`] such reads per step).
fn lamports(
    ctx: &Ctx,
    snap: &Snapshot,
    key: &solana_pubkey::Pubkey,
    remote_reads: &mut usize,
) -> Read {
    let Some(map) = snap.map.as_ref() else {
        return Read::NotNow;
    };
    let owner = map.owner_of(&key.to_bytes());
    if owner == ctx.view.me() || ctx.view.is_global(&key.to_bytes()) {
        return match ctx.db.get(key) {
            Ok(a) => Read::Lamports(a.map_or(0, |(a, _)| a.lamports())),
            Err(e) => Read::Failed(anyhow::anyhow!("reading {key}: {e}")),
        };
    }
    let (Some(node), Some(path)) = (snap.nodes.get(owner), ctx.view.peer_path()) else {
        return Read::NotNow;
    };
    if *remote_reads >= PAY_CHECKS_PER_STEP {
        return Read::NotNow;
    }
    *remote_reads += 1;
    // A peer whose map moved on refuses (-32005): read again once the maps agree.
    match cluster::peer::call(
        node.rpc,
        &path,
        "getBalance",
        &serde_json::json!([key.to_string()]),
        4_096,
    ) {
        Ok(v) => v["value"].as_u64().map_or_else(
            || Read::Failed(anyhow::anyhow!("a balance that is not a number")),
            Read::Lamports,
        ),
        Err(e) if !e.unreachable => Read::NotNow,
        Err(e) => Read::Failed(anyhow::anyhow!("getBalance at {owner}: {}", e.message)),
    }
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
