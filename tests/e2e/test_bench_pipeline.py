"""`bench pipeline`, `bench exec` and `bench sigverify` in short runs: each runs end to end and
its figures obey the invariants that make them mean what their names say (counts that must
add up, rates within physical bounds, curves that are curves), not merely `>= 0`."""

import json
import subprocess

from conftest import BINARY


def bench(*args, timeout=600):
    out = subprocess.run(
        [str(BINARY), "bench", *args, "--json"], capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_bench_pipeline_smoke():
    txs = 1500
    r = bench("pipeline", "--txs", str(txs), "--runs", "1", "--warmup-txs", "300",
              "--sweep-seconds", "0.3")
    assert r["txs"] == txs, "--txs is used as given"
    assert r["warmup_txs"] == 300
    # Closed-loop runs lose nothing: every transaction sent is found in a durable slot.
    assert r["committed"] == txs
    assert r["realistic_committed"] == txs
    # The mixed workload fails exactly its overdrafts (2 in every 100 senders), and they are
    # counted apart from the successful ones.
    assert r["realistic_failed_expected"] == txs * 2 // 100
    assert r["realistic_failed"] == r["realistic_failed_expected"]
    assert r["e2e_tps"] > 0 and r["e2e_tps_realistic"] > 0
    assert 0.05 < r["realistic_vs_disjoint"] < 5
    # Two verify tiles on two cores: end to end cannot beat what both tiles verify alone
    # (slack for this VM's noise between the two measurements).
    assert r["verify_tiles"] == 2
    assert 0 < r["e2e_vs_verify_stage"] < 2
    assert abs(r["e2e_vs_verify_stage"]
               - r["e2e_tps"] / (r["verify_tiles"] * r["sigverify_tps_per_core"])) < 1e-9
    assert r["sigverify_tps_per_core"] > 0 and r["sigverify_single_tps_per_core"] > 0
    assert r["exec_tps_per_worker"] > 0
    # Latencies: p50 <= p99, and at least a fraction of a millisecond (a slot must close and
    # be made durable first).
    assert 0 < r["p50_us"] <= r["p99_us"]
    assert 0 < r["p50_saturated_us"] <= r["p99_saturated_us"]
    assert 0.5 < r["realistic_half_load_p50_ms"] <= r["realistic_half_load_p99_ms"]
    assert 0 < r["realistic_overload_vs_full_load"] < 3
    for b in ("busy_verify_pct", "busy_bank_pct", "busy_workers_pct", "busy_commit_pct"):
        assert 0 < r[b] <= 100 * r["cores"] * 2, b

    plots = {p["id"]: p for p in r["plots"]}
    (load,) = plots["throughput-vs-load"]["lines"]
    assert len(load["points"]) == 5
    offered = [x for x, _ in load["points"]]
    # 25%, 50%, ... 125% of the saturated rate: increasing, in the ratio asked for.
    assert offered == sorted(offered)
    assert 3 < offered[-1] / offered[0] < 7
    for x, y in load["points"]:
        # Successful commits cannot outrun what was offered (slack: a short window's edges).
        assert 0 < y < 1.5 * x + 200, (x, y)
    (cdf,) = plots["latency-cdf"]["lines"]
    lat = [x for x, _ in cdf["points"]]
    frac = [y for _, y in cdf["points"]]
    assert frac[0] == 0 and frac[-1] == 1 and frac == sorted(frac)
    assert lat == sorted(lat) and lat[0] > 0
    # The CDF and the rows come from the same latencies.
    assert dict(zip(frac, lat))[0.5] == r["realistic_half_load_p50_ms"]
    assert dict(zip(frac, lat))[0.99] == r["realistic_half_load_p99_ms"]


def test_bench_exec_smoke():
    r = bench("exec", "--txs", "3000", "--runs", "2", "--warmup-txs", "200")
    assert r["txs"] == 3000 and r["workers"] == 2
    one, each, wall = (r["exec_tps_per_worker"], r["exec_tps_per_worker_concurrent"],
                       r["exec_tps_wall_total"])
    assert one > 0 and each > 0 and wall > 0
    # Transactions over the wall time cannot exceed the sum of the workers' own-clock rates
    # (each worker's clock runs inside the wall interval); it did equal it exactly before.
    assert wall <= r["workers"] * each * 1.0001
    # Two workers on two cores: at most about twice one worker (slack for noise).
    assert 0 < r["exec_scaling"] < 3


def test_bench_sigverify_smoke():
    r = bench("sigverify", "--txs", "600", "--runs", "2", "--warmup-txs", "100")
    assert r["txs"] == 600, "--txs is used as given"
    rates = [k for k in r if k.endswith("_sig_per_s")]
    assert len(rates) == 10
    for k in rates:
        # One core of this machine verifies well under a million ed25519 signatures a second.
        assert 0 < r[k] < 1e6, k
    for k in [k for k in r if k.endswith("_ratio")]:
        assert 0.1 < r[k] < 10, k
