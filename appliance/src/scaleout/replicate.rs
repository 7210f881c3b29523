//! Replication and failover: threads `gc-replicate` (this node as owner, and failover) and
//! `gc-replica-in` (this node as follower).
//!
//! As owner: each durable slot's written accounts of the partitions this node owns, and the
//! signatures of the transactions paid from them, go to the node's follower over one TCP
//! connection, in order. The follower is named in the map (`followers[me]`), chosen and
//! written by this node ([`PartitionMap::follower_for`]: the next live id). A *session* starts
//! with a snapshot of the partitions (their durable accounts and recent signatures, as of a
//! durable slot D) and goes on with the log of the slots after D. The follower answers each
//! batch once it is durable on its disk, with the slot it covers; the owner's confirmed slot
//! ([`ChainState::durable_slot`]) is the lesser of its own durable slot and that
//! acknowledgement. A slot is confirmed only when it is durable on two nodes. A node alone in
//! its cluster has no follower and confirms on its own disk (`gigacompute_cluster_unreplicated`).
//!
//! As follower: batches are written through this node's bank (accounts of partitions it does
//! not own, which nothing here executes), strictly in order per owner; the signatures become
//! foreign signatures (refused here while their blockhash is valid). When an owner's
//! registration disappears (its lease expired, and it fenced itself before that) and this
//! node holds a complete replica of every partition the map gives the owner, one etcd
//! transaction hands them to this node ([`etcd::fail_over`]). The replica's writer and the
//! failover take one lock, so no replicated write lands after the takeover.
//!
//! A new session (a new follower, a log lost because the follower fell 256 MiB behind or the
//! commit tile's queue overflowed, a partition gained) sends the snapshot again; until it is
//! acknowledged confirmations wait.

use super::{WireAccount, write_durably};
use anyhow::{Context, Result, anyhow, bail};
use cluster::ClusterView;
use cluster::etcd::{self, block_on};
use cluster::map::PartitionMap;
use crossbeam_channel::{Receiver, Sender};
use runtime::ClusterWrite;
use runtime::accounts::AccountsDb;
use runtime::chain::{ChainState, ForeignSignature};
use runtime::commit::ReplicaSlot;
use serde::{Deserialize, Serialize};
use solana_account::AccountSharedData;
use solana_pubkey::Pubkey;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Durable slots waiting for the replicator, at most (the commit tile never waits on it).
pub const TAP_DEPTH: usize = 4096;
/// Largest frame either side accepts: a batch holds up to [`BATCH_BYTES`] plus one account.
const MAX_FRAME: usize = 64 << 20;
/// A batch closes once it holds this much (an account larger than that goes alone).
const BATCH_BYTES: usize = 4 << 20;
/// Log held for a follower that does not keep up; beyond it the log is dropped and the next
/// session starts from a snapshot.
const MAX_PENDING_BYTES: usize = 256 << 20;
/// How long one batch may take to become durable on the follower (its bank takes writes
/// between batches; its commit is one slot and an fsync away).
const REPLY_TIMEOUT: Duration = Duration::from_secs(35);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A follower's connection with nothing to read for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_CONNECTIONS: usize = 16;
/// A connection must prove membership (the peer token, a frame of at most this much) within
/// [`HELLO_TIMEOUT`] before it may send anything larger or hold a slot for long.
const MAX_HELLO: usize = 4096;
const HELLO_TIMEOUT: Duration = Duration::from_secs(2);
/// The loop's pace when there is nothing to send.
const TICK: Duration = Duration::from_millis(5);
/// How often the follower looks for owners whose lease expired.
const FAILOVER_EVERY: Duration = Duration::from_millis(50);
/// After a failed send or a refused batch, before trying again.
const BACKOFF: Duration = Duration::from_millis(100);

