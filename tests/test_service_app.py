"""The HTTP stack end to end with the deterministic fake scorer: answers, probes, draining, metrics."""

from __future__ import annotations

import asyncio
import gc
import sys

import numpy as np
import pytest
from fastapi.routing import APIRoute
from service_fakes import FakeStore, running, score_body, wait_until_ready

from service.app import create_app
from service.fake_scorer import FakeScorer
from service.settings import Settings

CONTRACT_METRICS = (
    "prectr_request_duration_seconds",
    "prectr_stage_duration_seconds",
    "prectr_batch_rows",
    "prectr_batch_cpu_seconds",
    "prectr_batch_wall_seconds",
    "prectr_gc_pause_seconds",
    "prectr_queue_depth",
    "prectr_shed_total",
    "prectr_degraded_total",
    "prectr_errors_total",
    "prectr_relevance_cache_lookups_total",
    "prectr_relevance_cache_admissions_total",
    "prectr_preference_lookups_total",
    "prectr_model_info",
    "prectr_ready",
    "prectr_requests_in_flight",
)


async def test_scores_every_candidate_sorted_with_levels_and_timings() -> None:
    app = create_app(Settings(), scorer=FakeScorer(version="fake-7"), store=FakeStore())
    async with running(app) as client:
        resp = await client.post("/score", json=score_body(12, request_id="req-42"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model_version"] == "fake-7" and body["degraded"] == [] and body["request_id"] == "req-42"
    assert resp.headers["x-request-id"] == "req-42"
    results = body["results"]
    assert sorted(r["item_id"] for r in results) == sorted(f"item-{i}" for i in range(12))
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    for r in results:
        assert len(r["p_level"]) == len(body["level_names"]) == 4
        assert abs(sum(r["p_level"]) - 1) < 1e-5
        assert abs(r["expected_level"] - float(np.dot(r["p_level"], range(4)))) < 1e-5
        assert 0 < r["p_click"] < 1 and 0 < r["score"] < 1
    stages = [part.split(";")[0] for part in resp.headers["server-timing"].split(", ")]
    assert stages == ["features", "prefs", "queue", "encoder", "head", "total"]
    assert set(body["timings"]) == set(stages)


async def test_same_request_gets_the_same_scores_and_top_k_keeps_the_best() -> None:
    app = create_app(Settings(), scorer=FakeScorer(), store=FakeStore())
    async with running(app) as client:
        full = (await client.post("/score", json=score_body(10))).json()["results"]
        again = (await client.post("/score", json=score_body(10))).json()["results"]
        top3 = (await client.post("/score", json=score_body(10, top_k=3))).json()["results"]
        unsorted = (await client.post("/score", json=score_body(10, sort=False))).json()["results"]
        picked = await client.post("/score", json=score_body(10, sort=False, top_k=3))
    assert full == again
    assert top3 == full[:3]
    assert [r["item_id"] for r in unsorted] == [f"item-{i}" for i in range(10)]
    best_three_in_request_order = sorted((r["item_id"] for r in full[:3]), key=lambda s: int(s[5:]))
    assert [r["item_id"] for r in picked.json()["results"]] == best_three_in_request_order


async def test_not_ready_until_warm_is_503_but_alive() -> None:
    scorer = FakeScorer()
    scorer.hold()  # warm-up blocks until released
    app = create_app(Settings(), scorer=scorer, store=FakeStore())
    async with running(app, wait_ready=False) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["warmed"] is False
        resp = await client.post("/score", json=score_body(3))
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "not_ready"
        assert resp.headers["retry-after"] == "1"
        scorer.release()
        await wait_until_ready(client)
        assert (await client.post("/score", json=score_body(3))).status_code == 200


async def test_unreachable_store_makes_the_instance_unready() -> None:
    app = create_app(Settings(), scorer=FakeScorer(), store=FakeStore(ping_ok=False))
    async with running(app, wait_ready=False) as client:
        await asyncio.sleep(0)
        resp = await client.get("/readyz")
        assert resp.status_code == 503 and resp.json()["checks"]["store_reachable"] is False


async def test_draining_finishes_in_flight_work_and_refuses_new_requests() -> None:
    scorer, store = FakeScorer(), FakeStore()
    app = create_app(Settings(), scorer=scorer, store=store)
    service = app.state.service
    async with running(app) as client:
        scorer.hold()
        in_flight = asyncio.create_task(client.post("/score", json=score_body(4)))
        while service.lifecycle.in_flight == 0:
            await asyncio.sleep(0.001)
        stopping = asyncio.create_task(service.stop())  # what the lifespan does on SIGTERM
        while not service.lifecycle.draining:
            await asyncio.sleep(0.001)
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["draining"] is True
        refused = await client.post("/score", json=score_body(2))
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "draining"
        assert not stopping.done()  # still waiting for the in-flight request
        scorer.release()
        assert (await in_flight).status_code == 200
        await stopping
    assert store.closed is False  # an injected store belongs to the caller


async def test_metrics_expose_the_contract_names_and_the_model() -> None:
    app = create_app(
        Settings(server={"slo_seconds": 0.25}), scorer=FakeScorer(version="fake-9"), store=FakeStore()
    )
    async with running(app) as client:
        await client.post("/score", json=score_body(5))
        text = (await client.get("/metrics")).text
    for name in CONTRACT_METRICS:
        assert f"\n{name}" in text, name
    assert 'prectr_model_info{provider="fake",variant="fp32",version="fake-9"} 1.0' in text
    assert 'prectr_request_duration_seconds_bucket{le="0.25",route="/score",status_class="2xx"} 1.0' in text
    assert 'prectr_stage_duration_seconds_count{stage="encoder"} 1.0' in text
    assert 'prectr_relevance_cache_lookups_total{result="miss"} 5.0' in text
    assert 'prectr_preference_lookups_total{outcome="miss"} 1.0' in text
    assert "prectr_ready 1.0" in text
    # inference CPU is counted per graph, and it is part of (never more than) the process's CPU
    scrape = {ln.split(" ")[0]: float(ln.split(" ")[1]) for ln in text.splitlines() if not ln.startswith("#")}
    inference = (
        scrape['prectr_batch_cpu_seconds_total{graph="encoder"}']
        + scrape['prectr_batch_cpu_seconds_total{graph="head"}']
    )
    assert 0 < inference <= scrape["process_cpu_seconds_total"]
    for graph in ("encoder", "head"):  # a batch thread's CPU never exceeds its wall time
        cpu = scrape[f'prectr_batch_cpu_seconds_total{{graph="{graph}"}}']
        assert 0 < cpu <= scrape[f'prectr_batch_wall_seconds_total{{graph="{graph}"}}']


async def test_serving_applies_gc_and_gil_settings_times_the_pauses_and_restores_python() -> None:
    python_default, python_switch = gc.get_threshold(), sys.getswitchinterval()
    app = create_app(
        Settings(server={"gc_gen0_threshold": 12_345, "switch_interval_ms": 0.25}),
        scorer=FakeScorer(),
        store=FakeStore(),
    )
    async with running(app) as client:
        assert gc.get_threshold() == (12_345, *python_default[1:])
        assert sys.getswitchinterval() == pytest.approx(0.00025)
        await client.post("/score", json=score_body(50))
        gc.collect(0)  # a collection while serving is timed
        text = (await client.get("/metrics")).text
    assert gc.get_threshold() == python_default and sys.getswitchinterval() == python_switch
    pause = next(
        ln for ln in text.splitlines() if ln.startswith('prectr_gc_pause_seconds_total{generation="0"}')
    )
    assert float(pause.split()[-1]) > 0
    assert 'python_gc_collections_total{generation="0"}' in text


async def test_unknown_exception_is_a_generic_500_that_leaks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = FakeScorer()
    app = create_app(Settings(), scorer=scorer, store=FakeStore())

    def explode(*_: object, **__: object) -> object:
        raise KeyError("secret internal detail")

    async with running(app) as client:
        monkeypatch.setattr("service.pipeline.check_limits", explode)
        resp = await client.post("/score", json=score_body(2))
        metrics = (await client.get("/metrics")).text
    assert resp.status_code == 500
    assert "secret" not in resp.text and resp.json()["error"]["code"] == "internal"
    assert 'prectr_errors_total{reason="internal"} 1.0' in metrics


async def test_score_skips_fastapi_routing_while_other_requests_still_use_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """POST /score, nearly all traffic, goes straight to its endpoint (same answers, errors and metrics
    label, tested above); FastAPI still routes everything else, e.g. answers GET /score with 405."""
    app = create_app(Settings(), scorer=FakeScorer(), store=FakeStore())
    routed: list[str] = []
    real_handle = APIRoute.handle

    async def recording_handle(self: APIRoute, scope: dict, receive: object, send: object) -> None:
        routed.append(f"{scope['method']} {scope['path']}")
        await real_handle(self, scope, receive, send)  # type: ignore[arg-type]

    async with running(app) as client:
        monkeypatch.setattr(APIRoute, "handle", recording_handle)
        scored = await client.post("/score", json=score_body(3))
        invalid = await client.post("/score", json={**score_body(3), "query": ""})
        wrong_method = await client.get("/score")
    assert scored.status_code == 200 and invalid.status_code == 422
    assert wrong_method.status_code == 405
    assert routed == ["GET /score"]
