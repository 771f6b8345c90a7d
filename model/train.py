"""Training loops: stage 1 (RSL on relevance labels), stage 2 (everything on clicks), and the baselines.

Stage 2 loss per batch (weights in :class:`model.config.LossConfig`):
    BCE(click, sigmoid(score_logit + position_bias))
  + sc     * L_sc      (CE to the human level where labelled, else KL to the frozen stage-1 RSL)
  + bal    * L_bal     (expert load balance of the incentive gate)
  + debias * L_debias  (V2: real sample above its synthetic hard negative)
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from model.config import ModelSpec
from model.dataset import Dataset
from model.debias import anchor_levels, synthesize_hard_negatives
from model.losses import click_bce, load_balance, pairwise_debias, relevance_ce, semantic_consistency
from model.prectr import Batch, PrectrModel
from model.relevance import FrozenMiniLmSource, StudentSource
from model.text_inputs import TextInputs
from model.train_setup import build_model, frozen_rsl, init_from_data, optimizers, set_sparse

__all__ = ["TrainLog", "build_model", "fit"]

Advance = Callable[[int], None]


@dataclass
class TrainLog:
    bce: list[float] = field(default_factory=list)  # mean click BCE per logging window, in order
    steps: int = 0
    e2e_steps: int = 0
    rsl_loss: list[float] = field(default_factory=list)
    valid_auc: list[float] = field(default_factory=list)  # after each stage-2 epoch
    best_epoch: int = 0
    e2e_valid_auc: float | None = None  # held-out AUC after the end-to-end steps
    e2e_kept: bool | None = None  # whether the end-to-end result replaced the best epoch
    seconds: float = 0.0


def fit_rsl(model: PrectrModel, data: Dataset, log: TrainLog, advance: Advance) -> None:
    """Stage 1: the frozen-embedding RSL learns the human levels of the train split."""
    cfg, rel = model.spec.train, data.rel_train
    params = list(model.source.parameters())
    opt = torch.optim.Adam(params, lr=cfg.rsl_lr)
    rng = np.random.default_rng(cfg.seed)
    model.train()
    for _ in range(cfg.rsl_epochs):
        total = 0.0
        for idx in np.array_split(rng.permutation(len(rel.pair)), max(1, len(rel.pair) // 256)):
            _, logits = model.source(torch.from_numpy(rel.pair[idx]))
            loss = relevance_ce(logits, torch.from_numpy(rel.level[idx].astype(np.int64)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            advance(len(idx))
        log.rsl_loss.append(total / len(rel.pair))


VALID_SEED = 7_919  # the validation requests are the same for every model and seed


def validation_rows(request: np.ndarray, share: float) -> np.ndarray:
    """Boolean mask of the rows of a fixed ``share`` of requests (held out for early stopping)."""
    uniq = np.unique(request)
    rng = np.random.default_rng(VALID_SEED)
    held = uniq[rng.random(len(uniq)) < share]
    return np.isin(request, held)


class _Stage2:
    """Stage-2 optimisation state of one cell (one object per fit)."""

    def __init__(
        self, model: nn.Module, data: Dataset, text: TextInputs, log: TrainLog, advance: Advance
    ) -> None:
        self.model, self.data, self.text, self.log, self.advance = model, data, text, log, advance
        self.spec: ModelSpec = model.spec  # type: ignore[assignment]
        self.view = data.views["train"]
        self.is_prectr = isinstance(model, PrectrModel)
        self.frozen = frozen_rsl(model, text, len(data.pairs)) if self.is_prectr else (None, None)
        self.opts = optimizers(model, self.spec)
        self.gen = torch.Generator().manual_seed(self.spec.train.seed)
        self.window: list[float] = []

    def run(self, rows: np.ndarray, e2e: bool = False, batch_size: int | None = None) -> None:
        """One pass over ``rows`` in mini-batches (of the configured size unless given)."""
        self.model.train()
        bs = batch_size or self.spec.train.batch_size
        for start in range(0, len(rows), bs):
            idx = rows[start : start + bs]
            batch = Batch.gather(self.view, idx, self.data.pairs.label, self.text.lexical)
            if self.is_prectr:
                loss, bce = _prectr_loss(self.model, batch, e2e, *self.frozen, self.gen)  # type: ignore[arg-type]
            else:
                bce = click_bce(self.model(batch) + self.model.position(batch.position), batch.target)
                loss = bce
            for opt in self.opts:
                opt.zero_grad()
            loss.backward()
            for opt in self.opts:
                opt.step()
            self.log.steps += 1
            self.log.e2e_steps += int(e2e)
            self.window.append(bce.item())
            if len(self.window) == 10:
                self.log.bce.append(float(np.mean(self.window)))
                self.window = []
            self.advance(len(idx))

    def scale_lr(self, factor: float, include_encoder: bool = False) -> None:
        """Multiply the learning rates (the end-to-end encoder group only when ``include_encoder``)."""
        encoder = set()
        if self.is_prectr and isinstance(self.model.source, StudentSource) and not include_encoder:
            encoder = {id(p) for p in self.model.source.trainable_encoder_parameters()}
        for opt in self.opts:
            for group in opt.param_groups:
                if not any(id(p) in encoder for p in group["params"]):
                    group["lr"] *= factor

    def validate(self, rows: np.ndarray) -> float:
        from model.evaluate import predict_rows
        from model.metrics import auc

        return auc(self.view.target[rows], predict_rows(self.model, self.view, rows, self.data, self.text))


def fit(model: nn.Module, data: Dataset, text: TextInputs, advance: Advance = lambda n: None) -> TrainLog:
    """Train one cell: stage 1 (frozen-embedding RSL), stage 2 with early stopping on held-out requests,
    then (distilled student only) the end-to-end encoder steps."""
    spec: ModelSpec = model.spec  # type: ignore[assignment]
    cfg = spec.train
    log, start = TrainLog(), time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if isinstance(model, PrectrModel) and isinstance(model.source, FrozenMiniLmSource):
        fit_rsl(model, data, log, advance)
    view = data.views["train"]
    valid = validation_rows(view.request, cfg.valid_share)
    fit_rows, valid_rows = np.flatnonzero(~valid), np.flatnonzero(valid)
    init_from_data(model, view, text, fit_rows)
    stage2 = _Stage2(model, data, text, log, advance)
    best, best_state, stale = -math.inf, None, 0
    for _ in range(cfg.epochs):
        stage2.run(rng.permutation(fit_rows))
        stage2.scale_lr(cfg.lr_decay)
        score = stage2.validate(valid_rows)
        log.valid_auc.append(score)
        if score > best:
            best, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale > cfg.patience:
                break
    model.load_state_dict(best_state)  # type: ignore[arg-type]
    log.best_epoch = int(np.argmax(log.valid_auc)) + 1
    if isinstance(model, PrectrModel) and isinstance(model.source, StudentSource) and cfg.e2e_steps:
        _end_to_end(model, stage2, rng.permutation(fit_rows), valid_rows, best)
    if stage2.window:
        log.bce.append(float(np.mean(stage2.window)))
    set_sparse(model, False)
    log.seconds = time.perf_counter() - start
    return log


def _end_to_end(
    model: PrectrModel, stage2: _Stage2, rows: np.ndarray, valid_rows: np.ndarray, best: float
) -> None:
    """Fine-tune the student's transformer jointly with the CTR objective (``encoder_lr``; the rest of the
    model at its decayed LR times ``e2e_head_lr_scale``), then keep the result only if the held-out AUC does
    not drop: the same early-stopping rule as the epochs."""
    cfg, log = model.spec.train, stage2.log
    snapshot = copy.deepcopy(model.state_dict())
    stage2.scale_lr(cfg.e2e_head_lr_scale)
    stage2.run(rows[: cfg.e2e_steps * cfg.e2e_batch_size], e2e=True, batch_size=cfg.e2e_batch_size)
    model.source.invalidate()  # the transformer changed: cached states are stale
    log.e2e_valid_auc = stage2.validate(valid_rows)
    log.e2e_kept = log.e2e_valid_auc >= best
    if not log.e2e_kept:
        model.load_state_dict(snapshot)
        model.source.invalidate()


def _prectr_loss(
    model: PrectrModel,
    batch: Batch,
    e2e: bool,
    frozen_cls: nn.Module,
    frozen_logits: torch.Tensor,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(total loss, click BCE) of one batch (weights in LossConfig)."""
    spec, w = model.spec, model.spec.loss
    out = model(batch, e2e=e2e)
    bce = click_bce(out.head.score_logit + model.position(batch.position), batch.target)
    loss = bce
    stage1 = frozen_logits[batch.pair]  # (N, K) stage-1 RSL logits
    if spec.semantic_consistency:
        loss = loss + w.sc * semantic_consistency(out.rel_logits, batch.label, stage1)
    if spec.head.use_incentive:
        loss = loss + w.bal * load_balance(out.head.gate)
    if spec.debias:
        levels = anchor_levels(batch.label, stage1)
        synth = synthesize_hard_negatives(
            out.rel_vec, levels, frozen_cls, w.debias_eta, w.debias_min_level, gen, w.debias_max_anchors
        )
        if synth.anchor.numel():
            s_synth = model.head_on(synth.rel_vec, batch, synth.anchor).score_logit
            s_real = out.head.score_logit[synth.anchor]
            loss = loss + w.debias * pairwise_debias(
                s_real, s_synth, synth.level_gap, w.debias_margin, w.debias_keep
            )
    return loss, bce
