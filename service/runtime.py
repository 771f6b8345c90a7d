"""A served model (scorer + its two batchers) and the process lifecycle (ready, draining, in flight).

Hot reload builds a new :class:`ModelRuntime` beside the old one and swaps one attribute; a request takes
its runtime once at the start and keeps it, so in-flight requests finish on the model they started on.
The old runtime retires (batchers stopped, sessions dropped) when its last request has left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from service.batcher import MicroBatcher
from service.metrics import ServiceMetrics
from service.scorer import ModelInfo, Scorer
from service.settings import BatchingSettings
from service.token_cache import TitleTokenCache

log = logging.getLogger("prectr.service")


class ModelRuntime:
    def __init__(
        self, scorer: Scorer, encoder: MicroBatcher, head: MicroBatcher, title_tokens: int = 0
    ) -> None:
        self.scorer, self.encoder, self.head = scorer, encoder, head
        self.title_tokens = TitleTokenCache(
            title_tokens
        )  # per runtime: a new bundle may bring a new tokenizer
        self.warmed = True
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def info(self) -> ModelInfo:
        return self.scorer.info

    @classmethod
    async def start(
        cls, scorer: Scorer, batching: BatchingSettings, metrics: ServiceMetrics, title_tokens: int = 0
    ) -> ModelRuntime:
        """Warm every shape on the scorer's provider (in a thread), then start both batchers."""
        provider = scorer.info.provider
        enc_cfg, head_cfg = batching.encoder.for_provider(provider), batching.head.for_provider(provider)
        costs = await asyncio.to_thread(scorer.warmup, enc_cfg.max_rows, head_cfg.max_rows)
        encoder = MicroBatcher(scorer.encoder, enc_cfg, costs["encoder"], batching.cost_ewma_alpha, metrics)
        head = MicroBatcher(scorer.head, head_cfg, costs["head"], batching.cost_ewma_alpha, metrics)
        encoder.start()
        head.start()
        return cls(scorer, encoder, head, title_tokens)

    @contextmanager
    def use(self) -> Iterator[ModelRuntime]:
        self._active += 1
        self._idle.clear()
        try:
            yield self
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    async def retire(self, timeout_s: float) -> None:
        """Wait for the requests still on this model, then stop its batchers and drop its sessions."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            log.warning("model %s retired with %d requests still active", self.info.version, self._active)
        await self.encoder.stop()
        await self.head.stop()
        self.scorer.close()
        log.info("model %s retired", self.info.version)


class Lifecycle:
    """Readiness and draining; counts requests so shutdown can wait for them."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        self.started = False
        self.shutdown_announced = False  # SIGTERM seen: out of rotation, still serving
        self.draining = False  # shutting down: new requests refused
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def accepting(self) -> bool:
        return self.started and not self.draining

    @property
    def ready(self) -> bool:
        return self.accepting and not self.shutdown_announced

    def announce_shutdown(self) -> None:
        """Readiness off so the load balancer stops sending traffic; requests are still served."""
        self.shutdown_announced = True
        self.metrics.ready.set(0)

    def begin_drain(self) -> None:
        """Stop being ready; requests already inside finish, new ones get 503 ``draining``."""
        if not self.draining:
            log.info("draining: readiness off, %d requests in flight", self.in_flight)
        self.shutdown_announced = self.draining = True
        self.metrics.ready.set(0)

    @contextmanager
    def request(self) -> Iterator[None]:
        self.in_flight += 1
        self._idle.clear()
        self.metrics.in_flight.inc()
        try:
            yield
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()
            if self.in_flight == 0:
                self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except TimeoutError:
            log.warning("drain timeout: %d requests still in flight", self.in_flight)
            return False
