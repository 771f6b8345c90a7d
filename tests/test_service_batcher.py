"""The micro-batcher on its own: grouping, splitting, every waiter failed together, drops, bounds."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from service.batcher import BatchResult, MicroBatcher, usable_cores, worker_cores
from service.errors import BatchFailed, DeadlineExceeded, Draining, Overloaded
from service.scorer import BatchedGraph, Feeds
from service.settings import EncoderBatching, GraphBatching


class EchoGraph(BatchedGraph):
    """Returns each row's first token doubled; records batch shapes; can fail or block."""

    def __init__(self) -> None:
        super().__init__("encoder", {"input_ids": np.dtype(np.int64)})
        self.shapes: list[tuple[int, ...]] = []
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()
        self.entered = 0

    def run(self, feeds: Feeds) -> Feeds:
        self.entered += 1
        self.gate.wait()
        if self.fail:
            raise RuntimeError("device lost")
        self.shapes.append(feeds["input_ids"].shape)
        return {"out": feeds["input_ids"][:, 0].astype(np.float32) * 2}


def rows(values: Sequence[int], width: int) -> Feeds:
    ids = np.zeros((len(values), width), np.int64)
    ids[:, 0] = values
    return {"input_ids": ids}


async def occupy(batcher: MicroBatcher, graph: EchoGraph) -> asyncio.Future[BatchResult]:
    """Hold the worker inside a one-row batch (the graph's gate closed) until ``graph.gate.set()``."""
    graph.gate.clear()
    blocker = asyncio.ensure_future(batcher.submit(rows([1], 16), 1, 16, far()))
    await until(lambda: graph.entered == 1)
    return blocker


async def started(  # type: ignore[no-untyped-def]
    graph: EchoGraph,
    max_rows: int = 8,
    max_queue_rows: int = 64,
    max_wait_ms: float = 0.0,
    workers: int = 1,
    max_tokens: int = 0,
):
    batcher = MicroBatcher(
        graph,
        GraphBatching(
            max_rows=max_rows,
            max_queue_rows=max_queue_rows,
            max_wait_ms=max_wait_ms,
            workers=workers,
            max_tokens=max_tokens,
        ),
        row_cost_s=1e-4,
    )
    batcher.start()
    return batcher


def far() -> float:
    return asyncio.get_running_loop().time() + 60


async def until(predicate) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")


async def test_waiters_get_their_own_rows_back_from_a_shared_padded_batch() -> None:
    graph = EchoGraph()
    batcher = await started(graph, max_rows=16, max_wait_ms=20)
    a, b = await asyncio.gather(
        batcher.submit(rows([1, 2], 12), 2, 16, far()), batcher.submit(rows([3, 4, 5], 16), 3, 16, far())
    )
    await batcher.stop()
    assert graph.shapes == [(5, 16)]  # one batch, the 12-wide part padded to its 16-token bucket
    np.testing.assert_array_equal(a.outputs["out"], [2, 4])
    np.testing.assert_array_equal(b.outputs["out"], [6, 8, 10])


async def test_batches_never_mix_length_buckets_or_exceed_max_rows() -> None:
    graph = EchoGraph()
    batcher = await started(graph, max_rows=4, max_wait_ms=20)
    big, small, other = await asyncio.gather(
        batcher.submit(rows(list(range(10)), 16), 10, 16, far()),
        batcher.submit(rows([7], 16), 1, 16, far()),
        batcher.submit(rows([9, 9], 32), 2, 32, far()),
    )
    await batcher.stop()
    assert all(n <= 4 for n, _ in graph.shapes)
    assert sorted(graph.shapes) == sorted([(4, 16), (4, 16), (3, 16), (2, 32)])
    np.testing.assert_array_equal(big.outputs["out"], np.arange(10) * 2)
    np.testing.assert_array_equal(small.outputs["out"], [14])
    np.testing.assert_array_equal(other.outputs["out"], [18, 18])


async def test_the_token_budget_caps_rows_per_batch_by_bucket_width() -> None:
    graph = EchoGraph()
    batcher = await started(graph, max_rows=8, max_wait_ms=20, max_tokens=64)
    narrow, wide, widest = await asyncio.gather(
        batcher.submit(rows(list(range(10)), 16), 10, 16, far()),  # 64 tokens: 4 rows of 16
        batcher.submit(rows([1, 2, 3], 32), 3, 32, far()),  # 2 rows of 32
        batcher.submit(rows([5], 128), 1, 128, far()),  # wider than the budget: still runs, alone
    )
    await batcher.stop()
    assert sorted(graph.shapes) == sorted([(4, 16), (4, 16), (2, 16), (2, 32), (1, 32), (1, 128)])
    np.testing.assert_array_equal(narrow.outputs["out"], np.arange(10) * 2)
    np.testing.assert_array_equal(wide.outputs["out"], [2, 4, 6])
    np.testing.assert_array_equal(widest.outputs["out"], [10])


