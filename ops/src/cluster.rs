//! `gigacompute cluster init` and `gigacompute cluster status`: the cluster as etcd holds
//! it (the spec, the partition map and its epoch, the live nodes and their leases).

use anyhow::{Context, Result};
use cluster::etcd::{self, block_on};
use cluster::map::DEFAULT_PARTITIONS;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Creates the cluster `[cluster] name` in etcd: its spec (slot length from
/// `runtime.slot_ms`, a fresh blockhash seed) and the epoch-1 map dealing `partitions` over
/// `nodes`.
pub fn init(cfg: &appliance::Config, nodes: &[String], partitions: Option<u16>) -> Result<String> {
    let c = &cfg.cluster;
    let partitions = partitions.unwrap_or(DEFAULT_PARTITIONS);
    let (spec, map) = block_on(async {
        let mut client = etcd::connect(&c.etcd).await?;
        etcd::init(&mut client, &c.name, nodes, partitions, cfg.runtime.slot_ms).await
    })
    .with_context(|| format!("creating cluster {:?} in etcd {:?}", c.name, c.etcd))?;
    let mut out = format!(
        "cluster {:?} created: {} partitions, {} ms slots, map epoch {}\n",
        spec.name, spec.partitions, spec.slot_ms, map.epoch
    );
    for (node, parts) in map.by_node() {
        let _ = writeln!(out, "  {node}: {} partitions", parts.len());
    }
    Ok(out)
}

/// Moves `partition` to node `to`; with `wait`, returns once the map says so (or the move
/// was given up).
pub fn move_partition(
    cfg: &appliance::Config,
    partition: u16,
    to: &str,
    wait: bool,
    reason: &str,
) -> Result<String> {
    let c = &cfg.cluster;
    let m = block_on(async {
        let mut client = etcd::connect(&c.etcd).await?;
        etcd::request_move(&mut client, &c.name, partition, to, reason).await
    })
    .with_context(|| format!("moving partition {partition} to {to}"))?;
    if !wait {
        return Ok(format!(
            "partition {partition}: move from {} to {to} requested (epoch {})",
            m.from, m.epoch
        ));
    }
    let started = std::time::Instant::now();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (snap, _) = block_on(async {
            let mut client = etcd::connect(&c.etcd).await?;
            etcd::read(&mut client, &c.name).await
        })?;
        if snap.migrations.contains_key(&partition) {
            if started.elapsed() > std::time::Duration::from_secs(120) {
                anyhow::bail!("partition {partition}: the move is still in flight after 120 s");
            }
            continue;
        }
        let owner = snap
            .map
            .as_ref()
            .and_then(|m| m.owner(partition))
            .unwrap_or("");
        if owner == to {
            return Ok(format!(
                "partition {partition}: moved from {} to {to} in {} ms (map epoch {})",
                m.from,
                started.elapsed().as_millis(),
                snap.map.as_ref().map_or(0, |m| m.epoch)
            ));
        }
        anyhow::bail!(
            "partition {partition}: the move was given up ({owner} still owns it; see its log)"
        );
    }
}

/// Scale-in: moves every partition of `node` to the other live nodes, the least loaded
/// (fewest partitions) first, one at a time.
pub fn drain_node(cfg: &appliance::Config, node: &str) -> Result<String> {
    let c = &cfg.cluster;
    let mut out = String::new();
    loop {
        let (snap, _) = block_on(async {
            let mut client = etcd::connect(&c.etcd).await?;
            etcd::read(&mut client, &c.name).await
        })?;
        let map = snap.map.context("the cluster has no map")?;
        let by_node = map.by_node();
        let Some(&p) = by_node.get(node).and_then(|v| v.first()) else {
            let _ = writeln!(out, "{node} owns no partition");
            return Ok(out);
        };
        let to = snap
            .nodes
            .keys()
            .filter(|n| n.as_str() != node)
            .min_by_key(|n| by_node.get(n.as_str()).map_or(0, Vec::len))
            .context("no other live node to take the partitions")?
            .clone();
        let line = move_partition(cfg, p, &to, true, "scale-in")?;
        let _ = writeln!(out, "{line}");
    }
}

