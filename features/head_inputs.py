"""Named inputs of ``head.onnx``, built the same way for training rows and for a serving request."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.hashing import hash_bucket, hash_buckets, stable_hash64
from features.normalize import normalize_query
from features.prefs import HISTORY_LEN, QueryPref, Smoothing, UserPref, features_for_request

# Id features in this order form the ``ids`` input (N, len(ID_FEATURES)).
ID_FEATURES: tuple[str, ...] = ("user", "item", "query", "price_bucket", "pop_bucket")
NUM_VALUE_BUCKETS = 11  # price/popularity buckets 1..10, 0 = unknown
HEAD_INPUT_NAMES: tuple[str, ...] = (
    "rel_vec",
    "rel_logits",
    "pref_dense",
    "ids",
    "hist_items",
    "hist_levels",
)
HEAD_OUTPUT_NAMES: tuple[str, ...] = ("p_ctr_given_level", "p_level", "incentive", "score")
ENCODER_OUTPUT_NAMES: tuple[str, ...] = ("rel_vec", "rel_logits")


def item_hash64(item_ids: Sequence[str | int] | np.ndarray) -> np.ndarray:
    """Model-independent 63-bit item hashes (what user histories store)."""
    return np.fromiter((stable_hash64(str(i)) for i in item_ids), dtype=np.int64, count=len(item_ids))


def bucket_of_hash64(h64: np.ndarray, buckets: int) -> np.ndarray:
    """Same bucket as :func:`features.hashing.hash_bucket` for the value whose hash is ``h64``; 0 stays 0."""
    h64 = np.asarray(h64, dtype=np.int64)
    return np.where(h64 == 0, 0, 1 + h64 % (buckets - 1)).astype(np.int64)


def _value_buckets(values: np.ndarray) -> np.ndarray:
    """Price/popularity buckets as int64, out-of-range values clipped into 0..10."""
    return np.clip(np.asarray(values, dtype=np.int64), 0, NUM_VALUE_BUCKETS - 1)


def id_matrix(
    user_ids: Sequence[str | int] | np.ndarray,
    item_ids: Sequence[str | int] | np.ndarray,
    queries_norm: Sequence[str] | np.ndarray,
    price_bucket: np.ndarray,
    pop_bucket: np.ndarray,
    buckets: dict[str, int],
) -> np.ndarray:
    """``(N, 5)`` int64 id features; ids are hashed as strings, queries must already be normalised."""
    as_str = lambda xs: [str(x) for x in (xs.tolist() if isinstance(xs, np.ndarray) else xs)]  # noqa: E731
    cols = [
        hash_buckets(as_str(user_ids), buckets["user"]),
        hash_buckets(as_str(item_ids), buckets["item"]),
        hash_buckets(queries_norm, buckets["query"]),
        _value_buckets(price_bucket),
        _value_buckets(pop_bucket),
    ]
    return np.stack(cols, axis=1).astype(np.int64)


def request_id_matrix(
    user_id: str,
    item_ids: Sequence[str],
    query_norm: str,
    price_bucket: np.ndarray,
    pop_bucket: np.ndarray,
    buckets: dict[str, int],
) -> np.ndarray:
    """:func:`id_matrix` for one request: the user and the query are hashed once, not once per row."""
    ids = np.empty((len(item_ids), len(ID_FEATURES)), dtype=np.int64)
    ids[:, 0] = hash_bucket(str(user_id), buckets["user"])
    ids[:, 1] = hash_buckets(item_ids, buckets["item"])
    ids[:, 2] = hash_bucket(query_norm, buckets["query"])
    ids[:, 3] = _value_buckets(price_bucket)
    ids[:, 4] = _value_buckets(pop_bucket)
    return ids


def history_matrix(
    history_hash64: Sequence[int],
    history_levels: Sequence[int],
    n_rows: int,
    buckets: int,
    history_len: int = HISTORY_LEN,
) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded ``(n_rows, history_len)`` item buckets and level+1 (0 = padding), most recent last."""
    items = np.zeros(history_len, dtype=np.int64)
    levels = np.zeros(history_len, dtype=np.int64)
    h = (
        np.asarray(list(history_hash64)[-history_len:], dtype=np.int64)
        if history_len
        else np.zeros(0, np.int64)
    )
    lv = (
        np.asarray(list(history_levels)[-history_len:], dtype=np.int64)
        if history_len
        else np.zeros(0, np.int64)
    )
    if h.size:
        items[history_len - h.size :] = bucket_of_hash64(h, buckets)
        levels[history_len - lv.size :] = lv + 1
    return np.repeat(items[None], n_rows, axis=0), np.repeat(levels[None], n_rows, axis=0)


def build_head_feeds(
    *,
    rel_vec: np.ndarray,
    rel_logits: np.ndarray,
    query: str,
    user_id: str,
    item_ids: Sequence[str],
    price_bucket: np.ndarray,
    pop_bucket: np.ndarray,
    qpref: QueryPref | None,
    upref: UserPref | None,
    buckets: dict[str, int],
    smoothing: Smoothing | None = None,
    history_len: int = HISTORY_LEN,
) -> dict[str, np.ndarray]:
    """Feeds for ``head.onnx`` for one request (serving path), in :data:`HEAD_INPUT_NAMES` order. The
    service builds the same pieces at different moments: ``ids`` before the encoder starts, the
    preference feeds once the lookup answers, ``rel_*`` from the encoder."""
    prefs = preference_feeds(qpref, upref, len(item_ids), buckets["item"], smoothing, history_len)
    feeds = {
        "rel_vec": np.ascontiguousarray(rel_vec, dtype=np.float32),
        "rel_logits": np.ascontiguousarray(rel_logits, dtype=np.float32),
        "ids": request_id_matrix(
            user_id, item_ids, normalize_query(query), price_bucket, pop_bucket, buckets
        ),
        **prefs,
    }
    return {name: feeds[name] for name in HEAD_INPUT_NAMES}


def preference_feeds(
    qpref: QueryPref | None,
    upref: UserPref | None,
    n_rows: int,
    item_buckets: int,
    smoothing: Smoothing | None = None,
    history_len: int = HISTORY_LEN,
) -> dict[str, np.ndarray]:
    """The head feeds that come from the preference lookup: ``pref_dense``, ``hist_items``,
    ``hist_levels`` (one query/user pair broadcast over ``n_rows`` candidates)."""
    hist_items, hist_levels = history_matrix(
        upref.history_items if upref else (),
        upref.history_levels if upref else (),
        n_rows,
        item_buckets,
        history_len,
    )
    return {
        "pref_dense": features_for_request(qpref, upref, n_rows, smoothing),
        "hist_items": hist_items,
        "hist_levels": hist_levels,
    }
