"""Reading the tables ``prectr data build`` writes (columns in :mod:`data.schema`) with clear errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data.schema import TABLES


class DataDirError(FileNotFoundError):
    """The data directory is missing, incomplete or not the output of ``prectr data build``."""


@dataclass(frozen=True)
class DataMeta:
    """The parts of ``meta.json`` training needs."""

    root: Path
    train_days: int
    test_day: int
    fingerprint: str
    raw: dict[str, Any]


def read_meta(data_dir: str | Path) -> DataMeta:
    """``meta.json`` of a built data directory; a missing directory or file is a :class:`DataDirError`."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataDirError(
            f"data directory not found: {root} (build one with `prectr data build --out {root}`)"
        )
    path = root / "meta.json"
    if not path.is_file():
        raise DataDirError(f"{path} not found: is {root} the output of `prectr data build`?")
    meta = json.loads(path.read_text())
    train_days = meta.get("train_days")
    if not isinstance(train_days, int) or train_days < 2:
        raise DataDirError(f"{path}: train_days must be an integer >= 2 (got {train_days!r})")
    fingerprint = str(meta.get("fingerprint") or meta.get("data_fingerprint") or "")
    if not fingerprint:
        raise DataDirError(f"{path} has no 'fingerprint'; rebuild the data with `prectr data build`")
    return DataMeta(root, train_days, int(meta.get("test_day", train_days + 1)), fingerprint, meta)


def table_path(data_dir: Path, table: str) -> Path:
    """``table.parquet`` or a ``table/`` folder of parts."""
    for candidate in (data_dir / f"{table}.parquet", data_dir / table):
        if candidate.exists():
            return candidate
    raise DataDirError(f"table {table!r} not found in {data_dir} (expected {table}.parquet or {table}/)")


def read_table(data_dir: Path, table: str, columns: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Columns of one table as numpy arrays (strings as object arrays); unknown columns are an error."""
    import pyarrow.dataset as ds

    wanted = columns or tuple(TABLES[table])
    dataset = ds.dataset(str(table_path(data_dir, table)), format="parquet")
    missing = [c for c in wanted if c not in dataset.schema.names]
    if missing:
        raise DataDirError(f"table {table!r} in {data_dir} lacks columns {missing} (see data/schema.py)")
    arrow = dataset.to_table(columns=list(wanted))
    out: dict[str, np.ndarray] = {}
    for name in wanted:
        col = arrow.column(name)
        out[name] = (
            np.asarray(col.to_pylist(), dtype=object) if TABLES[table][name] == "string" else (col.to_numpy())
        )
    return out


def sql_source(data_dir: Path, table: str) -> str:
    """A DuckDB ``read_parquet(...)`` expression for one table."""
    path = table_path(data_dir, table)
    pattern = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
    return "read_parquet('{}')".format(pattern.replace("'", "''"))
