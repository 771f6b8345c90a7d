"""LRU cache of encoder outputs per (model version, normalised query, item id, title hash).

Relevance depends only on the (query, item text) pair, not on the user, so a popular query's candidates
skip the encoder (the whole CPU budget) and only run the cheap head. The title hash is in the key so an
edited title is re-encoded, and the model version so a hot reload never serves the old encoder's vectors.
Only the event-loop thread touches it, so it needs no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

CacheKey = tuple[str, str, str, int]
CacheValue = tuple[np.ndarray, np.ndarray]  # rel_vec (D,), rel_logits (K,)


def title_hash(title: str) -> int:
    """Python's own str hash: salted per process, which is fine for a cache that lives in one process,
    and ~10x cheaper than blake2b (the string caches it)."""
    return hash(title)


class RelevanceCache:
    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"cache capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[CacheKey, CacheValue] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def keys_for(
        version: str, query_norm: str, item_ids: Sequence[str], titles: Sequence[str]
    ) -> list[CacheKey]:
        return [
            (version, query_norm, item, title_hash(title))
            for item, title in zip(item_ids, titles, strict=True)
        ]

    def get_many(self, keys: Sequence[CacheKey]) -> list[CacheValue | None]:
        """Values in key order (None for a miss); hits become most recently used."""
        if not self.capacity:
            self.misses += len(keys)
            return [None] * len(keys)
        out: list[CacheValue | None] = []
        entries = self._entries
        for key in keys:
            value = entries.get(key)
            if value is not None:
                entries.move_to_end(key)
            out.append(value)
        hits = sum(v is not None for v in out)
        self.hits += hits
        self.misses += len(keys) - hits
        return out

    def put_many(self, keys: Sequence[CacheKey], rel_vec: np.ndarray, rel_logits: np.ndarray) -> None:
        """Store row ``i`` of both arrays under ``keys[i]``.

        Rows are views, not copies (copying 2 x 200 rows costs more than the lookup): a batch output array
        lives while any of its rows is cached. Callers never write into arrays they hand over.
        """
        if not self.capacity:
            return
        entries = self._entries
        # The keys just missed, so they are new and land at the recent end; one that another request
        # stored meanwhile keeps its place (the same vectors, a slightly older LRU position).
        entries.update(zip(keys, zip(rel_vec, rel_logits, strict=True), strict=True))
        while len(entries) > self.capacity:
            entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
