"""Per-benchmark text inputs: computed once, shared by every (model, seed) cell.

MiniLM embeddings, the distilled student's tokens, [CLS] states and stage-1 logits, and the lexical
features all depend only on the pair table and the (frozen, delivered) encoders, never on a model seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.dataset import Dataset
from model.rel_features import MiniLmInputs, lexical_features, minilm_inputs
from model.tables import read_table


@dataclass
class TextInputs:
    lexical: np.ndarray  # (P, 3) float32
    minilm: MiniLmInputs | None = None
    student: Any = None  # model.student.Student
    student_tokens: Any = None  # model.encoder_loop.TokenizedPairs of the pairs the student rows use
    student_row: np.ndarray | None = None  # (P,) pair -> row of the student_* arrays, -1 when not encoded
    student_pooled: torch.Tensor | None = None  # (M, d_model) delivered student's [CLS] state per row
    student_logits: torch.Tensor | None = None  # (M, K) delivered student's level logits (= stage 1)
    seconds: dict[str, float] = field(default_factory=dict)


def student_pairs(data: Dataset) -> np.ndarray:
    """Pairs a student row ever encodes: CTR views and relevance test pairs (stage 1 is the student's SFT)."""
    return np.unique(np.concatenate([*(v.pair for v in data.views.values()), data.rel_test.pair]))


def _trimmed(tokens: Any) -> Any:
    """Drop padding columns no row uses (TokenizedPairs is padded to the encoder's max_len)."""
    width = max(1, int(tokens.lengths.max())) if len(tokens) else 1
    return type(tokens)(
        *(
            np.ascontiguousarray(a[:, :width])
            for a in (tokens.input_ids, tokens.attention_mask, tokens.token_type_ids)
        )
    )


@torch.inference_mode()
def encode_pooled(encoder: Any, tokens: Any, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """``(M, d_model)`` [CLS] states and ``(M, K)`` logits of a student over tokenised pairs, in row order."""
    from model.encoder_loop import inference_batches

    encoder.eval()
    pooled = torch.zeros(len(tokens), encoder.cfg.d_model)
    logits = torch.zeros(len(tokens), encoder.cfg.num_levels)
    for idx in inference_batches(tokens.lengths, batch_size):
        out = encoder.encode(**tokens.batch(idx))
        pooled[idx], logits[idx] = out.pooled, out.rel_logits
    return pooled, logits


def build_text_inputs(
    data: Dataset, *, need_minilm: bool, student: Any = None, minilm_cache: Path | None = None
) -> TextInputs:
    """Lexical features always; MiniLM embeddings and student outputs when a row of the run needs them."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    titles = read_table(data.meta.root, "items", ("title",))["title"]
    text = TextInputs(lexical_features(data.pairs, titles))
    seconds["lexical"] = time.perf_counter() - t0
    if need_minilm:
        t0 = time.perf_counter()
        text.minilm = minilm_inputs(data.pairs, minilm_cache)
        seconds["minilm_embed"] = time.perf_counter() - t0
    if student is not None:
        t0 = time.perf_counter()
        text.student = student
        needed = student_pairs(data)
        text.student_tokens = _trimmed(
            student.tokenize(data.pairs.query_norm[needed], data.pairs.title[needed])
        )
        text.student_row = np.full(len(data.pairs), -1, dtype=np.int64)
        text.student_row[needed] = np.arange(len(needed))
        seconds["student_tokenize"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        text.student_pooled, text.student_logits = encode_pooled(student.model, text.student_tokens)
        seconds["student_encode"] = time.perf_counter() - t0
    text.seconds = seconds
    return text
