//! `gigacompute bench ...`: benchmarks over the real stages. Each prints a table and, with
//! `--json`, one JSON object as the last line. Figures are medians over `--runs` runs.
//! `bench all` runs them all and renders BENCHMARKS.md from their JSON.

mod all;
mod chart;
mod commit;
mod dataplane;
mod exec;
mod flood;
mod harness;
mod isolation;
mod pipeline;
mod preconf;
mod report;
mod routing;
mod rpc;
mod scale;
mod sequencing;
mod sigverify;
mod spl;
mod storage;
mod tuner;
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
    /// Pre-confirmations over UDP through shifting phases: calibration (ECE, Brier against a
    /// base rate and a rule of thumb), receipt-to-pre-confirmation latency, throughput cost.
    Preconf(preconf::PreconfArgs),
    /// Fee per unit of what a transaction really uses against fee per requested compute unit,
    /// at 1.5x capacity: padded against honest requests, cheap against heavy, fees per second
    /// of execution, starvation.
    Sequencing(sequencing::SequencingArgs),
    /// Island-affinity routing against signature-hash routing on a skewed workload over UDP:
    /// receipt-to-executed p50/p99 at 50% and 90% of capacity, and exact copies that must
    /// never execute twice.
    Routing(routing::RoutingArgs),
    /// The self-tuning runtime against the defaults and each phase's best static setting (a
    /// grid search) on a workload that shifts (uncontended, hotspot, BPF-heavy, mix): compute
    /// units per second, learning time, worst window, regret and knob trajectories.
    Tuner(tuner::TunerArgs),
    /// Scale-out: 1, 2, 3, 4 appliance processes in one etcd-coordinated cluster on
    /// app-partitioned load, each confined to the same CPU quota (a cgroup): executed
    /// transactions per second and scaling efficiency against n x one node.
    Scale(scale::ScaleArgs),
    /// JSON-RPC reads (getAccountInfo, getMultipleAccounts) per second from many clients, and
    /// the latency from a slot's commit to its signatureSubscribe notifications at half load.
    Rpc(rpc::RpcArgs),
    /// Every benchmark above in turn: each one's JSON into --out, then BENCHMARKS.md and its
    /// charts rendered from those files, stamped with the commit and the machine.
    All(all::AllArgs),
    /// BENCHMARKS.md and its charts rendered again from the JSON files `bench all` wrote.
    Report(all::ReportArgs),
}

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// Transactions per run (sigverify: signatures per mix; pipeline: per timed phase).
    #[arg(long, default_value_t = 40_000)]
    pub txs: usize,
    /// Untimed transactions (signatures) run first: per node (pipeline), per worker (exec),
    /// per path (sigverify).
    #[arg(long, default_value_t = 4_000)]
    pub warmup_txs: usize,
    /// pipeline: seconds of sending at each offered load of the sweep.
    #[arg(long, default_value_t = 1.5)]
    pub sweep_seconds: f64,
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
    match c {
        BenchCommand::All(a) => return all::run_all(&a),
        BenchCommand::Report(a) => return all::run_report(&a),
        _ => {}
    }
    let (title, json, report) = measure(c)?;
    print_report(title, &report, json);
    Ok(())
}

/// Runs one benchmark: its name, whether `--json` was given, and what it measured.
fn measure(c: BenchCommand) -> anyhow::Result<(&'static str, bool, Report)> {
    Ok(match c {
        BenchCommand::Sigverify(a) => ("sigverify", a.json, sigverify::run(&a)?.into()),
        BenchCommand::Exec(a) => ("exec", a.json, exec::run(&a)?.into()),
        BenchCommand::Pipeline(a) => ("pipeline", a.json, pipeline::run(&a)?.into()),
        BenchCommand::Storage(a) => ("storage", a.json, storage::run(&a)?),
        BenchCommand::Commit(a) => ("commit", a.json, commit::run(&a)?),
        BenchCommand::Dataplane(a) => ("dataplane", a.json, dataplane::run(&a)?),
        BenchCommand::Isolation(a) => ("isolation", a.json, isolation::run(&a)?),
        BenchCommand::Rpc(a) => ("rpc", a.json, rpc::run(&a)?),
        BenchCommand::Flood(a) => ("flood", a.json, flood::run(&a)?.into()),
        BenchCommand::Preconf(a) => ("preconf", a.json, preconf::run(&a)?),
        BenchCommand::Sequencing(a) => ("sequencing", a.json, sequencing::run(&a)?),
        BenchCommand::Routing(a) => ("routing", a.json, routing::run(&a)?),
        BenchCommand::Tuner(a) => ("tuner", a.json, tuner::run(&a)?),
        BenchCommand::Scale(a) => ("scale", a.json, scale::run(&a)?),
        BenchCommand::All(_) | BenchCommand::Report(_) => {
            anyhow::bail!("`all` and `report` are not one benchmark")
        }
    })
}

/// Ordered (name, value, unit) rows.
pub type Rows = Vec<(&'static str, f64, &'static str)>;

/// What one benchmark measured: its figures and, for the report's charts, its curves.
#[derive(Default)]
pub struct Report {
    pub rows: Rows,
    pub plots: Vec<Plot>,
}

impl From<Rows> for Report {
    fn from(rows: Rows) -> Self {
        Self {
            rows,
            plots: Vec::new(),
        }
    }
}

/// One chart: named lines of (x, y) points over labelled axes.
pub struct Plot {
    /// File-name stem of the rendered chart (`<bench>-<id>.png`).
    pub id: &'static str,
    pub title: String,
    pub x_label: &'static str,
    pub y_label: &'static str,
    pub lines: Vec<Line>,
}

pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

impl Report {
    /// The JSON object `--json` prints: `bench`, one field per row, the rows again in order
    /// with their units (`rows`, what the report renders), and `plots` when any.
    pub fn to_json(&self, title: &str) -> Value {
        let mut m = Map::new();
        m.insert("bench".into(), Value::String(title.into()));
        for (name, v, _) in &self.rows {
            m.insert((*name).into(), serde_json::json!(v));
        }
        let rows = self
            .rows
            .iter()
            .map(|(name, v, unit)| serde_json::json!({"name": name, "value": v, "unit": unit}))
            .collect();
        m.insert("rows".into(), Value::Array(rows));
        if !self.plots.is_empty() {
            let plots = self
                .plots
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "id": p.id,
                        "title": p.title,
                        "x_label": p.x_label,
                        "y_label": p.y_label,
                        "lines": p.lines.iter().map(|l| serde_json::json!({
                            "label": l.label,
                            "points": l.points,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            m.insert("plots".into(), Value::Array(plots));
        }
        Value::Object(m)
    }
}

fn print_report(title: &str, report: &Report, json: bool) {
    let mut out = String::new();
    out.push_str(&format!("bench {title} (medians)\n"));
    for (name, v, unit) in &report.rows {
        out.push_str(&format!("  {name:<36} {v:>14.2} {unit}\n"));
    }
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
        if json {
            println!("{}", report.to_json(title));
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
