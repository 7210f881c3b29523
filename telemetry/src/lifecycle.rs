//! The one tile lifecycle: every tile is a [`Tile`] whose loop [`launch`] runs on a thread of
//! its own, named, pinned and memory-bound by the lifecycle, with the tile's [`TileClock`]
//! over its [`TileStats`] slot; [`Stage`]s stop in the order the wiring declares (ingest
//! first, durability last), each tile finishing what it owes downstream.
//!
//! In the spirit of Firedancer's stem: the tile supplies one turn of work, the lifecycle owns
//! everything around it.

use crate::health::{Health, panic_message};
use crate::{TileClock, TileStats};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What a turn of a tile's loop says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Continue,
    /// The tile has finished (stopped, or its input closed): the loop ends.
    Done,
}

/// One loop, owning its state, talking to its neighbours through links.
pub trait Tile: Send + 'static {
    /// One turn: wait a bounded time for input, handle what came, and mark `clock` (busy,
    /// idle, backpressure). `stopping` turns true when the tile's stage is stopped: the tile
    /// then finishes what it owes downstream and returns [`Turn::Done`]. A tile whose input
    /// link closed returns `Done` too.
    fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn;

    /// Once, on the tile's thread, after pinning and before the first turn.
    fn on_start(&mut self) {}

    /// Once, on the tile's thread, after the last turn.
    fn on_stop(&mut self) {}
}

/// How long a tile waits for input before its turn ends (so it sees a stop request).
pub const INPUT_WAIT: Duration = Duration::from_millis(50);

/// The next item on a tile's input link, waiting at most [`INPUT_WAIT`] (counted as idle).
/// `Err` is the turn to return: `Continue` when nothing came, `Done` when the link is closed
/// and empty, which is how a tile downstream of another learns that it must stop.
pub fn next_input<T>(input: &Receiver<T>, clock: &mut TileClock<'_>) -> Result<T, Turn> {
    let got = input.recv_timeout(INPUT_WAIT);
    clock.idle();
    match got {
        Ok(item) => Ok(item),
        Err(RecvTimeoutError::Timeout) => Err(Turn::Continue),
        Err(RecvTimeoutError::Disconnected) => Err(Turn::Done),
    }
}

/// Where a tile's counters live: a slot of the shared metrics region (`&'static`), or one its
/// owner keeps (`Arc`, e.g. a storage device's).
pub trait StatsSlot: Send + 'static {
    fn slot(&self) -> &TileStats;
}

impl StatsSlot for &'static TileStats {
    fn slot(&self) -> &TileStats {
        self
    }
}

impl StatsSlot for Arc<TileStats> {
    fn slot(&self) -> &TileStats {
        self
    }
}

/// Where a tile runs: the core it is pinned to and the NUMA node its memory prefers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    pub core: Option<usize>,
    pub numa: Option<usize>,
}

/// A running tile's thread.
pub struct TileHandle {
    pub name: String,
    /// False when the loop ended by panicking.
    thread: JoinHandle<bool>,
}

impl TileHandle {
    /// Wait for the tile's loop to end. False when it ended by panicking.
    pub fn join(self) -> bool {
        self.thread.join().unwrap_or(false)
    }
}

/// Start `tile` on a thread named `name`: pin it, bind its memory, run turns until it says
/// [`Turn::Done`] (after `stop` is set, or when its input closes). A tile that panics, or
/// whose loop ends while neither `stop` nor the node's stop was requested, is reported to
/// `health` as the node's failure: a pipeline with a tile missing cannot serve.
pub fn launch<T: Tile>(
    name: impl Into<String>,
    mut tile: T,
    stats: impl StatsSlot,
    placement: Placement,
    stop: Arc<AtomicBool>,
    health: Arc<Health>,
) -> std::io::Result<TileHandle> {
    let name = name.into();
    let thread_name = name.clone();
    let thread = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            apply_placement(&thread_name, placement);
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(&mut tile, stats.slot(), &stop)
            }));
            match ran {
                Err(payload) => {
                    let why = format!("panicked: {}", panic_message(payload.as_ref()));
                    health.fail(&thread_name, &why);
                    false
                }
                Ok(()) => {
                    if !stop.load(Ordering::Acquire) && !health.stopping() {
                        health.fail(&thread_name, "stopped while the node was running");
                    }
                    true
                }
            }
        })?;
    Ok(TileHandle { name, thread })
}

