"""``MinedPrefs``: the mined per-query and per-user preference arrays, one object for every consumer.

The publisher turns rows into Redis records, the in-process store serves them directly, and training
gets per-row count matrices from :mod:`preference_cache.training` — all from these arrays, so the model
trains on exactly what the service will look up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from features.prefs import NUM_LEVELS, QueryPref, Smoothing, UserPref

if TYPE_CHECKING:
    from preference_cache.training import QueryArrays, RowContribution, UserArrays

FORMAT_VERSION = 1
HISTORY_PAD_ITEM = 0  # history_items padding (matches features.head_inputs: hash 0 -> bucket 0)
HISTORY_PAD_LEVEL = -1  # history_levels padding (level + 1 == 0 is the head's padding level)


@dataclass(frozen=True, eq=False)
class MinedPrefs:
    """Per-query and per-user counts from the training days. Rows are sorted by key; ``K = NUM_LEVELS``.

    ``u_history_items`` / ``u_history_levels`` are ``(num_users, history_len)``, left-padded with
    :data:`HISTORY_PAD_ITEM` / :data:`HISTORY_PAD_LEVEL`, most recent click last; items are
    ``stable_hash64(str(item_id))``. ``source_rows`` (training impressions read) is informational and
    not part of the content hash.
    """

    query_norm: np.ndarray  # (Nq,) object: normalised query strings
    q_exposures: np.ndarray  # (Nq, K) int64
    q_clicks: np.ndarray  # (Nq, K) int64
    q_users: np.ndarray  # (Nq,) int64 distinct users
    user_id: np.ndarray  # (Nu,) int64
    u_exposures: np.ndarray  # (Nu, K) int64
    u_clicks: np.ndarray  # (Nu, K) int64
    u_activity: np.ndarray  # (Nu,) int64 clicks in the window
    u_history_items: np.ndarray  # (Nu, L) int64
    u_history_levels: np.ndarray  # (Nu, L) int8
    train_days: int
    source_rows: int = field(default=0)

    def __post_init__(self) -> None:
        nq, nu = len(self.query_norm), len(self.user_id)
        expected = {
            "q_exposures": (nq, NUM_LEVELS),
            "q_clicks": (nq, NUM_LEVELS),
            "q_users": (nq,),
            "u_exposures": (nu, NUM_LEVELS),
            "u_clicks": (nu, NUM_LEVELS),
            "u_activity": (nu,),
            "u_history_levels": self.u_history_items.shape,
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"MinedPrefs.{name} has shape {getattr(self, name).shape}, expected {shape}")
        if self.u_history_items.ndim != 2 or self.u_history_items.shape[0] != nu:
            raise ValueError(f"u_history_items must be (num_users, L), got {self.u_history_items.shape}")
        if not np.issubdtype(self.user_id.dtype, np.integer):
            raise ValueError(f"user_id must be an integer array (data/schema.py), got {self.user_id.dtype}")
        if len(set(self.query_norm.tolist())) != nq or len(np.unique(self.user_id)) != nu:
            raise ValueError("MinedPrefs has duplicate query or user keys")

    @property
    def history_len(self) -> int:
        return int(self.u_history_items.shape[1])

    @property
    def num_queries(self) -> int:
        return len(self.query_norm)

    @property
    def num_users(self) -> int:
        return len(self.user_id)

    @cached_property
    def u_history_count(self) -> np.ndarray:
        """(Nu,) number of real (non-padding) history entries per user."""
        return (self.u_history_levels != HISTORY_PAD_LEVEL).sum(axis=1).astype(np.int64)

    @cached_property
    def content_hash(self) -> str:
        """sha256 over the canonical array bytes (not file bytes), so re-mining the same data matches."""
        h = hashlib.sha256()
        header = {"format": FORMAT_VERSION, "K": NUM_LEVELS, "L": self.history_len, "D": self.train_days}
        h.update(json.dumps(header, sort_keys=True).encode())
        queries = self.query_norm.tolist()
        h.update(np.asarray([len(q) for q in queries], dtype="<i8").tobytes())
        h.update("\n".join(queries).encode("utf-8"))
        for arr in (
            self.q_exposures,
            self.q_clicks,
            self.q_users,
            self.user_id,
            self.u_exposures,
            self.u_clicks,
            self.u_activity,
            self.u_history_items,
            self.u_history_levels,
        ):
            h.update(np.ascontiguousarray(arr, dtype="<i8").tobytes())
        return h.hexdigest()

    @property
    def namespace(self) -> str:
        """Redis namespace id: a prefix of the content hash (64 bits is plenty for a handful of versions)."""
        return self.content_hash[:16]

    def query_record(self, row: int) -> QueryPref:
        return QueryPref(
            exposures=tuple(self.q_exposures[row].tolist()),
            clicks=tuple(self.q_clicks[row].tolist()),
            users=int(self.q_users[row]),
        )

    def user_record(self, row: int) -> UserPref:
        n = int(self.u_history_count[row])
        start = self.history_len - n
        return UserPref(
            exposures=tuple(self.u_exposures[row].tolist()),
            clicks=tuple(self.u_clicks[row].tolist()),
            activity=int(self.u_activity[row]),
            history_items=tuple(self.u_history_items[row, start:].tolist()),
            history_levels=tuple(self.u_history_levels[row, start:].tolist()),
        )

    def iter_query_records(self) -> Iterator[tuple[str, QueryPref]]:
        """(normalised query, record) for every query, in row order."""
        for row, query in enumerate(self.query_norm.tolist()):
            yield query, self.query_record(row)

    def iter_user_records(self) -> Iterator[tuple[str, UserPref]]:
        """(str(user_id), record) for every user; ids are strings as the service receives them."""
        for row, uid in enumerate(self.user_id.tolist()):
            yield str(uid), self.user_record(row)

    # Training-side views; see preference_cache.training for the leave-one-out option.
    def query_arrays(self, query_norms: np.ndarray, exclude: RowContribution | None = None) -> QueryArrays:
        """Per-row query counts aligned to ``query_norms`` (normalised strings); unknown -> zeros."""
        from preference_cache.training import query_arrays

        return query_arrays(self, query_norms, exclude)

    def user_arrays(self, user_ids: np.ndarray, exclude: RowContribution | None = None) -> UserArrays:
        """Per-row user counts and padded history aligned to ``user_ids``; unknown -> zeros / padding."""
        from preference_cache.training import user_arrays

        return user_arrays(self, user_ids, exclude)

    def features(
        self,
        query_norms: np.ndarray,
        user_ids: np.ndarray,
        smoothing: Smoothing | None = None,
        exclude: RowContribution | None = None,
    ) -> np.ndarray:
        """``features.prefs.preference_features`` per row, ``(N, 2K + 4)`` float32."""
        from preference_cache.training import preference_matrix

        return preference_matrix(self, query_norms, user_ids, smoothing, exclude)
