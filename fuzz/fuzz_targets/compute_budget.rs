//! runtime/src/compute_budget.rs (compiled from its source, see build.rs) on whatever the
//! transaction parser accepts. Never panics; accepted budgets stay within Agave's bounds.
#![no_main]
use gigacompute_fuzz::compute_budget;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = dataplane::parse_transaction(data) else {
        return;
    };
    if let Ok(b) = compute_budget::parse(&d, data) {
        assert!(b.limits.compute_unit_limit <= 1_400_000);
        assert!((32 * 1024..=256 * 1024).contains(&b.limits.updated_heap_bytes));
        assert_eq!(b.limits.updated_heap_bytes % 1024, 0);
        assert!(b.limits.loaded_accounts_bytes.get() <= 64 * 1024 * 1024);
        assert_eq!(b.signature_fee, u64::from(d.num_signatures) * 5_000);
        let _ = b.total_fee();
        let _ = b.priority();
    }
});
