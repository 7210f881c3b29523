//! A node with a dead tile says so and takes no more work: `getHealth` (and `/health`, which
//! answers from the same call) report the tile, `sendTransaction` and `requestAirdrop` are
//! refused. And one data directory serves one node.

use appliance::{Config, Node};
use serde_json::json;
use solana_keypair::Keypair;
use solana_signer::Signer;
use std::sync::Arc;
use telemetry::Health;

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    c.net.bind = "127.0.0.1:0".parse().unwrap();
    c.storage.device_bytes = 256 << 20;
    c
}

#[test]
fn a_failed_tile_makes_the_node_unhealthy_and_refuse_work() {
    let dir = tempfile::tempdir().unwrap();
    let health = Health::new();
    let _scope = health.enter();
    let node = Node::start(config(dir.path())).unwrap();
    assert!(Arc::ptr_eq(&node.health, &health));

    let second = Node::start(config(dir.path()))
        .err()
        .expect("second node refused");
    assert!(
        second.to_string().contains("in use by another gigacompute"),
        "{second:#}"
    );

    let rpc = rpc::Rpc::for_node(&node, health.clone());
    assert_eq!(rpc.call("getHealth", &[]).unwrap(), json!("ok"));

    health.fail("gc-commit", "stopped while the node was running");
    let e = rpc.call("getHealth", &[]).unwrap_err();
    assert_eq!(e.code, -32005);
    assert!(e.message.contains("gc-commit"), "{}", e.message);

    let to = Keypair::new().pubkey().to_string();
    let e = rpc
        .call("requestAirdrop", &[json!(to), json!(1000)])
        .unwrap_err();
    assert_eq!(e.code, -32005, "{}", e.message);
    let e = rpc.call("sendTransaction", &[json!("AQ==")]).unwrap_err();
    assert_eq!(e.code, -32005, "{}", e.message);
    node.shutdown();
}
