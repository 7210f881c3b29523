//! What a running appliance publishes about its raw ports, for `gigacompute nic list|stats`
//! and Prometheus: port facts (driver, MAC, link, queues, RSS), the device's own counters
//! (copied from `rte_eth_stats` by the stats loop), and software counters per RX queue,
//! each written only by that queue's lcore. `#[repr(C)]`, atomics only, valid when zeroed:
//! it lives in the shared metrics region. Compiled without DPDK too, so a reader can say
//! "no raw ports" instead of failing.

use crate::frame::FrameDrop;
use crate::parse::ParseError;
use std::sync::atomic::{AtomicU64, Ordering};
use telemetry::ZeroValid;

/// Ports the region describes (EAL may probe more; those are not listed).
pub const MAX_PORTS: usize = 4;
/// RX (and TX) queues per port with a counter slot.
pub const MAX_QUEUES: usize = 16;
const TEXT_WORDS: usize = 8;

/// Up to 64 bytes of text in atomics (written once at start, read by other processes).
#[repr(C)]
#[derive(Default)]
pub struct SharedText([AtomicU64; TEXT_WORDS]);

impl SharedText {
    pub fn set(&self, s: &str) {
        let mut b = [0u8; TEXT_WORDS * 8];
        let n = s.len().min(b.len());
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        for (w, c) in self.0.iter().zip(b.chunks_exact(8)) {
            w.store(
                u64::from_le_bytes(c.try_into().expect("8 bytes")),
                Ordering::Relaxed,
            );
        }
    }

    pub fn get(&self) -> String {
        let b: Vec<u8> = self
            .0
            .iter()
            .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
            .take_while(|&c| c != 0)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    }
}

telemetry::declare_counters! {
    /// Software counters of one RX queue (and the TX queue its lcore owns).
    #[repr(C, align(64))]
    #[derive(Default)]
    pub struct QueueCounters {
        /// Frames taken from the RX queue.
        packets: Counter(Count) "nic_queue_rx_packets",
        /// Bytes taken from the RX queue.
        bytes: Counter(Bytes) "nic_queue_rx",
        /// Transactions handed to verification.
        accepted: Counter(Count) "nic_queue_accepted",
        /// Transactions dropped as repeats of recent bytes.
        duplicates: Counter(Count) "nic_queue_recent_duplicates",
        /// Transactions dropped: the ring to verification was full.
        ring_full: Counter(Count) "nic_queue_ring_full",
        /// Transactions dropped: no descriptor packet was free.
        no_descriptor: Counter(Count) "nic_queue_no_descriptor",
        /// ARP requests answered.
        arp_replies: Counter(Count) "nic_queue_arp_replies",
        /// ICMP echo requests answered.
        echo_replies: Counter(Count) "nic_queue_echo_replies",
        /// Verdict replies sent.
        verdict_replies: Counter(Count) "nic_queue_replies",
        /// Datagrams other tiles handed this queue to send (signed pre-confirmations).
        outbound: Counter(Count) "nic_queue_outbound",
        /// Replies not sent (TX queue full or no mbuf).
        tx_dropped: Counter(Count) "nic_queue_tx_dropped",
        /// Polls of the RX queue that returned frames.
        busy_polls: Counter(Count) "nic_queue_busy_polls",
        /// Polls of the RX queue that returned nothing.
        empty_polls: Counter(Count) "nic_queue_empty_polls",
        ;
        /// By [`FrameDrop`] and [`ParseError`]: exposed by reason, not declared one by one.
        pub frame_drops: [AtomicU64; FrameDrop::COUNT],
        pub parse_drops: [AtomicU64; ParseError::COUNT],
        /// The queue's RX lcore tile (`rx-Q`): polls in, busy and idle time.
        pub tile: telemetry::TileStats,
    }
}

impl QueueCounters {
    /// (metric label, count) for every frame drop reason.
    pub fn frame_drops_by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        FrameDrop::ALL
            .into_iter()
            .map(|r| (r.label(), get(&self.frame_drops[r as usize])))
    }

    /// (metric label, count) for every transaction parse drop reason.
    pub fn parse_drops_by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ParseError::ALL
            .into_iter()
            .map(|e| (e.name(), get(&self.parse_drops[e as usize])))
    }
}

/// Add to a counter that has one writer (plain load + store: no locked instruction).
#[inline]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

pub fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

