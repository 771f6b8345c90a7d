"""Generate ``dashboards/prectr.json`` (the provisioned Grafana dashboard) from readable panel definitions.

Run ``python deploy/grafana/build_dashboard.py`` after editing; a test fails when the committed JSON and
this script disagree, so the JSON is never hand-edited out of step. Every query filters on ``$job`` and
``$instance``; metric names are the service's ops contract (service/metrics.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "prectr.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job="$job", instance=~"$instance"'
RATE = "[$__rate_interval]"


def _target(expr: str, legend: str = "", ref: int = 0, **extra: Any) -> dict[str, Any]:
    return {"refId": chr(ord("A") + ref), "datasource": DS, "expr": expr, "legendFormat": legend, **extra}


class Layout:
    """Places panels left to right in rows of 24 grid units, with collapsible row headers."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = 0
        self.row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "id": len(self.panels) + 1,
                "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        self.y += 1

    def _newline(self) -> None:
        self.y += self.row_h
        self.x, self.row_h = 0, 0

    def add(
        self,
        kind: str,
        title: str,
        targets: list[dict[str, Any]],
        w: int = 8,
        h: int = 8,
        unit: str = "short",
        description: str = "",
        **options: Any,
    ) -> None:
        if self.x + w > 24:
            self._newline()
        panel = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
            "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            **options,
        }
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


def _quantiles(metric: str, by: str, qs: tuple[float, ...], legend: str) -> list[dict[str, Any]]:
    return [
        _target(
            f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{SEL}}}{RATE})))",
            f"{legend} p{round(q * 100)}",
            i,
        )
        for i, q in enumerate(qs)
    ]


def _rate_by(metric: str, by: str, extra: str = "") -> list[dict[str, Any]]:
    return [_target(f"sum by ({by}) (rate({metric}{{{SEL}{extra}}}{RATE}))", f"{{{{{by}}}}}")]


