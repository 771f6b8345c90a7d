"""Client-side answer checks and the load schedules (pure: locust is never imported into the test process)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest

from loadtest.checks import check_score_response, parse_server_timing
from loadtest.schedules import spike, steady, step

TIMING = "features;dur=0.8, prefs;dur=0.3, queue;dur=1.5, encoder;dur=20.25, head;dur=2, total;dur=25.1"


def _payload(n: int = 3, **extra: Any) -> dict[str, Any]:
    return {
        "user_id": "u1",
        "query": "drill",
        "candidates": [{"item_id": f"i{i}", "title": f"drill {i}"} for i in range(n)],
        **extra,
    }


def _answer(ids: list[str], degraded: list[str] | None = None, **override: Any) -> bytes:
    results = [
        {
            "item_id": i,
            "score": 0.9 - 0.1 * k,
            "p_click": 0.5,
            "p_level": [0.1, 0.2, 0.3, 0.4],
            "expected_level": 2.0,
            "incentive": -0.1,
            **override,
        }
        for k, i in enumerate(ids)
    ]
    return orjson.dumps(
        {
            "model_version": "v1",
            "level_names": ["a", "b", "c", "d"],
            "results": results,
            "degraded": degraded or [],
            "timings": {"total": 25.1},
        }
    )


def test_server_timing_is_parsed_per_stage_in_milliseconds() -> None:
    assert parse_server_timing(TIMING) == {
        "features": 0.8,
        "prefs": 0.3,
        "queue": 1.5,
        "encoder": 20.25,
        "head": 2.0,
        "total": 25.1,
    }
    assert parse_server_timing('cache;desc="hit", total;dur=3') == {"total": 3.0}
    assert parse_server_timing(None) == {}


def test_a_correct_answer_passes_and_reports_its_stages_and_degraded_reasons() -> None:
    verdict = check_score_response(
        _payload(), 200, _answer(["i0", "i1", "i2"], ["preferences_unavailable"]), TIMING
    )
    assert verdict.error is None
    assert verdict.degraded == ("preferences_unavailable",)
    assert verdict.stages_ms["encoder"] == 20.25


@pytest.mark.parametrize(
    ("payload", "status", "body", "timing", "error"),
    [
        (_payload(), 429, b'{"error":{"code":"overloaded","message":"x"}}', None, "HTTP 429 overloaded"),
        (_payload(), 504, b"not json", None, "HTTP 504"),
        (_payload(), 0, None, None, "connection error"),
        (_payload(), 200, _answer(["i0", "i1"]), TIMING, "wrong count"),
        (_payload(top_k=2), 200, _answer(["i0", "i1", "i2"]), TIMING, "wrong count"),
        (_payload(), 200, _answer(["i0", "i1", "i9"]), TIMING, "unknown or repeated"),
        (_payload(), 200, _answer(["i0", "i0", "i1"]), TIMING, "unknown or repeated"),
        (_payload(), 200, _answer(["i0", "i1", "i2"], p_level=[0.5, 0.5, 0.5, 0.5]), TIMING, "sum to 1"),
        (_payload(), 200, _answer(["i0", "i1", "i2"], score=1.5), TIMING, "score"),
        (_payload(), 200, _answer(["i0", "i1", "i2"]), None, "Server-Timing"),
        (_payload(), 200, b'{"results": []}', TIMING, "model_version"),
    ],
)
def test_wrong_answers_fail_with_a_short_groupable_message(
    payload: dict, status: int, body: bytes | None, timing: str | None, error: str
) -> None:
    verdict = check_score_response(payload, status, body, timing)
    assert verdict.error is not None and error in verdict.error
    assert len(verdict.error) < 80


def test_unsorted_scores_fail_unless_the_request_asked_for_request_order() -> None:
    body = orjson.loads(_answer(["i0", "i1", "i2"]))
    body["results"].reverse()
    raw = orjson.dumps(body)
    assert "not sorted" in (check_score_response(_payload(), 200, raw, TIMING).error or "")
    assert check_score_response(_payload(sort=False), 200, raw, TIMING).error is None


def test_steady_holds_the_peak_until_the_duration_then_stops() -> None:
    assert steady(0, 8, 2.0, 60) == (8, 2.0)
    assert steady(59.9, 8, 2.0, 60) == (8, 2.0)
    assert steady(60, 8, 2.0, 60) is None


def test_step_climbs_in_equal_plateaus_to_the_peak() -> None:
    users = [step(t, 8, 4.0, 60, steps=4)[0] for t in (0, 14.9, 15, 30, 45, 59)]  # type: ignore[index]
    assert users == [2, 2, 4, 6, 8, 8]
    assert step(60, 8, 4.0, 60, steps=4) is None


def test_spike_jumps_to_the_peak_in_the_middle_fifth_and_recovers() -> None:
    plan = [spike(t, 20, 1.0, 100, spike_base=0.25) for t in (10, 39, 40, 59, 60, 99)]
    assert [p[0] for p in plan] == [5, 5, 20, 20, 5, 5]  # type: ignore[index]
    assert all(p[1] >= 20 for p in plan)  # type: ignore[index]  # a spike is not ramped
    assert spike(100, 20, 1.0, 100) is None


def test_loadtest_tools_never_import_locust_into_the_caller() -> None:
    """locust monkey-patches the whole process with gevent: only the locustfile (a subprocess) may import it."""
    code = (
        "import sys, loadtest.run, loadtest.report, loadtest.payloads, loadtest.checks, loadtest.schedules; "
        "sys.exit('locust' in sys.modules or 'gevent' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
