//! The Prometheus text exposition (version 0.0.4) of the metrics region. Units in names,
//! `_total` for counters, histograms with cumulative `le` buckets in seconds.
//!
//! Names, types and help come from the counters' declarations
//! (`telemetry::declare_counters!`): this file says only which declared sets to expose with
//! which labels, plus what is not a declared counter (drops by reason, histograms, the
//! scheduler's per-app and per-island rows).

use super::MetricsRegion;
use dataplane::ParseError;
use runtime::metrics::RuntimeDrop;
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

/// Families grouped under one HELP and TYPE each, whatever order series are added in.
pub(super) type Out = telemetry::Exposition;

fn histogram_series(o: &mut Out, name: &str, labels: &str, h: &LatencyHistogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    for le in BUCKETS_US {
        let bound = le as f64 / 1e6;
        o.line(
            &format!("{name}_bucket"),
            &format!("{labels}{sep}le=\"{bound}\""),
            h.count_le(le),
        );
    }
    o.line(
        &format!("{name}_bucket"),
        &format!("{labels}{sep}le=\"+Inf\""),
        h.count(),
    );
    o.line(&format!("{name}_sum"), labels, h.sum_us() as f64 / 1e6);
    o.line(&format!("{name}_count"), labels, h.count());
}

pub fn render(r: &MetricsRegion) -> String {
    let mut o = Out::default();
    for (t, s) in r.tiles() {
        o.set(s, &format!("tile=\"{t}\""));
    }

    let d = &r.dataplane;
    let rt = &r.runtime;
    let drops = "gigacompute_tile_drops_total";
    o.head(
        drops,
        "counter",
        "Transactions dropped, by tile and reason.",
    );
    for e in ParseError::ALL {
        let labels = format!("tile=\"net\",reason=\"{}\"", e.name());
        o.line(drops, &labels, d.parse_dropped(e));
    }
    o.set(d, "");
    for why in RuntimeDrop::ALL {
        let labels = format!("tile=\"bank\",reason=\"{}\"", why.name());
        o.line(drops, &labels, rt.dropped(why));
    }

    let latency = "gigacompute_transaction_latency_seconds";
    o.head(latency, "histogram", "Time from receipt to each stage.");
    histogram_series(&mut o, latency, "stage=\"verified\"", &d.verify_latency);
    histogram_series(&mut o, latency, "stage=\"executed\"", &rt.exec_latency);
    histogram_series(&mut o, latency, "stage=\"committed\"", &rt.commit_latency);

    o.head(
        "gigacompute_transactions_total",
        "counter",
        "Transactions executed, by result.",
    );
    o.head("gigacompute_slot", "gauge", "Newest slot at each state.");
    o.set(rt, "");
    // The commit tile's output, under the name dashboards know.
    let commits = "gigacompute_storage_commits_total";
    o.head(commits, "counter", "Slot commits made durable.");
    o.line(commits, "", get(&rt.commit.out_total));
    let commit_latency = "gigacompute_storage_commit_latency_seconds";
    o.head(commit_latency, "histogram", "Slot close to durable commit.");
    histogram_series(&mut o, commit_latency, "", &rt.slot_commit_latency);

    storage(&mut o, &r.storage);
    preconf(&mut o, &rt.preconf);
    super::scheduler::write(&mut o, rt);
    super::tuner::write(&mut o, &rt.tuner);
    o.set(&r.endpoints, "");
    o.set(&r.rpc_http, "endpoint=\"rpc\"");
    o.set(&r.metrics_http, "endpoint=\"metrics\"");
    o.set(&r.pubsub_http, "endpoint=\"pubsub\"");
    nic(&mut o, &r.nic);
    o.finish()
}

/// Pre-confirmations' latency bucket bounds, microseconds: the target is 200 µs, finer than
/// the transaction latency buckets.
const PRECONF_BUCKETS_US: [u64; 11] = [10, 25, 50, 100, 150, 200, 300, 500, 1_000, 2_500, 10_000];

