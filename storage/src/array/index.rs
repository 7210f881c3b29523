//! The in-memory index: pubkey → where the account's current record lies.
//!
//! Compactness is the point (target ≤ 48 bytes per account, overhead included). A key picks
//! one of 65,536 shards by its first two bytes XOR a keyed hash (random per process) of the
//! other 30; each shard is a sorted vector of 38-byte entries (those 30 bytes + an 8-byte
//! packed location) searched by bisection. The two bytes are not stored: shard and the 30
//! bytes determine the key. The keyed hash keeps shards balanced whatever the keys look like
//! (sequential test keys, or addresses ground to share a prefix, which would otherwise pile
//! into one shard and make inserts linear). Vectors grow by a quarter, so slack stays small;
//! a shard has its own lock.

use parking_lot::RwLock;

const SHARD_BITS: u32 = 16;
const SHARDS: usize = 1 << SHARD_BITS;
const REST: usize = 30;
const ENTRY: usize = REST + 8;

/// Where a record lies: device, byte offset and footprint (record length rounded up to 16
/// bytes). Packed into 64 bits: 5 bits device (32 devices), 21 bits footprint / 16 (32 MiB),
/// 38 bits offset / 16 (4 TiB per device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loc {
    pub device: u8,
    pub offset: u64,
    pub len: u32,
}

impl Loc {
    pub const MAX_DEVICES: usize = 32;
    pub const MAX_DEVICE_BYTES: u64 = 1 << 42;

    fn pack(self) -> u64 {
        debug_assert!((self.device as usize) < Self::MAX_DEVICES);
        debug_assert!(self.offset.is_multiple_of(16) && self.len.is_multiple_of(16));
        debug_assert!(self.offset < Self::MAX_DEVICE_BYTES && self.len < 1 << 25);
        (self.device as u64) << 59 | (self.len as u64 >> 4) << 38 | self.offset >> 4
    }
    fn unpack(v: u64) -> Loc {
        Loc {
            device: (v >> 59) as u8,
            len: (((v >> 38) & ((1 << 21) - 1)) << 4) as u32,
            offset: (v & ((1 << 38) - 1)) << 4,
        }
    }
}

type Entry = [u8; ENTRY];

pub struct Index {
    shards: Vec<RwLock<Vec<Entry>>>,
    hasher: ahash::RandomState,
}

fn loc_of(e: &Entry) -> Loc {
    Loc::unpack(u64::from_le_bytes(e[REST..].try_into().expect("8 bytes")))
}

fn entry(rest: &[u8], loc: Loc) -> Entry {
    let mut e = [0u8; ENTRY];
    e[..REST].copy_from_slice(rest);
    e[REST..].copy_from_slice(&loc.pack().to_le_bytes());
    e
}

impl Default for Index {
    fn default() -> Self {
        Index {
            shards: (0..SHARDS).map(|_| RwLock::new(Vec::new())).collect(),
            hasher: ahash::RandomState::new(),
        }
    }
}

