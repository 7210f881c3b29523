//! One ethdev port: its mbuf pool, RSS, RX/TX queues, MTU and promiscuous mode from settings;
//! its facts and counters for `gigacompute nic`.

use super::{DpdkError, strerror, sys};
use crate::config::PortConfig;
use crate::nic::PortSlot;
use std::ffi::{CStr, CString};
use std::sync::atomic::Ordering;

/// `RTE_ETH_RSS_IPV4` and `RTE_ETH_RSS_NONFRAG_IPV4_UDP` (function-like macros bindgen cannot
/// evaluate): hash UDP over source and destination address and port, fragments over addresses.
pub const RSS_IPV4: u64 = 1 << 2;
pub const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;

/// A configured, started port. Stopped and closed by [`Port::close`].
pub struct Port {
    pub id: u16,
    pub name: String,
    pub driver: String,
    pub mac: [u8; 6],
    pub settings: PortConfig,
    /// RSS functions actually enabled (what was asked, masked by what the device can do).
    pub rss_hf: u64,
    pub rss_key_len: u8,
    pool: *mut sys::rte_mempool,
}

// SAFETY: the pool pointer is used through DPDK's thread-safe mempool API only.
unsafe impl Send for Port {}
unsafe impl Sync for Port {}

/// The mbuf pool, shareable with RX lcores (for reply mbufs).
#[derive(Clone, Copy)]
pub struct MbufPool(pub *mut sys::rte_mempool);
// SAFETY: rte_mempool get/put are multi-thread safe (ring_mp_mc).
unsafe impl Send for MbufPool {}
unsafe impl Sync for MbufPool {}

/// Every port EAL probed: (id, name).
pub fn ports() -> Vec<(u16, String)> {
    let mut out = Vec::new();
    // SAFETY: iteration API over probed ports (owner 0 = unowned, the usual case).
    let mut p = unsafe { sys::rte_eth_find_next_owned_by(0, 0) };
    while p < u64::from(sys::RTE_MAX_ETHPORTS) {
        let id = p as u16;
        out.push((id, port_name(id)));
        // SAFETY: as above.
        p = unsafe { sys::rte_eth_find_next_owned_by(id + 1, 0) };
    }
    out
}

