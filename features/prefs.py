"""Relevance-preference records and the dense features built from them.

The mining job writes these records, Redis stores them, the service reads them and the model trains on
features computed by :func:`preference_features`; the service's one-row :func:`features_for_request` is
the same formula, tested bit for bit against it, so the model sees exactly what the service will look up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

NUM_LEVELS = 4
HISTORY_LEN = 10
PREF_DENSE_COLUMNS: tuple[str, ...] = (
    *(f"q_rate_l{k}" for k in range(NUM_LEVELS)),
    "q_log_exposures",
    "q_log_users",
    *(f"u_rate_l{k}" for k in range(NUM_LEVELS)),
    "u_log_activity",
    "u_is_new",
)


@dataclass(frozen=True, slots=True)
class QueryPref:
    """Cross-user preference under one normalised query (training days only)."""

    exposures: tuple[int, ...]  # per level
    clicks: tuple[int, ...]  # per level
    users: int  # distinct users who searched it


@dataclass(frozen=True, slots=True)
class UserPref:
    """One user's own relevance preference and recent history (training days only)."""

    exposures: tuple[int, ...]
    clicks: tuple[int, ...]
    activity: int  # clicks in the training window
    history_items: tuple[int, ...] = field(default=())  # stable_hash64 of item ids, most recent last
    history_levels: tuple[int, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Smoothing:
    """Beta-style smoothing of per-level click rates toward a prior rate."""

    prior_rate: float = 0.05
    strength: float = 20.0


def smoothed_rates(exposures: np.ndarray, clicks: np.ndarray, smoothing: Smoothing) -> np.ndarray:
    """(clicks + s * prior) / (exposures + s), elementwise; works on any shape."""
    exposures = np.asarray(exposures, dtype=np.float64)
    clicks = np.asarray(clicks, dtype=np.float64)
    return (clicks + smoothing.strength * smoothing.prior_rate) / (exposures + smoothing.strength)


def preference_features(
    q_exposures: np.ndarray,
    q_clicks: np.ndarray,
    q_users: np.ndarray,
    u_exposures: np.ndarray,
    u_clicks: np.ndarray,
    u_activity: np.ndarray,
    smoothing: Smoothing | None = None,
) -> np.ndarray:
    """Dense preference features in :data:`PREF_DENSE_COLUMNS` order, shape ``(N, 2K + 4)`` float32.

    Counts arrays are ``(N, K)``, scalars ``(N,)``. Missing records are zero counts: the rates then fall
    back to the prior and ``u_is_new`` is 1.
    """
    smoothing = smoothing or Smoothing()
    q_exp = np.atleast_2d(np.asarray(q_exposures, dtype=np.float64))
    u_exp = np.atleast_2d(np.asarray(u_exposures, dtype=np.float64))
    q_rate = smoothed_rates(q_exp, q_clicks, smoothing)
    u_rate = smoothed_rates(u_exp, u_clicks, smoothing)
    u_activity = np.asarray(u_activity, dtype=np.float64).reshape(-1)
    cols = [
        q_rate,
        np.log1p(q_exp.sum(axis=1))[:, None],
        np.log1p(np.asarray(q_users, dtype=np.float64).reshape(-1))[:, None],
        u_rate,
        np.log1p(u_activity)[:, None],
        (u_exp.sum(axis=1) == 0).astype(np.float64)[:, None],
    ]
    return np.concatenate(cols, axis=1).astype(np.float32)


def features_for_request(
    qpref: QueryPref | None, upref: UserPref | None, n_rows: int, smoothing: Smoothing | None = None
) -> np.ndarray:
    """Serving path: one query/user pair broadcast over ``n_rows`` candidates.

    The same formula as :func:`preference_features` for one row, in Python floats (IEEE double, as numpy
    computes it there) instead of a dozen numpy calls on 1-element arrays: ~10x cheaper per request, and
    equal to it bit for bit (tested against it on random records)."""
    s = smoothing or Smoothing()
    prior, strength = s.strength * s.prior_rate, s.strength
    q = qpref or _NO_QUERY
    u = upref or _NO_USER
    row = [
        *((c + prior) / (e + strength) for e, c in zip(q.exposures, q.clicks, strict=True)),
        math.log1p(sum(q.exposures)),
        math.log1p(q.users),
        *((c + prior) / (e + strength) for e, c in zip(u.exposures, u.clicks, strict=True)),
        math.log1p(u.activity),
        float(sum(u.exposures) == 0),
    ]
    return np.repeat(np.array([row], dtype=np.float32), n_rows, axis=0)


_NO_QUERY = QueryPref((0,) * NUM_LEVELS, (0,) * NUM_LEVELS, 0)
_NO_USER = UserPref((0,) * NUM_LEVELS, (0,) * NUM_LEVELS, 0)
