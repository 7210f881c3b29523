"""Operator surface: the Prometheus endpoint and `gigacompute monitor` against a running node."""

import shutil
import socket
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from solana.rpc.api import Client
from solders.keypair import Keypair

from conftest import BINARY
from test_appliance import SOL, airdrop, send_udp, signed_transfer, wait_finalized


def scrape(node):
    with urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_traffic(node):
    c = Client(node.url)
    before = scrape(node)
    alice = Keypair()
    airdrop(c, alice.pubkey(), SOL)
    txs = [signed_transfer(c, alice, Keypair().pubkey(), 1_000_000 + i) for i in range(6)]
    for t in txs:
        send_udp(node, bytes(t))
    send_udp(node, b"\x01\x02\x03")  # truncated: counted, dropped
    for t in txs:
        wait_finalized(c, t.signatures[0])
    time.sleep(0.2)
    after = scrape(node)

    assert value(after, "gigacompute_tile_in_total", tile="net") - value(before, "gigacompute_tile_in_total", tile="net") == 7
    assert value(after, "gigacompute_tile_drops_total", tile="net", reason="truncated") - value(
        before, "gigacompute_tile_drops_total", tile="net", reason="truncated") == 1
    assert value(after, "gigacompute_transactions_total", result="ok") - value(
        before, "gigacompute_transactions_total", result="ok") == 7  # 6 transfers + the airdrop
    for stage in ("verified", "executed", "committed"):
        delta = value(after, "gigacompute_transaction_latency_seconds_count", stage=stage) - value(
            before, "gigacompute_transaction_latency_seconds_count", stage=stage)
        assert delta == 7, stage
    system = "11111111111111111111111111111111"
    assert value(after, "gigacompute_app_transactions_total", program=system) - value(
        before, "gigacompute_app_transactions_total", program=system) == 7
    assert value(after, "gigacompute_slot", state="durable") > value(before, "gigacompute_slot", state="durable")
    assert value(after, "gigacompute_storage_commits_total") > value(before, "gigacompute_storage_commits_total")
    busy = sum(v for (n, _), v in after.items() if n == "gigacompute_tile_busy_seconds_total")
    assert busy > 0
    # Every tile is reported.
    tiles = {dict(l)["tile"] for (n, l) in after if n == "gigacompute_tile_in_total"}
    assert {"net", "verify-0", "verify-1", "bank", "worker-0", "worker-1", "commit", "rpc"} <= tiles


def test_metrics_endpoint_is_loopback_and_404s_elsewhere(node):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_port}/other", timeout=5)
    assert e.value.code == 404


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_monitor_renders_under_a_pty_and_quits_on_q(node):
    session = f"gcmon{node.rpc_port}"
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
         f"{BINARY} monitor --config {node.config}"],
        check=True,
    )
    try:
        screen = ""
        deadline = time.time() + 15
        while time.time() < deadline:
            time.sleep(0.5)
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True).stdout
            if "worker-1" in screen:
                break
        for tile in ("net", "verify-0", "verify-1", "bank", "worker-0", "worker-1", "commit", "rpc"):
            assert tile in screen, screen
        assert "slot processed" in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            if subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode != 0:
                break
            time.sleep(0.2)
        else:
            pytest.fail("monitor did not exit on q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_monitor_without_a_running_node_says_so(tmp_path):
    r = subprocess.run([str(BINARY), "monitor", "--data-dir", str(tmp_path), "--frames", "1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "no running appliance" in r.stderr
