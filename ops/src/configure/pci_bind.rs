//! Binding the data-plane NICs (`[dpdk] pci_allow`) to a driver DPDK's poll-mode drivers can
//! use, through sysfs (`driver_override`, then a re-probe), the way dpdk-devbind does it.
//!
//! The driver: vfio-pci where the host has an IOMMU (or vfio's no-IOMMU mode is offered),
//! else uio_pci_generic (a VM without a virtual IOMMU, as under qemu's defaults). Each
//! device's previous driver is saved so `fini` gives it back. Refused: a device that is not a
//! network controller (a mistyped address could name a DMA engine or a disk), the NIC
//! carrying the default route, and the last NIC the kernel would keep (at boot, before the
//! network is up, there is no route yet to tell the management NIC by).

use super::DPDK_DRIVERS;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the PCI bus lives in sysfs (a test points it elsewhere).
pub struct Sysfs {
    pub root: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Self {
            root: "/sys".into(),
        }
    }
}

impl Sysfs {
    fn device(&self, addr: &str) -> PathBuf {
        self.root.join("bus/pci/devices").join(addr)
    }

    /// Whether `addr` is a network controller (PCI class 0x02).
    pub fn is_network(&self, addr: &str) -> bool {
        std::fs::read_to_string(self.device(addr).join("class"))
            .is_ok_and(|c| c.trim().trim_start_matches("0x").starts_with("02"))
    }

