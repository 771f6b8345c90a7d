"""Candidates, the logging policy and clicks for a block of requests (METHOD.md §4), fully vectorised.

Each request gets a padded ``(B, W)`` candidate matrix: the query's labelled products, its lexical near
misses and ``n_random`` random catalogue products (padding = -1). Near misses and random products are
level 0: they carry no human label, and the rater guidelines call a product that merely shares words with
the query irrelevant. The logging policy shows the top-k by a noisy score that strongly prefers high levels
(exposure bias); clicks follow P = posbias(rank) * sigmoid(b + s_uq * g(level) + a_i + noise). The same
latent draw serves the exposed impression and the coarse-ranking view, so both views agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.catalog import Catalog, pair_keys
from data.config import SimConfig
from data.schema import CANDIDATE_SOURCES

SOURCE_NAMES = np.array(CANDIDATE_SOURCES, dtype=object)


@dataclass(frozen=True)
class CandidateBlock:
    """Dense candidates of B requests: labelled columns first, then near misses, then random draws."""

    item: np.ndarray  # (B, W) item index, -1 = padding
    level: np.ndarray  # (B, W) int8
    source: np.ndarray  # (B, W) int8 index into SOURCE_NAMES, -1 = padding


def _gather(ptr: np.ndarray, values: np.ndarray, q: np.ndarray, width: int, fill: int) -> np.ndarray:
    """Row b holds values[ptr[q_b] : ptr[q_b + 1]] left-aligned, padded with ``fill`` (CSR -> dense)."""
    j = np.arange(width)[None, :]
    n = (ptr[q + 1] - ptr[q])[:, None]
    idx = np.minimum(ptr[q][:, None] + j, max(values.size - 1, 0))
    return np.where(j < n, values[idx] if values.size else fill, fill)


def candidate_block(
    cat: Catalog, q: np.ndarray, fixed_keys: np.ndarray, cfg: SimConfig, rng: np.random.Generator
) -> CandidateBlock:
    """Candidates of the requests with query indices ``q``; random draws that repeat within a request or
    hit a labelled / near-miss pair of the query (``fixed_keys``) are dropped, so levels are unambiguous."""
    lab_w = int(np.diff(cat.lab_ptr).max())
    lab_item = _gather(cat.lab_ptr, cat.lab_item, q, lab_w, -1)
    lab_level = _gather(cat.lab_ptr, cat.lab_level.astype(np.int64), q, lab_w, -1)
    near_item = _gather(cat.near_ptr, cat.near_item, q, cfg.n_near, -1)
    rand = np.sort(rng.integers(cat.n_items, size=(q.size, cfg.n_random)), axis=1)
    dup = np.zeros_like(rand, dtype=bool)
    dup[:, 1:] = rand[:, 1:] == rand[:, :-1]
    clash = np.isin(pair_keys(q[:, None], rand, cat.n_items), fixed_keys)
    rand = np.where(dup | clash, -1, rand)
    item = np.concatenate([lab_item, near_item, rand], axis=1)
    level = np.concatenate([lab_level, np.where(near_item >= 0, 0, -1), np.where(rand >= 0, 0, -1)], axis=1)
    source = np.concatenate(
        [np.where(lab_item >= 0, 0, -1), np.where(near_item >= 0, 1, -1), np.where(rand >= 0, 2, -1)], axis=1
    )
    if ((item >= 0).sum(axis=1) < cfg.top_k).any():
        raise ValueError(f"catalogue of {cat.n_items} items is too small for top_k={cfg.top_k} candidates")
    return CandidateBlock(item.astype(np.int64), level.astype(np.int8), source.astype(np.int8))


def expose(block: CandidateBlock, cat: Catalog, cfg: SimConfig, rng: np.random.Generator) -> np.ndarray:
    """Logging policy: (B, top_k) column indices of the shown candidates, best first."""
    pop_z = (cat.pop_bucket.astype(np.float64) - 5.5) / 2.87
    score = (
        cfg.policy_level_weight * block.level
        + cfg.policy_near_bonus * (block.source == 1)
        + cfg.policy_pop_weight * pop_z[np.maximum(block.item, 0)]
        + cfg.policy_noise * rng.standard_normal(block.item.shape)
    )
    score = np.where(block.item >= 0, score, -np.inf)
    top = np.argpartition(-score, cfg.top_k - 1, axis=1)[:, : cfg.top_k]
    order = np.argsort(-np.take_along_axis(score, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def click_logits(
    block: CandidateBlock, cat: Catalog, s_uq: np.ndarray, cfg: SimConfig, rng: np.random.Generator
) -> np.ndarray:
    """(B, W) latent click logits b + s_uq * g(level) + a_i + noise, position excluded."""
    gain = np.asarray(cfg.level_gain, dtype=np.float64)[np.maximum(block.level, 0)]
    appeal = cat.appeal.astype(np.float64)[np.maximum(block.item, 0)]
    noise = cfg.click_noise * rng.standard_normal(block.item.shape)
    return cfg.click_bias + s_uq[:, None] * gain + appeal + noise


def position_bias(cfg: SimConfig) -> np.ndarray:
    """posbias(rank) = (1 + rank) ** -decay for ranks 0..top_k-1; 1 at the top."""
    return (1.0 + np.arange(cfg.top_k)) ** -cfg.position_decay


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Overflow-free logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))
