"""The locustfile and runner end to end against a stub ``/score`` server that speaks the service contract.

The stub (not the real service) keeps this test about the load-test harness: CSV rows for ``/score``,
``STAGE`` and ``DEGRADED``, failure messages, the /metrics scrapes and the report the runner writes.
"""

from __future__ import annotations

import contextlib
import csv
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from loadtest import run as lt_run

METRICS = b"""# TYPE prectr_model_info gauge
prectr_model_info{version="stub-1",provider="CPUExecutionProvider",variant="fp32"} 1.0
# TYPE prectr_ready gauge
prectr_ready 1.0
"""


class StubHandler(http.server.BaseHTTPRequestHandler):
    """200 with a valid body; every 5th request degraded, every 7th shed with 429 (both deterministic)."""

    count = 0
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # locust hangs up when it stops
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, METRICS if self.path == "/metrics" else b'{"status":"ok"}')

    def do_POST(self) -> None:
        req = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            StubHandler.count += 1
            n = StubHandler.count
        if n % 7 == 0:
            return self._send(
                429, b'{"error":{"code":"overloaded","message":"queue full"}}', {"Retry-After": "1"}
            )
        results = [
            {
                "item_id": c["item_id"],
                "score": 0.5 - i * 1e-5,
                "p_click": 0.4,
                "p_level": [0.25] * 4,
                "expected_level": 1.5,
                "incentive": 0.0,
            }
            for i, c in enumerate(req["candidates"])
        ]
        body = {
            "model_version": "stub-1",
            "level_names": ["a", "b", "c", "d"],
            "results": results,
            "degraded": ["preferences_unavailable"] if n % 5 == 0 else [],
            "timings": {"total": 1.0},
        }
        timing = (
            "features;dur=0.5, prefs;dur=0.1, queue;dur=0.2, encoder;dur=2.0, head;dur=0.3, total;dur=3.2"
        )
        self._send(200, orjson.dumps(body), {"Content-Type": "application/json", "Server-Timing": timing})


@pytest.fixture
def stub_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _stats(prefix: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(f"{prefix}_stats.csv", newline="") as fh:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(fh)}


def test_runner_records_stages_degraded_and_shed_apart_and_writes_report(
    stub_url: str, tmp_path: Path
) -> None:
    rc = lt_run.main(
        [
            "--url",
            stub_url,
            "-u",
            "2",
            "-t",
            "3",
            "--min-candidates",
            "5",
            "--max-candidates",
            "20",
            "--out",
            str(tmp_path),
            "--max-error-rate",
            "0.5",
        ]
    )
    assert rc == 0
    stats = _stats(tmp_path / "locust")
    score = stats[("POST", "/score")]
    requests, failures = int(score["Request Count"]), int(score["Failure Count"])
    assert requests >= 14 and failures >= 1
    assert {("STAGE", s) for s in ("features", "prefs", "queue", "encoder", "head", "total")} <= stats.keys()
    assert int(stats[("DEGRADED", "preferences_unavailable")]["Request Count"]) >= 1
    with open(tmp_path / "locust_failures.csv", newline="") as fh:
        errors = [r["Error"] for r in csv.DictReader(fh)]
    assert len(errors) == 1 and "HTTP 429 overloaded" in errors[0]
    md = (tmp_path / "report.md").read_text()
    assert "stub-1" in md and f"| {requests} | {failures} |" in md
    assert f"| HTTP 429 overloaded | {failures} |" in md
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_runner_fails_the_gate_when_shed_answers_exceed_the_error_budget(
    stub_url: str, tmp_path: Path
) -> None:
    rc = lt_run.main(
        [
            "--url",
            stub_url,
            "-u",
            "1",
            "-t",
            "2",
            "--min-candidates",
            "5",
            "--max-candidates",
            "10",
            "--out",
            str(tmp_path),
            "--max-error-rate",
            "0.01",
        ]
    )
    assert rc == 1  # one answer in seven is a 429


def test_runner_refuses_a_non_loopback_target(tmp_path: Path) -> None:
    assert lt_run.main(["--url", "http://192.0.2.10:8000", "--out", str(tmp_path)]) == 2


def test_runner_without_a_service_or_start_command_says_so(tmp_path: Path) -> None:
    assert lt_run.main(["--url", "http://127.0.0.1:9", "--out", str(tmp_path)]) == 2
