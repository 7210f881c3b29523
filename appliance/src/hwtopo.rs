//! The machine as hwloc sees it (packages, NUMA nodes, cores, caches) and where the
//! appliance's pinned threads go on it: SVM workers, storage I/O threads, DPDK lcores, and
//! which workers the hot-account islands prefer (those sharing a cache with the storage I/O
//! threads that prefetch their accounts). Printed at start and by `gigacompute topology`.

use crate::config::Config;
use hwlocality::Topology;
use hwlocality::object::types::ObjectType;

/// One logical CPU, as the config's core numbers (OS indexes) name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpu {
    pub os: usize,
    pub core: usize,
    pub l2: Option<usize>,
    pub l3: Option<usize>,
    pub numa: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub cpus: Vec<Cpu>,
    pub packages: usize,
    pub numa_nodes: usize,
    pub cores: usize,
}

impl Machine {
    pub fn discover() -> anyhow::Result<Self> {
        let t = Topology::new().map_err(|e| anyhow::anyhow!("hwloc topology: {e}"))?;
        let numa: Vec<_> = t.objects_with_type(ObjectType::NUMANode).collect();
        let cache = |pu: &hwlocality::object::TopologyObject, ty: ObjectType| {
            pu.ancestors()
                .find(|a| a.object_type() == ty)
                .map(|a| a.logical_index())
        };
        let cpus = t
            .objects_with_type(ObjectType::PU)
            .filter_map(|pu| {
                let os = pu.os_index()?;
                Some(Cpu {
                    os,
                    core: cache(pu, ObjectType::Core).unwrap_or(os),
                    l2: cache(pu, ObjectType::L2Cache),
                    l3: cache(pu, ObjectType::L3Cache),
                    numa: numa
                        .iter()
                        .find(|n| n.cpuset().is_some_and(|c| c.is_set(os)))
                        .map(|n| n.logical_index()),
                })
            })
            .collect();
        Ok(Self {
            cpus,
            packages: t.objects_with_type(ObjectType::Package).count(),
            numa_nodes: numa.len(),
            cores: t.objects_with_type(ObjectType::Core).count(),
        })
    }

    pub fn cpu(&self, os: usize) -> Option<&Cpu> {
        self.cpus.iter().find(|c| c.os == os)
    }

    /// How much two CPUs share: 4 the same core, 3 an L2, 2 an L3, 1 a NUMA node, 0 nothing.
    pub fn closeness(&self, a: usize, b: usize) -> u32 {
        let (Some(a), Some(b)) = (self.cpu(a), self.cpu(b)) else {
            return 0;
        };
        let same = |x: Option<usize>, y: Option<usize>| x.is_some() && x == y;
        if a.core == b.core {
            4
        } else if same(a.l2, b.l2) {
            3
        } else if same(a.l3, b.l3) {
            2
        } else if same(a.numa, b.numa) {
            1
        } else {
            0
        }
    }
}

/// Where the pinned threads go.
#[derive(Debug, Clone)]
pub struct Placement {
    pub worker_cores: Vec<Option<usize>>,
    /// Core of each storage device's I/O thread (empty: unpinned).
    pub io_cores: Vec<usize>,
    /// Workers hot-account islands prefer, best first.
    pub island_workers: Vec<usize>,
    /// NUMA node each worker's memory is bound to (only on machines with several).
    pub worker_numa: Vec<Option<usize>>,
    /// Core of each verify tile (`verify.cores`; `None`: unpinned).
    pub verify_cores: Vec<Option<usize>>,
    /// For each worker, the verify tile its islands are routed to first
    /// (`net.routing = "affinity"`): the one pinned closest to the worker's core.
    pub verify_for_worker: Vec<usize>,
}

impl Placement {
    pub fn new(config: &Config, machine: &Machine) -> Self {
        let workers = config.runtime.workers;
        let worker_cores: Vec<Option<usize>> = (0..workers)
            .map(|i| runtime::worker_core(&config.runtime.worker_cores, i))
            .collect();
        let io_cores = config.storage.io_cores.clone();
        // Closest to a storage I/O thread first; otherwise from the last worker down (the
        // first workers keep the low cores' neighbours for the apps' lanes).
        let mut island_workers: Vec<usize> = (0..workers).rev().collect();
        island_workers.sort_by_key(|w| {
            let near = worker_cores[*w].map_or(0, |c| {
                io_cores
                    .iter()
                    .map(|io| machine.closeness(c, *io))
                    .max()
                    .unwrap_or(0)
            });
            std::cmp::Reverse(near)
        });
        let worker_numa = worker_cores
            .iter()
            .map(|c| {
                c.and_then(|c| machine.cpu(c)?.numa)
                    .filter(|_| machine.numa_nodes > 1)
            })
            .collect();
        let tiles = config.verify.tiles.max(1);
        let verify_cores: Vec<Option<usize>> = (0..tiles)
            .map(|i| config.verify.cores.get(i).copied())
            .collect();
        // Ties (unpinned, or equally close): worker w's own index, so islands spread.
        let verify_for_worker = worker_cores
            .iter()
            .enumerate()
            .map(|(w, wc)| {
                (0..tiles)
                    .max_by_key(|&t| {
                        // The same physical core (4: itself or its SMT sibling) would take
                        // the worker's execution units: not a neighbour.
                        let near = match (wc, verify_cores[t]) {
                            (Some(a), Some(b)) => match machine.closeness(*a, b) {
                                4 => 0,
                                c => c,
                            },
                            _ => 0,
                        };
                        (near, std::cmp::Reverse((t + tiles - w % tiles) % tiles))
                    })
                    .expect("at least one verify tile")
            })
            .collect();
        Self {
            worker_cores,
            io_cores,
            island_workers,
            worker_numa,
            verify_cores,
            verify_for_worker,
        }
    }

