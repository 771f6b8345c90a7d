"""Encoder cost per coarse-ranking request (one query, 200 candidates), torch eager on this CPU.

- student: tokenise + 3-layer cross-encoder over 200 pairs (what the service's encoder graph runs);
- minilm_frozen: MiniLM sentence embeddings of the 200 titles + the query, then the RSL MLP (no item
  embedding cache assumed; with one, only the query would be embedded per request);
- lexical: BM25 + coverage features of the baselines.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from model.dataset import Dataset
from model.encoder_timing import time_model, timing_candidates


def measure_encoders(data: Dataset, encoders: set[str], student: Any = None) -> dict[str, dict[str, float]]:
    """Median ms per 200 candidates for each encoder kind in ``encoders`` (``none`` = lexical features)."""
    query = str(data.pairs.query_norm[0])
    queries, titles = timing_candidates(query, np.unique(data.pairs.title))
    out: dict[str, dict[str, float]] = {}
    if "none" in encoders:
        from model.dataset import PairTable
        from model.rel_features import lexical_features

        table = PairTable(queries, np.zeros(len(titles), np.int64), titles, np.zeros(len(titles), np.int8))
        out["lexical"] = time_model(lambda: table, lambda t: lexical_features(t, titles), repeats=3).as_dict()
    if "student" in encoders and student is not None:
        out["student"] = time_model(
            lambda: student.tokenize(queries, titles), lambda t: student.model(**t.batch(np.arange(len(t))))
        ).as_dict()
    if "minilm_frozen" in encoders:
        out["minilm_frozen"] = _time_minilm(query, titles)
    return out


def _time_minilm(query: str, titles: np.ndarray) -> dict[str, float]:
    from model.config import RslConfig
    from model.minilm import load_minilm
    from model.minilm_embed import embed_texts
    from model.rsl import FrozenEmbeddingRsl

    model, tokenizer = load_minilm()
    rsl = FrozenEmbeddingRsl(RslConfig()).eval()
    texts = [query, *titles.tolist()]

    def call(_: object) -> object:
        emb = torch.from_numpy(embed_texts(texts, model=model, tokenizer=tokenizer))  # (201, 384)
        return rsl(emb[:1].expand(len(titles), -1), emb[1:])

    return time_model(lambda: None, call, repeats=3).as_dict()
