"""LRU cache of encoder outputs per (model version, normalised query, item id, title hash).

Relevance depends only on the (query, item text) pair, not on the user, so a popular query's candidates
skip the encoder (the whole CPU budget) and only run the cheap head. The title hash is in the key so an
edited title is re-encoded, and the model version so a hot reload never serves the old encoder's vectors.
Only the event-loop thread touches it, so it needs no lock.

Values live in two preallocated matrices (``capacity`` rows of ``rel_vec`` and of ``rel_logits``); the LRU
dict maps a key to its row ("slot"). A request's hits are read, and its new rows written, with one numpy
copy each instead of a Python object per row. A read copies, so a slot reused later never changes rows
a request already holds. The cache also counts its entries per (version, query): a request whose query
has none (a query never seen, or all of its pairs evicted) is answered without a lookup per candidate.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence

import numpy as np

CacheKey = tuple[str, str, str, int]
_NONE = (np.zeros(0, np.int64), np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32))  # no hits


def title_hash(title: str) -> int:
    """Python's own str hash: salted per process, which is fine for a cache that lives in one process,
    and ~10x cheaper than blake2b (the string caches it)."""
    return hash(title)


class RelevanceCache:
    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"cache capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._slots: OrderedDict[CacheKey, int] = OrderedDict()
        self._vec: np.ndarray | None = None  # (capacity, D) float32, allocated by the first put
        self._logits: np.ndarray | None = None  # (capacity, K) float32
        self._next_slot = 0  # slots below it have been handed out; then the LRU entry's slot is reused
        self._per_query: Counter[tuple[str, str]] = Counter()  # entries per (version, normalised query)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._slots)

    @staticmethod
    def keys_for(
        version: str, query_norm: str, item_ids: Sequence[str], titles: Sequence[str]
    ) -> list[CacheKey]:
        return [
            (version, query_norm, item, title_hash(title))
            for item, title in zip(item_ids, titles, strict=True)
        ]

    def get_request(
        self, version: str, query_norm: str, item_ids: Sequence[str], titles: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`get_many` for one request's candidates; a query with no entries costs one dict lookup."""
        if (version, query_norm) not in self._per_query:
            self.misses += len(item_ids)
            return _NONE
        return self.get_many(self.keys_for(version, query_norm, item_ids, titles))

    def put_request(
        self,
        version: str,
        query_norm: str,
        item_ids: Sequence[str],
        titles: Sequence[str],
        rel_vec: np.ndarray,
        rel_logits: np.ndarray,
    ) -> None:
        """:meth:`put_many` for one request's candidates (row ``i`` belongs to ``item_ids[i]``)."""
        self.put_many(self.keys_for(version, query_norm, item_ids, titles), rel_vec, rel_logits)

    def get_many(self, keys: Sequence[CacheKey]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(positions, rel_vec, rel_logits)``: the positions in ``keys`` that hit and copies of their
        rows, in that order; hits become most recently used."""
        positions: list[int] = []
        slots: list[int] = []
        entries = self._slots
        if entries:
            get, touch = entries.get, entries.move_to_end
            for i, key in enumerate(keys):
                slot = get(key)
                if slot is not None:
                    touch(key)
                    positions.append(i)
                    slots.append(slot)
        self.hits += len(slots)
        self.misses += len(keys) - len(slots)
        if not slots or self._vec is None or self._logits is None:
            return _NONE
        index = np.asarray(slots, dtype=np.int64)
        return np.asarray(positions, dtype=np.int64), self._vec[index], self._logits[index]

    def put_many(self, keys: Sequence[CacheKey], rel_vec: np.ndarray, rel_logits: np.ndarray) -> None:
        """Store row ``i`` of both arrays under ``keys[i]`` (a copy: callers may reuse their arrays).

        Rows of another width than the stored ones (a hot reload to a model with other output sizes)
        start the cache afresh: the previous model's entries can never hit again anyway.
        """
        if not self.capacity or not len(keys):
            return
        if (
            self._vec is None
            or self._logits is None
            or self._vec.shape[1:] != rel_vec.shape[1:]
            or self._logits.shape[1:] != rel_logits.shape[1:]
        ):
            self.clear()
            self._vec = np.empty((self.capacity, *rel_vec.shape[1:]), np.float32)
            self._logits = np.empty((self.capacity, *rel_logits.shape[1:]), np.float32)
        if len(keys) > self.capacity:  # only the last ``capacity`` rows could stay
            keys, rel_vec, rel_logits = (
                keys[-self.capacity :],
                rel_vec[-self.capacity :],
                rel_logits[-self.capacity :],
            )
        entries, per_query = self._slots, self._per_query
        slots: list[int] = []
        for key in keys:
            slot = entries.get(key)
            if slot is None:  # new (another request may have stored it meanwhile: then overwrite in place)
                if self._next_slot < self.capacity:
                    slot, self._next_slot = self._next_slot, self._next_slot + 1
                else:
                    old, slot = entries.popitem(last=False)
                    per_query[old[:2]] -= 1
                    if not per_query[old[:2]]:
                        del per_query[old[:2]]
                entries[key] = slot
                per_query[key[:2]] += 1
            else:
                entries.move_to_end(key)
            slots.append(slot)
        index = np.asarray(slots, dtype=np.int64)
        self._vec[index] = rel_vec
        self._logits[index] = rel_logits

    def clear(self) -> None:
        self._slots.clear()
        self._per_query.clear()
        self._next_slot = 0