/// Pre-confirmations: issued, delivered, and how well each stage keeps its promises.
fn preconf(o: &mut Out, p: &runtime::preconf::PreconfCounters) {
    use runtime::preconf::{STAGE_NAMES, calibration::BUCKETS};
    let heads = [
        (
            "gigacompute_preconf_issued_total",
            "counter",
            "Pre-confirmations issued, by stage.",
        ),
        (
            "gigacompute_preconf_promises_total",
            "counter",
            "Promises resolved, by stage and probability bucket (its upper bound).",
        ),
        (
            "gigacompute_preconf_promises_held_total",
            "counter",
            "Resolved promises that held, by stage and probability bucket.",
        ),
        (
            "gigacompute_preconf_probability_sum",
            "counter",
            "Sum of the resolved promises' probabilities, by stage and bucket (mean predicted = sum / promises).",
        ),
        (
            "gigacompute_preconf_calibration_error",
            "gauge",
            "Expected calibration error over the last preconf.calibration_window resolutions, by stage.",
        ),
        (
            "gigacompute_preconf_brier_score",
            "gauge",
            "Brier score over the last preconf.calibration_window resolutions, by stage.",
        ),
    ];
    for (name, kind, help) in heads {
        o.head(name, kind, help);
    }
    for (s, stage) in STAGE_NAMES.iter().enumerate() {
        let l = format!("stage=\"{stage}\"");
        o.line("gigacompute_preconf_issued_total", &l, get(&p.issued[s]));
        for b in 0..BUCKETS {
            let lb = format!("{l},bucket=\"{:.1}\"", (b + 1) as f64 / BUCKETS as f64);
            o.line(
                "gigacompute_preconf_promises_total",
                &lb,
                get(&p.promises[s][b]),
            );
            o.line(
                "gigacompute_preconf_promises_held_total",
                &lb,
                get(&p.held[s][b]),
            );
            o.line(
                "gigacompute_preconf_probability_sum",
                &lb,
                get(&p.probability_micros[s][b]) as f64 / 1e6,
            );
        }
        o.line(
            "gigacompute_preconf_calibration_error",
            &l,
            get(&p.ece_micros[s]) as f64 / 1e6,
        );
        o.line(
            "gigacompute_preconf_brier_score",
            &l,
            get(&p.brier_micros[s]) as f64 / 1e6,
        );
    }
    o.head(
        "gigacompute_preconf_open",
        "gauge",
        "Promises issued and not yet resolved.",
    );
    o.line("gigacompute_preconf_open", "", get(&p.open));
    o.head(
        "gigacompute_preconf_sent_total",
        "counter",
        "Signed pre-confirmations sent, by path.",
    );
    o.line(
        "gigacompute_preconf_sent_total",
        "path=\"udp\"",
        get(&p.sent_udp),
    );
    o.line(
        "gigacompute_preconf_sent_total",
        "path=\"pubsub\"",
        get(&p.sent_pubsub),
    );
    o.line(
        "gigacompute_preconf_sent_total",
        "path=\"dpdk\"",
        get(&p.sent_dpdk),
    );
    o.head(
        "gigacompute_preconf_batches_total",
        "counter",
        "Signed batches (one ed25519 signature each).",
    );
    o.line("gigacompute_preconf_batches_total", "", get(&p.batches));
    let drops = "gigacompute_tile_drops_total";
    for (reason, v) in [
        ("queue_full", &p.queue_full),
        ("rate_limited", &p.rate_limited),
        ("send_error", &p.send_errors),
        ("pubsub_full", &p.pubsub_dropped),
        ("port_full", &p.port_dropped),
    ] {
        o.line(
            drops,
            &format!("tile=\"preconf\",reason=\"{reason}\""),
            get(v),
        );
    }
    let latency = "gigacompute_preconf_latency_seconds";
    o.head(
        latency,
        "histogram",
        "Receipt to the first signed pre-confirmation (admitted or rejected) sent or posted.",
    );
    for le in PRECONF_BUCKETS_US {
        o.line(
            &format!("{latency}_bucket"),
            &format!("le=\"{}\"", le as f64 / 1e6),
            p.latency.count_le(le),
        );
    }
    o.line(
        &format!("{latency}_bucket"),
        "le=\"+Inf\"",
        p.latency.count(),
    );
    o.line(
        &format!("{latency}_sum"),
        "",
        p.latency.sum_us() as f64 / 1e6,
    );
    o.line(&format!("{latency}_count"), "", p.latency.count());
}

/// The device array, as its store publishes it: store-wide, cache, per device.
fn storage(o: &mut Out, st: &storage::array::publish::StorageCounters) {
    let n = st.device_count();
    if n == 0 {
        return;
    }
    o.set(&st.store, "");
    o.set(&st.cache, "");
    for (i, d) in st.device[..n].iter().enumerate() {
        o.set(d, &format!("device=\"{i}\""));
    }
}