/// One batch of the log, as it travels (bincode, behind a u32 length).
#[derive(Serialize, Deserialize)]
struct Batch {
    /// The cluster's peer token: only a member (it read the seed in etcd) can send one.
    token: String,
    owner: String,
    session: u64,
    seq: u64,
    /// First batch of a session: the partitions it covers. The follower deletes its copies
    /// of them that the snapshot does not hold.
    begin: Option<Vec<u16>>,
    /// Every batch from this one on leaves the replica complete (the snapshot is done).
    complete: bool,
    /// The owner's durable slot this batch brings the replica to.
    upto_slot: u64,
    accounts: Vec<WireAccount>,
    signatures: Vec<ForeignSignature>,
}

/// The follower's answer: the slot now durable there once the replica is complete.
type Reply = Result<Option<u64>, String>;

/// What the owner has to send: one durable slot's part for the follower.
struct LogSlot {
    slot: u64,
    accounts: Vec<WireAccount>,
    signatures: Vec<ForeignSignature>,
    bytes: usize,
}

pub struct Ctx {
    pub view: Arc<ClusterView>,
    pub db: Arc<AccountsDb>,
    pub chain: Arc<ChainState>,
    pub writes: Sender<ClusterWrite>,
    pub endpoints: Vec<String>,
    pub cluster: String,
    /// Durable slots from the commit tile, and whether any were dropped.
    pub slots: Receiver<ReplicaSlot>,
    pub overflowed: Arc<AtomicBool>,
    /// Bound before the node registered (its address is in the node's record).
    pub listener: TcpListener,
}

/// The replicas this node holds, by owner; the lock also orders writes against failover.
#[derive(Default)]
struct Replicas(parking_lot::Mutex<HashMap<String, Replica>>);

struct Replica {
    session: u64,
    next_seq: u64,
    covered: BTreeSet<u16>,
    /// Partitions whose writes were skipped because they were being moved here: if the move
    /// is given up, this replica of them is no longer whole (a new session replaces it).
    skipped: BTreeSet<u16>,
    complete: bool,
    last_reply: Option<u64>,
}

