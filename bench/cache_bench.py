"""Relevance-cache admission benchmark -> JSON (stdout and ``--out``).

Replays a search log's requests in time order (``prectr data build`` output: ``requests`` by day) through
the service's own :class:`service.relevance_cache.RelevanceCache`, as the pipeline drives it: look the
request's candidates up, then, for a request with misses that the cache admits, store them. Each query
brings the same ``--candidates`` items every time (a coarse ranker's candidate set for that query), so the
hit rate is the share of candidate pairs that skip the encoder. Compared per capacity: ``admit_after=1``
(store every cache-miss request's pairs) against the doorkeeper's ``admit_after=2``. Capacities are in
requests' worth of pairs (``capacity / candidates`` queries fit), so ``--candidates 20`` replays the same
cache dynamics as 200 candidates per request at a tenth of the cost.

    python bench/cache_bench.py --data artifacts/data/hd-full --out reports/cache_bench.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.relevance_cache import RelevanceCache  # noqa: E402


def request_queries(data: Path) -> list[int]:
    """The query id of every request, in time order (day, then request id)."""
    table = pq.read_table(data / "requests.parquet", columns=["request_id", "day", "query_id"])
    day, rid, qid = (table[c].to_numpy() for c in ("day", "request_id", "query_id"))
    return qid[np.lexsort((rid, day))].tolist()


def replay(queries: list[int], candidates: int, capacity: int, admit_after: int) -> dict:
    cache = RelevanceCache(capacity, admit_after=admit_after)
    vec, logits = np.zeros((candidates, 8), np.float32), np.zeros((candidates, 4), np.float32)
    sets: dict[int, tuple[list[str], list[str]]] = {}
    puts = 0
    started = time.perf_counter()
    for q in queries:
        if q not in sets:
            items = [f"{q}-{i}" for i in range(candidates)]
            sets[q] = items, [f"title {item}" for item in items]
        items, titles = sets[q]
        hit, _, _ = cache.get_request("v", str(q), items, titles)
        if len(hit) < candidates and cache.admit("v", str(q)):
            missed = np.setdiff1d(np.arange(candidates), hit)
            cache.put_request(
                "v",
                str(q),
                [items[i] for i in missed],
                [titles[i] for i in missed],
                vec[missed],
                logits[missed],
            )
            puts += 1
    return {
        "capacity": capacity,
        "queries_that_fit": capacity // candidates,
        "admit_after": admit_after,
        "pair_hit_rate": round(cache.hits / (cache.hits + cache.misses), 4),
        "puts": puts,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--queries-that-fit", type=int, nargs="+", default=[1000, 250, 100])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    queries = request_queries(args.data)
    counts = np.bincount(np.unique(queries, return_inverse=True)[1])
    report = {
        "data": str(args.data),
        "requests": len(queries),
        "distinct_queries": len(counts),
        "queries_asked_once": int((counts == 1).sum()),
        "candidates_per_request": args.candidates,
        "runs": [
            replay(queries, args.candidates, fit * args.candidates, admit)
            for fit in args.queries_that_fit
            for admit in (1, 2)
        ],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