    /// Human-readable lines: the machine, then the placement.
    pub fn describe(&self, config: &Config, machine: &Machine) -> Vec<String> {
        let cpu = |os: usize| match machine.cpu(os) {
            Some(c) => format!(
                "cpu {os} (core {}, L2 {}, L3 {}, NUMA {})",
                c.core,
                opt(c.l2),
                opt(c.l3),
                opt(c.numa)
            ),
            None => format!("cpu {os} (not on this machine)"),
        };
        let mut lines = vec![format!(
            "machine: {} package(s), {} NUMA node(s), {} core(s), {} logical CPU(s)",
            machine.packages,
            machine.numa_nodes,
            machine.cores,
            machine.cpus.len()
        )];
        lines.extend(machine.cpus.iter().map(|c| format!("  {}", cpu(c.os))));
        for (w, core) in self.worker_cores.iter().enumerate() {
            let numa = match self.worker_numa[w] {
                Some(n) => format!(", memory bound to NUMA node {n}"),
                None => String::new(),
            };
            lines.push(match core {
                Some(c) => format!("worker {w}: {}{numa}", cpu(*c)),
                None => format!("worker {w}: unpinned"),
            });
        }
        lines.push(if self.io_cores.is_empty() {
            "storage I/O threads: unpinned (storage.io_cores)".into()
        } else {
            format!(
                "storage I/O threads: {}",
                self.io_cores
                    .iter()
                    .map(|c| cpu(*c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        lines.push(format!(
            "island lanes prefer workers {:?}{}",
            self.island_workers,
            if self.io_cores.is_empty() {
                " (last first)"
            } else {
                " (closest to the storage I/O threads first)"
            }
        ));
        if config.dpdk.enabled {
            lines.push(format!(
                "dpdk: main lcore {}, rx lcores {:?}",
                config.dpdk.main_lcore, config.dpdk.rx_lcores
            ));
        }
        if self.verify_cores.iter().all(Option::is_none) {
            lines.push(format!(
                "unpinned: net, verify x{}, bank, commit, rpc",
                config.verify.tiles
            ));
        } else {
            for (t, core) in self.verify_cores.iter().enumerate() {
                lines.push(match core {
                    Some(c) => format!("verify {t}: {}", cpu(*c)),
                    None => format!("verify {t}: unpinned"),
                });
            }
            lines.push("unpinned: net, bank, commit, rpc".into());
        }
        if config.net.routing == dataplane::route::Routing::Affinity {
            lines.push(format!(
                "island routes: worker w's islands to verify tile {:?}[w]",
                self.verify_for_worker
            ));
        }
        lines
    }
}

fn opt(v: Option<usize>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("#{v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        // Two L3 domains of two cores each, one SMT sibling pair.
        let cpu = |os, core, l2, l3| Cpu {
            os,
            core,
            l2: Some(l2),
            l3: Some(l3),
            numa: Some(l3),
        };
        Machine {
            cpus: vec![
                cpu(0, 0, 0, 0),
                cpu(1, 1, 1, 0),
                cpu(2, 2, 2, 1),
                cpu(3, 3, 3, 1),
                cpu(4, 0, 0, 0),
            ],
            packages: 1,
            numa_nodes: 2,
            cores: 4,
        }
    }

    #[test]
    fn islands_prefer_workers_near_the_storage_io_threads() {
        let m = machine();
        assert_eq!(m.closeness(0, 4), 4);
        assert_eq!(m.closeness(0, 1), 2);
        assert_eq!(m.closeness(1, 2), 0);
        let mut config = Config::default();
        config.runtime.workers = 3;
        config.runtime.worker_cores = vec![1, 2, 3];
        config.storage.io_cores = vec![0];
        let p = Placement::new(&config, &m);
        assert_eq!(
            p.island_workers,
            vec![0, 2, 1],
            "worker 0 shares the L3 with cpu 0"
        );
        assert_eq!(p.worker_numa, vec![Some(0), Some(1), Some(1)]);
        assert_eq!(p.verify_for_worker, vec![0, 1, 0], "unpinned: by index");
        let text = p.describe(&config, &m).join("\n");
        assert!(
            text.contains("worker 1: cpu 2 (core 2, L2 #2, L3 #1, NUMA #1)"),
            "{text}"
        );
    }

    #[test]
    fn discovers_this_machine() {
        let m = Machine::discover().expect("hwloc");
        assert!(!m.cpus.is_empty());
        assert!(m.cores >= 1 && m.cpus.len() >= m.cores);
    }

    /// Pinned verify tiles: each worker's islands go to the tile that shares the most with
    /// the worker's core (never the same physical core: that tile would take the worker's
    /// execution units).
    #[test]
    fn islands_route_to_the_verify_tile_beside_their_worker() {
        let m = machine();
        let mut config = Config::default();
        config.runtime.workers = 2;
        config.runtime.worker_cores = vec![1, 3];
        config.verify.tiles = 2;
        config.verify.cores = vec![2, 0];
        let p = Placement::new(&config, &m);
        // Worker 0 on cpu 1 shares an L3 with cpu 0 (tile 1); worker 1 on cpu 3 with cpu 2.
        assert_eq!(p.verify_for_worker, vec![1, 0]);
        assert_eq!(p.verify_cores, vec![Some(2), Some(0)]);
        let text = p.describe(&config, &m).join("\n");
        assert!(text.contains("verify 1: cpu 0"), "{text}");
        // A tile on the worker's SMT sibling is not its neighbour: the next closest is.
        config.runtime.worker_cores = vec![0, 3];
        config.verify.cores = vec![4, 1];
        assert_eq!(Placement::new(&config, &m).verify_for_worker[0], 1);
    }
}
