//! Heat-driven rebalancing (`[cluster] rebalance`): the partitions' measured load decides
//! what moves and where.
//!
//! Every node publishes, every [`PUBLISH_EVERY`], the transactions per second its bank
//! admitted for each partition it owns (`/gigacompute/<cluster>/heat/<node>`). The leader —
//! the live node with the smallest id, so no election is needed; a second leader for a
//! moment only races etcd transactions that refuse the loser — sums each node's load from
//! the fresh records and, when the hottest node carries more than [`HOT_OVER_MEAN`] times
//! the mean and at least `rebalance_min_tps` more than the coldest, moves the hottest of its
//! partitions whose move lowers the maximum to the coldest node (a node that just joined owns
//! nothing and is the coldest: load flows to it). One move at a time, none while another is
//! in flight, then a cooldown, so the map cannot thrash. Scale-in: when the whole cluster
//! admitted fewer than `consolidate_below_tps` for `consolidate_after_s`, the leader empties
//! the live node owning the fewest partitions onto the one owning the most ([`consolidate`]),
//! one move per step under the same rules, until one node owns everything; the operator's
//! `gigacompute cluster drain` empties a chosen node at any time.

use super::migrate::Ctx;
use cluster::Snapshot;
use cluster::etcd;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often a node publishes its heat and the leader looks at the cluster.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(2);
/// A node is hot above this multiple of the mean load.
pub const HOT_OVER_MEAN: f64 = 1.25;
/// Heat older than this is not used (its node stopped publishing).
const STALE_MS: u64 = 3 * 2_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heat {
    pub unix_ms: u64,
    /// Transactions per second admitted, by partition (only those with any).
    pub tps: BTreeMap<u16, f64>,
}

/// `[cluster] rebalance_*` and `consolidate_*`.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub min_tps: f64,
    pub cooldown: Duration,
    /// 0: no consolidation.
    pub consolidate_below_tps: f64,
    pub consolidate_after: Duration,
}

impl Policy {
    pub fn of(c: &cluster::ClusterConfig) -> Self {
        Self {
            min_tps: c.rebalance_min_tps,
            cooldown: Duration::from_secs(c.rebalance_cooldown_s),
            consolidate_below_tps: c.consolidate_below_tps,
            consolidate_after: Duration::from_secs(c.consolidate_after_s),
        }
    }
}

pub struct Rebalancer {
    last_publish: Instant,
    last_counts: Vec<u64>,
    last_move: Option<Instant>,
    /// Since when the cluster's load has been below `consolidate_below_tps`.
    idle_since: Option<Instant>,
    policy: Policy,
}

impl Rebalancer {
    pub fn new(policy: Policy) -> Self {
        Self {
            last_publish: Instant::now(),
            last_counts: Vec::new(),
            last_move: None,
            idle_since: None,
            policy,
        }
    }