pub struct Replicator {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Replicator {
    pub fn start(ctx: Ctx) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let replicas = Arc::new(Replicas::default());
        let listener = ctx
            .listener
            .try_clone()
            .context("cloning the replica listener")?;
        listener.set_nonblocking(true)?;
        let ctx = Arc::new(ctx);
        let inbound = {
            let (ctx, replicas, stop) = (ctx.clone(), replicas.clone(), stop.clone());
            std::thread::Builder::new()
                .name("gc-replica-in".into())
                .spawn(move || accept(&ctx, &replicas, listener, &stop))
                .context("starting the replica listener")?
        };
        let outbound = {
            let (ctx, replicas, stop) = (ctx.clone(), replicas.clone(), stop.clone());
            std::thread::Builder::new()
                .name("gc-replicate".into())
                .spawn(move || Shipper::new(ctx, replicas).run(&stop))
                .context("starting the replication thread")?
        };
        Ok(Self {
            stop,
            threads: vec![inbound, outbound],
        })
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn token(view: &ClusterView) -> Option<String> {
    view.snapshot().clock.map(|c| c.peer_token())
}

fn write_frame(s: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    s.write_all(&(bytes.len() as u32).to_le_bytes())?;
    s.write_all(bytes)
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes (at most {MAX_FRAME})"),
        ));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

// ---- this node as owner -----------------------------------------------------------------

struct Session {
    /// The cluster's peer token, sent first on every connection.
    token: String,
    follower: String,
    addr: SocketAddr,
    id: u64,
    next_seq: u64,
    covered: BTreeSet<u16>,
    /// Snapshot batches not yet acknowledged; then the log.
    snapshot: VecDeque<(Vec<WireAccount>, Vec<ForeignSignature>)>,
    snapshot_slot: u64,
    conn: Option<TcpStream>,
}

struct Shipper {
    ctx: Arc<Ctx>,
    replicas: Arc<Replicas>,
    pending: VecDeque<LogSlot>,
    pending_bytes: usize,
    /// The log since the last snapshot is incomplete: the next session starts over.
    lost: bool,
    session: Option<Session>,
    retry_at: Instant,
    follower_written_at: Option<Instant>,
    /// Dead owners this node could not take over (said once each).
    warned: HashSet<String>,
    /// etcd says this node confirms alone (no current replica).
    alone_recorded: bool,
    failover_at: Instant,
}

impl Shipper {
    fn new(ctx: Arc<Ctx>, replicas: Arc<Replicas>) -> Self {
        Self {
            ctx,
            replicas,
            pending: VecDeque::new(),
            pending_bytes: 0,
            lost: false,
            session: None,
            retry_at: Instant::now(),
            follower_written_at: None,
            warned: HashSet::new(),
            alone_recorded: false,
            failover_at: Instant::now(),
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Acquire) {
            let snap = self.ctx.view.snapshot();
            let Some(map) = snap.map.clone() else {
                std::thread::sleep(TICK);
                continue;
            };
            let mine = owned(&map, self.ctx.view.me());
            self.take_log(&mine);
            // At the pace the cluster is read (a failover is an etcd transaction).
            if self.failover_at.elapsed() >= FAILOVER_EVERY {
                self.failover_at = Instant::now();
                if let Err(e) = fail_over(&self.ctx, &self.replicas, &snap, &mut self.warned) {
                    tracing::warn!("failover: {e:#}");
                }
            }
            let chain = &self.ctx.chain;
            self.ctx.view.counters.replica_lag_slots.store(
                chain
                    .local_durable_slot()
                    .saturating_sub(chain.replicated_slot()),
                Ordering::Relaxed,
            );
            let busy = match self.ship(&snap, &map, &mine) {
                Ok(busy) => busy,
                Err(e) => {
                    self.ctx
                        .view
                        .counters
                        .replica_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(node = %self.ctx.view.me(), "replication: {e:#}");
                    if let Some(s) = self.session.as_mut() {
                        s.conn = None;
                    }
                    self.retry_at = Instant::now() + BACKOFF;
                    false
                }
            };
            if !busy {
                std::thread::sleep(TICK);
            }
        }
    }

    /// Durable slots from the commit tile, cut to what the follower needs.
    fn take_log(&mut self, mine: &BTreeSet<u16>) {
        if self.ctx.overflowed.swap(false, Ordering::AcqRel) {
            self.lose_log();
        }
        let ctx = self.ctx.clone();
        let view = &ctx.view;
        while let Ok(s) = ctx.slots.try_recv() {
            let ours = |k: &[u8; 32]| view.partition_of(k).filter(|p| mine.contains(p));
            let accounts: Vec<WireAccount> = s
                .accounts
                .iter()
                .filter(|(k, _)| ours(&k.to_bytes()).is_some())
                .map(|(k, a)| WireAccount::new(k, a))
                .collect();
            let signatures: Vec<ForeignSignature> = s
                .statuses
                .iter()
                .filter_map(|st| {
                    let payer = fee_payer(&st.transaction)?;
                    Some(ForeignSignature::of(st, ours(&payer)?))
                })
                .collect();
            let bytes = accounts
                .iter()
                .map(WireAccount::approx_bytes)
                .sum::<usize>()
                + signatures.len() * 88
                + 16;
            self.pending_bytes += bytes;
            self.pending.push_back(LogSlot {
                slot: s.slot,
                accounts,
                signatures,
                bytes,
            });
            if self.pending_bytes > MAX_PENDING_BYTES {
                self.lose_log();
            }
        }
    }

    fn lose_log(&mut self) {
        self.lost = true;
        self.pending.clear();
        self.pending_bytes = 0;
    }

