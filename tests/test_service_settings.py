"""Settings: PRECTR_ environment with __ nesting; impossible values refused at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.cli import for_processes, settings_as_env
from service.settings import Settings


def test_environment_fills_nested_sections_and_keeps_the_other_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRECTR_BATCHING__HEAD__MAX_QUEUE_ROWS", "3000")
    monkeypatch.setenv("PRECTR_REDIS__URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("PRECTR_ONNX__PROVIDERS", "cpu")
    s = Settings()
    assert s.batching.head.max_queue_rows == 3000
    assert s.batching.head.max_rows == 1024  # the head's own default survives a partial override
    assert s.redis.url == "redis://127.0.0.1:6379/0" and s.onnx.providers == "cpu"


def test_explicit_values_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRECTR_SERVER__HOST", "0.0.0.0")
    monkeypatch.setenv("PRECTR_SERVER__PORT", "9000")
    s = Settings(server={"port": 9100})
    assert (s.server.host, s.server.port) == ("0.0.0.0", 9100)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"batching": {"encoder": {"max_rows": 64, "max_queue_rows": 32}}}, "smaller than max_rows"),
        (
            {"batching": {"head": {"max_queue_rows": 1500}}, "server": {"max_candidates": 2000}},
            "max_candidates",
        ),
        ({"server": {"default_budget_ms": 900, "max_budget_ms": 500}}, "exceeds max_budget_ms"),
        ({"server": {"max_candidates": 5000}}, "less than or equal to 2000"),
        ({"admin": {"token": "short"}}, "at least 16 characters"),
        ({"onnx": {"providers": "tpu"}}, "providers"),
        ({"cache": {"capacity": -1}}, "capacity"),
        ({"server": {"slo_seconds": 0}}, "slo_seconds"),
        ({"servr": {"port": 1}}, "servr"),
    ],
)
def test_impossible_values_are_refused_with_the_field(values: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**values)


def test_settings_round_trip_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(
        server={"port": 9001}, batching={"encoder": {"max_rows": 32}}, admin={"token": "x" * 20}
    )
    for key, value in settings_as_env(original).items():
        monkeypatch.setenv(key, value)
    rebuilt = Settings()
    assert rebuilt.model_dump(exclude={"admin"}) == original.model_dump(exclude={"admin"})
    assert rebuilt.admin.token is not None and rebuilt.admin.token.get_secret_value() == "x" * 20


def test_several_server_processes_do_not_pin_encoder_threads_unless_asked() -> None:
    assert for_processes(Settings(), 4).batching.encoder.pin_cores is False
    assert for_processes(Settings(), 1).batching.encoder.pin_cores is None  # resolved per provider
    asked = Settings(batching={"encoder": {"pin_cores": True}})
    assert for_processes(asked, 4).batching.encoder.pin_cores is True
