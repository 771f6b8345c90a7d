"""``bench/cache_bench.py`` replays a request log through the real relevance cache: on a log worked out by
hand, the doorkeeper (admit_after=2) stores fewer requests' pairs and, because one-off queries no longer
evict a returning one, hits more."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import REPO_ROOT


def test_cache_bench_replays_the_log_in_time_order_with_and_without_the_doorkeeper(tmp_path: Path) -> None:
    # Query 1 returns between one-off queries; two queries' pairs fit in the cache.
    order = [1, 2, 3, 1, 4, 5, 1, 6, 1]
    requests = pa.table(
        {
            "request_id": list(range(len(order)))[::-1],  # ids run backwards: the day orders them
            "day": list(range(len(order))),
            "query_id": order,
        }
    )
    pq.write_table(requests, tmp_path / "requests.parquet")
    out = tmp_path / "cache_bench.json"
    cmd = [sys.executable, "bench/cache_bench.py", "--data", str(tmp_path), "--candidates", "3"]
    cmd += ["--queries-that-fit", "2", "--out", str(out)]
    subprocess.run(cmd, cwd=REPO_ROOT, check=True, timeout=120, capture_output=True)
    report = json.loads(out.read_text())

    assert (report["requests"], report["distinct_queries"], report["queries_asked_once"]) == (9, 6, 5)
    always, doorkeeper = report["runs"]
    assert (always["admit_after"], always["capacity"], always["queries_that_fit"]) == (1, 6, 2)
    # every one-off query pushes query 1 out: only its last request hits
    assert (always["puts"], always["pair_hit_rate"]) == (8, round(3 / 27, 4))
    # query 1 is stored on its second request and hits on its third and fourth; nothing else is stored
    assert (doorkeeper["puts"], doorkeeper["pair_hit_rate"]) == (1, round(6 / 27, 4))
