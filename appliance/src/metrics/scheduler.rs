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

/// One app row, read whole: its family values (`APP_FAMILIES` order) and drops.
struct AppRow {
    app: Pubkey,
    values: [f64; APP_FAMILIES.len()],
    drops: [u64; RuntimeDrop::COUNT],
}

pub(super) fn write(o: &mut Out, rt: &RuntimeCounters) {
    // A row the bank hands to another app while it is read is left out of this scrape
    // (`AppSlot::read`) rather than mixing two apps' counts under one label. A reused row's
    // counters restart from zero under its new app's label, a new series.
    let apps: Vec<AppRow> = rt
        .apps
        .slots
        .iter()
        .filter_map(|s| {
            s.read(|app, s| AppRow {
                app,
                values: APP_FAMILIES.map(|f| (f.3)(s)),
                drops: std::array::from_fn(|i| get(&s.drops[i])),
            })
        })
        .collect();
    for (k, (name, kind, help, _)) in APP_FAMILIES.iter().enumerate() {
        o.head(name, kind, help);
        for r in &apps {
            o.line(name, &format!("app=\"{}\"", r.app), r.values[k]);
        }
    }
    o.head(
        "gigacompute_app_drops_total",
        "counter",
        "Transactions of the app dropped, by reason.",
    );
    for r in &apps {
        for why in RuntimeDrop::ALL {
            let n = r.drops[why as usize];
            if n > 0 {
                let labels = format!("app=\"{}\",reason=\"{}\"", r.app, why.name());
                o.line("gigacompute_app_drops_total", &labels, n);
            }
        }
    }
    total(
        o,
        "gigacompute_app_overflow_transactions_total",
        "Transactions executed by apps without a metrics row (all rows in use).",
        get(&rt.apps.overflow_transactions),
    );
    total(
        o,
        "gigacompute_app_overflow_drops_total",
        "Transactions dropped of apps without a metrics row (drops never claim one).",
        get(&rt.apps.overflow_drops),
    );
    total(
        o,
        "gigacompute_app_row_reclaims_total",
        "App metrics rows handed from an app idle past the minimum to a new one.",
        get(&rt.apps.reclaims),
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::metrics::Executed;

    /// Rows are exported under their app, the overflow and reclaim counters as totals.
    #[test]
    fn app_rows_and_overflow_are_exported() {
        let rt = telemetry::SharedRegion::private::<RuntimeCounters>();
        let app = Pubkey::new_unique();
        let tx = Executed {
            failed: false,
            compute_units: 7,
            latency_us: 1,
            queue_delay_us: Some(2),
        };
        rt.apps.record(&app, &tx, 1);
        rt.apps.record_drop(&app, RuntimeDrop::Expired);
        rt.apps
            .record_drop(&Pubkey::new_unique(), RuntimeDrop::Sanitize);
        let mut o = Out::default();
        write(&mut o, rt);
        let text = o.finish();
        for line in [
            format!("gigacompute_app_transactions_total{{app=\"{app}\"}} 1"),
            format!("gigacompute_app_compute_units_total{{app=\"{app}\"}} 7"),
            format!("gigacompute_app_queue_delay_observations_total{{app=\"{app}\"}} 1"),
            format!(
                "gigacompute_app_drops_total{{app=\"{app}\",reason=\"blockhash_expired_in_queue\"}} 1"
            ),
            "gigacompute_app_overflow_drops_total 1".to_string(),
            "gigacompute_app_overflow_transactions_total 0".to_string(),
            "gigacompute_app_row_reclaims_total 0".to_string(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        // Exactly one app row (the dropped-only app has none).
        let rows = text
            .lines()
            .filter(|l| l.starts_with("gigacompute_app_transactions_total{"));
        assert_eq!(rows.count(), 1);
    }
}
