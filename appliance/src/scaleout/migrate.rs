//! Moving partitions in and out of this node (thread `gc-migrate`): the node's half of the
//! protocol in [`cluster::migration`], as source and as destination.
//!
//! As source: a requested move of a partition this node owns starts the drain (the bank
//! parks the partition's transactions and marks the slot after which it did not change);
//! once that slot is durable the partition's accounts and recent signatures are exported
//! into pages the destination pulls (`clusterExportPage`, on the peers' path), and the record
//! says ready. When the map flips, what was parked goes to the new owner and the local copy
//! is wiped; when the record is given up instead, it is admitted here again.
//!
//! As destination: a ready move to this node is pulled page by page, written by the bank
//! (stale local copies of the partition wiped first), waited for until durable, and the map
//! flipped in one etcd transaction. Any failure gives the move up.
//!
//! The walks over the accounts run here, never on the bank's or the lease agent's thread.

use super::{WireAccount, write_durably};
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use cluster::etcd::{self, block_on};
use cluster::migration::{MAX_PAGE_BYTES, Migration, MigrationState};
use cluster::peer;
use cluster::view::Export;
use cluster::{ClusterView, Snapshot};
use crossbeam_channel::Sender;
use dataplane::Ingress;
use runtime::ClusterWrite;
use runtime::accounts::AccountsDb;
use runtime::chain::{ChainState, ForeignSignature};
use serde::{Deserialize, Serialize};
use solana_account::{AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;
use std::collections::HashSet;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the thread looks at the cluster (the agent refreshes it every `poll_ms`).
const TICK: Duration = Duration::from_millis(20);
/// A source gives a move up if its partition is not drained and durable by then...
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// ...or if the destination has not flipped the map this long after it was ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a datagram that would have bounced waits before it is routed again: past the
/// agents' next read of the cluster (`poll_ms`, 200 ms by default).
const DEFER_FOR: Duration = Duration::from_millis(300);
/// Largest answer to one page request.
const MAX_PAGE_ANSWER: usize = 32 << 20;

pub struct Ctx {
    pub view: Arc<ClusterView>,
    pub db: Arc<AccountsDb>,
    pub chain: Arc<ChainState>,
    pub writes: Sender<ClusterWrite>,
    pub ingress: Ingress,
    pub socket: Arc<UdpSocket>,
    pub endpoints: Vec<String>,
    pub cluster: String,
    /// `[cluster] rebalance` (and consolidation).
    pub rebalance: Option<super::rebalance::Policy>,
}

pub struct Migrator {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Migrator {
    pub fn start(ctx: Ctx) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("gc-migrate".into())
            .spawn(move || run(ctx, flag))
            .context("starting the migration thread")?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
struct Page {
    accounts: Vec<WireAccount>,
    /// Transactions run on the partition (at the source, or before it where they ran).
    signatures: Vec<ForeignSignature>,
}

/// This node's outgoing move.
struct Outgoing {
    partition: u16,
    to: String,
    /// The request it answers (epoch, time asked): a later request of the same move, made
    /// after this one was given up elsewhere, is another move.
    asked: (u64, u64),
    began: Instant,
    drain_unix_ms: u64,
    ready_at: Option<Instant>,
}

fn run(ctx: Ctx, stop: Arc<AtomicBool>) {
    let mut out: Option<Outgoing> = None;
    // Moves this node already took in (or gave up), by (partition, drained slot).
    let mut seen: HashSet<(u16, u64)> = HashSet::new();
    let mut rebalancer = ctx.rebalance.map(super::rebalance::Rebalancer::new);
    let mut gatherer = super::colocate::Gatherer::default();
    while !stop.load(Ordering::Acquire) {
        let snap = ctx.view.snapshot();
        if let Some(r) = rebalancer.as_mut()
            && let Err(e) = r.step(&ctx, &snap)
        {
            tracing::warn!(node = %ctx.view.me(), "rebalancing: {e:#}");
        }
        if let Err(e) = gatherer.step(&ctx, &snap) {
            tracing::debug!(node = %ctx.view.me(), "co-location: {e:#}");
        }
        if let Err(e) = source_step(&ctx, &snap, &mut out) {
            tracing::warn!(node = %ctx.view.me(), "moving a partition out: {e:#}");
        }
        destination_step(&ctx, &snap, &mut seen);
        // Datagrams that would have bounced: routed again once the map has been re-read.
        for tx in ctx.view.take_deferred(DEFER_FOR) {
            resubmit(&ctx, &tx);
        }
        std::thread::sleep(TICK);
    }
    if let Some(o) = out {
        let parked = ctx.view.end_drain().len();
        tracing::warn!(
            partition = o.partition,
            parked,
            "stopping during a move: parked transactions dropped"
        );
    }
}

pub(super) fn etcd_call<T>(
    ctx: &Ctx,
    f: impl AsyncFnOnce(&mut etcd::Client) -> Result<T, etcd::ClusterError>,
) -> Result<T> {
    block_on(async {
        let mut c = etcd::connect(&ctx.endpoints).await?;
        f(&mut c).await
    })
    .map_err(|e| anyhow!("{e}"))
}

fn source_step(ctx: &Ctx, snap: &Snapshot, out: &mut Option<Outgoing>) -> Result<()> {
    let me = ctx.view.me();
    let Some(map) = &snap.map else {
        return Ok(());
    };
    let Some(o) = out.as_mut() else {
        // A move out that this process did not start (it restarted mid-move): what it had
        // parked is gone and it has served the partition since. The move is given up.
        if let Some((m, rev)) = snap
            .migrations
            .values()
            .find(|(m, _)| m.from == me && m.state == MigrationState::Ready)
        {
            return give_up(
                ctx,
                m.partition,
                *rev,
                "its source restarted during the move",
            );
        }
        // A request made against an older map can never start (a move applies to the map it
        // was asked against): deleted, so that the partition can be asked for again.
        if let Some((m, rev)) = snap.migrations.values().find(|(m, _)| {
            m.from == me && m.state == MigrationState::Requested && m.epoch < map.epoch
        }) {
            return give_up(ctx, m.partition, *rev, "the map changed since it was asked");
        }
        let request = snap.migrations.values().find(|(m, _)| {
            m.from == me
                && m.state == MigrationState::Requested
                && m.epoch == map.epoch
                && map.owner(m.partition) == Some(me)
        });
        if let Some((m, _)) = request {
            tracing::info!(partition = m.partition, to = %m.to, reason = %m.reason, "moving a partition out: draining");
            ctx.view.begin_drain(m.partition);
            *out = Some(Outgoing {
                partition: m.partition,
                to: m.to.clone(),
                asked: (m.epoch, m.requested_unix_ms),
                began: Instant::now(),
                drain_unix_ms: cluster::clock::unix_ms(),
                ready_at: None,
            });
        }
        return Ok(());
    };
    match snap.migrations.get(&o.partition) {
        Some((m, rev))
            if m.from == me && m.to == o.to && (m.epoch, m.requested_unix_ms) == o.asked =>
        {
            let rev = *rev;
            if m.state == MigrationState::Requested && o.ready_at.is_none() {
                let durable = ctx.chain.local_durable_slot();
                match ctx.view.drained_slot() {
                    Some(slot) if durable >= slot => {
                        let (pages, accounts, signatures) = export(ctx, o.partition, slot)?;
                        let pages_len = pages.len() as u32;
                        ctx.view.set_export(Export {
                            partition: o.partition,
                            revision: slot as i64,
                            pages: Arc::new(pages),
                        });
                        let ready = Migration {
                            state: MigrationState::Ready,
                            source_registration: snap.registrations.get(me).map(|r| r.0),
                            drain_unix_ms: Some(o.drain_unix_ms),
                            drained_slot: Some(slot),
                            pages: Some(pages_len),
                            accounts: Some(accounts),
                            signatures: Some(signatures),
                            ..m.clone()
                        };
                        let cluster = ctx.cluster.clone();
                        if etcd_call(ctx, async move |c| {
                            etcd::update_move(c, &cluster, &ready, rev).await
                        })? {
                            tracing::info!(
                                partition = o.partition,
                                accounts,
                                signatures,
                                slot,
                                "moving a partition out: ready"
                            );
                            o.ready_at = Some(Instant::now());
                        }
                    }
                    _ if o.began.elapsed() > DRAIN_TIMEOUT => {
                        give_up(ctx, o.partition, rev, "not drained in time")?
                    }
                    _ => {}
                }
            } else if o.ready_at.is_some_and(|t| t.elapsed() > READY_TIMEOUT) {
                give_up(
                    ctx,
                    o.partition,
                    rev,
                    "the destination did not take it in time",
                )?;
            }
        }
        _ => {
            // The record is gone (or is another request now): the map flipped, or the move
            // was given up.
            let partition = o.partition;
            let parked = ctx.view.end_drain();
            match map.owner(partition) {
                Some(owner) if owner != me => {
                    let tpu = snap.nodes.get(owner).map(|n| n.tpu);
                    for tx in &parked {
                        match tpu {
                            Some(tpu) => send_paced(ctx, tx, tpu),
                            // The new owner is already gone: routed like any arrival.
                            None => resubmit(ctx, tx),
                        }
                    }
                    ctx.view
                        .counters
                        .migrations_out
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(partition, to = %owner, parked = parked.len(), "moved a partition out");
                    // A node that follows the new owner keeps its copy: the new owner's next
                    // replication session replaces it (a wipe now could delete that replica).
                    if map.followers.get(owner).map(String::as_str) != Some(me) {
                        wipe(ctx, partition, &HashSet::new())?;
                    }
                }
                _ => {
                    for tx in &parked {
                        resubmit(ctx, tx);
                    }
                    ctx.view
                        .counters
                        .migrations_aborted
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        partition,
                        parked = parked.len(),
                        "a move out was given up: the partition stays here"
                    );
                }
            }
            *out = None;
        }
    }
    Ok(())
}

/// A parked transaction to its new owner: the socket is non-blocking, so a full send buffer
/// is waited out (briefly) rather than dropping what was parked.
fn send_paced(ctx: &Ctx, tx: &[u8], to: std::net::SocketAddr) {
    for _ in 0..200 {
        match ctx.socket.send_to(tx, to) {
            Ok(_) => {
                ctx.view
                    .counters
                    .forwarded_udp
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(200))
            }
            Err(_) => break,
        }
    }
    ctx.view
        .counters
        .forward_errors
        .fetch_add(1, Ordering::Relaxed);
}

/// A parked transaction admitted here again (its move was given up), retried while the
/// verify rings are full.
pub(super) fn resubmit(ctx: &Ctx, tx: &[u8]) {
    for _ in 0..200 {
        match ctx.ingress.submit_rerouted(tx) {
            Err(dataplane::SubmitError::QueueFull | dataplane::SubmitError::PoolExhausted) => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(dataplane::SubmitError::Duplicate) | Ok(()) => return,
            Err(_) => break,
        }
    }
    ctx.view
        .counters
        .forward_errors
        .fetch_add(1, Ordering::Relaxed);
}

fn give_up(ctx: &Ctx, partition: u16, rev: i64, why: &str) -> Result<()> {
    tracing::warn!(partition, "giving a move up: {why}");
    let cluster = ctx.cluster.clone();
    etcd_call(ctx, async move |c| {
        etcd::abort_move(c, &cluster, partition, rev).await
    })?;
    Ok(())
}

/// Does this status's transaction write an account of `partition`?
fn touches(view: &ClusterView, s: &runtime::chain::TxStatus, partition: u16) -> bool {
    let loaded = s.loaded_writable.iter().map(|k| k.to_bytes());
    let Ok(desc) = dataplane::parse::parse_transaction(&s.transaction) else {
        return false;
    };
    let statics: Vec<[u8; 32]> = (0..usize::from(desc.num_static_keys))
        .filter(|&i| desc.is_static_writable(i))
        .map(|i| *desc.static_key(&s.transaction, i))
        .collect();
    statics
        .into_iter()
        .chain(loaded)
        .any(|k| view.partition_of(&k) == Some(partition))
}

/// The partition's accounts (newest durable versions) and the signatures of the retained
/// transactions that wrote it, in pages of at most [`MAX_PAGE_BYTES`].
fn export(ctx: &Ctx, partition: u16, drained: u64) -> Result<(Vec<Vec<u8>>, u64, u64)> {
    let mut pages = Vec::new();
    let mut page = Page::default();
    let mut bytes = 0usize;
    let mut accounts = 0u64;
    let mut failed = None;
    let mut flush = |page: &mut Page, bytes: &mut usize, pages: &mut Vec<Vec<u8>>| {
        match bincode::serialize(page) {
            Ok(b) => pages.push(b),
            Err(e) => failed = Some(e.to_string()),
        }
        *page = Page::default();
        *bytes = 0;
    };
    ctx.db
        .for_each_durable(&mut |k, a| {
            if ctx.view.partition_of(&k.to_bytes()) != Some(partition) {
                return;
            }
            accounts += 1;
            bytes += a.data().len() + 128;
            page.accounts.push(WireAccount::new(k, a));
            if bytes >= MAX_PAGE_BYTES {
                flush(&mut page, &mut bytes, &mut pages);
            }
        })
        .map_err(|e| anyhow!("reading the partition's accounts: {e}"))?;
    let first = drained.saturating_sub(ctx.chain.validity_slots() + 1);
    // What ran here on the partition, and what ran where it was before (it may be resent).
    let mut signatures = 0u64;
    let ran_here = ctx
        .chain
        .statuses_since(first)
        .into_iter()
        .filter(|s| touches(&ctx.view, s, partition))
        .map(|s| ForeignSignature::of(&s, partition));
    for s in ran_here.chain(ctx.chain.foreign_since(partition, first)) {
        signatures += 1;
        page.signatures.push(s);
        bytes += 80;
        if bytes >= MAX_PAGE_BYTES {
            flush(&mut page, &mut bytes, &mut pages);
        }
    }
    flush(&mut page, &mut bytes, &mut pages);
    if let Some(e) = failed {
        bail!("encoding a page: {e}");
    }
    Ok((pages, accounts, signatures))
}

/// Deletes this node's copies of `partition`'s accounts, except `keep` (never an account
/// every node holds, nor this node's own).
fn wipe(ctx: &Ctx, partition: u16, keep: &HashSet<Pubkey>) -> Result<()> {
    let mut gone = Vec::new();
    ctx.db
        .for_each_durable(&mut |k, _| {
            if ctx.view.partition_of(&k.to_bytes()) == Some(partition) && !keep.contains(k) {
                gone.push((*k, AccountSharedData::default()));
            }
        })
        .map_err(|e| anyhow!("reading the partition's accounts: {e}"))?;
    if !gone.is_empty() {
        write_durably(&ctx.writes, &ctx.chain, gone, Vec::new())?;
    }
    Ok(())
}

fn destination_step(ctx: &Ctx, snap: &Snapshot, seen: &mut HashSet<(u16, u64)>) {
    let me = ctx.view.me();
    let Some((m, rev)) = snap
        .migrations
        .values()
        .find(|(m, _)| m.to == me && m.state == MigrationState::Ready)
    else {
        return;
    };
    let id = (m.partition, m.drained_slot.unwrap_or(0));
    if !seen.insert(id) {
        return;
    }
    let (m, rev) = (m.clone(), *rev);
    let result = take_in(ctx, snap, &m).and_then(|()| {
        let cluster = ctx.cluster.clone();
        let flip = m.clone();
        etcd_call(ctx, async move |c| {
            etcd::flip(c, &cluster, &flip, rev).await
        })
    });
    match result {
        Ok(map) => {
            // Known here before anyone forwards to this node as the partition's owner.
            ctx.view.adopt_map(map.clone());
            let pause = cluster::clock::unix_ms().saturating_sub(m.drain_unix_ms.unwrap_or(0));
            ctx.view
                .counters
                .migrations_in
                .fetch_add(1, Ordering::Relaxed);
            ctx.view
                .counters
                .last_pause_ms
                .store(pause, Ordering::Relaxed);
            tracing::info!(partition = m.partition, from = %m.from, epoch = map.epoch, pause_ms = pause, "moved a partition in");
        }
        Err(e) => {
            tracing::warn!(partition = m.partition, from = %m.from, "taking a partition in failed, giving the move up: {e:#}");
            let _ = give_up(ctx, m.partition, rev, "the destination could not take it");
            // Whatever was written stays unreachable here; it is removed so that it can never
            // be read as current (a later move in wipes again before it writes) — unless this
            // node follows the source: then it is the replica, which the source's log goes on
            // updating (deleting it would leave a replica marked complete without it).
            let follows_source = snap
                .map
                .as_ref()
                .and_then(|map| map.followers.get(&m.from))
                .is_some_and(|f| f == me);
            if follows_source {
                return;
            }
            if let Err(e) = wipe(ctx, m.partition, &HashSet::new()) {
                tracing::warn!(
                    partition = m.partition,
                    "wiping a partition not taken in: {e:#}"
                );
            }
        }
    }
}

/// Pulls the pages of `m` from its source, wipes stale local copies of the partition, and
/// writes the pages durably.
fn take_in(ctx: &Ctx, snap: &Snapshot, m: &Migration) -> Result<()> {
    let src = snap
        .nodes
        .get(&m.from)
        .ok_or_else(|| anyhow!("the source {} is down", m.from))?;
    let drained = m
        .drained_slot
        .context("a ready move without its drained slot")?;
    let mut accounts = Vec::new();
    let mut signatures = Vec::new();
    for i in 0..m.pages.unwrap_or(0) {
        let path = ctx.view.peer_path().context("no cluster spec")?;
        let v = peer::call(
            src.rpc,
            &path,
            "clusterExportPage",
            &serde_json::json!([m.partition, drained, i]),
            MAX_PAGE_ANSWER,
        )
        .map_err(|e| anyhow!("page {i} from {}: {e}", m.from))?;
        let b64 = v.as_str().context("a page that is not a string")?;
        let raw = base64::engine::general_purpose::STANDARD.decode(b64)?;
        let page: Page = bincode::deserialize(&raw).context("a page that does not decode")?;
        for a in page.accounts {
            if ctx.view.partition_of(&a.key) != Some(m.partition) {
                bail!(
                    "the source sent {}, which is not in partition {}",
                    Pubkey::new_from_array(a.key),
                    m.partition
                );
            }
            accounts.push(a.into_account());
        }
        for s in page.signatures {
            if s.partition != m.partition {
                bail!(
                    "the source sent signature {}, which is not of partition {}",
                    s.signature,
                    m.partition
                );
            }
            signatures.push(s);
        }
    }
    let keep: HashSet<Pubkey> = accounts.iter().map(|(k, _)| *k).collect();
    // No replica batch of the old owner may land between or after these (see
    // `ClusterView::foreign_writes`); batches arriving later see the move and skip `p`.
    let _order = ctx.view.foreign_writes.lock();
    wipe(ctx, m.partition, &keep)?;
    write_durably(&ctx.writes, &ctx.chain, accounts, signatures)
}
