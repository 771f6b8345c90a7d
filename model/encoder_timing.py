"""CPU latency of a relevance model on one serving-shaped call: one query against 200 candidate titles.

Each model is timed end to end as a serving call would pay in torch eager (tokenise + forward) and forward
alone; the median over repeats after warm-up is reported, with the thread count, because the machine is
shared and single runs vary by tens of percent.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

N_CANDIDATES = 200


@dataclass(frozen=True)
class Timing:
    ms_per_200: float  # tokenise + forward, median
    forward_ms_per_200: float  # forward only, median
    repeats: int
    threads: int

    def as_dict(self) -> dict[str, float]:
        return {
            "ms_per_200": round(self.ms_per_200, 2),
            "forward_ms_per_200": round(self.forward_ms_per_200, 2),
            "repeats": self.repeats,
            "threads": self.threads,
        }


def median_ms(fn: Callable[[], object], repeats: int = 15, warmup: int = 2) -> float:
    """Median over ``repeats`` calls after ``warmup`` calls, in milliseconds (medians resist a busy CPU)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


@torch.inference_mode()
def time_model(
    prepare: Callable[[], object], forward: Callable[[object], object], repeats: int = 7, warmup: int = 2
) -> Timing:
    """``prepare()`` tokenises the 200 pairs, ``forward(prepared)`` runs the model on them."""
    prepared = prepare()
    return Timing(
        ms_per_200=median_ms(lambda: forward(prepare()), repeats, warmup),
        forward_ms_per_200=median_ms(lambda: forward(prepared), repeats, warmup),
        repeats=repeats,
        threads=torch.get_num_threads(),
    )


def timing_candidates(query: str, titles: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``N_CANDIDATES`` catalogue titles for one query: the shape of a coarse-ranking request."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(titles), size=N_CANDIDATES, replace=len(titles) < N_CANDIDATES)
    return np.asarray([query] * N_CANDIDATES, dtype=object), np.asarray(titles[pick], dtype=object)
