"""Evaluation metrics of the results table (METHOD.md §5), numpy only and vectorised over groups.

Ties are handled the way scikit-learn does: AUC gives tied scores half credit (average ranks), and the
ranking metrics average over every order of a tied block (tie-averaged discounts), so a constant scorer
gets the expected value of a random order, never an optimistic one.
"""

from __future__ import annotations

import numpy as np


def _vectors(**arrays: np.ndarray) -> dict[str, np.ndarray]:
    out = {name: np.asarray(a).reshape(-1) for name, a in arrays.items()}
    sizes = {name: a.size for name, a in out.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"arrays must have the same length, got {sizes}")
    if next(iter(sizes.values())) == 0:
        raise ValueError("metrics need at least one row")
    for name, a in out.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    return out


def _binary(labels: np.ndarray) -> np.ndarray:
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    return labels.astype(np.float64)


def _group_codes(groups: np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    if groups is None:
        return np.zeros(n, dtype=np.int64), 1
    uniq, codes = np.unique(groups, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), uniq.size


def _blocks(codes: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort rows by (group, key) and return (order, 0-based position within group, tie-block id)."""
    order = np.argsort(keys, kind="stable") if not codes.any() else np.lexsort((keys, codes))
    c, k = codes[order], keys[order]
    idx = np.arange(c.size)
    group_start = np.r_[True, c[1:] != c[:-1]]
    pos = idx - np.maximum.accumulate(np.where(group_start, idx, 0))
    block = np.cumsum(group_start | np.r_[True, k[1:] != k[:-1]]) - 1
    return order, pos, block


def _tie_mean(values: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Each row gets the mean of ``values`` over its tie block (the expectation over tied orders)."""
    return (np.bincount(block, weights=values) / np.bincount(block))[block]


def _group_auc(
    labels: np.ndarray, scores: np.ndarray, codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group Mann-Whitney AUC with average ranks; returns (auc, n_pos, n_neg) per group."""
    order, pos, block = _blocks(codes, scores)
    ranks = _tie_mean(pos + 1.0, block)
    y, c = labels[order], codes[order]
    n_pos = np.bincount(c, weights=y, minlength=n_groups)
    n_neg = np.bincount(c, minlength=n_groups) - n_pos
    rank_sum = np.bincount(c, weights=ranks * y, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return auc, n_pos, n_neg


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (probability a random positive outscores a random negative; ties count one half)."""
    v = _vectors(labels=labels, scores=scores)
    y = _binary(v["labels"])
    value, n_pos, n_neg = _group_auc(y, v["scores"].astype(np.float64), *_group_codes(None, y.size))
    if n_pos[0] == 0 or n_neg[0] == 0:
        raise ValueError("AUC is undefined when labels hold a single class")
    return float(value[0])


def gauc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> float:
    """Group AUC: per-group AUC weighted by the group's row count; single-class groups are skipped."""
    v = _vectors(labels=labels, scores=scores, groups=groups)
    y = _binary(v["labels"])
    value, n_pos, n_neg = _group_auc(y, v["scores"].astype(np.float64), *_group_codes(v["groups"], y.size))
    usable = (n_pos > 0) & (n_neg > 0)
    if not usable.any():
        raise ValueError("GAUC is undefined: no group has both a positive and a negative label")
    weight = (n_pos + n_neg)[usable]
    return float(np.sum(value[usable] * weight) / weight.sum())


def rela_impr(auc_value: float, base_auc: float) -> float:
    """RelaImpr = (AUC - 0.5) / (AUC_base - 0.5) - 1 (the papers' relative improvement over a base model)."""
    if base_auc == 0.5:
        raise ValueError("RelaImpr is undefined for a base AUC of exactly 0.5")
    return (auc_value - 0.5) / (base_auc - 0.5) - 1.0


def _topk_weights(
    scores: np.ndarray, codes: np.ndarray, k: int, discount: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per row (in sorted order): tie-averaged discount 1/log2(pos+2), or top-k membership, cut at k."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    order, pos, block = _blocks(codes, -scores)
    inside = pos < k
    base = np.where(inside, 1.0 / np.log2(pos + 2.0), 0.0) if discount else inside.astype(np.float64)
    return order, _tie_mean(base, block)


def ndcg_at_k(relevance: np.ndarray, scores: np.ndarray, groups: np.ndarray, k: int = 10) -> float:
    """Mean over groups of NDCG@k with graded gains 2^rel - 1; groups without any gain are skipped."""
    v = _vectors(relevance=relevance, scores=scores, groups=groups)
    rel = v["relevance"].astype(np.float64)
    if (rel < 0).any():
        raise ValueError("relevance levels must be >= 0")
    codes, n_groups = _group_codes(v["groups"], rel.size)
    gain = np.exp2(rel) - 1.0
    order, disc = _topk_weights(v["scores"].astype(np.float64), codes, k, discount=True)
    dcg = np.bincount(codes[order], weights=gain[order] * disc, minlength=n_groups)
    ideal_order, ideal_disc = _topk_weights(rel, codes, k, discount=True)
    idcg = np.bincount(codes[ideal_order], weights=gain[ideal_order] * ideal_disc, minlength=n_groups)
    usable = idcg > 0
    if not usable.any():
        raise ValueError("NDCG is undefined: no group has an item with relevance > 0")
    return float(np.mean(dcg[usable] / idcg[usable]))


def irrelevant_at_k(levels: np.ndarray, scores: np.ndarray, groups: np.ndarray, k: int = 10) -> float:
    """Mean over groups of the share of level-0 items among the group's top-k by score."""
    v = _vectors(levels=levels, scores=scores, groups=groups)
    codes, n_groups = _group_codes(v["groups"], v["levels"].size)
    order, member = _topk_weights(v["scores"].astype(np.float64), codes, k, discount=False)
    irrelevant = (v["levels"][order] == 0).astype(np.float64)
    shown = np.minimum(np.bincount(codes, minlength=n_groups), k)
    return float(np.mean(np.bincount(codes[order], weights=irrelevant * member, minlength=n_groups) / shown))
