"""V2 exposure-bias correction: synthetic hard negatives made from high-level exposed samples.

Logged impressions are mostly relevant (the production ranker chose them); coarse ranking scores a far
broader candidate set. For each anchor at level >= ``min_level``, Gaussian noise (sigma = eta * batch std,
per dimension) is added to its relevance vector; the frozen stage-1 RSL classifier relabels the corrupted
vector, and the label is forced strictly below the anchor's. Training only: the synthetic sample has no
click label, it only enters the pairwise loss in :func:`model.losses.pairwise_debias`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class SyntheticNegatives:
    anchor: torch.Tensor  # (P,) row index of the anchor in the batch
    rel_vec: torch.Tensor  # (P, D) corrupted relevance vector
    level: torch.Tensor  # (P,) reconstructed level, < anchor level
    level_gap: torch.Tensor  # (P,) anchor level - reconstructed level, >= 1


def anchor_levels(human_level: torch.Tensor, frozen_logits: torch.Tensor) -> torch.Tensor:
    """Level of each exposed row: the human label where known (>= 0), else the frozen RSL's argmax."""
    return torch.where(human_level >= 0, human_level.long(), frozen_logits.argmax(dim=1))


@torch.no_grad()
def _relabel(classify_frozen: Callable[[torch.Tensor], torch.Tensor], noisy: torch.Tensor) -> torch.Tensor:
    return classify_frozen(noisy).argmax(dim=1)


def synthesize_hard_negatives(
    rel_vec: torch.Tensor,
    level: torch.Tensor,
    classify_frozen: Callable[[torch.Tensor], torch.Tensor],
    eta: float = 1.0,
    min_level: int = 2,
    generator: torch.Generator | None = None,
    max_anchors: int | None = None,
) -> SyntheticNegatives:
    """rel_vec ``(N, D)``, level ``(N,)`` -> one corrupted twin per anchor with level < its anchor's.

    The noise is detached from the scale estimate but the corrupted vector keeps the anchor's graph, so an
    end-to-end encoder also learns from the pairwise loss.
    """
    anchor = torch.nonzero(level >= min_level, as_tuple=False).squeeze(1)  # (P,)
    if max_anchors is not None and anchor.numel() > max_anchors:
        keep = torch.randperm(anchor.numel(), generator=generator)[:max_anchors]
        anchor = anchor[keep.sort().values]
    sigma = eta * rel_vec.detach().std(dim=0, unbiased=False) if rel_vec.shape[0] > 1 else torch.zeros(1)
    base = rel_vec[anchor]  # (P, D)
    noise = torch.randn(base.shape, generator=generator, dtype=base.dtype) * sigma
    noisy = base + noise
    relabelled = _relabel(classify_frozen, noisy.detach())  # (P,)
    anchor_level = level[anchor]
    synth_level = torch.minimum(relabelled, anchor_level - 1)
    return SyntheticNegatives(anchor, noisy, synth_level, anchor_level - synth_level)
