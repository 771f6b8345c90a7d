"""The service's own view of a load-test window, from two ``/metrics`` scrapes (before and after the run).

Metric names are the ops contract (service/metrics.py); every number here is what the Grafana dashboard
would show for the same window, so a report and a dashboard can be compared side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from loadtest.promtext import Scrape, histogram_quantile, share_within

SLO_SECONDS = 0.25


@dataclass
class Quantiles:
    count: float
    p50_ms: float
    p99_ms: float


@dataclass
class ServiceView:
    model: dict[str, str] = field(default_factory=dict)
    requests: dict[str, Quantiles] = field(default_factory=dict)  # "route status_class" -> quantiles
    score_within_slo: float = math.nan  # share of 2xx /score answers <= SLO_SECONDS
    stages: dict[str, Quantiles] = field(default_factory=dict)
    batch_rows: dict[str, Quantiles] = field(default_factory=dict)  # quantiles of rows, not ms
    shed: dict[str, float] = field(default_factory=dict)
    degraded: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    cache: dict[str, float] = field(default_factory=dict)
    preferences: dict[str, float] = field(default_factory=dict)

    @property
    def cache_hit_ratio(self) -> float:
        total = sum(self.cache.values())
        return self.cache.get("hit", 0.0) / total if total else math.nan


def _quantiles(buckets: list[tuple[float, float]], scale: float) -> Quantiles:
    count = buckets[-1][1] if buckets else 0.0
    return Quantiles(
        count, histogram_quantile(0.5, buckets) * scale, histogram_quantile(0.99, buckets) * scale
    )


def _request_buckets(window: Scrape) -> dict[str, list[tuple[float, float]]]:
    by: dict[str, dict[float, float]] = {}
    for labels, v in window.select("prectr_request_duration_seconds_bucket"):
        key = f"{labels.get('route', '?')} {labels.get('status_class', '?')}"
        slot = by.setdefault(key, {})
        slot[float(labels["le"])] = slot.get(float(labels["le"]), 0.0) + v
    return {k: sorted(b.items()) for k, b in by.items()}


def service_view(
    after: Scrape, before: Scrape | None = None, slo_seconds: float = SLO_SECONDS
) -> ServiceView:
    """Summarise the increase between two scrapes (or everything since start-up when ``before`` is None)."""
    w = after.minus(before)
    view = ServiceView()
    live = [labels for labels, v in after.select("prectr_model_info") if v == 1]
    view.model = live[0] if live else {}
    for key, buckets in sorted(_request_buckets(w).items()):
        if buckets and buckets[-1][1] > 0:
            view.requests[key] = _quantiles(buckets, 1000.0)
    ok_score = w.buckets_by("prectr_request_duration_seconds", None, route="/score", status_class="2xx")
    view.score_within_slo = share_within(slo_seconds, ok_score.get("", []))
    view.stages = {
        s: _quantiles(b, 1000.0) for s, b in w.buckets_by("prectr_stage_duration_seconds", "stage").items()
    }
    view.batch_rows = {g: _quantiles(b, 1.0) for g, b in w.buckets_by("prectr_batch_rows", "graph").items()}
    view.shed = w.sum_by("prectr_shed_total", "reason")
    view.degraded = w.sum_by("prectr_degraded_total", "reason")
    view.errors = w.sum_by("prectr_errors_total", "reason")
    view.cache = w.sum_by("prectr_relevance_cache_lookups_total", "result")
    view.preferences = w.sum_by("prectr_preference_lookups_total", "outcome")
    return view
