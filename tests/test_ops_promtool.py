"""Prometheus config and rules: promtool validates them and runs the rule unit tests; every alert is tested.

promtool comes from Debian's ``prometheus`` package (``.ci/run`` installs it); without it the promtool tests
skip and say so, while the pure-Python coverage checks below still run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
PROM = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip(
            "promtool is not on PATH: install Debian's `prometheus` package (apt-get install prometheus)"
        )
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)


def _alerts() -> dict[str, dict]:
    return {
        r["alert"]: r
        for f in RULE_FILES
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }


def test_promtool_accepts_the_scrape_config_and_its_rule_files() -> None:
    result = _promtool("check", "config", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


def test_promtool_accepts_every_rule_file() -> None:
    result = _promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    result = _promtool("test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_case_and_a_quiet_case_in_the_unit_tests() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = set(_alerts())
    assert alerts, "no alert rules found"
    assert alerts - firing == set(), "alerts without a test where they fire"
    assert alerts - quiet == set(), "alerts without a test where they stay quiet"


def test_every_alert_says_how_urgent_it_is_and_where_its_runbook_is() -> None:
    for name, rule in _alerts().items():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        anchor = name.removesuffix("Slow").lower()  # a slow burn shares the runbook of its fast twin
        assert rule["annotations"]["runbook_url"] == f"README.md#{anchor}", name
        assert rule["annotations"].get("summary") and rule["annotations"].get("description"), name


def test_burn_rate_alerts_use_the_workbook_windows_and_factors() -> None:
    alerts = _alerts()
    expected = {
        "": {("1h", "5m", "14.4"), ("6h", "30m", "6")},
        "Slow": {("1d", "2h", "3"), ("3d", "6h", "1")},
    }
    for slo in ("Latency", "Availability"):
        for suffix, pairs in expected.items():
            expr = alerts[f"PrectrScore{slo}BudgetBurn{suffix}"]["expr"]
            found = re.findall(
                r"ratio_rate(\w+) > \(([\d.]+) \* [\d.]+\)\s*and\s*\S+ratio_rate(\w+) > \(([\d.]+)", expr
            )
            assert {(long, short, f1) for long, f1, short, f2 in found if f1 == f2} == pairs, (slo, suffix)


def test_readme_runbook_covers_every_alert() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    if "## Operations" not in text:
        pytest.skip("README.md has no '## Operations' section yet (the lead adds it)")
    missing = [name for name in _alerts() if f"#### {name.removesuffix('Slow')}" not in text]
    assert missing == [], "README runbook headings missing (anchors of runbook_url)"
