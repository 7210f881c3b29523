//! The datagram a raw-port backend sends back to a transaction's sender when replies are on
//! (`[dpdk.port] replies`): whether the transaction got past ingest, and if not, why.
//!
//! Layout (all a client needs to decode it):
//!
//! | bytes  | field                                                             |
//! |--------|-------------------------------------------------------------------|
//! | 0      | 0 = accepted for verification, 1 = dropped                        |
//! | 1      | reason code: 0 accepted, 1..=13 [`ParseError`] + 1, 64 duplicate, 65 queue full, 66 no buffer |
//! | 2..66  | the first signature, zeros when the bytes did not parse           |
//! | 66..   | the reason in words, UTF-8                                        |
//!
//! "Accepted" means handed to signature verification; what happens after (a bad signature,
//! execution) is for RPC status queries, and for the pre-confirmations of a later protocol.

use crate::frame::Peer;
use crate::parse::ParseError;

/// A datagram for a raw port's RX lcore to send to `peer` from its own TX queue: the preconf
/// tile signs pre-confirmations but cannot write to the NIC, which each lcore owns.
#[derive(Debug, Clone)]
pub struct PortDatagram {
    pub peer: Peer,
    pub bytes: Vec<u8>,
}

pub const SIGNATURE_AT: usize = 2;
pub const TEXT_AT: usize = SIGNATURE_AT + 64;
/// Room a reply needs.
pub const MAX_REPLY: usize = TEXT_AT + 96;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Malformed(ParseError),
    /// The same bytes came in recently.
    Duplicate,
    /// The ring to signature verification was full.
    QueueFull,
    /// No descriptor (or reply buffer) was free.
    NoBuffer,
    /// The verify tiles were behind and this sender or fee payer had more than its share.
    OverShare,
    /// Scale-out: its accounts are split between cluster nodes, their owner is down, or this
    /// node is not serving (no confirmed lease).
    NotInCluster,
}

impl Verdict {
    pub fn code(self) -> u8 {
        match self {
            Verdict::Accepted => 0,
            Verdict::Malformed(e) => e as u8 + 1,
            Verdict::Duplicate => 64,
            Verdict::QueueFull => 65,
            Verdict::NoBuffer => 66,
            Verdict::OverShare => 67,
            Verdict::NotInCluster => 68,
        }
    }

    fn text(self) -> String {
        match self {
            Verdict::Accepted => "accepted".into(),
            Verdict::Malformed(e) => format!("dropped: {e}"),
            Verdict::Duplicate => "dropped: duplicate".into(),
            Verdict::QueueFull => "dropped: verification queue full".into(),
            Verdict::NoBuffer => "dropped: no free buffer".into(),
            Verdict::OverShare => "dropped: over this sender's share while busy".into(),
            Verdict::NotInCluster => {
                "dropped: split between cluster nodes, owner down, or node not serving".into()
            }
        }
    }
}

/// Write the reply into `out` (at least [`MAX_REPLY`] bytes); returns its length.
pub fn encode(v: Verdict, first_signature: Option<&[u8]>, out: &mut [u8]) -> usize {
    out[0] = u8::from(v != Verdict::Accepted);
    out[1] = v.code();
    let sig = &mut out[SIGNATURE_AT..TEXT_AT];
    match first_signature {
        Some(s) if s.len() == 64 => sig.copy_from_slice(s),
        _ => sig.fill(0),
    }
    let text = v.text();
    let n = text.len().min(out.len() - TEXT_AT);
    out[TEXT_AT..TEXT_AT + n].copy_from_slice(&text.as_bytes()[..n]);
    TEXT_AT + n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_carry_verdict_code_signature_and_words() {
        let mut out = [0u8; MAX_REPLY];
        let n = encode(Verdict::Accepted, Some(&[9u8; 64]), &mut out);
        assert_eq!(&out[..2], &[0, 0]);
        assert_eq!(&out[2..66], &[9u8; 64]);
        assert_eq!(&out[66..n], b"accepted");
        let n = encode(Verdict::Malformed(ParseError::Truncated), None, &mut out);
        assert_eq!(&out[..2], &[1, ParseError::Truncated as u8 + 1]);
        assert_eq!(&out[2..66], &[0u8; 64]);
        assert_eq!(
            std::str::from_utf8(&out[66..n]).unwrap(),
            "dropped: datagram ends inside a field"
        );
        for e in ParseError::ALL {
            assert!(encode(Verdict::Malformed(e), None, &mut out) <= MAX_REPLY);
        }
    }
}
