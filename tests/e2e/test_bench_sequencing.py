"""`bench sequencing` in a short run: both rules run on the same mix, and the figures obey the
invariants that make them mean what their names say: deterministic programs cost the same
whatever they asked for, counts add up, today's rule visibly punishes padding while the
performance rule ties it, and the appliance's own deadline accounting is consistent."""

import json
import subprocess

from conftest import BINARY

CLASSES = ("honest", "padded", "heavy", "low", "memo")


def test_bench_sequencing_smoke():
    out = subprocess.run(
        [str(BINARY), "bench", "sequencing", "--runs", "1", "--seconds", "1",
         "--capacity-txs", "2000", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])

    assert r["capacity_tps"] > 0
    assert abs(r["offered_tps"] / r["capacity_tps"] - 1.5) < 1e-6
    for arm in ("requested", "performance"):
        for c in CLASSES:
            assert 0 <= r[f"{arm}_{c}_p50_slots"] <= r[f"{arm}_{c}_p99_slots"], (arm, c)
            assert 0 <= r[f"{arm}_{c}_landed_pct"] <= 100, (arm, c)
        # Nothing outside the low class is lost: the backlog drains after the window.
        assert r[f"{arm}_starved"] == 0, arm
        assert r[f"{arm}_fees_per_exec_s"] > 0, arm

    # The same program on the same accounts: the padded transfer uses what the honest one
    # uses; three transfers cost about three times one; a memo costs far less.
    assert r["padded_cu_mean"] == r["honest_cu_mean"] > 0
    assert 2.5 < r["heavy_cu_mean"] / r["padded_cu_mean"] < 3.5
    assert 0 < r["memo_cu_mean"] < r["padded_cu_mean"]

    # Today's rule ranks padding 33x lower, so under a 1.5x overload it waits longer; the
    # performance rule ties the two (same fee, same learnt cost), so their medians are close.
    assert r["requested_padded_p50_slots"] > r["requested_honest_p50_slots"]
    assert 0.5 < r["padded_vs_honest_p50_ratio"] < 2
    assert abs(r["padded_vs_honest_p50_ratio"]
               - r["performance_padded_p50_slots"]
               / max(r["performance_honest_p50_slots"], 0.01)) < 1e-9

    # Of the same request at the same fee, the performance rule serves the single transfer
    # first; today's rule cannot tell them apart.
    assert r["cheap_vs_heavy_p50_ratio"] < 1
    assert abs(r["cheap_vs_heavy_p50_ratio"]
               - r["performance_padded_p50_slots"]
               / max(r["performance_heavy_p50_slots"], 0.01)) < 1e-9

    # The deadline accounting: transactions paid above the threshold, the missed ones are a
    # subset, and the model was learning (it estimated something, promotions are counted).
    assert r["performance_deadline_txs"] > 0
    assert 0 <= r["performance_deadline_missed"] <= r["performance_deadline_txs"]
    assert r["performance_deadline_late_max_slots"] >= 0
    assert r["promoted"] >= 0
    assert 0 <= r["cu_estimate_mean_abs_error"] < 1_000
