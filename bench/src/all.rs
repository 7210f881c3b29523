//! `bench all`: every benchmark in turn, each one's JSON written to `--out` with what measured
//! it (commit, machine, arguments, time), then the report and its charts rendered from those
//! files (`report.rs`). `bench report` renders again from files already written.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser};
use serde_json::{Value, json};

use crate::{BenchCommand, measure, report};

/// Each bench with the arguments of its full run and of its quick one (`--quick`: seconds, to
/// check the harness and the report; those figures mean nothing).
const BENCHES: [(&str, &str, &str); 14] = [
    ("sigverify", "", "--runs 1 --txs 600 --warmup-txs 100"),
    ("exec", "", "--runs 1 --txs 2000 --warmup-txs 200"),
    (
        "pipeline",
        "",
        "--runs 1 --txs 1500 --warmup-txs 300 --sweep-seconds 0.3",
    ),
    (
        "storage",
        "",
        "--accounts 20000 --slots 3 --updates-per-slot 2000 --reads-per-slot 8000 --runs 1 \
         --warmup-slots 2 --cold-reads 2000 --cache-mib 64 --sweep-accounts 20000 --sweep-slots 2 \
         --dir target/bench-quick",
    ),
    (
        "commit",
        "",
        "--accounts 20000 --slots 2 --runs 1 --history-mib 8",
    ),
    (
        "dataplane",
        "",
        "--runs 1 --seconds 0.3 --sweep-bursts 1,32 --sweep-seconds 0.1 --warmup-seconds 0.1 --packets 512",
    ),
    (
        "isolation",
        "",
        "--runs 1 --seconds 1 --rate 600 --flood 6 --txs 4000",
    ),
    ("flood", "", "--runs 1 --seconds 1 --honest-tps 500"),
    ("rpc", "", "--runs 1 --seconds 1"),
    (
        "preconf",
        "",
        "--phase-seconds 1.5 --rate 300 --cost-runs 1 --cost-txs 2000",
    ),
    ("sequencing", "", "--runs 1 --seconds 1 --capacity-txs 2000"),
    ("routing", "", "--runs 1 --seconds 0.5 --capacity-txs 2000"),
    (
        "tuner",
        "",
        "--runs 1 --phase-seconds 3 --probe-seconds 0.75 --grid-knobs admit_burst,batch_max --senders 512",
    ),
    (
        "scale",
        "",
        "--runs 1 --nodes 1,2 --seconds 1 --warmup-seconds 0.5 --payers 16 --moves 2",
    ),
];

#[derive(Args)]
pub struct AllArgs {
    /// Folder for each bench's JSON (`<bench>.json`) and the charts (`<bench>-<chart>.png`).
    #[arg(long)]
    pub out: PathBuf,
    /// The Markdown report to write; default OUT/BENCHMARKS.md.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Folder of the prose shown next to each bench's figures (`<bench>.md`).
    #[arg(long, default_value = "bench/prose")]
    pub prose: PathBuf,
    /// Short runs (seconds each) that check the harness and the report; the figures mean
    /// nothing.
    #[arg(long)]
    pub quick: bool,
    /// Only these benches (comma-separated); the report covers every JSON in OUT.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

#[derive(Args)]
pub struct ReportArgs {
    /// Folder of the benches' JSON files (as `bench all --out` writes them).
    #[arg(long)]
    pub from: PathBuf,
    /// The Markdown report to write.
    #[arg(long)]
    pub to: PathBuf,
    /// Folder of the prose shown next to each bench's figures (`<bench>.md`).
    #[arg(long, default_value = "bench/prose")]
    pub prose: PathBuf,
}

/// The command line parsed as `gigacompute bench <args>` would be.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct BenchLine {
    #[command(subcommand)]
    command: BenchCommand,
}

