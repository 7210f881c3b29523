"""`bench routing` in a short run: both rules carry the skewed workload through a whole node
over UDP, the islands form and (with affinity) take their writers, and no exact copy of a
transaction is forwarded twice or executed twice, whichever tile each copy reached."""

import json
import subprocess

from conftest import BINARY


def test_bench_routing_smoke():
    out = subprocess.run(
        [str(BINARY), "bench", "routing", "--runs", "1", "--seconds", "1",
         "--capacity-txs", "3000", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])

    for arm in ("signature", "affinity"):
        assert r[f"{arm}_capacity_tps"] > 0, arm
        # Every phase has its own 8 hot accounts, and each becomes an island.
        assert r[f"{arm}_islands_formed"] >= 8, arm
        assert 0 <= r[f"{arm}_key_cache_hit_pct"] <= 100, arm
        for load in ("50", "75"):
            assert 0 < r[f"{arm}_exec_p50_us_at_{load}pct"] <= r[f"{arm}_exec_p99_us_at_{load}pct"]

    # Signature routing never consults the table; affinity routes a large part of the 60% of
    # transactions that write a hot account (not those sent before their island formed).
    assert r["signature_routed_pct"] == 0 and r["signature_fallback_pct"] == 0
    assert 10 < r["affinity_routed_pct"] <= 60 + 5

    # The copies reached the node, and none got through dedup or executed twice.
    assert r["copies_sent"] > 50
    assert r["duplicates_forwarded"] == 0
    assert r["duplicates_executed"] == 0
