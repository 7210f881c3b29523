//! The DPDK packet path of a running appliance, built from `[dpdk]`: EAL, the port, one
//! pinned RX lcore per queue feeding the same [`Ingress`] as the UDP socket, and the main
//! lcore's thread copying the device's counters into the metrics region for `gigacompute nic`.

use crate::config::Config;
use crate::metrics::MetricsRegion;
use dataplane::Ingress;

#[cfg(feature = "dpdk")]
pub use with_dpdk::RawPort;

#[cfg(feature = "dpdk")]
mod with_dpdk {
    use super::*;
    use anyhow::{Context, Result};
    use crossbeam_channel::Receiver;
    use dataplane::dpdk::eal::Eal;
    use dataplane::dpdk::port::Port;
    use dataplane::dpdk::rx::{RxQueue, RxSetup, ToIngress};
    use dataplane::frame::Endpoint;
    use dataplane::recent::RecentFilter;
    use dataplane::reply::PortDatagram;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    use telemetry::{Placement, Stage, Tile, TileClock, Turn};

    pub struct RawPort {
        eal: Eal,
        port: Arc<Port>,
        stop: Arc<AtomicBool>,
        /// The nic-stats tile.
        stats: Option<Stage>,
    }

    /// EAL is up; the port is not yet. In between, the packet pool takes its descriptors
    /// from [`EalStarted::arena`].
    pub struct EalStarted(Eal);

    impl EalStarted {
        /// Where the descriptor packets go: EAL's heap (hugepages when reserved).
        pub fn arena(&self) -> dataplane::Arena {
            dataplane::dpdk::mem::EAL_ARENA
        }

        /// Start the port, launch the RX lcores. [`RawPort::stop`] ends them. `outbound[q]`:
        /// datagrams RX queue `q` sends for other tiles (pre-confirmations).
        pub fn start(
            self,
            config: &Config,
            ingress: &Ingress,
            metrics: &'static MetricsRegion,
            outbound: Vec<Receiver<PortDatagram>>,
        ) -> Result<RawPort> {
            RawPort::start(self.0, config, ingress, metrics, outbound)
        }
    }

    impl RawPort {
        /// Start EAL from `[dpdk]` (once per process).
        pub fn init_eal(config: &Config) -> Result<EalStarted> {
            Ok(EalStarted(Eal::init(&config.dpdk)?))
        }

        fn start(
            eal: Eal,
            config: &Config,
            ingress: &Ingress,
            metrics: &'static MetricsRegion,
            outbound: Vec<Receiver<PortDatagram>>,
        ) -> Result<Self> {
            let p = &config.dpdk.port;
            let d = &config.dpdk;
            let port = Arc::new(Port::start(p)?);
            let nic = &metrics.nic;
            describe_ports(nic, &port, p.ipv4, p.udp_port);
            let slot = &nic.port[0];
            let endpoint = Endpoint {
                mac: port.mac,
                ipv4: p.ipv4,
                udp_port: p.udp_port,
            };
            let stop = Arc::new(AtomicBool::new(false));
            for (q, &lcore) in d.rx_lcores.iter().enumerate() {
                let rx = RxQueue::new(
                    RxSetup {
                        port: port.id,
                        queue: q as u16,
                        burst: p.burst,
                        endpoint,
                        filter: RecentFilter::new(config.net.recent_filter_entries),
                        replies: p.replies.then(|| port.pool()),
                        outbound: outbound.get(q).cloned(),
                        counters: &slot.queues[q],
                        dataplane: &metrics.dataplane,
                    },
                    ToIngress {
                        ingress: ingress.clone(),
                        queue: q as u16,
                    },
                );
                let (stop, idle) = (stop.clone(), Duration::from_micros(p.idle_sleep_us));
                eal.launch(lcore, Box::new(move || drop(rx.run(&stop, idle))))
                    .with_context(|| format!("launching RX queue {q} on lcore {lcore}"))?;
            }
            let mut stats = Stage::new("nic-stats");
            stats.launch(
                "gc-nic-stats",
                NicStatsTile {
                    port: port.clone(),
                    slot,
                    every: Duration::from_millis(p.stats_interval_ms),
                    next: Instant::now(),
                },
                &nic.stats_tile,
                Placement::default(),
            )?;
            Ok(Self {
                eal,
                port,
                stop,
                stats: Some(stats),
            })
        }

