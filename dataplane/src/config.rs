//! The dataplane's sections of the appliance configuration: `[net]` (the kernel UDP path),
//! `[verify]` (signature verification tiles) and `[dpdk]` / `[dpdk.port]` (the kernel-bypass
//! path). Declared here, once: serde reads them from the TOML file, `Default` gives the
//! documented defaults, `validate` the allowed ranges. EAL and the port start from these same
//! types (`dpdk::eal::Eal::init`, `dpdk::port::Port::start`).

use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use telemetry::config::{InvalidConfig, ensure};

/// `[net]`: the transaction port on a kernel UDP socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    pub bind: SocketAddr,
    /// Datagrams per recvmmsg call.
    pub recv_burst: usize,
    pub recv_buffer_bytes: usize,
    /// Packet buffers allocated at start (every in-flight transaction holds one).
    pub packet_pool_size: usize,
    pub verify_ring_depth: usize,
    /// Recently seen datagrams each receiving core drops repeats of.
    pub recent_filter_entries: usize,
    /// Which verify tile a transaction goes to.
    pub routing: crate::route::Routing,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8003)),
            recv_burst: 64,
            recv_buffer_bytes: 32 << 20,
            packet_pool_size: 65536,
            verify_ring_depth: 8192,
            recent_filter_entries: 1 << 19,
            routing: crate::route::Routing::Signature,
        }
    }
}

impl NetConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        ensure((1..=128).contains(&self.recv_burst), || {
            "net.recv_burst must be 1..=128".into()
        })?;
        ensure(self.packet_pool_size >= 256, || {
            "net.packet_pool_size must be at least 256".into()
        })?;
        ensure(self.verify_ring_depth >= 1, || {
            "net.verify_ring_depth must be at least 1".into()
        })?;
        ensure(self.recent_filter_entries >= 8, || {
            "net.recent_filter_entries must be at least 8".into()
        })
    }
}

/// `[verify]`: the signature verification tiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    pub tiles: usize,
    pub batch_max: usize,
    /// Signatures remembered for dedup, in the one table all tiles share.
    pub dedup_capacity: usize,
    pub bank_ring_depth: usize,
    /// Core each verify tile is pinned to (by index); empty: unpinned.
    pub cores: Vec<usize>,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            tiles: 2,
            batch_max: 256,
            dedup_capacity: 4_000_000,
            bank_ring_depth: 16384,
            cores: Vec::new(),
        }
    }
}

impl VerifyConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let max = crate::counters::MAX_VERIFY_TILES;
        ensure((1..=max).contains(&self.tiles), || {
            format!("verify.tiles must be 1..={max}")
        })?;
        ensure(self.batch_max >= 1, || {
            "verify.batch_max must be at least 1".into()
        })?;
        ensure(self.dedup_capacity >= 1, || {
            "verify.dedup_capacity must be at least 1".into()
        })?;
        ensure(self.bank_ring_depth >= 1, || {
            "verify.bank_ring_depth must be at least 1".into()
        })?;
        ensure(
            self.cores.is_empty() || self.cores.len() == self.tiles,
            || "verify.cores must be empty (unpinned) or name one core per verify tile".into(),
        )
    }
}

/// `[dpdk]`: EAL and its lcores. `Eal::init` takes this section as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpdkConfig {
    pub enabled: bool,
    /// Main lcore (control: port set-up, stats): the thread that calls `Eal::init`.
    pub main_lcore: u32,
    /// One lcore per RX queue, in queue order.
    pub rx_lcores: Vec<u32>,
    pub file_prefix: String,
    /// Hugepage mount; empty: EAL finds one.
    pub huge_dir: PathBuf,
    /// Normal memory instead of hugepages (tests, VMs without hugepages).
    pub no_huge: bool,
    /// Memory EAL reserves, MiB.
    pub memory_mb: usize,
    /// PCI allow list; empty with vdevs given: PCI is not scanned.
    pub pci_allow: Vec<String>,
    pub vdevs: Vec<String>,
    /// Passed to EAL verbatim after the others.
    pub eal_args: Vec<String>,
    pub port: PortConfig,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            main_lcore: 0,
            rx_lcores: vec![1],
            file_prefix: "gigacompute".into(),
            huge_dir: PathBuf::new(),
            no_huge: false,
            memory_mb: 1024,
            pci_allow: Vec::new(),
            vdevs: Vec::new(),
            eal_args: Vec::new(),
            port: PortConfig::default(),
        }
    }
}

