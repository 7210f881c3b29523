//! The newest signed pre-confirmation of recent transactions, by signature, for the RPC
//! (`getSignaturePreconfirmations`, `sendTransaction` with `preconfirm`). A fixed table:
//! each slot holds one datagram and is overwritten by whatever hashes there next, so memory
//! is bounded and old entries fade; a reader checks the signature it finds.

use dataplane::preconf::MAX_DATAGRAM;
use parking_lot::Mutex;

/// One datagram; the transaction's signature is its bytes 8..72.
struct Entry {
    len: u16,
    bytes: [u8; MAX_DATAGRAM],
}

pub struct Board {
    slots: Box<[Mutex<Entry>]>,
    hasher: ahash::RandomState,
}

impl Board {
    /// A board of `slots` entries (rounded up to a power of two, at least 1).
    pub fn new(slots: usize) -> Self {
        let n = slots.max(1).next_power_of_two();
        Self {
            slots: (0..n)
                .map(|_| {
                    Mutex::new(Entry {
                        len: 0,
                        bytes: [0; MAX_DATAGRAM],
                    })
                })
                .collect(),
            // Random keys: a sender cannot grind signatures that evict a chosen entry.
            hasher: ahash::RandomState::new(),
        }
    }

    fn slot(&self, signature: &[u8; 64]) -> &Mutex<Entry> {
        let i = self.hasher.hash_one(signature) as usize & (self.slots.len() - 1);
        &self.slots[i]
    }

    /// Keeps `datagram` (a pre-confirmation: `signature` is its bytes 8..72) as the newest
    /// of `signature`; anything else is ignored.
    pub fn post(&self, signature: &[u8; 64], datagram: &[u8]) {
        if datagram.len() < 72 || datagram.len() > MAX_DATAGRAM || datagram[8..72] != signature[..]
        {
            return;
        }
        let n = datagram.len();
        let mut e = self.slot(signature).lock();
        e.len = n as u16;
        e.bytes[..n].copy_from_slice(&datagram[..n]);
    }

    /// The newest pre-confirmation of `signature`, if still held.
    pub fn get(&self, signature: &[u8; 64]) -> Option<Vec<u8>> {
        let e = self.slot(signature).lock();
        (e.len > 0 && e.bytes[8..72] == signature[..]).then(|| e.bytes[..e.len as usize].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram-shaped buffer about `signature`, `tag` at byte 0 and `len` long.
    fn datagram(signature: u8, tag: u8, len: usize) -> Vec<u8> {
        let mut d = vec![tag; len];
        d[8..72].fill(signature);
        d
    }

    #[test]
    fn newest_wins_and_others_are_not_confused() {
        let b = Board::new(4);
        assert_eq!(b.get(&[1; 64]), None);
        b.post(&[1; 64], &datagram(1, 10, 200));
        b.post(&[1; 64], &datagram(1, 11, 300));
        assert_eq!(b.get(&[1; 64]), Some(datagram(1, 11, 300)));
        for i in 2..100u8 {
            b.post(&[i; 64], &datagram(i, i, 100));
        }
        // Overwritten slots answer nothing rather than another signature's entry.
        for i in 1..100u8 {
            if let Some(bytes) = b.get(&[i; 64]) {
                assert_eq!(&bytes[8..72], &[i; 64][..]);
            }
        }
        // Not about the signature, too short or too long: ignored.
        b.post(&[200; 64], &datagram(201, 0, 100));
        b.post(&[200; 64], &[0; 10]);
        b.post(&[200; 64], &datagram(200, 0, MAX_DATAGRAM + 1));
        assert_eq!(b.get(&[200; 64]), None);
    }
}