    /// Publishes this node's heat and, on the leader, maybe requests one move.
    pub fn step(&mut self, ctx: &Ctx, snap: &Snapshot) -> anyhow::Result<()> {
        if self.last_publish.elapsed() < PUBLISH_EVERY {
            return Ok(());
        }
        let Some(map) = &snap.map else {
            return Ok(());
        };
        let secs = self.last_publish.elapsed().as_secs_f64();
        self.last_publish = Instant::now();
        let counts = ctx.view.heat(map.owners.len());
        let mut tps = BTreeMap::new();
        if self.last_counts.len() == counts.len() {
            for (p, (now, before)) in counts.iter().zip(&self.last_counts).enumerate() {
                let rate = now.saturating_sub(*before) as f64 / secs;
                if rate > 0.0 {
                    tps.insert(p as u16, rate);
                }
            }
        }
        self.last_counts = counts;
        let heat = Heat {
            unix_ms: cluster::clock::unix_ms(),
            tps,
        };
        let (cluster, me) = (ctx.cluster.clone(), ctx.view.me().to_string());
        let heats = super::migrate::etcd_call(ctx, async move |c| {
            etcd::put_heat(
                c,
                &cluster,
                &me,
                &serde_json::to_vec(&heat).unwrap_or_default(),
            )
            .await?;
            etcd::read_heat(c, &cluster).await
        })?;
        let leader = snap.nodes.keys().next().map(String::as_str);
        if leader != Some(ctx.view.me()) {
            // Idleness is measured by the leader while it leads: a node that leads again
            // starts counting afresh.
            self.idle_since = None;
            return Ok(());
        }
        if !snap.migrations.is_empty()
            || self
                .last_move
                .is_some_and(|t| t.elapsed() < self.policy.cooldown)
        {
            return Ok(());
        }
        let now = cluster::clock::unix_ms();
        let fresh: BTreeMap<String, Heat> = heats
            .into_iter()
            .filter_map(|(n, v)| Some((n, serde_json::from_slice::<Heat>(&v).ok()?)))
            .filter(|(n, h)| snap.nodes.contains_key(n) && now.saturating_sub(h.unix_ms) < STALE_MS)
            .collect();
        // Every live node must have reported: a missing one's load is unknown (and so is
        // whether the cluster is idle).
        if fresh.len() != snap.nodes.len() || snap.nodes.len() < 2 {
            self.idle_since = None;
            return Ok(());
        }
        let total: f64 = fresh.values().flat_map(|h| h.tps.values()).sum();
        let idle =
            self.policy.consolidate_below_tps > 0.0 && total < self.policy.consolidate_below_tps;
        if !idle {
            self.idle_since = None;
        }
        let (chosen, why) = if let Some(m) = choose(map, &fresh, self.policy.min_tps) {
            (m, "rebalance: hot node")
        } else if idle
            && self.idle_since.get_or_insert_with(Instant::now).elapsed()
                >= self.policy.consolidate_after
            && let Some(m) = consolidate(map, &snap.nodes)
        {
            (m, "consolidate: idle cluster")
        } else {
            return Ok(());
        };
        let (p, from, to) = chosen;
        let cluster = ctx.cluster.clone();
        let to2 = to.clone();
        super::migrate::etcd_call(ctx, async move |c| {
            etcd::request_move(c, &cluster, p, &to2, why).await
        })?;
        tracing::info!(partition = p, from = %from, to = %to, total_tps = total, "{why}: a partition moves");
        self.last_move = Some(Instant::now());
        Ok(())
    }
}

/// The next scale-in move of an idle cluster: the lowest partition of the live node that
/// owns the fewest (ties: the largest id) to the live node that owns the most (ties: the
/// smallest id, the leader's side), so partitions pile up on as few nodes as possible; none
/// when one node owns them all, or while an owner is down (failover's business first).
pub fn consolidate<V>(
    map: &cluster::PartitionMap,
    live: &BTreeMap<String, V>,
) -> Option<(u16, String, String)> {
    let by = map.by_node();
    if by.len() < 2 || by.keys().any(|n| !live.contains_key(*n)) {
        return None;
    }
    let rank = |n: &str, ps: &[u16]| (ps.len(), std::cmp::Reverse(n.to_string()));
    let (from, parts) = by.iter().min_by_key(|(n, ps)| rank(n, ps))?;
    let (to, _) = by
        .iter()
        .filter(|(n, _)| *n != from)
        .max_by_key(|(n, ps)| rank(n, ps))?;
    Some((*parts.first()?, from.to_string(), to.to_string()))
}

