"""Build time of ``prectr data build`` per source and profile, as JSON (speed lives here, not in tests).

python bench/data_bench.py --profile full --json reports/bench/data_build_full.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from data.build import build_dataset
from data.config import PROFILES, SOURCES, profile_config
from data.sources import default_home_depot_path


def bench(source: str, profile: str, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"prectr-bench-{source}-") as out:
        started = time.perf_counter()
        meta = build_dataset(source, profile_config(profile), seed, out)
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in Path(out).glob("*.parquet"))
    return {
        "source": source,
        "profile": profile,
        "seed": seed,
        "seconds": round(seconds, 2),
        "rows": meta["rows"],
        "segments": meta["segments"],
        "ctr": meta["ctr"],
        "parquet_bytes": size,
        "peak_rss_mb_so_far": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="small")
    parser.add_argument("--source", choices=[*SOURCES, "all"], default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    sources = list(SOURCES) if args.source == "all" else [args.source]
    if "homedepot" in sources and not default_home_depot_path().is_file():
        sources.remove("homedepot")  # absent shared data: benchmark what a fresh clone can build
    results = {
        "machine": platform.platform(),
        "cpus": _cpus(),
        "runs": [bench(s, args.profile, args.seed) for s in sources],
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


if __name__ == "__main__":
    main()
