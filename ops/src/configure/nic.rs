//! NIC: the interface carrying the transaction port (channels, RX ring via ethtool) and NICs
//! bound to DPDK drivers (dpdk-devbind).

use super::{Finding, save_state, take_state};
use appliance::config::Config;
use std::net::IpAddr;
use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd).args(args).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// (interface, address) pairs from `ip -o -4 addr show`.
pub fn parse_ip_addrs(text: &str) -> Vec<(String, IpAddr)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let _idx = w.next()?;
            let ifname = w.next()?.trim_end_matches(':').to_string();
            let _fam = w.next()?;
            let addr = w.next()?.split('/').next()?.parse().ok()?;
            Some((ifname, addr))
        })
        .collect()
}

/// "Pre-set maximums" and "Current hardware settings" values of `key` (e.g. "Combined", "RX")
/// in `ethtool -l` / `ethtool -g` output.
pub fn parse_ethtool(text: &str, key: &str) -> Option<(u64, u64)> {
    let mut max = None;
    let mut cur = None;
    let mut section = 0;
    for l in text.lines() {
        if l.starts_with("Pre-set maximums") {
            section = 1;
        } else if l.starts_with("Current hardware settings") {
            section = 2;
        } else if let Some(v) = l.strip_prefix(&format!("{key}:")) {
            let v = v.trim().parse().ok();
            match section {
                1 => max = v,
                2 => cur = v,
                _ => {}
            }
        }
    }
    Some((max?, cur?))
}

/// State of an offload in `ethtool -k` output: `Some(on)`, or `None` when the driver does not
/// offer it ("[fixed]" off or absent).
pub fn offload(text: &str, feature: &str) -> Option<bool> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{feature}:")))?;
    let on = line.contains(": on");
    (on || !line.contains("[fixed]")).then_some(on)
}

fn interfaces(cfg: &Config) -> Result<Vec<String>, Finding> {
    let bind = cfg.net.bind.ip();
    if bind.is_loopback() {
        return Ok(Vec::new());
    }
    let addrs = run("ip", &["-o", "-4", "addr", "show"])
        .map(|t| parse_ip_addrs(&t))
        .unwrap_or_default();
    let ifs: Vec<String> = addrs
        .into_iter()
        .filter(|(i, a)| i != "lo" && (bind.is_unspecified() || *a == bind))
        .map(|(i, _)| i)
        .collect();
    if ifs.is_empty() && !bind.is_unspecified() {
        return Err(Finding::fail(
            format!("net.bind {bind} is not an address of this host"),
            "set [net] bind to an address of this host (ip -4 addr)",
        ));
    }
    Ok(ifs)
}