/// The move that lowers the hottest node's load the most without making its destination
/// the new hottest: (partition, from, to), or none when no node is hot.
pub fn choose(
    map: &cluster::PartitionMap,
    heat: &BTreeMap<String, Heat>,
    min_tps: f64,
) -> Option<(u16, String, String)> {
    let part_heat = |p: u16| -> f64 {
        map.owner(p)
            .and_then(|o| heat.get(o))
            .and_then(|h| h.tps.get(&p))
            .copied()
            .unwrap_or(0.0)
    };
    let load = |n: &str| -> f64 {
        map.owners
            .iter()
            .enumerate()
            .filter(|(_, o)| o.as_str() == n)
            .map(|(p, _)| part_heat(p as u16))
            .sum()
    };
    let loads: Vec<(String, f64)> = heat.keys().map(|n| (n.clone(), load(n))).collect();
    let mean = loads.iter().map(|(_, l)| l).sum::<f64>() / loads.len() as f64;
    let (hot, hot_load) = loads.iter().max_by(|a, b| a.1.total_cmp(&b.1))?.clone();
    let (cold, cold_load) = loads.iter().min_by(|a, b| a.1.total_cmp(&b.1))?.clone();
    if hot == cold || hot_load <= HOT_OVER_MEAN * mean || hot_load - cold_load < min_tps {
        return None;
    }
    let mut candidates: Vec<(u16, f64)> = map
        .owners
        .iter()
        .enumerate()
        .filter(|(_, o)| **o == hot)
        .map(|(p, _)| (p as u16, part_heat(p as u16)))
        .filter(|(_, h)| *h > 0.0)
        .collect();
    // A node keeps at least one partition to the end of this step.
    if candidates.len() < 2 {
        return None;
    }
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
    candidates
        .into_iter()
        .find(|(_, h)| cold_load + h < hot_load)
        .map(|(p, _)| (p, hot, cold))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heat(rates: &[(u16, f64)]) -> Heat {
        Heat {
            unix_ms: 0,
            tps: rates.iter().copied().collect(),
        }
    }

    #[test]
    fn a_hot_node_gives_its_hottest_movable_partition_to_the_coldest() {
        let map = cluster::PartitionMap::initial(6, &["a".into(), "b".into(), "c".into()]).unwrap();
        // a owns 0 and 3, b owns 1 and 4, c owns 2 and 5.
        let mut h = BTreeMap::new();
        h.insert("a".to_string(), heat(&[(0, 900.0), (3, 300.0)]));
        h.insert("b".to_string(), heat(&[(1, 200.0), (4, 100.0)]));
        h.insert("c".to_string(), heat(&[(2, 100.0)]));
        // a: 1200, b: 300, c: 100 — moving 0 (900) to c makes c 1000 < 1200: it is taken.
        assert_eq!(choose(&map, &h, 100.0), Some((0, "a".into(), "c".into())));
        // Balanced within 1.25x of the mean: nothing moves.
        let mut even = BTreeMap::new();
        for (n, p) in [("a", 0u16), ("b", 1), ("c", 2)] {
            even.insert(n.to_string(), heat(&[(p, 500.0), (p + 3, 10.0)]));
        }
        assert_eq!(choose(&map, &even, 100.0), None);
        // Hot, but by less than the floor: nothing moves.
        assert_eq!(choose(&map, &h, 5_000.0), None);
    }

    #[test]
    fn an_idle_cluster_piles_onto_the_fullest_node() {
        let live = |ids: &[&str]| -> BTreeMap<String, ()> {
            ids.iter().map(|n| (n.to_string(), ())).collect()
        };
        let abc = live(&["a", "b", "c"]);
        // a: 0, 3, 6; b: 1, 4; c: 2, 5.
        let mut map =
            cluster::PartitionMap::initial(7, &["a".into(), "b".into(), "c".into()]).unwrap();
        // c (fewest, largest id among b and c) gives its lowest to a (most).
        assert_eq!(consolidate(&map, &abc), Some((2, "c".into(), "a".into())));
        for (p, o) in [(2, "a"), (5, "a")] {
            map.owners[p] = o.into();
        }
        assert_eq!(consolidate(&map, &abc), Some((1, "b".into(), "a".into())));
        for p in [1, 4] {
            map.owners[p] = "a".into();
        }
        // One owner: done.
        assert_eq!(consolidate(&map, &abc), None);
        // An owner that is down: nothing moves until failover.
        let map = cluster::PartitionMap::initial(4, &["a".into(), "b".into()]).unwrap();
        assert_eq!(consolidate(&map, &live(&["a"])), None);
        // Equal counts: the larger id empties onto the smaller.
        assert_eq!(
            consolidate(&map, &live(&["a", "b"])),
            Some((1, "b".into(), "a".into()))
        );
    }

    #[test]
    fn a_node_that_joined_empty_takes_load() {
        let map = cluster::PartitionMap::initial(4, &["a".into(), "b".into()]).unwrap();
        let mut h = BTreeMap::new();
        h.insert("a".to_string(), heat(&[(0, 300.0), (2, 300.0)]));
        h.insert("b".to_string(), heat(&[(1, 300.0), (3, 300.0)]));
        h.insert("n".to_string(), heat(&[]));
        let (p, from, to) = choose(&map, &h, 100.0).unwrap();
        assert_eq!(to, "n");
        assert!(from == "a" || from == "b");
        assert_eq!(map.owner(p), Some(from.as_str()));
    }
}
