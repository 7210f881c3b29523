//! `gigacompute bench ...`: benchmarks over the real stages. Each prints a table and, with
//! `--json`, one JSON object as the last line. Figures are medians over `--runs` runs.

mod commit;
mod dataplane;
mod exec;
mod flood;
mod harness;
mod isolation;
mod pipeline;
mod sigverify;
mod spl;
mod storage;
mod workload;

use clap::{Args, Subcommand};
use serde_json::{Map, Value};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Signature verification per core: the exact verifier vs one-by-one verify_strict.
    Sigverify(BenchArgs),
    /// SVM execution of System transfers per worker (Agave's TransactionBatchProcessor).
    Exec(BenchArgs),
    /// The whole appliance: UDP in, verified, scheduled, executed, durably committed.
    Pipeline(BenchArgs),
    /// The device-array accounts engine against RocksDB: slot commits, reads, cold reads.
    Storage(storage::StorageArgs),
    /// The state commitment (root updates, proofs) against jmt.
    Commit(commit::CommitArgs),
    /// Receive + parse + dedup per core: the DPDK poll-mode path against the UDP socket.
    Dataplane(dataplane::DataplaneArgs),
    /// Four apps, one flooding: per-app throughput and p99 under the hotspot scheduler and
    /// the plain lock scheduler; worker scaling; hybrid against pessimistic concurrency.
    Isolation(isolation::IsolationArgs),
    /// Honest transfers at a steady rate with and without a flood (junk, duplicates, bad
    /// signatures, unfunded payers, expired blockhashes) from another address: goodput, p99,
    /// peak RSS.
    Flood(flood::FloodArgs),
}

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// Transactions per run.
    #[arg(long, default_value_t = 40_000)]
    pub txs: usize,
    /// Runs; figures are medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// SVM workers (exec, pipeline).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
    /// pipeline: also run each measurement with the metrics endpoint scraped every second and
    /// `gigacompute monitor` attached, and report the cost.
    #[arg(long)]
    pub observed: bool,
    /// pipeline: alternate runs on the device-array engine and the log store and report the
    /// ratio.
    #[arg(long)]
    pub compare_engines: bool,
    /// pipeline: the accounts engine (array or log).
    #[arg(long, value_enum, default_value = "array")]
    pub engine: appliance::config::StorageEngine,
}

pub fn run(c: BenchCommand) -> anyhow::Result<()> {
    let (title, args, rows) = match c {
        BenchCommand::Sigverify(a) => ("sigverify", a.clone(), sigverify::run(&a)?),
        BenchCommand::Exec(a) => ("exec", a.clone(), exec::run(&a)?),
        BenchCommand::Pipeline(a) => ("pipeline", a.clone(), pipeline::run(&a)?),
        BenchCommand::Storage(a) => {
            report("storage", &storage::run(&a)?, a.json);
            return Ok(());
        }
        BenchCommand::Commit(a) => {
            report("commit", &commit::run(&a)?, a.json);
            return Ok(());
        }
        BenchCommand::Dataplane(a) => {
            report("dataplane", &dataplane::run(&a)?, a.json);
            return Ok(());
        }
        BenchCommand::Isolation(a) => {
            report("isolation", &isolation::run(&a)?, a.json);
            return Ok(());
        }
        BenchCommand::Flood(a) => {
            report("flood", &flood::run(&a)?, a.json);
            return Ok(());
        }
    };
    report(title, &rows, args.json);
    Ok(())
}

/// Ordered (name, value, unit) rows.
pub type Rows = Vec<(&'static str, f64, &'static str)>;

fn report(title: &str, rows: &Rows, json: bool) {
    let mut out = String::new();
    out.push_str(&format!("bench {title} (medians)\n"));
    for (name, v, unit) in rows {
        out.push_str(&format!("  {name:<36} {v:>14.2} {unit}\n"));
    }
    let mut m = Map::new();
    m.insert("bench".into(), Value::String(title.into()));
    for (name, v, _) in rows {
        m.insert((*name).into(), serde_json::json!(v));
    }
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
        if json {
            println!("{}", Value::Object(m));
        }
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The nearest-rank percentile `q` (0..=1) of `v` (sorted in place); 0 when empty.
pub fn percentile(v: &mut [u64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i] as f64
}

pub fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}
