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
                "started_unix_ms": n.started_unix_ms,
                "version": n.version,
            })
        })
        .collect();
    // Partitions whose owner holds no lease: unavailable until it is back.
    let orphaned: Vec<Value> = owned
        .iter()
        .filter(|(id, _)| !snap.nodes.contains_key(**id))
        .map(|(id, parts)| json!({"owner": id, "partitions": parts}))
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
        "nodes": nodes,
        "orphaned": orphaned,
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
        "{:<16} {:<22} {:<22} {:>6} {:>10}",
        "node", "rpc", "tpu", "lease", "partitions"
    );
    for n in doc["nodes"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<16} {:<22} {:<22} {:>5}s {:>10}",
            n["id"].as_str().unwrap_or(""),
            n["rpc"].as_str().unwrap_or(""),
            n["tpu"].as_str().unwrap_or(""),
            n["lease_ttl_s"].as_i64().unwrap_or(-1),
            n["partitions"].as_u64().unwrap_or(0),
        );
    }
    for o in &orphaned {
        let _ = writeln!(
            out,
            "DOWN {}: owns {} partitions, no live lease (unavailable)",
            o["owner"].as_str().unwrap_or(""),
            o["partitions"].as_array().map_or(0, Vec::len)
        );
    }
    for b in &bad {
        let _ = writeln!(out, "invalid value ignored: {b}");
    }
    Ok(out)
}
