"""Budget and overload: 429 + Retry-After at admission, 504 when the deadline passes while queued (rows
dropped before inference), disconnected clients dropped, a failed batch answered 500 and counted."""

from __future__ import annotations

import asyncio
import time

from service_fakes import FakeStore, running, score_body

from service.app import create_app
from service.errors import ClientDisconnected
from service.fake_scorer import FakeScorer
from service.schemas import ScoreRequest
from service.settings import Settings

# One encoder worker: these tests hold the one batch in flight and reason about what queues behind it.
SMALL_QUEUE = {"encoder": {"workers": 1, "max_rows": 4, "max_queue_rows": 8, "max_wait_ms": 0}}


async def _until(predicate, attempts: int = 2000) -> None:  # type: ignore[no-untyped-def]
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")


async def test_full_queue_is_429_with_retry_after_at_once() -> None:
    scorer = FakeScorer()
    settings = Settings(batching=SMALL_QUEUE, server={"max_candidates": 8})
    app = create_app(settings, scorer=scorer, store=FakeStore())
    async with running(app) as client:
        scorer.hold()
        first = asyncio.create_task(client.post("/score", json=score_body(8, query="drill one")))
        await _until(lambda: app.state.service.runtime.encoder.queued_rows > 0)
        refused = await client.post("/score", json=score_body(8, query="drill two"))
        scorer.release()
        assert (await first).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "overloaded"
    assert int(refused.headers["retry-after"]) >= 1
    assert 'prectr_shed_total{reason="queue_full"} 1.0' in metrics


async def test_predicted_deadline_miss_is_429_before_any_inference() -> None:
    scorer = FakeScorer(row_cost_s=0.05)  # warm-up "measured" 50 ms per row
    app = create_app(
        Settings(batching={"encoder": {"workers": 1, "max_rows": 4}}), scorer=scorer, store=FakeStore()
    )
    async with running(app) as client:
        scorer.hold()
        blocker = asyncio.create_task(
            client.post("/score", json=score_body(4, query="drill one", budget_ms=5000))
        )
        await _until(lambda: scorer.started_batches == 1)
        # 4 rows in flight + 20 own rows at 50 ms a row cannot fit 200 ms
        resp = await client.post("/score", json=score_body(20, query="paint two", budget_ms=200))
        scorer.release()
        assert (await blocker).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert resp.status_code == 429 and "predicted completion" in resp.json()["error"]["message"]
    assert int(resp.headers["retry-after"]) >= 1
    assert sum(scorer.rows_run["encoder"]) == 4  # only the blocker ran
    assert 'prectr_shed_total{reason="deadline_predicted"} 1.0' in metrics


async def test_an_idle_service_admits_even_when_its_cost_estimate_is_pessimistic() -> None:
    """A cost inflated by a past burst must not refuse every request for ever: idle means try it."""
    scorer = FakeScorer(row_cost_s=0.05)
    app = create_app(Settings(), scorer=scorer, store=FakeStore())
    async with running(app) as client:
        resp = await client.post("/score", json=score_body(20, budget_ms=200))
        cost_after = app.state.service.runtime.encoder.row_cost_s
    assert resp.status_code == 200
    assert cost_after < 0.05  # the admitted request's batch re-measured the cost


async def test_deadline_passing_in_the_queue_is_504_and_its_rows_never_run() -> None:
    scorer = FakeScorer()
    app = create_app(
        Settings(batching={"encoder": {"workers": 1, "max_rows": 4, "max_wait_ms": 0}}),
        scorer=scorer,
        store=FakeStore(),
    )
    async with running(app) as client:
        scorer.hold()
        blocker = asyncio.create_task(
            client.post("/score", json=score_body(4, query="drill one", budget_ms=5000))
        )
        await _until(lambda: scorer.started_batches == 1)
        late = await client.post("/score", json=score_body(3, query="paint two", budget_ms=30))
        # the timed-out request taught admission that requests take longer than the queues predict
        learnt_offset_s = app.state.service.pipeline.calibration.offset_s
        scorer.release()
        assert (await blocker).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert late.status_code == 504 and late.json()["error"]["code"] == "deadline_exceeded"
    assert 0.1 * 0.015 < learnt_offset_s < 0.1 * 0.100  # one EWMA step (alpha 0.1) toward ~25 ms unpredicted
    assert sum(scorer.rows_run["encoder"]) == 4  # only the blocker's rows were ever run
    assert 'prectr_shed_total{reason="deadline_expired"} 1.0' in metrics
    assert app.state.service.runtime is None or app.state.service.runtime.encoder.queued_rows == 0


async def test_disconnected_client_is_dropped_before_inference() -> None:
    scorer = FakeScorer()
    app = create_app(
        Settings(batching={"encoder": {"workers": 1, "max_rows": 4, "max_wait_ms": 0}}),
        scorer=scorer,
        store=FakeStore(),
    )
    service = app.state.service
    async with running(app) as client:
        scorer.hold()
        blocker = asyncio.create_task(
            client.post("/score", json=score_body(4, query="drill one", budget_ms=5000))
        )
        await _until(lambda: scorer.started_batches == 1)
        gone = asyncio.Event()

        async def receive() -> dict[str, str]:
            await gone.wait()
            return {"type": "http.disconnect"}

        request = ScoreRequest.model_validate(score_body(3, query="paint two", budget_ms=5000))
        queued_before = service.runtime.encoder.queued_rows
        scoring = asyncio.create_task(service.score(request, receive, started=time.perf_counter()))
        await _until(lambda: service.runtime.encoder.queued_rows == queued_before + 3)
        gone.set()
        try:
            await scoring
            raise AssertionError("expected ClientDisconnected")
        except ClientDisconnected:
            pass
        assert service.runtime.encoder.queued_rows == queued_before
        scorer.release()
        assert (await blocker).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert sum(scorer.rows_run["encoder"]) == 4
    assert 'prectr_shed_total{reason="client_disconnected"} 1.0' in metrics


async def test_failed_batch_is_a_500_naming_inference_and_counted() -> None:
    scorer = FakeScorer(fail_batches=1)
    app = create_app(Settings(), scorer=scorer, store=FakeStore())
    async with running(app) as client:
        failed = await client.post("/score", json=score_body(3))
        ok = await client.post("/score", json=score_body(3))
        metrics = (await client.get("/metrics")).text
    assert failed.status_code == 500 and failed.json()["error"]["code"] == "inference_failed"
    assert "encoder inference failed" in failed.json()["error"]["message"]
    assert ok.status_code == 200
    assert 'prectr_errors_total{reason="batch_failed"} 1.0' in metrics
