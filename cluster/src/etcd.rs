//! The cluster's state in etcd, and the node's agent that keeps it.
//!
//! Keys, under `/gigacompute/<cluster>/`:
//! - `spec`: the [`ClusterSpec`] (written once, by `gigacompute cluster init`);
//! - `map`: the [`PartitionMap`] (its epoch rises with every change; written only by etcd
//!   transactions that compare the previous value's revision);
//! - `nodes/<id>`: each live node's [`NodeRecord`], attached to that node's lease, so it
//!   disappears when the node stops renewing.
//!
//! The agent (thread `gc-cluster`) registers the node, renews its lease every third of the
//! TTL and re-reads the cluster every `poll_ms`. It tells the [`ClusterView`] how long the
//! lease is certainly alive: the renewal's send time plus 90% of the TTL etcd granted, which
//! is never later than etcd's own expiry. Past that the node stops serving by itself, before
//! etcd lets anyone else take its id or its partitions (fencing by lease).

use crate::map::{ClusterSpec, MapError, PartitionMap, check_node_id};
use crate::migration::{Migration, MigrationState};
use crate::view::{ClusterView, NodeRecord, Snapshot};
pub use etcd_client::Client;
use etcd_client::{Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Every key of one cluster starts with this.
pub fn prefix(cluster: &str) -> String {
    format!("/gigacompute/{cluster}/")
}

fn spec_key(cluster: &str) -> String {
    format!("{}spec", prefix(cluster))
}

fn map_key(cluster: &str) -> String {
    format!("{}map", prefix(cluster))
}

fn node_key(cluster: &str, id: &str) -> String {
    format!("{}nodes/{id}", prefix(cluster))
}

fn replica_key(cluster: &str, owner: &str) -> String {
    format!("{}replicas/{owner}", prefix(cluster))
}

/// An owner's current replication session: written by the owner before a session's first
/// batch (and, with no follower, before it confirms alone). A failover requires the
/// follower's session to be this one, so a replica from an older session never takes over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaSession {
    pub follower: Option<String>,
    pub session: u64,
}

/// Records `owner`'s replication session.
pub async fn put_replica_session(
    client: &mut Client,
    cluster: &str,
    owner: &str,
    s: &ReplicaSession,
) -> Result<(), ClusterError> {
    bounded(client.put(replica_key(cluster, owner), to_json(s), None)).await?;
    Ok(())
}

fn migration_key(cluster: &str, partition: u16) -> String {
    format!("{}migrations/{partition}", prefix(cluster))
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Map(#[from] MapError),
    #[error("cluster {0:?} already exists (its spec and map are in etcd)")]
    Exists(String),
    #[error(
        "node id {id:?} is registered by another live process (lease {lease:x}); it is free \
         once that lease expires"
    )]
    IdTaken { id: String, lease: i64 },
    #[error("{0}")]
    Invalid(String),
}

/// How long one etcd request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn connect(endpoints: &[String]) -> Result<Client, ClusterError> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_timeout(REQUEST_TIMEOUT);
    bounded(Client::connect(endpoints, Some(opts))).await
}

/// A request bounded in time: a stream call is not covered by the channel's timeout.
async fn bounded<T>(
    f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ClusterError::Timeout(REQUEST_TIMEOUT)),
    }
}

/// Runs `f` on a fresh single-threaded runtime (the CLI's and tests' way in).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime")
        .block_on(f)
}

/// Creates the cluster: its spec and the epoch-1 map dealing `partitions` over `nodes`.
/// Fails, changing nothing, if the cluster exists.
pub async fn init(
    client: &mut Client,
    name: &str,
    nodes: &[String],
    partitions: u16,
    slot_ms: u64,
) -> Result<(ClusterSpec, PartitionMap), ClusterError> {
    check_node_id(name)?;
    let seed: [u8; 32] = rand::random();
    let spec = ClusterSpec {
        name: name.to_string(),
        partitions,
        genesis_unix_ms: crate::clock::unix_ms(),
        slot_ms,
        blockhash_seed: seed.iter().map(|b| format!("{b:02x}")).collect(),
    };
    spec.check()?;
    let map = PartitionMap::initial(partitions, nodes)?;
    let txn = Txn::new()
        .when([
            Compare::create_revision(spec_key(name), CompareOp::Equal, 0),
            Compare::create_revision(map_key(name), CompareOp::Equal, 0),
        ])
        .and_then([
            TxnOp::put(spec_key(name), to_json(&spec), None),
            TxnOp::put(map_key(name), to_json(&map), None),
        ]);
    if !bounded(client.txn(txn)).await?.succeeded() {
        return Err(ClusterError::Exists(name.to_string()));
    }
    Ok((spec, map))
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("plain data serialises")
}

