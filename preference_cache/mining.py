"""Offline mining with DuckDB over the Parquet tables of ``prectr data build`` (training days only).

All aggregation happens in SQL; Python only hashes the *distinct* clicked item ids (once per catalogue
item, never per impression) and scatters the history into a padded matrix with numpy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from features.head_inputs import item_hash64
from features.prefs import HISTORY_LEN, NUM_LEVELS
from preference_cache.mined import HISTORY_PAD_ITEM, HISTORY_PAD_LEVEL, MinedPrefs
from preference_cache.storage import pad_left

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection as DuckDB

IMPRESSION_COLUMNS = ("request_id", "day", "user_id", "query_id", "item_id", "position", "level", "click")
QUERY_COLUMNS = ("query_id", "query_norm")


def mine_preferences(
    data_dir: str | Path,
    history_len: int = HISTORY_LEN,
    threads: int | None = None,
    until_day: int | None = None,
) -> MinedPrefs:
    """Mine per-query and per-user preference counts from ``data_dir`` (days ``<= meta.json train_days``).

    Per normalised query: per-level exposures and clicks, distinct users. Per user: per-level exposures
    and clicks, activity (= clicks), and the last ``history_len`` clicked items with their levels, ordered
    by (day, request_id, position).

    ``until_day`` (default: ``train_days``) mines days ``1..until_day`` only, for point-in-time training
    features; it may never exceed ``train_days``, so test days never leak into preferences.
    """
    import duckdb

    if history_len < 0 or history_len > 255:
        raise ValueError(f"history_len must lie in 0..255, got {history_len}")
    data_dir = Path(data_dir)
    train_days = _train_days(data_dir)
    if until_day is not None:
        if not 1 <= until_day <= train_days:
            raise ValueError(f"until_day must lie in 1..train_days={train_days}, got {until_day}")
        train_days = until_day
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    imp_src = _parquet_source(con, data_dir, "impressions", IMPRESSION_COLUMNS)
    q_src = _parquet_source(con, data_dir, "queries", QUERY_COLUMNS)
    con.execute(f"CREATE TEMP TABLE qn AS SELECT query_id, query_norm FROM {q_src}")
    con.execute(f"""
        CREATE TEMP TABLE imp AS
        SELECT i.request_id, i.day, i.user_id, i.item_id, i.position, i.level, i.click, qn.query_norm
        FROM {imp_src} i LEFT JOIN qn USING (query_id) WHERE i.day <= {train_days}""")
    _validate(con)
    per_level = ", ".join(
        f"count(*) FILTER (WHERE level = {k}) AS e{k}, count(*) FILTER (WHERE level = {k} AND click = 1) AS c{k}"
        for k in range(NUM_LEVELS)
    )
    q = _fetch(
        con,
        f"""SELECT query_norm, {per_level}, count(DISTINCT user_id) AS users
                        FROM imp GROUP BY query_norm ORDER BY query_norm""",
    )
    u = _fetch(
        con,
        f"""SELECT user_id, {per_level}, count(*) FILTER (WHERE click = 1) AS activity
                        FROM imp GROUP BY user_id ORDER BY user_id""",
    )
    h = _fetch(
        con,
        f"""
        SELECT user_id, item_id, level FROM imp WHERE click = 1
        QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY day DESC, request_id DESC, position DESC)
                <= {history_len}
        ORDER BY user_id, day, request_id, position""",
    )
    rows = int(con.sql("SELECT count(*) FROM imp").fetchall()[0][0])
    con.close()

    lengths = np.bincount(np.searchsorted(u["user_id"], h["user_id"]), minlength=len(u["user_id"]))
    uniq_items, inverse = np.unique(h["item_id"], return_inverse=True)
    hashes = item_hash64(uniq_items)[inverse.reshape(-1)] if len(uniq_items) else np.zeros(0, np.int64)
    counts = lambda t, p: np.stack([t[f"{p}{k}"] for k in range(NUM_LEVELS)], axis=1).astype(np.int64)  # noqa: E731
    return MinedPrefs(
        query_norm=q["query_norm"].astype(object),
        q_exposures=counts(q, "e"),
        q_clicks=counts(q, "c"),
        q_users=q["users"].astype(np.int64),
        user_id=u["user_id"].astype(np.int64),
        u_exposures=counts(u, "e"),
        u_clicks=counts(u, "c"),
        u_activity=u["activity"].astype(np.int64),
        u_history_items=pad_left(hashes, lengths, history_len, HISTORY_PAD_ITEM, np.int64),
        u_history_levels=pad_left(h["level"], lengths, history_len, HISTORY_PAD_LEVEL, np.int8),
        train_days=train_days,
        source_rows=rows,
    )


def _train_days(data_dir: Path) -> int:
    meta_path = data_dir / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: is {data_dir} the output of `prectr data build`?")
    meta = json.loads(meta_path.read_text())
    if not isinstance(meta.get("train_days"), int) or meta["train_days"] < 1:
        raise ValueError(
            f"{meta_path}: 'train_days' must be a positive integer, got {meta.get('train_days')!r}"
        )
    return meta["train_days"]


def _parquet_source(con: DuckDB, data_dir: Path, table: str, columns: tuple[str, ...]) -> str:
    """``read_parquet(...)`` for ``table.parquet`` or a ``table/`` directory of parts; checks the columns."""
    file, folder = data_dir / f"{table}.parquet", data_dir / table
    if file.is_file():
        pattern = str(file)
    elif folder.is_dir() and any(folder.rglob("*.parquet")):
        pattern = str(folder / "**" / "*.parquet")
    else:
        raise FileNotFoundError(
            f"table {table!r} not found in {data_dir} (expected {file.name} or {folder.name}/)"
        )
    source = "read_parquet('{}')".format(pattern.replace("'", "''"))
    present = {row[0] for row in con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    missing = [c for c in columns if c not in present]
    if missing:
        raise ValueError(f"table {table!r} in {data_dir} lacks columns {missing} (see data/schema.py)")
    return source


def _validate(con: DuckDB) -> None:
    [(bad_level, bad_click, no_query, no_key)] = con.sql(f"""
        SELECT count(*) FILTER (WHERE level < 0 OR level >= {NUM_LEVELS} OR level IS NULL),
               count(*) FILTER (WHERE click NOT IN (0, 1) OR click IS NULL),
               count(*) FILTER (WHERE query_norm IS NULL),
               count(*) FILTER (WHERE user_id IS NULL OR request_id IS NULL) FROM imp""").fetchall()
    if bad_level or bad_click or no_query or no_key:
        raise ValueError(
            f"impressions are invalid: {bad_level} rows with level outside 0..{NUM_LEVELS - 1}, "
            f"{bad_click} rows with click not 0/1, {no_query} rows whose query_id is not in queries, "
            f"{no_key} rows with a null id"
        )


def _fetch(con: DuckDB, sql: str) -> dict[str, np.ndarray]:
    table = con.sql(sql).to_arrow_table()
    return {name: table.column(name).to_numpy() for name in table.column_names}
