//! CPU: isolated cores for pinned workers, and the frequency governor.

use super::{Finding, save_state, take_state};
use appliance::config::Config;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Parse a kernel CPU list such as "2-5,8".
pub fn parse_cpu_list(s: &str) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        // isolcpus may carry flags: "managed_irq,domain,2-5"
        if let Some((a, b)) = part.split_once('-') {
            if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                out.extend(a..=b);
            }
        } else if let Ok(n) = part.parse() {
            out.insert(n);
        }
    }
    out
}

fn cmdline_param(cmdline: &str, key: &str) -> Option<String> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")).map(str::to_string))
}

fn governors() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/devices/system/cpu") {
        for e in rd.flatten() {
            let p = e.path().join("cpufreq/scaling_governor");
            if let Ok(g) = std::fs::read_to_string(&p) {
                out.push((p, g.trim().to_string()));
            }
        }
    }
    out.sort();
    out
}

pub fn check(cfg: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let workers: BTreeSet<usize> = (0..cfg.runtime.workers)
        .filter_map(|i| runtime::worker_core(&cfg.runtime.worker_cores, i))
        .collect();
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let isolated = cmdline_param(&cmdline, "isolcpus")
        .map(|s| parse_cpu_list(&s))
        .unwrap_or_default();
    let nohz = cmdline_param(&cmdline, "nohz_full")
        .map(|s| parse_cpu_list(&s))
        .unwrap_or_default();
    let list = workers
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    if workers.is_subset(&isolated) && workers.is_subset(&nohz) {
        out.push(Finding::pass(format!(
            "worker cores {list} isolated (isolcpus, nohz_full)"
        )));
    } else {
        out.push(Finding::warn(
            format!("worker cores {list} are shared with the OS scheduler (not in isolcpus/nohz_full)"),
            format!("add `isolcpus={list} nohz_full={list} rcu_nocbs={list}` to the kernel command line and set runtime.worker_cores"),
        ));
    }
    if cfg.dpdk.enabled {
        // `-l` maps EAL lcore N to CPU N.
        let rx: BTreeSet<usize> = cfg.dpdk.rx_lcores.iter().map(|&c| c as usize).collect();
        let rx_list = rx
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",");
        if !rx.is_disjoint(&workers) {
            out.push(Finding::warn(
                format!("DPDK RX lcores {rx_list} are also SVM worker cores: a poll loop and a worker on one core starve each other"),
                "give dpdk.rx_lcores and runtime.worker_cores different cores",
            ));
        } else if rx.is_subset(&isolated) && rx.is_subset(&nohz) {
            out.push(Finding::pass(format!(
                "DPDK RX lcores {rx_list} isolated (isolcpus, nohz_full)"
            )));
        } else {
            out.push(Finding::warn(
                format!("DPDK RX lcores {rx_list} are shared with the OS scheduler: poll loops get preempted"),
                format!("add `isolcpus={rx_list} nohz_full={rx_list} rcu_nocbs={rx_list}` to the kernel command line"),
            ));
        }
    }
    let govs = governors();
    if govs.is_empty() {
        out.push(Finding::pass("cpufreq not exposed (VM or fixed frequency)"));
    } else if govs.iter().all(|(_, g)| g == "performance") {
        out.push(Finding::pass("governor: performance on every core"));
    } else {
        let others: BTreeSet<&str> = govs.iter().map(|(_, g)| g.as_str()).collect();
        out.push(Finding::warn(
            format!("governor {others:?}: frequency scaling adds latency"),
            "sudo gigacompute configure init cpu   (sets performance, fini restores)",
        ));
    }
    out
}

pub fn init() -> anyhow::Result<()> {
    let govs = governors();
    save_state(
        "cpu",
        &govs
            .iter()
            .map(|(p, g)| (p.display().to_string(), g.clone()))
            .collect::<Vec<_>>(),
    )?;
    for (p, _) in govs {
        std::fs::write(&p, "performance")?;
    }
    Ok(())
}

pub fn fini() -> anyhow::Result<()> {
    for (p, g) in take_state("cpu")? {
        std::fs::write(p, g)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(
            parse_cpu_list("2-4,7").into_iter().collect::<Vec<_>>(),
            vec![2, 3, 4, 7]
        );
        assert_eq!(
            parse_cpu_list("managed_irq,domain,1")
                .into_iter()
                .collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(
            cmdline_param("ro isolcpus=2,3 quiet", "isolcpus").as_deref(),
            Some("2,3")
        );
    }
}
