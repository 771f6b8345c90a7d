"""BM25 over catalogue titles: the lexical relevance baseline (numpy + a token dictionary, no training).

Levels come from the score by thresholds that reproduce the train split's level distribution (score
quantiles), so the baseline predicts the same label mix as the learned models; ranking uses the raw score.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from features.normalize import normalize_query

_TOKEN = re.compile(r"[a-z0-9]+")


def bm25_tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalize_query(text))


class BM25:
    """Okapi BM25 with the usual k1/b; document statistics from the whole catalogue."""

    def __init__(self, titles: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        if len(titles) == 0:
            raise ValueError("BM25 needs at least one catalogue title")
        self.k1, self.b = k1, b
        df: Counter[str] = Counter()
        lengths = np.zeros(len(titles), dtype=np.float64)
        for i, title in enumerate(titles):
            toks = bm25_tokens(str(title))
            lengths[i] = len(toks)
            df.update(set(toks))
        n = len(titles)
        self.idf = {t: float(np.log(1.0 + (n - d + 0.5) / (d + 0.5))) for t, d in df.items()}
        self.avg_len = float(lengths.mean()) or 1.0

    def score_pair(self, query: str, title: str) -> float:
        tf = Counter(bm25_tokens(title))
        norm = self.k1 * (1.0 - self.b + self.b * sum(tf.values()) / self.avg_len)
        score = 0.0
        for term in set(bm25_tokens(query)):
            f = tf.get(term, 0)
            if f:
                score += self.idf.get(term, 0.0) * f * (self.k1 + 1.0) / (f + norm)
        return score

    def score_pairs(self, queries: Sequence[str], titles: Sequence[str]) -> np.ndarray:
        if len(queries) != len(titles):
            raise ValueError(f"{len(queries)} queries but {len(titles)} titles")
        return np.fromiter(
            (self.score_pair(str(q), str(t)) for q, t in zip(queries, titles, strict=True)),
            dtype=np.float64,
            count=len(queries),
        )


class QuantileLevels:
    """Score -> level by thresholds at the cumulative train level shares."""

    def __init__(self, num_levels: int) -> None:
        self.num_levels = num_levels
        self.thresholds = np.zeros(num_levels - 1)

    def fit(self, scores: np.ndarray, levels: np.ndarray) -> QuantileLevels:
        if len(scores) == 0:
            raise ValueError("QuantileLevels.fit needs at least one labelled score")
        shares = np.bincount(levels, minlength=self.num_levels)[:-1].cumsum() / len(levels)
        self.thresholds = np.quantile(scores, shares)
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.thresholds, scores, side="left").astype(np.int64)

    def one_hot(self, scores: np.ndarray) -> np.ndarray:
        """Predicted levels as one-hot "probabilities", so the evaluation code treats all models alike."""
        return np.eye(self.num_levels, dtype=np.float32)[self.predict(scores)]
