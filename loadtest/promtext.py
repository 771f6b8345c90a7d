"""Read the service's ``/metrics`` text: counter deltas over a run and quantiles from histogram buckets.

Quantiles follow PromQL's ``histogram_quantile`` (linear interpolation inside the bucket, the highest finite
bound when the rank lands in ``+Inf``), so the report's service-side numbers match what Grafana shows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]


@dataclass
class Scrape:
    """Samples keyed by (sample name, sorted labels); ``types`` maps sample names to their family's type."""

    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Scrape:
        out = cls()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name.endswith("_created"):
                    continue  # creation timestamps, not observations
                out.samples[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
                out.types[s.name] = family.type
        return out

    def minus(self, before: Scrape | None) -> Scrape:
        """Counters and histograms as increases since ``before``; gauges as now. A reset keeps the raw value."""
        if before is None:
            return self
        out = Scrape(types=dict(self.types))
        for key, value in self.samples.items():
            if self.types.get(key[0]) in ("counter", "histogram", "summary"):
                prev = before.samples.get(key, 0.0)
                value = value - prev if value >= prev else value
            out.samples[key] = value
        return out

    def select(self, name: str, **match: str) -> list[tuple[dict[str, str], float]]:
        return [
            (dict(labels), v)
            for (n, labels), v in self.samples.items()
            if n == name and all(dict(labels).get(k) == want for k, want in match.items())
        ]

    def sum_by(self, name: str, label: str, **match: str) -> dict[str, float]:
        """``sum by (label) (name{match})``."""
        out: dict[str, float] = defaultdict(float)
        for labels, v in self.select(name, **match):
            out[labels.get(label, "")] += v
        return dict(out)

    def buckets_by(
        self, histogram: str, label: str | None, **match: str
    ) -> dict[str, list[tuple[float, float]]]:
        """Cumulative ``(le, count)`` pairs per value of ``label``, summed over every other label."""
        acc: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
        for labels, v in self.select(f"{histogram}_bucket", **match):
            key = labels.get(label, "") if label else ""
            acc[key][float(labels["le"])] += v
        return {k: sorted(b.items()) for k, b in acc.items()}


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """PromQL ``histogram_quantile`` over sorted cumulative buckets; NaN when there are no observations."""
    if not buckets or buckets[-1][0] != math.inf or buckets[-1][1] <= 0:
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == math.inf:
                return lower_bound  # beyond the highest finite bucket: its bound is all PromQL can say
            if count == lower_count:
                return le
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = le, count
    return lower_bound


def share_within(bound: float, buckets: list[tuple[float, float]]) -> float:
    """Fraction of observations ``<= bound`` (exact when ``bound`` is a bucket edge, as the SLO bucket is)."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    within = max((c for le, c in buckets if le <= bound), default=0.0)
    return within / buckets[-1][1]
