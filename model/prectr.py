"""Trainable wrappers: PRECTR / PRECTR-V2 (relevance source + :class:`PrectrHead`) and the CTR baselines.

Both take a :class:`Batch` and add the shallow position tower to the training logit only; the exportable
pieces are ``model.source`` (encoder half) and ``model.head`` (head.onnx).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from model.baselines import build_baseline
from model.config import ModelSpec
from model.ctr_heads import PositionBias, Standardize
from model.head import HeadOutput, PrectrHead


@dataclass
class Batch:
    """Row-aligned tensors of one mini-batch (see :class:`model.dataset.CtrView`)."""

    pair: torch.Tensor  # (N,) int64
    ids: torch.Tensor  # (N, 5) int64
    pref_dense: torch.Tensor  # (N, 12) float32
    hist_items: torch.Tensor  # (N, H) int64
    hist_levels: torch.Tensor  # (N, H) int64
    position: torch.Tensor  # (N,) int64
    target: torch.Tensor  # (N,) float32
    label: torch.Tensor  # (N,) int64 human level of the pair (train split), -1 if unlabelled
    lexical: torch.Tensor  # (N, 3) float32

    @classmethod
    def gather(cls, view: object, idx: np.ndarray, pair_label: np.ndarray, lexical: np.ndarray) -> Batch:
        """Rows ``idx`` of a CtrView, plus per-pair label and lexical features."""
        pair = view.pair[idx]  # type: ignore[attr-defined]
        t = torch.from_numpy
        return cls(
            t(pair),
            t(view.ids[idx]),
            t(view.pref_dense[idx]),
            t(view.hist_items[idx]),  # type: ignore[attr-defined]
            t(view.hist_levels[idx]),
            t(view.position[idx]),
            t(view.target[idx]),  # type: ignore[attr-defined]
            t(pair_label[pair].astype(np.int64)),
            t(lexical[pair]),
        )


@dataclass
class PrectrOutput:
    head: HeadOutput
    rel_vec: torch.Tensor  # (N, D)
    rel_logits: torch.Tensor  # (N, K)


class PrectrModel(nn.Module):
    """Relevance source (frozen MiniLM RSL or distilled student) + PRECTR head + training-only position tower."""

    def __init__(self, spec: ModelSpec, source: nn.Module) -> None:
        super().__init__()
        self.spec = spec
        self.source = source
        self.head = PrectrHead(spec.head)
        self.position = PositionBias()

    def fit_input_stats(self, pref_dense: torch.Tensor, lexical: torch.Tensor) -> None:
        """Standardise the head's dense preference features with training statistics."""
        self.head.base.pref_norm.fit(pref_dense)

    def set_click_prior(self, logit: float) -> None:
        self.head.set_click_prior(logit)

    def forward(self, batch: Batch, e2e: bool = False) -> PrectrOutput:
        rel_vec, rel_logits = self.source(batch.pair, e2e=e2e)  # (N, D), (N, K)
        out = self.head.components(
            rel_vec, rel_logits, batch.pref_dense, batch.ids, batch.hist_items, batch.hist_levels
        )
        return PrectrOutput(out, rel_vec, rel_logits)

    def head_on(self, rel_vec: torch.Tensor, batch: Batch, rows: torch.Tensor) -> HeadOutput:
        """Head outputs for replacement relevance vectors of ``rows`` (synthetic negatives)."""
        return self.head.components(
            rel_vec,
            self.source.classifier(rel_vec),
            batch.pref_dense[rows],
            batch.ids[rows],
            batch.hist_items[rows],
            batch.hist_levels[rows],
        )


class BaselineModel(nn.Module):
    """A baseline network over ids, history and dense = [pref_dense, lexical] + the position tower."""

    def __init__(self, spec: ModelSpec, lexical_dim: int) -> None:
        super().__init__()
        self.spec = spec
        self.net = build_baseline(spec.kind, spec.head, lexical_dim)
        self.position = PositionBias()

    def fit_input_stats(self, pref_dense: torch.Tensor, lexical: torch.Tensor) -> None:
        dense = torch.cat([pref_dense, lexical], dim=1)
        for module in self.net.modules():
            if isinstance(module, Standardize):
                module.fit(dense)

    def set_click_prior(self, logit: float) -> None:
        self.net.set_click_prior(logit)  # type: ignore[operator]

    def forward(self, batch: Batch) -> torch.Tensor:
        dense = torch.cat([batch.pref_dense, batch.lexical], dim=1)  # (N, P + L)
        return self.net(batch.ids, batch.hist_items, batch.hist_levels, dense)  # (N,) serving logit
