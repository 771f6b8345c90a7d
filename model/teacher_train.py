"""Fine-tuning the MiniLM teacher on the train-split relevance labels, early-stopped on valid macro-F1.

CPU budget (2 cores): a training step runs ~70 pairs/s, so the word-embedding matrix (12M of MiniLM's 23M
parameters) is frozen by default — AdamW on it would cost a third of every step and it barely moves in one
epoch — and ``max_pairs`` caps the training set for routine runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from model.encoder_data import EncoderData, EncoderDataError, Pairs
from model.encoder_loop import (
    EarlyStopping,
    Progress,
    TokenizedPairs,
    classification_metrics,
    training_batches,
    warmup_linear_schedule,
)
from model.teacher import (
    HEAD_FILE,
    TeacherConfig,
    TeacherModel,
    new_teacher,
    predict_teacher,
    save_teacher,
    tokenize_for_teacher,
)

SUMMARY_FILE = "teacher_summary.json"


@dataclass(frozen=True)
class TeacherTrainConfig:
    epochs: int = 2
    batch_size: int = 32
    lr: float = 8e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    max_pairs: int | None = None  # cap on training pairs (random, seeded)
    max_valid_pairs: int = 2000
    evals_per_epoch: int = 2
    patience: int = 2
    freeze_embeddings: bool = True
    seed: int = 0


def cap_pairs(pairs: Pairs, cap: int | None, rng: np.random.Generator) -> Pairs:
    if cap is None or len(pairs) <= cap:
        return pairs
    return pairs.subset(np.sort(rng.choice(len(pairs), size=cap, replace=False)))


def _optimizer(model: TeacherModel, cfg: TeacherTrainConfig) -> torch.optim.Optimizer:
    if cfg.freeze_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    return torch.optim.AdamW(
        [{"params": body, "lr": cfg.lr}, {"params": model.head.parameters(), "lr": cfg.head_lr}],
        weight_decay=cfg.weight_decay,
    )


def evaluate(model: TeacherModel, pairs: TokenizedPairs, levels: np.ndarray) -> dict[str, float]:
    logits, _ = predict_teacher(model, pairs)
    return classification_metrics(levels, logits)


def cached_summary(
    out_dir: Path, fingerprint: str, cfg: TeacherTrainConfig, model_cfg: TeacherConfig
) -> dict | None:
    """The summary of a finished run in ``out_dir`` with the same data and configs, else None."""
    path = out_dir / SUMMARY_FILE
    if not path.is_file() or not (out_dir / HEAD_FILE).is_file():
        return None
    old = json.loads(path.read_text())
    same = (old.get("data_fingerprint"), old.get("train_config"), old.get("model_config")) == (
        fingerprint,
        asdict(cfg),
        asdict(model_cfg),
    )
    return {**old, "cached": True} if same else None


def train_teacher(
    data: EncoderData,
    out_dir: str | Path,
    cfg: TeacherTrainConfig,
    model_cfg: TeacherConfig | None = None,
    show_progress: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Train, keep the best-on-valid state, save to ``out_dir``; returns the summary also written as JSON.

    Teacher training is the most expensive step on CPU, so a finished run for the same data fingerprint and
    configs is reused unless ``force``.
    """
    started = time.perf_counter()
    model_cfg = model_cfg or TeacherConfig()
    out_dir = Path(out_dir)
    if not force and (done := cached_summary(out_dir, data.fingerprint, cfg, model_cfg)) is not None:
        return done
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    train = cap_pairs(data.relevance_pairs(("train",)), cfg.max_pairs, rng)
    valid = cap_pairs(data.relevance_pairs(("valid",)), cfg.max_valid_pairs, rng)
    if len(train) == 0 or len(valid) == 0:
        raise EncoderDataError(
            f"{data.root}: need train and valid relevance pairs, got {len(train)} / {len(valid)}"
        )
    model, tokenizer = new_teacher(model_cfg)
    tr = tokenize_for_teacher(tokenizer, train.query, train.title, model_cfg.max_len)
    va = tokenize_for_teacher(tokenizer, valid.query, valid.title, model_cfg.max_len)
    optimizer = _optimizer(model, cfg)
    steps_per_epoch = -(-len(train) // cfg.batch_size)
    scheduler = warmup_linear_schedule(optimizer, cfg.epochs * steps_per_epoch)
    eval_at = {int(steps_per_epoch * (i + 1) / cfg.evals_per_epoch) for i in range(cfg.evals_per_epoch)}
    stopper, labels, seen = EarlyStopping(patience=cfg.patience), torch.from_numpy(train.level), 0
    best: dict[str, float] = {}
    with Progress(cfg.epochs * len(train), "teacher train", show_progress) as advance:
        for _epoch in range(cfg.epochs):
            model.train()
            for step, idx in enumerate(training_batches(tr.lengths, cfg.batch_size, rng), start=1):
                loss = F.cross_entropy(model(**tr.batch(idx)), labels[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                seen += len(idx)
                advance(len(idx))
                if step in eval_at:
                    metrics = evaluate(model, va, valid.level)
                    if stopper.update(metrics["macro_f1"], model):
                        best = metrics
                    model.train()
            if stopper.should_stop:
                break
    stopper.restore(model)
    train_seconds = time.perf_counter() - started
    summary = {
        "teacher": "all-MiniLM-L6-v2 cross-encoder",
        "model_config": asdict(model_cfg),
        "train_config": asdict(cfg),
        "data_fingerprint": data.fingerprint,
        "train_pairs": len(train),
        "valid_pairs": len(valid),
        "valid_macro_f1_history": stopper.history,
        "valid": best,
        "train_seconds": round(train_seconds, 1),
        "train_pairs_per_second": round(seen / train_seconds, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    save_teacher(model, tokenizer, out_dir, extra={"data_fingerprint": data.fingerprint})
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return {**summary, "cached": False}
