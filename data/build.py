"""``prectr data build``: source -> catalogue -> users -> requests -> logs -> Parquet tables + meta.json.

Every random draw comes from one named child of ``SeedSequence(seed)``, so a stage's randomness does not
shift when another stage changes. ``meta.json`` is written last: its presence means the build finished.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from data.catalog import Catalog, build_catalog, relevance_rows
from data.config import SOURCES, ProfileError, SimConfig
from data.schema import LEVEL_NAMES, SEGMENTS, TABLES
from data.simulate import simulate_logs
from data.sources import LEVEL_EDGES, RelevanceData, load_home_depot
from data.synthetic import generate_synthetic
from data.tables import fingerprint, write_table
from data.users import simulate_population, simulate_requests, user_rows

META_FILE = "meta.json"
STREAMS = ("items", "queries", "split", "near", "relevance", "users", "requests", "logs")
Progress = Callable[[str, float], None]  # (stage description, percent done 0..100)


def load_source(source: str, cfg: SimConfig, hd_path: str | Path | None = None) -> RelevanceData:
    if source == "homedepot":
        return load_home_depot(hd_path)
    if source == "synthetic":
        return generate_synthetic(cfg.synthetic_queries, cfg.synthetic_products, cfg.catalog_seed)
    raise ProfileError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")


def _catalog_tables(cat: Catalog, rel: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    order = np.lexsort((rel["item_id"], rel["query_id"]))
    return {
        "items": {
            "item_id": cat.item_id,
            "title": cat.title,
            "price_bucket": cat.price_bucket,
            "pop_bucket": cat.pop_bucket,
            "appeal": cat.appeal,
        },
        "queries": {
            "query_id": np.arange(cat.n_queries),
            "query": cat.query,
            "query_norm": cat.query_norm,
            "popularity": cat.popularity,
            "strictness": cat.strictness,
            "split": cat.split,
        },
        "relevance": {k: v[order] for k, v in rel.items()},
    }


def build_dataset(
    source: str,
    cfg: SimConfig,
    seed: int,
    out_dir: str | Path,
    hd_path: str | Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build every table of :data:`data.schema.TABLES` into ``out_dir``; return the meta dict."""
    report = progress or (lambda _stage, _pct: None)
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / META_FILE).unlink(missing_ok=True)
    rngs = dict(
        zip(
            STREAMS,
            (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(STREAMS))),
            strict=True,
        )
    )
    report(f"loading {source} labels", 0)
    rel = load_source(source, cfg, hd_path)
    report("catalogue, strictness, near misses", 5)
    cat = build_catalog(rel, cfg, rngs)
    tables = _catalog_tables(cat, relevance_rows(cat, cfg.relevance_negatives, rngs["relevance"]))
    report("users and requests", 20)
    pop = simulate_population(cfg, rngs["users"])
    req = simulate_requests(cfg, pop, cat.popularity, rngs["requests"])
    done = [0]

    def on_block(n: int) -> None:
        done[0] += n
        report(f"simulating {req.day.size:,} requests", 25 + 60 * done[0] / req.day.size)

    impressions, candidates = simulate_logs(cat, cfg, pop, req, rngs["logs"], on_block)
    tables["users"] = user_rows(
        cfg, pop, req, impressions["user_id"], impressions["day"], impressions["click"]
    )
    tables["requests"] = {
        "request_id": np.arange(req.day.size),
        "day": req.day,
        "user_id": req.user,
        "query_id": req.query,
    }
    tables["impressions"], tables["candidates"] = impressions, candidates
    paths = {}
    for i, name in enumerate(TABLES):
        report(f"writing {name}", 85 + 15 * i / len(TABLES))
        paths[name] = write_table(out, name, tables[name])
    meta = _meta(source, rel, cfg, seed, tables, paths, time.perf_counter() - started)
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    report("done", 100)
    return meta


def _meta(
    source: str,
    rel: RelevanceData,
    cfg: SimConfig,
    seed: int,
    tables: dict[str, dict[str, np.ndarray]],
    paths: dict[str, Path],
    seconds: float,
) -> dict[str, Any]:
    rows = {name: len(next(iter(cols.values()))) for name, cols in tables.items()}
    segments = tables["users"]["segment"]
    digest = fingerprint(paths)
    return {
        "source": source,
        "source_origin": rel.origin,
        "source_sha256": rel.sha256,
        "profile": cfg.profile,
        "seed": seed,
        "train_days": cfg.train_days,
        "test_day": cfg.test_day,
        "level_names": list(LEVEL_NAMES),
        "level_edges": list(LEVEL_EDGES),
        "rows": {name: rows[name] for name in TABLES},
        "tables": {name: {"file": paths[name].name, "rows": rows[name]} for name in TABLES},
        "segments": {s: float(np.mean(segments == s)) for s in SEGMENTS},
        "ctr": float(np.mean(tables["impressions"]["click"])),
        "fingerprint": digest,
        "data_fingerprint": digest,
        "build_seconds": round(seconds, 3),
        "params": cfg.to_dict(),
    }