    /// One step: choose the follower, start a session, send one batch. True if it sent.
    fn ship(
        &mut self,
        snap: &cluster::Snapshot,
        map: &PartitionMap,
        mine: &BTreeSet<u16>,
    ) -> Result<bool> {
        let (view, chain) = (self.ctx.view.clone(), self.ctx.chain.clone());
        let me = view.me();
        // Nodes that take replication (`[cluster] replicate`).
        let live = snap
            .nodes
            .values()
            .filter(|n| n.replica.is_some())
            .map(|n| n.id.as_str());
        let Some(follower) = map.follower_for(me, live).map(str::to_string) else {
            // Alone: nothing to replicate to; confirmed on this node's disk, once etcd says
            // no replica of this node is current (none may take over from an old one).
            if !self.alone_recorded {
                self.record_session(None, 0)?;
                self.alone_recorded = true;
            }
            view.counters.unreplicated.store(1, Ordering::Relaxed);
            self.session = None;
            self.lose_log();
            chain.set_replicated(chain.local_durable_slot());
            return Ok(false);
        };
        self.alone_recorded = false;
        view.counters.unreplicated.store(0, Ordering::Relaxed);
        if map.followers.get(me) != Some(&follower) {
            self.name_follower(snap, map, &follower)?;
            return Ok(false);
        }
        if Instant::now() < self.retry_at {
            return Ok(false);
        }
        let addr = snap
            .nodes
            .get(&follower)
            .and_then(|n| n.replica)
            .ok_or_else(|| anyhow!("the follower {follower} takes no replication"))?;
        // A partition that left stops being covered, so that it coming back (whatever was
        // written to it elsewhere meanwhile) starts a new session with a snapshot.
        if let Some(s) = self.session.as_mut() {
            s.covered.retain(|p| mine.contains(p));
        }
        let fresh = match &self.session {
            Some(s) => s.follower != follower || s.addr != addr || !mine.is_subset(&s.covered),
            None => true,
        };
        if fresh || self.lost {
            self.begin_session(follower.clone(), addr, mine)?;
        }
        let s = self.session.as_mut().expect("a session");
        let token = token(&view).context("no cluster spec")?;
        // The next batch: a snapshot part, or as much of the log as fits.
        let (accounts, signatures, upto_slot, complete, log_slots) =
            if let Some((a, sigs)) = s.snapshot.front() {
                (
                    a.iter().map(WireAccount::clone_wire).collect(),
                    sigs.clone(),
                    s.snapshot_slot,
                    s.snapshot.len() == 1,
                    0,
                )
            } else if let Some(last) = self.pending.front().map(|l| l.slot) {
                let mut accounts = Vec::new();
                let mut signatures = Vec::new();
                let (mut n, mut bytes, mut upto) = (0, 0, last);
                let ours = |k: &[u8; 32]| view.partition_of(k).is_some_and(|p| mine.contains(&p));
                for l in &self.pending {
                    if n > 0 && bytes + l.bytes > BATCH_BYTES {
                        break;
                    }
                    // What left since it was logged is no longer this node's to replicate.
                    accounts.extend(
                        l.accounts
                            .iter()
                            .filter(|a| ours(&a.key))
                            .map(WireAccount::clone_wire),
                    );
                    signatures.extend(
                        l.signatures
                            .iter()
                            .filter(|s| mine.contains(&s.partition))
                            .cloned(),
                    );
                    bytes += l.bytes;
                    upto = l.slot;
                    n += 1;
                }
                (accounts, signatures, upto, true, n)
            } else {
                return Ok(false);
            };
        let batch = Batch {
            token,
            owner: me.to_string(),
            session: s.id,
            seq: s.next_seq,
            begin: (s.next_seq == 0).then(|| s.covered.iter().copied().collect()),
            complete,
            upto_slot,
            accounts,
            signatures,
        };
        let frame = bincode::serialize(&batch).context("encoding a batch")?;
        let reply = send(s, &frame)?;
        match reply {
            Ok(acked) => {
                s.next_seq += 1;
                if log_slots == 0 {
                    s.snapshot.pop_front();
                } else {
                    for l in self.pending.drain(..log_slots) {
                        self.pending_bytes -= l.bytes;
                    }
                }
                if let Some(slot) = acked {
                    chain.set_replicated(slot);
                }
                view.counters
                    .replica_batches
                    .fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(why) => {
                // Refused (out of order, not its follower yet): start over after a pause.
                self.session = None;
                bail!("{follower} refused a batch: {why}")
            }
        }
    }

    /// Writes `follower` into the map as this node's (at most every 100 ms: a lost race
    /// with another map write is retried).
    fn name_follower(
        &mut self,
        snap: &cluster::Snapshot,
        map: &PartitionMap,
        follower: &str,
    ) -> Result<()> {
        if self
            .follower_written_at
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return Ok(());
        }
        self.follower_written_at = Some(Instant::now());
        let (cluster, me, rev) = (
            self.ctx.cluster.clone(),
            self.ctx.view.me().to_string(),
            snap.map_revision,
        );
        let (map, f) = (map.clone(), follower.to_string());
        let written = block_on(async {
            let mut c = etcd::connect(&self.ctx.endpoints).await?;
            etcd::set_follower(&mut c, &cluster, &map, rev, &me, &f).await
        })
        .map_err(|e| anyhow!("{e}"))?;
        if let Some(next) = written {
            tracing::info!(follower, epoch = next.epoch, "named this node's follower");
            self.ctx.view.adopt_map(next);
        }
        Ok(())
    }