/// Raw (DPDK) ports: the device's counters per port, software counters per RX queue.
fn nic(o: &mut Out, n: &dataplane::nic::NicCounters) {
    let ports: Vec<_> = n.slots().iter().filter(|p| get(&p.in_use) == 1).collect();
    if ports.is_empty() {
        return;
    }
    let port_label = |p: &dataplane::nic::PortSlot| format!("port=\"{}\"", p.name.get());
    for p in &ports {
        o.set(*p, &port_label(p));
    }
    let name = "gigacompute_nic_queue_drops_total";
    o.head(name, "counter", "Frames dropped on an RX queue, by reason.");
    for p in &ports {
        for (i, q) in p.queues[..p.queue_count()].iter().enumerate() {
            let l = format!("{},queue=\"{i}\"", port_label(p));
            o.set(q, &l);
            for (r, n) in q.frame_drops_by_reason().chain(q.parse_drops_by_reason()) {
                o.line(name, &format!("{l},reason=\"{r}\""), n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use telemetry::counters::Counter;
    use telemetry::{CounterSet, SharedRegion};

    /// (name, type, fixed labels, help) of every counter of a set.
    fn declared<T: CounterSet>() -> Vec<(String, &'static str, String, &'static str)> {
        T::COUNTERS
            .iter()
            .map(|c: &Counter<T>| {
                let labels: Vec<String> = c
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect();
                (
                    c.prometheus_name(),
                    c.kind.name(),
                    labels.join(","),
                    c.help(),
                )
            })
            .collect()
    }

    /// Every declared set the region holds, each counter once.
    fn all_declared() -> Vec<(String, &'static str, String, &'static str)> {
        use storage::array::publish::{CacheCounters, DeviceCounters, StoreCounters};
        [
            declared::<telemetry::TileStats>(),
            declared::<dataplane::DataplaneCounters>(),
            declared::<runtime::metrics::RuntimeCounters>(),
            declared::<runtime::tuner::metrics::TunerCounters>(),
            declared::<super::super::region::EndpointCounters>(),
            declared::<crate::http::HttpCounters>(),
            declared::<StoreCounters>(),
            declared::<CacheCounters>(),
            declared::<DeviceCounters>(),
            declared::<dataplane::nic::PortSlot>(),
            declared::<dataplane::nic::QueueCounters>(),
        ]
        .concat()
    }

    /// A region with every optional part present: storage devices, a raw port with a queue.
    fn full_region() -> &'static MetricsRegion {
        let r: &'static MetricsRegion = SharedRegion::private();
        r.storage.store.devices.store(2, Ordering::Relaxed);
        let p = &r.nic.port[0];
        r.nic.ports.store(1, Ordering::Relaxed);
        p.in_use.store(1, Ordering::Relaxed);
        p.rx_queues.store(1, Ordering::Relaxed);
        p.name.set("p0");
        r
    }

    #[test]
    fn every_declared_counter_is_exposed_with_help_and_type() {
        let text = render(full_region());
        for (name, kind, labels, help) in all_declared() {
            assert!(!help.is_empty(), "{name} has no help");
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no HELP for {name}"
            );
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "no TYPE {kind} for {name}"
            );
            let series = text
                .lines()
                .filter(|l| {
                    l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))
                })
                .filter(|l| l.contains(&labels))
                .count();
            assert!(series > 0, "no series {name}{{{labels}}}");
        }
        // One HELP and one TYPE per family: the families are grouped, every one typed.
        let mut types = HashSet::new();
        for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            assert!(types.insert(l.to_string()), "{l} twice");
            assert!(!l.ends_with(" untyped"), "{l}");
        }
        // Names the dashboards and e2e tests use are kept.
        for name in [
            "gigacompute_tile_in_total{tile=\"net\"}",
            "gigacompute_tile_busy_seconds_total{tile=\"gc-io-1\"}",
            "gigacompute_tile_in_total{tile=\"gc-prefetch\"}",
            "gigacompute_tile_drops_total{tile=\"verify\",reason=\"bad_signature\"}",
            "gigacompute_transactions_total{result=\"ok\"}",
            "gigacompute_slot{state=\"durable\"}",
            "gigacompute_storage_commits_total ",
            "gigacompute_nic_queue_ring_full_total{port=\"p0\",queue=\"0\"}",
            "gigacompute_storage_io_reads_total{device=\"1\"}",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }

    #[test]
    fn declared_names_are_unique_and_families_agree() {
        let mut seen = HashSet::new();
        let mut kinds: HashMap<String, &str> = HashMap::new();
        for (name, kind, labels, _) in all_declared() {
            // A set's counters are exposed once per instance, told apart by the instance's
            // labels (tile, device, port, queue); within the declarations, name and fixed
            // labels name one counter.
            assert!(
                seen.insert((name.clone(), labels.clone())),
                "{name}{{{labels}}} declared twice"
            );
            assert_eq!(*kinds.entry(name.clone()).or_insert(kind), kind, "{name}");
        }
    }
}
