"""Micro-batcher for one graph: a row budget plus a max wait, length-bucketed batches, one future per request.

Requests submit named arrays (already tokenised) with a key (the length bucket for the encoder, None for
the head) and a deadline, and await one future for all of a request's parts, set when its last chunk is
done (the event loop wakes once per request, not once per batch). Items wait in one queue per key; worker
threads take the key whose first item is oldest and form a batch from that queue alone, up to
``max_rows`` rows and, for length-bucketed graphs, ``max_tokens`` tokens (rows x bucket width: on a CPU
per-row cost rises once a batch outgrows the cache); wait at most ``max_wait_ms`` for a batch to fill;
drop items whose deadline passed or whose waiter was cancelled (timeout, client gone) *before* inference;
run prepare -> run -> finish (ONNX Runtime releases the GIL) and hand the outputs back to the event loop.
A worker takes its next batch itself, as soon as the previous one ends: a busy event loop (parsing and
answering other requests) never leaves the accelerator idle between batches. With ``workers`` > 1
batches run side by side (on a CPU, single-threaded ORT runs in parallel beat one run using every core:
the length-bucket batches of one request are small, and intra-op threads synchronise after every op). A
batch that raises fails every request in it. The queue is bounded in rows; the measured per-row cost
(EWMA) and the rows queued ahead feed admission control.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
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


class _Group:
    """The chunks of one submission: one future for all of them, settled on the event loop when the last
    chunk is done (or the first fails), so a request wakes the loop once, not once per batch."""

    __slots__ = ("future", "remaining", "results")

    def __init__(self, future: asyncio.Future[list[BatchResult]], chunks: int) -> None:
        self.future = future
        self.results: list[BatchResult | None] = [None] * chunks
        self.remaining = chunks  # under the batcher's lock


@dataclass(eq=False, slots=True)
class _Work:
    feeds: Feeds
    rows: int
    key: int | None
    deadline: float  # time.perf_counter() clock
    group: _Group
    index: int  # position among the group's chunks
    enqueued: float = field(default_factory=time.perf_counter)
    settled: bool = False  # taken into a batch, or dropped: no longer counted in the queue (under the lock)


def default_workers() -> int:
    """One worker per CPU core the process may use, at most 8."""
    return max(1, min(8, len(usable_cores())))


def usable_cores() -> list[int]:
    """The CPU cores this process may run on, in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def worker_cores(workers: int, pin: bool = True) -> list[int | None]:
    """One core per worker, in order, to pin them to; all None (no pinning) when not asked to, where the OS
    cannot pin threads, or with more workers than cores."""
    cores = usable_cores()
    if not pin or not hasattr(os, "sched_setaffinity") or workers > len(cores):
        return [None] * workers
    return list(cores[:workers])


def pin_current_thread(core: int | None) -> None:
    """Run the calling thread on ``core`` only (Linux: pid 0 is the calling thread); None: leave it."""
    if core is None:
        return
    try:
        os.sched_setaffinity(0, {core})
    except OSError as exc:  # a container may forbid it: serving goes on unpinned
        log.warning("could not pin a batch thread to core %d: %s", core, exc)


def _resolve(future: asyncio.Future[list[BatchResult]], result: list[BatchResult] | BaseException) -> None:
    """On the event loop: settle ``future`` unless its waiter already gave up (or another chunk failed)."""
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _finish_groups(done: Sequence[_Group]) -> None:
    for group in done:
        _resolve(group.future, group.results)  # type: ignore[arg-type]  # every chunk is in


def _fail_groups(groups: Sequence[_Group], error: BaseException) -> None:
    for group in groups:
        _resolve(group.future, error)


def _groups_of(works: Sequence[_Work]) -> list[_Group]:
    return list({id(w.group): w.group for w in works}.values())


def _joined(results: Sequence[BatchResult]) -> BatchResult:
    """One part's outputs from the results of its chunks (in order)."""
    if len(results) == 1:
        return results[0]
    outputs = {k: np.concatenate([r.outputs[k] for r in results]) for k in results[0].outputs}
    return BatchResult(outputs, max(r.queue_s for r in results), sum(r.run_s for r in results))


