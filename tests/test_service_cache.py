"""The relevance cache: LRU by (model version, normalised query, item id, title hash); the encoder is
skipped for cached pairs."""

from __future__ import annotations

import asyncio
import json
import random
from collections import OrderedDict

import numpy as np
import pytest
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
        assert len(cache.get_many(cache.keys_for(version, query, [item], [title]))[0]) == 0
    hit, vec, logits = cache.get_many([key])
    assert hit.tolist() == [0] and vec.tolist() == [[0.0, 1.0]] and logits.shape == (1, 4)
    assert (cache.hits, cache.misses) == (1, 4)


class CountingCache(RelevanceCache):
    """Counts the per-candidate lookups (``get_many`` calls) a request's lookup makes."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.per_candidate_lookups = 0

    def get_many(self, keys):  # type: ignore[no-untyped-def]
        self.per_candidate_lookups += 1
        return super().get_many(keys)


def test_a_query_with_no_entries_is_answered_without_per_candidate_lookups() -> None:
    cache = CountingCache(10)
    cache.put_request("v1", "drill", ["a", "b"], ["ta", "tb"], np.ones((2, 2)), np.zeros((2, 4)))
    hit, _, _ = cache.get_request("v1", "hammer", ["a", "b", "c"], ["ta", "tb", "tc"])
    assert len(hit) == 0 and cache.per_candidate_lookups == 0 and cache.misses == 3
    hit, vec, _ = cache.get_request("v2", "drill", ["a"], ["ta"])  # another model version: unknown too
    assert len(hit) == 0 and cache.per_candidate_lookups == 0
    hit, vec, _ = cache.get_request("v1", "drill", ["c", "b"], ["tc", "tb"])
    assert hit.tolist() == [1] and vec.tolist() == [[1.0, 1.0]] and cache.per_candidate_lookups == 1


def test_a_query_whose_entries_were_all_evicted_or_cleared_is_unknown_again() -> None:
    cache = CountingCache(2)
    cache.put_request("v1", "q1", ["a", "b"], ["ta", "tb"], np.ones((2, 2)), np.zeros((2, 4)))
    cache.put_request("v1", "q2", ["a"], ["ta"], np.ones((1, 2)), np.zeros((1, 4)))  # evicts q1's "a"
    cache.put_request("v1", "q2", ["b"], ["tb"], np.ones((1, 2)), np.zeros((1, 4)))  # evicts q1's "b"
    lookups = cache.per_candidate_lookups
    assert len(cache.get_request("v1", "q1", ["a", "b"], ["ta", "tb"])[0]) == 0
    assert cache.per_candidate_lookups == lookups  # q1 has no entries left: no per-candidate lookups
    assert cache.get_request("v1", "q2", ["a", "b"], ["ta", "tb"])[0].tolist() == [0, 1]
    cache.clear()
    lookups = cache.per_candidate_lookups
    assert len(cache.get_request("v1", "q2", ["a", "b"], ["ta", "tb"])[0]) == 0
    assert cache.per_candidate_lookups == lookups


def test_least_recently_used_entry_is_evicted_first() -> None:
    cache = RelevanceCache(2)
    keys = cache.keys_for("v1", "q", ["a", "b", "c"], ["ta", "tb", "tc"])
    _put(cache, keys[:2])
    cache.get_many([keys[0]])  # a is now more recent than b
    _put(cache, keys[2:])
    hit, vec, _ = cache.get_many(keys)
    assert hit.tolist() == [0, 2] and len(cache) == 2
    assert vec.tolist() == [[0.0, 1.0], [0.0, 1.0]]  # c took b's row; a kept its own


def test_values_are_copies_that_later_puts_cannot_change() -> None:
    cache = RelevanceCache(1)
    a, b = cache.keys_for("v1", "q", ["a", "b"], ["ta", "tb"])
    rel_vec = np.array([[1.0, 2.0]], np.float32)
    cache.put_many([a], rel_vec, np.zeros((1, 4)))
    rel_vec[:] = 9.0  # the caller reuses its array
    _, held, _ = cache.get_many([a])
    cache.put_many([b], np.array([[5.0, 6.0]], np.float32), np.ones((1, 4)))  # evicts a, reuses its row
    assert held.tolist() == [[1.0, 2.0]]
    assert cache.get_many([b])[1].tolist() == [[5.0, 6.0]]


def test_more_keys_than_capacity_keeps_the_last_ones() -> None:
    cache = RelevanceCache(2)
    keys = cache.keys_for("v1", "q", ["a", "b", "c"], ["ta", "tb", "tc"])
    _put(cache, keys)
    hit, vec, _ = cache.get_many(keys)
    assert hit.tolist() == [1, 2] and vec.tolist() == [[2.0, 3.0], [4.0, 5.0]]


def test_rows_of_another_width_start_the_cache_afresh() -> None:
    cache = RelevanceCache(4)
    old = cache.keys_for("v1", "q", ["a"], ["ta"])
    new = cache.keys_for("v2", "q", ["a"], ["ta"])
    _put(cache, old)
    cache.put_many(new, np.ones((1, 3), np.float32), np.zeros((1, 4)))  # a model with 3-wide vectors
    assert len(cache) == 1 and len(cache.get_many(old)[0]) == 0
    assert cache.get_many(new)[1].tolist() == [[1.0, 1.0, 1.0]]


class OneByOneLru:
    """The reference: an LRU dict that stores and looks keys up one at a time."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.entries = capacity, OrderedDict[tuple, list[float]]()

    def put(self, keys: list[tuple], values: np.ndarray) -> None:
        for key, value in list(zip(keys, values.tolist(), strict=True))[-self.capacity :]:
            self.entries[key] = value
            self.entries.move_to_end(key)
            if len(self.entries) > self.capacity:
                self.entries.popitem(last=False)

    def get(self, keys: list[tuple]) -> tuple[list[int], list[list[float]]]:
        hits = [i for i, key in enumerate(keys) if key in self.entries]
        for i in hits:
            self.entries.move_to_end(keys[i])
        return hits, [self.entries[keys[i]] for i in hits]