def test_the_encoder_token_budget_defaults_by_provider() -> None:
    encoder = EncoderBatching()
    assert encoder.max_tokens is None  # resolved when the provider is known
    cpu, cuda = encoder.for_provider("cpu"), encoder.for_provider("cuda")
    assert cpu.rows_per_batch(16) == 64 and cpu.rows_per_batch(64) == 16 and cpu.rows_per_batch(None) == 256
    assert cuda.rows_per_batch(64) == 256  # a GPU batches whole buckets
    pinned = EncoderBatching(max_tokens=2048).for_provider("cpu")
    assert pinned.rows_per_batch(64) == 32


def test_encoder_threads_are_pinned_on_the_cpu_provider_only() -> None:
    assert EncoderBatching().for_provider("cpu").pin_cores is True
    assert EncoderBatching().for_provider("cuda").pin_cores is False  # they mostly wait on the GPU
    assert EncoderBatching(pin_cores=False).for_provider("cpu").pin_cores is False
    assert EncoderBatching(pin_cores=True).for_provider("cuda").pin_cores is True


def test_more_workers_than_cores_are_not_pinned() -> None:
    cores = usable_cores()
    assert worker_cores(len(cores) + 1) == [None] * (len(cores) + 1)
    if hasattr(os, "sched_setaffinity"):
        assert worker_cores(len(cores)) == cores


def _thread_cores(batcher: MicroBatcher) -> list[set[int]]:
    return [os.sched_getaffinity(t.native_id) for t in batcher._threads if t.native_id is not None]


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(usable_cores()) < 2, reason="needs 2 cores and thread pinning"
)
async def test_pinned_encoder_workers_each_run_on_a_core_of_their_own() -> None:
    graph = EchoGraph()
    cfg = EncoderBatching(workers=2, max_tokens=0, pin_cores=True)
    batcher = MicroBatcher(graph, cfg, row_cost_s=1e-4)
    batcher.start()
    await until(lambda: all(len(c) == 1 for c in _thread_cores(batcher)))
    assert sorted(min(c) for c in _thread_cores(batcher)) == usable_cores()[:2]
    assert os.sched_getaffinity(0) == set(usable_cores())  # the event loop's thread is not pinned
    assert (await batcher.submit(rows([3], 16), 1, 16, far())).outputs["out"].tolist() == [6.0]
    await batcher.stop()

    unpinned = MicroBatcher(graph, cfg.model_copy(update={"pin_cores": False}), row_cost_s=1e-4)
    unpinned.start()
    assert (await unpinned.submit(rows([4], 16), 1, 16, far())).outputs["out"].tolist() == [8.0]
    assert _thread_cores(unpinned) == [set(usable_cores())] * 2
    await unpinned.stop()


async def test_a_failed_batch_fails_every_waiter_in_it() -> None:
    graph = EchoGraph()
    graph.fail = True
    batcher = await started(graph, max_rows=16, max_wait_ms=20)
    outcomes = await asyncio.gather(
        *(batcher.submit(rows([i], 16), 1, 16, far()) for i in range(3)), return_exceptions=True
    )
    assert graph.entered == 1  # the three requests shared one batch
    assert all(isinstance(o, BatchFailed) for o in outcomes), outcomes
    graph.fail = False
    ok = await batcher.submit(rows([5], 16), 1, 16, far())  # the batcher survives the failure
    await batcher.stop()
    np.testing.assert_array_equal(ok.outputs["out"], [10])


async def test_expired_and_cancelled_rows_are_dropped_before_inference() -> None:
    graph = EchoGraph()
    batcher = await started(graph)
    blocker = await occupy(batcher, graph)
    loop = asyncio.get_running_loop()
    expired = asyncio.ensure_future(batcher.submit(rows([2, 2], 16), 2, 16, loop.time() + 0.01))
    cancelled = asyncio.ensure_future(batcher.submit(rows([3, 3, 3], 16), 3, 16, far()))
    await until(lambda: batcher.queued_rows == 5)
    cancelled.cancel()
    await asyncio.sleep(0.02)  # let the first deadline pass while the accelerator is busy
    assert batcher.queued_rows == 2  # the cancelled rows left the queue at once
    graph.gate.set()
    await blocker
    with pytest.raises(DeadlineExceeded):
        await expired
    await batcher.stop()
    assert graph.shapes == [(1, 16)]
    assert batcher.queued_rows == 0


