//! What `requestAirdrop` may give away: per request, per recipient per hour, and requests per
//! second over all callers. A faucet without these is free money for whoever asks fastest, and
//! each airdrop is a transaction the node must execute and commit.

use parking_lot::Mutex;
use solana_pubkey::Pubkey;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The window a recipient's total is counted over.
const WINDOW: Duration = Duration::from_secs(3600);
/// Recipients remembered at once (a table an attacker cannot grow past this: each entry is
/// ~56 bytes, so ~3.5 MiB at most). When it is full of recipients still inside their window,
/// new recipients are refused until entries expire.
pub const MAX_RECIPIENTS: usize = 65_536;

#[derive(Debug, Clone, Copy)]
pub struct FaucetLimits {
    pub per_request: u64,
    pub per_recipient_per_hour: u64,
    pub requests_per_second: u32,
}

pub struct Faucet {
    limits: FaucetLimits,
    state: Mutex<State>,
}

struct State {
    /// Token bucket over all requests: tokens, refilled at `requests_per_second`, holding at
    /// most one second's worth.
    tokens: f64,
    refilled: Instant,
    /// Lamports given to each recipient since its window opened.
    given: HashMap<Pubkey, (Instant, u64)>,
}

impl Faucet {
    pub fn new(limits: FaucetLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State {
                tokens: f64::from(limits.requests_per_second),
                refilled: Instant::now(),
                given: HashMap::new(),
            }),
        }
    }

    /// Take `lamports` for `to` from the allowance, or say why not. A granted request counts
    /// even if the transfer later fails (the caller asked; that is what is limited).
    pub fn grant(&self, to: &Pubkey, lamports: u64) -> Result<(), String> {
        self.grant_at(to, lamports, Instant::now())
    }

    fn grant_at(&self, to: &Pubkey, lamports: u64, now: Instant) -> Result<(), String> {
        let l = self.limits;
        if lamports == 0 || lamports > l.per_request {
            return Err(format!(
                "airdrop of {lamports} lamports refused: must be 1..={} per request",
                l.per_request
            ));
        }
        let mut s = self.state.lock();
        let rate = f64::from(l.requests_per_second);
        let elapsed = now.saturating_duration_since(s.refilled).as_secs_f64();
        s.tokens = (s.tokens + elapsed * rate).min(rate);
        s.refilled = now;
        if s.tokens < 1.0 {
            return Err(format!(
                "airdrop refused: the faucet answers at most {} requests per second; retry later",
                l.requests_per_second
            ));
        }
        let used = match s.given.get(to) {
            Some(&(opened, sum)) if now.saturating_duration_since(opened) < WINDOW => sum,
            _ => 0,
        };
        if used.saturating_add(lamports) > l.per_recipient_per_hour {
            return Err(format!(
                "airdrop refused: {to} may receive at most {} lamports per hour ({used} so far)",
                l.per_recipient_per_hour
            ));
        }
        if !s.given.contains_key(to) && s.given.len() >= MAX_RECIPIENTS {
            s.given
                .retain(|_, (opened, _)| now.saturating_duration_since(*opened) < WINDOW);
            if s.given.len() >= MAX_RECIPIENTS {
                return Err("airdrop refused: too many recipients this hour; retry later".into());
            }
        }
        s.tokens -= 1.0;
        let entry = s.given.entry(*to).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += lamports;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faucet(rps: u32) -> Faucet {
        Faucet::new(FaucetLimits {
            per_request: 10,
            per_recipient_per_hour: 25,
            requests_per_second: rps,
        })
    }

    #[test]
    fn per_request_and_per_recipient_caps() {
        let f = faucet(1000);
        let (a, b) = (Pubkey::new_unique(), Pubkey::new_unique());
        let t = Instant::now();
        assert!(f.grant_at(&a, 0, t).is_err());
        assert!(f.grant_at(&a, 11, t).is_err());
        f.grant_at(&a, 10, t).unwrap();
        f.grant_at(&a, 10, t).unwrap();
        let e = f.grant_at(&a, 10, t).unwrap_err();
        assert!(e.contains("per hour"), "{e}");
        f.grant_at(&a, 5, t).unwrap(); // exactly 25
        f.grant_at(&b, 10, t).unwrap(); // another recipient has its own allowance
        // A new window opens after an hour.
        f.grant_at(&a, 10, t + WINDOW).unwrap();
    }

    #[test]
    fn requests_per_second_over_all_callers() {
        let f = faucet(5);
        let t = Instant::now();
        for _ in 0..5 {
            f.grant_at(&Pubkey::new_unique(), 1, t).unwrap();
        }
        let e = f.grant_at(&Pubkey::new_unique(), 1, t).unwrap_err();
        assert!(e.contains("per second"), "{e}");
        f.grant_at(&Pubkey::new_unique(), 1, t + Duration::from_millis(250))
            .unwrap();
    }

    #[test]
    fn the_recipient_table_is_bounded() {
        let f = faucet(u32::MAX);
        let t = Instant::now();
        for i in 0..MAX_RECIPIENTS as u64 {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&i.to_le_bytes());
            f.grant_at(&Pubkey::new_from_array(k), 1, t).unwrap();
        }
        let e = f.grant_at(&Pubkey::new_unique(), 1, t).unwrap_err();
        assert!(e.contains("too many recipients"), "{e}");
        // Expired entries make room.
        f.grant_at(&Pubkey::new_unique(), 1, t + WINDOW).unwrap();
        assert!(f.state.lock().given.len() <= MAX_RECIPIENTS);
    }
}
