"""The load-test report on small hand-written locust CSVs and /metrics scrapes: PNG, numbers, SLO exit code."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from loadtest import report
from loadtest.promtext import Scrape, histogram_quantile

PCTS = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
STATS_HEAD = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
    *PCTS,
]
HIST_HEAD = [
    "Timestamp",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
    *PCTS,
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
]


def _stats_row(kind: str, name: str, n: int, fails: int, p50: int, p99: int) -> list:
    return [
        kind,
        name,
        n,
        fails,
        p50,
        p50 + 3,
        1,
        p99 + 20,
        900,
        n / 60,
        fails / 60,
        p50,
        p50,
        p50,
        p50,
        p50 + 10,
        p50 + 20,
        p50 + 30,
        p99,
        p99 + 10,
        p99 + 20,
        p99 + 20,
    ]


def write_run(tmp: Path, requests: int = 6000, failures: int = 30, p99: int = 180) -> Path:
    prefix = tmp / "locust"
    with open(f"{prefix}_stats.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(STATS_HEAD)
        w.writerow(_stats_row("POST", "/score", requests, failures, 42, p99))
        w.writerow(_stats_row("STAGE", "encoder", requests - failures, 0, 30, 120))
        w.writerow(_stats_row("DEGRADED", "preferences_unavailable", 120, 0, 45, 150))
        w.writerow(_stats_row("", "Aggregated", 99_999, failures, 10, 999))
    with open(f"{prefix}_stats_history.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HIST_HEAD)
        for t in range(61):
            done = 100 * t
            w.writerow(
                [
                    1_700_000_000 + t,
                    8,
                    "POST",
                    "/score",
                    100,
                    0.5,
                    *[40 + t % 5] * 7,
                    p99,
                    p99,
                    p99,
                    p99,
                    done,
                    failures * t // 60,
                    42,
                    45,
                    1,
                    200,
                    900,
                ]
            )
            w.writerow(
                [
                    1_700_000_000 + t,
                    8,
                    "DEGRADED",
                    "preferences_unavailable",
                    2,
                    0,
                    *["N/A"] * 11,
                    2 * t,
                    0,
                    45,
                    45,
                    1,
                    150,
                    0,
                ]
            )
    with open(f"{prefix}_failures.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"])
        w.writerow(["POST", "/score", "CatchResponseError('HTTP 429 overloaded')", failures, "", ""])
    return prefix


def _histogram(name: str, labels: str, counts: dict[str, float]) -> str:
    return (
        "".join(f'{name}_bucket{{{labels},le="{le}"}} {c}\n' for le, c in counts.items())
        + f"{name}_count{{{labels}}} {counts['+Inf']}\n{name}_sum{{{labels}}} 1.0\n"
    )


def write_metrics(tmp: Path, scale: float) -> tuple[Path, Path]:
    """Before: everything at 0 (and the model already loaded); after: ``scale`` times the counts."""
    paths = []
    for name, k in (("before.prom", 0.0), ("after.prom", scale)):
        text = "# TYPE prectr_request_duration_seconds histogram\n" + _histogram(
            "prectr_request_duration_seconds",
            'route="/score",status_class="2xx"',
            {"0.05": 500 * k, "0.1": 900 * k, "0.25": 990 * k, "+Inf": 1000 * k},
        )
        text += "# TYPE prectr_stage_duration_seconds histogram\n" + _histogram(
            "prectr_stage_duration_seconds",
            'stage="encoder"',
            {"0.02": 250 * k, "0.04": 1000 * k, "+Inf": 1000 * k},
        )
        text += (
            "# TYPE prectr_shed_total counter\n"
            f'prectr_shed_total{{reason="queue_full"}} {30 * k}\n'
            "# TYPE prectr_relevance_cache_lookups_total counter\n"
            f'prectr_relevance_cache_lookups_total{{result="hit"}} {3000 * k}\n'
            f'prectr_relevance_cache_lookups_total{{result="miss"}} {1000 * k}\n'
            "# TYPE prectr_model_info gauge\n"
            'prectr_model_info{version="v9",provider="CPUExecutionProvider",variant="int8"} 1.0\n'
        )
        (tmp / name).write_text(text)
        paths.append(tmp / name)
    return paths[0], paths[1]


def test_report_writes_png_and_markdown_joining_client_and_service_views(tmp_path: Path) -> None:
    prefix = write_run(tmp_path)
    before, after = write_metrics(tmp_path, scale=6.0)
    rc = report.main(
        [
            "--csv-prefix",
            str(prefix),
            "--metrics-before",
            str(before),
            "--metrics-after",
            str(after),
            "--max-error-rate",
            "0.01",
            "--max-p99-ms",
            "250",
        ]
    )
    assert rc == 0
    md = (tmp_path / "report.md").read_text()
    assert "| 6000 | 30 | 0.50% | 100.0 | 42 |" in md  # requests, failures, error rate, req/s, p50
    assert "| 180 |" in md and "120 (2.00%)" in md  # p99 and degraded count
    assert "| HTTP 429 overloaded | 30 |" in md
    assert "Model `v9` on `CPUExecutionProvider` (int8)" in md
    assert "within 250 ms: 99.00%" in md
    assert "| encoder | 30.0 | 120.0 | 26.7 | 39.7 |" in md  # client Server-Timing vs service histogram
    assert "Relevance cache hit ratio: 75.00%" in md and "queue_full 180" in md
    png = tmp_path / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.parametrize(("failures", "p99", "broken"), [(300, 180, "error rate"), (30, 400, "p99 latency")])
def test_slo_breach_exits_non_zero_and_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], failures: int, p99: int, broken: str
) -> None:
    prefix = write_run(tmp_path, failures=failures, p99=p99)
    assert report.main(["--csv-prefix", str(prefix), "--max-error-rate", "0.01", "--max-p99-ms", "250"]) == 1
    assert f"{broken}" in capsys.readouterr().out
    assert "**FAIL**" in (tmp_path / "report.md").read_text()


def test_missing_locust_output_is_an_input_error_not_a_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report.main(["--csv-prefix", str(tmp_path / "nothing"), "--max-error-rate", "0.01"]) == 2
    assert "nothing_stats.csv is missing" in capsys.readouterr().err


def test_histogram_quantile_interpolates_like_promql_and_counter_resets_are_handled() -> None:
    buckets = [(0.1, 50.0), (0.25, 90.0), (0.5, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.1 + 0.15 * (70 - 50) / 40)
    assert histogram_quantile(0.99, [(0.1, 0.0), (math.inf, 10.0)]) == 0.1  # rank in +Inf: highest bound
    assert math.isnan(histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]))
    before = Scrape.parse("# TYPE c_total counter\nc_total 50\n# TYPE g gauge\ng 3\n")
    after = Scrape.parse("# TYPE c_total counter\nc_total 20\n# TYPE g gauge\ng 1\n")
    window = after.minus(before)
    assert window.sum_by("c_total", "x") == {"": 20.0}  # restarted: the new count is the increase
    assert window.sum_by("g", "x") == {"": 1.0}  # gauges are read as they are now
