"""Runs the search-log simulation block by block: impressions for every request, candidates for test day.

Requests are processed in fixed-size blocks (bounded memory for the full profile); each block draws from
the same generator in a fixed order, so the output depends only on the seed and the config.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from data.catalog import Catalog, labelled_keys
from data.config import SimConfig
from data.logs import (
    SOURCE_NAMES,
    CandidateBlock,
    candidate_block,
    click_logits,
    expose,
    position_bias,
    sigmoid,
)
from data.users import Population, Requests


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def simulate_logs(
    cat: Catalog,
    cfg: SimConfig,
    pop: Population,
    req: Requests,
    rng: np.random.Generator,
    on_block: Callable[[int], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Return the ``impressions`` and ``candidates`` columns (see :mod:`data.schema`)."""
    keys = labelled_keys(cat)
    posbias = position_bias(cfg)
    impressions: list[dict[str, np.ndarray]] = []
    candidates: list[dict[str, np.ndarray]] = []
    for start in range(0, req.day.size, cfg.chunk_requests):
        rows = np.arange(start, min(start + cfg.chunk_requests, req.day.size))
        q, u = req.query[rows], req.user[rows]
        block = candidate_block(cat, q, keys, cfg, rng)
        shown = expose(block, cat, cfg, rng)
        s_uq = cat.strictness[q].astype(np.float64) * np.exp(pop.delta[u].astype(np.float64))
        logit = click_logits(block, cat, s_uq, cfg, rng)
        p_click = posbias[None, :] * sigmoid(np.take_along_axis(logit, shown, axis=1))
        click = rng.random(p_click.shape) < p_click
        k = cfg.top_k
        impressions.append(
            {
                "request_id": np.repeat(rows, k),
                "day": np.repeat(req.day[rows], k),
                "user_id": np.repeat(u, k),
                "query_id": np.repeat(q, k),
                "item_id": cat.item_id[np.take_along_axis(block.item, shown, axis=1).ravel()],
                "position": np.tile(np.arange(k), rows.size),
                "level": np.take_along_axis(block.level, shown, 1).ravel(),
                "click": click.ravel(),
                "p_click": p_click.ravel(),
            }
        )
        test = req.day[rows] == cfg.test_day
        if test.any():
            candidates.append(_coarse_view(cat, rows[test], q[test], u[test], block, logit, test, posbias[0]))
        if on_block is not None:
            on_block(rows.size)
    return _concat(impressions), _concat(candidates)


def _coarse_view(
    cat: Catalog,
    rows: np.ndarray,
    q: np.ndarray,
    u: np.ndarray,
    block: CandidateBlock,
    logit: np.ndarray,
    test: np.ndarray,
    top_bias: float,
) -> dict[str, np.ndarray]:
    """Every valid candidate of the test requests, with its click probability at position 0."""
    item = block.item[test]
    valid = item >= 0
    per_row = valid.sum(axis=1)
    out = {
        "request_id": np.repeat(rows, per_row),
        "user_id": np.repeat(u, per_row),
        "query_id": np.repeat(q, per_row),
        "item_id": cat.item_id[item[valid]],
        "level": block.level[test][valid],
        "source": SOURCE_NAMES[block.source[test][valid]],
        "p_click_true": top_bias * sigmoid(logit[test][valid]),
    }
    order = np.lexsort((out["item_id"], out["request_id"]))  # neutral order: never leaks the source
    return {k: v[order] for k, v in out.items()}
