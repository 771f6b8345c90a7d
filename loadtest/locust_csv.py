"""Locust's CSV output (``--csv PREFIX --csv-full-history``) read into the numbers the report needs.

The ``POST /score`` row is the client view; ``STAGE <name>`` rows carry Server-Timing durations and
``DEGRADED <reason>`` rows count degraded answers (see ``locustfile.py``). Locust's ``Aggregated`` row mixes
all of them, so it is never used.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SCORE = ("POST", "/score")
_WRAPPED = re.compile(r"^\w+\((['\"])(.*)\1\)$")  # locust writes CatchResponseError('msg') into the CSV


def _num(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "", "N/A") else math.nan
    except ValueError:
        return math.nan


def _num0(value: str | None) -> float:
    x = _num(value)
    return x if math.isfinite(x) else 0.0


def _int(value: str | None) -> int:
    x = _num(value)
    return int(x) if math.isfinite(x) else 0


def _unwrap(error: str) -> str:
    m = _WRAPPED.match(error)
    return m.group(2) if m else error


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: was locust run with --csv and --csv-full-history?")
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass
class Row:
    """One row of ``_stats.csv`` (times in ms)."""

    requests: int
    failures: int
    rps: float
    p50: float
    p90: float
    p99: float
    max: float
    avg: float

    @classmethod
    def of(cls, r: dict[str, str]) -> Row:
        return cls(
            _int(r["Request Count"]),
            _int(r["Failure Count"]),
            _num(r["Requests/s"]),
            _num(r["50%"]),
            _num(r["90%"]),
            _num(r["99%"]),
            _num(r["Max Response Time"]),
            _num(r["Average Response Time"]),
        )


@dataclass
class History:
    """Per-second series of the ``/score`` row plus the summed ``DEGRADED`` rate; ``t`` in s from the start.

    Percentiles are locust's "current" ones (its last ~10 s of answers), rates are per interval.
    """

    t: list[float] = field(default_factory=list)
    users: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    fail_rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p95: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    degraded_rps: list[float] = field(default_factory=list)


@dataclass
class LocustRun:
    score: Row
    stages: dict[str, Row]
    degraded: dict[str, int]
    failures: list[tuple[str, int]]
    history: History


def _history(rows: list[dict[str, str]]) -> History:
    """Rates from the cumulative counts between rows (locust's own current rate lags by seconds)."""
    degraded_total: dict[int, float] = defaultdict(float)
    for r in rows:
        if r["Type"] == "DEGRADED":
            degraded_total[_int(r["Timestamp"])] += _num0(r["Total Request Count"])
    by_ts = {_int(r["Timestamp"]): r for r in rows if (r["Type"], r["Name"]) == SCORE}  # last row per second
    h = History()
    stamps = sorted(by_ts)
    for prev, ts in itertools.pairwise(stamps):
        r, p, dt = by_ts[ts], by_ts[prev], float(ts - prev)
        h.t.append(float(ts - stamps[0]))
        h.users.append(_num(r["User Count"]))
        h.rps.append((_num0(r["Total Request Count"]) - _num0(p["Total Request Count"])) / dt)
        h.fail_rps.append((_num0(r["Total Failure Count"]) - _num0(p["Total Failure Count"])) / dt)
        h.degraded_rps.append(max(0.0, degraded_total.get(ts, 0.0) - degraded_total.get(prev, 0.0)) / dt)
        h.p50.append(_num(r["50%"]))
        h.p95.append(_num(r["95%"]))
        h.p99.append(_num(r["99%"]))
    return h


def read_locust_csv(prefix: str | Path) -> LocustRun:
    """Parse ``PREFIX_stats.csv``, ``PREFIX_stats_history.csv`` and ``PREFIX_failures.csv``."""
    prefix = str(prefix)
    stats = _rows(Path(f"{prefix}_stats.csv"))
    score = next((Row.of(r) for r in stats if (r["Type"], r["Name"]) == SCORE), None)
    if score is None:
        raise ValueError(f"{prefix}_stats.csv has no 'POST /score' row: no request was sent")
    stages = {r["Name"]: Row.of(r) for r in stats if r["Type"] == "STAGE"}
    degraded = {r["Name"]: _int(r["Request Count"]) for r in stats if r["Type"] == "DEGRADED"}
    failures = sorted(
        (
            (_unwrap(r["Error"]), _int(r["Occurrences"]))
            for r in _rows(Path(f"{prefix}_failures.csv"))
            if (r["Method"], r["Name"]) == SCORE
        ),
        key=lambda e: -e[1],
    )
    return LocustRun(score, stages, degraded, failures, _history(_rows(Path(f"{prefix}_stats_history.csv"))))
