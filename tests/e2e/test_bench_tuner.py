"""`bench tuner` in a short run: the three arms carry the four phases, the grid finds a best
static setting per phase, the tuner learns from an empty policy (its windows counted, its
knobs on their lattices), and the figures the report rests on are present and consistent."""

import json
import math
import subprocess

from conftest import BINARY

PHASES = ("uncontended", "hotspot", "bpf", "mix")


def test_bench_tuner_smoke():
    out = subprocess.run(
        [str(BINARY), "bench", "tuner", "--runs", "1", "--phase-seconds", "2",
         "--probe-seconds", "0.75", "--grid-knobs", "admit_burst", "--senders", "512", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    for p in PHASES:
        for arm in ("default", "best_static", "tuned"):
            # Every phase executed work in every arm (the copies are distinct transactions).
            assert r[f"{arm}_{p}_cu_per_s"] > 0, (arm, p)
        # The grid's winner is at least the defaults' probe, so its headroom is not hugely
        # negative (the arms are different runs: noise, not a loss).
        assert r[f"{p}_headroom"] > -0.5, p
        assert r[f"{p}_inflight"] >= 256
        assert 0 < r[f"{p}_learning_windows"] <= 4
    for name in ("tuned_vs_default", "tuned_vs_best_static_min", "worst_window_vs_default",
                 "learning_windows", "window_noise_cv"):
        assert math.isfinite(r[name]), name
    assert r["target_20pct_applicable"] in (0, 1)
    # The tuner ran: windows of every kind counted, from an empty policy.
    kinds = ("explore", "exploit", "hold", "anchor")
    assert sum(r[f"tuner_windows_{k}"] for k in kinds) > 0
    assert r["tuner_reverts"] <= r["tuner_changes"]
    plots = {p["id"]: p for p in r["plots"]}
    assert set(plots) == {"regret", "knobs", "throughput"}
    knobs = {l["label"]: l["points"] for l in plots["knobs"]["lines"]}
    assert "batch_max" in knobs and "admit_burst" in knobs
    for label, points in knobs.items():
        # Every value the tuned arm ran is a level of its knob's lattice.
        assert points and all(y is not None and 0 <= y <= 1 for _, y in points), label
    regret = {l["label"]: l["points"] for l in plots["regret"]["lines"]}
    assert len(regret["tuned"]) == len(regret["defaults"]) > 0
