//! What a node knows of the cluster, shared by its tiles: the latest spec, partition map and
//! live nodes read from etcd ([`Snapshot`], replaced whole by the agent), whether this node
//! may serve ([`ClusterView::serving`]: its lease is known alive and it has a map), and the
//! routing rule that follows from them ([`ClusterView::route`]).
//!
//! Readers (the net tile per datagram, the bank per transaction, RPC per call) take the
//! snapshot's `Arc` under a read lock held for a pointer copy; the agent swaps in a new one
//! at most a few times a second.

use crate::clock::ClusterClock;
use crate::map::{ClusterSpec, PartitionMap};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// What a node registers in etcd under its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    /// JSON-RPC (HTTP) address other nodes forward calls to.
    pub rpc: SocketAddr,
    /// UDP transaction port other nodes forward datagrams to.
    pub tpu: SocketAddr,
    /// Where this node's forwarded datagrams come from: a receiving node does not take
    /// them for repeats of what it forwarded itself (a partition that moved comes back).
    pub forward: SocketAddr,
    /// TCP address where this node takes the replication log of the nodes it follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<SocketAddr>,
    /// Its PubSub (WebSocket) endpoint, where a router passes WebSocket connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubsub: Option<SocketAddr>,
    /// The node's identity key (base58).
    pub identity: String,
    pub started_unix_ms: u64,
    pub version: String,
}

/// The cluster as last read from etcd.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub spec: Option<ClusterSpec>,
    pub clock: Option<ClusterClock>,
    pub map: Option<PartitionMap>,
    /// Nodes whose lease is alive, by id.
    pub nodes: BTreeMap<String, NodeRecord>,
    /// etcd's revision this was read at.
    pub revision: i64,
    /// The map value's own revision (what a change of the map compares).
    pub map_revision: i64,
    /// Partition moves in flight, with each record's revision.
    pub migrations: BTreeMap<u16, (crate::Migration, i64)>,
    /// Each live node's registration: (its key's create revision, its lease).
    pub registrations: BTreeMap<String, (i64, i64)>,
}

/// Where a transaction (or a read) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node owns every account it names.
    Local,
    /// One other node owns them all.
    Forward(Box<NodeRecord>),
    /// Its accounts are owned by more than one node (ids sorted).
    Split(Vec<String>),
    /// The owner has no live lease (it is down and not yet replaced).
    OwnerDown(String),
    /// This node may not serve: its lease is not known alive, or there is no map yet.
    NotServing,
}

/// Cluster counters, exported as `gigacompute_cluster_*`.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    pub forwarded_udp: AtomicU64,
    pub forwarded_rpc: AtomicU64,
    pub forward_errors: AtomicU64,
    /// Datagrams a peer forwarded here that this node would have sent straight back (the
    /// two disagreed about the owner for a moment): held until the map is read again.
    pub bounced: AtomicU64,
    pub cross_partition: AtomicU64,
    pub owner_down: AtomicU64,
    pub not_serving: AtomicU64,
    pub not_owner: AtomicU64,
    pub lease_grants: AtomicU64,
    /// Transactions held while their partition moved away from here, and held ones dropped
    /// because the park was full.
    pub parked: AtomicU64,
    pub park_full: AtomicU64,
    /// Partitions moved in and out, and moves given up.
    pub migrations_in: AtomicU64,
    pub migrations_out: AtomicU64,
    pub migrations_aborted: AtomicU64,
    /// The last move's pause: from the source's drain to the destination's flip, ms.
    pub last_pause_ms: AtomicU64,
    pub lease_renewals: AtomicU64,
    pub lease_losses: AtomicU64,
    pub etcd_errors: AtomicU64,
    pub snapshots: AtomicU64,
    /// Replication, as owner: batches the follower acknowledged, snapshots begun (a new
    /// follower, a lost log), failed sends; 1 while this node has no follower (alone).
    pub replica_batches: AtomicU64,
    pub replica_snapshots: AtomicU64,
    pub replica_errors: AtomicU64,
    pub unreplicated: AtomicU64,
    /// Slots durable here that the follower has not acknowledged (not yet confirmed).
    pub replica_lag_slots: AtomicU64,
    /// Replication, as follower: batches written here, and owners taken over.
    pub replica_batches_in: AtomicU64,
    pub failovers: AtomicU64,
}

