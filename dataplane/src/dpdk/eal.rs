//! The Environment Abstraction Layer: arguments built from settings, started once per
//! process, and the launch of functions on its worker lcores.

use super::{DpdkError, sys};
use crate::config::DpdkConfig;
use std::collections::HashMap;
use std::ffi::{CString, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// argv for `rte_eal_init` (argv[0] included) from the `[dpdk]` section.
pub fn args(c: &DpdkConfig) -> Vec<String> {
    let mut lcores = vec![c.main_lcore];
    lcores.extend(c.rx_lcores.iter().copied());
    let list: Vec<String> = lcores.iter().map(u32::to_string).collect();
    let mut a = vec![
        "gigacompute".to_string(),
        "-l".into(),
        list.join(","),
        "--main-lcore".into(),
        c.main_lcore.to_string(),
        "--file-prefix".into(),
        c.file_prefix.clone(),
        "-m".into(),
        c.memory_mb.to_string(),
        // EAL's start-up chatter at INFO is not for the appliance's log.
        "--log-level".into(),
        "lib.eal:notice".into(),
    ];
    if c.no_huge {
        a.push("--no-huge".into());
    } else {
        // Unlinked as soon as mapped: a crash or kill leaves no hugepage files (and their
        // pages) behind. We run no DPDK secondary processes, which would need them.
        a.push("--huge-unlink".into());
        if !c.huge_dir.as_os_str().is_empty() {
            a.push("--huge-dir".into());
            a.push(c.huge_dir.display().to_string());
        }
    }
    if c.pci_allow.is_empty() && !c.vdevs.is_empty() {
        a.push("--no-pci".into());
    }
    for p in &c.pci_allow {
        a.push("-a".into());
        a.push(p.clone());
    }
    for v in &c.vdevs {
        a.push("--vdev".into());
        a.push(v.clone());
    }
    a.extend(c.eal_args.iter().cloned());
    a
}

static STARTED: AtomicBool = AtomicBool::new(false);

/// A started EAL. There is at most one per process.
#[derive(Debug)]
pub struct Eal {
    pub settings: DpdkConfig,
    /// Per launched lcore: set when its function returns, so [`Eal::wait`] can sleep instead
    /// of spinning the main lcore the way `rte_eal_wait_lcore` does.
    finished: Mutex<HashMap<u32, Arc<AtomicBool>>>,
}

impl Eal {
    /// Start EAL. The calling thread becomes the main lcore for DPDK's purposes, but keeps
    /// the CPU affinity it had: the appliance's other threads (spawned after) must not all
    /// inherit the main lcore's single core.
    pub fn init(settings: &DpdkConfig) -> Result<Self, DpdkError> {
        settings
            .validate_eal()
            .map_err(|e| DpdkError::Setting(e.0))?;
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::EalAgain);
        }
        let args = args(settings);
        let cargs: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<Result<_, _>>()
            .map_err(|_| DpdkError::Setting("an EAL argument contains a NUL byte".into()))?;
        // EAL may permute argv; it gets its own array of pointers into `cargs`.
        let mut argv: Vec<*mut std::ffi::c_char> =
            cargs.iter().map(|c| c.as_ptr().cast_mut()).collect();
        let saved = affinity();
        // SAFETY: argv holds argc valid C strings that outlive the call.
        let rc = unsafe { sys::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        if let Some(set) = saved {
            restore_affinity(&set);
        }
        if rc < 0 {
            return Err(DpdkError::EalInit(super::last_error(), args.join(" ")));
        }
        tracing::info!(args = %args.join(" "), "EAL started");
        Ok(Self {
            settings: settings.clone(),
            finished: Mutex::new(HashMap::new()),
        })
    }

    /// Run `f` on worker lcore `lcore` (must be idle). [`Eal::wait`] joins it.
    pub fn launch(&self, lcore: u32, f: Box<dyn FnOnce() + Send>) -> Result<(), DpdkError> {
        extern "C" fn trampoline(arg: *mut c_void) -> c_int {
            // SAFETY: `arg` is the Box<Box<dyn FnOnce>> leaked by `launch`, taken once.
            let f = unsafe { Box::from_raw(arg.cast::<Box<dyn FnOnce() + Send>>()) };
            f();
            0
        }
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let f: Box<dyn FnOnce() + Send> = Box::new(move || {
            f();
            flag.store(true, Ordering::Release);
        });
        let arg = Box::into_raw(Box::new(f)).cast::<c_void>();
        // SAFETY: trampoline matches lcore_function_t; arg stays valid until it runs.
        let rc = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if rc != 0 {
            // SAFETY: not launched, so still ours to free.
            drop(unsafe { Box::from_raw(arg.cast::<Box<dyn FnOnce() + Send>>()) });
            return Err(DpdkError::Lcore(lcore, super::strerror(rc)));
        }
        self.finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(lcore, done);
        Ok(())
    }

    /// Wait for the function launched on `lcore` to return (sleeping, 1 ms at a time).
    pub fn wait(&self, lcore: u32) {
        let done = self
            .finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&lcore);
        if let Some(done) = done {
            while !done.load(Ordering::Acquire) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        // SAFETY: plain EAL call from the main lcore.
        unsafe { sys::rte_eal_wait_lcore(lcore) };
    }
}

fn affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; the call fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0)
            .then_some(set)
    }
}

fn restore_affinity(set: &libc::cpu_set_t) {
    // SAFETY: a cpu_set_t obtained from sched_getaffinity.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if rc != 0 {
        tracing::warn!("could not restore the main thread's CPU affinity after EAL init");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_follow_the_settings() {
        let s = DpdkConfig {
            main_lcore: 0,
            rx_lcores: vec![2, 3],
            file_prefix: "gc-test".into(),
            no_huge: true,
            memory_mb: 256,
            vdevs: vec!["net_null0".into()],
            ..DpdkConfig::default()
        };
        let a = args(&s).join(" ");
        assert!(
            a.contains("-l 0,2,3 --main-lcore 0 --file-prefix gc-test -m 256"),
            "{a}"
        );
        assert!(
            a.contains("--no-huge") && a.contains("--no-pci --vdev net_null0"),
            "{a}"
        );
        assert!(s.validate_eal().is_ok());
        let mut huge = s.clone();
        huge.no_huge = false;
        huge.huge_dir = "/dev/hugepages".into();
        let a = args(&huge).join(" ");
        assert!(
            a.contains("--huge-unlink --huge-dir /dev/hugepages") && !a.contains("--no-huge"),
            "{a}"
        );
        let mut bad = s.clone();
        bad.rx_lcores = vec![0];
        assert!(bad.validate_eal().is_err());
        bad.rx_lcores = vec![];
        assert!(bad.validate_eal().is_err());
    }
}
