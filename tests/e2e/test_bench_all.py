"""`gigacompute bench all` and `bench report`: the benches' JSON stamped with what measured
them, BENCHMARKS.md rendered from those files (figures through placeholders, PNG charts), and
the invariants of the rpc and flood benches that a broken harness would violate."""

import json
import subprocess

from conftest import BINARY, ROOT


def run(*args, timeout=600):
    out = subprocess.run([str(BINARY), *args], capture_output=True, text=True, timeout=timeout,
                         cwd=ROOT)
    return out


def test_bench_all_quick_writes_json_charts_and_report(tmp_path):
    out_dir = tmp_path / "results"
    report = tmp_path / "BENCHMARKS.md"
    res = run("bench", "all", "--quick", "--only", "rpc,flood", "--out", str(out_dir),
              "--report", str(report))
    assert res.returncode == 0, res.stderr[-3000:]

    rpc = json.loads((out_dir / "rpc.json").read_text())
    flood = json.loads((out_dir / "flood.json").read_text())
    for r in (rpc, flood):
        meta = r["meta"]
        assert meta["commit"] and meta["commit"] != "unknown"
        assert "cores" in meta["machine"]
        assert meta["seconds"] > 0
        # The rows, in order with units, are the flat fields again.
        assert r["rows"], r
        for row in r["rows"]:
            assert r[row["name"]] == row["value"]

    # rpc: (almost) every subscription is notified, the load is what was offered at most, the sweep ran
    # at lower loads, and the CDF is a CDF.
    assert 0.99 <= rpc["notified_fraction"] <= 1.0
    assert 0 < rpc["load_tps"] <= 10_000 * 1.05
    assert rpc["get_account_info_rps"] > 0 and rpc["get_multiple_accounts_rps"] > 0
    assert rpc["notify_p50_us"] <= rpc["notify_p99_us"]
    plots = {p["id"]: p for p in rpc["plots"]}
    loads = [x for x, _ in plots["notify-vs-load"]["lines"][0]["points"]]
    assert len(loads) == 3 and loads == sorted(loads)
    cdf = plots["notify-cdf"]["lines"][0]["points"]
    assert [y for _, y in cdf] == sorted(y for _, y in cdf) and cdf[-1][1] == 1.0
    assert [x for x, _ in cdf] == sorted(x for x, _ in cdf)

    # flood: a ratio of rates within physical bounds, and the honest transfers that landed are
    # at most all of them.
    assert 0 < flood["goodput_ratio"] <= 1.2
    assert 0 < flood["honest_landed_flood"] <= 1.0
    assert flood["flood_pps"] > 0

    md = report.read_text()
    assert "## rpc" in md and "## flood" in md
    assert "{{" not in md, "every placeholder is filled"
    # The figures in the prose are the JSON's (rendered as the table renders them).
    assert "holds" in md  # the targets' verdicts
    for png in ("rpc-notify-vs-load.png", "rpc-notify-cdf.png"):
        assert (out_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(results/{png})" in md, "image links are relative to the report"

    # `bench report` renders the same report from the same files.
    again = tmp_path / "again.md"
    res = run("bench", "report", "--from", str(out_dir), "--to", str(again))
    assert res.returncode == 0, res.stderr[-3000:]
    assert again.read_text() == md


def test_bench_all_refuses_unknown_benches_and_reports_failures(tmp_path):
    res = run("bench", "all", "--only", "nope", "--out", str(tmp_path))
    assert res.returncode != 0 and "no bench named `nope`" in res.stderr
    # A bench that fails is recorded as such, not dropped: the report says so and the
    # command fails.
    (tmp_path / "flood.json").write_text(json.dumps(
        {"bench": "flood", "error": "the node did not start", "meta": {"commit": "x"}}))
    res = run("bench", "report", "--from", str(tmp_path), "--to", str(tmp_path / "R.md"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "**The run failed:** the node did not start" in (tmp_path / "R.md").read_text()
    # Prose naming a figure the bench does not report is an error, not a blank.
    prose = tmp_path / "prose"
    prose.mkdir()
    (prose / "rpc.md").write_text("p99 {{no_such_row}}\n")
    (tmp_path / "flood.json").unlink()
    (tmp_path / "rpc.json").write_text(json.dumps(
        {"bench": "rpc", "rows": [{"name": "x", "value": 1, "unit": ""}], "x": 1,
         "meta": {"commit": "x"}}))
    res = run("bench", "report", "--from", str(tmp_path), "--to", str(tmp_path / "R.md"),
              "--prose", str(prose))
    assert res.returncode != 0 and "no_such_row" in res.stderr