    /// Writes this node's current replication session into etcd.
    fn record_session(&self, follower: Option<String>, session: u64) -> Result<()> {
        let (cluster, me) = (self.ctx.cluster.clone(), self.ctx.view.me().to_string());
        let record = etcd::ReplicaSession { follower, session };
        block_on(async {
            let mut c = etcd::connect(&self.ctx.endpoints).await?;
            etcd::put_replica_session(&mut c, &cluster, &me, &record).await
        })
        .map_err(|e| anyhow!("recording the replication session: {e}"))
    }

    /// A new session: a snapshot of `mine` as of this node's durable slot, then the log after it.
    fn begin_session(
        &mut self,
        follower: String,
        addr: SocketAddr,
        mine: &BTreeSet<u16>,
    ) -> Result<()> {
        let ctx = self.ctx.clone();
        let (view, chain, db) = (&ctx.view, &ctx.chain, &ctx.db);
        let durable = chain.local_durable_slot();
        // The tile hands a slot over before marking it durable: what is queued up to
        // `durable` is in the snapshot; the log after it stays.
        self.lost = false;
        self.take_log(mine);
        self.lost = false;
        while self.pending.front().is_some_and(|l| l.slot <= durable) {
            let l = self.pending.pop_front().expect("non-empty");
            self.pending_bytes -= l.bytes;
        }
        let mut parts: VecDeque<(Vec<WireAccount>, Vec<ForeignSignature>)> = VecDeque::new();
        let mut part = Vec::new();
        let mut bytes = 0usize;
        db.for_each_durable(&mut |k, a| {
            if view
                .partition_of(&k.to_bytes())
                .is_some_and(|p| mine.contains(&p))
            {
                let w = WireAccount::new(k, a);
                bytes += w.approx_bytes();
                part.push(w);
                if bytes >= BATCH_BYTES {
                    parts.push_back((std::mem::take(&mut part), Vec::new()));
                    bytes = 0;
                }
            }
        })
        .map_err(|e| anyhow!("reading the partitions to replicate: {e}"))?;
        // Signatures whose blockhash may still be valid: run here, or brought by a move.
        let first = durable.saturating_sub(chain.validity_slots() + 1);
        let mut sigs: Vec<ForeignSignature> = chain
            .statuses_since(first)
            .into_iter()
            .filter(|st| st.slot <= durable)
            .filter_map(|st| {
                let p = view.partition_of(&fee_payer(&st.transaction)?)?;
                mine.contains(&p).then(|| ForeignSignature::of(&st, p))
            })
            .collect();
        for p in mine {
            sigs.extend(chain.foreign_since(*p, first));
        }
        parts.push_back((part, sigs));
        let id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        // Before its first batch: from now on only this session's replica may take over.
        self.record_session(Some(follower.clone()), id)?;
        tracing::info!(
            follower,
            partitions = mine.len(),
            batches = parts.len(),
            slot = durable,
            "replication: a new session, starting with a snapshot"
        );
        view.counters
            .replica_snapshots
            .fetch_add(1, Ordering::Relaxed);
        self.session = Some(Session {
            token: token(view).context("no cluster spec")?,
            follower,
            addr,
            id,
            next_seq: 0,
            covered: mine.clone(),
            snapshot: parts,
            snapshot_slot: durable,
            conn: None,
        });
        Ok(())
    }
}

impl WireAccount {
    fn clone_wire(&self) -> WireAccount {
        WireAccount {
            key: self.key,
            lamports: self.lamports,
            owner: self.owner,
            executable: self.executable,
            rent_epoch: self.rent_epoch,
            data: self.data.clone(),
        }
    }
}

/// Sends one frame on the session's connection (opened if needed) and reads the reply.
fn send(s: &mut Session, frame: &[u8]) -> Result<Reply> {
    if s.conn.is_none() {
        let c = TcpStream::connect_timeout(&s.addr, CONNECT_TIMEOUT)
            .with_context(|| format!("connecting to {} at {}", s.follower, s.addr))?;
        c.set_read_timeout(Some(REPLY_TIMEOUT))?;
        c.set_write_timeout(Some(REPLY_TIMEOUT))?;
        c.set_nodelay(true)?;
        s.conn = Some(c);
        let hello = bincode::serialize(&s.token)?;
        write_frame(s.conn.as_mut().expect("connected"), &hello).context("greeting")?;
    }
    let c = s.conn.as_mut().expect("connected");
    write_frame(c, frame).context("sending a batch")?;
    let raw = read_frame(c).context("reading the follower's answer")?;
    bincode::deserialize(&raw).context("an answer that does not decode")
}

fn owned(map: &PartitionMap, me: &str) -> BTreeSet<u16> {
    map.owners
        .iter()
        .enumerate()
        .filter(|(_, o)| *o == me)
        .map(|(p, _)| p as u16)
        .collect()
}

fn fee_payer(tx: &[u8]) -> Option<[u8; 32]> {
    let d = dataplane::parse::parse_transaction(tx).ok()?;
    (d.num_static_keys > 0).then(|| *d.static_key(tx, 0))
}

// ---- this node as follower --------------------------------------------------------------

fn accept(ctx: &Arc<Ctx>, replicas: &Arc<Replicas>, listener: TcpListener, stop: &AtomicBool) {
    let open = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((conn, peer)) => {
                if open.load(Ordering::Acquire) >= MAX_CONNECTIONS {
                    tracing::warn!(%peer, "replication: too many connections, one refused");
                    continue;
                }
                open.fetch_add(1, Ordering::AcqRel);
                let (ctx, replicas, open) = (ctx.clone(), replicas.clone(), open.clone());
                let spawned = std::thread::Builder::new()
                    .name("gc-replica-conn".into())
                    .spawn(move || {
                        if let Err(e) = serve(&ctx, &replicas, conn) {
                            tracing::debug!(%peer, "replication connection closed: {e:#}");
                        }
                        open.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    tracing::warn!(%peer, "replication: no thread for a connection");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(e) => {
                tracing::warn!("replication: accept failed: {e}");
                std::thread::sleep(BACKOFF);
            }
        }
    }
}

fn serve(ctx: &Ctx, replicas: &Replicas, mut conn: TcpStream) -> Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(HELLO_TIMEOUT))?;
    conn.set_write_timeout(Some(REPLY_TIMEOUT))?;
    conn.set_nodelay(true)?;
    // A small first frame with the token, quickly: a stranger holds a slot for 2 s at most and
    // makes this node allocate 4 KiB.
    let mut len = [0u8; 4];
    conn.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_HELLO {
        bail!("a greeting of {len} bytes");
    }
    let mut hello = vec![0u8; len];
    conn.read_exact(&mut hello)?;
    let claimed: String =
        bincode::deserialize(&hello).context("a greeting that does not decode")?;
    if token(&ctx.view).as_deref() != Some(claimed.as_str()) {
        bail!("not a member of this cluster");
    }
    conn.set_read_timeout(Some(IDLE_TIMEOUT))?;
    loop {
        let raw = read_frame(&mut conn)?;
        let reply: Reply = match bincode::deserialize::<Batch>(&raw) {
            Ok(b) => take_batch(ctx, replicas, b).map_err(|e| format!("{e:#}")),
            Err(e) => Err(format!("a batch that does not decode: {e}")),
        };
        write_frame(&mut conn, &bincode::serialize(&reply)?)?;
    }
}

