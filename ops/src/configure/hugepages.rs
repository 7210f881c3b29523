//! Hugepages: delegated to scripts/hugepages.sh, which reads hugepages.conf.

use super::{Finding, scripts_dir};

pub fn check() -> Vec<Finding> {
    let Some(dir) = scripts_dir() else {
        return vec![Finding::warn(
            "scripts/hugepages.sh not found",
            "run from the repository, or set GIGACOMPUTE_HOME to it",
        )];
    };
    let out = std::process::Command::new(dir.join("hugepages.sh"))
        .arg("check")
        .output();
    match out {
        Ok(o) if o.status.success() => vec![Finding::pass(
            String::from_utf8_lossy(&o.stdout).trim().to_string(),
        )],
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            // The embedded profile (UDP sockets, files) runs without hugepages; the bare-metal
            // profile (DPDK, storage buffer pool) needs them.
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    Finding::warn(
                        format!(
                            "{} (needed by the bare-metal profile)",
                            l.trim_start_matches("hugepages: FAIL: ")
                        ),
                        "sudo scripts/hugepages.sh init   (pages and mounts from hugepages.conf)",
                    )
                })
                .collect()
        }
        Err(e) => vec![Finding::fail(
            format!("cannot run hugepages.sh: {e}"),
            "check the script is executable",
        )],
    }
}

pub fn run_script(action: &str) -> anyhow::Result<()> {
    let dir = scripts_dir().ok_or_else(|| anyhow::anyhow!("scripts/hugepages.sh not found"))?;
    let st = std::process::Command::new(dir.join("hugepages.sh"))
        .arg(action)
        .status()?;
    anyhow::ensure!(st.success(), "hugepages.sh {action} failed");
    Ok(())
}
