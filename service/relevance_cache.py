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

Admission (``admit_after``, a TinyLFU-style doorkeeper): many queries of a search log are asked once or
rarely, and storing their pairs costs a put per candidate and evicts pairs of queries that do come back.
With ``admit_after=2`` a query's pairs are stored from its second cache-miss request on; until then only
the query itself is remembered, in a bounded FIFO of sightings. A query that already has entries is
admitted at once.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from itertools import islice, repeat
from operator import itemgetter

import numpy as np

CacheKey = tuple[str, str, str, int]
_NONE = (np.zeros(0, np.int64), np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32))  # no hits
_version_query = itemgetter(0, 1)


def _consume(iterator: Iterable[object]) -> None:
    """Run an iterator of calls for their effect, in C (``map(f, xs)`` without a Python loop)."""
    deque(iterator, maxlen=0)


def _count_queries(keys: Sequence[CacheKey]) -> Iterable[tuple[tuple[str, str], int]]:
    """``((version, query), entries)`` among ``keys``; one model version (the usual case) is counted by
    query string alone, without a (version, query) tuple built per key."""
    versions = set(map(itemgetter(0), keys))
    if len(versions) != 1:
        return Counter(map(_version_query, keys)).items()
    (version,) = versions
    return (((version, q), n) for q, n in Counter(map(itemgetter(1), keys)).items())


# A title's part of the key is Python's own str hash: salted per process, which is fine for a cache that
# lives in one process, and ~10x cheaper than blake2b (the string caches it).
title_hash: Callable[[str], int] = hash


class RelevanceCache:
    def __init__(self, capacity: int, admit_after: int = 1, sightings: int | None = None) -> None:
        """``admit_after``: cache-miss requests of a query before its pairs are stored (1: the first);
        ``sightings``: queries the doorkeeper remembers (default: a quarter of ``capacity``, at least
        1,024)."""
        if capacity < 0:
            raise ValueError(f"cache capacity must be >= 0, got {capacity}")
        if admit_after < 1:
            raise ValueError(f"admit_after must be >= 1, got {admit_after}")
        self.capacity, self.admit_after = capacity, admit_after
        self.sightings_limit = max(1024, capacity // 4) if sightings is None else sightings
        self._sightings: OrderedDict[tuple[str, str], int] = OrderedDict()  # query -> misses so far
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
        if len(item_ids) != len(titles):
            raise ValueError(f"{len(item_ids)} item ids but {len(titles)} titles")
        # one zip in C instead of a tuple built per candidate in Python
        return list(zip(repeat(version), repeat(query_norm), item_ids, map(title_hash, titles)))

    def admit(self, version: str, query_norm: str) -> bool:
        """Count a cache-miss request of this query; whether its new pairs should be stored now."""
        query = (version, query_norm)
        if self.admit_after == 1 or not self.capacity or query in self._per_query:
            return bool(self.capacity)
        seen = self._sightings.pop(query, 0) + 1
        if seen >= self.admit_after:
            return True
        self._sightings[query] = seen  # newest; the oldest sighting is forgotten first
        if len(self._sightings) > self.sightings_limit:
            self._sightings.popitem(last=False)
        return False

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
        keys = self.keys_for(version, query_norm, item_ids, titles)
        self.put_many(keys, rel_vec, rel_logits, query=(version, query_norm))

    def get_many(self, keys: Sequence[CacheKey]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(positions, rel_vec, rel_logits)``: the positions in ``keys`` that hit and copies of their
        rows, in that order; hits become most recently used."""
        found = self._find(keys)
        positions = [i for i, slot in enumerate(found) if slot is not None]
        slots = found if len(positions) == len(found) else [found[i] for i in positions]
        self.hits += len(slots)
        self.misses += len(keys) - len(slots)
        if not slots or self._vec is None or self._logits is None:
            return _NONE
        index = np.asarray(slots, dtype=np.int64)
        return np.asarray(positions, dtype=np.int64), self._vec[index], self._logits[index]

    def put_many(
        self,
        keys: Sequence[CacheKey],
        rel_vec: np.ndarray,
        rel_logits: np.ndarray,
        *,
        query: tuple[str, str] | None = None,
    ) -> None:
        """Store row ``i`` of both arrays under ``keys[i]`` (a copy: callers may reuse their arrays).
        ``query``: the (version, query) every key belongs to, when the caller knows (a request's put).

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
        if len(set(keys)) < len(keys):  # a key twice: the later row wins, as if stored one after the other
            rows = sorted({key: i for i, key in enumerate(keys)}.values())
            keys, rel_vec, rel_logits = [keys[i] for i in rows], rel_vec[rows], rel_logits[rows]
        index = np.asarray(self._place(keys, query), dtype=np.int64)
        self._vec[index] = rel_vec
        self._logits[index] = rel_logits

    def _place(self, keys: Sequence[CacheKey], query: tuple[str, str] | None) -> list[int]:
        """The slot of each of ``keys`` (distinct, at most ``capacity``), all now most recently used in
        their order, exactly as if stored one by one: a stored key keeps its slot; a new one takes a slot
        never used yet or the least recently used entry's. Bulk operations in C instead of a Python loop
        per key (which cost ~215 us for a 200-candidate put into a full cache)."""
        entries, per_query = self._slots, self._per_query
        # Keys stored already (another request put them meanwhile) become newest first, so the eviction
        # below cannot take them; a query with no entries (a cache-miss request's put) needs no lookups.
        known = query is None or query in per_query
        found = self._find(keys) if known else [None] * len(keys)
        new = [key for key, slot in zip(keys, found, strict=True) if slot is None]
        stored = len(new) < len(keys)
        unused = min(len(new), self.capacity - self._next_slot)
        slots = list(range(self._next_slot, self._next_slot + unused))
        self._next_slot += unused
        if len(new) > unused:  # the oldest entries give their slots up
            evicted = list(islice(entries, len(new) - unused))
            slots += map(entries.pop, evicted)
            for old, count in _count_queries(evicted):
                if per_query[old] > count:
                    per_query[old] -= count
                else:
                    del per_query[old]
        entries.update(zip(new, slots, strict=True))
        if query is None:
            per_query.update(map(_version_query, new))
        elif new:
            per_query[query] += len(new)
        if stored:  # recency in the order of ``keys``
            _consume(map(entries.move_to_end, keys))
        given = iter(slots)
        return [slot if slot is not None else next(given) for slot in found]

    def _find(self, keys: Sequence[CacheKey]) -> list[int | None]:
        """Each key's slot (None: not stored); the stored ones become most recently used, in key order."""
        entries = self._slots
        if not entries:
            return [None] * len(keys)
        found = list(map(entries.get, keys))
        touched = (
            keys
            if None not in found
            else [k for k, slot in zip(keys, found, strict=True) if slot is not None]
        )
        _consume(map(entries.move_to_end, touched))
        return found

    def clear(self) -> None:
        self._slots.clear()
        self._per_query.clear()
        self._sightings.clear()
        self._next_slot = 0