/// Everything under the cluster's prefix, decoded. Values that do not decode are reported
/// in `bad` and left out.
pub async fn read(
    client: &mut Client,
    cluster: &str,
) -> Result<(Snapshot, Vec<String>), ClusterError> {
    let pfx = prefix(cluster);
    let resp = bounded(client.get(pfx.clone(), Some(GetOptions::new().with_prefix()))).await?;
    let mut snap = Snapshot {
        revision: resp.header().map_or(0, |h| h.revision()),
        ..Default::default()
    };
    let mut bad = Vec::new();
    for kv in resp.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let name = key.strip_prefix(&pfx).unwrap_or(&key);
        let decoded = match name {
            "spec" => serde_json::from_slice(kv.value()).map(|s| snap.spec = Some(s)),
            "map" => serde_json::from_slice(kv.value()).map(|m| {
                snap.map = Some(m);
                snap.map_revision = kv.mod_revision();
            }),
            _ => {
                if let Some(id) = name.strip_prefix("nodes/") {
                    serde_json::from_slice::<NodeRecord>(kv.value()).map(|n| {
                        if n.id == id {
                            snap.registrations
                                .insert(n.id.clone(), (kv.create_revision(), kv.lease()));
                            snap.nodes.insert(n.id.clone(), n);
                        }
                    })
                } else if let Some(p) = name.strip_prefix("migrations/") {
                    serde_json::from_slice::<Migration>(kv.value()).map(|m| {
                        if p.parse() == Ok(m.partition) {
                            snap.migrations.insert(m.partition, (m, kv.mod_revision()));
                        }
                    })
                } else {
                    Ok(())
                }
            }
        };
        if let Err(e) = decoded {
            bad.push(format!("{key}: {e}"));
        }
    }
    if let Some(spec) = &snap.spec {
        match crate::clock::ClusterClock::new(spec) {
            Ok(c) => snap.clock = Some(c),
            Err(e) => {
                bad.push(format!("spec: {e}"));
                snap.spec = None;
            }
        }
    }
    if let Some(map) = &snap.map {
        let fits = match &snap.spec {
            Some(spec) => map.check(spec).map_err(|e| e.to_string()),
            None => Err("no valid spec".to_string()),
        };
        if let Err(e) = fits {
            bad.push(format!("map: {e}"));
            snap.map = None;
        }
    }
    Ok((snap, bad))
}

/// Requests moving `partition` to node `to`: refused unless `to` is live, is not already the
/// owner, and no other move of the partition is in flight. The record names the map epoch
/// it applies to, and is written only if the map is still that one.
pub async fn request_move(
    client: &mut Client,
    cluster: &str,
    partition: u16,
    to: &str,
    reason: &str,
) -> Result<Migration, ClusterError> {
    let (snap, _) = read(client, cluster).await?;
    let map = snap
        .map
        .ok_or_else(|| ClusterError::Invalid(format!("cluster {cluster:?} has no map")))?;
    let from = map
        .owner(partition)
        .ok_or_else(|| ClusterError::Invalid(format!("no partition {partition}")))?
        .to_string();
    if from == to {
        return Err(ClusterError::Invalid(format!(
            "{to} already owns partition {partition}"
        )));
    }
    if !snap.nodes.contains_key(to) {
        return Err(ClusterError::Invalid(format!(
            "node {to:?} holds no live lease"
        )));
    }
    if !snap.nodes.contains_key(&from) {
        return Err(ClusterError::Invalid(format!(
            "the owner {from:?} is down: its partitions move by failover, not by a move"
        )));
    }
    let m = Migration {
        partition,
        from,
        to: to.to_string(),
        epoch: map.epoch,
        state: MigrationState::Requested,
        reason: reason.to_string(),
        requested_unix_ms: crate::clock::unix_ms(),
        drain_unix_ms: None,
        drained_slot: None,
        pages: None,
        source_registration: None,
        accounts: None,
        signatures: None,
    };
    let txn = Txn::new()
        .when([
            Compare::mod_revision(map_key(cluster), CompareOp::Equal, snap.map_revision),
            Compare::create_revision(migration_key(cluster, partition), CompareOp::Equal, 0),
            Compare::create_revision(node_key(cluster, to), CompareOp::Greater, 0),
        ])
        .and_then([TxnOp::put(
            migration_key(cluster, partition),
            to_json(&m),
            None,
        )]);
    if !bounded(client.txn(txn)).await?.succeeded() {
        return Err(ClusterError::Invalid(format!(
            "partition {partition}: the map changed, or a move is already in flight"
        )));
    }
    Ok(m)
}

