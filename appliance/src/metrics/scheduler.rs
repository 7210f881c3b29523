//! Prometheus series per app and per hot-account island (the scheduler's view of isolation).

use super::prometheus::{Out, get};
use runtime::metrics::{AppSlot, IslandSlot, RuntimeCounters, RuntimeDrop};
use solana_pubkey::Pubkey;

/// (name, type, help, value) of one family over a table's rows.
type Family<T> = (&'static str, &'static str, &'static str, fn(&T) -> f64);

/// Every family, one series per row, labelled `label="<key>"`.
fn families<T>(o: &mut Out, label: &str, rows: &[(Pubkey, &T)], families: &[Family<T>]) {
    for (name, kind, help, value) in families {
        o.head(name, kind, help);
        for (key, row) in rows {
            o.line(name, &format!("{label}=\"{key}\""), value(row));
        }
    }
}

fn total(o: &mut Out, name: &str, help: &str, v: u64) {
    o.head(name, "counter", help);
    o.line(name, "", v);
}

const APP_FAMILIES: [Family<AppSlot>; 12] = [
    (
        "gigacompute_app_transactions_total",
        "counter",
        "Transactions executed per app (app key: top-level program, fee payer or an app rule's account).",
        |s| get(&s.transactions) as f64,
    ),
    (
        "gigacompute_app_errors_total",
        "counter",
        "Failed transactions per app.",
        |s| get(&s.errors) as f64,
    ),
    (
        "gigacompute_app_compute_units_total",
        "counter",
        "Compute units per app.",
        |s| get(&s.compute_units) as f64,
    ),
    (
        "gigacompute_app_latency_seconds_total",
        "counter",
        "Receipt-to-execution time summed per app.",
        |s| get(&s.latency_us_sum) as f64 / 1e6,
    ),
    (
        "gigacompute_app_latency_p99_seconds",
        "gauge",
        "Receipt-to-execution time per app, 99th percentile.",
        |s| s.latency.quantile(0.99) as f64 / 1e6,
    ),
    (
        "gigacompute_app_conflicts_total",
        "counter",
        "Transactions placed beside a declared lock conflict (chained or optimistic).",
        |s| get(&s.conflicts) as f64,
    ),
    (
        "gigacompute_app_reexecutions_total",
        "counter",
        "Optimistic batches re-executed after failing validation.",
        |s| get(&s.reexecutions) as f64,
    ),
    (
        "gigacompute_app_cu_deferred_total",
        "counter",
        "Scheduling picks held back to a later slot by a compute-unit cap.",
        |s| get(&s.cu_deferred) as f64,
    ),
    (
        "gigacompute_app_optimistic",
        "gauge",
        "1 while the app executes optimistically.",
        |s| get(&s.optimistic) as f64,
    ),
    (
        "gigacompute_app_queue_delay_observations_total",
        "counter",
        "Transactions dispatched (admission to dispatch measured).",
        |s| s.queue_delay.count() as f64,
    ),
    (
        "gigacompute_app_queue_delay_p50_seconds",
        "gauge",
        "Admission-to-dispatch delay per app, median.",
        |s| s.queue_delay.quantile(0.5) as f64 / 1e6,
    ),
    (
        "gigacompute_app_queue_delay_p99_seconds",
        "gauge",
        "Admission-to-dispatch delay per app, 99th percentile.",
        |s| s.queue_delay.quantile(0.99) as f64 / 1e6,
    ),
];

const ISLAND_FAMILIES: [Family<IslandSlot>; 6] = [
    (
        "gigacompute_island_transactions_total",
        "counter",
        "Transactions run in the island since it formed.",
        |s| get(&s.transactions) as f64,
    ),
    (
        "gigacompute_island_compute_units_total",
        "counter",
        "Compute units used by the island since it formed.",
        |s| get(&s.compute_units) as f64,
    ),
    (
        "gigacompute_island_queue_delay_p50_seconds",
        "gauge",
        "Admission-to-dispatch delay in the island, median.",
        |s| s.queue_delay.quantile(0.5) as f64 / 1e6,
    ),
    (
        "gigacompute_island_queue_delay_p99_seconds",
        "gauge",
        "Admission-to-dispatch delay in the island, 99th percentile.",
        |s| s.queue_delay.quantile(0.99) as f64 / 1e6,
    ),
    (
        "gigacompute_island_worker",
        "gauge",
        "The worker the island's lane prefers.",
        |s| get(&s.worker) as f64,
    ),
    (
        "gigacompute_island_formed_slot",
        "gauge",
        "Scheduler slot count when the island formed.",
        |s| get(&s.formed_at) as f64,
    ),
];

pub(super) fn write(o: &mut Out, rt: &RuntimeCounters) {
    let apps: Vec<(Pubkey, &AppSlot)> = rt
        .apps
        .slots
        .iter()
        .filter_map(|s| s.program().map(|p| (p, s)))
        .collect();
    families(o, "app", &apps, &APP_FAMILIES);
    o.head(
        "gigacompute_app_drops_total",
        "counter",
        "Transactions of the app dropped, by reason.",
    );
    for (p, s) in &apps {
        for why in RuntimeDrop::ALL {
            let n = get(&s.drops[why as usize]);
            if n > 0 {
                let labels = format!("app=\"{p}\",reason=\"{}\"", why.name());
                o.line("gigacompute_app_drops_total", &labels, n);
            }
        }
    }
    total(
        o,
        "gigacompute_islands_formed_total",
        "Hot-account islands formed.",
        get(&rt.islands.formed),
    );
    total(
        o,
        "gigacompute_islands_dissolved_total",
        "Hot-account islands dissolved.",
        get(&rt.islands.dissolved),
    );
    // optimistic_batches and reexecutions are declared counters (RuntimeCounters).
    let islands: Vec<(Pubkey, &IslandSlot)> = rt
        .islands
        .slots
        .iter()
        .filter_map(|s| s.account().map(|k| (k, s)))
        .collect();
    families(o, "account", &islands, &ISLAND_FAMILIES);
}
