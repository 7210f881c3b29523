//! Process limits: locked memory (hugepage and DMA buffers) and open files.

use super::{Finding, save_state, take_state};

const LIMITS_FILE: &str = "/etc/security/limits.d/90-gigacompute.conf";
/// Open files the appliance wants (sockets, RPC connections, storage files).
const NOFILE_WANT: u64 = 65_536;

fn rlimit(res: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrlimit(res, &mut r) };
    (r.rlim_cur, r.rlim_max)
}

fn show(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

pub fn check() -> Vec<Finding> {
    let mut out = Vec::new();
    let (memlock, _) = rlimit(libc::RLIMIT_MEMLOCK);
    if memlock == libc::RLIM_INFINITY {
        out.push(Finding::pass("memlock unlimited"));
    } else {
        out.push(Finding::warn(
            format!("memlock {} bytes: DPDK and pinned buffer pools need unlimited", show(memlock)),
            "LimitMEMLOCK=infinity in the systemd unit (etc/systemd/gigacompute.service), or sudo gigacompute configure init limits",
        ));
    }
    let (nofile, _) = rlimit(libc::RLIMIT_NOFILE);
    if nofile >= NOFILE_WANT {
        out.push(Finding::pass(format!("nofile {}", show(nofile))));
    } else {
        out.push(Finding::warn(
            format!("nofile {} is below {NOFILE_WANT}", show(nofile)),
            "LimitNOFILE=1048576 in the systemd unit, or sudo gigacompute configure init limits",
        ));
    }
    out
}

pub fn init() -> anyhow::Result<()> {
    save_state("limits", &[("file".into(), LIMITS_FILE.into())])?;
    std::fs::write(
        LIMITS_FILE,
        "# written by `gigacompute configure init limits`\n* soft memlock unlimited\n* hard memlock unlimited\n* soft nofile 1048576\n* hard nofile 1048576\n",
    )?;
    Ok(())
}

pub fn fini() -> anyhow::Result<()> {
    if !take_state("limits")?.is_empty() {
        let _ = std::fs::remove_file(LIMITS_FILE);
    }
    Ok(())
}
