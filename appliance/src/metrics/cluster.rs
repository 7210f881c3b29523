//! `gigacompute_cluster_*`: this node's view of the cluster (`[cluster] enabled`), from its
//! [`cluster::ClusterView`] (in-process: the series exist only while the node runs).

use cluster::ClusterView;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

pub fn render(v: &ClusterView, out: &mut String) {
    let snap = v.snapshot();
    let c = &v.counters;
    let me = v.me();
    let gauge = |out: &mut String, name: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{node=\"{me}\"}} {value}"
        );
    };
    gauge(
        out,
        "gigacompute_cluster_serving",
        "1 while this node's lease is confirmed and it has a map (it executes); 0 fenced.",
        u8::from(v.serving()).into(),
    );
    gauge(
        out,
        "gigacompute_cluster_lease_left_seconds",
        "Seconds this node's lease is certainly alive.",
        v.lease_left_ms() as f64 / 1e3,
    );
    gauge(
        out,
        "gigacompute_cluster_map_epoch",
        "The partition map's configuration epoch this node acts on.",
        snap.map.as_ref().map_or(0, |m| m.epoch) as f64,
    );
    gauge(
        out,
        "gigacompute_cluster_nodes_live",
        "Nodes holding a live lease, as this node last read etcd.",
        snap.nodes.len() as f64,
    );
    let _ = writeln!(
        out,
        "# HELP gigacompute_cluster_partitions_owned Partitions each node owns in the map.\n# TYPE gigacompute_cluster_partitions_owned gauge"
    );
    if let Some(m) = &snap.map {
        for (node, parts) in m.by_node() {
            let _ = writeln!(
                out,
                "gigacompute_cluster_partitions_owned{{node=\"{node}\"}} {}",
                parts.len()
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP gigacompute_cluster_partition_transactions_total Transactions admitted here, by the fee payer's partition (its heat).\n# TYPE gigacompute_cluster_partition_transactions_total counter"
    );
    if let Some(m) = &snap.map {
        for (p, n) in v.heat(m.owners.len()).into_iter().enumerate() {
            if n > 0 {
                let _ = writeln!(
                    out,
                    "gigacompute_cluster_partition_transactions_total{{partition=\"{p}\",owner=\"{}\"}} {n}",
                    m.owners[p]
                );
            }
        }
    }
    let counter = |out: &mut String, name: &str, help: &str, rows: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, value) in rows {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {value}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
    };
    counter(
        out,
        "gigacompute_cluster_forwarded_total",
        "Transactions and calls sent to the node that owns their accounts.",
        &[
            ("path=\"udp\"", c.forwarded_udp.load(Relaxed)),
            ("path=\"rpc\"", c.forwarded_rpc.load(Relaxed)),
        ],
    );
    counter(
        out,
        "gigacompute_cluster_bounced_total",
        "Datagrams a peer forwarded here that would have gone straight back (the two disagreed about the owner for a moment): dropped.",
        &[("", c.bounced.load(Relaxed))],
    );
    counter(
        out,
        "gigacompute_cluster_forward_errors_total",
        "Forwards that failed (socket full, peer unreachable).",
        &[("", c.forward_errors.load(Relaxed))],
    );
    counter(
        out,
        "gigacompute_cluster_refused_total",
        "Transactions refused by the cluster rule, by reason.",
        &[
            (
                "reason=\"cross_partition\"",
                c.cross_partition.load(Relaxed),
            ),
            ("reason=\"owner_down\"", c.owner_down.load(Relaxed)),
            ("reason=\"not_serving\"", c.not_serving.load(Relaxed)),
        ],
    );
    counter(
        out,
        "gigacompute_cluster_lease_events_total",
        "This node's lease: granted (registrations), renewed, lost (expired before renewal).",
        &[
            ("event=\"granted\"", c.lease_grants.load(Relaxed)),
            ("event=\"renewed\"", c.lease_renewals.load(Relaxed)),
            ("event=\"lost\"", c.lease_losses.load(Relaxed)),
        ],
    );
    counter(
        out,
        "gigacompute_cluster_migrations_total",
        "Partitions moved into and out of this node, and moves given up.",
        &[
            ("direction=\"in\"", c.migrations_in.load(Relaxed)),
            ("direction=\"out\"", c.migrations_out.load(Relaxed)),
            ("direction=\"aborted\"", c.migrations_aborted.load(Relaxed)),
        ],
    );
    counter(
        out,
        "gigacompute_cluster_parked_total",
        "Transactions held while their partition moved away (sent to the new owner after the flip).",
        &[("", c.parked.load(Relaxed))],
    );
    counter(
        out,
        "gigacompute_cluster_park_full_total",
        "Transactions dropped because the park was full (32 MiB).",
        &[("", c.park_full.load(Relaxed))],
    );
    gauge(
        out,
        "gigacompute_cluster_last_migration_pause_seconds",
        "The last partition moved in: from the source's drain to the flip.",
        c.last_pause_ms.load(Relaxed) as f64 / 1e3,
    );
    gauge(
        out,
        "gigacompute_cluster_draining_partition",
        "The partition this node is moving out, or -1.",
        v.draining().map_or(-1.0, f64::from),
    );
    counter(
        out,
        "gigacompute_cluster_etcd_errors_total",
        "Failed etcd requests (connect, renew, read).",
        &[("", c.etcd_errors.load(Relaxed))],
    );
    counter(
        out,
        "gigacompute_cluster_replica_batches_total",
        "Replication batches: sent by this node and acknowledged durable by its follower (out), written here for the nodes it follows (in).",
        &[
            ("direction=\"out\"", c.replica_batches.load(Relaxed)),
            ("direction=\"in\"", c.replica_batches_in.load(Relaxed)),
        ],
    );
    counter(
        out,
        "gigacompute_cluster_replica_snapshots_total",
        "Replication sessions begun with a snapshot (a new follower, a lost log, a partition gained).",
        &[("", c.replica_snapshots.load(Relaxed))],
    );
    counter(
        out,
        "gigacompute_cluster_replica_errors_total",
        "Replication batches that failed or were refused (sent again).",
        &[("", c.replica_errors.load(Relaxed))],
    );
    gauge(
        out,
        "gigacompute_cluster_replica_lag_slots",
        "Slots durable on this node that its follower has not acknowledged: not yet confirmed.",
        c.replica_lag_slots.load(Relaxed) as f64,
    );
    gauge(
        out,
        "gigacompute_cluster_unreplicated",
        "1 while this node has no follower (alone, or replicate = false): slots are confirmed on its disk alone.",
        c.unreplicated.load(Relaxed) as f64,
    );
    counter(
        out,
        "gigacompute_cluster_failovers_total",
        "Nodes whose partitions this node took over after their lease expired.",
        &[("", c.failovers.load(Relaxed))],
    );
    let g = &v.colocate.counters;
    counter(
        out,
        "gigacompute_cluster_colocation_total",
        "Cross-partition transactions held until their partitions gather on one node, moves asked for that, and ones dropped (bound full, more than 4 partitions, waited too long, bad signature, over the signature-check rate, unpayable: expired blockhash or a fee payer without its fee).",
        &[
            ("event=\"held\"", g.held.load(Relaxed)),
            ("event=\"move\"", g.moves.load(Relaxed)),
            ("event=\"full\"", g.full.load(Relaxed)),
            ("event=\"too_wide\"", g.too_wide.load(Relaxed)),
            ("event=\"expired\"", g.expired.load(Relaxed)),
            ("event=\"bad_signature\"", g.bad_signatures.load(Relaxed)),
            ("event=\"over_rate\"", g.over_rate.load(Relaxed)),
            ("event=\"unpayable\"", g.unpayable.load(Relaxed)),
        ],
    );
    gauge(
        out,
        "gigacompute_cluster_colocation_held",
        "Cross-partition transactions held here now.",
        v.colocate.len() as f64,
    );
}