/// Writes one batch of `b.owner`'s log durably here, in order.
fn take_batch(ctx: &Ctx, replicas: &Replicas, b: Batch) -> Result<Option<u64>> {
    let view = &ctx.view;
    if token(view).as_deref() != Some(b.token.as_str()) {
        bail!("not a member of this cluster");
    }
    // The locks first, then the map: a failover (which holds the first) and a partition being
    // moved in (whose writer holds the second) are seen.
    let mut all = replicas.0.lock();
    let _moves = view.foreign_writes.lock();
    let snap = view.snapshot();
    let map = snap.map.as_ref().context("no map yet")?;
    if map.followers.get(&b.owner).map(String::as_str) != Some(view.me()) {
        bail!(
            "{} is not {}'s follower at epoch {}",
            view.me(),
            b.owner,
            map.epoch
        );
    }
    // Only what the owner owns in this node's map is written: a late batch about a partition
    // that has moved on (perhaps to this node, which then runs it) must not overwrite it; nor
    // about a partition on its way to this node, whose pages are newer than the log's slots
    // before the drain.
    let moving_in = |p: u16| {
        snap.migrations
            .get(&p)
            .is_some_and(|(m, _)| m.to == view.me())
    };
    let theirs = |p: u16| map.owner(p) == Some(b.owner.as_str()) && !moving_in(p);
    let mut gone = Vec::new();
    if let Some(begin) = &b.begin {
        let covered: BTreeSet<u16> = begin.iter().copied().collect();
        if let Some(p) = covered.iter().find(|p| !theirs(**p)) {
            bail!(
                "partition {p} is not {}'s at epoch {} (the maps differ for now)",
                b.owner,
                map.epoch
            );
        }
        // What this node holds of the partitions and the snapshot does not: gone.
        let keep: HashSet<[u8; 32]> = b.accounts.iter().map(|a| a.key).collect();
        ctx.db
            .for_each_durable(&mut |k, _| {
                let key = k.to_bytes();
                if view
                    .partition_of(&key)
                    .is_some_and(|p| covered.contains(&p))
                    && !keep.contains(&key)
                {
                    gone.push((*k, AccountSharedData::default()));
                }
            })
            .map_err(|e| anyhow!("reading the replica: {e}"))?;
        all.insert(
            b.owner.clone(),
            Replica {
                session: b.session,
                next_seq: 0,
                covered,
                skipped: BTreeSet::new(),
                complete: false,
                last_reply: None,
            },
        );
    }
    // A move here that skipped this owner's writes was given up: the partition is the owner's
    // again, and this replica of it misses those writes.
    let abandoned = all
        .get(&b.owner)
        .and_then(|r| r.skipped.iter().copied().find(|p| theirs(*p)));
    if let Some(p) = abandoned {
        all.remove(&b.owner);
        bail!("partition {p} was not moved here after all: its replica starts again");
    }
    let r = all
        .get_mut(&b.owner)
        .filter(|r| r.session == b.session)
        .context("an unknown session")?;
    if b.seq + 1 == r.next_seq {
        // Written already; the answer was lost.
        return Ok(r.last_reply);
    }
    if b.seq != r.next_seq {
        bail!("batch {} out of order (expected {})", b.seq, r.next_seq);
    }
    let mut accounts = gone;
    for a in b.accounts {
        let Some(p) = view.partition_of(&a.key).filter(|p| r.covered.contains(p)) else {
            bail!(
                "account {} is not in the partitions replicated",
                Pubkey::new_from_array(a.key)
            );
        };
        if !theirs(p) {
            if moving_in(p) && map.owner(p) == Some(b.owner.as_str()) {
                r.skipped.insert(p);
            }
            continue;
        }
        accounts.push(a.into_account());
    }
    if let Some(s) = b
        .signatures
        .iter()
        .find(|s| !r.covered.contains(&s.partition))
    {
        bail!(
            "signature {} is not in the partitions replicated",
            s.signature
        );
    }
    write_durably(&ctx.writes, &ctx.chain, accounts, b.signatures)?;
    r.next_seq += 1;
    r.complete |= b.complete;
    r.last_reply = r.complete.then_some(b.upto_slot);
    view.counters
        .replica_batches_in
        .fetch_add(1, Ordering::Relaxed);
    Ok(r.last_reply)
}

