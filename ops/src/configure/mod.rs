//! `gigacompute configure {check|init|fini} [STAGE]`: host preparation for the appliance.
//!
//! `check` is read-only and reports each stage PASS / WARN / FAIL with the fix; it exits 1 when
//! anything FAILs. `init` applies a stage (root), saving what it changes under the state
//! directory; `fini` restores what `init` saved.

mod cpu;
mod hugepages;
mod limits;
mod nic;
mod pci_bind;
mod storage;
mod sysctl;

use appliance::config::Config;
use clap::{Subcommand, ValueEnum};
use nic::DPDK_DRIVERS;
use std::path::PathBuf;

#[derive(Subcommand, Clone, Copy)]
pub enum Action {
    /// Report each stage (read-only).
    Check {
        #[arg(value_enum)]
        stage: Option<Stage>,
    },
    /// Apply a stage (needs root); saves the values it replaces.
    Init {
        #[arg(value_enum)]
        stage: Option<Stage>,
    },
    /// Undo `init`: restore the saved values.
    Fini {
        #[arg(value_enum)]
        stage: Option<Stage>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Hugepages,
    Cpu,
    Nic,
    Limits,
    Sysctl,
    Storage,
}

impl Stage {
    const ALL: [Stage; 6] = [
        Stage::Hugepages,
        Stage::Cpu,
        Stage::Nic,
        Stage::Limits,
        Stage::Sysctl,
        Stage::Storage,
    ];

    fn name(self) -> &'static str {
        match self {
            Stage::Hugepages => "hugepages",
            Stage::Cpu => "cpu",
            Stage::Nic => "nic",
            Stage::Limits => "limits",
            Stage::Sysctl => "sysctl",
            Stage::Storage => "storage",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub status: Status,
    pub what: String,
    pub fix: Option<String>,
}

impl Finding {
    pub fn pass(what: impl Into<String>) -> Self {
        Self {
            status: Status::Pass,
            what: what.into(),
            fix: None,
        }
    }
    pub fn warn(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Warn,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn fail(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Where `init` keeps the values it replaced.
pub fn state_dir() -> PathBuf {
    std::env::var_os("GIGACOMPUTE_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/gigacompute/configure"))
}

/// The repository's (or installed) scripts directory.
pub fn scripts_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("GIGACOMPUTE_HOME").map(|h| PathBuf::from(h).join("scripts")),
        Some(PathBuf::from("scripts")),
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent()?.parent()?.parent().map(|p| p.join("scripts"))),
        Some(PathBuf::from("/usr/lib/gigacompute/scripts")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("hugepages.sh").exists())
}

fn check_stage(stage: Stage, cfg: &Config) -> Vec<Finding> {
    match stage {
        Stage::Hugepages => hugepages::check(),
        Stage::Cpu => cpu::check(cfg),
        Stage::Nic => nic::check(cfg),
        Stage::Limits => limits::check(),
        Stage::Sysctl => sysctl::check(cfg),
        Stage::Storage => storage::check(cfg),
    }
}

fn require_root() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    anyhow::ensure!(
        unsafe { libc::geteuid() } == 0,
        "init and fini change the host: run as root"
    );
    Ok(())
}

/// Run the action; returns the process exit code.
pub fn run(action: Action, cfg: &Config) -> anyhow::Result<i32> {
    let stages = |s: Option<Stage>| s.map_or(Stage::ALL.to_vec(), |s| vec![s]);
    match action {
        Action::Check { stage } => {
            let mut worst = Status::Pass;
            let mut out = String::new();
            for s in stages(stage) {
                for f in check_stage(s, cfg) {
                    worst = worst.max(f.status);
                    let tag = match f.status {
                        Status::Pass => "PASS",
                        Status::Warn => "WARN",
                        Status::Fail => "FAIL",
                    };
                    out.push_str(&format!("{:<10} {tag}  {}\n", s.name(), f.what));
                    if let Some(fix) = f.fix {
                        out.push_str(&format!("{:<10}       fix: {fix}\n", ""));
                    }
                }
            }
            #[allow(clippy::print_stdout)]
            {
                print!("{out}");
            }
            Ok(if worst == Status::Fail { 1 } else { 0 })
        }
        Action::Init { stage } => {
            require_root()?;
            for s in stages(stage) {
                match s {
                    Stage::Hugepages => hugepages::run_script("init")?,
                    Stage::Cpu => cpu::init()?,
                    Stage::Nic => nic::init(cfg)?,
                    Stage::Limits => limits::init()?,
                    Stage::Sysctl => sysctl::init(cfg)?,
                    // Blank devices are formatted by the appliance at first start.
                    Stage::Storage => {}
                }
                tracing::info!(stage = s.name(), "applied");
            }
            Ok(0)
        }
        Action::Fini { stage } => {
            require_root()?;
            for s in stages(stage) {
                match s {
                    Stage::Hugepages => hugepages::run_script("fini")?,
                    Stage::Cpu => cpu::fini()?,
                    Stage::Nic => nic::fini()?,
                    Stage::Limits => limits::fini()?,
                    Stage::Sysctl => sysctl::fini()?,
                    Stage::Storage => {}
                }
                tracing::info!(stage = s.name(), "restored");
            }
            Ok(0)
        }
    }
}

/// Saved "key value" lines for a stage.
pub fn save_state(stage: &str, lines: &[(String, String)]) -> anyhow::Result<()> {
    let dir = state_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(stage);
    if path.exists() {
        return Ok(()); // keep the values from before the first init
    }
    let text: String = lines.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    std::fs::write(path, text)?;
    Ok(())
}

pub fn take_state(stage: &str) -> anyhow::Result<Vec<(String, String)>> {
    let path = state_dir().join(stage);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    std::fs::remove_file(&path)?;
    Ok(text
        .lines()
        .filter_map(|l| {
            l.split_once('\t')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect())
}