pub fn status(cfg: &appliance::Config, as_json: bool) -> Result<String> {
    let c = &cfg.cluster;
    let (snap, bad, ttls) = block_on(async {
        let mut client = etcd::connect(&c.etcd).await?;
        let (snap, bad) = etcd::read(&mut client, &c.name).await?;
        let ttls = etcd::lease_ttls(&mut client, &c.name).await?;
        Ok::<_, etcd::ClusterError>((snap, bad, ttls))
    })
    .with_context(|| format!("reading cluster {:?} from etcd {:?}", c.name, c.etcd))?;
    let owned = snap.map.as_ref().map(|m| m.by_node()).unwrap_or_default();
    let nodes: Vec<Value> = snap
        .nodes
        .values()
        .map(|n| {
            json!({
                "id": n.id,
                "rpc": n.rpc.to_string(),
                "tpu": n.tpu.to_string(),
                "identity": n.identity,
                "lease_ttl_s": ttls.iter().find(|(id, _)| id == &n.id).map(|(_, t)| *t),
                "partitions": owned.get(n.id.as_str()).map_or(0, Vec::len),
                "follower": snap.map.as_ref().and_then(|m| m.followers.get(&n.id)),
                "replica": n.replica.map(|a| a.to_string()),
                "started_unix_ms": n.started_unix_ms,
                "version": n.version,
            })
        })
        .collect();
    // Partitions whose owner holds no lease: unavailable until its follower takes them over
    // (or, without a follower, until it is back).
    let orphaned: Vec<Value> = owned
        .iter()
        .filter(|(id, _)| !snap.nodes.contains_key(**id))
        .map(|(id, parts)| {
            let follower = snap.map.as_ref().and_then(|m| m.followers.get(*id));
            json!({"owner": id, "partitions": parts, "follower": follower})
        })
        .collect();
    let doc = json!({
        "cluster": c.name,
        "etcd": c.etcd,
        "revision": snap.revision,
        "spec": snap.spec.as_ref().map(|s| json!({
            "partitions": s.partitions,
            "slot_ms": s.slot_ms,
            "genesis_unix_ms": s.genesis_unix_ms,
        })),
        "epoch": snap.map.as_ref().map(|m| m.epoch),
        "owners": snap.map.as_ref().map(|m| &m.owners),
        "nodes": nodes,
        "orphaned": orphaned,
        "migrations": snap.migrations.values().map(|(m, _)| json!({
            "partition": m.partition,
            "from": m.from,
            "to": m.to,
            "state": m.state,
            "reason": m.reason,
            "epoch": m.epoch,
            "age_ms": cluster::clock::unix_ms().saturating_sub(m.requested_unix_ms),
            "accounts": m.accounts,
        })).collect::<Vec<_>>(),
        "invalid_values": bad,
    });
    if as_json {
        return Ok(doc.to_string());
    }
    let mut out = String::new();
    let Some(spec) = &snap.spec else {
        return Ok(format!(
            "cluster {:?}: not created in etcd {:?} (gigacompute cluster init)",
            c.name, c.etcd
        ));
    };
    let _ = writeln!(
        out,
        "cluster {:?}: {} partitions, {} ms slots, map epoch {}, etcd revision {}",
        c.name,
        spec.partitions,
        spec.slot_ms,
        snap.map.as_ref().map_or(0, |m| m.epoch),
        snap.revision
    );
    let _ = writeln!(
        out,
        "{:<16} {:<22} {:<22} {:>6} {:>10} {:<16}",
        "node", "rpc", "tpu", "lease", "partitions", "follower"
    );
    for n in doc["nodes"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<16} {:<22} {:<22} {:>5}s {:>10} {:<16}",
            n["id"].as_str().unwrap_or(""),
            n["rpc"].as_str().unwrap_or(""),
            n["tpu"].as_str().unwrap_or(""),
            n["lease_ttl_s"].as_i64().unwrap_or(-1),
            n["partitions"].as_u64().unwrap_or(0),
            n["follower"].as_str().unwrap_or("-"),
        );
    }
    for o in &orphaned {
        let _ = writeln!(
            out,
            "DOWN {}: owns {} partitions, no live lease (unavailable until {})",
            o["owner"].as_str().unwrap_or(""),
            o["partitions"].as_array().map_or(0, Vec::len),
            o["follower"]
                .as_str()
                .map_or("it is back".to_string(), |f| format!("{f} takes them over")),
        );
    }
    for (m, _) in snap.migrations.values() {
        let _ = writeln!(
            out,
            "MOVING partition {}: {} -> {} ({:?}, {}, {} ms)",
            m.partition,
            m.from,
            m.to,
            m.state,
            m.reason,
            cluster::clock::unix_ms().saturating_sub(m.requested_unix_ms)
        );
    }
    for b in &bad {
        let _ = writeln!(out, "invalid value ignored: {b}");
    }
    Ok(out)
}