fn port_name(id: u16) -> String {
    let mut buf = [0 as std::ffi::c_char; 64];
    // SAFETY: buf is RTE_ETH_NAME_MAX_LEN (64) bytes.
    let rc = unsafe { sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    if rc != 0 {
        return format!("port{id}");
    }
    // SAFETY: NUL-terminated by DPDK.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn port_err(port: u16, what: &'static str, rc: i32) -> DpdkError {
    DpdkError::Port {
        port,
        what,
        reason: strerror(rc),
    }
}

fn dev_info(id: u16) -> Result<sys::rte_eth_dev_info, DpdkError> {
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: info is a valid out-pointer.
    let rc = unsafe { sys::rte_eth_dev_info_get(id, &mut info) };
    if rc != 0 {
        return Err(port_err(id, "rte_eth_dev_info_get", rc));
    }
    Ok(info)
}

pub fn driver_name(info: &sys::rte_eth_dev_info) -> String {
    if info.driver_name.is_null() {
        return String::new();
    }
    // SAFETY: DPDK's static driver name.
    unsafe { CStr::from_ptr(info.driver_name) }
        .to_string_lossy()
        .into_owned()
}

impl Port {
    /// Find the port named in `s.device`, create its mbuf pool, configure and start it.
    pub fn start(s: &PortConfig) -> Result<Self, DpdkError> {
        let all = ports();
        let listed = || {
            let names: Vec<&str> = all.iter().map(|(_, n)| n.as_str()).collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        let id = if s.device.is_empty() {
            all.first()
                .map(|(id, _)| *id)
                .ok_or_else(|| DpdkError::NoPort(s.device.clone(), listed()))?
        } else {
            all.iter()
                .find(|(_, n)| *n == s.device)
                .map(|(id, _)| *id)
                .ok_or_else(|| DpdkError::NoPort(s.device.clone(), listed()))?
        };
        if s.rx_queues == 0 || s.tx_queues < s.rx_queues {
            return Err(DpdkError::Setting(
                "rx_queues >= 1 and tx_queues >= rx_queues (each RX lcore owns a TX queue)".into(),
            ));
        }
        let info = dev_info(id)?;
        if s.rx_queues > info.max_rx_queues || s.tx_queues > info.max_tx_queues {
            return Err(DpdkError::Setting(format!(
                "port {} supports at most {} RX and {} TX queues",
                port_name(id),
                info.max_rx_queues,
                info.max_tx_queues
            )));
        }
        // SAFETY: plain query.
        let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
        let pool = create_pool(id, s, socket)?;

        let mut conf = sys::rte_eth_conf::default();
        let wanted = if s.rss && s.rx_queues > 1 {
            RSS_IPV4 | RSS_NONFRAG_IPV4_UDP
        } else {
            0
        };
        let rss_hf = wanted & info.flow_type_rss_offloads;
        if wanted != 0 && rss_hf & RSS_NONFRAG_IPV4_UDP == 0 {
            tracing::warn!(
                port = %port_name(id),
                "the device cannot hash UDP flows: traffic is spread over the RX queues by what it can hash, or not at all"
            );
        }
        if rss_hf != 0 {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        conf.rxmode.mtu = u32::from(s.mtu);
        // SAFETY: conf is a valid, fully initialised configuration.
        let rc = unsafe { sys::rte_eth_dev_configure(id, s.rx_queues, s.tx_queues, &conf) };
        if rc != 0 {
            return Err(port_err(id, "rte_eth_dev_configure", rc));
        }
        let socket_u = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..s.rx_queues {
            // SAFETY: NULL rxconf = the driver's defaults; pool is live.
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(
                    id,
                    q,
                    s.rx_descriptors,
                    socket_u,
                    std::ptr::null(),
                    pool,
                )
            };
            if rc != 0 {
                return Err(port_err(id, "rte_eth_rx_queue_setup", rc));
            }
        }
        for q in 0..s.tx_queues {
            // SAFETY: NULL txconf = the driver's defaults.
            let rc = unsafe {
                sys::rte_eth_tx_queue_setup(id, q, s.tx_descriptors, socket_u, std::ptr::null())
            };
            if rc != 0 {
                return Err(port_err(id, "rte_eth_tx_queue_setup", rc));
            }
        }
        // SAFETY: configured port.
        let rc = unsafe { sys::rte_eth_dev_start(id) };
        if rc != 0 {
            return Err(port_err(id, "rte_eth_dev_start", rc));
        }
        // SAFETY: started port.
        let rc = unsafe {
            if s.promiscuous {
                sys::rte_eth_promiscuous_enable(id)
            } else {
                sys::rte_eth_promiscuous_disable(id)
            }
        };
        if rc != 0 {
            tracing::warn!(port = %port_name(id), error = %strerror(rc), "promiscuous mode not changed");
        }
        let mut mac = sys::rte_ether_addr::default();
        // SAFETY: valid out-pointer.
        unsafe { sys::rte_eth_macaddr_get(id, &mut mac) };
        let port = Self {
            id,
            name: port_name(id),
            driver: driver_name(&info),
            mac: mac.addr_bytes,
            settings: s.clone(),
            rss_hf,
            rss_key_len: info.hash_key_size,
            pool,
        };
        tracing::info!(
            port = %port.name, driver = %port.driver, rx_queues = s.rx_queues,
            rss_hf = format_args!("{rss_hf:#x}"), "DPDK port started"
        );
        Ok(port)
    }

    pub fn pool(&self) -> MbufPool {
        MbufPool(self.pool)
    }

    pub fn link(&self) -> sys::rte_eth_link {
        let mut l = sys::rte_eth_link::default();
        // SAFETY: valid out-pointer.
        unsafe { sys::rte_eth_link_get_nowait(self.id, &mut l) };
        l
    }

    pub fn stats(&self) -> sys::rte_eth_stats {
        let mut st = sys::rte_eth_stats::default();
        // SAFETY: valid out-pointer.
        unsafe { sys::rte_eth_stats_get(self.id, &mut st) };
        st
    }

    /// Publish the port's facts into its slot (once, at start).
    pub fn describe(&self, slot: &PortSlot, ipv4: std::net::Ipv4Addr, udp_port: u16) {
        let s = &self.settings;
        let set = |a: &std::sync::atomic::AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        set(&slot.port_id, u64::from(self.id));
        set(&slot.in_use, 1);
        slot.name.set(&self.name);
        slot.driver.set(&self.driver);
        slot.set_mac(self.mac);
        set(&slot.ipv4, u64::from(u32::from(ipv4)));
        set(&slot.udp_port, u64::from(udp_port));
        set(&slot.mtu, u64::from(s.mtu));
        set(&slot.promiscuous, u64::from(s.promiscuous));
        set(&slot.rx_queues, u64::from(s.rx_queues));
        set(&slot.tx_queues, u64::from(s.tx_queues));
        set(&slot.rx_descriptors, u64::from(s.rx_descriptors));
        set(&slot.tx_descriptors, u64::from(s.tx_descriptors));
        set(&slot.rss_hf, self.rss_hf);
        set(&slot.rss_key_len, u64::from(self.rss_key_len));
        set(&slot.mbufs_total, u64::from(s.mbuf_pool_size));
        self.publish_stats(slot);
    }

    /// Copy the device's counters, link state and pool level into the slot.
    pub fn publish_stats(&self, slot: &PortSlot) {
        let set = |a: &std::sync::atomic::AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        let st = self.stats();
        set(&slot.ipackets, st.ipackets);
        set(&slot.opackets, st.opackets);
        set(&slot.ibytes, st.ibytes);
        set(&slot.obytes, st.obytes);
        set(&slot.ierrors, st.ierrors);
        set(&slot.oerrors, st.oerrors);
        set(&slot.imissed, st.imissed);
        set(&slot.rx_nombuf, st.rx_nombuf);
        let n = crate::nic::MAX_QUEUES.min(st.q_ipackets.len());
        for q in 0..n {
            set(&slot.q_ipackets[q], st.q_ipackets[q]);
            set(&slot.q_ibytes[q], st.q_ibytes[q]);
            set(&slot.q_errors[q], st.q_errors[q]);
        }
        let l = self.link();
        set(&slot.link_up, u64::from(l.link_status()));
        set(&slot.link_speed_mbps, u64::from(l.link_speed));
        set(&slot.link_full_duplex, u64::from(l.link_duplex()));
        // SAFETY: live pool.
        set(
            &slot.mbufs_free,
            u64::from(unsafe { sys::rte_mempool_avail_count(self.pool) }),
        );
        set(
            &slot.stats_unix_s,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
    }

    /// Stop and close the port (a pcap vdev writes its TX file out here). The mbuf pool is
    /// not freed: packets still in the pipeline point into it.
    pub fn close(&self) {
        // SAFETY: started port; stop then close is the documented order.
        unsafe {
            sys::rte_eth_dev_stop(self.id);
            sys::rte_eth_dev_close(self.id);
        }
    }
}

/// A port whose RX and TX queue are one `rte_ring` of `size` slots (a power of two): what is
/// transmitted is received again. For benchmarks and tests; returns the port's name.
pub fn loopback_ring(name: &str, size: u32) -> Result<String, DpdkError> {
    let cname = CString::new(name).map_err(|_| DpdkError::Setting("ring name has a NUL".into()))?;
    let flags = sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ;
    // SAFETY: valid name; DPDK checks the size.
    let ring = unsafe { sys::rte_ring_create(cname.as_ptr(), size, sys::SOCKET_ID_ANY, flags) };
    if ring.is_null() {
        return Err(DpdkError::Setting(format!(
            "rte_ring_create({name}, {size}): {}",
            super::last_error()
        )));
    }
    // SAFETY: a live ring.
    let id = unsafe { sys::rte_eth_from_ring(ring) };
    if id < 0 {
        return Err(DpdkError::Setting(format!(
            "rte_eth_from_ring: {}",
            super::last_error()
        )));
    }
    Ok(port_name(id as u16))
}

/// Publish what is known of a probed port this appliance does not use (for `nic list`).
pub fn describe_idle(id: u16, slot: &PortSlot) {
    slot.port_id.store(u64::from(id), Ordering::Relaxed);
    slot.in_use.store(0, Ordering::Relaxed);
    slot.name.set(&port_name(id));
    if let Ok(info) = dev_info(id) {
        slot.driver.set(&driver_name(&info));
    }
    let mut mac = sys::rte_ether_addr::default();
    // SAFETY: valid out-pointer.
    if unsafe { sys::rte_eth_macaddr_get(id, &mut mac) } == 0 {
        slot.set_mac(mac.addr_bytes);
    }
}

fn create_pool(id: u16, s: &PortConfig, socket: i32) -> Result<*mut sys::rte_mempool, DpdkError> {
    // Room for a whole frame in one mbuf, so RX never chains segments.
    let frame = usize::from(s.mtu) + 18;
    let data_room = (frame.max(2048) + sys::RTE_PKTMBUF_HEADROOM as usize) as u16;
    let name = CString::new(format!("gc_mbufs_p{id}")).expect("no NUL");
    // SAFETY: valid name; sizes checked by DPDK.
    let pool = unsafe {
        sys::rte_pktmbuf_pool_create(
            name.as_ptr(),
            s.mbuf_pool_size,
            s.mbuf_cache,
            0,
            data_room,
            socket,
        )
    };
    if pool.is_null() {
        return Err(DpdkError::Mempool(format!(
            "{} mbufs of {} bytes on socket {socket}: {} (is there enough EAL memory? -m / hugepages)",
            s.mbuf_pool_size,
            data_room,
            super::last_error()
        )));
    }
    Ok(pool)
}
