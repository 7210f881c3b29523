"""`bench commit` end to end on a small state: ours and jmt over the same slots. The checks are
invariants a broken benchmark would fail: the peer ran over the same data (its leaf count is
ours), its batch API agreed with its per-key API, one thread and all cores give the same
root (checked inside the bench), each figure is consistent with the others it is derived
from, and the speed-up from threads stays within what the cores allow."""

import json
import os
import subprocess

from conftest import BINARY

ACCOUNTS = 20_000
SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000}


def run_bench(*extra):
    out = subprocess.run(
        [str(BINARY), "bench", "commit", "--accounts", str(ACCOUNTS), "--slots", "2",
         "--runs", "1", "--history-mib", "8", "--json", *extra],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def close(a, b, rel=1e-6):
    return abs(a - b) <= rel * max(abs(a), abs(b))


def test_bench_commit_smoke():
    r = run_bench()
    assert r["bench"] == "commit"
    # The peer ran, over the same accounts: jmt's leaf count is ours, which is the base state
    # plus the new accounts of the slots (2% of each slot's writes).
    assert r["peer_batch_root_checked"] == 1
    assert r["accounts"] > ACCOUNTS
    assert r["peer_accounts"] == r["accounts"]
    for s in SIZES:
        for f in ["updates_per_s_", "updates_per_s_one_core_", "peer_updates_per_s_",
                  "lattice_updates_per_s_"]:
            assert r[f + s] > 0, f + s
    # The headline figures are the 100k-slot ones.
    assert r["updates_per_s"] == r["updates_per_s_100k"]
    assert r["updates_per_s_one_core"] == r["updates_per_s_one_core_100k"]
    assert r["peer_updates_per_s"] == r["peer_updates_per_s_100k"]
    # One run: each ratio is that run's rates divided.
    assert close(r["ratio_vs_peer_per_core"],
                 r["updates_per_s_one_core"] / r["peer_updates_per_s"])
    assert close(r["ratio_vs_peer_all_cores"], r["updates_per_s"] / r["peer_updates_per_s"])
    assert close(r["ratio_vs_peer_per_core_10k"],
                 r["updates_per_s_one_core_10k"] / r["peer_updates_per_s_10k"])
    # Time per slot and rate describe the same slots: ms × rate = accounts per slot, which is
    # the slot size less the keys drawn twice (at 100k over ~20k keys: most of them).
    for s, n in SIZES.items():
        for ms, rate in [("root_ms_per_slot_", "updates_per_s_"),
                         ("root_ms_per_slot_one_core_", "updates_per_s_one_core_"),
                         ("peer_ms_per_slot_", "peer_updates_per_s_")]:
            per_slot = r[ms + s] * r[rate + s] / 1e3
            assert per_slot <= n * (1 + 1e-9), (ms + s, per_slot)
            assert per_slot >= {1_000: 0.95, 10_000: 0.7, 100_000: 0.15}[n] * n, (ms + s, per_slot)
    # Threads: the all-cores run uses every core, and cannot beat one thread by more than the
    # cores it has (with slack for noise on a shared machine).
    assert r["threads"] == len(os.sched_getaffinity(0)) or r["threads"] == os.cpu_count()
    assert r["updates_per_s_100k"] <= r["updates_per_s_one_core_100k"] * r["threads"] * 1.5
    # Publish is inside both root figures.
    assert 0 < r["publish_ms_per_slot_100k"] < r["root_ms_per_slot_one_core_100k"]
    # Proofs: the depth follows the positions (no deletions: accounts + the sentinel), and a
    # proof is 104 + 32 bytes per level.
    depth = int(r["accounts"]).bit_length()
    assert r["tree_depth"] == depth
    assert r["proof_bytes_max"] == 104 + 32 * depth
    assert 0 < r["verify_us_p50"] < 1000
    # The chart: root time per slot against slot size, one line per engine, the rows' values.
    plot = next(p for p in r["plots"] if p["id"] == "root-time")
    lines = {l["label"]: l["points"] for l in plot["lines"]}
    assert len(lines) == 3, lines.keys()
    ours = lines[f"ours, {int(r['threads'])} threads"]
    assert [x for x, _ in ours] == list(SIZES.values())
    assert [y for _, y in ours] == [r["root_ms_per_slot_" + s] for s in SIZES]
    assert [y for _, y in lines["jmt (1 thread)"]] == [r["peer_ms_per_slot_" + s] for s in SIZES]


def test_bench_commit_no_peer():
    r = run_bench("--no-peer")
    assert r["peer_updates_per_s"] == 0 and r["peer_accounts"] == 0
    assert r["ratio_vs_peer_per_core"] == 0 and r["peer_batch_root_checked"] == 0
    assert r["updates_per_s"] > 0
    plot = next(p for p in r["plots"] if p["id"] == "root-time")
    assert len(plot["lines"]) == 2