pub struct ClusterView {
    me: String,
    snapshot: RwLock<Arc<Snapshot>>,
    base: Instant,
    /// Milliseconds after `base` until which this node's lease is known alive (0: never).
    serving_until_ms: AtomicU64,
    /// Accounts every node holds and nobody owns: sysvars, builtins, the genesis programs.
    global: HashSet<[u8; 32]>,
    /// Accounts of this node alone: its faucet and its fee collector.
    local: HashSet<[u8; 32]>,
    pub counters: ClusterCounters,
    /// Transactions admitted per partition (by the fee payer's): the partitions' heat.
    heat: Box<[AtomicU64]>,
    /// The partition this node is moving away (+1; 0: none): the bank parks its traffic.
    draining: AtomicU32,
    /// The bank's slot after which the draining partition did not change (`u64::MAX`: not
    /// yet).
    drained_slot: AtomicU64,
    /// Raw transactions parked while their partition moved, with their total bytes.
    parked: Mutex<(VecDeque<Vec<u8>>, usize)>,
    /// The pages of this node's outgoing partition, served to the destination.
    export: Mutex<Option<Export>>,
    /// The live nodes' forwarding addresses.
    forwarders: RwLock<HashSet<SocketAddr>>,
    /// Datagrams a peer sent that this node would send straight back (the two maps disagree
    /// for a moment): held until the maps have been read again, then routed anew.
    deferred: Mutex<(VecDeque<(Instant, Vec<u8>)>, usize)>,
    drain_generation: AtomicU64,
    /// Held by whoever writes accounts of a partition this node does not own yet (a replica
    /// batch; a moved partition being taken in), so that the two never interleave: a late
    /// replica of the old owner must not land after the move's newer pages.
    pub foreign_writes: Mutex<()>,
    /// Cross-partition transactions held while their partitions gather on one node.
    pub colocate: crate::colocate::Gathering,
}

/// Bytes of transactions parked at most during one move: beyond it they are dropped and
/// counted (`park_full`), as the verify ring drops when full.
pub const MAX_PARKED_BYTES: usize = 32 << 20;
/// Bytes of bouncing datagrams held at most (see [`ClusterView::defer`]).
pub const MAX_DEFERRED_BYTES: usize = 8 << 20;

/// An exported partition: what the destination pulls, page by page.
#[derive(Clone)]
pub struct Export {
    pub partition: u16,
    /// The revision of the migration record it answers.
    pub revision: i64,
    pub pages: Arc<Vec<Vec<u8>>>,
}

