//! Kernel network settings the UDP socket backend depends on.

use super::{Finding, save_state, take_state};
use appliance::config::Config;

const PERSIST_FILE: &str = "/etc/sysctl.d/60-gigacompute.conf";
/// Packets a CPU may queue before the stack drops them.
const BACKLOG_WANT: u64 = 10_000;

fn path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

fn read(key: &str) -> Option<u64> {
    std::fs::read_to_string(path(key)).ok()?.trim().parse().ok()
}

/// (key, wanted minimum) for this config.
fn wanted(cfg: &Config) -> Vec<(&'static str, u64)> {
    let rcvbuf = cfg.net.recv_buffer_bytes as u64;
    vec![
        ("net.core.rmem_max", rcvbuf),
        ("net.core.rmem_default", rcvbuf.min(8 << 20)),
        ("net.core.netdev_max_backlog", BACKLOG_WANT),
    ]
}

pub fn check(cfg: &Config) -> Vec<Finding> {
    wanted(cfg)
        .into_iter()
        .map(|(k, want)| match read(k) {
            Some(v) if v >= want => Finding::pass(format!("{k} = {v}")),
            Some(v) => Finding::warn(
                format!("{k} = {v} < {want}: the kernel caps the socket buffer and drops bursts"),
                format!("sudo sysctl -w {k}={want}   (or sudo gigacompute configure init sysctl)"),
            ),
            None => Finding::warn(format!("{k} not readable"), "check /proc/sys is mounted"),
        })
        .collect()
}

pub fn init(cfg: &Config) -> anyhow::Result<()> {
    let want = wanted(cfg);
    save_state(
        "sysctl",
        &want
            .iter()
            .filter_map(|(k, _)| read(k).map(|v| (k.to_string(), v.to_string())))
            .collect::<Vec<_>>(),
    )?;
    let mut persist = String::from("# written by `gigacompute configure init sysctl`\n");
    for (k, w) in want {
        if read(k).is_some_and(|v| v < w) {
            std::fs::write(path(k), w.to_string())?;
        }
        persist.push_str(&format!("{k} = {}\n", read(k).unwrap_or(w)));
    }
    if std::path::Path::new("/etc/sysctl.d").is_dir() {
        std::fs::write(PERSIST_FILE, persist)?;
    }
    Ok(())
}

pub fn fini() -> anyhow::Result<()> {
    for (k, v) in take_state("sysctl")? {
        std::fs::write(path(&k), v)?;
    }
    let _ = std::fs::remove_file(PERSIST_FILE);
    Ok(())
}
