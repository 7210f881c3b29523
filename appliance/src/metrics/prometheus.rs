//! The Prometheus text exposition (version 0.0.4) of the metrics region. Units in names,
//! `_total` for counters, histograms with cumulative `le` buckets in seconds.

use super::MetricsRegion;
use dataplane::ParseError;
use runtime::metrics::RuntimeDrop;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use telemetry::LatencyHistogram;

/// Histogram bucket bounds, microseconds.
const BUCKETS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 5_000_000,
];

pub(super) fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

pub(super) struct Out(String);

impl Out {
    pub(super) fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    pub(super) fn line(&mut self, name: &str, labels: &str, v: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {v}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {v}");
        }
    }
    fn histogram_series(&mut self, name: &str, labels: &str, h: &LatencyHistogram) {
        let sep = if labels.is_empty() { "" } else { "," };
        for le in BUCKETS_US {
            let bound = le as f64 / 1e6;
            self.line(
                &format!("{name}_bucket"),
                &format!("{labels}{sep}le=\"{bound}\""),
                h.count_le(le),
            );
        }
        self.line(
            &format!("{name}_bucket"),
            &format!("{labels}{sep}le=\"+Inf\""),
            h.count(),
        );
        self.line(&format!("{name}_sum"), labels, h.sum_us() as f64 / 1e6);
        self.line(&format!("{name}_count"), labels, h.count());
    }
}

