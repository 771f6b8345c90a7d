"""Admission control on its own: predicted completion against the remaining budget, and its calibration."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from service.admission import CompletionCalibration, admit
from service.errors import Overloaded


@dataclass
class QueueStub:
    """A batcher as admission sees it: ``wait_s`` seconds until ``rows`` more rows would be done."""

    wait_s: float
    idle: bool = False
    room: bool = True

    def predicted_wait_s(self, rows: int) -> float:
        return self.wait_s

    def has_room(self, rows: int) -> bool:
        return self.room


@dataclass
class RuntimeStub:
    encoder: QueueStub
    head: QueueStub


def budget(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_admits_what_fits_and_returns_the_prediction() -> None:
    rt: Any = RuntimeStub(QueueStub(0.050), QueueStub(0.005))
    assert admit(rt, 200, 200, budget(0.2), fixed_s=0.005) == pytest.approx(0.060)


async def test_refuses_at_once_when_the_prediction_exceeds_the_budget() -> None:
    rt: Any = RuntimeStub(QueueStub(0.300), QueueStub(0.005))
    with pytest.raises(Overloaded) as refused:
        admit(rt, 200, 200, budget(0.2))
    assert refused.value.reason == "deadline_predicted"


async def test_idle_batchers_always_admit_so_a_stale_cost_cannot_refuse_for_ever() -> None:
    rt: Any = RuntimeStub(QueueStub(0.300, idle=True), QueueStub(0.005, idle=True))
    admit(rt, 200, 200, budget(0.2))


async def test_a_learnt_completion_offset_refuses_what_the_queues_alone_would_admit() -> None:
    rt: Any = RuntimeStub(QueueStub(0.120), QueueStub(0.005))
    calibration = CompletionCalibration(alpha=0.5)
    assert admit(rt, 200, 200, budget(0.2), calibration=calibration)  # 125 ms predicted: fits
    for _ in range(10):  # requests kept taking 100 ms longer than predicted (event loop busy at saturation)
        calibration.observe(predicted_s=0.125, actual_s=0.225)
    assert calibration.offset_s == pytest.approx(0.100, abs=1e-3)
    with pytest.raises(Overloaded):
        admit(rt, 200, 200, budget(0.2), calibration=calibration)


def test_the_offset_decays_when_requests_finish_early_and_never_goes_negative() -> None:
    calibration = CompletionCalibration(alpha=0.5)
    calibration.observe(predicted_s=0.050, actual_s=0.090)
    assert calibration.offset_s == pytest.approx(0.020)
    for _ in range(20):
        calibration.observe(predicted_s=0.050, actual_s=0.010)
    assert 0.0 <= calibration.offset_s < 1e-6
