"""Student training, METHOD.md §2.3 (a) + (b): distil the teacher's soft labels, then SFT on human levels.

(a) KL(teacher_T || student_T) · T² at T = 2 over every pair of the soft-label file, plus an optional MSE
    between a projection of the student's pooled state and the teacher's (standardised) pooled state;
(b) cross-entropy on the train-split labelled levels (optionally class-weighted).
Both phases are early-stopped on valid macro-F1 and share one best-state tracker, so SFT is kept only if
it beats the distilled model on valid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.encoder import CrossEncoder
from model.encoder_loop import (
    EarlyStopping,
    TokenizedPairs,
    classification_metrics,
    training_batches,
    warmup_linear_schedule,
)
from model.student import predict_student


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Hinton KD: KL(softmax(t/T) || softmax(s/T)) · T², mean over rows; exactly 0 when s == t."""
    s = F.log_softmax(student_logits / temperature, dim=-1)
    t = F.log_softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature**2


def hidden_mse_loss(
    student_pooled: torch.Tensor, teacher_pooled: torch.Tensor, proj: nn.Module
) -> torch.Tensor:
    return F.mse_loss(proj(student_pooled), teacher_pooled)


@dataclass(frozen=True)
class PhaseConfig:
    epochs: int
    lr: float
    batch_size: int = 128
    weight_decay: float = 0.01


@dataclass
class PhaseData:
    """Training rows of one phase: tokens plus either teacher logits (a) or integer levels (b)."""

    tokens: TokenizedPairs
    teacher_logits: np.ndarray | None = None  # (N, K)
    teacher_hidden: np.ndarray | None = None  # (N, H) standardised
    levels: np.ndarray | None = None  # (N,)


class ValidScorer:
    """Valid macro-F1 of the student, the one early-stopping signal of both phases."""

    def __init__(self, tokens: TokenizedPairs, levels: np.ndarray) -> None:
        self.tokens, self.levels = tokens, levels

    def __call__(self, model: CrossEncoder) -> dict[str, float]:
        _, logits = predict_student(model, self.tokens)
        return classification_metrics(self.levels, logits)


def run_phase(
    model: CrossEncoder,
    data: PhaseData,
    cfg: PhaseConfig,
    scorer: ValidScorer,
    stopper: EarlyStopping,
    rng: np.random.Generator,
    *,
    temperature: float = 2.0,
    hidden_weight: float = 0.0,
    class_weights: torch.Tensor | None = None,
    advance: Callable[[int], None] | None = None,
    min_epochs: int = 1,
) -> list[dict[str, float]]:
    """One training phase; returns per-epoch ``{loss, accuracy, macro_f1}`` on valid.

    Early stopping may end the phase only after ``min_epochs``: a student trained from scratch can sit on
    the predict-the-prior plateau (flat macro-F1) for its first epochs before it starts to match text.
    """
    distil = data.teacher_logits is not None
    proj = nn.Linear(model.cfg.d_model, data.teacher_hidden.shape[1]) if hidden_weight > 0 else None
    params = list(model.parameters()) + (list(proj.parameters()) if proj is not None else [])
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-len(data.tokens) // cfg.batch_size)
    scheduler = warmup_linear_schedule(optimizer, steps)
    target = torch.from_numpy(data.teacher_logits if distil else data.levels)
    hidden = torch.from_numpy(data.teacher_hidden) if proj is not None else None
    stopper.misses, history = 0, []
    for epoch in range(cfg.epochs):
        model.train()
        total, rows = 0.0, 0
        for idx in training_batches(data.tokens.lengths, cfg.batch_size, rng):
            out = model.encode(**data.tokens.batch(idx))
            if distil:
                loss = distillation_loss(out.rel_logits, target[idx], temperature)
            else:
                loss = F.cross_entropy(out.rel_logits, target[idx], weight=class_weights)
            if proj is not None:
                loss = loss + hidden_weight * hidden_mse_loss(out.pooled, hidden[idx], proj)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            total, rows = total + loss.item() * len(idx), rows + len(idx)
            if advance is not None:
                advance(len(idx))
        metrics = {"loss": total / max(rows, 1), **scorer(model)}
        history.append(metrics)
        stopper.update(metrics["macro_f1"], model)
        if epoch + 1 >= min_epochs and stopper.should_stop:
            break
    return history


def balanced_class_weights(levels: np.ndarray, num_levels: int) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 (absent levels get weight 1)."""
    counts = np.bincount(levels, minlength=num_levels).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / num_levels, 1.0)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)
