//! `[cluster]`: scale-out over several appliances, coordinated by etcd.

use crate::map::check_node_id;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub enabled: bool,
    /// The cluster's name: its keys in etcd live under `/gigacompute/<name>/`.
    pub name: String,
    /// This node's id, unique in the cluster (the partition map names owners by it).
    pub node_id: String,
    /// etcd's client endpoints.
    pub etcd: Vec<String>,
    /// The node's lease: it serves only while a renewal within this many seconds succeeded.
    pub lease_ttl_s: u64,
    /// How often the node re-reads the cluster (map, nodes) from etcd.
    pub poll_ms: u64,
    /// How long `run` waits at start for etcd and the cluster's spec before it gives up.
    pub join_timeout_s: u64,
    /// The address other nodes reach this one at, when `rpc.bind` / `net.bind` listen on
    /// every interface (0.0.0.0); empty: the bind address as it is.
    pub advertise_host: String,
    /// Move partitions off a node whose measured load is above 1.25x the mean (to the
    /// coldest node, one at a time); the leader (the live node with the smallest id) decides.
    pub rebalance: bool,
    /// ...only when the hottest node carries at least this many transactions per second
    /// more than the coldest.
    pub rebalance_min_tps: f64,
    /// Seconds between two rebalancing moves.
    pub rebalance_cooldown_s: u64,
    /// Scale-in (with `rebalance`): when the whole cluster has admitted fewer transactions
    /// per second than this for `consolidate_after_s`, the leader empties the live node that
    /// owns the fewest partitions onto the one that owns the most, one move at a time, until
    /// one node owns them all (an emptied node can be stopped). Below `rebalance_min_tps`, so
    /// that a consolidated cluster is hot by the rebalancing rule only once load returns.
    /// 0: off.
    pub consolidate_below_tps: f64,
    pub consolidate_after_s: u64,
    /// Confirm a slot only once this node's follower (another node, named in the map) holds
    /// it durably too, and take over the partitions of the nodes this one follows when their
    /// lease expires. Off: slots are confirmed on this node's disk alone, this node follows
    /// no one, and its partitions wait for it when it is down.
    pub replicate: bool,
    /// A transaction whose accounts are owned by several nodes is held while its partitions
    /// move to the owner of the lowest-numbered one, then runs there (one move at a time in
    /// the cluster; each partition moved for this at most every 5 s by a node). Off: such a
    /// transaction is refused, naming the owners.
    pub colocate: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            name: "gigacompute".into(),
            node_id: String::new(),
            etcd: vec!["http://127.0.0.1:2379".into()],
            lease_ttl_s: 5,
            poll_ms: 200,
            join_timeout_s: 30,
            advertise_host: String::new(),
            rebalance: true,
            rebalance_min_tps: 500.0,
            rebalance_cooldown_s: 10,
            consolidate_below_tps: 0.0,
            consolidate_after_s: 300,
            replicate: true,
            colocate: true,
        }
    }
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        check_node_id(&self.name).map_err(|e| format!("cluster.name: {e}"))?;
        if self.node_id.is_empty() {
            return Err("cluster.node_id must be set when cluster.enabled".into());
        }
        check_node_id(&self.node_id).map_err(|e| format!("cluster.node_id: {e}"))?;
        if self.etcd.is_empty() || self.etcd.len() > 16 {
            return Err("cluster.etcd must list 1..=16 endpoints".into());
        }
        if !(2..=600).contains(&self.lease_ttl_s) {
            return Err("cluster.lease_ttl_s must be 2..=600".into());
        }
        if self.poll_ms < 10 || self.poll_ms * 3 > self.lease_ttl_s * 1000 {
            return Err(
                "cluster.poll_ms must be at least 10 and at most a third of the lease".into(),
            );
        }
        if !(1..=3600).contains(&self.join_timeout_s) {
            return Err("cluster.join_timeout_s must be 1..=3600".into());
        }
        if !(self.rebalance_min_tps.is_finite() && self.rebalance_min_tps >= 0.0) {
            return Err("cluster.rebalance_min_tps must be a number >= 0".into());
        }
        if !(1..=86_400).contains(&self.rebalance_cooldown_s) {
            return Err("cluster.rebalance_cooldown_s must be 1..=86400".into());
        }
        if !(self.consolidate_below_tps.is_finite()
            && self.consolidate_below_tps >= 0.0
            && (self.consolidate_below_tps == 0.0
                || self.consolidate_below_tps < self.rebalance_min_tps))
        {
            return Err(
                "cluster.consolidate_below_tps must be 0 (off) or a number below rebalance_min_tps"
                    .into(),
            );
        }
        if self.consolidate_below_tps > 0.0 && !self.rebalance {
            return Err(
                "cluster.consolidate_below_tps needs cluster.rebalance (the leader's rebalancing \
                 step consolidates)"
                    .into(),
            );
        }
        if !(1..=86_400).contains(&self.consolidate_after_s) {
            return Err("cluster.consolidate_after_s must be 1..=86400".into());
        }
        if !self.advertise_host.is_empty()
            && self.advertise_host.parse::<std::net::IpAddr>().is_err()
        {
            return Err("cluster.advertise_host must be an IP address".into());
        }
        Ok(())
    }

    /// Where others reach a socket bound at `bind`.
    pub fn advertised(&self, bind: std::net::SocketAddr) -> std::net::SocketAddr {
        match self.advertise_host.parse::<std::net::IpAddr>() {
            Ok(ip) if bind.ip().is_unspecified() => std::net::SocketAddr::new(ip, bind.port()),
            _ => bind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enabled_cluster_needs_a_node_id_and_sane_timings() {
        let mut c = ClusterConfig::default();
        c.validate().unwrap();
        c.enabled = true;
        assert!(c.validate().unwrap_err().contains("node_id"));
        c.node_id = "n1".into();
        c.validate().unwrap();
        c.poll_ms = 2_000;
        assert!(c.validate().unwrap_err().contains("poll_ms"));
        c.poll_ms = 200;
        c.node_id = "a/b".into();
        assert!(c.validate().is_err());
        c.node_id = "n1".into();
        c.advertise_host = "10.0.0.2".into();
        let any: std::net::SocketAddr = "0.0.0.0:8899".parse().unwrap();
        assert_eq!(c.advertised(any).to_string(), "10.0.0.2:8899");
    }
}
