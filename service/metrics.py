"""Prometheus metrics with the names fixed by the ops contract (alert rules and dashboards read them).

Each app instance owns a :class:`CollectorRegistry`, so tests can build many apps in one process. Every
known label value is created up front so a counter reads 0 (not absent) before its first event.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily

STAGES = ("features", "prefs", "queue", "encoder", "head", "total")
GRAPHS = ("encoder", "head")
SHED_REASONS = ("queue_full", "deadline_predicted", "deadline_expired", "client_disconnected", "draining")
DEGRADED_REASONS = ("preferences_unavailable", "relevance_cache_error")
ERROR_REASONS = ("batch_failed", "internal")
CACHE_RESULTS = ("hit", "miss")
CACHE_ADMISSIONS = ("stored", "deferred")
PREF_OUTCOMES = ("hit", "miss", "partial", "timeout", "error", "malformed")
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.035,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.0,
    5.0,
)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


def latency_buckets(slo_seconds: float) -> tuple[float, ...]:
    """The standard buckets plus one exactly on the SLO, so ``le=<slo>`` answers "within SLO?" exactly."""
    return tuple(sorted({*LATENCY_BUCKETS, slo_seconds}))


class ServiceMetrics:
    def __init__(self, slo_seconds: float = 0.25) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        buckets = latency_buckets(slo_seconds)
        r = self.registry
        self.request_duration = Histogram(
            "prectr_request_duration_seconds",
            "HTTP request duration",
            ["route", "status_class"],
            buckets=buckets,
            registry=r,
        )
        self.stage_duration = Histogram(
            "prectr_stage_duration_seconds",
            "Time per request in each pipeline stage",
            ["stage"],
            buckets=buckets,
            registry=r,
        )
        self.batch_rows = Histogram(
            "prectr_batch_rows", "Rows per inference batch", ["graph"], buckets=ROW_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("prectr_queue_depth", "Rows waiting in a batcher", ["graph"], registry=r)
        # CPU seconds of the batch worker threads (prepare + run + finish): against process_cpu_seconds_total
        # it says how much of the process's CPU goes to inference and how much to the request path.
        self.batch_cpu = Counter(
            "prectr_batch_cpu_seconds", "CPU time of inference batches, by graph", ["graph"], registry=r
        )
        # Wall seconds of the same batches: wall - CPU is time a batch thread was runnable but not running
        # (waiting for the GIL held by the request path, or for a core).
        self.batch_wall = Counter(
            "prectr_batch_wall_seconds", "Wall time of inference batches, by graph", ["graph"], registry=r
        )
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, open fds
        GCCollector(registry=r)  # python_gc_collections_total, objects collected
        self.gc_pauses = GcPauses()
        r.register(self.gc_pauses)
        self.shed = Counter(
            "prectr_shed_total", "Requests refused or dropped, by reason", ["reason"], registry=r
        )
        self.degraded = Counter(
            "prectr_degraded_total", "Requests answered degraded, by reason", ["reason"], registry=r
        )
        self.errors = Counter("prectr_errors_total", "Failed requests, by reason", ["reason"], registry=r)
        self.cache_lookups = Counter(
            "prectr_relevance_cache_lookups_total", "Relevance cache lookups", ["result"], registry=r
        )
        self.cache_admissions = Counter(
            "prectr_relevance_cache_admissions_total",
            "Requests with encoder misses: their new pairs stored, or deferred (a query seen fewer than "
            "cache.admit_after times)",
            ["result"],
            registry=r,
        )
        self.pref_lookups = Counter(
            "prectr_preference_lookups_total", "Preference lookups by outcome", ["outcome"], registry=r
        )
        self.model_info = Gauge(
            "prectr_model_info",
            "1 for the bundle being served",
            ["version", "provider", "variant"],
            registry=r,
        )
        self.ready = Gauge("prectr_ready", "1 when /readyz answers 200", registry=r)
        self.in_flight = Gauge("prectr_requests_in_flight", "Requests inside the service", registry=r)
        for labels, metric in (
            (STAGES, self.stage_duration),
            (GRAPHS, self.batch_rows),
            (GRAPHS, self.batch_cpu),
            (GRAPHS, self.batch_wall),
            (GRAPHS, self.queue_depth),
            (SHED_REASONS, self.shed),
            (DEGRADED_REASONS, self.degraded),
            (ERROR_REASONS, self.errors),
            (CACHE_RESULTS, self.cache_lookups),
            (CACHE_ADMISSIONS, self.cache_admissions),
            (PREF_OUTCOMES, self.pref_lookups),
        ):
            for value in labels:
                metric.labels(value)

    def set_model(self, version: str, provider: str, variant: str) -> None:
        """Exactly one ``prectr_model_info`` series is 1: the bundle now serving."""
        self.model_info.clear()
        self.model_info.labels(version=version, provider=provider, variant=variant).set(1)

    def observe_stages(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stage_duration.labels(stage).observe(ms / 1000.0)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class GcPauses:
    """Seconds the interpreter spent collecting garbage, by generation: ``prectr_gc_pause_seconds_total``.

    A collection stops every thread that needs the GIL, so its time is latency for every request in
    flight. Measured with ``gc.callbacks`` (the callback only adds floats: it may run inside any
    allocation, including one made while a metrics lock is held, so it must take no lock). Install it
    while serving; ``uninstall`` when the app stops (the callback list is process-wide).
    """

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._started

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        with suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "prectr_gc_pause_seconds",
            "Time spent in garbage collection, by generation",
            labels=["generation"],
        )
        for generation, seconds in enumerate(self.seconds):
            family.add_metric([str(generation)], seconds)
        yield family
