"""Relevance-label sources: the Home Depot CSV, or any CSV with its columns, mapped to K = 4 levels.

The simulator only needs (query, product, title, graded label) rows, so every source — the real Home Depot
file, another CSV with the same columns, or :mod:`data.synthetic` — produces one :class:`RelevanceData`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

REQUIRED_COLUMNS: tuple[str, ...] = ("id", "product_uid", "product_title", "search_term", "relevance")
HOME_DEPOT_RELATIVE = Path("..", "shared", "data", "home_depot_search_relevance", "train.csv.gz")
REPO_ROOT = Path(__file__).resolve().parent.parent

# Raw scores are means of >= 3 ratings on 1..3, so they sit on thirds (and rarely quarters). Cut points
# halfway-ish between the grid values give METHOD.md §3: <= 1.75 -> 0 (1.67 and below), 2.0 -> 1,
# 2.25 .. 2.75 -> 2, 3.0 -> 3. 2.25 joins level 2 because it is closer to 2.33 than to 2.0 in rater votes.
LEVEL_EDGES: tuple[float, float, float] = (1.84, 2.17, 2.9)


class DataSourceError(ValueError):
    """A relevance source is missing or malformed; the message names the path and the problem."""


def relevance_to_level(raw: np.ndarray | float) -> np.ndarray:
    """Map mean rater scores (1.0..3.0) to levels 0..3 with :data:`LEVEL_EDGES` (int8 array)."""
    return np.digitize(np.asarray(raw, dtype=np.float64), LEVEL_EDGES).astype(np.int8)


@dataclass(frozen=True)
class RelevanceData:
    """Row-aligned labelled (query, product) pairs; one row per pair."""

    pair_id: np.ndarray  # int64
    product_uid: np.ndarray  # int64
    product_title: np.ndarray  # object (str)
    search_term: np.ndarray  # object (str)
    relevance: np.ndarray  # float64, mean rater score 1..3
    origin: str  # human-readable description of where the rows came from
    sha256: str  # of the source file (or of the generator parameters for synthetic data)

    def __len__(self) -> int:
        return len(self.pair_id)

    @property
    def level(self) -> np.ndarray:
        return relevance_to_level(self.relevance)


def default_home_depot_path() -> Path:
    """``<repo>/../shared/data/home_depot_search_relevance/train.csv.gz``, independent of the cwd."""
    return (REPO_ROOT / HOME_DEPOT_RELATIVE).resolve()


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_relevance_csv(path: str | Path) -> RelevanceData:
    """Read a CSV (optionally ``.gz``) with :data:`REQUIRED_COLUMNS`; extra columns are ignored."""
    path = Path(path)
    if not path.is_file():
        raise DataSourceError(
            f"relevance CSV not found: {path} (expected columns {', '.join(REQUIRED_COLUMNS)})"
        )
    types = {
        "id": pa.int64(),
        "product_uid": pa.int64(),
        "product_title": pa.string(),
        "search_term": pa.string(),
        "relevance": pa.float64(),
    }
    try:
        table = pv.read_csv(
            path, convert_options=pv.ConvertOptions(column_types=types, strings_can_be_null=False)
        )
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise DataSourceError(
            f"{path}: unreadable as a relevance CSV with columns {', '.join(REQUIRED_COLUMNS)}: {exc}"
        ) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise DataSourceError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(table.column_names)}; "
            f"required {', '.join(REQUIRED_COLUMNS)}"
        )
    return _validated(table, path)


def _validated(table: pa.Table, path: Path) -> RelevanceData:
    if table.num_rows == 0:
        raise DataSourceError(f"{path}: no data rows")
    for name in REQUIRED_COLUMNS:
        nulls = table.column(name).null_count
        if nulls:
            raise DataSourceError(f"{path}: column {name} has {nulls} empty value(s)")
    rel = table.column("relevance").to_numpy()
    bad = ~((rel >= 1.0) & (rel <= 3.0))
    if bad.any():
        raise DataSourceError(
            f"{path}: column relevance must be in [1, 3]; {int(bad.sum())} row(s) are not, "
            f"e.g. {rel[bad][0]!r}"
        )
    pairs = pc.binary_join_element_wise(
        pc.cast(table.column("product_uid"), pa.string()), table.column("search_term"), "\x1f"
    )
    if pc.count_distinct(pairs).as_py() != table.num_rows:
        raise DataSourceError(f"{path}: (search_term, product_uid) pairs must be unique")
    return RelevanceData(
        pair_id=table.column("id").to_numpy(),
        product_uid=table.column("product_uid").to_numpy(),
        product_title=np.asarray(table.column("product_title").to_pylist(), dtype=object),
        search_term=np.asarray(table.column("search_term").to_pylist(), dtype=object),
        relevance=rel.astype(np.float64),
        origin=str(path),
        sha256=_file_sha256(path),
    )


def load_home_depot(path: str | Path | None = None) -> RelevanceData:
    """The Home Depot training split (METHOD.md §3); ``path`` defaults to :func:`default_home_depot_path`."""
    return load_relevance_csv(default_home_depot_path() if path is None else path)
