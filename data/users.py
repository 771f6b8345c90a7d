"""Users and their search requests: heavy-tailed activity, late joiners, Zipf query choice.

Activity is a log-normal per-day request rate, so most users search a handful of times (low-active, the
cold-start population PRECTR-V2 targets) while a few search daily. A share of users joins on the test day:
they are new, with no training history at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.config import SimConfig
from data.schema import LOW_ACTIVE_CLICKS, SEGMENTS


@dataclass(frozen=True)
class Population:
    delta: np.ndarray  # (U,) float32 latent personal strictness deviation
    activity: np.ndarray  # (U,) float32 latent requests per active day
    join_day: np.ndarray  # (U,) int16 first day the user can search


@dataclass(frozen=True)
class Requests:
    """Row r is request_id r; sorted by day, so the test day is the tail."""

    day: np.ndarray  # (R,) int16, 1..D+1
    user: np.ndarray  # (R,) int64
    query: np.ndarray  # (R,) int64 query index


def _rate_scale(exposure_days: np.ndarray, target: float) -> float:
    """Scale c with sum_u E[max(1, Poisson(c * m_u))] ~= target (every user searches at least once)."""
    lo, hi = 0.0, target / max(exposure_days.sum(), 1e-12) * 4 + 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lam = mid * exposure_days
        if (lam + np.exp(-lam)).sum() < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def simulate_population(cfg: SimConfig, rng: np.random.Generator) -> Population:
    """Join days (60% from day 1, ``new_user_share`` on the test day), log-normal rates scaled to the
    expected ``n_requests``, and personal strictness deviations delta_u ~ N(0, delta_sigma)."""
    n, days = cfg.n_users, cfg.test_day
    is_new = rng.random(n) < cfg.new_user_share
    early = rng.random(n) < 0.6
    join = np.where(is_new, days, np.where(early, 1, rng.integers(1, days, size=n)))
    rate = rng.lognormal(0.0, cfg.activity_sigma, size=n)
    rate *= _rate_scale(rate * (days - join + 1), cfg.n_requests)
    delta = rng.normal(0.0, cfg.delta_sigma, size=n)
    return Population(delta.astype(np.float32), rate.astype(np.float32), join.astype(np.int16))


def simulate_requests(
    cfg: SimConfig, pop: Population, popularity: np.ndarray, rng: np.random.Generator
) -> Requests:
    """Poisson requests per (user, active day), at least one per user; queries drawn by popularity."""
    n, days = cfg.n_users, cfg.test_day
    active = np.arange(1, days + 1)[None, :] >= pop.join_day[:, None]
    counts = rng.poisson(pop.activity[:, None].astype(np.float64) * active)
    idle = np.flatnonzero(counts.sum(axis=1) == 0)
    first_day = pop.join_day[idle].astype(np.int64) - 1
    pick = first_day + (rng.random(idle.size) * (days - first_day)).astype(np.int64)
    counts[idle, pick] = 1
    cells = np.repeat(np.arange(n * days), counts.ravel())
    user, day = cells // days, cells % days + 1
    query = rng.choice(popularity.size, size=cells.size, p=popularity)
    perm = rng.permutation(cells.size)
    order = perm[np.argsort(day[perm], kind="stable")]
    return Requests(day[order].astype(np.int16), user[order].astype(np.int64), query[order].astype(np.int64))


def user_rows(
    cfg: SimConfig,
    pop: Population,
    req: Requests,
    imp_user: np.ndarray,
    imp_day: np.ndarray,
    imp_click: np.ndarray,
) -> dict[str, np.ndarray]:
    """The users table; activity counts come from the generated logs of the training days only."""
    n = cfg.n_users
    train_req = np.bincount(req.user[req.day <= cfg.train_days], minlength=n)
    in_train = imp_day <= cfg.train_days
    train_clicks = np.bincount(imp_user[in_train], weights=imp_click[in_train], minlength=n).astype(np.int64)
    segment = np.where(
        train_req == 0, SEGMENTS[0], np.where(train_clicks < LOW_ACTIVE_CLICKS, SEGMENTS[1], SEGMENTS[2])
    ).astype(object)
    return {
        "user_id": np.arange(n, dtype=np.int64),
        "delta": pop.delta,
        "activity": pop.activity,
        "train_requests": train_req.astype(np.int32),
        "train_clicks": train_clicks.astype(np.int32),
        "segment": segment,
    }
