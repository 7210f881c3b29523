//! Signed pre-confirmations (dataplane::preconf), as a client receives them from anyone on
//! the network. Any byte string must verify or be refused without panicking, and a refused
//! one must never decode into a different promise that verifies; bytes that decode as a
//! body re-encode to the same bytes; a batch signed from the input's bodies verifies member
//! by member, and a flipped byte of any member never does.
#![no_main]
use dataplane::preconf::{BatchSigner, Body, MAX_BATCH, MAX_BODY, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Whatever arrives.
    if let Ok(v) = verify(data, None) {
        let (body, n) = Body::decode(data).expect("a verified datagram decodes");
        assert_eq!(body, v.body);
        assert!(n < data.len());
    }
    // A body read from the input round-trips.
    if let Ok((body, n)) = Body::decode(data) {
        let mut out = [0u8; MAX_BODY];
        let m = body.encode(&mut out);
        assert_eq!(m, n);
        // The probability is quantised on the wire: the bytes are the same.
        assert_eq!(&out[..m], &data[..n]);
    }
    // Bodies cut from the input, signed as one batch.
    let bodies: Vec<Body> = data
        .chunks(MAX_BODY)
        .take(MAX_BATCH)
        .filter_map(|c| Body::decode(c).ok().map(|(b, _)| b))
        .collect();
    if bodies.is_empty() {
        return;
    }
    let mut signer = BatchSigner::new(&[7; 32]);
    let identity = signer.identity();
    let refs: Vec<&Body> = bodies.iter().collect();
    let flip = data.first().copied().unwrap_or(0) as usize;
    signer.sign(&refs, |i, datagram| {
        let v = verify(datagram, Some(&identity)).expect("a signed member verifies");
        assert_eq!(v.body.signature, bodies[i].signature);
        let mut bad = datagram.to_vec();
        let at = flip % bad.len();
        bad[at] ^= 1;
        assert!(
            verify(&bad, Some(&identity)).is_err(),
            "a flipped byte at {at} verified"
        );
    });
});