/// Replaces the record at `revision` (a state change); false if it changed meanwhile.
pub async fn update_move(
    client: &mut Client,
    cluster: &str,
    m: &Migration,
    revision: i64,
) -> Result<bool, ClusterError> {
    let key = migration_key(cluster, m.partition);
    let txn = Txn::new()
        .when([Compare::mod_revision(
            key.clone(),
            CompareOp::Equal,
            revision,
        )])
        .and_then([TxnOp::put(key, to_json(m), None)]);
    Ok(bounded(client.txn(txn)).await?.succeeded())
}

/// Gives the move up (the record at `revision` is deleted); false if it changed meanwhile.
pub async fn abort_move(
    client: &mut Client,
    cluster: &str,
    partition: u16,
    revision: i64,
) -> Result<bool, ClusterError> {
    let key = migration_key(cluster, partition);
    let txn = Txn::new()
        .when([Compare::mod_revision(
            key.clone(),
            CompareOp::Equal,
            revision,
        )])
        .and_then([TxnOp::delete(key, None)]);
    Ok(bounded(client.txn(txn)).await?.succeeded())
}

/// Completes a ready move: one transaction gives the partition to its destination, raises
/// the epoch and deletes the record, if neither the map nor the record changed.
pub async fn flip(
    client: &mut Client,
    cluster: &str,
    m: &Migration,
    revision: i64,
) -> Result<PartitionMap, ClusterError> {
    let (snap, _) = read(client, cluster).await?;
    let mut map = snap
        .map
        .ok_or_else(|| ClusterError::Invalid(format!("cluster {cluster:?} has no map")))?;
    if map.epoch != m.epoch || map.owner(m.partition) != Some(m.from.as_str()) {
        return Err(ClusterError::Invalid(format!(
            "partition {}: the map moved on (epoch {}) since the move was requested (epoch {})",
            m.partition, map.epoch, m.epoch
        )));
    }
    map.owners[m.partition as usize] = m.to.clone();
    map.epoch += 1;
    let key = migration_key(cluster, m.partition);
    let source = m.source_registration.ok_or_else(|| {
        ClusterError::Invalid(format!("partition {}: the move is not ready", m.partition))
    })?;
    let txn = Txn::new()
        .when([
            Compare::mod_revision(map_key(cluster), CompareOp::Equal, snap.map_revision),
            Compare::mod_revision(key.clone(), CompareOp::Equal, revision),
            // The source that exported is the one registered now, and the new owner is live.
            Compare::create_revision(node_key(cluster, &m.from), CompareOp::Equal, source),
            Compare::create_revision(node_key(cluster, &m.to), CompareOp::Greater, 0),
        ])
        .and_then([
            TxnOp::put(map_key(cluster), to_json(&map), None),
            TxnOp::delete(key, None),
        ]);
    if !bounded(client.txn(txn)).await?.succeeded() {
        return Err(ClusterError::Invalid(format!(
            "partition {}: the map or the move changed during the flip",
            m.partition
        )));
    }
    Ok(map)
}