        pub fn describe(&self) -> String {
            let s = &self.port.settings;
            format!(
                "dpdk {} ({}) rx_queues {} on lcores {:?}",
                self.port.name, self.port.driver, s.rx_queues, self.eal.settings.rx_lcores
            )
        }

        /// Stop the RX lcores, then the port (in-flight packets keep their mbufs: the pool
        /// lives until the process exits).
        pub fn stop(mut self) {
            self.stop.store(true, Ordering::Release);
            for &l in &self.eal.settings.rx_lcores {
                self.eal.wait(l);
            }
            if let Some(stage) = self.stats.take() {
                stage.stop();
            }
            self.port.close();
        }
    }

    /// Copies the device's counters (`rte_eth_stats`) into its slot every `every`, and once
    /// more at stop, for `gigacompute nic stats` and Prometheus.
    struct NicStatsTile {
        port: Arc<Port>,
        slot: &'static dataplane::nic::PortSlot,
        every: Duration,
        next: Instant,
    }

    impl Tile for NicStatsTile {
        fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn {
            if stopping {
                return Turn::Done;
            }
            let now = Instant::now();
            if now < self.next {
                // Short naps: a stop is seen within INPUT_WAIT, whatever the interval.
                std::thread::sleep((self.next - now).min(telemetry::lifecycle::INPUT_WAIT));
                clock.idle();
                return Turn::Continue;
            }
            self.port.publish_stats(self.slot);
            self.next = now + self.every;
            clock.stats().add_in(1);
            clock.busy();
            Turn::Continue
        }

        fn on_stop(&mut self) {
            self.port.publish_stats(self.slot);
        }
    }

    /// Slot 0 is the port we receive on; the others list what else EAL probed.
    fn describe_ports(
        nic: &dataplane::nic::NicCounters,
        port: &Port,
        ipv4: std::net::Ipv4Addr,
        udp_port: u16,
    ) {
        port.describe(&nic.port[0], ipv4, udp_port);
        let others = dataplane::dpdk::port::ports()
            .into_iter()
            .filter(|(id, _)| *id != port.id)
            .take(dataplane::nic::MAX_PORTS - 1);
        let mut n = 1;
        for (id, _) in others {
            dataplane::dpdk::port::describe_idle(id, &nic.port[n]);
            n += 1;
        }
        nic.ports.store(n as u64, Ordering::Relaxed);
    }
}

/// Without the `dpdk` feature there is no raw port; asking for one is a clear error.
#[cfg(not(feature = "dpdk"))]
pub struct RawPort;

#[cfg(not(feature = "dpdk"))]
pub struct EalStarted;

#[cfg(not(feature = "dpdk"))]
impl EalStarted {
    pub fn arena(&self) -> dataplane::Arena {
        dataplane::Arena::HEAP
    }

    pub fn start(
        self,
        _: &Config,
        _: &Ingress,
        _: &'static MetricsRegion,
        _: Vec<crossbeam_channel::Receiver<dataplane::reply::PortDatagram>>,
    ) -> anyhow::Result<RawPort> {
        Ok(RawPort)
    }
}

#[cfg(not(feature = "dpdk"))]
impl RawPort {
    pub fn init_eal(_config: &Config) -> anyhow::Result<EalStarted> {
        anyhow::bail!(
            "[dpdk] enabled = true, but this gigacompute was built without DPDK: rebuild with `cargo build --release --features dpdk`"
        )
    }

    pub fn describe(&self) -> String {
        String::new()
    }

    pub fn stop(self) {}
}