pub fn check(cfg: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    match interfaces(cfg) {
        Err(f) => out.push(f),
        Ok(ifs) if ifs.is_empty() => out.push(Finding::pass(format!(
            "transaction port {} is on loopback: no NIC to tune",
            cfg.net.bind
        ))),
        Ok(ifs) => {
            let ifs = if run("ethtool", &["--version"]).is_none() {
                out.push(Finding::warn(
                    format!("ethtool not installed: cannot inspect {}", ifs.join(", ")),
                    "apt-get install ethtool",
                ));
                Vec::new()
            } else {
                ifs
            };
            for i in ifs {
                match run("ethtool", &["-l", &i]).and_then(|t| parse_ethtool(&t, "Combined")) {
                    Some((max, cur)) if cur < max => out.push(Finding::warn(
                        format!("{i}: {cur} of {max} combined channels in use: RSS spreads over fewer queues"),
                        format!("sudo ethtool -L {i} combined {max}   (or configure init nic)"),
                    )),
                    Some((max, cur)) => out.push(Finding::pass(format!("{i}: {cur}/{max} combined channels"))),
                    None => out.push(Finding::pass(format!("{i}: channel count not reported by the driver"))),
                }
                if let Some(k) = run("ethtool", &["-k", &i]) {
                    for (feature, why) in [
                        (
                            "rx-checksumming",
                            "the kernel verifies UDP checksums in software",
                        ),
                        (
                            "receive-hashing",
                            "RSS cannot spread flows over the RX queues",
                        ),
                    ] {
                        match offload(&k, feature) {
                            Some(true) => out.push(Finding::pass(format!("{i}: {feature} on"))),
                            Some(false) => out.push(Finding::warn(
                                format!("{i}: {feature} off: {why}"),
                                format!(
                                    "sudo ethtool -K {i} {} on",
                                    if feature == "receive-hashing" {
                                        "rxhash"
                                    } else {
                                        "rx"
                                    }
                                ),
                            )),
                            None => {}
                        }
                    }
                }
                match run("ethtool", &["-g", &i]).and_then(|t| parse_ethtool(&t, "RX")) {
                    Some((max, cur)) if cur < max => out.push(Finding::warn(
                        format!("{i}: RX ring {cur} of {max}: bursts overflow a short ring"),
                        format!("sudo ethtool -G {i} rx {max}   (or configure init nic)"),
                    )),
                    Some((max, cur)) => {
                        out.push(Finding::pass(format!("{i}: RX ring {cur}/{max}")))
                    }
                    None => out.push(Finding::pass(format!(
                        "{i}: ring size not reported by the driver"
                    ))),
                }
            }
        }
    }
    if cfg.dpdk.enabled {
        out.extend(dpdk_devices(
            cfg,
            std::path::Path::new("/sys/bus/pci/devices"),
        ));
    }
    let devbind = ["dpdk-devbind.py", "dpdk-devbind"]
        .into_iter()
        .find(|c| run(c, &["--help"]).is_some());
    match devbind.and_then(|c| run(c, &["--status-dev", "net"])) {
        Some(status) => {
            let dpdk = status
                .split("Network devices using kernel driver")
                .next()
                .unwrap_or("")
                .lines()
                .filter(|l| l.contains("drv="))
                .count();
            out.push(Finding::pass(format!("{dpdk} NIC(s) bound to DPDK drivers (dpdk-devbind)")));
        }
        None => out.push(Finding::pass(
            "dpdk-devbind not installed: only the DPDK dataplane needs it (scripts/install-deps.sh)",
        )),
    }
    out
}

/// Drivers a DPDK poll-mode driver can use a PCI NIC through.
pub const DPDK_DRIVERS: [&str; 3] = ["vfio-pci", "uio_pci_generic", "igb_uio"];

