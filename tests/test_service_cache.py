"""The relevance cache: LRU by (model version, normalised query, item id, title hash); the encoder is
skipped for cached pairs."""

from __future__ import annotations

import numpy as np
from service_fakes import FakeStore, running, score_body

from service.app import create_app
from service.fake_scorer import FakeScorer
from service.relevance_cache import RelevanceCache
from service.settings import Settings
from service.token_cache import TitleTokenCache


def _put(cache: RelevanceCache, keys: list) -> None:
    cache.put_many(keys, np.arange(len(keys) * 2, dtype=np.float32).reshape(-1, 2), np.zeros((len(keys), 4)))


def test_key_separates_version_query_item_and_title() -> None:
    cache = RelevanceCache(10)
    (key,) = cache.keys_for("v1", "drill", ["a"], ["Red drill"])
    _put(cache, [key])
    variants = [
        ("v2", "drill", "a", "Red drill"),
        ("v1", "drills", "a", "Red drill"),
        ("v1", "drill", "b", "Red drill"),
        ("v1", "drill", "a", "Blue drill"),
    ]
    for version, query, item, title in variants:
        assert cache.get_many(cache.keys_for(version, query, [item], [title])) == [None]
    (hit,) = cache.get_many([key])
    assert hit is not None and hit[0].tolist() == [0.0, 1.0]
    assert (cache.hits, cache.misses) == (1, 4)


def test_least_recently_used_entry_is_evicted_first() -> None:
    cache = RelevanceCache(2)
    keys = cache.keys_for("v1", "q", ["a", "b", "c"], ["ta", "tb", "tc"])
    _put(cache, keys[:2])
    cache.get_many([keys[0]])  # a is now more recent than b
    _put(cache, keys[2:])
    assert [v is not None for v in cache.get_many(keys)] == [True, False, True]
    assert len(cache) == 2


def test_zero_capacity_disables_the_cache() -> None:
    cache = RelevanceCache(0)
    keys = cache.keys_for("v1", "q", ["a"], ["ta"])
    _put(cache, keys)
    assert cache.get_many(keys) == [None] and len(cache) == 0


async def test_repeated_query_skips_the_encoder_for_cached_pairs() -> None:
    scorer = FakeScorer()
    app = create_app(Settings(), scorer=scorer, store=FakeStore())
    async with running(app) as client:
        first = (await client.post("/score", json=score_body(8, query="Cordless Drill"))).json()
        # same normalised query; two more candidates than before
        second = (await client.post("/score", json=score_body(10, query="  cordless   DRILL "))).json()
        metrics = (await client.get("/metrics")).text
    assert sum(scorer.rows_run["encoder"]) == 8 + 2
    by_id = {r["item_id"]: r["score"] for r in second["results"]}
    assert all(abs(by_id[r["item_id"]] - r["score"]) < 1e-7 for r in first["results"])
    assert 'prectr_relevance_cache_lookups_total{result="hit"} 8.0' in metrics
    assert 'prectr_relevance_cache_lookups_total{result="miss"} 10.0' in metrics


def test_title_token_cache_keeps_the_most_recent_titles() -> None:
    cache = TitleTokenCache(2)
    cache.put_many(["a", "b"], [[1], [2]])
    assert cache.get_many(["a", "x"]) == [[1], None]  # a is now the most recent
    cache.put_many(["c"], [[3]])
    assert cache.get_many(["a", "b", "c"]) == [[1], None, [3]]
