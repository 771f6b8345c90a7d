"""Column contract of the tables ``prectr data build`` writes (one Parquet file per table).

Every downstream consumer (preference mining, training, evaluation) reads these names; change them here
and nowhere else. Latent simulator truths (``appeal``, ``strictness``, ``delta``) are stored so tests and
reports can check recoverability, but models must never read them as features.
"""

from __future__ import annotations

TABLES: dict[str, dict[str, str]] = {
    # one row per catalogue item
    "items": {
        "item_id": "int64",  # product_uid for Home Depot
        "title": "string",
        "price_bucket": "int8",  # observable, noisy, 1..10
        "pop_bucket": "int8",  # observable, noisy, 1..10
        "appeal": "float32",  # latent a_i
    },
    # one row per distinct (raw) search term
    "queries": {
        "query_id": "int64",
        "query": "string",  # as typed
        "query_norm": "string",  # features.normalize.normalize_query(query)
        "popularity": "float64",  # Zipf sampling probability
        "strictness": "float32",  # latent s_q
        "split": "string",  # relevance split by query: train / valid / test
    },
    "users": {
        "user_id": "int64",
        "delta": "float32",  # latent personal deviation; s_uq = s_q * exp(delta)
        "activity": "float32",  # latent request rate
        "train_requests": "int32",
        "train_clicks": "int32",
        "segment": "string",  # new (no training request) / low (<5 training clicks) / active
    },
    # one row per search request
    "requests": {"request_id": "int64", "day": "int16", "user_id": "int64", "query_id": "int64"},
    # logged exposures (top-10 of the logging policy), days 1..D+1
    "impressions": {
        "request_id": "int64",
        "day": "int16",
        "user_id": "int64",
        "query_id": "int64",
        "item_id": "int64",
        "position": "int8",  # 0-based rank
        "level": "int8",  # true relevance level 0..K-1
        "click": "int8",
        "p_click": "float32",  # true click probability at that position
    },
    # coarse-ranking view: every candidate of every test-day request
    "candidates": {
        "request_id": "int64",
        "user_id": "int64",
        "query_id": "int64",
        "item_id": "int64",
        "level": "int8",
        "source": "string",  # labelled / random / near_miss
        "p_click_true": "float32",  # true click probability at a fixed position (0)
    },
    # relevance labels: human-labelled pairs plus sampled random negatives (level 0)
    "relevance": {
        "query_id": "int64",
        "item_id": "int64",
        "level": "int8",
        "relevance_raw": "float32",  # mean rater score, NaN for sampled negatives
        "split": "string",  # train / valid / test, by query
    },
}

LEVEL_NAMES = ("irrelevant", "weak", "relevant", "strong")
NUM_LEVELS = len(LEVEL_NAMES)
SEGMENTS = ("new", "low", "active")  # users.segment
LOW_ACTIVE_CLICKS = 5  # "low": fewer training-day clicks than this (METHOD.md §2)
CANDIDATE_SOURCES = ("labelled", "near_miss", "random")  # candidates.source
SPLITS = ("train", "valid", "test")  # queries.split and relevance.split
