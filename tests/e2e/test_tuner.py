"""The self-tuning runtime as an operator meets it: `[tuner]` learning while real clients'
transactions land exactly once, `gigacompute tuner status` from the live node and from the
files, the policy surviving a restart, a frozen tuner changing nothing, restart-only knobs
refused."""

import json
import subprocess
import time
import urllib.request

from solana.rpc.api import Client
from solders.keypair import Keypair

from conftest import BINARY, Node
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from test_appliance import SOL, airdrop, balance, blockhash, send_udp

# One worker, small batches and 20 ms slots (80 ms windows): a burst of transfers keeps its
# queue deep enough, for long enough, that the tuner's windows count as saturated and it
# explores, on a 2-core machine.
TUNER = """
[runtime]
slot_ms = 20
workers = 1
batch_max = 8
[tuner]
mode = "{mode}"
window_slots = 4
anchor_windows = 1
persist_every_windows = 2
seed = 11
"""


def run(*args):
    return subprocess.run([str(BINARY), *args], capture_output=True, text=True, timeout=60)


def status(node):
    r = run("tuner", "status", "--json", "--config", str(node.config))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def metric(node, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return line
    raise AssertionError(f"no {name} in the exposition")


def load(node, client, seconds=4.0, count=20_000):
    """Pre-signed transfers from fresh payers to one payee over UDP, as fast as this process
    sends, for at most `seconds`. Returns the payee, what it must hold (the sum of the
    transfers that landed: a datagram the kernel dropped never lands; none lands twice) and
    how many were sent."""
    payers = [Keypair() for _ in range(8)]
    for p in payers:
        airdrop(client, p.pubkey(), 10 * SOL)
    payee = Keypair().pubkey()
    bh = blockhash(client)

    def tx(i):
        # Above the rent-exempt minimum, so the first transfer creates the payee.
        ix = transfer(TransferParams(from_pubkey=payers[i % 8].pubkey(), to_pubkey=payee, lamports=1_000_000 + i))
        return Transaction([payers[i % 8]], Message([ix], payers[i % 8].pubkey()), bh)

    txs = [tx(i) for i in range(count)]
    end = time.time() + seconds
    sent = []
    for i, t in enumerate(txs):
        if time.time() >= end:
            break
        send_udp(node, bytes(t))
        sent.append((t.signatures[0], 1_000_000 + i))
    # Settled: the balance stops moving once every queued transfer ran.
    last, still = None, 0
    deadline = time.time() + 60
    while still < 5 and time.time() < deadline:
        b = balance(client, payee)
        still = still + 1 if b == last else 0
        last = b
        time.sleep(0.2)
    landed = 0
    for k in range(0, len(sent), 256):
        chunk = sent[k : k + 256]
        statuses = client.get_signature_statuses([s for s, _ in chunk]).value
        landed += sum(a for (_, a), st in zip(chunk, statuses) if st is not None and st.err is None)
    return payee, landed, len(sent)


def windows(live):
    return sum(live["windows"].values())


def test_learning_tuner_explains_itself_saves_and_reloads(tmp_path):
    n = Node(tmp_path, TUNER.format(mode="learn"))
    n.start()
    try:
        c = Client(n.url)
        payee, owed, sent = load(n, c)
        # Every transfer that landed while the tuner turned the knobs landed once: the payee
        # holds exactly their sum, and most of what was sent landed.
        assert owed > 0 and balance(c, payee) == owed, (balance(c, payee), owed, sent)
        s = status(n)
        live = s["live"]
        assert s["mode"] == "learn" and s["running"] is True
        assert live["state"] in ("learning", "holding")
        # The burst kept the queue deep for some windows: it measured the configured values
        # (anchor) and then tried another setting.
        assert live["windows"]["anchor"] >= 1 and live["changes"] >= 1, live
        # (UDP: the kernel may drop some of a burst; most land.)
        assert sent > 0 and owed >= 0.5 * sum(1_000_000 + i for i in range(sent)), (owed, sent)
        knobs = {k["knob"]: k for k in live["knobs"]}
        assert knobs["batch_max"]["default"] == 8 and knobs["batch_max"]["enabled"] is True
        assert knobs["admit_burst"]["default"] == 64
        assert "gigacompute_tuner_state 2" in metric(n, "gigacompute_tuner_state") or live["state"] == "holding"
        assert metric(n, "gigacompute_tuner_knob_value").startswith("gigacompute_tuner_knob_value{knob=")
        text = run("tuner", "status", "--config", str(n.config))
        assert text.returncode == 0 and "batch_max" in text.stdout and "restart-only" in text.stdout
    finally:
        assert n.stop() == 0
    policy = n.data_dir / "tuner" / "policy.json"
    assert policy.exists()
    saved = json.loads(policy.read_text())
    assert saved["knobs"][:2] == ["admit_burst", "batch_max"]
    # Stopped: the files alone tell what was learnt.
    offline = status(n)
    assert offline["running"] is False and offline["live"] is None
    assert offline["policy"]["windows"] == saved["policy"]["windows"]
    n.start()
    try:
        log = (n.workdir / "node.log").read_text(errors="replace")
        assert "saved policy loaded" in log
        s = status(n)
        assert s["live"]["policy_rejected"] == 0
        # It goes on from what it had learnt.
        assert s["policy"]["windows"] >= saved["policy"]["windows"]
    finally:
        n.stop()


def test_frozen_tuner_changes_nothing(tmp_path):
    n = Node(tmp_path, TUNER.format(mode="learn"))
    n.start()
    try:
        load(n, Client(n.url), seconds=2.0)
    finally:
        n.stop()
    policy = n.data_dir / "tuner" / "policy.json"
    before = policy.read_bytes()
    n.config.write_text(n.config.read_text().replace('mode = "learn"', 'mode = "frozen"'))
    n.start()
    try:
        first = status(n)["live"]
        assert first["state"] == "frozen"
        values = {k["knob"]: k["value"] for k in first["knobs"]}
        load(n, Client(n.url), seconds=2.0)
        after = status(n)["live"]
        assert {k["knob"]: k["value"] for k in after["knobs"]} == values
        assert after["changes"] == 0 and after["policy_writes"] == 0
    finally:
        n.stop()
    assert policy.read_bytes() == before


def test_restart_only_knobs_and_bad_limits_are_refused(tmp_path):
    for bad, why in [
        ('[tuner]\nknobs = ["batch_max", "workers"]\n', "workers needs a restart"),
        ('[tuner]\nknobs = ["turbo"]\n', "unknown knob"),
        ("[tuner]\nrevert_margin = 0.9\n", "revert_margin"),
        ('[tuner]\nmode = "yolo"\n', "mode"),
        ("[tuner.limits]\nbatch_max = [128, 16]\n", "min <= max"),
    ]:
        cfg = tmp_path / "bad.toml"
        cfg.write_text(bad)
        r = run("topology", "--config", str(cfg))
        assert r.returncode != 0, bad
        assert why in r.stderr, r.stderr
