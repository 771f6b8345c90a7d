"""The service object behind the routes: start-up, readiness, one scored request, hot reload, shutdown.

Start-up loads and validates the bundle before the server accepts connections (a bad bundle stops the
process with the reason); warming every shape runs in the background, so ``/healthz`` answers while
``/readyz`` says 503 until the model is warm. Every request runs under its deadline and is cancelled when
the client goes away; cancellation reaches the batchers, which then drop its rows before inference.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from features.bundle import BundleError
from service.batcher import MicroBatcher
from service.deadline import run_until_deadline
from service.errors import (
    BatchFailed,
    BundleRejected,
    ClientDisconnected,
    Conflict,
    DeadlineExceeded,
    Draining,
    NotReady,
    Overloaded,
    ServiceError,
)
from service.metrics import ServiceMetrics
from service.pipeline import ScoreOutcome, ScoringPipeline
from service.prefs import PreferenceStore, open_configured_store, ping_with_backstop
from service.relevance_cache import RelevanceCache
from service.runtime import Lifecycle, ModelRuntime
from service.schemas import ScoreRequest
from service.scorer import Scorer
from service.settings import Settings

log = logging.getLogger("prectr.service")
ScorerFactory = Callable[[Path], Scorer]


def ort_scorer_factory(settings: Settings) -> ScorerFactory:
    def load(path: Path) -> Scorer:
        from service.ort_scorer import OrtScorer  # onnxruntime only once a bundle is really loaded

        return OrtScorer(path, settings.onnx)

    return load


class ScoringService:
    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics,
        scorer: Scorer | None = None,
        store: PreferenceStore | None = None,
        scorer_factory: ScorerFactory | None = None,
    ) -> None:
        self.settings, self.metrics = settings, metrics
        self.lifecycle = Lifecycle(metrics)
        self.cache = RelevanceCache(settings.cache.capacity, settings.cache.admit_after)
        self.runtime: ModelRuntime | None = None
        self.startup_error: str | None = None
        self._scorer, self._store, self._owns_store = scorer, store, store is None
        self._factory = scorer_factory or ort_scorer_factory(settings)
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()  # retiring runtimes
        self._warm_task: asyncio.Future[None] | None = None
        self.pipeline: ScoringPipeline | None = None
        self._cpu_pool: ThreadPoolExecutor | None = None
        self._stopped = False

    # ---- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store and load + validate the bundle (raising stops start-up); warm in background."""
        if self._store is None:
            self._store = open_configured_store(self.settings.redis)
        if not await ping_with_backstop(self._store, timeout_s=2.0):  # connects and reads the pointer
            log.warning("preference store unreachable at start-up: serving with defaults until it answers")
        if self._scorer is None:
            path = self.settings.bundle.path
            if path is None:
                raise BundleError("no bundle configured: pass --bundle DIR or set PRECTR_BUNDLE__PATH")
            self._scorer = await asyncio.to_thread(self._factory, path)
        self._cpu_pool = ThreadPoolExecutor(self.settings.server.cpu_threads, thread_name_prefix="prectr-cpu")
        self.pipeline = ScoringPipeline(self.settings, self._store, self.cache, self.metrics, self._cpu_pool)
        self._warm_task = asyncio.ensure_future(self._warm_and_serve(self._scorer))

    async def _warm_and_serve(self, scorer: Scorer) -> None:
        try:
            self._install(
                await ModelRuntime.start(
                    scorer, self.settings.batching, self.metrics, self.settings.cache.title_tokens
                )
            )
        except Exception as exc:
            self.startup_error = f"warm-up failed: {type(exc).__name__}: {exc}"
            log.exception("warm-up of %s failed; the service will never become ready", scorer.info.version)
            return
        self.lifecycle.started = True
        self.metrics.ready.set(1)
        log.info("ready: model %s on %s", scorer.info.version, scorer.info.provider)

    def _install(self, runtime: ModelRuntime) -> ModelRuntime | None:
        old, self.runtime = self.runtime, runtime  # the atomic swap: one attribute
        info = runtime.info
        self.metrics.set_model(info.version, info.provider, info.variant)
        for graph, batcher in (("encoder", runtime.encoder), ("head", runtime.head)):
            self.metrics.queue_depth.labels(graph).set_function(_depth_of(batcher))
        if old is not None and old.info.version == info.version:
            self.cache.clear()  # same version, maybe different weights: cached vectors may be stale
        return old

    async def stop(self) -> None:
        """Stop being ready, let in-flight requests finish (bounded), then release everything."""
        if self._stopped:
            return
        self._stopped = True
        self.lifecycle.begin_drain()
        await self.lifecycle.wait_idle(self.settings.server.drain_timeout_s)
        if self._warm_task is not None:
            self._warm_task.cancel()
            await asyncio.gather(self._warm_task, return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)  # old models: their requests are done
        if self.runtime is not None:
            await self.runtime.retire(timeout_s=1.0)
        elif self._scorer is not None:
            self._scorer.close()
        if self._store is not None and self._owns_store:
            await self._store.close()
        if self._cpu_pool is not None:
            self._cpu_pool.shutdown(wait=False, cancel_futures=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- probes -----------------------------------------------------------------------------------
    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        store_ok = self._store is not None and await ping_with_backstop(self._store)
        checks = {
            "model_loaded": self.runtime is not None,
            "warmed": self.runtime is not None and self.runtime.warmed,
            "store_reachable": store_ok,
            "draining": self.lifecycle.shutdown_announced,
        }
        ready = self.lifecycle.ready and checks["warmed"] and store_ok
        self.metrics.ready.set(1 if ready else 0)
        info = self.runtime.info if self.runtime else None
        detail = {
            "checks": checks,
            "model_version": info.version if info else None,
            "provider": info.provider if info else None,
            "error": self.startup_error,
        }
        return ready, detail

    # ---- one request ------------------------------------------------------------------------------
    async def score(self, req: ScoreRequest, receive: Any, started: float) -> ScoreOutcome:
        """Run the pipeline under the request's deadline; give up when the client disconnects."""
        if self.lifecycle.draining:
            self.metrics.shed.labels("draining").inc()
            raise Draining()
        rt, pipeline = self.runtime, self.pipeline
        if not self.lifecycle.started or rt is None or pipeline is None:
            raise NotReady()
        s = self.settings.server
        budget_s = min(req.budget_ms or s.default_budget_ms, s.max_budget_ms) / 1000.0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s - (time.perf_counter() - started)
        with self.lifecycle.request(), rt.use():
            try:
                return await run_until_deadline(
                    pipeline.score(req, rt, deadline, started), deadline, receive, budget_s * 1000
                )
            except ServiceError as exc:
                self._count_failure(exc)
                raise

    def _count_failure(self, exc: ServiceError) -> None:
        if isinstance(exc, DeadlineExceeded):
            self.metrics.shed.labels("deadline_expired").inc()
        elif isinstance(exc, ClientDisconnected):
            self.metrics.shed.labels("client_disconnected").inc()
        elif isinstance(exc, Overloaded):
            self.metrics.shed.labels(exc.reason).inc()
        elif isinstance(exc, BatchFailed):
            self.metrics.errors.labels("batch_failed").inc()

    # ---- hot reload -------------------------------------------------------------------------------
    async def reload(self, path: Path | None) -> dict[str, Any]:
        """Load, validate and warm a bundle beside the serving one, then swap; refuse it with the reason."""
        path = path or self.settings.bundle.path
        if path is None:
            raise BundleRejected("no bundle path given and none configured")
        if self._reload_lock.locked():
            raise Conflict("a reload is already in progress")
        async with self._reload_lock:
            started = time.perf_counter()
            scorer: Scorer | None = None
            try:
                scorer = await asyncio.to_thread(self._factory, Path(path))
                runtime = await ModelRuntime.start(
                    scorer, self.settings.batching, self.metrics, self.settings.cache.title_tokens
                )
            except Exception as exc:  # whatever is wrong with the new bundle, the old one keeps serving
                if scorer is not None:
                    scorer.close()
                log.warning("reload of %s refused: %s", path, exc)
                raise BundleRejected(f"bundle refused, still serving the previous model: {exc}") from exc
            old = self._install(runtime)
            if old is not None:
                self._spawn(old.retire(self.settings.server.drain_timeout_s))
            log.info("reloaded: %s -> %s", old.info.version if old else None, runtime.info.version)
            return {
                "model_version": runtime.info.version,
                "previous_version": old.info.version if old else None,
                "provider": runtime.info.provider,
                "load_ms": round((time.perf_counter() - started) * 1000, 1),
            }


def _depth_of(batcher: MicroBatcher) -> Callable[[], float]:
    return lambda: float(batcher.queued_rows)
