"""Word-level views of queries and titles: query traits that drive latent strictness, and near-miss mining.

Only the simulator uses these; they are deliberately simple heuristics (documented, seeded), not features a
model may read.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[0-9a-z]+(?:[-.][0-9a-z]+)*")
_UNIT = re.compile(r"^\d+(?:\.\d+)?(?:in|ft|gal|lb|lbs|mm|cm|oz|v|w|amp|btu|pc|pk|x\d+)?$")
STOPWORDS = frozenset(
    {"and", "the", "for", "with", "in", "of", "to", "on", "by", "ft", "lb", "oz", "pack", "set"}
)


def words(norm_text: str) -> list[str]:
    """Alphanumeric words of an already normalised text (:func:`features.normalize.normalize_query`)."""
    return _WORD.findall(norm_text)


def content_words(ws: Sequence[str]) -> list[str]:
    """Words that can make a lexical match: alphabetic or model-number-like, not stopwords or sizes."""
    return [w for w in ws if len(w) >= 3 and w not in STOPWORDS and not _UNIT.match(w)]


def is_model_number(word: str) -> bool:
    """``sc-141``, ``ge6000``, ``hx-4120``: letters and at least two digits, not a size like ``36in``."""
    digits = sum(c.isdigit() for c in word)
    return digits >= 2 and any(c.isalpha() for c in word) and len(word) >= 4 and not _UNIT.match(word)


def brand_vocabulary(
    title_words: Sequence[list[str]], min_titles: int = 3, min_lead_share: float = 0.6
) -> frozenset[str]:
    """Words that usually open a title (``behr``, ``delta``): catalogue titles start with the brand."""
    lead: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for ws in title_words:
        if ws and ws[0].isalpha() and len(ws[0]) >= 3:
            lead[ws[0]] += 1
        anywhere.update(set(ws))
    return frozenset(
        w
        for w, n in lead.items()
        if n >= min_titles and n >= min_lead_share * anywhere[w] and w not in STOPWORDS
    )


def query_traits(query_words: Sequence[list[str]], brands: frozenset[str]) -> dict[str, np.ndarray]:
    """Per query: names a model number, contains a digit, names a brand, number of words."""
    rows = query_words
    return {
        "model_number": np.array([any(is_model_number(w) for w in ws) for ws in rows], dtype=bool),
        "has_digit": np.array([any(c.isdigit() for w in ws for c in w) for ws in rows], dtype=bool),
        "brand": np.array([any(w in brands for w in ws) for ws in rows], dtype=bool),
        "n_words": np.array([len(ws) for ws in rows], dtype=np.int64),
    }


class TitleIndex:
    """Inverted index content word -> item indices, over the catalogue titles."""

    def __init__(self, title_words: Sequence[list[str]], max_df_share: float = 0.05) -> None:
        vocab: dict[str, int] = {}
        word_ids: list[int] = []
        item_of: list[int] = []
        for i, ws in enumerate(title_words):
            for w in sorted(set(content_words(ws))):
                word_ids.append(vocab.setdefault(w, len(vocab)))
                item_of.append(i)
        wid = np.asarray(word_ids, dtype=np.int64)
        order = np.argsort(wid, kind="stable")
        self.items = np.asarray(item_of, dtype=np.int64)[order]
        self.ptr = np.searchsorted(wid[order], np.arange(len(vocab) + 1))
        self.vocab = vocab
        self.max_df = max(20, int(max_df_share * len(title_words)))

    def postings(self, word: str) -> np.ndarray:
        """Items whose title contains ``word``; empty when unknown or too common to be a near miss."""
        j = self.vocab.get(word)
        if j is None or self.ptr[j + 1] - self.ptr[j] > self.max_df:
            return np.zeros(0, dtype=np.int64)
        return self.items[self.ptr[j] : self.ptr[j + 1]]

    def near_misses(
        self, query_words: list[str], exclude: np.ndarray, k: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Up to ``k`` items sharing the most content words with the query, minus ``exclude``; random ties."""
        lists = [self.postings(w) for w in sorted(set(content_words(query_words)))]
        if not lists or k <= 0:
            return np.zeros(0, dtype=np.int64)
        shared, counts = np.unique(np.concatenate(lists), return_counts=True)
        keep = ~np.isin(shared, exclude)
        shared, counts = shared[keep], counts[keep]
        order = np.lexsort((rng.random(shared.size), -counts))
        return shared[order[:k]]
