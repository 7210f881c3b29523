//! Hot-account islands with hysteresis.
//!
//! An account whose demanded write CU per slot (EWMA) reaches `enter_cu`, from at least
//! `min_writers` transactions per slot (one big transaction is not contention), becomes an island:
//! transactions writing it queue in the island's own lane and run serialised there, under the
//! account's CU cap. It dissolves only after its demand has stayed below `exit_cu` (lower than
//! `enter_cu`) for `cool_slots` consecutive slots, so an account hovering at the threshold does
//! not flap between the two.

use crate::sequencer::LaneId;
use ahash::HashMap;
use solana_pubkey::Pubkey;

/// Island lanes are numbered from here; app lanes are the app ids below it.
pub const ISLAND_LANE_BASE: LaneId = 1 << 32;

pub fn is_island_lane(lane: LaneId) -> bool {
    lane >= ISLAND_LANE_BASE
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IslandPolicy {
    pub enter_cu: f64,
    pub exit_cu: f64,
    pub cool_slots: u32,
    pub min_writers: f64,
    pub max_islands: usize,
}

#[derive(Debug, Clone)]
pub struct Island {
    pub account: Pubkey,
    pub lane: LaneId,
    /// The worker its batches prefer (chosen by placement when it formed).
    pub worker: usize,
    pub formed_slot: u64,
    cool: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Formed(LaneId),
    Dissolved(LaneId),
}

pub struct Islands {
    policy: IslandPolicy,
    by_account: HashMap<Pubkey, usize>,
    slots: Vec<Option<Island>>,
}

impl Islands {
    /// New thresholds from the next [`Self::observe`] on (islands that no longer meet the exit
    /// rule cool and dissolve as usual).
    pub fn set_policy(&mut self, policy: IslandPolicy) {
        self.policy = policy;
    }

    pub fn policy(&self) -> &IslandPolicy {
        &self.policy
    }

    pub fn new(policy: IslandPolicy) -> Self {
        Self {
            policy,
            by_account: HashMap::default(),
            slots: Vec::new(),
        }
    }

    pub fn lane_of(&self, account: &Pubkey) -> Option<LaneId> {
        self.by_account
            .get(account)
            .map(|i| ISLAND_LANE_BASE + *i as LaneId)
    }

    pub fn get(&self, lane: LaneId) -> Option<&Island> {
        let i = usize::try_from(lane.checked_sub(ISLAND_LANE_BASE)?).ok()?;
        self.slots.get(i)?.as_ref()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Island> {
        self.slots.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.by_account.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_account.is_empty()
    }

    /// Feed one account's demand EWMAs (CU, transactions) at a slot boundary. `worker` picks
    /// the lane's worker if the account becomes an island.
    pub fn observe(
        &mut self,
        account: &Pubkey,
        demand_cu: f64,
        writers: f64,
        slot: u64,
        worker: impl FnOnce() -> usize,
    ) -> Option<Change> {
        if let Some(&i) = self.by_account.get(account) {
            let island = self.slots[i].as_mut().expect("indexed island exists");
            if demand_cu >= self.policy.exit_cu {
                island.cool = 0;
                return None;
            }
            island.cool += 1;
            if island.cool < self.policy.cool_slots {
                return None;
            }
            self.by_account.remove(account);
            let lane = island.lane;
            self.slots[i] = None;
            return Some(Change::Dissolved(lane));
        }
        if demand_cu < self.policy.enter_cu
            || writers < self.policy.min_writers
            || self.by_account.len() >= self.policy.max_islands
        {
            return None;
        }
        let i = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let lane = ISLAND_LANE_BASE + i as LaneId;
        self.slots[i] = Some(Island {
            account: *account,
            lane,
            worker: worker(),
            formed_slot: slot,
            cool: 0,
        });
        self.by_account.insert(*account, i);
        Some(Change::Formed(lane))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_above_enter_and_dissolves_after_cooling_below_exit() {
        let mut isl = Islands::new(IslandPolicy {
            enter_cu: 100.0,
            exit_cu: 40.0,
            cool_slots: 3,
            min_writers: 2.0,
            max_islands: 4,
        });
        let big = Pubkey::new_unique();
        assert_eq!(
            isl.observe(&big, 1000.0, 1.0, 1, || 0),
            None,
            "one big writer"
        );
        let k = Pubkey::new_unique();
        assert_eq!(isl.observe(&k, 99.0, 10.0, 1, || 0), None);
        let lane = match isl.observe(&k, 100.0, 10.0, 2, || 1) {
            Some(Change::Formed(l)) => l,
            other => panic!("expected an island, got {other:?}"),
        };
        assert!(is_island_lane(lane));
        assert_eq!(isl.lane_of(&k), Some(lane));
        assert_eq!(isl.get(lane).unwrap().worker, 1);
        // Between the thresholds: stays.
        for s in 3..20 {
            assert_eq!(isl.observe(&k, 60.0, 10.0, s, || 0), None);
        }
        // Below exit, but warmed again before cooling long enough: stays.
        assert_eq!(isl.observe(&k, 10.0, 10.0, 20, || 0), None);
        assert_eq!(isl.observe(&k, 10.0, 10.0, 21, || 0), None);
        assert_eq!(isl.observe(&k, 50.0, 10.0, 22, || 0), None);
        assert_eq!(isl.observe(&k, 10.0, 10.0, 23, || 0), None);
        assert_eq!(isl.observe(&k, 10.0, 10.0, 24, || 0), None);
        assert_eq!(
            isl.observe(&k, 10.0, 10.0, 25, || 0),
            Some(Change::Dissolved(lane))
        );
        assert_eq!(isl.lane_of(&k), None);
        assert!(isl.is_empty());
    }

    #[test]
    fn island_count_is_bounded() {
        let mut isl = Islands::new(IslandPolicy {
            enter_cu: 1.0,
            exit_cu: 0.5,
            cool_slots: 1,
            min_writers: 1.0,
            max_islands: 2,
        });
        for _ in 0..5 {
            isl.observe(&Pubkey::new_unique(), 10.0, 10.0, 0, || 0);
        }
        assert_eq!(isl.len(), 2);
    }
}
