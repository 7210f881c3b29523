//! `gigacompute monitor`: a live terminal view of a running appliance's counters, read from its
//! shared-memory region (another process; the appliance does no work for it). Refreshes every
//! second; q, Esc or Ctrl-C quits. Works over ssh: no mouse, plain ANSI.

use appliance::metrics::MetricsRegion;
use crossterm::event::{self, Event, KeyCode, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use telemetry::CounterSet;

const REFRESH: Duration = Duration::from_secs(1);

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

#[derive(Clone, Copy, Default)]
struct Snap {
    in_: u64,
    out: u64,
    busy: u64,
    idle: u64,
    back: u64,
}

fn snapshot(r: &MetricsRegion) -> HashMap<String, Snap> {
    r.tiles()
        .into_iter()
        .map(|(n, s)| {
            (
                n,
                Snap {
                    in_: get(&s.in_total),
                    out: get(&s.out_total),
                    busy: get(&s.busy_ns),
                    idle: get(&s.idle_ns),
                    back: get(&s.backpressure_ns),
                },
            )
        })
        .collect()
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// One frame of text.
fn frame(
    r: &MetricsRegion,
    prev: &HashMap<String, Snap>,
    now: &HashMap<String, Snap>,
    secs: f64,
) -> String {
    let mut s = String::new();
    let rt = &r.runtime;
    let dp = &r.dataplane;
    let _ = writeln!(
        s,
        "gigacompute monitor  pid {}  slot processed {} durable {}  (q to quit)\r",
        get(&r.pid),
        get(&rt.slot_processed),
        get(&rt.slot_durable)
    );
    let _ = writeln!(s, "\r");
    let _ = writeln!(
        s,
        "{:<10} {:>10} {:>10} {:>7} {:>7} {:>7} {:>7}\r",
        "tile", "in/s", "out/s", "busy%", "idle%", "bp%", "queue"
    );
    for (name, stats) in r.tiles() {
        let (a, b) = (
            prev.get(&name).copied().unwrap_or_default(),
            now.get(&name).copied().unwrap_or_default(),
        );
        let total = (b.busy + b.idle + b.back).saturating_sub(a.busy + a.idle + a.back);
        let _ = writeln!(
            s,
            "{:<10} {:>10.0} {:>10.0} {:>7.1} {:>7.1} {:>7.1} {:>7}\r",
            name,
            (b.in_ - a.in_) as f64 / secs,
            (b.out - a.out) as f64 / secs,
            pct(b.busy - a.busy, total),
            pct(b.idle - a.idle, total),
            pct(b.back - a.back, total),
            get(&stats.queue_depth),
        );
    }
    let _ = writeln!(s, "\r");
    let _ = writeln!(
        s,
        "latency µs    p50 / p99   verified {} / {}   executed {} / {}   committed {} / {}\r",
        dp.verify_latency.quantile(0.5),
        dp.verify_latency.quantile(0.99),
        rt.exec_latency.quantile(0.5),
        rt.exec_latency.quantile(0.99),
        rt.commit_latency.quantile(0.5),
        rt.commit_latency.quantile(0.99),
    );
    let pc = &rt.preconf;
    let (promised, held) = (0..runtime::preconf::calibration::BUCKETS).fold((0, 0), |(p, h), b| {
        (p + get(&pc.promises[1][b]), h + get(&pc.held[1][b]))
    });
    let _ = writeln!(
        s,
        "preconf       issued {} / {} / {} (rejected / admitted / executed)   p50 / p99 µs {} / {}   admitted: ECE {:.3}  Brier {:.3}  held {:.1}%\r",
        get(&pc.issued[0]),
        get(&pc.issued[1]),
        get(&pc.issued[2]),
        pc.latency.quantile(0.5),
        pc.latency.quantile(0.99),
        get(&pc.ece_micros[1]) as f64 / 1e6,
        get(&pc.brier_micros[1]) as f64 / 1e6,
        pct(held, promised),
    );
    let _ = writeln!(
        s,
        "transactions  ok {}  failed {}  committed {}  sequencer {}\r",
        get(&rt.executed_ok),
        get(&rt.executed_err),
        get(&rt.committed),
        get(&rt.sequencer_depth)
    );
    let _ = writeln!(
        s,
        "drops         bad-sig {}  duplicate {}  ring-full {}  parse {}  runtime {}\r",
        get(&dp.bad_signature),
        get(&dp.duplicate),
        get(&dp.verify_ring_full),
        dataplane::ParseError::ALL
            .iter()
            .map(|e| dp.parse_dropped(*e))
            .sum::<u64>(),
        runtime::metrics::RuntimeDrop::ALL
            .iter()
            .map(|d| rt.dropped(*d))
            .sum::<u64>(),
    );
    let _ = writeln!(
        s,
        "storage       commits {}  commit p99 {} µs  errors {}  cache hits {}/{}\r",
        get(&rt.commit.out_total),
        rt.slot_commit_latency.quantile(0.99),
        get(&rt.commit_errors),
        get(&rt.account_cache_hits),
        get(&rt.account_reads),
    );
    storage_rows(&mut s, &r.storage);
    let mut apps: Vec<_> = rt
        .apps
        .slots
        .iter()
        .filter_map(|a| a.read(|p, a| (p, get(&a.transactions), get(&a.compute_units))))
        .collect();
    apps.sort_by_key(|a| std::cmp::Reverse(a.1));
    let _ = writeln!(s, "\r\ntop apps (program, transactions, CU)\r");
    for (p, t, cu) in apps.iter().take(5) {
        let _ = writeln!(s, "  {p:<44} {t:>10} {cu:>14}\r");
    }
    s
}

/// The device array as its store publishes it: the store's declared counters on one line,
/// then one row per device with every declared device counter as a column.
fn storage_rows(s: &mut String, st: &storage::array::publish::StorageCounters) {
    let n = st.device_count();
    if n == 0 {
        return;
    }
    let _ = write!(s, "array        ");
    for (k, v) in st.store.fields().chain(st.cache.fields()) {
        let _ = write!(s, " {k} {v}");
    }
    let _ = write!(s, "\r\n  {:>6}", "device");
    let columns = storage::array::publish::DeviceCounters::COUNTERS;
    let width = |field: &str| field.len().max(10);
    for c in columns {
        let _ = write!(s, " {:>w$}", c.field, w = width(c.field));
    }
    let _ = writeln!(s, "\r");
    for (i, d) in st.device[..n].iter().enumerate() {
        let _ = write!(s, "  {i:>6}");
        for c in columns {
            let _ = write!(s, " {:>w$}", c.value(d), w = width(c.field));
        }
        let _ = writeln!(s, "\r");
    }
}

/// Run until q / Esc / Ctrl-C, or for `frames` refreshes if given.
pub fn run(r: &'static MetricsRegion, frames: Option<u64>) -> anyhow::Result<()> {
    let tty = std::io::stdout().is_terminal();
    let mut out = std::io::stdout();
    if tty {
        terminal::enable_raw_mode()?;
        execute!(out, terminal::EnterAlternateScreen, cursor::Hide)?;
    }
    let result = (|| -> anyhow::Result<()> {
        let mut prev = snapshot(r);
        let mut last = Instant::now();
        let mut shown = 0u64;
        loop {
            let deadline = last + REFRESH;
            while Instant::now() < deadline {
                let wait = deadline.saturating_duration_since(Instant::now());
                if tty && event::poll(wait)? {
                    if let Event::Key(k) = event::read()? {
                        let ctrl_c = k.code == KeyCode::Char('c')
                            && k.modifiers.contains(KeyModifiers::CONTROL);
                        if ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) {
                            return Ok(());
                        }
                    }
                } else if !tty {
                    std::thread::sleep(wait);
                }
            }
            let now = snapshot(r);
            let secs = last.elapsed().as_secs_f64();
            last = Instant::now();
            let text = frame(r, &prev, &now, secs);
            prev = now;
            if tty {
                execute!(
                    out,
                    cursor::MoveTo(0, 0),
                    terminal::Clear(terminal::ClearType::All)
                )?;
            }
            out.write_all(text.as_bytes())?;
            out.flush()?;
            shown += 1;
            if frames.is_some_and(|f| shown >= f) {
                return Ok(());
            }
        }
    })();
    if tty {
        let _ = execute!(out, cursor::Show, terminal::LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
    result
}
