"""Training and evaluation views built from a data directory, with point-in-time preference features.

- ``train``: exposed impressions of the last ``ctr_days`` training days; a row of day d sees preferences
  mined from days 1..d-1 (its own click and anything later are invisible).
- ``test``: exposed impressions of day D+1 with preferences of days 1..D (what the service would see).
- ``coarse``: every candidate of (a sample of) the test-day requests; target = true click probability.
- relevance: labelled pairs of the train split (stage 1) and of the test split (relevance NDCG@10).

Every view points into one :class:`PairTable` of distinct (normalised query, item) pairs, so text features
are computed once per pair whatever the view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from features.head_inputs import id_matrix
from model.log_rows import fetch_rows
from model.prefs_pit import point_in_time_inputs
from model.tables import DataDirError, DataMeta, read_meta, read_table


@dataclass(frozen=True)
class ViewSpec:
    """How much of the data to use (profiles trade fidelity for time)."""

    ctr_days: int = 3  # last training days used as CTR training rows
    max_train_rows: int | None = None
    max_coarse_requests: int | None = 2_000
    max_test_requests: int | None = None  # exposed test-day requests kept for AUC / GAUC
    history_len: int = 10
    seed: int = 0  # sampling of rows/requests; fixed across model seeds so every model sees the same rows


@dataclass
class PairTable:
    """Distinct (normalised query, item) pairs and their texts."""

    query_norm: np.ndarray  # (P,) object
    item_id: np.ndarray  # (P,) int64
    title: np.ndarray  # (P,) object
    label: np.ndarray  # (P,) int8: human level where labelled in the train split, else -1

    def __len__(self) -> int:
        return len(self.item_id)


@dataclass
class CtrView:
    """Row-aligned model inputs and evaluation fields of one view."""

    name: str
    pair: np.ndarray  # (N,) int64 index into PairTable
    ids: np.ndarray  # (N, 5) int64
    pref_dense: np.ndarray  # (N, 12) float32
    hist_items: np.ndarray  # (N, H) int64
    hist_levels: np.ndarray  # (N, H) int64
    position: np.ndarray  # (N,) int64, training only
    target: np.ndarray  # (N,) float32: click (0/1) or true click probability (coarse view)
    group: np.ndarray  # (N,) int64: user id (GAUC) or request id (ranking metrics)
    request: np.ndarray  # (N,) int64
    level: np.ndarray  # (N,) int8 true level (evaluation only; never a feature)
    segment: np.ndarray  # (N,) object: new / low / active

    def __len__(self) -> int:
        return len(self.pair)


@dataclass
class RelevanceView:
    pair: np.ndarray  # (M,) int64
    level: np.ndarray  # (M,) int8
    group: np.ndarray  # (M,) int64 query code (for NDCG@10 per query)


@dataclass
class Dataset:
    meta: DataMeta
    pairs: PairTable
    views: dict[str, CtrView]
    rel_train: RelevanceView
    rel_test: RelevanceView
    stats: dict[str, float] = field(default_factory=dict)


def load_dataset(data_dir: str | Path, spec: ViewSpec, buckets: dict[str, int]) -> Dataset:
    """Build every view of ``data_dir`` (see the module docstring)."""
    meta = read_meta(data_dir)
    data = meta.root
    raw = fetch_rows(meta, spec)
    train, test, coarse, relevance, first = raw.train, raw.test, raw.coarse, raw.relevance, raw.first_day
    d = meta.train_days
    if not len(train["request_id"]) or not len(test["request_id"]):
        raise DataDirError(
            f"{data}: no impressions on training days {first}..{d} or test day {meta.test_day}"
        )

    pairs, codes = _pair_table(data, [train, test, coarse, relevance])
    views = {}
    cache: dict = {}
    for name, rows, code in (
        ("train", train, codes[0]),
        ("test", test, codes[1]),
        ("coarse", coarse, codes[2]),
    ):
        views[name] = _view(name, rows, code, data, buckets, spec.history_len, cache)
    is_train = relevance["split"] == "train"
    rel_code = codes[3]
    qcode = np.unique(relevance["query_norm"], return_inverse=True)[1].reshape(-1)
    rel_train = RelevanceView(
        rel_code[is_train], relevance["level"][is_train].astype(np.int8), qcode[is_train]
    )
    rel_test = RelevanceView(
        rel_code[~is_train], relevance["level"][~is_train].astype(np.int8), qcode[~is_train]
    )
    pairs.label[rel_train.pair] = rel_train.level
    stats = {f"{k}_rows": float(len(v)) for k, v in views.items()} | {
        "pairs": float(len(pairs)),
        "ctr_first_day": float(first),
    }
    return Dataset(meta, pairs, views, rel_train, rel_test, stats)


def _pair_table(data: Path, parts: list[dict[str, np.ndarray]]) -> tuple[PairTable, list[np.ndarray]]:
    """Distinct (query_norm, item_id) over all parts, and each part's row -> pair index."""
    norms = np.concatenate([p["query_norm"] for p in parts])
    items = np.concatenate([p["item_id"].astype(np.int64) for p in parts])
    _, qinv = np.unique(norms, return_inverse=True)
    key = qinv.reshape(-1).astype(np.int64) * (int(items.max()) + 1) + items
    ukey, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    item_tab = read_table(data, "items", ("item_id", "title"))
    order = np.argsort(item_tab["item_id"])
    pos = np.searchsorted(item_tab["item_id"][order], items[first])
    titles = item_tab["title"][order][pos]
    table = PairTable(norms[first], items[first], titles, np.full(len(ukey), -1, dtype=np.int8))
    bounds = np.cumsum([0] + [len(p["item_id"]) for p in parts])
    inverse = inverse.reshape(-1)
    return table, [inverse[bounds[i] : bounds[i + 1]] for i in range(len(parts))]


def _view(
    name: str,
    rows: dict[str, np.ndarray],
    pair: np.ndarray,
    data: Path,
    buckets: dict[str, int],
    history_len: int,
    cache: dict,
) -> CtrView:
    prefs = point_in_time_inputs(
        data,
        rows["day"].astype(np.int64),
        rows["query_norm"],
        rows["user_id"],
        buckets["item"],
        history_len,
        cache,
    )
    ids = id_matrix(
        rows["user_id"],
        rows["item_id"],
        rows["query_norm"],
        rows["price_bucket"],
        rows["pop_bucket"],
        buckets,
    )
    group = rows["user_id"] if name == "test" else rows["request_id"]
    return CtrView(
        name,
        pair.astype(np.int64),
        ids,
        prefs.pref_dense,
        prefs.hist_items,
        prefs.hist_levels,
        rows["position"].astype(np.int64),
        rows["target"].astype(np.float32),
        group.astype(np.int64),
        rows["request_id"].astype(np.int64),
        rows["level"].astype(np.int8),
        rows["segment"],
    )