pub fn render(r: &MetricsRegion) -> String {
    let mut o = Out(String::with_capacity(16 * 1024));
    let tiles = r.tiles();
    let per_tile = |o: &mut Out,
                    name: &str,
                    kind: &str,
                    help: &str,
                    f: &dyn Fn(&telemetry::TileStats) -> String| {
        o.head(name, kind, help);
        for (t, s) in &tiles {
            o.line(name, &format!("tile=\"{t}\""), f(s));
        }
    };
    per_tile(
        &mut o,
        "gigacompute_tile_in_total",
        "counter",
        "Work items taken in by the tile.",
        &|s| get(&s.in_total).to_string(),
    );
    per_tile(
        &mut o,
        "gigacompute_tile_out_total",
        "counter",
        "Work items passed on by the tile.",
        &|s| get(&s.out_total).to_string(),
    );
    per_tile(
        &mut o,
        "gigacompute_tile_busy_seconds_total",
        "counter",
        "Time the tile spent working.",
        &|s| (get(&s.busy_ns) as f64 / 1e9).to_string(),
    );
    per_tile(
        &mut o,
        "gigacompute_tile_idle_seconds_total",
        "counter",
        "Time the tile spent waiting for input.",
        &|s| (get(&s.idle_ns) as f64 / 1e9).to_string(),
    );
    per_tile(
        &mut o,
        "gigacompute_tile_backpressure_seconds_total",
        "counter",
        "Time the tile spent blocked on a full output link.",
        &|s| (get(&s.backpressure_ns) as f64 / 1e9).to_string(),
    );
    per_tile(
        &mut o,
        "gigacompute_tile_queue_depth",
        "gauge",
        "Depth of the tile's input queue when last sampled.",
        &|s| get(&s.queue_depth).to_string(),
    );

    let d = &r.dataplane;
    o.head(
        "gigacompute_tile_drops_total",
        "counter",
        "Transactions dropped, by tile and reason.",
    );
    for e in ParseError::ALL {
        o.line(
            "gigacompute_tile_drops_total",
            &format!("tile=\"net\",reason=\"{}\"", e.name()),
            d.parse_dropped(e),
        );
    }
    for (tile, reason, n) in [
        ("net", "verify_ring_full", &d.verify_ring_full),
        ("net", "pool_exhausted", &d.pool_exhausted),
        ("net", "recent_duplicate", &d.rx_duplicates),
        ("verify", "bad_signature", &d.bad_signature),
        ("verify", "duplicate", &d.duplicate),
        ("verify", "dedup_full", &d.dedup_full),
    ] {
        o.line(
            "gigacompute_tile_drops_total",
            &format!("tile=\"{tile}\",reason=\"{reason}\""),
            get(n),
        );
    }
    let rt = &r.runtime;
    for why in RuntimeDrop::ALL {
        o.line(
            "gigacompute_tile_drops_total",
            &format!("tile=\"bank\",reason=\"{}\"", why.name()),
            rt.dropped(why),
        );
    }

    o.head(
        "gigacompute_net_received_bytes_total",
        "counter",
        "Datagram bytes received by the net tile.",
    );
    o.line("gigacompute_net_received_bytes_total", "", get(&d.rx_bytes));

    o.head(
        "gigacompute_transaction_latency_seconds",
        "histogram",
        "Time from receipt to each stage.",
    );
    o.histogram_series(
        "gigacompute_transaction_latency_seconds",
        "stage=\"verified\"",
        &d.verify_latency,
    );
    o.histogram_series(
        "gigacompute_transaction_latency_seconds",
        "stage=\"executed\"",
        &rt.exec_latency,
    );
    o.histogram_series(
        "gigacompute_transaction_latency_seconds",
        "stage=\"committed\"",
        &rt.commit_latency,
    );

    o.head(
        "gigacompute_transactions_total",
        "counter",
        "Transactions executed, by result.",
    );
    o.line(
        "gigacompute_transactions_total",
        "result=\"ok\"",
        get(&rt.executed_ok),
    );
    o.line(
        "gigacompute_transactions_total",
        "result=\"error\"",
        get(&rt.executed_err),
    );
    o.head(
        "gigacompute_transactions_committed_total",
        "counter",
        "Transactions whose slot is durable.",
    );
    o.line(
        "gigacompute_transactions_committed_total",
        "",
        get(&rt.committed),
    );
    o.head(
        "gigacompute_compute_units_total",
        "counter",
        "Compute units consumed by executed transactions.",
    );
    o.line(
        "gigacompute_compute_units_total",
        "",
        get(&rt.compute_units),
    );
    o.head(
        "gigacompute_sequencer_depth",
        "gauge",
        "Transactions waiting in the sequencer.",
    );
    o.line("gigacompute_sequencer_depth", "", get(&rt.sequencer_depth));

    o.head("gigacompute_slot", "gauge", "Newest slot at each state.");
    o.line(
        "gigacompute_slot",
        "state=\"processed\"",
        get(&rt.slot_processed),
    );
    o.line(
        "gigacompute_slot",
        "state=\"durable\"",
        get(&rt.slot_durable),
    );
    o.head(
        "gigacompute_slots_closed_total",
        "counter",
        "Slots closed by the bank.",
    );
    o.line("gigacompute_slots_closed_total", "", get(&rt.slots_closed));

    o.head(
        "gigacompute_storage_commits_total",
        "counter",
        "Slot commits made durable.",
    );
    o.line(
        "gigacompute_storage_commits_total",
        "",
        get(&rt.commit.out_total),
    );
    o.head(
        "gigacompute_storage_commit_errors_total",
        "counter",
        "Failed slot commit attempts.",
    );
    o.line(
        "gigacompute_storage_commit_errors_total",
        "",
        get(&rt.commit_errors),
    );
    o.head(
        "gigacompute_storage_commit_latency_seconds",
        "histogram",
        "Slot close to durable commit.",
    );
    o.histogram_series(
        "gigacompute_storage_commit_latency_seconds",
        "",
        &rt.slot_commit_latency,
    );
    o.head(
        "gigacompute_storage_account_reads_total",
        "counter",
        "Account reads by the runtime.",
    );
    o.line(
        "gigacompute_storage_account_reads_total",
        "",
        get(&rt.account_reads),
    );
    o.head(
        "gigacompute_storage_cache_hits_total",
        "counter",
        "Account reads served from the accounts engine's memory.",
    );
    o.line(
        "gigacompute_storage_cache_hits_total",
        "",
        get(&rt.account_cache_hits),
    );
    o.head(
        "gigacompute_storage_device_reads_total",
        "counter",
        "Read operations issued to the storage devices (account reads, scans).",
    );
    o.line(
        "gigacompute_storage_device_reads_total",
        "",
        get(&rt.storage_device_reads),
    );
    o.head(
        "gigacompute_storage_device_write_bytes_total",
        "counter",
        "Bytes written to the storage devices (records, superblocks, compaction).",
    );
    o.line(
        "gigacompute_storage_device_write_bytes_total",
        "",
        get(&rt.storage_device_write_bytes),
    );
    o.head(
        "gigacompute_state_commitment_seconds_total",
        "counter",
        "Time slot commits spent computing the state root and lattice hash.",
    );
    o.line(
        "gigacompute_state_commitment_seconds_total",
        "",
        get(&rt.state_commitment_ns) as f64 / 1e9,
    );

    super::scheduler::write(&mut o, rt);

    o.head(
        "gigacompute_rpc_requests_total",
        "counter",
        "JSON-RPC calls answered.",
    );
    o.line("gigacompute_rpc_requests_total", "", get(&r.rpc_requests));
    o.head(
        "gigacompute_rpc_errors_total",
        "counter",
        "JSON-RPC calls answered with an error.",
    );
    o.line("gigacompute_rpc_errors_total", "", get(&r.rpc_errors));
    o.head(
        "gigacompute_metrics_scrapes_total",
        "counter",
        "Scrapes of this endpoint.",
    );
    o.line(
        "gigacompute_metrics_scrapes_total",
        "",
        get(&r.metrics_scrapes),
    );
    nic(&mut o, &r.nic);
    o.0
}