/// Names `follower` as `node`'s follower in the map (epoch + 1), if the map is still the one
/// at `map_revision` and the follower is live. False when either changed (read again).
pub async fn set_follower(
    client: &mut Client,
    cluster: &str,
    map: &PartitionMap,
    map_revision: i64,
    node: &str,
    follower: &str,
) -> Result<Option<PartitionMap>, ClusterError> {
    let mut next = map.clone();
    next.followers
        .insert(node.to_string(), follower.to_string());
    next.epoch += 1;
    let txn = Txn::new()
        .when([
            Compare::mod_revision(map_key(cluster), CompareOp::Equal, map_revision),
            Compare::create_revision(node_key(cluster, follower), CompareOp::Greater, 0),
        ])
        .and_then([TxnOp::put(map_key(cluster), to_json(&next), None)]);
    Ok(bounded(client.txn(txn)).await?.succeeded().then_some(next))
}

/// Failover: `me`, the follower of `dead`, takes every partition `dead` owns (epoch + 1) and
/// `dead`'s moves in flight are deleted, in one transaction that requires the map unchanged
/// since `map_revision`, `dead` unregistered (its lease expired, so it fenced itself before),
/// `me` registered at `my_registration`, and `dead`'s recorded replication session the one
/// `me` holds (`session`). None when any of that changed.
pub async fn fail_over(
    client: &mut Client,
    cluster: &str,
    snap: &Snapshot,
    dead: &str,
    me: &str,
    my_registration: i64,
    session: u64,
) -> Result<Option<PartitionMap>, ClusterError> {
    let Some(map) = &snap.map else {
        return Ok(None);
    };
    if map.followers.get(dead).map(String::as_str) != Some(me) {
        return Ok(None);
    }
    let mut next = map.clone();
    for o in next.owners.iter_mut().filter(|o| *o == dead) {
        *o = me.to_string();
    }
    next.followers.remove(dead);
    next.epoch += 1;
    let mut ops = vec![TxnOp::put(map_key(cluster), to_json(&next), None)];
    ops.extend(
        snap.migrations
            .values()
            .filter(|(m, _)| m.from == dead || m.to == dead)
            .map(|(m, _)| TxnOp::delete(migration_key(cluster, m.partition), None)),
    );
    let txn = Txn::new()
        .when([
            Compare::mod_revision(map_key(cluster), CompareOp::Equal, snap.map_revision),
            Compare::create_revision(node_key(cluster, dead), CompareOp::Equal, 0),
            Compare::create_revision(node_key(cluster, me), CompareOp::Equal, my_registration),
            // The dead node's last session is the one this replica holds.
            Compare::value(
                replica_key(cluster, dead),
                CompareOp::Equal,
                to_json(&ReplicaSession {
                    follower: Some(me.to_string()),
                    session,
                }),
            ),
        ])
        .and_then(ops);
    Ok(bounded(client.txn(txn)).await?.succeeded().then_some(next))
}

fn heat_key(cluster: &str, node: &str) -> String {
    format!("{}heat/{node}", prefix(cluster))
}

/// Publishes a node's heat (opaque JSON, see `appliance::scaleout::rebalance`).
pub async fn put_heat(
    client: &mut Client,
    cluster: &str,
    node: &str,
    value: &[u8],
) -> Result<(), ClusterError> {
    bounded(client.put(heat_key(cluster, node), value, None)).await?;
    Ok(())
}

/// Every node's last published heat, by node id.
pub async fn read_heat(
    client: &mut Client,
    cluster: &str,
) -> Result<Vec<(String, Vec<u8>)>, ClusterError> {
    let pfx = format!("{}heat/", prefix(cluster));
    let resp = bounded(client.get(pfx.clone(), Some(GetOptions::new().with_prefix()))).await?;
    Ok(resp
        .kvs()
        .iter()
        .map(|kv| {
            let id = String::from_utf8_lossy(kv.key())
                .trim_start_matches(&pfx)
                .to_string();
            (id, kv.value().to_vec())
        })
        .collect())
}

