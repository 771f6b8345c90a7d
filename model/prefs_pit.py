"""Point-in-time preference features: a row of day d sees preferences mined from days 1..d-1 only.

Training and serving share one code path: the counts come from ``preference_cache.mining.mine_preferences``
(the records the service publishes), the dense features from ``features.prefs.preference_features`` (via
``MinedPrefs.features``), and the history inputs from ``features.head_inputs.bucket_of_hash64``. A test-day
row sees days 1..D, exactly what the service would look up.

The mining call is ``mine_preferences(data_dir, until_day=d - 1)``: the same records, cut at a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from features.head_inputs import bucket_of_hash64
from features.prefs import PREF_DENSE_COLUMNS
from model.tables import DataDirError

if TYPE_CHECKING:
    from preference_cache.mined import MinedPrefs


@dataclass(frozen=True)
class PrefInputs:
    """Row-aligned head inputs derived from mined preferences."""

    pref_dense: np.ndarray  # (N, 12) float32, features.prefs.PREF_DENSE_COLUMNS
    hist_items: np.ndarray  # (N, H) int64 item buckets, 0 = padding
    hist_levels: np.ndarray  # (N, H) int64 level + 1, 0 = padding


def mine_preferences_until_day(data_dir: Path, day: int, history_len: int) -> MinedPrefs:
    """Mined preferences of days 1..``day`` (same semantics as the service's records)."""
    from preference_cache.mining import mine_preferences

    if day < 1:
        raise ValueError(f"cannot mine preferences before day 1 (asked for days 1..{day})")
    return mine_preferences(data_dir, history_len=history_len, threads=2, until_day=int(day))


def pref_inputs(
    mined: MinedPrefs, query_norm: np.ndarray, user_id: np.ndarray, item_buckets: int
) -> PrefInputs:
    """Dense preference features and history inputs for rows (query_norm, user_id)."""
    dense = mined.features(np.asarray(query_norm, dtype=object), np.asarray(user_id, dtype=np.int64))
    users = mined.user_arrays(np.asarray(user_id, dtype=np.int64))
    hist_items = bucket_of_hash64(users.history_items, item_buckets)  # hash 0 (padding) stays 0
    hist_levels = np.where(users.history_levels < 0, 0, users.history_levels + 1).astype(np.int64)
    return PrefInputs(dense.astype(np.float32), hist_items.astype(np.int64), hist_levels)


def point_in_time_inputs(
    data_dir: Path,
    day: np.ndarray,
    query_norm: np.ndarray,
    user_id: np.ndarray,
    item_buckets: int,
    history_len: int,
    cache: dict[int, MinedPrefs] | None = None,
) -> PrefInputs:
    """Inputs for rows of several days, each day seeing only the preferences mined before it."""
    days = np.unique(day)
    if days.size and days.min() < 2:
        raise DataDirError("rows of day 1 have no earlier days to mine preferences from; start at day 2")
    n = len(day)
    out = PrefInputs(
        np.zeros((n, len(PREF_DENSE_COLUMNS)), np.float32),
        np.zeros((n, history_len), np.int64),
        np.zeros((n, history_len), np.int64),
    )
    cache = {} if cache is None else cache
    for d in days.tolist():
        if d - 1 not in cache:
            cache[d - 1] = mine_preferences_until_day(data_dir, d - 1, history_len)
        rows = np.flatnonzero(day == d)
        part = pref_inputs(cache[d - 1], query_norm[rows], user_id[rows], item_buckets)
        out.pref_dense[rows], out.hist_items[rows], out.hist_levels[rows] = (
            part.pref_dense,
            part.hist_items,
            part.hist_levels,
        )
    return out
