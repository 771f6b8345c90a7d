"""Load schedules: how many users at time ``t`` (pure functions, so tests never import locust).

Importing locust monkey-patches the process with gevent; keeping the schedules apart lets the test suite
check them without that side effect. ``loadtest/shapes.py`` wraps them in locust ``LoadTestShape`` classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Plan = tuple[int, float] | None  # (users, spawn rate per second), or None: stop the test
Schedule = Callable[..., Plan]


def steady(t: float, peak: int, rate: float, duration: float, **_: float) -> Plan:
    """Ramp to ``peak`` at ``rate`` and hold until ``duration``: the baseline for p50/p99 and throughput."""
    return (peak, rate) if t < duration else None


def step(t: float, peak: int, rate: float, duration: float, steps: float = 4, **_: float) -> Plan:
    """``steps`` equal plateaus up to ``peak``: where the latency knee sits (capacity planning)."""
    if t >= duration:
        return None
    n = max(1, int(steps))
    k = min(n - 1, int(t // (duration / n)))
    return max(1, math.ceil(peak * (k + 1) / n)), rate


def spike(t: float, peak: int, rate: float, duration: float, spike_base: float = 0.25, **_: float) -> Plan:
    """Baseline, a jump to ``peak`` during the middle fifth, baseline again: shedding, then recovery.

    Users start within a second whatever ``rate`` says: a ramped spike would not be a spike.
    """
    if t >= duration:
        return None
    fast = float(max(rate, peak))
    if 0.4 * duration <= t < 0.6 * duration:
        return peak, fast
    return max(1, round(peak * spike_base)), fast


SCHEDULES: dict[str, Schedule] = {"steady": steady, "step": step, "spike": spike}