/// Seconds of lease left for each live node (etcd's view).
pub async fn lease_ttls(
    client: &mut Client,
    cluster: &str,
) -> Result<Vec<(String, i64)>, ClusterError> {
    let pfx = format!("{}nodes/", prefix(cluster));
    let resp = bounded(client.get(pfx.clone(), Some(GetOptions::new().with_prefix()))).await?;
    let mut out = Vec::new();
    for kv in resp.kvs() {
        let id = String::from_utf8_lossy(kv.key())
            .trim_start_matches(&pfx)
            .to_string();
        let ttl = bounded(client.lease_time_to_live(kv.lease(), None))
            .await
            .map_or(-1, |r| r.ttl());
        out.push((id, ttl));
    }
    Ok(out)
}

/// The agent's settings (`[cluster]`).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub endpoints: Vec<String>,
    pub cluster: String,
    pub record: NodeRecord,
    pub lease_ttl_s: u64,
    pub poll_ms: u64,
}

/// The node's membership: a thread that holds its lease and keeps its view current.
pub struct Agent {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Agent {
    pub fn start(cfg: AgentConfig, view: Arc<ClusterView>) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("gc-cluster".into())
            .spawn(move || block_on(run(cfg, view, flag)))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops renewing and revokes the lease, so the node leaves the cluster at once.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Session {
    client: Client,
    lease: i64,
}

/// Registers the node: a new lease and, in one transaction, its record if the id is free.
async fn register(
    cfg: &AgentConfig,
    client: &mut Client,
    view: &ClusterView,
) -> Result<i64, ClusterError> {
    let key = node_key(&cfg.cluster, &cfg.record.id);
    let sent = Instant::now();
    let lease = bounded(client.lease_grant(cfg.lease_ttl_s as i64, None)).await?;
    let txn = Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            key.clone(),
            to_json(&cfg.record),
            Some(PutOptions::new().with_lease(lease.id())),
        )])
        .or_else([TxnOp::get(key, None)]);
    let resp = bounded(client.txn(txn)).await?;
    if !resp.succeeded() {
        let holder = resp
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                etcd_client::TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.lease()),
                _ => None,
            })
            .unwrap_or(0);
        let _ = bounded(client.lease_revoke(lease.id())).await;
        return Err(ClusterError::IdTaken {
            id: cfg.record.id.clone(),
            lease: holder,
        });
    }
    view.counters.lease_grants.fetch_add(1, Ordering::Relaxed);
    view.lease_alive_until(sent + lease_margin(lease.ttl()));
    Ok(lease.id())
}

/// etcd's answer that a lease is gone: etcd-client turns a first keep-alive reply with no
/// TTL into this error, and etcd itself answers "etcdserver: requested lease not found".
fn lease_not_found(e: &ClusterError) -> bool {
    match e {
        ClusterError::Etcd(etcd_client::Error::LeaseKeepAliveError(m)) => {
            m.contains("lease not found")
        }
        ClusterError::Etcd(etcd_client::Error::GRpcStatus(s)) => {
            s.message().contains("lease not found")
        }
        _ => false,
    }
}

/// What of a granted TTL the node counts on: 90% of it from the request's send time.
fn lease_margin(ttl_s: i64) -> Duration {
    Duration::from_millis((ttl_s.max(0) as u64) * 900)
}

/// One renewal; Ok(false) when etcd says the lease is gone, Err when etcd did not answer.
async fn renew(s: &mut Session, view: &ClusterView) -> Result<bool, ClusterError> {
    let sent = Instant::now();
    let (mut keeper, mut stream) = match bounded(s.client.lease_keep_alive(s.lease)).await {
        Err(e) if lease_not_found(&e) => return Ok(false),
        r => r?,
    };
    bounded(keeper.keep_alive()).await?;
    let reply = match bounded(stream.message()).await {
        Err(e) if lease_not_found(&e) => return Ok(false),
        r => r?,
    };
    match reply {
        Some(r) if r.ttl() > 0 => {
            view.lease_alive_until(sent + lease_margin(r.ttl()));
            view.counters.lease_renewals.fetch_add(1, Ordering::Relaxed);
            Ok(true)
        }
        _ => Ok(false),
    }
}

