"""Evaluation metrics agree with scikit-learn (random data, ties, groups) and refuse undefined inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from model.metrics import auc, gauc, irrelevant_at_k, ndcg_at_k, rela_impr


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.mark.parametrize("tied", [False, True])
def test_auc_matches_sklearn_on_random_data_with_and_without_ties(
    rng: np.random.Generator, tied: bool
) -> None:
    for _ in range(20):
        n = int(rng.integers(2, 400))
        y = rng.integers(0, 2, n)
        y[:2] = (0, 1)
        scores = rng.integers(0, 4, n).astype(float) if tied else rng.normal(size=n) + 0.5 * y
        assert auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_auc_extremes_and_constant_scores() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    assert auc(y, y * 2.0) == 1.0
    assert auc(y, -y) == 0.0
    assert auc(y, np.zeros(6)) == 0.5
    assert auc(y.astype(bool), y.astype(np.float32)) == 1.0


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "single class"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "0/1"),
        ([0, 1], [0.1, 0.2, 0.3], "same length"),
        ([0, 1], [0.1, np.nan], "NaN"),
        ([], [], "at least one row"),
    ],
)
def test_auc_refuses_undefined_input(labels: list, scores: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        auc(np.array(labels), np.array(scores))


def test_gauc_is_the_count_weighted_mean_of_sklearn_group_aucs(rng: np.random.Generator) -> None:
    groups = rng.integers(0, 40, 3000)
    y = (rng.random(3000) < 0.2 + 0.01 * groups).astype(int)
    scores = np.round(rng.normal(size=3000) + y, 1)  # rounding creates ties
    values, weights = [], []
    for g in np.unique(groups):
        m = groups == g
        if 0 < y[m].sum() < m.sum():
            values.append(roc_auc_score(y[m], scores[m]))
            weights.append(m.sum())
    assert gauc(y, scores, groups) == pytest.approx(np.average(values, weights=weights), abs=1e-12)


def test_gauc_skips_single_class_groups_and_accepts_string_ids() -> None:
    y = np.array([1, 0, 1, 0, 1, 1, 1, 0, 0])
    s = np.array([0.9, 0.1, 0.2, 0.8, 0.5, 0.4, 0.3, 0.2, 0.1])
    g = np.array(["a", "a", "b", "b", "c", "c", "c", "d", "d"])  # c: all clicks, d: none -> skipped
    assert gauc(y, s, g) == pytest.approx((2 * 1.0 + 2 * 0.0) / 4)
    with pytest.raises(ValueError, match="no group has both"):
        gauc(y[4:], s[4:], g[4:])


def test_rela_impr_reproduces_the_papers_headline_number() -> None:
    assert rela_impr(0.7674, 0.7532) == pytest.approx(0.0561, abs=5e-5)
    assert rela_impr(0.7532, 0.7532) == 0.0
    with pytest.raises(ValueError, match="0.5"):
        rela_impr(0.7, 0.5)


@pytest.mark.parametrize("k", [1, 3, 5, 10, 12])
def test_ndcg_matches_sklearn_with_exponential_gains_and_ties(rng: np.random.Generator, k: int) -> None:
    n_groups, size = 60, 12
    rel = rng.integers(0, 4, (n_groups, size))
    rel[:, 0] = np.maximum(rel[:, 0], 1)  # sklearn scores all-zero groups as 0; ours skips them
    scores = rng.integers(0, 5, (n_groups, size)).astype(float)
    groups = np.repeat(np.arange(n_groups), size)
    expected = ndcg_score(np.exp2(rel) - 1, scores, k=k)
    assert ndcg_at_k(rel.ravel(), scores.ravel(), groups, k=k) == pytest.approx(expected, abs=1e-12)


def test_ndcg_handles_uneven_shuffled_groups_and_skips_groups_without_gain(rng: np.random.Generator) -> None:
    sizes = rng.integers(1, 30, 50)
    groups = np.repeat(np.arange(50), sizes)
    rel = rng.integers(0, 4, groups.size)
    rel[groups == 7] = 0  # no gain: skipped
    scores = rng.normal(size=groups.size)

    def sklearn_ndcg(g: int) -> float:  # sklearn refuses single-document groups: their NDCG is 1
        m = groups == g
        return 1.0 if m.sum() == 1 else ndcg_score([np.exp2(rel[m]) - 1], [scores[m]], k=10)

    expected = np.mean([sklearn_ndcg(g) for g in range(50) if rel[groups == g].any()])
    perm = rng.permutation(groups.size)
    assert ndcg_at_k(rel[perm], scores[perm], groups[perm], k=10) == pytest.approx(expected, abs=1e-12)
    assert ndcg_at_k(rel, rel.astype(float), groups, k=10) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no group has an item with relevance > 0"):
        ndcg_at_k(np.zeros(4), np.arange(4.0), np.zeros(4))


def test_irrelevant_at_k_counts_level_zero_items_in_each_top_k() -> None:
    levels = np.array([0, 3, 0, 2, 0, 1, 3])
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.5, 0.4, 0.3])
    groups = np.array([1, 1, 1, 1, 2, 2, 3])
    # group 1 top-2: levels 0, 3 -> 1/2; group 2 (2 items < k): 0, 1 -> 1/2; group 3: 3 -> 0
    assert irrelevant_at_k(levels, scores, groups, k=2) == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    perm = np.array([6, 2, 4, 0, 5, 3, 1])
    assert irrelevant_at_k(levels[perm], scores[perm], groups[perm], k=2) == pytest.approx(1 / 3)


def test_irrelevant_at_k_averages_over_tied_orders() -> None:
    levels = np.array([0, 0, 0, 3, 3, 3])
    assert irrelevant_at_k(levels, np.zeros(6), np.zeros(6), k=2) == pytest.approx(0.5)
    assert irrelevant_at_k(levels, levels.astype(float), np.zeros(6), k=3) == 0.0
    with pytest.raises(ValueError, match="k must be >= 1"):
        irrelevant_at_k(levels, np.zeros(6), np.zeros(6), k=0)


def test_metrics_module_does_not_import_torch_or_sklearn() -> None:
    import subprocess
    import sys

    code = "import sys, model.metrics; print(any(m in sys.modules for m in ('torch', 'sklearn')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
