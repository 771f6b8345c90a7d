"""Preference-cache benchmark -> JSON (stdout and ``--out``).

Measures: mining rows/s (on ``--data`` or on seeded toy logs), publish records/s into a real Redis, and
the latency of one request's preference lookup (query + user records, one round trip) through the
online reader: sequential p50/p99, and p50/p99 plus lookups/s under ``--concurrency`` concurrent requests.
Keys go under a random prefix that is deleted afterwards.

    python bench/prefs_bench.py --redis redis://127.0.0.1:6379/0 --data artifacts/data/x --out reports/prefs_bench.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import redis

from preference_cache.memory_store import InProcessPreferenceStore
from preference_cache.mined import MinedPrefs
from preference_cache.mining import mine_preferences
from preference_cache.publish import make_sync_client, publish
from preference_cache.redis_store import RedisPreferenceStore
from preference_cache.settings import PrefReaderSettings
from preference_cache.store import PreferenceStore
from preference_cache.synthetic import write_toy_logs


def bench_mining(data: Path | None, toy_requests: int, history_len: int) -> tuple[MinedPrefs, dict]:
    with tempfile.TemporaryDirectory(prefix="prefs-bench-") as tmp:
        source = data or write_toy_logs(
            tmp,
            requests=toy_requests,
            users=toy_requests // 5,
            queries=max(toy_requests // 50, 10),
            items=50_000,
        )
        start = time.perf_counter()
        mined = mine_preferences(source, history_len=history_len)
        seconds = time.perf_counter() - start
    return mined, {
        "data": str(data) if data else f"toy logs, {toy_requests} requests",
        "rows": mined.source_rows,
        "queries": mined.num_queries,
        "users": mined.num_users,
        "seconds": round(seconds, 3),
        "rows_per_s": round(mined.source_rows / seconds),
    }


def bench_publish(mined: MinedPrefs, url: str, cluster: bool, prefix: str, chunk: int) -> dict:
    client = make_sync_client(url, cluster)
    report = publish(mined, client, prefix=prefix, chunk_size=chunk)
    client.close()
    return {
        "records": report.records_written,
        "chunk": chunk,
        "seconds": round(report.seconds, 3),
        "records_per_s": round(report.records_per_s),
    }


async def bench_lookups(store: PreferenceStore, pairs: list[tuple[str, str]], concurrency: int) -> dict:
    latencies = np.zeros(len(pairs))
    outcomes: dict[str, int] = {}
    queue = iter(range(len(pairs)))

    async def worker() -> None:
        for i in queue:
            start = time.perf_counter()
            found = await store.lookup(*pairs[i])
            latencies[i] = time.perf_counter() - start
            outcomes[found.outcome] = outcomes.get(found.outcome, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    ms = latencies * 1000
    return {
        "lookups": len(pairs),
        "concurrency": concurrency,
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "mean_ms": round(float(ms.mean()), 4),
        "lookups_per_s": round(len(pairs) / wall),
        "outcomes": outcomes,
    }


async def run_lookups(mined: MinedPrefs, args: argparse.Namespace, prefix: str) -> dict:
    rng = np.random.default_rng(0)
    queries = mined.query_norm[rng.integers(0, mined.num_queries, args.lookups)]
    users = mined.user_id[rng.integers(0, mined.num_users, args.lookups)]
    pairs = [(str(q), str(u)) for q, u in zip(queries, users, strict=True)]
    settings = PrefReaderSettings(
        url=args.redis,
        cluster=args.cluster,
        key_prefix=prefix,
        deadline_ms=args.deadline_ms,
        pointer_refresh_s=1.0,
    )
    store = RedisPreferenceStore(settings)
    await store.ping()
    await bench_lookups(store, pairs[:200], 1)  # warm the pool
    result = {
        "redis_sequential": await bench_lookups(store, pairs, 1),
        "redis_concurrent": await bench_lookups(store, pairs, args.concurrency),
        "in_process_sequential": await bench_lookups(InProcessPreferenceStore(mined), pairs, 1),
    }
    await store.close()
    return result


def delete_prefix(url: str, cluster: bool, prefix: str) -> None:
    client = make_sync_client(url, cluster)
    batch = list(client.scan_iter(match=f"{prefix}:*", count=2000))
    for i in range(0, len(batch), 1000):
        pipe = client.pipeline(transaction=False)
        for key in batch[i : i + 1000]:
            pipe.unlink(key)
        pipe.execute()
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--data", type=Path, help="`prectr data build` output to mine (default: toy logs)")
    parser.add_argument("--toy-requests", type=int, default=200_000, help="toy log size without --data")
    parser.add_argument("--history-len", type=int, default=10)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--deadline-ms", type=float, default=50.0, help="generous: measure, do not cut")
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    try:
        import uvloop

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"
    mined, mining = bench_mining(args.data, args.toy_requests, args.history_len)
    prefix = f"prectr-bench-{uuid.uuid4().hex[:8]}"
    try:
        publishing = bench_publish(mined, args.redis, args.cluster, prefix, args.chunk)
        lookups = asyncio.run(run_lookups(mined, args, prefix))
    finally:
        delete_prefix(args.redis, args.cluster, prefix)
    server = redis.Redis.from_url(args.redis).info("server") if not args.cluster else {}
    result = {
        "benchmark": "prefs",
        "mining": mining,
        "publish": publishing,
        "lookup": lookups,
        "env": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "event_loop": loop_name,
            "redis_version": server.get("redis_version"),
            "cluster": args.cluster,
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
