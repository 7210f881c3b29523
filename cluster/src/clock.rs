//! One chain across nodes: the cluster's slot clock and blockhash.
//!
//! Every node closes slot `s` at `genesis + (s + 1) × slot_ms` of the wall clock (the nodes'
//! clocks are kept by NTP, as Solana's validators' are), so a slot has one number
//! cluster-wide. The blockhash of slot `s` is SHA-256 of a domain tag, the cluster's secret
//! seed and `s`: the same on every node without any message between them, and unknown in
//! advance to a client (the seed lives in etcd), so a blockhash still proves that a
//! transaction was signed after its slot began. What a slot executed is committed to by the
//! state root, not by the blockhash.

use crate::map::ClusterSpec;
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"gigacompute cluster blockhash v1";

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClusterClock {
    seed: [u8; 32],
    pub genesis_unix_ms: u64,
    pub slot_ms: u64,
}

/// The seed stays out of logs.
impl std::fmt::Debug for ClusterClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClock")
            .field("genesis_unix_ms", &self.genesis_unix_ms)
            .field("slot_ms", &self.slot_ms)
            .finish_non_exhaustive()
    }
}

impl ClusterClock {
    pub fn new(spec: &ClusterSpec) -> Result<Self, crate::map::MapError> {
        spec.check()?;
        Ok(Self {
            seed: spec.seed()?,
            genesis_unix_ms: spec.genesis_unix_ms,
            slot_ms: spec.slot_ms,
        })
    }

    /// The slot open at Unix time `now_ms`.
    pub fn slot_at(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.genesis_unix_ms) / self.slot_ms
    }

    /// When slot `s` closes, Unix ms.
    pub fn slot_end_ms(&self, s: u64) -> u64 {
        self.genesis_unix_ms
            .saturating_add(s.saturating_add(1).saturating_mul(self.slot_ms))
    }

    /// The secret part of the path peers call each other on (`/cluster/forwarded/<token>`):
    /// only nodes, which read the seed from etcd, know it.
    pub fn peer_token(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"gigacompute peer path v1");
        h.update(self.seed);
        let d: [u8; 32] = h.finalize().into();
        d[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The cluster's genesis hash (what `getGenesisHash` answers on every node): fixed for
    /// the cluster's life, derived from its seed and start under a tag of its own, so it
    /// reveals nothing of the blockhashes.
    pub fn genesis_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"gigacompute cluster genesis v1");
        h.update(self.seed);
        h.update(self.genesis_unix_ms.to_le_bytes());
        h.finalize().into()
    }

    pub fn blockhash(&self, slot: u64) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(self.seed);
        h.update(slot.to_le_bytes());
        h.finalize().into()
    }
}

/// Unix time in ms.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_blockhashes_are_a_function_of_the_spec() {
        let spec = ClusterSpec {
            name: "c".into(),
            partitions: 4,
            genesis_unix_ms: 1_000,
            slot_ms: 400,
            blockhash_seed: "01".repeat(32),
        };
        let c = ClusterClock::new(&spec).unwrap();
        assert_eq!(c.slot_at(999), 0);
        assert_eq!(c.slot_at(1_399), 0);
        assert_eq!(c.slot_at(1_400), 1);
        assert_eq!(c.slot_end_ms(0), 1_400);
        assert_eq!(
            c.blockhash(7),
            ClusterClock::new(&spec).unwrap().blockhash(7)
        );
        assert_ne!(c.blockhash(7), c.blockhash(8));
        let other = ClusterSpec {
            blockhash_seed: "02".repeat(32),
            ..spec
        };
        assert_ne!(
            c.blockhash(7),
            ClusterClock::new(&other).unwrap().blockhash(7)
        );
    }
}
