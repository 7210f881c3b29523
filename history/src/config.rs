//! The `[history]` section, declared once: whether the node keeps its ledger history on disk,
//! how much of it (slots, bytes, index entries: the oldest whole segments go when any is
//! exceeded), how it is cut into segment files and synced, and the commit → history link depth.

use serde::{Deserialize, Serialize};
use telemetry::config::{InvalidConfig, ensure};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    pub enabled: bool,
    /// Slots kept: at least this many of the newest (up to one segment more).
    pub retention_slots: u64,
    /// Bytes of segment files kept, at most.
    pub retention_bytes: u64,
    /// Entries of the in-memory index (one per transaction signature, one per account key of
    /// each transaction), at most: it bounds the index's memory (about 40 bytes an entry).
    pub max_index_entries: u64,
    /// A segment file is closed (synced) and a new one begun past this many bytes.
    pub segment_bytes: u64,
    /// Appended records are synced to the device at least this often, ms.
    pub sync_interval_ms: u64,
    /// Durable slots waiting for the history tile before the commit tile blocks.
    pub queue_slots: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            // A day of 50 ms slots.
            retention_slots: 1_728_000,
            retention_bytes: 4 << 30,
            max_index_entries: 32 << 20,
            segment_bytes: 64 << 20,
            sync_interval_ms: 1_000,
            queue_slots: 64,
        }
    }
}

/// Smallest segment: small ones are for tests; records larger than a segment still fit (a
/// segment holds at least one record).
const MIN_SEGMENT_BYTES: u64 = 64 << 10;

impl HistoryConfig {
    /// Slots one segment spans at most, so that retention by slots drops a small share of
    /// the window at a time (1/16 of it).
    pub fn segment_slots(&self) -> u64 {
        (self.retention_slots / 16).max(1)
    }

    pub fn validate(&self) -> Result<(), InvalidConfig> {
        ensure(self.retention_slots >= 16, || {
            "history.retention_slots must be at least 16".into()
        })?;
        ensure(
            (MIN_SEGMENT_BYTES..=1 << 30).contains(&self.segment_bytes),
            || format!("history.segment_bytes must be {MIN_SEGMENT_BYTES}..=1073741824"),
        )?;
        ensure(self.retention_bytes >= 2 * self.segment_bytes, || {
            "history.retention_bytes must be at least twice history.segment_bytes".into()
        })?;
        ensure(self.max_index_entries >= 1024, || {
            "history.max_index_entries must be at least 1024".into()
        })?;
        ensure((10..=60_000).contains(&self.sync_interval_ms), || {
            "history.sync_interval_ms must be 10..=60000".into()
        })?;
        ensure((1..=4096).contains(&self.queue_slots), || {
            "history.queue_slots must be 1..=4096".into()
        })
    }
}
