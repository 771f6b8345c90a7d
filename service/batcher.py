"""Micro-batcher for one graph: per-item futures, a row budget plus a max wait, length-bucketed batches.

Requests submit named arrays (already tokenised) with a key (the length bucket for the encoder, None for
the head) and a deadline. One loop task per graph forms batches of items with the same key, oldest first,
up to ``max_rows``; waits at most ``max_wait_ms`` for a batch to fill; drops items whose deadline passed
or whose waiter was cancelled (timeout, client gone) *before* inference; runs prepare -> run -> finish in
a worker thread (ONNX Runtime releases the GIL, so the event loop keeps serving). A batch that raises
fails every waiter in it. The queue is bounded in rows; the measured per-row cost (EWMA) and the rows
queued ahead feed admission control.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from service.errors import BatchFailed, DeadlineExceeded, Draining, Overloaded
from service.metrics import ServiceMetrics
from service.scorer import Feeds, GraphRunner
from service.settings import GraphBatching

log = logging.getLogger("prectr.service")


@dataclass(frozen=True, slots=True)
class BatchResult:
    outputs: Feeds
    queue_s: float  # waiting before the batch started
    run_s: float  # prepare + run + finish of the batch(es) holding these rows


@dataclass(eq=False, slots=True)
class _Work:
    feeds: Feeds
    rows: int
    key: int | None
    deadline: float  # loop.time()
    future: asyncio.Future[BatchResult]
    enqueued: float = field(default_factory=time.perf_counter)
    settled: bool = False  # taken into a batch, or dropped: no longer counted in the queue


class MicroBatcher:
    def __init__(
        self,
        runner: GraphRunner,
        cfg: GraphBatching,
        row_cost_s: float,
        alpha: float = 0.2,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.runner, self.cfg, self.alpha, self.metrics = runner, cfg, alpha, metrics
        self.name = runner.name
        # Per-row cost = EWMA(batch seconds) / EWMA(batch rows): weighted by batch size, so a 3-row tail
        # batch (mostly fixed overhead) cannot make the whole queue look expensive.
        self._batch_s = max(row_cost_s, 1e-7) * cfg.max_rows
        self._batch_rows = float(cfg.max_rows)
        self.queued_rows = 0
        self._queue: deque[_Work] = deque()
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"prectr-{self.name}")
        self._task: asyncio.Task[None] | None = None
        self._running_until = 0.0  # predicted perf_counter() end of the batch in flight
        self._stopping = False

    # ---- admission inputs -------------------------------------------------------------------------
    @property
    def row_cost_s(self) -> float:
        return self._batch_s / self._batch_rows

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing running: a prediction has no queue to be wrong about."""
        return self.queued_rows == 0 and self._running_until == 0.0

    def predicted_wait_s(self, rows: int) -> float:
        """Time until ``rows`` more rows would be done: the batch in flight, the queue ahead, them."""
        in_flight = max(0.0, self._running_until - time.perf_counter())
        return in_flight + (self.queued_rows + rows) * self.row_cost_s

    @property
    def accepting(self) -> bool:
        return self._task is not None and not self._task.done() and not self._stopping

    def record_batch(self, seconds: float, rows: int) -> None:
        self._batch_s += self.alpha * (seconds - self._batch_s)
        self._batch_rows += self.alpha * (rows - self._batch_rows)

    def has_room(self, rows: int) -> bool:
        return self.queued_rows + rows <= self.cfg.max_queue_rows

    # ---- request side -----------------------------------------------------------------------------
    async def submit(self, feeds: Feeds, rows: int, key: int | None, deadline: float) -> BatchResult:
        """Queue ``rows`` rows and wait for their outputs; parts above ``max_rows`` are split."""
        if not self.accepting:
            raise Draining(f"the {self.name} batcher is stopped")
        if not self.has_room(rows):
            raise Overloaded(
                f"{self.name} queue is full ({self.queued_rows} rows waiting)",
                reason="queue_full",
                retry_after_s=self.predicted_wait_s(0),
            )
        loop = asyncio.get_running_loop()
        step = self.cfg.max_rows
        works = [
            _Work(
                {k: v[i : i + step] for k, v in feeds.items()},
                min(step, rows - i),
                key,
                deadline,
                loop.create_future(),
            )
            for i in range(0, rows, step)
        ]
        self._queue.extend(works)
        self.queued_rows += rows
        self._wakeup.set()
        try:
            results = await asyncio.gather(*(w.future for w in works))
        except BaseException:
            for w in works:  # cancelled or failed: what is still queued must not run
                self._settle(w)
                if not w.future.done():
                    w.future.cancel()
                elif not w.future.cancelled():
                    w.future.exception()  # mark a sibling chunk's error as seen (no "never retrieved" log)
            raise
        if len(results) == 1:
            return results[0]
        outputs = {k: np.concatenate([r.outputs[k] for r in results]) for k in results[0].outputs}
        return BatchResult(outputs, max(r.queue_s for r in results), sum(r.run_s for r in results))

    def _settle(self, work: _Work) -> None:
        if not work.settled:
            work.settled = True
            self.queued_rows -= work.rows

    # ---- loop side --------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run_forever(), name=f"batcher-{self.name}")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batch in flight (bounded), then fail whatever is still queued with :class:`Draining`."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                log.warning("%s batcher: the batch in flight did not finish in %.1f s", self.name, timeout_s)
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        while self._queue:
            work = self._queue.popleft()
            self._settle(work)
            if not work.future.done():
                work.future.set_exception(Draining("the service is shutting down"))
        self._executor.shutdown(wait=False)

    async def _run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._wait_to_fill()
            batch = self._take_batch(loop.time())
            if batch:
                await self._run_batch(batch, loop)

    async def _wait_to_fill(self) -> None:
        """Give a partial batch up to ``max_wait_ms`` (from its oldest row) to reach ``max_rows``."""
        wait_until = self._queue[0].enqueued + self.cfg.max_wait_ms / 1000.0
        while self.queued_rows < self.cfg.max_rows and (left := wait_until - time.perf_counter()) > 0:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=left)
            except TimeoutError:
                return

    def _take_batch(self, now: float) -> list[_Work]:
        """Oldest live item first, then later items with the same key, within ``max_rows``."""
        batch: list[_Work] = []
        rows, key, keep = 0, None, deque[_Work]()
        while self._queue:
            work = self._queue.popleft()
            if work.settled or work.future.done():
                self._settle(work)
                continue
            if work.deadline <= now:  # its request cannot use the answer: never run it
                self._settle(work)
                work.future.set_exception(DeadlineExceeded("the deadline passed while queued"))
                continue
            if not batch:
                key = work.key
            if work.key == key and rows + work.rows <= self.cfg.max_rows:
                self._settle(work)
                batch.append(work)
                rows += work.rows
            else:
                keep.append(work)
        self._queue = keep
        return batch

    async def _run_batch(self, batch: list[_Work], loop: asyncio.AbstractEventLoop) -> None:
        rows = sum(w.rows for w in batch)
        start = time.perf_counter()
        self._running_until = start + rows * self.row_cost_s
        try:
            outputs = await loop.run_in_executor(self._executor, self._infer, batch)
        except asyncio.CancelledError:  # stop() gave up on this batch: its waiters must not hang
            for work in batch:
                if not work.future.done():
                    work.future.set_exception(Draining("the service is shutting down"))
            raise
        except Exception as exc:
            log.error("%s batch of %d rows (%d requests) failed", self.name, rows, len(batch), exc_info=exc)
            for work in batch:
                if not work.future.done():
                    work.future.set_exception(
                        BatchFailed(
                            f"{self.name} inference failed for the batch holding "
                            "this request; it is safe to retry"
                        )
                    )
            return
        finally:
            self._running_until = 0.0
        run_s = time.perf_counter() - start
        self.record_batch(run_s, rows)
        if self.metrics is not None:
            self.metrics.batch_rows.labels(self.name).observe(rows)
        for work, out in zip(batch, outputs, strict=True):
            if not work.future.done():
                work.future.set_result(BatchResult(out, start - work.enqueued, run_s))

    def _infer(self, batch: list[_Work]) -> list[Feeds]:
        feeds = self.runner.prepare([w.feeds for w in batch], batch[0].key)
        return self.runner.finish(self.runner.run(feeds), [w.rows for w in batch])
