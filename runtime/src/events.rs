//! What the chain announces to its subscribers (the PubSub endpoint): each closed slot with
//! its statuses and the accounts it wrote, and each slot that became durable. The bank and
//! the commit tile send with `try_send` into one bounded queue: a subscriber that falls
//! behind loses events (counted, and the listener learns of the gap from the slot numbers),
//! it never holds up slot production or commits.

use crate::chain::{SlotHeader, TxStatus};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use solana_account::AccountSharedData;
use solana_pubkey::Pubkey;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Events that may wait for the listener (about 50 s of slots at 50 ms).
pub const EVENT_QUEUE: usize = 1024;

pub enum ChainEvent {
    /// A slot closed: its transactions executed (processed commitment).
    Processed {
        header: SlotHeader,
        statuses: Vec<Arc<TxStatus>>,
        /// Every account the slot wrote, with its value at the end of the slot (shared with
        /// the commit that makes it durable; a zero-lamport account was deleted).
        accounts: Arc<Vec<(Pubkey, AccountSharedData)>>,
    },
    /// Every slot up to this one is durable (confirmed and finalized).
    Durable { slot: u64 },
}

/// The sending side, held by the chain; absent until a listener subscribes.
pub struct ChainEvents {
    tx: Sender<ChainEvent>,
    /// Events the listener was too slow to take.
    pub dropped: AtomicU64,
}

impl ChainEvents {
    /// A queue of [`EVENT_QUEUE`] events and its receiving end.
    pub fn new() -> (Arc<Self>, Receiver<ChainEvent>) {
        let (tx, rx) = bounded(EVENT_QUEUE);
        (
            Arc::new(Self {
                tx,
                dropped: AtomicU64::new(0),
            }),
            rx,
        )
    }

    /// Never blocks: a full queue (or a listener gone) drops the event, counted.
    pub fn send(&self, e: ChainEvent) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(e) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