pub fn run_all(a: &AllArgs) -> anyhow::Result<()> {
    if let Some(unknown) = a
        .only
        .iter()
        .find(|o| !BENCHES.iter().any(|(b, _, _)| b == o))
    {
        anyhow::bail!("--only: no bench named `{unknown}`");
    }
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let mut failed = Vec::new();
    // Read once, before any bench writes its JSON into the working tree: that output is not
    // a change to the source measured.
    let source = commit();
    for (bench, full, quick) in BENCHES {
        if !a.only.is_empty() && !a.only.iter().any(|o| o == bench) {
            continue;
        }
        let args = if a.quick { quick } else { full };
        eprintln!("== bench {bench} {args}");
        let result = run_one(bench, args, &source);
        if result.get("error").is_some() {
            failed.push(bench);
        }
        let path = a.out.join(format!("{bench}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&result)? + "\n")
            .with_context(|| path.display().to_string())?;
    }
    let to = a
        .report
        .clone()
        .unwrap_or_else(|| a.out.join("BENCHMARKS.md"));
    render(&a.out, &to, &a.prose)?;
    if !failed.is_empty() {
        anyhow::bail!("these benches failed (see their JSON): {failed:?}");
    }
    Ok(())
}

pub fn run_report(a: &ReportArgs) -> anyhow::Result<()> {
    render(&a.from, &a.to, &a.prose)
}

/// The charts into `dir`, the Markdown into `to`.
fn render(dir: &Path, to: &Path, prose: &Path) -> anyhow::Result<()> {
    let results = report::load(dir)?;
    report::charts(&results, dir)?;
    let md = report::markdown(&results, prose, &report::relative_link(to, dir))?;
    std::fs::write(to, md).with_context(|| to.display().to_string())?;
    eprintln!("wrote {}", to.display());
    Ok(())
}

/// One bench's JSON object with `meta`; a failure is recorded as `error`, not lost.
/// One bench's JSON; `source` is the commit the run started from ([`commit`], read before
/// the first bench wrote its results into the working tree).
fn run_one(bench: &str, args: &str, source: &str) -> Value {
    // Other work on the machine skews every figure: its 1-minute load average is recorded.
    let started = utc_now();
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok());
    let meta = |seconds: f64| {
        json!({
            "load_at_start": load,
            "args": args,
            "commit": source,
            "machine": machine(),
            "started_utc": started,
            "seconds": seconds,
        })
    };
    let start = Instant::now();
    let line = std::iter::once(bench).chain(args.split_whitespace());
    let outcome = BenchLine::try_parse_from(line)
        .map_err(anyhow::Error::from)
        .and_then(|l| measure(l.command));
    let mut v = match outcome {
        Ok((title, _, rep)) => rep.to_json(title),
        Err(e) => json!({"bench": bench, "error": format!("{e:#}")}),
    };
    v["meta"] = meta(start.elapsed().as_secs_f64());
    v
}

/// The commit the binary runs from (`git describe`-like: short hash, `-dirty` with local
/// changes); `GIGACOMPUTE_COMMIT` overrides it where there is no git checkout.
fn commit() -> String {
    if let Ok(c) = std::env::var("GIGACOMPUTE_COMMIT") {
        return c;
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=10", "HEAD"]) {
        Some(hash) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{hash}-dirty") } else { hash }
        }
        None => "unknown".into(),
    }
}

/// CPU model, cores, memory and kernel, read from /proc.
fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
    format!(
        "{model}, {} cores, {mem_gib:.0} GiB, Linux {}",
        crate::cores(),
        read("/proc/sys/kernel/osrelease").trim()
    )
}

/// Now as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_793), (2026, 12, 6));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn every_bench_line_parses() {
        for (bench, full, quick) in BENCHES {
            for args in [full, quick] {
                let line = std::iter::once(bench).chain(args.split_whitespace());
                assert!(
                    BenchLine::try_parse_from(line).is_ok(),
                    "bench {bench} {args}"
                );
            }
        }
    }

    /// BENCHMARKS.md is the rendering of bench/results/*.json with today's prose: a figure
    /// edited by hand, or prose changed without rendering again, fails here.
    #[test]
    fn benchmarks_md_is_the_rendering_of_the_results() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let results = report::load(&root.join("bench/results")).unwrap();
        let md = report::markdown(&results, &root.join("bench/prose"), "bench/results").unwrap();
        let committed = std::fs::read_to_string(root.join("BENCHMARKS.md")).unwrap();
        assert!(
            md == committed,
            "BENCHMARKS.md is stale: gigacompute bench report --from bench/results --to BENCHMARKS.md"
        );
        for r in &results {
            for plot in r["plots"].as_array().into_iter().flatten() {
                let chart = root
                    .join("bench/results")
                    .join(report::chart_file(r["bench"].as_str().unwrap(), plot));
                assert!(chart.exists(), "{} is missing", chart.display());
            }
        }
    }

    #[test]
    fn every_bench_has_prose_and_a_place_in_the_report() {
        let prose = Path::new(env!("CARGO_MANIFEST_DIR")).join("prose");
        for (bench, _, _) in BENCHES {
            assert!(report::ORDER.contains(&bench), "{bench}");
            assert!(prose.join(format!("{bench}.md")).exists(), "{bench}");
        }
    }
}
