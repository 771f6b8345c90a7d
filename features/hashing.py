"""Stable hashing of ids and texts (blake2b; never Python's salted ``hash``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from features.normalize import normalize_query


def stable_hash64(value: str | int) -> int:
    """A 63-bit non-negative hash that is identical across processes, machines and Python versions."""
    digest = hashlib.blake2b(str(value).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


def hash_bucket(value: str | int, buckets: int) -> int:
    """Bucket in ``[1, buckets)``; bucket 0 is reserved for padding / unknown."""
    if buckets < 2:
        raise ValueError("buckets must be >= 2 (bucket 0 is reserved)")
    return 1 + stable_hash64(value) % (buckets - 1)


def hash_buckets(values: Iterable[str | int], buckets: int) -> np.ndarray:
    """Vectorised :func:`hash_bucket` over many values; hashes each distinct value once.

    Distinct values are found with a dict, not ``np.unique``: sorting an object array of strings costs
    more than hashing them (200 item ids: 0.03 vs 0.1 ms; the serving path calls this per request).
    """
    vals = values.tolist() if isinstance(values, np.ndarray) else list(values)
    table = {v: hash_bucket(v, buckets) for v in dict.fromkeys(vals)}
    return np.fromiter((table[v] for v in vals), dtype=np.int64, count=len(vals))


def query_key(query: str) -> str:
    """Key of a query in Redis and in every cache: hex hash of the *normalised* query."""
    return f"{stable_hash64(normalize_query(query)):016x}"


def user_key(user_id: str | int) -> str:
    """Key of a user in Redis: hex hash of the user id as a string."""
    return f"{stable_hash64(str(user_id)):016x}"
