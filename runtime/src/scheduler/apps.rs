//! Apps: what the scheduler isolates from each other.
//!
//! By default an app is every transaction whose top-level program (first instruction that is
//! not a compute-budget one) is the same; `scheduler.app_grouping = "fee_payer"` groups by
//! payer instead. Rules carve apps finer: a transaction of `program` that references `account`
//! (one market of a DEX, one mint of the token program) belongs to the app named `account`.
//! The bank classifies every admitted transaction ([`AppClassifier`]), so per-app metrics are
//! the same whichever scheduler runs. The hotspot scheduler interns each app key to a small
//! [`AppId`]; past `MAX_TRACKED_APPS` new keys share the overflow app, so a hostile stream of
//! fresh programs cannot grow its tables, and apps that went idle are forgotten (their ids
//! reused), so a burst of junk programs does not push later real apps into the overflow for
//! good.

use crate::sequencer::AppId;
use ahash::HashMap;
use solana_message::SanitizedMessage;
use solana_pubkey::Pubkey;

pub const MAX_TRACKED_APPS: usize = 4096;
/// Where apps beyond the tracked ones go.
pub const OVERFLOW_APP: AppId = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum AppGrouping {
    /// The transaction's top-level program.
    #[default]
    #[serde(rename = "program")]
    TopLevelProgram,
    #[serde(rename = "fee_payer")]
    FeePayer,
}

/// Transactions of `program` that reference `account` form the app named `account`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRule {
    #[serde(with = "telemetry::config::text")]
    pub program: Pubkey,
    #[serde(with = "telemetry::config::text")]
    pub account: Pubkey,
}

/// Names the app of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppClassifier {
    pub grouping: AppGrouping,
    pub rules: Vec<AppRule>,
}

impl AppClassifier {
    pub fn classify(&self, message: &SanitizedMessage) -> Pubkey {
        let program = top_level_program(message);
        if let Some(r) = self.rules.iter().find(|r| {
            program == Some(r.program) && message.account_keys().iter().any(|k| *k == r.account)
        }) {
            return r.account;
        }
        match self.grouping {
            AppGrouping::FeePayer => *message.fee_payer(),
            AppGrouping::TopLevelProgram => program.unwrap_or_default(),
        }
    }
}

pub fn top_level_program(message: &SanitizedMessage) -> Option<Pubkey> {
    message
        .program_instructions_iter()
        .map(|(p, _)| *p)
        .find(|p| *p != solana_sdk_ids::compute_budget::ID)
}

/// Whether the transaction can deploy or change programs (these never run optimistically:
/// a worker's program cache cannot be rolled back).
pub fn touches_loader(locks: &[(Pubkey, bool)]) -> bool {
    locks.iter().any(|(k, _)| {
        *k == solana_sdk_ids::bpf_loader_upgradeable::ID
            || *k == solana_sdk_ids::bpf_loader::ID
            || *k == solana_sdk_ids::bpf_loader_deprecated::ID
            || *k == solana_sdk_ids::loader_v4::ID
    })
}

pub struct AppRegistry {
    ids: HashMap<Pubkey, AppId>,
    keys: Vec<Pubkey>,
    weights: HashMap<Pubkey, f64>,
    /// Ids of forgotten apps, to give to new ones.
    free: Vec<AppId>,
}

impl AppRegistry {
    pub fn new(weights: &std::collections::BTreeMap<Pubkey, u32>) -> Self {
        Self {
            ids: HashMap::default(),
            // Id 0 is the overflow app.
            keys: vec![Pubkey::default()],
            weights: weights
                .iter()
                .map(|(k, w)| (*k, f64::from((*w).max(1))))
                .collect(),
            free: Vec::new(),
        }
    }

    /// Forget an app (its id goes to the next new app). Apps the operator weighted are never
    /// forgotten. The caller makes sure nothing queued or in flight still carries the id.
    pub fn forget(&mut self, app: AppId) -> bool {
        let key = self.keys[app as usize];
        if app == OVERFLOW_APP || self.weights.contains_key(&key) || self.ids.remove(&key).is_none()
        {
            return false;
        }
        self.keys[app as usize] = Pubkey::default();
        self.free.push(app);
        true
    }

    /// Whether `app` names an app now (not forgotten, not the overflow).
    pub fn is_live(&self, app: AppId) -> bool {
        app != OVERFLOW_APP && self.ids.get(&self.keys[app as usize]) == Some(&app)
    }

    pub fn intern(&mut self, key: Pubkey) -> AppId {
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        if let Some(id) = self.free.pop() {
            self.keys[id as usize] = key;
            self.ids.insert(key, id);
            return id;
        }
        if self.keys.len() > MAX_TRACKED_APPS {
            return OVERFLOW_APP;
        }
        let id = self.keys.len() as AppId;
        self.keys.push(key);
        self.ids.insert(key, id);
        id
    }

    pub fn key(&self, app: AppId) -> Pubkey {
        self.keys[app as usize]
    }

    pub fn weight(&self, app: AppId) -> f64 {
        self.weights.get(&self.key(app)).copied().unwrap_or(1.0)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.len() <= 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_bounded() {
        let heavy = Pubkey::new_unique();
        let mut r = AppRegistry::new(&[(heavy, 3)].into());
        let a = r.intern(heavy);
        assert_eq!(r.intern(heavy), a);
        assert_ne!(a, OVERFLOW_APP);
        assert_eq!(r.weight(a), 3.0);
        for _ in 0..MAX_TRACKED_APPS + 10 {
            r.intern(Pubkey::new_unique());
        }
        assert_eq!(r.intern(Pubkey::new_unique()), OVERFLOW_APP);
        assert_eq!(r.weight(OVERFLOW_APP), 1.0);
    }
}