def build_panels() -> list[dict[str, Any]]:
    lay = Layout()
    lay.row("Overview")
    lay.add(
        "stat",
        "Model serving",
        [_target(f"prectr_model_info{{{SEL}}} == 1", "{{version}} · {{provider}} · {{variant}}")],
        w=8,
        h=4,
        options={"textMode": "name", "colorMode": "none", "reduceOptions": {"calcs": ["lastNotNull"]}},
        description="The bundle each instance serves; two versions at once means a reload in progress.",
    )
    lay.add(
        "stat",
        "Ready instances",
        [_target(f"sum(prectr_ready{{{SEL}}})")],
        w=4,
        h=4,
        description="Instances whose /readyz answers 200.",
    )
    lay.add("stat", "Requests in flight", [_target(f"sum(prectr_requests_in_flight{{{SEL}}})")], w=4, h=4)
    for name, rule in (("Latency SLI (1h)", "latency"), ("Availability SLI (1h)", "availability")):
        lay.add(
            "stat",
            name,
            [_target(f'1 - job:prectr_score_{rule}_errors:ratio_rate1h{{job="$job"}}')],
            w=4,
            h=4,
            unit="percentunit",
            description=f"Recording rule of the {rule} SLO (deploy/prometheus).",
        )

    lay.row("RED per route")
    lay.add(
        "timeseries",
        "Request rate by route",
        _rate_by("prectr_request_duration_seconds_count", "route"),
        unit="reqps",
    )
    lay.add(
        "timeseries",
        "Errors by route and status (4xx includes 429 shed)",
        [
            _target(
                f"sum by (route, status_class) (rate(prectr_request_duration_seconds_count{{{SEL}, "
                f'status_class=~"4xx|5xx"}}{RATE}))',
                "{{route}} {{status_class}}",
            )
        ],
        unit="reqps",
    )
    lay.add(
        "timeseries",
        "Latency by route",
        _quantiles("prectr_request_duration_seconds", "route", (0.5, 0.9, 0.99), "{{route}}"),
        unit="s",
        description="SLO: 99 % of 2xx /score answers within 250 ms.",
    )

    lay.row("Pipeline stages")
    lay.add(
        "timeseries",
        "Stage latency p50",
        _quantiles("prectr_stage_duration_seconds", "stage", (0.5,), "{{stage}}"),
        unit="s",
    )
    lay.add(
        "timeseries",
        "Stage latency p99",
        _quantiles("prectr_stage_duration_seconds", "stage", (0.99,), "{{stage}}"),
        unit="s",
    )
    lay.add(
        "heatmap",
        "Stage latency heatmap: $stage",
        [
            _target(
                f'sum by (le) (increase(prectr_stage_duration_seconds_bucket{{{SEL}, stage="$stage"}}{RATE}))',
                "{{le}}",
                format="heatmap",
            )
        ],
        unit="s",
        options={"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1, "color": {"scheme": "Oranges"}},
    )

    lay.row("Batching and queues")
    lay.add(
        "timeseries",
        "Rows per batch",
        _quantiles("prectr_batch_rows", "graph", (0.5, 0.99), "{{graph}}"),
        description="Encoder batches stay small on CPU (compute-bound); head batches should be large.",
    )
    lay.add("timeseries", "Batches per second", _rate_by("prectr_batch_rows_count", "graph"), unit="ops")
    lay.add(
        "timeseries",
        "Queue depth (rows waiting)",
        [_target(f"sum by (graph) (prectr_queue_depth{{{SEL}}})", "{{graph}}")],
    )
    lay.add(
        "timeseries",
        "CPU: inference vs the rest",
        [
            _target(f"sum by (graph) (rate(prectr_batch_cpu_seconds_total{{{SEL}}}{RATE}))", "{{graph}}"),
            _target(
                f"sum(rate(process_cpu_seconds_total{{{SEL}}}{RATE})) - "
                f"sum(rate(prectr_batch_cpu_seconds_total{{{SEL}}}{RATE}))",
                "request path (HTTP, features, fusion)",
                ref=1,
            ),
        ],
        unit="short",
        description="Cores busy. On a CPU host everything but inference competes with the ONNX runs.",
    )
    lay.add(
        "timeseries",
        "Inference threads waiting (GIL or a core)",
        [
            _target(
                f"sum by (graph) (rate(prectr_batch_wall_seconds_total{{{SEL}}}{RATE})) - "
                f"sum by (graph) (rate(prectr_batch_cpu_seconds_total{{{SEL}}}{RATE}))",
                "{{graph}}",
            )
        ],
        unit="short",
        description="Batch threads runnable but not running (wall - CPU of their batches): waiting for the "
        "GIL held by the request path, or for a core. High while cores idle means GIL contention.",
    )
    lay.add(
        "timeseries",
        "Garbage collection (share of time)",
        _rate_by("prectr_gc_pause_seconds_total", "generation"),
        unit="percentunit",
        description="Every thread needing the GIL waits during a collection: it is latency for requests in flight.",
    )

    lay.row("Shed, degraded, errors")
    lay.add("timeseries", "Shed by reason", _rate_by("prectr_shed_total", "reason"), unit="reqps")
    lay.add("timeseries", "Degraded by reason", _rate_by("prectr_degraded_total", "reason"), unit="reqps")
    lay.add("timeseries", "Errors by reason", _rate_by("prectr_errors_total", "reason"), unit="reqps")

    lay.row("Caches and preferences")
    lay.add(
        "timeseries",
        "Relevance cache hit ratio",
        [
            _target(
                f'sum(rate(prectr_relevance_cache_lookups_total{{{SEL}, result="hit"}}{RATE})) / '
                f"sum(rate(prectr_relevance_cache_lookups_total{{{SEL}}}{RATE}))",
                "hit ratio",
            )
        ],
        unit="percentunit",
        description="Hits skip the encoder: the biggest lever on CPU latency.",
    )
    lay.add(
        "timeseries",
        "Relevance cache lookups and admissions",
        _rate_by("prectr_relevance_cache_lookups_total", "result")
        + _rate_by("prectr_relevance_cache_admissions_total", "result"),
        unit="ops",
        description="Lookups per candidate (hit, miss); admissions per request with misses: stored, or "
        "deferred until its query comes back (cache.admit_after).",
    )
    lay.add(
        "timeseries",
        "Preference lookup outcomes",
        _rate_by("prectr_preference_lookups_total", "outcome"),
        unit="ops",
        description="timeout/error/malformed answers are served with default preferences.",
    )

    lay.row("Model")
    lay.add(
        "state-timeline",
        "Model version by instance",
        [
            _target(
                f"max by (instance, version, variant) (prectr_model_info{{{SEL}}})",
                "{{instance}} {{version}} {{variant}}",
            )
        ],
        w=24,
        h=5,
    )
    return lay.panels


def _variable(name: str, query: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "query", "datasource": DS, "query": query, "refresh": 2, "sort": 1, **extra}


def build_dashboard() -> dict[str, Any]:
    return {
        "uid": "prectr-service",
        "title": "prectr scoring service",
        "tags": ["prectr"],
        "editable": False,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "timezone": "browser",
        "time": {"from": "now-1h", "to": "now"},
        "graphTooltip": 1,
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Data source",
                    "current": {"text": "Prometheus", "value": "prometheus"},
                },
                _variable(
                    "job", "label_values(prectr_ready, job)", current={"text": "prectr", "value": "prectr"}
                ),
                _variable(
                    "instance",
                    'label_values(prectr_ready{job="$job"}, instance)',
                    includeAll=True,
                    multi=True,
                    allValue=".*",
                    current={"text": "All", "value": "$__all"},
                ),
                _variable(
                    "stage",
                    "label_values(prectr_stage_duration_seconds_bucket, stage)",
                    current={"text": "total", "value": "total"},
                ),
            ]
        },
        "panels": build_panels(),
    }


def render() -> str:
    return json.dumps(build_dashboard(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT}")
