"""Using a trained student: tokenise pairs exactly as serving does, run it in length-sorted batches.

The CTR trainer, evaluation and export all go through these helpers, so the text path of training is the
text path of ``features.text.TextEncoder`` that the service runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from features.normalize import normalize_query
from features.text import TextEncoder
from model.encoder import CrossEncoder, EncoderConfig
from model.encoder_ckpt import load_encoder
from model.encoder_loop import TokenizedPairs, inference_batches

CHUNK = 16384  # rows tokenised at a time: bounds the int64 scratch arrays of TextEncoder


def tokenize_for_student(
    text_encoder: TextEncoder, queries: np.ndarray, titles: np.ndarray
) -> TokenizedPairs:
    """Serving's pair layout for row-aligned pairs, stored as int32 ``(N, max_len)``."""
    n, width = len(queries), text_encoder.max_len
    out = [np.zeros((n, width), dtype=np.int32) for _ in range(3)]
    for start in range(0, n, CHUNK):
        q = [normalize_query(str(x)) for x in queries[start : start + CHUNK]]
        enc = text_encoder.encode_pairs(q, [str(t) for t in titles[start : start + CHUNK]])
        w = enc.input_ids.shape[1]
        for dst, src in zip(out, (enc.input_ids, enc.attention_mask, enc.token_type_ids), strict=True):
            dst[start : start + len(q), :w] = src
    return TokenizedPairs(*out)


@torch.inference_mode()
def predict_student(
    model: CrossEncoder, pairs: TokenizedPairs, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """``rel_vec`` (N, rel_dim) and ``rel_logits`` (N, K) float32 in input row order."""
    model.eval()
    n = len(pairs)
    rel_vec = np.zeros((n, model.cfg.rel_dim), dtype=np.float32)
    logits = np.zeros((n, model.cfg.num_levels), dtype=np.float32)
    for idx in inference_batches(pairs.lengths, batch_size):
        v, z = model(**pairs.batch(idx))
        rel_vec[idx], logits[idx] = v.numpy(), z.numpy()
    return rel_vec, logits


@dataclass
class Student:
    model: CrossEncoder
    text_encoder: TextEncoder
    extra: dict

    def tokenize(self, queries: np.ndarray, titles: np.ndarray) -> TokenizedPairs:
        return tokenize_for_student(self.text_encoder, queries, titles)

    def predict(self, queries: np.ndarray, titles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return predict_student(self.model, self.tokenize(queries, titles))


def load_student(ckpt_dir: str | Path, expected: EncoderConfig | None = None) -> Student:
    """Checkpoint + its tokenizer, with the text settings the student was trained with."""
    loaded = load_encoder(ckpt_dir, expected)
    text = loaded.extra.get("text", {})
    encoder = TextEncoder(
        loaded.tokenizer_path,
        max_len=int(text.get("max_len", loaded.config.max_len)),
        max_query_len=int(text.get("max_query_len", 16)),
        buckets=tuple(text.get("length_buckets", (16, 24, 32, 48, 64))),
    )
    return Student(loaded.model, encoder, loaded.extra)
