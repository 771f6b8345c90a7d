"""The raw rows behind each view, fetched with DuckDB joins over the Parquet tables (one pass per table).

Sampling (training-row cap, coarse-view requests) is by request and uses the view seed only, so every
model and every model seed sees exactly the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.tables import DataMeta, sql_source

Rows = dict[str, np.ndarray]


@dataclass
class RawRows:
    train: Rows
    test: Rows
    coarse: Rows
    relevance: Rows
    first_day: int  # first day of CTR training rows


def _query(con: object, sql: str) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in con.execute(sql).fetchnumpy().items()}  # type: ignore[attr-defined]


def _rows(con: object, data: Path, table: str, where: str, extra: str) -> dict[str, np.ndarray]:
    return _query(
        con,
        f"""
        SELECT t.request_id, t.user_id, t.item_id, t.level, {extra}, q.query_norm, it.price_bucket,
               it.pop_bucket, coalesce(u.segment, 'new') AS segment
        FROM {sql_source(data, table)} t
        JOIN {sql_source(data, "queries")} q USING (query_id)
        JOIN {sql_source(data, "items")} it USING (item_id)
        LEFT JOIN {sql_source(data, "users")} u USING (user_id)
        WHERE {where} ORDER BY t.request_id, t.item_id""",
    )


def _sample_requests(rows: dict[str, np.ndarray], cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """Row mask keeping every row of ``cap`` randomly chosen requests (all when ``cap`` is None)."""
    requests = np.unique(rows["request_id"])
    if cap is None or cap >= requests.size:
        return np.ones(len(rows["request_id"]), dtype=bool)
    return np.isin(rows["request_id"], rng.choice(requests, size=cap, replace=False))


def _subset(rows: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in rows.items()}


def fetch_rows(meta: DataMeta, spec: Any) -> RawRows:
    """Rows of the training days, the test day, the coarse view and the relevance labels (``spec`` is a
    :class:`model.dataset.ViewSpec`)."""
    import duckdb

    data, d = meta.root, meta.train_days
    first = max(2, d - spec.ctr_days + 1)
    rng = np.random.default_rng(spec.seed)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    imp_cols = "t.day, t.position, t.click::FLOAT AS target"
    train = _rows(con, data, "impressions", f"t.day BETWEEN {first} AND {d}", imp_cols)
    if spec.max_train_rows is not None and len(train["request_id"]) > spec.max_train_rows:
        per_req = len(train["request_id"]) / max(1, np.unique(train["request_id"]).size)
        train = _subset(train, _sample_requests(train, int(spec.max_train_rows / per_req), rng))
    test = _rows(con, data, "impressions", f"t.day = {meta.test_day}", imp_cols)
    test = _subset(test, _sample_requests(test, spec.max_test_requests, rng))
    coarse_cols = f"{meta.test_day}::SMALLINT AS day, 0::TINYINT AS position, t.p_click_true AS target"
    coarse = _rows(con, data, "candidates", "TRUE", coarse_cols)
    coarse = _subset(coarse, _sample_requests(coarse, spec.max_coarse_requests, rng))
    relevance = _query(
        con,
        f"""
        SELECT q.query_norm, r.item_id, r.level, r.split FROM {sql_source(data, "relevance")} r
        JOIN {sql_source(data, "queries")} q USING (query_id) WHERE r.split IN ('train', 'test')""",
    )
    con.close()
    return RawRows(train, test, coarse, relevance, first)
