"""Seeded synthetic inputs for tests and benchmarks when no ``prectr data build`` output is at hand.

``write_toy_logs`` writes tables with the columns of ``data/schema.py`` that mining reads (it does not
simulate behaviour; ``data/`` does that); ``random_mined`` builds a :class:`MinedPrefs` directly.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from features.prefs import NUM_LEVELS
from preference_cache.mined import HISTORY_PAD_ITEM, HISTORY_PAD_LEVEL, MinedPrefs


def write_toy_logs(
    out_dir: str | Path,
    *,
    requests: int = 10_000,
    users: int = 2_000,
    queries: int = 500,
    items: int = 5_000,
    per_request: int = 10,
    train_days: int = 7,
    seed: int = 0,
) -> Path:
    """``impressions.parquet``, ``queries.parquet`` and ``meta.json`` for days 1..train_days+1."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = requests * per_request
    req = np.repeat(np.arange(requests, dtype=np.int64), per_request)
    day = np.repeat(rng.integers(1, train_days + 2, requests), per_request).astype(np.int16)
    level = rng.integers(0, NUM_LEVELS, n).astype(np.int8)
    impressions = {
        "request_id": req,
        "day": day,
        "user_id": np.repeat(rng.zipf(1.3, requests) % users, per_request).astype(np.int64),
        "query_id": np.repeat(rng.zipf(1.2, requests) % queries, per_request).astype(np.int64),
        "item_id": rng.integers(0, items, n).astype(np.int64),
        "position": np.tile(np.arange(per_request, dtype=np.int8), requests),
        "level": level,
        "click": (rng.random(n) < 0.02 + 0.04 * level).astype(np.int8),
        "p_click": rng.random(n).astype(np.float32),
    }
    pq.write_table(pa.table(impressions), out / "impressions.parquet")
    words = np.array(["drill", "pvc", "pipe", "led", "bulb", "door", "hinge", "paint", "white", "3/4"])
    raw = [f"{' '.join(rng.choice(words, 3))} {i}" for i in range(queries)]
    pq.write_table(
        pa.table(
            {
                "query_id": np.arange(queries, dtype=np.int64),
                "query": raw,
                "query_norm": raw,
            }
        ),
        out / "queries.parquet",
    )
    (out / "meta.json").write_text(json.dumps({"train_days": train_days, "test_day": train_days + 1}))
    return out


def random_mined(num_queries: int, num_users: int, history_len: int = 10, seed: int = 0) -> MinedPrefs:
    """Plausible random counts (clicks <= exposures) for ``num_queries`` queries and ``num_users`` users."""
    rng = np.random.default_rng(seed)

    def counts(n: int) -> tuple[np.ndarray, np.ndarray]:
        # heavy-tailed activity: many rows with few or no clicks, so histories have every length
        exposures = rng.poisson(rng.exponential(8.0, (n, 1)), (n, NUM_LEVELS)).astype(np.int64)
        return exposures, rng.binomial(exposures, 0.15).astype(np.int64)

    q_exp, q_clk = counts(num_queries)
    u_exp, u_clk = counts(num_users)
    lengths = np.minimum(u_clk.sum(axis=1), history_len)
    filled = np.arange(history_len)[None, :] >= (history_len - lengths)[:, None]
    items = np.where(filled, rng.integers(1, 2**62, (num_users, history_len)), HISTORY_PAD_ITEM)
    levels = np.where(filled, rng.integers(0, NUM_LEVELS, (num_users, history_len)), HISTORY_PAD_LEVEL)
    return MinedPrefs(
        query_norm=np.array([f"query {i}" for i in range(num_queries)], dtype=object),
        q_exposures=q_exp,
        q_clicks=q_clk,
        q_users=rng.integers(1, 100, num_queries),
        user_id=np.arange(num_users, dtype=np.int64),
        u_exposures=u_exp,
        u_clicks=u_clk,
        u_activity=u_clk.sum(axis=1),
        u_history_items=items.astype(np.int64),
        u_history_levels=levels.astype(np.int8),
        train_days=7,
    )


def two_versions(num_queries: int, num_users: int, seed: int = 0) -> tuple[MinedPrefs, MinedPrefs]:
    """Two publishes over the same keys where every record differs, so a mixed read is always visible."""
    old = random_mined(num_queries, num_users, seed=seed)
    return old, replace(old, q_exposures=old.q_exposures + 1, u_exposures=old.u_exposures + 1)
