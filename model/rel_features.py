"""Text-side inputs per distinct pair: frozen MiniLM embeddings, student tokens, lexical features.

Computed once per :class:`model.dataset.PairTable` and shared by every (model, seed) of a benchmark run:
MiniLM embeds each distinct query and title once (cached on disk by text hash, so seeds, ablations and
re-runs pay once), the student tokenises each pair once, and BM25 scores each pair once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.dataset import PairTable

LEXICAL_DIM = 3


@dataclass
class MiniLmInputs:
    """Embedding tables and the per-pair row into each."""

    queries: np.ndarray  # (Uq, 384) float32
    titles: np.ndarray  # (Ut, 384) float32
    query_row: np.ndarray  # (P,) int64
    title_row: np.ndarray  # (P,) int64


def minilm_inputs(pairs: PairTable, cache_file: Path | None) -> MiniLmInputs:
    """Frozen MiniLM sentence embeddings of each distinct query and title of ``pairs``."""
    from model.minilm_embed import embed_texts_cached

    uq, q_row = np.unique(pairs.query_norm, return_inverse=True)
    ut, t_row = np.unique(pairs.title, return_inverse=True)
    table = embed_texts_cached([*uq.tolist(), *ut.tolist()], cache_file)
    return MiniLmInputs(table[: len(uq)], table[len(uq) :], q_row.reshape(-1), t_row.reshape(-1))


def lexical_features(pairs: PairTable, catalogue_titles: np.ndarray) -> np.ndarray:
    """``(P, 3)`` float32: log1p(BM25), share of query tokens in the title, exact phrase match.

    The baselines' stand-in for a learned relevance encoder (cheap enough for any coarse ranker).
    """
    from model.bm25 import BM25, bm25_tokens

    bm25 = BM25([str(t) for t in catalogue_titles])
    scores = bm25.score_pairs(pairs.query_norm, pairs.title)
    coverage = np.zeros(len(pairs), dtype=np.float64)
    phrase = np.zeros(len(pairs), dtype=np.float64)
    for i, (q, t) in enumerate(zip(pairs.query_norm.tolist(), pairs.title.tolist(), strict=True)):
        q_tok, t_tok = bm25_tokens(q), set(bm25_tokens(t))
        coverage[i] = sum(tok in t_tok for tok in q_tok) / max(1, len(q_tok))
        phrase[i] = float(" ".join(q_tok) in " ".join(bm25_tokens(t))) if q_tok else 0.0
    return np.stack([np.log1p(scores), coverage, phrase], axis=1).astype(np.float32)