async def test_queue_is_bounded_in_rows() -> None:
    graph = EchoGraph()
    batcher = await started(graph, max_rows=4, max_queue_rows=6)
    graph.gate.clear()
    first = asyncio.ensure_future(batcher.submit(rows([1] * 4, 16), 4, 16, far()))
    await until(lambda: graph.entered == 1)
    second = asyncio.ensure_future(batcher.submit(rows([1] * 4, 16), 4, 16, far()))
    await until(lambda: batcher.queued_rows == 4)
    assert batcher.has_room(2) and not batcher.has_room(3)
    with pytest.raises(Overloaded) as refused:
        await batcher.submit(rows([1] * 3, 16), 3, 16, far())
    assert refused.value.reason == "queue_full" and refused.value.retry_after >= 1
    graph.gate.set()
    await asyncio.gather(first, second)
    await batcher.stop()


async def test_per_row_cost_tracks_measured_batches_and_predicts_waits() -> None:
    graph = EchoGraph()
    batcher = MicroBatcher(graph, GraphBatching(max_rows=8), row_cost_s=10.0)  # absurd prior
    batcher.start()
    assert batcher.row_cost_s == pytest.approx(10.0)
    for _ in range(30):
        await batcher.submit(rows([1] * 8, 16), 8, 16, far())
    assert batcher.row_cost_s < 1.0  # measured batches pulled it down
    assert batcher.idle
    assert batcher.predicted_wait_s(100) == pytest.approx(100 * batcher.row_cost_s, rel=0.01)
    await batcher.stop()


def test_small_tail_batches_do_not_inflate_the_per_row_cost() -> None:
    """A batch costs fixed overhead + rows x per-row time; 1-row tails must not set the price of 64 rows."""
    batcher = MicroBatcher(EchoGraph(), GraphBatching(max_rows=64), row_cost_s=1e-4)
    for _ in range(20):
        batcher.record_batch(0.002 + 64 * 0.0001, 64)  # 2 ms per call + 0.1 ms per row
        batcher.record_batch(0.002 + 1 * 0.0001, 1)
    # 65 rows cost 10.5 ms: ~0.16 ms a row; averaging per-batch ratios would say ~1.1 ms
    assert batcher.row_cost_s == pytest.approx(0.0105 / 65, rel=0.25)


async def test_stop_finishes_the_batch_in_flight_and_fails_the_queued_waiters() -> None:
    graph = EchoGraph()
    batcher = await started(graph)
    running = await occupy(batcher, graph)
    queued = asyncio.ensure_future(batcher.submit(rows([2], 16), 1, 16, far()))
    await until(lambda: batcher.queued_rows == 1)
    stopping = asyncio.ensure_future(batcher.stop())
    await until(lambda: not batcher.accepting)
    with pytest.raises(Draining):
        await batcher.submit(rows([3], 16), 1, 16, far())
    graph.gate.set()
    await stopping
    np.testing.assert_array_equal((await running).outputs["out"], [2])
    with pytest.raises(Draining):
        await queued


async def test_stop_gives_up_on_a_hung_batch_without_hanging_its_waiters() -> None:
    graph = EchoGraph()
    batcher = await started(graph)
    running = await occupy(batcher, graph)
    await batcher.stop(timeout_s=0.01)
    with pytest.raises(Draining):
        await running
    graph.gate.set()


async def test_the_worker_runs_queued_batches_back_to_back_while_the_event_loop_is_busy() -> None:
    """The next batch starts in the worker thread: a loop busy answering other requests leaves no gap."""
    graph = EchoGraph()
    batcher = await started(graph, max_rows=4)
    graph.gate.clear()
    parts = [
        asyncio.ensure_future(batcher.submit(rows([k], w), 1, w, far()))
        for k, w in ((1, 16), (2, 24), (3, 32))
    ]
    await until(lambda: graph.entered == 1 and batcher.queued_rows == 2)
    graph.gate.set()
    time.sleep(0.2)  # the event loop is blocked: nothing on it can start a batch
    assert graph.entered == 3 and batcher.queued_rows == 0
    results = await asyncio.gather(*parts)
    await batcher.stop()
    assert [r.outputs["out"].tolist() for r in results] == [[2.0], [4.0], [6.0]]
    assert graph.shapes == [(1, 16), (1, 24), (1, 32)]