/// Takes over the partitions of every owner this node follows whose registration is gone,
/// if the replica covers them all.
fn fail_over(
    ctx: &Ctx,
    replicas: &Replicas,
    snap: &cluster::Snapshot,
    warned: &mut HashSet<String>,
) -> Result<()> {
    let me = ctx.view.me();
    let Some(map) = &snap.map else {
        return Ok(());
    };
    let dead: Vec<&String> = map
        .followers
        .iter()
        .filter(|(owner, f)| *f == me && !snap.nodes.contains_key(*owner))
        .map(|(owner, _)| owner)
        .collect();
    if dead.is_empty() {
        // Replicas of owners this node no longer follows are forgotten.
        replicas
            .0
            .lock()
            .retain(|owner, _| map.followers.get(owner).map(String::as_str) == Some(me));
        return Ok(());
    }
    let Some((my_registration, _)) = snap.registrations.get(me) else {
        return Ok(());
    };
    // Held through the transaction: no replicated write lands after the takeover.
    let mut all = replicas.0.lock();
    for owner in dead {
        let theirs = owned(map, owner);
        let session = all
            .get(owner)
            .filter(|r| {
                r.complete && theirs.is_subset(&r.covered) && r.skipped.is_disjoint(&theirs)
            })
            .map(|r| r.session);
        let Some(session) = session else {
            // Nothing this node could take safely: the partitions wait for their owner.
            if warned.insert(owner.clone()) {
                tracing::warn!(owner = %owner, partitions = theirs.len(), "the owner is down and this node's replica of it is not complete: no failover");
            }
            continue;
        };
        let (cluster, owner_s, me_s, reg) = (
            ctx.cluster.clone(),
            owner.clone(),
            me.to_string(),
            *my_registration,
        );
        let taken = block_on(async {
            let mut c = etcd::connect(&ctx.endpoints).await?;
            etcd::fail_over(&mut c, &cluster, snap, &owner_s, &me_s, reg, session).await
        })
        .map_err(|e| anyhow!("{e}"))?;
        if let Some(next) = taken {
            all.remove(owner);
            ctx.view.counters.failovers.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(owner = %owner, partitions = theirs.len(), epoch = next.epoch, "failover: took over the partitions of a node whose lease expired");
            ctx.view.adopt_map(next);
            // One owner per read of the cluster: the map changed.
            return Ok(());
        }
    }
    Ok(())
}
