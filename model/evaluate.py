"""Scoring the evaluation views and computing the table's metrics (functions from :mod:`model.metrics`).

Serving-time scores: no position input (the position tower is training-only), preferences of days 1..D.
The coarse view's truth is the simulator's click probability at a fixed position; its AUC uses
``COARSE_DRAWS`` Bernoulli draws of that probability with a fixed seed, identical for every model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from model.dataset import CtrView, Dataset
from model.metrics import auc, gauc, irrelevant_at_k, ndcg_at_k
from model.prectr import Batch, PrectrModel
from model.text_inputs import TextInputs

COARSE_DRAWS = 5
COARSE_SEED = 20_250_101
SEGMENTS = ("new", "low", "active")


@torch.no_grad()
def predict_rows(
    model: nn.Module, view: CtrView, rows: np.ndarray, data: Dataset, text: TextInputs, chunk: int = 8192
) -> np.ndarray:
    """Serving click probability (no position input) for ``rows`` of ``view``."""
    model.eval()
    out = np.zeros(len(rows), dtype=np.float64)
    for start in range(0, len(rows), chunk):
        idx = rows[start : start + chunk]
        batch = Batch.gather(view, idx, data.pairs.label, text.lexical)
        if isinstance(model, PrectrModel):
            out[start : start + len(idx)] = model(batch).head.score.double().numpy()
        else:
            out[start : start + len(idx)] = torch.sigmoid(model(batch)).double().numpy()
    return out


def predict_view(model: nn.Module, view: CtrView, data: Dataset, text: TextInputs) -> np.ndarray:
    """Serving click probability for every row of ``view``."""
    return predict_rows(model, view, np.arange(len(view)), data, text)


@torch.no_grad()
def predict_levels(model: PrectrModel, pairs: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """``(M, K)`` P(level | pair) from the model's relevance module."""
    model.eval()
    parts = [
        torch.softmax(model.source(torch.from_numpy(pairs[s : s + chunk]))[1], dim=1).numpy()
        for s in range(0, len(pairs), chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, model.spec.head.num_levels))


def _safe(fn, *args, **kwargs) -> float:  # type: ignore[no-untyped-def]
    try:
        return float(fn(*args, **kwargs))
    except ValueError:  # a slice with a single class: undefined, reported as NaN
        return float("nan")


def coarse_labels(target: np.ndarray) -> np.ndarray:
    """``COARSE_DRAWS`` stacked click draws of the true probabilities (fixed seed)."""
    rng = np.random.default_rng(COARSE_SEED)
    return (rng.random((COARSE_DRAWS, len(target))) < target[None, :]).astype(np.int8).reshape(-1)


def evaluate(model: nn.Module, data: Dataset, text: TextInputs) -> dict[str, float]:
    """All metrics of one trained cell."""
    test, coarse = data.views["test"], data.views["coarse"]
    s_test = predict_view(model, test, data, text)
    s_coarse = predict_view(model, coarse, data, text)
    m: dict[str, float] = {
        "auc": auc(test.target, s_test),
        "gauc": gauc(test.target, s_test, test.group),
        "coarse_auc": auc(coarse_labels(coarse.target), np.tile(s_coarse, COARSE_DRAWS)),
        "coarse_ndcg10": ndcg_at_k(coarse.target, s_coarse, coarse.request, 10),
        "coarse_rel_ndcg10": ndcg_at_k(coarse.level, s_coarse, coarse.request, 10),
        "irrelevant10": irrelevant_at_k(coarse.level, s_coarse, coarse.request, 10),
    }
    for seg in SEGMENTS:
        rows = test.segment == seg
        m[f"auc_{seg}"] = _safe(auc, test.target[rows], s_test[rows]) if rows.any() else float("nan")
        m[f"gauc_{seg}"] = (
            _safe(gauc, test.target[rows], s_test[rows], test.group[rows]) if rows.any() else (float("nan"))
        )
    m["low_gauc"] = m["gauc_low"]
    m["rel_ndcg10"] = float("nan")
    if isinstance(model, PrectrModel):
        rel = data.rel_test
        probs = predict_levels(model, rel.pair)
        expected = probs @ np.arange(probs.shape[1], dtype=np.float64)
        m["rel_ndcg10"] = ndcg_at_k(rel.level, expected, rel.group, 10)
        m["rel_accuracy"] = float(np.mean(probs.argmax(1) == rel.level))
    return m
