//! What the bank knows about a transaction when it admits it, as the model's input: each
//! quantity binned or one-hot, so an input activates a fixed handful of weight slots
//! (`Active`) and a prediction is a few table loads. The bins are coarse on purpose: a bin
//! must see outcomes often enough to learn from, and the model pools across bins through
//! the bias and the shared slots.

use super::model::Active;

/// The admission-time facts one prediction uses.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Context {
    /// The top-level program (the app), and the first bytes of its instruction data (the
    /// instruction's discriminator for Anchor and SPL programs).
    pub program: [u8; 32],
    pub discriminator: u64,
    /// Top-level instructions and writable accounts: the transaction's shape.
    pub instructions: u8,
    pub writable: u8,
    /// (payer balance − what its queued transactions may take − what this one may take),
    /// in units of this transaction's maximum fee.
    pub payer_headroom: f64,
    /// Fee per requested compute unit ×10⁶ (the sequencer's key).
    pub priority: u64,
    /// Queued transactions and the sequencer's capacity.
    pub queued: usize,
    pub capacity: usize,
    /// Transactions queued in the lane this one joins (an island's lane is its hot account's
    /// queue).
    pub lane_len: usize,
    /// Slots until its blockhash expires, counted from the open slot.
    pub blockhash_slots_left: u64,
    /// Slots it is expected to wait before it executes.
    pub expected_wait_slots: u64,
}

/// Feature groups: a slot is a hash of (group, value).
mod group {
    pub const BIAS: u16 = 0;
    pub const PROGRAM: u16 = 1;
    pub const INSTRUCTION: u16 = 2;
    pub const HEADROOM: u16 = 3;
    pub const PROGRAM_HEADROOM: u16 = 4;
    pub const FULLNESS: u16 = 5;
    pub const PRIORITY: u16 = 6;
    pub const PRIORITY_FULLNESS: u16 = 7;
    pub const BLOCKHASH_LEFT: u16 = 8;
    pub const BLOCKHASH_LEFT_WAIT: u16 = 9;
    pub const LANE_DEPTH: u16 = 10;
    pub const WAIT: u16 = 11;
    pub const PROGRAM_LANE_DEPTH: u16 = 12;
    pub const SHAPE: u16 = 13;
}

/// ⌈log2(x + 1)⌉, capped: 0 for 0, 1 for 1, 2 for 2–3, 3 for 4–7, …
pub fn log2_bin(x: u64, cap: u64) -> u64 {
    u64::from(64 - x.leading_zeros()).min(cap)
}

/// Payer headroom in maximum fees: below zero (it cannot pay for everything queued), under
/// one, under two, under ten, under a hundred, more.
pub fn headroom_bin(h: f64) -> u64 {
    match h {
        h if h.is_nan() || h < 0.0 => 0,
        h if h < 1.0 => 1,
        h if h < 2.0 => 2,
        h if h < 10.0 => 3,
        h if h < 100.0 => 4,
        _ => 5,
    }
}

/// Eighths of the sequencer's capacity in use (0–8).
pub fn fullness_bin(queued: usize, capacity: usize) -> u64 {
    if capacity == 0 {
        return 8;
    }
    ((queued.min(capacity) * 8) / capacity) as u64
}

fn key64(bytes: &[u8; 32]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
        ^ u64::from_le_bytes(bytes[8..16].try_into().unwrap()).rotate_left(17)
        ^ u64::from_le_bytes(bytes[16..24].try_into().unwrap()).rotate_left(31)
        ^ u64::from_le_bytes(bytes[24..32].try_into().unwrap()).rotate_left(47)
}

/// The slots `c` activates (14).
pub fn active(c: &Context) -> Active {
    let program = key64(&c.program);
    let headroom = headroom_bin(c.payer_headroom);
    let fullness = fullness_bin(c.queued, c.capacity);
    let priority = log2_bin(c.priority, 63);
    let left = log2_bin(c.blockhash_slots_left, 8);
    let wait = log2_bin(c.expected_wait_slots, 6);
    let lane = log2_bin(c.lane_len as u64, 16);
    let mut a = Active::default();
    a.push(group::BIAS, 0);
    a.push(group::PROGRAM, program);
    a.push(
        group::INSTRUCTION,
        program ^ c.discriminator.rotate_left(29),
    );
    a.push(group::HEADROOM, headroom);
    a.push(group::PROGRAM_HEADROOM, program ^ headroom);
    a.push(group::FULLNESS, fullness);
    a.push(group::PRIORITY, priority);
    a.push(group::PRIORITY_FULLNESS, priority << 8 | fullness);
    a.push(group::BLOCKHASH_LEFT, left);
    a.push(group::BLOCKHASH_LEFT_WAIT, left << 8 | wait);
    a.push(group::LANE_DEPTH, lane);
    a.push(group::WAIT, wait);
    a.push(group::PROGRAM_LANE_DEPTH, program ^ lane);
    a.push(
        group::SHAPE,
        u64::from(c.instructions.min(16)) << 8 | u64::from(c.writable.min(32)),
    );
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_have_the_documented_edges() {
        assert_eq!(
            [0, 1, 2, 3, 4, 7, 8, 1 << 40].map(|x| log2_bin(x, 63)),
            [0, 1, 2, 2, 3, 3, 4, 41]
        );
        assert_eq!(log2_bin(u64::MAX, 8), 8);
        assert_eq!(
            [
                -5.0,
                f64::NAN,
                0.0,
                0.99,
                1.0,
                9.9,
                10.0,
                99.0,
                100.0,
                f64::INFINITY
            ]
            .map(headroom_bin),
            [0, 0, 1, 1, 2, 3, 4, 4, 5, 5]
        );
        assert_eq!(fullness_bin(0, 100), 0);
        assert_eq!(fullness_bin(99, 100), 7);
        assert_eq!(fullness_bin(100, 100), 8);
        assert_eq!(fullness_bin(500, 100), 8);
        assert_eq!(fullness_bin(1, 0), 8);
    }

    #[test]
    fn every_context_activates_fourteen_slots_that_follow_its_facts() {
        let c = Context {
            program: [3; 32],
            discriminator: 7,
            instructions: 2,
            writable: 3,
            payer_headroom: 50.0,
            priority: 1_000,
            queued: 10,
            capacity: 1_000,
            lane_len: 4,
            blockhash_slots_left: 100,
            expected_wait_slots: 1,
        };
        let a = active(&c);
        assert_eq!(a.as_slice().len(), 14);
        assert_eq!(a, active(&c), "deterministic");
        let poorer = active(&Context {
            payer_headroom: -1.0,
            ..c
        });
        let differ = |x: &Active, y: &Active| {
            x.as_slice()
                .iter()
                .zip(y.as_slice())
                .filter(|(p, q)| p != q)
                .count()
        };
        assert_eq!(differ(&a, &poorer), 2, "headroom and program × headroom");
        let other_program = active(&Context {
            program: [4; 32],
            ..c
        });
        assert_eq!(differ(&a, &other_program), 4);
    }
}
