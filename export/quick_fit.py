"""The tiny model's quick fit: a width-aware init and two short supervised loops (relevance, then clicks).

Deliberately small and documented rather than the paper's pipeline (see :mod:`export.tiny`); the full
V2 training lives in ``model.train``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.encoder import CrossEncoder
from model.head import PrectrHead


@dataclass(frozen=True)
class TinyFit:
    """Budget of the quick fit (defaults: ~10-20 s on two shared cores for the small synthetic profile)."""

    encoder_steps: int = 500
    head_epochs: int = 3
    batch_size: int = 64
    head_batch_size: int = 256
    max_ctr_rows: int = 15_000
    threads: int = 1  # one thread: on a shared 2-core machine a second spinning thread costs 10x
    seed: int = 0


def rescale_init(encoder: CrossEncoder) -> None:
    """Width-aware init: Linear std 1/sqrt(fan_in), token embeddings std 1.

    With the BERT-style std 0.02 at d=64 the attention logits q.k start ~0.02 and the bilinear q/k pair sits
    on a saddle: from scratch the encoder predicts the level prior for thousands of steps. At this scale
    (lr 6e-3, 30 warm-up steps) it starts matching query and title tokens within ~200 steps (3 seeds).
    """
    with torch.no_grad():
        for module in encoder.modules():
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, std=module.in_features**-0.5)
        encoder.tok_emb.weight.normal_(0.0, 1.0)
        encoder.tok_emb.weight[0].zero_()  # padding row


def fit_encoder(encoder: CrossEncoder, tokens, levels: np.ndarray, fit: TinyFit) -> float:
    """Stage 1: cross-entropy to the human levels on random batches; returns the last batch loss."""
    from model.losses import relevance_ce

    rng = np.random.default_rng(fit.seed)
    rescale_init(encoder)
    opt = torch.optim.AdamW(encoder.parameters(), lr=6e-3, weight_decay=1e-4)
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 30))
    encoder.train()
    loss = torch.zeros(())
    for _ in range(fit.encoder_steps):
        idx = rng.choice(len(levels), size=min(fit.batch_size, len(levels)), replace=False)
        _, logits = encoder(**tokens.batch(idx))
        loss = relevance_ce(logits, torch.from_numpy(levels[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        warmup.step()
    encoder.eval()
    return float(loss.detach())


def fit_head(head: PrectrHead, inputs: list[np.ndarray], clicks: np.ndarray, fit: TinyFit) -> float:
    """Stage 2 (encoder frozen): click BCE on the fused score logit; returns the last batch loss."""
    from model.losses import click_bce

    rng = np.random.default_rng(fit.seed)
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-6)
    tensors = [torch.from_numpy(np.ascontiguousarray(x)) for x in inputs]
    target = torch.from_numpy(clicks.astype(np.float32))
    head.train()
    loss = torch.zeros(())
    for _ in range(fit.head_epochs):
        order = torch.from_numpy(rng.permutation(len(clicks)))
        for start in range(0, len(clicks), fit.head_batch_size):
            idx = order[start : start + fit.head_batch_size]
            out = head.components(*(t[idx] for t in tensors))
            loss = click_bce(out.score_logit, target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    head.eval()
    return float(loss.detach())
