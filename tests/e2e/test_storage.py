"""The accounts engine as an operator sees it: `bench storage` runs end to end against the
RocksDB peer, and what it reports holds together (the peer did the same reads, with its
filters and cache, in the same memory; hit accounting adds up; the sweep's ratios are the
engines' rates); the appliance's device file is formatted once and reused, and a foreign file
in its place is refused."""

import json
import subprocess

from conftest import BINARY, ROOT, Node

FIELDS = [
    "slots_per_s",
    "rocksdb_slots_per_s",
    "ratio_vs_rocksdb",
    "ratio_vs_rocksdb_no_prefetch",
    "reads_per_s",
    "rocksdb_reads_per_s",
    "commit_updates_per_s",
    "rocksdb_commit_updates_per_s",
    "device_reads_per_cold_read",
    "cache_hit_ratio",
    "cold_read_fraction_of_raw",
    "bytes_per_account_index",
]

ACCOUNTS, SLOTS, UPDATES, READS, RUNS, CACHE_MIB = 20000, 3, 2000, 8000, 2, 64


def test_bench_storage_smoke():
    # A real filesystem (the raw-IOPS ceiling needs O_DIRECT; /tmp may be tmpfs).
    work = ROOT / "target" / "bench-storage-smoke"
    work.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [str(BINARY), "bench", "storage", "--accounts", str(ACCOUNTS), "--slots", str(SLOTS),
         "--updates-per-slot", str(UPDATES), "--reads-per-slot", str(READS),
         "--runs", str(RUNS), "--warmup-slots", "2", "--cold-reads", "2000",
         "--cache-mib", str(CACHE_MIB), "--sweep-accounts", "20000", "--sweep-slots", "2",
         "--dir", str(work), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    for f in FIELDS:
        assert isinstance(r[f], (int, float)) and r[f] > 0, f
    assert r["accounts"] == ACCOUNTS
    # The peer ran the very same reads as ours: every key of both series, every run, found.
    assert r["reads_checked"] == r["rocksdb_reads_checked"] == RUNS * 2 * SLOTS * READS
    # ...with its bloom filters and block cache in use, in the same memory as ours (our
    # cache + our index, split into two write buffers and the block cache).
    assert r["rocksdb_filter_bytes"] > 0
    assert 0 < r["rocksdb_block_cache_used_mib"] <= r["rocksdb_block_cache_capacity_mib"] * 1.05
    index_mib = r["bytes_per_account_index"] * ACCOUNTS / 2**20
    memory = r["rocksdb_block_cache_capacity_mib"] + 2 * r["rocksdb_write_buffer_mib"]
    assert abs(memory - (CACHE_MIB + index_mib)) < 0.01, (memory, CACHE_MIB + index_mib)
    # Both committed durably: every update's record (~0.5 KiB on average) reached the disk.
    assert r["write_bytes_per_update"] > 200
    assert r["rocksdb_write_bytes_per_update"] > 200
    # Same disk, same work: a ratio outside this is a broken measurement, not a result.
    for f in ["ratio_vs_rocksdb", "ratio_vs_rocksdb_no_prefetch", "read_ratio_vs_rocksdb",
              "commit_ratio_vs_rocksdb"]:
        assert 0.01 < r[f] < 500, (f, r[f])
    # Whole slot = reads + commit (+ hand-offs): it cannot be faster than its commit alone.
    for who in ["", "rocksdb_"]:
        slot_s = 1 / r[f"{who}slots_per_s"]
        assert slot_s >= UPDATES / r[f"{who}commit_updates_per_s"] * 0.9, who
    # Each prefetch-series read of ours was a get of a prefetched key, counted once, as
    # exactly one of hit / waited for the prefetch / miss.
    assert r["sequenced_gets"] == RUNS * SLOTS * READS
    parts = r["cache_hit_ratio"] + r["waited_for_prefetch_ratio"] + r["sequenced_miss_ratio"]
    assert abs(parts - 1) < 1e-9
    for f in ["cache_hit_ratio", "waited_for_prefetch_ratio", "sequenced_miss_ratio",
              "cache_hit_ratio_no_prefetch"]:
        assert 0 <= r[f] <= 1, f
    # Every cold account read is exactly one device read (fewer if a key repeats), and
    # cold reads cannot beat the device they read from by much.
    assert 0.9 < r["device_reads_per_cold_read"] <= 1.0
    raw = max(r["raw_4k_read_iops_qd32"], r["raw_4k_read_iops_qd128"],
              r["raw_4k_read_iops_qd256"])
    assert r["cold_read_iops"] > 0 and raw > 0
    assert r["cold_read_fraction_of_raw"] < 1.5
    # The sweep: four cache sizes up to the data set, each point's ratio the quotient of the
    # two engines' rates at that point.
    plots = {p["id"]: p for p in r["plots"]}
    (ratio_line,) = plots["ratio-vs-cache"]["lines"]
    ours, peer = plots["slots-vs-cache"]["lines"]
    assert (ours["label"], peer["label"]) == ("ours", "RocksDB")
    xs = [x for x, _ in ratio_line["points"]]
    assert len(xs) == 4 and xs == sorted(xs)
    assert abs(xs[-1] - r["sweep_data_mib"]) < 0.01 and abs(xs[0] * 8 - xs[-1]) < 0.01
    for (x, q), (xo, o), (xp, p) in zip(ratio_line["points"], ours["points"], peer["points"]):
        assert x == xo == xp and o > 0 and p > 0
        assert abs(q - o / p) < 1e-9 * q
    assert r["sweep_ratio_eighth_cache"] == ratio_line["points"][0][1]
    assert r["sweep_ratio_full_cache"] == ratio_line["points"][-1][1]
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
