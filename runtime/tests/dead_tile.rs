//! A dead tile stops the node: when the store is poisoned (an fdatasync failed, so nothing
//! more can become durable) the commit tile ends, the node's health records why, and the bank
//! stops producing slots instead of growing an overlay of writes that can never be committed.

use dataplane::PacketPool;
use runtime::genesis::GenesisConfig;
use runtime::{Runtime, RuntimeConfig, RuntimeSetup};
use solana_pubkey::Pubkey;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::array::device::OpKind;
use storage::array::fault::{Fault, FaultAction, FaultPlan};
use storage::{ArrayConfig, ArrayStore};
use telemetry::Health;

#[test]
fn a_failed_fdatasync_kills_the_commit_tile_fails_the_node_and_stops_the_bank() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(FaultPlan::default());
    let mut cfg = ArrayConfig::single_file(dir.path(), 64 << 20);
    cfg.segment_bytes = 4 << 20;
    cfg.cache_bytes = 16 << 20;
    cfg.faults = vec![Some(plan.clone())];
    let store = Arc::new(ArrayStore::open(cfg).unwrap());
    let health = Health::new();
    let _scope = health.enter();
    let (_tx, rx) = crossbeam_channel::bounded(16);
    let setup = RuntimeSetup {
        runtime: RuntimeConfig {
            slot_ms: 10,
            workers: 1,
            worker_cores: vec![],
            batch_max: 16,
            admit_burst: 64,
            sequencer_capacity: 1_000,
            status_retention_slots: 512,
            status_retention_bytes: 256 << 20,
            commit_queue_slots: 4,
            // Solana's 150 slots, as these tests were written for.
            blockhash_validity_ms: 150 * 10,
        },
        scheduler: Default::default(),
        worker_numa: vec![],
        account_index: Default::default(),
        preconf: Default::default(),
        preconf_delivery: None,
        routes: None,
        tuner: Default::default(),
        cluster: None,
        genesis: GenesisConfig {
            faucet: None,
            fee_collector: Pubkey::new_unique(),
            accounts: vec![],
        },
    };
    let rt = Runtime::start(
        &setup,
        store,
        PacketPool::new(64),
        rx,
        telemetry::SharedRegion::private(),
    )
    .unwrap();
    assert!(
        Arc::ptr_eq(&rt.health, &health),
        "the runtime reports to its caller's health"
    );
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait("slots become durable", &|| rt.chain.durable_slot() >= 3);
    assert!(health.is_ok());

    plan.arm(Fault {
        op: OpKind::Sync,
        skip: 0,
        action: FaultAction::Errno(libc::EIO),
    });
    wait("the failure is reported", &|| !health.is_ok());
    let why = health.failure().unwrap().to_string();
    assert!(why.starts_with("gc-commit "), "{why}");

    // The bank stops: no slot is processed after the commit tile is gone (allow the one it
    // was closing), so no uncommitted writes pile up.
    let durable = rt.chain.durable_slot();
    std::thread::sleep(Duration::from_millis(200));
    let processed = rt.chain.processed_slot();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rt.chain.processed_slot(),
        processed,
        "the bank kept producing slots"
    );
    assert!(processed <= durable + setup.runtime.commit_queue_slots as u64 + 2);
    assert_eq!(
        rt.chain.durable_slot(),
        durable,
        "nothing became durable after the fault"
    );

    // Stopping what is left does not hang.
    rt.shutdown();
}
