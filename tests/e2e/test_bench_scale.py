"""`bench scale` in a short run: a real etcd, one and two confined appliance processes, the
forwarding-hop variant, partition moves, cross-partition transfers and a kill -9 under load; the figures BENCHMARKS.md rests on are
present and consistent, and no cgroup or process is left behind."""

import json
import math
import os
import subprocess

from conftest import BINARY


def test_bench_scale_smoke():
    out = subprocess.run(
        [str(BINARY), "bench", "scale", "--runs", "1", "--nodes", "1,2", "--seconds", "1.5",
         "--warmup-seconds", "0.5", "--payers", "16", "--moves", "3", "--offered-per-node", "800",
         "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    # Each confined node executes most of a modest offered rate; two execute about twice one.
    assert r["tps_1"] > 300, r
    assert r["tps_2"] > 1.3 * r["tps_1"], r
    assert math.isfinite(r["scaling_efficiency_2"]) and r["scaling_efficiency_2"] > 0.6
    assert r["tps_2_via_non_owner"] > 0
    # Every move finished; its pause is positive and bounded (seconds, not the 30 s give-up).
    assert r["migrations"] == 3
    assert 0 < r["migration_pause_ms_p50"] <= r["migration_pause_ms_p99"] < 10_000
    # Cross-partition transfers (default 6) each ran after its partitions gathered.
    assert r["colocate_samples"] == 6, r
    assert 0 < r["colocate_wait_ms_p50"] <= r["colocate_wait_ms_max"] < 30_000, r
    # kill -9 of a loaded node: its follower executes its partitions' transfers after the
    # lease (5 s, renewed every third of it) expires, within seconds more.
    ttl = r["failover_lease_ttl_s"]
    assert 0.6 * ttl <= r["failover_s"] < ttl + 15, r
    assert r["cpu_quota_per_node"] == 35
    # The bench removed its cgroups and stopped its processes.
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/cpu"):
        if os.path.isdir(root):
            assert not [d for d in os.listdir(root) if d.startswith("gigacompute-bench-scale-")]
    left = subprocess.run(["pgrep", "-f", "run --config .*/s[0-9]/config.toml"], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout
