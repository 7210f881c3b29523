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
    assert value(after, "gigacompute_app_transactions_total", app=system) - value(
        before, "gigacompute_app_transactions_total", app=system) == 7
    # The hotspot scheduler measured each one's admission-to-dispatch delay.
    assert value(after, "gigacompute_app_queue_delay_observations_total", app=system) - value(
        before, "gigacompute_app_queue_delay_observations_total", app=system) == 7
    assert ("gigacompute_islands_formed_total", ()) in after
    assert ("gigacompute_reexecutions_total", ()) in after
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


REPO = __import__("pathlib").Path(__file__).resolve().parents[2]
IS_ROOT = __import__("os").geteuid() == 0


def test_grafana_dashboard_queries_only_exported_metrics(node):
    import json
    import re

    names = {n for (n, _) in scrape(node)}
    # Families declared even before they have series (per-app metrics before any traffic).
    text = urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_port}/metrics").read().decode()
    names |= set(re.findall(r"^# TYPE (\S+)", text, re.M))
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}
    dash = json.loads((REPO / "etc/grafana/gigacompute-dashboard.json").read_text())
    assert len(dash["panels"]) >= 10
    for p in dash["panels"]:
        for t in p["targets"]:
            for m in re.findall(r"gigacompute_[a-z0-9_]+", t["expr"]):
                assert m in names or m in families, f"panel {p['title']!r} queries unknown {m}"


def configure(*args, env=None):
    import os

    e = dict(os.environ, **(env or {}))
    return subprocess.run([str(BINARY), "configure", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=e)


def test_configure_check_reports_every_stage_read_only(tmp_path):
    state = tmp_path / "state"
    r = configure("check", env={"GIGACOMPUTE_STATE_DIR": str(state)})
    lines = r.stdout.splitlines()
    stages = {l.split()[0] for l in lines if l and not l.startswith(" ")}
    assert stages == {"hugepages", "cpu", "nic", "limits", "sysctl", "storage"}, r.stdout
    statuses = [l.split()[1] for l in lines if l and not l.startswith(" ")]
    assert set(statuses) <= {"PASS", "WARN", "FAIL"}
    assert r.returncode == (1 if "FAIL" in statuses else 0)
    # Every non-PASS line is followed by its fix.
    for i, l in enumerate(lines):
        if l and not l.startswith(" ") and l.split()[1] != "PASS":
            assert lines[i + 1].strip().startswith("fix:"), l
    assert not state.exists(), "check must not write"


def test_configure_nic_rejects_a_foreign_address(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[net]\nbind = "192.0.2.77:8003"\n')  # TEST-NET-1: on no host
    r = configure("check", "nic", "--config", str(cfg))
    assert r.returncode == 1
    assert "FAIL" in r.stdout and "not an address of this host" in r.stdout and "fix:" in r.stdout


def test_bare_metal_example_config_is_valid():
    r = configure("check", "cpu", "--config", str(REPO / "etc/gigacompute.bare-metal.toml"))
    assert r.returncode == 0, r.stderr
    assert "worker cores 8,9,10,11" in r.stdout


@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_configure_sysctl_init_and_fini_restore(tmp_path):
    env = {"GIGACOMPUTE_STATE_DIR": str(tmp_path / "state")}
    key = "/proc/sys/net/core/netdev_max_backlog"
    before = open(key).read().strip()
    try:
        assert configure("init", "sysctl", env=env).returncode == 0
        r = configure("check", "sysctl", env=env)
        assert "netdev_max_backlog" in r.stdout and "PASS  net.core.netdev_max_backlog" in r.stdout, r.stdout
        assert configure("fini", "sysctl", env=env).returncode == 0
        assert open(key).read().strip() == before
    finally:
        open(key, "w").write(before)


@pytest.mark.skipif(not IS_ROOT, reason="needs root (sysfs hugepages, mount)")
def test_hugepages_script_on_a_scratch_mount(tmp_path):
    import os

    conf = tmp_path / "hugepages.conf"
    mnt = tmp_path / "hp"
    conf.write_text(f"PAGES_2M_PER_NODE=2\nNODES=all\nMOUNT_2M={mnt}\nOWNER=root\nGROUP=root\nMODE=1770\n")
    env = dict(os.environ, HUGEPAGES_CONF=str(conf), HUGEPAGES_STATE=str(tmp_path / "hp.state"))
    script = str(REPO / "scripts/hugepages.sh")
    run = lambda *a: subprocess.run([script, *a], capture_output=True, text=True, env=env, timeout=60)
    total = "/proc/sys/vm/nr_hugepages"
    before = open(total).read().strip()
    try:
        r = run("check")
        if r.returncode == 0:
            pytest.skip("host already has this reservation")
        assert "FAIL" in r.stdout and "hugetlbfs" in r.stdout
        assert run("init").returncode == 0
        assert run("init").returncode == 0, "init must be idempotent"
        r = run("check")
        assert r.returncode == 0, r.stdout
        assert any(str(mnt) in l and "hugetlbfs" in l for l in open("/proc/mounts"))
        r2 = configure("check", "hugepages", env={"HUGEPAGES_CONF": str(conf), "HUGEPAGES_STATE": str(tmp_path / "hp.state")})
        assert "PASS" in r2.stdout, r2.stdout
        assert run("fini").returncode == 0
        assert run("check").returncode == 1
        assert open(total).read().strip() == before
    finally:
        subprocess.run([script, "fini"], capture_output=True, env=env)
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_configure_check_storage_devices(tmp_path):
    blank = tmp_path / "blank.dev"
    blank.write_bytes(b"\0" * (256 << 20))
    foreign = tmp_path / "foreign.dev"
    foreign.write_bytes(b"ext4" * (64 << 20))
    cfg = tmp_path / "gc.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[storage]\ndevices = ["{blank}", "{foreign}", "{tmp_path / "new.dev"}", "/dev/gc-no-such-disk"]\n'
        f"device_bytes = {256 << 20}\n"
    )
    r = configure("check", "storage", "--config", str(cfg))
    out = r.stdout
    assert r.returncode == 1, out
    lines = [l for l in out.splitlines() if l.startswith("storage")]
    by_dev = {d: next(l for l in lines if d in l) for d in ["#0", "#1", "#2", "#3"]}
    # On tmpfs O_DIRECT is refused: a WARN instead of the label check.
    assert " PASS " in by_dev["#0"] or " WARN " in by_dev["#0"], out
    assert "blank" in by_dev["#0"] or "O_DIRECT" in by_dev["#0"], out
    assert " FAIL " in by_dev["#1"] or "O_DIRECT" in by_dev["#1"], out
    assert " PASS " in by_dev["#2"] and "will be created" in by_dev["#2"], out
    assert " FAIL " in by_dev["#3"] and "no such block device" in by_dev["#3"], out
    assert "io_uring" in out


def test_a_second_node_on_the_same_data_dir_is_refused(node):
    """Two appliances on one accounts store would corrupt it: the second exits non-zero,
    naming the first's pid, and the first keeps serving (its metrics region is untouched)."""
    second = subprocess.run(
        [str(BINARY), "run", "--config", str(node.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    out = second.stdout + second.stderr
    assert "in use by another gigacompute" in out, out
    assert str(node.proc.pid) in out, out
    with urllib.request.urlopen(f"{node.url}/health", timeout=10) as r:
        assert r.read() == b"ok"
    frames = subprocess.run(
        [str(BINARY), "monitor", "--config", str(node.config), "--frames", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert frames.returncode == 0, frames.stdout + frames.stderr
