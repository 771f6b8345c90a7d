"""Per-row preference arrays for training, from the same :class:`MinedPrefs` the service publishes.

A training row's own impression is part of the mined counts (and, if clicked, of the user's history),
so a model trained on raw lookups can read its label from the features. Pass a :class:`RowContribution`
for rows inside the mining window to subtract each row's own impression (leave-one-out); rows outside
the window (the test day, serving) need no correction because the counts never saw them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.prefs import NUM_LEVELS, Smoothing, preference_features
from preference_cache.mined import HISTORY_PAD_ITEM, HISTORY_PAD_LEVEL, MinedPrefs


@dataclass(frozen=True)
class RowContribution:
    """Each row's own impression: ``levels`` (N,) with -1 meaning "not in the window", ``clicks`` (N,)
    0/1, and optionally ``item_hash64`` (N,) (``features.head_inputs.item_hash64``) to drop the row's
    clicked item from the user's history."""

    levels: np.ndarray
    clicks: np.ndarray
    item_hash64: np.ndarray | None = None


@dataclass(frozen=True)
class QueryArrays:
    exposures: np.ndarray  # (N, K) int64
    clicks: np.ndarray  # (N, K) int64
    users: np.ndarray  # (N,) int64
    found: np.ndarray  # (N,) bool: the query has a record (else zeros -> features fall back to the prior)


@dataclass(frozen=True)
class UserArrays:
    exposures: np.ndarray  # (N, K) int64
    clicks: np.ndarray  # (N, K) int64
    activity: np.ndarray  # (N,) int64
    history_items: np.ndarray  # (N, L) int64 item hash64, 0 = padding, most recent last
    history_levels: np.ndarray  # (N, L) int64 level, -1 = padding (level + 1 is the head's input)
    found: np.ndarray  # (N,) bool


def query_arrays(
    mined: MinedPrefs, query_norms: np.ndarray, exclude: RowContribution | None = None
) -> QueryArrays:
    """Counts aligned to ``query_norms`` (already normalised, e.g. ``queries.query_norm``)."""
    rows = lookup_rows(mined.query_norm, np.asarray(query_norms, dtype=object))
    found = rows >= 0
    exposures, clicks = _gather(mined.q_exposures, rows), _gather(mined.q_clicks, rows)
    if exclude is not None:
        _subtract_own(exposures, clicks, found, exclude)
    return QueryArrays(exposures, clicks, np.where(found, mined.q_users[np.maximum(rows, 0)], 0), found)


def user_arrays(
    mined: MinedPrefs, user_ids: np.ndarray, exclude: RowContribution | None = None
) -> UserArrays:
    """Counts and padded history aligned to ``user_ids`` (int64)."""
    rows = lookup_rows(mined.user_id, np.asarray(user_ids, dtype=np.int64))
    found = rows >= 0
    exposures, clicks = _gather(mined.u_exposures, rows), _gather(mined.u_clicks, rows)
    activity = np.where(found, mined.u_activity[np.maximum(rows, 0)], 0)
    items = _gather(mined.u_history_items, rows, HISTORY_PAD_ITEM)
    levels = _gather(mined.u_history_levels.astype(np.int64), rows, HISTORY_PAD_LEVEL)
    if exclude is not None:
        own_click = _subtract_own(exposures, clicks, found, exclude)
        activity = activity - own_click
        if exclude.item_hash64 is not None:
            items, levels = _drop_from_history(items, levels, np.asarray(exclude.item_hash64), own_click)
    return UserArrays(exposures, clicks, activity, items, levels, found)


def preference_matrix(
    mined: MinedPrefs,
    query_norms: np.ndarray,
    user_ids: np.ndarray,
    smoothing: Smoothing | None = None,
    exclude: RowContribution | None = None,
) -> np.ndarray:
    """``features.prefs.preference_features`` for every row: ``(N, 2K + 4)`` float32."""
    q, u = query_arrays(mined, query_norms, exclude), user_arrays(mined, user_ids, exclude)
    return preference_features(q.exposures, q.clicks, q.users, u.exposures, u.clicks, u.activity, smoothing)


def lookup_rows(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row index in ``keys`` of every element of ``wanted`` (-1 when absent); vectorised with Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(wanted) == 0:
        return np.zeros(0, dtype=np.int64)
    kind = pa.string() if keys.dtype == object else pa.int64()
    value_set = pa.array(keys.tolist() if kind == pa.string() else keys, type=kind)
    values = pa.array(wanted.tolist() if kind == pa.string() else wanted, type=kind)
    return pc.index_in(values, value_set=value_set).fill_null(-1).to_numpy().astype(np.int64)


def _gather(matrix: np.ndarray, rows: np.ndarray, fill: int = 0) -> np.ndarray:
    out = matrix[np.maximum(rows, 0)].astype(np.int64)
    out[rows < 0] = fill
    return out


def _subtract_own(
    exposures: np.ndarray, clicks: np.ndarray, found: np.ndarray, own: RowContribution
) -> np.ndarray:
    """Subtract each row's own impression in place; returns the (N,) click actually subtracted."""
    levels = np.asarray(own.levels, dtype=np.int64)
    own_click = np.asarray(own.clicks, dtype=np.int64)
    if levels.shape != found.shape or own_click.shape != found.shape:
        raise ValueError(f"RowContribution has {levels.shape} levels for {found.shape} rows")
    if ((levels >= NUM_LEVELS) | (levels < -1)).any():
        raise ValueError(f"RowContribution.levels must lie in -1..{NUM_LEVELS - 1}")
    hit = found & (levels >= 0)
    idx = np.flatnonzero(hit)
    exposures[idx, levels[idx]] = np.maximum(exposures[idx, levels[idx]] - 1, 0)
    clicks[idx, levels[idx]] = np.maximum(clicks[idx, levels[idx]] - own_click[idx], 0)
    return np.where(hit, own_click, 0)


def _drop_from_history(
    items: np.ndarray, levels: np.ndarray, own_item: np.ndarray, own_click: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Remove the row's clicked item from its user's history and re-left-pad (order kept)."""
    keep = (levels != HISTORY_PAD_LEVEL) & ~((items == own_item[:, None]) & (own_click[:, None] == 1))
    order = np.argsort(keep, axis=1, kind="stable")  # dropped/padding first, kept in original order last
    items, levels = np.take_along_axis(items, order, 1), np.take_along_axis(levels, order, 1)
    keep = np.take_along_axis(keep, order, 1)
    return np.where(keep, items, HISTORY_PAD_ITEM), np.where(keep, levels, HISTORY_PAD_LEVEL)