/// Raw (DPDK) ports: the device's counters per port, software counters per RX queue.
fn nic(o: &mut Out, n: &dataplane::nic::NicCounters) {
    let ports: Vec<_> = n.slots().iter().filter(|p| get(&p.in_use) == 1).collect();
    if ports.is_empty() {
        return;
    }
    let port_label = |p: &dataplane::nic::PortSlot| format!("port=\"{}\"", p.name.get());
    for (name, help, f) in [
        (
            "gigacompute_nic_rx_packets_total",
            "Frames the device received (rte_eth_stats ipackets).",
            (|p| get(&p.ipackets)) as fn(&dataplane::nic::PortSlot) -> u64,
        ),
        (
            "gigacompute_nic_rx_bytes_total",
            "Bytes the device received.",
            |p| get(&p.ibytes),
        ),
        (
            "gigacompute_nic_rx_errors_total",
            "Erroneous frames the device received (ierrors).",
            |p| get(&p.ierrors),
        ),
        (
            "gigacompute_nic_rx_missed_total",
            "Frames the device dropped: RX queues full (imissed).",
            |p| get(&p.imissed),
        ),
        (
            "gigacompute_nic_rx_nombuf_total",
            "RX mbuf allocation failures (rx_nombuf).",
            |p| get(&p.rx_nombuf),
        ),
        (
            "gigacompute_nic_tx_packets_total",
            "Frames the device sent.",
            |p| get(&p.opackets),
        ),
        (
            "gigacompute_nic_tx_errors_total",
            "Frames the device failed to send.",
            |p| get(&p.oerrors),
        ),
        ("gigacompute_nic_link_up", "1 when the link is up.", |p| {
            get(&p.link_up)
        }),
        (
            "gigacompute_nic_mbufs_free",
            "mbufs free in the port's pool.",
            |p| get(&p.mbufs_free),
        ),
    ] {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        o.head(name, kind, help);
        for p in &ports {
            o.line(name, &port_label(p), f(p));
        }
    }
    type Q = dataplane::nic::QueueCounters;
    for (name, help, f) in [
        (
            "gigacompute_nic_queue_rx_packets_total",
            "Frames taken from the RX queue.",
            (|q| get(&q.packets)) as fn(&Q) -> u64,
        ),
        (
            "gigacompute_nic_queue_rx_bytes_total",
            "Bytes taken from the RX queue.",
            |q| get(&q.bytes),
        ),
        (
            "gigacompute_nic_queue_accepted_total",
            "Transactions handed to verification.",
            |q| get(&q.accepted),
        ),
        (
            "gigacompute_nic_queue_ring_full_total",
            "Transactions dropped: the ring to verification was full.",
            |q| get(&q.ring_full),
        ),
        (
            "gigacompute_nic_queue_recent_duplicates_total",
            "Transactions dropped as repeats of recent bytes.",
            |q| get(&q.duplicates),
        ),
        (
            "gigacompute_nic_queue_no_descriptor_total",
            "Transactions dropped: no descriptor free.",
            |q| get(&q.no_descriptor),
        ),
        (
            "gigacompute_nic_queue_replies_total",
            "Verdict replies sent.",
            |q| get(&q.verdict_replies),
        ),
        (
            "gigacompute_nic_queue_tx_dropped_total",
            "Replies not sent (TX full or no mbuf).",
            |q| get(&q.tx_dropped),
        ),
    ] {
        o.head(name, "counter", help);
        for p in &ports {
            for (i, q) in p.queues[..p.queue_count()].iter().enumerate() {
                o.line(name, &format!("{},queue=\"{i}\"", port_label(p)), f(q));
            }
        }
    }
    let name = "gigacompute_nic_queue_drops_total";
    o.head(name, "counter", "Frames dropped on an RX queue, by reason.");
    for p in &ports {
        for (i, q) in p.queues[..p.queue_count()].iter().enumerate() {
            let l = format!("{},queue=\"{i}\"", port_label(p));
            for (r, n) in q.frame_drops_by_reason().chain(q.parse_drops_by_reason()) {
                o.line(name, &format!("{l},reason=\"{r}\""), n);
            }
        }
    }
}
