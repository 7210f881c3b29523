//! Sequencer-driven read-ahead. The keys of a transaction entering the queue are marked in the
//! cache on the caller's (bank) thread — marks and releases must never be lost, or the cache
//! would keep keys pinned (or unpin another transaction's) for good — and go through a bounded
//! channel to one `gc-prefetch` thread, so the bank thread pays the marks and a channel send,
//! not index work and I/O. That thread submits one batch of reads per device for the keys not
//! resident; completions decode into the cache on the I/O thread. A full channel drops the
//! read request (counted): that only costs a later cache miss.

use super::Shared;
use super::device::IoOp;
use super::index::Loc;
use super::publish::{PUBLISH_INTERVAL, publish};
use super::{layout, read_span};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use solana_pubkey::Pubkey;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use telemetry::{Placement, Stage, Tile, TileClock, TileStats, Turn, next_input};

/// Default depth of the bank -> prefetch read queue; a full queue drops the request (counted).
pub const HINT_QUEUE: usize = 65_536;

pub enum Hint {
    /// Read these (already marked) keys into the cache.
    Read(Vec<Pubkey>),
    /// Answered once every earlier hint has been acted on (reads submitted, not completed).
    Flush(Sender<()>),
}

pub struct Prefetcher {
    tx: Option<Sender<Hint>>,
    stage: Option<Stage>,
}

impl Prefetcher {
    pub fn start(shared: Arc<Shared>) -> Prefetcher {
        let (tx, rx) = bounded(shared.cfg.prefetch_queue.max(1));
        let mut stage = Stage::new("storage-prefetch");
        let stats = Arc::new(TileStats::default());
        stage
            .launch(
                "gc-prefetch",
                PrefetchTile {
                    shared,
                    rx,
                    stats: stats.clone(),
                    published: Instant::now(),
                },
                stats,
                Placement::default(),
            )
            .expect("spawn prefetch thread");
        Prefetcher {
            tx: Some(tx),
            stage: Some(stage),
        }
    }