async def test_two_workers_run_two_batches_side_by_side_and_predict_half_the_wait() -> None:
    graph = EchoGraph()
    batcher = await started(graph, max_rows=4, workers=2)
    graph.gate.clear()
    parts = [
        asyncio.ensure_future(batcher.submit(rows([k] * 4, w), 4, w, far())) for k, w in ((1, 16), (2, 32))
    ]
    await until(lambda: graph.entered == 2)  # both batches in flight while the gate is closed
    assert batcher.queued_rows == 0 and not batcher.idle
    graph.gate.set()
    results = await asyncio.gather(*parts)
    assert [r.outputs["out"].tolist() for r in results] == [[2.0] * 4, [4.0] * 4]
    assert batcher.predicted_wait_s(10) == pytest.approx(10 * batcher.row_cost_s / 2, rel=0.01)
    await batcher.stop()
    assert not batcher.accepting


async def test_rows_held_by_admitted_requests_count_ahead_until_released() -> None:
    """Admission sees a request that is still tokenising: its rows are ahead of later requests."""
    batcher = await started(EchoGraph(), max_rows=8)
    assert batcher.idle and batcher.predicted_wait_s(10) == pytest.approx(10 * batcher.row_cost_s)
    hold = batcher.hold(30)
    assert not batcher.idle
    assert batcher.predicted_wait_s(10) == pytest.approx(40 * batcher.row_cost_s)
    hold.release()
    hold.release()  # idempotent: a finally after an early release does not double count
    assert batcher.idle and batcher.pending_rows == 0
    await batcher.stop()


async def test_a_request_s_parts_are_queued_all_or_none() -> None:
    """One request's length-bucket parts are checked for room together: never half a request queued."""
    graph = EchoGraph()
    batcher = await started(graph, max_rows=4, max_queue_rows=6)
    blocker = await occupy(batcher, graph)
    with pytest.raises(Overloaded):
        batcher.enqueue([(rows([2] * 4, 16), 4, 16), (rows([3] * 3, 32), 3, 32)], far())
    assert batcher.queued_rows == 0
    queued = batcher.enqueue([(rows([2] * 4, 16), 4, 16), (rows([3] * 2, 32), 2, 32)], far())
    assert batcher.queued_rows == 6
    graph.gate.set()
    first, second = await queued.results()
    await blocker
    await batcher.stop()
    assert first.outputs["out"].tolist() == [4.0] * 4 and second.outputs["out"].tolist() == [6.0] * 2


async def test_a_cancelled_submission_never_runs() -> None:
    """A request that gives up before awaiting (its own failure, a timeout) takes its rows back."""
    graph = EchoGraph()
    batcher = await started(graph)
    blocker = await occupy(batcher, graph)
    gone = batcher.enqueue([(rows([2, 2], 16), 2, 16), (rows([3], 32), 1, 32)], far())
    assert batcher.queued_rows == 3
    gone.cancel()
    assert batcher.queued_rows == 0
    graph.gate.set()
    await blocker
    await batcher.submit(rows([4], 32), 1, 32, far())  # the cancelled items are skipped, not run
    await batcher.stop()
    assert graph.shapes == [(1, 16), (1, 32)]
    with pytest.raises(asyncio.CancelledError):
        await gone.results()


async def test_oldest_key_goes_first_and_a_batch_never_mixes_keys() -> None:
    graph = EchoGraph()
    batcher = await started(graph, max_rows=8)
    blocker = await occupy(batcher, graph)
    parts = [
        asyncio.ensure_future(batcher.submit(rows([k], w), 1, w, far()))
        for k, w in ((2, 32), (3, 16), (4, 32), (5, 16))
    ]
    await until(lambda: batcher.queued_rows == 4)
    graph.gate.set()
    await asyncio.gather(blocker, *parts)
    await batcher.stop()
    assert graph.shapes == [(1, 16), (2, 32), (2, 16)]  # the 32s were queued first


async def test_a_request_split_over_many_batches_wakes_the_event_loop_once() -> None:
    """Results go back per request, not per batch: the loop is woken when the last chunk is done."""
    graph = EchoGraph()
    batcher = await started(graph, max_rows=4)
    posts = []
    post = batcher._post
    batcher._post = lambda callback: (posts.append(callback), post(callback))  # type: ignore[method-assign]
    result = await batcher.submit(rows(list(range(10)), 16), 10, 16, far())  # chunks of 4, 4, 2
    assert graph.shapes == [(4, 16), (4, 16), (2, 16)]
    assert len(posts) == 1
    assert result.outputs["out"].tolist() == [2.0 * k for k in range(10)]
    await batcher.stop()


async def test_an_empty_submission_is_answered_without_inference() -> None:
    graph = EchoGraph()
    batcher = await started(graph)
    assert await batcher.enqueue([], far()).results() == []
    await batcher.stop()
    assert graph.entered == 0
