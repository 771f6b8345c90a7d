"""The mined file: a directory ``meta.json`` + ``queries.parquet`` + ``users.parquet`` (never pickle).

Parquet keeps the file inspectable with duckdb and loadable without Python objects; ``meta.json`` records
the format version and the content hash, which :func:`load_mined` re-checks so a corrupted or hand-edited
file is refused instead of being published under a wrong namespace.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from features.prefs import NUM_LEVELS
from preference_cache.mined import FORMAT_VERSION, HISTORY_PAD_ITEM, HISTORY_PAD_LEVEL, MinedPrefs

META_FILE = "meta.json"


def save_mined(mined: MinedPrefs, path: str | Path, source: str = "") -> Path:
    """Write ``mined`` to directory ``path`` atomically (temp dir + rename); replaces an older mined file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if path.exists() and not (path / META_FILE).is_file():
        raise FileExistsError(f"{path} exists and is not a mined preference file; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        counts = lambda a: pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1), pa.int64()), NUM_LEVELS)  # noqa: E731
        queries = pa.table(
            {
                "query_norm": pa.array(mined.query_norm.tolist(), pa.string()),
                "exposures": counts(mined.q_exposures),
                "clicks": counts(mined.q_clicks),
                "users": pa.array(mined.q_users, pa.int64()),
            }
        )
        valid = mined.u_history_levels != HISTORY_PAD_LEVEL
        offsets = pa.array(np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int32))
        users = pa.table(
            {
                "user_id": pa.array(mined.user_id, pa.int64()),
                "exposures": counts(mined.u_exposures),
                "clicks": counts(mined.u_clicks),
                "activity": pa.array(mined.u_activity, pa.int64()),
                "history_items": pa.ListArray.from_arrays(
                    offsets, pa.array(mined.u_history_items[valid], pa.int64())
                ),
                "history_levels": pa.ListArray.from_arrays(
                    offsets, pa.array(mined.u_history_levels[valid], pa.int8())
                ),
            }
        )
        pq.write_table(queries, tmp / "queries.parquet")
        pq.write_table(users, tmp / "users.parquet")
        meta = {
            "format_version": FORMAT_VERSION,
            "num_levels": NUM_LEVELS,
            "history_len": mined.history_len,
            "train_days": mined.train_days,
            "num_queries": mined.num_queries,
            "num_users": mined.num_users,
            "source_rows": mined.source_rows,
            "content_hash": mined.content_hash,
            "namespace": mined.namespace,
            "source": source,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def read_meta(path: str | Path) -> dict:
    """``meta.json`` of a mined file, with a clear error when ``path`` is not one."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{path} is not a mined preference file (no {META_FILE}); run `prectr prefs mine`"
        )
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {meta.get('format_version')}, this code reads {FORMAT_VERSION}"
        )
    if meta.get("num_levels") != NUM_LEVELS:
        raise ValueError(f"{path}: mined with {meta.get('num_levels')} levels, this code uses {NUM_LEVELS}")
    return meta


def load_mined(path: str | Path) -> MinedPrefs:
    """Load and verify a mined file written by :func:`save_mined`."""
    import pyarrow.parquet as pq

    path = Path(path)
    meta = read_meta(path)
    q = pq.read_table(path / "queries.parquet")
    u = pq.read_table(path / "users.parquet")
    matrix = lambda t, c: t.column(c).combine_chunks().flatten().to_numpy().reshape(-1, NUM_LEVELS)  # noqa: E731
    vector = lambda t, c: t.column(c).combine_chunks().to_numpy()  # noqa: E731
    items_col = u.column("history_items").combine_chunks()
    lengths = np.diff(items_col.offsets.to_numpy())
    length = int(meta["history_len"])
    mined = MinedPrefs(
        query_norm=np.asarray(q.column("query_norm").to_pylist(), dtype=object),
        q_exposures=matrix(q, "exposures"),
        q_clicks=matrix(q, "clicks"),
        q_users=vector(q, "users"),
        user_id=vector(u, "user_id"),
        u_exposures=matrix(u, "exposures"),
        u_clicks=matrix(u, "clicks"),
        u_activity=vector(u, "activity"),
        u_history_items=pad_left(items_col.flatten().to_numpy(), lengths, length, HISTORY_PAD_ITEM, np.int64),
        u_history_levels=pad_left(
            u.column("history_levels").combine_chunks().flatten().to_numpy(),
            lengths,
            length,
            HISTORY_PAD_LEVEL,
            np.int8,
        ),
        train_days=int(meta["train_days"]),
        source_rows=int(meta.get("source_rows", 0)),
    )
    if mined.content_hash != meta["content_hash"]:
        raise ValueError(
            f"{path} is corrupt or was edited: content hash {mined.content_hash} != recorded {meta['content_hash']}"
        )
    return mined


def pad_left(values: np.ndarray, lengths: np.ndarray, width: int, pad: int, dtype: type) -> np.ndarray:
    """Rows of ``values`` (concatenated, ``lengths`` each) right-aligned in a ``(len(lengths), width)`` matrix.

    Rows longer than ``width`` keep their last ``width`` entries (the most recent ones).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    out: np.ndarray = np.full((len(lengths), width), pad, dtype=dtype)
    if width == 0 or len(values) == 0:
        return out
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    row = np.repeat(np.arange(len(lengths)), lengths)
    pos_from_end = np.repeat(starts + lengths, lengths) - 1 - np.arange(len(values))  # 0 = most recent
    keep = pos_from_end < width
    out[row[keep], width - 1 - pos_from_end[keep]] = values[keep]
    return out