    /// PCI network controllers other than `except` that a kernel network driver holds.
    pub fn kernel_nics(&self, except: &[String]) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.root.join("bus/pci/devices")) else {
            return Vec::new();
        };
        dir.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|a| !except.contains(a) && self.is_network(a))
            .filter(|a| {
                self.driver(a)
                    .is_some_and(|d| !DPDK_DRIVERS.contains(&d.as_str()))
            })
            .collect()
    }

    /// The driver `addr` is bound to now.
    pub fn driver(&self, addr: &str) -> Option<String> {
        std::fs::read_link(self.device(addr).join("driver"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    /// vfio-pci where it can work, else uio_pci_generic.
    pub fn dpdk_driver(&self) -> &'static str {
        let iommu = std::fs::read_dir(self.root.join("kernel/iommu_groups"))
            .is_ok_and(|mut d| d.next().is_some());
        let noiommu = self
            .root
            .join("module/vfio/parameters/enable_unsafe_noiommu_mode")
            .exists();
        if iommu || noiommu {
            "vfio-pci"
        } else {
            "uio_pci_generic"
        }
    }

    /// Binds `addr` to `driver` (loading it first); returns the driver it had.
    pub fn bind(&self, addr: &str, driver: &str) -> anyhow::Result<Option<String>> {
        let dev = self.device(addr);
        anyhow::ensure!(dev.exists(), "PCI device {addr} not found");
        let old = self.driver(addr);
        if old.as_deref() == Some(driver) {
            return Ok(old);
        }
        let _ = Command::new("modprobe").arg(driver).status();
        if driver == "vfio-pci" && !self.root.join("kernel/iommu_groups").exists() {
            // No IOMMU: vfio only takes devices in its unsafe no-IOMMU mode.
            let p = self
                .root
                .join("module/vfio/parameters/enable_unsafe_noiommu_mode");
            let _ = std::fs::write(p, "1");
        }
        write(&dev.join("driver_override"), driver)?;
        if old.is_some() {
            write(&dev.join("driver/unbind"), addr)?;
        }
        write(&self.root.join("bus/pci/drivers_probe"), addr)?;
        let now = self.driver(addr);
        anyhow::ensure!(
            now.as_deref() == Some(driver),
            "{addr}: still bound to {} after binding it to {driver} (is the {driver} module available?)",
            now.as_deref().unwrap_or("no driver")
        );
        Ok(old)
    }

    /// Gives `addr` back to `driver` (or to whichever driver claims it, if empty).
    pub fn restore(&self, addr: &str, driver: &str) -> anyhow::Result<()> {
        let dev = self.device(addr);
        write(&dev.join("driver_override"), "\n")?;
        if self.driver(addr).is_some() {
            write(&dev.join("driver/unbind"), addr)?;
        }
        if driver.is_empty() {
            write(&self.root.join("bus/pci/drivers_probe"), addr)
        } else {
            write(
                &self.root.join("bus/pci/drivers").join(driver).join("bind"),
                addr,
            )
        }
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The PCI address of the NIC the default route leaves through, if any.
pub fn default_route_nic() -> Option<String> {
    let out = Command::new("ip")
        .args(["-o", "route", "show", "default"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let dev = text.split_whitespace().skip_while(|w| *w != "dev").nth(1)?;
    let link = std::fs::read_link(format!("/sys/class/net/{dev}/device")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// Binds every `pci_allow` device that is not on a DPDK driver yet; returns (address, the
/// driver it had) for each it moved.
pub fn bind_all(sys: &Sysfs, pci_allow: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let route = default_route_nic();
    let mut moved = Vec::new();
    for addr in pci_allow {
        let old = sys.driver(addr);
        if old.as_deref().is_some_and(|d| DPDK_DRIVERS.contains(&d)) {
            continue;
        }
        anyhow::ensure!(
            sys.is_network(addr),
            "refusing to bind {addr} to a DPDK driver: it is not a network controller (check dpdk.pci_allow against lspci -D)"
        );
        anyhow::ensure!(
            route.as_deref() != Some(addr.as_str()),
            "refusing to bind {addr} to a DPDK driver: the default route leaves through it"
        );
        anyhow::ensure!(
            !sys.kernel_nics(pci_allow).is_empty(),
            "refusing to bind {addr} to a DPDK driver: no NIC would be left to the kernel for management (ssh, RPC)"
        );
        let driver = sys.dpdk_driver();
        sys.bind(addr, driver)?;
        tracing::info!(%addr, driver, previous = old.as_deref().unwrap_or("none"), "NIC bound for DPDK");
        moved.push((addr.clone(), old.unwrap_or_default()));
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sysfs-shaped directory: one device bound to virtio-pci, drivers_probe a plain file.
    fn fake(iommu: bool) -> (tempfile::TempDir, Sysfs) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        let dev = root.join("bus/pci/devices/0000:00:04.0");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("class"), "0x020000\n").unwrap();
        let drv = root.join("bus/pci/drivers/virtio-pci");
        std::fs::create_dir_all(&drv).unwrap();
        std::os::unix::fs::symlink(&drv, dev.join("driver")).unwrap();
        std::fs::create_dir_all(root.join("kernel")).unwrap();
        if iommu {
            std::fs::create_dir_all(root.join("kernel/iommu_groups/0")).unwrap();
        }
        (t, Sysfs { root })
    }

    #[test]
    fn the_driver_follows_the_iommu() {
        assert_eq!(fake(true).1.dpdk_driver(), "vfio-pci");
        assert_eq!(fake(false).1.dpdk_driver(), "uio_pci_generic");
    }

    #[test]
    fn only_network_controllers_are_bound_and_one_nic_stays_with_the_kernel() {
        let (_t, sys) = fake(false);
        let allow = vec!["0000:00:04.0".to_string()];
        // The only NIC: binding it would leave nothing for management.
        let e = bind_all(&sys, &allow).unwrap_err();
        assert!(e.to_string().contains("no NIC would be left"), "{e}");
        // A second, kernel-held NIC: the first may go (the fake cannot really bind it).
        let mgmt = sys.root.join("bus/pci/devices/0000:00:03.0");
        std::fs::create_dir_all(&mgmt).unwrap();
        std::fs::write(mgmt.join("class"), "0x020000\n").unwrap();
        let drv = sys.root.join("bus/pci/drivers/virtio-pci");
        std::os::unix::fs::symlink(&drv, mgmt.join("driver")).unwrap();
        let e = bind_all(&sys, &allow).unwrap_err();
        assert!(e.to_string().contains("still bound to virtio-pci"), "{e}");
        // Not a NIC (a DMA engine's class).
        std::fs::write(
            sys.root.join("bus/pci/devices/0000:00:04.0/class"),
            "0x088000\n",
        )
        .unwrap();
        let e = bind_all(&sys, &allow).unwrap_err();
        assert!(e.to_string().contains("not a network controller"), "{e}");
    }

    #[test]
    fn a_bind_that_does_not_take_is_an_error_naming_the_driver() {
        // The fake has no kernel behind it: the device stays on virtio-pci.
        let (_t, sys) = fake(false);
        assert_eq!(sys.driver("0000:00:04.0").as_deref(), Some("virtio-pci"));
        let e = sys.bind("0000:00:04.0", "uio_pci_generic").unwrap_err();
        assert!(e.to_string().contains("still bound to virtio-pci"), "{e}");
        let dev = sys.root.join("bus/pci/devices/0000:00:04.0");
        assert_eq!(
            std::fs::read_to_string(dev.join("driver_override")).unwrap(),
            "uio_pci_generic"
        );
        assert!(
            sys.bind("0000:00:09.0", "vfio-pci").is_err(),
            "absent device"
        );
    }
}
