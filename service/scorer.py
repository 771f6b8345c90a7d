"""The backend seam: a :class:`Scorer` owns the text encoder and two batched graphs (encoder, head).

Each graph is split prepare (CPU: concatenate request parts, pad to the length bucket) -> run
(accelerator: ONNX Runtime, or the fake) -> finish (CPU: split outputs back per request part). The
batcher only ever sees named numpy arrays; the real :class:`service.ort_scorer.OrtScorer` and the test
:class:`service.fake_scorer.FakeScorer` implement the same protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from features.head_inputs import ID_FEATURES
from features.prefs import HISTORY_LEN, PREF_DENSE_COLUMNS, Smoothing
from features.text import TextEncoder
from features.tokenizer import PAD_ID

Feeds = dict[str, np.ndarray]
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class ModelInfo:
    """What the service reports about the bundle it serves (``prectr_model_info``, responses)."""

    version: str
    provider: str
    variant: str
    level_names: tuple[str, ...]
    rel_dim: int
    length_buckets: tuple[int, ...]


@dataclass(frozen=True)
class HeadConfig:
    """Manifest values :func:`features.head_inputs.build_head_feeds` needs."""

    buckets: dict[str, int]
    smoothing: Smoothing = field(default_factory=Smoothing)
    history_len: int = HISTORY_LEN


class GraphRunner(Protocol):
    name: str

    def prepare(self, parts: Sequence[Feeds], key: int | None) -> Feeds:
        """Concatenate request parts into one batch (CPU); ``key`` is the length bucket, if any."""
        ...

    def run(self, feeds: Feeds) -> Feeds:
        """Run the graph on a prepared batch (accelerator; called from a worker thread)."""
        ...

    def finish(self, outputs: Feeds, sizes: Sequence[int]) -> list[Feeds]:
        """Split batch outputs back into per-part outputs (CPU)."""
        ...


class Scorer(Protocol):
    """Read-only members, so implementations may hold narrower types (``OrtGraph``, ``FakeGraph``)."""

    @property
    def info(self) -> ModelInfo: ...

    @property
    def text(self) -> TextEncoder: ...

    @property
    def head_config(self) -> HeadConfig: ...

    @property
    def encoder(self) -> GraphRunner: ...

    @property
    def head(self) -> GraphRunner: ...

    def warmup(self, encoder_rows: int, head_rows: int) -> dict[str, float]:
        """Run every length bucket once at each batch size; returns measured seconds per row by graph."""
        ...

    def close(self) -> None: ...


class BatchedGraph:
    """prepare/finish shared by every backend; subclasses implement ``run``."""

    def __init__(self, name: str, input_dtypes: dict[str, np.dtype]) -> None:
        self.name = name
        self.input_dtypes = input_dtypes

    def prepare(self, parts: Sequence[Feeds], key: int | None) -> Feeds:
        feeds: Feeds = {}
        for name, dtype in self.input_dtypes.items():
            arrays = [part[name] for part in parts]
            if key is not None and name in TOKEN_INPUTS:
                arrays = [_pad_to(a, key) for a in arrays]
            joined = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
            feeds[name] = np.ascontiguousarray(joined, dtype=dtype)
        return feeds

    def run(self, feeds: Feeds) -> Feeds:  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(self, outputs: Feeds, sizes: Sequence[int]) -> list[Feeds]:
        if len(sizes) == 1:
            return [{k: np.asarray(v, dtype=np.float32) for k, v in outputs.items()}]
        cuts = np.cumsum(sizes)[:-1]
        split = {k: np.split(np.asarray(v, dtype=np.float32), cuts) for k, v in outputs.items()}
        return [{k: chunks[i] for k, chunks in split.items()} for i in range(len(sizes))]


def _pad_to(tokens: np.ndarray, width: int) -> np.ndarray:
    """Right-pad token columns to the bucket width (PAD, mask 0, type 0 are all zero)."""
    have = tokens.shape[1]
    if have == width:
        return tokens
    if have > width:
        raise ValueError(f"rows of width {have} submitted to the {width}-token bucket")
    out = np.full((tokens.shape[0], width), PAD_ID, dtype=tokens.dtype)
    out[:, :have] = tokens
    return out


def warmup_feeds(rows: int, width: int | None, rel_dim: int, num_levels: int, history_len: int) -> Feeds:
    """Valid all-padding inputs of one shape: enough to make a provider compile/tune that shape."""
    if width is not None:
        ids = np.zeros((rows, width), dtype=np.int64)
        mask = ids.copy()
        mask[:, :2] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return {
        "rel_vec": np.zeros((rows, rel_dim), np.float32),
        "rel_logits": np.zeros((rows, num_levels), np.float32),
        "pref_dense": np.zeros((rows, len(PREF_DENSE_COLUMNS)), np.float32),
        "ids": np.zeros((rows, len(ID_FEATURES)), np.int64),
        "hist_items": np.zeros((rows, history_len), np.int64),
        "hist_levels": np.zeros((rows, history_len), np.int64),
    }