impl ClusterView {
    pub fn new(
        me: impl Into<String>,
        global: impl IntoIterator<Item = [u8; 32]>,
        local: impl IntoIterator<Item = [u8; 32]>,
    ) -> Self {
        Self {
            me: me.into(),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            base: Instant::now(),
            serving_until_ms: AtomicU64::new(0),
            global: global.into_iter().collect(),
            local: local.into_iter().collect(),
            counters: ClusterCounters::default(),
            heat: (0..crate::map::MAX_PARTITIONS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            draining: AtomicU32::new(0),
            drained_slot: AtomicU64::new(u64::MAX),
            parked: Mutex::new((VecDeque::new(), 0)),
            export: Mutex::new(None),
            forwarders: RwLock::new(HashSet::new()),
            drain_generation: AtomicU64::new(0),
            deferred: Mutex::new((VecDeque::new(), 0)),
            foreign_writes: Mutex::new(()),
            colocate: Default::default(),
        }
    }

    /// Hold a datagram that would bounce between this node and a peer until both have read
    /// the map again (within [`MAX_DEFERRED_BYTES`]; beyond it dropped and counted).
    pub fn defer(&self, bytes: &[u8]) {
        let mut d = self.deferred.lock();
        if d.1 + bytes.len() > MAX_DEFERRED_BYTES {
            self.counters.park_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        d.1 += bytes.len();
        d.0.push_back((Instant::now(), bytes.to_vec()));
        self.counters.bounced.fetch_add(1, Ordering::Relaxed);
    }

    /// The deferred datagrams held at least `age`, oldest first.
    pub fn take_deferred(&self, age: std::time::Duration) -> Vec<Vec<u8>> {
        let mut d = self.deferred.lock();
        let mut out = Vec::new();
        while d.0.front().is_some_and(|(t, _)| t.elapsed() >= age) {
            let (_, b) = d.0.pop_front().expect("non-empty");
            d.1 -= b.len();
            out.push(b);
        }
        out
    }

    /// The path this node's peers answer its calls on (`None` before the spec is read).
    pub fn peer_path(&self) -> Option<String> {
        let token = self.snapshot.read().clock?.peer_token();
        Some(format!("{}/{token}", crate::peer::FORWARDED_PATH))
    }

    /// Whether an HTTP request for `path` comes from a peer (it knows the cluster's token).
    pub fn is_peer_path(&self, path: &str) -> bool {
        let Some(want) = self.peer_path() else {
            return false;
        };
        // Constant time over the token's length: the path is the only secret in the request.
        path.len() == want.len()
            && path
                .bytes()
                .zip(want.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// Whether a datagram from `addr` was forwarded by a live node of the cluster.
    pub fn is_forwarder(&self, addr: &SocketAddr) -> bool {
        self.forwarders.read().contains(addr)
    }

    /// A map this node just wrote (a flip it made): used at once, before the next read of
    /// etcd, so that nothing forwarded to it as the new owner is sent back.
    pub fn adopt_map(&self, map: PartitionMap) {
        let mut s = (*self.snapshot()).clone();
        s.map = Some(map);
        self.publish(s);
    }

    /// The partition whose data `key` is, under the current map: `None` for an account
    /// every node holds (a sysvar, a builtin, a genesis program) or this node's own (its
    /// faucet, its fee collector), which never move, or when there is no map.
    pub fn partition_of(&self, key: &[u8; 32]) -> Option<u16> {
        if self.global.contains(key) || self.local.contains(key) {
            return None;
        }
        let s = self.snapshot.read();
        let m = s.map.as_ref()?;
        Some(crate::map::partition_of(key, m.owners.len() as u16))
    }

    /// Start moving `partition` away: from now the bank parks its transactions.
    pub fn begin_drain(&self, partition: u16) {
        self.drained_slot.store(u64::MAX, Ordering::Release);
        self.drain_generation.fetch_add(1, Ordering::AcqRel);
        self.draining
            .store(u32::from(partition) + 1, Ordering::Release);
    }

    /// Which drain this is (each [`ClusterView::begin_drain`] starts a new one).
    pub fn drain_generation(&self) -> u64 {
        self.drain_generation.load(Ordering::Acquire)
    }

    /// The move ended (done or given up): nothing is parked from now on; what was parked is
    /// returned, oldest first.
    pub fn end_drain(&self) -> Vec<Vec<u8>> {
        let mut p = self.parked.lock();
        self.draining.store(0, Ordering::Release);
        self.drained_slot.store(u64::MAX, Ordering::Release);
        *self.export.lock() = None;
        p.1 = 0;
        std::mem::take(&mut p.0).into()
    }

    pub fn draining(&self) -> Option<u16> {
        match self.draining.load(Ordering::Acquire) {
            0 => None,
            p => Some((p - 1) as u16),
        }
    }

    /// The bank closed `slot` with nothing of the draining partition queued or running.
    pub fn set_drained(&self, slot: u64) {
        self.drained_slot.store(slot, Ordering::Release);
    }

    pub fn drained_slot(&self) -> Option<u64> {
        match self.drained_slot.load(Ordering::Acquire) {
            u64::MAX => None,
            s => Some(s),
        }
    }

    /// Hold a transaction of `partition` (its bytes), within [`MAX_PARKED_BYTES`], if that
    /// partition is still draining; false if it is not (the drain ended meanwhile: the
    /// caller routes it as it would any other).
    pub fn park(&self, partition: u16, bytes: &[u8]) -> bool {
        let mut p = self.parked.lock();
        if self.draining() != Some(partition) {
            return false;
        }
        if p.1 + bytes.len() > MAX_PARKED_BYTES {
            self.counters.park_full.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        p.1 += bytes.len();
        p.0.push_back(bytes.to_vec());
        self.counters.parked.fetch_add(1, Ordering::Relaxed);
        true
    }

    pub fn set_export(&self, e: Export) {
        *self.export.lock() = Some(e);
    }

    /// Page `page` of the export of `partition` for the migration record at `revision`.
    pub fn export_page(&self, partition: u16, revision: i64, page: usize) -> Option<Vec<u8>> {
        let e = self.export.lock();
        let e = e
            .as_ref()
            .filter(|e| e.partition == partition && e.revision == revision)?;
        e.pages.get(page).cloned()
    }

    /// The bank admitted a transaction paid by `payer`: its partition gets warmer.
    pub fn count_admitted(&self, payer: &[u8; 32]) {
        // A node's own accounts (its faucet's airdrops) are no partition's load.
        if let Some(p) = self.partition_of(payer) {
            self.heat[usize::from(p)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Transactions admitted here so far, per partition (the first `partitions`).
    pub fn heat(&self, partitions: usize) -> Vec<u64> {
        self.heat
            .iter()
            .take(partitions)
            .map(|h| h.load(Ordering::Relaxed))
            .collect()
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().clone()
    }

    /// Replaces the snapshot. Its map never goes back to an older epoch (a read that raced
    /// with [`ClusterView::adopt_map`], or a lagging etcd member after a reconnect): the
    /// newer map is kept, under the same lock.
    pub fn publish(&self, mut s: Snapshot) {
        let forwarders = s.nodes.values().map(|n| n.forward).collect();
        *self.forwarders.write() = forwarders;
        let mut current = self.snapshot.write();
        if let Some(old) = &current.map {
            let same_cluster = s.spec.is_none() || s.spec == current.spec;
            if same_cluster && s.map.as_ref().is_none_or(|m| m.epoch < old.epoch) {
                s.map = Some(old.clone());
            }
        }
        *current = Arc::new(s);
        self.counters.snapshots.fetch_add(1, Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// The lease is alive until `at` (an instant no later than etcd's own expiry).
    pub fn lease_alive_until(&self, at: Instant) {
        let ms = at.saturating_duration_since(self.base).as_millis() as u64;
        self.serving_until_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// The lease is gone: stop serving now.
    pub fn lease_lost(&self) {
        self.serving_until_ms.store(0, Ordering::Release);
    }

    /// Milliseconds of lease left (0: not serving).
    pub fn lease_left_ms(&self) -> u64 {
        self.serving_until_ms
            .load(Ordering::Acquire)
            .saturating_sub(self.now_ms())
    }

    /// Whether this node may admit and execute: its lease is known alive and a map exists.
    pub fn serving(&self) -> bool {
        self.lease_left_ms() > 0 && self.snapshot.read().map.is_some()
    }

    pub fn is_global(&self, key: &[u8; 32]) -> bool {
        self.global.contains(key)
    }

    /// Whether `key` is one of this node's own accounts (kept here alone, whatever the map).
    pub fn is_local(&self, key: &[u8; 32]) -> bool {
        self.local.contains(key)
    }

    /// Whether this node may write `key` now (the bank's check, at admission).
    pub fn may_write(&self, key: &[u8; 32]) -> bool {
        if self.local.contains(key) {
            return true;
        }
        let s = self.snapshot.read();
        s.map.as_ref().is_some_and(|m| m.owner_of(key) == self.me)
    }

    /// Where a transaction goes, from the accounts it must own: the ones it writes and the
    /// ones it reads that are not held everywhere (program ids are left out by the caller).
    pub fn route<'a>(&self, keys: impl IntoIterator<Item = &'a [u8; 32]>) -> Route {
        if self.lease_left_ms() == 0 {
            return Route::NotServing;
        }
        self.read_route(keys)
    }

    /// Where a read of these accounts goes: as [`ClusterView::route`], but a node whose
    /// lease is not confirmed still answers reads of what it holds.
    pub fn read_route<'a>(&self, keys: impl IntoIterator<Item = &'a [u8; 32]>) -> Route {
        let s = self.snapshot();
        let Some(map) = &s.map else {
            return Route::NotServing;
        };
        let mut owner: Option<&str> = None;
        let mut others: Vec<&str> = Vec::new();
        for k in keys {
            if self.global.contains(k) || self.local.contains(k) {
                continue;
            }
            let o = map.owner_of(k);
            match owner {
                None => owner = Some(o),
                Some(first) if first == o => {}
                Some(_) => {
                    if !others.contains(&o) {
                        others.push(o)
                    }
                }
            }
        }
        let Some(owner) = owner else {
            return Route::Local;
        };
        if !others.is_empty() {
            let mut ids: Vec<String> = others.into_iter().map(String::from).collect();
            ids.push(owner.to_string());
            ids.sort();
            ids.dedup();
            return Route::Split(ids);
        }
        if owner == self.me {
            return Route::Local;
        }
        match s.nodes.get(owner) {
            Some(n) => Route::Forward(Box::new(n.clone())),
            None => Route::OwnerDown(owner.to_string()),
        }
    }

    /// Holds a transaction that names these accounts, split over several owners, until its
    /// partitions gather on one node ([`crate::colocate`]); refused (counted) when the held
    /// transactions are at their bound, it names too many partitions, or co-location is off.
    pub fn hold_split<'a>(
        &self,
        bytes: &[u8],
        keys: impl IntoIterator<Item = &'a [u8; 32]>,
    ) -> Result<(), crate::colocate::NotHeld> {
        let s = self.snapshot();
        let (true, Some(map)) = (self.colocate.enabled(), &s.map) else {
            return Err(crate::colocate::NotHeld::Off);
        };
        let count = map.owners.len() as u16;
        let mut partitions: Vec<u16> = keys
            .into_iter()
            .filter(|k| !self.global.contains(*k) && !self.local.contains(*k))
            .map(|k| crate::map::partition_of(k, count))
            .collect();
        partitions.sort_unstable();
        partitions.dedup();
        self.colocate.hold(bytes, partitions)
    }

    /// Live nodes other than this one (for reads that must ask every owner).
    pub fn peers(&self) -> Vec<NodeRecord> {
        self.snapshot()
            .nodes
            .values()
            .filter(|n| n.id != self.me)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::partition_of;
    use std::time::Duration;

    fn record(id: &str, port: u16) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            rpc: format!("127.0.0.1:{port}").parse().unwrap(),
            tpu: format!("127.0.0.1:{}", port + 1).parse().unwrap(),
            forward: format!("127.0.0.1:{}", port + 2).parse().unwrap(),
            replica: None,
            pubsub: None,
            identity: String::new(),
            started_unix_ms: 0,
            version: String::new(),
        }
    }

    /// A key in partition `p` of 4.
    fn key_in(p: u16) -> [u8; 32] {
        (0u32..)
            .map(|i| {
                let mut k = [0u8; 32];
                k[..4].copy_from_slice(&i.to_le_bytes());
                k
            })
            .find(|k| partition_of(k, 4) == p)
            .unwrap()
    }

    fn view(me: &str, live: &[&str]) -> ClusterView {
        let v = ClusterView::new(me, [[9u8; 32]], [[8u8; 32]]);
        let map = PartitionMap::initial(4, &["a".into(), "b".into()]).unwrap();
        let nodes = live
            .iter()
            .enumerate()
            .map(|(i, id)| (id.to_string(), record(id, 9000 + 10 * i as u16)))
            .collect();
        v.publish(Snapshot {
            map: Some(map),
            nodes,
            ..Default::default()
        });
        v
    }

    #[test]
    fn no_lease_no_service() {
        let v = view("a", &["a", "b"]);
        assert_eq!(v.route([&key_in(0)]), Route::NotServing);
        assert!(!v.serving());
        v.lease_alive_until(Instant::now() + Duration::from_secs(5));
        assert!(v.serving());
        assert_eq!(v.route([&key_in(0)]), Route::Local);
        v.lease_lost();
        assert!(!v.serving());
    }

    #[test]
    fn routes_by_owner_and_names_a_split() {
        let v = view("a", &["a", "b"]);
        v.lease_alive_until(Instant::now() + Duration::from_secs(5));
        // a owns partitions 0 and 2, b owns 1 and 3.
        assert_eq!(v.route([&key_in(0), &key_in(2)]), Route::Local);
        match v.route([&key_in(1), &key_in(3)]) {
            Route::Forward(n) => assert_eq!(n.id, "b"),
            r => panic!("{r:?}"),
        }
        assert_eq!(
            v.route([&key_in(0), &key_in(1)]),
            Route::Split(vec!["a".into(), "b".into()])
        );
        // Global and node-local accounts never decide the route.
        assert_eq!(v.route([&[9u8; 32], &[8u8; 32], &key_in(2)]), Route::Local);
        assert!(v.may_write(&[8u8; 32]) && v.may_write(&key_in(2)) && !v.may_write(&key_in(1)));
    }

    #[test]
    fn an_owner_without_a_lease_is_down() {
        let v = view("a", &["a"]);
        v.lease_alive_until(Instant::now() + Duration::from_secs(5));
        assert_eq!(v.route([&key_in(1)]), Route::OwnerDown("b".into()));
    }
    #[test]
    fn a_view_never_goes_back_to_an_older_map() {
        let v = view("a", &["a", "b"]);
        let mut newer = PartitionMap::initial(4, &["b".into(), "a".into()]).unwrap();
        newer.epoch = 3;
        v.adopt_map(newer.clone());
        // A read of etcd that raced with the flip still carries epoch 1.
        v.publish(Snapshot {
            map: Some(PartitionMap::initial(4, &["a".into(), "b".into()]).unwrap()),
            ..Default::default()
        });
        assert_eq!(v.snapshot().map.as_ref().unwrap().epoch, 3);
        assert_eq!(v.snapshot().map.as_ref().unwrap().owners, newer.owners);
    }

    #[test]
    fn only_the_draining_partition_parks_within_its_bound() {
        let v = view("a", &["a", "b"]);
        assert!(!v.park(1, b"tx"), "nothing drains yet");
        v.begin_drain(1);
        assert!(v.park(1, b"tx1") && v.park(1, b"tx2"));
        assert!(!v.park(2, b"tx3"), "another partition is not parked");
        assert!(
            v.park(1, &vec![0u8; MAX_PARKED_BYTES]),
            "over the bound: dropped, counted"
        );
        assert_eq!(v.counters.park_full.load(Ordering::Relaxed), 1);
        assert_eq!(v.end_drain(), vec![b"tx1".to_vec(), b"tx2".to_vec()]);
        assert!(!v.park(1, b"tx4"), "the drain ended");
        assert_eq!(v.draining(), None);
    }

    #[test]
    fn global_and_local_accounts_are_in_no_partition() {
        let v = view("a", &["a", "b"]);
        assert_eq!(v.partition_of(&[9u8; 32]), None);
        assert_eq!(v.partition_of(&[8u8; 32]), None);
        assert_eq!(v.partition_of(&key_in(3)), Some(3));
    }

    #[test]
    fn the_peer_path_needs_the_clusters_token() {
        let v = view("a", &["a"]);
        assert_eq!(v.peer_path(), None);
        let spec = crate::ClusterSpec {
            name: "c".into(),
            partitions: 4,
            genesis_unix_ms: 0,
            slot_ms: 400,
            blockhash_seed: "07".repeat(32),
        };
        let mut s = (*v.snapshot()).clone();
        s.clock = Some(ClusterClock::new(&spec).unwrap());
        v.publish(s);
        let path = v.peer_path().unwrap();
        assert!(path.starts_with("/cluster/forwarded/") && v.is_peer_path(&path));
        assert!(!v.is_peer_path("/cluster/forwarded"));
        assert!(!v.is_peer_path(&path.replace('0', "1").replace('a', "b")));
        assert!(!v.is_peer_path("/"));
    }
}
