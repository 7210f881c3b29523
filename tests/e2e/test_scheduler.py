"""The scheduler as an operator meets it: `gigacompute topology`, the plain lock scheduler
kept selectable by config, app weights and rules validated, per-app metrics."""

import re
import subprocess

from solana.rpc.api import Client
from solders.keypair import Keypair

from conftest import BINARY, Node
from test_appliance import SOL, airdrop, balance, send_udp, signed_transfer, wait_finalized


def run(*args):
    return subprocess.run([str(BINARY), *args], capture_output=True, text=True, timeout=60)


def test_topology_shows_the_machine_and_the_placement(tmp_path):
    r = run("topology")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("machine: ")
    assert "worker 0: cpu " in out and "worker 1: cpu " in out
    assert "storage I/O threads: unpinned" in out
    # The wiring: every tile and link, declared once (appliance/src/wiring.rs).
    assert "| verify | 2 (`verify.tiles`) | dataplane | tile lifecycle |" in out
    assert "| verify_bank | 1 | 16384 (`verify.bank_ring_depth`) | block (backpressure) |" in out
    tables = run("topology", "--tables")
    assert tables.returncode == 0 and not tables.stdout.lstrip().startswith("machine")
    assert "| bank_commit | 1 | 8 (`runtime.commit_queue_slots`)" in tables.stdout
    cfg = tmp_path / "c.toml"
    cfg.write_text("[runtime]\nworker_cores = [0, 1]\n[storage]\nio_cores = [1]\n")
    r = run("topology", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    # Worker 1 runs on the I/O thread's CPU: the islands prefer it.
    assert "storage I/O threads: cpu 1 " in r.stdout
    assert "island lanes prefer workers [1, 0]" in r.stdout


def test_bad_scheduler_config_is_refused_with_the_reason(tmp_path):
    for bad, why in [
        ('[scheduler]\nkind = "fifo"\n', "kind"),
        ("[scheduler]\nisland_enter = 0.1\nisland_exit = 0.5\n", "island_exit"),
        ('[scheduler.app_weights]\nnot-a-key = 2\n', "not a valid pubkey"),
    ]:
        cfg = tmp_path / "bad.toml"
        cfg.write_text(bad)
        r = run("topology", "--config", str(cfg))
        assert r.returncode != 0
        assert why in r.stderr, r.stderr


def test_plain_lock_scheduler_is_selectable(tmp_path):
    n = Node(tmp_path, '[scheduler]\nkind = "lock"\n')
    n.start()
    try:
        c = Client(n.url)
        alice, bob = Keypair(), Keypair()
        airdrop(c, alice.pubkey(), SOL)
        txs = [signed_transfer(c, alice, bob.pubkey(), 1_000_000 + i) for i in range(5)]
        for t in txs:
            send_udp(n, bytes(t))
        for t in txs:
            wait_finalized(c, t.signatures[0])
        assert balance(c, bob.pubkey()) == sum(1_000_000 + i for i in range(5))
        log = re.sub(r"\x1b\[[0-9;]*m", "", (tmp_path / "node.log").read_text(errors="replace"))
        assert "scheduler=Lock" in log
    finally:
        n.stop()