telemetry::declare_counters! {
    /// One port: facts and the device's counters (copied from `rte_eth_stats`).
    #[repr(C, align(64))]
    #[derive(Default)]
    pub struct PortSlot {
        /// Frames the device received (rte_eth_stats ipackets).
        ipackets: Counter(Count) "nic_rx_packets",
        /// Bytes the device received.
        ibytes: Counter(Bytes) "nic_rx",
        /// Erroneous frames the device received (ierrors).
        ierrors: Counter(Count) "nic_rx_errors",
        /// Frames the device dropped: RX queues full (imissed).
        imissed: Counter(Count) "nic_rx_missed",
        /// RX mbuf allocation failures (rx_nombuf).
        rx_nombuf: Counter(Count) "nic_rx_nombuf",
        /// Frames the device sent.
        opackets: Counter(Count) "nic_tx_packets",
        /// Bytes the device sent.
        obytes: Counter(Bytes) "nic_tx",
        /// Frames the device failed to send.
        oerrors: Counter(Count) "nic_tx_errors",
        /// 1 when the link is up.
        link_up: Gauge(Count) "nic_link_up",
        /// mbufs free in the port's pool.
        mbufs_free: Gauge(Count) "nic_mbufs_free",
        /// mbufs in the port's pool.
        mbufs_total: Gauge(Count) "nic_mbufs",
        ;
        pub port_id: AtomicU64,
        /// 1 when this appliance receives on the port.
        pub in_use: AtomicU64,
        pub name: SharedText,
        pub driver: SharedText,
        pub mac: AtomicU64,
        pub ipv4: AtomicU64,
        pub udp_port: AtomicU64,
        pub link_speed_mbps: AtomicU64,
        pub link_full_duplex: AtomicU64,
        pub mtu: AtomicU64,
        pub promiscuous: AtomicU64,
        pub rx_queues: AtomicU64,
        pub tx_queues: AtomicU64,
        pub rx_descriptors: AtomicU64,
        pub tx_descriptors: AtomicU64,
        /// RSS hash functions in use (`RTE_ETH_RSS_*` bits); 0 = RSS off.
        pub rss_hf: AtomicU64,
        pub rss_key_len: AtomicU64,
        /// The device's counters per queue (`rte_eth_stats` q_*).
        pub q_ipackets: [AtomicU64; MAX_QUEUES],
        pub q_ibytes: [AtomicU64; MAX_QUEUES],
        pub q_errors: [AtomicU64; MAX_QUEUES],
        /// Unix seconds of the last stats copy.
        pub stats_unix_s: AtomicU64,
        pub queues: [QueueCounters; MAX_QUEUES],
    }
}

#[repr(C)]
pub struct NicCounters {
    /// Ports described below (0: the appliance runs without raw ports).
    pub ports: AtomicU64,
    pub port: [PortSlot; MAX_PORTS],
    /// The `nic-stats` tile, which copies the device's counters into `port`.
    pub stats_tile: telemetry::TileStats,
}

// SAFETY: atomics, arrays and structs of atomics only.
unsafe impl ZeroValid for NicCounters {}

impl NicCounters {
    pub fn new() -> Self {
        Self {
            ports: AtomicU64::new(0),
            port: std::array::from_fn(|_| PortSlot::default()),
            stats_tile: telemetry::TileStats::default(),
        }
    }

    pub fn slots(&self) -> &[PortSlot] {
        &self.port[..(get(&self.ports) as usize).min(MAX_PORTS)]
    }
}

impl PortSlot {
    pub fn mac_string(&self) -> String {
        let b = get(&self.mac).to_be_bytes();
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[2], b[3], b[4], b[5], b[6], b[7]
        )
    }

    pub fn set_mac(&self, mac: [u8; 6]) {
        let mut b = [0u8; 8];
        b[2..].copy_from_slice(&mac);
        self.mac.store(u64::from_be_bytes(b), Ordering::Relaxed);
    }

    pub fn queue_count(&self) -> usize {
        (get(&self.rx_queues) as usize).min(MAX_QUEUES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_mac_round_trip() {
        let n = NicCounters::new();
        n.port[0].name.set("net_pcap0");
        n.port[0].driver.set(&"x".repeat(100));
        assert_eq!(n.port[0].name.get(), "net_pcap0");
        assert_eq!(n.port[0].driver.get().len(), 64);
        n.port[0].set_mac([0x02, 0, 0xab, 0, 0, 0xff]);
        assert_eq!(n.port[0].mac_string(), "02:00:ab:00:00:ff");
        assert!(n.slots().is_empty());
    }
}
