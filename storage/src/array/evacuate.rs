//! The `gc-compact` tile: reads a compaction victim's live records off the device, so the
//! slot commit that chose the victim does not wait for the scan. One read at a time: the
//! commit path asks for the next victim only after it has moved the last one's records.
//! The tile lives as long as the store and stops when the store drops its request link.

use super::compaction::Evacuation;
use super::{Shared, scan};
use crate::StoreError;
use crossbeam_channel::{Receiver, Sender, bounded};
use std::sync::Arc;
use telemetry::{Placement, Stage, Tile, TileClock, Turn, next_input};

/// A victim segment: where it is and how far it is filled.
pub(super) struct Victim {
    pub device: usize,
    pub segment: u32,
    pub fill: u32,
}

pub(super) struct Evacuator {
    requests: Option<Sender<Victim>>,
    /// The read of the last requested victim (at most one in flight).
    pub results: Receiver<Result<Evacuation, StoreError>>,
    stage: Option<Stage>,
}

impl Evacuator {
    pub fn start(shared: Arc<Shared>) -> Result<Evacuator, StoreError> {
        let (requests, rx) = bounded(1);
        let (tx, results) = bounded(1);
        let stats = shared.compact_tile.clone();
        let mut stage = Stage::new("storage-compact");
        stage
            .launch(
                "gc-compact",
                CompactTile {
                    shared,
                    requests: rx,
                    results: tx,
                },
                stats,
                Placement::default(),
            )
            .map_err(|source| StoreError::Thread {
                name: "gc-compact",
                source,
            })?;
        Ok(Evacuator {
            requests: Some(requests),
            results,
            stage: Some(stage),
        })
    }

    /// Start reading `victim`. False if the tile is gone (the read is then not started).
    pub fn request(&self, victim: Victim) -> bool {
        self.requests
            .as_ref()
            .is_some_and(|r| r.send(victim).is_ok())
    }
}

impl Drop for Evacuator {
    fn drop(&mut self) {
        // Closing the request link ends the tile after any read it has started.
        self.requests.take();
        if let Some(stage) = self.stage.take() {
            stage.stop();
        }
    }
}

struct CompactTile {
    shared: Arc<Shared>,
    requests: Receiver<Victim>,
    results: Sender<Result<Evacuation, StoreError>>,
}

impl Tile for CompactTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, _stopping: bool) -> Turn {
        let v = match next_input(&self.requests, clock) {
            Ok(v) => v,
            Err(turn) => return turn,
        };
        let read = scan::read_segment(&self.shared, v.device, v.segment, v.fill).map(|records| {
            Evacuation {
                device: v.device,
                segment: v.segment,
                records,
            }
        });
        clock.busy();
        clock.stats().add_in(1);
        // The store may be closing and no longer listening: nothing to hand the read to.
        let _ = self.results.send(read);
        Turn::Continue
    }
}