impl DpdkConfig {
    /// What EAL itself needs: distinct lcores, at least one RX lcore, a usable file prefix.
    /// `Eal::init` checks this whether or not the section is enabled (tests and benches
    /// start EAL directly).
    pub fn validate_eal(&self) -> Result<(), InvalidConfig> {
        let mut lcores = self.rx_lcores.clone();
        lcores.push(self.main_lcore);
        lcores.sort_unstable();
        lcores.dedup();
        ensure(
            !self.rx_lcores.is_empty() && lcores.len() == self.rx_lcores.len() + 1,
            || {
                format!(
                    "dpdk: lcores must be distinct, with at least one RX lcore (main {} and rx {:?})",
                    self.main_lcore, self.rx_lcores
                )
            },
        )?;
        ensure(
            !self.file_prefix.is_empty() && !self.file_prefix.contains('/'),
            || "dpdk.file_prefix must be a non-empty name without '/'".into(),
        )
    }

    /// Checked only when enabled: a disabled section may hold anything.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if !self.enabled {
            return Ok(());
        }
        let p = &self.port;
        ensure(self.rx_lcores.len() == usize::from(p.rx_queues), || {
            format!(
                "dpdk.rx_lcores must name one lcore per RX queue ({} queues, {} lcores)",
                p.rx_queues,
                self.rx_lcores.len()
            )
        })?;
        self.validate_eal()?;
        p.validate()
    }
}

/// `[dpdk.port]`: the ethdev port. `Port::start` takes this section as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortConfig {
    /// A PCI address or vdev name as EAL names the port; "" = the first port.
    pub device: String,
    /// Our address: ARP and ICMP echo are answered for it, UDP to it and `udp_port` taken.
    pub ipv4: Ipv4Addr,
    pub udp_port: u16,
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// Frames per receive call.
    pub burst: u16,
    pub rss: bool,
    pub mtu: u16,
    pub promiscuous: bool,
    pub mbuf_pool_size: u32,
    pub mbuf_cache: u32,
    /// Answer each sender: accepted, or dropped and why.
    pub replies: bool,
    /// Sleep before each poll after 64 empty ones, µs; 0 = spin.
    pub idle_sleep_us: u64,
    /// How often the device's counters are copied for `gigacompute nic stats`, ms.
    pub stats_interval_ms: u64,
}

impl Default for PortConfig {
    fn default() -> Self {
        Self {
            device: String::new(),
            ipv4: Ipv4Addr::new(10, 0, 0, 1),
            udp_port: 8003,
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            burst: 32,
            rss: true,
            mtu: 1500,
            promiscuous: false,
            mbuf_pool_size: 65535,
            mbuf_cache: 256,
            replies: false,
            idle_sleep_us: 0,
            stats_interval_ms: 500,
        }
    }
}

impl PortConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let max = crate::nic::MAX_QUEUES as u16;
        ensure(
            (1..=max).contains(&self.rx_queues) && self.tx_queues >= self.rx_queues,
            || format!("dpdk.port: rx_queues must be 1..={max} and tx_queues at least rx_queues"),
        )?;
        ensure((1..=128).contains(&self.burst), || {
            "dpdk.port.burst must be 1..=128".into()
        })?;
        ensure(
            self.rx_descriptors >= 32 && self.tx_descriptors >= 32,
            || "dpdk.port: descriptor rings need at least 32 entries".into(),
        )?;
        ensure((68..=9600).contains(&self.mtu), || {
            "dpdk.port.mtu must be 68..=9600".into()
        })?;
        ensure(
            self.mbuf_pool_size >= 2 * (u32::from(self.rx_descriptors) * u32::from(self.rx_queues)),
            || {
                "dpdk.port.mbuf_pool_size must be at least twice the RX descriptors of all queues"
                    .into()
            },
        )?;
        ensure(
            self.mbuf_cache <= 512 && self.mbuf_cache <= self.mbuf_pool_size / 2,
            || "dpdk.port.mbuf_cache must be at most 512 and half the pool".into(),
        )?;
        // An RX lcore asleep longer than this drops a line-rate burst the descriptor ring
        // cannot hold, and sees its stop request late.
        ensure(self.idle_sleep_us <= 10_000, || {
            "dpdk.port.idle_sleep_us must be at most 10000 (10 ms)".into()
        })?;
        ensure((10..=60_000).contains(&self.stats_interval_ms), || {
            "dpdk.port.stats_interval_ms must be 10..=60000".into()
        })
    }
}
