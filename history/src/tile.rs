//! The history tile: appends each durable slot's record, in slot order, as the commit tile
//! hands it over (the `commit_history` link, bounded and blocking: history is a promise to
//! clients, so a slow history disk holds the commit tile back as a slow accounts disk does).
//! Records are synced every `history.sync_interval_ms`, at each segment roll and at stop,
//! not per slot: a crash may lose the unsynced tail, which the next start takes again from
//! the slot records the accounts store kept (the runtime replays them down the same link).

use crate::store::{History, HistoryError};
use crossbeam_channel::Receiver;
use runtime::commit::DurableSlot;
use runtime::metrics::RuntimeCounters;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use telemetry::{Tile, TileClock, Turn, next_input};

const RETRY_BACKOFF: Duration = Duration::from_millis(500);

pub struct HistoryTile {
    input: Receiver<DurableSlot>,
    history: Arc<History>,
    counters: &'static RuntimeCounters,
}

impl HistoryTile {
    pub fn new(
        input: Receiver<DurableSlot>,
        history: Arc<History>,
        counters: &'static RuntimeCounters,
    ) -> Self {
        Self {
            input,
            history,
            counters,
        }
    }

    fn sync_if_due(&self) {
        if let Err(e) = self.history.sync_if_due() {
            self.counters
                .history_write_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "history sync failed; retrying at the next turn");
        }
    }
}

impl Tile for HistoryTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn {
        let c = self.counters;
        let job = match next_input(&self.input, clock) {
            Ok(job) => job,
            Err(turn) => {
                self.sync_if_due();
                return turn;
            }
        };
        c.history.add_in(1);
        c.history.set_queue_depth(self.input.len());
        loop {
            match self.history.append(job.slot, &job.meta) {
                Ok(_) => break,
                // Never going to succeed: counted and logged, the next slots go on.
                Err(e @ (HistoryError::BadRecord(_) | HistoryError::TooLarge { .. })) => {
                    c.history_write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(slot = job.slot, error = %e, "slot left out of the history");
                    break;
                }
                // A full or failing disk: retried with the same slot while the bounded link
                // holds the commit tile back. At stop the slot is left to the next start's
                // catch-up from the accounts store's slot records.
                Err(e) => {
                    c.history_write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(slot = job.slot, error = %e, "history append failed; retrying");
                    if stopping {
                        break;
                    }
                    std::thread::sleep(RETRY_BACKOFF);
                }
            }
        }
        self.sync_if_due();
        c.history.add_out(1);
        clock.busy();
        Turn::Continue
    }

    fn on_stop(&mut self) {
        if let Err(e) = self.history.sync() {
            tracing::error!(error = %e, "history sync at stop failed");
        }
    }
}
