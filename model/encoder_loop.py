"""Pieces shared by the teacher and student training loops: tokenised pair storage, length-sorted batching,
the learning-rate schedule, classification metrics and early stopping.

On a 2-core CPU the cost of a transformer batch is proportional to its padded length, so every loop here
batches rows of similar length (shuffled in chunks for training, fully sorted for inference) and trims
each batch to its longest row.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch


def set_torch_threads(n: int | None = None) -> int:
    """Use ``n`` intra-op threads (default: every core this process may use); returns the number set."""
    n = n or len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


@dataclass(frozen=True)
class TokenizedPairs:
    """Row-aligned int arrays ``(N, W)`` padded to a common width; batches are trimmed to their longest row."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @property
    def lengths(self) -> np.ndarray:
        return self.attention_mask.sum(axis=1)

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        width = max(1, int(self.attention_mask[idx].sum(axis=1).max()))
        return {
            name: torch.from_numpy(np.ascontiguousarray(getattr(self, name)[idx, :width], dtype=np.int64))
            for name in ("input_ids", "attention_mask", "token_type_ids")
        }


def training_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Random batches of similar length: shuffle, sort inside chunks of 50 batches, shuffle batch order."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    for b in rng.permutation(len(batches)):
        yield batches[b]


def inference_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Length-sorted batches covering every row once (callers scatter results back by index)."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def warmup_linear_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_frac: float = 0.06
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = max(1, int(total_steps * warmup_frac))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def classification_metrics(levels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Level accuracy and macro-F1 over the levels present in either truth or prediction."""
    from sklearn.metrics import f1_score

    pred = probs.argmax(axis=1)
    return {
        "accuracy": float((pred == levels).mean()) if len(levels) else float("nan"),
        "macro_f1": float(f1_score(levels, pred, average="macro", zero_division=0)) if len(levels) else 0.0,
    }


@dataclass
class EarlyStopping:
    """Keeps the best state dict by a higher-is-better score; ``should_stop`` after ``patience`` misses."""

    patience: int = 2
    best_score: float = -np.inf
    best_state: dict[str, torch.Tensor] | None = None
    misses: int = 0
    history: list[float] = field(default_factory=list)

    def update(self, score: float, model: torch.nn.Module) -> bool:
        """Record a validation score; returns True when it is a new best."""
        self.history.append(score)
        if score > self.best_score:
            self.best_score, self.misses = score, 0
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            return True
        self.misses += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.misses >= self.patience

    def restore(self, model: torch.nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


class Progress:
    """A rich progress bar with one task, usable as ``with Progress(total, "label") as advance: advance(n)``."""

    def __init__(self, total: int, description: str, enabled: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=not enabled,
            transient=False,
        )
        self._task = self._bar.add_task(description, total=total)

    def __enter__(self) -> Callable[[int], None]:
        self._bar.start()
        return lambda n: self._bar.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()
