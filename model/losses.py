"""Training losses. Every model's ``forward`` returns outputs only; the objectives live here.

V2 objective: L = BCE(click, y_hat) + 0.1 L_sc + 0.1 L_debias + 0.01 L_bal (weights in LossConfig).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def click_bce(logit: torch.Tensor, click: torch.Tensor) -> torch.Tensor:
    """``(N,), (N,) -> ()`` binary cross-entropy on the (position-corrected) training logit."""
    return nn.functional.binary_cross_entropy_with_logits(logit, click.float())


def relevance_ce(rel_logits: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """Stage-1 RSL loss: ``(N, K), (N,) -> ()`` cross-entropy to the human level."""
    return nn.functional.cross_entropy(rel_logits, level.long())


def semantic_consistency(
    rel_logits: torch.Tensor, human_level: torch.Tensor, frozen_logits: torch.Tensor
) -> torch.Tensor:
    """L_sc: CE to the human level where labelled (``>= 0``), else KL(frozen stage-1 RSL || current RSL).

    rel_logits / frozen_logits ``(N, K)``, human_level ``(N,)`` with -1 where unlabelled. Averaged over rows.
    """
    log_p = torch.log_softmax(rel_logits, dim=1)
    labelled = human_level >= 0
    ce = -log_p.gather(1, human_level.clamp_min(0).long().unsqueeze(1)).squeeze(1)  # (N,)
    log_q = torch.log_softmax(frozen_logits.detach(), dim=1)
    kl = (log_q.exp() * (log_q - log_p)).sum(dim=1)  # (N,)
    return torch.where(labelled, ce, kl).mean()


def load_balance(gate: torch.Tensor) -> torch.Tensor:
    """L_bal = E * sum_e f_e^2 - 1 with f_e the mean gate probability of expert e: 0 when usage is uniform."""
    usage = gate.mean(dim=0)  # (E,)
    return gate.shape[1] * (usage * usage).sum() - 1.0


def pairwise_debias(
    s_real: torch.Tensor,
    s_synth: torch.Tensor,
    level_gap: torch.Tensor,
    margin: float = 2.0,
    keep: float = 0.7,
) -> torch.Tensor:
    """Rank each real sample above its corrupted twin: softplus(-min(s+ - s~, m)), minus its floor.

    Subtracting softplus(-m) makes a pair that already clears the margin cost exactly zero (the gradient is
    the same as the paper's form). Dynamic truncation keeps the hardest ``keep`` fraction of pairs; pairs are
    weighted by their level gap (normalised to mean 1 over the kept pairs).
    """
    if s_real.numel() == 0:
        return s_real.sum() * 0.0
    diff = torch.clamp(s_real - s_synth, max=margin)  # (P,)
    loss = nn.functional.softplus(-diff) - math.log1p(math.exp(-margin))  # (P,) >= 0
    n_keep = max(1, math.ceil(keep * loss.numel()))
    kept, idx = torch.topk(loss, n_keep)  # hardest pairs
    w = level_gap[idx].float()
    return (kept * w).sum() / w.sum().clamp_min(1e-6)