class Submission:
    """One request's parts queued in a batcher: ``await results()`` for their outputs, in part order.

    ``cancel()`` (idempotent) takes the rows still queued out of the queue: call it when the request
    gives up before awaiting. A failure or cancellation while awaiting does the same.
    """

    __slots__ = ("_batcher", "_group", "_spans", "_works")

    def __init__(
        self, batcher: MicroBatcher, group: _Group, works: list[_Work], spans: list[tuple[int, int]]
    ) -> None:
        self._batcher, self._group, self._works, self._spans = batcher, group, works, spans

    async def results(self) -> list[BatchResult]:
        try:
            results = await self._group.future
        except BaseException:
            self.cancel()
            raise
        return [_joined(results[a:b]) for a, b in self._spans]

    def cancel(self) -> None:
        self._batcher.withdraw(self._works)
        future = self._group.future
        if not future.done():
            future.cancel()
        elif not future.cancelled():
            future.exception()  # mark a failure as seen (no "never retrieved" log)


class RowHold:
    """Rows admitted for a batcher but not yet submitted; ``release`` (idempotent) when they are."""

    __slots__ = ("_batcher", "_rows")

    def __init__(self, batcher: MicroBatcher, rows: int) -> None:
        self._batcher, self._rows = batcher, rows
        batcher.pending_rows += rows

    def release(self) -> None:
        self._batcher.pending_rows -= self._rows
        self._rows = 0


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
        self.workers = cfg.workers or default_workers()
        self.cores = worker_cores(self.workers, bool(cfg.pin_cores))  # pin_cores: resolved per provider
        # Per-row cost = EWMA(batch seconds) / EWMA(batch rows): weighted by batch size, so a 3-row tail
        # batch (mostly fixed overhead) cannot make the whole queue look expensive.
        self._batch_s = max(row_cost_s, 1e-7) * cfg.max_rows
        self._batch_rows = float(cfg.max_rows)
        self.queued_rows = 0
        self.pending_rows = 0  # admitted, not yet submitted (still tokenising / in earlier stages); loop only
        self._queues: dict[int | None, deque[_Work]] = {}  # one FIFO per key (length bucket)
        self._cond = threading.Condition()  # guards the queues, queued_rows, settled flags and _stopping
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exited: asyncio.Future[None] | None = None
        self._live_workers = 0
        # worker -> (the batch it runs, predicted perf_counter() end of that batch)
        self._in_flight: dict[int, tuple[list[_Work], float]] = {}
        self._stopping = False
        # rows, CPU and wall time per batch, resolved once (a labels() lookup takes a lock)
        self._batch_metrics = (
            (
                metrics.batch_rows.labels(self.name),
                metrics.batch_cpu.labels(self.name),
                metrics.batch_wall.labels(self.name),
            )
            if metrics is not None
            else None
        )

    # ---- admission inputs -------------------------------------------------------------------------
    @property
    def row_cost_s(self) -> float:
        """Measured seconds per row of one worker (batches run ``cfg.workers`` at a time)."""
        return self._batch_s / self._batch_rows

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing running: a prediction has no queue to be wrong about."""
        return self.queued_rows == 0 and self.pending_rows == 0 and not self._in_flight

    def predicted_wait_s(self, rows: int) -> float:
        """Time until ``rows`` more rows would be done: the batches in flight, the rows ahead (queued, or
        admitted and on their way), them."""
        now = time.perf_counter()
        in_flight = min((max(0.0, end - now) for _, end in list(self._in_flight.values())), default=0.0)
        ahead = self.queued_rows + self.pending_rows
        return in_flight + (ahead + rows) * self.row_cost_s / self.workers

    def hold(self, rows: int) -> RowHold:
        """Count ``rows`` an admitted request will submit as ahead of later requests until released."""
        return RowHold(self, rows)

    @property
    def accepting(self) -> bool:
        return any(t.is_alive() for t in self._threads) and not self._stopping

    def record_batch(self, seconds: float, rows: int) -> None:
        self._batch_s += self.alpha * (seconds - self._batch_s)
        self._batch_rows += self.alpha * (rows - self._batch_rows)

    def has_room(self, rows: int) -> bool:
        return self.queued_rows + rows <= self.cfg.max_queue_rows

    # ---- request side (event loop) ----------------------------------------------------------------
    async def submit(self, feeds: Feeds, rows: int, key: int | None, deadline: float) -> BatchResult:
        """Queue ``rows`` rows and wait for their outputs; parts above the batch size are split.

        ``deadline`` is in event-loop time (``loop.time()``).
        """
        return (await self.enqueue([(feeds, rows, key)], deadline).results())[0]

    def enqueue(self, parts: Sequence[tuple[Feeds, int, int | None]], deadline: float) -> Submission:
        """Queue every ``(feeds, rows, key)`` part of one request now (one lock; room is checked for all
        of them) and return the handle to await their outputs with, so the caller can do other work
        while the workers run. Raises :class:`Draining` or :class:`Overloaded` having queued nothing."""
        loop = asyncio.get_running_loop()
        deadline_pc = time.perf_counter() + (deadline - loop.time())
        cuts: list[tuple[int, int, int]] = []  # (part, first row, rows) per chunk
        spans = []  # per part: its chunks' slice
        for p, (_, rows, key) in enumerate(parts):
            step, first = self.cfg.rows_per_batch(key), len(cuts)
            cuts += [(p, i, min(step, rows - i)) for i in range(0, rows, step)]
            spans.append((first, len(cuts)))
        group = _Group(loop.create_future(), len(cuts))
        if not cuts:  # no parts: nothing to run
            group.future.set_result([])
        works = []
        for index, (p, i, n) in enumerate(cuts):
            feeds, rows, key = parts[p]
            chunk = feeds if n == rows else {k: v[i : i + n] for k, v in feeds.items()}
            works.append(_Work(chunk, n, key, deadline_pc, group, index))
        total = sum(rows for _, rows, _ in parts)
        with self._cond:
            if not self.accepting:
                raise Draining(f"the {self.name} batcher is stopped")
            if not self.has_room(total):
                raise Overloaded(
                    f"{self.name} queue is full ({self.queued_rows} rows waiting)",
                    reason="queue_full",
                    retry_after_s=self.predicted_wait_s(0),
                )
            for w in works:
                queue = self._queues.get(w.key)
                if queue is None:
                    queue = self._queues[w.key] = deque()
                queue.append(w)
            self.queued_rows += total
            self._cond.notify(min(len(works), self.workers))
        return Submission(self, group, works, spans)

    def withdraw(self, works: Sequence[_Work]) -> None:
        """Take ``works`` out of the queue (those already taken or dropped are left as they are)."""
        with self._cond:
            for w in works:
                self._settle(w)

    def _settle(self, work: _Work) -> None:
        """Take ``work`` out of the queue count (caller holds the lock)."""
        if not work.settled:
            work.settled = True
            self.queued_rows -= work.rows

    # ---- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker threads; call from the event loop that will submit."""
        self._loop = asyncio.get_running_loop()
        self._exited = self._loop.create_future()
        self._live_workers = self.workers
        self._threads = [
            threading.Thread(
                target=self._worker, args=(i, self.cores[i]), name=f"prectr-{self.name}-{i}", daemon=True
            )
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batch in flight (bounded), then fail whatever is still queued with :class:`Draining`."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._exited is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._exited), timeout_s)
            except TimeoutError:
                log.warning("%s batcher: the batch in flight did not finish in %.1f s", self.name, timeout_s)
        with self._cond:
            # in flight only when a batch hung
            stranded = [
                *(w for batch, _ in self._in_flight.values() for w in batch),
                *(w for queue in self._queues.values() for w in queue),
            ]
            self._queues.clear()
            for work in stranded:
                self._settle(work)
        _fail_groups(_groups_of(stranded), Draining("the service is shutting down"))

    # ---- worker thread ------------------------------------------------------------------------------
    def _worker(self, worker: int, core: int | None = None) -> None:
        pin_current_thread(core)
        try:
            while (batch := self._next_batch(worker)) is not None:
                if batch:
                    self._run_batch(worker, batch)
        finally:
            self._post(self._mark_exited)

    def _mark_exited(self) -> None:
        """On the loop, once per worker: ``stop`` waits for the last one."""
        self._live_workers -= 1
        if self._live_workers <= 0 and self._exited is not None and not self._exited.done():
            self._exited.set_result(None)

    def _post(self, callback) -> None:  # type: ignore[no-untyped-def]
        """Run ``callback`` on the event loop (quietly skipped when the loop is already closed)."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback)

    def _next_batch(self, worker: int) -> list[_Work] | None:
        """Block until there is work (None once stopping); wait up to ``max_wait_ms`` for a full batch."""
        with self._cond:
            while not (oldest := self._oldest()) and not self._stopping:
                self._cond.wait()
            if self._stopping or oldest is None:
                return None
            wait_until = oldest[0].enqueued + self.cfg.max_wait_ms / 1000.0
            while (
                self.queued_rows < self.cfg.rows_per_batch(oldest[0].key)
                and not self._stopping
                and (left := wait_until - time.perf_counter()) > 0
            ):
                self._cond.wait(timeout=left)
                if not (oldest := self._oldest()):
                    return []  # everything queued was cancelled meanwhile: start over
            if self._stopping:
                return None
            batch, expired = self._take_batch(oldest, time.perf_counter())
            if batch:
                end = time.perf_counter() + sum(w.rows for w in batch) * self.row_cost_s
                self._in_flight[worker] = (batch, end)
        if expired:
            late = _groups_of(expired)
            self._post(lambda: _fail_groups(late, DeadlineExceeded("the deadline passed while queued")))
        return batch

    def _oldest(self) -> deque[_Work] | None:
        """The queue whose first live item was enqueued first (lock held); settled heads are dropped."""
        best: deque[_Work] | None = None
        for queue in self._queues.values():
            while queue and queue[0].settled:
                queue.popleft()
            if queue and (best is None or queue[0].enqueued < best[0].enqueued):
                best = queue
        return best

    def _take_batch(self, queue: deque[_Work], now: float) -> tuple[list[_Work], list[_Work]]:
        """Items from the front of ``queue`` (one key) within the key's batch size (lock held).

        Returns the batch and the items dropped because their deadline passed.
        """
        batch: list[_Work] = []
        expired: list[_Work] = []
        rows, limit = 0, self.cfg.rows_per_batch(queue[0].key)
        while queue:
            work = queue[0]
            if work.settled:
                queue.popleft()
                continue
            if work.deadline <= now:  # its request cannot use the answer: never run it
                queue.popleft()
                self._settle(work)
                expired.append(work)
                continue
            if batch and rows + work.rows > limit:
                break
            queue.popleft()
            self._settle(work)
            batch.append(work)
            rows += work.rows
        return batch, expired

    def _run_batch(self, worker: int, batch: list[_Work]) -> None:
        rows = sum(w.rows for w in batch)
        start, cpu_start = time.perf_counter(), time.thread_time()
        try:
            outputs = self._infer(batch)
        except Exception as exc:
            log.error("%s batch of %d rows (%d requests) failed", self.name, rows, len(batch), exc_info=exc)
            failed = _groups_of(batch)
            error = BatchFailed(
                f"{self.name} inference failed for the batch holding this request; it is safe to retry"
            )
            self._post(lambda: _fail_groups(failed, error))
            return
        finally:
            cpu_s = time.thread_time() - cpu_start  # inside the wall interval: cpu_s <= run_s
            run_s = time.perf_counter() - start
            with self._cond:
                self._in_flight.pop(worker, None)
        if self._batch_metrics is not None:
            rows_metric, cpu_metric, wall_metric = self._batch_metrics
            rows_metric.observe(rows)
            cpu_metric.inc(cpu_s)
            wall_metric.inc(run_s)
        done = []
        with self._cond:
            self.record_batch(run_s, rows)
            for w, out in zip(batch, outputs, strict=True):
                group = w.group
                group.results[w.index] = BatchResult(out, start - w.enqueued, run_s)
                group.remaining -= 1
                if not group.remaining:
                    done.append(group)
        if done:  # the loop wakes only for requests whose last chunk this was
            self._post(lambda: _finish_groups(done))

    def _infer(self, batch: list[_Work]) -> list[Feeds]:
        feeds = self.runner.prepare([w.feeds for w in batch], batch[0].key)
        return self.runner.finish(self.runner.run(feeds), [w.rows for w in batch])
