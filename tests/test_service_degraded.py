"""A failing preference store never fails a request: defaults, 200, ``degraded: [preferences_unavailable]``."""

from __future__ import annotations

import asyncio

import pytest
from service_fakes import FakeLookup, FakeStore, running, score_body

from features.prefs import QueryPref, UserPref
from service.app import create_app
from service.fake_scorer import FakeScorer
from service.settings import Settings


@pytest.mark.parametrize(
    ("mode", "outcome"), [("raise", "error"), ("hang", "timeout"), ("degraded", "timeout")]
)
async def test_store_failure_still_scores_with_degraded_flag(mode: str, outcome: str) -> None:
    healthy_app = create_app(Settings(), scorer=FakeScorer(), store=FakeStore())
    async with running(healthy_app) as client:
        healthy = (await client.post("/score", json=score_body(6))).json()
    app = create_app(Settings(redis={"deadline_ms": 5}), scorer=FakeScorer(), store=FakeStore(mode=mode))
    async with running(app) as client:
        resp = await client.post("/score", json=score_body(6))
        metrics = (await client.get("/metrics")).text
    assert resp.status_code == 200, resp.text
    assert resp.json()["degraded"] == ["preferences_unavailable"]
    # an unknown user/query and a failed lookup both mean "defaults": the same scores
    assert resp.json()["results"] == healthy["results"]
    assert 'prectr_degraded_total{reason="preferences_unavailable"} 1.0' in metrics
    assert f'prectr_preference_lookups_total{{outcome="{outcome}"}} 1.0' in metrics


async def test_known_preferences_reach_the_head_and_change_scores() -> None:
    store = FakeStore()
    app = create_app(Settings(), scorer=FakeScorer(), store=store)
    async with running(app) as client:
        before = (await client.post("/score", json=score_body(6, user_id="u9"))).json()
        store.queries["cordless drill"] = QueryPref((100, 80, 60, 40), (1, 4, 12, 20), users=30)
        store.users["u9"] = UserPref(
            (10, 10, 10, 10), (0, 1, 3, 6), activity=10, history_items=(123,), history_levels=(3,)
        )
        after = await client.post("/score", json=score_body(6, user_id="u9"))
        metrics = (await client.get("/metrics")).text
    assert after.status_code == 200 and after.json()["degraded"] == []
    assert after.json()["results"] != before["results"]
    assert 'prectr_preference_lookups_total{outcome="hit"} 1.0' in metrics
    assert 'prectr_preference_lookups_total{outcome="miss"} 1.0' in metrics


async def test_broken_relevance_cache_degrades_instead_of_failing() -> None:
    app = create_app(Settings(), scorer=FakeScorer(), store=FakeStore())

    def broken(*_: object) -> list[object]:
        raise MemoryError("cache exploded")

    async with running(app) as client:
        app.state.service.cache.get_request = broken
        resp = await client.post("/score", json=score_body(4))
    assert resp.status_code == 200 and resp.json()["degraded"] == ["relevance_cache_error"]
    assert len(resp.json()["results"]) == 4


async def test_encoder_runs_while_the_preference_lookup_is_outstanding() -> None:
    """The encoder (the whole CPU budget) starts as soon as the rows are tokenised: a slow preference
    lookup (a Redis round trip) overlaps it instead of delaying it."""
    scorer = FakeScorer()

    class WaitsForTheEncoder(FakeStore):
        saw_encoder_rows = False

        async def lookup(self, query: str, user_id: str) -> FakeLookup:
            for _ in range(500):  # up to ~0.5 s, within the lookup deadline
                if scorer.rows_run["encoder"]:
                    self.saw_encoder_rows = True
                    break
                await asyncio.sleep(0.001)
            return await super().lookup(query, user_id)

    store = WaitsForTheEncoder()
    app = create_app(Settings(redis={"deadline_ms": 1000}), scorer=scorer, store=store)
    async with running(app) as client:
        resp = await client.post("/score", json=score_body(6))
    assert resp.status_code == 200 and resp.json()["degraded"] == []
    assert store.saw_encoder_rows


async def test_failing_relevance_cache_put_never_fails_the_answered_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(Settings(), scorer=FakeScorer(), store=FakeStore())

    def broken(*_: object) -> None:
        raise MemoryError("cache exploded")

    async with running(app) as client:
        app.state.service.cache.put_many = broken
        first = await client.post("/score", json=score_body(4))
        second = await client.post("/score", json=score_body(4))
    assert [first.status_code, second.status_code] == [200, 200]
    assert first.json()["degraded"] == [] and len(first.json()["results"]) == 4
    assert "relevance cache put failed" in caplog.text