@pytest.mark.parametrize("seed", range(30))
def test_bulk_puts_and_lookups_behave_like_one_key_at_a_time(seed: int) -> None:
    rng = random.Random(seed)
    capacity = rng.randint(1, 12)
    cache, reference = RelevanceCache(capacity), OneByOneLru(capacity)
    universe = [("v1", q, item, t) for q in ("q1", "q2", "q3") for item in "abcde" for t in ("ta", "tb")]
    universe += [("v2", "q1", item, "ta") for item in "ab"]
    keys_of = lambda picked: [(v, q, i, hash(t)) for v, q, i, t in picked]  # noqa: E731
    for step in range(60):
        if rng.random() < 0.3:  # one query's items, as a request carries them
            query = rng.choice(universe)[:2]
            pool = [p for p in universe if p[:2] == query]
            picked = rng.sample(pool, rng.randint(1, min(4, len(pool))))
        else:  # repeats and other queries too
            picked = [rng.choice(universe) for _ in range(rng.randint(1, 8))]
        keys = keys_of(picked)
        one_request = len({p[:2] for p in picked}) == 1 and len(set(picked)) == len(picked)
        if rng.random() < 0.5:
            values = np.arange(len(keys) * 2, dtype=np.float32).reshape(-1, 2) + 100 * step
            logits = np.zeros((len(keys), 4), np.float32)
            if one_request and rng.random() < 0.5:  # one request's put: one query, distinct items
                items, titles = [p[2] for p in picked], [p[3] for p in picked]
                cache.put_request(*picked[0][:2], items, titles, values, logits)
            else:
                cache.put_many(keys, values, logits)
            reference.put(keys, values)
        else:
            version, query = picked[0][:2]
            same = [p for p in picked if p[:2] == (version, query)]
            if rng.random() < 0.5 and len(set(same)) == len(same):  # one request: one query, distinct items
                got = cache.get_request(version, query, [p[2] for p in same], [p[3] for p in same])
                want = reference.get(keys_of(same))
            else:
                got, want = cache.get_many(keys), reference.get(keys)
            assert (got[0].tolist(), got[1].tolist()) == want
        assert len(cache) == len(reference.entries) <= capacity
    everything = keys_of(universe)
    got = cache.get_many(everything)
    assert (got[0].tolist(), got[1].tolist()) == reference.get(everything)


def test_zero_capacity_disables_the_cache() -> None:
    cache = RelevanceCache(0)
    keys = cache.keys_for("v1", "q", ["a"], ["ta"])
    _put(cache, keys)
    assert len(cache.get_many(keys)[0]) == 0 and len(cache) == 0


