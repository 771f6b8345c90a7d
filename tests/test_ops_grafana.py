"""The Grafana dashboard: generated from its script, laid out on the grid, every query valid PromQL."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "deploy" / "grafana"
BOARD = json.loads((GRAFANA / "dashboards" / "prectr.json").read_text())
# Grafana's variables, replaced by values of the same type so promtool can parse the queries.
SUBSTITUTIONS = {"$__rate_interval": "1m", "$job": "prectr", "$instance": ".*", "$stage": "total"}


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_dashboard", GRAFANA / "build_dashboard.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _panels() -> list[dict]:
    return [p for p in BOARD["panels"] if p["type"] != "row"]


def test_committed_dashboard_is_what_the_generator_writes() -> None:
    assert (GRAFANA / "dashboards" / "prectr.json").read_text() == _generator().render(), (
        "run: python deploy/grafana/build_dashboard.py"
    )


def test_panels_have_unique_ids_and_do_not_overlap_on_the_24_column_grid() -> None:
    ids = [p["id"] for p in BOARD["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in BOARD["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, f"{p['title']} overlaps another panel"
        cells |= area


def test_every_query_uses_the_datasource_variable_and_filters_on_job() -> None:
    for p in _panels():
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            assert 'job="$job"' in t["expr"], f"{p['title']}: {t['expr']}"


def test_dashboard_covers_the_views_sres_asked_for() -> None:
    titles = " | ".join(p["title"].lower() for p in _panels())
    for needle in (
        "request rate by route",
        "errors by route",
        "latency by route",
        "stage latency p99",
        "heatmap",
        "rows per batch",
        "queue depth",
        "shed by reason",
        "degraded by reason",
        "errors by reason",
        "cache hit ratio",
        "preference lookup",
        "model version",
    ):
        assert needle in titles, needle
    assert any(p["type"] == "heatmap" and p["targets"][0].get("format") == "heatmap" for p in _panels())


def test_provisioned_datasource_is_the_dashboard_default() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    default = next(v for v in BOARD["templating"]["list"] if v["name"] == "datasource")["current"]["value"]
    assert [d["uid"] for d in ds if d["type"] == "prometheus"] == [default]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "promtool is not on PATH: install Debian's `prometheus` package (apt-get install prometheus)"
        )
    exprs = [t["expr"] for p in _panels() for t in p["targets"]]
    rules = []
    for i, expr in enumerate(exprs):
        for var, value in SUBSTITUTIONS.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, f"unsubstituted variable in {expr}"
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