impl Index {
    fn split<'k>(&self, key: &'k [u8; 32]) -> (usize, &'k [u8]) {
        let rest = &key[2..];
        let mix = self.hasher.hash_one(rest) as u16;
        ((u16::from_be_bytes([key[0], key[1]]) ^ mix) as usize, rest)
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<Loc> {
        let (s, rest) = self.split(key);
        let v = self.shards[s].read();
        v.binary_search_by(|e| e[..REST].cmp(rest))
            .ok()
            .map(|i| loc_of(&v[i]))
    }

    /// Sets the location; returns the previous one.
    pub fn insert(&self, key: &[u8; 32], loc: Loc) -> Option<Loc> {
        let (s, rest) = self.split(key);
        let mut v = self.shards[s].write();
        match v.binary_search_by(|e| e[..REST].cmp(rest)) {
            Ok(i) => {
                let old = loc_of(&v[i]);
                v[i] = entry(rest, loc);
                Some(old)
            }
            Err(i) => {
                if v.len() == v.capacity() {
                    let grow = (v.len() / 4).max(2);
                    v.reserve_exact(grow);
                }
                v.insert(i, entry(rest, loc));
                None
            }
        }
    }

    /// Moves `key` from `from` to `to` only if it still lies at `from` (compaction loses the
    /// race to a newer write).
    pub fn relocate(&self, key: &[u8; 32], from: Loc, to: Loc) -> bool {
        let (s, rest) = self.split(key);
        let mut v = self.shards[s].write();
        match v.binary_search_by(|e| e[..REST].cmp(rest)) {
            Ok(i) if loc_of(&v[i]) == from => {
                v[i] = entry(rest, to);
                true
            }
            _ => false,
        }
    }

    pub fn remove(&self, key: &[u8; 32]) -> Option<Loc> {
        let (s, rest) = self.split(key);
        let mut v = self.shards[s].write();
        let i = v.binary_search_by(|e| e[..REST].cmp(rest)).ok()?;
        Some(loc_of(&v.remove(i)))
    }

    /// Every key, a shard at a time (shards hold a few entries each, far below
    /// [`crate::interface::KEY_CHUNK`]): each shard's keys are rebuilt (the two bytes not
    /// stored are the shard number XOR the keyed hash of the rest) and copied out under its
    /// read lock, then `visit` runs with no lock held, so it may read the store.
    pub fn for_each_key(&self, visit: &mut dyn FnMut(&[solana_pubkey::Pubkey])) {
        let mut keys = Vec::new();
        for (s, shard) in self.shards.iter().enumerate() {
            keys.clear();
            {
                let v = shard.read();
                keys.extend(v.iter().map(|e| {
                    let rest = &e[..REST];
                    let mix = self.hasher.hash_one(rest) as u16;
                    let mut k = [0u8; 32];
                    k[..2].copy_from_slice(&((s as u16) ^ mix).to_be_bytes());
                    k[2..].copy_from_slice(rest);
                    solana_pubkey::Pubkey::new_from_array(k)
                }));
            }
            if !keys.is_empty() {
                visit(&keys);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Bytes the index holds: entry capacity, the shard table, and the allocator's per-block
    /// header (16 bytes with glibc malloc) for every shard that has an allocation.
    pub fn memory_bytes(&self) -> usize {
        let table = self.shards.len() * std::mem::size_of::<RwLock<Vec<Entry>>>();
        let entries: usize = self
            .shards
            .iter()
            .map(|s| {
                let c = s.read().capacity();
                if c == 0 { 0 } else { c * ENTRY + 16 }
            })
            .sum();
        table + entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;

    #[test]
    fn loc_packing_round_trips() {
        for loc in [
            Loc {
                device: 0,
                offset: 0,
                len: 112,
            },
            Loc {
                device: 31,
                offset: Loc::MAX_DEVICE_BYTES - 16,
                len: (10 << 20) + 112,
            },
            Loc {
                device: 5,
                offset: 4096 * 1234 + 272,
                len: 272,
            },
        ] {
            assert_eq!(Loc::unpack(loc.pack()), loc);
        }
    }

    #[test]
    fn sequential_keys_spread_over_the_shards() {
        let idx = Index::default();
        for i in 0..65_536u64 {
            let mut k = [0u8; 32];
            k[24..].copy_from_slice(&i.to_be_bytes());
            idx.insert(
                &k,
                Loc {
                    device: 0,
                    offset: i * 16,
                    len: 112,
                },
            );
        }
        let largest = idx.shards.iter().map(|s| s.read().len()).max().unwrap_or(0);
        assert!(
            largest < 16,
            "a shard holds {largest} of 65,536 sequential keys"
        );
    }

    #[test]
    fn behaves_like_a_map() {
        let idx = Index::default();
        let mut model = HashMap::new();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let keys: Vec<[u8; 32]> = (0..3000)
            .map(|i| {
                let mut k: [u8; 32] = rng.r#gen();
                // Many keys in the same shard too.
                if i % 3 == 0 {
                    k[0] = 1;
                    k[1] = 2;
                }
                k
            })
            .collect();
        for step in 0..20_000u64 {
            let k = keys[rng.gen_range(0..keys.len())];
            let loc = Loc {
                device: (step % 4) as u8,
                offset: step * 16,
                len: 272,
            };
            match rng.gen_range(0..4) {
                0 => assert_eq!(idx.remove(&k), model.remove(&k)),
                1 => {
                    let from = model.get(&k).copied().unwrap_or(loc);
                    let moved = idx.relocate(&k, from, loc);
                    assert_eq!(moved, model.contains_key(&k));
                    if moved {
                        model.insert(k, loc);
                    }
                }
                _ => assert_eq!(idx.insert(&k, loc), model.insert(k, loc)),
            }
            assert_eq!(idx.get(&k), model.get(&k).copied());
        }
        assert_eq!(idx.len(), model.len());
        let mut seen = std::collections::HashSet::new();
        idx.for_each_key(&mut |chunk| {
            for k in chunk {
                assert!(seen.insert(k.to_bytes()), "a key visited twice");
            }
        });
        let expected: std::collections::HashSet<[u8; 32]> = model.keys().copied().collect();
        assert_eq!(seen, expected, "for_each_key rebuilds every key exactly");
    }
}