/// The one run loop: `on_start`, turns charged to `stats` until a turn says `Done` (turns see
/// `stop`), `on_stop`. [`launch`] runs it on a thread of its own; a tile on a thread someone
/// else started (a DPDK EAL lcore) runs it there, with the same hooks and accounting.
pub fn run<T: Tile>(tile: &mut T, stats: &TileStats, stop: &AtomicBool) {
    tile.on_start();
    let mut clock = TileClock::new(stats);
    while tile.turn(&mut clock, stop.load(Ordering::Acquire)) == Turn::Continue {}
    tile.on_stop();
}

fn apply_placement(name: &str, placement: Placement) {
    if let Some(core) = placement.core
        && let Err(e) = pin_to_core(core)
    {
        tracing::warn!(tile = name, core, error = %e, "could not pin tile");
    }
    if let Some(node) = placement.numa
        && let Err(e) = prefer_numa_node(node)
    {
        tracing::warn!(tile = name, node, error = %e, "could not bind tile memory");
    }
}

/// Pin the calling thread to one CPU.
pub fn pin_to_core(core: usize) -> std::io::Result<()> {
    if core >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::other("core out of range"));
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays within it (checked above).
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Make the calling thread's new memory prefer NUMA node `node` (MPOL_PREFERRED).
pub fn prefer_numa_node(node: usize) -> std::io::Result<()> {
    const MPOL_PREFERRED: libc::c_long = 1;
    const MAX_NODES: usize = 16 * 64;
    if node >= MAX_NODES {
        return Err(std::io::Error::other("NUMA node out of range"));
    }
    let mask: [libc::c_ulong; MAX_NODES / 64] =
        std::array::from_fn(|i| if i == node / 64 { 1 << (node % 64) } else { 0 });
    // SAFETY: set_mempolicy reads `maxnode` bits from a live mask.
    let r = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            MPOL_PREFERRED,
            mask.as_ptr(),
            MAX_NODES as libc::c_ulong,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Tiles stopped together: their shared stop flag and their threads, and the node health
/// their deaths are reported to.
pub struct Stage {
    pub name: &'static str,
    stop: Arc<AtomicBool>,
    tiles: Vec<TileHandle>,
    health: Arc<Health>,
}

impl Stage {
    /// A stage reporting to the health the calling thread has entered ([`Health::enter`]).
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            stop: Arc::new(AtomicBool::new(false)),
            tiles: Vec::new(),
            health: Health::current(),
        }
    }

    /// Launch a tile in this stage.
    pub fn launch<T: Tile>(
        &mut self,
        name: impl Into<String>,
        tile: T,
        stats: impl StatsSlot,
        placement: Placement,
    ) -> std::io::Result<()> {
        let h = launch(
            name,
            tile,
            stats,
            placement,
            self.stop.clone(),
            self.health.clone(),
        )?;
        self.tiles.push(h);
        Ok(())
    }

    /// Ask every tile of the stage to finish, without waiting (e.g. before waking tiles
    /// blocked on a socket, so that they see the request when they wake).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Ask every tile of the stage to finish, and wait until they have. False when one
    /// panicked.
    pub fn stop(self) -> bool {
        self.request_stop();
        let mut clean = true;
        for t in self.tiles {
            clean &= t.join();
        }
        clean
    }

    pub fn tile_names(&self) -> impl Iterator<Item = &str> {
        self.tiles.iter().map(|t| t.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// A stand-in link: items to take, or None once closed.
    type Input = Arc<std::sync::Mutex<Option<Vec<u64>>>>;

    struct Counter {
        turns: Arc<AtomicU64>,
        input: Input,
    }

    impl Tile for Counter {
        fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn {
            std::thread::sleep(Duration::from_millis(1));
            clock.idle();
            let mut guard = self.input.lock().unwrap();
            let Some(items) = guard.as_mut() else {
                return Turn::Done; // input closed
            };
            let n = items.drain(..).count() as u64;
            self.turns.fetch_add(n, Ordering::Relaxed);
            clock.busy();
            if stopping { Turn::Done } else { Turn::Continue }
        }
    }

    #[test]
    fn stages_stop_in_order_and_tiles_end_on_closed_input() {
        let stats: &'static TileStats = Box::leak(Box::default());
        let turns = Arc::new(AtomicU64::new(0));
        let input: Input = Arc::new(std::sync::Mutex::new(Some(vec![1, 2, 3])));
        let mut a = Stage::new("a");
        a.launch(
            "t-a",
            Counter {
                turns: turns.clone(),
                input: input.clone(),
            },
            stats,
            Placement::default(),
        )
        .unwrap();
        assert_eq!(a.tile_names().collect::<Vec<_>>(), ["t-a"]);
        while turns.load(Ordering::Relaxed) < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(a.stop());
        assert!(stats.busy_ns.load(Ordering::Relaxed) > 0);
        assert!(stats.idle_ns.load(Ordering::Relaxed) > 0);

        // A tile whose input closes ends without being stopped.
        let mut b = Stage::new("b");
        b.launch(
            "t-b",
            Counter {
                turns: turns.clone(),
                input: input.clone(),
            },
            stats,
            Placement {
                core: Some(0),
                numa: None,
            },
        )
        .unwrap();
        *input.lock().unwrap() = None;
        let h = b.tiles.pop().unwrap();
        assert!(h.join());
    }

    struct Panics;
    impl Tile for Panics {
        fn turn(&mut self, _: &mut TileClock<'_>, _: bool) -> Turn {
            panic!("boom");
        }
    }

    #[test]
    fn a_panicking_tile_is_reported_by_its_stage_and_fails_the_node() {
        let stats: &'static TileStats = Box::leak(Box::default());
        let health = Health::new();
        let _scope = health.enter();
        let mut s = Stage::new("p");
        s.launch("t-p", Panics, stats, Placement::default())
            .unwrap();
        wait_for_failure(&health);
        assert_eq!(health.failure(), Some("t-p panicked: boom"));
        assert!(!s.stop());
    }

    fn wait_for_failure(health: &Health) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while health.is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "failure never reported"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Ends on its first turn, whatever it is told.
    struct Quits;
    impl Tile for Quits {
        fn turn(&mut self, _: &mut TileClock<'_>, _: bool) -> Turn {
            Turn::Done
        }
    }

    #[test]
    fn a_tile_ending_while_the_node_runs_fails_the_node_but_not_when_stopping() {
        let stats: &'static TileStats = Box::leak(Box::default());
        let health = Health::new();
        let _scope = health.enter();
        let mut s = Stage::new("q");
        s.launch("t-q", Quits, stats, Placement::default()).unwrap();
        wait_for_failure(&health);
        assert_eq!(
            health.failure(),
            Some("t-q stopped while the node was running")
        );
        assert!(s.stop(), "it did not panic");

        // Ending because the stage or the node was asked to stop is not a failure.
        for node_stopping in [false, true] {
            let health = Health::new();
            let _scope = health.enter();
            let mut s = Stage::new("r");
            if node_stopping {
                health.begin_stop();
            } else {
                s.request_stop();
            }
            s.launch("t-r", Quits, stats, Placement::default()).unwrap();
            assert!(s.stop());
            assert!(health.is_ok(), "{:?}", health.failure());
        }
    }
}