async fn run(cfg: AgentConfig, view: Arc<ClusterView>, stop: Arc<AtomicBool>) {
    let poll = Duration::from_millis(cfg.poll_ms.max(10));
    let renew_every = Duration::from_millis(cfg.lease_ttl_s * 1000 / 3);
    let mut session: Option<Session> = None;
    // A lease that may still be alive after a lost connection: tried before a new one.
    let mut old_lease: Option<i64> = None;
    let mut next_renew = Instant::now();
    let mut last_warning: Option<Instant> = None;
    let mut warn = |what: &str, e: &ClusterError, view: &ClusterView| {
        view.counters.etcd_errors.fetch_add(1, Ordering::Relaxed);
        if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
            tracing::warn!(node = %view.me(), "cluster: {what}: {e}");
            last_warning = Some(Instant::now());
        }
    };
    while !stop.load(Ordering::Acquire) {
        if session.is_none() {
            match connect(&cfg.endpoints).await {
                Ok(client) => {
                    let mut s = Session { client, lease: 0 };
                    // An error is not an expiry: etcd may be restarting, and it restores its
                    // leases when it comes back (its node key with them), so the old lease
                    // is kept and tried again rather than a new one fought for (the id stays
                    // taken until the old lease runs out). Fencing does not wait on this:
                    // the node stops serving once the lease it last confirmed runs out.
                    let resumed = match old_lease {
                        Some(l) => {
                            s.lease = l;
                            match renew(&mut s, &view).await {
                                Ok(alive) => alive,
                                Err(e) => {
                                    warn("renewing the lease after reconnecting", &e, &view);
                                    tokio::time::sleep(poll).await;
                                    continue;
                                }
                            }
                        }
                        None => false,
                    };
                    if resumed {
                        tracing::info!(node = %view.me(), lease = %format!("{:x}", s.lease), "cluster: lease renewed after reconnecting");
                        session = Some(s);
                        next_renew = Instant::now() + renew_every;
                    } else {
                        if old_lease.take().is_some() {
                            view.lease_lost();
                            view.counters.lease_losses.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(node = %view.me(), "cluster: lease expired; not serving until registered again");
                        }
                        match register(&cfg, &mut s.client, &view).await {
                            Ok(lease) => {
                                tracing::info!(node = %view.me(), lease = %format!("{lease:x}"), "cluster: registered");
                                s.lease = lease;
                                session = Some(s);
                                next_renew = Instant::now() + renew_every;
                            }
                            Err(e) => warn("registering", &e, &view),
                        }
                    }
                }
                Err(e) => warn("connecting", &e, &view),
            }
        }
        if let Some(s) = session.as_mut()
            && Instant::now() >= next_renew
        {
            match renew(s, &view).await {
                Ok(true) => next_renew = Instant::now() + renew_every,
                Ok(false) => {
                    view.lease_lost();
                    view.counters.lease_losses.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(node = %view.me(), "cluster: lease expired; not serving until registered again");
                    session = None;
                    old_lease = None;
                    continue;
                }
                Err(e) => {
                    warn("renewing the lease", &e, &view);
                    old_lease = Some(s.lease);
                    session = None;
                }
            }
        }
        if let Some(s) = session.as_mut() {
            match read(&mut s.client, &cfg.cluster).await {
                Ok((snap, bad)) => {
                    for b in bad {
                        tracing::error!(node = %view.me(), "cluster: ignoring an invalid value in etcd: {b}");
                    }
                    // The node's own registration must be its own: a key deleted by hand
                    // (or taken by another process) means the lease no longer fences it.
                    if snap.registrations.get(view.me()).map(|r| r.1) != Some(s.lease) {
                        view.lease_lost();
                        view.counters.lease_losses.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(node = %view.me(), "cluster: this node's registration is gone or not its own; registering again");
                        old_lease = None;
                        session = None;
                        continue;
                    }
                    view.publish(snap);
                }
                Err(e) => {
                    warn("reading the cluster", &e, &view);
                    old_lease = Some(s.lease);
                    session = None;
                }
            }
        }
        tokio::time::sleep(poll).await;
    }
    view.lease_lost();
    if let Some(mut s) = session {
        let _ = bounded(s.client.lease_revoke(s.lease)).await;
    }
}
