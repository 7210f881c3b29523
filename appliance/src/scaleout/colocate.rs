//! Gathering the partitions of held cross-partition transactions (`[cluster] colocate`,
//! the policy in [`cluster::colocate`]), a step of the `gc-migrate` thread: held
//! transactions are routed again when the map changed and dropped when they waited too long,
//! and, while no move is in flight in the cluster, the next move that gathers them is asked
//! of etcd like any other move.

use super::migrate::{Ctx, etcd_call, resubmit};
use cluster::Snapshot;
use cluster::colocate::{HOLD_FOR, next_move};
use cluster::etcd;
use std::collections::HashMap;
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
}

/// How often held transactions are routed again...
const RECHECK: Duration = Duration::from_millis(100);
/// ...and how many at most per step (routing one may wait on full verify rings; the same
/// thread runs the moves).
const ROUTE_PER_STEP: usize = 2_048;

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
        g.release(released);
        self.asked.retain(|_, t| t.elapsed() < COOLDOWN);
        let next = snap
            .migrations
            .is_empty()
            .then(|| next_move(map, &waiting, |p| self.asked.contains_key(&p)))
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

/// Whether one live node (this one or another) owns all of a held transaction's accounts.
fn together(ctx: &Ctx, tx: &[u8]) -> bool {
    dataplane::parse::parse_transaction(tx).is_ok_and(|d| {
        matches!(
            ctx.view.read_route(d.owned_keys(tx)),
            cluster::Route::Local | cluster::Route::Forward(_)
        )
    })
}
