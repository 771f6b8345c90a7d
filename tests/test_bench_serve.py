"""``bench/serve_bench.py`` end to end on a tiny bundle with very short phases: the benchmark still runs,
measures every phase against the real service, and reports the numbers the README quotes.

This checks the instrument, not the speed (speed goals live in the benchmark's own JSON)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bundle_factory import build_tiny_bundle
from conftest import REPO_ROOT, free_port


def test_serve_bench_measures_raw_and_service_and_splits_the_cpu(tmp_path: Path) -> None:
    bundle = build_tiny_bundle(tmp_path / "tiny-bench")
    out = tmp_path / "serve_bench.json"
    cmd = [sys.executable, "bench/serve_bench.py", "--bundle", str(bundle), "--candidates", "20"]
    cmd += ["--seconds", "0.5", "--raw-iterations", "6", "--paired-requests", "10", "--zipf-queries", "20"]
    cmd += ["--paired-rounds", "2", "--paired-seconds", "0.3", "--port", str(free_port()), "--out", str(out)]
    subprocess.run(cmd, cwd=REPO_ROOT, check=True, timeout=240, capture_output=True)
    report = json.loads(out.read_text())

    raw, service = report["raw"], report["service"]
    assert raw["ort_candidates_per_s"] >= raw["ort_pipelined_candidates_per_s"] > 0
    assert raw["ort_pipelined_after_service"]["candidates_per_s"] > 0
    assert [phase["concurrency"] for phase in service["cache_miss"]] == [1, 8, 32]
    for phase in [*service["cache_miss"], service["zipf"], service["zipf_warm"]]:
        assert phase["status"].get("200", 0) == phase["requests"] > 0
        cpu = phase["cpu_ms_per_request"]
        inference = sum(cpu["inference"].values())
        assert 0 < inference < cpu["server"] and cpu["client"] > 0
        assert 0 <= cpu["server_gc"] < cpu["server_rest"]
    assert report["ratio_service_to_raw_ort"] > 0
    alternating = report["ratio_alternating"]
    assert (
        len(alternating["ratios"]) == len(alternating["raw_candidates_per_s"]) == alternating["rounds"] == 2
    )
    assert all(r > 0 for r in alternating["service_candidates_per_s"])
    assert report["ratio_alternating_median"] == alternating["ratio_median"] > 0
    assert report["overhead_c1_paired"]["pairs"] == 10
    assert set(report["overhead_c1_paired"]["server_stage_p50_ms"]) >= {"features", "encoder", "head"}
    rates = [phase["target_rate"] for phase in service["open_loop"]]
    assert [round(r / rates[-1], 1) for r in rates] == [0.5, 0.8, 1.0]  # fractions of measured capacity
