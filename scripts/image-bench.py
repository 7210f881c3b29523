#!/usr/bin/env python3
"""bench/results/image.json from `scripts/image.sh bench`'s files, in the form every
`gigacompute bench` result has (meta, rows), so `gigacompute bench report` renders it into
BENCHMARKS.md with bench/prose/image.md.

    image-bench.py OUT_DIR RUNS STARTED_UTC SECONDS LOAD_AT_START

OUT_DIR holds build-report.json (written by `image.sh build`) and test-report-N.json (one per
run of tests/image/test_image.py). Times are medians over the runs.
"""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commit():
    def git(*args):
        r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    h = git("rev-parse", "--short=10", "HEAD")
    if h is None:
        return "unknown"
    return h + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine():
    """As `gigacompute bench` writes it: CPU model, cores, memory, kernel."""
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                  if l.startswith("model name")), "unknown CPU")
    kb = next(float(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:"))
    kernel = open("/proc/sys/kernel/osrelease").read().strip()
    return f"{model}, {os.cpu_count()} cores, {kb / (1024 * 1024):.0f} GiB, Linux {kernel}"


def main():
    out, runs, started, seconds, load = sys.argv[1:6]
    out = Path(out)
    build = json.loads((out / "build-report.json").read_text())
    tests = [json.loads((out / f"test-report-{i}.json").read_text()) for i in range(1, int(runs) + 1)]
    med = lambda k: statistics.median(t[k] for t in tests)
    rows = [
        ("image_mib", build["disk_mib"], "MiB (raw disk image, apparent size)"),
        ("image_allocated_mib", build["allocated_mib"], "MiB (allocated: the sparse file's data)"),
        ("image_zstd_mib", build["zstd_mib"], "MiB (gigacompute.img.zst, what is shipped)"),
        ("root_zstd_mib", build["root_zstd_mib"], "MiB (root.img.zst, an upgrade's payload)"),
        ("build_s", build["build_s"], "s (binary already built)"),
        ("bios_boot_to_serving_s", med("bios_boot_to_serving_s"), "s under TCG (median)"),
        ("uefi_boot_to_serving_s", med("uefi_boot_to_serving_s"), "s under TCG (median)"),
        ("upgrade_write_s", med("upgrade_write_s"), "s under TCG (median)"),
        ("runs", float(len(tests)), "runs"),
    ]
    result = {
        "bench": "image",
        "meta": {
            "command": f"scripts/image.sh bench {runs}",
            "args": runs,
            "commit": commit(),
            "machine": machine(),
            "started_utc": started,
            "seconds": float(seconds),
            "load_at_start": float(load),
        },
        "rows": [{"name": n, "value": v, "unit": u} for n, v, u in rows],
        "plots": [],
        "tests": tests,
    }
    dest = ROOT / "bench/results/image.json"
    dest.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {dest}")
    for n, v, u in rows:
        print(f"  {n:28} {v:>10} {u}")


if __name__ == "__main__":
    main()