    /// Never blocks: a full queue drops the hint.
    pub fn hint(&self, shared: &Shared, h: Hint) {
        let tx = self.tx.as_ref().expect("running");
        if let Err(TrySendError::Full(_)) = tx.try_send(h) {
            shared.hints_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every hint sent before has been acted on.
    pub fn flush(&self) {
        let (tx, rx) = bounded(1);
        if self
            .tx
            .as_ref()
            .expect("running")
            .send(Hint::Flush(tx))
            .is_ok()
        {
            let _ = rx.recv();
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Closing the queue ends the tile once it has acted on every hint already queued.
        self.tx.take();
        if let Some(stage) = self.stage.take() {
            stage.stop();
        }
    }
}

/// Also the store's publisher: it turns at least every `INPUT_WAIT`, so it copies the
/// store's counters into the metrics region (`publish`) between hints.
struct PrefetchTile {
    shared: Arc<Shared>,
    rx: Receiver<Hint>,
    stats: Arc<TileStats>,
    published: Instant,
}

impl PrefetchTile {
    fn publish_due(&mut self) {
        if self.published.elapsed() >= PUBLISH_INTERVAL {
            self.published = Instant::now();
            publish(&self.shared, &self.stats);
        }
    }
}

impl Tile for PrefetchTile {
    fn on_stop(&mut self) {
        publish(&self.shared, &self.stats);
    }

    fn turn(&mut self, clock: &mut TileClock<'_>, _stopping: bool) -> Turn {
        self.publish_due();
        let h = match next_input(&self.rx, clock) {
            Ok(x) => x,
            Err(turn) => return turn,
        };
        self.stats.add_in(1);
        self.stats.set_queue_depth(self.rx.len());
        let s = &self.shared;
        match h {
            Hint::Read(keys) => start_reads(s, &keys),
            Hint::Flush(done) => {
                let _ = done.send(());
            }
        }
        self.stats.add_out(1);
        clock.busy();
        Turn::Continue
    }
}

fn start_reads(s: &Arc<Shared>, keys: &[Pubkey]) {
    let mut by_dev: Vec<Vec<(Pubkey, Loc)>> = vec![Vec::new(); s.devices.len()];
    for key in keys {
        if !s.cache.begin_load(key) {
            continue;
        }
        match s.index.get(&key.to_bytes()) {
            Some(loc) => by_dev[loc.device as usize].push((*key, loc)),
            None => s.cache.finish_load(key, None, || false),
        }
    }
    for (d, reads) in by_dev.into_iter().enumerate() {
        if reads.is_empty() {
            continue;
        }
        let ops = reads
            .iter()
            .map(|(_, loc)| {
                let (start, len) = read_span(*loc, s.bs());
                IoOp::read(start, s.mem.alloc(len))
            })
            .collect();
        s.cold_reads
            .fetch_add(reads.len() as u64, Ordering::Relaxed);
        let shared = s.clone();
        s.devices[d].io.submit(
            ops,
            Box::new(move |ops| {
                for ((key, loc), op) in reads.iter().zip(ops) {
                    let kb = key.to_bytes();
                    let value = match (op.error(), op.buf) {
                        (None, Some(buf)) => match shared.decode_at(*loc, op.offset, buf.as_ref(), &kb) {
                            Ok(Some((h, data))) => Some((layout::to_account(&h, &data), h.slot)),
                            Ok(None) => None,
                            Err(e) => {
                                tracing::error!(error = %e, "prefetch read found a corrupt record");
                                None
                            }
                        },
                        _ => None,
                    };
                    shared.cache.finish_load(key, value, || shared.index.get(&kb) == Some(*loc));
                }
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountState;
    use crate::array::{ArrayConfig, ArrayStore};
    use solana_account::{AccountSharedData, ReadableAccount};

    /// The prefetch thread stalls (it holds an unanswered flush) while the bank queues and
    /// releases thousands of transactions through a one-deep queue: read-ahead requests are
    /// dropped (counted), but every mark is released, and gets still read the right values.
    #[test]
    fn a_full_queue_drops_reads_never_marks_or_releases() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ArrayConfig::single_file(dir.path(), 16 << 20);
        cfg.segment_bytes = 1 << 20;
        cfg.chunk_bytes = 64 << 10;
        cfg.direct_io = false;
        cfg.prefetch_queue = 1;
        let s = ArrayStore::open(cfg).unwrap();
        let keys: Vec<Pubkey> = (0..256).map(|_| Pubkey::new_unique()).collect();
        let accounts: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                (
                    *k,
                    AccountSharedData::new(i as u64 + 1, 8, &Pubkey::default()),
                )
            })
            .collect();
        s.commit_slot(1, &accounts, b"").unwrap();
        s.drop_cache();

        let (stall, unstall) = bounded(0);
        s.prefetcher.hint(&s.shared, Hint::Flush(stall));
        for round in 0..4_000 {
            let tx_keys: Vec<Pubkey> = (0..4).map(|j| keys[(round * 7 + j * 31) % 256]).collect();
            let _ = s.prefetch(&tx_keys);
            if round % 3 != 0 {
                s.release(&tx_keys);
            }
        }
        assert!(s.stats().hints_dropped >= 3_990, "{:?}", s.stats());
        assert!(s.stats().marked_keys > 0);
        // The transactions still queued leave.
        for round in (0..4_000).step_by(3) {
            let tx_keys: Vec<Pubkey> = (0..4).map(|j| keys[(round * 7 + j * 31) % 256]).collect();
            s.release(&tx_keys);
        }
        assert_eq!(s.stats().marked_keys, 0, "every mark released");
        unstall.recv().unwrap();
        s.flush_hints();
        for (i, k) in keys.iter().enumerate() {
            let (a, _) = s.get(k).unwrap().unwrap();
            assert_eq!(a.lamports(), i as u64 + 1);
        }
        assert_eq!(s.stats().marked_keys, 0);
    }
}
