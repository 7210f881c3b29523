"""The accounts engine as an operator sees it: `bench storage` runs end to end against the
RocksDB peer and reports the fields BENCHMARKS.md records; the appliance's device file is
formatted once and reused, and a foreign file in its place is refused."""

import json
import subprocess

from conftest import BINARY, ROOT, Node

FIELDS = [
    "updates_per_s",
    "rocksdb_updates_per_s",
    "ratio_vs_rocksdb",
    "device_reads_per_cold_read",
    "cache_hit_ratio",
    "cold_read_iops_fraction",
    "bytes_per_account_index",
]


def test_bench_storage_smoke():
    # A real filesystem (the raw-IOPS ceiling needs O_DIRECT; /tmp may be tmpfs).
    work = ROOT / "target" / "bench-storage-smoke"
    work.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [str(BINARY), "bench", "storage", "--accounts", "20000", "--slots", "3",
         "--updates-per-slot", "2000", "--reads-per-slot", "8000", "--runs", "1",
         "--cold-reads", "2000", "--cache-mib", "64", "--dir", str(work), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for f in FIELDS:
        assert isinstance(result[f], (int, float)), f
        assert result[f] >= 0, f
    assert result["accounts"] == 20000
    # Every cold account read is exactly one device read (fewer if a key repeats).
    assert 0.9 < result["device_reads_per_cold_read"] <= 1.0
    assert result["rocksdb_updates_per_s"] > 0
    assert list(work.iterdir()) == [], "the bench removes its stores"


def test_device_file_is_formatted_once_and_foreign_data_refused(tmp_path):
    n = Node(tmp_path)
    n.start()
    dev = n.data_dir / "accounts-0.dev"
    assert dev.stat().st_size == 256 << 20
    n.stop()
    label = dev.read_bytes()[:8]
    assert label == b"GCARRAY1"
    n.start()  # reopens the same array
    n.stop()
    with open(dev, "r+b") as f:
        f.write(b"NOTOURS!")
    n.log = None
    proc = subprocess.run([str(BINARY), "run", "--config", str(n.config)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "refusing to overwrite" in (proc.stdout + proc.stderr)


def test_bench_commit_smoke():
    out = subprocess.run(
        [str(BINARY), "bench", "commit", "--accounts", "20000", "--slots", "1", "--runs", "1",
         "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for f in ["updates_per_s", "peer_updates_per_s", "ratio_vs_peer", "proof_bytes_max",
              "verify_us_p50"]:
        assert isinstance(result[f], (int, float)) and result[f] > 0, f
    # The depth follows the account count (no deletions here: positions = accounts + the
    # sentinel), and a proof is 104 + 32 bytes per level.
    depth = int(result["accounts"]).bit_length()
    assert result["tree_depth"] == depth
    assert result["proof_bytes_max"] == 104 + 32 * depth