/// Each PCI device in `[dpdk] pci_allow` exists and is bound to a DPDK-capable driver.
pub fn dpdk_devices(cfg: &Config, sys_pci: &std::path::Path) -> Vec<Finding> {
    let mut out = Vec::new();
    if cfg.dpdk.pci_allow.is_empty() {
        out.push(Finding::pass(if cfg.dpdk.vdevs.is_empty() {
            "dpdk: no PCI allow list (EAL takes every DPDK-bound device)".to_string()
        } else {
            format!("dpdk: virtual devices only ({})", cfg.dpdk.vdevs.join(", "))
        }));
        return out;
    }
    for addr in &cfg.dpdk.pci_allow {
        let dev = sys_pci.join(addr);
        if !dev.exists() {
            out.push(Finding::fail(
                format!("dpdk: PCI device {addr} not found"),
                "fix dpdk.pci_allow (lspci -D lists the addresses)",
            ));
            continue;
        }
        let driver = std::fs::read_link(dev.join("driver"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        match driver {
            Some(d) if DPDK_DRIVERS.contains(&d.as_str()) => {
                out.push(Finding::pass(format!("dpdk: {addr} bound to {d}")))
            }
            other => out.push(Finding::fail(
                format!(
                    "dpdk: {addr} is bound to {}, not a DPDK driver",
                    other.as_deref().unwrap_or("no driver")
                ),
                format!(
                    "sudo gigacompute configure init nic   (or scripts/bind-nic.sh bind {addr})"
                ),
            )),
        }
    }
    out
}

pub fn init(cfg: &Config) -> anyhow::Result<()> {
    let ifs = interfaces(cfg).map_err(|f| anyhow::anyhow!(f.what))?;
    let mut saved = Vec::new();
    for i in &ifs {
        if let Some((max, cur)) =
            run("ethtool", &["-l", i]).and_then(|t| parse_ethtool(&t, "Combined"))
        {
            saved.push((format!("{i} combined"), cur.to_string()));
            if cur < max {
                run("ethtool", &["-L", i, "combined", &max.to_string()]);
            }
        }
        if let Some((max, cur)) = run("ethtool", &["-g", i]).and_then(|t| parse_ethtool(&t, "RX")) {
            saved.push((format!("{i} rx"), cur.to_string()));
            if cur < max {
                run("ethtool", &["-G", i, "rx", &max.to_string()]);
            }
        }
    }
    if cfg.dpdk.enabled {
        for (addr, driver) in super::pci_bind::bind_all(&Default::default(), &cfg.dpdk.pci_allow)? {
            saved.push((format!("{addr} driver"), driver));
        }
    }
    save_state("nic", &saved)
}

pub fn fini() -> anyhow::Result<()> {
    for (k, v) in take_state("nic")? {
        if let Some((i, what)) = k.split_once(' ') {
            match what {
                "combined" => drop(run("ethtool", &["-L", i, "combined", &v])),
                "driver" => super::pci_bind::Sysfs::default().restore(i, &v)?,
                _ => drop(run("ethtool", &["-G", i, "rx", &v])),
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_and_ethtool() {
        let ip = "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global eth0\n";
        let a = parse_ip_addrs(ip);
        assert_eq!(a[1], ("eth0".to_string(), "10.0.2.15".parse().unwrap()));
        let l = "Channel parameters for eth0:\nPre-set maximums:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\tn/a\nCombined:\t8\nCurrent hardware settings:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\tn/a\nCombined:\t2\n";
        assert_eq!(parse_ethtool(l, "Combined"), Some((8, 2)));
        let g = "Ring parameters for eth0:\nPre-set maximums:\nRX:\t\t4096\nTX:\t\t4096\nCurrent hardware settings:\nRX:\t\t256\nTX:\t\t256\n";
        assert_eq!(parse_ethtool(g, "RX"), Some((4096, 256)));
        let k = "Features for eth0:\nrx-checksumming: on\nreceive-hashing: off [fixed]\nrx-vlan-filter: off\n";
        assert_eq!(offload(k, "rx-checksumming"), Some(true));
        assert_eq!(offload(k, "receive-hashing"), None);
        assert_eq!(offload(k, "rx-vlan-filter"), Some(false));
    }

    #[test]
    fn dpdk_devices_must_exist_and_be_bound_to_a_dpdk_driver() {
        let sys = tempfile::tempdir().unwrap();
        let drivers = sys.path().join("drivers");
        for (dev, drv) in [("0000:01:00.0", "vfio-pci"), ("0000:02:00.0", "ixgbe")] {
            std::fs::create_dir_all(drivers.join(drv)).unwrap();
            std::fs::create_dir_all(sys.path().join(dev)).unwrap();
            std::os::unix::fs::symlink(drivers.join(drv), sys.path().join(dev).join("driver"))
                .unwrap();
        }
        let mut cfg = Config::default();
        cfg.dpdk.enabled = true;
        cfg.dpdk.pci_allow = vec![
            "0000:01:00.0".into(),
            "0000:02:00.0".into(),
            "0000:09:00.0".into(),
        ];
        let f = dpdk_devices(&cfg, sys.path());
        assert_eq!(f.len(), 3);
        assert!(f[0].what.contains("bound to vfio-pci"), "{}", f[0].what);
        assert!(
            f[1].what.contains("ixgbe, not a DPDK driver"),
            "{}",
            f[1].what
        );
        assert!(f[2].what.contains("not found"), "{}", f[2].what);
    }
}
