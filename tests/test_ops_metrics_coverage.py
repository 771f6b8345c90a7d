"""Every metric (and label value) the Grafana dashboard and the Prometheus rules read exists in /metrics.

A renamed metric otherwise fails silently: the panel shows "No data", the alert never fires. The live test
runs the real app in-process (fake scorer, fake store), sends one /score and scrapes /metrics.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "prectr.json"
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
# a metric name, not inside a recording-rule name a:b:c
_NAME = re.compile(r"(?<![\w:])((?:prectr|process)_[A-Za-z0-9_]+)(?![\w:])")
_SELECTOR = re.compile(r"(?<![\w:])(prectr_[A-Za-z0-9_]+)\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*=\s*"([^"]*)"')  # equality matchers only; =~ and != are skipped
_TYPE = re.compile(r"^# TYPE (\S+) (\w+)$", re.M)
_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{([^}]*)\})? ", re.M)
_SUFFIXES = {
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
    "counter": ("_total",),
}
PROMETHEUS_LABELS = {"job", "instance"}  # attached by the scrape, never by the service


def referenced_expressions() -> list[str]:
    """PromQL of every rule, dashboard target and dashboard variable query."""
    exprs = [r["expr"] for f in RULES for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]]
    board = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs


def referenced_metrics(exprs: list[str]) -> set[str]:
    return {name for e in exprs for name in _NAME.findall(e)}


def exported_names(text: str) -> set[str]:
    """Sample names a scrape can contain: declared families expanded (a labelled family may have no child yet)."""
    names = {m.group(1) for m in _SAMPLE.finditer(text) if not m.group(1).startswith("#")}
    for family, kind in _TYPE.findall(text):
        names.add(family)
        names.update(family.removesuffix("_total") + s for s in _SUFFIXES.get(kind, ()))
    return names


def exported_label_values(text: str) -> dict[str, dict[str, set[str]]]:
    """sample name -> label -> values seen."""
    out: dict[str, dict[str, set[str]]] = {}
    for m in _SAMPLE.finditer(text):
        for label, value in _MATCHER.findall(m.group(2) or ""):
            out.setdefault(m.group(1), {}).setdefault(label, set()).add(value)
    return out


def missing_label_values(exprs: list[str], text: str) -> list[str]:
    """Equality matchers on prectr metrics whose value no sample carries (``$var`` and job/instance skipped)."""
    seen, problems = exported_label_values(text), []
    for expr in exprs:
        for name, body in _SELECTOR.findall(expr):
            for label, value in _MATCHER.findall(body):
                if label in PROMETHEUS_LABELS or "$" in value:
                    continue
                if label == "status_class" and re.fullmatch(r"[1-5]xx", value):
                    continue  # exists once such a status happened; the shape of the value is what matters
                if value not in seen.get(name, {}).get(label, set()):
                    problems.append(f'{name}{{{label}="{value}"}}')
    return sorted(set(problems))


def test_extraction_expands_histograms_and_ignores_recording_rule_names() -> None:
    exprs = [
        'sum(rate(prectr_x_seconds_bucket{le="0.25"}[5m])) / job:prectr_y_errors:ratio_rate5m',
        "prectr_shed_total > 0",
    ]
    assert referenced_metrics(exprs) == {"prectr_x_seconds_bucket", "prectr_shed_total"}
    text = "# TYPE prectr_x_seconds histogram\n# TYPE prectr_shed_total counter\n# TYPE prectr_up gauge\n"
    assert {"prectr_x_seconds_bucket", "prectr_x_seconds_count", "prectr_shed_total"} <= exported_names(text)
    assert missing_label_values(exprs, 'prectr_x_seconds_bucket{le="0.5"} 1.0\n') == [
        'prectr_x_seconds_bucket{le="0.25"}'
    ]


def test_dashboard_and_rules_reference_the_contract_metrics() -> None:
    names = referenced_metrics(referenced_expressions())
    for family in (
        "prectr_request_duration_seconds_bucket",
        "prectr_stage_duration_seconds_bucket",
        "prectr_batch_rows_bucket",
        "prectr_batch_cpu_seconds_total",
        "prectr_batch_wall_seconds_total",
        "process_cpu_seconds_total",
        "prectr_gc_pause_seconds_total",
        "prectr_queue_depth",
        "prectr_shed_total",
        "prectr_degraded_total",
        "prectr_errors_total",
        "prectr_relevance_cache_lookups_total",
        "prectr_preference_lookups_total",
        "prectr_model_info",
        "prectr_ready",
        "prectr_requests_in_flight",
    ):
        assert family in names, f"nothing shows or alerts on {family}"


async def test_every_referenced_metric_and_label_value_exists_in_a_live_scrape() -> None:
    try:
        from service.app import create_app
        from service.fake_scorer import FakeScorer
        from service.settings import Settings
    except ImportError as exc:
        pytest.skip(f"service.app is not importable yet ({exc}); the live metrics check needs it")
    from service_fakes import FakeStore, running, score_body

    app = create_app(Settings(), scorer=FakeScorer(version="cov-1"), store=FakeStore())
    async with running(app) as client:
        assert (await client.post("/score", json=score_body(8))).status_code == 200
        text = (await client.get("/metrics")).text
    exprs = referenced_expressions()
    assert sorted(referenced_metrics(exprs) - exported_names(text)) == []
    assert missing_label_values(exprs, text) == []
    assert 'le="0.25"' in text, "the latency SLO needs a histogram bucket exactly at 0.25 s"
