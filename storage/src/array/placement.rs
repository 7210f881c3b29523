//! Which device a record goes to. Reads go wherever the index says, so placement only steers
//! new writes, and changing it never moves data.
//!
//! - Operator-pinned apps (account owners) write to their configured devices only, and no other
//!   app writes there.
//! - An app whose share of written bytes (EWMA over slots) passes `hot_app_share` gets the
//!   last general device to itself, with that device's own I/O thread, ring and queue depth,
//!   so its write bursts do not queue in front of other apps' reads. It gives the device back
//!   when its share falls under half the threshold (hysteresis).
//! - Everything else spreads over the remaining devices by key hash.

use super::ArrayConfig;
use ahash::HashMap;
use solana_account::{AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;

const ALPHA: f64 = 0.3;

pub struct Placement {
    devices: usize,
    pinned: HashMap<Pubkey, Vec<usize>>,
    general: Vec<usize>,
    share: f64,
    ewma: HashMap<Pubkey, f64>,
    hot: Option<(Pubkey, usize)>,
}

fn spread(key: &Pubkey, over: &[usize]) -> usize {
    let h = u64::from_le_bytes(key.as_ref()[8..16].try_into().expect("8 bytes"));
    over[(h % over.len() as u64) as usize]
}

impl Placement {
    pub fn new(cfg: &ArrayConfig) -> Self {
        let devices = cfg.devices.len();
        let pinned: HashMap<Pubkey, Vec<usize>> = cfg
            .pinned_apps
            .iter()
            .map(|(k, d)| {
                (
                    *k,
                    d.iter()
                        .copied()
                        .filter(|&i| i < devices)
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, d)| !d.is_empty())
            .collect();
        let mut general: Vec<usize> = (0..devices)
            .filter(|i| !pinned.values().any(|d| d.contains(i)))
            .collect();
        if general.is_empty() {
            general = (0..devices).collect();
        }
        Placement {
            devices,
            pinned,
            general,
            share: cfg.hot_app_share,
            ewma: HashMap::default(),
            hot: None,
        }
    }

    /// Updates the per-app write shares with one slot's writes.
    pub fn observe(&mut self, accounts: &[(Pubkey, AccountSharedData)]) {
        if self.general.len() < 2 || accounts.is_empty() {
            return;
        }
        let mut bytes: HashMap<Pubkey, f64> = HashMap::default();
        let mut total = 0.0;
        for (_, a) in accounts {
            let b = (a.data().len() + 128) as f64;
            *bytes.entry(*a.owner()).or_default() += b;
            total += b;
        }
        for v in self.ewma.values_mut() {
            *v *= 1.0 - ALPHA;
        }
        for (k, b) in bytes {
            *self.ewma.entry(k).or_default() += ALPHA * b / total;
        }
        self.ewma.retain(|_, v| *v > 0.001);
        let top = self
            .ewma
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, v)| (*k, *v));
        match (self.hot, top) {
            (Some((app, _)), _)
                if !(self.share / 2.0..0.95)
                    .contains(&self.ewma.get(&app).copied().unwrap_or(0.0)) =>
            {
                tracing::info!(%app, "hot app cooled down (or is the only writer left); its device rejoins the shared set");
                self.hot = None;
            }
            // A sole writer has nobody to be isolated from: it keeps every device.
            (None, Some((app, share))) if share > self.share && share < 0.95 => {
                let device = *self.general.last().expect("two or more general devices");
                tracing::info!(%app, share, device, "hot app: new writes get a device of their own");
                self.hot = Some((app, device));
            }
            _ => {}
        }
    }

    pub fn device_for(&self, owner: &Pubkey, key: &Pubkey) -> usize {
        if self.devices == 1 {
            return 0;
        }
        if let Some(d) = self.pinned.get(owner) {
            return spread(key, d);
        }
        match self.hot {
            Some((app, d)) if app == *owner => d,
            Some((_, d)) => {
                let rest: Vec<usize> = self.general.iter().copied().filter(|&g| g != d).collect();
                spread(key, &rest)
            }
            None => spread(key, &self.general),
        }
    }

    /// Slot metadata goes to the first general device not given to a hot app.
    pub fn meta_device(&self) -> usize {
        let hot = self.hot.map(|(_, d)| d);
        self.general
            .iter()
            .copied()
            .find(|&g| Some(g) != hot)
            .unwrap_or(0)
    }

    pub fn hot_app(&self) -> Option<(Pubkey, usize)> {
        self.hot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(n: usize) -> ArrayConfig {
        ArrayConfig {
            devices: (0..n)
                .map(|i| super::super::DeviceSpec {
                    path: format!("/d{i}").into(),
                    create_bytes: 0,
                })
                .collect(),
            ..ArrayConfig::default()
        }
    }

    #[test]
    fn a_hot_app_gets_its_own_device_and_gives_it_back() {
        let mut p = Placement::new(&cfg(3));
        let (hot, cold) = (Pubkey::new_unique(), Pubkey::new_unique());
        let burst: Vec<_> = (0..90)
            .map(|_| (Pubkey::new_unique(), AccountSharedData::new(1, 165, &hot)))
            .chain((0..10).map(|_| (Pubkey::new_unique(), AccountSharedData::new(1, 165, &cold))))
            .collect();
        for _ in 0..5 {
            p.observe(&burst);
        }
        let (app, dev) = p.hot_app().expect("hot app detected");
        assert_eq!((app, dev), (hot, 2));
        for (k, a) in &burst {
            let d = p.device_for(a.owner(), k);
            assert_eq!(
                d == 2,
                *a.owner() == hot,
                "only the hot app writes to its device"
            );
        }
        assert_ne!(p.meta_device(), 2);
        let calm: Vec<_> = (0..100)
            .map(|_| (Pubkey::new_unique(), AccountSharedData::new(1, 165, &cold)))
            .collect();
        for _ in 0..10 {
            p.observe(&calm);
        }
        assert_eq!(p.hot_app(), None);
    }
}