def test_a_query_is_admitted_from_its_second_cache_miss_request() -> None:
    cache = RelevanceCache(10, admit_after=2)
    assert not cache.admit("v1", "drill")  # a one-off query so far: only the query is remembered
    assert cache.admit("v1", "drill")
    assert not cache.admit("v2", "drill")  # another model version is another query
    cache.put_request("v1", "drill", ["a"], ["ta"], np.ones((1, 2)), np.zeros((1, 4)))
    assert cache.admit("v1", "drill")  # a query with entries is admitted at once, every time
    assert RelevanceCache(10).admit("v1", "new")  # admit_after=1: the first request stores its pairs
    assert not RelevanceCache(0, admit_after=1).admit("v1", "new")  # a disabled cache stores nothing


def test_the_doorkeeper_forgets_its_oldest_sightings_first() -> None:
    cache = RelevanceCache(10, admit_after=3, sightings=2)
    assert not cache.admit("v", "q1") and not cache.admit("v", "q2")
    assert not cache.admit("v", "q1")  # q1 seen twice, now the newest sighting
    assert not cache.admit("v", "q3")  # over the limit: q2, the oldest, is forgotten
    assert cache.admit("v", "q1")  # third sighting
    assert not cache.admit("v", "q2") and not cache.admit("v", "q2") and cache.admit("v", "q2")
    cache.admit("v", "q4")
    cache.clear()  # a reload of the same version forgets sightings too
    assert not cache.admit("v", "q4") and not cache.admit("v", "q4")


def test_admit_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="admit_after"):
        RelevanceCache(10, admit_after=0)


async def test_a_one_off_query_is_not_cached_and_a_returning_one_is() -> None:
    """With the default admission a query's first request stores nothing, its second stores the pairs,
    and its third skips the encoder for them."""
    scorer = FakeScorer()
    app = create_app(Settings(), scorer=scorer, store=FakeStore())
    cache = app.state.service.cache
    async with running(app) as client:
        await client.post("/score", json=score_body(6, query="garden hose"))
        await asyncio.sleep(0)  # the put (if any) runs after the response
        assert len(cache) == 0
        await client.post("/score", json=score_body(6, query="garden hose"))
        await asyncio.sleep(0)
        assert len(cache) == 6
        third = await client.post("/score", json=score_body(6, query="garden hose"))
        metrics = (await client.get("/metrics")).text
    assert third.status_code == 200
    assert sum(scorer.rows_run["encoder"]) == 6 + 6
    # the third request had no misses: nothing to admit
    assert 'prectr_relevance_cache_admissions_total{result="deferred"} 1.0' in metrics
    assert 'prectr_relevance_cache_admissions_total{result="stored"} 1.0' in metrics


async def test_repeated_query_skips_the_encoder_for_cached_pairs() -> None:
    scorer = FakeScorer()
    app = create_app(Settings(cache={"admit_after": 1}), scorer=scorer, store=FakeStore())
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


async def test_new_pairs_are_cached_only_after_the_response_is_written() -> None:
    """The cache put is off the latency path: when the response body goes out the cache is still empty,
    and the pairs are there on the next loop iteration."""
    app = create_app(Settings(cache={"admit_after": 1}), scorer=FakeScorer(), store=FakeStore())
    cache = app.state.service.cache
    seen_at_body: list[int] = []
    body = json.dumps(score_body(5)).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/score",
        "raw_path": b"/score",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("prectr.test", 80),
    }

    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays connected (the service watches for disconnects)
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        if message["type"] == "http.response.body":
            seen_at_body.append(len(cache))

    async with running(app):
        await app(scope, receive, send)
        await asyncio.sleep(0)
        assert seen_at_body == [0] and len(cache) == 5


def test_title_token_cache_keeps_the_most_recent_titles() -> None:
    cache = TitleTokenCache(2)
    cache.put_many(["a", "b"], [[1], [2]])
    assert cache.get_many(["a", "x"]) == [[1], None]  # a is now the most recent
    cache.put_many(["c"], [[3]])
    assert cache.get_many(["a", "b", "c"]) == [[1], None, [3]]


async def test_a_disabled_cache_admits_nothing_and_counts_no_admissions() -> None:
    app = create_app(Settings(cache={"capacity": 0}), scorer=FakeScorer(), store=FakeStore())
    async with running(app) as client:
        for _ in range(3):
            assert (await client.post("/score", json=score_body(4, query="drill"))).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert len(app.state.service.cache) == 0
    assert 'prectr_relevance_cache_admissions_total{result="stored"} 0.0' in metrics
    assert 'prectr_relevance_cache_admissions_total{result="deferred"} 0.0' in metrics
